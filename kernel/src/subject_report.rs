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

use core::sync::atomic::{AtomicU32, Ordering};

use septum_abi::SubjectId;
use septum_abi::panic::PanicText;
use septum_kerncore::deadline::{self, MissCounters};
use septum_kerncore::exits::{FaultDetail, FaultInfo};
use septum_kerncore::plan::MAX_SUBJECTS;
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

/// Misses of every subject so far, counted in the subject's partition's
/// frame after the miss ([`count_misses`]).
static MISSES: MissCounters = MissCounters::new();

/// Misses of every subject not yet in [`MISSES`]: the frame transition
/// only adds here (one atomic add), so that a miss costs it a few
/// instructions, whatever its count.
static UNCOUNTED: [AtomicU32; MAX_SUBJECTS] = [const { AtomicU32::new(0) }; MAX_SUBJECTS];

/// A minor frame's timer has just ended the frame (not an early expiry)
/// while `running` had the CPU: if it promised to finish in time, one
/// more uncounted miss, and `true`: the caller marks the subject's
/// partition due (`arch::x86_64::deferred::missed`), whose next frame
/// counts it and writes the line of a count that is a power of two
/// ([`count_misses`]). Formatted here, in the frame transition, the line
/// (about 1400 TSC ticks) delayed the next partition whenever the
/// subject missed; counted and queued here, a power of two still cost it
/// about 50.
#[inline(always)]
pub fn frame_end(running: Option<SubjectId>) -> bool {
    let Some(counter) =
        deadline::missed(&SPEC, running).and_then(|subject| UNCOUNTED.get(subject.index()))
    else {
        return false;
    };
    counter.fetch_add(1, Ordering::Relaxed);
    true
}

/// Whether `subject` has misses not yet counted.
pub fn has_uncounted(subject: SubjectId) -> bool {
    UNCOUNTED
        .get(subject.index())
        .is_some_and(|counter| counter.load(Ordering::Relaxed) != 0)
}

/// Count `subject`'s uncounted misses and write the line of every count
/// among them that is a power of two ([`print_miss`]).
pub fn count_misses(subject: SubjectId) {
    let uncounted = UNCOUNTED
        .get(subject.index())
        .map_or(0, |counter| counter.swap(0, Ordering::Relaxed));
    for _ in 0..uncounted {
        if let Some(count) = MISSES.record(subject) {
            print_miss(subject, count);
        }
    }
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
        // Misses of another CPU's subject its partition has not counted
        // yet count too.
        let uncounted = UNCOUNTED
            .get(id.index())
            .map_or(0, |counter| counter.load(Ordering::Relaxed));
        let count = MISSES.count(id).saturating_add(uncounted);
        if count > 0 {
            kprintln!(
                "septum: subject \"{}\" missed {count} minor-frame deadlines",
                subject.name
            );
        }
    }
}
