//! The frame-length rules use the pad of the kernel the policy builds: a
//! kernel that takes interrupts in root mode (an `ipi` event, a granted
//! device interrupt) enters every minor frame `INTERRUPT_TAKE_LEAD` later.

use std::path::Path;

use septum_abi::timing::{FRAME_ENTRY_PAD, frame_entry_pad};
use septum_policy::diag::headline;
use septum_policy::{MemoryFiles, check_str};

/// Two subjects on CPU 0 at tickRate 1000000 on the 10000 kHz test
/// machine (a tick is 10 TSC cycles), `a`'s frame `ticks` long; `b` grants
/// `device`, and `events` lists the system's events.
fn system(ticks: u32, events: &str, a_events: &str, device: &str) -> String {
    format!(
        r#"<system>
  <hardware href="hw.xml"/>
  <kernel debugConsole="com2"/>
  <events>{events}</events>
  <subjects>
    <subject name="a" profile="native" binary="a" onFault="stopSubject">{a_events}</subject>
    <subject name="b" profile="native" binary="b" onFault="stopSubject">{device}</subject>
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

/// The headlines of `rule`'s diagnostics.
fn found(text: &str, rule: &str) -> Vec<String> {
    let hardware = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/negative/common/hardware.xml"),
    )
    .expect("readable");
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

#[test]
fn an_ipi_event_makes_the_pad_longer() {
    let base = FRAME_ENTRY_PAD.0;
    let takes = frame_entry_pad(true).0;
    assert!(takes > base);
    // A frame of twice the base pad: usable without the event, not with it.
    let ticks = u32::try_from(2 * base / 10).expect("small");
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
    let warned = found(&system(ticks, "", "", ""), "scheduling-minor-frame-short");
    assert!(
        warned[0].contains(&format!("the first {base} (50%)")),
        "{warned:?}"
    );
    let long = u32::try_from(2 * takes / 10).expect("small");
    let warned = found(
        &system(long, IPI, A_RAISES, B_TAKES),
        "scheduling-minor-frame-short",
    );
    assert!(
        warned[0].contains(&format!("the first {takes} (50%)")),
        "{warned:?}"
    );
}

#[test]
fn a_granted_device_interrupt_makes_the_pad_longer() {
    let takes = frame_entry_pad(true).0;
    let ticks = u32::try_from(2 * FRAME_ENTRY_PAD.0 / 10).expect("small");
    // The whole nic, which has an IRQ on the test machine.
    let grant = r#"<devices><device logical="n" physical="nic"/></devices>"#;
    let errors = found(
        &system(ticks, "", "", grant),
        "scheduling-minor-frame-unusable",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!("starts {takes} cycles")),
        "{errors:?}"
    );
}
