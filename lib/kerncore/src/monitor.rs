//! Monitors: the decisions that hand a monitored subject's exits to its
//! monitor subject and let the monitor resume it.
//!
//! A subject with `onFault="monitor"` has a [`MonitorSpec`]: its monitor,
//! the monitor's target event, its state page and the set of exits the
//! monitor chose. Why a monitor at all: a fault that only stops the
//! subject or the system cannot be checked by anyone but a reader of the
//! console, and a VM subject's device emulation needs exactly this seam (a
//! trapped I/O access or MMIO fault handled by another subject, the
//! subject resumed past it).
//!
//! The whole exchange is built from what the scheduler already has, so it
//! adds no scheduling state: the monitor is in the monitored subject's
//! scheduling group (the composer requires it), and a trap is a `switch`
//! from the subject to its monitor. Only the active member of a group
//! runs, so the subject stays stopped until someone in its group switches
//! back to it: the monitor's own `switch` event is its *resume*. The kernel
//! (not this crate: it owns no memory) writes the state page at the trap
//! and loads the registers the monitor may change when the subject is next
//! entered (docs/kernel.md, "Monitors").
//!
//! 1. [`trap`] (from `exits::dispatch`): a chosen exit becomes
//!    [`Decision::Trap`]; an exit the monitor did not choose, or a failed
//!    VM entry, stops the system (fail-closed, like the default action).
//!    For a VM with a virtio console, `io` chooses only the ports of the
//!    console's BAR (docs/kernel.md, "Virtio console").
//! 2. The arch layer writes the state page, then calls [`hand_over`]: the
//!    monitor's event is marked pending and the monitor gets the CPU (a
//!    sleeping monitor wakes with the event). If the switch is refused
//!    (the monitor is stopped), the subject is stopped instead of being
//!    resumed at the instruction that exits again.

use septum_abi::SubjectId;

use crate::exits::{Decision, FaultDetail};
use crate::plan::Scheduler;
use crate::spec::MonitorSpec;
use crate::vm::pci::VIRTIO_BAR_SIZE;

/// The exits a `<monitor exits="...">` may choose, by the policy's name,
/// each with its VT-x basic exit reasons (SDM Vol. 3D, appendix C). A
/// hypercall (`vmcall`) is not here: it is an event. `rdtsc` also makes
/// the composer turn on RDTSC exiting for the subject, which native
/// subjects otherwise run without.
pub const EXIT_NAMES: &[(&str, &[u16])] = &[
    ("exception", &[0]),
    ("triple_fault", &[2]),
    ("cpuid", &[10]),
    ("getsec", &[11]),
    ("hlt", &[12]),
    ("invd", &[13]),
    ("invlpg", &[14]),
    ("rdpmc", &[15]),
    ("rdtsc", &[16]),
    ("vmx", &[19, 20, 21, 22, 23, 24, 25, 26, 27, 50, 53, 59]),
    ("cr", &[28]),
    ("dr", &[29]),
    ("io", &[30]),
    ("rdmsr", &[31]),
    ("wrmsr", &[32]),
    ("mwait", &[36]),
    ("monitor", &[39]),
    ("pause", &[40]),
    ("descriptor_table", &[46, 47]),
    ("ept_violation", &[48]),
    ("ept_misconfiguration", &[49]),
    ("rdtscp", &[51]),
    ("wbinvd", &[54]),
    ("xsetbv", &[55]),
    ("rdrand", &[57]),
    ("invpcid", &[58]),
    ("rdseed", &[61]),
    ("xsaves", &[63]),
    ("xrstors", &[64]),
];

/// The exit reasons of the policy's exit `name` (`None`: no such name).
pub fn exit_reasons(name: &str) -> Option<&'static [u16]> {
    EXIT_NAMES
        .iter()
        .find(|&&(known, _)| known == name)
        .map(|&(_, reasons)| reasons)
}

/// The decision for a fault of the monitored subject `by` (the running
/// one; `None`: nobody had the CPU) with basic exit reason `exit` (`None`:
/// a failed VM entry) and report detail `detail`.
pub fn trap(
    by: Option<SubjectId>,
    spec: &MonitorSpec,
    exit: Option<u16>,
    detail: FaultDetail,
) -> Decision {
    match (by, exit) {
        (Some(by), Some(reason)) if spec.exits.contains(reason) && chosen(spec, reason, detail) => {
            Decision::Trap {
                by,
                monitor: spec.monitor,
                event: spec.event,
            }
        }
        _ => Decision::StopSystem { by },
    }
}

/// Whether an exit of a chosen reason is the monitor's: for a VM with a
/// virtio console, an I/O exit only if every port it touches is in the
/// console's BAR (`out dx, eax` at its last port reaches three ports
/// beyond it; the kernel emulated every access it knows before this; any
/// other access is a fault the monitor did not choose); every other exit,
/// yes. A monitor without a console chose every port: its subject's I/O
/// bitmap already makes an access exit if any of its bytes is not owned.
fn chosen(spec: &MonitorSpec, reason: u16, detail: FaultDetail) -> bool {
    match (spec.virtio_console, detail) {
        (Some(console), FaultDetail::Port(access)) if reason == EXIT_IO => {
            access.within(console.port, VIRTIO_BAR_SIZE)
        }
        _ => true,
    }
}

/// Basic exit reason of an I/O instruction.
const EXIT_IO: u16 = 30;

/// After the arch layer saved `by`'s state: mark `event` pending on
/// `monitor` and give it the CPU; if that is refused, stop `by`.
pub fn hand_over(
    cpu: &mut Scheduler<'_>,
    by: SubjectId,
    monitor: SubjectId,
    event: u8,
) -> Decision {
    cpu.events().set(monitor, event);
    match cpu.switch_to(by, monitor) {
        Decision::Resume => match cpu.stop_current() {
            Some(by) => Decision::SubjectStopped { by },
            None => Decision::StopSystem { by: None },
        },
        decision => decision,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::events::PendingTable;
    use crate::exits::{Exit, FaultDetail, FaultInfo, dispatch};
    use crate::plan::SubjectState;
    use crate::spec::{
        ExitSet, FaultAction, GroupId, GroupSpec, MajorFrameSpec, MinorFrameSpec, PartitionId,
        PartitionSpec, SourceEvent, SystemSpec,
    };
    use crate::testing::*;
    use septum_abi::{PhysAddr, TscCycles};

    /// The monitor's trap event.
    const TRAP: u8 = 4;
    /// Basic exit reasons.
    const IO: u16 = 30;
    const CPUID: u16 = 10;

    const WATCH: MonitorSpec = MonitorSpec {
        monitor: B,
        event: TRAP,
        state: PhysAddr(0x9000),
        exits: ExitSet::EMPTY.with(IO).with(0),
        virtio_console: None,
    };
    const MONITORED: FaultAction = FaultAction::Monitor(WATCH);

    /// Group [a (monitored by b), b], a active at boot; b resumes a with
    /// its switch event 2 and sleeps with event 1.
    static MONITORED_PAIR: SystemSpec = SystemSpec {
        name: "monitor",
        kernel: KERNEL,
        subjects: &[
            subject("a", MONITORED, NO_EVENTS),
            subject(
                "b",
                FaultAction::StopSystem,
                events(&[
                    (1, SLEEP),
                    (
                        2,
                        SourceEvent::Switch {
                            target: A,
                            target_event: 0,
                        },
                    ),
                ]),
            ),
        ],
        partitions: &[PartitionSpec {
            name: "p",
            cpu: 0,
            groups: &[GroupId(0)],
        }],
        groups: &[GroupSpec {
            subjects: &[A, B],
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

    fn port(port: u16, size: u8) -> FaultDetail {
        FaultDetail::Port(crate::ioport::IoAccess { port, size })
    }

    fn fault(code: u16) -> Exit {
        Exit::Fault(FaultInfo {
            code,
            qualification: 0,
            guest_physical: 0,
            rip: 0,
            detail: FaultDetail::None,
            error_code: None,
            guest_linear: None,
        })
    }

    #[test]
    fn a_chosen_exit_traps_and_the_monitor_resumes_the_subject() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&MONITORED_PAIR, 0, &events).unwrap();
        s.start(TscCycles(0));
        assert_eq!(s.current(), Some(A));
        let decision = dispatch(&mut s, fault(IO));
        assert_eq!(
            decision,
            Decision::Trap {
                by: A,
                monitor: B,
                event: TRAP
            }
        );
        // The monitor gets the CPU with its trap event pending.
        assert_eq!(hand_over(&mut s, A, B, TRAP), Decision::Run(B));
        assert_eq!(s.pending(B), 1 << TRAP);
        // It sleeps: the event is already pending, so it returns at once.
        assert_eq!(
            dispatch(&mut s, Exit::Hypercall { event: 1 }),
            Decision::Wake {
                subject: B,
                pending: 1 << TRAP
            }
        );
        // It resumes the subject with its switch event.
        assert_eq!(
            dispatch(&mut s, Exit::Hypercall { event: 2 }),
            Decision::Run(A)
        );
        assert_eq!(s.state(A), Some(SubjectState::Runnable));
    }

    #[test]
    fn the_subject_stays_stopped_until_resumed() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&MONITORED_PAIR, 0, &events).unwrap();
        s.start(TscCycles(0));
        dispatch(&mut s, fault(0));
        assert_eq!(hand_over(&mut s, A, B, TRAP), Decision::Run(B));
        events.take(B);
        // The monitor sleeps with nothing pending: nobody runs, and frame
        // ends do not bring the subject back (its group's active member is
        // the monitor).
        assert_eq!(
            dispatch(&mut s, Exit::Hypercall { event: 1 }),
            Decision::Idle
        );
        for frame in 1..4 {
            assert_eq!(s.on_frame_end(TscCycles(frame * 100)), Decision::Idle);
        }
        assert_eq!(s.current(), None);
    }

    #[test]
    fn an_exit_not_chosen_or_a_failed_entry_stops_the_system() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&MONITORED_PAIR, 0, &events).unwrap();
        s.start(TscCycles(0));
        assert_eq!(
            dispatch(&mut s, fault(CPUID)),
            Decision::StopSystem { by: Some(A) }
        );
        assert_eq!(
            trap(Some(A), &WATCH, None, FaultDetail::None),
            Decision::StopSystem { by: Some(A) }
        );
        assert_eq!(
            trap(None, &WATCH, Some(IO), port(0x3f8, 1)),
            Decision::StopSystem { by: None }
        );
    }

    #[test]
    fn a_virtio_console_monitor_gets_the_io_exits_of_its_bar_only() {
        let console = MonitorSpec {
            virtio_console: Some(crate::spec::VirtioConsoleSpec {
                port: 0xc000,
                irq: 5,
            }),
            ..WATCH
        };
        let trapped = Decision::Trap {
            by: A,
            monitor: B,
            event: TRAP,
        };
        let stop = Decision::StopSystem { by: Some(A) };
        for (first, size, decision) in [
            (0xc000, 1, trapped),
            (0xc000, 4, trapped),
            (0xc01c, 4, trapped),
            (0xc01e, 2, trapped),
            (0xc01f, 1, trapped),
            // Straddling the BAR's end: ports 0xc020.. are not the
            // monitor's (they fail without the width check).
            (0xc01f, 4, stop),
            (0xc01f, 2, stop),
            (0xc01d, 4, stop),
            (0xc020, 1, stop),
            (0xbfff, 1, stop),
            (0xbfff, 4, stop),
            (0x1f0, 1, stop),
        ] {
            assert_eq!(
                trap(Some(A), &console, Some(IO), port(first, size)),
                decision,
                "{first:#x}/{size}"
            );
        }
        // Without a console every port is the monitor's; other chosen
        // exits are unaffected.
        assert_eq!(trap(Some(A), &WATCH, Some(IO), port(0x1f0, 4)), trapped);
        assert_eq!(
            trap(Some(A), &console, Some(0), FaultDetail::Vector(6)),
            trapped
        );
    }

    #[test]
    fn a_refused_hand_over_stops_the_subject() {
        let events = PendingTable::new();
        let mut s = Scheduler::new(&MONITORED_PAIR, 0, &events).unwrap();
        s.start(TscCycles(0));
        // A monitor outside the subject's group: the switch is refused.
        assert_eq!(
            hand_over(&mut s, A, C, TRAP),
            Decision::SubjectStopped { by: A }
        );
        assert_eq!(s.state(A), Some(SubjectState::Stopped));
    }

    #[test]
    fn exit_names_are_unique_and_below_128() {
        for (i, (name, reasons)) in EXIT_NAMES.iter().enumerate() {
            assert!(EXIT_NAMES[i + 1..].iter().all(|(other, _)| other != name));
            assert!(reasons.iter().all(|&r| r < 128 && r != 18), "{name}");
        }
        assert_eq!(exit_reasons("io"), Some(&[30u16][..]));
        assert_eq!(exit_reasons("vmcall"), None);
    }

    #[test]
    fn exit_sets_hold_reasons_below_128() {
        let set = ExitSet::default().with(0).with(127).with(128);
        assert!(set.contains(0) && set.contains(127));
        assert!(!set.contains(1) && !set.contains(128) && !set.contains(u16::MAX));
    }
}
