//! Attacker: writes CR0 (flips CR0.TS).
//!
//! The kernel owns every CR0 bit of a native subject, so the write must
//! exit; the kernel reports a control-register access fault naming this
//! subject and stops it (`onFault="stopSubject"`).
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_cr: writing CR0"));
    probe::toggle_cr0_ts();
    report.say(format_args!("attacker_cr: write succeeded"));
    attack::park(&info)
}
