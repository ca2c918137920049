//! Device interrupts on the VT-x side: the local APIC that receives them,
//! the acknowledge on the exit, the injection before the entry.
//!
//! A device line the spec routes (kerncore `irq`, [`super::ioapic`])
//! arrives at the owner's CPU as host vector `32 + line` and, with
//! external-interrupt exiting and acknowledge-interrupt-on-exit (the native
//! profile's controls), is a VM exit whose interruption information holds
//! the vector (SDM 28.2.2). [`acknowledge`] hands it to kerncore, which
//! marks the owner's guest vector pending; a level line is masked at the
//! I/O APIC; then the end-of-interrupt goes to the local APIC. Whoever ran
//! resumes.
//!
//! Before every VM entry [`before_entry`] asks kerncore what the loaded
//! subject gets: a vector to inject through the VM-entry
//! interruption-information field (type external interrupt, SDM 26.6), or,
//! if RFLAGS.IF is clear or STI/MOV-SS blocking is on, interrupt-window
//! exiting (SDM 25.6.2), whose exit ([`window_exit`]) clears it again and
//! lets the next entry inject. Systems without routes skip all of this
//! with one test of a constant.
//!
//! A hypercall whose event marks a target event with `<inject_interrupt>`
//! marks that vector pending too ([`on_hypercall`], before the hypercall
//! is dispatched); the target gets it at its next entry like a device's.
//!
//! A VT-d unit's fault event (vector 253, to the boot CPU; `vtd`) is no
//! subject's: [`acknowledge`] has the faults reported and ends it.
//!
//! An MSI of an owned PCI device (kerncore `msi`, programmed at boot by
//! [`super::msi`]) arrives the same way at host vector `32 + IRQ number`
//! and takes the same path: pending for its owner, no mask (edge).
//! [`ROUTES`] counts MSI routes too.
//!
//! The local APIC runs in x2APIC mode (MSRs) where the processor has one.
//! Without x2APIC (one CPU only: application processors are started
//! through the x2APIC) it runs in xAPIC mode through its register page at
//! the architectural address (`irq::XAPIC_BASE`), which the composer maps
//! uncached in the kernel's tables whenever a line is routed; a local APIC
//! the firmware moved elsewhere is refused at boot, and so is an IOMMU
//! without lines routed on a processor without x2APIC (no xAPIC page is
//! mapped then).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use septum_abi::SubjectId;
use septum_kerncore::irq::{
    Acknowledge, Injection, PendingVectors, Vector, XAPIC_BASE, event_target,
};
use septum_kerncore::vtd;

use super::percpu::CpuCore;
use super::vmx::{field, vmread, vmwrite};
use super::{apic, cpu, ioapic};
use crate::system::{INTERRUPTS, MSI, SPEC, VTD};

/// Whether the system routes device lines, and whether any target event
/// injects a vector: constants, so a system without either pays nothing on
/// its hypercall and entry paths.
pub const ROUTES: bool = !INTERRUPTS.routes.is_empty() || !MSI.routes.is_empty();
pub const EVENT_VECTORS: bool = !INTERRUPTS.event_vectors.is_empty();

/// Vectors pending for each subject (set on the owner's CPU or, for
/// events, on any CPU).
pub static PENDING: PendingVectors = PendingVectors::new();

/// Device interrupts acknowledged (routed ones), for the poweroff report.
static ACKNOWLEDGED: AtomicU64 = AtomicU64::new(0);
/// Vectors injected into subjects, for the poweroff report.
static INJECTED: AtomicU64 = AtomicU64::new(0);

/// The local APIC is driven in xAPIC mode (set once by the boot CPU of a
/// one-CPU system without x2APIC).
static XAPIC: AtomicBool = AtomicBool::new(false);
/// IA32_APIC_BASE.
const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE: APIC global enable.
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;
/// IA32_APIC_BASE: the base address bits.
const APIC_BASE_MASK: u64 = 0x000f_ffff_ffff_f000;
/// xAPIC register offsets: task priority, end of interrupt, spurious vector.
const XAPIC_TPR: u64 = 0x80;
const XAPIC_EOI: u64 = 0xb0;
const XAPIC_SVR: u64 = 0xf0;

/// x2APIC end-of-interrupt register.
const X2APIC_EOI: u32 = 0x80b;
/// x2APIC spurious-interrupt vector register.
const X2APIC_SVR: u32 = 0x80f;
/// x2APIC task-priority register.
const X2APIC_TPR: u32 = 0x808;
/// SVR: APIC software enable, spurious vector 0xff.
const SVR_ENABLED: u64 = 0x1ff;
/// The spurious vector (no end-of-interrupt for it).
const SPURIOUS: u8 = 0xff;
/// IA32_VMX_PROCBASED_CTLS (allowed-1 settings in bits 63:32).
const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
/// Primary processor-based control: interrupt-window exiting.
const INTERRUPT_WINDOW_EXITING: u64 = 1 << 2;
/// VM-entry interruption information: valid, type external interrupt (0).
const INJECT_EXTERNAL: u64 = 1 << 31;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// Interruptibility state: blocking by STI (bit 0) or by MOV SS (bit 1).
const BLOCKING_STI_OR_MOV_SS: u64 = 0b11;

/// Why a CPU cannot take device interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptError {
    /// No x2APIC on an application processor (they are started through
    /// the x2APIC; `smp` refuses such a plan before this).
    NoX2apic,
    /// No x2APIC, and the xAPIC is not at the page the composer maps.
    XapicElsewhere(u64),
    /// The processor cannot exit on an interrupt window.
    NoInterruptWindow,
    /// The I/O APIC refused a route.
    IoApic(ioapic::IoApicError),
}

impl core::fmt::Display for InterruptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoX2apic => f.write_str("device interrupts need an x2APIC"),
            Self::XapicElsewhere(base) => write!(
                f,
                "the local APIC is at {base:#x}, not at {:#x} (no x2APIC)",
                XAPIC_BASE.get()
            ),
            Self::NoInterruptWindow => f.write_str("VMX feature missing: interrupt-window exiting"),
            Self::IoApic(error) => write!(f, "{error}"),
        }
    }
}

/// Prepare this CPU's local APIC for device interrupts (x2APIC mode, or
/// xAPIC mode on a one-CPU system without x2APIC; software-enabled,
/// priority 0) if the system routes any, and the boot CPU's also if the
/// system has an IOMMU (its fault events, then unmasked); on the boot CPU
/// also program the I/O APIC if there are routes. Every plan CPU calls it
/// once at boot, with
/// interrupts off in root mode.
pub fn init_cpu(boot: bool) -> Result<(), InterruptError> {
    let fault_events = boot && !VTD.iommus.is_empty();
    if !ROUTES && !fault_events {
        return Ok(());
    }
    if (cpu::rdmsr(IA32_VMX_PROCBASED_CTLS) >> 32) & INTERRUPT_WINDOW_EXITING == 0 {
        return Err(InterruptError::NoInterruptWindow);
    }
    if apic::has_x2apic() {
        apic::enable_x2apic();
        // Safety: software-enables the local APIC with spurious vector 0xff
        // and accepts every priority; root mode runs with RFLAGS.IF clear,
        // so an interrupt only ever arrives as a VM exit of a subject.
        unsafe {
            cpu::wrmsr(X2APIC_TPR, 0);
            cpu::wrmsr(X2APIC_SVR, SVR_ENABLED);
        }
    } else {
        if !boot || INTERRUPTS.routes.is_empty() {
            return Err(InterruptError::NoX2apic);
        }
        let base = cpu::rdmsr(IA32_APIC_BASE);
        if base & APIC_BASE_MASK != XAPIC_BASE.get() {
            return Err(InterruptError::XapicElsewhere(base & APIC_BASE_MASK));
        }
        if base & APIC_GLOBAL_ENABLE == 0 {
            // Safety: enables the local APIC at its (checked) base address;
            // root mode runs with interrupts off.
            unsafe { cpu::wrmsr(IA32_APIC_BASE, base | APIC_GLOBAL_ENABLE) };
        }
        XAPIC.store(true, Ordering::Relaxed);
        xapic_write(XAPIC_TPR, 0);
        xapic_write(XAPIC_SVR, SVR_ENABLED as u32);
    }
    if boot && !INTERRUPTS.routes.is_empty() {
        ioapic::init().map_err(InterruptError::IoApic)?;
    }
    if fault_events {
        super::vtd::unmask_fault_events();
    }
    Ok(())
}

/// An external-interrupt exit: record a device IRQ for its owner, mask a
/// level line, end the interrupt at the local APIC. Costs the running
/// subject only this. Returns the owner of a device IRQ (its CPU's
/// scheduler wakes it if it sleeps).
pub fn acknowledge() -> Option<SubjectId> {
    let Ok(info) = vmread(field::EXIT_INTERRUPTION_INFO) else {
        return None;
    };
    if info & (1 << 31) == 0 {
        return None;
    }
    let vector = info as u8;
    let owner = route(vector);
    if vector != SPURIOUS {
        end_of_interrupt();
    }
    owner
}

/// What an acknowledged host vector does, short of the end-of-interrupt:
/// a VT-d fault event is reported; a routed line or MSI is marked pending
/// for its owner (a level line masked), who is returned.
pub fn route(vector: u8) -> Option<SubjectId> {
    let mut owner = None;
    if vtd::is_fault_event(vector) {
        // Read and cleared here, printed in idle time (`vtd::print_held`).
        super::vtd::take_faults();
    } else if let Acknowledge::Routed { owner: to, mask } =
        INTERRUPTS.on_device_interrupt(&PENDING, Vector(vector))
    {
        ACKNOWLEDGED.fetch_add(1, Ordering::Relaxed);
        if let Some(line) = mask {
            ioapic::mask(line);
        }
        owner = Some(to);
    } else if let Some(to) = MSI.on_interrupt(&PENDING, Vector(vector)) {
        ACKNOWLEDGED.fetch_add(1, Ordering::Relaxed);
        owner = Some(to);
    }
    owner
}

/// Whether an interrupt can reach a CPU at all: routed lines or MSIs,
/// `ipi` events, an IOMMU's fault events. A constant: without any, the
/// root-mode waits pay nothing for [`take_requested`].
pub const TAKES: bool = ROUTES || super::ipi::PRESENT || !VTD.iommus.is_empty();

/// Rounds of [`take_requested`]: the local APIC delivers a vector only
/// above the priority class of those in service, so one window takes the
/// requested vectors of rising classes and the next, after their
/// end-of-interrupt, the rest (each class at most once per round).
const TAKE_ROUNDS: usize = 4;

/// While the CPU waits in root mode (an idle frame, the wait for a
/// deadline), and once at a fixed time before every padded entry
/// (`exit::enter_at`): take the interrupts requested meanwhile, as an exit
/// of a running subject would, in the waiting partition's own time or
/// inside the pad. Each is
/// acknowledged and routed like an external-interrupt exit
/// ([`route`]: the owner's vector pending, a level line masked, a VT-d
/// fault reported; the owner's scheduler told, which wakes it if it
/// sleeps on this CPU); an `ipi` is only acknowledged (the event it
/// announces is already pending). Without this an interrupt requested
/// while the CPU idled stayed in the local APIC and exited the next
/// subject entered, right after its entry, perhaps the next partition's,
/// whose start then depended on whether this partition had idled
/// (docs/kernel.md, "Interrupts taken in root mode"; system tests
/// `silence_idle_ipi`, `silence_edge_ipi`).
pub fn take_requested(cpu: &mut CpuCore) {
    if !TAKES {
        return;
    }
    for _ in 0..TAKE_ROUNDS {
        let mut taken = [0u64; 4];
        // Safety: the only place where root mode runs with RFLAGS.IF set,
        // for the one instruction after STI's shadow: every requested
        // vector the local APIC may deliver now is taken through its IDT
        // stub (`descriptors.rs`, vectors 32 to 255), which sets the
        // vector's bit in the 256-bit `taken` that R11 points at and
        // returns with every register intact. The stubs run on this stack
        // (no red zone in this target), and no other root-mode code runs
        // with IF set, so no stub ever sees another R11. CLI restores the
        // state every other root-mode path relies on.
        unsafe {
            core::arch::asm!(
                "sti",
                "nop",
                "cli",
                in("r11") taken.as_mut_ptr(),
            );
        }
        if taken.iter().fold(0, |any, word| any | word) == 0 {
            return;
        }
        for (word, mut bits) in (0u8..).zip(taken) {
            while bits != 0 {
                // Below 64: fits in u8, and word * 64 + bit below 256.
                let bit = bits.trailing_zeros() as u8;
                bits &= bits.wrapping_sub(1);
                let vector = word.wrapping_mul(64).wrapping_add(bit);
                if vector == SPURIOUS {
                    continue;
                }
                if let Some(owner) = route(vector) {
                    cpu.scheduler.interrupt_for(owner);
                }
                end_of_interrupt();
            }
        }
    }
}

/// The end-of-interrupt for the vector the exit acknowledged: it only lets
/// the local APIC deliver the next one.
fn end_of_interrupt() {
    if XAPIC.load(Ordering::Relaxed) {
        xapic_write(XAPIC_EOI, 0);
    } else {
        // Safety: the x2APIC EOI register (x2APIC mode, `init_cpu`).
        unsafe { cpu::wrmsr(X2APIC_EOI, 0) };
    }
}

/// Write an xAPIC register (xAPIC mode only, see `init_cpu`).
fn xapic_write(offset: u64, value: u32) {
    let register = XAPIC_BASE.get().wrapping_add(offset) as *mut u32;
    // Safety: the composer identity-maps the page at `XAPIC_BASE` read-write
    // and uncached in the kernel's tables whenever a line is routed (the
    // only case in which this runs), and `init_cpu` checked the local APIC
    // is there; TPR, EOI and SVR are aligned 32-bit registers in it.
    unsafe { register.write_volatile(value) };
}

/// A hypercall of the loaded subject (before it is dispatched): if its
/// source event marks a target event that injects a vector, mark the vector
/// pending too (kerncore `irq::event_target`, the hypercall's own lookup).
/// One length test when the system has no such event.
#[inline(always)]
pub fn on_hypercall(cpu: &CpuCore, event: u64) {
    if !EVENT_VECTORS {
        return;
    }
    on_event_hypercall(cpu, event);
}

#[inline(never)]
fn on_event_hypercall(cpu: &CpuCore, event: u64) {
    let Some(caller) = cpu.loaded.map(|vmcs| vmcs.id()) else {
        return;
    };
    if let Some((target, target_event)) = event_target(&SPEC, caller, event) {
        INTERRUPTS.on_event(&PENDING, target, target_event);
    }
}

/// The owner's `unmask_irq`: unmask its level-triggered lines.
pub fn unmask_irq(by: SubjectId) {
    for line in INTERRUPTS.level_lines_of(by) {
        ioapic::unmask(line);
    }
}

/// Before entering the loaded subject: inject its highest pending vector
/// if it can take it, else exit as soon as it can.
#[inline(always)]
pub fn before_entry(cpu: &CpuCore) {
    if !ROUTES && !EVENT_VECTORS {
        return;
    }
    let Some(subject) = cpu.loaded.map(|vmcs| vmcs.id()) else {
        return;
    };
    if PENDING.any(subject) {
        inject(subject);
    }
}

#[inline(never)]
fn inject(subject: SubjectId) {
    let rflags = vmread(field::GUEST_RFLAGS).unwrap_or(0);
    let blocking = vmread(field::GUEST_INTERRUPTIBILITY).unwrap_or(BLOCKING_STI_OR_MOV_SS);
    let can_take = rflags & RFLAGS_IF != 0 && blocking & BLOCKING_STI_OR_MOV_SS == 0;
    match PENDING.next(subject, can_take) {
        Injection::Nothing => {}
        Injection::Inject(vector) => {
            INJECTED.fetch_add(1, Ordering::Relaxed);
            // Safety: an external interrupt with a vector the policy gave
            // this subject, delivered through its own IDT in its own
            // address space (SDM 26.6); the subject can take it (IF set,
            // no blocking), so VM entry accepts it.
            let _ = unsafe {
                vmwrite(
                    field::ENTRY_INTERRUPTION_INFO,
                    INJECT_EXTERNAL | u64::from(vector.0),
                )
            };
        }
        Injection::OpenWindow => set_window(true),
    }
}

/// The poweroff line of a system with routes: `septum: device interrupts:
/// <n> acknowledged, <m> injected` (the counts of every CPU).
pub fn report() {
    if !ROUTES {
        return;
    }
    crate::kprintln!(
        "septum: device interrupts: {} acknowledged, {} injected",
        ACKNOWLEDGED.load(Ordering::Relaxed),
        INJECTED.load(Ordering::Relaxed)
    );
}

/// An interrupt-window exit: the subject can take an interrupt now; stop
/// asking (the entry that follows injects).
pub fn window_exit() {
    set_window(false);
}

fn set_window(open: bool) {
    let Ok(controls) = vmread(field::PROC_CONTROLS) else {
        return;
    };
    let wanted = if open {
        controls | INTERRUPT_WINDOW_EXITING
    } else {
        controls & !INTERRUPT_WINDOW_EXITING
    };
    if wanted != controls {
        // Safety: only the interrupt-window bit changes, which `init_cpu`
        // checked the processor allows; every other control keeps the value
        // the kernel checked at VMCS set-up.
        let _ = unsafe { vmwrite(field::PROC_CONTROLS, wanted) };
    }
}
