//! Exits: the vendor-neutral [`Exit`] enum and [`dispatch`], the one place
//! that decides what an exit does.
//!
//! The arch layer reads the hardware's exit information into an [`Exit`]
//! (for VT-x: the VMCS exit reason and, per reason, a few more fields),
//! calls [`dispatch`] with the CPU's [`Scheduler`], and executes the
//! [`Decision`] it gets back: resume, enter another subject, idle until the
//! frame deadline, or stop the machine. It takes no decision of its own, so
//! an AMD SVM backend would only add another reader of its exit
//! information. Dispatch is plain `match`es, no function pointers: the
//! kernel's stack-depth gate needs every call on the exit path resolved.
//!
//! Hypercalls: RAX is a source event number of the caller. A number of 64
//! or more, or an undefined slot, is ignored (the subject resumes). The
//! number indexes the event table only after the range check and a mask
//! (`& 63`) that the optimiser is kept from removing, so a mispredicted
//! check cannot index outside the table (Spectre v1). `async` and `self`
//! events mark a target event pending in the system-wide
//! [`crate::events::PendingTable`]; `switch` also hands the CPU to the target
//! (same group only); `kernel` events run their action below.
//!
//! `sleep` (the SDK's `wait`): if any target event of the caller is
//! pending, the call returns at once with them; otherwise the caller sleeps
//! until one is (see [`crate::plan`]: across minor frames, woken only within
//! its own partition's frames). Either way the subject's return from the
//! hypercall is a [`Decision::Wake`], whose `pending` word (taken from the
//! [`crate::events::PendingTable`] with an atomic swap) the arch layer
//! writes into the subject's RAX: bit `n` set means target event `n` was
//! pending. Every other hypercall leaves RAX as the subject set it.
//!
//! `reset` events (a `<reset/>` target event, [`SourceEvent::Reset`]) mark
//! the target event pending like `async` ones and return
//! [`Decision::Reset`]: the arch layer requests the target's restart
//! ([`crate::lifecycle`]) and the caller resumes.
//!
//! Adding a kernel action: a variant of `spec::KernelAction`, its arm in
//! `kernel_action` here (with a new [`Decision`] variant if the arch must do
//! something new) and, for a new decision, its execution in the arch's
//! `exit.rs`.

use septum_abi::hypercall::{EVENT_MASK, MAX_EVENTS};
use septum_abi::{SubjectId, TscCycles};

use crate::plan::{Scheduler, SubjectState};
use crate::spec::{FaultAction, KernelAction, SourceEvent};

/// Why the running subject left guest mode, independent of the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The subject raised source event `event` (RAX of `vmcall`; the arch
    /// layer has already moved guest RIP past the instruction).
    Hypercall {
        /// The raw register value: not yet checked.
        event: u64,
    },
    /// The minor frame's deadline passed (the VMX-preemption timer expired).
    TimerExpired {
        /// When the exit was handled (TSC).
        now: TscCycles,
    },
    /// An external interrupt arrived while the subject ran (a device IRQ
    /// is already acknowledged and recorded, see [`crate::irq`]).
    ExternalInterrupt,
    /// The subject can take an interrupt again (interrupt-window exit,
    /// asked for because a vector is pending for it).
    InterruptWindow,
    /// A hardware NMI arrived while the subject ran.
    Nmi,
    /// An exit the policy does not route (an EPT violation, an I/O or MSR
    /// access, an exception, a forbidden instruction).
    Fault(FaultInfo),
    /// VM entry failed on the subject's state and the CPU reported it as
    /// an exit (SDM 27.8); handled like a fault of the subject.
    EntryFailure(FaultInfo),
}

/// What the arch layer read about a fault, for the report only: dispatch
/// does not look at it ([`crate::fault::FaultLine`] prints it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultInfo {
    /// The vendor's exit code (VT-x: the basic exit reason).
    pub code: u16,
    /// The vendor's exit qualification.
    pub qualification: u64,
    /// Guest-physical address, where the vendor reports one (VT-x: EPT
    /// violations and misconfigurations; else 0, and not printed).
    pub guest_physical: u64,
    /// Guest RIP at the fault.
    pub rip: u64,
    /// Detail that belongs in the report for some faults.
    pub detail: FaultDetail,
    /// The error code of an exception that pushes one (`None` otherwise).
    pub error_code: Option<u32>,
    /// Guest linear address, where the vendor reports one (VT-x: EPT
    /// violations whose qualification marks it valid).
    pub guest_linear: Option<u64>,
}

/// Extra report detail of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultDetail {
    /// Nothing more.
    None,
    /// An I/O instruction: its first port and width
    /// ([`crate::ioport::IoAccess`]).
    Port(crate::ioport::IoAccess),
    /// An exception: the vector.
    Vector(u8),
}

/// What the arch layer must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Re-enter the subject that exited.
    Resume,
    /// Enter this subject (a different one from the last entered, or the
    /// first one).
    Run(SubjectId),
    /// Enter `subject` (it may be the one that exited), which returns from
    /// its `sleep` hypercall: write `pending` (the target events taken from
    /// the pending table for it) into its RAX.
    Wake {
        /// The subject that wakes.
        subject: SubjectId,
        /// Its pending target events (bit `n`: target event `n`).
        pending: u64,
    },
    /// Nothing may run: wait in root mode until [`Scheduler::deadline`], then
    /// call [`Scheduler::on_frame_end`].
    Idle,
    /// A subject raised an `unmask_irq` kernel event: unmask its
    /// level-triggered IRQ lines, then resume it.
    UnmaskIrq {
        /// The subject.
        by: SubjectId,
    },
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
    /// A fault stops the whole system (the subject's `onFault` is
    /// `stopSystem`; `None`: no subject had the CPU). Fail-closed.
    StopSystem {
        /// The faulting subject.
        by: Option<SubjectId>,
    },
    /// A chosen exit of a monitored subject (`onFault="monitor"`): the arch
    /// layer writes `by`'s state page while its registers and VMCS are
    /// still loaded, then calls [`crate::monitor::hand_over`] and executes
    /// what that returns.
    Trap {
        /// The monitored subject that exited (the running one).
        by: SubjectId,
        /// Its monitor.
        monitor: SubjectId,
        /// The monitor's target event to mark pending.
        event: u8,
    },
    /// A fault stopped its subject (`onFault="stopSubject"`); no subject has
    /// the CPU. The system goes on: after reporting, the arch layer asks
    /// [`Scheduler::continue_frame`] who gets the rest of the frame.
    SubjectStopped {
        /// The faulting subject, never scheduled again.
        by: SubjectId,
    },
    /// A subject raised a source event whose target event resets its
    /// target (the event is already pending on the target). The arch layer
    /// requests the target's restart ([`crate::lifecycle::RestartRequests`]),
    /// which the target's CPU carries out before it next enters the
    /// target; the caller resumes.
    Reset {
        /// The subject that raised the event.
        by: SubjectId,
        /// The subject to restart.
        target: SubjectId,
    },
    /// A fault of a subject whose `onFault` is `restartSubject`; it still
    /// has the CPU. The arch layer reports the fault, then asks
    /// [`crate::lifecycle::after_fault`] what follows.
    Restart {
        /// The faulting subject.
        by: SubjectId,
        /// Its restart limit and fallback.
        policy: crate::lifecycle::RestartPolicy,
    },
}

/// Decide what `exit` does on the CPU whose scheduler is `cpu`. Inlined, so
/// that an arch layer calling it with a known kind of exit gets only that
/// arm (the hypercall path stays short).
#[inline(always)]
pub fn dispatch(cpu: &mut Scheduler<'_>, exit: Exit) -> Decision {
    match exit {
        Exit::Hypercall { event } => hypercall(cpu, event),
        // The VMX-preemption timer counts at most 2^32 - 1 units, so the
        // arch layer arms it with the largest value for a frame longer than
        // that: it expires early, and the frame goes on (re-armed for what
        // is left) until its deadline.
        Exit::TimerExpired { now } if now < cpu.deadline() => Decision::Resume,
        Exit::TimerExpired { now } => cpu.on_frame_end(now),
        // A device IRQ is recorded for its owner by the arch layer before
        // dispatch; who runs does not change (the vector waits for its
        // owner). A window exit only lets the arch layer inject.
        Exit::ExternalInterrupt | Exit::InterruptWindow | Exit::Nmi => cpu.resume_or_idle(),
        Exit::Fault(info) => fault(cpu, Some(info.code), info.detail),
        Exit::EntryFailure(_) => fault(cpu, None, FaultDetail::None),
    }
}

/// The running subject raised source event `event`.
#[inline(always)]
fn hypercall(cpu: &mut Scheduler<'_>, event: u64) -> Decision {
    let Some(caller) = cpu.current() else {
        return Decision::Idle;
    };
    if event >= MAX_EVENTS as u64 {
        return Decision::Resume;
    }
    // Masked as well as checked, so the index stays in the table even
    // when the check above is speculated past (Spectre v1). `black_box`
    // keeps the optimiser from dropping the mask as redundant.
    let index = (core::hint::black_box(event) & EVENT_MASK) as usize;
    let source = cpu
        .spec()
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
            cpu.events().set(target, target_event);
            Decision::Resume
        }
        Some(SourceEvent::Reset {
            target,
            target_event,
        }) => {
            cpu.events().set(target, target_event);
            Decision::Reset { by: caller, target }
        }
        Some(SourceEvent::SelfEvent { target_event }) => {
            cpu.events().set(caller, target_event);
            Decision::Resume
        }
        Some(SourceEvent::Switch {
            target,
            target_event,
        }) => {
            cpu.events().set(target, target_event);
            cpu.switch_to(caller, target)
        }
        Some(SourceEvent::Kernel(action)) => kernel_action(cpu, caller, action),
    }
}

/// A `kernel` event of `caller`.
fn kernel_action(cpu: &mut Scheduler<'_>, caller: SubjectId, action: KernelAction) -> Decision {
    match action {
        KernelAction::Yield => cpu.give_up(caller, SubjectState::Yielded),
        KernelAction::Sleep => {
            // Events already pending end the sleep before it begins.
            let pending = cpu.events().take(caller);
            if pending != 0 {
                Decision::Wake {
                    subject: caller,
                    pending,
                }
            } else {
                cpu.give_up(caller, SubjectState::Sleeping)
            }
        }
        KernelAction::Poweroff => Decision::Poweroff { by: caller },
        KernelAction::Reboot => Decision::Reboot { by: caller },
        KernelAction::SystemPanic => Decision::Panic { by: caller },
        KernelAction::NextPlan => {
            cpu.request_next_plan();
            Decision::Resume
        }
        KernelAction::UnmaskIrq => Decision::UnmaskIrq { by: caller },
    }
}

/// The running subject caused an exit the policy does not route: its
/// `onFault` decides. `exit`: the basic exit reason (`None` for a failed
/// VM entry, which no monitor is handed), `detail` its report detail.
fn fault(cpu: &mut Scheduler<'_>, exit: Option<u16>, detail: FaultDetail) -> Decision {
    let action = cpu
        .current()
        .and_then(|by| cpu.spec().subjects.get(by.index()))
        .map(|subject| subject.fault_action);
    match action {
        Some(FaultAction::Monitor(monitor)) => {
            crate::monitor::trap(cpu.current(), &monitor, exit, detail)
        }
        Some(FaultAction::StopSubject) => match cpu.stop_current() {
            Some(by) => Decision::SubjectStopped { by },
            None => Decision::StopSystem { by: None },
        },
        Some(FaultAction::RestartSubject(policy)) => match cpu.current() {
            Some(by) => Decision::Restart { by, policy },
            None => Decision::StopSystem { by: None },
        },
        Some(FaultAction::StopSystem) | None => Decision::StopSystem { by: cpu.current() },
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
    use crate::events::PendingTable;
    use crate::spec::{
        GroupId, GroupSpec, MajorFrameSpec, MinorFrameSpec, PartitionId, PartitionSpec,
        SubjectSpec, SystemSpec,
    };
    use crate::testing::*;

    const FAULT: Exit = Exit::Fault(FaultInfo {
        code: 48,
        qualification: 0,
        guest_physical: 0,
        rip: 0,
        detail: FaultDetail::None,
        error_code: None,
        guest_linear: None,
    });

    fn scheduler<'e>(spec: &'static SystemSpec, events: &'e PendingTable) -> Scheduler<'e> {
        Scheduler::new(spec, 0, events).unwrap()
    }

    fn hypercall(s: &mut Scheduler<'_>, event: u64) -> Decision {
        dispatch(s, Exit::Hypercall { event })
    }

    #[test]
    fn yield_hands_the_rest_of_the_frame_to_the_next_group() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 0), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Yielded));
        // Both gave up: idle until the deadline.
        assert_eq!(hypercall(&mut s, 0), Decision::Idle);
        assert_eq!(s.current(), None);
        // Next frame: both runnable again, round-robin continues with a.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
        assert_eq!(s.state(B), Some(SubjectState::Runnable));
    }

    #[test]
    fn a_yield_holds_for_its_own_frame_only() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        // A yields in frame 0 and B in frame 1: each is yielded only in
        // the frame it yielded in (the frame end resets no table).
        assert_eq!(hypercall(&mut s, 0), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Yielded));
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
        assert_eq!(s.state(B), Some(SubjectState::Runnable));
        assert_eq!(hypercall(&mut s, 0), Decision::Run(B));
        assert_eq!(hypercall(&mut s, 0), Decision::Idle);
        assert_eq!(s.state(B), Some(SubjectState::Yielded));
        for frame in 2..10u64 {
            let Decision::Run(first) = s.on_frame_end(TscCycles(frame * 100)) else {
                panic!("frame {frame}: nobody runs");
            };
            assert_eq!(s.state(A), Some(SubjectState::Runnable));
            assert_eq!(s.state(B), Some(SubjectState::Runnable));
            // A yield hands the frame to the other group, whose own yield
            // of an earlier frame no longer counts.
            let other = if first == A { B } else { A };
            assert_eq!(hypercall(&mut s, 0), Decision::Run(other));
            assert_eq!(hypercall(&mut s, 0), Decision::Idle);
        }
    }

    #[test]
    fn a_yield_in_a_single_group_partition_idles() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 63), Decision::Idle);
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
    }

    #[test]
    fn an_event_wakes_a_sleeper() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 1), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Sleeping));
        assert_eq!(hypercall(&mut s, 1), Decision::Resume);
        assert_eq!(s.pending(A), 1 << 5);
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
        // b yields: a wakes with the event, taken from the table.
        assert_eq!(
            hypercall(&mut s, 0),
            Decision::Wake {
                subject: A,
                pending: 1 << 5
            }
        );
        assert_eq!(s.pending(A), 0);
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn a_sleep_with_events_pending_returns_them_at_once() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        events.set(A, 5);
        events.set(A, 0);
        assert_eq!(
            hypercall(&mut s, 1),
            Decision::Wake {
                subject: A,
                pending: 1 << 5 | 1
            }
        );
        assert_eq!(s.pending(A), 0);
        assert_eq!(s.current(), Some(A));
        // Nothing pending any more: now it sleeps.
        assert_eq!(hypercall(&mut s, 1), Decision::Run(B));
        assert_eq!(s.state(A), Some(SubjectState::Sleeping));
    }

    #[test]
    fn a_sleep_outlasts_its_frames_until_an_event_is_pending() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 1), Decision::Run(B));
        // b yields: nothing else may run.
        assert_eq!(hypercall(&mut s, 0), Decision::Idle);
        for frame in 1..5 {
            // a is still asleep at every frame end; b gets every frame.
            assert_eq!(s.on_frame_end(TscCycles(frame * 100)), Decision::Run(B));
            assert_eq!(s.state(A), Some(SubjectState::Sleeping));
            assert_eq!(hypercall(&mut s, 0), Decision::Idle);
        }
        // b signals a in its next frame and yields: a wakes in that frame.
        assert_eq!(s.on_frame_end(TscCycles(500)), Decision::Run(B));
        assert_eq!(hypercall(&mut s, 1), Decision::Resume);
        assert_eq!(
            hypercall(&mut s, 0),
            Decision::Wake {
                subject: A,
                pending: 1 << 5
            }
        );
    }

    #[test]
    fn an_event_pending_at_a_frame_end_wakes_the_sleeper_then() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        // b gets an event while a runs; entering b takes nothing (only a
        // sleep does).
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        events.set(B, 3);
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(400)), Decision::Run(B));
        assert_eq!(s.pending(B), 1 << 3, "entering a subject takes nothing");
    }

    #[test]
    fn a_switch_leaves_the_targets_event_pending_for_its_next_sleep() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 2), Decision::Run(C));
        // c switches back to a, marking a's target event 1.
        assert_eq!(hypercall(&mut s, 2), Decision::Run(A));
        assert_eq!(s.pending(A), 1 << 1);
        assert_eq!(
            hypercall(&mut s, 1),
            Decision::Wake {
                subject: A,
                pending: 1 << 1
            }
        );
    }

    #[test]
    fn a_switch_not_entered_is_a_run_at_the_next_pick() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        // a switches to c, but the frame ends before c is entered (the
        // arch layer's budget at the deadline): c stays the active subject
        // of its group, and when that group's turn comes it is entered
        // with a Run (a Resume would resume a, still loaded).
        // b sleeps, so the next frame's pick comes to a's group at once.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.give_up(B, SubjectState::Sleeping), Decision::Run(A));
        assert_eq!(hypercall(&mut s, 2), Decision::Run(C));
        s.not_entered();
        assert_eq!(s.current(), None);
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(C));
    }

    #[test]
    fn switch_changes_the_active_subject_of_the_group() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 2), Decision::Run(C));
        assert_eq!(s.pending(C), 1 << 7);
        // Next frame: group 1 (b); the one after: group 0, now c.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(C));
        assert_eq!(hypercall(&mut s, 2), Decision::Run(A));
    }

    #[test]
    fn switch_across_groups_only_marks_pending() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 3), Decision::Resume);
        assert_eq!(s.pending(B), 1 << 9);
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn invalid_hypercalls_are_ignored() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        for event in [6, 62, 64, 65, 1 << 32, u64::MAX] {
            assert_eq!(hypercall(&mut s, event), Decision::Resume);
        }
        assert_eq!(s.pending(A), 0);
        assert_eq!(s.pending(B), 0);
    }

    #[test]
    fn async_and_self_events_mark_pending() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 1), Decision::Resume);
        assert_eq!(hypercall(&mut s, 5), Decision::Resume);
        assert_eq!(s.pending(B), 1 << 3);
        assert_eq!(s.pending(A), 1 << 63);
        assert_eq!(s.events().take(B), 1 << 3);
        assert_eq!(s.pending(B), 0);
    }

    #[test]
    fn kernel_actions_name_the_caller() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 2), Decision::Poweroff { by: A });
        assert_eq!(hypercall(&mut s, 3), Decision::Reboot { by: A });
        assert_eq!(hypercall(&mut s, 4), Decision::Panic { by: A });
    }

    #[test]
    fn faults_follow_the_subjects_policy() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(
            dispatch(&mut s, FAULT),
            Decision::StopSystem { by: Some(A) }
        );
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(B));
        assert_eq!(dispatch(&mut s, FAULT), Decision::SubjectStopped { by: B });
        assert_eq!(s.current(), None);
        assert_eq!(s.continue_frame(), Decision::Idle);
        assert_eq!(s.state(B), Some(SubjectState::Stopped));
        // b's frames idle from now on; a keeps its frames.
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(400)), Decision::Idle);
        assert_eq!(s.on_frame_end(TscCycles(600)), Decision::Run(A));
    }

    #[test]
    fn a_stopped_subject_cannot_be_switched_to() {
        let events = PendingTable::new();
        let mut s = scheduler(&SHARED_PARTITION, &events);
        s.start(TscCycles(0));
        assert_eq!(hypercall(&mut s, 2), Decision::Run(C));
        // c faults: group 1 (b) gets the rest of the frame.
        assert_eq!(dispatch(&mut s, FAULT), Decision::SubjectStopped { by: C });
        assert_eq!(s.continue_frame(), Decision::Run(B));
        // c was group 0's active subject: a, the next member, takes over
        // (a stopped subject does not starve its group); the groups go on
        // taking turns.
        assert_eq!(s.on_frame_end(TscCycles(100)), Decision::Run(A));
        assert_eq!(s.on_frame_end(TscCycles(200)), Decision::Run(B));
        assert_eq!(s.on_frame_end(TscCycles(300)), Decision::Run(A));
        // A switch to the stopped c is refused: a resumes.
        assert_eq!(hypercall(&mut s, 2), Decision::Resume);
        assert_eq!(s.current(), Some(A));
    }

    #[test]
    fn hypercalls_without_a_running_subject_idle() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        assert_eq!(hypercall(&mut s, 1), Decision::Idle);
        assert_eq!(dispatch(&mut s, FAULT), Decision::StopSystem { by: None });
        assert_eq!(dispatch(&mut s, Exit::ExternalInterrupt), Decision::Idle);
        s.start(TscCycles(0));
        assert_eq!(dispatch(&mut s, Exit::ExternalInterrupt), Decision::Resume);
    }

    #[test]
    fn unmask_irq_and_interrupt_windows_keep_the_subject_running() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        assert_eq!(dispatch(&mut s, Exit::InterruptWindow), Decision::Idle);
        s.start(TscCycles(0));
        assert_eq!(dispatch(&mut s, Exit::InterruptWindow), Decision::Resume);
        assert_eq!(
            kernel_action(&mut s, A, KernelAction::UnmaskIrq),
            Decision::UnmaskIrq { by: A }
        );
        assert_eq!(s.current(), Some(A));
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
    }

    #[test]
    fn timer_and_interrupt_exits() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(dispatch(&mut s, Exit::Nmi), Decision::Resume);
        assert_eq!(dispatch(&mut s, Exit::ExternalInterrupt), Decision::Resume);
        let end = Exit::TimerExpired {
            now: TscCycles(100),
        };
        assert_eq!(dispatch(&mut s, end), Decision::Run(B));
        assert_eq!(s.deadline(), TscCycles(300));
    }

    #[test]
    fn an_early_timer_expiry_keeps_the_frame() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        assert_eq!(s.deadline(), TscCycles(100));
        // A timer that could not count to the deadline expires before it:
        // the same subject resumes, the frame and its deadline stay.
        for now in [0, 1, 50, 99] {
            let early = Exit::TimerExpired {
                now: TscCycles(now),
            };
            assert_eq!(dispatch(&mut s, early), Decision::Resume);
            assert_eq!(s.deadline(), TscCycles(100));
            assert_eq!(s.current(), Some(A));
            assert!(s.at_major_frame_start());
        }
        let at_deadline = Exit::TimerExpired {
            now: TscCycles(100),
        };
        assert_eq!(dispatch(&mut s, at_deadline), Decision::Run(B));
        assert_eq!(s.deadline(), TscCycles(300));
    }

    #[test]
    fn an_entry_failure_follows_the_fault_policy() {
        let events = PendingTable::new();
        let mut s = scheduler(&TWO_PARTITIONS, &events);
        s.start(TscCycles(0));
        s.on_frame_end(TscCycles(100));
        let failure = Exit::EntryFailure(FaultInfo {
            code: 33,
            qualification: 0,
            guest_physical: 0,
            rip: 0,
            detail: FaultDetail::None,
            error_code: None,
            guest_linear: None,
        });
        assert_eq!(
            dispatch(&mut s, failure),
            Decision::SubjectStopped { by: B }
        );
        assert_eq!(s.current(), None);
        assert_eq!(s.continue_frame(), Decision::Idle);
    }

    /// CPU 0 runs `a`; CPU 1 runs group [b] and group [c] in one partition.
    static TWO_CPUS: SystemSpec = SystemSpec {
        name: "two_cpus",
        kernel: KERNEL,
        subjects: &[
            subject(
                "a",
                FaultAction::StopSystem,
                events(&[(
                    0,
                    SourceEvent::Async {
                        target: B,
                        target_event: 4,
                    },
                )]),
            ),
            SubjectSpec {
                cpu: 1,
                ..subject("b", FaultAction::StopSystem, events(&[(0, SLEEP)]))
            },
            SubjectSpec {
                cpu: 1,
                ..subject("c", FaultAction::StopSystem, events(&[(0, YIELD)]))
            },
        ],
        partitions: &[
            PartitionSpec {
                name: "p0",
                cpu: 0,
                groups: &[GroupId(0)],
            },
            PartitionSpec {
                name: "p1",
                cpu: 1,
                groups: &[GroupId(1), GroupId(2)],
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
            GroupSpec {
                subjects: &[C],
                initial: C,
            },
        ],
        major_frames: &[MajorFrameSpec {
            length: TscCycles(100),
            cpus: &[
                &[MinorFrameSpec {
                    partition: PartitionId(0),
                    end: TscCycles(100),
                    pad: septum_abi::TscCycles(700),
                    lead: false,
                }],
                &[MinorFrameSpec {
                    partition: PartitionId(1),
                    end: TscCycles(100),
                    pad: septum_abi::TscCycles(700),
                    lead: false,
                }],
            ],
        }],
        image_regions: &[],
    };

    /// An event sent on one CPU wakes a sleeper on another through the one
    /// shared table, without touching the other CPU's scheduler.
    #[test]
    fn an_event_from_another_cpu_wakes_a_sleeper() {
        let events = PendingTable::new();
        let mut cpu0 = Scheduler::new(&TWO_CPUS, 0, &events).unwrap();
        let mut cpu1 = Scheduler::new(&TWO_CPUS, 1, &events).unwrap();
        assert_eq!(cpu0.start(TscCycles(0)), Decision::Run(A));
        assert_eq!(cpu1.start(TscCycles(0)), Decision::Run(B));
        assert_eq!(hypercall(&mut cpu1, 0), Decision::Run(C));
        assert_eq!(cpu1.state(B), Some(SubjectState::Sleeping));
        assert_eq!(hypercall(&mut cpu0, 0), Decision::Resume);
        assert_eq!(cpu1.state(B), Some(SubjectState::Runnable));
        // c yields: b, woken, gets the rest of the frame on CPU 1, and the
        // event with it.
        assert_eq!(
            hypercall(&mut cpu1, 0),
            Decision::Wake {
                subject: B,
                pending: 1 << 4
            }
        );
        assert_eq!(events.peek(B), 0);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Hypercall(u64),
            FrameEnd,
            Fault,
            /// Another CPU marks `event` pending on subject `subject`.
            Signal(u16, u8),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                (0u64..70).prop_map(Step::Hypercall),
                any::<u64>().prop_map(Step::Hypercall),
                Just(Step::FrameEnd),
                Just(Step::Fault),
                (0u16..3, 0u8..64).prop_map(|(subject, event)| Step::Signal(subject, event)),
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
                let events = PendingTable::new();
                let mut s = Scheduler::new(spec, 0, &events).unwrap();
                let mut now = 0u64;
                let mut decision = s.start(TscCycles(now));
                let mut deadline = s.deadline();
                for step in steps {
                    if let Decision::Run(id) | Decision::Wake { subject: id, .. } = decision {
                        prop_assert_eq!(s.state(id), Some(SubjectState::Runnable));
                        prop_assert_eq!(s.current(), Some(id));
                    }
                    if decision == Decision::Resume {
                        prop_assert!(s.current().is_some());
                    }
                    let idle = s.current().is_none();
                    let before = [A, B, C].map(|id| s.pending(id));
                    decision = match step {
                        Step::Signal(subject, event) => {
                            events.set(SubjectId(subject), event);
                            continue;
                        }
                        Step::Hypercall(n) if !idle => hypercall(&mut s, n),
                        Step::Fault if !idle => match dispatch(&mut s, FAULT) {
                            Decision::SubjectStopped { by } => {
                                prop_assert_eq!(s.state(by), Some(SubjectState::Stopped));
                                s.continue_frame()
                            }
                            other => unreachable!("{other:?}"),
                        },
                        _ => {
                            now = s.deadline().get();
                            dispatch(&mut s, Exit::TimerExpired { now: TscCycles(now) })
                        }
                    };
                    prop_assert!(s.deadline() >= deadline);
                    deadline = s.deadline();
                    if let Some(id) = s.current() {
                        prop_assert_ne!(s.state(id), Some(SubjectState::Stopped));
                        prop_assert_ne!(s.state(id), Some(SubjectState::Sleeping));
                    }
                    // A pending bit leaves the table only by being delivered
                    // to its subject in a wake, and a wake delivers something.
                    let woken = match decision {
                        Decision::Wake { subject, pending } => {
                            prop_assert_ne!(pending, 0);
                            Some((subject, pending))
                        }
                        _ => None,
                    };
                    for (id, before) in [A, B, C].into_iter().zip(before) {
                        let delivered = woken
                            .filter(|(subject, _)| *subject == id)
                            .map_or(0, |(_, pending)| pending);
                        prop_assert_eq!(before & !s.pending(id) & !delivered, 0);
                    }
                }
            }
        }
    }
}
