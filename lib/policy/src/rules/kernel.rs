//! Kernel: the settings the kernel itself takes from the policy.
//!
//! The kernel writes its diagnostics to the UART of the `debugConsole`
//! device through that device's first I/O port range. It must be a device
//! with such a range, of the size a 16550 UART decodes, and no subject may
//! own it: a subject could otherwise forge or swallow the kernel's crash
//! reports. The kernel's own windows must be real RAM.

use septum_abi::layout;

use super::common::{DiagnosticExt, Range};
use crate::diag::Diagnostics;
use crate::model::Policy;
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
