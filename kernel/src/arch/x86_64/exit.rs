//! The VM-exit path (the hot path) and the execution of scheduler decisions.
//!
//! Host RIP is `septum_vmexit_stub` and host RSP the end of the subject's
//! register frame (`regs.rs`). The stub pushes the guest's general-purpose
//! registers there, forming its [`GuestRegs`] in place, switches to the
//! CPU's exit stack (whose top is the CPU's per-CPU block, `percpu.rs`)
//! and calls [`septum_vmexit`] with the block's core, which names the
//! loaded subject's frame (`CpuCore::frame`). Rust does three things, in
//! order:
//!
//! 1. `handle_exit` reads the VMCS into kerncore's vendor-neutral [`Exit`]
//!    (for VMCALL it also moves guest RIP past the instruction: every
//!    hypercall completes, even an ignored one);
//! 2. [`dispatch`] (kerncore) decides, with this CPU's [`Scheduler`];
//! 3. `execute` carries out the [`Decision`]: resume, switch subject
//!    (VMPTRLD of the other subject's VMCS, its register frame made the
//!    loaded one, and an exchange of the x87/SSE state and CR2 with its
//!    save slot: the state a subject can write that the VMCS does not
//!    hold), wake a sleeper (enter it, switching if it is
//!    another subject, with the pending events kerncore took for it written
//!    into RAX of its register frame: the result of its `sleep` hypercall,
//!    no VMCS access), idle in root mode until the frame deadline, report a
//!    fault, or stop the machine.
//!
//! Nothing here chooses a subject or interprets the policy. It returns 1
//! for VMLAUNCH (first entry of that VMCS) or 0 for VMRESUME; the stub
//! pops the loaded subject's frame and enters. Before every entry the
//! VMX-preemption timer is set to `(deadline - entry) >>
//! IA32_VMX_MISC[4:0]`, counted from the entry itself: Rust stores the
//! deadline (`CpuCore::timer_at`) and the stub computes the value from its
//! own TSC read; the padded entry, whose time is known, writes it before
//! its spin. The first entry of a minor frame does not return:
//! `enter_at` enters at the fixed time `boundary + pad` (the frame's own,
//! `MinorFrameSpec::pad` and its lead), so
//! when the next subject starts says nothing about what the previous one
//! did (docs/kernel.md, "Constant-time frame transitions").
//!
//! A VMCALL exit costs 5 VMCS accesses: exit reason, instruction length,
//! guest RIP (read and write back, advanced past VMCALL) and the
//! preemption-timer value (the stub's). With the `count-vmcs` feature the
//! accesses of every exit are counted (the stub's write added) and the
//! largest count of any VMCALL exit is printed at poweroff.
//!
//! If VMLAUNCH/VMRESUME itself fails, execution continues after it in the
//! stub, which calls [`septum_vmentry_failed`]: it prints the VM-instruction
//! error and stops the system.

use core::arch::global_asm;
use core::cell::UnsafeCell;
#[cfg(feature = "count-vmcs")]
use core::sync::atomic::{AtomicU32, Ordering};

use septum_abi::timing::{INTERRUPT_TAKE_LEAD, entry_pad};
use septum_abi::{SubjectId, TscCycles};
use septum_kerncore::events::PendingTable;
use septum_kerncore::exits::{Decision, Exit, FaultDetail, FaultInfo, dispatch};
use septum_kerncore::fault::FaultLine;
use septum_kerncore::ioport::IoAccess;
use septum_kerncore::plan::{MAX_SUBJECTS, Scheduler};
use septum_kerncore::vmx::{
    EXIT_EPT_MISCONFIGURATION, EXIT_EPT_VIOLATION, EXIT_EXCEPTION_OR_NMI, EXIT_EXTERNAL_INTERRUPT,
    EXIT_INTERRUPT_WINDOW, EXIT_IO_INSTRUCTION, EXIT_PREEMPTION_TIMER, EXIT_VMCALL,
};

use super::cpu::{self, rdtsc};
use super::percpu::{self, CpuCore, CpuNumber};
use super::vmx::{self, GuestField, Vmcs, VmxError, field, vmread, write_guest};
use super::{interrupts, smp};
use crate::system::SPEC;
use crate::{kprintln, stop};

/// Guest general-purpose registers, in the order the stub pushes them
/// (lowest address first). RSP and RIP live in the VMCS. Each subject's
/// live in its frame slot (`regs.rs`), which the stub fills and pops.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GuestRegs {
    /// RAX (the hypercall's event number).
    pub rax: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RBX.
    pub rbx: u64,
    /// RBP.
    pub rbp: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
}

impl GuestRegs {
    /// All registers zero.
    pub const ZERO: Self = Self {
        rax: 0,
        rcx: 0,
        rdx: 0,
        rbx: 0,
        rbp: 0,
        rsi: 0,
        rdi: 0,
        r8: 0,
        r9: 0,
        r10: 0,
        r11: 0,
        r12: 0,
        r13: 0,
        r14: 0,
        r15: 0,
    };
}

global_asm!(
    ".text",
    ".balign 16",
    // septum_vmx_enter_padded(frame, launch, not_before): the entry of
    // the first subject of a minor frame (see `enter_at`), whose timer
    // `enter_at` wrote for this entry's time. Pops the frame's registers
    // but RAX, RCX and RDX first (RSP ends at the word after the frame),
    // spins until the TSC reaches `not_before`, evens out the spin's
    // granularity, then loads the three and enters: 5 instructions
    // between the spin and VMRESUME instead of the 19 of a whole pop.
    // The loop is three instructions (RDTSC; SUB of the low 32 bits of
    // `not_before`, kept in ECX; JS while the 32-bit difference is
    // negative: exact for a target less than 2^31 ticks away, and the pad
    // is a few hundred), so the read that ends it lies d = 0 to 2 ticks
    // past `not_before`. A ladder of compares (two instructions per step)
    // and NOPs makes the path from that read to label 12 the same length
    // whatever d was: SUB, JS, then 5 - d instructions (d = 2: two
    // compares and branches, the jump; d = 1: 4, one NOP, the jump; d = 0:
    // 2, three NOPs and one, the jump), so label 12 runs 9 ticks after
    // `not_before` and VMRESUME 5 instructions later (exactly so where one tick is
    // one instruction, as in Bochs). Only direct branches. A read later
    // than that (arrived late) takes the d = 2 path. The launch flag rides
    // in RCX's upper half (the loop's SUB reads ECX only) and becomes CF
    // before the loads, which leave the flags alone.
    ".global septum_vmx_enter_padded",
    "septum_vmx_enter_padded:",
    "mov %edx, %ecx",
    "shl $32, %rsi",
    "or %rsi, %rcx",
    "lea 24(%rdi), %rsp",
    "pop %rbx",
    "pop %rbp",
    "pop %rsi",
    "pop %rdi",
    "pop %r8",
    "pop %r9",
    "pop %r10",
    "pop %r11",
    "pop %r12",
    "pop %r13",
    "pop %r14",
    "pop %r15",
    "3:",
    "rdtsc",
    "sub %ecx, %eax",
    "js 3b",
    "cmp $1, %eax",
    "jb 10f",
    "cmp $2, %eax",
    "jb 11f",
    "jmp 12f",
    "10:",
    "nop",
    "nop",
    "nop",
    "11:",
    "nop",
    "jmp 12f",
    "12:",
    "bt $32, %rcx",
    "mov -120(%rsp), %rax",
    "mov -112(%rsp), %rcx",
    "mov -104(%rsp), %rdx",
    "jc 13f",
    "vmresume",
    "jmp 2f",
    "13:",
    "vmlaunch",
    "jmp 2f",
    ".balign 16",
    // septum_vmexit_stub: host RSP is the end of the loaded subject's
    // register frame (`regs.rs`): the pushes fill it; the word at host RSP
    // is the top of this CPU's exit stack (its per-CPU block), the stack
    // Rust runs on; Rust gets the block's core. After Rust, the frame to
    // pop is the one the block names (`CpuCore::frame`: the subject loaded
    // now, perhaps another one than the one that exited).
    ".global septum_vmexit_stub",
    "septum_vmexit_stub:",
    "push %r15",
    "push %r14",
    "push %r13",
    "push %r12",
    "push %r11",
    "push %r10",
    "push %r9",
    "push %r8",
    "push %rdi",
    "push %rsi",
    "push %rbp",
    "push %rbx",
    "push %rdx",
    "push %rcx",
    "push %rax",
    "mov {regs_size}(%rsp), %rsp",
    "lea {core_at}(%rsp), %rdi",
    "call septum_vmexit",
    "mov %rax, %rsi",
    "mov {loaded_frame}(%rsp), %rdi",
    // septum_vmx_enter(frame, launch): `frame` is the loaded subject's
    // register frame; POP leaves the flags of the TEST intact.
    ".global septum_vmx_enter",
    "septum_vmx_enter:",
    // The VMX-preemption timer counts from the VM entry: its value is
    // the ticks from this TSC read to `CpuCore::timer_at` (none if past),
    // less the read's distance to the entry (`ENTRY_TIMER_LATENCY`), in
    // the timer's units. Branch-free up to the entry: every path takes the
    // same number of instructions. A failed VMWRITE is a failed entry.
    "mov {regs_size}(%rdi), %r8",
    "mov {timer_shift_at}(%r8), %ecx",
    "rdtsc",
    "shl $32, %rdx",
    "or %rax, %rdx",
    "mov {timer_at}(%r8), %rax",
    "sub %rdx, %rax",
    "mov $0, %edx",
    "cmovb %rdx, %rax",
    "sub ${latency}, %rax",
    "cmovb %rdx, %rax",
    "shr %cl, %rax",
    "mov $0xffffffff, %edx",
    "cmp %rdx, %rax",
    "cmova %rdx, %rax",
    "mov ${timer_field}, %edx",
    "vmwrite %rax, %rdx",
    "jbe 6f",
    "mov %rdi, %rsp",
    "test %rsi, %rsi",
    "pop %rax",
    "pop %rcx",
    "pop %rdx",
    "pop %rbx",
    "pop %rbp",
    "pop %rsi",
    "pop %rdi",
    "pop %r8",
    "pop %r9",
    "pop %r10",
    "pop %r11",
    "pop %r12",
    "pop %r13",
    "pop %r14",
    "pop %r15",
    "jnz 1f",
    "vmresume",
    "jmp 2f",
    "1:",
    "vmlaunch",
    // A failed entry: RSP is at the word after the frame, the top of
    // this CPU's exit stack, where the report runs.
    "2:",
    "mov (%rsp), %rsp",
    "call septum_vmentry_failed",
    "ud2",
    // The timer's VMWRITE failed: R8 is this CPU's exit-stack top.
    "6:",
    "mov %r8, %rsp",
    "call septum_vmentry_failed",
    "ud2",
    regs_size = const super::regs::REGS_SIZE,
    timer_at = const percpu::TIMER_AT,
    timer_shift_at = const percpu::TIMER_SHIFT_AT,
    latency = const ENTRY_TIMER_LATENCY,
    timer_field = const field::PREEMPTION_TIMER_VALUE,
    core_at = const percpu::CORE_AT,
    loaded_frame = const percpu::LOADED_FRAME_AT,
    options(att_syntax)
);

/// Ticks from the entry stub's TSC read to the VM entry, which starts the
/// VMX-preemption timer: the 14 instructions that compute and write the
/// timer's value and check the write, the frame's address into RSP, the
/// flag test, 15 pops, the branch and VMRESUME (where one tick is one
/// instruction, as in Bochs). The timer so expires at its deadline
/// whatever path led to the entry: a padded frame entry, a hypercall's
/// return, an emulated access, a switch inside the frame. Counted from a
/// TSC read in Rust, each path overran the deadline by its own distance
/// to the entry (up to about 50 ticks, the frame end of `silence_exits`
/// 30 ticks later than a plain one's), and the next partition's
/// transition began that much later.
const ENTRY_TIMER_LATENCY: u64 = 34;

unsafe extern "C" {
    fn septum_vmx_enter(frame: *mut GuestRegs, launch: u64) -> !;
    fn septum_vmx_enter_padded(frame: *mut GuestRegs, launch: u64, not_before: TscCycles) -> !;
}

// The entry pad (septum_abi::timing, chosen per minor frame by the
// composer): ticks after a minor-frame boundary at which the next subject
// is entered, whatever happened before; the pad covers the longest
// transition at that boundary, so the entry time does not depend on what
// the previous subject did (docs/kernel.md, "Constant-time frame
// transitions", "Pads per boundary"). The policy validator's short-frame
// rules read the same constants.

/// One FXSAVE area (SDM Vol. 1, 10.5.1): x87, MMX and SSE state (root
/// mode runs with CR4.OSFXSR set, see `vmx::enable`).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub(super) struct FpuState([u8; 512]);

impl FpuState {
    /// Byte offset of MXCSR.
    const MXCSR_AT: usize = 24;
    /// Byte offset of XMM0; XMM0-XMM15 take 256 bytes.
    const XMM_AT: usize = 160;
    /// MXCSR at reset: every exception masked, round to nearest.
    const MXCSR_RESET: u32 = 0x1f80;

    /// Give the SSE part its reset state: MXCSR `0x1f80`, XMM0-XMM15
    /// zero, so no subject starts with what the boot loader (or an earlier
    /// incarnation of itself) left in the XMM registers.
    pub(super) fn reset_sse(&mut self) {
        for (to, from) in self
            .0
            .iter_mut()
            .skip(Self::MXCSR_AT)
            .zip(Self::MXCSR_RESET.to_le_bytes())
        {
            *to = from;
        }
        for byte in self.0.iter_mut().skip(Self::XMM_AT).take(256) {
            *byte = 0;
        }
    }
}

/// What the kernel keeps of a subject while it is not loaded, beyond its
/// register frame (`regs.rs`, where its registers always are). All zero
/// at boot, so the slots live in `.bss` and cost nothing in the image.
pub(super) struct SubjectContext {
    /// x87/MMX/SSE state (FXSAVE format).
    pub(super) fpu: FpuState,
    /// CR2: MOV to and from CR2 does not exit in VMX non-root mode and the
    /// VMCS does not hold it (docs/kernel.md, "Architectural state per
    /// subject").
    pub(super) cr2: u64,
    /// IA32_KERNEL_GS_BASE: SWAPGS exchanges it with GS.base without an
    /// exit; GS.base is in the VMCS, this one is not.
    pub(super) kernel_gs_base: u64,
    /// Whether the subject's VMCS has been launched.
    pub(super) launched: bool,
}

/// One context slot per subject, indexed by subject id. A slot belongs to
/// its subject's CPU (`SubjectSpec::cpu`) and is reached only through
/// [`context`], which needs that CPU's `&mut CpuCore` and a [`Vmcs`]
/// handle for the subject on that CPU (`Vmcs::of` checks the CPU).
struct SubjectSlots([UnsafeCell<SubjectContext>; MAX_SUBJECTS]);

// Safety: a slot is only reached through `context`, by the CPU that owns
// its subject, with that CPU's unique `&mut CpuCore` borrowed for as long
// as the slot's reference lives. So no two CPUs ever reach the same slot,
// and one CPU holds at most one slot reference at a time.
unsafe impl Sync for SubjectSlots {}

static SUBJECTS: SubjectSlots = SubjectSlots(
    [const {
        UnsafeCell::new(SubjectContext {
            fpu: FpuState([0; 512]),
            cr2: 0,
            kernel_gs_base: 0,
            launched: false,
        })
    }; MAX_SUBJECTS],
);

/// The context slot of `subject` (`None` only for an id beyond the table).
///
/// # Safety
/// `subject` must belong to `cpu`'s CPU: made by `Vmcs::of(id, cpu.number)`
/// (which checks the subject's CPU), or taken from `cpu.loaded`, which only
/// ever holds such a handle.
#[inline(always)]
unsafe fn context<'c>(cpu: &'c mut CpuCore, subject: &Vmcs) -> Option<&'c mut SubjectContext> {
    let _ = cpu;
    let slot = SUBJECTS.0.get(subject.id().index())?;
    // Safety: `subject` belongs to this CPU (the contract above) and this
    // CPU's `&mut CpuCore` is borrowed for `'c`: see `SubjectSlots`.
    Some(unsafe { &mut *slot.get() })
}

/// Pending target events of every subject: one table for the whole system,
/// set by any CPU (atomically, see `kerncore::events`), never owned by a
/// CPU's scheduler.
pub static EVENTS: PendingTable = PendingTable::new();

/// Largest number of VMCS accesses of any VMCALL exit so far.
#[cfg(feature = "count-vmcs")]
static MAX_VMCALL_ACCESSES: AtomicU32 = AtomicU32::new(0);

fn subject_name(id: SubjectId) -> &'static str {
    SPEC.subjects.get(id.index()).map_or("?", |s| s.name)
}

/// Stop after a failed VMX instruction.
fn vmx_failed(error: VmxError) -> ! {
    kprintln!("septum: VMX instruction failed: {error}");
    crate::crash::vmx_failed();
    kprintln!("septum: system stopped (fail-closed)");
    stop()
}

/// Unwrap a VMX result or stop.
fn or_stop<T>(result: Result<T, VmxError>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => vmx_failed(error),
    }
}

/// Boot of `cpu`: fill its per-CPU core (scheduler, timer shift), prepare
/// the saved registers and FPU state of its subjects, start the plan and
/// enter the first subject. Never returns.
pub fn start(cpu: CpuNumber, scheduler: Scheduler<'static>, timer_shift: u32) -> ! {
    let core_pointer = percpu::core(cpu);
    // Safety: `cpu`'s per-CPU core, on `cpu`'s boot path, before its first
    // VM entry: nothing else refers to it (no exit can happen yet), and
    // writing does not read the uninitialised value.
    unsafe {
        core_pointer.write(CpuCore {
            number: cpu,
            scheduler,
            loaded: None,
            frame: core::ptr::null_mut(),
            timer_shift,
            timer_at: TscCycles(0),
        });
    }
    // Safety: just written; this is the only reference, and it is dead
    // before the first VM entry below.
    let core = unsafe { &mut *core_pointer };
    core.scheduler.set_plan_switch(&smp::PLAN_SWITCH);
    super::ipi::init_cpu();
    // Every subject starts from the FNINIT state (FCW 0x37f, empty stack,
    // MXCSR at its reset value), not from an all-zero FXSAVE area, which
    // would unmask every x87 exception and select single precision.
    // Each slot gets it by its own FXSAVE (FXSAVE leaves the state as it
    // is), not by copying one saved area: no memcpy call on this path.
    cpu::fpu_reset();
    for (id, subject) in (0u16..).map(SubjectId).zip(SPEC.subjects) {
        let Some(vmcs) = Vmcs::of(id, cpu) else {
            continue;
        };
        // Safety: `vmcs` was made by `Vmcs::of(id, cpu)`, and `core` is
        // `cpu`'s (its `number` is `cpu`, written above).
        if let Some(context) = unsafe { context(core, &vmcs) } {
            fxsave(&mut context.fpu);
            context.fpu.reset_sse();
        }
        // Safety: `cpu`'s boot path before its first entry, `vmcs` one of
        // its subjects (`Vmcs::of(id, cpu)`).
        unsafe { super::regs::prepare(&vmcs, cpu, subject.guest.rdi) };
    }
    // Safety: `cpu`'s boot path before its first entry, the only call.
    let Some(spare) = (unsafe { super::regs::spare(cpu) }) else {
        kprintln!("septum: system stopped (fail-closed)");
        stop()
    };
    core.frame = core::ptr::from_mut(spare);
    // Every plan CPU starts its first major frame at the same TSC.
    let decision = core.scheduler.start(smp::plan_start_time());
    let launch = execute(core, spare, decision, None);
    // Safety: `execute` made a subject the loaded one (it returns only to
    // enter one): `core.frame` is its register frame, its VMCS is current
    // and fully initialised; the stub enters it and never returns here.
    unsafe { septum_vmx_enter(core.frame, launch) }
}

/// Called by the exit stub with this CPU's core, after it pushed the
/// exiting subject's registers into that subject's frame. `frame` is not
/// used after `handle_exit`: a switch in it makes another frame the loaded
/// one.
#[unsafe(no_mangle)]
extern "C" fn septum_vmexit(core: *mut CpuCore) -> u64 {
    // Safety: `core` is in the block the word after the frame names, this
    // CPU's exit-stack top; a VM exit follows a VM entry, which `start`
    // makes only after writing the core; the exit path is one of the CPU's
    // two root-mode entry points, which never nest.
    let cpu = unsafe { percpu::this_cpu(core) };
    // Safety: `cpu.frame` is the loaded subject's frame (`switch_to` sets
    // it with the VMCS it loads, and only that VMCS is ever entered), the
    // one the stub just filled through that VMCS's host RSP; the previous
    // exit's references to it died when the stub entered, so this is the
    // only one.
    let frame = unsafe { &mut *cpu.frame };
    #[cfg(feature = "count-transition")]
    super::transition_probe::mark(cpu, super::transition_probe::Point::Exit);
    #[cfg(feature = "count-vmcs")]
    vmx::VMCS_ACCESSES.store(0, Ordering::Relaxed);
    super::timed::check_point(cpu);

    let (launch, hypercall) = handle_exit(cpu, frame);
    #[cfg(feature = "count-vmcs")]
    if hypercall {
        // The entry stub's VMWRITE of the preemption timer on the way
        // back (`septum_vmx_enter`), which the counter does not see.
        vmx::VMCS_ACCESSES.fetch_add(1, Ordering::Relaxed);
        MAX_VMCALL_ACCESSES.fetch_max(
            vmx::VMCS_ACCESSES.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
    #[cfg(not(feature = "count-vmcs"))]
    let _ = hypercall;
    launch
}

/// Read the VMCS into a vendor-neutral [`Exit`] (SDM 28.2; reasons: Vol.
/// 3D, appendix C), let kerncore decide, execute the decision. A VMCALL is
/// completed here: guest RIP moves past it. The hypercall is the hot path
/// and is handled inline; the end of a minor frame goes through
/// [`timer_exit`] and every other exit through [`other_exit`], kept out of
/// line so that their registers do not burden it.
/// Returns the launch flag and whether the exit was a hypercall (for
/// `count-vmcs`).
#[inline(always)]
fn handle_exit(cpu: &mut CpuCore, frame: &mut GuestRegs) -> (u64, bool) {
    let reason = or_stop(vmread(field::EXIT_REASON));
    #[cfg(feature = "count-transition")]
    super::transition_probe::exit_reason(cpu, reason);
    if reason == u64::from(EXIT_VMCALL) && !super::vm::vmcall_refused(cpu) {
        // The deadline is checked before the hypercall is handled, not
        // after (`late_hypercall`): one that arrives at the deadline then
        // costs the next partition's transition this compare only, not
        // the whole hypercall. (`wrapping_add`: one instruction on the
        // hot path; the TSC does not come within the window of 2^64 in
        // centuries.)
        if rdtsc().get().wrapping_add(HYPERCALL_WINDOW) >= cpu.scheduler.deadline().get() {
            return (late_hypercall(cpu, frame), true);
        }
        // A hypercall handled counts as the subject's progress: an exit
        // left earlier (`late_entry::leave`) no longer lets a later one at
        // the deadline be handled.
        super::late_entry::handled_any(cpu);
        (hypercall(cpu, frame, true), true)
    } else if reason == u64::from(EXIT_PREEMPTION_TIMER) {
        (timer_exit(cpu, frame), false)
    } else {
        (other_exit(cpu, frame, reason), false)
    }
}

/// Complete the loaded subject's VMCALL (guest RIP past it) and carry
/// out its event. `in_window`: the hypercall arrived at least
/// [`HYPERCALL_WINDOW`] before the deadline, so a resume needs no second
/// look at the time (`decide_and_execute`).
#[inline(always)]
fn hypercall(cpu: &mut CpuCore, frame: &mut GuestRegs, in_window: bool) -> u64 {
    let length = or_stop(vmread(field::EXIT_INSTRUCTION_LENGTH));
    let rip = or_stop(vmread(field::GUEST_RIP));
    or_stop(write_guest(GuestField::Rip, rip.wrapping_add(length)));
    interrupts::on_hypercall(cpu, frame.rax);
    let event = frame.rax;
    decide_and_execute_with(cpu, frame, Exit::Hypercall { event }, in_window)
}

/// Ticks before the deadline from which a hypercall is not handled in the
/// frame but left to run again at the subject's next entry (guest RIP
/// stays on the VMCALL, like an exit `late_entry::exit_at_deadline`
/// leaves): [`RESUME_MARGIN`], which an entry must keep from the
/// deadline, plus the most a hypercall's handling takes before its resume
/// (dispatch, an IPI sent, an injection; about 100 ticks in Bochs,
/// docs/benchmarks.md "Hypercall"), with margin. So a hypercall handled
/// in the frame always resumes its subject, and one at the deadline costs
/// the next partition's transition only the compare: handled in full and
/// only then checked, it made the transition up to about 100 ticks longer
/// than a plain frame end. A subject loses at most this much of its frame
/// when it makes a hypercall at its end (it waits for the deadline in root
/// mode, and the event is raised at its next entry).
const HYPERCALL_WINDOW: u64 = RESUME_MARGIN + 250;

/// A hypercall that arrived less than [`HYPERCALL_WINDOW`] before the
/// deadline: left to run again at the subject's next entry (the CPU waits
/// for the deadline in root mode, the frame ends there), unless the
/// subject's last exit was left already (`late_entry::leave`): then it is
/// handled, and a resume under `RESUME_MARGIN` before the deadline is
/// refused as after any exit, so a subject whose frame is shorter than the
/// window still makes progress.
#[inline(never)]
fn late_hypercall(cpu: &mut CpuCore, frame: &mut GuestRegs) -> u64 {
    match super::late_entry::leave(cpu) {
        Some(now) => timer_exit_at(cpu, frame, now),
        None => hypercall(cpu, frame, false),
    }
}

/// A VMX-preemption timer expiry: the end of the minor frame (or, for a
/// frame longer than the timer can count, an early expiry). Out of line:
/// the next frame's entry is padded to a fixed time after the boundary
/// anyway ([`enter_at`]), and inline its registers burdened the hypercall.
/// A real frame end first reports a missed deadline of the subject still
/// running (`subject_report::frame_end`).
/// An early expiry under [`RESUME_MARGIN`] before the deadline (a timed
/// event due just before the frame's end, a VM's own timer) would only
/// resume the subject for less than the entry and exit take, which
/// `decide_and_execute` refuses; a VM asleep at its frame's end has its
/// timer armed `HALT_SLACK` early (`vm::before_entry`). Either way the
/// frame ends at the deadline, waited for here at once. Dispatched first,
/// as an early expiry, it went through the scheduler twice (about 100
/// ticks), and a timed event due just before the deadline made the next
/// partition's transition that much longer (`silence_exits`,
/// `count-transition`: 205 ticks from the exit to the frame end, against
/// about 100). The timed event itself was seen on the way in
/// (`timed::check_point` in `septum_vmexit`).
#[inline(never)]
fn timer_exit(cpu: &mut CpuCore, frame: &mut GuestRegs) -> u64 {
    let now = rdtsc();
    let deadline = cpu.scheduler.deadline();
    if now >= deadline {
        return timer_exit_at(cpu, frame, now);
    }
    early_expiry(cpu, frame, now, deadline)
}

/// [`timer_exit`] before the deadline (out of line: the frame end's path
/// does not carry it).
#[inline(never)]
fn early_expiry(
    cpu: &mut CpuCore,
    frame: &mut GuestRegs,
    now: TscCycles,
    deadline: TscCycles,
) -> u64 {
    if now.get().saturating_add(RESUME_MARGIN) >= deadline.get()
        || now.get().saturating_add(super::vm::HALT_SLACK) >= deadline.get()
            && super::vm::asleep(cpu)
    {
        let now = super::late_entry::wait_for(cpu, deadline);
        return timer_exit_at(cpu, frame, now);
    }
    timer_exit_at(cpu, frame, now)
}

/// [`timer_exit`] at `now`; also the end of a frame whose deadline passed
/// while the kernel handled an exit that would otherwise resume the
/// subject ([`decide_and_execute`]): re-entering it with a timer of 0
/// only to take the timer exit at once made the longest frame transition
/// (a hypercall in flight at the deadline, docs/kernel.md).
#[inline(never)]
fn timer_exit_at(cpu: &mut CpuCore, frame: &mut GuestRegs, now: TscCycles) -> u64 {
    note_miss(cpu, now);
    decide_and_execute(cpu, frame, Exit::TimerExpired { now })
}

/// A missed deadline of the frame's subject, if the frame ends at `now`:
/// held back for the partition's next frame (`deferred`), else printed.
fn note_miss(cpu: &mut CpuCore, now: TscCycles) {
    if now >= cpu.scheduler.deadline() && crate::subject_report::frame_end(cpu.scheduler.current())
    {
        super::deferred::missed(cpu);
    }
}

/// The frame ends at `now` inside [`execute`] (a trap owed at the deadline,
/// an entry that would come after it): what [`timer_exit_at`] decides,
/// returned to `execute`'s loop instead of calling back into it, so the
/// exit path has no recursion (the stack-depth gate).
fn frame_end_in_execute(cpu: &mut CpuCore, now: TscCycles) -> (Decision, Option<TscCycles>) {
    note_miss(cpu, now);
    let frame_deadline = cpu.scheduler.deadline();
    let boundary = (now >= frame_deadline).then_some(frame_deadline);
    if boundary.is_some() {
        frame_ending(cpu);
    }
    (
        dispatch(&mut cpu.scheduler, Exit::TimerExpired { now }),
        boundary,
    )
}

/// Every exit but a hypercall or a timer expiry (`reason`: the full
/// exit-reason field).
/// Each kind calls [`decide_and_execute`] with its own [`Exit`], so
/// `dispatch` is specialised per kind.
#[inline(never)]
fn other_exit(cpu: &mut CpuCore, frame: &mut GuestRegs, reason: u64) -> u64 {
    // Not handled at the deadline: the instruction runs again at the
    // subject's next entry (`late_entry::exit_at_deadline`). The time
    // first, before anything else: an exit that comes just before the
    // deadline reaches the frame end that much sooner, and the next
    // partition's transition is that much shorter.
    let now = rdtsc();
    if now.get().saturating_add(super::late_entry::LATE_WINDOW) >= cpu.scheduler.deadline().get()
        && let Some(now) = super::late_entry::exit_at_deadline(cpu, reason, now)
    {
        return timer_exit_at(cpu, frame, now);
    }
    let basic = reason as u16;
    if reason & (1 << 31) != 0 {
        return decide_and_execute(cpu, frame, Exit::EntryFailure(fault_info(basic)));
    }
    super::late_entry::handled(cpu, basic);
    match super::vm::handle(cpu, frame, basic) {
        super::vm::Outcome::Resume => return resume(cpu, frame),
        super::vm::Outcome::Raise(exit) => return decide_and_execute(cpu, frame, exit),
        super::vm::Outcome::Unhandled => {}
    }
    match basic {
        EXIT_EXTERNAL_INTERRUPT => {
            if let Some(owner) = interrupts::acknowledge() {
                cpu.scheduler.interrupt_for(owner);
            }
            decide_and_execute(cpu, frame, Exit::ExternalInterrupt)
        }
        EXIT_INTERRUPT_WINDOW => {
            interrupts::window_exit();
            decide_and_execute(cpu, frame, Exit::InterruptWindow)
        }
        // A PCI device owner's configuration-space access (`pcicfg`).
        EXIT_IO_INSTRUCTION if super::pcicfg::emulated(cpu, frame) => resume(cpu, frame),
        // A hardware NMI (interruption type 2) is not the subject's doing.
        EXIT_EXCEPTION_OR_NMI if is_nmi() => decide_and_execute(cpu, frame, Exit::Nmi),
        _ => decide_and_execute(cpu, frame, Exit::Fault(fault_info(basic))),
    }
}

/// Dispatch one exit on this CPU's scheduler and execute the decision; a
/// fault is reported before its decision (stop the subject or the system)
/// is executed. The common case, a hypercall that changes nothing about
/// who runs, only re-arms the timer.
#[inline(always)]
fn decide_and_execute(cpu: &mut CpuCore, frame: &mut GuestRegs, exit: Exit) -> u64 {
    decide_and_execute_with(cpu, frame, exit, false)
}

/// [`decide_and_execute`]; `in_window`: the exit came so long before the
/// deadline that a resume needs no look at the time (a hypercall inside
/// [`HYPERCALL_WINDOW`]).
#[inline(always)]
fn decide_and_execute_with(
    cpu: &mut CpuCore,
    frame: &mut GuestRegs,
    exit: Exit,
    in_window: bool,
) -> u64 {
    let frame_deadline = cpu.scheduler.deadline();
    // An early expiry (a frame longer than the timer can count) resumes
    // the subject with the timer re-armed; only a real end is a boundary.
    let boundary = match exit {
        Exit::TimerExpired { now } if now >= frame_deadline => Some(frame_deadline),
        _ => None,
    };
    if boundary.is_some() {
        frame_ending(cpu);
    }
    let caller = cpu.loaded.map(|vmcs| vmcs.id());
    let decision = dispatch(&mut cpu.scheduler, exit);
    if let Exit::Hypercall { event } = exit {
        // Here, not after the entry: a hypercall's exit may end in a
        // padded frame entry, which does not return.
        super::ipi::after_hypercall(&cpu.scheduler, caller, event);
    }
    if let Exit::Fault(info) | Exit::EntryFailure(info) = exit
        && !matches!(decision, Decision::Trap { .. })
    {
        // Reported in the partition's next frame (`deferred`), unless
        // the system stops now.
        let stops = matches!(decision, Decision::StopSystem { .. });
        if stops {
            super::deferred::before_stop(cpu);
        }
        if stops || !super::deferred::fault(cpu, frame, &info) {
            report_fault(cpu, frame, &info);
        }
    }
    if decision == Decision::Resume && boundary.is_none() {
        // The deadline passed, or is too close for an entry that would
        // only take the timer exit: end the frame at the deadline, checked
        // before an interrupt is injected for the entry that then does not
        // come.
        if !in_window && rdtsc().get().saturating_add(RESUME_MARGIN) >= frame_deadline.get() {
            let now = super::late_entry::wait_for(cpu, frame_deadline);
            return timer_exit_at(cpu, frame, now);
        }
        interrupts::before_entry(cpu);
        // The stub counts the timer from the entry itself, after the
        // injection and a VM's entry work (`vm::before_entry`, run by
        // `timer_deadline`).
        arm_timer(cpu);
        0
    } else if let Some(at) = boundary {
        enter_frame(cpu, frame, decision, at)
    } else {
        execute(cpu, frame, decision, boundary)
    }
}

/// The decision that begins the minor frame at `boundary`: the common
/// case (the next subject, or the same one, entered with nothing of the
/// frame's own to do first) straight to the padded entry; everything else
/// through [`execute`]. Inline in the frame end: [`execute`]'s loop, with
/// every decision's state, saved and spilled about 25 registers and slots
/// before it looked at the decision, on every transition.
#[inline(always)]
fn enter_frame(
    cpu: &mut CpuCore,
    frame: &mut GuestRegs,
    decision: Decision,
    boundary: TscCycles,
) -> u64 {
    #[cfg(feature = "count-transition")]
    super::transition_probe::mark(cpu, super::transition_probe::Point::Decided);
    let due = super::deferred::due(cpu);
    match decision {
        Decision::Run(subject) if !own_work(decision, due) => {
            let (launch, frame, attended) = switch_to(cpu, frame, subject);
            #[cfg(feature = "count-transition")]
            super::transition_probe::mark(cpu, super::transition_probe::Point::Switched);
            if attended && let Some(next) = super::late_entry::owed(cpu, frame, subject) {
                return execute(cpu, frame, next, Some(boundary));
            }
            enter_at(cpu, launch, boundary)
        }
        Decision::Resume if !due => enter_at(cpu, 0, boundary),
        _ => execute(cpu, frame, decision, Some(boundary)),
    }
}

/// Ticks before the deadline under which an exit handled in the frame
/// does not resume the subject: the frame ends at the deadline instead
/// (the CPU waits for it in root mode, in the subject's own time). An entry
/// that close to the deadline would only take the timer exit at once, and
/// that exit, coming after the deadline, would lengthen the transition to
/// the next partition by the whole entry and exit (up to 170 ticks seen in
/// `silence_irq` and `silence_ipi`, `count-transition`). The entry's path
/// after this check (an injection, arming the timer, the stub) and the
/// exit's stub take about 120 ticks in Bochs.
pub(super) const RESUME_MARGIN: u64 = 200;

/// Resume the loaded subject after an exit the kernel handled in the
/// frame, or, under [`RESUME_MARGIN`] before the deadline, end the frame
/// at the deadline (as in [`decide_and_execute`]).
fn resume(cpu: &mut CpuCore, frame: &mut GuestRegs) -> u64 {
    let deadline = cpu.scheduler.deadline();
    if rdtsc().get().saturating_add(RESUME_MARGIN) >= deadline.get() {
        let now = super::late_entry::wait_for(cpu, deadline);
        return timer_exit_at(cpu, frame, now);
    }
    interrupts::before_entry(cpu);
    arm_timer(cpu);
    0
}

/// What the fault report needs from the VMCS (unreadable fields read 0).
/// Each field is read only for the exits that define it (SDM 28.2.1-28.2.2):
/// the error code when the interruption information marks it valid (bit
/// 11), the guest-physical address for EPT exits, the guest linear address
/// for an EPT violation whose qualification marks it valid (bit 7).
fn fault_info(basic: u16) -> FaultInfo {
    let qualification = vmread(field::EXIT_QUALIFICATION).unwrap_or(0);
    let mut error_code = None;
    let detail = match basic {
        EXIT_IO_INSTRUCTION => FaultDetail::Port(IoAccess::from_qualification(qualification)),
        EXIT_EXCEPTION_OR_NMI => {
            let info = vmread(field::EXIT_INTERRUPTION_INFO).unwrap_or(0);
            if info & (1 << 11) != 0 {
                error_code = Some(vmread(field::EXIT_INTERRUPTION_ERROR_CODE).unwrap_or(0) as u32);
            }
            FaultDetail::Vector(info as u8)
        }
        _ => FaultDetail::None,
    };
    let ept = basic == EXIT_EPT_VIOLATION || basic == EXIT_EPT_MISCONFIGURATION;
    let guest_physical = if ept {
        vmread(field::GUEST_PHYSICAL_ADDRESS).unwrap_or(0)
    } else {
        0
    };
    let guest_linear = if basic == EXIT_EPT_VIOLATION && qualification & (1 << 7) != 0 {
        Some(vmread(field::GUEST_LINEAR_ADDRESS).unwrap_or(0))
    } else {
        None
    };
    FaultInfo {
        code: basic,
        qualification,
        guest_physical,
        rip: vmread(field::GUEST_RIP).unwrap_or(0),
        detail,
        error_code,
        guest_linear,
    }
}

/// Whether the exit's interruption information says "valid, NMI"
/// (SDM 25.9.2: bit 31 valid, bits 10:8 type 2).
fn is_nmi() -> bool {
    let info = or_stop(vmread(field::EXIT_INTERRUPTION_INFO));
    info & (1 << 31) != 0 && (info >> 8) & 7 == 2
}

/// Called by the stub when VMLAUNCH or VMRESUME fails.
#[unsafe(no_mangle)]
extern "C" fn septum_vmentry_failed() -> ! {
    kprintln!(
        "septum: VMX instruction failed: VM entry failed: VM-instruction error {}",
        vmx::instruction_error()
    );
    crate::crash::vm_entry_failed();
    kprintln!("septum: system stopped (fail-closed)");
    stop()
}

/// Print the fault report line of the loaded subject (format: kerncore
/// `fault`, docs/kernel.md "Fault lines"), after its panic text if the
/// fault is an SDK panic (`subject_report`).
fn report_fault(cpu: &CpuCore, frame: &GuestRegs, info: &FaultInfo) {
    let subject = cpu.loaded.map_or("?", |vmcs| vmcs.subject().name);
    print_fault(subject, frame, info);
}

/// The fault report of `subject` (its registers at the fault in `frame`).
pub(super) fn print_fault(subject: &str, frame: &GuestRegs, info: &FaultInfo) {
    crate::subject_report::panic_text(subject, frame, info);
    kprintln!("septum: {}", FaultLine { subject, info });
}

/// Carry out a decision up to the next VM entry; returns 1 to VMLAUNCH, 0
/// to VMRESUME. Idles (interrupts off, in root mode) as long as nothing may
/// run. `boundary`: the minor-frame boundary just crossed, if the decision
/// starts a new frame; the entry that follows one is made at the fixed
/// time `boundary + pad` ([`enter_at`], which does not return
/// here). `frame` is the loaded subject's register frame; after a switch
/// it is the new one's (`switch_to` returns it), so the caller's own
/// reference, the old subject's, must not be used after this returns.
fn execute(
    cpu: &mut CpuCore,
    mut frame: &mut GuestRegs,
    mut decision: Decision,
    mut boundary: Option<TscCycles>,
) -> u64 {
    // The boundary whose frame's own work was checked for (`own_work`).
    let mut checked_for = None;
    loop {
        if let Some(at) = boundary {
            #[cfg(feature = "count-transition")]
            super::transition_probe::mark(cpu, super::transition_probe::Point::Decided);
            // The first decision at a boundary looks at the held-back
            // reports once (for `own_work` and `run_due`); a later one
            // at the same boundary (after a restart or a trap) looks
            // again: it may have held a report back since.
            let first = checked_for != Some(at);
            let due = !first || super::deferred::due(cpu);
            let work = first && own_work(decision, due);
            if first {
                checked_for = Some(at);
            }
            if work {
                #[cfg(feature = "count-transition")]
                super::transition_probe::own_work(cpu);
                // After the whole base pad, where the transition is over
                // whatever the previous partition did.
                cpu::spin_until_even(TscCycles(
                    at.get().wrapping_add(cpu.scheduler.entry_pad().get()),
                ));
            }
            if due {
                super::deferred::run_due(cpu);
            }
        }
        let launch = match decision {
            Decision::Resume => 0,
            Decision::Run(subject) => {
                if boundary.is_none()
                    && let Some(now) =
                        super::late_entry::switch_at_deadline(cpu, frame, subject, None)
                {
                    (decision, boundary) = frame_end_in_execute(cpu, now);
                    continue;
                }
                let (launch, attended);
                (launch, frame, attended) = switch_to(cpu, frame, subject);
                #[cfg(feature = "count-transition")]
                super::transition_probe::mark(cpu, super::transition_probe::Point::Switched);
                if attended && let Some(next) = super::late_entry::owed(cpu, frame, subject) {
                    decision = next;
                    continue;
                }
                launch
            }
            Decision::Wake { subject, pending } => {
                if boundary.is_none()
                    && let Some(now) =
                        super::late_entry::switch_at_deadline(cpu, frame, subject, Some(pending))
                {
                    (decision, boundary) = frame_end_in_execute(cpu, now);
                    continue;
                }
                let (launch, attended);
                (launch, frame, attended) = switch_to(cpu, frame, subject);
                if attended && super::late_entry::owes(subject) {
                    crate::attention::ATTENTION.raise(subject);
                }
                // `frame` is now the woken subject's: its `sleep`
                // hypercall returns the pending events in RAX.
                frame.rax = pending;
                launch
            }
            Decision::Idle => {
                (decision, boundary) = idle(cpu);
                continue;
            }
            Decision::UnmaskIrq { by } => {
                interrupts::unmask_irq(by);
                0
            }
            Decision::Poweroff { by } => {
                super::deferred::before_stop(cpu);
                kprintln!("septum: poweroff requested by \"{}\"", subject_name(by));
                smp::barrier_report();
                #[cfg(feature = "count-transition")]
                super::transition_probe::report();
                super::nmi::report();
                interrupts::report();
                crate::subject_report::miss_totals();
                #[cfg(feature = "count-vmcs")]
                kprintln!(
                    "septum: vmcs accesses per VMCALL exit: {}",
                    MAX_VMCALL_ACCESSES.load(Ordering::Relaxed)
                );
                stop()
            }
            Decision::Reboot { by } => {
                super::deferred::before_stop(cpu);
                kprintln!("septum: reboot requested by \"{}\"", subject_name(by));
                crate::console::drain();
                cpu::reset()
            }
            Decision::Panic { by } => {
                super::deferred::before_stop(cpu);
                kprintln!("septum: panic requested by \"{}\"", subject_name(by));
                crate::crash::panic_action(cpu, frame, by);
                kprintln!("septum: system stopped (fail-closed)");
                stop()
            }
            // The fault report is already printed (`septum_vmexit`).
            Decision::StopSystem { .. } => {
                super::deferred::before_stop(cpu);
                #[cfg(feature = "count-transition")]
                super::transition_probe::report();
                crate::crash::exit_stop(cpu, frame);
                kprintln!("septum: system stopped (fail-closed)");
                stop()
            }
            Decision::Reset { by, target } => {
                crate::lifecycle::reset(target);
                if !super::deferred::reset(cpu, by, target) {
                    crate::lifecycle::print_reset(by, target);
                }
                0
            }
            Decision::Restart { by, policy } => {
                let verdict;
                (verdict, decision) = crate::lifecycle::after_fault(&mut cpu.scheduler, by, policy);
                if matches!(decision, Decision::StopSystem { .. }) {
                    super::deferred::before_stop(cpu);
                    crate::lifecycle::report(cpu, frame, by, policy, verdict);
                } else if !super::deferred::restart(cpu, by, policy, verdict) {
                    crate::lifecycle::report(cpu, frame, by, policy, verdict);
                }
                continue;
            }
            // A monitored subject's chosen exit (no fault line: its
            // monitor reads the state page).
            Decision::Trap { by, monitor, event } => {
                if let Some(now) = super::late_entry::trap_at_deadline(cpu, by, monitor, event) {
                    (decision, boundary) = frame_end_in_execute(cpu, now);
                    continue;
                }
                decision = crate::monitor::trap(&mut cpu.scheduler, frame, by, monitor, event);
                continue;
            }
            Decision::SubjectStopped { by } => {
                if !super::deferred::stopped(cpu, by) {
                    kprintln!(
                        "septum: subject \"{}\" stopped; system continues",
                        subject_name(by)
                    );
                }
                decision = cpu.scheduler.continue_frame();
                continue;
            }
        };
        if boundary.is_none()
            && let Some(now) = super::late_entry::passed(cpu, launch)
        {
            (decision, boundary) = frame_end_in_execute(cpu, now);
            continue;
        }
        if let Some(boundary) = boundary {
            enter_at(cpu, launch, boundary)
        }
        interrupts::before_entry(cpu);
        arm_timer(cpu);
        return launch;
    }
}

/// Whether the frame that begins with `decision` first does work of its
/// own partition that may take longer than its pad: held-back reports to
/// write (`deferred`), a restart of the subject it enters, a trapped
/// subject's state page to load or a trap it owes its monitor. Such work
/// then starts only at `boundary + pad` ([`execute`]), when the previous
/// partition's transition is over whatever it did, so the late entry it
/// causes is late by the partition's own work alone. Before, it started
/// wherever the transition ended, and an entry later than the pad came at
/// `boundary + transition + work`: the entered subject could measure how
/// long the previous partition's frame end took.
/// `due`: whether the partition has held-back reports
/// (`deferred::due`).
#[inline(always)]
fn own_work(decision: Decision, due: bool) -> bool {
    let subject = match decision {
        Decision::Run(subject) | Decision::Wake { subject, .. } => subject,
        Decision::Resume => return due,
        _ => return false,
    };
    // One flag for the restart, the trap and the owed trap
    // (`crate::attention`).
    due || crate::attention::ATTENTION.is_raised(subject)
}

/// Most TSC ticks `console::pump` takes: one lock attempt, one status
/// read, 16 port writes (measured in Bochs: 142).
const PUMP_BUDGET: TscCycles = TscCycles(200);

/// Kernel output moves to the UART at the end of a frame transition, as
/// many bytes as fit in what is left of the pad before `until` (the take,
/// or the entry) less `after` (the work between the pump and that time),
/// so it never lengthens the transition (`console::pump_at_most`:
/// bounded). After a plain transition under the lean pad that is a few
/// bytes; at a barrier, beside a VM or before a take, a FIFO's worth.
/// Before session 12 the pump ran only when a whole FIFO's worth fitted
/// (`PUMP_BUDGET`), which the lean pad then no longer left.
#[inline(always)]
fn pump_until(cpu: &CpuCore, until: u64, after: u64) {
    if !crate::console::waiting() {
        return;
    }
    let spare = until
        .saturating_sub(rdtsc().get())
        .saturating_sub(PUMP_FIXED.saturating_add(after));
    let bytes = spare.checked_div(PUMP_PER_BYTE).unwrap_or(0);
    if bytes != 0 {
        #[cfg(feature = "count-transition")]
        super::transition_probe::pump_start(cpu);
        crate::console::pump_at_most(usize::try_from(bytes).unwrap_or(usize::MAX));
        #[cfg(feature = "count-transition")]
        super::transition_probe::pumped(cpu);
    }
    #[cfg(not(feature = "count-transition"))]
    let _ = cpu;
}

/// What `console::pump_at_most` takes at most besides its bytes, from the
/// TSC read that sizes it: the arithmetic and the call (about 10), the
/// lock, the ring's positions, the status read, the unlock and the return
/// (24 instructions in the release build's code, `objdump -d`), with
/// margin.
const PUMP_FIXED: u64 = 40;

/// What `console::pump_at_most` takes per byte at most (its loop: a ring
/// load and a port write, 7 instructions), with margin.
const PUMP_PER_BYTE: u64 = 10;

/// The padded entry's path after its pump up to the spin: the call and
/// the stub's work before it, the twelve pops among it (19
/// instructions), with margin.
const PUMP_BEFORE_ENTRY: u64 = 25;

/// The path after the pump up to the take's spin (the call), with margin.
const PUMP_BEFORE_TAKE: u64 = 10;

/// Enter the loaded subject, the first of the minor frame that began at
/// `boundary`, at `boundary` plus the frame's pad (never earlier, and,
/// within the pad, never later): the time the previous subject's frame
/// ended and the work it left the kernel (a timer exit, a hypercall just
/// before the deadline, an idle loop, a stopped subject) leave no trace in
/// when the next one starts. The timer is written for the time of entry,
/// not for now.
/// A frame with a lead (a kernel that takes interrupts in root mode, a
/// partition with a VM: `Boundary::has_lead`) waits for the fixed time
/// `INTERRUPT_TAKE_LEAD` before the entry, then takes the interrupts
/// requested since the previous partition's last exit or wait (so which
/// of them reach the entered subject as an exit does not depend on
/// whether the previous partition ran to its deadline or idled) and does
/// the entry's own work (an injection, a VM's entry work, the timer),
/// which so starts at the same time whatever the transition before it
/// took.
/// Enters from here: the Rust frames of this exit are abandoned, like at
/// the first entry (`start`).
fn enter_at(cpu: &mut CpuCore, launch: u64, boundary: TscCycles) -> ! {
    let lead = interrupts::TAKES || cpu.scheduler.entry_lead();
    let pad = entry_pad(cpu.scheduler.entry_pad(), lead);
    let entry = TscCycles(boundary.get().wrapping_add(pad.get()));
    #[cfg(feature = "count-transition")]
    super::transition_probe::close(cpu, boundary);
    let take_at = if lead {
        entry.get().wrapping_sub(INTERRUPT_TAKE_LEAD.get())
    } else {
        entry.get()
    };
    // The stub's own loop (`cpu::spin_until`): with a loop around
    // `rdtsc()` the entries on a multi-CPU Bochs, whose TSC moves in steps,
    // came one step apart from frame to frame (docs/kernel.md).
    if lead {
        pump_until(cpu, take_at, PUMP_BEFORE_TAKE);
        #[cfg(feature = "count-transition")]
        super::transition_probe::ready(cpu, boundary, cpu.scheduler.entry_pad());
        cpu::spin_until(TscCycles(take_at));
        if interrupts::TAKES {
            interrupts::take_requested(cpu);
        }
    }
    interrupts::before_entry(cpu);
    arm_timer(cpu);
    #[cfg(feature = "count-transition")]
    if !lead {
        super::transition_probe::ready(cpu, boundary, cpu.scheduler.entry_pad());
    }
    #[cfg(feature = "count-transition")]
    super::transition_probe::armed(boundary);
    if rdtsc() > entry {
        // Later than `entry` (the subject's own restart before it, a
        // transition longer than the pad): entered at once, the stub
        // counting the timer from the entry.
        // Safety: as below; the stub arms the timer from `timer_at`.
        unsafe { septum_vmx_enter(cpu.frame, launch) }
    }
    // The time of this entry is known: the timer is written here, counted
    // from it, and the stub after the spin only pops and enters.
    write_timer_from(
        cpu,
        TscCycles(entry.get().wrapping_add(PADDED_ENTRY_LATENCY)),
    );
    if !lead {
        pump_until(cpu, entry.get(), PUMP_BEFORE_ENTRY);
    }
    // Safety: `cpu.frame` is the loaded subject's register frame
    // (`switch_to` sets it with `cpu.loaded`); its VMCS is current with the
    // timer armed. The stub sets RSP to the frame, so the Rust frames on
    // the exit stack are simply abandoned (and with them every reference
    // to the frame): nothing in them needs dropping. The stub compares 32
    // bits of the TSC: `entry` is at most the pad ahead.
    unsafe { septum_vmx_enter_padded(cpu.frame, launch, entry) }
}

/// A minor frame's deadline passed, before the scheduler moves on: at the
/// end of a major frame, wait for every plan CPU and take the plan they
/// all begin next (`smp`).
#[inline(always)]
fn frame_ending(cpu: &mut CpuCore) {
    #[cfg(feature = "count-transition")]
    super::transition_probe::mark(cpu, super::transition_probe::Point::FrameEnd);
    if cpu.scheduler.at_major_frame_end() {
        let plan =
            smp::major_frame_barrier(cpu.number, cpu.scheduler.plan(), cpu.scheduler.plan_count());
        cpu.scheduler.set_next_plan(plan);
    }
}

/// Idle in root mode until the minor frame's deadline, or until one of the
/// frame's subjects becomes runnable (a sleeper whose event another CPU
/// set); returns what runs next and, if the frame ended, its deadline (the
/// boundary).
fn idle(cpu: &mut CpuCore) -> (Decision, Option<TscCycles>) {
    let deadline = cpu.scheduler.deadline();
    while rdtsc() < deadline {
        super::timed::check_point(cpu);
        interrupts::take_requested(cpu);
        if let Some(woken) = cpu.scheduler.wake() {
            return (woken, None);
        }
        // Only if it ends before the deadline: it must not delay the frame
        // end (and with it the next partition).
        if rdtsc().get().saturating_add(PUMP_BUDGET.get()) <= deadline.get() {
            crate::console::pump();
        }
        // A VT-d fault's line, held since its event (`vtd::take_faults`):
        // the boot CPU's idle time, one line where it fits.
        if cpu.number.get() == 0
            && super::vtd::holds_faults()
            && rdtsc().get().saturating_add(VTD_LINE_BUDGET) <= deadline.get()
        {
            super::vtd::print_held(1);
        }
        cpu::pause();
    }
    frame_ending(cpu);
    let decision = cpu.scheduler.on_frame_end(rdtsc());
    (decision, Some(deadline))
}

/// Most TSC ticks one VT-d fault line takes to format into the console's
/// ring (a fault line of the same kind took 3110 in Bochs, `deferred`'s
/// `LINES_BUDGET` holds four such), with margin.
const VTD_LINE_BUDGET: u64 = 6000;

/// Make `subject` the loaded one: save the FPU state, CR2 and
/// KERNEL_GS_BASE of the previous one, load its VMCS and that state, and
/// make its register frame the one the stub pops (no register is copied:
/// each subject's stay in its own frame, `regs.rs`). Takes the previous
/// subject's `frame` and returns `subject`'s, with whether its VMCS still
/// needs VMLAUNCH.
#[inline(always)]
fn switch_to<'f>(
    cpu: &mut CpuCore,
    frame: &'f mut GuestRegs,
    subject: SubjectId,
) -> (u64, &'f mut GuestRegs, bool) {
    let Some(vmcs) = Vmcs::of(subject, cpu.number) else {
        kprintln!("septum: scheduler chose unknown subject {}", subject.0);
        kprintln!("septum: system stopped (fail-closed)");
        stop()
    };
    let number = cpu.number;
    let previous = cpu.loaded;
    let switching = previous.map(|loaded| loaded.id()) != Some(subject);
    let frame = if switching {
        if let Some(previous) = previous
            // Safety: `previous` comes from `cpu.loaded`.
            && let Some(context) = unsafe { context(cpu, &previous) }
        {
            fxsave(&mut context.fpu);
            context.cr2 = cpu::read_cr2();
            context.kernel_gs_base = cpu::read_kernel_gs_base();
        }
        // Safety: `vmcs` was made by `Vmcs::of(subject, cpu.number)`; the
        // exit path's only frame reference is `frame`, the previous
        // subject's (or the spare), which is given up here for this one.
        let (Some(next), Some(pointer)) = (
            unsafe { super::regs::frame(&vmcs) },
            super::regs::pointer(&vmcs),
        ) else {
            kprintln!("septum: scheduler chose unknown subject {}", subject.0);
            kprintln!("septum: system stopped (fail-closed)");
            stop()
        };
        or_stop(vmcs.load());
        cpu.loaded = Some(vmcs);
        cpu.frame = pointer;
        next
    } else {
        frame
    };
    // Safety: `vmcs` was made by `Vmcs::of(subject, cpu.number)` above.
    let Some(context) = (unsafe { context(cpu, &vmcs) }) else {
        kprintln!("septum: scheduler chose unknown subject {}", subject.0);
        kprintln!("septum: system stopped (fail-closed)");
        stop()
    };
    if switching {
        // The FPU registers and CR2 are not part of the VMCS: without this
        // a subject could read what the previous one left in them.
        fxrstor(&context.fpu);
        // Safety: CR2 only reports the last page-fault address; no
        // translation or protection depends on it, and root mode reads it
        // only in its exception report, which resets the machine.
        unsafe { cpu::write_cr2(context.cr2) };
        // SWAPGS (allowed at CPL 0, no exit) exchanges GS.base with
        // KERNEL_GS_BASE: a subject that can set GS.base (its own GDT, a VM)
        // would otherwise hand its value to the next subject, and any
        // subject could overwrite a VM's.
        cpu::write_kernel_gs_base(context.kernel_gs_base);
    }
    // A trapped subject's state page, a restart, an owed trap: looked at
    // only when the subject's flag says one may hold (`crate::attention`).
    let attended = crate::attention::ATTENTION.take(subject);
    if attended {
        attend(number, vmcs, context, frame, switching);
    }
    let launch = if context.launched {
        0
    } else {
        context.launched = true;
        1
    };
    (launch, frame, attended)
}

/// The entry of `subject` (`vmcs`, loaded, its registers in `frame`) has
/// its attention flag taken ([`switch_to`]): load the state page its
/// monitor may have changed after a trap (if it was switched to), restart
/// it if that is requested, and raise the flag again for a condition that
/// still holds. An owed trap is the caller's (`late_entry::owed`, right
/// after the switch; a woken subject's entry raises the flag again for
/// it).
#[inline(never)]
fn attend(
    number: CpuNumber,
    vmcs: Vmcs,
    context: &mut SubjectContext,
    frame: &mut GuestRegs,
    switching: bool,
) {
    let subject = vmcs.id();
    if switching {
        crate::monitor::on_enter(subject, frame);
    }
    super::restart::restart_if_requested(number, vmcs, context, frame);
    if crate::monitor::is_trapped(subject) || crate::lifecycle::REQUESTS.is_requested(subject) {
        crate::attention::ATTENTION.raise(subject);
    }
}

/// A woken sleeper that is not entered now (`late_entry`): its `sleep`
/// hypercall's result, the pending events taken for it, goes into RAX of
/// its register frame (`frame` if it is the loaded subject), so it
/// returns them whenever it is entered next.
pub(super) fn deliver_wake(
    cpu: &mut CpuCore,
    frame: &mut GuestRegs,
    subject: SubjectId,
    pending: u64,
) {
    if cpu.loaded.map(|loaded| loaded.id()) == Some(subject) {
        frame.rax = pending;
    } else if let Some(vmcs) = Vmcs::of(subject, cpu.number)
        // Safety: `vmcs` was made by `Vmcs::of(subject, cpu.number)` and is
        // not the loaded subject's, so `frame` is another slot and no
        // reference to this one is live; this one dies at once.
        && let Some(regs) = unsafe { super::regs::frame(&vmcs) }
    {
        regs.rax = pending;
    }
}

/// The loaded subject's VMCS needs VMLAUNCH again: `switch_to` marked it
/// launched for an entry that is not made (`late_entry`).
pub(super) fn unlaunch(cpu: &mut CpuCore) {
    if let Some(loaded) = cpu.loaded
        // Safety: `loaded` comes from `cpu.loaded`.
        && let Some(context) = unsafe { context(cpu, &loaded) }
    {
        context.launched = false;
    }
}

pub(super) fn fxsave(area: &mut FpuState) {
    // Safety: FXSAVE writes exactly 512 bytes to a 16-byte aligned area the
    // kernel owns; CR0.EM and CR0.TS are clear (cpu::fpu_reset at boot).
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) area.0.as_mut_ptr(), options(nostack)) }
}

pub(super) fn fxrstor(area: &FpuState) {
    // Safety: the area was written by FXSAVE (at boot or at the subject's
    // last switch-out), so it holds a valid state; reserved MXCSR bits are
    // zero because FXSAVE produced them (or `FpuState::reset_sse` wrote
    // the reset value 0x1f80).
    unsafe {
        core::arch::asm!("fxrstor64 [{}]", in(reg) area.0.as_ptr(), options(nostack, readonly))
    }
}

/// Arm the VMX-preemption timer of the loaded subject's next entry for
/// the current deadline (or a timed event's, or a VM's own timer:
/// [`timer_deadline`]). The entry stub turns it into the timer's value at
/// the entry itself ([`ENTRY_TIMER_LATENCY`]).
#[inline(always)]
fn arm_timer(cpu: &mut CpuCore) {
    cpu.timer_at = timer_deadline(cpu);
}

/// Ticks from the padded entry's `not_before` to its VM entry, which
/// starts the VMX-preemption timer: the spin's evening ladder and jump (9
/// ticks, see `septum_vmx_enter_padded`), then the flag's test, three
/// loads, the branch and VMRESUME (6; the other twelve pops came before
/// the spin), where one tick is one instruction, as in Bochs. 16, not the
/// 15 these add up to: `silence_vm`'s VM observer, whose six-instruction
/// loop is cut at the same instruction every frame only when its frame
/// keeps the length it had with session 11's stub (and that stub's 28),
/// reads all-zero deltas with 16, `ffff ... 0005` with 15 and `fffe ...
/// 0004` with 14. So one of the two counts is one off; the observer only
/// sees the frame's length modulo its loop (with its pad changed, none of
/// 15 to 17 reads zeros), so the exact value is known to within that.
const PADDED_ENTRY_LATENCY: u64 = 16;

/// Write the VMX-preemption timer of the padded entry, counted from
/// `entry`, the time of that entry: the stub then has no timer to compute
/// between the spin and the entry (which would lengthen every minor-frame
/// switch by its 18 instructions). A frame longer than the timer can
/// count gets the largest value; its early expiry resumes the subject
/// and re-arms (kerncore `dispatch`).
#[inline(always)]
fn write_timer_from(cpu: &CpuCore, entry: TscCycles) {
    let remaining = cpu.timer_at.get().saturating_sub(entry.get()) >> cpu.timer_shift;
    let value = u32::try_from(remaining).unwrap_or(u32::MAX);
    or_stop(write_guest(GuestField::PreemptionTimer, u64::from(value)));
}

/// When the timer of the loaded subject's entry must expire: the frame's
/// deadline, or earlier for a timed event or a VM's own timer; a VM's
/// entry work (injections, its sleep) runs here (`vm::before_entry`).
#[inline(always)]
fn timer_deadline(cpu: &CpuCore) -> TscCycles {
    super::timed::clamp(cpu, super::vm::before_entry(cpu, cpu.scheduler.deadline()))
}
