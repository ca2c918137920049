//! Events and time: the subject's whole hypercall interface.
//!
//! A subject raises one of its source events with `vmcall`, RAX = event
//! number (0..63). Nothing else is passed; data travels through shared
//! memory. The numbers are typed so a source event is never confused with a
//! target event or a vector; the subject gets them from its info page by
//! name (see [`crate::info::Info::source_event`]).

use septum_abi::hypercall::MAX_EVENTS;

/// A source event number (0..63) of the calling subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceEventId(u8);

impl SourceEventId {
    /// The event with number `number`, if it is in range.
    pub const fn new(number: u8) -> Option<Self> {
        if (number as usize) < MAX_EVENTS {
            Some(Self(number))
        } else {
            None
        }
    }

    /// The event number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// A target event number (0..63): an event the subject receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TargetEventId(u8);

impl TargetEventId {
    /// The event with number `number`, if it is in range.
    pub const fn new(number: u8) -> Option<Self> {
        if (number as usize) < MAX_EVENTS {
            Some(Self(number))
        } else {
            None
        }
    }

    /// The event number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

/// Raises `event`. Returns when the kernel resumes the subject: at once for
/// most events, at the next minor frame for `yield`/`sleep`, never for
/// `poweroff`.
pub fn raise(event: SourceEventId) {
    crate::arch::vmcall(u64::from(event.get()));
}

/// Reads the time-stamp counter (in Bochs: one tick per instruction).
pub fn rdtsc() -> u64 {
    crate::arch::rdtsc()
}
