//! Attacker: writes IA32_FS_BASE (MSR 0xc000_0100).
//!
//! FS.base is part of the guest state the VMCS switches, so hardware could
//! let a subject write it without harm to others; the kernel still denies
//! every MSR to native subjects (the MSR bitmap is all ones, including its
//! high range 0xc000_0000..0xc000_1fff). The `wrmsr` must exit; the kernel
//! reports a WRMSR fault naming this subject and stops it
//! (`onFault="stopSubject"`). The value written, 0, is FS.base's initial
//! value, and soft-float `no_std` code without thread locals never uses FS.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

/// IA32_FS_BASE (SDM Vol. 4, table 2-2).
const IA32_FS_BASE: u32 = 0xc000_0100;

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_wrmsr: writing MSR 0xc0000100"));
    probe::write_msr(IA32_FS_BASE, 0);
    report.say(format_args!("attacker_wrmsr: write succeeded"));
    attack::park(&info)
}
