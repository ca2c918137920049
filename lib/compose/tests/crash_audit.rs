//! The crash-audit region of the demo policy: placed in the middle of RAM,
//! sized for the plan's CPUs, outside every loaded region and every
//! `PT_LOAD` segment of the packed ELF, and described in the spec, the
//! report and regions.json.

use std::collections::HashMap;
use std::path::PathBuf;

use object::read::elf::{FileHeader, ProgramHeader};
use septum_abi::crash::region_size;
use septum_compose::alloc::KERNEL_WINDOWS;
use septum_compose::elf::build;
use septum_compose::{Composed, compose_policy_with_sources, crash_audit, output, pack, report};

fn binaries() -> HashMap<String, Vec<u8>> {
    ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect()
}

fn demo() -> (Composed, septum_policy::SourceMap) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml");
    let loaded = septum_policy::check(&path);
    let policy = loaded.valid_policy().unwrap();
    let composed = compose_policy_with_sources(policy, &loaded.sources, &binaries())
        .unwrap_or_else(|e| panic!("{e:?}"));
    (composed, loaded.sources)
}

#[test]
fn the_region_is_in_the_middle_of_ram_and_sized_for_the_cpus() {
    let (composed, sources) = demo();
    let c = &composed.composition;
    let ca = c.crash_audit;
    assert_eq!(ca.slot_count, c.cpu_count);
    assert_eq!(Some(ca.size), region_size(c.cpu_count));
    assert_eq!(ca.size, 0x2000, "one header page + one page of slots");
    // The Bochs hardware's highest allocatable block ends at 0xfff0000;
    // the region sits at the 2 MiB boundary below the middle of its free
    // range, far from the top that BIOS and GRUB overwrite at every boot.
    assert_eq!(ca.start.get(), 0x0800_0000);
    assert!(ca.start.is_aligned(0x20_0000));
    assert!(ca.end() + 0x20_0000 <= 0x0fff_0000);
    assert_eq!(ca.policy_hash, crash_audit::policy_hash_of(&sources));
    assert_ne!(ca.policy_hash, 0);
    assert!(sources.files().len() >= 2, "policy and hardware hashed");
}

#[test]
fn the_region_is_outside_every_loaded_region_and_segment() {
    let (composed, _) = demo();
    let c = &composed.composition;
    let ca = c.crash_audit;
    let overlaps = |start: u64, end: u64| start < ca.end() && ca.start.get() < end;
    for r in &c.regions {
        assert!(!overlaps(r.start.get(), r.end()), "{}", r.name);
        assert_ne!(r.name, crash_audit::NAME);
    }
    for (name, w) in KERNEL_WINDOWS {
        assert!(!overlaps(w.start.get(), w.end()), "{name}");
    }
    let (regions, blob) = output::regions(c);
    assert!(regions.regions.iter().all(|r| r.name != crash_audit::NAME));
    let elf = pack::pack("kernel", &fake_kernel(), &regions, &blob).unwrap();
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&*elf).unwrap();
    let e = object::LittleEndian;
    for ph in header.program_headers(e, &*elf).unwrap() {
        let start = ph.p_paddr(e);
        assert!(
            !overlaps(start, start + ph.p_memsz(e)),
            "PT_LOAD at {start:#x}"
        );
    }
}

#[test]
fn spec_report_and_regions_file_describe_it() {
    let (composed, _) = demo();
    let c = &composed.composition;
    let ca = c.crash_audit;
    let spec = &composed.spec;
    assert!(
        spec.contains(&format!(
            "pub static CRASH_AUDIT: septum_kerncore::spec::CrashAuditSpec = \
             septum_kerncore::spec::CrashAuditSpec {{ start: septum_abi::PhysAddr({:#x}), size: \
             {:#x}, slot_count: 1, policy_hash: {:#x} }};",
            ca.start.get(),
            ca.size,
            ca.policy_hash
        )),
        "{spec}"
    );
    assert!(spec.contains(&format!(
        "ImageRegion {{ name: \"kernel|crash_audit\", start: septum_abi::PhysAddr({:#x}), size: \
         0x2000 }}",
        ca.start.get()
    )));

    let text = report::text_report(c);
    let line = format!(
        "Crash audit {:#x}-{:#x} (0x2000 bytes, 1 record slot(s), UC, not loaded), policy hash \
         {:#018x}",
        ca.start.get(),
        ca.end(),
        ca.policy_hash
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("UC      crash_audit        kernel|crash_audit"));

    let json = report::json_report(c);
    assert_eq!(json["crash_audit"]["slot_count"], 1);
    assert_eq!(json["crash_audit"]["loaded"], false);
    assert_eq!(
        json["policy_hash"].as_str().unwrap(),
        format!("{:#018x}", ca.policy_hash)
    );

    let dir = std::env::temp_dir().join(format!("septum-crash-audit-{}", std::process::id()));
    output::write_dir(&dir, c, spec).unwrap();
    let (file, _) = output::read_regions(&dir).unwrap();
    let record = file.crash_audit.unwrap();
    assert_eq!((record.start, record.size), (ca.start.get(), ca.size));
    assert_eq!(record.caching, "UC");
    assert_eq!(record.policy_hash, format!("{:#018x}", ca.policy_hash));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_old_regions_file_without_the_region_still_reads() {
    let json = r#"{"format":"septum-regions/1","system":"x","regions":[]}"#;
    let file: output::RegionsFile = serde_json::from_str(json).unwrap();
    assert_eq!(file.crash_audit, None);
}

fn fake_kernel() -> Vec<u8> {
    build::executable(
        0x10_0000,
        &[build::SegmentSpec {
            vaddr: 0x10_0000,
            data: &[0x90; 16],
            mem_size: 16,
            flags: 5,
        }],
    )
}
