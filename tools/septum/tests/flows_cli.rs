//! `septum flows` end to end on systems/demo.xml: the text matrix, the
//! JSON edges, the DOT picture and its SVG rendering (skipped with a note
//! where Graphviz's `dot` is not installed); and a denied flow's exit
//! status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `septum flows ARGS` from the repository root.
fn flows(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septum"))
        .arg("flows")
        .args(args)
        .current_dir(repo())
        .output()
        .expect("septum runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn the_demo_as_a_text_matrix() {
    let out = flows(&["systems/demo.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "flows of demo (2 subjects, 6 flows): the row's subject can pass information to the \
         column's\n\
         \x20         producer  console\n\
         producer  -         CFc\n\
         console   KFc       -\n\
         \n\
         kinds: C channel, M shared-memory, E event, K kernel-action, F fault-stop, D device, \
         g same-group, p same-partition, c same-cpu (lower case: covert, left by the schedule)\n\
         \n\
         producer -> console: channel: channel \"messages\" (systems/demo.xml:32:9)\n\
         producer -> console: fault-stop: a fault stops the system (onFault=\"stopSystem\") \
         (systems/demo.xml:23:5)\n\
         producer -> console: same-cpu: CPU 0 (systems/demo.xml:23:5)\n\
         console -> producer: kernel-action: kernel action poweroff (event \
         \"console_poweroff\") (systems/demo.xml:44:13)\n\
         console -> producer: fault-stop: a fault stops the system (onFault=\"stopSystem\") \
         (systems/demo.xml:36:5)\n\
         console -> producer: same-cpu: CPU 0 (systems/demo.xml:36:5)\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn the_demo_as_json_has_every_edge_located() {
    let out = flows(&["--format", "json", "systems/demo.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(json["policy"], "demo");
    assert_eq!(json["subjects"], serde_json::json!(["producer", "console"]));
    let edges = json["flows"].as_array().expect("flows");
    assert_eq!(edges.len(), 6);
    let channel = &edges[0];
    assert_eq!(channel["from"], "producer");
    assert_eq!(channel["to"], "console");
    assert_eq!(channel["kind"], "channel");
    assert_eq!(channel["covert"], false);
    assert_eq!(channel["detail"], "channel \"messages\"");
    assert_eq!(
        channel["at"],
        serde_json::json!({"file": "systems/demo.xml", "line": 32, "column": 9})
    );
    assert_eq!(
        channel["to_at"],
        serde_json::json!({"file": "systems/demo.xml", "line": 49, "column": 9})
    );
    let kinds: Vec<&str> = edges.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "channel",
            "fault-stop",
            "same-cpu",
            "kernel-action",
            "fault-stop",
            "same-cpu"
        ]
    );
}

#[test]
fn the_demo_as_dot() {
    let out = flows(&["--format", "dot", "systems/demo.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let expected = std::fs::read_to_string(repo().join("docs/flows-demo.dot")).expect("dot");
    assert_eq!(text(&out.stdout), expected, "docs/flows-demo.dot is stale");
    let manual = std::fs::read_to_string(repo().join("docs/flows.md")).expect("docs/flows.md");
    assert!(
        manual.contains(&format!("```dot\n{expected}```")),
        "docs/flows.md does not show the demo's DOT picture as the command prints it"
    );
    let matrix = flows(&["systems/demo.xml"]);
    assert!(
        manual.contains(&format!("```text\n{}```", text(&matrix.stdout))),
        "docs/flows.md does not show the demo's matrix as the command prints it"
    );
}

/// The node and edge titles and the label texts of a Graphviz SVG, sorted:
/// what the picture says, without the coordinates and the version comment
/// that differ between Graphviz releases.
fn svg_words(svg: &str) -> Vec<String> {
    let mut words = Vec::new();
    for (open, close) in [("<title>", "</title>"), ("<text", "</text>")] {
        let mut rest = svg;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len()..];
            let body = after.find('>').map_or(after, |gt| {
                if open == "<text" {
                    &after[gt + 1..]
                } else {
                    after
                }
            });
            let end = body.find(close).unwrap_or(body.len());
            words.push(body[..end].to_owned());
            rest = &body[end..];
        }
    }
    words.sort();
    words
}

#[test]
fn the_demo_as_svg() {
    let manual = std::fs::read_to_string(repo().join("docs/flows.md")).expect("docs/flows.md");
    assert!(
        manual.contains("](flows-demo.svg)"),
        "docs/flows.md does not show docs/flows-demo.svg"
    );
    let committed = std::fs::read_to_string(repo().join("docs/flows-demo.svg")).expect("svg");
    if Command::new("dot").arg("-V").output().is_err() {
        eprintln!(
            "note: Graphviz's `dot` is not on PATH; skipping the --format svg rendering test"
        );
        return;
    }
    let out = flows(&["--format", "svg", "systems/demo.xml"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let svg = text(&out.stdout);
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    let words = svg_words(&svg);
    for word in [
        "flows of demo",
        "producer",
        "console",
        "producer&#45;&gt;console",
        "console&#45;&gt;producer",
        "channel: channel &quot;messages&quot;",
        "same&#45;cpu: CPU 0",
    ] {
        assert!(words.iter().any(|w| w == word), "{word:?} not in {words:?}");
    }
    assert_eq!(
        svg_words(&committed),
        words,
        "docs/flows-demo.svg is stale: septum flows --format svg systems/demo.xml > \
         docs/flows-demo.svg"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn svg_without_dot_names_the_missing_program() {
    let empty = std::env::temp_dir().join(format!("septum-flows-no-dot-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_septum"))
        .args(["flows", "--format", "svg", "systems/demo.xml"])
        .env("PATH", &empty)
        .current_dir(repo())
        .output()
        .expect("septum runs");
    let _ = std::fs::remove_dir_all(&empty);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "error: --format svg needs Graphviz's `dot` program, which is not on PATH; install \
         Graphviz (Debian: graphviz) or use --format dot\n"
    );
}

#[test]
fn a_denied_flow_prints_the_flows_and_fails() {
    let out = flows(&["lib/policy/tests/negative/flows-denied.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("flows of flows-denied (3 subjects, "));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "error[flows-denied]: the policy lets information flow from \"a\" to \"c\", which \
             this <deny> forbids: a -> b (channel \"ab\"), then b -> c (channel \"bc\")"
        ),
        "{err}"
    );
    assert!(err.contains("hop 2: b -> c: channel \"bc\""), "{err}");

    // `septum compose` validates first, so it refuses the policy too.
    let out_dir = std::env::temp_dir().join(format!("septum-flows-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_septum"))
        .args([
            "compose",
            "lib/policy/tests/negative/flows-denied.xml",
            "--binaries",
        ])
        .arg(&out_dir)
        .arg("--out")
        .arg(&out_dir)
        .current_dir(repo())
        .output()
        .expect("septum runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("error[flows-denied]"));
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn a_policy_that_does_not_load_gives_no_flows() {
    let out = flows(&["lib/policy/tests/negative/parse-invalid-enum.xml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(text(&out.stderr).contains("loading failed, so no flows were derived"));
}

/// 1,000 subjects, each alone on a CPU of its own and stopping alone on a
/// fault, so no flow at all: the text is just the 1,000 x 1,000 matrix of
/// dots (3 MB). Computing each column's width once per cell made it cubic
/// (10^9 steps, minutes in a debug build); now it takes well under the
/// bound. The policy breaks kernel limits; flows are printed all the same.
#[test]
fn a_wide_matrix_is_printed_in_bounded_time() {
    let n = 1000;
    let dir = std::env::temp_dir().join(format!("septum-flows-wide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let hardware = std::fs::read_to_string(repo().join("hardware/bochs-tigerlake.xml"))
        .expect("hardware")
        .replacen("cpuCores=\"1\"", &format!("cpuCores=\"{n}\""), 1);
    std::fs::write(dir.join("hw.xml"), hardware).expect("write");
    let mut subjects = String::new();
    let mut partitions = String::new();
    let mut cpus = String::new();
    for i in 0..n {
        subjects.push_str(&format!(
            "<subject name=\"s{i}\" profile=\"native\" binary=\"s\" cpu=\"{i}\" \
             onFault=\"stopSubject\"/>\n"
        ));
        partitions.push_str(&format!(
            "<partition name=\"p{i}\"><group><subject name=\"s{i}\"/></group></partition>\n"
        ));
        cpus.push_str(&format!(
            "<cpu id=\"{i}\"><minorFrame partition=\"p{i}\" ticks=\"1\"/></cpu>\n"
        ));
    }
    let policy = format!(
        "<system name=\"wide\"><hardware href=\"hw.xml\"/><kernel debugConsole=\"com2\"/>\
         <subjects>{subjects}</subjects><scheduling tickRate=\"1000\"><partitions>{partitions}\
         </partitions><majorFrame>{cpus}</majorFrame></scheduling></system>\n"
    );
    std::fs::write(dir.join("wide.xml"), policy).expect("write");
    let start = std::time::Instant::now();
    let out = flows(&[dir.join("wide.xml").to_str().expect("utf-8 path")]);
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("flows of wide (1000 subjects, 0 flows)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(stdout.lines().filter(|l| l.starts_with("s999 ")).count(), 1);
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "{elapsed:?} for a 1000-subject matrix"
    );
}
