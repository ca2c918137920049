//! The PCI configuration space of a VM (mechanism 1, ports 0xcf8 and
//! 0xcfc-0xcff): "no devices", or, for a VM with a virtio console, a host
//! bridge and the console's static header.
//!
//! Why the kernel answers configuration cycles and the monitor does not:
//! the header is a constant of the policy (vendor, device, BAR, interrupt
//! line), Linux reads it hundreds of times while it scans bus 0, and the
//! kernel already emulates mechanism 1's address register on the VM's fast
//! path. The device's registers behind its I/O BAR are the monitor's
//! (docs/kernel.md, "Virtio console").
//!
//! With a [`VirtioConsoleSpec`], bus 0 has two functions; every other
//! address reads all ones (no device):
//!
//! - 00:00.0, a host bridge (class 0x0600, Red Hat's 1b36:0008): Linux
//!   accepts mechanism 1 only if bus 0 has a host bridge or an Intel or
//!   Compaq device (`pci_sanity_check`, there being no DMI date here);
//! - 00:[`CONSOLE_SLOT`].0, a transitional virtio console: vendor 0x1af4,
//!   device 0x1003, revision 0 (the legacy ABI), subsystem 0x1af4:0x0003
//!   (virtio device id 3, console), class 0x0780, no capabilities (status
//!   bit 4 clear, so Linux's modern driver finds no `VIRTIO_PCI_CAP_*` and
//!   the legacy one takes it), BAR0 an I/O range of [`VIRTIO_BAR_SIZE`]
//!   ports at the policy's port, interrupt pin INTA# on the policy's line.
//!
//! The header is read-only except the command register's I/O, bus-master
//! and INTx-disable bits, and BAR0's sizing: a write of all ones makes the
//! next read return the size mask; any other write restores the fixed
//! address (the BAR cannot move, so the ports the monitor serves are the
//! policy's). The expansion ROM BAR reads 0 (none).

use crate::spec::VirtioConsoleSpec;

/// Ports of the virtio console's I/O BAR: the 20-byte legacy header
/// (no MSI-X) and the console's 12-byte device configuration.
pub const VIRTIO_BAR_SIZE: u16 = 0x20;
/// Device number of the console on bus 0.
pub const CONSOLE_SLOT: u8 = 3;
/// Master-PIC lines a virtio console may use: not the PIT's (0), the
/// cascade (2) or the UART's (4), not 1 (a PC's keyboard), not 7 (Linux
/// treats a lone IRQ 7 as the 8259's spurious interrupt). Lines 8-15 are
/// on the slave PIC, which the VM's platform does not deliver.
pub const CONSOLE_IRQS: [u8; 3] = [3, 5, 6];

/// PCI vendor id of virtio devices (Red Hat / Qumranet).
pub const VIRTIO_VENDOR: u16 = 0x1af4;
/// Transitional PCI device id of a virtio console (0x1000 + id - 1).
pub const VIRTIO_CONSOLE_DEVICE: u16 = 0x1003;
/// Virtio device id of a console (the legacy driver reads it from the
/// subsystem id).
pub const VIRTIO_ID_CONSOLE: u16 = 3;

/// Host bridge vendor and device (Red Hat's PCIe host bridge).
const BRIDGE_ID: u32 = 0x0008_1b36;
/// Class code of a host bridge (class 06, subclass 00), revision 0.
const BRIDGE_CLASS: u32 = 0x0600_0000;
/// Class code of "communication controller, other" (07 80), revision 0.
const CONSOLE_CLASS: u32 = 0x0780_0000;
/// Command register bits a guest may set: I/O space, bus master, INTx
/// disable.
const COMMAND_WRITABLE: u16 = 1 | 1 << 2 | 1 << 10;
/// Configuration address register: enable bit.
const ADDRESS_ENABLE: u32 = 1 << 31;

/// The configuration mechanism's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciConfig {
    /// The configuration address register (0xcf8).
    pub address: u32,
    /// The console's command register.
    command: u16,
    /// The last write to the console's BAR0 was all ones: the next read
    /// returns the size mask.
    sizing: bool,
}

/// A function on bus 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Bridge,
    Console(VirtioConsoleSpec),
}

impl PciConfig {
    /// Power-on state.
    pub const fn new() -> Self {
        Self {
            address: 0,
            command: 0,
            sizing: false,
        }
    }

    /// The function the address register selects, if it exists.
    fn selected(&self, console: Option<VirtioConsoleSpec>) -> Option<Function> {
        let console = console?;
        if self.address & ADDRESS_ENABLE == 0 {
            return None;
        }
        let bus = (self.address >> 16) as u8;
        let device = ((self.address >> 11) & 0x1f) as u8;
        let function = ((self.address >> 8) & 7) as u8;
        match (bus, device, function) {
            (0, 0, 0) => Some(Function::Bridge),
            (0, CONSOLE_SLOT, 0) => Some(Function::Console(console)),
            _ => None,
        }
    }

    /// The 32-bit register at `offset` (a multiple of 4) of `function`.
    fn register(&self, function: Function, offset: u8) -> u32 {
        match function {
            Function::Bridge => match offset {
                0x00 => BRIDGE_ID,
                0x08 => BRIDGE_CLASS,
                _ => 0,
            },
            Function::Console(console) => match offset {
                0x00 => u32::from(VIRTIO_CONSOLE_DEVICE) << 16 | u32::from(VIRTIO_VENDOR),
                0x04 => u32::from(self.command),
                0x08 => CONSOLE_CLASS,
                0x10 if self.sizing => !u32::from(VIRTIO_BAR_SIZE.wrapping_sub(1)) | 1,
                0x10 => u32::from(console.port) | 1,
                0x2c => u32::from(VIRTIO_ID_CONSOLE) << 16 | u32::from(VIRTIO_VENDOR),
                0x3c => 1 << 8 | u32::from(console.irq),
                _ => 0,
            },
        }
    }

    /// A read from data port `port` (0xcfc-0xcff): the register's bytes
    /// from that port's lane on (the caller masks the access size).
    pub fn read_data(&self, port: u16, console: Option<VirtioConsoleSpec>) -> u32 {
        let Some(function) = self.selected(console) else {
            return u32::MAX;
        };
        let offset = (self.address & 0xfc) as u8;
        let shift = u32::from(port & 3).wrapping_mul(8);
        self.register(function, offset) >> shift
    }

    /// A write of `value` (`size` bytes) to data port `port`.
    pub fn write_data(
        &mut self,
        port: u16,
        size: u8,
        value: u32,
        console: Option<VirtioConsoleSpec>,
    ) {
        let Some(function @ Function::Console(_)) = self.selected(console) else {
            return;
        };
        let offset = (self.address & 0xfc) as u8;
        let shift = u32::from(port & 3).wrapping_mul(8);
        let mask = match size {
            1 => 0xffu32,
            2 => 0xffff,
            _ => u32::MAX,
        }
        .checked_shl(shift)
        .unwrap_or(0);
        let old = match offset {
            0x10 => u32::from(console.map_or(0, |c| c.port)) | 1,
            _ => self.register(function, offset),
        };
        let new = (old & !mask) | (value.checked_shl(shift).unwrap_or(0) & mask);
        match offset {
            0x04 => self.command = new as u16 & COMMAND_WRITABLE,
            0x10 => self.sizing = new == u32::MAX,
            _ => {}
        }
    }
}

impl Default for PciConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const CONSOLE: Option<VirtioConsoleSpec> = Some(VirtioConsoleSpec {
        port: 0xc000,
        irq: 5,
    });

    fn select(pci: &mut PciConfig, device: u32, offset: u32) {
        pci.address = ADDRESS_ENABLE | device << 11 | offset;
    }

    #[test]
    fn without_a_console_there_is_no_device() {
        let mut pci = PciConfig::new();
        for device in [0, CONSOLE_SLOT.into()] {
            select(&mut pci, device, 0);
            assert_eq!(pci.read_data(0xcfc, None), u32::MAX);
        }
    }

    #[test]
    fn bus_zero_has_a_host_bridge_and_the_console() {
        let mut pci = PciConfig::new();
        select(&mut pci, 0, 0);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), 0x0008_1b36);
        select(&mut pci, 0, 8);
        // Class word (offset 0x0a): host bridge.
        assert_eq!(pci.read_data(0xcfe, CONSOLE) & 0xffff, 0x0600);
        select(&mut pci, CONSOLE_SLOT.into(), 0);
        assert_eq!(pci.read_data(0xcfc, CONSOLE) & 0xffff, 0x1af4);
        assert_eq!(pci.read_data(0xcfe, CONSOLE) & 0xffff, 0x1003);
        select(&mut pci, CONSOLE_SLOT.into(), 0x08);
        assert_eq!(pci.read_data(0xcfc, CONSOLE) & 0xff, 0, "revision 0");
        select(&mut pci, CONSOLE_SLOT.into(), 0x2c);
        assert_eq!(pci.read_data(0xcfe, CONSOLE) & 0xffff, 3, "console");
        select(&mut pci, CONSOLE_SLOT.into(), 0x3c);
        assert_eq!(pci.read_data(0xcfc, CONSOLE) & 0xff, 5, "line");
        assert_eq!(pci.read_data(0xcfd, CONSOLE) & 0xff, 1, "INTA#");
        select(&mut pci, CONSOLE_SLOT.into(), 0x04);
        assert_eq!(
            pci.read_data(0xcfe, CONSOLE) & 0x10,
            0,
            "no capability list"
        );
        // Other slots, functions, buses and a disabled address: nothing.
        for address in [
            ADDRESS_ENABLE | 1 << 11,
            ADDRESS_ENABLE | 3 << 11 | 1 << 8,
            ADDRESS_ENABLE | 1 << 16 | 3 << 11,
            3 << 11,
        ] {
            pci.address = address;
            assert_eq!(pci.read_data(0xcfc, CONSOLE), u32::MAX);
        }
    }

    #[test]
    fn bar_sizing_answers_the_size_and_the_bar_stays() {
        let mut pci = PciConfig::new();
        select(&mut pci, CONSOLE_SLOT.into(), 0x10);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), 0xc001);
        pci.write_data(0xcfc, 4, u32::MAX, CONSOLE);
        let mask = pci.read_data(0xcfc, CONSOLE);
        assert_eq!(mask & 0xffff & !3, 0x1_0000 - u32::from(VIRTIO_BAR_SIZE));
        assert_eq!(mask & 1, 1, "I/O space");
        // Restoring, or trying to move it, leaves the policy's address.
        pci.write_data(0xcfc, 4, 0x1001, CONSOLE);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), 0xc001);
        // The expansion ROM BAR: none.
        select(&mut pci, CONSOLE_SLOT.into(), 0x30);
        pci.write_data(0xcfc, 4, 0xffff_f800, CONSOLE);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), 0);
    }

    #[test]
    fn only_the_command_bits_are_writable() {
        let mut pci = PciConfig::new();
        select(&mut pci, CONSOLE_SLOT.into(), 0x04);
        pci.write_data(0xcfc, 2, 0xffff, CONSOLE);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), u32::from(COMMAND_WRITABLE));
        // Writes elsewhere (the id, the interrupt line) change nothing.
        select(&mut pci, CONSOLE_SLOT.into(), 0x3c);
        pci.write_data(0xcfc, 1, 9, CONSOLE);
        assert_eq!(pci.read_data(0xcfc, CONSOLE) & 0xff, 5);
        select(&mut pci, 0, 0x04);
        pci.write_data(0xcfc, 2, 0xffff, CONSOLE);
        assert_eq!(pci.read_data(0xcfc, CONSOLE), 0);
    }
}
