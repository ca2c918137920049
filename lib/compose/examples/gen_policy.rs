//! Write a generated policy and its subject binary to a directory, to time
//! `septum compose` on it as a user would, or to boot a big system:
//!
//! ```text
//! cargo run --release -p septum-compose --example gen_policy -- DIR SUBJECTS CHANNELS CPUS [--hardware FILE]
//! septum compose DIR/policy.xml --binaries DIR --out DIR/out
//! ```
//!
//! By default the policy carries its own hardware description (the
//! generator's: CPUS processors, 3.5 GiB of RAM). `--hardware FILE` replaces
//! it with a reference to FILE (written as an absolute path), e.g.
//! `hardware/bochs-tigerlake.xml` with CPUS = 1 for a system that boots in
//! Bochs (`cargo xtask bench` does that for its 200-subject boot).

use std::path::PathBuf;
use std::process::ExitCode;

use septum_compose::{elf, testgen};

const USAGE: &str = "usage: gen_policy DIR [SUBJECTS [CHANNELS [CPUS]]] [--hardware FILE]";

/// The generated policy with its inline `<hardware>` element replaced by a
/// reference to `href`.
fn with_hardware(policy: &str, href: &str) -> Option<String> {
    let start = policy.find("  <hardware>\n")?;
    let end_tag = "  </hardware>\n";
    let end = policy.find(end_tag)? + end_tag.len();
    Some(format!(
        "{}  <hardware href=\"{href}\"/>\n{}",
        policy.get(..start)?,
        policy.get(end..)?
    ))
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let hardware = match args.iter().position(|a| a == "--hardware") {
        Some(at) => {
            let Some(file) = args.get(at + 1).cloned() else {
                eprintln!("{USAGE}");
                return ExitCode::FAILURE;
            };
            args.drain(at..at + 2);
            match std::fs::canonicalize(&file) {
                Ok(path) => Some(path.display().to_string()),
                Err(e) => {
                    eprintln!("error: {file}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let (subjects, channels, cpus) = (number(1, 200), number(2, 1000), number(3, 4));
    let mut policy = testgen::policy_xml(subjects, channels, cpus);
    if let Some(href) = hardware {
        let Some(replaced) = with_hardware(&policy, &href) else {
            eprintln!("error: the generated policy has no <hardware> element to replace");
            return ExitCode::FAILURE;
        };
        policy = replaced;
    }
    let result = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("policy.xml"), policy))
        .and_then(|()| std::fs::write(dir.join(testgen::BINARY), elf::build::sample_subject()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
