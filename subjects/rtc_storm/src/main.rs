//! RTC storm: the CMOS RTC's periodic interrupt at its fastest rate, to show
//! that an interrupt-heavy driver cannot take time from another partition.
//!
//! It owns the RTC's ports and IRQ 8 like `rtc_driver`, sets rate 3
//! (8192 Hz: an interrupt every ~1220 instructions in Bochs, so a few
//! dozen per minor frame) and acknowledges every one in its handler by
//! reading register C, which lets the RTC raise the next one at once. It
//! has nothing else to do: it spins with interrupts enabled through its
//! whole frame. While another partition runs, at most one RTC interrupt is
//! outstanding (nobody reads register C), and the kernel only acknowledges
//! it; the neighbour's frames keep their length (system test `irq_storm`).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use septum_sdk::{Info, arch, interrupt};

septum_sdk::entry!(main);

/// RTC index port.
const RTC_INDEX: u16 = 0x70;
/// RTC data port.
const RTC_DATA: u16 = 0x71;
/// Register A (rate select in bits 3:0).
const REG_A: u8 = 0x0a;
/// Register B (bit 6: periodic interrupt enable).
const REG_B: u8 = 0x0b;
/// Register C (reading it acknowledges the RTC's interrupt).
const REG_C: u8 = 0x0c;
/// Rate 3: 8192 Hz, the fastest periodic rate.
const RATE_8192_HZ: u8 = 3;

/// Interrupts handled.
static TICKS: AtomicU64 = AtomicU64::new(0);

fn rtc_read(register: u8) -> u8 {
    arch::outb(RTC_INDEX, register);
    arch::inb(RTC_DATA)
}

fn on_rtc(_vector: u8) {
    let _ = rtc_read(REG_C);
    TICKS.fetch_add(1, Ordering::Relaxed);
}

fn main(info: Info<'static>) -> ! {
    let Some(irq) = info.irq("irq") else {
        panic!("rtc_storm: no IRQ \"irq\"");
    };
    interrupt::register(irq.vector, on_rtc);
    interrupt::install();
    let a = rtc_read(REG_A);
    arch::outb(RTC_INDEX, REG_A);
    arch::outb(RTC_DATA, (a & 0xf0) | RATE_8192_HZ);
    let b = rtc_read(REG_B);
    arch::outb(RTC_INDEX, REG_B);
    arch::outb(RTC_DATA, b | (1 << 6));
    let _ = rtc_read(REG_C);
    interrupt::enable();
    loop {
        arch::pause();
    }
}
