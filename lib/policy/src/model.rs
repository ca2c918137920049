//! The parsed and resolved system policy.
//!
//! This is the contract between the loader and its two clients, the
//! validation rules and the composer. Its shape follows the XML closely so a
//! rule can point at exactly what the integrator wrote:
//!
//! - every name, number and reference keeps its [`Span`] ([`Spanned`]); an
//!   attribute left out that has a default gets the default with the span of
//!   its element's start tag;
//! - collections are in document order (includes spliced in place), so
//!   everything derived from the model is deterministic;
//! - references are resolved to typed indices ([`Ref`]); an unresolved one
//!   keeps `target: None` with its name and span, and the loader does NOT
//!   report it: that is the rules' job (so all reference errors come from one
//!   place with one wording). Duplicate definitions resolve to the first one;
//!   the rules report duplicates too;
//! - values the integrator may leave out and the loader assigns (virtual
//!   addresses, event ids, vectors, partition CPUs) are [`Assigned`], which
//!   records whether the value was written or assigned so reports can say
//!   "auto". Assignment never picks a value written explicitly elsewhere in
//!   the same space; range and uniqueness of explicit values are checked by
//!   the rules.
//!
//! The model is only meaningful when loading reported no error: after a
//! parse error, missing required values hold placeholders (empty names,
//! zeros) and rules are not run.

use std::path::PathBuf;

use septum_abi::units::{DmaAddr, PhysAddr, VirtAddr};

use crate::source::{FileId, Span};

/// A value and where it was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// The attribute value (or element) it came from.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Pairs `value` with `span`.
    pub const fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

impl Spanned<String> {
    /// The string value.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// A value that was either written in the policy or assigned by the loader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Assigned<T> {
    /// The value (written or assigned).
    pub value: T,
    /// Where it was written, or for an assigned value the element it was
    /// assigned for.
    pub span: Span,
    /// `true` if the loader assigned it ("auto" in reports).
    pub auto: bool,
}

impl<T> Assigned<T> {
    /// An explicitly written value.
    pub const fn explicit(value: T, span: Span) -> Self {
        Self {
            value,
            span,
            auto: false,
        }
    }

    /// A value assigned by the loader for the element at `span`.
    pub const fn auto(value: T, span: Span) -> Self {
        Self {
            value,
            span,
            auto: true,
        }
    }
}

/// A reference by name to something defined elsewhere in the policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ref<I> {
    /// The name as written, with its span.
    pub name: Spanned<String>,
    /// What it resolved to; `None` if nothing of that kind has that name.
    pub target: Option<I>,
}

impl<I: Copy> Ref<I> {
    /// The resolved index, if any.
    pub fn get(&self) -> Option<I> {
        self.target
    }
}

macro_rules! index_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// The index as `usize`.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

index_type!(
    /// Index into [`Policy::subjects`].
    SubjectIdx
);
index_type!(
    /// Index into [`Policy::regions`].
    RegionIdx
);
index_type!(
    /// Index into [`Policy::channels`].
    ChannelIdx
);
index_type!(
    /// Index into [`Policy::events`].
    EventIdx
);
index_type!(
    /// Index into [`Hardware::devices`].
    DeviceIdx
);
index_type!(
    /// Index into [`Policy::device_domains`].
    DomainIdx
);
index_type!(
    /// Index into [`Scheduling::partitions`].
    PartitionIdx
);
index_type!(
    /// Index into a device's [`Device::io_ports`].
    IoPortIdx
);
index_type!(
    /// Index into a device's [`Device::irqs`].
    IrqIdx
);
index_type!(
    /// Index into a device's [`Device::memory`].
    DeviceMemoryIdx
);

/// A subject-local event number (source ids and target ids are separate
/// spaces per subject; valid numbers are 0..=63, checked by the rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u8);

/// An interrupt vector injected into a subject (valid: 32..=255, checked by
/// the rules; auto-assignment starts at 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vector(pub u8);

/// A logical CPU number (index into [`Processor::cpus`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(pub u32);

/// A duration in scheduler ticks ([`Scheduling::tick_rate`] per second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticks(pub u64);

/// Memory type of a region or device memory (the anchor's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Caching {
    /// Uncacheable.
    Uc,
    /// Write-combining.
    Wc,
    /// Write-through.
    Wt,
    /// Write-protected.
    Wp,
    /// Write-back.
    Wb,
}

impl Caching {
    /// The spelling in the policy.
    pub const fn as_str(self) -> &'static str {
        match self {
            Caching::Uc => "UC",
            Caching::Wc => "WC",
            Caching::Wt => "WT",
            Caching::Wp => "WP",
            Caching::Wb => "WB",
        }
    }
}

/// How an event is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventMode {
    /// Mark pending at the target; it sees it when it next runs.
    Async,
    /// Like async, and interrupt the target's CPU if it is another one.
    Ipi,
    /// Mark pending and hand the CPU to the target (same scheduling group).
    Switch,
    /// Mark pending on the sender itself (`self` in the policy).
    SelfEvent,
    /// Ask the kernel for an action; no target subject.
    Kernel,
}

impl EventMode {
    /// The spelling in the policy.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventMode::Async => "async",
            EventMode::Ipi => "ipi",
            EventMode::Switch => "switch",
            EventMode::SelfEvent => "self",
            EventMode::Kernel => "kernel",
        }
    }
}

/// What a `kernel`-mode event asks for: the kernel's own action type, so
/// the policy's spellings and the kernel's actions are one list
/// (`septum_kerncore::spec`; each action's spelling is its `policy_name`).
pub use septum_kerncore::spec::KernelAction;

/// What kind of program a subject is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// A native 64-bit program built with the SDK.
    Native,
    /// A virtual machine booting an unmodified kernel; only with a
    /// `<linux>` boot (the loader rejects any other `vm` subject).
    Vm,
}

/// Restarts a subject with `onFault="restartSubject"` gets when the policy
/// gives no `restartLimit`.
pub const DEFAULT_RESTART_LIMIT: u64 = 3;

/// What the kernel does when a subject faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OnFault {
    /// Stop the whole system (default).
    StopSystem,
    /// Stop only the faulting subject.
    StopSubject,
    /// Restart only the faulting subject, up to its restart limit; then
    /// its `onRestartLimit` action.
    RestartSubject,
    /// Hand the exits its `<monitor>` chooses to a monitor subject.
    Monitor,
}

/// The kind of a subject's source event group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceGroupKind {
    /// Events the subject raises with the `vmcall` hypercall.
    Vmcall,
}

/// The whole policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The file the policy was loaded from (file 0).
    pub root_file: FileId,
    /// The `<system>` element's start tag.
    pub span: Span,
    /// `name` attribute, or the root file's stem (span: the `<system>` tag).
    pub name: Spanned<String>,
    /// The machine.
    pub hardware: Hardware,
    /// Kernel settings.
    pub kernel: Kernel,
    /// Memory regions, `<memory><memory .../></memory>`.
    pub regions: Vec<Region>,
    /// Events.
    pub events: Vec<Event>,
    /// Channels.
    pub channels: Vec<Channel>,
    /// Subjects.
    pub subjects: Vec<Subject>,
    /// The scheduling plan.
    pub scheduling: Scheduling,
    /// `<flows><deny>`: flows the integrator states must not exist.
    pub flow_denials: Vec<FlowDeny>,
    /// `<deviceDomains><domain>`: what each group of devices may reach by
    /// DMA (the VT-d tables).
    pub device_domains: Vec<DeviceDomain>,
}

impl Policy {
    /// Subject `idx`.
    pub fn subject(&self, idx: SubjectIdx) -> &Subject {
        &self.subjects[idx.index()]
    }
    /// Region `idx`.
    pub fn region(&self, idx: RegionIdx) -> &Region {
        &self.regions[idx.index()]
    }
    /// Channel `idx`.
    pub fn channel(&self, idx: ChannelIdx) -> &Channel {
        &self.channels[idx.index()]
    }
    /// Event `idx`.
    pub fn event(&self, idx: EventIdx) -> &Event {
        &self.events[idx.index()]
    }
    /// Device `idx`.
    pub fn device(&self, idx: DeviceIdx) -> &Device {
        &self.hardware.devices[idx.index()]
    }
    /// Partition `idx`.
    pub fn partition(&self, idx: PartitionIdx) -> &Partition {
        &self.scheduling.partitions[idx.index()]
    }
}

// ---------------------------------------------------------------- hardware

/// The machine: from `<hardware href>` or inline `<hardware>`, in the
/// anchor's format. Elements of that format the model does not need
/// (cpuid, msr, identification, ...) are accepted and not kept.
#[derive(Clone, Debug, Default)]
pub struct Hardware {
    /// The `<hardware>` element (in the hardware file when included by href).
    pub span: Span,
    /// The `href` attribute value, when the hardware is in its own file.
    pub href: Option<Spanned<String>>,
    /// Processor.
    pub processor: Processor,
    /// Physical memory blocks (names need not be unique in this format).
    pub memory_blocks: Vec<MemoryBlock>,
    /// Reserved memory regions (RMRRs).
    pub reserved_memory: Vec<ReservedMemory>,
    /// `<devices pciConfigAddress>`.
    pub pci_config_address: Option<Spanned<PhysAddr>>,
    /// `<devices pciConfigSize>`.
    pub pci_config_size: Option<Spanned<u64>>,
    /// Devices.
    pub devices: Vec<Device>,
}

/// `<processor>`.
#[derive(Clone, Debug, Default)]
pub struct Processor {
    /// The element.
    pub span: Span,
    /// `cpuCores`.
    pub cpu_cores: Spanned<u32>,
    /// `speed`: TSC rate in kHz.
    pub speed_khz: Spanned<u64>,
    /// `vmxTimerRate`: the VMX preemption timer counts once every
    /// 2^rate TSC cycles.
    pub vmx_timer_rate: Spanned<u8>,
    /// `<cpu>` children in order; the position is the logical CPU number.
    pub cpus: Vec<Cpu>,
}

/// `<cpu apicId>`.
#[derive(Clone, Debug)]
pub struct Cpu {
    /// The element.
    pub span: Span,
    /// Local APIC id.
    pub apic_id: Spanned<u32>,
}

/// `<memoryBlock>`.
#[derive(Clone, Debug)]
pub struct MemoryBlock {
    /// The element.
    pub span: Span,
    /// Name (free text in this format, e.g. `System RAM`).
    pub name: Spanned<String>,
    /// Start.
    pub physical_address: Spanned<PhysAddr>,
    /// Size in bytes.
    pub size: Spanned<u64>,
    /// Whether the composer may allocate from it.
    pub allocatable: Spanned<bool>,
}

/// `<reservedMemory name physicalAddress size>` under `<memory>`.
#[derive(Clone, Debug)]
pub struct ReservedMemory {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Start.
    pub physical_address: Spanned<PhysAddr>,
    /// Size in bytes.
    pub size: Spanned<u64>,
}

/// `<device>`.
#[derive(Clone, Debug)]
pub struct Device {
    /// The element.
    pub span: Span,
    /// Name (what subjects' `physical` attributes refer to).
    pub name: Spanned<String>,
    /// `<description>` text.
    pub description: Option<Spanned<String>>,
    /// `<pci>`.
    pub pci: Option<Pci>,
    /// `<irq>` children.
    pub irqs: Vec<Irq>,
    /// `<memory>` children (MMIO).
    pub memory: Vec<DeviceMemory>,
    /// `<ioPort>` children.
    pub io_ports: Vec<IoPortRange>,
    /// `<capabilities><capability>` children.
    pub capabilities: Vec<Capability>,
    /// `<reservedMemory ref>` children (names of RMRRs the device uses).
    pub reserved_memory_refs: Vec<Spanned<String>>,
}

impl Device {
    /// The capability called `name`, if present.
    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.iter().find(|c| c.name.value == name)
    }
}

/// `<pci bus device function>`.
#[derive(Clone, Debug)]
pub struct Pci {
    /// The element.
    pub span: Span,
    /// Bus.
    pub bus: Spanned<u8>,
    /// Device (0..=31).
    pub device: Spanned<u8>,
    /// Function (0..=7).
    pub function: Spanned<u8>,
    /// `<iommuGroup id>`.
    pub iommu_group: Option<Spanned<u32>>,
}

/// `<irq name number>`.
#[derive(Clone, Debug)]
pub struct Irq {
    /// The element.
    pub span: Span,
    /// Name within the device.
    pub name: Spanned<String>,
    /// Legacy IRQ (GSI) number.
    pub number: Spanned<u32>,
    /// `<msi name number>` children.
    pub msis: Vec<Msi>,
}

/// `<msi name number>` of a device's IRQ: one message-signalled interrupt.
#[derive(Clone, Debug)]
pub struct Msi {
    /// The element.
    pub span: Span,
    /// Name within the IRQ.
    pub name: Spanned<String>,
    /// `number`: the IRQ number the message raises (optional; the anchor's
    /// generated descriptions leave it out). A device's MSIs raise
    /// consecutive numbers in the MSI range, which the rules check.
    pub number: Option<Spanned<u32>>,
}

/// `<memory name physicalAddress size caching>` of a device.
#[derive(Clone, Debug)]
pub struct DeviceMemory {
    /// The element.
    pub span: Span,
    /// Name within the device.
    pub name: Spanned<String>,
    /// Start.
    pub physical_address: Spanned<PhysAddr>,
    /// Size in bytes.
    pub size: Spanned<u64>,
    /// Memory type.
    pub caching: Spanned<Caching>,
}

/// `<ioPort name start end>` (inclusive range).
#[derive(Clone, Debug)]
pub struct IoPortRange {
    /// The element.
    pub span: Span,
    /// Name within the device.
    pub name: Spanned<String>,
    /// First port.
    pub start: Spanned<u16>,
    /// Last port (inclusive).
    pub end: Spanned<u16>,
}

/// `<capability name>value</capability>`.
#[derive(Clone, Debug)]
pub struct Capability {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Text content, trimmed, if any (often a number in this format).
    pub value: Option<Spanned<String>>,
}

// ------------------------------------------------------------------ system

/// `<kernel>`.
#[derive(Clone, Debug, Default)]
pub struct Kernel {
    /// The element.
    pub span: Span,
    /// `debugConsole`: the device whose first I/O port range is the kernel's
    /// UART.
    pub debug_console: Ref<DeviceIdx>,
    /// `consoleInput`: the VM subject that receives what is typed on the
    /// debug console, if any (one at most: the attribute names one).
    pub console_input: Option<Ref<SubjectIdx>>,
}

impl<I> Default for Ref<I> {
    fn default() -> Self {
        Self {
            name: Spanned::new(String::new(), Span::default()),
            target: None,
        }
    }
}

/// A memory region, `<memory>` inside the top-level `<memory>`.
#[derive(Clone, Debug)]
pub struct Region {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Size in bytes.
    pub size: Spanned<u64>,
    /// Memory type (required).
    pub caching: Spanned<Caching>,
    /// Fixed placement, if given; otherwise the composer allocates.
    pub physical_address: Option<Spanned<PhysAddr>>,
    /// Byte every byte of the region starts as (default 0).
    pub fill: Spanned<u8>,
    /// Initial content from a file.
    pub file: Option<RegionFile>,
}

/// `<file href offset>` inside a region.
#[derive(Clone, Debug)]
pub struct RegionFile {
    /// The element.
    pub span: Span,
    /// `href` as written.
    pub href: Spanned<String>,
    /// `href` resolved against the directory of the file that holds it
    /// (not checked for existence by the loader).
    pub path: PathBuf,
    /// Where in the region the file's bytes go (default 0).
    pub offset: Spanned<u64>,
}

/// `<event name mode action>`.
#[derive(Clone, Debug)]
pub struct Event {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Mode.
    pub mode: Spanned<EventMode>,
    /// `action`; meaningful only for `kernel` mode (the rules check that it
    /// is present exactly then).
    pub action: Option<Spanned<KernelAction>>,
}

/// `<channel name size elementSize protocol hasEvent>`.
#[derive(Clone, Debug)]
pub struct Channel {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Bytes of the whole region (header + ring).
    pub size: Spanned<u64>,
    /// Element size (default 64).
    pub element_size: Spanned<u64>,
    /// Protocol number (default 1).
    pub protocol: Spanned<u64>,
    /// Event raised by the writer for the reader (only async, ipi or
    /// switch; the loader rejects other modes).
    pub has_event: Option<Spanned<EventMode>>,
}

/// `<subject>`.
#[derive(Clone, Debug)]
pub struct Subject {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// Profile (required).
    pub profile: Spanned<Profile>,
    /// ELF file name in the composer's binaries directory (required).
    pub binary: Spanned<String>,
    /// Logical CPU (default 0).
    pub cpu: Spanned<CpuId>,
    /// Fault policy (default stopSystem).
    pub on_fault: Spanned<OnFault>,
    /// `restartLimit`: restarts allowed with `onFault="restartSubject"`
    /// (default [`DEFAULT_RESTART_LIMIT`]; rules check 1..=65535).
    pub restart_limit: Option<Spanned<u64>>,
    /// `onRestartLimit`: the fault action after the last restart (default
    /// stopSystem; rules refuse restartSubject).
    pub on_restart_limit: Option<Spanned<OnFault>>,
    /// Stack size in bytes (default `septum_abi::layout::SUBJECT_STACK_SIZE`).
    pub stack_size: Spanned<u64>,
    /// `allowWritableExecutable` (default false): the opt-in that lets this
    /// subject's `<map>`s be writable and executable at once (for code it
    /// generates itself). Without it such a map is an error.
    pub allow_writable_executable: Spanned<bool>,
    /// `minorFrameDeadline` (default false): the subject's work in each of
    /// its minor frames must be done before the frame ends (it yields,
    /// sleeps or switches away); the kernel reports a frame that ends while
    /// it still runs as a missed deadline.
    pub minor_frame_deadline: Spanned<bool>,
    /// `<memory><map>` children.
    pub maps: Vec<Map>,
    /// `<devices><device>` children.
    pub devices: Vec<DeviceGrant>,
    /// `<events><source><group>` children.
    pub source_groups: Vec<SourceGroup>,
    /// `<events><target><event>` children.
    pub targets: Vec<TargetEvent>,
    /// `<channels>` `<reader>`/`<writer>` children, in document order.
    pub channels: Vec<ChannelEnd>,
    /// `<linux>`: the Linux boot of a `vm` subject.
    pub linux: Option<LinuxBoot>,
    /// `<monitor>`: who gets this subject's exits (with
    /// `onFault="monitor"`).
    pub monitor: Option<Monitor>,
    /// `<timedEvent>`: the subject's timed-event page and the target event
    /// the kernel marks pending when its deadline passes.
    pub timed_event: Option<TimedEvent>,
    /// `<virtioConsole>`: a `vm` subject's virtio console, emulated by its
    /// monitor.
    pub virtio_console: Option<VirtioConsole>,
    /// `<crashAudit>`: the crash-audit region mapped read-only into this
    /// subject (at most one subject in a policy).
    pub crash_audit: Option<CrashAuditGrant>,
}

/// `<crashAudit logical virtualAddress>` inside a subject (docs/policy.md,
/// "Crash-audit reader"): the kernel's crash-audit region (docs/crash.md),
/// mapped read-only, not executable and uncached at `virtualAddress`.
#[derive(Clone, Debug)]
pub struct CrashAuditGrant {
    /// The element.
    pub span: Span,
    /// Name of the resource on the subject's info page.
    pub logical: Spanned<String>,
    /// Where it appears in the subject (auto: see the module docs).
    pub virtual_address: Assigned<VirtAddr>,
}

/// `<timedEvent page event>` inside a subject (docs/policy.md, "Timed
/// events").
#[derive(Clone, Debug)]
pub struct TimedEvent {
    /// The element.
    pub span: Span,
    /// The 4 KiB `<memory>` region holding the deadline (mapped writable by
    /// this subject only).
    pub page: Ref<RegionIdx>,
    /// Logical name of one of the subject's own target events.
    pub event: Spanned<String>,
}

/// `<linux kernel initrd cmdline ramSize>` inside a `vm` subject: the
/// files (in the composer's binaries directory) and settings of a Linux
/// boot (docs/policy.md, "VM subjects").
#[derive(Clone, Debug)]
pub struct LinuxBoot {
    /// The element.
    pub span: Span,
    /// bzImage file name.
    pub kernel: Spanned<String>,
    /// Initramfs file name (optional).
    pub initrd: Option<Spanned<String>>,
    /// Kernel command line (default empty).
    pub cmdline: Spanned<String>,
    /// Bytes of RAM the guest gets from 1 MiB (its only e820 RAM entry).
    pub ram_size: Spanned<u64>,
}

/// `<virtioConsole port irq guestMemory>` inside a `vm` subject with a
/// monitor (docs/policy.md, "Virtio console"): a legacy virtio-pci console
/// whose header the kernel presents and whose registers the monitor
/// emulates.
#[derive(Clone, Debug)]
pub struct VirtioConsole {
    /// The element.
    pub span: Span,
    /// First port of its I/O BAR (32 ports, 32-port aligned).
    pub port: Spanned<u16>,
    /// Its master-PIC interrupt line.
    pub irq: Spanned<u8>,
    /// Where the monitor sees the VM's guest-physical memory: guest-physical
    /// `g` at the monitor's virtual address `guestMemory + g`.
    pub guest_memory: Spanned<u64>,
}

/// `<monitor event state exits>` inside a subject: its chosen exits go to
/// the target of `event` (a `switch` event), its state page is `state`.
#[derive(Clone, Debug)]
pub struct Monitor {
    /// The element.
    pub span: Span,
    /// The `switch` event whose target subject is the monitor.
    pub event: Ref<EventIdx>,
    /// The 4 KiB `<memory>` region that holds the subject's state page
    /// (mapped by the monitor only).
    pub state: Ref<RegionIdx>,
    /// The chosen exits, by name (`septum_kerncore::monitor::EXIT_NAMES`),
    /// each with the span of its word (the whole attribute value if the
    /// value holds an XML entity reference, whose decoded text no longer
    /// lines up with the source), with the span of the `exits` attribute.
    pub exits: Spanned<Vec<Spanned<String>>>,
}

impl Subject {
    /// Every source event of every group, in document order.
    pub fn source_events(&self) -> impl Iterator<Item = &SourceEvent> {
        self.source_groups.iter().flat_map(|g| g.events.iter())
    }

    /// The restart limit (`restartLimit`, or its default).
    pub fn restart_limit(&self) -> u64 {
        self.restart_limit
            .as_ref()
            .map_or(DEFAULT_RESTART_LIMIT, |limit| limit.value)
    }

    /// The action after the last restart (`onRestartLimit`, or stopSystem).
    pub fn restart_fallback(&self) -> OnFault {
        self.on_restart_limit
            .as_ref()
            .map_or(OnFault::StopSystem, |fallback| fallback.value)
    }

    /// Whether the policy leaves `onFault` out, so the default
    /// (stopSystem) applies: the parser gives a defaulted value the
    /// element's own span.
    pub fn relies_on_default_fault_action(&self) -> bool {
        self.on_fault.span == self.span
    }

    /// Whether a fault of this subject can stop the whole system: its
    /// `onFault` is stopSystem, or restartSubject with stopSystem after the
    /// last restart.
    pub fn fault_can_stop_system(&self) -> bool {
        match self.on_fault.value {
            OnFault::StopSystem => true,
            OnFault::StopSubject => false,
            OnFault::RestartSubject => self.restart_fallback() == OnFault::StopSystem,
            OnFault::Monitor => true,
        }
    }
}

/// `<map logical physical virtualAddress writable executable>`.
#[derive(Clone, Debug)]
pub struct Map {
    /// The element.
    pub span: Span,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The region.
    pub physical: Ref<RegionIdx>,
    /// Where it appears in the subject (auto: see the module docs).
    pub virtual_address: Assigned<VirtAddr>,
    /// Default false.
    pub writable: Spanned<bool>,
    /// Default false.
    pub executable: Spanned<bool>,
}

/// `<device logical physical>` inside a subject: without children it
/// grants the whole device; with children only those parts.
#[derive(Clone, Debug)]
pub struct DeviceGrant {
    /// The element.
    pub span: Span,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The hardware device.
    pub physical: Ref<DeviceIdx>,
    /// `<ioPort>` children.
    pub io_ports: Vec<IoPortGrant>,
    /// `<irq>` children.
    pub irqs: Vec<IrqGrant>,
    /// `<memory>` children.
    pub memory: Vec<DeviceMemoryGrant>,
    /// `acceptUnconfinedDma` (default false): the integrator accepts that
    /// this DMA-capable device can reach all of memory because the machine
    /// has no IOMMU to confine it. Without it such a grant is an error.
    pub accept_unconfined_dma: Spanned<bool>,
}

impl DeviceGrant {
    /// Whether the whole device is granted (no child elements).
    pub fn is_whole_device(&self) -> bool {
        self.io_ports.is_empty() && self.irqs.is_empty() && self.memory.is_empty()
    }
}

/// `<ioPort logical physical>` inside a device grant.
#[derive(Clone, Debug)]
pub struct IoPortGrant {
    /// The element.
    pub span: Span,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The device's port range (resolved only if the device resolved).
    pub physical: Ref<IoPortIdx>,
}

/// `<irq logical physical vector>` inside a device grant.
#[derive(Clone, Debug)]
pub struct IrqGrant {
    /// The element.
    pub span: Span,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The device's IRQ.
    pub physical: Ref<IrqIdx>,
    /// Vector injected into the subject (auto from the subject's vector
    /// space).
    pub vector: Assigned<Vector>,
}

/// `<memory logical physical virtualAddress writable executable>` inside a
/// device grant.
#[derive(Clone, Debug)]
pub struct DeviceMemoryGrant {
    /// The element.
    pub span: Span,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The device's memory.
    pub physical: Ref<DeviceMemoryIdx>,
    /// Where it appears in the subject (auto).
    pub virtual_address: Assigned<VirtAddr>,
    /// Default false.
    pub writable: Spanned<bool>,
    /// Default false.
    pub executable: Spanned<bool>,
}

/// `<group name>` of source events.
#[derive(Clone, Debug)]
pub struct SourceGroup {
    /// The element.
    pub span: Span,
    /// Kind.
    pub kind: Spanned<SourceGroupKind>,
    /// `<event>` children.
    pub events: Vec<SourceEvent>,
}

/// `<event id logical physical>` in a source group.
#[derive(Clone, Debug)]
pub struct SourceEvent {
    /// The element.
    pub span: Span,
    /// Number the subject raises it with (auto: lowest free in 0..=63 of
    /// the subject's source space, shared with channel writers' `event`).
    pub id: Assigned<EventId>,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The event.
    pub physical: Ref<EventIdx>,
}

/// `<event id logical physical>` under `<target>`.
#[derive(Clone, Debug)]
pub struct TargetEvent {
    /// The element.
    pub span: Span,
    /// Number in the subject's pending-event set (auto: lowest free in
    /// 0..=63 of the subject's target space).
    pub id: Assigned<EventId>,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The event.
    pub physical: Ref<EventIdx>,
    /// `<inject_interrupt vector>`.
    pub inject: Option<InjectInterrupt>,
    /// `<reset/>`: delivering the event restarts the subject (the anchor's
    /// reset action); the element's span.
    pub reset: Option<Span>,
}

/// `<inject_interrupt vector>`.
#[derive(Clone, Debug)]
pub struct InjectInterrupt {
    /// The element.
    pub span: Span,
    /// Vector (auto from the subject's vector space).
    pub vector: Assigned<Vector>,
}

/// Which end of a channel a subject holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelRole {
    /// Maps the channel writable; raises the channel's event.
    Writer,
    /// Maps the channel read-only; receives the channel's event.
    Reader,
}

/// `<writer>` or `<reader>` inside a subject's `<channels>`.
#[derive(Clone, Debug)]
pub struct ChannelEnd {
    /// The element.
    pub span: Span,
    /// Writer or reader.
    pub role: ChannelRole,
    /// Name inside the subject.
    pub logical: Spanned<String>,
    /// The channel.
    pub physical: Ref<ChannelIdx>,
    /// Where it appears in the subject (auto).
    pub virtual_address: Assigned<VirtAddr>,
    /// Writer only: source event id the writer raises the channel's event
    /// with. Auto-assigned (source space) when the channel has an event and
    /// none was written; `None` otherwise.
    pub event: Option<Assigned<EventId>>,
    /// Reader only: vector injected when the channel's event arrives.
    /// Auto-assigned (vector space) when the channel has an event and none
    /// was written; `None` otherwise.
    pub vector: Option<Assigned<Vector>>,
}

// -------------------------------------------------------------- scheduling

/// `<scheduling tickRate>`.
#[derive(Clone, Debug, Default)]
pub struct Scheduling {
    /// The element.
    pub span: Span,
    /// Ticks per second.
    pub tick_rate: Spanned<u64>,
    /// `<partitions><partition>`.
    pub partitions: Vec<Partition>,
    /// `<majorFrame>` children; the first runs at boot.
    pub major_frames: Vec<MajorFrame>,
}

/// `<partition name cpu>`.
#[derive(Clone, Debug)]
pub struct Partition {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// CPU: written, or derived from the plan when every minor frame of the
    /// partition is on one CPU (`auto`); `None` if not written and not
    /// derivable (the rules report it).
    pub cpu: Option<Assigned<CpuId>>,
    /// `<group>` children.
    pub groups: Vec<SchedGroup>,
}

/// `<group>` of subjects in a partition.
#[derive(Clone, Debug)]
pub struct SchedGroup {
    /// The element.
    pub span: Span,
    /// `<subject name>` children, in order (the first runs at boot).
    pub subjects: Vec<Ref<SubjectIdx>>,
}

/// `<majorFrame>`.
#[derive(Clone, Debug)]
pub struct MajorFrame {
    /// The element.
    pub span: Span,
    /// `<cpu id>` children.
    pub cpus: Vec<FrameCpu>,
}

/// `<cpu id>` inside a major frame.
#[derive(Clone, Debug)]
pub struct FrameCpu {
    /// The element.
    pub span: Span,
    /// Logical CPU.
    pub id: Spanned<CpuId>,
    /// `<minorFrame>` children in order.
    pub minor_frames: Vec<MinorFrame>,
}

/// `<minorFrame partition ticks>`.
#[derive(Clone, Debug)]
pub struct MinorFrame {
    /// The element.
    pub span: Span,
    /// The partition that runs.
    pub partition: Ref<PartitionIdx>,
    /// Length.
    pub ticks: Spanned<Ticks>,
}

// ------------------------------------------------------------------- flows

/// `<deny from to direct covert>` in `<flows>`: no information may move
/// from `from` to `to` (see `crate::flows`).
#[derive(Clone, Debug)]
pub struct FlowDeny {
    /// The element.
    pub span: Span,
    /// The subject information must not leave.
    pub from: Ref<SubjectIdx>,
    /// The subject it must not reach.
    pub to: Ref<SubjectIdx>,
    /// `direct` (default false): only a single flow from `from` to `to` is
    /// denied; otherwise any path through other subjects too.
    pub direct: Spanned<bool>,
    /// `covert` (default false): also count the schedule's covert paths
    /// (shared CPU, partition, group).
    pub covert: Spanned<bool>,
}

// ---------------------------------------------------------- device domains

/// `<domain name>` in `<deviceDomains>`: a set of devices that share one
/// DMA address space (one set of VT-d second-level tables).
#[derive(Clone, Debug)]
pub struct DeviceDomain {
    /// The element.
    pub span: Span,
    /// Name.
    pub name: Spanned<String>,
    /// `<memory><memory>` children: the regions the devices may reach.
    pub memory: Vec<DomainMap>,
    /// `<devices><device>` children.
    pub devices: Vec<DomainDevice>,
}

/// `<memory logical physical virtualAddress writable executable>` in a
/// domain: a region at an I/O virtual address of the domain.
#[derive(Clone, Debug)]
pub struct DomainMap {
    /// The element.
    pub span: Span,
    /// Name inside the domain.
    pub logical: Spanned<String>,
    /// The region.
    pub physical: Ref<RegionIdx>,
    /// Where the devices see it (required: a driver programs this address
    /// into its device).
    pub virtual_address: Spanned<DmaAddr>,
    /// Default false: devices may only read it.
    pub writable: Spanned<bool>,
    /// Default false (accepted for the anchor's format; VT-d second-level
    /// tables have an execute bit only for requests with PASID).
    pub executable: Spanned<bool>,
}

/// `<device logical physical mapReservedMemory>` in a domain.
#[derive(Clone, Debug)]
pub struct DomainDevice {
    /// The element.
    pub span: Span,
    /// Name inside the domain.
    pub logical: Spanned<String>,
    /// The hardware device (a PCI device).
    pub physical: Ref<DeviceIdx>,
    /// `mapReservedMemory` (default false): map the device's RMRRs 1:1 in
    /// the domain (firmware needs them, e.g. for USB legacy emulation).
    pub map_reserved_memory: Spanned<bool>,
}
