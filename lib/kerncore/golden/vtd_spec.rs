/// The VT-d tables and remapping units (docs/kernel.md, VT-d).
#[allow(dead_code, reason = "the kernel reads it; host tests compiling a spec do not")]
pub static VTD: septum_kerncore::vtd::VtdSpec = septum_kerncore::vtd::VtdSpec {
    iommus: &[
        septum_kerncore::vtd::IommuSpec { registers: septum_abi::PhysAddr(0xfed90000), fault_recording_offset: 0x220, iotlb_offset: 0xf8, agaw: 39 },
    ],
    root_table: septum_abi::PhysAddr(0x200000),
    interrupt_table: septum_abi::PhysAddr(0x201000),
    interrupt_entries_log2: 8,
    devices: &[
        septum_kerncore::vtd::VtdDevice { source: septum_kerncore::vtd::SourceId(0x0018), name: "edu", domain: 0 },
    ],
    domains: &[
        septum_kerncore::vtd::DomainSpec {
            name: "edu_domain",
            windows: &[
                septum_kerncore::vtd::DmaWindow { address: septum_abi::units::DmaAddr(0x100000), physical: septum_abi::PhysAddr(0x300000), size: 0x2000, writable: true },
            ],
        },
    ],
};
