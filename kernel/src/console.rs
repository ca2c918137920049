//! Diagnostic output on the debug UART named by the spec.
//!
//! `kprintln!` formats with `core::fmt`, no heap. At boot a line goes
//! straight to the UART (synchronous: a refusal to start must be on the
//! wire before the machine stops). From [`start_buffering`] on (the plan
//! is about to run) a line is appended to a ring buffer instead, and the
//! UART is fed from it a bounded number of bytes at a time ([`pump`]: one
//! look at the line status register, at most one FIFO's worth of bytes),
//! at points whose cost is nobody's time: the frame transition before the
//! padded entry (docs/kernel.md, "Constant-time frame transitions") and
//! the idle loop. Writing a fault report synchronously took about 120000
//! TSC ticks at 115200 baud in Bochs and ran over the next partition's
//! frames: a neighbour's fault was visible in the observer's resume time.
//! Every path that stops the machine ([`drain`]) sends what is left first.
//!
//! A full ring never blocks: a line that does not fit is dropped whole, its
//! bytes counted, and the next line that fits is preceded by
//! `septum: [<n> bytes dropped]`. Lines stay whole: a line is appended (or
//! written, at boot) under a spin lock, so lines of several CPUs never
//! interleave, and the ring is sent in order. The lock is bounded: a CPU
//! that cannot take it within [`LOCK_SPINS`] tries writes its line straight
//! to the UART (a root-mode exception on the CPU that holds it must still
//! be reported; a mangled line is better than a silent hang). [`pump`] only
//! tries the lock once and otherwise does nothing, so its cost is bounded
//! too. Each line is one diagnostic of the contract in docs/kernel.md;
//! tests match on them.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::arch::x86_64::serial::{FIFO_BYTES, Uart};

fn uart() -> Uart {
    Uart::debug_console()
}

/// Program the UART (115200 8N1).
pub fn init() {
    uart().init();
}

/// Held while a CPU appends or writes a line, or moves bytes from the ring
/// to the UART. Every field of [`RING`] is only touched under it, so its
/// atomics are relaxed; the lock's acquire and release order them.
static LOCK: AtomicBool = AtomicBool::new(false);

/// How often a CPU tries the lock before printing without it.
const LOCK_SPINS: u32 = 1 << 24;

/// Whether lines go to the ring (run time) or straight to the UART (boot,
/// and after [`drain`]).
static BUFFERED: AtomicBool = AtomicBool::new(false);

/// Ring size in bytes, a power of two: about 80 fault reports.
const RING_BYTES: usize = 8192;

/// The run-time output buffer: bytes `tail .. head` (positions count every
/// byte ever appended, wrapping; the byte of position `p` is at
/// `p % RING_BYTES`) wait for the UART.
struct Ring {
    bytes: [AtomicU8; RING_BYTES],
    /// Position after the last byte appended.
    head: AtomicUsize,
    /// Position of the next byte to send.
    tail: AtomicUsize,
    /// Bytes of lines dropped because the ring was full, not yet reported.
    dropped: AtomicU64,
}

static RING: Ring = Ring {
    bytes: [const { AtomicU8::new(0) }; RING_BYTES],
    head: AtomicUsize::new(0),
    tail: AtomicUsize::new(0),
    dropped: AtomicU64::new(0),
};

/// Holds [`LOCK`] (if it was taken) until dropped.
struct Guard {
    locked: bool,
}

impl Guard {
    /// Try the lock up to [`LOCK_SPINS`] times.
    fn bounded() -> Self {
        for _ in 0..LOCK_SPINS {
            if let Some(guard) = Self::once() {
                return guard;
            }
            core::hint::spin_loop();
        }
        Self { locked: false }
    }

    /// Try the lock once.
    fn once() -> Option<Self> {
        LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Self { locked: true })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.locked {
            LOCK.store(false, Ordering::Release);
        }
    }
}

/// Appends one line at the ring's head, or measures it if it does not fit.
struct LineWriter {
    /// Where the next byte goes.
    position: usize,
    /// Free bytes when the line began.
    room: usize,
    /// Bytes of the line so far (also those that did not fit).
    length: usize,
}

impl LineWriter {
    /// A line starting at the ring's head (under the lock).
    fn at_head() -> Self {
        let head = RING.head.load(Ordering::Relaxed);
        let used = head.wrapping_sub(RING.tail.load(Ordering::Relaxed));
        Self {
            position: head,
            room: RING_BYTES.saturating_sub(used),
            length: 0,
        }
    }

    fn fits(&self) -> bool {
        self.length <= self.room
    }

    /// Make the line visible to [`pump`] if it fit whole.
    fn commit(self) -> Result<(), usize> {
        if self.fits() {
            RING.head.store(self.position, Ordering::Relaxed);
            Ok(())
        } else {
            Err(self.length)
        }
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            self.length = self.length.saturating_add(1);
            if self.fits() {
                if let Some(slot) = RING.bytes.get(self.position % RING_BYTES) {
                    slot.store(byte, Ordering::Relaxed);
                }
                self.position = self.position.wrapping_add(1);
            }
        }
        Ok(())
    }
}

/// Append `args` and a newline to the ring (under the lock), after the
/// dropped-bytes marker if lines were dropped; drop the line whole (and
/// count it) if it does not fit.
fn append(args: fmt::Arguments<'_>) {
    let dropped = RING.dropped.load(Ordering::Relaxed);
    if dropped != 0 {
        let mut marker = LineWriter::at_head();
        let _ = writeln!(marker, "septum: [{dropped} bytes dropped]");
        if marker.commit().is_ok() {
            RING.dropped.store(0, Ordering::Relaxed);
        }
    }
    let mut line = LineWriter::at_head();
    // A formatting error would only cut the line.
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    if let Err(length) = line.commit() {
        let total = RING.dropped.load(Ordering::Relaxed);
        RING.dropped
            .store(total.saturating_add(length as u64), Ordering::Relaxed);
    }
}

/// Write one line: to the ring at run time, to the UART at boot. `emit`
/// does the work out of line; the lock is released last, here, after a
/// test of whether it was taken that the optimiser must keep
/// (`black_box`): that test is the last instruction before the return
/// that sets the flags, so the caller sees the same RFLAGS whatever the
/// formatting did (the `rootfault` test prints the probe's RFLAGS).
#[inline(never)]
pub fn print_line(args: fmt::Arguments<'_>) {
    let guard = Guard::bounded();
    let locked = guard.locked;
    core::mem::forget(guard);
    emit(locked, args);
    if core::hint::black_box(locked) {
        LOCK.store(false, Ordering::Release);
    }
}

/// [`print_line`] with the lock held (`locked`) or not.
#[inline(never)]
fn emit(locked: bool, args: fmt::Arguments<'_>) {
    if locked && BUFFERED.load(Ordering::Relaxed) {
        append(args);
        return;
    }
    let mut uart = uart();
    // The UART writer never fails; a formatting error would only cut the line.
    let _ = uart.write_fmt(args);
    let _ = uart.write_str("\n");
}

/// From now on lines go to the ring (called once the plan is about to
/// run: boot output stays synchronous).
pub fn start_buffering() {
    let _guard = Guard::bounded();
    BUFFERED.store(true, Ordering::Relaxed);
}

/// Whether the ring holds bytes not yet sent: two loads, for the frame
/// transition to skip [`pump`] (and the time check before it) when there
/// is nothing to move. A byte appended just after the check waits for the
/// next pump.
#[inline(always)]
pub fn waiting() -> bool {
    RING.head.load(Ordering::Relaxed) != RING.tail.load(Ordering::Relaxed)
}

/// Move at most one FIFO's worth of bytes from the ring to the UART, if
/// its transmitter is empty; bounded: one lock attempt, one status read,
/// at most [`FIFO_BYTES`] port writes. Does nothing if another CPU holds
/// the lock.
#[inline(never)]
pub fn pump() {
    pump_at_most(FIFO_BYTES);
}

/// [`pump`], moving at most `bytes` bytes (the frame transition's pump
/// takes only what fits in what is left of its pad).
#[inline(never)]
pub fn pump_at_most(bytes: usize) {
    let Some(_guard) = Guard::once() else {
        return;
    };
    let tail = RING.tail.load(Ordering::Relaxed);
    let waiting = RING.head.load(Ordering::Relaxed).wrapping_sub(tail);
    if waiting == 0 {
        return;
    }
    let uart = uart();
    if !uart.transmitter_empty() {
        return;
    }
    let count = waiting.min(FIFO_BYTES).min(bytes);
    for offset in 0..count {
        let position = tail.wrapping_add(offset);
        if let Some(slot) = RING.bytes.get(position % RING_BYTES) {
            uart.put(slot.load(Ordering::Relaxed));
        }
    }
    RING.tail.store(tail.wrapping_add(count), Ordering::Relaxed);
}

/// Most bytes [`drain`] sends: the ring twice over, in case other CPUs
/// keep printing while this one stops the machine.
const DRAIN_LIMIT: usize = 2 * RING_BYTES;

/// Send everything still in the ring (and the dropped-bytes marker, if
/// any), switch to synchronous output and wait until every byte has left
/// the UART. For the paths that stop or reset the machine: nothing that
/// was printed is lost. The lock is taken per FIFO's worth of bytes, so
/// another CPU that reports its own failure meanwhile (each CPU writes its
/// crash record) gets its lines into the ring and out before the machine
/// stops. A CPU that cannot take the lock within [`LOCK_SPINS`] tries
/// sends without it (the holder may be the code this CPU interrupted).
pub fn drain() {
    let mut uart = uart();
    let mut sent = 0usize;
    loop {
        let _guard = Guard::bounded();
        let tail = RING.tail.load(Ordering::Relaxed);
        let waiting = RING.head.load(Ordering::Relaxed).wrapping_sub(tail);
        if waiting == 0 || sent >= DRAIN_LIMIT {
            let dropped = RING.dropped.swap(0, Ordering::Relaxed);
            if dropped != 0 {
                let _ = writeln!(uart, "septum: [{dropped} bytes dropped]");
            }
            BUFFERED.store(false, Ordering::Relaxed);
            break;
        }
        let count = waiting.min(FIFO_BYTES);
        for offset in 0..count {
            if let Some(slot) = RING.bytes.get(tail.wrapping_add(offset) % RING_BYTES) {
                uart.write_byte(slot.load(Ordering::Relaxed));
            }
        }
        RING.tail.store(tail.wrapping_add(count), Ordering::Relaxed);
        sent = sent.saturating_add(count);
    }
    uart.drain();
}

/// Print a line on the debug console.
#[macro_export]
macro_rules! kprintln {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}
