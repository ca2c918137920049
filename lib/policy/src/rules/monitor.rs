//! Monitors: a subject with `onFault="monitor"` names, in its `<monitor>`,
//! a `switch` event whose target is its monitor, a 4 KiB state region only
//! the monitor maps, and the exits the monitor handles.
//!
//! The kernel hands a trap to the monitor by switching to it within the
//! subject's scheduling group, and the monitor resumes the subject with a
//! `switch` back (docs/kernel.md, "Monitors"); so the monitor must be in
//! the subject's group (which also puts it on the subject's CPU: a monitor
//! on another CPU is not supported). Chains are allowed (a monitor may be
//! monitored), cycles are not: a trap would hand the CPU around a ring of
//! subjects each stopped waiting for the next.

use std::collections::HashMap;

use septum_kerncore::monitor::{EXIT_NAMES, exit_reasons};

use super::common::{DiagnosticExt, event_ends, group_of, memberships, subjects};
use crate::diag::Diagnostics;
use crate::model::{EventMode, OnFault, Policy, SubjectIdx};
use crate::rule::{Category, Rule};

/// Size of a state region: one page (`septum_abi::state::STATE_PAGE_SIZE`).
const STATE_SIZE: u64 = septum_abi::state::STATE_PAGE_SIZE;

/// The monitor of each monitored subject: the target of its `<monitor
/// event>` (`None` when the event is unknown or has no target).
fn monitors(policy: &Policy) -> Vec<Option<SubjectIdx>> {
    let ends = event_ends(policy);
    policy
        .subjects
        .iter()
        .map(|s| {
            let event = s.monitor.as_ref()?.event.get()?;
            ends.get(event.index())?.targets.first().map(|&(t, _)| t)
        })
        .collect()
}

rule! {
    /// `onFault="monitor"` and a `<monitor>` element come together: one
    /// without the other leaves the exits with nowhere to go, or a monitor
    /// that is never used.
    ON_FAULT = "subjects-monitor-on-fault" in Subjects;
    fn on_fault(policy, out) {
        for subject in &policy.subjects {
            let monitored = subject.on_fault.value == OnFault::Monitor;
            match (&subject.monitor, monitored) {
                (None, true) => {
                    out.error(
                        ON_FAULT.id,
                        subject.on_fault.span,
                        format!(
                            "subject \"{}\" has onFault=\"monitor\" but no <monitor>",
                            subject.name.as_str()
                        ),
                    )
                    .help("add <monitor event=\"...\" state=\"...\" exits=\"...\"/> to the subject");
                }
                (Some(monitor), false) => {
                    out.error(
                        ON_FAULT.id,
                        monitor.span,
                        format!(
                            "subject \"{}\" has a <monitor> but its onFault is not \"monitor\"",
                            subject.name.as_str()
                        ),
                    )
                    .help("set onFault=\"monitor\" on the subject, or remove the <monitor>");
                }
                _ => {}
            }
        }
    }
}

rule! {
    /// A `<monitor>` names a defined `switch` event and a defined region.
    REFERENCE = "subjects-monitor-reference" in Subjects;
    fn reference(policy, out) {
        for subject in &policy.subjects {
            let Some(monitor) = &subject.monitor else {
                continue;
            };
            match monitor.event.get() {
                None => {
                    out.error(
                        REFERENCE.id,
                        monitor.event.name.span,
                        format!("event \"{}\" is not defined", monitor.event.name.as_str()),
                    )
                    .help("define a mode=\"switch\" event under <events> whose target is the monitor");
                }
                Some(event) if policy.event(event).mode.value != EventMode::Switch => {
                    out.error(
                        REFERENCE.id,
                        monitor.event.name.span,
                        format!(
                            "monitor event \"{}\" is not a switch event",
                            monitor.event.name.as_str()
                        ),
                    )
                    .label(policy.event(event).mode.span, "its mode")
                    .help("a trap hands the CPU to the monitor: give the event mode=\"switch\"");
                }
                Some(_) => {}
            }
            if monitor.state.get().is_none() {
                out.error(
                    REFERENCE.id,
                    monitor.state.name.span,
                    format!(
                        "memory region \"{}\" is not defined",
                        monitor.state.name.as_str()
                    ),
                )
                .help("define a 4 KiB region under the system's <memory> element");
            }
        }
    }
}

rule! {
    /// A subject does not monitor itself, and monitors form no cycle.
    CYCLE = "subjects-monitor-cycle" in Subjects;
    fn cycle(policy, out) {
        let of = monitors(policy);
        for (idx, subject) in subjects(policy) {
            let Some(monitor) = &subject.monitor else {
                continue;
            };
            let mut at = idx;
            for _ in 0..of.len() {
                match of.get(at.index()).copied().flatten() {
                    Some(next) if next == idx => {
                        let message = if at == idx {
                            format!("subject \"{}\" is its own monitor", subject.name.as_str())
                        } else {
                            format!(
                                "subject \"{}\" is in a cycle of monitors (through \"{}\")",
                                subject.name.as_str(),
                                policy.subject(at).name.as_str()
                            )
                        };
                        out.error(CYCLE.id, monitor.event.name.span, message)
                            .help("a monitor must be another subject that is not itself monitored by this one");
                        break;
                    }
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
    }
}

rule! {
    /// A monitor is in the scheduling group of the subject it monitors (so
    /// on its CPU): a trap and a resume are switches within that group. A
    /// monitor in another group or on another CPU is not supported.
    GROUP = "subjects-monitor-group" in Subjects;
    fn group(policy, out) {
        let of = monitors(policy);
        let members = memberships(policy);
        for (idx, subject) in subjects(policy) {
            let (Some(monitor), Some(Some(target))) = (&subject.monitor, of.get(idx.index())) else {
                continue;
            };
            if *target == idx {
                continue;
            }
            let (Some(own), Some(theirs)) = (group_of(&members, idx), group_of(&members, *target)) else {
                continue;
            };
            if own != theirs {
                out.error(
                    GROUP.id,
                    monitor.event.name.span,
                    format!(
                        "monitor \"{}\" is not in the scheduling group of subject \"{}\"; \
                         a monitor in another group or on another CPU is not supported",
                        policy.subject(*target).name.as_str(),
                        subject.name.as_str()
                    ),
                )
                .help("put the monitor and the subject in one <group> of one partition");
            }
        }
    }
}

rule! {
    /// A `<monitor>` chooses at least one exit, each by a known name.
    EXITS = "subjects-monitor-exits" in Subjects;
    fn exits(policy, out) {
        let known = || EXIT_NAMES.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(" ");
        for subject in &policy.subjects {
            let Some(monitor) = &subject.monitor else {
                continue;
            };
            if monitor.exits.value.is_empty() {
                out.error(EXITS.id, monitor.exits.span, "a <monitor> chooses no exit")
                    .help(format!("name exits in exits=\"...\", from: {}", known()));
            }
            for name in &monitor.exits.value {
                if exit_reasons(name.as_str()).is_none() {
                    out.error(
                        EXITS.id,
                        name.span,
                        format!("unknown exit \"{}\"", name.as_str()),
                    )
                    .help(format!("known exits: {}", known()));
                }
            }
        }
    }
}

rule! {
    /// A state region is one 4 KiB page, holds the state of one subject,
    /// is mapped by its monitor and by no other subject: nobody else may
    /// read or change a stopped subject's registers.
    STATE = "subjects-monitor-state" in Subjects;
    fn state(policy, out) {
        let of = monitors(policy);
        let mut first_use = HashMap::new();
        for (idx, subject) in subjects(policy) {
            let Some(monitor) = &subject.monitor else {
                continue;
            };
            let Some(region) = monitor.state.get() else {
                continue;
            };
            let name = monitor.state.name.as_str();
            let size = &policy.region(region).size;
            if size.value != STATE_SIZE {
                out.error(
                    STATE.id,
                    monitor.state.name.span,
                    format!("state region \"{name}\" is not 4 KiB"),
                )
                .label(size.span, "its size");
            }
            if let Some(&other) = first_use.get(&region) {
                let other: &crate::model::Subject = policy.subject(other);
                out.error(
                    STATE.id,
                    monitor.state.name.span,
                    format!(
                        "state region \"{name}\" already holds the state of subject \"{}\"",
                        other.name.as_str()
                    ),
                )
                .help("give every monitored subject its own state region");
            } else {
                first_use.insert(region, idx);
            }
            let target = of.get(idx.index()).copied().flatten();
            let mut mapped_by_monitor = false;
            for (mapper, s) in subjects(policy) {
                for map in s.maps.iter().filter(|m| m.physical.get() == Some(region)) {
                    if Some(mapper) == target {
                        mapped_by_monitor = true;
                    } else {
                        out.error(
                            STATE.id,
                            map.physical.name.span,
                            format!(
                                "subject \"{}\" maps \"{name}\", the state region of subject \"{}\", \
                                 which only its monitor may map",
                                s.name.as_str(),
                                subject.name.as_str()
                            ),
                        )
                        .label(monitor.state.name.span, "the state region");
                    }
                }
            }
            if let Some(target) = target
                && !mapped_by_monitor
            {
                out.error(
                    STATE.id,
                    monitor.state.name.span,
                    format!(
                        "monitor \"{}\" does not map the state region \"{name}\"",
                        policy.subject(target).name.as_str()
                    ),
                )
                .help("map it in the monitor's <memory> (writable=\"true\" to change the state)");
            }
        }
    }
}
