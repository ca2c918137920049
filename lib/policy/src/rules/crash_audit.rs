//! The crash-audit reader: a subject's `<crashAudit logical
//! virtualAddress>` maps the kernel's crash-audit region (docs/crash.md)
//! read-only into it, so that one subject can read the records the
//! previous boot left (docs/policy.md, "Crash-audit reader").
//!
//! One reader at most: the records name every subject and hold their
//! registers, so each reader is a flow from every subject to it that the
//! policy should show once, in one place. A `vm` subject cannot be the
//! reader: it has no info page to find the region by name. The address
//! must be page aligned, as every mapping.

use super::common::{DiagnosticExt, PAGE};
use crate::diag::Diagnostics;
use crate::model::{Policy, Profile};
use crate::rule::{Category, Rule};

rule! {
    /// The crash-audit reader is a native subject and maps the region at a
    /// page-aligned virtual address.
    READER = "subjects-crash-audit-reader" in Subjects;
    fn reader(policy, out) {
        for subject in &policy.subjects {
            let Some(grant) = &subject.crash_audit else {
                continue;
            };
            if subject.profile.value == Profile::Vm {
                out.error(
                    READER.id,
                    grant.span,
                    format!(
                        "subject \"{}\" is a vm subject and cannot read the crash-audit region",
                        subject.name.as_str()
                    ),
                )
                .help("name a native subject as the crash-audit reader");
            }
            let va = grant.virtual_address;
            if !va.auto && !va.value.0.is_multiple_of(PAGE) {
                out.error(
                    READER.id,
                    va.span,
                    format!(
                        "crash-audit virtual address {:#x} of subject \"{}\" is not 4 KiB aligned",
                        va.value.0,
                        subject.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// At most one subject reads the crash-audit region.
    ONE = "subjects-crash-audit-one" in Subjects;
    fn one(policy, out) {
        let mut first = None;
        for subject in &policy.subjects {
            let Some(grant) = &subject.crash_audit else {
                continue;
            };
            match first {
                None => first = Some((subject, grant)),
                Some((reader, reader_grant)) => {
                    out.error(
                        ONE.id,
                        grant.span,
                        format!(
                            "subject \"{}\" cannot read the crash-audit region: subject \"{}\" already does",
                            subject.name.as_str(),
                            reader.name.as_str()
                        ),
                    )
                    .label(reader_grant.span, "the crash-audit reader")
                    .help("name one crash-audit reader per system");
                }
            }
        }
    }
}
