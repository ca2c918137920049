//! The Septum system policy: loading, the model, diagnostics, validation.
//!
//! The pipeline is two steps with one contract between them:
//!
//! 1. [`load`] reads the XML (following `<include>` and `<hardware href>`),
//!    checks structure, numbers and names, resolves references by name to
//!    typed indices and assigns omitted virtual addresses, event ids and
//!    vectors. Problems found here carry the ids in [`parse_rules`].
//! 2. [`validate`] runs every rule in [`rules::ALL`] on the resulting
//!    [`model::Policy`] and reports every violation in one run.
//!
//! [`check`] does both; rules only run when loading reported no error,
//! because a half-read policy would produce follow-on noise (a missing
//! `name` would also show up as an unresolved reference, and so on).
//! All diagnostics are sorted by file, line and column, so the output is
//! deterministic.
//!
//! Everything here is safe Rust; the loader never panics on bad input, caps
//! file size, nesting depth, attributes per element, include depth and the
//! number and total size of files, so its work is bounded (near linear in
//! the input) whatever the input's shape, and it never touches the network.

#![forbid(unsafe_code)]

pub mod diag;
pub mod files;
pub mod flows;
pub mod model;
pub mod pads;
mod parse;
pub mod parse_rules;
pub mod platform;
pub mod rule;
pub mod rules;
pub mod source;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use files::{DiskFiles, FileSource, MemoryFiles};
pub use model::Policy;
pub use rule::{Category, Rule};
pub use source::{FileId, SourceMap, Span};

/// Largest file the loader reads (16 MiB).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes all files of one policy hold together (the root, its
/// hardware description and every included file, counted each time it is
/// read): a policy split over many files costs no more than one file.
pub const MAX_POLICY_BYTES: u64 = MAX_INPUT_BYTES;
/// Deepest element nesting accepted in one file.
pub const MAX_NESTING: usize = 32;
/// Most attributes on one element (the language's largest element has a
/// dozen). Checked before the XML parser runs, whose duplicate check is
/// quadratic in the attributes of an element.
pub const MAX_ATTRIBUTES: usize = 64;
/// Most XML namespace declarations (`xmlns`, `xmlns:*`) in one file (the
/// language uses none; editors add one or two). The XML parser's work per
/// element grows with the declarations in scope.
pub const MAX_NAMESPACE_DECLARATIONS: usize = 16;
/// Deepest chain of included files (the root policy is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Diagnostics after which loading stops (a last `errors-too-many` one
/// says where): thousands of errors help nobody, and hostile input could
/// otherwise produce one per 4 bytes, gigabytes of output.
pub const MAX_LOAD_DIAGNOSTICS: usize = 10_000;
/// Most files one policy reads (the root, the hardware description and
/// every include, counted each time it is read).
pub const MAX_FILES: usize = 1024;

/// What [`load`] produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Every file read, for rendering diagnostics.
    pub sources: SourceMap,
    /// The model: `Some` whenever the root file was read and its root
    /// element is `<system>`, even if there were errors (then it holds
    /// placeholders and must not be composed).
    pub policy: Option<Policy>,
    /// Problems found, sorted.
    pub diagnostics: Diagnostics,
    /// Whether the validation rules ran ([`check`] runs them only when
    /// loading reported no error; [`load`] never does).
    pub rules_run: bool,
}

impl Loaded {
    /// The policy if there were no errors.
    pub fn valid_policy(&self) -> Option<&Policy> {
        if self.diagnostics.has_errors() {
            None
        } else {
            self.policy.as_ref()
        }
    }
}

/// Loads the policy at `path` from disk: parse, includes, references,
/// auto-assignment. Paths in diagnostics are shown as `path` was given.
pub fn load(path: &Path) -> Loaded {
    load_with(path, &DiskFiles)
}

/// Loads a policy from memory: `text` is the root file shown as `path`;
/// includes are looked up in `includes` (paths relative to `path`'s
/// directory, normalized). Used by tests and the fuzzer.
pub fn load_str(path: &str, text: &str, includes: &MemoryFiles) -> Loaded {
    let mut files = includes.clone();
    files.insert(path, text);
    load_with(Path::new(path), &files)
}

/// Loads the policy at `path` reading files through `files`.
pub fn load_with(path: &Path, files: &dyn FileSource) -> Loaded {
    let mut loaded = parse::load(path, files);
    loaded.diagnostics.sort();
    loaded
}

/// Runs every validation rule on `policy`; the result is sorted.
pub fn validate(policy: &Policy) -> Diagnostics {
    let mut diagnostics = Diagnostics::new();
    for rule in rules::ALL {
        (rule.check)(policy, &mut diagnostics);
    }
    diagnostics.sort();
    diagnostics
}

/// [`load`] then, if loading found no error, [`validate`]; all diagnostics
/// in one sorted list.
pub fn check(path: &Path) -> Loaded {
    check_with(path, &DiskFiles)
}

/// [`check`] reading files through `files`.
pub fn check_with(path: &Path, files: &dyn FileSource) -> Loaded {
    let mut loaded = load_with(path, files);
    if !loaded.diagnostics.has_errors()
        && let Some(policy) = &loaded.policy
    {
        loaded.diagnostics.extend(validate(policy));
        loaded.diagnostics.sort();
        loaded.rules_run = true;
    }
    loaded
}

/// Loads a hardware description alone (root `<hardware>`) and, if loading
/// found no error, runs the rules that concern the machine
/// ([`rules::is_hardware_rule`]). `policy` then holds only the hardware.
pub fn check_hardware(path: &Path) -> Loaded {
    check_hardware_with(path, &DiskFiles)
}

/// [`check_hardware`] reading files through `files`.
pub fn check_hardware_with(path: &Path, files: &dyn FileSource) -> Loaded {
    let mut loaded = parse::load_hardware(path, files);
    loaded.diagnostics.sort();
    if !loaded.diagnostics.has_errors()
        && let Some(policy) = &loaded.policy
    {
        let mut diagnostics = Diagnostics::new();
        for rule in rules::ALL.iter().filter(|r| rules::is_hardware_rule(r)) {
            (rule.check)(policy, &mut diagnostics);
        }
        loaded.diagnostics.extend(diagnostics);
        loaded.diagnostics.sort();
        loaded.rules_run = true;
    }
    loaded
}

/// [`load_str`] then, if loading found no error, [`validate`].
pub fn check_str(path: &str, text: &str, includes: &MemoryFiles) -> Loaded {
    let mut files = includes.clone();
    files.insert(path, text);
    check_with(Path::new(path), &files)
}

/// Id, category and doc line of every check: the loader's, then
/// [`rules::ALL`]. This is what the manual lists.
pub fn all_rule_docs() -> Vec<(&'static str, Category, &'static str)> {
    parse_rules::PARSE_RULES
        .iter()
        .map(|r| (r.id, r.category, r.doc))
        .chain(rules::ALL.iter().map(|r| (r.id, r.category, r.doc)))
        .collect()
}
