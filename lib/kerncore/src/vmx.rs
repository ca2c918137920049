//! VT-x capability checks and exit-reason names, as pure functions.
//!
//! The arch layer reads the VMX capability MSRs (SDM Vol. 3D, appendix A)
//! and hands the raw values here; this module decides whether every control
//! a subject's spec asks for is supported and computes the final control
//! words. Keeping the decision here means it is unit-tested on the host with
//! the values a real (or emulated) CPU reports, and the arch layer only
//! writes what it is given.
//!
//! A control the CPU cannot provide is reported as a [`Feature`] whose
//! `Display` text is the name used in the kernel's
//! `septum: cannot start: VMX feature missing: <feature>` line.

use core::fmt;

use crate::spec::VmxControls;

/// IA32_VMX_BASIC bit 55: the TRUE_* control capability MSRs exist.
pub const BASIC_TRUE_CONTROLS: u64 = 1 << 55;

/// Primary processor-based control "activate secondary controls" (SDM 25.6.2).
pub const PROC_SECONDARY_CONTROLS: u32 = 1 << 31;
/// Pin-based control "activate VMX-preemption timer" (SDM 25.6.1).
pub const PIN_PREEMPTION_TIMER: u32 = 1 << 6;
/// Secondary control "enable EPT" (SDM 25.6.2).
pub const PROC2_EPT: u32 = 1 << 1;
/// Secondary control "unrestricted guest".
pub const PROC2_UNRESTRICTED_GUEST: u32 = 1 << 7;

/// IA32_VMX_EPT_VPID_CAP bits (SDM Vol. 3D, A.10).
pub mod ept_cap {
    /// Page-walk length of 4 is supported.
    pub const WALK_4: u64 = 1 << 6;
    /// Uncacheable EPT paging-structure memory type.
    pub const MEMORY_TYPE_UC: u64 = 1 << 8;
    /// Write-back EPT paging-structure memory type.
    pub const MEMORY_TYPE_WB: u64 = 1 << 14;
    /// INVEPT is supported.
    pub const INVEPT: u64 = 1 << 20;
    /// Accessed and dirty flags for EPT.
    pub const ACCESSED_DIRTY: u64 = 1 << 21;
    /// Single-context INVEPT.
    pub const INVEPT_SINGLE_CONTEXT: u64 = 1 << 25;
}

/// CR0.PE.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.VMXE.
pub const CR4_VMXE: u64 = 1 << 13;

/// Which control word a bit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlWord {
    /// Pin-based VM-execution controls.
    Pin,
    /// Primary processor-based VM-execution controls.
    Proc,
    /// Secondary processor-based VM-execution controls.
    Proc2,
    /// VM-exit controls.
    Exit,
    /// VM-entry controls.
    Entry,
}

/// A VMX feature the CPU lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// A feature with a well-known name (`"EPT"`, `"VPID"`, ...).
    Named(&'static str),
    /// A control bit without a well-known name.
    ControlBit {
        /// The control word.
        word: ControlWord,
        /// Bit number (0..31).
        bit: u8,
    },
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Named(name) => f.write_str(name),
            Self::ControlBit { word, bit } => {
                let word = match word {
                    ControlWord::Pin => "pin-based",
                    ControlWord::Proc => "primary processor-based",
                    ControlWord::Proc2 => "secondary processor-based",
                    ControlWord::Exit => "VM-exit",
                    ControlWord::Entry => "VM-entry",
                };
                write!(f, "{word} control bit {bit}")
            }
        }
    }
}

/// The name of one control bit, as printed when it is missing.
pub fn control_feature(word: ControlWord, bit: u8) -> Feature {
    let name = match (word, bit) {
        (ControlWord::Pin, 0) => "external-interrupt exiting",
        (ControlWord::Pin, 3) => "NMI exiting",
        (ControlWord::Pin, 5) => "virtual NMIs",
        (ControlWord::Pin, 6) => "VMX-preemption timer",
        (ControlWord::Pin, 7) => "posted interrupts",
        (ControlWord::Proc, 2) => "interrupt-window exiting",
        (ControlWord::Proc, 3) => "TSC offsetting",
        (ControlWord::Proc, 7) => "HLT exiting",
        (ControlWord::Proc, 9) => "INVLPG exiting",
        (ControlWord::Proc, 10) => "MWAIT exiting",
        (ControlWord::Proc, 11) => "RDPMC exiting",
        (ControlWord::Proc, 12) => "RDTSC exiting",
        (ControlWord::Proc, 15) => "CR3-load exiting",
        (ControlWord::Proc, 16) => "CR3-store exiting",
        (ControlWord::Proc, 19) => "CR8-load exiting",
        (ControlWord::Proc, 20) => "CR8-store exiting",
        (ControlWord::Proc, 21) => "TPR shadow",
        (ControlWord::Proc, 22) => "NMI-window exiting",
        (ControlWord::Proc, 23) => "MOV-DR exiting",
        (ControlWord::Proc, 24) => "unconditional I/O exiting",
        (ControlWord::Proc, 25) => "I/O bitmaps",
        (ControlWord::Proc, 27) => "monitor trap flag",
        (ControlWord::Proc, 28) => "MSR bitmaps",
        (ControlWord::Proc, 29) => "MONITOR exiting",
        (ControlWord::Proc, 30) => "PAUSE exiting",
        (ControlWord::Proc, 31) => "secondary controls",
        (ControlWord::Proc2, 0) => "virtualize APIC accesses",
        (ControlWord::Proc2, 1) => "EPT",
        (ControlWord::Proc2, 2) => "descriptor-table exiting",
        (ControlWord::Proc2, 3) => "RDTSCP",
        (ControlWord::Proc2, 4) => "virtualize x2APIC mode",
        (ControlWord::Proc2, 5) => "VPID",
        (ControlWord::Proc2, 6) => "WBINVD exiting",
        (ControlWord::Proc2, 7) => "unrestricted guest",
        (ControlWord::Proc2, 8) => "APIC-register virtualization",
        (ControlWord::Proc2, 9) => "virtual-interrupt delivery",
        (ControlWord::Proc2, 10) => "PAUSE-loop exiting",
        (ControlWord::Proc2, 11) => "RDRAND exiting",
        (ControlWord::Proc2, 12) => "INVPCID",
        (ControlWord::Proc2, 13) => "VM functions",
        (ControlWord::Proc2, 14) => "VMCS shadowing",
        (ControlWord::Proc2, 16) => "RDSEED exiting",
        (ControlWord::Proc2, 17) => "page-modification logging",
        (ControlWord::Proc2, 18) => "EPT-violation #VE",
        (ControlWord::Proc2, 20) => "XSAVES/XRSTORS",
        (ControlWord::Proc2, 22) => "mode-based execute control for EPT",
        (ControlWord::Proc2, 25) => "TSC scaling",
        (ControlWord::Exit, 2) => "save debug controls",
        (ControlWord::Exit, 9) => "host address-space size",
        (ControlWord::Exit, 12) => "load IA32_PERF_GLOBAL_CTRL on exit",
        (ControlWord::Exit, 15) => "acknowledge interrupt on exit",
        (ControlWord::Exit, 18) => "save IA32_PAT on exit",
        (ControlWord::Exit, 19) => "load IA32_PAT on exit",
        (ControlWord::Exit, 20) => "save IA32_EFER on exit",
        (ControlWord::Exit, 21) => "load IA32_EFER on exit",
        (ControlWord::Exit, 22) => "save VMX-preemption timer value",
        (ControlWord::Entry, 2) => "load debug controls",
        (ControlWord::Entry, 9) => "IA-32e mode guest",
        (ControlWord::Entry, 13) => "load IA32_PERF_GLOBAL_CTRL on entry",
        (ControlWord::Entry, 14) => "load IA32_PAT on entry",
        (ControlWord::Entry, 15) => "load IA32_EFER on entry",
        _ => return Feature::ControlBit { word, bit },
    };
    Feature::Named(name)
}

/// One control capability MSR, split (SDM Vol. 3D, A.3-A.5): bits 31:0 are
/// the allowed 0-settings (a set bit must be 1), bits 63:32 the allowed
/// 1-settings (a clear bit must be 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlCaps {
    /// Bits that must be 1.
    pub must_be_one: u32,
    /// Bits that may be 1.
    pub may_be_one: u32,
}

impl ControlCaps {
    /// Split a raw capability MSR value.
    pub const fn from_msr(value: u64) -> Self {
        Self {
            must_be_one: value as u32,
            may_be_one: (value >> 32) as u32,
        }
    }

    /// `desired | must-be-one`, or the first desired bit the CPU cannot set.
    pub fn resolve(self, word: ControlWord, desired: u32) -> Result<u32, Feature> {
        let unsupported = desired & !self.may_be_one;
        if unsupported != 0 {
            // trailing_zeros of a non-zero u32 is at most 31.
            let bit = unsupported.trailing_zeros() as u8;
            return Err(control_feature(word, bit));
        }
        Ok(desired | self.must_be_one)
    }
}

/// The raw VMX capability MSR values the kernel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxCaps {
    /// IA32_VMX_BASIC.
    pub basic: u64,
    /// Pin-based controls (TRUE_ variant when BASIC[55]).
    pub pin: u64,
    /// Primary processor-based controls (TRUE_ variant when BASIC[55]).
    pub proc: u64,
    /// IA32_VMX_PROCBASED_CTLS2 (0 when secondary controls are not allowed).
    pub proc2: u64,
    /// VM-exit controls (TRUE_ variant when BASIC[55]).
    pub exit: u64,
    /// VM-entry controls (TRUE_ variant when BASIC[55]).
    pub entry: u64,
    /// IA32_VMX_EPT_VPID_CAP (0 when not available).
    pub ept_vpid: u64,
    /// IA32_VMX_MISC.
    pub misc: u64,
    /// IA32_VMX_CR0_FIXED0.
    pub cr0_fixed0: u64,
    /// IA32_VMX_CR0_FIXED1.
    pub cr0_fixed1: u64,
    /// IA32_VMX_CR4_FIXED0.
    pub cr4_fixed0: u64,
    /// IA32_VMX_CR4_FIXED1.
    pub cr4_fixed1: u64,
}

/// Final control words, ready to be written into a VMCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalControls {
    /// Pin-based.
    pub pin: u32,
    /// Primary processor-based.
    pub proc: u32,
    /// Secondary processor-based.
    pub proc2: u32,
    /// VM-exit.
    pub exit: u32,
    /// VM-entry.
    pub entry: u32,
}

impl VmxCaps {
    /// VMCS revision identifier (IA32_VMX_BASIC[30:0]).
    pub const fn revision_id(&self) -> u32 {
        (self.basic as u32) & 0x7fff_ffff
    }

    /// Bytes the CPU needs for a VMXON or VMCS region (IA32_VMX_BASIC[44:32]).
    pub const fn region_size(&self) -> u64 {
        (self.basic >> 32) & 0x1fff
    }

    /// Shift between the TSC and the VMX-preemption timer
    /// (IA32_VMX_MISC[4:0]): the timer counts down once every 2^rate TSC
    /// cycles.
    pub const fn preemption_timer_rate(&self) -> u32 {
        (self.misc & 0x1f) as u32
    }

    /// Check every control a subject asks for, and the EPT features its EPT
    /// pointer implies; return the control words with the must-be-one bits
    /// added.
    pub fn resolve(&self, want: &VmxControls, eptp: u64) -> Result<FinalControls, Feature> {
        let pin = ControlCaps::from_msr(self.pin).resolve(ControlWord::Pin, want.pin)?;
        let proc = ControlCaps::from_msr(self.proc).resolve(ControlWord::Proc, want.proc)?;
        // Secondary controls only take effect when the primary control
        // activates them; the capability MSR is 0 when it cannot.
        let proc2 = if proc & PROC_SECONDARY_CONTROLS != 0 {
            ControlCaps::from_msr(self.proc2).resolve(ControlWord::Proc2, want.proc2)?
        } else if want.proc2 != 0 {
            return Err(control_feature(ControlWord::Proc, 31));
        } else {
            0
        };
        let exit = ControlCaps::from_msr(self.exit).resolve(ControlWord::Exit, want.exit)?;
        let entry = ControlCaps::from_msr(self.entry).resolve(ControlWord::Entry, want.entry)?;
        if proc2 & PROC2_EPT != 0 {
            self.check_ept(eptp)?;
        }
        Ok(FinalControls {
            pin,
            proc,
            proc2,
            exit,
            entry,
        })
    }

    /// The EPT features the kernel and an EPT pointer rely on (SDM 25.6.11):
    /// the walk length and paging-structure memory type encoded in the
    /// pointer, A/D flags if it enables them, and single-context INVEPT,
    /// which the kernel issues for every subject before its first entry.
    pub fn check_ept(&self, eptp: u64) -> Result<(), Feature> {
        let cap = self.ept_vpid;
        let walk_length = (eptp >> 3) & 7;
        if walk_length != 3 || cap & ept_cap::WALK_4 == 0 {
            return Err(Feature::Named("EPT 4-level walk"));
        }
        match eptp & 7 {
            6 if cap & ept_cap::MEMORY_TYPE_WB == 0 => {
                return Err(Feature::Named("EPT write-back memory type"));
            }
            0 if cap & ept_cap::MEMORY_TYPE_UC == 0 => {
                return Err(Feature::Named("EPT uncacheable memory type"));
            }
            0 | 6 => {}
            _ => return Err(Feature::Named("EPT paging-structure memory type")),
        }
        if eptp & (1 << 6) != 0 && cap & ept_cap::ACCESSED_DIRTY == 0 {
            return Err(Feature::Named("EPT accessed and dirty flags"));
        }
        if cap & ept_cap::INVEPT == 0 {
            return Err(Feature::Named("INVEPT"));
        }
        if cap & ept_cap::INVEPT_SINGLE_CONTEXT == 0 {
            return Err(Feature::Named("INVEPT single-context"));
        }
        Ok(())
    }

    /// CR0 for VMX root operation: the current value adjusted to the fixed
    /// bits (SDM 24.8).
    pub const fn root_cr0(&self, current: u64) -> u64 {
        (current | self.cr0_fixed0) & self.cr0_fixed1
    }

    /// CR4 for VMX root operation: CR4.VMXE set, fixed bits applied.
    pub const fn root_cr4(&self, current: u64) -> u64 {
        (current | CR4_VMXE | self.cr4_fixed0) & self.cr4_fixed1
    }

    /// Guest CR0 from the spec's value, adjusted to the fixed bits; with
    /// unrestricted guest, PE and PG need not be set (SDM 26.3.1.1).
    pub const fn guest_cr0(&self, spec_cr0: u64, proc2: u32) -> u64 {
        let mut fixed0 = self.cr0_fixed0;
        if proc2 & PROC2_UNRESTRICTED_GUEST != 0 {
            fixed0 &= !(CR0_PE | CR0_PG);
        }
        (spec_cr0 | fixed0) & self.cr0_fixed1
    }

    /// Guest CR4: the spec's value plus VMXE, adjusted to the fixed bits.
    pub const fn guest_cr4(&self, spec_cr4: u64) -> u64 {
        (spec_cr4 | CR4_VMXE | self.cr4_fixed0) & self.cr4_fixed1
    }
}

/// Basic exit reason "exception or NMI".
pub const EXIT_EXCEPTION_OR_NMI: u16 = 0;
/// Basic exit reason "external interrupt".
pub const EXIT_EXTERNAL_INTERRUPT: u16 = 1;
/// Basic exit reason "interrupt window".
pub const EXIT_INTERRUPT_WINDOW: u16 = 7;
/// Basic exit reason "VMCALL".
pub const EXIT_VMCALL: u16 = 18;
/// Basic exit reason "I/O instruction".
pub const EXIT_IO_INSTRUCTION: u16 = 30;
/// Basic exit reason "EPT violation".
pub const EXIT_EPT_VIOLATION: u16 = 48;
/// Basic exit reason "EPT misconfiguration".
pub const EXIT_EPT_MISCONFIGURATION: u16 = 49;
/// Basic exit reason "VMX-preemption timer expired".
pub const EXIT_PREEMPTION_TIMER: u16 = 52;

/// Human-readable text of a basic exit reason (SDM Vol. 3D, appendix C),
/// as printed in fault reports.
pub const fn exit_reason_text(reason: u16) -> &'static str {
    match reason {
        0 => "exception or NMI",
        1 => "external interrupt",
        2 => "triple fault",
        3 => "INIT signal",
        4 => "start-up IPI",
        7 => "interrupt window",
        8 => "NMI window",
        9 => "task switch",
        10 => "CPUID",
        11 => "GETSEC",
        12 => "HLT",
        13 => "INVD",
        14 => "INVLPG",
        15 => "RDPMC",
        16 => "RDTSC",
        17 => "RSM",
        18 => "VMCALL",
        19..=27 | 50 | 53 | 59 => "VMX instruction",
        28 => "control-register access",
        29 => "MOV DR",
        30 => "I/O instruction",
        31 => "RDMSR",
        32 => "WRMSR",
        33 => "VM-entry failure: invalid guest state",
        34 => "VM-entry failure: MSR loading",
        36 => "MWAIT",
        37 => "monitor trap flag",
        39 => "MONITOR",
        40 => "PAUSE",
        41 => "VM-entry failure: machine-check event",
        43 => "TPR below threshold",
        44 => "APIC access",
        45 => "virtualized EOI",
        46 | 47 => "descriptor-table access",
        48 => "EPT violation",
        49 => "EPT misconfiguration",
        51 => "RDTSCP",
        52 => "VMX-preemption timer",
        54 => "WBINVD",
        55 => "XSETBV",
        56 => "APIC write",
        57 => "RDRAND",
        58 => "INVPCID",
        60 => "ENCLS",
        61 => "RDSEED",
        62 => "page-modification log full",
        63 => "XSAVES",
        64 => "XRSTORS",
        _ => "unknown exit reason",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// The capability MSR values Bochs 2.7 (cpu model tigerlake) reports,
    /// as read by the kernel at boot there.
    fn bochs_like() -> VmxCaps {
        VmxCaps {
            basic: 0x01d8_1000_0000_0004,
            pin: 0x0000_007f_0000_0016,
            proc: 0xfff9_fffe_0400_6172,
            proc2: 0x0297_7fff_0000_0000,
            exit: 0x107f_ffff_0003_6dfb,
            entry: 0x0010_ffff_0000_11fb,
            ept_vpid: 0x0f01_06b3_4141,
            misc: 0x6004_01e0,
            cr0_fixed0: 0x8000_0021,
            cr0_fixed1: 0xffff_ffff,
            cr4_fixed0: 0x2000,
            cr4_fixed1: 0x00f7_2fff,
        }
    }

    fn native_controls() -> VmxControls {
        VmxControls {
            pin: 1 | (1 << 3) | (1 << 6),
            proc: (1 << 7) | (1 << 25) | (1 << 28) | (1 << 31),
            proc2: PROC2_EPT | (1 << 5),
            exit: (1 << 9) | (1 << 15) | (1 << 20) | (1 << 21),
            entry: (1 << 9) | (1 << 15),
            exception_bitmap: u32::MAX,
            cr0_mask: u64::MAX,
            cr4_mask: u64::MAX,
        }
    }

    const EPTP: u64 = 0x40_0000 | (3 << 3) | 6;

    #[test]
    fn must_be_one_bits_are_added() {
        let caps = bochs_like();
        let fin = caps.resolve(&native_controls(), EPTP).unwrap();
        assert_eq!(fin.pin, native_controls().pin | 0x16);
        assert_eq!(fin.proc & 0x0400_6172, 0x0400_6172);
        assert_eq!(fin.exit & 0x0003_6dfb, 0x0003_6dfb);
        assert_eq!(fin.proc2, native_controls().proc2);
    }

    #[test]
    fn missing_preemption_timer_is_named() {
        let mut caps = bochs_like();
        caps.pin &= !(1u64 << (32 + 6));
        let err = caps.resolve(&native_controls(), EPTP).unwrap_err();
        assert_eq!(err, Feature::Named("VMX-preemption timer"));
    }

    #[test]
    fn missing_ept_and_vpid_are_named() {
        let mut caps = bochs_like();
        caps.proc2 &= !(1u64 << (32 + 1));
        assert_eq!(
            caps.resolve(&native_controls(), EPTP).unwrap_err(),
            Feature::Named("EPT")
        );
        let mut caps = bochs_like();
        caps.proc2 &= !(1u64 << (32 + 5));
        assert_eq!(
            caps.resolve(&native_controls(), EPTP).unwrap_err(),
            Feature::Named("VPID")
        );
    }

    #[test]
    fn secondary_controls_without_activation_are_refused() {
        let mut want = native_controls();
        want.proc &= !PROC_SECONDARY_CONTROLS;
        let err = bochs_like().resolve(&want, EPTP).unwrap_err();
        assert_eq!(err, Feature::Named("secondary controls"));
    }

    #[test]
    fn ept_capabilities_are_checked() {
        let mut caps = bochs_like();
        caps.ept_vpid &= !ept_cap::WALK_4;
        assert_eq!(
            caps.check_ept(EPTP).unwrap_err(),
            Feature::Named("EPT 4-level walk")
        );
        let mut caps = bochs_like();
        caps.ept_vpid &= !ept_cap::MEMORY_TYPE_WB;
        assert_eq!(
            caps.check_ept(EPTP).unwrap_err(),
            Feature::Named("EPT write-back memory type")
        );
        let mut caps = bochs_like();
        caps.ept_vpid &= !ept_cap::INVEPT_SINGLE_CONTEXT;
        assert_eq!(
            caps.check_ept(EPTP).unwrap_err(),
            Feature::Named("INVEPT single-context")
        );
        let mut caps = bochs_like();
        caps.ept_vpid &= !ept_cap::ACCESSED_DIRTY;
        assert!(caps.check_ept(EPTP).is_ok());
        assert_eq!(
            caps.check_ept(EPTP | (1 << 6)).unwrap_err(),
            Feature::Named("EPT accessed and dirty flags")
        );
        assert_eq!(
            bochs_like()
                .check_ept(0x40_0000 | (2 << 3) | 6)
                .unwrap_err(),
            Feature::Named("EPT 4-level walk")
        );
    }

    #[test]
    fn unnamed_bits_name_their_word() {
        let caps = ControlCaps {
            must_be_one: 0,
            may_be_one: 0,
        };
        let err = caps.resolve(ControlWord::Exit, 1 << 30).unwrap_err();
        assert_eq!(
            err,
            Feature::ControlBit {
                word: ControlWord::Exit,
                bit: 30
            }
        );
        let mut text = std::string::String::new();
        core::fmt::write(&mut text, format_args!("{err}")).unwrap();
        assert_eq!(text, "VM-exit control bit 30");
    }

    #[test]
    fn fixed_bits_and_revision() {
        let caps = bochs_like();
        assert_eq!(caps.revision_id(), 4);
        assert_eq!(caps.region_size(), 0x1000);
        assert_eq!(caps.root_cr4(0x20), 0x2020);
        assert_eq!(caps.guest_cr0(0x8000_0033, 0), 0x8000_0033);
        assert_eq!(caps.guest_cr0(0x10, PROC2_UNRESTRICTED_GUEST), 0x30);
        assert_eq!(caps.guest_cr4(0x20), 0x2020);
    }

    #[test]
    fn exit_reason_texts_match_the_message_contract() {
        assert_eq!(exit_reason_text(48), "EPT violation");
        assert_eq!(exit_reason_text(30), "I/O instruction");
        assert_eq!(exit_reason_text(0), "exception or NMI");
        assert_eq!(exit_reason_text(31), "RDMSR");
        assert_eq!(exit_reason_text(32), "WRMSR");
        assert_eq!(exit_reason_text(28), "control-register access");
        assert_eq!(exit_reason_text(2), "triple fault");
        assert_eq!(exit_reason_text(12), "HLT");
        assert_eq!(exit_reason_text(26), "VMX instruction");
        assert_eq!(exit_reason_text(999), "unknown exit reason");
    }
}
