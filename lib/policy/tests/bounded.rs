//! Bounded work on any input: every adversarial shape of `benches/shapes.rs`
//! loads, validates and renders (JSON complete, text capped) within 2 s at
//! the full 16 MiB cap in a release build. A debug build is 10 to 30 times
//! slower, so there the shapes are 256 KiB: a quadratic step (one element
//! with 30,000 attributes, tens of thousands of errors each rescanning a
//! 256 KiB line) still takes far longer than 2 s at that size, so the bound
//! still catches it.
//! `cargo bench -p septum-policy` measures the same shapes at the cap.

#[path = "../benches/shapes.rs"]
mod shapes;

use std::path::Path;
use std::time::{Duration, Instant};

use septum_policy::diag::{render_json, render_text_capped};
use septum_policy::{Loaded, MAX_INPUT_BYTES, check_with};

/// Load and validate `shape` (its root as `shape.xml`, beside its files).
fn check_shape(shape: &shapes::Shape) -> Loaded {
    let mut files = shape.files.clone();
    files.insert("shape.xml", shape.root.as_str());
    check_with(Path::new("shape.xml"), &files)
}

/// The shape called `name`, at 64 KiB.
fn shape_named(name: &str) -> shapes::Shape {
    shapes::all(64 << 10)
        .into_iter()
        .find(|s| s.name == name)
        .expect("shape")
}

#[test]
fn every_shape_validates_and_renders_in_bounded_time() {
    let size = if cfg!(debug_assertions) {
        256 << 10
    } else {
        MAX_INPUT_BYTES as usize
    };
    let mut slow = Vec::new();
    for shape in shapes::all(size) {
        let start = Instant::now();
        let loaded = check_shape(&shape);
        let json = render_json(loaded.diagnostics.iter(), &loaded.sources);
        let text = render_text_capped(loaded.diagnostics.as_slice(), &loaded.sources, 50);
        let elapsed = start.elapsed();
        assert!(json.starts_with('['), "{}", shape.name);
        // 50 diagnostics with trimmed source lines: a few kilobytes each at most.
        assert!(
            text.len() < 50 * 4096,
            "{}: {} bytes of text",
            shape.name,
            text.len()
        );
        if elapsed > Duration::from_secs(2) {
            slow.push(format!(
                "{}: {:?} for {} bytes, {} diagnostics",
                shape.name,
                elapsed,
                shape.root.len(),
                loaded.diagnostics.len()
            ));
        }
    }
    assert!(slow.is_empty(), "too slow:\n{}", slow.join("\n"));
}

#[test]
fn the_valid_shape_is_valid_so_every_rule_runs() {
    let loaded = check_shape(&shape_named("valid-many-subjects"));
    let load_errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| {
            septum_policy::parse_rules::PARSE_RULES
                .iter()
                .any(|r| r.id == d.rule)
        })
        .map(|d| septum_policy::diag::headline(d, &loaded.sources))
        .collect();
    assert!(load_errors.is_empty(), "{load_errors:#?}");
}

#[test]
fn the_cpus_shape_loads_so_the_scheduling_rules_run() {
    let loaded = check_shape(&shape_named("cpus-one-partition"));
    assert!(
        loaded.rules_run,
        "loading failed: the rules never saw the CPUs"
    );
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.rule == "scheduling-partition-multi-cpu"),
        "the partition is on many CPUs"
    );
}

/// The CPU shapes at 1 MiB even in a debug build: a step quadratic in the
/// number of CPUs (one partition on 20,000 of them) takes 10 s or more there,
/// where the linear rules take well under the bound.
#[test]
fn the_cpu_shapes_stay_fast_at_one_mebibyte() {
    let mut slow = Vec::new();
    for shape in shapes::all(1 << 20)
        .into_iter()
        .filter(|s| s.name.contains("cpu"))
    {
        let start = Instant::now();
        let loaded = check_shape(&shape);
        let elapsed = start.elapsed();
        assert!(loaded.rules_run, "{}", shape.name);
        if elapsed > Duration::from_secs(4) {
            slow.push(format!("{}: {elapsed:?}", shape.name));
        }
    }
    assert!(slow.is_empty(), "too slow:\n{}", slow.join("\n"));
}

#[test]
fn the_overlap_shape_loads_so_the_overlap_rules_run() {
    let loaded = check_shape(&shape_named("everything-overlaps"));
    assert!(
        loaded.rules_run,
        "loading failed: the rules never saw the ranges"
    );
    for rule in [
        "devices-memory-overlap",
        "devices-ioport-overlap",
        "hardware-memory-block-overlap",
        "memory-physical-overlap",
        "memory-virtual-overlap",
    ] {
        assert!(
            loaded.diagnostics.iter().any(|d| d.rule == rule),
            "{rule} did not fire"
        );
    }
}
