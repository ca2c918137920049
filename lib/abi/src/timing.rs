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
/// subject did. The longest transition measured in Bochs is 630 cycles to
/// the padded entry (a four-CPU barrier after `ipi` events up to the
/// deadline) plus about 40 of the entry's own preparation; the silence
/// tests pass with 750 and `silence_ipi` fails with 600. The pad stays 1000
/// because `irq_storm` and `level_*` (the timing subject beside a device
/// interrupt storm) see their resumes move by up to 10 cycles with every
/// pad from 750 to 950 tried, also without session 6's changes
/// (docs/kernel.md, "Bounded work at the deadline (session 6)"). The whole
/// off-CPU gap, timer exit to the next subject, is 1012 cycles (`cargo
/// xtask bench`, docs/benchmarks.md).
pub const FRAME_ENTRY_PAD: TscCycles = TscCycles(1000);
