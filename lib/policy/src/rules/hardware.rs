//! Hardware: the machine description is self-consistent enough to build a
//! system on.
//!
//! These rules check the description, not the system: memory blocks that do
//! not overlap, some RAM to allocate from, a processor with cores, a known
//! TSC rate and distinct APIC ids. Device resources are checked in
//! `devices`. Names of memory blocks are free text in the anchor's format and
//! need not be unique.

use std::collections::HashMap;

use super::common::{DiagnosticExt, PAGE, PHYS_LIMIT, Range, hex_size, overlap_pairs};
use crate::diag::Diagnostics;
use crate::model::Policy;
use crate::rule::{Category, Rule};
use crate::source::Span;

rule! {
    /// Memory blocks of the hardware do not overlap each other.
    MEMORY_BLOCK_OVERLAP = "hardware-memory-block-overlap" in Hardware;
    fn memory_block_overlap(policy, out) {
        let blocks = &policy.hardware.memory_blocks;
        let all: Vec<(Range, usize, usize)> = blocks
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                Range::new(b.physical_address.value.0, b.size.value).map(|r| (r, i, i))
            })
            .filter(|(r, _, _)| r.start < r.end)
            .collect();
        for (later, earlier) in overlap_pairs(all) {
            let (Some(block), Some(other)) = (blocks.get(later), blocks.get(earlier)) else {
                continue;
            };
            out.error(
                MEMORY_BLOCK_OVERLAP.id,
                block.physical_address.span,
                format!(
                    "memory block \"{}\" overlaps memory block \"{}\"",
                    block.name.as_str(),
                    other.name.as_str()
                ),
            )
            .label(other.physical_address.span, "the other block");
        }
    }
}

rule! {
    /// The hardware has at least one allocatable memory block to place the
    /// kernel and the subjects in.
    NO_ALLOCATABLE_MEMORY = "hardware-no-allocatable-memory" in Hardware;
    fn no_allocatable_memory(policy, out) {
        let hardware = &policy.hardware;
        if !hardware
            .memory_blocks
            .iter()
            .any(|b| b.allocatable.value && b.size.value > 0)
        {
            out.error(
                NO_ALLOCATABLE_MEMORY.id,
                hardware.span,
                "the hardware description has no allocatable memory block",
            )
            .help("mark the RAM blocks the system may use with allocatable=\"true\"");
        }
    }
}

rule! {
    /// Memory blocks are not empty.
    MEMORY_BLOCK_SIZE_ZERO = "hardware-memory-block-size-zero" in Hardware;
    fn memory_block_size_zero(policy, out) {
        for block in policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.size.value == 0)
        {
            out.error(
                MEMORY_BLOCK_SIZE_ZERO.id,
                block.size.span,
                format!("memory block \"{}\" has size 0", block.name.as_str()),
            );
        }
    }
}

rule! {
    /// Allocatable memory blocks start and end on 4 KiB boundaries, so the
    /// composer can hand out whole pages.
    MEMORY_BLOCK_UNALIGNED = "hardware-memory-block-unaligned" in Hardware;
    fn memory_block_unaligned(policy, out) {
        for block in policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.allocatable.value)
        {
            let (address, size) = (&block.physical_address, &block.size);
            let span = if address.value.is_aligned(PAGE) {
                size.span
            } else {
                address.span
            };
            if !address.value.is_aligned(PAGE) || !size.value.is_multiple_of(PAGE) {
                out.error(
                    MEMORY_BLOCK_UNALIGNED.id,
                    span,
                    format!(
                        "allocatable memory block \"{}\" at {} with size {} is not 4 KiB aligned",
                        block.name.as_str(),
                        address.value,
                        hex_size(size.value)
                    ),
                );
            }
        }
    }
}

rule! {
    /// Memory blocks end inside the 48-bit physical address space.
    MEMORY_BLOCK_TOO_HIGH = "hardware-memory-block-too-high" in Hardware;
    fn memory_block_too_high(policy, out) {
        for block in &policy.hardware.memory_blocks {
            let end = block.physical_address.value.0.checked_add(block.size.value);
            if end.is_none_or(|end| end > PHYS_LIMIT) {
                out.error(
                    MEMORY_BLOCK_TOO_HIGH.id,
                    block.physical_address.span,
                    format!(
                        "memory block \"{}\" does not fit in the 48-bit physical address space",
                        block.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The processor has at least one core.
    CPU_CORES_ZERO = "hardware-cpu-cores-zero" in Hardware;
    fn cpu_cores_zero(policy, out) {
        let cores = &policy.hardware.processor.cpu_cores;
        if cores.value == 0 {
            out.error(
                CPU_CORES_ZERO.id,
                cores.span,
                "the processor has 0 cores (cpuCores)",
            );
        }
    }
}

rule! {
    /// The processor lists no more `<cpu>` elements than it has cores.
    TOO_MANY_CPUS = "hardware-too-many-cpus" in Hardware;
    fn too_many_cpus(policy, out) {
        let processor = &policy.hardware.processor;
        let listed = processor.cpus.len();
        let cores = processor.cpu_cores.value;
        if cores > 0 && listed > cores as usize {
            out.error(
                TOO_MANY_CPUS.id,
                processor.cpu_cores.span,
                format!("cpuCores is {cores} but the processor lists {listed} cpu elements"),
            );
        }
    }
}

rule! {
    /// The processor speed (TSC rate in kHz) is known: the plan's ticks are
    /// converted to TSC cycles with it.
    SPEED_ZERO = "hardware-speed-zero" in Hardware;
    fn speed_zero(policy, out) {
        let speed = &policy.hardware.processor.speed_khz;
        if speed.value == 0 {
            out.error(SPEED_ZERO.id, speed.span, "the processor speed is 0 kHz")
                .help("give the TSC rate in kHz, as the hardware tool measured it");
        }
    }
}

rule! {
    /// APIC ids are unique, so each CPU can be started and interrupted alone.
    APIC_ID_DUPLICATE = "hardware-apic-id-duplicate" in Hardware;
    fn apic_id_duplicate(policy, out) {
        let mut first: HashMap<u32, Span> = HashMap::new();
        for cpu in &policy.hardware.processor.cpus {
            if let Some(&span) = first.get(&cpu.apic_id.value) {
                out.error(
                    APIC_ID_DUPLICATE.id,
                    cpu.apic_id.span,
                    format!("APIC id {} is listed more than once", cpu.apic_id.value),
                )
                .label(span, "first listed here");
            } else {
                first.insert(cpu.apic_id.value, cpu.apic_id.span);
            }
        }
    }
}

rule! {
    /// The VMX preemption timer rate fits its 5-bit field (0..=31).
    VMX_TIMER_RATE = "hardware-vmx-timer-rate" in Hardware;
    fn vmx_timer_rate(policy, out) {
        let rate = &policy.hardware.processor.vmx_timer_rate;
        if rate.value > 31 {
            out.error(
                VMX_TIMER_RATE.id,
                rate.span,
                format!("vmxTimerRate {} is out of range 0..=31", rate.value),
            );
        }
    }
}

rule! {
    /// Reserved memory (RMRR) regions do not overlap allocatable RAM, which
    /// the composer would otherwise hand to subjects while a device uses it.
    RESERVED_MEMORY_IN_RAM = "hardware-reserved-memory-in-ram" in Hardware;
    fn reserved_memory_in_ram(policy, out) {
        let hardware = &policy.hardware;
        for reserved in &hardware.reserved_memory {
            let Some(range) = Range::new(reserved.physical_address.value.0, reserved.size.value)
            else {
                continue;
            };
            for block in hardware
                .memory_blocks
                .iter()
                .filter(|b| b.allocatable.value)
            {
                let Some(block_range) =
                    Range::new(block.physical_address.value.0, block.size.value)
                else {
                    continue;
                };
                if block_range.overlaps(&range) {
                    out.error(
                        RESERVED_MEMORY_IN_RAM.id,
                        reserved.physical_address.span,
                        format!(
                            "reserved memory \"{}\" overlaps allocatable memory block \"{}\"",
                            reserved.name.as_str(),
                            block.name.as_str()
                        ),
                    );
                }
            }
        }
    }
}
