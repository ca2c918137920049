//! SMP node: one binary for every subject of the multi-CPU system test
//! (`systems/smp.xml`); its role follows from what the policy gives it.
//!
//! - **reporter** (has the `uart` device): prints every message arriving on
//!   its channels `in1` to `in6` (those the policy gives it) as
//!   `smp: <message>`, once per major frame, and powers the machine off
//!   after [`FRAMES`] frames of its own.
//! - **kicker** (has the source event `kick`): in every odd-numbered frame
//!   of its own raises `kick`, an `async` event whose target is the waiter
//!   on another CPU, then yields.
//! - **waiter** (has the source event `sleep`): waits for its events
//!   (`Kernel::wait`) over and over. A wait lasts until an event is pending,
//!   across frames; the kicker's `async` event is the only one it gets. The
//!   kicker runs three quarters of the way into the major frame on CPU 0;
//!   the waiter has the whole major frame on CPU 1, where the CPU idles
//!   while it waits. If the idle CPU notices the cross-CPU event at once,
//!   the waiter wakes about three quarters into a major frame
//!   (`waiter: woken by an event mid-frame`); a wake that waited for a
//!   frame boundary shows as `waiter: woken at a frame boundary`, and one
//!   without a pending event as `waiter: woke with nothing pending`: the
//!   test forbids both. It writes the verdict to its channel `out`.
//! - **switcher** (has a `next_plan` kernel event, `systems/plans.xml`):
//!   yields every frame and, in its frame [`SWITCH_FRAME`], asks for the
//!   next plan: every CPU begins it at the next major-frame boundary.
//! - **node** (anything else with a channel `out`): writes
//!   `<name> alive frame <k>` to `out` once per frame and yields.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome, Writer};
use septum_sdk::text::{TextBuf, until_nul};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, SourceEventId, raise, rdtsc};

septum_sdk::entry!(main);

/// Major frames the reporter runs before it powers off.
const FRAMES: u32 = 30;

/// The switcher's frame (counted from 0) in which it asks for the next
/// plan; the plan changes where that major frame ends.
const SWITCH_FRAME: u64 = 9;

fn main(info: Info<'static>) -> ! {
    if Uart::from_info(&info, "uart").is_some() {
        reporter(&info)
    }
    let pause = info.source_event("yield");
    if let Some(kick) = info.source_event("kick") {
        kicker(kick, pause)
    }
    if info.kernel().event(KernelActionCode::NextPlan).is_some() {
        switcher(&info, pause)
    }
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("smp_node: no role (no uart, kick or out)");
    };
    if info.source_event("sleep").is_some() {
        waiter(&info, &mut out)
    }
    let mut frame = 0u64;
    loop {
        let mut text = TextBuf::<64>::new();
        let _ = write!(text, "{} alive frame {frame}", info.name());
        // The element size is 64, so a 64-byte text always fits.
        let _ = out.write(text.as_bytes());
        frame = frame.wrapping_add(1);
        give_up(pause);
    }
}

/// The waiter: see the module doc.
fn waiter(info: &Info<'static>, out: &mut Writer<'static>) -> ! {
    // The plan starts every CPU's first major frame at the same instant,
    // and the waiter is the first subject of CPU 1: its first instruction
    // runs a few hundred ticks after that start.
    let plan_start = rdtsc();
    let period = info.major_frame_cycles().map_or(u64::MAX, |p| p.0);
    let kernel = info.kernel();
    loop {
        let mut text = TextBuf::<64>::new();
        let verdict = match kernel.wait() {
            Ok(pending) if pending.is_empty() => "woke with nothing pending",
            Ok(_) => {
                let phase = rdtsc().wrapping_sub(plan_start) % period;
                // The kick comes three quarters into the major frame; the
                // waiter's clock starts a little after the frame did, so a
                // wake at a frame boundary reads just under one period.
                if (period / 4..period / 8 * 7).contains(&phase) {
                    "woken by an event mid-frame"
                } else {
                    "woken at a frame boundary"
                }
            }
            Err(_) => panic!("smp_node: the waiter has no sleep kernel event"),
        };
        let _ = write!(text, "{}: {verdict}", info.name());
        let _ = out.write(text.as_bytes());
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

fn switcher(info: &Info<'static>, pause: Option<SourceEventId>) -> ! {
    let kernel = info.kernel();
    let mut frame = 0u64;
    loop {
        if frame == SWITCH_FRAME {
            let _ = kernel.next_plan();
        }
        frame = frame.wrapping_add(1);
        give_up(pause);
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
    let mut inputs = ["in1", "in2", "in3", "in4", "in5", "in6"]
        .map(|name| info.channel_reader(name, Format::DEFAULT));
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
