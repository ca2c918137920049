//! Hardware shims: the few instructions a subject needs, each wrapped once.
//!
//! These are the only places the SDK executes inline assembly. None of them
//! can break Rust's memory safety inside the subject: `vmcall` traps to the
//! kernel, which changes no subject register but RAX and no memory but what
//! the policy shares; `rdtsc` and port I/O touch no memory at all (the I/O
//! bitmap decides what a port access does, and a forbidden one ends in a VM
//! exit, not in corrupted memory); `ud2` never returns. Hence they are safe
//! functions.
//!
//! On the host (tests) the functions exist but must not be called: they
//! would fault. `_start` is only assembled for `target_os = "none"`.
#![allow(unsafe_code)]

use core::arch::asm;

/// Executes `vmcall` with `number` in RAX.
pub fn vmcall(number: u64) {
    // Safety: `vmcall` in VMX non-root mode exits to the kernel, which
    // resumes the subject after the instruction. RAX is declared clobbered;
    // memory is not declared untouched (no `nomem`) because an event tells
    // other subjects to look at shared memory, so the compiler must finish
    // earlier stores first.
    unsafe {
        asm!("vmcall", inout("rax") number => _, options(nostack));
    }
}

/// Executes `vmcall` with `number` in RAX and returns RAX afterwards: the
/// result of a hypercall that returns one (a `sleep` kernel event), else
/// `number` unchanged.
pub fn vmcall_result(number: u64) -> u64 {
    let result: u64;
    // Safety: as in `vmcall`; RAX is the output.
    unsafe {
        asm!("vmcall", inout("rax") number => result, options(nostack));
    }
    result
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    let low: u32;
    let high: u32;
    // Safety: `rdtsc` only writes EDX:EAX, which are declared as outputs.
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes `value` to I/O port `port`.
pub fn outb(port: u16, value: u8) {
    // Safety: port I/O touches no memory; whether the access reaches a
    // device is decided by the subject's I/O bitmap (a denied port causes a
    // VM exit that the kernel handles).
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
    }
}

/// Reads I/O port `port`.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // Safety: as for `outb`; only AL is written.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Executes `ud2`: the kernel sees an invalid-opcode exception exit.
pub fn invalid_opcode() -> ! {
    // Safety: `ud2` raises #UD and never falls through; the kernel stops the
    // subject and never resumes it at this instruction.
    unsafe {
        asm!("ud2", options(noreturn, nomem, nostack));
    }
}

// The subject's first instruction. The kernel sets RSP to the top of the
// stack and RDI to the info page address; the System V ABI wants RSP + 8 to
// be 16-byte aligned at a function's entry, which `and` + `call` gives
// whatever the kernel chose. RDI passes through as the first argument.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
core::arch::global_asm!(
    ".section .text._start,\"ax\",@progbits",
    ".global _start",
    "_start:",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    call __septum_subject_main",
    "    ud2",
);
