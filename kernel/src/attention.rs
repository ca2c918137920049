//! One flag per subject that says "look before entering it": raised after
//! any of the conditions that make a subject's entry more than a switch
//! (a restart requested, `lifecycle::REQUESTS`; a trap whose state page
//! its monitor may have changed, `monitor::TRAPPED`; a trap owed to its
//! monitor, `late_entry::owed`), cleared only by the entry that looks at
//! them all.
//!
//! Why: the frame transition looked at each condition on its own, twice
//! (once to know whether the frame starts with its own work,
//! `exit::own_work`, once on the switch), about 30 instructions on every
//! transition for conditions that hold a few times per run. One load now
//! stands for them; the pad that covers the longest transition shrinks
//! with it (docs/kernel.md, "Pads after a leaner switch (session 12)").
//!
//! The invariant: whenever a condition holds, the subject's flag is
//! raised. Each writer sets its condition first and raises the flag
//! after it; the entry takes the flag (clears it) first and looks at the
//! conditions after that, and raises it again if one still holds. A
//! condition set on another CPU meanwhile (a `reset` event) raises the
//! flag again after the take, so it is seen at the next entry at the
//! latest, as before.

use core::sync::atomic::{AtomicBool, Ordering};

use septum_abi::SubjectId;
use septum_kerncore::plan::MAX_SUBJECTS;

/// The flags, indexed by subject id.
pub struct Attention([AtomicBool; MAX_SUBJECTS]);

/// Every subject's flag.
pub static ATTENTION: Attention = Attention([const { AtomicBool::new(false) }; MAX_SUBJECTS]);

impl Attention {
    /// A condition of `subject`'s entry now holds (set it first).
    pub fn raise(&self, subject: SubjectId) {
        if let Some(flag) = self.0.get(subject.index()) {
            flag.store(true, Ordering::Release);
        }
    }

    /// Whether `subject`'s entry must look at its conditions.
    #[inline(always)]
    pub fn is_raised(&self, subject: SubjectId) -> bool {
        self.0
            .get(subject.index())
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }

    /// [`Attention::is_raised`], clearing the flag: the caller then looks
    /// at every condition and raises it again for one that still holds.
    #[inline(always)]
    pub fn take(&self, subject: SubjectId) -> bool {
        self.0
            .get(subject.index())
            .is_some_and(|flag| flag.swap(false, Ordering::AcqRel))
    }
}
