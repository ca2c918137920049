//! The hypercall interface: `vmcall` with the source event number in RAX.
//!
//! Nothing else is passed; data travels through shared memory. A number at
//! or above [`MAX_EVENTS`], or one the policy does not define for the
//! calling subject, is ignored by the kernel and the subject continues after
//! the `vmcall`.
//!
//! One hypercall returns a value: a `kernel` event with action `sleep`
//! returns, in RAX, the subject's target events that were pending when it
//! woke (bit `n`: target event `n`; never 0), taken so that each is
//! delivered once. Every other hypercall leaves RAX as the subject set it.
//!
//! The info page tells a subject which of its source events is a kernel
//! event, and of which action ([`KernelActionCode`]), so that the SDK can
//! offer `wait`, `yield` or `poweroff` as typed calls.

/// The vector of the inter-processor interrupt the kernel sends to the CPU
/// of an `ipi` event's target (host vector: it never reaches a subject;
/// above every device line's `32 + line`, below the IOMMU fault vector 253
/// and the spurious vector 255).
pub const IPI_VECTOR: u8 = 0xf0;

/// Number of source (and target) event slots per subject.
pub const MAX_EVENTS: usize = 64;

/// Mask applied to an event number before it indexes a table (the number is
/// first checked to be below [`MAX_EVENTS`]; the mask keeps speculative
/// execution inside the table too).
pub const EVENT_MASK: u64 = (MAX_EVENTS as u64) - 1;

/// What a `kernel` source event does, as the subject info page encodes it
/// (the action byte of a source-event record, see [`crate::info`]). The
/// byte is [`NO_KERNEL_ACTION`] for any other source event, and on pages
/// written before the field existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KernelActionCode {
    /// Give up the rest of the minor frame.
    Yield = 1,
    /// Sleep until a target event is pending; returns them in RAX.
    Sleep = 2,
    /// Power the machine off.
    Poweroff = 3,
    /// Reset the machine.
    Reboot = 4,
    /// Stop the system, reporting a subject-requested panic.
    Panic = 5,
    /// Switch every CPU to the next plan at the end of the major frame.
    NextPlan = 6,
    /// Unmask the caller's level-triggered IRQ lines after handling them.
    UnmaskIrq = 7,
}

/// Action byte of a source event that is not a kernel event.
pub const NO_KERNEL_ACTION: u8 = 0;

impl KernelActionCode {
    /// Decode an action byte; `None` for [`NO_KERNEL_ACTION`] and unknown
    /// values.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(Self::Yield),
            2 => Some(Self::Sleep),
            3 => Some(Self::Poweroff),
            4 => Some(Self::Reboot),
            5 => Some(Self::Panic),
            6 => Some(Self::NextPlan),
            7 => Some(Self::UnmaskIrq),
            _ => None,
        }
    }
}
