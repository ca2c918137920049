//! System test definitions (`systems/NAME.test.toml`) and their checks.
//!
//! A definition names a policy, a wall-clock timeout and, per serial port
//! (`com1`, `com2`), what the boot must print. Output is taken line by line
//! (trailing `\r` removed) and every expectation is a [`Pattern`] matched
//! against one line: plain text is a substring (as it always was), and a
//! prefix asks for more: `line:` the whole line, `word:` the text with no
//! letter, digit or `_` right before or after it (so `word:value 1` does
//! not match `value 10`), `re:` a regular expression (the `regex` crate's
//! syntax, searched in the line: anchor it with `^...$` for a whole line).
//! Patterns are compiled when the definition is read, so a bad regex is a
//! located error, not a failed boot.
//!
//! - `ordered`: each pattern must match, on lines in this order (each match
//!   strictly after the previous one);
//! - `present`: each must match some line;
//! - `absent`: no line may match any of these;
//! - `last`: the last non-empty line must match this;
//! - `same`: every line containing this text (a plain substring) must
//!   continue with the same word (e.g. the same checksum before and after
//!   an attack); `same_skip`: the first this many such lines are not
//!   compared (a first life before the ones the test is about);
//! - `[[port.count]]`: `text` (a pattern) must match at least `min` / at
//!   most `max` lines.
//!
//! Top level: `policy` (the policy file, relative to the definition's
//! directory: `systems/` for the shipped tests), `timeout` (seconds,
//! default 60), `stop_on` (end the boot `stop_grace` seconds, default 3,
//! after a line containing this appears on either port: for systems that
//! halt instead of powering off), `features` (kernel cargo features),
//! `cpu_model` (the Bochs CPU model, default `tigerlake`: for tests of how
//! the kernel refuses a CPU), `emulator` (`bochs`, the default, or
//! `qemu-q35-vtd`: QEMU's VT-d machine, for kernel builds that skip VMX),
//! `nic` (`none`, the default, or `e1000`: Bochs' e1000 network card in
//! PCI slot 1, for the level-triggered device tests; `crate::bochs::Nic`).
//!
//! `[[send]]` types into the system (Bochs only): `after` (a pattern),
//! `text` (the bytes, TOML escapes such as `\n` included) and `port`
//! (`com1` or `com2`, default `com2`, the kernel's debug console in the
//! shipped systems). The entries are taken in order, each once: when a
//! line of `port` matches `after` (the first entry: any line since the
//! boot began; a later one: a line completed after the previous entry was
//! sent), `text` is sent to that port's receive side. What reaches a
//! subject is the policy's business (`<kernel consoleInput>`); the harness
//! only types. An entry whose line never appears sends nothing, and the
//! expectations show it.
//!
//! A malformed definition is reported as `FILE:LINE:COL: message`.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::pipeline::Paths;
use crate::util::Error;

/// One system test.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TestDef {
    /// Policy file, relative to the definition's directory.
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
    /// The emulator: Bochs (default) or QEMU's VT-d machine.
    #[serde(default)]
    pub emulator: Emulator,
    /// A network card in the Bochs machine (none by default).
    #[serde(default)]
    pub nic: crate::bochs::Nic,
    /// Expectations on COM1.
    #[serde(default)]
    pub com1: PortExpect,
    /// Expectations on COM2 (the kernel's debug console).
    #[serde(default)]
    pub com2: PortExpect,
    /// Bytes typed into the system, in order (`[[send]]`).
    #[serde(default)]
    pub send: Vec<SendDef>,
}

/// One `[[send]]` entry: see the module docs.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SendDef {
    /// Send once a line of `port` matches this.
    pub after: Pattern,
    /// The bytes to send.
    pub text: String,
    /// The port: `com1` or `com2`.
    #[serde(default = "default_send_port")]
    pub port: SendPort,
}

/// A serial port a test types into.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum SendPort {
    /// COM1.
    #[serde(rename = "com1")]
    Com1,
    /// COM2.
    #[serde(rename = "com2")]
    Com2,
}

fn default_send_port() -> SendPort {
    SendPort::Com2
}

impl TestDef {
    /// What the test types into its boot.
    pub fn input(&self) -> crate::bochs::Input {
        crate::bochs::Input {
            sends: self
                .send
                .iter()
                .map(|send| crate::bochs::Send {
                    port: match send.port {
                        SendPort::Com1 => 0,
                        SendPort::Com2 => 1,
                    },
                    after: send.after.clone(),
                    bytes: send.text.as_bytes().to_vec(),
                })
                .collect(),
            ..crate::bochs::Input::default()
        }
    }
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

/// Which emulator boots a test.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub enum Emulator {
    /// Bochs with VT-x (`crate::bochs`).
    #[default]
    #[serde(rename = "bochs")]
    Bochs,
    /// QEMU q35 with an IOMMU and the edu device, no VT-x (`crate::qemu`).
    #[serde(rename = "qemu-q35-vtd")]
    QemuQ35Vtd,
}

impl Emulator {
    /// Name for progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Bochs => "Bochs",
            Emulator::QemuQ35Vtd => "QEMU",
        }
    }

    /// Boots the image in `dir` with this emulator, typing `input` (Bochs
    /// only).
    pub fn boot_with(
        self,
        dir: &Path,
        options: &crate::bochs::BootOptions,
        input: &crate::bochs::Input,
    ) -> Result<crate::bochs::Boot, Error> {
        match self {
            Emulator::Bochs => crate::bochs::boot_with(dir, options, input),
            Emulator::QemuQ35Vtd if input.any() => {
                Err("typing into a boot ([[send]], run's terminal) needs Bochs".into())
            }
            Emulator::QemuQ35Vtd => crate::qemu::boot(dir, options),
        }
    }
}

/// Expectations on one port.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortExpect {
    /// Must match lines in this order.
    #[serde(default)]
    pub ordered: Vec<Pattern>,
    /// Must match a line.
    #[serde(default)]
    pub present: Vec<Pattern>,
    /// Must match no line.
    #[serde(default)]
    pub absent: Vec<Pattern>,
    /// The last non-empty line must match this.
    #[serde(default)]
    pub last: Option<Pattern>,
    /// Lines containing this must continue identically.
    #[serde(default)]
    pub same: Option<String>,
    /// The first this many lines containing `same` are not compared.
    #[serde(default)]
    pub same_skip: usize,
    /// Occurrence counts.
    #[serde(default)]
    pub count: Vec<Count>,
}

/// An occurrence count.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Count {
    /// What to count (lines it matches).
    pub text: Pattern,
    /// At least this many.
    #[serde(default)]
    pub min: Option<usize>,
    /// At most this many.
    #[serde(default)]
    pub max: Option<usize>,
}

/// What one expectation matches in one line; see the module docs.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// As written in the definition (prefix included), for messages.
    written: String,
    kind: PatternKind,
}

#[derive(Clone, Debug)]
enum PatternKind {
    /// The line contains the text.
    Substring(String),
    /// The line is the text.
    Line(String),
    /// The line contains the text between non-word characters.
    Word(String),
    /// The regex matches somewhere in the line.
    Regex(Regex),
}

/// Whether `c` continues a word for `word:` patterns.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Pattern {
    /// Parses a pattern as written in a definition.
    pub fn parse(written: &str) -> Result<Self, String> {
        let kind = if let Some(text) = written.strip_prefix("line:") {
            PatternKind::Line(text.to_owned())
        } else if let Some(text) = written.strip_prefix("word:") {
            if text.is_empty() {
                return Err("`word:` needs a text after it".to_owned());
            }
            PatternKind::Word(text.to_owned())
        } else if let Some(expr) = written.strip_prefix("re:") {
            let regex = Regex::new(expr).map_err(|e| format!("bad regex `{expr}`: {e}"))?;
            PatternKind::Regex(regex)
        } else {
            PatternKind::Substring(written.to_owned())
        };
        Ok(Self {
            written: written.to_owned(),
            kind,
        })
    }

    /// Whether `line` (one line, no line break) matches.
    pub fn matches(&self, line: &str) -> bool {
        match &self.kind {
            PatternKind::Substring(text) => line.contains(text.as_str()),
            PatternKind::Line(text) => line == text,
            PatternKind::Word(text) => line.match_indices(text.as_str()).any(|(at, _)| {
                let before = line.get(..at).and_then(|b| b.chars().next_back());
                let after = line.get(at + text.len()..).and_then(|a| a.chars().next());
                !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
            }),
            PatternKind::Regex(regex) => regex.is_match(line),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for Pattern {}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let written = String::deserialize(deserializer)?;
        Self::parse(&written).map_err(serde::de::Error::custom)
    }
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
    if def.nic != crate::bochs::Nic::None && def.emulator != Emulator::Bochs {
        return Err(Error(format!(
            "{}: `nic` plugs a card into the Bochs machine; `emulator = \"{}\"` has none",
            path.display(),
            match def.emulator {
                Emulator::Bochs => "bochs",
                Emulator::QemuQ35Vtd => "qemu-q35-vtd",
            }
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

/// Reads and parses the definition at `path`.
pub fn load(path: &Path) -> Result<TestDef, Error> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(path, &text)
}

/// The policy of the definition at `path`: relative to its directory.
pub fn policy_of(path: &Path, def: &TestDef) -> PathBuf {
    path.parent().unwrap_or(Path::new("")).join(&def.policy)
}

/// Checks one port's output; returns one message per unmet expectation.
pub fn check_port(port: &str, expect: &PortExpect, output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut failures = Vec::new();

    let mut next = 0usize;
    for text in &expect.ordered {
        let found = lines
            .get(next..)
            .and_then(|rest| rest.iter().position(|l| text.matches(l)));
        match found {
            Some(i) => next += i + 1,
            None if lines.iter().any(|l| text.matches(l)) => {
                failures.push(format!(
                    "{port}: `{text}` appears, but not after the previous expected line"
                ));
            }
            None => failures.push(format!("{port}: expected line `{text}` never appeared")),
        }
    }
    for text in &expect.present {
        if !lines.iter().any(|l| text.matches(l)) {
            failures.push(format!("{port}: expected line `{text}` never appeared"));
        }
    }
    for text in &expect.absent {
        if let Some(line) = lines.iter().find(|l| text.matches(l)) {
            failures.push(format!("{port}: forbidden `{text}` appeared: `{line}`"));
        }
    }
    if let Some(text) = &expect.last {
        let last = lines.iter().rev().find(|l| !l.trim().is_empty());
        if !last.is_some_and(|l| text.matches(l)) {
            failures.push(format!(
                "{port}: last line should match `{text}`, but it is `{}`",
                last.unwrap_or(&"")
            ));
        }
    }
    if let Some(text) = &expect.same {
        let words: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.find(text.as_str()).map(|at| &l[at + text.len()..]))
            .map(|rest| rest.split_whitespace().next().unwrap_or(""))
            .skip(expect.same_skip)
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
        let n = lines.iter().filter(|l| count.text.matches(l)).count();
        if count.min.is_some_and(|min| n < min) || count.max.is_some_and(|max| n > max) {
            let min = count.min.map_or("0".to_owned(), |m| m.to_string());
            let max = count.max.map_or("any".to_owned(), |m| m.to_string());
            failures.push(format!(
                "{port}: `{}` on {}, expected {min}..{max}",
                count.text,
                crate::util::count(n, "line", "lines")
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
        assert_eq!(d.nic, crate::bochs::Nic::None);
        assert_eq!(d.com1.count.len(), 1);
        assert_eq!(d.com2, PortExpect::default());
    }

    #[test]
    fn send_entries_become_input_in_order() {
        let d = parse(
            Path::new("t.toml"),
            "policy = \"x.xml\"\n\
             [[send]]\nafter = \"prompt\"\ntext = \"ls\\n\"\n\
             [[send]]\nafter = \"re:^done$\"\ntext = \"exit\\n\"\nport = \"com1\"\n",
        )
        .unwrap();
        let input = d.input();
        assert!(input.any());
        assert_eq!(input.stdin_to, None);
        let [first, second] = input.sends.as_slice() else {
            panic!("two sends: {:?}", input.sends);
        };
        assert_eq!((first.port, first.bytes.as_slice()), (1, &b"ls\n"[..]));
        assert!(first.after.matches("a prompt here"));
        assert_eq!((second.port, second.bytes.as_slice()), (0, &b"exit\n"[..]));
        assert!(second.after.matches("done") && !second.after.matches("undone"));
        assert!(!def().input().any(), "no [[send]]: nothing typed");
        for bad in [
            "policy = \"x\"\n[[send]]\nafter = \"a\"\ntext = \"b\"\nport = \"com3\"\n",
            "policy = \"x\"\n[[send]]\nafter = \"a\"\n",
            "policy = \"x\"\n[[send]]\nafter = \"re:(\"\ntext = \"b\"\n",
            "policy = \"x\"\n[[send]]\nafter = \"a\"\ntext = \"b\"\nwhen = 1\n",
        ] {
            assert!(parse(Path::new("t.toml"), bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passing_output() {
        let out = "alive 0\r\nchecksum=0x1 a\ngot 0\ngot 1\nalive 1\nchecksum=0x1 b\ndone\n\n";
        assert_eq!(check(&def(), out, ""), Vec::<String>::new());
    }

    #[test]
    fn same_skip_leaves_out_the_first_lines() {
        let mut expect = PortExpect {
            same: Some("offset ".to_owned()),
            ..PortExpect::default()
        };
        let out = "offset 9\noffset 7\noffset 5\noffset 5\n";
        assert_eq!(check_port("com1", &expect, out).len(), 1);
        expect.same_skip = 2;
        assert!(check_port("com1", &expect, out).is_empty());
        expect.same_skip = 1;
        let f = check_port("com1", &expect, out);
        assert!(
            f.iter()
                .any(|m| m.contains("followed by `7` and later by `5`")),
            "{f:?}"
        );
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
                .any(|m| m.contains("last line should match `done`")),
            "{f:?}"
        );
        // Count.
        let f = fails("alive 0\ngot 0\ngot 1\ngot 2\nalive 1\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("`got` on 3 lines, expected 2..2")),
            "{f:?}"
        );
        let f = fails("alive 0\ngot 1\nalive 1\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("`got` on 1 line, expected 2..2")),
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

    fn pattern(written: &str) -> Pattern {
        Pattern::parse(written).unwrap()
    }

    #[test]
    fn plain_text_is_a_substring() {
        let p = pattern("value 1");
        assert!(p.matches("value 1"));
        assert!(p.matches("got value 1 here"));
        // The reason the other forms exist.
        assert!(p.matches("value 10"));
        assert!(!p.matches("value 2"));
        assert_eq!(p.to_string(), "value 1");
    }

    #[test]
    fn line_matches_the_whole_line_only() {
        let p = pattern("line:value 1");
        assert!(p.matches("value 1"));
        assert!(!p.matches("value 10"));
        assert!(!p.matches("a value 1"));
        assert!(!p.matches("value 1 "));
        assert!(pattern("line:").matches(""));
        assert!(!pattern("line:").matches(" "));
        assert_eq!(p.to_string(), "line:value 1");
    }

    #[test]
    fn word_needs_a_boundary_on_both_sides() {
        let p = pattern("word:value 1");
        assert!(p.matches("value 1"));
        assert!(p.matches("got value 1, then more"));
        assert!(p.matches("(value 1)"));
        assert!(!p.matches("value 10"));
        assert!(!p.matches("xvalue 1"));
        assert!(!p.matches("value 1_b"));
        // A later occurrence can match when the first one does not.
        assert!(p.matches("value 10 then value 1"));
        // Non-ASCII letters are word characters too.
        assert!(!p.matches("value 1é"));
        let quoted = pattern("word:got \"msg 3 from producer\"");
        assert!(quoted.matches("console: got \"msg 3 from producer\""));
        assert!(Pattern::parse("word:").is_err());
    }

    #[test]
    fn regex_is_searched_in_the_line() {
        let p = pattern("re:^value [0-9]$");
        assert!(p.matches("value 1"));
        assert!(!p.matches("value 10"));
        assert!(!p.matches(" value 1"));
        let unanchored = pattern(r"re:checksum=0x[0-9a-f]+\b");
        assert!(unanchored.matches("victim: data ok checksum=0x1f2e"));
        assert!(!unanchored.matches("victim: data ok checksum=0xZZ"));
        let err = Pattern::parse("re:value (1").unwrap_err();
        assert!(err.contains("bad regex `value (1`"), "{err}");
    }

    #[test]
    fn prefixed_patterns_work_in_every_rule() {
        let d = parse(
            Path::new("p.toml"),
            r#"
policy = "x.xml"
[com1]
ordered = ["line:value 1", "re:^done$"]
present = ["word:value 1"]
absent = ["line:value 10"]
last = "line:done"
[[com1.count]]
text = 're:^value \d+$'
min = 2
max = 2
"#,
        )
        .unwrap();
        let fails = |out: &str| check_port("com1", &d.com1, out);
        assert!(fails("value 1\nvalue 2\ndone\n").is_empty());
        let f = fails("value 10\nvalue 2\ndone\n");
        assert!(
            f.iter()
                .any(|m| m.contains("expected line `line:value 1` never appeared")),
            "{f:?}"
        );
        assert!(
            f.iter().any(|m| m.contains("forbidden `line:value 10`")),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|m| m.contains("`word:value 1` never appeared")),
            "{f:?}"
        );
        let f = fails("value 1\nvalue 2\ndone!\n");
        assert!(
            f.iter()
                .any(|m| m.contains("last line should match `line:done`, but it is `done!`")),
            "{f:?}"
        );
        let f = fails("value 1\nvalue 2\nvalue 3\ndone\n");
        assert!(
            f.iter().any(|m| m.contains("on 3 lines, expected 2..2")),
            "{f:?}"
        );
    }

    #[test]
    fn bad_regex_is_a_located_error() {
        let err = parse(
            Path::new("r.toml"),
            "policy = \"a.xml\"\n[com2]\npresent = [\"ok\", \"re:a(b\"]\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("r.toml:3:"), "{}", err.0);
        assert!(err.0.contains("bad regex `a(b`"), "{}", err.0);
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
        let nic = parse(Path::new("e.toml"), "policy = \"a.xml\"\nnic = \"e1000\"\n");
        assert_eq!(nic.unwrap().nic, crate::bochs::Nic::E1000);
        let err = parse(
            Path::new("f.toml"),
            "policy = \"a.xml\"\nnic = \"rtl8139\"\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("f.toml:2:7: "), "{}", err.0);
        let err = parse(
            Path::new("q.toml"),
            "policy = \"a.xml\"\nnic = \"e1000\"\nemulator = \"qemu-q35-vtd\"\n",
        )
        .unwrap_err();
        assert!(err.0.starts_with("q.toml: `nic` plugs"), "{}", err.0);
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
