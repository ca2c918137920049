//! RTC driver: owns the CMOS real-time clock and works from its periodic
//! interrupt.
//!
//! It finds its IRQ line (`irq`, ISA IRQ 8) and ports (`ports`, 0x70-0x71)
//! by name, registers a handler for the line's vector, loads the SDK's
//! descriptor tables and enables interrupts, then turns on the RTC's
//! periodic interrupt at 1024 Hz. The handler reads RTC register C (which
//! ends the RTC's interrupt, so it can raise the next one) and counts.
//! The main loop only waits for the count: every [`REPORT_EVERY`] ticks it
//! writes `rtc ticks <n> on vector <v> line <l> latency <min>..<max>` into
//! channel `out` and raises `report`.
//!
//! Run as subject `rtc_rogue_mmio` (`systems/irq_isolation.xml`) it is a
//! driver gone bad: after its first report it announces on `out`, then
//! writes the I/O APIC's registers at 0xfec0_0000, which it does not own;
//! the kernel must stop it (a `write succeeded` line must never appear).
//!
//! Latency: the loop stores the TSC on every turn (a handful of
//! instructions); the handler's first act is to read the TSC, and the
//! difference is the time from the last instruction before the interrupt's
//! VM exit to the handler, through the kernel's acknowledge, EOI and
//! injection (in Bochs one tick is one instruction, so it is exact up to
//! the loop's length). An interrupt that comes while the loop writes a
//! report is not counted; one that came while the driver was not
//! running waited for its frame; its difference is at least the other
//! partition's frame, so differences above [`WAITED`] are left out. The kernel injects the vector only while the driver runs; an
//! interrupt that comes in another partition's frame waits for the
//! driver's next frame (and the RTC raises no other until register C is
//! read), so the count follows the driver's own time.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use septum_sdk::channel::Format;
use septum_sdk::needs::Need;
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, VirtAddr, arch, interrupt, probe, raise, rdtsc};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::channel_writer("out", Format::DEFAULT),
    Need::source_event("report"),
];

/// The I/O APIC's registers (the rogue's target; nobody maps them).
const IOAPIC_REGISTERS: VirtAddr = VirtAddr(0xfec0_0000);

/// Ticks between two reports.
const REPORT_EVERY: u64 = 16;
/// RTC index port (bit 7 would disable NMIs: kept clear).
const RTC_INDEX: u16 = 0x70;
/// RTC data port.
const RTC_DATA: u16 = 0x71;
/// Register A: rate select in bits 3:0 (6: 1024 Hz).
const REG_A: u8 = 0x0a;
/// Register B: bit 6 enables the periodic interrupt.
const REG_B: u8 = 0x0b;
/// Register C: reading it acknowledges the RTC's interrupt.
const REG_C: u8 = 0x0c;
/// Rate 6: 32768 >> (6 - 1) = 1024 Hz.
const RATE_1024_HZ: u8 = 6;
/// Register B: periodic interrupt enable.
const PERIODIC_INTERRUPT: u8 = 1 << 6;

/// Interrupts handled.
static TICKS: AtomicU64 = AtomicU64::new(0);
/// TSC of the main loop's last turn; [`NOT_WAITING`] while the loop does
/// something else (writing a report), so that an interrupt then is not
/// counted as latency.
static LAST_TURN: AtomicU64 = AtomicU64::new(NOT_WAITING);
/// [`LAST_TURN`] while the main loop is not just waiting.
const NOT_WAITING: u64 = u64::MAX;
/// Smallest and largest latency seen (TSC ticks).
static LATENCY_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
static LATENCY_MAX: AtomicU64 = AtomicU64::new(0);
/// A difference above this waited for the driver's frame (the other
/// partition's frame is 50 000 ticks).
const WAITED: u64 = 20_000;

fn rtc_read(register: u8) -> u8 {
    arch::outb(RTC_INDEX, register);
    arch::inb(RTC_DATA)
}

fn rtc_write(register: u8, value: u8) {
    arch::outb(RTC_INDEX, register);
    arch::outb(RTC_DATA, value);
}

fn on_rtc(_vector: u8) {
    let last = LAST_TURN.load(Ordering::Relaxed);
    let latency = rdtsc().wrapping_sub(last);
    if last != NOT_WAITING && latency < WAITED {
        LATENCY_MIN.fetch_min(latency, Ordering::Relaxed);
        LATENCY_MAX.fetch_max(latency, Ordering::Relaxed);
    }
    // Register C says why; reading it re-arms the RTC's interrupt.
    let _ = rtc_read(REG_C);
    TICKS.fetch_add(1, Ordering::Relaxed);
}

fn main(info: Info<'static>) -> ! {
    let Some(irq) = info.irq("irq") else {
        panic!("rtc_driver: no IRQ \"irq\"");
    };
    if info.io_ports("ports").is_none() {
        panic!("rtc_driver: no ports \"ports\"");
    }
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("rtc_driver: no channel \"out\"");
    };
    let Some(report) = info.source_event("report") else {
        panic!("rtc_driver: no source event \"report\"");
    };
    interrupt::register(irq.vector, on_rtc);
    interrupt::install();
    let a = rtc_read(REG_A);
    rtc_write(REG_A, (a & 0xf0) | RATE_1024_HZ);
    let b = rtc_read(REG_B);
    rtc_write(REG_B, b | PERIODIC_INTERRUPT);
    let _ = rtc_read(REG_C);
    interrupt::enable();
    // With a `sleep` kernel event (systems/irq_wait.xml) the driver sleeps
    // between interrupts instead of spinning: only its device interrupts
    // can wake it (it has no target events).
    let kernel = info.kernel();
    let sleeps = info
        .kernel_event(septum_sdk::KernelActionCode::Sleep)
        .is_some();
    let mut next = REPORT_EVERY;
    loop {
        if sleeps && TICKS.load(Ordering::Relaxed) < next {
            LAST_TURN.store(NOT_WAITING, Ordering::Relaxed);
            let _ = kernel.wait();
        }
        let ticks = TICKS.load(Ordering::Relaxed);
        if ticks >= next {
            LAST_TURN.store(NOT_WAITING, Ordering::Relaxed);
            let mut text = TextBuf::<64>::new();
            let _ = core::fmt::write(
                &mut text,
                format_args!(
                    "rtc ticks {next} on vector {} line {} latency {}..{}",
                    irq.vector,
                    irq.line,
                    LATENCY_MIN.load(Ordering::Relaxed),
                    LATENCY_MAX.load(Ordering::Relaxed)
                ),
            );
            let _ = out.write(text.as_bytes());
            raise(report);
            next = next.saturating_add(REPORT_EVERY);
            if info.name() == "rtc_rogue_mmio" {
                let _ = out.write(b"rtc_rogue_mmio: writing I/O APIC registers 0xfec00000");
                raise(report);
                let _ = probe::write_u64(&info, IOAPIC_REGISTERS, 0);
                let _ = out.write(b"rtc_rogue_mmio: write succeeded");
                raise(report);
            }
        }
        LAST_TURN.store(rdtsc(), Ordering::Relaxed);
    }
}
