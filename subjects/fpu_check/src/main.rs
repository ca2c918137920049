//! FPU isolation, the checking side: its x87 state must be the initial one
//! (FNINIT's) at start and stay so, although `fpu_mark` runs just before it
//! on the same CPU with different x87 state.
//!
//! At start it reports its state (`fpu_check: start fcw=.. fsw=.. ftw=..
//! regs zero|DIRTY`): FNINIT's is control word `0x037f`, status word 0,
//! every register tagged empty, and every register's contents zero (the
//! machine's reset value, which FNINIT keeps). Each time it runs again the
//! state must be exactly the one it started with and the registers zero:
//! a register the kernel failed to restore would show `fpu_mark`'s value
//! even though it is tagged empty. It reports over its `report` channel to
//! the victim (COM1): `fpu_check: clean run N` or `fpu_check: LEAK ...`.
#![no_std]
#![no_main]

use septum_sdk::Info;
use septum_sdk::probe::{self, X87State};

septum_sdk::entry!(main);

/// Runs checked before parking.
const RUNS: u32 = 6;

/// The first register with non-zero contents, and its significand.
fn first_dirty(state: &X87State) -> Option<(usize, u64)> {
    (0..8).find_map(|i| {
        let dirty = state.regs.get(i)?.iter().any(|&b| b != 0);
        dirty.then(|| (i, state.significand(i).unwrap_or(0)))
    })
}

fn main(info: Info<'static>) -> ! {
    let mut report = attacker::Report::open(&info);
    let start = probe::x87_state();
    let dirty = first_dirty(&start);
    report.say(format_args!(
        "fpu_check: start fcw={:#06x} fsw={:#06x} ftw={:#04x} {}",
        start.fcw,
        start.fsw,
        start.ftw,
        if dirty.is_none() {
            "regs zero"
        } else {
            "regs DIRTY"
        }
    ));
    if let Some((reg, value)) = dirty {
        report.say(format_args!(
            "fpu_check: LEAK st{reg}={value:#018x} at start"
        ));
    }
    let pause = info.source_event("yield");
    for run in 1..=RUNS {
        if let Some(event) = pause {
            septum_sdk::raise(event);
        }
        let now = probe::x87_state();
        match first_dirty(&now) {
            None if now == start => report.say(format_args!("fpu_check: clean run {run}")),
            None => report.say(format_args!(
                "fpu_check: LEAK fcw={:#06x} fsw={:#06x} ftw={:#04x} run {run}",
                now.fcw, now.fsw, now.ftw
            )),
            Some((reg, value)) => report.say(format_args!(
                "fpu_check: LEAK st{reg}={value:#018x} run {run}"
            )),
        }
    }
    attacker::park(&info)
}
