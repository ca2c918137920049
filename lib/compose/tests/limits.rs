//! What the composer refuses after validation, each with a clear message.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_compose::elf::{self, build};
use septum_compose::input::{
    DeviceGrantInput, IoApicInput, IrqGrantInput, KernelAction, SystemInput,
};
use septum_compose::paging::{self, Format, ia32e};
use septum_compose::{Failure, compose_input, from_policy};

fn demo_input() -> SystemInput {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml");
    let loaded = septum_policy::check(&path);
    let bins: HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    from_policy::system_input(loaded.valid_policy().unwrap(), &bins).unwrap()
}

fn error(input: &SystemInput) -> String {
    match compose_input(input) {
        Err(Failure::Compose(message)) => message,
        Err(other) => panic!("unexpected {other:?}"),
        Ok(_) => panic!("composed"),
    }
}

/// A program image placed where the parser would refuse it (outside the
/// image window), to show the composer's own overlap check still holds if
/// an image ever reaches it unchecked.
fn image_at(vaddr: u64, mem_size: u64) -> elf::SubjectImage {
    elf::SubjectImage {
        entry: septum_abi::VirtAddr(vaddr),
        segments: vec![elf::Segment {
            virtual_address: septum_abi::VirtAddr(vaddr),
            mem_size,
            data: vec![0xf4],
            writable: false,
            executable: true,
        }],
    }
}

#[test]
fn elf_segments_must_not_hit_the_info_page_stack_or_guard() {
    let mut input = demo_input();
    input.subjects[0].image = image_at(0x1_0000, 0x1000);
    let e = error(&input);
    assert!(e.starts_with("subject \"producer\": "), "{e}");
    assert!(e.contains("overlaps") && e.contains("info page"), "{e}");

    input.subjects[0].image = image_at(0xf0_000, 0x20_000);
    let e = error(&input);
    assert!(
        e.contains("overlaps text (ELF segment) at 0xf0000-0x110000"),
        "{e}"
    );

    input.subjects[0].image = image_at(0xfb_000, 0x1000);
    let e = error(&input);
    assert!(e.contains("stack guard page"), "{e}");
}

#[test]
fn the_parser_keeps_segments_in_the_image_window() {
    for (vaddr, mem_size) in [(0x1_0000, 0x1000), (0xf0_000, 0x20_000), (0xfb_000, 0x1000)] {
        let bytes = build::executable(
            vaddr,
            &[build::SegmentSpec {
                vaddr,
                data: &[0xf4],
                mem_size,
                flags: 5,
            }],
        );
        let e = elf::parse_subject("bin/x", &bytes).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("bin/x: segment 0 at {vaddr:#x}-")),
            "{e}"
        );
        assert!(e.contains("outside the subject image window"), "{e}");
    }
}

#[test]
fn ticks_must_convert_exactly() {
    let mut input = demo_input();
    input.scheduling.tick_rate = 3;
    let e = error(&input);
    assert!(
        e.contains("do not give a whole number of TSC cycles"),
        "{e}"
    );
}

#[test]
fn memory_exhaustion_names_the_region() {
    let mut input = demo_input();
    input.regions[0].size = 0x4000_0000;
    let e = error(&input);
    assert!(
        e.starts_with("region \"producer_ram\": out of physical memory"),
        "{e}"
    );
}

#[test]
fn fixed_placement_must_be_free_ram() {
    let mut input = demo_input();
    input.regions[0].physical = Some(septum_abi::PhysAddr(0x20_0000));
    let e = error(&input);
    assert!(
        e.starts_with("region \"producer_ram\": 0x200000-0x202000 is not free"),
        "{e}"
    );
    input.regions[0].physical = Some(septum_abi::PhysAddr(0x800_0000));
    let c = compose_input(&input).unwrap().composition;
    let r = c.regions.iter().find(|r| r.name == "producer_ram").unwrap();
    assert_eq!(r.start.get(), 0x800_0000);
}

#[test]
fn unmask_irq_composes_now_that_irqs_are_routed() {
    // It was refused while the kernel routed no interrupt; it is a kernel
    // action like the others now.
    let mut input = demo_input();
    input.events[0].action = Some(KernelAction::UnmaskIrq);
    let composed = compose_input(&input).unwrap();
    assert!(composed.spec.contains("KernelAction::UnmaskIrq"));
}

#[test]
fn an_irq_grant_without_an_io_apic_is_refused() {
    let mut input = demo_input();
    input.hardware.ioapic = None;
    input.subjects[1].devices.push(DeviceGrantInput {
        logical: "rtc".into(),
        device: 0,
        io_ports: Vec::new(),
        irqs: vec![IrqGrantInput {
            logical: "irq".into(),
            line: 8,
            vector: 40,
            msis: Vec::new(),
        }],
        memory: Vec::new(),
    });
    let e = error(&input);
    assert!(e.contains("IRQ 8 of device"), "{e}");
    assert!(e.contains("has no I/O APIC"), "{e}");
    input.hardware.ioapic = Some(IoApicInput {
        name: "ioapic".into(),
        address: septum_abi::PhysAddr(0xfec0_0000),
        entries: 8,
    });
    let e = error(&input);
    assert!(e.contains("IRQ 8 of device"), "{e}");
    assert!(
        e.contains("no redirection entry in I/O APIC \"ioapic\" (8 entries)"),
        "{e}"
    );
    input.hardware.ioapic.as_mut().unwrap().entries = 24;
    let composed = compose_input(&input).unwrap();
    let routes = &composed.composition.interrupts.routes;
    assert_eq!(routes.len(), 1);
    assert_eq!(
        (routes[0].line.0, routes[0].vector.0, routes[0].owner.0),
        (8, 40, 1)
    );
    assert!(
        composed
            .spec
            .contains("ioapic: Some(septum_abi::PhysAddr(0xfec00000)),")
    );
    // The owner leaves LGDT/LIDT to itself; the other subject does not.
    let s = &composed.composition.subjects;
    assert_eq!(s[1].controls.proc2 & (1 << 2), 0);
    assert_ne!(s[0].controls.proc2 & (1 << 2), 0);
    // The report lists the route.
    let c = &composed.composition;
    let text = septum_compose::report::text_report(c);
    assert!(text.contains("IRQ routes (I/O APIC 0xfec00000)"), "{text}");
    assert!(
        text.contains("  line 8   -> console              vector 40  APIC id 0   Edge"),
        "{text}"
    );
    // The kernel maps the I/O APIC and the xAPIC page, uncached, no execute.
    let pt = c.regions.iter().find(|r| r.name == "kernel|pt").unwrap();
    let mut bytes = pt.content.clone();
    bytes.resize(pt.size as usize, 0);
    for page in [0xfec0_0000u64, 0xfee0_0000] {
        let t = paging::translate(Format::Ia32e, &bytes, c.kernel_pml4.get(), page).unwrap();
        assert_eq!(t.output, page, "identity");
        let uncached = ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH;
        assert_eq!(t.leaf & uncached, uncached, "{page:#x} uncached");
        assert_ne!(t.leaf & ia32e::EXECUTE_DISABLE, 0, "{page:#x} no execute");
    }
}

#[test]
fn info_page_limits_are_enforced() {
    let mut input = demo_input();
    input.subjects[1].maps[0].logical = "a_logical_name_longer_than_32_bytes".into();
    let e = error(&input);
    assert!(e.starts_with("subject \"console\": logical name"), "{e}");
}
