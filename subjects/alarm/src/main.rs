//! Alarm: arms its timed event, waits for it, and prints how late it came.
//!
//! [`ROUNDS`] times it writes a TSC deadline [`AHEAD_US`] microseconds
//! ahead into its timed-event page (`timer`), then loops on the typed
//! `wait` (its kernel `sleep` event). The kernel marks target event `alarm`
//! pending once the deadline has passed and wakes it. On each wake-up it
//! prints `alarm: round <r> fired, lateness <c> cycles, page disarmed`
//! (lateness: the TSC on return from `wait` minus the deadline), or a
//! line with `EARLY` (woken before the deadline: a second trigger of an
//! earlier arming, or a trigger before its time), `still armed` (the
//! kernel did not disarm the page) or `without alarm` (woken by something
//! else). Then it prints the largest lateness and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::needs::Need;
use septum_sdk::timed::{DISARMED, TimedEvent};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::uart("uart"),
    Need::target_event("alarm"),
    Need::memory_writable("timer"),
    Need::kernel(KernelActionCode::Sleep),
    Need::kernel(KernelActionCode::Poweroff),
];

/// Deadlines to arm.
const ROUNDS: u32 = 5;
/// How far ahead each deadline lies, in microseconds.
const AHEAD_US: u64 = 1500;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("alarm: no UART \"uart\"");
    };
    uart.init();
    let Some(alarm) = info.target_event("alarm") else {
        panic!("alarm: no target event \"alarm\"");
    };
    let Some(page) = info.memory_region("timer") else {
        panic!("alarm: no memory \"timer\"");
    };
    let timer = TimedEvent::new(page);
    let kernel = info.kernel();
    let ahead = info.tsc_khz().saturating_mul(AHEAD_US) / 1000;
    let _ = writeln!(uart, "alarm: {ROUNDS} rounds, {ahead} cycles ahead");
    let mut worst = 0u64;
    for round in 1..=ROUNDS {
        let deadline = rdtsc().saturating_add(ahead);
        if timer.arm(deadline).is_err() {
            panic!("alarm: timer page not writable");
        }
        let Ok(pending) = kernel.wait() else {
            panic!("alarm: the policy grants no sleep event");
        };
        let now = rdtsc();
        let page = timer.deadline().unwrap_or(0);
        if !pending.has(alarm) {
            let _ = writeln!(uart, "alarm: round {round} woken without alarm");
        } else if now < deadline {
            let _ = writeln!(uart, "alarm: round {round} EARLY by {}", deadline - now);
        } else if page != DISARMED {
            let _ = writeln!(uart, "alarm: round {round} fired, page still armed");
        } else {
            let late = now - deadline;
            worst = worst.max(late);
            let _ = writeln!(
                uart,
                "alarm: round {round} fired, lateness {late} cycles, page disarmed"
            );
        }
    }
    let _ = writeln!(uart, "alarm: max lateness {worst} cycles");
    let _ = writeln!(uart, "alarm: done");
    let _ = kernel.poweroff();
    loop {
        core::hint::spin_loop();
    }
}
