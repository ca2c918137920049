//! What several rules need: address ranges, duplicate detection, and views
//! derived from the model (who raises or receives each event, who writes or
//! reads each channel, which scheduling group holds each subject, what a
//! subject's address space contains).
//!
//! The views are recomputed by each rule that needs them. That keeps every
//! rule a plain function of the policy with no shared state, and each view is
//! one linear pass, so validation stays linear in the size of the policy.

use std::collections::{HashMap, HashSet};

use septum_abi::layout;

use crate::diag::{Diagnostic, Diagnostics, Label};
use crate::model::{
    ChannelEnd, ChannelRole, CpuId, IoPortRange, PartitionIdx, Policy, Ref, SourceEvent, Spanned,
    Subject, SubjectIdx, TargetEvent,
};
use crate::source::Span;

/// Pages are 4 KiB: the granularity of EPT, page tables and allocation.
pub(crate) const PAGE: u64 = 0x1000;
/// Physical addresses are at most 48 bits wide (the composer's EPT and the
/// 4-level page tables cover no more).
pub(crate) const PHYS_LIMIT: u64 = 1 << 48;
/// Subject mappings live in the lower canonical half of a 4-level address
/// space.
pub(crate) const VIRT_LIMIT: u64 = 1 << 47;
/// End of the window reserved for a native subject's program image (its ELF
/// segments lie in [`layout::SUBJECT_IMAGE_BASE`]..[`layout::SUBJECT_IMAGE_END`]);
/// explicit mappings must stay out of it because the image size is only
/// known when composing.
pub(crate) const SUBJECT_IMAGE_END: u64 = layout::SUBJECT_IMAGE_END.0;
/// The unmapped page below a subject's stack that catches overflows.
pub(crate) const STACK_GUARD: u64 = PAGE;

// The fixed windows of a subject's address space, as the rules assume them:
// info page, then the stack (with its guard page) ending at the stack top,
// then the image window, then the auto-assigned mappings, all page aligned
// and in the lower canonical half. A change to `septum_abi::layout` that
// breaks this order must revisit the virtual-address rules.
const _: () = {
    assert!(layout::SUBJECT_INFO.0.is_multiple_of(PAGE) && layout::SUBJECT_INFO.0 >= PAGE);
    assert!(layout::SUBJECT_INFO.0 + PAGE + STACK_GUARD <= layout::SUBJECT_STACK_TOP.0);
    assert!(layout::SUBJECT_STACK_TOP.0.is_multiple_of(PAGE));
    assert!(layout::SUBJECT_STACK_TOP.0 <= layout::SUBJECT_IMAGE_BASE.0);
    assert!(layout::SUBJECT_IMAGE_BASE.0.is_multiple_of(PAGE));
    assert!(layout::SUBJECT_IMAGE_BASE.0 < SUBJECT_IMAGE_END);
    assert!(SUBJECT_IMAGE_END.is_multiple_of(PAGE));
    assert!(SUBJECT_IMAGE_END <= layout::SUBJECT_AUTO_MAP_BASE.0);
    assert!(layout::SUBJECT_AUTO_MAP_BASE.0 < VIRT_LIMIT);
};

/// Builder-style additions to a diagnostic already pushed into the sink.
pub(crate) trait DiagnosticExt {
    /// Adds a secondary location.
    fn label(&mut self, span: Span, message: impl Into<String>) -> &mut Self;
    /// Sets the hint on how to fix it.
    fn help(&mut self, help: impl Into<String>) -> &mut Self;
}

impl DiagnosticExt for Diagnostic {
    fn label(&mut self, span: Span, message: impl Into<String>) -> &mut Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

/// `value` in hex, the way sizes and addresses are shown in messages.
pub(crate) fn hex(value: u64) -> String {
    format!("{value:#x}")
}

/// A size in hex with readable units beside it: `0xfcf0000 (252.9 MiB)`;
/// sizes under 1 KiB are hex alone.
pub(crate) fn hex_size(value: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = 0;
    let mut scaled = value as f64 / 1024.0;
    if scaled < 1.0 {
        return hex(value);
    }
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{value:#x} ({scaled:.1} {})", UNITS[unit])
}

/// A half-open range of addresses `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// `start..start + size`, or `None` if the end does not fit in 64 bits.
    pub fn new(start: u64, size: u64) -> Option<Self> {
        start.checked_add(size).map(|end| Self { start, end })
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn contains(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start, self.end)
    }
}

/// Ranges sorted by start with the running furthest end, to ask in
/// O(log n) whether any of them overlaps or contains a given range (the
/// same answers as [`Range::overlaps`] and [`Range::contains`] over every
/// one of them). Rules that check each of one kind of range against all of
/// another (regions against device memory or memory blocks) use it, so a
/// hostile description with many of both stays linear.
pub(crate) struct RangeIndex {
    /// (range, caller's id), by start.
    sorted: Vec<(Range, usize)>,
    /// For each position, the position at or before it that reaches
    /// furthest.
    reach: Vec<usize>,
}

impl RangeIndex {
    /// The index of `ranges` (range, caller's id).
    pub fn new(ranges: impl IntoIterator<Item = (Range, usize)>) -> Self {
        let mut sorted: Vec<(Range, usize)> = ranges.into_iter().collect();
        sorted.sort_unstable_by_key(|&(r, id)| (r.start, id));
        let mut reach = Vec::with_capacity(sorted.len());
        let mut best: Option<(u64, usize)> = None;
        for (at, (range, _)) in sorted.iter().enumerate() {
            if best.is_none_or(|(end, _)| range.end > end) {
                best = Some((range.end, at));
            }
            reach.push(best.map_or(at, |(_, b)| b));
        }
        Self { sorted, reach }
    }

    /// The range reaching furthest among those starting before `end`.
    fn furthest_before(&self, starts_before: impl Fn(&Range) -> bool) -> Option<(Range, usize)> {
        let count = self.sorted.partition_point(|(r, _)| starts_before(r));
        let at = *self.reach.get(count.checked_sub(1)?)?;
        self.sorted.get(at).copied()
    }

    /// The id of a range that overlaps `query` (the one reaching furthest),
    /// if any does.
    pub fn overlapping(&self, query: &Range) -> Option<usize> {
        self.furthest_before(|r| r.start < query.end)
            .filter(|(r, _)| r.overlaps(query))
            .map(|(_, id)| id)
    }

    /// The id of a range that contains `query`, if any does.
    pub fn containing(&self, query: &Range) -> Option<usize> {
        self.furthest_before(|r| r.start <= query.start)
            .filter(|(r, _)| r.contains(query))
            .map(|(_, id)| id)
    }
}

/// Overlapping ranges, at most two pairs per range: `items` are (range,
/// owner, index in document order). Each range that overlaps a range of
/// another owner starting no later is paired with the one of those that
/// reaches furthest; a range still in no pair after that, but overlapping a
/// later-starting range of another owner, is paired with the first of
/// those. Returns (later, earlier) indexes, sorted and without duplicates.
///
/// So every range that overlaps one of another owner is in some pair (each
/// mistake is reported in one run), yet `n` ranges that all overlap give
/// about `n` pairs, not `n (n - 1) / 2`: hostile input cannot make an
/// overlap rule quadratic. O(n log n): a sweep by start that keeps the
/// range reaching furthest and the one reaching furthest among the other
/// owners, then one pass for the next range of another owner.
pub(crate) fn overlap_pairs(mut items: Vec<(Range, usize, usize)>) -> Vec<(usize, usize)> {
    items.sort_unstable_by_key(|&(r, owner, index)| (r.start, owner, index));
    // (end, owner, index) of the range reaching furthest, and of the one
    // reaching furthest among owners other than `best`'s.
    let mut best: Option<(u64, usize, usize)> = None;
    let mut second: Option<(u64, usize, usize)> = None;
    let mut pairs = Vec::new();
    let mut paired = vec![false; items.len()];
    for (at, &(range, owner, index)) in items.iter().enumerate() {
        let partner = [best, second]
            .into_iter()
            .flatten()
            .find(|&(end, o, _)| o != owner && end > range.start);
        if let Some((_, _, other_at)) = partner {
            for k in [at, other_at] {
                if let Some(p) = paired.get_mut(k) {
                    *p = true;
                }
            }
            if let Some(&(_, _, other)) = items.get(other_at) {
                pairs.push((index.max(other), index.min(other)));
            }
        }
        let candidate = (range.end, owner, at);
        match best {
            None => best = Some(candidate),
            Some(b) if b.1 == owner => {
                if range.end > b.0 {
                    best = Some(candidate);
                }
            }
            Some(b) => {
                if range.end > b.0 {
                    second = Some(b);
                    best = Some(candidate);
                } else if second.is_none_or(|s| range.end > s.0) {
                    second = Some(candidate);
                }
            }
        }
    }
    // The first later range of another owner, from the back: the next
    // range, or the next range's own answer if it has this range's owner.
    let mut next_other: Vec<Option<usize>> = vec![None; items.len()];
    for at in (0..items.len()).rev() {
        let next = at.saturating_add(1);
        let (Some(&(range, owner, index)), Some(&done)) = (items.get(at), paired.get(at)) else {
            continue;
        };
        let answer = match items.get(next) {
            Some(&(_, next_owner, _)) if next_owner != owner => Some(next),
            Some(_) => next_other.get(next).copied().flatten(),
            None => None,
        };
        if let Some(slot) = next_other.get_mut(at) {
            *slot = answer;
        }
        if !done
            && let Some(&(other_range, _, other)) = answer.and_then(|n| items.get(n))
            && other_range.start < range.end
        {
            pairs.push((index.max(other), index.min(other)));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// `size` rounded up to whole pages (saturating: sizes that large are
/// reported by other rules).
pub(crate) fn page_round(size: u64) -> u64 {
    size.div_ceil(PAGE).saturating_mul(PAGE)
}

/// For each name in order, whether it is the first definition of that name.
/// Rules that look at definitions skip the later duplicates: those are
/// reported once, by the names rules, and every reference resolves to the
/// first one anyway.
pub(crate) fn first_definitions<'a>(names: impl Iterator<Item = &'a str>) -> Vec<bool> {
    let mut seen = std::collections::HashSet::new();
    names.map(|name| seen.insert(name)).collect()
}

/// Reports every name defined again after its first definition.
pub(crate) fn report_duplicates<'a>(
    out: &mut Diagnostics,
    rule: &'static str,
    names: impl Iterator<Item = &'a Spanned<String>>,
    message: impl Fn(&str) -> String,
) {
    let mut first: HashMap<&str, Span> = HashMap::new();
    for name in names {
        match first.get(name.as_str()) {
            Some(&earlier) => {
                out.error(rule, name.span, message(name.as_str()))
                    .label(earlier, "first defined here");
            }
            None => {
                first.insert(name.as_str(), name.span);
            }
        }
    }
}

/// Every subject with its index.
pub(crate) fn subjects(policy: &Policy) -> impl Iterator<Item = (SubjectIdx, &Subject)> {
    policy
        .subjects
        .iter()
        .enumerate()
        .map(|(i, s)| (SubjectIdx(i as u32), s))
}

/// Who raises and who receives one event.
#[derive(Default)]
pub(crate) struct EventEnds<'p> {
    /// Source references, in document order.
    pub sources: Vec<(SubjectIdx, &'p SourceEvent)>,
    /// Target references, in document order.
    pub targets: Vec<(SubjectIdx, &'p TargetEvent)>,
}

/// [`EventEnds`] of every event, indexed like `policy.events`.
pub(crate) fn event_ends(policy: &Policy) -> Vec<EventEnds<'_>> {
    let mut ends: Vec<EventEnds<'_>> = policy.events.iter().map(|_| EventEnds::default()).collect();
    for (idx, subject) in subjects(policy) {
        for source in subject.source_events() {
            if let Some(end) = source.physical.get().and_then(|e| ends.get_mut(e.index())) {
                end.sources.push((idx, source));
            }
        }
        for target in &subject.targets {
            if let Some(end) = target.physical.get().and_then(|e| ends.get_mut(e.index())) {
                end.targets.push((idx, target));
            }
        }
    }
    ends
}

/// Who writes and who reads one channel.
#[derive(Default)]
pub(crate) struct ChannelEnds<'p> {
    /// Writer ends, in document order.
    pub writers: Vec<(SubjectIdx, &'p ChannelEnd)>,
    /// Reader ends, in document order.
    pub readers: Vec<(SubjectIdx, &'p ChannelEnd)>,
}

/// [`ChannelEnds`] of every channel, indexed like `policy.channels`.
pub(crate) fn channel_ends(policy: &Policy) -> Vec<ChannelEnds<'_>> {
    let mut ends: Vec<ChannelEnds<'_>> = policy
        .channels
        .iter()
        .map(|_| ChannelEnds::default())
        .collect();
    for (idx, subject) in subjects(policy) {
        for end in &subject.channels {
            if let Some(slot) = end.physical.get().and_then(|c| ends.get_mut(c.index())) {
                match end.role {
                    ChannelRole::Writer => slot.writers.push((idx, end)),
                    ChannelRole::Reader => slot.readers.push((idx, end)),
                }
            }
        }
    }
    ends
}

/// One place a subject is listed in a scheduling group.
#[derive(Clone, Copy)]
pub(crate) struct Membership<'p> {
    /// The partition.
    pub partition: PartitionIdx,
    /// Index of the group inside the partition.
    pub group: usize,
    /// The `<subject name>` reference.
    pub reference: &'p Ref<SubjectIdx>,
}

/// Every group membership of every subject, indexed like `policy.subjects`.
pub(crate) fn memberships(policy: &Policy) -> Vec<Vec<Membership<'_>>> {
    let mut out: Vec<Vec<Membership<'_>>> = policy.subjects.iter().map(|_| Vec::new()).collect();
    for (p, partition) in policy.scheduling.partitions.iter().enumerate() {
        for (g, group) in partition.groups.iter().enumerate() {
            for reference in &group.subjects {
                if let Some(slot) = reference.get().and_then(|s| out.get_mut(s.index())) {
                    slot.push(Membership {
                        partition: PartitionIdx(p as u32),
                        group: g,
                        reference,
                    });
                }
            }
        }
    }
    out
}

/// The (partition, group) a subject is scheduled in, if exactly known (its
/// first membership; extra memberships are reported by their own rule).
pub(crate) fn group_of(members: &[Vec<Membership<'_>>], s: SubjectIdx) -> Option<(u32, usize)> {
    members
        .get(s.index())
        .and_then(|m| m.first())
        .map(|m| (m.partition.0, m.group))
}

/// The CPUs each partition's minor frames run on, in plan order, each with
/// the span of its first `<minorFrame>` there. Indexed like the partitions.
pub(crate) fn partition_cpus(policy: &Policy) -> Vec<Vec<(CpuId, Span)>> {
    let mut out: Vec<Vec<(CpuId, Span)>> = policy
        .scheduling
        .partitions
        .iter()
        .map(|_| Vec::new())
        .collect();
    // (partition, CPU) pairs already listed: one partition may be on very
    // many CPUs, so no scan of its list.
    let mut seen: HashSet<(usize, u32)> = HashSet::new();
    for major in &policy.scheduling.major_frames {
        for cpu in &major.cpus {
            for minor in &cpu.minor_frames {
                if let Some(p) = minor.partition.get()
                    && let Some(slot) = out.get_mut(p.index())
                    && seen.insert((p.index(), cpu.id.value.0))
                {
                    slot.push((cpu.id.value, minor.partition.name.span));
                }
            }
        }
    }
    out
}

/// The CPUs the plan uses (any major frame), ascending.
pub(crate) fn plan_cpus(policy: &Policy) -> Vec<u32> {
    let mut cpus: Vec<u32> = policy
        .scheduling
        .major_frames
        .iter()
        .flat_map(|m| m.cpus.iter().map(|c| c.id.value.0))
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    cpus
}

/// `n` cores, in words (`1 core`, `2 cores`).
pub(crate) fn cores_text(n: u32) -> String {
    if n == 1 {
        "1 core".to_owned()
    } else {
        format!("{n} cores")
    }
}

/// Number of cores, when the hardware gives a usable (non-zero) count.
pub(crate) fn core_count(policy: &Policy) -> Option<u32> {
    let cores = policy.hardware.processor.cpu_cores.value;
    (cores > 0).then_some(cores)
}

/// What kind of thing occupies part of a subject's address space.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MappingKind {
    /// A `<map>` of a memory region.
    Region,
    /// A channel reader or writer.
    Channel,
    /// Device memory granted with `<device><memory>`.
    DeviceMemory,
}

/// One mapping in a subject's address space.
pub(crate) struct Mapping<'p> {
    /// Logical name (how messages name it).
    pub logical: &'p Spanned<String>,
    /// First virtual address.
    pub address: u64,
    /// Size in bytes, rounded up to whole pages.
    pub size: u64,
    /// Where the address was written (or the element, when assigned).
    pub span: Span,
    /// Whether the address was assigned by the loader.
    pub auto: bool,
    /// What it maps.
    pub kind: MappingKind,
}

impl Mapping<'_> {
    /// The virtual range, if its end fits in 64 bits.
    pub fn range(&self) -> Option<Range> {
        Range::new(self.address, self.size)
    }
}

/// Every resolved, non-empty mapping of `subject`, in document order:
/// memory maps, then channels, then device memory.
pub(crate) fn mappings<'p>(policy: &'p Policy, subject: &'p Subject) -> Vec<Mapping<'p>> {
    let mut out = Vec::new();
    for map in &subject.maps {
        if let Some(region) = map
            .physical
            .get()
            .and_then(|r| policy.regions.get(r.index()))
        {
            out.push(Mapping {
                logical: &map.logical,
                address: map.virtual_address.value.0,
                size: page_round(region.size.value),
                span: map.virtual_address.span,
                auto: map.virtual_address.auto,
                kind: MappingKind::Region,
            });
        }
    }
    for end in &subject.channels {
        if let Some(channel) = end
            .physical
            .get()
            .and_then(|c| policy.channels.get(c.index()))
        {
            out.push(Mapping {
                logical: &end.logical,
                address: end.virtual_address.value.0,
                size: page_round(channel.size.value),
                span: end.virtual_address.span,
                auto: end.virtual_address.auto,
                kind: MappingKind::Channel,
            });
        }
    }
    for grant in &subject.devices {
        let Some(device) = grant
            .physical
            .get()
            .and_then(|d| policy.hardware.devices.get(d.index()))
        else {
            continue;
        };
        for memory in &grant.memory {
            if let Some(mem) = memory
                .physical
                .get()
                .and_then(|m| device.memory.get(m.index()))
            {
                out.push(Mapping {
                    logical: &memory.logical,
                    address: memory.virtual_address.value.0,
                    size: page_round(mem.size.value),
                    span: memory.virtual_address.span,
                    auto: memory.virtual_address.auto,
                    kind: MappingKind::DeviceMemory,
                });
            }
        }
    }
    // Empty and oversized regions are reported by the size rules.
    out.retain(|m| m.size > 0 && m.size <= PHYS_LIMIT);
    out
}

/// The info page: the first of the fixed windows of every native subject's
/// address space that explicit mappings must avoid (the others are the
/// stack with its guard page, [`stack_range`], and the program image
/// window, [`image_range`]).
pub(crate) fn info_page_range() -> Range {
    Range {
        start: layout::SUBJECT_INFO.0,
        end: layout::SUBJECT_INFO.0 + PAGE,
    }
}

/// The stack of `subject` with the guard page below it, if its size is sane
/// (other rules report zero, unaligned or oversized stacks).
pub(crate) fn stack_range(subject: &Subject) -> Option<Range> {
    let top = layout::SUBJECT_STACK_TOP.0;
    let size = page_round(subject.stack_size.value).checked_add(STACK_GUARD)?;
    top.checked_sub(size).map(|start| Range { start, end: top })
}

/// The program image window.
pub(crate) fn image_range() -> Range {
    Range {
        start: layout::SUBJECT_IMAGE_BASE.0,
        end: SUBJECT_IMAGE_END,
    }
}

/// Whether `subject` owns at least one IRQ line (a whole device with IRQs,
/// or an explicit `<irq>` grant).
pub(crate) fn owns_irq(policy: &Policy, subject: &Subject) -> bool {
    subject.devices.iter().any(|grant| {
        let device = grant
            .physical
            .get()
            .and_then(|d| policy.hardware.devices.get(d.index()));
        match device {
            Some(device) if grant.is_whole_device() => !device.irqs.is_empty(),
            _ => !grant.irqs.is_empty(),
        }
    })
}

/// The IRQ numbers `subject` owns through its device grants, each with the
/// device index and the span of the grant's `physical` attribute.
pub(crate) fn owned_irqs(policy: &Policy, subject: &Subject) -> Vec<(u32, usize, Span)> {
    let mut out = Vec::new();
    for grant in &subject.devices {
        let Some(d) = grant.physical.get() else {
            continue;
        };
        let Some(device) = policy.hardware.devices.get(d.index()) else {
            continue;
        };
        if grant.is_whole_device() {
            for irq in &device.irqs {
                out.push((irq.number.value, d.index(), grant.physical.name.span));
            }
        } else {
            for irq in &grant.irqs {
                if let Some(line) = irq.physical.get().and_then(|i| device.irqs.get(i.index())) {
                    out.push((line.number.value, d.index(), irq.physical.name.span));
                }
            }
        }
    }
    out
}

/// The I/O port ranges `subject` owns through its device grants, each
/// with the span of the grant that gives it and the device's name.
pub(crate) fn owned_ports<'p>(
    policy: &'p Policy,
    subject: &'p Subject,
) -> Vec<(&'p IoPortRange, Span, &'p str)> {
    let mut out = Vec::new();
    for grant in &subject.devices {
        let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
            continue;
        };
        let name = device.name.as_str();
        if grant.is_whole_device() {
            out.extend(device.io_ports.iter().map(|r| (r, grant.span, name)));
        } else {
            out.extend(grant.io_ports.iter().filter_map(|g| {
                let range = device.io_ports.get(g.physical.get()?.index())?;
                Some((range, g.span, name))
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_core_is_singular() {
        assert_eq!(super::cores_text(1), "1 core");
        assert_eq!(super::cores_text(2), "2 cores");
    }

    use super::*;

    #[test]
    fn ranges_overlap_only_when_they_share_a_byte() {
        let a = Range {
            start: 0x1000,
            end: 0x2000,
        };
        assert!(a.overlaps(&Range {
            start: 0x1fff,
            end: 0x3000
        }));
        assert!(!a.overlaps(&Range {
            start: 0x2000,
            end: 0x3000
        }));
        assert!(!a.overlaps(&Range {
            start: 0,
            end: 0x1000
        }));
        assert!(a.contains(&Range {
            start: 0x1000,
            end: 0x2000
        }));
        assert!(!a.contains(&Range {
            start: 0x1000,
            end: 0x2001
        }));
        assert_eq!(Range::new(u64::MAX, 1), None);
        assert_eq!(a.to_string(), "0x1000..0x2000");
    }

    #[test]
    fn sizes_have_readable_units() {
        assert_eq!(hex_size(0x3ff), "0x3ff");
        assert_eq!(hex_size(0x1000), "0x1000 (4.0 KiB)");
        assert_eq!(hex_size(0xfcf_0000), "0xfcf0000 (252.9 MiB)");
        assert_eq!(hex_size(u64::MAX), "0xffffffffffffffff (16.0 EiB)");
    }

    #[test]
    fn page_rounding_saturates() {
        assert_eq!(page_round(0), 0);
        assert_eq!(page_round(1), PAGE);
        assert_eq!(page_round(PAGE), PAGE);
        assert_eq!(page_round(u64::MAX), u64::MAX);
    }

    #[test]
    fn first_definitions_mark_later_duplicates() {
        let names = ["a", "b", "a", "c", "b"];
        assert_eq!(
            first_definitions(names.into_iter()),
            [true, true, false, true, false]
        );
    }

    proptest::proptest! {
        /// Against all pairs: every pair overlaps and has two owners, each
        /// range that overlaps another owner's is in a pair, and there are
        /// at most two pairs per range.
        #[test]
        fn overlap_pairs_cover_every_overlapping_range(
            raw in proptest::collection::vec((0u64..64, 1u64..16, 0usize..4), 0..24)
        ) {
            let items: Vec<(Range, usize, usize)> = raw
                .iter()
                .enumerate()
                .map(|(i, &(start, len, owner))| (Range { start, end: start + len }, owner, i))
                .collect();
            let pairs = overlap_pairs(items.clone());
            proptest::prop_assert!(pairs.len() <= 2 * items.len());
            for &(later, earlier) in &pairs {
                let (a, b) = (items[later], items[earlier]);
                proptest::prop_assert!(later > earlier);
                proptest::prop_assert!(a.0.overlaps(&b.0) && a.1 != b.1);
            }
            for (i, a) in items.iter().enumerate() {
                let overlaps = items
                    .iter()
                    .any(|b| b.1 != a.1 && a.0.overlaps(&b.0));
                let paired = pairs.iter().any(|&(l, e)| l == i || e == i);
                proptest::prop_assert_eq!(overlaps, paired, "range {}", i);
            }
        }
    }

    proptest::proptest! {
        /// The index answers as a scan of every range would.
        #[test]
        fn range_index_answers_as_a_scan(
            raw in proptest::collection::vec((0u64..64, 0u64..16), 0..24),
            query in (0u64..64, 0u64..16),
        ) {
            let ranges: Vec<Range> = raw
                .iter()
                .map(|&(start, len)| Range { start, end: start + len })
                .collect();
            let index = RangeIndex::new(ranges.iter().copied().zip(0..));
            let q = Range { start: query.0, end: query.0 + query.1 };
            let overlaps = index.overlapping(&q);
            proptest::prop_assert_eq!(overlaps.is_some(), ranges.iter().any(|r| r.overlaps(&q)));
            proptest::prop_assert!(overlaps.is_none_or(|i| ranges[i].overlaps(&q)));
            let contains = index.containing(&q);
            proptest::prop_assert_eq!(contains.is_some(), ranges.iter().any(|r| r.contains(&q)));
            proptest::prop_assert!(contains.is_none_or(|i| ranges[i].contains(&q)));
        }
    }
}
