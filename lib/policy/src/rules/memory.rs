//! Memory: region sizes and placement in physical memory, and what each
//! subject's address space holds.
//!
//! Physical placement is checked only for regions with a fixed
//! `physicalAddress`; the composer places the others inside allocatable RAM
//! and this module only checks that they can fit in total. Every region
//! overlap that could break isolation is an error: with the kernel, with
//! device memory, with another fixed region. In a subject's address space,
//! mappings must not overlap each other or the fixed windows every native
//! subject has (info page, stack, program image), and no memory may be both
//! writable and executable, neither through one mapping nor through two
//! mappings of one region. The one exception is explicit: a subject with
//! `allowWritableExecutable="true"` may map memory writable and executable
//! for itself (code it generates), still never memory another subject can
//! write.

use std::collections::HashMap;

use septum_abi::layout;

use super::common::{
    DiagnosticExt, MappingKind, PAGE, PHYS_LIMIT, Range, RangeIndex, VIRT_LIMIT, first_definitions,
    hex, hex_size, image_range, info_page_range, mappings, overlap_pairs, page_round, stack_range,
};
use crate::diag::Diagnostics;
use crate::model::{Map, Policy, Region};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// The physical range of a fixed region, when its placement is sane (the
/// size and address rules report the others).
fn fixed_range(region: &Region) -> Option<Range> {
    let start = region.physical_address.as_ref()?.value.0;
    let size = region.size.value;
    if size == 0 || size > PHYS_LIMIT {
        return None;
    }
    Range::new(start, size).filter(|r| r.end <= PHYS_LIMIT)
}

/// The kernel's fixed windows, with the words messages use for them.
fn kernel_windows() -> [(&'static str, Range); 3] {
    let window = |w: layout::Window| Range {
        start: w.start.0,
        end: w.end(),
    };
    [
        ("code", window(layout::KERNEL_TEXT)),
        ("read-only data", window(layout::KERNEL_RODATA)),
        ("data", window(layout::KERNEL_DATA)),
    ]
}

/// Memory below the kernel: firmware, BIOS data, the boot loader.
fn low_memory() -> Range {
    Range {
        start: 0,
        end: layout::KERNEL_TEXT.start.0,
    }
}

/// Everything below the first allocatable address (low memory and kernel).
fn reserved_low() -> Range {
    Range {
        start: 0,
        end: layout::FIRST_ALLOCATABLE.0,
    }
}

/// Every device memory range of the hardware, with device and memory names.
fn device_memory(policy: &Policy) -> Vec<(Range, &str, &str, Span)> {
    let mut out = Vec::new();
    for device in &policy.hardware.devices {
        for memory in &device.memory {
            let range = Range::new(memory.physical_address.value.0, memory.size.value);
            if let Some(range) = range.filter(|r| r.start < r.end) {
                out.push((
                    range,
                    device.name.as_str(),
                    memory.name.as_str(),
                    memory.name.span,
                ));
            }
        }
    }
    out
}

rule! {
    /// Memory regions are not empty.
    SIZE_ZERO = "memory-size-zero" in Memory;
    fn size_zero(policy, out) {
        for region in policy.regions.iter().filter(|r| r.size.value == 0) {
            out.error(
                SIZE_ZERO.id,
                region.size.span,
                format!("memory region \"{}\" has size 0", region.name.as_str()),
            )
            .help(format!("give it a size of at least one page ({})", hex_size(PAGE)));
        }
    }
}

rule! {
    /// Memory region sizes are multiples of 4 KiB, the granularity of EPT and
    /// page tables.
    SIZE_UNALIGNED = "memory-size-unaligned" in Memory;
    fn size_unaligned(policy, out) {
        for region in &policy.regions {
            let size = region.size.value;
            if !size.is_multiple_of(PAGE) && size <= PHYS_LIMIT {
                out.error(
                    SIZE_UNALIGNED.id,
                    region.size.span,
                    format!(
                        "size {} of memory region \"{}\" is not a multiple of 4 KiB",
                        hex_size(size),
                        region.name.as_str()
                    ),
                )
                .help(format!("round it up to {}", hex_size(page_round(size))));
            }
        }
    }
}

rule! {
    /// A memory region is no larger than the 48-bit physical address space.
    SIZE_TOO_LARGE = "memory-size-too-large" in Memory;
    fn size_too_large(policy, out) {
        for region in policy.regions.iter().filter(|r| r.size.value > PHYS_LIMIT) {
            out.error(
                SIZE_TOO_LARGE.id,
                region.size.span,
                format!(
                    "size {} of memory region \"{}\" exceeds the 48-bit physical address space",
                    hex_size(region.size.value),
                    region.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// A fixed physical address is 4 KiB aligned, so the region can be mapped
    /// with pages of its own.
    PHYSICAL_UNALIGNED = "memory-physical-unaligned" in Memory;
    fn physical_unaligned(policy, out) {
        for region in &policy.regions {
            let Some(address) = &region.physical_address else {
                continue;
            };
            if !address.value.is_aligned(PAGE) {
                out.error(
                    PHYSICAL_UNALIGNED.id,
                    address.span,
                    format!(
                        "physical address {} of memory region \"{}\" is not 4 KiB aligned",
                        address.value,
                        region.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The end of a fixed region does not wrap around the 64-bit address
    /// space.
    PHYSICAL_END_OVERFLOW = "memory-physical-end-overflow" in Memory;
    fn physical_end_overflow(policy, out) {
        for region in &policy.regions {
            let Some(address) = &region.physical_address else {
                continue;
            };
            if region.size.value <= PHYS_LIMIT
                && address.value.0.checked_add(region.size.value).is_none()
            {
                out.error(
                    PHYSICAL_END_OVERFLOW.id,
                    address.span,
                    format!(
                        "memory region \"{}\" at {} with size {} wraps around the end of the \
                         address space",
                        region.name.as_str(),
                        address.value,
                        hex_size(region.size.value)
                    ),
                );
            }
        }
    }
}

rule! {
    /// A fixed region ends inside the 48-bit physical address space.
    PHYSICAL_TOO_HIGH = "memory-physical-too-high" in Memory;
    fn physical_too_high(policy, out) {
        for region in &policy.regions {
            let Some(address) = &region.physical_address else {
                continue;
            };
            if region.size.value > PHYS_LIMIT {
                continue;
            }
            if let Some(end) = address.value.0.checked_add(region.size.value)
                && end > PHYS_LIMIT
            {
                out.error(
                    PHYSICAL_TOO_HIGH.id,
                    address.span,
                    format!(
                        "memory region \"{}\" ends at {}, beyond the 48-bit physical address space",
                        region.name.as_str(),
                        hex(end)
                    ),
                );
            }
        }
    }
}

rule! {
    /// Fixed regions do not overlap each other: two regions sharing memory
    /// would connect subjects the policy keeps apart.
    PHYSICAL_OVERLAP = "memory-physical-overlap" in Memory;
    fn physical_overlap(policy, out) {
        let first = first_definitions(policy.regions.iter().map(|r| r.name.as_str()));
        let placed: Vec<(Range, usize, usize)> = policy
            .regions
            .iter()
            .enumerate()
            .zip(first)
            .filter(|(_, first)| *first)
            .filter_map(|((i, r), _)| fixed_range(r).map(|range| (range, i, i)))
            .collect();
        for (later, earlier) in overlap_pairs(placed) {
            let (Some(region), Some(other)) =
                (policy.regions.get(later), policy.regions.get(earlier))
            else {
                continue;
            };
            let (Some(at), Some(there)) = (&region.physical_address, &other.physical_address)
            else {
                continue;
            };
            out.error(
                PHYSICAL_OVERLAP.id,
                at.span,
                format!(
                    "memory region \"{}\" overlaps memory region \"{}\"",
                    region.name.as_str(),
                    other.name.as_str()
                ),
            )
            .label(there.span, "the other region is placed here")
            .help("move one of them, or leave out physicalAddress to let the composer place it");
        }
    }
}

rule! {
    /// A fixed region does not overlap memory of a hardware device, which a
    /// subject could otherwise reach without being granted the device.
    PHYSICAL_DEVICE_OVERLAP = "memory-physical-device-overlap" in Memory;
    fn physical_device_overlap(policy, out) {
        let devices = device_memory(policy);
        let index = RangeIndex::new(devices.iter().map(|d| d.0).zip(0..));
        for region in &policy.regions {
            let (Some(range), Some(address)) = (fixed_range(region), &region.physical_address)
            else {
                continue;
            };
            // One device memory per region (the one reaching furthest): a
            // region over many device ranges is one mistake.
            if let Some((_, device, memory, span)) =
                index.overlapping(&range).and_then(|i| devices.get(i))
            {
                out.error(
                    PHYSICAL_DEVICE_OVERLAP.id,
                    address.span,
                    format!(
                        "memory region \"{}\" overlaps memory \"{memory}\" of device \
                         \"{device}\"",
                        region.name.as_str()
                    ),
                )
                .label(*span, "the device memory");
            }
        }
    }
}

rule! {
    /// A fixed region does not overlap the kernel's code, read-only data or
    /// data windows.
    PHYSICAL_KERNEL_OVERLAP = "memory-physical-kernel-overlap" in Memory;
    fn physical_kernel_overlap(policy, out) {
        for region in &policy.regions {
            let (Some(range), Some(address)) = (fixed_range(region), &region.physical_address)
            else {
                continue;
            };
            for (what, window) in kernel_windows() {
                if range.overlaps(&window) {
                    out.error(
                        PHYSICAL_KERNEL_OVERLAP.id,
                        address.span,
                        format!(
                            "memory region \"{}\" overlaps the kernel's {what} window {window}",
                            region.name.as_str()
                        ),
                    )
                    .help(format!(
                        "fixed regions must lie at or above {}",
                        layout::FIRST_ALLOCATABLE
                    ));
                }
            }
        }
    }
}

rule! {
    /// A fixed region does not overlap the first MiB, which belongs to the
    /// firmware and the boot loader.
    PHYSICAL_LOW_OVERLAP = "memory-physical-low-overlap" in Memory;
    fn physical_low_overlap(policy, out) {
        let low = low_memory();
        for region in &policy.regions {
            let (Some(range), Some(address)) = (fixed_range(region), &region.physical_address)
            else {
                continue;
            };
            if range.overlaps(&low) {
                out.error(
                    PHYSICAL_LOW_OVERLAP.id,
                    address.span,
                    format!(
                        "memory region \"{}\" overlaps the first MiB ({low}), which belongs to \
                         the firmware and the boot loader",
                        region.name.as_str()
                    ),
                )
                .help(format!(
                    "fixed regions must lie at or above {}",
                    layout::FIRST_ALLOCATABLE
                ));
            }
        }
    }
}

/// Most allocatable memory blocks `memory-physical-outside-ram` lists in
/// its help; the rest are counted.
const MAX_BLOCKS_LISTED: usize = 8;

rule! {
    /// A fixed region lies inside one allocatable memory block of the
    /// hardware, so it is real RAM nobody else uses.
    PHYSICAL_OUTSIDE_RAM = "memory-physical-outside-ram" in Memory;
    fn physical_outside_ram(policy, out) {
        let blocks: Vec<Range> = policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.allocatable.value)
            .filter_map(|b| Range::new(b.physical_address.value.0, b.size.value))
            .collect();
        let devices = RangeIndex::new(device_memory(policy).into_iter().map(|d| d.0).zip(0..));
        let blocks = RangeIndex::new(blocks.into_iter().zip(0..));
        // The allocatable blocks for the help, once, at most
        // `MAX_BLOCKS_LISTED` of them: each diagnostic stays short however
        // many blocks the hardware has.
        let mut list: Vec<String> = policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.allocatable.value)
            .filter_map(|b| {
                Range::new(b.physical_address.value.0, b.size.value)
                    .map(|r| format!("{} {r}", b.name.as_str()))
            })
            .collect();
        if list.len() > MAX_BLOCKS_LISTED {
            let more = list.len() - MAX_BLOCKS_LISTED;
            list.truncate(MAX_BLOCKS_LISTED);
            list.push(format!("and {more} more"));
        }
        for region in &policy.regions {
            let (Some(range), Some(address)) = (fixed_range(region), &region.physical_address)
            else {
                continue;
            };
            // Reported by the kernel, low-memory and device overlap rules.
            if range.overlaps(&reserved_low()) || devices.overlapping(&range).is_some() {
                continue;
            }
            if blocks.containing(&range).is_none() {
                let d = out.error(
                    PHYSICAL_OUTSIDE_RAM.id,
                    address.span,
                    format!(
                        "memory region \"{}\" ({range}) is not inside an allocatable memory block",
                        region.name.as_str()
                    ),
                );
                if !list.is_empty() {
                    d.help(format!("allocatable memory: {}", list.join(", ")));
                }
            }
        }
    }
}

rule! {
    /// All memory regions, channels, stacks and info pages together fit in
    /// the allocatable RAM above the kernel.
    DEMAND_EXCEEDS_RAM = "memory-demand-exceeds-ram" in Memory;
    fn demand_exceeds_ram(policy, out) {
        let floor = layout::FIRST_ALLOCATABLE.0;
        let mut available: u64 = 0;
        let mut any_block = false;
        for block in policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.allocatable.value)
        {
            any_block = true;
            let start = block.physical_address.value.0.max(floor);
            let end = block
                .physical_address
                .value
                .0
                .saturating_add(block.size.value);
            let end = end.min(PHYS_LIMIT);
            available = available.saturating_add(end.saturating_sub(start));
        }
        if !any_block {
            return; // hardware-no-allocatable-memory
        }
        let mut demand: u64 = 0;
        let mut largest: Option<(u64, Span)> = None;
        let sizes = policy
            .regions
            .iter()
            .map(|r| &r.size)
            .chain(policy.channels.iter().map(|c| &c.size));
        for size in sizes.filter(|s| s.value <= PHYS_LIMIT) {
            demand = demand.saturating_add(page_round(size.value));
            if largest.is_none_or(|(l, _)| size.value > l) {
                largest = Some((size.value, size.span));
            }
        }
        for subject in &policy.subjects {
            let stack = page_round(subject.stack_size.value.min(PHYS_LIMIT));
            demand = demand.saturating_add(stack).saturating_add(PAGE);
        }
        if demand > available {
            let span = largest.map_or(policy.span, |(_, span)| span);
            out.error(
                DEMAND_EXCEEDS_RAM.id,
                span,
                format!(
                    "the system needs at least {} of memory, but the allocatable RAM above {} \
                     holds only {}",
                    hex_size(demand),
                    hex(floor),
                    hex_size(available)
                ),
            )
            .help("shrink the largest regions or describe more RAM in the hardware");
        }
    }
}

rule! {
    /// Warning: every memory region is mapped by some subject (an unmapped region only
    /// takes memory).
    REGION_UNUSED = "memory-region-unused" in Memory;
    fn region_unused(policy, out) {
        let mut used = vec![false; policy.regions.len()];
        for map in policy.subjects.iter().flat_map(|s| &s.maps) {
            if let Some(slot) = map.physical.get().and_then(|r| used.get_mut(r.index())) {
                *slot = true;
            }
        }
        let first = first_definitions(policy.regions.iter().map(|r| r.name.as_str()));
        for ((region, used), first) in policy.regions.iter().zip(used).zip(first) {
            if !used && first {
                out.warning(
                    REGION_UNUSED.id,
                    region.name.span,
                    format!(
                        "memory region \"{}\" is not mapped by any subject",
                        region.name.as_str()
                    ),
                )
                .help("map it in a subject or remove it");
            }
        }
    }
}

rule! {
    /// A subject maps each region at most once: two mappings of one region
    /// could together grant rights neither grants alone.
    REGION_MAPPED_TWICE = "memory-region-mapped-twice" in Memory;
    fn region_mapped_twice(policy, out) {
        for subject in &policy.subjects {
            let mut first: HashMap<u32, Span> = HashMap::new();
            for map in &subject.maps {
                let Some(region) = map.physical.get() else {
                    continue;
                };
                if let Some(&earlier) = first.get(&region.0) {
                    out.error(
                        REGION_MAPPED_TWICE.id,
                        map.physical.name.span,
                        format!(
                            "memory region \"{}\" is mapped twice in subject \"{}\"",
                            map.physical.name.as_str(),
                            subject.name.as_str()
                        ),
                    )
                    .label(earlier, "first mapped here");
                } else {
                    first.insert(region.0, map.physical.name.span);
                }
            }
        }
    }
}

/// Whether `map` is both writable and executable.
fn is_writable_executable(map: &Map) -> bool {
    map.writable.value && map.executable.value
}

rule! {
    /// No mapping is both writable and executable unless its subject opts in
    /// with `allowWritableExecutable="true"`: code that can be rewritten
    /// defeats every other check on what a subject runs.
    MAP_WRITABLE_EXECUTABLE = "memory-map-writable-executable" in Memory;
    fn map_writable_executable(policy, out) {
        for subject in policy
            .subjects
            .iter()
            .filter(|s| !s.allow_writable_executable.value)
        {
            for map in subject.maps.iter().filter(|m| is_writable_executable(m)) {
                out.error(
                    MAP_WRITABLE_EXECUTABLE.id,
                    map.executable.span,
                    format!(
                        "mapping \"{}\" of subject \"{}\" is writable and executable",
                        map.logical.as_str(),
                        subject.name.as_str()
                    ),
                )
                .help(
                    "map it either writable or executable, or allow it with \
                     allowWritableExecutable=\"true\" on the subject",
                );
            }
        }
    }
}

rule! {
    /// Warning: a subject that opts in with `allowWritableExecutable="true"`
    /// has a writable and executable mapping; otherwise the opt-in is a
    /// privilege nothing needs.
    WRITABLE_EXECUTABLE_UNUSED = "memory-writable-executable-unused" in Memory;
    fn writable_executable_unused(policy, out) {
        for subject in &policy.subjects {
            let allow = &subject.allow_writable_executable;
            if allow.value && !subject.maps.iter().any(is_writable_executable) {
                out.warning(
                    WRITABLE_EXECUTABLE_UNUSED.id,
                    allow.span,
                    format!(
                        "subject \"{}\" allows writable and executable mappings but has none",
                        subject.name.as_str()
                    ),
                )
                .help("remove allowWritableExecutable, or set it to \"false\"");
            }
        }
    }
}

rule! {
    /// A region one subject can execute is not writable by another subject,
    /// which could otherwise plant code in it.
    EXECUTABLE_WRITABLE_ELSEWHERE = "memory-executable-writable-elsewhere" in Memory;
    fn executable_writable_elsewhere(policy, out) {
        // The first two subjects mapping each region writable, with the
        // span of their `writable`: enough to find one other than any
        // executing subject.
        let mut writers: HashMap<u32, Vec<(usize, Span)>> = HashMap::new();
        for (s, subject) in policy.subjects.iter().enumerate() {
            for map in subject.maps.iter().filter(|m| m.writable.value) {
                let Some(region) = map.physical.get() else {
                    continue;
                };
                let list = writers.entry(region.0).or_default();
                if list.len() < 2 && list.iter().all(|(w, _)| *w != s) {
                    list.push((s, map.writable.span));
                }
            }
        }
        for (s, subject) in policy.subjects.iter().enumerate() {
            // A writable and executable mapping without the opt-in is
            // reported by memory-map-writable-executable; with it, the
            // subject may rewrite its own code but still no other subject.
            let allow = subject.allow_writable_executable.value;
            for map in subject
                .maps
                .iter()
                .filter(|m| m.executable.value && (allow || !m.writable.value))
            {
                let Some(region) = map.physical.get() else {
                    continue;
                };
                // A writable mapping in the executing subject itself is
                // memory-region-mapped-twice.
                let other = writers
                    .get(&region.0)
                    .and_then(|l| l.iter().find(|(w, _)| *w != s));
                let Some(&(w, span)) = other else {
                    continue;
                };
                let Some(writer_subject) = policy.subjects.get(w) else {
                    continue;
                };
                out.error(
                    EXECUTABLE_WRITABLE_ELSEWHERE.id,
                    map.executable.span,
                    format!(
                        "memory region \"{}\" is executable in subject \"{}\" and writable in \
                         subject \"{}\"",
                        map.physical.name.as_str(),
                        subject.name.as_str(),
                        writer_subject.name.as_str()
                    ),
                )
                .label(span, "writable here");
            }
        }
    }
}

rule! {
    /// Warning: a region is writable in at most one subject; shared writable memory
    /// has no direction, so channels are the better tool.
    SHARED_WRITABLE = "memory-shared-writable" in Memory;
    fn shared_writable(policy, out) {
        let mut writer: HashMap<u32, (usize, Span)> = HashMap::new();
        for (s, subject) in policy.subjects.iter().enumerate() {
            for map in subject.maps.iter().filter(|m| m.writable.value) {
                let Some(region) = map.physical.get() else {
                    continue;
                };
                match writer.get(&region.0) {
                    Some(&(w, span)) if w != s => {
                        let Some(first) = policy.subjects.get(w) else {
                            continue;
                        };
                        out.warning(
                            SHARED_WRITABLE.id,
                            map.writable.span,
                            format!(
                                "memory region \"{}\" is writable in subject \"{}\" and in \
                                 subject \"{}\"",
                                map.physical.name.as_str(),
                                first.name.as_str(),
                                subject.name.as_str()
                            ),
                        )
                        .label(span, "writable here too")
                        .help("use a channel for one-way data, or map it read-only in one of them");
                    }
                    Some(_) => {}
                    None => {
                        writer.insert(region.0, (s, map.writable.span));
                    }
                }
            }
        }
    }
}

rule! {
    /// Device memory is never mapped executable: MMIO is not code.
    DEVICE_EXECUTABLE = "memory-device-executable" in Memory;
    fn device_executable(policy, out) {
        for subject in &policy.subjects {
            let grants = subject.devices.iter().flat_map(|g| &g.memory);
            for memory in grants.filter(|m| m.executable.value) {
                out.error(
                    DEVICE_EXECUTABLE.id,
                    memory.executable.span,
                    format!(
                        "device memory \"{}\" of subject \"{}\" is mapped executable",
                        memory.logical.as_str(),
                        subject.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// A region's initial file content starts inside the region.
    FILE_OFFSET_BEYOND = "memory-file-offset-beyond" in Memory;
    fn file_offset_beyond(policy, out) {
        for region in &policy.regions {
            let Some(file) = &region.file else { continue };
            if file.offset.value >= region.size.value && region.size.value > 0 {
                out.error(
                    FILE_OFFSET_BEYOND.id,
                    file.offset.span,
                    format!(
                        "file offset {} is beyond the end of memory region \"{}\" of size {}",
                        hex(file.offset.value),
                        region.name.as_str(),
                        hex_size(region.size.value)
                    ),
                );
            }
        }
    }
}

rule! {
    /// Explicit virtual addresses of maps, channels and device memory are
    /// 4 KiB aligned.
    VIRTUAL_UNALIGNED = "memory-virtual-unaligned" in Memory;
    fn virtual_unaligned(policy, out) {
        for subject in &policy.subjects {
            for mapping in mappings(policy, subject) {
                if !mapping.auto && !mapping.address.is_multiple_of(PAGE) {
                    out.error(
                        VIRTUAL_UNALIGNED.id,
                        mapping.span,
                        format!(
                            "virtual address {} of \"{}\" in subject \"{}\" is not 4 KiB aligned",
                            hex(mapping.address),
                            mapping.logical.as_str(),
                            subject.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Every mapping ends inside the lower canonical half of the address
    /// space (below 2^47).
    VIRTUAL_NON_CANONICAL = "memory-virtual-non-canonical" in Memory;
    fn virtual_non_canonical(policy, out) {
        for subject in &policy.subjects {
            for mapping in mappings(policy, subject) {
                if mapping.range().is_none_or(|r| r.end > VIRT_LIMIT) {
                    out.error(
                        VIRTUAL_NON_CANONICAL.id,
                        mapping.span,
                        format!(
                            "\"{}\" in subject \"{}\" does not fit below {}, the end of the lower \
                             canonical half",
                            mapping.logical.as_str(),
                            subject.name.as_str(),
                            hex(VIRT_LIMIT)
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Mappings in one subject (maps, channels, device memory) do not overlap.
    VIRTUAL_OVERLAP = "memory-virtual-overlap" in Memory;
    fn virtual_overlap(policy, out) {
        for subject in &policy.subjects {
            let mut all: Vec<(Range, usize, usize)> = Vec::new();
            let maps = mappings(policy, subject);
            for (i, mapping) in maps.iter().enumerate() {
                if let Some(range) = mapping.range().filter(|r| r.end <= VIRT_LIMIT) {
                    all.push((range, i, i));
                }
            }
            // Report at the later mapping in document order, against the
            // earlier one.
            for (later, earlier) in overlap_pairs(all) {
                let (Some(later), Some(earlier)) = (maps.get(later), maps.get(earlier)) else {
                    continue;
                };
                out.error(
                    VIRTUAL_OVERLAP.id,
                    later.span,
                    format!(
                        "\"{}\" overlaps \"{}\" in the address space of subject \"{}\"",
                        later.logical.as_str(),
                        earlier.logical.as_str(),
                        subject.name.as_str()
                    ),
                )
                .label(earlier.span, "the other mapping");
            }
        }
    }
}

rule! {
    /// No mapping covers the subject info page at its fixed address.
    VIRTUAL_INFO_OVERLAP = "memory-virtual-info-overlap" in Memory;
    fn virtual_info_overlap(policy, out) {
        let info = info_page_range();
        for subject in &policy.subjects {
            for mapping in mappings(policy, subject) {
                if mapping.range().is_some_and(|r| r.overlaps(&info)) {
                    out.error(
                        VIRTUAL_INFO_OVERLAP.id,
                        mapping.span,
                        format!(
                            "\"{}\" overlaps the subject info page ({info}) of subject \"{}\"",
                            mapping.logical.as_str(),
                            subject.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// No mapping covers the subject's stack or the guard page below it.
    VIRTUAL_STACK_OVERLAP = "memory-virtual-stack-overlap" in Memory;
    fn virtual_stack_overlap(policy, out) {
        for subject in &policy.subjects {
            let Some(stack) = stack_range(subject) else {
                continue;
            };
            for mapping in mappings(policy, subject) {
                if mapping.range().is_some_and(|r| r.overlaps(&stack)) {
                    out.error(
                        VIRTUAL_STACK_OVERLAP.id,
                        mapping.span,
                        format!(
                            "\"{}\" overlaps the stack of subject \"{}\" ({stack}, with its guard \
                             page)",
                            mapping.logical.as_str(),
                            subject.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// No mapping enters the program image window
    /// (`SUBJECT_IMAGE_BASE..SUBJECT_IMAGE_END` of `septum_abi::layout`),
    /// where the composer maps the subject's ELF segments.
    VIRTUAL_IMAGE_OVERLAP = "memory-virtual-image-overlap" in Memory;
    fn virtual_image_overlap(policy, out) {
        let image = image_range();
        for subject in &policy.subjects {
            for mapping in mappings(policy, subject) {
                if mapping.range().is_some_and(|r| r.overlaps(&image)) {
                    out.error(
                        VIRTUAL_IMAGE_OVERLAP.id,
                        mapping.span,
                        format!(
                            "\"{}\" overlaps the program image window of subject \"{}\" ({image})",
                            mapping.logical.as_str(),
                            subject.name.as_str()
                        ),
                    )
                    .help(format!(
                        "place it at or above {}, or leave out virtualAddress",
                        hex(image.end)
                    ));
                }
            }
        }
    }
}

rule! {
    /// Warning: nothing is mapped at the null page, so null pointer accesses fault.
    VIRTUAL_NULL_PAGE = "memory-virtual-null-page" in Memory;
    fn virtual_null_page(policy, out) {
        let null = Range {
            start: 0,
            end: PAGE,
        };
        for subject in &policy.subjects {
            for mapping in mappings(policy, subject) {
                if mapping.range().is_some_and(|r| r.overlaps(&null)) {
                    let kind = match mapping.kind {
                        MappingKind::Region => "memory",
                        MappingKind::Channel => "channel",
                        MappingKind::DeviceMemory => "device memory",
                    };
                    out.warning(
                        VIRTUAL_NULL_PAGE.id,
                        mapping.span,
                        format!(
                            "{kind} \"{}\" maps the null page of subject \"{}\"",
                            mapping.logical.as_str(),
                            subject.name.as_str()
                        ),
                    )
                    .help("null pointer accesses then reach this memory instead of faulting");
                }
            }
        }
    }
}
