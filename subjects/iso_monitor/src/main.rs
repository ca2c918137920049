//! The monitor of the isolation test with a monitor
//! (systems/isolation_monitor.xml), the anchor's isolation-test structure:
//! every trap of the test subject `iso_target` comes here, and each must
//! be exactly the trap expected next.
//!
//! The monitor owns COM1. It resumes the target (its `resume` switch
//! event) and, every time the target traps, reads the target's state page
//! ([`Monitored::state`]) and checks it against the next row of [`TESTS`]:
//! the exit reason and what the row says about qualification, vector,
//! error code and registers, and that the kernel counted exactly one more
//! trap. It prints `iso_monitor: ok <n> <name>` or `iso_monitor: FAIL <n>
//! <name>: ...` per row, then resumes the target after the probing
//! instruction: at R15 for exceptions (the SDK's resumable probes leave it
//! there), by the instruction length otherwise. The RDTSC row is resumed
//! with an emulated result ([`EMULATED_TSC`]), which the target sends back
//! in its next mark. After the last row it checks that the read-only page
//! `notice` still holds its fill, prints how long each `resume` took
//! until the next trap (TSC ticks: in Bochs, instructions; the subject's
//! own work between two traps included), prints `All isolation tests
//! PASSED` (or `isolation tests FAILED`) and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::monitor::{Gpr, Monitored, STATE_MAGIC, SubjectState};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

/// The value the monitor returns for the target's trapped RDTSC.
const EMULATED_TSC: u64 = 0x5eb7_0000_1234_5678;
/// Mark tags (RDI of the target's `ud2` marks), shared with the target.
const MARK_RDTSC: u64 = 0x75c;
const MARK_DONE: u64 = 0xd0e;
/// Fill byte of the `notice` page (systems/isolation_monitor.xml).
const NOTICE_FILL: u8 = 0x11;

/// VT-x basic exit reasons.
const EXCEPTION: u16 = 0;
const RDTSC: u16 = 16;
const VMXOFF: u16 = 26;
const CR_ACCESS: u16 = 28;
const IO: u16 = 30;
const RDMSR: u16 = 31;
const WRMSR: u16 = 32;
/// Exception vectors.
const PAGE_FAULT: u8 = 14;
const INVALID_OPCODE: u8 = 6;

/// How the target continues after a trap.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// At R15 (exceptions: resumable probes and marks).
    AtR15,
    /// Past the instruction (its reported length).
    Advance,
    /// Past the instruction, with RDTSC's result [`EMULATED_TSC`].
    EmulateRdtsc,
}

/// One expected trap: its name, exit reason, what else must hold, and how
/// the target continues.
struct Test {
    name: &'static str,
    exit: u16,
    check: fn(&SubjectState) -> bool,
    resume: Resume,
}

fn page_fault(s: &SubjectState, address: u64, error: u64) -> bool {
    s.vector() == Some(PAGE_FAULT) && s.exit_qualification == address && s.error_code & 3 == error
}

fn port(s: &SubjectState, port: u64, input: bool) -> bool {
    s.exit_qualification >> 16 == port && (s.exit_qualification & 1 << 3 != 0) == input
}

fn mark(s: &SubjectState, tag: u64) -> bool {
    s.vector() == Some(INVALID_OPCODE) && s.gpr(Gpr::Rdi) == tag
}

/// Every trap of `iso_target`, in its order (subjects/iso_target).
const TESTS: &[Test] = &[
    Test {
        name: "write read-only memory",
        exit: EXCEPTION,
        check: |s| page_fault(s, 0x4100_0000, 3),
        resume: Resume::AtR15,
    },
    Test {
        name: "write unmapped memory",
        exit: EXCEPTION,
        check: |s| page_fault(s, 0x4000_0000, 2),
        resume: Resume::AtR15,
    },
    Test {
        name: "read unmapped memory",
        exit: EXCEPTION,
        check: |s| page_fault(s, 0x4000_1000, 0),
        resume: Resume::AtR15,
    },
    Test {
        name: "write port 0x3f8",
        exit: IO,
        check: |s| port(s, 0x3f8, false),
        resume: Resume::Advance,
    },
    Test {
        name: "read port 0x3fd",
        exit: IO,
        check: |s| port(s, 0x3fd, true),
        resume: Resume::Advance,
    },
    Test {
        name: "read MSR 0x1b",
        exit: RDMSR,
        check: |s| s.gpr(Gpr::Rcx) == 0x1b,
        resume: Resume::Advance,
    },
    Test {
        name: "write MSR 0xc0000100",
        exit: WRMSR,
        check: |s| s.gpr(Gpr::Rcx) == 0xc000_0100,
        resume: Resume::Advance,
    },
    Test {
        name: "write read-only MSR 0x17",
        exit: WRMSR,
        check: |s| s.gpr(Gpr::Rcx) == 0x17,
        resume: Resume::Advance,
    },
    Test {
        name: "write CR0",
        exit: CR_ACCESS,
        check: |s| s.exit_qualification & 0x3f == 0,
        resume: Resume::Advance,
    },
    Test {
        name: "write CR3",
        exit: CR_ACCESS,
        check: |s| s.exit_qualification == 0x3,
        resume: Resume::Advance,
    },
    Test {
        name: "execute vmxoff",
        exit: VMXOFF,
        check: |_| true,
        resume: Resume::Advance,
    },
    // The target raised hypercalls 63, 64 and 2^64-1 before this: the
    // kernel ignored them if this is the next trap.
    Test {
        name: "rdtsc trapped (after undefined hypercalls were ignored)",
        exit: RDTSC,
        check: |_| true,
        resume: Resume::EmulateRdtsc,
    },
    Test {
        name: "emulated rdtsc value reached the target",
        exit: EXCEPTION,
        check: |s| mark(s, MARK_RDTSC) && s.gpr(Gpr::Rsi) == EMULATED_TSC,
        resume: Resume::AtR15,
    },
    Test {
        name: "target done",
        exit: EXCEPTION,
        check: |s| mark(s, MARK_DONE),
        resume: Resume::AtR15,
    },
];

fn main(info: Info<'static>) -> ! {
    let Some(uart) = Uart::from_info(&info, "uart") else {
        septum_sdk::arch::invalid_opcode()
    };
    uart.init();
    let mut out = uart;
    let Some(target) = Monitored::open(&info, "target", "resume") else {
        let _ = writeln!(
            out,
            "iso_monitor: no state page \"target\" or event \"resume\""
        );
        power_off(&info, &out)
    };
    let _ = writeln!(out, "iso_monitor: {} traps expected", TESTS.len());
    let mut failed: usize = 0;
    let (mut fastest, mut slowest) = (u64::MAX, 0);
    for (n, test) in (1u64..).zip(TESTS) {
        let before = septum_sdk::rdtsc();
        target.resume();
        let ticks = septum_sdk::rdtsc().wrapping_sub(before);
        fastest = fastest.min(ticks);
        slowest = slowest.max(ticks);
        let Ok(mut state) = target.state() else {
            let _ = writeln!(out, "iso_monitor: FAIL state page unreadable");
            failed += 1;
            break;
        };
        let exit = state.basic_exit_reason();
        let ok = state.magic == STATE_MAGIC
            && state.traps == n
            && exit == test.exit
            && (test.check)(&state);
        if ok {
            let _ = writeln!(
                out,
                "iso_monitor: ok {n} {}: exit {exit} qualification={:#x}",
                test.name, state.exit_qualification
            );
        } else {
            failed += 1;
            let _ = writeln!(
                out,
                "iso_monitor: FAIL {n} {}: exit {exit} (expected {}) qualification={:#x} \
                 vector={:?} error={:#x} rip={:#x} traps={}",
                test.name,
                test.exit,
                state.exit_qualification,
                state.vector(),
                state.error_code,
                state.rip,
                state.traps
            );
        }
        match test.resume {
            Resume::AtR15 => state.rip = state.gpr(Gpr::R15),
            Resume::Advance => state.advance_rip(),
            Resume::EmulateRdtsc => {
                state.set_gpr(Gpr::Rax, EMULATED_TSC & 0xffff_ffff);
                state.set_gpr(Gpr::Rdx, EMULATED_TSC >> 32);
                state.advance_rip();
            }
        }
        if target.set_state(&state).is_err() {
            let _ = writeln!(out, "iso_monitor: FAIL state page not writable");
            failed += 1;
            break;
        }
    }
    let notice_intact = info
        .memory_region("notice")
        .is_some_and(|notice| (0..notice.len()).all(|i| notice.read_u8(i) == Ok(NOTICE_FILL)));
    if notice_intact {
        let _ = writeln!(out, "iso_monitor: notice page intact");
    } else {
        failed += 1;
        let _ = writeln!(out, "iso_monitor: FAIL notice page changed");
    }
    let _ = writeln!(
        out,
        "iso_monitor: resume to trap min={fastest} max={slowest} ticks"
    );
    if failed == 0 {
        let _ = writeln!(out, "All isolation tests PASSED");
    } else {
        let _ = writeln!(out, "isolation tests FAILED: {failed}");
    }
    power_off(&info, &out)
}

/// Drains COM1 and powers the machine off (its `poweroff` kernel event).
fn power_off(info: &Info<'static>, uart: &Uart) -> ! {
    uart.flush();
    let kernel = septum_sdk::Kernel::from_info(info);
    let _ = kernel.poweroff();
    loop {
        let _ = kernel.event(KernelActionCode::Yield);
        core::hint::spin_loop();
    }
}
