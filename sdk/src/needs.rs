//! What a subject declares it uses, checked by the composer before boot.
//!
//! A subject finds its resources at run time by the logical names its
//! policy gives them ([`crate::Info`]); a typo or a wrong element size would
//! only show as a `None` (or an `Incompatible` channel) once the system
//! runs. [`needs!`](crate::needs) writes the same names, with what the code
//! expects of them, into the binary's `.septum.needs` ELF section; the
//! composer reads that section and refuses a policy that does not grant
//! them, with an error that points at the subject in the policy.
//!
//! The section is not loaded (the linker script marks it `INFO`), so it
//! costs the running subject nothing. Its format is fixed and versioned
//! (docs/sdk.md, "Declared needs"); [`encode`] is a `const fn`, so the bytes
//! are built at compile time.
//!
//! Format version 1, all integers little-endian. The section is a sequence
//! of blocks (one per `needs!` invocation); each block is
//!
//! ```text
//! header (16 bytes): magic "SEPTNEED", version u16, record count u16,
//!                    block length u32 (bytes, header included)
//! record (24 bytes + name): kind u8, flags u8, name length u16,
//!                    reserved u32 (0), a u64, b u64,
//!                    name (UTF-8), zero padding to a multiple of 8
//! ```
//!
//! | kind | need | flags | a | b |
//! |---|---|---|---|---|
//! | 1 | channel writer | 0 | element size | protocol |
//! | 2 | channel reader | 0 | element size | protocol |
//! | 3 | source event | 0 | 0 | 0 |
//! | 4 | target event | 0 | 0 | 0 |
//! | 5 | memory map | bit 0 writable, bit 1 executable | minimum size | 0 |
//! | 6 | device | 0 | minimum ports in its first range | 0 |
//! | 7 | kernel call | 0 | action code (`KernelActionCode`) | 0 |
//! | 8 | crash-audit region (`<crashAudit>`) | 0 | 0 | 0 |

use crate::channel::Format;
use septum_abi::hypercall::KernelActionCode;

/// Name of the ELF section the declarations live in.
pub const SECTION: &str = ".septum.needs";
/// First bytes of every block.
pub const MAGIC: [u8; 8] = *b"SEPTNEED";
/// Format version written by this SDK.
pub const VERSION: u16 = 1;
/// Bytes of a block header.
pub const HEADER_LEN: usize = 16;
/// Bytes of a record before its name.
pub const RECORD_LEN: usize = 24;

/// Record kind: the subject writes a channel.
pub const KIND_CHANNEL_WRITER: u8 = 1;
/// Record kind: the subject reads a channel.
pub const KIND_CHANNEL_READER: u8 = 2;
/// Record kind: the subject raises a source event.
pub const KIND_SOURCE_EVENT: u8 = 3;
/// Record kind: the subject waits for a target event.
pub const KIND_TARGET_EVENT: u8 = 4;
/// Record kind: the subject uses a memory mapping.
pub const KIND_MEMORY: u8 = 5;
/// Record kind: the subject uses a device's I/O ports.
pub const KIND_DEVICE: u8 = 6;

/// Record kind: the subject makes a kernel call ([`crate::Kernel`]).
pub const KIND_KERNEL: u8 = 7;

/// Record kind: the subject reads the crash-audit region
/// ([`crate::crash`]).
pub const KIND_CRASH_AUDIT: u8 = 8;

/// Memory flag: the subject writes the mapping.
pub const FLAG_WRITABLE: u8 = 1;
/// Memory flag: the subject executes from the mapping.
pub const FLAG_EXECUTABLE: u8 = 2;

/// Ports a [`crate::uart::Uart`] needs (a 16550's register block).
pub const UART_PORTS: u64 = 8;

/// One declared need (build them with the constructors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    /// `KIND_*`.
    pub kind: u8,
    /// `FLAG_*` (memory only).
    pub flags: u8,
    /// The logical name the code looks up.
    pub name: &'static str,
    /// First kind-specific value (see the module docs).
    pub a: u64,
    /// Second kind-specific value.
    pub b: u64,
}

impl Need {
    const fn new(kind: u8, name: &'static str) -> Self {
        Self {
            kind,
            flags: 0,
            name,
            a: 0,
            b: 0,
        }
    }

    /// `info.channel_writer(name, format, ..)`.
    pub const fn channel_writer(name: &'static str, format: Format) -> Self {
        Self {
            a: format.element_size,
            b: format.protocol,
            ..Self::new(KIND_CHANNEL_WRITER, name)
        }
    }

    /// `info.channel_reader(name, format)`.
    pub const fn channel_reader(name: &'static str, format: Format) -> Self {
        Self {
            a: format.element_size,
            b: format.protocol,
            ..Self::new(KIND_CHANNEL_READER, name)
        }
    }

    /// `info.log(name)`: a log channel this subject writes
    /// ([`crate::log::FORMAT`]).
    pub const fn log(name: &'static str) -> Self {
        Self::channel_writer(name, crate::log::FORMAT)
    }

    /// `info.source_event(name)`.
    pub const fn source_event(name: &'static str) -> Self {
        Self::new(KIND_SOURCE_EVENT, name)
    }

    /// `info.target_event(name)`.
    pub const fn target_event(name: &'static str) -> Self {
        Self::new(KIND_TARGET_EVENT, name)
    }

    /// `info.memory(name)` / `info.memory_region(name)`, read only.
    pub const fn memory(name: &'static str) -> Self {
        Self::new(KIND_MEMORY, name)
    }

    /// `info.memory_region(name)`, written by the subject.
    pub const fn memory_writable(name: &'static str) -> Self {
        Self {
            flags: FLAG_WRITABLE,
            ..Self::new(KIND_MEMORY, name)
        }
    }

    /// The mapping must be at least `bytes` long.
    pub const fn at_least(self, bytes: u64) -> Self {
        Self { a: bytes, ..self }
    }

    /// `info.io_ports(name)`: a device grant with at least `ports` ports in
    /// its first range.
    pub const fn device(name: &'static str, ports: u64) -> Self {
        Self {
            a: ports,
            ..Self::new(KIND_DEVICE, name)
        }
    }

    /// `Uart::from_info(&info, name)`: a device with at least 8 ports.
    pub const fn uart(name: &'static str) -> Self {
        Self::device(name, UART_PORTS)
    }

    /// `info.crash_audit(name)`: the policy names this subject the
    /// crash-audit reader with `<crashAudit logical="name">`.
    pub const fn crash_audit(name: &'static str) -> Self {
        Self::new(KIND_CRASH_AUDIT, name)
    }

    /// A [`crate::Kernel`] call (`wait` is [`KernelActionCode::Sleep`],
    /// `yield_now` [`KernelActionCode::Yield`], ...): a source event of a
    /// `kernel` event with that action, whatever its logical name. The
    /// record's name is the action's policy spelling.
    pub const fn kernel(action: KernelActionCode) -> Self {
        let name = match action {
            KernelActionCode::Yield => "yield",
            KernelActionCode::Sleep => "sleep",
            KernelActionCode::Poweroff => "poweroff",
            KernelActionCode::Reboot => "reboot",
            KernelActionCode::Panic => "panic",
            KernelActionCode::NextPlan => "next_plan",
            KernelActionCode::UnmaskIrq => "unmask_irq",
        };
        Self {
            a: action as u64,
            ..Self::new(KIND_KERNEL, name)
        }
    }
}

const fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

/// Bytes [`encode`] writes for `needs`.
pub const fn encoded_len(needs: &[Need]) -> usize {
    let mut total = HEADER_LEN;
    let mut i = 0;
    while i < needs.len() {
        total += RECORD_LEN + padded(needs[i].name.len());
        i += 1;
    }
    total
}

const fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
}

/// The block for `needs`; `N` must be [`encoded_len`]`(needs)` (anything
/// else fails to compile when used in a `static`, or panics at run time).
/// Names longer than 65535 bytes or more than 65535 records do not fit.
pub const fn encode<const N: usize>(needs: &[Need]) -> [u8; N] {
    assert!(N == encoded_len(needs), "needs: wrong block length");
    assert!(needs.len() <= u16::MAX as usize, "needs: too many records");
    assert!(N <= u32::MAX as usize, "needs: block too long");
    let mut out = [0u8; N];
    put(&mut out, 0, &MAGIC);
    put(&mut out, 8, &VERSION.to_le_bytes());
    put(&mut out, 10, &(needs.len() as u16).to_le_bytes());
    put(&mut out, 12, &(N as u32).to_le_bytes());
    let mut at = HEADER_LEN;
    let mut i = 0;
    while i < needs.len() {
        let need = needs[i];
        let name = need.name.as_bytes();
        assert!(name.len() <= u16::MAX as usize, "needs: name too long");
        out[at] = need.kind;
        out[at + 1] = need.flags;
        put(&mut out, at + 2, &(name.len() as u16).to_le_bytes());
        put(&mut out, at + 8, &need.a.to_le_bytes());
        put(&mut out, at + 16, &need.b.to_le_bytes());
        put(&mut out, at + RECORD_LEN, name);
        at += RECORD_LEN + padded(name.len());
        i += 1;
    }
    out
}

/// Declares what the subject's code looks up by name, for the composer to
/// check against the policy (see [`crate::needs`](mod@crate::needs)).
///
/// ```ignore
/// use septum_sdk::{channel::Format, needs::Need};
/// septum_sdk::needs![
///     Need::channel_writer("out", Format::DEFAULT),
///     Need::source_event("yield"),
///     Need::uart("uart"),
/// ];
/// ```
///
/// May be used more than once in a binary (each use adds a block).
#[macro_export]
macro_rules! needs {
    ($($need:expr),* $(,)?) => {
        const _: () = {
            const NEEDS: &[$crate::needs::Need] = &[$($need),*];
            #[allow(unsafe_code)]
            #[used]
            #[unsafe(link_section = ".septum.needs")]
            static SEPTUM_NEEDS: [u8; $crate::needs::encoded_len(NEEDS)] =
                $crate::needs::encode(NEEDS);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEEDS: &[Need] = &[
        Need::channel_writer(
            "out",
            Format {
                protocol: 7,
                element_size: 32,
            },
        ),
        Need::source_event("yield"),
        Need::memory_writable("notice").at_least(4096),
        Need::uart("uart"),
    ];
    static BLOCK: [u8; encoded_len(NEEDS)] = encode(NEEDS);

    #[test]
    fn block_layout_is_the_documented_one() {
        assert_eq!(BLOCK.len(), 16 + (24 + 8) * 3 + 24 + 8);
        assert_eq!(&BLOCK[..8], b"SEPTNEED");
        assert_eq!(&BLOCK[8..16], &[1, 0, 4, 0, BLOCK.len() as u8, 0, 0, 0]);
        let first = &BLOCK[16..48];
        assert_eq!(&first[..8], &[1, 0, 3, 0, 0, 0, 0, 0]);
        assert_eq!(&first[8..16], &32u64.to_le_bytes());
        assert_eq!(&first[16..24], &7u64.to_le_bytes());
        assert_eq!(&first[24..32], b"out\0\0\0\0\0");
        let memory = &BLOCK[80..112];
        assert_eq!(&memory[..4], &[KIND_MEMORY, FLAG_WRITABLE, 6, 0]);
        assert_eq!(&memory[8..16], &4096u64.to_le_bytes());
        assert_eq!(&memory[24..30], b"notice");
        let uart = &BLOCK[112..];
        assert_eq!(&uart[..4], &[KIND_DEVICE, 0, 4, 0]);
        assert_eq!(&uart[8..16], &8u64.to_le_bytes());
    }

    #[test]
    fn kernel_calls_carry_the_action_code_and_spelling() {
        const SLEEP: &[Need] = &[Need::kernel(KernelActionCode::Sleep)];
        let block: [u8; 48] = encode(SLEEP);
        assert_eq!(&block[16..20], &[KIND_KERNEL, 0, 5, 0]);
        assert_eq!(&block[24..32], &2u64.to_le_bytes());
        assert_eq!(&block[40..48], b"sleep\0\0\0");
    }

    // The macro as subjects use it (twice: one block each).
    crate::needs![
        Need::source_event("yield"),
        Need::uart("uart"),
        Need::kernel(KernelActionCode::Sleep),
    ];
    crate::needs![];

    #[test]
    fn empty_declaration_is_a_bare_header() {
        const NONE: &[Need] = &[];
        let block: [u8; 16] = encode(NONE);
        assert_eq!(&block[8..], &[1, 0, 0, 0, 16, 0, 0, 0]);
    }
}
