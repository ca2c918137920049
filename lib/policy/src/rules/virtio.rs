//! Virtio consoles: a `vm` subject's `<virtioConsole port irq
//! guestMemory>` (docs/policy.md, "Virtio console").
//!
//! The kernel presents the device's PCI header; the registers behind its
//! I/O BAR are emulated by the VM's monitor, which reaches them through the
//! monitor seam (an I/O exit the kernel does not emulate is a trap) and
//! delivers data that arrives while the guest idles when the guest halts
//! (a halt is a trap too). So the element needs a monitored VM whose
//! monitor chooses `io` and `hlt`. Its port range must not meet the ports
//! the kernel emulates (the legacy PC ports, all below 0x1000), and its
//! interrupt line must be a master-PIC line no emulated device uses.

use septum_kerncore::monitor::exit_reasons;
use septum_kerncore::vm::pci::{CONSOLE_IRQS, VIRTIO_BAR_SIZE};

use super::common::DiagnosticExt;
use crate::diag::Diagnostics;
use crate::model::{OnFault, Policy, Profile};
use crate::rule::{Category, Rule};

/// Lowest port a console's BAR may start at: above every legacy port the
/// kernel emulates for a VM (docs/kernel.md, "VM subjects").
const FIRST_PORT: u16 = 0x1000;
/// Alignment of `guestMemory`: one page.
const GUEST_MEMORY_ALIGN: u64 = 0x1000;

rule! {
    /// A `<virtioConsole>` belongs to a `vm` subject with onFault="monitor"
    /// whose `<monitor>` chooses the `io` exits (the console's registers)
    /// and `hlt` (an idle guest's halt is when its monitor delivers input).
    PLACE = "subjects-virtio-console-place" in Subjects;
    fn place(policy, out) {
        for subject in &policy.subjects {
            let Some(console) = &subject.virtio_console else {
                continue;
            };
            let name = subject.name.as_str();
            if subject.profile.value != Profile::Vm {
                out.error(
                    PLACE.id,
                    console.span,
                    format!("subject \"{name}\" has a <virtioConsole> but is not a vm subject"),
                )
                .help("a virtio console is a device of a VM: use it in a profile=\"vm\" subject");
                continue;
            }
            let Some(monitor) = subject
                .monitor
                .as_ref()
                .filter(|_| subject.on_fault.value == OnFault::Monitor)
            else {
                out.error(
                    PLACE.id,
                    console.span,
                    format!("vm \"{name}\" has a <virtioConsole> but no monitor"),
                )
                .help(
                    "set onFault=\"monitor\" and add <monitor event=... state=... exits=\"io hlt\"/>: \
                     the monitor emulates the console",
                );
                continue;
            };
            let chooses = |exit: &str| {
                monitor
                    .exits
                    .value
                    .iter()
                    .any(|word| word.as_str() == exit && exit_reasons(exit).is_some())
            };
            for exit in ["io", "hlt"] {
                if !chooses(exit) {
                    out.error(
                        PLACE.id,
                        monitor.exits.span,
                        format!(
                            "vm \"{name}\" has a <virtioConsole> but its monitor does not choose \
                             the \"{exit}\" exits"
                        ),
                    )
                    .label(console.span, "the console")
                    .help("add \"io hlt\" to the monitor's exits");
                }
            }
        }
    }
}

rule! {
    /// A virtio console's port is a multiple of 32 at or above 0x1000 (its
    /// 32-port BAR meets no port the kernel emulates), its irq is 3, 5 or 6
    /// (a master-PIC line no emulated device uses), and its guestMemory is
    /// a non-zero multiple of 4 KiB.
    RESOURCES = "subjects-virtio-console-resources" in Subjects;
    fn resources(policy, out) {
        for subject in &policy.subjects {
            let Some(console) = &subject.virtio_console else {
                continue;
            };
            let port = console.port.value;
            if port < FIRST_PORT || port % VIRTIO_BAR_SIZE != 0 {
                out.error(
                    RESOURCES.id,
                    console.port.span,
                    format!(
                        "virtio console port {port:#x} is not a multiple of {VIRTIO_BAR_SIZE:#x} \
                         at or above {FIRST_PORT:#x}"
                    ),
                )
                .help("choose a PCI I/O port such as 0xc000");
            }
            let irq = console.irq.value;
            if !CONSOLE_IRQS.contains(&irq) {
                out.error(
                    RESOURCES.id,
                    console.irq.span,
                    format!("virtio console irq {irq} is not one of 3, 5, 6"),
                )
                .help(
                    "the VM's platform delivers master-PIC lines only; 0 (PIT), 2 (cascade), \
                     4 (UART), 1 and 7 are taken",
                );
            }
            let base = console.guest_memory.value;
            if base == 0 || base % GUEST_MEMORY_ALIGN != 0 {
                out.error(
                    RESOURCES.id,
                    console.guest_memory.span,
                    format!("guestMemory {base:#x} is not a non-zero multiple of 4 KiB"),
                );
            }
        }
    }
}
