//! Attacker: writes to COM1 (port 0x3f8), which the victim owns.
//!
//! Its I/O bitmap does not grant the port, so the `out` must exit to the
//! kernel, which reports an I/O instruction fault naming this subject and
//! stops it (`onFault="stopSubject"`). No byte may reach the UART.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_sdk::channel::{Format, Writer};
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// COM1's data port, owned by the victim.
const COM1_DATA: u16 = 0x3f8;

fn main(info: Info<'static>) -> ! {
    let epoch = NonZeroU64::new(rdtsc() | 1).unwrap_or(NonZeroU64::MIN);
    let mut report = info.channel_writer("report", Format::DEFAULT, epoch);
    say(&mut report, format_args!("attacker_io: writing port 0x3f8"));
    septum_sdk::arch::outb(COM1_DATA, b'!');
    say(
        &mut report,
        format_args!("attacker_io: port write succeeded"),
    );
    let pause = info.source_event("yield");
    loop {
        match pause {
            Some(event) => raise(event),
            None => core::hint::spin_loop(),
        }
    }
}

/// Sends one line to the victim, which prints it on COM1.
fn say(report: &mut Option<Writer<'static>>, args: core::fmt::Arguments<'_>) {
    let mut text = TextBuf::<64>::new();
    let _ = text.write_fmt(args);
    if let Some(writer) = report {
        let _ = writer.write(text.as_bytes());
    }
}
