//! Prerequisites: Debian packages for Bochs and the ISO, rustup pieces.
//!
//! Checked with `dpkg -s` and `rustup`; installed without questions when
//! running as root (`apt-get install -y`, non-interactive). Not root: the
//! exact `sudo` command is printed and xtask stops, because silently
//! running without an emulator would only fail later and less clearly.

use std::process::Command;

use crate::util::{self, Error, Output};

/// Debian packages `run` and `test` need.
pub const PACKAGES: [&str; 6] = [
    "bochs",
    "bochsbios",
    "vgabios",
    "bochs-sdl",
    "grub-pc-bin",
    "xorriso",
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

/// Makes sure the packages, the bare-metal target and (with `nightly`)
/// nightly with Miri and rust-src are there.
pub fn ensure(nightly: bool, output: Output<'_>) -> Result<(), Error> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if !missing.is_empty() {
        if !is_root() {
            return Err(format!(
                "missing Debian packages; run:\n  sudo apt-get install -y {}",
                missing.join(" ")
            )
            .into());
        }
        let mut install = Command::new("apt-get");
        install
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing);
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
    }

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
