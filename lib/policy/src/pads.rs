//! Which pad each minor frame's entry gets, from the plan alone.
//!
//! The kernel enters a minor frame's first subject a fixed time after the
//! frame's start (docs/kernel.md, "Constant-time frame transitions"). How
//! long that must be depends on what can run on either side of the
//! boundary: a partition with a VM and a barrier with other CPUs make the
//! longest transitions, a boundary between native partitions of one CPU
//! needs less ([`septum_abi::timing::Boundary`]). Both the validator (its
//! frame-length rules) and the composer (the pad it writes into every
//! minor frame of the kernel's spec) read the plan through this one walk,
//! so they cannot disagree about a frame's pad.

use std::collections::HashSet;

use septum_abi::timing::Boundary;

use crate::model::{Policy, Profile};

/// One plan (major frame) as the walk needs it: per CPU that has frames in
/// it, the CPU's number and the partition of each minor frame in order.
/// A partition is an index the caller's `has_vm` understands.
pub type PlanCpus = Vec<(u32, Vec<usize>)>;

/// The boundary at the start of every minor frame of `plans`, in the same
/// shape (plan, CPU in the order given, frame). `has_vm(partition)`: the
/// partition has a VM subject (say `true` for one that cannot be told: the
/// longer pad is always safe); called once or twice per frame, so it
/// should not walk the policy. Linear in the number of frames.
///
/// The last frame of each CPU's frames in a plan gets the console slot
/// (`Boundary::console`).
///
/// A major frame's first frame is a barrier when any plan has frames on
/// more than one CPU (the kernel's barrier waits for every plan CPU); what
/// runs before it is the last frame on the same CPU of any plan, because a
/// plan switch may come from any of them.
pub fn boundaries(plans: &[PlanCpus], has_vm: impl Fn(usize) -> bool) -> Vec<Vec<Vec<Boundary>>> {
    let several_cpus = plans
        .iter()
        .any(|plan| plan.iter().filter(|(_, frames)| !frames.is_empty()).count() > 1);
    // One pass over every plan's CPUs (a plan may have many): the CPUs
    // whose last frame in some plan is a VM's.
    let vm_last: HashSet<u32> = plans
        .iter()
        .flatten()
        .filter(|(_, frames)| frames.last().is_some_and(|&p| has_vm(p)))
        .map(|(cpu, _)| *cpu)
        .collect();
    plans
        .iter()
        .map(|plan| {
            plan.iter()
                .map(|(cpu, frames)| {
                    let mut before = vm_last.contains(cpu);
                    let last = frames.len().saturating_sub(1);
                    frames
                        .iter()
                        .enumerate()
                        .map(|(minor, &partition)| {
                            let after = has_vm(partition);
                            let boundary = Boundary {
                                barrier: minor == 0 && several_cpus,
                                vm_before: before,
                                vm_after: after,
                                console: minor == last,
                            };
                            before = after;
                            boundary
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// [`boundaries`] of `policy`'s plan, in the shape of
/// `policy.scheduling.major_frames` (plan, `<cpu>` in document order,
/// `<minorFrame>`). An unresolved partition counts as having a VM.
pub fn policy_boundaries(policy: &Policy) -> Vec<Vec<Vec<Boundary>>> {
    let plans: Vec<PlanCpus> = policy
        .scheduling
        .major_frames
        .iter()
        .map(|major| {
            major
                .cpus
                .iter()
                .map(|cpu| {
                    let frames = cpu
                        .minor_frames
                        .iter()
                        .map(|minor| minor.partition.get().map_or(usize::MAX, |p| p.index()))
                        .collect();
                    (cpu.id.value.0, frames)
                })
                .collect()
        })
        .collect();
    let vm: Vec<bool> = (0..policy.scheduling.partitions.len())
        .map(|index| partition_has_vm(policy, index))
        .collect();
    boundaries(&plans, |partition| {
        vm.get(partition).copied().unwrap_or(true)
    })
}

/// Whether partition `index` of `policy` has a VM subject (`true` for an
/// index out of range or a member that does not resolve).
fn partition_has_vm(policy: &Policy, index: usize) -> bool {
    let Some(partition) = policy.scheduling.partitions.get(index) else {
        return true;
    };
    partition
        .groups
        .iter()
        .flat_map(|group| &group.subjects)
        .any(|member| {
            member
                .get()
                .and_then(|s| policy.subjects.get(s.index()))
                .is_none_or(|s| s.profile.value == Profile::Vm)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NATIVE: usize = 0;
    const NATIVE_2: usize = 1;
    const VM: usize = 2;

    fn has_vm(partition: usize) -> bool {
        partition == VM
    }

    fn lean(b: &Boundary) -> bool {
        b.is_lean()
    }

    #[test]
    fn the_last_frame_of_each_cpu_gets_the_console_slot() {
        let plans = vec![
            vec![(0, vec![NATIVE, NATIVE_2, NATIVE]), (1, vec![NATIVE_2])],
            vec![(0, vec![NATIVE])],
        ];
        let b = boundaries(&plans, has_vm);
        let console: Vec<Vec<Vec<bool>>> = b
            .iter()
            .map(|plan| {
                plan.iter()
                    .map(|cpu| cpu.iter().map(|boundary| boundary.console).collect())
                    .collect()
            })
            .collect();
        assert_eq!(
            console,
            vec![vec![vec![false, false, true], vec![true]], vec![vec![true]]]
        );
        let lean = septum_abi::timing::LEAN_ENTRY_PAD;
        let slot = septum_abi::timing::CONSOLE_SLOT;
        assert_eq!(b[0][0][1].base_pad(), lean);
        assert_eq!(b[0][0][2].base_pad().0, lean.0 + slot.0);
    }

    #[test]
    fn native_frames_of_one_cpu_are_lean() {
        let plans = vec![vec![(0, vec![NATIVE, NATIVE_2, NATIVE])]];
        let b = boundaries(&plans, has_vm);
        assert!(b[0][0].iter().all(lean), "{b:?}");
    }

    #[test]
    fn a_vm_on_either_side_takes_the_full_pad() {
        let plans = vec![vec![(0, vec![NATIVE, VM, NATIVE_2, NATIVE])]];
        let b = &boundaries(&plans, has_vm)[0][0];
        // The first frame follows the last (NATIVE): lean.
        assert!(b[0].is_lean());
        assert_eq!((b[1].vm_after, b[1].vm_before), (true, false));
        assert_eq!((b[2].vm_after, b[2].vm_before), (false, true));
        assert!(b[3].is_lean());
    }

    #[test]
    fn a_major_frame_after_a_vm_in_any_plan_takes_the_full_pad() {
        // Plan 1 ends with the VM on CPU 0: plan 0's first frame may follow
        // it (a plan switch), so it is not lean; CPU 0 of plan 1 begins
        // with a native frame after plan 0's native last frame or its own
        // VM: not lean either.
        let plans = vec![
            vec![(0, vec![NATIVE, NATIVE_2])],
            vec![(0, vec![NATIVE_2, VM])],
        ];
        let b = boundaries(&plans, has_vm);
        assert!(b[0][0][0].vm_before);
        assert!(b[0][0][1].is_lean());
        assert!(b[1][0][0].vm_before);
    }

    #[test]
    fn the_first_frame_of_a_major_frame_on_several_cpus_is_a_barrier() {
        let plans = vec![vec![(0, vec![NATIVE, NATIVE_2]), (1, vec![NATIVE_2])]];
        let b = boundaries(&plans, has_vm);
        assert!(b[0][0][0].barrier && b[0][1][0].barrier);
        assert!(b[0][0][1].is_lean());
    }

    #[test]
    fn the_cpus_of_other_plans_count_for_the_barrier() {
        let plans = vec![
            vec![(0, vec![NATIVE, NATIVE_2])],
            vec![(0, vec![NATIVE]), (1, vec![NATIVE_2])],
        ];
        let b = boundaries(&plans, has_vm);
        assert!(b[0][0][0].barrier);
    }
}
