//! Device interrupts of a composition: which IRQ line goes to which
//! subject, at which vector, through which I/O APIC.
//!
//! Every `<irq>` a subject is granted by name becomes a route
//! ([`septum_kerncore::irq::IrqRoute`]): the kernel programs the I/O APIC's
//! redirection entry of that line to the local APIC of the subject's CPU
//! and injects the grant's vector into the subject (docs/kernel.md,
//! "Device interrupts"). A whole-device grant routes no line: its lines stay
//! masked, because no vector was chosen for them, and a subject that polls
//! its device (as every subject did before routing existed) must not start
//! receiving interrupts it has no handler for.
//!
//! A route needs an I/O APIC in the hardware description (a device with
//! capability `ioapic` and its registers as `<memory>`) and a line below its
//! number of redirection entries; both are checked here, with the subject
//! named, because the kernel could not route the line otherwise.
//!
//! The MSIs of granted `<irq>`s become [`MsiRoute`]s ([`crate::msi`]).
//!
//! Every target event with `<inject_interrupt vector>` becomes an
//! [`EventVector`]: when the event is marked pending, so is its vector.
//! So does every channel reader whose `vector` the policy writes (the
//! anchor's `<reader vector>`): the channel's event is a target event of the
//! reader (the composer numbers it, [`crate::from_policy`]), and the
//! writer's `event` on the channel marks it pending, so the kernel injects
//! the reader's vector exactly as for `<inject_interrupt>`. A reader
//! vector the policy leaves out is still auto-assigned and listed on the
//! info page, but not injected: every system written before readers got
//! their vectors keeps its VMX controls and its entry path (a subject that
//! never enables interrupts would otherwise carry a pending vector
//! forever).
//!
//! A subject that owns a routed line or has such a target event gets an
//! interrupt entry: its VMX controls leave descriptor-table instructions to
//! it (LGDT/LIDT load its own tables, which the SDK builds;
//! [`crate::profile`]).

use septum_abi::{PhysAddr, SubjectId};
use septum_kerncore::irq::{self, EventVector, IrqLine, IrqRoute, Trigger, Vector};
use septum_kerncore::msi::{DeviceWindow, MsiRoute};
use septum_kerncore::spec::ApicId;

use crate::error::{ComposeError, Origin};
use crate::input::SystemInput;

/// The interrupt routes of a composition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interrupts {
    /// Registers of the I/O APIC, when any line is routed.
    pub ioapic: Option<PhysAddr>,
    /// One route per granted line, in subject and grant order.
    pub routes: Vec<IrqRoute>,
    /// Target events with `<inject_interrupt vector>`, in subject and
    /// target order, then channel readers with a written `vector`, in
    /// subject and channel order.
    pub event_vectors: Vec<EventVector>,
    /// MSIs of owned PCI devices ([`crate::msi`]), grouped by device.
    pub msis: Vec<MsiRoute>,
    /// The machine has interrupt remapping (MSIs in remappable format).
    pub remapped: bool,
    /// Device memory of MSI-routed devices the kernel maps for their MSI-X
    /// tables ([`crate::msi::windows`]).
    pub msi_windows: Vec<DeviceWindow>,
}

impl Interrupts {
    /// Whether `subject` is given vectors (it owns a routed line or has a
    /// target event with `<inject_interrupt>`), and so gets an interrupt
    /// entry.
    pub fn takes_interrupts(&self, subject: SubjectId) -> bool {
        self.routes.iter().any(|r| r.owner == subject)
            || self.event_vectors.iter().any(|e| e.subject == subject)
            || self.msis.iter().any(|m| m.owner == subject)
    }

    /// The `pub static INTERRUPTS` and `pub static MSI` source for
    /// `spec.rs`.
    pub fn source(&self) -> String {
        let mut source = irq::emit_source(self.ioapic, &self.routes, &self.event_vectors);
        source.push_str(&septum_kerncore::msi::emit_source(
            self.remapped,
            &self.msis,
            &self.msi_windows,
        ));
        source
    }
}

/// How a granted line signals: a PCI device's line (its INTx#) is
/// level-triggered, active low, whatever its number, also when the
/// firmware routed it to an ISA IRQ below 16 through the chipset's PIRQ
/// router (Bochs' e1000 arrives on IRQ 9: hardware/bochs-tigerlake-e1000.xml);
/// any other device's line follows the PC convention ([`Trigger::of`]:
/// ISA lines 0..=15 edge, active high).
pub fn trigger(line: IrqLine, pci: bool) -> Trigger {
    if pci {
        Trigger::Level
    } else {
        Trigger::of(line)
    }
}

/// Which subjects own which lines.
pub fn routes(input: &SystemInput) -> Result<Interrupts, ComposeError> {
    let mut routes = Vec::new();
    for (si, s) in input.subjects.iter().enumerate() {
        let id = SubjectId(u16::try_from(si).unwrap_or(u16::MAX));
        for grant in &s.devices {
            for g in &grant.irqs {
                let located = |message: String| {
                    ComposeError::new(format!("subject \"{}\": {message}", s.name))
                        .at(Origin::Subject(si))
                };
                let device = input
                    .hardware
                    .devices
                    .get(grant.device)
                    .map_or("?", |d| d.name.as_str());
                let Some(ioapic) = &input.hardware.ioapic else {
                    return Err(located(format!(
                        "IRQ {} of device \"{device}\" is granted, but the hardware has no I/O \
                         APIC (a device with capability \"ioapic\" and its registers as \
                         <memory>) to route it",
                        g.line
                    )));
                };
                let line = u8::try_from(g.line)
                    .ok()
                    .filter(|&l| l <= irq::MAX_LINE && u32::from(l) < ioapic.entries);
                let Some(line) = line else {
                    return Err(located(format!(
                        "IRQ {} of device \"{device}\" has no redirection entry in I/O APIC \
                         \"{}\" ({} entries)",
                        g.line, ioapic.name, ioapic.entries
                    )));
                };
                let Some(&apic_id) = input.hardware.apic_ids.get(s.cpu as usize) else {
                    return Err(located(format!("CPU {} has no local APIC id", s.cpu)));
                };
                let pci = input
                    .hardware
                    .devices
                    .get(grant.device)
                    .is_some_and(|d| d.pci.is_some());
                routes.push(IrqRoute {
                    line: IrqLine(line),
                    owner: id,
                    apic_id: ApicId(apic_id),
                    vector: Vector(g.vector),
                    trigger: trigger(IrqLine(line), pci),
                });
            }
        }
    }
    let mut event_vectors = Vec::new();
    for (si, s) in input.subjects.iter().enumerate() {
        let id = SubjectId(u16::try_from(si).unwrap_or(u16::MAX));
        for t in &s.target_events {
            if let Some(vector) = t.vector {
                event_vectors.push(EventVector {
                    subject: id,
                    target_event: t.id,
                    vector: Vector(vector),
                });
            }
        }
    }
    for (si, s) in input.subjects.iter().enumerate() {
        let id = SubjectId(u16::try_from(si).unwrap_or(u16::MAX));
        for end in s.channels.iter().filter(|c| !c.writer && c.injects) {
            let (Some(target_event), Some(vector)) = (end.event, end.vector) else {
                continue;
            };
            event_vectors.push(EventVector {
                subject: id,
                target_event,
                vector: Vector(vector),
            });
        }
    }
    let ioapic = if routes.is_empty() {
        None
    } else {
        input.hardware.ioapic.as_ref().map(|i| i.address)
    };
    let remapped = !input.vtd.iommus.is_empty();
    let msis = crate::msi::routes(input, &routes, &event_vectors, remapped)?;
    let msi_windows = crate::msi::windows(input, &msis, remapped);
    Ok(Interrupts {
        ioapic,
        routes,
        event_vectors,
        msis,
        remapped,
        msi_windows,
    })
}
