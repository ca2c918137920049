//! Crash audit: the records the kernel leaves behind before a fail-closed
//! reset, and the host- and kernel-side code that checks them.
//!
//! When the kernel meets a condition it cannot continue from (a root-mode
//! exception, a failed VM entry or VMX instruction, a subject fault whose
//! action is `stopSystem`, a `panic` kernel action, a capability missing at
//! boot, an unexpected NMI or a machine check) it writes one [`Record`] into
//! the crash-audit region and resets. The region is uncached RAM that the
//! composer places outside every loaded segment, so neither GRUB nor the
//! next boot of the image clears it; after the warm reset the kernel (or
//! `septum crash decode` on a dump of the region) finds the records again.
//! The shape follows Muen's crash audit (a header with a boot counter, then
//! fixed slots; a record is current when its boot counter matches), with
//! one slot per CPU so several CPUs failing at once never contend for a
//! slot and need no atomic allocation.
//!
//! Everything here is fixed-size, `repr(C)` and plain little-endian
//! integers, so the kernel fills a [`Record`] on its stack without
//! allocating or formatting, seals it ([`Record::seal`]) and copies it to
//! its slot. The byte layout is defined by [`Record::encode`] and
//! [`Header::encode`]; on x86-64 it is also the in-memory layout of the
//! structs (checked at compile time below), so a volatile write of the
//! struct and a copy of the encoded bytes are the same thing.
//!
//! # Region
//!
//! ```text
//! offset              size         content
//!      0                64         Header
//!     64              4032         reserved (0)
//!   4096  512 * slot_count         Record slots, slot n belongs to CPU n
//! ```
//!
//! The region is `region_size(slot_count)` bytes: one page of header, then
//! the slots rounded up to whole pages.
//!
//! # Header (64 bytes)
//!
//! ```text
//! offset size field
//!      0    8 magic           REGION_MAGIC ("SEPTCRAU")
//!      8    4 version         VERSION
//!     12    4 header_size     HEADER_SIZE (64)
//!     16    4 checksum        CRC-32 of the 64 header bytes, this field as 0
//!     20    4 slot_count      record slots (one per CPU, <= MAX_SLOTS)
//!     24    8 boot_counter    boots since the header was initialised
//!     32    8 policy_hash     hash of the image that last booted
//!     40    4 record_size     RECORD_SIZE (512)
//!     44    4 records_offset  RECORDS_OFFSET (4096)
//!     48    8 crash_count     records written since initialisation
//!     56    8 reserved        0
//! ```
//!
//! # Record (512 bytes)
//!
//! ```text
//! offset size field
//!      0    8 magic           RECORD_MAGIC ("SEPTCREC")
//!      8    4 version         VERSION
//!     12    4 size            RECORD_SIZE (512)
//!     16    4 checksum        CRC-32 of the 512 record bytes, this field as 0
//!     20    4 reason          Reason
//!     24    8 boot_counter    the header's boot counter when written
//!     32    8 policy_hash     hash of the image that wrote it
//!     40    8 tsc             TSC when written
//!     48    4 cpu             CPU number (= slot)
//!     52    4 subject         SubjectId, or NO_SUBJECT
//!     56    4 valid           which blocks below hold data (VALID_*)
//!     60    4 reserved        0
//!     64   64 exit            ExitInfo        (VALID_EXIT)
//!    128  192 guest           GuestRegisters  (VALID_GUEST)
//!    320   64 root_exception  RootException   (VALID_ROOT_EXCEPTION)
//!    384   64 machine_check   MachineCheck    (VALID_MACHINE_CHECK)
//!    448   64 reserved        0
//! ```
//!
//! # Checksum
//!
//! CRC-32 (IEEE 802.3 / zlib: reflected polynomial `0xEDB88320`, initial
//! value and final XOR `0xFFFFFFFF`), computed bit by bit without a table.
//! Why CRC-32 rather than Fletcher-64: it detects every burst error up to
//! 32 bits and a torn write (a record half old, half new) with probability
//! 1 - 2^-32, any tool checks it (`zlib.crc32` in Python), and its cost
//! (4096 shift steps per record) does not matter on a path that ends in a
//! reset. No table means no 1 KiB of kernel read-only data for it.
//!
//! # Which records are current, which are from another image
//!
//! The kernel initialises the header when its magic, version or checksum
//! is wrong (first boot, or RAM lost power), and otherwise increments its
//! boot counter at every boot ([`Header::next_boot`]). A record carries the
//! boot counter of the boot that wrote it: in a dump taken after the crash
//! and before the next boot it equals the header's, after the next boot it
//! is one less. Each record also carries the policy hash of the image that
//! wrote it; a record whose hash differs from the image reading it (or from
//! the hash given to `septum crash decode --policy-hash`) is reported as
//! [`SlotState::OtherImage`]: decodable, but its subject ids and addresses
//! mean something else.

// This module is called by the kernel on its fail-closed paths, where a
// panic would be a second failure: hold it to the kernel's rules.
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use core::fmt;

use crate::units::{SubjectId, TscCycles};

/// `"SEPTCRAU"` as a little-endian `u64`: the region header's magic.
pub const REGION_MAGIC: u64 = u64::from_le_bytes(*b"SEPTCRAU");
/// `"SEPTCREC"` as a little-endian `u64`: a record's magic.
pub const RECORD_MAGIC: u64 = u64::from_le_bytes(*b"SEPTCREC");
/// Layout version of the header and the records.
pub const VERSION: u32 = 1;
/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 64;
/// Offset of slot 0 from the start of the region (the header has a page).
pub const RECORDS_OFFSET: usize = 4096;
/// Size of one record (and one slot) in bytes.
pub const RECORD_SIZE: usize = 512;
/// Most slots a region may have (a sanity bound for parsing untrusted
/// dumps; far above any CPU count the composer plans for).
pub const MAX_SLOTS: u32 = 1024;
/// Value of [`Record::subject`] when no subject was running (the kernel
/// failed on its own, at boot or between subjects).
pub const NO_SUBJECT: u32 = u32::MAX;

/// [`Record::valid`] bit: [`Record::exit`] holds the VM exit's data.
pub const VALID_EXIT: u32 = 1 << 0;
/// [`Record::valid`] bit: [`Record::guest`] holds the subject's registers.
pub const VALID_GUEST: u32 = 1 << 1;
/// [`Record::valid`] bit: [`Record::root_exception`] holds a root-mode
/// exception frame.
pub const VALID_ROOT_EXCEPTION: u32 = 1 << 2;
/// [`Record::valid`] bit: [`Record::machine_check`] holds machine-check
/// registers.
pub const VALID_MACHINE_CHECK: u32 = 1 << 3;

const PAGE: u64 = crate::layout::PAGE_SIZE;

/// Size in bytes of a region with `slot_count` slots: one page of header,
/// then the slots rounded up to whole pages. `None` above [`MAX_SLOTS`].
pub const fn region_size(slot_count: u32) -> Option<u64> {
    if slot_count > MAX_SLOTS {
        return None;
    }
    // slot_count <= MAX_SLOTS: at most 512 KiB of slots, no overflow.
    let slots = (slot_count as u64).wrapping_mul(RECORD_SIZE as u64);
    let pages = slots.div_ceil(PAGE);
    Some((RECORDS_OFFSET as u64).wrapping_add(pages.wrapping_mul(PAGE)))
}

/// Offset of slot `slot` from the start of the region; `None` at or above
/// [`MAX_SLOTS`]. The caller also checks `slot` against the header's
/// `slot_count` (the region was sized for that many).
pub const fn slot_offset(slot: u32) -> Option<usize> {
    if slot >= MAX_SLOTS {
        return None;
    }
    // slot < MAX_SLOTS: no overflow.
    Some(RECORDS_OFFSET.wrapping_add((slot as usize).wrapping_mul(RECORD_SIZE)))
}

/// CRC-32 (IEEE) state after `bytes`, from state `crc` (start with
/// `0xFFFF_FFFF`, finish by inverting).
const fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    let mut i = 0;
    while i < bytes.len() {
        #[allow(clippy::indexing_slicing)] // i < len
        let byte = bytes[i];
        crc ^= byte as u32;
        let mut bit = 0u32;
        while bit < 8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            bit = bit.wrapping_add(1);
        }
        i = i.wrapping_add(1);
    }
    crc
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`) of `bytes`.
pub const fn crc32(bytes: &[u8]) -> u32 {
    !crc32_update(0xFFFF_FFFF, bytes)
}

/// CRC-32 of `bytes` with the four bytes at `at` taken as zero (the
/// checksum field itself).
fn crc32_without(bytes: &[u8], at: usize) -> u32 {
    let (before, rest) = bytes.split_at(at.min(bytes.len()));
    let after = rest.get(4..).unwrap_or(&[]);
    let crc = crc32_update(0xFFFF_FFFF, before);
    let crc = crc32_update(crc, &[0; 4]);
    !crc32_update(crc, after)
}

/// Why the kernel stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Reason {
    /// An exception in VMX root mode (the kernel itself faulted);
    /// [`Record::root_exception`] holds the frame.
    RootException = 1,
    /// VM entry failed (SDM Vol. 3C 27.8: exit reason bit 31 set);
    /// [`Record::exit`] and [`Record::guest`] hold the state.
    VmEntryFailure = 2,
    /// A VMX instruction (VMXON, VMPTRLD, VMWRITE, VMLAUNCH, ...) failed;
    /// `exit.vm_instruction_error` holds the error number (SDM 31.4).
    VmxInstructionFailed = 3,
    /// A subject faulted and its fault action is `stopSystem`.
    SubjectFault = 4,
    /// A subject raised an event whose kernel action is `panic`.
    PanicAction = 5,
    /// A VMX capability the image needs is missing at boot.
    BootCapability = 6,
    /// An NMI arrived that nothing expected.
    UnexpectedNmi = 7,
    /// A machine-check exception; [`Record::machine_check`] holds the bank.
    MachineCheck = 8,
    /// A subject faulted and was restarted (`onFault="restartSubject"`);
    /// the system went on. [`Record::exit`] and [`Record::guest`] hold the
    /// fault.
    SubjectRestarted = 9,
}

impl Reason {
    /// Every reason, in number order.
    pub const ALL: [Reason; 9] = [
        Reason::RootException,
        Reason::VmEntryFailure,
        Reason::VmxInstructionFailed,
        Reason::SubjectFault,
        Reason::PanicAction,
        Reason::BootCapability,
        Reason::UnexpectedNmi,
        Reason::MachineCheck,
        Reason::SubjectRestarted,
    ];

    /// Decode a reason number; `None` for unknown values (0 is never a
    /// reason: a zeroed record has none).
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::RootException),
            2 => Some(Self::VmEntryFailure),
            3 => Some(Self::VmxInstructionFailed),
            4 => Some(Self::SubjectFault),
            5 => Some(Self::PanicAction),
            6 => Some(Self::BootCapability),
            7 => Some(Self::UnexpectedNmi),
            8 => Some(Self::MachineCheck),
            9 => Some(Self::SubjectRestarted),
            _ => None,
        }
    }

    /// Stable name (used in `septum crash decode` output).
    pub const fn name(self) -> &'static str {
        match self {
            Self::RootException => "root_exception",
            Self::VmEntryFailure => "vm_entry_failure",
            Self::VmxInstructionFailed => "vmx_instruction_failed",
            Self::SubjectFault => "subject_fault",
            Self::PanicAction => "panic_action",
            Self::BootCapability => "boot_capability",
            Self::UnexpectedNmi => "unexpected_nmi",
            Self::MachineCheck => "machine_check",
            Self::SubjectRestarted => "subject_restarted",
        }
    }
}

/// Writes little-endian integers one after another into a fixed buffer.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes<const N: usize>(&mut self, value: [u8; N]) {
        // `first_chunk_mut` gives an array reference: no length check that
        // could panic is left in the code.
        if let Some(dst) = self
            .buf
            .get_mut(self.pos..)
            .and_then(<[u8]>::first_chunk_mut::<N>)
        {
            *dst = value;
        }
        self.pos = self.pos.saturating_add(N);
    }
    fn u32(&mut self, value: u32) {
        self.bytes(value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.bytes(value.to_le_bytes());
    }
}

/// Reads little-endian integers one after another (zero past the end; the
/// callers check the length first).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let out = self
            .buf
            .get(self.pos..)
            .and_then(<[u8]>::first_chunk::<N>)
            .copied()
            .unwrap_or([0; N]);
        self.pos = self.pos.saturating_add(N);
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.bytes())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.bytes())
    }
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    Reader {
        buf: bytes,
        pos: at,
    }
    .u32()
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    Reader {
        buf: bytes,
        pos: at,
    }
    .u64()
}

/// The region header (see the module doc for its layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Header {
    /// [`REGION_MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u32,
    /// CRC-32 of the encoded header with this field as zero
    /// ([`Header::seal`] sets it).
    pub checksum: u32,
    /// Number of record slots (one per CPU of the plan; the region was
    /// sized for it by the composer, which also wrote it into the spec).
    pub slot_count: u32,
    /// Boots since the header was initialised (the kernel increments it
    /// at every boot that finds a valid header).
    pub boot_counter: u64,
    /// Policy hash of the image that booted last.
    pub policy_hash: u64,
    /// [`RECORD_SIZE`].
    pub record_size: u32,
    /// [`RECORDS_OFFSET`].
    pub records_offset: u32,
    /// Records written since the header was initialised.
    pub crash_count: u64,
    /// Zero.
    pub reserved: u64,
}

const _: () = {
    assert!(core::mem::size_of::<Header>() == HEADER_SIZE);
    assert!(core::mem::offset_of!(Header, checksum) == 16);
    assert!(core::mem::offset_of!(Header, boot_counter) == 24);
    assert!(core::mem::offset_of!(Header, record_size) == 40);
    assert!(core::mem::offset_of!(Header, crash_count) == 48);
};

/// Offset of [`Header::checksum`] in the encoded header.
const HEADER_CHECKSUM_AT: usize = 16;

/// Why a region header is not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer than [`HEADER_SIZE`] bytes.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The magic is not [`REGION_MAGIC`] (never initialised, or not a
    /// crash-audit region).
    BadMagic {
        /// The value found.
        found: u64,
    },
    /// A layout version this code does not know.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// Header size, record size or records offset differ from this
    /// version's constants.
    BadLayout,
    /// More slots than [`MAX_SLOTS`].
    TooManySlots {
        /// The count found.
        found: u32,
    },
    /// The checksum does not match the bytes (torn or corrupted).
    BadChecksum {
        /// Stored checksum.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(
                f,
                "{len} bytes are too short for a crash-audit header ({HEADER_SIZE} bytes)"
            ),
            Self::BadMagic { found } => write!(
                f,
                "bad magic {found:#018x} (expected {REGION_MAGIC:#018x}, \"SEPTCRAU\"): not an \
                 initialised crash-audit region"
            ),
            Self::UnsupportedVersion { found } => write!(
                f,
                "layout version {found} is not supported (this tool reads version {VERSION})"
            ),
            Self::BadLayout => write!(
                f,
                "header size, record size or records offset differ from layout version \
                 {VERSION} ({HEADER_SIZE}, {RECORD_SIZE}, {RECORDS_OFFSET})"
            ),
            Self::TooManySlots { found } => {
                write!(f, "{found} record slots exceed the limit of {MAX_SLOTS}")
            }
            Self::BadChecksum { stored, computed } => write!(
                f,
                "header checksum {stored:#010x} does not match its bytes ({computed:#010x})"
            ),
        }
    }
}

impl Header {
    /// A freshly initialised header (boot counter 0, no crashes), sealed.
    pub fn new(policy_hash: u64, slot_count: u32) -> Self {
        let mut header = Self {
            magic: REGION_MAGIC,
            version: VERSION,
            header_size: HEADER_SIZE as u32,
            checksum: 0,
            slot_count,
            boot_counter: 0,
            policy_hash,
            record_size: RECORD_SIZE as u32,
            records_offset: RECORDS_OFFSET as u32,
            crash_count: 0,
            reserved: 0,
        };
        header.seal();
        header
    }

    /// Record a new boot of the image with `policy_hash`: increment the
    /// boot counter, remember the hash, reseal.
    pub fn next_boot(&mut self, policy_hash: u64) {
        self.boot_counter = self.boot_counter.wrapping_add(1);
        self.policy_hash = policy_hash;
        self.seal();
    }

    /// Count one more record written, and reseal.
    pub fn count_crash(&mut self) {
        self.crash_count = self.crash_count.wrapping_add(1);
        self.seal();
    }

    /// Set [`Header::checksum`] to the CRC-32 of the encoded header.
    pub fn seal(&mut self) {
        self.checksum = 0;
        self.checksum = crc32(&self.encode());
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0; HEADER_SIZE];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.u64(self.magic);
        w.u32(self.version);
        w.u32(self.header_size);
        w.u32(self.checksum);
        w.u32(self.slot_count);
        w.u64(self.boot_counter);
        w.u64(self.policy_hash);
        w.u32(self.record_size);
        w.u32(self.records_offset);
        w.u64(self.crash_count);
        w.u64(self.reserved);
        out
    }

    /// Read and check a header from the first [`HEADER_SIZE`] bytes of
    /// `bytes`: magic, version, layout constants, slot bound, checksum.
    pub fn decode(bytes: &[u8]) -> Result<Self, HeaderError> {
        let Some(bytes) = bytes.get(..HEADER_SIZE) else {
            return Err(HeaderError::TooShort { len: bytes.len() });
        };
        let mut r = Reader { buf: bytes, pos: 0 };
        let header = Self {
            magic: r.u64(),
            version: r.u32(),
            header_size: r.u32(),
            checksum: r.u32(),
            slot_count: r.u32(),
            boot_counter: r.u64(),
            policy_hash: r.u64(),
            record_size: r.u32(),
            records_offset: r.u32(),
            crash_count: r.u64(),
            reserved: r.u64(),
        };
        if header.magic != REGION_MAGIC {
            return Err(HeaderError::BadMagic {
                found: header.magic,
            });
        }
        if header.version != VERSION {
            return Err(HeaderError::UnsupportedVersion {
                found: header.version,
            });
        }
        if header.header_size as usize != HEADER_SIZE
            || header.record_size as usize != RECORD_SIZE
            || header.records_offset as usize != RECORDS_OFFSET
        {
            return Err(HeaderError::BadLayout);
        }
        if header.slot_count > MAX_SLOTS {
            return Err(HeaderError::TooManySlots {
                found: header.slot_count,
            });
        }
        let computed = crc32_without(bytes, HEADER_CHECKSUM_AT);
        if computed != header.checksum {
            return Err(HeaderError::BadChecksum {
                stored: header.checksum,
                computed,
            });
        }
        Ok(header)
    }
}

/// The VM exit that led to the record (VMCS exit-information fields, SDM
/// Vol. 3C 25.9). Valid when [`Record::valid`] has [`VALID_EXIT`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ExitInfo {
    /// Exit reason (basic reason in bits 15:0, bit 31 = VM-entry failure).
    pub exit_reason: u32,
    /// VM-instruction error field (SDM 31.4), for a failed VMX instruction.
    pub vm_instruction_error: u32,
    /// Exit qualification.
    pub qualification: u64,
    /// Guest-physical address (EPT violations and misconfigurations).
    pub guest_physical: u64,
    /// Guest-linear address.
    pub guest_linear: u64,
    /// VM-exit interruption information.
    pub interruption_info: u32,
    /// VM-exit interruption error code.
    pub interruption_error: u32,
    /// IDT-vectoring information (an event being delivered at the exit).
    pub idt_vectoring_info: u32,
    /// IDT-vectoring error code.
    pub idt_vectoring_error: u32,
    /// VM-exit instruction length.
    pub instruction_length: u32,
    /// VM-exit instruction information.
    pub instruction_info: u32,
    /// Zero.
    pub reserved: u64,
}

/// The subject's registers at the exit (GPRs from the kernel's save area,
/// the rest from the VMCS guest-state area). Valid when [`Record::valid`]
/// has [`VALID_GUEST`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
#[allow(missing_docs)] // The register names are their documentation.
pub struct GuestRegisters {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// Zero.
    pub reserved: u64,
}

/// A root-mode exception frame: what the CPU pushed, plus CR2. Valid when
/// [`Record::valid`] has [`VALID_ROOT_EXCEPTION`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RootException {
    /// Exception vector.
    pub vector: u64,
    /// Error code (0 for vectors that push none).
    pub error_code: u64,
    /// Faulting RIP.
    pub rip: u64,
    /// CS.
    pub cs: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// RSP.
    pub rsp: u64,
    /// SS.
    pub ss: u64,
    /// CR2 (the faulting linear address of a page fault).
    pub cr2: u64,
}

/// Machine-check registers of the first bank with a valid error. Valid
/// when [`Record::valid`] has [`VALID_MACHINE_CHECK`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct MachineCheck {
    /// IA32_MCG_STATUS.
    pub mcg_status: u64,
    /// Bank number.
    pub bank: u64,
    /// IA32_MCi_STATUS.
    pub status: u64,
    /// IA32_MCi_ADDR (0 when not valid).
    pub address: u64,
    /// IA32_MCi_MISC (0 when not valid).
    pub misc: u64,
    /// Zero.
    pub reserved: [u64; 3],
}

/// One crash record (see the module doc for its layout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Record {
    /// [`RECORD_MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// [`RECORD_SIZE`].
    pub size: u32,
    /// CRC-32 of the encoded record with this field as zero
    /// ([`Record::seal`] sets it; written last by the kernel's copy, so a
    /// torn write does not match).
    pub checksum: u32,
    /// A [`Reason`] number.
    pub reason: u32,
    /// The header's boot counter when the record was written.
    pub boot_counter: u64,
    /// Policy hash of the image that wrote the record.
    pub policy_hash: u64,
    /// TSC when the record was written.
    pub tsc: u64,
    /// CPU number; also the slot the record is in.
    pub cpu: u32,
    /// The subject that was running ([`SubjectId`]), or [`NO_SUBJECT`].
    pub subject: u32,
    /// Which of the blocks below hold data (`VALID_*` bits).
    pub valid: u32,
    /// Zero.
    pub reserved0: u32,
    /// The VM exit ([`VALID_EXIT`]).
    pub exit: ExitInfo,
    /// The subject's registers ([`VALID_GUEST`]).
    pub guest: GuestRegisters,
    /// The root-mode exception frame ([`VALID_ROOT_EXCEPTION`]).
    pub root_exception: RootException,
    /// Machine-check registers ([`VALID_MACHINE_CHECK`]).
    pub machine_check: MachineCheck,
    /// Zero.
    pub reserved: [u64; 8],
}

const _: () = {
    assert!(core::mem::size_of::<Record>() == RECORD_SIZE);
    assert!(core::mem::size_of::<ExitInfo>() == 64);
    assert!(core::mem::size_of::<GuestRegisters>() == 192);
    assert!(core::mem::size_of::<RootException>() == 64);
    assert!(core::mem::size_of::<MachineCheck>() == 64);
    assert!(core::mem::offset_of!(Record, checksum) == 16);
    assert!(core::mem::offset_of!(Record, boot_counter) == 24);
    assert!(core::mem::offset_of!(Record, cpu) == 48);
    assert!(core::mem::offset_of!(Record, exit) == 64);
    assert!(core::mem::offset_of!(Record, guest) == 128);
    assert!(core::mem::offset_of!(Record, root_exception) == 320);
    assert!(core::mem::offset_of!(Record, machine_check) == 384);
    assert!(core::mem::offset_of!(Record, reserved) == 448);
};

/// Offset of [`Record::checksum`] in the encoded record.
const RECORD_CHECKSUM_AT: usize = 16;

/// Why a slot holds no usable record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer than [`RECORD_SIZE`] bytes.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// The magic is not [`RECORD_MAGIC`] (never written, or overwritten).
    BadMagic {
        /// The value found.
        found: u64,
    },
    /// A layout version this code does not know.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// The size field is not [`RECORD_SIZE`].
    BadSize {
        /// The size found.
        found: u32,
    },
    /// The checksum does not match the bytes (torn write or corruption).
    BadChecksum {
        /// Stored checksum.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(
                f,
                "{len} bytes are too short for a record ({RECORD_SIZE} bytes)"
            ),
            Self::BadMagic { found } => write!(
                f,
                "bad magic {found:#018x} (expected {RECORD_MAGIC:#018x}, \"SEPTCREC\")"
            ),
            Self::UnsupportedVersion { found } => write!(
                f,
                "record version {found} is not supported (this tool reads version {VERSION})"
            ),
            Self::BadSize { found } => write!(f, "record size {found} is not {RECORD_SIZE} bytes"),
            Self::BadChecksum { stored, computed } => write!(
                f,
                "bad checksum: stored {stored:#010x}, computed {computed:#010x} (torn or \
                 corrupted record)"
            ),
        }
    }
}

impl Record {
    /// An unsealed record with the fixed fields set and no data block
    /// valid. Fill the blocks with the `set_*` methods, then
    /// [`Record::seal`] it.
    pub const fn new(
        reason: Reason,
        boot_counter: u64,
        policy_hash: u64,
        tsc: TscCycles,
        cpu: u32,
        subject: Option<SubjectId>,
    ) -> Self {
        Self {
            magic: RECORD_MAGIC,
            version: VERSION,
            size: RECORD_SIZE as u32,
            checksum: 0,
            reason: reason as u32,
            boot_counter,
            policy_hash,
            tsc: tsc.get(),
            cpu,
            subject: match subject {
                Some(id) => id.0 as u32,
                None => NO_SUBJECT,
            },
            valid: 0,
            reserved0: 0,
            exit: ExitInfo {
                exit_reason: 0,
                vm_instruction_error: 0,
                qualification: 0,
                guest_physical: 0,
                guest_linear: 0,
                interruption_info: 0,
                interruption_error: 0,
                idt_vectoring_info: 0,
                idt_vectoring_error: 0,
                instruction_length: 0,
                instruction_info: 0,
                reserved: 0,
            },
            guest: GuestRegisters {
                rax: 0,
                rbx: 0,
                rcx: 0,
                rdx: 0,
                rsi: 0,
                rdi: 0,
                rbp: 0,
                rsp: 0,
                r8: 0,
                r9: 0,
                r10: 0,
                r11: 0,
                r12: 0,
                r13: 0,
                r14: 0,
                r15: 0,
                rip: 0,
                rflags: 0,
                cr0: 0,
                cr2: 0,
                cr3: 0,
                cr4: 0,
                efer: 0,
                reserved: 0,
            },
            root_exception: RootException {
                vector: 0,
                error_code: 0,
                rip: 0,
                cs: 0,
                rflags: 0,
                rsp: 0,
                ss: 0,
                cr2: 0,
            },
            machine_check: MachineCheck {
                mcg_status: 0,
                bank: 0,
                status: 0,
                address: 0,
                misc: 0,
                reserved: [0; 3],
            },
            reserved: [0; 8],
        }
    }

    /// Store the VM exit and mark it valid.
    pub fn set_exit(&mut self, exit: ExitInfo) {
        self.exit = exit;
        self.valid |= VALID_EXIT;
    }

    /// Store the subject's registers and mark them valid.
    pub fn set_guest(&mut self, guest: GuestRegisters) {
        self.guest = guest;
        self.valid |= VALID_GUEST;
    }

    /// Store a root-mode exception frame and mark it valid.
    pub fn set_root_exception(&mut self, frame: RootException) {
        self.root_exception = frame;
        self.valid |= VALID_ROOT_EXCEPTION;
    }

    /// Store machine-check registers and mark them valid.
    pub fn set_machine_check(&mut self, machine_check: MachineCheck) {
        self.machine_check = machine_check;
        self.valid |= VALID_MACHINE_CHECK;
    }

    /// Set [`Record::checksum`] to the CRC-32 of the encoded record. Call
    /// it last, after every field is filled.
    pub fn seal(&mut self) {
        self.checksum = 0;
        self.checksum = crc32(&self.encode());
    }

    /// The reason, `None` for a number this version does not know.
    pub const fn reason(&self) -> Option<Reason> {
        Reason::from_u32(self.reason)
    }

    /// The subject that was running, `None` for [`NO_SUBJECT`] (or a value
    /// no subject id can have).
    pub const fn subject(&self) -> Option<SubjectId> {
        if self.subject > u16::MAX as u32 {
            None
        } else {
            Some(SubjectId(self.subject as u16))
        }
    }

    /// The VM exit, if recorded.
    pub const fn exit(&self) -> Option<&ExitInfo> {
        if self.valid & VALID_EXIT != 0 {
            Some(&self.exit)
        } else {
            None
        }
    }

    /// The subject's registers, if recorded.
    pub const fn guest(&self) -> Option<&GuestRegisters> {
        if self.valid & VALID_GUEST != 0 {
            Some(&self.guest)
        } else {
            None
        }
    }

    /// The root-mode exception frame, if recorded.
    pub const fn root_exception(&self) -> Option<&RootException> {
        if self.valid & VALID_ROOT_EXCEPTION != 0 {
            Some(&self.root_exception)
        } else {
            None
        }
    }

    /// The machine-check registers, if recorded.
    pub const fn machine_check(&self) -> Option<&MachineCheck> {
        if self.valid & VALID_MACHINE_CHECK != 0 {
            Some(&self.machine_check)
        } else {
            None
        }
    }

    /// The record's bytes, in the documented layout.
    pub fn encode(&self) -> [u8; RECORD_SIZE] {
        let mut out = [0; RECORD_SIZE];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.u64(self.magic);
        w.u32(self.version);
        w.u32(self.size);
        w.u32(self.checksum);
        w.u32(self.reason);
        w.u64(self.boot_counter);
        w.u64(self.policy_hash);
        w.u64(self.tsc);
        w.u32(self.cpu);
        w.u32(self.subject);
        w.u32(self.valid);
        w.u32(self.reserved0);
        let e = &self.exit;
        w.u32(e.exit_reason);
        w.u32(e.vm_instruction_error);
        w.u64(e.qualification);
        w.u64(e.guest_physical);
        w.u64(e.guest_linear);
        w.u32(e.interruption_info);
        w.u32(e.interruption_error);
        w.u32(e.idt_vectoring_info);
        w.u32(e.idt_vectoring_error);
        w.u32(e.instruction_length);
        w.u32(e.instruction_info);
        w.u64(e.reserved);
        for value in guest_fields(&self.guest) {
            w.u64(value);
        }
        let x = &self.root_exception;
        for value in [
            x.vector,
            x.error_code,
            x.rip,
            x.cs,
            x.rflags,
            x.rsp,
            x.ss,
            x.cr2,
        ] {
            w.u64(value);
        }
        let m = &self.machine_check;
        for value in [m.mcg_status, m.bank, m.status, m.address, m.misc] {
            w.u64(value);
        }
        for value in m.reserved.iter().chain(self.reserved.iter()) {
            w.u64(*value);
        }
        out
    }

    /// Read the first [`RECORD_SIZE`] bytes of `bytes` as a record and
    /// check magic, version, size and checksum. An unknown reason is not
    /// an error ([`Record::reason`] is then `None`).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let Some(bytes) = bytes.get(..RECORD_SIZE) else {
            return Err(RecordError::TooShort { len: bytes.len() });
        };
        let magic = le_u64(bytes, 0);
        if magic != RECORD_MAGIC {
            return Err(RecordError::BadMagic { found: magic });
        }
        let version = le_u32(bytes, 8);
        if version != VERSION {
            return Err(RecordError::UnsupportedVersion { found: version });
        }
        let size = le_u32(bytes, 12);
        if size as usize != RECORD_SIZE {
            return Err(RecordError::BadSize { found: size });
        }
        let stored = le_u32(bytes, RECORD_CHECKSUM_AT);
        let computed = crc32_without(bytes, RECORD_CHECKSUM_AT);
        if stored != computed {
            return Err(RecordError::BadChecksum { stored, computed });
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let mut record = Self {
            magic: r.u64(),
            version: r.u32(),
            size: r.u32(),
            checksum: r.u32(),
            reason: r.u32(),
            boot_counter: r.u64(),
            policy_hash: r.u64(),
            tsc: r.u64(),
            cpu: r.u32(),
            subject: r.u32(),
            valid: r.u32(),
            reserved0: r.u32(),
            exit: ExitInfo {
                exit_reason: r.u32(),
                vm_instruction_error: r.u32(),
                qualification: r.u64(),
                guest_physical: r.u64(),
                guest_linear: r.u64(),
                interruption_info: r.u32(),
                interruption_error: r.u32(),
                idt_vectoring_info: r.u32(),
                idt_vectoring_error: r.u32(),
                instruction_length: r.u32(),
                instruction_info: r.u32(),
                reserved: r.u64(),
            },
            ..Self::default()
        };
        for field in guest_fields_mut(&mut record.guest) {
            *field = r.u64();
        }
        let x = &mut record.root_exception;
        for field in [
            &mut x.vector,
            &mut x.error_code,
            &mut x.rip,
            &mut x.cs,
            &mut x.rflags,
            &mut x.rsp,
            &mut x.ss,
            &mut x.cr2,
        ] {
            *field = r.u64();
        }
        let m = &mut record.machine_check;
        for field in [
            &mut m.mcg_status,
            &mut m.bank,
            &mut m.status,
            &mut m.address,
            &mut m.misc,
        ] {
            *field = r.u64();
        }
        for field in m.reserved.iter_mut().chain(record.reserved.iter_mut()) {
            *field = r.u64();
        }
        Ok(record)
    }
}

/// The guest registers in layout order.
fn guest_fields(g: &GuestRegisters) -> [u64; 24] {
    [
        g.rax, g.rbx, g.rcx, g.rdx, g.rsi, g.rdi, g.rbp, g.rsp, g.r8, g.r9, g.r10, g.r11, g.r12,
        g.r13, g.r14, g.r15, g.rip, g.rflags, g.cr0, g.cr2, g.cr3, g.cr4, g.efer, g.reserved,
    ]
}

/// The guest registers in layout order, to fill.
fn guest_fields_mut(g: &mut GuestRegisters) -> [&mut u64; 24] {
    [
        &mut g.rax,
        &mut g.rbx,
        &mut g.rcx,
        &mut g.rdx,
        &mut g.rsi,
        &mut g.rdi,
        &mut g.rbp,
        &mut g.rsp,
        &mut g.r8,
        &mut g.r9,
        &mut g.r10,
        &mut g.r11,
        &mut g.r12,
        &mut g.r13,
        &mut g.r14,
        &mut g.r15,
        &mut g.rip,
        &mut g.rflags,
        &mut g.cr0,
        &mut g.cr2,
        &mut g.cr3,
        &mut g.cr4,
        &mut g.efer,
        &mut g.reserved,
    ]
}

/// Names of the guest registers in layout order (for decoders).
pub const GUEST_REGISTER_NAMES: [&str; 23] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer",
];

impl GuestRegisters {
    /// Every register with its name, in layout order (without the
    /// reserved word).
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> {
        GUEST_REGISTER_NAMES.into_iter().zip(guest_fields(self))
    }
}

/// What one slot of a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Every byte is zero: never written.
    Empty,
    /// A record written by the expected image.
    Valid(Record),
    /// A well-formed record whose policy hash is not the expected one: it
    /// was written by another image, so its subject ids and addresses
    /// refer to that image's policy.
    OtherImage(Record),
    /// Bytes that are not a record, with the reason.
    Invalid(RecordError),
}

/// Why a byte string is not a crash-audit region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The header is not usable.
    Header(HeaderError),
    /// The bytes end before the last slot the header announces.
    Truncated {
        /// Bytes the header's slot count needs.
        needed: usize,
        /// Bytes given.
        len: usize,
    },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(e) => write!(f, "{e}"),
            Self::Truncated { needed, len } => write!(
                f,
                "{len} bytes end before the last record slot the header announces ({needed} \
                 bytes needed)"
            ),
        }
    }
}

/// A crash-audit region read from bytes: a checked header and its slots.
#[derive(Clone, Copy, Debug)]
pub struct Region<'a> {
    header: Header,
    bytes: &'a [u8],
}

impl<'a> Region<'a> {
    /// Check the header and that every slot it announces lies in `bytes`.
    /// The slots themselves are checked one by one ([`Region::slot`]): a
    /// torn record does not hide the others.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RegionError> {
        let header = Header::decode(bytes).map_err(RegionError::Header)?;
        // slot_count <= MAX_SLOTS, so this does not overflow.
        let needed = slot_offset(header.slot_count).unwrap_or(usize::MAX);
        if bytes.len() < needed {
            return Err(RegionError::Truncated {
                needed,
                len: bytes.len(),
            });
        }
        Ok(Self { header, bytes })
    }

    /// The header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Slot `slot`, judged against the image with `expected_hash` (usually
    /// [`Header::policy_hash`] or the reader's own). `None` past the last
    /// slot.
    pub fn slot(&self, slot: u32, expected_hash: u64) -> Option<SlotState> {
        if slot >= self.header.slot_count {
            return None;
        }
        let start = slot_offset(slot)?;
        let bytes = self.bytes.get(start..start.checked_add(RECORD_SIZE)?)?;
        Some(classify(bytes, expected_hash))
    }

    /// Every slot in order, judged as [`Region::slot`] does.
    pub fn slots(&self, expected_hash: u64) -> impl Iterator<Item = (u32, SlotState)> + '_ {
        (0..self.header.slot_count)
            .filter_map(move |i| self.slot(i, expected_hash).map(|state| (i, state)))
    }
}

/// Judge one slot's bytes.
pub fn classify(bytes: &[u8], expected_hash: u64) -> SlotState {
    if bytes.iter().all(|&b| b == 0) && bytes.len() >= RECORD_SIZE {
        return SlotState::Empty;
    }
    match Record::decode(bytes) {
        Ok(record) if record.policy_hash == expected_hash => SlotState::Valid(record),
        Ok(record) => SlotState::OtherImage(record),
        Err(e) => SlotState::Invalid(e),
    }
}

/// A region's bytes with `records` in their CPUs' slots (for tests, tools
/// and emulators that prepare or fake a region; the kernel writes in
/// place). Records whose CPU is not below `header.slot_count` are left
/// out; `out` must be [`region_size`] bytes or more, else nothing past its
/// end is written.
pub fn encode_region(header: &Header, records: &[Record], out: &mut [u8]) {
    if let Some(dst) = out.get_mut(..HEADER_SIZE) {
        dst.copy_from_slice(&header.encode());
    }
    for record in records {
        if record.cpu >= header.slot_count {
            continue;
        }
        let Some(start) = slot_offset(record.cpu) else {
            continue;
        };
        let Some(end) = start.checked_add(RECORD_SIZE) else {
            continue;
        };
        if let Some(dst) = out.get_mut(start..end) {
            dst.copy_from_slice(&record.encode());
        }
    }
}

#[cfg(test)]
mod tests;
