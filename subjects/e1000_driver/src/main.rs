//! e1000 driver: owns Bochs' e1000 network card (its registers, BAR0, and
//! its level-triggered PCI interrupt) and works from its interrupts.
//!
//! The card is an Intel 82540EM at 00:02.0 whose INTx# reaches the I/O
//! APIC on line 9 (hardware/bochs-tigerlake-e1000.xml). Its interrupt is
//! level-triggered: the line stays asserted while any cause bit in ICR is
//! also enabled in IMS, and reading ICR clears every cause (read-to-clear),
//! which drops the line. Writing a cause bit to ICS sets it in ICR as if the
//! card had caused it, so the driver can raise interrupts one at a time
//! without a network. The kernel masks a level line at the I/O APIC from its
//! interrupt on until the owner's `unmask_irq` (docs/kernel.md, "Device
//! interrupts").
//!
//! What it does depends on the subject's name (the system tests'
//! drivers, good and bad):
//!
//! - `e1000_driver`: reads its PCI identity and interrupt line/pin, masks
//!   every cause (IMC), clears ICR, enables one cause (IMS), enables
//!   interrupts, then [`ROUNDS`] times writes that cause to ICS and waits
//!   (sleeping, if the policy grants `sleep`) until its handler has served
//!   it. The handler reads ICR (which drops the line), counts the
//!   interrupts whose ICR held the cause, and raises `unmask_irq`. Then it
//!   writes `e1000 <vendor>:<device> line <l> pin <p> vector <v>: <n>
//!   raised, <h> handled, <s> served, icr <x>, latency <min>..<max>` and
//!   `done` into channel `out` and raises `report` after each.
//! - `e1000_silent`: raises the cause once and never reads ICR nor unmasks
//!   (its handler only counts), re-writing ICS forever: the line stays
//!   asserted and masked, the driver gets exactly one injection.
//! - `e1000_sloppy`: raises the cause once; its handler never reads ICR but
//!   raises `unmask_irq`, [`SLOPPY_UNMASKS`] times: each unmask of the
//!   still-asserted line brings exactly one more interrupt, then it stays
//!   masked.
//! - `irq_unmasker`: owns another line, the CMOS RTC's ISA IRQ 8 (so the
//!   policy lets it raise `unmask_irq`), and its ports. It starts the RTC's
//!   periodic interrupt at 8192 Hz and, with interrupts disabled (it takes
//!   no injection), reads RTC register C and raises `unmask_irq` in a loop
//!   for its whole frames. It must not unmask the e1000's line; and every
//!   RTC interrupt makes Bochs' I/O APIC look at its inputs again, so a
//!   line 9 that was not masked would be delivered again at once.
//! - `rtc_noise`: the same without an `unmask_irq` grant (the raise is
//!   refused by the SDK, nothing reaches the kernel): only the RTC
//!   interrupts, which make Bochs' I/O APIC rescan its inputs.
//!
//! Latency (`e1000_driver`): TSC at the ICS write to TSC at the handler's
//! first instruction: the card asserting the line, the I/O APIC, the VM
//! exit, the kernel's acknowledge, mask and EOI, and the injection (in
//! Bochs one tick is one instruction).
//!
//! The handler finds its registers and kernel events through the info
//! page ([`septum_sdk::rt::startup`], the same parse `main` got), so it
//! needs no state shared with `main` beyond counters.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use septum_abi::layout::SUBJECT_INFO;
use septum_sdk::channel::Format;
use septum_sdk::pci::ConfigSpace;
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, KernelActionCode, arch, interrupt, raise, rdtsc, rt};

septum_sdk::entry!(main);

// No declared needs: each mode uses different resources (the module doc),
// and `rtc_noise` is meant to run without an `unmask_irq` grant.

/// The 82540EM's registers this driver uses (Intel PCI/PCI-X Family of
/// Gigabit Ethernet Controllers Software Developer's Manual, 13.4), as byte
/// offsets into BAR0. Every access is one aligned 32-bit load or store.
mod e1000 {
    use septum_sdk::region::{Region, RegionError};

    /// Interrupt Cause Read: read-to-clear.
    pub const ICR: usize = 0xc0;
    /// Interrupt Cause Set: sets causes as if the card had raised them.
    pub const ICS: usize = 0xc8;
    /// Interrupt Mask Set/Read: enables causes.
    pub const IMS: usize = 0xd0;
    /// Interrupt Mask Clear: disables causes.
    pub const IMC: usize = 0xd8;
    /// The cause the drivers raise: TXDW (transmit descriptor written
    /// back), which nothing else raises here (nothing is transmitted).
    pub const CAUSE: u32 = 1 << 0;

    /// The card's registers.
    pub struct Registers<'a>(pub Region<'a>);

    impl Registers<'_> {
        /// Reads and so clears every cause (drops the line).
        pub fn take_causes(&self) -> Result<u32, RegionError> {
            self.0.read_u32(ICR)
        }

        /// Raises `causes` (the line asserts if any is enabled).
        pub fn raise(&self, causes: u32) -> Result<(), RegionError> {
            self.0.write_u32(ICS, causes)
        }

        /// Enables only `causes`.
        pub fn enable_only(&self, causes: u32) -> Result<(), RegionError> {
            self.0.write_u32(IMC, u32::MAX)?;
            self.0.write_u32(IMS, causes)
        }
    }
}

use e1000::Registers;

/// Interrupts raised one by one by `e1000_driver`.
const ROUNDS: u32 = 8;
/// Unmasks `e1000_sloppy` does.
const SLOPPY_UNMASKS: u32 = 20;
/// Where Bochs puts the card (PCI slot 1).
const CARD: ConfigSpace = ConfigSpace::new(0, 2, 0);
/// Configuration dword 0x3c: interrupt line (byte 0), pin (byte 1).
const INTERRUPT_LINE_PIN: u8 = 0x3c;

/// CMOS RTC index and data ports, registers A (rate), B (periodic
/// interrupt enable, bit 6) and C (read: acknowledges the interrupt), and
/// rate 3 (8192 Hz) for `irq_unmasker`.
const RTC_INDEX: u16 = 0x70;
const RTC_DATA: u16 = 0x71;
const RTC_A: u8 = 0x0a;
const RTC_B: u8 = 0x0b;
const RTC_C: u8 = 0x0c;
const RTC_RATE_8192_HZ: u8 = 3;
const RTC_PERIODIC: u8 = 1 << 6;

fn rtc_read(register: u8) -> u8 {
    arch::outb(RTC_INDEX, register);
    arch::inb(RTC_DATA)
}

fn rtc_write(register: u8, value: u8) {
    arch::outb(RTC_INDEX, register);
    arch::outb(RTC_DATA, value);
}

/// How a subject of this binary behaves (by its name, see the module doc).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Driver,
    Silent,
    Sloppy,
    Unmasker,
}

fn mode(info: &Info<'_>) -> Mode {
    match info.name() {
        "e1000_silent" => Mode::Silent,
        "e1000_sloppy" => Mode::Sloppy,
        "irq_unmasker" | "rtc_noise" => Mode::Unmasker,
        _ => Mode::Driver,
    }
}

/// Handler invocations.
static HANDLED: AtomicU32 = AtomicU32::new(0);
/// Interrupts whose ICR held [`e1000::CAUSE`] (`e1000_driver`).
static SERVED: AtomicU32 = AtomicU32::new(0);
/// `unmask_irq`s raised by the handler of `e1000_sloppy`.
static UNMASKS: AtomicU32 = AtomicU32::new(0);
/// The last ICR value the handler read.
static LAST_ICR: AtomicU32 = AtomicU32::new(0);
/// TSC just before the last ICS write.
static RAISED_AT: AtomicU64 = AtomicU64::new(0);
/// Smallest and largest ICS-to-handler latency (TSC ticks).
static LATENCY_MIN: AtomicU64 = AtomicU64::new(u64::MAX);
static LATENCY_MAX: AtomicU64 = AtomicU64::new(0);

fn registers(info: &Info<'static>) -> Option<Registers<'static>> {
    info.device_memory("registers").map(Registers)
}

fn on_interrupt(_vector: u8) {
    let now = rdtsc();
    HANDLED.fetch_add(1, Ordering::Relaxed);
    let info = rt::startup(SUBJECT_INFO.get());
    match mode(&info) {
        Mode::Driver => {
            let latency = now.wrapping_sub(RAISED_AT.load(Ordering::Relaxed));
            LATENCY_MIN.fetch_min(latency, Ordering::Relaxed);
            LATENCY_MAX.fetch_max(latency, Ordering::Relaxed);
            let icr = registers(&info).and_then(|r| r.take_causes().ok());
            let icr = icr.unwrap_or(0);
            LAST_ICR.store(icr, Ordering::Relaxed);
            if icr & e1000::CAUSE != 0 {
                SERVED.fetch_add(1, Ordering::Relaxed);
            }
            let _ = info.kernel().unmask_irq();
        }
        Mode::Sloppy => {
            if UNMASKS.load(Ordering::Relaxed) < SLOPPY_UNMASKS {
                UNMASKS.fetch_add(1, Ordering::Relaxed);
                let _ = info.kernel().unmask_irq();
            }
        }
        Mode::Silent | Mode::Unmasker => {}
    }
}

fn main(info: Info<'static>) -> ! {
    let kernel = info.kernel();
    let mode = mode(&info);
    if mode == Mode::Unmasker {
        if info.io_ports("ports").is_none() {
            panic!("irq_unmasker: no ports \"ports\"");
        }
        let a = rtc_read(RTC_A);
        rtc_write(RTC_A, (a & 0xf0) | RTC_RATE_8192_HZ);
        let b = rtc_read(RTC_B);
        rtc_write(RTC_B, b | RTC_PERIODIC);
        loop {
            let _ = rtc_read(RTC_C);
            let _ = kernel.unmask_irq();
        }
    }
    let Some(irq) = info.irq("irq") else {
        panic!("e1000_driver: no IRQ \"irq\"");
    };
    let Some(regs) = registers(&info) else {
        panic!("e1000_driver: no device memory \"registers\"");
    };
    interrupt::register(irq.vector, on_interrupt);
    interrupt::install();
    if regs.enable_only(e1000::CAUSE).is_err() || regs.take_causes().is_err() {
        panic!("e1000_driver: registers not writable");
    }
    interrupt::enable();
    if mode != Mode::Driver {
        // Raise the cause and keep raising it; the handler does the rest.
        loop {
            let _ = regs.raise(e1000::CAUSE);
            arch::pause();
        }
    }
    let sleeps = info.kernel_event(KernelActionCode::Sleep).is_some();
    for round in 1..=ROUNDS {
        RAISED_AT.store(rdtsc(), Ordering::Relaxed);
        let _ = regs.raise(e1000::CAUSE);
        while SERVED.load(Ordering::Relaxed) < round {
            if sleeps {
                let _ = kernel.wait();
            } else {
                arch::pause();
            }
        }
    }
    let _ = regs.enable_only(0);
    report(&info, irq);
    loop {
        if sleeps {
            let _ = kernel.wait();
        } else if kernel.yield_now().is_err() {
            arch::pause();
        }
    }
}

/// Writes the result line and `done` into `out`, raising `report` after
/// each.
fn report(info: &Info<'static>, irq: interrupt::Irq) {
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("e1000_driver: no channel \"out\"");
    };
    let Some(event) = info.source_event("report") else {
        panic!("e1000_driver: no source event \"report\"");
    };
    let id = CARD.id();
    let line_pin = CARD.read(INTERRUPT_LINE_PIN);
    let mut text = TextBuf::<128>::new();
    let _ = core::fmt::write(
        &mut text,
        format_args!(
            "e1000 {:04x}:{:04x} line {} pin {} vector {}: {ROUNDS} raised",
            id & 0xffff,
            id >> 16,
            line_pin & 0xff,
            (line_pin >> 8) & 0xff,
            irq.vector,
        ),
    );
    let _ = out.write(text.as_bytes());
    raise(event);
    let mut text = TextBuf::<128>::new();
    let _ = core::fmt::write(
        &mut text,
        format_args!(
            "e1000 {} handled, {} served, icr {:#x}, latency {}..{}",
            HANDLED.load(Ordering::Relaxed),
            SERVED.load(Ordering::Relaxed),
            LAST_ICR.load(Ordering::Relaxed),
            LATENCY_MIN.load(Ordering::Relaxed),
            LATENCY_MAX.load(Ordering::Relaxed),
        ),
    );
    let _ = out.write(text.as_bytes());
    raise(event);
    let _ = out.write(b"done");
    raise(event);
}
