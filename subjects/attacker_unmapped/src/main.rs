//! Attacker: writes to an address its policy does not map at all.
//!
//! The address is where the victim keeps its private data
//! ([`TARGET`]); in this subject nothing is mapped there. The kernel must
//! stop it (`onFault="stopSubject"`) and report the fault naming it.
#![no_std]
#![no_main]

use septum_sdk::Info;

septum_sdk::entry!(main);

/// Where the victim maps its private data (systems/isolation.xml).
const TARGET: septum_sdk::VirtAddr = septum_sdk::VirtAddr(0x4000_0000);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_unmapped: writing unmapped memory"));
    match septum_sdk::probe::write_u64(&info, TARGET, 0xbad1_bad1) {
        Ok(()) => report.say(format_args!("attacker_unmapped: write succeeded")),
        Err(e) => report.say(format_args!("attacker_unmapped: probe refused: {e:?}")),
    }
    attack::park(&info)
}
