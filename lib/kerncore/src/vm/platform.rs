//! The emulated I/O ports of a VM: the PC devices Linux probes on its way
//! to a shell, and nothing else.
//!
//! - a 16550-style UART at 0x3f8 (reported as a 16450: no FIFO), always
//!   ready to send: the line status register never makes the guest wait,
//!   so a verbose boot does not poll it hundreds of thousands of times.
//!   Bytes written are collected into lines ([`Line`]) that the kernel
//!   prints on its console with the subject's name. The receive side has
//!   the 16450's one receiver buffer register: the kernel hands it the next
//!   byte typed on its console ([`Uart::receive`]) whenever the guest has
//!   read the previous one, so the guest never sees an overrun (the
//!   kernel's ring counts those; docs/kernel.md, "Console input"). Its
//!   interrupt (IRQ 4) follows the 16550's rules: received data (IER bit 0)
//!   before transmitter empty (IER bit 1), both reported in IIR, as the
//!   8250 driver expects;
//! - the two 8259 PICs (0x20-0x21, 0xa0-0xa1): initialisation words, the
//!   mask, end of interrupt, IRR/ISR reads; the master delivers IRQ 0 (PIT)
//!   and IRQ 4 (UART) at its programmed vector base;
//! - the 8254 PIT channel 0 (0x40, 0x43): modes 0 (one-shot) and 2/3
//!   (periodic), counted on the TSC; its expiry raises IRQ 0;
//! - CMOS/RTC (0x70-0x71): a fixed date, 2026-01-01 00:00:00, in BCD with
//!   the update-in-progress bit clear;
//! - PCI configuration mechanism 1 (0xcf8, 0xcfc-0xcff): the address
//!   register reads back; configuration reads are all ones (no device),
//!   or, for a VM with a virtio console ([`Platform::virtio_console`]),
//!   its header ([`crate::vm::pci`]); the console's I/O BAR is not
//!   emulated here: its accesses are its monitor's;
//! - ports of devices a PC has but this VM does not (the keyboard
//!   controller, the other COM ports, the POST/delay port 0x80, ELCR,
//!   port B, the reset and A20 registers): reads all ones, writes ignored;
//! - any other port is not emulated ([`Platform::port_in`] and
//!   [`Platform::port_out`] say so) and is a fault of the subject.
//!
//! Width: an access of 2 or 4 bytes is emulated only if every port it
//! touches lies in the block of its first port (one device's registers,
//! or one absent range): `out dx, eax` at 0x3ff, the UART's last port,
//! would also write 0x400-0x402, so it is not emulated (a fault of the
//! subject, or its monitor's if the monitor chose those ports) and changes
//! nothing. Inside a byte-wide device a wide access is split into
//! byte accesses at consecutive ports, as a PC's bus does; PCI's address
//! register (0xcf8, 4 bytes) and data window (0xcfc-0xcff) take it whole.
//!
//! [`Platform::new`] is the power-on state, and the state a restarted VM
//! gets back (the kernel resets the VM's whole state slot,
//! `kernel/src/arch/x86_64/vm.rs`).

use septum_abi::TscCycles;

use crate::ioport::IoAccess;
use crate::spec::VirtioConsoleSpec;
use crate::vm::pci::PciConfig;

/// UART base port (COM1).
pub const UART_BASE: u16 = 0x3f8;
/// Master PIC command port.
const PIC_MASTER: u16 = 0x20;
/// Slave PIC command port.
const PIC_SLAVE: u16 = 0xa0;
/// PIT input clock in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// IRQ of the PIT.
pub const IRQ_PIT: u8 = 0;
/// IRQ of COM1.
pub const IRQ_UART: u8 = 4;

/// Ports that are absent: reads all ones, writes ignored.
const ABSENT: [(u16, u16); 10] = [
    (0x60, 0x60),
    (0x61, 0x61),
    (0x64, 0x64),
    (0x80, 0x80),
    (0x92, 0x92),
    (0x2e8, 0x2ef),
    (0x2f8, 0x2ff),
    (0x3e8, 0x3ef),
    (0x4d0, 0x4d1),
    (0xcf9, 0xcf9),
];

/// Mask of an access of `size` bytes (1, 2 or 4).
const fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}

/// One 8259 interrupt controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pic {
    /// Interrupt mask register.
    pub imr: u8,
    /// Interrupt request register.
    pub irr: u8,
    /// In-service register.
    pub isr: u8,
    /// Vector of IRQ 0 of this controller (ICW2).
    pub base: u8,
    /// Next initialisation word expected (0: none; 2, 3, 4: ICW2-4).
    init: u8,
    /// ICW1 asked for ICW4.
    needs_icw4: bool,
    /// OCW3 selected ISR (else IRR) for reads of the command port.
    read_isr: bool,
}

impl Pic {
    /// Power-on state: everything masked.
    pub const fn new() -> Self {
        Self {
            imr: 0xff,
            irr: 0,
            isr: 0,
            base: 0,
            init: 0,
            needs_icw4: false,
            read_isr: false,
        }
    }

    fn command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1: start initialisation.
            self.init = 2;
            self.needs_icw4 = value & 1 != 0;
            self.imr = 0;
            self.isr = 0;
            self.irr = 0;
            self.read_isr = false;
        } else if value & 0x08 != 0 {
            // OCW3: register read select.
            if value & 0x02 != 0 {
                self.read_isr = value & 0x01 != 0;
            }
        } else if value & 0x20 != 0 {
            // OCW2: end of interrupt (specific or the highest in service).
            if value & 0x40 != 0 {
                self.isr &= !(1u8 << (value & 7));
            } else {
                self.isr &= self.isr.wrapping_sub(1);
            }
        }
    }

    fn data(&mut self, value: u8) {
        match self.init {
            2 => {
                self.base = value & 0xf8;
                self.init = 3;
            }
            3 => self.init = if self.needs_icw4 { 4 } else { 0 },
            4 => self.init = 0,
            _ => self.imr = value,
        }
    }

    fn read_command(&self) -> u8 {
        if self.read_isr { self.isr } else { self.irr }
    }

    /// Set IRQ `irq` (0..7) pending.
    pub fn raise(&mut self, irq: u8) {
        self.irr |= 1u8 << (irq & 7);
    }

    /// The IRQ to deliver now, if any: the lowest-numbered requested and
    /// unmasked one, if no IRQ of the same or higher priority is in
    /// service.
    pub const fn deliverable(&self) -> Option<u8> {
        let ready = self.irr & !self.imr;
        if ready == 0 {
            return None;
        }
        let irq = ready.trailing_zeros() as u8;
        // In-service IRQs 0..=irq (same or higher priority) block it.
        let blocking = self.isr & ((2u16 << irq) as u8).wrapping_sub(1);
        if blocking != 0 { None } else { Some(irq) }
    }

    /// Deliver `irq`: in service, no longer requested; returns its vector.
    pub fn acknowledge(&mut self, irq: u8) -> u8 {
        let bit = 1u8 << (irq & 7);
        self.irr &= !bit;
        self.isr |= bit;
        self.base | (irq & 7)
    }
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

/// Channel 0 of the 8254 PIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pit {
    /// Mode (0-5) of the last control word.
    mode: u8,
    /// Low byte written, high byte expected next.
    low: Option<u8>,
    /// The reload value (0 means 65536).
    reload: u16,
    /// TSC of the next expiry, if counting.
    pub deadline: Option<TscCycles>,
    /// TSC cycles of one PIT period (the reload value), for periodic modes.
    period: u64,
}

impl Pit {
    /// Power-on state: not counting.
    pub const fn new() -> Self {
        Self {
            mode: 0,
            low: None,
            reload: 0,
            deadline: None,
            period: 0,
        }
    }

    /// TSC cycles of `count` PIT ticks at `tsc_khz`.
    pub const fn cycles(count: u64, tsc_khz: u64) -> u64 {
        let product = (count as u128)
            .saturating_mul(tsc_khz as u128)
            .saturating_mul(1000);
        let cycles = match product.checked_div(PIT_HZ as u128) {
            Some(cycles) => cycles,
            None => 0,
        };
        if cycles > u64::MAX as u128 {
            u64::MAX
        } else {
            cycles as u64
        }
    }

    fn control(&mut self, value: u8) {
        // Channel 0 only; a latch command (access 0) changes nothing.
        if value >> 6 == 0 && (value >> 4) & 3 != 0 {
            self.mode = (value >> 1) & 7;
            self.low = None;
            self.deadline = None;
        }
    }

    fn counter(&mut self, value: u8, now: TscCycles, tsc_khz: u64) {
        match self.low.take() {
            None => self.low = Some(value),
            Some(low) => {
                self.reload = u16::from_le_bytes([low, value]);
                let count = match self.reload {
                    0 => 0x1_0000,
                    n => u64::from(n),
                };
                self.period = Self::cycles(count, tsc_khz).max(1);
                self.deadline = Some(TscCycles(now.get().saturating_add(self.period)));
            }
        }
    }

    /// Whether the counter expired by `now`; a periodic mode is re-armed
    /// for its next period after `now` (expiries missed while the VM did
    /// not run are merged into one, as a late tick).
    pub fn expire(&mut self, now: TscCycles) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        if now < deadline {
            return false;
        }
        self.deadline = match self.mode {
            2 | 3 | 6 | 7 => Some(TscCycles(now.get().saturating_add(self.period))),
            _ => None,
        };
        true
    }
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

/// The UART's registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scratch: u8,
    divisor: u16,
    /// A transmitter-empty interrupt is pending (cleared by reading IIR
    /// while it is the one reported, or by writing THR again).
    thre_pending: bool,
    /// The receiver buffer register: a byte received and not yet read
    /// (LSR bit 0, "data ready").
    rbr: Option<u8>,
}

impl Uart {
    /// Power-on state.
    pub const fn new() -> Self {
        Self {
            ier: 0,
            lcr: 0,
            mcr: 0,
            scratch: 0,
            divisor: 12,
            thre_pending: false,
            rbr: None,
        }
    }

    const fn dlab(&self) -> bool {
        self.lcr & 0x80 != 0
    }

    /// Whether the UART asserts its interrupt line.
    pub const fn interrupt(&self) -> bool {
        self.receive_interrupt() || self.transmit_interrupt()
    }

    /// Received data available, and its interrupt enabled (IER bit 0).
    const fn receive_interrupt(&self) -> bool {
        self.rbr.is_some() && self.ier & 0x01 != 0
    }

    /// Transmitter holding register empty, and its interrupt enabled (IER
    /// bit 1).
    const fn transmit_interrupt(&self) -> bool {
        self.thre_pending && self.ier & 0x02 != 0
    }

    /// Whether the receiver buffer register is empty, so the UART can
    /// take the next byte typed ([`Uart::receive`]).
    pub const fn can_receive(&self) -> bool {
        self.rbr.is_none()
    }

    /// A byte arrives on the line. The caller hands one over only when
    /// [`Uart::can_receive`]; a byte that arrives while the register is
    /// full is dropped (a 16450 overrun) and `false` returned.
    pub fn receive(&mut self, byte: u8) -> bool {
        if self.rbr.is_some() {
            return false;
        }
        self.rbr = Some(byte);
        true
    }

    /// The line status register: data ready (bit 0) as received,
    /// transmitter holding and shift registers always empty.
    const fn line_status(&self) -> u8 {
        0x60 | self.rbr.is_some() as u8
    }

    /// The interrupt identification register (no FIFO, so bits 7:6 clear):
    /// received data available (0x04) before transmitter empty (0x02);
    /// 0x01 "none pending". Reading it while it reports the transmitter
    /// clears that interrupt, as on a 16550.
    fn identify(&mut self) -> u8 {
        if self.receive_interrupt() {
            0x04
        } else if self.transmit_interrupt() {
            self.thre_pending = false;
            0x02
        } else {
            0x01
        }
    }

    fn read(&mut self, offset: u16) -> u8 {
        match offset {
            0 if self.dlab() => self.divisor.to_le_bytes()[0],
            0 => self.rbr.take().unwrap_or(0),
            1 if self.dlab() => self.divisor.to_le_bytes()[1],
            1 => self.ier,
            2 => self.identify(),
            3 => self.lcr,
            4 => self.mcr,
            5 => self.line_status(),
            6 => {
                if self.mcr & 0x10 != 0 {
                    // Loopback: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2.
                    let m = self.mcr;
                    ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
                } else {
                    // DCD, DSR, CTS.
                    0xb0
                }
            }
            _ => self.scratch,
        }
    }

    /// Write `value` at `offset`; returns the byte sent, if any.
    fn write(&mut self, offset: u16, value: u8) -> Option<u8> {
        match offset {
            0 if self.dlab() => {
                self.divisor = u16::from_le_bytes([value, self.divisor.to_le_bytes()[1]]);
            }
            0 => {
                self.thre_pending = true;
                if self.mcr & 0x10 == 0 {
                    return Some(value);
                }
                // Loopback: the byte comes back on the receive side.
                self.receive(value);
            }
            1 if self.dlab() => {
                self.divisor = u16::from_le_bytes([self.divisor.to_le_bytes()[0], value]);
            }
            1 => {
                // Enabling the transmitter interrupt with the holding
                // register empty raises it at once (a 16550 does).
                if value & 0x02 != 0 && self.ier & 0x02 == 0 {
                    self.thre_pending = true;
                }
                self.ier = value & 0x0f;
            }
            3 => self.lcr = value,
            4 => self.mcr = value & 0x1f,
            7 => self.scratch = value,
            _ => {}
        }
        None
    }
}

impl Default for Uart {
    fn default() -> Self {
        Self::new()
    }
}

/// A console line being collected from the UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    bytes: [u8; Self::CAPACITY],
    len: usize,
}

impl Line {
    /// Longest line kept; a longer one is printed in pieces.
    pub const CAPACITY: usize = 160;

    /// Empty.
    pub const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }

    /// Add `byte`; returns true when the line is complete (a newline, or
    /// full): print [`Line::text`], then [`Line::clear`]. Carriage returns
    /// and other control characters are dropped.
    pub fn push(&mut self, byte: u8) -> bool {
        if byte == b'\n' {
            return true;
        }
        if !(0x20..=0x7e).contains(&byte) {
            return false;
        }
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len = self.len.saturating_add(1);
        }
        self.len >= Self::CAPACITY
    }

    /// The collected text (printable ASCII only).
    pub fn text(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// Start a new line.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

/// What an OUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Emulated; nothing more to do.
    Done,
    /// The UART sent this byte.
    Sent(u8),
    /// Not an emulated port: a fault of the subject.
    NotEmulated,
}

/// The emulated devices of one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The UART.
    pub uart: Uart,
    /// Master PIC.
    pub master: Pic,
    /// Slave PIC.
    pub slave: Pic,
    /// PIT channel 0.
    pub pit: Pit,
    /// Selected CMOS register.
    cmos_index: u8,
    /// PCI configuration mechanism.
    pci: PciConfig,
    /// The VM's virtio console, if it has one (the kernel sets it from the
    /// spec before each port access).
    pub virtio_console: Option<VirtioConsoleSpec>,
}

impl Platform {
    /// Power-on state.
    pub const fn new() -> Self {
        Self {
            uart: Uart::new(),
            master: Pic::new(),
            slave: Pic::new(),
            pit: Pit::new(),
            cmos_index: 0,
            pci: PciConfig::new(),
            virtio_console: None,
        }
    }

    /// IN of `size` bytes from `port`: the value, or `None` if the access
    /// is not emulated: a port the kernel does not emulate, or an access
    /// that reaches past the block of its first port ([`block_of`]). A
    /// wide access to a byte-wide device reads its ports one after the
    /// other (as the bus splits it on a PC); PCI's address and data
    /// registers take the access whole.
    pub fn port_in(&mut self, port: u16, size: u8) -> Option<u32> {
        if !in_one_block(port, size) {
            return None;
        }
        let value = match port {
            0xcf8 if size == 4 => self.pci.address,
            0xcfc..=0xcff => self.pci.read_data(port, self.virtio_console),
            0xcf8..=0xcfb => u32::MAX,
            _ => (0..size).fold(0u32, |value, byte| {
                let at = port.wrapping_add(u16::from(byte));
                let shift = u32::from(byte).wrapping_mul(8);
                value
                    | u32::from(self.read_byte(at))
                        .checked_shl(shift)
                        .unwrap_or(0)
            }),
        };
        Some(value & size_mask(size))
    }

    /// IN of one byte from `port` of a byte-wide device ([`block_of`]).
    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            0x3f8..=0x3ff => self.uart.read(port.wrapping_sub(UART_BASE)),
            0x20 => self.master.read_command(),
            0x21 => self.master.imr,
            0xa0 => self.slave.read_command(),
            0xa1 => self.slave.imr,
            // Counter reads: not modelled (Linux does not calibrate with
            // the PIT when CPUID gives the TSC rate).
            0x40..=0x43 => 0,
            0x70 => self.cmos_index,
            0x71 => cmos(self.cmos_index & 0x7f),
            // Absent devices.
            _ => 0xff,
        }
    }

    /// OUT of `value` (`size` bytes) to `port` at time `now`; as
    /// [`Platform::port_in`], an access that is not wholly inside one
    /// emulated block is not emulated, and changes nothing.
    pub fn port_out(
        &mut self,
        port: u16,
        size: u8,
        value: u32,
        now: TscCycles,
        tsc_khz: u64,
    ) -> Out {
        if !in_one_block(port, size) {
            return Out::NotEmulated;
        }
        match port {
            0xcf8 if size == 4 => self.pci.address = value,
            0xcfc..=0xcff => self.pci.write_data(port, size, value, self.virtio_console),
            0xcf8..=0xcfb => {}
            _ => {
                // At most one byte of an access reaches THR (port 0x3f8).
                let mut sent = None;
                for byte in 0..size {
                    let at = port.wrapping_add(u16::from(byte));
                    let shift = u32::from(byte).wrapping_mul(8);
                    let part = value.checked_shr(shift).unwrap_or(0) as u8;
                    if let Some(out) = self.write_byte(at, part, now, tsc_khz) {
                        sent = Some(out);
                    }
                }
                if let Some(byte) = sent {
                    return Out::Sent(byte);
                }
            }
        }
        Out::Done
    }

    /// OUT of one byte to `port` of a byte-wide device ([`block_of`]);
    /// returns the byte the UART sent, if any.
    fn write_byte(&mut self, port: u16, byte: u8, now: TscCycles, tsc_khz: u64) -> Option<u8> {
        match port {
            0x3f8..=0x3ff => return self.uart.write(port.wrapping_sub(UART_BASE), byte),
            PIC_MASTER => self.master.command(byte),
            0x21 => self.master.data(byte),
            PIC_SLAVE => self.slave.command(byte),
            0xa1 => self.slave.data(byte),
            0x40 => self.pit.counter(byte, now, tsc_khz),
            0x43 => self.pit.control(byte),
            0x70 => self.cmos_index = byte,
            // PIT channels 1 and 2, CMOS data, absent devices.
            _ => {}
        }
        None
    }

    /// Raise the interrupts whose sources fired by `now` (the PIT's expiry,
    /// the UART's line) on the master PIC.
    pub fn update(&mut self, now: TscCycles) {
        if self.pit.expire(now) {
            self.master.raise(IRQ_PIT);
        }
        if self.uart.interrupt() {
            self.master.raise(IRQ_UART);
        }
    }

    /// Raise master-PIC line `irq` (a device's interrupt, e.g. the virtio
    /// console's, asserted by its monitor): pending until delivered.
    pub fn raise_line(&mut self, irq: u8) {
        self.master.raise(irq);
    }

    /// The vector to inject now, if any (without delivering it).
    pub const fn pending(&self) -> Option<u8> {
        self.master.deliverable()
    }

    /// Deliver the pending interrupt: its vector.
    pub fn acknowledge(&mut self) -> Option<u8> {
        let irq = self.master.deliverable()?;
        Some(self.master.acknowledge(irq))
    }
}

impl Default for Platform {
    fn default() -> Self {
        Self::new()
    }
}

/// The blocks of ports the kernel emulates besides [`ABSENT`]: each
/// device's registers, as (first, last). PCI's address register and data
/// window are two blocks.
const EMULATED: [(u16, u16); 7] = [
    (PIC_MASTER, 0x21),
    (PIC_SLAVE, 0xa1),
    (0x40, 0x43),
    (0x70, 0x71),
    (UART_BASE, 0x3ff),
    (0xcf8, 0xcfb),
    (0xcfc, 0xcff),
];

/// The emulated block that holds `port`, as (first, last), if any.
fn block_of(port: u16) -> Option<(u16, u16)> {
    EMULATED
        .iter()
        .chain(ABSENT.iter())
        .find(|&&(first, last)| (first..=last).contains(&port))
        .copied()
}

/// Whether the `size`-byte access at `port` lies wholly in one emulated
/// block: an access that reaches past its block (`out dx, eax` at 0x3ff
/// also writes 0x400-0x402) is not emulated, whatever its first port.
fn in_one_block(port: u16, size: u8) -> bool {
    block_of(port).is_some_and(|(first, last)| {
        IoAccess { port, size }.within(first, last.wrapping_sub(first).saturating_add(1))
    })
}

/// A CMOS register: the fixed date 2026-01-01 00:00:00 (a Thursday) in BCD,
/// status A with update-in-progress clear, status B 24-hour BCD, status D
/// "valid RAM".
const fn cmos(index: u8) -> u8 {
    match index {
        0x06 => 0x05,
        0x07 | 0x08 => 0x01,
        0x09 => 0x26,
        0x0a => 0x26,
        0x0b => 0x02,
        0x0d => 0x80,
        0x32 => 0x20,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const T0: TscCycles = TscCycles(1000);

    fn out(p: &mut Platform, port: u16, value: u8) -> Out {
        p.port_out(port, 1, u32::from(value), T0, 1_000_000)
    }

    #[test]
    fn the_8250_probe_finds_a_16450() {
        let mut p = Platform::new();
        // IER holds its four bits.
        out(&mut p, 0x3f9, 0);
        assert_eq!(p.port_in(0x3f9, 1), Some(0));
        out(&mut p, 0x3f9, 0x0f);
        assert_eq!(p.port_in(0x3f9, 1), Some(0x0f));
        out(&mut p, 0x3f9, 0);
        // Loopback: MCR 0x1a reads back as MSR 0x90.
        out(&mut p, 0x3fc, 0x1a);
        assert_eq!(p.port_in(0x3fe, 1).unwrap() & 0xf0, 0x90);
        out(&mut p, 0x3fc, 0);
        // No FIFO: IIR bits 7:6 clear; the scratch register holds.
        out(&mut p, 0x3fa, 1);
        assert_eq!(p.port_in(0x3fa, 1).unwrap() >> 6, 0);
        out(&mut p, 0x3ff, 0xa5);
        assert_eq!(p.port_in(0x3ff, 1), Some(0xa5));
        // Always ready to send.
        assert_eq!(p.port_in(0x3fd, 1), Some(0x60));
        assert_eq!(out(&mut p, 0x3f8, b'A'), Out::Sent(b'A'));
    }

    #[test]
    fn thre_is_asserted_when_enabled_and_after_each_byte() {
        let mut p = Platform::new();
        out(&mut p, 0x3f9, 0x02);
        assert!(p.uart.interrupt());
        assert_eq!(p.port_in(0x3fa, 1), Some(0x02));
        assert_eq!(p.port_in(0x3fa, 1), Some(0x01));
        out(&mut p, 0x3f8, b'x');
        assert!(p.uart.interrupt());
        out(&mut p, 0x3f9, 0);
        assert!(!p.uart.interrupt());
    }

    #[test]
    fn received_bytes_are_read_and_interrupt_before_thre() {
        let mut p = Platform::new();
        for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01)] {
            out(&mut p, port, value);
        }
        out(&mut p, 0x21, 0x00);
        // Polled: no interrupt enabled, LSR.DR says a byte is there.
        assert_eq!(p.port_in(0x3fd, 1), Some(0x60));
        assert!(p.uart.can_receive());
        assert!(p.uart.receive(b'a'));
        assert!(!p.uart.can_receive());
        assert!(!p.uart.receive(b'b'), "one receiver buffer register");
        assert!(!p.uart.interrupt(), "IER bit 0 clear");
        assert_eq!(p.port_in(0x3fd, 1), Some(0x61));
        assert_eq!(p.port_in(0x3fa, 1), Some(0x01));
        assert_eq!(p.port_in(0x3f8, 1), Some(u32::from(b'a')));
        assert_eq!(p.port_in(0x3fd, 1), Some(0x60));
        assert_eq!(p.port_in(0x3f8, 1), Some(0), "empty RBR");
        // Interrupt-driven: received data before the transmitter; reading
        // IIR does not clear the data interrupt, reading RBR does.
        out(&mut p, 0x3f9, 0x03);
        assert!(p.uart.receive(b'c'));
        p.update(T0);
        assert_eq!(p.acknowledge(), Some(0x34), "IRQ 4");
        assert_eq!(p.port_in(0x3fa, 1), Some(0x04));
        assert_eq!(p.port_in(0x3fa, 1), Some(0x04));
        assert_eq!(p.port_in(0x3f8, 1), Some(u32::from(b'c')));
        assert_eq!(p.port_in(0x3fa, 1), Some(0x02), "then THRE");
        assert_eq!(p.port_in(0x3fa, 1), Some(0x01));
        assert!(!p.uart.interrupt());
        // DLAB hides RBR: the divisor reads back, the byte stays.
        assert!(p.uart.receive(b'd'));
        out(&mut p, 0x3fb, 0x80);
        assert_eq!(p.port_in(0x3f8, 1), Some(12));
        out(&mut p, 0x3fb, 0x03);
        assert_eq!(p.port_in(0x3f8, 1), Some(u32::from(b'd')));
    }

    #[test]
    fn loopback_returns_sent_bytes_to_the_receiver() {
        let mut p = Platform::new();
        out(&mut p, 0x3fc, 0x10);
        assert_eq!(out(&mut p, 0x3f8, b'z'), Out::Done, "not on the wire");
        assert_eq!(p.port_in(0x3fd, 1), Some(0x61));
        assert_eq!(p.port_in(0x3f8, 1), Some(u32::from(b'z')));
    }

    #[test]
    fn pic_initialisation_mask_and_eoi() {
        let mut p = Platform::new();
        for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01)] {
            out(&mut p, port, value);
        }
        assert_eq!(p.master.base, 0x30);
        out(&mut p, 0x21, 0xff);
        assert_eq!(p.port_in(0x21, 1), Some(0xff));
        p.master.raise(0);
        assert_eq!(p.pending(), None, "masked");
        out(&mut p, 0x21, 0xfe);
        assert_eq!(p.acknowledge(), Some(0x30));
        p.master.raise(0);
        assert_eq!(p.pending(), None, "IRQ 0 in service");
        out(&mut p, 0x20, 0x0b);
        assert_eq!(p.port_in(0x20, 1), Some(1), "ISR read");
        out(&mut p, 0x20, 0x60);
        assert_eq!(p.pending(), Some(0));
        assert_eq!(p.acknowledge(), Some(0x30));
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.master.isr, 0);
    }

    #[test]
    fn pit_one_shot_and_periodic() {
        let mut p = Platform::new();
        let khz = 1_193_182 / 1000 * 1000 / 1000;
        // Mode 0, lo/hi, count 1000.
        p.port_out(0x43, 1, 0x30, T0, khz);
        p.port_out(0x40, 1, 0xe8, T0, khz);
        p.port_out(0x40, 1, 0x03, T0, khz);
        let deadline = p.pit.deadline.unwrap().get();
        let period = Pit::cycles(1000, khz);
        assert_eq!(deadline, 1000 + period);
        assert!(!p.pit.expire(TscCycles(deadline - 1)));
        assert!(p.pit.expire(TscCycles(deadline)));
        assert_eq!(p.pit.deadline, None, "one-shot");
        // Mode 2 re-arms.
        p.port_out(0x43, 1, 0x34, T0, khz);
        p.port_out(0x40, 1, 0xe8, T0, khz);
        p.port_out(0x40, 1, 0x03, T0, khz);
        assert!(p.pit.expire(TscCycles(5000)));
        assert_eq!(p.pit.deadline, Some(TscCycles(5000 + period)));
        // The expiry raises IRQ 0.
        for (port, value) in [(0x20, 0x11), (0x21, 0x30), (0x21, 0x04), (0x21, 0x01)] {
            out(&mut p, port, value);
        }
        p.update(TscCycles(u64::MAX));
        assert_eq!(p.pending(), Some(0));
        assert_eq!(Pit::cycles(1_193_182, 2_000_000), 2_000_000_000);
    }

    #[test]
    fn cmos_pci_and_absent_ports() {
        let mut p = Platform::new();
        out(&mut p, 0x70, 0x09);
        assert_eq!(p.port_in(0x71, 1), Some(0x26));
        out(&mut p, 0x70, 0x8a);
        assert_eq!(
            p.port_in(0x71, 1).unwrap() & 0x80,
            0,
            "no update in progress"
        );
        p.port_out(0xcf8, 4, 0x8000_0000, T0, 1);
        assert_eq!(p.port_in(0xcf8, 4), Some(0x8000_0000));
        assert_eq!(p.port_in(0xcfc, 4), Some(u32::MAX), "no device");
        assert_eq!(p.port_in(0xcfe, 2), Some(0xffff));
        assert_eq!(p.port_in(0x64, 1), Some(0xff));
        assert_eq!(out(&mut p, 0x80, 0), Out::Done);
        assert_eq!(p.port_in(0x1f0, 1), None);
        assert_eq!(out(&mut p, 0x1f0, 0), Out::NotEmulated);
    }

    #[test]
    fn accesses_past_the_end_of_a_block_are_not_emulated() {
        let mut p = Platform::new();
        out(&mut p, 0x3ff, 0x11);
        // `out dx, eax` / `out dx, ax` at the UART's last port reach
        // 0x400..: not emulated, and the scratch register keeps its value.
        for size in [2, 4] {
            assert_eq!(
                p.port_out(0x3ff, size, 0xa5a5_a5a5, T0, 1),
                Out::NotEmulated
            );
            assert_eq!(p.port_in(0x3ff, size), None);
        }
        assert_eq!(p.port_in(0x3ff, 1), Some(0x11));
        // The same at the ends of the other blocks.
        for (port, size) in [
            (0x21, 2),
            (0xa1, 2),
            (0x43, 2),
            (0x42, 4),
            (0x71, 2),
            (0xcfb, 2),
            (0xcfd, 4),
            (0xcfe, 4),
            (0xcff, 2),
            (0x80, 2),
            (0x4d1, 2),
            (0x3f7, 2),
            (0x1f, 2),
        ] {
            assert_eq!(p.port_in(port, size), None, "in {port:#x}/{size}");
            assert_eq!(
                p.port_out(port, size, 0, T0, 1),
                Out::NotEmulated,
                "out {port:#x}/{size}"
            );
        }
        // Inside one block a wide access is emulated.
        p.port_out(0xcf8, 4, 0x8000_0000, T0, 1);
        assert_eq!(p.port_in(0xcfc, 4), Some(u32::MAX));
        assert_eq!(p.port_in(0xcfe, 2), Some(0xffff));
        assert_eq!(p.port_in(0x4d0, 2), Some(0xffff));
        assert_eq!(p.port_in(0xcfa, 2), Some(0xffff));
    }

    #[test]
    fn wide_accesses_to_byte_devices_are_split_into_bytes() {
        let mut p = Platform::new();
        // `out dx, ax` at 0x3fe: MSR (read-only) gets the low byte, the
        // scratch register the high one.
        assert_eq!(p.port_out(0x3fe, 2, 0x5a_00, T0, 1), Out::Done);
        assert_eq!(p.port_in(0x3ff, 1), Some(0x5a), "the second byte");
        // A word write to the PIC's command and data ports is ICW1 then
        // ICW2.
        assert_eq!(p.port_out(0x20, 2, 0x30_11, T0, 1), Out::Done);
        assert_eq!(p.master.base, 0x30);
        // Reads concatenate: master IRR (0) and IMR.
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0x01);
        out(&mut p, 0x21, 0xa5);
        assert_eq!(p.port_in(0x20, 2), Some(0xa5_00));
        // A THR write inside a wide OUT is sent.
        assert_eq!(p.port_out(0x3f8, 2, 0x00_41, T0, 1), Out::Sent(b'A'));
    }

    #[test]
    fn power_on_is_what_a_restarted_vm_finds() {
        // What the kernel's reset writes (`Platform::new`): every device
        // a guest can program reads its power-on value again.
        let mut p = Platform::new();
        for (port, value) in [
            (0x20, 0x11),
            (0x21, 0x30),
            (0x21, 0x04),
            (0x21, 0x01),
            (0x21, 0x5a),
            (0xa1, 0x3c),
            (0x3f9, 0x0f),
            (0x3ff, 0xa5),
            (0x3fb, 0x83),
            (0x70, 0x0b),
            (0x43, 0x34),
            (0x40, 0x00),
            (0x40, 0x10),
        ] {
            out(&mut p, port, value);
        }
        p.port_out(0xcf8, 4, 0x8000_1234, T0, 1);
        assert!(p.uart.receive(b'x'));
        p.raise_line(5);
        assert_ne!(p, Platform::new());
        let fresh = Platform::new();
        assert_eq!(fresh.master, Pic::new());
        assert_eq!(fresh.pit.deadline, None);
        let mut p = fresh;
        for (port, value) in [
            (0x21, 0xff),
            (0xa1, 0xff),
            (0x3f9, 0),
            (0x3fb, 0),
            (0x3ff, 0),
            (0x70, 0),
        ] {
            assert_eq!(p.port_in(port, 1), Some(value), "{port:#x}");
        }
        assert_eq!(p.port_in(0xcf8, 4), Some(0));
        assert_eq!(p.port_in(0x3fd, 1), Some(0x60), "no byte received");
        assert_eq!(p.pending(), None);
    }

    #[test]
    fn lines_are_collected() {
        let mut l = Line::new();
        for b in b"boot\r" {
            assert!(!l.push(*b));
        }
        assert!(l.push(b'\n'));
        assert_eq!(l.text(), "boot");
        l.clear();
        for _ in 0..Line::CAPACITY - 1 {
            assert!(!l.push(b'x'));
        }
        assert!(l.push(b'x'));
    }
}
