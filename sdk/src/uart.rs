//! A 16550 UART for subjects that own a COM port.
//!
//! Polled, no interrupts: the subject owns the port through its I/O bitmap,
//! so every access goes straight to the (emulated) device. Implements
//! `core::fmt::Write`, so `write!`/`writeln!` format without an allocator,
//! and the `embedded-io` traits (`Write`, `Read`, `WriteReady`,
//! `ReadReady`), so drivers and protocol crates of the embedded ecosystem
//! take it as their byte stream. Every wait is bounded: a missing or stuck
//! UART drops bytes (inherent API, `fmt::Write`) or reports
//! [`UartError::TimedOut`] (`embedded-io`) instead of hanging the subject.
//!
//! Port access goes through [`PortIo`]: [`Hardware`] (`in`/`out`
//! instructions) on bare metal, a simulated device in host tests.

use core::fmt;

use crate::arch::{inb, outb};
use crate::info::Info;

/// Byte-wide port I/O: what the UART logic needs of the machine.
pub trait PortIo {
    /// Reads port `port`.
    fn inb(&self, port: u16) -> u8;
    /// Writes `value` to port `port`.
    fn outb(&self, port: u16, value: u8);
}

/// The real ports (`in`/`out` instructions; the I/O bitmap decides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hardware;

impl PortIo for Hardware {
    fn inb(&self, port: u16) -> u8 {
        inb(port)
    }

    fn outb(&self, port: u16, value: u8) {
        outb(port, value);
    }
}

/// Why an `embedded-io` call on the UART failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UartError {
    /// The transmitter never became ready, or no byte arrived, within the
    /// bounded wait.
    TimedOut,
}

impl fmt::Display for UartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("UART timed out"),
        }
    }
}

impl core::error::Error for UartError {}

impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            Self::TimedOut => embedded_io::ErrorKind::TimedOut,
        }
    }
}

/// Register offsets from the base port.
mod reg {
    pub const DATA: u16 = 0;
    pub const INTERRUPT_ENABLE: u16 = 1;
    pub const FIFO_CONTROL: u16 = 2;
    pub const LINE_CONTROL: u16 = 3;
    pub const MODEM_CONTROL: u16 = 4;
    pub const LINE_STATUS: u16 = 5;
}

/// Line status: a received byte is waiting in the data register.
const LSR_DATA_READY: u8 = 1 << 0;
/// Line status: transmit holding register empty.
const LSR_THR_EMPTY: u8 = 1 << 5;
/// Line status: transmitter completely idle (shift register empty too).
const LSR_TRANSMITTER_EMPTY: u8 = 1 << 6;
/// Polls of the line status register before giving up on one byte (fewer
/// in host tests, where the simulated device never changes its mind).
const SPIN_LIMIT: u32 = if cfg!(test) { 1_000 } else { 1_000_000 };

/// A 16550 at a fixed base port, reached through `P` (the real ports
/// unless a test says otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart<P: PortIo = Hardware> {
    base: u16,
    io: P,
}

impl Uart {
    /// The UART at `base` (not yet initialised).
    pub const fn new(base: u16) -> Self {
        Self::with_io(base, Hardware)
    }

    /// The UART behind the I/O port range named `name` on the info page
    /// (a 16550 needs 8 ports).
    pub fn from_info(info: &Info<'_>, name: &str) -> Option<Self> {
        let ports = info.io_ports(name)?;
        (ports.count >= 8).then_some(Self::new(ports.first))
    }
}

impl<P: PortIo> Uart<P> {
    /// The UART at `base`, reached through `io` (a simulated device in
    /// tests).
    pub const fn with_io(base: u16, io: P) -> Self {
        Self { base, io }
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
        self.io.outb(self.port(reg::INTERRUPT_ENABLE), 0x00);
        self.io.outb(self.port(reg::LINE_CONTROL), 0x80); // divisor latch access
        self.io.outb(self.port(reg::DATA), 0x01); // divisor 1: 115200 baud
        self.io.outb(self.port(reg::INTERRUPT_ENABLE), 0x00);
        self.io.outb(self.port(reg::LINE_CONTROL), 0x03); // 8N1, latch off
        self.io.outb(self.port(reg::FIFO_CONTROL), 0xc7); // enable and clear FIFOs
        self.io.outb(self.port(reg::MODEM_CONTROL), 0x03); // DTR, RTS
    }

    fn wait_for(&self, status_bit: u8) -> bool {
        (0..SPIN_LIMIT).any(|_| self.status(status_bit))
    }

    fn status(&self, status_bit: u8) -> bool {
        self.io.inb(self.port(reg::LINE_STATUS)) & status_bit != 0
    }

    /// Sends one byte (dropped if the transmitter never becomes ready).
    pub fn write_byte(&self, byte: u8) {
        let _ = self.try_write_byte(byte);
    }

    /// Sends one byte, or reports that the transmitter never became ready.
    pub fn try_write_byte(&self, byte: u8) -> Result<(), UartError> {
        if !self.wait_for(LSR_THR_EMPTY) {
            return Err(UartError::TimedOut);
        }
        self.io.outb(self.port(reg::DATA), byte);
        Ok(())
    }

    /// The received byte waiting in the UART, if any (never waits).
    pub fn try_read_byte(&self) -> Option<u8> {
        self.status(LSR_DATA_READY)
            .then(|| self.io.inb(self.port(reg::DATA)))
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

impl<P: PortIo> fmt::Write for Uart<P> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl<P: PortIo> embedded_io::ErrorType for Uart<P> {
    type Error = UartError;
}

/// `write` sends bytes while the transmitter takes them: at least one, or
/// [`UartError::TimedOut`] if it never became ready for the first; `flush`
/// waits (bounded) until the last byte has left the shift register.
impl<P: PortIo> embedded_io::Write for Uart<P> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        let mut sent = 0usize;
        for &byte in buf {
            match self.try_write_byte(byte) {
                Ok(()) => sent = sent.saturating_add(1),
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent)
    }

    fn flush(&mut self) -> Result<(), UartError> {
        if self.wait_for(LSR_TRANSMITTER_EMPTY) {
            Ok(())
        } else {
            Err(UartError::TimedOut)
        }
    }
}

/// `read` waits (bounded) for the first byte, then takes whatever else has
/// already arrived, without waiting again; [`UartError::TimedOut`] if
/// nothing arrived (`buf` empty: `Ok(0)` at once).
impl<P: PortIo> embedded_io::Read for Uart<P> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        let Some((first, rest)) = buf.split_first_mut() else {
            return Ok(0);
        };
        if !self.wait_for(LSR_DATA_READY) {
            return Err(UartError::TimedOut);
        }
        *first = self.io.inb(self.port(reg::DATA));
        let mut received = 1usize;
        for slot in rest {
            let Some(byte) = self.try_read_byte() else {
                break;
            };
            *slot = byte;
            received = received.saturating_add(1);
        }
        Ok(received)
    }
}

impl<P: PortIo> embedded_io::ReadReady for Uart<P> {
    fn read_ready(&mut self) -> Result<bool, UartError> {
        Ok(self.status(LSR_DATA_READY))
    }
}

impl<P: PortIo> embedded_io::WriteReady for Uart<P> {
    fn write_ready(&mut self) -> Result<bool, UartError> {
        Ok(self.status(LSR_THR_EMPTY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use embedded_io::{Read, ReadReady, Write, WriteReady};
    use std::collections::VecDeque;
    use std::vec::Vec;

    const BASE: u16 = 0x3f8;

    /// A 16550 as the UART logic sees it: received bytes queue up, the
    /// transmitter takes `room` more bytes before it stalls for good.
    #[derive(Debug, Default)]
    struct Sim {
        state: RefCell<SimState>,
    }

    #[derive(Debug, Default)]
    struct SimState {
        sent: Vec<u8>,
        incoming: VecDeque<u8>,
        room: usize,
        writes: Vec<(u16, u8)>,
    }

    impl PortIo for &Sim {
        fn inb(&self, port: u16) -> u8 {
            let mut s = self.state.borrow_mut();
            match port.wrapping_sub(BASE) {
                reg::LINE_STATUS => {
                    let ready = if s.incoming.is_empty() {
                        0
                    } else {
                        LSR_DATA_READY
                    };
                    let idle = if s.room > 0 {
                        LSR_THR_EMPTY | LSR_TRANSMITTER_EMPTY
                    } else {
                        0
                    };
                    ready | idle
                }
                reg::DATA => s.incoming.pop_front().unwrap_or(0),
                _ => 0,
            }
        }

        fn outb(&self, port: u16, value: u8) {
            let mut s = self.state.borrow_mut();
            s.writes.push((port, value));
            if port == BASE && s.room > 0 {
                s.room -= 1;
                s.sent.push(value);
            }
        }
    }

    fn sim(room: usize, incoming: &[u8]) -> Sim {
        let sim = Sim::default();
        sim.state.borrow_mut().room = room;
        sim.state.borrow_mut().incoming = incoming.iter().copied().collect();
        sim
    }

    #[test]
    fn init_programs_115200_8n1() {
        let device = sim(0, &[]);
        Uart::with_io(BASE, &device).init();
        let writes = device.state.borrow().writes.clone();
        assert!(writes.contains(&(BASE + reg::LINE_CONTROL, 0x03)));
        assert!(writes.contains(&(BASE + reg::DATA, 0x01)));
    }

    #[test]
    fn embedded_io_write_sends_what_fits_then_times_out() {
        let device = sim(3, &[]);
        let mut uart = Uart::with_io(BASE, &device);
        assert_eq!(uart.write(b""), Ok(0));
        assert_eq!(uart.write(b"hello"), Ok(3));
        assert_eq!(device.state.borrow().sent, b"hel");
        assert_eq!(uart.write_ready(), Ok(false));
        assert_eq!(uart.write(b"lo"), Err(UartError::TimedOut));
        assert_eq!(Write::flush(&mut uart), Err(UartError::TimedOut));
        assert_eq!(
            embedded_io::Error::kind(&UartError::TimedOut),
            embedded_io::ErrorKind::TimedOut
        );
    }

    #[test]
    fn write_all_and_fmt_go_through() {
        let device = sim(64, &[]);
        let mut uart = Uart::with_io(BASE, &device);
        uart.write_all(b"ab").unwrap();
        assert_eq!(Write::flush(&mut uart), Ok(()));
        core::fmt::Write::write_str(&mut uart, "cd").unwrap();
        uart.write_bytes(b"ef");
        assert_eq!(device.state.borrow().sent, b"abcdef");
    }

    #[test]
    fn embedded_io_read_takes_what_arrived() {
        let device = sim(0, b"xyz");
        let mut uart = Uart::with_io(BASE, &device);
        assert_eq!(uart.read(&mut []), Ok(0));
        assert_eq!(uart.read_ready(), Ok(true));
        let mut buf = [0u8; 2];
        assert_eq!(uart.read(&mut buf), Ok(2));
        assert_eq!(&buf, b"xy");
        let mut buf = [0u8; 8];
        assert_eq!(uart.read(&mut buf), Ok(1));
        assert_eq!(buf[0], b'z');
        assert_eq!(uart.read_ready(), Ok(false));
        assert_eq!(uart.try_read_byte(), None);
    }

    #[test]
    fn read_times_out_when_nothing_arrives() {
        let device = sim(0, &[]);
        let mut uart = Uart::with_io(BASE, &device);
        assert_eq!(uart.read(&mut [0u8; 4]), Err(UartError::TimedOut));
    }
}
