//! From the validated policy model to the composer's input.
//!
//! The policy crate has already resolved every name and assigned every
//! value the integrator left out; this step only changes representation and
//! reads the files the policy names: each subject's ELF (from the binaries
//! directory, parsed once per distinct file) and each region's `<file>`.
//! Problems with those files are reported as located diagnostics (the
//! subject's `binary` attribute, the region's `<file>` element), rendered by
//! the policy crate like every other policy error.
//!
//! Each binary's declared needs (its `.septum.needs` section, see
//! [`crate::contract`]) are checked here against the subject that runs it,
//! so a name the policy does not grant is an error at the subject's
//! `binary` attribute before anything is allocated. A binary without the
//! section is not checked.
//!
//! Each binary's symbol map ([`crate::symbols`]) is read here too and
//! carried to the output, for resolving fault addresses.
//!
//! One thing is decided here, not in the policy: a channel's event needs a
//! target event number on its reader. It gets the lowest number the reader
//! does not use for any of its own `<target>` events, in document order, so
//! it is deterministic and shown in the report and the info page.

use std::collections::HashMap;
use std::path::Path;

use septum_kerncore::monitor::exit_reasons;
use septum_kerncore::spec::ExitSet;
use septum_policy::model::{self, ChannelRole, Policy};
use septum_policy::{Diagnostic, Span};

use crate::contract::{self, Need};
use crate::elf::{SubjectImage, parse_subject, section};
use crate::input::{
    ChannelEndInput, ChannelInput, CpuFramesInput, DeviceGrantInput, DeviceInput,
    DeviceMemoryGrantInput, EventInput, HardwareInput, IoApicInput, IoPortRange, IrqGrantInput,
    MapInput, MemoryBlockInput, MinorFrameInput, MonitorInput, PartitionInput, RegionInput,
    SchedulingInput, SourceEventInput, SubjectInput, SystemInput, TargetEventInput,
    TimedEventInput, VirtioConsoleInput,
};
use crate::symbols::SymbolMap;

/// Rule id of an unreadable or invalid subject binary.
pub const RULE_BINARY: &str = "compose-binary";
/// Rule id of an unreadable or oversized region file.
pub const RULE_REGION_FILE: &str = "compose-region-file";
/// Rule id of a reference the validator should have rejected.
pub const RULE_INTERNAL: &str = "compose-unresolved";

/// Where subject binaries come from: a directory, or memory (tests,
/// benchmarks).
pub trait Binaries {
    /// The bytes of the ELF file called `name`, and how to name it to the
    /// user.
    fn read(&self, name: &str) -> Result<(String, Vec<u8>), String>;
}

/// Binaries in a directory.
pub struct BinaryDir<'a>(pub &'a Path);

impl Binaries for BinaryDir<'_> {
    fn read(&self, name: &str) -> Result<(String, Vec<u8>), String> {
        let path = self.0.join(name);
        let shown = path.display().to_string();
        std::fs::read(&path)
            .map(|b| (shown.clone(), b))
            .map_err(|e| format!("{shown}: {e}"))
    }
}

/// Binaries in memory, by name.
impl Binaries for HashMap<String, Vec<u8>> {
    fn read(&self, name: &str) -> Result<(String, Vec<u8>), String> {
        self.get(name)
            .map(|b| (name.to_owned(), b.clone()))
            .ok_or_else(|| format!("{name}: no such binary"))
    }
}

fn unresolved(what: &str, name: &model::Spanned<String>) -> Diagnostic {
    Diagnostic::error(
        RULE_INTERNAL,
        name.span,
        format!(
            "{what} \"{}\" is not resolved (the policy did not pass validation?)",
            name.value
        ),
    )
}

fn get<I: Copy>(what: &str, r: &model::Ref<I>, errors: &mut Vec<Diagnostic>) -> Option<I> {
    if r.target.is_none() {
        errors.push(unresolved(what, &r.name));
    }
    r.target
}

/// The I/O APIC a device describes: capability `ioapic` and a `<memory>`
/// for its registers.
fn ioapic(d: &model::Device) -> Option<IoApicInput> {
    d.capability("ioapic")?;
    let registers = d.memory.first()?;
    let entries = d
        .capability("max_redirection_entry")
        .and_then(|c| c.value.as_ref())
        .and_then(|v| v.value.parse::<u32>().ok())
        .map_or(24, |max| max.saturating_add(1));
    Some(IoApicInput {
        name: d.name.value.clone(),
        address: registers.physical_address.value,
        entries,
    })
}

fn port_range(p: &model::IoPortRange) -> IoPortRange {
    IoPortRange {
        name: p.name.value.clone(),
        start: p.start.value,
        end: p.end.value,
    }
}

fn region_content(r: &model::Region, errors: &mut Vec<Diagnostic>) -> Vec<u8> {
    let Some(file) = &r.file else {
        return Vec::new();
    };
    let bytes = match std::fs::read(&file.path) {
        Ok(b) => b,
        Err(e) => {
            errors.push(Diagnostic::error(
                RULE_REGION_FILE,
                file.href.span,
                format!("cannot read \"{}\": {e}", file.path.display()),
            ));
            return Vec::new();
        }
    };
    let offset = file.offset.value;
    let fits = offset
        .checked_add(bytes.len() as u64)
        .is_some_and(|end| end <= r.size.value);
    if !fits {
        errors.push(Diagnostic::error(
            RULE_REGION_FILE,
            file.span,
            format!(
                "file \"{}\" ({} bytes at offset {offset:#x}) does not fit in region \"{}\" of \
                 {:#x} bytes",
                file.href.value,
                bytes.len(),
                r.name.value,
                r.size.value
            ),
        ));
        return Vec::new();
    }
    let mut content = vec![0u8; offset as usize];
    content.extend_from_slice(&bytes);
    content
}

/// Convert a validated policy, reading its files. All problems are returned
/// at once, located.
pub fn system_input(
    policy: &Policy,
    binaries: &dyn Binaries,
) -> Result<SystemInput, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let hw = &policy.hardware;
    let hardware = HardwareInput {
        speed_khz: hw.processor.speed_khz.value,
        cpu_cores: hw.processor.cpu_cores.value,
        apic_ids: hw.processor.cpus.iter().map(|c| c.apic_id.value).collect(),
        memory_blocks: hw
            .memory_blocks
            .iter()
            .map(|b| MemoryBlockInput {
                name: b.name.value.clone(),
                start: b.physical_address.value,
                size: b.size.value,
                allocatable: b.allocatable.value,
            })
            .collect(),
        devices: hw
            .devices
            .iter()
            .map(|d| DeviceInput {
                name: d.name.value.clone(),
                io_ports: d.io_ports.iter().map(port_range).collect(),
                pci: d.pci.as_ref().map(|p| {
                    septum_kerncore::vtd::SourceId::new(
                        p.bus.value,
                        p.device.value,
                        p.function.value,
                    )
                }),
                memory: d
                    .memory
                    .iter()
                    .map(|m| (m.physical_address.value, m.size.value))
                    .collect(),
            })
            .collect(),
        ioapic: hw.devices.iter().find_map(ioapic),
    };
    let debug_console = get(
        "debug console device",
        &policy.kernel.debug_console,
        &mut errors,
    )
    .map_or(0, |d| d.index());
    let console_input = policy
        .kernel
        .console_input
        .as_ref()
        .and_then(|owner| get("console input subject", owner, &mut errors))
        .and_then(|s| u16::try_from(s.index()).ok())
        .map(septum_abi::SubjectId);
    let regions = policy
        .regions
        .iter()
        .map(|r| RegionInput {
            name: r.name.value.clone(),
            size: r.size.value,
            caching: r.caching.value,
            physical: r.physical_address.as_ref().map(|p| p.value),
            fill: r.fill.value,
            content: region_content(r, &mut errors),
        })
        .collect();
    let events = policy
        .events
        .iter()
        .map(|e| EventInput {
            name: e.name.value.clone(),
            mode: e.mode.value,
            action: e.action.as_ref().map(|a| a.value),
        })
        .collect();
    let channels = policy
        .channels
        .iter()
        .map(|c| ChannelInput {
            name: c.name.value.clone(),
            size: c.size.value,
            element_size: c.element_size.value,
            protocol: c.protocol.value,
            has_event: c.has_event.as_ref().map(|m| m.value),
        })
        .collect();

    let mut images: HashMap<&str, Option<Loaded>> = HashMap::new();
    let mut subjects = Vec::with_capacity(policy.subjects.len());
    for s in &policy.subjects {
        if let Some(linux) = &s.linux {
            let loaded = load_linux(binaries, linux, &mut errors);
            subjects.push(subject_input(policy, s, loaded, &mut errors));
            continue;
        }
        let loaded = images
            .entry(s.binary.value.as_str())
            .or_insert_with(|| load_binary(binaries, &s.binary.value, s.binary.span, &mut errors))
            .clone();
        if let Some(needs) = loaded.as_ref().and_then(|l| l.needs.as_ref()) {
            errors.extend(contract::check(policy, s, needs));
        }
        let subject = subject_input(policy, s, loaded, &mut errors);
        subjects.push(subject);
    }
    errors.extend(vm_limits(policy));
    let scheduling = scheduling(policy, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SystemInput {
        name: policy.name.value.clone(),
        hardware,
        debug_console,
        console_input,
        regions,
        events,
        channels,
        subjects,
        scheduling,
        vtd: crate::vtd::input(policy),
        policy_hash: 0,
    })
}

/// A parsed subject binary: its image and its declared needs (`None`
/// without a `.septum.needs` section).
#[derive(Clone)]
struct Loaded {
    image: SubjectImage,
    needs: Option<Vec<Need>>,
    symbols: SymbolMap,
}

fn parse_binary(shown: &str, bytes: &[u8]) -> Result<Loaded, String> {
    let image = parse_subject(shown, bytes).map_err(|e| e.to_string())?;
    let needs = section(shown, bytes, contract::SECTION)
        .map_err(|e| e.to_string())?
        .map(|b| {
            contract::parse(b).map_err(|e| format!("{shown}: section {}: {e}", contract::SECTION))
        })
        .transpose()?;
    let symbols = SymbolMap::from_elf(shown, bytes);
    Ok(Loaded {
        image,
        needs,
        symbols,
    })
}

fn load_binary(
    binaries: &dyn Binaries,
    name: &str,
    span: Span,
    errors: &mut Vec<Diagnostic>,
) -> Option<Loaded> {
    let result = binaries
        .read(name)
        .and_then(|(shown, bytes)| parse_binary(&shown, &bytes));
    match result {
        Ok(loaded) => Some(loaded),
        Err(message) => {
            errors.push(Diagnostic::error(
                RULE_BINARY,
                span,
                format!("subject binary: {message}"),
            ));
            None
        }
    }
}

/// Most `vm` subjects in one system (the kernel's VM state slots).
pub const MAX_VMS: usize = 4;

/// At most one `vm` subject per CPU (the kernel leaves a VM's SYSCALL MSRs
/// and KERNEL_GS_BASE in the processor, where a second VM on that CPU
/// could read them; docs/kernel.md, "VM subjects") and [`MAX_VMS`] in all.
fn vm_limits(policy: &Policy) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut cpus: Vec<u32> = Vec::new();
    for s in policy
        .subjects
        .iter()
        .filter(|s| s.profile.value == model::Profile::Vm)
    {
        let cpu = s.cpu.value.0;
        if cpus.contains(&cpu) {
            errors.push(Diagnostic::error(
                RULE_BINARY,
                s.profile.span,
                format!("a second vm subject on CPU {cpu}: at most one VM per CPU"),
            ));
        } else if cpus.len() == MAX_VMS {
            errors.push(Diagnostic::error(
                RULE_BINARY,
                s.profile.span,
                format!("more than {MAX_VMS} vm subjects"),
            ));
        }
        cpus.push(cpu);
    }
    errors
}

/// The image of a `vm` subject that boots Linux: the kernel and initramfs
/// from the binaries directory, laid out by [`crate::linux`]. Errors are
/// located at the `<linux>` element (or its `kernel` attribute).
fn load_linux(
    binaries: &dyn Binaries,
    linux: &model::LinuxBoot,
    errors: &mut Vec<Diagnostic>,
) -> Option<Loaded> {
    let located = |span: Span, message: String| Diagnostic::error(RULE_BINARY, span, message);
    let (shown, kernel) = match binaries.read(&linux.kernel.value) {
        Ok(read) => read,
        Err(message) => {
            errors.push(located(
                linux.kernel.span,
                format!("linux kernel: {message}"),
            ));
            return None;
        }
    };
    let initrd = match &linux.initrd {
        Some(name) => match binaries.read(&name.value) {
            Ok((_, bytes)) => bytes,
            Err(message) => {
                errors.push(located(name.span, format!("linux initrd: {message}")));
                return None;
            }
        },
        None => Vec::new(),
    };
    let result = crate::linux::parse(&shown, &kernel).and_then(|image| {
        crate::linux::boot_image(
            &shown,
            &image,
            &crate::linux::BootConfig {
                initrd: &initrd,
                cmdline: &linux.cmdline.value,
                ram_size: linux.ram_size.value,
            },
        )
    });
    match result {
        Ok((image, _)) => Some(Loaded {
            image,
            needs: None,
            symbols: SymbolMap::default(),
        }),
        Err(e) => {
            errors.push(located(linux.span, format!("linux: {e}")));
            None
        }
    }
}

fn subject_input(
    policy: &Policy,
    s: &model::Subject,
    loaded: Option<Loaded>,
    errors: &mut Vec<Diagnostic>,
) -> SubjectInput {
    let (image, symbols) = loaded.map(|l| (l.image, l.symbols)).unzip();
    let maps = s
        .maps
        .iter()
        .filter_map(|m| {
            Some(MapInput {
                logical: m.logical.value.clone(),
                region: get("memory region", &m.physical, errors)?.index(),
                virtual_address: m.virtual_address.value,
                writable: m.writable.value,
                executable: m.executable.value,
            })
        })
        .collect();
    let mut devices = Vec::new();
    for d in &s.devices {
        let Some(idx) = get("device", &d.physical, errors) else {
            continue;
        };
        let device = policy.device(idx);
        let io_ports = if d.is_whole_device() {
            device
                .io_ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let logical = if i == 0 {
                        d.logical.value.clone()
                    } else {
                        format!("{}|{}", d.logical.value, p.name.value)
                    };
                    (logical, port_range(p))
                })
                .collect()
        } else {
            d.io_ports
                .iter()
                .filter_map(|g| {
                    let p = get("I/O port range", &g.physical, errors)?;
                    let range = device.io_ports.get(p.index())?;
                    Some((g.logical.value.clone(), port_range(range)))
                })
                .collect()
        };
        let irqs = d
            .irqs
            .iter()
            .filter_map(|g| {
                let i = get("IRQ", &g.physical, errors)?;
                let line = device.irqs.get(i.index())?;
                Some(IrqGrantInput {
                    logical: g.logical.value.clone(),
                    line: line.number.value,
                    vector: g.vector.value.0,
                    msis: line
                        .msis
                        .iter()
                        .map(|m| m.number.as_ref().map(|n| n.value))
                        .collect(),
                })
            })
            .collect();
        let mut memory: Vec<DeviceMemoryGrantInput> = d
            .memory
            .iter()
            .filter_map(|g| {
                let i = get("device memory", &g.physical, errors)?;
                let m = device.memory.get(i.index())?;
                Some(DeviceMemoryGrantInput {
                    logical: g.logical.value.clone(),
                    physical: m.physical_address.value,
                    size: m.size.value,
                    caching: m.caching.value,
                    virtual_address: g.virtual_address.value,
                    writable: g.writable.value,
                    executable: g.executable.value,
                })
            })
            .collect();
        if s.profile.value == model::Profile::Native {
            memory.extend(crate::pcicfg::config_page(
                &d.logical.value,
                policy.hardware.pci_config_address.as_ref().map(|a| a.value),
                device.pci.as_ref(),
            ));
        }
        devices.push(DeviceGrantInput {
            logical: d.logical.value.clone(),
            device: idx.index(),
            io_ports,
            irqs,
            memory,
        });
    }
    let source_events = s
        .source_events()
        .filter_map(|e| {
            Some(SourceEventInput {
                id: e.id.value.0,
                logical: e.logical.value.clone(),
                event: get("event", &e.physical, errors)?.index(),
            })
        })
        .collect();
    let target_events: Vec<TargetEventInput> = s
        .targets
        .iter()
        .filter_map(|t| {
            Some(TargetEventInput {
                id: t.id.value.0,
                logical: t.logical.value.clone(),
                event: get("event", &t.physical, errors)?.index(),
                vector: t.inject.as_ref().map(|i| i.vector.value.0),
                reset: t.reset.is_some(),
            })
        })
        .collect();
    let mut used_targets: Vec<u8> = target_events.iter().map(|t| t.id).collect();
    let mut channels = Vec::new();
    for c in &s.channels {
        let Some(idx) = get("channel", &c.physical, errors) else {
            continue;
        };
        let has_event = policy.channel(idx).has_event.is_some();
        let writer = c.role == ChannelRole::Writer;
        let event = if writer {
            c.event.map(|e| e.value.0)
        } else if has_event {
            let free = (0u8..64).find(|id| !used_targets.contains(id));
            if let Some(id) = free {
                used_targets.push(id);
            }
            free
        } else {
            None
        };
        channels.push(ChannelEndInput {
            logical: c.logical.value.clone(),
            channel: idx.index(),
            writer,
            virtual_address: c.virtual_address.value,
            event,
            vector: c.vector.map(|v| v.value.0),
            injects: has_event && c.vector.is_some_and(|v| !v.auto),
        });
    }
    // The `subjects-timed-*` rules report an unknown page or event.
    let timed_event = s.timed_event.as_ref().and_then(|timed| {
        Some(TimedEventInput {
            page: timed.page.get()?.index(),
            event: target_events
                .iter()
                .find(|t| t.logical == timed.event.value)?
                .id,
        })
    });
    SubjectInput {
        name: s.name.value.clone(),
        profile: s.profile.value,
        binary: s.binary.value.clone(),
        image: image.unwrap_or(SubjectImage {
            entry: Default::default(),
            segments: Vec::new(),
        }),
        symbols: symbols.unwrap_or_default(),
        cpu: s.cpu.value.0,
        on_fault: s.on_fault.value,
        restart: crate::events::restart_policy(s),
        default_fault_action: s.relies_on_default_fault_action(),
        minor_frame_deadline: s.minor_frame_deadline.value,
        stack_size: s.stack_size.value,
        maps,
        devices,
        source_events,
        target_events,
        channels,
        monitor: monitor_input(s),
        timed_event,
        crash_audit: s
            .crash_audit
            .as_ref()
            .map(|grant| crate::input::CrashAuditGrantInput {
                logical: grant.logical.value.clone(),
                virtual_address: grant.virtual_address.value,
            }),
    }
}

/// A subject's `<monitor>`, if it has one whose references resolved (the
/// `subjects-monitor-*` rules report the rest).
fn monitor_input(s: &model::Subject) -> Option<MonitorInput> {
    let monitor = s.monitor.as_ref()?;
    let exits = monitor
        .exits
        .value
        .iter()
        .filter_map(|name| exit_reasons(name.as_str()))
        .flatten()
        .fold(ExitSet::default(), |set, &reason| set.with(reason));
    Some(MonitorInput {
        event: monitor.event.get()?.index(),
        state: monitor.state.get()?.index(),
        exits,
        virtio_console: s.virtio_console.as_ref().map(|c| VirtioConsoleInput {
            port: c.port.value,
            irq: c.irq.value,
            guest_memory: c.guest_memory.value,
        }),
    })
}

fn scheduling(policy: &Policy, errors: &mut Vec<Diagnostic>) -> SchedulingInput {
    let sched = &policy.scheduling;
    let partitions = sched
        .partitions
        .iter()
        .map(|p| PartitionInput {
            name: p.name.value.clone(),
            cpu: p.cpu.map_or(0, |c| c.value.0),
            groups: p
                .groups
                .iter()
                .map(|g| {
                    g.subjects
                        .iter()
                        .filter_map(|s| get("subject", s, errors).map(|i| i.index()))
                        .collect()
                })
                .collect(),
        })
        .collect();
    let major_frames = sched
        .major_frames
        .iter()
        .map(|m| {
            m.cpus
                .iter()
                .map(|c| CpuFramesInput {
                    cpu: c.id.value.0,
                    frames: c
                        .minor_frames
                        .iter()
                        .filter_map(|f| {
                            Some(MinorFrameInput {
                                partition: get("partition", &f.partition, errors)?.index(),
                                ticks: f.ticks.value.0,
                            })
                        })
                        .collect(),
                })
                .collect()
        })
        .collect();
    SchedulingInput {
        tick_rate: sched.tick_rate.value,
        partitions,
        major_frames,
    }
}
