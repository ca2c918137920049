//! PCI configuration space grants of a composition: which native subject
//! owns which PCI function (the kernel's `PCI_CONFIG`,
//! [`septum_kerncore::pcicfg`]).
//!
//! Every device grant of a native subject whose hardware device has a
//! `<pci>` address gives the subject that function's configuration space
//! through the kernel's emulation of ports 0xCF8/0xCFC (docs/policy.md,
//! "PCI devices"). A `vm` subject gets none: its platform answers "no
//! devices" on those ports ([`septum_kerncore::vm`]).
//!
//! The emulation only works if the ports exit, so a subject that owns a
//! PCI function must not also be granted CONFIG_ADDRESS or CONFIG_DATA as
//! I/O ports (port 0xCF9, the chipset's reset control, is a port of its
//! own and may be granted): the composer refuses such a policy.

use septum_abi::SubjectId;
use septum_kerncore::pcicfg::{CONFIG_ADDRESS, CONFIG_DATA, PciGrant};

use crate::error::{ComposeError, Origin};
use crate::input::{Profile, SystemInput};

/// The PCI functions native subjects own, in subject and grant order.
pub fn grants(input: &SystemInput) -> Result<Vec<PciGrant>, ComposeError> {
    let mut grants = Vec::new();
    for (si, s) in input.subjects.iter().enumerate() {
        if s.profile != Profile::Native {
            continue;
        }
        let subject = SubjectId(u16::try_from(si).unwrap_or(u16::MAX));
        let owned: Vec<_> = s
            .devices
            .iter()
            .filter_map(|g| input.hardware.devices.get(g.device)?.pci)
            .collect();
        if owned.is_empty() {
            continue;
        }
        let config_ports = [
            CONFIG_ADDRESS,
            CONFIG_DATA,
            CONFIG_DATA + 1,
            CONFIG_DATA + 2,
            CONFIG_DATA + 3,
        ];
        for (logical, range) in s.devices.iter().flat_map(|g| &g.io_ports) {
            if config_ports
                .iter()
                .any(|p| (range.start..=range.end).contains(p))
            {
                return Err(ComposeError::new(format!(
                    "subject \"{}\": owns a PCI device, so its configuration space is emulated, \
                     but it is also granted I/O ports \"{logical}\" ({:#x}-{:#x}), which include \
                     the configuration ports 0xcf8 or 0xcfc-0xcff",
                    s.name, range.start, range.end
                ))
                .at(Origin::Subject(si)));
            }
        }
        grants.extend(owned.into_iter().map(|device| PciGrant { subject, device }));
    }
    Ok(grants)
}
