//! Ticker: signals the display every few of its minor frames.
//!
//! Every run it counts the frame and yields the rest of it (the typed
//! `yield_now`: whichever source event the policy makes a `yield`). Every
//! [`EVERY`]th run, for [`SIGNALS`] signals, it first writes
//! `signal <n> at frame <f>` into channel `out` and raises its source event
//! `tick`, which marks the display's target event `tick` pending. It owns no
//! UART: the display prints what happened.
#![no_std]
#![no_main]

use septum_sdk::channel::Format;
use septum_sdk::needs::Need;
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, KernelActionCode, raise};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::channel_writer("out", Format::DEFAULT),
    Need::source_event("tick"),
    Need::kernel(KernelActionCode::Yield),
];

/// Runs between two signals.
const EVERY: u64 = 3;
/// Signals to send; then the ticker only yields.
const SIGNALS: u64 = 5;

fn main(info: Info<'static>) -> ! {
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("ticker: no channel \"out\"");
    };
    let Some(tick) = info.source_event("tick") else {
        panic!("ticker: no source event \"tick\"");
    };
    let kernel = info.kernel();
    let mut frame = 0u64;
    let mut sent = 0u64;
    loop {
        frame = frame.wrapping_add(1);
        if frame.is_multiple_of(EVERY) && sent < SIGNALS {
            sent = sent.saturating_add(1);
            let mut text = TextBuf::<64>::new();
            let _ = core::fmt::write(&mut text, format_args!("signal {sent} at frame {frame}"));
            let _ = out.write(text.as_bytes());
            raise(tick);
        }
        if kernel.yield_now().is_err() {
            panic!("ticker: the policy grants no yield");
        }
    }
}
