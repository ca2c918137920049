//! The kernel's system spec of a composition, as Rust source.
//!
//! This step only serialises: it copies what the composition already holds
//! (addresses the placement chose, the VMX controls and guest state the
//! subject's profile chose, the resolved events and plan) into the kernel's
//! own spec types, [`septum_kerncore::spec`] with owned storage, and lets
//! [`septum_kerncore::emit`] write them. It decides nothing and cannot fail;
//! anything a spec cannot express is refused earlier, where it is resolved.

use septum_kerncore::emit;
use septum_kerncore::spec::{
    ApicId, CrashAuditSpec, GroupSpec, KernelSpec, MAX_EVENTS, MajorFrameSpec, MinorFrameSpec,
    Owned, PartitionSpec, SubjectSpec, SystemSpec,
};

use crate::system::{Composition, SubjectOut};

/// The kernel's spec of a composition.
pub fn system_spec(c: &Composition) -> SystemSpec<Owned> {
    SystemSpec {
        name: c.name.clone(),
        kernel: KernelSpec {
            pml4: c.kernel_pml4,
            debug_uart_port: c.debug_uart_port,
            tsc_khz: c.tsc_khz,
            cpu_count: c.cpu_count,
            vmxon_regions: c.vmxon.clone(),
            apic_ids: c.apic_ids.iter().copied().map(ApicId).collect(),
        },
        subjects: c.subjects.iter().map(subject_spec).collect(),
        partitions: c
            .schedule
            .partitions
            .iter()
            .map(|p| PartitionSpec {
                name: p.name.clone(),
                cpu: p.cpu,
                groups: p.groups.clone(),
            })
            .collect(),
        groups: c
            .schedule
            .groups
            .iter()
            .map(|g| GroupSpec {
                subjects: g.subjects.clone(),
                initial: g.initial(),
            })
            .collect(),
        major_frames: c
            .schedule
            .major_frames
            .iter()
            .map(|m| MajorFrameSpec {
                length: m.length,
                cpus: m
                    .cpus
                    .iter()
                    .map(|frames| {
                        frames
                            .iter()
                            .map(|f| MinorFrameSpec {
                                partition: f.partition,
                                end: f.end,
                                pad: f.pad,
                                lead: f.lead,
                            })
                            .collect()
                    })
                    .collect(),
            })
            .collect(),
        image_regions: c.image_regions(),
    }
}

fn subject_spec(s: &SubjectOut) -> SubjectSpec<Owned> {
    let mut source_events = [None; MAX_EVENTS];
    for e in &s.source_events {
        if let Some(slot) = source_events.get_mut(usize::from(e.id)) {
            *slot = Some(e.action);
        }
    }
    SubjectSpec {
        name: s.name.clone(),
        cpu: s.cpu,
        vpid: s.vpid,
        vmcs: s.vmcs,
        eptp: s.eptp,
        io_bitmap_a: s.io_bitmap_a,
        io_bitmap_b: s.io_bitmap_b,
        msr_bitmap: s.msr_bitmap,
        apic_access: s.apic_access,
        controls: s.controls,
        guest: s.guest,
        source_events,
        fault_action: s.fault_action,
        minor_frame_deadline: s.minor_frame_deadline,
        timed_event: s.timed_event,
        ipi_events: crate::events::ipi_mask(&s.source_events),
    }
}

/// The kernel's view of the crash-audit region.
pub fn crash_audit_spec(c: &Composition) -> CrashAuditSpec {
    CrashAuditSpec {
        start: c.crash_audit.start,
        size: c.crash_audit.size,
        slot_count: c.crash_audit.slot_count,
        policy_hash: c.crash_audit.policy_hash,
    }
}

/// The `spec.rs` source for a composition: `SPEC`, `CRASH_AUDIT`, `VTD`,
/// `PCI_CONFIG`, `CONSOLE_INPUT` (a const).
pub fn spec_source(c: &Composition) -> String {
    let mut source = emit::spec_source(&system_spec(c), &crash_audit_spec(c));
    source.push_str(&septum_kerncore::lifecycle::restart_source(
        &c.restart_images,
    ));
    source.push_str(&c.interrupts.source());
    source.push_str(&emit::vtd_source(&c.vtd));
    source.push_str(&septum_kerncore::pcicfg::emit_source(&c.pci_grants));
    source.push_str(&septum_kerncore::vm::console_input::emit_source(
        c.console_input,
    ));
    source
}
