//! Resolving events: what the kernel does when a subject raises each of its
//! source events.
//!
//! A source event resolves to the subject that has the same global event as
//! a target event ([`EventTargets`]): `async` and `ipi` become
//! [`SourceEvent::Async`] (an `ipi` event is also set in the subject's
//! `ipi_events` mask, [`ipi_mask`]: the kernel then interrupts the target's
//! CPU), `switch` becomes [`SourceEvent::Switch`], `self`
//! [`SourceEvent::SelfEvent`] on the subject's own target number, and
//! `kernel` events their [`KernelAction`] (the policy and the kernel share
//! that type). A channel with an event
//! adds a source event on its writer whose target is the channel's first
//! reader. The result is the kernel's own type, so the spec writer copies
//! it as it is; a kernel action this kernel version does not implement
//! would be refused here (every action is implemented today).
//!
//! The mapping between the policy's `onFault` and the kernel's fault
//! action, both ways (the report speaks the policy's words), lives here too.

use std::collections::HashMap;

use septum_abi::SubjectId;
use septum_abi::hypercall::MAX_EVENTS;
use septum_kerncore::lifecycle::{Fallback, RestartPolicy};
use septum_kerncore::spec::{FaultAction, SourceEvent};

use crate::error::{ComposeError, fail};
use crate::input::{EventMode, KernelAction, OnFault, SubjectInput, SystemInput};
use crate::system::SourceEventOut;

/// The kernel's `ipi_events` mask of a subject: bit `n` for each of its
/// source events `n` of mode `ipi` (the kernel then interrupts the target's
/// CPU after marking the event pending).
pub fn ipi_mask(events: &[SourceEventOut]) -> u64 {
    events
        .iter()
        .filter(|e| e.mode == EventMode::Ipi && e.id < 64)
        .fold(0, |mask, e| mask | 1 << e.id)
}

/// Where a global event is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTarget {
    /// Receiving subject.
    pub subject: SubjectId,
    /// Its target event number.
    pub target_event: u8,
    /// Vector injected on delivery, if any.
    pub vector: Option<u8>,
    /// Delivery restarts the receiver (`<reset/>`).
    pub reset: bool,
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
                reset: t.reset,
            });
        }
    }
    targets
}

/// A policy kernel action as the kernel gets it (the policy and the
/// kernel share one `KernelAction` type). Every action has its decision in
/// kerncore's `exits`, so none fails today; the `Result` is where a future
/// action the kernel does not implement yet is refused, naming it.
pub fn kernel_action(action: KernelAction) -> Result<KernelAction, String> {
    Ok(action)
}

/// The kernel's fault action for the policy's `onFault` (`restart`: the
/// subject's restart limit and fallback, used by `restartSubject`).
pub const fn fault_action(on_fault: OnFault, restart: RestartPolicy) -> FaultAction {
    match on_fault {
        OnFault::StopSystem => FaultAction::StopSystem,
        OnFault::StopSubject => FaultAction::StopSubject,
        OnFault::RestartSubject => FaultAction::RestartSubject(restart),
        // Without its monitor's spec (`crate::monitor::fault_action`
        // builds it) a monitored subject fails closed.
        OnFault::Monitor => FaultAction::StopSystem,
    }
}

/// A subject's restart limit and fallback (`restartLimit`,
/// `onRestartLimit`, or their defaults; the rules have checked the range
/// and that the fallback is no restart).
pub fn restart_policy(subject: &septum_policy::model::Subject) -> RestartPolicy {
    RestartPolicy {
        limit: u16::try_from(subject.restart_limit()).unwrap_or(u16::MAX),
        fallback: match subject.restart_fallback() {
            OnFault::StopSubject => Fallback::StopSubject,
            OnFault::StopSystem | OnFault::RestartSubject | OnFault::Monitor => {
                Fallback::StopSystem
            }
        },
    }
}

/// The policy's `onFault` spelling of a fault action (for the report).
pub const fn on_fault_name(action: FaultAction) -> &'static str {
    match action {
        FaultAction::StopSystem => "stopSystem",
        FaultAction::StopSubject => "stopSubject",
        FaultAction::RestartSubject(_) => "restartSubject",
        FaultAction::Monitor(_) => "monitor",
    }
}

/// The policy's `onRestartLimit` spelling of a fallback.
pub const fn fallback_name(fallback: Fallback) -> &'static str {
    match fallback {
        Fallback::StopSubject => "stopSubject",
        Fallback::StopSystem => "stopSystem",
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
                    reset,
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
                    _ if reset => SourceEvent::Reset {
                        target,
                        target_event,
                    },
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
                        reset: false,
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
            assert_eq!(kernel_action(action), Ok(action));
        }
        assert_eq!(KernelAction::SystemPanic.policy_name(), "panic");
    }

    #[test]
    fn fault_actions_keep_the_policy_spelling() {
        let restart = RestartPolicy {
            limit: 2,
            fallback: Fallback::StopSubject,
        };
        for on_fault in [
            OnFault::StopSystem,
            OnFault::StopSubject,
            OnFault::RestartSubject,
        ] {
            let name = on_fault_name(fault_action(on_fault, restart));
            assert_eq!(
                name,
                match on_fault {
                    OnFault::StopSystem => "stopSystem",
                    OnFault::StopSubject => "stopSubject",
                    OnFault::RestartSubject => "restartSubject",
                    OnFault::Monitor => "monitor",
                }
            );
        }
        assert_eq!(
            fault_action(OnFault::RestartSubject, restart),
            FaultAction::RestartSubject(restart)
        );
        // A monitored subject's action comes from `crate::monitor`.
        assert_eq!(
            on_fault_name(FaultAction::Monitor(septum_kerncore::spec::MonitorSpec {
                monitor: SubjectId(1),
                event: 0,
                state: septum_abi::PhysAddr(0x1000),
                exits: septum_kerncore::spec::ExitSet::EMPTY.with(0),
                virtio_console: None,
            })),
            "monitor"
        );
    }
}
