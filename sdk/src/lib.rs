//! The runtime for native Septum subjects.
//!
//! A native subject is a small `no_std` Rust program that the kernel runs in
//! VMX non-root mode with its own page tables, EPT, I/O and MSR bitmaps. It
//! starts at `_start` with RSP set by the kernel and RDI pointing at its
//! subject info page; everything else it may touch is listed on that page by
//! the logical names its policy gives them. This crate turns that contract
//! into a small, safe API:
//!
//! - [`entry!`] names the subject's `main`, which receives an [`Info`];
//!   a panic hands `FILE:LINE: MESSAGE` to the kernel, which prints it on
//!   the debug console and stops the subject (or the system) as its policy
//!   says;
//! - [`info`] parses the info page (safe code over a byte slice);
//! - [`event`] raises source events (`vmcall`), offers the policy's kernel
//!   events as typed calls ([`Kernel`]: `wait` for target events,
//!   `yield_now`, `poweroff`, ...) and reads the TSC;
//! - [`channel`] implements SHMStream v2 writers and readers that survive a
//!   hostile writer, carrying raw bytes or `zerocopy` typed values;
//! - [`region`] is the memory abstraction under channels and shared memory:
//!   atomics for counters, volatile copies for payload;
//! - [`uart`] writes formatted text to a 16550 the subject owns, without
//!   allocation, and implements the `embedded-io` traits;
//! - [`needs!`] declares the names the code looks up, so the composer
//!   checks them against the policy before boot ([`needs`](mod@needs));
//! - [`monitor`](mod@monitor) reads, changes and resumes a monitored
//!   subject from its monitor (state page, resume event);
//! - [`text`] formats into fixed buffers (channel messages);
//! - [`log`] writes lines of text into a log channel ([`log::Log`]) and
//!   reads them back for a debug server ([`log::Source`]);
//! - [`probe`] performs deliberately forbidden accesses for isolation tests;
//!   [`arch_state`] those of the state-isolation tests (debug registers,
//!   XCR0, TSC_AUX, PKRU);
//! - [`interrupt`] gives a subject that owns an IRQ line its own IDT and
//!   handlers registered by vector;
//! - [`crash`] reads the crash-audit records of the previous boot (the
//!   policy's crash-audit reader only).
//!
//! `unsafe` lives only in the tiny hardware shims ([`arch`] for
//! instructions, [`region`] for raw shared memory, [`rt`] for the info page
//! at its fixed address, the handler table of [`interrupt`]); each block carries a `// Safety:` argument. All
//! parsing and protocol logic is safe and tested on the host and under Miri.
#![no_std]
#![deny(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod arch;
pub mod arch_state;
pub mod channel;
pub mod crash;
pub mod event;
pub mod info;
pub mod interrupt;
pub mod log;
pub mod monitor;
pub mod needs;
pub mod pci;
pub mod probe;
pub mod region;
pub mod rt;
pub mod text;
pub mod timed;
pub mod uart;
pub mod virtio;

pub use event::{Kernel, NotGranted, PendingSet, SourceEventId, TargetEventId, raise, rdtsc};
pub use info::Info;
pub use septum_abi::VirtAddr;
pub use septum_abi::hypercall::KernelActionCode;

/// Declares the subject's entry function.
///
/// `entry!(main)` with `fn main(info: septum_sdk::Info<'static>) -> !`
/// exports the symbol the SDK's `_start` calls after aligning the stack.
/// The SDK checks the info page (at its fixed address, see
/// `septum_abi::layout::SUBJECT_INFO`) before `main` runs; a malformed page
/// is a composer bug and ends the subject with `ud2`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        extern "C" fn __septum_subject_main(info_address: u64) -> ! {
            let main: fn($crate::Info<'static>) -> ! = $main;
            main($crate::rt::startup(info_address))
        }
    };
}
