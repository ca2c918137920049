//! Subject lifecycle in the kernel: what a fault of a restartable subject
//! (`onFault="restartSubject"`) prints and records, and the system-wide
//! restart state.
//!
//! Restarts come from a fault ([`after_fault`], [`report`]) or from a
//! `<reset/>` target event another subject raised ([`reset`]). The
//! decision for a fault (count the restart against the limit, or apply the
//! fallback) is kerncore's `lifecycle::after_fault`; the re-initialisation
//! itself happens when the subject's CPU next enters it
//! (`arch::x86_64::restart`). See docs/kernel.md, "Subject restart".

use septum_abi::SubjectId;
use septum_kerncore::exits::Decision;
use septum_kerncore::lifecycle::{
    self, Fallback, RestartLedger, RestartPolicy, RestartRequests, Verdict,
};
use septum_kerncore::plan::Scheduler;

use crate::arch::x86_64::exit::GuestRegs;
use crate::arch::x86_64::percpu::CpuCore;
use crate::kprintln;
use crate::system::SPEC;

/// Pending restart requests (set by a fault here; taken before entry).
pub static REQUESTS: RestartRequests = RestartRequests::new();

/// Restarts so far per subject.
pub static LEDGER: RestartLedger = RestartLedger::new();

/// `by` faulted (its report is printed) and its fault action is
/// `restartSubject` under `policy`: count the restart and mark it for its
/// next entry, or apply the fallback (kerncore `lifecycle::after_fault`).
/// Returns the verdict (for [`report`]) and what runs next.
pub fn after_fault(
    scheduler: &mut Scheduler<'static>,
    by: SubjectId,
    policy: RestartPolicy,
) -> (Verdict, Decision) {
    let outcome = lifecycle::after_fault(scheduler, &LEDGER, &REQUESTS, by, policy);
    if REQUESTS.is_requested(by) {
        crate::attention::ATTENTION.raise(by);
    }
    outcome
}

/// Say what [`after_fault`] decided: a line, and for a restart a crash
/// record (`subject_restarted`) with the fault; the fallbacks' own paths
/// (`Decision::StopSystem`, `Decision::SubjectStopped`) report the rest.
pub fn report(
    cpu: &CpuCore,
    frame: &GuestRegs,
    by: SubjectId,
    policy: RestartPolicy,
    verdict: Verdict,
) {
    report_line(by, policy, verdict);
    if let Verdict::Restart { .. } = verdict {
        let (number, _) = crate::arch::x86_64::crash::whose(cpu);
        crate::crash::subject_restarted(number, frame, by);
    }
}

/// The line of [`report`]. A fault reported in the faulting partition's
/// next frame (`arch::x86_64::deferred`) prints it then, and its record is
/// written just before the subject is re-initialised (its VMCS still holds
/// the fault then: [`RECORDS_OWED`]).
pub fn report_line(by: SubjectId, policy: RestartPolicy, verdict: Verdict) {
    let name = SPEC.subjects.get(by.index()).map_or("?", |s| s.name);
    match verdict {
        Verdict::Restart { count } => kprintln!(
            "septum: subject \"{name}\" restarts in its next frame (restart {count} of {})",
            policy.limit
        ),
        Verdict::Fallback(fallback) => kprintln!(
            "septum: subject \"{name}\" used up its {} restarts: {}",
            policy.limit,
            match fallback {
                Fallback::StopSubject => "stopSubject",
                Fallback::StopSystem => "stopSystem",
            }
        ),
    }
}

/// Subjects whose restart's crash record (`subject_restarted`) is still to
/// be written: by their CPU, just before it re-initialises them
/// (`arch::x86_64::restart`).
pub static RECORDS_OWED: RestartRequests = RestartRequests::new();

/// `by` raised a `reset` event at `target`: `target` restarts at its
/// next entry (`restart::restart_if_requested`). The line saying so is
/// written by the caller ([`print_reset`]), held back for `by`'s
/// partition's next frame where it can (`deferred::reset`): formatted in
/// the hypercall's exit, it ran past `by`'s deadline when the event came
/// just before it, and the next partition started late (`silence_reset`).
/// A stopped subject is never entered again, so its reset has no effect.
pub fn reset(target: SubjectId) {
    REQUESTS.request(target);
    crate::attention::ATTENTION.raise(target);
}

/// The line of `by`'s reset of `target` ([`reset`]).
pub fn print_reset(by: SubjectId, target: SubjectId) {
    let name = |id: SubjectId| SPEC.subjects.get(id.index()).map_or("?", |s| s.name);
    kprintln!(
        "septum: subject \"{}\" reset by \"{}\"; it restarts at its next entry",
        name(target),
        name(by)
    );
}
