//! Reconnect: the client of a driver that restarts (`crasher`), in a
//! partition of its own.
//!
//! Once per frame it reads everything waiting in channel `in` and yields.
//! It prints every `start ...` message of the driver, and
//! `reconnect: reconnected after epoch change <n>` each time the channel's
//! epoch changes (the driver's restart: SHMStream v2), after which it reads
//! on from the new epoch. It also checks that it missed none of its own
//! frames: each run must begin about one major frame after the previous
//! one (between half and one and a half major frames). If the policy
//! grants it a source event `reset` (a `<reset/>` target event of the
//! driver), it raises it every [`RESET_EVERY`] frames, after reading. After
//! [`FRAMES`] frames it prints the counts and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, raise, rdtsc};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("in", Format::DEFAULT),
    Need::kernel(KernelActionCode::Yield),
    Need::kernel(KernelActionCode::Poweroff),
];

/// Frames to run before reporting and powering off.
const FRAMES: u32 = 30;
/// Frames between two resets of the driver (when the policy grants one).
const RESET_EVERY: u32 = 2;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("reconnect: no UART \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("in", Format::DEFAULT) else {
        let _ = writeln!(uart, "reconnect: no channel \"in\"");
        panic!("reconnect: no channel");
    };
    let Some(major) = info.major_frame_cycles() else {
        let _ = writeln!(uart, "reconnect: no major frame length");
        panic!("reconnect: no major frame");
    };
    let major = major.get();
    let kernel = info.kernel();
    let reset = info.source_event("reset");
    let (mut reconnects, mut works, mut missed) = (0u32, 0u32, 0u32);
    let mut last_start: Option<u64> = None;
    let mut element = [0u8; 64];
    for frame in 1..=FRAMES {
        let now = rdtsc();
        if let Some(last) = last_start {
            let gap = now.wrapping_sub(last);
            if gap < major / 2 || gap > major.saturating_add(major / 2) {
                missed = missed.saturating_add(1);
                let _ = writeln!(
                    uart,
                    "reconnect: frame {frame} began {gap} cycles after the last (major frame {major})"
                );
            }
        }
        last_start = Some(now);
        loop {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    let text = until_nul(&element);
                    if text.starts_with("start") {
                        let _ = writeln!(uart, "reconnect: frame {frame}: driver {text}");
                    } else {
                        works = works.saturating_add(1);
                    }
                }
                ReadOutcome::EpochChanged => {
                    reconnects = reconnects.saturating_add(1);
                    let _ = writeln!(
                        uart,
                        "reconnect: reconnected after epoch change {reconnects}"
                    );
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                other => {
                    let _ = writeln!(uart, "reconnect: channel trouble: {other:?}");
                    break;
                }
            }
        }
        if let Some(reset) = reset
            && frame.is_multiple_of(RESET_EVERY)
        {
            raise(reset);
        }
        if kernel.yield_now().is_err() {
            let _ = writeln!(uart, "reconnect: the policy grants no yield");
            panic!("reconnect: cannot yield");
        }
    }
    let _ = writeln!(
        uart,
        "reconnect: {FRAMES} frames, {missed} missed, {reconnects} reconnects, {works} work items"
    );
    uart.flush();
    let _ = kernel.poweroff();
    let _ = writeln!(uart, "reconnect: the policy grants no poweroff");
    panic!("reconnect: cannot power off");
}
