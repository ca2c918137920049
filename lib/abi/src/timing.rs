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
/// after it, a barrier with other CPUs: [`Boundary`]). Since the entry
/// stub counts the VMX-preemption timer from the VM entry itself (session
/// 11), no CPU's frame ends late, and a barrier no longer waits for one
/// that does: every silence test with barriers and every VM test passed
/// (session 11) with this pad as low as 450, and with `count-transition`
/// Linux's transitions were ready about 430 cycles after the boundary
/// (`linux`, `linux_virtio`, probe marks left out). 610 kept 50 over
/// session 11's lean pad for what the tests do not reach (more CPUs at a
/// barrier, a halted VM on an SMP Bochs), about 180 over the measured
/// (docs/kernel.md, "Pads after exact timers (session 11)"). Session 12's
/// leaner switch shortened these transitions too; this pad was left as it
/// was (not measured again at the barrier and beside VMs).
pub const FRAME_ENTRY_PAD: TscCycles = TscCycles(610);

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

/// TSC cycles after the boundary before which a frame with a lead
/// ([`Boundary::has_lead`]) does not take interrupts, whatever its base
/// pad: an interrupt requested up to about 500 cycles after the boundary
/// (`silence_edge_ipi` sends IPIs for the entered subject from 115 before
/// it to 460 after) still reaches the entered subject as an injection at
/// its entry, not as an exit right after it. The lean pad of a kernel
/// that takes no interrupts follows its transition alone (session 12);
/// this keeps the take where it was with the lean pad of session 11, and
/// leaves the console pump a FIFO's worth of room before it.
pub const INTERRUPT_TAKE_EARLIEST: TscCycles = TscCycles(560);

/// The pad at a boundary where no partition with a VM ends or begins and
/// no other CPU is met ([`Boundary::is_lean`]): after the previous
/// partition's native subjects (whatever they did: ran to the deadline,
/// idled, made a hypercall, an emulated access, a trap or a fault in their
/// last ticks), before the next one's native entry. In a kernel that
/// takes interrupts the take still comes [`INTERRUPT_TAKE_EARLIEST`]
/// after the boundary ([`entry_pad`]). Measured in Bochs (session 12,
/// after the leaner switch of docs/kernel.md "Pads after a leaner switch
/// (session 12)"): every silence and storm test passes with 320; with 300
/// `silence_exits` fails by up to 18 ticks (a monitor's trap and switch at
/// the deadline) and `silence_fault` by up to 6 (its deferred lines);
/// with `count-transition` the longest transition of any of them is ready
/// 340 ticks after the boundary, probe marks included. 350 keeps about 30
/// over the longest measured without the probe, and makes the minor-frame
/// switch 380 ticks (`cargo xtask bench`). A major frame's last frame on
/// each CPU gets [`CONSOLE_SLOT`] on top ([`Boundary::base_pad`]).
pub const LEAN_ENTRY_PAD: TscCycles = TscCycles(350);

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
    /// The last minor frame of its major frame on this CPU begins here:
    /// a lean pad gets [`CONSOLE_SLOT`] more, so that kernel lines reach
    /// the UART at least once per major frame and CPU even when no
    /// partition ever idles.
    pub console: bool,
}

/// TSC cycles added to the lean pad of one boundary per major frame and
/// CPU ([`Boundary::console`]): room for the console pump to move a
/// FIFO's worth of kernel output (16 bytes: about 140 ticks with the
/// entry's path after it, `exit::pump_until`) after the longest lean
/// transition. The lean pad alone leaves the pump nothing after the
/// longest transitions (session 12), and a system whose CPUs never idle
/// then held its fault and restart lines until the machine stopped.
/// Static, from the plan alone, so it tells a subject nothing.
pub const CONSOLE_SLOT: TscCycles = TscCycles(200);

impl Boundary {
    /// Whether the lean pad covers this boundary.
    pub const fn is_lean(self) -> bool {
        !self.barrier && !self.vm_before && !self.vm_after
    }

    /// The pad before the take ([`INTERRUPT_TAKE_LEAD`]): the time the
    /// transition may take at this boundary, whatever came before it.
    pub const fn base_pad(self) -> TscCycles {
        if !self.is_lean() {
            FRAME_ENTRY_PAD
        } else if self.console {
            TscCycles(LEAN_ENTRY_PAD.0 + CONSOLE_SLOT.0)
        } else {
            LEAN_ENTRY_PAD
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
    if !lead {
        return base;
    }
    let take = if base.0 < INTERRUPT_TAKE_EARLIEST.0 {
        INTERRUPT_TAKE_EARLIEST.0
    } else {
        base.0
    };
    TscCycles(take + INTERRUPT_TAKE_LEAD.0)
}
