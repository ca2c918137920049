//! Hardware side of a subject restart (`crate::lifecycle`): re-initialise
//! its memory from its restart image, its VMCS from the spec, and the
//! state the kernel keeps for it (registers, FPU, CR2) as at boot.
//!
//! A monitored subject that was trapped comes back untrapped
//! (`crate::monitor::untrap`): its registers are the spec's, not those its
//! monitor left in the state page. A VM's emulated platform (its state
//! slot in `vm.rs`) is reset to its first-boot state (`vm::reset`).
//!
//! Runs on the subject's own CPU, when the CPU is about to enter the
//! subject and a restart was requested ([`restart_if_requested`], called
//! from `exit::switch_to` with the subject's VMCS current): in the
//! subject's own frame, so the cost of the copies never delays another
//! partition. The line `subject "<name>" re-initialised in <n> TSC
//! cycles` (printed after the measurement, in the same frame) says what it
//! cost.
//!
//! Memory: every [`RestartRegion`] is identity-mapped read-write,
//! no-execute, and its pristine copy read-only, by the composer's kernel
//! tables (`lib/compose/src/pristine.rs`); `rep stosb` / `rep movsb` fill
//! them without a call (no `memcpy` on the exit path). The subject cannot
//! run meanwhile: it runs only on this CPU, which is here. Readers of a
//! channel it writes may read concurrently on other CPUs; zeroing sets the
//! epoch to 0 (SHMStream v2 "writer init"), and a reader re-checks the
//! epoch after every copy, so it discards what it read meanwhile.

use septum_kerncore::lifecycle::{RestartRegion, RestartSource, image_of};

use super::cpu;
use super::exit::{GuestRegs, SubjectContext, fxrstor, fxsave};
use super::percpu::CpuNumber;
use super::vmcs;
use super::vmx::{self, BringUpError, Vmcs};
use crate::system::RESTART_IMAGES;
use crate::{kprintln, stop};

/// If a restart of `vmcs`'s subject was requested, re-initialise it:
/// memory, VMCS (cleared, so the next entry is a VMLAUNCH), registers in
/// `frame`, FPU and CR2 (`context`). `vmcs` must be current on `cpu`,
/// `context` its subject's slot and `frame` its register frame (the one
/// the next entry pops).
///
/// Inline on every subject switch, where the common case (no request) is
/// one load; the restart itself is out of line ([`restart`]).
#[inline(always)]
pub(super) fn restart_if_requested(
    cpu: CpuNumber,
    vmcs: Vmcs,
    context: &mut SubjectContext,
    frame: &mut GuestRegs,
) {
    if crate::lifecycle::REQUESTS.take(vmcs.id()) {
        restart(cpu, vmcs, context, frame);
    }
}

/// [`restart_if_requested`] once the request is taken.
#[inline(never)]
fn restart(cpu: CpuNumber, vmcs: Vmcs, context: &mut SubjectContext, frame: &mut GuestRegs) {
    let id = vmcs.id();
    crate::monitor::untrap(id);
    super::vm::reset(id);
    // The crash record of the fault that caused this restart, if its
    // report was held back (`deferred`): the VMCS still holds the exit.
    if crate::lifecycle::RECORDS_OWED.take(id) {
        crate::crash::subject_restarted(cpu, frame, id);
    }
    let began = cpu::rdtsc();
    if let Some(image) = image_of(RESTART_IMAGES, id) {
        for region in image.regions {
            reinitialise(region);
        }
    }
    let caps = match vmx::read_capabilities() {
        Ok(caps) => caps,
        Err(feature) => fail(format_args!("VMX feature missing: {feature}")),
    };
    match vmcs::init(vmcs, &caps, cpu) {
        Ok(()) => {}
        Err(BringUpError::Missing(feature)) => fail(format_args!("VMX feature missing: {feature}")),
        Err(BringUpError::Instruction(error)) => {
            fail(format_args!("VMX instruction failed: {error}"))
        }
    }
    *frame = GuestRegs {
        rdi: vmcs.subject().guest.rdi,
        ..GuestRegs::ZERO
    };
    // The live FPU state is this subject's (it is being entered): reset
    // it and keep the FNINIT state, with MXCSR and the XMM registers at
    // their reset values, as its saved and live one, as at boot.
    cpu::fpu_reset();
    fxsave(&mut context.fpu);
    context.fpu.reset_sse();
    fxrstor(&context.fpu);
    context.cr2 = 0;
    // Safety: CR2 only reports the last page-fault address; no translation
    // or protection depends on it (see `exit::switch_to`).
    unsafe { cpu::write_cr2(0) };
    context.kernel_gs_base = 0;
    cpu::write_kernel_gs_base(0);
    context.launched = false;
    let took = cpu::rdtsc().get().wrapping_sub(began.get());
    kprintln!(
        "septum: subject \"{}\" re-initialised in {took} TSC cycles",
        vmcs.subject().name
    );
}

/// A restart that cannot re-initialise the VMCS stops the system.
fn fail(args: core::fmt::Arguments<'_>) -> ! {
    kprintln!("septum: restart failed: {args}");
    crate::crash::vmx_failed();
    kprintln!("septum: system stopped (fail-closed)");
    stop()
}

/// Give `region` its boot content.
fn reinitialise(region: &RestartRegion) {
    let Ok(len) = usize::try_from(region.size) else {
        return;
    };
    let start = region.start.get();
    match region.source {
        RestartSource::Zero => {
            // Safety: `start .. start + len` is a restart region of the
            // subject being entered, identity-mapped read-write by the
            // composer's kernel tables, holding no Rust object and not in
            // use by the subject (module doc). DF is clear (Rust ABI).
            unsafe {
                core::arch::asm!(
                    "rep stosb",
                    inout("rcx") len => _,
                    inout("rdi") start => _,
                    in("al") 0u8,
                    options(nostack)
                );
            }
        }
        RestartSource::Copy(from) => {
            // Safety: as above for the destination; the source is its
            // pristine copy, as large, identity-mapped read-only, not
            // overlapping it (two placed regions).
            unsafe {
                core::arch::asm!(
                    "rep movsb",
                    inout("rcx") len => _,
                    inout("rdi") start => _,
                    inout("rsi") from.get() => _,
                    options(nostack)
                );
            }
        }
    }
}
