//! `septum crash decode` end to end, on dumps written with the abi's own
//! encoder: every slot state in text and JSON, the expected-hash option,
//! a bare record, and malformed files (exit status 1, an error naming the
//! file, never a panic).

use std::path::PathBuf;
use std::process::{Command, Output};

use septum_abi::crash::{
    ExitInfo, GuestRegisters, Header, Reason, Record, RootException, encode_region, region_size,
    slot_offset,
};
use septum_abi::{SubjectId, TscCycles};

const IMAGE: u64 = 0x1111_2222_3333_4444;
const OTHER: u64 = 0x5555_6666_7777_8888;

/// A file of its own per test and run: tests run in parallel, so they share
/// no directory that one of them could remove under another.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("septum-crash-cli-{}-{name}", std::process::id()))
}

fn decode(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_septum"))
        .args(["crash", "decode"])
        .args(args)
        .output()
        .expect("septum runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// A subject fault on CPU 0 with the exit and the guest registers.
fn subject_fault() -> Record {
    let mut r = Record::new(
        Reason::SubjectFault,
        4,
        IMAGE,
        TscCycles(123_456),
        0,
        Some(SubjectId(1)),
    );
    r.set_exit(ExitInfo {
        exit_reason: 48,
        qualification: 0x181,
        guest_physical: 0x4000_2000,
        guest_linear: 0x4000_2000,
        instruction_length: 3,
        ..ExitInfo::default()
    });
    r.set_guest(GuestRegisters {
        rax: 0xdead,
        rip: 0x20_1000,
        rsp: 0xf_ff00,
        cr3: 0x1000,
        ..GuestRegisters::default()
    });
    r.seal();
    r
}

/// A root-mode page fault on CPU 1, written by another image.
fn root_fault_other_image() -> Record {
    let mut r = Record::new(Reason::RootException, 4, OTHER, TscCycles(99), 1, None);
    r.set_root_exception(RootException {
        vector: 14,
        error_code: 3,
        rip: 0x10_2345,
        cs: 8,
        rflags: 0x86,
        rsp: 0x2f_0000,
        ss: 0x10,
        cr2: 0x10_0000,
    });
    r.seal();
    r
}

/// Four slots: valid, other image, torn, empty.
fn four_slot_dump() -> Vec<u8> {
    let mut header = Header::new(IMAGE, 4);
    header.next_boot(IMAGE);
    header.count_crash();
    let mut bytes = vec![0; region_size(4).unwrap() as usize];
    let mut torn = subject_fault();
    torn.cpu = 2;
    torn.seal();
    encode_region(
        &header,
        &[subject_fault(), root_fault_other_image(), torn],
        &mut bytes,
    );
    // Tear slot 2: its second half from another write.
    let at = slot_offset(2).unwrap() + 300;
    bytes[at] ^= 0x5a;
    bytes
}

/// A dump file, removed when dropped.
struct DumpFile(PathBuf);

impl DumpFile {
    fn to_str(&self) -> Option<&str> {
        self.0.to_str()
    }
    fn display(&self) -> std::path::Display<'_> {
        self.0.display()
    }
}

impl Drop for DumpFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write(name: &str, bytes: &[u8]) -> DumpFile {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    DumpFile(path)
}

#[test]
fn text_lists_every_slot_with_its_state() {
    let path = write("four.bin", &four_slot_dump());
    let out = decode(&[path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = path.display();
    for expected in [
        format!(
            "{shown}: crash-audit region, layout version 1, 4 slot(s), boot counter 1, 1 \
             crash(es) recorded, policy hash 0x1111222233334444"
        ),
        "expected policy hash 0x1111222233334444 (from the header)".to_owned(),
        "slot 0: valid record".to_owned(),
        "    reason subject_fault (4), cpu 0, subject 1, boot 4, tsc 123456, policy hash \
         0x1111222233334444"
            .to_owned(),
        "    exit: reason 48 (EPT violation), qualification 0x181, guest-physical 0x40002000, \
         guest-linear 0x40002000"
            .to_owned(),
        "slot 1: record from another image (policy hash 0x5555666677778888, expected \
         0x1111222233334444)"
            .to_owned(),
        "    reason root_exception (1), cpu 1, subject none, boot 4, tsc 99, policy hash \
         0x5555666677778888"
            .to_owned(),
        "    root exception: vector 14 error 0x3 rip 0x102345 cs 0x8 rflags 0x86 rsp 0x2f0000 \
         ss 0x10 cr2 0x100000"
            .to_owned(),
        "slot 3: empty".to_owned(),
        "1 valid, 1 from another image, 1 invalid, 1 empty".to_owned(),
    ] {
        assert!(
            stdout.lines().any(|l| l == expected),
            "missing line {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("slot 2: invalid: bad checksum: stored 0x"),
        "{stdout}"
    );
    assert!(stdout.contains("rax=0x000000000000dead"), "{stdout}");
    assert!(stdout.contains("rip=0x0000000000201000"), "{stdout}");
}

#[test]
fn json_has_every_slot_and_the_summary() {
    let path = write("four-json.bin", &four_slot_dump());
    let out = decode(&[path.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kind"], "region");
    assert_eq!(doc["header"]["slot_count"], 4);
    assert_eq!(doc["header"]["boot_counter"], 1);
    let slots = doc["slots"].as_array().unwrap();
    let states: Vec<&str> = slots
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["valid", "other_image", "invalid", "empty"]);
    let r = &slots[0]["record"];
    assert_eq!(r["reason"], "subject_fault");
    assert_eq!(r["subject"], 1);
    assert_eq!(r["exit"]["exit_reason"], 48);
    assert_eq!(r["exit"]["exit_reason_text"], "EPT violation");
    assert_eq!(r["exit"]["guest_physical"], "0x40002000");
    assert_eq!(r["guest"]["rax"], "0xdead");
    assert_eq!(r["root_exception"], serde_json::Value::Null);
    assert_eq!(slots[1]["record"]["subject"], serde_json::Value::Null);
    assert_eq!(slots[1]["record"]["root_exception"]["cr2"], "0x100000");
    assert_eq!(slots[2]["error"], "bad_checksum");
    assert_eq!(
        doc["summary"],
        serde_json::json!({"valid": 1, "other_image": 1, "invalid": 1, "empty": 1})
    );
}

#[test]
fn policy_hash_option_sets_the_expected_image() {
    let path = write("four-hash.bin", &four_slot_dump());
    let out = decode(&[
        path.to_str().unwrap(),
        "--format",
        "json",
        "--policy-hash",
        "0x5555666677778888",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["expected_policy_hash_from"], "option");
    assert_eq!(doc["slots"][0]["status"], "other_image");
    assert_eq!(doc["slots"][1]["status"], "valid");

    let out = decode(&[path.to_str().unwrap(), "--policy-hash", "xyz"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out.stderr).contains("`xyz` is not a 64-bit hex value"));
}

#[test]
fn a_bare_record_is_decoded() {
    let path = write("record.bin", &subject_fault().encode());
    let out = decode(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("{}: one crash record\n", path.display())));
    assert!(stdout.contains("record: valid record\n"), "{stdout}");

    let mut bad = subject_fault().encode();
    bad[200] ^= 1;
    let path = write("record-bad.bin", &bad);
    let out = decode(&[path.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["record"]["status"], "invalid");
    assert_eq!(doc["record"]["error"], "bad_checksum");
}

#[test]
fn malformed_dumps_fail_with_an_error_naming_the_file() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "empty.bin",
            vec![],
            "0 bytes are too short for a crash-audit header",
        ),
        (
            "zeros.bin",
            vec![0; 8192],
            "not a crash-audit region: bad magic 0x0000000000000000",
        ),
        (
            "truncated.bin",
            four_slot_dump()[..5000].to_vec(),
            "5000 bytes end before the last record slot the header announces (6144 bytes needed)",
        ),
        (
            "short-record.bin",
            subject_fault().encode()[..100].to_vec(),
            "100 bytes are too short for a record (512 bytes)",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = write(name, &bytes);
        let out = decode(&[path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert_eq!(text(&out.stdout), "", "{name}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {}: {message}", path.display())),
            "{name}: {stderr}"
        );
    }
    let missing = scratch("does-not-exist.bin");
    let out = decode(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with(&format!("error: cannot read {}", missing.display())),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn garbage_never_panics() {
    // A fixed xorshift stream: junk after a valid header, and junk alone.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..24 {
        let len = (next() % 9000) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if case % 2 == 0 {
            let header = Header::new(IMAGE, (next() % 4) as u32).encode();
            let n = header.len().min(bytes.len());
            bytes[..n].copy_from_slice(&header[..n]);
        }
        let path = write(&format!("junk{case}.bin"), &bytes);
        for format in ["text", "json"] {
            let out = decode(&[path.to_str().unwrap(), "--format", format]);
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "case {case}: {:?} {}",
                out.status,
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn a_panic_text_in_the_guest_registers_is_shown() {
    let [
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rbp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
    ] = septum_abi::panic::encode(b"faulter/src/main.rs:26: faulter: deliberate fault\n");
    let mut r = subject_fault();
    r.set_guest(GuestRegisters {
        rax: septum_abi::panic::PANIC_MAGIC,
        rbx,
        rcx,
        rdx,
        rsi,
        rdi,
        rbp,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
        ..GuestRegisters::default()
    });
    r.seal();
    let path = write("panic.bin", &r.encode());
    let out = decode(&[path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l == "    panic: faulter/src/main.rs:26: faulter: deliberate fault?"),
        "{stdout}"
    );
    let out = decode(&[path.to_str().unwrap(), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["record"]["record"]["panic"],
        "faulter/src/main.rs:26: faulter: deliberate fault?"
    );

    // An ordinary fault record has no panic line, and null in JSON.
    let path = write("plain.bin", &subject_fault().encode());
    let out = decode(&[path.to_str().unwrap()]);
    assert!(!text(&out.stdout).contains("panic:"));
    let out = decode(&[path.to_str().unwrap(), "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["record"]["record"]["panic"].is_null());
}
