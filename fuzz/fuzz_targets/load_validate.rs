//! Arbitrary bytes through the whole policy front end: load (parse,
//! includes, resolution, auto-assignment), validate, and both renderers.
//!
//! The input is split at NUL bytes into up to three files: the root policy,
//! `inc.xml` and `hw.xml` next to it, so includes and `<hardware href>` are
//! exercised too (seeds refer to those names); `hw.xml` is also checked
//! alone, as `septum validate --hardware` does. Beyond "no panic, no hang",
//! every diagnostic must point inside a file the loader read, and the text
//! rendering of each stays short (long lines are cut around the caret).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use septum_policy::diag::{render_json, render_text};
use septum_policy::{Loaded, MemoryFiles, check_hardware_with, check_with};

/// Every span valid, every rendering bounded.
fn check_located(loaded: &Loaded) {
    for diagnostic in loaded.diagnostics.iter() {
        assert!(loaded.sources.is_valid(diagnostic.span), "{diagnostic:?}");
        for label in &diagnostic.labels {
            assert!(loaded.sources.is_valid(label.span), "{diagnostic:?}");
        }
        let text = render_text(diagnostic, &loaded.sources);
        // Headline, two lines per location (60 characters either side of
        // an underline of at most 120) and the help: a few KiB at most.
        assert!(text.len() < 8192 * (2 + diagnostic.labels.len()), "{text}");
    }
    let _ = render_json(loaded.diagnostics.iter(), &loaded.sources);
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let mut files = MemoryFiles::new();
    for name in ["sys/root.xml", "sys/inc.xml", "sys/hw.xml"] {
        if let Some(part) = parts.next() {
            files.insert(name, part.to_vec());
        }
    }
    check_located(&check_with(Path::new("sys/root.xml"), &files));
    check_located(&check_hardware_with(Path::new("sys/hw.xml"), &files));
});
