//! Attacker: reads IA32_APIC_BASE (MSR 0x1b), which no policy grants.
//!
//! Native subjects get no MSRs: the read must exit to the kernel, which
//! reports an RDMSR fault naming this subject and stops it
//! (`onFault="stopSubject"`).
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_msr: reading MSR 0x1b"));
    let value = probe::read_msr(0x1b);
    report.say(format_args!("attacker_msr: read succeeded: {value:#x}"));
    attack::park(&info)
}
