//! Monitors: a monitored subject's trap written to its state page, and its
//! registers loaded back from the page when its monitor resumes it.
//!
//! Why here: kerncore (`septum_kerncore::monitor`) decides who runs, but
//! owns no memory; the arch layer moves bytes. This module is the kernel's
//! sequence between the two (docs/kernel.md, "Monitors"):
//!
//! - [`trap`] (the arch executes `Decision::Trap`): while the subject's
//!   registers are in the exit frame and its VMCS is current, capture them
//!   with the exit data, count the trap, write the page and mark the
//!   subject *trapped*; then kerncore hands the CPU to the monitor.
//! - [`on_enter`] (every time the arch makes a subject the loaded one): a
//!   trapped subject gets the registers its monitor may have changed,
//!   read from the page, before it runs, and a VM the interrupt its device
//!   monitor asserted (`vm::assert_device_interrupt`) and the HLT state it
//!   asked for (`vm::resume_halted`); the mark is cleared. A subject that was not trapped is not touched, so the page is
//!   read once per trap, never on the ordinary switch path.
//!
//! - [`untrap`] (a restart, `arch::x86_64::restart`): a restarted subject
//!   starts from its spec's registers, never from a page its monitor left;
//!   its mark is cleared whatever the order of the calls on the entry path.
//!   The page itself is the monitor's memory and keeps the last trap (its
//!   `traps` count goes on), and the subject still runs only when a member
//!   of its group switches to it (docs/kernel.md, "Monitors and restarts").
//!
//! The trapped marks are one flag per subject. Only the subject's own CPU
//! touches its flag (a monitored subject and its monitor share a
//! scheduling group, so a CPU), so relaxed atomics suffice; atomics only
//! because the table is a `static`.

use core::sync::atomic::{AtomicBool, Ordering};

use septum_abi::SubjectId;
use septum_abi::state::{STATE_MAGIC, STATE_VERSION};
use septum_kerncore::exits::Decision;
use septum_kerncore::plan::{MAX_SUBJECTS, Scheduler};

use crate::arch::x86_64::exit::GuestRegs;
use crate::arch::x86_64::monitor as page;

/// Whether each subject trapped and was not yet resumed.
static TRAPPED: [AtomicBool; MAX_SUBJECTS] = [const { AtomicBool::new(false) }; MAX_SUBJECTS];

/// Save `by`'s state (loaded: its registers in `frame`, its VMCS current)
/// to its page, mark it trapped, and hand the CPU to `monitor` with
/// `event` pending. Returns what runs next.
pub fn trap(
    scheduler: &mut Scheduler<'_>,
    frame: &GuestRegs,
    by: SubjectId,
    monitor: SubjectId,
    event: u8,
) -> Decision {
    let traps = page::read_page(by).map_or(0, |old| {
        if old.magic == STATE_MAGIC {
            old.traps.wrapping_add(1)
        } else {
            1
        }
    });
    let mut state = page::capture(frame);
    state.magic = STATE_MAGIC;
    state.version = STATE_VERSION;
    state.traps = traps;
    if page::write_page(by, &state)
        && let Some(flag) = TRAPPED.get(by.index())
    {
        flag.store(true, Ordering::Relaxed);
        crate::attention::ATTENTION.raise(by);
    }
    septum_kerncore::monitor::hand_over(scheduler, by, monitor, event)
}

/// Whether `subject` trapped and its monitor's state page is still to be
/// loaded at its next entry ([`on_enter`]).
pub fn is_trapped(subject: SubjectId) -> bool {
    TRAPPED
        .get(subject.index())
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}

/// `subject` is now the loaded one (its registers in `frame`, its VMCS
/// current): if it was trapped, load what its monitor may have changed.
#[inline(always)]
pub fn on_enter(subject: SubjectId, frame: &mut GuestRegs) {
    let trapped = TRAPPED
        .get(subject.index())
        .is_some_and(|flag| flag.swap(false, Ordering::Relaxed));
    if trapped && let Some(state) = page::read_page(subject) {
        page::load(frame, &state);
        if state.device_interrupt != 0 {
            crate::arch::x86_64::vm::assert_device_interrupt(subject);
        }
        if state.resume_halted != 0 {
            crate::arch::x86_64::vm::resume_halted(subject);
        }
    }
}

/// `subject` is being restarted: it is no longer trapped, so no later
/// entry loads its state page.
pub fn untrap(subject: SubjectId) {
    crate::arch::x86_64::late_entry::forget(subject);
    if let Some(flag) = TRAPPED.get(subject.index()) {
        flag.store(false, Ordering::Relaxed);
    }
}
