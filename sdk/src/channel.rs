//! SHMStream v2 channels: one writer, any number of readers, no locks and
//! no back channel.
//!
//! The header layout is `septum_abi::channel`; the protocol:
//!
//! - **Writer init**: epoch = 0 (readers see the channel inactive), write
//!   the fields, wsc = wc = 0, clear the ring, then publish a new non-zero
//!   epoch with release ordering.
//! - **Write**: `pos = wc % elements; wsc = wc + 1; data[pos] = e;
//!   wc = wc + 1`. The write start counter tells a reader that an element
//!   may be half-written; the write counter publishes it (release).
//! - **Read**: a reader keeps its own `{epoch, rc}`. Epoch 0 means
//!   inactive. On a new epoch it checks transport, protocol, element size
//!   and that the ring fits the region, then starts at rc = 0. A read copies
//!   `data[rc % elements]` and then looks at wsc: if the writer has started
//!   more than `elements` writes past rc, the copy may be torn and the
//!   reader has been lapped (overrun: it resynchronises at wc). Finally it
//!   re-checks the epoch, so a copy that raced a re-initialisation is
//!   discarded.
//!
//! The writer's epoch is the SDK's choice ([`fresh_epoch`]): the TSC at
//! initialisation mixed with the subject id, so a writer that restarts
//! (a new initialisation later in time) announces a new epoch and its
//! readers see [`ReadOutcome::EpochChanged`], as SHMStream v2 intends.
//!
//! Beside raw byte elements, both ends carry typed values
//! ([`Writer::write_value`], [`Reader::read_value`]) of any type the
//! `zerocopy` crate can view as bytes (`#[derive(IntoBytes, FromBytes,
//! Immutable)]` on a `#[repr(C)]` struct without padding): the value's
//! bytes are the element, zero-padded to the element size. A type larger
//! than the element is refused with an error value before anything is
//! written or read; [`Format::of`] makes the element exactly the type.
//!
//! Readers treat the writer as hostile: every header value is read once per
//! use through atomics, the geometry a reader indexes with is its own copy
//! taken (and checked against the region) when it accepted the epoch, and
//! all arithmetic is checked, so garbage in the header yields
//! [`ReadOutcome::Incompatible`] or odd data, never a panic or an
//! out-of-bounds access.

use core::num::NonZeroU64;
use core::sync::atomic::{Ordering, fence};

use septum_abi::SubjectId;
use septum_abi::channel::{HEADER_SIZE, TRANSPORT_MARKER, offset};
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::region::{Region, RegionError};

/// What a reader expects of the channel (from its policy: `protocol` and
/// `elementSize` of the `<channel>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// Protocol id (non-zero).
    pub protocol: u64,
    /// Element size in bytes (non-zero).
    pub element_size: u64,
}

impl Format {
    /// The policy defaults: protocol 1, 64-byte elements.
    pub const DEFAULT: Self = Self {
        protocol: 1,
        element_size: 64,
    };

    /// Elements of exactly `size_of::<T>()` bytes, for a channel that
    /// carries `T` values; the policy's `elementSize` must say the same.
    /// (A zero-sized `T` gives an invalid format, refused at init.)
    pub const fn of<T>(protocol: u64) -> Self {
        Self {
            protocol,
            element_size: core::mem::size_of::<T>() as u64,
        }
    }

    /// Whether a `T` fits in one element.
    pub const fn fits<T>(&self) -> bool {
        (core::mem::size_of::<T>() as u64) <= self.element_size
    }
}

/// The epoch a writer initialised at TSC value `tsc` by subject `subject`
/// announces: never zero (zero means inactive).
///
/// The subject id goes into the top 16 bits, the TSC into the low 48
/// (about a day of cycles at 3 GHz before they wrap), and a bijective
/// mixer (the SplitMix64 finaliser) spreads them over the whole word. So
/// two initialisations by one subject at different TSC values within that
/// span get different epochs, as do two subjects at the same TSC value;
/// only the single input that mixes to zero is replaced (by 1).
pub const fn fresh_epoch(tsc: u64, subject: SubjectId) -> NonZeroU64 {
    let mut x = (tsc & 0xffff_ffff_ffff) | ((subject.0 as u64) << 48);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    match NonZeroU64::new(x) {
        Some(epoch) => epoch,
        None => NonZeroU64::MIN,
    }
}

/// Why a writer could not be set up or could not write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    /// Protocol or element size is zero.
    InvalidFormat,
    /// Not even one element fits after the header.
    RegionTooSmall,
    /// The region is read-only (this subject is not the writer).
    ReadOnly,
    /// An element longer than the channel's element size.
    ElementTooLong,
    /// The region refused an access (cannot happen for a region that passed
    /// the checks above; kept so nothing needs to panic).
    Region(RegionError),
}

impl From<RegionError> for ChannelError {
    fn from(e: RegionError) -> Self {
        match e {
            RegionError::ReadOnly => Self::ReadOnly,
            other => Self::Region(other),
        }
    }
}

/// Byte offset of element `index` (already reduced modulo the ring size).
fn element_offset(index: u64, element_size: u64) -> Option<usize> {
    let bytes = index
        .checked_mul(element_size)?
        .checked_add(HEADER_SIZE as u64)?;
    usize::try_from(bytes).ok()
}

/// How many elements of `element_size` fit in a region of `len` bytes.
fn capacity(len: usize, element_size: u64) -> Option<u64> {
    septum_abi::channel::elements_for(len as u64, element_size).filter(|&n| n > 0)
}

/// The writing end of a channel.
#[derive(Debug)]
pub struct Writer<'a> {
    region: Region<'a>,
    element_size: u64,
    elements: u64,
    wc: u64,
}

impl<'a> Writer<'a> {
    /// Initialises the channel in `region` with `format` and publishes
    /// `epoch`. The ring holds as many elements as fit after the header.
    /// Readers that knew an earlier epoch see an epoch change.
    pub fn init(
        region: Region<'a>,
        format: Format,
        epoch: NonZeroU64,
    ) -> Result<Self, ChannelError> {
        if format.protocol == 0 || format.element_size == 0 {
            return Err(ChannelError::InvalidFormat);
        }
        if !region.is_writable() {
            return Err(ChannelError::ReadOnly);
        }
        let elements =
            capacity(region.len(), format.element_size).ok_or(ChannelError::RegionTooSmall)?;
        let data_len = element_offset(elements, format.element_size)
            .and_then(|end| end.checked_sub(HEADER_SIZE))
            .ok_or(ChannelError::RegionTooSmall)?;

        region.store(offset::EPOCH, 0, Ordering::Release)?;
        // Readers may still be copying under the old epoch; make the
        // deactivation visible before anything else changes.
        fence(Ordering::SeqCst);
        region.store(offset::TRANSPORT, TRANSPORT_MARKER, Ordering::Relaxed)?;
        region.store(offset::PROTOCOL, format.protocol, Ordering::Relaxed)?;
        region.store(offset::SIZE, format.element_size, Ordering::Relaxed)?;
        region.store(offset::ELEMENTS, elements, Ordering::Relaxed)?;
        region.store(offset::RESERVED, 0, Ordering::Relaxed)?;
        region.store(offset::WSC, 0, Ordering::Relaxed)?;
        region.store(offset::WC, 0, Ordering::Relaxed)?;
        region.fill(HEADER_SIZE, data_len, 0)?;
        region.store(offset::EPOCH, epoch.get(), Ordering::Release)?;
        Ok(Self {
            region,
            element_size: format.element_size,
            elements,
            wc: 0,
        })
    }

    /// Number of elements in the ring.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Element size in bytes.
    pub fn element_size(&self) -> u64 {
        self.element_size
    }

    /// Appends one element. A shorter `element` is padded with zeros. The
    /// writer never waits: a reader that falls a whole ring behind loses
    /// elements and is told so ([`ReadOutcome::Overrun`]).
    pub fn write(&mut self, element: &[u8]) -> Result<(), ChannelError> {
        if element.len() as u64 > self.element_size {
            return Err(ChannelError::ElementTooLong);
        }
        let position = self.wc % self.elements;
        let at = element_offset(position, self.element_size).ok_or(ChannelError::RegionTooSmall)?;
        let size = usize::try_from(self.element_size).map_err(|_| ChannelError::RegionTooSmall)?;
        let next = self.wc.wrapping_add(1);
        self.region.store(offset::WSC, next, Ordering::Relaxed)?;
        // The start counter must be visible before any payload byte changes.
        fence(Ordering::Release);
        self.region.write_bytes(at, element)?;
        let pad = size.saturating_sub(element.len());
        self.region.fill(at.saturating_add(element.len()), pad, 0)?;
        self.region.store(offset::WC, next, Ordering::Release)?;
        self.wc = next;
        Ok(())
    }

    /// Appends `value`'s bytes as one element (zero-padded to the element
    /// size). [`ChannelError::ElementTooLong`], and nothing written, if a
    /// `T` is larger than an element.
    pub fn write_value<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.write(value.as_bytes())
    }
}

/// The result of one [`Reader::read`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The next element was copied into the buffer.
    Element,
    /// Nothing new.
    Empty,
    /// The writer has not (yet) initialised the channel: epoch 0.
    Inactive,
    /// The header does not match what the reader expects (transport marker,
    /// protocol, element size, or a ring that does not fit the region).
    Incompatible,
    /// The writer re-initialised the channel; the reader has dropped its
    /// position and starts at the beginning of the new stream.
    EpochChanged,
    /// The writer lapped the reader; elements were lost and the reader
    /// continues with the next element written.
    Overrun,
}

/// The result of one [`Reader::read_value`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueOutcome<T> {
    /// The next element, as a `T` (its first `size_of::<T>()` bytes).
    Value(T),
    /// No value: why (any [`ReadOutcome`] but `Element`).
    NotRead(ReadOutcome),
    /// A `T` is larger than the channel's element size; nothing was read
    /// and the reader's position is unchanged.
    TooLarge,
}

impl<T> ValueOutcome<T> {
    /// The value, if one was read.
    pub fn value(self) -> Option<T> {
        match self {
            Self::Value(value) => Some(value),
            Self::NotRead(_) | Self::TooLarge => None,
        }
    }
}

/// A reading end of a channel.
#[derive(Debug)]
pub struct Reader<'a> {
    region: Region<'a>,
    format: Format,
    /// Epoch the reader accepted; 0 while not synchronised.
    epoch: u64,
    /// Ring size accepted with `epoch`.
    elements: u64,
    /// Read counter: index of the next element to read.
    rc: u64,
}

impl<'a> Reader<'a> {
    /// A reader of the channel in `region` (normally mapped read-only).
    pub fn new(region: Region<'a>, format: Format) -> Self {
        Self {
            region,
            format,
            epoch: 0,
            elements: 0,
            rc: 0,
        }
    }

    /// Index of the next element to read in the current stream.
    pub fn position(&self) -> u64 {
        self.rc
    }

    fn load(&self, field: usize, order: Ordering) -> u64 {
        // The region is at least a header long once an epoch is accepted;
        // before that a failed load reads as 0 (inactive).
        self.region.load(field, order).unwrap_or(0)
    }

    /// Accepts the header's epoch `epoch` if the header matches.
    fn synchronise(&mut self, epoch: u64) -> Result<(), ReadOutcome> {
        let transport = self.load(offset::TRANSPORT, Ordering::Relaxed);
        let protocol = self.load(offset::PROTOCOL, Ordering::Relaxed);
        let size = self.load(offset::SIZE, Ordering::Relaxed);
        let elements = self.load(offset::ELEMENTS, Ordering::Relaxed);
        let fits = capacity(self.region.len(), self.format.element_size)
            .is_some_and(|max| elements >= 1 && elements <= max);
        if transport != TRANSPORT_MARKER
            || protocol != self.format.protocol
            || size != self.format.element_size
            || !fits
        {
            return Err(ReadOutcome::Incompatible);
        }
        self.epoch = epoch;
        self.elements = elements;
        self.rc = 0;
        Ok(())
    }

    fn desynchronise(&mut self) {
        self.epoch = 0;
        self.elements = 0;
        self.rc = 0;
    }

    /// Reads the next element into `out` (the first `out.len()` bytes of
    /// it, if `out` is shorter than an element; the rest of `out` is left
    /// alone if it is longer). Only [`ReadOutcome::Element`] means `out`
    /// holds new data.
    pub fn read(&mut self, out: &mut [u8]) -> ReadOutcome {
        let epoch = self.load(offset::EPOCH, Ordering::Acquire);
        if epoch != self.epoch {
            if self.epoch != 0 {
                self.desynchronise();
                return ReadOutcome::EpochChanged;
            }
            if epoch == 0 {
                return ReadOutcome::Inactive;
            }
            if let Err(outcome) = self.synchronise(epoch) {
                return outcome;
            }
        }
        if self.epoch == 0 {
            return ReadOutcome::Inactive;
        }

        let wc = self.load(offset::WC, Ordering::Acquire);
        if self.rc >= wc {
            return ReadOutcome::Empty;
        }
        let Some(at) = element_offset(self.rc % self.elements, self.format.element_size) else {
            return ReadOutcome::Incompatible;
        };
        let size = usize::try_from(self.format.element_size).unwrap_or(usize::MAX);
        let copy = out.len().min(size);
        let Some(dst) = out.get_mut(..copy) else {
            return ReadOutcome::Incompatible;
        };
        if self.region.read_bytes(at, dst).is_err() {
            return ReadOutcome::Incompatible;
        }
        // The payload copy must complete before the start counter is read.
        fence(Ordering::Acquire);
        let wsc = self.load(offset::WSC, Ordering::Acquire);
        if wsc > self.rc.saturating_add(self.elements) {
            self.rc = self.load(offset::WC, Ordering::Acquire);
            return ReadOutcome::Overrun;
        }
        if self.load(offset::EPOCH, Ordering::Acquire) != self.epoch {
            self.desynchronise();
            return ReadOutcome::EpochChanged;
        }
        self.rc = self.rc.wrapping_add(1);
        ReadOutcome::Element
    }

    /// Reads the next element as a `T`. Any bit pattern is a valid `T`
    /// (`FromBytes`), so a hostile writer can make the value odd, never
    /// invalid. [`ValueOutcome::TooLarge`] if a `T` does not fit in one
    /// element.
    pub fn read_value<T: FromBytes + IntoBytes>(&mut self) -> ValueOutcome<T> {
        if !self.format.fits::<T>() {
            return ValueOutcome::TooLarge;
        }
        let mut value = T::new_zeroed();
        match self.read(value.as_mut_bytes()) {
            ReadOutcome::Element => ValueOutcome::Value(value),
            other => ValueOutcome::NotRead(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;
    use std::{vec, vec::Vec};

    /// 64 bytes of header + 4 elements of 64 bytes.
    const WORDS: usize = (HEADER_SIZE + 4 * 64) / 8;

    fn buffer() -> Vec<AtomicU64> {
        (0..WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    fn epoch(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    fn msg(n: u64) -> [u8; 64] {
        let mut m = [0u8; 64];
        m[..8].copy_from_slice(&n.to_le_bytes());
        m[8] = 0xab;
        m
    }

    fn read_number(reader: &mut Reader<'_>) -> Result<u64, ReadOutcome> {
        let mut out = [0u8; 64];
        match reader.read(&mut out) {
            ReadOutcome::Element => {
                assert_eq!(out[8], 0xab, "payload copied whole");
                assert!(out[9..].iter().all(|&b| b == 0), "padding is zero");
                Ok(u64::from_le_bytes(out[..8].try_into().unwrap()))
            }
            other => Err(other),
        }
    }

    #[test]
    fn fresh_epochs_differ_by_time_and_subject() {
        let mut seen = std::collections::BTreeSet::new();
        for subject in 0..8u16 {
            for tsc in [0u64, 1, 2, 1000, 1001, 0xffff_ffff_fffe, 0xffff_ffff_ffff] {
                assert!(
                    seen.insert(fresh_epoch(tsc, SubjectId(subject))),
                    "{tsc} {subject}"
                );
            }
        }
        // A restarted writer (later TSC) announces a new epoch.
        let first = fresh_epoch(123_456, SubjectId(3));
        assert_ne!(first, fresh_epoch(123_457, SubjectId(3)));
        assert_eq!(first, fresh_epoch(123_456, SubjectId(3)), "a pure function");
    }

    #[test]
    fn header_after_init() {
        let mem = buffer();
        let w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(5)).unwrap();
        assert_eq!(w.elements(), 4);
        let r = Region::from_atomics(&mem);
        assert_eq!(
            r.load(offset::TRANSPORT, Ordering::Relaxed),
            Ok(TRANSPORT_MARKER)
        );
        assert_eq!(r.load(offset::EPOCH, Ordering::Relaxed), Ok(5));
        assert_eq!(r.load(offset::PROTOCOL, Ordering::Relaxed), Ok(1));
        assert_eq!(r.load(offset::SIZE, Ordering::Relaxed), Ok(64));
        assert_eq!(r.load(offset::ELEMENTS, Ordering::Relaxed), Ok(4));
        assert_eq!(r.load(offset::WC, Ordering::Relaxed), Ok(0));
    }

    #[test]
    fn normal_flow() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem).read_only(), Format::DEFAULT);
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Empty));
        for n in 0..3 {
            w.write(&msg(n)).unwrap();
        }
        for n in 0..3 {
            assert_eq!(read_number(&mut r), Ok(n));
        }
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Empty));
        assert_eq!(r.position(), 3);
    }

    #[test]
    fn short_elements_are_padded_and_long_ones_refused() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        w.write(&[0xff; 64]).unwrap();
        let mut out = [0u8; 64];
        assert_eq!(r.read(&mut out), ReadOutcome::Element);
        w.write(b"hi").unwrap();
        assert_eq!(r.read(&mut out), ReadOutcome::Element);
        assert_eq!(&out[..2], b"hi");
        assert!(out[2..].iter().all(|&b| b == 0));
        assert_eq!(w.write(&[0u8; 65]), Err(ChannelError::ElementTooLong));
    }

    #[test]
    fn ring_wraps() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        for n in 0..11 {
            w.write(&msg(n)).unwrap();
            w.write(&msg(100 + n)).unwrap();
            assert_eq!(read_number(&mut r), Ok(n));
            assert_eq!(read_number(&mut r), Ok(100 + n));
        }
        // Exactly a full ring behind is still readable.
        for n in 0..4 {
            w.write(&msg(n)).unwrap();
        }
        for n in 0..4 {
            assert_eq!(read_number(&mut r), Ok(n));
        }
    }

    #[test]
    fn overrun_when_lapped() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        for n in 0..6 {
            w.write(&msg(n)).unwrap();
        }
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Overrun));
        assert_eq!(r.position(), 6, "resynchronised at the write counter");
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Empty));
        w.write(&msg(6)).unwrap();
        assert_eq!(read_number(&mut r), Ok(6));
    }

    #[test]
    fn torn_read_is_detected() {
        // The writer has started (wsc) but not finished (wc) overwriting the
        // slot the reader is copying: what a concurrent writer looks like.
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        for n in 0..4 {
            w.write(&msg(n)).unwrap();
        }
        Region::from_atomics(&mem)
            .store(offset::WSC, 5, Ordering::Relaxed)
            .unwrap();
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Overrun));
    }

    #[test]
    fn epoch_change_mid_stream() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        w.write(&msg(0)).unwrap();
        w.write(&msg(1)).unwrap();
        assert_eq!(read_number(&mut r), Ok(0));
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(2)).unwrap();
        w.write(&msg(50)).unwrap();
        assert_eq!(read_number(&mut r), Err(ReadOutcome::EpochChanged));
        assert_eq!(
            read_number(&mut r),
            Ok(50),
            "new stream read from its start"
        );
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Empty));
    }

    #[test]
    fn epoch_change_during_copy_discards_the_copy() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        w.write(&msg(0)).unwrap();
        assert_eq!(read_number(&mut r), Ok(0));
        w.write(&msg(1)).unwrap();
        // Deactivation between the reader's epoch check and its re-check
        // cannot be interleaved single-threaded; simulate its result: epoch
        // 0 seen on the next read.
        Region::from_atomics(&mem)
            .store(offset::EPOCH, 0, Ordering::Release)
            .unwrap();
        assert_eq!(read_number(&mut r), Err(ReadOutcome::EpochChanged));
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Inactive));
    }

    #[test]
    fn inactive_channel() {
        let mem = buffer();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        assert_eq!(read_number(&mut r), Err(ReadOutcome::Inactive));
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(9)).unwrap();
        w.write(&msg(3)).unwrap();
        assert_eq!(
            read_number(&mut r),
            Ok(3),
            "first epoch is accepted silently"
        );
    }

    fn hostile(field: usize, value: u64) -> ReadOutcome {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        w.write(&msg(0)).unwrap();
        Region::from_atomics(&mem)
            .store(field, value, Ordering::Relaxed)
            .unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        let mut out = [0u8; 64];
        r.read(&mut out)
    }

    #[test]
    fn hostile_headers_are_incompatible() {
        assert_eq!(
            hostile(offset::TRANSPORT, 0x1234),
            ReadOutcome::Incompatible
        );
        assert_eq!(hostile(offset::PROTOCOL, 2), ReadOutcome::Incompatible);
        assert_eq!(hostile(offset::SIZE, 32), ReadOutcome::Incompatible);
        assert_eq!(
            hostile(offset::ELEMENTS, 5),
            ReadOutcome::Incompatible,
            "ring too big"
        );
        assert_eq!(hostile(offset::ELEMENTS, 0), ReadOutcome::Incompatible);
        assert_eq!(
            hostile(offset::ELEMENTS, u64::MAX),
            ReadOutcome::Incompatible
        );
        // A smaller ring than the region allows is fine.
        assert_eq!(hostile(offset::ELEMENTS, 2), ReadOutcome::Element);
    }

    #[test]
    fn hostile_counters_after_sync() {
        let mem = buffer();
        let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
        w.write(&msg(0)).unwrap();
        assert_eq!(read_number(&mut r), Ok(0));
        let raw = Region::from_atomics(&mem);
        // The header's geometry changes under an accepted epoch: the reader
        // keeps indexing with its own copy.
        raw.store(offset::ELEMENTS, u64::MAX, Ordering::Relaxed)
            .unwrap();
        raw.store(offset::WC, u64::MAX, Ordering::Relaxed).unwrap();
        raw.store(offset::WSC, 0, Ordering::Relaxed).unwrap();
        let mut out = [0u8; 64];
        for _ in 0..10 {
            assert_eq!(r.read(&mut out), ReadOutcome::Element);
        }
        raw.store(offset::WSC, u64::MAX, Ordering::Relaxed).unwrap();
        assert_eq!(r.read(&mut out), ReadOutcome::Overrun);
        assert_eq!(r.position(), u64::MAX);
        assert_eq!(r.read(&mut out), ReadOutcome::Empty);
    }

    #[test]
    fn writer_setup_errors() {
        let mem = buffer();
        let region = Region::from_atomics(&mem);
        let bad = Format {
            protocol: 0,
            element_size: 64,
        };
        assert_eq!(
            Writer::init(region.clone(), bad, epoch(1)).unwrap_err(),
            ChannelError::InvalidFormat
        );
        let huge = Format {
            protocol: 1,
            element_size: 4096,
        };
        assert_eq!(
            Writer::init(region.clone(), huge, epoch(1)).unwrap_err(),
            ChannelError::RegionTooSmall
        );
        assert_eq!(
            Writer::init(region.read_only(), Format::DEFAULT, epoch(1)).unwrap_err(),
            ChannelError::ReadOnly
        );
        let tiny: [AtomicU64; 4] = Default::default();
        assert_eq!(
            Writer::init(Region::from_atomics(&tiny), Format::DEFAULT, epoch(1)).unwrap_err(),
            ChannelError::RegionTooSmall
        );
        let mut r = Reader::new(Region::from_atomics(&tiny), Format::DEFAULT);
        assert_eq!(r.read(&mut [0u8; 64]), ReadOutcome::Inactive);
    }

    /// A typed message: 24 bytes, no padding.
    #[derive(
        Clone,
        Copy,
        Debug,
        PartialEq,
        Eq,
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
    )]
    #[repr(C)]
    struct Sample {
        sequence: u64,
        value: i32,
        flags: u32,
        tag: [u8; 8],
    }

    #[test]
    fn typed_values_round_trip() {
        let mem = buffer();
        let format = Format::of::<Sample>(7);
        assert_eq!(format.element_size, 24);
        let mut w = Writer::init(Region::from_atomics(&mem), format, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem).read_only(), format);
        assert_eq!(
            r.read_value::<Sample>(),
            ValueOutcome::NotRead(ReadOutcome::Empty)
        );
        let sample = Sample {
            sequence: 9,
            value: -3,
            flags: 0x8000_0001,
            tag: *b"septum!\0",
        };
        w.write_value(&sample).unwrap();
        w.write_value(&42u64).unwrap();
        assert_eq!(r.read_value::<Sample>(), ValueOutcome::Value(sample));
        // A smaller type reads the element's first bytes.
        assert_eq!(r.read_value::<u64>().value(), Some(42));
        assert_eq!(r.read_value::<u64>().value(), None);
    }

    #[test]
    fn typed_values_that_do_not_fit_are_refused() {
        let mem = buffer();
        let format = Format::of::<u64>(1);
        let mut w = Writer::init(Region::from_atomics(&mem), format, epoch(1)).unwrap();
        let mut r = Reader::new(Region::from_atomics(&mem), format);
        assert!(!format.fits::<Sample>());
        assert_eq!(
            w.write_value(&Sample {
                sequence: 1,
                value: 2,
                flags: 3,
                tag: [4; 8]
            }),
            Err(ChannelError::ElementTooLong)
        );
        w.write_value(&5u64).unwrap();
        assert_eq!(r.read_value::<Sample>(), ValueOutcome::TooLarge);
        assert_eq!(r.position(), 0, "a refused read leaves the position alone");
        assert_eq!(
            r.read_value::<[u8; 8]>(),
            ValueOutcome::Value(5u64.to_le_bytes())
        );
        // Raw bytes and typed values mix: the same element, either way.
        w.write(&6u64.to_le_bytes()).unwrap();
        assert_eq!(r.read_value::<u64>(), ValueOutcome::Value(6));
        let zero_sized = Format::of::<()>(1);
        assert_eq!(
            Writer::init(Region::from_atomics(&mem), zero_sized, epoch(2)).unwrap_err(),
            ChannelError::InvalidFormat
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write,
        Read,
        Reinit,
        Scribble(usize, u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => Just(Op::Write),
            4 => Just(Op::Read),
            1 => Just(Op::Reinit),
            1 => (0usize..WORDS, any::<u64>()).prop_map(|(w, v)| Op::Scribble(w * 8, v)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Garbage anywhere in the region never makes a reader panic or
        /// read outside it.
        #[test]
        fn reader_survives_garbage(
            words in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..WORDS + 2),
            marker in proptest::prelude::any::<bool>(),
            out_len in 0usize..100,
        ) {
            let mem: Vec<AtomicU64> = words.into_iter().map(AtomicU64::new).collect();
            let raw = Region::from_atomics(&mem);
            if marker && mem.len() >= 8 {
                raw.store(offset::TRANSPORT, TRANSPORT_MARKER, Ordering::Relaxed).unwrap();
                raw.store(offset::PROTOCOL, 1, Ordering::Relaxed).unwrap();
                raw.store(offset::SIZE, 64, Ordering::Relaxed).unwrap();
            }
            let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
            let mut out = vec![0u8; out_len];
            for _ in 0..8 {
                let _ = r.read(&mut out);
                let _ = r.read_value::<Sample>();
            }
        }

        /// Against an honest writer, with arbitrary header scribbles mixed
        /// in only when no accepted epoch exists, every element the reader
        /// returns is the next one written or follows a reported loss.
        #[test]
        fn reader_sees_stream_in_order(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 24 } else { 60 })) {
            let mem = buffer();
            let mut epoch_no = 1;
            let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(epoch_no)).unwrap();
            let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
            let mut next_written = 0u64;
            let mut expected = 0u64;
            for op in ops {
                match op {
                    Op::Write => {
                        w.write(&msg(next_written)).unwrap();
                        next_written += 1;
                    }
                    Op::Read => match read_number(&mut r) {
                        Ok(n) => {
                            proptest::prop_assert_eq!(n, expected);
                            expected += 1;
                        }
                        Err(ReadOutcome::Empty) => proptest::prop_assert_eq!(expected, next_written),
                        Err(ReadOutcome::Overrun) => {
                            proptest::prop_assert!(next_written - expected > 4);
                            expected = next_written;
                        }
                        Err(ReadOutcome::EpochChanged) => expected = 0,
                        Err(other) => proptest::prop_assert!(false, "unexpected {:?}", other),
                    },
                    Op::Reinit => {
                        epoch_no += 1;
                        w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(epoch_no)).unwrap();
                        next_written = 0;
                    }
                    Op::Scribble(..) => {}
                }
            }
        }

        /// A hostile writer scribbling over the header and ring at any time
        /// never makes a synchronised reader panic.
        #[test]
        fn reader_survives_hostile_writer(ops in proptest::collection::vec(op(), 1..if cfg!(miri) { 24 } else { 60 })) {
            let mem = buffer();
            let mut w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(1)).unwrap();
            let mut r = Reader::new(Region::from_atomics(&mem), Format::DEFAULT);
            let raw = Region::from_atomics(&mem);
            let mut out = [0u8; 64];
            for op in ops {
                match op {
                    Op::Write => w.write(&msg(1)).unwrap(),
                    Op::Read => { let _ = r.read(&mut out); }
                    Op::Reinit => {
                        w = Writer::init(Region::from_atomics(&mem), Format::DEFAULT, epoch(3)).unwrap();
                    }
                    Op::Scribble(at, value) => raw.store(at, value, Ordering::Relaxed).unwrap(),
                }
            }
        }
    }
}
