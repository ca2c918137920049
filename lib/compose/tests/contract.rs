//! Declared needs checked before boot: synthetic subject binaries carry a
//! `.septum.needs` section encoded by the SDK itself (so the SDK's encoder
//! and the composer's parser are tested together), and composing the test
//! policy (tests/fixtures/demo.xml) with them succeeds or fails with the
//! exact located message.

use std::collections::HashMap;
use std::path::PathBuf;

use septum_compose::elf::build;
use septum_compose::{Failure, compose_policy};
use septum_sdk::KernelActionCode;
use septum_sdk::channel::Format;
use septum_sdk::needs::{Need, encode, encoded_len};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.xml")
}

/// The sample subject with `block` as its `.septum.needs` section.
fn declaring(block: &[u8]) -> Vec<u8> {
    build::with_sections(build::sample_subject(), &[(".septum.needs", block)], &[])
}

const LOG: Format = Format {
    protocol: 0x6465_6275_676c_6f67,
    element_size: 64,
};

const PRODUCER: &[Need] = &[
    Need::channel_writer("out", LOG),
    Need::source_event("kick"),
    Need::memory_writable("ram").at_least(0x2000),
    Need::memory("table"),
];
const CONSOLE: &[Need] = &[
    Need::uart("uart"),
    Need::channel_reader("in", LOG),
    Need::target_event("kicked"),
    Need::source_event("halt"),
    Need::kernel(KernelActionCode::Poweroff),
];

/// Compose the fixture with `producer` and `console` binaries; the error
/// lines rendered as `septum compose` prints them (without the source
/// excerpt), or "ok".
fn compose(producer: Vec<u8>, console: Vec<u8>) -> Vec<String> {
    let loaded = septum_policy::check(&fixture());
    let policy = loaded.valid_policy().expect("fixture is valid");
    let binaries: HashMap<String, Vec<u8>> = [
        ("producer".to_owned(), producer),
        ("console".to_owned(), console),
    ]
    .into();
    match compose_policy(policy, &binaries) {
        Ok(_) => vec!["ok".to_owned()],
        Err(Failure::Policy(diags)) => diags
            .iter()
            .map(|d| {
                let text = septum_policy::diag::render_text(d, &loaded.sources);
                let first = text.lines().next().unwrap_or_default();
                let file = first[first.find("demo.xml").unwrap_or_default()..].to_owned();
                match &d.help {
                    Some(help) => format!("{file} | help: {help}"),
                    None => file,
                }
            })
            .collect(),
        Err(e) => vec![format!("{e:?}")],
    }
}

fn block(needs: &'static [Need]) -> Vec<u8> {
    // The static block the macro builds, at whatever length `needs` takes.
    macro_rules! sized {
        ($($n:literal)*) => {
            match encoded_len(needs) {
                $($n => encode::<$n>(needs).to_vec(),)*
                other => panic!("add {other} to the sizes"),
            }
        };
    }
    sized!(16 48 80 112 144 176 208 240)
}

#[test]
fn matching_declarations_compose() {
    assert_eq!(
        compose(declaring(&block(PRODUCER)), declaring(&block(CONSOLE))),
        ["ok"]
    );
}

#[test]
fn a_binary_without_declarations_is_not_checked() {
    assert_eq!(
        compose(build::sample_subject(), build::sample_subject()),
        ["ok"]
    );
}

#[test]
fn several_blocks_are_read() {
    let mut two = block(&PRODUCER[..2]);
    two.extend(block(&PRODUCER[2..]));
    assert_eq!(compose(declaring(&two), declaring(&block(CONSOLE))), ["ok"]);
}

#[test]
fn wrong_channel_name_is_located_at_the_subject() {
    const NEEDS: &[Need] = &[Need::channel_writer("output", LOG)];
    assert_eq!(
        compose(declaring(&block(NEEDS)), build::sample_subject()),
        [
            "demo.xml:19:55: error[compose-contract]: subject \"producer\" (binary \"producer\") \
             writes channel \"output\", but the policy gives it no channel \"output\" | help: the \
             subject's channels are: \"out\""
        ]
    );
}

#[test]
fn wrong_element_size_and_protocol_name_both_sides() {
    const NEEDS: &[Need] = &[Need::channel_reader(
        "in",
        Format {
            protocol: 1,
            element_size: 32,
        },
    )];
    assert_eq!(
        compose(build::sample_subject(), declaring(&block(NEEDS))),
        [
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             reads channel \"in\" with 32-byte elements, but the policy's channel \"log\" has \
             64-byte elements",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             reads channel \"in\" with protocol 0x1, but the policy's channel \"log\" has protocol \
             0x64656275676c6f67"
        ]
    );
}

#[test]
fn wrong_role_is_an_error() {
    const NEEDS: &[Need] = &[Need::channel_reader("out", LOG)];
    assert_eq!(
        compose(declaring(&block(NEEDS)), build::sample_subject()),
        [
            "demo.xml:19:55: error[compose-contract]: subject \"producer\" (binary \"producer\") \
             reads channel \"out\", but the policy makes it the writer of channel \"log\""
        ]
    );
}

#[test]
fn missing_events_memory_and_devices_are_errors() {
    const NEEDS: &[Need] = &[
        Need::source_event("yield"),
        Need::target_event("tick"),
        Need::memory_writable("table"),
        Need::memory("ram"),
        Need::device("uart", 16),
        Need::kernel(KernelActionCode::Sleep),
        Need::crash_audit("crash"),
    ];
    assert_eq!(
        compose(build::sample_subject(), declaring(&block(NEEDS))),
        [
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             raises source event \"yield\", but the policy gives it no source event \"yield\" | \
             help: the subject's source events are: \"halt\"",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             waits for target event \"tick\", but the policy gives it no target event \"tick\" | \
             help: the subject's target events are: \"kicked\"",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             writes memory \"table\", but the policy maps it read-only",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             uses memory \"ram\", but the policy gives it no map \"ram\" | help: the subject's \
             maps are: \"table\"",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             uses device \"uart\" with at least 16 I/O ports, but the policy grants 8 (port \
             range \"ports\")",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             makes the kernel call \"sleep\", but the policy gives it no source event of a \
             kernel event with action \"sleep\" | help: add <event name=\"..\" mode=\"kernel\" \
             action=\"sleep\"/> to <events> and a source <event> for it to the subject",
            "demo.xml:35:54: error[compose-contract]: subject \"console\" (binary \"console\") \
             reads the crash-audit region \"crash\", but the policy gives it no <crashAudit \
             logical=\"crash\"> | help: add <crashAudit logical=\"..\"/> to the subject (one \
             reader per system; docs/policy.md, \"Crash-audit reader\")",
        ]
    );
}

#[test]
fn a_malformed_section_is_a_binary_error() {
    let mut bad = block(CONSOLE);
    bad[8] = 9; // version
    let out = compose(build::sample_subject(), declaring(&bad));
    assert_eq!(
        out,
        [
            "demo.xml:35:54: error[compose-binary]: subject binary: console: section \
             .septum.needs: format version 9, this composer reads version 1 (SDK and composer \
             from different releases?)"
        ]
    );
    for cut in 0..bad.len() {
        let mut damaged = block(CONSOLE);
        damaged.truncate(cut);
        let _ = septum_compose::contract::parse(&damaged);
    }
}

mod hostile {
    //! The section and the symbol table come from subject binaries, which
    //! the integrator may not have built: any bytes must give a value or an
    //! error, never a panic or a hang.

    use proptest::prelude::*;
    use septum_compose::contract::parse;
    use septum_compose::symbols::SymbolMap;

    /// A block header (magic, version 1, `count`, `length`) before `rest`.
    fn with_header(count: u16, length: u32, rest: &[u8]) -> Vec<u8> {
        let mut bytes = b"SEPTNEED".to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(rest);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_section_parses_or_is_refused(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_block_after_a_valid_header_parses_or_is_refused(
            count in any::<u16>(),
            length in any::<u32>(),
            rest in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let _ = parse(&with_header(count, length, &rest));
        }

        #[test]
        fn any_binary_gives_a_symbol_map(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SymbolMap::from_elf("hostile", &bytes);
        }

        #[test]
        fn a_corrupted_elf_gives_a_symbol_map(
            edits in proptest::collection::vec((0usize..0x3000, any::<u8>()), 1..16),
        ) {
            let mut bytes = septum_compose::elf::build::sample_kernel();
            let len = bytes.len();
            for (at, value) in edits {
                bytes[at % len] = value;
            }
            let _ = SymbolMap::from_elf("hostile", &bytes);
        }
    }

    #[test]
    fn a_zero_length_block_does_not_loop() {
        // `length` 0 and no records: the parser must still move on.
        let mut bytes = with_header(0, 0, &[]);
        bytes.extend(with_header(0, 0, &[]));
        assert_eq!(parse(&bytes).map(|needs| needs.len()), Ok(0));
    }
}
