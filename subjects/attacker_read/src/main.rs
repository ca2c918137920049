//! Attacker: reads from an address its policy does not map at all.
//!
//! The address is the second page of the victim's private data
//! ([`TARGET`]); nothing is mapped there in this subject. The load must
//! fault (a guest page fault first, the EPT behind it); the kernel reports
//! it naming this subject, with the address as qualification, and stops it
//! (`onFault="stopSubject"`). No value may come back.
#![no_std]
#![no_main]

use septum_sdk::Info;

septum_sdk::entry!(main);

/// The victim's data, second page (systems/isolation.xml).
const TARGET: septum_sdk::VirtAddr = septum_sdk::VirtAddr(0x4000_1000);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_read: reading unmapped memory"));
    match septum_sdk::probe::read_u64(&info, TARGET) {
        Ok(value) => report.say(format_args!("attacker_read: read succeeded: {value:#x}")),
        Err(e) => report.say(format_args!("attacker_read: probe refused: {e:?}")),
    }
    attack::park(&info)
}
