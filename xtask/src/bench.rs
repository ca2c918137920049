//! `cargo xtask bench`: what a hypercall costs, how fast the composer is,
//! and how long an image takes to boot.
//!
//! Boots `systems/bench.xml` twice: with the release kernel (the bench
//! subject prints min / median / max TSC ticks of a `vmcall` round trip and
//! of an empty `rdtsc` pair; in Bochs one tick is one instruction, so the
//! numbers are exact instruction counts) and with the `count-vmcs` kernel
//! (which prints VMREAD/VMWRITE accesses per VMCALL exit at power off).
//! Then measures scheduling ([`crate::bench_sched`]: the minor-frame switch
//! on CPU 0 and on an application processor, the major-frame barrier's
//! wait and skew; its own "Scheduling" section).
//! Then runs the composer's criterion benches. Then boots the demo and
//! generated systems of 55 and 200 subjects up to the kernel banner
//! ([`crate::boottime`]). It also measures the minor-frame switch and
//! checks that the kernel's frame entry pad covers it
//! ([`crate::bench_switch`]). The Bochs numbers replace the "Hypercall" and
//! "Boot time" sections of docs/benchmarks.md together with the command
//! that produced them; the other sections of that file are left as they
//! are. `--boot-only` measures the boot times alone.

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::bochs::{self, BootOptions};
use crate::boottime;
use crate::pipeline::{self, Paths, Variant};
use crate::prereq;
use crate::util::{self, Error, Output};

/// min / median / max of one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Smallest sample.
    pub min: u64,
    /// Median sample.
    pub median: u64,
    /// Largest sample.
    pub max: u64,
}

/// The value after `key=` in `line` (up to the next space).
fn field(line: &str, key: &str) -> Option<u64> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    line.get(at..)?.split_whitespace().next()?.parse().ok()
}

/// Parses the bench subject's line for `what` ("vmcall round trip").
pub fn parse_stats(com1: &str, what: &str) -> Option<Stats> {
    let line = com1
        .lines()
        .find(|l| l.contains(&format!("bench: {what} ticks")))?;
    Some(Stats {
        min: field(line, "min")?,
        median: field(line, "median")?,
        max: field(line, "max")?,
    })
}

/// Parses the count-vmcs kernel's line.
pub fn parse_vmcs_count(com2: &str) -> Option<u64> {
    let key = "vmcs accesses per VMCALL exit:";
    let line = com2.lines().find(|l| l.contains(key))?;
    line.get(line.find(key)? + key.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Replaces the body of `## Hypercall` in `doc` (or appends the section).
pub fn replace_section(doc: &str, heading: &str, body: &str) -> String {
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    let mut replaced = false;
    while let Some(line) = lines.next() {
        if line.trim() == heading && !replaced {
            out.push_str(line);
            out.push_str("\n\n");
            out.push_str(body.trim_end());
            out.push_str("\n\n");
            while let Some(next) = lines.peek() {
                if next.starts_with("## ") {
                    break;
                }
                lines.next();
            }
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.ends_with("\n\n") && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("{heading}\n\n{}\n", body.trim_end()));
    }
    out
}

fn boot_bench(paths: &Paths, variant: &Variant) -> Result<(String, String), Error> {
    boot_system(paths, "bench", variant, true)
}

/// Builds the image of `system` (a name in systems/) with `variant` and
/// boots it once in Bochs (two minutes at most); returns COM1 and COM2.
/// Every Bochs benchmark reads its numbers from these.
pub fn boot_system(
    paths: &Paths,
    system: &str,
    variant: &Variant,
    stream: bool,
) -> Result<(String, String), Error> {
    let bins = paths.subject_binaries();
    let image = pipeline::image_from_parts(paths, system, variant, &bins, Output::Inherit)?;
    let options = BootOptions {
        timeout: Duration::from_secs(120),
        stream,
        stop_on: None,
        stop_grace: Duration::from_secs(3),
    };
    let boot = bochs::boot(&image.dir, &options)?;
    eprintln!(
        "xtask: {system}: {} after {:.1} s",
        boot.ending,
        boot.wall.as_secs_f64()
    );
    Ok((boot.com1, boot.com2))
}

fn criterion_summary(root: &Path) -> Result<Vec<String>, Error> {
    let mut cmd = util::cargo(root);
    cmd.args(["bench", "-p", "septum-compose", "-p", "septum-policy"]);
    eprintln!("$ {}", util::describe(&cmd));
    let (ok, text) = util::run_capture(&mut cmd)?;
    if !ok {
        return Err(format!("composer benches failed:\n{}", util::tail(&text, 30)).into());
    }
    // Criterion prints "name  time: [low mid high]", sometimes with the name
    // on its own line first.
    let mut summary = Vec::new();
    let mut last_name = String::new();
    for line in text.lines() {
        if let Some(at) = line.find("time:") {
            let name = line.get(..at).unwrap_or_default().trim();
            let name = if name.is_empty() {
                last_name.as_str()
            } else {
                name
            };
            summary.push(format!(
                "{name}: {}",
                line.get(at..).unwrap_or_default().trim()
            ));
        } else if !line.trim().is_empty() && !line.starts_with(' ') {
            last_name = line.trim().to_owned();
        }
    }
    Ok(summary)
}

/// `cargo xtask bench [--boot-only | --interrupts-only | --linux]`.
pub fn bench(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    let boot_only = match args {
        [] => false,
        [flag] if flag == "--boot-only" => true,
        [flag] if flag == "--interrupts-only" => return crate::bench_irq::only(paths),
        [flag] if flag == "--linux" => return crate::bench_linux::only(paths),
        _ => {
            return Err(format!(
                "bench: unexpected arguments {args:?} (known: --boot-only, --interrupts-only, --linux)"
            )
            .into());
        }
    };
    prereq::ensure(false, Output::Inherit)?;
    pipeline::build_host(paths, Output::Inherit)?;
    pipeline::build_subjects(paths, Output::Inherit)?;
    let doc_path = paths.root.join("docs").join("benchmarks.md");
    let hypercall_ok = if boot_only {
        true
    } else {
        hypercall(paths, &doc_path)? & crate::bench_irq::interrupts(paths, &doc_path)?
    };
    let switch_ok = boot_only || crate::bench_switch::run(paths)?;
    let scheduling_ok = boot_only || crate::bench_sched::scheduling(paths, &doc_path)?;
    let boot_ok = boot_times(paths, &doc_path)?;
    Ok(if hypercall_ok && switch_ok && scheduling_ok && boot_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Boot times of the demo and the generated systems into the "Boot time"
/// section; whether every boot reached the banner.
fn boot_times(paths: &Paths, doc_path: &Path) -> Result<bool, Error> {
    let results = boottime::measure_all(paths)?;
    let table = boottime::table(&results);
    println!();
    println!("boot time, Bochs start to the kernel banner on COM2:");
    print!("{table}");
    let body = format!(
        "Measured with `cargo xtask bench` (or `cargo xtask bench --boot-only`): wall time\n\
         from starting Bochs 2.7 (the configuration of [building.md](building.md)) to the\n\
         kernel's first COM2 line (`{banner}`), which the kernel prints before it\n\
         checks or starts anything, so this is firmware, GRUB and loading time. {runs} boots\n\
         each. The generated systems are `gen_policy DIR N N 1 --hardware\n\
         hardware/bochs-tigerlake.xml` (N subjects, N channels, one CPU; written into\n\
         `build/gen/N/` at bench time); how images are packed is in\n\
         [building.md](building.md#how-an-image-is-packed). Wall times depend on the load of\n\
         the machine (2 cores shared with other builds when these were taken).\n\n\
         {table}",
        banner = boottime::BANNER,
        runs = boottime::RUNS,
    );
    let doc = fs::read_to_string(doc_path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    fs::write(doc_path, replace_section(&doc, "## Boot time", &body))
        .map_err(|e| format!("cannot write {}: {e}", doc_path.display()))?;
    println!("wrote the Boot time section of {}", doc_path.display());
    Ok(results.iter().all(|r| r.median().is_some()))
}

/// The hypercall boots and the composer benches, into the "Hypercall"
/// section; whether every part produced its numbers.
fn hypercall(paths: &Paths, doc_path: &Path) -> Result<bool, Error> {
    let (com1, _) = boot_bench(paths, &Variant::release())?;
    let empty = parse_stats(&com1, "empty rdtsc pair")
        .ok_or("bench: no `empty rdtsc pair` line on COM1")?;
    let vmcall = parse_stats(&com1, "vmcall round trip")
        .ok_or("bench: no `vmcall round trip` line on COM1")?;
    let counted = Variant {
        debug: false,
        features: vec!["count-vmcs".to_owned()],
    };
    let vmcs = match boot_bench(paths, &counted) {
        Ok((_, com2)) => parse_vmcs_count(&com2),
        Err(e) => {
            eprintln!("xtask: count-vmcs boot failed: {e}");
            None
        }
    };
    let criterion = criterion_summary(&paths.root);

    let net = vmcall.median.saturating_sub(empty.median);
    let vmcs_text = vmcs.map_or("not reported".to_owned(), |n| n.to_string());
    println!();
    println!("hypercall (Bochs tigerlake, 1 tick = 1 instruction, 1000 samples):");
    println!(
        "  empty rdtsc pair     min {:>6} median {:>6} max {:>6}",
        empty.min, empty.median, empty.max
    );
    println!(
        "  vmcall round trip    min {:>6} median {:>6} max {:>6}",
        vmcall.min, vmcall.median, vmcall.max
    );
    println!("  vmcall net (median)  {net} ticks");
    println!("  VMCS accesses per VMCALL exit: {vmcs_text}");
    match &criterion {
        Ok(lines) => {
            println!("composer (criterion, host):");
            for line in lines {
                println!("  {line}");
            }
        }
        Err(e) => println!("composer benches: {e}"),
    }

    let body = format!(
        "Measured with `cargo xtask bench` (boots `systems/bench.xml` in Bochs 2.7, cpu model\n\
         tigerlake; Bochs advances the TSC by one tick per instruction, so these are exact\n\
         instruction counts, not timings). The `bench` subject raises a `self` event with\n\
         no effect between two `rdtsc`, 1000 times; the `count-vmcs` kernel build counts\n\
         VMREAD/VMWRITE per VMCALL exit.\n\n\
         | measurement | min | median | max |\n\
         |---|---|---|---|\n\
         | empty `rdtsc` pair (ticks) | {} | {} | {} |\n\
         | `vmcall` round trip (ticks) | {} | {} | {} |\n\n\
         Net hypercall round trip (median minus empty pair): **{net} ticks**.\n\
         VMCS accesses (VMREAD + VMWRITE) per VMCALL exit: **{vmcs_text}**.\n\
         For comparison, the anchor kernel copies the whole guest state on every exit\n\
         (about 55 VMREAD and 50 VMWRITE).",
        empty.min, empty.median, empty.max, vmcall.min, vmcall.median, vmcall.max
    );
    let doc = fs::read_to_string(doc_path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    fs::write(doc_path, replace_section(&doc, "## Hypercall", &body))
        .map_err(|e| format!("cannot write {}: {e}", doc_path.display()))?;
    println!("wrote the Hypercall section of {}", doc_path.display());
    Ok(criterion.is_ok() && vmcs.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines() {
        let com1 = "bench: empty rdtsc pair ticks min=2 median=2 max=9 samples=1000\n\
                    bench: vmcall round trip ticks min=80 median=84 max=4000 samples=1000\n";
        assert_eq!(
            parse_stats(com1, "empty rdtsc pair"),
            Some(Stats {
                min: 2,
                median: 2,
                max: 9
            })
        );
        assert_eq!(
            parse_stats(com1, "vmcall round trip"),
            Some(Stats {
                min: 80,
                median: 84,
                max: 4000
            })
        );
        assert_eq!(parse_stats(com1, "other"), None);
        assert_eq!(
            parse_vmcs_count("x\nseptum: vmcs accesses per VMCALL exit: 7\n"),
            Some(7)
        );
        assert_eq!(
            parse_vmcs_count("septum: vmcs accesses per VMCALL exit: many\n"),
            None
        );
    }

    #[test]
    fn replaces_only_its_section() {
        let doc =
            "# B\n\n## Composer\n\nfast\n\n## Hypercall\n\nold\nnumbers\n\n## Other\n\nkeep\n";
        let new = replace_section(doc, "## Hypercall", "new");
        assert_eq!(
            new,
            "# B\n\n## Composer\n\nfast\n\n## Hypercall\n\nnew\n\n## Other\n\nkeep\n"
        );
        let appended = replace_section("# B\n\n## Composer\n\nfast\n", "## Hypercall", "new");
        assert_eq!(
            appended,
            "# B\n\n## Composer\n\nfast\n\n## Hypercall\n\nnew\n"
        );
    }
}
