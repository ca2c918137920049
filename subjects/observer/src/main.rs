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
//!
//! In `silence_switch` the neighbours `switch_a` and `switch_b` share a
//! group and hand the CPU to each other with `switch` events up to the
//! deadline ([`switcher`]).
//!
//! In `silence_exits` the neighbour `exits` makes, frame by frame, the
//! exits the kernel handles for it without a hypercall ([`exits`]): PCI
//! configuration reads (ports 0xCF8/0xCFC, emulated), traps handed to its
//! monitor `exits_monitor` ([`exits_monitor`]: the kernel writes the
//! state page and switches), and a timed event that fires at or around
//! the deadline, while it spins or while it sleeps.
//!
//! In `silence_ipi` the neighbour `ipi_sender` raises an `ipi` event at
//! `ipi_target`, a subject on another CPU, as fast as it can
//! ([`ipi_sender`]): the kernel's interrupt to the other CPU in flight at
//! the deadline.
//!
//! In the `silence_fault` system the neighbour is named `restarter`
//! (`onFault="restartSubject"`) and faults again and again: each of its
//! lives spins through one frame (which tells it where its deadlines lie),
//! makes hypercalls through the next, and faults in the third, either at
//! once or [`late_fault_margin`] ticks before its deadline (sweeping the
//! fault's report over the boundary), until its restarts are used up and
//! it is stopped. The observer there (named `watcher`) measures
//! [`FAULT_FRAMES`] frames and asserts every one of them:
//! `observer: offsets identical over all N frames`.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// Observer frames measured in `silence` (resumes after the first).
const FRAMES: usize = 20;
/// Observer frames measured in `silence_fault`: the restarter's lives
/// (three frames each, `restartLimit` + 1 of them) and some frames after
/// it was stopped.
const FAULT_FRAMES: usize = 96;
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
        Some(uart) if info.name() == "ipi_victim" => ipi_victim(&info, uart),
        Some(uart) if info.name() == "reborn" => reborn(&info, uart),
        Some(uart) => observe(&info, uart),
        None if info.name() == "restarter" => restarter(&info),
        None if info.name() == "resetter" => resetter(&info),
        None if info.name() == "busy_resetter" => busy_resetter(&info),
        None if info.name().starts_with("switch_") => switcher(&info),
        None if info.name() == "exits" => exits(&info),
        None if info.name() == "exits_monitor" => exits_monitor(&info),
        None if info.name() == "ipi_sender" => ipi_sender(&info),
        None if info.name() == "ipi_target" => ipi_target(&info),
        None if info.name() == "ipi_clock" => ipi_clock(&info),
        None if info.name() == "edge_clock" => edge_clock(&info),
        None if info.name() == "idler" => loop {
            septum_sdk::arch::pause();
        },
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
/// running `between` at every turn; returns the last read before the gap
/// (a few ticks before the frame's deadline if `between` is short).
fn until_next_frame(mut between: impl FnMut()) -> u64 {
    let mut last = rdtsc();
    loop {
        between();
        let now = rdtsc();
        if now.wrapping_sub(last) > GAP {
            return last;
        }
        last = now;
    }
}

/// How many ticks before its deadline the restarter faults in the life
/// whose calibration frame ended at major frame `index` (TSC / P): 0 to
/// 4700 in steps of 100, in a scattered order, so that the fault's report
/// and restart fall over the boundary at every point of their path.
fn late_fault_margin(index: u64) -> u64 {
    index.wrapping_mul(37) % 48 * 100
}

/// The `silence_fault` neighbour: one life per restart (module doc). Its
/// memory is re-initialised by every restart, so what a life does depends
/// on the TSC only: even major frames fault at once, odd ones late.
fn restarter(info: &Info<'static>) -> ! {
    let period = info.major_frame_cycles().map_or(1, |p| p.get().max(1));
    // Frame 0 of the life: spin to the deadline, which gives the phase.
    let end = until_next_frame(|| {});
    // Frame 1: hypercalls up to the deadline.
    let turns = end / period % 23;
    until_next_frame(|| {
        for _ in 0..turns {
            core::hint::black_box(rdtsc());
        }
        septum_sdk::probe::raw_hypercall(UNDEFINED_EVENT);
    });
    // Frame 2 (its deadline lies two periods after frame 0's): fault.
    let index = end / period;
    if index % 2 == 1 {
        let deadline = end.wrapping_add(period.wrapping_mul(2));
        let fault_at = deadline.wrapping_sub(late_fault_margin(index));
        while rdtsc() < fault_at {
            core::hint::spin_loop();
        }
    }
    septum_sdk::arch::invalid_opcode()
}

/// The `silence_reset` neighbour: raises its `reset` event (a `<reset/>`
/// target event of `idler`) in every fourth frame, 0 to 2950 ticks before
/// its deadline in steps of 50 (a scattered order, [`late_fault_margin`]'s
/// kind), so that the kernel's handling of the reset falls over the
/// boundary at every point of its path; spins otherwise. Every fourth
/// frame: each reset writes two kernel lines (the reset, the
/// re-initialisation), which the console moves to the UART 16 bytes per
/// transition; more often, the ring would overflow.
fn resetter(info: &Info<'static>) -> ! {
    let period = info.major_frame_cycles().map_or(1, |p| p.get().max(1));
    let reset = info.source_event("reset");
    // The last read before the gap lies a few ticks before the deadline.
    let mut end = until_next_frame(|| {});
    loop {
        let index = end / period;
        if index.is_multiple_of(4) {
            let deadline = end.wrapping_add(period);
            let margin = (index / 4).wrapping_mul(37) % 60 * 50;
            let fire_at = deadline.wrapping_sub(margin);
            while rdtsc() < fire_at {
                core::hint::spin_loop();
            }
            if let Some(event) = reset {
                raise(event);
            }
        }
        end = until_next_frame(|| {});
    }
}

/// The `console_busy` subject: raises its `reset` event (a `<reset/>`
/// target event of `idler`) in every tenth frame, [`BUSY_RESETS`] times,
/// spinning otherwise (neither it nor the idler ever idles), then powers
/// the system off. Each reset makes the kernel write about 135 bytes of
/// lines (the reset, the re-initialisation): more than the console's
/// ring holds in all, at about 13 bytes per major frame, which only the
/// console slot at the major frame's last boundary moves to the UART
/// (docs/kernel.md, "Pads after a leaner switch (session 12)").
fn busy_resetter(info: &Info<'static>) -> ! {
    let period = info.major_frame_cycles().map_or(1, |p| p.get().max(1));
    let reset = info.source_event("reset");
    let kernel = info.kernel();
    let mut resets = 0u32;
    let mut end = until_next_frame(|| {});
    while resets < BUSY_RESETS {
        if (end / period).is_multiple_of(10) {
            if let Some(event) = reset {
                raise(event);
            }
            resets = resets.saturating_add(1);
        }
        end = until_next_frame(|| {});
    }
    let _ = kernel.poweroff();
    loop {
        core::hint::spin_loop();
    }
}

/// Resets `busy_resetter` raises: about 135 bytes of kernel lines each,
/// so 80 of them (10800 bytes) overflow the console's 8 KiB ring unless
/// the console drains while the system runs.
const BUSY_RESETS: u32 = 80;

/// The `silence_restart` subject: every life prints its first TSC read
/// modulo the major frame, then faults, and the kernel restarts it in its
/// next frame. The restart is the frame's own work, done before the entry:
/// the kernel starts it only after the frame's whole pad, so the offset is
/// the same in every life whatever its neighbour did before the boundary
/// (spin to the deadline, yield, sleep, hypercalls, stopped). Before
/// session 10 the restart began wherever the neighbour's frame end left
/// off, and the offsets differed by that.
fn reborn(info: &Info<'static>, mut uart: Uart) -> ! {
    let start = rdtsc();
    let period = info.major_frame_cycles().map_or(1, |p| p.get().max(1));
    uart.init();
    let _ = writeln!(uart, "reborn: life offset {}", start % period);
    uart.flush();
    septum_sdk::arch::invalid_opcode()
}

/// The `silence_switch` neighbours: `switch_a` and `switch_b` share a
/// group and raise their `other` event (mode `switch`, to each other) as
/// fast as they can, `switch_a` after 0 to 28 spin turns, a different
/// number every frame, so that the deadline falls at every point of the
/// switch path.
fn switcher(info: &Info<'static>) -> ! {
    let other = info.source_event("other");
    let a = info.name() == "switch_a";
    let mut frame: u64 = 0;
    loop {
        let turns = frame.wrapping_mul(7) % 29;
        until_next_frame(|| {
            if a {
                for _ in 0..turns {
                    core::hint::black_box(rdtsc());
                }
            }
            if let Some(event) = other {
                raise(event);
            }
        });
        frame = frame.wrapping_add(1);
    }
}

/// What `exits` does in one of its frames (frame number modulo 4).
#[derive(Clone, Copy)]
enum ExitKind {
    /// Configuration reads of its PCI device, emulated by the kernel.
    Pci,
    /// A `ud2` mark, trapped to its monitor, which resumes it past it.
    Trap,
    /// A timed event armed near the deadline, then spin.
    TimedSpin,
    /// A timed event armed near the deadline, then sleep (`wait`).
    TimedSleep,
}

/// Its PCI device in `silence_exits` (the PIIX3 IDE controller, 00:01.1).
const EXITS_DEVICE: septum_sdk::pci::ConfigSpace = septum_sdk::pci::ConfigSpace::new(0, 1, 1);
/// Gap that means "off the CPU" for `exits`: a trap's round trip through
/// the monitor takes longer than [`GAP`]; the other partition's frame is
/// 20000 ticks.
const EXITS_GAP: u64 = 8000;

/// [`until_next_frame`] with gap `gap`.
fn until_gap(gap: u64, mut between: impl FnMut()) -> u64 {
    let mut last = rdtsc();
    loop {
        between();
        let now = rdtsc();
        if now.wrapping_sub(last) > gap {
            return last;
        }
        last = now;
    }
}

/// Spins `turns` turns (a few ticks each).
fn spin_turns(turns: u64) {
    for _ in 0..turns {
        core::hint::black_box(rdtsc());
    }
}

/// The `silence_exits` neighbour (module doc): one [`ExitKind`] per
/// frame, with a different number of spin turns (0 to 96) between the
/// exits every frame, or the timed event at a different distance from
/// the deadline (-960 to +960 ticks), so that the deadline falls at every
/// point of each exit's path.
fn exits(info: &Info<'static>) -> ! {
    let period = info.major_frame_cycles().map_or(1, |p| p.get().max(1));
    let kernel = info.kernel();
    let timer = info
        .memory_region("timer")
        .map(septum_sdk::timed::TimedEvent::new);
    // Frame 0: spin to the deadline, which gives the phase of the rest.
    let mut deadline = until_gap(EXITS_GAP, || {}).wrapping_add(period);
    let mut frame: u64 = 1;
    loop {
        let turns = frame.wrapping_mul(37) % 97;
        // -960 to +960 ticks from the deadline, in steps of 40.
        let target = deadline
            .wrapping_sub(960)
            .wrapping_add(frame.wrapping_mul(29) % 49 * 40);
        let kind = match frame % 4 {
            0 => ExitKind::Pci,
            1 => ExitKind::Trap,
            2 => ExitKind::TimedSpin,
            _ => ExitKind::TimedSleep,
        };
        match kind {
            ExitKind::Pci => {
                until_gap(EXITS_GAP, || {
                    spin_turns(turns);
                    core::hint::black_box(EXITS_DEVICE.read(0));
                });
            }
            ExitKind::Trap => {
                until_gap(EXITS_GAP, || {
                    spin_turns(turns);
                    septum_sdk::probe::mark(frame, turns);
                });
            }
            ExitKind::TimedSpin | ExitKind::TimedSleep => {
                if let Some(timer) = &timer {
                    let _ = timer.arm(target);
                }
                if matches!(kind, ExitKind::TimedSleep) {
                    // Woken by the timed event, in this frame or at the
                    // start of its next.
                    let _ = kernel.wait();
                }
                while rdtsc() < deadline {
                    core::hint::spin_loop();
                }
            }
        }
        // Resynchronise: the frame just ended lies one period behind.
        let now = rdtsc();
        while deadline <= now {
            deadline = deadline.wrapping_add(period);
            frame = frame.wrapping_add(1);
        }
    }
}

/// The monitor of `exits`: resumes it, and at every trap (its `ud2`
/// mark) resumes it past the mark (at R15, `probe::mark`). Every trap must
/// be the next one (the kernel's count one higher than the last) and a
/// mark (invalid opcode): otherwise the monitor faults, which stops the
/// system (the test forbids that), so a trap lost or doubled at the
/// deadline shows.
fn exits_monitor(info: &Info<'static>) -> ! {
    use septum_sdk::monitor::{Gpr, Monitored, STATE_MAGIC};
    /// VT-x basic exit reason of an exception.
    const EXCEPTION: u16 = 0;
    /// Invalid opcode.
    const INVALID_OPCODE: u8 = 6;
    let Some(target) = Monitored::open(info, "target", "resume") else {
        park(&info.kernel())
    };
    let mut traps: u64 = 0;
    loop {
        target.resume();
        traps = traps.wrapping_add(1);
        let Ok(mut state) = target.state() else {
            septum_sdk::arch::invalid_opcode()
        };
        if state.magic != STATE_MAGIC
            || state.traps != traps
            || state.basic_exit_reason() != EXCEPTION
            || state.vector() != Some(INVALID_OPCODE)
        {
            septum_sdk::arch::invalid_opcode()
        }
        state.rip = state.gpr(Gpr::R15);
        let _ = target.set_state(&state);
    }
}

/// The `silence_ipi` neighbour: raises its `poke` event (mode `ipi`, to
/// `ipi_target` on another CPU) up to the deadline, after 0 to 96 spin
/// turns, a different number every frame.
fn ipi_sender(info: &Info<'static>) -> ! {
    let poke = info.source_event("poke");
    let mut frame: u64 = 0;
    loop {
        let turns = frame.wrapping_mul(37) % 97;
        until_next_frame(|| {
            spin_turns(turns);
            if let Some(event) = poke {
                raise(event);
            }
        });
        frame = frame.wrapping_add(1);
    }
}

/// Ticks after its resume at which `ipi_clock` raises its event.
const CLOCK_DELAY: u64 = 5000;

/// The `silence_idle_ipi` interrupt source: once per frame, `CLOCK_DELAY`
/// ticks after its resume, raises `poke` (mode `ipi`, at the neighbour on
/// another CPU), so the IPI reaches that CPU at the same point of every
/// major frame, inside the neighbour's frame there.
fn ipi_clock(info: &Info<'static>) -> ! {
    let events = ["poke", "tick"].map(|name| info.source_event(name));
    loop {
        raise_after_resume(&events, CLOCK_DELAY);
    }
}

/// Waits for this subject's next frame, then raises each of `events`
/// `delay` ticks after its resume (the interrupt sources of
/// `silence_idle_ipi` and `silence_edge_ipi`).
fn raise_after_resume(events: &[Option<septum_sdk::SourceEventId>], delay: u64) {
    until_next_frame(|| {});
    let resumed = rdtsc();
    while rdtsc().wrapping_sub(resumed) < delay {
        core::hint::spin_loop();
    }
    for event in events.iter().flatten() {
        raise(*event);
    }
}

/// Where `edge_clock` raises its event: the watcher's boundary lies
/// half a major frame after the clock's (`silence_edge_ipi.xml`), and the
/// clock resumes the pad and the entry's ladder (about 42 ticks) after its
/// own boundary.
const EDGE_LADDER: u64 = 42;
/// The `edge_clock`'s sweep: starts its raise `EDGE_FIRST` ticks before
/// the watcher's boundary (the kernel sends the IPI about 185 ticks later,
/// so about 115 before the boundary), then later by `EDGE_STEP` every four
/// frames (so every point meets each of the neighbour's four behaviours),
/// over `EDGE_POINTS` points, then again.
const EDGE_FIRST: u64 = 300;
const EDGE_STEP: u64 = 25;
const EDGE_POINTS: u64 = 24;

/// The `silence_edge_ipi` interrupt source: once per major frame raises
/// `poke` and `prod` (mode `ipi`, at the watcher and at the neighbour on
/// CPU 0; the kernel sends each IPI only while the plan gives CPU 0 to its
/// target's partition) at a point that moves over
/// the boundary between the neighbour's frame and the watcher's there (the
/// IPI leaves from about 115 ticks before it to 460 after, measured with a
/// temporary kernel probe), so the IPI reaches CPU 0 while
/// the neighbour still runs, at its timer exit, in the transition, or
/// while the CPU idled through the neighbour's frame and waits in the pad.
fn edge_clock(info: &Info<'static>) -> ! {
    let events = ["poke", "prod"].map(|name| info.source_event(name));
    let period = info.major_frame_cycles().map_or(0, |p| p.get());
    // Its own frame is the first of the major frame on CPU 1 of two (a
    // barrier): the full pad and the take's lead after it.
    let own_pad = septum_abi::timing::entry_pad(septum_abi::timing::FRAME_ENTRY_PAD, true);
    let to_boundary = (period / 2)
        .wrapping_sub(own_pad.get())
        .wrapping_sub(EDGE_LADDER);
    let mut frame: u64 = 0;
    loop {
        let delay = to_boundary
            .wrapping_sub(EDGE_FIRST)
            .wrapping_add(frame / 4 % EDGE_POINTS * EDGE_STEP);
        raise_after_resume(&events, delay);
        frame = frame.wrapping_add(1);
    }
}

/// If target event `name` injects a vector: take it (its handler counts
/// it) and run with interrupts enabled from here on. In `silence_idle_ipi`
/// the watcher and its neighbour do so, because Bochs 2.7 lets an external
/// interrupt exit a guest only while the guest's RFLAGS.IF is set
/// (docs/testing.md, "Bochs and external-interrupt exiting").
fn enable_interrupts(info: &Info<'static>, name: &str) {
    if let Some(vector) = info.target_event(name).and_then(|t| t.vector) {
        septum_sdk::interrupt::register(vector, on_poke);
        septum_sdk::interrupt::install();
        septum_sdk::interrupt::enable();
    }
}

/// Injections of a vector taken by `enable_interrupts` (`poke` into
/// `ipi_target`).
static POKES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

fn on_poke(_vector: u8) {
    POKES.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
}

/// The receiver of `silence_ipi`'s pokes: takes the injected vector with
/// interrupts enabled, nothing else.
fn ipi_target(info: &Info<'static>) -> ! {
    enable_interrupts(info, "poke");
    loop {
        septum_sdk::arch::pause();
    }
}

fn neighbour(info: &Info<'static>) -> ! {
    let kernel = info.kernel();
    enable_interrupts(info, "kick");
    // `silence_idle_ipi` and `silence_edge_ipi` interrupt it too.
    enable_interrupts(info, "poke");
    enable_interrupts(info, "prod");
    // In `silence_smp` the neighbours on CPUs 1 to 3 start later in the
    // cycle of behaviours, so that the CPUs reach the barrier from
    // different ones.
    let mut frame: u64 = match info.name() {
        "neighbour1" | "neighbour4" => 1,
        "neighbour2" | "neighbour5" => 2,
        "neighbour3" | "neighbour6" => 3,
        _ => 0,
    };
    loop {
        match behaviour(frame) {
            Behaviour::Spin => {
                until_next_frame(|| {});
            }
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
            Behaviour::Hypercalls(turns) => {
                until_next_frame(|| {
                    for _ in 0..turns {
                        core::hint::black_box(rdtsc());
                    }
                    septum_sdk::probe::raw_hypercall(UNDEFINED_EVENT);
                });
            }
            Behaviour::Fault => septum_sdk::arch::invalid_opcode(),
        }
        frame = frame.wrapping_add(1);
    }
}

fn observe(info: &Info<'static>, mut uart: Uart) -> ! {
    uart.init();
    enable_interrupts(info, "poke");
    // `silence_idle_ipi`: only to run with interrupts enabled (Bochs).
    enable_interrupts(info, "tick");
    let kernel = info.kernel();
    // `silence_smp` has one neighbour per frame to kick, on every CPU.
    let kicks = ["kick", "kick1", "kick2", "kick3", "kick4", "kick5", "kick6"]
        .map(|name| info.source_event(name));
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
    // `silence` (observer named "observer") keeps its 20 frames and its
    // lines for the frames from the fault on; `silence_fault` measures more.
    let silence = info.name() == "observer";
    let mut all_resumes = [0u64; FAULT_FRAMES];
    let count = if silence { FRAMES } else { FAULT_FRAMES };
    let resumes = all_resumes.get_mut(..count).unwrap_or(&mut []);
    for slot in resumes.iter_mut() {
        for event in kicks.into_iter().flatten() {
            raise(event);
        }
        let _ = kernel.yield_now();
        *slot = rdtsc();
    }
    let first = resumes.first().copied().unwrap_or(0);
    let deviation_of = |j: u64, resume: u64| {
        resume.wrapping_sub(first.wrapping_add(j.wrapping_mul(period))) as i64
    };
    let (lowest, highest) = (0u64..)
        .zip(resumes.iter())
        .map(|(j, &resume)| deviation_of(j, resume))
        .fold((0i64, 0i64), |(low, high), d| (low.min(d), high.max(d)));
    let spread = highest.wrapping_sub(lowest).unsigned_abs();
    // Deviations all within one step of the TSC are no evidence of
    // anything: `silence_smp` runs where Bochs advances the TSC in steps,
    // so one instant reads as either of two values one step apart.
    let resolution = tsc_resolution();
    let below_resolution = spread <= resolution;
    let _ = writeln!(
        uart,
        "observer: TSC resolution {resolution} ticks, offsets spread {spread} ticks"
    );
    let mut differing = 0u32;
    let mut differing_before_fault = 0u32;
    for (j, &resume) in (0u64..).zip(resumes.iter()) {
        let frame = j + 2;
        let deviation = deviation_of(j, resume);
        if silence && frame >= FAULT_FRAME {
            let _ = writeln!(
                uart,
                "observer: frame {frame} (neighbour faulted in frame {FAULT_FRAME}): {deviation:+} ticks"
            );
        }
        if deviation != 0 {
            differing += 1;
            if !silence || frame < FAULT_FRAME {
                differing_before_fault += 1;
            }
            if below_resolution {
                let _ = writeln!(
                    uart,
                    "observer: offset in frame {frame}: {deviation:+} ticks (within the TSC resolution)"
                );
            } else {
                let _ = writeln!(
                    uart,
                    "observer: offset DIFFERS in frame {frame}: {deviation:+} ticks"
                );
            }
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
    if silence && differing_before_fault == 0 {
        let _ = writeln!(
            uart,
            "observer: offsets identical over {} frames before the fault",
            FAULT_FRAME - 2
        );
    }
    if differing == 0 {
        let _ = writeln!(
            uart,
            "observer: offsets identical over all {} frames",
            resumes.len()
        );
    } else if below_resolution {
        let _ = writeln!(
            uart,
            "observer: offsets identical to within the TSC resolution ({resolution} ticks) over all {} frames: spread {spread}",
            resumes.len()
        );
    }
    let _ = writeln!(uart, "observer: done");
    uart.flush();
    let _ = kernel.poweroff();
    park(&kernel)
}

/// Frames `ipi_victim` measures.
const VICTIM_FRAMES: u32 = 30;
/// A step between two reads of `ipi_victim`'s loop longer than this (and
/// at most [`GAP`]) is an exit inside its frame: the loop reads the TSC
/// every few ticks, an exit and its entry take a few hundred.
const EXIT_STEP: u64 = 100;

/// The victim of `ipi_confined`: a partition on the CPU of an `ipi`
/// event's target that has nothing to do with the event. It runs with
/// interrupts enabled (Bochs 2.7 lets an external interrupt exit only such
/// a guest, docs/testing.md) and counts the steps in its TSC reads that
/// are exits inside its own frames. Every IPI that reached the CPU while
/// it ran would be one: time the sender chose, stolen from a partition the
/// policy gave no flow from it. Prints
/// `ipi_victim: <n> exits inside <N> frames (longest <t> ticks)`.
fn ipi_victim(info: &Info<'static>, mut uart: Uart) -> ! {
    uart.init();
    let kernel = info.kernel();
    // No IDT (the policy gives it no vector, so nothing is ever injected
    // and loading one would be a fault): only RFLAGS.IF.
    septum_sdk::interrupt::enable();
    until_next_frame(|| {});
    let mut exits: u32 = 0;
    let mut longest: u64 = 0;
    for _ in 0..VICTIM_FRAMES {
        let mut last = rdtsc();
        loop {
            let now = rdtsc();
            let step = now.wrapping_sub(last);
            if step > GAP {
                break;
            }
            if step > EXIT_STEP {
                exits = exits.saturating_add(1);
                longest = longest.max(step);
            }
            last = now;
        }
    }
    let _ = writeln!(
        uart,
        "ipi_victim: {exits} exits inside {VICTIM_FRAMES} frames (longest {longest} ticks)"
    );
    let _ = writeln!(uart, "ipi_victim: done");
    uart.flush();
    let _ = kernel.poweroff();
    park(&kernel)
}

/// The smallest step between two TSC reads: 3 (instructions) where Bochs
/// counts every instruction; larger on a multi-CPU Bochs, which advances
/// the TSC for a round of all CPUs at once.
fn tsc_resolution() -> u64 {
    let mut smallest = u64::MAX;
    for _ in 0..1000 {
        let before = rdtsc();
        let step = rdtsc().wrapping_sub(before);
        if step != 0 {
            smallest = smallest.min(step);
        }
    }
    smallest
}

fn park(kernel: &septum_sdk::Kernel) -> ! {
    loop {
        if kernel.yield_now().is_err() {
            core::hint::spin_loop();
        }
    }
}
