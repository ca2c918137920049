//! Arbitrary bytes through the crash-audit parser (`septum_abi::crash`),
//! as `septum crash decode` and the kernel's boot-time scan use it: the
//! region header, every slot, and a bare record.
//!
//! Beyond "no panic, no hang": whatever decodes encodes back to the same
//! bytes (the layout has no slack the parser ignores), and a region that
//! parses yields exactly the slots its header announces. Random bytes
//! almost never carry a matching CRC, so the input is also sealed (magic,
//! version, size and checksum set) and must then decode and encode back:
//! that drives the decoder past the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_abi::crash::{
    HEADER_SIZE, Header, RECORD_MAGIC, RECORD_SIZE, Record, Region, VERSION, classify, crc32,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::decode(data) {
        assert_eq!(&header.encode()[..], &data[..HEADER_SIZE]);
    }
    if let Ok(record) = Record::decode(data) {
        assert_eq!(&record.encode()[..], &data[..RECORD_SIZE]);
    }
    let _ = classify(data, 0);
    if let Some(body) = data.get(..RECORD_SIZE) {
        let mut bytes = [0u8; RECORD_SIZE];
        bytes.copy_from_slice(body);
        bytes[0..8].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes[8..12].copy_from_slice(&VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(RECORD_SIZE as u32).to_le_bytes());
        bytes[16..20].fill(0);
        let checksum = crc32(&bytes);
        bytes[16..20].copy_from_slice(&checksum.to_le_bytes());
        let record = Record::decode(&bytes).expect("a sealed record decodes");
        assert_eq!(record.encode(), bytes);
    }
    if let Ok(region) = Region::parse(data) {
        let expected = region.header().policy_hash;
        assert_eq!(
            region.slots(expected).count(),
            region.header().slot_count as usize
        );
    }
});
