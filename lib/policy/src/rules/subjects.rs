//! Subjects: each subject can be built, placed and described to itself.
//!
//! The binary is a plain file name the composer looks up in its binaries
//! directory (never a path that could reach outside it); the CPU exists and
//! matches the subject's partition; the stack fits between the info page
//! and the stack top; and everything the subject may use fits in its info
//! page, by names the page can hold. Every subject is scheduled exactly
//! once, or it would never run (or run twice as often as planned).

use septum_abi::{info, layout};

use super::common::{
    DiagnosticExt, PAGE, STACK_GUARD, core_count, cores_text, first_definitions, hex_size,
    info_page_range, memberships, partition_cpus,
};
use super::names::KERNEL;
use crate::diag::Diagnostics;
use crate::model::{Policy, Subject};
use crate::rule::{Category, Rule};

/// Longest logical name the info page holds (the field is zero padded).
const MAX_LOGICAL_NAME: usize = info::MAX_RESOURCE_NAME - 1;

/// Number of info page records `subject` needs.
fn resource_count(policy: &Policy, subject: &Subject) -> usize {
    let devices: usize = subject
        .devices
        .iter()
        .map(|grant| {
            let device = grant.physical.get().map(|d| policy.device(d));
            match device {
                Some(d) if grant.is_whole_device() => {
                    d.io_ports.len() + d.irqs.len() + d.memory.len()
                }
                _ => grant.io_ports.len() + grant.irqs.len() + grant.memory.len(),
            }
        })
        .sum();
    subject.maps.len()
        + subject.channels.len()
        + subject.source_events().count()
        + subject.targets.len()
        + devices
}

rule! {
    /// A system has at least one subject.
    NONE = "subjects-none" in Subjects;
    fn none(policy, out) {
        if policy.subjects.is_empty() {
            out.error(NONE.id, policy.span, "the system has no subjects");
        }
    }
}

rule! {
    /// No subject is called `kernel`: the composer names the kernel's regions
    /// `kernel|...` and a subject's `<name>|...`, so the two would collide.
    NAME_RESERVED = "subjects-name-reserved" in Subjects;
    fn name_reserved(policy, out) {
        for subject in policy.subjects.iter().filter(|s| s.name.as_str() == KERNEL) {
            out.error(
                NAME_RESERVED.id,
                subject.name.span,
                format!("subject name \"{KERNEL}\" is reserved for the kernel"),
            );
        }
    }
}

rule! {
    /// A subject's binary is a plain file name, so the composer only ever
    /// reads from its binaries directory.
    BINARY_NAME = "subjects-binary-name" in Subjects;
    fn binary_name(policy, out) {
        for subject in &policy.subjects {
            let binary = subject.binary.as_str();
            let bad = binary.is_empty()
                || binary == "."
                || binary == ".."
                || binary.contains(['/', '\\', '\0']);
            if bad {
                out.error(
                    BINARY_NAME.id,
                    subject.binary.span,
                    format!(
                        "binary name \"{binary}\" of subject \"{}\" is not a plain file name",
                        subject.name.as_str()
                    ),
                )
                .help(
                    "name the ELF file only; the composer looks it up in its --binaries directory",
                );
            }
        }
    }
}

rule! {
    /// A subject's CPU exists on the processor.
    CPU_RANGE = "subjects-cpu-range" in Subjects;
    fn cpu_range(policy, out) {
        let Some(cores) = core_count(policy) else {
            return;
        };
        for subject in policy.subjects.iter().filter(|s| s.cpu.value.0 >= cores) {
            out.error(
                CPU_RANGE.id,
                subject.cpu.span,
                format!(
                    "subject \"{}\" runs on CPU {}, but the processor has {}",
                    subject.name.as_str(),
                    subject.cpu.value.0,
                    cores_text(cores)
                ),
            );
        }
    }
}

rule! {
    /// A subject's CPU is the CPU its partition runs on.
    CPU_PARTITION = "subjects-cpu-partition" in Subjects;
    fn cpu_partition(policy, out) {
        let cores = core_count(policy).unwrap_or(u32::MAX);
        let cpus = partition_cpus(policy);
        let members = memberships(policy);
        for (subject, members) in policy.subjects.iter().zip(&members) {
            let Some(member) = members.first() else {
                continue;
            };
            let partition = policy.partition(member.partition);
            // The CPU the partition's frames use, else the one written (a
            // mismatch of the two is reported by scheduling-partition-cpu).
            let partition_cpu = match cpus.get(member.partition.index()).map(Vec::as_slice) {
                Some([(cpu, _)]) => Some(*cpu),
                Some([]) => partition.cpu.as_ref().map(|c| c.value),
                _ => None,
            };
            let Some(partition_cpu) = partition_cpu else {
                continue;
            };
            if partition_cpu.0 >= cores || subject.cpu.value.0 >= cores {
                continue; // out-of-range CPUs have their own rules
            }
            if partition_cpu != subject.cpu.value {
                out.error(
                    CPU_PARTITION.id,
                    subject.cpu.span,
                    format!(
                        "subject \"{}\" is on CPU {} but its partition \"{}\" runs on CPU {}",
                        subject.name.as_str(),
                        subject.cpu.value.0,
                        partition.name.as_str(),
                        partition_cpu.0
                    ),
                )
                .label(member.reference.name.span, "scheduled here");
            }
        }
    }
}

rule! {
    /// A subject's stack is not empty.
    STACK_ZERO = "subjects-stack-zero" in Subjects;
    fn stack_zero(policy, out) {
        for subject in policy.subjects.iter().filter(|s| s.stack_size.value == 0) {
            out.error(
                STACK_ZERO.id,
                subject.stack_size.span,
                format!("stack size of subject \"{}\" is 0", subject.name.as_str()),
            );
        }
    }
}

rule! {
    /// A subject's stack size is a multiple of 4 KiB.
    STACK_UNALIGNED = "subjects-stack-unaligned" in Subjects;
    fn stack_unaligned(policy, out) {
        for subject in policy
            .subjects
            .iter()
            .filter(|s| !s.stack_size.value.is_multiple_of(PAGE))
        {
            out.error(
                STACK_UNALIGNED.id,
                subject.stack_size.span,
                format!(
                    "stack size {} of subject \"{}\" is not a multiple of 4 KiB",
                    hex_size(subject.stack_size.value),
                    subject.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// A subject's stack and its guard page fit between the info page and
    /// the stack top.
    STACK_TOO_LARGE = "subjects-stack-too-large" in Subjects;
    fn stack_too_large(policy, out) {
        let room = layout::SUBJECT_STACK_TOP.0 - info_page_range().end - STACK_GUARD;
        for subject in policy.subjects.iter().filter(|s| s.stack_size.value > room) {
            out.error(
                STACK_TOO_LARGE.id,
                subject.stack_size.span,
                format!(
                    "stack size {} of subject \"{}\" exceeds the {} between its info page and \
                     the stack top",
                    hex_size(subject.stack_size.value),
                    subject.name.as_str(),
                    hex_size(room)
                ),
            );
        }
    }
}

rule! {
    /// A subject's resources fit in its info page (at most
    /// `septum_abi::info::MAX_RESOURCES` records).
    TOO_MANY_RESOURCES = "subjects-too-many-resources" in Subjects;
    fn too_many_resources(policy, out) {
        for subject in &policy.subjects {
            let count = resource_count(policy, subject);
            if count > info::MAX_RESOURCES {
                out.error(
                    TOO_MANY_RESOURCES.id,
                    subject.name.span,
                    format!(
                        "subject \"{}\" has {count} resources, but its info page holds at most {}",
                        subject.name.as_str(),
                        info::MAX_RESOURCES
                    ),
                )
                .help("split the subject, or group memory into fewer, larger regions");
            }
        }
    }
}

rule! {
    /// Logical names fit the info page's 31-byte name field.
    LOGICAL_TOO_LONG = "subjects-logical-too-long" in Subjects;
    fn logical_too_long(policy, out) {
        for subject in &policy.subjects {
            let names = subject
                .maps
                .iter()
                .map(|m| &m.logical)
                .chain(subject.devices.iter().map(|d| &d.logical))
                .chain(
                    subject
                        .devices
                        .iter()
                        .flat_map(|d| d.io_ports.iter().map(|p| &p.logical)),
                )
                .chain(
                    subject
                        .devices
                        .iter()
                        .flat_map(|d| d.irqs.iter().map(|i| &i.logical)),
                )
                .chain(
                    subject
                        .devices
                        .iter()
                        .flat_map(|d| d.memory.iter().map(|m| &m.logical)),
                )
                .chain(subject.source_events().map(|e| &e.logical))
                .chain(subject.targets.iter().map(|e| &e.logical))
                .chain(subject.channels.iter().map(|c| &c.logical));
            for name in names.filter(|n| n.value.len() > MAX_LOGICAL_NAME) {
                out.error(
                    LOGICAL_TOO_LONG.id,
                    name.span,
                    format!(
                        "logical name \"{}\" is {} bytes long; the info page holds at most \
                         {MAX_LOGICAL_NAME}",
                        name.as_str(),
                        name.value.len()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The info page names a wholly granted device's second and later I/O
    /// port ranges `<logical>|<range>`; those names fit in 31 bytes too.
    PORT_NAME_TOO_LONG = "subjects-port-name-too-long" in Subjects;
    fn port_name_too_long(policy, out) {
        for subject in &policy.subjects {
            for grant in subject.devices.iter().filter(|g| g.is_whole_device()) {
                let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                for range in device.io_ports.iter().skip(1) {
                    let shown = format!("{}|{}", grant.logical.as_str(), range.name.as_str());
                    if shown.len() > MAX_LOGICAL_NAME {
                        out.error(
                            PORT_NAME_TOO_LONG.id,
                            grant.logical.span,
                            format!(
                                "I/O port range \"{}\" of device \"{}\" appears as \"{shown}\" in \
                                 the info page of subject \"{}\", which is {} bytes long; at \
                                 most {MAX_LOGICAL_NAME} fit",
                                range.name.as_str(),
                                device.name.as_str(),
                                subject.name.as_str(),
                                shown.len()
                            ),
                        )
                        .help("give the device a shorter logical name");
                    }
                }
            }
        }
    }
}

rule! {
    /// Every subject is in a scheduling group, or it never runs.
    NOT_SCHEDULED = "subjects-not-scheduled" in Subjects;
    fn not_scheduled(policy, out) {
        let members = memberships(policy);
        let first = first_definitions(policy.subjects.iter().map(|s| s.name.as_str()));
        for ((subject, members), first) in policy.subjects.iter().zip(&members).zip(first) {
            if first && members.is_empty() {
                out.error(
                    NOT_SCHEDULED.id,
                    subject.name.span,
                    format!(
                        "subject \"{}\" is not in any scheduling group",
                        subject.name.as_str()
                    ),
                )
                .help("list it in a <group> of a partition");
            }
        }
    }
}

rule! {
    /// A subject is in exactly one scheduling group.
    SCHEDULED_TWICE = "subjects-scheduled-twice" in Subjects;
    fn scheduled_twice(policy, out) {
        for (subject, members) in policy.subjects.iter().zip(memberships(policy)) {
            let Some(first) = members.first() else {
                continue;
            };
            for member in members.iter().skip(1) {
                out.error(
                    SCHEDULED_TWICE.id,
                    member.reference.name.span,
                    format!(
                        "subject \"{}\" is in more than one scheduling group",
                        subject.name.as_str()
                    ),
                )
                .label(first.reference.name.span, "first scheduled here");
            }
        }
    }
}
