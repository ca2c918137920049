//! The composer on the monitor system (systems/isolation_monitor.xml): the
//! monitored subject's fault action names its monitor, the monitor's trap
//! event and the placed state page; RDTSC exiting is on exactly where the
//! policy's monitor chose `rdtsc`; the kernel's tables map the state page
//! read-write, no-execute, and nothing else new.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_abi::SubjectId;
use septum_compose::elf::build;
use septum_compose::paging::{Format, ia32e, leaves, small_pages};
use septum_compose::system::Composition;
use septum_compose::{compose_policy, monitor, report};
use septum_kerncore::spec::{FaultAction, MonitorSpec};
use septum_policy::MemoryFiles;

fn compose(text: Option<(&str, &str)>) -> Composition {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("systems/isolation_monitor.xml");
    let mut policy_text = std::fs::read_to_string(&path).unwrap();
    if let Some((from, to)) = text {
        assert!(policy_text.contains(from));
        policy_text = policy_text.replace(from, to);
    }
    // In memory: the (changed) policy and its hardware description.
    let hardware = root.join("hardware/bochs-tigerlake.xml");
    let mut files = MemoryFiles::new();
    files.insert(&path, policy_text);
    files.insert(&hardware, std::fs::read(&hardware).unwrap());
    let loaded = septum_policy::check_with(&path, &files);
    let rendered: String = loaded
        .diagnostics
        .iter()
        .map(|d| septum_policy::diag::render_text(d, &loaded.sources))
        .collect();
    let policy = loaded
        .valid_policy()
        .unwrap_or_else(|| panic!("{rendered}"));
    let binaries: HashMap<String, Vec<u8>> = ["iso_monitor", "iso_target"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    compose_policy(policy, &binaries)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .composition
}

fn spec_of(c: &Composition, name: &str) -> (usize, FaultAction) {
    let (i, s) = c
        .subjects
        .iter()
        .enumerate()
        .find(|(_, s)| s.name == name)
        .unwrap();
    (i, s.fault_action)
}

#[test]
fn the_monitored_subject_names_its_monitor_event_state_and_exits() {
    let c = compose(None);
    let (monitor, action) = spec_of(&c, "iso_monitor");
    assert_eq!(action, FaultAction::StopSystem);
    let (_, action) = spec_of(&c, "iso_target");
    let FaultAction::Monitor(MonitorSpec {
        monitor: m,
        event,
        state,
        exits,
        virtio_console,
    }) = action
    else {
        panic!("{action:?}")
    };
    assert_eq!(m, SubjectId(monitor as u16));
    // The monitor's only target event, auto-numbered.
    assert_eq!(event, 0);
    let page = c.regions.iter().find(|r| r.name == "target_state").unwrap();
    assert_eq!((state, page.size), (page.start, 4096));
    for reason in [0, 16, 26, 28, 30, 31, 32, 19, 50] {
        assert!(exits.contains(reason), "{reason}");
    }
    for reason in [10, 12, 48, 18] {
        assert!(!exits.contains(reason), "{reason}");
    }
    assert_eq!(
        virtio_console, None,
        "a native subject has no virtio console"
    );
}

#[test]
fn rdtsc_exiting_follows_the_chosen_exits() {
    let rdtsc = |c: &Composition, name: &str| {
        let s = c.subjects.iter().find(|s| s.name == name).unwrap();
        s.controls.proc & monitor::RDTSC_EXITING != 0
    };
    let c = compose(None);
    assert!(rdtsc(&c, "iso_target"));
    assert!(!rdtsc(&c, "iso_monitor"));
    let without = compose(Some(("cr vmx rdtsc", "cr vmx")));
    assert!(!rdtsc(&without, "iso_target"));
}

#[test]
fn the_kernel_maps_the_state_page_read_write_no_execute() {
    let c = compose(None);
    let kpt = c.regions.iter().find(|r| r.name == "kernel|pt").unwrap();
    let mut bytes = kpt.content.clone();
    bytes.resize(kpt.size as usize, 0);
    let page = c.regions.iter().find(|r| r.name == "target_state").unwrap();
    let mapped: Vec<_> = small_pages(&leaves(Format::Ia32e, &bytes, c.kernel_pml4.get()))
        .into_iter()
        .filter(|(va, _)| *va == page.start.get())
        .collect();
    assert_eq!(mapped.len(), 1);
    let (_, (pa, leaf)) = mapped[0];
    assert_eq!(pa, page.start.get());
    assert_ne!(leaf & ia32e::WRITABLE, 0);
    assert_ne!(leaf & ia32e::EXECUTE_DISABLE, 0);
    // The other region of the system, `notice`, is not the kernel's.
    let notice = c.regions.iter().find(|r| r.name == "notice").unwrap();
    assert!(
        small_pages(&leaves(Format::Ia32e, &bytes, c.kernel_pml4.get()))
            .iter()
            .all(|(va, _)| *va != notice.start.get())
    );
}

#[test]
fn the_report_shows_the_monitor_event_state_page_and_exits() {
    let c = compose(None);
    let page = c.regions.iter().find(|r| r.name == "target_state").unwrap();
    let text = report::text_report(&c);
    let line = format!(
        "    monitor iso_monitor (event target_trap, its target event 0), state page \
         target_state at {:#018x}, exits exception rdtsc vmx cr io rdmsr wrmsr",
        page.start.get()
    );
    let target = text.find("  iso_target (id ").unwrap();
    let after_header = text[target..].lines().nth(1).unwrap();
    assert_eq!(after_header, line.as_str(), "{text}");
    assert_eq!(text.matches("    monitor ").count(), 1, "{text}");

    let json = report::json_report(&c);
    let subjects = json["subjects"].as_array().unwrap();
    let of = |name: &str| subjects.iter().find(|s| s["name"] == name).unwrap();
    assert_eq!(of("iso_monitor")["monitor"], serde_json::Value::Null);
    let (monitor, _) = spec_of(&c, "iso_monitor");
    assert_eq!(
        of("iso_target")["monitor"],
        serde_json::json!({
            "monitor": "iso_monitor",
            "monitor_id": monitor,
            "event": "target_trap",
            "target_event": 0,
            "state": "target_state",
            "state_start": format!("{:#x}", page.start.get()),
            "exits": ["exception", "rdtsc", "vmx", "cr", "io", "rdmsr", "wrmsr"],
        })
    );
}
