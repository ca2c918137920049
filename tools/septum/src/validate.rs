//! `septum validate FILE... [--format text|json]`.
//!
//! Each file is loaded and validated on its own (one broken file does not
//! hide problems in the others). Output contract, relied on by scripts and
//! CI:
//!
//! - a valid file prints exactly one line on stdout (text) or stderr (json):
//!   `ok: FILE is a valid policy (N subjects, M channels, K events)`;
//! - text: every diagnostic goes to stderr as `FILE:LINE:COL:
//!   error[RULE]: MESSAGE`, the source line and a caret underline;
//! - json: stdout holds exactly one JSON array with the diagnostics of all
//!   files (empty when all are clean), so it can be piped to a tool;
//! - when there are errors, a last stderr line `error: N errors, W warnings`
//!   and exit status 1; warnings alone keep the status 0.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use septum_policy::diag::{Diagnostic, render_json_sets, render_text};
use septum_policy::{SourceMap, check};

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Validates every file in `files`; diagnostics as text or JSON.
pub fn run(files: &[PathBuf], json: bool) -> ExitCode {
    let mut errors = 0;
    let mut warnings = 0;
    // JSON output needs every file's sources alive until the array is
    // written, because spans are rendered against them.
    let mut json_items: Vec<(SourceMap, Vec<Diagnostic>)> = Vec::new();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    for file in files {
        let loaded = check(file);
        errors += loaded.diagnostics.error_count();
        warnings += loaded.diagnostics.warning_count();
        let ok_line = loaded.valid_policy().map(|policy| {
            format!(
                "ok: {} is a valid policy ({}, {}, {})",
                file.display(),
                plural(policy.subjects.len(), "subject", "subjects"),
                plural(policy.channels.len(), "channel", "channels"),
                plural(policy.events.len(), "event", "events"),
            )
        });
        if json {
            if let Some(line) = ok_line {
                let _ = writeln!(stderr.lock(), "{line}");
            }
            json_items.push((loaded.sources, loaded.diagnostics.into_vec()));
        } else {
            let mut err = stderr.lock();
            for diagnostic in loaded.diagnostics.iter() {
                let _ = writeln!(err, "{}", render_text(diagnostic, &loaded.sources));
            }
            if let Some(line) = ok_line {
                let _ = writeln!(stdout.lock(), "{line}");
            }
        }
    }
    if json {
        let sets = json_items
            .iter()
            .map(|(sources, diagnostics)| (sources, diagnostics.iter().collect()));
        let _ = writeln!(stdout.lock(), "{}", render_json_sets(sets));
    }
    if errors > 0 {
        let _ = writeln!(
            stderr.lock(),
            "error: {}, {}",
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings")
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
