//! Timed events: when a subject's armed TSC deadline has passed, the
//! kernel marks the subject's own target event pending, once, and disarms
//! the deadline.
//!
//! A subject with a `<timedEvent>` owns a page (`septum_abi::timed`) whose
//! first word is a TSC deadline it writes itself. The kernel looks at the
//! deadlines of every subject of a CPU at that CPU's check points (every
//! VM exit, every turn of the idle loop) and, while such a subject runs,
//! programs the VMX-preemption timer for `min(frame end, its deadline)`
//! ([`timer_deadline`]), so that a deadline inside the running subject's
//! frame causes an exit of its own. The decisions are here, with no
//! hardware access; the kernel only supplies the page as an `AtomicU64`.
//!
//! Properties (host tests below): an event is never triggered before its
//! deadline (`now >= deadline`, TSC values compared as they are), and at
//! most once per arming: the trigger is a compare-exchange from the armed
//! value to [`DISARMED`], so a second check point, or a second CPU, finds
//! it disarmed. A subject that re-arms with a new value gets a new trigger.
//! A deadline only ever moves the running subject's own timer earlier: it
//! cannot lengthen its frame, and another partition's frame is neither
//! shortened nor lengthened (its entry stays at the fixed padded time).

use core::sync::atomic::{AtomicU64, Ordering};

pub use septum_abi::timed::DISARMED;
use septum_abi::{PhysAddr, SubjectId, TscCycles};

use crate::events::PendingTable;
use crate::spec::{SystemSpec, TimedEventSpec};

/// Whether a deadline value is due at `now`: armed and not in the future.
#[inline]
pub const fn due(deadline: u64, now: TscCycles) -> bool {
    deadline != DISARMED && now.get() >= deadline
}

/// Take the trigger of one timed-event page: if its deadline is due at
/// `now`, disarm it (only if it still holds the value read: a subject that
/// re-armed meanwhile keeps its new deadline) and return `true`.
#[inline]
pub fn take_due(deadline: &AtomicU64, now: TscCycles) -> bool {
    let armed = deadline.load(Ordering::Acquire);
    due(armed, now)
        && deadline
            .compare_exchange(armed, DISARMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
}

/// The time the VMX-preemption timer is programmed for while a subject
/// whose deadline word holds `armed` runs: its frame end, or its deadline
/// if that comes first. Never later than the frame end.
#[inline]
pub const fn timer_deadline(frame_end: TscCycles, armed: u64) -> TscCycles {
    if armed < frame_end.get() {
        TscCycles(armed)
    } else {
        frame_end
    }
}

/// Whether any subject of `spec` has a timed event (a constant for the
/// kernel's spec: without one, the check points cost nothing).
pub const fn present(spec: &SystemSpec) -> bool {
    let mut rest = spec.subjects;
    while let [first, tail @ ..] = rest {
        if first.timed_event.is_some() {
            return true;
        }
        rest = tail;
    }
    false
}

/// The timed event of `subject`, if it has one.
#[inline]
pub fn of(spec: &SystemSpec, subject: SubjectId) -> Option<TimedEventSpec> {
    spec.subjects.get(subject.index())?.timed_event
}

/// A subject with a timed event: what a check point needs of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedSubject {
    /// The owner.
    pub subject: SubjectId,
    /// The CPU it runs on (only that CPU's check points look at it).
    pub cpu: u32,
    /// Its page and target event.
    pub event: TimedEventSpec,
}

/// How many subjects of `spec` have a timed event (the length of
/// [`list`]).
pub const fn count(spec: &SystemSpec) -> usize {
    let mut count = 0usize;
    let mut rest = spec.subjects;
    while let [first, tail @ ..] = rest {
        if first.timed_event.is_some() {
            count = count.saturating_add(1);
        }
        rest = tail;
    }
    count
}

/// The subjects of `spec` with a timed event, in id order, for
/// [`check`]; `N` is [`count`] (a larger `N` leaves the rest `None`, a
/// smaller one leaves subjects out). A constant for the kernel's spec, so
/// a check point walks the timed events only, not every subject of the
/// system: an exit, the frame end's among them, costs the same however
/// many subjects there are.
pub const fn list<const N: usize>(spec: &SystemSpec) -> [Option<TimedSubject>; N] {
    let mut list = [None; N];
    let mut free: &mut [Option<TimedSubject>] = &mut list;
    let mut rest = spec.subjects;
    let mut id = 0u16;
    while let [slot, more @ ..] = free {
        let mut found = None;
        while let [first, tail @ ..] = rest {
            rest = tail;
            let subject = SubjectId(id);
            id = id.wrapping_add(1);
            if let Some(event) = first.timed_event {
                found = Some(TimedSubject {
                    subject,
                    cpu: first.cpu,
                    event,
                });
                break;
            }
        }
        *slot = found;
        free = more;
    }
    list
}

/// A check point of `cpu` at `now`: trigger every due timed event of the
/// subjects in `timed` ([`list`]) that run on `cpu` (mark its target event
/// pending in `events` and disarm it). `page` gives the deadline word of a
/// timed-event page (`None`: not accessible, nothing happens). Returns how
/// many triggered.
pub fn check<'p>(
    timed: &[Option<TimedSubject>],
    cpu: u32,
    now: TscCycles,
    events: &PendingTable,
    page: impl Fn(PhysAddr) -> Option<&'p AtomicU64>,
) -> u32 {
    let mut fired = 0u32;
    for timed in timed.iter().flatten() {
        if timed.cpu != cpu {
            continue;
        }
        if let Some(word) = page(timed.event.page)
            && take_due(word, now)
        {
            events.set(timed.subject, timed.event.event);
            fired = fired.saturating_add(1);
        }
    }
    fired
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::spec::{FaultAction, SubjectSpec};
    use crate::testing::{KERNEL, NO_EVENTS, TWO_PARTITIONS, subject};

    fn cases() -> u32 {
        if cfg!(miri) { 4 } else { 256 }
    }

    proptest! {
        // No failure persistence: it needs the file system, which Miri
        // isolates.
        #![proptest_config(ProptestConfig {
            cases: cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// Never early: a trigger happens only at or after the deadline,
        /// and always when the deadline has passed.
        #[test]
        fn never_early(deadline in 0u64..u64::MAX, now in any::<u64>()) {
            let word = AtomicU64::new(deadline);
            let fired = take_due(&word, TscCycles(now));
            prop_assert_eq!(fired, now >= deadline);
            prop_assert_eq!(word.load(Ordering::Relaxed), if fired { DISARMED } else { deadline });
        }

        /// At most one trigger per arming, however many check points come
        /// after it (at any times, in any order).
        #[test]
        fn once_per_arming(deadline in any::<u64>(), checks in proptest::collection::vec(any::<u64>(), 0..20)) {
            let word = AtomicU64::new(deadline);
            let fired = checks.iter().filter(|&&now| take_due(&word, TscCycles(now))).count();
            prop_assert!(fired <= 1);
            let expected = deadline != DISARMED && checks.iter().any(|&now| now >= deadline);
            prop_assert_eq!(fired == 1, expected);
        }

        /// The timer never goes past the frame end, and never past an
        /// armed deadline inside the frame.
        #[test]
        fn timer_is_min(end in any::<u64>(), armed in any::<u64>()) {
            let at = timer_deadline(TscCycles(end), armed).get();
            prop_assert_eq!(at, end.min(armed));
        }
    }

    #[test]
    fn disarmed_never_fires() {
        let word = AtomicU64::new(DISARMED);
        assert!(!take_due(&word, TscCycles(u64::MAX)));
    }

    /// Several CPUs checking one page at once trigger it once.
    #[test]
    fn concurrent_checks_trigger_once() {
        let word = AtomicU64::new(100);
        let fired = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    if take_due(&word, TscCycles(200)) {
                        fired.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(fired.load(Ordering::Relaxed), 1);
    }

    /// `check` marks the owner's target event pending, only for subjects of
    /// the checking CPU, and only once.
    #[test]
    fn check_marks_the_owner_pending() {
        let pages = [AtomicU64::new(50), AtomicU64::new(50)];
        static SUBJECTS: [SubjectSpec; 3] = [
            SubjectSpec {
                timed_event: Some(TimedEventSpec {
                    page: PhysAddr(0x1000),
                    event: 7,
                }),
                ..subject("a", FaultAction::StopSystem, NO_EVENTS)
            },
            SubjectSpec {
                cpu: 1,
                timed_event: Some(TimedEventSpec {
                    page: PhysAddr(0x2000),
                    event: 3,
                }),
                ..subject("b", FaultAction::StopSystem, NO_EVENTS)
            },
            subject("c", FaultAction::StopSystem, NO_EVENTS),
        ];
        let spec = SystemSpec {
            name: "timed",
            kernel: KERNEL,
            subjects: &SUBJECTS,
            partitions: TWO_PARTITIONS.partitions,
            groups: TWO_PARTITIONS.groups,
            major_frames: TWO_PARTITIONS.major_frames,
            image_regions: &[],
        };
        assert!(present(&spec));
        assert_eq!(count(&spec), 2);
        let timed = list::<2>(&spec);
        assert_eq!(
            timed.map(|t| t.map(|t| (t.subject, t.cpu))),
            [Some((SubjectId(0), 0)), Some((SubjectId(1), 1))]
        );
        // A longer list ends in `None`, a shorter one leaves the last out.
        assert_eq!(list::<3>(&spec)[2], None);
        assert_eq!(list::<1>(&spec), [timed[0]]);
        let table = PendingTable::new();
        let page = |at: PhysAddr| pages.get(usize::try_from(at.get() / 0x1000).ok()? - 1);
        assert_eq!(check(&timed, 0, TscCycles(49), &table, page), 0);
        assert_eq!(table.peek(SubjectId(0)), 0);
        assert_eq!(check(&timed, 0, TscCycles(50), &table, page), 1);
        assert_eq!(table.peek(SubjectId(0)), 1 << 7);
        assert_eq!(table.peek(SubjectId(1)), 0);
        assert_eq!(check(&timed, 0, TscCycles(60), &table, page), 0);
        assert_eq!(check(&timed, 1, TscCycles(60), &table, page), 1);
        assert_eq!(table.peek(SubjectId(1)), 1 << 3);
        assert_eq!(of(&spec, SubjectId(2)), None);
    }
}
