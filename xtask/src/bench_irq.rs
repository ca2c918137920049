//! The "Interrupts" part of `cargo xtask bench`: what a device interrupt
//! costs its owner and what it costs a neighbour partition.
//!
//! Boots two system tests' policies (release kernel, Bochs tigerlake, one
//! tick = one instruction):
//!
//! - `systems/irq.xml`: the RTC driver stores the TSC on every turn of its
//!   main loop and reads it first thing in its interrupt handler; the
//!   difference is the latency from the last instruction before the
//!   external-interrupt exit to the handler (acknowledge, EOI, injection,
//!   IDT delivery, the SDK's entry stub), exact up to the loop's length.
//!   Its last report carries the min..max over every interrupt that came
//!   while it ran.
//! - `systems/irq_storm.xml`: the RTC at 8192 Hz for a driver in one
//!   partition, the timing subject in the other; timing (granted `yield`:
//!   it gives up each frame halfway and reads its resume right after the
//!   yield returns) prints its off-CPU gap (the other partition's frame,
//!   the switch and the half of its own frame it yields) and its largest
//!   deviation from `resume_0 + k * P`, the kernel the number of
//!   interrupts it acknowledged. With no cost to the neighbour the gap is
//!   the same every major frame and the deviation 0.
//!
//! The numbers replace the "Interrupts" section of docs/benchmarks.md.

use std::fs;
use std::path::Path;

use crate::bench::replace_section;
use crate::pipeline::{self, Paths, Variant};
use crate::util::{Error, Output};

/// What the two boots printed, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqNumbers {
    /// IRQ-to-handler latency when the owner runs: min, max (ticks).
    pub latency: (u64, u64),
    /// The neighbour's off-CPU gap: min, max (ticks).
    pub gap: (u64, u64),
    /// The neighbour's largest deviation from `resume_0 + k * P` (ticks).
    pub deviation: u64,
    /// Interrupts the kernel acknowledged during the storm boot.
    pub acknowledged: u64,
}

/// `a..b` after `key ` in the last line of `text` that has it.
fn range_after(text: &str, key: &str) -> Option<(u64, u64)> {
    let line = text.lines().rev().find(|l| l.contains(key))?;
    let rest = line.get(line.find(key)? + key.len()..)?;
    let (a, b) = rest.split_whitespace().next()?.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The value after `key=` in the first line of `text` that has it.
fn value_after(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.contains(key))?;
    let rest = line.get(line.find(key)? + key.len()..)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Parses the COM1 of `irq` and the COM1/COM2 of `irq_storm`.
pub fn parse(irq_com1: &str, storm_com1: &str, storm_com2: &str) -> Option<IrqNumbers> {
    let acknowledged = storm_com2
        .lines()
        .find_map(|l| l.strip_prefix("septum: device interrupts: "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let gap_line = storm_com1.lines().find(|l| l.contains("off-CPU gap"))?;
    Some(IrqNumbers {
        latency: range_after(irq_com1, "latency ")?,
        gap: (
            value_after(gap_line, "min=")?,
            value_after(gap_line, "max=")?,
        ),
        deviation: value_after(storm_com1, "max_deviation=")?,
        acknowledged,
    })
}

fn boot(paths: &Paths, system: &str) -> Result<(String, String), Error> {
    crate::bench::boot_system(paths, system, &Variant::release(), false)
}

/// `cargo xtask bench --interrupts-only`: the builds, then [`interrupts`].
pub fn only(paths: &Paths) -> Result<std::process::ExitCode, Error> {
    crate::prereq::ensure(false, Output::Inherit)?;
    pipeline::build_host(paths, Output::Inherit)?;
    pipeline::build_subjects(paths, Output::Inherit)?;
    let doc_path = paths.root.join("docs").join("benchmarks.md");
    Ok(if interrupts(paths, &doc_path)? {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// Boots both systems, prints the numbers and writes the "Interrupts"
/// section; whether every number was found.
pub fn interrupts(paths: &Paths, doc_path: &Path) -> Result<bool, Error> {
    let (irq_com1, _) = boot(paths, "irq")?;
    let (storm_com1, storm_com2) = boot(paths, "irq_storm")?;
    let Some(n) = parse(&irq_com1, &storm_com1, &storm_com2) else {
        eprintln!("xtask: bench: the irq or irq_storm boot printed no interrupt numbers");
        return Ok(false);
    };
    println!();
    println!("device interrupts (Bochs tigerlake, 1 tick = 1 instruction):");
    println!(
        "  IRQ to handler, owner running   min {:>6} max {:>6} ticks",
        n.latency.0, n.latency.1
    );
    println!(
        "  neighbour off-CPU gap           min {:>6} max {:>6} ticks",
        n.gap.0, n.gap.1
    );
    println!("  neighbour max deviation         {:>6} ticks", n.deviation);
    println!("  interrupts acknowledged (storm) {:>6}", n.acknowledged);
    let body = format!(
        "Measured with `cargo xtask bench` (Bochs 2.7, cpu model tigerlake, one tick per\n\
         instruction). IRQ-to-handler latency when the owner runs: `systems/irq.xml`, the\n\
         RTC driver's periodic interrupt (ISA IRQ 8, vector 40), from the driver's last\n\
         instruction before the external-interrupt exit to the first instruction of its\n\
         handler (kernel acknowledge and EOI, injection, IDT delivery, the SDK's entry stub;\n\
         exact up to the driver loop's length). Cost to a neighbour partition when the owner\n\
         does not run: `systems/irq_storm.xml`, the RTC at 8192 Hz for a driver in one\n\
         partition beside the timing subject (4 + 6 ticks, P = 100000 cycles), which gives up\n\
         each frame halfway and reads its resume right after its yield returns; its off-CPU\n\
         gap (the storm's frame, the switch and the half frame it yields) is the same every\n\
         major frame and its deviation from `resume_0 + k * P` is 0 unless the storm takes\n\
         time from it.\n\n\
         | measurement | min | max |\n\
         |---|---|---|\n\
         | IRQ to handler, owner running (ticks) | {} | {} |\n\
         | neighbour's off-CPU gap per major frame (ticks) | {} | {} |\n\n\
         Neighbour's largest deviation from `resume_0 + k * P`: **{} ticks**. Device interrupts\n\
         acknowledged during the storm boot: **{}**. Goal for the latency: <= 600 ticks.",
        n.latency.0, n.latency.1, n.gap.0, n.gap.1, n.deviation, n.acknowledged
    );
    let doc = fs::read_to_string(doc_path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    fs::write(doc_path, replace_section(&doc, "## Interrupts", &body))
        .map_err(|e| format!("cannot write {}: {e}", doc_path.display()))?;
    println!("wrote the Interrupts section of {}", doc_path.display());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_boot_lines() {
        let irq = "rtc_display: report 1: rtc ticks 16 on vector 40 line 8 latency 268..268\n\
                   rtc_display: report 5: rtc ticks 80 on vector 40 line 8 latency 267..273\n\
                   rtc_display: done\n";
        let storm1 = "timing: P=100000 periods min=100000 max=100000 max_deviation=0 over 30 frames\n\
                      timing: off-CPU gap min=61012 max=61013\n";
        let storm2 = "septum: poweroff requested by \"timing\"\n\
                      septum: device interrupts: 1710 acknowledged, 1710 injected\n";
        assert_eq!(
            parse(irq, storm1, storm2),
            Some(IrqNumbers {
                latency: (267, 273),
                gap: (61012, 61013),
                deviation: 0,
                acknowledged: 1710,
            })
        );
        assert_eq!(parse("", storm1, storm2), None);
        assert_eq!(parse(irq, storm1, ""), None);
    }
}
