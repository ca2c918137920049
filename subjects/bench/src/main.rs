//! Bench: the cost of a hypercall round trip, measured from inside.
//!
//! Raises an event that has no effect (a `self` event with no action)
//! [`SAMPLES`] times between two `rdtsc`, and measures an empty `rdtsc`
//! pair the same way; prints min / median / max ticks of each and the
//! median difference, then powers off. In Bochs one TSC tick is one
//! emulated instruction, so the numbers are exact instruction counts of the
//! exit path, not noisy timings.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// Samples per measurement (u32 each: 4 KiB of stack).
const SAMPLES: usize = 1000;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("bench: no UART \"uart\"");
    };
    uart.init();
    let (Some(nop), Some(poweroff)) = (info.source_event("nop"), info.source_event("poweroff"))
    else {
        let _ = writeln!(uart, "bench: events \"nop\" and \"poweroff\" needed");
        panic!("bench: events missing");
    };
    // Start at the beginning of a minor frame so the preemption timer
    // interrupts as few samples as possible.
    if let Some(pause) = info.source_event("yield") {
        raise(pause);
    }
    let mut samples = [0u32; SAMPLES];

    measure(&mut samples, || {});
    let empty = Stats::of(&mut samples);
    report(&mut uart, "empty rdtsc pair", &empty);

    measure(&mut samples, || raise(nop));
    let vmcall = Stats::of(&mut samples);
    report(&mut uart, "vmcall round trip", &vmcall);

    let _ = writeln!(
        uart,
        "bench: vmcall net median={} ticks",
        vmcall.median.saturating_sub(empty.median)
    );
    let _ = writeln!(uart, "bench: done");
    uart.flush();
    loop {
        raise(poweroff);
    }
}

fn measure(samples: &mut [u32; SAMPLES], mut action: impl FnMut()) {
    for sample in samples.iter_mut() {
        let start = rdtsc();
        action();
        let end = rdtsc();
        *sample = u32::try_from(end.wrapping_sub(start)).unwrap_or(u32::MAX);
    }
}

struct Stats {
    min: u32,
    median: u32,
    max: u32,
}

impl Stats {
    fn of(samples: &mut [u32; SAMPLES]) -> Self {
        samples.sort_unstable();
        Self {
            min: samples.first().copied().unwrap_or(0),
            median: samples.get(SAMPLES / 2).copied().unwrap_or(0),
            max: samples.last().copied().unwrap_or(0),
        }
    }
}

fn report(uart: &mut Uart, what: &str, stats: &Stats) {
    let _ = writeln!(
        uart,
        "bench: {what} ticks min={} median={} max={} samples={SAMPLES}",
        stats.min, stats.median, stats.max
    );
}
