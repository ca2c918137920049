//! Fixed timing of the kernel that the policy's rules must know.
//!
//! The kernel enters every minor frame's subject a fixed time after the
//! frame boundary (docs/kernel.md, "Constant-time frame transitions"), so a
//! minor frame shorter than that leaves its subject no time at all. The
//! figure is defined here, in the crate both the kernel and the policy
//! validator use, so the validator's `scheduling-minor-frame-unusable` and
//! `scheduling-minor-frame-short` thresholds follow the kernel's pad.

use crate::units::TscCycles;

/// TSC cycles after a minor-frame boundary (the old frame's deadline) at
/// which the next subject's first instruction runs, whatever the previous
/// subject did. The longest transition measured in Bochs starts the padded
/// spin about 565 cycles after the boundary (`silence_ipi`: a four-CPU
/// barrier after `ipi` events up to the deadline; with a pad of 550 it is
/// the only silence test that fails, by 5 to 15 cycles), so 700 leaves 135
/// for what the tests do not reach (docs/kernel.md, "The pad at 700
/// (session 7)"). The whole off-CPU gap, timer exit to the next subject,
/// is 742 cycles (`cargo xtask bench`, docs/benchmarks.md).
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

/// The pad of a kernel that takes interrupts in root mode (`takes`) or
/// not: [`FRAME_ENTRY_PAD`], plus [`INTERRUPT_TAKE_LEAD`] after it for the
/// take, so the transition keeps all of the base pad.
pub const fn frame_entry_pad(takes: bool) -> TscCycles {
    if takes {
        TscCycles(FRAME_ENTRY_PAD.0 + INTERRUPT_TAKE_LEAD.0)
    } else {
        FRAME_ENTRY_PAD
    }
}
