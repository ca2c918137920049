//! The kernel's debug UART (a 16550 at the port the spec names).
//!
//! Output only, polled, no interrupts. Boot output waits for the
//! transmitter byte by byte ([`Uart::write_byte`]); at run time the
//! console's ring buffer feeds it without waiting ([`Uart::transmitter_empty`]
//! once, then up to [`FIFO_BYTES`] bytes by [`Uart::put`]), so that the
//! cost of kernel output is bounded where it is paid (`crate::console`).
//! [`Uart::drain`] waits until the transmitter is empty,
//! because Bochs drops bytes still in the UART when the machine powers off.
//!
//! The one exception to "output only": [`Uart::receive`] takes a received
//! byte, never waiting, for the console input owner (`console_rx`, its
//! only caller).

use core::fmt;

use super::cpu::{inb, outb, pause};
use crate::system::SPEC;

const THR: u16 = 0;
const IER: u16 = 1;
const FCR: u16 = 2;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const RBR: u16 = 0;
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;
const LSR_TRANSMITTER_EMPTY: u8 = 1 << 6;
/// Bytes the transmit FIFO holds (16550, FIFOs on: FCR written by `init`).
pub const FIFO_BYTES: usize = 16;
/// Polls before a wait gives up: a missing UART must not hang the kernel.
const MAX_POLLS: u32 = 100_000;

/// The debug UART: a 16550 at the port base the spec names. There is no
/// other constructor, so the port I/O below can only reach that device.
#[derive(Debug, Clone, Copy)]
pub struct Uart {
    base: u16,
}

impl Uart {
    /// The debug console (not initialised).
    pub const fn debug_console() -> Self {
        Self {
            base: SPEC.kernel.debug_uart_port,
        }
    }

    fn port(self, register: u16) -> u16 {
        self.base.wrapping_add(register)
    }

    /// Write one of the UART's eight registers.
    fn write(self, register: u16, value: u8) {
        // Safety: `base` is the hardware description's debug console, which
        // the composer never grants to a subject (`KernelSpec`), and
        // `register` is one of its eight registers; a 16550 does no DMA.
        unsafe { outb(self.port(register), value) }
    }

    /// Read one of the UART's registers.
    fn read(self, register: u16) -> u8 {
        // Safety: as for `write`.
        unsafe { inb(self.port(register)) }
    }

    /// 115200 baud, 8N1, FIFOs on, interrupts off.
    pub fn init(self) {
        self.write(IER, 0x00);
        self.write(LCR, 0x80);
        self.write(THR, 0x01);
        self.write(IER, 0x00);
        self.write(LCR, 0x03);
        self.write(FCR, 0xc7);
        self.write(MCR, 0x03);
    }

    fn wait_for(self, bit: u8) {
        for _ in 0..MAX_POLLS {
            if self.read(LSR) & bit != 0 {
                return;
            }
            pause();
        }
    }

    /// Send one byte.
    pub fn write_byte(self, byte: u8) {
        self.wait_for(LSR_THR_EMPTY);
        self.write(THR, byte);
    }

    /// Whether the transmit FIFO is empty (LSR.THRE with FIFOs on), so
    /// that [`FIFO_BYTES`] bytes can be [`put`](Self::put) without waiting.
    /// One port read.
    pub fn transmitter_empty(self) -> bool {
        self.read(LSR) & LSR_THR_EMPTY != 0
    }

    /// Hand one byte to the transmitter without looking at its status: only
    /// after [`transmitter_empty`](Self::transmitter_empty), at most
    /// [`FIFO_BYTES`] times (more would be dropped by the UART).
    pub fn put(self, byte: u8) {
        self.write(THR, byte);
    }

    /// The next received byte, if one is waiting (LSR.DR); never waits.
    /// Only the console input check point calls this (`console_rx`), so
    /// the receive side has one reader.
    pub fn receive(self) -> Option<u8> {
        if self.read(LSR) & LSR_DATA_READY == 0 {
            return None;
        }
        Some(self.read(RBR))
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
