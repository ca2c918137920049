//! Ponger: spins with interrupts enabled and measures how soon the
//! pinger's `ipi` event reaches it from another CPU.
//!
//! Its target event `poke` injects a vector (`<inject_interrupt>`). The
//! handler reads the TSC; the main loop then reads the pinger's TSC just
//! before its raise (word 0 of the shared `stamp` region) and prints
//! `ponger: ipi <n> seen after <c> cycles`. It runs without any exit of
//! its own through its whole minor frame: without the IPI the vector would
//! only be injected at its next frame (a frame later). After [`ROUNDS`]
//! it prints the largest latency and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use septum_sdk::needs::Need;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, interrupt, rdtsc};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs").
septum_sdk::needs![
    Need::uart("uart"),
    Need::target_event("poke"),
    Need::memory("stamp"),
    Need::kernel(KernelActionCode::Poweroff),
];

/// Pokes to measure.
const ROUNDS: u64 = 5;

/// TSC at the latest injection of the `poke` vector.
static SEEN_AT: AtomicU64 = AtomicU64::new(0);
/// Injections of the `poke` vector.
static SEEN: AtomicU64 = AtomicU64::new(0);

fn on_poke(_vector: u8) {
    SEEN_AT.store(rdtsc(), Ordering::Relaxed);
    SEEN.fetch_add(1, Ordering::Release);
}

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("ponger: no UART \"uart\"");
    };
    uart.init();
    let Some(vector) = info.target_event("poke").and_then(|t| t.vector) else {
        panic!("ponger: target event \"poke\" injects no vector");
    };
    let Some(stamp) = info.memory_region("stamp") else {
        panic!("ponger: no memory \"stamp\"");
    };
    let _ = writeln!(uart, "ponger: waiting for {ROUNDS} ipis");
    interrupt::register(vector, on_poke);
    interrupt::install();
    interrupt::enable();
    let mut handled = 0u64;
    let mut worst = 0u64;
    while handled < ROUNDS {
        let seen = SEEN.load(Ordering::Acquire);
        if seen == handled {
            core::hint::spin_loop();
            continue;
        }
        handled = seen;
        let at = SEEN_AT.load(Ordering::Relaxed);
        let sent = stamp.load(0, Ordering::Acquire).unwrap_or(0);
        let latency = at.saturating_sub(sent);
        worst = worst.max(latency);
        let _ = writeln!(uart, "ponger: ipi {handled} seen after {latency} cycles");
    }
    let _ = writeln!(uart, "ponger: max latency {worst} cycles");
    let _ = info.kernel().poweroff();
    loop {
        core::hint::spin_loop();
    }
}
