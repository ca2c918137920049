//! Writing the VT-d spec ([`crate::vtd::VtdSpec`]) as `pub static VTD`,
//! which the composer appends to `spec.rs` after `SPEC` and `CRASH_AUDIT`.
//!
//! It is a static of its own for the reason `CRASH_AUDIT` is: kernel code
//! and tests that build `SystemSpec` literals stay unchanged. Same rules as
//! the rest of the emitter: exhaustive destructuring, fully qualified
//! paths, hex for addresses, decimal for counts.

use alloc::string::String;

use septum_abi::units::DmaAddr;

use super::{Block, Dec, EmitRust, Hex, RustWriter, Str};
use crate::spec::Storage;
use crate::vtd::{DmaWindow, DomainSpec, IommuSpec, SourceId, VtdDevice, VtdSpec};

/// Path of the VT-d module in the generated source.
const VTD: &str = "septum_kerncore::vtd";

/// `pub static VTD: septum_kerncore::vtd::VtdSpec = ...;` with its doc line.
pub fn vtd_source<S: Storage>(vtd: &VtdSpec<S>) -> String {
    let mut w = RustWriter::new();
    w.text(format_args!(
        "/// The VT-d tables and remapping units (docs/kernel.md, VT-d).\n"
    ));
    w.text(format_args!(
        "#[allow(dead_code, reason = \"the kernel reads it; host tests compiling a spec do not\")]\n"
    ));
    w.text(format_args!("pub static VTD: {VTD}::VtdSpec = "));
    vtd.emit_rust(&mut w);
    w.out.push_str(";\n");
    w.finish()
}

impl EmitRust for DmaAddr {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!(
            "septum_abi::units::DmaAddr({:#x})",
            self.get()
        ));
    }
}

impl EmitRust for SourceId {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{VTD}::SourceId({:#06x})", self.0));
    }
}

impl<S: Storage> EmitRust for VtdSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let VtdSpec {
            iommus,
            root_table,
            interrupt_table,
            interrupt_entries_log2,
            devices,
            domains,
        } = self;
        w.block(
            format_args!("{VTD}::VtdSpec"),
            &[
                ("iommus", &Block(S::items(iommus))),
                ("root_table", root_table),
                ("interrupt_table", interrupt_table),
                (
                    "interrupt_entries_log2",
                    &Dec((*interrupt_entries_log2).into()),
                ),
                ("devices", &Block(S::items(devices))),
                ("domains", &Block(S::items(domains))),
            ],
        );
    }
}

impl EmitRust for IommuSpec {
    fn emit_rust(&self, w: &mut RustWriter) {
        let IommuSpec {
            registers,
            fault_recording_offset,
            iotlb_offset,
            agaw,
        } = self;
        w.inline(
            format_args!("{VTD}::IommuSpec"),
            &[
                ("registers", registers),
                (
                    "fault_recording_offset",
                    &Hex((*fault_recording_offset).into()),
                ),
                ("iotlb_offset", &Hex((*iotlb_offset).into())),
                ("agaw", &Dec((*agaw).into())),
            ],
        );
    }
}

impl<S: Storage> EmitRust for VtdDevice<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let VtdDevice {
            source,
            name,
            domain,
        } = self;
        w.inline(
            format_args!("{VTD}::VtdDevice"),
            &[
                ("source", source),
                ("name", &Str(S::text(name))),
                ("domain", &Dec((*domain).into())),
            ],
        );
    }
}

impl<S: Storage> EmitRust for DomainSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let DomainSpec { name, windows } = self;
        w.block(
            format_args!("{VTD}::DomainSpec"),
            &[
                ("name", &Str(S::text(name))),
                ("windows", &Block(S::items(windows))),
            ],
        );
    }
}

impl EmitRust for DmaWindow {
    fn emit_rust(&self, w: &mut RustWriter) {
        let DmaWindow {
            address,
            physical,
            size,
            writable,
        } = self;
        w.inline(
            format_args!("{VTD}::DmaWindow"),
            &[
                ("address", address),
                ("physical", physical),
                ("size", &Hex(*size)),
                ("writable", writable),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use alloc::string::ToString;
    use alloc::vec;

    use septum_abi::PhysAddr;

    use super::*;
    use crate::spec::{Owned, Static};

    mod golden {
        include!("../../golden/vtd_spec.rs");
    }

    const GOLDEN_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/vtd_spec.rs");
    const GOLDEN: &str = include_str!("../../golden/vtd_spec.rs");

    fn sample() -> VtdSpec<Owned> {
        VtdSpec {
            iommus: vec![IommuSpec {
                registers: PhysAddr(0xfed9_0000),
                fault_recording_offset: 0x220,
                iotlb_offset: 0xf8,
                agaw: 39,
            }],
            root_table: PhysAddr(0x20_0000),
            interrupt_table: PhysAddr(0x20_1000),
            interrupt_entries_log2: 8,
            devices: vec![VtdDevice {
                source: SourceId::new(0, 3, 0),
                name: "edu".to_string(),
                domain: 0,
            }],
            domains: vec![DomainSpec {
                name: "edu_domain".to_string(),
                windows: vec![DmaWindow {
                    address: DmaAddr(0x10_0000),
                    physical: PhysAddr(0x30_0000),
                    size: 0x2000,
                    writable: true,
                }],
            }],
        }
    }

    #[test]
    fn the_vtd_spec_round_trips_through_its_golden_source() {
        let text = vtd_source(&sample());
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(GOLDEN_PATH, &text).unwrap();
        }
        assert!(
            text == GOLDEN,
            "{GOLDEN_PATH} differs; rerun with UPDATE_GOLDEN=1 and review"
        );
        let compiled: &VtdSpec<Static> = &golden::VTD;
        assert_eq!(vtd_source(compiled), text);
        assert_eq!(compiled.device_name(SourceId::new(0, 3, 0)), Some("edu"));
    }
}
