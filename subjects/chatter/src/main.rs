//! Chatter: a subject that only logs, to show the debug server.
//!
//! Each run it writes `run <n>` into its log channel `log` (the SDK's
//! [`septum_sdk::log::Log`]) and yields; after [`RUNS`] runs it logs `done`.
//! If the policy grants it `poweroff`, it powers the machine off one run
//! later, so that the debug server (scheduled after it) has printed its
//! last line. It owns no UART: the debug server prints its lines, prefixed
//! with its name.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::needs::Need;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![Need::log("log"), Need::kernel(KernelActionCode::Yield)];

/// Runs that log `run <n>`.
const RUNS: u32 = 5;

fn main(info: Info<'static>) -> ! {
    let Some(mut log) = info.log("log") else {
        panic!("chatter: no log channel \"log\"");
    };
    let kernel = info.kernel();
    for run in 0..RUNS {
        let _ = writeln!(log, "run {run}");
        let _ = kernel.yield_now();
    }
    let _ = writeln!(log, "done");
    let _ = kernel.yield_now();
    let _ = kernel.poweroff();
    loop {
        let _ = kernel.yield_now();
    }
}
