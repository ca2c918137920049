//! Device interrupts and injected vectors: who owns which IRQ line, what a
//! device interrupt does, and which vector a subject is given next.
//!
//! The composer turns every `<irq>` a subject is granted into an
//! [`IrqRoute`]: the I/O APIC sends line `n` as host vector `32 + n`
//! ([`host_vector`]) to the local APIC of the owner's CPU. The VM exit that
//! interrupt causes (external-interrupt exiting with acknowledge-on-exit)
//! hands the host vector to [`InterruptSpec::on_device_interrupt`]: the
//! owner's guest vector (the policy's remapping) is marked pending in the
//! system-wide [`PendingVectors`], and a level-triggered line is to be
//! masked until the owner's `unmask_irq` kernel action. Nothing else
//! happens: the subject that was running resumes, so an IRQ for a subject
//! that does not run costs the running one only the exit and the
//! acknowledge; the vector waits for its owner.
//!
//! Before each VM entry the arch layer asks [`PendingVectors::next`] what
//! to do for the subject it enters: inject the highest pending vector (x86
//! priority order) if the subject can take an interrupt now (RFLAGS.IF set,
//! no STI or MOV-SS blocking), else ask for an interrupt-window exit, which
//! comes as soon as it can.
//!
//! Target events with `<inject_interrupt vector>` are [`EventVector`]s:
//! when a hypercall marks such an event pending ([`event_target`] finds
//! which), [`InterruptSpec::on_event`] marks its vector pending too.
//!
//! Like [`crate::events::PendingTable`] the vector table is shared by every
//! CPU and only uses atomic `fetch_or`/`fetch_and`: a device IRQ is taken
//! on the owner's CPU, but an event with a vector may be raised anywhere.
//!
//! Why host vector `32 + line`: the policy rules bound lines to 0..=220, so
//! host vectors stay in 32..=252, below the vectors the kernel keeps for
//! itself; one fixed formula needs no table in the exit path to find the
//! line of a vector.

use core::sync::atomic::{AtomicU64, Ordering};

use septum_abi::{PhysAddr, SubjectId};

use septum_abi::hypercall::{EVENT_MASK, MAX_EVENTS};

use crate::plan::MAX_SUBJECTS;
use crate::spec::{ApicId, SourceEvent, SystemSpec};

/// An interrupt line of the I/O APIC (a GSI; ISA IRQ `n` is line `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IrqLine(pub u8);

/// An interrupt vector (0..=255): on the host (what the I/O APIC sends) or
/// in a subject (what the kernel injects), as the field's name says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vector(pub u8);

/// Where the local APIC's registers are in xAPIC mode: the architectural
/// default of IA32_APIC_BASE (SDM Vol. 3A 11.4.4). The composer maps this
/// page in the kernel's tables when a line is routed; a processor without
/// x2APIC whose local APIC is elsewhere is refused at boot.
pub const XAPIC_BASE: PhysAddr = PhysAddr(0xfee0_0000);

/// Host vector of line 0; line `n` arrives as `HOST_VECTOR_BASE + n`.
pub const HOST_VECTOR_BASE: u8 = 32;

/// Highest line the kernel routes (the policy's limit, see the module doc).
pub const MAX_LINE: u8 = 220;

/// The host vector line `line` is delivered with, `None` beyond
/// [`MAX_LINE`].
pub const fn host_vector(line: IrqLine) -> Option<Vector> {
    if line.0 > MAX_LINE {
        return None;
    }
    match HOST_VECTOR_BASE.checked_add(line.0) {
        Some(vector) => Some(Vector(vector)),
        None => None,
    }
}

/// The line a host vector belongs to, `None` for a vector no line uses.
pub const fn line_of(host: Vector) -> Option<IrqLine> {
    match host.0.checked_sub(HOST_VECTOR_BASE) {
        Some(line) if line <= MAX_LINE => Some(IrqLine(line)),
        _ => None,
    }
}

/// How a line signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Edge-triggered, active high (ISA lines 0..=15).
    Edge,
    /// Level-triggered, active low (PCI lines 16 and up, and any PCI
    /// device's line, which the composer decides): masked from its
    /// interrupt until the owner's `unmask_irq`.
    Level,
}

impl Trigger {
    /// The trigger mode of a line by the PC convention: ISA lines (0..=15)
    /// are edge-triggered active high, PCI lines level-triggered active low.
    pub const fn of(line: IrqLine) -> Self {
        if line.0 < 16 {
            Trigger::Edge
        } else {
            Trigger::Level
        }
    }
}

/// One IRQ line a subject owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqRoute {
    /// The line (the I/O APIC pin; the composer checks it has one).
    pub line: IrqLine,
    /// The owner.
    pub owner: SubjectId,
    /// Local APIC id of the owner's CPU, where the I/O APIC sends it.
    pub apic_id: ApicId,
    /// Vector injected into the owner (the policy's `vector`, 32..=255).
    pub vector: Vector,
    /// Edge or level.
    pub trigger: Trigger,
}

/// A target event that also injects a vector when it is marked pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventVector {
    /// The receiving subject.
    pub subject: SubjectId,
    /// Its target event number (0..63).
    pub target_event: u8,
    /// The vector injected (32..=255).
    pub vector: Vector,
}

/// Everything the kernel knows about interrupts (generated by the composer
/// as `pub static INTERRUPTS` beside `SPEC`, see [`emit_source`]).
#[derive(Debug)]
pub struct InterruptSpec {
    /// Physical address of the I/O APIC's registers (4 KiB, identity-mapped
    /// uncached in the kernel's page tables by the composer); `None` when
    /// no line is routed, and then the kernel leaves the I/O APIC alone.
    pub ioapic: Option<PhysAddr>,
    /// Every routed line, at most one route per line (the policy's
    /// "IRQ owned twice" rules).
    pub routes: &'static [IrqRoute],
    /// Target events with a vector.
    pub event_vectors: &'static [EventVector],
}

/// What the kernel must do after a device interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// The vector is pending for `owner`; `mask` is the line to mask at the
    /// I/O APIC until the owner's `unmask_irq` (a level-triggered line).
    Routed {
        /// The owner.
        owner: SubjectId,
        /// A level-triggered line to mask.
        mask: Option<IrqLine>,
    },
    /// No route has that host vector (a spurious or stale interrupt): only
    /// the end-of-interrupt.
    Unrouted,
}

impl InterruptSpec {
    /// No interrupts at all.
    pub const NONE: InterruptSpec = InterruptSpec {
        ioapic: None,
        routes: &[],
        event_vectors: &[],
    };

    /// The route of the line that arrives as `host`.
    pub fn route(&self, host: Vector) -> Option<&IrqRoute> {
        let line = line_of(host)?;
        self.routes.iter().find(|route| route.line == line)
    }

    /// A device interrupt arrived as host vector `host`: mark its owner's
    /// vector pending and say what the arch layer must do besides the
    /// end-of-interrupt.
    pub fn on_device_interrupt(&self, pending: &PendingVectors, host: Vector) -> Acknowledge {
        match self.route(host) {
            Some(route) => {
                pending.set(route.owner, route.vector);
                Acknowledge::Routed {
                    owner: route.owner,
                    mask: (route.trigger == Trigger::Level).then_some(route.line),
                }
            }
            None => Acknowledge::Unrouted,
        }
    }

    /// Target event `target_event` of `subject` was marked pending: mark
    /// its vector pending too, if it has one.
    pub fn on_event(&self, pending: &PendingVectors, subject: SubjectId, target_event: u8) {
        for e in self.event_vectors {
            if e.subject == subject && e.target_event == target_event {
                pending.set(subject, e.vector);
            }
        }
    }

    /// The level-triggered lines `subject` owns (what its `unmask_irq`
    /// unmasks).
    pub fn level_lines_of(&self, subject: SubjectId) -> impl Iterator<Item = IrqLine> + '_ {
        self.routes
            .iter()
            .filter(move |r| r.owner == subject && r.trigger == Trigger::Level)
            .map(|r| r.line)
    }

    /// Whether any subject can be given a vector (then the kernel keeps a
    /// pending-vector check before each entry).
    pub fn injects(&self) -> bool {
        !self.routes.is_empty() || !self.event_vectors.is_empty()
    }
}

/// The target event that source event `event` of `caller` marks pending
/// (`async`, `switch` and `self` events; `None` for a kernel event, an
/// undefined slot or a number of 64 or more). The same lookup as the
/// hypercall's, with the same range check and Spectre-v1 mask, for
/// [`InterruptSpec::on_event`].
pub fn event_target(spec: &SystemSpec, caller: SubjectId, event: u64) -> Option<(SubjectId, u8)> {
    if event >= MAX_EVENTS as u64 {
        return None;
    }
    let index = usize::try_from(core::hint::black_box(event) & EVENT_MASK).ok()?;
    match spec
        .subjects
        .get(caller.index())?
        .source_events
        .get(index)?
        .as_ref()?
    {
        SourceEvent::Async {
            target,
            target_event,
        }
        | SourceEvent::Switch {
            target,
            target_event,
        }
        | SourceEvent::Reset {
            target,
            target_event,
        } => Some((*target, *target_event)),
        SourceEvent::SelfEvent { target_event } => Some((caller, *target_event)),
        SourceEvent::Kernel(_) => None,
    }
}

/// What to do for the subject about to be entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// Nothing pending.
    Nothing,
    /// Inject this vector now (it is no longer pending).
    Inject(Vector),
    /// A vector is pending but the subject cannot take it: exit as soon as
    /// it can (interrupt-window exiting).
    OpenWindow,
}

/// Words of 64 vectors per subject.
const WORDS: usize = 4;

/// Pending vectors of every subject (bit `v`: vector `v`).
#[derive(Debug)]
pub struct PendingVectors {
    words: [[AtomicU64; WORDS]; MAX_SUBJECTS],
}

impl Default for PendingVectors {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingVectors {
    /// Nothing pending.
    pub const fn new() -> Self {
        Self {
            words: [const { [const { AtomicU64::new(0) }; WORDS] }; MAX_SUBJECTS],
        }
    }

    fn word(&self, subject: SubjectId, vector: Vector) -> Option<&AtomicU64> {
        self.words
            .get(subject.index())
            .and_then(|w| w.get(usize::from(vector.0 >> 6)))
    }

    /// Mark `vector` pending for `subject` (an unknown subject changes
    /// nothing).
    pub fn set(&self, subject: SubjectId, vector: Vector) {
        if let Some(word) = self.word(subject, vector) {
            word.fetch_or(1 << (vector.0 & 63), Ordering::Release);
        }
    }

    /// The highest pending vector of `subject`, left pending.
    pub fn highest(&self, subject: SubjectId) -> Option<Vector> {
        let words = self.words.get(subject.index())?;
        for (index, word) in words.iter().enumerate().rev() {
            let bits = word.load(Ordering::Acquire);
            if bits != 0 {
                let bit = 63u32.saturating_sub(bits.leading_zeros());
                let base = u32::try_from(index).ok()?.checked_mul(64)?;
                return u8::try_from(base.checked_add(bit)?).ok().map(Vector);
            }
        }
        None
    }

    /// Whether anything is pending for `subject`.
    pub fn any(&self, subject: SubjectId) -> bool {
        self.words
            .get(subject.index())
            .is_some_and(|words| words.iter().any(|word| word.load(Ordering::Relaxed) != 0))
    }

    /// Clear `vector` for `subject`.
    pub fn clear(&self, subject: SubjectId, vector: Vector) {
        if let Some(word) = self.word(subject, vector) {
            word.fetch_and(!(1 << (vector.0 & 63)), Ordering::AcqRel);
        }
    }

    /// What to do before entering `subject`: `can_take` says whether it
    /// accepts an external interrupt now (RFLAGS.IF set and no blocking by
    /// STI or MOV SS). An injected vector stops being pending.
    pub fn next(&self, subject: SubjectId, can_take: bool) -> Injection {
        match self.highest(subject) {
            None => Injection::Nothing,
            Some(vector) if can_take => {
                self.clear(subject, vector);
                Injection::Inject(vector)
            }
            Some(_) => Injection::OpenWindow,
        }
    }
}

/// The Rust source of `pub static INTERRUPTS` for the generated `spec.rs`
/// (fully qualified paths, like the rest of it).
#[cfg(any(test, feature = "emit"))]
pub fn emit_source(
    ioapic: Option<PhysAddr>,
    routes: &[IrqRoute],
    event_vectors: &[EventVector],
) -> alloc::string::String {
    use core::fmt::Write;
    const IRQ: &str = "septum_kerncore::irq";
    let mut out = alloc::string::String::new();
    // Writing to a `String` cannot fail.
    let _ = writeln!(
        out,
        "/// Device interrupt routes and injected vectors (docs/kernel.md, \"Device interrupts\")."
    );
    let _ = writeln!(
        out,
        "pub static INTERRUPTS: {IRQ}::InterruptSpec = {IRQ}::InterruptSpec {{"
    );
    match ioapic {
        Some(address) => {
            let _ = writeln!(
                out,
                "    ioapic: Some(septum_abi::PhysAddr({:#x})),",
                address.get()
            );
        }
        None => {
            let _ = writeln!(out, "    ioapic: None,");
        }
    }
    let _ = writeln!(
        out,
        "    routes: &[{}",
        if routes.is_empty() { "]," } else { "" }
    );
    for r in routes {
        let trigger = match r.trigger {
            Trigger::Edge => "Edge",
            Trigger::Level => "Level",
        };
        let _ = writeln!(
            out,
            "        {IRQ}::IrqRoute {{ line: {IRQ}::IrqLine({}), owner: septum_abi::SubjectId({}), \
             apic_id: septum_kerncore::spec::ApicId({}), vector: {IRQ}::Vector({}), trigger: \
             {IRQ}::Trigger::{trigger} }},",
            r.line.0, r.owner.0, r.apic_id.0, r.vector.0
        );
    }
    if !routes.is_empty() {
        let _ = writeln!(out, "    ],");
    }
    let _ = writeln!(
        out,
        "    event_vectors: &[{}",
        if event_vectors.is_empty() { "]," } else { "" }
    );
    for e in event_vectors {
        let _ = writeln!(
            out,
            "        {IRQ}::EventVector {{ subject: septum_abi::SubjectId({}), target_event: {}, \
             vector: {IRQ}::Vector({}) }},",
            e.subject.0, e.target_event, e.vector.0
        );
    }
    if !event_vectors.is_empty() {
        let _ = writeln!(out, "    ],");
    }
    let _ = writeln!(out, "}};");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const A: SubjectId = SubjectId(0);
    const B: SubjectId = SubjectId(1);

    static SPEC: InterruptSpec = InterruptSpec {
        ioapic: Some(PhysAddr(0xfec0_0000)),
        routes: &[
            IrqRoute {
                line: IrqLine(8),
                owner: A,
                apic_id: ApicId(0),
                vector: Vector(40),
                trigger: Trigger::Edge,
            },
            IrqRoute {
                line: IrqLine(19),
                owner: B,
                apic_id: ApicId(1),
                vector: Vector(200),
                trigger: Trigger::Level,
            },
        ],
        event_vectors: &[EventVector {
            subject: A,
            target_event: 3,
            vector: Vector(50),
        }],
    };

    #[test]
    fn host_vectors_are_32_plus_the_line() {
        assert_eq!(host_vector(IrqLine(0)), Some(Vector(32)));
        assert_eq!(host_vector(IrqLine(8)), Some(Vector(40)));
        assert_eq!(host_vector(IrqLine(220)), Some(Vector(252)));
        assert_eq!(host_vector(IrqLine(221)), None);
        assert_eq!(line_of(Vector(40)), Some(IrqLine(8)));
        assert_eq!(line_of(Vector(31)), None);
        assert_eq!(line_of(Vector(253)), None);
        for line in 0..=MAX_LINE {
            assert_eq!(
                line_of(host_vector(IrqLine(line)).unwrap()),
                Some(IrqLine(line))
            );
        }
    }

    #[test]
    fn isa_lines_are_edge_pci_lines_level() {
        assert_eq!(Trigger::of(IrqLine(8)), Trigger::Edge);
        assert_eq!(Trigger::of(IrqLine(15)), Trigger::Edge);
        assert_eq!(Trigger::of(IrqLine(16)), Trigger::Level);
    }

    #[test]
    fn a_device_interrupt_is_pending_for_its_owner_at_the_policy_vector() {
        let pending = PendingVectors::new();
        assert_eq!(
            SPEC.on_device_interrupt(&pending, Vector(40)),
            Acknowledge::Routed {
                owner: A,
                mask: None
            }
        );
        assert_eq!(pending.highest(A), Some(Vector(40)));
        assert!(!pending.any(B));
    }

    #[test]
    fn a_level_interrupt_masks_its_line() {
        let pending = PendingVectors::new();
        assert_eq!(
            SPEC.on_device_interrupt(&pending, Vector(32 + 19)),
            Acknowledge::Routed {
                owner: B,
                mask: Some(IrqLine(19))
            }
        );
        assert_eq!(pending.highest(B), Some(Vector(200)));
        assert_eq!(
            SPEC.level_lines_of(B).collect::<std::vec::Vec<_>>(),
            [IrqLine(19)]
        );
        assert_eq!(SPEC.level_lines_of(A).count(), 0);
    }

    #[test]
    fn an_unrouted_vector_only_costs_the_eoi() {
        let pending = PendingVectors::new();
        for host in [0u8, 31, 33, 41, 252, 255] {
            assert_eq!(
                SPEC.on_device_interrupt(&pending, Vector(host)),
                Acknowledge::Unrouted
            );
        }
        assert!(!pending.any(A) && !pending.any(B));
    }

    #[test]
    fn an_event_with_a_vector_injects_it() {
        let pending = PendingVectors::new();
        SPEC.on_event(&pending, A, 2);
        SPEC.on_event(&pending, B, 3);
        assert!(!pending.any(A) && !pending.any(B));
        SPEC.on_event(&pending, A, 3);
        assert_eq!(pending.highest(A), Some(Vector(50)));
    }

    #[test]
    fn the_highest_vector_goes_first_and_only_when_it_can_be_taken() {
        let pending = PendingVectors::new();
        assert_eq!(pending.next(A, true), Injection::Nothing);
        pending.set(A, Vector(40));
        pending.set(A, Vector(200));
        pending.set(A, Vector(63));
        pending.set(A, Vector(64));
        assert_eq!(pending.next(A, false), Injection::OpenWindow);
        assert_eq!(pending.next(A, true), Injection::Inject(Vector(200)));
        assert_eq!(pending.next(A, true), Injection::Inject(Vector(64)));
        assert_eq!(pending.next(A, true), Injection::Inject(Vector(63)));
        assert_eq!(pending.next(A, false), Injection::OpenWindow);
        assert_eq!(pending.next(A, true), Injection::Inject(Vector(40)));
        assert_eq!(pending.next(A, true), Injection::Nothing);
        assert!(!pending.any(A));
    }

    #[test]
    fn a_repeated_interrupt_is_one_pending_vector() {
        let pending = PendingVectors::new();
        SPEC.on_device_interrupt(&pending, Vector(40));
        SPEC.on_device_interrupt(&pending, Vector(40));
        assert_eq!(pending.next(A, true), Injection::Inject(Vector(40)));
        assert_eq!(pending.next(A, true), Injection::Nothing);
    }

    #[test]
    fn every_vector_round_trips_and_unknown_subjects_are_ignored() {
        let pending = PendingVectors::new();
        for v in 0..=255u8 {
            pending.set(B, Vector(v));
            assert_eq!(pending.highest(B), Some(Vector(v)));
            pending.clear(B, Vector(v));
            assert!(!pending.any(B));
        }
        let beyond = SubjectId(u16::try_from(MAX_SUBJECTS).unwrap());
        pending.set(beyond, Vector(40));
        assert!(!pending.any(beyond));
        assert_eq!(pending.next(beyond, true), Injection::Nothing);
    }

    #[test]
    fn an_event_target_is_found_as_the_hypercall_finds_it() {
        use crate::testing::TWO_PARTITIONS;
        assert_eq!(event_target(&TWO_PARTITIONS, A, 1), Some((B, 3)));
        assert_eq!(event_target(&TWO_PARTITIONS, A, 5), Some((A, 63)));
        // Kernel events, undefined slots, out-of-range numbers, unknown
        // callers: nothing.
        for event in [2, 63, 6, 64, u64::MAX] {
            assert_eq!(event_target(&TWO_PARTITIONS, A, event), None, "{event}");
        }
        assert_eq!(event_target(&TWO_PARTITIONS, SubjectId(9), 1), None);
    }

    #[test]
    fn the_emitted_source_names_every_route() {
        let text = emit_source(SPEC.ioapic, SPEC.routes, SPEC.event_vectors);
        assert!(text.contains("pub static INTERRUPTS: septum_kerncore::irq::InterruptSpec"));
        assert!(text.contains("ioapic: Some(septum_abi::PhysAddr(0xfec00000)),"));
        assert!(text.contains("line: septum_kerncore::irq::IrqLine(19), owner: septum_abi::SubjectId(1), apic_id: septum_kerncore::spec::ApicId(1), vector: septum_kerncore::irq::Vector(200), trigger: septum_kerncore::irq::Trigger::Level"));
        assert!(text.contains("target_event: 3"));
        let none = emit_source(None, &[], &[]);
        assert!(none.contains("ioapic: None,\n    routes: &[],\n    event_vectors: &[],\n};"));
    }
}
