//! Checking what a subject's binary declares it uses against its policy.
//!
//! A subject looks its resources up by logical name at run time; a name
//! the policy does not grant, or a channel whose element size or protocol
//! differs from what the code expects, would only show once the system
//! runs. The SDK's `needs!` macro writes those names, with what the code
//! expects of each, into the binary's `.septum.needs` section (format:
//! `septum_sdk::needs`, docs/sdk.md "Declared needs"). [`parse`] reads it
//! and [`check`] compares every need with the subject's policy element,
//! returning one located error per mismatch, at the subject's `binary`
//! attribute (with a label at the policy element that disagrees).
//!
//! A binary without the section declares nothing and is not checked: the
//! run-time lookups still work, they are just not verified before boot.

use septum_policy::Diagnostic;
use septum_policy::model::{self, ChannelRole, Policy};

/// Rule id of a declared need the policy does not meet.
pub const RULE_CONTRACT: &str = "compose-contract";
/// Name of the section the SDK writes.
pub const SECTION: &str = ".septum.needs";
/// Format version this composer reads.
pub const VERSION: u16 = 1;
const MAGIC: &[u8; 8] = b"SEPTNEED";
const HEADER_LEN: usize = 16;
const RECORD_LEN: usize = 24;

/// What a need asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeedKind {
    /// Writes a channel.
    ChannelWriter {
        /// Element size the code uses.
        element_size: u64,
        /// Protocol the code speaks.
        protocol: u64,
    },
    /// Reads a channel.
    ChannelReader {
        /// Element size the code uses.
        element_size: u64,
        /// Protocol the code speaks.
        protocol: u64,
    },
    /// Raises a source event.
    SourceEvent,
    /// Waits for a target event.
    TargetEvent,
    /// Uses a memory mapping.
    Memory {
        /// The code writes it.
        writable: bool,
        /// The code executes from it.
        executable: bool,
        /// Minimum size in bytes (0: any).
        min_size: u64,
    },
    /// Uses a device's I/O ports (the first range of the grant).
    Device {
        /// Minimum number of ports.
        ports: u64,
    },
    /// Makes a kernel call: needs a source event of a `kernel` event with
    /// this action (`septum_abi::hypercall::KernelActionCode` value).
    Kernel {
        /// The action code.
        action: u64,
    },
    /// Reads the crash-audit region (`<crashAudit logical>`).
    CrashAudit,
}

/// One declared need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// What it asks for.
    pub kind: NeedKind,
    /// The logical name the code looks up.
    pub name: String,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parse the section's bytes (a sequence of blocks). Every length is
/// checked; an unknown version or kind is an error naming it.
pub fn parse(section: &[u8]) -> Result<Vec<Need>, String> {
    let mut needs = Vec::new();
    let mut at = 0usize;
    while at < section.len() {
        let block = &section[at..];
        if block.iter().all(|&b| b == 0) {
            break; // linker padding after the last block
        }
        if block.get(..8) != Some(MAGIC.as_slice()) {
            return Err(format!("no block magic at offset {at:#x}"));
        }
        let truncated = || format!("block at offset {at:#x} is truncated");
        let version = u16_at(block, 8).ok_or_else(truncated)?;
        if version != VERSION {
            return Err(format!(
                "format version {version}, this composer reads version {VERSION} (SDK and \
                 composer from different releases?)"
            ));
        }
        let count = u16_at(block, 10).ok_or_else(truncated)?;
        let length = u32_at(block, 12).ok_or_else(truncated)? as usize;
        let block = block.get(..length).ok_or_else(truncated)?;
        let mut r = HEADER_LEN;
        for _ in 0..count {
            let bad = || format!("record at offset {:#x} is truncated", at + r);
            let rec = block.get(r..r + RECORD_LEN).ok_or_else(bad)?;
            let (kind, flags) = (rec[0], rec[1]);
            let name_len = usize::from(u16_at(rec, 2).ok_or_else(bad)?);
            let a = u64_at(rec, 8).ok_or_else(bad)?;
            let b = u64_at(rec, 16).ok_or_else(bad)?;
            let name = block
                .get(r + RECORD_LEN..r + RECORD_LEN + name_len)
                .ok_or_else(bad)?;
            let name = std::str::from_utf8(name)
                .map_err(|_| format!("record at offset {:#x}: name is not UTF-8", at + r))?;
            let kind = match kind {
                1 => NeedKind::ChannelWriter {
                    element_size: a,
                    protocol: b,
                },
                2 => NeedKind::ChannelReader {
                    element_size: a,
                    protocol: b,
                },
                3 => NeedKind::SourceEvent,
                4 => NeedKind::TargetEvent,
                5 => NeedKind::Memory {
                    writable: flags & 1 != 0,
                    executable: flags & 2 != 0,
                    min_size: a,
                },
                6 => NeedKind::Device { ports: a },
                7 => NeedKind::Kernel { action: a },
                8 => NeedKind::CrashAudit,
                other => {
                    return Err(format!(
                        "record at offset {:#x}: unknown kind {other}",
                        at + r
                    ));
                }
            };
            needs.push(Need {
                kind,
                name: name.to_owned(),
            });
            r += RECORD_LEN + name_len.div_ceil(8) * 8;
        }
        at += length.max(HEADER_LEN);
    }
    Ok(needs)
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<String> = items.map(|n| format!("\"{n}\"")).collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

/// The I/O port ranges the info page lists for a subject, by logical name
/// (the same names `from_policy` gives them): a whole-device grant names
/// its first range with the device's logical name, a partial grant each
/// `<ioPort>` with its own.
fn io_ports<'p>(
    policy: &'p Policy,
    s: &'p model::Subject,
) -> Vec<(&'p str, &'p model::IoPortRange)> {
    let mut out = Vec::new();
    for d in &s.devices {
        let Some(idx) = d.physical.target else {
            continue;
        };
        let device = policy.device(idx);
        if d.is_whole_device() {
            if let Some(first) = device.io_ports.first() {
                out.push((d.logical.value.as_str(), first));
            }
        } else {
            for g in &d.io_ports {
                if let Some(range) = g
                    .physical
                    .target
                    .and_then(|p| device.io_ports.get(p.index()))
                {
                    out.push((g.logical.value.as_str(), range));
                }
            }
        }
    }
    out
}

/// Every need of `needs` the policy does not meet for subject `s`, as
/// errors at its `binary` attribute.
pub fn check(policy: &Policy, s: &model::Subject, needs: &[Need]) -> Vec<Diagnostic> {
    let who = format!(
        "subject \"{}\" (binary \"{}\")",
        s.name.value, s.binary.value
    );
    let error = |message: String| Diagnostic::error(RULE_CONTRACT, s.binary.span, message);
    let mut errors = Vec::new();
    for need in needs {
        let n = &need.name;
        match need.kind {
            NeedKind::ChannelWriter {
                element_size,
                protocol,
            }
            | NeedKind::ChannelReader {
                element_size,
                protocol,
            } => {
                let writer = matches!(need.kind, NeedKind::ChannelWriter { .. });
                let verb = if writer { "writes" } else { "reads" };
                let Some(end) = s.channels.iter().find(|c| c.logical.value == *n) else {
                    errors.push(
                        error(format!(
                            "{who} {verb} channel \"{n}\", but the policy gives it no channel \
                             \"{n}\""
                        ))
                        .with_help(format!(
                            "the subject's channels are: {}",
                            names(s.channels.iter().map(|c| c.logical.value.as_str()))
                        )),
                    );
                    continue;
                };
                let Some(idx) = end.physical.target else {
                    continue;
                };
                let channel = policy.channel(idx);
                let physical = &channel.name.value;
                if (end.role == ChannelRole::Writer) != writer {
                    let role = if writer { "reader" } else { "writer" };
                    errors.push(
                        error(format!(
                            "{who} {verb} channel \"{n}\", but the policy makes it the {role} \
                             of channel \"{physical}\""
                        ))
                        .with_label(end.span, format!("{role} \"{n}\" here")),
                    );
                    continue;
                }
                if channel.element_size.value != element_size {
                    errors.push(
                        error(format!(
                            "{who} {verb} channel \"{n}\" with {element_size}-byte elements, but \
                             the policy's channel \"{physical}\" has {}-byte elements",
                            channel.element_size.value
                        ))
                        .with_label(channel.span, format!("channel \"{physical}\"")),
                    );
                }
                if channel.protocol.value != protocol {
                    errors.push(
                        error(format!(
                            "{who} {verb} channel \"{n}\" with protocol {protocol:#x}, but the \
                             policy's channel \"{physical}\" has protocol {:#x}",
                            channel.protocol.value
                        ))
                        .with_label(channel.span, format!("channel \"{physical}\"")),
                    );
                }
            }
            NeedKind::SourceEvent => {
                if !s.source_events().any(|e| e.logical.value == *n) {
                    errors.push(
                        error(format!(
                            "{who} raises source event \"{n}\", but the policy gives it no \
                             source event \"{n}\""
                        ))
                        .with_help(format!(
                            "the subject's source events are: {}",
                            names(s.source_events().map(|e| e.logical.value.as_str()))
                        )),
                    );
                }
            }
            NeedKind::TargetEvent => {
                if !s.targets.iter().any(|e| e.logical.value == *n) {
                    errors.push(
                        error(format!(
                            "{who} waits for target event \"{n}\", but the policy gives it no \
                             target event \"{n}\""
                        ))
                        .with_help(format!(
                            "the subject's target events are: {}",
                            names(s.targets.iter().map(|e| e.logical.value.as_str()))
                        )),
                    );
                }
            }
            NeedKind::Memory {
                writable,
                executable,
                min_size,
            } => {
                let Some(map) = s.maps.iter().find(|m| m.logical.value == *n) else {
                    errors.push(
                        error(format!(
                            "{who} uses memory \"{n}\", but the policy gives it no map \"{n}\""
                        ))
                        .with_help(format!(
                            "the subject's maps are: {}",
                            names(s.maps.iter().map(|m| m.logical.value.as_str()))
                        )),
                    );
                    continue;
                };
                let here = |d: Diagnostic| d.with_label(map.span, format!("map \"{n}\""));
                if writable && !map.writable.value {
                    errors.push(here(error(format!(
                        "{who} writes memory \"{n}\", but the policy maps it read-only"
                    ))));
                }
                if executable && !map.executable.value {
                    errors.push(here(error(format!(
                        "{who} executes memory \"{n}\", but the policy maps it not executable"
                    ))));
                }
                if let Some(idx) = map.physical.target {
                    let region = policy.region(idx);
                    if region.size.value < min_size {
                        errors.push(here(error(format!(
                            "{who} needs memory \"{n}\" of at least {min_size:#x} bytes, but the \
                             policy maps region \"{}\" of {:#x} bytes",
                            region.name.value, region.size.value
                        ))));
                    }
                }
            }
            NeedKind::Kernel { action } => {
                let granted = s.source_events().any(|e| {
                    e.physical
                        .target
                        .and_then(|idx| policy.event(idx).action.as_ref())
                        .and_then(|a| a.value.info_code())
                        .is_some_and(|code| code as u64 == action)
                });
                if !granted {
                    errors.push(
                        error(format!(
                            "{who} makes the kernel call \"{n}\", but the policy gives it no \
                             source event of a kernel event with action \"{n}\""
                        ))
                        .with_help(format!(
                            "add <event name=\"..\" mode=\"kernel\" action=\"{n}\"/> to \
                             <events> and a source <event> for it to the subject"
                        )),
                    );
                }
            }
            NeedKind::CrashAudit => {
                if s.crash_audit.as_ref().is_none_or(|c| c.logical.value != *n) {
                    errors.push(
                        error(format!(
                            "{who} reads the crash-audit region \"{n}\", but the policy gives it \
                             no <crashAudit logical=\"{n}\">"
                        ))
                        .with_help(
                            "add <crashAudit logical=\"..\"/> to the subject (one reader per \
                             system; docs/policy.md, \"Crash-audit reader\")",
                        ),
                    );
                }
            }
            NeedKind::Device { ports } => {
                let granted = io_ports(policy, s);
                let Some((_, range)) = granted.iter().find(|(l, _)| *l == n.as_str()) else {
                    errors.push(
                        error(format!(
                            "{who} uses device \"{n}\", but the policy gives it no device or I/O \
                             port range \"{n}\""
                        ))
                        .with_help(format!(
                            "the subject's I/O port ranges are: {}",
                            names(granted.iter().map(|(l, _)| *l))
                        )),
                    );
                    continue;
                };
                let count =
                    u64::from(range.end.value).saturating_sub(u64::from(range.start.value)) + 1;
                if count < ports {
                    errors.push(
                        error(format!(
                            "{who} uses device \"{n}\" with at least {ports} I/O ports, but the \
                             policy grants {count} (port range \"{}\")",
                            range.name.value
                        ))
                        .with_label(range.span, format!("port range \"{}\"", range.name.value)),
                    );
                }
            }
        }
    }
    errors
}
