//! Test fixtures shared by the kerncore tests: hand-written specs small
//! enough to follow by eye (the composer's own output is tested in
//! `lib/compose`).
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "const table construction in tests"
)]

use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, TscCycles, VirtAddr};

use crate::spec::{
    FaultAction, GroupId, GroupSpec, GuestState, KernelAction, KernelSpec, MajorFrameSpec,
    MinorFrameSpec, PartitionId, PartitionSpec, Segment, SourceEvent, SubjectSpec, SystemSpec,
    VmxControls,
};

pub(crate) const NO_EVENTS: [Option<SourceEvent>; 64] = [None; 64];

pub(crate) const fn events(list: &[(usize, SourceEvent)]) -> [Option<SourceEvent>; 64] {
    let mut table = NO_EVENTS;
    let mut i = 0;
    while i < list.len() {
        table[list[i].0] = Some(list[i].1);
        i += 1;
    }
    table
}

pub(crate) const SEGMENT: Segment = Segment {
    selector: 0,
    base: 0,
    limit: 0,
    access_rights: 0x10000,
};

pub(crate) const fn subject(
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
        apic_access: None,
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
        minor_frame_deadline: false,
        timed_event: None,
        ipi_events: 0,
    }
}

pub(crate) const KERNEL: KernelSpec = KernelSpec {
    pml4: PhysAddr(0),
    debug_uart_port: 0x2f8,
    tsc_khz: 10_000,
    cpu_count: 1,
    vmxon_regions: &[],
    apic_ids: &[],
};

pub(crate) const A: SubjectId = SubjectId(0);
pub(crate) const B: SubjectId = SubjectId(1);
pub(crate) const C: SubjectId = SubjectId(2);

pub(crate) const YIELD: SourceEvent = SourceEvent::Kernel(KernelAction::Yield);
pub(crate) const SLEEP: SourceEvent = SourceEvent::Kernel(KernelAction::Sleep);

/// Two partitions, one subject each: p_a [0,100), p_b [100,300).
pub(crate) static TWO_PARTITIONS: SystemSpec = SystemSpec {
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
    }],
    image_regions: &[],
};

/// One partition with groups [a, c] and [b] in one minor frame of 100.
pub(crate) static SHARED_PARTITION: SystemSpec = SystemSpec {
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
            pad: septum_abi::TscCycles(700),
            lead: false,
        }]],
    }],
    image_regions: &[],
};
