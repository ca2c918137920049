//! State isolation: architectural state that is not in the VMCS and that a
//! native subject can write without an exit must not carry anything from
//! one subject to the next on the same CPU.
//!
//! Two such registers besides the general-purpose and x87 registers
//! (covered by the `fpu` test) are checked here (docs/kernel.md,
//! "Architectural state per subject"):
//!
//! - CR2: MOV to and from CR2 does not exit in VMX non-root mode;
//! - the x87 last-instruction state (FOP, FIP, FDP), which every x87
//!   instruction with a memory operand sets: the writer runs one each
//!   time, the reader never does, so its own stay those of FNINIT (0);
//! - MXCSR and XMM0, loaded by the subject's own FXRSTOR (no exit, and no
//!   CR4.OSFXSR needed for MXCSR on Bochs) and read back by its FXSAVE.
//!   Where the implementation does not load or store the XMM registers
//!   with CR4.OSFXSR clear (Bochs), the XMM0 check cannot see anything;
//!   where it does, the kernel's FXSAVE (root mode runs with CR4.OSFXSR
//!   set) keeps them per subject.
//!
//! The same binary plays both roles of the `state` system:
//!
//! - the *writer* (no `uart` device) writes markers of its own into CR2,
//!   MXCSR and XMM0 and runs an x87 load and store every time it runs,
//!   then yields;
//! - the *reader* (owns COM1) runs right after the writer on the same CPU.
//!   At start its CR2 must be zero, its MXCSR the reset value `0x1f80` and
//!   its XMM0 zero (nothing was ever written by it); every run it writes
//!   markers of its own, yields, and must find exactly those markers again
//!   when it runs next, not the writer's. It prints
//!   `state: cr2 clean over N runs`, `state: x87 pointers clean over N
//!   runs`, `state: mxcsr and xmm0 clean over N runs` or a
//!   `state: ... LEAK ...` line per mismatch, then powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::arch_state::{fx_restore, fx_save};
use septum_sdk::probe::{read_cr2, write_cr2, x87_mark};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

/// Runs the reader checks (one per major frame).
const RUNS: u64 = 8;
/// The writer's marker (its run number in the low bits).
const WRITER_MARK: u64 = 0xdead_0000_0000_0000;
/// The reader's marker (its run number in the low bits).
const READER_MARK: u64 = 0x5afe_0000_0000_0000;
/// The writer's x87 control word (round up).
const WRITER_FCW: u16 = 0x0b7f;
/// MXCSR at reset: every exception masked, round to nearest.
const MXCSR_RESET: u32 = 0x1f80;
/// The writer's MXCSR: flush to zero, round toward zero, denormals are
/// zero, every exception masked.
const WRITER_MXCSR: u32 = 0xffc0;
/// The reader's MXCSR: round down, every exception masked.
const READER_MXCSR: u32 = 0x3f80;

/// Loads `mxcsr` and the low half of XMM0 with `xmm0` through FXRSTOR,
/// the x87 state as it is.
fn write_sse(mxcsr: u32, xmm0: u64) {
    let mut image = fx_save();
    image.set_mxcsr(mxcsr);
    image.set_xmm0(xmm0);
    fx_restore(&image);
}

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
            write_sse(WRITER_MXCSR, WRITER_MARK | run);
            // Sets FOP, FIP and FDP (and leaves a value in the x87 unit).
            x87_mark(WRITER_FCW, 0x5eed);
            yield_frame();
        }
    };
    uart.init();
    let mut leaks: u32 = 0;
    let mut sse_leaks: u32 = 0;
    let mut x87_leaks: u32 = 0;
    let start = read_cr2();
    if start == 0 {
        let _ = writeln!(uart, "state: cr2 zero at start");
    } else {
        leaks += 1;
        let _ = writeln!(uart, "state: cr2 LEAK at start value={start:#018x}");
    }
    let image = fx_save();
    let pointers = image.x87_pointers();
    if pointers == (0, 0, 0) {
        let _ = writeln!(uart, "state: x87 pointers zero at start");
    } else {
        x87_leaks += 1;
        let _ = writeln!(uart, "state: x87 pointers LEAK at start {pointers:x?}");
    }
    let (mxcsr, xmm0) = (image.mxcsr(), image.xmm0());
    if mxcsr == MXCSR_RESET && xmm0 == 0 {
        let _ = writeln!(uart, "state: mxcsr reset and xmm0 zero at start");
    } else {
        sse_leaks += 1;
        let _ = writeln!(
            uart,
            "state: mxcsr/xmm0 LEAK at start mxcsr={mxcsr:#x} xmm0={xmm0:#018x}"
        );
    }
    for run in 1..=RUNS {
        let mark = READER_MARK | run;
        write_cr2(mark);
        write_sse(READER_MXCSR, mark);
        // Give the CPU to the writer: it runs next and writes its own CR2,
        // MXCSR and XMM0.
        yield_frame();
        let seen = read_cr2();
        if seen != mark {
            leaks += 1;
            let _ = writeln!(
                uart,
                "state: cr2 LEAK run {run} expected={mark:#018x} seen={seen:#018x}"
            );
        }
        let image = fx_save();
        let pointers = image.x87_pointers();
        if pointers != (0, 0, 0) {
            x87_leaks += 1;
            let _ = writeln!(uart, "state: x87 pointers LEAK run {run} {pointers:x?}");
        }
        let (mxcsr, xmm0) = (image.mxcsr(), image.xmm0());
        // XMM0 reads back as 0 where FXSAVE skips it (CR4.OSFXSR clear);
        // the writer's marker must never show.
        if mxcsr != READER_MXCSR || (xmm0 != mark && xmm0 != 0) {
            sse_leaks += 1;
            let _ = writeln!(
                uart,
                "state: mxcsr/xmm0 LEAK run {run} mxcsr={mxcsr:#x} xmm0={xmm0:#018x}"
            );
        }
    }
    if leaks == 0 {
        let _ = writeln!(uart, "state: cr2 clean over {RUNS} runs");
    }
    if x87_leaks == 0 {
        let _ = writeln!(uart, "state: x87 pointers clean over {RUNS} runs");
    }
    if sse_leaks == 0 {
        let _ = writeln!(uart, "state: mxcsr and xmm0 clean over {RUNS} runs");
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
