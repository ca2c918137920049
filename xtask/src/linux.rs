//! The files of a Linux VM (`systems/linux.xml`): Debian's unmodified cloud
//! kernel and an initramfs with busybox, fetched and built on first use.
//!
//! A policy with a `<linux>` boot names its kernel and initramfs as files
//! in the composer's binaries directory. Before composing such a policy,
//! [`prepare`] makes sure [`KERNEL`] and [`INITRD`] are there:
//!
//! 1. the packages `linux-image-6.1.0-N-cloud-amd64-unsigned` (the newest
//!    N the package index knows; the `linux-image-amd64` metapackage holds
//!    no kernel) and `busybox-static` are downloaded with `apt-get
//!    download` and unpacked with `dpkg-deb -x` into `build/linux-packages/`, once;
//! 2. the kernel's `vmlinuz` is copied as is (the VM boots the image
//!    exactly as Debian ships it);
//! 3. the initramfs is an uncompressed `newc` cpio written here (no root
//!    rights needed for the device node): busybox, `/dev/console` and an
//!    `/init` script ([`INIT`]) that mounts /proc, /sys and /dev, runs a few commands,
//!    prints their output with a `septum-linux:` prefix on the console and
//!    to the kernel log, and halts with interrupts off (`halt -f`), which
//!    the kernel treats as the VM's poweroff event.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pipeline::Paths;
use crate::util::{self, Error, Output};

/// File name of the kernel in the binaries directory.
pub const KERNEL: &str = "linux-vmlinuz";
/// File name of the initramfs in the binaries directory.
pub const INITRD: &str = "linux-initrd.cpio";

/// The initramfs's `/init`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() {
    echo "septum-linux: $*"
    echo "septum-linux: $*" > /dev/kmsg
}
say "init started"
say "uname: $(uname -sr)"
say "cpus: $(grep -c ^processor /proc/cpuinfo)"
say "memory: $(grep MemTotal /proc/meminfo | tr -s ' ')"
say "sum: $(echo $((6 * 7)))"
say "clocksource: $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
say "uptime: $(cut -d' ' -f1 /proc/uptime)"
# Isolation checks (systems/linux_isolation*.xml): each is stopped by the
# kernel, so a run makes at most one.
case "$(cat /proc/cmdline)" in
*septum_attack=port*)
    say "attack: reading I/O port 0x1f0, which the VM does not own"
    dd if=/dev/port of=/dev/null bs=1 skip=496 count=1 2>/dev/null
    say "attack: port read survived"
    ;;
*septum_attack=memory*)
    say "attack: writing guest-physical 0x50000000, which the VM does not own"
    devmem 0x50000000 32 0x5eb7
    say "attack: memory write survived"
    ;;
esac
say "halting"
halt -f
"#;

/// Makes sure the binaries directory holds the Linux files if the policy
/// `policy` boots Linux (it has a `<linux` element).
pub fn prepare(
    paths: &Paths,
    policy: &Path,
    binaries: &Path,
    output: Output<'_>,
) -> Result<(), Error> {
    let text = fs::read_to_string(policy).unwrap_or_default();
    if !text.contains("<linux") {
        return Ok(());
    }
    let cache = util::create_dir(&paths.build.join("linux-packages"))?;
    let root = cache.join("root");
    if !root.join("bin/busybox").is_file() || vmlinuz(&root).is_none() {
        fetch(&cache, output)?;
    }
    let kernel = vmlinuz(&root).ok_or("no boot/vmlinuz-* in the unpacked kernel package")?;
    copy(&kernel, &binaries.join(KERNEL))?;
    let busybox = fs::read(root.join("bin/busybox"))
        .map_err(|e| format!("read {}: {e}", root.join("bin/busybox").display()))?;
    let cpio = initramfs(&busybox);
    fs::write(binaries.join(INITRD), cpio)
        .map_err(|e| format!("write {}: {e}", binaries.join(INITRD).display()))?;
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    fs::copy(from, to).map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

fn vmlinuz(root: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(root.join("boot"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The newest `linux-image-6.1.0-N-cloud-amd64-unsigned` the index knows.
fn kernel_package() -> Result<String, Error> {
    let out = Command::new("apt-cache")
        .args([
            "search",
            "--names-only",
            "^linux-image-6\\.1\\.0-[0-9]+-cloud-amd64-unsigned$",
        ])
        .output()
        .map_err(|e| format!("apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .max_by_key(|name| {
            name.trim_start_matches("linux-image-6.1.0-")
                .split('-')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(0)
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            "no linux-image-6.1.0-*-cloud-amd64-unsigned package in the apt index \
             (run apt-get update on a Debian 12 host)"
                .into()
        })
}

fn fetch(cache: &Path, output: Output<'_>) -> Result<(), Error> {
    let package = kernel_package()?;
    let mut cmd = Command::new("apt-get");
    cmd.current_dir(cache)
        .args(["download", package.as_str(), "busybox-static"]);
    util::run(&mut cmd, output)?;
    let debs: Vec<PathBuf> = fs::read_dir(cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    for deb in debs {
        let mut cmd = Command::new("dpkg-deb");
        cmd.arg("-x").arg(&deb).arg(cache.join("root"));
        util::run(&mut cmd, output)?;
    }
    Ok(())
}

/// One `newc` cpio entry.
fn entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let header = format!(
        "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() + 1,
        0
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The initramfs: directories, `/dev/console`, busybox and `/init`.
pub fn initramfs(busybox: &[u8]) -> Vec<u8> {
    const DIR: u32 = 0o040_755;
    const FILE: u32 = 0o100_755;
    const CHAR: u32 = 0o020_600;
    let mut out = Vec::new();
    let mut ino = 1;
    for dir in ["bin", "dev", "proc", "sys", "tmp"] {
        entry(&mut out, ino, dir, DIR, (0, 0), &[]);
        ino += 1;
    }
    entry(&mut out, ino, "dev/console", CHAR, (5, 1), &[]);
    entry(&mut out, ino + 1, "bin/busybox", FILE, (0, 0), busybox);
    entry(&mut out, ino + 2, "init", FILE, (0, 0), INIT.as_bytes());
    entry(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_aligned_and_terminated() {
        let cpio = initramfs(b"ELF");
        assert!(cpio.starts_with(b"070701"));
        assert_eq!(cpio.len() % 4, 0);
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.contains("dev/console"));
        assert!(text.contains("halt -f"));
        assert!(text.ends_with("TRAILER!!!\0\0\0\0") || text.contains("TRAILER!!!"));
    }
}
