//! The CPUID view of a VM: the processor's own answers, filtered.
//!
//! CPUID always exits in VMX non-root operation; the arch layer executes
//! it in root mode with the guest's EAX/ECX and hands the four registers to
//! [`filter`]. What is hidden and why:
//!
//! - XSAVE, OSXSAVE, AVX and everything built on them (AVX2, AVX-512, AMX,
//!   leaf 0xD): the kernel saves and restores only the FXSAVE state (x87,
//!   SSE) of a subject on a switch, so a guest must not keep state in the
//!   extended registers; without XSAVE in CPUID Linux uses FXSAVE, and no
//!   YMM/ZMM contents can pass from one subject to another;
//! - FSRM (leaf 7 EDX[4]): Bochs advertises it but reads IA32_MISC_ENABLE
//!   as 0, after which Linux 6.1's memmove miscopies short buffers
//!   (docs/kernel.md); the kernel's MISC_ENABLE reports fast strings on;
//! - x2APIC (leaf 1 ECX[21]): the VM's local APIC is an xAPIC only
//!   (`crate::vm::lapic`); the local APIC (EDX[9]) and its TSC-deadline
//!   timer (ECX[24]) are shown, and leaf 6 shows only ARAT (the APIC timer
//!   keeps running in every idle state: it is the kernel's), so Linux uses
//!   the "lapic-deadline" clock event device;
//! - VMX and SMX, MONITOR/MWAIT (they exit), PCID/INVPCID, RDTSCP/RDPID
//!   (their VM-execution controls are off), MTRR, MCE/MCA, thermal and
//!   power management, performance monitoring, debug store, TSC_ADJUST,
//!   speculation-control and capability MSRs (their MSRs are not
//!   emulated), SGX, PT, PKU, LA57, topology leaves (one CPU, no threads);
//! - the hypervisor bit (leaf 1 ECX[31]) is set and leaves 0x4000_0000 and
//!   up read zero: Linux knows it is virtualised and finds no paravirtual
//!   interface to use.
//!
//! Leaves 0x15 and 0x16 give the TSC rate, so Linux needs no timer to
//! calibrate the TSC; they report the rate of the hardware description
//! (`tsc_khz`), not the processor's own answer, which in Bochs describes a
//! 2.4 GHz part while its TSC counts one tick per instruction (10 MHz).

/// One CPUID answer: EAX, EBX, ECX, EDX.
pub type Registers = [u32; 4];

/// Leaf 1 ECX bits kept: SSE3, PCLMULQDQ, SSSE3, CX16, SSE4.1, SSE4.2,
/// MOVBE, POPCNT, TSC deadline, AES, RDRAND (FMA and F16C need AVX:
/// hidden).
const LEAF1_ECX_KEEP: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 9)
    | (1 << 13)
    | (1 << 19)
    | (1 << 20)
    | (1 << 22)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 30);
/// Leaf 1 ECX: hypervisor present.
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX bits kept: FPU, VME, DE, PSE, TSC, MSR, PAE, CX8, APIC, SEP,
/// PGE, CMOV, PAT, PSE-36, CLFLUSH, MMX, FXSR, SSE, SSE2.
const LEAF1_EDX_KEEP: u32 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 6)
    | (1 << 8)
    | (1 << 9)
    | (1 << 11)
    | (1 << 13)
    | (1 << 15)
    | (1 << 16)
    | (1 << 17)
    | (1 << 19)
    | (1 << 23)
    | (1 << 24)
    | (1 << 25)
    | (1 << 26);
/// Leaf 6 EAX: ARAT (the APIC timer runs in every C-state).
const LEAF6_EAX_ARAT: u32 = 1 << 2;
/// Leaf 7.0 EBX bits kept: FSGSBASE, BMI1, SMEP, BMI2, ERMS, ADX, SMAP,
/// CLFLUSHOPT, CLWB, SHA.
const LEAF7_EBX_KEEP: u32 = (1 << 0)
    | (1 << 3)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 19)
    | (1 << 20)
    | (1 << 23)
    | (1 << 24)
    | (1 << 29);
/// Leaf 7.0 ECX bits kept: UMIP.
const LEAF7_ECX_KEEP: u32 = 1 << 2;
/// Leaf 0x8000_0001 EDX: RDTSCP (hidden).
const EXT1_EDX_RDTSCP: u32 = 1 << 27;

/// The guest's answer to CPUID leaf `leaf`, subleaf `subleaf`, given the
/// processor's answer `raw`.
/// `tsc_khz` is the TSC rate the kernel knows (leaves 0x15 and 0x16).
pub fn filter(leaf: u32, subleaf: u32, raw: Registers, tsc_khz: u64) -> Registers {
    let [eax, ebx, ecx, edx] = raw;
    let mhz = u32::try_from(tsc_khz / 1000).unwrap_or(u32::MAX);
    match leaf {
        0 | 2 | 3 | 0x8000_0000 | 0x8000_0002..=0x8000_0008 => raw,
        // TSC = crystal (ECX, Hz) * EBX / EAX.
        0x15 => [
            1,
            1,
            u32::try_from(tsc_khz.saturating_mul(1000)).unwrap_or(u32::MAX),
            0,
        ],
        // Base, maximum and bus frequency in MHz.
        0x16 => [mhz, mhz, 0, 0],
        // Initial APIC id 0, one logical processor, CLFLUSH size kept.
        1 => [
            eax,
            ebx & 0xffff,
            (ecx & LEAF1_ECX_KEEP) | LEAF1_ECX_HYPERVISOR,
            edx & LEAF1_EDX_KEEP,
        ],
        // Thermal and power management: only "always-running APIC timer".
        6 => [LEAF6_EAX_ARAT, 0, 0, 0],
        // Cache parameters: one core, no sharing.
        4 => [eax & 0x3ff, ebx, ecx, edx],
        7 if subleaf == 0 => [0, ebx & LEAF7_EBX_KEEP, ecx & LEAF7_ECX_KEEP, 0],
        0x8000_0001 => [eax, ebx, ecx, edx & !EXT1_EDX_RDTSCP],
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Registers = [u32::MAX; 4];
    const KHZ: u64 = 10_000;

    #[test]
    fn extended_state_and_fsrm_are_hidden() {
        let one = filter(1, 0, ALL, KHZ);
        assert_eq!(one[2] & (1 << 26), 0, "XSAVE");
        assert_eq!(one[2] & (1 << 27), 0, "OSXSAVE");
        assert_eq!(one[2] & (1 << 28), 0, "AVX");
        assert_eq!(one[2] & (1 << 21), 0, "x2APIC");
        assert_ne!(one[2] & (1 << 24), 0, "TSC deadline");
        assert_eq!(one[2] & (1 << 5), 0, "VMX");
        assert_ne!(one[2] & LEAF1_ECX_HYPERVISOR, 0);
        assert_ne!(one[3] & (1 << 9), 0, "APIC");
        assert_eq!(filter(6, 0, ALL, KHZ), [LEAF6_EAX_ARAT, 0, 0, 0]);
        assert_eq!(one[3] & (1 << 12), 0, "MTRR");
        assert_eq!(one[3] & (1 << 28), 0, "HTT");
        assert_eq!(one[1] >> 16, 0, "one logical CPU, APIC id 0");
        let seven = filter(7, 0, ALL, KHZ);
        assert_eq!(seven[3] & (1 << 4), 0, "FSRM");
        assert_eq!(seven[1] & (1 << 5), 0, "AVX2");
        assert_eq!(seven[1] & (1 << 10), 0, "INVPCID");
        assert_ne!(seven[1] & (1 << 9), 0, "ERMS stays");
        assert_eq!(filter(7, 1, ALL, KHZ), [0; 4]);
        assert_eq!(filter(0xd, 0, ALL, KHZ), [0; 4]);
        assert_eq!(filter(0xd, 1, ALL, KHZ), [0; 4]);
        assert_eq!(filter(0xb, 0, ALL, KHZ), [0; 4]);
        assert_eq!(filter(0x8000_0001, 0, ALL, KHZ)[3] & EXT1_EDX_RDTSCP, 0);
    }

    #[test]
    fn the_vendor_passes_and_the_tsc_rate_is_the_kernels() {
        let raw = [0x1f, 0x756e_6547, 0x6c65_746e, 0x4965_6e69];
        assert_eq!(filter(0, 0, raw, KHZ), raw);
        assert_eq!(
            filter(0x15, 0, [2, 100, 38_400_000, 0], KHZ),
            [1, 1, 10_000_000, 0]
        );
        assert_eq!(filter(0x16, 0, [2400, 2400, 100, 0], KHZ), [10, 10, 0, 0]);
    }

    #[test]
    fn hypervisor_leaves_are_empty() {
        assert_eq!(filter(0x4000_0000, 0, ALL, KHZ), [0; 4]);
        assert_eq!(filter(0x4000_0001, 0, ALL, KHZ), [0; 4]);
    }
}
