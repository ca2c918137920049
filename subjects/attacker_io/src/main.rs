//! Attacker: writes to COM1 (port 0x3f8), which the victim owns.
//!
//! Its I/O bitmap does not grant the port, so the `out` must exit to the
//! kernel, which reports an I/O instruction fault naming this subject and
//! stops it (`onFault="stopSubject"`). No byte may reach the UART.
#![no_std]
#![no_main]

use septum_sdk::Info;

septum_sdk::entry!(main);

/// COM1's data port, owned by the victim.
const COM1_DATA: u16 = 0x3f8;

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_io: writing port 0x3f8"));
    septum_sdk::arch::outb(COM1_DATA, b'!');
    report.say(format_args!("attacker_io: port write succeeded"));
    attack::park(&info)
}
