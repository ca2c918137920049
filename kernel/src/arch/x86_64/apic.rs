//! The boot CPU's local APIC, only to start the application processors.
//!
//! The kernel uses the local APIC for nothing but the INIT and start-up
//! IPIs (SDM Vol. 3A, 8.4.4.1, "typical BSP initialization sequence"):
//! root mode runs with interrupts off and nothing is routed to subjects.
//! It drives the APIC in x2APIC mode, through MSRs, because the kernel's
//! page tables map only its own windows and the xAPIC is memory-mapped;
//! a plan with more than one CPU on a processor without x2APIC is refused
//! at boot (`cannot start: ... x2APIC`), which is also the documented
//! limit (docs/kernel.md).
//!
//! In x2APIC mode the ICR is one 64-bit MSR (0x830): destination APIC id in
//! bits 63:32, and a write sends the IPI; there is no delivery-status bit
//! to poll.

use septum_kerncore::spec::ApicId;

use super::cpu::{self, rdtsc};
use crate::system::SPEC;

/// IA32_APIC_BASE.
const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE: the APIC is enabled.
const APIC_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE: x2APIC mode.
const APIC_EXTD: u64 = 1 << 10;
/// The x2APIC interrupt command register.
const X2APIC_ICR: u32 = 0x830;
/// ICR: INIT, level assert (delivery mode 101, bit 14).
const ICR_INIT: u64 = 0x4500;
/// ICR: start-up (delivery mode 110, bit 14), vector in bits 7:0.
const ICR_STARTUP: u64 = 0x4600;
/// ICR: NMI (delivery mode 100, bit 14; the vector field is ignored).
#[cfg(feature = "root-nmi-probe")]
const ICR_NMI: u64 = 0x4400;

/// Whether this processor has an x2APIC (CPUID.1:ECX[21]).
pub fn has_x2apic() -> bool {
    let (_, _, ecx, _) = cpu::cpuid(1, 0);
    ecx & (1 << 21) != 0
}

/// Put this CPU's local APIC into x2APIC mode (xAPIC first if the firmware
/// left it disabled: the SDM allows only disabled -> xAPIC -> x2APIC).
/// Call only if [`has_x2apic`].
pub fn enable_x2apic() {
    let base = cpu::rdmsr(IA32_APIC_BASE);
    if base & APIC_ENABLE == 0 {
        // Safety: enabling the local APIC keeps its base address; root mode
        // runs with interrupts off, so no interrupt is delivered.
        unsafe { cpu::wrmsr(IA32_APIC_BASE, base | APIC_ENABLE) };
    }
    if base & APIC_EXTD == 0 {
        // Safety: xAPIC -> x2APIC (CPUID says it exists); the kernel never
        // touches the xAPIC's memory-mapped page, so nothing depends on
        // xAPIC mode.
        unsafe { cpu::wrmsr(IA32_APIC_BASE, base | APIC_ENABLE | APIC_EXTD) };
    }
}

/// Busy-wait for `micros` microseconds of TSC time (the spec's TSC rate).
fn delay_us(micros: u64) {
    let ticks = SPEC.kernel.tsc_khz.saturating_mul(micros) / 1000;
    let start = rdtsc().get();
    while rdtsc().get().wrapping_sub(start) < ticks {
        cpu::pause();
    }
}

fn send_ipi(destination: ApicId, command: u64) {
    // Safety: an IPI to another CPU's local APIC: INIT or start-up, which
    // only (re)starts that CPU in the AP start-up code the kernel placed;
    // x2APIC mode is on (`enable_x2apic`, checked by the caller).
    unsafe { cpu::wrmsr(X2APIC_ICR, (u64::from(destination.0) << 32) | command) };
}

/// Send an NMI to the CPU with local APIC id `destination` (test-only:
/// the `root-nmi-probe` feature, `nmi.rs`).
#[cfg(feature = "root-nmi-probe")]
pub fn send_nmi(destination: ApicId) {
    // Safety: an NMI to a CPU of the kernel, whose root-mode handler
    // (`nmi.rs`) counts it and returns; x2APIC mode is on (the caller
    // enabled it).
    unsafe { cpu::wrmsr(X2APIC_ICR, (u64::from(destination.0) << 32) | ICR_NMI) };
}

/// INIT, 10 ms, start-up, 200 us, start-up (the SDM's sequence): the CPU
/// with local APIC id `destination` starts in real mode at
/// `page * 4096`.
pub fn init_sipi_sipi(destination: ApicId, page: u8) {
    send_ipi(destination, ICR_INIT);
    delay_us(10_000);
    send_ipi(destination, ICR_STARTUP | u64::from(page));
    delay_us(200);
    send_ipi(destination, ICR_STARTUP | u64::from(page));
}
