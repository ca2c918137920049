//! Four-level page tables built offline: the kernel's IA-32e tables, each
//! subject's own IA-32e tables and each subject's EPT.
//!
//! Both formats share the radix shape (512 entries of 8 bytes per level,
//! 4 KiB leaves at level 0, 2 MiB leaves at level 1 with bit 7 set), so one
//! builder serves them; only the bits of an entry differ ([`Format`]).
//!
//! Tables are built before their own physical placement is known: a pointer
//! from one table to another is first stored as the child's *index* in the
//! address bits, and [`PageTables::to_bytes`] adds the final base address
//! when serialising. The number of table pages ([`PageTables::page_count`])
//! is therefore known before the allocator is asked for room, and building is
//! a pure function of the mappings.
//!
//! Entries the hardware might update are pre-set so the CPU never writes to
//! the tables: IA-32e entries carry Accessed and Dirty; EPT accessed/dirty
//! flags are not enabled in the EPTP at all.
//!
//! Formats (SDM Vol. 3A 4.5 for IA-32e, Vol. 3C 29.3.2 for EPT):
//! - IA-32e: P=bit 0, R/W=bit 1, U/S=bit 2 (always 0: supervisor), PWT=bit 3
//!   and PCD=bit 4 (both set only for [`Rights::uncached`]), A=bit 5, D=bit 6,
//!   PS=bit 7, XD=bit 63.
//! - EPT: R=bit 0, W=bit 1, X=bit 2, memory type=bits 5:3 (leaves), large
//!   page=bit 7.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use septum_abi::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use septum_abi::{GuestPhysAddr, PhysAddr, VirtAddr};

const ENTRIES: usize = 512;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const LARGE_BIT: u64 = 1 << 7;
/// Highest input address + 1 that four levels translate (48 bits). Only the
/// lower canonical half is used.
pub const INPUT_LIMIT: u64 = 1 << 47;

/// IA-32e entry bits (SDM Vol. 3A, Table 4-14 .. 4-20).
pub mod ia32e {
    /// Present.
    pub const PRESENT: u64 = 1 << 0;
    /// Writable.
    pub const WRITABLE: u64 = 1 << 1;
    /// Accessed.
    pub const ACCESSED: u64 = 1 << 5;
    /// Dirty.
    pub const DIRTY: u64 = 1 << 6;
    /// Page-level write-through (PWT).
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// Page-level cache disable (PCD).
    pub const CACHE_DISABLE: u64 = 1 << 4;
    /// Page size (2 MiB leaf at level 1).
    pub const PAGE_SIZE: u64 = 1 << 7;
    /// Execute-disable.
    pub const EXECUTE_DISABLE: u64 = 1 << 63;
}

/// EPT entry bits (SDM Vol. 3C, Tables 29-1 .. 29-6).
pub mod ept {
    /// Read access.
    pub const READ: u64 = 1 << 0;
    /// Write access.
    pub const WRITE: u64 = 1 << 1;
    /// Execute access (supervisor-mode linear addresses).
    pub const EXECUTE: u64 = 1 << 2;
    /// Shift of the memory type field (bits 5:3) in leaves.
    pub const MEMORY_TYPE_SHIFT: u32 = 3;
    /// Large (2 MiB) leaf at level 1.
    pub const LARGE_PAGE: u64 = 1 << 7;
}

/// The memory type number of a policy caching attribute.
///
/// A trait because the caching enum is the policy crate's own type
/// (`septum_policy::model::Caching`) and the number is a paging fact.
pub trait MemoryType {
    /// Memory type encoding shared by EPT leaf entries and MTRRs (SDM Vol.
    /// 3A 12.3, Table 12-2; EPT bits 5:3 use the same numbers, SDM 29.3.7).
    fn memory_type(self) -> u64;
}

impl MemoryType for septum_policy::model::Caching {
    fn memory_type(self) -> u64 {
        use septum_policy::model::Caching;
        match self {
            Caching::Uc => 0,
            Caching::Wc => 1,
            Caching::Wt => 4,
            Caching::Wp => 5,
            Caching::Wb => 6,
        }
    }
}

/// Entry format of a set of tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// IA-32e paging (kernel and subject page tables).
    Ia32e,
    /// Extended page tables.
    Ept,
}

/// Rights and memory type of a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights {
    /// Writes allowed.
    pub writable: bool,
    /// Instruction fetches allowed.
    pub executable: bool,
    /// EPT memory type (ignored for IA-32e, where the PAT entry the leaf
    /// selects and, for a subject, the EPT memory type decide).
    pub memory_type: u64,
    /// IA-32e only: set PCD and PWT in the leaf, selecting PAT entry 3,
    /// which is UC with the PAT's reset value (SDM Vol. 3A 13.12.4). Off
    /// (PAT entry 0, WB) everywhere but the kernel's crash-audit mapping;
    /// ignored for EPT.
    pub uncached: bool,
}

impl Rights {
    /// Rights of a mapping of a region with memory type `caching`.
    pub fn of(writable: bool, executable: bool, caching: septum_policy::model::Caching) -> Self {
        Self {
            writable,
            executable,
            memory_type: caching.memory_type(),
            uncached: false,
        }
    }

    fn leaf_bits(self, format: Format) -> u64 {
        match format {
            Format::Ia32e => {
                let mut bits = ia32e::PRESENT | ia32e::ACCESSED | ia32e::DIRTY;
                if self.writable {
                    bits |= ia32e::WRITABLE;
                }
                if !self.executable {
                    bits |= ia32e::EXECUTE_DISABLE;
                }
                if self.uncached {
                    bits |= ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH;
                }
                bits
            }
            Format::Ept => {
                let mut bits = ept::READ | ((self.memory_type & 7) << ept::MEMORY_TYPE_SHIFT);
                if self.writable {
                    bits |= ept::WRITE;
                }
                if self.executable {
                    bits |= ept::EXECUTE;
                }
                bits
            }
        }
    }

    /// Decode the rights of a serialised leaf entry.
    pub fn from_leaf(format: Format, entry: u64) -> Self {
        match format {
            Format::Ia32e => Rights {
                writable: entry & ia32e::WRITABLE != 0,
                executable: entry & ia32e::EXECUTE_DISABLE == 0,
                memory_type: 0,
                uncached: entry & (ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH)
                    == ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH,
            },
            Format::Ept => Rights {
                writable: entry & ept::WRITE != 0,
                executable: entry & ept::EXECUTE != 0,
                memory_type: (entry >> ept::MEMORY_TYPE_SHIFT) & 7,
                uncached: false,
            },
        }
    }
}

/// Most permissive rights on non-leaf entries, so the leaf alone decides.
fn table_bits(format: Format) -> u64 {
    match format {
        Format::Ia32e => ia32e::PRESENT | ia32e::WRITABLE | ia32e::ACCESSED | ia32e::DIRTY,
        Format::Ept => ept::READ | ept::WRITE | ept::EXECUTE,
    }
}

/// An address type the tables translate from or to.
pub trait Address: Copy {
    /// Raw value.
    fn raw(self) -> u64;
    /// From a raw value.
    fn from_raw(value: u64) -> Self;
}

macro_rules! impl_address {
    ($($t:ty),*) => {$(
        impl Address for $t {
            fn raw(self) -> u64 {
                self.0
            }
            fn from_raw(value: u64) -> Self {
                Self(value)
            }
        }
    )*};
}
impl_address!(PhysAddr, GuestPhysAddr, VirtAddr);

/// Why a mapping was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not a multiple of 4 KiB, or size zero.
    #[error("mapping {input:#x}+{size:#x} is not 4 KiB aligned or is empty")]
    Unaligned {
        /// Input address.
        input: u64,
        /// Size.
        size: u64,
    },
    /// Beyond the 47-bit lower half.
    #[error("mapping {input:#x}+{size:#x} lies beyond the 47-bit address space")]
    OutOfRange {
        /// Input address.
        input: u64,
        /// Size.
        size: u64,
    },
    /// The page is already mapped.
    #[error("address {input:#x} is mapped twice")]
    Overlap {
        /// First doubly mapped input address.
        input: u64,
    },
}

/// A set of four-level tables being built. `I` is the input address kind,
/// `O` the output (and table-placement) address kind.
pub struct PageTables<I, O> {
    format: Format,
    /// Table 0 is the root (level 3).
    tables: Vec<Box<[u64; ENTRIES]>>,
    levels: Vec<u8>,
    large_pages: bool,
    _kinds: PhantomData<(I, O)>,
}

/// The kernel's identity tables.
pub type KernelTables = PageTables<VirtAddr, PhysAddr>;
/// A subject's own IA-32e tables (virtual -> guest-physical).
pub type GuestTables = PageTables<VirtAddr, GuestPhysAddr>;
/// A subject's EPT (guest-physical -> host-physical).
pub type EptTables = PageTables<GuestPhysAddr, PhysAddr>;

fn index(input: u64, level: u8) -> usize {
    ((input >> (12 + 9 * u32::from(level))) & 0x1ff) as usize
}

impl<I: Address, O: Address> PageTables<I, O> {
    /// Empty tables (one root). `large_pages` allows 2 MiB leaves where both
    /// addresses are 2 MiB aligned.
    pub fn new(format: Format, large_pages: bool) -> Self {
        Self {
            format,
            tables: vec![Box::new([0; ENTRIES])],
            levels: vec![3],
            large_pages,
            _kinds: PhantomData,
        }
    }

    /// Number of 4 KiB table pages.
    pub fn page_count(&self) -> usize {
        self.tables.len()
    }

    /// Map `size` bytes from `input` to `output` with `rights`.
    pub fn map(&mut self, input: I, output: O, size: u64, rights: Rights) -> Result<(), MapError> {
        let (input, output) = (input.raw(), output.raw());
        if size == 0
            || input % PAGE_SIZE != 0
            || output % PAGE_SIZE != 0
            || !size.is_multiple_of(PAGE_SIZE)
        {
            return Err(MapError::Unaligned { input, size });
        }
        if input.checked_add(size).is_none_or(|end| end > INPUT_LIMIT) {
            return Err(MapError::OutOfRange { input, size });
        }
        let leaf = rights.leaf_bits(self.format);
        let mut offset = 0;
        while offset < size {
            let (virt, phys) = (input + offset, output + offset);
            let remaining = size - offset;
            let large = self.large_pages
                && virt % LARGE_PAGE_SIZE == 0
                && phys % LARGE_PAGE_SIZE == 0
                && remaining >= LARGE_PAGE_SIZE;
            let step = if large && self.try_map_large(virt, phys, leaf)? {
                LARGE_PAGE_SIZE
            } else {
                self.map_small(virt, phys, leaf)?;
                PAGE_SIZE
            };
            offset += step;
        }
        Ok(())
    }

    /// Child table of `table` at `slot`, created on demand.
    fn child(&mut self, table: usize, slot: usize, virt: u64) -> Result<usize, MapError> {
        let entry = self.tables[table][slot];
        if entry == 0 {
            let child = self.tables.len();
            let level = self.levels[table] - 1;
            self.tables.push(Box::new([0; ENTRIES]));
            self.levels.push(level);
            self.tables[table][slot] = ((child as u64) << 12) | table_bits(self.format);
            Ok(child)
        } else if self.levels[table] == 1 && entry & LARGE_BIT != 0 {
            Err(MapError::Overlap { input: virt })
        } else {
            Ok(((entry & ADDRESS_MASK) >> 12) as usize)
        }
    }

    fn try_map_large(&mut self, virt: u64, phys: u64, leaf: u64) -> Result<bool, MapError> {
        let pdpt = self.child(0, index(virt, 3), virt)?;
        let pd = self.child(pdpt, index(virt, 2), virt)?;
        let slot = index(virt, 1);
        if self.tables[pd][slot] != 0 {
            // Partly mapped already by 4 KiB pages: fall back to those (a true
            // overlap is then caught at level 0).
            return Ok(false);
        }
        self.tables[pd][slot] = phys | leaf | LARGE_BIT;
        Ok(true)
    }

    fn map_small(&mut self, virt: u64, phys: u64, leaf: u64) -> Result<(), MapError> {
        let pdpt = self.child(0, index(virt, 3), virt)?;
        let pd = self.child(pdpt, index(virt, 2), virt)?;
        let pt = self.child(pd, index(virt, 1), virt)?;
        let slot = index(virt, 0);
        if self.tables[pt][slot] != 0 {
            return Err(MapError::Overlap { input: virt });
        }
        self.tables[pt][slot] = phys | leaf;
        Ok(())
    }

    /// Serialise, placing table `n` at `base + n * 4 KiB` (the root first).
    pub fn to_bytes(&self, base: O) -> Vec<u8> {
        let base = base.raw();
        let mut out = Vec::with_capacity(self.tables.len() * PAGE_SIZE as usize);
        for (table, level) in self.tables.iter().zip(&self.levels) {
            for &entry in table.iter() {
                let is_pointer = entry != 0 && *level > 0 && (*level > 1 || entry & LARGE_BIT == 0);
                let value = if is_pointer {
                    let child = (entry & ADDRESS_MASK) >> 12;
                    (entry & !ADDRESS_MASK) | (base + child * PAGE_SIZE)
                } else {
                    entry
                };
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }
}

/// A translation found by [`translate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Output address of the input address.
    pub output: u64,
    /// Size of the leaf page.
    pub page_size: u64,
    /// The raw leaf entry.
    pub leaf: u64,
}

/// Memory that holds serialised tables, as a walker reads it.
///
/// The walkers below read one entry at a time through this trait, so the
/// same code walks tables held in one buffer ([`Contiguous`]) and tables
/// scattered over composed regions and reached through another translation
/// (a subject's IA-32e tables read through its EPT, see [`crate::layers`]).
pub trait TableMemory {
    /// Entry `slot` (0..512) of the table page at address `table`, or `None`
    /// if that memory cannot be read (the walk then treats the entry as not
    /// present).
    fn entry(&self, table: u64, slot: usize) -> Option<u64>;
}

/// Serialised tables in one buffer starting at address `base` (what
/// [`PageTables::to_bytes`] produced).
#[derive(Clone, Copy, Debug)]
pub struct Contiguous<'a> {
    /// The table bytes.
    pub bytes: &'a [u8],
    /// Address of `bytes[0]` in the tables' own address space.
    pub base: u64,
}

impl TableMemory for Contiguous<'_> {
    fn entry(&self, table: u64, slot: usize) -> Option<u64> {
        let at = usize::try_from(table.checked_sub(self.base)?)
            .ok()?
            .checked_add(slot.checked_mul(8)?)?;
        let raw = self.bytes.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(raw.try_into().ok()?))
    }
}

fn present(format: Format, entry: u64) -> bool {
    match format {
        Format::Ia32e => entry & ia32e::PRESENT != 0,
        Format::Ept => entry & 7 != 0,
    }
}

/// Walk serialised tables (as the CPU would) for `input`. `base` is where
/// `bytes` starts in the tables' own address space. `None` if not mapped or
/// if a pointer leaves `bytes`.
pub fn translate(format: Format, bytes: &[u8], base: u64, input: u64) -> Option<Translation> {
    translate_in(format, &Contiguous { bytes, base }, base, input)
}

/// Walk the tables rooted at `root` in `memory` for `input`. `None` if not
/// mapped or if a table cannot be read.
pub fn translate_in(
    format: Format,
    memory: &dyn TableMemory,
    root: u64,
    input: u64,
) -> Option<Translation> {
    let mut table = root;
    for level in (0..=3u8).rev() {
        let entry = memory.entry(table, index(input, level))?;
        if !present(format, entry) {
            return None;
        }
        if level == 0 || (level == 1 && entry & LARGE_BIT != 0) {
            let page_size = if level == 0 {
                PAGE_SIZE
            } else {
                LARGE_PAGE_SIZE
            };
            let frame = entry & ADDRESS_MASK & !(page_size - 1);
            return Some(Translation {
                output: frame | (input & (page_size - 1)),
                page_size,
                leaf: entry,
            });
        }
        table = entry & ADDRESS_MASK;
    }
    None
}

/// Every leaf of serialised tables, as `(input, output, page size, raw
/// entry)` in input order: what the tables map, read back from the bytes
/// alone. Pointers outside `bytes` are skipped.
pub fn leaves(format: Format, bytes: &[u8], base: u64) -> Vec<(u64, u64, u64, u64)> {
    leaves_in(format, &Contiguous { bytes, base }, base)
}

/// Every leaf of the tables rooted at `root` in `memory`, as [`leaves`]
/// gives them. Entries that cannot be read are skipped.
pub fn leaves_in(format: Format, memory: &dyn TableMemory, root: u64) -> Vec<(u64, u64, u64, u64)> {
    let mut out = Vec::new();
    walk_table(format, memory, root, 3, 0, &mut out);
    out
}

/// Leaves (as [`leaves`] gives them) expanded to 4 KiB pages: input page ->
/// (output page, raw leaf), so large and small pages compare alike.
pub fn small_pages(leaves: &[(u64, u64, u64, u64)]) -> BTreeMap<u64, (u64, u64)> {
    let mut out = BTreeMap::new();
    for &(input, output, size, leaf) in leaves {
        for offset in (0..size).step_by(PAGE_SIZE as usize) {
            out.insert(input + offset, (output + offset, leaf));
        }
    }
    out
}

fn walk_table(
    format: Format,
    memory: &dyn TableMemory,
    table: u64,
    level: u8,
    prefix: u64,
    out: &mut Vec<(u64, u64, u64, u64)>,
) {
    for slot in 0..ENTRIES {
        let Some(entry) = memory.entry(table, slot) else {
            continue;
        };
        if !present(format, entry) {
            continue;
        }
        let input = prefix | ((slot as u64) << (12 + 9 * u32::from(level)));
        if level == 0 || (level == 1 && entry & LARGE_BIT != 0) {
            let size = if level == 0 {
                PAGE_SIZE
            } else {
                LARGE_PAGE_SIZE
            };
            out.push((input, entry & ADDRESS_MASK & !(size - 1), size, entry));
        } else {
            walk_table(format, memory, entry & ADDRESS_MASK, level - 1, input, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RW: Rights = Rights {
        writable: true,
        executable: false,
        memory_type: 6,
        uncached: false,
    };
    const RX: Rights = Rights {
        writable: false,
        executable: true,
        memory_type: 6,
        uncached: false,
    };

    #[test]
    fn walk_back_finds_targets_and_rights() {
        let mut t = GuestTables::new(Format::Ia32e, false);
        t.map(VirtAddr(0x20_0000), GuestPhysAddr(0x20_0000), 0x2000, RX)
            .unwrap();
        t.map(
            VirtAddr(0x4000_0000),
            GuestPhysAddr(0x4000_0000),
            0x1000,
            RW,
        )
        .unwrap();
        let base = 0x1000;
        let bytes = t.to_bytes(GuestPhysAddr(base));
        assert_eq!(bytes.len(), t.page_count() * 4096);
        let tr = translate(Format::Ia32e, &bytes, base, 0x20_1234).unwrap();
        assert_eq!(tr.output, 0x20_1234);
        let rights = Rights::from_leaf(Format::Ia32e, tr.leaf);
        assert!(rights.executable && !rights.writable);
        assert_eq!(tr.leaf & 0x64, 0x60, "A and D set, U/S clear");
        let tr = translate(Format::Ia32e, &bytes, base, 0x4000_0008).unwrap();
        assert!(Rights::from_leaf(Format::Ia32e, tr.leaf).writable);
        assert_eq!(tr.leaf & ia32e::EXECUTE_DISABLE, ia32e::EXECUTE_DISABLE);
        assert!(translate(Format::Ia32e, &bytes, base, 0x20_2000).is_none());
        assert!(translate(Format::Ia32e, &bytes, base, 0x4000_1000).is_none());
        assert!(translate(Format::Ia32e, &bytes, base, 0).is_none());
    }

    #[test]
    fn uncached_sets_pcd_and_pwt_in_ia32e_leaves_only() {
        let uncached = Rights {
            uncached: true,
            ..RW
        };
        let mut t = KernelTables::new(Format::Ia32e, true);
        t.map(VirtAddr(0x20_0000), PhysAddr(0x20_0000), 0x2000, uncached)
            .unwrap();
        t.map(VirtAddr(0x40_0000), PhysAddr(0x40_0000), 0x1000, RW)
            .unwrap();
        let bytes = t.to_bytes(PhysAddr(0x1000));
        let tr = translate(Format::Ia32e, &bytes, 0x1000, 0x20_1000).unwrap();
        assert_eq!(tr.leaf & 0x18, 0x18, "PCD and PWT: PAT entry 3");
        assert_eq!(
            Rights::from_leaf(Format::Ia32e, tr.leaf),
            Rights {
                memory_type: 0,
                ..uncached
            }
        );
        let tr = translate(Format::Ia32e, &bytes, 0x1000, 0x40_0000).unwrap();
        assert_eq!(tr.leaf & 0x18, 0, "PAT entry 0");
        let mut e = EptTables::new(Format::Ept, true);
        e.map(GuestPhysAddr(0), PhysAddr(0x20_0000), 0x1000, uncached)
            .unwrap();
        let bytes = e.to_bytes(PhysAddr(0x1000));
        let tr = translate(Format::Ept, &bytes, 0x1000, 0).unwrap();
        assert_eq!(tr.leaf & 0x3f, 0b110_011, "EPT ignores the flag");
    }

    #[test]
    fn ept_uses_large_pages_and_memory_types() {
        let mut t = EptTables::new(Format::Ept, true);
        let uc = Rights {
            writable: true,
            executable: false,
            memory_type: 0,
            uncached: true,
        };
        t.map(GuestPhysAddr(0x40_0000), PhysAddr(0x80_0000), 0x40_1000, uc)
            .unwrap();
        let bytes = t.to_bytes(PhysAddr(0x10_0000));
        let tr = translate(Format::Ept, &bytes, 0x10_0000, 0x40_0010).unwrap();
        assert_eq!((tr.output, tr.page_size), (0x80_0010, LARGE_PAGE_SIZE));
        assert_eq!(tr.leaf & 0x3f, 0b000_011);
        let tr = translate(Format::Ept, &bytes, 0x10_0000, 0x80_0000).unwrap();
        assert_eq!((tr.output, tr.page_size), (0xc0_0000, PAGE_SIZE));
        assert!(translate(Format::Ept, &bytes, 0x10_0000, 0x80_1000).is_none());
    }

    #[test]
    fn refuses_double_mapping_and_bad_ranges() {
        let mut t = EptTables::new(Format::Ept, true);
        t.map(GuestPhysAddr(0), PhysAddr(0x20_0000), 0x20_0000, RW)
            .unwrap();
        assert_eq!(
            t.map(GuestPhysAddr(0x1000), PhysAddr(0), 0x1000, RW),
            Err(MapError::Overlap { input: 0x1000 })
        );
        assert!(matches!(
            t.map(GuestPhysAddr(0x1001), PhysAddr(0), 0x1000, RW),
            Err(MapError::Unaligned { .. })
        ));
        assert!(matches!(
            t.map(GuestPhysAddr(INPUT_LIMIT - 0x1000), PhysAddr(0), 0x2000, RW),
            Err(MapError::OutOfRange { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever set of disjoint ranges is mapped, every page of each maps
        /// to its target with its rights, and pages in between do not.
        #[test]
        fn exactly_the_mapped_pages_translate(
            ranges in proptest::collection::vec((0u64..64, 1u64..600, any::<bool>(), any::<bool>()), 1..6),
        ) {
            let mut t = EptTables::new(Format::Ept, true);
            let mut expected = std::collections::BTreeMap::new();
            let mut next = 0u64;
            for (gap, pages, w, x) in ranges {
                let start = (next + gap) * 4096;
                let rights = Rights { writable: w, executable: x, memory_type: 6, uncached: false };
                let phys = 0x1_0000_0000 + start * 3;
                t.map(GuestPhysAddr(start), PhysAddr(phys), pages * 4096, rights).unwrap();
                for p in 0..pages {
                    expected.insert(start / 4096 + p, (phys + p * 4096, rights));
                }
                next = next + gap + pages;
            }
            let bytes = t.to_bytes(PhysAddr(0x5000_0000));
            for page in 0..next + 600 {
                let got = translate(Format::Ept, &bytes, 0x5000_0000, page * 4096);
                match expected.get(&page) {
                    Some(&(phys, rights)) => {
                        let tr = got.unwrap();
                        prop_assert_eq!(tr.output, phys);
                        prop_assert_eq!(Rights::from_leaf(Format::Ept, tr.leaf), rights);
                    }
                    None => prop_assert!(got.is_none()),
                }
            }
        }
    }
}
