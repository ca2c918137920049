//! Layout, checksum and classification tests, and the parser properties
//! (never panics on arbitrary bytes; encode then parse gives back what was
//! encoded). Property case counts are small under Miri.
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    clippy::unwrap_used
)]

use std::vec;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

const HASH: u64 = 0x0123_4567_89ab_cdef;

/// Longest arbitrary dump: past a region with several slots, but short
/// under Miri, where every byte checked costs.
const MAX_DUMP: usize = if cfg!(miri) { 600 } else { 12_000 };

/// Most slots a generated region has (each record costs two CRC passes,
/// slow under Miri).
const MAX_GENERATED_SLOTS: u32 = if cfg!(miri) { 3 } else { 12 };

/// Few cases under Miri, and no failure file (Miri isolates the file
/// system).
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A record whose every field has a distinct value, sealed.
fn full_record(cpu: u32) -> Record {
    let mut r = Record::new(
        Reason::SubjectFault,
        7,
        HASH,
        TscCycles(0x1122_3344_5566_7788),
        cpu,
        Some(SubjectId(3)),
    );
    r.set_exit(ExitInfo {
        exit_reason: 48,
        vm_instruction_error: 0,
        qualification: 0x181,
        guest_physical: 0x4000_1000,
        guest_linear: 0x5000_1000,
        interruption_info: 0x8000_0b0e,
        interruption_error: 2,
        idt_vectoring_info: 0,
        idt_vectoring_error: 0,
        instruction_length: 3,
        instruction_info: 0x10,
        reserved: 0,
    });
    r.set_guest(GuestRegisters {
        rax: 0xa,
        r15: 0xf15,
        rip: 0x20_1234,
        rsp: 0xf_fff0,
        cr3: 0x1000,
        efer: 0xd00,
        ..GuestRegisters::default()
    });
    r.set_root_exception(RootException {
        vector: 14,
        error_code: 3,
        rip: 0x10_2000,
        cs: 8,
        rflags: 0x46,
        rsp: 0x2f_f000,
        ss: 0x10,
        cr2: 0x10_0000,
    });
    r.set_machine_check(MachineCheck {
        mcg_status: 5,
        bank: 1,
        status: 0xb200_0000_0000_0000,
        address: 0x1234_5000,
        misc: 0x86,
        reserved: [0; 3],
    });
    r.seal();
    r
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn region_bytes(slot_count: u32, records: &[Record]) -> Vec<u8> {
    let header = Header::new(HASH, slot_count);
    let mut out = vec![0; region_size(slot_count).unwrap() as usize];
    encode_region(&header, records, &mut out);
    out
}

#[test]
fn crc32_is_the_ieee_crc() {
    // The standard check value of CRC-32/ISO-HDLC (zlib's crc32).
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn region_size_is_a_header_page_plus_whole_pages_of_slots() {
    assert_eq!(region_size(0), Some(0x1000));
    assert_eq!(region_size(1), Some(0x2000));
    assert_eq!(region_size(8), Some(0x2000));
    assert_eq!(region_size(9), Some(0x3000));
    assert_eq!(region_size(MAX_SLOTS), Some(0x1000 + 0x8_0000));
    assert_eq!(region_size(MAX_SLOTS + 1), None);
    assert_eq!(slot_offset(0), Some(RECORDS_OFFSET));
    assert_eq!(slot_offset(2), Some(RECORDS_OFFSET + 2 * RECORD_SIZE));
    assert_eq!(slot_offset(MAX_SLOTS), None);
}

#[test]
fn header_fields_sit_at_their_documented_offsets() {
    let mut h = Header::new(HASH, 2);
    h.next_boot(HASH + 1);
    h.count_crash();
    let b = h.encode();
    assert_eq!(&b[0..8], b"SEPTCRAU");
    assert_eq!(u32_at(&b, 8), VERSION);
    assert_eq!(u32_at(&b, 12), 64);
    assert_eq!(u32_at(&b, 16), h.checksum);
    assert_eq!(u32_at(&b, 20), 2);
    assert_eq!(u64_at(&b, 24), 1);
    assert_eq!(u64_at(&b, 32), HASH + 1);
    assert_eq!(u32_at(&b, 40), 512);
    assert_eq!(u32_at(&b, 44), 4096);
    assert_eq!(u64_at(&b, 48), 1);
    assert_eq!(Header::decode(&b), Ok(h));
}

#[test]
fn record_fields_sit_at_their_documented_offsets() {
    let r = full_record(1);
    let b = r.encode();
    assert_eq!(&b[0..8], b"SEPTCREC");
    assert_eq!(u32_at(&b, 8), VERSION);
    assert_eq!(u32_at(&b, 12), 512);
    assert_eq!(u32_at(&b, 16), r.checksum);
    assert_eq!(u32_at(&b, 20), Reason::SubjectFault as u32);
    assert_eq!(u64_at(&b, 24), 7);
    assert_eq!(u64_at(&b, 32), HASH);
    assert_eq!(u64_at(&b, 40), 0x1122_3344_5566_7788);
    assert_eq!(u32_at(&b, 48), 1);
    assert_eq!(u32_at(&b, 52), 3);
    assert_eq!(u32_at(&b, 56), 0xf);
    assert_eq!(u32_at(&b, 64), 48);
    assert_eq!(u64_at(&b, 72), 0x181);
    assert_eq!(u64_at(&b, 80), 0x4000_1000);
    assert_eq!(u64_at(&b, 88), 0x5000_1000);
    assert_eq!(u32_at(&b, 96), 0x8000_0b0e);
    assert_eq!(u32_at(&b, 112), 3);
    assert_eq!(u32_at(&b, 116), 0x10);
    assert_eq!(u64_at(&b, 128), 0xa); // rax
    assert_eq!(u64_at(&b, 128 + 7 * 8), 0xf_fff0); // rsp
    assert_eq!(u64_at(&b, 128 + 15 * 8), 0xf15); // r15
    assert_eq!(u64_at(&b, 256), 0x20_1234); // rip
    assert_eq!(u64_at(&b, 288), 0x1000); // cr3
    assert_eq!(u64_at(&b, 304), 0xd00); // efer
    assert_eq!(u64_at(&b, 320), 14); // vector
    assert_eq!(u64_at(&b, 376), 0x10_0000); // cr2
    assert_eq!(u64_at(&b, 384), 5); // mcg_status
    assert_eq!(u64_at(&b, 416), 0x86); // misc
    assert!(b[424..].iter().all(|&x| x == 0));
    assert_eq!(Record::decode(&b), Ok(r));
}

#[test]
fn a_record_without_blocks_shows_none_of_them() {
    let mut r = Record::new(Reason::UnexpectedNmi, 0, HASH, TscCycles(1), 0, None);
    r.seal();
    let d = Record::decode(&r.encode()).unwrap();
    assert_eq!(d.reason(), Some(Reason::UnexpectedNmi));
    assert_eq!(d.subject(), None);
    assert!(d.exit().is_none() && d.guest().is_none());
    assert!(d.root_exception().is_none() && d.machine_check().is_none());
}

#[test]
fn every_reason_round_trips_and_zero_is_none() {
    for reason in Reason::ALL {
        assert_eq!(Reason::from_u32(reason as u32), Some(reason));
    }
    assert_eq!(Reason::from_u32(0), None);
    assert_eq!(Reason::from_u32(10), None);
}

#[test]
fn a_changed_byte_is_a_bad_checksum() {
    let r = full_record(0);
    for at in [20, 100, 300, 511] {
        let mut b = r.encode();
        b[at] ^= 0x40;
        assert!(
            matches!(Record::decode(&b), Err(RecordError::BadChecksum { .. })),
            "byte {at}"
        );
    }
}

#[test]
fn a_torn_record_is_a_bad_checksum() {
    let old = full_record(0).encode();
    let mut newer = full_record(0);
    newer.tsc += 1;
    newer.guest.rip += 1;
    newer.seal();
    let mut torn = newer.encode();
    torn[256..].copy_from_slice(&old[256..]);
    assert!(matches!(
        Record::decode(&torn),
        Err(RecordError::BadChecksum { .. })
    ));
}

#[test]
fn slots_are_classified() {
    let mine = full_record(0);
    let mut other = full_record(1);
    other.policy_hash = HASH ^ 1;
    other.seal();
    let mut bytes = region_bytes(4, &[mine, other]);
    // Slot 2: torn; slot 3: left empty.
    let torn = slot_offset(2).unwrap();
    bytes[torn..torn + RECORD_SIZE].copy_from_slice(&full_record(2).encode());
    bytes[torn + 200] ^= 1;
    let region = Region::parse(&bytes).unwrap();
    let states: Vec<_> = region.slots(region.header().policy_hash).collect();
    assert_eq!(states.len(), 4);
    assert_eq!(states[0], (0, SlotState::Valid(mine)));
    assert_eq!(states[1], (1, SlotState::OtherImage(other)));
    assert!(matches!(
        states[2],
        (2, SlotState::Invalid(RecordError::BadChecksum { .. }))
    ));
    assert_eq!(states[3], (3, SlotState::Empty));
    assert_eq!(region.slot(4, HASH), None);
    // Judged against the other image, the roles swap.
    assert_eq!(region.slot(1, HASH ^ 1), Some(SlotState::Valid(other)));
}

#[test]
fn bad_headers_are_refused_with_the_reason() {
    let good = region_bytes(1, &[]);
    assert!(Region::parse(&good).is_ok());
    assert_eq!(
        Region::parse(&good[..10]).unwrap_err(),
        RegionError::Header(HeaderError::TooShort { len: 10 })
    );
    assert_eq!(
        Region::parse(&good[..RECORDS_OFFSET + 100]).unwrap_err(),
        RegionError::Truncated {
            needed: RECORDS_OFFSET + RECORD_SIZE,
            len: RECORDS_OFFSET + 100
        }
    );
    let zero = vec![0u8; 8192];
    assert_eq!(
        Region::parse(&zero).unwrap_err(),
        RegionError::Header(HeaderError::BadMagic { found: 0 })
    );
    let mut flipped = good.clone();
    flipped[30] ^= 1;
    assert!(matches!(
        Region::parse(&flipped),
        Err(RegionError::Header(HeaderError::BadChecksum { .. }))
    ));
    let mut h = Header::new(HASH, MAX_SLOTS + 1);
    h.seal();
    assert_eq!(
        Header::decode(&h.encode()),
        Err(HeaderError::TooManySlots {
            found: MAX_SLOTS + 1
        })
    );
    let mut h = Header::new(HASH, 1);
    h.version = 2;
    h.seal();
    assert_eq!(
        Header::decode(&h.encode()),
        Err(HeaderError::UnsupportedVersion { found: 2 })
    );
    let mut h = Header::new(HASH, 1);
    h.record_size = 256;
    h.seal();
    assert_eq!(Header::decode(&h.encode()), Err(HeaderError::BadLayout));
}

#[test]
fn records_past_the_slot_count_are_not_encoded() {
    let bytes = region_bytes(1, &[full_record(0), full_record(5)]);
    assert_eq!(bytes.len(), 0x2000);
    let region = Region::parse(&bytes).unwrap();
    assert_eq!(region.slots(HASH).count(), 1);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_DUMP)) {
        if let Ok(region) = Region::parse(&bytes) {
            for (_, state) in region.slots(region.header().policy_hash) {
                let _ = state;
            }
        }
        let _ = Record::decode(&bytes);
        let _ = classify(&bytes, 0);
    }

    #[test]
    fn parse_never_panics_on_a_valid_header_over_junk(
        slots in 0u32..20,
        junk in proptest::collection::vec(any::<u8>(), 0..MAX_DUMP),
    ) {
        let mut bytes = Header::new(HASH, slots).encode().to_vec();
        bytes.extend_from_slice(&junk);
        if let Ok(region) = Region::parse(&bytes) {
            prop_assert_eq!(region.slots(HASH).count(), slots as usize);
        }
    }

    #[test]
    fn sealed_bytes_decode_and_encode_back(words in proptest::collection::vec(any::<u64>(), 64)) {
        let mut bytes = [0u8; RECORD_SIZE];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(&words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes[0..8].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
        let crc = crc32_without(&bytes, 16);
        bytes[16..20].copy_from_slice(&crc.to_le_bytes());
        let record = Record::decode(&bytes).unwrap();
        prop_assert_eq!(record.encode(), bytes);
    }

    #[test]
    fn encoded_regions_parse_back(
        slot_count in 1u32..=MAX_GENERATED_SLOTS,
        hashes in proptest::collection::vec(any::<bool>(), 12),
        tscs in proptest::collection::vec(any::<u64>(), 12),
        rips in proptest::collection::vec(any::<u64>(), 12),
    ) {
        let records: Vec<Record> = (0..slot_count)
            .map(|cpu| {
                let i = cpu as usize;
                let hash = if hashes[i] { HASH } else { HASH ^ 0xff };
                let mut r = Record::new(
                    Reason::ALL[i % Reason::ALL.len()],
                    3,
                    hash,
                    TscCycles(tscs[i]),
                    cpu,
                    Some(SubjectId(cpu as u16)),
                );
                r.set_guest(GuestRegisters { rip: rips[i], ..GuestRegisters::default() });
                r.seal();
                r
            })
            .collect();
        let bytes = region_bytes(slot_count, &records);
        let region = Region::parse(&bytes).unwrap();
        prop_assert_eq!(region.header(), &Header::new(HASH, slot_count));
        for ((cpu, state), record) in region.slots(HASH).zip(&records) {
            prop_assert_eq!(cpu, record.cpu);
            let expected = if record.policy_hash == HASH {
                SlotState::Valid(*record)
            } else {
                SlotState::OtherImage(*record)
            };
            prop_assert_eq!(state, expected);
        }
    }
}
