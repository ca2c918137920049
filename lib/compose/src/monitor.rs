//! Monitors in the composition: a monitored subject's
//! `FaultAction::Monitor` (its monitor and trap event from the `<monitor
//! event>`'s target, its state page's physical address, its chosen exits),
//! RDTSC exiting for a subject whose monitor chose `rdtsc`, and the kernel
//! mapping of every state page.
//!
//! The state page is an ordinary `<memory>` region of the policy (4 KiB,
//! mapped by the monitor only: the `subjects-monitor-*` rules), so
//! placement, the monitor's page tables and EPT, its info page entry and
//! the image's region list need nothing new. What is new is that the
//! kernel writes it: [`kernel_mappings`] identity-maps each state page
//! read-write, no-execute, with the region's own memory type, in the
//! kernel's tables (`pipeline::kernel_tables`).

use septum_abi::info::FLAG_WRITABLE;
use septum_abi::layout::PAGE_SIZE;
use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, VirtAddr};
use septum_kerncore::spec::{FaultAction, MonitorSpec, VirtioConsoleSpec, VmxControls};

use crate::error::ComposeError;
use crate::events::{self, EventTargets};
use crate::info::{self, Resource};
use crate::input::{Caching, OnFault, SubjectInput, SystemInput};
use crate::placement::{Placed, Placer};
use crate::system::{Mapping, MappingKind, SubjectOut};

/// RDTSC exiting (primary processor-based control, bit 12; SDM 25.6.2).
pub const RDTSC_EXITING: u32 = 1 << 12;

/// Basic exit reason of RDTSC.
const EXIT_RDTSC: u16 = 16;

/// The kernel's fault action for subject `s`: its `onFault`, and for
/// `monitor` everything the kernel needs to hand over its exits.
pub fn fault_action(
    input: &SystemInput,
    placed: &Placed,
    placer: &Placer,
    targets: &EventTargets,
    s: &SubjectInput,
) -> Result<FaultAction, ComposeError> {
    let fail = |what: &str| {
        Err(ComposeError::new(format!(
            "subject \"{}\": onFault=\"monitor\": {what}",
            s.name
        )))
    };
    if s.on_fault != OnFault::Monitor {
        return Ok(events::fault_action(s.on_fault, s.restart));
    }
    let Some(monitor) = &s.monitor else {
        return fail("no <monitor>");
    };
    let Some(target) = targets.get(&monitor.event) else {
        return fail("the monitor event has no target");
    };
    let Some(&region) = placed.memory.get(monitor.state) else {
        return fail("the state region is not placed");
    };
    if input.regions.get(monitor.state).map(|r| r.size) != Some(PAGE_SIZE) {
        return fail("the state region is not 4 KiB");
    }
    Ok(FaultAction::Monitor(MonitorSpec {
        monitor: target.subject,
        event: target.target_event,
        state: placer.region(region).start,
        exits: monitor.exits,
        virtio_console: monitor.virtio_console.map(|c| VirtioConsoleSpec {
            port: c.port,
            irq: c.irq,
        }),
    }))
}

/// `controls` with what `s`'s monitor needs: RDTSC exiting if it chose
/// `rdtsc`.
pub fn controls(s: &SubjectInput, mut controls: VmxControls) -> VmxControls {
    if s.monitor
        .as_ref()
        .is_some_and(|m| m.exits.contains(EXIT_RDTSC))
    {
        controls.proc |= RDTSC_EXITING;
    }
    controls
}

/// Every state page with its memory type, for the kernel's identity map.
pub fn kernel_mappings(input: &SystemInput, subjects: &[SubjectOut]) -> Vec<(PhysAddr, Caching)> {
    subjects
        .iter()
        .zip(&input.subjects)
        .filter_map(|(out, s)| match (out.fault_action, &s.monitor) {
            (FaultAction::Monitor(spec), Some(m)) => {
                let caching = input
                    .regions
                    .get(m.state)
                    .map_or(Caching::Wb, |r| r.caching);
                Some((spec.state, caching))
            }
            _ => None,
        })
        .collect()
}

/// The mappings a monitor gets of the memory of each VM whose virtio
/// console it emulates (it walks the guest's virtqueues): every segment of
/// the VM's image (the boot segment, the low megabyte, and its RAM from 1
/// MiB), read-write, not executable, at `guestMemory` + the segment's
/// guest-physical address, named `guest_low` (the segment at 0) and
/// `guest_ram`, each with its info-page record. The VM's own EPT is not
/// changed: this is the monitor's second view of the same memory, as a
/// shared `<memory>` region would be.
pub fn guest_memory(
    input: &SystemInput,
    placed: &Placed,
    placer: &Placer,
    targets: &EventTargets,
    monitor: SubjectId,
) -> Vec<(Mapping, Resource)> {
    let mut out = Vec::new();
    for (vm, s) in input.subjects.iter().enumerate() {
        let Some(m) = &s.monitor else {
            continue;
        };
        let Some(console) = m.virtio_console else {
            continue;
        };
        if targets.get(&m.event).map(|t| t.subject) != Some(monitor) {
            continue;
        }
        let Some(regions) = placed.subjects.get(vm) else {
            continue;
        };
        for (seg, placed) in s.image.segments.iter().zip(&regions.segments) {
            let gpa = seg.virtual_address.get();
            let name = if gpa == 0 { "guest_low" } else { "guest_ram" };
            let va = console.guest_memory.saturating_add(gpa);
            let r = placer.region(placed.region);
            out.push((
                Mapping {
                    name: name.into(),
                    region: placed.region,
                    virtual_address: Some(VirtAddr(va)),
                    guest_physical: GuestPhysAddr(va),
                    physical: r.start,
                    size: r.size,
                    writable: true,
                    executable: false,
                    kind: MappingKind::Memory,
                },
                info::memory(name, VirtAddr(va), r.size, FLAG_WRITABLE),
            ));
        }
    }
    out
}
