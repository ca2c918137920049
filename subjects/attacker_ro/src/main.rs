//! Attacker: writes to a page its policy maps read-only.
//!
//! The page is `notice`, which the victim also maps and includes in its
//! checksum. The policy stops this subject on its first fault
//! (`onFault="stopSubject"`); the kernel must report an EPT violation (or
//! page fault) naming it, and the line after the write must never be sent.
#![no_std]
#![no_main]

use septum_sdk::Info;

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    let target = info.memory("notice");
    report.say(format_args!("attacker_ro: writing read-only memory"));
    match target {
        Some(notice) => match septum_sdk::probe::write_u64(&info, notice.address, 0xbad0_bad0) {
            Ok(()) => report.say(format_args!("attacker_ro: write succeeded")),
            Err(e) => report.say(format_args!("attacker_ro: probe refused: {e:?}")),
        },
        None => report.say(format_args!("attacker_ro: no memory \"notice\"")),
    }
    attack::park(&info)
}
