//! Decisions for the exits of `vm` subjects (virtual machines that boot an
//! unmodified Linux; docs/kernel.md, "VM subjects").
//!
//! A VM's kernel expects a PC: CPUID, model-specific registers, a UART, an
//! interrupt controller and timer, CMOS, PCI configuration space. The
//! kernel emulates the few pieces Linux needs to boot to a shell, because
//! each sits on an exit path that a booting kernel takes thousands of times
//! (a monitor subject, which later emulation moves to, is not ready yet).
//! Everything here is pure logic, unit-tested on the host; the arch layer
//! (`kernel/src/arch/x86_64/vm.rs`) reads the exit, calls these, and
//! applies the result to the VMCS and the register frame:
//!
//! - [`cpuid`]: the filtered CPUID view (no XSAVE/AVX, no FSRM, no
//!   x2APIC, hypervisor bit set);
//! - [`lapic`]: the VM's local APIC (xAPIC registers, TSC-deadline timer,
//!   self-IPIs) on top of the CPU's APIC virtualization;
//! - [`msr`]: what a RDMSR/WRMSR of a VM does (a value, a VMCS field, the
//!   real MSR, a #GP, or a fault of the subject);
//! - [`platform`]: the emulated I/O ports (16550 UART, 8259 PIC, 8254 PIT,
//!   CMOS/RTC, PCI configuration, absent legacy ports);
//! - [`pci`]: the PCI configuration space ("no devices", or a virtio
//!   console's header);
//! - [`control`]: MOV to/from CR0/CR4/CR8 and debug registers;
//! - [`console_input`]: the ring of bytes typed on the kernel's console
//!   for the VM that owns console input.
//!
//! Which subjects are VMs is read from their controls ([`is_vm`]), so the
//! spec needs no new field.

pub mod console_input;
pub mod control;
pub mod cpuid;
pub mod lapic;
pub mod msr;
pub mod pci;
pub mod platform;

use crate::plan::MAX_SUBJECTS;
use crate::spec::{SubjectSpec, SystemSpec, VmxControls};

/// Primary processor-based control "CR3-load exiting" (SDM 25.6.2).
const PROC_CR3_LOAD_EXITING: u32 = 1 << 15;

/// Whether a subject with `controls` is a VM: the `vm` profile is the only
/// one that lets the guest load CR3 without an exit (it owns its page
/// tables; the EPT confines it).
pub const fn is_vm_controls(controls: &VmxControls) -> bool {
    controls.proc & PROC_CR3_LOAD_EXITING == 0
}

/// Whether any subject of `spec` is a VM: a `const` in the kernel, so a
/// system without VMs pays nothing for them on its exit path.
pub const fn present(spec: &SystemSpec) -> bool {
    let mut rest = spec.subjects;
    while let [first, tail @ ..] = rest {
        if is_vm_controls(&first.controls) {
            return true;
        }
        rest = tail;
    }
    false
}

/// Whether `subject` is a VM (see [`is_vm_controls`]).
pub fn is_vm(subject: &SubjectSpec) -> bool {
    is_vm_controls(&subject.controls)
}

/// For every subject id below [`MAX_SUBJECTS`], how many VMs of `spec`
/// come before it: a VM's slot in the kernel's per-VM tables (for an id
/// beyond the spec's subjects, the number of VMs). A constant table for
/// the kernel's spec, so finding a VM's slot on its exits and entries is
/// one load, not a walk over every subject before it.
pub const fn slots(spec: &SystemSpec) -> [u16; MAX_SUBJECTS] {
    let mut table = [0u16; MAX_SUBJECTS];
    let mut free: &mut [u16] = &mut table;
    let mut rest = spec.subjects;
    let mut vms = 0u16;
    while let [slot, more @ ..] = free {
        *slot = vms;
        if let [first, tail @ ..] = rest {
            if is_vm_controls(&first.controls) {
                vms = vms.saturating_add(1);
            }
            rest = tail;
        }
        free = more;
    }
    table
}

/// An exception the arch layer injects into the guest at the next entry
/// (the instruction is not completed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// #UD: the instruction does not exist on this virtual CPU.
    InvalidOpcode,
    /// #GP(0): the access is refused the way a real CPU refuses it.
    GeneralProtection,
}

impl Inject {
    /// VM-entry interruption information (SDM 25.8.3): vector, type 3
    /// (hardware exception), error code valid for #GP, valid bit.
    pub const fn interruption_info(self) -> u32 {
        match self {
            Self::InvalidOpcode => 6 | (3 << 8) | (1 << 31),
            Self::GeneralProtection => 13 | (3 << 8) | (1 << 11) | (1 << 31),
        }
    }
}

/// Guest CPL from the SS access rights in VMCS format (DPL, bits 6:5).
pub const fn cpl(ss_access_rights: u64) -> u8 {
    ((ss_access_rights >> 5) & 3) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_words() {
        assert_eq!(Inject::InvalidOpcode.interruption_info(), 0x8000_0306);
        assert_eq!(Inject::GeneralProtection.interruption_info(), 0x8000_0b0d);
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn a_vm_slot_counts_the_vms_before_it() {
        use crate::spec::FaultAction;
        use crate::testing::{KERNEL, NO_EVENTS, TWO_PARTITIONS, subject};
        const fn native(name: &'static str) -> SubjectSpec {
            let mut spec = subject(name, FaultAction::StopSystem, NO_EVENTS);
            spec.controls.proc = PROC_CR3_LOAD_EXITING;
            spec
        }
        static SUBJECTS: [SubjectSpec; 4] = [
            native("n0"),
            subject("v0", FaultAction::StopSystem, NO_EVENTS),
            native("n1"),
            subject("v1", FaultAction::StopSystem, NO_EVENTS),
        ];
        let spec = SystemSpec {
            name: "vms",
            kernel: KERNEL,
            subjects: SUBJECTS.as_slice(),
            partitions: TWO_PARTITIONS.partitions,
            groups: TWO_PARTITIONS.groups,
            major_frames: TWO_PARTITIONS.major_frames,
            image_regions: &[],
        };
        let table = slots(&spec);
        assert_eq!(table[..6], [0, 0, 1, 1, 2, 2]);
        assert!(table.iter().skip(4).all(|&slot| slot == 2));
        // The table agrees with counting the VMs before each id.
        for (id, slot) in table.iter().enumerate().take(SUBJECTS.len()) {
            let before = SUBJECTS.iter().take(id).filter(|s| is_vm(s)).count();
            assert_eq!(usize::from(*slot), before);
        }
    }

    #[test]
    fn cpl_is_the_ss_dpl() {
        assert_eq!(cpl(0xc093), 0);
        assert_eq!(cpl(0xc0f3), 3);
    }
}
