//! schema/septum.xsd against xmllint: every valid policy, hardware file and
//! fixture in the repository passes it, and structural errors fail it.
//! Skipped with a note when xmllint is not installed (CI installs
//! libxml2-utils).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn xmllint_available() -> bool {
    Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs xmllint on `file`; `Ok` if it validates, `Err(stderr)` otherwise.
fn xmllint(file: &Path) -> Result<(), String> {
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(repo().join("schema/septum.xsd"))
        .arg(file)
        .output()
        .expect("xmllint runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn xml_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() && recursive {
            xml_files(&path, recursive, out);
        } else if path.extension().is_some_and(|e| e == "xml") {
            out.push(path);
        }
    }
}

#[test]
fn every_valid_file_in_the_repository_passes_the_schema() {
    if !xmllint_available() {
        println!("note: xmllint not found; skipping the schema test");
        return;
    }
    let mut files = Vec::new();
    xml_files(&repo().join("hardware"), false, &mut files);
    xml_files(&repo().join("systems"), true, &mut files);
    xml_files(&repo().join("lib/policy/tests/fixtures"), true, &mut files);
    xml_files(&repo().join("lib/policy/tests/valid"), true, &mut files);
    let shared = std::env::var_os("SEPTUM_SHARED_DATA")
        .map_or_else(|| repo().join("../shared/data"), PathBuf::from)
        .join("hardware");
    if shared.is_dir() {
        xml_files(&shared, false, &mut files);
    } else {
        println!(
            "note: {} is absent; checking repository files only",
            shared.display()
        );
    }
    assert!(
        files.len() >= 4,
        "expected policies and hardware files, found {files:?}"
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| xmllint(f).err().map(|e| format!("{}:\n{e}", f.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// (Elements that may appear once but in any order, like <kernel>, cannot be
/// limited to one in XSD 1.0 next to repeatable siblings; the loader's
/// `duplicate-element` check covers them.)
#[test]
fn structural_errors_fail_the_schema() {
    if !xmllint_available() {
        println!("note: xmllint not found; skipping the schema test");
        return;
    }
    let negative = repo().join("lib/policy/tests/negative");
    for (name, needle) in [
        ("parse-unknown-element.xml", "region"),
        ("parse-unknown-attribute.xml", "colour"),
        ("parse-missing-attribute.xml", "size"),
        ("parse-invalid-enum.xml", "XX"),
        ("parse-invalid-number.xml", "0x10zz"),
        ("parse-invalid-name.xml", "9lives"),
        ("parse-invalid-boolean.xml", "yes"),
    ] {
        let file = negative.join(name);
        let error = xmllint(&file).expect_err(name);
        assert!(error.contains(needle), "{name}: {error}");
    }
}
