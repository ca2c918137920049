//! Monitor: the last stage of the tutorial's pipeline (docs/tutorial.md).
//!
//! It owns COM1. It sleeps until the filter raises `passed` (the typed
//! `wait`: no polling), counts the wake-up, and prints every [`Reading`]
//! waiting in channel `filtered` as
//! `monitor: wake <w>: reading <sequence> value <value>`. Were it woken by
//! anything but the filter, or were two values to share a wake-up, the
//! wake numbers would no longer match the values one to one. After
//! [`DONE_AFTER`] values it prints `monitor: done` and powers the machine
//! off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome, ValueOutcome};
use septum_sdk::needs::Need;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode};
use zerocopy::{FromBytes, Immutable, IntoBytes};

septum_sdk::entry!(main);

/// One channel element, the same layout as the sampler's and the filter's.
#[derive(FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Reading {
    /// 1 for the sampler's first reading, 2 for the second, ...
    sequence: u64,
    /// The measured value.
    value: u64,
}

/// Element size 16, protocol 2, as the filter writes them.
const READINGS: Format = Format::of::<Reading>(2);

// Checked against the policy by the composer (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("filtered", READINGS),
    Need::target_event("passed"),
    Need::kernel(KernelActionCode::Sleep),
    Need::kernel(KernelActionCode::Poweroff),
];

/// Values to receive before powering off (5 of the sampler's 8 pass).
const DONE_AFTER: u64 = 5;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("monitor: no device \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("filtered", READINGS) else {
        let _ = writeln!(uart, "monitor: no channel \"filtered\"");
        panic!("monitor: no channel");
    };
    let Some(passed) = info.target_event("passed") else {
        let _ = writeln!(uart, "monitor: no target event \"passed\"");
        panic!("monitor: no target event");
    };
    let kernel = info.kernel();
    let _ = writeln!(uart, "monitor: waiting for the filter");
    let mut wakes = 0u64;
    let mut values = 0u64;
    loop {
        let Ok(pending) = kernel.wait() else {
            let _ = writeln!(uart, "monitor: the policy grants no sleep");
            panic!("monitor: cannot wait");
        };
        wakes = wakes.saturating_add(1);
        if !pending.has(passed) {
            let _ = writeln!(uart, "monitor: woken without \"passed\"");
        }
        loop {
            match input.read_value::<Reading>() {
                ValueOutcome::Value(reading) => {
                    values = values.saturating_add(1);
                    let _ = writeln!(
                        uart,
                        "monitor: wake {wakes}: reading {} value {}",
                        reading.sequence, reading.value
                    );
                }
                ValueOutcome::NotRead(ReadOutcome::Empty | ReadOutcome::Inactive) => break,
                ValueOutcome::NotRead(other) => {
                    let _ = writeln!(uart, "monitor: channel trouble: {other:?}");
                    break;
                }
                ValueOutcome::TooLarge => {
                    let _ = writeln!(uart, "monitor: a Reading does not fit");
                    break;
                }
            }
        }
        if values >= DONE_AFTER {
            let _ = writeln!(uart, "monitor: done");
            uart.flush();
            let _ = kernel.poweroff();
            let _ = writeln!(uart, "monitor: the policy grants no poweroff");
            panic!("monitor: cannot power off");
        }
    }
}
