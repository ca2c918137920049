//! `cargo xtask bench --linux`: how much longer Linux takes to reach its
//! shell prompt inside Septum than on bare Bochs, and the exits it makes.
//!
//! Two boots, side by side (Bochs tigerlake, `ips=10000000`, one TSC tick
//! per instruction, so the numbers are emulated time and do not depend on
//! the machine's load):
//!
//! - **Septum**: `systems/linux_shell.xml`, the VM `linux` beside the
//!   native `console`, whose 5 ms frames take 10 % of the CPU;
//! - **bare**: the same `linux-vmlinuz` and `linux-initrd.cpio` booted by
//!   GRUB (`linux`/`initrd`) on bare Bochs with the same command line plus
//!   two parameters bare Bochs needs and Septum's CPUID view provides:
//!   `clearcpuid=fsrm` (Bochs advertises FSRM but reports IA32_MISC_ENABLE
//!   0, and Linux's memmove then miscopies; Septum's view hides FSRM) and
//!   `tsc_early_khz=10000` (bare Bochs' CPUID claims a 2.4 GHz TSC; Septum
//!   reports the hardware description's 10 MHz in leaves 0x15/0x16). Its
//!   Bochs runs with `ignore_bad_msrs=1`: the decompressor reads MSR 0x1a0,
//!   unknown to Bochs' tigerlake model (Septum emulates it for the VM).
//!
//! "At the prompt" is the guest's uptime (its printk timestamp, counted on
//! the TSC from its clock's start) on the line `/init` writes to the kernel
//! log right before it starts the shell (`septum-linux: shell: ...`).
//! Each boot then gets `poweroff -f` typed into its shell, so both end by
//! themselves; the Septum kernel prints the VM's exits by reason at that
//! halt. The ratio and the exit counts replace the "Linux boot" section of
//! docs/benchmarks.md. About 3 minutes of wall time (both boots at once).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use crate::bench::replace_section;
use crate::bochs::{self, BootOptions, Input, Send};
use crate::linux;
use crate::pipeline::{self, Paths, Variant};
use crate::prereq;
use crate::systest::Pattern;
use crate::util::{self, Error, Output};

/// The system booted inside Septum.
const SYSTEM: &str = "linux_shell";
/// The kernel-log line `/init` writes just before the shell starts.
const PROMPT_LINE: &str = "septum-linux: shell: type commands";
/// The prompt's first line, after which `poweroff -f` is typed.
const PROMPT: &str = "septum-linux: shell prompt";
/// What bare Bochs adds to the command line (see the module docs).
const BARE_EXTRA: &str = "clearcpuid=fsrm tsc_early_khz=10000";
/// Wall-clock limit of each boot.
const TIMEOUT: Duration = Duration::from_secs(900);

/// What one boot measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LinuxBoot {
    /// Guest uptime (seconds) on the prompt line.
    pub prompt: f64,
    /// Wall seconds from Bochs start to the end of the boot.
    pub wall: f64,
}

/// The guest uptime of the first kernel-log line holding `text`:
/// `[  169.916481] ...` (after a `NAME: ` prefix inside Septum).
pub fn uptime_of(output: &str, text: &str) -> Option<f64> {
    output
        .lines()
        .filter(|line| line.contains(text))
        .find_map(|line| {
            let open = line.find('[')?;
            let close = open + line.get(open..)?.find(']')?;
            line.get(open + 1..close)?.trim().parse().ok()
        })
}

/// The VM's exit counts the kernel printed: `(reason text, count)` in its
/// order.
pub fn exits(com2: &str) -> Vec<(String, u64)> {
    com2.lines()
        .filter_map(|line| {
            let rest = line.get(line.find("\" exits: ")? + 9..)?;
            let (reason, count) = rest.rsplit_once(": ")?;
            Some((reason.to_owned(), count.trim().parse().ok()?))
        })
        .collect()
}

/// The `cmdline` attribute of the `<linux>` element of `policy`.
fn cmdline(policy: &str) -> Option<String> {
    let at = policy.find("<linux")?;
    let element = policy.get(at..at + policy.get(at..)?.find("/>")?)?;
    let start = element.find("cmdline=\"")? + 9;
    let len = element.get(start..)?.find('"')?;
    Some(element.get(start..start + len)?.to_owned())
}

/// Writes `build/linux_bare/` (GRUB ISO with the VM's kernel and
/// initramfs, `bochsrc`) and returns it.
fn bare_image(paths: &Paths, binaries: &Path, cmdline: &str) -> Result<PathBuf, Error> {
    let dir = util::create_dir(&paths.build.join("linux_bare"))?;
    let tree = dir.join("iso");
    let _ = fs::remove_dir_all(&tree);
    let grub = util::create_dir(&tree.join("boot").join("grub"))?;
    for (from, to) in [(linux::KERNEL, "vmlinuz"), (linux::INITRD, "initrd.cpio")] {
        fs::copy(binaries.join(from), tree.join("boot").join(to))
            .map_err(|e| format!("copy {from} into {}: {e}", tree.display()))?;
    }
    fs::write(
        grub.join("grub.cfg"),
        format!(
            "set timeout=0\nmenuentry \"linux\" {{\n  linux /boot/vmlinuz {cmdline} {BARE_EXTRA}\n  \
             initrd /boot/initrd.cpio\n  boot\n}}\n"
        ),
    )
    .map_err(|e| format!("write grub.cfg: {e}"))?;
    let mut cmd = Command::new("grub-mkrescue");
    cmd.arg("-o")
        .arg(dir.join("system.iso"))
        .arg("--install-modules=linux normal iso9660 biosdisk")
        .args(["--locales=", "--fonts=", "--themes="])
        .arg(&tree);
    util::run(&mut cmd, Output::Inherit)?;
    bochs::write_config(&dir, &bochs::Machine::DEFAULT)?;
    // Linux's decompressor reads IA32_MISC_ENABLE (0x1a0), which Bochs'
    // tigerlake model does not know: let Bochs answer 0 (Septum's MSR
    // emulation gives the VM its own value).
    let config = dir.join("bochsrc");
    let text = fs::read_to_string(&config).map_err(|e| format!("read bochsrc: {e}"))?;
    fs::write(
        &config,
        text.replace("ignore_bad_msrs=0", "ignore_bad_msrs=1"),
    )
    .map_err(|e| format!("write bochsrc: {e}"))?;
    Ok(dir)
}

/// Boots the image in `dir`, types `poweroff -f` into port `port` after
/// the prompt, and reads the prompt line's uptime from that port.
fn boot(dir: &Path, port: usize) -> Result<(LinuxBoot, bochs::Boot), Error> {
    let options = BootOptions {
        timeout: TIMEOUT,
        stream: false,
        stop_on: Some("reboot: ".to_owned()),
        stop_grace: Duration::from_secs(5),
    };
    let input = Input {
        sends: vec![Send {
            port,
            after: Pattern::parse(PROMPT).map_err(Error)?,
            bytes: b"poweroff -f\n".to_vec(),
        }],
        ..Input::default()
    };
    let result = bochs::boot_with(dir, &options, &input)?;
    let output = if port == 0 {
        &result.com1
    } else {
        &result.com2
    };
    let prompt = uptime_of(output, PROMPT_LINE).ok_or_else(|| {
        format!(
            "{}: no `{PROMPT_LINE}` line ({}); see com1.txt/com2.txt there",
            dir.display(),
            result.ending
        )
    })?;
    Ok((
        LinuxBoot {
            prompt,
            wall: result.wall.as_secs_f64(),
        },
        result,
    ))
}

/// `cargo xtask bench --linux`.
pub fn only(paths: &Paths) -> Result<ExitCode, Error> {
    prereq::ensure(false, Output::Inherit)?;
    let image = pipeline::build_image(paths, SYSTEM, &Variant::release(), Output::Inherit)?;
    let binaries = paths.subject_binaries();
    let policy =
        fs::read_to_string(paths.policy(SYSTEM)).map_err(|e| format!("read {SYSTEM}.xml: {e}"))?;
    let cmdline = cmdline(&policy).ok_or("no <linux cmdline=...> in the policy")?;
    let bare_dir = bare_image(paths, &binaries, &cmdline)?;
    eprintln!("xtask: booting Linux in Septum and on bare Bochs (about 3 minutes)");
    let (septum, bare) = std::thread::scope(|scope| {
        let septum = scope.spawn(|| boot(&image.dir, 1));
        let bare = scope.spawn(|| boot(&bare_dir, 0));
        (
            septum
                .join()
                .unwrap_or_else(|_| Err("septum boot panicked".into())),
            bare.join()
                .unwrap_or_else(|_| Err("bare boot panicked".into())),
        )
    });
    let (septum, septum_boot) = septum?;
    let (bare, _) = bare?;
    let exits = exits(&septum_boot.com2);
    let body = section(&cmdline, &septum, &bare, &exits);
    println!("{body}");
    let doc_path = paths.root.join("docs").join("benchmarks.md");
    let doc = fs::read_to_string(&doc_path).unwrap_or_default();
    fs::write(&doc_path, replace_section(&doc, "## Linux boot", &body))
        .map_err(|e| format!("write {}: {e}", doc_path.display()))?;
    eprintln!("xtask: wrote the \"Linux boot\" section of docs/benchmarks.md");
    Ok(if exits.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The "Linux boot" section of docs/benchmarks.md.
pub fn section(
    cmdline: &str,
    septum: &LinuxBoot,
    bare: &LinuxBoot,
    exits: &[(String, u64)],
) -> String {
    let ratio = septum.prompt / bare.prompt;
    let mut body = format!(
        "Measured with `cargo xtask bench --linux` (about 3 minutes; not part of\n\
         the plain `cargo xtask bench`): Debian's unmodified cloud kernel and the\n\
         busybox initramfs of `systems/linux_shell.xml` to the shell prompt, as the\n\
         guest's uptime (printk time, TSC at 10 MHz, one tick per Bochs\n\
         instruction) on the line `/init` logs before it starts the shell.\n\
         Septum: the VM beside the native `console` (45 of every 50 ms). Bare:\n\
         the same kernel and initramfs by GRUB on bare Bochs (256 MiB), same\n\
         command line plus `{BARE_EXTRA}` (what Septum's CPUID view gives the VM)\n\
         and Bochs' `ignore_bad_msrs=1` (MSR 0x1a0, which Septum emulates; see\n\
         `xtask/src/bench_linux.rs`). Command line: `{cmdline}`.\n\n\
         | Boot | Uptime at the prompt | Wall time to power off |\n\
         |------|----------------------|------------------------|\n\
         | Septum | {:.3} s | {:.0} s |\n\
         | bare Bochs | {:.3} s | {:.0} s |\n\n\
         Ratio Septum / bare: **{ratio:.3}x** (goal <= 1.5x).\n\n\
         Exits the VM platform handled in the Septum boot, by reason (the kernel's\n\
         count at the VM's halt; hypercalls and preemption-timer expiries are not\n\
         counted):\n\n\
         | Reason | Exits |\n|--------|-------|\n",
        septum.prompt, septum.wall, bare.prompt, bare.wall
    );
    for (reason, count) in exits {
        body.push_str(&format!("| {reason} | {count} |\n"));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uptime_exits_and_cmdline() {
        let com2 = "linux: [  169.916481] septum-linux: shell: type commands; poweroff -f\n\
                    septum: vm \"linux\" exits: I/O instruction (reason 30): 254617\n\
                    septum: vm \"linux\" exits: CPUID (reason 10): 1289\n";
        assert_eq!(uptime_of(com2, PROMPT_LINE), Some(169.916481));
        assert_eq!(uptime_of("[    1.5] other", PROMPT_LINE), None);
        assert_eq!(
            exits(com2),
            [
                ("I/O instruction (reason 30)".to_owned(), 254617),
                ("CPUID (reason 10)".to_owned(), 1289)
            ]
        );
        let xml = "<subject><linux kernel=\"k\" cmdline=\"console=ttyS0 quiet\"/></subject>";
        assert_eq!(cmdline(xml).as_deref(), Some("console=ttyS0 quiet"));
        let body = section(
            "c",
            &LinuxBoot {
                prompt: 150.0,
                wall: 120.0,
            },
            &LinuxBoot {
                prompt: 100.0,
                wall: 130.0,
            },
            &exits(com2),
        );
        assert!(body.contains("**1.500x**"), "{body}");
        assert!(body.contains("| CPUID (reason 10) | 1289 |"), "{body}");
    }
}
