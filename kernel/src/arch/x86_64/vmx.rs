//! VMX instructions, VMCS field encodings, and VMX bring-up.
//!
//! Bring-up (SDM Vol. 3C, 24.6-24.8 and 25): check CPUID.1:ECX.VMX and
//! IA32_FEATURE_CONTROL, read the capability MSRs (the TRUE_* control MSRs
//! when IA32_VMX_BASIC[55] says they exist), let kerncore check every
//! control each subject's spec asks for (a missing one is named and the
//! kernel refuses to start), apply the CR0/CR4 fixed bits, write the
//! revision id into the composer-allocated VMXON region and execute VMXON.
//! Then every subject's VMCS is initialised once (see `vmcs.rs`); switching
//! subjects later is only a VMPTRLD.
//!
//! Every VMX instruction reports failure through CF/ZF (SDM 31.2); a
//! failure becomes a [`VmxError`] carrying the VM-instruction error number
//! when the CPU provides one, and the caller stops the system fail-closed.

use core::arch::asm;
#[cfg(feature = "count-vmcs")]
use core::sync::atomic::{AtomicU32, Ordering};

use septum_abi::{PhysAddr, SubjectId};
use septum_kerncore::spec::SubjectSpec;
use septum_kerncore::vmx::{Feature, VmxCaps};

use super::cpu::{self, rdmsr};
use super::percpu::CpuNumber;
use crate::system::SPEC;

/// VMCS field encodings (SDM Vol. 3D, appendix B).
#[allow(missing_docs, reason = "names are the SDM's")]
pub mod field {
    pub const VPID: u64 = 0x0000;
    pub const GUEST_ES_SELECTOR: u64 = 0x0800;
    pub const GUEST_CS_SELECTOR: u64 = 0x0802;
    pub const GUEST_SS_SELECTOR: u64 = 0x0804;
    pub const GUEST_DS_SELECTOR: u64 = 0x0806;
    pub const GUEST_FS_SELECTOR: u64 = 0x0808;
    pub const GUEST_GS_SELECTOR: u64 = 0x080a;
    pub const GUEST_LDTR_SELECTOR: u64 = 0x080c;
    pub const GUEST_TR_SELECTOR: u64 = 0x080e;
    pub const HOST_ES_SELECTOR: u64 = 0x0c00;
    pub const HOST_CS_SELECTOR: u64 = 0x0c02;
    pub const HOST_SS_SELECTOR: u64 = 0x0c04;
    pub const HOST_DS_SELECTOR: u64 = 0x0c06;
    pub const HOST_FS_SELECTOR: u64 = 0x0c08;
    pub const HOST_GS_SELECTOR: u64 = 0x0c0a;
    pub const HOST_TR_SELECTOR: u64 = 0x0c0c;
    pub const IO_BITMAP_A: u64 = 0x2000;
    pub const IO_BITMAP_B: u64 = 0x2002;
    pub const MSR_BITMAP: u64 = 0x2004;
    pub const EPT_POINTER: u64 = 0x201a;
    pub const GUEST_PHYSICAL_ADDRESS: u64 = 0x2400;
    pub const VMCS_LINK_POINTER: u64 = 0x2800;
    pub const GUEST_DEBUGCTL: u64 = 0x2802;
    pub const GUEST_PAT: u64 = 0x2804;
    pub const GUEST_EFER: u64 = 0x2806;
    pub const HOST_PAT: u64 = 0x2c00;
    pub const HOST_EFER: u64 = 0x2c02;
    pub const PIN_CONTROLS: u64 = 0x4000;
    pub const PROC_CONTROLS: u64 = 0x4002;
    pub const EXCEPTION_BITMAP: u64 = 0x4004;
    pub const PAGE_FAULT_ERROR_MASK: u64 = 0x4006;
    pub const PAGE_FAULT_ERROR_MATCH: u64 = 0x4008;
    pub const CR3_TARGET_COUNT: u64 = 0x400a;
    pub const EXIT_CONTROLS: u64 = 0x400c;
    pub const EXIT_MSR_STORE_COUNT: u64 = 0x400e;
    pub const EXIT_MSR_LOAD_COUNT: u64 = 0x4010;
    pub const ENTRY_CONTROLS: u64 = 0x4012;
    pub const ENTRY_MSR_LOAD_COUNT: u64 = 0x4014;
    pub const ENTRY_INTERRUPTION_INFO: u64 = 0x4016;
    pub const PROC2_CONTROLS: u64 = 0x401e;
    pub const VM_INSTRUCTION_ERROR: u64 = 0x4400;
    pub const EXIT_REASON: u64 = 0x4402;
    pub const EXIT_INTERRUPTION_INFO: u64 = 0x4404;
    pub const EXIT_INTERRUPTION_ERROR_CODE: u64 = 0x4406;
    pub const IDT_VECTORING_INFO: u64 = 0x4408;
    pub const IDT_VECTORING_ERROR_CODE: u64 = 0x440a;
    pub const EXIT_INSTRUCTION_LENGTH: u64 = 0x440c;
    pub const GUEST_ES_LIMIT: u64 = 0x4800;
    pub const GUEST_CS_LIMIT: u64 = 0x4802;
    pub const GUEST_SS_LIMIT: u64 = 0x4804;
    pub const GUEST_DS_LIMIT: u64 = 0x4806;
    pub const GUEST_FS_LIMIT: u64 = 0x4808;
    pub const GUEST_GS_LIMIT: u64 = 0x480a;
    pub const GUEST_LDTR_LIMIT: u64 = 0x480c;
    pub const GUEST_TR_LIMIT: u64 = 0x480e;
    pub const GUEST_GDTR_LIMIT: u64 = 0x4810;
    pub const GUEST_IDTR_LIMIT: u64 = 0x4812;
    pub const GUEST_ES_ACCESS: u64 = 0x4814;
    pub const GUEST_CS_ACCESS: u64 = 0x4816;
    pub const GUEST_SS_ACCESS: u64 = 0x4818;
    pub const GUEST_DS_ACCESS: u64 = 0x481a;
    pub const GUEST_FS_ACCESS: u64 = 0x481c;
    pub const GUEST_GS_ACCESS: u64 = 0x481e;
    pub const GUEST_LDTR_ACCESS: u64 = 0x4820;
    pub const GUEST_TR_ACCESS: u64 = 0x4822;
    pub const GUEST_INTERRUPTIBILITY: u64 = 0x4824;
    pub const GUEST_ACTIVITY_STATE: u64 = 0x4826;
    pub const GUEST_SYSENTER_CS: u64 = 0x482a;
    pub const PREEMPTION_TIMER_VALUE: u64 = 0x482e;
    pub const HOST_SYSENTER_CS: u64 = 0x4c00;
    pub const CR0_MASK: u64 = 0x6000;
    pub const CR4_MASK: u64 = 0x6002;
    pub const CR0_READ_SHADOW: u64 = 0x6004;
    pub const CR4_READ_SHADOW: u64 = 0x6006;
    pub const EXIT_QUALIFICATION: u64 = 0x6400;
    pub const GUEST_LINEAR_ADDRESS: u64 = 0x640a;
    pub const GUEST_CR0: u64 = 0x6800;
    pub const GUEST_CR3: u64 = 0x6802;
    pub const GUEST_CR4: u64 = 0x6804;
    pub const GUEST_ES_BASE: u64 = 0x6806;
    pub const GUEST_CS_BASE: u64 = 0x6808;
    pub const GUEST_SS_BASE: u64 = 0x680a;
    pub const GUEST_DS_BASE: u64 = 0x680c;
    pub const GUEST_FS_BASE: u64 = 0x680e;
    pub const GUEST_GS_BASE: u64 = 0x6810;
    pub const GUEST_LDTR_BASE: u64 = 0x6812;
    pub const GUEST_TR_BASE: u64 = 0x6814;
    pub const GUEST_GDTR_BASE: u64 = 0x6816;
    pub const GUEST_IDTR_BASE: u64 = 0x6818;
    pub const GUEST_DR7: u64 = 0x681a;
    pub const GUEST_RSP: u64 = 0x681c;
    pub const GUEST_RIP: u64 = 0x681e;
    pub const GUEST_RFLAGS: u64 = 0x6820;
    pub const GUEST_PENDING_DEBUG: u64 = 0x6822;
    pub const GUEST_SYSENTER_ESP: u64 = 0x6824;
    pub const GUEST_SYSENTER_EIP: u64 = 0x6826;
    pub const HOST_CR0: u64 = 0x6c00;
    pub const HOST_CR3: u64 = 0x6c02;
    pub const HOST_CR4: u64 = 0x6c04;
    pub const HOST_FS_BASE: u64 = 0x6c06;
    pub const HOST_GS_BASE: u64 = 0x6c08;
    pub const HOST_TR_BASE: u64 = 0x6c0a;
    pub const HOST_GDTR_BASE: u64 = 0x6c0c;
    pub const HOST_IDTR_BASE: u64 = 0x6c0e;
    pub const HOST_SYSENTER_ESP: u64 = 0x6c10;
    pub const HOST_SYSENTER_EIP: u64 = 0x6c12;
    pub const HOST_RSP: u64 = 0x6c14;
    pub const HOST_RIP: u64 = 0x6c16;
}

/// A VMX instruction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmxError {
    /// The instruction.
    pub instruction: &'static str,
    /// VM-instruction error number (VMfailValid), or `None` (VMfailInvalid:
    /// no current VMCS to hold one).
    pub error: Option<u64>,
}

impl core::fmt::Display for VmxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.error {
            Some(error) => write!(
                f,
                "{} failed: VM-instruction error {error}",
                self.instruction
            ),
            None => write!(
                f,
                "{} failed: no current VMCS (VMfailInvalid)",
                self.instruction
            ),
        }
    }
}

/// Why VMX could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BringUpError {
    /// The CPU lacks a feature a subject needs.
    Missing(Feature),
    /// A VMX instruction failed.
    Instruction(VmxError),
}

impl From<VmxError> for BringUpError {
    fn from(error: VmxError) -> Self {
        Self::Instruction(error)
    }
}

/// VMREAD and VMWRITE executed since the counter was last reset.
#[cfg(feature = "count-vmcs")]
pub static VMCS_ACCESSES: AtomicU32 = AtomicU32::new(0);

#[inline(always)]
fn count_access() {
    #[cfg(feature = "count-vmcs")]
    VMCS_ACCESSES.fetch_add(1, Ordering::Relaxed);
}

/// Turn CF/ZF after a VMX instruction into a result (SDM 31.2).
fn check(instruction: &'static str, failed_invalid: u8, failed_valid: u8) -> Result<(), VmxError> {
    if failed_invalid != 0 {
        return Err(VmxError {
            instruction,
            error: None,
        });
    }
    if failed_valid != 0 {
        return Err(VmxError {
            instruction,
            error: Some(instruction_error()),
        });
    }
    Ok(())
}

/// The VM-instruction error field of the current VMCS (0 if unreadable).
pub fn instruction_error() -> u64 {
    read_instruction_error().unwrap_or(0)
}

/// The VM-instruction error field of the current VMCS; `None` if it
/// cannot be read (no current VMCS).
fn read_instruction_error() -> Option<u64> {
    let value: u64;
    let failed: u8;
    // Safety: VMREAD of a read-only field only reads the current VMCS.
    unsafe {
        asm!("vmread {value}, {field}", "setbe {failed}",
             field = in(reg) field::VM_INSTRUCTION_ERROR, value = out(reg) value,
             failed = out(reg_byte) failed, options(nostack));
    }
    (failed == 0).then_some(value)
}

/// The error of a VMREAD, VMWRITE or VMPTRLD that failed (CF or ZF set,
/// SDM 31.2): VMfailValid when the current VMCS holds an error number,
/// VMfailInvalid (no current VMCS) when it cannot be read. Out of line and
/// cold, so that the instruction's own path is one flag test and branch
/// (the exit and entry paths run several of them: every instruction
/// counts in the hypercall and the minor-frame switch).
#[cold]
#[inline(never)]
fn failure(instruction: &'static str) -> VmxError {
    VmxError {
        instruction,
        error: read_instruction_error(),
    }
}

/// Read a field of the current VMCS.
///
/// Safe for any encoding: VMREAD only copies a field into a register, and an
/// unsupported encoding or a missing current VMCS fails with the flags.
#[inline(always)]
pub fn vmread(encoding: u64) -> Result<u64, VmxError> {
    count_access();
    let value: u64;
    let failed: u8;
    // Safety: VMREAD reads the current VMCS into a register; it cannot touch
    // kernel memory. Failure is reported through the flags (CF or ZF).
    unsafe {
        asm!("vmread {value}, {field}", "setbe {failed}",
             field = in(reg) encoding, value = out(reg) value,
             failed = out(reg_byte) failed, options(nostack));
    }
    if failed != 0 {
        return Err(failure("VMREAD"));
    }
    Ok(value)
}

/// Write any field of the current VMCS.
///
/// # Safety
/// The VMCS decides what the host looks like after the next VM exit (host
/// state: RIP, RSP, CR3, segment bases) and what the guest may reach
/// (controls, EPT pointer, I/O and MSR bitmaps, VMCS link pointer). The
/// caller guarantees that `value` is right for `encoding` and for the
/// subject whose VMCS is current: host-state fields hold the kernel's own
/// state, pointers point at composer-allocated tables of that subject, and
/// controls are the subject's spec controls as resolved against the
/// capability MSRs. Only [`write_guest`]'s fields are safe for any value.
#[inline(always)]
pub unsafe fn vmwrite(encoding: u64, value: u64) -> Result<(), VmxError> {
    count_access();
    // Safety: VMWRITE changes only the current VMCS; the caller guarantees
    // the value is right for the field (see the contract above). A failure
    // (CF or ZF) branches to the label.
    unsafe {
        asm!("vmwrite {field}, {value}", "jbe {fail}",
             field = in(reg) encoding, value = in(reg) value,
             fail = label { return Err(failure("VMWRITE")) }, options(nostack));
    }
    Ok(())
}

/// The VMCS fields the exit path writes: guest state whose value cannot
/// compromise the host or another subject, so [`write_guest`] is safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestField {
    /// Guest RIP: where the subject continues, in its own address space
    /// (EPT confines whatever it reaches from there).
    Rip,
    /// VMX-preemption timer value: when the subject exits next. Any value
    /// is safe for the host; the kernel's deadline is what keeps the plan.
    PreemptionTimer,
    /// Guest RSP: a register of the subject's own (monitors change it).
    Rsp,
    /// Guest RFLAGS. A value VM entry refuses fails the entry, which the
    /// kernel handles fail-closed; the one writer (`crate::monitor`) only
    /// changes the status flags and DF, which entry never refuses.
    Rflags,
}

impl GuestField {
    /// The field's encoding (SDM Vol. 3D, appendix B).
    #[inline(always)]
    const fn encoding(self) -> u64 {
        match self {
            Self::Rip => field::GUEST_RIP,
            Self::PreemptionTimer => field::PREEMPTION_TIMER_VALUE,
            Self::Rsp => field::GUEST_RSP,
            Self::Rflags => field::GUEST_RFLAGS,
        }
    }
}

/// Write a guest-state field of the current VMCS that cannot compromise the
/// host, whatever the value.
#[inline(always)]
pub fn write_guest(field: GuestField, value: u64) -> Result<(), VmxError> {
    // Safety: `GuestField` names only guest RIP, RSP, RFLAGS and the
    // preemption-timer value; none can make the guest reach memory, ports
    // or MSRs outside its EPT and bitmaps, nor change host state (see the
    // variants).
    unsafe { vmwrite(field.encoding(), value) }
}

/// Make the VMCS at `region` current and active.
///
/// # Safety
/// `region` must be a 4 KiB VMCS region holding the revision id, used for
/// nothing else, and not active on another CPU (SDM 24.1, 25.11.1).
#[inline(always)]
unsafe fn vmptrld(region: PhysAddr) -> Result<(), VmxError> {
    let address = region.get();
    // Safety: the caller guarantees `region` is a VMCS region (contract).
    // A failure (CF or ZF) branches to the label.
    unsafe {
        asm!("vmptrld [{address}]", "jbe {fail}",
             address = in(reg) &address,
             fail = label { return Err(failure("VMPTRLD")) }, options(nostack));
    }
    Ok(())
}

/// Clear a VMCS (launch state "clear", contents flushed to memory).
///
/// # Safety
/// As for [`vmptrld`]: the CPU writes VMCS data to `region`.
unsafe fn vmclear(region: PhysAddr) -> Result<(), VmxError> {
    let address = region.get();
    let (invalid, valid): (u8, u8);
    // Safety: the caller guarantees `region` is a VMCS region (contract).
    unsafe {
        asm!("vmclear [{address}]", "setc {invalid}", "setz {valid}",
             address = in(reg) &address, invalid = out(reg_byte) invalid,
             valid = out(reg_byte) valid, options(nostack));
    }
    check("VMCLEAR", invalid, valid)
}

/// Write the VMCS revision identifier into the first 4 bytes of a VMXON or
/// VMCS region (bit 31 clear: not a shadow VMCS).
///
/// # Safety
/// `region` must be a 4 KiB page the composer allocated as a VMXON or VMCS
/// region, mapped read-write in the kernel page tables and used for nothing
/// else, and not in use by the CPU (before VMXON, or before VMCLEAR).
unsafe fn write_revision_id(region: PhysAddr, revision: u32) {
    let pointer = region.get() as *mut u32;
    // Safety: the caller guarantees the page is a kernel-owned region that
    // nothing else uses; only its first word is written.
    unsafe { pointer.write_volatile(revision & 0x7fff_ffff) };
}

/// The VMCS of one subject of the compiled-in spec, on its own CPU. Made
/// only from a [`SubjectId`] and the CPU it runs on, so a VMCLEAR, VMPTRLD
/// or revision-id write can only name a composer-allocated VMCS region, and
/// only on the CPU that owns it (a VMCS may be active on one CPU only, SDM
/// 24.1).
#[derive(Debug, Clone, Copy)]
pub struct Vmcs {
    id: SubjectId,
    subject: &'static SubjectSpec,
}

impl Vmcs {
    /// The VMCS of subject `id` for use on `cpu` (`None` for an unknown id
    /// or a subject of another CPU).
    #[inline(always)]
    pub fn of(id: SubjectId, cpu: CpuNumber) -> Option<Self> {
        SPEC.subjects
            .get(id.index())
            .filter(|subject| subject.cpu == cpu.get())
            .map(|subject| Self { id, subject })
    }

    /// The subject.
    pub fn id(&self) -> SubjectId {
        self.id
    }

    /// The subject's spec.
    pub fn subject(&self) -> &'static SubjectSpec {
        self.subject
    }

    /// Write the revision id into the region (before [`Vmcs::clear`]).
    pub fn write_revision_id(&self, caps: &Capabilities) {
        // Safety: the region comes from the spec, where the composer
        // allocated it as this subject's 4 KiB VMCS page, mapped read-write
        // for the kernel, used for nothing else; it is written before the
        // first VMCLEAR hands it to the CPU.
        unsafe { write_revision_id(self.subject.vmcs, caps.revision_id()) }
    }

    /// VMCLEAR the subject's VMCS.
    pub fn clear(&self) -> Result<(), VmxError> {
        // Safety: a composer-allocated VMCS region of this CPU's subject
        // (see `write_revision_id`).
        unsafe { vmclear(self.subject.vmcs) }
    }

    /// VMPTRLD the subject's VMCS: it becomes current on this CPU.
    #[inline(always)]
    pub fn load(&self) -> Result<(), VmxError> {
        // Safety: a composer-allocated VMCS region of this CPU's subject
        // (see `write_revision_id`).
        unsafe { vmptrld(self.subject.vmcs) }
    }
}

/// The VMXON region of one CPU, from the spec: the only address VMXON and
/// its revision-id write can be given.
#[derive(Debug, Clone, Copy)]
pub struct VmxonRegion {
    region: PhysAddr,
}

impl VmxonRegion {
    /// The VMXON region of `cpu` (`None` if the spec has none).
    pub fn of(cpu: CpuNumber) -> Option<Self> {
        SPEC.kernel
            .vmxon_regions
            .get(cpu.get() as usize)
            .map(|region| Self { region: *region })
    }
}

fn vmxon(region: VmxonRegion) -> Result<(), VmxError> {
    let address = region.region.get();
    let (invalid, valid): (u8, u8);
    // Safety: the operand is the composer-allocated VMXON region of this
    // CPU, holding the revision id; CR0/CR4 already satisfy the fixed bits.
    unsafe {
        asm!("vmxon [{address}]", "setc {invalid}", "setz {valid}",
             address = in(reg) &address, invalid = out(reg_byte) invalid,
             valid = out(reg_byte) valid, options(nostack));
    }
    check("VMXON", invalid, valid)
}

/// Invalidate the EPT-derived translations of one EPT pointer. Safe for any
/// value: INVEPT only drops cached translations (an invalid pointer makes it
/// fail); the descriptor is a local value.
pub fn invept_single_context(eptp: u64) -> Result<(), VmxError> {
    let descriptor: [u64; 2] = [eptp, 0];
    let (invalid, valid): (u8, u8);
    // Safety: INVEPT only drops cached translations; the descriptor is a
    // local 16-byte value.
    unsafe {
        asm!("invept {kind}, [{descriptor}]", "setc {invalid}", "setz {valid}",
             kind = in(reg) 1u64, descriptor = in(reg) &descriptor,
             invalid = out(reg_byte) invalid, valid = out(reg_byte) valid, options(nostack));
    }
    check("INVEPT", invalid, valid)
}

/// The VMX capability MSRs as read from this CPU. Made only by
/// [`read_capabilities`], so the CR0/CR4 fixed bits [`enable`] applies and
/// the must-be-one control bits [`super::vmcs::init`] adds are the
/// hardware's, never a caller's invention.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities(VmxCaps);

impl core::ops::Deref for Capabilities {
    type Target = VmxCaps;

    fn deref(&self) -> &VmxCaps {
        &self.0
    }
}

/// CR4.OSFXSR: FXSAVE/FXRSTOR include the XMM registers and MXCSR.
const CR4_OSFXSR: u64 = 1 << 9;

const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
const IA32_VMX_EXIT_CTLS: u32 = 0x483;
const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
const IA32_VMX_MISC: u32 = 0x485;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;

const FEATURE_CONTROL_LOCKED: u64 = 1 << 0;
const FEATURE_CONTROL_VMX_OUTSIDE_SMX: u64 = 1 << 2;

/// Check that the CPU has VMX and that the firmware left it enabled (or
/// enable it), then read the capability MSRs.
pub fn read_capabilities() -> Result<Capabilities, Feature> {
    let (_, _, ecx, _) = cpu::cpuid(1, 0);
    if ecx & (1 << 5) == 0 {
        return Err(Feature::Named("VMX"));
    }
    let feature_control = rdmsr(cpu::IA32_FEATURE_CONTROL);
    if feature_control & FEATURE_CONTROL_LOCKED != 0 {
        if feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX == 0 {
            return Err(Feature::Named("VMX enabled in IA32_FEATURE_CONTROL"));
        }
    } else {
        let value = feature_control | FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMX_OUTSIDE_SMX;
        // Safety: enabling VMX outside SMX and locking the MSR changes no
        // memory and nothing the kernel relies on.
        unsafe { cpu::wrmsr(cpu::IA32_FEATURE_CONTROL, value) };
    }
    let basic = rdmsr(IA32_VMX_BASIC);
    let true_controls = basic & septum_kerncore::vmx::BASIC_TRUE_CONTROLS != 0;
    let pick = |true_msr: u32, msr: u32| rdmsr(if true_controls { true_msr } else { msr });
    let proc = pick(IA32_VMX_TRUE_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS);
    // Secondary controls (and with them the EPT/VPID capability MSR) exist
    // only if "activate secondary controls" may be 1 (SDM A.3.2, A.3.3, A.10).
    let proc2 = if proc & (1 << 63) != 0 {
        rdmsr(IA32_VMX_PROCBASED_CTLS2)
    } else {
        0
    };
    let ept_or_vpid = (1u64 << 33) | (1 << 37);
    let ept_vpid = if proc2 & ept_or_vpid != 0 {
        rdmsr(IA32_VMX_EPT_VPID_CAP)
    } else {
        0
    };
    Ok(Capabilities(VmxCaps {
        basic,
        pin: pick(IA32_VMX_TRUE_PINBASED_CTLS, IA32_VMX_PINBASED_CTLS),
        proc,
        proc2,
        exit: pick(IA32_VMX_TRUE_EXIT_CTLS, IA32_VMX_EXIT_CTLS),
        entry: pick(IA32_VMX_TRUE_ENTRY_CTLS, IA32_VMX_ENTRY_CTLS),
        ept_vpid,
        misc: rdmsr(IA32_VMX_MISC),
        cr0_fixed0: rdmsr(IA32_VMX_CR0_FIXED0),
        cr0_fixed1: rdmsr(IA32_VMX_CR0_FIXED1),
        cr4_fixed0: rdmsr(IA32_VMX_CR4_FIXED0),
        cr4_fixed1: rdmsr(IA32_VMX_CR4_FIXED1),
    }))
}

/// Enter VMX root operation on this CPU with its VMXON region.
pub fn enable(caps: &Capabilities, vmxon_region: VmxonRegion) -> Result<(), BringUpError> {
    if caps.region_size() > 4096 || caps.region_size() == 0 {
        return Err(BringUpError::Missing(Feature::Named(
            "VMCS regions of at most 4 KiB",
        )));
    }
    // Safety: applying the VMX fixed bits (read from this CPU's MSRs, see
    // `Capabilities`) keeps paging, protection and caching as they are (the
    // fixed-1 bits are PE, PG, NE in CR0 and VMXE in CR4, all compatible
    // with the running kernel).
    // CR4.OSFXSR is set as well, whatever the boot loader left: the
    // kernel's FXSAVE/FXRSTOR of a subject's state then always include the
    // XMM registers (a VM's, or a native subject's loaded by its own
    // FXRSTOR), instead of depending on the implementation-defined
    // behaviour with OSFXSR clear (docs/kernel.md, "Architectural state per
    // subject"). The kernel itself is soft-float and uses no SSE.
    // Safety (OSFXSR): it only lets FXSAVE/FXRSTOR and SSE instructions use
    // the XMM state; every x86-64 processor has it in CR4_FIXED1.
    unsafe {
        cpu::write_cr0(caps.root_cr0(cpu::read_cr0()));
        cpu::write_cr4(caps.root_cr4(cpu::read_cr4()) | CR4_OSFXSR);
    }
    // Safety: the composer allocated the region as this CPU's 4 KiB VMXON
    // page, mapped read-write for the kernel and used for nothing else; VMXON
    // has not run yet.
    unsafe { write_revision_id(vmxon_region.region, caps.revision_id()) };
    vmxon(vmxon_region)?;
    Ok(())
}
