//! Hardware side of timed events (`septum_kerncore::timed`): the deadline
//! word of a subject's timed-event page as an `AtomicU64`, the check point
//! called on every VM exit and every turn of the idle loop, and the
//! VMX-preemption timer clamp while a subject with a timed event runs.
//!
//! A timed-event page is the 4 KiB region the composer names in the
//! subject's `timed_event` (layout: `septum_abi::timed`). The composer
//! identity-maps it read-write, no-execute in the kernel's tables. Its
//! address comes from the spec only. The owner may write it at any time:
//! the kernel only compares the word with the TSC and replaces it by
//! `DISARMED` with a compare-exchange, so any value is harmless.
//!
//! Without a timed event in the spec ([`timed::present`], a constant) every
//! function here returns at once: the exit path costs nothing more. With
//! some, a check point walks only the subjects that have one
//! ([`TIMED`], a constant table), not every subject of the system.

use core::sync::atomic::AtomicU64;

use septum_abi::timed::DEADLINE_OFFSET;
use septum_abi::{PhysAddr, TscCycles};
use septum_kerncore::timed;
use septum_kerncore::timed::DISARMED;

use super::cpu::rdtsc;
use super::exit::EVENTS;
use super::percpu::CpuCore;
use crate::system::SPEC;

/// Whether the spec has any timed event.
const PRESENT: bool = timed::present(&SPEC);

/// The subjects with a timed event, built at compile time from the spec.
static TIMED: [Option<timed::TimedSubject>; timed::count(&SPEC)] = timed::list(&SPEC);

/// The deadline word of the timed-event page at `page` (an address from
/// the spec's `timed_event`).
fn deadline_word(page: PhysAddr) -> Option<&'static AtomicU64> {
    let address = page.get().checked_add(DEADLINE_OFFSET as u64)?;
    let pointer = address as *const AtomicU64;
    if !pointer.is_aligned() {
        return None;
    }
    // Safety: `page` is a timed-event page from the spec, a page-aligned
    // 4 KiB region identity-mapped read-write for the kernel for the whole
    // run (module doc), holding no Rust object; the word is 8-byte aligned
    // (checked) and inside it. The owning subject writes it concurrently,
    // which is why it is only accessed atomically; any bit pattern is a
    // valid `u64`.
    Some(unsafe { &*pointer })
}

/// A check point of this CPU: trigger every due timed event of its
/// subjects (mark the event pending, disarm the deadline).
#[inline(always)]
pub fn check_point(cpu: &CpuCore) {
    if !PRESENT {
        return;
    }
    timed::check(&TIMED, cpu.number.get(), rdtsc(), &EVENTS, deadline_word);
}

/// The time the VMX-preemption timer is armed for, given the frame's
/// `deadline`: earlier if the loaded subject's timed event is armed before
/// it. Never later than `deadline`.
#[inline(always)]
pub fn clamp(cpu: &CpuCore, deadline: TscCycles) -> TscCycles {
    if !PRESENT {
        return deadline;
    }
    let armed = cpu
        .loaded
        .and_then(|vmcs| timed::of(&SPEC, vmcs.id()))
        .and_then(|spec| deadline_word(spec.page))
        .map_or(DISARMED, |word| {
            word.load(core::sync::atomic::Ordering::Acquire)
        });
    timed::timer_deadline(deadline, armed)
}
