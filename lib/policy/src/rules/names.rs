//! Names: every kind of thing has unique names, and every reference by name
//! finds what it names.
//!
//! The loader resolves references and keeps unresolved ones (`target:
//! None`) with their name and span; these rules are the one place that
//! reports them, so every "not defined" message has the same shape. A
//! duplicate definition is reported at the later definition with a label at
//! the first, which is what every reference resolves to.

use std::collections::HashMap;

use super::common::{DiagnosticExt, report_duplicates};
use crate::diag::Diagnostics;
use crate::model::{Policy, Spanned};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// The owner prefix of the kernel's own regions (`kernel|text`, ...).
pub(crate) const KERNEL: &str = "kernel";

rule! {
    /// Memory region names are unique, so every map names exactly one region.
    REGION_DUPLICATE = "names-region-duplicate" in Names;
    fn region_duplicate(policy, out) {
        let names = policy.regions.iter().map(|r| &r.name);
        report_duplicates(out, REGION_DUPLICATE.id, names, |n| {
            format!("memory region \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// Event names are unique, so sources and targets agree on which event
    /// they mean.
    EVENT_DUPLICATE = "names-event-duplicate" in Names;
    fn event_duplicate(policy, out) {
        let names = policy.events.iter().map(|e| &e.name);
        report_duplicates(out, EVENT_DUPLICATE.id, names, |n| {
            format!("event \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// Channel names are unique, so writers and readers meet in one channel.
    CHANNEL_DUPLICATE = "names-channel-duplicate" in Names;
    fn channel_duplicate(policy, out) {
        let names = policy.channels.iter().map(|c| &c.name);
        report_duplicates(out, CHANNEL_DUPLICATE.id, names, |n| {
            format!("channel \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// Subject names are unique: they name subjects in the plan, in events and
    /// in every diagnostic and crash record.
    SUBJECT_DUPLICATE = "names-subject-duplicate" in Names;
    fn subject_duplicate(policy, out) {
        let names = policy.subjects.iter().map(|s| &s.name);
        report_duplicates(out, SUBJECT_DUPLICATE.id, names, |n| {
            format!("subject \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// Partition names are unique, so every minor frame runs one partition.
    PARTITION_DUPLICATE = "names-partition-duplicate" in Names;
    fn partition_duplicate(policy, out) {
        let names = policy.scheduling.partitions.iter().map(|p| &p.name);
        report_duplicates(out, PARTITION_DUPLICATE.id, names, |n| {
            format!("partition \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// Device names in the hardware description are unique, so a grant names
    /// one device.
    DEVICE_DUPLICATE = "names-device-duplicate" in Names;
    fn device_duplicate(policy, out) {
        let names = policy.hardware.devices.iter().map(|d| &d.name);
        report_duplicates(out, DEVICE_DUPLICATE.id, names, |n| {
            format!("device \"{n}\" is defined more than once")
        });
    }
}

rule! {
    /// The I/O port ranges, IRQs and memory of one device have distinct names,
    /// so a partial grant names one resource.
    DEVICE_RESOURCE_DUPLICATE = "names-device-resource-duplicate" in Names;
    fn device_resource_duplicate(policy, out) {
        for device in &policy.hardware.devices {
            let names = device
                .io_ports
                .iter()
                .map(|p| &p.name)
                .chain(device.irqs.iter().map(|i| &i.name))
                .chain(device.memory.iter().map(|m| &m.name));
            let device_name = device.name.as_str();
            report_duplicates(out, DEVICE_RESOURCE_DUPLICATE.id, names, |n| {
                format!("device \"{device_name}\" has more than one resource named \"{n}\"")
            });
        }
    }
}

rule! {
    /// A channel does not share its name with a memory region: both become
    /// physical regions of the image and the report names them alike.
    REGION_CHANNEL_CLASH = "names-region-channel-clash" in Names;
    fn region_channel_clash(policy, out) {
        let regions: HashMap<&str, Span> = policy
            .regions
            .iter()
            .rev()
            .map(|r| (r.name.as_str(), r.name.span))
            .collect();
        for channel in &policy.channels {
            if let Some(&region) = regions.get(channel.name.as_str()) {
                let name = channel.name.as_str();
                out.error(
                    REGION_CHANNEL_CLASH.id,
                    channel.name.span,
                    format!("channel \"{name}\" has the same name as memory region \"{name}\""),
                )
                .label(region, "the memory region")
                .help("channels and memory regions share one name space; rename one of them");
            }
        }
    }
}

rule! {
    /// Warning: names of one kind (memory regions and channels, which share a
    /// name space; events; subjects; partitions) do not differ only in case
    /// (`console`, `Console`): names are case-sensitive, so these are two
    /// things, and that is almost always a typo.
    CASE_ONLY = "names-case-only" in Names;
    fn case_only(policy, out) {
        let regions = policy.regions.iter().map(|r| ("memory region", &r.name));
        let channels = policy.channels.iter().map(|c| ("channel", &c.name));
        report_case_only(out, regions.chain(channels));
        report_case_only(out, policy.events.iter().map(|e| ("event", &e.name)));
        report_case_only(out, policy.subjects.iter().map(|s| ("subject", &s.name)));
        let partitions = policy.scheduling.partitions.iter();
        report_case_only(out, partitions.map(|p| ("partition", &p.name)));
    }
}

/// Warns at every name that equals an earlier one of the same name space
/// except in case (exact duplicates are the `*-duplicate` rules' business).
/// One pass with a map keyed by the lowercase name.
fn report_case_only<'a>(
    out: &mut Diagnostics,
    names: impl Iterator<Item = (&'static str, &'a Spanned<String>)>,
) {
    let mut first: HashMap<String, (&'static str, &'a Spanned<String>)> = HashMap::new();
    for (kind, name) in names {
        match first.entry(name.as_str().to_ascii_lowercase()) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((kind, name));
            }
            std::collections::hash_map::Entry::Occupied(seen) => {
                let (first_kind, first_name) = *seen.get();
                if first_name.as_str() == name.as_str() {
                    continue;
                }
                out.warning(
                    CASE_ONLY.id,
                    name.span,
                    format!(
                        "{kind} \"{}\" differs from {first_kind} \"{}\" only in case",
                        name.as_str(),
                        first_name.as_str()
                    ),
                )
                .label(first_name.span, "the other name")
                .help(
                    "names are case-sensitive, so these are two different things; use one \
                     spelling if they are meant to be the same",
                );
            }
        }
    }
}

rule! {
    /// Memory regions and channels do not take the names `<subject>|...` and
    /// `kernel|...`, which the composer gives the regions it creates (stacks,
    /// info pages, page tables, program sections).
    RESERVED_REGION_NAME = "names-reserved-region-name" in Names;
    fn reserved_region_name(policy, out) {
        let subjects: HashMap<&str, ()> = policy
            .subjects
            .iter()
            .map(|s| (s.name.as_str(), ()))
            .collect();
        let names = policy.regions.iter().map(|r| ("memory region", &r.name));
        let names = names.chain(policy.channels.iter().map(|c| ("channel", &c.name)));
        for (kind, name) in names {
            let Some((owner, _)) = name.as_str().split_once('|') else {
                continue;
            };
            let whose = if owner == KERNEL {
                "the kernel's regions".to_owned()
            } else if subjects.contains_key(owner) {
                format!("the regions of subject \"{owner}\"")
            } else {
                continue;
            };
            out.error(
                RESERVED_REGION_NAME.id,
                name.span,
                format!(
                    "{kind} \"{}\" has a name the composer reserves for {whose}",
                    name.as_str()
                ),
            )
            .help("rename it; names of the form `owner|part` belong to the composer");
        }
    }
}

rule! {
    /// The logical names of a subject's resources (maps, devices, events,
    /// channels) are unique: the subject finds them by name in its info page.
    LOGICAL_DUPLICATE = "names-logical-duplicate" in Names;
    fn logical_duplicate(policy, out) {
        for subject in &policy.subjects {
            let names = subject
                .maps
                .iter()
                .map(|m| &m.logical)
                .chain(subject.devices.iter().map(|d| &d.logical))
                .chain(subject.source_events().map(|e| &e.logical))
                .chain(subject.targets.iter().map(|e| &e.logical))
                .chain(subject.channels.iter().map(|c| &c.logical));
            report_logical(out, LOGICAL_DUPLICATE.id, names, |n| {
                format!(
                    "subject \"{}\" uses the logical name \"{n}\" more than once",
                    subject.name.as_str()
                )
            });
        }
    }
}

rule! {
    /// Inside one device grant, the logical names of the granted I/O ports,
    /// IRQs and memory are unique.
    GRANT_LOGICAL_DUPLICATE = "names-device-grant-logical-duplicate" in Names;
    fn grant_logical_duplicate(policy, out) {
        for subject in &policy.subjects {
            for grant in &subject.devices {
                let names = grant
                    .io_ports
                    .iter()
                    .map(|p| &p.logical)
                    .chain(grant.irqs.iter().map(|i| &i.logical))
                    .chain(grant.memory.iter().map(|m| &m.logical));
                report_logical(out, GRANT_LOGICAL_DUPLICATE.id, names, |n| {
                    format!(
                        "device \"{}\" of subject \"{}\" uses the logical name \"{n}\" more \
                         than once",
                        grant.logical.as_str(),
                        subject.name.as_str()
                    )
                });
            }
        }
    }
}

/// Like `report_duplicates`, with the label a reused logical name gets.
fn report_logical<'a>(
    out: &mut Diagnostics,
    rule: &'static str,
    names: impl Iterator<Item = &'a Spanned<String>>,
    message: impl Fn(&str) -> String,
) {
    let mut first: HashMap<&str, Span> = HashMap::new();
    for name in names {
        if let Some(&earlier) = first.get(name.as_str()) {
            out.error(rule, name.span, message(name.as_str()))
                .label(earlier, "first used here")
                .help(
                    "logical names identify resources in the subject info page; make them unique",
                );
        } else {
            first.insert(name.as_str(), name.span);
        }
    }
}

rule! {
    /// Every map names a memory region that is defined.
    UNKNOWN_REGION = "names-unknown-region" in Names;
    fn unknown_region(policy, out) {
        for map in policy.subjects.iter().flat_map(|s| &s.maps) {
            if map.physical.target.is_none() {
                out.error(
                    UNKNOWN_REGION.id,
                    map.physical.name.span,
                    format!(
                        "memory region \"{}\" is not defined",
                        map.physical.name.as_str()
                    ),
                )
                .help(
                    if policy
                        .channels
                        .iter()
                        .any(|c| c.name.value == map.physical.name.value)
                    {
                        "it is a channel: map it with a <reader> or <writer> under <channels>"
                    } else {
                        "define it under the system's <memory> element"
                    },
                );
            }
        }
    }
}

rule! {
    /// Every device grant names a device of the hardware description.
    UNKNOWN_DEVICE = "names-unknown-device" in Names;
    fn unknown_device(policy, out) {
        for grant in policy.subjects.iter().flat_map(|s| &s.devices) {
            if grant.physical.target.is_none() {
                out.error(
                    UNKNOWN_DEVICE.id,
                    grant.physical.name.span,
                    format!(
                        "device \"{}\" is not defined in the hardware description",
                        grant.physical.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Every granted I/O port range is one of the device's ranges.
    UNKNOWN_DEVICE_IOPORT = "names-unknown-device-ioport" in Names;
    fn unknown_device_ioport(policy, out) {
        for grant in policy.subjects.iter().flat_map(|s| &s.devices) {
            let Some(device) = grant.physical.get() else {
                continue;
            };
            let device = policy.device(device);
            for port in grant
                .io_ports
                .iter()
                .filter(|p| p.physical.target.is_none())
            {
                out.error(
                    UNKNOWN_DEVICE_IOPORT.id,
                    port.physical.name.span,
                    format!(
                        "device \"{}\" has no I/O port range named \"{}\"",
                        device.name.as_str(),
                        port.physical.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Every granted IRQ is one of the device's IRQs.
    UNKNOWN_DEVICE_IRQ = "names-unknown-device-irq" in Names;
    fn unknown_device_irq(policy, out) {
        for grant in policy.subjects.iter().flat_map(|s| &s.devices) {
            let Some(device) = grant.physical.get() else {
                continue;
            };
            let device = policy.device(device);
            for irq in grant.irqs.iter().filter(|i| i.physical.target.is_none()) {
                out.error(
                    UNKNOWN_DEVICE_IRQ.id,
                    irq.physical.name.span,
                    format!(
                        "device \"{}\" has no IRQ named \"{}\"",
                        device.name.as_str(),
                        irq.physical.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Every granted device memory is one of the device's memory regions.
    UNKNOWN_DEVICE_MEMORY = "names-unknown-device-memory" in Names;
    fn unknown_device_memory(policy, out) {
        for grant in policy.subjects.iter().flat_map(|s| &s.devices) {
            let Some(device) = grant.physical.get() else {
                continue;
            };
            let device = policy.device(device);
            for memory in grant.memory.iter().filter(|m| m.physical.target.is_none()) {
                out.error(
                    UNKNOWN_DEVICE_MEMORY.id,
                    memory.physical.name.span,
                    format!(
                        "device \"{}\" has no memory named \"{}\"",
                        device.name.as_str(),
                        memory.physical.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Every source and target event of a subject names a defined event.
    UNKNOWN_EVENT = "names-unknown-event" in Names;
    fn unknown_event(policy, out) {
        for subject in &policy.subjects {
            let refs = subject
                .source_events()
                .map(|e| &e.physical)
                .chain(subject.targets.iter().map(|e| &e.physical));
            for reference in refs.filter(|r| r.target.is_none()) {
                out.error(
                    UNKNOWN_EVENT.id,
                    reference.name.span,
                    format!("event \"{}\" is not defined", reference.name.as_str()),
                )
                .help("define it under the system's <events> element");
            }
        }
    }
}

rule! {
    /// Every channel writer and reader names a defined channel.
    UNKNOWN_CHANNEL = "names-unknown-channel" in Names;
    fn unknown_channel(policy, out) {
        for end in policy.subjects.iter().flat_map(|s| &s.channels) {
            if end.physical.target.is_none() {
                out.error(
                    UNKNOWN_CHANNEL.id,
                    end.physical.name.span,
                    format!("channel \"{}\" is not defined", end.physical.name.as_str()),
                )
                .help(
                    if policy
                        .regions
                        .iter()
                        .any(|r| r.name.value == end.physical.name.value)
                    {
                        "it is a memory region: map it with a <map> under <memory>"
                    } else {
                        "define it under the system's <channels> element"
                    },
                );
            }
        }
    }
}

rule! {
    /// Every subject listed in a scheduling group is defined.
    UNKNOWN_SUBJECT = "names-unknown-subject" in Names;
    fn unknown_subject(policy, out) {
        let groups = policy.scheduling.partitions.iter().flat_map(|p| &p.groups);
        for reference in groups.flat_map(|g| &g.subjects) {
            if reference.target.is_none() {
                out.error(
                    UNKNOWN_SUBJECT.id,
                    reference.name.span,
                    format!("subject \"{}\" is not defined", reference.name.as_str()),
                );
            }
        }
    }
}

rule! {
    /// Every minor frame names a defined partition.
    UNKNOWN_PARTITION = "names-unknown-partition" in Names;
    fn unknown_partition(policy, out) {
        let cpus = policy.scheduling.major_frames.iter().flat_map(|m| &m.cpus);
        for minor in cpus.flat_map(|c| &c.minor_frames) {
            if minor.partition.target.is_none() {
                out.error(
                    UNKNOWN_PARTITION.id,
                    minor.partition.name.span,
                    format!(
                        "partition \"{}\" is not defined",
                        minor.partition.name.as_str()
                    ),
                );
            }
        }
    }
}
