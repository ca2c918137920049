//! MOV to and from control and debug registers in a VM.
//!
//! The `vm` profile owns CR0.PE/NE/PG/CD/NW and CR4.VMXE/SMXE/OSXSAVE/PKE/
//! CET/PKS (see the
//! composer's `profile::vm`) and makes debug-register accesses exit (DR0-3
//! and DR6 are not in the VMCS, so a guest's breakpoints would reach other
//! subjects); CR8 does not exit: with the TPR shadow it is the VM's virtual
//! TPR ([`crate::vm::lapic`]). [`cr_write`] decides a MOV to CR0/CR4 that
//! touched an owned bit; debug registers read as after reset and ignore
//! writes ([`dr_read`]).

/// CR0.PE.
const CR0_PE: u64 = 1;
/// CR0.NE.
const CR0_NE: u64 = 1 << 5;
/// CR0.NW.
const CR0_NW: u64 = 1 << 29;
/// CR0.CD.
const CR0_CD: u64 = 1 << 30;
/// CR0.PG.
const CR0_PG: u64 = 1 << 31;
/// CR4.VMXE.
const CR4_VMXE: u64 = 1 << 13;
/// CR4.SMXE.
const CR4_SMXE: u64 = 1 << 14;
/// CR4 bits of features the VM's CPUID view hides (OSXSAVE, PKE, CET,
/// PKS): their state is not kept per subject, so a guest may not turn
/// them on (a processor without them raises #GP).
const CR4_HIDDEN: u64 = (1 << 18) | (1 << 22) | (1 << 23) | (1 << 24);

/// A control-register access exit, decoded from its qualification (SDM
/// Table 28-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrAccess {
    /// Control register number.
    pub cr: u8,
    /// 0: MOV to CR, 1: MOV from CR, 2: CLTS, 3: LMSW.
    pub kind: u8,
    /// General-purpose register (0 RAX ... 15 R15).
    pub gpr: u8,
}

impl CrAccess {
    /// Decode `qualification`.
    pub const fn decode(qualification: u64) -> Self {
        Self {
            cr: (qualification & 0xf) as u8,
            kind: ((qualification >> 4) & 3) as u8,
            gpr: ((qualification >> 8) & 0xf) as u8,
        }
    }
}

/// A debug-register access exit (SDM Table 28-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrAccess {
    /// Debug register number.
    pub dr: u8,
    /// MOV from DR (else to DR).
    pub read: bool,
    /// General-purpose register.
    pub gpr: u8,
}

impl DrAccess {
    /// Decode `qualification`.
    pub const fn decode(qualification: u64) -> Self {
        Self {
            dr: (qualification & 7) as u8,
            read: qualification & (1 << 4) != 0,
            gpr: ((qualification >> 8) & 0xf) as u8,
        }
    }
}

/// What a MOV to CR0 or CR4 does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrWrite {
    /// Set the guest's real register and its read shadow.
    Set {
        /// The value the processor uses.
        real: u64,
        /// The value the guest reads back.
        shadow: u64,
    },
    /// #GP in the guest (what a CPU without VMX/SMX does for CR4.VMXE/SMXE).
    GeneralProtection,
    /// A fault of the subject: it tried to leave paging, protected mode or
    /// native FPU error reporting.
    Forbidden,
}

/// A MOV of `value` to control register `cr` (0 or 4); any other register
/// is forbidden.
pub const fn cr_write(cr: u8, value: u64) -> CrWrite {
    match cr {
        0 if value & (CR0_PE | CR0_NE | CR0_PG) != (CR0_PE | CR0_NE | CR0_PG) => CrWrite::Forbidden,
        // The guest may think it disabled caching; the memory type stays
        // the EPT's.
        0 => CrWrite::Set {
            real: value & !(CR0_CD | CR0_NW),
            shadow: value,
        },
        4 if value & (CR4_VMXE | CR4_SMXE | CR4_HIDDEN) != 0 => CrWrite::GeneralProtection,
        4 => CrWrite::Set {
            real: value | CR4_VMXE,
            shadow: value,
        },
        _ => CrWrite::Forbidden,
    }
}

/// The value a MOV from debug register `dr` reads: DR6 and DR7 at their
/// reset values, the others 0.
pub const fn dr_read(dr: u8) -> u64 {
    match dr {
        4 | 6 => 0xffff_0ff0,
        5 | 7 => 0x400,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(
            CrAccess::decode(0x304),
            CrAccess {
                cr: 4,
                kind: 0,
                gpr: 3
            }
        );
        assert_eq!(
            DrAccess::decode(0x517),
            DrAccess {
                dr: 7,
                read: true,
                gpr: 5
            }
        );
    }

    #[test]
    fn cache_disable_lives_in_the_shadow_only() {
        let cr0 = 0x8005_0033 | CR0_CD;
        assert_eq!(
            cr_write(0, cr0),
            CrWrite::Set {
                real: 0x8005_0033,
                shadow: cr0
            }
        );
    }

    #[test]
    fn leaving_long_mode_or_enabling_vmx_is_refused() {
        assert_eq!(cr_write(0, 0x33), CrWrite::Forbidden);
        assert_eq!(cr_write(0, 0x8000_0011), CrWrite::Forbidden);
        assert_eq!(cr_write(4, 0x20 | CR4_VMXE), CrWrite::GeneralProtection);
        for hidden in [18, 22, 23, 24] {
            assert_eq!(
                cr_write(4, 0x20 | (1 << hidden)),
                CrWrite::GeneralProtection
            );
        }
        assert_eq!(
            cr_write(4, 0x6f0),
            CrWrite::Set {
                real: 0x6f0 | CR4_VMXE,
                shadow: 0x6f0
            }
        );
        assert_eq!(cr_write(3, 0), CrWrite::Forbidden);
    }

    #[test]
    fn debug_registers_read_their_reset_values() {
        assert_eq!(dr_read(7), 0x400);
        assert_eq!(dr_read(6), 0xffff_0ff0);
        assert_eq!(dr_read(0), 0);
    }
}
