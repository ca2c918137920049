//! The build pipeline of one system image.
//!
//! ```text
//! cargo build --release -p septum            host tools (septum compose/pack)
//! cargo build --release   (subjects/)        subject ELFs
//! septum compose systems/S.xml --binaries .. --out build/S/composed
//! SEPTUM_SPEC=build/S/composed/spec.rs cargo build --release (kernel/)
//! septum pack --composed .. --kernel .. --out build/S/system.elf --iso build/S/system.iso
//! ```
//!
//! The kernel and subjects are built into `build/target/{kernel,subjects}`
//! (not their workspaces' own `target/`), so xtask never waits on their
//! owners' build locks and `cargo clean` there does not break a run. The
//! kernel is rebuilt for each system because its spec is compiled in; its
//! dependencies are built once. A variant (debug profile, cargo features
//! such as `count-vmcs`) gets its own output directory
//! `build/S-<variant>/`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bochs;
use crate::util::{self, Error, Output};

/// Where things are.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Repository root.
    pub root: PathBuf,
    /// `build/` under the root: everything xtask produces.
    pub build: PathBuf,
    /// Target directory of the host workspace (honours `CARGO_TARGET_DIR`).
    pub host_target: PathBuf,
}

impl Paths {
    /// Finds the repository from xtask's own manifest directory.
    pub fn discover() -> Result<Self, Error> {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest
            .parent()
            .ok_or("xtask is not inside the repository")?
            .to_path_buf();
        let host_target = match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            Some(dir) => root.join(dir),
            None => root.join("target"),
        };
        Ok(Self {
            build: root.join("build"),
            host_target,
            root,
        })
    }

    /// The `septum` tool built by [`build_host`].
    pub fn septum(&self) -> PathBuf {
        self.host_target.join("release").join("septum")
    }

    /// Target directory for the kernel builds.
    pub fn kernel_target(&self) -> PathBuf {
        self.build.join("target").join("kernel")
    }

    /// Target directory for the subject builds.
    pub fn subjects_target(&self) -> PathBuf {
        self.build.join("target").join("subjects")
    }

    /// Where the release subject ELFs land.
    pub fn subject_binaries(&self) -> PathBuf {
        self.subjects_target()
            .join("x86_64-unknown-none")
            .join("release")
    }

    /// The policy file of `system`: a path to an `.xml`, or a name in
    /// `systems/`.
    pub fn policy(&self, system: &str) -> PathBuf {
        if system.ends_with(".xml") {
            let path = PathBuf::from(system);
            if path.is_absolute() {
                path
            } else {
                self.root.join(path)
            }
        } else {
            self.root.join("systems").join(format!("{system}.xml"))
        }
    }
}

/// How the kernel is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// Debug profile (checks misaligned pointer reads, overflow).
    pub debug: bool,
    /// Kernel cargo features.
    pub features: Vec<String>,
}

impl Variant {
    /// The default: release profile, no features.
    pub fn release() -> Self {
        Self::default()
    }

    /// Suffix of the output directory: `""`, `-debug`, `-count-vmcs`, ...
    pub fn suffix(&self) -> String {
        let mut s = String::new();
        if self.debug {
            s.push_str("-debug");
        }
        for f in &self.features {
            s.push('-');
            s.push_str(f);
        }
        s
    }
}

/// A built system image.
#[derive(Clone, Debug)]
pub struct Image {
    /// Output directory (`build/S<suffix>/`), also Bochs' working directory.
    pub dir: PathBuf,
    /// The composer's output directory (spec.rs, report).
    pub composed: PathBuf,
    /// The bootable ISO.
    pub iso: PathBuf,
}

/// Builds the `septum` tool (release).
pub fn build_host(paths: &Paths, output: Output<'_>) -> Result<(), Error> {
    let mut cmd = util::cargo(&paths.root);
    cmd.args(["build", "--release", "-p", "septum"]);
    cmd.env("CARGO_TARGET_DIR", &paths.host_target);
    util::run(&mut cmd, output)
}

/// Builds every subject (release) and returns the directory of the ELFs.
pub fn build_subjects(paths: &Paths, output: Output<'_>) -> Result<PathBuf, Error> {
    let mut cmd = util::cargo(&paths.root.join("subjects"));
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd.args(["build", "--release", "--target-dir"])
        .arg(paths.subjects_target());
    util::run(&mut cmd, output)?;
    Ok(paths.subject_binaries())
}

/// `septum compose` of `system` into `dir/composed`.
pub fn compose(
    paths: &Paths,
    system: &str,
    binaries: &Path,
    dir: &Path,
    output: Output<'_>,
) -> Result<PathBuf, Error> {
    let policy = paths.policy(system);
    if !policy.is_file() {
        return Err(format!(
            "no policy {} (systems/ holds the known systems)",
            policy.display()
        )
        .into());
    }
    let composed = dir.join("composed");
    if composed.exists() {
        fs::remove_dir_all(&composed)
            .map_err(|e| format!("cannot clear {}: {e}", composed.display()))?;
    }
    let mut cmd = Command::new(paths.septum());
    cmd.arg("compose")
        .arg(&policy)
        .arg("--binaries")
        .arg(binaries)
        .arg("--out")
        .arg(&composed);
    util::run(&mut cmd, output).map_err(|e| {
        let systems = paths.root.join("systems");
        if policy.starts_with(&systems) {
            return e;
        }
        // A policy from elsewhere, perhaps a copy of a shipped one: its
        // references are relative to where it now is.
        Error(format!(
            "{e}\nnote: the policy's <hardware href> and <include href> are resolved \
             relative to its own directory, {}; the shipped hardware files are in {}",
            policy.parent().unwrap_or(Path::new("")).display(),
            paths.root.join("hardware").display()
        ))
    })?;
    Ok(composed)
}

/// The kernel build command for the spec at `spec` (absolute).
pub fn kernel_command(paths: &Paths, spec: &Path, variant: &Variant, action: &str) -> Command {
    let mut cmd = util::cargo(&paths.root.join("kernel"));
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd.env("SEPTUM_SPEC", spec);
    cmd.arg(action);
    if !variant.debug {
        cmd.arg("--release");
    }
    if !variant.features.is_empty() {
        cmd.arg("--features").arg(variant.features.join(","));
    }
    cmd.arg("--target-dir").arg(paths.kernel_target());
    cmd
}

/// Builds the kernel for the composed system and copies the ELF into `dir`.
pub fn build_kernel(
    paths: &Paths,
    composed: &Path,
    variant: &Variant,
    dir: &Path,
    output: Output<'_>,
) -> Result<PathBuf, Error> {
    let spec = composed.join("spec.rs");
    let mut cmd = kernel_command(paths, &spec, variant, "build");
    util::run(&mut cmd, output)?;
    let profile = if variant.debug { "debug" } else { "release" };
    let built = paths
        .kernel_target()
        .join("x86_64-unknown-none")
        .join(profile)
        .join("septum-kernel");
    let kernel = dir.join("septum-kernel");
    fs::copy(&built, &kernel).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            built.display(),
            kernel.display()
        )
    })?;
    Ok(kernel)
}

/// Composes, builds the kernel, packs, and writes the Bochs configuration
/// for `system`. Host tools and subjects must already be built.
pub fn image_from_parts(
    paths: &Paths,
    system: &str,
    variant: &Variant,
    binaries: &Path,
    output: Output<'_>,
) -> Result<Image, Error> {
    let name = Path::new(system)
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("bad system name {system}"))?;
    let dir = util::create_dir(&paths.build.join(format!("{name}{}", variant.suffix())))?;
    crate::linux::prepare(paths, &paths.policy(system), binaries, output)?;
    let composed = compose(paths, system, binaries, &dir, output)?;
    let kernel = build_kernel(paths, &composed, variant, &dir, output)?;
    let elf = dir.join("system.elf");
    let iso = dir.join("system.iso");
    let mut cmd = Command::new(paths.septum());
    cmd.arg("pack")
        .arg("--composed")
        .arg(&composed)
        .arg("--kernel")
        .arg(&kernel);
    cmd.arg("--out").arg(&elf).arg("--iso").arg(&iso);
    util::run(&mut cmd, output)?;
    if !iso.is_file() {
        return Err(format!("septum pack succeeded but wrote no {}", iso.display()).into());
    }
    bochs::write_config(&dir, &bochs::Machine::DEFAULT)?;
    Ok(Image { dir, composed, iso })
}

/// Where a boot of `image` on the Bochs machine `machine` runs: the image
/// directory for the default machine; otherwise `build/S-MODEL/` for
/// another CPU model, `build/S-e1000/` (or `S-MODEL-e1000/`) with a
/// network card (next to the image's `build/S/`), with a copy of the ISO
/// and its own `bochsrc`, so a test on another machine never shares serial
/// files with the image's own test when boots run in parallel.
pub fn boot_dir(
    paths: &Paths,
    image: &Image,
    machine: &bochs::Machine<'_>,
) -> Result<PathBuf, Error> {
    if machine.is_default() {
        return Ok(image.dir.clone());
    }
    let cpu_model = machine.cpu_model;
    if !bochs::valid_cpu_model(cpu_model) {
        return Err(format!("invalid Bochs CPU model `{cpu_model}`").into());
    }
    let stem = image
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("bad image directory {}", image.dir.display()))?;
    let model = if cpu_model == bochs::DEFAULT_CPU_MODEL {
        String::new()
    } else {
        format!("-{cpu_model}")
    };
    let dir = util::create_dir(
        &paths
            .build
            .join(format!("{stem}{model}{}", machine.nic.dir_suffix())),
    )?;
    let iso = dir.join("system.iso");
    fs::copy(&image.iso, &iso).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            image.iso.display(),
            iso.display()
        )
    })?;
    bochs::write_config(&dir, machine)?;
    Ok(dir)
}

/// The whole pipeline for one system.
pub fn build_image(
    paths: &Paths,
    system: &str,
    variant: &Variant,
    output: Output<'_>,
) -> Result<Image, Error> {
    build_host(paths, output)?;
    let binaries = build_subjects(paths, output)?;
    image_from_parts(paths, system, variant, &binaries, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_dir_per_cpu_model() {
        let root = env::temp_dir().join(format!("xtask-bootdir-{}", std::process::id()));
        let paths = Paths {
            build: root.join("build"),
            host_target: root.join("target"),
            root: root.clone(),
        };
        let dir = util::create_dir(&paths.build.join("demo")).unwrap();
        fs::write(dir.join("system.iso"), b"iso").unwrap();
        let image = Image {
            composed: dir.join("composed"),
            iso: dir.join("system.iso"),
            dir: dir.clone(),
        };
        assert_eq!(
            boot_dir(&paths, &image, &bochs::Machine::DEFAULT).unwrap(),
            dir
        );
        let model = |cpu_model| bochs::Machine {
            cpu_model,
            nic: bochs::Nic::None,
        };
        let other = boot_dir(&paths, &image, &model("core2_penryn_t9600")).unwrap();
        assert_eq!(other, paths.build.join("demo-core2_penryn_t9600"));
        assert_eq!(fs::read(other.join("system.iso")).unwrap(), b"iso");
        let rc = fs::read_to_string(other.join("bochsrc")).unwrap();
        assert!(rc.contains("cpu: model=core2_penryn_t9600,"), "{rc}");
        assert!(other.join("dbg.rc").is_file());
        assert!(boot_dir(&paths, &image, &model("bad model")).is_err());
        assert!(!paths.build.join("demo-bad model").exists());
        let nic = bochs::Machine {
            nic: bochs::Nic::E1000,
            ..bochs::Machine::DEFAULT
        };
        let with_nic = boot_dir(&paths, &image, &nic).unwrap();
        assert_eq!(with_nic, paths.build.join("demo-e1000"));
        let rc = fs::read_to_string(with_nic.join("bochsrc")).unwrap();
        assert!(rc.contains("slot1=e1000"), "{rc}");
        assert!(!fs::read_to_string(dir.join("bochsrc")).is_ok_and(|rc| rc.contains("e1000")));
        fs::remove_dir_all(&root).unwrap();
    }
}
