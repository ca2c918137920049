//! Run-time reports about a subject that are not faults of the kernel's
//! making: the text of a subject's panic (and, see below, missed
//! deadlines). Each is one line on the debug console, in the contract of
//! docs/kernel.md ("Subject panics").
//!
//! A panic text arrives in the subject's registers (`septum_abi::panic`):
//! the kernel reads it from the register frame the exit stub saved, never
//! from subject memory, and prints it through [`PanicText`]'s `Display`,
//! which bounds and sanitises it. The subject's `onFault` action is applied
//! afterwards as for any invalid-opcode exit; this module decides nothing.

use septum_abi::panic::PanicText;
use septum_kerncore::exits::{FaultDetail, FaultInfo};
use septum_kerncore::vmx::EXIT_EXCEPTION_OR_NMI;

use crate::arch::x86_64::exit::GuestRegs;
use crate::kprintln;

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
