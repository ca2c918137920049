//! The composed system: placed regions, composed subjects and the plan.
//!
//! These types are what the composition steps produce
//! ([`crate::pipeline::compose`]) and what every later consumer reads: the
//! spec writer ([`crate::specgen`]), the report, the output files, the pack
//! step and the layer check. References between them are typed indices
//! ([`RegionIndex`] into [`Composition::regions`], [`SubjectId`] into
//! [`Composition::subjects`], the kernel's `PartitionId` and `GroupId` into
//! the [`Schedule`](crate::plan::Schedule)), never bare positions, and a
//! region's owner is a field, not part of its name.

use std::ops::{Index, IndexMut};

use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, VirtAddr};
use septum_kerncore::lifecycle::RestartImage;
use septum_kerncore::spec::{self, FaultAction, GuestState, Owned, SourceEvent, VmxControls};

use crate::alloc::KERNEL_WINDOWS;
use crate::crash_audit::{self, CrashAudit};
use crate::info::Resource;
use crate::input::{Caching, EventMode};
use crate::plan::Schedule;

/// Index into [`Composition::regions`] (allocation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionIndex(pub usize);

impl Index<RegionIndex> for Vec<Region> {
    type Output = Region;
    fn index(&self, index: RegionIndex) -> &Region {
        &self[index.0]
    }
}

impl IndexMut<RegionIndex> for Vec<Region> {
    fn index_mut(&mut self, index: RegionIndex) -> &mut Region {
        &mut self[index.0]
    }
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
    /// A VM's APIC-access page: its EPT maps guest-physical 0xFEE0_0000
    /// there and the CPU virtualises every access to it (the virtual-APIC
    /// page it reads instead is in the kernel's per-VM state).
    ApicAccess,
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
    /// The pristine copy of a restartable subject's writable region
    /// (mapped by the kernel only, read-only; see [`crate::pristine`]).
    Pristine,
    /// VT-d tables: root and context tables, a domain's second-level
    /// tables, the interrupt remapping table.
    VtdTables,
}

/// Whom a region belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionOwner {
    /// The kernel (VMXON regions, its page tables).
    Kernel,
    /// One subject: its VMCS, bitmaps, info page, stack, program, page
    /// tables and EPT. Nobody else may reach them.
    Subject(SubjectId),
    /// The policy: a `<memory>` region or a channel, shared by grants.
    Policy,
}

/// A placed physical region and its initial bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// Name: `SUBJECT|what` and `kernel|what` for the regions the composer
    /// adds, the policy name for `<memory>` regions and channels (written
    /// by [`crate::placement::RegionRequest`], for reports and files only).
    pub name: String,
    /// Whom it belongs to.
    pub owner: RegionOwner,
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
    /// A VM's APIC-access page (EPT only, at guest-physical 0xFEE0_0000).
    ApicAccess,
}

impl MappingKind {
    /// How error messages name it.
    pub const fn label(self) -> &'static str {
        match self {
            MappingKind::Program => "ELF segment",
            MappingKind::InfoPage => "info page",
            MappingKind::Stack => "stack",
            MappingKind::Memory => "memory",
            MappingKind::ChannelWriter | MappingKind::ChannelReader => "channel",
            MappingKind::PageTables => "page tables",
            MappingKind::ApicAccess => "APIC page",
        }
    }
}

/// One mapping of a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Logical name (or the segment/page kind for implicit mappings).
    pub name: String,
    /// The region it shows.
    pub region: RegionIndex,
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

/// An inclusive range of I/O ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

/// A device granted to a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceGrant {
    /// Logical name in the subject.
    pub logical: String,
    /// Hardware device name.
    pub device: String,
    /// Granted I/O port ranges.
    pub ports: Vec<PortRange>,
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
    /// A VM's APIC-access page.
    pub apic_access: Option<PhysAddr>,
    /// VMX controls, as the subject's profile chose them.
    pub controls: VmxControls,
    /// Initial guest state (entry point, stack, info page pointer, CR3 =
    /// its page tables), as the subject's profile chose it.
    pub guest: GuestState,
    /// What the kernel does on an unrouted exit.
    pub fault_action: FaultAction,
    /// For a monitored subject, the policy name of the `switch` event
    /// that hands its traps to its monitor (for the report).
    pub monitor_event: Option<String>,
    /// Whether `fault_action` is the default because the policy gave none
    /// (the report states it and warns).
    pub default_fault_action: bool,
    /// Report a minor frame that ends while the subject runs.
    pub minor_frame_deadline: bool,
    /// Its timed event: page address and target event (`crate::timed`).
    pub timed_event: Option<septum_kerncore::spec::TimedEventSpec>,
    /// Every mapping (virtual and EPT-only).
    pub mappings: Vec<Mapping>,
    /// Source events by number.
    pub source_events: Vec<SourceEventOut>,
    /// Info page records.
    pub resources: Vec<Resource>,
    /// Devices granted.
    pub devices: Vec<DeviceGrant>,
}

/// Who owns a hardware device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceOwner {
    /// The kernel's debug console.
    Kernel,
    /// A subject, under a logical name.
    Subject {
        /// Subject name.
        subject: String,
        /// The grant's logical name.
        logical: String,
    },
    /// Nobody.
    Nobody,
}

/// A hardware device and one of its owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceOwnership {
    /// Device name.
    pub device: String,
    /// Owner.
    pub owner: DeviceOwner,
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
    /// The VM subject that receives console input, if any.
    pub console_input: Option<SubjectId>,
    /// TSC rate in kHz.
    pub tsc_khz: u64,
    /// CPUs the plan uses.
    pub cpu_count: u32,
    /// VMXON region per CPU.
    pub vmxon: Vec<PhysAddr>,
    /// Local APIC id per CPU of the plan (from the hardware description).
    pub apic_ids: Vec<u32>,
    /// Every placed region, in allocation order.
    pub regions: Vec<Region>,
    /// Subjects, indexed by [`SubjectId`].
    pub subjects: Vec<SubjectOut>,
    /// Plan.
    pub schedule: Schedule,
    /// Every hardware device in description order with each of its owners
    /// (one entry per owner; one [`DeviceOwner::Nobody`] entry for a device
    /// nobody owns).
    pub device_owners: Vec<DeviceOwnership>,
    /// The crash-audit region. Not in [`Composition::regions`]: `septum
    /// pack` must neither load nor zero it (see [`crate::crash_audit`]).
    pub crash_audit: CrashAudit,
    /// What a restart re-initialises, per restartable subject
    /// ([`crate::pristine`]).
    pub restart_images: Vec<RestartImage<Owned>>,
    /// Device IRQ routes (the kernel's `INTERRUPTS`).
    pub interrupts: crate::interrupts::Interrupts,
    /// The VT-d tables and units ([`crate::vtd`]).
    pub vtd: septum_kerncore::vtd::VtdSpec<septum_kerncore::spec::Owned>,
    /// PCI functions owned by native subjects (the kernel's `PCI_CONFIG`,
    /// [`crate::pcicfg`]).
    pub pci_grants: Vec<septum_kerncore::pcicfg::PciGrant>,
}

impl Composition {
    /// Whether the kernel built from this composition takes interrupts in
    /// root mode (the kernel's `interrupts::TAKES`: a routed line or MSI,
    /// an `ipi` event, an IOMMU), which gives every frame the lead
    /// (`septum_abi::timing::Boundary::has_lead`).
    pub fn takes_interrupts(&self) -> bool {
        !self.interrupts.routes.is_empty()
            || !self.interrupts.msis.is_empty()
            || self
                .subjects
                .iter()
                .any(|s| crate::events::ipi_mask(&s.source_events) != 0)
            || !self.vtd.iommus.is_empty()
    }

    /// The whole entry pad of minor frame `frame`: its base pad, and the
    /// lead if the frame's partition has a VM or the kernel takes
    /// interrupts (the time after the frame's start at which the kernel
    /// enters its subject).
    pub fn entry_pad(&self, frame: &crate::plan::MinorOut) -> septum_abi::TscCycles {
        septum_abi::timing::entry_pad(frame.pad, frame.lead || self.takes_interrupts())
    }

    /// Every region the image occupies: the kernel windows, then every
    /// composed region and the crash-audit region in address order (the
    /// kernel checks each lies in RAM).
    pub fn image_regions(&self) -> Vec<spec::ImageRegion<Owned>> {
        let mut out: Vec<_> = KERNEL_WINDOWS
            .iter()
            .map(|(name, w)| spec::ImageRegion {
                name: (*name).into(),
                start: w.start,
                size: w.size,
            })
            .collect();
        let mut composed: Vec<spec::ImageRegion<Owned>> = self
            .regions
            .iter()
            .map(|r| spec::ImageRegion {
                name: r.name.clone(),
                start: r.start,
                size: r.size,
            })
            .collect();
        composed.push(spec::ImageRegion {
            name: crash_audit::NAME.into(),
            start: self.crash_audit.start,
            size: self.crash_audit.size,
        });
        composed.sort_by_key(|r| r.start);
        out.extend(composed);
        out
    }

    /// Subject `id`.
    pub fn subject(&self, id: SubjectId) -> &SubjectOut {
        &self.subjects[id.index()]
    }
}
