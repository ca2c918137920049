//! `cargo xtask bench`, scheduling part: what a minor-frame switch costs
//! and how far apart the CPUs of a multi-CPU plan leave the major-frame
//! barrier.
//!
//! Boots three system tests' policies with the release kernel and reads
//! what they print:
//!
//! - `timing` (CPU 0) and `smp_timing` (the same subjects on CPU 1 of a
//!   4-CPU plan): the `timing` subject spins reading the TSC and prints
//!   `timing: off-CPU gap min=.. max=..`, the gap around the load's minor
//!   frame; minus that frame ([`LOAD_FRAME_CYCLES`]) it is one minor-frame
//!   switch, from the last instruction before the timer exit to the first
//!   one after the entry (which includes the frame's fixed entry pad:
//!   `septum_abi::timing::LEAN_ENTRY_PAD` on CPU 0, `FRAME_ENTRY_PAD` at
//!   the barrier `smp_timing` measures);
//! - `smp` (4 CPUs, 30 major frames): the kernel's poweroff line
//!   `septum: major-frame barrier: .. longest wait W TSC ticks, latest
//!   leave L TSC ticks after it opened`: W is how far apart the CPUs
//!   reached a boundary, L the barrier's own skew (the last CPU to leave
//!   after the last arrival opened it).
//!
//! - `ipi` (4 CPUs): the ponger prints `ponger: ipi N seen after C
//!   cycles`, C from the pinger's TSC read right before its `ipi` hypercall
//!   on CPU 0 to the ponger's interrupt handler on CPU 1 (the event's
//!   `<inject_interrupt>` vector), over five events;
//! - `timed`: the alarm prints `alarm: round N fired, lateness C cycles`,
//!   C from its timed event's deadline to its return from `wait`.
//!
//! The numbers replace the "Scheduling" section of docs/benchmarks.md.
//! Bochs advances the TSC by one tick per instruction, so they are exact
//! instruction counts.

use std::fs;
use std::path::Path;

use crate::bench::replace_section;
use crate::pipeline::{Paths, Variant};
use crate::util::Error;

/// The load's minor frame in `systems/timing.xml` and
/// `systems/smp_timing.xml` (`p_load`, 6 ticks at tickRate 1000 on a
/// 10000 kHz TSC), which the timing subject's off-CPU gap spans.
pub const LOAD_FRAME_CYCLES: u64 = 60_000;

/// The value after `key` in `line`, up to the next space.
fn number_after(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line.get(at..)?.split_whitespace().next()?.parse().ok()
}

/// The timing subject's off-CPU gap `(min, max)`.
pub fn parse_gap(com1: &str) -> Option<(u64, u64)> {
    let line = com1.lines().find(|l| l.contains("timing: off-CPU gap"))?;
    Some((number_after(line, "min=")?, number_after(line, "max=")?))
}

/// The kernel's barrier line: `(passed, longest wait, latest leave)`.
pub fn parse_barrier(com2: &str) -> Option<(u64, u64, u64)> {
    let line = com2
        .lines()
        .find(|l| l.contains("septum: major-frame barrier: "))?;
    Some((
        number_after(line, "major-frame barrier: ")?,
        number_after(line, "longest wait ")?,
        number_after(line, "latest leave ")?,
    ))
}

/// `(min, max)` of the numbers after `key` on the lines containing `marker`.
pub fn parse_range(com1: &str, marker: &str, key: &str) -> Option<(u64, u64)> {
    let values = com1
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| number_after(l, key));
    values.fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((min, max)) => Some((v.min(min), v.max(max))),
    })
}

/// Builds and boots `system` (a name in systems/) with the release kernel;
/// returns COM1 and COM2.
fn boot(paths: &Paths, system: &str) -> Result<(String, String), Error> {
    crate::bench::boot_system(paths, system, &Variant::release(), false)
}

/// Measures and writes the "Scheduling" section; whether every number was
/// found.
pub fn scheduling(paths: &Paths, doc_path: &Path) -> Result<bool, Error> {
    let switch = |system: &str| -> Result<Option<(u64, u64)>, Error> {
        let (com1, _) = boot(paths, system)?;
        Ok(parse_gap(&com1).map(|(min, max)| {
            (
                min.saturating_sub(LOAD_FRAME_CYCLES),
                max.saturating_sub(LOAD_FRAME_CYCLES),
            )
        }))
    };
    let on_boot_cpu = switch("timing")?;
    let on_ap = switch("smp_timing")?;
    let (_, smp_com2) = boot(paths, "smp")?;
    let barrier = parse_barrier(&smp_com2);
    let ipi = parse_range(&boot(paths, "ipi")?.0, "ponger: ipi ", "seen after ");
    let timed = parse_range(&boot(paths, "timed")?.0, "alarm: round ", "lateness ");

    let range = |value: Option<(u64, u64)>| {
        value.map_or("not reported".to_owned(), |(min, max)| {
            if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            }
        })
    };
    let (passed, wait, leave) = barrier.map_or(
        (
            "?".to_owned(),
            "not reported".to_owned(),
            "not reported".to_owned(),
        ),
        |(p, w, l)| (p.to_string(), w.to_string(), l.to_string()),
    );
    println!();
    println!("scheduling (Bochs, 1 tick = 1 instruction):");
    println!(
        "  minor-frame switch, CPU 0       {} ticks",
        range(on_boot_cpu)
    );
    println!("  minor-frame switch, CPU 1 of 4  {} ticks", range(on_ap));
    println!(
        "  major-frame barrier ({passed} passed, 4 CPUs): longest wait {wait}, latest leave {leave} ticks"
    );
    println!(
        "  ipi event, send to handler on another CPU  {} ticks",
        range(ipi)
    );
    println!(
        "  timed event, deadline to the woken subject {} ticks",
        range(timed)
    );

    let body = format!(
        "Measured with `cargo xtask bench` (release kernel, Bochs 2.7, one TSC tick per\n\
         instruction; `xtask/src/bench_sched.rs` says how each number is read).\n\n\
         | measurement | ticks |\n\
         |---|---|\n\
         | minor-frame switch, timer exit to the next subject's first instruction, CPU 0 (`timing`) | {} |\n\
         | the same on CPU 1 of a 4-CPU plan (`smp_timing`) | {} |\n\
         | major-frame barrier, longest wait of a CPU (`smp`, 4 CPUs, {passed} barriers) | {wait} |\n\
         | major-frame barrier skew: latest leave after the last arrival opened it | {leave} |\n\
         | `ipi` event: sender's TSC before its `vmcall` (CPU 0) to the target's interrupt handler (CPU 1), 5 events (`ipi`) | {} |\n\
         | timed event: deadline to the owner's return from `wait`, 5 rounds (`timed`) | {} |\n\n\
         The switch includes the frame's fixed entry pad: {lean} ticks on CPU 0\n\
         (`LEAN_ENTRY_PAD`: into the first frame of a one-CPU plan after a native\n\
         partition), {pad} on CPU 1 of `smp_timing` (`FRAME_ENTRY_PAD`: the\n\
         barrier of a plan of several CPUs; docs/kernel.md, \"Pads per boundary\"). The\n\
         `ipi` target spins with no exit of its own: without the IPI its vector would\n\
         wait for its next frame (docs/kernel.md, \"ipi events\").",
        range(on_boot_cpu),
        range(on_ap),
        range(ipi),
        range(timed),
        pad = septum_abi::timing::FRAME_ENTRY_PAD.get(),
        lean = septum_abi::timing::LEAN_ENTRY_PAD.get(),
    );
    let doc = fs::read_to_string(doc_path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    fs::write(doc_path, replace_section(&doc, "## Scheduling", &body))
        .map_err(|e| format!("cannot write {}: {e}", doc_path.display()))?;
    println!("wrote the Scheduling section of {}", doc_path.display());
    Ok(on_boot_cpu.is_some()
        && on_ap.is_some()
        && barrier.is_some()
        && ipi.is_some()
        && timed.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_gap_and_the_barrier() {
        let com1 = "timing: P=100000\ntiming: off-CPU gap min=61012 max=61015\n";
        assert_eq!(parse_gap(com1), Some((61012, 61015)));
        let com2 = "septum: major-frame barrier: 30 passed, longest wait 95 TSC ticks, \
                    latest leave 20 TSC ticks after it opened\n";
        assert_eq!(parse_barrier(com2), Some((30, 95, 20)));
        assert_eq!(parse_gap("nothing"), None);
        assert_eq!(parse_barrier("nothing"), None);
        let ipi = "ponger: waiting\nponger: ipi 1 seen after 535 cycles\nponger: ipi 2 seen after 530 cycles\n";
        assert_eq!(
            parse_range(ipi, "ponger: ipi ", "seen after "),
            Some((530, 535))
        );
        assert_eq!(parse_range("nothing", "ponger: ipi ", "seen after "), None);
    }

    /// The load frame the gap spans is the one the policies give.
    #[test]
    fn the_load_frame_is_the_policies() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for system in ["timing.xml", "smp_timing.xml"] {
            let text = fs::read_to_string(root.join("systems").join(system)).unwrap();
            assert!(
                text.contains(r#"<minorFrame partition="p_load" ticks="6"/>"#)
                    && text.contains(r#"tickRate="1000""#),
                "{system}: the load frame is no longer 6 ticks at tickRate 1000"
            );
        }
        for hardware in ["bochs-tigerlake.xml", "bochs-tigerlake-4cpu.xml"] {
            let text = fs::read_to_string(root.join("hardware").join(hardware)).unwrap();
            assert!(text.contains(r#"speed="10000""#), "{hardware}");
        }
        assert_eq!(LOAD_FRAME_CYCLES, 6 * 10_000 * 1000 / 1000);
    }
}
