//! Work inside a minor frame that would run past the frame's deadline:
//! the frame ends at its deadline instead, so that the next partition's
//! transition does not carry it.
//!
//! Why: a subject switch inside a frame (a monitored subject's trap handed
//! to its monitor, a `switch` event, a wake) is work the kernel does
//! between an exit and the entry of the next subject of the same group.
//! When the deadline passed during that work, the switch target used to be
//! entered with a preemption timer of 0 only to exit at once, and only
//! then did the frame end. A trap at the deadline (the registers captured,
//! the state page written, the monitor loaded, entered and exited) made
//! the transition about 1430 ticks, beyond `FRAME_ENTRY_PAD`: the next
//! partition's first instruction ran up to 425 ticks late, so it could
//! tell when its neighbour trapped (`silence_exits`; docs/kernel.md,
//! "Constant-time frame transitions").
//!
//! Two rules:
//!
//! - [`passed`]: an entry inside a frame (not the padded first entry of a
//!   frame) that would come after the deadline is not made; the frame ends
//!   now, as the hypercall path already does (`exit::decide_and_execute`).
//!   Checked before any interrupt is injected for that entry. The switch
//!   target stays loaded: its registers are in the exit's frame and move
//!   into its context at the next switch, as after any exit, and a VMCS
//!   that `switch_to` marked launched for this entry is marked unlaunched
//!   again, so its first real entry is a VMLAUNCH.
//! - [`trap_at_deadline`]: a trap that arrives less than [`TRAP_BUDGET`]
//!   before the deadline is not handed to the monitor in this frame: the
//!   CPU waits in root mode for the deadline (the trapping partition's own
//!   time) and the frame ends there, like a timer expiry. The trap is owed
//!   ([`owed`]) and handled at the start of the partition's next frame,
//!   when the scheduler makes the trapped subject the loaded one again:
//!   nothing ran it since, so its VMCS still holds the exit and the frame
//!   its registers; the monitor then gets the CPU as usual, with the same
//!   state page and trap count. A restart voids the owed trap ([`forget`],
//!   from `crate::monitor::untrap`), as it voids the trapped mark.

use core::sync::atomic::{AtomicU32, Ordering};

use septum_abi::{SubjectId, TscCycles};
use septum_kerncore::exits::Decision;
use septum_kerncore::plan::MAX_SUBJECTS;

use super::cpu::rdtsc;
use super::exit::GuestRegs;
use super::percpu::CpuCore;

/// Whether the entry about to be made (`launch`: 1 for a VMLAUNCH) comes
/// after the current frame's deadline; if so, the time read, and the
/// loaded subject's VMCS is marked unlaunched again if `launch` said this
/// entry would have launched it.
#[inline(always)]
pub(super) fn passed(cpu: &mut CpuCore, launch: u64) -> Option<TscCycles> {
    let now = rdtsc();
    if now < cpu.scheduler.deadline() {
        return None;
    }
    if launch != 0 {
        super::exit::unlaunch(cpu);
    }
    Some(now)
}

/// Most TSC ticks from the check in [`trap_at_deadline`] to the entry of
/// the monitor: capturing the registers and exit data, writing the state
/// page, the switch (measured in Bochs with a temporary counter: at most
/// 608 in `silence_exits`), with margin.
const TRAP_BUDGET: u64 = 800;

/// A trap owed per monitored subject: 0 for none, else
/// `OWED_FLAG | monitor << 8 | event`.
static OWED: [AtomicU32; MAX_SUBJECTS] = [const { AtomicU32::new(0) }; MAX_SUBJECTS];

/// Marks an entry of [`OWED`] as set.
const OWED_FLAG: u32 = 1 << 31;

/// A monitored subject's trap (`by` to `monitor` with `event`) that the
/// kernel could not hand to the monitor before the frame's deadline
/// ([`TRAP_BUDGET`]): it is owed to the start of the partition's next
/// frame ([`owed`]), and the frame ends at its deadline (the time read is
/// returned; the CPU waits for the deadline in root mode, in the trapping
/// partition's own time). `None`: the trap fits, handle it now.
pub(super) fn trap_at_deadline(
    cpu: &CpuCore,
    by: SubjectId,
    monitor: SubjectId,
    event: u8,
) -> Option<TscCycles> {
    let deadline = cpu.scheduler.deadline();
    if rdtsc().get().saturating_add(TRAP_BUDGET) < deadline.get() {
        return None;
    }
    let slot = OWED.get(by.index())?;
    slot.store(
        OWED_FLAG | u32::from(monitor.0) << 8 | u32::from(event),
        Ordering::Relaxed,
    );
    loop {
        let now = rdtsc();
        if now >= deadline {
            return Some(now);
        }
        super::cpu::pause();
    }
}

/// `subject` was just made the loaded one: the trap it owes, if any, is
/// handed to its monitor now (its VMCS still holds the exit, its
/// registers are in `frame`: nothing ran it since); returns what runs
/// next. Not checked against the deadline again: in a frame shorter than
/// [`TRAP_BUDGET`] the trap would otherwise be owed forever.
pub(super) fn owed(cpu: &mut CpuCore, frame: &GuestRegs, subject: SubjectId) -> Option<Decision> {
    let word = OWED.get(subject.index())?.swap(0, Ordering::Relaxed);
    if word & OWED_FLAG == 0 {
        return None;
    }
    let monitor = SubjectId((word >> 8) as u16);
    let event = word as u8;
    Some(crate::monitor::trap(
        &mut cpu.scheduler,
        frame,
        subject,
        monitor,
        event,
    ))
}

/// `subject` is being restarted: the trap it owed is void, like its
/// trapped mark (`crate::monitor::untrap`).
pub fn forget(subject: SubjectId) {
    if let Some(slot) = OWED.get(subject.index()) {
        slot.store(0, Ordering::Relaxed);
    }
}
