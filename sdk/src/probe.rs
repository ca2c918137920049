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
//! Forbidden port I/O needs no wrapper: [`crate::arch::outb`] is safe
//! because the I/O bitmap decides what it does.
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
