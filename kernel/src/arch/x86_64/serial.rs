//! The kernel's debug UART (a 16550 at the port the spec names).
//!
//! Output only, polled, no interrupts and no buffer: the kernel writes a few
//! lines at boot and on faults, and a line must be on the wire before the
//! machine stops. [`Uart::drain`] waits until the transmitter is empty,
//! because Bochs drops bytes still in the UART when the machine powers off.

use core::fmt;

use super::cpu::{inb, outb, pause};

const THR: u16 = 0;
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_TRANSMITTER_EMPTY: u8 = 1 << 6;
/// Polls before a wait gives up: a missing UART must not hang the kernel.
const MAX_POLLS: u32 = 100_000;

/// A 16550 UART at an I/O port base.
#[derive(Debug, Clone, Copy)]
pub struct Uart {
    base: u16,
}

impl Uart {
    /// The UART at `base` (not initialised).
    pub const fn new(base: u16) -> Self {
        Self { base }
    }

    fn port(self, register: u16) -> u16 {
        self.base.wrapping_add(register)
    }

    /// 115200 baud, 8N1, FIFOs on, interrupts off.
    pub fn init(self) {
        outb(self.port(IER), 0x00);
        outb(self.port(LCR), 0x80);
        outb(self.port(THR), 0x01);
        outb(self.port(IER), 0x00);
        outb(self.port(LCR), 0x03);
        outb(self.port(FCR), 0xc7);
        outb(self.port(MCR), 0x03);
    }

    fn wait_for(self, bit: u8) {
        for _ in 0..MAX_POLLS {
            if inb(self.port(LSR)) & bit != 0 {
                return;
            }
            pause();
        }
    }

    /// Send one byte.
    pub fn write_byte(self, byte: u8) {
        self.wait_for(LSR_THR_EMPTY);
        outb(self.port(THR), byte);
    }

    /// Wait until every byte has left the UART (LSR.TEMT).
    pub fn drain(self) {
        self.wait_for(LSR_TRANSMITTER_EMPTY);
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            self.write_byte(byte);
        }
        Ok(())
    }
}
