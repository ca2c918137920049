//! PCI configuration space grants: a native subject that owns a PCI device
//! is given exactly that function in the kernel's `PCI_CONFIG` and exactly
//! that function's ECAM page, read-only, in its EPT; a policy that would let
//! the configuration ports bypass the emulation is refused.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_abi::SubjectId;
use septum_compose::paging::{self, Format};
use septum_compose::{compose_input, compose_policy, from_policy, layers};
use septum_kerncore::pcicfg::PciGrant;
use septum_kerncore::vtd::SourceId;

const POLICY: &str = include_str!("../../policy/tests/valid/dma.xml");

/// Composes `text` on the valid fixtures' two-CPU machine, changed by
/// `machine`.
fn compose_with(
    text: &str,
    machine: impl Fn(String) -> String,
) -> Result<septum_compose::Composed, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let mut files = septum_policy::MemoryFiles::new();
    let hardware =
        machine(std::fs::read_to_string(dir.join("hardware/two-cpus.xml")).expect("hardware"));
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let loaded = septum_policy::check_str("valid/dma.xml", text, &files);
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
    let binaries: HashMap<String, Vec<u8>> = [(
        "driver".to_owned(),
        septum_compose::elf::build::sample_subject(),
    )]
    .into();
    compose_policy(policy, &binaries).map_err(|e| format!("{e:?}"))
}

#[test]
fn the_owner_is_given_exactly_its_function() {
    let composed = compose_with(POLICY, |h| h).expect("composes");
    let c = &composed.composition;
    assert_eq!(
        c.pci_grants,
        [PciGrant {
            subject: SubjectId(0),
            device: SourceId::new(0, 3, 0),
        }]
    );
    assert!(composed.spec.contains(
        "septum_kerncore::pcicfg::PciGrant { subject: septum_abi::SubjectId(0), \
         device: septum_kerncore::vtd::SourceId(0x0018) }"
    ));
}

#[test]
fn configuration_ports_granted_to_the_owner_are_refused() {
    let machine = |hardware: String| {
        hardware.replacen(
            "<irq name=\"irq\" number=\"11\"/>",
            "<irq name=\"irq\" number=\"11\"/>\n      \
             <ioPort name=\"cfg\" start=\"16#0cfc#\" end=\"16#0cff#\"/>",
            1,
        )
    };
    // Validation refuses it first (any subject, PCI owner or not) ...
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let hardware =
        machine(std::fs::read_to_string(dir.join("hardware/two-cpus.xml")).expect("hardware"));
    let mut files = septum_policy::MemoryFiles::new();
    files.insert("valid/hardware/two-cpus.xml", hardware);
    let checked = septum_policy::check_str("valid/dma.xml", POLICY, &files);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.rule == "devices-pci-config-ports"),
        "validation lets the configuration ports through"
    );
    // ... and the composer, given the policy as loaded (no rules), too.
    let loaded = septum_policy::load_str("valid/dma.xml", POLICY, &files);
    let policy = loaded.policy.as_ref().expect("loads");
    let binaries: HashMap<String, Vec<u8>> = [(
        "driver".to_owned(),
        septum_compose::elf::build::sample_subject(),
    )]
    .into();
    let error = compose_policy(policy, &binaries)
        .err()
        .map(|e| format!("{e:?}"))
        .expect("the composer refuses the grant");
    assert!(error.contains("configuration ports"), "{error}");
}

/// The composition's regions as the memory a table walk reads.
struct Regions<'a>(&'a [septum_compose::system::Region]);

impl paging::TableMemory for Regions<'_> {
    fn entry(&self, table: u64, slot: usize) -> Option<u64> {
        let address = table + slot as u64 * 8;
        let region = self
            .0
            .iter()
            .find(|r| (r.start.get()..r.start.get() + r.size).contains(&address))?;
        let at = (address - region.start.get()) as usize;
        let mut raw = [0u8; 8];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = region.content.get(at + i).copied().unwrap_or(0);
        }
        Some(u64::from_le_bytes(raw))
    }
}

/// The ECAM window of the fixtures' machine (`pciConfigAddress`,
/// `pciConfigSize`).
const ECAM: std::ops::Range<u64> = 0xe000_0000..0xf000_0000;

#[test]
fn only_the_owned_functions_config_page_is_mapped_read_only() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policy/tests/valid");
    let mut files = septum_policy::MemoryFiles::new();
    files.insert(
        "valid/hardware/two-cpus.xml",
        std::fs::read_to_string(dir.join("hardware/two-cpus.xml")).expect("hardware"),
    );
    let loaded = septum_policy::check_str("valid/dma.xml", POLICY, &files);
    let policy = loaded.valid_policy().expect("valid");
    let binaries: HashMap<String, Vec<u8>> = [(
        "driver".to_owned(),
        septum_compose::elf::build::sample_subject(),
    )]
    .into();
    let input = from_policy::system_input(policy, &binaries).expect("input");
    let c = compose_input(&input).expect("composes").composition;
    // The layers check: the EPT reaches only what the input grants.
    let report = layers::check(&input, &c);
    assert!(
        report.violations.is_empty(),
        "{}",
        report.violations.join("\n")
    );
    // Walk the driver's EPT from its bytes: in the whole ECAM window, only
    // 00:03.0's page (0xe000_0000 + 3 << 15), readable, not writable, not
    // executable.
    let root = c.subjects[0].eptp & !0xfff;
    let memory = Regions(&c.regions);
    let pages = paging::small_pages(&paging::leaves_in(Format::Ept, &memory, root));
    let in_ecam: Vec<_> = pages
        .iter()
        .filter(|(gpa, _)| ECAM.contains(gpa))
        .map(|(&gpa, &(hpa, leaf))| (gpa, hpa, leaf & 7))
        .collect();
    assert_eq!(in_ecam, [(0xe001_8000, 0xe001_8000, 0b001)]);
    // The info page lists it.
    let grant = &input.subjects[0].devices[0];
    assert_eq!(grant.memory.len(), 1);
    assert_eq!(grant.memory[0].logical, "nic|config");
    assert!(!grant.memory[0].writable);
}
