//! Golden negative tests: one policy per check, with the exact diagnostics
//! it must produce.
//!
//! Every `tests/negative/<id>.xml` starts with one comment line per
//! expected diagnostic:
//!
//! ```text
//! <!-- expect: <file>:<line>:<col>: error[<id>]: <exact message> -->
//! ```
//!
//! where `<file>` is relative to `tests/negative/`. The harness loads each
//! file with [`septum_policy::check`], renders the first line of every
//! diagnostic the way the tool prints it, and requires the two sets to be
//! equal: nothing missing, nothing extra. A file named after a validation
//! rule must trigger that rule alone, so each rule is shown to fire on its
//! own input and to stay quiet on everyone else's. Files for the loader's
//! checks are named `parse-<id>.xml`.
//!
//! Further tests tie the files to the rule tables (every check has a file,
//! every file a check) and run every valid policy of the repository, which
//! must produce no error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use septum_policy::diag::headline;
use septum_policy::{Loaded, MemoryFiles, Severity, parse_rules, rules};

const EXPECT: &str = "<!-- expect: ";

/// Loader checks no file in the repository can trigger (an unreadable file,
/// a file over 16 MiB, 10,000 diagnostics); the loader's own tests cover
/// them in memory.
const NOT_FILE_TESTABLE: &[&str] = &["file-unreadable", "input-too-large", "errors-too-many"];

fn negative_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/negative")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared collection of real hardware descriptions: `../shared/data`
/// beside the repository, or the folder `SEPTUM_SHARED_DATA` names (a git
/// worktree lives elsewhere than its main checkout).
fn shared_hardware() -> PathBuf {
    std::env::var_os("SEPTUM_SHARED_DATA")
        .map_or_else(|| repo_root().join("../shared/data"), PathBuf::from)
        .join("hardware")
}

/// The `*.xml` files directly in `dir`, sorted.
fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "xml"))
        .collect();
    files.sort();
    files
}

/// The expectations at the top of a negative file.
fn expectations(text: &str) -> Vec<String> {
    text.lines()
        .map_while(|line| {
            line.strip_prefix(EXPECT)
                .and_then(|l| l.strip_suffix(" -->"))
        })
        .map(str::to_owned)
        .collect()
}

/// Headlines of every diagnostic, with paths relative to `base`.
fn rendered(loaded: &Loaded, base: &Path) -> Vec<String> {
    let prefix = format!("{}/", base.display());
    let mut lines: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            let line = headline(d, &loaded.sources);
            line.strip_prefix(&prefix)
                .map(str::to_owned)
                .unwrap_or(line)
        })
        .collect();
    lines.sort();
    lines
}

/// The check id a negative file is named after, and whether it is a loader
/// check.
fn id_of(path: &Path) -> (String, bool) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    match stem.strip_prefix("parse-") {
        Some(id) => (id.to_owned(), true),
        None => (stem.to_owned(), false),
    }
}

/// The rule id inside `error[...]` / `warning[...]` of a headline.
fn rule_in(line: &str) -> Option<&str> {
    let open = line
        .find("error[")
        .map(|i| i + 6)
        .or_else(|| line.find("warning[").map(|i| i + 8))?;
    let close = line.get(open..)?.find(']')?;
    line.get(open..open + close)
}

#[test]
fn every_negative_file_gives_exactly_its_diagnostics() {
    let dir = negative_dir();
    let files = xml_files(&dir);
    assert!(!files.is_empty(), "no negative tests in {}", dir.display());
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut expected = expectations(&text);
        expected.sort();
        if expected.is_empty() {
            failures.push(format!("{name}: no `{EXPECT}...` lines at the top"));
            continue;
        }
        let (id, is_parse) = id_of(path);
        let foreign: Vec<&String> = expected
            .iter()
            .filter(|l| rule_in(l) != Some(id.as_str()))
            .collect();
        if !is_parse && !foreign.is_empty() {
            failures.push(format!(
                "{name}: expects diagnostics of other checks: {foreign:?}"
            ));
        }
        if is_parse && foreign.len() == expected.len() {
            failures.push(format!("{name}: expects no diagnostic of `{id}`"));
        }
        let actual = rendered(&septum_policy::check(path), &dir);
        if actual != expected {
            let missing: Vec<_> = expected.iter().filter(|l| !actual.contains(l)).collect();
            let extra: Vec<_> = actual.iter().filter(|l| !expected.contains(l)).collect();
            failures.push(format!(
                "{name}:\n  missing: {missing:#?}\n  unexpected: {extra:#?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} negative files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_check_has_a_negative_file_and_every_file_a_check() {
    let files: BTreeSet<String> = xml_files(&negative_dir())
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .collect();
    let mut wanted: BTreeSet<String> = rules::ALL.iter().map(|r| format!("{}.xml", r.id)).collect();
    wanted.extend(
        parse_rules::PARSE_RULES
            .iter()
            .filter(|r| !NOT_FILE_TESTABLE.contains(&r.id))
            .map(|r| format!("parse-{}.xml", r.id)),
    );
    let missing: Vec<_> = wanted.difference(&files).collect();
    let orphans: Vec<_> = files.difference(&wanted).collect();
    assert!(
        missing.is_empty(),
        "checks without a negative file: {missing:?}"
    );
    assert!(
        orphans.is_empty(),
        "negative files without a check: {orphans:?}"
    );
}

/// A rule that reports warnings says so in its doc (the manual's list), and
/// only such rules do; the negative files show which rules warn.
#[test]
fn warning_rules_are_documented_as_warnings() {
    let dir = negative_dir();
    for rule in rules::ALL {
        let text = std::fs::read_to_string(dir.join(format!("{}.xml", rule.id)));
        let warns = text
            .unwrap_or_default()
            .contains(&format!("warning[{}]", rule.id));
        assert_eq!(
            rule.doc.starts_with("Warning: "),
            warns,
            "rule {} warns: {warns}, but its doc says {:?}",
            rule.id,
            rule.doc
        );
    }
}

#[test]
fn rule_ids_are_unique_kebab_case_and_named_after_their_category() {
    let mut seen = BTreeSet::new();
    for rule in rules::ALL {
        assert!(seen.insert(rule.id), "rule id {} is used twice", rule.id);
        assert!(
            rule.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "rule id {} is not kebab-case",
            rule.id
        );
        let prefix = format!("{}-", rule.category.title().to_ascii_lowercase());
        assert!(
            rule.id.starts_with(&prefix),
            "rule {} is not named `{prefix}...`",
            rule.id
        );
        assert!(
            rule.doc.ends_with('.') && !rule.doc.contains("  "),
            "doc of rule {} is not one clean sentence: {:?}",
            rule.id,
            rule.doc
        );
    }
    for parse in parse_rules::PARSE_RULES {
        assert!(
            !seen.contains(parse.id),
            "{} is both a loader check and a rule",
            parse.id
        );
    }
    assert!(rules::ALL.len() >= 120, "only {} rules", rules::ALL.len());
}

/// Valid policies: the repository's systems and this crate's fixtures.
fn valid_policies() -> Vec<PathBuf> {
    let mut files = xml_files(&repo_root().join("systems"));
    files.extend(xml_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid"),
    ));
    files
}

#[test]
fn every_valid_policy_passes_every_rule() {
    let files = valid_policies();
    let mut failures = Vec::new();
    for path in &files {
        let loaded = septum_policy::check(path);
        if loaded.diagnostics.has_errors() {
            let lines = rendered(&loaded, Path::new(""));
            failures.push(format!("{}:\n  {}", path.display(), lines.join("\n  ")));
        }
        let is_fixture = path.parent().is_some_and(|p| p.ends_with("tests/valid"));
        if is_fixture && loaded.diagnostics.warning_count() > 0 {
            let lines = rendered(&loaded, Path::new(""));
            failures.push(format!(
                "{} has warnings:\n  {}",
                path.display(),
                lines.join("\n  ")
            ));
        }
    }
    assert!(
        files.len() >= 2,
        "expected the valid fixtures in tests/valid"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One subject on CPU 0 of the machine in `hw.xml`.
const MINIMAL_SYSTEM: &str = r#"<system>
  <hardware href="hw.xml"/>
  <kernel debugConsole="CONSOLE"/>
  <subjects><subject name="a" profile="native" binary="a"/></subjects>
  <scheduling tickRate="1000">
    <partitions><partition name="p"><group><subject name="a"/></group></partition></partitions>
    <majorFrame><cpu id="0"><minorFrame partition="p" ticks="10"/></cpu></majorFrame>
  </scheduling>
</system>
"#;

/// The machines of the shared hardware collection (real hardware, generated
/// by the anchor's tool) must pass every hardware and device rule when a
/// minimal system runs on them. Skipped with a note when the collection is
/// not present.
#[test]
fn real_hardware_descriptions_pass_the_rules() {
    let dir = shared_hardware();
    let machines = xml_files(&dir);
    if machines.is_empty() {
        println!("note: {} not present; skipping", dir.display());
        return;
    }
    let mut failures = Vec::new();
    for machine in &machines {
        let Ok(hardware) = std::fs::read_to_string(machine) else {
            continue;
        };
        let system = |console: &str| MINIMAL_SYSTEM.replace("CONSOLE", console);
        let mut files = MemoryFiles::new();
        files.insert("hw.xml", hardware);
        // The debug console: the first device whose first I/O port range
        // is a UART's eight registers.
        let model = septum_policy::load_str("system.xml", &system("none"), &files);
        let console = model
            .policy
            .iter()
            .flat_map(|p| &p.hardware.devices)
            .find(|d| {
                d.io_ports
                    .first()
                    .is_some_and(|r| r.end.value.wrapping_sub(r.start.value) == 7)
            })
            .map_or("none".to_owned(), |d| d.name.value.clone());
        let loaded = septum_policy::check_str("system.xml", &system(&console), &files);
        let problems: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error || d.rule.starts_with("devices-"))
            .map(|d| headline(d, &loaded.sources))
            .collect();
        if !problems.is_empty() {
            failures.push(format!(
                "{}:\n  {}",
                machine.display(),
                problems.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One run reports every violation: three independent mistakes in an
/// otherwise valid policy give exactly three diagnostics, from three rules.
#[test]
fn all_violations_are_reported_in_one_run() {
    let valid = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/valid");
    let read = |name: &str| std::fs::read_to_string(valid.join(name)).unwrap_or_default();
    let text = read("full.xml")
        .replace("tickRate=\"1000\"", "tickRate=\"0\"")
        .replace(
            "name=\"c_ram\" size=\"0x4000\"",
            "name=\"c_ram\" size=\"0x4800\"",
        )
        .replace("vector=\"48\"", "vector=\"254\"");
    let mut files = MemoryFiles::new();
    files.insert("hardware/two-cpus.xml", read("hardware/two-cpus.xml"));
    let loaded = septum_policy::check_str("full.xml", &text, &files);
    let rules: Vec<&str> = loaded.diagnostics.iter().map(|d| d.rule).collect();
    assert_eq!(
        rules,
        [
            "memory-size-unaligned",
            "events-vector-reserved",
            "scheduling-tick-rate-zero"
        ],
        "{:#?}",
        rendered(&loaded, Path::new(""))
    );
}

/// `allowWritableExecutable` lets a subject map its own memory writable and
/// executable, and nothing more: written `false` it is no opt-in, and
/// another subject writing the memory the opted-in subject executes is
/// still an error.
#[test]
fn writable_executable_opt_in_covers_only_the_subject_itself() {
    let hardware = std::fs::read_to_string(negative_dir().join("common/hardware.xml"))
        .expect("common/hardware.xml");
    let system = |allow: &str, other: &str| {
        format!(
            r#"<system>
  <hardware href="hw.xml"/>
  <kernel debugConsole="com2"/>
  <memory><memory name="jit" size="0x1000" caching="WB"/></memory>
  <subjects>
    <subject name="a" profile="native" binary="a"{allow}>
      <memory><map logical="code" physical="jit" writable="true" executable="true"/></memory>
    </subject>
    <subject name="b" profile="native" binary="b">{other}</subject>
  </subjects>
  <scheduling tickRate="1000">
    <partitions>
      <partition name="pa"><group><subject name="a"/></group></partition>
      <partition name="pb"><group><subject name="b"/></group></partition>
    </partitions>
    <majorFrame>
      <cpu id="0"><minorFrame partition="pa" ticks="10"/><minorFrame partition="pb" ticks="10"/></cpu>
    </majorFrame>
  </scheduling>
</system>
"#
        )
    };
    let mut files = MemoryFiles::new();
    files.insert("hw.xml", hardware);
    let rules_of = |text: &str| -> Vec<String> {
        let loaded = septum_policy::check_str("system.xml", text, &files);
        let mut lines = rendered(&loaded, Path::new(""));
        lines.sort();
        lines
    };
    let opt_in = r#" allowWritableExecutable="true""#;
    let writer = r#"<memory><map logical="w" physical="jit" writable="true"/></memory>"#;

    assert_eq!(rules_of(&system(opt_in, "")), Vec::<String>::new());
    let rejected = "system.xml:7:78: error[memory-map-writable-executable]: \
                    mapping \"code\" of subject \"a\" is writable and executable";
    assert_eq!(
        rules_of(&system(r#" allowWritableExecutable="false""#, "")),
        [rejected]
    );
    let both = rules_of(&system(opt_in, writer));
    assert!(
        both.iter()
            .any(|l| l.contains("error[memory-executable-writable-elsewhere]")),
        "{both:#?}"
    );
    assert!(
        !both
            .iter()
            .any(|l| l.contains("memory-map-writable-executable")),
        "{both:#?}"
    );
}

/// A subject reading a channel with an event twice is one mistake
/// (channels-read-twice), not a channel with two readers as well.
#[test]
fn reading_an_event_channel_twice_is_not_a_second_reader() {
    let dir = negative_dir();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("negative file");
    let mut files = MemoryFiles::new();
    files.insert("common/hardware.xml", read("common/hardware.xml"));
    for mode in ["async", "ipi", "switch"] {
        let text = read("channels-read-twice.xml").replace(
            r#"<channel name="data" size="0x1000"/>"#,
            &format!(r#"<channel name="data" size="0x1000" hasEvent="{mode}"/>"#),
        );
        let loaded = septum_policy::check_str("channels-read-twice.xml", &text, &files);
        let rules: BTreeSet<&str> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.rule.contains("readers"))
            .map(|d| d.rule)
            .collect();
        assert!(rules.is_empty(), "{mode}: {rules:?}");
        assert!(
            loaded
                .diagnostics
                .iter()
                .any(|d| d.rule == "channels-read-twice"),
            "{mode}: {:#?}",
            rendered(&loaded, Path::new(""))
        );
    }
}

/// Every machine description of the repository and of the shared hardware
/// collection passes `septum validate --hardware` on its own.
#[test]
fn real_hardware_descriptions_pass_alone() {
    let mut machines = xml_files(&repo_root().join("hardware"));
    machines.extend(xml_files(&shared_hardware()));
    assert!(!machines.is_empty());
    let mut failures = Vec::new();
    for machine in &machines {
        let loaded = septum_policy::check_hardware(machine);
        if loaded.diagnostics.has_errors() || !loaded.rules_run {
            let lines = rendered(&loaded, Path::new(""));
            failures.push(format!("{}:\n  {}", machine.display(), lines.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
