//! Subject register frames: each subject's general-purpose registers live in
//! one place, its frame slot, from its VM exit to its next VM entry.
//!
//! Why: a subject switch used to copy the registers twice (the exit stub's
//! frame on the exit stack into the old subject's context, the new
//! subject's context into that frame), about 70 instructions of every
//! switch inside a frame and of every minor-frame transition. A subject
//! runs on one CPU only (`SubjectSpec::cpu`, checked by `Vmcs::of`), so its
//! slot can be the register frame itself: host RSP of its VMCS points into
//! its slot, the exit stub's pushes land there, and the entry pops from
//! there. A switch only changes which slot is the loaded one.
//!
//! One slot ([`Slot`], 128 bytes):
//!
//! ```text
//! RAX RCX RDX RBX RBP RSI RDI R8 .. R15 (GuestRegs, 120 bytes) | exit-stack top
//!                                                              ^ host RSP
//! ```
//!
//! The stub (`exit.rs`) pushes R15 down to RAX below host RSP, filling
//! the [`GuestRegs`], then loads RSP from the word at host RSP: the top of
//! the exit stack of the subject's CPU, which is that CPU's per-CPU block
//! (`percpu.rs`), written by [`prepare`] before the CPU's first entry and
//! never changed. It calls `septum_vmexit(frame, block)`. After Rust
//! returns, it pops the frame the block names (`CpuCore::frame`), which
//! `exit::switch_to` sets together with `CpuCore::loaded`: the registers
//! entered are always those of the subject whose VMCS is current.
//!
//! Every frame the stub may pop has the word after it, so a failed entry
//! (whose RSP is left there) reports from the exit stack: also the spare
//! frame of each CPU ([`spare`]), the frame of the boot path before the
//! CPU's first switch, which belongs to no subject and is never entered.
//!
//! Aliasing: the exit path holds a `&mut GuestRegs` to the loaded
//! subject's frame only (or, before a CPU's first switch, to the CPU's
//! spare frame); `exit::switch_to` takes it and
//! returns the next subject's, so every use after a switch writes the
//! subject that runs next. A reference to a frame that is not loaded is
//! made only for a moment ([`frame`]'s contract: `exit::deliver_wake`).
//! Each slot belongs to one CPU, so no two CPUs reach the same one.

use core::cell::UnsafeCell;
use core::mem::{offset_of, size_of};

use septum_kerncore::plan::MAX_SUBJECTS;

use super::exit::GuestRegs;
use super::percpu::{self, CpuNumber, MAX_CPUS};
use super::vmx::Vmcs;

/// One subject's register frame and, right after it, the word the exit
/// stub loads RSP from.
#[repr(C, align(64))]
struct Slot {
    /// The subject's general-purpose registers (RSP and RIP are in the
    /// VMCS).
    regs: GuestRegs,
    /// Top of the exit stack of the subject's CPU (its per-CPU block);
    /// host RSP of the subject's VMCS is this word's address.
    exit_stack: u64,
}

/// Where the word with the exit-stack top lies, from the frame's start:
/// the stub's `mov REGS_SIZE(%rsp), %rsp` after its last push.
pub(super) const REGS_SIZE: usize = size_of::<GuestRegs>();

const _: () = assert!(offset_of!(Slot, exit_stack) == REGS_SIZE);
const _: () = assert!(REGS_SIZE == 15 * 8);

/// One slot per subject, indexed by subject id; a slot belongs to its
/// subject's CPU.
struct Slots([UnsafeCell<Slot>; MAX_SUBJECTS]);

// Safety: a slot is reached only by its subject's CPU (every accessor takes
// a `Vmcs` handle, which `Vmcs::of` makes only for the subject's CPU, and
// the exit stub reaches it through that CPU's VMCS), and on that CPU by
// the rules in the module doc.
unsafe impl Sync for Slots {}

static SLOTS: Slots = Slots(
    [const {
        UnsafeCell::new(Slot {
            regs: GuestRegs::ZERO,
            exit_stack: 0,
        })
    }; MAX_SUBJECTS],
);

/// One spare frame per CPU: [`spare`].
struct Spares([UnsafeCell<Slot>; MAX_CPUS]);

// Safety: a spare is reached only through `spare`, by its own CPU's boot
// path, once.
unsafe impl Sync for Spares {}

static SPARES: Spares = Spares(
    [const {
        UnsafeCell::new(Slot {
            regs: GuestRegs::ZERO,
            exit_stack: 0,
        })
    }; MAX_CPUS],
);

/// The slot of `vmcs`'s subject (`None` only for an id beyond the table).
fn slot(vmcs: &Vmcs) -> Option<*mut Slot> {
    SLOTS.0.get(vmcs.id().index()).map(UnsafeCell::get)
}

/// Host RSP of `vmcs`'s VMCS: the address of its slot's exit-stack word,
/// right after its register frame.
pub(super) fn host_rsp(vmcs: &Vmcs) -> Option<u64> {
    slot(vmcs).map(|slot| (slot as u64).wrapping_add(REGS_SIZE as u64))
}

/// The register frame of `vmcs`'s subject, as a raw pointer (what the
/// exit stub pops at entry when the subject is loaded).
pub(super) fn pointer(vmcs: &Vmcs) -> Option<*mut GuestRegs> {
    slot(vmcs).map(|slot| slot.cast::<GuestRegs>())
}

/// The register frame of `vmcs`'s subject.
///
/// # Safety
/// `vmcs` must belong to the calling CPU (made by `Vmcs::of(id, cpu)` for
/// this CPU, or taken from its `CpuCore::loaded`), and no other reference
/// to this subject's frame may be used while the returned one lives: the
/// exit path's frame reference is the loaded subject's, so either `vmcs`
/// is not loaded, or the caller gives that reference up for this one.
#[inline(always)]
pub(super) unsafe fn frame<'f>(vmcs: &Vmcs) -> Option<&'f mut GuestRegs> {
    let frame = pointer(vmcs)?;
    // Safety: the contract above; the slot is in `.bss`, valid for the
    // whole run, and `GuestRegs` is plain words.
    Some(unsafe { &mut *frame })
}

/// Before `cpu` enters `vmcs`'s subject for the first time: its registers
/// are zero but RDI (`rdi`, the info page address), and the exit stub of
/// its exits switches to `cpu`'s exit stack.
///
/// # Safety
/// Runs on `cpu`'s boot path before its first VM entry, with `vmcs` one of
/// `cpu`'s subjects (`Vmcs::of(id, cpu)`): no reference to the slot exists.
pub(super) unsafe fn prepare(vmcs: &Vmcs, cpu: CpuNumber, rdi: u64) {
    if let Some(slot) = slot(vmcs) {
        // Safety: the contract above; plain words in `.bss`.
        unsafe {
            slot.write(Slot {
                regs: GuestRegs {
                    rdi,
                    ..GuestRegs::ZERO
                },
                exit_stack: percpu::exit_stack_top(cpu),
            });
        }
    }
}

/// `cpu`'s spare frame: the frame `exit::start` hands the exit path while
/// no subject is loaded (no subject's registers are ever in it; the first
/// switch replaces it), with `cpu`'s exit-stack top after it.
///
/// # Safety
/// Runs on `cpu`'s boot path before its first VM entry, once: no other
/// reference to the spare exists while the returned one lives.
pub(super) unsafe fn spare<'f>(cpu: CpuNumber) -> Option<&'f mut GuestRegs> {
    let slot = SPARES.0.get(cpu.index())?.get();
    // Safety: the contract above; plain words in `.bss`.
    unsafe {
        slot.write(Slot {
            regs: GuestRegs::ZERO,
            exit_stack: percpu::exit_stack_top(cpu),
        });
        Some(&mut (*slot).regs)
    }
}
