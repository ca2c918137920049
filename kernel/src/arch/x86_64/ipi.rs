//! Hardware side of `ipi` events (`septum_kerncore::ipi`): the local APIC
//! made ready to accept the fixed IPI, and the IPI sent through the x2APIC
//! ICR after an `ipi` hypercall was dispatched (its target event is then
//! already pending), only while the plan gives the target's CPU to the
//! target's partition ([`after_hypercall`]).
//!
//! The receiving CPU takes the IPI like a device interrupt: with
//! external-interrupt exiting and acknowledge-interrupt-on-exit (the native
//! profile's controls) it is a VM exit, `interrupts::acknowledge` finds no
//! route for `IPI_VECTOR`, sends the end-of-interrupt, and whoever ran
//! resumes, with its pending `<inject_interrupt>` vector injected before
//! the entry. While the CPU idles or waits for a deadline in root mode,
//! the wait takes the IPI (`interrupts::take_requested`) and the idle loop
//! sees the pending event; in a frame transition, the take before the
//! entry does.
//!
//! Without an `ipi` event in the spec ([`ipi::present`], a constant) every
//! function here returns at once.

use septum_abi::SubjectId;
use septum_abi::hypercall::IPI_VECTOR;
use septum_kerncore::ipi;
use septum_kerncore::plan::Scheduler;

use super::{apic, cpu};
use crate::system::SPEC;

/// Whether the spec has any `ipi` event.
pub(super) const PRESENT: bool = ipi::present(&SPEC);
/// x2APIC interrupt command register.
const X2APIC_ICR: u32 = 0x830;
/// x2APIC spurious-interrupt vector register.
const X2APIC_SVR: u32 = 0x80f;
/// x2APIC task-priority register.
const X2APIC_TPR: u32 = 0x808;
/// SVR: APIC software enable, spurious vector 0xff.
const SVR_ENABLED: u64 = 0x1ff;
/// ICR: fixed delivery (000), physical destination, level assert (bit 14).
const ICR_FIXED: u64 = 0x4000;

/// Make this CPU's local APIC accept fixed IPIs (x2APIC mode,
/// software-enabled, priority 0), if the spec has `ipi` events and the
/// processor an x2APIC (a multi-CPU plan needs one: `smp`). Every plan CPU
/// calls it before its first entry.
pub fn init_cpu() {
    if !PRESENT || !apic::has_x2apic() {
        return;
    }
    apic::enable_x2apic();
    // Safety: software-enables the local APIC with spurious vector 0xff and
    // accepts every priority (the same values `interrupts::init_cpu` writes
    // for device lines); root mode runs with RFLAGS.IF clear, so an
    // interrupt only ever arrives as a VM exit of a subject.
    unsafe {
        cpu::wrmsr(X2APIC_TPR, 0);
        cpu::wrmsr(X2APIC_SVR, SVR_ENABLED);
    }
}

/// After `caller`'s hypercall for source event `event` was dispatched (on
/// `scheduler`'s CPU): if it is an `ipi` event whose target runs on another
/// CPU, and the plan gives that CPU to the target's partition now,
/// interrupt it. Otherwise the target's partition does not run there, and
/// its event waits, pending, for its next entry: an IPI now would exit
/// whichever other partition runs, time the sender could modulate and that
/// partition measure (`ipi_confined`, docs/kernel.md "ipi events"). The
/// test is on the plan and the time (`ipi::holds_cpu`), not on the target
/// CPU's state, so it tells the sender nothing about that CPU.
#[inline(always)]
pub fn after_hypercall(scheduler: &Scheduler<'_>, caller: Option<SubjectId>, event: u64) {
    if !PRESENT {
        return;
    }
    let Some(to) = caller
        .and_then(|by| ipi::destination(&SPEC, by, event, |target| scheduler.partition_of(target)))
    else {
        return;
    };
    let Some(partition) = to.partition else {
        return;
    };
    if !ipi::holds_cpu(
        &SPEC,
        scheduler.plan(),
        scheduler.major_start(),
        to.cpu,
        partition,
        cpu::rdtsc(),
    ) {
        return;
    }
    // Safety: a fixed IPI with the kernel's own vector to a plan CPU's
    // APIC id from the spec, through the x2APIC ICR (x2APIC mode: the
    // plan has several CPUs, which `smp` only starts in that mode). The
    // receiver acknowledges it on its exit (module doc).
    unsafe {
        cpu::wrmsr(
            X2APIC_ICR,
            (u64::from(to.apic.0) << 32) | ICR_FIXED | u64::from(IPI_VECTOR),
        );
    }
}
