//! Restartable subjects (`onFault="restartSubject"`): the composer lists
//! every region the subject writes with where its boot content comes from,
//! places a pristine copy of each initialised one, and maps both (and only
//! those) for the kernel; see `septum_compose::pristine`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use septum_compose::elf::build;
use septum_compose::paging::{Format, ia32e, leaves, small_pages};
use septum_compose::system::{Composition, MappingKind, Region, RegionKind};
use septum_compose::{Composed, compose_policy};
use septum_kerncore::lifecycle::{Fallback, RestartPolicy, RestartSource};
use septum_kerncore::spec::FaultAction;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The composer's demo with the producer restartable (twice, then
/// stopSubject).
fn restartable_demo() -> Composed {
    demo_with(
        "onFault=\"stopSubject\"",
        "onFault=\"restartSubject\" restartLimit=\"2\" onRestartLimit=\"stopSubject\"",
    )
}

/// The composer's demo with `from` replaced by `to` once. The policy is
/// written next to the demo fixture, whose hardware path is relative.
fn demo_with(from: &str, to: &str) -> Composed {
    let demo = std::fs::read_to_string(fixtures().join("demo.xml")).unwrap();
    let text = demo.replacen(from, to, 1);
    assert_ne!(text, demo);
    // One file per call: the tests of this file run in parallel threads of
    // one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = fixtures().join(format!("restart-{}-{call}.xml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let loaded = septum_policy::check(&path);
    std::fs::remove_file(&path).unwrap();
    let policy = loaded.valid_policy().expect("valid policy");
    let binaries: HashMap<String, Vec<u8>> = ["producer", "console"]
        .iter()
        .map(|n| ((*n).to_owned(), build::sample_subject()))
        .collect();
    compose_policy(policy, &binaries).unwrap_or_else(|e| panic!("{e:?}"))
}

fn region_at(c: &Composition, start: u64) -> &Region {
    c.regions
        .iter()
        .find(|r| r.start.get() == start)
        .unwrap_or_else(|| panic!("no region at {start:#x}"))
}

fn bytes(region: &Region) -> Vec<u8> {
    let mut b = region.content.clone();
    b.resize(region.size as usize, 0);
    b
}

#[test]
fn every_writable_region_is_reset_from_a_pristine_copy_or_zero() {
    let composed = restartable_demo();
    let c = &composed.composition;
    let producer = &c.subjects[0];
    assert_eq!(
        producer.fault_action,
        FaultAction::RestartSubject(RestartPolicy {
            limit: 2,
            fallback: Fallback::StopSubject
        })
    );
    assert_eq!(c.restart_images.len(), 1, "only the producer restarts");
    let image = &c.restart_images[0];
    assert_eq!(image.subject.index(), 0);
    let written: BTreeSet<u64> = producer
        .mappings
        .iter()
        .filter(|m| m.writable)
        .map(|m| c.regions[m.region].start.get())
        .collect();
    let reset: BTreeSet<u64> = image.regions.iter().map(|r| r.start.get()).collect();
    assert_eq!(reset, written, "exactly the regions the subject writes");
    let mut copies = 0;
    for r in &image.regions {
        let target = region_at(c, r.start.get());
        assert_eq!(r.size, target.size);
        let kind = producer
            .mappings
            .iter()
            .find(|m| c.regions[m.region].start == r.start)
            .unwrap()
            .kind;
        match r.source {
            RestartSource::Zero => {
                assert!(
                    matches!(kind, MappingKind::Stack | MappingKind::ChannelWriter)
                        || target.content.iter().all(|&b| b == 0),
                    "{} is zero-filled but has content",
                    target.name
                );
            }
            RestartSource::Copy(from) => {
                copies += 1;
                let pristine = region_at(c, from.get());
                assert_eq!(pristine.kind, RegionKind::Pristine);
                assert_eq!(pristine.name, format!("{}|pristine", target.name));
                assert_eq!(bytes(pristine), bytes(target));
            }
        }
    }
    // The sample subject's data segment holds [1, 2, 3, 4].
    assert_eq!(copies, 1);
    assert!(composed.spec.contains("pub static RESTART_IMAGES"));
    assert!(composed.spec.contains("RestartSource::Copy"));
    // No subject maps a pristine copy.
    for s in &c.subjects {
        for m in &s.mappings {
            assert_ne!(c.regions[m.region].kind, RegionKind::Pristine);
        }
    }
}

#[test]
fn the_kernel_maps_restart_regions_writable_and_copies_read_only() {
    let c = restartable_demo().composition;
    let kpt = c.regions.iter().find(|r| r.name == "kernel|pt").unwrap();
    let mapped: HashMap<u64, (bool, bool)> =
        small_pages(&leaves(Format::Ia32e, &bytes(kpt), c.kernel_pml4.get()))
            .into_iter()
            .map(|(va, (_, leaf))| {
                (
                    va,
                    (
                        leaf & ia32e::WRITABLE != 0,
                        leaf & ia32e::EXECUTE_DISABLE == 0,
                    ),
                )
            })
            .collect();
    for r in &c.restart_images[0].regions {
        for off in (0..r.size).step_by(4096) {
            assert_eq!(mapped.get(&(r.start.get() + off)), Some(&(true, false)));
            if let RestartSource::Copy(from) = r.source {
                assert_eq!(mapped.get(&(from.get() + off)), Some(&(false, false)));
            }
        }
    }
}

#[test]
fn a_subject_on_the_default_fault_action_is_warned_about_and_reported() {
    let composed = restartable_demo();
    // The console leaves onFault out; the producer restarts.
    assert_eq!(composed.warnings.len(), 1);
    let warning = &composed.warnings[0];
    assert_eq!(warning.rule, "compose-default-fault-action");
    assert!(
        warning
            .message
            .starts_with("subject \"console\" relies on the default fault action stopSystem"),
        "{}",
        warning.message
    );
    let text = septum_compose::report::text_report(&composed.composition);
    assert!(text.contains("on fault stopSystem (default))"));
    assert!(text.contains("on fault restartSubject (limit 2, then stopSubject))"));
    assert!(text.contains("    restart re-initialises "));
    let json = septum_compose::report::json_report(&composed.composition);
    assert_eq!(json["subjects"][1]["on_fault_default"], true);
    assert_eq!(json["subjects"][0]["restart"]["then"], "stopSubject");
    assert!(json["subjects"][1]["restart"].is_null());
}

#[test]
fn a_reset_target_gets_a_restart_image_and_its_source_a_reset_event() {
    // The producer's "kick" reaches the console's target event 5, which
    // now resets the console.
    let composed = demo_with(
        "<inject_interrupt vector=\"40\"/>",
        "<inject_interrupt vector=\"40\"/><reset/>",
    );
    let c = &composed.composition;
    assert_eq!(c.restart_images.len(), 1);
    assert_eq!(c.restart_images[0].subject.index(), 1, "the console");
    let kick = c.subjects[0]
        .source_events
        .iter()
        .find(|e| e.event == "kick")
        .unwrap();
    assert_eq!(
        kick.action,
        septum_kerncore::spec::SourceEvent::Reset {
            target: septum_abi::SubjectId(1),
            target_event: 5
        }
    );
    assert!(composed.spec.contains("SourceEvent::Reset"));
    let json = septum_compose::report::json_report(c);
    assert!(json["subjects"][1]["restart"]["limit"].is_null());
    assert!(
        !json["subjects"][1]["restart"]["regions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(json["subjects"][0]["restart"].is_null());
    let text = septum_compose::report::text_report(c);
    assert!(text.contains("console (reset)"));
}
