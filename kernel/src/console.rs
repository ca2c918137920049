//! Diagnostic output on the debug UART named by the spec.
//!
//! `kprintln!` formats with `core::fmt` straight to the UART: no buffer, no
//! heap, no lock (one CPU, interrupts off). Each line is one diagnostic of
//! the contract in docs/kernel.md; tests match on them.

use core::fmt::{self, Write};

use crate::arch::x86_64::serial::Uart;

fn uart() -> Uart {
    Uart::debug_console()
}

/// Program the UART (115200 8N1).
pub fn init() {
    uart().init();
}

/// Write one line.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut uart = uart();
    // The UART writer never fails; a formatting error would only cut the line.
    let _ = uart.write_fmt(args);
    let _ = uart.write_str("\n");
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
