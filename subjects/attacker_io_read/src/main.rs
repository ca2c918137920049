//! Attacker: reads COM1's line status register (port 0x3fd), which the
//! victim owns.
//!
//! Reading a UART register is not harmless (it can clear pending status
//! the owner relies on), and its I/O bitmap does not grant the port: the
//! `in` must exit to the kernel, which reports an I/O instruction fault
//! naming this subject (qualification: port 0x3fd, direction in) and stops
//! it (`onFault="stopSubject"`).
#![no_std]
#![no_main]

use septum_sdk::Info;

septum_sdk::entry!(main);

/// COM1's line status register, owned by the victim.
const COM1_LSR: u16 = 0x3fd;

fn main(info: Info<'static>) -> ! {
    let mut report = attack::Report::open(&info);
    report.say(format_args!("attacker_io_read: reading port 0x3fd"));
    let value = septum_sdk::arch::inb(COM1_LSR);
    report.say(format_args!(
        "attacker_io_read: port read succeeded: {value:#x}"
    ));
    attack::park(&info)
}
