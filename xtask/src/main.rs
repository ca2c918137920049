//! `cargo xtask`: the one entry point for building, running and testing
//! Septum.
//!
//! Users never call the pipeline's steps by hand: `run` builds everything a
//! system needs (host tools, subjects, composed tables, a kernel specialised
//! to the system, the multiboot2 ELF and GRUB ISO) and boots it in Bochs
//! with COM1 and COM2 streamed to the terminal; `test` runs every gate the
//! project has (format, lints, host tests, Miri, the no-panic link, every
//! system test booted in Bochs) and ends with the line `N passed, N failed`
//! that CI reads; `image` stops after the ISO; `bench` measures the
//! hypercall path in Bochs and the composer on the host.
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
mod bochs;
mod boottime;
mod pipeline;
mod prereq;
mod steps;
mod systest;
mod util;

use std::process::ExitCode;
use std::time::Duration;

use crate::pipeline::{Paths, Variant};
use crate::util::{Error, Output};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run [SYSTEM] [--timeout SECS] [--debug] [--features F,...]
        build and boot systems/SYSTEM.xml (default: demo) in Bochs, streaming
        COM1 and COM2 until power off, Ctrl-C or the timeout (default 120 s);
        SYSTEM may also name a system test without a policy of that name
        (systems/SYSTEM.test.toml): its policy, on its CPU model
  image SYSTEM [--debug] [--features F,...]
        build build/SYSTEM/system.iso (and system.elf, bochsrc) only
  test [--skip-miri] [--only SYSTEM]...
        every gate: fmt, clippy, host tests, Miri, no-panic link, debug boot,
        every system test in Bochs; ends with `N passed, N failed`
  bench [--boot-only]
        hypercall cost in Bochs (and VMCS accesses per exit), composer benches,
        time to the kernel banner of the demo and of 55- and 200-subject
        systems; writes the Bochs numbers into docs/benchmarks.md
";

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

/// Options shared by `run` and `image`.
struct ImageArgs {
    system: Option<String>,
    variant: Variant,
    timeout: Duration,
}

fn parse_image_args(args: &[String]) -> Result<ImageArgs, Error> {
    let mut parsed = ImageArgs {
        system: None,
        variant: Variant::release(),
        timeout: Duration::from_secs(120),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--debug" => parsed.variant.debug = true,
            "--features" => {
                let list = iter.next().ok_or("--features needs a value")?;
                parsed.variant.features = list
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--timeout" => {
                let secs = iter.next().ok_or("--timeout needs a value in seconds")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("--timeout {secs}: not a number of seconds"))?;
                parsed.timeout = Duration::from_secs(secs);
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}").into()),
            system if parsed.system.is_none() => parsed.system = Some(system.to_owned()),
            extra => return Err(format!("unexpected argument {extra}").into()),
        }
    }
    Ok(parsed)
}

fn dispatch(args: &[String]) -> Result<ExitCode, Error> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let paths = Paths::discover()?;
    match command.as_str() {
        "run" => {
            let a = parse_image_args(rest)?;
            let mut system = a.system.unwrap_or_else(|| "demo".to_owned());
            let def = systest::load_for_policy(&paths, &system)?;
            if let Some(def) = &def
                && !paths.policy(&system).is_file()
            {
                system = format!("systems/{}", def.policy);
            }
            let cpu_model = def
                .as_ref()
                .map_or(bochs::DEFAULT_CPU_MODEL, |d| d.cpu_model.get_ref().as_str());
            prereq::ensure(false, Output::Inherit)?;
            let image = pipeline::build_image(&paths, &system, &a.variant, Output::Inherit)?;
            let dir = pipeline::boot_dir(&paths, &image, cpu_model)?;
            let options = bochs::BootOptions {
                timeout: a.timeout,
                stream: true,
                stop_on: def.as_ref().and_then(|d| d.stop_on.clone()),
                stop_grace: Duration::from_secs(def.as_ref().map_or(3, |d| d.stop_grace)),
            };
            eprintln!(
                "xtask: booting {} in Bochs (Ctrl-C to stop)",
                image.iso.display()
            );
            let boot = bochs::boot(&dir, &options)?;
            eprintln!(
                "xtask: {} after {:.1} s",
                boot.ending,
                boot.wall.as_secs_f64()
            );
            let mut ok = boot.ending.is_clean();
            if let Some(def) = &def {
                let unmet = systest::check(def, &boot.com1, &boot.com2);
                if unmet.is_empty() {
                    eprintln!("xtask: every expectation of the system test is met");
                } else {
                    ok = false;
                    for failure in unmet {
                        eprintln!("xtask: unmet: {failure}");
                    }
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        "image" => {
            let a = parse_image_args(rest)?;
            let system = a.system.ok_or("image needs a SYSTEM (e.g. demo)")?;
            prereq::ensure(false, Output::Inherit)?;
            let image = pipeline::build_image(&paths, &system, &a.variant, Output::Inherit)?;
            println!("{}", image.iso.display());
            Ok(ExitCode::SUCCESS)
        }
        "test" => steps::test(&paths, rest),
        "bench" => bench::bench(&paths, rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command {other}\n{USAGE}").into()),
    }
}
