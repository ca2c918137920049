//! Attacker: writes IA32_PLATFORM_ID (MSR 0x17), a read-only MSR.
//!
//! The SDM (Vol. 4, table 2-2) lists IA32_PLATFORM_ID as "Platform ID
//! (RO)": on bare hardware a `wrmsr` to it raises #GP. The only exceptions
//! that take priority over VM exits are #UD, privilege-level faults and
//! I/O-permission #GP (SDM Vol. 3C, "Relative Priority of Faults and VM
//! Exits"); the #GP for writing a read-only MSR is not among them, so with
//! the MSR bitmap denying it the kernel must see a WRMSR exit naming this
//! subject (not a #GP) and stop it (`onFault="stopSubject"`). This checks
//! that the kernel does not leave read-only MSRs to the hardware's own
//! refusal.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

/// IA32_PLATFORM_ID (SDM Vol. 4, table 2-2: read-only).
const IA32_PLATFORM_ID: u32 = 0x17;

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_msr_ro: writing MSR 0x17"));
    probe::write_msr(IA32_PLATFORM_ID, 0);
    report.say(format_args!("attacker_msr_ro: write succeeded"));
    attack::park(&info)
}
