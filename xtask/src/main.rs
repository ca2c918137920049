//! `cargo xtask`: the one entry point for building, running and testing
//! Septum.
//!
//! Users never call the pipeline's steps by hand: `run` builds everything a
//! system needs (host tools, subjects, composed tables, a kernel specialised
//! to the system, the multiboot2 ELF and GRUB ISO) and boots it in Bochs
//! with COM1 and COM2 streamed to the terminal; `test` runs every gate the
//! project has (format, lints, host tests, Miri, the no-panic link, every
//! system test booted in Bochs) and ends with the line `N passed, N failed`
//! that CI reads; `systest` runs only what named system tests need;
//! `image` stops after the ISO; `new-subject` starts a subject crate;
//! `bench` measures the hypercall path in Bochs and the composer on the
//! host. Every command prints its usage with `--help`: the usage text is
//! one table, [`USAGE`], which `help` prints whole.
//!
//! Design: plain `std` and a small command helper. Every step is an
//! ordinary `cargo`, `septum` or `bochs` command printed before it runs, so
//! whatever xtask does can be repeated by hand. The kernel and subjects are
//! separate cargo workspaces; xtask builds them into its own target
//! directories under `build/` so it never contends for their owners'
//! locks, and everything it produces lives under `build/` too. Nothing
//! here ever asks a question: missing prerequisites are installed when
//! running as root, otherwise the exact command to run is printed.

mod bench;
mod bench_irq;
mod bench_linux;
mod bench_sched;
mod bench_switch;
mod bochs;
mod boottime;
mod linux;
mod new_subject;
mod pipeline;
mod prereq;
mod qemu;
mod run;
mod steps;
mod systest;
mod tutorial_check;
mod util;
mod vm_probe;

use std::process::ExitCode;

use crate::pipeline::Paths;
use crate::util::Error;

/// Every command, in the order `help` lists them. Each entry starts with
/// two spaces and the command's name; `cargo xtask COMMAND --help` prints
/// that entry alone (see [`command_usage`]).
const USAGE: &str = "\
usage: cargo xtask <command> [options]
       cargo xtask <command> --help    (that command alone)

commands:
  run [SYSTEM] [--timeout SECS] [--debug] [--features F,...]
        build and boot SYSTEM (default: debug, the demo with the debug
        server: every subject's log on COM1) in Bochs, streaming COM1 and
        COM2 as one stream in time order until power off, Ctrl-C or the
        timeout. SYSTEM is a name in systems/ (a system test's name boots
        its policy on its CPU model with its kernel features, then checks
        its expectations), a path to a policy .xml, or a path to a
        .test.toml; paths are relative to the current directory. Timeout:
        the test's `timeout` if SYSTEM has a test, else 120 s
  image SYSTEM [--debug] [--features F,...]
        build build/SYSTEM/system.iso (and system.elf, bochsrc) only
  test [--skip-miri] [--only SYSTEM]...
        every gate: fmt, clippy, host tests, Miri, no-panic link, debug boot,
        every system test in Bochs; ends with `N passed, N failed`.
        --only limits the system tests; every other gate still runs
        (one system test alone: cargo xtask systest NAME)
  systest NAME...
        only what the named system tests need (build septum and the
        subjects, image, boot in Bochs), no other gate; NAME is a test in
        systems/ or a path to a .test.toml; ends with `N passed, N failed`
  new-subject NAME
        create subjects/NAME, a minimal annotated subject crate, add it to
        the subjects workspace and build it
  bench [--boot-only | --interrupts-only | --linux]
        hypercall cost in Bochs (and VMCS accesses per exit), minor-frame
        switch cost and major-frame barrier skew, composer benches,
        device-interrupt latency and its cost to a neighbour partition,
        time to the kernel banner of the demo and of 55- and 200-subject
        systems; writes the Bochs numbers into docs/benchmarks.md.
        --linux (alone, about 3 minutes): Linux's boot to its shell prompt
        in Septum against bare Bochs, as a ratio, and the VM's exits
  help [COMMAND]
        this text, or one command's
";

/// The entry of `command` in [`USAGE`], as `usage: cargo xtask ...`.
fn command_usage(command: &str) -> Option<String> {
    let mut entry: Option<String> = None;
    for line in USAGE.lines() {
        let starts_entry = line.starts_with("  ") && !line.starts_with("   ");
        match &mut entry {
            None if starts_entry && line.split_whitespace().next() == Some(command) => {
                entry = Some(format!("usage: cargo xtask {}\n", line.trim_start()));
            }
            Some(_) if starts_entry || line.is_empty() => break,
            Some(text) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    entry
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    finish(dispatch(&args))
}

/// The exit code of a command; an error is printed first (a failure code).
fn finish(result: Result<ExitCode, Error>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `args` ask for help (`--help` or `-h` anywhere).
fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

fn dispatch(args: &[String]) -> Result<ExitCode, Error> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        match rest.first() {
            None => print!("{USAGE}"),
            Some(name) => print!(
                "{}",
                command_usage(name).ok_or_else(|| format!("unknown command {name}\n{USAGE}"))?
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if wants_help(rest) {
        let usage =
            command_usage(command).ok_or_else(|| format!("unknown command {command}\n{USAGE}"))?;
        print!("{usage}");
        return Ok(ExitCode::SUCCESS);
    }
    let paths = Paths::discover()?;
    match command.as_str() {
        "run" => run::run(&paths, rest),
        "image" => run::image(&paths, rest),
        "test" => steps::test(&paths, rest),
        "systest" => steps::systest(&paths, rest),
        "new-subject" => new_subject::command(&paths, rest),
        "bench" => bench::bench(&paths, rest),
        other => Err(format!("unknown command {other}\n{USAGE}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_its_usage() {
        for command in [
            "run",
            "image",
            "test",
            "systest",
            "new-subject",
            "bench",
            "help",
        ] {
            let usage = command_usage(command).unwrap_or_else(|| panic!("{command}"));
            assert!(
                usage.starts_with(&format!("usage: cargo xtask {command}")),
                "{usage}"
            );
            assert!(!usage.contains("\n  run "), "{usage}");
        }
        assert!(command_usage("nonsense").is_none());
        let test = command_usage("test").unwrap_or_default();
        assert!(test.contains("--only limits the system tests"), "{test}");
        assert!(!test.contains("\n  systest"), "{test}");
    }

    #[test]
    fn help_anywhere_succeeds_without_running() {
        for args in [
            &["test", "--help"][..],
            &["run", "demo", "-h"],
            &["bench", "--help"],
            &["help", "systest"],
            &["--help"],
        ] {
            let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
            assert_eq!(
                dispatch(&args).map_err(|e| e.0).ok(),
                Some(ExitCode::SUCCESS),
                "{args:?}"
            );
        }
        let args = vec!["frobnicate".to_owned(), "--help".to_owned()];
        assert!(dispatch(&args).is_err());
    }
}
