//! The PCI configuration ports are the kernel's.
//!
//! Through CONFIG_ADDRESS (0xCF8) and CONFIG_DATA (0xCFC-0xCFF) whoever
//! holds them reads and writes the configuration space of every PCI
//! function: it can move another subject's device BARs over its own memory,
//! re-target MSIs or turn on bus mastering. The kernel emulates the ports
//! for subjects that own PCI devices (each sees only its own functions) and
//! uses them itself, as an address-then-data pair under a lock. A subject
//! granted them directly (a hardware description may list them as a
//! device's ports: older anchor descriptions put 0xCF8 in the system board)
//! would bypass the emulation and interleave its accesses with the
//! kernel's. The composer refused this only for subjects that also own a
//! PCI function; any subject is refused here.
//!
//! The 8259 PICs (0x20-0x21, 0xA0-0xA1, and their edge/level registers
//! 0x4D0-0x4D1) are the kernel's too: it masks every line at boot and takes
//! device interrupts only through the I/O APIC or MSIs. An owner of those
//! ports could unmask them; the legacy timer's interrupts would then arrive
//! through the local APIC's LINT0 as external-interrupt exits in whatever
//! subject runs on CPU 0 (a neighbour's time, and a channel into it).

use septum_kerncore::pcicfg::{CONFIG_ADDRESS, CONFIG_DATA};

use super::common::{DiagnosticExt, hex, owned_ports};
use crate::diag::Diagnostics;
use crate::model::{IoPortRange, Policy};
use crate::rule::{Category, Rule};

/// CONFIG_ADDRESS (0xCF9, the reset control, is a register of its own)
/// and the four bytes of CONFIG_DATA.
const CONFIG_PORTS_HELD: [(u16, u16); 2] = [
    (CONFIG_ADDRESS, CONFIG_ADDRESS),
    (CONFIG_DATA, CONFIG_DATA + 3),
];

/// The 8259 PICs' ports: command/data of the master and the slave, and
/// the edge/level control registers.
const PIC_PORTS: [(u16, u16); 3] = [(0x20, 0x21), (0xa0, 0xa1), (0x4d0, 0x4d1)];

/// Whether `range` holds a port of one of the inclusive ranges `ports`.
fn holds_any(range: &IoPortRange, ports: &[(u16, u16)]) -> bool {
    let (start, end) = (range.start.value, range.end.value);
    ports
        .iter()
        .any(|&(first, last)| start <= last && first <= end)
}

rule! {
    /// No subject is granted a port of the 8259 PICs (0x20-0x21,
    /// 0xA0-0xA1, 0x4D0-0x4D1): the kernel keeps them masked; an owner
    /// could unmask them and send the legacy timer into the partition
    /// running on CPU 0.
    PIC_PORTS_GRANTED = "devices-pic-ports" in Devices;
    fn pic_ports(policy, out) {
        for subject in &policy.subjects {
            for (range, span, device) in owned_ports(policy, subject)
                .into_iter()
                .filter(|(r, _, _)| holds_any(r, &PIC_PORTS))
            {
                out.error(
                    PIC_PORTS_GRANTED.id,
                    span,
                    format!(
                        "subject \"{}\" is granted I/O ports {}..={} of device \"{device}\", \
                         which hold ports of the 8259 interrupt controllers (0x20-0x21, \
                         0xa0-0xa1, 0x4d0-0x4d1): the kernel's",
                        subject.name.as_str(),
                        hex(u64::from(range.start.value)),
                        hex(u64::from(range.end.value)),
                    ),
                )
                .help(
                    "device interrupts reach subjects through the I/O APIC or MSIs: grant \
                     the device's <irq> instead",
                );
            }
        }
    }
}

rule! {
    /// No subject is granted the PCI configuration ports 0xCF8 or
    /// 0xCFC-0xCFF: through them it could rewrite any device's BARs and
    /// MSIs; the kernel emulates them for PCI device owners and uses them
    /// itself.
    CONFIG_PORTS = "devices-pci-config-ports" in Devices;
    fn config_ports(policy, out) {
        for subject in &policy.subjects {
            for (range, span, device) in owned_ports(policy, subject)
                .into_iter()
                .filter(|(r, _, _)| holds_any(r, &CONFIG_PORTS_HELD))
            {
                out.error(
                    CONFIG_PORTS.id,
                    span,
                    format!(
                        "subject \"{}\" is granted I/O ports {}..={} of device \"{device}\", \
                         which hold the PCI configuration ports 0xcf8 or 0xcfc-0xcff: the \
                         kernel's",
                        subject.name.as_str(),
                        hex(u64::from(range.start.value)),
                        hex(u64::from(range.end.value)),
                    ),
                )
                .help(
                    "grant the PCI device itself: the kernel then emulates its configuration \
                     space",
                );
            }
        }
    }
}
