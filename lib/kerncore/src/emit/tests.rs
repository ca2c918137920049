//! The golden spec test: a spec holding every variant of every spec enum is
//! emitted, compared with the committed `golden/every_variant_spec.rs`,
//! compiled here against the kernel's static types (`include!`), emitted
//! again from the compiled value (same text) and compared value by value.
//! Regenerate the golden file with `UPDATE_GOLDEN=1 cargo test -p
//! septum-kerncore` and review the diff.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::lifecycle::{Fallback, RestartPolicy};
use crate::spec::{Owned, Static};

/// The golden crash-audit region.
const CRASH_AUDIT: CrashAuditSpec = CrashAuditSpec {
    start: PhysAddr(0xffe_e000),
    size: 0x2000,
    slot_count: 2,
    policy_hash: 0x0123_4567_89ab_cdef,
};

mod golden {
    include!("../../golden/every_variant_spec.rs");
}

const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/every_variant_spec.rs");
const GOLDEN: &str = include_str!("../../golden/every_variant_spec.rs");

/// Every kernel action: the list the spec defines the enum from.
fn every_kernel_action() -> Vec<KernelAction> {
    KernelAction::ALL.to_vec()
}

/// Every source event kind (each kernel action once).
fn every_source_event() -> Vec<SourceEvent> {
    let mut all = vec![
        SourceEvent::Async {
            target: SubjectId(1),
            target_event: 5,
        },
        SourceEvent::Switch {
            target: SubjectId(1),
            target_event: 63,
        },
        SourceEvent::SelfEvent { target_event: 0 },
        SourceEvent::Reset {
            target: SubjectId(2),
            target_event: 7,
        },
    ];
    all.extend(every_kernel_action().into_iter().map(SourceEvent::Kernel));
    for event in &all {
        match event {
            SourceEvent::Async { .. }
            | SourceEvent::Switch { .. }
            | SourceEvent::SelfEvent { .. }
            | SourceEvent::Reset { .. }
            | SourceEvent::Kernel(_) => {}
        }
    }
    all
}

/// Every fault action.
fn every_fault_action() -> Vec<FaultAction> {
    let all = vec![
        FaultAction::StopSystem,
        FaultAction::StopSubject,
        FaultAction::RestartSubject(RestartPolicy {
            limit: 3,
            fallback: Fallback::StopSystem,
        }),
        FaultAction::Monitor(MonitorSpec {
            monitor: SubjectId(1),
            event: 62,
            state: PhysAddr(0x50_0000),
            exits: ExitSet::EMPTY.with(0).with(30).with(127),
            virtio_console: Some(VirtioConsoleSpec {
                port: 0xc000,
                irq: 5,
            }),
        }),
    ];
    for action in &all {
        match action {
            FaultAction::StopSystem
            | FaultAction::StopSubject
            | FaultAction::RestartSubject(_)
            | FaultAction::Monitor(_) => {}
        }
    }
    all
}

const SEGMENT: Segment = Segment {
    selector: 0x10,
    base: 0,
    limit: 0xffff_ffff,
    access_rights: 0xc093,
};

fn subject(
    name: &str,
    vpid: u16,
    source_events: [Option<SourceEvent>; MAX_EVENTS],
    fault_action: FaultAction,
) -> SubjectSpec<Owned> {
    let base = u64::from(vpid) << 20;
    SubjectSpec {
        name: name.to_string(),
        cpu: u32::from(vpid) - 1,
        vpid,
        vmcs: PhysAddr(base),
        eptp: base | 0x1e,
        io_bitmap_a: PhysAddr(base + 0x1000),
        io_bitmap_b: PhysAddr(base + 0x2000),
        msr_bitmap: PhysAddr(base + 0x3000),
        apic_access: (vpid == 2).then_some(PhysAddr(base + 0x4000)),
        controls: VmxControls {
            pin: 0x49,
            proc: 0xb299_8e80,
            proc2: 0x66,
            exit: 0x30_8200,
            entry: 0x8200,
            exception_bitmap: u32::MAX,
            cr0_mask: u64::MAX,
            cr4_mask: u64::MAX,
        },
        guest: GuestState {
            rip: VirtAddr(0x20_0000),
            rsp: VirtAddr(0x10_0000),
            rflags: 2,
            cr0: 0x8001_0033,
            cr3: GuestPhysAddr(0x1000),
            cr4: 0x20,
            efer: 0xd00,
            pat: 0x0007_0406_0007_0406,
            rdi: 0x1_0000,
            cs: Segment {
                selector: 0x08,
                access_rights: 0xa09b,
                ..SEGMENT
            },
            data: SEGMENT,
            tr: Segment {
                selector: 0x18,
                limit: 0x67,
                access_rights: 0x8b,
                ..SEGMENT
            },
            ldtr: Segment {
                selector: 0,
                base: 0,
                limit: 0,
                access_rights: 0x1_0000,
            },
        },
        source_events,
        minor_frame_deadline: fault_action == FaultAction::StopSubject,
        ipi_events: if fault_action == FaultAction::StopSubject {
            1 << 3
        } else {
            0
        },
        timed_event: (fault_action == FaultAction::StopSubject).then_some(TimedEventSpec {
            page: PhysAddr(0x7000),
            event: 5,
        }),
        fault_action,
    }
}

/// A two-subject, two-CPU system that uses every variant: subject `a`
/// raises every source event kind (slots 0.., with a gap before the last
/// one), `b` has none; each fault action once; two major frames, one of
/// them idle on CPU 1.
fn every_variant() -> SystemSpec<Owned> {
    let mut events = [None; MAX_EVENTS];
    let all = every_source_event();
    let last = all.len();
    for (slot, event) in events.iter_mut().zip(all) {
        *slot = Some(event);
    }
    events[last + 2] = Some(SourceEvent::SelfEvent { target_event: 1 });
    let faults = every_fault_action();
    SystemSpec {
        name: "every_variant".to_string(),
        kernel: KernelSpec {
            pml4: PhysAddr(0x40_0000),
            debug_uart_port: 0x3f8,
            tsc_khz: 2_000_000,
            cpu_count: 2,
            vmxon_regions: vec![PhysAddr(0x30_0000), PhysAddr(0x30_1000)],
            apic_ids: vec![ApicId(0), ApicId(2)],
        },
        subjects: vec![
            subject("a", 1, events, faults[0]),
            subject("b", 2, [None; MAX_EVENTS], faults[1]),
            subject("c", 3, [None; MAX_EVENTS], faults[2]),
            subject("d", 4, [None; MAX_EVENTS], faults[3]),
        ],
        partitions: vec![
            PartitionSpec {
                name: "p0".to_string(),
                cpu: 0,
                groups: vec![GroupId(0)],
            },
            PartitionSpec {
                name: "p1".to_string(),
                cpu: 1,
                groups: vec![GroupId(1)],
            },
        ],
        groups: vec![
            GroupSpec {
                subjects: vec![SubjectId(0), SubjectId(2)],
                initial: SubjectId(0),
            },
            GroupSpec {
                subjects: vec![SubjectId(1), SubjectId(3)],
                initial: SubjectId(1),
            },
        ],
        major_frames: vec![
            MajorFrameSpec {
                length: TscCycles(300_000),
                cpus: vec![
                    vec![
                        MinorFrameSpec {
                            partition: PartitionId(0),
                            end: TscCycles(100_000),
                            pad: septum_abi::TscCycles(700),
                            lead: false,
                        },
                        MinorFrameSpec {
                            partition: PartitionId(0),
                            end: TscCycles(300_000),
                            pad: septum_abi::TscCycles(700),
                            lead: false,
                        },
                    ],
                    vec![MinorFrameSpec {
                        partition: PartitionId(1),
                        end: TscCycles(300_000),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    }],
                ],
            },
            MajorFrameSpec {
                length: TscCycles(100_000),
                cpus: vec![
                    vec![MinorFrameSpec {
                        partition: PartitionId(0),
                        end: TscCycles(100_000),
                        pad: septum_abi::TscCycles(700),
                        lead: false,
                    }],
                    vec![],
                ],
            },
        ],
        image_regions: vec![
            ImageRegion {
                name: "kernel|text".to_string(),
                start: PhysAddr(0x10_0000),
                size: 0x10_0000,
            },
            ImageRegion {
                name: "a|vmcs".to_string(),
                start: PhysAddr(0x10_0000),
                size: 0x1000,
            },
        ],
    }
}

#[test]
fn the_emitter_writes_the_golden_spec() {
    let text = spec_source(&every_variant(), &CRASH_AUDIT);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN_PATH, &text).unwrap();
    }
    assert!(
        text == GOLDEN,
        "{GOLDEN_PATH} differs from the emitter's output; rerun with UPDATE_GOLDEN=1 and review"
    );
}

#[test]
fn the_compiled_golden_spec_emits_the_same_text() {
    let compiled: &SystemSpec<Static> = &golden::SPEC;
    assert_eq!(
        spec_source(compiled, &golden::CRASH_AUDIT),
        spec_source(&every_variant(), &CRASH_AUDIT)
    );
    assert_eq!(golden::CRASH_AUDIT, CRASH_AUDIT);
}

#[test]
fn the_compiled_golden_spec_holds_every_variant() {
    let built = every_variant();
    let compiled = &golden::SPEC;
    assert_eq!(compiled.subjects.len(), built.subjects.len());
    for (c, b) in compiled.subjects.iter().zip(&built.subjects) {
        assert_eq!(c.source_events, b.source_events);
        assert_eq!(c.fault_action, b.fault_action);
        assert_eq!(c.minor_frame_deadline, b.minor_frame_deadline);
        assert_eq!(c.timed_event, b.timed_event);
        assert_eq!(c.apic_access, b.apic_access);
        assert_eq!(c.ipi_events, b.ipi_events);
        assert_eq!(c.controls, b.controls);
        assert_eq!(c.guest, b.guest);
    }
    let raised: Vec<SourceEvent> = compiled.subjects[0]
        .source_events
        .iter()
        .flatten()
        .copied()
        .collect();
    for event in every_source_event() {
        assert!(raised.contains(&event), "{event:?} not in the golden spec");
    }
    let faults: Vec<FaultAction> = compiled.subjects.iter().map(|s| s.fault_action).collect();
    assert_eq!(faults, every_fault_action());
    assert_eq!(compiled.major_frames[1].cpus[1].len(), 0);
}

#[test]
fn small_values_take_one_line() {
    assert_eq!(
        to_rust(&SourceEvent::Kernel(KernelAction::SystemPanic)),
        "septum_kerncore::spec::SourceEvent::Kernel(septum_kerncore::spec::KernelAction::SystemPanic)"
    );
    assert_eq!(
        to_rust(&SourceEvent::SelfEvent { target_event: 7 }),
        "septum_kerncore::spec::SourceEvent::SelfEvent { target_event: 7 }"
    );
    assert_eq!(
        to_rust(&FaultAction::StopSubject),
        "septum_kerncore::spec::FaultAction::StopSubject"
    );
}
