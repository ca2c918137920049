//! The composer on a small real policy (tests/fixtures/demo.xml, with the
//! repository's Bochs hardware description): every table is read back from
//! its bytes and compared with what the policy grants, nothing more.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use septum_abi::TscCycles;
use septum_abi::info::{FLAG_CHANNEL_READER, FLAG_CHANNEL_WRITER, FLAG_WRITABLE, ResourceKind};
use septum_abi::layout::{KERNEL_DATA, KERNEL_RODATA, KERNEL_TEXT};
use septum_compose::bitmaps::io_port_exits;
use septum_compose::elf::build;
use septum_compose::paging::{Format, MemoryType, Rights, ia32e, leaves, small_pages};
use septum_compose::system::{Composition, MappingKind, Region};
use septum_compose::{Composed, compose_policy, info, output, pack, report};
use septum_kerncore::spec::{KernelAction, SourceEvent};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

fn binaries() -> HashMap<String, Vec<u8>> {
    ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect()
}

fn demo() -> Composed {
    let loaded = septum_policy::check(&fixture("fixtures/demo.xml"));
    let text: String = loaded
        .diagnostics
        .iter()
        .map(|d| septum_policy::diag::render_text(d, &loaded.sources))
        .collect();
    let policy = loaded.valid_policy().unwrap_or_else(|| panic!("{text}"));
    compose_policy(policy, &binaries()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn bytes(region: &Region) -> Vec<u8> {
    let mut b = region.content.clone();
    b.resize(region.size as usize, 0);
    b
}

fn region<'a>(c: &'a Composition, name: &str) -> &'a Region {
    c.regions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no region {name}"))
}

/// Expand leaves to 4 KiB pages: input page -> (output page, raw entry).
fn pages(format: Format, data: &[u8], base: u64) -> Vec<(u64, u64, u64)> {
    small_pages(&leaves(format, data, base))
        .into_iter()
        .map(|(input, (output, leaf))| (input, output, leaf))
        .collect()
}

#[test]
fn guest_tables_and_ept_map_exactly_the_grants() {
    let c = demo().composition;
    for s in &c.subjects {
        let pt = region(&c, &format!("{}|pt", s.name));
        let guest = pages(Format::Ia32e, &bytes(pt), s.guest.cr3.get());
        let mut expected = BTreeSet::new();
        for m in s.mappings.iter().filter(|m| m.virtual_address.is_some()) {
            for off in (0..m.size).step_by(4096) {
                let va = m.virtual_address.unwrap().get() + off;
                expected.insert((va, va, m.writable, m.executable));
            }
        }
        let got: BTreeSet<_> = guest
            .iter()
            .map(|&(va, gpa, leaf)| {
                assert_eq!(leaf & 0x64, 0x60, "A and D set, U/S clear at {va:#x}");
                let r = Rights::from_leaf(Format::Ia32e, leaf);
                (va, gpa, r.writable, r.executable)
            })
            .collect();
        assert_eq!(got, expected, "guest tables of {}", s.name);
        // The tables themselves are not reachable through virtual addresses.
        assert!(
            guest
                .iter()
                .all(|&(va, _, _)| va < s.guest.cr3.get() || va >= s.guest.cr3.get() + pt.size)
        );

        let ept_root = s.eptp & !0xfff;
        assert_eq!(s.eptp & 0xfff, 0x1e, "WB, 4-level walk");
        let ept_region = c
            .regions
            .iter()
            .find(|r| r.start.get() == ept_root)
            .unwrap();
        let mut expected = BTreeSet::new();
        for m in &s.mappings {
            let mt = c.regions[m.region].caching.memory_type();
            for off in (0..m.size).step_by(4096) {
                expected.insert((
                    m.guest_physical.get() + off,
                    m.physical.get() + off,
                    m.writable,
                    m.executable,
                    mt,
                ));
            }
        }
        let got: BTreeSet<_> = pages(Format::Ept, &bytes(ept_region), ept_root)
            .into_iter()
            .map(|(gpa, hpa, leaf)| {
                let r = Rights::from_leaf(Format::Ept, leaf);
                assert_eq!(leaf & 1, 1, "readable");
                (gpa, hpa, r.writable, r.executable, r.memory_type)
            })
            .collect();
        assert_eq!(got, expected, "EPT of {}", s.name);
        let tables = s
            .mappings
            .iter()
            .find(|m| m.kind == MappingKind::PageTables)
            .unwrap();
        assert!(!tables.writable && !tables.executable);
        assert_eq!(tables.guest_physical, s.guest.cr3);
    }
    // The shared UC region is uncached in both subjects' EPT and its fill
    // pattern is its content.
    let table = region(&c, "shared_table");
    assert_eq!(table.content, vec![0xaa; 4096]);
    for s in &c.subjects {
        let m = s.mappings.iter().find(|m| m.name == "table").unwrap();
        assert!(!m.writable);
        assert_eq!(c.regions[m.region].caching.memory_type(), 0);
    }
}

#[test]
fn program_segments_keep_their_rights() {
    let c = demo().composition;
    let s = &c.subjects[0];
    let rights: Vec<_> = s
        .mappings
        .iter()
        .filter(|m| m.kind == MappingKind::Program)
        .map(|m| (m.name.as_str(), m.writable, m.executable))
        .collect();
    assert_eq!(
        rights,
        [
            ("text", false, true),
            ("rodata", false, false),
            ("data", true, false)
        ]
    );
    let text = region(&c, "producer|text");
    assert_eq!(text.content, [0xf4, 0xeb, 0xfd]);
}

#[test]
fn kernel_tables_map_windows_vmxon_and_vmcs_only() {
    let c = demo().composition;
    let kpt = region(&c, "kernel|pt");
    assert_eq!(kpt.start, c.kernel_pml4);
    let got: BTreeSet<_> = pages(Format::Ia32e, &bytes(kpt), c.kernel_pml4.get())
        .into_iter()
        .map(|(va, pa, leaf)| {
            assert_eq!(va, pa, "identity");
            assert_eq!(leaf & 4, 0, "supervisor only");
            (
                va,
                leaf & ia32e::WRITABLE != 0,
                leaf & ia32e::EXECUTE_DISABLE == 0,
                leaf & (ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    let mut add = |start: u64, size: u64, w: bool, x: bool, pcd_pwt: u64| {
        for off in (0..size).step_by(4096) {
            expected.insert((start + off, w, x, pcd_pwt));
        }
    };
    add(KERNEL_TEXT.start.get(), KERNEL_TEXT.size, false, true, 0);
    add(
        KERNEL_RODATA.start.get(),
        KERNEL_RODATA.size,
        false,
        false,
        0,
    );
    add(KERNEL_DATA.start.get(), KERNEL_DATA.size, true, false, 0);
    for v in &c.vmxon {
        add(v.get(), 4096, true, false, 0);
    }
    for s in &c.subjects {
        add(s.vmcs.get(), 4096, true, false, 0);
    }
    // The crash-audit region: read-write, no execute, uncached (PAT entry 3).
    add(
        c.crash_audit.start.get(),
        c.crash_audit.size,
        true,
        false,
        ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH,
    );
    assert_eq!(got, expected);
}

#[test]
fn info_pages_list_resources_by_name() {
    let c = demo().composition;
    let page = bytes(region(&c, "console|info"));
    let (id, name, khz, resources) = info::parse_info_page(&page).unwrap();
    assert_eq!((id, name.as_str(), khz), (1, "console", 10_000));
    // Every page carries the boot major frame: 30 ticks at 1000 Hz, 10 MHz.
    for s in &c.subjects {
        let page = bytes(region(&c, &format!("{}|info", s.name)));
        assert_eq!(
            info::major_frame_cycles_of(&page),
            Some(TscCycles(300_000)),
            "{}",
            s.name
        );
    }
    let by_name: HashMap<_, _> = resources.iter().map(|r| (r.name.as_str(), r)).collect();
    let table = by_name["table"];
    assert_eq!(
        (table.kind, table.address, table.size, table.flags),
        (ResourceKind::Memory, 0x6000_0000, 0x1000, 0)
    );
    let chan = by_name["in"];
    assert_eq!(chan.kind, ResourceKind::Channel);
    assert_eq!(chan.flags, FLAG_CHANNEL_READER);
    assert_eq!(
        (chan.address, chan.size, chan.vector),
        (0x5000_0000, 0x2000, 49)
    );
    assert_eq!(
        chan.event, 0,
        "lowest target id the console does not use itself"
    );
    let halt = by_name["halt"];
    assert_eq!((halt.kind, halt.event), (ResourceKind::SourceEvent, 0));
    let kicked = by_name["kicked"];
    assert_eq!(
        (kicked.kind, kicked.event, kicked.vector),
        (ResourceKind::TargetEvent, 5, 40)
    );
    let uart = by_name["uart"];
    assert_eq!(
        (uart.kind, uart.address, uart.size),
        (ResourceKind::IoPorts, 0x3f8, 8)
    );

    let page = bytes(region(&c, "producer|info"));
    let (_, _, _, resources) = info::parse_info_page(&page).unwrap();
    let out = resources.iter().find(|r| r.name == "out").unwrap();
    assert_eq!(out.flags, FLAG_CHANNEL_WRITER | FLAG_WRITABLE);
    assert_eq!(out.event, 2);
}

#[test]
fn io_bitmaps_grant_only_owned_ports() {
    let c = demo().composition;
    let console = bytes(region(&c, "console|iobm"));
    let producer = bytes(region(&c, "producer|iobm"));
    for port in 0..=u16::MAX {
        assert_eq!(
            io_port_exits(&console, port),
            !(0x3f8..=0x3ff).contains(&port),
            "{port:#x}"
        );
        assert!(io_port_exits(&producer, port));
    }
    assert!(
        bytes(region(&c, "console|msrbm"))
            .iter()
            .all(|&b| b == 0xff)
    );
}

#[test]
fn events_and_schedule_resolve() {
    let c = demo().composition;
    let producer = &c.subjects[0];
    let actions: Vec<_> = producer
        .source_events
        .iter()
        .map(|e| (e.id, e.action))
        .collect();
    let console = septum_abi::SubjectId(1);
    assert_eq!(
        actions,
        [
            (
                1,
                SourceEvent::Async {
                    target: console,
                    target_event: 5
                }
            ),
            (
                2,
                SourceEvent::Async {
                    target: console,
                    target_event: 0
                }
            ),
        ]
    );
    assert_eq!(
        c.subjects[1].source_events[0].action,
        SourceEvent::Kernel(KernelAction::Poweroff)
    );
    let major = &c.schedule.major_frames[0];
    assert_eq!(major.length.get(), 300_000);
    let ends: Vec<u64> = major.cpus[0].iter().map(|f| f.end.get()).collect();
    assert_eq!(ends, [100_000, 300_000]);
    assert_eq!(c.debug_uart_port, 0x2f8);
    assert_eq!(c.subjects[1].vpid, 2);
}

#[test]
fn regions_do_not_overlap_and_start_above_the_kernel() {
    let c = demo().composition;
    let mut spans: Vec<_> = c.regions.iter().map(|r| (r.start.get(), r.end())).collect();
    spans.sort();
    assert!(spans[0].0 >= septum_abi::layout::FIRST_ALLOCATABLE.get());
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "{w:x?}");
    }
    for r in &c.regions {
        assert!(r.start.is_aligned(4096) && r.size % 4096 == 0 && r.content.len() as u64 <= r.size);
    }
}

/// The generated spec matches the committed one, which this crate compiles
/// against the real spec types (below). `UPDATE_GOLDEN=1` rewrites it.
#[test]
fn spec_and_report_match_golden() {
    let composed = demo();
    let report = report::text_report(&composed.composition);
    for (name, text) in [
        ("demo_spec.rs", &composed.spec),
        ("demo_report.txt", &report),
    ] {
        let path = fixture("golden").join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            golden == *text,
            "{name} differs from the golden file; rerun with UPDATE_GOLDEN=1 and review"
        );
    }
}

mod golden {
    include!("golden/demo_spec.rs");
}

#[test]
fn golden_spec_compiles_to_the_expected_values() {
    let spec = &golden::SPEC;
    assert_eq!(spec.name, "compose_demo");
    assert_eq!(spec.subjects.len(), 2);
    assert_eq!(spec.kernel.debug_uart_port, 0x2f8);
    assert_eq!(
        spec.subjects[1].source_events[0],
        Some(septum_kerncore::spec::SourceEvent::Kernel(
            septum_kerncore::spec::KernelAction::Poweroff
        ))
    );
    assert_eq!(
        spec.subjects[0].fault_action,
        septum_kerncore::spec::FaultAction::StopSubject
    );
    assert_eq!(spec.subjects[0].guest.rsp.get(), 0x10_0000);
    assert_eq!(spec.major_frames[0].cpus[0].len(), 2);
    assert_eq!(spec.image_regions[0].name, "kernel|text");
    // The demo owns no IRQ line: nothing to route, the I/O APIC stays alone;
    // the console's target event 5 injects vector 40 (<inject_interrupt>),
    // and its reader of channel "log" writes vector 49, which the channel's
    // event (the console's target event 0) injects.
    assert!(golden::INTERRUPTS.ioapic.is_none() && golden::INTERRUPTS.routes.is_empty());
    assert_eq!(
        golden::INTERRUPTS.event_vectors,
        &[
            septum_kerncore::irq::EventVector {
                subject: septum_abi::SubjectId(1),
                target_event: 5,
                vector: septum_kerncore::irq::Vector(40),
            },
            septum_kerncore::irq::EventVector {
                subject: septum_abi::SubjectId(1),
                target_event: 0,
                vector: septum_kerncore::irq::Vector(49),
            }
        ]
    );
}

#[test]
fn pack_puts_every_region_at_its_address() {
    use object::read::elf::{FileHeader, ProgramHeader};
    let composed = demo();
    let (regions, blob) = output::regions(&composed.composition);
    let elf = pack::pack("kernel", &build::sample_kernel(), &regions, &blob).unwrap();
    assert_eq!(
        elf,
        pack::pack("kernel", &build::sample_kernel(), &regions, &blob).unwrap(),
        "reproducible"
    );
    // multiboot2 header at 64: magic, arch 0, length, checksum, end tag.
    let word = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    assert_eq!(word(64), 0xE852_50D6);
    assert_eq!(word(68), 0);
    assert_eq!(
        word(64)
            .wrapping_add(word(68))
            .wrapping_add(word(72))
            .wrapping_add(word(76)),
        0
    );
    assert_eq!((word(80), word(84)), (0, 8));

    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(&*elf).unwrap();
    let e = object::LittleEndian;
    assert_eq!(header.e_entry(e), 0x10_0000);
    let loads: Vec<_> = header
        .program_headers(e, &*elf)
        .unwrap()
        .iter()
        .map(|ph| {
            (
                ph.p_paddr(e),
                ph.p_vaddr(e),
                ph.p_memsz(e),
                ph.data(e, &*elf).unwrap().to_vec(),
            )
        })
        .collect();
    assert_eq!(loads[0].0, 0x10_0000);
    assert_eq!(loads[2].2, 0x4000);
    // Adjacent regions share segments (pack.rs): every region reads back
    // at its address as its content followed by zeros, and the region
    // segments load exactly the regions' bytes, nothing in between.
    let region_loads = &loads[3..];
    assert!(region_loads.len() < regions.regions.len());
    for record in &regions.regions {
        let r = region(&composed.composition, &record.name);
        let load = region_loads
            .iter()
            .find(|l| l.0 <= record.start && record.start < l.0 + l.2)
            .unwrap_or_else(|| panic!("{} is not loaded", record.name));
        assert_eq!(load.0, load.1);
        assert!(record.start + record.size <= load.0 + load.2);
        let from = (record.start - load.0) as usize;
        let mut loaded: Vec<u8> = load
            .3
            .iter()
            .skip(from)
            .take(record.size as usize)
            .copied()
            .collect();
        loaded.resize(record.size as usize, 0);
        assert_eq!(loaded, bytes(r), "{}", record.name);
    }
    assert_eq!(
        region_loads.iter().map(|l| l.2).sum::<u64>(),
        regions.regions.iter().map(|r| r.size).sum::<u64>()
    );
}

#[test]
fn pack_refuses_misplaced_kernels_and_overlaps() {
    let composed = demo();
    let (mut regions, blob) = output::regions(&composed.composition);
    let writable_text = build::executable(
        0x10_0000,
        &[build::SegmentSpec {
            vaddr: 0x10_0000,
            data: &[0x90],
            mem_size: 1,
            flags: 7,
        }],
    );
    let err = pack::pack("k.elf", &writable_text, &regions, &blob)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("k.elf: segment 0 at 0x100000 in window kernel|text has rights rwx"),
        "{err}"
    );
    let outside = build::executable(
        0x10_0000,
        &[build::SegmentSpec {
            vaddr: 0x30_0000,
            data: &[0x90],
            mem_size: 1,
            flags: 5,
        }],
    );
    let err = pack::pack("k.elf", &outside, &regions, &blob)
        .unwrap_err()
        .to_string();
    assert!(err.contains("lies in no kernel window"), "{err}");
    let err = pack::pack("k.elf", b"junk", &regions, &blob)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("k.elf: not a 64-bit ELF file"), "{err}");
    regions.regions[1].start = regions.regions[0].start;
    let err = pack::pack("k.elf", &build::sample_kernel(), &regions, &blob)
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlaps"), "{err}");
    regions.regions[1].start = 0x24_1000;
    let err = pack::pack("k.elf", &build::sample_kernel(), &regions, &blob)
        .unwrap_err()
        .to_string();
    assert!(err.contains("overlaps kernel|data"), "{err}");
}

#[test]
fn composed_directory_round_trips() {
    let composed = demo();
    let dir = std::env::temp_dir().join(format!("septum-compose-test-{}", std::process::id()));
    output::write_dir(&dir, &composed.composition, &composed.spec).unwrap();
    let (file, blob) = output::read_regions(&dir).unwrap();
    assert_eq!((file, blob), output::regions(&composed.composition));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["system"], "compose_demo");
    assert_eq!(report["subjects"][1]["name"], "console");
    assert_eq!(report["events"][0]["target"], "console");
    assert_eq!(
        report["scheduling"]["major_frames"][0]["cpus"][0]["minor_frames"][1]["end_cycles"],
        300_000
    );
    // Native frames of one CPU: the lean pad, and the console slot on
    // top of it for the major frame's last.
    let frames = report["scheduling"]["major_frames"][0]["cpus"][0]["minor_frames"]
        .as_array()
        .unwrap();
    let lean = septum_abi::timing::LEAN_ENTRY_PAD.get();
    let slot = septum_abi::timing::CONSOLE_SLOT.get();
    for (index, frame) in frames.iter().enumerate() {
        let expected = if index + 1 == frames.len() {
            lean + slot
        } else {
            lean
        };
        assert_eq!(frame["entry_pad_cycles"], expected, "frame {index}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
