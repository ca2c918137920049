//! Composition: from a validated system to placed regions and built tables.
//!
//! The steps, in the order that keeps every size known before it is placed:
//!
//! 1. Fixed regions (`physicalAddress`) are reserved.
//! 2. Data regions are allocated, in a fixed order: VMXON per CPU; per
//!    subject its VMCS, I/O bitmaps, MSR bitmap, info page, stack and one
//!    region per ELF segment; then `<memory>` regions; then channels.
//! 3. Each subject's address space is laid out (guest-physical equals
//!    virtual for every mapping), checked for overlaps, and its IA-32e page
//!    tables are built. Their pages sit at the lowest free guest-physical
//!    range that no mapping uses, so the subject cannot reach them through
//!    its own virtual space; EPT maps them read-only.
//! 4. Each subject's EPT is built (its size depends on the now known
//!    physical addresses, which decide where 2 MiB pages fit) and placed.
//! 5. The kernel's identity tables (kernel windows, VMXON and VMCS regions)
//!    are built and placed.
//!
//! Everything is a pure function of the input: the same input gives the
//! same regions, bytes and addresses.

use std::collections::HashMap;

use septum_abi::info::{
    FLAG_CHANNEL_READER, FLAG_CHANNEL_WRITER, FLAG_EXECUTABLE, FLAG_WRITABLE, ResourceKind,
};
use septum_abi::layout::{self, KERNEL_DATA, KERNEL_RODATA, KERNEL_TEXT};
use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, TscCycles, VirtAddr};
use septum_kerncore::spec::{self, FaultAction, GuestState, Owned, SourceEvent, VmxControls};

use crate::PAGE_SIZE;
use crate::alloc::{AllocError, KERNEL_WINDOWS, PhysAllocator};
use crate::bitmaps;
use crate::elf::round_up;
use crate::info::{self, InfoHeader, Resource};
use crate::input::{Caching, EventMode, KernelAction, OnFault, SubjectInput, SystemInput};
use crate::paging::{
    EptTables, Format, GuestTables, KernelTables, LARGE_PAGE_SIZE, MemoryType, Rights,
};
use crate::profile::{self, VmxInputs};
use crate::vmx;

/// A composition failure. Policies that passed validation normally compose;
/// what remains are limits only known after allocation (memory exhausted,
/// overlaps with ELF segments, info page capacity, inexact tick rates).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ComposeError {
    /// What is wrong, naming the subject, region or frame concerned.
    pub message: String,
    /// The policy element it concerns, when there is one, so the caller can
    /// point at it (file:line:col).
    pub origin: Option<Origin>,
}

/// The policy element a [`ComposeError`] concerns (indices into the input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A subject.
    Subject(usize),
    /// A `<memory>` region.
    Region(usize),
    /// A channel.
    Channel(usize),
    /// The scheduling plan.
    Scheduling,
}

fn error(message: String) -> ComposeError {
    ComposeError {
        message,
        origin: None,
    }
}

impl ComposeError {
    /// Attach `origin` unless the error already has one.
    fn at(mut self, origin: Origin) -> Self {
        self.origin.get_or_insert(origin);
        self
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, ComposeError> {
    Err(error(message.into()))
}

/// What a physical region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// A kernel window (filled by `septum pack` from the kernel ELF).
    KernelWindow,
    /// The kernel's page tables.
    KernelPageTables,
    /// A VMXON region.
    Vmxon,
    /// A subject's VMCS.
    Vmcs,
    /// A subject's I/O bitmaps A and B.
    IoBitmaps,
    /// A subject's MSR bitmap.
    MsrBitmap,
    /// A subject's info page.
    InfoPage,
    /// A subject's stack.
    Stack,
    /// A subject's ELF segment.
    Program,
    /// A subject's IA-32e page tables.
    GuestPageTables,
    /// A subject's EPT.
    Ept,
    /// A `<memory>` region.
    Memory,
    /// A channel.
    Channel,
}

/// A placed physical region and its initial bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Name (`subject|what` for per-subject regions).
    pub name: String,
    /// First byte.
    pub start: PhysAddr,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// Memory type.
    pub caching: Caching,
    /// What it holds.
    pub kind: RegionKind,
    /// Initial bytes from offset 0; the rest of the region is zero.
    pub content: Vec<u8>,
}

impl Region {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.get() + self.size
    }
}

/// What a subject mapping shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingKind {
    /// An ELF segment.
    Program,
    /// The info page.
    InfoPage,
    /// The stack.
    Stack,
    /// A `<memory>` region.
    Memory,
    /// A channel this subject writes.
    ChannelWriter,
    /// A channel this subject reads.
    ChannelReader,
    /// The subject's own page tables (EPT only, read-only, not in its
    /// virtual address space).
    PageTables,
}

/// One mapping of a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Logical name (or the segment/page kind for implicit mappings).
    pub name: String,
    /// Index into [`Composition::regions`].
    pub region: usize,
    /// Virtual address; `None` for the page tables (not virtually mapped).
    pub virtual_address: Option<VirtAddr>,
    /// Guest-physical address.
    pub guest_physical: GuestPhysAddr,
    /// Host-physical address.
    pub physical: PhysAddr,
    /// Size in bytes.
    pub size: u64,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
    /// What it is.
    pub kind: MappingKind,
}

/// The kernel's action for a policy kernel action.
///
/// Fails for an action this kernel version does not implement
/// (`unmask_irq`), naming it.
pub fn kernel_action(action: KernelAction) -> Result<spec::KernelAction, String> {
    Ok(match action {
        KernelAction::Yield => spec::KernelAction::Yield,
        KernelAction::Sleep => spec::KernelAction::Sleep,
        KernelAction::Poweroff => spec::KernelAction::Poweroff,
        KernelAction::Reboot => spec::KernelAction::Reboot,
        KernelAction::Panic => spec::KernelAction::SystemPanic,
        KernelAction::UnmaskIrq => {
            return Err(format!(
                "kernel action \"{}\" is not supported by this kernel version",
                action.as_str()
            ));
        }
    })
}

/// The policy action a kernel action came from (for the report).
pub const fn policy_action(action: spec::KernelAction) -> KernelAction {
    match action {
        spec::KernelAction::Yield => KernelAction::Yield,
        spec::KernelAction::Sleep => KernelAction::Sleep,
        spec::KernelAction::Poweroff => KernelAction::Poweroff,
        spec::KernelAction::Reboot => KernelAction::Reboot,
        spec::KernelAction::SystemPanic => KernelAction::Panic,
    }
}

/// The kernel's fault action for the policy's `onFault`.
pub const fn fault_action(on_fault: OnFault) -> FaultAction {
    match on_fault {
        OnFault::StopSystem => FaultAction::StopSystem,
        OnFault::StopSubject => FaultAction::StopSubject,
    }
}

/// The policy's `onFault` spelling of a fault action (for the report).
pub const fn on_fault_name(action: FaultAction) -> &'static str {
    match action {
        FaultAction::StopSystem => "stopSystem",
        FaultAction::StopSubject => "stopSubject",
    }
}

/// One source event of a subject, with what the report shows about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEventOut {
    /// Source event number.
    pub id: u8,
    /// Logical name in the source subject.
    pub logical: String,
    /// Policy event name (or `channel:<name>` for a channel's event).
    pub event: String,
    /// Mode.
    pub mode: EventMode,
    /// What the kernel does when the subject raises it (`async` and `ipi`
    /// events both become [`SourceEvent::Async`]: this kernel version runs
    /// one CPU, so there is nobody to interrupt).
    pub action: SourceEvent,
    /// Vector injected at the target, if any.
    pub vector: Option<u8>,
}

/// A composed subject.
#[derive(Clone, Debug)]
pub struct SubjectOut {
    /// Name.
    pub name: String,
    /// CPU.
    pub cpu: u32,
    /// VPID (index + 1).
    pub vpid: u16,
    /// VMCS region.
    pub vmcs: PhysAddr,
    /// EPT pointer.
    pub eptp: u64,
    /// I/O bitmap A (ports 0x0000-0x7fff).
    pub io_bitmap_a: PhysAddr,
    /// I/O bitmap B (ports 0x8000-0xffff), the page after A.
    pub io_bitmap_b: PhysAddr,
    /// MSR bitmap.
    pub msr_bitmap: PhysAddr,
    /// VMX controls, as the subject's profile chose them.
    pub controls: VmxControls,
    /// Initial guest state (entry point, stack, info page pointer, CR3 =
    /// its page tables), as the subject's profile chose it.
    pub guest: GuestState,
    /// What the kernel does on an unrouted exit.
    pub fault_action: FaultAction,
    /// Every mapping (virtual and EPT-only).
    pub mappings: Vec<Mapping>,
    /// Source events by number.
    pub source_events: Vec<SourceEventOut>,
    /// Info page records.
    pub resources: Vec<Resource>,
    /// Devices granted.
    pub devices: DeviceList,
}

/// A minor frame with its placement in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinorOut {
    /// Index into [`Schedule::partitions`].
    pub partition: usize,
    /// Start, ticks from the major frame start.
    pub start_ticks: u64,
    /// End, ticks.
    pub end_ticks: u64,
    /// Start, TSC cycles.
    pub start: TscCycles,
    /// End, TSC cycles.
    pub end: TscCycles,
}

/// A major frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MajorOut {
    /// Length in ticks.
    pub length_ticks: u64,
    /// Length in cycles.
    pub length: TscCycles,
    /// Minor frames per CPU (index = CPU number; empty if idle).
    pub cpus: Vec<Vec<MinorOut>>,
}

/// A partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionOut {
    /// Name.
    pub name: String,
    /// CPU.
    pub cpu: u32,
    /// Indices into [`Schedule::groups`].
    pub groups: Vec<usize>,
}

/// The plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Ticks per second.
    pub tick_rate: u64,
    /// Partitions.
    pub partitions: Vec<PartitionOut>,
    /// Groups (subjects; the first is active at boot).
    pub groups: Vec<Vec<SubjectId>>,
    /// Major frames.
    pub major_frames: Vec<MajorOut>,
}

/// Everything composed.
#[derive(Clone, Debug)]
pub struct Composition {
    /// System name.
    pub name: String,
    /// Kernel PML4.
    pub kernel_pml4: PhysAddr,
    /// Debug UART base port.
    pub debug_uart_port: u16,
    /// Debug console device name.
    pub debug_console: String,
    /// TSC rate in kHz.
    pub tsc_khz: u64,
    /// CPUs the plan uses.
    pub cpu_count: u32,
    /// VMXON region per CPU.
    pub vmxon: Vec<PhysAddr>,
    /// Every placed region, in allocation order.
    pub regions: Vec<Region>,
    /// Subjects.
    pub subjects: Vec<SubjectOut>,
    /// Plan.
    pub schedule: Schedule,
    /// Every hardware device with its owners: (device, owner subject,
    /// `kernel` or `-` for none, logical name or `-`).
    pub device_owners: Vec<(String, String, String)>,
}

impl Composition {
    /// Every region the image occupies: the kernel windows, then every
    /// composed region in address order.
    pub fn image_regions(&self) -> Vec<spec::ImageRegion<Owned>> {
        let mut out: Vec<_> = KERNEL_WINDOWS
            .iter()
            .map(|(name, w)| spec::ImageRegion {
                name: (*name).into(),
                start: w.start,
                size: w.size,
            })
            .collect();
        let mut sorted: Vec<&Region> = self.regions.iter().collect();
        sorted.sort_by_key(|r| r.start);
        out.extend(sorted.into_iter().map(|r| spec::ImageRegion {
            name: r.name.clone(),
            start: r.start,
            size: r.size,
        }));
        out
    }
}

struct Placer {
    allocator: PhysAllocator,
    regions: Vec<Region>,
    /// What the regions being placed belong to, for error locations.
    origin: Option<Origin>,
}

impl Placer {
    fn place(
        &mut self,
        name: String,
        size: u64,
        caching: Caching,
        kind: RegionKind,
        content: Vec<u8>,
    ) -> Result<usize, ComposeError> {
        let size = round_up(size.max(PAGE_SIZE), PAGE_SIZE)
            .ok_or_else(|| error(format!("region \"{name}\": size overflows")))?;
        // 2 MiB alignment lets EPT use large pages for big regions.
        let align = if size >= LARGE_PAGE_SIZE {
            LARGE_PAGE_SIZE
        } else {
            PAGE_SIZE
        };
        let start = self.allocator.allocate(size, align).map_err(|e| {
            let err = alloc_error(&name, e);
            match self.origin {
                Some(origin) => err.at(origin),
                None => err,
            }
        })?;
        self.regions.push(Region {
            name,
            start,
            size,
            caching,
            kind,
            content,
        });
        Ok(self.regions.len() - 1)
    }
}

fn alloc_error(name: &str, e: AllocError) -> ComposeError {
    error(format!("region \"{name}\": {e}"))
}

/// Lowest range of `pages` pages at or above 4 KiB that none of the sorted,
/// disjoint `used` ranges touches.
fn free_guest_range(used: &[(u64, u64)], pages: u64) -> u64 {
    let size = pages * PAGE_SIZE;
    let mut candidate = PAGE_SIZE;
    for &(start, end) in used {
        if candidate + size <= start {
            break;
        }
        candidate = candidate.max(round_up(end, PAGE_SIZE).unwrap_or(end));
    }
    candidate
}

fn rights(writable: bool, executable: bool, caching: Caching) -> Rights {
    Rights {
        writable,
        executable,
        memory_type: caching.memory_type(),
    }
}

/// Compose a system.
pub fn compose(input: &SystemInput) -> Result<Composition, ComposeError> {
    if input.subjects.len() > usize::from(u16::MAX) - 1 {
        return fail(format!(
            "{} subjects exceed the limit of 65534",
            input.subjects.len()
        ));
    }
    let cpu_count = input
        .subjects
        .iter()
        .map(|s| s.cpu)
        .chain(input.scheduling.partitions.iter().map(|p| p.cpu))
        .chain(
            input
                .scheduling
                .major_frames
                .iter()
                .flatten()
                .map(|c| c.cpu),
        )
        .max()
        .unwrap_or(0)
        + 1;
    let mut placer = Placer {
        allocator: PhysAllocator::new(&input.hardware.memory_blocks),
        regions: vec![],
        origin: None,
    };

    // 1. Fixed regions first, so allocation works around them.
    let mut region_index = vec![usize::MAX; input.regions.len()];
    for (i, r) in input.regions.iter().enumerate() {
        if let Some(at) = r.physical {
            if !at.is_aligned(PAGE_SIZE) || r.size % PAGE_SIZE != 0 {
                return Err(error(format!(
                    "memory \"{}\": fixed placement {at} is not 4 KiB aligned",
                    r.name
                ))
                .at(Origin::Region(i)));
            }
            placer
                .allocator
                .reserve(at, r.size)
                .map_err(|e| alloc_error(&r.name, e).at(Origin::Region(i)))?;
            placer.regions.push(Region {
                name: r.name.clone(),
                start: at,
                size: r.size,
                caching: r.caching,
                kind: RegionKind::Memory,
                content: region_content(r),
            });
            region_index[i] = placer.regions.len() - 1;
        }
    }

    // 2. Data regions.
    let mut vmxon = Vec::new();
    for cpu in 0..cpu_count {
        let i = placer.place(
            format!("kernel|vmxon|{cpu}"),
            PAGE_SIZE,
            Caching::Wb,
            RegionKind::Vmxon,
            vec![],
        )?;
        vmxon.push(placer.regions[i].start);
    }
    let mut fixed = Vec::with_capacity(input.subjects.len());
    for (si, s) in input.subjects.iter().enumerate() {
        placer.origin = Some(Origin::Subject(si));
        let n = &s.name;
        let vmcs = placer.place(
            format!("{n}|vmcs"),
            PAGE_SIZE,
            Caching::Wb,
            RegionKind::Vmcs,
            vec![],
        )?;
        let ports = s
            .devices
            .iter()
            .flat_map(|d| d.io_ports.iter().map(|(_, r)| r));
        let io = placer.place(
            format!("{n}|iobm"),
            2 * PAGE_SIZE,
            Caching::Wb,
            RegionKind::IoBitmaps,
            bitmaps::io_bitmaps(ports),
        )?;
        let msr = placer.place(
            format!("{n}|msrbm"),
            PAGE_SIZE,
            Caching::Wb,
            RegionKind::MsrBitmap,
            bitmaps::msr_bitmap(),
        )?;
        let info = placer.place(
            format!("{n}|info"),
            PAGE_SIZE,
            Caching::Wb,
            RegionKind::InfoPage,
            vec![],
        )?;
        let stack = placer.place(
            format!("{n}|stack"),
            s.stack_size,
            Caching::Wb,
            RegionKind::Stack,
            vec![],
        )?;
        let mut segments = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for seg in &s.image.segments {
            let kind = seg.kind_name();
            let count = seen.entry(kind).or_insert(0);
            let name = if *count == 0 {
                format!("{n}|{kind}")
            } else {
                format!("{n}|{kind}{count}")
            };
            *count += 1;
            segments.push(placer.place(
                name,
                seg.mem_size,
                Caching::Wb,
                RegionKind::Program,
                seg.data.clone(),
            )?);
        }
        fixed.push(SubjectRegions {
            vmcs,
            io,
            msr,
            info,
            stack,
            segments,
        });
    }
    for (i, r) in input.regions.iter().enumerate() {
        placer.origin = Some(Origin::Region(i));
        if r.physical.is_none() {
            region_index[i] = placer.place(
                r.name.clone(),
                r.size,
                r.caching,
                RegionKind::Memory,
                region_content(r),
            )?;
        }
    }
    let mut channel_index = Vec::with_capacity(input.channels.len());
    for (i, c) in input.channels.iter().enumerate() {
        placer.origin = Some(Origin::Channel(i));
        channel_index.push(placer.place(
            c.name.clone(),
            c.size,
            Caching::Wb,
            RegionKind::Channel,
            vec![],
        )?);
    }

    // Who receives each global event (first target wins; validation makes
    // it unique).
    let mut targets: HashMap<usize, (usize, u8, Option<u8>)> = HashMap::new();
    for (si, s) in input.subjects.iter().enumerate() {
        for t in &s.target_events {
            targets.entry(t.event).or_insert((si, t.id, t.vector));
        }
    }

    // 3.-4. Per-subject address spaces.
    let shared = Shared {
        input,
        region_index: &region_index,
        channel_index: &channel_index,
        targets: &targets,
    };
    let mut subjects = Vec::with_capacity(input.subjects.len());
    for (si, (s, f)) in input.subjects.iter().zip(&fixed).enumerate() {
        placer.origin = Some(Origin::Subject(si));
        let subject = compose_subject(&shared, &mut placer, si, s, f)
            .map_err(|e| e.at(Origin::Subject(si)))?;
        subjects.push(subject);
    }

    // 5. The kernel's own tables.
    placer.origin = None;
    let mut kernel = KernelTables::new(Format::Ia32e, true);
    let identity = |t: &mut KernelTables, start: PhysAddr, size: u64, w: bool, x: bool| {
        t.map(
            VirtAddr(start.get()),
            start,
            size,
            rights(w, x, Caching::Wb),
        )
        .map_err(|e| error(format!("kernel page tables: {e}")))
    };
    identity(
        &mut kernel,
        KERNEL_TEXT.start,
        KERNEL_TEXT.size,
        false,
        true,
    )?;
    identity(
        &mut kernel,
        KERNEL_RODATA.start,
        KERNEL_RODATA.size,
        false,
        false,
    )?;
    identity(
        &mut kernel,
        KERNEL_DATA.start,
        KERNEL_DATA.size,
        true,
        false,
    )?;
    for &at in &vmxon {
        identity(&mut kernel, at, PAGE_SIZE, true, false)?;
    }
    for s in &subjects {
        identity(&mut kernel, s.vmcs, PAGE_SIZE, true, false)?;
    }
    let kpt = placer.place(
        "kernel|pt".into(),
        kernel.page_count() as u64 * PAGE_SIZE,
        Caching::Wb,
        RegionKind::KernelPageTables,
        vec![],
    )?;
    let kernel_pml4 = placer.regions[kpt].start;
    placer.regions[kpt].content = kernel.to_bytes(kernel_pml4);

    let schedule = schedule(input, cpu_count as usize).map_err(|e| e.at(Origin::Scheduling))?;
    // Every info page carries the boot major frame's length, known only now.
    let boot_major = schedule
        .major_frames
        .first()
        .map_or(TscCycles(0), |m| m.length);
    for f in &fixed {
        info::set_major_frame_cycles(&mut placer.regions[f.info].content, boot_major)
            .map_err(|e| error(format!("info page: {e}")))?;
    }
    let console = &input.hardware.devices[input.debug_console];
    let Some(uart) = console.io_ports.first() else {
        return fail(format!(
            "debug console \"{}\" has no I/O port range",
            console.name
        ));
    };
    // Every hardware device in description order, with each owner; devices
    // nobody owns are listed too, so the report accounts for all of them.
    let mut device_owners = Vec::new();
    for (di, device) in input.hardware.devices.iter().enumerate() {
        let before = device_owners.len();
        if di == input.debug_console {
            device_owners.push((
                device.name.clone(),
                "kernel".to_owned(),
                "debug console".to_owned(),
            ));
        }
        for (s, si) in subjects.iter().zip(&input.subjects) {
            for grant in si.devices.iter().filter(|g| g.device == di) {
                device_owners.push((device.name.clone(), s.name.clone(), grant.logical.clone()));
            }
        }
        if device_owners.len() == before {
            device_owners.push((device.name.clone(), "-".to_owned(), "-".to_owned()));
        }
    }
    for region in &mut placer.regions {
        let trimmed = region
            .content
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |p| p + 1);
        region.content.truncate(trimmed);
    }
    Ok(Composition {
        name: input.name.clone(),
        kernel_pml4,
        debug_uart_port: uart.start,
        debug_console: console.name.clone(),
        tsc_khz: input.hardware.speed_khz,
        cpu_count,
        vmxon,
        regions: placer.regions,
        subjects,
        schedule,
        device_owners,
    })
}

/// What every subject's composition reads: the input, where its regions and
/// channels were placed, and who receives each event.
struct Shared<'a> {
    input: &'a SystemInput,
    region_index: &'a [usize],
    channel_index: &'a [usize],
    targets: &'a HashMap<usize, (usize, u8, Option<u8>)>,
}

/// Regions placed for one subject before its tables are built.
struct SubjectRegions {
    vmcs: usize,
    io: usize,
    msr: usize,
    info: usize,
    stack: usize,
    segments: Vec<usize>,
}

/// Lay out one subject's address space, check it, build and place its page
/// tables and EPT, resolve its events and write its info page.
fn compose_subject(
    shared: &Shared<'_>,
    placer: &mut Placer,
    si: usize,
    s: &SubjectInput,
    f: &SubjectRegions,
) -> Result<SubjectOut, ComposeError> {
    let Shared {
        input,
        region_index,
        channel_index,
        targets,
    } = *shared;
    let mut mappings = Vec::new();
    let region =
        |placer: &Placer, idx: usize| (placer.regions[idx].start, placer.regions[idx].size);
    for (seg, &ri) in s.image.segments.iter().zip(&f.segments) {
        let (pa, size) = region(placer, ri);
        let name = placer.regions[ri]
            .name
            .rsplit('|')
            .next()
            .unwrap_or_default()
            .to_owned();
        mappings.push(Mapping {
            name,
            region: ri,
            virtual_address: Some(seg.virtual_address),
            guest_physical: GuestPhysAddr(seg.virtual_address.get()),
            physical: pa,
            size,
            writable: seg.writable,
            executable: seg.executable,
            kind: MappingKind::Program,
        });
    }
    let simple = |name: &str, ri: usize, va: VirtAddr, w: bool, kind| {
        let (pa, size) = region(placer, ri);
        Mapping {
            name: name.into(),
            region: ri,
            virtual_address: Some(va),
            guest_physical: GuestPhysAddr(va.get()),
            physical: pa,
            size,
            writable: w,
            executable: false,
            kind,
        }
    };
    mappings.push(simple(
        "info",
        f.info,
        layout::SUBJECT_INFO,
        false,
        MappingKind::InfoPage,
    ));
    let stack_size = placer.regions[f.stack].size;
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
    mappings.push(simple(
        "stack",
        f.stack,
        VirtAddr(stack_bottom),
        true,
        MappingKind::Stack,
    ));
    for m in &s.maps {
        let ri = region_index[m.region];
        let mut map = simple(
            &m.logical,
            ri,
            m.virtual_address,
            m.writable,
            MappingKind::Memory,
        );
        map.executable = m.executable;
        mappings.push(map);
    }
    for c in &s.channels {
        let kind = if c.writer {
            MappingKind::ChannelWriter
        } else {
            MappingKind::ChannelReader
        };
        mappings.push(simple(
            &c.logical,
            channel_index[c.channel],
            c.virtual_address,
            c.writer,
            kind,
        ));
    }

    // Overlap check with names, including the stack guard page.
    let mut used: Vec<(u64, u64, String)> = mappings
        .iter()
        .map(|m| {
            let va = m.guest_physical.get();
            (
                va,
                va.saturating_add(m.size),
                format!("{} ({})", m.name, kind_label(m.kind)),
            )
        })
        .collect();
    used.push((
        stack_bottom - PAGE_SIZE,
        stack_bottom,
        "stack guard page".into(),
    ));
    used.sort();
    for pair in used.windows(2) {
        if pair[1].0 < pair[0].1 {
            return fail(format!(
                "subject \"{}\": {} at {:#x}-{:#x} overlaps {} at {:#x}-{:#x}",
                s.name, pair[1].2, pair[1].0, pair[1].1, pair[0].2, pair[0].0, pair[0].1
            ));
        }
    }
    if let Some(last) = used.last()
        && last.1 > crate::paging::INPUT_LIMIT
    {
        return fail(format!(
            "subject \"{}\": {} at {:#x} lies beyond the 47-bit address space",
            s.name, last.2, last.0
        ));
    }

    let mut guest = GuestTables::new(Format::Ia32e, true);
    for m in &mappings {
        let va = m.virtual_address.unwrap_or_default();
        let caching = placer.regions[m.region].caching;
        guest
            .map(
                va,
                GuestPhysAddr(va.get()),
                m.size,
                rights(m.writable, m.executable, caching),
            )
            .map_err(|e| error(format!("subject \"{}\": {e}", s.name)))?;
    }
    let spans: Vec<(u64, u64)> = used.iter().map(|u| (u.0, u.1)).collect();
    let pt_pages = guest.page_count() as u64;
    let pt_gpa = GuestPhysAddr(free_guest_range(&spans, pt_pages));
    let pt_region = placer.place(
        format!("{}|pt", s.name),
        pt_pages * PAGE_SIZE,
        Caching::Wb,
        RegionKind::GuestPageTables,
        guest.to_bytes(pt_gpa),
    )?;
    let (pt_pa, pt_size) = region(placer, pt_region);
    mappings.push(Mapping {
        name: "page_tables".into(),
        region: pt_region,
        virtual_address: None,
        guest_physical: pt_gpa,
        physical: pt_pa,
        size: pt_size,
        writable: false,
        executable: false,
        kind: MappingKind::PageTables,
    });

    let mut ept = EptTables::new(Format::Ept, true);
    for m in &mappings {
        let caching = placer.regions[m.region].caching;
        ept.map(
            m.guest_physical,
            m.physical,
            m.size,
            rights(m.writable, m.executable, caching),
        )
        .map_err(|e| error(format!("subject \"{}\": EPT: {e}", s.name)))?;
    }
    let ept_pages = ept.page_count() as u64;
    let ept_region = placer.place(
        format!("{}|ept", s.name),
        ept_pages * PAGE_SIZE,
        Caching::Wb,
        RegionKind::Ept,
        vec![],
    )?;
    let ept_root = placer.regions[ept_region].start;
    placer.regions[ept_region].content = ept.to_bytes(ept_root);

    let vmx = profile::subject_vmx(
        s.profile,
        &VmxInputs {
            entry: s.image.entry,
            page_tables: pt_gpa,
        },
    )
    .map_err(|e| error(format!("subject \"{}\": {e}", s.name)))?;
    let source_events = resolve_events(input, si, s, targets)?;
    let (resources, devices) = resources_of(input, s);
    let page = info::info_page(
        &InfoHeader {
            id: SubjectId(si as u16),
            name: &s.name,
            tsc_khz: input.hardware.speed_khz,
        },
        &resources,
    )
    .map_err(|e| error(format!("subject \"{}\": {e}", s.name)))?;
    placer.regions[f.info].content = page;

    Ok(SubjectOut {
        name: s.name.clone(),
        cpu: s.cpu,
        vpid: (si + 1) as u16,
        vmcs: placer.regions[f.vmcs].start,
        eptp: ept_root.get() | vmx::EPTP_FLAGS,
        io_bitmap_a: placer.regions[f.io].start,
        io_bitmap_b: PhysAddr(placer.regions[f.io].start.get() + PAGE_SIZE),
        msr_bitmap: placer.regions[f.msr].start,
        controls: vmx.controls,
        guest: vmx.guest,
        fault_action: fault_action(s.on_fault),
        mappings,
        source_events,
        resources,
        devices,
    })
}

fn kind_label(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::Program => "ELF segment",
        MappingKind::InfoPage => "info page",
        MappingKind::Stack => "stack",
        MappingKind::Memory => "memory",
        MappingKind::ChannelWriter | MappingKind::ChannelReader => "channel",
        MappingKind::PageTables => "page tables",
    }
}

fn region_content(r: &crate::input::RegionInput) -> Vec<u8> {
    let size = usize::try_from(r.size).unwrap_or(usize::MAX);
    let len = if r.fill == 0 {
        r.content.len().min(size)
    } else {
        size
    };
    let mut bytes = vec![r.fill; len];
    let n = r.content.len().min(len);
    bytes[..n].copy_from_slice(&r.content[..n]);
    bytes
}

fn resolve_events(
    input: &SystemInput,
    si: usize,
    s: &SubjectInput,
    targets: &HashMap<usize, (usize, u8, Option<u8>)>,
) -> Result<Vec<SourceEventOut>, ComposeError> {
    let mut out = Vec::new();
    for e in &s.source_events {
        let event = &input.events[e.event];
        let (action, vector) = match event.mode {
            EventMode::Kernel => match event.action {
                Some(a) => (
                    SourceEvent::Kernel(
                        kernel_action(a)
                            .map_err(|e| error(format!("subject \"{}\": {e}", s.name)))?,
                    ),
                    None,
                ),
                None => {
                    return fail(format!(
                        "event \"{}\": kernel event without action",
                        event.name
                    ));
                }
            },
            mode => {
                let Some(&(target, target_event, vector)) = targets.get(&e.event) else {
                    return fail(format!("event \"{}\" has no target subject", event.name));
                };
                let t = SubjectId(target as u16);
                let action = match mode {
                    EventMode::Switch => SourceEvent::Switch {
                        target: t,
                        target_event,
                    },
                    EventMode::SelfEvent if target == si => SourceEvent::SelfEvent { target_event },
                    EventMode::SelfEvent => {
                        return fail(format!(
                            "self event \"{}\" targets another subject \"{}\"",
                            event.name, input.subjects[target].name
                        ));
                    }
                    _ => SourceEvent::Async {
                        target: t,
                        target_event,
                    },
                };
                (action, vector)
            }
        };
        out.push(SourceEventOut {
            id: e.id,
            logical: e.logical.clone(),
            event: event.name.clone(),
            mode: event.mode,
            action,
            vector,
        });
    }
    // A channel's event goes from its writer to its first reader.
    for end in s.channels.iter().filter(|c| c.writer) {
        let channel = &input.channels[end.channel];
        let (Some(mode), Some(id)) = (channel.has_event, end.event) else {
            continue;
        };
        let reader = input.subjects.iter().enumerate().find_map(|(ri, r)| {
            r.channels
                .iter()
                .find(|c| !c.writer && c.channel == end.channel)
                .and_then(|c| Some((ri, c.event?, c.vector)))
        });
        let Some((ri, target_event, vector)) = reader else {
            continue;
        };
        let target = SubjectId(ri as u16);
        let action = match mode {
            EventMode::Switch => SourceEvent::Switch {
                target,
                target_event,
            },
            _ => SourceEvent::Async {
                target,
                target_event,
            },
        };
        out.push(SourceEventOut {
            id,
            logical: end.logical.clone(),
            event: format!("channel:{}", channel.name),
            mode,
            action,
            vector,
        });
    }
    out.sort_by_key(|e| e.id);
    if let Some(pair) = out.windows(2).find(|p| p[0].id == p[1].id) {
        return fail(format!(
            "subject \"{}\": source event number {} is used twice",
            s.name, pair[0].id
        ));
    }
    if let Some(e) = out
        .iter()
        .find(|e| usize::from(e.id) >= septum_abi::hypercall::MAX_EVENTS)
    {
        return fail(format!(
            "subject \"{}\": source event number {} is above 63",
            s.name, e.id
        ));
    }
    Ok(out)
}

/// Devices granted to a subject: (logical name, device name, granted port
/// ranges as inclusive `(first, last)`).
pub type DeviceList = Vec<(String, String, Vec<(u16, u16)>)>;

fn resources_of(input: &SystemInput, s: &SubjectInput) -> (Vec<Resource>, DeviceList) {
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
        let mut ranges = Vec::new();
        for (logical, range) in &d.io_ports {
            let count = u64::from(range.end) - u64::from(range.start) + 1;
            resources.push(Resource::new(
                logical,
                ResourceKind::IoPorts,
                range.start.into(),
                count,
            ));
            ranges.push((range.start, range.end));
        }
        devices.push((
            d.logical.clone(),
            input.hardware.devices[d.device].name.clone(),
            ranges,
        ));
    }
    (resources, devices)
}

fn schedule(input: &SystemInput, cpu_count: usize) -> Result<Schedule, ComposeError> {
    let sched = &input.scheduling;
    let speed = input.hardware.speed_khz;
    if sched.tick_rate == 0 {
        return fail("scheduling tickRate is 0");
    }
    let cycles = |ticks: u64| -> Result<TscCycles, ComposeError> {
        let scaled = u128::from(ticks) * u128::from(speed) * 1000;
        let rate = u128::from(sched.tick_rate);
        if scaled % rate != 0 {
            return fail(format!(
                "{ticks} ticks at tickRate {} do not give a whole number of TSC cycles at {speed} kHz",
                sched.tick_rate
            ));
        }
        u64::try_from(scaled / rate)
            .map(TscCycles)
            .map_err(|_| error(format!("{ticks} ticks overflow 64-bit TSC cycles")))
    };
    let mut groups = Vec::new();
    let mut partitions = Vec::new();
    for p in &sched.partitions {
        let mut ids = Vec::new();
        for g in &p.groups {
            ids.push(groups.len());
            groups.push(g.iter().map(|&s| SubjectId(s as u16)).collect());
        }
        partitions.push(PartitionOut {
            name: p.name.clone(),
            cpu: p.cpu,
            groups: ids,
        });
    }
    let mut major_frames = Vec::new();
    for (mi, major) in sched.major_frames.iter().enumerate() {
        let mut cpus = vec![Vec::new(); cpu_count];
        let mut length_ticks = None;
        for cpu in major {
            let mut at = 0u64;
            let mut frames = Vec::new();
            for f in &cpu.frames {
                let end = at
                    .checked_add(f.ticks)
                    .ok_or_else(|| error(format!("major frame {mi}: ticks overflow")))?;
                frames.push(MinorOut {
                    partition: f.partition,
                    start_ticks: at,
                    end_ticks: end,
                    start: cycles(at)?,
                    end: cycles(end)?,
                });
                at = end;
            }
            if *length_ticks.get_or_insert(at) != at {
                return fail(format!(
                    "major frame {mi}: CPU {} runs {at} ticks, another CPU {} ticks",
                    cpu.cpu,
                    length_ticks.unwrap_or(0)
                ));
            }
            if let Some(slot) = cpus.get_mut(cpu.cpu as usize) {
                *slot = frames;
            }
        }
        let length_ticks = length_ticks.unwrap_or(0);
        major_frames.push(MajorOut {
            length_ticks,
            length: cycles(length_ticks)?,
            cpus,
        });
    }
    Ok(Schedule {
        tick_rate: sched.tick_rate,
        partitions,
        groups,
        major_frames,
    })
}
