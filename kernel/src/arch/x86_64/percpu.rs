//! The per-CPU block: everything one CPU's root mode owns, in one place per
//! CPU, reached from the CPU's own exit stack.
//!
//! Each CPU has a fixed area in `.bss` (reserved by the assembly below,
//! [`AREA_SIZE`] bytes per CPU, CPU `n` at `septum_cpu_areas + n *
//! AREA_SIZE`):
//!
//! ```text
//! IST stacks (double fault, NMI, machine check) | exit stack | PerCpu block
//!                                                            ^ exit-stack top = host RSP
//! ```
//!
//! The [`PerCpu`] block starts exactly at the top of the CPU's exit stack.
//! The exit stub pushes the guest registers into the subject's own frame
//! slot (host RSP of its VMCS, `regs.rs`), then loads RSP from the word
//! after that frame: this CPU's exit-stack top, the block's address; it
//! passes the block's core to `septum_vmexit` ([`this_cpu`]: no MSR read),
//! and pops the frame the block names ([`LOADED_FRAME_AT`]) at entry.
//!
//! What is per CPU: the exit stack, the IST stacks, the TSS and IDT, and
//! the [`CpuCore`]: the CPU's number, its [`Scheduler`], the subject whose
//! VMCS is loaded, and the preemption-timer shift. What is not: subject
//! contexts (saved registers, FPU areas, launched flags) belong to subjects
//! (`exit.rs`, one slot per subject, reached only from the subject's CPU),
//! and pending events are one system-wide table (`exit::EVENTS`).
//!
//! Aliasing, for several CPUs: CPU `n`'s block is reached only by CPU `n`,
//! from its two root-mode entry points (its boot path with its
//! [`CpuNumber`], and VM exits on its exit stack), which never nest on one
//! CPU (interrupts stay off in root mode; an exception never returns).
//! [`MAX_CPUS`] areas exist (each costs about 62 KiB of the 512 KiB data
//! window); each CPU has its own TSS descriptor in the GDT
//! ([`tss_selector`]: LTR marks a descriptor busy), and every VMCS stays
//! on its subject's CPU (`vmx::Vmcs::of` checks).
//!
//! An application processor's boot path runs on its own exit stack, at
//! [`ap_boot_stack_top`], one page below the top (the block lies above
//! it), and the boot path's frames are abandoned when the CPU enters its
//! first subject (the exit path then runs from the top).

use core::arch::global_asm;
use core::mem::{MaybeUninit, offset_of, size_of};

use septum_abi::TscCycles;
use septum_kerncore::plan::Scheduler;

use super::descriptors::{Idt, Tss};
use super::exit::GuestRegs;
use super::vmx::Vmcs;

/// CPUs with a per-CPU area: the most CPUs a plan may use.
pub const MAX_CPUS: usize = 4;
/// Bytes of each CPU's exit stack (host RSP).
pub const EXIT_STACK_SIZE: usize = 0x8000;
/// Bytes of each IST stack.
pub const IST_STACK_SIZE: usize = 0x2000;
/// Bytes reserved for one [`PerCpu`] block (whole pages).
pub const BLOCK_SIZE: usize = size_of::<PerCpu>().next_multiple_of(4096);
/// Bytes of one CPU's area: three IST stacks, the exit stack, the block.
pub const AREA_SIZE: usize = 3 * IST_STACK_SIZE + EXIT_STACK_SIZE + BLOCK_SIZE;
/// Offset of the exit-stack top (= the block) in an area.
const BLOCK_OFFSET: usize = 3 * IST_STACK_SIZE + EXIT_STACK_SIZE;

// The area is page-aligned and the block starts on a page boundary, so the
// block is aligned and host RSP is 16-byte aligned (SDM 27.5.1 loads it
// as is; the stub's pushes keep calls aligned).
const _: () = assert!(MAX_CPUS >= 1);
const _: () = assert!(core::mem::align_of::<PerCpu>() <= 4096);
const _: () = assert!(BLOCK_OFFSET.is_multiple_of(4096));

global_asm!(
    r#"
    .section .bss.septum_cpus, "aw", @nobits
    .balign 4096
    .global septum_cpu_areas
septum_cpu_areas:
    .global septum_ist_double_fault_bottom
septum_ist_double_fault_bottom:
    .skip {ist}
    .global septum_ist_double_fault_top
septum_ist_double_fault_top:
    .skip {ist}
    .global septum_ist_nmi_top
septum_ist_nmi_top:
    .skip {ist}
    .global septum_ist_machine_check_top
septum_ist_machine_check_top:
    .global septum_exit_stack_bottom
septum_exit_stack_bottom:
    .skip {exit}
    .global septum_exit_stack_top
septum_exit_stack_top:
    .skip {block}
    .skip {other_cpus}
    .text
"#,
    ist = const IST_STACK_SIZE,
    exit = const EXIT_STACK_SIZE,
    block = const BLOCK_SIZE,
    other_cpus = const (MAX_CPUS - 1) * AREA_SIZE,
    options(att_syntax)
);

unsafe extern "C" {
    /// First byte of CPU 0's area (the symbols in between name CPU 0's
    /// stacks for `kernel/tools/stack_depth.py`).
    static mut septum_cpu_areas: u8;
}

/// The number of a CPU that has a per-CPU area (below [`MAX_CPUS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuNumber(u32);

impl CpuNumber {
    /// The boot CPU.
    pub const BOOT: Self = Self(0);

    /// CPU `number`, if it has a per-CPU area (below [`MAX_CPUS`]).
    pub const fn new(number: u32) -> Option<Self> {
        if (number as usize) < MAX_CPUS {
            Some(Self(number))
        } else {
            None
        }
    }

    /// The number as the spec writes it (`SubjectSpec::cpu`).
    pub const fn get(self) -> u32 {
        self.0
    }

    pub(super) fn index(self) -> usize {
        // Below MAX_CPUS (checked by `new`): fits in usize.
        self.0 as usize
    }
}

/// Everything one CPU's root mode owns. Lives at the top of the CPU's exit
/// stack; valid all-zero (the TSS and IDT are plain words, the core is
/// `MaybeUninit`), which is how `.bss` leaves it.
#[repr(C)]
pub struct PerCpu {
    /// The CPU's TSS (its IST pointers), filled by `descriptors::init`.
    pub(super) tss: Tss,
    /// The CPU's IDT, filled by `descriptors::init`.
    pub(super) idt: Idt,
    /// Written by `exit::start` before the CPU's first VM entry.
    core: MaybeUninit<CpuCore>,
}

/// The scheduling state of one CPU.
pub struct CpuCore {
    /// Which CPU this is.
    pub(super) number: CpuNumber,
    /// The CPU's walk of the plan.
    pub(super) scheduler: Scheduler<'static>,
    /// The subject whose VMCS is current.
    pub(super) loaded: Option<Vmcs>,
    /// The register frame the exit stub pops at entry: the loaded
    /// subject's (`regs::pointer`), set with `loaded` by `exit::switch_to`
    /// (before the first switch, the CPU's spare frame).
    pub(super) frame: *mut GuestRegs,
    /// IA32_VMX_MISC[4:0]: the preemption timer counts TSC >> this.
    pub(super) timer_shift: u32,
    /// When the VMX-preemption timer of the next VM entry expires: the
    /// entry stub writes the timer's value from it at the entry itself
    /// ([`TIMER_AT`]; `exit::arm_timer`).
    pub(super) timer_at: TscCycles,
}

/// The block of `cpu`, as a raw pointer: turning it into a reference is
/// the caller's `unsafe` step, argued where it happens.
pub fn block(cpu: CpuNumber) -> *mut PerCpu {
    (&raw mut septum_cpu_areas)
        .wrapping_add(cpu.index().wrapping_mul(AREA_SIZE))
        .wrapping_add(BLOCK_OFFSET)
        .cast::<PerCpu>()
}

/// The core of `cpu`'s block (written by `exit::start`), as a raw pointer.
pub fn core(cpu: CpuNumber) -> *mut CpuCore {
    block(cpu)
        .cast::<u8>()
        .wrapping_add(offset_of!(PerCpu, core))
        .cast::<CpuCore>()
}

/// Top of `cpu`'s exit stack (host RSP): the address of its block.
pub fn exit_stack_top(cpu: CpuNumber) -> u64 {
    block(cpu) as u64
}

/// Where an application processor's boot path starts its stack: one page
/// below the top of its exit stack, under the exit frame (see the module
/// doc).
pub fn ap_boot_stack_top(cpu: CpuNumber) -> u64 {
    exit_stack_top(cpu).wrapping_sub(4096)
}

/// Selector of `cpu`'s TSS descriptor in the GDT: two 8-byte slots per CPU
/// from slot 3 (`boot.rs`).
pub fn tss_selector(cpu: CpuNumber) -> u16 {
    // cpu < MAX_CPUS = 4: at most 0x18 + 3 * 16.
    0x18u16.wrapping_add((cpu.get() as u16).wrapping_mul(16))
}

/// Offset of the core in the block: the exit stub passes the block's
/// address plus this to `septum_vmexit`.
pub(super) const CORE_AT: usize = offset_of!(PerCpu, core);

/// Offset of `CpuCore::frame` in the block: the exit stub, whose RSP is
/// the block after Rust returns, loads the frame to pop from there.
pub(super) const LOADED_FRAME_AT: usize = CORE_AT + offset_of!(CpuCore, frame);

/// Offsets of `CpuCore::timer_at` and `CpuCore::timer_shift` in the
/// block: the entry stub, which finds the block in the word after the
/// frame it pops, arms the timer from them.
pub(super) const TIMER_AT: usize = CORE_AT + offset_of!(CpuCore, timer_at);
pub(super) const TIMER_SHIFT_AT: usize = CORE_AT + offset_of!(CpuCore, timer_shift);

/// Tops of `cpu`'s IST stacks: double fault, NMI, machine check.
pub fn ist_stack_tops(cpu: CpuNumber) -> [u64; 3] {
    let area = block(cpu).cast::<u8>().wrapping_sub(BLOCK_OFFSET) as u64;
    let top = |n: u64| area.wrapping_add(n.wrapping_mul(IST_STACK_SIZE as u64));
    [top(1), top(2), top(3)]
}

/// Address of `cpu`'s TSS (host TR base).
pub fn tss_address(cpu: CpuNumber) -> u64 {
    (block(cpu) as u64).wrapping_add(offset_of!(PerCpu, tss) as u64)
}

/// Address of `cpu`'s IDT (host IDTR base).
pub fn idt_address(cpu: CpuNumber) -> u64 {
    (block(cpu) as u64).wrapping_add(offset_of!(PerCpu, idt) as u64)
}

/// The core of the CPU that took the VM exit.
///
/// # Safety
/// `core` must be the address the exit stub passes: [`CORE_AT`] past the
/// word after the loaded subject's frame, the current CPU's exit-stack
/// top (`regs.rs`: written for each of the CPU's subjects before its first
/// entry), the CPU's core must have been written (`exit::start` does so before the
/// CPU's first VM entry, and a VM exit needs an entry first), and no other
/// reference to the core may be live: the exit path is one of a CPU's two
/// root-mode entry points, which never nest, and other CPUs never reach
/// this CPU's block.
#[inline(always)]
pub unsafe fn this_cpu<'a>(core: *mut CpuCore) -> &'a mut CpuCore {
    // Safety: the contract above.
    unsafe { &mut *core }
}
