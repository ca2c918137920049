//! VM exits of `vm` subjects: the arch half of the small PC a Linux guest
//! sees (docs/kernel.md, "VM subjects").
//!
//! `exit.rs` calls [`handle`] for every exit that is neither a hypercall
//! nor a timer expiry, and [`before_entry`] just before every VM entry.
//! For a subject that is not a VM both do nothing. For a VM, [`handle`]
//! reads the exit's VMCS fields, lets kerncore's `vm` modules decide (CPUID
//! view, MSR policy, emulated ports, CR/DR accesses) and applies the
//! result: registers in the exit frame, guest fields of the VMCS, an
//! exception to inject, or the exit left to the normal fault path (an
//! unemulated port, a forbidden MSR write, an EPT violation, a triple
//! fault: the subject's `onFault` decides). [`before_entry`] runs the
//! VM's interrupt sources (PIT, UART) and injects the PIC's vector when the
//! guest can take it, or asks for an interrupt-window exit; for the
//! console input owner it first hands the emulated UART the next byte
//! typed on the kernel's console (`console_rx`); it returns
//! the earlier of the frame's deadline and the PIT's next expiry, so the
//! preemption timer brings the guest back in time for its tick.
//!
//! The VM's local APIC is `vm_apic`'s (APIC-write exits, the TSC-deadline
//! MSR, the timer check in [`before_entry`]); the PIC's interrupts are
//! injected as before, beside it (see kerncore `vm::lapic` on LINT0).
//!
//! An idle guest sleeps: a HLT with interrupts on completes and the VM is
//! entered in the HLT activity state ([`halt`]), so the CPU waits in the
//! guest until the preemption timer (the PIT's next expiry or the frame's
//! end) or an injected interrupt wakes it; [`before_entry`] puts it back
//! in the active state with every event it injects.
//!
//! Each VM's device state lives in one of [`MAX_VMS`] slots, touched only
//! by the CPU the subject runs on (the same discipline as the subject
//! contexts of `exit.rs`).
//!
//! VMCS writes here are guest state of the VM that exited, with values
//! kerncore checked the way the CPU would (a value VM entry would refuse
//! becomes a #GP for the guest instead), and the interrupt-window control.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use septum_abi::{PhysAddr, SubjectId, TscCycles};
use septum_kerncore::exits::Exit;
use septum_kerncore::spec::{
    FaultAction, KernelAction, SourceEvent, SubjectSpec, VirtioConsoleSpec,
};
use septum_kerncore::vm::control::{self, CrAccess, CrWrite, DrAccess};
use septum_kerncore::vm::lapic::Lapic;
use septum_kerncore::vm::msr::{self, GuestField};
use septum_kerncore::vm::platform::{Line, Out, Platform};
use septum_kerncore::vm::{self, Inject, cpuid};

use super::cpu::{self, rdtsc};
use super::exit::GuestRegs;
use super::percpu::CpuCore;
use super::vmx::{self, VmxError, field, vmread, vmwrite};
use crate::kprintln;
use crate::system::{CONSOLE_INPUT, SPEC};

const EXIT_INTERRUPT_WINDOW: u16 = 7;
const EXIT_CPUID: u16 = 10;
const EXIT_HLT: u16 = 12;
const EXIT_INVD: u16 = 13;
const EXIT_RDPMC: u16 = 15;
const EXIT_VMCALL: u16 = 18;
const EXIT_CR_ACCESS: u16 = 28;
const EXIT_DR_ACCESS: u16 = 29;
const EXIT_IO: u16 = 30;
const EXIT_RDMSR: u16 = 31;
const EXIT_WRMSR: u16 = 32;
const EXIT_MWAIT: u16 = 36;
const EXIT_MONITOR: u16 = 39;
const EXIT_INVEPT: u16 = 50;
const EXIT_INVVPID: u16 = 53;
const EXIT_WBINVD: u16 = 54;
const EXIT_XSETBV: u16 = 55;
const EXIT_APIC_WRITE: u16 = 56;

const ENTRY_EXCEPTION_ERROR_CODE: u64 = 0x4018;
const ENTRY_INSTRUCTION_LENGTH: u64 = 0x401a;
/// Primary processor-based control "interrupt-window exiting".
const PROC_INTERRUPT_WINDOW: u64 = 1 << 2;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// Interruption information: valid.
const INFO_VALID: u64 = 1 << 31;
/// Guest activity state (SDM 25.4.2): active.
const ACTIVITY_ACTIVE: u64 = 0;
/// Guest activity state: HLT.
const ACTIVITY_HLT: u64 = 1;
/// IA32_VMX_MISC.
const IA32_VMX_MISC: u32 = 0x485;
/// IA32_VMX_MISC bit 6: VM entry accepts the HLT activity state.
const MISC_ACTIVITY_HLT: u64 = 1 << 6;
/// Interruptibility state: blocking by STI (bit 0) and by MOV SS (bit 1).
const BLOCKING_STI_MOV_SS: u64 = 3;

/// What [`handle`] did with an exit.
pub enum Outcome {
    /// Not a VM, or an exit the VM platform does not handle: the normal
    /// path (fault report, `onFault`) takes it.
    Unhandled,
    /// Handled: resume the subject.
    Resume,
    /// Handled as this exit (the guest halted for good: its poweroff
    /// event).
    Raise(Exit),
}

/// Exit reasons counted per VM (basic exit reasons are below 80).
const COUNTED_REASONS: usize = 80;

/// One VM's device state.
struct VmState {
    /// The local APIC, its virtual-APIC page included (`vm_apic`).
    lapic: Lapic,
    platform: Platform,
    line: Line,
    /// Exits [`handle`] saw, by basic exit reason (printed when the VM
    /// halts for good).
    exits: [u32; COUNTED_REASONS],
    /// Console input bytes handed to the emulated UART.
    received: u32,
    /// Whether [`halt`] put the VM in the HLT activity state and no event
    /// has been injected since.
    sleeping: bool,
    /// Whether an exit of this boot went through [`handle`] (every exit
    /// but a hypercall or a preemption-timer expiry does, and those two
    /// never happen during event delivery). Until then the VMCS's
    /// IDT-vectoring information is not this boot's: a restart writes the
    /// VMCS again, but the read-only exit fields keep the last exit of the
    /// previous boot, and its interrupted event must not be re-injected
    /// into the new one.
    exited: bool,
}

impl VmState {
    /// The state of a VM at its first boot, and after every restart
    /// ([`reset`]).
    const POWER_ON: Self = Self {
        lapic: Lapic::new(),
        platform: Platform::new(),
        line: Line::new(),
        exits: [0; COUNTED_REASONS],
        received: 0,
        sleeping: false,
        exited: false,
    };
}

/// Most VM subjects a system may have (one per CPU: the composer refuses
/// a second VM on a CPU, see `msr`'s SYSCALL MSRs).
pub const MAX_VMS: usize = 4;

/// One slot per VM, in subject-id order; a slot belongs to its subject's
/// CPU.
struct VmSlots([UnsafeCell<VmState>; MAX_VMS]);

// Safety: a slot is only reached through `state`, by the CPU that owns its
// subject (the loaded subject of that CPU's core), with that CPU's core
// borrowed for as long as the reference lives; exits on one CPU never
// nest. So no two references to one slot exist at once.
unsafe impl Sync for VmSlots {}

static VMS: VmSlots = VmSlots([const { UnsafeCell::new(VmState::POWER_ON) }; MAX_VMS]);

/// Interrupt lines each VM's device monitor asserted when it last resumed
/// the VM (bit `n`: master-PIC line `n`), raised on its PIC before its
/// next entry. Set and taken only on the VM's CPU (the monitor shares it).
static REQUESTED_LINES: [AtomicU8; MAX_VMS] = [const { AtomicU8::new(0) }; MAX_VMS];

/// Whether each VM's device monitor resumed it halted (the state page's
/// `resume_halted`): it is entered in the HLT activity state at its next
/// entry. Set and taken only on the VM's CPU, like [`REQUESTED_LINES`].
static REQUESTED_HALT: [AtomicBool; MAX_VMS] = [const { AtomicBool::new(false) }; MAX_VMS];

/// How many VMs come before each subject id, built at compile time
/// (`vm::slots`).
static SLOTS: [u16; septum_kerncore::plan::MAX_SUBJECTS] = vm::slots(&SPEC);

/// The slot index of VM `id`: how many VMs come before it (one load, not
/// a walk over the subjects before it: a VM's every exit and entry asks).
fn slot_index(id: SubjectId) -> usize {
    SLOTS
        .get(id.index())
        .map_or(usize::MAX, |&slot| usize::from(slot))
}

/// Whether the system has VM subjects at all (a constant: without VMs
/// every function here returns at once and the exit path pays nothing).
pub(super) const PRESENT: bool = vm::present(&SPEC);

/// Whether the loaded subject of `cpu` is a VM (`late_entry`: its port
/// emulation may print a console line, `VM_IO_BUDGET`).
pub(super) fn loaded_is_vm(cpu: &CpuCore) -> bool {
    PRESENT && cpu.loaded.is_some_and(|vmcs| vm::is_vm(vmcs.subject()))
}

/// The loaded subject of `cpu` if it is a VM, with its device state.
///
/// Takes the core shared because the entry path (`exit.rs`'s timer
/// arming) holds it shared; the slot is still this CPU's alone, and its
/// callers hold the returned reference only while the core is borrowed
/// and never call `loaded_vm` again meanwhile (see `VmSlots`).
#[allow(
    clippy::mut_from_ref,
    reason = "the slot is reached only by its own CPU, once per exit or entry"
)]
fn loaded_vm(cpu: &CpuCore) -> Option<(SubjectId, &'static SubjectSpec, &mut VmState)> {
    if !PRESENT {
        return None;
    }
    let vmcs = cpu.loaded?;
    let subject = vmcs.subject();
    if !vm::is_vm(subject) {
        return None;
    }
    let slot = VMS.0.get(slot_index(vmcs.id()))?;
    // Safety: `vmcs` is `cpu`'s loaded subject, so its slot belongs to this
    // CPU, and the reference lives only while `cpu` is borrowed by the exit
    // (or entry) path of this CPU: see `VmSlots`.
    Some((vmcs.id(), subject, unsafe { &mut *slot.get() }))
}

fn read(encoding: u64) -> Result<u64, VmxError> {
    vmread(encoding)
}

/// Write a guest field of the current (VM's) VMCS.
///
/// # Safety
/// `encoding` must be a guest-state or entry-event field of the loaded VM
/// and `value` one the CPU accepts for it (checked by kerncore's `vm`
/// decisions or composed from values read from the same VMCS).
unsafe fn write(encoding: u64, value: u64) -> Result<(), VmxError> {
    // Safety: the caller's contract.
    unsafe { vmwrite(encoding, value) }
}

/// Move guest RIP past the exiting instruction.
fn skip() -> Result<Outcome, VmxError> {
    let length = read(field::EXIT_INSTRUCTION_LENGTH)?;
    let rip = read(field::GUEST_RIP)?;
    vmx::write_guest(vmx::GuestField::Rip, rip.wrapping_add(length))?;
    Ok(Outcome::Resume)
}

/// Inject `exception` at the next entry (the instruction does not
/// complete).
fn inject(exception: Inject) -> Result<Outcome, VmxError> {
    // Safety: a hardware exception (#UD or #GP with error code 0) is a
    // valid event for any guest state; the guest's own IDT handles it.
    unsafe {
        write(ENTRY_EXCEPTION_ERROR_CODE, 0)?;
        write(
            field::ENTRY_INTERRUPTION_INFO,
            u64::from(exception.interruption_info()),
        )?;
    }
    Ok(Outcome::Resume)
}

fn gpr(frame: &GuestRegs, index: u8) -> Result<u64, VmxError> {
    Ok(match index {
        0 => frame.rax,
        1 => frame.rcx,
        2 => frame.rdx,
        3 => frame.rbx,
        4 => read(field::GUEST_RSP)?,
        5 => frame.rbp,
        6 => frame.rsi,
        7 => frame.rdi,
        8 => frame.r8,
        9 => frame.r9,
        10 => frame.r10,
        11 => frame.r11,
        12 => frame.r12,
        13 => frame.r13,
        14 => frame.r14,
        _ => frame.r15,
    })
}

fn set_gpr(frame: &mut GuestRegs, index: u8, value: u64) -> Result<(), VmxError> {
    let slot = match index {
        0 => &mut frame.rax,
        1 => &mut frame.rcx,
        2 => &mut frame.rdx,
        3 => &mut frame.rbx,
        4 => {
            // Safety: the guest's own stack pointer, in its own address
            // space (the EPT confines what it reaches).
            return unsafe { write(field::GUEST_RSP, value) };
        }
        5 => &mut frame.rbp,
        6 => &mut frame.rsi,
        7 => &mut frame.rdi,
        8 => &mut frame.r8,
        9 => &mut frame.r9,
        10 => &mut frame.r10,
        11 => &mut frame.r11,
        12 => &mut frame.r12,
        13 => &mut frame.r13,
        14 => &mut frame.r14,
        _ => &mut frame.r15,
    };
    *slot = value;
    Ok(())
}

/// Whether a VMCALL of the loaded subject is refused: a VM's VMCALL from
/// CPL > 0 (its user space) is not a hypercall but an invalid opcode.
pub fn vmcall_refused(cpu: &CpuCore) -> bool {
    if !PRESENT {
        return false;
    }
    let Some(vmcs) = cpu.loaded else {
        return false;
    };
    vm::is_vm(vmcs.subject()) && vm::cpl(read(field::GUEST_SS_ACCESS).unwrap_or(0)) != 0
}

/// The virtio console of `subject`, if its monitor emulates one.
fn virtio_console(subject: &SubjectSpec) -> Option<VirtioConsoleSpec> {
    match subject.fault_action {
        FaultAction::Monitor(monitor) => monitor.virtio_console,
        _ => None,
    }
}

/// Whether `subject`'s monitor chose its HLT exits: a VM with a device
/// monitor halts into the monitor, which delivers input that arrived
/// meanwhile (docs/kernel.md, "Virtio console").
fn halts_to_monitor(subject: &SubjectSpec) -> bool {
    matches!(subject.fault_action, FaultAction::Monitor(monitor) if monitor.exits.contains(EXIT_HLT))
}

/// The monitor of VM `id` resumed it asserting its device interrupt (the
/// state page's `device_interrupt`): its virtio console's line is raised
/// on its PIC before its next entry. Nothing for a subject without one.
pub fn assert_device_interrupt(id: SubjectId) {
    if !PRESENT {
        return;
    }
    let Some(console) = SPEC.subjects.get(id.index()).and_then(virtio_console) else {
        return;
    };
    if let Some(slot) = REQUESTED_LINES.get(slot_index(id)) {
        slot.fetch_or(
            1u8.checked_shl(u32::from(console.irq)).unwrap_or(0),
            Ordering::Relaxed,
        );
    }
}

/// The monitor of VM `id` resumed it asking for the HLT activity state
/// (the state page's `resume_halted`, after a trapped HLT it completed):
/// [`before_entry`] enters it asleep, as [`halt`] does for a HLT the
/// kernel completes, so it waits for its next interrupt instead of
/// halting into the monitor again at once. Nothing for a subject that is
/// not a VM.
pub fn resume_halted(id: SubjectId) {
    if !PRESENT || !SPEC.subjects.get(id.index()).is_some_and(vm::is_vm) {
        return;
    }
    if let Some(flag) = REQUESTED_HALT.get(slot_index(id)) {
        flag.store(true, Ordering::Relaxed);
    }
}

/// VM `id` is being restarted (`restart.rs`, on its own CPU, in
/// `switch_to`): its whole state slot, and every request its monitor left
/// for it, go back to their first-boot values (`VmState::POWER_ON`), so
/// nothing the previous boot left in the emulated platform (PIC, PIT,
/// UART, CMOS index, PCI address, a pending interrupt or line, the HLT
/// state, the exit counts) reaches the new boot. Bytes typed for the
/// console input owner and not yet handed to its UART stay in the CPU's
/// ring (`console_rx`): they are the operator's, not the old boot's, and
/// the new boot reads them (docs/kernel.md, "VM restart"). Nothing for a
/// subject that is not a VM.
pub fn reset(id: SubjectId) {
    if !PRESENT || !SPEC.subjects.get(id.index()).is_some_and(vm::is_vm) {
        return;
    }
    let index = slot_index(id);
    if let Some(slot) = VMS.0.get(index) {
        // Safety: the slot of VM `id`, on the CPU that restarts it (its
        // own, see `restart.rs`); `switch_to`, the only caller's caller,
        // holds no reference from `loaded_vm`, and exits on one CPU never
        // nest, so this is the only reference to the slot (see `VmSlots`).
        unsafe { *slot.get() = VmState::POWER_ON };
    }
    if let Some(lines) = REQUESTED_LINES.get(index) {
        lines.store(0, Ordering::Relaxed);
    }
    if let Some(halt) = REQUESTED_HALT.get(index) {
        halt.store(false, Ordering::Relaxed);
    }
}

/// Handle exit `basic` of the loaded subject if it is a VM's to handle.
pub fn handle(cpu: &mut CpuCore, frame: &mut GuestRegs, basic: u16) -> Outcome {
    let overruns = super::console_rx::overruns(cpu);
    let Some((_, subject, state)) = loaded_vm(cpu) else {
        return Outcome::Unhandled;
    };
    state.exited = true;
    if let Some(count) = state.exits.get_mut(usize::from(basic)) {
        *count = count.saturating_add(1);
    }
    let result = match basic {
        EXIT_CPUID => {
            let (a, b, c, d) = cpu::cpuid(frame.rax as u32, frame.rcx as u32);
            let [a, b, c, d] = cpuid::filter(
                frame.rax as u32,
                frame.rcx as u32,
                [a, b, c, d],
                SPEC.kernel.tsc_khz,
            );
            frame.rax = u64::from(a);
            frame.rbx = u64::from(b);
            frame.rcx = u64::from(c);
            frame.rdx = u64::from(d);
            skip()
        }
        EXIT_HLT => halt(subject, state, overruns),
        EXIT_IO => io(subject, state, frame),
        EXIT_RDMSR => rdmsr(state, frame),
        EXIT_WRMSR => wrmsr(state, frame),
        EXIT_APIC_WRITE => apic_write(state),
        EXIT_CR_ACCESS => cr_access(frame),
        EXIT_DR_ACCESS => dr_access(frame),
        EXIT_WBINVD | EXIT_INVD => skip(),
        EXIT_INTERRUPT_WINDOW => Ok(Outcome::Resume),
        EXIT_RDPMC => inject(Inject::GeneralProtection),
        // Instructions this virtual CPU does not have: VMX (the guest's
        // VMCALL from user space included), MONITOR/MWAIT, XSETBV.
        EXIT_VMCALL
        | 19..=27
        | EXIT_INVEPT
        | EXIT_INVVPID
        | EXIT_MWAIT
        | EXIT_MONITOR
        | EXIT_XSETBV => inject(Inject::InvalidOpcode),
        _ => Ok(Outcome::Unhandled),
    };
    result.unwrap_or(Outcome::Unhandled)
}

/// HLT: with interrupts enabled the guest waits for its next interrupt,
/// which [`before_entry`] injects when due: HLT completes and the VM is
/// entered asleep ([`sleep`]), unless its monitor chose HLT exits. With
/// interrupts disabled it can never
/// wake: Linux's last act after `poweroff`/`halt`. That raises the VM's
/// `poweroff` kernel event if the policy gives it one (it is then the
/// subject asking for poweroff, like a native subject's hypercall);
/// otherwise it is a fault of the subject.
fn halt(subject: &SubjectSpec, state: &mut VmState, overruns: u32) -> Result<Outcome, VmxError> {
    if read(field::GUEST_RFLAGS)? & RFLAGS_IF != 0 {
        if halts_to_monitor(subject) {
            return Ok(Outcome::Unhandled);
        }
        let outcome = skip()?;
        sleep(state)?;
        return Ok(outcome);
    }
    report_exits(subject, state);
    if state.received != 0 || overruns != 0 {
        kprintln!(
            "septum: vm \"{}\" console input: {} bytes, {} overruns",
            subject.name,
            state.received,
            overruns
        );
    }
    let poweroff = subject
        .source_events
        .iter()
        .position(|event| matches!(event, Some(SourceEvent::Kernel(KernelAction::Poweroff))));
    Ok(match poweroff {
        Some(event) => Outcome::Raise(Exit::Hypercall {
            event: event as u64,
        }),
        None => Outcome::Unhandled,
    })
}

/// After a completed HLT with interrupts on (the kernel's, or one its
/// monitor completed and resumed with `resume_halted`): enter the VM in the HLT
/// activity state, so that it waits in the CPU until the preemption timer
/// ([`before_entry`]'s deadline: the PIT's next expiry or the frame's
/// end) or an external interrupt exits, and an injected event wakes it.
/// A CPU whose VM entry does not accept the HLT state (IA32_VMX_MISC bit
/// 6), or a HLT not at CPL 0 (which cannot exit: HLT faults there first),
/// leaves the VM active: it is re-entered at once, as before.
fn sleep(state: &mut VmState) -> Result<(), VmxError> {
    if cpu::rdmsr(IA32_VMX_MISC) & MISC_ACTIVITY_HLT == 0
        || vm::cpl(read(field::GUEST_SS_ACCESS)?) != 0
    {
        return Ok(());
    }
    let interruptibility = read(field::GUEST_INTERRUPTIBILITY)?;
    // Safety: HLT completed (RIP is past it; for a monitor's
    // `resume_halted` the monitor completed it, or chose to halt the guest
    // where it stands), so the STI or MOV SS blocking it executed under
    // has ended; with that blocking clear and SS.DPL 0 (checked above),
    // the HLT state is one VM entry accepts (SDM 27.3.1.5), and
    // IA32_VMX_MISC says this CPU supports it.
    unsafe {
        write(
            field::GUEST_INTERRUPTIBILITY,
            interruptibility & !BLOCKING_STI_MOV_SS,
        )?;
        write(field::GUEST_ACTIVITY_STATE, ACTIVITY_HLT)?;
    }
    state.sleeping = true;
    Ok(())
}

/// A monitor's `resume_halted`: [`sleep`] if the guest can be woken (its
/// interrupts are on; with them off only an NMI could wake it, and the
/// kernel injects none), else resume it running.
fn sleep_if_interruptible(state: &mut VmState) -> Result<(), VmxError> {
    if read(field::GUEST_RFLAGS)? & RFLAGS_IF == 0 {
        return Ok(());
    }
    sleep(state)
}

/// Print the VM's exit counts by reason (the exits [`handle`] saw: not
/// hypercalls or preemption-timer expiries).
fn report_exits(subject: &SubjectSpec, state: &VmState) {
    for (reason, &count) in (0u16..).zip(state.exits.iter()) {
        if count != 0 {
            kprintln!(
                "septum: vm \"{}\" exits: {} (reason {}): {}",
                subject.name,
                septum_kerncore::vmx::exit_reason_text(reason),
                reason,
                count
            );
        }
    }
}

fn io(
    subject: &SubjectSpec,
    state: &mut VmState,
    frame: &mut GuestRegs,
) -> Result<Outcome, VmxError> {
    let q = read(field::EXIT_QUALIFICATION)?;
    let size = ((q & 7) as u8).wrapping_add(1);
    let input = q & (1 << 3) != 0;
    let string = q & (1 << 4) != 0;
    let port = (q >> 16) as u16;
    if string {
        return Ok(Outcome::Unhandled);
    }
    state.platform.virtio_console = virtio_console(subject);
    if input {
        let Some(value) = state.platform.port_in(port, size) else {
            return Ok(Outcome::Unhandled);
        };
        frame.rax = match size {
            1 => (frame.rax & !0xff) | u64::from(value),
            2 => (frame.rax & !0xffff) | u64::from(value),
            _ => u64::from(value),
        };
    } else {
        let tsc_khz = SPEC.kernel.tsc_khz;
        match state
            .platform
            .port_out(port, size, frame.rax as u32, rdtsc(), tsc_khz)
        {
            Out::Done => {}
            Out::Sent(byte) => {
                if state.line.push(byte) {
                    kprintln!("{}: {}", subject.name, state.line.text());
                    state.line.clear();
                }
            }
            Out::NotEmulated => return Ok(Outcome::Unhandled),
        }
    }
    skip()
}

fn guest_field(field_of: GuestField) -> u64 {
    match field_of {
        GuestField::Efer => field::GUEST_EFER,
        GuestField::Pat => field::GUEST_PAT,
        GuestField::FsBase => field::GUEST_FS_BASE,
        GuestField::GsBase => field::GUEST_GS_BASE,
        GuestField::SysenterCs => field::GUEST_SYSENTER_CS,
        GuestField::SysenterEsp => field::GUEST_SYSENTER_ESP,
        GuestField::SysenterEip => field::GUEST_SYSENTER_EIP,
    }
}

fn rdmsr(state: &VmState, frame: &mut GuestRegs) -> Result<Outcome, VmxError> {
    let number = frame.rcx as u32;
    let value = match msr::read(number) {
        msr::Read::Value(value) => value,
        msr::Read::TscDeadline => state.lapic.deadline(),
        msr::Read::Field(which) => read(guest_field(which))?,
        msr::Read::Real => cpu::rdmsr(number),
        msr::Read::Fault => return inject(Inject::GeneralProtection),
    };
    frame.rax = value & 0xffff_ffff;
    frame.rdx = value >> 32;
    skip()
}

fn wrmsr(state: &mut VmState, frame: &mut GuestRegs) -> Result<Outcome, VmxError> {
    let number = frame.rcx as u32;
    let value = (frame.rdx << 32) | (frame.rax & 0xffff_ffff);
    match msr::write(number, value, read(field::GUEST_EFER)?) {
        msr::Write::Ignore => {}
        msr::Write::Field(which, value) => {
            // Safety: a guest MSR field of the VMCS with a value kerncore
            // checked as the CPU would (canonical, valid PAT types, EFER
            // keeping long mode).
            unsafe { write(guest_field(which), value)? };
        }
        msr::Write::Real(value) => {
            // Safety: SYSCALL's MSRs and KERNEL_GS_BASE, with values
            // checked canonical (SFMASK: reserved bits clear): the kernel
            // does not use SYSCALL or SWAPGS, and native subjects cannot
            // read these MSRs (their bitmaps).
            unsafe { cpu::wrmsr(number, value) };
        }
        msr::Write::TscDeadline(deadline) => state.lapic.set_deadline(deadline),
        msr::Write::GeneralProtection => return inject(Inject::GeneralProtection),
        msr::Write::Forbidden => return Ok(Outcome::Unhandled),
    }
    skip()
}

/// An APIC-write exit: the local APIC's (`vm_apic`); a write to a
/// register the VM may not write is a fault of the subject.
fn apic_write(state: &mut VmState) -> Result<Outcome, VmxError> {
    Ok(
        if super::vm_apic::write_exit(&mut state.lapic, &mut state.sleeping)? {
            Outcome::Resume
        } else {
            Outcome::Unhandled
        },
    )
}

/// Point the current VMCS, VM `id`'s, at its local APIC (reset) and at its
/// APIC-access page `access`; called by `vmcs::init` (boot and restart),
/// on the VM's CPU.
///
/// # Safety
/// The current VMCS must be VM `id`'s, with the `vm` profile's controls
/// written, on the CPU the VM runs on, with no reference to its slot held
/// (the exit path is not inside `handle` or `before_entry`).
pub unsafe fn init_apic(id: SubjectId, access: PhysAddr) -> Result<(), VmxError> {
    // Only a VM has a slot (a spec naming an APIC-access page for another
    // subject is inconsistent: its entry then fails, fail-closed).
    if !PRESENT || !SPEC.subjects.get(id.index()).is_some_and(vm::is_vm) {
        return Ok(());
    }
    let Some(slot) = VMS.0.get(slot_index(id)) else {
        return Ok(());
    };
    // Safety: the caller's contract: this CPU owns the slot and no other
    // reference to it is live (see `VmSlots`).
    let state = unsafe { &mut *slot.get() };
    // Safety: the caller's contract, and `access` is the spec's page.
    unsafe { super::vm_apic::init(&mut state.lapic, access) }
}

fn cr_access(frame: &mut GuestRegs) -> Result<Outcome, VmxError> {
    let access = CrAccess::decode(read(field::EXIT_QUALIFICATION)?);
    match (access.cr, access.kind) {
        (0 | 4, 0) => {
            let value = gpr(frame, access.gpr)?;
            match control::cr_write(access.cr, value) {
                CrWrite::Set { real, shadow } => {
                    let (register, read_shadow) = if access.cr == 0 {
                        (field::GUEST_CR0, field::CR0_READ_SHADOW)
                    } else {
                        (field::GUEST_CR4, field::CR4_READ_SHADOW)
                    };
                    // Safety: PE/NE/PG stay set and CD/NW clear in CR0,
                    // VMXE set in CR4 (kerncore `cr_write`): the values
                    // VM entry requires; the shadow is what the guest reads.
                    unsafe {
                        write(register, real)?;
                        write(read_shadow, shadow)?;
                    }
                    skip()
                }
                CrWrite::GeneralProtection => inject(Inject::GeneralProtection),
                CrWrite::Forbidden => Ok(Outcome::Unhandled),
            }
        }
        _ => Ok(Outcome::Unhandled),
    }
}

fn dr_access(frame: &mut GuestRegs) -> Result<Outcome, VmxError> {
    let access = DrAccess::decode(read(field::EXIT_QUALIFICATION)?);
    if access.read {
        set_gpr(frame, access.gpr, control::dr_read(access.dr))?;
    }
    skip()
}

/// Before entering the loaded subject: for a VM, re-inject an event whose
/// delivery the exit interrupted, run its interrupt sources and inject
/// the PIC's pending vector if the guest can take it (else ask for an
/// interrupt-window exit). Returns the deadline to arm the preemption
/// timer for: `deadline`, or the PIT's next expiry if that is earlier.
pub fn before_entry(cpu: &CpuCore, deadline: TscCycles) -> TscCycles {
    let Some((id, _, state)) = loaded_vm(cpu) else {
        return deadline;
    };
    // Only at the owner's own entries: the port reads depend on whether
    // keys were typed, and another subject of the CPU could time them.
    if CONSOLE_INPUT == Some(id) {
        super::console_rx::check_point(cpu);
        if super::console_rx::deliver(cpu, id, &mut state.platform.uart) {
            state.received = state.received.saturating_add(1);
        }
    }
    if let Some(slot) = REQUESTED_LINES.get(slot_index(id)) {
        let lines = slot.swap(0, Ordering::Relaxed);
        for irq in 0..8 {
            if lines & (1 << irq) != 0 {
                state.platform.raise_line(irq);
            }
        }
    }
    if REQUESTED_HALT
        .get(slot_index(id))
        .is_some_and(|flag| flag.swap(false, Ordering::Relaxed))
    {
        sleep_if_interruptible(state).unwrap_or(());
    }
    inject_pending(state).unwrap_or(());
    let wake = match state.platform.pit.deadline {
        Some(tick) if tick < deadline => tick,
        _ => deadline,
    };
    let wake =
        super::vm_apic::before_entry(&mut state.lapic, &mut state.sleeping, wake).unwrap_or(wake);
    let wake = if state.sleeping && CONSOLE_INPUT == Some(id) {
        // The owner of console input sleeps at most one poll interval: a
        // byte typed meanwhile is seen at the next check point.
        let poll = TscCycles(
            rdtsc()
                .get()
                .saturating_add(CONSOLE_POLL_MS.saturating_mul(SPEC.kernel.tsc_khz)),
        );
        wake.min(poll)
    } else {
        wake
    };
    if state.sleeping && wake >= deadline {
        TscCycles(deadline.get().saturating_sub(HALT_SLACK))
    } else {
        wake
    }
}

/// Ticks before its frame's deadline at which the preemption timer of a VM
/// entered in the HLT activity state expires (the frame ends at the
/// deadline all the same: `exit::timer_exit` waits for it in root mode).
/// Bochs wakes a halted CPU for its VMX-preemption timer late: up to about
/// 320 ticks after the deadline measured (`linux_virtio`, kernel feature
/// `count-transition`), which lengthened the transition to the next
/// partition by as much. The guest loses nothing: it was halted, and its
/// own timer's deadline (which arms an earlier expiry) is not moved.
pub(super) const HALT_SLACK: u64 = 400;

/// Whether the loaded subject is a VM asleep in the HLT activity state
/// (entered so by [`before_entry`], not yet woken).
pub(super) fn asleep(cpu: &CpuCore) -> bool {
    loaded_vm(cpu).is_some_and(|(_, _, state)| state.sleeping)
}

/// How long the console input owner may sleep in the HLT activity state
/// before the kernel looks at the console's receive side again, in
/// milliseconds of TSC time.
const CONSOLE_POLL_MS: u64 = 1;

fn inject_pending(state: &mut VmState) -> Result<(), VmxError> {
    let vectoring = if state.exited {
        read(field::IDT_VECTORING_INFO)?
    } else {
        0
    };
    let entry = read(field::ENTRY_INTERRUPTION_INFO)?;
    if vectoring & INFO_VALID != 0 && entry & INFO_VALID == 0 {
        // Safety: the event the CPU was delivering when the exit happened,
        // as it reported it (reserved bit 12 cleared), with its error code
        // and instruction length: re-injecting it is what the SDM asks
        // (28.2.4).
        unsafe {
            write(
                ENTRY_EXCEPTION_ERROR_CODE,
                read(field::IDT_VECTORING_ERROR_CODE)?,
            )?;
            write(
                ENTRY_INSTRUCTION_LENGTH,
                read(field::EXIT_INSTRUCTION_LENGTH)?,
            )?;
            write(field::ENTRY_INTERRUPTION_INFO, vectoring & !(1 << 12))?;
        }
    }
    let mut event = entry & INFO_VALID != 0 || vectoring & INFO_VALID != 0;
    state.platform.update(rdtsc());
    let proc = read(field::PROC_CONTROLS)?;
    let mut want_window = false;
    if state.platform.pending().is_some() {
        let entry = read(field::ENTRY_INTERRUPTION_INFO)?;
        let open = read(field::GUEST_RFLAGS)? & RFLAGS_IF != 0
            && read(field::GUEST_INTERRUPTIBILITY)? & 3 == 0
            && entry & INFO_VALID == 0;
        if open {
            if let Some(vector) = state.platform.acknowledge() {
                // Safety: an external interrupt (type 0) with the vector
                // the guest programmed into its PIC, injected only with
                // RFLAGS.IF set and no STI/MOV SS blocking, as SDM 26.3.1.5
                // requires.
                unsafe {
                    write(
                        field::ENTRY_INTERRUPTION_INFO,
                        u64::from(vector) | INFO_VALID,
                    )?
                };
                event = true;
            }
        } else {
            want_window = true;
        }
    }
    let wanted = if want_window {
        proc | PROC_INTERRUPT_WINDOW
    } else {
        proc & !PROC_INTERRUPT_WINDOW
    };
    if wanted != proc {
        // Safety: only the interrupt-window exiting bit changes, a control
        // every VMX processor allows either way; it only adds an exit.
        unsafe { write(field::PROC_CONTROLS, wanted)? };
    }
    if state.sleeping && (event || want_window) {
        // The guest wakes to take the event (or to open its interrupt
        // window).
        wake(&mut state.sleeping)?;
    }
    Ok(())
}

/// Make a VM that [`halt`] put to sleep active again (its `sleeping`
/// flag), without relying on the CPU leaving HLT on an injection or a
/// posted interrupt.
pub(super) fn wake(sleeping: &mut bool) -> Result<(), VmxError> {
    // Safety: the active state is valid for any guest state.
    unsafe { write(field::GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE)? };
    *sleeping = false;
    Ok(())
}
