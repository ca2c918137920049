//! Attacker: writes to an address its policy does not map at all.
//!
//! The address is where the victim keeps its private data
//! ([`TARGET`]); in this subject nothing is mapped there. The kernel must
//! stop it (`onFault="stopSubject"`) and report the fault naming it.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_sdk::channel::{Format, Writer};
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// Where the victim maps its private data (systems/isolation.xml).
const TARGET: septum_sdk::VirtAddr = septum_sdk::VirtAddr(0x4000_0000);

fn main(info: Info<'static>) -> ! {
    let epoch = NonZeroU64::new(rdtsc() | 1).unwrap_or(NonZeroU64::MIN);
    let mut report = info.channel_writer("report", Format::DEFAULT, epoch);
    say(
        &mut report,
        format_args!("attacker_unmapped: writing unmapped memory"),
    );
    match septum_sdk::probe::write_u64(&info, TARGET, 0xbad1_bad1) {
        Ok(()) => say(
            &mut report,
            format_args!("attacker_unmapped: write succeeded"),
        ),
        Err(e) => say(
            &mut report,
            format_args!("attacker_unmapped: probe refused: {e:?}"),
        ),
    }
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
