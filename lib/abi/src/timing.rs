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
