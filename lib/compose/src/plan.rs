//! The scheduling plan in the kernel's terms: partitions, groups and major
//! frames with every minor frame's end in TSC cycles.
//!
//! A minor frame's end is `ticks * speed_kHz * 1000 / tickRate` TSC cycles
//! from the start of its major frame and must be exact (the kernel's
//! deadlines are absolute, so a rounding error would drift). Every CPU of a
//! major frame must run the same number of ticks. Partitions and groups are
//! numbered in policy order with the kernel's [`PartitionId`] and
//! [`GroupId`], so the spec writer copies them as they are.

use septum_abi::{SubjectId, TscCycles};
use septum_kerncore::spec::{GroupId, PartitionId};

use septum_policy::pads::{self, PlanCpus};

use crate::error::{ComposeError, fail};
use crate::input::{Profile, SystemInput};

/// A minor frame with its placement in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinorOut {
    /// The partition that runs.
    pub partition: PartitionId,
    /// Start, ticks from the major frame start.
    pub start_ticks: u64,
    /// End, ticks.
    pub end_ticks: u64,
    /// Start, TSC cycles.
    pub start: TscCycles,
    /// End, TSC cycles.
    pub end: TscCycles,
    /// The base pad of the frame's entry (`septum_policy::pads`): the
    /// lean pad, or the full one at a barrier or beside a VM.
    pub pad: TscCycles,
    /// Whether the entry gets the lead for its own work (a partition with
    /// a VM, `septum_abi::timing::Boundary::has_lead`).
    pub lead: bool,
}

/// A major frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MajorOut {
    /// Length in ticks.
    pub length_ticks: u64,
    /// Length in cycles.
    pub length: TscCycles,
    /// Minor frames per CPU (index = CPU number; empty if idle).
    pub cpus: Vec<Vec<MinorOut>>,
}

/// A partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOut {
    /// Name.
    pub name: String,
    /// CPU.
    pub cpu: u32,
    /// Its groups, in policy order.
    pub groups: Vec<GroupId>,
}

/// A scheduling group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOut {
    /// Members in policy order; the first is active at boot.
    pub subjects: Vec<SubjectId>,
}

impl GroupOut {
    /// The member active at boot.
    pub fn initial(&self) -> SubjectId {
        self.subjects.first().copied().unwrap_or_default()
    }
}

/// The plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Ticks per second.
    pub tick_rate: u64,
    /// Partitions, indexed by [`PartitionId`].
    pub partitions: Vec<PartitionOut>,
    /// Groups, indexed by [`GroupId`].
    pub groups: Vec<GroupOut>,
    /// Major frames.
    pub major_frames: Vec<MajorOut>,
}

impl Schedule {
    /// Partition `id`.
    pub fn partition(&self, id: PartitionId) -> &PartitionOut {
        &self.partitions[usize::from(id.0)]
    }

    /// Group `id`.
    pub fn group(&self, id: GroupId) -> &GroupOut {
        &self.groups[usize::from(id.0)]
    }
}

/// Number of CPUs the system uses: one more than the highest CPU a subject,
/// partition or minor frame names.
pub fn cpu_count(input: &SystemInput) -> u32 {
    input
        .subjects
        .iter()
        .map(|s| s.cpu)
        .chain(input.scheduling.partitions.iter().map(|p| p.cpu))
        .chain(
            input
                .scheduling
                .major_frames
                .iter()
                .flatten()
                .map(|c| c.cpu),
        )
        .max()
        .unwrap_or(0)
        + 1
}

fn id16(what: &str, index: usize) -> Result<u16, ComposeError> {
    u16::try_from(index).map_err(|_| ComposeError::new(format!("more than 65536 {what}")))
}

/// The plan of `input` for `cpu_count` CPUs.
pub fn schedule(input: &SystemInput, cpu_count: usize) -> Result<Schedule, ComposeError> {
    let sched = &input.scheduling;
    let speed = input.hardware.speed_khz;
    if sched.tick_rate == 0 {
        return fail("scheduling tickRate is 0");
    }
    let cycles = |ticks: u64| -> Result<TscCycles, ComposeError> {
        let scaled = u128::from(ticks) * u128::from(speed) * 1000;
        let rate = u128::from(sched.tick_rate);
        if scaled % rate != 0 {
            return fail(format!(
                "{ticks} ticks at tickRate {} do not give a whole number of TSC cycles at {speed} kHz",
                sched.tick_rate
            ));
        }
        u64::try_from(scaled / rate)
            .map(TscCycles)
            .map_err(|_| ComposeError::new(format!("{ticks} ticks overflow 64-bit TSC cycles")))
    };
    let mut groups = Vec::new();
    let mut partitions = Vec::new();
    for p in &sched.partitions {
        let mut ids = Vec::new();
        for g in &p.groups {
            ids.push(GroupId(id16("groups", groups.len())?));
            groups.push(GroupOut {
                subjects: g.iter().map(|&s| SubjectId(s as u16)).collect(),
            });
        }
        partitions.push(PartitionOut {
            name: p.name.clone(),
            cpu: p.cpu,
            groups: ids,
        });
    }
    let mut major_frames = Vec::new();
    for (mi, major) in sched.major_frames.iter().enumerate() {
        let mut cpus = vec![Vec::new(); cpu_count];
        let mut length_ticks = None;
        for cpu in major {
            let mut at = 0u64;
            let mut frames = Vec::new();
            for f in &cpu.frames {
                let end = at.checked_add(f.ticks).ok_or_else(|| {
                    ComposeError::new(format!("major frame {mi}: ticks overflow"))
                })?;
                frames.push(MinorOut {
                    partition: PartitionId(id16("partitions", f.partition)?),
                    start_ticks: at,
                    end_ticks: end,
                    start: cycles(at)?,
                    end: cycles(end)?,
                    pad: TscCycles(0),
                    lead: false,
                });
                at = end;
            }
            if *length_ticks.get_or_insert(at) != at {
                return fail(format!(
                    "major frame {mi}: CPU {} runs {at} ticks, another CPU {} ticks",
                    cpu.cpu,
                    length_ticks.unwrap_or(0)
                ));
            }
            if let Some(slot) = cpus.get_mut(cpu.cpu as usize) {
                *slot = frames;
            }
        }
        let length_ticks = length_ticks.unwrap_or(0);
        major_frames.push(MajorOut {
            length_ticks,
            length: cycles(length_ticks)?,
            cpus,
        });
    }
    set_pads(input, &mut major_frames);
    Ok(Schedule {
        tick_rate: sched.tick_rate,
        partitions,
        groups,
        major_frames,
    })
}

/// Every minor frame's base pad, from the boundary it begins at
/// (`septum_policy::pads`, the walk the validator's frame-length rules
/// use).
fn set_pads(input: &SystemInput, major_frames: &mut [MajorOut]) {
    let plans: Vec<PlanCpus> = major_frames
        .iter()
        .map(|major| {
            (0u32..)
                .zip(&major.cpus)
                .filter(|(_, frames)| !frames.is_empty())
                .map(|(cpu, frames)| {
                    let partitions = frames.iter().map(|f| usize::from(f.partition.0)).collect();
                    (cpu, partitions)
                })
                .collect()
        })
        .collect();
    let vm: Vec<bool> = input
        .scheduling
        .partitions
        .iter()
        .map(|p| {
            p.groups.iter().flatten().any(|&s| {
                input
                    .subjects
                    .get(s)
                    .is_none_or(|s| s.profile == Profile::Vm)
            })
        })
        .collect();
    let has_vm = |partition: usize| vm.get(partition).copied().unwrap_or(true);
    let boundaries = pads::boundaries(&plans, has_vm);
    for (major, plan) in major_frames.iter_mut().zip(&boundaries) {
        let cpus = major.cpus.iter_mut().filter(|frames| !frames.is_empty());
        for (frames, cpu_boundaries) in cpus.zip(plan) {
            for (frame, boundary) in frames.iter_mut().zip(cpu_boundaries) {
                frame.pad = boundary.base_pad();
                frame.lead = boundary.vm_after;
            }
        }
    }
}
