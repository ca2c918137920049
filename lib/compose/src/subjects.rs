//! Composing one subject (steps 3 and 4 of [`crate::pipeline::compose`]):
//! its address space, page tables, EPT, VMX state, events and info page.
//!
//! Guest-physical equals virtual for every mapping. The mappings (ELF
//! segments, info page, stack, `<map>`s, channel ends) are checked for
//! overlaps, including the stack's guard page, and must lie in the 47-bit
//! lower half. The subject's IA-32e page tables sit at the lowest
//! guest-physical range no mapping uses, so the subject cannot reach them
//! through its own virtual space; EPT maps them read-only. The EPT is built
//! last, because where 2 MiB pages fit depends on the physical addresses
//! placement chose. The subject's profile ([`crate::profile`]) then turns
//! its entry point and page-table address into its VMX controls and guest
//! state.

use std::ops::Range;

use septum_abi::info::{
    FLAG_CHANNEL_READER, FLAG_CHANNEL_WRITER, FLAG_EXECUTABLE, FLAG_WRITABLE, ResourceKind,
};
use septum_abi::layout::{self, PAGE_SIZE};
use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, VirtAddr};

use crate::elf::round_up;
use crate::error::{ComposeError, fail};
use crate::events::{self, EventTargets};
use crate::info::{self, InfoHeader, Resource};
use crate::input::{
    Caching, DeviceMemoryGrantInput, EventMode, Profile, SubjectInput, SystemInput,
};
use crate::interrupts::Interrupts;
use crate::paging::{EptTables, Format, GuestTables, INPUT_LIMIT, Rights};
use crate::placement::{Placed, Placer, RegionRequest, SubjectRegions};
use crate::profile::{self, VmxInputs};
use crate::system::{
    DeviceGrant, Mapping, MappingKind, PortRange, RegionIndex, RegionKind, SubjectOut,
};
use crate::vmx;
use septum_kerncore::vm::lapic::XAPIC_GPA;

/// What every subject's composition reads: the input, where steps 1 and 2
/// placed everything, and who receives each event.
pub struct SubjectContext<'a> {
    /// The system.
    pub input: &'a SystemInput,
    /// Regions placed so far.
    pub placed: &'a Placed,
    /// The receiver of each global event.
    pub targets: &'a EventTargets,
    /// The IRQ routes.
    pub interrupts: &'a Interrupts,
}

/// A range of a subject's guest-physical space that something occupies,
/// named for the overlap error.
struct Occupied {
    range: Range<u64>,
    what: String,
}

/// Lowest range of `pages` pages at or above 4 KiB that none of the sorted,
/// disjoint `used` ranges touches.
fn free_guest_range(used: &[Occupied], pages: u64) -> u64 {
    let size = pages * PAGE_SIZE;
    let mut candidate = PAGE_SIZE;
    for o in used {
        if candidate + size <= o.range.start {
            break;
        }
        let end = o.range.end;
        candidate = candidate.max(round_up(end, PAGE_SIZE).unwrap_or(end));
    }
    candidate
}

/// A mapping of all of region `region` at `va` (= guest-physical).
fn whole_region(
    placer: &Placer,
    name: &str,
    region: RegionIndex,
    va: VirtAddr,
    writable: bool,
    kind: MappingKind,
) -> Mapping {
    let r = placer.region(region);
    Mapping {
        name: name.into(),
        region,
        virtual_address: Some(va),
        guest_physical: GuestPhysAddr(va.get()),
        physical: r.start,
        size: r.size,
        writable,
        executable: false,
        kind,
    }
}

/// Lay out subject `id`'s address space, check it, build and place its
/// page tables and EPT, choose its VMX state, resolve its events and write
/// its info page.
pub fn compose_subject(
    ctx: &SubjectContext<'_>,
    placer: &mut Placer,
    id: SubjectId,
    s: &SubjectInput,
    own: &SubjectRegions,
) -> Result<SubjectOut, ComposeError> {
    let input = ctx.input;
    let mut mappings = Vec::new();
    for (seg, placed) in s.image.segments.iter().zip(&own.segments) {
        let r = placer.region(placed.region);
        mappings.push(Mapping {
            name: placed.name.clone(),
            region: placed.region,
            virtual_address: Some(seg.virtual_address),
            guest_physical: GuestPhysAddr(seg.virtual_address.get()),
            physical: r.start,
            size: r.size,
            writable: seg.writable,
            executable: seg.executable,
            kind: MappingKind::Program,
        });
    }
    // A VM gets neither the info page nor the SDK's stack: its low
    // megabyte is the boot segment of its Linux image (`crate::linux`).
    let native = s.profile != Profile::Vm;
    if native {
        mappings.push(whole_region(
            placer,
            "info",
            own.info,
            layout::SUBJECT_INFO,
            false,
            MappingKind::InfoPage,
        ));
    }
    let stack_size = placer.region(own.stack).size;
    let Some(stack_bottom) = layout::SUBJECT_STACK_TOP
        .get()
        .checked_sub(stack_size + PAGE_SIZE)
    else {
        return fail(format!(
            "subject \"{}\": stack of {stack_size:#x} bytes is too large",
            s.name
        ));
    };
    let stack_bottom = stack_bottom + PAGE_SIZE;
    if native {
        mappings.push(whole_region(
            placer,
            "stack",
            own.stack,
            VirtAddr(stack_bottom),
            true,
            MappingKind::Stack,
        ));
    }
    for m in &s.maps {
        let mut map = whole_region(
            placer,
            &m.logical,
            ctx.placed.memory[m.region],
            m.virtual_address,
            m.writable,
            MappingKind::Memory,
        );
        map.executable = m.executable;
        mappings.push(map);
    }
    let guest_memory = crate::monitor::guest_memory(input, ctx.placed, placer, ctx.targets, id);
    mappings.extend(guest_memory.iter().map(|(m, _)| m.clone()));
    for c in &s.channels {
        let kind = if c.writer {
            MappingKind::ChannelWriter
        } else {
            MappingKind::ChannelReader
        };
        mappings.push(whole_region(
            placer,
            &c.logical,
            ctx.placed.channels[c.channel],
            c.virtual_address,
            c.writer,
            kind,
        ));
    }

    // Device memory is no composed region: it is mapped from the grants
    // ([`device_memory`]), beside the mappings.
    let mut device = device_memory(s);
    let crash_audit = crate::crash_reader::grant(s, &ctx.placed.crash_audit);
    device.extend(crash_audit.clone());

    // Overlap check with names, including the stack guard page.
    let mut used: Vec<Occupied> = mappings
        .iter()
        .map(|m| {
            let va = m.guest_physical.get();
            Occupied {
                range: va..va.saturating_add(m.size),
                what: format!("{} ({})", m.name, m.kind.label()),
            }
        })
        .chain(device.iter().map(|d| Occupied {
            range: d.virtual_address.get()..d.virtual_address.get().saturating_add(d.size),
            what: if crash_audit.as_ref() == Some(d) {
                format!("{} (crash audit)", d.logical)
            } else {
                format!("{} (device memory)", d.logical)
            },
        }))
        .collect();
    if native {
        used.push(Occupied {
            range: stack_bottom - PAGE_SIZE..stack_bottom,
            what: "stack guard page".into(),
        });
    }
    if own.apic_access.is_some() {
        used.push(Occupied {
            range: XAPIC_GPA..XAPIC_GPA + PAGE_SIZE,
            what: "local APIC page".into(),
        });
    }
    used.sort_by(|a, b| {
        (a.range.start, a.range.end, &a.what).cmp(&(b.range.start, b.range.end, &b.what))
    });
    for pair in used.windows(2) {
        let (first, second) = (&pair[0], &pair[1]);
        if second.range.start < first.range.end {
            return fail(format!(
                "subject \"{}\": {} at {:#x}-{:#x} overlaps {} at {:#x}-{:#x}",
                s.name,
                second.what,
                second.range.start,
                second.range.end,
                first.what,
                first.range.start,
                first.range.end
            ));
        }
    }
    if let Some(last) = used.last()
        && last.range.end > INPUT_LIMIT
    {
        return fail(format!(
            "subject \"{}\": {} at {:#x} lies beyond the 47-bit address space",
            s.name, last.what, last.range.start
        ));
    }

    let mut guest = GuestTables::new(Format::Ia32e, true);
    for m in &mappings {
        let va = m.virtual_address.unwrap_or_default();
        let caching = placer.region(m.region).caching;
        guest
            .map(
                va,
                GuestPhysAddr(va.get()),
                m.size,
                Rights::of(m.writable, m.executable, caching),
            )
            .map_err(|e| ComposeError::new(format!("subject \"{}\": {e}", s.name)))?;
    }
    for d in &device {
        guest
            .map(
                d.virtual_address,
                GuestPhysAddr(d.virtual_address.get()),
                d.size,
                guest_device_rights(d),
            )
            .map_err(|e| ComposeError::new(format!("subject \"{}\": {e}", s.name)))?;
    }
    let pt_pages = guest.page_count() as u64;
    let pt_gpa = GuestPhysAddr(free_guest_range(&used, pt_pages));
    let pt_region = placer.place(
        RegionRequest::subject(
            id,
            &s.name,
            "pt",
            RegionKind::GuestPageTables,
            pt_pages * PAGE_SIZE,
        )
        .with_content(guest.to_bytes(pt_gpa)),
    )?;
    let pt = placer.region(pt_region);
    mappings.push(Mapping {
        name: "page_tables".into(),
        region: pt_region,
        virtual_address: None,
        guest_physical: pt_gpa,
        physical: pt.start,
        size: pt.size,
        writable: false,
        executable: false,
        kind: MappingKind::PageTables,
    });
    // A VM's local APIC: its APIC-access page at the xAPIC's address, in
    // the EPT only (the guest maps it itself), read-write so that the CPU
    // virtualises the guest's accesses (`septum_kerncore::vm::lapic`).
    if let Some(apic) = own.apic_access {
        let page = placer.region(apic);
        mappings.push(Mapping {
            name: "apic".into(),
            region: apic,
            virtual_address: None,
            guest_physical: GuestPhysAddr(XAPIC_GPA),
            physical: page.start,
            size: page.size,
            writable: true,
            executable: false,
            kind: MappingKind::ApicAccess,
        });
    }

    let mut ept = EptTables::new(Format::Ept, true);
    for m in &mappings {
        let caching = placer.region(m.region).caching;
        ept.map(
            m.guest_physical,
            m.physical,
            m.size,
            Rights::of(m.writable, m.executable, caching),
        )
        .map_err(|e| ComposeError::new(format!("subject \"{}\": EPT: {e}", s.name)))?;
    }
    for d in &device {
        ept.map(
            GuestPhysAddr(d.virtual_address.get()),
            d.physical,
            d.size,
            Rights::of(d.writable, d.executable, d.caching),
        )
        .map_err(|e| ComposeError::new(format!("subject \"{}\": EPT: {e}", s.name)))?;
    }
    let ept_pages = ept.page_count() as u64;
    let ept_region = placer.place(RegionRequest::subject(
        id,
        &s.name,
        "ept",
        RegionKind::Ept,
        ept_pages * PAGE_SIZE,
    ))?;
    let ept_root = placer.region(ept_region).start;
    placer.region_mut(ept_region).content = ept.to_bytes(ept_root);

    let vmx_state = profile::subject_vmx(
        s.profile,
        &VmxInputs {
            entry: s.image.entry,
            page_tables: pt_gpa,
            interrupt_entry: ctx.interrupts.takes_interrupts(id),
        },
    )
    .map_err(|e| ComposeError::new(format!("subject \"{}\": {e}", s.name)))?;
    let source_events = events::resolve(input, id, s, ctx.targets)?;
    let (mut resources, devices) = resources_of(input, s);
    resources.extend(crate::crash_reader::resource(s, &ctx.placed.crash_audit));
    resources.extend(guest_memory.into_iter().map(|(_, r)| r));
    let page = info::info_page(
        &InfoHeader {
            id,
            name: &s.name,
            tsc_khz: input.hardware.speed_khz,
        },
        &resources,
    )
    .map_err(|e| ComposeError::new(format!("subject \"{}\": {e}", s.name)))?;
    placer.region_mut(own.info).content = page;

    let io_bitmap_a = placer.region(own.io_bitmaps).start;
    Ok(SubjectOut {
        name: s.name.clone(),
        cpu: s.cpu,
        vpid: id.0 + 1,
        vmcs: placer.region(own.vmcs).start,
        eptp: ept_root.get() | vmx::EPTP_FLAGS,
        io_bitmap_a,
        io_bitmap_b: PhysAddr(io_bitmap_a.get() + PAGE_SIZE),
        msr_bitmap: placer.region(own.msr_bitmap).start,
        apic_access: own.apic_access.map(|r| placer.region(r).start),
        controls: crate::monitor::controls(s, vmx_state.controls),
        guest: vmx_state.guest,
        default_fault_action: s.default_fault_action,
        fault_action: crate::monitor::fault_action(input, ctx.placed, placer, ctx.targets, s)?,
        monitor_event: s
            .monitor
            .as_ref()
            .and_then(|m| input.events.get(m.event))
            .map(|e| e.name.clone()),
        minor_frame_deadline: s.minor_frame_deadline,
        timed_event: crate::timed::page(input, ctx.placed, placer, s)?,
        mappings,
        source_events,
        resources,
        devices,
    })
}

/// Every device memory grant of `s` (the `<memory>` children of its device
/// grants). Mapped in its EPT with the device memory's type (UC unless the
/// hardware description says otherwise) and in its page tables uncached
/// for UC (PCD|PWT: PAT entry 3, UC with the reset PAT), so neither layer
/// lets the CPU cache device registers; nothing else maps them ([`crate::layers`]
/// checks both).
fn device_memory(s: &SubjectInput) -> Vec<DeviceMemoryGrantInput> {
    s.devices
        .iter()
        .flat_map(|d| d.memory.iter().cloned())
        .collect()
}

/// The guest page-table rights of device memory `d`.
fn guest_device_rights(d: &DeviceMemoryGrantInput) -> Rights {
    Rights {
        uncached: d.caching == Caching::Uc,
        ..Rights::of(d.writable, d.executable, d.caching)
    }
}

/// The subject's info page records and device grants.
fn resources_of(input: &SystemInput, s: &SubjectInput) -> (Vec<Resource>, Vec<DeviceGrant>) {
    let mut resources = Vec::new();
    for m in &s.maps {
        let mut flags = 0;
        if m.writable {
            flags |= FLAG_WRITABLE;
        }
        if m.executable {
            flags |= FLAG_EXECUTABLE;
        }
        let size = input.regions[m.region].size;
        resources.push(info::memory(&m.logical, m.virtual_address, size, flags));
    }
    for c in &s.channels {
        let channel = &input.channels[c.channel];
        let mut r = Resource::new(
            &c.logical,
            ResourceKind::Channel,
            c.virtual_address.get(),
            channel.size,
        );
        r.flags = if c.writer {
            FLAG_CHANNEL_WRITER | FLAG_WRITABLE
        } else {
            FLAG_CHANNEL_READER
        };
        if let Some(e) = c.event {
            r.event = e;
        }
        r.vector = c.vector.unwrap_or(0);
        resources.push(r);
    }
    for e in &s.source_events {
        let mut r = Resource::new(&e.logical, ResourceKind::SourceEvent, 0, 0);
        r.event = e.id;
        let event = &input.events[e.event];
        if let (EventMode::Kernel, Some(action)) = (event.mode, event.action) {
            r.action = info::action_code(action);
        }
        resources.push(r);
    }
    for t in &s.target_events {
        let mut r = Resource::new(&t.logical, ResourceKind::TargetEvent, 0, 0);
        r.event = t.id;
        r.vector = t.vector.unwrap_or(0);
        resources.push(r);
    }
    let mut devices = Vec::new();
    for d in &s.devices {
        let mut ports = Vec::new();
        for (logical, range) in &d.io_ports {
            let count = u64::from(range.end) - u64::from(range.start) + 1;
            resources.push(Resource::new(
                logical,
                ResourceKind::IoPorts,
                range.start.into(),
                count,
            ));
            ports.push(PortRange {
                first: range.start,
                last: range.end,
            });
        }
        for m in &d.memory {
            let mut flags = 0;
            if m.writable {
                flags |= FLAG_WRITABLE;
            }
            if m.executable {
                flags |= FLAG_EXECUTABLE;
            }
            let mut r = Resource::new(
                &m.logical,
                ResourceKind::DeviceMemory,
                m.virtual_address.get(),
                m.size,
            );
            r.flags = flags;
            resources.push(r);
        }
        for irq in &d.irqs {
            let mut r = Resource::new(&irq.logical, ResourceKind::Irq, irq.line.into(), 0);
            r.vector = irq.vector;
            resources.push(r);
        }
        devices.push(DeviceGrant {
            logical: d.logical.clone(),
            device: input.hardware.devices[d.device].name.clone(),
            ports,
        });
    }
    (resources, devices)
}
