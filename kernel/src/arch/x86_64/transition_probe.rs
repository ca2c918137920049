//! Feature `count-transition`: where the time of a minor-frame transition
//! goes. Each marked point of the exit path stores the TSC; the padded
//! entry of the next frame (`exit::enter_at`) turns every mark of this
//! transition into ticks after the boundary and keeps, per point, the
//! largest seen on any CPU, and, per pair of consecutive points both
//! marked in the same transition, the largest stretch between them (the
//! points' own maxima may come from different transitions, so their
//! differences say little where the CPUs wait for each other). Printed at
//! poweroff: the figures behind `FRAME_ENTRY_PAD` (septum_abi::timing,
//! docs/kernel.md).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use septum_abi::TscCycles;

use super::cpu::rdtsc;
use super::percpu::{CpuCore, MAX_CPUS};

/// The marked points, in path order.
#[derive(Clone, Copy)]
pub enum Point {
    /// First instruction of `septum_vmexit` (the exit stub has run).
    Exit = 0,
    /// The frame end begins (`frame_ending`: the major-frame barrier).
    FrameEnd = 1,
    /// The scheduler decided what runs next.
    Decided = 2,
    /// `switch_to` has loaded the next subject.
    Switched = 3,
    /// `enter_at` begins.
    Enter = 4,
    /// `enter_at` has taken the interrupts requested meanwhile (a kernel
    /// that takes them, at `INTERRUPT_TAKE_LEAD` before the entry), made
    /// the injection and armed the timer: the rest is the padded spin. Its
    /// ticks after the boundary, minus the pad less the lead, are the part
    /// of the lead that was used.
    Armed = 5,
}

const POINTS: usize = 6;
const NAMES: [&str; POINTS] = ["exit", "frame-end", "decided", "switched", "enter", "armed"];

/// This transition's marks, per CPU.
static MARKS: [[AtomicU64; POINTS]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; POINTS] }; MAX_CPUS];
/// Largest ticks after the boundary, per point.
static MAX: [AtomicU64; POINTS] = [const { AtomicU64::new(0) }; POINTS];
/// Largest ticks from one point to the next, per point (the stretch that
/// ends there), where both were marked in the same transition.
static STRETCH: [AtomicU64; POINTS] = [const { AtomicU64::new(0) }; POINTS];

/// Notes the time at `point` on `cpu`.
#[inline(always)]
pub fn mark(cpu: &CpuCore, point: Point) {
    if let Some(slot) = MARKS
        .get(cpu.number.index())
        .and_then(|marks| marks.get(point as usize))
    {
        slot.store(rdtsc().get(), Ordering::Relaxed);
    }
}

/// The transition after `boundary` reached `enter_at`: every mark at or
/// after the boundary counts; all are cleared.
pub fn close(cpu: &CpuCore, boundary: TscCycles) {
    mark(cpu, Point::Enter);
    if let Some(slot) = CLOSE_AT.get(cpu.number.index()) {
        slot.store(rdtsc().get(), Ordering::Relaxed);
    }
    close_marks(cpu, boundary);
    exclude(cpu, &CLOSE_AT);
}

/// When [`close`] began, per CPU.
static CLOSE_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn close_marks(cpu: &CpuCore, boundary: TscCycles) {
    let Some(marks) = MARKS.get(cpu.number.index()) else {
        return;
    };
    let mut previous = None;
    for ((slot, max), stretch) in marks.iter().zip(&MAX).zip(&STRETCH) {
        let at = slot.swap(0, Ordering::Relaxed);
        if at >= boundary.get() {
            max.fetch_max(at.saturating_sub(boundary.get()), Ordering::Relaxed);
            if let Some(before) = previous {
                stretch.fetch_max(at.saturating_sub(before), Ordering::Relaxed);
            }
            previous = Some(at);
        } else {
            previous = None;
        }
    }
}

/// `enter_at` is ready to enter the frame that began at `boundary` (see
/// [`Point::Armed`]): only its largest ticks after the boundary are kept,
/// one compare, so that the probe costs the pad's spin little (`close`
/// runs before the take).
pub fn armed(boundary: TscCycles) {
    if let Some(max) = MAX.get(Point::Armed as usize) {
        max.fetch_max(
            rdtsc().get().saturating_sub(boundary.get()),
            Ordering::Relaxed,
        );
    }
}

/// Ticks of this transition that are not the transition's, per CPU: the
/// probe's own [`close`] and the console pump (which runs only where it
/// fits).
static PUMPED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// When the pump began, per CPU.
static PUMP_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The base pads seen (0: slot free) and, per pad, the largest ticks
/// after the boundary at which the transition was ready to spin.
static READY_PAD: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
static READY_MAX: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// `enter_at` pumps the console now: the ticks until [`pumped`] do not
/// count as the transition's (the pump runs only where it fits).
pub fn pump_start(cpu: &CpuCore) {
    if let Some(slot) = PUMP_AT.get(cpu.number.index()) {
        slot.store(rdtsc().get(), Ordering::Relaxed);
    }
}

/// The pump that began at [`pump_start`] returned.
pub fn pumped(cpu: &CpuCore) {
    exclude(cpu, &PUMP_AT);
}

/// The ticks since `from`'s entry for `cpu` do not count.
fn exclude(cpu: &CpuCore, from: &[AtomicU64; MAX_CPUS]) {
    let index = cpu.number.index();
    if let (Some(began), Some(slot)) = (from.get(index), PUMPED.get(index)) {
        let ticks = rdtsc().get().saturating_sub(began.load(Ordering::Relaxed));
        slot.fetch_add(ticks, Ordering::Relaxed);
    }
}

/// Per CPU: this transition's frame first did its own work (`exit::own_work`),
/// which starts after the pad by design; its time is not the transition's.
static OWN_WORK: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
/// Transitions whose frame did its own work first (left out of `ready`).
static OWN_WORK_COUNT: AtomicU64 = AtomicU64::new(0);

/// The frame entered next does its own work first: [`ready`] leaves
/// this transition out (and counts it).
pub fn own_work(cpu: &CpuCore) {
    if let Some(flag) = OWN_WORK.get(cpu.number.index()) {
        flag.store(true, Ordering::Relaxed);
    }
}

/// The transition after `boundary`, whose frame has the base pad `base`,
/// is ready to spin for its take or entry (less any pump): the base pad
/// must hold the largest of these. A transition into a frame that did
/// its own work first ([`own_work`]) is left out.
pub fn ready(cpu: &CpuCore, boundary: TscCycles, base: TscCycles) {
    let pumped = PUMPED
        .get(cpu.number.index())
        .map_or(0, |slot| slot.swap(0, Ordering::Relaxed));
    if OWN_WORK
        .get(cpu.number.index())
        .is_some_and(|flag| flag.swap(false, Ordering::Relaxed))
    {
        OWN_WORK_COUNT.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let at = rdtsc()
        .get()
        .saturating_sub(boundary.get())
        .saturating_sub(pumped);
    let reason = LAST_REASON
        .get(cpu.number.index())
        .map_or(u64::MAX, |slot| slot.load(Ordering::Relaxed));
    for ((pad, max), worst) in READY_PAD.iter().zip(&READY_MAX).zip(&READY_REASON) {
        let seen = pad.compare_exchange(0, base.get(), Ordering::Relaxed, Ordering::Relaxed);
        if seen.is_ok() || seen == Err(base.get()) {
            if max.fetch_max(at, Ordering::Relaxed) < at {
                worst.store(reason, Ordering::Relaxed);
            }
            return;
        }
    }
}

/// Per CPU: the full exit reason of the last exit ([`exit_reason`]).
static LAST_REASON: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Per base pad of [`READY_PAD`]: the exit reason of the last exit before
/// the transition that set its [`READY_MAX`].
static READY_REASON: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// The exit being handled on `cpu` has the full exit reason `reason`.
pub fn exit_reason(cpu: &CpuCore, reason: u64) {
    if let Some(slot) = LAST_REASON.get(cpu.number.index()) {
        slot.store(reason, Ordering::Relaxed);
    }
}

/// Prints the largest tick counts per point.
pub fn report() {
    for ((pad, max), reason) in READY_PAD.iter().zip(&READY_MAX).zip(&READY_REASON) {
        let pad = pad.load(Ordering::Relaxed);
        if pad != 0 {
            let max = max.load(Ordering::Relaxed);
            crate::kprintln!(
                "septum: transition ready (base pad {pad}): at most {max} ticks after the \
                 boundary, the console pump left out (slack {}), after exit reason {:#x}",
                i128::from(pad).saturating_sub(i128::from(max)),
                reason.load(Ordering::Relaxed)
            );
        }
    }
    crate::kprintln!(
        "septum: transition ready: {} transitions into a frame's own work left out",
        OWN_WORK_COUNT.load(Ordering::Relaxed)
    );
    for (name, max) in NAMES.iter().zip(&MAX) {
        crate::kprintln!(
            "septum: transition {name}: at most {} ticks after the boundary",
            max.load(Ordering::Relaxed)
        );
    }
    // `armed` has no stretch (`armed`).
    for ((from, to), stretch) in NAMES
        .iter()
        .zip(NAMES.iter().skip(1))
        .zip(STRETCH.iter().skip(1))
        .take(Point::Enter as usize)
    {
        crate::kprintln!(
            "septum: transition {from} -> {to}: at most {} ticks",
            stretch.load(Ordering::Relaxed)
        );
    }
}
