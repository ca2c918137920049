//! Timing: shows from inside a subject that the cyclic plan does not drift.
//!
//! The kernel arms the VMX-preemption timer for absolute deadlines (major
//! frame start + minor frame end), so the start of major frame `k` is
//! exactly `start_0 + k * P`, however long the exits in between take. This
//! subject spins reading `rdtsc`; a jump between two consecutive reads of
//! more than [`GAP`] cycles means the CPU was taken away and has just been
//! given back, so the second read is a resume time. It records
//! [`FRAMES`]` + 1` resumes (it has one minor frame per major frame, so one
//! resume per major frame), then prints the periods between them and the
//! deviation of resume `k` from `resume_0 + k * P`. Exit and entry costs
//! are the same every frame, so with absolute deadlines the deviation stays
//! bounded; a kernel that re-armed relative to its exit time would add its
//! exit cost to every frame and the deviation would grow with `k`.
//!
//! `P` is the boot major frame's length in TSC cycles, which the composer
//! writes into the info page from the policy's plan, so the subject holds
//! no copy of the plan's numbers that could fall out of step with it. The
//! subject prints the `P` it read, and the test expects that exact value
//! (10 ticks at `tickRate` 1000 on a 10 000 kHz TSC): a composer that
//! computed it wrongly fails there, and a kernel that ran a different plan
//! would show periods that differ from `P` and a growing deviation.
//!
//! In Bochs the TSC advances one tick per instruction, so every number is
//! an exact, repeatable instruction count.
//!
//! The same binary is the plan's other subject: without a `uart` device it
//! is a load that spins through its whole minor frame, so both frame ends
//! of every major frame are preemption-timer exits.
//!
//! With a `yield` kernel event granted, the subject measures *frame
//! starts* instead: after each resume it spins through half of the time it
//! has (the major frame less its first off-CPU gap), then yields, so every
//! frame of it begins with its `yield` returning and the resume is read a
//! fixed number of instructions after the entry. Without the yield a
//! resume is read after the rest of the loop iteration the deadline cut,
//! 0 to about 10 instructions, and where the deadline falls in that loop
//! depends on how many exits the frame had (a device-interrupt storm's) and
//! on where Bochs ends its instruction traces (docs/kernel.md, "Why not
//! smaller"): that spread is the subject's own, not the transition's.
//! `irq_storm` and `level_*` measure this way and expect every period to be
//! exactly `P`; `timing` and `smp_timing` spin (their off-CPU gap is the
//! switch cost that `cargo xtask bench` reads).
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::uart::Uart;
use septum_sdk::{Info, Kernel, KernelActionCode, SourceEventId, raise, rdtsc};

septum_sdk::entry!(main);

/// Major frames measured.
const FRAMES: usize = 30;
/// A gap between consecutive `rdtsc` reads above this many cycles is a
/// deschedule: the spin loop's body is a handful of instructions, the
/// shortest time off the CPU is the load's frame (60 000 cycles).
const GAP: u64 = 1000;
/// Largest deviation (cycles) from `resume_0 + k * P` accepted as no drift.
/// Measured in Bochs: deviation 0 on one CPU (the first entry of a frame is
/// made at a fixed time after its boundary, docs/kernel.md "Constant-time
/// frame transitions"), -5 to 5 on an application processor (the
/// major-frame barrier); before that entry was padded, -8 to 2 cycles. The
/// bound is well below one major frame's switch overhead (742 cycles: the
/// off-CPU gap minus the load's 60 000-cycle frame; 362 before the pad),
/// so a kernel whose frame ends slipped by its exit cost would exceed it
/// within the first frame.
const DEVIATION_BOUND: u64 = 64;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        // The load: never yields, so its frame ends by the timer.
        loop {
            core::hint::black_box(rdtsc());
        }
    };
    uart.init();
    let poweroff = info.source_event("poweroff");
    let tsc_khz = info.tsc_khz();
    let Some(period) = info.major_frame_cycles().map(|p| p.get()) else {
        // Nothing to measure against: say so, and stop without a verdict.
        let _ = writeln!(uart, "timing: the info page has no major frame length");
        uart.flush();
        power_off(poweroff);
    };
    let _ = writeln!(uart, "timing: tsc_khz={tsc_khz} major frame P={period}");
    uart.flush();

    let (resumes, gaps) = measure(&info.kernel(), period);
    let stats = Stats::of(&resumes, &gaps, period);
    let _ = writeln!(
        uart,
        "timing: P={period} periods min={} max={} max_deviation={} over {FRAMES} frames",
        stats.period_min, stats.period_max, stats.max_deviation
    );
    let _ = writeln!(
        uart,
        "timing: deviation range {}..{}, frame 1={} frame {FRAMES}={}",
        stats.min_deviation,
        stats.max_signed_deviation,
        stats.first_deviation,
        stats.last_deviation
    );
    let _ = writeln!(
        uart,
        "timing: off-CPU gap min={} max={}",
        stats.gap_min, stats.gap_max
    );
    if stats.max_deviation <= DEVIATION_BOUND {
        let _ = writeln!(uart, "timing: no drift (bound {DEVIATION_BOUND})");
    } else {
        let _ = writeln!(
            uart,
            "timing: DRIFT max_deviation={} > bound {DEVIATION_BOUND}",
            stats.max_deviation
        );
    }
    let _ = writeln!(uart, "timing: done");
    uart.flush();
    power_off(poweroff)
}

/// Raises the `poweroff` event, if the subject has one, for ever.
fn power_off(poweroff: Option<SourceEventId>) -> ! {
    loop {
        if let Some(event) = poweroff {
            raise(event);
        }
    }
}

/// Spins until [`FRAMES`]` + 1` resumes are seen; returns their TSC values
/// and, for each, the gap that preceded it. With `yield` granted (module
/// doc), the first gap only calibrates: it gives the subject's own time
/// per major frame (`period` less the gap, its frame ended by the timer),
/// and from then on each frame is given up after half of that time, so
/// that every resume recorded is read the same few instructions after a
/// yield's return.
fn measure(kernel: &Kernel, period: u64) -> ([u64; FRAMES + 1], [u64; FRAMES + 1]) {
    let mut resumes = [0u64; FRAMES + 1];
    let mut gaps = [0u64; FRAMES + 1];
    let yield_event = kernel.event(KernelActionCode::Yield);
    let mut calibrating = yield_event.is_some();
    let mut half = 0u64;
    let mut yield_at = u64::MAX;
    let mut seen = 0;
    let mut last = rdtsc();
    while seen < resumes.len() {
        let now = rdtsc();
        let gap = now.wrapping_sub(last);
        if gap > GAP {
            if calibrating {
                calibrating = false;
                half = period.saturating_sub(gap) / 2;
            } else {
                if let (Some(resume), Some(slot)) = (resumes.get_mut(seen), gaps.get_mut(seen)) {
                    *resume = now;
                    *slot = gap;
                }
                seen += 1;
            }
            if yield_event.is_some() {
                yield_at = now.wrapping_add(half);
            }
        } else if let Some(event) = yield_event
            && now >= yield_at
        {
            yield_at = u64::MAX;
            raise(event);
            // The next read is the resume: `last` keeps this frame's time.
            continue;
        }
        last = now;
    }
    (resumes, gaps)
}

struct Stats {
    period_min: u64,
    period_max: u64,
    /// Largest `|resume_k - (resume_0 + k * P)|`.
    max_deviation: u64,
    min_deviation: i64,
    max_signed_deviation: i64,
    first_deviation: i64,
    last_deviation: i64,
    gap_min: u64,
    gap_max: u64,
}

impl Stats {
    fn of(resumes: &[u64; FRAMES + 1], gaps: &[u64; FRAMES + 1], period: u64) -> Self {
        let start = resumes[0];
        let periods = resumes.windows(2).map(|w| w[1].wrapping_sub(w[0]));
        let deviations = resumes.iter().zip(0u64..).map(|(&resume, k)| {
            let expected = start.wrapping_add(k.wrapping_mul(period));
            resume.wrapping_sub(expected) as i64
        });
        Self {
            period_min: periods.clone().min().unwrap_or(0),
            period_max: periods.max().unwrap_or(0),
            max_deviation: deviations.clone().map(i64::unsigned_abs).max().unwrap_or(0),
            min_deviation: deviations.clone().min().unwrap_or(0),
            max_signed_deviation: deviations.clone().max().unwrap_or(0),
            first_deviation: deviations.clone().nth(1).unwrap_or(0),
            last_deviation: deviations.last().unwrap_or(0),
            // The first gap ends this subject's first wait, which may have
            // begun mid-frame (after its start-up lines): not a full frame.
            gap_min: gaps.iter().skip(1).copied().min().unwrap_or(0),
            gap_max: gaps.iter().skip(1).copied().max().unwrap_or(0),
        }
    }
}
