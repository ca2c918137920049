//! A legacy (transitional) virtio-pci console, as a VM's monitor emulates
//! it (docs/kernel.md, "Virtio console").
//!
//! The kernel presents the device's PCI header (vendor 0x1af4, device
//! 0x1003, an I/O BAR of 32 ports, INTA# on the policy's line) and hands
//! every access to the BAR to the VM's monitor as an I/O trap. The monitor
//! keeps a [`Console`] and calls [`Console::read`] / [`Console::write`]
//! with the offset into the BAR; it moves data with [`Console::transmit`]
//! (guest to host: the transmit queue's buffers) and [`Console::receive`]
//! (host to guest: into the receive queue's buffers), and asserts the
//! VM's interrupt when [`Console::take_interrupt`] says so.
//!
//! Legacy register layout (virtio 0.9.5, no MSI-X): host features (u32,
//! 0x00), guest features (u32, 0x04), queue PFN (u32, 0x08), queue size
//! (u16, 0x0c), queue select (u16, 0x0e), queue notify (u16, 0x10), device
//! status (u8, 0x12), ISR (u8, 0x13, a read clears it), then the console's
//! configuration (zeros: no feature is offered, so Linux reads none).
//! Queue 0 is the console's receive queue, queue 1 its transmit queue, each
//! of [`QUEUE_SIZE`] entries in the legacy layout at `PFN * 4096`: the
//! descriptor table, the available ring, and the used ring at the next
//! 4 KiB boundary.
//!
//! The guest is hostile. Every ring index, descriptor index and chain is
//! bounded: at most [`QUEUE_SIZE`] buffers per call and queue, at most
//! [`QUEUE_SIZE`] descriptors per chain, at most [`MAX_CHAIN_BYTES`] bytes
//! read from one chain; a head or `next` index out of range, an available
//! index more than a ring ahead, an indirect descriptor or an address
//! outside the guest's memory marks the device broken (status bit
//! `NEEDS_RESET`), after which it moves no data until the guest resets it
//! (status 0). Guest memory is read and written through [`GuestMemory`],
//! whose implementations check every range, so nothing the guest writes
//! can make the monitor touch memory outside the guest's.

use crate::region::Region;

/// Entries of each queue (the guest must use this size on a legacy
/// device).
pub const QUEUE_SIZE: u16 = 16;
/// Most bytes taken from one transmit chain (the rest is dropped).
pub const MAX_CHAIN_BYTES: usize = 4096;
/// Guest-physical address of the VM's RAM segment (1 MiB; the low
/// segment is at 0).
pub const RAM_BASE: u64 = 0x10_0000;

/// Register offsets in the I/O BAR.
pub mod reg {
    /// Host features (u32, read-only).
    pub const HOST_FEATURES: u16 = 0x00;
    /// Guest features (u32).
    pub const GUEST_FEATURES: u16 = 0x04;
    /// Queue page frame number (u32) of the selected queue.
    pub const QUEUE_PFN: u16 = 0x08;
    /// Queue size (u16, read-only) of the selected queue.
    pub const QUEUE_SIZE: u16 = 0x0c;
    /// Queue select (u16).
    pub const QUEUE_SELECT: u16 = 0x0e;
    /// Queue notify (u16, write-only): the queue index.
    pub const QUEUE_NOTIFY: u16 = 0x10;
    /// Device status (u8).
    pub const STATUS: u16 = 0x12;
    /// Interrupt status (u8, read clears).
    pub const ISR: u16 = 0x13;
}

/// Receive queue index (host to guest).
pub const RECEIVE: u16 = 0;
/// Transmit queue index (guest to host).
pub const TRANSMIT: u16 = 1;

/// Device status: the device needs a reset (virtio 1.0 bit; a legacy
/// driver ignores it, and the device moves no data until status 0).
pub const STATUS_NEEDS_RESET: u8 = 0x40;

/// Descriptor flags.
const DESC_NEXT: u16 = 1;
const DESC_WRITE: u16 = 2;
const DESC_INDIRECT: u16 = 4;
/// Available ring flag: the guest wants no interrupt.
const AVAIL_NO_INTERRUPT: u16 = 1;
/// Legacy ring alignment.
const ALIGN: u64 = 4096;

/// The guest's memory as the monitor reaches it. Both calls refuse (false)
/// any range that is not wholly guest memory.
pub trait GuestMemory {
    /// Read `dst.len()` bytes at guest-physical `gpa`.
    fn read(&self, gpa: u64, dst: &mut [u8]) -> bool;
    /// Write `src` at guest-physical `gpa`.
    fn write(&self, gpa: u64, src: &[u8]) -> bool;
}

/// A VM's memory as its monitor maps it: regions at guest-physical bases
/// (the policy maps the low segment and the RAM, `guest_low` and
/// `guest_ram`). A range must lie wholly in one region.
#[derive(Debug, Clone)]
pub struct GuestRam<'a> {
    parts: [(u64, Option<Region<'a>>); 2],
}

impl<'a> GuestRam<'a> {
    /// The guest memory of `low` (guest-physical 0) and `ram` (at
    /// [`RAM_BASE`]).
    pub fn new(low: Option<Region<'a>>, ram: Option<Region<'a>>) -> Self {
        Self {
            parts: [(0, low), (RAM_BASE, ram)],
        }
    }

    fn locate(&self, gpa: u64, len: usize) -> Option<(&Region<'a>, usize)> {
        self.parts.iter().find_map(|(base, region)| {
            let region = region.as_ref()?;
            let offset = usize::try_from(gpa.checked_sub(*base)?).ok()?;
            (offset.checked_add(len)? <= region.len()).then_some((region, offset))
        })
    }
}

impl GuestMemory for GuestRam<'_> {
    fn read(&self, gpa: u64, dst: &mut [u8]) -> bool {
        self.locate(gpa, dst.len())
            .is_some_and(|(region, offset)| region.read_bytes(offset, dst).is_ok())
    }

    fn write(&self, gpa: u64, src: &[u8]) -> bool {
        self.locate(gpa, src.len())
            .is_some_and(|(region, offset)| region.write_bytes(offset, src).is_ok())
    }
}

/// One queue's device-side state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Queue {
    /// Page frame number of the ring (0: not set up).
    pfn: u32,
    /// Next available-ring entry to take.
    last_avail: u16,
    /// Next used-ring index to publish.
    used: u16,
}

/// One descriptor.
#[derive(Debug, Clone, Copy)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// Why a queue operation stopped: the guest broke the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Broken;

/// The legacy virtio console's registers and queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Console {
    guest_features: u32,
    select: u16,
    status: u8,
    isr: u8,
    queues: [Queue; 2],
    /// Used buffers were added since the last [`Console::take_interrupt`]
    /// on a queue whose driver wants interrupts.
    interrupt: bool,
}

fn u16_at(memory: &impl GuestMemory, gpa: u64) -> Result<u16, Broken> {
    let mut bytes = [0; 2];
    if memory.read(gpa, &mut bytes) {
        Ok(u16::from_le_bytes(bytes))
    } else {
        Err(Broken)
    }
}

fn put(memory: &impl GuestMemory, gpa: u64, bytes: &[u8]) -> Result<(), Broken> {
    if memory.write(gpa, bytes) {
        Ok(())
    } else {
        Err(Broken)
    }
}

/// Where one queue's parts are (legacy layout).
#[derive(Debug, Clone, Copy)]
struct Layout {
    descriptors: u64,
    avail: u64,
    used: u64,
}

impl Layout {
    fn of(pfn: u32) -> Option<Self> {
        let size = u64::from(QUEUE_SIZE);
        let descriptors = u64::from(pfn).checked_mul(ALIGN)?;
        let avail = descriptors.checked_add(size * 16)?;
        let avail_end = avail.checked_add(4 + size * 2 + 2)?;
        let used = avail_end.checked_add(ALIGN - 1)? / ALIGN * ALIGN;
        Some(Self {
            descriptors,
            avail,
            used,
        })
    }

    fn descriptor(&self, memory: &impl GuestMemory, index: u16) -> Result<Descriptor, Broken> {
        if index >= QUEUE_SIZE {
            return Err(Broken);
        }
        let mut raw = [0u8; 16];
        let at = self.descriptors + u64::from(index) * 16;
        if !memory.read(at, &mut raw) {
            return Err(Broken);
        }
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            l0,
            l1,
            l2,
            l3,
            f0,
            f1,
            n0,
            n1,
        ] = raw;
        let descriptor = Descriptor {
            addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            flags: u16::from_le_bytes([f0, f1]),
            next: u16::from_le_bytes([n0, n1]),
        };
        if descriptor.flags & DESC_INDIRECT != 0 {
            return Err(Broken);
        }
        Ok(descriptor)
    }
}

impl Console {
    /// Power-on state.
    pub fn new() -> Self {
        Self::default()
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    /// Whether the guest broke the protocol (the device waits for a reset).
    pub fn is_broken(&self) -> bool {
        self.status & STATUS_NEEDS_RESET != 0
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(usize::from(self.select))
    }

    /// A read of `size` bytes (1, 2 or 4) at `offset` in the BAR.
    pub fn read(&mut self, offset: u16, size: u8) -> u32 {
        let value = match offset {
            reg::HOST_FEATURES => 0,
            reg::GUEST_FEATURES => self.guest_features,
            reg::QUEUE_PFN => self.selected().map_or(0, |q| q.pfn),
            reg::QUEUE_SIZE => self.selected().map_or(0, |_| u32::from(QUEUE_SIZE)),
            reg::QUEUE_SELECT => u32::from(self.select),
            reg::STATUS => u32::from(self.status),
            reg::ISR => {
                let isr = self.isr;
                self.isr = 0;
                u32::from(isr)
            }
            _ => 0,
        };
        value
            & match size {
                1 => 0xff,
                2 => 0xffff,
                _ => u32::MAX,
            }
    }

    /// A write of `value` at `offset` in the BAR; returns the queue the
    /// guest notified, if it was a notify.
    pub fn write(&mut self, offset: u16, value: u32) -> Option<u16> {
        match offset {
            // No feature is offered, so none can be accepted.
            reg::GUEST_FEATURES => self.guest_features = 0,
            reg::QUEUE_PFN => {
                if let Some(queue) = self.selected() {
                    *queue = Queue {
                        pfn: value,
                        ..Queue::default()
                    };
                }
            }
            reg::QUEUE_SELECT => self.select = value as u16,
            reg::QUEUE_NOTIFY => return Some(value as u16),
            reg::STATUS => {
                if value as u8 == 0 {
                    self.reset();
                } else {
                    self.status = (value as u8) | (self.status & STATUS_NEEDS_RESET);
                }
            }
            _ => {}
        }
        None
    }

    /// The ring of `queue`, if it is set up and the device is not broken.
    fn ring(&self, queue: u16) -> Option<(Queue, Layout)> {
        if self.is_broken() {
            return None;
        }
        let q = *self.queues.get(usize::from(queue))?;
        if q.pfn == 0 {
            return None;
        }
        Some((q, Layout::of(q.pfn)?))
    }

    /// The next available head of `queue`, if any.
    fn next_head(
        memory: &impl GuestMemory,
        q: &Queue,
        layout: &Layout,
    ) -> Result<Option<(u16, u16)>, Broken> {
        let avail_idx = u16_at(memory, layout.avail + 2)?;
        let pending = avail_idx.wrapping_sub(q.last_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > QUEUE_SIZE {
            return Err(Broken);
        }
        let slot = q.last_avail % QUEUE_SIZE;
        let head = u16_at(memory, layout.avail + 4 + u64::from(slot) * 2)?;
        let flags = u16_at(memory, layout.avail)?;
        Ok(Some((head, flags)))
    }

    /// Publish a used buffer `head` of `len` bytes on `queue`.
    fn publish(
        &mut self,
        memory: &impl GuestMemory,
        queue: u16,
        layout: &Layout,
        head: u16,
        len: u32,
        avail_flags: u16,
    ) -> Result<(), Broken> {
        let Some(q) = self.queues.get_mut(usize::from(queue)) else {
            return Err(Broken);
        };
        let slot = q.used % QUEUE_SIZE;
        let mut element = [0u8; 8];
        let (id, length) = element.split_at_mut(4);
        id.copy_from_slice(&u32::from(head).to_le_bytes());
        length.copy_from_slice(&len.to_le_bytes());
        put(memory, layout.used + 4 + u64::from(slot) * 8, &element)?;
        q.used = q.used.wrapping_add(1);
        q.last_avail = q.last_avail.wrapping_add(1);
        put(memory, layout.used + 2, &q.used.to_le_bytes())?;
        if avail_flags & AVAIL_NO_INTERRUPT == 0 {
            self.interrupt = true;
        }
        Ok(())
    }

    fn broken(&mut self) {
        self.status |= STATUS_NEEDS_RESET;
    }

    /// Takes the guest's transmit buffers (at most [`QUEUE_SIZE`] chains),
    /// handing their bytes to `sink` in pieces of at most 64 bytes; returns
    /// the number of chains taken.
    pub fn transmit(&mut self, memory: &impl GuestMemory, sink: &mut impl FnMut(&[u8])) -> usize {
        let mut taken = 0;
        while taken < usize::from(QUEUE_SIZE) {
            let Some((q, layout)) = self.ring(TRANSMIT) else {
                break;
            };
            match self.transmit_one(memory, &q, &layout, sink) {
                Ok(true) => taken += 1,
                Ok(false) => break,
                Err(Broken) => {
                    self.broken();
                    break;
                }
            }
        }
        taken
    }

    fn transmit_one(
        &mut self,
        memory: &impl GuestMemory,
        q: &Queue,
        layout: &Layout,
        sink: &mut impl FnMut(&[u8]),
    ) -> Result<bool, Broken> {
        let Some((head, flags)) = Self::next_head(memory, q, layout)? else {
            return Ok(false);
        };
        let mut index = head;
        let mut total = 0usize;
        for _ in 0..QUEUE_SIZE {
            let d = layout.descriptor(memory, index)?;
            if d.flags & DESC_WRITE == 0 {
                let mut left = usize::try_from(d.len).unwrap_or(usize::MAX);
                let mut addr = d.addr;
                while left > 0 && total < MAX_CHAIN_BYTES {
                    let mut piece = [0u8; 64];
                    let n = left.min(piece.len()).min(MAX_CHAIN_BYTES - total);
                    let piece = piece.get_mut(..n).ok_or(Broken)?;
                    if !memory.read(addr, piece) {
                        return Err(Broken);
                    }
                    sink(piece);
                    total += n;
                    left -= n;
                    addr = addr.checked_add(n as u64).ok_or(Broken)?;
                }
            }
            if d.flags & DESC_NEXT == 0 {
                break;
            }
            index = d.next;
        }
        self.publish(memory, TRANSMIT, layout, head, 0, flags)?;
        Ok(true)
    }

    /// Puts `data` into the guest's receive buffers (at most
    /// [`QUEUE_SIZE`] chains); returns how many bytes went in (the rest
    /// waits for more buffers).
    pub fn receive(&mut self, memory: &impl GuestMemory, data: &[u8]) -> usize {
        let mut consumed = 0;
        for _ in 0..QUEUE_SIZE {
            let Some(rest) = data.get(consumed..).filter(|rest| !rest.is_empty()) else {
                break;
            };
            let Some((q, layout)) = self.ring(RECEIVE) else {
                break;
            };
            match self.receive_one(memory, &q, &layout, rest) {
                Ok(Some(n)) => consumed += n,
                Ok(None) => break,
                Err(Broken) => {
                    self.broken();
                    break;
                }
            }
        }
        consumed
    }

    fn receive_one(
        &mut self,
        memory: &impl GuestMemory,
        q: &Queue,
        layout: &Layout,
        data: &[u8],
    ) -> Result<Option<usize>, Broken> {
        let Some((head, flags)) = Self::next_head(memory, q, layout)? else {
            return Ok(None);
        };
        let mut index = head;
        let mut written = 0usize;
        for _ in 0..QUEUE_SIZE {
            let d = layout.descriptor(memory, index)?;
            if d.flags & DESC_WRITE != 0 {
                let rest = data.get(written..).unwrap_or(&[]);
                let n = rest.len().min(usize::try_from(d.len).unwrap_or(usize::MAX));
                let piece = rest.get(..n).ok_or(Broken)?;
                put(memory, d.addr, piece)?;
                written += n;
            }
            if d.flags & DESC_NEXT == 0 || written >= data.len() {
                break;
            }
            index = d.next;
        }
        let len = u32::try_from(written).map_err(|_| Broken)?;
        self.publish(memory, RECEIVE, layout, head, len, flags)?;
        Ok(Some(written))
    }

    /// Whether to assert the VM's interrupt now: used buffers were added
    /// for a driver that wants interrupts. Sets the ISR's queue bit; true
    /// only when the ISR goes from clear to set (an interrupt still
    /// unacknowledged covers the new buffers: the driver's handler reads
    /// the ISR, then takes every used buffer).
    pub fn take_interrupt(&mut self) -> bool {
        if !core::mem::take(&mut self.interrupt) {
            return false;
        }
        let was = self.isr;
        self.isr |= 1;
        was == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::vec;
    use std::vec::Vec;

    /// 64 KiB of guest memory at guest-physical 0.
    struct Memory(RefCell<Vec<u8>>);

    impl Memory {
        fn new() -> Self {
            Self(RefCell::new(vec![0; 0x1_0000]))
        }
        fn set(&self, gpa: u64, bytes: &[u8]) {
            assert!(self.write(gpa, bytes));
        }
        fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
            let mut out = vec![0; len];
            assert!(self.read(gpa, &mut out));
            out
        }
        fn u16(&self, gpa: u64) -> u16 {
            u16::from_le_bytes(self.get(gpa, 2).try_into().unwrap())
        }
    }

    impl GuestMemory for Memory {
        fn read(&self, gpa: u64, dst: &mut [u8]) -> bool {
            let memory = self.0.borrow();
            let Some(src) = usize::try_from(gpa)
                .ok()
                .and_then(|at| memory.get(at..at.checked_add(dst.len())?))
            else {
                return false;
            };
            dst.copy_from_slice(src);
            true
        }
        fn write(&self, gpa: u64, src: &[u8]) -> bool {
            let mut memory = self.0.borrow_mut();
            let Some(dst) = usize::try_from(gpa)
                .ok()
                .and_then(|at| memory.get_mut(at..at.checked_add(src.len())?))
            else {
                return false;
            };
            dst.copy_from_slice(src);
            true
        }
    }

    /// Something a hostile guest does to a ring.
    type Corrupt = dyn Fn(&Memory, &Layout);

    /// Queue `q` at PFN `pfn`, set up through the registers.
    fn setup(console: &mut Console, q: u16, pfn: u32) -> Layout {
        console.write(reg::QUEUE_SELECT, u32::from(q));
        assert_eq!(console.read(reg::QUEUE_SIZE, 2), u32::from(QUEUE_SIZE));
        console.write(reg::QUEUE_PFN, pfn);
        assert_eq!(console.read(reg::QUEUE_PFN, 4), pfn);
        Layout::of(pfn).unwrap()
    }

    fn descriptor(m: &Memory, l: &Layout, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = Vec::new();
        raw.extend_from_slice(&addr.to_le_bytes());
        raw.extend_from_slice(&len.to_le_bytes());
        raw.extend_from_slice(&flags.to_le_bytes());
        raw.extend_from_slice(&next.to_le_bytes());
        m.set(l.descriptors + u64::from(i) * 16, &raw);
    }

    /// Offer head `head` as available entry `n` (and publish idx n+1).
    fn offer(m: &Memory, l: &Layout, n: u16, head: u16) {
        m.set(
            l.avail + 4 + u64::from(n % QUEUE_SIZE) * 2,
            &head.to_le_bytes(),
        );
        m.set(l.avail + 2, &(n + 1).to_le_bytes());
    }

    #[test]
    fn the_legacy_registers() {
        let mut c = Console::new();
        assert_eq!(c.read(reg::HOST_FEATURES, 4), 0);
        c.write(reg::GUEST_FEATURES, u32::MAX);
        assert_eq!(c.read(reg::GUEST_FEATURES, 4), 0, "nothing offered");
        c.write(reg::STATUS, 1 | 2 | 4);
        assert_eq!(c.read(reg::STATUS, 1), 7);
        c.write(reg::QUEUE_SELECT, 2);
        assert_eq!(c.read(reg::QUEUE_SIZE, 2), 0, "only two queues");
        assert_eq!(c.write(reg::QUEUE_NOTIFY, 1), Some(1));
        setup(&mut c, TRANSMIT, 3);
        c.write(reg::STATUS, 0);
        assert_eq!(c, Console::new(), "status 0 resets");
    }

    #[test]
    fn transmit_moves_a_chain_and_interrupts_once() {
        let m = Memory::new();
        let mut c = Console::new();
        let l = setup(&mut c, TRANSMIT, 2);
        m.set(0x8000, b"hello ");
        m.set(0x9000, b"world\n");
        descriptor(&m, &l, 0, 0x8000, 6, DESC_NEXT, 1);
        descriptor(&m, &l, 1, 0x9000, 6, 0, 0);
        offer(&m, &l, 0, 0);
        let mut out = Vec::new();
        assert_eq!(c.transmit(&m, &mut |b| out.extend_from_slice(b)), 1);
        assert_eq!(out, b"hello world\n");
        assert_eq!(m.u16(l.used + 2), 1, "used idx");
        assert_eq!(m.get(l.used + 4, 4), 0u32.to_le_bytes(), "used id");
        assert!(c.take_interrupt());
        assert!(!c.take_interrupt(), "nothing new");
        assert_eq!(c.read(reg::ISR, 1), 1);
        assert_eq!(c.read(reg::ISR, 1), 0, "read clears");
        // Nothing more available: nothing taken.
        assert_eq!(c.transmit(&m, &mut |_| panic!()), 0);
    }

    #[test]
    fn receive_fills_writable_buffers_and_reports_lengths() {
        let m = Memory::new();
        let mut c = Console::new();
        let l = setup(&mut c, RECEIVE, 4);
        descriptor(&m, &l, 0, 0xa000, 4, DESC_WRITE, 0);
        descriptor(&m, &l, 1, 0xb000, 64, DESC_WRITE, 0);
        offer(&m, &l, 0, 0);
        offer(&m, &l, 1, 1);
        assert_eq!(c.receive(&m, b"reply\n"), 6);
        assert_eq!(m.get(0xa000, 4), b"repl");
        assert_eq!(m.get(0xb000, 2), b"y\n");
        assert_eq!(m.u16(l.used + 2), 2);
        assert_eq!(m.get(l.used + 4, 8)[4..], 4u32.to_le_bytes());
        assert_eq!(m.get(l.used + 12, 8)[..4], 1u32.to_le_bytes());
        assert_eq!(m.get(l.used + 12, 8)[4..], 2u32.to_le_bytes());
        assert!(c.take_interrupt());
        // No buffer left: the data waits.
        assert_eq!(c.receive(&m, b"more"), 0);
    }

    #[test]
    fn a_driver_that_wants_no_interrupt_gets_none() {
        let m = Memory::new();
        let mut c = Console::new();
        let l = setup(&mut c, RECEIVE, 4);
        m.set(l.avail, &AVAIL_NO_INTERRUPT.to_le_bytes());
        descriptor(&m, &l, 0, 0xa000, 4, DESC_WRITE, 0);
        offer(&m, &l, 0, 0);
        assert_eq!(c.receive(&m, b"x"), 1);
        assert!(!c.take_interrupt());
    }

    #[test]
    fn hostile_rings_break_the_device_and_stay_bounded() {
        // A descriptor chain that loops forever: bounded by the queue size.
        let m = Memory::new();
        let mut c = Console::new();
        let l = setup(&mut c, TRANSMIT, 2);
        descriptor(&m, &l, 0, 0x8000, 8, DESC_NEXT, 0);
        offer(&m, &l, 0, 0);
        let mut bytes = 0;
        assert_eq!(c.transmit(&m, &mut |b| bytes += b.len()), 1);
        assert_eq!(bytes, 8 * usize::from(QUEUE_SIZE));
        assert!(!c.is_broken());

        // A huge length: at most MAX_CHAIN_BYTES per chain.
        let mut c = Console::new();
        let l = setup(&mut c, TRANSMIT, 2);
        descriptor(&m, &l, 0, 0, u32::MAX, 0, 0);
        offer(&m, &l, 0, 0);
        let mut bytes = 0;
        c.transmit(&m, &mut |b| bytes += b.len());
        assert_eq!(bytes, MAX_CHAIN_BYTES);

        // A head out of range, a next out of range, an indirect table, an
        // address outside guest memory, an index more than a ring ahead:
        // each breaks the device, which then moves nothing until reset.
        let cases: [&Corrupt; 5] = [
            &|m, l| offer(m, l, 0, QUEUE_SIZE),
            &|m, l| {
                descriptor(m, l, 0, 0x8000, 1, DESC_NEXT, 99);
                offer(m, l, 0, 0);
            },
            &|m, l| {
                descriptor(m, l, 0, 0x8000, 16, DESC_INDIRECT, 0);
                offer(m, l, 0, 0);
            },
            &|m, l| {
                descriptor(m, l, 0, u64::MAX - 4, 16, 0, 0);
                offer(m, l, 0, 0);
            },
            &|m, l| m.set(l.avail + 2, &(QUEUE_SIZE + 1).to_le_bytes()),
        ];
        for (i, case) in cases.iter().enumerate() {
            let m = Memory::new();
            let mut c = Console::new();
            let l = setup(&mut c, TRANSMIT, 2);
            case(&m, &l);
            c.transmit(&m, &mut |_| {});
            assert!(c.is_broken(), "case {i}");
            assert_eq!(c.read(reg::STATUS, 1) & 0x40, 0x40);
            descriptor(&m, &l, 0, 0x8000, 1, 0, 0);
            offer(&m, &l, 0, 0);
            assert_eq!(c.transmit(&m, &mut |_| panic!()), 0, "case {i}");
            c.write(reg::STATUS, 0);
            assert!(!c.is_broken());
        }

        // A PFN whose ring lies outside guest memory.
        let mut c = Console::new();
        setup(&mut c, RECEIVE, u32::MAX);
        assert_eq!(c.receive(&Memory::new(), b"x"), 0);
        assert!(c.is_broken());
    }

    #[test]
    fn guest_ram_maps_two_regions_and_refuses_straddles() {
        use core::sync::atomic::AtomicU64;
        let low: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
        let ram: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
        let g = GuestRam::new(
            Some(Region::from_atomics(&low)),
            Some(Region::from_atomics(&ram)),
        );
        assert!(g.write(RAM_BASE + 8, b"abc"));
        let mut out = [0u8; 3];
        assert!(g.read(RAM_BASE + 8, &mut out));
        assert_eq!(&out, b"abc");
        assert!(g.write(0, b"x"));
        assert!(!g.write(30, b"xyz"), "past the low region");
        assert!(!g.write(RAM_BASE + 31, b"xy"), "past the RAM region");
        assert!(!g.read(RAM_BASE - 1, &mut out), "between");
    }
}
