//! MSI and MSI-X of owned PCI devices on the hardware side: the boot-time
//! programming of each routed device's capabilities from the spec's `MSI`
//! (kerncore `msi`, docs/kernel.md, "MSI and MSI-X").
//!
//! [`init`] runs on the boot CPU after the VT-d setup and before any
//! subject: for every device with routed messages it walks the device's
//! capability list through the configuration ports (`pcicfg`'s lock) and
//!
//! - MSI: writes the message address (upper half 0) and data kerncore
//!   gives for message 0 (remappable handle = IRQ number with interrupt
//!   remapping, else the owner's APIC id and the host vector), then the
//!   message control: Multiple Message Enable for the routed messages,
//!   MSI Enable clear;
//! - MSI-X: Enable clear, Function Mask set; with interrupt remapping also
//!   the table (found through its BAR, which must lie in the device
//!   memory the composer maps for the kernel): entry `k` gets routed
//!   message `k` (remappable handle = its IRQ number), every entry
//!   masked. The table stays writable by its owner, who maps the BAR;
//!   kerncore `msi` says why interrupt remapping confines that, and why
//!   without remapping MSI-X stays disabled and its table untouched.
//!
//! Every other PCI function a subject owns gets MSI and MSI-X disabled if
//! firmware left them enabled: its owner cannot enable them, so nothing
//! it sends may keep going where firmware pointed it.
//!
//! A device the spec routes that has neither capability stops the boot:
//! the hardware description does not match the machine. After this the
//! owner's configuration writes may set only the enables (`pcicfg`), so
//! address and data stay what this wrote. A routed message arrives as an
//! external-interrupt exit like an I/O APIC line (`interrupts`).

use septum_abi::PhysAddr;
use septum_kerncore::msi::{
    MSI_ENABLE, MSIX_ENABLE, MSIX_ENTRY_BYTES, MSIX_TABLE_SIZE, MsiRoute, capability_offsets,
    msi_layout, msi_setup, msix_entry, msix_setup, msix_table,
};
use septum_kerncore::vtd::SourceId;

use super::pcicfg::{config_read, config_write};
use crate::kprintln;
use crate::system::{MSI, PCI_CONFIG, VTD};

/// Command register: memory space decoding.
const MEMORY_SPACE: u32 = 1 << 1;

/// Why a routed device cannot be programmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsiError {
    /// The device has no MSI and no MSI-X capability (or is absent).
    NoCapability(SourceId),
    /// kerncore has no message for the route (an APIC id above 255 in
    /// compatibility format; the composer refuses that).
    NoMessage(SourceId),
    /// The MSI-X capability names no memory BAR for its table.
    MsixTable(SourceId),
    /// The MSI-X table is not in device memory of the hardware
    /// description (which the composer maps for the kernel).
    MsixUnmapped(SourceId, PhysAddr),
}

impl core::fmt::Display for MsiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoCapability(device) => write!(
                f,
                "MSI: device {device} has no MSI or MSI-X capability, but the policy routes its \
                 MSIs"
            ),
            Self::NoMessage(device) => {
                write!(f, "MSI: no message format for device {device}'s route")
            }
            Self::MsixTable(device) => {
                write!(f, "MSI: device {device}'s MSI-X table is in no memory BAR")
            }
            Self::MsixUnmapped(device, table) => write!(
                f,
                "MSI: device {device}'s MSI-X table at {table} is outside the device memory the \
                 hardware description gives it"
            ),
        }
    }
}

/// The configuration-space offsets of a function's MSI and MSI-X
/// capabilities (kerncore walks the list).
fn find_capabilities(device: SourceId) -> (Option<u8>, Option<u8>) {
    capability_offsets(|offset| config_read(device, offset))
}

/// Program every routed device's MSI and MSI-X from the spec, and quiesce
/// every other owned PCI function. Boot CPU, before any subject runs;
/// does nothing in a system without PCI grants.
pub fn init() -> Result<(), MsiError> {
    for (first, count) in MSI.devices() {
        program(first, count)?;
    }
    for grant in PCI_CONFIG.grants {
        if !MSI.routes_device(grant.device) {
            quiesce(grant.device);
        }
    }
    Ok(())
}

/// An owned function without routed messages: MSI and MSI-X disabled if
/// firmware left them on (they would keep sending where firmware pointed
/// them; the owner cannot enable them, `pcicfg`). Untouched otherwise.
fn quiesce(device: SourceId) {
    let (msi_cap, msix_cap) = find_capabilities(device);
    let mut disabled = false;
    for (cap, enable) in [(msi_cap, MSI_ENABLE), (msix_cap, MSIX_ENABLE)] {
        let Some(cap) = cap else { continue };
        let header = config_read(device, cap);
        if (header >> 16) as u16 & enable != 0 {
            config_write(device, cap, header & !(u32::from(enable) << 16));
            disabled = true;
        }
    }
    if disabled {
        kprintln!(
            "septum: msi: device {device}: MSI/MSI-X left enabled by firmware, disabled (no MSI \
             routed to its owner)"
        );
    }
}

fn program(first: &MsiRoute, count: usize) -> Result<(), MsiError> {
    let device = first.device;
    let (msi_cap, msix_cap) = find_capabilities(device);
    if msi_cap.is_none() && msix_cap.is_none() {
        return Err(MsiError::NoCapability(device));
    }
    let message = MSI.message(first).ok_or(MsiError::NoMessage(device))?;
    if let Some(cap) = msi_cap {
        let header = config_read(device, cap);
        let control = (header >> 16) as u16;
        // Disabled first, so no message goes out half-programmed.
        config_write(
            device,
            cap,
            header & 0xffff | u32::from(control & !MSI_ENABLE) << 16,
        );
        if let Some(layout) = msi_layout(cap, control) {
            config_write(device, layout.address, message.address);
            if let Some(upper) = layout.upper_address {
                config_write(device, upper, 0);
            }
            config_write(device, layout.data, u32::from(message.data));
        }
        let control = msi_setup(control, count);
        config_write(device, cap, header & 0xffff | u32::from(control) << 16);
    }
    let mut table = None;
    if let Some(cap) = msix_cap {
        let header = config_read(device, cap);
        let control = (header >> 16) as u16;
        config_write(
            device,
            cap,
            header & 0xffff | u32::from(msix_setup(control)) << 16,
        );
        if MSI.remapped {
            table = Some(write_msix_table(device, cap, control)?);
        }
    }
    kprintln!(
        "septum: msi: device {device}{}{}{}: {count} message(s) from IRQ {} (host vector {}), \
         {} format{}",
        if VTD.device_name(device).is_some() {
            " ("
        } else {
            ""
        },
        VTD.device_name(device).unwrap_or(""),
        if VTD.device_name(device).is_some() {
            ")"
        } else {
            ""
        },
        first.irq.0,
        u16::from(first.irq.0).wrapping_add(32),
        if MSI.remapped {
            "remappable"
        } else {
            "compatibility"
        },
        match (msi_cap.is_some(), msix_cap.is_some()) {
            (true, true) => ", MSI programmed, MSI-X disabled",
            (true, false) => ", MSI programmed",
            _ => ", MSI-X disabled (no MSI capability)",
        }
    );
    if let Some((address, entries)) = table {
        kprintln!(
            "septum: msi: device {device}: MSI-X table at {address} ({entries} entries) written, every entry masked"
        );
    }
    Ok(())
}

/// Writes `device`'s MSI-X table (interrupt remapping only): entry `k`
/// gets routed message `k`, an entry beyond the routes address 0; all
/// masked. Returns where the table is and its entries.
fn write_msix_table(device: SourceId, cap: u8, control: u16) -> Result<(PhysAddr, u64), MsiError> {
    let entries = u64::from(control & MSIX_TABLE_SIZE).wrapping_add(1);
    let table_register = config_read(device, cap.wrapping_add(4));
    let table = msix_table(table_register, |bar| {
        config_read(device, 0x10u8.wrapping_add(bar.wrapping_mul(4)))
    })
    .ok_or(MsiError::MsixTable(device))?;
    let length = entries.wrapping_mul(MSIX_ENTRY_BYTES);
    if !MSI.mapped(device, table, length) {
        return Err(MsiError::MsixUnmapped(device, table));
    }
    // The BAR answers only with memory decoding on (firmware usually
    // leaves it on); the old command register comes back afterwards.
    let command = config_read(device, 0x04);
    config_write(device, 0x04, command | MEMORY_SPACE);
    let mut messages = MSI.messages(device);
    for k in 0..entries {
        let entry = msix_entry(messages.next().and_then(|route| MSI.message(route)));
        let at = table.get().wrapping_add(k.wrapping_mul(MSIX_ENTRY_BYTES)) as *mut u32;
        for (i, word) in (0..).zip(entry) {
            // Safety: `MSI.mapped` checked that the whole table lies in
            // device memory of this device, which the composer maps
            // identity, read-write, uncached in the kernel's tables for
            // exactly this; MSI-X entries are aligned dwords. A masked
            // entry with a remappable address can only raise this
            // device's own composed IRQs.
            unsafe { at.wrapping_add(i).write_volatile(word) };
        }
    }
    config_write(device, 0x04, command);
    Ok((table, entries))
}

/// The MSI capability's address and data as the hardware has them now,
/// and MSI Enable (for the VT-d probe's read-back).
#[cfg(feature = "vtd-probe")]
pub fn read_back(device: SourceId) -> Option<(septum_kerncore::msi::Message, bool)> {
    let (Some(cap), _) = find_capabilities(device) else {
        return None;
    };
    let control = (config_read(device, cap) >> 16) as u16;
    let layout = msi_layout(cap, control)?;
    Some((
        septum_kerncore::msi::Message {
            address: config_read(device, layout.address),
            data: config_read(device, layout.data) as u16,
        },
        control & MSI_ENABLE != 0,
    ))
}

/// The MSI capability's offset of `device` (for the VT-d probe).
#[cfg(feature = "vtd-probe")]
pub fn msi_capability(device: SourceId) -> Option<u8> {
    find_capabilities(device).0
}

/// The MSI-X capability's offset of `device` and its message control (for
/// the VT-d probe).
#[cfg(feature = "vtd-probe")]
pub fn msix_capability(device: SourceId) -> Option<(u8, u16)> {
    let cap = find_capabilities(device).1?;
    Some((cap, (config_read(device, cap) >> 16) as u16))
}
