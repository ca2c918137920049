//! Hardware shims: the few instructions a subject needs, each wrapped once.
//!
//! These are the only places the SDK executes inline assembly. None of them
//! can break Rust's memory safety inside the subject: `vmcall` traps to the
//! kernel, which changes no subject register but RAX and no memory but what
//! the policy shares; `rdtsc` and port I/O touch no memory at all (the I/O
//! bitmap decides what a port access does, and a forbidden one ends in a VM
//! exit, not in corrupted memory); `ud2` never returns, also after
//! [`panic_stop`] loaded the panic text into the registers. Hence they are safe
//! functions.
//!
//! On the host (tests) the functions exist but must not be called: they
//! would fault. `_start` is only assembled for `target_os = "none"`.
#![allow(unsafe_code)]

use core::arch::asm;
use core::sync::atomic::AtomicU64;

use septum_abi::panic::{PANIC_MAGIC, REGISTER_COUNT};

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

/// Writes the dword `value` to I/O port `port`.
pub fn outl(port: u16, value: u32) {
    // Safety: as for `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}

/// Reads a dword from I/O port `port`.
pub fn inl(port: u16) -> u32 {
    let value: u32;
    // Safety: as for `outb`; only EAX is written.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
    }
    value
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

/// Ends the subject after a panic: loads `text` (a panic text as
/// `septum_abi::panic::encode` lays it out) into the registers named by
/// `septum_abi::panic::TEXT_REGISTERS`, [`PANIC_MAGIC`] into RAX, and
/// executes `ud2`. The kernel reads the text from the register frame of the
/// invalid-opcode exit and prints it before applying the subject's
/// `onFault` action.
pub fn panic_stop(text: &[u64; REGISTER_COUNT]) -> ! {
    // Safety: only reads the 112 bytes of `text` (RAX points at it) and
    // overwrites registers, then `ud2` raises #UD and never falls through:
    // nothing after it relies on a register, so RBX and RBP (which LLVM
    // reserves and an operand could not name) may be written too.
    unsafe {
        asm!(
            "mov rbx, [rax]",
            "mov rcx, [rax + 8]",
            "mov rdx, [rax + 16]",
            "mov rsi, [rax + 24]",
            "mov rdi, [rax + 32]",
            "mov rbp, [rax + 40]",
            "mov r8, [rax + 48]",
            "mov r9, [rax + 56]",
            "mov r10, [rax + 64]",
            "mov r11, [rax + 72]",
            "mov r12, [rax + 80]",
            "mov r13, [rax + 88]",
            "mov r14, [rax + 96]",
            "mov r15, [rax + 104]",
            "mov rax, {magic}",
            "ud2",
            magic = const PANIC_MAGIC,
            in("rax") text.as_ptr(),
            options(noreturn, nostack, readonly),
        );
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

/// Loads the subject's own GDT and IDT (`lgdt`, `lidt`). Only a subject
/// that is given vectors (a routed IRQ line or an `<inject_interrupt>`
/// target event) may: for the others the kernel makes
/// descriptor-table instructions exit, and the subject is stopped as its
/// policy says.
pub fn load_descriptor_tables(gdt: &'static [AtomicU64], idt: &'static [AtomicU64]) {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let limit = |table: &[AtomicU64]| u16::try_from(table.len() * 8 - 1).unwrap_or(u16::MAX);
    let gdt = Pointer {
        limit: limit(gdt),
        base: gdt.as_ptr() as u64,
    };
    let idt = Pointer {
        limit: limit(idt),
        base: idt.as_ptr() as u64,
    };
    // Safety: both tables are `'static`, so they outlive every interrupt
    // the CPU delivers through them; `lgdt`/`lidt` read the 10-byte
    // pointers and change only this subject's descriptor-table registers
    // (the current CS and SS stay loaded). The tables hold what
    // `crate::interrupt` writes: valid 64-bit descriptors and interrupt
    // gates to the SDK's entry stubs.
    unsafe {
        asm!("lgdt [{}]", "lidt [{}]", in(reg) &gdt, in(reg) &idt, options(readonly, nostack, preserves_flags));
    }
}

/// Sets RFLAGS.IF: injected interrupts may arrive.
pub fn enable_interrupts() {
    // Safety: `sti` changes only RFLAGS.IF; handlers run through the IDT
    // the SDK installed. Not `nomem`: a handler may change memory.
    unsafe { asm!("sti", options(nostack)) }
}

/// Clears RFLAGS.IF.
pub fn disable_interrupts() {
    // Safety: `cli` changes only RFLAGS.IF.
    unsafe { asm!("cli", options(nostack)) }
}

/// Executes `pause` (a spin-loop hint).
pub fn pause() {
    // Safety: `pause` has no architectural effect.
    unsafe { asm!("pause", options(nomem, nostack, preserves_flags)) }
}

/// Address of the entry stub of `vector` (32..=255): the stubs are 16
/// bytes apart from `septum_interrupt_stubs` (below).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub fn interrupt_stub(vector: u8) -> u64 {
    let base: u64;
    // Safety: `lea` only computes the address of the stubs.
    unsafe {
        asm!("lea {}, [rip + septum_interrupt_stubs]", out(reg) base, options(nomem, nostack, preserves_flags));
    }
    base + u64::from(vector.saturating_sub(32)) * 16
}

/// On the host there are no stubs (tests only build gate words).
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
pub fn interrupt_stub(vector: u8) -> u64 {
    u64::from(vector) * 16
}

// Interrupt entry: one 16-byte stub per vector 32..=255 pushes its vector
// and jumps to the common path, which saves the registers the System V ABI
// lets a function clobber, aligns the stack, calls the SDK's dispatcher
// with the vector and returns with `iretq`. Native subjects are built
// without SSE or x87 code (x86_64-unknown-none is soft-float), so there is
// no FPU state to save. The CPU has already aligned RSP to 16 and pushed
// SS, RSP, RFLAGS, CS, RIP; the gate cleared IF.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
core::arch::global_asm!(
    ".section .text.septum_interrupts,\"ax\",@progbits",
    ".balign 16",
    ".global septum_interrupt_stubs",
    "septum_interrupt_stubs:",
    ".set septum_vector, 32",
    ".rept 224",
    ".balign 16",
    "pushq $septum_vector",
    "jmp septum_interrupt_common",
    ".set septum_vector, septum_vector + 1",
    ".endr",
    "septum_interrupt_common:",
    "push %rax",
    "push %rcx",
    "push %rdx",
    "push %rsi",
    "push %rdi",
    "push %r8",
    "push %r9",
    "push %r10",
    "push %r11",
    "push %rbp",
    "mov %rsp, %rbp",
    "and $-16, %rsp",
    "mov 80(%rbp), %rdi",
    "call septum_sdk_interrupt",
    "mov %rbp, %rsp",
    "pop %rbp",
    "pop %r11",
    "pop %r10",
    "pop %r9",
    "pop %r8",
    "pop %rdi",
    "pop %rsi",
    "pop %rdx",
    "pop %rcx",
    "pop %rax",
    "add $8, %rsp",
    "iretq",
    options(att_syntax)
);
