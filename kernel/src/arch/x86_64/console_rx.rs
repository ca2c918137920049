//! Console input: the receive side of the kernel's console UART, for the
//! one VM the policy names with `<kernel consoleInput>` (docs/kernel.md,
//! "Console input"; the ring and its bounds are kerncore's
//! `vm::console_input`).
//!
//! Only the owner reads the UART's receive side and the ring: at each of
//! its own VM entries ([`check_point`], called by `vm::before_entry` when
//! the owner is the subject entered), at most `BYTES_PER_CHECK` bytes each
//! time. Never at another subject's entry or in the idle loop: the number
//! of port reads depends on whether keys were typed, and another partition
//! on the CPU could time it. Bytes typed while another subject runs wait
//! in the UART's 16-byte FIFO. The owner alone gets bytes from the ring
//! ([`deliver`]), and no other subject can read them (the debug console is never granted to a subject; the composer
//! refuses an owner that is not a VM). Without `consoleInput` every
//! function here returns at once and the kernel never reads the receive
//! side.

use core::cell::UnsafeCell;

use septum_abi::SubjectId;
use septum_kerncore::vm::console_input::{self, BYTES_PER_CHECK, RxRing};
use septum_kerncore::vm::platform::Uart as PlatformUart;

use super::percpu::CpuCore;
use super::serial::Uart;
use crate::system::{CONSOLE_INPUT, SPEC};

/// The ring of bytes received and not yet handed to the owner.
struct Ring(UnsafeCell<RxRing>);

// Safety: the ring is reached only through `ring`, which hands it out only
// on the owner's CPU (checked there) while that CPU's core is borrowed by
// its exit, entry or idle path; those never nest on one CPU, and no caller
// keeps the reference past its call. So no two references exist at once.
unsafe impl Sync for Ring {}

static RING: Ring = Ring(UnsafeCell::new(RxRing::new()));

/// The console input owner, if `cpu` is the CPU it runs on.
fn owner_on(cpu: &CpuCore) -> Option<SubjectId> {
    let owner = CONSOLE_INPUT?;
    let subject = SPEC.subjects.get(owner.index())?;
    (subject.cpu == cpu.number.get()).then_some(owner)
}

/// The ring, on the owner's CPU only.
#[allow(
    clippy::mut_from_ref,
    reason = "the ring is reached only by the owner's CPU, once per check"
)]
fn ring(cpu: &CpuCore) -> Option<(SubjectId, &mut RxRing)> {
    let owner = owner_on(cpu)?;
    // Safety: `cpu` is the owner's CPU (just checked), the only one that
    // reaches the ring; see `Ring`.
    Some((owner, unsafe { &mut *RING.0.get() }))
}

/// A check point of `cpu`: on the owner's CPU, move up to
/// `BYTES_PER_CHECK` received bytes from the UART into the ring (a byte
/// that finds the ring full is counted as an overrun and dropped).
pub fn check_point(cpu: &CpuCore) {
    let Some((_, ring)) = ring(cpu) else {
        return;
    };
    let uart = Uart::debug_console();
    for _ in 0..BYTES_PER_CHECK {
        let Some(byte) = uart.receive() else {
            break;
        };
        ring.push(byte);
    }
}

/// Before an entry of `subject` (a VM) on `cpu`: hand its emulated UART
/// the next byte if it is the console input owner and has read the
/// previous one (kerncore `console_input::deliver`). Returns whether a
/// byte moved.
pub fn deliver(cpu: &CpuCore, subject: SubjectId, uart: &mut PlatformUart) -> bool {
    let Some((owner, ring)) = ring(cpu) else {
        return false;
    };
    console_input::deliver(Some(owner), subject, ring, uart)
}

/// Bytes dropped because the ring was full (0 off the owner's CPU).
pub fn overruns(cpu: &CpuCore) -> u32 {
    ring(cpu).map_or(0, |(_, ring)| ring.overruns())
}
