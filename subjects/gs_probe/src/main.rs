//! State isolation for IA32_KERNEL_GS_BASE: SWAPGS exchanges it with
//! GS.base without an exit, and it is not in the VMCS (docs/kernel.md,
//! "Architectural state per subject"). The same binary plays both roles of
//! the `state_gs` system:
//!
//! - the *writer* (no `uart` device) may load its own GDT (it takes an
//!   injected interrupt, so descriptor-table exiting is off): it loads GS
//!   from a descriptor whose base is [`WRITER_BASE`], executes SWAPGS (so
//!   KERNEL_GS_BASE holds that base), and yields, every run;
//! - the *reader* (owns COM1) runs right after it on the same CPU and
//!   executes SWAPGS: GS.base then holds whatever KERNEL_GS_BASE held. It
//!   reads its own marker through `gs:[&MARKER]`, which gives the marker
//!   only when that base is its own 0; with the writer's base the read
//!   lands 1 GiB higher, outside its memory, and faults (the kernel reports
//!   it). It prints `state: kernel_gs_base clean over N runs`.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::sync::atomic::AtomicU64;

use septum_sdk::probe::{load_gdt, load_gs, read_gs_u64, swapgs};
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

/// Reader checks (one per major frame).
const RUNS: u64 = 8;
/// The GS base the writer plants in KERNEL_GS_BASE (1 GiB: no subject
/// memory lies there in the `state_gs` system).
const WRITER_BASE: u64 = 0x4000_0000;
/// The reader's marker, read back through GS.
static MARKER: u64 = 0x5afe_65b5_0000_0001;

/// A data descriptor (present, writable, DPL 0) with base `base` (32 bits).
const fn data_descriptor(base: u64) -> u64 {
    0x00cf_9300_0000_ffff
        | ((base & 0xffff) << 16)
        | (((base >> 16) & 0xff) << 32)
        | (((base >> 24) & 0xff) << 56)
}

/// The writer's GDT: null, 64-bit code (0x08), data with base
/// [`WRITER_BASE`] (0x10).
static GDT: [AtomicU64; 3] = [
    AtomicU64::new(0),
    AtomicU64::new(0x00af_9b00_0000_ffff),
    AtomicU64::new(data_descriptor(WRITER_BASE)),
];

fn main(info: Info<'static>) -> ! {
    let pause = info.source_event("yield");
    let yield_frame = || match pause {
        Some(event) => raise(event),
        None => core::hint::spin_loop(),
    };
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        // The writer.
        load_gdt(&GDT);
        loop {
            load_gs(0x10);
            swapgs();
            yield_frame();
        }
    };
    uart.init();
    let marker = core::ptr::addr_of!(MARKER) as u64;
    let mut leaks: u32 = 0;
    for run in 1..=RUNS {
        // Let the writer run first: it plants its base, then yields to us.
        yield_frame();
        swapgs();
        let seen = read_gs_u64(marker);
        swapgs();
        if seen != MARKER {
            leaks += 1;
            let _ = writeln!(
                uart,
                "state: kernel_gs_base LEAK run {run} seen={seen:#018x}"
            );
        }
    }
    if leaks == 0 {
        let _ = writeln!(uart, "state: kernel_gs_base clean over {RUNS} runs");
    }
    let _ = writeln!(uart, "state: done");
    uart.flush();
    let poweroff = info.source_event("poweroff");
    loop {
        match poweroff {
            Some(event) => raise(event),
            None => core::hint::spin_loop(),
        }
    }
}
