//! VT-d remapping units: register access, the boot-time enable sequence,
//! and polling the fault records.
//!
//! At boot, before any subject runs, [`enable`] points every IOMMU of the
//! spec (`system::VTD`) at the composed root table and interrupt remapping
//! table and turns on interrupt remapping and DMA remapping, in the order
//! the VT-d specification gives (rev. 4.1, 10.4.4-10.4.9; decisions and
//! values in `septum_kerncore::vtd`): check the unit's capabilities; clear
//! stale faults, mask fault events and point them at the boot CPU; set
//! the root table pointer; invalidate the context cache and the IOTLB
//! globally; set the interrupt remapping table pointer; enable interrupt
//! remapping (compatibility-format interrupts stay blocked: GCMD.CFI is
//! never set); enable translation. A unit that does not confirm a step
//! stops the boot, naming the unit and the step.
//!
//! The interrupt entry cache can be invalidated only through the queued
//! invalidation interface; at boot it is empty (firmware does not enable
//! interrupt remapping), so the sequence needs no invalidation there.
//!
//! [`report_faults`] prints every primary fault record with the device
//! (bus:dev.fn and its name from the spec) and the address, and clears it.
//! Faults while subjects run: once the boot CPU's local APIC is in x2APIC
//! mode (`interrupts::init_cpu`), [`unmask_fault_events`] lets every unit
//! signal a new fault at vector 253 (`vtd::FAULT_EVENT_VECTOR`); it arrives
//! as an external-interrupt exit of whatever subject runs on the boot CPU,
//! and `interrupts::acknowledge` calls [`report_faults`] before the
//! end-of-interrupt. The cost falls on that subject's frame (one exit and
//! a few uncached register reads per fault), as for any interrupt.
//!
//! The register pages are identity-mapped uncached in the kernel's page
//! tables by the composer; every access below stays inside the page.

use core::fmt;

use septum_kerncore::vtd::{
    self, CCMD, CCMD_BUSY, CCMD_GLOBAL_INVALIDATE, Command, FAULT_EVENT_VECTOR, FAULT_RECORD_CLEAR,
    FEADDR, FECTL, FECTL_MASK, FEDATA, FEUADDR, FSTS, FSTS_CLEAR, FSTS_PPF, Fault, FaultReport,
    GCMD, GSTS, IOTLB_BUSY, IOTLB_GLOBAL_INVALIDATE, IRTA, IommuSpec, RTADDR, UnitError,
};

use super::cpu;
use super::percpu::CpuNumber;
use crate::system::VTD;

/// Polls before a unit counts as not answering (each poll is one uncached
/// register read, about a microsecond on hardware).
const POLLS: u32 = 1_000_000;
/// Size of a unit's register page.
const PAGE: u64 = 0x1000;

/// One remapping unit's register page.
struct Unit {
    base: u64,
}

impl Unit {
    fn new(spec: &IommuSpec) -> Self {
        Self {
            base: spec.registers.get(),
        }
    }

    /// The address of register `offset` if `size` bytes there lie in the
    /// page and are naturally aligned.
    fn register(&self, offset: u16, size: u64) -> Option<u64> {
        let offset = u64::from(offset);
        (offset.checked_add(size)? <= PAGE && offset.checked_rem(size) == Some(0))
            .then(|| self.base.wrapping_add(offset))
    }

    fn read32(&self, offset: u16) -> u32 {
        let Some(address) = self.register(offset, 4) else {
            return 0;
        };
        // Safety: `address` is an aligned register inside the unit's page,
        // identity-mapped uncached by the composer; reading it has no side
        // effect on memory the kernel uses.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }

    fn read64(&self, offset: u16) -> u64 {
        let Some(address) = self.register(offset, 8) else {
            return 0;
        };
        // Safety: as in `read32`.
        unsafe { core::ptr::read_volatile(address as *const u64) }
    }

    fn write32(&self, offset: u16, value: u32) {
        let Some(address) = self.register(offset, 4) else {
            return;
        };
        // Safety: as in `read32`; the unit's registers are the kernel's
        // alone (no subject may be granted an IOMMU).
        unsafe { core::ptr::write_volatile(address as *mut u32, value) }
    }

    fn write64(&self, offset: u16, value: u64) {
        let Some(address) = self.register(offset, 8) else {
            return;
        };
        // Safety: as in `write32`.
        unsafe { core::ptr::write_volatile(address as *mut u64, value) }
    }

    /// Issues a global command and waits for its status bit.
    fn command(&self, command: Command) -> Result<(), VtdError> {
        let value = vtd::command_value(self.read32(GSTS), command);
        self.write32(GCMD, value);
        self.wait(|unit| vtd::confirmed(unit.read32(GSTS), command))
            .ok_or(VtdError::Unconfirmed(command.name()))
    }

    /// Polls `done` up to [`POLLS`] times.
    fn wait(&self, done: impl Fn(&Self) -> bool) -> Option<()> {
        for _ in 0..POLLS {
            if done(self) {
                return Some(());
            }
            cpu::pause();
        }
        None
    }
}

/// Why the kernel refuses to start with a unit.
#[derive(Debug)]
pub enum VtdError {
    /// The unit cannot run the tables.
    Unit(UnitError),
    /// The unit did not confirm a step in time.
    Unconfirmed(&'static str),
}

/// A unit's failure, for the refusal message.
pub struct UnitFailure {
    index: usize,
    registers: u64,
    error: VtdError,
}

impl fmt::Display for UnitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IOMMU {} at {:#x} ", self.index, self.registers)?;
        match &self.error {
            VtdError::Unit(error) => write!(f, "{error}"),
            VtdError::Unconfirmed(step) => write!(f, "did not confirm \"{step}\""),
        }
    }
}

/// Programs and enables every unit of the spec; returns how many.
pub fn enable() -> Result<usize, UnitFailure> {
    for (index, spec) in VTD.iommus.iter().enumerate() {
        enable_unit(spec).map_err(|error| UnitFailure {
            index,
            registers: spec.registers.get(),
            error,
        })?;
    }
    Ok(VTD.iommus.len())
}

fn enable_unit(spec: &IommuSpec) -> Result<(), VtdError> {
    let unit = Unit::new(spec);
    vtd::check_unit(spec, unit.read64(vtd::CAP), unit.read64(vtd::ECAP)).map_err(VtdError::Unit)?;
    unit.write32(FECTL, FECTL_MASK);
    clear_faults(&unit, spec);
    let (address, upper) = vtd::fault_event_address(super::smp::apic_id(CpuNumber::BOOT));
    unit.write32(FEDATA, u32::from(FAULT_EVENT_VECTOR));
    unit.write32(FEADDR, address);
    unit.write32(FEUADDR, upper);

    unit.write64(RTADDR, vtd::root_table_address(VTD.root_table));
    unit.command(Command::SetRootTable)?;
    unit.write64(CCMD, CCMD_GLOBAL_INVALIDATE);
    unit.wait(|u| u.read64(CCMD) & CCMD_BUSY == 0)
        .ok_or(VtdError::Unconfirmed("invalidate context cache"))?;
    unit.write64(spec.iotlb_offset, IOTLB_GLOBAL_INVALIDATE);
    unit.wait(|u| u.read64(spec.iotlb_offset) & IOTLB_BUSY == 0)
        .ok_or(VtdError::Unconfirmed("invalidate IOTLB"))?;

    unit.write64(
        IRTA,
        vtd::irta_value(VTD.interrupt_table, VTD.interrupt_entries_log2),
    );
    unit.command(Command::SetInterruptTable)?;
    unit.command(Command::EnableInterruptRemapping)?;
    unit.command(Command::EnableTranslation)
}

/// Clears every fault record and the fault status of a unit; returns the
/// faults it held.
fn clear_faults(unit: &Unit, spec: &IommuSpec) -> usize {
    let mut found: usize = 0;
    for record in 0..vtd::fault_record_count(unit.read64(vtd::CAP)) {
        let Some(offset) = record
            .checked_mul(16)
            .and_then(|o| o.checked_add(spec.fault_recording_offset))
        else {
            break;
        };
        let high_offset = offset.saturating_add(8);
        let (low, high) = (unit.read64(offset), unit.read64(high_offset));
        if let Some(fault) = Fault::decode(low, high) {
            found = found.saturating_add(1);
            crate::kprintln!(
                "septum: {}",
                FaultReport {
                    fault,
                    device: VTD.device_name(fault.source),
                }
            );
            unit.write64(high_offset, FAULT_RECORD_CLEAR);
        }
    }
    unit.write32(FSTS, FSTS_CLEAR);
    found
}

/// Let every unit signal new faults (at [`FAULT_EVENT_VECTOR`], to the
/// boot CPU, as [`enable`] programmed). Call on the boot CPU once its local
/// APIC is software-enabled in x2APIC mode, so that the exit path's
/// end-of-interrupt (an x2APIC MSR) is valid.
pub fn unmask_fault_events() {
    for spec in VTD.iommus {
        Unit::new(spec).write32(FECTL, 0);
    }
}

/// Prints and clears every recorded fault of every unit; returns how many
/// there were. A normal boot reports what firmware left (in [`enable`]);
/// while subjects run, the fault event's exit calls this
/// (`interrupts::acknowledge`); the probe calls it directly.
pub fn report_faults() -> usize {
    VTD.iommus
        .iter()
        .map(|spec| {
            let unit = Unit::new(spec);
            if unit.read32(FSTS) & (FSTS_PPF | FSTS_CLEAR) == 0 {
                0
            } else {
                clear_faults(&unit, spec)
            }
        })
        .fold(0, usize::saturating_add)
}

/// The global status register of unit `index` (for the probe's report).
#[cfg_attr(
    not(feature = "vtd-probe"),
    allow(dead_code, reason = "used by the probe")
)]
pub fn global_status(index: usize) -> Option<u32> {
    VTD.iommus
        .get(index)
        .map(|spec| Unit::new(spec).read32(GSTS))
}
