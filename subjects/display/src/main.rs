//! Display: runs only when the ticker signals it.
//!
//! It prints `display: waiting for tick` once, then loops on the typed
//! `wait` (whichever source event the policy makes a `sleep`): the kernel
//! lets it sleep through every minor frame in which nothing is pending and
//! enters it again once the ticker has raised `tick`. Each time it wakes it
//! checks that `tick` is among the pending events it got back, reads every
//! message waiting in channel `in` (one per signal) and prints
//! `display: woke <w> times, <s> signals, last "<message>"`. Were it woken
//! by anything but a signal (a frame end, say), `w` would run ahead of `s`.
//! After [`DONE_AFTER`] signals it prints `display: done` and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::uart("uart"),
    Need::target_event("tick"),
    Need::channel_reader("in", Format::DEFAULT),
    Need::kernel(KernelActionCode::Sleep),
];

/// Signals to receive before powering off (the ticker sends as many).
const DONE_AFTER: u32 = 5;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("display: no UART \"uart\"");
    };
    uart.init();
    let Some(tick) = info.target_event("tick") else {
        let _ = writeln!(uart, "display: no target event \"tick\"");
        panic!("display: no target event");
    };
    let Some(mut input) = info.channel_reader("in", Format::DEFAULT) else {
        let _ = writeln!(uart, "display: no channel \"in\"");
        panic!("display: no channel");
    };
    let kernel = info.kernel();
    let _ = writeln!(uart, "display: waiting for tick");
    let mut woke = 0u32;
    let mut signals = 0u32;
    let mut last = [0u8; 64];
    loop {
        let Ok(pending) = kernel.wait() else {
            let _ = writeln!(uart, "display: the policy grants no sleep event");
            panic!("display: cannot wait");
        };
        woke = woke.saturating_add(1);
        if !pending.has(tick) {
            let _ = writeln!(
                uart,
                "display: woken without tick (pending {:#x})",
                pending.bits()
            );
        }
        let mut element = [0u8; 64];
        loop {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    signals = signals.saturating_add(1);
                    last = element;
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                other => {
                    let _ = writeln!(uart, "display: channel trouble: {other:?}");
                    break;
                }
            }
        }
        let _ = writeln!(
            uart,
            "display: woke {woke} times, {signals} signals, last \"{}\"",
            until_nul(&last)
        );
        if signals >= DONE_AFTER {
            let _ = writeln!(uart, "display: done");
            uart.flush();
            let _ = kernel.poweroff();
            let _ = writeln!(uart, "display: the policy grants no poweroff");
            panic!("display: cannot power off");
        }
    }
}
