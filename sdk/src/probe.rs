//! Deliberately forbidden accesses, for isolation tests.
//!
//! An isolation test subject tries something its policy does not allow and
//! expects the kernel to stop it. Doing that from safe Rust needs care: a
//! stray write must not be able to corrupt the subject's own Rust objects
//! if, against expectations, it succeeds. [`write_u64`] therefore refuses
//! any address in the low gigabyte (where the subject's image, stack and
//! info page live) and any address the info page lists as writable for
//! this subject; everything else either faults (the point of the test) or
//! hits memory no Rust object of the subject occupies.
//!
//! The privileged-instruction probes ([`read_msr`], [`toggle_cr0_ts`],
//! [`vmxoff`], [`raw_hypercall`]) touch no memory: in VMX non-root mode
//! each either exits to the kernel or, if the policy allowed it, has an
//! effect that cannot break Rust's memory safety (CR0.TS only makes the
//! next FPU instruction fault). Forbidden port I/O needs no wrapper:
//! [`crate::arch::outb`] is safe because the I/O bitmap decides what it
//! does.
#![allow(unsafe_code)]

use septum_abi::VirtAddr;

use crate::info::Info;

/// Lowest address a probe may touch: everything below holds the subject's
/// own image, stack and info page.
pub const PROBE_FLOOR: VirtAddr = VirtAddr(0x4000_0000);

/// Why a probe refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The `Info` is not the composer's page (see [`crate::rt::startup`]).
    NotMapped,
    /// The address is below [`PROBE_FLOOR`] or not 8-byte aligned.
    BadAddress,
    /// The address is writable memory of this subject: writing it proves
    /// nothing.
    Allowed,
}

/// Writes `value` to `address`, which the policy must not let this subject
/// write. Returns only if the write did not fault.
pub fn write_u64(info: &Info<'static>, address: VirtAddr, value: u64) -> Result<(), ProbeError> {
    if !info.mapped {
        return Err(ProbeError::NotMapped);
    }
    if address < PROBE_FLOOR || !address.is_aligned(8) {
        return Err(ProbeError::BadAddress);
    }
    if info.covers_writable(address, 8) {
        return Err(ProbeError::Allowed);
    }
    let address = usize::try_from(address.get()).map_err(|_| ProbeError::BadAddress)?;
    // Safety: the target is aligned, above every Rust object of the subject
    // (image, stack and info page lie below `PROBE_FLOOR`; there is no
    // heap) and not memory the policy lets the subject write, so the store
    // faults or changes memory the program holds no reference to.
    unsafe { core::ptr::with_exposed_provenance_mut::<u64>(address).write_volatile(value) };
    Ok(())
}

/// Reads model-specific register `msr` (`rdmsr`).
pub fn read_msr(msr: u32) -> u64 {
    let low: u32;
    let high: u32;
    // Safety: `rdmsr` writes only EDX:EAX (declared); a denied MSR exits to
    // the kernel before anything happens.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes CR0 with its TS bit flipped (`mov cr0`), which differs from the
/// kernel's read shadow and so must exit when the kernel owns CR0.
pub fn toggle_cr0_ts() {
    // Safety: reads CR0 into a scratch register and writes it back with only
    // bit 3 (TS) flipped: no memory is touched, paging and protection bits
    // are unchanged; at worst the next FPU instruction faults.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, cr0",
            "xor {tmp}, 8",
            "mov cr0, {tmp}",
            tmp = out(reg) _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Executes `vmxoff`, which always exits in VMX non-root mode.
pub fn vmxoff() {
    // Safety: in non-root mode `vmxoff` unconditionally causes a VM exit;
    // it touches no memory of the subject.
    unsafe {
        core::arch::asm!("vmxoff", options(nomem, nostack));
    }
}

/// `vmcall` with an arbitrary RAX, bypassing [`crate::SourceEventId`]'s
/// range check: the kernel must ignore numbers the policy does not define.
pub fn raw_hypercall(number: u64) {
    crate::arch::vmcall(number);
}
