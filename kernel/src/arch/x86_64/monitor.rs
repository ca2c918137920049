//! Hardware side of monitors (`crate::monitor`): volatile access to a
//! monitored subject's state page, and the move of its registers between
//! the exit frame / current VMCS and a [`SubjectState`].
//!
//! A state page is the 4 KiB region the composer names in the subject's
//! `FaultAction::Monitor` (layout: `septum_abi::state`). The composer
//! identity-maps it read-write, no-execute in the kernel's tables, and the
//! boot memory-map check covers it (it is one of the image's regions). The
//! address is looked up here, from the spec, for the subject the caller
//! names, so no caller can hand in an address of its own. The monitor
//! subject may write the page at any time: every value read from it is
//! treated as untrusted (only the fields `septum_abi::state` lists are
//! loaded, RIP only if canonical, RFLAGS only its status flags and DF).

use septum_abi::state::{STATE_PAGE_SIZE, STATE_SIZE, SubjectState, merge_rflags, resume_rip};
use septum_abi::{PhysAddr, SubjectId};
use septum_kerncore::spec::FaultAction;
use septum_kerncore::vmx::{EXIT_EPT_MISCONFIGURATION, EXIT_EPT_VIOLATION, EXIT_EXCEPTION_OR_NMI};

use super::cpu;
use super::exit::GuestRegs;
use super::vmx::{GuestField, field, vmread, write_guest};
use crate::system::SPEC;

const _: () = assert!(STATE_SIZE as u64 <= STATE_PAGE_SIZE);

/// The state page of `subject`, if it is monitored.
pub fn page_of(subject: SubjectId) -> Option<PhysAddr> {
    match SPEC.subjects.get(subject.index())?.fault_action {
        FaultAction::Monitor(monitor) => Some(monitor.state),
        _ => None,
    }
}

/// Read `subject`'s state page (`None` if it is not monitored).
pub fn read_page(subject: SubjectId) -> Option<SubjectState> {
    let page = page_of(subject)?;
    let pointer = page.get() as *const SubjectState;
    // Safety: `page` is the state page of a monitored subject (from the
    // spec), a page-aligned 4 KiB region identity-mapped readable for the
    // kernel (module doc), which holds no Rust object; `SubjectState` is
    // `repr(C)` of `u64`s (any bit pattern is valid) and fits in the page.
    Some(unsafe { pointer.read_volatile() })
}

/// Write `state` into `subject`'s state page; `false` if it is not
/// monitored.
pub fn write_page(subject: SubjectId, state: &SubjectState) -> bool {
    let Some(page) = page_of(subject) else {
        return false;
    };
    let pointer = page.get() as *mut SubjectState;
    // Safety: as in `read_page`; the mapping is writable. The monitored
    // subject is stopped while the kernel writes; the monitor runs on the
    // same CPU (same scheduling group), so it cannot run meanwhile.
    unsafe { pointer.write_volatile(*state) };
    true
}

/// The loaded subject's registers and exit data: general-purpose registers
/// from the exit frame, the rest from the current VMCS (an unreadable field
/// reads 0), CR2 from the CPU. Fields the CPU leaves undefined for this
/// exit read 0. `magic`, `version` and `traps` are left 0 for the caller.
pub fn capture(frame: &GuestRegs) -> SubjectState {
    let read = |encoding| vmread(encoding).unwrap_or(0);
    let exit_reason = read(field::EXIT_REASON);
    let basic = exit_reason as u16;
    let qualification = read(field::EXIT_QUALIFICATION);
    let ept = basic == EXIT_EPT_VIOLATION || basic == EXIT_EPT_MISCONFIGURATION;
    let interruption_info = if basic == EXIT_EXCEPTION_OR_NMI {
        read(field::EXIT_INTERRUPTION_INFO)
    } else {
        0
    };
    let error_code = if interruption_info & (1 << 11) != 0 {
        read(field::EXIT_INTERRUPTION_ERROR_CODE)
    } else {
        0
    };
    SubjectState {
        exit_reason,
        exit_qualification: qualification,
        guest_physical: if ept {
            read(field::GUEST_PHYSICAL_ADDRESS)
        } else {
            0
        },
        guest_linear: if basic == EXIT_EPT_VIOLATION && qualification & (1 << 7) != 0 {
            read(field::GUEST_LINEAR_ADDRESS)
        } else {
            0
        },
        instruction_length: read(field::EXIT_INSTRUCTION_LENGTH),
        interruption_info,
        error_code,
        gprs: [
            frame.rax,
            frame.rcx,
            frame.rdx,
            frame.rbx,
            read(field::GUEST_RSP),
            frame.rbp,
            frame.rsi,
            frame.rdi,
            frame.r8,
            frame.r9,
            frame.r10,
            frame.r11,
            frame.r12,
            frame.r13,
            frame.r14,
            frame.r15,
        ],
        rip: read(field::GUEST_RIP),
        rflags: read(field::GUEST_RFLAGS),
        cr0: read(field::CR0_READ_SHADOW),
        cr2: cpu::read_cr2(),
        cr3: read(field::GUEST_CR3),
        cr4: read(field::CR4_READ_SHADOW),
        efer: read(field::GUEST_EFER),
        segment_bases: [
            read(field::GUEST_CS_BASE),
            read(field::GUEST_SS_BASE),
            read(field::GUEST_DS_BASE),
            read(field::GUEST_ES_BASE),
            read(field::GUEST_FS_BASE),
            read(field::GUEST_GS_BASE),
        ],
        ..SubjectState::default()
    }
}

/// Load what a monitor may change from `state` into the loaded subject:
/// the general-purpose registers into `frame`, RSP, RIP (if canonical) and
/// RFLAGS (status flags and DF only) into the current VMCS. A failed VMCS
/// write leaves that field as it was.
pub fn load(frame: &mut GuestRegs, state: &SubjectState) {
    let [
        rax,
        rcx,
        rdx,
        rbx,
        rsp,
        rbp,
        rsi,
        rdi,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
    ] = state.gprs;
    *frame = GuestRegs {
        rax,
        rcx,
        rdx,
        rbx,
        rbp,
        rsi,
        rdi,
        r8,
        r9,
        r10,
        r11,
        r12,
        r13,
        r14,
        r15,
    };
    let _ = write_guest(GuestField::Rsp, rsp);
    if let Ok(old) = vmread(field::GUEST_RIP) {
        let _ = write_guest(GuestField::Rip, resume_rip(old, state.rip));
    }
    if let Ok(old) = vmread(field::GUEST_RFLAGS) {
        let _ = write_guest(GuestField::Rflags, merge_rflags(old, state.rflags));
    }
}
