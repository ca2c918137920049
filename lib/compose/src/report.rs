//! The composition report: what went where, for humans (text) and tools
//! (JSON).
//!
//! It lists every physical region (name, address, size, caching, kind),
//! every mapping of every subject (virtual, guest-physical, physical, size,
//! rights), every event (source subject and number, target subject and
//! number, vector, mode), every device and its owner, and the schedule as a
//! per-CPU timeline in ticks and TSC cycles. Values the policy left out and
//! the composer or loader assigned show up here resolved, so the report is
//! the place to look them up. Both forms are deterministic.
//!
//! The crash-audit region is listed with the physical regions (kind
//! `crash_audit`, caching UC) and once more on its own line with its slot
//! count and the image's policy hash, the value `septum crash decode
//! --policy-hash` compares records with.
//!
//! Each subject's fault action is stated with where it comes from: a
//! subject that relies on the default (`stopSystem`, no `onFault` in the
//! policy) is marked `(default)`, and [`default_fault_warnings`] gives the
//! located warning `septum compose` prints for it (any fault of such a
//! subject, even a HLT or a CPUID, stops the whole system). A restartable
//! subject shows its restart limit and fallback and every region its
//! restart re-initialises (zero-filled, or copied from its pristine copy,
//! see [`crate::pristine`]).
//!
//! A monitored subject (`onFault="monitor"`) shows its monitor, the
//! monitor's target event each trap marks pending (with the policy's event
//! name), its state page (region and address) and the exits its monitor
//! chose, by the policy's names (`septum_kerncore::monitor::EXIT_NAMES`).

use std::fmt::Write;

use serde_json::{Value, json};

use septum_kerncore::lifecycle::{RestartRegion, RestartSource};
use septum_kerncore::monitor::EXIT_NAMES;
use septum_kerncore::spec::{ExitSet, FaultAction, MonitorSpec, SourceEvent};

use crate::events::{fallback_name, on_fault_name};
use crate::system::{Composition, DeviceOwner, MappingKind, SubjectOut};

/// Rule id of the warning for a subject on the default fault action.
pub const RULE_DEFAULT_FAULT_ACTION: &str = "compose-default-fault-action";

/// One located warning per subject whose policy leaves `onFault` out.
pub fn default_fault_warnings(policy: &septum_policy::Policy) -> Vec<septum_policy::Diagnostic> {
    policy
        .subjects
        .iter()
        .filter(|s| s.relies_on_default_fault_action())
        .map(|s| {
            let mut warning = septum_policy::Diagnostic::warning(
                RULE_DEFAULT_FAULT_ACTION,
                s.span,
                format!(
                    "subject \"{}\" relies on the default fault action stopSystem: any fault \
                     it causes (even HLT or CPUID) stops the whole system",
                    s.name.as_str()
                ),
            );
            warning.help = Some(
                "state onFault=\"stopSystem\" if that is meant, or choose \"stopSubject\" or \
                 \"restartSubject\""
                    .to_owned(),
            );
            warning
        })
        .collect()
}

/// The fault action as the report states it: `stopSystem (default)`,
/// `restartSubject (limit N, then ACTION)`, or the policy's word.
fn fault_text(s: &SubjectOut) -> String {
    match s.fault_action {
        FaultAction::RestartSubject(p) => format!(
            "restartSubject (limit {}, then {})",
            p.limit,
            fallback_name(p.fallback)
        ),
        action if s.default_fault_action => format!("{} (default)", on_fault_name(action)),
        action => on_fault_name(action).to_owned(),
    }
}

/// What a restart of subject `id` re-initialises, as JSON (`null` when it
/// cannot restart; `limit` and `then` are `null` for a subject only a
/// `<reset/>` target event restarts).
fn restart_json(c: &Composition, s: &SubjectOut, id: usize) -> Value {
    let restartable = c.restart_images.iter().any(|i| i.subject.index() == id);
    if !restartable {
        return Value::Null;
    }
    let (limit, then) = match s.fault_action {
        FaultAction::RestartSubject(p) => {
            (Value::from(p.limit), Value::from(fallback_name(p.fallback)))
        }
        _ => (Value::Null, Value::Null),
    };
    let regions: Vec<Value> = image_of_owned(c, id)
        .iter()
        .map(|r| {
            json!({
                "start": hex(r.start.get()),
                "size": r.size,
                "from": match r.source {
                    RestartSource::Zero => Value::from("zero"),
                    RestartSource::Copy(from) => Value::from(hex(from.get())),
                },
            })
        })
        .collect();
    json!({
        "limit": limit,
        "then": then,
        "regions": regions,
    })
}

/// The policy names of the exits in `exits`: every name all of whose exit
/// reasons the set holds, in [`EXIT_NAMES`] order.
fn exit_names(exits: ExitSet) -> Vec<&'static str> {
    EXIT_NAMES
        .iter()
        .filter(|(_, reasons)| reasons.iter().all(|&r| exits.contains(r)))
        .map(|&(name, _)| name)
        .collect()
}

/// What the report says of a monitored subject's monitor: its name, the
/// policy event whose `switch` hands a trap over, and the
/// name of the region holding its state page (`-` if none).
struct MonitorWords<'a> {
    monitor: &'a str,
    event: &'a str,
    state: &'a str,
}

fn monitor_words<'a>(c: &'a Composition, s: &'a SubjectOut, m: &MonitorSpec) -> MonitorWords<'a> {
    let event = s.monitor_event.as_deref().unwrap_or("-");
    let state = c
        .regions
        .iter()
        .find(|r| r.start == m.state)
        .map_or("-", |r| r.name.as_str());
    MonitorWords {
        monitor: c.subject(m.monitor).name.as_str(),
        event,
        state,
    }
}

/// A monitored subject's monitor as JSON (`null` when it has none).
fn monitor_json(c: &Composition, s: &SubjectOut) -> Value {
    let FaultAction::Monitor(m) = s.fault_action else {
        return Value::Null;
    };
    let words = monitor_words(c, s, &m);
    json!({
        "monitor": words.monitor,
        "monitor_id": m.monitor.index(),
        "event": words.event,
        "target_event": m.event,
        "state": words.state,
        "state_start": hex(m.state.get()),
        "exits": exit_names(m.exits),
    })
}

/// The restart regions of subject `id` (empty if it has none).
fn image_of_owned(c: &Composition, id: usize) -> &[RestartRegion] {
    c.restart_images
        .iter()
        .find(|image| image.subject.index() == id)
        .map_or(&[], |image| image.regions.as_slice())
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn rights(readable: bool, writable: bool, executable: bool) -> String {
    format!(
        "{}{}{}",
        if readable { 'r' } else { '-' },
        if writable { 'w' } else { '-' },
        if executable { 'x' } else { '-' }
    )
}

fn target_of(c: &Composition, action: SourceEvent) -> (String, Option<u8>) {
    match action {
        SourceEvent::Async {
            target,
            target_event,
        }
        | SourceEvent::Switch {
            target,
            target_event,
        } => (c.subject(target).name.clone(), Some(target_event)),
        SourceEvent::Reset {
            target,
            target_event,
        } => (
            format!("{} (reset)", c.subject(target).name),
            Some(target_event),
        ),
        SourceEvent::SelfEvent { target_event } => ("(self)".into(), Some(target_event)),
        SourceEvent::Kernel(a) => (format!("kernel:{}", a.policy_name()), None),
    }
}

/// The report's owner and logical-name columns of a device owner: `kernel`
/// / `debug console`, the subject / its grant name, or `-` / `-`.
fn owner_words(owner: &DeviceOwner) -> (&str, &str) {
    match owner {
        DeviceOwner::Kernel => ("kernel", "debug console"),
        DeviceOwner::Subject { subject, logical } => (subject, logical),
        DeviceOwner::Nobody => ("-", "-"),
    }
}

/// Every image region with its caching and kind: the kernel windows, then
/// the composed regions and the crash-audit region by address.
fn all_regions(c: &Composition) -> Vec<(String, u64, u64, &'static str, String)> {
    let mut out: Vec<_> = crate::alloc::KERNEL_WINDOWS
        .iter()
        .map(|(name, w)| {
            (
                (*name).to_owned(),
                w.start.get(),
                w.size,
                "WB",
                "kernel_window".to_owned(),
            )
        })
        .collect();
    let mut composed: Vec<_> = c
        .regions
        .iter()
        .map(|r| {
            let kind = serde_json::to_value(r.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (
                r.name.clone(),
                r.start.get(),
                r.size,
                r.caching.as_str(),
                kind,
            )
        })
        .collect();
    composed.push((
        crate::crash_audit::NAME.to_owned(),
        c.crash_audit.start.get(),
        c.crash_audit.size,
        "UC",
        "crash_audit".to_owned(),
    ));
    composed.sort_by_key(|r| r.1);
    out.extend(composed);
    out
}

fn kind_name(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::Program => "program",
        MappingKind::InfoPage => "info_page",
        MappingKind::Stack => "stack",
        MappingKind::Memory => "memory",
        MappingKind::ChannelWriter => "channel_writer",
        MappingKind::ChannelReader => "channel_reader",
        MappingKind::PageTables => "page_tables",
        MappingKind::ApicAccess => "apic_access",
    }
}

/// The JSON report.
pub fn json_report(c: &Composition) -> Value {
    let regions: Vec<Value> = all_regions(c)
        .into_iter()
        .map(|(name, start, size, caching, kind)| {
            json!({
                "name": name,
                "start": hex(start),
                "end": hex(start + size),
                "size": size,
                "caching": caching,
                "kind": kind,
            })
        })
        .collect();
    let subjects: Vec<Value> = c
        .subjects
        .iter()
        .enumerate()
        .map(|(id, s)| {
            let mappings: Vec<Value> = s
                .mappings
                .iter()
                .map(|m| {
                    json!({
                        "name": m.name,
                        "kind": kind_name(m.kind),
                        "region": c.regions[m.region].name,
                        "virtual": m.virtual_address.map(|v| hex(v.get())),
                        "guest_physical": hex(m.guest_physical.get()),
                        "physical": hex(m.physical.get()),
                        "size": m.size,
                        "rights": rights(true, m.writable, m.executable),
                        "caching": c.regions[m.region].caching.as_str(),
                    })
                })
                .collect();
            json!({
                "id": id,
                "name": s.name,
                "cpu": s.cpu,
                "vpid": s.vpid,
                "on_fault": on_fault_name(s.fault_action),
                "on_fault_default": s.default_fault_action,
                "restart": restart_json(c, s, id),
                "monitor": monitor_json(c, s),
                "entry": hex(s.guest.rip.get()),
                "cr3": hex(s.guest.cr3.get()),
                "eptp": hex(s.eptp),
                "vmcs": hex(s.vmcs.get()),
                "io_bitmap_a": hex(s.io_bitmap_a.get()),
                "msr_bitmap": hex(s.msr_bitmap.get()),
                "mappings": mappings,
            })
        })
        .collect();
    let events: Vec<Value> = c
        .subjects
        .iter()
        .flat_map(|s| {
            s.source_events.iter().map(move |e| {
                let (target, target_id) = target_of(c, e.action);
                json!({
                    "source": s.name,
                    "source_id": e.id,
                    "logical": e.logical,
                    "event": e.event,
                    "mode": e.mode.as_str(),
                    "target": target,
                    "target_id": target_id,
                    "vector": e.vector,
                })
            })
        })
        .collect();
    let devices: Vec<Value> = c
        .device_owners
        .iter()
        .map(|d| {
            let (owner, logical) = owner_words(&d.owner);
            json!({"device": d.device, "owner": owner, "logical": logical})
        })
        .collect();
    let irq_routes: Vec<Value> = c
        .interrupts
        .routes
        .iter()
        .map(|r| {
            json!({
                "line": r.line.0,
                "owner": c.subject(r.owner).name,
                "vector": r.vector.0,
                "apic_id": r.apic_id.0,
                "trigger": format!("{:?}", r.trigger).to_lowercase(),
            })
        })
        .collect();
    let majors: Vec<Value> = c
        .schedule
        .major_frames
        .iter()
        .map(|m| {
            let cpus: Vec<Value> = m
                .cpus
                .iter()
                .enumerate()
                .map(|(cpu, frames)| {
                    let frames: Vec<Value> = frames
                        .iter()
                        .map(|f| {
                            let p = c.schedule.partition(f.partition);
                            json!({
                                "partition": p.name,
                                "start_ticks": f.start_ticks,
                                "end_ticks": f.end_ticks,
                                "start_cycles": f.start.get(),
                                "end_cycles": f.end.get(),
                                "entry_pad_cycles": c.entry_pad(f).get(),
                            })
                        })
                        .collect();
                    json!({"cpu": cpu, "minor_frames": frames})
                })
                .collect();
            json!({"length_ticks": m.length_ticks, "length_cycles": m.length.get(), "cpus": cpus})
        })
        .collect();
    let partitions: Vec<Value> = c
        .schedule
        .partitions
        .iter()
        .map(|p| {
            let groups: Vec<Vec<&str>> = p
                .groups
                .iter()
                .map(|&g| {
                    c.schedule
                        .group(g)
                        .subjects
                        .iter()
                        .map(|&s| c.subject(s).name.as_str())
                        .collect()
                })
                .collect();
            json!({"name": p.name, "cpu": p.cpu, "groups": groups})
        })
        .collect();
    json!({
        "system": c.name,
        "tsc_khz": c.tsc_khz,
        "cpu_count": c.cpu_count,
        "policy_hash": format!("{:#018x}", c.crash_audit.policy_hash),
        "kernel": {
            "pml4": hex(c.kernel_pml4.get()),
            "debug_console": c.debug_console,
            "debug_uart_port": hex(c.debug_uart_port.into()),
            "vmxon_regions": c.vmxon.iter().map(|a| hex(a.get())).collect::<Vec<_>>(),
        },
        "crash_audit": {
            "name": crate::crash_audit::NAME,
            "start": hex(c.crash_audit.start.get()),
            "end": hex(c.crash_audit.end()),
            "size": c.crash_audit.size,
            "slot_count": c.crash_audit.slot_count,
            "caching": "UC",
            "loaded": false,
            "policy_hash": format!("{:#018x}", c.crash_audit.policy_hash),
        },
        "regions": regions,
        "subjects": subjects,
        "events": events,
        "devices": devices,
        "irq_routes": irq_routes,
        "scheduling": {
            "tick_rate": c.schedule.tick_rate,
            "partitions": partitions,
            "major_frames": majors,
        },
    })
}

/// The text report.
pub fn text_report(c: &Composition) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Septum system \"{}\"", c.name);
    let _ = writeln!(
        o,
        "TSC {} kHz, {} CPU(s), kernel PML4 {:#x}, debug console {} (port {:#x})",
        c.tsc_khz,
        c.cpu_count,
        c.kernel_pml4.get(),
        c.debug_console,
        c.debug_uart_port
    );
    let _ = writeln!(
        o,
        "Crash audit {:#x}-{:#x} ({:#x} bytes, {} record slot(s), UC, not loaded), policy hash \
         {:#018x}",
        c.crash_audit.start.get(),
        c.crash_audit.end(),
        c.crash_audit.size,
        c.crash_audit.slot_count,
        c.crash_audit.policy_hash
    );
    let regions = all_regions(c);
    let _ = writeln!(o, "\nPhysical regions ({})", regions.len());
    let _ = writeln!(
        o,
        "  {:<18} {:<18} {:>12}  {:<7} {:<18} name",
        "start", "end", "size", "caching", "kind"
    );
    for (name, start, size, caching, kind) in regions {
        let _ = writeln!(
            o,
            "  {start:#018x} {:#018x} {size:>#12x}  {caching:<7} {kind:<18} {name}",
            start + size
        );
    }
    let _ = writeln!(o, "\nSubjects ({})", c.subjects.len());
    for (id, s) in c.subjects.iter().enumerate() {
        let _ = writeln!(
            o,
            "  {} (id {id}, cpu {}, vpid {}, entry {:#x}, cr3 {:#x}, eptp {:#x}, on fault {})",
            s.name,
            s.cpu,
            s.vpid,
            s.guest.rip.get(),
            s.guest.cr3.get(),
            s.eptp,
            fault_text(s)
        );
        if let FaultAction::Monitor(m) = s.fault_action {
            let words = monitor_words(c, s, &m);
            let _ = writeln!(
                o,
                "    monitor {} (event {}, its target event {}), state page {} at {:#018x}, \
                 exits {}",
                words.monitor,
                words.event,
                m.event,
                words.state,
                m.state.get(),
                exit_names(m.exits).join(" ")
            );
        }
        let _ = writeln!(
            o,
            "    {:<18} {:<18} {:<18} {:>10} rights caching kind            name",
            "virtual", "guest-physical", "physical", "size"
        );
        for m in &s.mappings {
            let virt = m
                .virtual_address
                .map_or("-".to_owned(), |v| format!("{:#018x}", v.get()));
            let _ = writeln!(
                o,
                "    {:<18} {:#018x} {:#018x} {:>#10x} {}    {:<7} {:<15} {}",
                virt,
                m.guest_physical.get(),
                m.physical.get(),
                m.size,
                rights(true, m.writable, m.executable),
                c.regions[m.region].caching.as_str(),
                kind_name(m.kind),
                m.name
            );
        }
        if let Some(line) = crate::crash_reader::report_line(s, &c.crash_audit) {
            let _ = writeln!(o, "{line}");
        }
        for r in image_of_owned(c, id) {
            let from = match r.source {
                RestartSource::Zero => "zero-filled".to_owned(),
                RestartSource::Copy(from) => format!("copied from {:#018x}", from.get()),
            };
            let _ = writeln!(
                o,
                "    restart re-initialises {:#018x} {:>#10x} {from}",
                r.start.get(),
                r.size
            );
        }
    }
    let _ = writeln!(o, "\nEvents");
    let _ = writeln!(
        o,
        "  {:<20} {:>3}  {:<24} {:<7} {:<20} {:>3} {:>6}",
        "source", "id", "event", "mode", "target", "id", "vector"
    );
    for s in &c.subjects {
        for e in &s.source_events {
            let (target, tid) = target_of(c, e.action);
            let _ = writeln!(
                o,
                "  {:<20} {:>3}  {:<24} {:<7} {:<20} {:>3} {:>6}",
                s.name,
                e.id,
                e.event,
                e.mode.as_str(),
                target,
                tid.map_or("-".into(), |t| t.to_string()),
                e.vector.map_or("-".into(), |v| v.to_string())
            );
        }
    }
    let _ = writeln!(o, "\nDevices");
    for d in &c.device_owners {
        let (owner, logical) = owner_words(&d.owner);
        let device = &d.device;
        let _ = writeln!(o, "  {device:<20} owner {owner:<20} as {logical}");
    }
    if let Some(ioapic) = c.interrupts.ioapic {
        let _ = writeln!(o, "\nIRQ routes (I/O APIC {:#x})", ioapic.get());
        for r in &c.interrupts.routes {
            let _ = writeln!(
                o,
                "  line {:<3} -> {:<20} vector {:<3} APIC id {:<3} {:?}",
                r.line.0,
                c.subject(r.owner).name,
                r.vector.0,
                r.apic_id.0,
                r.trigger
            );
        }
    }
    if !c.interrupts.msis.is_empty() {
        let format = if c.interrupts.remapped {
            "remappable"
        } else {
            "compatibility format"
        };
        let _ = writeln!(o, "\nMSI routes ({format})");
        for m in &c.interrupts.msis {
            let _ = writeln!(
                o,
                "  {} message {:<2} IRQ {:<3} -> {:<20} vector {:<3} APIC id {}",
                m.device,
                m.message,
                m.irq.0,
                c.subject(m.owner).name,
                m.vector.0,
                m.apic_id.0
            );
        }
    }
    let _ = writeln!(o, "\nSchedule (tickRate {} Hz)", c.schedule.tick_rate);
    for p in &c.schedule.partitions {
        let groups: Vec<String> = p
            .groups
            .iter()
            .map(|&g| {
                let names: Vec<&str> = c
                    .schedule
                    .group(g)
                    .subjects
                    .iter()
                    .map(|&s| c.subject(s).name.as_str())
                    .collect();
                format!("[{}]", names.join(", "))
            })
            .collect();
        let _ = writeln!(
            o,
            "  partition {} on cpu {}: groups {}",
            p.name,
            p.cpu,
            groups.join(" ")
        );
    }
    for (i, m) in c.schedule.major_frames.iter().enumerate() {
        let _ = writeln!(
            o,
            "  major frame {i}: {} ticks = {} TSC cycles",
            m.length_ticks,
            m.length.get()
        );
        for (cpu, frames) in m.cpus.iter().enumerate() {
            let _ = writeln!(o, "    cpu {cpu}:");
            for f in frames {
                let _ = writeln!(
                    o,
                    "      ticks {:>8} - {:<8} cycles {:>12} - {:<12} {}  pad {}",
                    f.start_ticks,
                    f.end_ticks,
                    f.start.get(),
                    f.end.get(),
                    c.schedule.partition(f.partition).name,
                    c.entry_pad(f).get()
                );
            }
        }
    }
    o
}
