//! Scheduling: the plan is a fixed cyclic schedule the kernel can follow
//! without deciding anything.
//!
//! Every partition runs on exactly one CPU and appears in the plan; every
//! CPU the plan uses appears in every major frame, and within a major frame
//! all CPUs take equally long, so they meet at the major frame boundary.
//! Ticks are converted to TSC cycles offline as `ticks * speed_kHz * 1000 /
//! tickRate`; the conversion must be exact and fit 64 bits, so deadlines do
//! not drift and never wrap. A minor frame must also be long enough to run
//! anything: the kernel enters its subject a fixed pad after the boundary
//! (`septum_abi::timing`, chosen per frame by `crate::pads`), so a frame
//! barely longer than its pad leaves the subject no time, and the plan
//! makes no progress.

use std::collections::{HashMap, HashSet};

use super::common::{
    DiagnosticExt, core_count, cores_text, first_definitions, partition_cpus, plan_cpus,
};
use crate::diag::Diagnostics;
use crate::model::{
    ChannelRole, EventMode, FrameCpu, KernelAction, MinorFrame, Policy, SubjectIdx,
};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// Total ticks of each `<cpu>` of a major frame (u128: sums of u64 values
/// cannot overflow it in any policy that fits in memory).
fn cpu_ticks(cpu: &FrameCpu) -> u128 {
    cpu.minor_frames
        .iter()
        .map(|m| u128::from(m.ticks.value.0))
        .sum()
}

/// TSC cycles per second times ticks, before dividing by the tick rate.
fn cycles_numerator(policy: &Policy, ticks: u128) -> u128 {
    ticks.saturating_mul(u128::from(policy.hardware.processor.speed_khz.value).saturating_mul(1000))
}

rule! {
    /// The tick rate is not zero: ticks are converted to TSC cycles with it.
    TICK_RATE_ZERO = "scheduling-tick-rate-zero" in Scheduling;
    fn tick_rate_zero(policy, out) {
        let rate = &policy.scheduling.tick_rate;
        if rate.value == 0 {
            out.error(TICK_RATE_ZERO.id, rate.span, "tickRate is 0")
                .help("give the number of ticks per second, e.g. tickRate=\"1000\"");
        }
    }
}

rule! {
    /// The plan has at least one major frame.
    NO_MAJOR_FRAME = "scheduling-no-major-frame" in Scheduling;
    fn no_major_frame(policy, out) {
        // Without subjects there is nothing to schedule (subjects-none).
        if policy.scheduling.major_frames.is_empty() && !policy.subjects.is_empty() {
            out.error(
                NO_MAJOR_FRAME.id,
                policy.scheduling.span,
                "the plan has no major frame",
            );
        }
    }
}

rule! {
    /// Every partition has at least one group and every group at least one
    /// subject.
    PARTITION_EMPTY = "scheduling-partition-empty" in Scheduling;
    fn partition_empty(policy, out) {
        for partition in &policy.scheduling.partitions {
            if partition.groups.is_empty() {
                out.error(
                    PARTITION_EMPTY.id,
                    partition.name.span,
                    format!("partition \"{}\" has no group", partition.name.as_str()),
                );
            }
            for group in partition.groups.iter().filter(|g| g.subjects.is_empty()) {
                out.error(
                    PARTITION_EMPTY.id,
                    group.span,
                    format!(
                        "a group of partition \"{}\" has no subject",
                        partition.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// Every partition is in at least one minor frame, or its subjects never
    /// run.
    PARTITION_UNUSED = "scheduling-partition-unused" in Scheduling;
    fn partition_unused(policy, out) {
        if policy.scheduling.major_frames.is_empty() {
            return; // scheduling-no-major-frame
        }
        let cpus = partition_cpus(policy);
        let first = first_definitions(policy.scheduling.partitions.iter().map(|p| p.name.as_str()));
        for ((partition, cpus), first) in policy.scheduling.partitions.iter().zip(&cpus).zip(first)
        {
            if first && cpus.is_empty() {
                out.error(
                    PARTITION_UNUSED.id,
                    partition.name.span,
                    format!(
                        "partition \"{}\" is not in any minor frame",
                        partition.name.as_str()
                    ),
                )
                .help("give it a <minorFrame> in the plan, or remove it");
            }
        }
    }
}

rule! {
    /// A partition runs on one CPU only: its subjects' state lives on that
    /// CPU.
    PARTITION_MULTI_CPU = "scheduling-partition-multi-cpu" in Scheduling;
    fn partition_multi_cpu(policy, out) {
        let cpus = partition_cpus(policy);
        for (partition, cpus) in policy.scheduling.partitions.iter().zip(&cpus) {
            let Some(&(first_cpu, first_span)) = cpus.first() else {
                continue;
            };
            for &(cpu, span) in cpus.iter().skip(1) {
                out.error(
                    PARTITION_MULTI_CPU.id,
                    span,
                    format!(
                        "partition \"{}\" runs on CPU {} and on CPU {}",
                        partition.name.as_str(),
                        first_cpu.0,
                        cpu.0
                    ),
                )
                .label(first_span, "first scheduled here");
            }
        }
    }
}

rule! {
    /// A partition's written `cpu` is the CPU its minor frames are on.
    PARTITION_CPU = "scheduling-partition-cpu" in Scheduling;
    fn partition_cpu(policy, out) {
        let cpus = partition_cpus(policy);
        for (partition, cpus) in policy.scheduling.partitions.iter().zip(&cpus) {
            let Some(written) = partition.cpu.as_ref().filter(|c| !c.auto) else {
                continue;
            };
            let Some(&(cpu, span)) = cpus.iter().find(|(c, _)| *c != written.value) else {
                continue;
            };
            out.error(
                PARTITION_CPU.id,
                written.span,
                format!(
                    "partition \"{}\" is declared on CPU {} but its minor frames are on CPU {}",
                    partition.name.as_str(),
                    written.value.0,
                    cpu.0
                ),
            )
            .label(span, "scheduled here");
        }
    }
}

rule! {
    /// The plan uses only CPUs the processor has.
    CPU_RANGE = "scheduling-cpu-range" in Scheduling;
    fn cpu_range(policy, out) {
        let Some(cores) = core_count(policy) else {
            return;
        };
        for major in &policy.scheduling.major_frames {
            for cpu in major.cpus.iter().filter(|c| c.id.value.0 >= cores) {
                out.error(
                    CPU_RANGE.id,
                    cpu.id.span,
                    format!(
                        "CPU {} is beyond the {} of the processor",
                        cpu.id.value.0,
                        cores_text(cores)
                    ),
                );
            }
        }
    }
}

rule! {
    /// A CPU appears once per major frame.
    CPU_TWICE = "scheduling-cpu-twice" in Scheduling;
    fn cpu_twice(policy, out) {
        for major in &policy.scheduling.major_frames {
            let mut first: HashMap<u32, Span> = HashMap::new();
            for cpu in &major.cpus {
                if let Some(&span) = first.get(&cpu.id.value.0) {
                    out.error(
                        CPU_TWICE.id,
                        cpu.id.span,
                        format!(
                            "CPU {} appears more than once in this major frame",
                            cpu.id.value.0
                        ),
                    )
                    .label(span, "first here");
                } else {
                    first.insert(cpu.id.value.0, cpu.id.span);
                }
            }
        }
    }
}

rule! {
    /// Every CPU the plan uses has minor frames in every major frame, so all
    /// CPUs switch major frames together.
    CPU_MISSING = "scheduling-cpu-missing" in Scheduling;
    fn cpu_missing(policy, out) {
        let used = plan_cpus(policy);
        // CPUs named one by one in the whole plan so far.
        let mut named_total = 0usize;
        for (n, major) in policy.scheduling.major_frames.iter().enumerate() {
            let here: HashSet<u32> = major.cpus.iter().map(|c| c.id.value.0).collect();
            // Every CPU of `here` is in `used`: the rest are missing. Finding
            // the first few skips at most `here.len()` CPUs, so a plan of
            // many major frames on CPUs of their own costs linear time and
            // gives a bounded number of diagnostics per frame (one, once the
            // plan's budget of named CPUs is spent).
            let missing = used.len().saturating_sub(here.len());
            let named = missing
                .min(MAX_MISSING_CPUS_SHOWN)
                .min(MAX_MISSING_CPUS_NAMED.saturating_sub(named_total));
            named_total = named_total.saturating_add(named);
            for cpu in used.iter().filter(|c| !here.contains(c)).take(named) {
                out.error(
                    CPU_MISSING.id,
                    major.span,
                    format!(
                        "major frame {} has no minor frames for CPU {cpu}, which the plan uses",
                        n + 1
                    ),
                );
            }
            let rest = missing.saturating_sub(named);
            if rest > 0 {
                out.error(
                    CPU_MISSING.id,
                    major.span,
                    format!(
                        "major frame {} has no minor frames for {rest} {}CPUs the plan uses",
                        n + 1,
                        if named > 0 { "more " } else { "" }
                    ),
                );
            }
        }
    }
}

/// Most CPUs `scheduling-cpu-missing` names one by one per major frame; one
/// more diagnostic counts the rest.
const MAX_MISSING_CPUS_SHOWN: usize = 8;
/// Most CPUs it names one by one in the whole plan; past that, one
/// diagnostic per major frame counts its missing CPUs.
const MAX_MISSING_CPUS_NAMED: usize = 64;

rule! {
    /// Within a major frame every CPU's minor frames add up to the same
    /// length, so the CPUs meet at the major frame boundary.
    FRAME_LENGTH = "scheduling-frame-length" in Scheduling;
    fn frame_length(policy, out) {
        for (n, major) in policy.scheduling.major_frames.iter().enumerate() {
            let Some(first) = major.cpus.first() else {
                continue;
            };
            let length = cpu_ticks(first);
            for cpu in major.cpus.iter().skip(1) {
                let other = cpu_ticks(cpu);
                if other != length {
                    out.error(
                        FRAME_LENGTH.id,
                        cpu.id.span,
                        format!(
                            "major frame {} lasts {other} ticks on CPU {} but {length} ticks on \
                             CPU {}",
                            n + 1,
                            cpu.id.value.0,
                            first.id.value.0
                        ),
                    )
                    .label(first.id.span, "the first CPU of this major frame");
                }
            }
        }
    }
}

rule! {
    /// Minor frames last at least one tick.
    TICKS_ZERO = "scheduling-ticks-zero" in Scheduling;
    fn ticks_zero(policy, out) {
        let cpus = policy.scheduling.major_frames.iter().flat_map(|m| &m.cpus);
        for minor in cpus
            .flat_map(|c| &c.minor_frames)
            .filter(|m| m.ticks.value.0 == 0)
        {
            out.error(
                TICKS_ZERO.id,
                minor.ticks.span,
                format!(
                    "minor frame of partition \"{}\" has 0 ticks",
                    minor.partition.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// Every minor frame is a whole number of TSC cycles (`ticks * speed_kHz *
    /// 1000` divisible by `tickRate`), so deadlines do not drift.
    INEXACT_TICKS = "scheduling-inexact-ticks" in Scheduling;
    fn inexact_ticks(policy, out) {
        let rate = policy.scheduling.tick_rate.value;
        let speed = policy.hardware.processor.speed_khz.value;
        if rate == 0 || speed == 0 {
            return;
        }
        let cpus = policy.scheduling.major_frames.iter().flat_map(|m| &m.cpus);
        for minor in cpus.flat_map(|c| &c.minor_frames) {
            let ticks = minor.ticks.value.0;
            if !cycles_numerator(policy, u128::from(ticks)).is_multiple_of(u128::from(rate)) {
                out.error(
                    INEXACT_TICKS.id,
                    minor.ticks.span,
                    format!(
                        "{ticks} ticks at tickRate {rate} and {speed} kHz is not a whole number of \
                         TSC cycles"
                    ),
                )
                .help("choose a tickRate that divides the TSC rate (speed * 1000)");
            }
        }
    }
}

/// Shortest minor frame, in pads: the pad plus as long again for the
/// subject, so a subject gets about as much of its frame as the switch into
/// it takes (measured: 742 cycles off the CPU, the pad and 42 cycles of
/// the VM entry and exit; docs/benchmarks.md, "Minor-frame switch").
const UNUSABLE_PADS: u128 = 2;

/// Minor frames shorter than this many pads lose more than a tenth to the
/// switch into them.
const SHORT_PADS: u128 = 10;

/// Whether the kernel built from `policy` takes interrupts in root mode,
/// which adds `septum_abi::timing::INTERRUPT_TAKE_LEAD` to every pad: an
/// `ipi` event, a device grant that brings an interrupt (`<irq>`
/// children, or a whole device that has IRQs), or an IOMMU in the
/// hardware description (its fault events).
fn takes_interrupts(policy: &Policy) -> bool {
    policy.events.iter().any(|e| e.mode.value == EventMode::Ipi)
        || !crate::platform::iommus(&policy.hardware).is_empty()
        || policy
            .subjects
            .iter()
            .flat_map(|s| &s.devices)
            .any(|grant| {
                !grant.irqs.is_empty()
                    || (grant.is_whole_device()
                        && grant
                            .physical
                            .get()
                            .is_some_and(|d| !policy.device(d).irqs.is_empty()))
            })
}

/// The frame-length figures of one minor frame, in TSC cycles: its pad,
/// and the frame lengths below which it is unusable and short.
struct FrameLimits {
    pad: u128,
    unusable_below: u128,
    short_below: u128,
}

fn limits_for_pad(pad: u128) -> FrameLimits {
    FrameLimits {
        pad,
        unusable_below: UNUSABLE_PADS * pad,
        short_below: SHORT_PADS * pad,
    }
}

/// Every minor frame of the plan with at least one tick, its length in
/// TSC cycles (rounded down; `scheduling-inexact-ticks` reports a rest)
/// and the limits of its pad (`crate::pads`: the pad of the boundary it
/// begins at, and the take's lead if the kernel takes interrupts). Empty
/// when the tick rate or the speed is 0 (other rules report those).
fn minor_frame_limits(policy: &Policy) -> Vec<(&MinorFrame, u128, FrameLimits)> {
    let rate = u128::from(policy.scheduling.tick_rate.value);
    if rate == 0 || policy.hardware.processor.speed_khz.value == 0 {
        return Vec::new();
    }
    let takes = takes_interrupts(policy);
    let boundaries = crate::pads::policy_boundaries(policy);
    let mut frames = Vec::new();
    for (major, plan) in policy.scheduling.major_frames.iter().zip(&boundaries) {
        for (cpu, cpu_boundaries) in major.cpus.iter().zip(plan) {
            for (minor, boundary) in cpu.minor_frames.iter().zip(cpu_boundaries) {
                if minor.ticks.value.0 == 0 {
                    continue;
                }
                let cycles = cycles_numerator(policy, u128::from(minor.ticks.value.0)) / rate;
                let pad = boundary.pad(takes);
                frames.push((minor, cycles, limits_for_pad(u128::from(pad.0))));
            }
        }
    }
    frames
}

/// The fewest ticks that last at least `cycles` TSC cycles at the plan's
/// tick rate and the processor's speed (both not 0).
fn ticks_for(policy: &Policy, cycles: u128) -> u128 {
    let rate = u128::from(policy.scheduling.tick_rate.value);
    let per_second = u128::from(policy.hardware.processor.speed_khz.value).saturating_mul(1000);
    cycles.saturating_mul(rate).div_ceil(per_second.max(1))
}

rule! {
    /// A minor frame lasts at least twice its entry pad: its subject starts
    /// the pad after the boundary, and the rest of the frame is at least as
    /// long. The pad is 350 cycles (the least 700 TSC cycles) where
    /// neither the frame nor the one before it on its CPU belongs to a
    /// partition with a VM and no barrier with other CPUs begins it, and
    /// 550 cycles (the least 1100 TSC cycles) if such a frame is the last
    /// of its major frame on its CPU (room for the kernel's console
    /// output); else 610 cycles (the least 1220 TSC cycles). A frame of a partition with
    /// a VM, and every frame in a system whose kernel takes interrupts in
    /// root mode (an `ipi` event, a granted device interrupt, an IOMMU),
    /// takes those no earlier than 560 cycles after the boundary and gets
    /// 450 cycles more for the take and the entry's own work: 1010 and
    /// 1060, the least 2020 and 2120.
    MINOR_FRAME_UNUSABLE = "scheduling-minor-frame-unusable" in Scheduling;
    fn minor_frame_unusable(policy, out) {
        for (minor, cycles, limits) in minor_frame_limits(policy) {
            let FrameLimits { pad, unusable_below, .. } = limits;
            if cycles < unusable_below {
                out.error(
                    MINOR_FRAME_UNUSABLE.id,
                    minor.ticks.span,
                    format!(
                        "minor frame of partition \"{}\" lasts {cycles} TSC cycles; its subject \
                         starts {pad} cycles after the boundary, so the frame needs at least \
                         {unusable_below}",
                        minor.partition.name.as_str()
                    ),
                )
                .help(format!(
                    "give it at least {} ticks at this tickRate and speed; a shorter frame leaves \
                     its subject less time than the switch takes, or none",
                    ticks_for(policy, unusable_below)
                ));
            }
        }
    }
}

rule! {
    /// Warning: a minor frame lasts at least ten times its entry pad, so the
    /// switch into it takes at most a tenth of it: 3500 TSC cycles where the
    /// pad is 350, 5500 where it is 550, 6100 where it is 610, 10100 and
    /// 10600 with the take and the entry's own work (see
    /// `scheduling-minor-frame-unusable`).
    MINOR_FRAME_SHORT = "scheduling-minor-frame-short" in Scheduling;
    fn minor_frame_short(policy, out) {
        for (minor, cycles, limits) in minor_frame_limits(policy) {
            let FrameLimits {
                pad,
                unusable_below,
                short_below,
            } = limits;
            // Shorter frames are scheduling-minor-frame-unusable. The share
            // is rounded up, so a warned frame never shows 10%.
            if (unusable_below..short_below).contains(&cycles) {
                out.warning(
                    MINOR_FRAME_SHORT.id,
                    minor.ticks.span,
                    format!(
                        "minor frame of partition \"{}\" lasts {cycles} TSC cycles, of which the \
                         first {pad} ({}%) go to the switch into it",
                        minor.partition.name.as_str(),
                        (pad * 100).div_ceil(cycles)
                    ),
                )
                .help(format!(
                    "frames of at least {short_below} TSC cycles ({} ticks at this tickRate and \
                     speed) lose at most a tenth to switching",
                    ticks_for(policy, short_below)
                ));
            }
        }
    }
}

rule! {
    /// A major frame is shorter than 2^64 TSC cycles, so deadlines never wrap.
    MAJOR_OVERFLOW = "scheduling-major-overflow" in Scheduling;
    fn major_overflow(policy, out) {
        let rate = u128::from(policy.scheduling.tick_rate.value);
        if rate == 0 {
            return;
        }
        for (n, major) in policy.scheduling.major_frames.iter().enumerate() {
            for cpu in &major.cpus {
                let cycles = cycles_numerator(policy, cpu_ticks(cpu)) / rate;
                if cycles > u128::from(u64::MAX) {
                    out.error(
                        MAJOR_OVERFLOW.id,
                        cpu.id.span,
                        format!(
                            "major frame {} lasts more than 2^64 TSC cycles on CPU {}",
                            n + 1,
                            cpu.id.value.0
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// The plan schedules CPU 0, the boot CPU, which starts the others.
    BOOT_CPU_MISSING = "scheduling-boot-cpu-missing" in Scheduling;
    fn boot_cpu_missing(policy, out) {
        let used = plan_cpus(policy);
        if !used.is_empty() && !used.contains(&0) {
            let span = policy
                .scheduling
                .major_frames
                .first()
                .map_or(policy.scheduling.span, |m| m.span);
            out.error(
                BOOT_CPU_MISSING.id,
                span,
                "the plan never schedules CPU 0, the boot CPU",
            );
        }
    }
}

rule! {
    /// Every CPU of the plan other than CPU 0 (the boot CPU, already
    /// running) has a `<cpu>` element (its APIC id) in the hardware
    /// description, so the kernel can start it.
    CPU_NO_APIC = "scheduling-cpu-no-apic" in Scheduling;
    fn cpu_no_apic(policy, out) {
        let Some(cores) = core_count(policy) else {
            return;
        };
        let listed = policy.hardware.processor.cpus.len();
        let mut reported: HashSet<u32> = HashSet::new();
        for major in &policy.scheduling.major_frames {
            for cpu in &major.cpus {
                let id = cpu.id.value.0;
                // CPU 0 is the boot CPU: the firmware started it, so it
                // needs no APIC id (older descriptions list no `<cpu>`).
                if id != 0 && id < cores && id as usize >= listed && reported.insert(id) {
                    out.error(
                        CPU_NO_APIC.id,
                        cpu.id.span,
                        format!(
                            "CPU {id} of the plan has no cpu element (APIC id) in the hardware \
                             description"
                        ),
                    );
                }
            }
        }
    }
}

rule! {
    /// Warning: every subject of a scheduling group after the first is handed the CPU
    /// by some switch event or switch channel, or it never runs.
    GROUP_UNREACHABLE = "scheduling-group-unreachable" in Scheduling;
    fn group_unreachable(policy, out) {
        // Subjects some switch event or switch channel hands the CPU to.
        let mut switched_to: HashSet<SubjectIdx> = HashSet::new();
        for (i, subject) in policy.subjects.iter().enumerate() {
            let by_event = subject.targets.iter().any(|target| {
                target.physical.get().map(|e| policy.event(e).mode.value) == Some(EventMode::Switch)
            });
            let by_channel = subject.channels.iter().any(|end| {
                end.role == ChannelRole::Reader
                    && end.physical.get().is_some_and(|c| {
                        let mode = policy.channel(c).has_event.as_ref().map(|e| e.value);
                        mode == Some(EventMode::Switch)
                    })
            });
            if by_event || by_channel {
                switched_to.insert(SubjectIdx(i as u32));
            }
        }
        for partition in &policy.scheduling.partitions {
            for group in partition.groups.iter().filter(|g| g.subjects.len() > 1) {
                let Some(first) = group.subjects.first() else {
                    continue;
                };
                for reference in group.subjects.iter().skip(1) {
                    let Some(s) = reference.get() else { continue };
                    if !switched_to.contains(&s) {
                        out.warning(
                            GROUP_UNREACHABLE.id,
                            reference.name.span,
                            format!(
                                "subject \"{}\" shares a scheduling group with \"{}\" but no \
                                 switch event hands it the CPU",
                                reference.name.as_str(),
                                first.name.as_str()
                            ),
                        )
                        .help(
                            "only the first subject of a group runs until a switch event hands \
                             over",
                        );
                    }
                }
            }
        }
    }
}

rule! {
    /// Warning: a `next_plan` kernel event needs a second major frame to switch to; with
    /// one, the switch begins the same plan again.
    PLAN_SWITCH_SINGLE = "scheduling-plan-switch-single" in Scheduling;
    fn plan_switch_single(policy, out) {
        if policy.scheduling.major_frames.len() != 1 {
            return; // none: scheduling-no-major-frame
        }
        for event in policy.events.iter().filter(|e| e.mode.value == EventMode::Kernel) {
            let Some(action) = event.action.as_ref() else {
                continue;
            };
            if action.value == KernelAction::NextPlan {
                out.warning(
                    PLAN_SWITCH_SINGLE.id,
                    action.span,
                    format!(
                        "kernel event \"{}\" switches to the next plan, but the plan has only one \
                         major frame",
                        event.name.as_str()
                    ),
                )
                .help("add another <majorFrame> to switch to, or remove the event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use septum_abi::TscCycles;
    use septum_abi::timing::{CONSOLE_SLOT, FRAME_ENTRY_PAD, LEAN_ENTRY_PAD, entry_pad};

    use super::*;

    /// The rule docs (and the manual's rule list made from them) spell the
    /// thresholds out, for every pad; they must follow the kernel's pads if
    /// they change.
    #[test]
    fn frame_length_docs_give_the_thresholds_of_the_pads() {
        let unusable = MINOR_FRAME_UNUSABLE.doc;
        let short = MINOR_FRAME_SHORT.doc;
        let console = TscCycles(LEAN_ENTRY_PAD.0 + CONSOLE_SLOT.0);
        for base in [LEAN_ENTRY_PAD, console, FRAME_ENTRY_PAD] {
            let plain = limits_for_pad(u128::from(base.0));
            let takes = limits_for_pad(u128::from(entry_pad(base, true).0));
            for (doc, text) in [
                (
                    unusable,
                    format!(
                        "{} cycles (the least {} TSC cycles)",
                        plain.pad, plain.unusable_below
                    ),
                ),
                (unusable, takes.pad.to_string()),
                (unusable, takes.unusable_below.to_string()),
                (short, plain.pad.to_string()),
                (short, plain.short_below.to_string()),
                (short, takes.short_below.to_string()),
            ] {
                assert!(doc.contains(&text), "{text:?} not in: {doc}");
            }
        }
    }
}
