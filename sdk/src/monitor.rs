//! Monitor subjects: read a monitored subject's state, change it, resume
//! it.
//!
//! A subject with `onFault="monitor"` hands the exits its `<monitor>`
//! chooses to its monitor (docs/kernel.md, "Monitors"): the kernel writes
//! the subject's registers and the exit's data into the subject's state
//! page (layout [`septum_abi::state`], mapped into the monitor) and
//! switches to the monitor. The monitor reads the page ([`Monitored::state`]),
//! may change registers ([`Monitored::set_state`]; RIP advance with
//! [`SubjectState::advance_rip`]) and resumes the subject with its
//! `switch` event ([`Monitored::resume`]). The kernel loads the changed
//! general-purpose registers, RSP, RIP and the status flags of RFLAGS
//! before the subject runs again.
//!
//! `resume` returns when the monitor has the CPU again: the next trap of
//! its subject (or another switch to it). So a monitor's loop is:
//!
//! ```ignore
//! let target = Monitored::open(&info, "target_state", "resume").unwrap();
//! loop {
//!     target.resume();                  // runs the subject until it traps
//!     let mut state = target.state()?;  // what trapped, and its registers
//!     state.advance_rip();              // e.g. skip the instruction
//!     target.set_state(&state)?;
//! }
//! ```
//!
//! The page is memory the monitor shares with the kernel, so it is a
//! [`Region`]: every word is read and written atomically, never through a
//! Rust reference. This module has no `unsafe` of its own.

use core::sync::atomic::Ordering;

use septum_abi::state::STATE_WORDS;
pub use septum_abi::state::{Gpr, STATE_MAGIC, Seg, SubjectState};

use crate::event::{SourceEventId, raise};
use crate::info::Info;
use crate::region::{Region, RegionError};

/// A monitored subject, seen from its monitor: its state page and the
/// `switch` event that resumes it.
#[derive(Debug, Clone)]
pub struct Monitored<'a> {
    page: Region<'a>,
    resume: SourceEventId,
}

impl<'a> Monitored<'a> {
    /// A monitored subject whose state page is `page` and whose resume
    /// event is `resume`.
    pub fn new(page: Region<'a>, resume: SourceEventId) -> Self {
        Self { page, resume }
    }

    /// The state page's current contents (all zero before the first trap;
    /// [`SubjectState::magic`] is [`STATE_MAGIC`] from then on).
    pub fn state(&self) -> Result<SubjectState, RegionError> {
        let mut words = [0u64; STATE_WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            *word = self.page.load(i.wrapping_mul(8), Ordering::Acquire)?;
        }
        Ok(SubjectState::from_words(&words))
    }

    /// Writes `state` to the page: what the subject resumes with (the
    /// kernel takes the fields `septum_abi::state` lists, ignores the
    /// rest). Refused if the monitor maps the page read-only.
    pub fn set_state(&self, state: &SubjectState) -> Result<(), RegionError> {
        for (i, word) in state.to_words().into_iter().enumerate() {
            self.page
                .store(i.wrapping_mul(8), word, Ordering::Release)?;
        }
        Ok(())
    }

    /// Resumes the subject (raises the `switch` event); returns when the
    /// monitor next gets the CPU, normally at the subject's next trap.
    pub fn resume(&self) {
        raise(self.resume);
    }
}

impl Monitored<'static> {
    /// The subject whose state page the policy maps as memory `state` and
    /// whose resume event is source event `resume`; `None` if either is
    /// missing.
    pub fn open(info: &Info<'static>, state: &str, resume: &str) -> Option<Self> {
        Some(Self::new(
            info.memory_region(state)?,
            info.source_event(resume)?,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    #[test]
    fn state_round_trips_through_the_page() {
        let words: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];
        let page = Region::from_atomics(&words);
        let target = Monitored::new(page.clone(), SourceEventId::new(3).unwrap());
        assert_eq!(target.state().unwrap(), SubjectState::default());
        // The kernel writes a trap: magic, exit reason 30, RIP, RDX.
        words[0].store(STATE_MAGIC, Ordering::Relaxed);
        words[3].store(30, Ordering::Relaxed);
        words[7].store(1, Ordering::Relaxed);
        words[10 + 2].store(0x3f8, Ordering::Relaxed);
        words[26].store(0x20_1000, Ordering::Relaxed);
        let mut state = target.state().unwrap();
        assert_eq!(state.magic, STATE_MAGIC);
        assert_eq!(state.basic_exit_reason(), 30);
        assert_eq!(state.gpr(Gpr::Rdx), 0x3f8);
        state.advance_rip();
        state.set_gpr(Gpr::Rax, 0x42);
        target.set_state(&state).unwrap();
        assert_eq!(words[26].load(Ordering::Relaxed), 0x20_1001);
        assert_eq!(words[10].load(Ordering::Relaxed), 0x42);
        // A read-only mapping reads but cannot write.
        let ro = Monitored::new(page.read_only(), SourceEventId::new(3).unwrap());
        assert_eq!(ro.state().unwrap(), state);
        assert_eq!(ro.set_state(&state), Err(RegionError::ReadOnly));
    }
}
