//! The system part of the policy: everything but `<hardware>` contents.
//!
//! One function per element. Each checks its attribute set, reads its
//! attributes (reporting bad values in place), and walks its children;
//! references are stored by name here and resolved later in `resolve.rs`,
//! once every definition (including those in later includes) is known.

use std::path::Path;

use septum_abi::layout::SUBJECT_STACK_SIZE;
use septum_abi::units::{DmaAddr, PhysAddr, VirtAddr};

use super::{Ctx, El, hardware};
use crate::model::*;
use crate::parse_rules as ids;
use crate::source::Span;

const CACHING: &[(&str, Caching)] = &[
    ("UC", Caching::Uc),
    ("WC", Caching::Wc),
    ("WT", Caching::Wt),
    ("WP", Caching::Wp),
    ("WB", Caching::Wb),
];

const EVENT_MODES: &[(&str, EventMode)] = &[
    ("async", EventMode::Async),
    ("ipi", EventMode::Ipi),
    ("switch", EventMode::Switch),
    ("self", EventMode::SelfEvent),
    // The anchor's spelling of `async`: the same delivery.
    ("asynchronous", EventMode::Async),
    ("kernel", EventMode::Kernel),
];

const CHANNEL_EVENT_MODES: &[(&str, EventMode)] = &[
    ("async", EventMode::Async),
    ("ipi", EventMode::Ipi),
    ("switch", EventMode::Switch),
    // The anchor's spelling of `async`: the same delivery.
    ("asynchronous", EventMode::Async),
];

const ON_FAULT: &[(&str, OnFault)] = &[
    ("stopSystem", OnFault::StopSystem),
    ("stopSubject", OnFault::StopSubject),
    ("restartSubject", OnFault::RestartSubject),
    ("monitor", OnFault::Monitor),
];

const GROUP_KINDS: &[(&str, SourceGroupKind)] = &[("vmcall", SourceGroupKind::Vmcall)];

/// Placeholder for references and values the parser could not read.
fn unresolved<I>(name: Spanned<String>) -> Ref<I> {
    Ref { name, target: None }
}

/// Placeholder virtual address: filled in by `resolve` when omitted.
fn virtual_address(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Assigned<VirtAddr> {
    match ctx.opt_number::<u64>(el, "virtualAddress") {
        Some(v) => Assigned::explicit(VirtAddr(v.value), v.span),
        None => Assigned::auto(VirtAddr(0), el.span()),
    }
}

/// `<system>`.
pub(super) fn system(ctx: &mut Ctx<'_>, root: El<'_, '_>, path: &Path) -> Policy {
    ctx.attributes(root, &["name"]);
    let name = match ctx.optional(root, "name") {
        Some(name) => {
            ctx.check_name(&name);
            name
        }
        None => {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            Spanned::new(stem.unwrap_or_default(), root.span())
        }
    };
    let mut policy = Policy {
        root_file: root.file,
        span: root.span(),
        name,
        hardware: Hardware::default(),
        kernel: Kernel::default(),
        regions: Vec::new(),
        events: Vec::new(),
        channels: Vec::new(),
        subjects: Vec::new(),
        scheduling: Scheduling::default(),
        flow_denials: Vec::new(),
        device_domains: Vec::new(),
    };
    let (mut seen_hardware, mut seen_kernel, mut seen_scheduling) = (None, None, None);
    ctx.each_child(root, true, &mut |ctx, child| match child.name() {
        "hardware" => {
            if ctx.first_time(&mut seen_hardware, child, "system") {
                policy.hardware = hardware_element(ctx, child);
            }
        }
        "kernel" => {
            if ctx.first_time(&mut seen_kernel, child, "system") {
                policy.kernel = kernel(ctx, child);
            }
        }
        "memory" => ctx.each_child(child, true, &mut |ctx, region_el| {
            if region_el.name() == "memory" {
                policy.regions.push(region(ctx, region_el));
            } else {
                ctx.unknown_element(region_el, "memory", &["memory", "include"]);
            }
        }),
        "events" => ctx.each_child(child, true, &mut |ctx, event_el| {
            if event_el.name() == "event" {
                policy.events.push(event(ctx, event_el));
            } else {
                ctx.unknown_element(event_el, "events", &["event", "include"]);
            }
        }),
        "channels" => ctx.each_child(child, true, &mut |ctx, channel_el| {
            if channel_el.name() == "channel" {
                policy.channels.push(channel(ctx, channel_el));
            } else {
                ctx.unknown_element(channel_el, "channels", &["channel", "include"]);
            }
        }),
        "subjects" => ctx.each_child(child, true, &mut |ctx, subject_el| {
            if subject_el.name() == "subject" {
                policy.subjects.push(subject(ctx, subject_el));
            } else {
                ctx.unknown_element(subject_el, "subjects", &["subject", "include"]);
            }
        }),
        "scheduling" => {
            if ctx.first_time(&mut seen_scheduling, child, "system") {
                policy.scheduling = scheduling(ctx, child);
            }
        }
        "flows" => {
            ctx.attributes(child, &[]);
            ctx.each_child(child, true, &mut |ctx, deny_el| {
                if deny_el.name() == "deny" {
                    policy.flow_denials.push(flow_deny(ctx, deny_el));
                } else {
                    ctx.unknown_element(deny_el, "flows", &["deny", "include"]);
                }
            });
        }
        "deviceDomains" => {
            ctx.attributes(child, &[]);
            ctx.each_child(child, true, &mut |ctx, domain_el| {
                if domain_el.name() == "domain" {
                    policy.device_domains.push(device_domain(ctx, domain_el));
                } else {
                    ctx.unknown_element(domain_el, "deviceDomains", &["domain", "include"]);
                }
            });
        }
        _ => ctx.unknown_element(
            child,
            "system",
            &[
                "include",
                "hardware",
                "kernel",
                "memory",
                "deviceDomains",
                "events",
                "channels",
                "subjects",
                "scheduling",
                "flows",
            ],
        ),
    });
    // The attribute sets are the same in every file, so the span of the
    // root file's <system> is where a missing element is reported.
    if seen_hardware.is_none() {
        ctx.missing_element(root, "hardware");
    }
    if seen_kernel.is_none() {
        ctx.missing_element(root, "kernel");
    }
    if seen_scheduling.is_none() {
        ctx.missing_element(root, "scheduling");
    }
    policy
}

/// `<hardware href>` or inline `<hardware>`.
fn hardware_element(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Hardware {
    ctx.attributes(el, &["href"]);
    let Some(href) = ctx.optional(el, "href") else {
        return hardware::hardware(ctx, el);
    };
    if el.node.children().any(|c| c.is_element()) {
        ctx.diags.error(
            ids::HARDWARE_CONFLICT,
            el.span(),
            "<hardware> has both an `href` and inline content",
        );
    }
    let display = ctx.resolve_href(el.file, &href.value);
    let mut result = Hardware {
        span: el.span(),
        href: Some(href.clone()),
        ..Hardware::default()
    };
    let Some((file, text)) = ctx.open(
        &display,
        &href.value,
        Some(href.span),
        ids::HARDWARE_HREF_MISSING,
    ) else {
        return result;
    };
    let Some(doc) = ctx.parse_doc(file, &text) else {
        return result;
    };
    let root = El {
        node: doc.root_element(),
        file,
    };
    if root.name() != "hardware" {
        ctx.diags.push(
            crate::Diagnostic::error(
                ids::HARDWARE_HREF_MISSING,
                href.span,
                format!(
                    "`{}` has root element <{}>, not <hardware>",
                    super::quoted(&href.value),
                    super::quoted(root.name())
                ),
            )
            .with_label(root.span(), "root element"),
        );
        return result;
    }
    ctx.attributes(root, &[]);
    result = hardware::hardware(ctx, root);
    result.href = Some(href);
    result
}

/// `<kernel debugConsole consoleInput>`.
fn kernel(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Kernel {
    ctx.attributes(el, &["debugConsole", "consoleInput"]);
    ctx.no_children(el);
    Kernel {
        span: el.span(),
        debug_console: unresolved(ctx.string(el, "debugConsole")),
        console_input: ctx.optional(el, "consoleInput").map(unresolved),
    }
}

/// A region: `<memory name size caching physicalAddress fill>`.
fn region(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Region {
    ctx.attributes(el, &["name", "size", "caching", "physicalAddress", "fill"]);
    let mut region = Region {
        span: el.span(),
        name: ctx.name(el, "name"),
        size: ctx.number(el, "size"),
        caching: ctx.enumeration(el, "caching", CACHING, Caching::Wb),
        physical_address: ctx
            .opt_number::<u64>(el, "physicalAddress")
            .map(|v| Spanned::new(PhysAddr(v.value), v.span)),
        fill: ctx.number_or(el, "fill", 0u8),
        file: None,
    };
    let mut seen_file = None;
    ctx.each_child(el, false, &mut |ctx, child| {
        if child.name() != "file" {
            ctx.unknown_element(child, "memory", &["file"]);
        } else if ctx.first_time(&mut seen_file, child, "memory") {
            ctx.attributes(child, &["href", "offset"]);
            ctx.no_children(child);
            let href = ctx.string(child, "href");
            let path = ctx.resolve_href(child.file, &href.value);
            region.file = Some(RegionFile {
                span: child.span(),
                href,
                path,
                offset: ctx.number_or(child, "offset", 0u64),
            });
        }
    });
    region
}

/// `<event name mode action>`.
fn event(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Event {
    ctx.attributes(el, &["name", "mode", "action"]);
    ctx.no_children(el);
    Event {
        span: el.span(),
        name: ctx.name(el, "name"),
        mode: ctx.enumeration(el, "mode", EVENT_MODES, EventMode::Async),
        action: ctx.opt_enum(el, "action", KernelAction::POLICY_NAMES),
    }
}

/// `<channel name size elementSize protocol hasEvent>`.
fn channel(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Channel {
    ctx.attributes(el, &["name", "size", "elementSize", "protocol", "hasEvent"]);
    ctx.no_children(el);
    Channel {
        span: el.span(),
        name: ctx.name(el, "name"),
        size: ctx.number(el, "size"),
        element_size: ctx.number_or(el, "elementSize", 64u64),
        protocol: ctx.number_or(el, "protocol", 1u64),
        has_event: ctx.opt_enum(el, "hasEvent", CHANNEL_EVENT_MODES),
    }
}

/// `<subject>`.
fn subject(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Subject {
    ctx.attributes(
        el,
        &[
            "name",
            "profile",
            "binary",
            "cpu",
            "onFault",
            "restartLimit",
            "onRestartLimit",
            "stackSize",
            "allowWritableExecutable",
            "minorFrameDeadline",
        ],
    );
    let name = ctx.name(el, "name");
    let profile = match ctx.required(el, "profile") {
        Some(raw) => {
            let span = raw.span;
            ctx.enum_value(
                raw,
                "profile",
                &[("native", Profile::Native), ("vm", Profile::Vm)],
            )
            .unwrap_or(Spanned::new(Profile::Native, span))
        }
        None => Spanned::new(Profile::Native, el.span()),
    };
    let cpu = ctx.number_or(el, "cpu", 0u32);
    let is_vm = profile.value == Profile::Vm;
    let mut subject = Subject {
        span: el.span(),
        name,
        profile,
        binary: if is_vm {
            ctx.optional(el, "binary")
                .unwrap_or_else(|| Spanned::new(String::new(), el.span()))
        } else {
            ctx.string(el, "binary")
        },
        cpu: Spanned::new(CpuId(cpu.value), cpu.span),
        on_fault: ctx
            .opt_enum(el, "onFault", ON_FAULT)
            .unwrap_or(Spanned::new(OnFault::StopSystem, el.span())),
        restart_limit: ctx.opt_number(el, "restartLimit"),
        on_restart_limit: ctx.opt_enum(el, "onRestartLimit", ON_FAULT),
        stack_size: ctx.number_or(el, "stackSize", SUBJECT_STACK_SIZE),
        allow_writable_executable: ctx.boolean_or(el, "allowWritableExecutable", false),
        minor_frame_deadline: ctx.boolean_or(el, "minorFrameDeadline", false),
        maps: Vec::new(),
        devices: Vec::new(),
        source_groups: Vec::new(),
        targets: Vec::new(),
        channels: Vec::new(),
        linux: None,
        monitor: None,
        timed_event: None,
        virtio_console: None,
        crash_audit: None,
    };
    let (mut seen_memory, mut seen_devices, mut seen_events, mut seen_channels) =
        (None, None, None, None);
    let mut seen_linux = None;
    let mut seen_monitor = None;
    let mut seen_virtio = None;
    let mut seen_timed = None;
    let mut seen_crash_audit = None;
    ctx.each_child(el, false, &mut |ctx, child| match child.name() {
        "memory" => {
            ctx.list_once(
                &mut seen_memory,
                child,
                "subject",
                "map",
                &mut |ctx, map_el| {
                    subject.maps.push(map(ctx, map_el));
                },
            );
        }
        "devices" => {
            ctx.list_once(
                &mut seen_devices,
                child,
                "subject",
                "device",
                &mut |ctx, device_el| {
                    subject.devices.push(device_grant(ctx, device_el));
                },
            );
        }
        "events" => {
            if ctx.first_time(&mut seen_events, child, "subject") {
                subject_events(ctx, child, &mut subject);
            }
        }
        "channels" => {
            if ctx.first_time(&mut seen_channels, child, "subject") {
                ctx.attributes(child, &[]);
                ctx.each_child(child, false, &mut |ctx, end_el| match end_el.name() {
                    "writer" => {
                        subject
                            .channels
                            .push(channel_end(ctx, end_el, ChannelRole::Writer))
                    }
                    "reader" => {
                        subject
                            .channels
                            .push(channel_end(ctx, end_el, ChannelRole::Reader))
                    }
                    _ => ctx.unknown_element(end_el, "channels", &["writer", "reader"]),
                });
            }
        }
        "linux" => {
            if ctx.first_time(&mut seen_linux, child, "subject") {
                subject.linux = Some(linux_boot(ctx, child));
            }
        }
        "monitor" => {
            if ctx.first_time(&mut seen_monitor, child, "subject") {
                subject.monitor = Some(monitor(ctx, child));
            }
        }
        "virtioConsole" => {
            if ctx.first_time(&mut seen_virtio, child, "subject") {
                subject.virtio_console = Some(virtio_console(ctx, child));
            }
        }
        "timedEvent" => {
            if ctx.first_time(&mut seen_timed, child, "subject") {
                subject.timed_event = Some(timed_event(ctx, child));
            }
        }
        "crashAudit" => {
            if ctx.first_time(&mut seen_crash_audit, child, "subject") {
                subject.crash_audit = Some(crash_audit(ctx, child));
            }
        }
        _ => ctx.unknown_element(
            child,
            "subject",
            &[
                "memory",
                "devices",
                "events",
                "channels",
                "linux",
                "monitor",
                "virtioConsole",
                "timedEvent",
                "crashAudit",
            ],
        ),
    });
    // A `vm` subject boots Linux; any other virtual machine (its own
    // firmware, real-mode entry) is not supported yet. A `<linux>` in a
    // native subject means nothing and is refused too.
    match (subject.profile.value, &subject.linux) {
        (Profile::Vm, None) => ctx.diags.push(
            crate::Diagnostic::error(
                ids::VM_PROFILE_UNSUPPORTED,
                subject.profile.span,
                "profile `vm` is not supported yet",
            )
            .with_help(
                "a `vm` subject needs a <linux kernel=... initrd=... cmdline=... ramSize=...> \
                 child; use profile=\"native\" for a program built with the Septum SDK",
            ),
        ),
        (Profile::Native, Some(linux)) => ctx.diags.push(crate::Diagnostic::error(
            ids::VM_PROFILE_UNSUPPORTED,
            linux.span,
            "<linux> is only allowed in a subject with profile=\"vm\"",
        )),
        _ => {}
    }
    if subject.profile.value == Profile::Vm
        && let Some(linux) = &subject.linux
        && subject.binary.value.is_empty()
    {
        subject.binary = linux.kernel.clone();
    }
    subject
}

/// `<linux kernel initrd cmdline ramSize>`.
fn linux_boot(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> LinuxBoot {
    ctx.attributes(el, &["kernel", "initrd", "cmdline", "ramSize"]);
    ctx.no_children(el);
    LinuxBoot {
        span: el.span(),
        kernel: ctx.string(el, "kernel"),
        initrd: ctx.optional(el, "initrd"),
        cmdline: ctx
            .optional(el, "cmdline")
            .unwrap_or_else(|| Spanned::new(String::new(), el.span())),
        ram_size: ctx.number(el, "ramSize"),
    }
}

/// `<crashAudit logical virtualAddress>`.
fn crash_audit(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> CrashAuditGrant {
    ctx.attributes(el, &["logical", "virtualAddress"]);
    ctx.no_children(el);
    CrashAuditGrant {
        span: el.span(),
        logical: ctx.name(el, "logical"),
        virtual_address: virtual_address(ctx, el),
    }
}

/// `<timedEvent page event>`.
fn timed_event(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> TimedEvent {
    ctx.attributes(el, &["page", "event"]);
    ctx.no_children(el);
    TimedEvent {
        span: el.span(),
        page: unresolved(ctx.string(el, "page")),
        event: ctx.string(el, "event"),
    }
}

/// `<virtioConsole port irq guestMemory>`.
fn virtio_console(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> VirtioConsole {
    ctx.attributes(el, &["port", "irq", "guestMemory"]);
    ctx.no_children(el);
    VirtioConsole {
        span: el.span(),
        port: ctx.number(el, "port"),
        irq: ctx.number(el, "irq"),
        guest_memory: ctx.number(el, "guestMemory"),
    }
}

/// `<monitor event state exits>`.
fn monitor(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Monitor {
    ctx.attributes(el, &["event", "state", "exits"]);
    ctx.no_children(el);
    let exits = ctx.string(el, "exits");
    Monitor {
        span: el.span(),
        event: unresolved(ctx.string(el, "event")),
        state: unresolved(ctx.string(el, "state")),
        exits: Spanned::new(words(&exits), exits.span),
    }
}

/// The whitespace-separated words of an attribute value, each with its own
/// span when the decoded value is as long as its source text (no entity
/// reference), so a diagnostic can point at the one word; otherwise each
/// word gets the whole value's span.
fn words(value: &Spanned<String>) -> Vec<Spanned<String>> {
    let text = value.value.as_str();
    let literal = value.span.range().len() == text.len();
    let base = value.span.range().start;
    text.split_whitespace()
        .map(|word| {
            let span = if literal {
                let offset = word.as_ptr() as usize - text.as_ptr() as usize;
                Span::new(value.span.file, base + offset..base + offset + word.len())
            } else {
                value.span
            };
            Spanned::new(word.to_owned(), span)
        })
        .collect()
}

/// `<map>`.
fn map(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Map {
    ctx.attributes(
        el,
        &[
            "logical",
            "physical",
            "virtualAddress",
            "writable",
            "executable",
        ],
    );
    ctx.no_children(el);
    Map {
        span: el.span(),
        logical: ctx.name(el, "logical"),
        physical: unresolved(ctx.string(el, "physical")),
        virtual_address: virtual_address(ctx, el),
        writable: ctx.boolean_or(el, "writable", false),
        executable: ctx.boolean_or(el, "executable", false),
    }
}

/// `<device logical physical>` in a subject.
fn device_grant(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> DeviceGrant {
    ctx.attributes(el, &["logical", "physical", "acceptUnconfinedDma"]);
    let mut grant = DeviceGrant {
        span: el.span(),
        logical: ctx.name(el, "logical"),
        physical: unresolved(ctx.string(el, "physical")),
        io_ports: Vec::new(),
        irqs: Vec::new(),
        memory: Vec::new(),
        accept_unconfined_dma: ctx.boolean_or(el, "acceptUnconfinedDma", false),
    };
    ctx.each_child(el, false, &mut |ctx, child| match child.name() {
        "ioPort" => {
            ctx.attributes(child, &["logical", "physical"]);
            ctx.no_children(child);
            grant.io_ports.push(IoPortGrant {
                span: child.span(),
                logical: ctx.name(child, "logical"),
                physical: unresolved(ctx.string(child, "physical")),
            });
        }
        "irq" => {
            ctx.attributes(child, &["logical", "physical", "vector"]);
            ctx.no_children(child);
            grant.irqs.push(IrqGrant {
                span: child.span(),
                logical: ctx.name(child, "logical"),
                physical: unresolved(ctx.string(child, "physical")),
                vector: vector(ctx, child),
            });
        }
        "memory" => {
            ctx.attributes(
                child,
                &[
                    "logical",
                    "physical",
                    "virtualAddress",
                    "writable",
                    "executable",
                ],
            );
            ctx.no_children(child);
            grant.memory.push(DeviceMemoryGrant {
                span: child.span(),
                logical: ctx.name(child, "logical"),
                physical: unresolved(ctx.string(child, "physical")),
                virtual_address: virtual_address(ctx, child),
                writable: ctx.boolean_or(child, "writable", false),
                executable: ctx.boolean_or(child, "executable", false),
            });
        }
        _ => ctx.unknown_element(child, "device", &["ioPort", "irq", "memory"]),
    });
    grant
}

/// Optional `vector`; auto placeholder when omitted.
fn vector(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Assigned<Vector> {
    match ctx.opt_number::<u8>(el, "vector") {
        Some(v) => Assigned::explicit(Vector(v.value), v.span),
        None => Assigned::auto(Vector(0), el.span()),
    }
}

/// Optional `id`; auto placeholder when omitted.
fn event_id(ctx: &mut Ctx<'_>, el: El<'_, '_>, attr: &str) -> Assigned<EventId> {
    match ctx.opt_number::<u8>(el, attr) {
        Some(v) => Assigned::explicit(EventId(v.value), v.span),
        None => Assigned::auto(EventId(0), el.span()),
    }
}

/// A subject's `<events>`: `<source>` and `<target>`.
fn subject_events(ctx: &mut Ctx<'_>, el: El<'_, '_>, subject: &mut Subject) {
    ctx.attributes(el, &[]);
    let (mut seen_source, mut seen_target) = (None, None);
    ctx.each_child(el, false, &mut |ctx, child| match child.name() {
        "source" => {
            ctx.list_once(
                &mut seen_source,
                child,
                "events",
                "group",
                &mut |ctx, group_el| {
                    subject.source_groups.push(source_group(ctx, group_el));
                },
            );
        }
        "target" => {
            ctx.list_once(
                &mut seen_target,
                child,
                "events",
                "event",
                &mut |ctx, event_el| {
                    subject.targets.push(target_event(ctx, event_el));
                },
            );
        }
        _ => ctx.unknown_element(child, "events", &["source", "target"]),
    });
}

/// `<group name>` of source events.
fn source_group(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> SourceGroup {
    ctx.attributes(el, &["name"]);
    let mut group = SourceGroup {
        span: el.span(),
        kind: ctx.enumeration(el, "name", GROUP_KINDS, SourceGroupKind::Vmcall),
        events: Vec::new(),
    };
    ctx.each_child(el, false, &mut |ctx, event_el| {
        if event_el.name() != "event" {
            ctx.unknown_element(event_el, "group", &["event"]);
            return;
        }
        ctx.attributes(event_el, &["id", "logical", "physical"]);
        ctx.no_children(event_el);
        group.events.push(SourceEvent {
            span: event_el.span(),
            id: event_id(ctx, event_el, "id"),
            logical: ctx.name(event_el, "logical"),
            physical: unresolved(ctx.string(event_el, "physical")),
        });
    });
    group
}

/// `<event id logical physical>` under `<target>`.
fn target_event(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> TargetEvent {
    ctx.attributes(el, &["id", "logical", "physical"]);
    let mut target = TargetEvent {
        span: el.span(),
        id: event_id(ctx, el, "id"),
        logical: ctx.name(el, "logical"),
        physical: unresolved(ctx.string(el, "physical")),
        inject: None,
        reset: None,
    };
    let (mut seen_inject, mut seen_reset) = (None, None);
    ctx.each_child(el, false, &mut |ctx, child| {
        if child.name() == "reset" {
            if ctx.first_time(&mut seen_reset, child, "event") {
                ctx.attributes(child, &[]);
                ctx.no_children(child);
                target.reset = Some(child.span());
            }
        } else if child.name() != "inject_interrupt" {
            ctx.unknown_element(child, "event", &["inject_interrupt", "reset"]);
        } else if ctx.first_time(&mut seen_inject, child, "event") {
            ctx.attributes(child, &["vector"]);
            ctx.no_children(child);
            target.inject = Some(InjectInterrupt {
                span: child.span(),
                vector: vector(ctx, child),
            });
        }
    });
    target
}

/// `<writer>` / `<reader>`.
fn channel_end(ctx: &mut Ctx<'_>, el: El<'_, '_>, role: ChannelRole) -> ChannelEnd {
    let extra = match role {
        ChannelRole::Writer => "event",
        ChannelRole::Reader => "vector",
    };
    ctx.attributes(el, &["logical", "physical", "virtualAddress", extra]);
    ctx.no_children(el);
    let logical = ctx.name(el, "logical");
    let physical = unresolved(ctx.string(el, "physical"));
    let virtual_address = virtual_address(ctx, el);
    let (event, vector) = match role {
        ChannelRole::Writer => (
            ctx.opt_number::<u8>(el, "event")
                .map(|v| Assigned::explicit(EventId(v.value), v.span)),
            None,
        ),
        ChannelRole::Reader => (
            None,
            ctx.opt_number::<u8>(el, "vector")
                .map(|v| Assigned::explicit(Vector(v.value), v.span)),
        ),
    };
    ChannelEnd {
        span: el.span(),
        role,
        logical,
        physical,
        virtual_address,
        event,
        vector,
    }
}

/// `<scheduling tickRate>`.
fn scheduling(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Scheduling {
    ctx.attributes(el, &["tickRate"]);
    let mut scheduling = Scheduling {
        span: el.span(),
        tick_rate: ctx.number(el, "tickRate"),
        partitions: Vec::new(),
        major_frames: Vec::new(),
    };
    let mut seen_partitions = None;
    ctx.each_child(el, false, &mut |ctx, child| match child.name() {
        "partitions" => {
            ctx.list_once(
                &mut seen_partitions,
                child,
                "scheduling",
                "partition",
                &mut |ctx, partition_el| {
                    scheduling.partitions.push(partition(ctx, partition_el));
                },
            );
        }
        "majorFrame" => scheduling.major_frames.push(major_frame(ctx, child)),
        _ => ctx.unknown_element(child, "scheduling", &["partitions", "majorFrame"]),
    });
    if seen_partitions.is_none() {
        ctx.missing_element(el, "partitions");
    }
    scheduling
}

/// `<partition name cpu>`.
fn partition(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> Partition {
    ctx.attributes(el, &["name", "cpu"]);
    let mut partition = Partition {
        span: el.span(),
        name: ctx.name(el, "name"),
        cpu: ctx
            .opt_number::<u32>(el, "cpu")
            .map(|v| Assigned::explicit(CpuId(v.value), v.span)),
        groups: Vec::new(),
    };
    ctx.each_child(el, false, &mut |ctx, group_el| {
        if group_el.name() != "group" {
            ctx.unknown_element(group_el, "partition", &["group"]);
            return;
        }
        ctx.attributes(group_el, &[]);
        let mut group = SchedGroup {
            span: group_el.span(),
            subjects: Vec::new(),
        };
        ctx.each_child(group_el, false, &mut |ctx, subject_el| {
            if subject_el.name() == "subject" {
                ctx.attributes(subject_el, &["name"]);
                ctx.no_children(subject_el);
                group
                    .subjects
                    .push(unresolved(ctx.string(subject_el, "name")));
            } else {
                ctx.unknown_element(subject_el, "group", &["subject"]);
            }
        });
        partition.groups.push(group);
    });
    partition
}

/// `<majorFrame>`.
fn major_frame(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> MajorFrame {
    ctx.attributes(el, &[]);
    let mut frame = MajorFrame {
        span: el.span(),
        cpus: Vec::new(),
    };
    ctx.each_child(el, false, &mut |ctx, cpu_el| {
        if cpu_el.name() != "cpu" {
            ctx.unknown_element(cpu_el, "majorFrame", &["cpu"]);
            return;
        }
        ctx.attributes(cpu_el, &["id"]);
        let id = ctx.number::<u32>(cpu_el, "id");
        let mut cpu = FrameCpu {
            span: cpu_el.span(),
            id: Spanned::new(CpuId(id.value), id.span),
            minor_frames: Vec::new(),
        };
        ctx.each_child(cpu_el, false, &mut |ctx, minor_el| {
            if minor_el.name() != "minorFrame" {
                ctx.unknown_element(minor_el, "cpu", &["minorFrame"]);
                return;
            }
            ctx.attributes(minor_el, &["partition", "ticks"]);
            ctx.no_children(minor_el);
            let ticks = ctx.number::<u64>(minor_el, "ticks");
            cpu.minor_frames.push(MinorFrame {
                span: minor_el.span(),
                partition: unresolved(ctx.string(minor_el, "partition")),
                ticks: Spanned::new(Ticks(ticks.value), ticks.span),
            });
        });
        frame.cpus.push(cpu);
    });
    frame
}

/// `<deny from to direct covert>` in `<flows>`.
fn flow_deny(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> FlowDeny {
    ctx.attributes(el, &["from", "to", "direct", "covert"]);
    ctx.no_children(el);
    FlowDeny {
        span: el.span(),
        from: unresolved(ctx.string(el, "from")),
        to: unresolved(ctx.string(el, "to")),
        direct: ctx.boolean_or(el, "direct", false),
        covert: ctx.boolean_or(el, "covert", false),
    }
}

/// `<domain name>` in `<deviceDomains>`: `<memory>` and `<devices>`, each at
/// most once.
fn device_domain(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> DeviceDomain {
    ctx.attributes(el, &["name"]);
    let mut domain = DeviceDomain {
        span: el.span(),
        name: ctx.name(el, "name"),
        memory: Vec::new(),
        devices: Vec::new(),
    };
    let (mut seen_memory, mut seen_devices) = (None, None);
    ctx.each_child(el, false, &mut |ctx, child| match child.name() {
        "memory" => {
            ctx.list_once(
                &mut seen_memory,
                child,
                "domain",
                "memory",
                &mut |ctx, map_el| {
                    domain.memory.push(domain_map(ctx, map_el));
                },
            );
        }
        "devices" => {
            ctx.list_once(
                &mut seen_devices,
                child,
                "domain",
                "device",
                &mut |ctx, device_el| {
                    ctx.attributes(device_el, &["logical", "physical", "mapReservedMemory"]);
                    ctx.no_children(device_el);
                    domain.devices.push(DomainDevice {
                        span: device_el.span(),
                        logical: ctx.name(device_el, "logical"),
                        physical: unresolved(ctx.string(device_el, "physical")),
                        map_reserved_memory: ctx.boolean_or(device_el, "mapReservedMemory", false),
                    });
                },
            );
        }
        _ => ctx.unknown_element(child, "domain", &["memory", "devices"]),
    });
    domain
}

/// `<memory logical physical virtualAddress writable executable>` in a
/// domain; the address is required.
fn domain_map(ctx: &mut Ctx<'_>, el: El<'_, '_>) -> DomainMap {
    ctx.attributes(
        el,
        &[
            "logical",
            "physical",
            "virtualAddress",
            "writable",
            "executable",
        ],
    );
    ctx.no_children(el);
    let address: Spanned<u64> = ctx.number(el, "virtualAddress");
    DomainMap {
        span: el.span(),
        logical: ctx.name(el, "logical"),
        physical: unresolved(ctx.string(el, "physical")),
        virtual_address: Spanned::new(DmaAddr(address.value), address.span),
        writable: ctx.boolean_or(el, "writable", false),
        executable: ctx.boolean_or(el, "executable", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    #[test]
    fn words_get_their_own_spans_unless_an_entity_shifts_them() {
        let file = FileId(0);
        let literal = Spanned::new(" io  vmcall".to_owned(), Span::new(file, 100..111));
        let spans: Vec<_> = words(&literal)
            .into_iter()
            .map(|w| (w.value, w.span.range()))
            .collect();
        assert_eq!(
            spans,
            [("io".to_owned(), 101..103), ("vmcall".to_owned(), 105..111)]
        );
        // `io&#32;cpuid` in the source decodes to "io cpuid": 11 bytes of
        // source, 8 of value; every word gets the attribute's span.
        let decoded = Spanned::new("io cpuid".to_owned(), Span::new(file, 50..61));
        assert!(words(&decoded).iter().all(|w| w.span.range() == (50..61)));
    }
}
