//! The `vm` profile: a virtual machine that boots an unmodified Linux
//! kernel at its 64-bit entry (docs/policy.md, "VM subjects").
//!
//! The guest owns what an operating system needs to own: its IDT and GDT
//! (no descriptor-table exiting), its page tables (no CR3 or INVLPG
//! exiting; the EPT confines it), its exceptions (empty exception bitmap:
//! a triple fault still exits and is the subject's fault), and CR0/CR4
//! except the bits isolation needs: CR0.PE/NE/PG (leaving long mode or
//! native FPU errors), CR0.CD/NW (caching is the EPT's and the host's),
//! CR4.VMXE/SMXE (no nested VMX or SMX), and CR4.OSXSAVE/PKE/CET/PKS: the
//! VM's CPUID view hides XSAVE, PKU, CET and PKS, and the state they guard
//! (XCR0-managed registers, PKRU, shadow-stack pointers) is not saved per
//! subject, so a guest that sets them regardless gets the #GP a processor
//! without them gives. A write that changes an owned bit exits; the
//! kernel's `vm` exit handling keeps the guest's view in the read shadow
//! for CD/NW, raises #GP for the CR4 bits and faults the subject for the
//! others.
//!
//! The local APIC is virtualised by the CPU (`septum_kerncore::vm::lapic`):
//! "use TPR shadow", "virtualize APIC accesses" (the APIC-access page the
//! EPT maps at 0xFEE0_0000), "APIC-register virtualization" and
//! "virtual-interrupt delivery": APIC reads, TPR writes (MOV to CR8
//! included: it is the virtual TPR) and EOIs stay in the guest; other
//! APIC register writes exit after the fact (APIC write), and accesses to
//! registers the CPU does not virtualise exit before (APIC access).
//!
//! Everything that reaches beyond the VM exits: interrupts and NMIs (the
//! host's), HLT, MONITOR/MWAIT, RDPMC, debug registers
//! (not in the VMCS), WBINVD, every I/O port and MSR (all-ones bitmaps:
//! the kernel emulates the small platform Linux needs and faults the rest),
//! and the VMX-preemption timer bounds the minor frame as for every
//! subject. PAT and EFER are loaded and saved with the VMCS, so the guest's
//! values never reach the host or another subject.
//!
//! Initial state: the 64-bit boot protocol's (paging on with the composer's
//! identity page tables of the subject's mappings, flat 64-bit code and
//! data segments, interrupts off), entering the stub of [`crate::linux`]
//! with RDI = the zero page.

use septum_abi::VirtAddr;
use septum_kerncore::spec::{GuestState, VmxControls};

use super::native::{GUEST_CS, GUEST_DATA, GUEST_EFER, GUEST_LDTR, GUEST_PAT, GUEST_TR};
use super::{SubjectVmx, VmxInputs};
use crate::linux::BOOT_BASE;
use crate::vmx::{cr, entry, exit, pin, proc, proc2};

/// CR0 bits the kernel owns for a VM.
pub const CR0_MASK: u64 = cr::CR0_PE | cr::CR0_NE | cr::CR0_PG | cr::CR0_CD | cr::CR0_NW;
/// CR4 bits the kernel owns for a VM.
pub const CR4_MASK: u64 =
    cr::CR4_VMXE | cr::CR4_SMXE | cr::CR4_OSXSAVE | cr::CR4_PKE | cr::CR4_CET | cr::CR4_PKS;
/// Guest CR0 at entry: protected mode, paging, native FPU errors, WP.
pub const GUEST_CR0: u64 =
    cr::CR0_PE | cr::CR0_MP | cr::CR0_ET | cr::CR0_NE | cr::CR0_WP | cr::CR0_PG;
/// Guest CR4 at entry: PAE (long mode).
pub const GUEST_CR4: u64 = cr::CR4_PAE;

/// Controls of every `vm` subject.
pub const fn controls() -> VmxControls {
    VmxControls {
        pin: pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING | pin::ACTIVATE_PREEMPTION_TIMER,
        proc: proc::HLT_EXITING
            | proc::MWAIT_EXITING
            | proc::RDPMC_EXITING
            | proc::USE_TPR_SHADOW
            | proc::MOV_DR_EXITING
            | proc::USE_IO_BITMAPS
            | proc::USE_MSR_BITMAPS
            | proc::MONITOR_EXITING
            | proc::ACTIVATE_SECONDARY_CONTROLS,
        proc2: proc2::ENABLE_EPT
            | proc2::ENABLE_VPID
            | proc2::WBINVD_EXITING
            | proc2::VIRTUALIZE_APIC_ACCESSES
            | proc2::APIC_REGISTER_VIRTUALIZATION
            | proc2::VIRTUAL_INTERRUPT_DELIVERY,
        exit: exit::HOST_ADDRESS_SPACE_SIZE
            | exit::SAVE_IA32_EFER
            | exit::LOAD_IA32_EFER
            | exit::SAVE_IA32_PAT
            | exit::LOAD_IA32_PAT
            | exit::ACK_INTERRUPT_ON_EXIT,
        entry: entry::IA32E_MODE_GUEST | entry::LOAD_IA32_EFER | entry::LOAD_IA32_PAT,
        exception_bitmap: 0,
        cr0_mask: CR0_MASK,
        cr4_mask: CR4_MASK,
    }
}

/// The `vm` profile's controls and initial state: entry at the Linux
/// boot stub with RDI = the zero page.
pub fn subject_vmx(inputs: &VmxInputs) -> SubjectVmx {
    SubjectVmx {
        controls: controls(),
        guest: GuestState {
            rip: inputs.entry,
            rsp: VirtAddr(0),
            rflags: 2,
            cr0: GUEST_CR0,
            cr3: inputs.page_tables,
            cr4: GUEST_CR4,
            efer: GUEST_EFER,
            pat: GUEST_PAT,
            rdi: BOOT_BASE,
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
    fn the_guest_owns_its_tables_and_exceptions() {
        let c = controls();
        assert_eq!(c.exception_bitmap, 0);
        assert_eq!(c.proc & (proc::CR3_LOAD_EXITING | proc::INVLPG_EXITING), 0);
        assert_eq!(c.proc2 & proc2::DESCRIPTOR_TABLE_EXITING, 0);
        assert_ne!(c.proc & proc::HLT_EXITING, 0);
        assert_eq!(
            c.proc & (proc::CR8_LOAD_EXITING | proc::CR8_STORE_EXITING),
            0,
            "CR8 is the virtual TPR"
        );
        assert_ne!(c.proc & proc::USE_TPR_SHADOW, 0);
        assert_eq!(c.proc2 & 0x311, 0x301, "APIC virtualised, no x2APIC mode");
        assert_eq!(c.cr0_mask, 0xe000_0021);
        assert_eq!(c.cr4_mask, 0x01c4_6000);
    }

    #[test]
    fn entry_is_the_boot_stub_with_the_zero_page() {
        let vmx = subject_vmx(&VmxInputs {
            entry: VirtAddr(0x2_2000),
            page_tables: septum_abi::GuestPhysAddr(0x1000),
            interrupt_entry: false,
        });
        assert_eq!(vmx.guest.rip.get(), 0x2_2000);
        assert_eq!(vmx.guest.rdi, BOOT_BASE);
        assert_eq!(vmx.guest.rflags & (1 << 9), 0, "interrupts off");
    }
}
