//! Diagnostics: what the loader and the rules report, and how it is shown.
//!
//! A [`Diagnostic`] names the rule that found it (`rule`, a stable id such
//! as `unknown-element` or `channel-no-reader`), points at the offending
//! text with a [`Span`], and may carry extra labelled spans and a hint on
//! how to fix it. Everything is collected in a [`Diagnostics`] sink so one
//! run reports every problem, never only the first.
//!
//! Two renderers: [`render_text`] for people (`path:line:col: error[rule]:
//! message`, the source line and a caret underline, like compilers print),
//! and [`render_json`] for tools. Both take the [`SourceMap`] because spans
//! hold byte offsets; line and column are computed only here.
//!
//! Text output stays small whatever the input: a source line is shown only
//! [`CONTEXT_CHARS`] characters either side of the caret (cut ends marked
//! `…`), an underline at most [`MAX_CARETS`] long, and
//! [`render_text_capped`] shows the first diagnostics and counts the rest.
//! JSON output is always complete.

use std::fmt::Write as _;

use serde::Serialize;

use crate::source::{SourceMap, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is rejected.
    Error,
    /// The policy is accepted, but probably not what was meant.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// An extra span with a short explanation ("first defined here").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// What the label points at.
    pub span: Span,
    /// What it says about it.
    pub message: String,
}

/// One problem found in a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Id of the rule that found it (kebab-case, stable: tests and users
    /// match on it).
    pub rule: &'static str,
    /// What is wrong, in the integrator's words; no trailing period.
    pub message: String,
    /// The primary location.
    pub span: Span,
    /// Secondary locations.
    pub labels: Vec<Label>,
    /// How to fix it, if the rule knows.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error from `rule` at `span`.
    pub fn error(rule: &'static str, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, rule, span, message)
    }

    /// A warning from `rule` at `span`.
    pub fn warning(rule: &'static str, span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, rule, span, message)
    }

    /// A diagnostic of any severity.
    pub fn new(
        severity: Severity,
        rule: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            rule,
            message: message.into(),
            span,
            labels: Vec::new(),
            help: None,
        }
    }

    /// Adds a secondary location.
    #[must_use]
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    /// Sets the hint.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sort key: file (load order), position, then rule and message so the
    /// order is total and independent of the order rules ran in.
    fn sort_key(&self) -> (Span, &'static str, &str) {
        (self.span, self.rule, &self.message)
    }
}

/// A sink collecting diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Adds an error and returns it for adding labels or help in place.
    pub fn error(
        &mut self,
        rule: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.items.push(Diagnostic::error(rule, span, message));
        self.items.last_mut().expect("just pushed")
    }

    /// Adds a warning and returns it for adding labels or help in place.
    pub fn warning(
        &mut self,
        rule: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.items.push(Diagnostic::warning(rule, span, message));
        self.items.last_mut().expect("just pushed")
    }

    /// Moves every diagnostic of `other` into `self`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Sorts by file (load order), position, rule and message, and drops
    /// exact duplicates, so output is deterministic.
    pub fn sort(&mut self) {
        self.items.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.items.dedup();
    }

    /// All diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// All diagnostics as a slice.
    pub fn as_slice(&self) -> &[Diagnostic] {
        &self.items
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Whether any error was reported.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// The diagnostics, consuming the sink.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl Extend<Diagnostic> for Diagnostics {
    fn extend<T: IntoIterator<Item = Diagnostic>>(&mut self, iter: T) {
        self.items.extend(iter);
    }
}

/// Characters of a source line shown on each side of the underlined part.
pub const CONTEXT_CHARS: usize = 60;
/// Longest underline shown (longer spans are cut, marked `…`).
pub const MAX_CARETS: usize = 120;
/// Diagnostics [`render_text_capped`] shows by default (`septum validate`).
pub const TEXT_LIMIT: usize = 50;

/// The first `limit` diagnostics rendered with [`render_text`], each
/// followed by an empty line, then, if some were left out, one line
/// `... and N more diagnostics (E errors, W warnings) not shown; use
/// --format json to see all`.
pub fn render_text_capped(diagnostics: &[Diagnostic], sources: &SourceMap, limit: usize) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics.iter().take(limit) {
        out.push_str(&render_text(diagnostic, sources));
        out.push('\n');
    }
    if let Some(rest) = diagnostics.get(limit..).filter(|rest| !rest.is_empty()) {
        let errors = rest
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        out.push_str(&omitted_line(errors, rest.len() - errors));
        out.push('\n');
    }
    out
}

/// `... and N more diagnostics (E errors, W warnings) not shown; use
/// --format json to see all`, for the diagnostics left out of text output.
pub fn omitted_line(errors: usize, warnings: usize) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!(
        "... and {} ({}, {}) not shown; use --format json to see all",
        count(errors + warnings, "more diagnostic"),
        count(errors, "error"),
        count(warnings, "warning")
    )
}

/// The first line of a rendered diagnostic:
/// `path:line:col: error[rule]: message`.
pub fn headline(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
    let at = sources.start(diagnostic.span);
    format!(
        "{}:{}:{}: {}[{}]: {}",
        sources.path(diagnostic.span.file).display(),
        at.line,
        at.column,
        diagnostic.severity.as_str(),
        diagnostic.rule,
        diagnostic.message
    )
}

/// Renders one diagnostic for a terminal: the headline, the source line with
/// a caret underline, every label the same way, then the hint. Ends with a
/// newline.
pub fn render_text(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
    let mut out = headline(diagnostic, sources);
    out.push('\n');
    render_snippet(&mut out, sources, diagnostic.span, None);
    for label in &diagnostic.labels {
        let at = sources.start(label.span);
        let _ = writeln!(
            out,
            "  --> {}:{}:{}",
            sources.path(label.span.file).display(),
            at.line,
            at.column
        );
        render_snippet(&mut out, sources, label.span, Some(&label.message));
    }
    if let Some(help) = &diagnostic.help {
        let _ = writeln!(out, "   = help: {help}");
    }
    out
}

/// Writes the line holding the start of `span` and a caret line under the
/// span's part on that line (at least one caret). A long line is cut to
/// [`CONTEXT_CHARS`] characters either side of the underline, which is at
/// most [`MAX_CARETS`] long; the work is proportional to what is shown,
/// not to the line's length.
fn render_snippet(out: &mut String, sources: &SourceMap, span: Span, note: Option<&str>) {
    let Some(file) = sources.get(span.file) else {
        return;
    };
    let text = file.text();
    if text.is_empty() {
        return;
    }
    let start = file.line_col(span.start);
    let end = file.line_col(span.end);
    let mut line = file.line_range(start.line);
    // Columns do not count a byte order mark, so it is not shown either.
    if start.line == 1 {
        line.start = line.start.max(file.leading_marks()).min(line.end);
    }
    let boundary = |mut at: usize| {
        at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    // The caret may sit just past the shown line (on its terminator).
    let caret_start = boundary(span.start as usize).max(line.start);
    let caret_end = if end.line == start.line {
        boundary(span.end as usize).max(caret_start)
    } else {
        line.end.max(caret_start)
    };
    let slice = |range: std::ops::Range<usize>| text.get(range).unwrap_or("");
    let from = slice(line.start..caret_start.min(line.end))
        .char_indices()
        .rev()
        .nth(CONTEXT_CHARS - 1)
        .map_or(line.start, |(i, _)| line.start + i);
    let underline = slice(caret_start..caret_end);
    let (underline_end, underline_cut) = match underline.char_indices().nth(MAX_CARETS) {
        Some((i, _)) => (caret_start + i, true),
        None => (caret_end, false),
    };
    let to = if underline_end >= line.end {
        line.end
    } else {
        slice(underline_end..line.end)
            .char_indices()
            .nth(CONTEXT_CHARS)
            .map_or(line.end, |(i, _)| underline_end + i)
    };
    let mut shown = String::new();
    if from > line.start {
        shown.push('…');
    }
    // Tabs are shown as one space so carets line up with what is printed.
    shown.extend(
        slice(from..to.max(from))
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c }),
    );
    if to < line.end {
        shown.push('…');
    }
    let first = usize::from(from > line.start) + slice(from..caret_start).chars().count();
    let carets = slice(caret_start..underline_end).chars().count().max(1);
    let number = start.line.to_string();
    let pad = " ".repeat(number.len());
    let _ = writeln!(out, "{number} | {shown}");
    let _ = write!(
        out,
        "{pad} | {}{}{}",
        " ".repeat(first),
        "^".repeat(carets),
        if underline_cut { "…" } else { "" }
    );
    match note {
        Some(note) => {
            let _ = writeln!(out, " {note}");
        }
        None => out.push('\n'),
    }
}

#[derive(Serialize)]
struct JsonLocation<'a> {
    file: String,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: String,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    severity: Severity,
    rule: &'static str,
    message: &'a str,
    help: Option<&'a str>,
    labels: Vec<JsonLocation<'a>>,
}

fn location<'a>(sources: &SourceMap, span: Span, message: Option<&'a str>) -> JsonLocation<'a> {
    let start = sources.start(span);
    let end = sources.end(span);
    JsonLocation {
        file: sources.path(span.file).display().to_string(),
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
        message,
    }
}

/// Renders diagnostics as a JSON array of objects with `file`, `line`,
/// `column`, `end_line`, `end_column` (exclusive end), `severity`, `rule`,
/// `message`, `help` (string or null) and `labels` (each with a location
/// and `message`).
pub fn render_json<'a>(
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    sources: &SourceMap,
) -> String {
    render_json_sets([(sources, diagnostics.into_iter().collect::<Vec<_>>())])
}

/// Like [`render_json`], for diagnostics of several loads (each with its
/// own source map) in one array, e.g. `septum validate` on many files.
pub fn render_json_sets<'a, S>(sets: S) -> String
where
    S: IntoIterator<Item = (&'a SourceMap, Vec<&'a Diagnostic>)>,
{
    let mut items: Vec<JsonDiagnostic<'_>> = Vec::new();
    for (sources, diagnostics) in sets {
        items.extend(diagnostics.into_iter().map(|d| {
            let at = location(sources, d.span, None);
            JsonDiagnostic {
                file: at.file,
                line: at.line,
                column: at.column,
                end_line: at.end_line,
                end_column: at.end_column,
                severity: d.severity,
                rule: d.rule,
                message: &d.message,
                help: d.help.as_deref(),
                labels: d
                    .labels
                    .iter()
                    .map(|l| location(sources, l.span, Some(&l.message)))
                    .collect(),
            }
        }));
    }
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SourceMap, Diagnostic) {
        let mut sources = SourceMap::new();
        let file = sources.add("sys/a.xml", "<system>\n  <foo bar=\"1\"/>\n</system>\n");
        let d = Diagnostic::error("unknown-element", Span::new(file, 12..15), "unknown <foo>")
            .with_label(Span::new(file, 1..7), "inside this")
            .with_help("remove it");
        (sources, d)
    }

    #[test]
    fn text_has_headline_source_line_and_carets() {
        let (sources, d) = sample();
        let text = render_text(&d, &sources);
        let expected = "sys/a.xml:2:4: error[unknown-element]: unknown <foo>\n\
                        2 |   <foo bar=\"1\"/>\n\
                        \x20 |    ^^^\n\
                        \x20 --> sys/a.xml:1:2\n\
                        1 | <system>\n\
                        \x20 |  ^^^^^^ inside this\n\
                        \x20  = help: remove it\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn long_lines_are_cut_around_the_caret() {
        let mut sources = SourceMap::new();
        let line = format!(
            "<system>{}<bad/>{}</system>",
            "<x/>".repeat(1000),
            "<y/>".repeat(1000)
        );
        let at = line.find("<bad").unwrap();
        let file = sources.add("a.xml", format!("\n{line}\n"));
        let d = Diagnostic::error("r", Span::new(file, at + 1..at + 5), "m");
        let text = render_text(&d, &sources);
        let expected = format!(
            "a.xml:2:{}: error[r]: m\n2 | …{}<bad/>{}<y…\n  | {}^^^^\n",
            at + 1,
            "<x/>".repeat(15),
            "<y/>".repeat(14),
            " ".repeat(61)
        );
        assert_eq!(text, expected);
        // A huge span: the underline is cut too.
        let d = Diagnostic::error("r", Span::new(file, 1..line.len() + 1), "m");
        let text = render_text(&d, &sources);
        let carets = text.lines().nth(2).unwrap();
        assert_eq!(carets, format!("  | {}…", "^".repeat(MAX_CARETS)));
        assert!(text.len() < 500, "{text}");
    }

    #[test]
    fn only_the_first_diagnostics_are_shown_as_text() {
        let (sources, d) = sample();
        let mut all = vec![d.clone(); 3];
        all.push(Diagnostic::warning("w", d.span, "later"));
        let text = render_text_capped(&all, &sources, 2);
        assert_eq!(text.matches("error[unknown-element]").count(), 2);
        assert!(text.ends_with(
            "\n... and 2 more diagnostics (1 error, 1 warning) not shown; use --format json to \
             see all\n"
        ));
        assert_eq!(
            render_text_capped(&all[..2], &sources, 2),
            render_text_capped(&all, &sources, 2)
                .split("... and")
                .next()
                .unwrap()
        );
    }

    #[test]
    fn json_has_every_field() {
        let (sources, d) = sample();
        let json: serde_json::Value = serde_json::from_str(&render_json([&d], &sources)).unwrap();
        let first = &json[0];
        assert_eq!(first["file"], "sys/a.xml");
        assert_eq!(first["line"], 2);
        assert_eq!(first["column"], 4);
        assert_eq!(first["end_line"], 2);
        assert_eq!(first["end_column"], 7);
        assert_eq!(first["severity"], "error");
        assert_eq!(first["rule"], "unknown-element");
        assert_eq!(first["help"], "remove it");
        assert_eq!(first["labels"][0]["line"], 1);
        assert_eq!(first["labels"][0]["message"], "inside this");
    }

    #[test]
    fn sorting_is_by_position_and_drops_duplicates() {
        let (_, d) = sample();
        let mut sink = Diagnostics::new();
        let mut early = d.clone();
        early.span.start = 0;
        sink.push(d.clone());
        sink.push(early.clone());
        sink.push(d.clone());
        sink.warning("w", d.span, "later");
        sink.sort();
        assert_eq!(sink.len(), 3);
        assert_eq!(sink.as_slice()[0], early);
        assert_eq!((sink.error_count(), sink.warning_count()), (2, 1));
    }
}
