//! The plan: the per-CPU walk of the cyclic scheduling plan.
//!
//! One [`Scheduler`] runs per CPU and owns only that CPU's state: where it
//! is in the plan, which subject it runs, the state of its subjects, the
//! active subject of its groups and the round-robin cursor of its
//! partitions. It owns no hardware and decides nothing about exits itself:
//! [`crate::exits::dispatch`] turns an exit into calls of the primitives here
//! (give up the frame, switch within a group, stop a subject, end the minor
//! frame), and the arch layer executes the [`Decision`] they return.
//!
//! The plan: the first major frame of the spec repeats forever. A major
//! frame gives each CPU a sequence of minor frames `(partition, end)`; each
//! deadline is absolute, `major_start + end`, so frame boundaries never
//! drift however late an exit is handled. A partition holds groups that take
//! turns (round-robin) at the partition's minor frames; a group holds
//! subjects that hand the CPU to each other with `switch` events, and one of
//! them is the group's active subject.
//!
//! Subject states: `Runnable`; `Yielded` (gave up the rest of its minor
//! frame); `Sleeping` (waits for a target event: however many minor frames
//! pass, it runs again only once an event is pending for it); `Stopped`
//! (faulted with `onFault="stopSubject"`: never scheduled again). At the
//! end of every minor frame, yielded subjects become runnable again;
//! sleeping ones stay asleep. When the running subject gives up its frame,
//! the next runnable group of the same partition gets the rest of it; with
//! none, the CPU idles in root mode until the deadline.
//!
//! Pending events are not here: they live in the one system-wide
//! [`PendingTable`], which any CPU may set. A sleeping subject with a pending
//! event counts as runnable when its CPU next picks a subject of its
//! partition (a frame of the partition begins, or the subject running in it
//! gives up or stops), so waking it never writes another CPU's scheduler.
//! Entering a sleeper is a [`Decision::Wake`]: the scheduler takes (atomic
//! swap) the subject's pending word right then and hands it to the arch
//! layer, which returns it to the subject as the result of its `sleep`
//! hypercall. Nothing else takes pending events: a subject that never sleeps
//! keeps them pending, and its next `sleep` returns them at once.
//!
//! Every table access goes through `get()`; there is no reachable panic.

use core::fmt;

use septum_abi::{SubjectId, TscCycles};

use crate::events::PendingTable;
use crate::exits::Decision;
use crate::spec::{SourceEvent, SystemSpec};

/// Most subjects a system may have.
pub const MAX_SUBJECTS: usize = 256;
/// Most scheduling groups a system may have.
pub const MAX_GROUPS: usize = 256;
/// Most partitions a system may have.
pub const MAX_PARTITIONS: usize = 256;

/// Where a subject stands with the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectState {
    /// May run when its group's turn comes.
    Runnable,
    /// Gave up the rest of its minor frame.
    Yielded,
    /// Waits for a pending target event (across minor frames).
    Sleeping,
    /// Faulted; never runs again.
    Stopped,
}

/// A spec the scheduler cannot run. The composer's validation rules out all
/// of these; the kernel checks again at boot so that a hand-made or stale
/// spec fails closed with a message instead of misbehaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecError {
    /// More subjects, groups or partitions than the kernel's tables hold.
    TooMany(&'static str),
    /// The plan has no major frame, or a major frame has no minor frame for
    /// this CPU.
    NoFrames,
    /// Minor frame ends are not strictly increasing, or the last one is not
    /// the major frame's length.
    BadFrameEnds,
    /// A reference to a subject, group or partition that does not exist.
    BadReference(&'static str),
    /// A subject is in no group, or in more than one.
    GroupMembership(SubjectId),
    /// A minor frame names a partition of another CPU, or a partition holds
    /// a subject of another CPU.
    CpuMismatch,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany(what) => write!(f, "too many {what}"),
            Self::NoFrames => f.write_str("the plan has no minor frame for this CPU"),
            Self::BadFrameEnds => {
                f.write_str("minor frame ends do not increase up to the major frame length")
            }
            Self::BadReference(what) => write!(f, "reference to a missing {what}"),
            Self::GroupMembership(id) => {
                write!(f, "subject {} is not in exactly one group", id.0)
            }
            Self::CpuMismatch => {
                f.write_str("a partition and its subjects or frames differ in CPU")
            }
        }
    }
}

/// The scheduler of one CPU. `'e` is the lifetime of the system-wide
/// pending table (`'static` in the kernel).
#[derive(Debug)]
pub struct Scheduler<'e> {
    spec: &'static SystemSpec,
    events: &'e PendingTable,
    cpu: usize,
    /// Index of the current major frame (always 0: plan changes are not
    /// implemented).
    major: usize,
    /// Index of the current minor frame on this CPU.
    minor: usize,
    /// TSC value at which the current major frame began.
    major_start: TscCycles,
    /// Absolute end of the current minor frame (cached: read on every VM
    /// entry).
    deadline: TscCycles,
    /// Subject currently given the CPU, if any.
    current: Option<SubjectId>,
    state: [SubjectState; MAX_SUBJECTS],
    /// Group of each subject.
    group_of: [u16; MAX_SUBJECTS],
    /// Active subject of each group.
    active: [SubjectId; MAX_GROUPS],
    /// Per partition: index (into the partition's groups) of the group whose
    /// turn is next.
    cursor: [u16; MAX_PARTITIONS],
}

/// `(a + 1) % n` for an index below `n`, without arithmetic lints firing.
fn next_index(index: usize, len: usize) -> usize {
    match index.checked_add(1) {
        Some(next) if next < len => next,
        _ => 0,
    }
}

impl<'e> Scheduler<'e> {
    /// Check the spec and set up the scheduler for `cpu`, which marks events
    /// pending in `events` (one table for the whole system). Nothing runs
    /// until [`Scheduler::start`].
    pub fn new(
        spec: &'static SystemSpec,
        cpu: u32,
        events: &'e PendingTable,
    ) -> Result<Self, SpecError> {
        let cpu = usize::try_from(cpu).map_err(|_| SpecError::BadReference("CPU"))?;
        if spec.subjects.len() > MAX_SUBJECTS {
            return Err(SpecError::TooMany("subjects"));
        }
        if spec.groups.len() > MAX_GROUPS {
            return Err(SpecError::TooMany("groups"));
        }
        if spec.partitions.len() > MAX_PARTITIONS {
            return Err(SpecError::TooMany("partitions"));
        }
        let mut scheduler = Self {
            spec,
            events,
            cpu,
            major: 0,
            minor: 0,
            major_start: TscCycles(0),
            deadline: TscCycles(0),
            current: None,
            state: [SubjectState::Runnable; MAX_SUBJECTS],
            group_of: [u16::MAX; MAX_SUBJECTS],
            active: [SubjectId(0); MAX_GROUPS],
            cursor: [0; MAX_PARTITIONS],
        };
        for (index, group) in spec.groups.iter().enumerate() {
            let group_id = u16::try_from(index).map_err(|_| SpecError::TooMany("groups"))?;
            if !group.subjects.contains(&group.initial) {
                return Err(SpecError::BadReference("initial subject of a group"));
            }
            for member in group.subjects {
                let slot = scheduler
                    .group_of
                    .get_mut(member.index())
                    .filter(|_| member.index() < spec.subjects.len())
                    .ok_or(SpecError::BadReference("subject in a group"))?;
                if *slot != u16::MAX {
                    return Err(SpecError::GroupMembership(*member));
                }
                *slot = group_id;
            }
            if let Some(active) = scheduler.active.get_mut(index) {
                *active = group.initial;
            }
        }
        for (index, group) in scheduler
            .group_of
            .iter()
            .take(spec.subjects.len())
            .enumerate()
        {
            if *group == u16::MAX {
                let id = u16::try_from(index).map_err(|_| SpecError::TooMany("subjects"))?;
                return Err(SpecError::GroupMembership(SubjectId(id)));
            }
        }
        for partition in spec.partitions {
            for group_id in partition.groups {
                let group = spec
                    .groups
                    .get(usize::from(group_id.0))
                    .ok_or(SpecError::BadReference("group in a partition"))?;
                // A subject only gets a VMCS on its own CPU.
                let elsewhere = group
                    .subjects
                    .iter()
                    .filter_map(|id| spec.subjects.get(id.index()))
                    .any(|subject| subject.cpu != partition.cpu);
                if elsewhere {
                    return Err(SpecError::CpuMismatch);
                }
            }
        }
        for subject in spec.subjects {
            for event in subject.source_events.iter().flatten() {
                let target = match event {
                    SourceEvent::Async { target, .. }
                    | SourceEvent::Switch { target, .. }
                    | SourceEvent::Reset { target, .. } => *target,
                    SourceEvent::SelfEvent { .. } | SourceEvent::Kernel(_) => continue,
                };
                if target.index() >= spec.subjects.len() {
                    return Err(SpecError::BadReference("event target subject"));
                }
            }
        }
        let major = spec.major_frames.first().ok_or(SpecError::NoFrames)?;
        for frame in spec.major_frames {
            let minors = frame.cpus.get(cpu).ok_or(SpecError::NoFrames)?;
            let mut previous_end = 0u64;
            for minor in *minors {
                if minor.end.get() <= previous_end {
                    return Err(SpecError::BadFrameEnds);
                }
                previous_end = minor.end.get();
                let partition = spec
                    .partitions
                    .get(usize::from(minor.partition.0))
                    .ok_or(SpecError::BadReference("partition in a minor frame"))?;
                if usize::try_from(partition.cpu).ok() != Some(cpu) {
                    return Err(SpecError::CpuMismatch);
                }
                if partition.groups.is_empty() {
                    return Err(SpecError::BadReference("group in a partition"));
                }
            }
            if previous_end != frame.length.get() {
                return Err(SpecError::BadFrameEnds);
            }
        }
        if major.cpus.get(cpu).is_none_or(|m| m.is_empty()) {
            return Err(SpecError::NoFrames);
        }
        Ok(scheduler)
    }

    /// Begin the plan: the first minor frame of the first major frame
    /// starts at `now`.
    pub fn start(&mut self, now: TscCycles) -> Decision {
        self.major = 0;
        self.minor = 0;
        self.major_start = now;
        self.current = None;
        self.begin_minor_frame()
    }

    /// The subject that has the CPU, if any.
    pub fn current(&self) -> Option<SubjectId> {
        self.current
    }

    /// The spec the scheduler walks.
    pub fn spec(&self) -> &'static SystemSpec {
        self.spec
    }

    /// The system-wide pending table.
    pub fn events(&self) -> &'e PendingTable {
        self.events
    }

    /// State of a subject (`None` for an unknown id). A sleeping subject
    /// with an event pending reads as `Runnable`: it runs when its group's
    /// turn comes.
    pub fn state(&self, subject: SubjectId) -> Option<SubjectState> {
        let state = self.state.get(subject.index()).copied()?;
        if state == SubjectState::Sleeping && self.events.peek(subject) != 0 {
            Some(SubjectState::Runnable)
        } else {
            Some(state)
        }
    }

    /// Pending target events of a subject (0 for an unknown id).
    pub fn pending(&self, subject: SubjectId) -> u64 {
        self.events.peek(subject)
    }

    /// Absolute end of the current minor frame.
    pub fn deadline(&self) -> TscCycles {
        self.deadline
    }

    /// Whether the current minor frame is the first of its major frame
    /// (the plan's CPUs meet at a barrier before it runs).
    pub fn at_major_frame_start(&self) -> bool {
        self.minor == 0
    }

    /// While the CPU idles in the current minor frame: the subject that has
    /// become runnable since (a sleeper of the frame's partition whose event
    /// another CPU set), as the decision that enters it (`Decision::Wake`
    /// for a sleeper, which carries the pending events taken for it);
    /// `None` if there is none or a subject already has the CPU.
    pub fn wake(&mut self) -> Option<Decision> {
        if self.current.is_some() {
            return None;
        }
        match self.pick_in_frame() {
            decision @ (Decision::Run(_) | Decision::Wake { .. }) => Some(decision),
            _ => None,
        }
    }

    fn compute_deadline(&self) -> TscCycles {
        let end = self
            .spec
            .major_frames
            .get(self.major)
            .and_then(|major| major.cpus.get(self.cpu))
            .and_then(|minors| minors.get(self.minor))
            .map_or(0, |minor| minor.end.get());
        TscCycles(self.major_start.get().wrapping_add(end))
    }

    /// The current minor frame ended (its deadline has passed): move to the
    /// next one and pick its subject.
    pub fn on_frame_end(&mut self, _now: TscCycles) -> Decision {
        let (minor_count, length) =
            self.spec
                .major_frames
                .get(self.major)
                .map_or((0, 0), |major| {
                    (
                        major.cpus.get(self.cpu).map_or(0, |m| m.len()),
                        major.length.get(),
                    )
                });
        let next = next_index(self.minor, minor_count);
        if next == 0 {
            self.major_start = TscCycles(self.major_start.get().wrapping_add(length));
        }
        self.minor = next;
        // Yielded subjects get their next frame; a sleeper waits on for an
        // event (`pick_in_frame` takes it when one is pending).
        for (index, state) in self.state.iter_mut().enumerate() {
            if index >= self.spec.subjects.len() {
                break;
            }
            if *state == SubjectState::Yielded {
                *state = SubjectState::Runnable;
            }
        }
        self.begin_minor_frame()
    }

    /// The running subject gives up the rest of its minor frame, as
    /// `Yielded` or `Sleeping`; the next runnable group of the partition
    /// gets the CPU.
    pub fn give_up(&mut self, caller: SubjectId, state: SubjectState) -> Decision {
        self.set_state(caller, state);
        self.pick_in_frame()
    }

    /// An exit that changes nothing about who runs (an external interrupt,
    /// an NMI): the subject resumes, or the CPU idles if none had it.
    pub fn resume_or_idle(&self) -> Decision {
        if self.current.is_some() {
            Decision::Resume
        } else {
            Decision::Idle
        }
    }

    /// The running subject is stopped for good (a fault with
    /// `onFault="stopSubject"`); returns it (`None` if no subject had the
    /// CPU). Nobody has the CPU afterwards: [`Scheduler::continue_frame`]
    /// picks who gets the rest of the frame.
    pub fn stop_current(&mut self) -> Option<SubjectId> {
        let by = self.current.take()?;
        self.set_state(by, SubjectState::Stopped);
        Some(by)
    }

    /// Give the rest of the current minor frame to the next runnable group
    /// of its partition (after [`Scheduler::stop_current`]).
    pub fn continue_frame(&mut self) -> Decision {
        self.pick_in_frame()
    }

    fn set_state(&mut self, subject: SubjectId, state: SubjectState) {
        if let Some(slot) = self.state.get_mut(subject.index()) {
            *slot = state;
        }
    }

    /// A `switch` event: `target` becomes the active subject of the caller's
    /// group and gets the CPU (a sleeping target wakes: see
    /// [`Decision::Wake`]). Refused (the caller resumes) if the target is in
    /// another group or stopped.
    pub fn switch_to(&mut self, caller: SubjectId, target: SubjectId) -> Decision {
        let caller_group = self.group_of.get(caller.index()).copied();
        let target_group = self.group_of.get(target.index()).copied();
        let same_group = caller_group.is_some() && caller_group == target_group;
        if !same_group || self.state(target) == Some(SubjectState::Stopped) {
            return Decision::Resume;
        }
        if let Some(active) = caller_group.and_then(|g| self.active.get_mut(usize::from(g))) {
            *active = target;
        }
        if self.state.get(target.index()) == Some(&SubjectState::Yielded) {
            self.set_state(target, SubjectState::Runnable);
        }
        self.enter(target)
    }

    /// Give `subject` the CPU. A sleeper wakes: it returns from its `sleep`
    /// hypercall, so its pending events are taken now, to be delivered with
    /// it ([`Decision::Wake`]).
    fn enter(&mut self, subject: SubjectId) -> Decision {
        let previous = self.current.replace(subject);
        if self.state.get(subject.index()) == Some(&SubjectState::Sleeping) {
            self.set_state(subject, SubjectState::Runnable);
            return Decision::Wake {
                subject,
                pending: self.events.take(subject),
            };
        }
        if previous == Some(subject) {
            Decision::Resume
        } else {
            Decision::Run(subject)
        }
    }

    fn minor_partition(&self) -> Option<usize> {
        self.spec
            .major_frames
            .get(self.major)
            .and_then(|major| major.cpus.get(self.cpu))
            .and_then(|minors| minors.get(self.minor))
            .map(|minor| usize::from(minor.partition.0))
    }

    fn begin_minor_frame(&mut self) -> Decision {
        self.deadline = self.compute_deadline();
        self.pick_in_frame()
    }

    /// Give the rest of the current minor frame to the next runnable group
    /// of its partition, starting at the partition's round-robin cursor.
    fn pick_in_frame(&mut self) -> Decision {
        let Some(partition_index) = self.minor_partition() else {
            return self.idle();
        };
        let Some(partition) = self.spec.partitions.get(partition_index) else {
            return self.idle();
        };
        let group_count = partition.groups.len();
        let mut position = self
            .cursor
            .get(partition_index)
            .map_or(0, |c| usize::from(*c));
        for _ in 0..group_count {
            if position >= group_count {
                position = 0;
            }
            let candidate = partition
                .groups
                .get(position)
                .and_then(|group| self.active.get(usize::from(group.0)))
                .copied();
            position = next_index(position, group_count);
            if let Some(subject) = candidate
                && self.is_runnable(subject)
            {
                if let Some(cursor) = self.cursor.get_mut(partition_index) {
                    // position < group_count <= MAX_GROUPS fits in u16.
                    *cursor = u16::try_from(position).unwrap_or(0);
                }
                return self.enter(subject);
            }
        }
        self.idle()
    }

    /// Whether `subject` may run: runnable, or asleep with an event
    /// pending.
    #[inline]
    fn is_runnable(&self, subject: SubjectId) -> bool {
        match self.state.get(subject.index()) {
            Some(SubjectState::Runnable) => true,
            Some(SubjectState::Sleeping) => self.events.peek(subject) != 0,
            _ => false,
        }
    }

    fn idle(&mut self) -> Decision {
        self.current = None;
        Decision::Idle
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::spec::{
        FaultAction, GroupId, GroupSpec, MajorFrameSpec, MinorFrameSpec, PartitionId, PartitionSpec,
    };
    use crate::testing::*;

    #[test]
    fn plan_walk_uses_absolute_deadlines() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&TWO_PARTITIONS, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(1000)), Decision::Run(A));
        assert_eq!(s.deadline(), TscCycles(1100));
        // Handled late: the next deadline does not move.
        assert_eq!(s.on_frame_end(TscCycles(1150)), Decision::Run(B));
        assert_eq!(s.deadline(), TscCycles(1300));
        assert_eq!(s.on_frame_end(TscCycles(1300)), Decision::Run(A));
        assert_eq!(s.deadline(), TscCycles(1400));
        assert_eq!(s.on_frame_end(TscCycles(1400)), Decision::Run(B));
        assert_eq!(s.deadline(), TscCycles(1600));
    }

    #[test]
    fn an_idle_cpu_wakes_a_sleeper_whose_event_arrives() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&TWO_PARTITIONS, 0, &events).unwrap();
        assert!(s.at_major_frame_start());
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(s.wake(), None);
        assert_eq!(s.give_up(A, SubjectState::Sleeping), Decision::Idle);
        assert_eq!(s.wake(), None);
        // Another CPU's subject marks an event of A pending.
        events.set(A, 3);
        // Entering the sleeper hands it the events taken for it.
        assert_eq!(
            s.wake(),
            Some(Decision::Wake {
                subject: A,
                pending: 1 << 3
            })
        );
        assert_eq!(events.take(A), 0);
        assert_eq!(s.current(), Some(A));
        assert_eq!(s.wake(), None);
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert!(!s.at_major_frame_start());
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        assert!(s.at_major_frame_start());
    }

    #[test]
    fn groups_take_turns_at_frame_boundaries() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&SHARED_PARTITION, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(A));
        assert_eq!(s.deadline(), TscCycles(300));
    }

    static ORPHAN: SystemSpec = SystemSpec {
        name: "orphan",
        kernel: KERNEL,
        subjects: &[
            subject("a", FaultAction::StopSystem, NO_EVENTS),
            subject("b", FaultAction::StopSystem, NO_EVENTS),
        ],
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
            }]],
        }],
        image_regions: &[],
    };

    static TWICE: SystemSpec = SystemSpec {
        name: "twice",
        kernel: KERNEL,
        subjects: &[subject("a", FaultAction::StopSystem, NO_EVENTS)],
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
                subjects: &[A],
                initial: A,
            },
        ],
        major_frames: &[],
        image_regions: &[],
    };

    static BAD_ENDS: SystemSpec = SystemSpec {
        name: "ends",
        kernel: KERNEL,
        subjects: &[subject("a", FaultAction::StopSystem, NO_EVENTS)],
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
            length: TscCycles(300),
            cpus: &[&[
                MinorFrameSpec {
                    partition: PartitionId(0),
                    end: TscCycles(200),
                },
                MinorFrameSpec {
                    partition: PartitionId(0),
                    end: TscCycles(100),
                },
            ]],
        }],
        image_regions: &[],
    };

    static BAD_TARGET: SystemSpec = SystemSpec {
        name: "target",
        kernel: KERNEL,
        subjects: &[subject(
            "a",
            FaultAction::StopSystem,
            events(&[(
                0,
                SourceEvent::Async {
                    target: SubjectId(9),
                    target_event: 0,
                },
            )]),
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
                partition: PartitionId(3),
                end: TscCycles(100),
            }]],
        }],
        image_regions: &[],
    };

    static WRONG_CPU: SystemSpec = SystemSpec {
        name: "cpu",
        kernel: KERNEL,
        subjects: &[subject("a", FaultAction::StopSystem, NO_EVENTS)],
        partitions: &[PartitionSpec {
            name: "p",
            cpu: 1,
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
            }]],
        }],
        image_regions: &[],
    };

    #[test]
    fn malformed_specs_are_refused() {
        let events = PendingTable::new();
        assert_eq!(
            Scheduler::new(&WRONG_CPU, 0, &events).unwrap_err(),
            SpecError::CpuMismatch
        );
        assert_eq!(
            Scheduler::new(&ORPHAN, 0, &events).unwrap_err(),
            SpecError::GroupMembership(B)
        );
        assert_eq!(
            Scheduler::new(&TWICE, 0, &events).unwrap_err(),
            SpecError::GroupMembership(A)
        );
        assert_eq!(
            Scheduler::new(&BAD_ENDS, 0, &events).unwrap_err(),
            SpecError::BadFrameEnds
        );
        assert_eq!(
            Scheduler::new(&BAD_TARGET, 0, &events).unwrap_err(),
            SpecError::BadReference("event target subject")
        );
        assert_eq!(
            Scheduler::new(&TWO_PARTITIONS, 1, &events).unwrap_err(),
            SpecError::NoFrames
        );
        let mut text = std::string::String::new();
        core::fmt::write(&mut text, format_args!("{}", SpecError::BadFrameEnds)).unwrap();
        assert!(text.contains("minor frame ends"));
    }
}
