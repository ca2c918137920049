//! End-to-end: generated policies through the policy crate and the composer.

use septum_compose::{compose_policy, testgen};
use septum_policy::MemoryFiles;

fn compose(subjects: usize, channels: usize, cpus: usize) -> septum_compose::Composed {
    let xml = testgen::policy_xml(subjects, channels, cpus);
    let loaded = septum_policy::check_str("gen.xml", &xml, &MemoryFiles::new());
    let rendered: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| septum_policy::diag::render_text(d, &loaded.sources))
        .collect();
    let policy = loaded
        .valid_policy()
        .unwrap_or_else(|| panic!("{}", rendered.join("")));
    match compose_policy(policy, &testgen::binaries()) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn generated_policy_composes() {
    let c = compose(6, 12, 2);
    let comp = &c.composition;
    assert_eq!(comp.subjects.len(), 6);
    assert_eq!(comp.cpu_count, 2);
    assert_eq!(comp.vmxon.len(), 2);
    assert!(
        c.spec
            .contains("pub static SPEC: septum_kerncore::spec::SystemSpec")
    );
    // Subject 1 receives ping0 from subject 0.
    let s0 = &comp.subjects[0];
    assert!(s0.source_events.iter().any(|e| e.event == "ping0"));
}

#[test]
fn same_policy_same_bytes() {
    let a = compose(8, 20, 4);
    let b = compose(8, 20, 4);
    assert_eq!(a.spec, b.spec);
    assert_eq!(a.composition.regions, b.composition.regions);
    let (ra, ba) = septum_compose::output::regions(&a.composition);
    let (rb, bb) = septum_compose::output::regions(&b.composition);
    assert_eq!(ra, rb);
    assert_eq!(ba, bb);
    assert_eq!(
        septum_compose::report::text_report(&a.composition),
        septum_compose::report::text_report(&b.composition)
    );
}

#[test]
fn benchmark_sized_policy_is_valid_and_composes() {
    let c = compose(200, 1000, 4);
    assert_eq!(c.composition.subjects.len(), 200);
    assert_eq!(c.composition.cpu_count, 4);
    let channels = c
        .composition
        .regions
        .iter()
        .filter(|r| r.name.starts_with('c'))
        .count();
    assert!(channels >= 1000);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
    /// Any generated shape composes; regions never overlap; each subject's
    /// EPT maps exactly its mappings, read back from the bytes.
    #[test]
    fn any_generated_shape_composes_soundly(subjects in 2usize..9, channels in 0usize..24, cpus in 1usize..5) {
        let c = compose(subjects, channels, cpus).composition;
        let mut spans: Vec<_> = c.regions.iter().map(|r| (r.start.get(), r.end())).collect();
        spans.sort_unstable();
        for w in spans.windows(2) {
            proptest::prop_assert!(w[0].1 <= w[1].0);
        }
        for s in &c.subjects {
            let root = s.eptp & !0xfff;
            let ept = c.regions.iter().find(|r| r.start.get() == root).unwrap();
            let mut bytes = ept.content.clone();
            bytes.resize(ept.size as usize, 0);
            let mapped: u64 = septum_compose::paging::leaves(
                septum_compose::paging::Format::Ept,
                &bytes,
                root,
            )
            .iter()
            .map(|l| l.2)
            .sum();
            let granted: u64 = s.mappings.iter().map(|m| m.size).sum();
            proptest::prop_assert_eq!(mapped, granted);
        }
    }
}
