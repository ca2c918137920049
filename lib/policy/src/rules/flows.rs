//! Flows: the integrator's `<flows><deny>` statements hold.
//!
//! The flows themselves are derived in [`crate::flows`]; these rules check
//! that each `<deny>` names two different subjects and that the policy
//! allows no path it forbids. A violation spells the path out hop by hop,
//! with a label at each hop's policy element, so the integrator sees which
//! grant to remove (or that the `<deny>` is wrong).

use super::common::DiagnosticExt;
use crate::diag::Diagnostics;
use crate::flows;
use crate::model::Policy;
use crate::rule::{Category, Rule};

rule! {
    /// A `<deny from to>` names subjects of the policy.
    DENY_UNKNOWN = "flows-deny-unknown-subject" in Flows;
    fn deny_unknown(policy, out) {
        for deny in &policy.flow_denials {
            for reference in [&deny.from, &deny.to] {
                if reference.get().is_none() {
                    out.error(
                        DENY_UNKNOWN.id,
                        reference.name.span,
                        format!("subject \"{}\" is not defined", reference.name.as_str()),
                    );
                }
            }
        }
    }
}

rule! {
    /// A `<deny>` names two different subjects: a subject always reaches
    /// itself.
    DENY_SELF = "flows-deny-self" in Flows;
    fn deny_self(policy, out) {
        for deny in &policy.flow_denials {
            if deny.from.get().is_some() && deny.from.get() == deny.to.get() {
                out.error(
                    DENY_SELF.id,
                    deny.to.name.span,
                    format!(
                        "a flow from \"{}\" to itself cannot be denied",
                        deny.from.name.as_str()
                    ),
                );
            }
        }
    }
}

rule! {
    /// The policy allows no flow a `<flows><deny>` forbids: no path of
    /// channels, shared memory, events, system-wide kernel actions, faults
    /// that stop the system and shared devices (and, with `covert="true"`,
    /// shared CPUs, partitions and groups) leads from `from` to `to`
    /// (with `direct="true"`: no single such flow).
    DENIED = "flows-denied" in Flows;
    fn denied(policy, out) {
        let all = flows::derive(policy);
        for deny in &policy.flow_denials {
            if deny.from.get() == deny.to.get() {
                continue;
            }
            let Some(hops) = flows::path(&all, deny) else {
                continue;
            };
            let name = |s: crate::model::SubjectIdx| {
                policy
                    .subjects
                    .get(s.index())
                    .map(|s| s.name.as_str())
                    .unwrap_or_default()
            };
            let spelled: Vec<String> = hops
                .iter()
                .map(|f| format!("{} -> {} ({})", name(f.from), name(f.to), f.detail))
                .collect();
            let diagnostic = out.error(
                DENIED.id,
                deny.span,
                format!(
                    "the policy lets information flow from \"{}\" to \"{}\", which this <deny> \
                     forbids: {}",
                    deny.from.name.as_str(),
                    deny.to.name.as_str(),
                    spelled.join(", then ")
                ),
            );
            for (n, hop) in hops.iter().enumerate() {
                diagnostic.label(
                    hop.span,
                    format!(
                        "hop {}: {} -> {}: {}",
                        n + 1,
                        name(hop.from),
                        name(hop.to),
                        hop.detail
                    ),
                );
                if hop.to_span != hop.span {
                    diagnostic.label(hop.to_span, format!("hop {} arrives here", n + 1));
                }
            }
            diagnostic.help(if hops.len() > 1 && !deny.direct.value {
                "remove a hop's grant, or add direct=\"true\" if only a direct flow is meant, or \
                 remove the <deny> if the flow is intended"
            } else {
                "remove the grant, or the <deny> if the flow is intended"
            });
        }
    }
}
