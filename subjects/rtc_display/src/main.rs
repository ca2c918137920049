//! RTC display: prints what the RTC driver reports.
//!
//! It owns COM1 and loops on the typed `wait`: each time the driver's
//! `report` event wakes it, it prints every message waiting in channel `in`
//! as `rtc_display: report <n>: <message>`. After [`DONE_AFTER`] reports it
//! prints `rtc_display: done, <k> report interrupts` and powers off.
//!
//! If the policy grants it device memory `vga` (VGA text memory), it first
//! writes `IRQ` there (character and attribute bytes), reads it back and
//! prints `rtc_display: device memory "vga" ok` (or what it read).
//!
//! Its target event `report` also injects a vector (`<inject_interrupt>`):
//! the display enables interrupts, and its handler counts how often the
//! kernel injected it (at most once per wake-up: one pending bit).
#![no_std]
#![no_main]

use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode, interrupt};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("in", Format::DEFAULT),
    Need::kernel(KernelActionCode::Sleep),
];

/// Reports to print before powering off.
const DONE_AFTER: u32 = 5;

/// Injections of the `report` event's vector.
static REPORT_INTERRUPTS: AtomicU32 = AtomicU32::new(0);

fn on_report(_vector: u8) {
    REPORT_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
}

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("rtc_display: no UART \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("in", Format::DEFAULT) else {
        let _ = writeln!(uart, "rtc_display: no channel \"in\"");
        panic!("rtc_display: no channel");
    };
    let kernel = info.kernel();
    if let Some(vector) = info.target_event("report").and_then(|t| t.vector) {
        interrupt::register(vector, on_report);
        interrupt::install();
        interrupt::enable();
    }
    if let Some(vga) = info.device_memory("vga") {
        let text = [b'I', 0x1f, b'R', 0x1f, b'Q', 0x1f];
        let mut back = [0u8; 6];
        let wrote = vga.write_bytes(0, &text).is_ok() && vga.read_bytes(0, &mut back).is_ok();
        if wrote && back == text {
            let _ = writeln!(uart, "rtc_display: device memory \"vga\" ok");
        } else {
            let _ = writeln!(uart, "rtc_display: device memory \"vga\" read {back:02x?}");
        }
    }
    let _ = writeln!(uart, "rtc_display: waiting for reports");
    let mut reports = 0u32;
    loop {
        if kernel.wait().is_err() {
            let _ = writeln!(uart, "rtc_display: the policy grants no sleep event");
            panic!("rtc_display: cannot wait");
        }
        let mut element = [0u8; 64];
        loop {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    reports = reports.saturating_add(1);
                    let _ = writeln!(
                        uart,
                        "rtc_display: report {reports}: {}",
                        until_nul(&element)
                    );
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                other => {
                    let _ = writeln!(uart, "rtc_display: channel trouble: {other:?}");
                    break;
                }
            }
        }
        if reports >= DONE_AFTER {
            let _ = writeln!(
                uart,
                "rtc_display: done, {} report interrupts",
                REPORT_INTERRUPTS.load(Ordering::Relaxed)
            );
            uart.flush();
            let _ = kernel.poweroff();
            let _ = writeln!(uart, "rtc_display: the policy grants no poweroff");
            panic!("rtc_display: cannot power off");
        }
    }
}
