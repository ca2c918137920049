//! Arbitrary bytes through the crash-audit parser (`septum_abi::crash`),
//! as `septum crash decode` and the kernel's boot-time scan use it: the
//! region header, every slot, and a bare record.
//!
//! Beyond "no panic, no hang": whatever decodes encodes back to the same
//! bytes (the layout has no slack the parser ignores), and a region that
//! parses yields exactly the slots its header announces.

#![no_main]

use libfuzzer_sys::fuzz_target;
use septum_abi::crash::{HEADER_SIZE, Header, RECORD_SIZE, Record, Region, classify};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = Header::decode(data) {
        assert_eq!(&header.encode()[..], &data[..HEADER_SIZE]);
    }
    if let Ok(record) = Record::decode(data) {
        assert_eq!(&record.encode()[..], &data[..RECORD_SIZE]);
    }
    let _ = classify(data, 0);
    if let Ok(region) = Region::parse(data) {
        let expected = region.header().policy_hash;
        assert_eq!(
            region.slots(expected).count(),
            region.header().slot_count as usize
        );
    }
});
