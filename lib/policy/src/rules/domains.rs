//! Device domains: each DMA-capable device is in at most one domain, and a
//! domain reaches only memory of the subjects that own its devices.
//!
//! A domain is one DMA address space: the composer builds one set of VT-d
//! second-level tables per domain and points the context entry of every
//! device of the domain at it. A device in two domains would need two
//! context entries (VT-d has one per bus:dev.fn); memory a domain maps that
//! another subject also maps would let the device read or write that
//! subject's data behind the kernel's back, so it must belong to the
//! domain's subjects alone.

use std::collections::{HashMap, HashSet};

use septum_abi::units::DmaAddr;

use super::common::{DiagnosticExt, PAGE, Range, hex, subjects};
use crate::diag::Diagnostics;
use crate::model::{DeviceIdx, Policy, SubjectIdx};
use crate::platform;
use crate::rule::{Category, Rule};
use crate::source::Span;

/// The subjects that own a device of domain `domain`.
fn domain_subjects(policy: &Policy, domain: &crate::model::DeviceDomain) -> HashSet<SubjectIdx> {
    let devices: HashSet<DeviceIdx> = domain
        .devices
        .iter()
        .filter_map(|d| d.physical.get())
        .collect();
    subjects(policy)
        .filter(|(_, s)| {
            s.devices
                .iter()
                .any(|g| g.physical.get().is_some_and(|d| devices.contains(&d)))
        })
        .map(|(i, _)| i)
        .collect()
}

rule! {
    /// Device domain names are unique.
    DUPLICATE = "domains-duplicate" in Domains;
    fn duplicate(policy, out) {
        let mut first: HashMap<&str, Span> = HashMap::new();
        for domain in &policy.device_domains {
            if let Some(&span) = first.get(domain.name.as_str()) {
                out.error(
                    DUPLICATE.id,
                    domain.name.span,
                    format!("device domain \"{}\" is defined twice", domain.name.as_str()),
                )
                .label(span, "first defined here");
            } else {
                first.insert(domain.name.as_str(), domain.name.span);
            }
        }
    }
}

rule! {
    /// A domain's devices and memory name a hardware device and a memory
    /// region of the policy.
    UNKNOWN_REFERENCE = "domains-unknown-reference" in Domains;
    fn unknown_reference(policy, out) {
        for domain in &policy.device_domains {
            for device in domain.devices.iter().filter(|d| d.physical.get().is_none()) {
                out.error(
                    UNKNOWN_REFERENCE.id,
                    device.physical.name.span,
                    format!(
                        "device domain \"{}\" refers to unknown device \"{}\"",
                        domain.name.as_str(),
                        device.physical.name.as_str()
                    ),
                );
            }
            for map in domain.memory.iter().filter(|m| m.physical.get().is_none()) {
                out.error(
                    UNKNOWN_REFERENCE.id,
                    map.physical.name.span,
                    format!(
                        "device domain \"{}\" maps unknown memory region \"{}\"",
                        domain.name.as_str(),
                        map.physical.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// A device is in at most one device domain, once: VT-d has one context
    /// entry per PCI function.
    DEVICE_TWICE = "domains-device-twice" in Domains;
    fn device_twice(policy, out) {
        let mut first: HashMap<DeviceIdx, (&str, Span)> = HashMap::new();
        for domain in &policy.device_domains {
            for device in &domain.devices {
                let Some(index) = device.physical.get() else { continue };
                if let Some(&(other, span)) = first.get(&index) {
                    out.error(
                        DEVICE_TWICE.id,
                        device.physical.name.span,
                        format!(
                            "device \"{}\" of device domain \"{}\" is already in device domain \
                             \"{other}\"",
                            device.physical.name.as_str(),
                            domain.name.as_str()
                        ),
                    )
                    .label(span, "first placed here");
                } else {
                    first.insert(index, (domain.name.as_str(), device.physical.name.span));
                }
            }
        }
    }
}

rule! {
    /// A domain's devices are DMA-capable PCI devices (not IOMMUs or I/O
    /// APICs): VT-d translates by PCI requester id.
    DEVICE_NOT_PCI = "domains-device-not-pci" in Domains;
    fn device_not_pci(policy, out) {
        for domain in &policy.device_domains {
            for device in &domain.devices {
                let Some(hw) = device.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                if !platform::is_dma_capable(hw) {
                    out.error(
                        DEVICE_NOT_PCI.id,
                        device.physical.name.span,
                        format!(
                            "device \"{}\" of device domain \"{}\" is not a DMA-capable PCI \
                             device",
                            hw.name.as_str(),
                            domain.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Memory a domain maps belongs to the subjects that own the domain's
    /// devices: at least one of them maps it and no other subject does.
    MEMORY_NOT_OWNED = "domains-memory-not-owned" in Domains;
    fn memory_not_owned(policy, out) {
        for domain in &policy.device_domains {
            let owners = domain_subjects(policy, domain);
            for map in &domain.memory {
                let Some(region) = map.physical.get() else { continue };
                let mappers: Vec<SubjectIdx> = subjects(policy)
                    .filter(|(_, s)| s.maps.iter().any(|m| m.physical.get() == Some(region)))
                    .map(|(i, _)| i)
                    .collect();
                if let Some(stranger) = mappers.iter().find(|s| !owners.contains(s)) {
                    out.error(
                        MEMORY_NOT_OWNED.id,
                        map.physical.name.span,
                        format!(
                            "memory region \"{}\" of device domain \"{}\" is also mapped by \
                             subject \"{}\", which owns none of the domain's devices",
                            map.physical.name.as_str(),
                            domain.name.as_str(),
                            policy.subject(*stranger).name.as_str()
                        ),
                    )
                    .help("DMA buffers belong to the driver subjects alone; copy data out through a channel");
                } else if mappers.is_empty() {
                    out.error(
                        MEMORY_NOT_OWNED.id,
                        map.physical.name.span,
                        format!(
                            "memory region \"{}\" of device domain \"{}\" is mapped by no \
                             subject that owns one of the domain's devices",
                            map.physical.name.as_str(),
                            domain.name.as_str()
                        ),
                    )
                    .help("map it in the driver subject that programs the device");
                }
            }
        }
    }
}

rule! {
    /// A domain's I/O virtual addresses are 4 KiB aligned and its mappings
    /// do not overlap.
    VIRTUAL_LAYOUT = "domains-virtual-layout" in Domains;
    fn virtual_layout(policy, out) {
        for domain in &policy.device_domains {
            let mut placed: Vec<(Range, &str, Span)> = Vec::new();
            for map in &domain.memory {
                let address = map.virtual_address.value;
                if !address.is_aligned(PAGE) {
                    out.error(
                        VIRTUAL_LAYOUT.id,
                        map.virtual_address.span,
                        format!(
                            "memory \"{}\" of device domain \"{}\" is at {}, which is not 4 KiB \
                             aligned",
                            map.logical.as_str(),
                            domain.name.as_str(),
                            address
                        ),
                    );
                    continue;
                }
                let Some(region) = map.physical.get().map(|r| policy.region(r)) else {
                    continue;
                };
                let Some(range) = Range::new(address.get(), region.size.value) else {
                    continue;
                };
                if let Some((_, other, span)) = placed.iter().find(|(r, _, _)| r.overlaps(&range)) {
                    out.error(
                        VIRTUAL_LAYOUT.id,
                        map.virtual_address.span,
                        format!(
                            "memory \"{}\" of device domain \"{}\" at {} overlaps memory \
                             \"{other}\"",
                            map.logical.as_str(),
                            domain.name.as_str(),
                            hex(DmaAddr::get(address))
                        ),
                    )
                    .label(*span, "the other mapping");
                } else {
                    placed.push((range, map.logical.as_str(), map.virtual_address.span));
                }
            }
        }
    }
}
