//! A subject's panic message, carried to the kernel in its registers.
//!
//! When a native subject panics, the SDK's panic handler formats
//! `FILE:LINE: MESSAGE` (cut to [`PANIC_TEXT_LEN`] bytes), loads it into
//! the registers listed in [`TEXT_REGISTERS`], puts [`PANIC_MAGIC`] in RAX
//! and executes `ud2`. The kernel's invalid-opcode exit finds the text in
//! the register frame it saves on every exit anyway, prints it on the debug
//! console, then applies the subject's `onFault` action as for any fault.
//!
//! Why registers and not a buffer in memory: the kernel never reads subject
//! memory (no guest page walk, no length or address from the subject to
//! check), the text cannot be longer than the registers, and no policy
//! element, region or kernel event is needed, so every native subject gets
//! its message reported without a line in its policy. The price is the
//! bound: 112 bytes, enough for a source path, a line number and a short
//! message. The crash record's guest-register block holds the same
//! registers, so a `stopSystem` panic leaves its text in the record too
//! ([`PanicText::from_registers`] decodes it there).
//!
//! The kernel trusts nothing in the text: [`PanicText`] prints at most
//! [`PANIC_TEXT_LEN`] bytes, stops at the first NUL, and shows every byte
//! that is not printable ASCII as `?`, so a subject cannot move the
//! console's cursor, start an escape sequence or forge a second line.
//!
//! Byte `i` of the text is byte `i % 8` (little-endian) of register
//! `TEXT_REGISTERS[i / 8]`.

// The kernel calls this on its exit path: hold it to the kernel's rules.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use core::fmt;

/// `"SEPTPANC"` as a little-endian `u64`: RAX at the `ud2` of a panic that
/// carries its text.
pub const PANIC_MAGIC: u64 = u64::from_le_bytes(*b"SEPTPANC");

/// The registers that carry the text, in text order.
pub const TEXT_REGISTERS: [&str; REGISTER_COUNT] = [
    "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
];

/// Number of registers that carry the text.
pub const REGISTER_COUNT: usize = 14;

/// Longest text, in bytes.
pub const PANIC_TEXT_LEN: usize = REGISTER_COUNT * 8;

/// The register values (in [`TEXT_REGISTERS`] order) that carry `text`:
/// its first [`PANIC_TEXT_LEN`] bytes, zero-padded.
pub fn encode(text: &[u8]) -> [u64; REGISTER_COUNT] {
    let mut registers = [0u64; REGISTER_COUNT];
    for (register, chunk) in registers.iter_mut().zip(text.chunks(8)) {
        let mut bytes = [0u8; 8];
        for (byte, value) in bytes.iter_mut().zip(chunk) {
            *byte = *value;
        }
        *register = u64::from_le_bytes(bytes);
    }
    registers
}

/// A panic text read back from registers, printed sanitised (see the
/// module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanicText {
    registers: [u64; REGISTER_COUNT],
}

impl PanicText {
    /// The text in `registers` (in [`TEXT_REGISTERS`] order) if `rax` is
    /// [`PANIC_MAGIC`]; `None` otherwise (an ordinary `ud2`).
    pub const fn from_registers(rax: u64, registers: [u64; REGISTER_COUNT]) -> Option<Self> {
        if rax == PANIC_MAGIC {
            Some(Self { registers })
        } else {
            None
        }
    }

    /// The raw bytes, up to and without the first NUL.
    pub fn bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.registers
            .iter()
            .flat_map(|register| register.to_le_bytes())
            .take_while(|&byte| byte != 0)
    }
}

impl fmt::Display for PanicText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.bytes() {
            let shown = if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte)
            } else {
                '?'
            };
            fmt::Write::write_char(f, shown)?;
        }
        Ok(())
    }
}

impl crate::crash::GuestRegisters {
    /// The panic text a crash record's guest block holds, if the subject
    /// stopped in the SDK's panic handler (RAX is [`PANIC_MAGIC`]).
    pub const fn panic_text(&self) -> Option<PanicText> {
        PanicText::from_registers(
            self.rax,
            [
                self.rbx, self.rcx, self.rdx, self.rsi, self.rdi, self.rbp, self.r8, self.r9,
                self.r10, self.r11, self.r12, self.r13, self.r14, self.r15,
            ],
        )
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    fn shown(registers: [u64; REGISTER_COUNT]) -> String {
        PanicText::from_registers(PANIC_MAGIC, registers)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_text_round_trips() {
        let text = "subjects/faulter/src/main.rs:26:5: faulter: deliberate fault";
        assert_eq!(shown(encode(text.as_bytes())), text);
    }

    #[test]
    fn a_crash_records_guest_block_gives_the_text_back() {
        let [
            rbx,
            rcx,
            rdx,
            rsi,
            rdi,
            rbp,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
        ] = encode(b"a/src/main.rs:3: boom");
        let guest = crate::crash::GuestRegisters {
            rax: PANIC_MAGIC,
            rbx,
            rcx,
            rdx,
            rsi,
            rdi,
            rbp,
            r8,
            r9,
            r10,
            r11,
            r12,
            r13,
            r14,
            r15,
            ..Default::default()
        };
        assert_eq!(
            guest.panic_text().unwrap().to_string(),
            "a/src/main.rs:3: boom"
        );
        let plain = crate::crash::GuestRegisters { rax: 1, ..guest };
        assert!(plain.panic_text().is_none());
    }

    #[test]
    fn only_the_magic_marks_a_text() {
        assert!(PanicText::from_registers(0, encode(b"x")).is_none());
        assert!(PanicText::from_registers(PANIC_MAGIC, encode(b"x")).is_some());
    }

    #[test]
    fn long_texts_are_cut_and_register_order_is_kept() {
        let long: Vec<u8> = (0..200u8).map(|i| b'a' + i % 26).collect();
        let registers = encode(&long);
        assert_eq!(shown(registers).as_bytes(), &long[..PANIC_TEXT_LEN]);
        assert_eq!(registers[0].to_le_bytes(), *b"abcdefgh");
        assert_eq!(TEXT_REGISTERS.len(), REGISTER_COUNT);
    }

    #[test]
    fn control_bytes_cannot_forge_lines_or_escapes() {
        let text = b"ok\nseptum: forged\x1b[2J\xff end\0hidden";
        assert_eq!(shown(encode(text)), "ok?septum: forged?[2J? end");
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_registers_give_bounded_printable_text(registers in prop::array::uniform14(any::<u64>())) {
            let text = shown(registers);
            prop_assert!(text.len() <= PANIC_TEXT_LEN);
            prop_assert!(text.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
        }
    }
}
