//! Measuring the TSC rate against the PIT, as a boot-time sanity check of
//! the hardware description's processor speed.
//!
//! PIT channel 2 (gate and output through port 0x61) counts down from a
//! known value at 1.193182 MHz in mode 0; OUT2 rises at zero. The TSC
//! difference over that interval gives the TSC rate. The kernel prints the
//! measured value next to the spec's; it decides nothing with it.

use super::cpu::{inb, outb, pause, rdtsc};

const PIT_HZ: u64 = 1_193_182;
/// About 10 ms.
const COUNT: u16 = 11_932;
const MAX_POLLS: u32 = 10_000_000;

/// The TSC rate in kHz, or `None` if OUT2 never rose.
pub fn measure_tsc_khz() -> Option<u64> {
    // Safety: port 0x61 (system control port B) and the PIT's channel 2 and
    // mode ports belong to the kernel; this runs at boot, before any
    // subject, and leaves port 0x61 as it found it.
    let control = unsafe { inb(0x61) };
    let [low, high] = COUNT.to_le_bytes();
    // Safety: as above.
    unsafe {
        // Gate 2 on, speaker off.
        outb(0x61, (control & !0x02) | 0x01);
        // Channel 2, lobyte/hibyte, mode 0, binary.
        outb(0x43, 0b1011_0000);
        outb(0x42, low);
        outb(0x42, high);
    }
    let start = rdtsc();
    let mut risen = false;
    for _ in 0..MAX_POLLS {
        // Safety: as above.
        if unsafe { inb(0x61) } & 0x20 != 0 {
            risen = true;
            break;
        }
        pause();
    }
    let end = rdtsc();
    // Safety: as above.
    unsafe { outb(0x61, control) };
    if !risen {
        return None;
    }
    let cycles = end.get().checked_sub(start.get())?;
    cycles
        .checked_mul(PIT_HZ)?
        .checked_div(u64::from(COUNT))?
        .checked_div(1000)
}
