//! The link-time no-panic proof.
//!
//! The release kernel's panic handler calls [`unreachable_panic`], which
//! calls a function that is defined nowhere. If the optimiser cannot remove
//! every path to the panic handler, the call survives and the link fails
//! with an undefined `septum_panic_is_reachable`; a kernel that links has no
//! reachable panic (for the compiled-in system spec). The `panic-probe`
//! feature adds a reachable panic to show the proof is active.

unsafe extern "C" {
    /// Defined nowhere: a surviving reference makes the link fail.
    fn septum_panic_is_reachable() -> !;
}

/// Never runs in a kernel that links.
#[inline(always)]
pub fn unreachable_panic() -> ! {
    // Safety: never executed: if a call to this function survives
    // optimisation, the link fails because the callee does not exist.
    unsafe { septum_panic_is_reachable() }
}
