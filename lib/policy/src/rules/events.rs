//! Events: every event connects what its mode says it connects, and the
//! numbers subjects use for them (event ids, interrupt vectors) are valid
//! and unambiguous.
//!
//! A non-kernel event has at least one source and exactly one target; a
//! kernel event has sources only and an action. The mode constrains where
//! the target may be: `self` is the source itself, `switch` hands the CPU to
//! another subject of the same scheduling group, `ipi` interrupts another
//! CPU. Ids are 0..=63 per subject and direction (the hypercall number is
//! the source id); vectors are 32..=255 per subject, without the two the
//! kernel reserves.

use std::collections::HashMap;

use super::common::{
    DiagnosticExt, event_ends, first_definitions, group_of, memberships, owns_irq,
};
use crate::diag::Diagnostics;
use crate::model::{EventMode, KernelAction, Policy, Subject};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// Event ids are 0..=63 in each direction.
const MAX_EVENT_ID: u8 = (septum_abi::hypercall::MAX_EVENTS - 1) as u8;
/// Vectors below 32 are CPU exceptions.
const FIRST_VECTOR: u8 = 32;

/// Why a vector is reserved, if it is.
fn reserved_vector(vector: u8) -> Option<&'static str> {
    match vector {
        253 => Some("IOMMU fault reporting"),
        254 => Some("inter-processor interrupts"),
        _ => None,
    }
}

/// Every vector `subject` is given: injected by target events, by channel
/// readers, and by IRQ grants; with its span, explicit ones only when
/// `explicit_only`.
fn vectors(subject: &Subject, explicit_only: bool) -> Vec<(u8, Span)> {
    let mut out = Vec::new();
    let keep = |auto: bool| !(explicit_only && auto);
    for target in &subject.targets {
        if let Some(inject) = target.inject.as_ref().filter(|i| keep(i.vector.auto)) {
            out.push((inject.vector.value.0, inject.vector.span));
        }
    }
    for end in &subject.channels {
        if let Some(vector) = end.vector.as_ref().filter(|v| keep(v.auto)) {
            out.push((vector.value.0, vector.span));
        }
    }
    for irq in subject.devices.iter().flat_map(|g| &g.irqs) {
        if keep(irq.vector.auto) {
            out.push((irq.vector.value.0, irq.vector.span));
        }
    }
    out
}

rule! {
    /// Every event has at least one source: an event nobody raises is dead
    /// policy.
    NO_SOURCE = "events-no-source" in Events;
    fn no_source(policy, out) {
        let ends = event_ends(policy);
        let first = first_definitions(policy.events.iter().map(|e| e.name.as_str()));
        // A `<monitor event>` raises its event on every trap.
        let monitor_raises = |name: &str| {
            policy
                .subjects
                .iter()
                .filter_map(|s| s.monitor.as_ref())
                .any(|m| m.event.name.value == name)
        };
        for ((event, ends), first) in policy.events.iter().zip(&ends).zip(first) {
            if first && ends.sources.is_empty() && !monitor_raises(event.name.as_str()) {
                out.error(
                    NO_SOURCE.id,
                    event.name.span,
                    format!("event \"{}\" has no source", event.name.as_str()),
                )
                .help("raise it from a subject's <source> events, or remove it");
            }
        }
    }
}

rule! {
    /// Every event except kernel events has a target subject.
    NO_TARGET = "events-no-target" in Events;
    fn no_target(policy, out) {
        let ends = event_ends(policy);
        let first = first_definitions(policy.events.iter().map(|e| e.name.as_str()));
        for ((event, ends), first) in policy.events.iter().zip(&ends).zip(first) {
            if first && event.mode.value != EventMode::Kernel && ends.targets.is_empty() {
                out.error(
                    NO_TARGET.id,
                    event.name.span,
                    format!("event \"{}\" has no target", event.name.as_str()),
                )
                .help("add it to one subject's <target> events");
            }
        }
    }
}

rule! {
    /// A non-kernel event has exactly one target subject.
    MULTIPLE_TARGETS = "events-multiple-targets" in Events;
    fn multiple_targets(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value == EventMode::Kernel {
                continue;
            }
            let Some((_, first)) = ends.targets.first() else {
                continue;
            };
            for (_, target) in ends.targets.iter().skip(1) {
                out.error(
                    MULTIPLE_TARGETS.id,
                    target.physical.name.span,
                    format!("event \"{}\" has more than one target", event.name.as_str()),
                )
                .label(first.physical.name.span, "first target")
                .help("use one event per target");
            }
        }
    }
}

rule! {
    /// A kernel event has no target subject: the kernel itself acts on it.
    KERNEL_TARGET = "events-kernel-target" in Events;
    fn kernel_target(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::Kernel {
                continue;
            }
            for (_, target) in &ends.targets {
                out.error(
                    KERNEL_TARGET.id,
                    target.physical.name.span,
                    format!(
                        "kernel event \"{}\" cannot have a target subject",
                        event.name.as_str()
                    ),
                )
                .help("remove the target, or give the event another mode");
            }
        }
    }
}

rule! {
    /// A `self` event is received by the subject that raises it.
    SELF_TARGET = "events-self-target" in Events;
    fn self_target(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::SelfEvent {
                continue;
            }
            let Some(&(target, target_ref)) = ends.targets.first() else {
                continue;
            };
            for &(source, source_ref) in &ends.sources {
                if source != target {
                    out.error(
                        SELF_TARGET.id,
                        target_ref.physical.name.span,
                        format!(
                            "self event \"{}\" is received by subject \"{}\" but raised by subject \
                             \"{}\"",
                            event.name.as_str(),
                            policy.subject(target).name.as_str(),
                            policy.subject(source).name.as_str()
                        ),
                    )
                    .label(source_ref.physical.name.span, "raised here");
                }
            }
        }
    }
}

rule! {
    /// A `switch` event hands the CPU to a subject in the source's own
    /// scheduling group, the only subjects that may take over its time.
    SWITCH_GROUP = "events-switch-group" in Events;
    fn switch_group(policy, out) {
        let members = memberships(policy);
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::Switch {
                continue;
            }
            let Some(&(target, target_ref)) = ends.targets.first() else {
                continue;
            };
            let Some(target_group) = group_of(&members, target) else {
                continue;
            };
            for &(source, source_ref) in &ends.sources {
                let Some(source_group) = group_of(&members, source) else {
                    continue;
                };
                if source != target && source_group != target_group {
                    out.error(
                        SWITCH_GROUP.id,
                        source_ref.physical.name.span,
                        format!(
                            "switch event \"{}\" targets subject \"{}\", which is not in the \
                             scheduling group of its source \"{}\"",
                            event.name.as_str(),
                            policy.subject(target).name.as_str(),
                            policy.subject(source).name.as_str()
                        ),
                    )
                    .label(target_ref.physical.name.span, "the target");
                }
            }
        }
    }
}

rule! {
    /// A `switch` event does not target its own source, which already has
    /// the CPU.
    SWITCH_SELF = "events-switch-self" in Events;
    fn switch_self(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::Switch {
                continue;
            }
            let Some(&(target, _)) = ends.targets.first() else {
                continue;
            };
            for &(source, source_ref) in ends.sources.iter().filter(|(s, _)| *s == target) {
                out.error(
                    SWITCH_SELF.id,
                    source_ref.physical.name.span,
                    format!(
                        "switch event \"{}\" hands the CPU from subject \"{}\" to itself",
                        event.name.as_str(),
                        policy.subject(source).name.as_str()
                    ),
                )
                .help("use mode self to signal the subject itself");
            }
        }
    }
}

rule! {
    /// An `ipi` event goes to a subject on another CPU: on the same CPU there
    /// is nobody to interrupt.
    IPI_SAME_CPU = "events-ipi-same-cpu" in Events;
    fn ipi_same_cpu(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::Ipi {
                continue;
            }
            let Some(&(target, _)) = ends.targets.first() else {
                continue;
            };
            let target_cpu = policy.subject(target).cpu.value;
            for &(source, source_ref) in &ends.sources {
                if policy.subject(source).cpu.value == target_cpu {
                    out.error(
                        IPI_SAME_CPU.id,
                        source_ref.physical.name.span,
                        format!(
                            "ipi event \"{}\" goes from subject \"{}\" to subject \"{}\" on the \
                             same CPU {}",
                            event.name.as_str(),
                            policy.subject(source).name.as_str(),
                            policy.subject(target).name.as_str(),
                            target_cpu.0
                        ),
                    )
                    .help("use mode async for a target on the same CPU");
                }
            }
        }
    }
}

rule! {
    /// Warning: an `async` event is not sent by a subject to itself; mode `self` says
    /// that directly.
    ASYNC_SELF = "events-async-self" in Events;
    fn async_self(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            if event.mode.value != EventMode::Async {
                continue;
            }
            let Some(&(target, target_ref)) = ends.targets.first() else {
                continue;
            };
            if ends.sources.iter().any(|(s, _)| *s == target) {
                out.warning(
                    ASYNC_SELF.id,
                    target_ref.physical.name.span,
                    format!(
                        "async event \"{}\" is received by its own source, subject \"{}\"",
                        event.name.as_str(),
                        policy.subject(target).name.as_str()
                    ),
                )
                .help("use mode self");
            }
        }
    }
}

rule! {
    /// Only kernel events carry an action.
    ACTION_NOT_KERNEL = "events-action-not-kernel" in Events;
    fn action_not_kernel(policy, out) {
        for event in policy
            .events
            .iter()
            .filter(|e| e.mode.value != EventMode::Kernel)
        {
            let Some(action) = &event.action else {
                continue;
            };
            out.error(
                ACTION_NOT_KERNEL.id,
                action.span,
                format!(
                    "event \"{}\" has an action but its mode is {}",
                    event.name.as_str(),
                    event.mode.value.as_str()
                ),
            )
            .help("only kernel events carry actions; set mode=\"kernel\" or remove the action");
        }
    }
}

rule! {
    /// Every kernel event says which action the kernel takes.
    KERNEL_NO_ACTION = "events-kernel-no-action" in Events;
    fn kernel_no_action(policy, out) {
        for event in policy
            .events
            .iter()
            .filter(|e| e.mode.value == EventMode::Kernel)
        {
            if event.action.is_none() {
                out.error(
                    KERNEL_NO_ACTION.id,
                    event.name.span,
                    format!("kernel event \"{}\" has no action", event.name.as_str()),
                )
                .help("add action=\"yield|sleep|poweroff|reboot|panic|next_plan|unmask_irq\"");
            }
        }
    }
}

rule! {
    /// A subject raising `unmask_irq` owns an IRQ to unmask.
    UNMASK_IRQ_NO_IRQ = "events-unmask-irq-no-irq" in Events;
    fn unmask_irq_no_irq(policy, out) {
        for (event, ends) in policy.events.iter().zip(event_ends(policy)) {
            let is_unmask = event
                .action
                .as_ref()
                .is_some_and(|a| a.value == KernelAction::UnmaskIrq);
            if event.mode.value != EventMode::Kernel || !is_unmask {
                continue;
            }
            for &(source, source_ref) in &ends.sources {
                let subject = policy.subject(source);
                if !owns_irq(policy, subject) {
                    out.error(
                        UNMASK_IRQ_NO_IRQ.id,
                        source_ref.physical.name.span,
                        format!(
                            "subject \"{}\" raises the unmask_irq event \"{}\" but owns no IRQ",
                            subject.name.as_str(),
                            event.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Warning: a subject lists each event among its sources once.
    SOURCE_TWICE = "events-source-twice" in Events;
    fn source_twice(policy, out) {
        for subject in &policy.subjects {
            let mut first: HashMap<u32, Span> = HashMap::new();
            for source in subject.source_events() {
                let Some(event) = source.physical.get() else {
                    continue;
                };
                if let Some(&span) = first.get(&event.0) {
                    out.warning(
                        SOURCE_TWICE.id,
                        source.physical.name.span,
                        format!(
                            "subject \"{}\" is a source of event \"{}\" more than once",
                            subject.name.as_str(),
                            source.physical.name.as_str()
                        ),
                    )
                    .label(span, "first listed here");
                } else {
                    first.insert(event.0, source.physical.name.span);
                }
            }
        }
    }
}

/// Reports ids above 63.
fn check_id_range(
    out: &mut Diagnostics,
    rule: &'static str,
    what: &str,
    subject: &str,
    ids: impl Iterator<Item = (u8, Span)>,
) {
    for (id, span) in ids.filter(|(id, _)| *id > MAX_EVENT_ID) {
        out.error(
            rule,
            span,
            format!(
                "{what} event id {id} of subject \"{subject}\" is out of range 0..={MAX_EVENT_ID}"
            ),
        );
    }
}

/// Reports ids used twice.
fn check_id_unique(
    out: &mut Diagnostics,
    rule: &'static str,
    what: &str,
    subject: &str,
    ids: impl Iterator<Item = (u8, Span)>,
) {
    let mut first: HashMap<u8, Span> = HashMap::new();
    for (id, span) in ids {
        if let Some(&earlier) = first.get(&id) {
            out.error(
                rule,
                span,
                format!("subject \"{subject}\" uses {what} event id {id} more than once"),
            )
            .label(earlier, "first used here");
        } else {
            first.insert(id, span);
        }
    }
}

/// Explicit source ids of a subject: source events and channel writers.
fn source_ids(subject: &Subject) -> impl Iterator<Item = (u8, Span)> {
    let events = subject.source_events().map(|e| &e.id);
    let writers = subject.channels.iter().filter_map(|c| c.event.as_ref());
    events
        .chain(writers)
        .filter(|id| !id.auto)
        .map(|id| (id.value.0, id.span))
}

/// Explicit target ids of a subject.
fn target_ids(subject: &Subject) -> impl Iterator<Item = (u8, Span)> {
    subject
        .targets
        .iter()
        .map(|t| &t.id)
        .filter(|id| !id.auto)
        .map(|id| (id.value.0, id.span))
}

rule! {
    /// Source event ids (including channel writers' `event`) are 0..=63: the
    /// hypercall number indexes a 64-entry table.
    SOURCE_ID_RANGE = "events-source-id-range" in Events;
    fn source_id_range(policy, out) {
        for subject in &policy.subjects {
            check_id_range(
                out,
                SOURCE_ID_RANGE.id,
                "source",
                subject.name.as_str(),
                source_ids(subject),
            );
        }
    }
}

rule! {
    /// Target event ids are 0..=63: the pending set has 64 entries.
    TARGET_ID_RANGE = "events-target-id-range" in Events;
    fn target_id_range(policy, out) {
        for subject in &policy.subjects {
            check_id_range(
                out,
                TARGET_ID_RANGE.id,
                "target",
                subject.name.as_str(),
                target_ids(subject),
            );
        }
    }
}

rule! {
    /// A subject's source event ids (including channel writers' `event`) are
    /// unique, so each hypercall number means one event.
    SOURCE_ID_DUPLICATE = "events-source-id-duplicate" in Events;
    fn source_id_duplicate(policy, out) {
        for subject in &policy.subjects {
            check_id_unique(
                out,
                SOURCE_ID_DUPLICATE.id,
                "source",
                subject.name.as_str(),
                source_ids(subject),
            );
        }
    }
}

rule! {
    /// A subject's target event ids are unique, so each pending bit means one
    /// event.
    TARGET_ID_DUPLICATE = "events-target-id-duplicate" in Events;
    fn target_id_duplicate(policy, out) {
        for subject in &policy.subjects {
            check_id_unique(
                out,
                TARGET_ID_DUPLICATE.id,
                "target",
                subject.name.as_str(),
                target_ids(subject),
            );
        }
    }
}

rule! {
    /// Injected vectors (events, channel readers, IRQs) are at least 32;
    /// lower vectors are CPU exceptions.
    VECTOR_RANGE = "events-vector-range" in Events;
    fn vector_range(policy, out) {
        for subject in &policy.subjects {
            for (vector, span) in vectors(subject, true) {
                if vector < FIRST_VECTOR {
                    out.error(
                        VECTOR_RANGE.id,
                        span,
                        format!(
                            "vector {vector} of subject \"{}\" is outside the usable range \
                             32..=255",
                            subject.name.as_str()
                        ),
                    )
                    .help("vectors 0..=31 are CPU exceptions");
                }
            }
        }
    }
}

rule! {
    /// Vectors 253 (IOMMU faults) and 254 (inter-processor interrupts) are
    /// reserved by the kernel.
    VECTOR_RESERVED = "events-vector-reserved" in Events;
    fn vector_reserved(policy, out) {
        for subject in &policy.subjects {
            for (vector, span) in vectors(subject, true) {
                if let Some(why) = reserved_vector(vector) {
                    out.error(
                        VECTOR_RESERVED.id,
                        span,
                        format!("vector {vector} is reserved for {why}"),
                    );
                }
            }
        }
    }
}

rule! {
    /// A subject's vectors are unique, so each interrupt it sees has one
    /// meaning.
    VECTOR_DUPLICATE = "events-vector-duplicate" in Events;
    fn vector_duplicate(policy, out) {
        for subject in &policy.subjects {
            let mut first: HashMap<u8, Span> = HashMap::new();
            for (vector, span) in vectors(subject, false) {
                if let Some(&earlier) = first.get(&vector) {
                    out.error(
                        VECTOR_DUPLICATE.id,
                        span,
                        format!(
                            "subject \"{}\" uses vector {vector} more than once",
                            subject.name.as_str()
                        ),
                    )
                    .label(earlier, "first used here");
                } else {
                    first.insert(vector, span);
                }
            }
        }
    }
}
