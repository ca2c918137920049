//! Subject profiles: what kind of program a subject is decides its VMX
//! controls and its initial register state.
//!
//! A profile turns the few facts the composition decided for a subject
//! ([`VmxInputs`]: its entry point and where its page tables are) into the
//! kernel's [`VmxControls`] and [`GuestState`], stored in the composed
//! subject. The spec writer ([`crate::specgen`]) copies them as they are, so
//! everything a subject's VMCS starts with is chosen here, in one place per
//! profile, and is visible in the composition before any source is written.
//!
//! - [`native`]: a 64-bit SDK program (the only profile the policy loader
//!   accepts today);
//! - [`vm`]: a virtual machine booting Linux at its 64-bit entry (its own
//!   IDT, GDT, page tables and exceptions; the kernel emulates its small
//!   platform).

pub mod native;
pub mod vm;

use septum_abi::{GuestPhysAddr, VirtAddr};
use septum_kerncore::spec::{GuestState, VmxControls};
use septum_policy::model::Profile;

/// What a subject's VMX state depends on, as the composition decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxInputs {
    /// Entry point (the ELF entry).
    pub entry: VirtAddr,
    /// Guest-physical address of the subject's own top-level page table.
    pub page_tables: GuestPhysAddr,
    /// The subject is given vectors (a routed IRQ line or an
    /// `<inject_interrupt>` target event), so it receives interrupts
    /// through its own IDT ([`crate::interrupts`]).
    pub interrupt_entry: bool,
}

/// A subject's VMX controls and initial guest state, as its profile chose
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubjectVmx {
    /// VM-execution, exit and entry controls, exception bitmap, CR masks.
    pub controls: VmxControls,
    /// Initial guest registers, including the entry registers (RIP, RSP,
    /// RDI).
    pub guest: GuestState,
}

/// Why a profile cannot set up a subject.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("profile {profile} is not supported yet")]
pub struct Unsupported {
    /// The profile's policy spelling.
    pub profile: &'static str,
}

/// The VMX controls and initial state of a subject of `profile`.
pub fn subject_vmx(profile: Profile, inputs: &VmxInputs) -> Result<SubjectVmx, Unsupported> {
    match profile {
        Profile::Native => Ok(native::subject_vmx(inputs)),
        Profile::Vm => Ok(vm::subject_vmx(inputs)),
    }
}
