//! The native end of the Linux VM's virtio console
//! (systems/linux_virtio.xml): prints every line the VM writes to
//! `/dev/hvc0` and answers each with one line.
//!
//! The VM's monitor (`virtio_console`) turns the guest's console output
//! into lines on channel `from_vm` and puts what this subject writes to
//! channel `to_vm` into the guest's receive buffers. In each of its minor
//! frames this subject prints `virtio_peer: alive frame <n>` (the first
//! few frames only), then every line waiting as `virtio_peer: got
//! "<line>"`, and yields the rest of its frame. It answers each line with
//! [`REPLY`] [`REPLY_DELAY`] frames later, so the answer arrives while the
//! guest idles in its blocking read: only the guest's halts, which go to
//! its monitor, can deliver it.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::needs::Need;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

septum_sdk::needs![
    Need::uart("uart"),
    Need::channel_reader("from_vm", Format::DEFAULT),
    Need::channel_writer("to_vm", Format::DEFAULT),
    Need::source_event("yield"),
];

/// The line sent back for every line received.
const REPLY: &[u8] = b"hello from the native subject\n";
/// Frames announced on COM1 (to show the subject runs beside the VM).
const ANNOUNCED: u64 = 5;
/// Frames between a line's arrival and its answer (half a second of the
/// 50 ms major frame).
const REPLY_DELAY: u64 = 10;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("virtio_peer: no UART \"uart\"");
    };
    uart.init();
    let Some(mut input) = info.channel_reader("from_vm", Format::DEFAULT) else {
        panic!("virtio_peer: no channel \"from_vm\"");
    };
    let Some(mut output) = info.channel_writer("to_vm", Format::DEFAULT) else {
        panic!("virtio_peer: no channel \"to_vm\"");
    };
    let Some(pause) = info.source_event("yield") else {
        panic!("virtio_peer: no event \"yield\"");
    };
    let mut frame = 0u64;
    let mut answer_at: Option<u64> = None;
    loop {
        if frame < ANNOUNCED {
            let _ = writeln!(uart, "virtio_peer: alive frame {frame}");
        }
        let mut element = [0u8; 64];
        loop {
            match input.read(&mut element) {
                ReadOutcome::Element => {
                    let _ = writeln!(uart, "virtio_peer: got \"{}\"", until_nul(&element));
                    answer_at = Some(frame.saturating_add(REPLY_DELAY));
                }
                ReadOutcome::Empty | ReadOutcome::Inactive => break,
                ReadOutcome::Overrun => {
                    let _ = writeln!(uart, "virtio_peer: overrun, lines lost");
                }
                ReadOutcome::EpochChanged => {
                    let _ = writeln!(uart, "virtio_peer: channel restarted by its writer");
                }
                ReadOutcome::Incompatible => {
                    let _ = writeln!(uart, "virtio_peer: channel incompatible");
                    break;
                }
            }
        }
        if answer_at.is_some_and(|at| frame >= at) {
            answer_at = None;
            let _ = output.write(REPLY);
            let _ = writeln!(uart, "virtio_peer: answered in frame {frame}");
        }
        frame = frame.wrapping_add(1);
        raise(pause);
    }
}
