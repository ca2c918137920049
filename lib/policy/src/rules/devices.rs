//! Devices: the resources of the hardware's devices are consistent and
//! unambiguous, and each device belongs to at most one subject.
//!
//! A device's I/O ports, IRQ lines, PCI function and memory are what the
//! composer grants through the I/O bitmap, the interrupt routing table and
//! EPT. If two devices claimed the same port or the same memory, granting
//! one would silently grant part of the other; so resources are unique
//! across devices, and a device (or an IRQ line shared by devices) has one
//! owner.

use std::collections::HashMap;

use super::common::{
    DiagnosticExt, PAGE, Range, RangeIndex, hex, hex_size, overlap_pairs, owned_irqs, subjects,
};
use crate::diag::Diagnostics;
use crate::model::{Caching, Policy, SubjectIdx};
use crate::platform;
use crate::rule::{Category, Rule};
use crate::source::Span;

/// IRQ lines 0..=15 are ISA lines, wired to one device each.
const LEGACY_IRQS: u32 = 16;
/// The kernel routes IRQ n to host vector 32 + n, which must stay below the
/// reserved vectors 253 and 254.
const MAX_IRQ: u32 = 220;
/// The first IRQ number of the MSI range: two I/O APICs of 24 inputs
/// (GSIs 0..=47) stay below it.
const FIRST_MSI: u32 = 48;
/// ECAM maps 1 MiB of configuration space per PCI bus.
const PCI_BUS_CONFIG: u64 = 0x10_0000;
/// 256 buses at most.
const PCI_CONFIG_MAX: u64 = 256 * PCI_BUS_CONFIG;

/// The allocatable memory blocks as ranges, with their names.
fn allocatable(policy: &Policy) -> Vec<(Range, &str)> {
    policy
        .hardware
        .memory_blocks
        .iter()
        .filter(|b| b.allocatable.value)
        .filter_map(|b| {
            Range::new(b.physical_address.value.0, b.size.value).map(|r| (r, b.name.as_str()))
        })
        .collect()
}

rule! {
    /// A device is owned by at most one subject: two owners of one device can
    /// talk through it and each can disturb the other's use of it.
    OWNED_TWICE = "devices-owned-twice" in Devices;
    fn owned_twice(policy, out) {
        let mut owner: HashMap<u32, (SubjectIdx, Span)> = HashMap::new();
        for (s, subject) in subjects(policy) {
            for grant in &subject.devices {
                let Some(device) = grant.physical.get() else {
                    continue;
                };
                match owner.get(&device.0) {
                    Some(&(first, span)) if first != s => {
                        out.error(
                            OWNED_TWICE.id,
                            grant.physical.name.span,
                            format!(
                                "device \"{}\" is owned by subject \"{}\" and by subject \"{}\"",
                                grant.physical.name.as_str(),
                                policy.subject(first).name.as_str(),
                                subject.name.as_str()
                            ),
                        )
                        .label(span, "first granted here")
                        .help(
                            "a device belongs to one subject; pass its data on through a channel",
                        );
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(device.0, (s, grant.physical.name.span));
                    }
                }
            }
        }
    }
}

rule! {
    /// A subject is granted each device once.
    GRANTED_TWICE = "devices-granted-twice" in Devices;
    fn granted_twice(policy, out) {
        for subject in &policy.subjects {
            let mut first: HashMap<u32, Span> = HashMap::new();
            for grant in &subject.devices {
                let Some(device) = grant.physical.get() else {
                    continue;
                };
                if let Some(&span) = first.get(&device.0) {
                    out.error(
                        GRANTED_TWICE.id,
                        grant.physical.name.span,
                        format!(
                            "device \"{}\" is granted twice to subject \"{}\"",
                            grant.physical.name.as_str(),
                            subject.name.as_str()
                        ),
                    )
                    .label(span, "first granted here")
                    .help("grant it once, listing every part it needs inside one <device>");
                } else {
                    first.insert(device.0, grant.physical.name.span);
                }
            }
        }
    }
}

rule! {
    /// Inside one device grant, each I/O port range, IRQ and memory of the
    /// device is granted once.
    RESOURCE_GRANTED_TWICE = "devices-resource-granted-twice" in Devices;
    fn resource_granted_twice(policy, out) {
        for subject in &policy.subjects {
            for grant in &subject.devices {
                let Some(device) = grant.physical.get() else {
                    continue;
                };
                let device = policy.device(device);
                let mut seen: HashMap<(u8, u32), Span> = HashMap::new();
                let parts = grant
                    .io_ports
                    .iter()
                    .map(|p| (0u8, p.physical.get().map(|i| i.0), &p.physical.name))
                    .chain(
                        grant
                            .irqs
                            .iter()
                            .map(|i| (1, i.physical.get().map(|x| x.0), &i.physical.name)),
                    )
                    .chain(
                        grant
                            .memory
                            .iter()
                            .map(|m| (2, m.physical.get().map(|x| x.0), &m.physical.name)),
                    );
                for (kind, index, name) in parts {
                    let Some(index) = index else { continue };
                    if let Some(&span) = seen.get(&(kind, index)) {
                        out.error(
                            RESOURCE_GRANTED_TWICE.id,
                            name.span,
                            format!(
                                "resource \"{}\" of device \"{}\" is granted twice to \
                                 subject \"{}\"",
                                name.as_str(),
                                device.name.as_str(),
                                subject.name.as_str()
                            ),
                        )
                        .label(span, "first granted here");
                    } else {
                        seen.insert((kind, index), name.span);
                    }
                }
            }
        }
    }
}

rule! {
    /// Warning: a device granted to a subject gives it something: I/O ports, IRQs,
    /// memory or (a PCI device) its configuration space.
    GRANT_NOTHING = "devices-grant-nothing" in Devices;
    fn grant_nothing(policy, out) {
        for subject in &policy.subjects {
            for grant in subject.devices.iter().filter(|g| g.is_whole_device()) {
                let Some(device) = grant.physical.get() else {
                    continue;
                };
                let device = policy.device(device);
                if device.io_ports.is_empty()
                    && device.irqs.is_empty()
                    && device.memory.is_empty()
                    && device.pci.is_none()
                {
                    out.warning(
                        GRANT_NOTHING.id,
                        grant.physical.name.span,
                        format!(
                            "device \"{}\" granted to subject \"{}\" has no I/O ports, IRQs \
                             or memory",
                            device.name.as_str(),
                            subject.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// An I/O port range starts at or before its end.
    IOPORT_INVERTED = "devices-ioport-inverted" in Devices;
    fn ioport_inverted(policy, out) {
        for device in &policy.hardware.devices {
            for range in device
                .io_ports
                .iter()
                .filter(|p| p.start.value > p.end.value)
            {
                out.error(
                    IOPORT_INVERTED.id,
                    range.start.span,
                    format!(
                        "I/O port range \"{}\" of device \"{}\" starts at {}, after its end {}",
                        range.name.as_str(),
                        device.name.as_str(),
                        hex(u64::from(range.start.value)),
                        hex(u64::from(range.end.value))
                    ),
                );
            }
        }
    }
}

rule! {
    /// No I/O port belongs to two devices, so granting one device never
    /// grants part of another.
    IOPORT_OVERLAP = "devices-ioport-overlap" in Devices;
    fn ioport_overlap(policy, out) {
        // (device, range) of each range, in document order. Sorting the
        // ranges, not walking their ports: a range may hold 65,536 ports.
        let devices = &policy.hardware.devices;
        let mut at = Vec::new();
        let mut all: Vec<(Range, usize, usize)> = Vec::new();
        for (d, device) in devices.iter().enumerate() {
            for range in device
                .io_ports
                .iter()
                .filter(|p| p.start.value <= p.end.value)
            {
                let start = u64::from(range.start.value);
                let end = u64::from(range.end.value).saturating_add(1);
                all.push((Range { start, end }, d, at.len()));
                at.push((d, range));
            }
        }
        for (later, earlier) in overlap_pairs(all) {
            let (Some(&(d, range)), Some(&(od, other_range))) = (at.get(later), at.get(earlier))
            else {
                continue;
            };
            let (Some(device), Some(other)) = (devices.get(d), devices.get(od)) else {
                continue;
            };
            out.error(
                IOPORT_OVERLAP.id,
                range.start.span,
                format!(
                    "I/O ports {}..={} of device \"{}\" overlap I/O ports of device \"{}\"",
                    hex(u64::from(range.start.value)),
                    hex(u64::from(range.end.value)),
                    device.name.as_str(),
                    other.name.as_str()
                ),
            )
            .label(other_range.start.span, "the other device's ports");
        }
    }
}

rule! {
    /// IRQ numbers are at most 220, so the host vector 32 + IRQ stays below
    /// the reserved vectors 253 and 254.
    IRQ_OUT_OF_RANGE = "devices-irq-out-of-range" in Devices;
    fn irq_out_of_range(policy, out) {
        for device in &policy.hardware.devices {
            for irq in device.irqs.iter().filter(|i| i.number.value > MAX_IRQ) {
                out.error(
                    IRQ_OUT_OF_RANGE.id,
                    irq.number.span,
                    format!(
                        "IRQ \"{}\" of device \"{}\" has number {}; the highest usable IRQ \
                         is {MAX_IRQ}",
                        irq.name.as_str(),
                        device.name.as_str(),
                        irq.number.value
                    ),
                );
            }
        }
    }
}

rule! {
    /// An ISA IRQ line (0..=15) of a non-PCI device belongs to that device
    /// alone (ISA lines are edge-triggered); PCI devices may share a legacy
    /// line with each other.
    LEGACY_IRQ_DUPLICATE = "devices-legacy-irq-duplicate" in Devices;
    fn legacy_irq_duplicate(policy, out) {
        // The first device on each legacy line, and the first non-PCI one.
        let mut first: HashMap<u32, (usize, Span)> = HashMap::new();
        let mut isa: HashMap<u32, (usize, Span)> = HashMap::new();
        for (d, device) in policy.hardware.devices.iter().enumerate() {
            for irq in device.irqs.iter().filter(|i| i.number.value < LEGACY_IRQS) {
                let number = irq.number.value;
                // A PCI device clashes only with an ISA device on the line;
                // a non-PCI device with any other device.
                let clash = if device.pci.is_some() {
                    isa.get(&number)
                } else {
                    first.get(&number)
                };
                match clash {
                    Some(&(other, span)) if other != d => {
                        let Some(other) = policy.hardware.devices.get(other) else {
                            continue;
                        };
                        out.error(
                            LEGACY_IRQ_DUPLICATE.id,
                            irq.number.span,
                            format!(
                                "IRQ {number} of device \"{}\" is also used by device \"{}\"",
                                device.name.as_str(),
                                other.name.as_str()
                            ),
                        )
                        .label(span, "used here");
                    }
                    _ => {}
                }
                first.entry(number).or_insert((d, irq.number.span));
                if device.pci.is_none() {
                    isa.entry(number).or_insert((d, irq.number.span));
                }
            }
        }
    }
}

rule! {
    /// A device without a PCI address is an ISA device: its IRQs are ISA
    /// lines 0..=15.
    ISA_IRQ_RANGE = "devices-isa-irq-range" in Devices;
    fn isa_irq_range(policy, out) {
        for device in policy.hardware.devices.iter().filter(|d| d.pci.is_none()) {
            for irq in device
                .irqs
                .iter()
                .filter(|i| (LEGACY_IRQS..=MAX_IRQ).contains(&i.number.value))
            {
                out.error(
                    ISA_IRQ_RANGE.id,
                    irq.number.span,
                    format!(
                        "IRQ \"{}\" of non-PCI device \"{}\" has number {}; ISA IRQs are 0..=15",
                        irq.name.as_str(),
                        device.name.as_str(),
                        irq.number.value
                    ),
                );
            }
        }
    }
}

rule! {
    /// A PCI device's legacy (line-based) IRQ is an input of an I/O APIC of
    /// the hardware, when the hardware describes I/O APICs.
    PCI_IRQ_IOAPIC = "devices-pci-irq-ioapic" in Devices;
    fn pci_irq_ioapic(policy, out) {
        let ioapics = platform::ioapics(&policy.hardware);
        if ioapics.is_empty() {
            return;
        }
        for device in policy.hardware.devices.iter().filter(|d| d.pci.is_some()) {
            for irq in device.irqs.iter().filter(|i| i.number.value <= MAX_IRQ) {
                if !ioapics.iter().any(|a| a.serves(irq.number.value)) {
                    out.error(
                        PCI_IRQ_IOAPIC.id,
                        irq.number.span,
                        format!(
                            "IRQ \"{}\" of PCI device \"{}\" has number {}, which no I/O APIC \
                             of the hardware serves",
                            irq.name.as_str(),
                            device.name.as_str(),
                            irq.number.value
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// An MSI's IRQ number, when given, lies in the MSI range 48..=220 (above
    /// every I/O APIC input the kernel supports).
    MSI_RANGE = "devices-msi-range" in Devices;
    fn msi_range(policy, out) {
        for device in &policy.hardware.devices {
            for irq in &device.irqs {
                for msi in &irq.msis {
                    let Some(number) = &msi.number else { continue };
                    if !(FIRST_MSI..=MAX_IRQ).contains(&number.value) {
                        out.error(
                            MSI_RANGE.id,
                            number.span,
                            format!(
                                "MSI \"{}\" of device \"{}\" has IRQ number {}; MSIs use \
                                 {FIRST_MSI}..={MAX_IRQ}",
                                msi.name.as_str(),
                                device.name.as_str(),
                                number.value
                            ),
                        );
                    }
                }
            }
        }
    }
}

rule! {
    /// The MSIs of one IRQ raise consecutive IRQ numbers in document order
    /// (multi-message MSI signals message k as base + k), all numbered or
    /// none.
    MSI_CONSECUTIVE = "devices-msi-consecutive" in Devices;
    fn msi_consecutive(policy, out) {
        for device in &policy.hardware.devices {
            for irq in &device.irqs {
                let Some(base) = irq.msis.first().and_then(|m| m.number.as_ref()) else {
                    if let Some(numbered) = irq.msis.iter().find_map(|m| m.number.as_ref()) {
                        out.error(
                            MSI_CONSECUTIVE.id,
                            numbered.span,
                            format!(
                                "MSIs of IRQ \"{}\" of device \"{}\" are numbered only in part",
                                irq.name.as_str(),
                                device.name.as_str()
                            ),
                        );
                    }
                    continue;
                };
                for (k, msi) in irq.msis.iter().enumerate() {
                    let want = u32::try_from(k).ok().and_then(|k| base.value.checked_add(k));
                    let have = msi.number.as_ref().map(|n| n.value);
                    if have != want {
                        let span = msi.number.as_ref().map_or(msi.span, |n| n.span);
                        out.error(
                            MSI_CONSECUTIVE.id,
                            span,
                            format!(
                                "MSI \"{}\" of device \"{}\" must have IRQ number {}: the MSIs \
                                 of an IRQ are consecutive from the first's {}",
                                msi.name.as_str(),
                                device.name.as_str(),
                                want.map_or_else(|| "beyond u32".to_owned(), |w| w.to_string()),
                                base.value
                            ),
                        );
                        break;
                    }
                }
            }
        }
    }
}

rule! {
    /// An IRQ line shared by several devices is owned by one subject, since
    /// the kernel routes a line to one subject.
    IRQ_SHARED = "devices-irq-shared" in Devices;
    fn irq_shared(policy, out) {
        let mut owner: HashMap<u32, (SubjectIdx, usize)> = HashMap::new();
        for (s, subject) in subjects(policy) {
            for (number, device, span) in owned_irqs(policy, subject) {
                match owner.get(&number) {
                    Some(&(first, first_device)) if first != s && first_device != device => {
                        let (Some(this), Some(that)) = (
                            policy.hardware.devices.get(device),
                            policy.hardware.devices.get(first_device),
                        ) else {
                            continue;
                        };
                        out.error(
                            IRQ_SHARED.id,
                            span,
                            format!(
                                "IRQ {number} of device \"{}\" is also owned by subject \"{}\" \
                                 through device \"{}\"",
                                this.name.as_str(),
                                policy.subject(first).name.as_str(),
                                that.name.as_str()
                            ),
                        )
                        .help("grant devices that share an IRQ line to one subject");
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(number, (s, device));
                    }
                }
            }
        }
    }
}

rule! {
    /// No two devices have the same PCI bus, device and function.
    PCI_DUPLICATE = "devices-pci-duplicate" in Devices;
    fn pci_duplicate(policy, out) {
        let mut owner: HashMap<(u8, u8, u8), (usize, Span)> = HashMap::new();
        for (d, device) in policy.hardware.devices.iter().enumerate() {
            let Some(pci) = &device.pci else { continue };
            let key = (pci.bus.value, pci.device.value, pci.function.value);
            if let Some(&(other, span)) = owner.get(&key) {
                let Some(other) = policy.hardware.devices.get(other) else {
                    continue;
                };
                out.error(
                    PCI_DUPLICATE.id,
                    pci.bus.span,
                    format!(
                        "PCI address {:02x}:{:02x}.{:x} of device \"{}\" is also used by \
                         device \"{}\"",
                        key.0,
                        key.1,
                        key.2,
                        device.name.as_str(),
                        other.name.as_str()
                    ),
                )
                .label(span, "used here");
            } else {
                owner.insert(key, (d, pci.bus.span));
            }
        }
    }
}

rule! {
    /// PCI device numbers are at most 31 and function numbers at most 7.
    PCI_RANGE = "devices-pci-range" in Devices;
    fn pci_range(policy, out) {
        for device in &policy.hardware.devices {
            let Some(pci) = &device.pci else { continue };
            for (what, value, max) in [
                ("device", &pci.device, 31u8),
                ("function", &pci.function, 7u8),
            ] {
                if value.value > max {
                    out.error(
                        PCI_RANGE.id,
                        value.span,
                        format!(
                            "PCI {what} number {} of device \"{}\" is out of range 0..={max}",
                            value.value,
                            device.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Devices with a PCI address come with the PCI configuration space
    /// (`pciConfigAddress` of `<devices>`).
    PCI_NO_CONFIG_SPACE = "devices-pci-no-config-space" in Devices;
    fn pci_no_config_space(policy, out) {
        if policy.hardware.pci_config_address.is_some() {
            return;
        }
        for device in &policy.hardware.devices {
            let Some(pci) = &device.pci else { continue };
            out.error(
                PCI_NO_CONFIG_SPACE.id,
                pci.span,
                format!(
                    "device \"{}\" has a PCI address but the hardware description gives no \
                     pciConfigAddress",
                    device.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// The PCI configuration space starts on a 1 MiB boundary, as ECAM needs.
    PCI_CONFIG_UNALIGNED = "devices-pci-config-unaligned" in Devices;
    fn pci_config_unaligned(policy, out) {
        let Some(address) = &policy.hardware.pci_config_address else {
            return;
        };
        if !address.value.is_aligned(PCI_BUS_CONFIG) {
            out.error(
                PCI_CONFIG_UNALIGNED.id,
                address.span,
                format!("pciConfigAddress {} is not 1 MiB aligned", address.value),
            );
        }
    }
}

rule! {
    /// The PCI configuration space is 1 MiB per bus: a non-zero multiple of
    /// 1 MiB, at most 256 MiB.
    PCI_CONFIG_SIZE = "devices-pci-config-size" in Devices;
    fn pci_config_size(policy, out) {
        let Some(size) = &policy.hardware.pci_config_size else {
            return;
        };
        let v = size.value;
        if v == 0 || !v.is_multiple_of(PCI_BUS_CONFIG) || v > PCI_CONFIG_MAX {
            out.error(
                PCI_CONFIG_SIZE.id,
                size.span,
                format!(
                    "pciConfigSize {} is not a multiple of 1 MiB between 1 MiB and 256 MiB",
                    hex_size(v)
                ),
            );
        }
    }
}

rule! {
    /// The PCI configuration space does not overlap allocatable RAM.
    PCI_CONFIG_IN_RAM = "devices-pci-config-in-ram" in Devices;
    fn pci_config_in_ram(policy, out) {
        let (Some(address), Some(size)) = (
            &policy.hardware.pci_config_address,
            &policy.hardware.pci_config_size,
        ) else {
            return;
        };
        let Some(config) = Range::new(address.value.0, size.value) else {
            return;
        };
        for (block, name) in allocatable(policy) {
            if block.overlaps(&config) {
                out.error(
                    PCI_CONFIG_IN_RAM.id,
                    address.span,
                    format!(
                        "PCI configuration space {config} overlaps allocatable memory block \
                         \"{name}\""
                    ),
                );
            }
        }
    }
}

rule! {
    /// Device memory starts on a 4 KiB boundary, so EPT can grant it alone.
    MEMORY_UNALIGNED = "devices-memory-unaligned" in Devices;
    fn memory_unaligned(policy, out) {
        for device in &policy.hardware.devices {
            for memory in device
                .memory
                .iter()
                .filter(|m| !m.physical_address.value.is_aligned(PAGE))
            {
                out.error(
                    MEMORY_UNALIGNED.id,
                    memory.physical_address.span,
                    format!(
                        "memory \"{}\" of device \"{}\" at {} is not 4 KiB aligned",
                        memory.name.as_str(),
                        device.name.as_str(),
                        memory.physical_address.value
                    ),
                );
            }
        }
    }
}

rule! {
    /// Device memory sizes are non-zero multiples of 4 KiB.
    MEMORY_SIZE = "devices-memory-size" in Devices;
    fn memory_size(policy, out) {
        for device in &policy.hardware.devices {
            for memory in &device.memory {
                let size = memory.size.value;
                if size == 0 || !size.is_multiple_of(PAGE) {
                    out.error(
                        MEMORY_SIZE.id,
                        memory.size.span,
                        format!(
                            "memory \"{}\" of device \"{}\" has size {}, which is not a non-zero \
                             multiple of 4 KiB",
                            memory.name.as_str(),
                            device.name.as_str(),
                            hex_size(size)
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Memory of different devices does not overlap.
    MEMORY_OVERLAP = "devices-memory-overlap" in Devices;
    fn memory_overlap(policy, out) {
        // (device, memory) of each range, in document order.
        let mut at: Vec<(usize, usize)> = Vec::new();
        let mut all: Vec<(Range, usize, usize)> = Vec::new();
        for (d, device) in policy.hardware.devices.iter().enumerate() {
            for (m, memory) in device.memory.iter().enumerate() {
                let range = Range::new(memory.physical_address.value.0, memory.size.value);
                if let Some(range) = range.filter(|r| r.start < r.end) {
                    all.push((range, d, at.len()));
                    at.push((d, m));
                }
            }
        }
        for (later, earlier) in overlap_pairs(all) {
            let (Some(&(d, m)), Some(&(od, om))) = (at.get(later), at.get(earlier)) else {
                continue;
            };
            let devices = &policy.hardware.devices;
            let (Some(device), Some(other)) = (devices.get(d), devices.get(od)) else {
                continue;
            };
            let (Some(memory), Some(other_memory)) = (device.memory.get(m), other.memory.get(om))
            else {
                continue;
            };
            out.error(
                MEMORY_OVERLAP.id,
                memory.physical_address.span,
                format!(
                    "memory \"{}\" of device \"{}\" overlaps memory \"{}\" of device \"{}\"",
                    memory.name.as_str(),
                    device.name.as_str(),
                    other_memory.name.as_str(),
                    other.name.as_str()
                ),
            )
            .label(
                other_memory.physical_address.span,
                "the other device memory",
            );
        }
    }
}

rule! {
    /// Device memory does not overlap allocatable RAM, which the composer
    /// hands out to subjects.
    MEMORY_IN_RAM = "devices-memory-in-ram" in Devices;
    fn memory_in_ram(policy, out) {
        let blocks = allocatable(policy);
        let index = RangeIndex::new(blocks.iter().map(|b| b.0).zip(0..));
        for device in &policy.hardware.devices {
            for memory in &device.memory {
                let Some(range) = Range::new(memory.physical_address.value.0, memory.size.value)
                else {
                    continue;
                };
                // One block per device memory (the one reaching furthest):
                // overlapping blocks are a mistake of their own.
                if let Some((_, name)) = index.overlapping(&range).and_then(|i| blocks.get(i)) {
                    out.error(
                        MEMORY_IN_RAM.id,
                        memory.physical_address.span,
                        format!(
                            "memory \"{}\" of device \"{}\" overlaps allocatable memory block \
                             \"{name}\"",
                            memory.name.as_str(),
                            device.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Warning: device memory is not write-back cached: caching MMIO reorders and
    /// drops device accesses.
    MEMORY_WRITE_BACK = "devices-memory-write-back" in Devices;
    fn memory_write_back(policy, out) {
        for device in &policy.hardware.devices {
            for memory in device
                .memory
                .iter()
                .filter(|m| m.caching.value == Caching::Wb)
            {
                out.warning(
                    MEMORY_WRITE_BACK.id,
                    memory.caching.span,
                    format!(
                        "memory \"{}\" of device \"{}\" is write-back cached",
                        memory.name.as_str(),
                        device.name.as_str()
                    ),
                )
                .help("device memory is normally UC (registers) or WC (frame buffers)");
            }
        }
    }
}
