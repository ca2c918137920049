//! docs/policy.md lists every check (loader and rules) with its doc line,
//! generated from the code: this test renders the list and compares it with
//! the section between the markers. `UPDATE_DOCS=1` rewrites the section.

use std::collections::BTreeSet;
use std::path::Path;

use septum_policy::all_rule_docs;

const BEGIN: &str = "<!-- BEGIN GENERATED RULE LIST -->\n";
const END: &str = "<!-- END GENERATED RULE LIST -->";

fn rendered() -> String {
    let mut out =
        String::from("| Rule | Category | Requirement |\n|------|----------|-------------|\n");
    for (id, category, doc) in all_rule_docs() {
        out.push_str(&format!(
            "| `{id}` | {} | {} |\n",
            category.title(),
            doc.replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn rule_ids_are_unique_kebab_case_and_documented() {
    let mut seen = BTreeSet::new();
    for (id, _, doc) in all_rule_docs() {
        assert!(seen.insert(id), "duplicate rule id {id}");
        assert!(
            !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "rule id {id:?} is not kebab-case"
        );
        assert!(
            !doc.trim().is_empty() && !doc.contains('\n'),
            "rule {id} needs a one-line doc"
        );
    }
}

#[test]
fn the_manual_lists_every_rule() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let text = std::fs::read_to_string(&path).expect("docs/policy.md");
    let start = text.find(BEGIN).expect("begin marker") + BEGIN.len();
    let end = text.find(END).expect("end marker");
    let want = rendered();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("writable");
        return;
    }
    let have = &text[start..end];
    if have != want {
        let first_difference = have
            .lines()
            .zip(want.lines())
            .find(|(h, w)| h != w)
            .map_or_else(
                || {
                    format!(
                        "{} lines in the manual, {} generated",
                        have.lines().count(),
                        want.lines().count()
                    )
                },
                |(h, w)| format!("manual: {h}\ngenerated: {w}"),
            );
        panic!(
            "docs/policy.md's rule list is stale; run UPDATE_DOCS=1 cargo test -p septum-policy \
             --test docs\n{first_difference}"
        );
    }
}

/// `value` in hex the way the manual writes addresses: digits in groups of
/// four separated by `_` (`0x20_0000`).
fn grouped_hex(value: u64) -> String {
    let digits = format!("{value:x}");
    let mut groups = Vec::new();
    let mut end = digits.len();
    while end > 4 {
        groups.push(&digits[end - 4..end]);
        end -= 4;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    format!("0x{}", groups.join("_"))
}

/// The manual's table of a subject's fixed windows and its auto-assignment
/// base state the values of `septum_abi::layout`, which the rules use.
#[test]
fn the_manual_states_the_subject_windows_of_the_layout() {
    use septum_abi::layout;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md");
    let text = std::fs::read_to_string(&path).expect("docs/policy.md");
    let page = 0x1000;
    let expected = [
        format!(
            "`{}..{}`",
            grouped_hex(layout::SUBJECT_INFO.0),
            grouped_hex(layout::SUBJECT_INFO.0 + page)
        ),
        format!("ends at `{}`", grouped_hex(layout::SUBJECT_STACK_TOP.0)),
        format!(
            "`{}..{}`",
            grouped_hex(layout::SUBJECT_IMAGE_BASE.0),
            grouped_hex(layout::SUBJECT_IMAGE_END.0)
        ),
        format!(
            "`{}` (`SUBJECT_AUTO_MAP_BASE`)",
            grouped_hex(layout::SUBJECT_AUTO_MAP_BASE.0)
        ),
    ];
    for want in &expected {
        assert!(
            text.contains(want.as_str()),
            "docs/policy.md does not say {want}"
        );
    }
    assert_eq!(grouped_hex(0x20_0000), "0x20_0000");
    assert_eq!(grouped_hex(0x1000), "0x1000");
}
