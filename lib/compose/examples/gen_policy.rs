//! Write a generated policy and its subject binary to a directory, to time
//! `septum compose` on it as a user would:
//!
//! ```text
//! cargo run --release -p septum-compose --example gen_policy -- DIR SUBJECTS CHANNELS CPUS
//! septum compose DIR/policy.xml --binaries DIR --out DIR/out
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use septum_compose::{elf, testgen};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: gen_policy DIR [SUBJECTS [CHANNELS [CPUS]]]");
        return ExitCode::FAILURE;
    };
    let (subjects, channels, cpus) = (number(1, 200), number(2, 1000), number(3, 4));
    let result = std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::write(
                dir.join("policy.xml"),
                testgen::policy_xml(subjects, channels, cpus),
            )
        })
        .and_then(|()| std::fs::write(dir.join(testgen::BINARY), elf::build::sample_subject()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
