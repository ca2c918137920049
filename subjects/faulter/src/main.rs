//! Faulter: runs a few times, then panics, under the default
//! `onFault="stopSystem"`.
//!
//! The SDK's panic handler executes `ud2`; the kernel must report the
//! fault naming this subject, print `system stopped (fail-closed)` and run
//! nothing afterwards. The runs before the panic let the rest of the system
//! show that it was alive.
#![no_std]
#![no_main]

use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

/// Runs before the fault.
const RUNS_BEFORE_FAULT: u32 = 3;

fn main(info: Info<'static>) -> ! {
    let pause = info.source_event("yield");
    for _ in 0..RUNS_BEFORE_FAULT {
        match pause {
            Some(event) => raise(event),
            None => core::hint::spin_loop(),
        }
    }
    panic!("faulter: deliberate fault");
}
