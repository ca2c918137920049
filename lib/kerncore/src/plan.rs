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
//! The plan: the spec holds one or more major frames (plans); the first
//! runs at boot and repeats until a subject's `next_plan` kernel event asks
//! for the next one ([`crate::sync::PlanSwitch`]). A switch takes effect
//! only where a major frame ends: the arch layer passes the plan decided at
//! the major-frame barrier to [`Scheduler::set_next_plan`] before it ends
//! the frame, and [`Scheduler::on_frame_end`] applies it only when it wraps
//! to a first minor frame, so every plan CPU begins the new plan at the
//! same boundary and no minor frame of the old one is cut short or lost. A
//! major frame gives each CPU a sequence of minor frames `(partition, end)`; each
//! deadline is absolute, `major_start + end`, so frame boundaries never
//! drift however late an exit is handled. A partition holds groups that take
//! turns (round-robin) at the partition's minor frames; a group holds
//! subjects that hand the CPU to each other with `switch` events, and one of
//! them is the group's active subject.
//!
//! Subject states: `Runnable`; `Yielded` (gave up the rest of its minor
//! frame); `Sleeping` (waits for a target event: however many minor frames
//! pass, it runs again only once an event is pending for it); `Stopped`
//! (faulted with `onFault="stopSubject"`: never scheduled again; if it was
//! its group's active subject, the next member that is not stopped becomes
//! active, so the rest of the group keeps its turns). At the
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
use crate::spec::{GroupId, MajorFrameSpec, MinorFrameSpec, PartitionId, SourceEvent, SystemSpec};
use crate::sync::PlanSwitch;

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
    /// A minor frame's entry pad is shorter than the shortest the kernel
    /// was measured to need (`septum_abi::timing::LEAN_ENTRY_PAD`): its
    /// entries would come when the previous partition's transition ends.
    PadTooShort,
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
            Self::PadTooShort => {
                f.write_str("a minor frame's entry pad is shorter than the lean pad")
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
    /// Where a `next_plan` request goes (`None`: requests change nothing).
    plan_switch: Option<&'e PlanSwitch>,
    cpu: usize,
    /// Index of the current major frame (the plan).
    major: usize,
    /// Index of the major frame that begins when the current one ends
    /// (`major` unless [`Scheduler::set_next_plan`] chose another).
    next_major: usize,
    /// Index of the current minor frame on this CPU.
    minor: usize,
    /// Partition of the current minor frame (cached when the frame begins:
    /// the frame's first entry asks for it, `deferred::run_due`).
    partition: Option<PartitionId>,
    /// TSC value at which the current major frame began.
    major_start: TscCycles,
    /// Absolute end of the current minor frame (cached: read on every VM
    /// entry).
    deadline: TscCycles,
    /// The current minor frame's base entry pad (`MinorFrameSpec::pad`).
    pad: TscCycles,
    /// Whether its entry gets the lead (`MinorFrameSpec::lead`).
    lead: bool,
    /// This CPU's minor frames in the current major frame, and that major
    /// frame's length (cached when the major frame begins: the frame end
    /// at a boundary reads them without walking the spec, docs/kernel.md
    /// "A lean frame end").
    minors: &'static [MinorFrameSpec],
    /// Length of the current major frame in TSC cycles.
    major_length: u64,
    /// Minor frames ended so far on this CPU: a subject whose
    /// [`Scheduler::yielded_in`] is not this count yielded in an earlier
    /// frame and is runnable again, so a frame end resets no table.
    frame_count: u64,
    /// Subject currently given the CPU, if any.
    current: Option<SubjectId>,
    state: [SubjectState; MAX_SUBJECTS],
    /// Per subject: the [`Scheduler::frame_count`] of the frame it last
    /// yielded in (its `Yielded` state holds only within that frame).
    yielded_in: [u64; MAX_SUBJECTS],
    /// Per subject: a device interrupt for it arrived while it slept (see
    /// [`Scheduler::interrupt_for`]); it wakes like a sleeper with an event.
    interrupted: [bool; MAX_SUBJECTS],
    /// Group of each subject.
    group_of: [u16; MAX_SUBJECTS],
    /// Per subject: the partition whose group holds it (`u16::MAX`: none),
    /// so the `ipi` hypercall finds its target's partition in one load.
    partition_of: [u16; MAX_SUBJECTS],
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
            plan_switch: None,
            cpu,
            major: 0,
            next_major: 0,
            minor: 0,
            partition: None,
            major_start: TscCycles(0),
            deadline: TscCycles(0),
            pad: TscCycles(0),
            lead: false,
            minors: &[],
            major_length: 0,
            frame_count: 0,
            current: None,
            state: [SubjectState::Runnable; MAX_SUBJECTS],
            yielded_in: [0; MAX_SUBJECTS],
            interrupted: [false; MAX_SUBJECTS],
            group_of: [u16::MAX; MAX_SUBJECTS],
            partition_of: [u16::MAX; MAX_SUBJECTS],
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
        for (number, partition) in (0u16..).zip(spec.partitions) {
            for group_id in partition.groups {
                let group = spec
                    .groups
                    .get(usize::from(group_id.0))
                    .ok_or(SpecError::BadReference("group in a partition"))?;
                for member in group.subjects {
                    if let Some(slot) = scheduler.partition_of.get_mut(member.index()) {
                        *slot = number;
                    }
                }
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
        if spec.major_frames.is_empty() {
            return Err(SpecError::NoFrames);
        }
        for frame in spec.major_frames {
            let minors = frame.cpus.get(cpu).ok_or(SpecError::NoFrames)?;
            let mut previous_end = 0u64;
            for minor in *minors {
                if minor.end.get() <= previous_end {
                    return Err(SpecError::BadFrameEnds);
                }
                if minor.pad.get() < septum_abi::timing::LEAN_ENTRY_PAD.get() {
                    return Err(SpecError::PadTooShort);
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
        // Every plan gives this CPU frames: a switch never leaves it without.
        let without = |major: &MajorFrameSpec| major.cpus.get(cpu).is_none_or(|m| m.is_empty());
        if spec.major_frames.iter().any(without) {
            return Err(SpecError::NoFrames);
        }
        Ok(scheduler)
    }

    /// Send this CPU's `next_plan` requests to `plan_switch` (one for the
    /// whole system, like the pending table). Without it a request changes
    /// nothing. In place (`&mut self`): the scheduler is large, and the
    /// kernel must not move it (a move is a `memcpy` call, an indirect call
    /// its stack-depth gate refuses).
    pub fn set_plan_switch(&mut self, plan_switch: &'e PlanSwitch) {
        self.plan_switch = Some(plan_switch);
    }

    /// Begin the plan: the first minor frame of the first major frame
    /// starts at `now`.
    pub fn start(&mut self, now: TscCycles) -> Decision {
        self.major = 0;
        self.next_major = 0;
        self.minor = 0;
        self.major_start = now;
        self.current = None;
        self.cache_major();
        self.begin_minor_frame()
    }

    /// Partition of the current minor frame (`None` only for a CPU
    /// without minor frames, which never runs a subject).
    pub fn partition(&self) -> Option<PartitionId> {
        self.partition
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
        let state = self.own_state(subject)?;
        if state == SubjectState::Sleeping && self.woken(subject) {
            Some(SubjectState::Runnable)
        } else {
            Some(state)
        }
    }

    /// The state of `subject` as the scheduler keeps it, with a yield of an
    /// earlier frame read as `Runnable` (the frame end resets nothing).
    #[inline]
    fn own_state(&self, subject: SubjectId) -> Option<SubjectState> {
        let state = self.state.get(subject.index()).copied()?;
        if state == SubjectState::Yielded
            && self.yielded_in.get(subject.index()) != Some(&self.frame_count)
        {
            Some(SubjectState::Runnable)
        } else {
            Some(state)
        }
    }

    /// The partition whose group holds `subject` (`None`: no group of a
    /// partition holds it, or an unknown id).
    pub fn partition_of(&self, subject: SubjectId) -> Option<PartitionId> {
        self.partition_of
            .get(subject.index())
            .filter(|&&number| number != u16::MAX)
            .map(|&number| PartitionId(number))
    }

    /// Pending target events of a subject (0 for an unknown id).
    pub fn pending(&self, subject: SubjectId) -> u64 {
        self.events.peek(subject)
    }

    /// Absolute end of the current minor frame.
    pub fn deadline(&self) -> TscCycles {
        self.deadline
    }

    /// The current minor frame's base entry pad: its first subject is
    /// entered this long after the frame's start (`MinorFrameSpec::pad`).
    pub fn entry_pad(&self) -> TscCycles {
        self.pad
    }

    /// Whether the current minor frame's entry gets the lead for its own
    /// work (`MinorFrameSpec::lead`: a partition with a VM).
    pub fn entry_lead(&self) -> bool {
        self.lead
    }

    /// Whether the current minor frame is the first of its major frame
    /// (the plan's CPUs meet at a barrier before it runs).
    pub fn at_major_frame_start(&self) -> bool {
        self.minor == 0
    }

    /// Whether the current minor frame is the last of its major frame: its
    /// end is a major-frame boundary, where the plan CPUs meet and a plan
    /// switch may take effect.
    pub fn at_major_frame_end(&self) -> bool {
        // `minor` is below the frame count: `minor + 1` cannot wrap.
        self.minor.wrapping_add(1) >= self.minor_count()
    }

    /// Start of the current major frame (the same TSC on every plan CPU).
    pub fn major_start(&self) -> TscCycles {
        self.major_start
    }

    /// Index of the running plan (major frame of the spec).
    pub fn plan(&self) -> usize {
        self.major
    }

    /// Number of plans (major frames) in the spec.
    pub fn plan_count(&self) -> usize {
        self.spec.major_frames.len()
    }

    /// Choose the plan of the next major frame (the decision taken at the
    /// major-frame barrier, the same on every plan CPU). It takes effect
    /// when the current major frame ends, never within it. Refused
    /// (returns `false`, nothing changes) for an index beyond the spec's
    /// plans.
    pub fn set_next_plan(&mut self, plan: usize) -> bool {
        if plan < self.spec.major_frames.len() {
            self.next_major = plan;
            true
        } else {
            false
        }
    }

    /// A `next_plan` kernel event: ask for the next plan at the end of the
    /// current major frame (see [`crate::sync::PlanSwitch`]); the caller
    /// goes on running.
    pub fn request_next_plan(&self) {
        if let Some(plan_switch) = self.plan_switch {
            plan_switch.request();
        }
    }

    /// Minor frames of the current major frame on this CPU.
    fn minor_count(&self) -> usize {
        self.minors.len()
    }

    /// Cache this CPU's minor frames and the length of the major frame
    /// [`Scheduler::major`] (at the start and whenever a major frame
    /// begins).
    fn cache_major(&mut self) {
        let major = self.spec.major_frames.get(self.major);
        self.minors = major
            .and_then(|major| major.cpus.get(self.cpu))
            .map_or(&[], |minors| *minors);
        self.major_length = major.map_or(0, |major| major.length.get());
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

    /// The current minor frame ended (its deadline has passed): move to the
    /// next one and pick its subject.
    #[inline(always)]
    pub fn on_frame_end(&mut self, _now: TscCycles) -> Decision {
        // `next_index` without its overflow test: `minor` is below the
        // frame count, so `minor + 1` cannot wrap.
        let mut next = self.minor.wrapping_add(1);
        if next >= self.minors.len() {
            next = 0;
            self.major_start = TscCycles(self.major_start.get().wrapping_add(self.major_length));
            // Only here, where a major frame ends, may the plan change.
            if self.major != self.next_major {
                self.major = self.next_major;
                self.cache_major();
            }
        }
        self.minor = next;
        // Yielded subjects get their next frame (`own_state`: a yield
        // holds only in the frame it was made in, so nothing is reset
        // here, whatever the number of subjects); a sleeper waits on for
        // an event (`pick_in_frame` takes it when one is pending).
        self.frame_count = self.frame_count.wrapping_add(1);
        self.begin_minor_frame()
    }

    /// The subject just chosen (by a switch, a wake, a pick inside the
    /// frame) is not entered: its frame ends first. Nobody has the CPU
    /// then, so the next pick enters whoever it chooses (a `Run`, not a
    /// `Resume` of a subject that never got the CPU); the choice itself
    /// stands (the group's active subject, a woken sleeper's state).
    pub fn not_entered(&mut self) {
        self.current = None;
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
        self.hand_group_on(by);
        Some(by)
    }

    /// After `stopped` was stopped: if it was the active subject of its
    /// group, the next member in policy order (after the last, the first)
    /// that is not stopped becomes active, so a stopped subject does not
    /// take the group's turns with it (its other members would never run
    /// again: only the active subject can switch). A group whose members
    /// are all stopped keeps its stopped active subject and is skipped.
    fn hand_group_on(&mut self, stopped: SubjectId) {
        let Some(group_index) = self.group_of.get(stopped.index()).map(|g| usize::from(*g)) else {
            return;
        };
        if self.active.get(group_index) != Some(&stopped) {
            return;
        }
        let Some(group) = self.spec.groups.get(group_index) else {
            return;
        };
        let members = group.subjects;
        let after = members
            .iter()
            .position(|member| *member == stopped)
            .map_or(0, |position| position.saturating_add(1));
        let successor = members
            .iter()
            .cycle()
            .skip(after)
            .take(members.len())
            .copied()
            .find(|member| self.state.get(member.index()) != Some(&SubjectState::Stopped));
        if let (Some(successor), Some(active)) = (successor, self.active.get_mut(group_index)) {
            *active = successor;
        }
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
        if state == SubjectState::Yielded
            && let Some(frame) = self.yielded_in.get_mut(subject.index())
        {
            *frame = self.frame_count;
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
        if self.own_state(target) == Some(SubjectState::Yielded) {
            self.set_state(target, SubjectState::Runnable);
        }
        self.enter(target)
    }

    /// Give `subject` the CPU. A sleeper wakes: it returns from its `sleep`
    /// hypercall, so its pending events are taken now, to be delivered with
    /// it ([`Decision::Wake`]).
    fn enter(&mut self, subject: SubjectId) -> Decision {
        if self.state.get(subject.index()) == Some(&SubjectState::Sleeping) {
            self.wake_sleeper(subject)
        } else {
            self.enter_runnable(subject)
        }
    }

    /// [`Scheduler::enter`] for a sleeping subject: it becomes runnable and
    /// its pending events are taken, to be delivered with it.
    fn wake_sleeper(&mut self, subject: SubjectId) -> Decision {
        self.current = Some(subject);
        self.set_state(subject, SubjectState::Runnable);
        if let Some(flag) = self.interrupted.get_mut(subject.index()) {
            *flag = false;
        }
        Decision::Wake {
            subject,
            pending: self.events.take(subject),
        }
    }

    /// [`Scheduler::enter`] for a subject known to be `Runnable` (not
    /// asleep): nothing to wake, no pending events to take.
    fn enter_runnable(&mut self, subject: SubjectId) -> Decision {
        if self.current.replace(subject) == Some(subject) {
            Decision::Resume
        } else {
            Decision::Run(subject)
        }
    }

    fn minor_partition(&self) -> Option<usize> {
        self.partition.map(|partition| usize::from(partition.0))
    }

    /// The current minor frame begins: its deadline, then its subject. One
    /// lookup of the minor frame serves both (the frame end's hot path,
    /// docs/kernel.md "A lean frame end").
    #[inline(always)]
    fn begin_minor_frame(&mut self) -> Decision {
        let Some(minor) = self.minors.get(self.minor) else {
            self.deadline = self.major_start;
            self.pad = TscCycles(0);
            self.lead = false;
            self.partition = None;
            return self.idle();
        };
        self.deadline = TscCycles(self.major_start.get().wrapping_add(minor.end.get()));
        self.pad = minor.pad;
        self.lead = minor.lead;
        self.partition = Some(minor.partition);
        self.pick_in_partition(usize::from(minor.partition.0))
    }

    /// Give the rest of the current minor frame to the next runnable group
    /// of its partition, starting at the partition's round-robin cursor.
    fn pick_in_frame(&mut self) -> Decision {
        let Some(partition_index) = self.minor_partition() else {
            return self.idle();
        };
        self.pick_in_partition(partition_index)
    }

    /// [`Scheduler::pick_in_frame`] in the frame's partition
    /// `partition_index`. The common case inline: a partition of one group
    /// has nothing to take turns with (its cursor is always 0), so its
    /// active subject runs if it may, else the CPU idles; one state lookup.
    /// A partition of several groups takes the round-robin walk.
    #[inline(always)]
    fn pick_in_partition(&mut self, partition_index: usize) -> Decision {
        let Some(partition) = self.spec.partitions.get(partition_index) else {
            return self.idle();
        };
        let [group] = partition.groups else {
            return self.pick_round_robin(partition_index, partition.groups);
        };
        let Some(subject) = self.active.get(usize::from(group.0)).copied() else {
            return self.idle();
        };
        let index = subject.index();
        match self.state.get(index) {
            Some(SubjectState::Runnable) => self.enter_runnable(subject),
            // A yield holds only in the frame it was made in.
            Some(SubjectState::Yielded)
                if self.yielded_in.get(index) != Some(&self.frame_count) =>
            {
                self.enter_runnable(subject)
            }
            Some(SubjectState::Sleeping) if self.woken(subject) => self.wake_sleeper(subject),
            _ => self.idle(),
        }
    }

    /// The round-robin walk over the `groups` of partition
    /// `partition_index`, from its cursor: the first group whose active
    /// subject may run gets the CPU, and the cursor moves past it.
    #[inline(never)]
    fn pick_round_robin(&mut self, partition_index: usize, groups: &'static [GroupId]) -> Decision {
        let group_count = groups.len();
        let mut position = self
            .cursor
            .get(partition_index)
            .map_or(0, |c| usize::from(*c));
        for _ in 0..group_count {
            if position >= group_count {
                position = 0;
            }
            let candidate = groups
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
            // A yield holds only in the frame it was made in (`own_state`).
            Some(SubjectState::Yielded) => {
                self.yielded_in.get(subject.index()) != Some(&self.frame_count)
            }
            Some(SubjectState::Sleeping) => self.woken(subject),
            _ => false,
        }
    }

    /// Whether sleeping `subject` has something to wake for: a pending
    /// target event, or a device interrupt.
    #[inline]
    fn woken(&self, subject: SubjectId) -> bool {
        self.events.peek(subject) != 0
            || self
                .interrupted
                .get(subject.index())
                .copied()
                .unwrap_or(false)
    }

    /// A device interrupt for `subject` (one of this CPU's) is pending: if it
    /// sleeps, it becomes runnable like a sleeper with a pending event, and
    /// is entered as a [`Decision::Wake`] (with the events pending then,
    /// perhaps none); the vector itself is injected by the arch layer at
    /// that entry. Any other state is left as it is.
    pub fn interrupt_for(&mut self, subject: SubjectId) {
        if self.state.get(subject.index()) == Some(&SubjectState::Sleeping)
            && let Some(flag) = self.interrupted.get_mut(subject.index())
        {
            *flag = true;
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
    fn partition_names_the_current_minor_frame() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&TWO_PARTITIONS, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(s.partition(), Some(PartitionId(0)));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.partition(), Some(PartitionId(1)));
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        assert_eq!(s.partition(), Some(PartitionId(0)));
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
    fn a_device_interrupt_wakes_a_sleeper_once() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&TWO_PARTITIONS, 0, &events).unwrap();
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        // Not asleep: an interrupt changes nothing (the vector waits for
        // the next entry).
        s.interrupt_for(A);
        assert_eq!(s.give_up(A, SubjectState::Sleeping), Decision::Idle);
        assert_eq!(s.wake(), None);
        s.interrupt_for(A);
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
        assert_eq!(
            s.wake(),
            Some(Decision::Wake {
                subject: A,
                pending: 0
            })
        );
        // Taken with the entry: asleep again, it waits for the next one.
        assert_eq!(s.give_up(A, SubjectState::Sleeping), Decision::Idle);
        assert_eq!(s.wake(), None);
        // An interrupt for a subject of another partition waits for its
        // frame.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        s.interrupt_for(A);
        assert_eq!(
            s.on_frame_end(TscCycles(300)),
            Decision::Wake {
                subject: A,
                pending: 0
            }
        );
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
                pad: septum_abi::TscCycles(700),
                lead: false,
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

    static SHORT_PAD: SystemSpec = SystemSpec {
        name: "pad",
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
            length: TscCycles(100_000),
            cpus: &[&[MinorFrameSpec {
                partition: PartitionId(0),
                end: TscCycles(100_000),
                pad: TscCycles(0),
                lead: false,
            }]],
        }],
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
                    pad: septum_abi::TscCycles(700),
                    lead: false,
                },
                MinorFrameSpec {
                    partition: PartitionId(0),
                    end: TscCycles(100),
                    pad: septum_abi::TscCycles(700),
                    lead: false,
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
                pad: septum_abi::TscCycles(700),
                lead: false,
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
                pad: septum_abi::TscCycles(700),
                lead: false,
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
        assert_eq!(
            Scheduler::new(&SHORT_PAD, 0, &events).unwrap_err(),
            SpecError::PadTooShort
        );
        let mut text = std::string::String::new();
        core::fmt::write(&mut text, format_args!("{}", SpecError::BadFrameEnds)).unwrap();
        assert!(text.contains("minor frame ends"));
    }

    #[test]
    fn the_partition_table_agrees_with_the_walk_over_the_spec() {
        let events = PendingTable::new();
        for spec in [&TWO_PARTITIONS, &SHARED_PARTITION] {
            let s = Scheduler::new(spec, 0, &events).unwrap();
            for id in 0..=u16::try_from(spec.subjects.len()).unwrap() + 1 {
                let subject = SubjectId(id);
                assert_eq!(
                    s.partition_of(subject),
                    crate::ipi::partition_of(spec, subject),
                    "{id}"
                );
            }
        }
        assert_eq!(
            Scheduler::new(&TWO_PARTITIONS, 0, &events)
                .unwrap()
                .partition_of(SubjectId(1)),
            Some(PartitionId(1))
        );
    }

    #[test]
    fn a_stopped_active_subject_hands_its_group_on() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&SHARED_PARTITION, 0, &events).unwrap();
        // Groups [a, c] and [b]; a is group 0's active subject.
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(s.stop_current(), Some(A));
        assert_eq!(s.continue_frame(), Decision::Run(B));
        // c, never switched to, now has group 0's turns.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(C));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(C));
        // With every member stopped the group is skipped for good.
        assert_eq!(s.stop_current(), Some(C));
        assert_eq!(s.state(A), Some(SubjectState::Stopped));
        assert_eq!(s.continue_frame(), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(400)), Decision::Resume);
        assert_eq!(s.on_frame_end(TscCycles(500)), Decision::Resume);
        assert_eq!(s.current(), Some(B));
    }

    /// Two plans on CPU 0: plan 0 is p_a [0,100), p_b [100,300); plan 1 is
    /// p_b [0,200), p_a [200,300).
    static TWO_PLANS: SystemSpec = SystemSpec {
        name: "plans",
        kernel: KERNEL,
        subjects: TWO_PARTITIONS.subjects,
        partitions: TWO_PARTITIONS.partitions,
        groups: TWO_PARTITIONS.groups,
        major_frames: &[
            MajorFrameSpec {
                length: TscCycles(300),
                cpus: &[&[
                    MinorFrameSpec {
                        partition: PartitionId(0),
                        end: TscCycles(100),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    },
                    MinorFrameSpec {
                        partition: PartitionId(1),
                        end: TscCycles(300),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    },
                ]],
            },
            MajorFrameSpec {
                length: TscCycles(300),
                cpus: &[&[
                    MinorFrameSpec {
                        partition: PartitionId(1),
                        end: TscCycles(200),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    },
                    MinorFrameSpec {
                        partition: PartitionId(0),
                        end: TscCycles(300),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    },
                ]],
            },
        ],
        image_regions: &[],
    };

    #[test]
    fn a_plan_chosen_mid_frame_begins_at_the_next_major_frame() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&TWO_PLANS, 0, &events).unwrap();
        assert_eq!(s.plan_count(), 2);
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert!(!s.at_major_frame_end());
        assert!(s.set_next_plan(1));
        // The rest of plan 0 runs as it is.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!((s.plan(), s.deadline()), (0, TscCycles(300)));
        assert!(s.at_major_frame_end());
        // Plan 1 from the boundary on, and it repeats.
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Resume);
        assert_eq!((s.plan(), s.deadline()), (1, TscCycles(500)));
        assert_eq!(s.on_frame_end(TscCycles(500)), Decision::Run(A));
        assert_eq!(s.deadline(), TscCycles(600));
        assert_eq!(s.on_frame_end(TscCycles(600)), Decision::Run(B));
        assert_eq!((s.plan(), s.deadline()), (1, TscCycles(800)));
        // An index beyond the plans changes nothing.
        assert!(!s.set_next_plan(2));
        assert!(s.set_next_plan(0));
        assert_eq!(s.on_frame_end(TscCycles(800)), Decision::Run(A));
        assert_eq!((s.plan(), s.deadline()), (1, TscCycles(900)));
        assert_eq!(s.on_frame_end(TscCycles(900)), Decision::Resume);
        assert_eq!((s.plan(), s.deadline()), (0, TscCycles(1000)));
    }

    #[test]
    fn a_next_plan_request_waits_for_the_barrier_decision() {
        let events = PendingTable::new();
        let switch = PlanSwitch::new();
        let mut s = Scheduler::new(&TWO_PLANS, 0, &events).unwrap();
        // Without a plan switch a request changes nothing.
        s.request_next_plan();
        s.set_plan_switch(&switch);
        assert!(!switch.is_requested());
        s.request_next_plan();
        s.request_next_plan();
        assert!(switch.is_requested());
        // Two requests, one switch; after the last plan, the first.
        assert_eq!(switch.decide(1, 2), 0);
        assert_eq!(switch.decide(0, 2), 0);
        switch.request();
        assert_eq!(switch.decide(0, 2), 1);
        switch.request();
        assert_eq!(switch.decide(0, 1), 0);
    }

    static PLAN_WITHOUT_CPU: SystemSpec = SystemSpec {
        name: "gap",
        kernel: KERNEL,
        subjects: TWO_PARTITIONS.subjects,
        partitions: TWO_PARTITIONS.partitions,
        groups: TWO_PARTITIONS.groups,
        major_frames: &[
            MajorFrameSpec {
                length: TscCycles(300),
                cpus: TWO_PLANS.major_frames[0].cpus,
            },
            MajorFrameSpec {
                length: TscCycles(0),
                cpus: &[&[]],
            },
        ],
        image_regions: &[],
    };

    #[test]
    fn every_plan_must_give_the_cpu_frames() {
        let events = PendingTable::new();
        assert_eq!(
            Scheduler::new(&PLAN_WITHOUT_CPU, 0, &events).unwrap_err(),
            SpecError::NoFrames
        );
    }

    /// Random plans for several CPUs, walked the way the kernel walks them:
    /// each CPU to the end of its major frame, then the barrier's last
    /// arrival decides the next plan for all.
    mod model {
        use super::*;
        use crate::spec::SubjectSpec;
        use crate::sync::{Barrier, PlanSwitch};
        use core::any::Any;
        use proptest::prelude::*;
        use std::boxed::Box;
        use std::sync::Mutex;
        use std::vec;
        use std::vec::Vec;

        /// Everything [`leak`] and [`spec`] made, kept reachable from a
        /// static so that Miri's leak check accepts the `'static` specs.
        static KEPT: Mutex<Vec<&'static (dyn Any + Send + Sync)>> = Mutex::new(Vec::new());

        fn keep<T: Any + Send + Sync>(value: T) -> &'static T {
            let kept: &'static T = Box::leak(Box::new(value));
            KEPT.lock().unwrap().push(kept);
            kept
        }

        fn leak<T: Any + Send + Sync>(items: Vec<T>) -> &'static [T] {
            keep(items.into_boxed_slice())
        }

        /// One subject and one partition per CPU; `plans[p][c]` are the
        /// minor frame ends of CPU `c` in plan `p` (the last is the length).
        fn spec(cpus: usize, plans: &[Vec<Vec<u64>>]) -> &'static SystemSpec {
            let subjects = leak(
                (0..cpus)
                    .map(|c| SubjectSpec {
                        cpu: c as u32,
                        ..subject("s", FaultAction::StopSystem, NO_EVENTS)
                    })
                    .collect(),
            );
            let groups = leak(
                (0..cpus)
                    .map(|c| GroupSpec {
                        subjects: leak(vec![SubjectId(c as u16)]),
                        initial: SubjectId(c as u16),
                    })
                    .collect(),
            );
            let partitions = leak(
                (0..cpus)
                    .map(|c| PartitionSpec {
                        name: "p",
                        cpu: c as u32,
                        groups: leak(vec![GroupId(c as u16)]),
                    })
                    .collect(),
            );
            let major_frames = leak(
                plans
                    .iter()
                    .map(|plan| MajorFrameSpec {
                        length: TscCycles(*plan[0].last().unwrap()),
                        cpus: leak(
                            plan.iter()
                                .enumerate()
                                .map(|(c, ends)| {
                                    leak(
                                        ends.iter()
                                            .map(|&end| MinorFrameSpec {
                                                partition: PartitionId(c as u16),
                                                end: TscCycles(end),
                                                pad: septum_abi::TscCycles(700),
                                                lead: false,
                                            })
                                            .collect(),
                                    )
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            );
            keep(SystemSpec {
                name: "model",
                kernel: KERNEL,
                subjects,
                partitions,
                groups,
                major_frames,
                image_regions: &[],
            })
        }

        /// `cpus` CPUs, 1 to 3 plans, each of a random length, cut at
        /// random points per CPU.
        fn plans() -> impl Strategy<Value = (usize, Vec<Vec<Vec<u64>>>)> {
            (1usize..4, 1usize..4).prop_flat_map(|(cpus, count)| {
                let plan = (2u64..60).prop_flat_map(move |length| {
                    proptest::collection::vec(proptest::collection::vec(1..length, 0..4), cpus)
                        .prop_map(move |cuts| {
                            cuts.into_iter()
                                .map(|mut cpu| {
                                    cpu.sort_unstable();
                                    cpu.dedup();
                                    cpu.push(length);
                                    cpu
                                })
                                .collect::<Vec<_>>()
                        })
                });
                (Just(cpus), proptest::collection::vec(plan, count))
            })
        }

        fn cases() -> u32 {
            if cfg!(miri) { 4 } else { 256 }
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: cases(),
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// Every CPU runs every minor frame of its plan, in order, at
            /// the deadlines the plan gives, with no gap and no overlap;
            /// the plan changes only where a major frame ends, on every
            /// CPU at once, and exactly after a major frame in which a
            /// switch was requested.
            #[test]
            fn no_frame_is_lost_and_plans_switch_only_at_boundaries(
                (cpus, plans) in plans(),
                requests in proptest::collection::vec(any::<bool>(), 1..12),
            ) {
                let spec = spec(cpus, &plans);
                let events = PendingTable::new();
                let switch = PlanSwitch::new();
                let mut schedulers: Vec<_> = (0..cpus)
                    .map(|c| {
                        let mut s = Scheduler::new(spec, c as u32, &events).unwrap();
                        s.set_plan_switch(&switch);
                        s
                    })
                    .collect();
                for s in &mut schedulers {
                    s.start(TscCycles(1000));
                }
                let mut plan = 0usize;
                let mut major_start = 1000u64;
                for &request in &requests {
                    for (c, s) in schedulers.iter_mut().enumerate() {
                        prop_assert_eq!(s.plan(), plan);
                        prop_assert!(s.at_major_frame_start());
                        let ends = &plans[plan][c];
                        for (i, end) in ends.iter().enumerate() {
                            prop_assert_eq!(s.deadline(), TscCycles(major_start + end));
                            prop_assert_eq!(s.current(), Some(SubjectId(c as u16)));
                            if request && i == 0 && c == 0 {
                                s.request_next_plan();
                            }
                            if i + 1 < ends.len() {
                                prop_assert!(!s.at_major_frame_end());
                                s.on_frame_end(s.deadline());
                                prop_assert_eq!(s.plan(), plan, "mid-frame switch");
                            }
                        }
                        prop_assert!(s.at_major_frame_end());
                    }
                    // The barrier: the last arrival decides for all.
                    let next = switch.decide(plan, plans.len());
                    let expected = if request { (plan + 1) % plans.len() } else { plan };
                    prop_assert_eq!(next, expected);
                    major_start += *plans[plan][0].last().unwrap();
                    for s in &mut schedulers {
                        prop_assert!(s.set_next_plan(next));
                        s.on_frame_end(s.deadline());
                        prop_assert_eq!(s.plan(), next);
                    }
                    plan = next;
                }
            }
        }

        /// The kernel's protocol on threads: each thread walks its CPU's
        /// scheduler, CPU 0's subject asks for a switch in some major
        /// frames, and the barrier publishes the decision. Every thread
        /// runs the same plan in every major frame.
        #[test]
        fn cpus_on_threads_agree_on_every_plan() {
            const CPUS: usize = 4;
            let rounds: usize = if cfg!(miri) { 4 } else { 200 };
            let ends = vec![vec![10, 30], vec![30], vec![5, 20, 30], vec![30]];
            let spec = spec(CPUS, &[ends.clone(), ends.clone(), ends]);
            let events = PendingTable::new();
            let switch = PlanSwitch::new();
            let barrier = Barrier::new();
            let histories: Vec<Vec<usize>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..CPUS)
                    .map(|c| {
                        let (events, switch, barrier) = (&events, &switch, &barrier);
                        scope.spawn(move || {
                            let mut s = Scheduler::new(spec, c as u32, events).unwrap();
                            s.set_plan_switch(switch);
                            s.start(TscCycles(0));
                            let mut history = Vec::new();
                            for round in 0..rounds {
                                history.push(s.plan());
                                while !s.at_major_frame_end() {
                                    s.on_frame_end(s.deadline());
                                    std::thread::yield_now();
                                }
                                if c == 0 && round % 3 == 1 {
                                    s.request_next_plan();
                                }
                                let (current, count) = (s.plan(), s.plan_count());
                                let (_, next) = barrier.wait_with(
                                    CPUS as u32,
                                    || switch.decide(current, count) as u64,
                                    std::thread::yield_now,
                                );
                                assert!(s.set_next_plan(next as usize));
                                s.on_frame_end(s.deadline());
                            }
                            history
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for history in &histories {
                assert_eq!(history, &histories[0]);
            }
            let switches = histories[0].windows(2).filter(|w| w[0] != w[1]).count();
            assert_eq!(switches, (0..rounds - 1).filter(|r| r % 3 == 1).count());
        }
    }

    /// The one-group pick (`pick_in_partition`'s inline case) against a
    /// model built only from the public view: after any sequence of yields,
    /// sleeps, events, device interrupts, stops, idle wake checks and frame
    /// ends, the subject of a one-group partition is entered exactly when
    /// `state` calls it runnable, as a `Wake` carrying its pending events
    /// if it slept, else as a `Run`; otherwise the CPU idles.
    mod one_group {
        use super::*;
        use proptest::prelude::*;

        /// What the scheduler must decide for `subject`, given whether the
        /// model knows it asleep.
        fn expected(s: &Scheduler<'_>, subject: SubjectId, asleep: bool) -> Decision {
            match s.state(subject) {
                Some(SubjectState::Runnable) if asleep => Decision::Wake {
                    subject,
                    pending: s.pending(subject),
                },
                Some(SubjectState::Runnable) => Decision::Run(subject),
                _ => Decision::Idle,
            }
        }

        /// The subject of the current frame's partition (p_a holds A,
        /// p_b holds B).
        fn of_frame(s: &Scheduler<'_>) -> SubjectId {
            if s.partition() == Some(PartitionId(0)) {
                A
            } else {
                B
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: if cfg!(miri) { 4 } else { 256 },
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            #[test]
            fn a_one_group_partition_enters_its_subject_exactly_when_it_may_run(
                ops in proptest::collection::vec((0u8..7, any::<bool>(), 0u8..64), 1..80),
            ) {
                let events = PendingTable::new();
                let mut s = Scheduler::new(&TWO_PARTITIONS, 0, &events).unwrap();
                let mut asleep = [false; 2];
                prop_assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
                for (op, pick_b, bit) in ops {
                    let other = if pick_b { B } else { A };
                    match op {
                        0 | 1 => {
                            let Some(caller) = s.current() else { continue };
                            let state = if op == 0 {
                                SubjectState::Yielded
                            } else {
                                SubjectState::Sleeping
                            };
                            asleep[caller.index()] = op == 1;
                            let want = expected_after_give_up(&s, caller, state);
                            let got = s.give_up(caller, state);
                            prop_assert_eq!(got, want);
                            if matches!(got, Decision::Wake { .. }) {
                                asleep[caller.index()] = false;
                            }
                        }
                        2 => events.set(other, bit),
                        3 => s.interrupt_for(other),
                        4 => {
                            if let Some(stopped) = s.stop_current() {
                                asleep[stopped.index()] = false;
                                prop_assert_eq!(s.continue_frame(), Decision::Idle);
                            }
                        }
                        5 => {
                            let subject = of_frame(&s);
                            let want = if s.current().is_some() {
                                None
                            } else {
                                match expected(&s, subject, asleep[subject.index()]) {
                                    Decision::Idle => None,
                                    decision => Some(decision),
                                }
                            };
                            let got = s.wake();
                            prop_assert_eq!(got, want);
                            if got.is_some() {
                                asleep[subject.index()] = false;
                            }
                        }
                        _ => {
                            let before = s.current();
                            let next = if of_frame(&s) == A { B } else { A };
                            // A yield of an earlier frame no longer holds
                            // once this frame ends: seen from the next one.
                            let mut want = expected(&s, next, asleep[next.index()]);
                            if s.state(next) == Some(SubjectState::Yielded) {
                                want = Decision::Run(next);
                            }
                            if want == Decision::Run(next) && before == Some(next) {
                                want = Decision::Resume;
                            }
                            let got = s.on_frame_end(s.deadline());
                            prop_assert_eq!(got, want);
                            prop_assert_eq!(of_frame(&s), next);
                            if matches!(got, Decision::Wake { .. }) {
                                asleep[next.index()] = false;
                            }
                            let entered = !matches!(got, Decision::Idle);
                            prop_assert_eq!(s.current(), entered.then_some(next));
                        }
                    }
                }
            }
        }

        /// What `give_up(caller, state)` must decide in a one-group
        /// partition: the caller's own group is the only one, so a
        /// yielder idles and a sleeper with something pending wakes at
        /// once.
        fn expected_after_give_up(
            s: &Scheduler<'_>,
            caller: SubjectId,
            state: SubjectState,
        ) -> Decision {
            let interrupted = s.interrupted.get(caller.index()).copied().unwrap_or(false);
            match state {
                SubjectState::Sleeping if s.pending(caller) != 0 || interrupted => Decision::Wake {
                    subject: caller,
                    pending: s.pending(caller),
                },
                _ => Decision::Idle,
            }
        }
    }
}
