//! Reading the multiboot2 boot information and checking the image against it.
//!
//! GRUB passes a multiboot2 information structure (MBI). The kernel's 32-bit
//! entry copies it into a kernel buffer before paging is on (the composer's
//! page tables map nothing but the kernel's own windows), so everything here
//! works on a plain byte slice: bounds are checked on every read and fields
//! are read byte-wise, so odd alignment or a truncated copy cannot fault.
//!
//! Layout (multiboot2 spec, section 3.6): `u32 total_size, u32 reserved`,
//! then tags, each `u32 type, u32 size` followed by its payload and padded
//! to 8 bytes; type 0 ends the list. The memory map tag (type 6) holds
//! `u32 entry_size, u32 entry_version` and entries of
//! `u64 base, u64 length, u32 type, u32 reserved`.

use core::fmt;

use septum_abi::PhysAddr;

/// Multiboot2 memory type of RAM the OS may use.
pub const MEMORY_AVAILABLE: u32 = 1;

const TAG_END: u32 = 0;
const TAG_MEMORY_MAP: u32 = 6;
const MIN_ENTRY_SIZE: usize = 24;

/// One memory map entry as the boot loader reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMapEntry {
    /// First byte.
    pub start: PhysAddr,
    /// Length in bytes.
    pub length: u64,
    /// Multiboot2 type (1 available, 2 reserved, 3 ACPI reclaimable, 4 ACPI
    /// NVS, 5 defective).
    pub kind: u32,
}

impl MemoryMapEntry {
    /// One past the last byte (saturating at 2^64 - 1).
    pub const fn end(&self) -> u64 {
        self.start.get().saturating_add(self.length)
    }

    /// Short name of the type, as printed in the kernel's `mmap` lines.
    pub const fn kind_name(&self) -> &'static str {
        match self.kind {
            1 => "available",
            2 => "reserved",
            3 => "acpi-reclaimable",
            4 => "acpi-nvs",
            5 => "defective",
            _ => "unknown",
        }
    }
}

/// Why the boot information cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbiError {
    /// Fewer than 8 bytes, or a total size below 8.
    TooShort,
    /// The structure is larger than the kernel's copy of it.
    Truncated {
        /// Size the structure claims.
        total_size: u32,
        /// Bytes available.
        available: usize,
    },
    /// No memory map tag.
    NoMemoryMap,
    /// The memory map tag is malformed (entry size below 24 bytes).
    BadMemoryMap,
}

impl fmt::Display for MbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("multiboot2 information is too short"),
            Self::Truncated {
                total_size,
                available,
            } => write!(
                f,
                "multiboot2 information is {total_size} bytes, the kernel copied only {available}"
            ),
            Self::NoMemoryMap => f.write_str("multiboot2 information has no memory map"),
            Self::BadMemoryMap => f.write_str("multiboot2 memory map is malformed"),
        }
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(offset..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    let raw: [u8; 8] = bytes.get(offset..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

/// A validated view of a copied multiboot2 information structure.
#[derive(Debug, Clone, Copy)]
pub struct BootInfo<'a> {
    /// Exactly `total_size` bytes.
    bytes: &'a [u8],
    /// Offset and size of the memory map tag's entries.
    map_entries: &'a [u8],
    /// Bytes per memory map entry (>= 24).
    entry_size: usize,
}

impl<'a> BootInfo<'a> {
    /// Check the header and find the memory map.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MbiError> {
        let total_size = read_u32(bytes, 0).ok_or(MbiError::TooShort)?;
        let total = usize::try_from(total_size).map_err(|_| MbiError::TooShort)?;
        if total < 8 {
            return Err(MbiError::TooShort);
        }
        let bytes = bytes.get(..total).ok_or(MbiError::Truncated {
            total_size,
            available: bytes.len(),
        })?;
        let mut offset = 8usize;
        loop {
            let size_at = offset.saturating_add(4);
            let (Some(kind), Some(size)) = (read_u32(bytes, offset), read_u32(bytes, size_at))
            else {
                return Err(MbiError::NoMemoryMap);
            };
            let size = usize::try_from(size).map_err(|_| MbiError::NoMemoryMap)?;
            if kind == TAG_END || size < 8 {
                return Err(MbiError::NoMemoryMap);
            }
            let tag_end = offset.checked_add(size).ok_or(MbiError::NoMemoryMap)?;
            if kind == TAG_MEMORY_MAP {
                let entry_size = read_u32(bytes, offset.saturating_add(8))
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or(MbiError::BadMemoryMap)?;
                if entry_size < MIN_ENTRY_SIZE {
                    return Err(MbiError::BadMemoryMap);
                }
                let map_entries = bytes
                    .get(offset.saturating_add(16)..tag_end)
                    .ok_or(MbiError::BadMemoryMap)?;
                return Ok(Self {
                    bytes,
                    map_entries,
                    entry_size,
                });
            }
            // Tags start on 8-byte boundaries.
            offset = tag_end.checked_add(7).ok_or(MbiError::NoMemoryMap)? & !7;
        }
    }

    /// Size of the whole structure in bytes.
    pub fn total_size(&self) -> usize {
        self.bytes.len()
    }

    /// The memory map entries, in the boot loader's order.
    pub fn memory_map(&self) -> MemoryMap<'a> {
        MemoryMap {
            entries: self.map_entries,
            entry_size: self.entry_size,
            offset: 0,
        }
    }
}

/// Iterator over memory map entries.
#[derive(Debug, Clone)]
pub struct MemoryMap<'a> {
    entries: &'a [u8],
    entry_size: usize,
    offset: usize,
}

impl Iterator for MemoryMap<'_> {
    type Item = MemoryMapEntry;

    fn next(&mut self) -> Option<MemoryMapEntry> {
        let start = read_u64(self.entries, self.offset)?;
        let length = read_u64(self.entries, self.offset.checked_add(8)?)?;
        let kind = read_u32(self.entries, self.offset.checked_add(16)?)?;
        // An entry must be whole to count.
        self.entries
            .get(self.offset..self.offset.checked_add(self.entry_size)?)?;
        self.offset = self.offset.checked_add(self.entry_size)?;
        Some(MemoryMapEntry {
            start: PhysAddr(start),
            length,
            kind,
        })
    }
}

/// Whether `[start, start + size)` is covered by available entries of the
/// map (adjacent or overlapping available entries count as one range).
/// An empty region counts as covered; a region whose end overflows does not.
pub fn is_usable_ram(map: MemoryMap<'_>, start: PhysAddr, size: u64) -> bool {
    let Some(end) = start.get().checked_add(size) else {
        return false;
    };
    let mut covered_to = start.get();
    // Each pass moves `covered_to` past one available entry, so as many
    // passes as entries suffice; the bound keeps the loop finite regardless.
    for _ in 0..=map.clone().count() {
        if covered_to >= end {
            return true;
        }
        let next = map
            .clone()
            .filter(|entry| entry.kind == MEMORY_AVAILABLE)
            .filter(|entry| entry.start.get() <= covered_to && covered_to < entry.end())
            .map(|entry| entry.end())
            .max();
        match next {
            Some(next) => covered_to = next,
            None => return false,
        }
    }
    covered_to >= end
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn push_u32(buf: &mut Vec<u8>, v: u32) {
        buf.extend_from_slice(&v.to_le_bytes());
    }

    fn push_u64(buf: &mut Vec<u8>, v: u64) {
        buf.extend_from_slice(&v.to_le_bytes());
    }

    /// An MBI shaped like the one GRUB passes in Bochs (megs: 256): a
    /// boot-loader-name tag, then the memory map, then the end tag.
    fn bochs_mbi() -> Vec<u8> {
        let mut buf = Vec::new();
        push_u32(&mut buf, 0);
        push_u32(&mut buf, 0);
        // Tag 2: boot loader name "GRUB 2.06\0" (size 18 -> padded to 24).
        push_u32(&mut buf, 2);
        push_u32(&mut buf, 18);
        buf.extend_from_slice(b"GRUB 2.06\0");
        buf.resize(buf.len().next_multiple_of(8), 0);
        let entries: [(u64, u64, u32); 4] = [
            (0, 0x9f000, 1),
            (0x9f000, 0x1000, 2),
            (0xe8000, 0x18000, 2),
            (0x10_0000, 0xfef_0000, 1),
        ];
        push_u32(&mut buf, 6);
        push_u32(&mut buf, 16 + 24 * entries.len() as u32);
        push_u32(&mut buf, 24);
        push_u32(&mut buf, 0);
        for (base, len, kind) in entries {
            push_u64(&mut buf, base);
            push_u64(&mut buf, len);
            push_u32(&mut buf, kind);
            push_u32(&mut buf, 0);
        }
        push_u32(&mut buf, 0);
        push_u32(&mut buf, 8);
        let total = buf.len() as u32;
        buf[..4].copy_from_slice(&total.to_le_bytes());
        buf
    }

    #[test]
    fn reads_every_memory_map_entry() {
        let buf = bochs_mbi();
        let info = BootInfo::parse(&buf).unwrap();
        let map: Vec<_> = info.memory_map().collect();
        assert_eq!(map.len(), 4);
        assert_eq!(
            map[0],
            MemoryMapEntry {
                start: PhysAddr(0),
                length: 0x9f000,
                kind: 1
            }
        );
        assert_eq!(map[3].end(), 0xfff_0000);
        assert_eq!(map[1].kind_name(), "reserved");
        assert_eq!(info.total_size(), buf.len());
    }

    #[test]
    fn reads_at_odd_alignment() {
        let buf = bochs_mbi();
        let mut shifted = std::vec![0u8; 3];
        shifted.extend_from_slice(&buf);
        let info = BootInfo::parse(&shifted[3..]).unwrap();
        assert_eq!(info.memory_map().count(), 4);
    }

    #[test]
    fn rejects_short_truncated_and_mapless_input() {
        assert_eq!(BootInfo::parse(&[1, 2, 3]).unwrap_err(), MbiError::TooShort);
        let buf = bochs_mbi();
        let err = BootInfo::parse(&buf[..buf.len() - 8]).unwrap_err();
        assert!(matches!(err, MbiError::Truncated { .. }));
        let mut mapless = Vec::new();
        push_u32(&mut mapless, 16);
        push_u32(&mut mapless, 0);
        push_u32(&mut mapless, 0);
        push_u32(&mut mapless, 8);
        assert_eq!(
            BootInfo::parse(&mapless).unwrap_err(),
            MbiError::NoMemoryMap
        );
    }

    #[test]
    fn region_checks() {
        let buf = bochs_mbi();
        let map = || BootInfo::parse(&buf).unwrap().memory_map();
        assert!(is_usable_ram(map(), PhysAddr(0x10_0000), 0x30_0000));
        assert!(is_usable_ram(map(), PhysAddr(0xffe_f000), 0x1000));
        assert!(!is_usable_ram(map(), PhysAddr(0xffe_f000), 0x2000));
        assert!(!is_usable_ram(map(), PhysAddr(0x9f000), 0x1000));
        assert!(!is_usable_ram(map(), PhysAddr(0x9e000), 0x2000));
        assert!(!is_usable_ram(map(), PhysAddr(u64::MAX), 2));
        assert!(is_usable_ram(map(), PhysAddr(0x9e000), 0));
    }

    #[test]
    fn adjacent_available_entries_join() {
        let mut buf = Vec::new();
        push_u32(&mut buf, 0);
        push_u32(&mut buf, 0);
        push_u32(&mut buf, 6);
        push_u32(&mut buf, 16 + 48);
        push_u32(&mut buf, 24);
        push_u32(&mut buf, 0);
        for (base, len) in [(0x20_0000u64, 0x10_0000u64), (0x10_0000, 0x10_0000)] {
            push_u64(&mut buf, base);
            push_u64(&mut buf, len);
            push_u32(&mut buf, 1);
            push_u32(&mut buf, 0);
        }
        let total = buf.len() as u32;
        buf[..4].copy_from_slice(&total.to_le_bytes());
        let map = BootInfo::parse(&buf).unwrap().memory_map();
        assert!(is_usable_ram(map, PhysAddr(0x18_0000), 0x10_0000));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..200 {
            let mut buf = bochs_mbi();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % buf.len();
                buf[at] = (seed >> 32) as u8;
            }
            if let Ok(info) = BootInfo::parse(&buf) {
                let map = info.memory_map();
                let _ = is_usable_ram(map.clone(), PhysAddr(0x10_0000), 0x1000);
                assert!(map.count() <= buf.len() / MIN_ENTRY_SIZE);
            }
        }
    }
}
