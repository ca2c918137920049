//! Hardware side of the crash audit (`crate::crash`): volatile access to the
//! crash-audit region, and the machine state a record holds (VMCS exit and
//! guest fields, control registers, the TSC).
//!
//! The region is `system::CRASH_AUDIT.start .. + size`, identity-mapped
//! read-write, no-execute and uncached (PCD|PWT) by the composer's kernel
//! tables, checked by the boot memory-map check to be available RAM, and
//! neither loaded nor overlapped by any other region (docs/crash.md). No
//! Rust object lives there: every access is a volatile byte access through
//! a raw pointer, bounds-checked against the region's size here, so an
//! access never leaves the region whatever offset the caller passes.

use septum_abi::crash::{ExitInfo, GuestRegisters, RECORD_SIZE};

use septum_abi::SubjectId;

use super::cpu;
use super::exit::GuestRegs;
use super::percpu::{CpuCore, CpuNumber};
use super::vmx::{field, vmread};
use crate::system::CRASH_AUDIT;

/// Byte range of the checksum field in a record (written last).
const RECORD_CHECKSUM: core::ops::Range<usize> = 16..20;

/// VMCS encodings the crash record reads that the VM-exit path does not
/// (SDM Vol. 3D, appendix B).
mod extra_field {
    pub const EXIT_INSTRUCTION_INFO: u64 = 0x440e;
    pub const GUEST_LINEAR_ADDRESS: u64 = 0x640a;
}

/// The region's address of `offset .. offset + len`, if that lies inside it.
fn address(offset: usize, len: usize) -> Option<u64> {
    let end = offset.checked_add(len)?;
    if u64::try_from(end).ok()? > CRASH_AUDIT.size {
        return None;
    }
    CRASH_AUDIT
        .start
        .get()
        .checked_add(u64::try_from(offset).ok()?)
}

/// Copy `out.len()` bytes from `offset` in the region. `false` (and `out`
/// untouched) if the range leaves the region.
pub fn read(offset: usize, out: &mut [u8]) -> bool {
    let Some(base) = address(offset, out.len()) else {
        return false;
    };
    let base = base as *const u8;
    for (i, byte) in out.iter_mut().enumerate() {
        // Safety: `base + i` lies in the crash-audit region (checked by
        // `address`), which is identity-mapped readable and holds no Rust
        // object (module doc); a byte read cannot be misaligned.
        *byte = unsafe { base.wrapping_add(i).read_volatile() };
    }
    true
}

/// Write `bytes` at `offset` in the region, in order. `false` (nothing
/// written) if the range leaves the region.
pub fn write(offset: usize, bytes: &[u8]) -> bool {
    let Some(base) = address(offset, bytes.len()) else {
        return false;
    };
    let base = base as *mut u8;
    for (i, &byte) in bytes.iter().enumerate() {
        // Safety: as in `read`; the mapping is writable. Only the crash
        // audit writes the region: the header at boot (boot CPU), a slot
        // by the CPU it belongs to.
        unsafe { base.wrapping_add(i).write_volatile(byte) };
    }
    true
}

/// Zero `len` bytes at `offset`. `false` (nothing written) if the range
/// leaves the region.
pub fn zero(offset: usize, len: usize) -> bool {
    let Some(base) = address(offset, len) else {
        return false;
    };
    let base = base as *mut u8;
    for i in 0..len {
        // Safety: as in `write`.
        unsafe { base.wrapping_add(i).write_volatile(0) };
    }
    true
}

/// Write an encoded record at `offset`: every byte but the checksum, then
/// the checksum, so that a record cut short by a reset or a second fault
/// never carries a checksum that matches (the region is uncached and the
/// writes are volatile, so they reach memory in this order).
pub fn write_record(offset: usize, bytes: &[u8; RECORD_SIZE]) -> bool {
    if address(offset, RECORD_SIZE).is_none() {
        return false;
    }
    let (head, rest) = bytes.split_at(RECORD_CHECKSUM.start);
    let (checksum, tail) = rest.split_at(RECORD_CHECKSUM.len());
    let tail_offset = offset.wrapping_add(RECORD_CHECKSUM.end);
    write(offset, head)
        && write(tail_offset, tail)
        && write(offset.wrapping_add(RECORD_CHECKSUM.start), checksum)
}

/// The CPU number of `cpu` and the subject whose VMCS it has loaded.
pub fn whose(cpu: &CpuCore) -> (CpuNumber, Option<SubjectId>) {
    (cpu.number, cpu.loaded.map(|vmcs| vmcs.id()))
}

/// The TSC now.
pub fn tsc() -> septum_abi::TscCycles {
    cpu::rdtsc()
}

/// The current VMCS's exit-information fields (an unreadable field reads
/// 0; the VM-instruction error is read too, for a failed VMX instruction).
pub fn exit_info() -> ExitInfo {
    let read = |encoding| vmread(encoding).unwrap_or(0);
    let read32 = |encoding| read(encoding) as u32;
    ExitInfo {
        exit_reason: read32(field::EXIT_REASON),
        vm_instruction_error: read32(field::VM_INSTRUCTION_ERROR),
        qualification: read(field::EXIT_QUALIFICATION),
        guest_physical: read(field::GUEST_PHYSICAL_ADDRESS),
        guest_linear: read(extra_field::GUEST_LINEAR_ADDRESS),
        interruption_info: read32(field::EXIT_INTERRUPTION_INFO),
        interruption_error: read32(field::EXIT_INTERRUPTION_ERROR_CODE),
        idt_vectoring_info: read32(field::IDT_VECTORING_INFO),
        idt_vectoring_error: read32(field::IDT_VECTORING_ERROR_CODE),
        instruction_length: read32(field::EXIT_INSTRUCTION_LENGTH),
        instruction_info: read32(extra_field::EXIT_INSTRUCTION_INFO),
        reserved: 0,
    }
}

/// The loaded subject's registers: general-purpose registers from the exit
/// frame, the rest from the current VMCS's guest-state area (an unreadable
/// field reads 0), CR2 from the CPU (VMX does not switch it).
pub fn guest_registers(frame: &GuestRegs) -> GuestRegisters {
    let read = |encoding| vmread(encoding).unwrap_or(0);
    GuestRegisters {
        rax: frame.rax,
        rbx: frame.rbx,
        rcx: frame.rcx,
        rdx: frame.rdx,
        rsi: frame.rsi,
        rdi: frame.rdi,
        rbp: frame.rbp,
        rsp: read(field::GUEST_RSP),
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rip: read(field::GUEST_RIP),
        rflags: read(field::GUEST_RFLAGS),
        cr0: read(field::GUEST_CR0),
        cr2: cpu::read_cr2(),
        cr3: read(field::GUEST_CR3),
        cr4: read(field::GUEST_CR4),
        efer: read(field::GUEST_EFER),
        reserved: 0,
    }
}
