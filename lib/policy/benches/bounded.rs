//! Bounded work on hostile input: load, validate and render (JSON in full,
//! text capped) every adversarial shape of `shapes.rs` at the 16 MiB input
//! cap. Each must take well under 2 s. Run with `cargo bench -p
//! septum-policy`; `tests/bounded.rs` asserts the bound on the same shapes.

mod shapes;

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use septum_policy::diag::{TEXT_LIMIT, render_json, render_text_capped};
use septum_policy::{MAX_INPUT_BYTES, check_with};

fn adversarial(c: &mut Criterion) {
    let mut group = c.benchmark_group("adversarial-16MiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    for shape in shapes::all(MAX_INPUT_BYTES as usize) {
        let mut files = shape.files.clone();
        files.insert("shape.xml", shape.root.as_str());
        group.bench_function(shape.name, |b| {
            b.iter(|| {
                let loaded = check_with(Path::new("shape.xml"), &files);
                let json = render_json(loaded.diagnostics.iter(), &loaded.sources);
                let text =
                    render_text_capped(loaded.diagnostics.as_slice(), &loaded.sources, TEXT_LIMIT);
                json.len() + text.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, adversarial);
criterion_main!(benches);
