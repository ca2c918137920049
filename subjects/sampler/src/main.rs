//! Sampler: the first stage of the tutorial's pipeline (docs/tutorial.md).
//!
//! Every second run it takes the next of [`VALUES`] as a reading, writes it
//! as a typed [`Reading`] into channel `readings` and raises its source
//! event `sample`, which marks the filter's target event pending. Every run
//! it yields the rest of its minor frame. It owns no UART: the monitor
//! prints what reaches it.
#![no_std]
#![no_main]

use septum_sdk::channel::Format;
use septum_sdk::needs::Need;
use septum_sdk::{Info, KernelActionCode, raise};
use zerocopy::{Immutable, IntoBytes};

septum_sdk::entry!(main);

/// One channel element: `#[repr(C)]`, no padding, 16 bytes.
#[derive(IntoBytes, Immutable)]
#[repr(C)]
struct Reading {
    /// 1 for the first reading, 2 for the second, ...
    sequence: u64,
    /// The measured value.
    value: u64,
}

/// Element size 16 (a `Reading`), protocol 2: the policy's
/// `<channel name="readings" elementSize="16" protocol="2">`.
const READINGS: Format = Format::of::<Reading>(2);

// Checked against the policy by the composer (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::channel_writer("readings", READINGS),
    Need::source_event("sample"),
    Need::kernel(KernelActionCode::Yield),
];

/// The values the sampler "measures", one every second run.
const VALUES: [u64; 8] = [3, 9, 4, 12, 7, 15, 2, 11];

fn main(info: Info<'static>) -> ! {
    let Some(mut out) = info.channel_writer("readings", READINGS) else {
        panic!("sampler: no channel \"readings\"");
    };
    let Some(sample) = info.source_event("sample") else {
        panic!("sampler: no source event \"sample\"");
    };
    let kernel = info.kernel();
    let mut run = 0u64;
    let mut sent = 0u64;
    loop {
        run = run.wrapping_add(1);
        if run.is_multiple_of(2)
            && let Some(&value) = VALUES.get(sent as usize)
        {
            sent = sent.saturating_add(1);
            let reading = Reading {
                sequence: sent,
                value,
            };
            if out.write_value(&reading).is_err() {
                panic!("sampler: a Reading does not fit the channel's element");
            }
            raise(sample);
        }
        if kernel.yield_now().is_err() {
            panic!("sampler: the policy grants no yield");
        }
    }
}
