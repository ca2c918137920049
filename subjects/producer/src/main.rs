//! Producer: writes numbered messages into its channel `out`, forever.
//!
//! Each time it runs it writes a few messages ("msg N from producer"),
//! raises the channel's event if the policy gives it one, and yields the
//! rest of its minor frame with its kernel `yield` event, so the console
//! sees a steady trickle of a few messages per major frame and the ring
//! never overflows. The SDK picks the channel's epoch (TSC and subject id).
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::Format;
use septum_sdk::needs::Need;
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![Need::channel_writer("out", Format::DEFAULT)];

/// Messages written per run.
const PER_RUN: u64 = 3;

fn main(info: Info<'static>) -> ! {
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("producer: no writable channel \"out\"");
    };
    let notify = info.channel("out").and_then(|c| c.notify_event());
    let pause = info.source_event("yield");
    let mut number = 0u64;
    loop {
        for _ in 0..PER_RUN {
            let mut text = TextBuf::<64>::new();
            // Cannot overflow 64 bytes: "msg " + 20 digits + " from producer".
            let _ = write!(text, "msg {number} from producer");
            // The element size is 64, so a 64-byte text always fits.
            let _ = out.write(text.as_bytes());
            number = number.wrapping_add(1);
        }
        if let Some(event) = notify {
            raise(event);
        }
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
