//! The `vm` profile: a full virtual machine (its own IDT, interrupts,
//! real-mode or protected-mode entry). Not built yet.
//!
//! This is where its controls (unrestricted guest, interrupt-window and
//! NMI-window exiting, no CR0/CR4 ownership beyond what isolation needs)
//! and its initial state (reset-vector entry, flat real-mode segments) will
//! go. The policy loader rejects `profile="vm"` today, so nothing reaches
//! this module; it refuses every subject so a half-configured VM can never
//! be composed.

use super::{SubjectVmx, Unsupported, VmxInputs};

/// Refuses: the `vm` profile is not supported yet.
pub fn subject_vmx(_inputs: &VmxInputs) -> Result<SubjectVmx, Unsupported> {
    Err(Unsupported { profile: "vm" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_is_refused_by_name() {
        let inputs = VmxInputs {
            entry: septum_abi::VirtAddr(0),
            page_tables: septum_abi::GuestPhysAddr(0),
            interrupt_entry: false,
        };
        let e = subject_vmx(&inputs).unwrap_err();
        assert_eq!(e.to_string(), "profile vm is not supported yet");
    }
}
