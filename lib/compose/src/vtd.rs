//! The VT-d tables: what every device may reach by DMA and which
//! interrupts it may raise, as kernel regions the IOMMUs read.
//!
//! From the policy's `<deviceDomains>` and device grants this step builds,
//! in one placed region each (owner: the kernel; no subject may map them,
//! `layers` checks):
//!
//! - the root table (256 root entries, one per PCI bus) and one context
//!   table per bus that has a device in a domain; a device's context entry
//!   points at its domain's second-level tables and carries the domain id.
//!   Devices in no domain have no context entry, so their DMA is blocked;
//! - per device domain, second-level page tables (3 levels for a 39-bit
//!   unit, 4 for 48 bits) mapping each of the domain's windows, 4 KiB
//!   pages, read or read-write as the policy says, and the reserved memory
//!   regions (RMRRs) of its `mapReservedMemory` devices 1:1 read-write
//!   (firmware keeps using them, e.g. for USB legacy emulation), nothing
//!   else;
//! - the interrupt remapping table, 256 entries indexed by IRQ number: one
//!   present entry per IRQ a subject owns (an I/O APIC line, requester id
//!   the I/O APIC's, or a numbered MSI of an owned device, requester id the
//!   device's), fixed delivery to vector 32 + IRQ on the owner's CPU. Every
//!   other index is not present, and compatibility-format interrupts are
//!   blocked by the kernel (it never sets GCMD.CFI), so a device can raise
//!   only the interrupts its entries allow.
//!
//! Everything is described in the kernel's [`VtdSpec`], emitted as `pub
//! static VTD` in `spec.rs`. The bit layouts are from the VT-d
//! specification (rev. 4.1): root and context entries 9.1-9.3,
//! second-level entries 9.8, interrupt remapping table entries 9.10.

use std::collections::BTreeMap;

use septum_abi::PhysAddr;
use septum_abi::layout::PAGE_SIZE;
use septum_abi::units::DmaAddr;
use septum_kerncore::spec::Owned;
use septum_kerncore::vtd::{DmaWindow, DomainSpec, IommuSpec, SourceId, VtdDevice, VtdSpec};
use septum_policy::model::Policy;
use septum_policy::platform;

use crate::error::ComposeError;
use crate::placement::{Placer, RegionRequest};
use crate::system::{RegionIndex, RegionKind};

/// Entries of the interrupt remapping table (IRQ numbers 0..=220 fit).
pub const INTERRUPT_ENTRIES_LOG2: u8 = 8;
/// Host vector of IRQ n: 32 + n (the kernel's routing convention).
const IRQ_VECTOR_BASE: u32 = 32;

/// What the composer needs of the policy for VT-d, in its own terms.
#[derive(Clone, Debug, Default)]
pub struct VtdInput {
    /// The IOMMUs of the hardware description.
    pub iommus: Vec<IommuSpec>,
    /// The device domains, in policy order.
    pub domains: Vec<DomainInput>,
    /// Interrupts subjects own, by IRQ number.
    pub interrupts: Vec<InterruptRoute>,
}

/// One device domain.
#[derive(Clone, Debug)]
pub struct DomainInput {
    /// Name.
    pub name: String,
    /// Its devices: name and requester id.
    pub devices: Vec<(String, SourceId)>,
    /// Its windows: the `<memory>` region (index into the system's
    /// regions), where devices see it, whether they may write it.
    pub windows: Vec<(usize, DmaAddr, bool)>,
    /// Reserved memory (RMRRs) of devices with `mapReservedMemory`, mapped
    /// 1:1 read-write: start and size.
    pub reserved: Vec<(PhysAddr, u64)>,
}

/// An interrupt a subject owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptRoute {
    /// IRQ number (= remapping table index).
    pub irq: u32,
    /// Who may raise it: the I/O APIC for a line, the device for an MSI.
    pub source: SourceId,
    /// Level-triggered (PCI lines) or edge (ISA lines, MSIs).
    pub level: bool,
    /// APIC id of the CPU the owner runs on.
    pub destination: u32,
}

/// The requester id of a PCI device of the policy.
fn source_id(pci: &septum_policy::model::Pci) -> SourceId {
    SourceId::new(pci.bus.value, pci.device.value, pci.function.value)
}

/// Reads the VT-d input from a validated policy.
pub fn input(policy: &Policy) -> VtdInput {
    let hardware = &policy.hardware;
    let iommus = platform::iommus(hardware)
        .iter()
        .map(|u| IommuSpec {
            registers: u.registers,
            fault_recording_offset: u.fault_recording_offset,
            iotlb_offset: u.iotlb_offset,
            agaw: u.agaw,
        })
        .collect();
    let domains = policy
        .device_domains
        .iter()
        .map(|d| DomainInput {
            reserved: d
                .devices
                .iter()
                .filter(|dev| dev.map_reserved_memory.value)
                .filter_map(|dev| dev.physical.get())
                .flat_map(|dev| &policy.device(dev).reserved_memory_refs)
                .filter_map(|name| {
                    hardware
                        .reserved_memory
                        .iter()
                        .find(|r| r.name.value == name.value)
                })
                .map(|r| (r.physical_address.value, r.size.value))
                .collect(),
            name: d.name.value.clone(),
            devices: d
                .devices
                .iter()
                .filter_map(|dev| {
                    let device = policy.device(dev.physical.get()?);
                    Some((device.name.value.clone(), source_id(device.pci.as_ref()?)))
                })
                .collect(),
            windows: d
                .memory
                .iter()
                .filter_map(|m| {
                    Some((
                        m.physical.get()?.index(),
                        m.virtual_address.value,
                        m.writable.value,
                    ))
                })
                .collect(),
        })
        .collect();
    let ioapics = platform::ioapics(hardware);
    let mut interrupts = Vec::new();
    for subject in &policy.subjects {
        let destination = hardware
            .processor
            .cpus
            .get(subject.cpu.value.0 as usize)
            .map_or(0, |c| c.apic_id.value);
        for grant in &subject.devices {
            let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                continue;
            };
            let irqs: Vec<_> = if grant.is_whole_device() {
                device.irqs.iter().collect()
            } else {
                grant
                    .irqs
                    .iter()
                    .filter_map(|i| device.irqs.get(i.physical.get()?.index()))
                    .collect()
            };
            for irq in irqs {
                let line = irq.number.value;
                if let Some(ioapic) = ioapics.iter().find(|a| a.serves(line)) {
                    interrupts.push(InterruptRoute {
                        irq: line,
                        source: SourceId(ioapic.source_id),
                        level: device.pci.is_some(),
                        destination,
                    });
                }
                let Some(pci) = &device.pci else { continue };
                for msi in &irq.msis {
                    if let Some(number) = &msi.number {
                        interrupts.push(InterruptRoute {
                            irq: number.value,
                            source: source_id(pci),
                            level: false,
                            destination,
                        });
                    }
                }
            }
        }
    }
    VtdInput {
        iommus,
        domains,
        interrupts,
    }
}

/// Second-level page tables of one domain, built in memory then placed.
struct SecondLevel {
    /// Table pages; page 0 is the root. Each is 512 entries.
    pages: Vec<[u64; 512]>,
    /// Levels (3 or 4).
    levels: u32,
}

/// Read and write permission bits of a second-level entry.
const SL_READ: u64 = 1;
const SL_WRITE: u64 = 1 << 1;

impl SecondLevel {
    fn new(levels: u32) -> Self {
        Self {
            pages: vec![[0; 512]],
            levels,
        }
    }

    /// Maps the 4 KiB page at `address` to `physical`. Table pointers are
    /// page indices until [`Self::to_bytes`] turns them into addresses.
    fn map(&mut self, address: u64, physical: u64, writable: bool) -> Result<(), String> {
        let mut page = 0;
        for level in (1..self.levels).rev() {
            let index = ((address >> (12 + 9 * level)) & 0x1ff) as usize;
            let entry = self.pages[page][index];
            page = if entry == 0 {
                self.pages.push([0; 512]);
                let new = self.pages.len() - 1;
                // Non-leaf entries allow both; the leaf decides.
                self.pages[page][index] = (new as u64) << 12 | SL_READ | SL_WRITE;
                new
            } else {
                (entry >> 12) as usize
            };
        }
        let index = ((address >> 12) & 0x1ff) as usize;
        if self.pages[page][index] != 0 {
            return Err(format!("I/O virtual address {address:#x} is mapped twice"));
        }
        let rights = if writable {
            SL_READ | SL_WRITE
        } else {
            SL_READ
        };
        self.pages[page][index] = physical | rights;
        Ok(())
    }

    /// The tables as bytes for a region at `base`.
    fn to_bytes(&self, base: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pages.len() * 4096);
        // A non-leaf entry holds a page index, which becomes `base + index
        // * 4 KiB`; children come after their parent, so one pass gives
        // every page its depth.
        let mut depth = vec![0u32; self.pages.len()];
        for (p, page) in self.pages.iter().enumerate() {
            for &entry in page.iter().filter(|&&e| e != 0) {
                if depth[p] + 1 < self.levels {
                    depth[(entry >> 12) as usize] = depth[p] + 1;
                }
            }
        }
        for (p, page) in self.pages.iter().enumerate() {
            for &entry in page {
                let value = if entry != 0 && depth[p] + 1 < self.levels {
                    let child = entry >> 12;
                    (base + child * PAGE_SIZE) | (entry & 0xfff)
                } else {
                    entry
                };
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }
}

/// Table depth for an adjusted guest address width.
fn levels(agaw: u8) -> u32 {
    if agaw >= 48 { 4 } else { 3 }
}

/// Context entry address width field for a table depth (2: 39 bits, 3
/// levels; 3: 48 bits; 4 levels). VT-d spec 9.3, AW.
fn context_width(levels: u32) -> u64 {
    if levels == 4 { 2 } else { 1 }
}

/// Builds and places every VT-d table; `window_physical` gives the placed
/// address and size of a `<memory>` region. Returns the kernel's spec.
pub fn compose(
    input: &VtdInput,
    placer: &mut Placer,
    window_physical: &dyn Fn(usize) -> (PhysAddr, u64),
) -> Result<VtdSpec<Owned>, ComposeError> {
    let fail = |message: String| ComposeError::new(format!("VT-d tables: {message}"));
    // Without a remapping unit there is nothing to program (the policy
    // rules allow that only without domains and with unconfined DMA
    // accepted explicitly).
    if input.iommus.is_empty() {
        return Ok(VtdSpec {
            iommus: Vec::new(),
            root_table: PhysAddr(0),
            interrupt_table: PhysAddr(0),
            interrupt_entries_log2: 0,
            devices: Vec::new(),
            domains: Vec::new(),
        });
    }
    // All units get the same tables: build for the narrowest width.
    let agaw = input.iommus.iter().map(|u| u.agaw).min().unwrap_or(39);
    let depth = levels(agaw);
    let width_limit = 1u64 << agaw;

    let mut domains = Vec::with_capacity(input.domains.len());
    let mut roots = Vec::with_capacity(input.domains.len());
    for domain in &input.domains {
        let mut tables = SecondLevel::new(depth);
        let mut windows = Vec::new();
        // The policy's windows first (the spec lists them in policy order),
        // then the RMRRs 1:1; an RMRR over a window is a "mapped twice"
        // error.
        let identity = domain.reserved.iter().map(|&(start, size)| {
            let first = start.get() & !(PAGE_SIZE - 1);
            let end = start.get().saturating_add(size).next_multiple_of(PAGE_SIZE);
            (DmaAddr(first), PhysAddr(first), end - first, true)
        });
        let policy = domain.windows.iter().map(|&(region, address, writable)| {
            let (physical, size) = window_physical(region);
            (address, physical, size, writable)
        });
        for (address, physical, size, writable) in policy.chain(identity) {
            let end = address
                .get()
                .checked_add(size)
                .filter(|&e| e <= width_limit);
            if end.is_none() {
                return Err(fail(format!(
                    "domain \"{}\": window at {address} does not fit {agaw} bits",
                    domain.name
                )));
            }
            for offset in (0..size).step_by(PAGE_SIZE as usize) {
                tables
                    .map(address.get() + offset, physical.get() + offset, writable)
                    .map_err(|e| fail(format!("domain \"{}\": {e}", domain.name)))?;
            }
            windows.push(DmaWindow {
                address,
                physical,
                size,
                writable,
            });
        }
        let index = placer.place(RegionRequest::kernel(
            &format!("vtd_{}", domain.name),
            RegionKind::VtdTables,
            tables.pages.len() as u64 * PAGE_SIZE,
        ))?;
        let base = placer.region(index).start;
        placer.region_mut(index).content = tables.to_bytes(base.get());
        roots.push(base);
        domains.push(DomainSpec {
            name: domain.name.clone(),
            windows,
        });
    }

    // Context tables: one per bus that has a device in a domain.
    let mut buses: BTreeMap<u8, Vec<(u8, usize)>> = BTreeMap::new();
    let mut devices = Vec::new();
    for (d, domain) in input.domains.iter().enumerate() {
        for (name, source) in &domain.devices {
            buses
                .entry(source.bus())
                .or_default()
                .push((source.devfn(), d));
            devices.push(VtdDevice {
                source: *source,
                name: name.clone(),
                domain: u16::try_from(d).map_err(|_| fail("too many domains".into()))?,
            });
        }
    }
    let root_index = placer.place(RegionRequest::kernel(
        "vtd_root",
        RegionKind::VtdTables,
        PAGE_SIZE * (1 + buses.len() as u64),
    ))?;
    let root_base = placer.region(root_index).start.get();
    let mut bytes = vec![0u8; PAGE_SIZE as usize * (1 + buses.len())];
    for (n, (bus, functions)) in buses.iter().enumerate() {
        let context = root_base + PAGE_SIZE * (1 + n as u64);
        write_entry(&mut bytes, 0, usize::from(*bus), context | 1, 0);
        for &(devfn, domain) in functions {
            let low = roots[domain].get() | 1;
            // Domain id 0 is reserved in some modes: ids start at 1.
            let high = context_width(depth) | ((domain as u64 + 1) << 8);
            write_entry(&mut bytes, 1 + n, usize::from(devfn), low, high);
        }
    }
    placer.region_mut(root_index).content = bytes;

    let interrupt_table = interrupt_table(input, placer)?;
    Ok(VtdSpec {
        iommus: input.iommus.clone(),
        root_table: PhysAddr(root_base),
        interrupt_table,
        interrupt_entries_log2: INTERRUPT_ENTRIES_LOG2,
        devices,
        domains,
    })
}

/// Writes a 128-bit entry `index` of table page `page`.
fn write_entry(bytes: &mut [u8], page: usize, index: usize, low: u64, high: u64) {
    let at = page * PAGE_SIZE as usize + index * 16;
    bytes[at..at + 8].copy_from_slice(&low.to_le_bytes());
    bytes[at + 8..at + 16].copy_from_slice(&high.to_le_bytes());
}

/// The interrupt remapping table (one 4 KiB page, 256 entries).
fn interrupt_table(input: &VtdInput, placer: &mut Placer) -> Result<PhysAddr, ComposeError> {
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    for route in &input.interrupts {
        let index = route.irq as usize;
        if index >= 1 << INTERRUPT_ENTRIES_LOG2 {
            return Err(ComposeError::new(format!(
                "VT-d tables: IRQ {} beyond the interrupt remapping table",
                route.irq
            )));
        }
        let vector = u64::from(IRQ_VECTOR_BASE + route.irq);
        // P, fixed delivery, physical destination; TM for level lines;
        // xAPIC destination id in bits 47:40.
        let low = 1
            | u64::from(route.level) << 4
            | vector << 16
            | u64::from(route.destination & 0xff) << 40;
        // SID, SQ = 0 (all 16 bits compared), SVT = 01 (verify SID).
        let high = u64::from(route.source.0) | 1 << 18;
        write_entry(&mut bytes, 0, index, low, high);
    }
    let index: RegionIndex = placer.place(
        RegionRequest::kernel("vtd_interrupts", RegionKind::VtdTables, PAGE_SIZE)
            .with_content(bytes),
    )?;
    Ok(placer.region(index).start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: &[u8], index: usize) -> u64 {
        u64::from_le_bytes(bytes[index * 8..index * 8 + 8].try_into().unwrap())
    }

    #[test]
    fn second_level_tables_map_each_page_with_its_rights() {
        let mut sl = SecondLevel::new(3);
        sl.map(0x10_0000, 0x40_0000, true).unwrap();
        sl.map(0x10_1000, 0x40_1000, false).unwrap();
        assert!(sl.map(0x10_1000, 0x50_0000, false).is_err());
        // Root, one directory-pointer... three levels: root, PD, PT.
        assert_eq!(sl.pages.len(), 3);
        let bytes = sl.to_bytes(0x20_0000);
        // Root entry 0 -> page 1, PD entry 0 -> page 2 (0x10_0000 >> 21 = 0).
        assert_eq!(entry(&bytes, 0), 0x20_1000 | 3);
        assert_eq!(entry(&bytes, 512), 0x20_2000 | 3);
        // PT entries 0x100 and 0x101: the pages, RW and R.
        assert_eq!(entry(&bytes, 1024 + 0x100), 0x40_0000 | 3);
        assert_eq!(entry(&bytes, 1024 + 0x101), 0x40_1000 | 1);
        assert_eq!(entry(&bytes, 1024 + 0x102), 0);
    }

    #[test]
    fn four_level_tables_for_48_bit_units() {
        let mut sl = SecondLevel::new(levels(48));
        sl.map(0x80_0000_0000, 0x1000, true).unwrap();
        assert_eq!(sl.pages.len(), 4);
        let bytes = sl.to_bytes(0);
        // 0x80_0000_0000 = 512 GiB: PML4 index 1.
        assert_eq!(entry(&bytes, 1), 0x1000 | 3);
    }
}
