//! The kernel limits the rules enforce are the kernel's own: the CPU count
//! lives in the kernel crate (its own workspace), so this test reads it from
//! the source and compares.

use septum_policy::rules::limits::KERNEL_MAX_CPUS;

#[test]
fn the_cpu_limit_is_the_kernels() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../kernel/src/arch/x86_64/percpu.rs"
    );
    let text = std::fs::read_to_string(path).expect("the kernel's percpu.rs");
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub const MAX_CPUS: usize = "))
        .and_then(|v| v.strip_suffix(';'))
        .expect("pub const MAX_CPUS: usize = N; in percpu.rs");
    assert_eq!(value.parse::<u32>().ok(), Some(KERNEL_MAX_CPUS));
}
