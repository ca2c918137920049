//! PCI configuration space of a device the subject owns, through ports
//! 0xCF8 (CONFIG_ADDRESS) and 0xCFC (CONFIG_DATA).
//!
//! The kernel emulates both ports for a subject whose policy grants it a
//! PCI device (docs/kernel.md, "PCI configuration space"): reads of its own
//! device reach the hardware, any other device reads as all ones (absent),
//! writes to the BARs, the expansion ROM and the MSI/MSI-X registers are
//! dropped, and a write to another device stops the subject with a fault.

use crate::arch;

/// CONFIG_ADDRESS.
const CONFIG_ADDRESS: u16 = 0xcf8;
/// CONFIG_DATA.
const CONFIG_DATA: u16 = 0xcfc;

/// One PCI function's configuration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigSpace {
    /// Bus, device and function as CONFIG_ADDRESS bits 23:8, enable set.
    address: u32,
}

impl ConfigSpace {
    /// Function `function` (0..=7) of device `device` (0..=31) on `bus`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        Self {
            address: 1 << 31
                | (bus as u32) << 16
                | ((device & 0x1f) as u32) << 11
                | ((function & 7) as u32) << 8,
        }
    }

    /// The dword at `offset` (rounded down to a multiple of 4).
    pub fn read(&self, offset: u8) -> u32 {
        arch::outl(CONFIG_ADDRESS, self.address | u32::from(offset & 0xfc));
        arch::inl(CONFIG_DATA)
    }

    /// Write `value` to the dword at `offset` (rounded down to a multiple
    /// of 4).
    pub fn write(&self, offset: u8, value: u32) {
        arch::outl(CONFIG_ADDRESS, self.address | u32::from(offset & 0xfc));
        arch::outl(CONFIG_DATA, value);
    }

    /// Vendor id (low half) and device id (high half): all ones if the
    /// function is absent, or not the subject's.
    pub fn id(&self) -> u32 {
        self.read(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_packs_bus_device_and_function() {
        assert_eq!(ConfigSpace::new(0, 1, 1).address, 0x8000_0900);
        assert_eq!(ConfigSpace::new(0xab, 31, 7).address, 0x80ab_ff00);
    }
}
