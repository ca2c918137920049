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
//! restart or fallback line, the `stopped; system continues` line, a
//! missed minor-frame deadline's line ([`missed`]: formatted at the
//! boundary it took about 1400 ticks, beyond the pad; since session 12
//! the boundary only adds one to the subject's uncounted misses, and the
//! count, its powers of two and the lines come in the partition's next
//! frame),
//! and a `reset` event's line ([`reset`]: formatted in the hypercall's
//! exit, it ran past the resetter's deadline when the event came just
//! before it; `silence_reset`: resumes spread over 1265 ticks). A
//! fault
//! that stops the system is reported at once (nothing runs afterwards),
//! and every queued report of the CPU is written first ([`before_stop`], also
//! before poweroff, reboot and a `panic` event). The queue holds
//! [`QUEUE_LEN`] reports and as many reset lines per CPU, in arrival
//! order; when it is full, a report is written at once, as before this
//! module. Missed deadlines need no slot (a counter per subject,
//! `subject_report`).

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
pub(super) const QUEUE_LEN: usize = 4;

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

/// A `reset` event's line to write (`lifecycle::print_reset`).
#[derive(Clone, Copy)]
struct Reset {
    /// The partition of the subject that raised it.
    partition: Option<PartitionId>,
    by: SubjectId,
    target: SubjectId,
}

/// A CPU's held-back reports and missed-deadline lines, oldest first, and
/// which partitions they are for (so that the frame transition, which
/// asks at every boundary, skips the queue at once in every other
/// partition's frame).
struct Queue {
    reports: [Option<Report>; QUEUE_LEN],
    resets: [Option<Reset>; QUEUE_LEN],
    /// Bit `p % 64` for every partition `p` with something held: a frame
    /// of another partition skips the queue after one test.
    partitions: u64,
}

/// The bit of `partition` in [`Queue::partitions`] (`None`: no partition,
/// bit 63 like any other).
fn partition_bit(partition: Option<PartitionId>) -> u64 {
    1u64 << (partition.map_or(63, |p| p.0) % 64)
}

/// One queue per CPU, reached only through [`queue`].
struct Queues([UnsafeCell<Queue>; MAX_CPUS]);

// Safety: a queue is only reached through `queue`, by its own CPU, with
// that CPU's unique `&mut CpuCore` borrowed for as long as the reference
// lives (as `exit::SubjectSlots`).
unsafe impl Sync for Queues {}

static QUEUES: Queues = Queues(
    [const {
        UnsafeCell::new(Queue {
            reports: [None; QUEUE_LEN],
            resets: [None; QUEUE_LEN],
            partitions: 0,
        })
    }; MAX_CPUS],
);

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
    hold(
        cpu,
        partition,
        |queue| &mut queue.reports,
        Report {
            partition,
            subject,
            info: *info,
            regs: *frame,
            restart: None,
            stopped: false,
        },
    )
}

/// Put `entry`, held back for `partition`'s next frame, into the first
/// free slot of the list `slots` picks from `cpu`'s queue. Returns `false`
/// if that list is full (the caller writes at once).
fn hold<T>(
    cpu: &mut CpuCore,
    partition: Option<PartitionId>,
    slots: impl FnOnce(&mut Queue) -> &mut [Option<T>; QUEUE_LEN],
    entry: T,
) -> bool {
    let Some(queue) = queue(cpu) else {
        return false;
    };
    let Some(free) = slots(queue).iter_mut().find(|slot| slot.is_none()) else {
        return false;
    };
    *free = Some(entry);
    queue.partitions |= partition_bit(partition);
    true
}

/// The subject of the frame that just ended missed its deadline
/// (`subject_report::frame_end` added it to its uncounted misses): its
/// partition's next frame counts it and writes its line if the count is
/// a power of two. Called in the frame transition, before the scheduler
/// moves on, so the current partition is the subject's. One bit: the
/// transition carries no slot search, no count, no line (a miss that was
/// the 2nd, 4th, 8th... made the transition about 50 ticks longer than a
/// plain one, `silence_fault`).
#[inline(always)]
pub(super) fn missed(cpu: &mut CpuCore) {
    let partition = cpu.scheduler.partition();
    if let Some(queue) = queue(cpu) {
        queue.partitions |= partition_bit(partition);
    }
}

/// The loaded subject `by` raised a `reset` event at `target`: hold back
/// its line for `by`'s partition's next frame. Returns `false` if the
/// queue is full (the caller prints at once).
pub(super) fn reset(cpu: &mut CpuCore, by: SubjectId, target: SubjectId) -> bool {
    let partition = cpu.scheduler.partition();
    hold(
        cpu,
        partition,
        |queue| &mut queue.resets,
        Reset {
            partition,
            by,
            target,
        },
    )
}

/// The newest held-back report of `subject`, if any.
fn newest(cpu: &mut CpuCore, subject: SubjectId) -> Option<&mut Report> {
    queue(cpu)?
        .reports
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

/// Whether [`run_due`] has something to write for the partition whose
/// frame begins on `cpu` (one queue lookup and a bit test).
pub(super) fn due(cpu: &mut CpuCore) -> bool {
    let partition = cpu.scheduler.partition();
    queue(cpu).is_some_and(|queue| queue.partitions & partition_bit(partition) != 0)
}

/// A minor frame has begun: write the reports of its partition's faults,
/// oldest first, as long as each fits before the frame's deadline (its
/// [`budget`]); the rest wait for the partition's next frame. Called
/// before the frame's first subject is entered: the time is the
/// partition's own, and it never runs over into the next partition's.
pub(super) fn run_due(cpu: &mut CpuCore) {
    if !due(cpu) {
        return;
    }
    let partition = cpu.scheduler.partition();
    let deadline = cpu.scheduler.deadline().get();
    // Once one does not fit, the later ones wait too (their order stays).
    let in_time = core::cell::Cell::new(true);
    let due = |of: Option<PartitionId>, budget: u64| {
        if of != partition {
            return false;
        }
        in_time.set(in_time.get() && rdtsc().get().saturating_add(budget) <= deadline);
        in_time.get()
    };
    take_and_write(cpu, due);
}

/// The machine is about to stop (poweroff, reboot, a `panic` event, a
/// fault that stops the system): write every held-back report of this
/// CPU, send the console's ring to the UART and make the lines that
/// follow (the final reports) synchronous, so none of them can be
/// dropped from a full ring.
pub(super) fn before_stop(cpu: &mut CpuCore) {
    take_and_write(cpu, |_, _| true);
    if cpu.number.get() == 0 {
        super::vtd::print_held(usize::MAX);
    }
    crate::console::drain();
}

/// Write and drop the missed-deadline lines, the reset lines and the
/// reports that `due` selects (given the partition each is for and what
/// writing it may cost at most), oldest first (the lines first: a
/// subject's miss comes before its fault, which ends its running).
fn take_and_write(cpu: &mut CpuCore, mut due: impl FnMut(Option<PartitionId>, u64) -> bool) {
    // The subjects of this CPU with uncounted misses, and their partitions.
    let mut missing = 0u64;
    for (id, spec) in (0u16..).map(SubjectId).zip(SPEC.subjects) {
        if spec.cpu != cpu.number.get() || !crate::subject_report::has_uncounted(id) {
            continue;
        }
        let partition = cpu.scheduler.partition_of(id);
        if due(partition, LINES_BUDGET) {
            crate::subject_report::count_misses(id);
        } else {
            missing |= partition_bit(partition);
        }
    }
    let Some(queue) = queue(cpu) else {
        return;
    };
    for slot in &mut queue.resets {
        if let Some(reset) = slot.take_if(|reset| due(reset.partition, LINES_BUDGET)) {
            crate::lifecycle::print_reset(reset.by, reset.target);
        }
    }
    for slot in &mut queue.reports {
        if let Some(report) = slot.take_if(|report| due(report.partition, budget(report))) {
            write(&report);
        }
    }
    // Keep the queues in arrival order for the next run (a new entry
    // takes the first free slot).
    pack(&mut queue.resets);
    pack(&mut queue.reports);
    let resets = queue.resets.iter().flatten().map(|reset| reset.partition);
    let reports = queue
        .reports
        .iter()
        .flatten()
        .map(|report| report.partition);
    queue.partitions = resets
        .chain(reports)
        .fold(missing, |bits, partition| bits | partition_bit(partition));
}

/// Move the entries of `slots` to its front, in their order.
fn pack<T: Copy>(slots: &mut [Option<T>; QUEUE_LEN]) {
    let mut packed = [None; QUEUE_LEN];
    for (slot, entry) in packed.iter_mut().zip(slots.iter().flatten()) {
        *slot = Some(*entry);
    }
    *slots = packed;
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
