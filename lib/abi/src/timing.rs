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
/// subject did. It covers the longest transition measured, 491 cycles; the
/// whole off-CPU gap, timer exit to the next subject, is 1012 cycles
/// (`cargo xtask systest timing`, docs/benchmarks.md).
pub const FRAME_ENTRY_PAD: TscCycles = TscCycles(1000);
