//! The scheduler: the walk of the cyclic plan and the routing of events.
//!
//! One [`Scheduler`] runs per CPU. It owns no hardware: the arch layer tells
//! it what happened (a hypercall, the end of a minor frame, a subject fault)
//! and gets back a [`Decision`] to execute (resume the subject, run another
//! one, idle until the frame deadline, or stop the machine).
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
//! frame); `Sleeping` (until the end of its minor frame, or earlier when an
//! event becomes pending for it); `Stopped` (faulted with
//! `onFault="stopSubject"`: never scheduled again). At the end of every minor
//! frame, yielded and sleeping subjects become runnable again. When the
//! running subject gives up its frame, the next runnable group of the same
//! partition gets the rest of it; with none, the CPU idles in root mode
//! until the deadline.
//!
//! Events: every subject has a 64-bit pending bitmap of target events. A
//! source event marks its target event pending (and a `switch` event also
//! makes the target the active subject of its group and runs it). Pending
//! bits are consumed when the subject is entered; nothing is injected into
//! the subject in this version (interrupt injection is not implemented), so
//! a pending event's only effect is to end a sleep early.
//!
//! Every table access goes through `get()` and event numbers are masked
//! before they index anything; there is no reachable panic.

use core::fmt;

use septum_abi::hypercall::EVENT_MASK;
use septum_abi::{SubjectId, TscCycles};

use crate::spec::{FaultAction, KernelAction, SourceEvent, SystemSpec};

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
    /// Waits for the end of its minor frame or a pending event.
    Sleeping,
    /// Faulted; never runs again.
    Stopped,
}

/// What the arch layer must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Re-enter the subject that exited.
    Resume,
    /// Enter this subject (a different one from the last entered, or the
    /// first one).
    Run(SubjectId),
    /// Nothing may run: wait in root mode until [`Scheduler::deadline`], then
    /// call [`Scheduler::on_frame_end`].
    Idle,
    /// A subject raised a `poweroff` kernel event.
    Poweroff {
        /// The subject.
        by: SubjectId,
    },
    /// A subject raised a `reboot` kernel event.
    Reboot {
        /// The subject.
        by: SubjectId,
    },
    /// A subject raised a `panic` kernel event.
    Panic {
        /// The subject.
        by: SubjectId,
    },
}

/// What happens after a subject fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDecision {
    /// The subject's policy says `stopSystem`: stop everything.
    StopSystem {
        /// The faulting subject.
        by: SubjectId,
    },
    /// The subject is stopped; carry on with `next`.
    SubjectStopped {
        /// The faulting subject.
        by: SubjectId,
        /// What runs now.
        next: Decision,
    },
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

/// The scheduler of one CPU.
#[derive(Debug)]
pub struct Scheduler {
    spec: &'static SystemSpec,
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
    pending: [u64; MAX_SUBJECTS],
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

impl Scheduler {
    /// Check the spec and set up the scheduler for `cpu`. Nothing runs until
    /// [`Scheduler::start`].
    pub fn new(spec: &'static SystemSpec, cpu: u32) -> Result<Self, SpecError> {
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
            cpu,
            major: 0,
            minor: 0,
            major_start: TscCycles(0),
            deadline: TscCycles(0),
            current: None,
            state: [SubjectState::Runnable; MAX_SUBJECTS],
            pending: [0; MAX_SUBJECTS],
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
                    SourceEvent::Async { target, .. } | SourceEvent::Switch { target, .. } => {
                        *target
                    }
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

    /// State of a subject (`None` for an unknown id).
    pub fn state(&self, subject: SubjectId) -> Option<SubjectState> {
        self.state.get(subject.index()).copied()
    }

    /// Pending target events of a subject (0 for an unknown id).
    pub fn pending(&self, subject: SubjectId) -> u64 {
        self.pending.get(subject.index()).copied().unwrap_or(0)
    }

    /// Take (and clear) the pending target events of a subject: called when
    /// the subject is entered.
    pub fn take_pending(&mut self, subject: SubjectId) -> u64 {
        self.pending
            .get_mut(subject.index())
            .map(core::mem::take)
            .unwrap_or(0)
    }

    /// Absolute end of the current minor frame.
    pub fn deadline(&self) -> TscCycles {
        self.deadline
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
        // Sleeping and yielded subjects get their next frame.
        for (index, state) in self.state.iter_mut().enumerate() {
            if index >= self.spec.subjects.len() {
                break;
            }
            if matches!(state, SubjectState::Sleeping | SubjectState::Yielded) {
                *state = SubjectState::Runnable;
            }
        }
        self.begin_minor_frame()
    }

    /// The running subject executed `vmcall` with `event` in RAX.
    pub fn on_hypercall(&mut self, event: u64) -> Decision {
        let Some(caller) = self.current else {
            return Decision::Idle;
        };
        if event >= septum_abi::hypercall::MAX_EVENTS as u64 {
            return Decision::Resume;
        }
        // Masked as well as checked, so the index stays in the table even
        // when the check above is speculated past (Spectre v1). `black_box`
        // keeps the optimiser from dropping the mask as redundant.
        let index = (core::hint::black_box(event) & EVENT_MASK) as usize;
        let source = self
            .spec
            .subjects
            .get(caller.index())
            .and_then(|subject| subject.source_events.get(index))
            .copied()
            .flatten();
        match source {
            None => Decision::Resume,
            Some(SourceEvent::Async {
                target,
                target_event,
            }) => {
                self.mark_pending(target, target_event);
                Decision::Resume
            }
            Some(SourceEvent::SelfEvent { target_event }) => {
                self.mark_pending(caller, target_event);
                Decision::Resume
            }
            Some(SourceEvent::Switch {
                target,
                target_event,
            }) => {
                self.mark_pending(target, target_event);
                self.switch_to(caller, target)
            }
            Some(SourceEvent::Kernel(action)) => match action {
                KernelAction::Yield => {
                    self.set_state(caller, SubjectState::Yielded);
                    self.pick_in_frame()
                }
                KernelAction::Sleep => {
                    if self.take_pending(caller) != 0 {
                        Decision::Resume
                    } else {
                        self.set_state(caller, SubjectState::Sleeping);
                        self.pick_in_frame()
                    }
                }
                KernelAction::Poweroff => Decision::Poweroff { by: caller },
                KernelAction::Reboot => Decision::Reboot { by: caller },
                KernelAction::SystemPanic => Decision::Panic { by: caller },
            },
        }
    }

    /// An external interrupt made the running subject exit. Interrupts are
    /// not routed to subjects in this version: the subject simply resumes.
    pub fn on_interrupt(&mut self) -> Decision {
        if self.current.is_some() {
            Decision::Resume
        } else {
            Decision::Idle
        }
    }

    /// The running subject caused an exit the policy does not route.
    pub fn on_fault(&mut self) -> Option<FaultDecision> {
        let by = self.current?;
        let action = self.spec.subjects.get(by.index())?.fault_action;
        match action {
            FaultAction::StopSystem => Some(FaultDecision::StopSystem { by }),
            FaultAction::StopSubject => {
                self.set_state(by, SubjectState::Stopped);
                let next = self.pick_in_frame();
                Some(FaultDecision::SubjectStopped { by, next })
            }
        }
    }

    fn set_state(&mut self, subject: SubjectId, state: SubjectState) {
        if let Some(slot) = self.state.get_mut(subject.index()) {
            *slot = state;
        }
    }

    fn mark_pending(&mut self, target: SubjectId, target_event: u8) {
        if usize::from(target_event) >= septum_abi::hypercall::MAX_EVENTS {
            return;
        }
        let bit = 1u64 << (u64::from(target_event) & EVENT_MASK);
        if let Some(pending) = self.pending.get_mut(target.index()) {
            *pending |= bit;
        }
        if self.state(target) == Some(SubjectState::Sleeping) {
            self.set_state(target, SubjectState::Runnable);
        }
    }

    /// A `switch` event: `target` becomes the active subject of the caller's
    /// group and gets the CPU. Refused (the caller resumes) if the target is
    /// in another group or stopped.
    fn switch_to(&mut self, caller: SubjectId, target: SubjectId) -> Decision {
        let caller_group = self.group_of.get(caller.index()).copied();
        let target_group = self.group_of.get(target.index()).copied();
        let same_group = caller_group.is_some() && caller_group == target_group;
        if !same_group || self.state(target) == Some(SubjectState::Stopped) {
            return Decision::Resume;
        }
        if let Some(active) = caller_group.and_then(|g| self.active.get_mut(usize::from(g))) {
            *active = target;
        }
        self.set_state(target, SubjectState::Runnable);
        self.enter(target)
    }

    fn enter(&mut self, subject: SubjectId) -> Decision {
        let previous = self.current.replace(subject);
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
                && self.state(subject) == Some(SubjectState::Runnable)
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
        GroupId, GroupSpec, GuestState, KernelSpec, MajorFrameSpec, MinorFrameSpec, PartitionId,
        PartitionSpec, Segment, SubjectSpec, VmxControls,
    };
    use septum_abi::{GuestPhysAddr, PhysAddr, VirtAddr};

    const NO_EVENTS: [Option<SourceEvent>; 64] = [None; 64];

    const fn events(list: &[(usize, SourceEvent)]) -> [Option<SourceEvent>; 64] {
        let mut table = NO_EVENTS;
        let mut i = 0;
        while i < list.len() {
            table[list[i].0] = Some(list[i].1);
            i += 1;
        }
        table
    }

    const SEGMENT: Segment = Segment {
        selector: 0,
        base: 0,
        limit: 0,
        access_rights: 0x10000,
    };

    const fn subject(
        name: &'static str,
        fault_action: FaultAction,
        source_events: [Option<SourceEvent>; 64],
    ) -> SubjectSpec {
        SubjectSpec {
            name,
            cpu: 0,
            vpid: 1,
            vmcs: PhysAddr(0),
            eptp: 0,
            io_bitmap_a: PhysAddr(0),
            io_bitmap_b: PhysAddr(0),
            msr_bitmap: PhysAddr(0),
            controls: VmxControls {
                pin: 0,
                proc: 0,
                proc2: 0,
                exit: 0,
                entry: 0,
                exception_bitmap: 0,
                cr0_mask: 0,
                cr4_mask: 0,
            },
            guest: GuestState {
                rip: VirtAddr(0),
                rsp: VirtAddr(0),
                rflags: 2,
                cr0: 0,
                cr3: GuestPhysAddr(0),
                cr4: 0,
                efer: 0,
                pat: 0,
                rdi: 0,
                cs: SEGMENT,
                data: SEGMENT,
                tr: SEGMENT,
                ldtr: SEGMENT,
            },
            source_events,
            fault_action,
        }
    }

    const KERNEL: KernelSpec = KernelSpec {
        pml4: PhysAddr(0),
        debug_uart_port: 0x2f8,
        tsc_khz: 10_000,
        cpu_count: 1,
        vmxon_regions: &[],
    };

    const A: SubjectId = SubjectId(0);
    const B: SubjectId = SubjectId(1);
    const C: SubjectId = SubjectId(2);

    const YIELD: SourceEvent = SourceEvent::Kernel(KernelAction::Yield);
    const SLEEP: SourceEvent = SourceEvent::Kernel(KernelAction::Sleep);

    /// Two partitions, one subject each: p_a [0,100), p_b [100,300).
    static TWO_PARTITIONS: SystemSpec = SystemSpec {
        name: "two",
        kernel: KERNEL,
        subjects: &[
            subject(
                "a",
                FaultAction::StopSystem,
                events(&[
                    (
                        1,
                        SourceEvent::Async {
                            target: B,
                            target_event: 3,
                        },
                    ),
                    (2, SourceEvent::Kernel(KernelAction::Poweroff)),
                    (3, SourceEvent::Kernel(KernelAction::Reboot)),
                    (4, SourceEvent::Kernel(KernelAction::SystemPanic)),
                    (5, SourceEvent::SelfEvent { target_event: 63 }),
                    (63, YIELD),
                ]),
            ),
            subject("b", FaultAction::StopSubject, NO_EVENTS),
        ],
        partitions: &[
            PartitionSpec {
                name: "p_a",
                cpu: 0,
                groups: &[GroupId(0)],
            },
            PartitionSpec {
                name: "p_b",
                cpu: 0,
                groups: &[GroupId(1)],
            },
        ],
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
            length: TscCycles(300),
            cpus: &[&[
                MinorFrameSpec {
                    partition: PartitionId(0),
                    end: TscCycles(100),
                },
                MinorFrameSpec {
                    partition: PartitionId(1),
                    end: TscCycles(300),
                },
            ]],
        }],
        image_regions: &[],
    };

    /// One partition with groups [a, c] and [b] in one minor frame of 100.
    static SHARED_PARTITION: SystemSpec = SystemSpec {
        name: "shared",
        kernel: KERNEL,
        subjects: &[
            subject(
                "a",
                FaultAction::StopSubject,
                events(&[
                    (0, YIELD),
                    (1, SLEEP),
                    (
                        2,
                        SourceEvent::Switch {
                            target: C,
                            target_event: 7,
                        },
                    ),
                    (
                        3,
                        SourceEvent::Switch {
                            target: B,
                            target_event: 9,
                        },
                    ),
                ]),
            ),
            subject(
                "b",
                FaultAction::StopSubject,
                events(&[
                    (0, YIELD),
                    (
                        1,
                        SourceEvent::Async {
                            target: A,
                            target_event: 5,
                        },
                    ),
                ]),
            ),
            subject(
                "c",
                FaultAction::StopSubject,
                events(&[
                    (0, YIELD),
                    (
                        2,
                        SourceEvent::Switch {
                            target: A,
                            target_event: 1,
                        },
                    ),
                ]),
            ),
        ],
        partitions: &[PartitionSpec {
            name: "p",
            cpu: 0,
            groups: &[GroupId(0), GroupId(1)],
        }],
        groups: &[
            GroupSpec {
                subjects: &[A, C],
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
            }]],
        }],
        image_regions: &[],
    };

    fn scheduler(spec: &'static SystemSpec) -> Scheduler {
        Scheduler::new(spec, 0).unwrap()
    }

    #[test]
    fn plan_walk_uses_absolute_deadlines() {
        let mut s = scheduler(&TWO_PARTITIONS);
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
    fn groups_take_turns_at_frame_boundaries() {
        let mut s = scheduler(&SHARED_PARTITION);
        assert_eq!(s.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(A));
        assert_eq!(s.deadline(), TscCycles(300));
    }

    #[test]
    fn yield_hands_the_rest_of_the_frame_to_the_next_group() {
        let mut s = scheduler(&SHARED_PARTITION);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(0), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Yielded));
        // Both gave up: idle until the deadline.
        assert_eq!(s.on_hypercall(0), Decision::Idle);
        assert_eq!(s.current(), None);
        // Next frame: both runnable again, round-robin continues with a.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
        assert_eq!(s.state(B), Some(SubjectState::Runnable));
    }

    #[test]
    fn a_yield_in_a_single_group_partition_idles() {
        let mut s = scheduler(&TWO_PARTITIONS);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(63), Decision::Idle);
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
    }

    #[test]
    fn an_event_wakes_a_sleeper() {
        let mut s = scheduler(&SHARED_PARTITION);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(1), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Sleeping));
        assert_eq!(s.on_hypercall(1), Decision::Resume);
        assert_eq!(s.pending(A), 1 << 5);
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
        assert_eq!(s.on_hypercall(0), Decision::Run(A));
        // Sleeping with an event pending consumes it and returns at once.
        assert_eq!(s.on_hypercall(1), Decision::Resume);
        assert_eq!(s.pending(A), 0);
    }

    #[test]
    fn switch_changes_the_active_subject_of_the_group() {
        let mut s = scheduler(&SHARED_PARTITION);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(2), Decision::Run(C));
        assert_eq!(s.pending(C), 1 << 7);
        // Next frame: group 1 (b); the one after: group 0, now c.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(C));
        assert_eq!(s.on_hypercall(2), Decision::Run(A));
    }

    #[test]
    fn switch_across_groups_only_marks_pending() {
        let mut s = scheduler(&SHARED_PARTITION);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(3), Decision::Resume);
        assert_eq!(s.pending(B), 1 << 9);
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn invalid_hypercalls_are_ignored() {
        let mut s = scheduler(&TWO_PARTITIONS);
        s.start(TscCycles(0));
        for event in [6, 62, 64, 65, 1 << 32, u64::MAX] {
            assert_eq!(s.on_hypercall(event), Decision::Resume);
        }
        assert_eq!(s.pending(A), 0);
        assert_eq!(s.pending(B), 0);
    }

    #[test]
    fn async_and_self_events_mark_pending() {
        let mut s = scheduler(&TWO_PARTITIONS);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(1), Decision::Resume);
        assert_eq!(s.on_hypercall(5), Decision::Resume);
        assert_eq!(s.pending(B), 1 << 3);
        assert_eq!(s.pending(A), 1 << 63);
        assert_eq!(s.take_pending(B), 1 << 3);
        assert_eq!(s.pending(B), 0);
    }

    #[test]
    fn kernel_actions_name_the_caller() {
        let mut s = scheduler(&TWO_PARTITIONS);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(2), Decision::Poweroff { by: A });
        assert_eq!(s.on_hypercall(3), Decision::Reboot { by: A });
        assert_eq!(s.on_hypercall(4), Decision::Panic { by: A });
    }

    #[test]
    fn faults_follow_the_subjects_policy() {
        let mut s = scheduler(&TWO_PARTITIONS);
        s.start(TscCycles(0));
        assert_eq!(s.on_fault(), Some(FaultDecision::StopSystem { by: A }));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(
            s.on_fault(),
            Some(FaultDecision::SubjectStopped {
                by: B,
                next: Decision::Idle
            })
        );
        assert_eq!(s.state(B), Some(SubjectState::Stopped));
        // b's frames idle from now on; a keeps its frames.
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(400)), Decision::Idle);
        assert_eq!(s.on_frame_end(TscCycles(600)), Decision::Run(A));
    }

    #[test]
    fn a_stopped_subject_cannot_be_switched_to() {
        let mut s = scheduler(&SHARED_PARTITION);
        s.start(TscCycles(0));
        assert_eq!(s.on_hypercall(2), Decision::Run(C));
        // c faults: group 1 (b) gets the rest of the frame.
        assert_eq!(
            s.on_fault(),
            Some(FaultDecision::SubjectStopped {
                by: C,
                next: Decision::Run(B)
            })
        );
        // Group 0's active subject is stopped: b keeps every frame.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Resume);
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Resume);
        assert_eq!(s.current(), Some(B));
    }

    #[test]
    fn hypercalls_without_a_running_subject_idle() {
        let mut s = scheduler(&TWO_PARTITIONS);
        assert_eq!(s.on_hypercall(1), Decision::Idle);
        assert_eq!(s.on_fault(), None);
        assert_eq!(s.on_interrupt(), Decision::Idle);
        s.start(TscCycles(0));
        assert_eq!(s.on_interrupt(), Decision::Resume);
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
        assert_eq!(
            Scheduler::new(&WRONG_CPU, 0).unwrap_err(),
            SpecError::CpuMismatch
        );
        assert_eq!(
            Scheduler::new(&ORPHAN, 0).unwrap_err(),
            SpecError::GroupMembership(B)
        );
        assert_eq!(
            Scheduler::new(&TWICE, 0).unwrap_err(),
            SpecError::GroupMembership(A)
        );
        assert_eq!(
            Scheduler::new(&BAD_ENDS, 0).unwrap_err(),
            SpecError::BadFrameEnds
        );
        assert_eq!(
            Scheduler::new(&BAD_TARGET, 0).unwrap_err(),
            SpecError::BadReference("event target subject")
        );
        assert_eq!(
            Scheduler::new(&TWO_PARTITIONS, 1).unwrap_err(),
            SpecError::NoFrames
        );
        let mut text = std::string::String::new();
        core::fmt::write(&mut text, format_args!("{}", SpecError::BadFrameEnds)).unwrap();
        assert!(text.contains("minor frame ends"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Hypercall(u64),
            FrameEnd,
            Fault,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0u64..70).prop_map(Step::Hypercall),
                any::<u64>().prop_map(Step::Hypercall),
                Just(Step::FrameEnd),
                Just(Step::Fault),
            ]
        }

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

            /// Whatever subjects do, the scheduler only ever runs a runnable
            /// subject of the current frame's partition, never a stopped one,
            /// and deadlines never go back.
            #[test]
            fn decisions_respect_the_plan(steps in proptest::collection::vec(step(), 0..40)) {
                let spec: &'static SystemSpec = &SHARED_PARTITION;
                let mut s = Scheduler::new(spec, 0).unwrap();
                let mut now = 0u64;
                let mut decision = s.start(TscCycles(now));
                let mut deadline = s.deadline();
                for step in steps {
                    if let Decision::Run(id) = decision {
                        prop_assert_eq!(s.state(id), Some(SubjectState::Runnable));
                        prop_assert_eq!(s.current(), Some(id));
                    }
                    if decision == Decision::Resume {
                        prop_assert!(s.current().is_some());
                    }
                    let idle = s.current().is_none();
                    decision = match step {
                        Step::Hypercall(n) if !idle => s.on_hypercall(n),
                        Step::Fault if !idle => match s.on_fault().unwrap() {
                            FaultDecision::SubjectStopped { by, next } => {
                                prop_assert_eq!(s.state(by), Some(SubjectState::Stopped));
                                next
                            }
                            FaultDecision::StopSystem { .. } => unreachable!(),
                        },
                        _ => {
                            now = s.deadline().get();
                            s.on_frame_end(TscCycles(now))
                        }
                    };
                    prop_assert!(s.deadline() >= deadline);
                    deadline = s.deadline();
                    if let Some(id) = s.current() {
                        prop_assert_ne!(s.state(id), Some(SubjectState::Stopped));
                    }
                }
            }
        }
    }
}
