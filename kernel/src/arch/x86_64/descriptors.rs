//! GDT, TSS and IDT for VMX root mode, and the root-mode exception handler.
//! The TSS and IDT of a CPU live in its per-CPU block (`percpu.rs`).
//!
//! The GDT (defined in `boot.rs`) holds a 64-bit code segment (0x08), a data
//! segment (0x10) and one TSS descriptor per CPU (`0x18 + 16 * n`, see
//! `percpu::tss_selector`; LTR marks a descriptor busy, so CPUs cannot
//! share one). The TSS exists only for its interrupt
//! stack table: double fault, NMI and machine check run on their own stacks,
//! so they are reported even when the kernel stack is the problem.
//!
//! Root mode runs with interrupts off, except in the one-instruction
//! windows of `interrupts::take_requested` (the CPU idling or waiting for a
//! deadline takes the interrupts requested meanwhile there). Vectors 32 to
//! 255 therefore have a handler that only notes the vector in the bitmap
//! the window names in R11 and returns; the window's caller acknowledges
//! and routes what was noted. An NMI (vector 2) is counted and returned
//! from (`nmi.rs`). Any
//! other exception in root mode is a kernel bug or a hardware fault:
//! the handler prints vector, error code, RIP, CS, RFLAGS, RSP, CR2 and CR3
//! on the debug console and resets the machine through port 0xCF9 (fail
//! closed; there is nothing to return to).

use core::arch::{asm, global_asm};

use septum_abi::crash::RootException;

use super::boot;
use super::cpu;
use super::percpu::{self, CpuNumber};
use crate::kprintln;

/// Kernel code selector.
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector.
pub const KERNEL_DS: u16 = 0x10;
/// GDT slots: null, code, data, then two per CPU for its TSS descriptor.
pub const GDT_SLOTS: usize = 3 + 2 * percpu::MAX_CPUS;
/// The GDT's limit (LGDT).
const GDT_LIMIT: u16 = (GDT_SLOTS * 8 - 1) as u16;

/// The 64-bit TSS as 26 little-endian words (SDM Vol. 3A, 8.7): IST1-3 at
/// bytes 0x24-0x3b, the I/O map base (= size: no bitmap) at 0x66. One per
/// CPU, in its per-CPU block.
#[repr(C, align(16))]
pub struct Tss([u32; 26]);

const TSS_SIZE: u16 = 104;

#[repr(C)]
#[derive(Clone, Copy)]
struct IdtEntry {
    low: u64,
    high: u64,
}

/// Vectors in the IDT: the 32 exceptions and the 224 interrupt vectors.
const IDT_VECTORS: usize = 256;

/// The IDT. One per CPU, in its per-CPU block.
#[repr(C, align(16))]
pub struct Idt([IdtEntry; IDT_VECTORS]);

/// Pseudo-descriptor for LGDT/LIDT.
#[repr(C, packed)]
struct TablePointer {
    limit: u16,
    base: u64,
}

macro_rules! exception_stub {
    ($vector:literal) => {
        concat!(
            ".balign 16\n",
            "push $0\n",
            "push $",
            stringify!($vector),
            "\n",
            "jmp septum_exception_common\n"
        )
    };
    ($vector:literal, error_code) => {
        concat!(
            ".balign 16\n",
            "push $",
            stringify!($vector),
            "\n",
            "jmp septum_exception_common\n"
        )
    };
}

// One 16-byte stub per vector (stub N at septum_exception_stubs + 16 * N)
// pushes a dummy error code where the CPU pushes none, then the vector.
global_asm!(
    ".text",
    ".balign 16",
    ".global septum_exception_stubs",
    "septum_exception_stubs:",
    exception_stub!(0),
    exception_stub!(1),
    exception_stub!(2),
    exception_stub!(3),
    exception_stub!(4),
    exception_stub!(5),
    exception_stub!(6),
    exception_stub!(7),
    exception_stub!(8, error_code),
    exception_stub!(9),
    exception_stub!(10, error_code),
    exception_stub!(11, error_code),
    exception_stub!(12, error_code),
    exception_stub!(13, error_code),
    exception_stub!(14, error_code),
    exception_stub!(15),
    exception_stub!(16),
    exception_stub!(17, error_code),
    exception_stub!(18),
    exception_stub!(19),
    exception_stub!(20),
    exception_stub!(21, error_code),
    exception_stub!(22),
    exception_stub!(23),
    exception_stub!(24),
    exception_stub!(25),
    exception_stub!(26),
    exception_stub!(27),
    exception_stub!(28),
    exception_stub!(29, error_code),
    exception_stub!(30, error_code),
    exception_stub!(31),
    "septum_exception_common:",
    "mov %rsp, %rdi",
    "and $-16, %rsp",
    "call septum_root_exception",
    "ud2",
    // One 16-byte stub per interrupt vector 32..=255 (stub N at
    // septum_interrupt_stubs + 16 * (N - 32)) pushes its vector. An
    // interrupt reaches root mode only inside `take_requested`'s window
    // (`sti; nop; cli`), whose R11 points at a 256-bit bitmap: the common
    // part sets the vector's bit there and returns, all registers as they
    // were (the interrupt gate cleared IF; IRETQ sets it again, so every
    // requested vector the local APIC may deliver is taken before the
    // window's CLI).
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
    "xchg %rax, (%rsp)",
    "bts %rax, (%r11)",
    "pop %rax",
    "iretq",
    options(att_syntax)
);

unsafe extern "C" {
    static septum_exception_stubs: u8;
    static septum_interrupt_stubs: u8;
}

/// What the CPU and the stub leave on the stack.
#[repr(C)]
struct ExceptionFrame {
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

#[unsafe(no_mangle)]
extern "C" fn septum_root_exception(frame: *const ExceptionFrame) -> ! {
    // Safety: the common stub passes the address of the frame it and the CPU
    // just pushed on the current stack; it stays valid as this never returns.
    let frame = unsafe { &*frame };
    kprintln!(
        "septum: root-mode exception {} error={:#x} rip={:#x} cs={:#x} rflags={:#x} rsp={:#x} \
         cr2={:#x} cr3={:#x}",
        frame.vector,
        frame.error,
        frame.rip,
        frame.cs,
        frame.rflags,
        frame.rsp,
        cpu::read_cr2(),
        cpu::read_cr3()
    );
    crate::crash::root_exception(RootException {
        vector: frame.vector,
        error_code: frame.error,
        rip: frame.rip,
        cs: frame.cs,
        rflags: frame.rflags,
        rsp: frame.rsp,
        ss: frame.ss,
        cr2: cpu::read_cr2(),
    });
    kprintln!("septum: resetting the machine");
    crate::console::drain();
    cpu::reset()
}

/// The address of an IDT interrupt gate's handler, split (SDM Vol. 3A, 6.14.1).
fn gate(handler: u64, ist: u8) -> IdtEntry {
    let low = (handler & 0xffff)
        | (u64::from(KERNEL_CS) << 16)
        | (u64::from(ist & 7) << 32)
        | (0x8e << 40)
        | (((handler >> 16) & 0xffff) << 48);
    IdtEntry {
        low,
        high: handler >> 32,
    }
}

/// Fill `cpu`'s TSS and IDT (in its per-CPU block) and the GDT's TSS
/// descriptor, load GDT, TR and IDT. Runs on `cpu`, at its boot.
pub fn init(cpu: CpuNumber) {
    let [double_fault, nmi, machine_check] = percpu::ist_stack_tops(cpu);
    let low = |v: u64| v as u32;
    let high = |v: u64| (v >> 32) as u32;
    let tss_words = [
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        low(double_fault),
        high(double_fault),
        low(nmi),
        high(nmi),
        low(machine_check),
        high(machine_check),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        u32::from(TSS_SIZE) << 16,
    ];
    let tss_address = percpu::tss_address(cpu);
    let block = percpu::block(cpu);
    // Safety: `block` is `cpu`'s per-CPU block, reached only by `cpu`; this
    // is its boot path, interrupts off, and nothing refers to its TSS yet
    // (written before TR points at it). Only the TSS field is written.
    unsafe { (&raw mut (*block).tss).write_volatile(Tss(tss_words)) };

    let stubs = (&raw const septum_exception_stubs) as u64;
    let interrupt_stubs = (&raw const septum_interrupt_stubs) as u64;
    let mut idt = [IdtEntry { low: 0, high: 0 }; IDT_VECTORS];
    for (vector, entry) in (0u64..).zip(idt.iter_mut()) {
        let ist = match vector {
            8 => 1,
            2 => 2,
            18 => 3,
            _ => 0,
        };
        let handler = match vector {
            // An NMI is noted and returned from, not reported (`nmi.rs`).
            2 => super::nmi::handler_address(),
            0..32 => stubs.wrapping_add(vector.wrapping_mul(16)),
            _ => interrupt_stubs.wrapping_add(vector.wrapping_sub(32).wrapping_mul(16)),
        };
        *entry = gate(handler, ist);
    }
    // Safety: as above; the IDT is written before IDTR points at it.
    unsafe { (&raw mut (*block).idt).write_volatile(Idt(idt)) };

    let limit = u64::from(TSS_SIZE).wrapping_sub(1);
    let descriptor_low = (limit & 0xffff)
        | ((tss_address & 0xff_ffff) << 16)
        | (0x89 << 40)
        | (((tss_address >> 24) & 0xff) << 56);
    let descriptor_high = tss_address >> 32;
    let selector = percpu::tss_selector(cpu);
    let slot = usize::from(selector / 8);
    let gdt = boot::gdt_address() as *mut u64;
    // Safety: the GDT in boot.rs has GDT_SLOTS 8-byte slots; `slot` and
    // `slot + 1` (below GDT_SLOTS for every CPU below MAX_CPUS) are `cpu`'s
    // TSS descriptor, written only here, by `cpu`, before its LTR below;
    // other CPUs write only their own slots.
    unsafe {
        gdt.wrapping_add(slot).write_volatile(descriptor_low);
        gdt.wrapping_add(slot.wrapping_add(1))
            .write_volatile(descriptor_high);
    }
    let gdt_pointer = TablePointer {
        limit: GDT_LIMIT,
        base: boot::gdt_address(),
    };
    let idt_pointer = TablePointer {
        limit: (IDT_VECTORS * 16 - 1) as u16,
        base: percpu::idt_address(cpu),
    };
    // Safety: both tables are fully initialised static data that live for
    // the whole run; the selectors match the GDT's layout.
    unsafe {
        asm!(
            "lgdt [{gdt}]",
            "lidt [{idt}]",
            "ltr {tss:x}",
            gdt = in(reg) &gdt_pointer,
            idt = in(reg) &idt_pointer,
            tss = in(reg) selector,
            options(readonly, nostack, preserves_flags)
        );
    }
}

/// Test-only (feature `root-fault-probe`): write to the first byte of the
/// kernel's own text, which the kernel page tables map read+execute with
/// CR0.WP set, so the CPU must raise a page fault (vector 14, error 0x3:
/// present, write) with CR2 = that address; the handler above reports it
/// and resets the machine. Returns only if the write did not fault, i.e.
/// kernel text is writable. The address is fixed here, not a parameter.
#[cfg(feature = "root-fault-probe")]
pub fn root_fault_probe() {
    let target = septum_abi::layout::KERNEL_TEXT.start;
    crate::kprintln!(
        "septum: root-fault probe: writing to kernel text at {:#x}",
        target.get()
    );
    // Safety: test-only probe, compiled in only with `root-fault-probe`.
    // `target` is the start of kernel text (identity-mapped, readable), so
    // the read cannot fault. The write stores back the byte just read: it must
    // fault (W^X); should it not, the kernel's code is unchanged. The asm
    // is opaque to the compiler, so no Rust object is written through.
    // The TEST of 1 clears the arithmetic flags, so the reported RFLAGS
    // (0x10002: RF and the fixed bit) does not depend on whatever code
    // the compiler put before the probe.
    unsafe {
        asm!(
            "mov {byte}, byte ptr [{target}]",
            "mov {one:e}, 1",
            "test {one:e}, {one:e}",
            "mov byte ptr [{target}], {byte}",
            target = in(reg) target.get(),
            byte = out(reg_byte) _,
            one = out(reg) _,
            options(nostack)
        );
    }
}
