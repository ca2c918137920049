//! Fault actions and resets: a subject's `onFault`, for `restartSubject`
//! its restart limit and fallback, and a `<reset/>` target event say
//! something the kernel can do.
//!
//! A restart re-initialises every region the subject writes from the
//! image (docs/kernel.md, "Subject restart"). That is only sound for memory
//! the subject alone maps: a region another subject also maps would either
//! keep the faulty subject's state across the restart or change under the
//! other subject's feet, so such a map is refused (channels are the shared
//! memory a restart handles: their readers see a new epoch).

use super::common::DiagnosticExt;
use crate::diag::Diagnostics;
use crate::model::{EventMode, OnFault, Policy, Subject};

/// Whether `subject` can be restarted: its fault action is
/// `restartSubject`, or one of its target events resets it.
fn restartable(subject: &Subject) -> bool {
    subject.on_fault.value == OnFault::RestartSubject
        || subject.targets.iter().any(|t| t.reset.is_some())
}
use crate::rule::{Category, Rule};

rule! {
    /// A restart limit lies in 1..=65535: at least one restart, and no more
    /// than the kernel counts.
    RESTART_LIMIT_RANGE = "subjects-restart-limit-range" in Subjects;
    fn restart_limit_range(policy, out) {
        for subject in &policy.subjects {
            let Some(limit) = &subject.restart_limit else {
                continue;
            };
            if limit.value == 0 || limit.value > u64::from(u16::MAX) {
                out.error(
                    RESTART_LIMIT_RANGE.id,
                    limit.span,
                    format!(
                        "restart limit {} of subject \"{}\" is not in 1..=65535",
                        limit.value,
                        subject.name.as_str()
                    ),
                )
                .help("for a subject that must never restart, use onFault=\"stopSubject\"");
            }
        }
    }
}

rule! {
    /// `restartLimit` and `onRestartLimit` go with `onFault="restartSubject"`
    /// only: elsewhere they would be ignored.
    RESTART_UNUSED = "subjects-restart-unused" in Subjects;
    fn restart_unused(policy, out) {
        for subject in &policy.subjects {
            if subject.on_fault.value == OnFault::RestartSubject {
                continue;
            }
            let spans = [
                subject.restart_limit.as_ref().map(|l| ("restartLimit", l.span)),
                subject.on_restart_limit.as_ref().map(|f| ("onRestartLimit", f.span)),
            ];
            for (attribute, span) in spans.into_iter().flatten() {
                out.error(
                    RESTART_UNUSED.id,
                    span,
                    format!(
                        "`{attribute}` of subject \"{}\" has no effect: its onFault is not \
                         \"restartSubject\"",
                        subject.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The action after the last restart is `stopSubject` or `stopSystem`,
    /// never another restart.
    RESTART_FALLBACK = "subjects-restart-fallback" in Subjects;
    fn restart_fallback(policy, out) {
        for subject in &policy.subjects {
            let Some(fallback) = &subject.on_restart_limit else {
                continue;
            };
            if fallback.value == OnFault::RestartSubject {
                out.error(
                    RESTART_FALLBACK.id,
                    fallback.span,
                    format!(
                        "subject \"{}\" cannot restart after its last restart",
                        subject.name.as_str()
                    ),
                )
                .help("use onRestartLimit=\"stopSubject\" or \"stopSystem\"");
            }
        }
    }
}

rule! {
    /// A restartable subject (`restartSubject`, or a `<reset/>` target) maps
    /// no `<memory>` region that another subject also maps: its restart
    /// re-initialises every region it writes.
    RESTART_SHARED_MEMORY = "subjects-restart-shared-memory" in Subjects;
    fn restart_shared_memory(policy, out) {
        for (s, subject) in policy.subjects.iter().enumerate() {
            if !restartable(subject) {
                continue;
            }
            for map in subject.maps.iter().filter(|m| m.writable.value) {
                let Some(region) = map.physical.get() else {
                    continue;
                };
                let other = policy.subjects.iter().enumerate().find_map(|(o, other)| {
                    let shares = o != s
                        && other.maps.iter().any(|m| m.physical.get() == Some(region));
                    shares.then_some(other)
                });
                let Some(other) = other else {
                    continue;
                };
                out.error(
                    RESTART_SHARED_MEMORY.id,
                    map.span,
                    format!(
                        "subject \"{}\" can be restarted but writes memory region \"{}\", \
                         which subject \"{}\" also maps",
                        subject.name.as_str(),
                        map.physical.name.as_str(),
                        other.name.as_str()
                    ),
                )
                .label(other.name.span, "maps it too")
                .help("a restart re-initialises the region; share data through a channel instead");
            }
        }
    }
}

rule! {
    /// A `<reset/>` target event belongs to an `async` or `ipi` event: another
    /// subject raises it, and the kernel restarts the receiver before its
    /// next entry.
    RESET_MODE = "events-reset-mode" in Events;
    fn reset_mode(policy, out) {
        for subject in &policy.subjects {
            for target in &subject.targets {
                let (Some(span), Some(event)) = (target.reset, target.physical.get()) else {
                    continue;
                };
                let event = policy.event(event);
                if matches!(event.mode.value, EventMode::Async | EventMode::Ipi) {
                    continue;
                }
                out.error(
                    RESET_MODE.id,
                    span,
                    format!(
                        "target event \"{}\" of subject \"{}\" resets it, but event \"{}\" has \
                         mode `{}`",
                        target.logical.as_str(),
                        subject.name.as_str(),
                        event.name.as_str(),
                        event.mode.value.as_str()
                    ),
                )
                .help("a reset is raised by another subject: give the event mode \"async\" or \"ipi\"");
            }
        }
    }
}
