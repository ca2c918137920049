//! Typo: the integrator's mistake that the composer cannot see.
//!
//! It looks up its source event by a misspelt name (`pasue`; the policy
//! calls it `pause`) that it does not declare in `needs!`, so the lookup
//! fails only at run time, in its second run, and it panics. The panic's text
//! and location must reach the debug console
//! (`septum: subject "typo" panicked at typo/src/main.rs:LINE: ...`,
//! docs/kernel.md "Subject panics") before its `onFault` action applies.
#![no_std]
#![no_main]

use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let kernel = info.kernel();
    // One run that works, so the test sees the panic come later.
    let _ = kernel.yield_now();
    let Some(pause) = info.source_event("pasue") else {
        panic!("no source event \"pasue\" in the policy");
    };
    loop {
        raise(pause);
    }
}
