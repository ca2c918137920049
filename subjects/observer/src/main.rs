//! Timing silence: the first instruction of a minor frame runs at the same
//! offset from the frame boundary whatever the previous partition did.
//!
//! The same binary plays both roles of the `silence` system, whose plan on
//! CPU 0 is `neighbour` then `observer`, one minor frame each:
//!
//! - the *neighbour* (no `uart` device) behaves differently in each of its
//!   frames ([`Behaviour`]): it spins until the timer takes the CPU away,
//!   yields at once, sleeps (`wait`), makes thousands of hypercalls (so the
//!   deadline falls inside the hypercall path, at a different point every
//!   frame), and in its last frame faults (`onFault="stopSubject"`), after
//!   which its frames idle;
//! - the *observer* (owns COM1) yields at once in every frame and reads the
//!   TSC as soon as its `yield` returns, which is the first thing it does in
//!   its next frame. Its frames start exactly `P` (the major frame, from
//!   the info page) apart, so with a constant-time transition the resume
//!   times are exactly `resume_1 + (j - 1) * P`: in Bochs, where the TSC
//!   counts instructions, any difference is a difference in what the kernel
//!   did. It prints `observer: offsets identical over N frames` or one
//!   `observer: offset DIFFERS ...` line per frame that deviates, and its
//!   resume offset from the boundary, measured against the end of its first
//!   frame (which it spins through, so the timer ends it).
//!
//! The observer also raises `kick` (async, the neighbour's target event)
//! every frame: the neighbour's `wait` needs an event to return.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// Observer frames measured (resumes after the first).
const FRAMES: usize = 20;
/// The neighbour's frame in which it faults (it is stopped after it).
const FAULT_FRAME: u64 = 16;
/// A gap between two TSC reads above this many cycles means the subject
/// was off the CPU (the loops between reads are a few dozen instructions
/// at most, a hypercall a few hundred).
const GAP: u64 = 2000;
/// The observer's minor frame in plan ticks (see `silence.xml`).
const OBSERVER_TICKS: u64 = 2;
/// The plan's tick rate (see `silence.xml`).
const TICK_RATE_HZ: u64 = 1000;
/// An event number no subject of `silence.xml` has: a hypercall the
/// kernel ignores, but an exit all the same.
const UNDEFINED_EVENT: u64 = 63;

fn main(info: Info<'static>) -> ! {
    match Uart::from_info(&info, "uart") {
        Some(uart) => observe(&info, uart),
        None => neighbour(&info),
    }
}

/// What the neighbour does in one of its frames.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Spin until the preemption timer ends the frame.
    Spin,
    /// Yield at once: the CPU idles in root mode until the boundary.
    Yield,
    /// Sleep (`wait`): the CPU idles, the sleeper stays asleep.
    Sleep,
    /// Hypercalls in a loop with `n` spin turns between them, until the
    /// frame ends: the deadline falls inside the kernel's hypercall path
    /// or just after it.
    Hypercalls(u64),
    /// An invalid opcode: a fault, which stops the neighbour.
    Fault,
}

fn behaviour(frame: u64) -> Behaviour {
    if frame == FAULT_FRAME {
        return Behaviour::Fault;
    }
    match frame % 4 {
        0 => Behaviour::Spin,
        1 => Behaviour::Yield,
        2 => Behaviour::Sleep,
        _ => Behaviour::Hypercalls(frame.wrapping_mul(7) % 23),
    }
}

/// Spins until the next gap in the TSC (the next frame of this subject),
/// running `between` at every turn.
fn until_next_frame(mut between: impl FnMut()) {
    let mut last = rdtsc();
    loop {
        between();
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP {
            return;
        }
        last = now;
    }
}

fn neighbour(info: &Info<'static>) -> ! {
    let kernel = info.kernel();
    let mut frame: u64 = 0;
    loop {
        match behaviour(frame) {
            Behaviour::Spin => until_next_frame(|| {}),
            Behaviour::Yield => {
                let _ = kernel.yield_now();
            }
            Behaviour::Sleep => loop {
                // A `kick` pending from an earlier frame makes `wait`
                // return at once; the second one sleeps.
                let before = rdtsc();
                if kernel.wait().is_err() || rdtsc().wrapping_sub(before) > GAP {
                    break;
                }
            },
            Behaviour::Hypercalls(turns) => until_next_frame(|| {
                for _ in 0..turns {
                    core::hint::black_box(rdtsc());
                }
                septum_sdk::probe::raw_hypercall(UNDEFINED_EVENT);
            }),
            Behaviour::Fault => septum_sdk::arch::invalid_opcode(),
        }
        frame = frame.wrapping_add(1);
    }
}

fn observe(info: &Info<'static>, mut uart: Uart) -> ! {
    uart.init();
    let kernel = info.kernel();
    let kick = info.source_event("kick");
    let Some(period) = info.major_frame_cycles().map(|p| p.get()) else {
        let _ = writeln!(uart, "observer: the info page has no major frame length");
        uart.flush();
        park(&kernel)
    };
    let own_frame = OBSERVER_TICKS
        .wrapping_mul(info.tsc_khz())
        .wrapping_mul(1000)
        / TICK_RATE_HZ;
    // First frame: spin through it, so its last TSC read lies within a
    // few instructions before its deadline.
    let mut last = rdtsc();
    loop {
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP {
            break;
        }
        last = now;
    }
    // `last` ~ end of frame 0; so frame 1 began at about last + P - own.
    let first_boundary = last.wrapping_add(period).wrapping_sub(own_frame);
    let mut resumes = [0u64; FRAMES];
    for slot in &mut resumes {
        if let Some(event) = kick {
            raise(event);
        }
        let _ = kernel.yield_now();
        *slot = rdtsc();
    }
    let first = resumes[0];
    let mut differing = 0u32;
    for (j, &resume) in (0u64..).zip(resumes.iter()) {
        let frame = j + 2;
        let expected = first.wrapping_add(j.wrapping_mul(period));
        let deviation = resume.wrapping_sub(expected) as i64;
        if frame >= FAULT_FRAME {
            // The kernel prints the fault report synchronously on its
            // debug console: a known gap (docs/kernel.md).
            let _ = writeln!(
                uart,
                "observer: frame {frame} (neighbour faulted in frame {FAULT_FRAME}): {deviation:+} ticks"
            );
        } else if deviation != 0 {
            differing += 1;
            let _ = writeln!(
                uart,
                "observer: offset DIFFERS in frame {frame}: {deviation:+} ticks"
            );
        }
    }
    // Frame 1 is the one that ended the spin loop (resumes[0] is the
    // first yield's return, frame 2); frame 2's boundary is one P later.
    let boundary = first_boundary.wrapping_add(period);
    let offset = first.wrapping_sub(boundary) as i64;
    let _ = writeln!(
        uart,
        "observer: P={period} resume offset {offset} ticks after the boundary (to within the spin loop's few ticks)"
    );
    if differing == 0 {
        let _ = writeln!(
            uart,
            "observer: offsets identical over {} frames before the fault",
            FAULT_FRAME - 2
        );
    }
    let _ = writeln!(uart, "observer: done");
    uart.flush();
    let _ = kernel.poweroff();
    park(&kernel)
}

fn park(kernel: &septum_sdk::Kernel) -> ! {
    loop {
        if kernel.yield_now().is_err() {
            core::hint::spin_loop();
        }
    }
}
