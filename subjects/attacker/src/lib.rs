//! What every isolation probe subject shares: its report line and parking.
//!
//! A probe announces on its `report` channel what it is about to try (the
//! victim prints each line on COM1), tries it, and reports a success line
//! only if the kernel let the forbidden access through: the system tests
//! require the announcement and forbid the success line. It then parks,
//! yielding its frames forever. The `attacker` binary of this crate
//! (`src/main.rs`) and the FPU probes (`fpu_mark`, `fpu_check`) use it, so
//! a probe's own code is only what it tries.
#![no_std]

use core::fmt::{Arguments, Write};

use septum_sdk::channel::{Format, Writer};
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, raise};

/// The probe's line to the victim (its `report` channel writer).
pub struct Report {
    writer: Option<Writer<'static>>,
}

impl Report {
    /// Initialises the `report` channel with a fresh epoch. A policy that
    /// gives no such channel makes every line a no-op.
    pub fn open(info: &Info<'static>) -> Self {
        Self {
            writer: info.channel_writer("report", Format::DEFAULT),
        }
    }

    /// Sends one line (cut at 64 bytes).
    pub fn say(&mut self, args: Arguments<'_>) {
        let mut text = TextBuf::<64>::new();
        let _ = text.write_fmt(args);
        if let Some(writer) = &mut self.writer {
            let _ = writer.write(text.as_bytes());
        }
    }
}

/// Gives up every frame from now on (its `yield` kernel event), or spins if
/// the policy gives none.
pub fn park(info: &Info<'static>) -> ! {
    let pause = info.source_event("yield");
    loop {
        match pause {
            Some(event) => raise(event),
            None => core::hint::spin_loop(),
        }
    }
}
