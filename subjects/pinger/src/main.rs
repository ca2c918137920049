//! Pinger: raises an `ipi` event at the start of every other one of its
//! minor frames and notes when.
//!
//! Before each raise it writes the TSC into word 0 of its `stamp` region
//! (which the ponger, on another CPU, maps read-only), then raises `poke`
//! (mode `ipi`: the kernel marks the ponger's target event pending and
//! interrupts its CPU), and yields the rest of the frame. It owns no UART:
//! the ponger prints what arrived.
#![no_std]
#![no_main]

use core::sync::atomic::Ordering;

use septum_sdk::needs::Need;
use septum_sdk::{Info, KernelActionCode, raise, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::memory_writable("stamp"),
    Need::source_event("poke"),
    Need::kernel(KernelActionCode::Yield),
];

fn main(info: Info<'static>) -> ! {
    let Some(stamp) = info.memory_region("stamp") else {
        panic!("pinger: no memory \"stamp\"");
    };
    let Some(poke) = info.source_event("poke") else {
        panic!("pinger: no source event \"poke\"");
    };
    let kernel = info.kernel();
    let mut frame = 0u64;
    loop {
        frame = frame.wrapping_add(1);
        if frame.is_multiple_of(2) {
            if stamp.store(0, rdtsc(), Ordering::Release).is_err() {
                panic!("pinger: stamp not writable");
            }
            raise(poke);
        }
        if kernel.yield_now().is_err() {
            panic!("pinger: the policy grants no yield");
        }
    }
}
