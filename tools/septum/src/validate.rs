//! `septum validate FILE... [--format text|json] [--hardware]`.
//!
//! With `--hardware` every file is a hardware description (root
//! `<hardware>`), checked alone: the loader's checks, then the hardware and
//! device rules; a valid one prints `ok: FILE is a valid hardware
//! description (N CPUs, M memory blocks, K devices)`.
//!
//! Each file is loaded and validated on its own (one broken file does not
//! hide problems in the others). Output contract, relied on by scripts and
//! CI:
//!
//! - a valid file prints exactly one line on stdout (text) or stderr (json):
//!   `ok: FILE is a valid policy (N subjects, M channels, K events)`;
//! - text: diagnostics go to stderr as `FILE:LINE:COL: error[RULE]:
//!   MESSAGE`, the source line (cut to 60 characters either side of the
//!   underline) and a caret underline; only the first 50 of the run are
//!   shown, then one line `... and N more diagnostics (E errors, W
//!   warnings) not shown; use --format json to see all`;
//! - when loading a file reported errors, the rules did not run on it: a
//!   stderr line `note: FILE: the validation rules were not run ...` says
//!   so (text and json), so a short list is not mistaken for the full one;
//! - json: stdout holds exactly one JSON array with the diagnostics of all
//!   files (empty when all are clean), so it can be piped to a tool;
//! - when there are errors, a last stderr line `error: N errors, W warnings`
//!   and exit status 1; warnings alone keep the status 0.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use septum_policy::diag::{Diagnostic, TEXT_LIMIT, omitted_line, render_json_sets, render_text};
use septum_policy::{Severity, SourceMap, check, check_hardware};

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Validates every file in `files` (hardware descriptions if `hardware`);
/// diagnostics as text or JSON.
pub fn run(files: &[PathBuf], json: bool, hardware: bool) -> ExitCode {
    let mut errors = 0;
    let mut warnings = 0;
    // JSON output needs every file's sources alive until the array is
    // written, because spans are rendered against them.
    let mut json_items: Vec<(SourceMap, Vec<Diagnostic>)> = Vec::new();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut shown = 0usize;
    let (mut left_errors, mut left_warnings) = (0usize, 0usize);
    for file in files {
        let loaded = if hardware {
            check_hardware(file)
        } else {
            check(file)
        };
        errors += loaded.diagnostics.error_count();
        warnings += loaded.diagnostics.warning_count();
        let ok_line = loaded.valid_policy().map(|policy| {
            if hardware {
                let machine = &policy.hardware;
                let processor = &machine.processor;
                // Older descriptions list no `<cpu>` elements: count cores.
                let cpus = if processor.cpus.is_empty() {
                    let cores = processor.cpu_cores.value as usize;
                    format!("{} without cpu elements", plural(cores, "CPU", "CPUs"))
                } else {
                    plural(processor.cpus.len(), "CPU", "CPUs")
                };
                format!(
                    "ok: {} is a valid hardware description ({}, {}, {})",
                    file.display(),
                    cpus,
                    plural(machine.memory_blocks.len(), "memory block", "memory blocks"),
                    plural(machine.devices.len(), "device", "devices"),
                )
            } else {
                format!(
                    "ok: {} is a valid policy ({}, {}, {})",
                    file.display(),
                    plural(policy.subjects.len(), "subject", "subjects"),
                    plural(policy.channels.len(), "channel", "channels"),
                    plural(policy.events.len(), "event", "events"),
                )
            }
        });
        let not_run = (loaded.diagnostics.has_errors() && !loaded.rules_run).then(|| {
            format!(
                "note: {}: loading stopped on the errors above, so the validation rules were \
                 not run; fix them and validate again",
                file.display()
            )
        });
        if json {
            if let Some(line) = ok_line {
                let _ = writeln!(stderr.lock(), "{line}");
            }
            if let Some(note) = not_run {
                let _ = writeln!(stderr.lock(), "{note}");
            }
            json_items.push((loaded.sources, loaded.diagnostics.into_vec()));
        } else {
            let mut err = stderr.lock();
            for diagnostic in loaded.diagnostics.iter() {
                if shown < TEXT_LIMIT {
                    let _ = writeln!(err, "{}", render_text(diagnostic, &loaded.sources));
                    shown += 1;
                } else if diagnostic.severity == Severity::Error {
                    left_errors += 1;
                } else {
                    left_warnings += 1;
                }
            }
            if let Some(note) = not_run {
                let _ = writeln!(err, "{note}");
            }
            if let Some(line) = ok_line {
                let _ = writeln!(stdout.lock(), "{line}");
            }
        }
    }
    if left_errors + left_warnings > 0 {
        let _ = writeln!(
            stderr.lock(),
            "{}",
            omitted_line(left_errors, left_warnings)
        );
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
