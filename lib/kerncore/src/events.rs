//! The pending-event table: one 64-bit word of pending target events per
//! subject, for the whole system.
//!
//! A source event marks a target event pending on its receiver, and the
//! receiver may run on another CPU than the sender. So the table is not
//! owned by any CPU's [`crate::plan::Scheduler`]: it is one shared table
//! with atomic operations only. Setting is `fetch_or` (several CPUs may set
//! bits of the same word at once, none is lost); taking is `swap(0)` (the
//! receiver's CPU consumes every bit set before it, and a bit set after
//! stays for the next take). Nothing else writes a word, so no lock exists
//! and no CPU ever waits for another here.
//!
//! Ordering: a sender's `set` is a release and a receiver's `take` an
//! acquire, so whatever the sender's subject wrote (a channel element)
//! before its hypercall is visible to the receiver's CPU once it sees the
//! bit. On x86-64 both are one locked instruction either way.

use core::sync::atomic::{AtomicU64, Ordering};

use septum_abi::SubjectId;
use septum_abi::hypercall::{EVENT_MASK, MAX_EVENTS};

use crate::plan::MAX_SUBJECTS;

/// Pending target events of every subject (bit `n`: target event `n`).
#[derive(Debug)]
pub struct PendingTable {
    words: [AtomicU64; MAX_SUBJECTS],
}

impl Default for PendingTable {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingTable {
    /// A table with nothing pending.
    pub const fn new() -> Self {
        Self {
            words: [const { AtomicU64::new(0) }; MAX_SUBJECTS],
        }
    }

    /// Mark `target_event` pending on `subject`. An event number of 64 or
    /// more, or an unknown subject, changes nothing (the composer never
    /// generates either; the check keeps a stale spec harmless).
    #[inline]
    pub fn set(&self, subject: SubjectId, target_event: u8) {
        if usize::from(target_event) >= MAX_EVENTS {
            return;
        }
        let bit = 1u64 << (u64::from(target_event) & EVENT_MASK);
        if let Some(word) = self.words.get(subject.index()) {
            word.fetch_or(bit, Ordering::Release);
        }
    }

    /// Take (and clear) every pending event of `subject`: called only when
    /// they are delivered to it, as the result of its `sleep` hypercall
    /// (`plan`, `exits`). 0 for an unknown subject.
    #[inline]
    pub fn take(&self, subject: SubjectId) -> u64 {
        self.words
            .get(subject.index())
            .map_or(0, |word| word.swap(0, Ordering::AcqRel))
    }

    /// The pending events of `subject`, left as they are (0 for an unknown
    /// subject).
    #[inline]
    pub fn peek(&self, subject: SubjectId) -> u64 {
        self.words
            .get(subject.index())
            .map_or(0, |word| word.load(Ordering::Acquire))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const A: SubjectId = SubjectId(0);
    const B: SubjectId = SubjectId(1);

    #[test]
    fn set_take_and_peek() {
        let table = PendingTable::new();
        table.set(A, 0);
        table.set(A, 63);
        table.set(A, 63);
        table.set(B, 5);
        assert_eq!(table.peek(A), 1 | 1 << 63);
        assert_eq!(table.take(A), 1 | 1 << 63);
        assert_eq!(table.take(A), 0);
        assert_eq!(table.peek(B), 1 << 5);
    }

    #[test]
    fn out_of_range_changes_nothing() {
        let table = PendingTable::new();
        table.set(A, 64);
        table.set(A, u8::MAX);
        let last = u16::try_from(MAX_SUBJECTS - 1).unwrap();
        let beyond = SubjectId(last + 1);
        table.set(beyond, 1);
        table.set(SubjectId(last), 1);
        assert_eq!(table.take(beyond), 0);
        assert_eq!(table.peek(beyond), 0);
        assert_eq!(table.peek(A), 0);
        assert_eq!(table.take(SubjectId(last)), 1 << 1);
    }

    /// Several CPUs set bits of one word while its owner takes: every bit
    /// set ends up in exactly one take, none is lost or taken twice.
    #[test]
    fn concurrent_sets_are_never_lost() {
        let table = PendingTable::new();
        let rounds: u8 = if cfg!(miri) { 3 } else { 200 };
        let mut taken = [0u32; 64];
        std::thread::scope(|scope| {
            for sender in 0..4u8 {
                let table = &table;
                scope.spawn(move || {
                    for round in 0..rounds {
                        // Each sender has its own 16 event numbers.
                        table.set(A, sender * 16 + round % 16);
                    }
                });
            }
            for _ in 0..rounds {
                let word = table.take(A);
                for (bit, count) in taken.iter_mut().enumerate() {
                    *count += u32::from(word & (1 << bit) != 0);
                }
                std::hint::spin_loop();
            }
        });
        let rest = table.take(A);
        let per_sender = rounds.min(16);
        for (bit, count) in (0u8..).zip(taken.iter()) {
            let total = count + u32::from(rest & (1 << bit) != 0);
            if bit % 16 < per_sender {
                // Set at least once: taken at least once, and at most as
                // often as it was set (a take sees it again only after
                // another set).
                assert!(total >= 1, "event {bit} lost");
                assert!(total <= u32::from(rounds), "event {bit} taken too often");
            } else {
                assert_eq!(total, 0, "event {bit} was never set");
            }
        }
        assert_eq!(table.peek(A), 0);
    }
}
