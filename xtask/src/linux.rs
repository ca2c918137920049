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
//!    rights needed for the device node): busybox, `/dev/console`, the
//!    kernel's `msr.ko`, three tiny static programs assembled here
//!    ([`programs`]: a VMCALL from user space, an IN from a port the VM
//!    does not own, a write to MSR 0x1b through `/dev/cpu/0/msr`) and an
//!    `/init` script ([`INIT`]) that mounts /proc, /sys and /dev, runs a few commands,
//!    prints their output with a `septum-linux:` prefix on the console and
//!    to the kernel log, and halts with interrupts off (`halt -f`), which
//!    the kernel treats as the VM's poweroff event. Before it halts it may
//!    run an interactive busybox shell on the console: always with
//!    `septum_init=shell` on the kernel command line
//!    (`systems/linux_shell.xml`; the prompt's first line, `septum-linux:
//!    shell prompt`, is what tests wait for before typing), never with
//!    `septum_init=commands`, and otherwise if a line is typed within 15 s
//!    of guest time after `septum-linux: press Enter within 15 s for a
//!    shell` (`cargo xtask run linux`; a test that types nothing just
//!    waits);
//! 4. with `septum_virtio` on the command line (`systems/linux_virtio.xml`)
//!    `/init` also loads the virtio modules ([`VIRTIO_MODULES`], copied
//!    from the kernel package into `/lib/virtio/`) and moves a line each way
//!    over `/dev/hvc0`, the virtio console (docs/kernel.md, "Virtio
//!    console"). Without the switch nothing of this runs.

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
say "clockevent: $(cat /sys/devices/system/clockevents/clockevent0/current_device)"
say "interrupts: $(grep -E '^ *(0|4|LOC|CAL|IWI):' /proc/interrupts | tr -s ' ' | tr '\n' ';')"
/bin/vmcall-probe
say "vmcall from user space: exit status $?"
# Isolation checks (systems/linux_isolation*.xml): each is stopped by the
# kernel, so a run makes at most one.
case "$(cat /proc/cmdline)" in
*septum_attack=port*)
    say "attack: reading I/O port 0x1f0, which the VM does not own"
    /bin/attack-port
    say "attack: port read survived"
    ;;
*septum_attack=msr*)
    insmod /lib/msr.ko
    say "attack: writing MSR 0x1b (APIC base), which the VM may not write"
    /bin/attack-msr
    say "attack: MSR write survived"
    ;;
*septum_attack=apic*)
    say "attack: IPIs and an EOI through the VM's APIC page, which must not reach the real local APIC"
    devmem 0xfee00310 32 0x05000000
    devmem 0xfee00300 32 0x00000040
    devmem 0xfee00310 32 0
    devmem 0xfee00300 32 0x000c0500
    devmem 0xfee00300 32 0x000c0600
    devmem 0xfee00300 32 0x00080400
    devmem 0xfee00300 32 0x00080200
    devmem 0xfee000b0 32 0
    devmem 0xfee00300 32 0x000400f6
    sleep 1
    say "attack: APIC writes survived: $(grep -E '^ *(LOC|IWI):' /proc/interrupts | tr -s ' ' | tr '\n' ';')"
    say "attack: writing the APIC version register, which is read-only"
    devmem 0xfee00030 32 0
    say "attack: read-only APIC write survived"
    ;;
*septum_attack=memory*)
    say "attack: writing guest-physical 0x50000000, which the VM does not own"
    devmem 0x50000000 32 0x5eb7
    say "attack: memory write survived"
    ;;
esac
# The virtio console (systems/linux_virtio.xml): load the legacy
# virtio-pci driver and the console in dependency order, send one line to
# /dev/hvc0 (the native subject behind the channel prints it) and read one
# back.
case "$(cat /proc/cmdline)" in
*septum_virtio*)
    for module in VIRTIO_MODULES; do
        insmod /lib/virtio/$module.ko || say "virtio: insmod $module failed"
    done
    n=0
    while [ ! -c /dev/hvc0 ] && [ $n -lt 30 ]; do
        sleep 1
        n=$((n + 1))
    done
    say "virtio: $(cat /sys/bus/virtio/devices/*/device 2>/dev/null | tr '\n' ' ')devices"
    exec 3<>/dev/hvc0
    stty -echo <&3
    echo "hello from linux over virtio" >&3
    say "virtio: line sent"
    if read -t 120 -r reply <&3; then
        say "virtio: got \"$reply\""
    else
        say "virtio: no reply"
    fi
    exec 3>&-
    ;;
esac
# The shell: a busybox shell on the console, which the kernel feeds with
# what is typed on its console UART (<kernel consoleInput>). `poweroff -f`
# (or `halt -f`) ends the VM; so does leaving the shell. septum_init=shell
# starts it (systems/linux_shell.xml), septum_init=commands never does;
# otherwise a line typed within 15 s of guest time starts it (`cargo xtask
# run linux`), and a boot nobody types into halts after the wait.
case "$(cat /proc/cmdline)" in
*septum_init=shell*) shell=yes ;;
*septum_init=commands*) shell=no ;;
*)
    say "press Enter within 15 s for a shell"
    if read -t 15 typed; then shell=yes; else shell=no; fi
    ;;
esac
if [ "$shell" = yes ]; then
    say "shell: type commands; poweroff -f ends the VM"
    export PS1='septum-linux: shell prompt
# '
    setsid cttyhack sh -i
    say "shell exited"
fi
say "halting"
halt -f
"#;

/// The virtio modules `/init` loads for the virtio console, in dependency
/// order (each after every module it depends on), from `/lib/virtio/`.
pub const VIRTIO_MODULES: [&str; 6] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_console",
];

/// The `/init` script, with the module list filled in.
fn init_script() -> String {
    INIT.replace("VIRTIO_MODULES", &VIRTIO_MODULES.join(" "))
}

/// Makes sure the binaries directory holds the Linux files if the policy
/// `policy` boots Debian's Linux (it names [`KERNEL`] or [`INITRD`]), and
/// the tiny VM probes if it boots one of those (`crate::vm_probe`).
pub fn prepare(
    paths: &Paths,
    policy: &Path,
    binaries: &Path,
    output: Output<'_>,
) -> Result<(), Error> {
    let text = fs::read_to_string(policy).unwrap_or_default();
    crate::vm_probe::prepare(&text, binaries)?;
    if !text.contains(KERNEL) && !text.contains(INITRD) {
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
    let msr = find_file(&root.join("lib/modules"), "msr.ko")
        .and_then(|p| fs::read(p).ok())
        .unwrap_or_default();
    let modules = root.join("lib/modules");
    let virtio: Vec<(String, Vec<u8>)> = VIRTIO_MODULES
        .iter()
        .filter_map(|name| {
            let file = format!("{name}.ko");
            let data = fs::read(find_file(&modules, &file)?).ok()?;
            Some((format!("lib/virtio/{file}"), data))
        })
        .collect();
    let cpio = initramfs(&busybox, &msr, &virtio);
    fs::write(binaries.join(INITRD), cpio)
        .map_err(|e| format!("write {}: {e}", binaries.join(INITRD).display()))?;
    Ok(())
}

/// The first file called `name` under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in fs::read_dir(dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
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

/// A static x86-64 Linux executable: one read-execute segment at 0x40_0000
/// holding `code` right after the headers (entry there).
fn tiny_elf(code: &[u8]) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let size = HEADERS + code.len() as u64;
    let mut e = Vec::new();
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    e.extend_from_slice(&64u64.to_le_bytes()); // program headers
    e.extend_from_slice(&0u64.to_le_bytes()); // no sections
    e.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        e.extend_from_slice(&half.to_le_bytes());
    }
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // R+X
    e.extend_from_slice(&0u64.to_le_bytes());
    e.extend_from_slice(&BASE.to_le_bytes());
    e.extend_from_slice(&BASE.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&size.to_le_bytes());
    e.extend_from_slice(&0x1000u64.to_le_bytes());
    e.extend_from_slice(code);
    e
}

/// `exit(0)`.
const EXIT: [u8; 9] = [0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05];

/// The test programs of the initramfs, by path.
pub fn programs() -> Vec<(&'static str, Vec<u8>)> {
    // vmcall; exit(0): #UD (SIGILL, exit status 132) if the VMCALL from
    // CPL 3 is refused.
    let mut vmcall = vec![0x0f, 0x01, 0xc1];
    vmcall.extend_from_slice(&EXIT);
    // ioperm(0x1f0, 8, 1); in al, 0x1f0 (dx); exit(0).
    let mut port = vec![
        0xb8, 0xad, 0, 0, 0, 0xbf, 0xf0, 0x01, 0, 0, 0xbe, 0x08, 0, 0, 0, 0xba, 0x01, 0, 0, 0,
        0x0f, 0x05, 0x66, 0xba, 0xf0, 0x01, 0xec,
    ];
    port.extend_from_slice(&EXIT);
    // fd = open("/dev/cpu/0/msr", O_WRONLY); pwrite64(fd, &0xfee00900, 8,
    // 0x1b); exit(0).
    let mut msr = vec![0xb8, 0x02, 0, 0, 0, 0x48, 0x8d, 0x3d, 0, 0, 0, 0];
    let path_fixup = msr.len() - 4;
    msr.extend_from_slice(&[
        0xbe, 0x01, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc7, 0xb8, 0x12, 0, 0, 0,
    ]);
    msr.extend_from_slice(&[0x48, 0x8d, 0x35, 0, 0, 0, 0]);
    let value_fixup = msr.len() - 4;
    msr.extend_from_slice(&[0xba, 0x08, 0, 0, 0, 0x41, 0xba, 0x1b, 0, 0, 0, 0x0f, 0x05]);
    msr.extend_from_slice(&EXIT);
    let path_at = msr.len();
    msr.extend_from_slice(b"/dev/cpu/0/msr\0");
    let value_at = msr.len();
    msr.extend_from_slice(&0xfee0_0900u64.to_le_bytes());
    for (fixup, target) in [(path_fixup, path_at), (value_fixup, value_at)] {
        let rel = (target - (fixup + 4)) as u32;
        msr[fixup..fixup + 4].copy_from_slice(&rel.to_le_bytes());
    }
    vec![
        ("bin/vmcall-probe", tiny_elf(&vmcall)),
        ("bin/attack-port", tiny_elf(&port)),
        ("bin/attack-msr", tiny_elf(&msr)),
    ]
}

/// The initramfs: directories, `/dev/console`, busybox, the test programs,
/// `msr.ko` (if found), the virtio modules found (`lib/virtio/NAME.ko`,
/// by path) and `/init`.
pub fn initramfs(busybox: &[u8], msr_module: &[u8], virtio: &[(String, Vec<u8>)]) -> Vec<u8> {
    const DIR: u32 = 0o040_755;
    const FILE: u32 = 0o100_755;
    const CHAR: u32 = 0o020_600;
    let mut out = Vec::new();
    let mut ino = 1;
    for dir in ["bin", "dev", "lib", "lib/virtio", "proc", "sys", "tmp"] {
        entry(&mut out, ino, dir, DIR, (0, 0), &[]);
        ino += 1;
    }
    entry(&mut out, ino, "dev/console", CHAR, (5, 1), &[]);
    entry(&mut out, ino + 1, "bin/busybox", FILE, (0, 0), busybox);
    entry(
        &mut out,
        ino + 2,
        "init",
        FILE,
        (0, 0),
        init_script().as_bytes(),
    );
    entry(
        &mut out,
        ino + 3,
        "lib/msr.ko",
        0o100_644,
        (0, 0),
        msr_module,
    );
    for (i, (path, program)) in programs().into_iter().enumerate() {
        entry(&mut out, ino + 4 + i as u32, path, FILE, (0, 0), &program);
    }
    let next = ino + 4 + programs().len() as u32;
    for (i, (path, module)) in virtio.iter().enumerate() {
        entry(&mut out, next + i as u32, path, 0o100_644, (0, 0), module);
    }
    entry(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_entries_are_aligned_and_terminated() {
        let cpio = initramfs(
            b"ELF",
            b"ko",
            &[("lib/virtio/virtio.ko".into(), b"ko".to_vec())],
        );
        assert!(cpio.starts_with(b"070701"));
        assert_eq!(cpio.len() % 4, 0);
        let text = String::from_utf8_lossy(&cpio);
        assert!(text.contains("dev/console"));
        assert!(text.contains("halt -f"));
        assert!(text.contains("TRAILER!!!"));
        assert!(text.contains("bin/attack-msr"));
        assert!(text.contains("lib/virtio/virtio.ko"));
        assert!(text.contains(
            "for module in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev \
             virtio_pci virtio_console; do"
        ));
    }

    #[test]
    fn programs_are_elf_executables_with_their_code() {
        for (path, elf) in programs() {
            assert_eq!(&elf[..4], b"\x7fELF", "{path}");
            assert_eq!(
                u64::from_le_bytes(elf[24..32].try_into().unwrap()),
                0x40_0078
            );
            assert_eq!(
                u64::from_le_bytes(elf[96..104].try_into().unwrap()),
                elf.len() as u64
            );
        }
        let (_, msr) = &programs()[2];
        let code = &msr[0x78..];
        // lea rdi, [rip + rel] points at the path.
        let rel = u32::from_le_bytes(code[8..12].try_into().unwrap()) as usize;
        assert_eq!(&code[12 + rel..12 + rel + 15], b"/dev/cpu/0/msr\0");
    }
}
