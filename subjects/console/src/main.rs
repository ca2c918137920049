//! Console: prints what arrives on channel `in` to the UART it owns.
//!
//! Every time it is scheduled it prints `console: alive frame <n>`, then
//! each message waiting in the channel as `console: got "<msg>"`, then
//! yields the rest of its minor frame. After [`DONE_AFTER`] messages it
//! prints `console: done`, drains the UART (Bochs drops bytes still in
//! flight at power off) and raises its kernel `poweroff` event. Channel
//! trouble (lost messages, a restarted or incompatible writer) is printed,
//! not hidden, so a system test can reject it.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("in", Format::DEFAULT),
];

/// Messages to receive before powering off (several major frames' worth).
const DONE_AFTER: u32 = 30;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("console: no UART \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("in", Format::DEFAULT) else {
        let _ = writeln!(uart, "console: no channel \"in\"");
        panic!("console: no channel");
    };
    let pause = info.source_event("yield");
    let poweroff = info.source_event("poweroff");
    let mut frame = 0u64;
    let mut received = 0u32;
    loop {
        let _ = writeln!(uart, "console: alive frame {frame}");
        let mut element = [0u8; 64];
        while received < DONE_AFTER {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    let _ = writeln!(uart, "console: got \"{}\"", until_nul(&element));
                    received = received.saturating_add(1);
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                ReadOutcome::Overrun => {
                    let _ = writeln!(uart, "console: overrun, messages lost");
                }
                ReadOutcome::EpochChanged => {
                    let _ = writeln!(uart, "console: channel restarted by its writer");
                }
                ReadOutcome::Incompatible => {
                    let _ = writeln!(uart, "console: channel incompatible");
                    break;
                }
            }
        }
        if received >= DONE_AFTER {
            let _ = writeln!(uart, "console: done");
            uart.flush();
            if let Some(event) = poweroff {
                raise(event);
            }
        }
        frame = frame.wrapping_add(1);
        match pause {
            Some(event) => raise(event),
            None => spin(100_000),
        }
    }
}

/// Burns roughly `ticks` TSC ticks when the policy gives no yield event.
fn spin(ticks: u64) {
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}
