//! The loader and the rules never panic or hang, and always point into the
//! files they read: limits (size, nesting, include depth), odd encodings,
//! and property tests that mutate the demo policy.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use septum_policy::diag::headline;
use septum_policy::diag::{render_json, render_text};
use septum_policy::{
    Loaded, MAX_INPUT_BYTES, MAX_LOAD_DIAGNOSTICS, MemoryFiles, check_str, check_with, load_str,
};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

fn hardware() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hardware/bochs-tigerlake.xml");
    std::fs::read_to_string(path).expect("hardware")
}

/// The demo policy and its includes, in memory under `sys/`.
fn demo_files() -> (String, MemoryFiles) {
    let root = fixture("demo.xml").replace("../../../../hardware/bochs-tigerlake.xml", "hw.xml");
    let mut files = MemoryFiles::new();
    files.insert("sys/hw.xml", hardware());
    files.insert("sys/parts/subjects.xml", fixture("parts/subjects.xml"));
    files.insert("sys/parts/consumer.xml", fixture("parts/consumer.xml"));
    (root, files)
}

/// Every diagnostic (and label) points inside a loaded file, and both
/// renderers cope with it.
fn assert_well_located(loaded: &Loaded) {
    for d in loaded.diagnostics.iter() {
        assert!(
            loaded.sources.is_valid(d.span),
            "bad span {:?} for {d:?}",
            d.span
        );
        for label in &d.labels {
            assert!(
                loaded.sources.is_valid(label.span),
                "bad label span in {d:?}"
            );
        }
        let text = render_text(d, &loaded.sources);
        assert!(text.contains(&format!("[{}]", d.rule)));
    }
    let json = render_json(loaded.diagnostics.iter(), &loaded.sources);
    assert!(json.starts_with('['));
}

fn rules_of(loaded: &Loaded) -> Vec<&'static str> {
    loaded.diagnostics.iter().map(|d| d.rule).collect()
}

#[test]
fn the_in_memory_demo_is_clean() {
    let (root, files) = demo_files();
    let loaded = check_str("sys/demo.xml", &root, &files);
    assert!(!loaded.diagnostics.has_errors(), "{:?}", loaded.diagnostics);
}

#[test]
fn a_missing_root_file_is_located_at_its_start() {
    let loaded = check_with(Path::new("nowhere/policy.xml"), &MemoryFiles::new());
    assert_eq!(rules_of(&loaded), ["file-unreadable"]);
    let d = &loaded.diagnostics.as_slice()[0];
    assert_eq!(
        septum_policy::diag::headline(d, &loaded.sources),
        "nowhere/policy.xml:1:1: error[file-unreadable]: cannot read `nowhere/policy.xml`: \
         file not found"
    );
    assert!(loaded.policy.is_none());
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let big = format!("<system>{}</system>", " ".repeat(MAX_INPUT_BYTES as usize));
    let mut files = MemoryFiles::new();
    files.insert("big.xml", big.clone());
    let loaded = check_with(Path::new("big.xml"), &files);
    assert_eq!(rules_of(&loaded), ["input-too-large"]);
    assert_well_located(&loaded);

    // As an include: located at the href.
    files.insert(
        "big.xml",
        format!("<memory>{}</memory>", " ".repeat(MAX_INPUT_BYTES as usize)),
    );
    let root = "<system>\n<memory><include href=\"big.xml\"/></memory></system>";
    let loaded = load_str("root.xml", root, &files);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.rule == "input-too-large")
        .expect("reported");
    assert_eq!(
        septum_policy::diag::headline(d, &loaded.sources)
            .split(": ")
            .next(),
        Some("root.xml:2:24")
    );
}

#[test]
fn invalid_utf8_is_located_at_the_first_bad_byte() {
    let mut files = MemoryFiles::new();
    files.insert("bad.xml", b"<system>\n  \xff</system>".to_vec());
    let loaded = check_with(Path::new("bad.xml"), &files);
    assert_eq!(rules_of(&loaded), ["xml-syntax"]);
    let d = &loaded.diagnostics.as_slice()[0];
    assert!(septum_policy::diag::headline(d, &loaded.sources).starts_with("bad.xml:2:3: "));
}

#[test]
fn very_deep_nesting_is_rejected_quickly() {
    let depth = 200_000;
    let text = format!(
        "<system>{}{}</system>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    );
    let start = Instant::now();
    let loaded = check_str("deep.xml", &text, &MemoryFiles::new());
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(rules_of(&loaded), ["nesting-too-deep"]);
    assert_well_located(&loaded);
}

#[test]
fn self_inclusion_is_a_cycle() {
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/loop.xml",
        "<memory><include href=\"../sys/./loop.xml\"/></memory>",
    );
    let root = "<system><memory><include href=\"loop.xml\"/></memory></system>";
    let loaded = load_str("sys/root.xml", root, &files);
    assert!(rules_of(&loaded).contains(&"include-cycle"));
    assert_well_located(&loaded);
}

#[test]
fn entity_expansion_and_dtds_are_refused() {
    let text = "<!DOCTYPE system [<!ENTITY a \"aaaaaaaaaa\">]><system>&a;</system>";
    let loaded = check_str("dtd.xml", text, &MemoryFiles::new());
    assert_eq!(rules_of(&loaded), ["xml-syntax"]);
}

/// Headlines of every diagnostic, in order.
fn headlines(loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .map(|d| headline(d, &loaded.sources))
        .collect()
}

#[test]
fn a_doctype_is_reported_where_it_stands() {
    let text = "<?xml version=\"1.0\"?>\n<!-- the anchor's files had one -->\n  <!DOCTYPE system                 SYSTEM \"system.dtd\">\n<system/>\n";
    let loaded = check_str("dtd.xml", text, &MemoryFiles::new());
    assert_eq!(
        headlines(&loaded),
        ["dtd.xml:3:3: error[xml-syntax]: a document type declaration (DTD) is not accepted"]
    );
    assert_eq!(
        loaded.diagnostics.as_slice()[0].help.as_deref(),
        Some(
            "remove the <!DOCTYPE ...>: policies are plain XML, without DTDs or entity \
             definitions"
        )
    );
    assert!(!loaded.rules_run);
    // In an included file: located in that file.
    let mut files = MemoryFiles::new();
    files.insert("sys/inc.xml", "<!DOCTYPE memory><memory/>");
    let root = "<system><memory><include href=\"inc.xml\"/></memory></system>";
    let loaded = load_str("sys/root.xml", root, &files);
    assert!(
        headlines(&loaded).contains(
            &"sys/inc.xml:1:1: error[xml-syntax]: a document type declaration (DTD) is not \
              accepted"
                .to_owned()
        ),
        "{:#?}",
        headlines(&loaded)
    );
}

#[test]
fn loading_stops_after_the_diagnostics_limit() {
    let text = format!(
        "<system>\n{}</system>\n",
        "<x/>\n".repeat(MAX_LOAD_DIAGNOSTICS + 500)
    );
    let loaded = check_str("many.xml", &text, &MemoryFiles::new());
    let stops: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.rule == "errors-too-many")
        .map(|d| headline(d, &loaded.sources))
        .collect();
    let line = MAX_LOAD_DIAGNOSTICS + 2;
    assert_eq!(
        stops,
        [format!(
            "many.xml:{line}:1: error[errors-too-many]: loading stopped here after \
             {MAX_LOAD_DIAGNOSTICS} diagnostics; the rest of the policy was not read"
        )]
    );
    // The limit, the stop, and the three missing elements of <system>.
    assert_eq!(loaded.diagnostics.len(), MAX_LOAD_DIAGNOSTICS + 4);
    assert!(!loaded.rules_run);
    assert_well_located(&loaded);
}

#[test]
fn all_files_of_a_policy_share_one_size_limit() {
    let half = MAX_INPUT_BYTES as usize / 2 + 1;
    let part = |name: &str| format!("<{name}>{}</{name}>", " ".repeat(half));
    let mut files = MemoryFiles::new();
    files.insert("a.xml", part("memory"));
    files.insert("b.xml", part("events"));
    let root = "<system>\n<memory><include href=\"a.xml\"/></memory>\n\
                <events><include href=\"b.xml\"/></events></system>";
    let loaded = load_str("root.xml", root, &files);
    let too_large: Vec<String> = headlines(&loaded)
        .into_iter()
        .filter(|h| h.contains("input-too-large"))
        .collect();
    assert_eq!(
        too_large,
        [format!(
            "root.xml:3:24: error[input-too-large]: `b.xml` ({} bytes) would bring this \
             policy's files to more than {MAX_INPUT_BYTES} bytes together ({} read before it)",
            half + 17,
            root.len() + half + 17
        )]
    );
}

/// One way to change the policy text.
#[derive(Clone, Debug)]
enum Mutation {
    DeleteElement(usize),
    DuplicateElement(usize),
    SetAttribute(usize, String),
    SwapAttributes(usize, usize),
    Truncate(usize),
    InsertByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("0x1000".to_owned()),
        Just("16#ffff_ffff_ffff_ffff#".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("-1".to_owned()),
        Just("vm".to_owned()),
        Just("kernel".to_owned()),
        Just("true".to_owned()),
        Just("producer".to_owned()),
        Just("data".to_owned()),
        Just("com1".to_owned()),
        Just("../parts/subjects.xml".to_owned()),
        Just("demo.xml".to_owned()),
        "[a-z_#0-9x]{0,12}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteElement),
        any::<usize>().prop_map(Mutation::DuplicateElement),
        (any::<usize>(), value).prop_map(|(i, v)| Mutation::SetAttribute(i, v)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapAttributes(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
    ]
}

/// Applies `mutation` to `text` (if it still parses as XML where needed).
fn apply(text: &str, mutation: &Mutation) -> Vec<u8> {
    let doc = roxmltree::Document::parse(text).ok();
    let elements: Vec<std::ops::Range<usize>> = doc
        .iter()
        .flat_map(|d| {
            d.descendants()
                .filter(|n| n.is_element())
                .map(|n| n.range())
        })
        .collect();
    let values: Vec<std::ops::Range<usize>> = doc
        .iter()
        .flat_map(|d| {
            d.descendants()
                .flat_map(|n| n.attributes().map(|a| a.range_value()))
        })
        .collect();
    let bytes = text.as_bytes();
    let splice = |range: std::ops::Range<usize>, with: &[u8]| {
        let mut out = bytes[..range.start].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&bytes[range.end..]);
        out
    };
    match mutation {
        Mutation::DeleteElement(i) if !elements.is_empty() => {
            splice(elements[i % elements.len()].clone(), b"")
        }
        Mutation::DuplicateElement(i) if !elements.is_empty() => {
            let range = elements[i % elements.len()].clone();
            let copy = bytes[range.clone()].to_vec();
            splice(range.end..range.end, &copy)
        }
        Mutation::SetAttribute(i, value) if !values.is_empty() => {
            splice(values[i % values.len()].clone(), value.as_bytes())
        }
        Mutation::SwapAttributes(a, b) if values.len() > 1 => {
            let (mut x, mut y) = (
                values[a % values.len()].clone(),
                values[b % values.len()].clone(),
            );
            if x.start > y.start {
                std::mem::swap(&mut x, &mut y);
            }
            if x.end > y.start {
                return bytes.to_vec();
            }
            let mut out = bytes[..x.start].to_vec();
            out.extend_from_slice(&bytes[y.clone()]);
            out.extend_from_slice(&bytes[x.end..y.start]);
            out.extend_from_slice(&bytes[x.clone()]);
            out.extend_from_slice(&bytes[y.end..]);
            out
        }
        Mutation::Truncate(at) => bytes[..at % (bytes.len() + 1)].to_vec(),
        Mutation::InsertByte(at, byte) => {
            let at = at % (bytes.len() + 1);
            splice(at..at, &[*byte])
        }
        _ => bytes.to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_policies_never_panic_and_stay_located(
        target in 0usize..3,
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let (root, mut files) = demo_files();
        let paths = ["sys/demo.xml", "sys/parts/subjects.xml", "sys/hw.xml"];
        let originals = [root.clone(), fixture("parts/subjects.xml"), hardware()];
        let mut bytes = originals[target].clone().into_bytes();
        for m in &mutations {
            let current = String::from_utf8_lossy(&bytes).into_owned();
            bytes = apply(&current, m);
        }
        files.insert(paths[0], root);
        files.insert(paths[target], bytes);
        let start = Instant::now();
        let loaded = check_with(Path::new(paths[0]), &files);
        prop_assert!(start.elapsed() < Duration::from_secs(5));
        assert_well_located(&loaded);
    }
}
