//! The crash-audit reader (`<crashAudit>`, `septum_compose::crash_reader`):
//! the region is mapped into the reader only, read-only, not executable,
//! uncached in both layers, listed on its info page and in the report; the
//! layer check accepts exactly that mapping and refuses a writable,
//! executable, cached, misplaced or foreign one.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_abi::VirtAddr;
use septum_abi::info::ResourceKind;
use septum_compose::elf::build;
use septum_compose::input::{CrashAuditGrantInput, SystemInput};
use septum_compose::layers::check;
use septum_compose::paging::{self, Format, ept, ia32e};
use septum_compose::system::{Composition, Region};
use septum_compose::{compose_input, from_policy, report};

const CRASH_VA: u64 = 0x6800_0000;
const ADDRESS: u64 = 0x000f_ffff_ffff_f000;

/// The demo fixture with the console (subject 1) as the crash-audit
/// reader at `CRASH_VA`.
fn demo_with_reader() -> (SystemInput, Composition) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml");
    let loaded = septum_policy::check(&path);
    let bins: HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    let mut input = from_policy::system_input(loaded.valid_policy().unwrap(), &bins).unwrap();
    input.subjects[1].crash_audit = Some(CrashAuditGrantInput {
        logical: "crash".into(),
        virtual_address: VirtAddr(CRASH_VA),
    });
    let mut c = compose_input(&input).unwrap().composition;
    // Whole entries are read from `content`; the composer trims trailing
    // zero bytes.
    for r in &mut c.regions {
        r.content.resize(r.size as usize, 0);
    }
    (input, c)
}

fn table_region(c: &mut Composition, root_or_name: Result<u64, String>) -> &mut Region {
    c.regions
        .iter_mut()
        .find(|r| match &root_or_name {
            Ok(root) => r.start.get() == *root,
            Err(name) => r.name == *name,
        })
        .unwrap()
}

fn ept_leaf(c: &Composition, s: usize, gpa: u64) -> Option<u64> {
    let root = c.subjects[s].eptp & !0xfff;
    let r = c.regions.iter().find(|r| r.start.get() == root).unwrap();
    paging::translate(Format::Ept, &r.content, root, gpa).map(|t| t.leaf)
}

fn guest_leaf(c: &Composition, s: usize, va: u64) -> u64 {
    let name = format!("{}|pt", c.subjects[s].name);
    let r = c.regions.iter().find(|r| r.name == name).unwrap();
    paging::translate(Format::Ia32e, &r.content, c.subjects[s].guest.cr3.get(), va)
        .unwrap()
        .leaf
}

/// Replace the (unique) 8-byte entry `old` in `region` by `new(old)`.
fn patch_entry(region: &mut Region, old: u64, new: impl Fn(u64) -> u64) {
    let at = region
        .content
        .chunks_exact(8)
        .position(|e| u64::from_le_bytes(e.try_into().unwrap()) == old)
        .expect("entry present")
        * 8;
    region.content[at..at + 8].copy_from_slice(&new(old).to_le_bytes());
}

fn patch_ept(c: &mut Composition, s: usize, gpa: u64, new: impl Fn(u64) -> u64) {
    let leaf = ept_leaf(c, s, gpa).unwrap();
    let root = c.subjects[s].eptp & !0xfff;
    patch_entry(table_region(c, Ok(root)), leaf, new);
}

fn violations(input: &SystemInput, c: &Composition) -> String {
    let report = check(input, c);
    assert!(!report.violations.is_empty(), "not detected");
    report.violations.join("\n")
}

#[test]
fn the_reader_alone_maps_the_region_read_only_and_uncached() {
    let (input, c) = demo_with_reader();
    let report = check(&input, &c);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let ca = c.crash_audit;
    for page in (0..ca.size).step_by(0x1000) {
        let leaf = ept_leaf(&c, 1, CRASH_VA + page).expect("mapped in EPT");
        assert_eq!(leaf & ADDRESS, ca.start.get() + page);
        assert_ne!(leaf & ept::READ, 0);
        assert_eq!(
            leaf & (ept::WRITE | ept::EXECUTE),
            0,
            "read-only, no execute"
        );
        assert_eq!(
            (leaf >> ept::MEMORY_TYPE_SHIFT) & 7,
            0,
            "EPT memory type UC"
        );
        let guest = guest_leaf(&c, 1, CRASH_VA + page);
        let uncached = ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH;
        assert_eq!(guest & uncached, uncached, "guest PCD|PWT");
        assert_eq!(guest & ia32e::WRITABLE, 0);
        assert_ne!(guest & ia32e::EXECUTE_DISABLE, 0);
    }
    // The producer does not see it at any address.
    assert!(ept_leaf(&c, 0, CRASH_VA).is_none());
    let root = c.subjects[0].eptp & !0xfff;
    let r = c.regions.iter().find(|r| r.start.get() == root).unwrap();
    let leaves = paging::leaves(Format::Ept, &r.content, root);
    assert!(
        leaves
            .iter()
            .all(|&(_, output, size, _)| output + size <= ca.start.get() || output >= ca.end()),
        "producer's EPT reaches the crash-audit region"
    );
    // On the info page, by name.
    let resource = c.subjects[1]
        .resources
        .iter()
        .find(|r| r.name == "crash")
        .unwrap();
    assert_eq!(resource.kind, ResourceKind::CrashAudit);
    assert_eq!((resource.address, resource.size), (CRASH_VA, ca.size));
    assert!(
        c.subjects[0]
            .resources
            .iter()
            .all(|r| r.kind != ResourceKind::CrashAudit)
    );
    // In the report.
    let text = report::text_report(&c);
    assert!(
        text.contains(
            "    crash-audit reader: 0x0000000068000000 -> 0x0000000008000000     0x2000 r--    UC      crash audit     crash"
        ),
        "{text}"
    );
}

#[test]
fn the_layer_check_refuses_any_other_mapping_of_the_region() {
    // Writable in EPT.
    let (input, mut c) = demo_with_reader();
    patch_ept(&mut c, 1, CRASH_VA, |e| e | ept::WRITE);
    let v = violations(&input, &c);
    assert!(
        v.contains("crash-audit region \"crash\" mapped rw-, granted read-only"),
        "{v}"
    );
    // Executable in EPT.
    let (input, mut c) = demo_with_reader();
    patch_ept(&mut c, 1, CRASH_VA, |e| e | ept::EXECUTE);
    let v = violations(&input, &c);
    assert!(
        v.contains("crash-audit region \"crash\" mapped r-x, granted read-only"),
        "{v}"
    );
    // Cached in EPT.
    let (input, mut c) = demo_with_reader();
    patch_ept(&mut c, 1, CRASH_VA, |e| e | (6 << ept::MEMORY_TYPE_SHIFT));
    let v = violations(&input, &c);
    assert!(
        v.contains("crash-audit region \"crash\" has EPT memory type 6, not UC"),
        "{v}"
    );
    // Cached in the guest tables.
    let (input, mut c) = demo_with_reader();
    let leaf = guest_leaf(&c, 1, CRASH_VA);
    patch_entry(table_region(&mut c, Err("console|pt".into())), leaf, |e| {
        e & !ia32e::CACHE_DISABLE
    });
    let v = violations(&input, &c);
    assert!(
        v.contains("virtual page 0x68000000 maps the crash-audit region without PCD and PWT"),
        "{v}"
    );
    // Granted elsewhere than where it is mapped.
    let (mut input, c) = demo_with_reader();
    input.subjects[1].crash_audit = Some(CrashAuditGrantInput {
        logical: "crash".into(),
        virtual_address: VirtAddr(CRASH_VA + 0x10_0000),
    });
    let v = violations(&input, &c);
    assert!(
        v.contains("crash-audit region \"crash\" is not granted at this address"),
        "{v}"
    );
    // A subject that is not the reader (the input no longer grants it).
    let (mut input, c) = demo_with_reader();
    input.subjects[1].crash_audit = None;
    let v = violations(&input, &c);
    assert!(
        v.contains("subject \"console\": EPT page 0x68000000 -> 0x8000000: host page lies in the crash-audit region, which this subject does not read"),
        "{v}"
    );
}

#[test]
fn an_overlap_with_another_mapping_is_refused_by_name() {
    let (mut input, _) = demo_with_reader();
    // The console maps "table" at 0x6000_0000 in the demo fixture.
    input.subjects[1].crash_audit = Some(CrashAuditGrantInput {
        logical: "crash".into(),
        virtual_address: VirtAddr(0x6000_0000),
    });
    let Err(error) = compose_input(&input) else {
        panic!("an overlapping crash-audit mapping composed");
    };
    let error = format!("{error:?}");
    assert!(
        error.contains(
            "subject \\\"console\\\": crash (crash audit) at 0x60000000-0x60002000 overlaps table (memory)"
        ),
        "{error}"
    );
}
