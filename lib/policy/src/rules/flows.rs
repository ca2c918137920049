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
use crate::model::{FlowDeny, Policy, SubjectIdx};

/// Most searches one policy's `<deny>`s cause (one per distinct `from`,
/// `direct`, `covert`): as many as the kernel runs subjects.
const MAX_SEARCHES: usize = septum_kerncore::plan::MAX_SUBJECTS;
/// Most broken `<deny>`s spelled out (one more diagnostic counts the rest),
/// so the output stays bounded however many `<deny>`s there are.
const MAX_REPORTS: usize = 256;
/// Most hops of one path spelled out (the first and last half).
const MAX_HOPS: usize = 8;
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
        if policy.flow_denials.is_empty() {
            return;
        }
        let graph = flows::Graph::new(policy);
        // One search per distinct (from, direct, covert), at most
        // MAX_SEARCHES of them, each dropped before the next, so time and
        // memory stay linear in the policy's size.
        let mut checked: Vec<(&FlowDeny, SubjectIdx, SubjectIdx)> = policy
            .flow_denials
            .iter()
            .filter_map(|d| Some((d, d.from.get()?, d.to.get()?)))
            .filter(|(_, from, to)| from != to)
            .collect();
        checked.sort_by_key(|(d, from, _)| (*from, d.direct.value, d.covert.value, d.span.file.0, d.span.start));
        let key = |d: &FlowDeny, from: SubjectIdx| (from, d.direct.value, d.covert.value);
        let mut searches = 0usize;
        let (mut reported, mut more, mut last) = (0usize, 0usize, None);
        let mut current: Option<((SubjectIdx, bool, bool), flows::Search)> = None;
        for (deny, from, to) in checked {
            let k = key(deny, from);
            if current.as_ref().is_none_or(|(c, _)| *c != k) {
                if searches == MAX_SEARCHES {
                    out.error(
                        DENIED.id,
                        deny.span,
                        format!(
                            "this <deny> was not checked: the <deny>s name more than \
                             {MAX_SEARCHES} different `from` subjects (with their `direct` and \
                             `covert`)"
                        ),
                    )
                    .help("the kernel runs at most 256 subjects; split the policy");
                    continue;
                }
                searches += 1;
                current = Some((k, graph.search(from, k.1, k.2)));
            }
            let Some(hops) = current.as_ref().and_then(|(_, search)| graph.walk(search, to)) else {
                continue;
            };
            reported += 1;
            if reported > MAX_REPORTS {
                more += 1;
                last = Some(deny.span);
                continue;
            }
            let name = |s: crate::model::SubjectIdx| {
                policy
                    .subjects
                    .get(s.index())
                    .map(|s| s.name.as_str())
                    .unwrap_or_default()
            };
            // A long path shows its first and last hops only.
            let shown: Vec<(usize, &flows::Flow)> = hops
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < MAX_HOPS / 2 || *i >= hops.len().saturating_sub(MAX_HOPS / 2))
                .collect();
            let mut spelled: Vec<String> = Vec::new();
            for (k, &(i, f)) in shown.iter().enumerate() {
                if k > 0 && shown.get(k - 1).is_some_and(|&(j, _)| j + 1 != i) {
                    spelled.push(format!("({} more hops)", i - MAX_HOPS / 2));
                }
                spelled.push(format!("{} -> {} ({})", name(f.from), name(f.to), f.detail));
            }
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
            for &(n, hop) in &shown {
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
                if n + 1 == hops.len() && hop.to_span != hop.span {
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
        if let Some(span) = last {
            out.error(
                DENIED.id,
                span,
                format!(
                    "{more} more <deny>s are broken by flows the policy allows (the first \
                     {MAX_REPORTS} are spelled out); this is the last"
                ),
            );
        }
    }
}
