//! The VMX bits the composer can ask for, each a named constant with the
//! SDM section that defines it (Intel SDM Vol. 3C), and the EPT pointer
//! flags.
//!
//! These are definitions, not choices: which bits a subject gets is decided
//! by its profile ([`crate::profile`]).

/// Pin-based VM-execution controls (SDM 25.6.1, Table 25-5).
pub mod pin {
    /// External-interrupt exiting.
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
    /// NMI exiting.
    pub const NMI_EXITING: u32 = 1 << 3;
    /// Activate VMX-preemption timer.
    pub const ACTIVATE_PREEMPTION_TIMER: u32 = 1 << 6;
}

/// Primary processor-based VM-execution controls (SDM 25.6.2, Table 25-6).
pub mod proc {
    /// HLT exiting.
    pub const HLT_EXITING: u32 = 1 << 7;
    /// INVLPG exiting.
    pub const INVLPG_EXITING: u32 = 1 << 9;
    /// MWAIT exiting.
    pub const MWAIT_EXITING: u32 = 1 << 10;
    /// RDPMC exiting.
    pub const RDPMC_EXITING: u32 = 1 << 11;
    /// CR3-load exiting.
    pub const CR3_LOAD_EXITING: u32 = 1 << 15;
    /// CR3-store exiting.
    pub const CR3_STORE_EXITING: u32 = 1 << 16;
    /// CR8-load exiting.
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    /// CR8-store exiting.
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    /// Use TPR shadow (the virtual-APIC page).
    pub const USE_TPR_SHADOW: u32 = 1 << 21;
    /// MOV-DR exiting.
    pub const MOV_DR_EXITING: u32 = 1 << 23;
    /// Unconditional I/O exiting (left clear: the I/O bitmaps decide).
    pub const UNCONDITIONAL_IO_EXITING: u32 = 1 << 24;
    /// Use I/O bitmaps.
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    /// Use MSR bitmaps.
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    /// MONITOR exiting.
    pub const MONITOR_EXITING: u32 = 1 << 29;
    /// Activate secondary controls.
    pub const ACTIVATE_SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls (SDM 25.6.2, Table 25-7).
pub mod proc2 {
    /// Virtualize APIC accesses (the APIC-access page).
    pub const VIRTUALIZE_APIC_ACCESSES: u32 = 1 << 0;
    /// Enable EPT.
    pub const ENABLE_EPT: u32 = 1 << 1;
    /// Descriptor-table exiting.
    pub const DESCRIPTOR_TABLE_EXITING: u32 = 1 << 2;
    /// Enable VPID.
    pub const ENABLE_VPID: u32 = 1 << 5;
    /// WBINVD exiting.
    pub const WBINVD_EXITING: u32 = 1 << 6;
    /// APIC-register virtualization.
    pub const APIC_REGISTER_VIRTUALIZATION: u32 = 1 << 8;
    /// Virtual-interrupt delivery.
    pub const VIRTUAL_INTERRUPT_DELIVERY: u32 = 1 << 9;
}

/// Primary VM-exit controls (SDM 25.7.1, Table 25-13).
pub mod exit {
    /// Host address-space size (64-bit host).
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    /// Acknowledge interrupt on exit.
    pub const ACK_INTERRUPT_ON_EXIT: u32 = 1 << 15;
    /// Save IA32_PAT on exit.
    pub const SAVE_IA32_PAT: u32 = 1 << 18;
    /// Load IA32_PAT on exit.
    pub const LOAD_IA32_PAT: u32 = 1 << 19;
    /// Save IA32_EFER on exit.
    pub const SAVE_IA32_EFER: u32 = 1 << 20;
    /// Load IA32_EFER.
    pub const LOAD_IA32_EFER: u32 = 1 << 21;
}

/// VM-entry controls (SDM 25.8.1, Table 25-15).
pub mod entry {
    /// IA-32e mode guest.
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    /// Load IA32_EFER.
    pub const LOAD_IA32_EFER: u32 = 1 << 15;
    /// Load IA32_PAT on entry.
    pub const LOAD_IA32_PAT: u32 = 1 << 14;
}

/// Control register and EFER bits (SDM Vol. 3A 2.5, 2.2.1).
pub mod cr {
    /// CR0.PE: protected mode.
    pub const CR0_PE: u64 = 1 << 0;
    /// CR0.MP: monitor coprocessor.
    pub const CR0_MP: u64 = 1 << 1;
    /// CR0.ET: extension type.
    pub const CR0_ET: u64 = 1 << 4;
    /// CR0.NE: native FPU errors.
    pub const CR0_NE: u64 = 1 << 5;
    /// CR0.WP: supervisor writes honour read-only pages.
    pub const CR0_WP: u64 = 1 << 16;
    /// CR0.PG: paging.
    pub const CR0_PG: u64 = 1 << 31;
    /// CR0.NW (not write-through).
    pub const CR0_NW: u64 = 1 << 29;
    /// CR0.CD (cache disable).
    pub const CR0_CD: u64 = 1 << 30;
    /// CR4.VMXE (VMX enable).
    pub const CR4_VMXE: u64 = 1 << 13;
    /// CR4.SMXE (SMX enable).
    pub const CR4_SMXE: u64 = 1 << 14;
    /// CR4.PAE.
    pub const CR4_PAE: u64 = 1 << 5;
    /// CR4.OSXSAVE (XSAVE and XCR0 enabled).
    pub const CR4_OSXSAVE: u64 = 1 << 18;
    /// CR4.PKE (protection keys for user pages, PKRU).
    pub const CR4_PKE: u64 = 1 << 22;
    /// CR4.CET (control-flow enforcement).
    pub const CR4_CET: u64 = 1 << 23;
    /// CR4.PKS (protection keys for supervisor pages).
    pub const CR4_PKS: u64 = 1 << 24;
    /// EFER.LME.
    pub const EFER_LME: u64 = 1 << 8;
    /// EFER.LMA.
    pub const EFER_LMA: u64 = 1 << 10;
    /// EFER.NXE.
    pub const EFER_NXE: u64 = 1 << 11;
}

/// EPTP: memory type write-back (bits 2:0 = 6) and a 4-level walk (bits
/// 5:3 = walk length - 1 = 3), SDM 25.6.11. Accessed/dirty flags (bit 6)
/// stay off so the CPU never writes to the EPT.
pub const EPTP_FLAGS: u64 = (3 << 3) | 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values() {
        assert_eq!(EPTP_FLAGS, 0x1e);
    }
}
