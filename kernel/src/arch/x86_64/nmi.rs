//! NMIs that arrive while a CPU is in root mode: noted and returned from.
//!
//! An NMI while a subject runs is a VM exit (`Exit::Nmi`, the subject
//! resumes). One that arrives in root mode (on the exit path, in the idle
//! loop, at a barrier, at boot) goes through the IDT, vector 2, on its own
//! IST stack. It is not the kernel's doing and says nothing wrong about
//! its state (a watchdog, a debugger, a platform event), so resetting the
//! machine for it would turn an outside event into a denial of service.
//! Instead [`septum_root_nmi`] counts it and returns with IRETQ, which also
//! ends the CPU's NMI blocking (SDM Vol. 3A, 6.7.1). The handler touches no
//! register but the flags of its locked increment, which IRETQ restores,
//! and no memory but the counter, so it is safe wherever it interrupts the
//! kernel (interrupts stay off in root mode; an NMI cannot nest).
//!
//! At poweroff the kernel prints the count if it is not zero ([`report`]).
//! The test-only feature `root-nmi-probe` sends this CPU an NMI through the
//! x2APIC before the first VM entry ([`probe`]; system test `rootnmi`).

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

/// Root-mode NMIs of every CPU since boot (incremented by the handler).
#[unsafe(no_mangle)]
static SEPTUM_ROOT_NMIS: AtomicU64 = AtomicU64::new(0);

global_asm!(
    ".text",
    ".balign 16",
    ".global septum_root_nmi",
    "septum_root_nmi:",
    "lock incq SEPTUM_ROOT_NMIS(%rip)",
    "iretq",
    options(att_syntax)
);

unsafe extern "C" {
    /// The vector-2 handler above (its address goes into every CPU's IDT).
    static septum_root_nmi: u8;
}

/// Address of the root-mode NMI handler, for the IDT's vector 2.
pub fn handler_address() -> u64 {
    (&raw const septum_root_nmi) as u64
}

/// Root-mode NMIs noted so far (all CPUs).
pub fn count() -> u64 {
    SEPTUM_ROOT_NMIS.load(Ordering::Relaxed)
}

/// Print the number of root-mode NMIs, if any (at poweroff).
pub fn report() {
    let noted = count();
    if noted != 0 {
        crate::kprintln!("septum: root-mode NMIs noted and returned from: {noted}");
    }
}

/// Test-only (feature `root-nmi-probe`): send this CPU an NMI through its
/// local APIC (x2APIC ICR: delivery mode NMI, destination its own APIC id)
/// in root mode, and wait until the handler has counted it. Prints whether
/// it came back; the plan then starts as usual.
#[cfg(feature = "root-nmi-probe")]
pub fn probe(apic_id: septum_kerncore::spec::ApicId) {
    use super::{apic, cpu};
    if !apic::has_x2apic() {
        crate::kprintln!("septum: root-mode NMI probe: no x2APIC, not sent");
        return;
    }
    apic::enable_x2apic();
    let before = count();
    crate::kprintln!("septum: root-mode NMI probe: sending an NMI to this CPU");
    apic::send_nmi(apic_id);
    let start = cpu::rdtsc().get();
    while count() == before {
        if cpu::rdtsc().get().wrapping_sub(start) > 10_000_000 {
            crate::kprintln!("septum: root-mode NMI probe: no NMI arrived");
            return;
        }
        cpu::pause();
    }
    crate::kprintln!(
        "septum: root-mode NMI probe: returned from the NMI ({} noted)",
        count()
    );
}
