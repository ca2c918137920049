//! Attacker: raises event numbers its policy does not define.
//!
//! Numbers 63 (in range, unused), 64 and `u64::MAX` (out of range) must be
//! ignored by the kernel: the subject continues after each `vmcall` and
//! says so. This is the one isolation probe that must not be stopped.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_hypercall: raising undefined events"));
    for number in [63, 64, u64::MAX] {
        probe::raw_hypercall(number);
    }
    report.say(format_args!("attacker_hypercall: ignored, still running"));
    attack::park(&info)
}
