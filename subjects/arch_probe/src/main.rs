//! State isolation for the registers no native subject may touch: debug
//! registers, XCR0, IA32_TSC_AUX, PKRU and SYSCALL's MSRs (docs/kernel.md,
//! "Architectural state per subject"). None of them is in the VMCS, so if
//! a subject could write one, the next subject on the CPU could read what
//! it left there.
//!
//! One binary, one role per subject name ([`ROLES`]), in the systems
//! `state_dr` and `state_cpu`: a *writer* tries to plant a marker in a
//! register, a *reader*, scheduled after it on the same CPU, tries to read
//! the register back. Each announces on its `report` channel what it is
//! about to try (the victim relays the line to COM1), tries it once and
//! only if the kernel let the access through reports
//! `<role>: ... succeeded` (and `LEAK` when a reader sees a writer's
//! marker): lines the system tests forbid. The kernel must stop every one
//! of them at its first access and name it on COM2; the policies give each
//! `onFault="stopSubject"`. A subject name with no role says so on its
//! channel and parks.
#![no_std]
#![no_main]

use attacker::Report;
use septum_sdk::{Info, arch_state, probe};

septum_sdk::entry!(main);

/// A writer's or reader's attempt.
type Role = fn(&mut Report);

/// Every role, by subject name.
const ROLES: &[(&str, Role)] = &[
    // systems/state_dr.xml
    ("dr0_writer", dr0_writer),
    ("dr7_writer", dr7_writer),
    ("dr0_reader", dr0_reader),
    ("dr3_reader", dr3_reader),
    ("dr6_reader", dr6_reader),
    // systems/state_cpu.xml
    ("xcr0_writer", xcr0_writer),
    ("xcr0_reader", xcr0_reader),
    ("tsc_aux_writer", tsc_aux_writer),
    ("rdtscp_reader", rdtscp_reader),
    ("rdpid_reader", rdpid_reader),
    ("pkru_writer", pkru_writer),
    ("pkru_reader", pkru_reader),
    ("syscall_reader", syscall_reader),
];

/// The breakpoint address the DR0 writer plants (canonical, mapped in no
/// subject).
const DR0_MARK: u64 = 0x0000_5afe_dead_0000;
/// DR7 with G0 set (global breakpoint 0, execute) and the reserved bit 10:
/// unlike the reset value `0x400`.
const DR7_MARK: u64 = 0x402;
/// XCR0 with x87 and SSE: unlike the reset value 1.
const XCR0_MARK: u64 = 0x3;
/// IA32_TSC_AUX.
const TSC_AUX: u32 = 0xc000_0103;
/// The TSC_AUX value the writer plants.
const TSC_AUX_MARK: u32 = 0x5afe_0a0c;
/// The PKRU value the writer plants (access disabled for keys 1 and 2).
const PKRU_MARK: u32 = 0x0000_0014;

fn main(info: Info<'static>) -> ! {
    let mut report = Report::open(&info);
    let name = info.name();
    match ROLES.iter().find(|&&(role, _)| role == name) {
        Some(&(_, role)) => role(&mut report),
        None => report.say(format_args!("arch_probe: no role named \"{name}\"")),
    }
    attacker::park(&info)
}

fn dr0_writer(report: &mut Report) {
    report.say(format_args!("dr0_writer: writing DR0"));
    arch_state::write_dr0(DR0_MARK);
    report.say(format_args!("dr0_writer: write succeeded"));
}

fn dr7_writer(report: &mut Report) {
    report.say(format_args!("dr7_writer: writing DR7"));
    arch_state::write_dr7(DR7_MARK);
    report.say(format_args!("dr7_writer: write succeeded"));
}

fn dr0_reader(report: &mut Report) {
    report.say(format_args!("dr0_reader: reading DR0"));
    let value = arch_state::read_dr0();
    read_back(report, "dr0_reader", value, DR0_MARK);
}

fn dr3_reader(report: &mut Report) {
    report.say(format_args!("dr3_reader: reading DR3"));
    let value = arch_state::read_dr3();
    read_back(report, "dr3_reader", value, DR0_MARK);
}

fn dr6_reader(report: &mut Report) {
    report.say(format_args!("dr6_reader: reading DR6"));
    let value = arch_state::read_dr6();
    // DR6 keeps no writer's value; any read is already a failure.
    read_back(report, "dr6_reader", value, u64::MAX);
}

fn xcr0_writer(report: &mut Report) {
    report.say(format_args!("xcr0_writer: writing XCR0"));
    arch_state::xsetbv(0, XCR0_MARK);
    report.say(format_args!("xcr0_writer: write succeeded"));
}

fn xcr0_reader(report: &mut Report) {
    report.say(format_args!("xcr0_reader: reading XCR0"));
    let value = arch_state::xgetbv(0);
    read_back(report, "xcr0_reader", value, XCR0_MARK);
}

fn tsc_aux_writer(report: &mut Report) {
    report.say(format_args!("tsc_aux_writer: writing TSC_AUX"));
    probe::write_msr(TSC_AUX, u64::from(TSC_AUX_MARK));
    report.say(format_args!("tsc_aux_writer: write succeeded"));
}

fn rdtscp_reader(report: &mut Report) {
    report.say(format_args!("rdtscp_reader: reading TSC_AUX by RDTSCP"));
    let (_, aux) = arch_state::rdtscp();
    read_back(
        report,
        "rdtscp_reader",
        u64::from(aux),
        u64::from(TSC_AUX_MARK),
    );
}

fn rdpid_reader(report: &mut Report) {
    report.say(format_args!("rdpid_reader: reading TSC_AUX by RDPID"));
    let value = arch_state::rdpid();
    read_back(report, "rdpid_reader", value, u64::from(TSC_AUX_MARK));
}

fn pkru_writer(report: &mut Report) {
    report.say(format_args!("pkru_writer: writing PKRU"));
    arch_state::wrpkru(PKRU_MARK);
    report.say(format_args!("pkru_writer: write succeeded"));
}

fn pkru_reader(report: &mut Report) {
    report.say(format_args!("pkru_reader: reading PKRU"));
    let value = arch_state::rdpkru();
    read_back(
        report,
        "pkru_reader",
        u64::from(value),
        u64::from(PKRU_MARK),
    );
}

fn syscall_reader(report: &mut Report) {
    report.say(format_args!("syscall_reader: executing SYSCALL"));
    arch_state::syscall();
    report.say(format_args!("syscall_reader: SYSCALL succeeded"));
}

/// Reports a read the kernel should have stopped, and whether it shows the
/// writer's `mark`.
fn read_back(report: &mut Report, role: &str, value: u64, mark: u64) {
    let verdict = if value == mark { " LEAK" } else { "" };
    report.say(format_args!(
        "{role}: read succeeded value={value:#x}{verdict}"
    ));
}
