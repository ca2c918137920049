//! Console input: what is typed on the kernel's console UART goes to one
//! VM, the policy's console input owner (`<kernel consoleInput>`), and to
//! no other subject (docs/kernel.md, "Console input").
//!
//! The kernel reads the real UART's receive side at its check points (a
//! VM entry of the owner's CPU, that CPU's idle loop), at most
//! [`BYTES_PER_CHECK`] bytes each time, into an [`RxRing`]; before each
//! entry of the owner it moves the next byte into the emulated UART's
//! receiver buffer register ([`super::platform::Uart::receive`]) whenever
//! the guest has read the previous one. Every step is bounded: a check
//! costs at most `2 * BYTES_PER_CHECK` port reads (LSR, then RBR, per
//! byte) however fast someone types, and a byte that finds the ring full
//! is dropped and counted ([`RxRing::overruns`]) rather than waited for.
//!
//! Only the owner's CPU touches the UART's receive side and the ring, so
//! the ring needs no lock.

use septum_abi::SubjectId;

use super::platform::Uart;

/// Bytes the kernel takes from the real UART at one check point. A
/// 16550's receive FIFO holds 16; four per check drain it within a few
/// guest exits, and keep the work a check adds to an exit small and fixed.
pub const BYTES_PER_CHECK: usize = 4;

/// Bytes the ring holds: a pasted line of a shell command waits here while
/// the guest reads the bytes one by one.
pub const RING_CAPACITY: usize = 256;

/// A ring of received bytes with an overrun count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRing {
    bytes: [u8; RING_CAPACITY],
    /// Index of the oldest byte.
    head: usize,
    /// Bytes held (at most [`RING_CAPACITY`]).
    len: usize,
    /// Bytes dropped because the ring was full.
    overruns: u32,
}

impl RxRing {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            bytes: [0; RING_CAPACITY],
            head: 0,
            len: 0,
            overruns: 0,
        }
    }

    /// Add `byte` at the tail; a full ring drops it and counts an overrun
    /// (returns `false`).
    pub fn push(&mut self, byte: u8) -> bool {
        if self.len >= RING_CAPACITY {
            self.overruns = self.overruns.saturating_add(1);
            return false;
        }
        let tail = self.head.wrapping_add(self.len) % RING_CAPACITY;
        if let Some(slot) = self.bytes.get_mut(tail) {
            *slot = byte;
            self.len = self.len.saturating_add(1);
        }
        true
    }

    /// Take the oldest byte.
    pub fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let byte = self.bytes.get(self.head).copied()?;
        self.head = self.head.wrapping_add(1) % RING_CAPACITY;
        self.len = self.len.saturating_sub(1);
        Some(byte)
    }

    /// Bytes waiting.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte waits.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes dropped because the ring was full.
    pub const fn overruns(&self) -> u32 {
        self.overruns
    }
}

impl Default for RxRing {
    fn default() -> Self {
        Self::new()
    }
}

/// Before an entry of `subject`: if it is the console input `owner` and
/// its UART's receiver buffer is empty, move the oldest byte of `ring`
/// there. Returns whether a byte moved. A subject that is not the owner
/// never gets a byte, and a byte is never handed over while the guest has
/// not read the previous one (no overrun inside the VM).
pub fn deliver(
    owner: Option<SubjectId>,
    subject: SubjectId,
    ring: &mut RxRing,
    uart: &mut Uart,
) -> bool {
    if owner != Some(subject) || !uart.can_receive() {
        return false;
    }
    match ring.pop() {
        Some(byte) => uart.receive(byte),
        None => false,
    }
}

/// The `pub const CONSOLE_INPUT` item the composer appends to `spec.rs`:
/// the subject that receives console input, if the policy names one (a
/// `const`, so a kernel without console input has no trace of it).
#[cfg(any(test, feature = "emit"))]
pub fn emit_source(owner: Option<SubjectId>) -> alloc::string::String {
    let value = match owner {
        Some(SubjectId(id)) => alloc::format!("Some(septum_abi::SubjectId({id}))"),
        None => alloc::string::String::from("None"),
    };
    alloc::format!(
        "/// The VM that receives what is typed on the kernel's console \
         (`<kernel consoleInput>`; docs/kernel.md, \"Console input\").\n\
         #[allow(dead_code, reason = \"the kernel reads it; host tests compiling a spec do not\")]\n\
         pub const CONSOLE_INPUT: Option<septum_abi::SubjectId> = {value};\n"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_across_the_wrap() {
        let mut ring = RxRing::new();
        for round in 0..3u32 {
            for i in 0..200u32 {
                assert!(ring.push((round * 7 + i) as u8));
            }
            for i in 0..200u32 {
                assert_eq!(ring.pop(), Some((round * 7 + i) as u8));
            }
        }
        assert_eq!(ring.pop(), None);
        assert!(ring.is_empty());
        assert_eq!(ring.overruns(), 0);
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let mut ring = RxRing::new();
        for i in 0..RING_CAPACITY {
            assert!(ring.push(i as u8));
        }
        assert!(!ring.push(0xaa));
        assert!(!ring.push(0xbb));
        assert_eq!(ring.overruns(), 2);
        assert_eq!(ring.len(), RING_CAPACITY);
        assert_eq!(ring.pop(), Some(0), "the oldest bytes are kept");
        assert!(ring.push(0xcc));
        let rest: std::vec::Vec<u8> = core::iter::from_fn(|| ring.pop()).collect();
        assert_eq!(rest.len(), RING_CAPACITY);
        assert_eq!(rest.last(), Some(&0xcc));
    }

    #[test]
    fn only_the_owner_gets_bytes_one_at_a_time() {
        let (owner, other) = (SubjectId(1), SubjectId(2));
        let mut ring = RxRing::new();
        let mut uart = Uart::new();
        let mut theirs = Uart::new();
        for byte in *b"ab" {
            ring.push(byte);
        }
        assert!(!deliver(Some(owner), other, &mut ring, &mut theirs));
        assert!(!deliver(None, owner, &mut ring, &mut uart), "no owner");
        assert!(theirs.can_receive() && uart.can_receive());
        assert!(deliver(Some(owner), owner, &mut ring, &mut uart));
        assert!(
            !deliver(Some(owner), owner, &mut ring, &mut uart),
            "RBR still full"
        );
        assert_eq!(ring.len(), 1);
        let mut platform = super::super::platform::Platform::new();
        platform.uart = uart;
        assert_eq!(platform.port_in(0x3f8, 1), Some(u32::from(b'a')));
        assert!(deliver(Some(owner), owner, &mut ring, &mut platform.uart));
        assert_eq!(platform.port_in(0x3f8, 1), Some(u32::from(b'b')));
        assert!(
            !deliver(Some(owner), owner, &mut ring, &mut platform.uart),
            "empty"
        );
    }

    #[test]
    fn the_spec_item_names_the_owner() {
        assert!(emit_source(Some(SubjectId(3))).contains(
            "pub const CONSOLE_INPUT: Option<septum_abi::SubjectId> = Some(septum_abi::SubjectId(3));"
        ));
        assert!(emit_source(None).contains("= None;"));
    }
}
