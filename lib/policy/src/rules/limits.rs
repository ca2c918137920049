//! Kernel limits: what the kernel refuses at boot is refused here first.
//!
//! The kernel's scheduler tables are static (`septum_kerncore::plan`:
//! [`MAX_SUBJECTS`], [`MAX_GROUPS`], [`MAX_PARTITIONS`]) and it has per-CPU
//! areas for [`KERNEL_MAX_CPUS`] CPUs. A spec beyond either is refused at
//! boot ("invalid system spec: too many subjects", "the plan uses cpu 4;
//! this kernel starts at most 4 CPUs"), which `SpecError` promises the
//! validation has ruled out. Without these rules such a policy validated
//! and composed, and the system stopped at boot instead: the error belongs
//! at the policy line that causes it.

use std::collections::HashSet;

use septum_kerncore::plan::{MAX_GROUPS, MAX_PARTITIONS, MAX_SUBJECTS};

use super::common::core_count;
use crate::diag::Diagnostics;
use crate::model::Policy;
use crate::rule::{Category, Rule};
use crate::source::Span;

/// CPUs the kernel starts: `MAX_CPUS` in `kernel/src/arch/x86_64/percpu.rs`
/// (the kernel is its own workspace; a host test reads that file and fails
/// if the two differ).
pub const KERNEL_MAX_CPUS: u32 = 4;

/// `n` as an English ordinal (`257th`, `1001st`).
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// One error at the first element past `max`, if there is one.
fn past_limit(
    out: &mut Diagnostics,
    mut spans: impl Iterator<Item = (Span, String)>,
    max: usize,
    what: &str,
) {
    if let Some((span, name)) = spans.nth(max) {
        out.error(
            TOO_MANY.id,
            span,
            format!(
                "{name} is the {} {what}: the kernel's tables hold at most {max} {what}s",
                ordinal(max.saturating_add(1))
            ),
        );
    }
}

rule! {
    /// At most 256 subjects, 256 scheduling groups and 256 partitions: the
    /// kernel's scheduler tables are that large and it refuses a bigger
    /// system at boot.
    TOO_MANY = "scheduling-too-many" in Scheduling;
    fn too_many(policy, out) {
        past_limit(
            out,
            policy
                .subjects
                .iter()
                .map(|s| (s.name.span, format!("subject \"{}\"", s.name.as_str()))),
            MAX_SUBJECTS,
            "subject",
        );
        past_limit(
            out,
            policy.scheduling.partitions.iter().flat_map(|p| {
                p.groups
                    .iter()
                    .map(|g| (g.span, format!("this group of partition \"{}\"", p.name.as_str())))
            }),
            MAX_GROUPS,
            "scheduling group",
        );
        past_limit(
            out,
            policy
                .scheduling
                .partitions
                .iter()
                .map(|p| (p.name.span, format!("partition \"{}\"", p.name.as_str()))),
            MAX_PARTITIONS,
            "partition",
        );
    }
}

rule! {
    /// The plan uses only CPUs 0 to 3: the kernel has per-CPU areas for 4
    /// CPUs and refuses a plan on any other at boot.
    CPU_KERNEL_LIMIT = "scheduling-cpu-kernel-limit" in Scheduling;
    fn cpu_kernel_limit(policy, out) {
        // A CPU beyond the processor's cores is `scheduling-cpu-range`'s.
        let cores = core_count(policy).unwrap_or(u32::MAX);
        let mut reported: HashSet<u32> = HashSet::new();
        for major in &policy.scheduling.major_frames {
            for cpu in &major.cpus {
                let id = cpu.id.value.0;
                if id >= KERNEL_MAX_CPUS && id < cores && reported.insert(id) {
                    out.error(
                        CPU_KERNEL_LIMIT.id,
                        cpu.id.span,
                        format!(
                            "CPU {id} is beyond the {KERNEL_MAX_CPUS} CPUs the kernel starts \
                             (CPUs 0 to {})",
                            KERNEL_MAX_CPUS.saturating_sub(1)
                        ),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111, 257]
            .into_iter()
            .map(ordinal)
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
                "111th", "257th"
            ]
        );
    }
}
