//! The hypercall interface: `vmcall` with the source event number in RAX.
//!
//! Nothing else is passed; data travels through shared memory. A number at
//! or above [`MAX_EVENTS`], or one the policy does not define for the
//! calling subject, is ignored by the kernel and the subject continues after
//! the `vmcall`.

/// Number of source (and target) event slots per subject.
pub const MAX_EVENTS: usize = 64;

/// Mask applied to an event number before it indexes a table (the number is
/// first checked to be below [`MAX_EVENTS`]; the mask keeps speculative
/// execution inside the table too).
pub const EVENT_MASK: u64 = (MAX_EVENTS as u64) - 1;
