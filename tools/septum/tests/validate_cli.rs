//! `septum validate` end to end: exit status, the success line, rendered
//! diagnostics and the JSON format, on the policy crate's fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn policy_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lib/policy/tests")
}

/// Runs `septum validate ARGS` from the policy tests directory, so paths in
/// the output are as short as the ones given.
fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septum"))
        .arg("validate")
        .args(args)
        .current_dir(policy_tests())
        .output()
        .expect("septum runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn a_valid_policy_prints_one_line_and_exits_zero() {
    let out = validate(&["fixtures/demo.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: fixtures/demo.xml is a valid policy (2 subjects, 2 channels, 3 events)\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn errors_are_located_with_source_line_caret_and_summary() {
    let out = validate(&["negative/parse-invalid-enum.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let err = text(&out.stderr);
    let expected_first = "negative/parse-invalid-enum.xml:7:45: error[invalid-enum]: `XX` is not \
                          a valid `caching`; expected one of: UC, WC, WT, WP, WB\n\
                          7 |     <memory name=\"a\" size=\"0x1000\" caching=\"XX\"/>\n\
                          \x20 |                                             ^^\n";
    assert!(err.starts_with(expected_first), "{err}");
    assert!(err.contains("negative/parse-invalid-enum.xml:10:27: error[invalid-enum]: `often`"));
    assert_eq!(err.lines().last(), Some("error: 2 errors, 0 warnings"));
}

#[test]
fn every_file_is_checked_and_any_error_fails_the_run() {
    let out = validate(&[
        "fixtures/demo.xml",
        "negative/parse-include-cycle.xml",
        "fixtures/demo.xml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "negative/parse-include-cycle/b.xml:2:18: error[include-cycle]: include cycle: \
             `a.xml` is already being included"
        ),
        "{err}"
    );
    assert_eq!(err.lines().last(), Some("error: 1 error, 0 warnings"));
}

#[test]
fn json_output_is_one_array_on_stdout() {
    let out = validate(&["--format", "json", "negative/parse-missing-attribute.xml"]);
    assert_eq!(out.status.code(), Some(1));
    let json = text(&out.stdout);
    assert!(
        json.starts_with('[') && json.trim_end().ends_with(']'),
        "{json}"
    );
    for needle in [
        "\"file\": \"negative/parse-missing-attribute.xml\"",
        "\"line\": 7",
        "\"column\": 5",
        "\"end_line\": 7",
        "\"end_column\": 12",
        "\"severity\": \"error\"",
        "\"rule\": \"missing-attribute\"",
        "\"message\": \"<memory> needs the attribute `size`\"",
        "\"help\": null",
        "\"labels\": []",
    ] {
        assert!(json.contains(needle), "missing {needle} in {json}");
    }
    assert_eq!(json.matches("\"rule\"").count(), 2);
    assert_eq!(
        text(&out.stderr).lines().last(),
        Some("error: 2 errors, 0 warnings")
    );
}

#[test]
fn json_output_for_a_valid_policy_is_an_empty_array() {
    let out = validate(&["--format", "json", "fixtures/demo.xml"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "[]\n");
    assert!(text(&out.stderr).starts_with("ok: fixtures/demo.xml is a valid policy"));
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let out = validate(&["no/such/policy.xml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "no/such/policy.xml:1:1: error[file-unreadable]: cannot read `no/such/policy.xml`: \
             file not found\n"
        ),
        "{err}"
    );
}

#[test]
fn warnings_alone_are_printed_and_the_policy_is_still_valid() {
    let out = validate(&["fixtures/warnings.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: fixtures/warnings.xml is a valid policy (2 subjects, 2 channels, 3 events)\n"
    );
    let err = text(&out.stderr);
    assert!(
        err.starts_with("fixtures/warnings.xml:13:19: warning["),
        "{err}"
    );
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn when_loading_fails_the_output_says_the_rules_were_not_run() {
    let out = validate(&["negative/parse-invalid-enum.xml"]);
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "note: negative/parse-invalid-enum.xml: loading stopped on the errors above, so the \
             validation rules were not run; fix them and validate again\n"
        ),
        "{err}"
    );
    // A rule violation: the rules ran, no such note.
    let out = validate(&["negative/names-region-duplicate.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out.stderr).contains("were not run"));
}

/// 20,000 errors on one line of about 1 MB: the text output shows the first
/// 50 with the line cut around each caret, then counts the rest; JSON has
/// every diagnostic loading reported.
#[test]
fn text_output_is_bounded_and_json_complete() {
    let dir = std::env::temp_dir().join(format!("septum-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("many.xml");
    let line = format!("<system>{}</system>", "<unknown-element/>".repeat(55_000));
    assert!(line.len() > 990_000);
    std::fs::write(&file, &line).expect("written");
    let path = file.to_str().expect("utf-8 path");

    let out = validate(&[path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.len() < 50 * 1024, "{} bytes of text", err.len());
    assert_eq!(err.matches(": error[").count(), 50);
    assert!(err.contains("\n1 | …"), "{err}");
    assert!(err.lines().all(|l| l.chars().count() < 300), "{err}");
    assert!(
        err.contains(
            "... and 9954 more diagnostics (9954 errors, 0 warnings) not shown; use --format \
             json to see all\n"
        ),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
    assert_eq!(err.lines().last(), Some("error: 10004 errors, 0 warnings"));

    let out = validate(&["--format", "json", path]);
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(json.as_array().map(Vec::len), Some(10_004));
    std::fs::remove_dir_all(&dir).expect("removed");
}

#[test]
fn a_hardware_description_is_checked_alone() {
    let out = validate(&["--hardware", "../../../hardware/bochs-tigerlake.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok: ../../../hardware/bochs-tigerlake.xml is a valid hardware description (1 CPU, 2 \
         memory blocks, 4 devices)\n"
    );

    // A machine mistake is found by the hardware rules, located in the file.
    let dir = std::env::temp_dir().join(format!("septum-hardware-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("hw.xml");
    let machine =
        std::fs::read_to_string(policy_tests().join("../../../hardware/bochs-tigerlake.xml"))
            .expect("hardware")
            .replace("speed=\"10000\"", "speed=\"0\"");
    std::fs::write(&file, machine).expect("written");
    let path = file.to_str().expect("utf-8 path");
    let out = validate(&["--hardware", path]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("{path}:20:34: error[hardware-speed-zero]: ")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).expect("removed");

    // A policy is not a hardware description.
    let out = validate(&["--hardware", "fixtures/demo.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(
            "error[invalid-root]: the root element of a hardware description must be \
             <hardware>, not <system>"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_hardware_description_without_cpu_elements_loads() {
    let dir = std::env::temp_dir().join(format!("septum-nocpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("old.xml");
    std::fs::write(
        &file,
        "<hardware><processor cpuCores=\"2\" speed=\"1000\" vmxTimerRate=\"0\"/>\n\
         <memory><memoryBlock name=\"ram\" physicalAddress=\"0x10_0000\" size=\"0x100_0000\" \
         allocatable=\"true\"/></memory><devices/></hardware>\n",
    )
    .expect("written");
    let path = file.to_str().expect("utf-8 path");
    let out = validate(&["--hardware", path]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "ok: {path} is a valid hardware description (2 CPUs without cpu elements, 1 memory \
             block, 0 devices)\n"
        )
    );
    std::fs::remove_dir_all(&dir).expect("removed");
}
