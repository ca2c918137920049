//! VT-d (DMA and interrupt remapping): what the composer hands the kernel,
//! and every decision the kernel takes about the remapping units, as pure
//! functions.
//!
//! The composer builds the tables (root table, one context table per PCI
//! bus that has a device in a domain, second-level page tables per device
//! domain, the interrupt remapping table) as image regions and describes
//! them in a [`VtdSpec`], emitted into `spec.rs` as its own `pub static VTD`
//! beside `SPEC` (so the spec literals other tests build stay as they are).
//! At boot the kernel points every IOMMU of the spec at those tables and
//! turns on DMA and interrupt remapping before any subject runs; the arch
//! layer (`kernel/src/arch/x86_64/vtd.rs`) only reads and writes registers.
//! Here is what it writes and how it reads what it finds:
//!
//! - [`check_unit`]: the unit can do what the tables need (second-level
//!   table depth from CAP.SAGAW, interrupt remapping from ECAP.IR), else
//!   the kernel refuses to start, naming the unit;
//! - [`Command`] and [`command_value`]: the global command register keeps
//!   the one-shot bits clear and the enabled features on (VT-d spec 10.4.4:
//!   software must preserve the enable bits when it sets another);
//! - [`root_table_address`], [`irta_value`], the invalidation commands;
//! - [`Fault::decode`]: a primary fault record as a report line naming the
//!   device (bus:dev.fn), the address and the reason;
//! - [`fault_event_address`] and [`is_fault_event`]: a unit signals a new
//!   fault with an interrupt at [`FAULT_EVENT_VECTOR`] to the boot CPU (not
//!   remapped: the VT-d spec exempts the unit's own interrupts), which
//!   arrives while a subject runs as an external-interrupt exit; the exit
//!   path recognises the vector and reports the records.
//!
//! Register offsets and bits are from the Intel VT-d specification
//! (rev. 4.1), chapter 10.

use core::fmt;

use septum_abi::PhysAddr;
use septum_abi::units::DmaAddr;

use crate::spec::{Static, Storage};

/// Capability register (CAP_REG).
pub const CAP: u16 = 0x08;
/// Extended capability register (ECAP_REG).
pub const ECAP: u16 = 0x10;
/// Global command register (GCMD_REG, 32 bits).
pub const GCMD: u16 = 0x18;
/// Global status register (GSTS_REG, 32 bits).
pub const GSTS: u16 = 0x1c;
/// Root table address register (RTADDR_REG).
pub const RTADDR: u16 = 0x20;
/// Context command register (CCMD_REG).
pub const CCMD: u16 = 0x28;
/// Fault status register (FSTS_REG, 32 bits).
pub const FSTS: u16 = 0x34;
/// Fault event control register (FECTL_REG, 32 bits).
pub const FECTL: u16 = 0x38;
/// Interrupt remapping table address register (IRTA_REG).
pub const IRTA: u16 = 0xb8;

/// CCMD: invalidate context cache (ICC), global granularity.
pub const CCMD_GLOBAL_INVALIDATE: u64 = 1 << 63 | 1 << 61;
/// CCMD.ICC: set while the invalidation is in progress.
pub const CCMD_BUSY: u64 = 1 << 63;
/// IOTLB_REG (at `iotlb_offset`): invalidate (IVT), global granularity,
/// drain reads and writes.
pub const IOTLB_GLOBAL_INVALIDATE: u64 = 1 << 63 | 1 << 60 | 1 << 49 | 1 << 48;
/// IOTLB_REG.IVT: set while the invalidation is in progress.
pub const IOTLB_BUSY: u64 = 1 << 63;
/// FSTS: primary pending fault (PPF, read-only summary of the records).
pub const FSTS_PPF: u32 = 1 << 1;
/// FSTS: the write-1-to-clear status bits (PFO, AFO, APF, IQE, ICE, ITE).
pub const FSTS_CLEAR: u32 = 0x7d;
/// FECTL.IM: fault events masked (set while the unit is programmed;
/// cleared once the boot CPU's local APIC can take the event).
pub const FECTL_MASK: u32 = 1 << 31;
/// Fault event data register (FEDATA_REG, 32 bits): the vector.
pub const FEDATA: u16 = 0x3c;
/// Fault event address register (FEADDR_REG, 32 bits).
pub const FEADDR: u16 = 0x40;
/// Fault event upper address register (FEUADDR_REG, 32 bits).
pub const FEUADDR: u16 = 0x44;
/// The host vector of the fault event: above every device line's vector
/// (32 + line, at most 252: `irq::host_vector`) and below the spurious
/// vector 0xff.
pub const FAULT_EVENT_VECTOR: u8 = 253;

/// FEADDR and FEUADDR for a fault event to the local APIC `apic_id`
/// (physical destination, fixed delivery; VT-d spec 10.4.12-10.4.13): the
/// low 8 bits of the id in FEADDR bits 19:12, the upper 24 bits (x2APIC
/// ids above 255) in FEUADDR bits 31:8.
pub const fn fault_event_address(apic_id: u32) -> (u32, u32) {
    (0xfee0_0000 | (apic_id & 0xff) << 12, apic_id & !0xff)
}

/// Whether an external interrupt at `vector` is a VT-d fault event.
pub const fn is_fault_event(vector: u8) -> bool {
    vector == FAULT_EVENT_VECTOR
}

/// The bits of GSTS that mirror persistent enables in GCMD (TE, IRE, QIE,
/// WBF excluded, CFI): VT-d spec 10.4.4 "software must read GSTS, keep
/// these, and set the one new command bit".
const PERSISTENT: u32 = 0x96ff_ffff;

/// A one-shot or enable command of the global command register, with the
/// global status bit that confirms it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// SRTP: latch the root table address (status RTPS).
    SetRootTable,
    /// SIRTP: latch the interrupt remapping table address (status IRTPS).
    SetInterruptTable,
    /// IRE: enable interrupt remapping (status IRES).
    EnableInterruptRemapping,
    /// TE: enable DMA remapping (status TES).
    EnableTranslation,
}

impl Command {
    /// The command bit (and its status bit, which is the same).
    pub const fn bit(self) -> u32 {
        match self {
            Command::SetRootTable => 1 << 30,
            Command::SetInterruptTable => 1 << 24,
            Command::EnableInterruptRemapping => 1 << 25,
            Command::EnableTranslation => 1 << 31,
        }
    }

    /// Name for the refusal message when the unit does not confirm it.
    pub const fn name(self) -> &'static str {
        match self {
            Command::SetRootTable => "set root table pointer",
            Command::SetInterruptTable => "set interrupt remapping table pointer",
            Command::EnableInterruptRemapping => "enable interrupt remapping",
            Command::EnableTranslation => "enable DMA remapping",
        }
    }
}

/// The GCMD value that issues `command` on a unit whose status is `gsts`:
/// the persistent enables it has, plus the new bit. One-shot status bits
/// (RTPS, IRTPS) are not persistent and are dropped.
pub const fn command_value(gsts: u32, command: Command) -> u32 {
    let keep =
        gsts & PERSISTENT & !(Command::SetRootTable.bit() | Command::SetInterruptTable.bit());
    keep | command.bit()
}

/// Whether `gsts` confirms `command`.
pub const fn confirmed(gsts: u32, command: Command) -> bool {
    gsts & command.bit() != 0
}

/// RTADDR_REG value for a legacy-mode root table at `root` (TTM = 00).
pub const fn root_table_address(root: PhysAddr) -> u64 {
    root.get() & !0xfff
}

/// IRTA_REG value: the table at `table` with 2^`entries_log2` entries,
/// xAPIC destination format (EIME = 0; x2APIC-mode remapping needs EIM,
/// which QEMU offers only with KVM).
pub const fn irta_value(table: PhysAddr, entries_log2: u8) -> u64 {
    // S encodes 2^(S+1) entries.
    (table.get() & !0xfff) | (entries_log2.saturating_sub(1) as u64 & 0xf)
}

/// Why a unit cannot run the composed tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitError {
    /// CAP.SAGAW does not offer the table depth the composer built for.
    TableDepth {
        /// Adjusted guest address width the tables use.
        agaw: u8,
    },
    /// ECAP.IR is clear: no interrupt remapping.
    NoInterruptRemapping,
    /// The unit reports no fault recording register at the offset the
    /// hardware description gives.
    FaultRecordOffset {
        /// Offset from the description.
        described: u16,
        /// Offset CAP.FRO gives.
        found: u16,
    },
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitError::TableDepth { agaw } => {
                write!(
                    f,
                    "does not support {agaw}-bit second-level tables (CAP.SAGAW)"
                )
            }
            UnitError::NoInterruptRemapping => f.write_str("has no interrupt remapping (ECAP.IR)"),
            UnitError::FaultRecordOffset { described, found } => write!(
                f,
                "has its fault records at {found:#x}, the hardware description says {described:#x}"
            ),
        }
    }
}

/// Checks a unit's CAP and ECAP against what the spec needs.
pub fn check_unit(iommu: &IommuSpec, cap: u64, ecap: u64) -> Result<(), UnitError> {
    // SAGAW bit 1: 39-bit (3-level), bit 2: 48-bit (4-level), bit 3: 57-bit.
    let sagaw_bit = match iommu.agaw {
        39 => 1,
        48 => 2,
        _ => 3,
    };
    if (cap >> 8) & 0x1f & (1 << sagaw_bit) == 0 {
        return Err(UnitError::TableDepth { agaw: iommu.agaw });
    }
    if ecap & (1 << 3) == 0 {
        return Err(UnitError::NoInterruptRemapping);
    }
    // CAP.FRO (bits 33:24) counts 16-byte units.
    let found = ((cap >> 24) & 0x3ff).wrapping_mul(16);
    if found != u64::from(iommu.fault_recording_offset) {
        return Err(UnitError::FaultRecordOffset {
            described: iommu.fault_recording_offset,
            found: u16::try_from(found).unwrap_or(u16::MAX),
        });
    }
    Ok(())
}

/// Number of fault recording registers the unit has (CAP.NFR + 1).
pub const fn fault_record_count(cap: u64) -> u16 {
    // NFR is 8 bits: the sum cannot saturate.
    (((cap >> 40) & 0xff) as u16).saturating_add(1)
}

/// A PCI requester id (source id): bus, device and function.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SourceId(pub u16);

impl SourceId {
    /// From bus, device (0..=31) and function (0..=7).
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Self((bus as u16) << 8 | ((device as u16 & 0x1f) << 3) | (function as u16 & 7))
    }
    /// The bus.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// The device and function, as context table index (devfn).
    pub const fn devfn(self) -> u8 {
        (self.0 & 0xff) as u8
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus(),
            self.devfn() >> 3,
            self.devfn() & 7
        )
    }
}

impl fmt::Debug for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceId({self})")
    }
}

/// What a fault record says went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A DMA request was blocked (translation fault).
    Dma {
        /// The I/O virtual address (page) the device used.
        address: DmaAddr,
        /// Whether it was a write (else a read).
        write: bool,
    },
    /// An interrupt request was blocked (reasons 0x20..=0x26).
    Interrupt {
        /// The interrupt remapping table index it asked for (meaningful
        /// for remappable-format requests).
        index: u16,
    },
}

/// One primary fault record (VT-d spec 10.4.14, FRCD_REG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The requester.
    pub source: SourceId,
    /// Fault reason code.
    pub reason: u8,
    /// DMA or interrupt.
    pub kind: FaultKind,
}

impl Fault {
    /// Decodes a record from its low and high 64 bits; `None` if its F bit
    /// is clear (no fault recorded there).
    pub const fn decode(low: u64, high: u64) -> Option<Self> {
        if high & (1 << 63) == 0 {
            return None;
        }
        let reason = ((high >> 32) & 0xff) as u8;
        let source = SourceId((high & 0xffff) as u16);
        let kind = if reason >= 0x20 && reason <= 0x26 {
            Fault::interrupt(low)
        } else {
            // T: 0 = write, 1 = read (bit 126 of the record).
            FaultKind::Dma {
                address: DmaAddr(low & !0xfff),
                write: high & (1 << 62) == 0,
            }
        };
        Some(Self {
            source,
            reason,
            kind,
        })
    }

    const fn interrupt(low: u64) -> FaultKind {
        FaultKind::Interrupt {
            index: (low >> 48) as u16,
        }
    }

    /// The reason code in words (VT-d spec, appendix A).
    pub const fn reason_text(&self) -> &'static str {
        match self.reason {
            0x01 => "no present root entry",
            0x02 => "no present context entry",
            0x03 => "invalid context entry",
            0x04 => "address beyond the domain's width",
            0x05 => "no write permission (not mapped writable)",
            0x06 => "no read permission (not mapped)",
            0x07 | 0x0a..=0x0c => "invalid paging entry",
            0x20 => "malformed interrupt request",
            0x21 => "interrupt index beyond the table",
            0x22 => "interrupt entry not present",
            0x25 => "compatibility-format interrupt blocked",
            0x26 => "interrupt from a device the entry does not name",
            _ => "blocked",
        }
    }
}

/// The high 64 bits to write back to a fault record to clear it (F is
/// write-1-to-clear).
pub const FAULT_RECORD_CLEAR: u64 = 1 << 63;

/// Writes the report line of a fault: `vtd fault: device 00:03.0 (edu)
/// DMA write 0x123000 blocked: no present paging entry (reason 0x06)`.
pub struct FaultReport<'a> {
    /// The fault.
    pub fault: Fault,
    /// The device's name from the spec, if the spec knows the requester.
    pub device: Option<&'a str>,
}

impl fmt::Display for FaultReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fault = &self.fault;
        write!(f, "vtd fault: device {}", fault.source)?;
        if let Some(name) = self.device {
            write!(f, " ({name})")?;
        }
        match fault.kind {
            FaultKind::Dma { address, write } => write!(
                f,
                " DMA {} {address} blocked",
                if write { "write" } else { "read" }
            )?,
            FaultKind::Interrupt { index } => {
                write!(f, " interrupt (index {index}) blocked")?;
            }
        }
        write!(
            f,
            ": {} (reason {:#04x})",
            fault.reason_text(),
            fault.reason
        )
    }
}

// ------------------------------------------------------------------ spec

/// One VT-d remapping unit of the hardware description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IommuSpec {
    /// Its 4 KiB register page (identity-mapped uncached in the kernel's
    /// page tables by the composer).
    pub registers: PhysAddr,
    /// Offset of its first fault recording register.
    pub fault_recording_offset: u16,
    /// Offset of its IOTLB invalidate register (IOTLB_REG; the anchor's
    /// `iotlb_invalidate_offset`, ECAP.IRO * 16 + 8).
    pub iotlb_offset: u16,
    /// The width the second-level tables are built for (39: 3 levels, 48:
    /// 4 levels).
    pub agaw: u8,
}

/// A device with a context entry: for fault reports and the probe.
#[derive(Debug, Clone, Copy)]
pub struct VtdDevice<S: Storage = Static> {
    /// Its requester id.
    pub source: SourceId,
    /// The hardware device's name.
    pub name: S::Text,
    /// Index of its domain in [`VtdSpec::domains`].
    pub domain: u16,
}

/// A region a device domain maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaWindow {
    /// Where the domain's devices see it.
    pub address: DmaAddr,
    /// The memory.
    pub physical: PhysAddr,
    /// Bytes.
    pub size: u64,
    /// Whether devices may write it.
    pub writable: bool,
}

/// A device domain: one DMA address space.
#[derive(Debug, Clone, Copy)]
pub struct DomainSpec<S: Storage = Static> {
    /// The policy's name.
    pub name: S::Text,
    /// What it maps (its second-level tables hold exactly these).
    pub windows: S::List<DmaWindow>,
}

/// The VT-d setup of the system. With no `iommus` the kernel does nothing
/// (a machine without VT-d; the policy rules decided that is acceptable).
#[derive(Debug)]
pub struct VtdSpec<S: Storage = Static> {
    /// Every remapping unit of the hardware description; all get the same
    /// tables.
    pub iommus: S::List<IommuSpec>,
    /// The root table (4 KiB, 256 entries, legacy mode).
    pub root_table: PhysAddr,
    /// The interrupt remapping table.
    pub interrupt_table: PhysAddr,
    /// It has 2^`interrupt_entries_log2` entries (IRT index = IRQ number).
    pub interrupt_entries_log2: u8,
    /// The devices that have a context entry.
    pub devices: S::List<VtdDevice<S>>,
    /// The device domains, in policy order.
    pub domains: S::List<DomainSpec<S>>,
}

impl<S: Storage> VtdSpec<S> {
    /// The name of the device with requester id `source`, if it has a
    /// context entry.
    pub fn device_name(&self, source: SourceId) -> Option<&str> {
        S::items(&self.devices)
            .iter()
            .find(|d| d.source == source)
            .map(|d| S::text(&d.name))
    }
}

// The composer keeps its spec in a `Clone` composition; the derive cannot
// see that owned lists are `Clone`.
#[cfg(any(test, feature = "emit"))]
impl Clone for VtdSpec<crate::spec::Owned> {
    fn clone(&self) -> Self {
        Self {
            iommus: self.iommus.clone(),
            root_table: self.root_table,
            interrupt_table: self.interrupt_table,
            interrupt_entries_log2: self.interrupt_entries_log2,
            devices: self
                .devices
                .iter()
                .map(|d| VtdDevice {
                    source: d.source,
                    name: d.name.clone(),
                    domain: d.domain,
                })
                .collect(),
            domains: self
                .domains
                .iter()
                .map(|d| DomainSpec {
                    name: d.name.clone(),
                    windows: d.windows.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::format;

    use super::*;

    #[test]
    fn fault_events_go_to_the_boot_cpu_at_their_own_vector() {
        assert_eq!(fault_event_address(0), (0xfee0_0000, 0));
        assert_eq!(fault_event_address(3), (0xfee0_3000, 0));
        assert_eq!(fault_event_address(0x1_0205), (0xfee0_5000, 0x1_0200));
        assert!(is_fault_event(FAULT_EVENT_VECTOR));
        assert!(!is_fault_event(0xff) && !is_fault_event(32 + 48));
        // No device line's host vector (32 + line) is the fault event's.
        assert_eq!(
            crate::irq::line_of(crate::irq::Vector(FAULT_EVENT_VECTOR)),
            None
        );
    }

    const QEMU: IommuSpec = IommuSpec {
        registers: PhysAddr(0xfed9_0000),
        fault_recording_offset: 0x220,
        iotlb_offset: 0xf8,
        agaw: 39,
    };
    /// A unit like QEMU's intel-iommu with aw-bits 39: SAGAW 39-bit only,
    /// fault records at 0x220 (FRO 0x22), one record, interrupt remapping.
    const QEMU_CAP: u64 = 1 << 9 | 0x22 << 24;
    const QEMU_ECAP: u64 = 1 << 3 | 0xf << 8;

    #[test]
    fn a_39_bit_unit_runs_three_level_tables_with_interrupt_remapping() {
        assert_eq!(check_unit(&QEMU, QEMU_CAP, QEMU_ECAP), Ok(()));
        let deep = IommuSpec { agaw: 48, ..QEMU };
        assert_eq!(
            check_unit(&deep, QEMU_CAP, QEMU_ECAP),
            Err(UnitError::TableDepth { agaw: 48 })
        );
        assert_eq!(
            check_unit(&QEMU, QEMU_CAP, QEMU_ECAP & !(1 << 3)),
            Err(UnitError::NoInterruptRemapping)
        );
        let moved = IommuSpec {
            fault_recording_offset: 0x400,
            ..QEMU
        };
        assert_eq!(
            check_unit(&moved, QEMU_CAP, QEMU_ECAP),
            Err(UnitError::FaultRecordOffset {
                described: 0x400,
                found: 0x220
            })
        );
        assert_eq!(fault_record_count(QEMU_CAP), 1);
    }

    #[test]
    fn commands_keep_the_enables_and_drop_the_one_shot_bits() {
        // Nothing on: the command alone.
        assert_eq!(command_value(0, Command::SetRootTable), 1 << 30);
        // Root table latched (RTPS) and IR on: enabling translation keeps
        // IRE, not SRTP.
        let gsts = Command::SetRootTable.bit() | Command::EnableInterruptRemapping.bit();
        assert_eq!(
            command_value(gsts, Command::EnableTranslation),
            1 << 31 | 1 << 25
        );
        assert!(confirmed(1 << 31, Command::EnableTranslation));
        assert!(!confirmed(1 << 25, Command::EnableTranslation));
    }

    #[test]
    fn table_registers() {
        assert_eq!(root_table_address(PhysAddr(0x12_3000)), 0x12_3000);
        // 256 entries: S = 7.
        assert_eq!(irta_value(PhysAddr(0x45_6000), 8), 0x45_6007);
    }

    #[test]
    fn a_dma_fault_names_device_address_and_reason() {
        // F set, T = 0 (a write), reason 5, requester 00:03.0.
        let high = 1 << 63 | 0x05 << 32 | u64::from(SourceId::new(0, 3, 0).0);
        let fault = Fault::decode(0x0123_4567, high).expect("recorded");
        assert_eq!(
            fault,
            Fault {
                source: SourceId::new(0, 3, 0),
                reason: 5,
                kind: FaultKind::Dma {
                    address: DmaAddr(0x0123_4000),
                    write: true
                }
            }
        );
        let line = format!(
            "{}",
            FaultReport {
                fault,
                device: Some("edu")
            }
        );
        assert_eq!(
            line,
            "vtd fault: device 00:03.0 (edu) DMA write 0x1234000 blocked: no write permission \
             (not mapped writable) (reason 0x05)"
        );
        assert_eq!(Fault::decode(0, high & !(1 << 63)), None);
    }

    #[test]
    fn an_interrupt_fault_names_the_index() {
        let high = 1 << 63 | 1 << 62 | 0x22 << 32 | 0x0018;
        let fault = Fault::decode(5 << 48, high).expect("recorded");
        assert_eq!(fault.kind, FaultKind::Interrupt { index: 5 });
        assert_eq!(
            format!(
                "{}",
                FaultReport {
                    fault,
                    device: None
                }
            ),
            "vtd fault: device 00:03.0 interrupt (index 5) blocked: interrupt entry not \
             present (reason 0x22)"
        );
    }

    #[test]
    fn source_ids_print_as_bus_device_function() {
        let id = SourceId::new(0x1a, 0x1f, 7);
        assert_eq!(format!("{id}"), "1a:1f.7");
        assert_eq!(id.bus(), 0x1a);
        assert_eq!(id.devfn(), 0xff);
    }
}
