//! The VT-d tables of a composed system, read back from their bytes the way
//! an IOMMU walks them: the driver's device reaches exactly its domain's
//! window, every other device and address nothing; the interrupt table has
//! exactly the owned IRQs.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_compose::elf::build;
use septum_compose::system::Composition;
use septum_compose::{Composed, compose_policy};
use septum_kerncore::vtd::SourceId;

fn compose(text: &str) -> Composed {
    compose_with(text, |hardware| hardware)
}

/// Composes `text` on the valid fixtures' two-CPU machine, changed by
/// `machine`.
fn compose_with(text: &str, machine: impl Fn(String) -> String) -> Composed {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let mut files = septum_policy::MemoryFiles::new();
    let hardware =
        machine(std::fs::read_to_string(dir.join("hardware/two-cpus.xml")).expect("hardware"));
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let loaded = septum_policy::check_str("valid/vtd.xml", text, &files);
    let policy = loaded.valid_policy().unwrap_or_else(|| {
        panic!(
            "{:#?}",
            loaded
                .diagnostics
                .iter()
                .map(|d| septum_policy::diag::headline(d, &loaded.sources))
                .collect::<Vec<_>>()
        )
    });
    let binaries: HashMap<String, Vec<u8>> =
        [("driver".to_owned(), build::sample_subject())].into();
    compose_policy(policy, &binaries).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The byte at physical `address` of the composition's regions.
fn read_u64(c: &Composition, address: u64) -> u64 {
    let region = c
        .regions
        .iter()
        .find(|r| (r.start.get()..r.start.get() + r.size).contains(&address))
        .unwrap_or_else(|| panic!("no region at {address:#x}"));
    let offset = (address - region.start.get()) as usize;
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = region.content.get(offset + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(bytes)
}

/// Walks root, context and second-level tables for `source` and `iova`:
/// the physical address and whether writes are allowed, or `None` (blocked).
fn translate(c: &Composition, source: SourceId, iova: u64) -> Option<(u64, bool)> {
    let root = c.vtd.root_table.get() + u64::from(source.bus()) * 16;
    let root_entry = read_u64(c, root);
    if root_entry & 1 == 0 {
        return None;
    }
    let context = (root_entry & !0xfff) + u64::from(source.devfn()) * 16;
    let (low, high) = (read_u64(c, context), read_u64(c, context + 8));
    if low & 1 == 0 {
        return None;
    }
    let levels = match high & 7 {
        1 => 3,
        2 => 4,
        other => panic!("address width {other}"),
    };
    let mut table = low & !0xfff;
    let mut writable = true;
    for level in (0..levels).rev() {
        let index = (iova >> (12 + 9 * level)) & 0x1ff;
        let entry = read_u64(c, table + index * 8);
        if entry & 1 == 0 {
            return None;
        }
        writable &= entry & 2 != 0;
        table = entry & 0x000f_ffff_ffff_f000;
    }
    Some((table | (iova & 0xfff), writable))
}

const POLICY: &str = include_str!("../../policy/tests/valid/dma.xml");

#[test]
fn the_driver_device_reaches_only_its_window() {
    let composed = compose(POLICY);
    let c = &composed.composition;
    let nic = SourceId::new(0, 3, 0);
    let window = &c.vtd.domains[0].windows[0];
    assert_eq!(window.size, 0x4000);
    let buffer = c
        .regions
        .iter()
        .find(|r| r.name == "nic_dma")
        .expect("the DMA buffer");
    assert_eq!(window.physical, buffer.start);
    for page in 0..4 {
        assert_eq!(
            translate(c, nic, 0x10_0000 + page * 0x1000 + 8),
            Some((buffer.start.get() + page * 0x1000 + 8, true))
        );
    }
    // Outside the window, and every other device: nothing.
    assert_eq!(translate(c, nic, 0x10_4000), None);
    assert_eq!(translate(c, nic, 0x0f_f000), None);
    assert_eq!(translate(c, nic, buffer.start.get()), None);
    assert_eq!(translate(c, SourceId::new(0, 4, 0), 0x10_0000), None);
    assert_eq!(translate(c, SourceId::new(1, 3, 0), 0x10_0000), None);
    assert_eq!(c.vtd.device_name(nic), Some("nic"));
    // The tables are the kernel's: the IOMMU pages are in its page tables
    // (checked by the composer's layers step for subjects).
    assert_eq!(c.vtd.iommus.len(), 1);
}

#[test]
fn a_read_only_window_is_read_only() {
    let composed = compose(&POLICY.replace(
        "virtualAddress=\"16#0010_0000#\" writable=\"true\"",
        "virtualAddress=\"16#0010_0000#\"",
    ));
    let c = &composed.composition;
    let (_, writable) = translate(c, SourceId::new(0, 3, 0), 0x10_0000).expect("mapped");
    assert!(!writable);
}

#[test]
fn the_interrupt_table_holds_exactly_the_owned_irqs() {
    let composed = compose(POLICY);
    let c = &composed.composition;
    let entry = |index: u64| {
        let at = c.vtd.interrupt_table.get() + index * 16;
        (read_u64(c, at), read_u64(c, at + 8))
    };
    // The driver owns nic's line IRQ 11 through the I/O APIC (source id
    // 0xf0f8), level-triggered, vector 32 + 11, on CPU 0 (APIC id 0).
    let (low, high) = entry(11);
    assert_eq!(low, 1 | 1 << 4 | 43 << 16);
    assert_eq!(high, 0xf0f8 | 1 << 18);
    for index in (0..256).filter(|&i| i != 11) {
        assert_eq!(entry(index), (0, 0), "entry {index}");
    }
}

#[test]
fn reserved_memory_is_mapped_one_to_one_only_when_asked() {
    // An RMRR at 0xe0000 that nic uses.
    let machine = |hardware: String| {
        hardware
            .replacen(
                "  </memory>",
                "    <reservedMemory name=\"rmrr\" physicalAddress=\"16#000e_0000#\" \
                 size=\"16#1800#\"/>\n  </memory>",
                1,
            )
            .replacen(
                "<irq name=\"irq\" number=\"11\"/>",
                "<irq name=\"irq\" number=\"11\"/>\n      <reservedMemory ref=\"rmrr\"/>",
                1,
            )
    };
    let nic = SourceId::new(0, 3, 0);
    let plain = compose_with(POLICY, machine);
    assert_eq!(translate(&plain.composition, nic, 0xe_0000), None);
    let asked = compose_with(
        &POLICY.replace(
            "<device logical=\"nic\" physical=\"nic\"/>\n      </devices>\n    </domain>",
            "<device logical=\"nic\" physical=\"nic\" mapReservedMemory=\"true\"/>\n      \
             </devices>\n    </domain>",
        ),
        machine,
    );
    let c = &asked.composition;
    // Both pages the 0x1800 bytes touch, read-write, 1:1.
    assert_eq!(translate(c, nic, 0xe_0010), Some((0xe_0010, true)));
    assert_eq!(translate(c, nic, 0xe_1000), Some((0xe_1000, true)));
    assert_eq!(translate(c, nic, 0xe_2000), None);
    // The policy's window is still the domain's first.
    assert_eq!(c.vtd.domains[0].windows[0].address.get(), 0x10_0000);
    assert_eq!(c.vtd.domains[0].windows.len(), 2);
}
