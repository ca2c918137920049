//! Platform devices: IOMMUs, I/O APICs, the system board and reserved
//! memory regions are well-formed and present where the system needs them,
//! and stay the kernel's.
//!
//! The kernel programs the IOMMUs and I/O APICs itself from the values in
//! the hardware description ([`crate::platform`] reads them); a subject that
//! owned one could re-target every interrupt or open all of memory to DMA,
//! so they are never granted. A DMA-capable device given to a subject on a
//! machine without an IOMMU can read and write all memory: that is an error
//! unless the grant says, with `acceptUnconfinedDma`, that it is meant.

use std::collections::HashMap;

use super::common::DiagnosticExt;
use crate::diag::Diagnostics;
use crate::model::{KernelAction, Policy};
use crate::platform::{
    self, FAULT_RECORD, IOAPIC_MAX_ENTRY, IOMMU_AGAWS, IOTLB_REGISTERS, REGISTER_PAGE,
    capability_number,
};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// A capability a platform device needs: its name, what it must be (for
/// the message) and the check of its value.
type CapabilityCheck = (&'static str, &'static str, fn(u64) -> bool);

rule! {
    /// An IOMMU has one 4 KiB register page and the capabilities `agaw` (39,
    /// 48 or 57), `fr_offset` and `iotlb_invalidate_offset` (registers inside
    /// that page).
    IOMMU_CAPABILITIES = "hardware-iommu-capabilities" in Hardware;
    fn iommu_capabilities(policy, out) {
        for device in policy.hardware.devices.iter().filter(|d| platform::is_iommu(d)) {
            let checks: [CapabilityCheck; 3] = [
                ("agaw", "39, 48 or 57", |v| IOMMU_AGAWS.contains(&v)),
                ("fr_offset", "an offset with a fault record inside the register page", |v| {
                    fits(v, FAULT_RECORD)
                }),
                (
                    "iotlb_invalidate_offset",
                    "an offset with the IOTLB registers inside the register page",
                    |v| fits(v, IOTLB_REGISTERS),
                ),
            ];
            register_page(device, "IOMMU", out, IOMMU_CAPABILITIES.id);
            for (name, want, ok) in checks {
                capability(device, name, want, ok, "IOMMU", out, IOMMU_CAPABILITIES.id);
            }
        }
    }
}

rule! {
    /// An I/O APIC has one 4 KiB register page and the capabilities
    /// `gsi_base`, `max_redirection_entry` (at most 239) and `source_id` (a
    /// 16-bit PCI requester id).
    IOAPIC_CAPABILITIES = "hardware-ioapic-capabilities" in Hardware;
    fn ioapic_capabilities(policy, out) {
        for device in policy.hardware.devices.iter().filter(|d| platform::is_ioapic(d)) {
            let checks: [CapabilityCheck; 3] = [
                ("gsi_base", "an IRQ number", |v| u32::try_from(v).is_ok()),
                ("max_redirection_entry", "at most 239", |v| v <= IOAPIC_MAX_ENTRY),
                ("source_id", "a 16-bit requester id", |v| u16::try_from(v).is_ok()),
            ];
            register_page(device, "I/O APIC", out, IOAPIC_CAPABILITIES.id);
            for (name, want, ok) in checks {
                capability(device, name, want, ok, "I/O APIC", out, IOAPIC_CAPABILITIES.id);
            }
        }
    }
}

/// Whether `len` bytes of registers at `offset` lie inside the page.
fn fits(offset: u64, len: u64) -> bool {
    offset
        .checked_add(len)
        .is_some_and(|end| end <= REGISTER_PAGE)
}

/// Reports a platform device without exactly one page-sized, page-aligned
/// memory region.
fn register_page(
    device: &crate::model::Device,
    what: &str,
    out: &mut Diagnostics,
    id: &'static str,
) {
    let ok = matches!(
        device.memory.as_slice(),
        [page] if page.size.value == REGISTER_PAGE
            && page.physical_address.value.is_aligned(REGISTER_PAGE)
    );
    if !ok {
        out.error(
            id,
            device.name.span,
            format!(
                "{what} \"{}\" needs exactly one 4 KiB aligned memory region of 4 KiB (its \
                 registers)",
                device.name.as_str()
            ),
        );
    }
}

/// Reports capability `name` of `device` when it is missing, not a number
/// or not `ok`.
fn capability(
    device: &crate::model::Device,
    name: &str,
    want: &str,
    ok: fn(u64) -> bool,
    what: &str,
    out: &mut Diagnostics,
    id: &'static str,
) {
    let span = device.capability(name).map_or(device.name.span, |c| {
        c.value.as_ref().map_or(c.name.span, |v| v.span)
    });
    let problem = match capability_number(device, name) {
        None => format!("has no capability \"{name}\""),
        Some(None) => format!("has a capability \"{name}\" that is not a number"),
        Some(Some(v)) if !ok(v) => format!("has capability \"{name}\" = {v}; expected {want}"),
        Some(Some(_)) => return,
    };
    out.error(
        id,
        span,
        format!("{what} \"{}\" {problem}", device.name.as_str()),
    );
}

rule! {
    /// A policy with device domains runs on a machine with an IOMMU.
    IOMMU_MISSING = "hardware-iommu-missing" in Hardware;
    fn iommu_missing(policy, out) {
        let Some(first) = policy.device_domains.first() else {
            return;
        };
        if !policy.hardware.devices.iter().any(platform::is_iommu) {
            out.error(
                IOMMU_MISSING.id,
                first.span,
                "the policy has device domains but the hardware has no IOMMU",
            )
            .help("describe the machine's VT-d units as devices with the \"iommu\" capability");
        }
    }
}

rule! {
    /// A subject granted an IRQ runs on a machine with an I/O APIC, which
    /// the kernel programs to deliver it.
    IOAPIC_MISSING = "hardware-ioapic-missing" in Hardware;
    fn ioapic_missing(policy, out) {
        if policy.hardware.devices.iter().any(platform::is_ioapic) {
            return;
        }
        for subject in &policy.subjects {
            for (_, _, span) in super::common::owned_irqs(policy, subject) {
                out.error(
                    IOAPIC_MISSING.id,
                    span,
                    format!(
                        "subject \"{}\" is granted an IRQ but the hardware has no I/O APIC",
                        subject.name.as_str()
                    ),
                )
                .help("describe the I/O APIC as a device with the \"ioapic\" capability");
            }
        }
    }
}

rule! {
    /// IOMMUs and I/O APICs are the kernel's: no subject is granted one.
    PLATFORM_DEVICE_GRANTED = "devices-platform-granted" in Devices;
    fn platform_device_granted(policy, out) {
        for subject in &policy.subjects {
            for grant in &subject.devices {
                let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                let what = if platform::is_iommu(device) {
                    "an IOMMU"
                } else if platform::is_ioapic(device) {
                    "an I/O APIC"
                } else {
                    continue;
                };
                out.error(
                    PLATFORM_DEVICE_GRANTED.id,
                    grant.physical.name.span,
                    format!(
                        "device \"{}\" granted to subject \"{}\" is {what}, which only the \
                         kernel may program",
                        device.name.as_str(),
                        subject.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The `reboot` and `poweroff` kernel actions need the system board
    /// device (capability `systemboard`), whose ports they use.
    SYSTEM_BOARD_MISSING = "hardware-system-board-missing" in Hardware;
    fn system_board_missing(policy, out) {
        if policy.hardware.devices.iter().any(platform::is_system_board) {
            return;
        }
        for event in &policy.events {
            let Some(action) = &event.action else { continue };
            if matches!(action.value, KernelAction::Reboot | KernelAction::Poweroff) {
                out.error(
                    SYSTEM_BOARD_MISSING.id,
                    action.span,
                    format!(
                        "event \"{}\" asks for {} but the hardware has no system board device",
                        event.name.as_str(),
                        action.value.policy_name()
                    ),
                )
                .help("describe it as a device with the \"systemboard\" capability");
            }
        }
    }
}

rule! {
    /// A DMA-capable (PCI) device is granted to a subject only on a machine
    /// with an IOMMU, unless the grant says `acceptUnconfinedDma="true"`.
    DMA_UNCONFINED = "devices-dma-unconfined" in Devices;
    fn dma_unconfined(policy, out) {
        if policy.hardware.devices.iter().any(platform::is_iommu) {
            return;
        }
        for subject in &policy.subjects {
            for grant in subject.devices.iter().filter(|g| !g.accept_unconfined_dma.value) {
                let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                if platform::is_dma_capable(device) {
                    out.error(
                        DMA_UNCONFINED.id,
                        grant.physical.name.span,
                        format!(
                            "PCI device \"{}\" granted to subject \"{}\" can reach all memory by \
                             DMA: the hardware has no IOMMU",
                            device.name.as_str(),
                            subject.name.as_str()
                        ),
                    )
                    .help(
                        "run on a machine with VT-d, or write acceptUnconfinedDma=\"true\" on \
                         the grant to accept it",
                    );
                }
            }
        }
    }
}

rule! {
    /// Warning: `acceptUnconfinedDma` is written only where it accepts something: on
    /// a DMA-capable device on a machine without an IOMMU.
    DMA_ACCEPT_UNUSED = "devices-dma-accept-unused" in Devices;
    fn dma_accept_unused(policy, out) {
        let iommu = policy.hardware.devices.iter().any(platform::is_iommu);
        for subject in &policy.subjects {
            for grant in subject.devices.iter().filter(|g| g.accept_unconfined_dma.value) {
                let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                let why = if !platform::is_dma_capable(device) {
                    "the device cannot do DMA"
                } else if iommu {
                    "the IOMMU confines it"
                } else {
                    continue;
                };
                out.warning(
                    DMA_ACCEPT_UNUSED.id,
                    grant.accept_unconfined_dma.span,
                    format!(
                        "acceptUnconfinedDma on device \"{}\" of subject \"{}\" accepts nothing: \
                         {why}",
                        device.name.as_str(),
                        subject.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Reserved memory regions (RMRRs) have unique names.
    RMRR_DUPLICATE = "hardware-rmrr-duplicate" in Hardware;
    fn rmrr_duplicate(policy, out) {
        let mut first: HashMap<&str, Span> = HashMap::new();
        for region in &policy.hardware.reserved_memory {
            if let Some(&span) = first.get(region.name.as_str()) {
                out.error(
                    RMRR_DUPLICATE.id,
                    region.name.span,
                    format!("reserved memory \"{}\" is defined twice", region.name.as_str()),
                )
                .label(span, "first defined here");
            } else {
                first.insert(region.name.as_str(), region.name.span);
            }
        }
    }
}

rule! {
    /// A device's `<reservedMemory ref>` names a reserved memory region of
    /// the hardware.
    RMRR_UNKNOWN = "hardware-rmrr-unknown" in Hardware;
    fn rmrr_unknown(policy, out) {
        let hardware = &policy.hardware;
        for device in &hardware.devices {
            for reference in &device.reserved_memory_refs {
                if !hardware
                    .reserved_memory
                    .iter()
                    .any(|r| r.name.value == reference.value)
                {
                    out.error(
                        RMRR_UNKNOWN.id,
                        reference.span,
                        format!(
                            "device \"{}\" refers to reserved memory \"{}\", which the hardware \
                             does not define",
                            device.name.as_str(),
                            reference.as_str()
                        ),
                    );
                }
            }
        }
    }
}
