//! Channels: one writer, readers elsewhere, and a region the SHMStream
//! format can live in.
//!
//! A channel is a one-way ring: exactly one writer and at least one reader,
//! none of them the writer itself. Its region holds the 64-byte header and
//! at least one element; elements are 8-byte multiples so the u64 fields
//! readers copy stay aligned. `hasEvent` decides whether the writer raises
//! an event (an id in its source space) and readers get a vector; without it
//! neither may be given. Like every event, a channel's event has exactly one
//! target, so a channel with an event has exactly one reader. The event mode
//! constrains that reader the same way it constrains an event's target. A
//! reader's written `vector` is injected by the channel's event (the
//! composer's `interrupts`), which only a native subject can take.

use std::collections::HashMap;

use septum_abi::channel::{HEADER_SIZE, elements_for};

use super::common::{
    ChannelEnds, DiagnosticExt, PAGE, channel_ends, first_definitions, group_of, hex_size,
    memberships,
};
use crate::diag::Diagnostics;
use crate::model::{EventMode, Policy, Profile};
use crate::rule::{Category, Rule};
use crate::source::Span;

rule! {
    /// Every channel has a writer.
    NO_WRITER = "channels-no-writer" in Channels;
    fn no_writer(policy, out) {
        let ends = channel_ends(policy);
        let first = first_definitions(policy.channels.iter().map(|c| c.name.as_str()));
        for ((channel, ends), first) in policy.channels.iter().zip(&ends).zip(first) {
            if first && ends.writers.is_empty() {
                out.error(
                    NO_WRITER.id,
                    channel.name.span,
                    format!("channel \"{}\" has no writer", channel.name.as_str()),
                )
                .help("add a <writer> for it to one subject's <channels>");
            }
        }
    }
}

rule! {
    /// A channel has exactly one writer: the ring has no locks, and a second
    /// writer would corrupt it.
    MULTIPLE_WRITERS = "channels-multiple-writers" in Channels;
    fn multiple_writers(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            let Some((_, first)) = ends.writers.first() else {
                continue;
            };
            for (_, writer) in ends.writers.iter().skip(1) {
                out.error(
                    MULTIPLE_WRITERS.id,
                    writer.physical.name.span,
                    format!(
                        "channel \"{}\" has more than one writer",
                        channel.name.as_str()
                    ),
                )
                .label(first.physical.name.span, "first writer")
                .help("use one channel per writer");
            }
        }
    }
}

rule! {
    /// Every channel has at least one reader.
    NO_READER = "channels-no-reader" in Channels;
    fn no_reader(policy, out) {
        let ends = channel_ends(policy);
        let first = first_definitions(policy.channels.iter().map(|c| c.name.as_str()));
        for ((channel, ends), first) in policy.channels.iter().zip(&ends).zip(first) {
            if first && ends.readers.is_empty() {
                out.error(
                    NO_READER.id,
                    channel.name.span,
                    format!("channel \"{}\" has no reader", channel.name.as_str()),
                )
                .help("add a <reader> for it to a subject's <channels>, or remove the channel");
            }
        }
    }
}

rule! {
    /// The writer of a channel is not also one of its readers.
    WRITER_READS = "channels-writer-reads" in Channels;
    fn writer_reads(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            for &(writer, writer_end) in &ends.writers {
                for &(_, reader_end) in ends.readers.iter().filter(|(r, _)| *r == writer) {
                    out.error(
                        WRITER_READS.id,
                        reader_end.physical.name.span,
                        format!(
                            "subject \"{}\" both writes and reads channel \"{}\"",
                            policy.subject(writer).name.as_str(),
                            channel.name.as_str()
                        ),
                    )
                    .label(writer_end.physical.name.span, "writes it here");
                }
            }
        }
    }
}

rule! {
    /// A subject reads a channel at most once; the second mapping would
    /// only alias the first.
    READ_TWICE = "channels-read-twice" in Channels;
    fn read_twice(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            let mut first: HashMap<u32, Span> = HashMap::new();
            for &(reader, end) in &ends.readers {
                if let Some(&span) = first.get(&reader.0) {
                    out.error(
                        READ_TWICE.id,
                        end.physical.name.span,
                        format!(
                            "subject \"{}\" reads channel \"{}\" more than once",
                            policy.subject(reader).name.as_str(),
                            channel.name.as_str()
                        ),
                    )
                    .label(span, "first read here");
                } else {
                    first.insert(reader.0, end.physical.name.span);
                }
            }
        }
    }
}

rule! {
    /// A channel is not empty.
    SIZE_ZERO = "channels-size-zero" in Channels;
    fn size_zero(policy, out) {
        for channel in policy.channels.iter().filter(|c| c.size.value == 0) {
            out.error(
                SIZE_ZERO.id,
                channel.size.span,
                format!("channel \"{}\" has size 0", channel.name.as_str()),
            );
        }
    }
}

rule! {
    /// A channel's size is a multiple of 4 KiB: writer and readers map it with
    /// different rights, so it has pages of its own.
    SIZE_UNALIGNED = "channels-size-unaligned" in Channels;
    fn size_unaligned(policy, out) {
        for channel in policy
            .channels
            .iter()
            .filter(|c| !c.size.value.is_multiple_of(PAGE))
        {
            out.error(
                SIZE_UNALIGNED.id,
                channel.size.span,
                format!(
                    "size {} of channel \"{}\" is not a multiple of 4 KiB",
                    hex_size(channel.size.value),
                    channel.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// A channel holds the 64-byte SHMStream header and at least one element.
    SIZE_TOO_SMALL = "channels-size-too-small" in Channels;
    fn size_too_small(policy, out) {
        for channel in &policy.channels {
            let (size, element) = (channel.size.value, channel.element_size.value);
            if size == 0 || element == 0 {
                continue;
            }
            if elements_for(size, element).is_none_or(|n| n == 0) {
                out.error(
                    SIZE_TOO_SMALL.id,
                    channel.size.span,
                    format!(
                        "channel \"{}\" of size {} cannot hold the {HEADER_SIZE}-byte header and \
                         one element of {element} bytes",
                        channel.name.as_str(),
                        hex_size(size)
                    ),
                );
            }
        }
    }
}

rule! {
    /// A channel's elements are not empty.
    ELEMENT_SIZE_ZERO = "channels-element-size-zero" in Channels;
    fn element_size_zero(policy, out) {
        for channel in policy.channels.iter().filter(|c| c.element_size.value == 0) {
            out.error(
                ELEMENT_SIZE_ZERO.id,
                channel.element_size.span,
                format!("element size of channel \"{}\" is 0", channel.name.as_str()),
            );
        }
    }
}

rule! {
    /// Element sizes are multiples of 8, so every element starts 8-byte
    /// aligned.
    ELEMENT_SIZE_UNALIGNED = "channels-element-size-unaligned" in Channels;
    fn element_size_unaligned(policy, out) {
        for channel in policy
            .channels
            .iter()
            .filter(|c| !c.element_size.value.is_multiple_of(8))
        {
            out.error(
                ELEMENT_SIZE_UNALIGNED.id,
                channel.element_size.span,
                format!(
                    "element size {} of channel \"{}\" is not a multiple of 8",
                    channel.element_size.value,
                    channel.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// A channel's protocol id is non-zero: readers check it to reject a
    /// writer speaking another format.
    PROTOCOL_ZERO = "channels-protocol-zero" in Channels;
    fn protocol_zero(policy, out) {
        for channel in policy.channels.iter().filter(|c| c.protocol.value == 0) {
            out.error(
                PROTOCOL_ZERO.id,
                channel.protocol.span,
                format!("protocol of channel \"{}\" is 0", channel.name.as_str()),
            )
            .help("readers recognise a channel by a non-zero protocol id");
        }
    }
}

rule! {
    /// A writer gives an `event` id only when its channel has an event.
    EVENT_WITHOUT_HAS_EVENT = "channels-event-without-has-event" in Channels;
    fn event_without_has_event(policy, out) {
        for subject in &policy.subjects {
            for end in &subject.channels {
                let Some(channel) = end.physical.get().map(|c| policy.channel(c)) else {
                    continue;
                };
                let Some(event) = end.event.as_ref().filter(|e| !e.auto) else {
                    continue;
                };
                if channel.has_event.is_none() {
                    out.error(
                        EVENT_WITHOUT_HAS_EVENT.id,
                        event.span,
                        format!(
                            "writer \"{}\" of subject \"{}\" gives event {}, but channel \"{}\" \
                             has no hasEvent",
                            end.logical.as_str(),
                            subject.name.as_str(),
                            event.value.0,
                            channel.name.as_str()
                        ),
                    )
                    .help(
                        "add hasEvent=\"async\" (or ipi, switch) to the channel, or remove event",
                    );
                }
            }
        }
    }
}

rule! {
    /// A reader gives a `vector` only when its channel has an event.
    VECTOR_WITHOUT_HAS_EVENT = "channels-vector-without-has-event" in Channels;
    fn vector_without_has_event(policy, out) {
        for subject in &policy.subjects {
            for end in &subject.channels {
                let Some(channel) = end.physical.get().map(|c| policy.channel(c)) else {
                    continue;
                };
                let Some(vector) = end.vector.as_ref().filter(|v| !v.auto) else {
                    continue;
                };
                if channel.has_event.is_none() {
                    out.error(
                        VECTOR_WITHOUT_HAS_EVENT.id,
                        vector.span,
                        format!(
                            "reader \"{}\" of subject \"{}\" gives vector {}, but channel \"{}\" \
                             has no hasEvent",
                            end.logical.as_str(),
                            subject.name.as_str(),
                            vector.value.0,
                            channel.name.as_str()
                        ),
                    )
                    .help(
                        "add hasEvent=\"async\" (or ipi, switch) to the channel, or remove vector",
                    );
                }
            }
        }
    }
}

rule! {
    /// A `vm` subject's reader gives no `vector`: the kernel injects a
    /// written reader vector like an `<inject_interrupt>`, and a VM takes
    /// interrupts only from the platform the kernel emulates for it.
    VECTOR_VM = "channels-vector-vm" in Channels;
    fn vector_vm(policy, out) {
        for subject in policy
            .subjects
            .iter()
            .filter(|s| s.profile.value == Profile::Vm)
        {
            for end in &subject.channels {
                let Some(vector) = end.vector.as_ref().filter(|v| !v.auto) else {
                    continue;
                };
                out.error(
                    VECTOR_VM.id,
                    vector.span,
                    format!(
                        "reader \"{}\" of vm subject \"{}\" gives vector {}, but a vm subject takes \
                         interrupts only from its emulated platform",
                        end.logical.as_str(),
                        subject.name.as_str(),
                        vector.value.0
                    ),
                )
                .help("remove vector (the VM polls the channel), or read it in a native subject");
            }
        }
    }
}

rule! {
    /// With `hasEvent="ipi"`, every reader runs on another CPU than the
    /// writer.
    IPI_SAME_CPU = "channels-ipi-same-cpu" in Channels;
    fn ipi_same_cpu(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            if channel.has_event.as_ref().map(|e| e.value) != Some(EventMode::Ipi) {
                continue;
            }
            let Some(&(writer, _)) = ends.writers.first() else {
                continue;
            };
            let writer = policy.subject(writer);
            for &(reader, end) in &ends.readers {
                let reader = policy.subject(reader);
                if reader.cpu.value == writer.cpu.value {
                    out.error(
                        IPI_SAME_CPU.id,
                        end.physical.name.span,
                        format!(
                            "channel \"{}\" signals its readers with an IPI, but reader \"{}\" \
                             runs on CPU {} like writer \"{}\"",
                            channel.name.as_str(),
                            reader.name.as_str(),
                            reader.cpu.value.0,
                            writer.name.as_str()
                        ),
                    )
                    .help("use hasEvent=\"async\" for readers on the writer's CPU");
                }
            }
        }
    }
}

/// How many different subjects read a channel (a subject reading it twice
/// is channels-read-twice, not a second reader).
fn reader_subjects(ends: &ChannelEnds<'_>) -> usize {
    let mut subjects: Vec<_> = ends.readers.iter().map(|&(s, _)| s).collect();
    subjects.sort_unstable();
    subjects.dedup();
    subjects.len()
}

rule! {
    /// With `hasEvent="async"` or `"ipi"`, the channel has one reader: its
    /// event has exactly one target, so further readers would never hear of
    /// new data.
    EVENT_MULTIPLE_READERS = "channels-event-multiple-readers" in Channels;
    fn event_multiple_readers(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            let Some(mode) = channel.has_event.as_ref() else {
                continue;
            };
            // `switch` has its own rule, channels-switch-readers.
            let readers = reader_subjects(&ends);
            if mode.value != EventMode::Switch && readers > 1 {
                let diag = out.error(
                    EVENT_MULTIPLE_READERS.id,
                    mode.span,
                    format!(
                        "channel \"{}\" raises an event but has {} readers; an event has \
                         exactly one target",
                        channel.name.as_str(),
                        readers
                    ),
                );
                for &(_, end) in &ends.readers {
                    diag.label(end.physical.name.span, "read here");
                }
                diag.help("use one channel per reader, or drop hasEvent");
            }
        }
    }
}

rule! {
    /// With `hasEvent="switch"`, the channel has one reader: the CPU can be
    /// handed to one subject only.
    SWITCH_READERS = "channels-switch-readers" in Channels;
    fn switch_readers(policy, out) {
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            let Some(mode) = channel.has_event.as_ref() else {
                continue;
            };
            let readers = reader_subjects(&ends);
            if mode.value == EventMode::Switch && readers > 1 {
                out.error(
                    SWITCH_READERS.id,
                    mode.span,
                    format!(
                        "channel \"{}\" hands the CPU to its reader but has {} readers",
                        channel.name.as_str(),
                        readers
                    ),
                )
                .help("use one channel per reader, or drop hasEvent");
            }
        }
    }
}

rule! {
    /// With `hasEvent="switch"`, the reader is in the writer's scheduling
    /// group.
    SWITCH_GROUP = "channels-switch-group" in Channels;
    fn switch_group(policy, out) {
        let members = memberships(policy);
        for (channel, ends) in policy.channels.iter().zip(channel_ends(policy)) {
            if channel.has_event.as_ref().map(|e| e.value) != Some(EventMode::Switch) {
                continue;
            }
            let Some(&(writer, _)) = ends.writers.first() else {
                continue;
            };
            let Some(writer_group) = group_of(&members, writer) else {
                continue;
            };
            for &(reader, end) in &ends.readers {
                let Some(reader_group) = group_of(&members, reader) else {
                    continue;
                };
                if reader != writer && reader_group != writer_group {
                    out.error(
                        SWITCH_GROUP.id,
                        end.physical.name.span,
                        format!(
                            "channel \"{}\" hands the CPU to reader \"{}\", which is not in the \
                             scheduling group of writer \"{}\"",
                            channel.name.as_str(),
                            policy.subject(reader).name.as_str(),
                            policy.subject(writer).name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Warning: a channel holds more than one element; with one, every write
    /// overwrites the element a reader may be copying.
    SINGLE_ELEMENT = "channels-single-element" in Channels;
    fn single_element(policy, out) {
        for channel in &policy.channels {
            let element = channel.element_size.value;
            if !channel.size.value.is_multiple_of(PAGE) || element == 0 {
                continue;
            }
            if elements_for(channel.size.value, element) == Some(1) {
                out.warning(
                    SINGLE_ELEMENT.id,
                    channel.size.span,
                    format!(
                        "channel \"{}\" holds only one element of {element} bytes",
                        channel.name.as_str()
                    ),
                )
                .help("make the channel larger or the elements smaller");
            }
        }
    }
}
