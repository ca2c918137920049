//! Debug server: collects the log channels of every subject and prints
//! them, prefixed by subject name, on the UART it owns.
//!
//! Every channel it reads is a log ([`septum_sdk::log`]); the prefix is the
//! reader end's logical name in the policy, which by convention is the
//! writing subject's name (`<reader logical="ticker" physical="ticker_log"/>`
//! prints `ticker: ...`). At start it prints
//! `debug_server: collecting <n> logs: <name>, ...`. Each run it prints
//! every new line of every log, at most [`LINES_PER_RUN`] per log (so one
//! chatty subject cannot starve the others), then waits for the UART to
//! drain (a poweroff by another subject must not cut a line) and yields.
//! Trouble is printed, not hidden: `<name>: [lines lost]` when a writer
//! lapped it, `<name>: [log restarted]` on a new epoch, `<name>: [not a
//! log channel]` (once) for a channel of another format. Text is printable
//! ASCII only: a subject cannot forge another's lines.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::info::ChannelRole;
use septum_sdk::log::{self, LINE_LEN, LogItem, Source};
use septum_sdk::needs::Need;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, KernelActionCode};

septum_sdk::entry!(main);

// What main looks up and cannot do without; the composer checks it against
// the policy (docs/sdk.md, "Declared needs"). The logs are whatever
// channels the policy gives it to read.
septum_sdk::needs![Need::uart("uart"), Need::kernel(KernelActionCode::Yield)];

/// Most logs collected (further reader ends are named and ignored).
const MAX_LOGS: usize = 16;

/// Most lines printed per log and run.
const LINES_PER_RUN: u32 = 32;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("debug_server: no UART \"uart\"");
    };
    uart.init();
    let kernel = info.kernel();
    let mut sources: [Option<Source<'static>>; MAX_LOGS] = core::array::from_fn(|_| None);
    let mut count = 0usize;
    let _ = write!(uart, "debug_server: collecting");
    for name in info.channel_names(ChannelRole::Reader) {
        let Some(reader) = info.channel_reader(name, log::FORMAT) else {
            continue;
        };
        let separator = if count == 0 { ":" } else { "," };
        match sources.get_mut(count) {
            Some(slot) => {
                *slot = Some(Source::new(name, reader));
                count = count.saturating_add(1);
                let _ = write!(uart, "{separator} {name}");
            }
            None => {
                let _ = write!(uart, " (ignored: {name})");
            }
        }
    }
    let _ = writeln!(uart, " ({count} logs)");
    let mut line = [0u8; LINE_LEN];
    loop {
        for source in sources.iter_mut().flatten() {
            let name = source.name();
            for _ in 0..LINES_PER_RUN {
                let Some(item) = source.next(&mut line) else {
                    break;
                };
                let _ = match item {
                    LogItem::Line(text) => writeln!(uart, "{name}: {text}"),
                    LogItem::Lost => writeln!(uart, "{name}: [lines lost]"),
                    LogItem::Restarted => writeln!(uart, "{name}: [log restarted]"),
                    LogItem::NotALog => writeln!(uart, "{name}: [not a log channel]"),
                };
            }
        }
        uart.flush();
        if kernel.yield_now().is_err() {
            panic!("debug_server: the policy grants no yield");
        }
    }
}
