//! System test definitions (`systems/NAME.test.toml`) and their checks.
//!
//! A definition names a policy, a wall-clock timeout and, per serial port
//! (`com1`, `com2`), what the boot must print. All matching is by
//! substring on whole lines (trailing `\r` removed):
//!
//! - `ordered`: each text must appear, on lines in this order (each match
//!   strictly after the previous one);
//! - `present`: each text must appear somewhere;
//! - `absent`: no line may contain any of these;
//! - `last`: the last non-empty line must contain this;
//! - `same`: every line containing this text must continue with the same
//!   word (e.g. the same checksum before and after an attack);
//! - `[[port.count]]`: `text` must occur on at least `min` / at most `max`
//!   lines.
//!
//! Top level: `policy` (file in systems/), `timeout` (seconds, default 60),
//! `stop_on` (end the boot `stop_grace` seconds, default 3, after a line
//! containing this appears on either port: for systems that halt instead
//! of powering off), `features` (kernel cargo features), `cpu_model` (the
//! Bochs CPU model, default `tigerlake`: for tests of how the kernel
//! refuses a CPU).
//!
//! A malformed definition is reported as `FILE:LINE:COL: message`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::pipeline::Paths;
use crate::util::Error;

/// One system test.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TestDef {
    /// Policy file name in `systems/`.
    pub policy: String,
    /// Wall-clock limit in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// Stop line, see the module docs.
    #[serde(default)]
    pub stop_on: Option<String>,
    /// Seconds to keep running after the stop line.
    #[serde(default = "default_grace")]
    pub stop_grace: u64,
    /// Kernel cargo features for this test.
    #[serde(default)]
    pub features: Vec<String>,
    /// Bochs CPU model to boot on.
    #[serde(default = "default_cpu_model")]
    pub cpu_model: Spanned<String>,
    /// Expectations on COM1.
    #[serde(default)]
    pub com1: PortExpect,
    /// Expectations on COM2 (the kernel's debug console).
    #[serde(default)]
    pub com2: PortExpect,
}

fn default_timeout() -> u64 {
    60
}

fn default_grace() -> u64 {
    3
}

fn default_cpu_model() -> Spanned<String> {
    Spanned::new(0..0, crate::bochs::DEFAULT_CPU_MODEL.to_owned())
}

/// Expectations on one port.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortExpect {
    /// Must appear in this order.
    #[serde(default)]
    pub ordered: Vec<String>,
    /// Must appear.
    #[serde(default)]
    pub present: Vec<String>,
    /// Must not appear.
    #[serde(default)]
    pub absent: Vec<String>,
    /// The last non-empty line must contain this.
    #[serde(default)]
    pub last: Option<String>,
    /// Lines containing this must continue identically.
    #[serde(default)]
    pub same: Option<String>,
    /// Occurrence counts.
    #[serde(default)]
    pub count: Vec<Count>,
}

/// An occurrence count.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// Text to count (lines containing it).
    pub text: String,
    /// At least this many.
    #[serde(default)]
    pub min: Option<usize>,
    /// At most this many.
    #[serde(default)]
    pub max: Option<usize>,
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Parses a definition; `path` is used in error messages.
pub fn parse(path: &Path, text: &str) -> Result<TestDef, Error> {
    let def = toml::from_str::<TestDef>(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        Error(format!("{}:{line}:{col}: {}", path.display(), e.message()))
    })?;
    if !crate::bochs::valid_cpu_model(def.cpu_model.get_ref()) {
        let (line, col) = line_col(text, def.cpu_model.span().start);
        return Err(Error(format!(
            "{}:{line}:{col}: `cpu_model` must be a Bochs CPU model name \
             (lowercase letters, digits, `_`), e.g. \"core2_penryn_t9600\"",
            path.display()
        )));
    }
    Ok(def)
}

/// Every `systems/*.test.toml`, sorted by name.
pub fn discover(paths: &Paths) -> Result<Vec<(String, PathBuf, TestDef)>, Error> {
    let dir = paths.root.join("systems");
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut tests = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".test.toml") else {
            continue;
        };
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        tests.push((stem.to_owned(), path.clone(), parse(&path, &text)?));
    }
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tests)
}

/// The definition whose policy is `system` (for `run`'s stop line), if any.
pub fn load_for_policy(paths: &Paths, system: &str) -> Result<Option<TestDef>, Error> {
    let stem = Path::new(system)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(system);
    let path = paths.root.join("systems").join(format!("{stem}.test.toml"));
    if !path.is_file() {
        return Ok(None);
    }
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&path, &text).map(Some)
}

/// Checks one port's output; returns one message per unmet expectation.
pub fn check_port(port: &str, expect: &PortExpect, output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut failures = Vec::new();

    let mut next = 0usize;
    for text in &expect.ordered {
        let found = lines
            .get(next..)
            .and_then(|rest| rest.iter().position(|l| l.contains(text)));
        match found {
            Some(i) => next += i + 1,
            None if lines.iter().any(|l| l.contains(text)) => {
                failures.push(format!(
                    "{port}: `{text}` appears, but not after the previous expected line"
                ));
            }
            None => failures.push(format!("{port}: expected line `{text}` never appeared")),
        }
    }
    for text in &expect.present {
        if !lines.iter().any(|l| l.contains(text)) {
            failures.push(format!("{port}: expected line `{text}` never appeared"));
        }
    }
    for text in &expect.absent {
        if let Some(line) = lines.iter().find(|l| l.contains(text)) {
            failures.push(format!("{port}: forbidden `{text}` appeared: `{line}`"));
        }
    }
    if let Some(text) = &expect.last {
        let last = lines.iter().rev().find(|l| !l.trim().is_empty());
        if !last.is_some_and(|l| l.contains(text)) {
            failures.push(format!(
                "{port}: last line should contain `{text}`, but it is `{}`",
                last.unwrap_or(&"")
            ));
        }
    }
    if let Some(text) = &expect.same {
        let words: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.find(text.as_str()).map(|at| &l[at + text.len()..]))
            .map(|rest| rest.split_whitespace().next().unwrap_or(""))
            .collect();
        if let Some(first) = words.first()
            && let Some(other) = words.iter().find(|w| *w != first)
        {
            failures.push(format!(
                "{port}: `{text}` followed by `{first}` and later by `{other}`"
            ));
        }
    }
    for count in &expect.count {
        let n = lines.iter().filter(|l| l.contains(&count.text)).count();
        if count.min.is_some_and(|min| n < min) || count.max.is_some_and(|max| n > max) {
            let min = count.min.map_or("0".to_owned(), |m| m.to_string());
            let max = count.max.map_or("any".to_owned(), |m| m.to_string());
            failures.push(format!(
                "{port}: `{}` on {n} lines, expected {min}..{max}",
                count.text
            ));
        }
    }
    failures
}

/// Checks a whole boot.
pub fn check(def: &TestDef, com1: &str, com2: &str) -> Vec<String> {
    let mut failures = check_port("com1", &def.com1, com1);
    failures.extend(check_port("com2", &def.com2, com2));
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEF: &str = r#"
policy = "demo.xml"
timeout = 30

[com1]
ordered = ["alive 0", "got 1", "done"]
present = ["alive 1"]
absent = ["mismatch"]
last = "done"
same = "checksum="

[[com1.count]]
text = "got"
min = 2
max = 2
"#;

    fn def() -> TestDef {
        parse(Path::new("t.toml"), DEF).unwrap()
    }

    #[test]
    fn parses_defaults() {
        let d = def();
        assert_eq!(d.policy, "demo.xml");
        assert_eq!(d.timeout, 30);
        assert_eq!(d.stop_grace, 3);
        assert_eq!(d.cpu_model.get_ref(), "tigerlake");
        assert_eq!(d.com1.count.len(), 1);
        assert_eq!(d.com2, PortExpect::default());
    }

    #[test]
    fn passing_output() {
        let out = "alive 0\r\nchecksum=0x1 a\ngot 0\ngot 1\nalive 1\nchecksum=0x1 b\ndone\n\n";
        assert_eq!(check(&def(), out, ""), Vec::<String>::new());
    }

    #[test]
    fn each_rule_fails_on_its_own() {
        let d = def();
        let fails = |out: &str| check_port("com1", &d.com1, out);
        let ok = "alive 0\ngot 0\ngot 1\nalive 1\ndone\n";
        assert!(fails(ok).is_empty());
        // Order.
        let f = fails("got 0\ngot 1\nalive 0\nalive 1\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("`got 1` appears, but not after")),
            "{f:?}"
        );
        // Missing.
        let f = fails("alive 0\ngot 0\ngot 1\ndone\n");
        assert!(
            f.iter().any(|m| m.contains("`alive 1` never appeared")),
            "{f:?}"
        );
        // Forbidden.
        let f = fails("alive 0\ngot 0\ngot 1\nalive 1\ndata mismatch\ndone\n");
        assert!(
            f.iter().any(|m| m.contains("forbidden `mismatch`")),
            "{f:?}"
        );
        // Last.
        let f = fails("alive 0\ngot 0\ngot 1\nalive 1\ndone\nalive 2\n");
        assert!(
            f.iter()
                .any(|m| m.contains("last line should contain `done`")),
            "{f:?}"
        );
        // Count.
        let f = fails("alive 0\ngot 0\ngot 1\ngot 2\nalive 1\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("`got` on 3 lines, expected 2..2")),
            "{f:?}"
        );
        // Same.
        let f = fails("alive 0\nchecksum=0x1\ngot 0\ngot 1\nalive 1\nchecksum=0x2\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("followed by `0x1` and later by `0x2`")),
            "{f:?}"
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = parse(
            Path::new("systems/x.test.toml"),
            "policy = \"a.xml\"\ntimeout = \"soon\"\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("systems/x.test.toml:2:11: "), "{}", err.0);
        let err = parse(
            Path::new("y.toml"),
            "policy = \"a.xml\"\n[com1]\nbogus = 1\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("y.toml:3:1: "), "{}", err.0);
        assert!(err.0.contains("bogus"), "{}", err.0);
        let err = parse(
            Path::new("m.toml"),
            "policy = \"a.xml\"\ncpu_model = \"x, count=2\"\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("m.toml:2:13: "), "{}", err.0);
        assert!(err.0.contains("cpu_model"), "{}", err.0);
        let ok = parse(
            Path::new("n.toml"),
            "policy = \"a.xml\"\ncpu_model = \"core2_penryn_t9600\"\n",
        );
        assert_eq!(ok.unwrap().cpu_model.get_ref(), "core2_penryn_t9600");
        let err = parse(Path::new("z.toml"), "timeout = 5\n").unwrap_err();
        assert!(err.0.contains("policy"), "{}", err.0);
    }

    #[test]
    fn shipped_definitions_parse() {
        let paths = Paths::discover().unwrap();
        let tests = discover(&paths).unwrap();
        assert!(tests.iter().any(|(name, _, _)| name == "demo"));
        for (name, _, def) in tests {
            assert!(
                paths.root.join("systems").join(&def.policy).is_file(),
                "{name}: policy missing"
            );
        }
    }
}
