//! Timed events: a subject's `<timedEvent page event>` names a 4 KiB
//! region only that subject maps (writable: it writes the deadline), and
//! one of its own target events, which the kernel marks pending when the
//! deadline passes (docs/kernel.md, "Timed events").
//!
//! The page is the subject's alone because the kernel acts on what it
//! holds: another subject that could write it would choose when this
//! subject's event fires, an information flow the policy does not show.

use std::collections::HashMap;

use super::common::{DiagnosticExt, subjects};
use crate::diag::Diagnostics;
use crate::model::Policy;
use crate::rule::{Category, Rule};

/// Size of a timed-event page (`septum_abi::timed::TIMED_PAGE_SIZE`).
const PAGE_SIZE: u64 = septum_abi::timed::TIMED_PAGE_SIZE;

rule! {
    /// A timed-event page is a defined region of one 4 KiB page, mapped
    /// writable by its subject and by no other subject, and the page of one
    /// subject only.
    PAGE = "subjects-timed-page" in Subjects;
    fn page(policy, out) {
        let mut first_use = HashMap::new();
        for (idx, subject) in subjects(policy) {
            let Some(timed) = &subject.timed_event else {
                continue;
            };
            let name = timed.page.name.as_str();
            let Some(region) = timed.page.get() else {
                out.error(
                    PAGE.id,
                    timed.page.name.span,
                    format!("memory region \"{name}\" is not defined"),
                )
                .help("define a 4 KiB region under the system's <memory> element");
                continue;
            };
            let size = &policy.region(region).size;
            if size.value != PAGE_SIZE {
                out.error(
                    PAGE.id,
                    timed.page.name.span,
                    format!("timed-event page \"{name}\" is not 4 KiB"),
                )
                .label(size.span, "its size");
            }
            if let Some(&other) = first_use.get(&region) {
                let other: &crate::model::Subject = policy.subject(other);
                out.error(
                    PAGE.id,
                    timed.page.name.span,
                    format!(
                        "timed-event page \"{name}\" is already the timed-event page of subject \"{}\"",
                        other.name.as_str()
                    ),
                )
                .help("give every subject its own timed-event page");
            } else {
                first_use.insert(region, idx);
            }
            let mut mapped_writable = false;
            for (mapper, s) in subjects(policy) {
                for map in s.maps.iter().filter(|m| m.physical.get() == Some(region)) {
                    if mapper == idx {
                        mapped_writable |= map.writable.value;
                    } else {
                        out.error(
                            PAGE.id,
                            map.physical.name.span,
                            format!(
                                "subject \"{}\" maps \"{name}\", the timed-event page of subject \"{}\", \
                                 which only that subject may map",
                                s.name.as_str(),
                                subject.name.as_str()
                            ),
                        )
                        .label(timed.page.name.span, "the timed-event page");
                    }
                }
            }
            if !mapped_writable {
                out.error(
                    PAGE.id,
                    timed.page.name.span,
                    format!(
                        "subject \"{}\" does not map its timed-event page \"{name}\" writable",
                        subject.name.as_str()
                    ),
                )
                .help("map it in the subject's <memory> with writable=\"true\": the subject writes the deadline");
            }
        }
    }
}

rule! {
    /// A timed event names one of the subject's own target events (by its
    /// logical name): the kernel marks it pending on the subject itself.
    EVENT = "subjects-timed-event" in Subjects;
    fn event(policy, out) {
        for subject in &policy.subjects {
            let Some(timed) = &subject.timed_event else {
                continue;
            };
            let name = timed.event.value.as_str();
            if !subject.targets.iter().any(|t| t.logical.value == name) {
                out.error(
                    EVENT.id,
                    timed.event.span,
                    format!(
                        "\"{name}\" is not a target event of subject \"{}\"",
                        subject.name.as_str()
                    ),
                )
                .help("name the logical name of an <event> in the subject's <events><target>");
            }
        }
    }
}
