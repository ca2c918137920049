//! A 16550 UART writer for subjects that own a COM port.
//!
//! Output only, polled, no interrupts: the subject owns the port through
//! its I/O bitmap, so every access goes straight to the (emulated) device.
//! Implements `core::fmt::Write`, so `write!`/`writeln!` format without an
//! allocator. Waiting for the transmitter is bounded: a missing or stuck
//! UART drops bytes instead of hanging the subject.

use core::fmt;

use crate::arch::{inb, outb};
use crate::info::Info;

/// Register offsets from the base port.
mod reg {
    pub const DATA: u16 = 0;
    pub const INTERRUPT_ENABLE: u16 = 1;
    pub const FIFO_CONTROL: u16 = 2;
    pub const LINE_CONTROL: u16 = 3;
    pub const MODEM_CONTROL: u16 = 4;
    pub const LINE_STATUS: u16 = 5;
}

/// Line status: transmit holding register empty.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Line status: transmitter completely idle (shift register empty too).
const LSR_TRANSMITTER_EMPTY: u8 = 1 << 6;
/// Polls of the line status register before giving up on one byte.
const SPIN_LIMIT: u32 = 1_000_000;

/// A 16550 at a fixed base port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    base: u16,
}

impl Uart {
    /// The UART at `base` (not yet initialised).
    pub const fn new(base: u16) -> Self {
        Self { base }
    }

    /// The UART behind the I/O port range named `name` on the info page
    /// (a 16550 needs 8 ports).
    pub fn from_info(info: &Info<'_>, name: &str) -> Option<Self> {
        let ports = info.io_ports(name)?;
        (ports.count >= 8).then_some(Self::new(ports.first))
    }

    /// Base port.
    pub const fn base(&self) -> u16 {
        self.base
    }

    fn port(&self, register: u16) -> u16 {
        self.base.wrapping_add(register)
    }

    /// Sets 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on,
    /// interrupts off.
    pub fn init(&self) {
        outb(self.port(reg::INTERRUPT_ENABLE), 0x00);
        outb(self.port(reg::LINE_CONTROL), 0x80); // divisor latch access
        outb(self.port(reg::DATA), 0x01); // divisor 1: 115200 baud
        outb(self.port(reg::INTERRUPT_ENABLE), 0x00);
        outb(self.port(reg::LINE_CONTROL), 0x03); // 8N1, latch off
        outb(self.port(reg::FIFO_CONTROL), 0xc7); // enable and clear FIFOs
        outb(self.port(reg::MODEM_CONTROL), 0x03); // DTR, RTS
    }

    fn wait_for(&self, status_bit: u8) -> bool {
        (0..SPIN_LIMIT).any(|_| inb(self.port(reg::LINE_STATUS)) & status_bit != 0)
    }

    /// Sends one byte (dropped if the transmitter never becomes ready).
    pub fn write_byte(&self, byte: u8) {
        if self.wait_for(LSR_THR_EMPTY) {
            outb(self.port(reg::DATA), byte);
        }
    }

    /// Sends every byte of `s`.
    pub fn write_bytes(&self, s: &[u8]) {
        for &byte in s {
            self.write_byte(byte);
        }
    }

    /// Waits until the last byte has left the shift register. Call it
    /// before powering off: Bochs drops bytes still in flight.
    pub fn flush(&self) {
        let _ = self.wait_for(LSR_TRANSMITTER_EMPTY);
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}
