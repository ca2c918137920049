//! VM subjects through the whole composer: a policy with a `<linux>` boot
//! and a synthetic bzImage composes into a subject that enters the boot
//! stub with the zero page in RDI under the `vm` profile's controls; a bad
//! image and a second VM on one CPU are refused with located messages; a
//! `consoleInput` owner becomes the spec's `CONSOLE_INPUT`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use septum_compose::{Failure, compose_policy};

mod common;
use common::bzimage;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linux.xml")
}

/// Compose `policy_file` with `kernel`; the first line of each error, or
/// "ok" and the composition's first subject's (rip, rdi, exception bitmap).
fn compose(policy_file: &Path, kernel: Vec<u8>) -> Result<(u64, u64, u32), Vec<String>> {
    let loaded = septum_policy::check(policy_file);
    let policy = loaded.valid_policy().expect("fixture is valid");
    let binaries: HashMap<String, Vec<u8>> = [
        ("bzImage".to_owned(), kernel),
        ("initrd".to_owned(), vec![0x30; 0x1000]),
    ]
    .into();
    match compose_policy(policy, &binaries) {
        Ok(composed) => {
            let s = &composed.composition.subjects[0];
            Ok((s.guest.rip.get(), s.guest.rdi, s.controls.exception_bitmap))
        }
        Err(Failure::Policy(diags)) => Err(diags
            .iter()
            .map(|d| {
                let text = septum_policy::diag::render_text(d, &loaded.sources);
                let first = text.lines().next().unwrap_or_default();
                first[first.rfind('/').map_or(0, |i| i + 1)..].to_owned()
            })
            .collect()),
        Err(e) => Err(vec![format!("{e:?}")]),
    }
}

#[test]
fn a_linux_vm_enters_the_boot_stub_with_the_zero_page() {
    let (rip, rdi, exceptions) = compose(&fixture(), bzimage(0x3000)).unwrap();
    assert_eq!(rip, 0x2_2000);
    assert_eq!(rdi, 0x2_0000);
    assert_eq!(exceptions, 0, "the guest handles its own exceptions");
}

#[test]
fn a_bad_image_is_refused_at_the_linux_element() {
    let mut kernel = bzimage(0x3000);
    kernel[0x236] = 0;
    let errors = compose(&fixture(), kernel).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("linux.xml:12:7: error[compose-binary]: linux: bzImage: xloadflags (0x236) lacks XLF_KERNEL_64"), "{errors:?}");
}

#[test]
fn a_second_vm_on_one_cpu_is_refused() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let second = text
        .replace(
            "<!-- second -->",
            r#"<subject name="other" profile="vm"><linux kernel="bzImage" ramSize="0x200_0000"/></subject>"#,
        )
        .replace(
            "<!-- second partition -->",
            r#"<partition name="p_other"><group><subject name="other"/></group></partition>"#,
        )
        .replace(
            "<!-- second frame -->",
            r#"<minorFrame partition="p_other" ticks="10"/>"#,
        );
    let path = fixture().with_file_name("linux-two-vms.generated.xml");
    std::fs::write(&path, second).unwrap();
    let errors = compose(&path, bzimage(0x3000));
    let _ = std::fs::remove_file(&path);
    let errors = errors.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("a second vm subject on CPU 0: at most one VM per CPU"),
        "{errors:?}"
    );
}

#[test]
fn the_console_input_owner_reaches_the_spec() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let owned = text.replace(
        r#"<kernel debugConsole="com2"/>"#,
        r#"<kernel debugConsole="com2" consoleInput="guest"/>"#,
    );
    let path = fixture().with_file_name("linux-console-input.generated.xml");
    std::fs::write(&path, owned).unwrap();
    let spec_of = |path: &Path| {
        let loaded = septum_policy::check(path);
        let policy = loaded.valid_policy().expect("valid");
        let binaries: HashMap<String, Vec<u8>> = [
            ("bzImage".to_owned(), bzimage(0x3000)),
            ("initrd".to_owned(), vec![0x30; 0x1000]),
        ]
        .into();
        compose_policy(policy, &binaries).map(|c| c.spec).ok()
    };
    let with = spec_of(&path);
    let _ = std::fs::remove_file(&path);
    let line = "pub const CONSOLE_INPUT: Option<septum_abi::SubjectId>";
    assert!(
        with.unwrap()
            .contains(&format!("{line} = Some(septum_abi::SubjectId(0));")),
        "the owner is subject 0"
    );
    assert!(
        spec_of(&fixture())
            .unwrap()
            .contains(&format!("{line} = None;"))
    );
}

#[test]
fn the_vm_gets_an_apic_access_page_and_nothing_may_overlap_it() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let binaries = || -> HashMap<String, Vec<u8>> {
        [
            ("bzImage".to_owned(), bzimage(0x3000)),
            ("initrd".to_owned(), vec![0x30; 0x1000]),
        ]
        .into()
    };
    let loaded = septum_policy::check(&fixture());
    let composed = compose_policy(loaded.valid_policy().unwrap(), &binaries()).unwrap();
    let vm = &composed.composition.subjects[0];
    let page = vm.apic_access.expect("a VM has an APIC-access page");
    assert!(
        composed.spec.contains(&format!(
            "apic_access: Some(septum_abi::PhysAddr({:#x}))",
            page.get()
        )),
        "the spec names it"
    );
    let apic = vm
        .mappings
        .iter()
        .find(|m| m.name == "apic")
        .expect("EPT-mapped");
    assert_eq!(apic.guest_physical.get(), 0xfee0_0000);
    assert_eq!(
        (apic.physical, apic.writable, apic.executable),
        (page, true, false)
    );
    assert_eq!(apic.virtual_address, None, "not in the guest's boot tables");

    let overlapping = text
        .replace(
            "  <subjects>",
            r#"  <memory><memory name="m" size="0x1000" caching="WB"/></memory>
  <subjects>"#,
        )
        .replace(
            "      </events>\n    </subject>",
            r#"      </events>
      <memory><map logical="m" physical="m" virtualAddress="0xfee0_0000" writable="true"/></memory>
    </subject>"#,
        );
    let path = fixture().with_file_name("linux-apic-overlap.generated.xml");
    std::fs::write(&path, overlapping).unwrap();
    let errors = compose(&path, bzimage(0x3000));
    let _ = std::fs::remove_file(&path);
    let errors = errors.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("overlaps local APIC page"), "{errors:?}");
}

/// A VM's frame gets the lead for its entry work, whatever the kernel
/// takes: its base pad is the full one (a VM before and after the
/// boundary), and the spec marks it.
#[test]
fn a_vm_frame_gets_the_full_pad_and_the_lead() {
    let loaded = septum_policy::check(&fixture());
    let policy = loaded.valid_policy().expect("fixture is valid");
    let binaries: HashMap<String, Vec<u8>> = [
        ("bzImage".to_owned(), bzimage(0x3000)),
        ("initrd".to_owned(), vec![0x30; 0x1000]),
    ]
    .into();
    let composed = compose_policy(policy, &binaries).expect("composes");
    let frame = &composed.composition.schedule.major_frames[0].cpus[0][0];
    assert_eq!(frame.pad, septum_abi::timing::FRAME_ENTRY_PAD);
    assert!(frame.lead);
    assert!(
        composed
            .spec
            .contains("pad: septum_abi::TscCycles(610), lead: true")
    );
    let expected = septum_abi::timing::entry_pad(septum_abi::timing::FRAME_ENTRY_PAD, true);
    assert_eq!(composed.composition.entry_pad(frame), expected);
}
