//! PCI configuration space for the native subjects that own PCI devices:
//! what an access to ports 0xCF8 (CONFIG_ADDRESS) and 0xCFC-0xCFF
//! (CONFIG_DATA) does (docs/kernel.md, "PCI configuration space").
//!
//! The ports are one machine-wide pair, so no subject may have them in its
//! I/O bitmap: every access exits, and [`decide`] says what it does. Each
//! subject has its own CONFIG_ADDRESS latch (the arch layer keeps one word
//! per subject): a dword write to 0xCF8 sets it, a dword read returns it.
//! A CONFIG_DATA access goes to the hardware only when the latch is enabled
//! and names a device the subject owns, and then with an address the kernel
//! builds from the owned device's bus/device/function and the register
//! number alone: the latch's other bits never reach the hardware, so no
//! access sequence reaches another device (the host tests check this as a
//! property).
//!
//! - A read of another device, or with the latch disabled, returns all
//!   ones: what a read of an absent device returns on real hardware.
//! - A write to another device is a fault of the subject ([`Action::Fault`]:
//!   reported, then its `onFault` decides): writing into another device's
//!   configuration is an isolation breach attempt, not a probe. A write with
//!   the latch disabled is dropped, as the hardware drops it.
//! - A write to its own device goes to the hardware unless it touches a
//!   register that could move the device in the physical address space or
//!   re-target its interrupts: the BARs (0x10-0x27), the expansion ROM BAR
//!   (0x30-0x33), the MSI capability's control, address and data, and the
//!   MSI-X capability's control. Such a write is dropped whole and the
//!   subject resumes ([`Action::Ignore`]): refused silently, because
//!   drivers routinely size BARs by writing all ones and restoring the
//!   old value (a fault would stop every stock driver), and a dropped
//!   write leaves the register as the composer's address map assumes it.
//!   A BAR sizing read-back therefore shows the unchanged BAR, never a size.
//!   One exception: for a function whose MSIs the kernel routes
//!   (`msi::MsiSpec::allow`) the owner may change MSI Enable and, with
//!   interrupt remapping, MSI-X Enable and Function Mask
//!   ([`Protected::owner_bits`]): such a write becomes [`Action::Merge`],
//!   which takes exactly those bits from the subject and keeps every other
//!   bit of the register as the hardware has it.
//!
//! The capabilities are found by walking the device's capability list
//! ([`capabilities`]) with the hardware's own registers when a write needs
//! them: the list is read-only hardware state, so walking it at write time
//! gives the answer a walk at boot would, without per-device boot state.
//!
//! Accesses of other sizes or alignments: CONFIG_ADDRESS takes only dword
//! accesses (a byte at 0xCF9 is the chipset's reset control, granted as a
//! port of its own or not at all); CONFIG_DATA takes byte, word and dword
//! accesses within the dword, as the hardware does. Anything else
//! (string I/O, a misaligned access) is left to the fault path.

use septum_abi::SubjectId;

use crate::vtd::SourceId;

/// CONFIG_ADDRESS.
pub const CONFIG_ADDRESS: u16 = 0xcf8;
/// The first CONFIG_DATA port (0xCFC-0xCFF).
pub const CONFIG_DATA: u16 = 0xcfc;
/// The value a read of an absent device returns.
pub const ABSENT: u32 = 0xffff_ffff;
/// CONFIG_ADDRESS bit 31: configuration cycles enabled.
const ENABLE: u32 = 1 << 31;
/// The first BAR and the end of the last (type 0 header).
const BARS: (u8, u8) = (0x10, 0x28);
/// The expansion ROM BAR (type 0 header).
const ROM: (u8, u8) = (0x30, 0x34);
/// Status register bit 4 ("capabilities list"), as a bit of dword 0x04.
const STATUS_CAPABILITIES: u32 = 1 << 20;
/// The capabilities pointer.
const CAPABILITIES_POINTER: u8 = 0x34;
/// Capability ids.
const CAP_MSI: u8 = 0x05;
const CAP_MSIX: u8 = 0x11;
/// At most this many capabilities fit in the 192 bytes after the header
/// (4 bytes each at least); a longer walk is a loop.
const MAX_CAPABILITIES: usize = 48;

/// A native subject's ownership of one PCI function (the composer emits
/// these as `pub static PCI_CONFIG` beside `SPEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciGrant {
    /// The owner.
    pub subject: SubjectId,
    /// Its bus/device/function.
    pub device: SourceId,
}

/// The PCI functions each subject owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciConfigSpec {
    /// One entry per owned function, in subject order.
    pub grants: &'static [PciGrant],
}

impl PciConfigSpec {
    /// Whether `subject` owns any PCI function (then its 0xCF8/0xCFC
    /// accesses are emulated; otherwise they stay faults).
    pub fn emulates(&self, subject: SubjectId) -> bool {
        self.grants.iter().any(|g| g.subject == subject)
    }

    /// Whether `subject` owns `device`.
    pub fn owns(&self, subject: SubjectId, device: SourceId) -> bool {
        self.grants
            .iter()
            .any(|g| g.subject == subject && g.device == device)
    }
}

/// An I/O access to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortAccess {
    /// The port.
    pub port: u16,
    /// Its size in bytes (1, 2 or 4).
    pub size: u8,
    /// `Some(value)` for a write (the low `size` bytes count).
    pub write: Option<u32>,
}

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Set the subject's latch to this value.
    Latch(u32),
    /// Return this value to the subject (the low `size` bytes).
    Value(u32),
    /// Write `address` to CONFIG_ADDRESS, then read `size` bytes at `port`
    /// and return them to the subject.
    Read {
        /// The hardware CONFIG_ADDRESS (an owned function's).
        address: u32,
        /// The CONFIG_DATA port (0xCFC-0xCFF).
        port: u16,
    },
    /// Write `address` to CONFIG_ADDRESS, then `value` (`size` bytes) to
    /// `port`.
    Write {
        /// The hardware CONFIG_ADDRESS (an owned function's).
        address: u32,
        /// The CONFIG_DATA port (0xCFC-0xCFF).
        port: u16,
        /// The value.
        value: u32,
    },
    /// Write `address` to CONFIG_ADDRESS, read `size` bytes at `port`,
    /// replace the bits in `bits` with `value`'s and write them back: a
    /// write to a protected register of which the owner may change only
    /// some bits (MSI/MSI-X enables, `msi`).
    Merge {
        /// The hardware CONFIG_ADDRESS (an owned function's).
        address: u32,
        /// The CONFIG_DATA port (0xCFC-0xCFF).
        port: u16,
        /// The subject's value.
        value: u32,
        /// The bits (of the `size` bytes at `port`) taken from `value`.
        bits: u32,
    },
    /// Drop the write; the subject resumes.
    Ignore,
    /// A fault of the subject (a write to a device it does not own, or an
    /// access the emulation does not take).
    Fault,
}

/// The protected capability registers of one function, as byte ranges
/// `[start, end)` of its configuration space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protected {
    /// MSI message control, address and data.
    pub msi: Option<(u8, u8)>,
    /// MSI-X message control.
    pub msix: Option<(u8, u8)>,
    /// The owner may set MSI Enable (the kernel routes the function's
    /// MSIs; set by `msi::MsiSpec::allow`, never by the walk).
    pub owner_msi: bool,
    /// The owner may set MSI-X Enable and Function Mask (likewise, and
    /// only with interrupt remapping).
    pub owner_msix: bool,
}

impl Protected {
    /// The bits of the dword at `register` (dword-aligned) that the owner
    /// may write although they are protected: MSI Enable (bit 16 of the
    /// MSI capability's first dword), MSI-X Enable and Function Mask (bits
    /// 31 and 30 of the MSI-X capability's first dword), as allowed.
    pub fn owner_bits(&self, register: u8) -> u32 {
        // A range starts at its capability's control word (capability + 2),
        // so its dword is the capability's.
        let control = |range: Option<(u8, u8)>| range.map(|(start, _)| start & 0xfc);
        let mut bits = 0;
        if self.owner_msi && control(self.msi) == Some(register) {
            bits |= 1 << 16;
        }
        if self.owner_msix && control(self.msix) == Some(register) {
            bits |= 1 << 31 | 1 << 30;
        }
        bits
    }
}

/// Walk the capability list of a function; `read(offset)` reads the dword
/// at `offset` (dword-aligned) of its configuration space. A list that
/// loops or runs into the header ends the walk.
pub fn capabilities(mut read: impl FnMut(u8) -> u32) -> Protected {
    let mut found = Protected::default();
    if read(0x04) & STATUS_CAPABILITIES == 0 {
        return found;
    }
    let mut pointer = (read(CAPABILITIES_POINTER) & 0xfc) as u8;
    for _ in 0..MAX_CAPABILITIES {
        if pointer < 0x40 {
            break;
        }
        let header = read(pointer);
        let id = header as u8;
        let control = (header >> 16) as u16;
        // The last byte of the capability is at most 0xff, so these stay
        // below 256 (`pointer` <= 0xfc).
        match id {
            CAP_MSI => {
                // Control at +2, address at +4 (+8 high with 64-bit
                // addresses, control bit 7), then the 16-bit data.
                let end = if control & (1 << 7) != 0 { 0x0e } else { 0x0a };
                found.msi = Some((pointer.saturating_add(2), pointer.saturating_add(end)));
            }
            CAP_MSIX => {
                found.msix = Some((pointer.saturating_add(2), pointer.saturating_add(4)));
            }
            _ => {}
        }
        pointer = ((header >> 8) & 0xfc) as u8;
    }
    found
}

/// Whether bytes `[start, start + size)` overlap `[range.0, range.1)`.
fn overlaps(start: u16, size: u16, range: (u8, u8)) -> bool {
    start < u16::from(range.1) && u16::from(range.0) < start.saturating_add(size)
}

/// Whether a write of `size` bytes at `offset` touches a protected
/// register.
pub fn protected(offset: u8, size: u8, caps: &Protected) -> bool {
    let (start, size) = (u16::from(offset), u16::from(size));
    [Some(BARS), Some(ROM), caps.msi, caps.msix]
        .into_iter()
        .flatten()
        .any(|range| overlaps(start, size, range))
}

/// The hardware CONFIG_ADDRESS of register dword `register` of `device`.
pub const fn hardware_address(device: SourceId, register: u8) -> u32 {
    ENABLE | (device.0 as u32) << 8 | (register & 0xfc) as u32
}

/// Decide the access `access` of `subject`, whose latch holds `latch`.
/// `caps(device)` walks an owned device's capability list; it is called
/// only for a write to an owned device outside the header's BARs.
pub fn decide(
    spec: &PciConfigSpec,
    subject: SubjectId,
    latch: u32,
    access: PortAccess,
    caps: impl FnOnce(SourceId) -> Protected,
) -> Action {
    let PortAccess { port, size, write } = access;
    if port == CONFIG_ADDRESS {
        return match (size, write) {
            (4, Some(value)) => Action::Latch(value),
            (4, None) => Action::Value(latch),
            _ => Action::Fault,
        };
    }
    let byte = port.wrapping_sub(CONFIG_DATA);
    let fits =
        matches!(size, 1 | 2 | 4) && byte < 4 && byte.checked_rem(u16::from(size)) == Some(0);
    if !fits {
        return Action::Fault;
    }
    // Bus, device and function: latch bits 23:8.
    let device = SourceId((latch >> 8) as u16);
    let register = (latch & 0xfc) as u8;
    let enabled = latch & ENABLE != 0;
    let owned = enabled && spec.owns(subject, device);
    let address = hardware_address(device, register);
    match write {
        None if owned => Action::Read { address, port },
        None => Action::Value(ABSENT),
        Some(_) if !enabled => Action::Ignore,
        Some(_) if !owned => Action::Fault,
        Some(value) => {
            // `byte` < 4, so this is the register's byte offset.
            let offset = register | byte as u8;
            if protected(offset, size, &Protected::default()) {
                return Action::Ignore;
            }
            let caps = caps(device);
            if protected(offset, size, &caps) {
                // The owner's bits of the dword, as bits of the `size`
                // bytes at `port` (`byte` < 4, `size` <= 4).
                let shifted = caps
                    .owner_bits(register)
                    .wrapping_shr(u32::from(byte).wrapping_mul(8));
                let width = match size {
                    1 => 0xff,
                    2 => 0xffff,
                    _ => u32::MAX,
                };
                let bits = shifted & width;
                if bits == 0 {
                    Action::Ignore
                } else {
                    Action::Merge {
                        address,
                        port,
                        value,
                        bits,
                    }
                }
            } else {
                Action::Write {
                    address,
                    port,
                    value,
                }
            }
        }
    }
}

/// The Rust source of `pub static PCI_CONFIG` for the generated `spec.rs`.
#[cfg(any(test, feature = "emit"))]
pub fn emit_source(grants: &[PciGrant]) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    // Writing to a `String` cannot fail.
    let _ = writeln!(
        out,
        "/// PCI functions owned by subjects (docs/kernel.md, \"PCI configuration space\")."
    );
    let _ = writeln!(
        out,
        "#[allow(dead_code, reason = \"the kernel reads it; host tests compiling a spec do not\")]"
    );
    let _ = writeln!(
        out,
        "pub static PCI_CONFIG: septum_kerncore::pcicfg::PciConfigSpec = \
         septum_kerncore::pcicfg::PciConfigSpec {{"
    );
    let _ = writeln!(
        out,
        "    grants: &[{}",
        if grants.is_empty() { "]," } else { "" }
    );
    for g in grants {
        let _ = writeln!(
            out,
            "        septum_kerncore::pcicfg::PciGrant {{ subject: septum_abi::SubjectId({}), \
             device: septum_kerncore::vtd::SourceId({:#06x}) }},",
            g.subject.0, g.device.0
        );
    }
    if !grants.is_empty() {
        let _ = writeln!(out, "    ],");
    }
    let _ = writeln!(out, "}};");
    out
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: SubjectId = SubjectId(0);
    const B: SubjectId = SubjectId(1);
    /// 00:01.1 (Bochs' PIIX3 IDE) owned by A, 00:03.0 by B.
    const IDE: SourceId = SourceId::new(0, 1, 1);
    const NIC: SourceId = SourceId::new(0, 3, 0);
    const HOST: SourceId = SourceId::new(0, 0, 0);
    static GRANTS: [PciGrant; 2] = [
        PciGrant {
            subject: A,
            device: IDE,
        },
        PciGrant {
            subject: B,
            device: NIC,
        },
    ];
    const SPEC: PciConfigSpec = PciConfigSpec { grants: &GRANTS };
    /// MSI capability (64-bit) at 0x50, MSI-X at 0x70.
    const CAPS: Protected = Protected {
        msi: Some((0x52, 0x5e)),
        msix: Some((0x72, 0x74)),
        owner_msi: false,
        owner_msix: false,
    };
    /// The same function with its MSIs routed by the kernel (enables are
    /// the owner's, `msi::MsiSpec::allow`).
    const ROUTED: Protected = Protected {
        owner_msi: true,
        owner_msix: true,
        ..CAPS
    };

    fn access(port: u16, size: u8, write: Option<u32>) -> PortAccess {
        PortAccess { port, size, write }
    }

    fn at(device: SourceId, register: u8) -> u32 {
        hardware_address(device, register)
    }

    fn run(subject: SubjectId, latch: u32, a: PortAccess) -> Action {
        decide(&SPEC, subject, latch, a, |_| CAPS)
    }

    #[test]
    fn the_latch_is_the_subjects_own() {
        assert_eq!(
            run(A, 0, access(CONFIG_ADDRESS, 4, Some(0x8000_0000))),
            Action::Latch(0x8000_0000)
        );
        assert_eq!(
            run(A, 0x1234, access(CONFIG_ADDRESS, 4, None)),
            Action::Value(0x1234)
        );
        assert_eq!(run(A, 0, access(CONFIG_ADDRESS, 1, None)), Action::Fault);
        assert_eq!(run(A, 0, access(CONFIG_ADDRESS, 2, Some(0))), Action::Fault);
    }

    #[test]
    fn reads_of_the_own_device_reach_it_and_others_read_as_absent() {
        assert_eq!(
            run(A, at(IDE, 0), access(CONFIG_DATA, 4, None)),
            Action::Read {
                address: at(IDE, 0),
                port: CONFIG_DATA
            }
        );
        assert_eq!(
            run(A, at(IDE, 0) | 2, access(CONFIG_DATA + 2, 2, None)),
            Action::Read {
                address: at(IDE, 0),
                port: CONFIG_DATA + 2
            }
        );
        assert_eq!(
            run(A, at(HOST, 0), access(CONFIG_DATA, 4, None)),
            Action::Value(ABSENT)
        );
        assert_eq!(
            run(A, at(NIC, 0), access(CONFIG_DATA, 4, None)),
            Action::Value(ABSENT)
        );
        assert_eq!(
            run(A, at(IDE, 0) & !ENABLE, access(CONFIG_DATA, 4, None)),
            Action::Value(ABSENT)
        );
    }

    #[test]
    fn writes_outside_the_own_device_are_faults() {
        assert_eq!(
            run(A, at(HOST, 4), access(CONFIG_DATA, 4, Some(0))),
            Action::Fault
        );
        assert_eq!(
            run(A, at(NIC, 4), access(CONFIG_DATA, 2, Some(0))),
            Action::Fault
        );
        // Disabled: the hardware would drop it, so does the kernel.
        assert_eq!(
            run(A, at(NIC, 4) & !ENABLE, access(CONFIG_DATA, 4, Some(0))),
            Action::Ignore
        );
    }

    #[test]
    fn bars_rom_and_msi_writes_are_dropped() {
        for register in [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30] {
            assert_eq!(
                run(A, at(IDE, register), access(CONFIG_DATA, 4, Some(ABSENT))),
                Action::Ignore,
                "{register:#x}"
            );
        }
        assert_eq!(
            run(A, at(IDE, 0x24), access(CONFIG_DATA + 3, 1, Some(0))),
            Action::Ignore
        );
        for (register, port) in [(0x50, 2), (0x54, 0), (0x58, 0), (0x5c, 0), (0x70, 2)] {
            assert_eq!(
                run(A, at(IDE, register), access(CONFIG_DATA + port, 2, Some(0))),
                Action::Ignore,
                "{register:#x}"
            );
        }
        // The command register, the MSI header byte and MSI mask bits go
        // through.
        for (register, port) in [
            (0x04, 0),
            (0x28, 0),
            (0x34, 0),
            (0x50, 0),
            (0x60, 0),
            (0x74, 0),
        ] {
            assert_eq!(
                run(A, at(IDE, register), access(CONFIG_DATA + port, 2, Some(7))),
                Action::Write {
                    address: at(IDE, register),
                    port: CONFIG_DATA + port,
                    value: 7
                },
                "{register:#x}"
            );
        }
    }

    #[test]
    fn owners_of_routed_msis_change_only_the_enables() {
        let routed = |register: u8, port: u16, size: u8, value: u32| {
            decide(
                &SPEC,
                A,
                at(IDE, register),
                access(CONFIG_DATA + port, size, Some(value)),
                |_| ROUTED,
            )
        };
        // MSI control (word at 0x52): only MSI Enable.
        assert_eq!(
            routed(0x50, 2, 2, 0xffff),
            Action::Merge {
                address: at(IDE, 0x50),
                port: CONFIG_DATA + 2,
                value: 0xffff,
                bits: 1
            }
        );
        // The whole dword: the same bit, at 16.
        assert_eq!(
            routed(0x50, 0, 4, 0x0001_0000),
            Action::Merge {
                address: at(IDE, 0x50),
                port: CONFIG_DATA,
                value: 0x0001_0000,
                bits: 1 << 16
            }
        );
        // MSI-X control's high byte: Enable and Function Mask.
        assert_eq!(
            routed(0x70, 3, 1, 0xc0),
            Action::Merge {
                address: at(IDE, 0x70),
                port: CONFIG_DATA + 3,
                value: 0xc0,
                bits: 0xc0
            }
        );
        // Its low byte (table size) and the MSI address and data: dropped.
        assert_eq!(routed(0x70, 2, 1, 0xff), Action::Ignore);
        for register in [0x54, 0x58, 0x5c] {
            assert_eq!(routed(register, 0, 4, 0), Action::Ignore, "{register:#x}");
        }
        // BARs stay dropped whatever the capabilities say.
        assert_eq!(routed(0x10, 0, 4, ABSENT), Action::Ignore);
        // Without routes the enables are dropped as before.
        assert_eq!(
            run(A, at(IDE, 0x50), access(CONFIG_DATA + 2, 2, Some(1))),
            Action::Ignore
        );
    }

    #[test]
    fn misaligned_data_accesses_are_faults() {
        assert_eq!(
            run(A, at(IDE, 0), access(CONFIG_DATA + 1, 2, None)),
            Action::Fault
        );
        assert_eq!(
            run(A, at(IDE, 0), access(CONFIG_DATA + 2, 4, None)),
            Action::Fault
        );
        assert_eq!(run(A, at(IDE, 0), access(0xcf9, 1, None)), Action::Fault);
    }

    /// A fake configuration space: dwords by offset.
    fn space(dwords: &[(u8, u32)]) -> impl FnMut(u8) -> u32 + '_ {
        move |offset| {
            dwords
                .iter()
                .find(|(o, _)| *o == offset)
                .map_or(0, |(_, v)| *v)
        }
    }

    #[test]
    fn the_capability_walk_finds_msi_and_msix() {
        let dwords = [
            (0x04, STATUS_CAPABILITIES),
            (0x34, 0x40),
            // Power management at 0x40 -> MSI (32-bit) at 0x50 -> MSI-X at 0x60.
            (0x40, 0x0000_5001),
            (0x50, 0x0000_6005),
            (0x60, 0x0000_0011),
        ];
        assert_eq!(
            capabilities(space(&dwords)),
            Protected {
                msi: Some((0x52, 0x5a)),
                msix: Some((0x62, 0x64)),
                ..Protected::default()
            }
        );
        // 64-bit MSI.
        let dwords = [
            (0x04, STATUS_CAPABILITIES),
            (0x34, 0xfc),
            (0xfc, 0x0080_0005),
        ];
        assert_eq!(
            capabilities(space(&dwords)),
            Protected {
                msi: Some((0xfe, 0xff)),
                msix: None,
                ..Protected::default()
            }
        );
    }

    #[test]
    fn the_capability_walk_ends_on_loops_and_without_a_list() {
        let looped = [(0x04, STATUS_CAPABILITIES), (0x34, 0x40), (0x40, 0x4001)];
        assert_eq!(capabilities(space(&looped)), Protected::default());
        let none = [(0x34, 0x40), (0x40, 0x0005)];
        assert_eq!(capabilities(space(&none)), Protected::default());
    }

    #[test]
    fn the_spec_source_names_each_grant() {
        let text = emit_source(&GRANTS);
        assert!(text.contains("pub static PCI_CONFIG: septum_kerncore::pcicfg::PciConfigSpec"));
        assert!(text.contains(
            "subject: septum_abi::SubjectId(0), device: septum_kerncore::vtd::SourceId(0x0009)"
        ));
        assert!(emit_source(&[]).contains("grants: &[],"));
    }

    fn any_access() -> impl Strategy<Value = PortAccess> {
        (
            prop_oneof![Just(CONFIG_ADDRESS), CONFIG_ADDRESS..=CONFIG_DATA + 4],
            prop_oneof![Just(1u8), Just(2), Just(4), 0u8..=8],
            proptest::option::of(any::<u32>()),
            // Latch values aimed at the interesting devices now and then.
            prop_oneof![
                any::<u32>(),
                (0u8..=0xff).prop_map(|r| at(IDE, r)),
                (0u8..=0xff).prop_map(|r| at(NIC, r)),
                (0u8..=0xff).prop_map(|r| at(HOST, r) | 0x7f00_0000),
            ],
        )
            .prop_map(|(port, size, write, latch)| {
                // Half the CONFIG_ADDRESS writes set an aimed latch value.
                let write = match (port, write) {
                    (CONFIG_ADDRESS, Some(v)) if v & 1 == 0 => Some(latch),
                    (_, w) => w,
                };
                PortAccess { port, size, write }
            })
    }

    proptest! {
        // No failure persistence: it needs the file system, which Miri
        // isolates; few cases under Miri, which is slow.
        #![proptest_config(ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// No access sequence of subject A reaches a function other than
        /// its own, or writes a protected register of its own beyond the
        /// MSI/MSI-X enables the kernel leaves to the owner.
        #[test]
        fn no_sequence_reaches_another_device(
            accesses in proptest::collection::vec(any_access(), 1..64)
        ) {
            let mut latch = 0u32;
            for a in accesses {
                match decide(&SPEC, A, latch, a, |_| ROUTED) {
                    Action::Latch(value) => latch = value,
                    Action::Read { address, port } => {
                        prop_assert_eq!(address & !0xfc, ENABLE | u32::from(IDE.0) << 8);
                        prop_assert!((CONFIG_DATA..CONFIG_DATA + 4).contains(&port));
                        prop_assert!(a.write.is_none());
                    }
                    Action::Write { address, port, .. } => {
                        prop_assert_eq!(address & !0xfc, ENABLE | u32::from(IDE.0) << 8);
                        prop_assert!((CONFIG_DATA..CONFIG_DATA + 4).contains(&port));
                        let offset = (address & 0xfc) as u8 | (port - CONFIG_DATA) as u8;
                        prop_assert!(!protected(offset, a.size, &CAPS));
                        prop_assert!(u16::from(offset) + u16::from(a.size) <= 0x100);
                    }
                    Action::Merge { address, port, bits, .. } => {
                        prop_assert_eq!(address & !0xfc, ENABLE | u32::from(IDE.0) << 8);
                        prop_assert!((CONFIG_DATA..CONFIG_DATA + 4).contains(&port));
                        // Only the enables, nothing else of the register.
                        let shift = u32::from(port - CONFIG_DATA) * 8;
                        let allowed = ROUTED.owner_bits((address & 0xfc) as u8);
                        prop_assert!(bits != 0);
                        prop_assert_eq!((bits << shift) & !allowed, 0);
                    }
                    Action::Value(_) | Action::Ignore | Action::Fault => {}
                }
            }
        }
    }
}
