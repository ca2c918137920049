//! Channel waiter: sleeps until something arrives on its channel, prints
//! it, and checks that its wake-ups came with the channel's vector.
//!
//! It owns COM1 (`uart`), reads channel `in` and loops on the typed `wait`
//! (the `sleep` action). After each wake-up it prints every message waiting
//! in `in` as `chan_waiter: <message>`; a message `done` ends the run.
//!
//! If its info page gives the reader of `in` a vector (a `<reader vector>`
//! the policy writes on a channel with `hasEvent`: the writer's event on the
//! channel injects it, docs/kernel.md "Device interrupts"), it registers a
//! handler for that vector and enables interrupts before the first wait.
//! The vector is injected at the entry that wakes it, before `wait`
//! returns, so after the `n`-th wake-up its handler must have run at least
//! `n` times; it prints `chan_waiter: wake <n>: <h> by vector <v>, <m>
//! messages from "<first message>"` (with `WITHOUT VECTOR` after `<v>`
//! should `h < n`) instead of each message. After [`WAKES`] wake-ups
//! it prints `chan_waiter: done after <n> wake-ups, <h> by vector <v>` and
//! powers off.
//!
//! An auto-assigned reader vector (none written) is listed on the info
//! page too but never injected: give this subject a written vector or a
//! channel without `hasEvent`.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, interrupt};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("in", Format::DEFAULT),
    Need::kernel(KernelActionCode::Sleep),
];

/// Wake-ups to check when the channel has a vector.
const WAKES: u32 = 5;

/// Injections of the channel's vector.
static HANDLED: AtomicU32 = AtomicU32::new(0);

fn on_channel(_vector: u8) {
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("chan_waiter: no UART \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("in", Format::DEFAULT) else {
        panic!("chan_waiter: no channel \"in\"");
    };
    let kernel = info.kernel();
    let vector = info.channel("in").and_then(|c| c.vector);
    match vector {
        Some(vector) => {
            interrupt::register(vector, on_channel);
            interrupt::install();
            interrupt::enable();
            let _ = writeln!(uart, "chan_waiter: waiting, vector {vector}");
        }
        None => {
            let _ = writeln!(uart, "chan_waiter: waiting");
        }
    }
    let mut wakes = 0u32;
    let mut done = false;
    while !done {
        if kernel.wait().is_err() {
            panic!("chan_waiter: the policy grants no sleep event");
        }
        wakes = wakes.saturating_add(1);
        let handled = HANDLED.load(Ordering::Relaxed);
        // With a vector, only the first message of each wake-up is printed
        // (the UART is slow; the writer may send more than it can show).
        let mut read = 0u32;
        let mut first = [0u8; 64];
        let mut element = [0u8; 64];
        loop {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    read = read.saturating_add(1);
                    let text = until_nul(&element);
                    if vector.is_none() {
                        let _ = writeln!(uart, "chan_waiter: {text}");
                    } else if read == 1 {
                        first = element;
                    }
                    done |= text == "done";
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                other => {
                    let _ = writeln!(uart, "chan_waiter: channel trouble: {other:?}");
                    break;
                }
            }
        }
        if let Some(vector) = vector {
            let _ = writeln!(
                uart,
                "chan_waiter: wake {wakes}: {handled} by vector {vector}{}, {read} messages from \"{}\"",
                if handled < wakes {
                    " WITHOUT VECTOR"
                } else {
                    ""
                },
                until_nul(&first)
            );
            done |= wakes >= WAKES;
        }
    }
    match vector {
        Some(vector) => {
            let _ = writeln!(
                uart,
                "chan_waiter: done after {wakes} wake-ups, {} by vector {vector}",
                HANDLED.load(Ordering::Relaxed)
            );
        }
        None => {
            let _ = writeln!(uart, "chan_waiter: done after {wakes} wake-ups");
        }
    }
    uart.flush();
    let _ = kernel.poweroff();
    panic!("chan_waiter: the policy grants no poweroff");
}
