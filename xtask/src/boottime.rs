//! `cargo xtask bench`'s boot-time measurement: wall time from Bochs start
//! to the kernel's banner line on COM2, for the demo and for generated
//! systems of 55 and 200 subjects.
//!
//! Why: an image is loaded by GRUB from a CD-ROM in an emulator, so its
//! shape (number of ELF segments, bytes in the file) decides how long a
//! boot takes before the kernel runs at all; a 55-subject image once never
//! got there (docs/building.md, "How an image is packed"). The banner
//! (`septum: booting system ...`) is the kernel's first line, printed
//! before it checks or starts anything, so the time to it is the loader's
//! and the firmware's time.
//!
//! The generated systems come from `lib/compose/examples/gen_policy.rs`
//! (`testgen::policy_xml`: one partition, one private page and one channel
//! per subject) with the Bochs hardware description, written into
//! `build/gen/N/` at bench time; nothing generated is committed. Their
//! subjects are the composer's sample ELF, which is never meant to run:
//! the measurement stops at the banner.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bochs::{self, BootOptions, Ending};
use crate::pipeline::{self, Paths, Variant};
use crate::util::{self, Error, Output};

/// The kernel's first line on COM2.
pub const BANNER: &str = "septum: booting system";

/// Boots per system; the median is reported.
pub const RUNS: usize = 3;

/// Subject counts of the generated systems.
pub const GENERATED: [usize; 2] = [55, 200];

/// How long a boot may take to reach the banner.
const BANNER_TIMEOUT: Duration = Duration::from_secs(300);

/// The measurement of one system.
#[derive(Clone, Debug, PartialEq)]
pub struct BootTime {
    /// What was booted (`demo`, `200 subjects`).
    pub system: String,
    /// Regions in the composition.
    pub regions: usize,
    /// `PT_LOAD` segments of system.elf (its program headers).
    pub segments: u16,
    /// Size of system.elf in bytes.
    pub elf_bytes: u64,
    /// Size of system.iso in bytes.
    pub iso_bytes: u64,
    /// Seconds from Bochs start to the banner, one per boot; `None` when
    /// the banner did not come within the timeout.
    pub banner: Vec<Option<f64>>,
}

impl BootTime {
    /// The median of the boots, `None` if any boot missed the banner.
    pub fn median(&self) -> Option<f64> {
        let mut times: Vec<f64> = self.banner.iter().copied().collect::<Option<_>>()?;
        times.sort_by(f64::total_cmp);
        times.get(times.len() / 2).copied()
    }
}

/// Writes the generated policy for `subjects` subjects (and its ELF) into
/// `build/gen/N/` and returns the policy path (`scaleN.xml`, so the image
/// lands in `build/scaleN/`).
fn generate(paths: &Paths, subjects: usize) -> Result<PathBuf, Error> {
    let dir = util::create_dir(&paths.build.join("gen").join(subjects.to_string()))?;
    let hardware = paths.root.join("hardware").join("bochs-tigerlake.xml");
    let mut cmd = util::cargo(&paths.root);
    cmd.env("CARGO_TARGET_DIR", &paths.host_target);
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "septum-compose",
        "--example",
        "gen_policy",
        "--",
    ]);
    cmd.arg(&dir)
        .arg(subjects.to_string())
        .arg(subjects.to_string())
        .arg("1")
        .arg("--hardware")
        .arg(&hardware);
    util::run(&mut cmd, Output::Inherit)?;
    let policy = dir.join(format!("scale{subjects}.xml"));
    fs::rename(dir.join("policy.xml"), &policy).map_err(|e| {
        format!(
            "cannot rename the generated policy to {}: {e}",
            policy.display()
        )
    })?;
    Ok(policy)
}

/// `e_phnum` of an ELF file.
fn program_headers(elf: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes([*elf.get(56)?, *elf.get(57)?]))
}

/// Number of regions in the composer's regions.json.
fn count_regions(composed: &Path) -> usize {
    fs::read_to_string(composed.join("regions.json"))
        .map(|text| text.matches("\"file_offset\"").count())
        .unwrap_or(0)
}

/// Builds the image of `system` (a name in systems/ or a policy path) and
/// boots it [`RUNS`] times up to the banner.
fn measure(paths: &Paths, label: &str, system: &str, binaries: &Path) -> Result<BootTime, Error> {
    let image = pipeline::image_from_parts(
        paths,
        system,
        &Variant::release(),
        binaries,
        Output::Inherit,
    )?;
    let elf_path = image.dir.join("system.elf");
    let elf = fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let iso_bytes = fs::metadata(&image.iso)
        .map_err(|e| format!("{}: {e}", image.iso.display()))?
        .len();
    let options = BootOptions {
        timeout: BANNER_TIMEOUT,
        stream: false,
        stop_on: Some(BANNER.to_owned()),
        stop_grace: Duration::ZERO,
    };
    let mut banner = Vec::new();
    for run in 1..=RUNS {
        let boot = bochs::boot(&image.dir, &options)?;
        let seen = boot.ending == Ending::StopLine && boot.com2.contains(BANNER);
        let time = seen.then_some(boot.wall.as_secs_f64());
        match time {
            Some(t) => eprintln!("xtask: {label}: banner after {t:.2} s (boot {run}/{RUNS})"),
            None => eprintln!(
                "xtask: {label}: no banner ({}, boot {run}/{RUNS})",
                boot.ending
            ),
        }
        banner.push(time);
    }
    Ok(BootTime {
        system: label.to_owned(),
        regions: count_regions(&image.composed),
        segments: program_headers(&elf).unwrap_or(0),
        elf_bytes: elf.len() as u64,
        iso_bytes,
        banner,
    })
}

/// Measures the demo and every generated system. Host tools and subjects
/// must be built.
pub fn measure_all(paths: &Paths) -> Result<Vec<BootTime>, Error> {
    let mut results = vec![measure(paths, "demo", "demo", &paths.subject_binaries())?];
    for subjects in GENERATED {
        let policy = generate(paths, subjects)?;
        let binaries = policy
            .parent()
            .ok_or("generated policy has no directory")?
            .to_path_buf();
        let label = format!("{subjects} subjects");
        results.push(measure(
            paths,
            &label,
            &policy.display().to_string(),
            &binaries,
        )?);
    }
    Ok(results)
}

fn seconds(t: Option<f64>) -> String {
    t.map_or("no banner".to_owned(), |t| format!("{t:.1} s"))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The table rows, one per system.
pub fn table(results: &[BootTime]) -> String {
    let mut t = String::from(
        "| system | regions | ELF segments | system.elf | system.iso | to banner (median) | boots |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let boots: Vec<String> = r.banner.iter().map(|b| seconds(*b)).collect();
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.system,
            r.regions,
            r.segments,
            mib(r.elf_bytes),
            mib(r.iso_bytes),
            seconds(r.median()),
            boots.join(", ")
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(banner: Vec<Option<f64>>) -> BootTime {
        BootTime {
            system: "demo".into(),
            regions: 25,
            segments: 4,
            elf_bytes: 3 * 1024 * 1024,
            iso_bytes: 1024 * 1024,
            banner,
        }
    }

    #[test]
    fn median_needs_every_boot() {
        assert_eq!(
            sample(vec![Some(3.0), Some(1.0), Some(2.0)]).median(),
            Some(2.0)
        );
        assert_eq!(sample(vec![Some(3.0), None, Some(2.0)]).median(), None);
    }

    #[test]
    fn table_rows() {
        let t = table(&[sample(vec![Some(1.84), None])]);
        assert!(
            t.ends_with("| demo | 25 | 4 | 3.0 MiB | 1.0 MiB | no banner | 1.8 s, no banner |\n"),
            "{t}"
        );
    }
}
