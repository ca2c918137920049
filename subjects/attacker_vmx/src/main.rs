//! Attacker: executes `vmxoff` in VMX non-root mode.
//!
//! Every VMX instruction exits unconditionally; the kernel must report a
//! VMX instruction fault naming this subject and stop it
//! (`onFault="stopSubject"`).
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_vmx: executing vmxoff"));
    probe::vmxoff();
    report.say(format_args!("attacker_vmx: vmxoff succeeded"));
    attack::park(&info)
}
