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
//! Where the hardware description gives the PCIe configuration space
//! (`<devices pciConfigAddress>`, ECAM: 4 KiB per function at
//! `base + bus << 20 | device << 15 | function << 12`), the owner also gets
//! its function's configuration page mapped read-only and uncached at the
//! same guest address, listed on its info page as device memory
//! `<logical>|config` ([`config_page`]). Read-only, because a write there
//! could move a BAR or re-target an MSI just as through the ports; a write
//! is an EPT violation, a fault of the subject. Only that one page of the
//! ECAM window is mapped, which the layers check proves like any other
//! device memory (only what the input grants), and the composer's tests
//! check by walking the EPT.
//!
//! The emulation only works if the ports exit, so a subject that owns a
//! PCI function must not also be granted CONFIG_ADDRESS or CONFIG_DATA as
//! I/O ports (port 0xCF9, the chipset's reset control, is a port of its
//! own and may be granted): the composer refuses such a policy.

use septum_abi::{PhysAddr, SubjectId, VirtAddr};
use septum_kerncore::pcicfg::{CONFIG_ADDRESS, CONFIG_DATA, PciGrant};
use septum_policy::model::Pci;

use crate::error::{ComposeError, Origin};
use crate::input::{Caching, DeviceMemoryGrantInput, Profile, SystemInput};

/// One function's ECAM configuration space.
const CONFIG_PAGE: u64 = 0x1000;

/// The ECAM configuration page of `pci` for the grant `logical`, mapped
/// read-only and uncached at its own address; `None` without ECAM.
pub fn config_page(
    logical: &str,
    ecam: Option<PhysAddr>,
    pci: Option<&Pci>,
) -> Option<DeviceMemoryGrantInput> {
    let (base, pci) = (ecam?, pci?);
    let offset = u64::from(pci.bus.value) << 20
        | u64::from(pci.device.value & 0x1f) << 15
        | u64::from(pci.function.value & 7) << 12;
    let address = base.get().checked_add(offset)?;
    Some(DeviceMemoryGrantInput {
        logical: format!("{logical}|config"),
        physical: PhysAddr(address),
        size: CONFIG_PAGE,
        caching: Caching::Uc,
        virtual_address: VirtAddr(address),
        writable: false,
        executable: false,
    })
}

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
