//! MSI routes of a composition: which message of which owned PCI device
//! goes to which subject, at which vector (kerncore `msi`, docs/kernel.md,
//! "MSI and MSI-X").
//!
//! Every `<irq logical physical vector>` a subject is granted by name whose
//! device IRQ has `<msi number>` children routes those messages: message
//! `k` (document order) raises IRQ `number`, arrives as host vector
//! `32 + number` (the I/O APIC lines' allocation) on the owner's CPU and
//! is injected into the owner at `vector + k`. A whole-device grant routes
//! none, as for lines (no vector was chosen). The interrupt remapping
//! table entries for these IRQs come from `vtd` (same grants, same CPU).
//!
//! With interrupt remapping the kernel also writes each routed device's
//! MSI-X table (in one of its BARs) at boot, so [`windows`] lists the
//! device memory of every routed device, which the composer maps for the
//! kernel (identity, read-write, uncached, no execute). Without remapping
//! the kernel leaves MSI-X disabled and maps nothing.
//!
//! The checks here are the ones the kernel's routing needs beyond the
//! policy rules (which already keep MSI numbers in 48..=220 and
//! consecutive within their `<irq>`), each naming the subject:
//!
//! - every MSI of the `<irq>` has an IRQ number (the rules already say
//!   all or none; an `<irq>` whose MSIs have none routes only its line,
//!   so real descriptions without numbers compose as before), and its
//!   device is a PCI device;
//! - a device's messages come from one granted `<irq>` (message numbers
//!   and IRQ numbers then run in step);
//! - no MSI's IRQ number is also a routed I/O APIC line or another routed
//!   device's MSI (both would arrive at the same host vector, and the
//!   kernel would hand both to the first route's owner);
//! - each `vector + k` is a usable vector (at most 255, not 253/254) and
//!   not one the subject is already given for something else;
//! - the owner's APIC id fits 8 bits (the xAPIC destination format of
//!   both a compatibility-format message and a remapping table entry);
//! - without interrupt remapping (no IOMMU) the kernel writes
//!   compatibility-format messages: several messages must be a power of
//!   two (at most 32) starting at an aligned host vector
//!   ([`septum_kerncore::msi::compatible_block`]).

use std::collections::BTreeSet;

use septum_abi::SubjectId;
use septum_abi::layout::PAGE_SIZE;
use septum_kerncore::irq::{self, EventVector, IrqLine, IrqRoute, Vector};
use septum_kerncore::msi::{DeviceWindow, MsiRoute, compatible_block};
use septum_kerncore::spec::ApicId;

use crate::error::{ComposeError, Origin};
use crate::input::SystemInput;

/// Vectors the kernel keeps (IOMMU faults, IPIs).
const RESERVED: [u8; 2] = [253, 254];

/// The MSI routes of `input`, given its I/O APIC line routes and event
/// vectors; `remapped` says whether the machine has interrupt remapping.
pub fn routes(
    input: &SystemInput,
    lines: &[IrqRoute],
    event_vectors: &[EventVector],
    remapped: bool,
) -> Result<Vec<MsiRoute>, ComposeError> {
    let mut routes: Vec<MsiRoute> = Vec::new();
    for (si, s) in input.subjects.iter().enumerate() {
        let owner = SubjectId(u16::try_from(si).unwrap_or(u16::MAX));
        let located = |message: String| {
            ComposeError::new(format!("subject \"{}\": {message}", s.name)).at(Origin::Subject(si))
        };
        // Every vector the subject is given otherwise.
        let mut taken: BTreeSet<u8> = lines
            .iter()
            .filter(|r| r.owner == owner)
            .map(|r| r.vector.0)
            .chain(
                event_vectors
                    .iter()
                    .filter(|e| e.subject == owner)
                    .map(|e| e.vector.0),
            )
            .collect();
        for grant in &s.devices {
            let Some(hardware) = input.hardware.devices.get(grant.device) else {
                continue;
            };
            let device = hardware.name.as_str();
            // Unnumbered MSIs (the anchor's generated descriptions leave
            // the numbers out; the rules allow all or none) are not routed:
            // the IRQ's line is, as before MSIs were.
            let with_msis: Vec<_> = grant
                .irqs
                .iter()
                .filter(|g| g.msis.iter().any(Option::is_some))
                .collect();
            let Some(first) = with_msis.first() else {
                continue;
            };
            if with_msis.len() > 1 {
                return Err(located(format!(
                    "device \"{device}\": MSIs of more than one granted <irq> (\"{}\", \"{}\"); \
                     the kernel routes one consecutive block of messages per device",
                    first.logical, with_msis[1].logical
                )));
            }
            let Some(source) = hardware.pci else {
                return Err(located(format!(
                    "device \"{device}\": IRQ \"{}\" has <msi> children, but the device has no \
                     <pci> address to program them",
                    first.logical
                )));
            };
            if routes.iter().any(|r| r.device == source) {
                return Err(located(format!(
                    "device \"{device}\": its MSIs are granted twice; one subject owns a \
                     device's messages"
                )));
            }
            let Some(&apic_id) = input.hardware.apic_ids.get(s.cpu as usize) else {
                return Err(located(format!("CPU {} has no local APIC id", s.cpu)));
            };
            let count = first.msis.len();
            for (k, number) in first.msis.iter().enumerate() {
                let Some(number) = *number else {
                    return Err(located(format!(
                        "device \"{device}\": MSI {k} of IRQ \"{}\" has no IRQ number (<msi \
                         number>), so it cannot be routed",
                        first.logical
                    )));
                };
                let irq = u8::try_from(number)
                    .ok()
                    .filter(|&n| irq::host_vector(IrqLine(n)).is_some());
                let Some(irq) = irq else {
                    return Err(located(format!(
                        "device \"{device}\": MSI IRQ number {number} has no host vector (at \
                         most {})",
                        irq::MAX_LINE
                    )));
                };
                if let Some(other) = routes.iter().find(|r| r.irq == IrqLine(irq)) {
                    let other = input
                        .hardware
                        .devices
                        .iter()
                        .find(|d| d.pci == Some(other.device))
                        .map_or("?", |d| d.name.as_str());
                    return Err(located(format!(
                        "device \"{device}\": MSI IRQ number {number} is also an MSI of device \
                         \"{other}\"; both would arrive at host vector {} and go to one owner",
                        32 + u32::from(irq)
                    )));
                }
                if lines.iter().any(|l| l.line == IrqLine(irq)) {
                    return Err(located(format!(
                        "device \"{device}\": MSI IRQ number {number} is also a routed I/O APIC \
                         line; both would arrive at host vector {}",
                        32 + u32::from(irq)
                    )));
                }
                let vector = u8::try_from(usize::from(first.vector) + k)
                    .ok()
                    .filter(|v| !RESERVED.contains(v));
                let Some(vector) = vector else {
                    return Err(located(format!(
                        "device \"{device}\": MSI {k} of IRQ \"{}\" would be injected at vector \
                         {} + {k}, which is reserved or beyond 255",
                        first.logical, first.vector
                    )));
                };
                if k > 0 && !taken.insert(vector) {
                    return Err(located(format!(
                        "device \"{device}\": MSI {k} of IRQ \"{}\" would be injected at vector \
                         {vector} (= {} + {k}), which the subject is already given",
                        first.logical, first.vector
                    )));
                }
                routes.push(MsiRoute {
                    device: source,
                    message: u8::try_from(k).unwrap_or(u8::MAX),
                    irq: IrqLine(irq),
                    owner,
                    apic_id: ApicId(apic_id),
                    vector: Vector(vector),
                });
            }
            if apic_id > 0xff {
                return Err(located(format!(
                    "device \"{device}\": an MSI names its CPU in 8 bits (xAPIC destination, \
                     in the message or the interrupt remapping entry), but CPU {} has APIC id \
                     {apic_id}",
                    s.cpu
                )));
            }
            if !remapped {
                let base = routes
                    .iter()
                    .rev()
                    .nth(count - 1)
                    .and_then(|r| irq::host_vector(r.irq));
                if count > 1 && !base.is_some_and(|b| compatible_block(b, count)) {
                    return Err(located(format!(
                        "device \"{device}\": without interrupt remapping {count} MSIs need a \
                         power-of-two count (at most 32) whose first host vector (32 + IRQ \
                         number) is a multiple of it"
                    )));
                }
            }
        }
    }
    Ok(routes)
}

/// The device memory the kernel maps to write the MSI-X tables of the
/// devices `routes` names (with interrupt remapping only): every
/// `<memory>` of each such device, widened to whole pages.
pub fn windows(input: &SystemInput, routes: &[MsiRoute], remapped: bool) -> Vec<DeviceWindow> {
    if !remapped {
        return Vec::new();
    }
    let mut out: Vec<DeviceWindow> = Vec::new();
    for route in routes {
        if out.iter().any(|w| w.device == route.device) {
            continue;
        }
        let Some(device) = input
            .hardware
            .devices
            .iter()
            .find(|d| d.pci == Some(route.device))
        else {
            continue;
        };
        for &(start, size) in &device.memory {
            let first = start.get() & !(PAGE_SIZE - 1);
            // In u128: memory that ends at the top of the address space
            // (hostile input) must not overflow; such a window is refused
            // later, as beyond the kernel's address space.
            let end = (u128::from(start.get()) + u128::from(size))
                .next_multiple_of(u128::from(PAGE_SIZE));
            let size = u64::try_from(end - u128::from(first)).unwrap_or(!(PAGE_SIZE - 1));
            out.push(DeviceWindow {
                device: route.device,
                start: septum_abi::PhysAddr(first),
                size,
            });
        }
    }
    out
}
