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
/// span's part on that line (at least one caret).
fn render_snippet(out: &mut String, sources: &SourceMap, span: Span, note: Option<&str>) {
    let Some(file) = sources.get(span.file) else {
        return;
    };
    if file.text().is_empty() {
        return;
    }
    let start = file.line_col(span.start);
    let end = file.line_col(span.end);
    let line = file.line_text(start.line);
    // Columns do not count a byte order mark, so it is not shown either.
    let line = if start.line == 1 {
        line.trim_start_matches('\u{feff}')
    } else {
        line
    };
    // Tabs are shown as one space so carets line up with what is printed.
    let shown: String = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let width = shown.chars().count() as u32;
    let first = start.column - 1;
    let last = if end.line == start.line {
        end.column - 1
    } else {
        width
    };
    let carets = last.saturating_sub(first).max(1);
    let number = start.line.to_string();
    let pad = " ".repeat(number.len());
    let _ = writeln!(out, "{number} | {shown}");
    let _ = write!(
        out,
        "{pad} | {}{}",
        " ".repeat(first as usize),
        "^".repeat(carets as usize)
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
