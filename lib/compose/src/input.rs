//! What the composer consumes: a resolved, validated system, in the
//! composer's own terms.
//!
//! The policy crate owns parsing, name resolution and validation; this module
//! is the narrow waist between the two. Every reference is already an index
//! into a vector here, every optional value (virtual address, event id,
//! vector) is already assigned, and every subject's ELF is already read. The
//! builders only ever see this shape, which keeps them pure and lets tests and
//! benchmarks construct systems directly without XML.
//!
//! The policy's own enums (caching, event mode, kernel action, fault
//! action) are used as they are, re-exported here; this module adds no
//! second definition of them.
//!
//! Collections keep policy (document) order: the composer's allocation order
//! and every output depend on it, so the same policy gives the same bytes.

use septum_abi::{PhysAddr, VirtAddr};
use septum_kerncore::lifecycle::RestartPolicy;
pub use septum_policy::model::{Caching, EventMode, KernelAction, OnFault, Profile};

use crate::elf::SubjectImage;

/// The whole system to compose.
#[derive(Clone, Debug)]
pub struct SystemInput {
    /// System name (diagnostics, report).
    pub name: String,
    /// Hardware facts.
    pub hardware: HardwareInput,
    /// Index into `hardware.devices` of the kernel's debug console.
    pub debug_console: usize,
    /// The VM subject that receives console input (`<kernel
    /// consoleInput>`), if any.
    pub console_input: Option<septum_abi::SubjectId>,
    /// `<memory>` regions.
    pub regions: Vec<RegionInput>,
    /// Global events.
    pub events: Vec<EventInput>,
    /// Channels.
    pub channels: Vec<ChannelInput>,
    /// Subjects; the index is the [`septum_abi::SubjectId`].
    pub subjects: Vec<SubjectInput>,
    /// The scheduling plan.
    pub scheduling: SchedulingInput,
    /// VT-d: IOMMUs, device domains, owned interrupts ([`crate::vtd`]).
    pub vtd: crate::vtd::VtdInput,
    /// The image's policy hash, carried by its crash-audit records
    /// ([`crate::crash_audit::policy_hash`] of the policy's source files);
    /// 0 when the sources are not known.
    pub policy_hash: u64,
}

/// Hardware facts the composer needs.
#[derive(Clone, Debug)]
pub struct HardwareInput {
    /// Processor speed (= TSC rate) in kHz.
    pub speed_khz: u64,
    /// Number of CPU cores in the machine.
    pub cpu_cores: u32,
    /// Local APIC id of each logical CPU (`<cpu apicId>` in order).
    pub apic_ids: Vec<u32>,
    /// Physical memory blocks.
    pub memory_blocks: Vec<MemoryBlockInput>,
    /// Devices.
    pub devices: Vec<DeviceInput>,
    /// The I/O APIC (the first device with capability `ioapic`), if any.
    pub ioapic: Option<IoApicInput>,
}

/// The I/O APIC the kernel routes device IRQs through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoApicInput {
    /// Its device name.
    pub name: String,
    /// Physical address of its registers (its first `<memory>`).
    pub address: PhysAddr,
    /// Redirection entries (capability `max_redirection_entry` + 1; 24 if
    /// not given).
    pub entries: u32,
}

/// A block of physical memory.
#[derive(Clone, Debug)]
pub struct MemoryBlockInput {
    /// Name.
    pub name: String,
    /// First byte.
    pub start: PhysAddr,
    /// Size in bytes.
    pub size: u64,
    /// Whether the composer may place regions in it.
    pub allocatable: bool,
}

/// A hardware device.
#[derive(Clone, Debug)]
pub struct DeviceInput {
    /// Name.
    pub name: String,
    /// I/O port ranges.
    pub io_ports: Vec<IoPortRange>,
    /// PCI bus/device/function (`<pci>`), for a PCI device.
    pub pci: Option<septum_kerncore::vtd::SourceId>,
    /// Its device memory (`<memory>`): start and size, in document order.
    pub memory: Vec<(septum_abi::PhysAddr, u64)>,
}

/// An inclusive range of I/O ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoPortRange {
    /// Name of the range within its device.
    pub name: String,
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

/// A `<memory>` region of the policy.
#[derive(Clone, Debug)]
pub struct RegionInput {
    /// Name.
    pub name: String,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// Memory type.
    pub caching: Caching,
    /// Fixed placement, if the policy gives one.
    pub physical: Option<PhysAddr>,
    /// Fill byte for the bytes the content does not cover.
    pub fill: u8,
    /// Initial content (from a file), placed at offset 0.
    pub content: Vec<u8>,
}

/// A global event.
#[derive(Clone, Debug)]
pub struct EventInput {
    /// Name.
    pub name: String,
    /// Mode.
    pub mode: EventMode,
    /// Action of a kernel event.
    pub action: Option<KernelAction>,
}

/// A channel.
#[derive(Clone, Debug)]
pub struct ChannelInput {
    /// Name.
    pub name: String,
    /// Size of the whole region (header and ring), a multiple of 4 KiB.
    pub size: u64,
    /// Element size in bytes.
    pub element_size: u64,
    /// Protocol id.
    pub protocol: u64,
    /// Mode of the channel's notification event, if it has one.
    pub has_event: Option<EventMode>,
}

/// A subject.
#[derive(Clone, Debug)]
pub struct SubjectInput {
    /// Name.
    pub name: String,
    /// What kind of program it is; decides its VMX controls and initial
    /// state ([`crate::profile`]).
    pub profile: Profile,
    /// ELF file name (in the binaries directory).
    pub binary: String,
    /// The subject's program, already read.
    pub image: SubjectImage,
    /// Functions and source lines of the program, for resolving fault
    /// addresses (empty if the file has no symbols).
    pub symbols: crate::symbols::SymbolMap,
    /// CPU it runs on.
    pub cpu: u32,
    /// Fault action.
    pub on_fault: OnFault,
    /// Restart limit and fallback (used with `OnFault::RestartSubject`).
    pub restart: RestartPolicy,
    /// Whether the policy left `onFault` out (the default applies; the
    /// report says so).
    pub default_fault_action: bool,
    /// Whether a minor frame that ends while the subject runs is reported
    /// as a missed deadline (`minorFrameDeadline`).
    pub minor_frame_deadline: bool,
    /// Stack size in bytes (a multiple of 4 KiB).
    pub stack_size: u64,
    /// Memory maps.
    pub maps: Vec<MapInput>,
    /// Device grants.
    pub devices: Vec<DeviceGrantInput>,
    /// Source events.
    pub source_events: Vec<SourceEventInput>,
    /// Target events.
    pub target_events: Vec<TargetEventInput>,
    /// Channel ends.
    pub channels: Vec<ChannelEndInput>,
    /// Its monitor (with `onFault="monitor"`).
    pub monitor: Option<MonitorInput>,
    /// Its timed event (`<timedEvent>`).
    pub timed_event: Option<TimedEventInput>,
    /// The crash-audit region mapped read-only (`<crashAudit>`).
    pub crash_audit: Option<CrashAuditGrantInput>,
}

/// A subject's `<crashAudit>`: the crash-audit region, read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrashAuditGrantInput {
    /// Resource name on the info page.
    pub logical: String,
    /// Virtual (= guest-physical) address.
    pub virtual_address: VirtAddr,
}

/// A subject's `<timedEvent>`.
#[derive(Clone, Copy, Debug)]
pub struct TimedEventInput {
    /// Index into [`SystemInput::regions`] of the 4 KiB timed-event page.
    pub page: usize,
    /// The subject's target event number the kernel marks pending.
    pub event: u8,
}

/// A subject's `<monitor>`.
#[derive(Clone, Debug)]
pub struct MonitorInput {
    /// Index into [`SystemInput::events`] of the `switch` event whose
    /// target is the monitor.
    pub event: usize,
    /// Index into [`SystemInput::regions`] of the 4 KiB state region.
    pub state: usize,
    /// The chosen exits' basic exit reasons.
    pub exits: septum_kerncore::spec::ExitSet,
    /// The subject's `<virtioConsole>`, emulated by this monitor.
    pub virtio_console: Option<VirtioConsoleInput>,
}

/// A `vm` subject's `<virtioConsole>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioConsoleInput {
    /// First port of its I/O BAR.
    pub port: u16,
    /// Its master-PIC interrupt line.
    pub irq: u8,
    /// The monitor's virtual address of the VM's guest-physical 0.
    pub guest_memory: u64,
}

/// A mapping of a `<memory>` region into a subject.
#[derive(Clone, Debug)]
pub struct MapInput {
    /// Logical name.
    pub logical: String,
    /// Index into [`SystemInput::regions`].
    pub region: usize,
    /// Virtual (= guest-physical) address.
    pub virtual_address: VirtAddr,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

/// A device grant.
#[derive(Clone, Debug)]
pub struct DeviceGrantInput {
    /// Logical name.
    pub logical: String,
    /// Index into [`HardwareInput::devices`].
    pub device: usize,
    /// Granted I/O port ranges, each with the logical name the subject sees.
    pub io_ports: Vec<(String, IoPortRange)>,
    /// IRQ lines granted by name (`<irq>` children; a whole-device grant
    /// routes none: its lines stay masked).
    pub irqs: Vec<IrqGrantInput>,
    /// Device memory granted by name (`<memory>` children; a whole-device
    /// grant maps none).
    pub memory: Vec<DeviceMemoryGrantInput>,
}

/// Device memory (MMIO) granted to a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceMemoryGrantInput {
    /// Logical name the subject sees.
    pub logical: String,
    /// First byte (page aligned; the policy checks it).
    pub physical: PhysAddr,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
    /// The device memory's type (the hardware description's `caching`).
    pub caching: Caching,
    /// Virtual (= guest-physical) address in the subject.
    pub virtual_address: VirtAddr,
    /// Writable.
    pub writable: bool,
    /// Executable.
    pub executable: bool,
}

/// An IRQ line granted to a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrqGrantInput {
    /// Logical name the subject sees.
    pub logical: String,
    /// The line (GSI) number.
    pub line: u32,
    /// Vector injected into the subject (32..=255).
    pub vector: u8,
    /// The IRQ numbers of the granted `<irq>`'s `<msi>` children in
    /// document order (`None`: no `number`); routed as MSIs of the device
    /// (`crate::msi`), message `k` injected at `vector + k`.
    pub msis: Vec<Option<u32>>,
}

/// A source event of a subject.
#[derive(Clone, Debug)]
pub struct SourceEventInput {
    /// Event number (0..63).
    pub id: u8,
    /// Logical name.
    pub logical: String,
    /// Index into [`SystemInput::events`].
    pub event: usize,
}

/// A target event of a subject.
#[derive(Clone, Debug)]
pub struct TargetEventInput {
    /// Event number (0..63).
    pub id: u8,
    /// Logical name.
    pub logical: String,
    /// Index into [`SystemInput::events`].
    pub event: usize,
    /// Interrupt vector injected on delivery, if any.
    pub vector: Option<u8>,
    /// Delivering the event restarts the subject (`<reset/>`).
    pub reset: bool,
}

/// One end of a channel in a subject.
#[derive(Clone, Debug)]
pub struct ChannelEndInput {
    /// Logical name.
    pub logical: String,
    /// Index into [`SystemInput::channels`].
    pub channel: usize,
    /// Writer (else reader).
    pub writer: bool,
    /// Virtual (= guest-physical) address.
    pub virtual_address: VirtAddr,
    /// Writer: the source event it raises; reader: the target event it
    /// receives.
    pub event: Option<u8>,
    /// Reader: the vector of the channel's notification (shown on the
    /// info page).
    pub vector: Option<u8>,
    /// Reader: the policy wrote `vector`, so the channel's event injects
    /// it ([`crate::interrupts`]); an auto-assigned vector is only shown.
    pub injects: bool,
}

/// The scheduling plan.
#[derive(Clone, Debug)]
pub struct SchedulingInput {
    /// Ticks per second.
    pub tick_rate: u64,
    /// Partitions.
    pub partitions: Vec<PartitionInput>,
    /// Major frames; each lists per-CPU minor frame sequences.
    pub major_frames: Vec<Vec<CpuFramesInput>>,
}

/// A partition.
#[derive(Clone, Debug)]
pub struct PartitionInput {
    /// Name.
    pub name: String,
    /// CPU.
    pub cpu: u32,
    /// Groups; each a list of subject indices, the first active at boot.
    pub groups: Vec<Vec<usize>>,
}

/// Minor frames of one CPU in one major frame.
#[derive(Clone, Debug)]
pub struct CpuFramesInput {
    /// CPU number.
    pub cpu: u32,
    /// Minor frames in order.
    pub frames: Vec<MinorFrameInput>,
}

/// One minor frame.
#[derive(Clone, Debug)]
pub struct MinorFrameInput {
    /// Index into [`SchedulingInput::partitions`].
    pub partition: usize,
    /// Length in ticks.
    pub ticks: u64,
}
