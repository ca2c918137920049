//! Single x86-64 instructions: port I/O, MSRs, control registers, CPUID,
//! the TSC, and stopping or resetting the machine.
//!
//! Each wrapper is one instruction. The ones whose effect depends on their
//! arguments (port I/O to any port, writing MSRs and control registers) are
//! `unsafe fn` with their conditions written down; the safe functions name
//! their own ports or registers (the PICs, the reset and shutdown ports) or
//! only read state.

use core::arch::asm;

use septum_abi::TscCycles;

/// IA32_FEATURE_CONTROL.
pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
/// IA32_EFER.
pub const IA32_EFER: u32 = 0xc000_0080;
/// IA32_PAT.
pub const IA32_PAT: u32 = 0x277;
/// IA32_KERNEL_GS_BASE: the value SWAPGS exchanges with GS.base.
pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;

/// Read IA32_KERNEL_GS_BASE (present on every 64-bit processor).
pub fn read_kernel_gs_base() -> u64 {
    rdmsr(IA32_KERNEL_GS_BASE)
}

/// Write IA32_KERNEL_GS_BASE. Safe: the kernel never executes SWAPGS and
/// never uses GS, so the value only matters to the subject that runs next
/// (a non-canonical value would raise #GP; every value written comes from
/// RDMSR of this register or is 0).
pub fn write_kernel_gs_base(value: u64) {
    // Safety: see above; KERNEL_GS_BASE affects nothing in root mode.
    unsafe { wrmsr(IA32_KERNEL_GS_BASE, value) }
}

/// Write a byte to an I/O port.
///
/// # Safety
/// `port` must belong to a device the kernel itself drives (the debug UART,
/// the PICs, the PIT and port 0x61, the reset and shutdown ports), never to
/// a device the policy gives a subject, and `value` must not make that
/// device write memory (none of these devices does DMA).
pub unsafe fn outb(port: u16, value: u8) {
    // Safety: the caller guarantees a kernel-owned port (contract above);
    // the instruction itself touches no memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Read a byte from an I/O port.
///
/// # Safety
/// As for [`outb`]: reading a port can change device state (a data register
/// consumes its byte), so only the kernel's own devices.
pub unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // Safety: the caller guarantees a kernel-owned port (contract above).
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Read a model-specific register.
pub fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // Safety: reading an MSR does not touch memory. The kernel only reads
    // architectural MSRs whose presence it checked (CPUID.1:ECX.VMX for the
    // VMX ones); a missing one raises #GP, which the root-mode exception
    // handler reports before resetting.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Write a model-specific register.
///
/// # Safety
/// The write must keep the kernel's execution environment valid (e.g.
/// never clear EFER.LME/NXE while paging is on).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // Safety: the caller guarantees the value keeps the environment valid.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags));
    }
}

/// Read the time-stamp counter.
pub fn rdtsc() -> TscCycles {
    let (low, high): (u32, u32);
    // Safety: RDTSC only reads the counter.
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    }
    TscCycles((u64::from(high) << 32) | u64::from(low))
}

/// Spin until the TSC reaches `target`, which must lie less than 2^31
/// ticks ahead (a pad): the loop of the padded entry's stub (RDTSC, SUB of
/// the low 32 bits, JS), three instructions, with no PAUSE. A target
/// already passed returns at once, however long ago (the 32-bit compare
/// alone would spin for up to 2^31 ticks after one passed by more).
pub fn spin_until(target: TscCycles) {
    if rdtsc() >= target {
        return;
    }
    // Safety: RDTSC and arithmetic on registers only.
    unsafe {
        asm!(
            "2:",
            "rdtsc",
            "sub {target:e}, %eax",
            "js 2b",
            target = in(reg) target.get() as u32,
            out("eax") _,
            out("edx") _,
            options(att_syntax, nomem, nostack),
        )
    }
}

/// [`spin_until`], then a ladder that makes the path out of the loop the
/// same length whichever of the loop's three instructions the target fell
/// on (the read that ends the loop lies d = 0 to 2 ticks past it; where
/// one tick is one instruction, as in Bochs, the caller goes on exactly 7
/// ticks after the target for every d), like the padded entry's stub: a
/// wait whose end must not depend on when it began. A target already
/// passed returns at once.
pub fn spin_until_even(target: TscCycles) {
    if rdtsc() >= target {
        return;
    }
    // Safety: RDTSC, arithmetic on registers and direct branches to labels
    // inside the block only.
    unsafe {
        asm!(
            "2:",
            "rdtsc",
            "sub {target:e}, %eax",
            "js 2b",
            "cmp $1, %eax",
            "jb 10f",
            "cmp $2, %eax",
            "jb 11f",
            "jmp 12f",
            "10:",
            "nop",
            "nop",
            "nop",
            "11:",
            "nop",
            "jmp 12f",
            "12:",
            target = in(reg) target.get() as u32,
            out("eax") _,
            out("edx") _,
            options(att_syntax, nomem, nostack),
        )
    }
}

/// CPUID leaf/subleaf: (EAX, EBX, ECX, EDX).
pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let result = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (result.eax, result.ebx, result.ecx, result.edx)
}

macro_rules! control_register {
    ($read:ident, $write:ident, $reg:literal) => {
        #[doc = concat!("Read ", $reg, ".")]
        pub fn $read() -> u64 {
            let value: u64;
            // Safety: reading a control register has no side effect.
            unsafe { asm!(concat!("mov {}, ", $reg), out(reg) value, options(nomem, nostack, preserves_flags)) }
            value
        }

        #[doc = concat!("Write ", $reg, ".")]
        ///
        /// # Safety
        /// The value must keep paging, protection and the kernel's mappings
        /// valid.
        #[allow(dead_code, reason = "not every control register is written")]
        pub unsafe fn $write(value: u64) {
            // Safety: the caller guarantees the value is valid.
            unsafe { asm!(concat!("mov ", $reg, ", {}"), in(reg) value, options(nostack, preserves_flags)) }
        }
    };
}

control_register!(read_cr0, write_cr0, "cr0");
control_register!(read_cr2, write_cr2, "cr2");
control_register!(read_cr3, write_cr3, "cr3");
control_register!(read_cr4, write_cr4, "cr4");

/// Let the kernel save and restore FPU state: CR0.EM and CR0.TS clear
/// (FXSAVE/FXRSTOR fault otherwise), MP and NE set; then FNINIT.
pub fn fpu_reset() {
    const MP: u64 = 1 << 1;
    const EM: u64 = 1 << 2;
    const TS: u64 = 1 << 3;
    const NE: u64 = 1 << 5;
    let cr0 = (read_cr0() & !(EM | TS)) | MP | NE;
    // Safety: changing only the FPU-related CR0 bits leaves paging and
    // protection as they are; the kernel itself never uses the FPU.
    unsafe {
        write_cr0(cr0);
        asm!("fninit", options(nomem, nostack));
    }
}

/// Spin-loop hint.
pub fn pause() {
    core::hint::spin_loop();
}

/// Stop this CPU for good: interrupts off, HLT forever (an NMI or SMI would
/// only resume the loop).
pub fn halt_forever() -> ! {
    loop {
        // Safety: CLI and HLT touch no memory; the loop never returns.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

/// Mask both 8259 PICs: root mode never takes interrupts, and an unmasked
/// legacy timer would only cause "external interrupt" exits in subjects.
pub fn mask_legacy_pic() {
    // Safety: the PICs' data ports; the kernel owns the interrupt
    // controllers and masking every line only stops interrupts.
    unsafe {
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
    }
}

/// Ask Bochs to power off (its shutdown port), then halt. On hardware
/// without that port this simply halts.
pub fn power_off() -> ! {
    for byte in b"Shutdown" {
        // Safety: Bochs' shutdown port (nothing on hardware); the machine
        // is being stopped.
        unsafe { outb(0x8900, *byte) };
    }
    halt_forever()
}

/// Reset the machine through the PCI reset control register 0xCF9
/// (system reset, then full reset with power cycle), then halt should the
/// reset not happen.
pub fn reset() -> ! {
    // Safety: the reset control register; resetting is the intent.
    unsafe {
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
        outb(0xcf9, 0x0e);
    }
    halt_forever()
}
