//! PCI configuration space grants: a native subject that owns a PCI device
//! is given exactly that function in the kernel's `PCI_CONFIG`, and a
//! policy that would let the configuration ports bypass the emulation is
//! refused.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_abi::SubjectId;
use septum_compose::compose_policy;
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
    let error = compose_with(POLICY, machine)
        .err()
        .expect("the composer refuses the grant");
    assert!(error.contains("configuration ports"), "{error}");
}
