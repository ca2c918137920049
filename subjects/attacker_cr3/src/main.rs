//! Attacker: loads CR3 (`mov cr3, rax`).
//!
//! The kernel owns every native subject's paging root (CR3-load exiting,
//! no CR3 target values), so the load must exit; the kernel reports a
//! control-register access fault with qualification 0x3 (CR3, MOV to CR,
//! RAX) naming this subject and stops it (`onFault="stopSubject"`). The
//! value has a reserved bit set (see [`septum_sdk::probe::write_cr3_reserved`])
//! so even a missed exit could not switch the subject's page tables.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_cr3: writing CR3"));
    probe::write_cr3_reserved();
    report.say(format_args!("attacker_cr3: write succeeded"));
    attack::park(&info)
}
