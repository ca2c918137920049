//! The frame-length rules use the pad of each minor frame as the kernel
//! built from the policy enters it: the lean pad between native partitions
//! of one CPU, the full pad beside a VM or at a barrier with other CPUs
//! (`septum_policy::pads`), and `INTERRUPT_TAKE_LEAD` more in a kernel
//! that takes interrupts in root mode (an `ipi` event, a granted device
//! interrupt, an IOMMU).

use std::path::Path;

use septum_abi::timing::{FRAME_ENTRY_PAD, LEAN_ENTRY_PAD, entry_pad};
use septum_policy::diag::headline;
use septum_policy::{MemoryFiles, check_str};

/// Two subjects on CPU 0 at tickRate 1000000 on the 10000 kHz test
/// machine (a tick is 10 TSC cycles), `a`'s frame `ticks` long; `b` grants
/// `device` and has profile `b_profile`, and `events` lists the system's
/// events.
fn system_with(ticks: u32, events: &str, a_events: &str, device: &str, b_profile: &str) -> String {
    let b_boot = if b_profile == "vm" {
        r#"<linux kernel="bzImage" ramSize="0x100_0000"/>"#
    } else {
        ""
    };
    format!(
        r#"<system>
  <hardware href="hw.xml"/>
  <kernel debugConsole="com2"/>
  <events>{events}</events>
  <subjects>
    <subject name="a" profile="native" binary="a" onFault="stopSubject">{a_events}</subject>
    <subject name="b" profile="{b_profile}" binary="b" onFault="stopSubject">{device}{b_boot}</subject>
  </subjects>
  <scheduling tickRate="1000000">
    <partitions>
      <partition name="p_a"><group><subject name="a"/></group></partition>
      <partition name="p_b"><group><subject name="b"/></group></partition>
    </partitions>
    <majorFrame><cpu id="0">
      <minorFrame partition="p_a" ticks="{ticks}"/>
      <minorFrame partition="p_b" ticks="10000"/>
    </cpu></majorFrame>
  </scheduling>
</system>
"#
    )
}

fn system(ticks: u32, events: &str, a_events: &str, device: &str) -> String {
    system_with(ticks, events, a_events, device, "native")
}

/// The headlines of `rule`'s diagnostics, on the test machine without its
/// IOMMU (whose fault events alone make the kernel take interrupts).
fn found(text: &str, rule: &str) -> Vec<String> {
    let full = test_machine();
    let start = full
        .find(r#"<device name="iommu">"#)
        .expect("the test machine has an IOMMU");
    let end = start + full[start..].find("</device>").expect("closed") + "</device>".len();
    found_on(text, rule, format!("{}{}", &full[..start], &full[end..]))
}

/// The test machine's hardware description.
fn test_machine() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/negative/common/hardware.xml"),
    )
    .expect("readable")
}

/// The headlines of `rule`'s diagnostics on `hardware`.
fn found_on(text: &str, rule: &str, hardware: String) -> Vec<String> {
    let mut files = MemoryFiles::new();
    files.insert("hw.xml", hardware);
    let loaded = check_str("system.xml", text, &files);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .map(|d| headline(d, &loaded.sources))
        .collect()
}

const IPI: &str = r#"<event name="poke" mode="ipi"/>"#;
const A_RAISES: &str = r#"<events><source><group name="vmcall"><event logical="poke" physical="poke"/></group></source></events>"#;
const B_TAKES: &str =
    r#"<events><target><event logical="poke" physical="poke"/></target></events>"#;

/// Ticks (10 cycles each) of a frame twice `pad` long.
fn twice(pad: u64) -> u32 {
    u32::try_from(2 * pad / 10).expect("small")
}

#[test]
fn native_neighbours_on_one_cpu_get_the_lean_pad() {
    let lean = LEAN_ENTRY_PAD.0;
    assert!(lean < FRAME_ENTRY_PAD.0);
    // Twice the lean pad is enough; a tick less is not.
    assert!(
        found(
            &system(twice(lean), "", "", ""),
            "scheduling-minor-frame-unusable"
        )
        .is_empty()
    );
    let errors = found(
        &system(twice(lean) - 1, "", "", ""),
        "scheduling-minor-frame-unusable",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!(
            "its subject starts {lean} cycles after the boundary"
        )),
        "{errors:?}"
    );
    let warned = found(
        &system(twice(lean), "", "", ""),
        "scheduling-minor-frame-short",
    );
    assert!(
        warned[0].contains(&format!("the first {lean} (50%)")),
        "{warned:?}"
    );
}

#[test]
fn a_vm_before_the_frame_gives_it_the_full_pad() {
    let full = FRAME_ENTRY_PAD.0;
    // `a` follows `b`, a VM, on the same CPU (the plan repeats).
    let text = system_with(twice(LEAN_ENTRY_PAD.0), "", "", "", "vm");
    let errors = found(&text, "scheduling-minor-frame-unusable");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!(
            "its subject starts {full} cycles after the boundary, so the frame needs at least {}",
            2 * full
        )),
        "{errors:?}"
    );
}

#[test]
fn a_vm_frame_gets_the_lead_for_its_entry_work() {
    let vm_pad = entry_pad(FRAME_ENTRY_PAD, true).0;
    // `b`, the VM, with a frame of twice its pad (usable) and a tick less.
    let with_b_ticks = |ticks: u64| {
        system_with(twice(FRAME_ENTRY_PAD.0), "", "", "", "vm").replace(
            r#"partition="p_b" ticks="10000""#,
            &format!(r#"partition="p_b" ticks="{ticks}""#),
        )
    };
    let usable = with_b_ticks(2 * vm_pad / 10);
    assert!(found(&usable, "scheduling-minor-frame-unusable").is_empty());
    let errors = found(
        &with_b_ticks(2 * vm_pad / 10 - 1),
        "scheduling-minor-frame-unusable",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("\"p_b\"") && errors[0].contains(&format!("starts {vm_pad} cycles")),
        "{errors:?}"
    );
}

#[test]
fn an_ipi_event_makes_the_pad_longer() {
    let lean = LEAN_ENTRY_PAD.0;
    let takes = entry_pad(LEAN_ENTRY_PAD, true).0;
    assert!(takes > lean);
    // A frame of twice the lean pad: usable without the event, not with it.
    let ticks = twice(lean);
    let plain = system(ticks, "", "", "");
    assert!(found(&plain, "scheduling-minor-frame-unusable").is_empty());
    let with_ipi = system(ticks, IPI, A_RAISES, B_TAKES);
    let errors = found(&with_ipi, "scheduling-minor-frame-unusable");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!(
            "its subject starts {takes} cycles after the boundary, so the frame needs at least {}",
            2 * takes
        )),
        "{errors:?}"
    );
    // And the warning band moves with it.
    let warned = found(
        &system(twice(takes), IPI, A_RAISES, B_TAKES),
        "scheduling-minor-frame-short",
    );
    assert!(
        warned[0].contains(&format!("the first {takes} (50%)")),
        "{warned:?}"
    );
}

#[test]
fn an_iommu_makes_the_pad_longer() {
    let takes = entry_pad(LEAN_ENTRY_PAD, true).0;
    let text = system(twice(LEAN_ENTRY_PAD.0), "", "", "");
    let errors = found_on(&text, "scheduling-minor-frame-unusable", test_machine());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!("starts {takes} cycles")),
        "{errors:?}"
    );
}

#[test]
fn a_granted_device_interrupt_makes_the_pad_longer() {
    let takes = entry_pad(LEAN_ENTRY_PAD, true).0;
    // The whole nic, which has an IRQ on the test machine.
    let grant = r#"<devices><device logical="n" physical="nic"/></devices>"#;
    let errors = found(
        &system(twice(LEAN_ENTRY_PAD.0), "", "", grant),
        "scheduling-minor-frame-unusable",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!("starts {takes} cycles")),
        "{errors:?}"
    );
}
