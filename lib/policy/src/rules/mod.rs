//! The validation rules: every check that runs on a loaded policy.
//!
//! Each rule is a named function with a one-line `///` doc saying what it
//! protects; the `rule!` macro turns the same doc text into [`Rule::doc`],
//! so the manual's rule list (generated from [`ALL`]) cannot drift from the
//! code. Rules are grouped by category in submodules. Every rule reports
//! every violation it finds, at the most precise span the model keeps, with
//! a label at the other party of a conflict and a hint where one helps.
//!
//! Rules are independent of each other and of their order. Where one
//! mistake would trip several rules (a region too large for the address
//! space is also outside RAM), the more specific rule reports it and the
//! others skip that value, so each mistake gives one diagnostic. Warnings
//! are reserved for policies that are legal but probably not what was meant.

use crate::rule::{Category, Rule};

/// Defines one rule: a documented `pub fn` and a `pub const` [`Rule`] whose
/// doc is the function's doc text.
macro_rules! rule {
    (
        $(#[doc = $doc:literal])+
        $konst:ident = $id:literal in $category:ident;
        fn $name:ident($policy:ident, $out:ident) $body:block
    ) => {
        $(#[doc = $doc])+
        pub fn $name($policy: &Policy, $out: &mut Diagnostics) $body

        #[doc = concat!("The `", $id, "` rule: see [`", stringify!($name), "`].")]
        pub const $konst: Rule = Rule {
            id: $id,
            category: Category::$category,
            doc: concat!($($doc),+).trim_ascii(),
            check: $name,
        };
    };
}

pub mod channels;
mod common;
pub mod config_ports;
pub mod crash_audit;
pub mod devices;
pub mod domains;
pub mod events;
pub mod flows;
pub mod hardware;
pub mod kernel;
pub mod lifecycle;
pub mod limits;
pub mod memory;
pub mod monitor;
pub mod names;
pub mod platform;
pub mod scheduling;
pub mod shared_lines;
pub mod subjects;
pub mod timed;
pub mod virtio;

/// Whether `rule` checks the hardware description alone (the rules
/// `septum validate --hardware` runs): the hardware and device rules (those
/// about grants stay silent without subjects) and device name uniqueness.
pub fn is_hardware_rule(rule: &Rule) -> bool {
    matches!(rule.category, Category::Hardware | Category::Devices)
        || rule.id == names::DEVICE_DUPLICATE.id
        || rule.id == names::DEVICE_RESOURCE_DUPLICATE.id
}

/// Every validation rule, in a stable order (by category, then as the
/// manual lists them). [`crate::validate`] runs them all.
pub static ALL: &[Rule] = &[
    names::REGION_DUPLICATE,
    names::EVENT_DUPLICATE,
    names::CHANNEL_DUPLICATE,
    names::SUBJECT_DUPLICATE,
    names::PARTITION_DUPLICATE,
    names::DEVICE_DUPLICATE,
    names::DEVICE_RESOURCE_DUPLICATE,
    names::REGION_CHANNEL_CLASH,
    names::CASE_ONLY,
    names::RESERVED_REGION_NAME,
    names::LOGICAL_DUPLICATE,
    names::GRANT_LOGICAL_DUPLICATE,
    names::UNKNOWN_REGION,
    names::UNKNOWN_DEVICE,
    names::UNKNOWN_DEVICE_IOPORT,
    names::UNKNOWN_DEVICE_IRQ,
    names::UNKNOWN_DEVICE_MEMORY,
    names::UNKNOWN_EVENT,
    names::UNKNOWN_CHANNEL,
    names::UNKNOWN_SUBJECT,
    names::UNKNOWN_PARTITION,
    memory::SIZE_ZERO,
    memory::SIZE_UNALIGNED,
    memory::SIZE_TOO_LARGE,
    memory::PHYSICAL_UNALIGNED,
    memory::PHYSICAL_END_OVERFLOW,
    memory::PHYSICAL_TOO_HIGH,
    memory::PHYSICAL_OVERLAP,
    memory::PHYSICAL_DEVICE_OVERLAP,
    memory::PHYSICAL_KERNEL_OVERLAP,
    memory::PHYSICAL_LOW_OVERLAP,
    memory::PHYSICAL_OUTSIDE_RAM,
    memory::DEMAND_EXCEEDS_RAM,
    memory::REGION_UNUSED,
    memory::REGION_MAPPED_TWICE,
    memory::MAP_WRITABLE_EXECUTABLE,
    memory::WRITABLE_EXECUTABLE_UNUSED,
    memory::EXECUTABLE_WRITABLE_ELSEWHERE,
    memory::SHARED_WRITABLE,
    memory::DEVICE_EXECUTABLE,
    memory::FILE_OFFSET_BEYOND,
    memory::VIRTUAL_UNALIGNED,
    memory::VIRTUAL_NON_CANONICAL,
    memory::VIRTUAL_OVERLAP,
    memory::VIRTUAL_INFO_OVERLAP,
    memory::VIRTUAL_STACK_OVERLAP,
    memory::VIRTUAL_IMAGE_OVERLAP,
    memory::VIRTUAL_NULL_PAGE,
    devices::OWNED_TWICE,
    devices::GRANTED_TWICE,
    devices::RESOURCE_GRANTED_TWICE,
    devices::GRANT_NOTHING,
    devices::IOPORT_INVERTED,
    devices::IOPORT_OVERLAP,
    devices::IRQ_OUT_OF_RANGE,
    devices::LEGACY_IRQ_DUPLICATE,
    devices::ISA_IRQ_RANGE,
    devices::PCI_IRQ_IOAPIC,
    devices::MSI_RANGE,
    devices::MSI_CONSECUTIVE,
    devices::IRQ_SHARED,
    devices::PCI_DUPLICATE,
    devices::PCI_RANGE,
    devices::PCI_NO_CONFIG_SPACE,
    devices::PCI_CONFIG_UNALIGNED,
    devices::PCI_CONFIG_SIZE,
    devices::PCI_CONFIG_IN_RAM,
    devices::MEMORY_UNALIGNED,
    devices::MEMORY_SIZE,
    devices::MEMORY_OVERLAP,
    devices::MEMORY_IN_RAM,
    devices::MEMORY_WRITE_BACK,
    shared_lines::IRQ_LINE_FOREIGN,
    platform::PLATFORM_DEVICE_GRANTED,
    platform::DMA_UNCONFINED,
    config_ports::CONFIG_PORTS,
    config_ports::PIC_PORTS_GRANTED,
    platform::DMA_ACCEPT_UNUSED,
    domains::DUPLICATE,
    domains::UNKNOWN_REFERENCE,
    domains::DEVICE_TWICE,
    domains::DEVICE_NOT_PCI,
    domains::MEMORY_NOT_OWNED,
    domains::VIRTUAL_LAYOUT,
    hardware::MEMORY_BLOCK_OVERLAP,
    hardware::NO_ALLOCATABLE_MEMORY,
    hardware::MEMORY_BLOCK_SIZE_ZERO,
    hardware::MEMORY_BLOCK_UNALIGNED,
    hardware::MEMORY_BLOCK_TOO_HIGH,
    hardware::CPU_CORES_ZERO,
    hardware::TOO_MANY_CPUS,
    hardware::SPEED_ZERO,
    hardware::APIC_ID_DUPLICATE,
    hardware::VMX_TIMER_RATE,
    hardware::RESERVED_MEMORY_IN_RAM,
    platform::IOMMU_CAPABILITIES,
    platform::IOAPIC_CAPABILITIES,
    platform::IOMMU_MISSING,
    platform::IOAPIC_MISSING,
    platform::SYSTEM_BOARD_MISSING,
    platform::RMRR_DUPLICATE,
    platform::RMRR_UNKNOWN,
    events::NO_SOURCE,
    events::NO_TARGET,
    events::MULTIPLE_TARGETS,
    events::KERNEL_TARGET,
    events::SELF_TARGET,
    events::SWITCH_GROUP,
    events::SWITCH_SELF,
    events::IPI_SAME_CPU,
    events::ASYNC_SELF,
    events::ACTION_NOT_KERNEL,
    events::KERNEL_NO_ACTION,
    events::UNMASK_IRQ_NO_IRQ,
    events::SOURCE_TWICE,
    events::SOURCE_ID_RANGE,
    events::TARGET_ID_RANGE,
    events::SOURCE_ID_DUPLICATE,
    events::TARGET_ID_DUPLICATE,
    events::VECTOR_RANGE,
    events::VECTOR_RESERVED,
    events::VECTOR_DUPLICATE,
    channels::NO_WRITER,
    channels::MULTIPLE_WRITERS,
    channels::NO_READER,
    channels::WRITER_READS,
    channels::READ_TWICE,
    channels::SIZE_ZERO,
    channels::SIZE_UNALIGNED,
    channels::SIZE_TOO_SMALL,
    channels::ELEMENT_SIZE_ZERO,
    channels::ELEMENT_SIZE_UNALIGNED,
    channels::PROTOCOL_ZERO,
    channels::EVENT_WITHOUT_HAS_EVENT,
    channels::VECTOR_WITHOUT_HAS_EVENT,
    channels::VECTOR_VM,
    channels::IPI_SAME_CPU,
    channels::EVENT_MULTIPLE_READERS,
    channels::SWITCH_READERS,
    channels::SWITCH_GROUP,
    channels::SINGLE_ELEMENT,
    subjects::NONE,
    subjects::NAME_RESERVED,
    subjects::BINARY_NAME,
    subjects::CPU_RANGE,
    subjects::CPU_PARTITION,
    subjects::STACK_ZERO,
    subjects::STACK_UNALIGNED,
    subjects::STACK_TOO_LARGE,
    subjects::TOO_MANY_RESOURCES,
    subjects::LOGICAL_TOO_LONG,
    subjects::PORT_NAME_TOO_LONG,
    subjects::NOT_SCHEDULED,
    subjects::SCHEDULED_TWICE,
    lifecycle::RESTART_LIMIT_RANGE,
    lifecycle::RESTART_UNUSED,
    lifecycle::RESTART_FALLBACK,
    lifecycle::RESTART_SHARED_MEMORY,
    lifecycle::RESET_MODE,
    monitor::ON_FAULT,
    monitor::REFERENCE,
    monitor::CYCLE,
    monitor::GROUP,
    monitor::EXITS,
    monitor::STATE,
    virtio::PLACE,
    virtio::RESOURCES,
    timed::PAGE,
    timed::EVENT,
    crash_audit::READER,
    crash_audit::ONE,
    scheduling::TICK_RATE_ZERO,
    scheduling::NO_MAJOR_FRAME,
    scheduling::PARTITION_EMPTY,
    scheduling::PARTITION_UNUSED,
    scheduling::PARTITION_MULTI_CPU,
    scheduling::PARTITION_CPU,
    scheduling::CPU_RANGE,
    scheduling::CPU_TWICE,
    scheduling::CPU_MISSING,
    scheduling::FRAME_LENGTH,
    scheduling::TICKS_ZERO,
    scheduling::INEXACT_TICKS,
    scheduling::MINOR_FRAME_UNUSABLE,
    scheduling::MINOR_FRAME_SHORT,
    scheduling::MAJOR_OVERFLOW,
    scheduling::BOOT_CPU_MISSING,
    scheduling::CPU_NO_APIC,
    scheduling::GROUP_UNREACHABLE,
    scheduling::PLAN_SWITCH_SINGLE,
    limits::TOO_MANY,
    limits::CPU_KERNEL_LIMIT,
    kernel::DEBUG_CONSOLE_UNKNOWN,
    kernel::DEBUG_CONSOLE_NO_PORTS,
    kernel::DEBUG_CONSOLE_PORT_COUNT,
    kernel::DEBUG_CONSOLE_OWNED,
    kernel::CONSOLE_INPUT_UNKNOWN,
    kernel::CONSOLE_INPUT_NOT_VM,
    kernel::WINDOWS_OUTSIDE_RAM,
    flows::DENY_UNKNOWN,
    flows::DENY_SELF,
    flows::DENIED,
];
