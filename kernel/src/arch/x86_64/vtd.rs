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
//! as an external-interrupt exit of whatever subject runs on the boot CPU
//! (or is taken in root mode before an entry), and `interrupts::route`
//! calls [`take_faults`] before the end-of-interrupt: the records are read,
//! cleared and held ([`HELD`], a few uncached register reads per record),
//! not formatted. Formatting a line costs about 2000 ticks; done there, at
//! a deadline or at the take before an entry, it ran past the deadline or
//! the lead, and a DMA-capable driver could time its faults to move its
//! neighbour's first instruction. The held records are printed in the
//! boot CPU's idle time where the line fits before the deadline
//! ([`print_held`], from the idle loop) and before the machine stops.
//!
//! The register pages are identity-mapped uncached in the kernel's page
//! tables by the composer; every access below stays inside the page.

use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    // What firmware left, printed at once (the console is synchronous at
    // boot).
    clear_faults(&unit, spec);
    print_held(usize::MAX);
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
        if Fault::decode(low, high).is_some() {
            found = found.saturating_add(1);
            hold(low, high);
            unit.write64(high_offset, FAULT_RECORD_CLEAR);
        }
    }
    unit.write32(FSTS, FSTS_CLEAR);
    found
}

/// Keep one fault record for [`print_held`], or count it as lost.
fn hold(low: u64, high: u64) {
    let at = HELD_COUNT.load(Ordering::Relaxed);
    match (
        HELD.get(at.saturating_mul(2)),
        HELD.get(at.saturating_mul(2).saturating_add(1)),
    ) {
        (Some(low_word), Some(high_word)) => {
            low_word.store(low, Ordering::Relaxed);
            high_word.store(high, Ordering::Relaxed);
            HELD_COUNT.store(at.saturating_add(1), Ordering::Relaxed);
        }
        _ => {
            HELD_LOST.fetch_add(1, Ordering::Relaxed);
        }
    }
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

/// Prints and clears every recorded fault of every unit, with those held
/// before ([`take_faults`]); returns how many it printed. A normal boot
/// reports what firmware left (in [`enable`]: [`take_faults`]'s part and
/// [`print_held`]); the probe calls it directly.
#[cfg_attr(
    not(feature = "vtd-probe"),
    allow(dead_code, reason = "used by the probe")
)]
pub fn report_faults() -> usize {
    take_faults();
    print_held(usize::MAX)
}

/// Records taken from the units and not yet printed, at most
/// [`HELD_RECORDS`] (two words each: the record's low and high 64 bits),
/// written and read only on the boot CPU (its fault event's vector, its
/// idle loop, its stop); [`HELD_COUNT`] says how many are valid and
/// [`HELD_LOST`] how many more did not fit.
static HELD: [AtomicU64; 2 * HELD_RECORDS] = [const { AtomicU64::new(0) }; 2 * HELD_RECORDS];
/// See [`HELD`].
static HELD_COUNT: AtomicUsize = AtomicUsize::new(0);
/// See [`HELD`].
static HELD_LOST: AtomicUsize = AtomicUsize::new(0);
/// Fault records held at most between two prints.
const HELD_RECORDS: usize = 16;

/// Reads and clears every recorded fault of every unit into [`HELD`],
/// without formatting anything: the interrupt path's part (a status read
/// per unit, two reads and a clear per record); returns how many there
/// were.
pub fn take_faults() -> usize {
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

/// Whether fault records wait to be printed ([`print_held`]).
pub fn holds_faults() -> bool {
    HELD_COUNT.load(Ordering::Relaxed) != 0 || HELD_LOST.load(Ordering::Relaxed) != 0
}

/// Prints at most `records` of the held fault records, oldest first, and
/// forgets them (once none is left, also how many did not fit); returns
/// how many it printed.
pub fn print_held(records: usize) -> usize {
    let word = |at: usize| HELD.get(at).map_or(0, |w| w.load(Ordering::Relaxed));
    let count = HELD_COUNT.load(Ordering::Relaxed).min(HELD_RECORDS);
    let printed = count.min(records);
    for record in 0..printed {
        let low = word(record.saturating_mul(2));
        let high = word(record.saturating_mul(2).saturating_add(1));
        if let Some(fault) = Fault::decode(low, high) {
            crate::kprintln!(
                "septum: {}",
                FaultReport {
                    fault,
                    device: VTD.device_name(fault.source),
                }
            );
        }
    }
    // The rest moves to the front, in order.
    for at in 0..count.saturating_sub(printed).saturating_mul(2) {
        let value = word(at.saturating_add(printed.saturating_mul(2)));
        if let Some(slot) = HELD.get(at) {
            slot.store(value, Ordering::Relaxed);
        }
    }
    HELD_COUNT.store(count.saturating_sub(printed), Ordering::Relaxed);
    if printed == count {
        let lost = HELD_LOST.swap(0, Ordering::Relaxed);
        if lost != 0 {
            crate::kprintln!("septum: vtd fault: {lost} more fault record(s) not shown");
        }
    }
    printed
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
