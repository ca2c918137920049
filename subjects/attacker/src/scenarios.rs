//! The attacks, one function each, and the table that names them.
//!
//! A scenario announces on `report` what it is about to try, tries one
//! forbidden thing once, and reports a success line that must never appear
//! if the kernel holds (except `attacker_hypercall`, which must be ignored
//! and says so). Each function's doc says what it tries and what the
//! kernel must do; the policy gives every attacker `onFault="stopSubject"`.
//! The lines are matched by `systems/isolation.test.toml` and
//! `systems/isolation_cpu.test.toml`: change one only together with its
//! test.
//!
//! To add a scenario: write its function here, add a row to
//! [`SCENARIOS`] with the subject name that selects it, and give the
//! policy a subject of that name with `binary="attacker"`, a `report`
//! channel writer and a `yield` event.

use attacker::Report;
use septum_sdk::{Info, VirtAddr, probe};

/// One attack, run once with the subject's info page and report line.
/// Returns only if the kernel did not stop the subject; the caller parks.
pub type Attack = fn(&Info<'static>, &mut Report);

/// Every scenario: the subject name that selects it (the policy's
/// `<subject name=..>`, read from the info page) and its attack. Names are
/// unique (checked at build time below).
pub const SCENARIOS: &[(&str, Attack)] = &[
    // systems/isolation.xml: memory and I/O ports.
    ("attacker_ro", write_read_only_page),
    ("attacker_unmapped", write_unmapped),
    ("attacker_read", read_unmapped),
    ("attacker_io", write_victim_port),
    ("attacker_io_read", read_victim_port),
    // systems/isolation_cpu.xml: privileged instructions.
    ("attacker_msr", read_forbidden_msr),
    ("attacker_wrmsr", write_fs_base_msr),
    ("attacker_msr_ro", write_read_only_msr),
    ("attacker_cr", write_cr0),
    ("attacker_cr3", load_cr3),
    ("attacker_vmx", execute_vmxoff),
    ("attacker_hypercall", raise_undefined_events),
];

const _: () = assert!(
    names_unique(SCENARIOS),
    "two scenarios share a subject name"
);

/// The attack of the subject called `name`, if any.
pub fn find(name: &str) -> Option<Attack> {
    SCENARIOS
        .iter()
        .find(|&&(subject, _)| subject == name)
        .map(|&(_, attack)| attack)
}

/// Whether no two rows of `table` name the same subject (`const`, for the
/// build-time check above).
const fn names_unique(table: &[(&str, Attack)]) -> bool {
    let mut i = 0;
    while i < table.len() {
        let mut j = i + 1;
        while j < table.len() {
            if same_bytes(table[i].0.as_bytes(), table[j].0.as_bytes()) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// `a == b` for byte strings, usable in `const`.
const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut k = 0;
    while k < a.len() {
        if a[k] != b[k] {
            return false;
        }
        k += 1;
    }
    true
}

/// Where the victim maps its private data (systems/isolation.xml); nothing
/// is mapped there in an attacker.
const VICTIM_DATA: VirtAddr = VirtAddr(0x4000_0000);

/// The second page of the victim's private data (systems/isolation.xml).
const VICTIM_DATA_SECOND_PAGE: VirtAddr = VirtAddr(0x4000_1000);

/// COM1's data port, owned by the victim.
const COM1_DATA: u16 = 0x3f8;

/// COM1's line status register, owned by the victim.
const COM1_LSR: u16 = 0x3fd;

/// IA32_APIC_BASE (SDM Vol. 4, table 2-2), which no policy grants.
const IA32_APIC_BASE: u32 = 0x1b;

/// IA32_FS_BASE (SDM Vol. 4, table 2-2).
const IA32_FS_BASE: u32 = 0xc000_0100;

/// IA32_PLATFORM_ID (SDM Vol. 4, table 2-2: read-only).
const IA32_PLATFORM_ID: u32 = 0x17;

/// `attacker_ro`: writes to a page its policy maps read-only.
///
/// The page is `notice`, which the victim also maps and includes in its
/// checksum. The kernel must report an EPT violation (or page fault)
/// naming the subject and stop it; the line after the write must never be
/// sent.
fn write_read_only_page(info: &Info<'static>, report: &mut Report) {
    let target = info.memory("notice");
    report.say(format_args!("attacker_ro: writing read-only memory"));
    match target {
        Some(notice) => match probe::write_u64(info, notice.address, 0xbad0_bad0) {
            Ok(()) => report.say(format_args!("attacker_ro: write succeeded")),
            Err(e) => report.say(format_args!("attacker_ro: probe refused: {e:?}")),
        },
        None => report.say(format_args!("attacker_ro: no memory \"notice\"")),
    }
}

/// `attacker_unmapped`: writes to an address its policy does not map at
/// all.
///
/// The address is where the victim keeps its private data
/// ([`VICTIM_DATA`]). The kernel must report the fault naming the subject
/// and stop it.
fn write_unmapped(info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_unmapped: writing unmapped memory"));
    match probe::write_u64(info, VICTIM_DATA, 0xbad1_bad1) {
        Ok(()) => report.say(format_args!("attacker_unmapped: write succeeded")),
        Err(e) => report.say(format_args!("attacker_unmapped: probe refused: {e:?}")),
    }
}

/// `attacker_read`: reads from an address its policy does not map at all.
///
/// The address is the second page of the victim's private data
/// ([`VICTIM_DATA_SECOND_PAGE`]). The load must fault (a guest page fault
/// first, the EPT behind it); the kernel must report it naming the
/// subject, with the address as qualification, and stop it. No value may
/// come back.
fn read_unmapped(info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_read: reading unmapped memory"));
    match probe::read_u64(info, VICTIM_DATA_SECOND_PAGE) {
        Ok(value) => report.say(format_args!("attacker_read: read succeeded: {value:#x}")),
        Err(e) => report.say(format_args!("attacker_read: probe refused: {e:?}")),
    }
}

/// `attacker_io`: writes to COM1's data port ([`COM1_DATA`]), which the
/// victim owns.
///
/// Its I/O bitmap does not grant the port, so the `out` must exit; the
/// kernel must report an I/O instruction fault naming the subject and stop
/// it. No byte may reach the UART.
fn write_victim_port(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_io: writing port 0x3f8"));
    septum_sdk::arch::outb(COM1_DATA, b'!');
    report.say(format_args!("attacker_io: port write succeeded"));
}

/// `attacker_io_read`: reads COM1's line status register ([`COM1_LSR`]),
/// which the victim owns.
///
/// Reading a UART register is not harmless (it can clear pending status
/// the owner relies on), and its I/O bitmap does not grant the port: the
/// `in` must exit; the kernel must report an I/O instruction fault naming
/// the subject (qualification: port 0x3fd, direction in) and stop it.
fn read_victim_port(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_io_read: reading port 0x3fd"));
    let value = septum_sdk::arch::inb(COM1_LSR);
    report.say(format_args!(
        "attacker_io_read: port read succeeded: {value:#x}"
    ));
}

/// `attacker_msr`: reads IA32_APIC_BASE ([`IA32_APIC_BASE`]), which no
/// policy grants.
///
/// Native subjects get no MSRs: the `rdmsr` must exit; the kernel must
/// report an RDMSR fault naming the subject and stop it.
fn read_forbidden_msr(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_msr: reading MSR 0x1b"));
    let value = probe::read_msr(IA32_APIC_BASE);
    report.say(format_args!("attacker_msr: read succeeded: {value:#x}"));
}

/// `attacker_wrmsr`: writes IA32_FS_BASE ([`IA32_FS_BASE`]).
///
/// FS.base is part of the guest state the VMCS switches, so hardware could
/// let a subject write it without harm to others; the kernel still denies
/// every MSR to native subjects (the MSR bitmap is all ones, including its
/// high range 0xc000_0000..0xc000_1fff). The `wrmsr` must exit; the kernel
/// must report a WRMSR fault naming the subject and stop it. The value
/// written, 0, is FS.base's initial value, and soft-float `no_std` code
/// without thread locals never uses FS.
fn write_fs_base_msr(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_wrmsr: writing MSR 0xc0000100"));
    probe::write_msr(IA32_FS_BASE, 0);
    report.say(format_args!("attacker_wrmsr: write succeeded"));
}

/// `attacker_msr_ro`: writes IA32_PLATFORM_ID ([`IA32_PLATFORM_ID`]), a
/// read-only MSR.
///
/// The SDM (Vol. 4, table 2-2) lists IA32_PLATFORM_ID as "Platform ID
/// (RO)": on bare hardware a `wrmsr` to it raises #GP. The only exceptions
/// that take priority over VM exits are #UD, privilege-level faults and
/// I/O-permission #GP (SDM Vol. 3C, "Relative Priority of Faults and VM
/// Exits"); the #GP for writing a read-only MSR is not among them, so with
/// the MSR bitmap denying it the kernel must see a WRMSR exit naming the
/// subject (not a #GP) and stop it. This checks that the kernel does not
/// leave read-only MSRs to the hardware's own refusal.
fn write_read_only_msr(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_msr_ro: writing MSR 0x17"));
    probe::write_msr(IA32_PLATFORM_ID, 0);
    report.say(format_args!("attacker_msr_ro: write succeeded"));
}

/// `attacker_cr`: writes CR0 (flips CR0.TS).
///
/// The kernel owns every CR0 bit of a native subject, so the write must
/// exit; the kernel must report a control-register access fault naming the
/// subject and stop it.
fn write_cr0(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_cr: writing CR0"));
    probe::toggle_cr0_ts();
    report.say(format_args!("attacker_cr: write succeeded"));
}

/// `attacker_cr3`: loads CR3 (`mov cr3, rax`).
///
/// The kernel owns every native subject's paging root (CR3-load exiting,
/// no CR3 target values), so the load must exit; the kernel must report a
/// control-register access fault with qualification 0x3 (CR3, MOV to CR,
/// RAX) naming the subject and stop it. The value has a reserved bit set
/// (see [`probe::write_cr3_reserved`]) so even a missed exit could not
/// switch the subject's page tables.
fn load_cr3(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_cr3: writing CR3"));
    probe::write_cr3_reserved();
    report.say(format_args!("attacker_cr3: write succeeded"));
}

/// `attacker_vmx`: executes `vmxoff` in VMX non-root mode.
///
/// Every VMX instruction exits unconditionally; the kernel must report a
/// VMX instruction fault naming the subject and stop it.
fn execute_vmxoff(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_vmx: executing vmxoff"));
    probe::vmxoff();
    report.say(format_args!("attacker_vmx: vmxoff succeeded"));
}

/// `attacker_hypercall`: raises event numbers its policy does not define.
///
/// Numbers 63 (in range, unused), 64 and `u64::MAX` (out of range) must be
/// ignored by the kernel: the subject continues after each `vmcall` and
/// says so. This is the one scenario the kernel must not stop.
fn raise_undefined_events(_info: &Info<'static>, report: &mut Report) {
    report.say(format_args!("attacker_hypercall: raising undefined events"));
    for number in [63, 64, u64::MAX] {
        probe::raw_hypercall(number);
    }
    report.say(format_args!("attacker_hypercall: ignored, still running"));
}
