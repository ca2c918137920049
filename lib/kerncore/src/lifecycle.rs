//! Subject lifecycle: restarting one subject alone (`onFault=
//! "restartSubject"`), the restart limit and its fallback.
//!
//! Why a restart is possible at all in a static kernel: everything a
//! subject can change is either its registers (the VMCS guest state, the
//! register frame, FPU state, CR2), which the spec's initial values
//! describe, or memory it may write. The composer lists the latter for
//! every restartable subject as [`RestartImage`]s: each writable region
//! with where its first bytes come from ([`RestartSource::Copy`] of a
//! pristine copy the composer placed in the image, or
//! [`RestartSource::Zero`]). Re-initialising is then a fixed list of copies
//! and fills, decided at compose time; the kernel interprets nothing.
//!
//! The life of a restart:
//!
//! 1. A subject whose fault action is [`FaultAction::RestartSubject`]
//!    faults; [`crate::exits::dispatch`] returns
//!    [`Decision::Restart`] and the arch layer reports the fault.
//! 2. [`after_fault`] consults the [`RestartLedger`]: below the limit the
//!    subject is marked for restart in the [`RestartRequests`] and gives up
//!    the rest of its frame (it runs again in its next frame); at the limit
//!    the [`RestartPolicy::fallback`] applies (stop the subject, or stop
//!    the system).
//! 3. When the subject's CPU next enters it, the arch layer takes the
//!    request ([`RestartRequests::take`]) and, before the entry,
//!    re-initialises its memory from its [`RestartImage`], its VMCS and its
//!    registers. The re-initialisation happens in the subject's own frame,
//!    so its cost never delays another partition's frame.
//!
//! Channels a restarted subject writes are zero-filled with its memory:
//! epoch 0, the SHMStream v2 "writer init" state. Readers see the channel
//! inactive until the restarted writer initialises it again with a fresh
//! epoch, and then the SDK's `ReadOutcome::EpochChanged`: the reconnect
//! that SHMStream v2 intends.
//!
//! Requests are atomic bits so that a CPU may ask for the restart of a
//! subject of another CPU (the `reset` target-event action of the anchor's
//! policy is the intended user); only the subject's own CPU ever takes
//! them. The ledger's counts are atomics only to live in a `static`: a
//! subject's count is written by its own CPU alone.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use septum_abi::{PhysAddr, SubjectId};

use crate::exits::Decision;
use crate::plan::{MAX_SUBJECTS, Scheduler, SubjectState};
use crate::spec::{Static, Storage};

#[cfg(any(test, feature = "emit"))]
use crate::emit::{Dec, EmitRust, Hex, RustWriter};

/// What happens to a faulting subject that has used up its restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Never schedule it again (as `onFault="stopSubject"`).
    StopSubject,
    /// Stop the whole system (as `onFault="stopSystem"`).
    StopSystem,
}

/// The policy of a restartable subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed over the whole run (at least 1; the composer
    /// checks). The fault after the last one takes the fallback.
    pub limit: u16,
    /// What the fault after the last allowed restart does.
    pub fallback: Fallback,
}

/// Where the first bytes of a re-initialised region come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartSource {
    /// Zero-filled (stack, `.bss`, channels the subject writes).
    Zero,
    /// Copied from this pristine copy, as large as the region, which the
    /// composer placed in the image and nothing maps but the kernel
    /// (read-only).
    Copy(PhysAddr),
}

/// One region a restart re-initialises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartRegion {
    /// First byte (page aligned). The composer identity-maps the region
    /// read-write, no-execute in the kernel's tables.
    pub start: PhysAddr,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// Where its bytes come from.
    pub source: RestartSource,
}

/// Everything a restart of `subject` re-initialises in memory.
#[derive(Debug)]
pub struct RestartImage<S: Storage = Static> {
    /// The restartable subject.
    pub subject: SubjectId,
    /// Its writable regions, in the order they are re-initialised.
    pub regions: S::List<RestartRegion>,
}

#[cfg(any(test, feature = "emit"))]
impl Clone for RestartImage<crate::spec::Owned> {
    fn clone(&self) -> Self {
        Self {
            subject: self.subject,
            regions: self.regions.clone(),
        }
    }
}

/// The restart image of `subject` in `images` (`None`: it has none, which
/// the composer only allows for subjects that cannot be restarted).
pub fn image_of(images: &[RestartImage], subject: SubjectId) -> Option<&RestartImage> {
    images.iter().find(|image| image.subject == subject)
}

/// Restart requests: one bit per subject, set by any CPU, taken by the
/// subject's own CPU before it enters the subject.
#[derive(Debug)]
pub struct RestartRequests {
    words: [AtomicU64; MAX_SUBJECTS / 64],
}

impl RestartRequests {
    /// No request.
    pub const fn new() -> Self {
        Self {
            words: [const { AtomicU64::new(0) }; MAX_SUBJECTS / 64],
        }
    }

    /// The word of `subject`'s bit and the bit's mask.
    fn word_and_bit(subject: SubjectId) -> (usize, u64) {
        let index = subject.index();
        (index / 64, 1u64 << (index % 64))
    }

    /// Ask for `subject`'s restart before its next entry (an id beyond
    /// the table is ignored).
    pub fn request(&self, subject: SubjectId) {
        let (word, bit) = Self::word_and_bit(subject);
        if let Some(word) = self.words.get(word) {
            word.fetch_or(bit, Ordering::AcqRel);
        }
    }

    /// Whether a restart of `subject` is asked for (the request stays).
    pub fn is_requested(&self, subject: SubjectId) -> bool {
        let (word, bit) = Self::word_and_bit(subject);
        self.words
            .get(word)
            .is_some_and(|word| word.load(Ordering::Acquire) & bit != 0)
    }

    /// Whether a restart of `subject` was asked for, clearing the request.
    /// Called before every entry of a subject, so the common case (no
    /// request) is one load; only a set bit costs a read-modify-write.
    pub fn take(&self, subject: SubjectId) -> bool {
        let (word, bit) = Self::word_and_bit(subject);
        self.words.get(word).is_some_and(|word| {
            word.load(Ordering::Acquire) & bit != 0
                && word.fetch_and(!bit, Ordering::AcqRel) & bit != 0
        })
    }
}

impl Default for RestartRequests {
    fn default() -> Self {
        Self::new()
    }
}

/// Restarts per subject so far (counted for the limit).
#[derive(Debug)]
pub struct RestartLedger {
    counts: [AtomicU32; MAX_SUBJECTS],
}

/// What a fault of a restartable subject leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart it; this is its `count`th restart (from 1).
    Restart {
        /// Restarts so far, this one included.
        count: u32,
    },
    /// Its `limit` restarts are used up: the fallback applies.
    Fallback(Fallback),
}

impl RestartLedger {
    /// No restart yet.
    pub const fn new() -> Self {
        Self {
            counts: [const { AtomicU32::new(0) }; MAX_SUBJECTS],
        }
    }

    /// Restarts of `subject` so far.
    pub fn count(&self, subject: SubjectId) -> u32 {
        self.counts
            .get(subject.index())
            .map_or(0, |count| count.load(Ordering::Relaxed))
    }

    /// A fault of `subject` under `policy`: count a restart if one is left.
    pub fn record_fault(&self, subject: SubjectId, policy: RestartPolicy) -> Verdict {
        let Some(count) = self.counts.get(subject.index()) else {
            return Verdict::Fallback(policy.fallback);
        };
        let done = count.load(Ordering::Relaxed);
        if done >= u32::from(policy.limit) {
            return Verdict::Fallback(policy.fallback);
        }
        let now = done.saturating_add(1);
        count.store(now, Ordering::Relaxed);
        Verdict::Restart { count: now }
    }
}

impl Default for RestartLedger {
    fn default() -> Self {
        Self::new()
    }
}

/// A fault of `by`, the running subject, whose fault action is
/// `restartSubject` under `policy` (after [`Decision::Restart`]): count it,
/// and either mark it for restart and give the rest of its frame to the
/// next runnable group, or apply the fallback. Returns the verdict (for the
/// report) and what runs next; [`Decision::StopSystem`] for the
/// `stopSystem` fallback, [`Decision::SubjectStopped`] for `stopSubject`.
pub fn after_fault(
    cpu: &mut Scheduler<'_>,
    ledger: &RestartLedger,
    requests: &RestartRequests,
    by: SubjectId,
    policy: RestartPolicy,
) -> (Verdict, Decision) {
    let verdict = ledger.record_fault(by, policy);
    let decision = match verdict {
        Verdict::Restart { .. } => {
            requests.request(by);
            cpu.give_up(by, SubjectState::Yielded)
        }
        Verdict::Fallback(Fallback::StopSubject) => match cpu.stop_current() {
            Some(by) => Decision::SubjectStopped { by },
            None => Decision::StopSystem { by: None },
        },
        Verdict::Fallback(Fallback::StopSystem) => Decision::StopSystem { by: Some(by) },
    };
    (verdict, decision)
}

#[cfg(any(test, feature = "emit"))]
const LIFECYCLE: &str = "septum_kerncore::lifecycle";

#[cfg(any(test, feature = "emit"))]
impl EmitRust for Fallback {
    fn emit_rust(&self, w: &mut RustWriter) {
        let variant = match self {
            Fallback::StopSubject => "StopSubject",
            Fallback::StopSystem => "StopSystem",
        };
        w.text(format_args!("{LIFECYCLE}::Fallback::{variant}"));
    }
}

#[cfg(any(test, feature = "emit"))]
impl EmitRust for RestartPolicy {
    fn emit_rust(&self, w: &mut RustWriter) {
        let RestartPolicy { limit, fallback } = self;
        w.inline(
            format_args!("{LIFECYCLE}::RestartPolicy"),
            &[("limit", &Dec((*limit).into())), ("fallback", fallback)],
        );
    }
}

#[cfg(any(test, feature = "emit"))]
impl EmitRust for RestartSource {
    fn emit_rust(&self, w: &mut RustWriter) {
        match self {
            RestartSource::Zero => w.text(format_args!("{LIFECYCLE}::RestartSource::Zero")),
            RestartSource::Copy(from) => {
                w.text(format_args!("{LIFECYCLE}::RestartSource::Copy("));
                from.emit_rust(w);
                w.text(format_args!(")"));
            }
        }
    }
}

#[cfg(any(test, feature = "emit"))]
impl EmitRust for RestartRegion {
    fn emit_rust(&self, w: &mut RustWriter) {
        let RestartRegion {
            start,
            size,
            source,
        } = self;
        w.inline(
            format_args!("{LIFECYCLE}::RestartRegion"),
            &[("start", start), ("size", &Hex(*size)), ("source", source)],
        );
    }
}

#[cfg(any(test, feature = "emit"))]
impl<S: Storage> EmitRust for RestartImage<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let RestartImage { subject, regions } = self;
        w.block(
            format_args!("{LIFECYCLE}::RestartImage"),
            &[
                ("subject", subject),
                ("regions", &RegionList(S::items(regions))),
            ],
        );
    }
}

#[cfg(any(test, feature = "emit"))]
struct RegionList<'a>(&'a [RestartRegion]);

#[cfg(any(test, feature = "emit"))]
impl EmitRust for RegionList<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.block_list(self.0);
    }
}

/// The `pub static RESTART_IMAGES` item the composer appends to `spec.rs`
/// (one entry per restartable subject; empty when no subject restarts).
#[cfg(any(test, feature = "emit"))]
pub fn restart_source<S: Storage>(images: &[RestartImage<S>]) -> alloc::string::String {
    let mut w = RustWriter::new();
    w.text(format_args!(
        "/// What a restart re-initialises, per restartable subject (docs/kernel.md).\n"
    ));
    w.text(format_args!(
        "#[allow(dead_code, reason = \"read by the kernel's restart path only\")]\n"
    ));
    w.text(format_args!(
        "pub static RESTART_IMAGES: &[{LIFECYCLE}::RestartImage] = "
    ));
    if images.is_empty() {
        w.text(format_args!("&[]"));
    } else {
        w.block_list(images);
    }
    w.text(format_args!(";\n"));
    w.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::events::PendingTable;
    use crate::exits::{Exit, FaultDetail, FaultInfo, dispatch};
    use crate::spec::{
        FaultAction, GroupId, GroupSpec, MajorFrameSpec, MinorFrameSpec, Owned, PartitionId,
        PartitionSpec, SourceEvent, SystemSpec,
    };
    use crate::testing::*;
    use alloc::vec;
    use septum_abi::TscCycles;

    const TWICE_THEN_STOP: RestartPolicy = RestartPolicy {
        limit: 2,
        fallback: Fallback::StopSubject,
    };

    #[test]
    fn the_ledger_allows_limit_restarts_then_the_fallback() {
        let ledger = RestartLedger::new();
        let s = SubjectId(3);
        assert_eq!(
            ledger.record_fault(s, TWICE_THEN_STOP),
            Verdict::Restart { count: 1 }
        );
        assert_eq!(
            ledger.record_fault(s, TWICE_THEN_STOP),
            Verdict::Restart { count: 2 }
        );
        assert_eq!(
            ledger.record_fault(s, TWICE_THEN_STOP),
            Verdict::Fallback(Fallback::StopSubject)
        );
        assert_eq!(ledger.count(s), 2);
        assert_eq!(ledger.count(SubjectId(4)), 0);
        assert_eq!(
            ledger.record_fault(SubjectId(9999), TWICE_THEN_STOP),
            Verdict::Fallback(Fallback::StopSubject)
        );
    }

    #[test]
    fn a_request_is_taken_once_and_only_for_its_subject() {
        let requests = RestartRequests::new();
        requests.request(SubjectId(70));
        assert!(!requests.take(SubjectId(6)));
        assert!(requests.take(SubjectId(70)));
        assert!(!requests.take(SubjectId(70)));
        requests.request(SubjectId(9999));
        assert!(!requests.take(SubjectId(9999)));
    }

    #[test]
    fn a_restart_gives_up_the_frame_and_runs_again_in_the_next() {
        let events = PendingTable::new();
        let (ledger, requests) = (RestartLedger::new(), RestartRequests::new());
        let mut s = Scheduler::new(&SHARED_PARTITION, 0, &events).unwrap();
        s.start(TscCycles(0));
        let (verdict, decision) = after_fault(&mut s, &ledger, &requests, A, TWICE_THEN_STOP);
        assert_eq!(verdict, Verdict::Restart { count: 1 });
        // The other group of the partition gets the rest of the frame.
        assert_eq!(decision, Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Yielded));
        assert!(requests.take(A));
        // Next frame: a runs again.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
    }

    #[test]
    fn the_fallbacks_stop_the_subject_or_the_system() {
        let events = PendingTable::new();
        let (ledger, requests) = (RestartLedger::new(), RestartRequests::new());
        let mut s = Scheduler::new(&SHARED_PARTITION, 0, &events).unwrap();
        s.start(TscCycles(0));
        let once = |fallback| RestartPolicy { limit: 1, fallback };
        let _ = after_fault(&mut s, &ledger, &requests, A, once(Fallback::StopSystem));
        assert!(requests.take(A));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
        let (verdict, decision) =
            after_fault(&mut s, &ledger, &requests, A, once(Fallback::StopSystem));
        assert_eq!(verdict, Verdict::Fallback(Fallback::StopSystem));
        assert_eq!(decision, Decision::StopSystem { by: Some(A) });
        let (_, decision) = after_fault(&mut s, &ledger, &requests, A, once(Fallback::StopSubject));
        assert_eq!(decision, Decision::SubjectStopped { by: A });
        assert_eq!(s.state(A), Some(SubjectState::Stopped));
        assert!(!requests.take(A));
    }

    /// One partition, one subject that restarts twice, then stops.
    static RESTARTING: SystemSpec = SystemSpec {
        name: "restarting",
        kernel: KERNEL,
        subjects: &[subject(
            "a",
            FaultAction::RestartSubject(TWICE_THEN_STOP),
            NO_EVENTS,
        )],
        partitions: &[PartitionSpec {
            name: "p",
            cpu: 0,
            groups: &[GroupId(0)],
        }],
        groups: &[GroupSpec {
            subjects: &[A],
            initial: A,
        }],
        major_frames: &[MajorFrameSpec {
            length: TscCycles(100),
            cpus: &[&[MinorFrameSpec {
                partition: PartitionId(0),
                end: TscCycles(100),
                pad: septum_abi::TscCycles(700),
                lead: false,
            }]],
        }],
        image_regions: &[],
    };

    const FAULT: Exit = Exit::Fault(FaultInfo {
        code: 0,
        qualification: 0,
        guest_physical: 0,
        rip: 0,
        detail: FaultDetail::Vector(6),
        error_code: None,
        guest_linear: None,
    });

    #[test]
    fn a_fault_of_a_restartable_subject_restarts_it_until_the_limit() {
        let events = PendingTable::new();
        let (ledger, requests) = (RestartLedger::new(), RestartRequests::new());
        let mut s = Scheduler::new(&RESTARTING, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        for (count, frame_end) in [(1, 100), (2, 200)] {
            let decision = dispatch(&mut s, FAULT);
            assert_eq!(
                decision,
                Decision::Restart {
                    by: A,
                    policy: TWICE_THEN_STOP
                }
            );
            // Alone in its partition: the CPU idles for the rest of the
            // frame, and the subject runs again in the next one.
            let (verdict, next) = after_fault(&mut s, &ledger, &requests, A, TWICE_THEN_STOP);
            assert_eq!(
                (verdict, next),
                (Verdict::Restart { count }, Decision::Idle)
            );
            assert!(requests.take(A));
            assert_eq!(s.on_frame_end(TscCycles(frame_end)), Decision::Run(A));
        }
        assert!(matches!(dispatch(&mut s, FAULT), Decision::Restart { .. }));
        let (verdict, next) = after_fault(&mut s, &ledger, &requests, A, TWICE_THEN_STOP);
        assert_eq!(verdict, Verdict::Fallback(Fallback::StopSubject));
        assert_eq!(next, Decision::SubjectStopped { by: A });
        assert!(!requests.take(A));
        assert_eq!(s.continue_frame(), Decision::Idle);
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Idle);
    }

    /// a may reset b (source event 0, b's target event 3).
    static RESETTING: SystemSpec = SystemSpec {
        name: "resetting",
        kernel: KERNEL,
        subjects: &[
            subject(
                "a",
                FaultAction::StopSystem,
                events(&[(
                    0,
                    SourceEvent::Reset {
                        target: B,
                        target_event: 3,
                    },
                )]),
            ),
            subject("b", FaultAction::StopSystem, NO_EVENTS),
        ],
        partitions: &[PartitionSpec {
            name: "p",
            cpu: 0,
            groups: &[GroupId(0), GroupId(1)],
        }],
        groups: &[
            GroupSpec {
                subjects: &[A],
                initial: A,
            },
            GroupSpec {
                subjects: &[B],
                initial: B,
            },
        ],
        major_frames: &[MajorFrameSpec {
            length: TscCycles(100),
            cpus: &[&[MinorFrameSpec {
                partition: PartitionId(0),
                end: TscCycles(100),
                pad: septum_abi::TscCycles(700),
                lead: false,
            }]],
        }],
        image_regions: &[],
    };

    #[test]
    fn a_reset_event_marks_its_target_pending_and_asks_for_its_restart() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&RESETTING, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(
            dispatch(&mut s, Exit::Hypercall { event: 0 }),
            Decision::Reset { by: A, target: B }
        );
        assert_eq!(s.pending(B), 1 << 3);
        // The caller keeps the CPU.
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn images_emit_as_rust_and_are_found_by_subject() {
        let image = RestartImage::<Owned> {
            subject: SubjectId(1),
            regions: vec![
                RestartRegion {
                    start: PhysAddr(0x30_0000),
                    size: 0x1000,
                    source: RestartSource::Zero,
                },
                RestartRegion {
                    start: PhysAddr(0x30_1000),
                    size: 0x2000,
                    source: RestartSource::Copy(PhysAddr(0x40_0000)),
                },
            ],
        };
        let text = restart_source(&[image]);
        assert!(text.contains(
            "pub static RESTART_IMAGES: &[septum_kerncore::lifecycle::RestartImage] = &[\n"
        ));
        assert!(text.contains(
            "septum_kerncore::lifecycle::RestartRegion { start: septum_abi::PhysAddr(0x301000), \
             size: 0x2000, source: septum_kerncore::lifecycle::RestartSource::Copy(septum_abi::PhysAddr(0x400000)) }"
        ));
        assert!(restart_source::<Owned>(&[]).ends_with("= &[];\n"));
        static IMAGES: &[RestartImage] = &[RestartImage {
            subject: SubjectId(2),
            regions: &[],
        }];
        assert!(image_of(IMAGES, SubjectId(2)).is_some());
        assert!(image_of(IMAGES, SubjectId(1)).is_none());
        assert_eq!(
            crate::emit::to_rust(&TWICE_THEN_STOP),
            "septum_kerncore::lifecycle::RestartPolicy { limit: 2, fallback: \
             septum_kerncore::lifecycle::Fallback::StopSubject }"
        );
    }
}
