//! The minor-frame switch: the measured figure behind the policy
//! validator's short-frame thresholds.
//!
//! `lib/policy` rejects a minor frame shorter than twice its entry pad
//! (`scheduling-minor-frame-unusable`) and warns below ten times it
//! (`scheduling-minor-frame-short`). Both derive from the constants
//! themselves (`septum_abi::timing`: `LEAN_ENTRY_PAD` between native
//! partitions of one CPU, `FRAME_ENTRY_PAD` at a barrier or beside a VM),
//! never from a copy, so a change of a pad moves them. What the pad stands for is a measurement:
//! the kernel enters the first subject of every minor frame exactly `pad`
//! ticks after the boundary, so one switch costs the pad plus the entry
//! path after the padded spin. This module measures it, so that `cargo
//! xtask bench` fails when the pad no longer covers the real switch (a
//! lowered pad, or a switch path that grew): then the pad, and with it the
//! thresholds, must be raised.
//!
//! The measurement: `systems/timing.xml`. Its `timing` subject spins
//! reading the TSC and prints the longest and shortest gap it saw between
//! two reads across the frames of the other partitions
//! (`timing: off-CPU gap min=A max=B`). A gap is the other partitions'
//! share of the major frame (from the composer's report: the major frame's
//! length minus `p_timing`'s minor frame) plus one switch. In Bochs one
//! tick is one instruction, so the figure is exact (docs/benchmarks.md,
//! "Minor-frame switch"). The switch measured is into `p_timing`'s frame,
//! the first of a one-CPU plan after the native `p_load`: a boundary the
//! lean pad covers.

use septum_abi::timing::LEAN_ENTRY_PAD as PAD;

use crate::bochs::{self, BootOptions};
use crate::pipeline::{self, Paths, Variant};
use crate::util::{Error, Output};

/// The system measured and the partition of its measuring subject.
const SYSTEM: &str = "timing";
/// The measuring subject's partition in [`SYSTEM`].
const PARTITION: &str = "p_timing";

/// Ticks the switch may take beyond the pad: the spin's evening ladder,
/// the VM entry and the subject's first `rdtsc` after it, and the part of
/// the frame end the measuring subject's last read does not see (measured
/// since session 7, where the frame ends at its deadline: 42 on CPU 0, up
/// to 45 on an application processor; 12 and 20 before).
pub const ENTRY_PATH_SLACK: u64 = 64;

/// One minor-frame switch, timer exit to the next subject's first
/// instruction, in TSC ticks (the smallest and largest seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Switch {
    /// Shortest switch seen.
    pub min: u64,
    /// Longest switch seen.
    pub max: u64,
}

/// `min` and `max` of the timing subject's `off-CPU gap` line.
pub fn parse_gap(com1: &str) -> Option<(u64, u64)> {
    let line = com1.lines().find(|l| l.contains("timing: off-CPU gap "))?;
    let value = |key: &str| -> Option<u64> {
        let at = line.find(key)? + key.len();
        line.get(at..)?.split_whitespace().next()?.parse().ok()
    };
    Some((value("min=")?, value("max=")?))
}

/// A minor frame as the composer's text report gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// The first major frame's length, TSC cycles.
    pub major: u64,
    /// The partition's minor frame's length, TSC cycles.
    pub own: u64,
    /// The frame's entry pad (`pad N` at the end of its line).
    pub pad: u64,
}

/// From the composer's text report: the first major frame's length, and
/// the length and entry pad of `partition`'s minor frame in it.
pub fn parse_report(report: &str, partition: &str) -> Option<Planned> {
    let major = report.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("major frame 0: ")?;
        let (_, cycles) = rest.split_once(" = ")?;
        cycles.strip_suffix(" TSC cycles")?.parse().ok()
    })?;
    report.lines().find_map(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        match words.as_slice() {
            [
                "ticks",
                _,
                "-",
                _,
                "cycles",
                start,
                "-",
                end,
                name,
                "pad",
                pad,
            ] if *name == partition => {
                let start: u64 = start.parse().ok()?;
                let end: u64 = end.parse().ok()?;
                Some(Planned {
                    major,
                    own: end.checked_sub(start)?,
                    pad: pad.parse().ok()?,
                })
            }
            _ => None,
        }
    })
}

/// The switch cost from the gaps and the plan: each gap minus the other
/// partitions' share of the major frame.
pub fn switch_cost(gap: (u64, u64), major: u64, own_frame: u64) -> Option<Switch> {
    let others = major.checked_sub(own_frame)?;
    Some(Switch {
        min: gap.0.checked_sub(others)?,
        max: gap.1.checked_sub(others)?,
    })
}

/// Whether `pad` covers the measured switch: every switch takes at least
/// the pad (the entry is made at boundary + pad) and at most the pad plus
/// [`ENTRY_PATH_SLACK`]. `Err` says what is wrong and what to change.
pub fn check(switch: Switch, pad: u64) -> Result<(), String> {
    if switch.min < pad {
        return Err(format!(
            "a minor-frame switch took {} ticks, less than LEAN_ENTRY_PAD ({pad}): the kernel \
             no longer enters at boundary + pad",
            switch.min
        ));
    }
    let limit = pad.saturating_add(ENTRY_PATH_SLACK);
    if switch.max > limit {
        return Err(format!(
            "a minor-frame switch took {} ticks, more than LEAN_ENTRY_PAD ({pad}) + \
             {ENTRY_PATH_SLACK}: the transition outgrew the pad; raise LEAN_ENTRY_PAD in \
             lib/abi/src/timing.rs (the validator's short-frame thresholds follow it)",
            switch.max
        ));
    }
    Ok(())
}

/// Boots [`SYSTEM`], prints the switch cost next to the pad and the
/// validator's thresholds, and returns whether the pad covers it.
pub fn run(paths: &Paths) -> Result<bool, Error> {
    let bins = paths.subject_binaries();
    let image =
        pipeline::image_from_parts(paths, SYSTEM, &Variant::release(), &bins, Output::Inherit)?;
    let options = BootOptions {
        timeout: std::time::Duration::from_secs(120),
        stream: false,
        stop_on: None,
        stop_grace: std::time::Duration::from_secs(3),
    };
    let boot = bochs::boot(&image.dir, &options)?;
    let gap = parse_gap(&boot.com1).ok_or("bench: no `timing: off-CPU gap` line on COM1")?;
    let report_path = image.composed.join("report.txt");
    let report = std::fs::read_to_string(&report_path)
        .map_err(|e| format!("cannot read {}: {e}", report_path.display()))?;
    let planned = parse_report(&report, PARTITION).ok_or_else(|| {
        format!(
            "bench: no plan for {PARTITION} in {}",
            report_path.display()
        )
    })?;
    let switch = switch_cost(gap, planned.major, planned.own)
        .ok_or("bench: the off-CPU gap is shorter than the plan")?;
    // The composer's pad for the frame, which must be the lean one: the
    // boundary measured is the first frame of a one-CPU plan after a
    // native partition.
    let pad = planned.pad;
    if pad != PAD.get() {
        return Err(format!(
            "bench: the composer gives {PARTITION}'s frame the pad {pad}, not LEAN_ENTRY_PAD ({})",
            PAD.get()
        )
        .into());
    }
    println!();
    println!("minor-frame switch (systems/timing.xml, timer exit to the next subject):");
    println!(
        "  measured min {} max {} ticks; LEAN_ENTRY_PAD {pad} (+ {ENTRY_PATH_SLACK} slack)",
        switch.min, switch.max
    );
    println!(
        "  validator: error below {} cycles (2 x pad), warning below {} (10 x pad)",
        pad.saturating_mul(2),
        pad.saturating_mul(10)
    );
    match check(switch, pad) {
        Ok(()) => {
            println!("  the pad covers the measured switch");
            Ok(true)
        }
        Err(why) => {
            println!("  FAIL: {why}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
Schedule (tickRate 1000 Hz)
  partition p_timing on cpu 0: groups [timing]
  partition p_load on cpu 0: groups [load]
  major frame 0: 10 ticks = 100000 TSC cycles
    cpu 0:
      ticks        0 - 4        cycles            0 - 40000        p_timing  pad 650
      ticks        4 - 10       cycles        40000 - 100000       p_load  pad 650
";

    #[test]
    fn the_switch_is_the_gap_minus_the_other_frames() {
        let com1 = "timing: P=100000 periods min=100000\ntiming: off-CPU gap min=61012 max=61015\n";
        let gap = parse_gap(com1).unwrap();
        assert_eq!(gap, (61012, 61015));
        let Planned { major, own, pad } = parse_report(REPORT, "p_timing").unwrap();
        assert_eq!((major, own, pad), (100_000, 40_000, 650));
        assert_eq!(parse_report(REPORT, "p_load").unwrap().own, 60_000);
        assert_eq!(parse_report(REPORT, "p_none"), None);
        let switch = switch_cost(gap, major, own).unwrap();
        assert_eq!(
            switch,
            Switch {
                min: 1012,
                max: 1015
            }
        );
        assert_eq!(switch_cost((100, 100), major, own), None);
        assert_eq!(parse_gap("timing: done\n"), None);
    }

    #[test]
    fn the_pad_must_cover_the_switch_and_nothing_much_more() {
        assert_eq!(
            check(
                Switch {
                    min: 1012,
                    max: 1020
                },
                1000
            ),
            Ok(())
        );
        // A lowered pad that the transitions do not fit in any more.
        let late = check(
            Switch {
                min: 1012,
                max: 1012,
            },
            600,
        )
        .unwrap_err();
        assert!(late.contains("outgrew the pad"), "{late}");
        // Entries before the pad: the padded entry is gone.
        let early = check(
            Switch {
                min: 400,
                max: 1012,
            },
            1000,
        )
        .unwrap_err();
        assert!(early.contains("less than LEAN_ENTRY_PAD"), "{early}");
        assert_eq!(
            check(
                Switch {
                    min: 1000,
                    max: 1000 + ENTRY_PATH_SLACK
                },
                1000
            ),
            Ok(())
        );
    }
}
