//! Name resolution and auto-assignment, after the whole tree is read.
//!
//! References become typed indices through one hash map per namespace
//! (first definition wins; duplicates are the rules' to report), so
//! resolution is linear in the size of the policy.
//!
//! Then omitted values are assigned, per subject and in document order,
//! never reusing a value written explicitly anywhere in the same space:
//!
//! - source event ids (source events and channel writers' `event`): lowest
//!   free in 0..=63;
//! - target event ids: lowest free in 0..=63;
//! - vectors (injected target events, device IRQs, channel readers): lowest
//!   free from 32 up to 255;
//! - virtual addresses (maps, device memory, channel ends): from
//!   `SUBJECT_AUTO_MAP_BASE` upward, each aligned to the natural page size
//!   of its size (1 GiB, 2 MiB or 4 KiB) and skipping explicit mappings;
//! - a partition's CPU, when every minor frame running it is on one CPU.
//!
//! Items whose reference did not resolve get no address (their size is
//! unknown); the rules report the reference.

use std::collections::HashMap;

use septum_abi::layout::SUBJECT_AUTO_MAP_BASE;
use septum_abi::units::VirtAddr;

use crate::diag::Diagnostics;
use crate::model::*;
use crate::parse_rules as ids;
use crate::source::Span;

const PAGE_4K: u64 = 0x1000;
const PAGE_2M: u64 = 0x20_0000;
const PAGE_1G: u64 = 0x4000_0000;
const EVENT_IDS: u32 = 64;
const FIRST_VECTOR: u32 = 32;

/// Resolves every reference and assigns every omitted value in `policy`.
pub(super) fn resolve(policy: &mut Policy, diags: &mut Diagnostics) {
    resolve_references(policy);
    for subject in &mut policy.subjects {
        assign_ids(subject, &policy.channels, diags);
        assign_addresses(
            subject,
            &policy.regions,
            &policy.channels,
            &policy.hardware,
            diags,
        );
    }
    assign_partition_cpus(&mut policy.scheduling);
}

/// Name → index, first definition wins.
fn index<'a, I>(names: impl Iterator<Item = &'a str>, make: fn(u32) -> I) -> HashMap<String, I> {
    let mut map = HashMap::new();
    for (i, name) in names.enumerate() {
        map.entry(name.to_owned()).or_insert_with(|| make(i as u32));
    }
    map
}

fn link<I: Copy>(reference: &mut Ref<I>, map: &HashMap<String, I>) {
    reference.target = map.get(reference.name.value.as_str()).copied();
}

/// Name indexes of one device's I/O port ranges, IRQs and memory, built
/// once per device so resolving every grant stays linear.
struct DeviceIndex {
    io_ports: HashMap<String, IoPortIdx>,
    irqs: HashMap<String, IrqIdx>,
    memory: HashMap<String, DeviceMemoryIdx>,
}

fn resolve_references(policy: &mut Policy) {
    let devices = index(
        policy.hardware.devices.iter().map(|d| d.name.as_str()),
        DeviceIdx,
    );
    let regions = index(policy.regions.iter().map(|r| r.name.as_str()), RegionIdx);
    let events = index(policy.events.iter().map(|e| e.name.as_str()), EventIdx);
    let channels = index(policy.channels.iter().map(|c| c.name.as_str()), ChannelIdx);
    let subjects = index(policy.subjects.iter().map(|s| s.name.as_str()), SubjectIdx);
    let partitions = index(
        policy.scheduling.partitions.iter().map(|p| p.name.as_str()),
        PartitionIdx,
    );

    let device_indexes: Vec<DeviceIndex> = policy
        .hardware
        .devices
        .iter()
        .map(|d| DeviceIndex {
            io_ports: index(d.io_ports.iter().map(|p| p.name.as_str()), IoPortIdx),
            irqs: index(d.irqs.iter().map(|i| i.name.as_str()), IrqIdx),
            memory: index(d.memory.iter().map(|m| m.name.as_str()), DeviceMemoryIdx),
        })
        .collect();

    link(&mut policy.kernel.debug_console, &devices);
    if let Some(owner) = &mut policy.kernel.console_input {
        link(owner, &subjects);
    }
    for subject in &mut policy.subjects {
        for map in &mut subject.maps {
            link(&mut map.physical, &regions);
        }
        for grant in &mut subject.devices {
            link(&mut grant.physical, &devices);
            let Some(device) = grant
                .physical
                .target
                .and_then(|d| device_indexes.get(d.index()))
            else {
                continue;
            };
            for port in &mut grant.io_ports {
                link(&mut port.physical, &device.io_ports);
            }
            for irq in &mut grant.irqs {
                link(&mut irq.physical, &device.irqs);
            }
            for memory in &mut grant.memory {
                link(&mut memory.physical, &device.memory);
            }
        }
        for event in subject
            .source_groups
            .iter_mut()
            .flat_map(|g| g.events.iter_mut())
        {
            link(&mut event.physical, &events);
        }
        for target in &mut subject.targets {
            link(&mut target.physical, &events);
        }
        for end in &mut subject.channels {
            link(&mut end.physical, &channels);
        }
        if let Some(monitor) = &mut subject.monitor {
            link(&mut monitor.event, &events);
            link(&mut monitor.state, &regions);
        }
        if let Some(timed) = &mut subject.timed_event {
            link(&mut timed.page, &regions);
        }
    }
    for domain in &mut policy.device_domains {
        for map in &mut domain.memory {
            link(&mut map.physical, &regions);
        }
        for device in &mut domain.devices {
            link(&mut device.physical, &devices);
        }
    }
    for deny in &mut policy.flow_denials {
        link(&mut deny.from, &subjects);
        link(&mut deny.to, &subjects);
    }
    for partition in &mut policy.scheduling.partitions {
        for group in &mut partition.groups {
            for subject in &mut group.subjects {
                link(subject, &subjects);
            }
        }
    }
    for frame in &mut policy.scheduling.major_frames {
        for cpu in &mut frame.cpus {
            for minor in &mut cpu.minor_frames {
                link(&mut minor.partition, &partitions);
            }
        }
    }
}

/// A set of small numbers (event ids, vectors).
struct NumberSet([u64; 4]);

impl NumberSet {
    fn new() -> Self {
        Self([0; 4])
    }

    fn insert(&mut self, n: u8) {
        self.0[usize::from(n / 64)] |= 1 << (n % 64);
    }

    fn contains(&self, n: u32) -> bool {
        n < 256 && self.0[(n / 64) as usize] & (1 << (n % 64)) != 0
    }

    /// Takes the lowest free number in `from..to`.
    fn take(&mut self, from: u32, to: u32) -> Option<u8> {
        let n = (from..to).find(|&n| !self.contains(n))?;
        let n = u8::try_from(n).ok()?;
        self.insert(n);
        Some(n)
    }
}

/// Assigns omitted source/target event ids and vectors of one subject.
fn assign_ids(subject: &mut Subject, channels: &[Channel], diags: &mut Diagnostics) {
    let has_event = |end: &ChannelEnd| {
        end.physical
            .target
            .is_some_and(|c| channels[c.index()].has_event.is_some())
    };

    let mut sources = NumberSet::new();
    let mut targets = NumberSet::new();
    let mut vectors = NumberSet::new();
    for event in subject.source_groups.iter().flat_map(|g| g.events.iter()) {
        if !event.id.auto {
            sources.insert(event.id.value.0);
        }
    }
    for target in &subject.targets {
        if !target.id.auto {
            targets.insert(target.id.value.0);
        }
        if let Some(inject) = target.inject.as_ref().filter(|i| !i.vector.auto) {
            vectors.insert(inject.vector.value.0);
        }
    }
    for irq in subject.devices.iter().flat_map(|d| d.irqs.iter()) {
        if !irq.vector.auto {
            vectors.insert(irq.vector.value.0);
        }
    }
    for end in &subject.channels {
        if let Some(event) = end.event {
            sources.insert(event.value.0);
        }
        if let Some(vector) = end.vector {
            vectors.insert(vector.value.0);
        }
    }

    let name = subject.name.value.clone();
    let exhausted = |diags: &mut Diagnostics, span: Span, what: &str| {
        diags.error(
            ids::AUTO_EXHAUSTED,
            span,
            format!("no free {what} is left to assign in subject `{name}`"),
        );
    };

    // Source space: source events and channel writers, in document order.
    let mut pending: Vec<(Span, bool, usize, usize)> = Vec::new();
    for (g, group) in subject.source_groups.iter().enumerate() {
        for (e, event) in group.events.iter().enumerate() {
            if event.id.auto {
                pending.push((event.span, true, g, e));
            }
        }
    }
    for (i, end) in subject.channels.iter().enumerate() {
        if end.role == ChannelRole::Writer && end.event.is_none() && has_event(end) {
            pending.push((end.span, false, i, 0));
        }
    }
    pending.sort();
    for (span, is_event, a, b) in pending {
        let Some(id) = sources.take(0, EVENT_IDS) else {
            exhausted(diags, span, "source event id (0..63)");
            continue;
        };
        if is_event {
            subject.source_groups[a].events[b].id = Assigned::auto(EventId(id), span);
        } else {
            subject.channels[a].event = Some(Assigned::auto(EventId(id), span));
        }
    }

    for target in &mut subject.targets {
        if target.id.auto {
            match targets.take(0, EVENT_IDS) {
                Some(id) => target.id = Assigned::auto(EventId(id), target.span),
                None => exhausted(diags, target.span, "target event id (0..63)"),
            }
        }
    }

    // Vector space: injected target events, device IRQs, channel readers.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Slot {
        Inject(usize),
        Irq(usize, usize),
        Reader(usize),
    }
    let mut pending: Vec<(Span, Slot)> = Vec::new();
    for (t, target) in subject.targets.iter().enumerate() {
        if let Some(inject) = target.inject.as_ref().filter(|i| i.vector.auto) {
            pending.push((inject.span, Slot::Inject(t)));
        }
    }
    for (d, grant) in subject.devices.iter().enumerate() {
        for (i, irq) in grant.irqs.iter().enumerate() {
            if irq.vector.auto {
                pending.push((irq.span, Slot::Irq(d, i)));
            }
        }
    }
    for (i, end) in subject.channels.iter().enumerate() {
        if end.role == ChannelRole::Reader && end.vector.is_none() && has_event(end) {
            pending.push((end.span, Slot::Reader(i)));
        }
    }
    pending.sort();
    for (span, slot) in pending {
        let Some(vector) = vectors.take(FIRST_VECTOR, 256) else {
            exhausted(diags, span, "vector (32..255)");
            continue;
        };
        let assigned = Assigned::auto(Vector(vector), span);
        match slot {
            Slot::Inject(t) => {
                if let Some(inject) = subject.targets[t].inject.as_mut() {
                    inject.vector = assigned;
                }
            }
            Slot::Irq(d, i) => subject.devices[d].irqs[i].vector = assigned,
            Slot::Reader(i) => subject.channels[i].vector = Some(assigned),
        }
    }
}

/// Natural page size for a mapping of `size` bytes.
fn page_size(size: u64) -> u64 {
    if size >= PAGE_1G {
        PAGE_1G
    } else if size >= PAGE_2M {
        PAGE_2M
    } else {
        PAGE_4K
    }
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_add(align - 1).map(|v| v & !(align - 1))
}

/// Assigns omitted virtual addresses of one subject.
fn assign_addresses(
    subject: &mut Subject,
    regions: &[Region],
    channels: &[Channel],
    hardware: &Hardware,
    diags: &mut Diagnostics,
) {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Slot {
        Map(usize),
        DeviceMemory(usize, usize),
        Channel(usize),
        CrashAudit,
    }
    // (span, slot, size, explicit address)
    let mut items: Vec<(Span, Slot, Option<u64>, Assigned<VirtAddr>)> = Vec::new();
    for (i, map) in subject.maps.iter().enumerate() {
        let size = map.physical.target.map(|r| regions[r.index()].size.value);
        items.push((map.span, Slot::Map(i), size, map.virtual_address));
    }
    for (d, grant) in subject.devices.iter().enumerate() {
        let device = grant.physical.target.map(|d| &hardware.devices[d.index()]);
        for (m, memory) in grant.memory.iter().enumerate() {
            let size = device
                .zip(memory.physical.target)
                .map(|(dev, idx)| dev.memory[idx.index()].size.value);
            items.push((
                memory.span,
                Slot::DeviceMemory(d, m),
                size,
                memory.virtual_address,
            ));
        }
    }
    for (i, end) in subject.channels.iter().enumerate() {
        let size = end.physical.target.map(|c| channels[c.index()].size.value);
        items.push((end.span, Slot::Channel(i), size, end.virtual_address));
    }
    if let Some(grant) = &subject.crash_audit {
        // The composer sizes the region by the plan's CPUs, at most the
        // hardware's: reserve the larger size (docs/crash.md).
        let cpus = u32::try_from(hardware.processor.cpus.len()).unwrap_or(u32::MAX);
        let size = septum_abi::crash::region_size(cpus.max(1));
        items.push((grant.span, Slot::CrashAudit, size, grant.virtual_address));
    }

    let mut fixed: Vec<(u64, u64)> = items
        .iter()
        .filter(|(_, _, _, va)| !va.auto)
        .map(|(_, _, size, va)| {
            let start = va.value.0;
            (start, start.saturating_add(size.unwrap_or(0).max(1)))
        })
        .collect();
    fixed.sort_unstable();
    // Merged into disjoint ranges, sorted: candidates only grow, so one
    // forward pass over them serves every pending mapping (linear, where
    // searching all fixed ranges per candidate was quadratic). Jumping past
    // a merged range finds the same address as jumping range by range.
    let mut taken: Vec<(u64, u64)> = Vec::with_capacity(fixed.len());
    for (s, e) in fixed {
        match taken.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => taken.push((s, e)),
        }
    }
    let mut next_taken = 0;

    let mut pending: Vec<(Span, Slot, u64)> = items
        .iter()
        .filter(|(_, _, size, va)| va.auto && size.is_some())
        .map(|(span, slot, size, _)| (*span, *slot, size.unwrap_or(0)))
        .collect();
    pending.sort();

    let mut cursor = SUBJECT_AUTO_MAP_BASE.0;
    for (span, slot, size) in pending {
        let length = align_up(size.max(1), PAGE_4K).unwrap_or(u64::MAX);
        let page = page_size(size);
        let mut candidate = align_up(cursor, page);
        while let Some(start) = candidate {
            let end = start.saturating_add(length);
            while taken.get(next_taken).is_some_and(|&(_, e)| e <= start) {
                next_taken += 1;
            }
            match taken.get(next_taken) {
                Some(&(s, e)) if s < end => candidate = align_up(e, page),
                _ => break,
            }
        }
        let Some(start) = candidate.filter(|s| s.checked_add(length).is_some()) else {
            diags.error(
                ids::AUTO_EXHAUSTED,
                span,
                format!(
                    "no free virtual address range is left to assign in subject `{}`",
                    subject.name.value
                ),
            );
            continue;
        };
        cursor = start + length;
        let assigned = Assigned::auto(VirtAddr(start), span);
        match slot {
            Slot::Map(i) => subject.maps[i].virtual_address = assigned,
            Slot::DeviceMemory(d, m) => subject.devices[d].memory[m].virtual_address = assigned,
            Slot::Channel(i) => subject.channels[i].virtual_address = assigned,
            Slot::CrashAudit => {
                if let Some(grant) = &mut subject.crash_audit {
                    grant.virtual_address = assigned;
                }
            }
        }
    }
}

/// Derives omitted partition CPUs from the plan.
fn assign_partition_cpus(scheduling: &mut Scheduling) {
    let mut cpus: Vec<Option<Option<CpuId>>> = vec![None; scheduling.partitions.len()];
    for frame in &scheduling.major_frames {
        for cpu in &frame.cpus {
            for minor in &cpu.minor_frames {
                if let Some(p) = minor.partition.target {
                    let seen = &mut cpus[p.index()];
                    *seen = match *seen {
                        None => Some(Some(cpu.id.value)),
                        Some(Some(c)) if c == cpu.id.value => Some(Some(c)),
                        Some(_) => Some(None),
                    };
                }
            }
        }
    }
    for (partition, cpu) in scheduling.partitions.iter_mut().zip(cpus) {
        if let (None, Some(Some(cpu))) = (partition.cpu, cpu) {
            partition.cpu = Some(Assigned::auto(cpu, partition.span));
        }
    }
}
