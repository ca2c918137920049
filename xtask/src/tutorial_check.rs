//! Keeps docs/tutorial.md true: its code blocks are the repository's files.
//!
//! A tutorial whose code drifted from the code it describes teaches the
//! wrong thing without anyone noticing. So every complete file the
//! tutorial shows is marked with `<!-- file: PATH -->` on the line before
//! its fenced block, and the host tests (`cargo test -p xtask`, part of
//! `cargo xtask test`'s "test host workspace" step) assert that each
//! marked block equals the file at `PATH` (relative to the repository
//! root) byte for byte, and that every file the pipeline consists of is
//! shown; and every link to another page of the manual must name a page
//! and a heading that exist, so a renamed section cannot strand the
//! reader. The system test `tutorial` boots the same files in Bochs.
#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

/// The marker before a block that must equal a file.
const MARKER: &str = "<!-- file: ";

/// Files the tutorial must show whole: the policy, the system test and
/// the three subjects.
const REQUIRED: [&str; 6] = [
    "subjects/sampler/Cargo.toml",
    "subjects/sampler/src/main.rs",
    "subjects/filter/src/main.rs",
    "subjects/monitor/src/main.rs",
    "systems/tutorial.xml",
    "systems/tutorial.test.toml",
];

/// One marked block: the path it names and the block's text (its lines,
/// each ending in `\n`, without the fences).
#[derive(Debug)]
struct Marked {
    path: String,
    text: String,
}

/// Every marked block of `doc`, or what is malformed.
fn marked_blocks(doc: &str) -> Result<Vec<Marked>, String> {
    let mut blocks = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(rest) = line.trim().strip_prefix(MARKER) else {
            continue;
        };
        let Some(path) = rest.strip_suffix("-->") else {
            return Err(format!("line {}: marker without `-->`", number + 1));
        };
        let path = path.trim().to_owned();
        let Some((_, open)) = lines.next() else {
            return Err(format!("line {}: marker at the end", number + 1));
        };
        let fence_len = open.chars().take_while(|&c| c == '`').count();
        if fence_len < 3 {
            return Err(format!(
                "line {}: the line after the marker for {path} opens no fenced block",
                number + 2
            ));
        }
        let fence = "`".repeat(fence_len);
        let mut text = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim_end() == fence {
                closed = true;
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        if !closed {
            return Err(format!("the block for {path} is never closed"));
        }
        blocks.push(Marked { path, text });
    }
    Ok(blocks)
}

/// The repository root (xtask's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// GitHub's anchor for a heading's text: lowercase, only letters, digits,
/// `-`, `_` and spaces kept, each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of every heading in `page`, outside fenced blocks.
fn anchors(page: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(slug(line.trim_start_matches('#').trim()));
        }
    }
    out
}

/// Every `](target)` link of `doc` to another Markdown page, outside
/// fenced blocks: (page, anchor or "").
fn page_links(doc: &str) -> Vec<(String, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (start, _) in line.match_indices("](") {
            let rest = line.get(start + 2..).unwrap_or_default();
            let Some((target, _)) = rest.split_once(')') else {
                continue;
            };
            if target.contains("://") {
                continue;
            }
            let (page, anchor) = target.split_once('#').unwrap_or((target, ""));
            if page.ends_with(".md") {
                out.push((page.to_owned(), anchor.to_owned()));
            }
        }
    }
    out
}

#[test]
fn every_link_names_a_page_and_heading_that_exist() {
    let docs = root().join("docs");
    let doc = fs::read_to_string(docs.join("tutorial.md")).expect("docs/tutorial.md");
    let links = page_links(&doc);
    assert!(!links.is_empty());
    for (page, anchor) in links {
        let text = fs::read_to_string(docs.join(&page))
            .unwrap_or_else(|e| panic!("docs/tutorial.md links to {page}: {e}"));
        assert!(
            anchor.is_empty() || anchors(&text).contains(&anchor),
            "docs/tutorial.md links to {page}#{anchor}, which has no such heading"
        );
    }
}

#[test]
fn slugs_are_githubs() {
    assert_eq!(slug("`<events>` / `<event>`"), "events--event");
    assert_eq!(
        slug("A new subject: `cargo xtask new-subject NAME`"),
        "a-new-subject-cargo-xtask-new-subject-name"
    );
    assert_eq!(slug("Declared needs (`needs!`)"), "declared-needs-needs");
    assert_eq!(
        page_links("see [a](policy.md#x), [b](https://e.org/c.md)\n```\n[c](d.md)\n```\n"),
        vec![("policy.md".to_owned(), "x".to_owned())]
    );
}

#[test]
fn every_marked_block_is_the_file_it_names() {
    let root = root();
    let doc = fs::read_to_string(root.join("docs/tutorial.md")).expect("docs/tutorial.md");
    let blocks = marked_blocks(&doc).unwrap_or_else(|e| panic!("docs/tutorial.md: {e}"));
    for block in &blocks {
        let file = fs::read_to_string(root.join(&block.path))
            .unwrap_or_else(|e| panic!("docs/tutorial.md shows {}: {e}", block.path));
        assert!(
            block.text == file,
            "docs/tutorial.md's block for {} differs from the file; copy the file into the block",
            block.path
        );
    }
    for path in REQUIRED {
        assert!(
            blocks.iter().any(|b| b.path == path),
            "docs/tutorial.md shows no block marked `{MARKER}{path} -->`"
        );
    }
}

#[test]
fn markers_are_parsed_strictly() {
    let doc = "text\n<!-- file: a.txt -->\n```rust\nfn x() {}\n\n```\n";
    let blocks = marked_blocks(doc).expect("well formed");
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].path, "a.txt");
    assert_eq!(blocks[0].text, "fn x() {}\n\n");
    assert!(marked_blocks("<!-- file: a.txt -->\ntext\n").is_err());
    assert!(marked_blocks("<!-- file: a.txt -->\n```\nopen\n").is_err());
    assert!(marked_blocks("<!-- file: a.txt\n```\n```\n").is_err());
    assert!(marked_blocks("```\nplain block\n```\n").is_ok_and(|b| b.is_empty()));
}
