//! The anchor's (Muen's) way of writing policies: includes whose root is
//! `<include>` or the included element itself, and the anchor's spellings
//! (accepted where they mean the same, rejected with our spelling named).

use std::path::Path;

use septum_policy::diag::headline;
use septum_policy::{Loaded, MemoryFiles, check_str};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(path).expect("readable")
}

/// Headlines of every diagnostic, in order.
fn headlines(loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .map(|d| headline(d, &loaded.sources))
        .collect()
}

/// The text of `<subject name="NAME" ...>...</subject>` in the demo.
fn demo_subject(demo: &str, name: &str) -> String {
    let start = demo
        .find(&format!("<subject name=\"{name}\""))
        .expect("subject");
    let end = start + demo[start..].find("</subject>").expect("end") + "</subject>".len();
    demo[start..end].to_owned()
}

/// The demo split the anchor's way: one file per subject (root
/// `<subject>`), the events in a file whose root is `<include>`, and the
/// channel in a file whose root is the `<channel>` itself.
fn split_demo() -> (String, MemoryFiles) {
    let demo = read("../../systems/demo.xml").replace("../hardware/", "");
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/bochs-tigerlake.xml",
        read("../../hardware/bochs-tigerlake.xml"),
    );
    for name in ["producer", "console"] {
        files.insert(
            format!("sys/subjects/{name}.xml"),
            demo_subject(&demo, name),
        );
    }
    let events_start = demo.find("<events>\n    <event").expect("events");
    let events_end = events_start + demo[events_start..].find("</events>").expect("end");
    let events = &demo[events_start + "<events>".len()..events_end];
    files.insert("sys/events.xml", format!("<include>{events}</include>\n"));
    files.insert(
        "sys/channel.xml",
        "<channel name=\"messages\" size=\"0x1000\" elementSize=\"64\" protocol=\"1\"/>\n",
    );
    let mut root = demo.clone();
    for name in ["producer", "console"] {
        root = root.replace(
            &demo_subject(&demo, name),
            &format!("<include href=\"subjects/{name}.xml\"/>"),
        );
    }
    root = root.replace(events, "<include href=\"events.xml\"/>");
    root = root.replace(
        "<channel name=\"messages\" size=\"0x1000\" elementSize=\"64\" protocol=\"1\"/>",
        "<include href=\"channel.xml\"/>",
    );
    (root, files)
}

#[test]
fn a_policy_split_the_anchors_way_loads_like_the_whole() {
    let (root, files) = split_demo();
    assert!(root.contains("<include href=\"subjects/console.xml\"/>"));
    let split = check_str("sys/demo.xml", &root, &files);
    assert_eq!(headlines(&split), Vec::<String>::new());
    assert!(split.rules_run);
    let policy = split.policy.expect("policy");
    let whole =
        septum_policy::check(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systems/demo.xml"));
    let whole = whole.policy.expect("policy");
    let names = |p: &septum_policy::Policy| -> Vec<String> {
        p.subjects
            .iter()
            .map(|s| s.name.value.clone())
            .chain(p.events.iter().map(|e| e.name.value.clone()))
            .chain(p.channels.iter().map(|c| c.name.value.clone()))
            .collect()
    };
    assert_eq!(names(&policy), names(&whole));
    // Spans point into the included files.
    let console = &policy.subjects[1];
    assert_eq!(
        split.sources.path(console.span.file).to_string_lossy(),
        "sys/subjects/console.xml"
    );
}

#[test]
fn an_include_root_may_itself_include_and_a_region_may_be_a_root() {
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/regions.xml",
        "<include>\n  <memory name=\"a\" size=\"0x1000\" caching=\"WB\"/>\n  \
         <include href=\"b.xml\"/>\n</include>\n",
    );
    files.insert(
        "sys/b.xml",
        "<memory name=\"b\" size=\"0x2000\" caching=\"WB\"/>\n",
    );
    let root = "<system><memory><include href=\"regions.xml\"/></memory></system>";
    let loaded = septum_policy::load_str("sys/root.xml", root, &files);
    let policy = loaded.policy.expect("policy");
    let regions: Vec<(&str, u64)> = policy
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.size.value))
        .collect();
    assert_eq!(regions, [("a", 0x1000), ("b", 0x2000)]);
}

#[test]
fn an_included_element_the_container_does_not_hold_is_a_located_error() {
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/ev.xml",
        "<event name=\"e\" mode=\"kernel\" action=\"yield\"/>\n",
    );
    let root = "<system>\n<subjects><include href=\"ev.xml\"/></subjects></system>";
    let loaded = septum_policy::load_str("sys/root.xml", root, &files);
    let lines = headlines(&loaded);
    assert!(
        lines.contains(
            &"sys/root.xml:2:26: error[include-root-mismatch]: `ev.xml` has root element \
              <event>, but is included in <subjects>"
                .to_owned()
        ),
        "{lines:#?}"
    );
    let mismatch = loaded
        .diagnostics
        .iter()
        .find(|d| d.rule == "include-root-mismatch")
        .expect("reported");
    assert_eq!(
        mismatch.help.as_deref(),
        Some(
            "an included file's root element must be <subjects> or <include> (its children \
             are spliced in), or one element <subjects> holds: <subject>"
        )
    );
}

#[test]
fn an_include_root_that_includes_itself_is_a_located_cycle() {
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/loop.xml",
        "<include>\n  <include href=\"loop.xml\"/>\n</include>\n",
    );
    let root = "<system>\n<subjects><include href=\"loop.xml\"/></subjects></system>";
    let loaded = septum_policy::load_str("sys/root.xml", root, &files);
    assert_eq!(
        headlines(&loaded)
            .into_iter()
            .filter(|l| l.contains("include-cycle"))
            .collect::<Vec<_>>(),
        [
            "sys/loop.xml:2:18: error[include-cycle]: include cycle: `loop.xml` is already being \
          included"
        ]
    );
}

#[test]
fn an_include_root_takes_no_attributes() {
    let mut files = MemoryFiles::new();
    files.insert("sys/s.xml", "<include href=\"x.xml\"/>\n");
    let root = "<system>\n<subjects><include href=\"s.xml\"/></subjects></system>";
    let loaded = septum_policy::load_str("sys/root.xml", root, &files);
    let lines = headlines(&loaded);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("sys/s.xml:1:10: error[unknown-attribute]")),
        "{lines:#?}"
    );
}

#[test]
fn the_anchors_asynchronous_is_septums_async() {
    let demo = read("../../systems/demo.xml").replace("../hardware/", "");
    let mut files = MemoryFiles::new();
    files.insert(
        "sys/bochs-tigerlake.xml",
        read("../../hardware/bochs-tigerlake.xml"),
    );
    let text = demo.replace(
        "protocol=\"1\"/>",
        "protocol=\"1\" hasEvent=\"asynchronous\"/>",
    );
    let loaded = check_str("sys/demo.xml", &text, &files);
    assert!(
        !loaded.diagnostics.has_errors(),
        "{:#?}",
        headlines(&loaded)
    );
    let policy = loaded.policy.expect("policy");
    assert_eq!(
        policy.channels[0].has_event.as_ref().map(|m| m.value),
        Some(septum_policy::model::EventMode::Async)
    );
    // Messages listing the valid values show Septum's spelling only.
    let bad = demo.replace("protocol=\"1\"/>", "protocol=\"1\" hasEvent=\"often\"/>");
    let loaded = check_str("sys/demo.xml", &bad, &files);
    assert_eq!(
        headlines(&loaded),
        [
            "sys/demo.xml:19:84: error[invalid-enum]: `often` is not a valid `hasEvent`; expected \
          one of: async, ipi, switch"
        ]
    );
}
