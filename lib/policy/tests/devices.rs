//! Device rules on the inputs real machines give: PCI devices sharing a
//! legacy IRQ line, a driver subject on a real server with a device domain,
//! and the explicit acceptance of unconfined DMA.

use std::path::{Path, PathBuf};

use septum_policy::diag::headline;
use septum_policy::{Loaded, MemoryFiles, check_str};

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(manifest().join(relative)).expect("readable")
}

fn errors(loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == septum_policy::Severity::Error)
        .map(|d| headline(d, &loaded.sources))
        .collect()
}

/// A one-subject system on `hw.xml` whose subject `a` has `body` and the
/// policy the top-level `extra` (memory, deviceDomains).
fn system(body: &str, extra: &str, console: &str) -> String {
    format!(
        r#"<system>
  <hardware href="hw.xml"/>
  <kernel debugConsole="{console}"/>
{extra}
  <subjects><subject name="a" profile="native" binary="a">{body}</subject></subjects>
  <scheduling tickRate="1000">
    <partitions><partition name="p"><group><subject name="a"/></group></partition></partitions>
    <majorFrame><cpu id="0"><minorFrame partition="p" ticks="10"/></cpu></majorFrame>
  </scheduling>
</system>
"#
    )
}

#[test]
fn pci_devices_share_a_legacy_line_an_isa_device_does_not() {
    let common = read("tests/negative/common/hardware.xml");
    // nic (PCI) is on IRQ 11: put nic2 (PCI) on it as well.
    let shared = common.replacen(
        "<irq name=\"irq\" number=\"16\"/>",
        "<irq name=\"irq\" number=\"11\"/>",
        1,
    );
    assert_ne!(shared, common);
    let mut files = MemoryFiles::new();
    files.insert("hw.xml", shared.clone());
    let grant = "<devices><device logical=\"n\" physical=\"nic\"/></devices>";
    let loaded = check_str("system.xml", &system(grant, "", "com2"), &files);
    assert_eq!(errors(&loaded), Vec::<String>::new());

    // An ISA device on the same line is an error, at the later device.
    let isa = shared.replacen(
        "<ioPort name=\"ports\" start=\"16#03e8#\"",
        "<irq name=\"irq\" number=\"11\"/>\n        <ioPort name=\"ports\" start=\"16#03e8#\"",
        1,
    );
    let mut files = MemoryFiles::new();
    files.insert("hw.xml", isa);
    let loaded = check_str("system.xml", &system(grant, "", "com2"), &files);
    let errors = errors(&loaded);
    assert!(
        errors.len() == 2
            && errors
                .iter()
                .all(|e| e.contains("error[devices-legacy-irq-duplicate]: IRQ 11 of device")),
        "{errors:#?}"
    );
}

#[test]
fn accepting_unconfined_dma_is_explicit() {
    let negative = read("tests/negative/devices-dma-unconfined.xml");
    let (_, body) = negative.split_once('\n').expect("expect line");
    let accepted = body.replace(
        "<device logical=\"n\" physical=\"nic\"/>",
        "<device logical=\"n\" physical=\"nic\" acceptUnconfinedDma=\"true\"/>",
    );
    assert_ne!(accepted, body);
    let loaded = check_str("negative/x.xml", &accepted, &MemoryFiles::new());
    // Inline hardware: nothing else to load.
    assert_eq!(errors(&loaded), Vec::<String>::new());
}

/// The shared collection of real machines (see tests/negative.rs).
fn shared_hardware() -> PathBuf {
    std::env::var_os("SEPTUM_SHARED_DATA")
        .map_or_else(|| manifest().join("../../../shared/data"), PathBuf::from)
        .join("hardware")
}

/// On every real machine of the shared collection, a driver subject gets a
/// PCI device whose legacy IRQ line other PCI devices share (as on real
/// servers), with a device domain for its DMA buffer: no error.
#[test]
fn a_driver_on_a_real_machine_with_shared_pci_irqs_validates() {
    let Ok(entries) = std::fs::read_dir(shared_hardware()) else {
        println!("note: {} is absent; skipping", shared_hardware().display());
        return;
    };
    let mut tested = 0;
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "xml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut files = MemoryFiles::new();
        files.insert("hw.xml", text);
        let model = septum_policy::load_str("system.xml", &system("", "", "x"), &files);
        let hw = model.policy.expect("policy").hardware;
        // A PCI device with an IRQ line that another PCI device also has.
        let shared = hw.devices.iter().find(|d| {
            d.pci.is_some()
                && d.irqs.first().is_some_and(|irq| {
                    hw.devices
                        .iter()
                        .filter(|o| o.pci.is_some())
                        .filter(|o| o.irqs.iter().any(|i| i.number.value == irq.number.value))
                        .count()
                        > 1
                })
        });
        let Some(device) = shared else { continue };
        let console = hw
            .devices
            .iter()
            .find(|d| {
                d.io_ports
                    .first()
                    .is_some_and(|r| r.end.value.wrapping_sub(r.start.value) == 7)
            })
            .map_or("none", |d| d.name.as_str());
        let body = format!(
            "<memory><map logical=\"dma\" physical=\"dma\" writable=\"true\"/></memory>\
             <devices><device logical=\"dev\" physical=\"{}\"/></devices>",
            device.name.as_str()
        );
        let extra = format!(
            "<memory><memory name=\"dma\" size=\"0x4000\" caching=\"WB\"/></memory>\
             <deviceDomains><domain name=\"driver\">\
             <memory><memory logical=\"buf\" physical=\"dma\" virtualAddress=\"16#1000#\" \
             writable=\"true\"/></memory>\
             <devices><device logical=\"dev\" physical=\"{}\"/></devices>\
             </domain></deviceDomains>",
            device.name.as_str()
        );
        let loaded = check_str("system.xml", &system(&body, &extra, console), &files);
        assert_eq!(
            errors(&loaded),
            Vec::<String>::new(),
            "{}: device {}",
            path.display(),
            device.name.as_str()
        );
        tested += 1;
    }
    assert!(
        tested >= 2,
        "expected machines with shared PCI IRQs, found {tested}"
    );
}
