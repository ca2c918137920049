//! The 32-bit entry, the switch to long mode, and the boot-time memory the
//! assembly owns (GDT, boot stack, the copy of the boot information; the
//! per-CPU exit and IST stacks are in `percpu.rs`).
//!
//! GRUB enters `septum_start32` (the ELF entry point; `septum pack` writes
//! the multiboot2 header) in 32-bit protected mode with paging off,
//! EAX = the multiboot2 magic and EBX = the physical address of the boot
//! information. The trampoline:
//!
//! 1. checks the magic (halts on a mismatch: there is no console yet);
//! 2. copies the boot information into a kernel buffer, because the
//!    composer's page tables map only the kernel's own windows;
//! 3. loads CR3 with the composer-built kernel page tables
//!    (`SPEC.kernel.pml4`, read from the static `septum_kernel_pml4`),
//!    sets CR4.PAE, EFER.LME and EFER.NXE (the tables use NX bits), then
//!    CR0.PG|WP|PE: the kernel's windows are identity-mapped, so execution
//!    continues at the next instruction;
//! 4. loads the kernel GDT and far-jumps to 64-bit code, which loads the
//!    data segments, switches to the boot stack (in KERNEL_DATA) and calls
//!    `kernel_main(mbi_phys)`.
//!
//! The GDT lives in `.data` because the CPU writes to it (the TSS busy bit)
//! and the TSS descriptors (one per CPU) are filled in at run time.
//!
//! Application processors (only when the plan uses more than one CPU):
//! before paging is on, the boot CPU's trampoline also copies the AP
//! start-up code (`septum_ap_trampoline`, real mode, a few dozen bytes)
//! to physical [`AP_TRAMPOLINE`] (0x8000, page 8: the start-up IPI's
//! vector), in conventional memory below 1 MiB that the memory map reports
//! available and that no image region uses (the hardware descriptions mark
//! it not allocatable; the kernel's page tables do not map it, hence the
//! copy before paging). An AP woken by INIT-SIPI-SIPI runs it in real
//! mode: it loads a three-entry GDT of its own, enables protection and
//! jumps to `septum_ap_start32` in kernel text, which does what the boot
//! CPU's trampoline does (kernel CR3, PAE, EFER.LME|NXE, paging, the
//! kernel GDT, 64-bit code) and calls `septum_ap_main` with the CPU number
//! and on the stack the boot CPU left in `septum_ap_cpu` and
//! `septum_ap_stack` (`smp.rs`; it starts the APs one at a time).
//!
//! The stack bounds are global symbols (`septum_boot_stack_bottom`,
//! `septum_boot_stack_top`, and in `percpu.rs` the exit and IST stacks) so
//! that `kernel/tools/stack_depth.py` reads the stack sizes from the linked
//! kernel instead of repeating them.

use core::arch::global_asm;

use crate::system::SPEC;

/// Bytes of boot information the kernel keeps (GRUB's is about 1-2 KiB).
pub const MBI_COPY_SIZE: usize = 16 * 1024;

/// Root of the kernel page tables, for the 32-bit trampoline.
#[used]
#[unsafe(export_name = "septum_kernel_pml4")]
static KERNEL_PML4: u64 = SPEC.kernel.pml4.get();

/// Physical address of the AP start-up code; the start-up IPI's vector is
/// its page number.
pub const AP_TRAMPOLINE: u64 = 0x8000;

/// Non-zero if the trampoline must copy the AP start-up code (the plan uses
/// more than one CPU); single-CPU systems leave low memory alone.
#[used]
#[unsafe(export_name = "septum_ap_trampoline_needed")]
static AP_TRAMPOLINE_NEEDED: u32 = if SPEC.kernel.cpu_count > 1 { 1 } else { 0 };

global_asm!(
    r#"
    /* The boot CPU and the APs enter long mode the same way: the
       kernel's page tables, PAE, EFER.LME and NXE, paging with write
       protection, the kernel GDT, then a far jump to `target`. */
    .macro enter_long_mode target
    movl septum_kernel_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x900, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010001, %eax
    movl %eax, %cr0
    lgdt septum_gdt_pointer
    ljmp $0x08, $\target
    .endm

    .section .text.boot, "ax"
    .code32
    .global septum_start32
septum_start32:
    cli
    cld
    cmpl $0x36d76289, %eax
    jne 9f
    movl %ebx, septum_mbi_phys
    movl (%ebx), %ecx
    cmpl ${mbi_copy_size}, %ecx
    jbe 1f
    movl ${mbi_copy_size}, %ecx
1:
    movl %ecx, septum_mbi_len
    movl %ebx, %esi
    movl $septum_mbi_copy, %edi
    rep movsb
    cmpl $0, septum_ap_trampoline_needed
    je 2f
    movl $septum_ap_trampoline, %esi
    movl ${ap_trampoline}, %edi
    movl $septum_ap_trampoline_end, %ecx
    subl %esi, %ecx
    rep movsb
2:
    enter_long_mode septum_start64
9:
    hlt
    jmp 9b

    .code64
septum_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movq $septum_boot_stack_top, %rsp
    movl septum_mbi_phys, %edi
    call kernel_main
    ud2

    .code32
    .global septum_ap_start32
septum_ap_start32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    enter_long_mode septum_ap_start64

    .code64
    .global septum_ap_start64
septum_ap_start64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    movq septum_ap_stack, %rsp
    movl septum_ap_cpu, %edi
    call septum_ap_main
    ud2

    .section .rodata.septum_ap_trampoline, "a"
    .balign 16
    .global septum_ap_trampoline
septum_ap_trampoline:
    .code16
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl {ap_trampoline} + (septum_ap_gdt_pointer - septum_ap_trampoline)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $septum_ap_start32
    .balign 8
septum_ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
septum_ap_gdt_pointer:
    .word 23
    .long {ap_trampoline} + (septum_ap_gdt - septum_ap_trampoline)
    .global septum_ap_trampoline_end
septum_ap_trampoline_end:
    .code64

    .section .data.septum_gdt, "aw"
    .balign 16
    .global septum_gdt
septum_gdt:
    .quad 0
    .quad 0x00af9b000000ffff
    .quad 0x00cf93000000ffff
    .rept {tss_slots}
    .quad 0
    .endr
septum_gdt_end:
    .balign 8
    .global septum_gdt_pointer
septum_gdt_pointer:
    .word septum_gdt_end - septum_gdt - 1
    .quad septum_gdt

    .section .bss.septum_boot, "aw", @nobits
    .balign 4096
    .global septum_boot_stack_bottom
septum_boot_stack_bottom:
    .skip {boot_stack_size}
    .global septum_boot_stack_top
septum_boot_stack_top:
    .balign 8
    .global septum_mbi_copy
septum_mbi_copy:
    .skip {mbi_copy_size}
    .global septum_mbi_len
septum_mbi_len:
    .skip 4
    .global septum_mbi_phys
septum_mbi_phys:
    .skip 4
    .text
"#,
    mbi_copy_size = const MBI_COPY_SIZE,
    boot_stack_size = const 0x8000,
    ap_trampoline = const AP_TRAMPOLINE,
    tss_slots = const 2 * super::percpu::MAX_CPUS,
    options(att_syntax)
);

unsafe extern "C" {
    static septum_mbi_copy: [u8; MBI_COPY_SIZE];
    static septum_mbi_len: u32;
    static septum_gdt: u8;
}

/// The kernel's copy of the boot information (at most [`MBI_COPY_SIZE`]
/// bytes; shorter than the structure's own size if that was larger).
pub fn boot_info_bytes() -> &'static [u8] {
    // Safety: the trampoline wrote both statics before paging was enabled
    // and nothing writes them afterwards, so shared references are sound.
    let (copy, len) = unsafe { (&septum_mbi_copy, septum_mbi_len) };
    let len = usize::try_from(len)
        .unwrap_or(MBI_COPY_SIZE)
        .min(MBI_COPY_SIZE);
    copy.get(..len).unwrap_or(&[])
}

/// Address of the GDT.
pub fn gdt_address() -> u64 {
    (&raw const septum_gdt) as u64
}
