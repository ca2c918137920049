//! Fixed timing of the kernel that the policy's rules must know.
//!
//! The kernel enters every minor frame's subject a fixed time after the
//! frame boundary (docs/kernel.md, "Constant-time frame transitions"), so a
//! minor frame shorter than that leaves its subject no time at all. How
//! long depends on the boundary ([`Boundary`], read from the policy by
//! `septum_policy::pads`). The figures are defined here, in the crate the
//! kernel, the composer and the policy validator use, so the validator's
//! `scheduling-minor-frame-unusable` and `scheduling-minor-frame-short`
//! thresholds follow the kernel's pads.

use crate::units::TscCycles;

/// TSC cycles after a minor-frame boundary (the old frame's deadline) at
/// which the next subject's first instruction runs, whatever the previous
/// subject did, at a boundary the lean pad does not cover (a VM before or
/// after it, a barrier with other CPUs: [`Boundary`]). The longest
/// transition measured in Bochs starts the padded spin about 565 cycles after the boundary (`silence_ipi`: a four-CPU
/// barrier after `ipi` events up to the deadline; with a pad of 550 it is
/// the only silence test that fails, by 5 to 15 cycles), so 700 leaves 135
/// for what the tests do not reach (docs/kernel.md, "The pad at 700
/// (session 7)").
pub const FRAME_ENTRY_PAD: TscCycles = TscCycles(700);

/// TSC cycles before the padded entry at which a kernel that can take
/// interrupts in root mode (routed device lines, `ipi` events, an IOMMU)
/// takes those requested since the previous partition's last exit or wait,
/// then does the entry's work (an injection, a VM's entry work, the
/// timer). At a fixed time, so which interrupts reach the entered subject
/// as an injection and which as an exit after its entry does not depend
/// on whether the previous partition ran to its deadline or idled
/// (docs/kernel.md, "Interrupts taken in root mode"). The take with one
/// routed vector and the entry's work measured 250 cycles in Bochs
/// (`silence_edge_ipi`).
pub const INTERRUPT_TAKE_LEAD: TscCycles = TscCycles(450);

/// The pad at a boundary where no partition with a VM ends or begins and
/// no other CPU is met ([`Boundary::is_lean`]): after the previous
/// partition's native subjects (whatever they did: ran to the deadline,
/// idled, made a hypercall, an emulated access, a trap or a fault in their
/// last ticks), before the next one's native entry. Every silence test
/// still passes with 520 and two fail with 500 (`silence_exits`, an
/// emulated exit or trap at the deadline; `silence_edge_ipi`, an IPI at
/// the boundary), so 650 leaves about 130 for what the tests do not reach,
/// as [`FRAME_ENTRY_PAD`] does (docs/kernel.md, "Pads per boundary
/// (session 10)").
pub const LEAN_ENTRY_PAD: TscCycles = TscCycles(650);

/// What the kernel's work after a minor-frame boundary can depend on,
/// read from the policy alone (so the pad it chooses tells a subject
/// nothing it may not know).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Boundary {
    /// The plan's CPUs meet here (a major frame's first minor frame in a
    /// plan of more than one CPU): the CPU waits for the latest.
    pub barrier: bool,
    /// A partition with a VM subject may run before the boundary (the
    /// frame before it on this CPU; before a major frame's first frame,
    /// the last frame of any plan on this CPU).
    pub vm_before: bool,
    /// The partition that begins here has a VM subject (its entry work:
    /// injections, its local APIC timer, a halted VM's sleep).
    pub vm_after: bool,
}

impl Boundary {
    /// Whether the lean pad covers this boundary.
    pub const fn is_lean(self) -> bool {
        !self.barrier && !self.vm_before && !self.vm_after
    }

    /// The pad before the take ([`INTERRUPT_TAKE_LEAD`]): the time the
    /// transition may take at this boundary, whatever came before it.
    pub const fn base_pad(self) -> TscCycles {
        if self.is_lean() {
            LEAN_ENTRY_PAD
        } else {
            FRAME_ENTRY_PAD
        }
    }
}

impl Boundary {
    /// Whether the entry gets [`INTERRUPT_TAKE_LEAD`] after the base pad:
    /// in a kernel that takes interrupts in root mode (`takes`), for the
    /// take; into a partition with a VM, for the VM's entry work
    /// (injections, its local APIC timer, its sleep), which then starts at
    /// a fixed time after the boundary instead of wherever the transition
    /// left off.
    pub const fn has_lead(self, takes: bool) -> bool {
        takes || self.vm_after
    }

    /// The whole pad of the frame that begins here.
    pub const fn pad(self, takes: bool) -> TscCycles {
        entry_pad(self.base_pad(), self.has_lead(takes))
    }
}

/// The whole pad of a minor frame whose base pad is `base`, with the lead
/// ([`Boundary::has_lead`]) or without: the base pad, then
/// [`INTERRUPT_TAKE_LEAD`] after it for the take and the entry's work, so
/// the transition keeps all of the base pad.
pub const fn entry_pad(base: TscCycles, lead: bool) -> TscCycles {
    if lead {
        TscCycles(base.0 + INTERRUPT_TAKE_LEAD.0)
    } else {
        base
    }
}
