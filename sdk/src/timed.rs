//! Timed events: arm a one-shot TSC deadline in the subject's timed-event
//! page (`<timedEvent page event>` in the policy; layout
//! `septum_abi::timed`). When the deadline has passed, the kernel marks the
//! policy's target event pending on this subject, wakes it if it waits,
//! and writes [`DISARMED`] back (docs/kernel.md, "Timed events").

use core::sync::atomic::Ordering;

use septum_abi::timed::DEADLINE_OFFSET;
pub use septum_abi::timed::DISARMED;

use crate::region::{Region, RegionError};

/// The subject's timed-event page (a writable mapping of it).
#[derive(Clone, Debug)]
pub struct TimedEvent<'a> {
    page: Region<'a>,
}

impl<'a> TimedEvent<'a> {
    /// The timed event whose page is mapped as `page`.
    pub fn new(page: Region<'a>) -> Self {
        Self { page }
    }

    /// Arm the event for TSC value `deadline` (replacing any armed one).
    pub fn arm(&self, deadline: u64) -> Result<(), RegionError> {
        self.page
            .store(DEADLINE_OFFSET, deadline, Ordering::Release)
    }

    /// Disarm the event (a trigger already marked pending stays pending).
    pub fn disarm(&self) -> Result<(), RegionError> {
        self.arm(DISARMED)
    }

    /// The armed deadline, [`DISARMED`] if none (after the trigger).
    pub fn deadline(&self) -> Result<u64, RegionError> {
        self.page.load(DEADLINE_OFFSET, Ordering::Acquire)
    }
}
