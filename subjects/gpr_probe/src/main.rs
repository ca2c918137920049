//! Register isolation: every general-purpose register of a subject (RSP and
//! RIP are in the VMCS) holds, after its `vmcall` returns, exactly what it
//! held before, whatever other subjects ran on the CPU meanwhile, and a
//! woken sleeper gets its pending events in its own RAX, not in the
//! waker's (docs/kernel.md, "Register frames in place").
//!
//! Each subject's registers live in its own frame slot and a subject
//! switch only changes which slot the kernel pops at entry; a slot left
//! loaded by mistake would hand one subject's registers to another. Every
//! role fills RCX..R15 (RBX, RBP included) with markers of its own around
//! each hypercall (`septum_sdk::probe::gpr_mark`) and checks them, and RAX,
//! right after it. The same binary plays four roles of the `gpr_isolation`
//! system, chosen by the resources its policy grants:
//!
//! - *alpha* (owns COM1): each run switches to sigma (`switch` event) and
//!   back, then pokes beta (`async`) and sleeps, so the kernel switches to
//!   beta with a wake and back to alpha with a wake. Counts its checks and
//!   prints `gpr: clean over N switches and N wakes`, or a `gpr: LEAK`
//!   line per mismatch;
//! - *sigma* (`back`, a `switch` event): switches back to alpha, forever;
//! - *beta* (`nap` and `poke`): sleeps, must wake with exactly its `poked`
//!   bit in RAX, pokes alpha, sleeps again;
//! - *gamma* (`yield`, in its own partition): yields, so every frame
//!   boundary moves from its registers to alpha's group and back.
//!
//! A role without COM1 that finds a mismatch panics with `gpr LEAK` in its
//! message (the kernel prints the panic text on its console).
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::probe::{GprSeen, gpr_mark};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, SourceEventId};

septum_sdk::entry!(main);

/// Alpha's runs (each a switch round trip and a wake round trip).
const RUNS: u64 = 300;
/// Markers per role (the run number goes in bits 8..).
const ALPHA: u64 = 0xa1fa_0000_0000_0000;
const SIGMA: u64 = 0x5160_0000_0000_0000;
const BETA: u64 = 0xbe7a_0000_0000_0000;
const GAMMA: u64 = 0x6a77_0000_0000_0000;

/// One hypercall `event` with the registers marked from `seed`.
fn marked(event: SourceEventId, seed: u64) -> GprSeen {
    gpr_mark(u64::from(event.get()), seed)
}

/// A role without COM1: `event` forever, each return checked (RAX must be
/// `expected_rax(event number)`), a mismatch ends in a panic.
fn loop_checked(role: u64, event: SourceEventId, expected_rax: impl Fn(u64) -> u64) -> ! {
    let number = u64::from(event.get());
    let mut run: u64 = 0;
    loop {
        run = run.wrapping_add(1);
        let seed = role | run << 8;
        let seen = marked(event, seed);
        let wrong = seen.mismatches(seed);
        let rax = expected_rax(number);
        if wrong != 0 || seen.rax != rax {
            panic!(
                "gpr LEAK run {run}: {wrong} registers, rax {:#x} (expected {rax:#x}), rcx {:#x}",
                seen.rax, seen.regs[0]
            );
        }
    }
}

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        if let Some(back) = info.source_event("back") {
            // Sigma: a `switch` returns with RAX unchanged.
            loop_checked(SIGMA, back, |number| number);
        }
        if let (Some(nap), Some(poke), Some(poked)) = (
            info.source_event("nap"),
            info.source_event("poke"),
            info.target_event("poked"),
        ) {
            // Beta: every `nap` returns with exactly its `poked` bit (its
            // `nap` is source event 0, never a valid result).
            let bit = 1u64 << poked.id.get();
            let mut run: u64 = 0;
            loop {
                run = run.wrapping_add(1);
                let seed = BETA | run << 8;
                let seen = marked(nap, seed);
                let wrong = seen.mismatches(seed);
                if wrong != 0 || seen.rax != bit {
                    panic!(
                        "gpr LEAK wake {run}: {wrong} registers, rax {:#x} (expected {bit:#x})",
                        seen.rax
                    );
                }
                septum_sdk::raise(poke);
            }
        }
        if let Some(pause) = info.source_event("yield") {
            loop_checked(GAMMA, pause, |number| number);
        }
        loop {
            core::hint::spin_loop();
        }
    };
    uart.init();
    let (Some(to_sigma), Some(poke), Some(nap), Some(poked), Some(off)) = (
        info.source_event("to_sigma"),
        info.source_event("poke"),
        info.source_event("nap"),
        info.target_event("poked"),
        info.source_event("poweroff"),
    ) else {
        let _ = writeln!(uart, "gpr: policy lacks an event");
        uart.flush();
        loop {
            core::hint::spin_loop();
        }
    };
    let bit = 1u64 << poked.id.get();
    // Every target event alpha has: what a wake may return.
    let mask = info
        .target_event("from_sigma")
        .map_or(0, |event| 1u64 << event.id.get())
        | bit;
    if nap.get() != 0 {
        // A wake's result written into another frame would leave RAX the
        // `nap` number; as 0 it is never a valid result.
        let _ = writeln!(uart, "gpr: policy lacks nap as source event 0");
    }
    let mut leaks: u32 = 0;
    let mut switches: u64 = 0;
    let mut wakes: u64 = 0;
    for run in 1..=RUNS {
        let seed = ALPHA | run << 8;
        let seen = marked(to_sigma, seed);
        let wrong = seen.mismatches(seed);
        if wrong != 0 || seen.rax != u64::from(to_sigma.get()) {
            leaks += 1;
            let _ = writeln!(
                uart,
                "gpr: LEAK after switch {run}: {wrong} registers, rax {:#x} rcx {:#x}",
                seen.rax, seen.regs[0]
            );
        } else {
            switches += 1;
        }
        septum_sdk::raise(poke);
        // Sleep until beta's poke: sigma's `switch` leaves its own bit
        // pending, which a sleep takes at once (with the poke, if both are
        // set). Every result is a non-empty subset of alpha's events.
        let mut nap_run: u64 = 0;
        loop {
            nap_run += 1;
            let seed = seed | 0x80 | nap_run << 4;
            let seen = marked(nap, seed);
            let wrong = seen.mismatches(seed);
            if wrong != 0 || seen.rax == 0 || seen.rax & !mask != 0 || nap_run > 2 {
                leaks += 1;
                let _ = writeln!(
                    uart,
                    "gpr: LEAK after wake {run}: {wrong} registers, rax {:#x} (events {mask:#x}) rcx {:#x}",
                    seen.rax, seen.regs[0]
                );
                break;
            }
            if seen.rax & bit != 0 {
                wakes += 1;
                break;
            }
        }
    }
    if leaks == 0 {
        let _ = writeln!(
            uart,
            "gpr: clean over {switches} switches and {wakes} wakes"
        );
    }
    let _ = writeln!(uart, "gpr: done");
    uart.flush();
    loop {
        septum_sdk::raise(off);
    }
}
