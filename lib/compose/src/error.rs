//! Why a validated system does not compose, and where in the policy.
//!
//! Policies that passed validation normally compose; what remains are
//! limits only known after allocation (memory exhausted, overlaps with ELF
//! segments, info page capacity, inexact tick rates, a kernel action this
//! kernel version lacks). Each step attaches the policy element it was
//! working on ([`Origin`]) so the caller can point at it (file:line:col).

/// A composition failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ComposeError {
    /// What is wrong, naming the subject, region or frame concerned.
    pub message: String,
    /// The policy element it concerns, when there is one.
    pub origin: Option<Origin>,
}

/// The policy element a [`ComposeError`] concerns (indices into the
/// [`crate::input::SystemInput`], which keeps policy order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A subject.
    Subject(usize),
    /// A `<memory>` region.
    Region(usize),
    /// A channel.
    Channel(usize),
    /// The scheduling plan.
    Scheduling,
}

impl ComposeError {
    /// An error not (yet) attached to a policy element.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            origin: None,
        }
    }

    /// Attach `origin` unless the error already has one.
    pub fn at(mut self, origin: Origin) -> Self {
        self.origin.get_or_insert(origin);
        self
    }
}

/// `Err` of a [`ComposeError`] with `message` and no origin.
pub fn fail<T>(message: impl Into<String>) -> Result<T, ComposeError> {
    Err(ComposeError::new(message))
}
