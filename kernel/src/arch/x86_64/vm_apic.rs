//! The arch half of a VM's local APIC (kerncore `vm::lapic`; docs/kernel.md,
//! "Local APIC of a VM"): the VMCS fields of APIC virtualization, the
//! APIC-write exit, and the timer check before each entry.
//!
//! Why here and not in a monitor: the APIC timer is Linux's clock event
//! device and its EOIs and TPR writes happen on every interrupt; with the
//! CPU's APIC virtualization most of them never exit, and the rest (a
//! register write, a deadline WRMSR) is a few instructions of kerncore
//! logic on the exit path, where a round trip to a monitor subject would
//! cost two world switches.
//!
//! The virtual-APIC page is the `page` of the VM's [`Lapic`], inside its
//! per-VM slot in the kernel's data window, which the composer
//! identity-maps: its address is its physical address, and resetting the
//! slot resets the APIC. The APIC-access page is the composer's (the
//! spec's `apic_access`, EPT-mapped at 0xFEE0_0000); nobody reads or
//! writes it, the CPU only compares addresses with it.
//!
//! The VMCS writes here are the APIC-virtualization pointers and the
//! guest-interrupt status (RVI, the highest vector pending in the page's
//! IRR) of the current VM's VMCS; a halted VM is woken (`vm::wake`) by a
//! posted vector.

use septum_abi::{PhysAddr, TscCycles};
use septum_kerncore::vm::lapic::{Lapic, Written};

use super::cpu::rdtsc;
use super::vmx::{VmxError, field, vmread, vmwrite};

/// VMCS: virtual-APIC address (SDM 25.6.8).
const VIRTUAL_APIC_ADDRESS: u64 = 0x2012;
/// VMCS: APIC-access address.
const APIC_ACCESS_ADDRESS: u64 = 0x2014;
/// VMCS: EOI-exit bitmaps 0-3 (all clear: every EOI is virtualised).
const EOI_EXIT_BITMAPS: [u64; 4] = [0x201c, 0x201e, 0x2020, 0x2022];
/// VMCS: guest interrupt status (RVI in bits 7:0, SVI in bits 15:8).
const GUEST_INTERRUPT_STATUS: u64 = 0x0810;
/// VMCS: TPR threshold (unused with virtual-interrupt delivery).
const TPR_THRESHOLD: u64 = 0x401c;

/// Reset `lapic` and point the current VMCS at it and at the APIC-access
/// page `access`: nothing pending, nothing in service, every EOI
/// virtualised.
///
/// # Safety
/// The current VMCS must be the VM's that owns `lapic` (its per-VM slot),
/// with the APIC-virtualization controls the `vm` profile sets, and
/// `access` that subject's APIC-access page from the spec.
pub unsafe fn init(lapic: &mut Lapic, access: PhysAddr) -> Result<(), VmxError> {
    *lapic = Lapic::new();
    // The kernel's data window is identity-mapped: the page's address is
    // its physical address (4 KiB aligned: `ApicPage`'s alignment).
    let page = core::ptr::addr_of!(lapic.page) as u64;
    // Safety: the caller's contract; the virtual-APIC page is kernel data
    // the guest cannot map (it is in no EPT), the APIC-access page the
    // VM's own, the EOI-exit bitmaps and the guest interrupt status zero
    // (valid for any guest), the TPR threshold 0.
    unsafe {
        vmwrite(VIRTUAL_APIC_ADDRESS, page)?;
        vmwrite(APIC_ACCESS_ADDRESS, access.get())?;
        for bitmap in EOI_EXIT_BITMAPS {
            vmwrite(bitmap, 0)?;
        }
        vmwrite(GUEST_INTERRUPT_STATUS, 0)?;
        vmwrite(TPR_THRESHOLD, 0)
    }
}

/// An APIC-write exit (trap-like: the write is done, RIP is past it): let
/// kerncore sanitise the register the exit names and act on it. Returns
/// `false` for a write the VM may not make (a fault of the subject).
pub fn write_exit(lapic: &mut Lapic, sleeping: &mut bool) -> Result<bool, VmxError> {
    let offset = (vmread(field::EXIT_QUALIFICATION)? & 0xfff) as u16;
    let value = lapic.page.get(offset);
    match lapic.write(offset, value) {
        Written::Done => Ok(true),
        Written::Posted(_) => {
            post(lapic, sleeping)?;
            Ok(true)
        }
        Written::Refused => Ok(false),
    }
}

/// Before an entry of the VM: fire the timer if its deadline has passed,
/// wake the VM for a vector it can take, and return when the preemption
/// timer must bring the VM back: `wake`, or the timer's deadline if
/// earlier. A fixed amount of work: one TSC read, at most a few VMCS
/// accesses.
pub fn before_entry(
    lapic: &mut Lapic,
    sleeping: &mut bool,
    wake: TscCycles,
) -> Result<TscCycles, VmxError> {
    if lapic.due(rdtsc().get()).is_some() {
        post(lapic, sleeping)?;
    } else if *sleeping && lapic.deliverable() {
        // A vector left pending when the guest halted (its STI; HLT
        // window): wake it to take it.
        super::vm::wake(sleeping)?;
    }
    Ok(match lapic.wake_at() {
        Some(deadline) if deadline < wake.get() => TscCycles(deadline),
        _ => wake,
    })
}

/// A vector became pending in the page's IRR: make it the guest's RVI (the
/// CPU then delivers it when RFLAGS.IF, the interruptibility state and the
/// priority allow) and wake a halted VM.
fn post(lapic: &Lapic, sleeping: &mut bool) -> Result<(), VmxError> {
    let status = vmread(GUEST_INTERRUPT_STATUS)?;
    let rvi = u64::from(lapic.highest_irr());
    // Safety: RVI is the highest vector pending in the virtual-APIC page's
    // IRR, SVI kept: the guest interrupt status virtual-interrupt delivery
    // expects; any value is valid for VM entry.
    unsafe { vmwrite(GUEST_INTERRUPT_STATUS, (status & 0xff00) | rvi)? };
    if *sleeping {
        super::vm::wake(sleeping)?;
    }
    Ok(())
}
