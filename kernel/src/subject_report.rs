//! Run-time reports about a subject that are not faults of the kernel's
//! making: the text of a subject's panic and its missed minor-frame
//! deadlines. Each is one line on the debug console, in the contract of
//! docs/kernel.md ("Subject panics", "Missed deadlines").
//!
//! A panic text arrives in the subject's registers (`septum_abi::panic`):
//! the kernel reads it from the register frame the exit stub saved, never
//! from subject memory, and prints it through [`PanicText`]'s `Display`,
//! which bounds and sanitises it. The subject's `onFault` action is applied
//! afterwards as for any invalid-opcode exit; this module decides nothing.
//!
//! A missed deadline is decided in kerncore (`deadline::missed`: the
//! subject still running when its frame's timer fires, if its policy says
//! `minorFrameDeadline="true"`), counted there, and printed here only at
//! the 1st, 2nd, 4th, ... miss of a subject (`MissCounters::record`), so a
//! subject that misses every frame costs the frames after it a logarithmic
//! number of console lines, not one per frame.

use septum_abi::SubjectId;
use septum_abi::panic::PanicText;
use septum_kerncore::deadline::{self, MissCounters};
use septum_kerncore::exits::{FaultDetail, FaultInfo};
use septum_kerncore::vmx::EXIT_EXCEPTION_OR_NMI;

use crate::arch::x86_64::exit::GuestRegs;
use crate::kprintln;
use crate::system::SPEC;

/// Vector of the invalid-opcode exception (`ud2`).
const INVALID_OPCODE: u8 = 6;

/// If the fault `info` of subject `name` is the `ud2` of an SDK panic
/// (RAX holds `PANIC_MAGIC`), print
/// `septum: subject "NAME" panicked at TEXT`.
pub fn panic_text(name: &str, frame: &GuestRegs, info: &FaultInfo) {
    if info.code != EXIT_EXCEPTION_OR_NMI || info.detail != FaultDetail::Vector(INVALID_OPCODE) {
        return;
    }
    let registers = [
        frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp, frame.r8, frame.r9,
        frame.r10, frame.r11, frame.r12, frame.r13, frame.r14, frame.r15,
    ];
    if let Some(text) = PanicText::from_registers(frame.rax, registers) {
        kprintln!("septum: subject \"{name}\" panicked at {text}");
    }
}

/// Misses of every subject so far.
static MISSES: MissCounters = MissCounters::new();

/// A minor frame's timer has just ended the frame (not an early expiry)
/// while `running` had the CPU: count a miss if it promised to finish in
/// time; returns the subject and N if N is a power of two, for
/// [`print_miss`]. The caller prints it in the subject's partition's next
/// frame (`arch::x86_64::deferred`): printed here, in the frame
/// transition, the line's formatting (about 1400 TSC ticks) delayed the
/// next partition whenever the subject missed.
pub fn frame_end(running: Option<SubjectId>) -> Option<(SubjectId, u32)> {
    let subject = deadline::missed(&SPEC, running)?;
    MISSES.record(subject).map(|count| (subject, count))
}

/// `septum: subject "NAME" missed its minor-frame deadline (miss N)`.
pub fn print_miss(subject: SubjectId, count: u32) {
    let name = SPEC.subjects.get(subject.index()).map_or("?", |s| s.name);
    kprintln!("septum: subject \"{name}\" missed its minor-frame deadline (miss {count})");
}

/// At poweroff: `septum: subject "NAME" missed N minor-frame deadlines` for
/// every subject with misses (the exact count, which the rate-limited lines
/// only give at powers of two).
pub fn miss_totals() {
    for (id, subject) in (0u16..).map(SubjectId).zip(SPEC.subjects) {
        let count = MISSES.count(id);
        if count > 0 {
            kprintln!(
                "septum: subject \"{}\" missed {count} minor-frame deadlines",
                subject.name
            );
        }
    }
}
