//! Every loader check on its negative file: `tests/negative/parse-<id>.xml`
//! starts with one `<!-- expect: path:line:col: error[id]: message -->` line
//! per diagnostic, and loading the file must report exactly that set. (The
//! shared negative harness runs these too; this test keeps the loader's
//! files honest on their own and checks that every loader id has a file.)
//!
//! `UPDATE_EXPECT=1` rewrites the expect lines from the actual output; run
//! it twice when the number of lines changes, and review the diff.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use septum_policy::{check, diag, parse_rules::PARSE_RULES};

/// Ids that cannot be shown by a file in the negative folder: a missing or
/// over-16-MiB root file, or 10,000 diagnostics. They are covered by unit
/// tests in `robustness.rs`.
const NOT_FILE_TESTABLE: &[&str] = &["file-unreadable", "input-too-large", "errors-too-many"];

fn negative_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/negative")
}

fn expected(text: &str) -> Vec<String> {
    text.lines()
        .map_while(|l| {
            l.strip_prefix("<!-- expect: ")
                .and_then(|l| l.strip_suffix(" -->"))
        })
        .map(str::to_owned)
        .collect()
}

fn actual(path: &Path) -> Vec<String> {
    let loaded = check(path);
    let prefix = format!("{}/", negative_dir().display());
    loaded
        .diagnostics
        .iter()
        .map(|d| diag::headline(d, &loaded.sources).replacen(&prefix, "", 1))
        .collect()
}

#[test]
fn every_parse_negative_file_reports_exactly_its_expectations() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(negative_dir())
        .expect("negative dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("parse-"))
        })
        .collect();
    files.sort();
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable");
        let want = expected(&text);
        let got = actual(path);
        if update && want != got {
            let body: String = text
                .lines()
                .skip(want.len())
                .map(|l| format!("{l}\n"))
                .collect();
            let head: String = got
                .iter()
                .map(|g| format!("<!-- expect: {g} -->\n"))
                .collect();
            std::fs::write(path, head + &body).expect("writable");
            continue;
        }
        let want_set: BTreeSet<_> = want.iter().collect();
        let got_set: BTreeSet<_> = got.iter().collect();
        if want.is_empty() || want_set != got_set {
            failures.push(format!(
                "{}:\n  want {want:#?}\n  got {got:#?}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    for rule in PARSE_RULES {
        if NOT_FILE_TESTABLE.contains(&rule.id) {
            continue;
        }
        let file = negative_dir().join(format!("parse-{}.xml", rule.id));
        assert!(
            file.is_file(),
            "loader check {} has no negative file",
            rule.id
        );
        let text = std::fs::read_to_string(&file).expect("readable");
        assert!(
            expected(&text)
                .iter()
                .any(|e| e.contains(&format!("error[{}]", rule.id))),
            "{} does not expect its own id",
            file.display()
        );
    }
}
