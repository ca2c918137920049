//! `septum compose` and `septum pack` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use septum_compose::elf::build;

fn septum(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septum"))
        .args(args)
        .output()
        .unwrap()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("septum-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn demo_policy() -> PathBuf {
    repo().join("lib/compose/tests/fixtures/demo.xml")
}

fn binaries(dir: &Path) -> PathBuf {
    let bins = dir.join("bin");
    std::fs::create_dir_all(&bins).unwrap();
    for name in ["producer", "console"] {
        std::fs::write(bins.join(name), build::sample_subject()).unwrap();
    }
    bins
}

fn fake_kernel(dir: &Path) -> PathBuf {
    let elf = build::executable(
        0x10_0000,
        &[
            build::SegmentSpec {
                vaddr: 0x10_0000,
                data: &[0x90; 4],
                mem_size: 4,
                flags: 5,
            },
            build::SegmentSpec {
                vaddr: 0x28_0000,
                data: &[1; 4],
                mem_size: 0x2000,
                flags: 6,
            },
        ],
    );
    let path = dir.join("kernel.elf");
    std::fs::write(&path, elf).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn compose_writes_every_output_and_is_reproducible() {
    let dir = scratch("ok");
    let bins = binaries(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    for out in [&a, &b] {
        let o = septum(&[
            "compose",
            s(&demo_policy()),
            "--binaries",
            s(&bins),
            "--out",
            s(out),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with("composed \"compose_demo\": 2 subjects")
        );
    }
    for file in [
        "spec.rs",
        "regions.json",
        "regions.bin",
        "report.txt",
        "report.json",
    ] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(!x.is_empty() && x == y, "{file}");
    }
    let kernel = fake_kernel(&dir);
    let (ea, eb) = (dir.join("a.elf"), dir.join("b.elf"));
    for (composed, elf) in [(&a, &ea), (&b, &eb)] {
        let o = septum(&[
            "pack",
            "--composed",
            s(composed),
            "--kernel",
            s(&kernel),
            "--out",
            s(elf),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(std::fs::read(&ea).unwrap(), std::fs::read(&eb).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_policy_is_located_and_fails() {
    let dir = scratch("bad");
    let bins = binaries(&dir);
    let policy = dir.join("bad.xml");
    let text = std::fs::read_to_string(demo_policy())
        .unwrap()
        .replace(
            "../../../../hardware/",
            &format!("{}/hardware/", s(&repo())),
        )
        .replace("physical=\"producer_ram\"", "physical=\"no_such_region\"");
    std::fs::write(&policy, text).unwrap();
    let o = septum(&[
        "compose",
        s(&policy),
        "--binaries",
        s(&bins),
        "--out",
        s(&dir.join("out")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.xml:21:38: error[names-unknown-region]"),
        "{err}"
    );
    assert!(err.contains("no_such_region"), "{err}");
    assert!(!dir.join("out").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn broken_binary_is_located_at_the_subject() {
    let dir = scratch("elf");
    let bins = binaries(&dir);
    std::fs::write(bins.join("console"), b"\x7fELF garbage").unwrap();
    let o = septum(&[
        "compose",
        s(&demo_policy()),
        "--binaries",
        s(&bins),
        "--out",
        s(&dir.join("o")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("demo.xml:35:54: error[compose-binary]: subject binary: "),
        "{err}"
    );
    assert!(err.contains("console: not a 64-bit ELF file"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pack_errors_are_clear() {
    let dir = scratch("pack");
    let o = septum(&[
        "pack",
        "--composed",
        s(&dir),
        "--kernel",
        "/nonexistent",
        "--out",
        s(&dir.join("x")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("regions.json"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_diagnostics_go_to_stdout_as_one_array() {
    let dir = scratch("json");
    let bins = binaries(&dir);
    std::fs::write(bins.join("producer"), b"not an elf").unwrap();
    let o = septum(&[
        "compose",
        s(&demo_policy()),
        "--binaries",
        s(&bins),
        "--out",
        s(&dir.join("o")),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let first = &items.as_array().unwrap()[0];
    assert_eq!(first["rule"], "compose-binary");
    assert_eq!(first["line"], 19);
    assert!(String::from_utf8_lossy(&o.stderr).contains("error: 1 error, 0 warnings"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn iso_is_reproducible() {
    if Command::new("grub-mkrescue")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: grub-mkrescue not installed; ISO reproducibility not checked");
        return;
    }
    let dir = scratch("iso");
    let bins = binaries(&dir);
    let composed = dir.join("c");
    let o = septum(&[
        "compose",
        s(&demo_policy()),
        "--binaries",
        s(&bins),
        "--out",
        s(&composed),
    ]);
    assert!(o.status.success());
    let kernel = fake_kernel(&dir);
    let mut isos = Vec::new();
    for name in ["a", "b"] {
        let (elf, iso) = (
            dir.join(format!("{name}.elf")),
            dir.join(format!("{name}.iso")),
        );
        let o = septum(&[
            "pack",
            "--composed",
            s(&composed),
            "--kernel",
            s(&kernel),
            "--out",
            s(&elf),
            "--iso",
            s(&iso),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        isos.push(std::fs::read(&iso).unwrap());
        // File dates would differ between two runs if they were not pinned.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(isos[0].len() > 100_000);
    assert!(
        isos[0] == isos[1],
        "two packs of the same ELF gave different ISOs"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn segment_outside_the_image_window_is_located_at_the_binary() {
    let dir = scratch("window");
    let bins = binaries(&dir);
    let low = build::executable(
        0x1_0000,
        &[build::SegmentSpec {
            vaddr: 0x1_0000,
            data: &[0xf4],
            mem_size: 1,
            flags: 5,
        }],
    );
    std::fs::write(bins.join("console"), low).unwrap();
    let o = septum(&[
        "compose",
        s(&demo_policy()),
        "--binaries",
        s(&bins),
        "--out",
        s(&dir.join("o")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("demo.xml:35:54: error[compose-binary]: subject binary: "),
        "{err}"
    );
    assert!(
        err.contains(
            "bin/console: segment 0 at 0x10000-0x11000 lies outside the subject image window \
             0x200000-0x40000000"
        ),
        "{err}"
    );
    assert!(!dir.join("o").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn composition_limits_point_at_the_element() {
    let dir = scratch("limit");
    let bins = binaries(&dir);
    // A region the policy's memory estimate lets through but that finds no
    // 2 MiB-aligned room once the subjects' small regions are placed.
    let hardware = repo().join("hardware/bochs-tigerlake.xml");
    let policy = std::fs::read_to_string(demo_policy())
        .unwrap()
        .replace("../../../../hardware/bochs-tigerlake.xml", s(&hardware))
        .replace(
            "name=\"producer_ram\" size=\"0x2000\"",
            "name=\"producer_ram\" size=\"0xfc0_0000\"",
        );
    let policy_path = dir.join("big.xml");
    std::fs::write(&policy_path, policy).unwrap();
    let o = septum(&[
        "compose",
        s(&policy_path),
        "--binaries",
        s(&bins),
        "--out",
        s(&dir.join("o")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "big.xml:8:5: error[compose-limit]: region \"producer_ram\": out of physical memory: \
             no free 0xfc00000-byte range aligned to 0x200000 is left"
        ),
        "{err}"
    );
    assert!(!dir.join("o").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn symbolize_names_the_function_of_a_fault_rip() {
    let dir = scratch("symbolize");
    let bins = binaries(&dir);
    let with_symbols = build::with_sections(
        build::sample_subject(),
        &[],
        &[build::FunctionSpec {
            name: "_ZN7console4main17h0123456789abcdefE",
            address: 0x20_0000,
            size: 3,
        }],
    );
    std::fs::write(bins.join("console"), with_symbols).unwrap();
    let out = dir.join("composed");
    let composed = septum(&[
        "compose",
        demo_policy().to_str().unwrap(),
        "--binaries",
        bins.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(composed.status.success(), "{composed:?}");
    let map = std::fs::read_to_string(out.join("symbols/console.txt")).unwrap();
    assert_eq!(map, "# septum-symbols/1\nF 200000 200003 console::main\n");
    let log = dir.join("com2.txt");
    std::fs::write(
        &log,
        "septum: subject \"console\" fault: exception or NMI (exit reason 0) rip=0x200002 \
         vector=6 (#UD)\nseptum: subject \"producer\" fault: RDMSR (exit reason 31) \
         rip=0x200002\nhello\n",
    )
    .unwrap();
    let shown = septum(&["symbolize", out.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(shown.status.success(), "{shown:?}");
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        "septum: subject \"console\" fault: exception or NMI (exit reason 0) rip=0x200002 in \
         console::main+0x2 vector=6 (#UD)\nseptum: subject \"producer\" fault: RDMSR (exit \
         reason 31) rip=0x200002\nhello\n"
    );
    let missing = septum(&["symbolize", dir.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("has no symbols/ directory"),
        "{missing:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
