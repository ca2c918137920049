//! The subject info page: what a subject may use, by name.
//!
//! The composer writes one 4 KiB page per subject and maps it read-only at
//! [`crate::layout::SUBJECT_INFO`]. A subject finds its memory, channels,
//! events and devices by the logical names its policy gives them, never by
//! address constants. All integers are little-endian.
//!
//! ```text
//! offset  size  field
//!      0     8  magic            INFO_MAGIC
//!      8     4  version          INFO_VERSION
//!     12     2  subject id
//!     14     2  resource count   (<= MAX_RESOURCES)
//!     16    64  subject name     (UTF-8, zero padded)
//!     80     8  TSC rate in kHz
//!     88     8  major frame length in TSC cycles
//!     96  64*n  resources
//! ```
//!
//! The major frame length is that of the first major frame, the plan the
//! kernel runs from boot, so it is the same on every subject's page. With
//! it a subject knows its period without keeping its own copy of the
//! policy's `tickRate` and frame ticks, which could silently fall out of
//! step with the policy. 0 means the page does not say.
//!
//! Each resource is 64 bytes:
//!
//! ```text
//! offset  size  field
//!      0    32  logical name     (UTF-8, zero padded)
//!     32     1  kind             (ResourceKind)
//!     33     1  flags            (FLAG_*)
//!     34     1  event number     (channel event or event id; 0xff: none)
//!     35     1  vector           (0: none)
//!     36     1  kernel action    (source events: KernelActionCode; 0: none)
//!     37     3  reserved (0)
//!     40     8  address          (virtual address, or first I/O port)
//!     48     8  size             (bytes, or number of I/O ports)
//!     56     8  reserved (0)
//! ```

/// `"SEPTINFO"` as a little-endian `u64`.
pub const INFO_MAGIC: u64 = u64::from_le_bytes(*b"SEPTINFO");
/// Layout version of the info page.
pub const INFO_VERSION: u32 = 1;
/// Size of the page.
pub const INFO_PAGE_SIZE: usize = 4096;
/// Offset of the first resource.
pub const RESOURCES_OFFSET: usize = 96;
/// Size of one resource record.
pub const RESOURCE_SIZE: usize = 64;
/// Longest subject name, in bytes.
pub const MAX_SUBJECT_NAME: usize = 64;
/// Longest logical resource name, in bytes.
pub const MAX_RESOURCE_NAME: usize = 32;
/// Most resources one page holds.
pub const MAX_RESOURCES: usize = (INFO_PAGE_SIZE - RESOURCES_OFFSET) / RESOURCE_SIZE;

/// Value of the event byte when a resource has no event.
pub const NO_EVENT: u8 = 0xff;

/// Offsets of the header fields.
pub mod offset {
    /// `u64` magic.
    pub const MAGIC: usize = 0;
    /// `u32` version.
    pub const VERSION: usize = 8;
    /// `u16` subject id.
    pub const SUBJECT_ID: usize = 12;
    /// `u16` resource count.
    pub const RESOURCE_COUNT: usize = 14;
    /// Subject name bytes.
    pub const NAME: usize = 16;
    /// `u64` TSC rate in kHz.
    pub const TSC_KHZ: usize = 80;
    /// `u64` length of the first major frame in TSC cycles.
    pub const MAJOR_FRAME_CYCLES: usize = 88;
}

/// Offsets inside one resource record.
pub mod resource_offset {
    /// Logical name bytes.
    pub const NAME: usize = 0;
    /// `u8` kind.
    pub const KIND: usize = 32;
    /// `u8` flags.
    pub const FLAGS: usize = 33;
    /// `u8` event number.
    pub const EVENT: usize = 34;
    /// `u8` vector.
    pub const VECTOR: usize = 35;
    /// `u8` kernel action of a source event
    /// ([`crate::hypercall::KernelActionCode`], 0: none). Added in version
    /// 1 in a byte that was reserved (0), so older pages read as "no
    /// action".
    pub const ACTION: usize = 36;
    /// `u64` address.
    pub const ADDRESS: usize = 40;
    /// `u64` size.
    pub const SIZE: usize = 48;
}

/// Mapping is writable.
pub const FLAG_WRITABLE: u8 = 1 << 0;
/// Mapping is executable.
pub const FLAG_EXECUTABLE: u8 = 1 << 1;
/// Channel: this subject is the writer.
pub const FLAG_CHANNEL_WRITER: u8 = 1 << 2;
/// Channel: this subject is a reader.
pub const FLAG_CHANNEL_READER: u8 = 1 << 3;

/// What a resource record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ResourceKind {
    /// A memory mapping (address = virtual address).
    Memory = 1,
    /// A channel (address = virtual address of the header).
    Channel = 2,
    /// A source event the subject may raise (event = its number).
    SourceEvent = 3,
    /// A target event the subject receives (event = its number, vector if it
    /// injects one).
    TargetEvent = 4,
    /// A range of I/O ports (address = first port, size = count).
    IoPorts = 5,
    /// Device memory (address = virtual address).
    DeviceMemory = 6,
    /// An interrupt line (vector = guest vector).
    Irq = 7,
    /// The kernel's crash-audit region, read-only (address = virtual
    /// address, size = region size; layout `crate::crash`).
    CrashAudit = 8,
}

impl ResourceKind {
    /// Decode a kind byte; `None` for unknown values.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Memory),
            2 => Some(Self::Channel),
            3 => Some(Self::SourceEvent),
            4 => Some(Self::TargetEvent),
            5 => Some(Self::IoPorts),
            6 => Some(Self::DeviceMemory),
            7 => Some(Self::Irq),
            8 => Some(Self::CrashAudit),
            _ => None,
        }
    }
}
