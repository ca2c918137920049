//! `septum crash decode DUMP [--format text|json] [--policy-hash HEX]`:
//! the crash-audit records in a dump of the region, on the host.
//!
//! A dump is the region's raw bytes from its first byte (what an emulator
//! or a debugger saves from the address the report gives, or what a test
//! writes with `septum_abi::crash::encode_region`); a file holding one bare
//! record (it starts with the record magic) is decoded too. The layout and
//! every check are `septum_abi::crash`'s; this module only renders.
//!
//! Output contract:
//!
//! - every slot is listed: `valid`, `other_image` (a well-formed record
//!   whose policy hash is not the expected one, decoded all the same),
//!   `invalid` with the reason (bad magic, bad checksum, unknown version or
//!   size) or `empty` (all zero: never written);
//! - the expected policy hash is `--policy-hash` (from the image's
//!   report), else the header's (the image that booted last);
//! - text goes to stdout; `--format json` prints one JSON document;
//! - a file that cannot be read, or whose header is not a crash-audit
//!   header, or that ends before the last slot the header announces, is an
//!   `error: DUMP: ...` line on stderr and exit status 1. Invalid records
//!   inside a well-formed region are reported, not errors (exit status 0).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};

use septum_abi::crash::{
    ExitInfo, GuestRegisters, HEADER_SIZE, Header, MachineCheck, RECORD_MAGIC, Record, RecordError,
    Region, RegionError, RootException, SlotState, classify,
};
use septum_kerncore::vmx::exit_reason_text;

/// Parse a `--policy-hash` value: hex, with or without `0x`.
pub fn parse_hash(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text)
        .replace('_', "");
    if digits.is_empty() || digits.len() > 16 {
        return Err(format!("`{text}` is not a 64-bit hex value"));
    }
    u64::from_str_radix(&digits, 16).map_err(|_| format!("`{text}` is not a 64-bit hex value"))
}

/// What the dump holds.
enum Dump {
    /// A region: its header and every slot.
    Region {
        header: Header,
        slots: Vec<(u32, SlotState)>,
    },
    /// One bare record (boxed: a record is 512 bytes).
    Record(Box<SlotState>),
}

/// Decode the dump at `path` and print it.
pub fn decode(path: &Path, json: bool, policy_hash: Option<u64>) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let shown = path.display().to_string();
    let starts_with_record = bytes
        .get(..8)
        .is_some_and(|m| m == RECORD_MAGIC.to_le_bytes());
    let (dump, expected) = if starts_with_record {
        let expected =
            policy_hash.unwrap_or_else(|| Record::decode(&bytes).map_or(0, |r| r.policy_hash));
        match classify(&bytes, expected) {
            SlotState::Invalid(RecordError::TooShort { len }) => {
                return Err(anyhow!("{shown}: {}", RecordError::TooShort { len }));
            }
            state => (Dump::Record(Box::new(state)), expected),
        }
    } else {
        let region = Region::parse(&bytes).map_err(|e| match e {
            RegionError::Header(h) if bytes.len() >= HEADER_SIZE => {
                anyhow!("{shown}: not a crash-audit region: {h}")
            }
            other => anyhow!("{shown}: {other}"),
        })?;
        let expected = policy_hash.unwrap_or(region.header().policy_hash);
        let slots = region.slots(expected).collect();
        (
            Dump::Region {
                header: *region.header(),
                slots,
            },
            expected,
        )
    };
    if json {
        let doc = json_dump(&shown, &dump, expected, policy_hash.is_some());
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!(
            "{}",
            text_dump(&shown, &dump, expected, policy_hash.is_some())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn hash(v: u64) -> String {
    format!("{v:#018x}")
}

fn reason_name(record: &Record) -> String {
    match record.reason() {
        Some(r) => r.name().to_owned(),
        None => format!("unknown_{}", record.reason),
    }
}

fn subject_text(record: &Record) -> String {
    record
        .subject()
        .map_or("none".to_owned(), |s| s.0.to_string())
}

/// `basic reason (text)`, with the entry-failure bit spelled out.
fn exit_reason_words(exit_reason: u32) -> String {
    let basic = (exit_reason & 0xffff) as u16;
    let failed = if exit_reason & (1 << 31) != 0 {
        ", VM-entry failure"
    } else {
        ""
    };
    format!("{basic} ({}{failed})", exit_reason_text(basic))
}

fn error_code(e: &RecordError) -> &'static str {
    match e {
        RecordError::TooShort { .. } => "too_short",
        RecordError::BadMagic { .. } => "bad_magic",
        RecordError::UnsupportedVersion { .. } => "unsupported_version",
        RecordError::BadSize { .. } => "bad_size",
        RecordError::BadChecksum { .. } => "bad_checksum",
    }
}

fn text_record(o: &mut String, record: &Record) {
    let _ = writeln!(
        o,
        "    reason {} ({}), cpu {}, subject {}, boot {}, tsc {}, policy hash {}",
        reason_name(record),
        record.reason,
        record.cpu,
        subject_text(record),
        record.boot_counter,
        record.tsc,
        hash(record.policy_hash)
    );
    if let Some(e) = record.exit() {
        let ExitInfo {
            exit_reason,
            vm_instruction_error,
            qualification,
            guest_physical,
            guest_linear,
            interruption_info,
            interruption_error,
            idt_vectoring_info,
            idt_vectoring_error,
            instruction_length,
            instruction_info,
            reserved: _,
        } = *e;
        let _ = writeln!(
            o,
            "    exit: reason {}, qualification {qualification:#x}, guest-physical \
             {guest_physical:#x}, guest-linear {guest_linear:#x}",
            exit_reason_words(exit_reason)
        );
        let _ = writeln!(
            o,
            "          interruption info {interruption_info:#x} error {interruption_error:#x}, \
             IDT vectoring {idt_vectoring_info:#x} error {idt_vectoring_error:#x}, instruction \
             length {instruction_length} info {instruction_info:#x}, VM-instruction error \
             {vm_instruction_error}"
        );
    }
    if let Some(g) = record.guest() {
        let named: Vec<(&str, u64)> = g.named().collect();
        for line in named.chunks(4) {
            let words: Vec<String> = line
                .iter()
                .map(|(name, v)| format!("{name:>6}={v:#018x}"))
                .collect();
            let _ = writeln!(o, "    guest {}", words.join(" "));
        }
        if let Some(text) = g.panic_text() {
            let _ = writeln!(o, "    panic: {text}");
        }
    }
    if let Some(x) = record.root_exception() {
        let RootException {
            vector,
            error_code,
            rip,
            cs,
            rflags,
            rsp,
            ss,
            cr2,
        } = *x;
        let _ = writeln!(
            o,
            "    root exception: vector {vector} error {error_code:#x} rip {rip:#x} cs {cs:#x} \
             rflags {rflags:#x} rsp {rsp:#x} ss {ss:#x} cr2 {cr2:#x}"
        );
    }
    if let Some(m) = record.machine_check() {
        let MachineCheck {
            mcg_status,
            bank,
            status,
            address,
            misc,
            reserved: _,
        } = *m;
        let _ = writeln!(
            o,
            "    machine check: MCG_STATUS {mcg_status:#x}, bank {bank}: status {status:#x} \
             address {address:#x} misc {misc:#x}"
        );
    }
}

fn text_slot(o: &mut String, label: &str, state: &SlotState, expected: u64) {
    match state {
        SlotState::Empty => {
            let _ = writeln!(o, "{label}: empty");
        }
        SlotState::Valid(record) => {
            let _ = writeln!(o, "{label}: valid record");
            text_record(o, record);
        }
        SlotState::OtherImage(record) => {
            let _ = writeln!(
                o,
                "{label}: record from another image (policy hash {}, expected {})",
                hash(record.policy_hash),
                hash(expected)
            );
            text_record(o, record);
        }
        SlotState::Invalid(e) => {
            let _ = writeln!(o, "{label}: invalid: {e}");
        }
    }
}

fn text_dump(file: &str, dump: &Dump, expected: u64, given: bool) -> String {
    let mut o = String::new();
    let source = if given { "--policy-hash" } else { "the header" };
    match dump {
        Dump::Region { header, slots } => {
            let _ = writeln!(
                o,
                "{file}: crash-audit region, layout version {}, {} slot(s), boot counter {}, \
                 {} crash(es) recorded, policy hash {}",
                header.version,
                header.slot_count,
                header.boot_counter,
                header.crash_count,
                hash(header.policy_hash)
            );
            let _ = writeln!(o, "expected policy hash {} (from {source})", hash(expected));
            for (slot, state) in slots {
                text_slot(&mut o, &format!("slot {slot}"), state, expected);
            }
            let (valid, other, invalid, empty) = counts(slots.iter().map(|(_, s)| s));
            let _ = writeln!(
                o,
                "{valid} valid, {other} from another image, {invalid} invalid, {empty} empty"
            );
        }
        Dump::Record(state) => {
            let _ = writeln!(o, "{file}: one crash record");
            let source = if given { "--policy-hash" } else { "the record" };
            let _ = writeln!(o, "expected policy hash {} (from {source})", hash(expected));
            text_slot(&mut o, "record", state, expected);
        }
    }
    o
}

fn counts<'a>(states: impl Iterator<Item = &'a SlotState>) -> (usize, usize, usize, usize) {
    let mut c = (0, 0, 0, 0);
    for s in states {
        match s {
            SlotState::Valid(_) => c.0 += 1,
            SlotState::OtherImage(_) => c.1 += 1,
            SlotState::Invalid(_) => c.2 += 1,
            SlotState::Empty => c.3 += 1,
        }
    }
    c
}

fn json_guest(g: &GuestRegisters) -> Value {
    let map: serde_json::Map<String, Value> = g
        .named()
        .map(|(name, v)| (name.to_owned(), Value::String(hex(v))))
        .collect();
    Value::Object(map)
}

fn json_record(record: &Record) -> Value {
    let exit = record.exit().map(|e| {
        json!({
            "exit_reason": e.exit_reason,
            "exit_reason_text": exit_reason_text((e.exit_reason & 0xffff) as u16),
            "entry_failure": e.exit_reason & (1 << 31) != 0,
            "qualification": hex(e.qualification),
            "guest_physical": hex(e.guest_physical),
            "guest_linear": hex(e.guest_linear),
            "interruption_info": hex(e.interruption_info.into()),
            "interruption_error": hex(e.interruption_error.into()),
            "idt_vectoring_info": hex(e.idt_vectoring_info.into()),
            "idt_vectoring_error": hex(e.idt_vectoring_error.into()),
            "instruction_length": e.instruction_length,
            "instruction_info": hex(e.instruction_info.into()),
            "vm_instruction_error": e.vm_instruction_error,
        })
    });
    let root = record.root_exception().map(|x| {
        json!({
            "vector": x.vector,
            "error_code": hex(x.error_code),
            "rip": hex(x.rip),
            "cs": hex(x.cs),
            "rflags": hex(x.rflags),
            "rsp": hex(x.rsp),
            "ss": hex(x.ss),
            "cr2": hex(x.cr2),
        })
    });
    let machine_check = record.machine_check().map(|m| {
        json!({
            "mcg_status": hex(m.mcg_status),
            "bank": m.bank,
            "status": hex(m.status),
            "address": hex(m.address),
            "misc": hex(m.misc),
        })
    });
    json!({
        "reason": reason_name(record),
        "reason_number": record.reason,
        "cpu": record.cpu,
        "subject": record.subject().map(|s| s.0),
        "boot_counter": record.boot_counter,
        "tsc": record.tsc,
        "policy_hash": hash(record.policy_hash),
        "checksum": format!("{:#010x}", record.checksum),
        "exit": exit,
        "guest": record.guest().map(json_guest),
        "panic": record.guest().and_then(|g| g.panic_text()).map(|t| t.to_string()),
        "root_exception": root,
        "machine_check": machine_check,
    })
}

fn json_slot(state: &SlotState) -> Value {
    match state {
        SlotState::Empty => json!({"status": "empty"}),
        SlotState::Valid(r) => json!({"status": "valid", "record": json_record(r)}),
        SlotState::OtherImage(r) => {
            json!({"status": "other_image", "record": json_record(r)})
        }
        SlotState::Invalid(e) => json!({
            "status": "invalid",
            "error": error_code(e),
            "message": e.to_string(),
        }),
    }
}

fn json_dump(file: &str, dump: &Dump, expected: u64, given: bool) -> Value {
    match dump {
        Dump::Region { header, slots } => {
            let (valid, other, invalid, empty) = counts(slots.iter().map(|(_, s)| s));
            let slots: Vec<Value> = slots
                .iter()
                .map(|(i, s)| {
                    let mut v = json_slot(s);
                    v["slot"] = json!(i);
                    v
                })
                .collect();
            json!({
                "file": file,
                "kind": "region",
                "header": {
                    "version": header.version,
                    "slot_count": header.slot_count,
                    "boot_counter": header.boot_counter,
                    "crash_count": header.crash_count,
                    "policy_hash": hash(header.policy_hash),
                },
                "expected_policy_hash": hash(expected),
                "expected_policy_hash_from": if given { "option" } else { "header" },
                "slots": slots,
                "summary": {"valid": valid, "other_image": other, "invalid": invalid, "empty": empty},
            })
        }
        Dump::Record(state) => json!({
            "file": file,
            "kind": "record",
            "expected_policy_hash": hash(expected),
            "expected_policy_hash_from": if given { "option" } else { "record" },
            "record": json_slot(state),
        }),
    }
}
