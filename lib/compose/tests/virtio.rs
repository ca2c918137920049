//! The composer on the virtio console system (systems/linux_virtio.xml,
//! with a synthetic bzImage): the VM's fault action carries its console,
//! the console's monitor maps the VM's memory (and only it does), read-write
//! and not executable, at `guestMemory` + guest-physical address, on the
//! same host pages as the VM's own EPT, and a `guestMemory` that overlaps
//! another mapping of the monitor is refused.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_compose::elf::build;
use septum_compose::system::Composition;
use septum_compose::{Failure, compose_policy};

mod common;
use common::bzimage;
use septum_kerncore::spec::{FaultAction, VirtioConsoleSpec};
use septum_policy::MemoryFiles;

/// Compose linux_virtio.xml with `from` replaced by `to`: the composition,
/// or the error text.
fn compose(from: &str, to: &str) -> Result<Composition, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("systems/linux_virtio.xml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from));
    let hardware = root.join("hardware/bochs-tigerlake.xml");
    let mut files = MemoryFiles::new();
    files.insert(&path, text.replace(from, to));
    files.insert(&hardware, std::fs::read(&hardware).unwrap());
    let loaded = septum_policy::check_with(&path, &files);
    let policy = loaded.valid_policy().expect("policy is valid");
    let mut binaries: HashMap<String, Vec<u8>> = ["virtio_console", "virtio_peer"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    binaries.insert("linux-vmlinuz".into(), bzimage(0x3000));
    binaries.insert("linux-initrd.cpio".into(), vec![0x30; 0x1000]);
    match compose_policy(policy, &binaries) {
        Ok(composed) => Ok(composed.composition),
        Err(Failure::Policy(diags)) => Err(diags
            .iter()
            .map(|d| septum_policy::diag::render_text(d, &loaded.sources))
            .collect()),
        Err(e) => Err(format!("{e:?}")),
    }
}

fn subject<'a>(c: &'a Composition, name: &str) -> &'a septum_compose::system::SubjectOut {
    c.subjects.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn the_monitor_sees_the_vm_memory_where_the_vm_has_it() {
    let c = compose("", "").unwrap();
    let linux = subject(&c, "linux");
    let FaultAction::Monitor(m) = linux.fault_action else {
        panic!("{:?}", linux.fault_action)
    };
    assert_eq!(
        m.virtio_console,
        Some(VirtioConsoleSpec {
            port: 0xc000,
            irq: 5
        })
    );
    assert!(m.exits.contains(30) && m.exits.contains(12));

    let vmon = subject(&c, "vmon");
    let base = 0x10_0000_0000u64;
    for name in ["guest_low", "guest_ram"] {
        let view = vmon.mappings.iter().find(|m| m.name == name).unwrap();
        assert!(view.writable && !view.executable, "{name}");
        // The same host memory as the VM's own mapping of that guest-physical
        // address.
        let gpa = view.guest_physical.get() - base;
        let own = linux
            .mappings
            .iter()
            .find(|m| m.guest_physical.get() == gpa)
            .unwrap_or_else(|| panic!("{name}: the VM has nothing at {gpa:#x}"));
        assert_eq!(
            (own.physical, own.size),
            (view.physical, view.size),
            "{name}"
        );
        assert!(vmon.resources.iter().any(|r| r.name == name), "{name}");
    }
    let ram = vmon
        .mappings
        .iter()
        .find(|m| m.name == "guest_ram")
        .unwrap();
    assert_eq!(ram.guest_physical.get(), base + 0x10_0000);
    // Nobody else sees it.
    let peer = subject(&c, "peer");
    assert!(!peer.mappings.iter().any(|m| m.name.starts_with("guest_")));
    assert!(peer.mappings.iter().all(|m| m.physical != ram.physical));
}

#[test]
fn a_guest_memory_view_that_overlaps_the_monitor_is_refused() {
    let errors = compose(
        r#"guestMemory="0x10_0000_0000""#,
        r#"guestMemory="0x4000_0000""#,
    )
    .unwrap_err();
    assert!(
        errors.contains("subject \"vmon\"") && errors.contains("overlaps"),
        "{errors}"
    );
}
