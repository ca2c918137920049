//! How the composer decides a route's trigger mode (a PCI device's line is
//! level-triggered whatever its number) and which channel readers get their
//! `vector` injected (only a written one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use septum_compose::input::{
    DeviceGrantInput, DeviceInput, IoApicInput, IrqGrantInput, SystemInput,
};
use septum_compose::{compose_input, from_policy};
use septum_kerncore::irq::{EventVector, IrqLine, Trigger, Vector};
use septum_kerncore::vtd::SourceId;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml")
}

fn input_from(path: &Path) -> SystemInput {
    let loaded = septum_policy::check(path);
    let bins: HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| {
            (
                (*n).to_owned(),
                septum_compose::elf::build::sample_subject(),
            )
        })
        .collect();
    from_policy::system_input(loaded.valid_policy().unwrap(), &bins).unwrap()
}

/// The demo with an I/O APIC and a device `dev` on line 9 granted to the
/// console, PCI (00:02.0) or not.
fn line_9(pci: bool) -> SystemInput {
    let mut input = input_from(&fixture());
    input.hardware.ioapic = Some(IoApicInput {
        name: "ioapic".into(),
        address: septum_abi::PhysAddr(0xfec0_0000),
        entries: 24,
    });
    input.hardware.devices.push(DeviceInput {
        name: "dev".into(),
        io_ports: Vec::new(),
        pci: pci.then(|| SourceId::new(0, 2, 0)),
        memory: Vec::new(),
    });
    let device = input.hardware.devices.len() - 1;
    input.subjects[1].devices.push(DeviceGrantInput {
        logical: "dev".into(),
        device,
        io_ports: Vec::new(),
        irqs: vec![IrqGrantInput {
            logical: "irq".into(),
            line: 9,
            vector: 41,
            msis: Vec::new(),
        }],
        memory: Vec::new(),
    });
    input
}

#[test]
fn a_pci_line_below_16_is_level_triggered_an_isa_line_edge() {
    for (pci, trigger) in [(true, Trigger::Level), (false, Trigger::Edge)] {
        let composed = compose_input(&line_9(pci)).unwrap();
        let routes = &composed.composition.interrupts.routes;
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].line, IrqLine(9));
        assert_eq!(routes[0].trigger, trigger, "pci={pci}");
        let spelled = format!("trigger: septum_kerncore::irq::Trigger::{trigger:?} }}");
        assert!(composed.spec.contains(&spelled), "{}", composed.spec);
    }
    assert_eq!(
        septum_compose::interrupts::trigger(IrqLine(20), false),
        Trigger::Level
    );
    assert_eq!(
        septum_compose::interrupts::trigger(IrqLine(3), true),
        Trigger::Level
    );
}

#[test]
fn a_written_reader_vector_is_injected() {
    // The fixture's console reads channel "log" (hasEvent) with vector 49.
    let input = input_from(&fixture());
    let reader = &input.subjects[1].channels[0];
    assert!(reader.injects && !reader.writer);
    let target_event = reader.event.unwrap();
    let composed = compose_input(&input).unwrap();
    let vectors = &composed.composition.interrupts.event_vectors;
    assert!(
        vectors.contains(&EventVector {
            subject: septum_abi::SubjectId(1),
            target_event,
            vector: Vector(49),
        }),
        "{vectors:?}"
    );
    // The producer's channel source event targets that very event number.
    assert!(composed.spec.contains(&format!(
        "SourceEvent::Async {{ target: septum_abi::SubjectId(1), target_event: {target_event} }}"
    )));
}

#[test]
fn an_auto_assigned_reader_vector_is_only_shown() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let hardware =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hardware/bochs-tigerlake.xml");
    let text = text.replace(" vector=\"49\"", "").replace(
        "../../../../hardware/bochs-tigerlake.xml",
        hardware.to_str().unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("compose-level-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("demo.xml");
    std::fs::write(&path, text).unwrap();
    let input = input_from(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let reader = &input.subjects[1].channels[0];
    assert!(
        reader.vector.is_some(),
        "still auto-assigned for the info page"
    );
    assert!(!reader.injects);
    let composed = compose_input(&input).unwrap();
    let vectors = &composed.composition.interrupts.event_vectors;
    assert!(
        vectors
            .iter()
            .all(|v| v.vector != Vector(reader.vector.unwrap())),
        "{vectors:?}"
    );
}

/// A routed line makes the kernel take interrupts in root mode: every
/// frame's entry pad in the report gets the lead after its base pad, or
/// after `INTERRUPT_TAKE_EARLIEST` where the base pad is shorter (the
/// lean pad of a kernel that takes none).
#[test]
fn a_routed_line_gives_every_frame_the_lead() {
    use septum_abi::timing::{INTERRUPT_TAKE_EARLIEST, INTERRUPT_TAKE_LEAD, LEAN_ENTRY_PAD};
    let plain = compose_input(&input_from(&fixture())).unwrap();
    let routed = compose_input(&line_9(true)).unwrap();
    assert!(!plain.composition.takes_interrupts());
    assert!(routed.composition.takes_interrupts());
    let lead = INTERRUPT_TAKE_LEAD.get();
    let take = LEAN_ENTRY_PAD.get().max(INTERRUPT_TAKE_EARLIEST.get());
    let frames = &plain.composition.schedule.major_frames[0].cpus[0];
    for (index, frame) in frames.iter().enumerate() {
        let with_lead = routed.composition.entry_pad(frame).get();
        assert_eq!(with_lead, take + lead);
        // The fixture's frames are between native partitions of one CPU;
        // the major frame's last has the console slot.
        let console = if index + 1 == frames.len() {
            septum_abi::timing::CONSOLE_SLOT.get()
        } else {
            0
        };
        assert_eq!(
            plain.composition.entry_pad(frame).get(),
            LEAN_ENTRY_PAD.get() + console
        );
    }
    let report = septum_compose::report::text_report(&routed.composition);
    let pad = take + lead;
    assert!(report.contains(&format!("  pad {pad}\n")), "{report}");
}
