//! The monitored test subject of the isolation test with a monitor
//! (systems/isolation_monitor.xml): it tries every forbidden thing of the
//! isolation tests, one after the other, and never sees a fault itself.
//!
//! Its policy gives it `onFault="monitor"`: every trap goes to
//! `iso_monitor`, which checks that it is the trap expected next (its
//! table, `subjects/iso_monitor/src/main.rs`, follows the order here: change
//! one only together with the other) and resumes the subject after the
//! probing instruction. Memory probes and marks use the SDK's resumable
//! probes, which leave the resume address in R15 (a page fault or `ud2`
//! reports no instruction length); instruction exits are resumed by RIP
//! advance. A probe that does not trap simply goes on to the next, whose
//! trap the monitor then reports as out of order.
//!
//! The RDTSC probe is trapped because the policy's monitor chooses the
//! `rdtsc` exit (RDTSC exiting on); the monitor emulates it with a value
//! of its own, which this subject reports back with a mark: the monitor's
//! changes to the registers reached the subject.
#![no_std]
#![no_main]

use septum_sdk::{Info, VirtAddr, arch, probe};

septum_sdk::entry!(main);

/// The read-only page it shares with the monitor.
const NOTICE: VirtAddr = VirtAddr(0x4100_0000);
/// Unmapped addresses (the victim's data in systems/isolation.xml).
const UNMAPPED: VirtAddr = VirtAddr(0x4000_0000);
const UNMAPPED_SECOND_PAGE: VirtAddr = VirtAddr(0x4000_1000);
/// COM1's data port and line status register (owned by the monitor).
const COM1_DATA: u16 = 0x3f8;
const COM1_LSR: u16 = 0x3fd;
/// IA32_APIC_BASE, IA32_FS_BASE, IA32_PLATFORM_ID (read-only).
const IA32_APIC_BASE: u32 = 0x1b;
const IA32_FS_BASE: u32 = 0xc000_0100;
const IA32_PLATFORM_ID: u32 = 0x17;

/// Mark tags (RDI of the `ud2` mark), shared with the monitor.
const MARK_RDTSC: u64 = 0x75c;
const MARK_DONE: u64 = 0xd0e;

fn main(info: Info<'static>) -> ! {
    // Memory: write read-only, write unmapped, read unmapped.
    let _ = probe::resumable_write_u64(&info, NOTICE, 0xbad0_bad0);
    let _ = probe::resumable_write_u64(&info, UNMAPPED, 0xbad1_bad1);
    let _ = probe::resumable_read_u64(&info, UNMAPPED_SECOND_PAGE);
    // I/O ports of a device it does not own.
    arch::outb(COM1_DATA, b'!');
    let _ = arch::inb(COM1_LSR);
    // MSRs: read a forbidden one, write one, write a read-only one.
    let _ = probe::read_msr(IA32_APIC_BASE);
    probe::write_msr(IA32_FS_BASE, 0);
    probe::write_msr(IA32_PLATFORM_ID, 0);
    // Control registers and VMX instructions.
    probe::toggle_cr0_ts();
    probe::write_cr3_reserved();
    probe::vmxoff();
    // Hypercalls the policy does not define: ignored, no trap.
    for number in [63, 64, u64::MAX] {
        probe::raw_hypercall(number);
    }
    // RDTSC, trapped where the policy says so; the monitor emulates it.
    let tsc = septum_sdk::rdtsc();
    probe::mark(MARK_RDTSC, tsc);
    loop {
        probe::mark(MARK_DONE, 0);
    }
}
