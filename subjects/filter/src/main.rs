//! Filter: the middle stage of the tutorial's pipeline (docs/tutorial.md).
//!
//! It sleeps until the sampler raises `sample` (the typed `wait`: no
//! polling), reads every [`Reading`] waiting in channel `readings`, and
//! passes on those whose value is above [`THRESHOLD`]: it writes them,
//! unchanged, into channel `filtered` and raises its source event `passed`
//! once per wake-up in which it passed something, which wakes the monitor.
#![no_std]
#![no_main]

use septum_sdk::channel::{Format, ReadOutcome, ValueOutcome};
use septum_sdk::needs::Need;
use septum_sdk::{Info, KernelActionCode, raise};
use zerocopy::{FromBytes, Immutable, IntoBytes};

septum_sdk::entry!(main);

/// One channel element, the same layout as the sampler's.
#[derive(FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct Reading {
    /// 1 for the sampler's first reading, 2 for the second, ...
    sequence: u64,
    /// The measured value.
    value: u64,
}

/// Both channels carry `Reading`s: element size 16, protocol 2.
const READINGS: Format = Format::of::<Reading>(2);

// Checked against the policy by the composer (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::channel_reader("readings", READINGS),
    Need::channel_writer("filtered", READINGS),
    Need::target_event("sample"),
    Need::source_event("passed"),
    Need::kernel(KernelActionCode::Sleep),
];

/// Readings with a value above this pass; the rest are dropped.
const THRESHOLD: u64 = 5;

fn main(info: Info<'static>) -> ! {
    let Some(mut input) = info.channel_reader("readings", READINGS) else {
        panic!("filter: no channel \"readings\"");
    };
    let Some(mut out) = info.channel_writer("filtered", READINGS) else {
        panic!("filter: no channel \"filtered\"");
    };
    let Some(sample) = info.target_event("sample") else {
        panic!("filter: no target event \"sample\"");
    };
    let Some(passed) = info.source_event("passed") else {
        panic!("filter: no source event \"passed\"");
    };
    let kernel = info.kernel();
    loop {
        // Sleeps, across as many minor frames as it takes, until an event
        // is pending for the filter; returns the pending set.
        let Ok(pending) = kernel.wait() else {
            panic!("filter: the policy grants no sleep");
        };
        if !pending.has(sample) {
            continue;
        }
        let mut any = false;
        loop {
            match input.read_value::<Reading>() {
                ValueOutcome::Value(reading) => {
                    if reading.value > THRESHOLD {
                        if out.write_value(&reading).is_err() {
                            panic!("filter: a Reading does not fit the channel's element");
                        }
                        any = true;
                    }
                }
                ValueOutcome::NotRead(ReadOutcome::Empty | ReadOutcome::Inactive) => break,
                ValueOutcome::NotRead(other) => panic!("filter: channel trouble: {other:?}"),
                ValueOutcome::TooLarge => panic!("filter: a Reading does not fit"),
            }
        }
        if any {
            raise(passed);
        }
    }
}
