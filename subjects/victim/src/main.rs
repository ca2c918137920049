//! Victim of the isolation tests: owns COM1 and watches its memory.
//!
//! At start it fills its private memory `data` with a fixed pattern and
//! computes a checksum (FNV-1a, 64 bit) over `data` and, if the policy
//! maps it, the read-only page `notice` it shares with an attacker. Every
//! time it runs it recomputes the checksum and prints
//! `victim: data ok checksum=0x...`, or a `victim: data MISMATCH ...` line
//! if anything changed. It also relays what the attackers report on every
//! channel it reads, so a line such as "attacker_ro: write succeeded" would
//! show up on COM1. After [`RUNS`] runs it prints `victim: done`, drains
//! the UART and powers off.
#![no_std]
#![no_main]

use core::fmt::Write;

use septum_sdk::channel::{Format, ReadOutcome, Reader};
use septum_sdk::info::ChannelRole;
use septum_sdk::region::Region;
use septum_sdk::text::until_nul;
use septum_sdk::uart::Uart;
use septum_sdk::{Info, raise, rdtsc};

septum_sdk::entry!(main);

/// Runs (major frames) before powering off: long enough for every attacker
/// to have tried and been stopped several frames earlier.
const RUNS: u32 = 8;

/// Most report channels relayed.
const MAX_REPORTS: usize = 8;

fn main(info: Info<'static>) -> ! {
    let Some(mut uart) = Uart::from_info(&info, "uart") else {
        panic!("victim: no UART \"uart\"");
    };
    uart.init();
    let Some(data) = info.memory_region("data") else {
        let _ = writeln!(uart, "victim: memory \"data\" missing");
        panic!("victim: memory missing");
    };
    let notice = info.memory_region("notice");
    for offset in 0..data.len() {
        // In bounds by construction; a refused write would show up as a
        // checksum mismatch below.
        let _ = data.write_u8(offset, pattern(offset));
    }
    let mut reports: [Option<Reader<'static>>; MAX_REPORTS] = Default::default();
    let readers = info.resources().filter_map(|r| {
        let name = r.name()?;
        let channel = info.channel(name)?;
        (channel.role == ChannelRole::Reader).then(|| info.channel_reader(name, Format::DEFAULT))?
    });
    for (slot, reader) in reports.iter_mut().zip(readers) {
        *slot = Some(reader);
    }
    let pause = info.source_event("yield");
    let poweroff = info.source_event("poweroff");
    let expected = checksum(&data, &notice);
    for run in 0..RUNS {
        let now = checksum(&data, &notice);
        if now == expected {
            let _ = writeln!(uart, "victim: data ok checksum={now:#018x} run {run}");
        } else {
            let _ = writeln!(
                uart,
                "victim: data MISMATCH checksum={now:#018x} expected={expected:#018x} run {run}"
            );
        }
        relay(&mut uart, &mut reports);
        pause_once(pause);
    }
    let _ = writeln!(uart, "victim: done");
    uart.flush();
    loop {
        if let Some(event) = poweroff {
            raise(event);
        }
        pause_once(pause);
    }
}

/// The byte the victim stores at `offset` of its private memory.
fn pattern(offset: usize) -> u8 {
    (offset.wrapping_mul(7) as u8) ^ 0x5a
}

/// FNV-1a over both regions, read volatilely byte by byte.
fn checksum(data: &Region<'_>, notice: &Option<Region<'_>>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for region in core::iter::once(data).chain(notice.as_ref()) {
        for offset in 0..region.len() {
            let byte = region.read_u8(offset).unwrap_or(0);
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Prints every report waiting on the attackers' channels.
fn relay(uart: &mut Uart, reports: &mut [Option<Reader<'static>>; MAX_REPORTS]) {
    let mut element = [0u8; 64];
    for reader in reports.iter_mut().flatten() {
        while let ReadOutcome::Element = reader.read(&mut element) {
            let _ = writeln!(uart, "victim: report \"{}\"", until_nul(&element));
        }
    }
}

fn pause_once(pause: Option<septum_sdk::SourceEventId>) {
    match pause {
        Some(event) => raise(event),
        None => {
            let start = rdtsc();
            while rdtsc().wrapping_sub(start) < 100_000 {
                core::hint::spin_loop();
            }
        }
    }
}
