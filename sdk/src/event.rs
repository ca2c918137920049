//! Events and time: the subject's whole hypercall interface.
//!
//! A subject raises one of its source events with `vmcall`, RAX = event
//! number (0..63). Nothing else is passed; data travels through shared
//! memory. The numbers are typed so a source event is never confused with a
//! target event or a vector; the subject gets them from its info page by
//! name (see [`crate::info::Info::source_event`]).

use septum_abi::hypercall::MAX_EVENTS;

/// An event number type: 0..63, checked on construction.
macro_rules! event_number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(u8);

        impl $name {
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
    };
}

event_number!(
    /// A source event number (0..63) of the calling subject.
    SourceEventId
);
event_number!(
    /// A target event number (0..63): an event the subject receives.
    TargetEventId
);

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
