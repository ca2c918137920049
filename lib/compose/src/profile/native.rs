//! The `native` profile: a 64-bit program built with the SDK, running in
//! ring 0 of its own VM with paging on, no IDT of its own and no device
//! interrupts.
//!
//! The kernel ORs in the must-be-one bits of the capability MSRs and
//! refuses to start if a bit asked for here is not allowed, naming the
//! feature. The choice of exits follows from the isolation goal: anything a
//! subject could use to observe or change state beyond its own (interrupts,
//! NMIs, control and debug registers, caches, descriptor tables,
//! performance counters, I/O ports and MSRs not granted) exits to the
//! kernel, and the VMX-preemption timer bounds how long it runs.
//!
//! Entry registers follow the SDK's start code: RIP is the ELF entry, RSP
//! the top of the stack the composer maps below
//! [`septum_abi::layout::SUBJECT_STACK_TOP`], RDI the address of the info
//! page ([`septum_abi::layout::SUBJECT_INFO`]).

use septum_abi::layout::{SUBJECT_INFO, SUBJECT_STACK_TOP};
use septum_kerncore::spec::{GuestState, Segment, VmxControls};

use super::{SubjectVmx, VmxInputs};
use crate::vmx::{cr, entry, exit, pin, proc, proc2};

/// Controls for every native 64-bit subject. Exception bitmap all ones:
/// every exception exits (a native subject has no IDT of its own). CR0/CR4
/// masks all ones: any change of either exits.
pub const fn controls() -> VmxControls {
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

/// Guest IA32_PAT: the power-on value (WB, WT, UC-, UC, repeated), SDM Vol. 3A
/// 13.12.4, so the EPT memory type alone decides.
pub const GUEST_PAT: u64 = 0x0007_0406_0007_0406;

/// Controls of a native subject with an interrupt entry (it is given
/// vectors: a routed IRQ line or an `<inject_interrupt>` target event): as
/// [`controls`], but descriptor-table instructions do not
/// exit, so the SDK loads the subject's own GDT and IDT with LGDT and LIDT.
/// They change only the subject's own descriptor tables, which the kernel
/// never uses (its host GDTR and IDTR come from the VMCS host state).
pub const fn controls_with_interrupt_entry() -> VmxControls {
    let mut c = controls();
    c.proc2 &= !proc2::DESCRIPTOR_TABLE_EXITING;
    c
}

/// The native profile's controls and initial state for one subject.
pub fn subject_vmx(inputs: &VmxInputs) -> SubjectVmx {
    SubjectVmx {
        controls: if inputs.interrupt_entry {
            controls_with_interrupt_entry()
        } else {
            controls()
        },
        guest: GuestState {
            rip: inputs.entry,
            rsp: SUBJECT_STACK_TOP,
            rflags: GUEST_RFLAGS,
            cr0: GUEST_CR0,
            cr3: inputs.page_tables,
            cr4: GUEST_CR4,
            efer: GUEST_EFER,
            pat: GUEST_PAT,
            rdi: SUBJECT_INFO.get(),
            cs: GUEST_CS,
            data: GUEST_DATA,
            tr: GUEST_TR,
            ldtr: GUEST_LDTR,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_values() {
        let c = controls();
        assert_eq!(c.pin, 0x49);
        assert_eq!(c.proc, 0xb299_8e80);
        assert_eq!(c.proc & proc::UNCONDITIONAL_IO_EXITING, 0);
        assert_eq!(c.proc2, 0x66);
        assert_eq!(c.exit, 0x0030_8200);
        assert_eq!(c.entry, 0x8200);
        assert_eq!(GUEST_CR0, 0x8001_0033);
        assert_eq!(GUEST_EFER, 0xd00);
        let i = controls_with_interrupt_entry();
        assert_eq!(i.proc2, 0x62);
        assert_eq!((i.pin, i.proc, i.exit), (c.pin, c.proc, c.exit));
    }

    #[test]
    fn entry_registers_follow_the_sdk_start_code() {
        let vmx = subject_vmx(&VmxInputs {
            entry: septum_abi::VirtAddr(0x20_1000),
            page_tables: septum_abi::GuestPhysAddr(0x3000),
            interrupt_entry: false,
        });
        assert_eq!(vmx.guest.rip.get(), 0x20_1000);
        assert_eq!(vmx.guest.rsp.get(), 0x10_0000);
        assert_eq!(vmx.guest.rdi, 0x1_0000);
        assert_eq!(vmx.guest.cr3.get(), 0x3000);
    }
}
