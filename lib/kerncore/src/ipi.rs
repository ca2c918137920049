//! `ipi` events: which CPU a raised `ipi` event interrupts.
//!
//! An `ipi` event marks its target event pending like an `async` one
//! (`exits::dispatch`); afterwards the kernel sends the target's CPU an
//! inter-processor interrupt (vector `septum_abi::hypercall::IPI_VECTOR`)
//! if that CPU is another one than the sender's and the target's partition
//! has that CPU ([`Destination`]). There it is an external-interrupt exit
//! (or, if the CPU idles or waits in root mode, the wait takes it, while
//! the idle loop sees the pending event by itself): the running subject is
//! resumed, with any `<inject_interrupt>` vector of the event injected at
//! once instead of at its next frame. Nothing else changes on the target
//! CPU: no subject is preempted, the plan is not touched.
//!
//! The decision is here ([`destination`]); the arch layer only writes the
//! x2APIC ICR.

use septum_abi::hypercall::MAX_EVENTS;
use septum_abi::{SubjectId, TscCycles};

use crate::spec::{ApicId, PartitionId, SourceEvent, SystemSpec};

/// Whether any subject of `spec` has an `ipi` event (a constant for the
/// kernel's spec: without one, the hypercall path costs nothing more).
pub const fn present(spec: &SystemSpec) -> bool {
    let mut rest = spec.subjects;
    while let [first, tail @ ..] = rest {
        if first.ipi_events != 0 {
            return true;
        }
        rest = tail;
    }
    false
}

/// Where an `ipi` event goes: the target CPU's APIC id, and the partition
/// of the target subject. The kernel interrupts that CPU only while the
/// plan gives it to that partition ([`holds_cpu`]): an IPI that came while
/// another partition ran would cost that partition an exit, time the
/// sender could modulate and the other partition measure, a flow the
/// policy never granted. The target misses nothing: its event is pending,
/// and its partition's next entry injects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    /// The target CPU's local APIC id.
    pub apic: ApicId,
    /// The target CPU (the index of the plan's per-CPU state).
    pub cpu: u32,
    /// The target subject's partition (`None` for a subject in no
    /// partition, which never runs: then no IPI is needed).
    pub partition: Option<PartitionId>,
}

/// Where to send the IPI after `caller` raised source event `event`: to
/// the CPU of the event's target, if the event is an `ipi` event of the
/// caller and the target runs on another CPU than the caller. `None`
/// otherwise (an unknown subject or event, another mode, the same CPU).
/// `partition_of` names a subject's partition (`Scheduler::partition_of`).
pub fn destination(
    spec: &SystemSpec,
    caller: SubjectId,
    event: u64,
    partition_of: impl Fn(SubjectId) -> Option<PartitionId>,
) -> Option<Destination> {
    let number = usize::try_from(event).ok().filter(|&n| n < MAX_EVENTS)?;
    let subject = spec.subjects.get(caller.index())?;
    if (subject.ipi_events >> number) & 1 == 0 {
        return None;
    }
    let target = match subject.source_events.get(number).copied().flatten()? {
        SourceEvent::Async { target, .. } | SourceEvent::Reset { target, .. } => target,
        _ => return None,
    };
    let cpu = spec.subjects.get(target.index())?.cpu;
    if cpu == subject.cpu {
        return None;
    }
    let apic = spec
        .kernel
        .apic_ids
        .get(usize::try_from(cpu).ok()?)
        .copied()?;
    Some(Destination {
        apic,
        cpu,
        partition: partition_of(target),
    })
}

/// Whether the plan gives CPU `cpu` to `partition` at `now`, in plan
/// `plan` whose current major frame began at `major_start` (the sender's
/// own, the same on every plan CPU). From the plan and the time alone, not
/// from what the target CPU is doing: whether an IPI is sent (and what
/// the send costs the sender) says nothing about how long that CPU's last
/// transition took. An IPI sent near either end of the frame reaches the
/// CPU in a transition, where the kernel takes it before the next entry.
pub fn holds_cpu(
    spec: &SystemSpec,
    plan: usize,
    major_start: TscCycles,
    cpu: u32,
    partition: PartitionId,
    now: TscCycles,
) -> bool {
    let Some(major) = spec.major_frames.get(plan) else {
        return false;
    };
    let Some(frames) = usize::try_from(cpu).ok().and_then(|c| major.cpus.get(c)) else {
        return false;
    };
    let Some(offset) = now.get().checked_sub(major_start.get()) else {
        return false;
    };
    frames
        .iter()
        .find(|minor| offset < minor.end.get())
        .is_some_and(|minor| minor.partition == partition)
}

/// The partition whose groups hold `subject` (each subject is in at most
/// one group of one partition: a policy rule), by a walk over the spec:
/// the reference for `Scheduler::partition_of`, which the kernel uses (one
/// load on the `ipi` hypercall's path).
pub fn partition_of(spec: &SystemSpec, subject: SubjectId) -> Option<PartitionId> {
    let mut number: u16 = 0;
    for partition in spec.partitions {
        for group in partition.groups {
            if spec
                .groups
                .get(usize::from(group.0))
                .is_some_and(|g| g.subjects.contains(&subject))
            {
                return Some(PartitionId(number));
            }
        }
        number = number.checked_add(1)?;
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::spec::{FaultAction, KernelSpec, SubjectSpec};
    use crate::testing::{KERNEL, TWO_PARTITIONS, YIELD, events, subject};

    const TO_B: SourceEvent = SourceEvent::Async {
        target: SubjectId(1),
        target_event: 2,
    };
    const TO_C: SourceEvent = SourceEvent::Async {
        target: SubjectId(2),
        target_event: 2,
    };

    static SUBJECTS: [SubjectSpec; 3] = [
        SubjectSpec {
            // 1: ipi to b (CPU 1); 2: async to b; 3: ipi to c (CPU 0);
            // 4: a kernel event marked ipi (a stale spec).
            ipi_events: 1 << 1 | 1 << 3 | 1 << 4,
            ..subject(
                "a",
                FaultAction::StopSystem,
                events(&[(1, TO_B), (2, TO_B), (3, TO_C), (4, YIELD)]),
            )
        },
        SubjectSpec {
            cpu: 1,
            ..subject("b", FaultAction::StopSystem, events(&[]))
        },
        subject("c", FaultAction::StopSystem, events(&[])),
    ];

    fn spec() -> SystemSpec {
        SystemSpec {
            name: "ipi",
            kernel: KernelSpec {
                cpu_count: 2,
                apic_ids: &[ApicId(0), ApicId(6)],
                ..KERNEL
            },
            subjects: &SUBJECTS,
            partitions: TWO_PARTITIONS.partitions,
            groups: TWO_PARTITIONS.groups,
            major_frames: TWO_PARTITIONS.major_frames,
            image_regions: &[],
        }
    }

    #[test]
    fn only_an_ipi_event_to_another_cpu_interrupts() {
        let spec = spec();
        assert!(present(&spec));
        let a = SubjectId(0);
        // Where event `event` of `caller` sends its IPI.
        let to = |caller, event| destination(&spec, caller, event, |s| partition_of(&spec, s));
        // b is in partition p_b of the test plan.
        assert_eq!(
            to(a, 1),
            Some(Destination {
                apic: ApicId(6),
                cpu: 1,
                partition: Some(PartitionId(1))
            })
        );
        assert_eq!(to(a, 2), None, "async");
        assert_eq!(to(a, 3), None, "same CPU");
        assert_eq!(to(a, 4), None, "kernel event");
        assert_eq!(to(a, 0), None, "undefined");
        assert_eq!(to(a, 64), None);
        assert_eq!(to(a, u64::MAX), None);
        assert_eq!(to(SubjectId(1), 1), None);
        assert_eq!(to(SubjectId(9), 1), None);
        assert!(!present(&TWO_PARTITIONS));
    }

    #[test]
    fn the_partition_of_a_subject_is_the_one_whose_group_holds_it() {
        assert_eq!(
            partition_of(&TWO_PARTITIONS, SubjectId(0)),
            Some(PartitionId(0))
        );
        assert_eq!(
            partition_of(&TWO_PARTITIONS, SubjectId(1)),
            Some(PartitionId(1))
        );
        assert_eq!(partition_of(&TWO_PARTITIONS, SubjectId(7)), None);
    }

    #[test]
    fn the_plan_and_the_time_say_which_partition_holds_a_cpu() {
        // TWO_PARTITIONS, CPU 0: p_a until 100, p_b until 300.
        let start = TscCycles(1000);
        let at = |offset: u64, p: u16| {
            holds_cpu(
                &TWO_PARTITIONS,
                0,
                start,
                0,
                PartitionId(p),
                TscCycles(1000 + offset),
            )
        };
        assert!(at(0, 0) && at(99, 0) && !at(100, 0));
        assert!(!at(99, 1) && at(100, 1) && at(299, 1));
        // After the major frame (a transition) or before it: nobody.
        assert!(!at(300, 1) && !at(300, 0));
        assert!(!holds_cpu(
            &TWO_PARTITIONS,
            0,
            start,
            0,
            PartitionId(0),
            TscCycles(999)
        ));
        // No such plan or CPU.
        assert!(!holds_cpu(
            &TWO_PARTITIONS,
            1,
            start,
            0,
            PartitionId(0),
            start
        ));
        assert!(!holds_cpu(
            &TWO_PARTITIONS,
            0,
            start,
            1,
            PartitionId(0),
            start
        ));
    }
}
