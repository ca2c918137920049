//! Information flows between subjects, derived from the policy alone.
//!
//! A separation kernel's promise is that subjects communicate only where
//! the policy says so. This module spells out what the policy says: every
//! way information can move from one subject to another, as a list of
//! directed edges ([`Flow`]), each tied to the policy element that allows
//! it. `septum flows` prints them; the `flows-denied` rule checks them
//! against the integrator's `<flows><deny>` statements ([`Graph`]).
//!
//! The derivation is conservative: it reports what the policy makes
//! possible, not what the subjects' programs do. A channel is a flow from
//! its writer to its readers even if the writer never writes. Kinds:
//!
//! - [`FlowKind::Channel`]: writer to every reader of a channel;
//! - [`FlowKind::SharedMemory`]: a region two subjects map, from each one
//!   that maps it writable to every other one that maps it;
//! - [`FlowKind::Event`]: the sender of an `async`, `ipi` or `switch` event
//!   to each subject that receives it (a switch hands over the CPU, an
//!   `<inject_interrupt>` injects a vector: the detail says so);
//! - [`FlowKind::KernelAction`]: a subject that may ask the kernel to power
//!   off, reboot or panic affects every other subject;
//! - [`FlowKind::FaultStop`]: a subject whose fault stops the whole system
//!   (`onFault="stopSystem"`, the default, or `monitor`, whose unchosen
//!   exits stop it) affects every other subject;
//! - a monitored subject's traps are an [`FlowKind::Event`] to its monitor
//!   (the `<monitor event>`, carrying its registers in the state page); a
//!   VM with a `<virtioConsole>` and its monitor share the VM's memory
//!   ([`FlowKind::SharedMemory`], both ways);
//! - [`FlowKind::Device`]: two subjects granted parts of the same device
//!   share its state, both ways;
//! - covert, left by the schedule, both ways: [`FlowKind::SameGroup`]
//!   (they hand each other the CPU), [`FlowKind::SamePartition`] (they share
//!   a partition's time), [`FlowKind::SameCpu`] (they share a CPU's caches
//!   and timing). A pair gets only the closest of the three.
//!
//! Edges are sorted (from, to, kind, element), so every output built from
//! them is deterministic.

use std::collections::VecDeque;

use crate::model::{ChannelRole, EventMode, FlowDeny, KernelAction, OnFault, Policy, SubjectIdx};
use crate::source::Span;

/// How information moves along a [`Flow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowKind {
    /// Channel writer to reader.
    Channel,
    /// A region mapped writable by one subject and mapped by another.
    SharedMemory,
    /// An event from its source to its target.
    Event,
    /// A kernel action of one subject that stops or resets the others.
    KernelAction,
    /// A fault of one subject stops the system.
    FaultStop,
    /// Two subjects use the same device.
    Device,
    /// Covert: the same scheduling group.
    SameGroup,
    /// Covert: the same partition (different groups).
    SamePartition,
    /// Covert: the same CPU (different partitions).
    SameCpu,
}

impl FlowKind {
    /// Every kind, in order.
    pub const ALL: &'static [FlowKind] = &[
        FlowKind::Channel,
        FlowKind::SharedMemory,
        FlowKind::Event,
        FlowKind::KernelAction,
        FlowKind::FaultStop,
        FlowKind::Device,
        FlowKind::SameGroup,
        FlowKind::SamePartition,
        FlowKind::SameCpu,
    ];

    /// The kind's name in JSON and messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            FlowKind::Channel => "channel",
            FlowKind::SharedMemory => "shared-memory",
            FlowKind::Event => "event",
            FlowKind::KernelAction => "kernel-action",
            FlowKind::FaultStop => "fault-stop",
            FlowKind::Device => "device",
            FlowKind::SameGroup => "same-group",
            FlowKind::SamePartition => "same-partition",
            FlowKind::SameCpu => "same-cpu",
        }
    }

    /// One letter for the text matrix (upper case: overt, lower: covert).
    pub const fn letter(self) -> char {
        match self {
            FlowKind::Channel => 'C',
            FlowKind::SharedMemory => 'M',
            FlowKind::Event => 'E',
            FlowKind::KernelAction => 'K',
            FlowKind::FaultStop => 'F',
            FlowKind::Device => 'D',
            FlowKind::SameGroup => 'g',
            FlowKind::SamePartition => 'p',
            FlowKind::SameCpu => 'c',
        }
    }

    /// Whether the schedule leaves this path (not a policy grant).
    pub const fn is_covert(self) -> bool {
        matches!(
            self,
            FlowKind::SameGroup | FlowKind::SamePartition | FlowKind::SameCpu
        )
    }
}

/// One directed path of information between two subjects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Where information starts.
    pub from: SubjectIdx,
    /// Where it can arrive.
    pub to: SubjectIdx,
    /// How.
    pub kind: FlowKind,
    /// What, in words: `channel "messages"`, `region "shm"`, ...
    pub detail: String,
    /// The policy element on the `from` side that allows it.
    pub span: Span,
    /// The policy element on the `to` side.
    pub to_span: Span,
}

/// Whether a kernel action changes what other subjects see (its reach, as
/// the one list of kernel actions in the kernel's spec declares it).
fn affects_others(action: KernelAction) -> bool {
    action.reach() == septum_kerncore::spec::ActionReach::System
}

/// Every flow the policy allows, sorted and without duplicates (same
/// from, to, kind and detail: the first element is kept).
pub fn derive(policy: &Policy) -> Vec<Flow> {
    let mut flows = Vec::new();
    channels(policy, &mut flows);
    shared_memory(policy, &mut flows);
    events(policy, &mut flows);
    monitors(policy, &mut flows);
    faults(policy, &mut flows);
    devices(policy, &mut flows);
    schedule(policy, &mut flows);
    flows.retain(|f| f.from != f.to);
    flows.sort_by(|a, b| {
        (a.from, a.to, a.kind, &a.detail, a.span.file.0, a.span.start).cmp(&(
            b.from,
            b.to,
            b.kind,
            &b.detail,
            b.span.file.0,
            b.span.start,
        ))
    });
    flows.dedup_by(|b, a| {
        a.from == b.from && a.to == b.to && a.kind == b.kind && a.detail == b.detail
    });
    flows
}

fn subjects(policy: &Policy) -> impl Iterator<Item = (SubjectIdx, &crate::model::Subject)> {
    policy
        .subjects
        .iter()
        .enumerate()
        .map(|(i, s)| (SubjectIdx(i as u32), s))
}

/// One end of a channel: subject, role, element, and a reader's written
/// vector (the channel's event injects it).
type ChannelEndFlow = (SubjectIdx, ChannelRole, Span, Option<u8>);

fn channels(policy: &Policy, out: &mut Vec<Flow>) {
    let mut ends: Vec<Vec<ChannelEndFlow>> = policy.channels.iter().map(|_| Vec::new()).collect();
    for (s, subject) in subjects(policy) {
        for end in &subject.channels {
            if let Some(slot) = end.physical.get().and_then(|c| ends.get_mut(c.index())) {
                let vector = end.vector.filter(|v| !v.auto).map(|v| v.value.0);
                slot.push((s, end.role, end.span, vector));
            }
        }
    }
    for (channel, ends) in policy.channels.iter().zip(&ends) {
        let event = channel
            .has_event
            .as_ref()
            .map(|m| format!(", {} event", m.value.as_str()))
            .unwrap_or_default();
        let detail = format!("channel \"{}\"{event}", channel.name.as_str());
        for &(w, _, w_span, _) in ends.iter().filter(|e| e.1 == ChannelRole::Writer) {
            for &(r, _, r_span, vector) in ends.iter().filter(|e| e.1 == ChannelRole::Reader) {
                let inject = vector
                    .filter(|_| channel.has_event.is_some())
                    .map(|v| format!(", injects vector {v}"))
                    .unwrap_or_default();
                out.push(Flow {
                    from: w,
                    to: r,
                    kind: FlowKind::Channel,
                    detail: format!("{detail}{inject}"),
                    span: w_span,
                    to_span: r_span,
                });
            }
        }
    }
}

fn shared_memory(policy: &Policy, out: &mut Vec<Flow>) {
    let mut maps: Vec<Vec<(SubjectIdx, bool, Span)>> =
        policy.regions.iter().map(|_| Vec::new()).collect();
    for (s, subject) in subjects(policy) {
        for map in &subject.maps {
            if let Some(slot) = map.physical.get().and_then(|r| maps.get_mut(r.index())) {
                slot.push((s, map.writable.value, map.span));
            }
        }
    }
    for (region, maps) in policy.regions.iter().zip(&maps) {
        for &(a, _, a_span) in maps.iter().filter(|m| m.1) {
            for &(b, b_writable, b_span) in maps {
                let access = if b_writable { "writable" } else { "read-only" };
                out.push(Flow {
                    from: a,
                    to: b,
                    kind: FlowKind::SharedMemory,
                    detail: format!("region \"{}\" (writable -> {access})", region.name.as_str()),
                    span: a_span,
                    to_span: b_span,
                });
            }
        }
    }
}

fn events(policy: &Policy, out: &mut Vec<Flow>) {
    let mut targets: Vec<Vec<(SubjectIdx, Span, Option<u8>)>> =
        policy.events.iter().map(|_| Vec::new()).collect();
    for (s, subject) in subjects(policy) {
        for target in &subject.targets {
            if let Some(slot) = target
                .physical
                .get()
                .and_then(|e| targets.get_mut(e.index()))
            {
                slot.push((
                    s,
                    target.span,
                    target.inject.as_ref().map(|i| i.vector.value.0),
                ));
            }
        }
    }
    for (s, subject) in subjects(policy) {
        for source in subject.source_events() {
            let Some(e) = source.physical.get() else {
                continue;
            };
            let Some(event) = policy.events.get(e.index()) else {
                continue;
            };
            match event.mode.value {
                EventMode::Kernel => {
                    let Some(action) = event.action.as_ref().map(|a| a.value) else {
                        continue;
                    };
                    if !affects_others(action) {
                        continue;
                    }
                    for (t, other) in subjects(policy) {
                        out.push(Flow {
                            from: s,
                            to: t,
                            kind: FlowKind::KernelAction,
                            detail: format!(
                                "kernel action {} (event \"{}\")",
                                action.policy_name(),
                                event.name.as_str()
                            ),
                            span: source.span,
                            to_span: other.span,
                        });
                    }
                }
                EventMode::SelfEvent => {}
                mode @ (EventMode::Async | EventMode::Ipi | EventMode::Switch) => {
                    for &(t, t_span, vector) in targets.get(e.index()).into_iter().flatten() {
                        let inject = vector
                            .map(|v| format!(", injects vector {v}"))
                            .unwrap_or_default();
                        out.push(Flow {
                            from: s,
                            to: t,
                            kind: FlowKind::Event,
                            detail: format!(
                                "event \"{}\" ({}{inject})",
                                event.name.as_str(),
                                mode.as_str()
                            ),
                            span: source.span,
                            to_span: t_span,
                        });
                    }
                }
            }
        }
    }
}

/// A monitored subject's traps reach its monitor (the target of its
/// `<monitor event>`): the event, and its registers in the state page.
fn monitors(policy: &Policy, out: &mut Vec<Flow>) {
    for (s, subject) in subjects(policy) {
        let Some(monitor) = &subject.monitor else {
            continue;
        };
        for (t, other) in subjects(policy) {
            let receives = other.targets.iter().find(|target| {
                target.physical.get().is_some() && target.physical.get() == monitor.event.get()
            });
            if let Some(target) = receives {
                out.push(Flow {
                    from: s,
                    to: t,
                    kind: FlowKind::Event,
                    detail: format!(
                        "traps to its monitor (event \"{}\", state page \"{}\")",
                        monitor.event.name.as_str(),
                        monitor.state.name.as_str()
                    ),
                    span: monitor.span,
                    to_span: target.span,
                });
                if let Some(console) = &subject.virtio_console {
                    // The console's monitor maps all of the VM's memory
                    // read-write (it walks the virtqueues).
                    for (from, to) in [(s, t), (t, s)] {
                        out.push(Flow {
                            from,
                            to,
                            kind: FlowKind::SharedMemory,
                            detail: format!(
                                "the VM's memory, mapped into its virtio console's monitor at {:#x}",
                                console.guest_memory.value
                            ),
                            span: console.span,
                            to_span: target.span,
                        });
                    }
                }
            }
        }
    }
}

fn faults(policy: &Policy, out: &mut Vec<Flow>) {
    for (s, subject) in subjects(policy) {
        if !subject.fault_can_stop_system() {
            continue;
        }
        let detail = match subject.on_fault.value {
            OnFault::Monitor => "an exit its monitor did not choose stops the system",
            OnFault::RestartSubject => {
                "a fault after its last restart stops the system (onRestartLimit=\"stopSystem\")"
            }
            OnFault::StopSystem | OnFault::StopSubject => {
                "a fault stops the system (onFault=\"stopSystem\")"
            }
        };
        for (t, other) in subjects(policy) {
            out.push(Flow {
                from: s,
                to: t,
                kind: FlowKind::FaultStop,
                detail: detail.to_owned(),
                span: subject.on_fault.span,
                to_span: other.span,
            });
        }
    }
}

fn devices(policy: &Policy, out: &mut Vec<Flow>) {
    let mut grants: Vec<Vec<(SubjectIdx, Span)>> =
        policy.hardware.devices.iter().map(|_| Vec::new()).collect();
    for (s, subject) in subjects(policy) {
        for grant in &subject.devices {
            if let Some(slot) = grant.physical.get().and_then(|d| grants.get_mut(d.index())) {
                slot.push((s, grant.span));
            }
        }
    }
    for (device, grants) in policy.hardware.devices.iter().zip(&grants) {
        for &(a, a_span) in grants {
            for &(b, b_span) in grants {
                out.push(Flow {
                    from: a,
                    to: b,
                    kind: FlowKind::Device,
                    detail: format!("device \"{}\"", device.name.as_str()),
                    span: a_span,
                    to_span: b_span,
                });
            }
        }
    }
}

/// Covert paths: for every pair of subjects, the closest thing the
/// schedule makes them share.
fn schedule(policy: &Policy, out: &mut Vec<Flow>) {
    // (partition, group, span of the membership) of each subject's first
    // membership.
    let mut place: Vec<Option<(usize, usize, Span)>> =
        policy.subjects.iter().map(|_| None).collect();
    for (p, partition) in policy.scheduling.partitions.iter().enumerate() {
        for (g, group) in partition.groups.iter().enumerate() {
            for reference in &group.subjects {
                if let Some(slot @ None) = reference.get().and_then(|s| place.get_mut(s.index())) {
                    *slot = Some((p, g, reference.name.span));
                }
            }
        }
    }
    for (a, subject) in subjects(policy) {
        for (b, other) in subjects(policy) {
            let here = place.get(a.index()).copied().flatten();
            let there = place.get(b.index()).copied().flatten();
            let shared = match (here, there) {
                (Some((pa, ga, sa)), Some((pb, gb, sb))) if pa == pb => {
                    let partition = policy.scheduling.partitions.get(pa);
                    let name = partition.map(|p| p.name.as_str()).unwrap_or_default();
                    if ga == gb {
                        Some((
                            FlowKind::SameGroup,
                            format!("scheduling group of partition \"{name}\""),
                            sa,
                            sb,
                        ))
                    } else {
                        Some((
                            FlowKind::SamePartition,
                            format!("partition \"{name}\""),
                            sa,
                            sb,
                        ))
                    }
                }
                _ if subject.cpu.value == other.cpu.value => Some((
                    FlowKind::SameCpu,
                    format!("CPU {}", subject.cpu.value.0),
                    subject.cpu.span,
                    other.cpu.span,
                )),
                _ => None,
            };
            if let Some((kind, detail, span, to_span)) = shared {
                out.push(Flow {
                    from: a,
                    to: b,
                    kind,
                    detail,
                    span,
                    to_span,
                });
            }
        }
    }
}

/// The flows as a graph whose size is linear in the policy, for the
/// `<deny>` checks: instead of one edge per pair of subjects, every shared
/// thing (a channel, a region, an event, a device, a group, a partition, a
/// CPU) is a hub node that its subjects connect to and from, and flows
/// that reach every subject (system-wide kernel actions, faults that stop
/// the system) go through one node that leads to all. A path from subject
/// to subject through one hub is one [`Flow`] of the hub's kind.
#[derive(Debug)]
pub struct Graph {
    /// Number of subjects: nodes `0..subjects` are the subjects.
    subjects: usize,
    /// Kind and detail of each hub (node `subjects + 1 + i`; node
    /// `subjects` is the node that leads to every subject).
    hubs: Vec<(FlowKind, String)>,
    /// Out-edges of every node in insertion order: (node, span of the
    /// element at the subject's end).
    edges: Vec<Vec<(usize, Span)>>,
}

impl Graph {
    fn everyone(&self) -> usize {
        self.subjects
    }

    fn hub(&mut self, kind: FlowKind, detail: String) -> usize {
        self.hubs.push((kind, detail));
        self.edges.push(Vec::new());
        self.edges.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize, span: Span) {
        if let Some(out) = self.edges.get_mut(from) {
            out.push((to, span));
        }
    }

    fn hub_of(&self, node: usize) -> Option<&(FlowKind, String)> {
        node.checked_sub(self.subjects + 1)
            .and_then(|i| self.hubs.get(i))
    }

    /// Builds the graph of `policy` (the same flows as [`derive()`], except
    /// that a pair of subjects may be linked by several covert hubs).
    pub fn new(policy: &Policy) -> Self {
        let n = policy.subjects.len();
        let mut graph = Graph {
            subjects: n,
            hubs: Vec::new(),
            edges: vec![Vec::new(); n + 1],
        };
        let everyone = graph.everyone();
        for (s, subject) in subjects(policy) {
            graph.edge(everyone, s.index(), subject.span);
        }
        // Channels: writers -> hub -> readers.
        let channel_hubs: Vec<usize> = policy
            .channels
            .iter()
            .map(|channel| {
                let event = channel
                    .has_event
                    .as_ref()
                    .map(|m| format!(", {} event", m.value.as_str()))
                    .unwrap_or_default();
                graph.hub(
                    FlowKind::Channel,
                    format!("channel \"{}\"{event}", channel.name.as_str()),
                )
            })
            .collect();
        for (s, subject) in subjects(policy) {
            for end in &subject.channels {
                let Some(&hub) = end.physical.get().and_then(|c| channel_hubs.get(c.index()))
                else {
                    continue;
                };
                match end.role {
                    ChannelRole::Writer => graph.edge(s.index(), hub, end.span),
                    ChannelRole::Reader => graph.edge(hub, s.index(), end.span),
                }
            }
        }
        // Regions: writable maps -> hub -> every map.
        let region_hubs: Vec<usize> = policy
            .regions
            .iter()
            .map(|r| {
                graph.hub(
                    FlowKind::SharedMemory,
                    format!("region \"{}\"", r.name.as_str()),
                )
            })
            .collect();
        for (s, subject) in subjects(policy) {
            for map in &subject.maps {
                let Some(&hub) = map.physical.get().and_then(|r| region_hubs.get(r.index())) else {
                    continue;
                };
                if map.writable.value {
                    graph.edge(s.index(), hub, map.span);
                }
                graph.edge(hub, s.index(), map.span);
            }
        }
        // Events: sources -> hub -> targets; system-wide kernel actions:
        // sources -> hub -> everyone.
        let event_hubs: Vec<Option<usize>> = policy
            .events
            .iter()
            .map(
                |e| match (e.mode.value, e.action.as_ref().map(|a| a.value)) {
                    (EventMode::Kernel, Some(action)) if affects_others(action) => {
                        let hub = graph.hub(
                            FlowKind::KernelAction,
                            format!(
                                "kernel action {} (event \"{}\")",
                                action.policy_name(),
                                e.name.as_str()
                            ),
                        );
                        graph.edge(hub, everyone, e.span);
                        Some(hub)
                    }
                    (EventMode::Async | EventMode::Ipi | EventMode::Switch, _) => Some(graph.hub(
                        FlowKind::Event,
                        format!("event \"{}\" ({})", e.name.as_str(), e.mode.value.as_str()),
                    )),
                    _ => None,
                },
            )
            .collect();
        for (s, subject) in subjects(policy) {
            for source in subject.source_events() {
                if let Some(&Some(hub)) = source
                    .physical
                    .get()
                    .and_then(|e| event_hubs.get(e.index()))
                {
                    graph.edge(s.index(), hub, source.span);
                }
            }
            for target in &subject.targets {
                let Some(e) = target.physical.get() else {
                    continue;
                };
                let is_event = policy
                    .events
                    .get(e.index())
                    .is_some_and(|e| e.mode.value != EventMode::Kernel);
                if let (true, Some(&Some(hub))) = (is_event, event_hubs.get(e.index())) {
                    graph.edge(hub, s.index(), target.span);
                }
            }
        }
        // Faults that stop the system: subject -> hub -> everyone.
        let fault = graph.hub(
            FlowKind::FaultStop,
            "a fault stops the system (onFault=\"stopSystem\")".to_owned(),
        );
        graph.edge(fault, everyone, policy.span);
        for (s, subject) in subjects(policy) {
            if subject.fault_can_stop_system() {
                graph.edge(s.index(), fault, subject.on_fault.span);
            }
        }
        // Devices: grants <-> hub.
        let device_hubs: Vec<usize> = policy
            .hardware
            .devices
            .iter()
            .map(|d| graph.hub(FlowKind::Device, format!("device \"{}\"", d.name.as_str())))
            .collect();
        for (s, subject) in subjects(policy) {
            for grant in &subject.devices {
                if let Some(&hub) = grant
                    .physical
                    .get()
                    .and_then(|d| device_hubs.get(d.index()))
                {
                    graph.edge(s.index(), hub, grant.span);
                    graph.edge(hub, s.index(), grant.span);
                }
            }
        }
        // Covert: groups, then partitions, then CPUs (closest first, so a
        // breadth-first search names the closest).
        let mut partition_hubs = Vec::new();
        for partition in &policy.scheduling.partitions {
            let name = partition.name.as_str();
            for group in &partition.groups {
                let hub = graph.hub(
                    FlowKind::SameGroup,
                    format!("scheduling group of partition \"{name}\""),
                );
                for reference in &group.subjects {
                    if let Some(s) = reference.get() {
                        graph.edge(s.index(), hub, reference.name.span);
                        graph.edge(hub, s.index(), reference.name.span);
                    }
                }
            }
            partition_hubs
                .push(graph.hub(FlowKind::SamePartition, format!("partition \"{name}\"")));
        }
        for (partition, &hub) in policy.scheduling.partitions.iter().zip(&partition_hubs) {
            for reference in partition.groups.iter().flat_map(|g| &g.subjects) {
                if let Some(s) = reference.get() {
                    graph.edge(s.index(), hub, reference.name.span);
                    graph.edge(hub, s.index(), reference.name.span);
                }
            }
        }
        let mut cpu_hubs: Vec<(u32, usize)> = Vec::new();
        for (s, subject) in subjects(policy) {
            let cpu = subject.cpu.value.0;
            let hub = match cpu_hubs.iter().find(|(c, _)| *c == cpu) {
                Some(&(_, hub)) => hub,
                None => {
                    let hub = graph.hub(FlowKind::SameCpu, format!("CPU {cpu}"));
                    cpu_hubs.push((cpu, hub));
                    hub
                }
            };
            graph.edge(s.index(), hub, subject.cpu.span);
            graph.edge(hub, s.index(), subject.cpu.span);
        }
        graph
    }

    /// Breadth-first search from subject `from` (in the order the graph
    /// was built): the parent of every node reached, with the span of the
    /// edge. `direct`: only one subject hop; `covert`: through covert hubs
    /// too. Linear in the size of the graph.
    pub fn search(&self, from: SubjectIdx, direct: bool, covert: bool) -> Search {
        let from = from.index();
        let mut parent: Vec<Option<(usize, Span)>> = vec![None; self.edges.len()];
        let mut seen = vec![false; self.edges.len()];
        let mut queue = VecDeque::from([from]);
        if let Some(s) = seen.get_mut(from) {
            *s = true;
        }
        while let Some(node) = queue.pop_front() {
            if direct && node < self.subjects && node != from {
                continue;
            }
            if self
                .hub_of(node)
                .is_some_and(|(kind, _)| kind.is_covert() && !covert)
            {
                continue;
            }
            for &(next, span) in self.edges.get(node).into_iter().flatten() {
                if let Some(seen @ false) = seen.get_mut(next) {
                    *seen = true;
                    if let Some(slot) = parent.get_mut(next) {
                        *slot = Some((node, span));
                    }
                    queue.push_back(next);
                }
            }
        }
        Search { from, parent }
    }

    /// The path `search` found to subject `to`, hop by hop; `None` if it
    /// did not reach `to` (or `to` is where it started).
    pub fn walk(&self, search: &Search, to: SubjectIdx) -> Option<Vec<Flow>> {
        let parent = &search.parent;
        let mut hops = Vec::new();
        let mut at = to.index();
        while at != search.from {
            let (mut previous, to_span) = parent.get(at).copied().flatten()?;
            if previous == self.everyone() {
                previous = parent.get(previous).copied().flatten()?.0;
            }
            let (kind, detail) = self.hub_of(previous)?.clone();
            let (start, span) = parent.get(previous).copied().flatten()?;
            hops.push(Flow {
                from: SubjectIdx(start as u32),
                to: SubjectIdx(at as u32),
                kind,
                detail,
                span,
                to_span,
            });
            at = start;
        }
        hops.reverse();
        (!hops.is_empty()).then_some(hops)
    }

    /// [`Self::search`] then [`Self::walk`] for one `<deny>`: the flows it
    /// forbids that the policy allows, if any.
    pub fn path(&self, deny: &FlowDeny) -> Option<Vec<Flow>> {
        let (from, to) = (deny.from.get()?, deny.to.get()?);
        if from == to || from.index() >= self.subjects || to.index() >= self.subjects {
            return None;
        }
        let search = self.search(from, deny.direct.value, deny.covert.value);
        self.walk(&search, to)
    }
}

/// What [`Graph::search`] found: the way back from every node reached.
#[derive(Debug)]
pub struct Search {
    from: usize,
    parent: Vec<Option<(usize, Span)>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryFiles, load_str};

    /// A policy with inline hardware (two CPUs, com1), the given top-level
    /// elements, subjects and partitions.
    fn policy(top: &str, subjects: &str, partitions: &str, flows: &str) -> Policy {
        let text = format!(
            "<system name=\"t\">\
             <hardware><processor cpuCores=\"2\" speed=\"1000\" vmxTimerRate=\"0\">\
             <cpu apicId=\"0\"/><cpu apicId=\"1\"/></processor>\
             <devices><device name=\"com1\"><ioPort name=\"p\" start=\"0x3f8\" end=\"0x3ff\"/>\
             </device></devices></hardware>\
             <kernel debugConsole=\"com1\"/>{top}<subjects>{subjects}</subjects>\
             <scheduling tickRate=\"1000\"><partitions>{partitions}</partitions></scheduling>\
             <flows>{flows}</flows></system>"
        );
        let loaded = load_str("t.xml", &text, &MemoryFiles::new());
        assert!(!loaded.diagnostics.has_errors(), "{:?}", loaded.diagnostics);
        loaded.policy.expect("policy")
    }

    fn subject(name: &str, attrs: &str, body: &str) -> String {
        format!(
            "<subject name=\"{name}\" profile=\"native\" binary=\"{name}\" \
             onFault=\"stopSubject\" {attrs}>{body}</subject>"
        )
    }

    /// Each flow as `from -> to kind: detail`.
    fn edges(policy: &Policy) -> Vec<String> {
        derive(policy)
            .iter()
            .map(|f| {
                format!(
                    "{} -> {} {}: {}",
                    policy.subject(f.from).name.as_str(),
                    policy.subject(f.to).name.as_str(),
                    f.kind.as_str(),
                    f.detail
                )
            })
            .collect()
    }

    #[test]
    fn shared_memory_flows_from_writers_only() {
        let top = "<memory><memory name=\"shm\" size=\"0x1000\" caching=\"WB\"/>\
                   <memory name=\"ro\" size=\"0x1000\" caching=\"WB\"/></memory>";
        let a = subject(
            "a",
            "",
            "<memory><map logical=\"s\" physical=\"shm\" writable=\"true\"/>\
             <map logical=\"r\" physical=\"ro\"/></memory>",
        );
        let b = subject(
            "b",
            "cpu=\"1\"",
            "<memory><map logical=\"s\" physical=\"shm\"/><map logical=\"r\" physical=\"ro\"/>\
             </memory>",
        );
        let p = policy(top, &format!("{a}{b}"), "", "");
        assert_eq!(
            edges(&p),
            ["a -> b shared-memory: region \"shm\" (writable -> read-only)"]
        );
    }

    #[test]
    fn events_kernel_actions_and_faults() {
        let top = "<events><event name=\"go\" mode=\"switch\"/>\
                   <event name=\"boot\" mode=\"kernel\" action=\"reboot\"/>\
                   <event name=\"y\" mode=\"kernel\" action=\"yield\"/></events>";
        let a = subject(
            "a",
            "",
            "<events><source><group name=\"vmcall\">\
             <event logical=\"go\" physical=\"go\"/><event logical=\"y\" physical=\"y\"/>\
             </group></source></events>",
        );
        let b = subject(
            "b",
            "cpu=\"1\"",
            "<events><source><group name=\"vmcall\"><event logical=\"b\" physical=\"boot\"/>\
             </group></source><target><event logical=\"go\" physical=\"go\">\
             <inject_interrupt vector=\"40\"/></event></target></events>",
        );
        let c = "<subject name=\"c\" profile=\"native\" binary=\"c\" cpu=\"1\"/>";
        let p = policy(top, &format!("{a}{b}{c}"), "", "");
        assert_eq!(
            edges(&p),
            [
                "a -> b event: event \"go\" (switch, injects vector 40)",
                "b -> a kernel-action: kernel action reboot (event \"boot\")",
                "b -> c kernel-action: kernel action reboot (event \"boot\")",
                "b -> c same-cpu: CPU 1",
                "c -> a fault-stop: a fault stops the system (onFault=\"stopSystem\")",
                "c -> b fault-stop: a fault stops the system (onFault=\"stopSystem\")",
                "c -> b same-cpu: CPU 1",
            ]
        );
    }

    #[test]
    fn channels_and_devices() {
        let top = "<channels><channel name=\"ch\" size=\"0x1000\" hasEvent=\"async\"/></channels>";
        let a = subject(
            "a",
            "",
            "<devices><device logical=\"u\" physical=\"com1\"/></devices>\
             <channels><writer logical=\"o\" physical=\"ch\"/></channels>",
        );
        let b = subject(
            "b",
            "cpu=\"1\"",
            "<devices><device logical=\"u\" physical=\"com1\"/></devices>\
             <channels><reader logical=\"i\" physical=\"ch\"/></channels>",
        );
        let p = policy(top, &format!("{a}{b}"), "", "");
        assert_eq!(
            edges(&p),
            [
                "a -> b channel: channel \"ch\", async event",
                "a -> b device: device \"com1\"",
                "b -> a device: device \"com1\"",
            ]
        );
    }

    #[test]
    fn a_written_reader_vector_is_part_of_the_channel_flow() {
        let top = "<channels><channel name=\"ch\" size=\"0x1000\" hasEvent=\"async\"/></channels>";
        let a = subject(
            "a",
            "",
            "<channels><writer logical=\"o\" physical=\"ch\"/></channels>",
        );
        let b = subject(
            "b",
            "",
            "<channels><reader logical=\"i\" physical=\"ch\" vector=\"49\"/></channels>",
        );
        let p = policy(top, &format!("{a}{b}"), "", "");
        assert!(
            edges(&p).contains(
                &"a -> b channel: channel \"ch\", async event, injects vector 49".to_owned()
            ),
            "{:?}",
            edges(&p)
        );
    }

    #[test]
    fn the_schedule_gives_the_closest_covert_path_only() {
        let subjects: String = [("a", 0), ("b", 0), ("c", 0), ("d", 0), ("e", 1)]
            .iter()
            .map(|(n, cpu)| subject(n, &format!("cpu=\"{cpu}\""), ""))
            .collect();
        let partitions = "<partition name=\"p\"><group><subject name=\"a\"/><subject name=\"b\"/>\
                          </group><group><subject name=\"c\"/></group></partition>\
                          <partition name=\"q\"><group><subject name=\"d\"/></group></partition>\
                          <partition name=\"r\"><group><subject name=\"e\"/></group></partition>";
        let p = policy("", &subjects, partitions, "");
        let from_a: Vec<String> = edges(&p)
            .into_iter()
            .filter(|e| e.starts_with("a "))
            .collect();
        assert_eq!(
            from_a,
            [
                "a -> b same-group: scheduling group of partition \"p\"",
                "a -> c same-partition: partition \"p\"",
                "a -> d same-cpu: CPU 0",
            ]
        );
        assert!(derive(&p).iter().all(|f| f.kind.is_covert()));
    }

    #[test]
    fn the_graph_finds_every_derived_flow_as_a_direct_path() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systems/isolation.xml"),
        )
        .expect("isolation.xml")
        .replace("../hardware/", "");
        let hardware = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../hardware/bochs-tigerlake.xml"),
        )
        .expect("hardware");
        let mut files = MemoryFiles::new();
        files.insert("bochs-tigerlake.xml", hardware);
        let loaded = load_str("isolation.xml", &text, &files);
        let p = loaded.policy.expect("policy");
        let graph = Graph::new(&p);
        let all = derive(&p);
        assert!(!all.is_empty());
        for flow in &all {
            let deny = FlowDeny {
                span: Span::default(),
                from: crate::model::Ref {
                    name: Default::default(),
                    target: Some(flow.from),
                },
                to: crate::model::Ref {
                    name: Default::default(),
                    target: Some(flow.to),
                },
                direct: crate::model::Spanned::new(true, Span::default()),
                covert: crate::model::Spanned::new(flow.kind.is_covert(), Span::default()),
            };
            let hops = graph.path(&deny).unwrap_or_default();
            assert_eq!(hops.len(), 1, "{flow:?}");
        }
    }

    #[test]
    fn paths_are_transitive_unless_direct_and_covert_only_when_asked() {
        let top = "<channels><channel name=\"ab\" size=\"0x1000\"/>\
                   <channel name=\"bc\" size=\"0x1000\"/></channels>";
        let a = subject(
            "a",
            "",
            "<channels><writer logical=\"o\" physical=\"ab\"/></channels>",
        );
        let b = subject(
            "b",
            "cpu=\"1\"",
            "<channels><reader logical=\"i\" physical=\"ab\"/>\
             <writer logical=\"o\" physical=\"bc\"/></channels>",
        );
        let c = subject(
            "c",
            "",
            "<channels><reader logical=\"i\" physical=\"bc\"/></channels>",
        );
        let denies = "<deny from=\"a\" to=\"c\"/><deny from=\"a\" to=\"c\" direct=\"true\"/>\
                      <deny from=\"a\" to=\"c\" direct=\"true\" covert=\"true\"/>\
                      <deny from=\"c\" to=\"a\"/>";
        let p = policy(top, &format!("{a}{b}{c}"), "", denies);
        let graph = Graph::new(&p);
        let hops = |i: usize| {
            graph
                .path(&p.flow_denials[i])
                .map(|hops| hops.iter().map(|f| f.detail.clone()).collect::<Vec<_>>())
        };
        assert_eq!(
            hops(0),
            Some(vec![
                "channel \"ab\"".to_owned(),
                "channel \"bc\"".to_owned()
            ])
        );
        assert_eq!(hops(1), None);
        assert_eq!(hops(2), Some(vec!["CPU 0".to_owned()]));
        assert_eq!(hops(3), None);
    }
}
