//! `ipi` events: which CPU a raised `ipi` event interrupts.
//!
//! An `ipi` event marks its target event pending like an `async` one
//! (`exits::dispatch`); afterwards the kernel sends the target's CPU an
//! inter-processor interrupt (vector `septum_abi::hypercall::IPI_VECTOR`)
//! if that CPU is another one than the sender's. There it is an
//! external-interrupt exit (or, if the CPU idles in root mode, it waits in
//! the local APIC until the next entry, while the idle loop sees the
//! pending event by itself): the running subject is resumed, with any
//! `<inject_interrupt>` vector of the event injected at once instead of at
//! its next frame. Nothing else changes on the target CPU: no subject is
//! preempted, the plan is not touched.
//!
//! The decision is here ([`destination`]); the arch layer only writes the
//! x2APIC ICR.

use septum_abi::SubjectId;
use septum_abi::hypercall::MAX_EVENTS;

use crate::spec::{ApicId, SourceEvent, SystemSpec};

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

/// The APIC id to interrupt after `caller` raised source event `event`: the
/// CPU of the event's target, if the event is an `ipi` event of the caller
/// and the target runs on another CPU than the caller. `None` otherwise
/// (an unknown subject or event, another mode, the same CPU).
pub fn destination(spec: &SystemSpec, caller: SubjectId, event: u64) -> Option<ApicId> {
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
    spec.kernel
        .apic_ids
        .get(usize::try_from(cpu).ok()?)
        .copied()
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
        assert_eq!(destination(&spec, a, 1), Some(ApicId(6)));
        assert_eq!(destination(&spec, a, 2), None, "async");
        assert_eq!(destination(&spec, a, 3), None, "same CPU");
        assert_eq!(destination(&spec, a, 4), None, "kernel event");
        assert_eq!(destination(&spec, a, 0), None, "undefined");
        assert_eq!(destination(&spec, a, 64), None);
        assert_eq!(destination(&spec, a, u64::MAX), None);
        assert_eq!(destination(&spec, SubjectId(1), 1), None);
        assert_eq!(destination(&spec, SubjectId(9), 1), None);
        assert!(!present(&TWO_PARTITIONS));
    }
}
