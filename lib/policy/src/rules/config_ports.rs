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

use septum_kerncore::pcicfg::{CONFIG_ADDRESS, CONFIG_DATA};

use super::common::{DiagnosticExt, hex};
use crate::diag::Diagnostics;
use crate::model::{IoPortRange, Policy};
use crate::rule::{Category, Rule};
use crate::source::Span;

/// Whether `range` holds CONFIG_ADDRESS or a byte of CONFIG_DATA.
fn holds_config_port(range: &IoPortRange) -> bool {
    let (start, end) = (range.start.value, range.end.value);
    let data_end = CONFIG_DATA.saturating_add(3);
    (start..=end).contains(&CONFIG_ADDRESS) || (start <= data_end && CONFIG_DATA <= end)
}

rule! {
    /// No subject is granted the PCI configuration ports 0xCF8 or
    /// 0xCFC-0xCFF: through them it could rewrite any device's BARs and
    /// MSIs; the kernel emulates them for PCI device owners and uses them
    /// itself.
    CONFIG_PORTS = "devices-pci-config-ports" in Devices;
    fn config_ports(policy, out) {
        for subject in &policy.subjects {
            for grant in &subject.devices {
                let Some(device) = grant.physical.get().map(|d| policy.device(d)) else {
                    continue;
                };
                let ranges: Vec<(&IoPortRange, Span)> = if grant.is_whole_device() {
                    device.io_ports.iter().map(|r| (r, grant.span)).collect()
                } else {
                    grant
                        .io_ports
                        .iter()
                        .filter_map(|g| {
                            let range = device.io_ports.get(g.physical.get()?.index())?;
                            Some((range, g.span))
                        })
                        .collect()
                };
                for (range, span) in ranges.into_iter().filter(|(r, _)| holds_config_port(r)) {
                    out.error(
                        CONFIG_PORTS.id,
                        span,
                        format!(
                            "subject \"{}\" is granted I/O ports {}..={} of device \"{}\", which \
                             hold the PCI configuration ports 0xcf8 or 0xcfc-0xcff: the kernel's",
                            subject.name.as_str(),
                            hex(u64::from(range.start.value)),
                            hex(u64::from(range.end.value)),
                            device.name.as_str()
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
}
