//! Fault reports written in the faulting partition's own time.
//!
//! A fault's report costs time in root mode: formatting the fault line
//! into the console ring (about 3100 TSC ticks in Bochs) and, for a
//! restart, its crash record (the restart path took about 30600 in all).
//! Done in the fault's exit, that time ran over the minor-frame boundary
//! whenever the fault came close to it, and the next partition started
//! late: it could tell that its neighbour had faulted, and when
//! (docs/kernel.md, "Constant-time frame transitions"; measured in
//! `silence_fault`: up to 22000 ticks, and +289 with only the record
//! moved). So the exit only copies what the report needs (the
//! [`FaultInfo`] already read and the register frame: cheap, fixed work)
//! into this CPU's queue, and [`run_due`] writes it at the start of the
//! faulting partition's next minor frame, before its subject is entered:
//! the partition pays for its own fault. A report that does not fit before
//! that frame's deadline ([`LINES_BUDGET`]) waits for the partition's next
//! frame. A restart's crash record is written by the restart itself, just
//! before the subject is re-initialised in its next frame, when its VMCS,
//! still holding the fault's exit, is current again
//! (`lifecycle::RECORDS_OWED`). The scheduling decision (stop, restart,
//! hand the group on) is made at the fault, as before; only the output
//! moves.
//!
//! What is deferred: the fault line (with a panic text before it), the
//! restart or fallback line, the `stopped; system continues` line. A fault
//! that stops the system is reported at once (nothing runs afterwards),
//! and every queued report of the CPU is written first ([`run_all`], also
//! before poweroff, reboot and a `panic` event). The queue holds
//! [`QUEUE_LEN`] reports per CPU (one per partition of the CPU whose
//! subject faulted since that partition's last frame); when it is full, a
//! report is written at once, as before this module.

use core::cell::UnsafeCell;

use septum_abi::SubjectId;
use septum_kerncore::exits::FaultInfo;
use septum_kerncore::lifecycle::{RestartPolicy, Verdict};
use septum_kerncore::spec::PartitionId;

use super::cpu::rdtsc;
use super::exit::GuestRegs;
use super::percpu::{CpuCore, MAX_CPUS};
use crate::kprintln;
use crate::system::SPEC;

/// Reports a CPU can hold back at once.
pub(super) const QUEUE_LEN: usize = 8;

/// What a restartable subject's fault led to (`lifecycle::after_fault`).
#[derive(Clone, Copy)]
struct RestartOutcome {
    policy: RestartPolicy,
    verdict: Verdict,
}

/// One held-back report.
#[derive(Clone, Copy)]
struct Report {
    /// The faulting subject's partition (the frame it faulted in).
    partition: Option<PartitionId>,
    subject: SubjectId,
    info: FaultInfo,
    /// Its registers at the fault (a panic text is read from them).
    regs: GuestRegs,
    restart: Option<RestartOutcome>,
    stopped: bool,
}

/// A CPU's held-back reports, oldest first.
struct Queue([Option<Report>; QUEUE_LEN]);

/// One queue per CPU, reached only through [`queue`].
struct Queues([UnsafeCell<Queue>; MAX_CPUS]);

// Safety: a queue is only reached through `queue`, by its own CPU, with
// that CPU's unique `&mut CpuCore` borrowed for as long as the reference
// lives (as `exit::SubjectSlots`).
unsafe impl Sync for Queues {}

static QUEUES: Queues = Queues([const { UnsafeCell::new(Queue([None; QUEUE_LEN])) }; MAX_CPUS]);

/// `cpu`'s queue.
fn queue(cpu: &mut CpuCore) -> Option<&mut Queue> {
    let slot = QUEUES.0.get(usize::try_from(cpu.number.get()).ok()?)?;
    // Safety: the queue of `cpu.number`, reached with that CPU's `&mut
    // CpuCore` borrowed for the reference's lifetime: see `Queues`.
    Some(unsafe { &mut *slot.get() })
}

/// The loaded subject faulted (`info`, registers in `frame`) and the fault
/// does not stop the system: hold its report back. Returns `false` if the
/// queue is full (the caller reports at once).
pub(super) fn fault(cpu: &mut CpuCore, frame: &GuestRegs, info: &FaultInfo) -> bool {
    let Some(subject) = cpu.loaded.map(|vmcs| vmcs.id()) else {
        return false;
    };
    let partition = cpu.scheduler.partition();
    let Some(queue) = queue(cpu) else {
        return false;
    };
    let Some(free) = queue.0.iter_mut().find(|slot| slot.is_none()) else {
        return false;
    };
    *free = Some(Report {
        partition,
        subject,
        info: *info,
        regs: *frame,
        restart: None,
        stopped: false,
    });
    true
}

/// The newest held-back report of `subject`, if any.
fn newest(cpu: &mut CpuCore, subject: SubjectId) -> Option<&mut Report> {
    queue(cpu)?
        .0
        .iter_mut()
        .rev()
        .flatten()
        .find(|report| report.subject == subject)
}

/// `by` was stopped after a fault: add `stopped; system continues` to its
/// held-back report. Returns `false` if there is none (the caller prints
/// the line at once).
pub(super) fn stopped(cpu: &mut CpuCore, by: SubjectId) -> bool {
    match newest(cpu, by) {
        Some(report) => {
            report.stopped = true;
            true
        }
        None => false,
    }
}

/// `by`'s fault led to `verdict` under `policy`: add the restart line to
/// its held-back report; for a restart, its crash record is written just
/// before it is re-initialised (`lifecycle::RECORDS_OWED`, read by
/// `restart`), when its VMCS, still holding the fault's exit, is current
/// again. Returns `false` if there is no held-back report (the caller
/// reports at once).
pub(super) fn restart(
    cpu: &mut CpuCore,
    by: SubjectId,
    policy: RestartPolicy,
    verdict: Verdict,
) -> bool {
    match newest(cpu, by) {
        Some(report) => {
            report.restart = Some(RestartOutcome { policy, verdict });
            if let Verdict::Restart { .. } = verdict {
                crate::lifecycle::RECORDS_OWED.request(by);
            }
            true
        }
        None => false,
    }
}

/// Most TSC ticks writing a report's lines may take (measured in Bochs:
/// 3110 for a fault line; a panic text and a restart line add lines of
/// the same kind).
const LINES_BUDGET: u64 = 12_000;

/// What writing `report` may cost at most.
fn budget(_report: &Report) -> u64 {
    LINES_BUDGET
}

/// A minor frame has begun: write the reports of its partition's faults,
/// oldest first, as long as each fits before the frame's deadline (its
/// [`budget`]); the rest wait for the partition's next frame. Called
/// before the frame's first subject is entered: the time is the
/// partition's own, and it never runs over into the next partition's.
pub(super) fn run_due(cpu: &mut CpuCore) {
    let partition = cpu.scheduler.partition();
    let deadline = cpu.scheduler.deadline().get();
    let mut in_time = true;
    take_and_write(cpu, |report| {
        if report.partition != partition {
            return false;
        }
        in_time = in_time && rdtsc().get().saturating_add(budget(report)) <= deadline;
        in_time
    });
}

/// Write every held-back report of this CPU (before the machine stops).
pub(super) fn run_all(cpu: &mut CpuCore) {
    take_and_write(cpu, |_| true);
}

/// Write and drop the reports `due` selects, oldest first.
fn take_and_write(cpu: &mut CpuCore, mut due: impl FnMut(&Report) -> bool) {
    let Some(queue) = queue(cpu) else {
        return;
    };
    for slot in &mut queue.0 {
        if let Some(report) = slot.take_if(|report| due(report)) {
            write(&report);
        }
    }
}

/// The lines (and record) of one report, in the order the exit used to
/// print them.
fn write(report: &Report) {
    let name = SPEC
        .subjects
        .get(report.subject.index())
        .map_or("?", |s| s.name);
    super::exit::print_fault(name, &report.regs, &report.info);
    if let Some(restart) = &report.restart {
        crate::lifecycle::report_line(report.subject, restart.policy, restart.verdict);
    }
    if report.stopped {
        kprintln!("septum: subject \"{name}\" stopped; system continues");
    }
}
