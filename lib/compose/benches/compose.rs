//! Composer speed: validate + compose the demo, a generated policy with 200
//! subjects, 1,000 channels and 4 CPUs, and a scale series (subjects 10 to
//! 256, the kernel's limit, with five channels each). Run with `cargo bench -p septum-compose`
//! (`cargo xtask bench` calls it). Only the in-memory work is timed: the
//! policy text and the ELF are prepared once; outputs are not written.

use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use septum_compose::{compose_policy, elf, testgen};
use septum_policy::MemoryFiles;

fn validate_and_compose(xml: &str) -> usize {
    let loaded = septum_policy::check_str("gen.xml", xml, &MemoryFiles::new());
    let policy = loaded.valid_policy().expect("generated policy is valid");
    let composed = compose_policy(policy, &testgen::binaries()).expect("composes");
    composed.spec.len()
}

fn demo(c: &mut Criterion) {
    let policy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml");
    let binaries: std::collections::HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), elf::build::sample_subject()))
        .collect();
    c.bench_function("demo: validate+compose", |b| {
        b.iter(|| {
            let loaded = septum_policy::check(&policy);
            let model = loaded.valid_policy().expect("demo is valid");
            compose_policy(model, &binaries)
                .expect("composes")
                .spec
                .len()
        });
    });
}

fn large(c: &mut Criterion) {
    let xml = testgen::policy_xml(200, 1000, 4);
    let mut group = c.benchmark_group("generated");
    group.sample_size(10);
    group.bench_function(
        "200 subjects, 1000 channels, 4 cpus: validate+compose",
        |b| {
            b.iter(|| validate_and_compose(&xml));
        },
    );
    group.finish();
}

fn scale(c: &mut Criterion) {
    let mut group = c.benchmark_group("scale (5 channels per subject, 4 cpus)");
    group.sample_size(10);
    for subjects in [10usize, 50, 100, 200, 256] {
        let xml = testgen::policy_xml(subjects, subjects * 5, 4);
        group.bench_with_input(BenchmarkId::from_parameter(subjects), &xml, |b, xml| {
            b.iter(|| validate_and_compose(xml));
        });
    }
    group.finish();
}

criterion_group!(benches, demo, large, scale);
criterion_main!(benches);
