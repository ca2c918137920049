//! Several CPUs: which CPUs the plan uses, starting the application
//! processors, and the barrier that keeps the plan's CPUs in step.
//!
//! The plan's CPUs are those with minor frames in the first major frame
//! (the one that runs). CPU 0 is the boot CPU; it starts the others one at
//! a time with INIT-SIPI-SIPI (`apic.rs`) at their APIC ids from the spec
//! (`SPEC.kernel.apic_ids`), telling each its number and its boot stack in
//! two statics the AP start-up code reads (`boot.rs`). An AP answers by
//! writing its number into [`AP_ANSWER`] as soon as it runs Rust code; the
//! boot CPU waits at most [`AP_ANSWER_TIMEOUT_US`] for that and refuses to
//! start naming the CPU otherwise. CPUs of the machine that the plan does
//! not use get no IPI and stay where the firmware parked them (halted,
//! interrupts off).
//!
//! Every plan CPU, once its VMCSs are written, waits at one
//! [`Barrier`] (`kerncore::sync`): the last to arrive picks the plan's
//! start TSC (now + [`START_MARGIN_US`]) for all, and each CPU spins until
//! then, so every CPU's deadlines are absolute from the same start. At
//! every later major-frame boundary the CPUs meet at the same barrier
//! before any of them enters the new major frame.
//!
//! Plans: the major-frame barrier also decides which plan (major frame of
//! the spec) comes next. The last CPU to arrive takes a pending `next_plan`
//! request from [`PLAN_SWITCH`] and publishes the plan through the barrier
//! (`kerncore::sync`, "Plan switches"), so every plan CPU leaves with the
//! same plan, which its scheduler applies to the major frame that begins
//! there. Each CPU notes its plan switches; [`barrier_report`] prints them
//! at poweroff (printing at the boundary itself would delay the frame).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use septum_abi::TscCycles;
use septum_kerncore::spec::ApicId;
use septum_kerncore::sync::{Barrier, PlanSwitch};

use super::cpu::{self, rdtsc};
use super::percpu::{self, CpuNumber, MAX_CPUS};
use super::{apic, boot};
use crate::system::SPEC;

/// The number of the AP being started (read by the AP start-up code).
#[used]
#[unsafe(export_name = "septum_ap_cpu")]
static AP_CPU: AtomicU32 = AtomicU32::new(0);

/// The initial stack pointer of the AP being started (read by the AP
/// start-up code).
#[used]
#[unsafe(export_name = "septum_ap_stack")]
static AP_STACK: AtomicU64 = AtomicU64::new(0);

/// The number of the AP that answered last (`u32::MAX`: none yet).
static AP_ANSWER: AtomicU32 = AtomicU32::new(u32::MAX);

/// How long the boot CPU waits for an AP to answer.
pub const AP_ANSWER_TIMEOUT_US: u64 = 100_000;

/// How far in the future the plan's start lies when the last CPU reaches
/// the start barrier: enough for every waiter to see the barrier open.
pub const START_MARGIN_US: u64 = 100;

/// The barrier of the plan's CPUs (plan start and every major frame).
static PLAN_BARRIER: Barrier = Barrier::new();

/// The system's pending `next_plan` request (set by any CPU's scheduler,
/// taken at a major-frame barrier).
pub static PLAN_SWITCH: PlanSwitch = PlanSwitch::new();

/// TSC at which the boot CPU sent the INIT of the AP being started (for the
/// AP's start-up line).
static AP_INIT_TSC: AtomicU64 = AtomicU64::new(0);

/// Whether `cpu` has minor frames in the first major frame.
fn in_plan(cpu: usize) -> bool {
    SPEC.major_frames
        .first()
        .and_then(|major| major.cpus.get(cpu))
        .is_some_and(|minors| !minors.is_empty())
}

/// The CPUs the plan uses, in order (CPU numbers of the spec).
pub fn plan_cpus() -> impl Iterator<Item = u32> {
    SPEC.major_frames
        .first()
        .map_or(&[][..], |major| major.cpus)
        .iter()
        .zip(0u32..)
        .filter(|(minors, _)| !minors.is_empty())
        .map(|(_, number)| number)
}

/// How many CPUs the plan uses (the barrier's participants).
#[inline]
pub fn plan_cpu_count() -> u32 {
    // At most MAX_CPUS after `check_plan`; a count beyond u32 is impossible.
    u32::try_from(plan_cpus().count()).unwrap_or(u32::MAX)
}

/// Why the application processors could not be started.
#[derive(Debug, Clone, Copy)]
pub enum StartError {
    /// The plan uses a CPU this kernel has no per-CPU area for.
    TooManyCpus(u32),
    /// The spec names no APIC id for this CPU.
    NoApicId(u32),
    /// The processor has no x2APIC (the only mode the kernel drives).
    NoX2apic,
    /// The plan does not use CPU 0, which runs the boot path.
    BootCpuUnused,
    /// The CPU did not answer within [`AP_ANSWER_TIMEOUT_US`].
    NoAnswer(u32, ApicId),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyCpus(cpu) => write!(
                f,
                "the plan uses cpu {cpu}; this kernel starts at most {MAX_CPUS} CPUs"
            ),
            Self::NoApicId(cpu) => write!(f, "cpu {cpu}: the spec has no APIC id for it"),
            Self::NoX2apic => f.write_str(
                "the plan uses several CPUs and the processor has no x2APIC \
                 (needed to start them)",
            ),
            Self::BootCpuUnused => f.write_str("the plan has no minor frame for cpu 0"),
            Self::NoAnswer(cpu, apic) => write!(
                f,
                "cpu {cpu} (APIC id {}) did not start within {} ms",
                apic.0,
                AP_ANSWER_TIMEOUT_US / 1000
            ),
        }
    }
}

/// Check, before VMX is touched, that the plan's CPUs can be started: each
/// has a per-CPU area and an APIC id, CPU 0 is among them, and with more
/// than one the processor has an x2APIC.
pub fn check_plan() -> Result<(), StartError> {
    if !in_plan(0) {
        return Err(StartError::BootCpuUnused);
    }
    for number in plan_cpus() {
        if CpuNumber::new(number).is_none() {
            return Err(StartError::TooManyCpus(number));
        }
        if SPEC.kernel.apic_ids.get(number as usize).is_none() {
            return Err(StartError::NoApicId(number));
        }
    }
    if plan_cpu_count() > 1 && !apic::has_x2apic() {
        return Err(StartError::NoX2apic);
    }
    Ok(())
}

/// Start every plan CPU but CPU 0, one at a time; each is running its own
/// boot path (`septum_ap_main`) when this returns. Call after
/// [`check_plan`], on CPU 0.
pub fn start_application_processors() -> Result<(), StartError> {
    if plan_cpu_count() <= 1 {
        return Ok(());
    }
    apic::enable_x2apic();
    let page = (boot::AP_TRAMPOLINE >> 12) as u8;
    for number in plan_cpus().filter(|&n| n != 0) {
        let cpu = CpuNumber::new(number).ok_or(StartError::TooManyCpus(number))?;
        let apic_id = SPEC
            .kernel
            .apic_ids
            .get(number as usize)
            .copied()
            .ok_or(StartError::NoApicId(number))?;
        AP_CPU.store(number, Ordering::Relaxed);
        AP_STACK.store(percpu::ap_boot_stack_top(cpu), Ordering::Relaxed);
        AP_ANSWER.store(u32::MAX, Ordering::Relaxed);
        let sent = rdtsc().get();
        AP_INIT_TSC.store(sent, Ordering::Relaxed);
        // The IPI is a write to an MSR; the stores above must be visible
        // before the AP runs: a SeqCst fence orders them (MFENCE).
        core::sync::atomic::fence(Ordering::SeqCst);
        apic::init_sipi_sipi(apic_id, page);
        let timeout = SPEC.kernel.tsc_khz.saturating_mul(AP_ANSWER_TIMEOUT_US) / 1000;
        while AP_ANSWER.load(Ordering::Acquire) != number {
            if rdtsc().get().wrapping_sub(sent) > timeout {
                return Err(StartError::NoAnswer(number, apic_id));
            }
            cpu::pause();
        }
    }
    Ok(())
}

/// Called by AP `cpu` as soon as it runs Rust code: the boot CPU may start
/// the next one (the start-up statics are free again). Returns the TSC
/// ticks since the boot CPU sent this CPU's INIT.
pub fn answer(cpu: CpuNumber) -> u64 {
    let since = rdtsc()
        .get()
        .wrapping_sub(AP_INIT_TSC.load(Ordering::Relaxed));
    AP_ANSWER.store(cpu.get(), Ordering::Release);
    since
}

/// The APIC id of `cpu` in the spec (for messages; 0 if none).
pub fn apic_id(cpu: CpuNumber) -> u32 {
    SPEC.kernel
        .apic_ids
        .get(cpu.get() as usize)
        .map_or(0, |id| id.0)
}

/// Wait until every plan CPU is ready, then return the plan's start TSC,
/// the same on every CPU, once it has come (see the module doc).
pub fn plan_start_time() -> TscCycles {
    let margin = SPEC.kernel.tsc_khz.saturating_mul(START_MARGIN_US) / 1000;
    let (_, start) = PLAN_BARRIER.wait_with(
        plan_cpu_count(),
        || rdtsc().get().wrapping_add(margin),
        cpu::pause,
    );
    while rdtsc().get() < start {
        cpu::pause();
    }
    TscCycles(start)
}

/// Major-frame barriers passed (counted by the last arrival).
static BARRIERS: AtomicU64 = AtomicU64::new(0);
/// Longest wait of any CPU at a major-frame barrier (TSC ticks): how far
/// apart the CPUs reached a boundary.
static LONGEST_WAIT: AtomicU64 = AtomicU64::new(0);
/// Latest a CPU left a major-frame barrier after the last arrival opened
/// it (TSC ticks): the barrier's own skew.
static LATEST_LEAVE: AtomicU64 = AtomicU64::new(0);
/// When the last arrival opened the latest major-frame barrier (TSC).
static RELEASED_AT: AtomicU64 = AtomicU64::new(0);

/// Plan switches of each CPU.
static SWITCHES: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// The plan the latest switch of each CPU began.
static SWITCHED_TO: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The major frame (counted from 0 at the plan's start) at which the
/// latest switch of each CPU took effect.
static SWITCHED_AT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// The major-frame barrier, at the end of a major frame of plan `current`
/// (of `plan_count`): returns when every plan CPU has reached it, with the
/// plan the next major frame runs, the same on every CPU (see the module
/// doc). With one CPU nobody waits. Keeps the numbers that
/// [`barrier_report`] prints.
#[inline]
pub fn major_frame_barrier(cpu: CpuNumber, current: usize, plan_count: usize) -> usize {
    let decide = || {
        BARRIERS.fetch_add(1, Ordering::Relaxed);
        PLAN_SWITCH.decide(current, plan_count) as u64
    };
    let participants = plan_cpu_count();
    let plan = if participants > 1 {
        let arrived = rdtsc().get();
        let (_, plan) = PLAN_BARRIER.wait_with(
            participants,
            || {
                RELEASED_AT.store(rdtsc().get(), Ordering::Relaxed);
                decide()
            },
            cpu::pause,
        );
        let left = rdtsc().get();
        let released = RELEASED_AT.load(Ordering::Relaxed);
        LONGEST_WAIT.fetch_max(left.wrapping_sub(arrived), Ordering::Relaxed);
        LATEST_LEAVE.fetch_max(left.saturating_sub(released), Ordering::Relaxed);
        plan
    } else {
        decide()
    };
    // `decide` returns a plan index below `plan_count`.
    let plan = usize::try_from(plan).unwrap_or(current);
    if plan != current {
        note_switch(cpu, plan);
    }
    plan
}

/// Note that `cpu` begins `plan` at the major frame that starts now (the
/// number of boundaries passed: the next barrier cannot open before this
/// CPU arrives at it, so the count is this boundary's).
fn note_switch(cpu: CpuNumber, plan: usize) {
    let index = cpu.get() as usize;
    if let (Some(count), Some(to), Some(at)) = (
        SWITCHES.get(index),
        SWITCHED_TO.get(index),
        SWITCHED_AT.get(index),
    ) {
        count.fetch_add(1, Ordering::Relaxed);
        to.store(plan as u64, Ordering::Relaxed);
        at.store(BARRIERS.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Print the major-frame barrier's numbers (multi-CPU plans only) and each
/// CPU's plan switches (at poweroff).
pub fn barrier_report() {
    if plan_cpu_count() > 1 {
        crate::kprintln!(
            "septum: major-frame barrier: {} passed, longest wait {} TSC ticks, \
             latest leave {} TSC ticks after it opened",
            BARRIERS.load(Ordering::Relaxed),
            LONGEST_WAIT.load(Ordering::Relaxed),
            LATEST_LEAVE.load(Ordering::Relaxed)
        );
    }
    for number in plan_cpus() {
        let index = number as usize;
        let count = SWITCHES.get(index).map_or(0, |c| c.load(Ordering::Relaxed));
        if count == 0 {
            continue;
        }
        crate::kprintln!(
            "septum: cpu {number}: {count} plan switch(es), the latest to plan {} at major frame {}",
            SWITCHED_TO
                .get(index)
                .map_or(0, |p| p.load(Ordering::Relaxed)),
            SWITCHED_AT
                .get(index)
                .map_or(0, |f| f.load(Ordering::Relaxed))
        );
    }
}
