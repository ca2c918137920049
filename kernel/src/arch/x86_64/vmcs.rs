//! One-time initialisation of a subject's VMCS (SDM Vol. 3C, 25.2-25.8 and
//! 26.2-26.3 for the checks VM entry applies to these values).
//!
//! Every subject owns one VMCS for the whole run: the kernel fills it here,
//! once, from the spec (controls after the capability check, EPT pointer,
//! VPID, I/O and MSR bitmaps, exception bitmap, CR masks and read shadows,
//! guest state) and from its own state (host state: identical for all
//! subjects). After this, switching subjects is only a VMPTRLD.
//!
//! Every VMWRITE here is `unsafe` (`vmx::vmwrite`): these fields decide the
//! host state after an exit and what the guest can reach. The values come
//! only from the compiled-in spec (reached through the [`Vmcs`] handle), from
//! the hardware's capability MSRs (a [`Capabilities`] is made only by
//! `vmx::read_capabilities`) and from the kernel's own state, and each
//! block says which.

use septum_kerncore::spec::{Segment, SubjectSpec};
use septum_kerncore::vmx::{Feature, FinalControls};

use super::boot;
use super::cpu::{self, rdmsr};
use super::descriptors::{KERNEL_CS, KERNEL_DS};
use super::percpu::{self, CpuNumber};
use super::vmx::{self, BringUpError, Capabilities, Vmcs, VmxError, field, vmwrite};

/// Exit control "load IA32_PAT" (SDM 25.7.1).
const EXIT_LOAD_PAT: u32 = 1 << 19;
/// Exit control "load IA32_EFER".
const EXIT_LOAD_EFER: u32 = 1 << 21;
/// Entry control "load IA32_PAT" (SDM 25.8.1).
const ENTRY_LOAD_PAT: u32 = 1 << 14;
/// Entry control "load IA32_EFER".
const ENTRY_LOAD_EFER: u32 = 1 << 15;
/// Secondary control "enable EPT".
const PROC2_EPT: u32 = 1 << 1;
/// Secondary control "enable VPID".
const PROC2_VPID: u32 = 1 << 5;

unsafe extern "C" {
    fn septum_vmexit_stub();
}

struct SegmentFields {
    selector: u64,
    base: u64,
    limit: u64,
    access: u64,
}

const ES: SegmentFields = SegmentFields {
    selector: field::GUEST_ES_SELECTOR,
    base: field::GUEST_ES_BASE,
    limit: field::GUEST_ES_LIMIT,
    access: field::GUEST_ES_ACCESS,
};
const CS: SegmentFields = SegmentFields {
    selector: field::GUEST_CS_SELECTOR,
    base: field::GUEST_CS_BASE,
    limit: field::GUEST_CS_LIMIT,
    access: field::GUEST_CS_ACCESS,
};
const SS: SegmentFields = SegmentFields {
    selector: field::GUEST_SS_SELECTOR,
    base: field::GUEST_SS_BASE,
    limit: field::GUEST_SS_LIMIT,
    access: field::GUEST_SS_ACCESS,
};
const DS: SegmentFields = SegmentFields {
    selector: field::GUEST_DS_SELECTOR,
    base: field::GUEST_DS_BASE,
    limit: field::GUEST_DS_LIMIT,
    access: field::GUEST_DS_ACCESS,
};
const FS: SegmentFields = SegmentFields {
    selector: field::GUEST_FS_SELECTOR,
    base: field::GUEST_FS_BASE,
    limit: field::GUEST_FS_LIMIT,
    access: field::GUEST_FS_ACCESS,
};
const GS: SegmentFields = SegmentFields {
    selector: field::GUEST_GS_SELECTOR,
    base: field::GUEST_GS_BASE,
    limit: field::GUEST_GS_LIMIT,
    access: field::GUEST_GS_ACCESS,
};
const LDTR: SegmentFields = SegmentFields {
    selector: field::GUEST_LDTR_SELECTOR,
    base: field::GUEST_LDTR_BASE,
    limit: field::GUEST_LDTR_LIMIT,
    access: field::GUEST_LDTR_ACCESS,
};
const TR: SegmentFields = SegmentFields {
    selector: field::GUEST_TR_SELECTOR,
    base: field::GUEST_TR_BASE,
    limit: field::GUEST_TR_LIMIT,
    access: field::GUEST_TR_ACCESS,
};

/// Write one guest segment register.
///
/// # Safety
/// The current VMCS must be the one of the subject whose spec `segment`
/// comes from (guest state only; VM entry checks it, EPT confines it).
unsafe fn write_segment(fields: &SegmentFields, segment: &Segment) -> Result<(), VmxError> {
    // Safety: guest segment state from the spec (the contract above).
    unsafe {
        vmwrite(fields.selector, u64::from(segment.selector))?;
        vmwrite(fields.base, segment.base)?;
        vmwrite(fields.limit, u64::from(segment.limit))?;
        vmwrite(fields.access, u64::from(segment.access_rights))
    }
}

/// Initialise the subject's VMCS and leave it current. The subject's
/// controls are resolved against the capability MSRs here (a missing
/// feature is an error), so every control written is the spec's wish plus
/// the hardware's must-be-one bits.
/// The host state is `cpu`'s (its exit stack, TSS and IDT), the CPU this
/// runs on and the only one the VMCS will be used on (`Vmcs::of` checked).
pub fn init(vmcs: Vmcs, caps: &Capabilities, cpu: CpuNumber) -> Result<(), BringUpError> {
    let subject = vmcs.subject();
    let controls = caps
        .resolve(&subject.controls, subject.eptp)
        .map_err(BringUpError::Missing)?;
    vmcs.write_revision_id(caps);
    vmcs.clear()?;
    vmcs.load()?;
    // Safety: `subject`'s VMCS is current (just loaded); every value is the
    // spec's (its controls resolved against the hardware's capability MSRs,
    // its composer-built EPT, bitmaps, masks and shadows), a fixed constant,
    // or `!0` for the unused VMCS link pointer.
    unsafe { write_controls(subject, &controls)? };
    if let Some(access) = subject.apic_access {
        // Safety: the VM's VMCS is current with its controls written, on
        // its CPU (`Vmcs::of`), at boot or at a restart: no reference to
        // its VM slot is live.
        unsafe { super::vm::init_apic(vmcs.id(), access)? };
    }
    // Host RSP: the end of the subject's register frame (`regs.rs`).
    // Beyond the frame table only for more subjects than the scheduler
    // accepts (`MAX_SUBJECTS`).
    let host_rsp = super::regs::host_rsp(&vmcs).ok_or(BringUpError::Missing(Feature::Named(
        "a register frame for every subject",
    )))?;
    // Safety: the subject's VMCS is current; the host state is the kernel's
    // own on `cpu` (see `write_host_state`).
    unsafe { write_host_state(&controls, cpu, host_rsp)? };
    // Safety: the subject's VMCS is current; its guest state comes from its
    // spec (see `write_guest_state`).
    unsafe { write_guest_state(subject, caps, &controls)? };
    if controls.proc2 & PROC2_EPT != 0 {
        vmx::invept_single_context(subject.eptp)?;
    }
    Ok(())
}

/// Controls, pointers, masks and shadows (SDM 25.6-25.8).
///
/// # Safety
/// The current VMCS must be `subject`'s, and `controls` its spec controls
/// resolved against this CPU's capability MSRs.
unsafe fn write_controls(subject: &SubjectSpec, controls: &FinalControls) -> Result<(), VmxError> {
    // Safety: the contract above: controls resolved from the spec, pointers
    // to the subject's composer-built EPT and bitmaps, the spec's masks and
    // shadows, zero counts and `!0` for the unused VMCS link pointer.
    unsafe {
        vmwrite(field::PIN_CONTROLS, u64::from(controls.pin))?;
        vmwrite(field::PROC_CONTROLS, u64::from(controls.proc))?;
        if controls.proc2 != 0 {
            vmwrite(field::PROC2_CONTROLS, u64::from(controls.proc2))?;
        }
        vmwrite(field::EXIT_CONTROLS, u64::from(controls.exit))?;
        vmwrite(field::ENTRY_CONTROLS, u64::from(controls.entry))?;
        vmwrite(
            field::EXCEPTION_BITMAP,
            u64::from(subject.controls.exception_bitmap),
        )?;
        vmwrite(field::PAGE_FAULT_ERROR_MASK, 0)?;
        vmwrite(field::PAGE_FAULT_ERROR_MATCH, 0)?;
        vmwrite(field::CR3_TARGET_COUNT, 0)?;
        vmwrite(field::EXIT_MSR_STORE_COUNT, 0)?;
        vmwrite(field::EXIT_MSR_LOAD_COUNT, 0)?;
        vmwrite(field::ENTRY_MSR_LOAD_COUNT, 0)?;
        vmwrite(field::ENTRY_INTERRUPTION_INFO, 0)?;
        vmwrite(field::IO_BITMAP_A, subject.io_bitmap_a.get())?;
        vmwrite(field::IO_BITMAP_B, subject.io_bitmap_b.get())?;
        vmwrite(field::MSR_BITMAP, subject.msr_bitmap.get())?;
        if controls.proc2 & PROC2_EPT != 0 {
            vmwrite(field::EPT_POINTER, subject.eptp)?;
        }
        if controls.proc2 & PROC2_VPID != 0 {
            vmwrite(field::VPID, u64::from(subject.vpid))?;
        }
        vmwrite(field::VMCS_LINK_POINTER, u64::MAX)?;

        // CR0/CR4: the masks give the kernel every bit the spec asks for; the
        // guest reads the spec's values from the shadows (SDM 25.6.6).
        vmwrite(field::CR0_MASK, subject.controls.cr0_mask)?;
        vmwrite(field::CR4_MASK, subject.controls.cr4_mask)?;
        vmwrite(field::CR0_READ_SHADOW, subject.guest.cr0)?;
        vmwrite(field::CR4_READ_SHADOW, subject.guest.cr4)
    }
}

/// Host state (SDM 25.5, checked per 27.2.2-3): the kernel's control
/// registers, flat selectors, the GDT and the CPU's IDT/TSS, the exit stub
/// as RIP, the same for every subject of a CPU, and `host_rsp`, the end of
/// the subject's own register frame (`regs.rs`), as RSP.
///
/// # Safety
/// A VMCS must be current, `controls` the ones written into it, `cpu` the
/// CPU this runs on and `host_rsp` the current VMCS's subject's
/// `regs::host_rsp`.
unsafe fn write_host_state(
    controls: &FinalControls,
    cpu: CpuNumber,
    host_rsp: u64,
) -> Result<(), VmxError> {
    // Safety: every value is the kernel's own running state on `cpu`
    // (control registers, selectors and tables it loaded, EFER/PAT as they
    // are), its exit stub and the end of the subject's register frame,
    // which only this CPU's exit path uses.
    unsafe {
        vmwrite(field::HOST_CR0, cpu::read_cr0())?;
        vmwrite(field::HOST_CR3, cpu::read_cr3())?;
        vmwrite(field::HOST_CR4, cpu::read_cr4())?;
        vmwrite(field::HOST_CS_SELECTOR, u64::from(KERNEL_CS))?;
        for selector in [
            field::HOST_SS_SELECTOR,
            field::HOST_DS_SELECTOR,
            field::HOST_ES_SELECTOR,
            field::HOST_FS_SELECTOR,
            field::HOST_GS_SELECTOR,
        ] {
            vmwrite(selector, u64::from(KERNEL_DS))?;
        }
        vmwrite(
            field::HOST_TR_SELECTOR,
            u64::from(percpu::tss_selector(cpu)),
        )?;
        vmwrite(field::HOST_FS_BASE, 0)?;
        vmwrite(field::HOST_GS_BASE, 0)?;
        vmwrite(field::HOST_TR_BASE, percpu::tss_address(cpu))?;
        vmwrite(field::HOST_GDTR_BASE, boot::gdt_address())?;
        vmwrite(field::HOST_IDTR_BASE, percpu::idt_address(cpu))?;
        vmwrite(field::HOST_SYSENTER_CS, 0)?;
        vmwrite(field::HOST_SYSENTER_ESP, 0)?;
        vmwrite(field::HOST_SYSENTER_EIP, 0)?;
        vmwrite(field::HOST_RSP, host_rsp)?;
        vmwrite(field::HOST_RIP, septum_vmexit_stub as *const () as u64)?;
        if controls.exit & EXIT_LOAD_EFER != 0 {
            vmwrite(field::HOST_EFER, rdmsr(cpu::IA32_EFER))?;
        }
        if controls.exit & EXIT_LOAD_PAT != 0 {
            vmwrite(field::HOST_PAT, rdmsr(cpu::IA32_PAT))?;
        }
    }
    Ok(())
}

/// Guest state from the spec (SDM 25.4; checked per 27.3.1). All data
/// segments share one descriptor; GDTR/IDTR are empty because every
/// exception exits (the exception bitmap) and the subject never loads a
/// segment.
///
/// # Safety
/// The current VMCS must be `subject`'s and `controls` the ones written
/// into it.
unsafe fn write_guest_state(
    subject: &SubjectSpec,
    caps: &Capabilities,
    controls: &FinalControls,
) -> Result<(), VmxError> {
    let guest = &subject.guest;
    // Safety: guest state only, from the subject's spec (CR0/CR4 with the
    // hardware's fixed bits); VM entry checks it and EPT confines it.
    unsafe {
        vmwrite(field::GUEST_CR0, caps.guest_cr0(guest.cr0, controls.proc2))?;
        vmwrite(field::GUEST_CR3, guest.cr3.get())?;
        vmwrite(field::GUEST_CR4, caps.guest_cr4(guest.cr4))?;
        vmwrite(field::GUEST_DR7, 0x400)?;
        vmwrite(field::GUEST_RSP, guest.rsp.get())?;
        vmwrite(field::GUEST_RIP, guest.rip.get())?;
        vmwrite(field::GUEST_RFLAGS, guest.rflags)?;
        write_segment(&CS, &guest.cs)?;
        for fields in [&SS, &DS, &ES, &FS, &GS] {
            write_segment(fields, &guest.data)?;
        }
        write_segment(&TR, &guest.tr)?;
        write_segment(&LDTR, &guest.ldtr)?;
        vmwrite(field::GUEST_GDTR_BASE, 0)?;
        vmwrite(field::GUEST_GDTR_LIMIT, 0)?;
        vmwrite(field::GUEST_IDTR_BASE, 0)?;
        vmwrite(field::GUEST_IDTR_LIMIT, 0)?;
        vmwrite(field::GUEST_DEBUGCTL, 0)?;
        vmwrite(field::GUEST_SYSENTER_CS, 0)?;
        vmwrite(field::GUEST_SYSENTER_ESP, 0)?;
        vmwrite(field::GUEST_SYSENTER_EIP, 0)?;
        vmwrite(field::GUEST_INTERRUPTIBILITY, 0)?;
        vmwrite(field::GUEST_ACTIVITY_STATE, 0)?;
        vmwrite(field::GUEST_PENDING_DEBUG, 0)?;
        if controls.entry & ENTRY_LOAD_EFER != 0 {
            vmwrite(field::GUEST_EFER, guest.efer)?;
        }
        if controls.entry & ENTRY_LOAD_PAT != 0 {
            vmwrite(field::GUEST_PAT, guest.pat)?;
        }
    }
    Ok(())
}
