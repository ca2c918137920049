//! Kernel: the settings the kernel itself takes from the policy.
//!
//! The kernel writes its diagnostics to the UART of the `debugConsole`
//! device through that device's first I/O port range. It must be a device
//! with such a range, of the size a 16550 UART decodes, and no subject may
//! own it: a subject could otherwise forge or swallow the kernel's crash
//! reports. The kernel's own windows must be real RAM.
//!
//! What is typed on that UART goes to the `consoleInput` subject, if the
//! policy names one: a subject of the policy, and a VM, because the kernel
//! hands the bytes to a VM's emulated UART (a native subject has none). The
//! attribute names one subject, so there is never a second owner.

use septum_abi::layout;

use super::common::{DiagnosticExt, Range};
use crate::diag::Diagnostics;
use crate::model::{Policy, Profile};
use crate::rule::{Category, Rule};

/// Registers a 16550-compatible UART decodes.
const UART_PORTS: u32 = 8;

rule! {
    /// The debug console names a device of the hardware description.
    DEBUG_CONSOLE_UNKNOWN = "kernel-debug-console-unknown" in Kernel;
    fn debug_console_unknown(policy, out) {
        let console = &policy.kernel.debug_console;
        if console.target.is_none() {
            out.error(
                DEBUG_CONSOLE_UNKNOWN.id,
                console.name.span,
                format!(
                    "debug console \"{}\" is not a device of the hardware description",
                    console.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// The debug console device has an I/O port range for the kernel's UART.
    DEBUG_CONSOLE_NO_PORTS = "kernel-debug-console-no-ports" in Kernel;
    fn debug_console_no_ports(policy, out) {
        let console = &policy.kernel.debug_console;
        let Some(device) = console.get().map(|d| policy.device(d)) else {
            return;
        };
        if device.io_ports.is_empty() {
            out.error(
                DEBUG_CONSOLE_NO_PORTS.id,
                console.name.span,
                format!(
                    "debug console device \"{}\" has no I/O port range",
                    device.name.as_str()
                ),
            )
            .label(device.name.span, "the device");
        }
    }
}

rule! {
    /// The debug console's first I/O port range covers the 8 registers of a
    /// 16550 UART.
    DEBUG_CONSOLE_PORT_COUNT = "kernel-debug-console-port-count" in Kernel;
    fn debug_console_port_count(policy, out) {
        let console = &policy.kernel.debug_console;
        let Some(device) = console.get().map(|d| policy.device(d)) else {
            return;
        };
        let Some(range) = device.io_ports.first() else {
            return;
        };
        if range.start.value > range.end.value {
            return; // devices-ioport-inverted
        }
        let count = u32::from(range.end.value) - u32::from(range.start.value) + 1;
        if count < UART_PORTS {
            out.error(
                DEBUG_CONSOLE_PORT_COUNT.id,
                console.name.span,
                format!(
                    "debug console \"{}\" has {count} I/O ports; a 16550 UART needs {UART_PORTS}",
                    device.name.as_str()
                ),
            )
            .label(range.start.span, "its first I/O port range");
        }
    }
}

rule! {
    /// No subject owns the debug console: the kernel's diagnostics and crash
    /// reports must not be forged or swallowed by a subject.
    DEBUG_CONSOLE_OWNED = "kernel-debug-console-owned" in Kernel;
    fn debug_console_owned(policy, out) {
        let console = &policy.kernel.debug_console;
        let Some(device) = console.get() else { return };
        for subject in &policy.subjects {
            for grant in subject
                .devices
                .iter()
                .filter(|g| g.physical.get() == Some(device))
            {
                out.error(
                    DEBUG_CONSOLE_OWNED.id,
                    grant.physical.name.span,
                    format!(
                        "subject \"{}\" owns device \"{}\", the kernel's debug console",
                        subject.name.as_str(),
                        grant.physical.name.as_str()
                    ),
                )
                .label(console.name.span, "the kernel's debug console")
                .help("give the subject another UART, or choose another debugConsole");
            }
        }
    }
}

rule! {
    /// The console input owner names a subject of the policy.
    CONSOLE_INPUT_UNKNOWN = "kernel-console-input-unknown" in Kernel;
    fn console_input_unknown(policy, out) {
        let Some(owner) = &policy.kernel.console_input else { return };
        if owner.target.is_none() {
            out.error(
                CONSOLE_INPUT_UNKNOWN.id,
                owner.name.span,
                format!(
                    "console input owner \"{}\" is not a subject of the policy",
                    owner.name.as_str()
                ),
            );
        }
    }
}

rule! {
    /// The console input owner is a VM subject (`profile="vm"`): the kernel
    /// delivers console input through a VM's emulated UART.
    CONSOLE_INPUT_NOT_VM = "kernel-console-input-not-vm" in Kernel;
    fn console_input_not_vm(policy, out) {
        let Some(owner) = &policy.kernel.console_input else { return };
        let Some(subject) = owner.get().map(|s| policy.subject(s)) else {
            return;
        };
        if subject.profile.value != Profile::Vm {
            out.error(
                CONSOLE_INPUT_NOT_VM.id,
                owner.name.span,
                format!(
                    "console input owner \"{}\" is not a VM subject",
                    owner.name.as_str()
                ),
            )
            .label(subject.profile.span, "its profile")
            .help("console input reaches a VM's emulated UART at 0x3f8; a native subject reads a UART it owns");
        }
    }
}

rule! {
    /// The kernel's windows lie in one allocatable memory block, so the boot
    /// loader can load the kernel there.
    WINDOWS_OUTSIDE_RAM = "kernel-windows-outside-ram" in Kernel;
    fn windows_outside_ram(policy, out) {
        let windows = Range {
            start: layout::KERNEL_TEXT.start.0,
            end: layout::FIRST_ALLOCATABLE.0,
        };
        let mut blocks = policy
            .hardware
            .memory_blocks
            .iter()
            .filter(|b| b.allocatable.value)
            .filter_map(|b| Range::new(b.physical_address.value.0, b.size.value))
            .peekable();
        if blocks.peek().is_none() {
            return; // hardware-no-allocatable-memory
        }
        if !blocks.any(|b| b.contains(&windows)) {
            out.error(
                WINDOWS_OUTSIDE_RAM.id,
                policy.hardware.span,
                format!("the kernel windows {windows} are not inside an allocatable memory block"),
            );
        }
    }
}
