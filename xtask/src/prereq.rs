//! Prerequisites: Debian packages for Bochs, the ISO and Graphviz, rustup pieces.
//!
//! Checked with `dpkg -s` and `rustup`; installed without questions when
//! running as root (`apt-get install -y`, non-interactive). Not root: the
//! exact `sudo` command is printed and xtask stops, because silently
//! running without an emulator would only fail later and less clearly.
//! The decision is the pure [`package_plan`], unit-tested without a
//! package manager.

use std::process::Command;

use crate::util::{self, Error, Output};

/// Debian packages `run` and `test` need (`graphviz` gives the `dot` that
/// `septum flows --format svg` and its CLI test run; `qemu-system-x86`
/// the VT-d test's machine).
pub const PACKAGES: [&str; 8] = [
    "bochs",
    "bochsbios",
    "vgabios",
    "bochs-sdl",
    "grub-pc-bin",
    "xorriso",
    "graphviz",
    "qemu-system-x86",
];

fn installed(package: &str) -> bool {
    Command::new("dpkg")
        .args(["-s", package])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("Status: install ok installed")
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn stdout_of(cmd: &mut Command) -> String {
    cmd.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// What to do about the Debian packages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackagePlan<'a> {
    /// Everything is installed.
    Nothing,
    /// Root: install these with `apt-get install -y`.
    Install(Vec<&'a str>),
    /// Not root: stop with this message, which holds the exact command.
    Refuse(String),
}

/// Decides from what is missing and whether we are root; no side effects.
pub fn package_plan<'a>(missing: &[&'a str], root: bool) -> PackagePlan<'a> {
    if missing.is_empty() {
        PackagePlan::Nothing
    } else if root {
        PackagePlan::Install(missing.to_vec())
    } else {
        PackagePlan::Refuse(format!(
            "missing Debian packages; run:\n  sudo apt-get install -y {}",
            missing.join(" ")
        ))
    }
}

/// Makes sure the packages, the bare-metal target and (with `nightly`)
/// nightly with Miri and rust-src are there.
pub fn ensure(nightly: bool, output: Output<'_>) -> Result<(), Error> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    let plan = if missing.is_empty() {
        PackagePlan::Nothing
    } else {
        package_plan(&missing, is_root())
    };
    match plan {
        PackagePlan::Nothing => {}
        PackagePlan::Refuse(message) => return Err(message.into()),
        PackagePlan::Install(missing) => install_packages(&missing, output)?,
    }
    ensure_rust(nightly, output)
}

/// `apt-get install -y` (after `apt-get update` if the first try fails).
fn install_packages(missing: &[&str], output: Output<'_>) -> Result<(), Error> {
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(missing);
    install.env("DEBIAN_FRONTEND", "noninteractive");
    if util::run(&mut install, output).is_err() {
        // A fresh machine may have no package lists yet.
        let mut update = Command::new("apt-get");
        update
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive");
        util::run(&mut update, output)?;
        util::run(&mut install, output)?;
    }
    Ok(())
}

/// The bare-metal target and, with `nightly`, the pinned nightly with Miri.
fn ensure_rust(nightly: bool, output: Output<'_>) -> Result<(), Error> {
    let mut targets = Command::new("rustup");
    targets
        .args(["target", "list", "--installed"])
        .env_remove("RUSTUP_TOOLCHAIN");
    targets.current_dir(env!("CARGO_MANIFEST_DIR"));
    if !stdout_of(&mut targets)
        .lines()
        .any(|l| l.trim() == "x86_64-unknown-none")
    {
        let mut add = Command::new("rustup");
        add.args(["target", "add", "x86_64-unknown-none"])
            .env_remove("RUSTUP_TOOLCHAIN");
        add.current_dir(env!("CARGO_MANIFEST_DIR"));
        util::run(&mut add, output)?;
    }

    if nightly {
        let mut components = Command::new("rustup");
        components.args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            util::NIGHTLY,
        ]);
        components.env_remove("RUSTUP_TOOLCHAIN");
        let have = stdout_of(&mut components);
        let has = |c: &str| have.lines().any(|l| l.trim().starts_with(c));
        if !has("miri") || !has("rust-src") {
            let mut install = Command::new("rustup");
            install.args([
                "toolchain",
                "install",
                util::NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "miri,rust-src",
            ]);
            install.env_remove("RUSTUP_TOOLCHAIN");
            util::run(&mut install, output)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitCode;

    #[test]
    fn nothing_missing_nothing_to_do() {
        assert_eq!(package_plan(&[], false), PackagePlan::Nothing);
        assert_eq!(package_plan(&[], true), PackagePlan::Nothing);
    }

    #[test]
    fn root_installs_exactly_the_missing() {
        assert_eq!(
            package_plan(&["bochs", "xorriso"], true),
            PackagePlan::Install(vec!["bochs", "xorriso"])
        );
    }

    #[test]
    fn not_root_prints_the_exact_command_and_fails() {
        let PackagePlan::Refuse(message) = package_plan(&["bochs-sdl", "grub-pc-bin"], false)
        else {
            panic!("not root must refuse");
        };
        assert_eq!(
            message.lines().nth(1),
            Some("  sudo apt-get install -y bochs-sdl grub-pc-bin")
        );
        // `ensure` returns the message as its error; xtask's `main` prints
        // it and exits with a failure code.
        let err: Error = message.into();
        assert_eq!(crate::finish(Err(err)), ExitCode::FAILURE);
    }
}
