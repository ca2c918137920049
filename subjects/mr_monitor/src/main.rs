//! The monitor of the monitor-and-restart test
//! (systems/monitor_restart.xml): a monitored subject that is reset while
//! trapped comes back untrapped (docs/kernel.md, "Monitors and restarts").
//!
//! It owns COM1. It resumes `mr_target`, whose first trap is its start
//! mark. It then writes into the state page the registers that would
//! resume the target past that mark, raises `reset` (the target's
//! `<reset/>` event) and resumes it: the target must start again from its
//! entry (trap 2: the start mark again), not from the page (which would
//! make trap 2 the "again" mark). It resumes that one past the mark (trap 3:
//! "again", so the page is loaded again once the subject is trapped
//! normally), checks the kernel's trap count went on across the restart
//! (1, 2, 3: the page is the monitor's, a restart leaves it), prints
//! `monitor_restart: PASSED` (or `FAILED`) and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::event::raise;
use septum_sdk::monitor::{Gpr, Monitored, STATE_MAGIC, SubjectState};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

/// Mark tags (RDI of the target's `ud2` marks), shared with `mr_target`.
const MARK_START: u64 = 0x57a7;
const MARK_AGAIN: u64 = 0xa6a1;
/// VT-x basic exit reason of an exception (the `ud2` of a mark).
const EXCEPTION: u16 = 0;
/// Invalid opcode.
const INVALID_OPCODE: u8 = 6;

/// Whether `state` is trap number `traps`, a mark with `tag`.
fn is_mark(state: &SubjectState, traps: u64, tag: u64) -> bool {
    state.magic == STATE_MAGIC
        && state.traps == traps
        && state.basic_exit_reason() == EXCEPTION
        && state.vector() == Some(INVALID_OPCODE)
        && state.gpr(Gpr::Rdi) == tag
}

fn main(info: Info<'static>) -> ! {
    let Some(uart) = Uart::from_info(&info, "uart") else {
        septum_sdk::arch::invalid_opcode()
    };
    uart.init();
    let mut out = uart;
    let (Some(target), Some(reset)) = (
        Monitored::open(&info, "target", "resume"),
        info.source_event("reset"),
    ) else {
        let _ = writeln!(
            out,
            "monitor_restart: FAILED: no state page, resume or reset"
        );
        power_off(&info, &out)
    };
    let mut passed = true;
    let mut check = |out: &mut Uart, n: u64, tag: u64, name: &str| -> Option<SubjectState> {
        let state = target.state().ok()?;
        let ok = is_mark(&state, n, tag);
        let _ = writeln!(
            out,
            "monitor_restart: trap {n}: {} ({name}): rdi={:#x} traps={}",
            if ok { "ok" } else { "FAIL" },
            state.gpr(Gpr::Rdi),
            state.traps
        );
        passed &= ok;
        Some(state)
    };

    target.resume();
    let Some(mut first) = check(&mut out, 1, MARK_START, "start") else {
        let _ = writeln!(out, "monitor_restart: FAILED: state page unreadable");
        power_off(&info, &out)
    };
    // What would resume it past the start mark: a restart must ignore it.
    first.rip = first.gpr(Gpr::R15);
    let _ = target.set_state(&first);
    let _ = writeln!(out, "monitor_restart: resetting the trapped target");
    raise(reset);
    target.resume();
    if let Some(mut second) = check(&mut out, 2, MARK_START, "start again after the reset") {
        second.rip = second.gpr(Gpr::R15);
        let _ = target.set_state(&second);
        target.resume();
        let _ = check(&mut out, 3, MARK_AGAIN, "resumed past the mark");
    }
    let _ = writeln!(
        out,
        "monitor_restart: {}",
        if passed { "PASSED" } else { "FAILED" }
    );
    power_off(&info, &out)
}

fn power_off(info: &Info<'static>, uart: &Uart) -> ! {
    uart.flush();
    let kernel = septum_sdk::Kernel::from_info(info);
    let _ = kernel.poweroff();
    loop {
        let _ = kernel.event(KernelActionCode::Yield);
        core::hint::spin_loop();
    }
}
