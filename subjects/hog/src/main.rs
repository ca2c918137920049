//! Hog: a subject that promises to finish each minor frame
//! (`minorFrameDeadline="true"`) and, as `hog`, breaks the promise.
//!
//! The subject named `hog` yields in its first [`ON_TIME`] runs, then
//! spins without yielding through [`MISSED`] frame ends (it counts them by
//! the jump in the TSC when it is given the CPU back), then yields once
//! and powers the machine off. So the kernel must report exactly
//! [`MISSED`] misses: lines for the 1st, 2nd, 4th, 8th, 16th and 32nd
//! (`septum: subject "hog" missed its minor-frame deadline (miss N)`) and
//! the total at poweroff. Any other subject running this binary (the
//! test's `punctual`) yields in every run and must never be reported.
#![no_std]
#![no_main]

use septum_sdk::needs::Need;
use septum_sdk::{Info, KernelActionCode, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![Need::kernel(KernelActionCode::Yield)];

/// Runs that end with a yield before the hog starts missing.
const ON_TIME: u32 = 3;
/// Frame ends the hog runs through.
const MISSED: u32 = 40;
/// A jump between two consecutive `rdtsc` reads above this many cycles
/// means the CPU was taken away (the loop body is a few instructions; the
/// other subjects' frames are tens of thousands of cycles).
const GAP: u64 = 1000;

fn main(info: Info<'static>) -> ! {
    let kernel = info.kernel();
    if info.name() != "hog" {
        loop {
            if kernel.yield_now().is_err() {
                panic!("hog: the policy grants no yield");
            }
        }
    }
    for _ in 0..ON_TIME {
        let _ = kernel.yield_now();
    }
    let mut frame_ends = 0u32;
    let mut last = rdtsc();
    while frame_ends < MISSED {
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP {
            frame_ends = frame_ends.saturating_add(1);
        }
        last = now;
    }
    let _ = kernel.yield_now();
    loop {
        let _ = kernel.poweroff();
        let _ = kernel.yield_now();
    }
}
