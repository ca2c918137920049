//! PCI driver: reads its device's configuration space through ports
//! 0xCF8/0xCFC, which the kernel emulates for the owner of a PCI device
//! (docs/kernel.md, "PCI configuration space").
//!
//! As subject `pci_driver` (`systems/pci.xml`, owner of Bochs' PIIX3 IDE
//! controller, 00:01.1) it prints on its UART `uart`:
//!
//! - its device's vendor and device id;
//! - what the host bridge (00:00.0), which it does not own, reads as (all
//!   ones: absent);
//! - BAR4 before and after writing all ones to it (the kernel drops the
//!   write: unchanged);
//! - whether a write to its interrupt line register (0x3c, a plain
//!   read-write register) reached the device (then restores it);
//!
//! - its device's ECAM configuration page as its info page lists it
//!   (`ide|config`: one page, read-only; Bochs has no ECAM behind it, so it
//!   is not read);
//!
//! - the mean cost of one configuration read (`read`: two emulated port
//!   accesses) over [`READS`] reads, in TSC ticks (in Bochs one tick is
//!   one instruction);
//!
//! then yields a few frames and powers off.
//!
//! As any other subject (`pci_rogue`, owner of the PIIX3 ISA bridge
//! 00:01.0) it reads its own id and then writes the host bridge's command
//! register, a device it does not own: the kernel must stop it with a
//! fault. If it ever gets past that write it yields forever.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::needs::Need;
use septum_sdk::pci::ConfigSpace;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, rdtsc};

septum_sdk::entry!(main);

septum_sdk::needs![Need::kernel(KernelActionCode::Yield)];

/// The host bridge, owned by nobody.
const HOST_BRIDGE: ConfigSpace = ConfigSpace::new(0, 0, 0);
/// The PIIX3 IDE controller.
const IDE: ConfigSpace = ConfigSpace::new(0, 1, 1);
/// The PIIX3 ISA bridge.
const ISA: ConfigSpace = ConfigSpace::new(0, 1, 0);
/// BAR4 (the IDE controller's bus-master registers).
const BAR4: u8 = 0x20;
/// Interrupt line (byte 0) of dword 0x3c.
const INTERRUPT_LINE: u8 = 0x3c;
/// Reads timed for the cost line.
const READS: u64 = 64;
/// Frames to yield before powering off (the rogue runs in between).
const FRAMES: u32 = 20;

fn main(info: Info<'static>) -> ! {
    let kernel = info.kernel();
    if info.name() != "pci_driver" {
        let _ = ISA.id();
        HOST_BRIDGE.write(0x04, 0);
        loop {
            let _ = kernel.yield_now();
        }
    }
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("pci_driver: no UART \"uart\"");
    };
    uart.init();
    let id = IDE.id();
    let _ = writeln!(
        uart,
        "pci_driver: 00:01.1 vendor {:04x} device {:04x}",
        id & 0xffff,
        id >> 16
    );
    let _ = writeln!(uart, "pci_driver: 00:00.0 reads {:08x}", HOST_BRIDGE.id());
    let before = IDE.read(BAR4);
    IDE.write(BAR4, 0xffff_ffff);
    let after = IDE.read(BAR4);
    let _ = writeln!(
        uart,
        "pci_driver: BAR4 {before:08x}, after writing ffffffff {after:08x}: {}",
        if before == after {
            "unchanged"
        } else {
            "CHANGED"
        }
    );
    let old = IDE.read(INTERRUPT_LINE);
    let probe = (old & !0xff) | ((old & 0xff) ^ 0x05);
    IDE.write(INTERRUPT_LINE, probe);
    let seen = IDE.read(INTERRUPT_LINE);
    IDE.write(INTERRUPT_LINE, old);
    let restored = IDE.read(INTERRUPT_LINE);
    let _ = writeln!(
        uart,
        "pci_driver: interrupt line {:02x} -> {:02x} -> {:02x}: {}",
        old & 0xff,
        seen & 0xff,
        restored & 0xff,
        if seen == probe && restored == old {
            "write reached the device"
        } else {
            "WRITE LOST"
        }
    );
    match info.device_memory("ide|config") {
        Some(page) => {
            let _ = writeln!(
                uart,
                "pci_driver: config page \"ide|config\": {} bytes, {}",
                page.len(),
                if page.is_writable() {
                    "WRITABLE"
                } else {
                    "read-only"
                }
            );
        }
        None => {
            let _ = writeln!(uart, "pci_driver: no config page");
        }
    }
    let start = rdtsc();
    for _ in 0..READS {
        let _ = IDE.id();
    }
    let ticks = rdtsc().wrapping_sub(start) / READS;
    let _ = writeln!(uart, "pci_driver: config read {ticks} ticks");
    for _ in 0..FRAMES {
        let _ = kernel.yield_now();
    }
    let _ = writeln!(uart, "pci_driver: done");
    let _ = kernel.poweroff();
    panic!("pci_driver: the policy grants no poweroff");
}
