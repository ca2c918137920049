//! The loader on real files: the demo fixture in detail, the hardware
//! descriptions of real machines, and located errors for bad input.

use std::path::{Path, PathBuf};

use septum_abi::units::{PhysAddr, VirtAddr};
use septum_policy::model::*;
use septum_policy::{MemoryFiles, check, diag, load, load_str};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rendered(loaded: &septum_policy::Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(|d| diag::render_text(d, &loaded.sources))
        .collect()
}

#[test]
fn demo_loads_with_everything_resolved_and_assigned() {
    let loaded = load(&fixture("demo.xml"));
    assert!(loaded.diagnostics.is_empty(), "{}", rendered(&loaded));
    let policy = loaded.policy.expect("policy");
    assert_eq!(policy.name.value, "demo");
    assert_eq!(
        loaded.sources.files().len(),
        4,
        "demo, bochs hardware, two includes"
    );

    // Hardware from the href'd file.
    let hw = &policy.hardware;
    assert_eq!(hw.processor.speed_khz.value, 10_000);
    assert_eq!(hw.processor.cpus.len(), 1);
    assert_eq!(
        hw.memory_blocks[1].physical_address.value,
        PhysAddr(0x10_0000)
    );
    assert_eq!(
        hw.pci_config_address.as_ref().map(|a| a.value),
        Some(PhysAddr(0xe000_0000))
    );
    let com2 = policy.kernel.debug_console.target.expect("com2 resolves");
    assert_eq!(policy.device(com2).io_ports[0].start.value, 0x2f8);

    // Regions, events, channels with defaults.
    assert_eq!(policy.regions[0].fill.value, 0xaa);
    assert_eq!(policy.regions[1].size.value, 0x20_0000);
    let file = policy.regions[0].file.as_ref().expect("file");
    assert!(
        file.path.ends_with("fixtures/blob.bin"),
        "{}",
        file.path.display()
    );
    assert_eq!(
        policy.events[2].action.as_ref().map(|a| a.value),
        Some(KernelAction::Poweroff)
    );
    assert_eq!(policy.channels[1].element_size.value, 64);
    assert_eq!(policy.channels[1].protocol.value, 1);
    assert!(policy.channels[1].has_event.is_none());

    // Subjects came from two nested includes, in document order.
    let names: Vec<_> = policy.subjects.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["producer", "consumer"]);
    let producer = &policy.subjects[0];
    let consumer = &policy.subjects[1];
    assert_eq!(consumer.stack_size.value, 0x8000);
    assert_eq!(consumer.on_fault.value, OnFault::StopSubject);
    assert_eq!(
        producer.stack_size.value,
        septum_abi::layout::SUBJECT_STACK_SIZE
    );

    // Explicit values stay; omitted ones are assigned and marked auto.
    let buf = &producer.maps[0];
    assert_eq!(
        (buf.virtual_address.value, buf.virtual_address.auto),
        (VirtAddr(0x4000_0000), false)
    );
    let scratch = &producer.maps[1];
    // 2 MiB region: aligned to 2 MiB from the auto base.
    assert_eq!(
        scratch.virtual_address.value,
        septum_abi::layout::SUBJECT_AUTO_MAP_BASE
    );
    assert!(scratch.virtual_address.auto);
    let out = &producer.channels[0];
    assert_eq!(out.virtual_address.value, VirtAddr(0x1_0020_0000));
    let quiet = &producer.channels[1];
    assert_eq!(quiet.virtual_address.value, VirtAddr(0x1_0020_1000));
    assert!(
        quiet.event.is_none(),
        "no event for a channel without hasEvent"
    );

    let ids: Vec<_> = producer
        .source_events()
        .map(|e| (e.id.value.0, e.id.auto))
        .collect();
    assert_eq!(ids, [(1, false), (0, true)]);
    // The writer's event id is the next free one after the explicit 1 and
    // the auto 0.
    assert_eq!(out.event.map(|e| (e.value.0, e.auto)), Some((2, true)));
    let back = &producer.targets[0];
    assert_eq!((back.id.value.0, back.id.auto), (0, true));
    assert_eq!(back.inject.as_ref().map(|i| i.vector.value.0), Some(32));

    // The consumer's explicit vector 32 is skipped by its reader.
    let reader = &consumer.channels[0];
    assert_eq!(reader.vector.map(|v| (v.value.0, v.auto)), Some((33, true)));
    assert_eq!(reader.virtual_address.value, VirtAddr(0x5000_0000));
    assert_eq!(
        consumer.channels[1].virtual_address.value,
        septum_abi::layout::SUBJECT_AUTO_MAP_BASE
    );
    assert!(consumer.channels[1].vector.is_none());

    // References resolved to typed indices.
    assert_eq!(producer.maps[0].physical.target, Some(RegionIdx(0)));
    assert_eq!(consumer.targets[0].physical.target, Some(EventIdx(0)));
    assert_eq!(reader.physical.target, Some(ChannelIdx(0)));
    let frame = &policy.scheduling.major_frames[0].cpus[0];
    assert_eq!(
        frame.minor_frames[1].partition.target,
        Some(PartitionIdx(1))
    );
    // The partition without `cpu` got the CPU of its minor frames.
    let p_consumer = &policy.scheduling.partitions[1];
    assert_eq!(
        p_consumer.cpu.map(|c| (c.value, c.auto)),
        Some((CpuId(0), true))
    );
    assert_eq!(
        policy.scheduling.partitions[0].groups[0].subjects[0].target,
        Some(SubjectIdx(0))
    );
}

#[test]
fn demo_passes_check() {
    let loaded = check(&fixture("demo.xml"));
    assert!(!loaded.diagnostics.has_errors(), "{}", rendered(&loaded));
}

#[test]
fn shared_hardware_descriptions_load_unchanged() {
    // `SEPTUM_SHARED_DATA` names the collection when the repository is a
    // worktree elsewhere than beside it.
    let dir = std::env::var_os("SEPTUM_SHARED_DATA")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
            std::path::PathBuf::from,
        )
        .join("hardware");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "note: {} is absent; skipping the shared hardware test",
            dir.display()
        );
        return;
    };
    let mut count = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let policy = format!(
            "<system><hardware href=\"{}\"/><kernel debugConsole=\"x\"/>\
             <scheduling tickRate=\"1000\"><partitions/></scheduling></system>",
            path.display()
        );
        let loaded = load_str("/policy.xml", &policy, &septum_policy::MemoryFiles::new());
        // MemoryFiles has no access to the disk: load the file through it.
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut files = MemoryFiles::new();
        files.insert(&path, text);
        let loaded_mem = load_str("/policy.xml", &policy, &files);
        assert!(
            loaded.diagnostics.has_errors(),
            "not in memory: must report a missing file"
        );
        assert!(
            loaded_mem.diagnostics.is_empty(),
            "{}: {}",
            path.display(),
            rendered(&loaded_mem)
        );
        let hw = &loaded_mem.policy.expect("policy").hardware;
        assert!(!hw.devices.is_empty() && !hw.memory_blocks.is_empty());
        assert!(hw.processor.speed_khz.value > 0);
        count += 1;
    }
    assert!(
        count >= 3,
        "expected the shared hardware files, found {count}"
    );
}

/// A policy around `subjects` with inline hardware, regions of the given
/// sizes and channels `c0..c3` (with events).
fn policy_with(regions: &str, subjects: &str) -> String {
    format!(
        "<system name=\"t\">\n\
         <hardware><processor cpuCores=\"1\" speed=\"1000\" vmxTimerRate=\"0\"><cpu apicId=\"0\"/></processor>\
         <devices><device name=\"com1\"><irq name=\"irq\" number=\"4\"/><memory name=\"mmio\" physicalAddress=\"0xfe00_0000\" size=\"0x1000\" caching=\"UC\"/></device></devices></hardware>\n\
         <kernel debugConsole=\"com1\"/>\n\
         <memory>{regions}</memory>\n\
         <channels><channel name=\"c0\" size=\"0x1000\" hasEvent=\"async\"/><channel name=\"c1\" size=\"0x1000\" hasEvent=\"ipi\"/></channels>\n\
         <subjects>{subjects}</subjects>\n\
         <scheduling tickRate=\"1000\"><partitions/></scheduling>\n</system>"
    )
}

#[test]
fn auto_addresses_skip_explicit_mappings_and_align_to_page_size() {
    let text = policy_with(
        "<memory name=\"small\" size=\"0x1000\" caching=\"WB\"/>\
         <memory name=\"huge\" size=\"0x4000_0000\" caching=\"WB\"/>\
         <memory name=\"mid\" size=\"0x30_0000\" caching=\"WB\"/>",
        "<subject name=\"s\" profile=\"native\" binary=\"s\"><memory>\
         <map logical=\"a\" physical=\"small\"/>\
         <map logical=\"b\" physical=\"small\" virtualAddress=\"0x1_0000_1000\"/>\
         <map logical=\"c\" physical=\"small\"/>\
         <map logical=\"d\" physical=\"huge\"/>\
         <map logical=\"e\" physical=\"mid\"/>\
         <map logical=\"f\" physical=\"nowhere\"/>\
         </memory><devices><device logical=\"u\" physical=\"com1\">\
         <memory logical=\"m\" physical=\"mmio\"/></device></devices></subject>",
    );
    let loaded = load_str("t.xml", &text, &MemoryFiles::new());
    assert!(loaded.diagnostics.is_empty(), "{}", rendered(&loaded));
    let policy = loaded.policy.expect("policy");
    let s = &policy.subjects[0];
    let va: Vec<(u64, bool)> = s
        .maps
        .iter()
        .map(|m| (m.virtual_address.value.0, m.virtual_address.auto))
        .collect();
    assert_eq!(
        va,
        [
            (0x1_0000_0000, true),
            (0x1_0000_1000, false),
            // Skips the explicit page right after the first.
            (0x1_0000_2000, true),
            // 1 GiB aligned.
            (0x1_4000_0000, true),
            // 2 MiB aligned after the 1 GiB mapping.
            (0x1_8000_0000, true),
            // Unresolved: no size, no address (the rules report the name).
            (0, true),
        ]
    );
    assert_eq!(s.maps[5].physical.target, None);
    let mmio = &s.devices[0].memory[0];
    // Device memory comes after the maps in document order.
    assert_eq!(mmio.virtual_address.value.0, 0x1_8030_0000);
    assert_eq!(mmio.physical.target, Some(DeviceMemoryIdx(0)));
}

#[test]
fn auto_vectors_and_ids_avoid_every_explicit_value() {
    let text = policy_with(
        "",
        "<subject name=\"s\" profile=\"native\" binary=\"s\">\
         <devices><device logical=\"u\" physical=\"com1\"><irq logical=\"i\" physical=\"irq\"/></device></devices>\
         <channels><reader logical=\"r0\" physical=\"c0\" vector=\"32\"/>\
         <reader logical=\"r1\" physical=\"c1\"/>\
         <writer logical=\"w\" physical=\"c0\" event=\"0\"/>\
         <writer logical=\"w1\" physical=\"c1\"/></channels>\
         </subject>",
    );
    let loaded = load_str("t.xml", &text, &MemoryFiles::new());
    assert!(loaded.diagnostics.is_empty(), "{}", rendered(&loaded));
    let s = &loaded.policy.expect("policy").subjects[0];
    // The IRQ comes first in document order: 32 is taken explicitly, so 33.
    assert_eq!(s.devices[0].irqs[0].vector.value.0, 33);
    assert_eq!(s.channels[1].vector.map(|v| v.value.0), Some(34));
    assert_eq!(
        s.channels[3].event.map(|e| (e.value.0, e.auto)),
        Some((1, true))
    );
    assert_eq!(
        s.channels[2].event.map(|e| (e.value.0, e.auto)),
        Some((0, false))
    );
}

/// A policy on an older machine description that lists no `<cpu>`
/// elements (only `cpuCores="2"`), with the plan on CPU 0 and, if
/// `second` is set, on CPU 1 too.
fn no_cpu_elements_policy(second: bool) -> String {
    let (subject_b, plan_b) = if second {
        (
            "<subject name=\"b\" profile=\"native\" binary=\"b\" cpu=\"1\"/>",
            "<cpu id=\"1\"><minorFrame partition=\"p_b\" ticks=\"10\"/></cpu>",
        )
    } else {
        ("", "")
    };
    let partition_b = if second {
        "<partition name=\"p_b\"><group><subject name=\"b\"/></group></partition>"
    } else {
        ""
    };
    format!(
        "<system name=\"t\">\n\
         <hardware><processor cpuCores=\"2\" speed=\"1000\" vmxTimerRate=\"0\"/>\
         <memory><memoryBlock name=\"ram\" physicalAddress=\"0x10_0000\" size=\"0x100_0000\" allocatable=\"true\"/></memory>\
         <devices><device name=\"com1\"><ioPort name=\"p\" start=\"0x3f8\" end=\"0x3ff\"/></device></devices></hardware>\n\
         <kernel debugConsole=\"com1\"/>\n\
         <subjects><subject name=\"a\" profile=\"native\" binary=\"a\"/>{subject_b}</subjects>\n\
         <scheduling tickRate=\"1000\"><partitions>\
         <partition name=\"p_a\"><group><subject name=\"a\"/></group></partition>{partition_b}</partitions>\n\
         <majorFrame><cpu id=\"0\"><minorFrame partition=\"p_a\" ticks=\"10\"/></cpu>{plan_b}</majorFrame>\n\
         </scheduling>\n</system>"
    )
}

#[test]
fn machine_without_cpu_elements_runs_on_the_boot_cpu() {
    let loaded =
        septum_policy::check_str("t.xml", &no_cpu_elements_policy(false), &MemoryFiles::new());
    assert!(!loaded.diagnostics.has_errors(), "{}", rendered(&loaded));
    assert!(loaded.rules_run);
    let policy = loaded.policy.expect("policy");
    assert_eq!(policy.hardware.processor.cpu_cores.value, 2);
    assert!(policy.hardware.processor.cpus.is_empty());
}

#[test]
fn machine_without_cpu_elements_rejects_a_plan_on_cpu_1() {
    let loaded =
        septum_policy::check_str("t.xml", &no_cpu_elements_policy(true), &MemoryFiles::new());
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == septum_policy::Severity::Error)
        .map(|d| diag::headline(d, &loaded.sources))
        .collect();
    assert_eq!(
        errors,
        [
            "t.xml:6:80: error[scheduling-cpu-no-apic]: CPU 1 of the plan has no cpu element \
          (APIC id) in the hardware description"
        ]
    );
}
