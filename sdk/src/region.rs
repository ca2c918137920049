//! Shared memory as the SDK touches it: bounds-checked, atomic counters,
//! volatile payload.
//!
//! Memory that another subject (or a hostile writer) may change at any time
//! must never become a Rust reference to plain data: the compiler would be
//! free to assume it does not change. A [`Region`] is therefore a raw base
//! and length; every access goes through it and is bounds-checked: 8-byte
//! aligned `u64` fields through `AtomicU64` (acquire/release where the
//! protocol needs ordering), payload bytes through volatile reads and
//! writes. Writes to a region the info page marks read-only are refused
//! before they reach the hardware.
//!
//! This module is one of the SDK's hardware shims: [`Region::from_raw`] is
//! the `unsafe` step that asserts the memory exists; everything else is
//! safe. On the host, tests build regions over `AtomicU64` buffers with
//! [`Region::from_atomics`], which needs no `unsafe` at the call site.
#![allow(unsafe_code)]

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use septum_abi::VirtAddr;

/// Why an access was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The access does not lie entirely inside the region.
    OutOfBounds,
    /// A `u64` field at an offset that is not a multiple of 8.
    Misaligned,
    /// A write to a read-only region.
    ReadOnly,
}

/// A window of memory shared with other subjects or the kernel.
#[derive(Debug, Clone)]
pub struct Region<'a> {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
    _memory: PhantomData<&'a [AtomicU64]>,
}

impl<'a> Region<'a> {
    /// A region over memory mapped at `base`.
    ///
    /// Returns `None` if `base` is null or not 8-byte aligned, or if the
    /// range wraps around.
    ///
    /// # Safety
    ///
    /// `base..base+len` must be mapped (readable, and writable if
    /// `writable`) for all of `'a`, and must not overlap any Rust object of
    /// the program (stack, image, other references): other parties may
    /// change it at any time, which only atomics and volatile accesses
    /// tolerate.
    pub unsafe fn from_raw(base: VirtAddr, len: u64, writable: bool) -> Option<Self> {
        let len = usize::try_from(len).ok()?;
        let address = usize::try_from(base.get()).ok()?;
        address.checked_add(len)?;
        if !address.is_multiple_of(8) {
            return None;
        }
        let base = NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(address))?;
        Some(Self {
            base,
            len,
            writable,
            _memory: PhantomData,
        })
    }

    /// A writable region over a host buffer (tests, simulations).
    pub fn from_atomics(words: &'a [AtomicU64]) -> Self {
        let base = NonNull::from(words).cast::<u8>();
        let len = core::mem::size_of_val(words);
        Self {
            base,
            len,
            writable: true,
            _memory: PhantomData,
        }
    }

    /// The same memory, refusing writes.
    pub fn read_only(mut self) -> Self {
        self.writable = false;
        self
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Pointer to `offset..offset+size` if it lies inside the region.
    fn span(&self, offset: usize, size: usize) -> Result<*mut u8, RegionError> {
        let end = offset.checked_add(size).ok_or(RegionError::OutOfBounds)?;
        if end > self.len {
            return Err(RegionError::OutOfBounds);
        }
        // Safety: `offset <= len` was just checked, so the result stays
        // inside (or one past) the region the constructor vouched for.
        Ok(unsafe { self.base.as_ptr().add(offset) })
    }

    fn atomic(&self, offset: usize) -> Result<&'a AtomicU64, RegionError> {
        if !offset.is_multiple_of(8) {
            return Err(RegionError::Misaligned);
        }
        let ptr = self.span(offset, 8)?;
        // Safety: the 8 bytes are inside the region (checked by `span`), the
        // base is 8-byte aligned (checked by the constructors) and so is
        // `offset`; the memory lives for `'a` and is only ever accessed
        // atomically or volatilely, as `AtomicU64` requires.
        Ok(unsafe { &*ptr.cast::<AtomicU64>() })
    }

    /// Atomically loads the `u64` at `offset`.
    pub fn load(&self, offset: usize, order: Ordering) -> Result<u64, RegionError> {
        Ok(self.atomic(offset)?.load(order))
    }

    /// Atomically stores `value` at `offset`.
    pub fn store(&self, offset: usize, value: u64, order: Ordering) -> Result<(), RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        self.atomic(offset)?.store(value, order);
        Ok(())
    }

    /// Copies `dst.len()` bytes starting at `offset` into `dst`, one
    /// volatile read per byte.
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> Result<(), RegionError> {
        let src = self.span(offset, dst.len())?;
        for (i, byte) in dst.iter_mut().enumerate() {
            // Safety: `i < dst.len()` and `span` checked the whole range.
            *byte = unsafe { src.add(i).read_volatile() };
        }
        Ok(())
    }

    /// Copies `src` into the region at `offset`, one volatile write per
    /// byte.
    pub fn write_bytes(&self, offset: usize, src: &[u8]) -> Result<(), RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        let dst = self.span(offset, src.len())?;
        for (i, byte) in src.iter().enumerate() {
            // Safety: in bounds as above; the region is writable.
            unsafe { dst.add(i).write_volatile(*byte) };
        }
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `value`.
    pub fn fill(&self, offset: usize, len: usize, value: u8) -> Result<(), RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        let dst = self.span(offset, len)?;
        for i in 0..len {
            // Safety: in bounds as above; the region is writable.
            unsafe { dst.add(i).write_volatile(value) };
        }
        Ok(())
    }

    /// Reads the 32-bit value at `offset` (a multiple of 4) with one
    /// volatile 4-byte load: device registers (MMIO) that must be read
    /// whole, once (a read-to-clear register reads differently the second
    /// time).
    pub fn read_u32(&self, offset: usize) -> Result<u32, RegionError> {
        if !offset.is_multiple_of(4) {
            return Err(RegionError::Misaligned);
        }
        let src = self.span(offset, 4)?;
        // Safety: the 4 bytes are inside the region (checked by `span`),
        // 4-byte aligned (base 8-aligned by the constructors, `offset`
        // checked above), and only ever accessed volatilely or atomically.
        Ok(unsafe { src.cast::<u32>().read_volatile() })
    }

    /// Writes `value` at `offset` (a multiple of 4) with one volatile
    /// 4-byte store (device registers, see [`Region::read_u32`]).
    pub fn write_u32(&self, offset: usize, value: u32) -> Result<(), RegionError> {
        if !self.writable {
            return Err(RegionError::ReadOnly);
        }
        if !offset.is_multiple_of(4) {
            return Err(RegionError::Misaligned);
        }
        let dst = self.span(offset, 4)?;
        // Safety: in bounds and aligned as in `read_u32`; the region is
        // writable.
        unsafe { dst.cast::<u32>().write_volatile(value) };
        Ok(())
    }

    /// Reads one byte.
    pub fn read_u8(&self, offset: usize) -> Result<u8, RegionError> {
        let mut byte = [0u8; 1];
        self.read_bytes(offset, &mut byte)?;
        Ok(byte[0])
    }

    /// Writes one byte.
    pub fn write_u8(&self, offset: usize, value: u8) -> Result<(), RegionError> {
        self.write_bytes(offset, &[value])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_alignment_and_rights() {
        let words: [AtomicU64; 4] = Default::default();
        let r = Region::from_atomics(&words);
        assert_eq!(r.len(), 32);
        r.store(8, 0x1122_3344_5566_7788, Ordering::Release)
            .unwrap();
        assert_eq!(r.load(8, Ordering::Acquire), Ok(0x1122_3344_5566_7788));
        assert_eq!(r.read_u8(8), Ok(0x88), "little-endian byte view");
        assert_eq!(r.load(4, Ordering::Relaxed), Err(RegionError::Misaligned));
        assert_eq!(r.load(32, Ordering::Relaxed), Err(RegionError::OutOfBounds));
        assert_eq!(r.write_bytes(30, &[1, 2, 3]), Err(RegionError::OutOfBounds));
        assert_eq!(r.fill(usize::MAX, 2, 0), Err(RegionError::OutOfBounds));
        r.write_bytes(29, &[1, 2, 3]).unwrap();
        let mut back = [0u8; 3];
        r.read_bytes(29, &mut back).unwrap();
        assert_eq!(back, [1, 2, 3]);
        let ro = r.clone().read_only();
        assert_eq!(ro.write_u8(0, 1), Err(RegionError::ReadOnly));
        assert_eq!(
            ro.store(0, 1, Ordering::Relaxed),
            Err(RegionError::ReadOnly)
        );
        assert_eq!(ro.fill(0, 1, 1), Err(RegionError::ReadOnly));
        assert_eq!(ro.read_u8(29), Ok(1));
    }

    #[test]
    fn dword_accesses() {
        let words: [AtomicU64; 2] = Default::default();
        let r = Region::from_atomics(&words);
        r.write_u32(4, 0xdead_beef).unwrap();
        assert_eq!(r.read_u32(4), Ok(0xdead_beef));
        assert_eq!(r.load(0, Ordering::Relaxed), Ok(0xdead_beef_0000_0000));
        assert_eq!(r.read_u32(2), Err(RegionError::Misaligned));
        assert_eq!(r.write_u32(6, 1), Err(RegionError::Misaligned));
        assert_eq!(r.read_u32(16), Err(RegionError::OutOfBounds));
        assert_eq!(r.read_u32(usize::MAX - 3), Err(RegionError::OutOfBounds));
        assert_eq!(r.write_u32(12, 7), Ok(()));
        assert_eq!(
            r.clone().read_only().write_u32(0, 1),
            Err(RegionError::ReadOnly)
        );
    }

    #[test]
    fn raw_constructor_checks() {
        // Safety: these regions are never accessed; only the constructor's
        // checks run.
        unsafe {
            assert!(Region::from_raw(VirtAddr(0), 8, false).is_none());
            assert!(Region::from_raw(VirtAddr(0x1004), 8, false).is_none());
            assert!(Region::from_raw(VirtAddr(u64::MAX - 7), 16, false).is_none());
            assert!(Region::from_raw(VirtAddr(0x1000), 8, false).is_some());
        }
    }
}
