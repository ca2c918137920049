//! Diagnostic output on the debug UART named by the spec.
//!
//! `kprintln!` formats with `core::fmt` straight to the UART: no buffer, no
//! heap. Several CPUs print, so a line is written under a spin lock, which
//! keeps lines whole. The lock is bounded: a CPU that cannot take it within
//! [`LOCK_SPINS`] tries prints anyway (a root-mode exception on the CPU
//! that holds it must still be reported; a mangled line is better than a
//! silent hang). Each line is one diagnostic of the contract in
//! docs/kernel.md; tests match on them.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::x86_64::serial::Uart;

fn uart() -> Uart {
    Uart::debug_console()
}

/// Program the UART (115200 8N1).
pub fn init() {
    uart().init();
}

/// Held while a CPU writes a line.
static LOCK: AtomicBool = AtomicBool::new(false);

/// How often a CPU tries the lock before printing without it.
const LOCK_SPINS: u32 = 1 << 24;

/// Write one line.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut locked = false;
    for _ in 0..LOCK_SPINS {
        if LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            locked = true;
            break;
        }
        core::hint::spin_loop();
    }
    let mut uart = uart();
    // The UART writer never fails; a formatting error would only cut the line.
    let _ = uart.write_fmt(args);
    let _ = uart.write_str("\n");
    if locked {
        LOCK.store(false, Ordering::Release);
    }
}

/// Wait until every byte has left the UART.
pub fn drain() {
    uart().drain();
}

/// Print a line on the debug console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
