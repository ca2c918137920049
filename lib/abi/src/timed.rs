//! The timed-event page: one 4 KiB region a subject maps writable, in which
//! it arms a one-shot TSC deadline for one of its own target events. The
//! layout is defined here once, for the composer (which writes the initial
//! page), the kernel (which reads the deadline and disarms it after the
//! trigger) and the SDK (which arms it).
//!
//! Offset 0: the deadline, a `u64` TSC value, little-endian;
//! [`DISARMED`] (`u64::MAX`) means no deadline. Offset 8: the target event
//! number the kernel marks pending, one byte, written by the composer from
//! the policy (the kernel uses the policy's number, not this byte: a
//! subject that overwrites it changes nothing).

/// Size of a timed-event page (the region must be exactly this size).
pub const TIMED_PAGE_SIZE: u64 = 4096;

/// Byte offset of the TSC deadline (`u64`).
pub const DEADLINE_OFFSET: usize = 0;

/// Byte offset of the event number (`u8`).
pub const EVENT_OFFSET: usize = 8;

/// The deadline value that means "not armed"; the kernel writes it after
/// triggering the event (one-shot).
pub const DISARMED: u64 = u64::MAX;

/// The first bytes of a timed-event page as the composer writes them:
/// disarmed, with the policy's target event number.
pub const fn initial_page(event: u8) -> [u8; 9] {
    let d = DISARMED.to_le_bytes();
    [d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], event]
}
