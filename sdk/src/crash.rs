//! Crash-audit records: the one subject a policy names with `<crashAudit
//! logical virtualAddress>` sees the kernel's crash-audit region read-only
//! (docs/crash.md, docs/policy.md "Crash-audit reader") and reads here the
//! records the previous boot's fail-closed paths left.
//!
//! Nothing in the region is trusted: the kernel of an earlier boot, another
//! image, a boot loader or a memory fault may have written any bytes. Every
//! read copies the bytes out of the region first (volatile, bounds-checked:
//! [`Region::read_bytes`]) and decodes the copy with `septum_abi::crash`'s
//! decoders, which check the magic, version, sizes and CRC-32 of the header
//! and of each record and never panic. The header's slot count is believed
//! only as far as the mapped region reaches. Nothing allocates.

use septum_abi::crash::{HEADER_SIZE, RECORD_SIZE, classify, slot_offset};
pub use septum_abi::crash::{Header, HeaderError, Reason, Record, RecordError, SlotState};

use crate::region::Region;

/// Why the region cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashError {
    /// The header is not a crash-audit header (first boot, power loss, a
    /// boot loader that overwrote it, or hostile bytes).
    Header(HeaderError),
    /// The header announces more slots than the mapping holds.
    Truncated {
        /// Slots the header announces.
        slots: u32,
        /// Bytes mapped.
        len: usize,
    },
    /// The mapping is smaller than a header.
    TooSmall,
}

/// The crash-audit region, read-only.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    region: Region<'a>,
    header: Header,
}

impl Records<'static> {
    /// Where the region named `name` is mapped (for isolation probes); `None`
    /// without such a grant.
    pub fn address(info: &crate::Info<'_>, name: &str) -> Option<crate::VirtAddr> {
        info.find(name, septum_abi::info::ResourceKind::CrashAudit)
            .map(|r| crate::VirtAddr(r.address))
    }
}

impl<'a> Records<'a> {
    /// Read and check the header of the region mapped as `region` (made
    /// read-only here: the reader never writes).
    pub fn new(region: Region<'a>) -> Result<Self, CrashError> {
        let region = region.read_only();
        let mut bytes = [0u8; HEADER_SIZE];
        region
            .read_bytes(0, &mut bytes)
            .map_err(|_| CrashError::TooSmall)?;
        let header = Header::decode(&bytes).map_err(CrashError::Header)?;
        // slot_count <= MAX_SLOTS (checked by the decoder), so the end of
        // the last slot is known; it must lie in the mapping.
        let end = slot_offset(header.slot_count).unwrap_or(usize::MAX);
        if end > region.len() {
            return Err(CrashError::Truncated {
                slots: header.slot_count,
                len: region.len(),
            });
        }
        Ok(Self { region, header })
    }

    /// The header as it was read by [`Records::new`]: this boot's counter
    /// and the policy hash of this image (the kernel writes both at boot,
    /// before any subject runs).
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Slot `slot` as it is now, judged against this image's policy hash;
    /// `None` past the last slot.
    pub fn slot(&self, slot: u32) -> Option<SlotState> {
        if slot >= self.header.slot_count {
            return None;
        }
        let start = slot_offset(slot)?;
        let mut bytes = [0u8; RECORD_SIZE];
        self.region.read_bytes(start, &mut bytes).ok()?;
        Some(classify(&bytes, self.header.policy_hash))
    }

    /// Every slot in order, as [`Records::slot`] judges it.
    pub fn slots(&self) -> impl Iterator<Item = (u32, SlotState)> + '_ {
        (0..self.header.slot_count).filter_map(move |i| self.slot(i).map(|state| (i, state)))
    }

    /// The well-formed records the previous boot wrote (their boot counter
    /// is one less than the header's), from this image or another.
    pub fn previous_boot(&self) -> impl Iterator<Item = Record> + '_ {
        let previous = self.header.boot_counter.checked_sub(1);
        self.slots().filter_map(move |(_, state)| match state {
            SlotState::Valid(r) | SlotState::OtherImage(r) if Some(r.boot_counter) == previous => {
                Some(r)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::AtomicU64;
    use std::{vec, vec::Vec};

    use septum_abi::{SubjectId, TscCycles};

    use septum_abi::crash::{RECORDS_OFFSET, RootException, encode_region, region_size};

    use super::*;

    const HASH: u64 = 0x1234_5678_9abc_def0;

    fn buffer(slots: u32) -> Vec<AtomicU64> {
        let size = region_size(slots).unwrap() as usize;
        (0..size / 8).map(|_| AtomicU64::new(0)).collect()
    }

    fn region_with(words: &[AtomicU64], header: &Header, records: &[Record]) {
        let mut bytes = vec![0u8; words.len() * 8];
        encode_region(header, records, &mut bytes);
        Region::from_atomics(words).write_bytes(0, &bytes).unwrap();
    }

    fn record(cpu: u32, boot: u64) -> Record {
        let mut r = Record::new(
            Reason::RootException,
            boot,
            HASH,
            TscCycles(0x044e_8cae),
            cpu,
            Some(SubjectId(2)),
        );
        r.set_root_exception(RootException {
            vector: 14,
            error_code: 3,
            rip: 0x10_0377,
            cs: 8,
            rflags: 0x1_0002,
            rsp: 0x28_7940,
            ss: 0x10,
            cr2: 0x10_0000,
        });
        r.seal();
        r
    }

    fn header(slots: u32, boot: u64) -> Header {
        let mut h = Header::new(HASH, slots);
        for _ in 0..boot {
            h.next_boot(HASH);
        }
        h.seal();
        h
    }

    #[test]
    fn finds_the_previous_boots_records_only() {
        let words = buffer(2);
        region_with(&words, &header(2, 3), &[record(0, 2), record(1, 1)]);
        let records = Records::new(Region::from_atomics(&words)).unwrap();
        assert_eq!(records.header().boot_counter, 3);
        let previous: Vec<Record> = records.previous_boot().collect();
        assert_eq!(previous.len(), 1);
        let r = previous[0];
        assert_eq!(Reason::from_u32(r.reason), Some(Reason::RootException));
        assert_eq!((r.cpu, r.subject, r.boot_counter), (0, 2, 2));
        assert_eq!(r.root_exception.cr2, 0x10_0000);
        assert!(matches!(records.slot(1), Some(SlotState::Valid(_))));
        assert_eq!(records.slot(2), None);
    }

    #[test]
    fn never_writes() {
        let words = buffer(1);
        region_with(&words, &header(1, 1), &[]);
        let records = Records::new(Region::from_atomics(&words)).unwrap();
        assert!(!records.region.is_writable());
    }

    #[test]
    fn refuses_a_bad_header_and_a_short_mapping() {
        let words = buffer(1);
        assert!(matches!(
            Records::new(Region::from_atomics(&words)),
            Err(CrashError::Header(_))
        ));
        assert_eq!(
            Records::new(Region::from_atomics(&words[..4])).unwrap_err(),
            CrashError::TooSmall
        );
        // A valid header that claims more slots than are mapped.
        region_with(&words, &header(9, 1), &[]);
        assert_eq!(
            Records::new(Region::from_atomics(&words)).unwrap_err(),
            CrashError::Truncated {
                slots: 9,
                len: 0x2000
            }
        );
    }

    #[test]
    fn a_corrupted_record_is_invalid_and_not_reported() {
        let words = buffer(1);
        region_with(&words, &header(1, 1), &[record(0, 0)]);
        // Flip one byte of the record's CR2.
        let region = Region::from_atomics(&words);
        let at = RECORDS_OFFSET + 320 + 56;
        let mut byte = [0u8];
        region.read_bytes(at, &mut byte).unwrap();
        region.write_bytes(at, &[byte[0] ^ 1]).unwrap();
        let records = Records::new(Region::from_atomics(&words)).unwrap();
        assert!(matches!(
            records.slot(0),
            Some(SlotState::Invalid(RecordError::BadChecksum { .. }))
        ));
        assert_eq!(records.previous_boot().count(), 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        #[test]
        fn hostile_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..0x3000),
            seal in proptest::bool::ANY,
            slots in 0u32..4,
        ) {
            let words: Vec<AtomicU64> = (0..bytes.len() / 8).map(|_| AtomicU64::new(0)).collect();
            let region = Region::from_atomics(&words);
            region.write_bytes(0, &bytes[..words.len() * 8]).unwrap();
            if seal && words.len() * 8 >= HEADER_SIZE {
                // A valid header over hostile slots.
                region.write_bytes(0, &header(slots, 1).encode()).unwrap();
            }
            if let Ok(records) = Records::new(Region::from_atomics(&words)) {
                let _ = records.slots().count();
                let _ = records.previous_boot().count();
            }
        }
    }
}
