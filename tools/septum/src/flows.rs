//! `septum flows POLICY [--format text|json|dot|svg]`: every path by which
//! information can move between subjects, derived from the policy alone
//! (`septum_policy::flows`, see docs/flows.md).
//!
//! The policy is loaded and validated first. Loading errors stop it (there
//! is no model to derive from): diagnostics on stderr, exit 1. Otherwise
//! the flows are printed on stdout even when rules fail, so a denied flow
//! can be looked at; rule errors then follow on stderr and the exit status
//! is 1.
//!
//! - text: a subjects x subjects matrix (row can pass information to
//!   column; one letter per kind), a legend, then one line per flow with
//!   the policy element that allows it (`FILE:LINE:COL`);
//! - json: one object with `policy`, `subjects` and `flows`, every flow
//!   with `from`, `to`, `kind`, `covert`, `detail` and both ends' locations;
//! - dot: a Graphviz digraph (overt flows solid, covert ones dashed; flows
//!   that go both ways by nature, devices and covert paths, drawn once with
//!   arrows at both ends). Render with `dot -Tsvg`.
//! - svg: the DOT picture rendered by Graphviz's `dot -Tsvg`, run as a
//!   child process. Graphviz is an optional runtime tool, not a build
//!   dependency: without `dot` on PATH this format fails with an error that
//!   names the missing program (exit 1, nothing on stdout), and the other
//!   formats keep working.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use septum_policy::diag::{TEXT_LIMIT, render_text_capped};
use septum_policy::flows::{self, Flow, FlowKind};
use septum_policy::{Policy, SourceMap, Span, check};

/// Output format of `septum flows`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FlowFormat {
    /// Matrix and list.
    Text,
    /// Every edge as JSON.
    Json,
    /// Graphviz DOT.
    Dot,
    /// The DOT picture rendered to SVG by Graphviz's `dot` (must be on PATH).
    Svg,
}

/// Runs `septum flows`.
pub fn run(path: &Path, format: FlowFormat) -> ExitCode {
    let loaded = check(path);
    let diagnostics = loaded.diagnostics.as_slice();
    let Some(policy) = loaded.policy.as_ref().filter(|_| loaded.rules_run) else {
        eprint!(
            "{}",
            render_text_capped(diagnostics, &loaded.sources, TEXT_LIMIT)
        );
        eprintln!(
            "error: {}: loading failed, so no flows were derived",
            path.display()
        );
        return ExitCode::FAILURE;
    };
    let all = flows::derive(policy);
    let output = match format {
        FlowFormat::Text => text(policy, &all, &loaded.sources).into_bytes(),
        FlowFormat::Json => json(policy, &all, &loaded.sources).into_bytes(),
        FlowFormat::Dot => dot(policy, &all).into_bytes(),
        FlowFormat::Svg => match render_svg(&dot(policy, &all)) {
            Ok(svg) => svg,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
        },
    };
    if let Err(error) = io::stdout().lock().write_all(&output) {
        eprintln!("error: cannot write the flows to stdout: {error}");
        return ExitCode::FAILURE;
    }
    if loaded.diagnostics.has_errors() {
        eprint!(
            "{}",
            render_text_capped(diagnostics, &loaded.sources, TEXT_LIMIT)
        );
        eprintln!(
            "error: {} errors; septum validate shows them all",
            loaded.diagnostics.error_count()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn name(policy: &Policy, flow_end: septum_policy::model::SubjectIdx) -> &str {
    policy
        .subjects
        .get(flow_end.index())
        .map(|s| s.name.as_str())
        .unwrap_or_default()
}

fn location(sources: &SourceMap, span: Span) -> String {
    let at = sources.start(span);
    format!(
        "{}:{}:{}",
        sources.path(span.file).display(),
        at.line,
        at.column
    )
}

/// The matrix, a legend and the list of flows.
pub fn text(policy: &Policy, all: &[Flow], sources: &SourceMap) -> String {
    let n = policy.subjects.len();
    let mut cells = vec![vec![String::new(); n]; n];
    for flow in all {
        if let Some(cell) = cells
            .get_mut(flow.from.index())
            .and_then(|row| row.get_mut(flow.to.index()))
            && !cell.contains(flow.kind.letter())
        {
            cell.push(flow.kind.letter());
        }
    }
    let names: Vec<&str> = policy.subjects.iter().map(|s| s.name.as_str()).collect();
    let first = names.iter().map(|s| s.len()).max().unwrap_or(0).max(4);
    // Each column's width, once: the matrix is n x n, so a width computed
    // per cell (a pass over the column) made the text cubic in n.
    let mut widths: Vec<usize> = names.iter().map(|s| s.len().max(1)).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let width = |j: usize| widths.get(j).copied().unwrap_or(1);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "flows of {} ({}, {}): the row's subject can pass information to the column's",
        policy.name.as_str(),
        crate::plural(n, "subject", "subjects"),
        crate::plural(all.len(), "flow", "flows")
    );
    let _ = write!(out, "{:first$}", "");
    for (j, column) in names.iter().enumerate() {
        let _ = write!(out, "  {:w$}", column, w = width(j));
    }
    out.push('\n');
    for (i, row) in cells.iter().enumerate() {
        let _ = write!(out, "{:first$}", names.get(i).copied().unwrap_or_default());
        for (j, cell) in row.iter().enumerate() {
            let shown = if i == j {
                "-"
            } else if cell.is_empty() {
                "."
            } else {
                cell
            };
            let _ = write!(out, "  {:w$}", shown, w = width(j));
        }
        // No trailing spaces.
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    }
    out.push('\n');
    let legend: Vec<String> = FlowKind::ALL
        .iter()
        .map(|k| format!("{} {}", k.letter(), k.as_str()))
        .collect();
    let _ = writeln!(
        out,
        "kinds: {} (lower case: covert, left by the schedule)",
        legend.join(", ")
    );
    if !all.is_empty() {
        out.push('\n');
    }
    for flow in all {
        let _ = writeln!(
            out,
            "{} -> {}: {}: {} ({})",
            name(policy, flow.from),
            name(policy, flow.to),
            flow.kind.as_str(),
            flow.detail,
            location(sources, flow.span)
        );
    }
    out
}

/// One JSON object with every flow.
pub fn json(policy: &Policy, all: &[Flow], sources: &SourceMap) -> String {
    let at = |span: Span| {
        let start = sources.start(span);
        serde_json::json!({
            "file": sources.path(span.file).display().to_string(),
            "line": start.line,
            "column": start.column,
        })
    };
    let flows: Vec<serde_json::Value> = all
        .iter()
        .map(|f| {
            serde_json::json!({
                "from": name(policy, f.from),
                "to": name(policy, f.to),
                "kind": f.kind.as_str(),
                "covert": f.kind.is_covert(),
                "detail": f.detail,
                "at": at(f.span),
                "to_at": at(f.to_span),
            })
        })
        .collect();
    let value = serde_json::json!({
        "policy": policy.name.as_str(),
        "subjects": policy.subjects.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        "flows": flows,
    });
    let mut out = serde_json::to_string_pretty(&value).unwrap_or_default();
    out.push('\n');
    out
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether a kind always goes both ways (drawn once, arrows at both ends).
fn symmetric(kind: FlowKind) -> bool {
    kind == FlowKind::Device || kind.is_covert()
}

/// A Graphviz digraph of the flows.
pub fn dot(policy: &Policy, all: &[Flow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "digraph {} {{",
        quoted(&format!("flows of {}", policy.name.as_str()))
    );
    out.push_str("  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n");
    out.push_str("  edge [fontname=\"sans-serif\", fontsize=10];\n");
    for subject in &policy.subjects {
        let _ = writeln!(out, "  {};", quoted(subject.name.as_str()));
    }
    for flow in all {
        if symmetric(flow.kind) && flow.from > flow.to {
            continue;
        }
        let mut attributes = vec![format!(
            "label={}",
            quoted(&format!("{}: {}", flow.kind.as_str(), flow.detail))
        )];
        if flow.kind.is_covert() {
            attributes.push("style=dashed".to_owned());
            attributes.push("color=gray50".to_owned());
        }
        if symmetric(flow.kind) {
            attributes.push("dir=both".to_owned());
        }
        let _ = writeln!(
            out,
            "  {} -> {} [{}];",
            quoted(name(policy, flow.from)),
            quoted(name(policy, flow.to)),
            attributes.join(", ")
        );
    }
    out.push_str("}\n");
    out
}

/// The Graphviz program `--format svg` runs.
const DOT_PROGRAM: &str = "dot";

/// Renders a DOT text to SVG with `dot -Tsvg`; the error says what went
/// wrong in words (missing program, failed run), never panics.
fn render_svg(dot_text: &str) -> Result<Vec<u8>, String> {
    let mut child = Command::new(DOT_PROGRAM)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                format!(
                    "--format svg needs Graphviz's `{DOT_PROGRAM}` program, which is not on \
                     PATH; install Graphviz (Debian: graphviz) or use --format dot"
                )
            } else {
                format!("cannot run Graphviz's `{DOT_PROGRAM}`: {error}")
            }
        })?;
    // Feed stdin from another thread so a large picture cannot deadlock
    // against `dot` filling its stdout pipe.
    let stdin = child.stdin.take();
    let output = std::thread::scope(|scope| {
        let writer = scope.spawn(move || stdin.map(|mut pipe| pipe.write_all(dot_text.as_bytes())));
        let output = child.wait_with_output();
        let written = writer.join();
        (output, written)
    });
    let (output, written) = output;
    let output =
        output.map_err(|error| format!("cannot run Graphviz's `{DOT_PROGRAM}`: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "Graphviz's `{DOT_PROGRAM} -Tsvg` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    if !matches!(written, Ok(Some(Ok(())))) {
        return Err(format!(
            "cannot pass the picture to Graphviz's `{DOT_PROGRAM}` on its stdin"
        ));
    }
    Ok(output.stdout)
}
