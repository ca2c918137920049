//! Crasher: a driver that faults every few of its frames, to be restarted
//! alone (`onFault="restartSubject"`, docs/kernel.md "Subject restart").
//!
//! At every start it initialises its channel `out` (a fresh epoch, so its
//! readers see the restart) and writes `start data=<d> bss=<b>`: the value
//! of an initialised static and of a zero one, both of which it changes
//! while it runs. A restart that re-initialised its memory shows
//! `data=0x5eed bss=0` every time. Then, once per frame, it writes
//! `work <n>` and yields; in its [`FAULT_AFTER`]th frame it panics (the
//! SDK's panic is `ud2`, an exception exit the kernel treats as a fault).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use septum_sdk::channel::Format;
use septum_sdk::needs::Need;
use septum_sdk::text::TextBuf;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::channel_writer("out", Format::DEFAULT),
    Need::kernel(KernelActionCode::Yield),
];

/// Frames of work per life; it faults in the frame after the last.
const FAULT_AFTER: u64 = 3;

/// Initialised memory (`.data`): `0x5eed` at every start.
static DATA: AtomicU64 = AtomicU64::new(0x5eed);
/// Zero-initialised memory (`.bss`): 0 at every start.
static BSS: AtomicU64 = AtomicU64::new(0);

fn main(info: Info<'static>) -> ! {
    let Some(mut out) = info.channel_writer("out", Format::DEFAULT) else {
        panic!("crasher: no channel \"out\"");
    };
    let kernel = info.kernel();
    let mut text = TextBuf::<64>::new();
    let _ = core::fmt::write(
        &mut text,
        format_args!(
            "start data={:#x} bss={}",
            DATA.load(Ordering::Relaxed),
            BSS.load(Ordering::Relaxed)
        ),
    );
    let _ = out.write(text.as_bytes());
    // Leave traces a restart without re-initialisation would show.
    DATA.store(0xdead, Ordering::Relaxed);
    loop {
        let work = BSS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if work > FAULT_AFTER {
            panic!("crasher: deliberate fault");
        }
        let mut text = TextBuf::<64>::new();
        let _ = core::fmt::write(&mut text, format_args!("work {work}"));
        let _ = out.write(text.as_bytes());
        if kernel.yield_now().is_err() {
            panic!("crasher: the policy grants no yield");
        }
    }
}
