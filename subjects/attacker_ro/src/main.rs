//! Attacker: writes to a page its policy maps read-only.
//!
//! The page is `notice`, which the victim also maps and includes in its
//! checksum. The policy stops this subject on its first fault
//! (`onFault="stopSubject"`); the kernel must report an EPT violation (or
//! page fault) naming it, and the line after the write must never be sent.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_sdk::channel::{Format, Writer};
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let epoch = NonZeroU64::new(rdtsc() | 1).unwrap_or(NonZeroU64::MIN);
    let mut report = info.channel_writer("report", Format::DEFAULT, epoch);
    let target = info.memory("notice");
    say(
        &mut report,
        format_args!("attacker_ro: writing read-only memory"),
    );
    match target {
        Some(notice) => match septum_sdk::probe::write_u64(&info, notice.address, 0xbad0_bad0) {
            Ok(()) => say(&mut report, format_args!("attacker_ro: write succeeded")),
            Err(e) => say(
                &mut report,
                format_args!("attacker_ro: probe refused: {e:?}"),
            ),
        },
        None => say(
            &mut report,
            format_args!("attacker_ro: no memory \"notice\""),
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
