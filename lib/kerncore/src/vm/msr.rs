//! What RDMSR and WRMSR do in a VM.
//!
//! Every MSR access of a VM exits (its MSR bitmap is all ones); [`read`]
//! and [`write`] decide, and the arch layer carries the decision out:
//!
//! - the MSRs the VMCS switches (EFER, PAT, FS/GS base, SYSENTER_*) are read
//!   from and written to the guest's VMCS field, after the checks the CPU
//!   would make (a value VM entry would refuse is a #GP instead);
//! - SYSCALL's MSRs (STAR, LSTAR, CSTAR, SFMASK) and KERNEL_GS_BASE are the
//!   real MSRs: SYSCALL and SWAPGS use them without an exit. The kernel
//!   itself never uses them, and native subjects cannot read them (their
//!   bitmaps); a second VM on the same CPU could, which is why the
//!   composer allows one VM per CPU;
//! - a few identification and enable MSRs Linux reads at boot have fixed
//!   values: IA32_MISC_ENABLE (0x1a0) says fast strings on (so Linux keeps
//!   ERMS; the decompressor reads it and must not fault), the microcode
//!   revision (0x8b, which Linux first writes with 0) reads 0, the platform
//!   id (0x17) 0, FEATURE_CONTROL (0x3a) "locked, no VMX", DEBUGCTL 0; the
//!   TSC reads the real TSC;
//! - the local APIC's MSRs (`crate::vm::lapic`): IA32_APIC_BASE (0x1b)
//!   reads 0xFEE0_0900 (xAPIC at the default base, enabled, bootstrap
//!   processor) and every write to it is a fault of the subject (no
//!   relocation, no x2APIC, no disabling: Linux 6.1 on x86-64 never writes
//!   it in xAPIC mode); IA32_TSC_DEADLINE (0x6e0) is the APIC timer's
//!   deadline, read and written through the VM's APIC state;
//! - any other read is a #GP, as for an MSR the CPU does not have (Linux
//!   probes with `rdmsr_safe`);
//! - any other write, or a write of a fixed MSR with a value the VM may not
//!   set, is a fault of the subject, reported and handled by its `onFault`:
//!   a guest writing an MSR it was not given is stopped.

/// IA32_TSC.
pub const TSC: u32 = 0x10;
/// IA32_PLATFORM_ID.
pub const PLATFORM_ID: u32 = 0x17;
/// IA32_FEATURE_CONTROL.
pub const FEATURE_CONTROL: u32 = 0x3a;
/// IA32_BIOS_SIGN_ID (microcode revision).
pub const UCODE_REV: u32 = 0x8b;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1b;
/// IA32_TSC_DEADLINE.
pub const TSC_DEADLINE: u32 = 0x6e0;
/// IA32_SYSENTER_CS.
pub const SYSENTER_CS: u32 = 0x174;
/// IA32_SYSENTER_ESP.
pub const SYSENTER_ESP: u32 = 0x175;
/// IA32_SYSENTER_EIP.
pub const SYSENTER_EIP: u32 = 0x176;
/// IA32_MISC_ENABLE.
pub const MISC_ENABLE: u32 = 0x1a0;
/// IA32_DEBUGCTL.
pub const DEBUGCTL: u32 = 0x1d9;
/// IA32_PAT.
pub const PAT: u32 = 0x277;
/// IA32_EFER.
pub const EFER: u32 = 0xc000_0080;
/// IA32_STAR.
pub const STAR: u32 = 0xc000_0081;
/// IA32_LSTAR.
pub const LSTAR: u32 = 0xc000_0082;
/// IA32_CSTAR.
pub const CSTAR: u32 = 0xc000_0083;
/// IA32_FMASK.
pub const SFMASK: u32 = 0xc000_0084;
/// IA32_FS_BASE.
pub const FS_BASE: u32 = 0xc000_0100;
/// IA32_GS_BASE.
pub const GS_BASE: u32 = 0xc000_0101;
/// IA32_KERNEL_GS_BASE.
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;

/// MISC_ENABLE as the VM reads it: fast strings (bit 0), branch trace
/// storage and PEBS unavailable (bits 11, 12).
pub const MISC_ENABLE_VALUE: u64 = 1 | (1 << 11) | (1 << 12);
/// FEATURE_CONTROL as the VM reads it: locked, VMX off.
pub const FEATURE_CONTROL_VALUE: u64 = 1;
/// EFER bits a VM may change: SCE (bit 0) and NXE (bit 11); LME and LMA
/// stay set (the VM is in long mode for good).
const EFER_WRITABLE: u64 = 1 | (1 << 11);
/// EFER.LME | EFER.LMA.
const EFER_LONG_MODE: u64 = (1 << 8) | (1 << 10);

/// A guest MSR the VMCS holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestField {
    /// IA32_EFER.
    Efer,
    /// IA32_PAT.
    Pat,
    /// FS base.
    FsBase,
    /// GS base.
    GsBase,
    /// IA32_SYSENTER_CS.
    SysenterCs,
    /// IA32_SYSENTER_ESP.
    SysenterEsp,
    /// IA32_SYSENTER_EIP.
    SysenterEip,
}

/// What a RDMSR does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This value.
    Value(u64),
    /// The guest's VMCS field.
    Field(GuestField),
    /// The real MSR (the same number).
    Real,
    /// The APIC timer's TSC deadline (`crate::vm::lapic::Lapic::deadline`).
    TscDeadline,
    /// A #GP in the guest.
    Fault,
}

/// What a WRMSR does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing (the write is accepted and has no effect).
    Ignore,
    /// Store this value in the guest's VMCS field.
    Field(GuestField, u64),
    /// Write the real MSR (the same number) with the value.
    Real(u64),
    /// Arm the APIC timer for this TSC value
    /// (`crate::vm::lapic::Lapic::set_deadline`).
    TscDeadline(u64),
    /// A #GP in the guest (a value the CPU would refuse).
    GeneralProtection,
    /// A fault of the subject: an MSR it may not write.
    Forbidden,
}

/// Whether `value` is a canonical 48-bit address.
pub const fn canonical(value: u64) -> bool {
    let upper = value >> 47;
    upper == 0 || upper == (1 << 17) - 1
}

/// Whether every byte of `value` is a valid PAT memory type (0, 1, 4-7).
pub fn valid_pat(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|&ty| matches!(ty, 0 | 1 | 4..=7))
}

/// What RDMSR of `msr` does.
pub const fn read(msr: u32) -> Read {
    match msr {
        TSC => Read::Real,
        APIC_BASE => Read::Value(crate::vm::lapic::APIC_BASE_VALUE),
        TSC_DEADLINE => Read::TscDeadline,
        MISC_ENABLE => Read::Value(MISC_ENABLE_VALUE),
        FEATURE_CONTROL => Read::Value(FEATURE_CONTROL_VALUE),
        UCODE_REV | PLATFORM_ID | DEBUGCTL => Read::Value(0),
        EFER => Read::Field(GuestField::Efer),
        PAT => Read::Field(GuestField::Pat),
        FS_BASE => Read::Field(GuestField::FsBase),
        GS_BASE => Read::Field(GuestField::GsBase),
        SYSENTER_CS => Read::Field(GuestField::SysenterCs),
        SYSENTER_ESP => Read::Field(GuestField::SysenterEsp),
        SYSENTER_EIP => Read::Field(GuestField::SysenterEip),
        STAR | LSTAR | CSTAR | SFMASK | KERNEL_GS_BASE => Read::Real,
        _ => Read::Fault,
    }
}

/// What WRMSR of `value` to `msr` does; `efer` is the guest's current EFER.
pub fn write(msr: u32, value: u64, efer: u64) -> Write {
    match msr {
        // Linux writes 0 before reading the microcode revision.
        UCODE_REV if value == 0 => Write::Ignore,
        // Writing back what was read (or clearing bits it may clear) is
        // accepted; nothing it could set does anything here.
        MISC_ENABLE if value & !MISC_ENABLE_VALUE == 0 => Write::Ignore,
        DEBUGCTL if value == 0 => Write::Ignore,
        TSC_DEADLINE => Write::TscDeadline(value),
        EFER => {
            if value & !(EFER_WRITABLE | EFER_LONG_MODE) != 0
                || value & EFER_LONG_MODE != efer & EFER_LONG_MODE
            {
                Write::GeneralProtection
            } else {
                Write::Field(GuestField::Efer, value)
            }
        }
        PAT if valid_pat(value) => Write::Field(GuestField::Pat, value),
        PAT => Write::GeneralProtection,
        FS_BASE | GS_BASE | SYSENTER_ESP | SYSENTER_EIP | LSTAR | CSTAR | KERNEL_GS_BASE
            if !canonical(value) =>
        {
            Write::GeneralProtection
        }
        FS_BASE => Write::Field(GuestField::FsBase, value),
        GS_BASE => Write::Field(GuestField::GsBase, value),
        SYSENTER_ESP => Write::Field(GuestField::SysenterEsp, value),
        SYSENTER_EIP => Write::Field(GuestField::SysenterEip, value),
        SYSENTER_CS if value >> 32 == 0 => Write::Field(GuestField::SysenterCs, value),
        SYSENTER_CS => Write::GeneralProtection,
        SFMASK if value >> 32 != 0 => Write::GeneralProtection,
        STAR | LSTAR | CSTAR | SFMASK | KERNEL_GS_BASE => Write::Real(value),
        _ => Write::Forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: u64 = 0xd00;

    #[test]
    fn misc_enable_says_fast_strings_and_never_faults_a_read() {
        assert_eq!(read(MISC_ENABLE), Read::Value(0x1801));
        assert_eq!(write(MISC_ENABLE, 0x1801, LONG), Write::Ignore);
        assert_eq!(write(MISC_ENABLE, 1 << 22, LONG), Write::Forbidden);
    }

    #[test]
    fn unknown_reads_are_a_gp_and_unknown_writes_a_fault() {
        assert_eq!(read(0x48), Read::Fault);
        assert_eq!(read(0x802), Read::Fault, "no x2APIC registers");
        assert_eq!(write(0x1b, 0xfee0_0900, LONG), Write::Forbidden);
        assert_eq!(write(0x3a, 5, LONG), Write::Forbidden);
        assert_eq!(write(UCODE_REV, 1, LONG), Write::Forbidden);
        assert_eq!(write(TSC, 0, LONG), Write::Forbidden);
    }

    #[test]
    fn vmcs_msrs_are_checked_like_the_cpu_would() {
        assert_eq!(
            write(EFER, LONG | 1, LONG),
            Write::Field(GuestField::Efer, 0xd01)
        );
        assert_eq!(write(EFER, 0x801, LONG), Write::GeneralProtection);
        assert_eq!(
            write(EFER, LONG | (1 << 12), LONG),
            Write::GeneralProtection
        );
        assert_eq!(
            write(PAT, 0x0007_0406_0007_0406, LONG),
            Write::Field(GuestField::Pat, 0x0007_0406_0007_0406)
        );
        assert_eq!(write(PAT, 0x02, LONG), Write::GeneralProtection);
        assert_eq!(
            write(GS_BASE, 0xffff_8880_0000_0000, LONG),
            Write::Field(GuestField::GsBase, 0xffff_8880_0000_0000)
        );
        assert_eq!(
            write(LSTAR, 0x8000_0000_0000, LONG),
            Write::GeneralProtection
        );
        assert_eq!(write(SFMASK, 1 << 32, LONG), Write::GeneralProtection);
        assert_eq!(
            write(LSTAR, 0xffff_ffff_8100_0000, LONG),
            Write::Real(0xffff_ffff_8100_0000)
        );
    }

    #[test]
    fn apic_msrs() {
        assert_eq!(read(APIC_BASE), Read::Value(0xfee0_0900));
        // Every write, the value read included, is a fault: no relocation,
        // no x2APIC, no disable.
        for value in [0xfee0_0900, 0xfee0_0d00, 0xfee0_0000, 0xfed0_0900, 0] {
            assert_eq!(write(APIC_BASE, value, LONG), Write::Forbidden);
        }
        assert_eq!(read(TSC_DEADLINE), Read::TscDeadline);
        for value in [0, 1, u64::MAX] {
            assert_eq!(write(TSC_DEADLINE, value, LONG), Write::TscDeadline(value));
        }
    }

    #[test]
    fn canonical_addresses() {
        assert!(canonical(0x7fff_ffff_ffff));
        assert!(canonical(0xffff_8000_0000_0000));
        assert!(!canonical(0x8000_0000_0000));
        assert!(!canonical(0x0001_0000_0000_0000));
    }
}
