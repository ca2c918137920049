//! FPU isolation, the marking side: leaves distinctive x87 state and
//! checks that it survives every switch to other subjects.
//!
//! At start it loads control word [`MARK_FCW`] (round up, extended
//! precision, all exceptions masked) and pushes and pops [`MARK_VALUE`], so
//! a physical x87 register keeps the value. It reads its whole x87 state
//! (`fxsave`) once and then, each time it runs again, compares: the kernel
//! must have saved and restored it across the other subjects' frames.
//! Lines go to the victim (COM1) over the `report` channel:
//! `fpu_mark: kept run N` or `fpu_mark: CHANGED ...`.
#![no_std]
#![no_main]

use septum_sdk::{Info, probe};

septum_sdk::entry!(main);

/// Control word unlike FNINIT's `0x037f`: rounding control 10 (up).
/// Precision stays extended so the 64-bit value loads exactly.
pub const MARK_FCW: u16 = 0x0b7f;

/// The value left in the x87 unit.
pub const MARK_VALUE: i64 = 0x5e97_a11e_d0c5_f00d;

/// Runs checked before parking.
const RUNS: u32 = 6;

fn main(info: Info<'static>) -> ! {
    let mut report = attacker::Report::open(&info);
    probe::x87_mark(MARK_FCW, MARK_VALUE);
    let mine = probe::x87_state();
    report.say(format_args!(
        "fpu_mark: marked fcw={:#06x} st7={:#018x}",
        mine.fcw,
        mine.significand(7).unwrap_or(0)
    ));
    let pause = info.source_event("yield");
    for run in 1..=RUNS {
        if let Some(event) = pause {
            septum_sdk::raise(event);
        }
        let now = probe::x87_state();
        if now == mine {
            report.say(format_args!("fpu_mark: kept run {run}"));
        } else {
            report.say(format_args!(
                "fpu_mark: CHANGED fcw={:#06x} st7={:#018x} run {run}",
                now.fcw,
                now.significand(7).unwrap_or(0)
            ));
        }
    }
    attacker::park(&info)
}
