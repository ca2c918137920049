//! The machine's platform devices, read as what they are to the kernel.
//!
//! The anchor's hardware format marks the system board, I/O APICs and
//! IOMMUs (VT-d remapping units) by a `<capability>` on an ordinary
//! `<device>` and keeps their parameters as capability text ("agaw" = 39,
//! "source_id" = `16#ff00#`). The rules and the composer need the same
//! reading of those strings, so it lives here once: [`Iommu::of`] and
//! [`IoApic::of`] give a typed view of a well-formed device and `None`
//! otherwise; the rules (`rules::platform`) report what makes one
//! ill-formed, so the composer may rely on the views of a validated policy.

use septum_abi::units::PhysAddr;

use crate::model::{Device, DeviceIdx, Hardware};
use crate::parse::number::parse_u64;

/// Capability that marks the system board (reset and power-off ports).
pub const SYSTEM_BOARD: &str = "systemboard";
/// Capability that marks an I/O APIC.
pub const IOAPIC: &str = "ioapic";
/// Capability that marks a VT-d DMA remapping unit.
pub const IOMMU: &str = "iommu";

/// Size of the register page of an IOMMU or I/O APIC (4 KiB).
pub const REGISTER_PAGE: u64 = 0x1000;

/// Adjusted guest address widths a VT-d unit may report (3-, 4- and
/// 5-level second-level tables).
pub const IOMMU_AGAWS: [u64; 3] = [39, 48, 57];
/// Bytes of the IOTLB invalidate register at `iotlb_invalidate_offset`
/// (VT-d spec 10.4.8: ECAP.IRO * 16 + 8).
pub const IOTLB_REGISTERS: u64 = 8;
/// Bytes of one fault recording register (VT-d spec 10.4.14).
pub const FAULT_RECORD: u64 = 16;
/// Most redirection entries an I/O APIC can have (an 8-bit "max entry").
pub const IOAPIC_MAX_ENTRY: u64 = 239;

/// The value of capability `name` of `device` as a number: `None` when
/// the capability is absent, `Some(None)` when it has no text or the text
/// is not a number in one of the policy's spellings.
pub fn capability_number(device: &Device, name: &str) -> Option<Option<u64>> {
    let capability = device.capability(name)?;
    Some(
        capability
            .value
            .as_ref()
            .and_then(|v| parse_u64(v.as_str()).ok()),
    )
}

/// Whether `device` is an IOMMU.
pub fn is_iommu(device: &Device) -> bool {
    device.capability(IOMMU).is_some()
}

/// Whether `device` is an I/O APIC.
pub fn is_ioapic(device: &Device) -> bool {
    device.capability(IOAPIC).is_some()
}

/// Whether `device` is the system board.
pub fn is_system_board(device: &Device) -> bool {
    device.capability(SYSTEM_BOARD).is_some()
}

/// Whether `device` can master the bus (DMA): every PCI function can,
/// except the platform's own remapping units.
pub fn is_dma_capable(device: &Device) -> bool {
    device.pci.is_some() && !is_iommu(device) && !is_ioapic(device)
}

/// The one 4 KiB register page of an IOMMU or I/O APIC.
fn register_page(device: &Device) -> Option<PhysAddr> {
    match device.memory.as_slice() {
        [page]
            if page.size.value == REGISTER_PAGE
                && page.physical_address.value.is_aligned(REGISTER_PAGE) =>
        {
            Some(page.physical_address.value)
        }
        _ => None,
    }
}

/// A well-formed VT-d remapping unit of the hardware description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iommu {
    /// The device.
    pub device: DeviceIdx,
    /// Its register page.
    pub registers: PhysAddr,
    /// Adjusted guest address width in bits (39, 48 or 57).
    pub agaw: u8,
    /// Offset of the first fault recording register in the page.
    pub fault_recording_offset: u16,
    /// Offset of the IOTLB invalidate register in the page.
    pub iotlb_offset: u16,
}

impl Iommu {
    /// `device` read as an IOMMU, if it is one and well-formed.
    pub fn of(index: DeviceIdx, device: &Device) -> Option<Self> {
        if !is_iommu(device) {
            return None;
        }
        let registers = register_page(device)?;
        let agaw = capability_number(device, "agaw")??;
        let fault = capability_number(device, "fr_offset")??;
        let iotlb = capability_number(device, "iotlb_invalidate_offset")??;
        let fits = |offset: u64, len: u64| {
            offset
                .checked_add(len)
                .is_some_and(|end| end <= REGISTER_PAGE)
        };
        if !IOMMU_AGAWS.contains(&agaw)
            || !fits(fault, FAULT_RECORD)
            || !fits(iotlb, IOTLB_REGISTERS)
        {
            return None;
        }
        Some(Self {
            device: index,
            registers,
            agaw: u8::try_from(agaw).ok()?,
            fault_recording_offset: u16::try_from(fault).ok()?,
            iotlb_offset: u16::try_from(iotlb).ok()?,
        })
    }
}

/// A well-formed I/O APIC of the hardware description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// The device.
    pub device: DeviceIdx,
    /// Its register page.
    pub registers: PhysAddr,
    /// First global system interrupt (IRQ number) it serves.
    pub gsi_base: u32,
    /// Index of its last redirection entry (entries are 0..=this).
    pub max_redirection_entry: u32,
    /// Its PCI source id (bus:dev.fn), which interrupt remapping checks.
    pub source_id: u16,
}

impl IoApic {
    /// `device` read as an I/O APIC, if it is one and well-formed.
    pub fn of(index: DeviceIdx, device: &Device) -> Option<Self> {
        if !is_ioapic(device) {
            return None;
        }
        let registers = register_page(device)?;
        let gsi_base = capability_number(device, "gsi_base")??;
        let max = capability_number(device, "max_redirection_entry")??;
        let source_id = capability_number(device, "source_id")??;
        if max > IOAPIC_MAX_ENTRY {
            return None;
        }
        Some(Self {
            device: index,
            registers,
            gsi_base: u32::try_from(gsi_base).ok()?,
            max_redirection_entry: u32::try_from(max).ok()?,
            source_id: u16::try_from(source_id).ok()?,
        })
    }

    /// Whether IRQ (GSI) `number` is one of its inputs.
    pub fn serves(&self, number: u32) -> bool {
        number >= self.gsi_base && number - self.gsi_base <= self.max_redirection_entry
    }
}

/// Every well-formed IOMMU, in document order.
pub fn iommus(hardware: &Hardware) -> Vec<Iommu> {
    hardware
        .devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Iommu::of(DeviceIdx(u32::try_from(i).ok()?), d))
        .collect()
}

/// Every well-formed I/O APIC, in document order.
pub fn ioapics(hardware: &Hardware) -> Vec<IoApic> {
    hardware
        .devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| IoApic::of(DeviceIdx(u32::try_from(i).ok()?), d))
        .collect()
}
