//! Layer consistency, from the bytes: each subject's guest page tables,
//! walked through its EPT, agree with the EPT; the EPT reaches only the
//! subject's own memory and its grants (see `septum_compose::layers`).
//! Checked on the demo fixture and on generated policies of several shapes,
//! and shown to catch each kind of corruption.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_compose::elf::build;
use septum_compose::input::{Caching, DeviceGrantInput, DeviceMemoryGrantInput, SystemInput};
use septum_compose::layers::{LayerReport, check};
use septum_compose::paging::{self, Format, ept, ia32e};
use septum_compose::system::{Composition, MappingKind, Region};
use septum_compose::{compose_input, from_policy, testgen};
use septum_policy::MemoryFiles;

fn demo() -> (SystemInput, Composition) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml");
    let loaded = septum_policy::check(&path);
    let bins: HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    let input = from_policy::system_input(loaded.valid_policy().unwrap(), &bins).unwrap();
    let composition = compose_input(&input).unwrap().composition;
    (input, composition)
}

fn generated(subjects: usize, channels: usize, cpus: usize) -> (SystemInput, Composition) {
    let xml = testgen::policy_xml(subjects, channels, cpus);
    let loaded = septum_policy::check_str("gen.xml", &xml, &MemoryFiles::new());
    let policy = loaded.valid_policy().expect("generated policy is valid");
    let input = from_policy::system_input(policy, &testgen::binaries()).unwrap();
    let composition = compose_input(&input).unwrap().composition;
    (input, composition)
}

/// The layers agree, and the check looked at every page: the EPT holds
/// exactly the guest's pages plus its table pages, and those are exactly the
/// subjects' page-table regions.
fn assert_consistent(input: &SystemInput, c: &Composition) -> LayerReport {
    let report = check(input, c);
    assert!(
        report.violations.is_empty(),
        "{}",
        report.violations.join("\n")
    );
    assert_eq!(report.subjects, c.subjects.len());
    let table_region_pages: u64 = c
        .subjects
        .iter()
        .flat_map(|s| &s.mappings)
        .filter(|m| m.kind == MappingKind::PageTables)
        .map(|m| m.size / 4096)
        .sum();
    assert_eq!(report.table_pages as u64, table_region_pages);
    assert_eq!(report.ept_pages, report.guest_pages + report.table_pages);
    assert!(report.guest_pages >= 5 * c.subjects.len());
    report
}

#[test]
fn demo_layers_agree() {
    let (input, c) = demo();
    let report = assert_consistent(&input, &c);
    // Per subject: text, rodata, 2 data pages, info, 4 stack pages, then
    // producer: ram (2), table, channel (2); console: table, channel (2).
    assert_eq!(report.guest_pages, (9 + 5) + (9 + 3));
}

#[test]
fn generated_layers_agree() {
    for (subjects, channels, cpus) in [(2, 0, 1), (3, 1, 1), (6, 12, 2), (9, 30, 3), (40, 120, 4)] {
        let (input, c) = generated(subjects, channels, cpus);
        assert_consistent(&input, &c);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
    #[test]
    fn any_generated_shape_has_consistent_layers(
        subjects in 2usize..12,
        channels in 0usize..40,
        cpus in 1usize..5,
    ) {
        let (input, c) = generated(subjects, channels, cpus);
        let report = check(&input, &c);
        proptest::prop_assert!(report.violations.is_empty(), "{}", report.violations.join("\n"));
        proptest::prop_assert_eq!(report.ept_pages, report.guest_pages + report.table_pages);
    }
}

// ---- The check catches what it claims to catch. ----

fn region_mut<'a>(c: &'a mut Composition, name: &str) -> &'a mut Region {
    c.regions
        .iter_mut()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no region {name}"))
}

fn region<'a>(c: &'a Composition, name: &str) -> &'a Region {
    c.regions.iter().find(|r| r.name == name).unwrap()
}

/// Replace the (unique) 8-byte entry `old` in `region` by `new(old)`.
fn patch_entry(region: &mut Region, old: u64, new: impl Fn(u64) -> u64) {
    region.content.resize(region.size as usize, 0);
    let at = region
        .content
        .chunks_exact(8)
        .position(|e| u64::from_le_bytes(e.try_into().unwrap()) == old)
        .expect("entry present")
        * 8;
    region.content[at..at + 8].copy_from_slice(&new(old).to_le_bytes());
}

/// The EPT leaf of subject `s` for guest-physical `gpa`, read from the bytes.
fn ept_leaf(c: &Composition, s: usize, gpa: u64) -> (String, u64) {
    let root = c.subjects[s].eptp & !0xfff;
    let r = c.regions.iter().find(|r| r.start.get() == root).unwrap();
    let t = paging::translate(Format::Ept, &r.content, root, gpa).unwrap();
    (r.name.clone(), t.leaf)
}

/// The guest leaf of subject `s` for virtual `va`, read from the bytes.
fn guest_leaf(c: &Composition, s: usize, va: u64) -> (String, u64) {
    let name = format!("{}|pt", c.subjects[s].name);
    let r = region(c, &name);
    let t =
        paging::translate(Format::Ia32e, &r.content, c.subjects[s].guest.cr3.get(), va).unwrap();
    (name, t.leaf)
}

fn violations_after(mutate: impl FnOnce(&mut Composition)) -> String {
    let (input, mut c) = demo();
    mutate(&mut c);
    let report = check(&input, &c);
    assert!(!report.violations.is_empty(), "corruption not detected");
    report.violations.join("\n")
}

const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
const TEXT: u64 = 0x20_0000;
const INFO: u64 = 0x1_0000;

#[test]
fn detects_rights_that_differ_between_layers() {
    let v = violations_after(|c| {
        let (name, leaf) = ept_leaf(c, 0, TEXT);
        patch_entry(region_mut(c, &name), leaf, |e| e | ept::WRITE);
    });
    assert!(
        v.contains(
            "subject \"producer\": virtual page 0x200000: guest tables give r-x, EPT gives rwx"
        ),
        "{v}"
    );
    let v = violations_after(|c| {
        let (name, leaf) = guest_leaf(c, 1, INFO);
        patch_entry(region_mut(c, &name), leaf, |e| e | ia32e::WRITABLE);
    });
    assert!(
        v.contains(
            "subject \"console\": virtual page 0x10000: guest tables give rw-, EPT gives r--"
        ),
        "{v}"
    );
}

#[test]
fn detects_a_virtual_address_that_is_not_its_guest_physical() {
    let v = violations_after(|c| {
        let (name, leaf) = guest_leaf(c, 0, INFO);
        patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | TEXT);
    });
    assert!(
        v.contains("virtual page 0x10000 maps guest-physical 0x200000"),
        "{v}"
    );
    assert!(v.contains("guest tables give r--, EPT gives r-x"), "{v}");
    // The info page's EPT entry is now used by nobody.
    assert!(
        v.contains("EPT maps guest-physical 0x10000, which is neither a guest mapping"),
        "{v}"
    );
}

#[test]
fn detects_missing_accessed_or_dirty_bits() {
    for bit in [ia32e::ACCESSED, ia32e::DIRTY] {
        let v = violations_after(|c| {
            let (name, leaf) = guest_leaf(c, 1, TEXT);
            patch_entry(region_mut(c, &name), leaf, |e| e & !bit);
        });
        assert!(
            v.contains("subject \"console\": guest table ") && v.contains("Accessed/Dirty clear"),
            "{v}"
        );
    }
    // A non-leaf entry too: the root's first entry.
    let v = violations_after(|c| {
        region_mut(c, "producer|pt").content[0] &= !(ia32e::ACCESSED as u8);
    });
    assert!(v.contains("entry 0 is"), "{v}");
}

#[test]
fn detects_guest_tables_outside_ept() {
    let v = violations_after(|c| {
        let pt = region_mut(c, "producer|pt");
        let root = u64::from_le_bytes(pt.content[..8].try_into().unwrap());
        pt.content[..8].copy_from_slice(&((root & !ADDRESS) | 0x7000_0000).to_le_bytes());
    });
    assert!(
        v.contains(
            "guest page-table page at guest-physical 0x70000000 is not readable through EPT"
        ),
        "{v}"
    );
    // Everything below the broken pointer is gone from the guest view.
    assert!(
        v.contains("virtual page 0x200000") || v.contains("neither a guest mapping"),
        "{v}"
    );
}

#[test]
fn detects_writable_or_executable_page_tables_in_ept() {
    let v = violations_after(|c| {
        let cr3 = c.subjects[0].guest.cr3.get();
        let (name, leaf) = ept_leaf(c, 0, cr3);
        patch_entry(region_mut(c, &name), leaf, |e| e | ept::WRITE);
    });
    assert!(
        v.contains("EPT maps guest page-table page") && v.contains("as rw-"),
        "{v}"
    );
    assert!(v.contains("own page-table page mapped rw-"), "{v}");
}

#[test]
fn detects_another_subjects_private_memory() {
    let v = violations_after(|c| {
        let stack = region(c, "console|stack").start.get();
        let (name, leaf) = ept_leaf(c, 0, INFO);
        patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | stack);
    });
    assert!(
        v.contains("subject \"producer\": EPT page 0x10000 -> 0x")
            && v.contains("lies in private region \"console|stack\" of another subject"),
        "{v}"
    );
}

#[test]
fn detects_kernel_and_table_regions() {
    for target in [
        "kernel|pt",
        "kernel|vmxon|0",
        "producer|vmcs",
        "console|ept",
        "console|pt",
    ] {
        let v = violations_after(|c| {
            let at = region(c, target).start.get();
            let (name, leaf) = ept_leaf(c, 0, INFO);
            patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | at);
        });
        assert!(v.contains(&format!("\"{target}\"")), "{target}: {v}");
    }
    let v = violations_after(|c| {
        let (name, leaf) = ept_leaf(c, 0, INFO);
        patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | 0x10_0000);
    });
    assert!(v.contains("host page lies in kernel|text"), "{v}");
    let v = violations_after(|c| {
        let (name, leaf) = ept_leaf(c, 0, INFO);
        patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | 0x7000_0000);
    });
    assert!(v.contains("host page lies in no composed region"), "{v}");
}

#[test]
fn detects_grants_exceeded_or_missing() {
    // The console may only read the shared table.
    let v = violations_after(|c| {
        let (name, leaf) = ept_leaf(c, 1, 0x6000_0000);
        patch_entry(region_mut(c, &name), leaf, |e| e | ept::WRITE);
    });
    assert!(
        v.contains("memory region \"shared_table\" mapped rw-, granted r--"),
        "{v}"
    );
    // The console reads the channel; it may not write it.
    let v = violations_after(|c| {
        let (name, leaf) = ept_leaf(c, 1, 0x5000_0000);
        patch_entry(region_mut(c, &name), leaf, |e| e | ept::WRITE);
    });
    assert!(v.contains("channel \"log\" mapped rw- for a reader"), "{v}");
    // The producer's own RAM, seen by the console instead of its table.
    let v = violations_after(|c| {
        let ram = region(c, "producer_ram").start.get();
        let (name, leaf) = ept_leaf(c, 1, 0x6000_0000);
        patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | ram);
    });
    assert!(
        v.contains("memory region \"producer_ram\" is not granted at this address"),
        "{v}"
    );
}

// ---- Device memory (MMIO). ----

const MMIO_VA: u64 = 0x7000_0000;
const MMIO_PA: u64 = 0xfeb0_0000;

/// The demo with one page of UC device memory granted to the console,
/// writable, at `MMIO_VA`.
fn demo_with_mmio() -> (SystemInput, Composition) {
    let (mut input, _) = demo();
    input.subjects[1].devices.push(DeviceGrantInput {
        logical: "dev".into(),
        device: 0,
        io_ports: Vec::new(),
        irqs: Vec::new(),
        memory: vec![DeviceMemoryGrantInput {
            logical: "regs".into(),
            physical: septum_abi::PhysAddr(MMIO_PA),
            size: 0x1000,
            caching: Caching::Uc,
            virtual_address: septum_abi::VirtAddr(MMIO_VA),
            writable: true,
            executable: false,
        }],
    });
    let mut c = compose_input(&input).unwrap().composition;
    // The composer trims trailing zero bytes of each region; the device
    // page's EPT leaf ends in zero bytes at the end of its region, and the
    // helpers above read whole entries from `content`.
    for r in &mut c.regions {
        r.content.resize(r.size as usize, 0);
    }
    (input, c)
}

#[test]
fn device_memory_is_mapped_uncached_in_both_layers_for_its_owner_only() {
    let (input, c) = demo_with_mmio();
    assert_consistent(&input, &c);
    let (_, leaf) = ept_leaf(&c, 1, MMIO_VA);
    assert_eq!(leaf & ADDRESS, MMIO_PA);
    assert_eq!(
        (leaf >> ept::MEMORY_TYPE_SHIFT) & 7,
        0,
        "EPT memory type UC"
    );
    assert_ne!(leaf & ept::WRITE, 0);
    assert_eq!(leaf & ept::EXECUTE, 0);
    let (_, guest) = guest_leaf(&c, 1, MMIO_VA);
    let uncached = ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH;
    assert_eq!(guest & uncached, uncached, "guest PCD|PWT");
    // The producer does not see it.
    let root = c.subjects[0].eptp & !0xfff;
    let r = c.regions.iter().find(|r| r.start.get() == root).unwrap();
    assert!(paging::translate(Format::Ept, &r.content, root, MMIO_VA).is_none());
}

fn mmio_violations_after(
    mutate_input: impl FnOnce(&mut SystemInput),
    mutate: impl FnOnce(&mut Composition),
) -> String {
    let (mut input, mut c) = demo_with_mmio();
    mutate_input(&mut input);
    mutate(&mut c);
    let report = check(&input, &c);
    assert!(!report.violations.is_empty(), "corruption not detected");
    report.violations.join("\n")
}

#[test]
fn detects_device_memory_cached_ungranted_or_elsewhere() {
    // Write-back in EPT.
    let v = mmio_violations_after(
        |_| {},
        |c| {
            let (name, leaf) = ept_leaf(c, 1, MMIO_VA);
            patch_entry(region_mut(c, &name), leaf, |e| {
                e | (6 << ept::MEMORY_TYPE_SHIFT)
            });
        },
    );
    assert!(
        v.contains("device memory \"regs\" has EPT memory type 6, the device's is 0 (UC)"),
        "{v}"
    );
    // Cacheable in the guest tables.
    let v = mmio_violations_after(
        |_| {},
        |c| {
            let (name, leaf) = guest_leaf(c, 1, MMIO_VA);
            patch_entry(region_mut(c, &name), leaf, |e| e & !ia32e::CACHE_DISABLE);
        },
    );
    assert!(
        v.contains("virtual page 0x70000000 maps UC device memory without PCD and PWT"),
        "{v}"
    );
    // Mapped executable.
    let v = mmio_violations_after(
        |_| {},
        |c| {
            let (name, leaf) = ept_leaf(c, 1, MMIO_VA);
            patch_entry(region_mut(c, &name), leaf, |e| e | ept::EXECUTE);
        },
    );
    assert!(
        v.contains("device memory \"regs\" mapped rwx, granted rw-"),
        "{v}"
    );
    // Not granted (the input no longer gives it): no composed region.
    let v = mmio_violations_after(|input| input.subjects[1].devices.clear(), |_| {});
    assert!(v.contains("host page lies in no composed region"), "{v}");
    // Another subject's EPT pointing at it.
    let v = mmio_violations_after(
        |_| {},
        |c| {
            let (name, leaf) = ept_leaf(c, 0, 0x4000_0000);
            patch_entry(region_mut(c, &name), leaf, |e| (e & !ADDRESS) | MMIO_PA);
        },
    );
    assert!(
        v.contains("subject \"producer\": EPT page 0x40000000 -> 0xfeb00000: host page lies in no composed region"),
        "{v}"
    );
}
