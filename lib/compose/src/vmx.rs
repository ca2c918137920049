//! VMX controls and initial guest state of a native 64-bit subject.
//!
//! These are the values the composer writes into the system spec; the kernel
//! ORs in the must-be-one bits of the capability MSRs and refuses to start if
//! a bit asked for here is not allowed, naming the feature. Every bit is a
//! named constant with the SDM section that defines it (Intel SDM Vol. 3C).
//!
//! The choice of exits follows from the isolation goal: anything a subject
//! could use to observe or change state beyond its own (interrupts, NMIs,
//! control and debug registers, caches, descriptor tables, performance
//! counters, I/O ports and MSRs not granted) exits to the kernel, and the
//! VMX-preemption timer bounds how long it runs.

use septum_kerncore::spec::{Segment, VmxControls};

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
    /// Enable EPT.
    pub const ENABLE_EPT: u32 = 1 << 1;
    /// Descriptor-table exiting.
    pub const DESCRIPTOR_TABLE_EXITING: u32 = 1 << 2;
    /// Enable VPID.
    pub const ENABLE_VPID: u32 = 1 << 5;
    /// WBINVD exiting.
    pub const WBINVD_EXITING: u32 = 1 << 6;
}

/// Primary VM-exit controls (SDM 25.7.1, Table 25-13).
pub mod exit {
    /// Host address-space size (64-bit host).
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    /// Acknowledge interrupt on exit.
    pub const ACK_INTERRUPT_ON_EXIT: u32 = 1 << 15;
    /// Save IA32_EFER.
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
    /// CR4.PAE.
    pub const CR4_PAE: u64 = 1 << 5;
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

/// Guest IA32_PAT: the power-on value (WB, WT, UC-, UC, repeated), SDM Vol. 3A
/// 13.12.4, so the EPT memory type alone decides.
pub const GUEST_PAT: u64 = 0x0007_0406_0007_0406;

/// Controls for every native 64-bit subject. Exception bitmap all ones:
/// every exception exits (a native subject has no IDT of its own). CR0/CR4
/// masks all ones: any change of either exits.
pub const fn native_controls() -> VmxControls {
    VmxControls {
        pin: pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING | pin::ACTIVATE_PREEMPTION_TIMER,
        proc: proc::HLT_EXITING
            | proc::INVLPG_EXITING
            | proc::MWAIT_EXITING
            | proc::RDPMC_EXITING
            | proc::CR3_LOAD_EXITING
            | proc::CR3_STORE_EXITING
            | proc::CR8_LOAD_EXITING
            | proc::CR8_STORE_EXITING
            | proc::MOV_DR_EXITING
            | proc::USE_IO_BITMAPS
            | proc::USE_MSR_BITMAPS
            | proc::MONITOR_EXITING
            | proc::ACTIVATE_SECONDARY_CONTROLS,
        proc2: proc2::ENABLE_EPT
            | proc2::ENABLE_VPID
            | proc2::WBINVD_EXITING
            | proc2::DESCRIPTOR_TABLE_EXITING,
        exit: exit::HOST_ADDRESS_SPACE_SIZE
            | exit::SAVE_IA32_EFER
            | exit::LOAD_IA32_EFER
            | exit::ACK_INTERRUPT_ON_EXIT,
        entry: entry::IA32E_MODE_GUEST | entry::LOAD_IA32_EFER,
        exception_bitmap: u32::MAX,
        cr0_mask: u64::MAX,
        cr4_mask: u64::MAX,
    }
}

/// Guest CR0: protected mode with paging, native FPU errors, write protect.
pub const GUEST_CR0: u64 =
    cr::CR0_PE | cr::CR0_MP | cr::CR0_ET | cr::CR0_NE | cr::CR0_WP | cr::CR0_PG;
/// Guest CR4 as the subject sees it (the kernel adds CR4.VMXE).
pub const GUEST_CR4: u64 = cr::CR4_PAE;
/// Guest EFER: long mode active, no-execute enabled.
pub const GUEST_EFER: u64 = cr::EFER_LME | cr::EFER_LMA | cr::EFER_NXE;
/// Initial RFLAGS (bit 1 is reserved and always one).
pub const GUEST_RFLAGS: u64 = 2;

/// 64-bit code: present, DPL 0, code execute/read accessed, L=1.
pub const GUEST_CS: Segment = Segment {
    selector: 0x08,
    base: 0,
    limit: 0xffff_ffff,
    access_rights: 0xa09b,
};
/// Data: present, DPL 0, read/write accessed, D/B=1, G=1.
pub const GUEST_DATA: Segment = Segment {
    selector: 0x10,
    base: 0,
    limit: 0xffff_ffff,
    access_rights: 0xc093,
};
/// TR: busy 64-bit TSS (VM entry requires a usable TR), minimal limit.
pub const GUEST_TR: Segment = Segment {
    selector: 0x18,
    base: 0,
    limit: 0x67,
    access_rights: 0x8b,
};
/// LDTR: unusable.
pub const GUEST_LDTR: Segment = Segment {
    selector: 0,
    base: 0,
    limit: 0,
    access_rights: 0x1_0000,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values() {
        let c = native_controls();
        assert_eq!(c.pin, 0x49);
        assert_eq!(c.proc, 0xb299_8e80);
        assert_eq!(c.proc & proc::UNCONDITIONAL_IO_EXITING, 0);
        assert_eq!(c.proc2, 0x66);
        assert_eq!(c.exit, 0x0030_8200);
        assert_eq!(c.entry, 0x8200);
        assert_eq!(GUEST_CR0, 0x8001_0033);
        assert_eq!(GUEST_EFER, 0xd00);
        assert_eq!(EPTP_FLAGS, 0x1e);
    }
}
