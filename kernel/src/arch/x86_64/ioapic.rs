//! The I/O APIC: every line masked at boot but the ones a subject owns, each
//! of those sent to the local APIC of its owner's CPU.
//!
//! The spec's `INTERRUPTS` (kerncore `irq`) names the I/O APIC's register
//! page (identity-mapped uncached by the composer) and one route per owned
//! line. At boot [`init`] masks every redirection entry the I/O APIC has
//! (its version register says how many), then programs each route: fixed
//! delivery of host vector `32 + line` (kerncore `irq::host_vector`) in
//! physical destination mode to the owner's APIC id, edge/active-high for
//! ISA lines and level/active-low for PCI lines. Unowned lines stay masked
//! for good. A level line is masked again from its interrupt on
//! ([`mask`], on the exit that acknowledges it) until its owner's
//! `unmask_irq` ([`unmask`]): a device that keeps its line asserted then
//! costs nothing until its driver has served it.
//!
//! The registers are indirect (select, then window), so two CPUs must not
//! interleave: a spin lock guards every access after boot. The accesses are
//! volatile 32-bit loads and stores (the I/O APIC ignores others), SDM-free
//! facts from the 82093AA datasheet, section 3.
//!
//! Without routes the kernel never touches the I/O APIC (and the composer
//! does not map it): the firmware's state stays, with the legacy PIC
//! masked as before.

use core::sync::atomic::{AtomicBool, Ordering};

use septum_abi::PhysAddr;
use septum_kerncore::irq::{IrqLine, IrqRoute, Trigger, host_vector};

use super::cpu;
use crate::system::INTERRUPTS;

/// Register select (offset of IOREGSEL).
const IOREGSEL: u64 = 0x00;
/// Data window (offset of IOWIN).
const IOWIN: u64 = 0x10;
/// The version register: bits 23:16 hold the highest redirection entry.
const IOAPICVER: u32 = 0x01;
/// First redirection register; entry `n` is `0x10 + 2n` (low) and
/// `0x11 + 2n` (high).
const IOREDTBL: u32 = 0x10;
/// Redirection entry: masked.
const MASKED: u32 = 1 << 16;
/// Redirection entry: level-triggered.
const LEVEL: u32 = 1 << 15;
/// Redirection entry: active low.
const ACTIVE_LOW: u32 = 1 << 13;

/// Guards the select/window pair.
static LOCK: AtomicBool = AtomicBool::new(false);

/// The registers, when the spec routes any line.
fn base() -> Option<PhysAddr> {
    INTERRUPTS.ioapic
}

fn read(base: PhysAddr, register: u32) -> u32 {
    let select = base.get().wrapping_add(IOREGSEL) as *mut u32;
    let window = base.get().wrapping_add(IOWIN) as *const u32;
    // Safety: `base` is the I/O APIC's register page from the spec, which
    // the composer identity-maps read-write and uncached in the kernel's
    // page tables whenever it is set; IOREGSEL and IOWIN are aligned 32-bit
    // registers in it. The caller holds `LOCK` (or runs at boot alone).
    unsafe {
        select.write_volatile(register);
        window.read_volatile()
    }
}

fn write(base: PhysAddr, register: u32, value: u32) {
    let select = base.get().wrapping_add(IOREGSEL) as *mut u32;
    let window = base.get().wrapping_add(IOWIN) as *mut u32;
    // Safety: as in `read`; writing a redirection entry only changes where
    // and whether a device line is delivered.
    unsafe {
        select.write_volatile(register);
        window.write_volatile(value);
    }
}

fn locked<T>(f: impl FnOnce() -> T) -> T {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        cpu::pause();
    }
    let value = f();
    LOCK.store(false, Ordering::Release);
    value
}

/// Low register of the redirection entry of `line`.
fn entry_low(line: IrqLine) -> u32 {
    IOREDTBL.wrapping_add(u32::from(line.0).wrapping_mul(2))
}

/// The low word of a route's redirection entry (unmasked).
fn route_low(route: &IrqRoute) -> Option<u32> {
    let vector = u32::from(host_vector(route.line)?.0);
    Some(match route.trigger {
        Trigger::Edge => vector,
        Trigger::Level => vector | LEVEL | ACTIVE_LOW,
    })
}

/// Why the I/O APIC could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoApicError {
    /// A routed line has no redirection entry in this I/O APIC.
    NoEntry(IrqLine, u32),
    /// A route's destination APIC id does not fit physical destination
    /// mode (8 bits; larger ids need interrupt remapping).
    ApicIdTooLarge(u32),
}

impl core::fmt::Display for IoApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoEntry(line, entries) => write!(
                f,
                "IRQ {} has no redirection entry in the I/O APIC ({entries} entries)",
                line.0
            ),
            Self::ApicIdTooLarge(id) => {
                write!(f, "APIC id {id} cannot be an I/O APIC destination")
            }
        }
    }
}

/// Mask every line, then program and unmask each route. Boot CPU, before
/// any subject runs; returns the number of redirection entries (0 without
/// routes: the I/O APIC is left alone).
pub fn init() -> Result<u32, IoApicError> {
    let Some(base) = base() else {
        return Ok(0);
    };
    locked(|| {
        let entries = ((read(base, IOAPICVER) >> 16) & 0xff).wrapping_add(1);
        for line in 0..entries {
            let low = IOREDTBL.wrapping_add(line.wrapping_mul(2));
            write(base, low, MASKED);
            write(base, low.wrapping_add(1), 0);
        }
        for route in INTERRUPTS.routes {
            if u32::from(route.line.0) >= entries {
                return Err(IoApicError::NoEntry(route.line, entries));
            }
            if route.apic_id.0 > 0xff {
                return Err(IoApicError::ApicIdTooLarge(route.apic_id.0));
            }
            let Some(low) = route_low(route) else {
                return Err(IoApicError::NoEntry(route.line, entries));
            };
            let register = entry_low(route.line);
            write(base, register.wrapping_add(1), route.apic_id.0 << 24);
            write(base, register, low);
        }
        Ok(entries)
    })
}

/// Mask `line` (a level line whose interrupt was just acknowledged).
pub fn mask(line: IrqLine) {
    set_masked(line, true);
}

/// Unmask `line` (its owner's `unmask_irq`).
pub fn unmask(line: IrqLine) {
    set_masked(line, false);
}

fn set_masked(line: IrqLine, masked: bool) {
    let Some(base) = base() else {
        return;
    };
    // Only routed lines are ever unmasked.
    if !INTERRUPTS.routes.iter().any(|r| r.line == line) {
        return;
    }
    locked(|| {
        let register = entry_low(line);
        let low = read(base, register);
        let low = if masked { low | MASKED } else { low & !MASKED };
        write(base, register, low);
    });
}
