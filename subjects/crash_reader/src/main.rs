//! Crash reader: the policy's crash-audit reader (`<crashAudit>`); reads
//! the crash-audit region through `septum_sdk::crash` and prints what it
//! finds on COM1 (systems/crashread.xml).
//!
//! First boot: the region holds no record of a previous boot. It yields
//! until a record of this boot appears (the faulter's restart), prints it
//! and raises its `reboot` kernel event: the machine resets warm.
//! Second boot: it prints every record of the previous boot decoded
//! (`crash_reader: previous boot: <reason> subject <s> cpu <c> boot <b>`),
//! then writes to the region, which the policy maps read-only: the write
//! must fault (the kernel stops the system, `onFault="stopSystem"`); a
//! write that returns prints `write did not fault`.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::crash::{Reason, Record, Records, SlotState};
use septum_sdk::needs::Need;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, VirtAddr};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::uart("uart"),
    Need::kernel(KernelActionCode::Yield),
    Need::kernel(KernelActionCode::Reboot),
    Need::crash_audit("crash"),
];

/// Yields to wait for this boot's record before giving up.
const MAX_WAITS: u32 = 10_000;

fn reason(r: &Record) -> &'static str {
    Reason::from_u32(r.reason).map_or("unknown", Reason::name)
}

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("crash_reader: no UART \"uart\"");
    };
    uart.init();
    let Some(crash) = Records::address(&info, "crash") else {
        panic!("crash_reader: no crash-audit region \"crash\"");
    };
    let records = match info.crash_audit("crash") {
        Some(Ok(records)) => records,
        Some(Err(e)) => panic!("crash_reader: unusable region: {e:?}"),
        None => panic!("crash_reader: no crash-audit region \"crash\""),
    };
    let boot = records.header().boot_counter;
    let _ = writeln!(
        uart,
        "crash_reader: boot {boot}, {} slot(s), {} crash(es) recorded",
        records.header().slot_count,
        records.header().crash_count
    );
    let mut previous = 0u32;
    for r in records.previous_boot() {
        previous += 1;
        let _ = writeln!(
            uart,
            "crash_reader: previous boot: {} subject {} cpu {} boot {}",
            reason(&r),
            r.subject,
            r.cpu,
            r.boot_counter
        );
    }
    if previous > 0 {
        write_probe(&info, &mut uart, crash);
    }
    let kernel = info.kernel();
    for _ in 0..MAX_WAITS {
        if let Some(r) = this_boot(&records, boot) {
            let _ = writeln!(
                uart,
                "crash_reader: this boot: {} subject {} cpu {} boot {}; rebooting",
                reason(&r),
                r.subject,
                r.cpu,
                r.boot_counter
            );
            let _ = kernel.reboot();
            panic!("crash_reader: reboot not granted");
        }
        if kernel.yield_now().is_err() {
            panic!("crash_reader: yield not granted");
        }
    }
    panic!("crash_reader: no record of this boot appeared");
}

/// A well-formed record of this boot, if one has been written.
fn this_boot(records: &Records<'_>, boot: u64) -> Option<Record> {
    records.slots().find_map(|(_, state)| match state {
        SlotState::Valid(r) | SlotState::OtherImage(r) if r.boot_counter == boot => Some(r),
        _ => None,
    })
}

/// Write to the read-only region: must fault.
fn write_probe(info: &Info<'static>, uart: &mut Uart, crash: VirtAddr) -> ! {
    let _ = writeln!(
        uart,
        "crash_reader: writing the crash-audit region at {:#x}",
        crash.get()
    );
    let result = septum_sdk::probe::write_u64(info, crash, 0);
    let _ = writeln!(uart, "crash_reader: write did not fault: {result:?}");
    panic!("crash_reader: write to the crash-audit region did not fault");
}
