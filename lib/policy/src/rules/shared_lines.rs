//! Shared legacy IRQ lines and level-triggered routing: a device that can
//! assert a line routed to one subject belongs to that subject.
//!
//! PCI functions share legacy INTx lines (Bochs' e1000, USB controller and
//! ACPI function all sit on IRQ 9; real servers put dozens on IRQ 16), and
//! the description lists the line at every one of them. Routing such a
//! line to a subject is fine as long as every device that drives it is that
//! subject's: a line is level-triggered, so a device granted to another
//! subject (for its registers, without the line) could hold the line
//! asserted, and the owner would take one interrupt after every
//! `unmask_irq`, a stream of interrupts another partition controls.
//! `devices-irq-shared` already refuses a second owner of the line itself
//! (an `<irq>` grant or a whole-device grant); this rule refuses the grants
//! that leave the line out.

use std::collections::{HashMap, HashSet};

use super::common::{DiagnosticExt, subjects};
use crate::diag::Diagnostics;
use crate::model::{Policy, SubjectIdx};
use crate::rule::{Category, Rule};
use crate::source::Span;

rule! {
    /// A device that shares an IRQ line routed to a subject (an `<irq>`
    /// grant) is granted to no other subject, not even without the line:
    /// it could hold the level-triggered line asserted.
    IRQ_LINE_FOREIGN = "devices-irq-line-foreign" in Devices;
    fn irq_line_foreign(policy, out) {
        // Routed line -> its first owner, the owning device and the grant.
        let mut routed: HashMap<u32, (SubjectIdx, usize, Span)> = HashMap::new();
        for (s, subject) in subjects(policy) {
            for grant in &subject.devices {
                let Some(d) = grant.physical.get() else {
                    continue;
                };
                let Some(device) = policy.hardware.devices.get(d.index()) else {
                    continue;
                };
                for irq in &grant.irqs {
                    if let Some(line) = irq.physical.get().and_then(|i| device.irqs.get(i.index())) {
                        routed
                            .entry(line.number.value)
                            .or_insert((s, d.index(), irq.physical.name.span));
                    }
                }
            }
        }
        if routed.is_empty() {
            return;
        }
        for (s, subject) in subjects(policy) {
            for grant in &subject.devices {
                // A whole-device grant owns every line of the device:
                // `devices-irq-shared` reports it.
                if grant.is_whole_device() {
                    continue;
                }
                let Some(d) = grant.physical.get() else {
                    continue;
                };
                let Some(device) = policy.hardware.devices.get(d.index()) else {
                    continue;
                };
                // The device's IRQs this grant names (a set: a device may
                // have very many, and each is looked up once).
                let granted: HashSet<usize> = grant
                    .irqs
                    .iter()
                    .filter_map(|i| i.physical.get().map(|i| i.index()))
                    .collect();
                for (index, line) in device.irqs.iter().enumerate() {
                    let number = line.number.value;
                    let Some(&(owner, owner_device, owner_span)) = routed.get(&number) else {
                        continue;
                    };
                    // Granting the line itself is `devices-irq-shared`'s.
                    let grants_line = granted.contains(&index);
                    if owner == s || owner_device == d.index() || grants_line {
                        continue;
                    }
                    let Some(owner_device) = policy.hardware.devices.get(owner_device) else {
                        continue;
                    };
                    out.error(
                        IRQ_LINE_FOREIGN.id,
                        grant.physical.name.span,
                        format!(
                            "device \"{}\" of subject \"{}\" shares IRQ {number} with device \"{}\", \
                             whose line is routed to subject \"{}\": it could hold that \
                             level-triggered line asserted",
                            device.name.as_str(),
                            subject.name.as_str(),
                            owner_device.name.as_str(),
                            policy.subject(owner).name.as_str()
                        ),
                    )
                    .label(owner_span, "the line is routed here")
                    .help("grant both devices to one subject, or route neither line");
                }
            }
        }
    }
}
