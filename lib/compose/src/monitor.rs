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

use septum_abi::PhysAddr;
use septum_abi::layout::PAGE_SIZE;
use septum_kerncore::spec::{FaultAction, MonitorSpec, VmxControls};

use crate::error::ComposeError;
use crate::events::{self, EventTargets};
use crate::input::{Caching, OnFault, SubjectInput, SystemInput};
use crate::placement::{Placed, Placer};
use crate::system::SubjectOut;

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
