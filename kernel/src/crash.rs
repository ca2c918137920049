//! The crash audit: a record of why the system stopped, kept in a memory
//! region that survives a warm reset, and reported by the next boot.
//!
//! Why: the debug console is the only other witness of a fail-closed stop,
//! and nobody may be listening. Layout, checksum and classification are
//! `septum_abi::crash` (shared with the host decoder `septum crash
//! decode`); the region is `system::CRASH_AUDIT`, placed by the composer
//! and mapped uncached; volatile access and the machine state a record
//! holds are `arch::x86_64::crash`. See docs/crash.md.
//!
//! - At boot ([`boot_scan`], after the memory-map check): a header that is
//!   missing or does not fit this image's slot count is initialised (slots
//!   zeroed); otherwise every record the previous boot wrote is printed,
//!   an invalid slot is reported and cleared, and the header's boot counter
//!   is advanced. Only then may records be written ([`READY`]).
//! - On a fail-closed path (one call per path, see docs/kernel.md): a
//!   record with the path's reason and blocks is sealed and written to the
//!   slot of the failing CPU (checksum last), and a line says so. The
//!   caller then stops as before (power off, or reset after a root-mode
//!   exception). A CPU that faults while writing its record does not start
//!   another one ([`RECORDING`]).
//!
//! The header is written only by the boot CPU at boot, a slot only by its
//! own CPU: no two CPUs write the same bytes, and no lock is needed. The
//! header's crash count is therefore advanced at the next boot, by the
//! records it finds, not by the failing CPU.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use septum_abi::SubjectId;
use septum_abi::crash::{
    HEADER_SIZE, Header, RECORD_SIZE, Reason, Record, RootException, SlotState, classify,
    slot_offset,
};
use septum_kerncore::vmx::exit_reason_text;

use crate::arch::x86_64::cpu;
use crate::arch::x86_64::crash as region;
use crate::arch::x86_64::exit::GuestRegs;
use crate::arch::x86_64::percpu::{CpuCore, CpuNumber};
use crate::kprintln;
use crate::system::{CRASH_AUDIT, SPEC};

/// Set once the boot scan has left a valid header: records may be written.
static READY: AtomicBool = AtomicBool::new(false);
/// This boot's number (the header's boot counter after the scan).
static BOOT_COUNTER: AtomicU64 = AtomicU64::new(0);
/// Bit `n`: CPU `n` is writing its record (a fault meanwhile writes none).
static RECORDING: AtomicU64 = AtomicU64::new(0);

/// Read the region's header at boot: initialise it, or report the previous
/// boot's records and count this boot. Call once, on the boot CPU, after
/// the memory-map check has found the region in available RAM.
pub fn boot_scan() {
    let end = CRASH_AUDIT.start.get().wrapping_add(CRASH_AUDIT.size);
    let mut bytes = [0u8; HEADER_SIZE];
    if !region::read(0, &mut bytes) {
        kprintln!("septum: crash audit: region too small for its header; no records");
        return;
    }
    let mut header = match Header::decode(&bytes) {
        Ok(header) if header.slot_count == CRASH_AUDIT.slot_count => header,
        Ok(header) => {
            initialise(format_args!(
                "{} slots, this image has {}",
                header.slot_count, CRASH_AUDIT.slot_count
            ));
            return;
        }
        Err(error) => {
            initialise(format_args!("{error}"));
            return;
        }
    };
    let mut slot = [0u8; RECORD_SIZE];
    for number in 0..header.slot_count {
        let Some(offset) = slot_offset(number) else {
            break;
        };
        if !region::read(offset, &mut slot) {
            break;
        }
        match classify(&slot, CRASH_AUDIT.policy_hash) {
            SlotState::Empty => {}
            SlotState::Valid(record) | SlotState::OtherImage(record)
                if record.boot_counter == header.boot_counter =>
            {
                print_record(number, &record);
                header.count_crash();
            }
            // Reported by the boot after the one that wrote it.
            SlotState::Valid(_) | SlotState::OtherImage(_) => {}
            SlotState::Invalid(error) => {
                kprintln!("septum: crash audit: slot {number} invalid: {error} (cleared)");
                region::zero(offset, RECORD_SIZE);
            }
        }
    }
    header.next_boot(CRASH_AUDIT.policy_hash);
    if !region::write(0, &header.encode()) {
        return;
    }
    BOOT_COUNTER.store(header.boot_counter, Ordering::Relaxed);
    READY.store(true, Ordering::Release);
    kprintln!(
        "septum: crash audit: boot {}, policy hash {:#x}, region {:#x}-{end:#x}, {} crash(es) recorded",
        header.boot_counter,
        CRASH_AUDIT.policy_hash,
        CRASH_AUDIT.start.get(),
        header.crash_count
    );
}

/// Zero the slots, write a fresh header, and allow records.
fn initialise(why: core::fmt::Arguments<'_>) {
    let records = RECORD_SIZE.saturating_mul(CRASH_AUDIT.slot_count as usize);
    let header = Header::new(CRASH_AUDIT.policy_hash, CRASH_AUDIT.slot_count);
    let Some(records_at) = slot_offset(0) else {
        return;
    };
    if !region::zero(records_at, records) || !region::write(0, &header.encode()) {
        kprintln!("septum: crash audit: region too small for its slots; no records");
        return;
    }
    BOOT_COUNTER.store(header.boot_counter, Ordering::Relaxed);
    READY.store(true, Ordering::Release);
    kprintln!(
        "septum: crash audit: region {:#x}-{:#x} initialised ({why})",
        CRASH_AUDIT.start.get(),
        CRASH_AUDIT.start.get().wrapping_add(CRASH_AUDIT.size)
    );
}

/// Print one record of the previous boot (the lines of docs/kernel.md).
fn print_record(slot: u32, record: &Record) {
    let reason = record.reason().map_or("unknown", Reason::name);
    let tsc = record.tsc;
    let cpu = record.cpu;
    if record.policy_hash == CRASH_AUDIT.policy_hash {
        let subject = record
            .subject()
            .and_then(|id| SPEC.subjects.get(id.index()))
            .map_or("none", |s| s.name);
        kprintln!(
            "septum: crash audit: previous boot: slot {slot}: {reason} on cpu {cpu}, \
             subject \"{subject}\", tsc={tsc:#x}"
        );
    } else {
        let subject = record.subject;
        kprintln!(
            "septum: crash audit: previous boot: slot {slot}: {reason} on cpu {cpu}, \
             subject #{subject:#x} of another image (policy hash {:#x}), tsc={tsc:#x}",
            record.policy_hash
        );
    }
    if let Some(frame) = record.root_exception() {
        kprintln!(
            "septum: crash audit:   root exception {} error={:#x} rip={:#x} cs={:#x} \
             rflags={:#x} rsp={:#x} ss={:#x} cr2={:#x}",
            frame.vector,
            frame.error_code,
            frame.rip,
            frame.cs,
            frame.rflags,
            frame.rsp,
            frame.ss,
            frame.cr2
        );
    }
    if let Some(exit) = record.exit() {
        let basic = exit.exit_reason as u16;
        kprintln!(
            "septum: crash audit:   exit reason {basic} ({}) raw={:#x} instruction-error={} \
             qualification={:#x} guest-physical={:#x} guest-linear={:#x} \
             interruption={:#x} idt-vectoring={:#x}",
            exit_reason_text(basic),
            exit.exit_reason,
            exit.vm_instruction_error,
            exit.qualification,
            exit.guest_physical,
            exit.guest_linear,
            exit.interruption_info,
            exit.idt_vectoring_info
        );
    }
    if let Some(g) = record.guest() {
        kprintln!(
            "septum: crash audit:   guest rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} \
             cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
            g.rip,
            g.rsp,
            g.rflags,
            g.cr0,
            g.cr2,
            g.cr3,
            g.cr4,
            g.efer
        );
        kprintln!(
            "septum: crash audit:   guest rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} \
             rdi={:#x} rbp={:#x} r8={:#x} r9={:#x} r10={:#x} r11={:#x} r12={:#x} r13={:#x} \
             r14={:#x} r15={:#x}",
            g.rax,
            g.rbx,
            g.rcx,
            g.rdx,
            g.rsi,
            g.rdi,
            g.rbp,
            g.r8,
            g.r9,
            g.r10,
            g.r11,
            g.r12,
            g.r13,
            g.r14,
            g.r15
        );
    }
    if let Some(m) = record.machine_check() {
        kprintln!(
            "septum: crash audit:   machine check mcg-status={:#x} bank={} status={:#x} \
             address={:#x} misc={:#x}",
            m.mcg_status,
            m.bank,
            m.status,
            m.address,
            m.misc
        );
    }
}

/// A record for `cpu` with no block yet.
fn new_record(reason: Reason, cpu: CpuNumber, subject: Option<SubjectId>) -> Record {
    Record::new(
        reason,
        BOOT_COUNTER.load(Ordering::Relaxed),
        CRASH_AUDIT.policy_hash,
        region::tsc(),
        cpu.get(),
        subject,
    )
}

/// Seal `record` and write it to its CPU's slot, unless records are not
/// allowed yet, the CPU has no slot, or the CPU is already writing one.
fn write(mut record: Record) {
    if !READY.load(Ordering::Acquire) || record.cpu >= CRASH_AUDIT.slot_count {
        return;
    }
    let bit = 1u64.checked_shl(record.cpu).unwrap_or(0);
    if RECORDING.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
        return;
    }
    let Some(offset) = slot_offset(record.cpu) else {
        return;
    };
    record.seal();
    if region::write_record(offset, &record.encode()) {
        kprintln!(
            "septum: crash audit: record written: {} on cpu {}, boot {}",
            record.reason().map_or("unknown", Reason::name),
            record.cpu,
            record.boot_counter
        );
    }
}

/// The CPU a path without its per-CPU core runs on, found by its local
/// APIC id in the spec's list (CPUID: leaf 0xB's x2APIC id where the CPU
/// has that leaf, else leaf 1's initial APIC id; neither depends on the
/// APIC's mode). The boot CPU if the id is not listed.
fn current_cpu() -> CpuNumber {
    let (max_leaf, _, _, _) = cpu::cpuid(0, 0);
    let apic_id = if max_leaf >= 0xb {
        cpu::cpuid(0xb, 0).3
    } else {
        cpu::cpuid(1, 0).1 >> 24
    };
    SPEC.kernel
        .apic_ids
        .iter()
        .position(|id| id.0 == apic_id)
        .and_then(|index| u32::try_from(index).ok())
        .and_then(CpuNumber::new)
        .unwrap_or(CpuNumber::BOOT)
}

/// A root-mode exception: `root_exception` (vector 2: `unexpected_nmi`,
/// vector 18: `machine_check`), with the exception frame.
pub fn root_exception(frame: RootException) {
    let reason = match frame.vector {
        2 => Reason::UnexpectedNmi,
        18 => Reason::MachineCheck,
        _ => Reason::RootException,
    };
    let mut record = new_record(reason, current_cpu(), None);
    record.set_root_exception(frame);
    write(record);
}

/// A VM exit that stops the system (a fault whose action is `stopSystem`):
/// `vm_entry_failure` if the exit reason says the entry failed,
/// `unexpected_nmi` for an NMI exit, else `subject_fault`; with the exit
/// and the loaded subject's registers.
pub fn exit_stop(cpu: &CpuCore, frame: &GuestRegs) {
    let exit = region::exit_info();
    let basic = exit.exit_reason & 0xffff;
    let reason = if exit.exit_reason & (1 << 31) != 0 {
        Reason::VmEntryFailure
    } else if basic == 0 && exit.interruption_info & (1 << 31) != 0 {
        match (exit.interruption_info >> 8) & 7 {
            2 => Reason::UnexpectedNmi,
            _ => Reason::SubjectFault,
        }
    } else {
        Reason::SubjectFault
    };
    let (number, subject) = region::whose(cpu);
    let mut record = new_record(reason, number, subject);
    record.set_exit(exit);
    record.set_guest(region::guest_registers(frame));
    write(record);
}

/// A fault of `by` that restarts it (`onFault="restartSubject"`):
/// `subject_restarted`, with the exit and its registers (`by`'s VMCS is
/// current on CPU `number` and still holds the fault's exit). The system
/// goes on, so the CPU may write again afterwards (a later restart or stop
/// overwrites this record in its slot).
pub fn subject_restarted(number: CpuNumber, frame: &GuestRegs, by: SubjectId) {
    let mut record = new_record(Reason::SubjectRestarted, number, Some(by));
    record.set_exit(region::exit_info());
    record.set_guest(region::guest_registers(frame));
    write(record);
    let bit = 1u64.checked_shl(number.get()).unwrap_or(0);
    RECORDING.fetch_and(!bit, Ordering::Relaxed);
}

/// A subject raised an event whose kernel action is `panic`: `panic_action`,
/// with the exit (its VMCALL) and its registers.
pub fn panic_action(cpu: &CpuCore, frame: &GuestRegs, by: SubjectId) {
    let (number, _) = region::whose(cpu);
    let mut record = new_record(Reason::PanicAction, number, Some(by));
    record.set_exit(region::exit_info());
    record.set_guest(region::guest_registers(frame));
    write(record);
}

/// VMLAUNCH or VMRESUME failed: `vm_entry_failure`, with the exit block
/// (its VM-instruction error).
pub fn vm_entry_failed() {
    let mut record = new_record(Reason::VmEntryFailure, current_cpu(), None);
    record.set_exit(region::exit_info());
    write(record);
}

/// Another VMX instruction failed: `vmx_instruction_failed`, with the exit
/// block (its VM-instruction error, 0 without a current VMCS).
pub fn vmx_failed() {
    let mut record = new_record(Reason::VmxInstructionFailed, current_cpu(), None);
    record.set_exit(region::exit_info());
    write(record);
}

/// The kernel refuses to start (a missing VMX capability, an invalid spec,
/// a failed bring-up): `boot_capability`, no block. Refusals before the
/// boot scan (the memory-map check) write nothing.
pub fn boot_refused() {
    write(new_record(Reason::BootCapability, current_cpu(), None));
}
