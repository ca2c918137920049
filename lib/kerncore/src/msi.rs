//! Message-signalled interrupts (MSI, MSI-X) of PCI devices that subjects
//! own: which message goes where, what the kernel writes into a device's
//! MSI capability at boot, and what the owner may change itself.
//!
//! The composer turns every `<msi number>` of an `<irq>` a subject is
//! granted by name into an [`MsiRoute`]: message `k` of the device raises
//! IRQ number `n` (the policy's, 48..=220), which arrives as host vector
//! `32 + n` (the same allocation as an I/O APIC line, [`irq::host_vector`])
//! on the owner's CPU and is injected into the owner at the grant's vector
//! plus `k`. The routes are emitted as `pub static MSI` beside `SPEC`.
//!
//! The kernel, not the subject, writes the message address and data
//! ([`MsiSpec::message`]):
//!
//! - with interrupt remapping (an IOMMU in the hardware description), the
//!   remappable format: handle = IRQ number, subhandle valid, data 0, so
//!   message `k` of a multi-message MSI uses remapping table entry
//!   `n + k`, whose entry (built by the composer, `vtd`) names this device
//!   as the only requester allowed, the owner's CPU and host vector
//!   `32 + n + k`;
//! - without, the compatibility format: physical destination the owner's
//!   APIC id, fixed delivery, edge, data the host vector. The device
//!   replaces the low bits of the data of message `k` with `k`, so a
//!   multi-message MSI needs a power-of-two count and a first host vector
//!   aligned to it ([`compatible_block`]; the composer checks).
//!
//! At boot ([`msi_setup`]) the MSI capability gets that address and data,
//! Multiple Message Enable for the routed messages (at most what the
//! device offers), and MSI Enable clear; MSI-X gets Enable clear and
//! Function Mask set ([`msix_setup`]) and, with interrupt remapping, its
//! table ([`msix_table`] finds it through its BAR) entry `k` routed
//! message `k`, every entry masked ([`msix_entry`]); the table must lie in
//! the device memory the composer maps for the kernel ([`DeviceWindow`],
//! [`MsiSpec::mapped`]). The owner's configuration writes (kerncore
//! `pcicfg`) may then change only the MSI Enable bit, and, with interrupt
//! remapping only, MSI-X Enable and Function Mask ([`MsiSpec::allow`]);
//! every other bit of those registers, and the address and data, keep the
//! kernel's value. Per-vector mask bits lie outside the protected
//! registers and are the owner's anyway.
//!
//! MSI-X keeps its table in a BAR, which the owner maps: it can write any
//! address and data there. The kernel writes the table once at boot but
//! does not emulate it. It allows MSI-X only where interrupt remapping
//! confines it: compatibility-format
//! messages are blocked (the kernel never sets GCMD.CFI), and a
//! remappable message delivers only through a table entry that names this
//! device as requester, so whatever the owner writes, its device raises
//! only its own composed IRQs, at their host vectors, on the owner's CPU;
//! anything else is blocked and reported as a VT-d fault. Without
//! interrupt remapping MSI-X stays disabled (its enable bit is not the
//! owner's), and only MSI, whose address and data live in configuration
//! space the kernel controls, is routed.
//!
//! A routed MSI arrives like an I/O APIC line: an external-interrupt exit
//! with the host vector; [`MsiSpec::on_interrupt`] marks the owner's
//! vector pending in the same [`PendingVectors`] and the same injection
//! path takes it from there. MSIs are edge-triggered: nothing to mask.

use septum_abi::{PhysAddr, SubjectId};

use crate::irq::{self, IrqLine, PendingVectors, Vector};
use crate::pcicfg::Protected;
use crate::spec::ApicId;
use crate::vtd::SourceId;

/// Capability id of MSI.
pub const CAP_MSI: u8 = 0x05;
/// Capability id of MSI-X.
pub const CAP_MSIX: u8 = 0x11;
/// MSI message control: MSI Enable.
pub const MSI_ENABLE: u16 = 1;
/// MSI message control: 64-bit address capable.
pub const MSI_64_BIT: u16 = 1 << 7;
/// MSI-X message control: Function Mask.
pub const MSIX_FUNCTION_MASK: u16 = 1 << 14;
/// MSI-X message control: MSI-X Enable.
pub const MSIX_ENABLE: u16 = 1 << 15;
/// The interrupt address range's base (SDM Vol. 3A 11.11.1).
const ADDRESS_BASE: u32 = 0xfee0_0000;

/// One message of a device, routed to a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiRoute {
    /// The device (its requester id).
    pub device: SourceId,
    /// Message number within the device: MSI message `k` (multi-message),
    /// MSI-X table entry `k`. A device's routes are consecutive from 0 and
    /// their IRQ numbers consecutive too (the composer's order).
    pub message: u8,
    /// The IRQ number (the policy's `<msi number>`, 48..=220): the
    /// interrupt remapping table index; host vector `32 + irq`.
    pub irq: IrqLine,
    /// The owner.
    pub owner: SubjectId,
    /// Local APIC id of the owner's CPU.
    pub apic_id: ApicId,
    /// Vector injected into the owner (the grant's vector plus `message`).
    pub vector: Vector,
}

/// Device memory of a routed device that the composer maps for the kernel
/// (identity, read-write, uncached, no execute), so that it can write the
/// device's MSI-X table at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceWindow {
    /// The device.
    pub device: SourceId,
    /// First byte (page aligned).
    pub start: PhysAddr,
    /// Bytes (whole pages).
    pub size: u64,
}

/// Every routed message of the system (generated as `pub static MSI`).
#[derive(Debug)]
pub struct MsiSpec {
    /// The machine has interrupt remapping (an IOMMU): messages use the
    /// remappable format and MSI-X may be enabled by the owner.
    pub remapped: bool,
    /// Every routed message, grouped by device, message 0 first.
    pub routes: &'static [MsiRoute],
    /// With interrupt remapping: the device memory of every routed device
    /// (where its MSI-X table may be), mapped for the kernel.
    pub windows: &'static [DeviceWindow],
}

/// A message's address (the low 32 bits; the high 32 are 0) and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Message address.
    pub address: u32,
    /// Message data (16 bits used).
    pub data: u16,
}

impl MsiSpec {
    /// No MSIs.
    pub const NONE: MsiSpec = MsiSpec {
        remapped: false,
        routes: &[],
        windows: &[],
    };

    /// The route whose IRQ arrives as `host`.
    pub fn route(&self, host: Vector) -> Option<&MsiRoute> {
        let irq = irq::line_of(host)?;
        self.routes.iter().find(|route| route.irq == irq)
    }

    /// An interrupt arrived as host vector `host`: if it is a routed MSI,
    /// mark its owner's vector pending and return the owner.
    pub fn on_interrupt(&self, pending: &PendingVectors, host: Vector) -> Option<SubjectId> {
        let route = self.route(host)?;
        pending.set(route.owner, route.vector);
        Some(route.owner)
    }

    /// The routed messages of `device`, message 0 first.
    pub fn messages(&self, device: SourceId) -> impl Iterator<Item = &MsiRoute> + '_ {
        self.routes.iter().filter(move |r| r.device == device)
    }

    /// Whether `device` has routed messages.
    pub fn routes_device(&self, device: SourceId) -> bool {
        self.routes.iter().any(|r| r.device == device)
    }

    /// The devices with routed messages, each once (routes are grouped by
    /// device), with the route of their message 0 and their message count.
    pub fn devices(&self) -> impl Iterator<Item = (&MsiRoute, usize)> + '_ {
        self.routes
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                i.checked_sub(1)
                    .and_then(|previous| self.routes.get(previous))
                    .is_none_or(|p| p.device != r.device)
            })
            .map(|(_, first)| (first, self.messages(first.device).count()))
    }

    /// The address and data of `route`'s message as the kernel writes it
    /// (see the module doc); `None` in compatibility format for a route
    /// whose APIC id does not fit the 8-bit destination field or whose IRQ
    /// has no host vector (the composer refuses both).
    pub fn message(&self, route: &MsiRoute) -> Option<Message> {
        if self.remapped {
            let handle = u32::from(route.irq.0);
            // Interrupt format 1 (bit 4), SHV (bit 3), handle 14:0 in bits
            // 19:5 and handle bit 15 in bit 2 (VT-d spec 5.1.5.2).
            let address = ADDRESS_BASE | (handle & 0x7fff) << 5 | 1 << 4 | 1 << 3;
            return Some(Message { address, data: 0 });
        }
        let host = irq::host_vector(route.irq)?;
        let destination = u8::try_from(route.apic_id.0).ok()?;
        Some(Message {
            address: ADDRESS_BASE | u32::from(destination) << 12,
            data: u16::from(host.0),
        })
    }

    /// Whether `[start, start + length)` lies in one window of `device`
    /// (so the kernel may write there: the composer mapped it).
    pub fn mapped(&self, device: SourceId, start: PhysAddr, length: u64) -> bool {
        let Some(end) = start.get().checked_add(length) else {
            return false;
        };
        self.windows.iter().any(|w| {
            w.device == device
                && w.start.get() <= start.get()
                && w.start.get().checked_add(w.size).is_some_and(|e| end <= e)
        })
    }

    /// `caps` with the bits the kernel lets `subject` write in `device`'s
    /// MSI/MSI-X registers: none unless the device's messages are routed
    /// to `subject`; then MSI Enable, and MSI-X Enable and Function Mask
    /// with interrupt remapping only.
    pub fn allow(&self, subject: SubjectId, device: SourceId, caps: Protected) -> Protected {
        let routed = self
            .routes
            .iter()
            .any(|r| r.device == device && r.owner == subject);
        Protected {
            owner_msi: routed && caps.msi.is_some(),
            owner_msix: routed && self.remapped && caps.msix.is_some(),
            ..caps
        }
    }
}

/// Whether `count` messages from host vector `first` work in
/// compatibility format: the device puts the message number in the low
/// bits of the data, so `count` must be a power of two (at most 32, MSI's
/// limit) and `first` a multiple of it.
pub const fn compatible_block(first: Vector, count: usize) -> bool {
    count.is_power_of_two() && count <= 32 && (first.0 as usize).is_multiple_of(count)
}

/// Capability offsets of a function's MSI and MSI-X capabilities (the
/// first of each), walking its list as `pcicfg::capabilities` does:
/// `read(offset)` reads the dword at `offset`; a function without a list
/// (status bit 4 clear) has none; a list that loops or points into the
/// header ends the walk.
pub fn capability_offsets(mut read: impl FnMut(u8) -> u32) -> (Option<u8>, Option<u8>) {
    /// At most this many capabilities fit after the header.
    const MAX_CAPABILITIES: usize = 48;
    let (mut msi, mut msix) = (None, None);
    if read(0x04) & 1 << 20 == 0 {
        return (None, None);
    }
    let mut pointer = (read(0x34) & 0xfc) as u8;
    for _ in 0..MAX_CAPABILITIES {
        if pointer < 0x40 {
            break;
        }
        let header = read(pointer);
        match header as u8 {
            CAP_MSI => msi = msi.or(Some(pointer)),
            CAP_MSIX => msix = msix.or(Some(pointer)),
            _ => {}
        }
        pointer = ((header >> 8) & 0xfc) as u8;
    }
    (msi, msix)
}

/// Where an MSI capability's registers are: offsets in configuration
/// space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsiLayout {
    /// The capability (its dword holds id, next pointer and control).
    pub capability: u8,
    /// Message address (low 32 bits).
    pub address: u8,
    /// Message upper address, for a 64-bit capable function.
    pub upper_address: Option<u8>,
    /// The dword whose low 16 bits are the message data.
    pub data: u8,
}

/// The layout of the MSI capability at `capability` with message control
/// `control` (PCI Local Bus spec 6.8.1); `None` for an offset that would
/// run past configuration space.
pub fn msi_layout(capability: u8, control: u16) -> Option<MsiLayout> {
    let wide = control & MSI_64_BIT != 0;
    Some(MsiLayout {
        capability,
        address: capability.checked_add(4)?,
        upper_address: if wide {
            Some(capability.checked_add(8)?)
        } else {
            None
        },
        data: capability.checked_add(if wide { 12 } else { 8 })?,
    })
}

/// The message control the kernel writes at boot for `count` routed
/// messages: MSI Enable clear, Multiple Message Enable the smallest power
/// of two covering `count`, capped at what the function offers (Multiple
/// Message Capable), every other bit kept.
pub const fn msi_setup(control: u16, count: usize) -> u16 {
    let capable = (control >> 1) & 0b111;
    // log2 of the power of two covering `count` (MSI's limit: 32 = 2^5).
    let wanted: u16 = match count {
        0..=1 => 0,
        2 => 1,
        3..=4 => 2,
        5..=8 => 3,
        9..=16 => 4,
        _ => 5,
    };
    let enable = if wanted < capable { wanted } else { capable };
    (control & !(MSI_ENABLE | 0b111 << 4)) | enable << 4
}

/// The MSI-X message control the kernel writes at boot: disabled, every
/// vector masked by the Function Mask; the table is the owner's (see the
/// module doc).
pub const fn msix_setup(control: u16) -> u16 {
    (control & !MSIX_ENABLE) | MSIX_FUNCTION_MASK
}

/// MSI-X message control: Table Size (entries - 1).
pub const MSIX_TABLE_SIZE: u16 = 0x7ff;
/// Bytes of one MSI-X table entry.
pub const MSIX_ENTRY_BYTES: u64 = 16;

/// The physical address of an MSI-X table: `table` is the capability's
/// Table Offset/BIR dword, `bar(n)` reads BAR register `n` (0..=5) of the
/// function. `None` for a reserved BIR, an I/O BAR, or an address that
/// overflows.
pub fn msix_table(table: u32, mut bar: impl FnMut(u8) -> u32) -> Option<PhysAddr> {
    let bir = (table & 7) as u8;
    if bir > 5 {
        return None;
    }
    let low = bar(bir);
    if low & 1 != 0 {
        return None;
    }
    // Type 0b10: a 64-bit BAR, its upper half in the next register.
    let high = if (low >> 1) & 0b11 == 0b10 {
        if bir == 5 {
            return None;
        }
        bar(bir.checked_add(1)?)
    } else {
        0
    };
    let base = u64::from(high) << 32 | u64::from(low & !0xf);
    base.checked_add(u64::from(table & !7)).map(PhysAddr)
}

/// MSI-X table entry `k` as the kernel writes it at boot (address low,
/// address high, data, vector control): the route's message, masked
/// (vector control bit 0), so nothing is sent before the owner unmasks
/// it. An entry without a route gets address 0 and stays masked.
pub const fn msix_entry(message: Option<Message>) -> [u32; 4] {
    match message {
        Some(m) => [m.address, 0, m.data as u32, 1],
        None => [0, 0, 0, 1],
    }
}

/// The Rust source of `pub static MSI` for the generated `spec.rs`.
#[cfg(any(test, feature = "emit"))]
pub fn emit_source(
    remapped: bool,
    routes: &[MsiRoute],
    windows: &[DeviceWindow],
) -> alloc::string::String {
    use core::fmt::Write;
    const MSI: &str = "septum_kerncore::msi";
    let mut out = alloc::string::String::new();
    // Writing to a `String` cannot fail.
    let _ = writeln!(
        out,
        "/// MSI routes of owned PCI devices (docs/kernel.md, \"MSI and MSI-X\")."
    );
    let _ = writeln!(
        out,
        "#[allow(dead_code, reason = \"the kernel reads it; host tests compiling a spec do not\")]"
    );
    let _ = writeln!(out, "pub static MSI: {MSI}::MsiSpec = {MSI}::MsiSpec {{");
    let _ = writeln!(out, "    remapped: {remapped},");
    let _ = writeln!(
        out,
        "    routes: &[{}",
        if routes.is_empty() { "]," } else { "" }
    );
    for r in routes {
        let _ = writeln!(
            out,
            "        {MSI}::MsiRoute {{ device: septum_kerncore::vtd::SourceId({:#06x}), message: {}, \
             irq: septum_kerncore::irq::IrqLine({}), owner: septum_abi::SubjectId({}), apic_id: \
             septum_kerncore::spec::ApicId({}), vector: septum_kerncore::irq::Vector({}) }},",
            r.device.0, r.message, r.irq.0, r.owner.0, r.apic_id.0, r.vector.0
        );
    }
    if !routes.is_empty() {
        let _ = writeln!(out, "    ],");
    }
    let _ = writeln!(
        out,
        "    windows: &[{}",
        if windows.is_empty() { "]," } else { "" }
    );
    for w in windows {
        let _ = writeln!(
            out,
            "        {MSI}::DeviceWindow {{ device: septum_kerncore::vtd::SourceId({:#06x}), start: \
             septum_abi::PhysAddr({:#x}), size: {:#x} }},",
            w.device.0,
            w.start.get(),
            w.size
        );
    }
    if !windows.is_empty() {
        let _ = writeln!(out, "    ],");
    }
    let _ = writeln!(out, "}};");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const A: SubjectId = SubjectId(0);
    const B: SubjectId = SubjectId(1);
    const EDU: SourceId = SourceId::new(0, 3, 0);
    const NIC: SourceId = SourceId::new(0, 4, 0);

    static ROUTES: [MsiRoute; 3] = [
        MsiRoute {
            device: EDU,
            message: 0,
            irq: IrqLine(48),
            owner: A,
            apic_id: ApicId(0),
            vector: Vector(100),
        },
        MsiRoute {
            device: NIC,
            message: 0,
            irq: IrqLine(64),
            owner: B,
            apic_id: ApicId(2),
            vector: Vector(40),
        },
        MsiRoute {
            device: NIC,
            message: 1,
            irq: IrqLine(65),
            owner: B,
            apic_id: ApicId(2),
            vector: Vector(41),
        },
    ];
    static WINDOWS: [DeviceWindow; 1] = [DeviceWindow {
        device: NIC,
        start: PhysAddr(0xfeb4_0000),
        size: 0x4000,
    }];
    static REMAPPED: MsiSpec = MsiSpec {
        remapped: true,
        routes: &ROUTES,
        windows: &WINDOWS,
    };
    static COMPATIBLE: MsiSpec = MsiSpec {
        remapped: false,
        routes: &ROUTES,
        windows: &[],
    };

    #[test]
    fn an_msi_is_pending_for_its_owner_at_the_policy_vector() {
        let pending = PendingVectors::new();
        // IRQ 48 arrives as 32 + 48.
        assert_eq!(REMAPPED.on_interrupt(&pending, Vector(80)), Some(A));
        assert_eq!(pending.highest(A), Some(Vector(100)));
        assert!(!pending.any(B));
        assert_eq!(REMAPPED.on_interrupt(&pending, Vector(97)), Some(B));
        assert_eq!(pending.highest(B), Some(Vector(41)));
    }

    #[test]
    fn other_vectors_are_no_msis() {
        let pending = PendingVectors::new();
        for host in [0u8, 32, 79, 81, 98, 253, 255] {
            assert_eq!(REMAPPED.on_interrupt(&pending, Vector(host)), None);
        }
        assert!(!pending.any(A) && !pending.any(B));
        assert_eq!(MsiSpec::NONE.on_interrupt(&pending, Vector(80)), None);
    }

    #[test]
    fn remappable_messages_name_the_irq_as_handle() {
        // 0xfee0_0000 | 48 << 5 | IF | SHV.
        assert_eq!(
            REMAPPED.message(&ROUTES[0]),
            Some(Message {
                address: 0xfee0_0618,
                data: 0
            })
        );
        // Message 1 of the NIC: its own entry (MSI-X) or subhandle 1 of
        // entry 64 (MSI): both reach entry 65.
        assert_eq!(
            REMAPPED.message(&ROUTES[2]).unwrap().address >> 5 & 0x7fff,
            65
        );
    }

    #[test]
    fn compatibility_messages_name_cpu_and_host_vector() {
        assert_eq!(
            COMPATIBLE.message(&ROUTES[1]),
            Some(Message {
                address: 0xfee0_2000,
                data: 96
            })
        );
        let far = MsiRoute {
            apic_id: ApicId(256),
            ..ROUTES[0]
        };
        assert_eq!(COMPATIBLE.message(&far), None);
        assert!(REMAPPED.message(&far).is_some());
    }

    #[test]
    fn multi_message_blocks_must_be_aligned_powers_of_two() {
        assert!(compatible_block(Vector(96), 2));
        assert!(compatible_block(Vector(97), 1));
        assert!(!compatible_block(Vector(97), 2));
        assert!(!compatible_block(Vector(96), 3));
        assert!(compatible_block(Vector(128), 32));
        assert!(!compatible_block(Vector(0), 64));
    }

    #[test]
    fn devices_are_listed_once_with_their_counts() {
        let devices: std::vec::Vec<_> = REMAPPED
            .devices()
            .map(|(first, count)| (first.device, first.message, count))
            .collect();
        assert_eq!(devices, [(EDU, 0, 1), (NIC, 0, 2)]);
        assert_eq!(REMAPPED.messages(NIC).count(), 2);
        assert!(!REMAPPED.routes_device(SourceId::new(0, 5, 0)));
    }

    #[test]
    fn boot_control_values_disable_and_size() {
        // MMC = 8 (0b011), 64-bit, enabled by firmware: disabled, MME = 2
        // messages.
        let control = 0b011 << 1 | MSI_64_BIT | MSI_ENABLE;
        assert_eq!(msi_setup(control, 2), 0b011 << 1 | MSI_64_BIT | 0b001 << 4);
        // Three messages need four; a one-message function gets one.
        assert_eq!(msi_setup(0b011 << 1, 3) >> 4 & 0b111, 0b010);
        assert_eq!(msi_setup(0, 4) >> 4 & 0b111, 0);
        // Old MME bits are replaced.
        assert_eq!(msi_setup(0b111 << 4 | 0b101 << 1, 1) >> 4 & 0b111, 0);
        assert_eq!(msix_setup(MSIX_ENABLE | 7), MSIX_FUNCTION_MASK | 7);
    }

    #[test]
    fn msi_layouts_follow_the_address_width() {
        assert_eq!(
            msi_layout(0x50, 0),
            Some(MsiLayout {
                capability: 0x50,
                address: 0x54,
                upper_address: None,
                data: 0x58
            })
        );
        let wide = msi_layout(0x50, MSI_64_BIT).unwrap();
        assert_eq!((wide.upper_address, wide.data), (Some(0x58), 0x5c));
        assert_eq!(msi_layout(0xfc, MSI_64_BIT), None);
    }

    #[test]
    fn owners_may_enable_only_routed_devices_and_msix_only_with_remapping() {
        let caps = Protected {
            msi: Some((0x52, 0x5a)),
            msix: Some((0x62, 0x64)),
            ..Protected::default()
        };
        let remapped = REMAPPED.allow(A, EDU, caps);
        assert!(remapped.owner_msi && remapped.owner_msix);
        let compatible = COMPATIBLE.allow(A, EDU, caps);
        assert!(compatible.owner_msi && !compatible.owner_msix);
        // Another subject with access to the function: nothing.
        let other = REMAPPED.allow(B, EDU, caps);
        assert!(!other.owner_msi && !other.owner_msix);
        let unrouted = REMAPPED.allow(A, SourceId::new(0, 5, 0), caps);
        assert!(!unrouted.owner_msi && !unrouted.owner_msix);
        assert_eq!((unrouted.msi, unrouted.msix), (caps.msi, caps.msix));
        let msi_only = REMAPPED.allow(A, EDU, Protected { msix: None, ..caps });
        assert!(msi_only.owner_msi && !msi_only.owner_msix);
    }

    #[test]
    fn capabilities_are_found_once_and_loops_end() {
        let space = |dwords: &'static [(u8, u32)]| {
            move |offset: u8| {
                dwords
                    .iter()
                    .find(|(o, _)| *o == offset)
                    .map_or(0, |(_, v)| *v)
            }
        };
        // PM at 0x40 -> MSI at 0x50 -> MSI-X at 0xa0.
        let list = space(&[
            (0x04, 1 << 20),
            (0x34, 0x40),
            (0x40, 0x5001),
            (0x50, 0xa005),
            (0xa0, 0x0011),
        ]);
        assert_eq!(capability_offsets(list), (Some(0x50), Some(0xa0)));
        // A loop back to MSI: found once, the walk ends.
        let looped = space(&[(0x04, 1 << 20), (0x34, 0x50), (0x50, 0x5005)]);
        assert_eq!(capability_offsets(looped), (Some(0x50), None));
        // No list (status bit 4 clear), a pointer into the header.
        assert_eq!(
            capability_offsets(space(&[(0x34, 0x50), (0x50, 5)])),
            (None, None)
        );
        let header = space(&[(0x04, 1 << 20), (0x34, 0x10)]);
        assert_eq!(capability_offsets(header), (None, None));
    }

    #[test]
    fn msix_tables_are_found_through_their_bar() {
        // BAR3 (32-bit memory) at 0xfeb40000, table at offset 0 of it.
        let bars = |n: u8| [0, 0, 0xc041, 0xfeb4_0000, 0, 0][usize::from(n)];
        assert_eq!(msix_table(3, bars), Some(PhysAddr(0xfeb4_0000)));
        assert_eq!(msix_table(3 | 0x2000, bars), Some(PhysAddr(0xfeb4_2000)));
        // An I/O BAR, a reserved BIR.
        assert_eq!(msix_table(2, bars), None);
        assert_eq!(msix_table(6, bars), None);
        // A 64-bit BAR 0 (type 0b10) with its upper half in BAR 1.
        let wide = |n: u8| [0xe000_000c, 0x1, 0, 0, 0, 0][usize::from(n)];
        assert_eq!(msix_table(0x1000, wide), Some(PhysAddr(0x1_e000_1000)));
        // ... but not as BAR 5, which has no successor.
        assert_eq!(msix_table(5, |_| 0x4), None);
    }

    #[test]
    fn msix_entries_are_written_masked() {
        let message = REMAPPED.message(&ROUTES[1]);
        assert_eq!(msix_entry(message), [0xfee0_0818, 0, 0, 1]);
        assert_eq!(msix_entry(None), [0, 0, 0, 1]);
    }

    #[test]
    fn only_mapped_device_memory_may_be_written() {
        let table = PhysAddr(0xfeb4_0000);
        assert!(REMAPPED.mapped(NIC, table, 5 * MSIX_ENTRY_BYTES));
        assert!(REMAPPED.mapped(NIC, PhysAddr(0xfeb4_3ff0), 16));
        assert!(!REMAPPED.mapped(NIC, PhysAddr(0xfeb4_3ff0), 32));
        assert!(!REMAPPED.mapped(EDU, table, 16));
        assert!(!REMAPPED.mapped(NIC, PhysAddr(u64::MAX - 8), 16));
        assert!(!COMPATIBLE.mapped(NIC, table, 16));
    }

    #[test]
    fn the_emitted_source_names_every_route() {
        let text = emit_source(true, &ROUTES, &WINDOWS);
        assert!(text.contains(
            "septum_kerncore::msi::DeviceWindow { device: septum_kerncore::vtd::SourceId(0x0020), \
             start: septum_abi::PhysAddr(0xfeb40000), size: 0x4000 }"
        ));
        assert!(text.contains("pub static MSI: septum_kerncore::msi::MsiSpec"));
        assert!(text.contains("remapped: true,"));
        assert!(text.contains(
            "device: septum_kerncore::vtd::SourceId(0x0020), message: 1, irq: \
             septum_kerncore::irq::IrqLine(65), owner: septum_abi::SubjectId(1), apic_id: \
             septum_kerncore::spec::ApicId(2), vector: septum_kerncore::irq::Vector(41)"
        ));
        assert!(
            emit_source(false, &[], &[])
                .contains("remapped: false,\n    routes: &[],\n    windows: &[],\n};")
        );
    }
}
