//! Missed minor-frame deadlines: which frame end is a miss, and which miss
//! is reported.
//!
//! A subject with `minorFrameDeadline="true"` in its policy
//! ([`crate::spec::SubjectSpec::minor_frame_deadline`]) promises to finish
//! its work in each of its minor frames and give up the CPU (yield, sleep,
//! or switch to another subject of its group) before the frame ends. A
//! *miss* is a minor frame whose end (the VMX-preemption timer at the
//! deadline, not an early expiry) finds that subject still running: it is
//! the scheduler's current subject when the timer exit arrives. A subject
//! that gave up the CPU, one that never got it in that frame (its group
//! did not come round), and a frame that ended in the idle loop are not
//! misses. Subjects without the attribute (spinning loads, subjects that
//! use their whole frame by design) are never reported.
//!
//! Each miss is counted per subject, and the kernel prints a line for the
//! 1st, 2nd, 4th, 8th, ... miss only ([`MissCounters::record`]): a subject
//! that misses every frame cannot flood the console or take the next
//! frames' time with prints (a line costs the next frame the time to write
//! it), yet the count on the last line stays exact at those points. After
//! `n` misses at most `log2(n) + 1` lines were printed.

use core::sync::atomic::{AtomicU32, Ordering};

use septum_abi::SubjectId;

use crate::plan::MAX_SUBJECTS;
use crate::spec::SystemSpec;

/// The subject that missed its deadline at a minor-frame end, if any:
/// `running`, the subject the scheduler had on the CPU when the frame's
/// timer ended it, if its spec asks for misses to be reported.
pub fn missed(spec: &SystemSpec, running: Option<SubjectId>) -> Option<SubjectId> {
    let subject = running?;
    spec.subjects
        .get(subject.index())
        .filter(|s| s.minor_frame_deadline)
        .map(|_| subject)
}

/// Misses per subject, for the whole system (a subject's misses are only
/// counted by its own CPU; atomics keep the table a plain `static`).
#[derive(Debug)]
pub struct MissCounters {
    counts: [AtomicU32; MAX_SUBJECTS],
}

impl Default for MissCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl MissCounters {
    /// No misses yet.
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU32::new(0) }; MAX_SUBJECTS],
        }
    }

    /// Counts a miss of `subject`; returns its number of misses so far if
    /// this one is to be reported (the count is a power of two), `None`
    /// otherwise. The count saturates at `u32::MAX` (no longer reported).
    pub fn record(&self, subject: SubjectId) -> Option<u32> {
        let counter = self.counts.get(subject.index())?;
        // Only the subject's own CPU counts its misses, so the exchange
        // succeeds at the first try; the loop only keeps it correct if not.
        let mut current = counter.load(Ordering::Relaxed);
        loop {
            let count = current.checked_add(1)?;
            match counter.compare_exchange_weak(
                current,
                count,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return count.is_power_of_two().then_some(count),
                Err(actual) => current = actual,
            }
        }
    }

    /// Misses of `subject` so far.
    pub fn count(&self, subject: SubjectId) -> u32 {
        self.counts
            .get(subject.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::events::PendingTable;
    use crate::exits::{Decision, Exit, dispatch};
    use crate::plan::Scheduler;
    use crate::spec::{FaultAction, SubjectSpec};
    use crate::testing::{A, B, KERNEL, NO_EVENTS, TWO_PARTITIONS, YIELD, events, subject};
    use septum_abi::TscCycles;
    use std::vec::Vec;

    /// `TWO_PARTITIONS` (p_a [0,100), p_b [100,300)), where `a` asks for
    /// its misses to be reported and may yield (event 63); `b` does not.
    static SPEC: SystemSpec = SystemSpec {
        subjects: &[
            SubjectSpec {
                minor_frame_deadline: true,
                ..subject("a", FaultAction::StopSystem, events(&[(63, YIELD)]))
            },
            subject("b", FaultAction::StopSubject, NO_EVENTS),
        ],
        name: "deadline",
        kernel: KERNEL,
        partitions: TWO_PARTITIONS.partitions,
        groups: TWO_PARTITIONS.groups,
        major_frames: TWO_PARTITIONS.major_frames,
        image_regions: &[],
    };

    #[test]
    fn a_frame_end_misses_only_for_the_running_subject_that_asked() {
        let table = PendingTable::new();
        let mut s = Scheduler::new(&SPEC, 0, &table).unwrap();
        s.start(TscCycles(0));
        // a still runs when its frame ends: a miss.
        assert_eq!(missed(&SPEC, s.current()), Some(A));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        // b runs to its frame end, but never promised anything.
        assert_eq!(missed(&SPEC, s.current()), None);
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        // a yields: the frame ends in the idle loop, nobody runs.
        assert_eq!(
            dispatch(&mut s, Exit::Hypercall { event: 63 }),
            Decision::Idle
        );
        assert_eq!(missed(&SPEC, s.current()), None);
        assert_eq!(missed(&SPEC, Some(SubjectId(7))), None, "unknown id");
    }

    #[test]
    fn reports_are_rate_limited_to_powers_of_two() {
        let counters = MissCounters::new();
        let reported: Vec<u32> = (0..100)
            .filter_map(|_| counters.record(SubjectId(3)))
            .collect();
        assert_eq!(reported, [1, 2, 4, 8, 16, 32, 64]);
        assert_eq!(counters.count(SubjectId(3)), 100);
        assert_eq!(counters.count(SubjectId(4)), 0, "per subject");
        assert_eq!(counters.record(SubjectId(u16::MAX)), None);
    }

    #[test]
    fn the_count_saturates_without_reporting() {
        let counters = MissCounters::new();
        counters.counts[0].store(u32::MAX - 1, Ordering::Relaxed);
        assert_eq!(counters.record(SubjectId(0)), None);
        assert_eq!(counters.record(SubjectId(0)), None);
        assert_eq!(counters.count(SubjectId(0)), u32::MAX);
    }
}
