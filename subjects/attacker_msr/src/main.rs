//! Attacker: reads IA32_APIC_BASE (MSR 0x1b), which no policy grants.
//!
//! Native subjects get no MSRs: the read must exit to the kernel, which
//! reports an RDMSR fault naming this subject and stops it
//! (`onFault="stopSubject"`).
#![no_std]
#![no_main]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_sdk::channel::{Format, Writer};
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, probe, raise, rdtsc};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let epoch = NonZeroU64::new(rdtsc() | 1).unwrap_or(NonZeroU64::MIN);
    let mut report = info.channel_writer("report", Format::DEFAULT, epoch);
    say(&mut report, format_args!("attacker_msr: reading MSR 0x1b"));
    let value = probe::read_msr(0x1b);
    say(
        &mut report,
        format_args!("attacker_msr: read succeeded: {value:#x}"),
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
