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
//! Four rules (the first two since session 6, docs/kernel.md "Bounded
//! work at the deadline (session 6)"):
//!
//! - [`switch_at_deadline`]: a subject switch inside a frame (a `switch`
//!   event, a yield or sleep handing the frame to the next group, a wake,
//!   a monitor's entry after a trap, the rest of the frame after a stop)
//!   that could not reach its VM entry [`SWITCH_BUDGET`] before the
//!   deadline is not made in this frame: the CPU waits in root mode for
//!   the deadline (the switching partition's own time) and the frame ends
//!   there, like a timer expiry. So the transition at the boundary is the
//!   plain frame end whatever was in flight, and the pad need not hold a
//!   switch on top of it (`silence_switch`, docs/kernel.md "Bounded work
//!   at the deadline"). The scheduler's choice stands: the chosen subject
//!   is the group's active one and runs at the partition's next turn; a
//!   woken sleeper's pending events go into its saved RAX now, so its
//!   `sleep` still returns them. A switch to a subject with a restart
//!   pending is always left to the partition's next frame (its restart
//!   takes tens of thousands of ticks, no budget holds it).
//! - [`exit_at_deadline`]: an exit whose instruction runs again (I/O,
//!   CPUID, MSR and CR accesses, EPT violations, fault-like exceptions such
//!   as a monitor's trap mark, [`reexecutes`]) that arrives less than its
//!   budget before the deadline is not handled: guest RIP stays on the
//!   instruction, the CPU waits for the deadline, the frame ends there,
//!   and the instruction exits again at the subject's next entry.
//! - [`passed`]: an entry inside a frame (not the padded first entry of a
//!   frame) that would come after the deadline, or less than
//!   `exit::RESUME_MARGIN` before it, is not made; the frame ends at the
//!   deadline, as on the hypercall path (`exit::decide_and_execute`).
//!   Checked before any interrupt is injected for that entry. The switch
//!   target stays loaded (its registers stay in its own frame, `regs.rs`,
//!   as after any exit), and a VMCS
//!   that `switch_to` marked launched for this entry is marked unlaunched
//!   again, so its first real entry is a VMLAUNCH.
//! - [`trap_at_deadline`]: a trap that arrives less than [`TRAP_BUDGET`]
//!   before the deadline is not handed to the monitor in this frame: the
//!   CPU waits in root mode for the deadline (the trapping partition's own
//!   time) and the frame ends there, like a timer expiry. The trap is owed
//!   ([`owed`]) and handled at the start of the partition's next frame,
//!   when the scheduler makes the trapped subject the loaded one again:
//!   nothing ran it since, so its VMCS still holds the exit and its frame
//!   its registers; the monitor then gets the CPU as usual, with the same
//!   state page and trap count. A restart voids the owed trap ([`forget`],
//!   from `crate::monitor::untrap`), as it voids the trapped mark.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use septum_abi::{SubjectId, TscCycles};
use septum_kerncore::exits::Decision;
use septum_kerncore::plan::MAX_SUBJECTS;
use septum_kerncore::vmx::{EXIT_EXCEPTION_OR_NMI, EXIT_IO_INSTRUCTION};

use super::cpu::rdtsc;
use super::exit::GuestRegs;
use super::percpu::CpuCore;
use super::vmx::{field, vmread};

/// Whether the entry about to be made (`launch`: 1 for a VMLAUNCH) comes
/// less than `exit::RESUME_MARGIN` before the current frame's deadline
/// (or after it); if so, the CPU waits for the deadline, the time read
/// then is returned, and the loaded subject's VMCS is marked unlaunched
/// again if `launch` said this entry would have launched it.
#[inline(always)]
pub(super) fn passed(cpu: &mut CpuCore, launch: u64) -> Option<TscCycles> {
    let deadline = cpu.scheduler.deadline();
    if rdtsc().get().saturating_add(super::exit::RESUME_MARGIN) < deadline.get() {
        return None;
    }
    if launch != 0 {
        super::exit::unlaunch(cpu);
    }
    Some(wait_for(cpu, deadline))
}

/// Most TSC ticks from the check in [`trap_at_deadline`] to the entry of
/// the monitor: capturing the registers and exit data, writing the state
/// page, the switch (measured in Bochs with a temporary counter: at most
/// 608 in `silence_exits`), with margin.
const TRAP_BUDGET: u64 = 800;

/// Most TSC ticks from the check in [`switch_at_deadline`] to the VM entry
/// of the subject switched to: `switch_to` (FXSAVE, FXRSTOR, CR2,
/// KERNEL_GS_BASE, VMPTRLD; the register frame was copied twice before
/// session 6's in-place frames), an owed trap's
/// check, an injection, the timer (measured in Bochs with a temporary
/// counter, docs/kernel.md "Bounded work at the deadline"), with margin.
const SWITCH_BUDGET: u64 = 400;

/// [`SWITCH_BUDGET`] for a subject whose attention flag is raised
/// (`crate::attention`): a trapped subject's switch also loads the state
/// page its monitor may have changed (`monitor::on_enter`). With the
/// plain budget, a monitor's `switch` back to its subject a little over
/// 400 ticks before the deadline ran past it, and the next partition's
/// first instruction came up to 44 ticks late (`silence_exits` with the
/// lean pad at 320, session 12).
const ATTENDED_SWITCH_BUDGET: u64 = 1200;

/// Whether a subject switch inside the frame (to `subject`, woken with
/// `pending` if `Some`) would reach its VM entry less than
/// [`SWITCH_BUDGET`] before the deadline, or `subject` has a restart
/// pending: then it is not made, a woken subject's pending events are
/// written into its saved RAX (`exit::deliver_wake`), the CPU waits for
/// the deadline in root mode, and the time read then is returned (the
/// frame ends there). `None`: switch now.
pub(super) fn switch_at_deadline(
    cpu: &mut CpuCore,
    frame: &mut GuestRegs,
    subject: SubjectId,
    pending: Option<u64>,
) -> Option<TscCycles> {
    let deadline = cpu.scheduler.deadline();
    // A subject whose entry must look at its conditions first
    // (`crate::attention`: after a trap, its state page is loaded) takes
    // longer to switch to.
    let budget = if crate::attention::ATTENTION.is_raised(subject) {
        ATTENDED_SWITCH_BUDGET
    } else {
        SWITCH_BUDGET
    };
    if rdtsc().get().saturating_add(budget) < deadline.get()
        && !crate::lifecycle::REQUESTS.is_requested(subject)
    {
        return None;
    }
    if let Some(pending) = pending {
        super::exit::deliver_wake(cpu, frame, subject, pending);
    }
    // The subject still loaded is not the one chosen: the frame end must
    // not resume it as if it were.
    cpu.scheduler.not_entered();
    Some(wait_for(cpu, deadline))
}

/// Most TSC ticks from the check in [`exit_at_deadline`] to the VM entry
/// that resumes the subject after the kernel emulated its I/O instruction
/// (a PCI configuration access: measured in Bochs with a temporary
/// counter, docs/kernel.md "Bounded work at the deadline"), with margin.
/// 400 until session 12, when the pads came down to the transition
/// itself: `count-transition` then showed the longest transition of
/// `silence_exits` after an I/O exit (reason 30), about 55 ticks past a
/// plain one, an access just outside 400 whose emulation and resume
/// check ran past the deadline (about 470 from the check).
const EMULATION_BUDGET: u64 = 700;

/// The same for a VM's I/O instruction: its port emulation includes the
/// UART, whose write that completes a line prints it on the kernel's
/// console (`vm::io`: up to 160 characters, 3065 ticks measured in
/// Bochs for a full line in `linux_shell`), with margin. With the PCI
/// budget, such a write 401 ticks before the deadline ran about 2700
/// past it, and the next partition's entry came late (`linux_shell`,
/// `count-transition`: ready 961 ticks after a boundary whose pad is 610,
/// the entry armed 31 ticks after its time; docs/kernel.md, "Pads after
/// exact timers (session 11)"). A VM loses at most this much of its frame
/// when it does port I/O at its end (it waits for the deadline in root
/// mode and the instruction runs again at its next entry).
const VM_IO_BUDGET: u64 = 4000;

/// The same for every other exit [`exit_at_deadline`] may leave: a fault
/// (the exit data read, the report queued, the next group's switch) or a
/// monitored subject's trap (the state page, the switch to the monitor:
/// up to 608 measured from `trap_at_deadline`'s later check), with margin.
const FAULT_BUDGET: u64 = 1000;

/// The longest of the budgets [`exit_at_deadline`] applies: an exit that
/// comes earlier than this before the deadline is handled without
/// looking further (`exit::other_exit`).
pub(super) const LATE_WINDOW: u64 = if super::vm::PRESENT {
    VM_IO_BUDGET
} else if FAULT_BUDGET > EMULATION_BUDGET {
    FAULT_BUDGET
} else {
    EMULATION_BUDGET
};

/// Per subject: its last exit was left to run again ([`exit_at_deadline`]);
/// its next exit is handled whatever the time, so a subject whose frame
/// is shorter than the budget still makes progress.
static LEFT: [AtomicBool; MAX_SUBJECTS] = [const { AtomicBool::new(false) }; MAX_SUBJECTS];

/// An instruction-caused exit (`basic`: the basic exit reason) that
/// arrives less than its budget ([`EMULATION_BUDGET`] for an I/O
/// instruction, else [`FAULT_BUDGET`]) before the deadline is not handled
/// in this frame: guest RIP stays on the instruction, which runs again
/// (and exits again) at the subject's next entry; nothing was done for it,
/// so nothing is lost. Only exits that a re-executed instruction raises
/// again qualify ([`reexecutes`]); an exit during an event's delivery does
/// not (the event would be lost). The CPU waits for the deadline in root
/// mode and the time read then is returned (the frame ends there, like a
/// timer expiry). `None`: handle it now.
/// `reason`: the full exit-reason field (a failed entry is never left);
/// `now`: the time read when the exit came. The caller only asks inside
/// [`LATE_WINDOW`] before the deadline.
#[inline(always)]
pub(super) fn exit_at_deadline(
    cpu: &mut CpuCore,
    reason: u64,
    now: TscCycles,
) -> Option<TscCycles> {
    let basic = reason as u16;
    // An exit no instruction raises (an interrupt, an NMI, an interrupt
    // window) is always handled.
    if reason & (1 << 31) != 0 || !instruction_exit(basic) {
        return None;
    }
    let deadline = cpu.scheduler.deadline();
    let budget = if basic != EXIT_IO_INSTRUCTION {
        FAULT_BUDGET
    } else if super::vm::loaded_is_vm(cpu) {
        VM_IO_BUDGET
    } else {
        EMULATION_BUDGET
    };
    if now.get().saturating_add(budget) < deadline.get() {
        return None;
    }
    if !reexecutes(basic) {
        return None;
    }
    leave(cpu)
}

/// Leave the loaded subject's exit unhandled (its instruction runs again
/// at its next entry: the caller knows it does), wait for the deadline
/// and return the time read then; `None` (handle it now) if its previous
/// exit was left already, so that a subject whose frame is shorter than
/// the budget still makes progress. Also `exit::late_hypercall`'s.
pub(super) fn leave(cpu: &mut CpuCore) -> Option<TscCycles> {
    let left = LEFT.get(cpu.loaded?.id().index())?;
    if left.swap(false, Ordering::Relaxed) {
        return None;
    }
    left.store(true, Ordering::Relaxed);
    let deadline = cpu.scheduler.deadline();
    Some(wait_for(cpu, deadline))
}

/// The subject's exit `basic` was handled: if an instruction raised it, a
/// later one may be left again.
#[inline(always)]
pub(super) fn handled(cpu: &CpuCore, basic: u16) {
    if instruction_exit(basic) {
        handled_any(cpu);
    }
}

/// The loaded subject's exit was handled, whatever its kind (a hypercall
/// inside its window): a later exit may be left again.
#[inline(always)]
pub(super) fn handled_any(cpu: &CpuCore) {
    if let Some(left) = cpu.loaded.and_then(|vmcs| LEFT.get(vmcs.id().index())) {
        left.store(false, Ordering::Relaxed);
    }
}

/// Whether the basic exit reason `basic` may be one that [`reexecutes`]
/// (decided by the reason alone, without a VMCS read): an exception, or
/// CPUID, HLT, INVD, INVLPG, RDPMC, RDTSC, RSM, VMX instructions, CR and
/// DR moves, I/O, RDMSR, WRMSR, MWAIT, MONITOR, PAUSE, descriptor-table
/// accesses, EPT violation and misconfiguration, INVEPT, RDTSCP, INVVPID,
/// WBINVD, XSETBV, RDRAND, INVPCID, VMFUNC, ENCLS, RDSEED, XSAVES,
/// XRSTORS (SDM Vol. 3D, appendix C).
#[inline(always)]
fn instruction_exit(basic: u16) -> bool {
    // One bit test, not a jump table: this runs on the way to the wait of
    // an exit left at the deadline, which the next partition's transition
    // carries.
    if basic < 64 {
        INSTRUCTION_EXITS >> basic & 1 != 0
    } else {
        basic == 64
    }
}

/// The basic exit reasons below 64 that [`instruction_exit`] names, one
/// bit each (64, XRSTORS, is tested on its own).
const INSTRUCTION_EXITS: u64 = bits(EXIT_EXCEPTION_OR_NMI, EXIT_EXCEPTION_OR_NMI)
    | bits(10, 10)
    | bits(12, 32)
    | bits(36, 36)
    | bits(39, 40)
    | bits(46, 51)
    | bits(53, 55)
    | bits(57, 61)
    | bits(63, 63);

// The same set as the `matches!` this replaced (the optimiser's own mask
// for it read 0xbeefc191fffff401).
const _: () = assert!(INSTRUCTION_EXITS == 0xbeef_c191_ffff_f401);

/// Bits `first` to `last` (both below 64) of a `u64`.
const fn bits(first: u16, last: u16) -> u64 {
    let through_last = u64::MAX >> 63u16.wrapping_sub(last);
    let below_first = (1u64 << first).wrapping_sub(1);
    through_last & !below_first
}

/// Whether the exit `basic` is raised again, the same, when the subject
/// is entered again without handling it: a fault-like exception (not a
/// trap-like #DB, not #MC, not one whose IRET unblocked NMIs) or an
/// instruction that exits before it executes (SDM 25.1.2, 27.2), and no
/// event was being delivered.
/// Only called for an [`instruction_exit`].
fn reexecutes(basic: u16) -> bool {
    let instruction = basic != EXIT_EXCEPTION_OR_NMI || {
        let info = vmread(field::EXIT_INTERRUPTION_INFO).unwrap_or(0);
        let kind = (info >> 8) & 7;
        let vector = info & 0xff;
        let nmi_unblocked = info & (1 << 12) != 0;
        // Type 3: hardware exception; 6: software exception (INT3,
        // INTO: guest RIP is the instruction's).
        (kind == 3 && vector != 1 && vector != 18 || kind == 6) && !nmi_unblocked
    };
    instruction && vmread(field::IDT_VECTORING_INFO).unwrap_or(1 << 31) & (1 << 31) == 0
}

/// Spin in root mode until `deadline`, taking the interrupts requested
/// meanwhile (`interrupts::take_requested`: the waiting partition's time,
/// as if its subject ran); returns the time read then.
pub(super) fn wait_for(cpu: &mut CpuCore, deadline: TscCycles) -> TscCycles {
    loop {
        let now = rdtsc();
        if now >= deadline {
            return now;
        }
        super::interrupts::take_requested(cpu);
        super::cpu::pause();
    }
}

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
    cpu: &mut CpuCore,
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
    crate::attention::ATTENTION.raise(by);
    Some(wait_for(cpu, deadline))
}

/// Whether `subject` owes a trap to its monitor ([`owed`]).
pub(super) fn owes(subject: SubjectId) -> bool {
    OWED.get(subject.index())
        .is_some_and(|word| word.load(Ordering::Relaxed) & OWED_FLAG != 0)
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
