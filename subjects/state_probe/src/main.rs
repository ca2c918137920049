//! State isolation: architectural state that is not in the VMCS and that a
//! native subject can write without an exit must not carry anything from
//! one subject to the next on the same CPU.
//!
//! The one such register besides the general-purpose and x87 registers
//! (covered by the `fpu` test) is CR2: MOV to and from CR2 does not exit in
//! VMX non-root mode (docs/kernel.md, "Architectural state per subject").
//! The same binary plays both roles of the `state` system:
//!
//! - the *writer* (no `uart` device) writes a marker of its own into CR2
//!   every time it runs, then yields;
//! - the *reader* (owns COM1) runs right after the writer on the same CPU.
//!   At start its CR2 must be zero (nothing was ever written by it); every
//!   run it writes a marker of its own, yields, and must find exactly that
//!   marker again when it runs next, not the writer's. It prints
//!   `state: cr2 clean over N runs` or a `state: cr2 LEAK ...` line per
//!   mismatch, then powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::probe::{read_cr2, write_cr2};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

/// Runs the reader checks (one per major frame).
const RUNS: u64 = 8;
/// The writer's marker (its run number in the low bits).
const WRITER_MARK: u64 = 0xdead_0000_0000_0000;
/// The reader's marker (its run number in the low bits).
const READER_MARK: u64 = 0x5afe_0000_0000_0000;

fn main(info: Info<'static>) -> ! {
    let pause = info.source_event("yield");
    let yield_frame = || match pause {
        Some(event) => raise(event),
        None => core::hint::spin_loop(),
    };
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        // The writer.
        let mut run: u64 = 0;
        loop {
            run = run.wrapping_add(1);
            write_cr2(WRITER_MARK | run);
            yield_frame();
        }
    };
    uart.init();
    let mut leaks: u32 = 0;
    let start = read_cr2();
    if start == 0 {
        let _ = writeln!(uart, "state: cr2 zero at start");
    } else {
        leaks += 1;
        let _ = writeln!(uart, "state: cr2 LEAK at start value={start:#018x}");
    }
    for run in 1..=RUNS {
        let mark = READER_MARK | run;
        write_cr2(mark);
        // Give the CPU to the writer: it runs next and writes its own CR2.
        yield_frame();
        let seen = read_cr2();
        if seen != mark {
            leaks += 1;
            let _ = writeln!(
                uart,
                "state: cr2 LEAK run {run} expected={mark:#018x} seen={seen:#018x}"
            );
        }
    }
    if leaks == 0 {
        let _ = writeln!(uart, "state: cr2 clean over {RUNS} runs");
    }
    let _ = writeln!(uart, "state: done");
    uart.flush();
    let poweroff = info.source_event("poweroff");
    loop {
        match poweroff {
            Some(event) => raise(event),
            None => core::hint::spin_loop(),
        }
    }
}
