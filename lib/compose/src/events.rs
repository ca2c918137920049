//! Resolving events: what the kernel does when a subject raises each of its
//! source events.
//!
//! A source event resolves to the subject that has the same global event as
//! a target event ([`EventTargets`]): `async` and `ipi` become
//! [`SourceEvent::Async`] (events are not injected into subjects yet, and
//! an idle CPU notices a cross-CPU event on its own, so `ipi` needs no
//! interrupt today), `switch` becomes [`SourceEvent::Switch`], `self`
//! [`SourceEvent::SelfEvent`] on the subject's own target number, and
//! `kernel` events their [`KernelAction`] (the policy and the kernel share
//! that type). A channel with an event
//! adds a source event on its writer whose target is the channel's first
//! reader. The result is the kernel's own type, so the spec writer copies
//! it as it is; a kernel action this kernel version does not implement
//! (`unmask_irq`) is refused here.
//!
//! The mapping between the policy's `onFault` and the kernel's fault
//! action, both ways (the report speaks the policy's words), lives here too.

use std::collections::HashMap;

use septum_abi::SubjectId;
use septum_abi::hypercall::MAX_EVENTS;
use septum_kerncore::spec::{FaultAction, SourceEvent};

use crate::error::{ComposeError, fail};
use crate::input::{EventMode, KernelAction, OnFault, SubjectInput, SystemInput};
use crate::system::SourceEventOut;

/// Where a global event is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTarget {
    /// Receiving subject.
    pub subject: SubjectId,
    /// Its target event number.
    pub target_event: u8,
    /// Vector injected on delivery, if any.
    pub vector: Option<u8>,
}

/// The receiver of each global event, by index into
/// [`SystemInput::events`].
pub type EventTargets = HashMap<usize, EventTarget>;

/// Who receives each global event (the first target wins; validation makes
/// it unique).
pub fn targets(input: &SystemInput) -> EventTargets {
    let mut targets = EventTargets::new();
    for (si, s) in input.subjects.iter().enumerate() {
        for t in &s.target_events {
            targets.entry(t.event).or_insert(EventTarget {
                subject: SubjectId(si as u16),
                target_event: t.id,
                vector: t.vector,
            });
        }
    }
    targets
}

/// A policy kernel action as the kernel gets it (the policy and the
/// kernel share one `KernelAction` type).
///
/// Fails for an action this kernel version does not implement
/// (`unmask_irq`), naming it.
pub fn kernel_action(action: KernelAction) -> Result<KernelAction, String> {
    match action {
        KernelAction::UnmaskIrq => Err(format!(
            "kernel action \"{}\" is not supported by this kernel version",
            action.policy_name()
        )),
        // Every other action has its decision in kerncore's `exits`.
        supported => Ok(supported),
    }
}

/// The kernel's fault action for the policy's `onFault`.
pub const fn fault_action(on_fault: OnFault) -> FaultAction {
    match on_fault {
        OnFault::StopSystem => FaultAction::StopSystem,
        OnFault::StopSubject => FaultAction::StopSubject,
        // Without its monitor's spec (`crate::monitor::fault_action`
        // builds it) a monitored subject fails closed.
        OnFault::Monitor => FaultAction::StopSystem,
    }
}

/// The policy's `onFault` spelling of a fault action (for the report).
pub const fn on_fault_name(action: FaultAction) -> &'static str {
    match action {
        FaultAction::StopSystem => "stopSystem",
        FaultAction::StopSubject => "stopSubject",
        FaultAction::Monitor(_) => "monitor",
    }
}

/// Every source event of subject `id` (`s`), sorted by number.
pub fn resolve(
    input: &SystemInput,
    id: SubjectId,
    s: &SubjectInput,
    targets: &EventTargets,
) -> Result<Vec<SourceEventOut>, ComposeError> {
    let mut out = Vec::new();
    for e in &s.source_events {
        let event = &input.events[e.event];
        let (action, vector) = match event.mode {
            EventMode::Kernel => {
                match event.action {
                    Some(a) => (
                        SourceEvent::Kernel(kernel_action(a).map_err(|e| {
                            ComposeError::new(format!("subject \"{}\": {e}", s.name))
                        })?),
                        None,
                    ),
                    None => {
                        return fail(format!(
                            "event \"{}\": kernel event without action",
                            event.name
                        ));
                    }
                }
            }
            mode => {
                let Some(&EventTarget {
                    subject: target,
                    target_event,
                    vector,
                }) = targets.get(&e.event)
                else {
                    return fail(format!("event \"{}\" has no target subject", event.name));
                };
                let action = match mode {
                    EventMode::Switch => SourceEvent::Switch {
                        target,
                        target_event,
                    },
                    EventMode::SelfEvent if target == id => SourceEvent::SelfEvent { target_event },
                    EventMode::SelfEvent => {
                        return fail(format!(
                            "self event \"{}\" targets another subject \"{}\"",
                            event.name,
                            input.subjects[target.index()].name
                        ));
                    }
                    _ => SourceEvent::Async {
                        target,
                        target_event,
                    },
                };
                (action, vector)
            }
        };
        out.push(SourceEventOut {
            id: e.id,
            logical: e.logical.clone(),
            event: event.name.clone(),
            mode: event.mode,
            action,
            vector,
        });
    }
    // A channel's event goes from its writer to its first reader.
    for end in s.channels.iter().filter(|c| c.writer) {
        let channel = &input.channels[end.channel];
        let (Some(mode), Some(number)) = (channel.has_event, end.event) else {
            continue;
        };
        let reader = input.subjects.iter().enumerate().find_map(|(ri, r)| {
            r.channels
                .iter()
                .find(|c| !c.writer && c.channel == end.channel)
                .and_then(|c| {
                    Some(EventTarget {
                        subject: SubjectId(ri as u16),
                        target_event: c.event?,
                        vector: c.vector,
                    })
                })
        });
        let Some(reader) = reader else {
            continue;
        };
        let action = match mode {
            EventMode::Switch => SourceEvent::Switch {
                target: reader.subject,
                target_event: reader.target_event,
            },
            _ => SourceEvent::Async {
                target: reader.subject,
                target_event: reader.target_event,
            },
        };
        out.push(SourceEventOut {
            id: number,
            logical: end.logical.clone(),
            event: format!("channel:{}", channel.name),
            mode,
            action,
            vector: reader.vector,
        });
    }
    out.sort_by_key(|e| e.id);
    if let Some(pair) = out.windows(2).find(|p| p[0].id == p[1].id) {
        return fail(format!(
            "subject \"{}\": source event number {} is used twice",
            s.name, pair[0].id
        ));
    }
    if let Some(e) = out.iter().find(|e| usize::from(e.id) >= MAX_EVENTS) {
        return fail(format!(
            "subject \"{}\": source event number {} is above 63",
            s.name, e.id
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_kernel_actions_pass_unchanged() {
        for &action in KernelAction::ALL {
            if action != KernelAction::UnmaskIrq {
                assert_eq!(kernel_action(action), Ok(action));
            }
        }
        assert_eq!(KernelAction::SystemPanic.policy_name(), "panic");
    }

    #[test]
    fn unmask_irq_is_refused_by_name() {
        assert_eq!(
            kernel_action(KernelAction::UnmaskIrq),
            Err("kernel action \"unmask_irq\" is not supported by this kernel version".into())
        );
    }

    #[test]
    fn fault_actions_keep_the_policy_spelling() {
        for (on_fault, name) in [
            (OnFault::StopSystem, "stopSystem"),
            (OnFault::StopSubject, "stopSubject"),
        ] {
            assert_eq!(on_fault_name(fault_action(on_fault)), name);
        }
        // A monitored subject's action comes from `crate::monitor`.
        assert_eq!(
            on_fault_name(FaultAction::Monitor(septum_kerncore::spec::MonitorSpec {
                monitor: SubjectId(1),
                event: 0,
                state: septum_abi::PhysAddr(0x1000),
                exits: septum_kerncore::spec::ExitSet::EMPTY.with(0),
            })),
            "monitor"
        );
    }
}
