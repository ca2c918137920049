//! SHMStream v2: the header of a channel (one writer, n readers, no locks).
//!
//! The layout follows the anchor kernel's format byte for byte so that
//! channel readers and writers written for it interoperate: a 64-byte,
//! 64-byte-aligned header of little-endian `u64` fields directly followed by
//! the element array. The protocol itself (init, write, read, overrun and
//! epoch handling) lives in the SDK (`septum_sdk::channel`).

/// The transport marker every initialised channel carries at offset 0.
pub const TRANSPORT_MARKER: u64 = 0x4873_12b6_b79a_9b6d;

/// Size of the header in bytes; the element array starts right after it.
pub const HEADER_SIZE: usize = 64;

/// Byte offsets of the header fields.
pub mod offset {
    /// Transport marker ([`super::TRANSPORT_MARKER`]).
    pub const TRANSPORT: usize = 0;
    /// Non-zero while the channel is active; changes on every
    /// re-initialisation.
    pub const EPOCH: usize = 8;
    /// Protocol identifier, non-zero, checked by readers.
    pub const PROTOCOL: usize = 16;
    /// Element size in bytes.
    pub const SIZE: usize = 24;
    /// Number of elements in the ring.
    pub const ELEMENTS: usize = 32;
    /// Reserved, zero.
    pub const RESERVED: usize = 40;
    /// Write start counter.
    pub const WSC: usize = 48;
    /// Write counter.
    pub const WC: usize = 56;
}

/// Protocol id of the debug log record format: 64-byte elements of a `u64`
/// timestamp followed by 56 bytes of text.
pub const PROTOCOL_DEBUG_LOG: u64 = 0x6465_6275_676c_6f67;

/// Size of one debug log record.
pub const DEBUG_LOG_RECORD_SIZE: usize = 64;

/// How many elements of `element_size` bytes fit in a channel region of
/// `region_size` bytes, after the header. `None` if the element size is 0.
pub const fn elements_for(region_size: u64, element_size: u64) -> Option<u64> {
    if element_size == 0 || region_size < HEADER_SIZE as u64 {
        return None;
    }
    Some((region_size - HEADER_SIZE as u64) / element_size)
}
