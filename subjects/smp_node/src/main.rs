//! SMP node: one binary for every subject of the multi-CPU system test
//! (`systems/smp.xml`); its role follows from what the policy gives it.
//!
//! - **reporter** (has the `uart` device): prints every message arriving on
//!   its channels `in1`, `in2`, `in3` (one per other CPU) as
//!   `smp: <message>`, once per major frame, and powers the machine off
//!   after [`FRAMES`] frames of its own.
//! - **kicker** (has the source event `kick`): in every odd-numbered frame
//!   of its own raises `kick`, an `async` event whose target is the waiter
//!   on another CPU, then yields.
//! - **waiter** (has the source event `sleep`): once per frame, sleeps and
//!   measures how long the sleep lasted. The kicker runs a quarter of the
//!   way into the major frame on CPU 0; the waiter sleeps at the start of
//!   the major frame on CPU 1 and has the whole frame. A sleep that ends
//!   in under half a major frame was ended by the cross-CPU event
//!   (`waiter: woken by an event`); one that lasts until the frame ends saw
//!   none (`waiter: slept until its frame ended`). It writes the verdict to
//!   its channel `out` and sleeps again at once, so in a frame with a kick
//!   it reports one early wake, then a sleep that lasted to the frame's
//!   end.
//! - **node** (anything else with a channel `out`): writes
//!   `<name> alive frame <k>` to `out` once per frame and yields.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::text::{TextBuf, until_nul};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, SourceEventId, raise, rdtsc};

septum_sdk::entry!(main);

/// Major frames the reporter runs before it powers off.
const FRAMES: u32 = 30;

fn main(info: Info<'static>) -> ! {
    if Uart::from_info(&info, "uart").is_some() {
        reporter(&info)
    }
    let pause = info.source_event("yield");
    if let Some(kick) = info.source_event("kick") {
        kicker(kick, pause)
    }
    let epoch = NonZeroU64::new(rdtsc() | 1).unwrap_or(NonZeroU64::MIN);
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT, epoch) else {
        panic!("smp_node: no role (no uart, kick or out)");
    };
    let sleep = info.source_event("sleep");
    let half_frame = info.major_frame_cycles().map_or(u64::MAX, |p| p.0 / 2);
    let mut frame = 0u64;
    loop {
        let mut text = TextBuf::<64>::new();
        match sleep {
            Some(sleep) => {
                let before = rdtsc();
                raise(sleep);
                let slept = rdtsc().wrapping_sub(before);
                let verdict = if slept < half_frame {
                    "woken by an event"
                } else {
                    "slept until its frame ended"
                };
                let _ = write!(text, "{}: {verdict}", info.name());
            }
            None => {
                let _ = write!(text, "{} alive frame {frame}", info.name());
            }
        }
        // The element size is 64, so a 64-byte text always fits.
        let _ = out.write(text.as_bytes());
        frame = frame.wrapping_add(1);
        // The waiter sleeps again at once (a yield here would let the
        // kick of the next frame find it yielded, not asleep).
        if sleep.is_none() {
            give_up(pause);
        }
    }
}

/// Yield the rest of the frame (or spin a while without a yield event).
fn give_up(pause: Option<SourceEventId>) {
    match pause {
        Some(event) => raise(event),
        None => {
            let start = rdtsc();
            while rdtsc().wrapping_sub(start) < 100_000 {
                core::hint::spin_loop();
            }
        }
    }
}

fn kicker(kick: SourceEventId, pause: Option<SourceEventId>) -> ! {
    let mut frame = 0u64;
    loop {
        if frame % 2 == 1 {
            raise(kick);
        }
        frame = frame.wrapping_add(1);
        give_up(pause);
    }
}

fn reporter(info: &Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(info, "uart") else {
        panic!("smp_node: no UART");
    };
    uart.init();
    let mut inputs = ["in1", "in2", "in3"].map(|name| info.channel_reader(name, Format::DEFAULT));
    let pause = info.source_event("yield");
    let poweroff = info.source_event("poweroff");
    let _ = writeln!(uart, "smp: {} reporting", info.name());
    for _ in 0..FRAMES {
        for input in inputs.iter_mut().flatten() {
            let mut element = [0u8; 64];
            loop {
                match input.read(&mut element) {
                    ReadOutcome::Element => {
                        let _ = writeln!(uart, "smp: {}", until_nul(&element));
                    }
                    ReadOutcome::Empty | ReadOutcome::Inactive => break,
                    ReadOutcome::Overrun => {
                        let _ = writeln!(uart, "smp: overrun, messages lost");
                    }
                    ReadOutcome::EpochChanged => {
                        let _ = writeln!(uart, "smp: channel restarted by its writer");
                    }
                    ReadOutcome::Incompatible => {
                        let _ = writeln!(uart, "smp: channel incompatible");
                        break;
                    }
                }
            }
        }
        give_up(pause);
    }
    let _ = writeln!(uart, "smp: done");
    uart.flush();
    if let Some(event) = poweroff {
        raise(event);
    }
    loop {
        give_up(pause);
    }
}
