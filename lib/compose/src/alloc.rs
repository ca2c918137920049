//! Physical memory allocation.
//!
//! The allocator hands out room from the hardware's allocatable memory
//! blocks, above [`septum_abi::layout::FIRST_ALLOCATABLE`] and outside the
//! kernel windows, first fit in ascending address order. Regions the policy
//! pins to a `physicalAddress` are reserved before anything else is placed.
//! It is deterministic: the same sequence of requests gives the same
//! addresses, which is what makes composed images reproducible.
//!
//! The free list is a sorted vector of disjoint ranges; alignment gaps stay
//! in it, so small regions requested later fill the holes big aligned ones
//! leave behind.

use septum_abi::PhysAddr;
use septum_abi::layout::{FIRST_ALLOCATABLE, KERNEL_DATA, KERNEL_RODATA, KERNEL_TEXT, Window};

use crate::input::MemoryBlockInput;

/// Why a request could not be met.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllocError {
    /// No free range is large enough.
    #[error(
        "out of physical memory: no free {size:#x}-byte range aligned to {align:#x} is left \
         ({free:#x} bytes free in total)"
    )]
    Exhausted {
        /// Requested size.
        size: u64,
        /// Requested alignment.
        align: u64,
        /// Free bytes left.
        free: u64,
    },
    /// A fixed placement is not inside free allocatable memory.
    #[error(
        "{start:#x}-{end:#x} is not free allocatable memory (it lies outside the allocatable \
         memory blocks, below {first:#x}, in a kernel window, or overlaps another fixed region)"
    )]
    NotFree {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// First allocatable address.
        first: u64,
    },
}

/// The allocator.
#[derive(Clone, Debug)]
pub struct PhysAllocator {
    /// Disjoint free ranges `[start, end)`, sorted.
    free: Vec<(u64, u64)>,
}

/// The kernel windows, never allocatable.
pub const KERNEL_WINDOWS: [(&str, Window); 3] = [
    ("kernel|text", KERNEL_TEXT),
    ("kernel|rodata", KERNEL_RODATA),
    ("kernel|data", KERNEL_DATA),
];

impl PhysAllocator {
    /// Free memory = allocatable blocks, minus everything below
    /// `FIRST_ALLOCATABLE` and the kernel windows.
    pub fn new(blocks: &[MemoryBlockInput]) -> Self {
        let mut free: Vec<(u64, u64)> = blocks
            .iter()
            .filter(|b| b.allocatable)
            .filter_map(|b| {
                let start = b.start.get().max(FIRST_ALLOCATABLE.get());
                let end = b.start.get().saturating_add(b.size);
                (start < end).then_some((start, end))
            })
            .collect();
        free.sort_unstable();
        // Blocks may touch or overlap in hand-written descriptions: merge
        // them so no byte is free twice.
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(free.len());
        for (start, end) in free {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut allocator = Self { free: merged };
        for (_, window) in KERNEL_WINDOWS {
            allocator.remove(window.start.get(), window.end());
        }
        allocator
    }

    /// Bytes still free.
    pub fn free_bytes(&self) -> u64 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    /// Take `[start, end)` out of every free range it touches.
    fn remove(&mut self, start: u64, end: u64) {
        let mut next = Vec::with_capacity(self.free.len() + 1);
        for &(s, e) in &self.free {
            if e <= start || end <= s {
                next.push((s, e));
                continue;
            }
            if s < start {
                next.push((s, start));
            }
            if end < e {
                next.push((end, e));
            }
        }
        self.free = next;
    }

    /// Take `start..end` out of free range `i`, which holds it, keeping the
    /// pieces before and after it.
    fn take(&mut self, i: usize, start: u64, end: u64) {
        let (s, e) = self.free[i];
        let mut pieces = Vec::with_capacity(2);
        if s < start {
            pieces.push((s, start));
        }
        if end < e {
            pieces.push((end, e));
        }
        self.free.splice(i..=i, pieces);
    }

    /// Reserve a fixed range; it must lie entirely inside one free range.
    pub fn reserve(&mut self, start: PhysAddr, size: u64) -> Result<(), AllocError> {
        let start = start.get();
        let end = start.checked_add(size).ok_or(AllocError::NotFree {
            start,
            end: u64::MAX,
            first: FIRST_ALLOCATABLE.get(),
        })?;
        if size == 0 || !self.free.iter().any(|&(s, e)| s <= start && end <= e) {
            return Err(AllocError::NotFree {
                start,
                end,
                first: FIRST_ALLOCATABLE.get(),
            });
        }
        self.remove(start, end);
        Ok(())
    }

    /// Middle fit of `size` bytes aligned to `align` (a power of two): in
    /// the highest free range that can hold it, the aligned start at or
    /// just below the range's middle. For a region whose address should
    /// depend only on the hardware description, not on what else is
    /// placed, and that the boot loader must not touch (the crash-audit
    /// region: GRUB works at the top of RAM, the image grows from the
    /// bottom; docs/crash.md).
    pub fn allocate_middle(&mut self, size: u64, align: u64) -> Result<PhysAddr, AllocError> {
        let exhausted = || AllocError::Exhausted {
            size,
            align,
            free: self.free_bytes(),
        };
        let found = self.free.iter().enumerate().rev().find_map(|(i, &(s, e))| {
            let start = (s + (e - s) / 2) & !(align - 1);
            (start >= s && start.checked_add(size)? <= e).then_some((i, start))
        });
        let Some((i, start)) = found else {
            return Err(exhausted());
        };
        self.take(i, start, start + size);
        Ok(PhysAddr(start))
    }

    /// First fit of `size` bytes aligned to `align` (a power of two).
    pub fn allocate(&mut self, size: u64, align: u64) -> Result<PhysAddr, AllocError> {
        let exhausted = || AllocError::Exhausted {
            size,
            align,
            free: self.free_bytes(),
        };
        let found = self.free.iter().enumerate().find_map(|(i, &(s, e))| {
            let start = s.checked_add(align - 1)? & !(align - 1);
            let end = start.checked_add(size)?;
            (end <= e).then_some((i, start, end))
        });
        let Some((i, start, end)) = found else {
            return Err(exhausted());
        };
        self.take(i, start, end);
        Ok(PhysAddr(start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ram(size: u64) -> Vec<MemoryBlockInput> {
        vec![
            MemoryBlockInput {
                name: "low".into(),
                start: PhysAddr(0),
                size: 0x9f000,
                allocatable: false,
            },
            MemoryBlockInput {
                name: "ram".into(),
                start: PhysAddr(0x10_0000),
                size,
                allocatable: true,
            },
        ]
    }

    #[test]
    fn starts_at_first_allocatable_and_aligns() {
        let mut a = PhysAllocator::new(&ram(0x1000_0000));
        assert_eq!(a.allocate(0x1000, 0x1000).unwrap(), FIRST_ALLOCATABLE);
        let big = a.allocate(0x20_0000, 0x20_0000).unwrap();
        assert_eq!(big, PhysAddr(0x40_0000));
        // The alignment hole is reused by later small requests.
        assert_eq!(a.allocate(0x1000, 0x1000).unwrap(), PhysAddr(0x30_1000));
    }

    #[test]
    fn fixed_regions_are_reserved_and_checked() {
        let mut a = PhysAllocator::new(&ram(0x1000_0000));
        a.reserve(PhysAddr(0x30_0000), 0x1000).unwrap();
        assert_eq!(a.allocate(0x1000, 0x1000).unwrap(), PhysAddr(0x30_1000));
        assert!(a.reserve(PhysAddr(0x30_0000), 0x1000).is_err(), "twice");
        assert!(
            a.reserve(PhysAddr(0x10_0000), 0x1000).is_err(),
            "kernel window"
        );
        assert!(
            a.reserve(PhysAddr(0x2000_0000), 0x1000).is_err(),
            "outside RAM"
        );
    }

    #[test]
    fn overlapping_blocks_are_merged() {
        let block = |start: u64, size: u64| MemoryBlockInput {
            name: "ram".into(),
            start: PhysAddr(start),
            size,
            allocatable: true,
        };
        let a = PhysAllocator::new(&[block(0x40_0000, 0x20_0000), block(0x30_0000, 0x20_0000)]);
        assert_eq!(a.free, [(0x30_0000, 0x60_0000)]);
        assert_eq!(a.free_bytes(), 0x30_0000);
    }

    #[test]
    fn middle_fit_takes_the_middle_of_the_highest_range() {
        let mut a = PhysAllocator::new(&ram(0x1000_0000));
        let (s, e) = *a.free.last().unwrap();
        let middle = a.allocate_middle(0x2000, 0x20_0000).unwrap();
        assert_eq!(middle.get(), (s + (e - s) / 2) & !0x1f_ffff);
        assert!(middle.get() >= s && middle.get() + 0x2000 <= e);
        // Bottom-up allocation is unaffected and goes around it.
        assert_eq!(a.allocate(0x1000, 0x1000).unwrap(), FIRST_ALLOCATABLE);
        assert!(
            a.free
                .iter()
                .all(|&(fs, fe)| fe <= middle.get() || fs >= middle.get() + 0x2000)
        );
        assert!(a.allocate_middle(0x2000_0000, 0x1000).is_err());
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut a = PhysAllocator::new(&ram(0x30_0000));
        let err = a.allocate(0x10_1000, 0x1000).unwrap_err();
        assert!(matches!(err, AllocError::Exhausted { .. }), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn allocations_never_overlap_and_are_deterministic(
            requests in proptest::collection::vec((1u64..64, any::<bool>()), 1..80),
        ) {
            let run = || {
                let mut a = PhysAllocator::new(&ram(0x1000_0000));
                requests
                    .iter()
                    .map(|&(pages, big)| {
                        let align = if big { 0x20_0000 } else { 0x1000 };
                        let start = a.allocate(pages * 0x1000, align).unwrap();
                        (start.get(), pages * 0x1000, align)
                    })
                    .collect::<Vec<_>>()
            };
            let first = run();
            prop_assert_eq!(&first, &run());
            let mut sorted = first.clone();
            sorted.sort_unstable();
            for pair in sorted.windows(2) {
                prop_assert!(pair[0].0 + pair[0].1 <= pair[1].0);
            }
            for (start, _, align) in first {
                prop_assert_eq!(start % align, 0);
                prop_assert!(start >= FIRST_ALLOCATABLE.get());
            }
        }
    }
}
