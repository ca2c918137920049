//! The monitored subject of the monitor-and-restart test
//! (systems/monitor_restart.xml): it reports its start to its monitor with
//! a trap (`ud2` mark [`MARK_START`]), then marks [`MARK_AGAIN`] forever.
//!
//! Its monitor resets it while it is trapped at the start mark, and leaves
//! in its state page the registers that would resume it past the mark. A
//! restart that comes back untrapped starts from the entry again, so the
//! next trap is another start mark; one that loaded the page would go on
//! to [`MARK_AGAIN`]. Everything it knows is in registers: a restart gives
//! its memory its boot content anyway.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

/// Mark tags (RDI of the `ud2` mark), shared with `mr_monitor`.
const MARK_START: u64 = 0x57a7;
const MARK_AGAIN: u64 = 0xa6a1;

fn main(_info: Info<'static>) -> ! {
    probe::mark(MARK_START, 0);
    loop {
        probe::mark(MARK_AGAIN, 0);
    }
}
