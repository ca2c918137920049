//! MSI routes of a composed system (`septum_compose::msi`): the messages
//! of a granted `<irq>` go to its owner at consecutive vectors, their
//! remapping entries name the device, and the compositions the kernel
//! could not route are refused with the subject named.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_abi::SubjectId;
use septum_compose::elf::build;
use septum_compose::{Composed, compose_policy};
use septum_kerncore::irq::{IrqLine, Vector};
use septum_kerncore::msi::{DeviceWindow, MsiRoute};
use septum_kerncore::spec::ApicId;
use septum_kerncore::vtd::SourceId;

const POLICY: &str = include_str!("../../policy/tests/valid/dma.xml");
const NIC: SourceId = SourceId::new(0, 3, 0);

/// `dma.xml` with the nic's IRQ granted by name at `vector` (instead of
/// the whole device), on the two-CPU machine whose nic IRQ has `msis`.
fn compose(vector: u32, msis: &str, iommu: bool) -> Result<Composed, String> {
    compose_edited(vector, msis, iommu, |hardware| hardware)
}

/// [`compose`] on the hardware description as `edit` changes it.
fn compose_edited(
    vector: u32,
    msis: &str,
    iommu: bool,
    edit: impl Fn(String) -> String,
) -> Result<Composed, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let hardware = std::fs::read_to_string(dir.join("hardware/two-cpus.xml")).expect("hardware");
    let mut hardware = edit(hardware).replacen(
        "<irq name=\"irq\" number=\"11\"/>",
        &format!("<irq name=\"irq\" number=\"11\">{msis}</irq>"),
        1,
    );
    let mut policy = POLICY.replace(
        "<device logical=\"nic\" physical=\"nic\"/>\n      </devices>\n    </subject>",
        &format!(
            "<device logical=\"nic\" physical=\"nic\"{}><irq logical=\"irq\" physical=\"irq\" \
             vector=\"{vector}\"/></device>\n      </devices>\n    </subject>",
            if iommu {
                ""
            } else {
                " acceptUnconfinedDma=\"true\""
            }
        ),
    );
    if !iommu {
        let start = hardware.find("    <device name=\"iommu\">").expect("iommu");
        let end = start + hardware[start..].find("</device>\n").expect("end") + 10;
        hardware.replace_range(start..end, "");
        let start = policy.find("  <deviceDomains>").expect("domains");
        let end = policy.find("</deviceDomains>\n").expect("end") + 17;
        policy.replace_range(start..end, "");
    }
    compose_text("valid/msi.xml", &policy, hardware)
}

/// Check `policy` (named `name`, beside the hardware description `hardware`
/// as valid/hardware/two-cpus.xml; it must be valid) and compose it: the
/// composition, or the error text.
fn compose_text(name: &str, policy: &str, hardware: String) -> Result<Composed, String> {
    let mut files = septum_policy::MemoryFiles::new();
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let loaded = septum_policy::check_str(name, policy, &files);
    let Some(valid) = loaded.valid_policy() else {
        panic!(
            "{:#?}",
            loaded
                .diagnostics
                .iter()
                .map(|d| septum_policy::diag::headline(d, &loaded.sources))
                .collect::<Vec<_>>()
        )
    };
    let binaries: HashMap<String, Vec<u8>> =
        [("driver".to_owned(), build::sample_subject())].into();
    compose_policy(valid, &binaries).map_err(|e| format!("{e:?}"))
}

/// The error of a composition that must fail.
fn refused(vector: u32, msis: &str, iommu: bool) -> String {
    match compose(vector, msis, iommu) {
        Ok(_) => panic!("composed, but should be refused"),
        Err(e) => e,
    }
}

const TWO: &str = "<msi name=\"m0\" number=\"64\"/><msi name=\"m1\" number=\"65\"/>";

fn route(message: u8, irq: u8, vector: u8) -> MsiRoute {
    MsiRoute {
        device: NIC,
        message,
        irq: IrqLine(irq),
        owner: SubjectId(0),
        apic_id: ApicId(0),
        vector: Vector(vector),
    }
}

#[test]
fn each_message_goes_to_the_owner_at_consecutive_vectors() {
    let composed = compose(100, TWO, true).expect("composes");
    let c = &composed.composition;
    assert_eq!(c.interrupts.msis, [route(0, 64, 100), route(1, 65, 101)]);
    assert!(c.interrupts.remapped);
    assert!(composed.spec.contains("remapped: true,"));
    assert!(composed.spec.contains(
        "message: 1, irq: septum_kerncore::irq::IrqLine(65), owner: septum_abi::SubjectId(0), \
         apic_id: septum_kerncore::spec::ApicId(0), vector: septum_kerncore::irq::Vector(101)"
    ));
    let report = septum_compose::report::text_report(c);
    assert!(
        report.contains("MSI routes (remappable)\n  00:03.0 message 0  IRQ 64  -> driver")
            && report.contains("  00:03.0 message 1  IRQ 65  -> driver               vector 101"),
        "{report}"
    );
    // The nic's memory is mapped for the kernel (its MSI-X table).
    assert_eq!(
        c.interrupts.msi_windows,
        [DeviceWindow {
            device: NIC,
            start: septum_abi::PhysAddr(0xfeb0_0000),
            size: 0x1000
        }]
    );
    assert!(
        composed
            .spec
            .contains("start: septum_abi::PhysAddr(0xfeb00000), size: 0x1000 }")
    );
    // The line is routed as before, at the grant's vector.
    assert_eq!(c.interrupts.routes.len(), 1);
    assert!(c.interrupts.takes_interrupts(SubjectId(0)));
}

#[test]
fn the_remapping_entries_of_the_messages_name_the_device() {
    let composed = compose(100, TWO, true).expect("composes");
    let c = &composed.composition;
    let table = c
        .regions
        .iter()
        .find(|r| r.start == c.vtd.interrupt_table)
        .expect("the interrupt table");
    let entry = |index: usize| {
        let at = index * 16;
        // Trailing zero bytes of a region's content are trimmed.
        let word = |o: usize| {
            let byte = |i: usize| table.content.get(at + o + i).copied().unwrap_or(0);
            u64::from_le_bytes(std::array::from_fn(byte))
        };
        (word(0), word(8))
    };
    for (index, host) in [(64, 96u64), (65, 97)] {
        let (low, high) = entry(index);
        // Present, edge, fixed, vector 32 + IRQ, APIC id 0; SID = nic,
        // verified.
        assert_eq!(low, 1 | host << 16, "entry {index}");
        assert_eq!(high, u64::from(NIC.0) | 1 << 18, "entry {index}");
    }
    assert_eq!(entry(66), (0, 0));
}

#[test]
fn without_remapping_blocks_must_be_aligned() {
    // IRQs 64, 65: host vectors 96, 97, an aligned pair.
    let composed = compose(100, TWO, false).expect("composes");
    assert!(!composed.composition.interrupts.remapped);
    assert_eq!(composed.composition.interrupts.msis.len(), 2);
    // No MSI-X without remapping: no device memory for the kernel.
    assert!(composed.composition.interrupts.msi_windows.is_empty());
    // IRQs 65, 66: host vector 97 is odd.
    let e = refused(
        100,
        "<msi name=\"m0\" number=\"65\"/><msi name=\"m1\" number=\"66\"/>",
        false,
    );
    assert!(e.contains("subject \\\"driver\\\""), "{e}");
    assert!(e.contains("without interrupt remapping 2 MSIs"), "{e}");
    // With remapping the same block is fine.
    compose(
        100,
        "<msi name=\"m0\" number=\"65\"/><msi name=\"m1\" number=\"66\"/>",
        true,
    )
    .map(|_| ())
    .expect("remapped");
}

#[test]
fn vectors_beyond_the_grant_must_be_usable_and_free() {
    let e = refused(252, TWO, true);
    assert!(e.contains("would be injected at vector 252 + 1"), "{e}");
    let e = refused(255, TWO, true);
    assert!(e.contains("beyond 255"), "{e}");
}

#[test]
fn unnumbered_msis_route_only_the_line() {
    // As the anchor's generated descriptions write them.
    let composed = compose(100, "<msi name=\"m0\"/><msi name=\"m1\"/>", true).expect("composes");
    let c = &composed.composition;
    assert!(c.interrupts.msis.is_empty());
    assert!(c.interrupts.msi_windows.is_empty());
    assert_eq!(c.interrupts.routes.len(), 1);
}

#[test]
fn a_whole_device_grant_routes_no_msi() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let hardware = std::fs::read_to_string(dir.join("hardware/two-cpus.xml"))
        .expect("hardware")
        .replacen(
            "<irq name=\"irq\" number=\"11\"/>",
            &format!("<irq name=\"irq\" number=\"11\">{TWO}</irq>"),
            1,
        );
    let mut files = septum_policy::MemoryFiles::new();
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let loaded = septum_policy::check_str("valid/msi.xml", POLICY, &files);
    let valid = loaded.valid_policy().expect("valid");
    let binaries: HashMap<String, Vec<u8>> =
        [("driver".to_owned(), build::sample_subject())].into();
    let composed = compose_policy(valid, &binaries).expect("composes");
    assert!(composed.composition.interrupts.msis.is_empty());
    assert!(composed.spec.contains("remapped: true,\n    routes: &[],"));
}

#[test]
fn an_owner_cpu_beyond_8_bit_apic_ids_is_refused() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let hardware = std::fs::read_to_string(dir.join("hardware/two-cpus.xml"))
        .expect("hardware")
        .replacen("<cpu apicId=\"0\"/>", "<cpu apicId=\"256\"/>", 1)
        .replacen(
            "<irq name=\"irq\" number=\"11\"/>",
            &format!("<irq name=\"irq\" number=\"11\">{TWO}</irq>"),
            1,
        );
    let policy = POLICY.replace(
        "<device logical=\"nic\" physical=\"nic\"/>\n      </devices>\n    </subject>",
        "<device logical=\"nic\" physical=\"nic\"><irq logical=\"irq\" physical=\"irq\" \
         vector=\"100\"/></device>\n      </devices>\n    </subject>",
    );
    let mut files = septum_policy::MemoryFiles::new();
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let loaded = septum_policy::check_str("valid/msi.xml", &policy, &files);
    let valid = loaded.valid_policy().expect("valid");
    let binaries: HashMap<String, Vec<u8>> =
        [("driver".to_owned(), build::sample_subject())].into();
    let Err(e) = compose_policy(valid, &binaries) else {
        panic!("composed with APIC id 256");
    };
    let e = format!("{e:?}");
    assert!(e.contains("CPU 0 has APIC id 256"), "{e}");
}

/// Two subjects, each granted one nic's IRQ by name, whose hardware gives
/// both nics an MSI with IRQ number `first` and `second`.
fn compose_two_owners(first: u32, second: u32) -> Result<Composed, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let msi = |number: u32, line: u32| {
        (
            format!("<irq name=\"irq\" number=\"{line}\"/>"),
            format!(
                "<irq name=\"irq\" number=\"{line}\"><msi name=\"m0\" number=\"{number}\"/></irq>"
            ),
        )
    };
    let (nic, nic_msi) = msi(first, 11);
    let (nic2, nic2_msi) = msi(second, 16);
    let hardware = std::fs::read_to_string(dir.join("hardware/two-cpus.xml"))
        .expect("hardware")
        .replacen(&nic, &nic_msi, 1)
        .replacen(&nic2, &nic2_msi, 1);
    let grant = |name: &str, device: &str, vector: u32| {
        format!(
            "<subject name=\"{name}\" profile=\"native\" binary=\"driver\"><devices><device \
             logical=\"nic\" physical=\"{device}\" acceptUnconfinedDma=\"true\"><irq logical=\"irq\" \
             physical=\"irq\" vector=\"{vector}\"/></device></devices></subject>"
        )
    };
    let policy = format!(
        "<system><hardware href=\"hardware/two-cpus.xml\"/><kernel debugConsole=\"com2\"/>\
         <subjects>{}{}</subjects><scheduling tickRate=\"1000\"><partitions>\
         <partition name=\"p\"><group><subject name=\"a\"/></group></partition>\
         <partition name=\"q\"><group><subject name=\"b\"/></group></partition></partitions>\
         <majorFrame><cpu id=\"0\"><minorFrame partition=\"p\" ticks=\"10\"/>\
         <minorFrame partition=\"q\" ticks=\"10\"/></cpu></majorFrame></scheduling></system>",
        grant("a", "nic", 40),
        grant("b", "nic2", 41)
    );
    compose_text("valid/msi2.xml", &policy, hardware)
}

#[test]
fn two_devices_never_share_an_msi_irq_number() {
    // Distinct numbers: each device's message goes to its own owner.
    let composed = compose_two_owners(64, 65).expect("composes");
    let owners: Vec<_> = composed
        .composition
        .interrupts
        .msis
        .iter()
        .map(|r| (r.irq, r.owner))
        .collect();
    assert_eq!(
        owners,
        [(IrqLine(64), SubjectId(0)), (IrqLine(65), SubjectId(1))]
    );
    // The same number: the kernel finds a route by its IRQ number, so b's
    // device would interrupt a. Refused, naming b and both devices.
    let error = match compose_two_owners(64, 64) {
        Ok(composed) => panic!("composed: {:?}", composed.composition.interrupts.msis),
        Err(error) => error,
    };
    assert!(
        error.contains("subject \\\"b\\\"")
            && error.contains("nic2")
            && error.contains("also an MSI of device \\\"nic\\\""),
        "{error}"
    );
}

#[test]
fn device_memory_at_the_top_of_the_address_space_is_refused_not_a_panic() {
    // The nic's memory is its last page of the 64-bit physical space: the
    // kernel's window for its MSI-X table would end at 2^64.
    let error = match compose_edited(100, TWO, true, |hardware| {
        hardware.replacen("16#feb0_0000#", "16#ffff_ffff_ffff_f000#", 1)
    }) {
        Ok(composed) => panic!(
            "composed: {:?}",
            composed.composition.interrupts.msi_windows
        ),
        Err(error) => error,
    };
    assert!(error.contains("beyond the 47-bit address space"), "{error}");
}
