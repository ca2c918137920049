//! Synchronisation between the CPUs of the plan: the barrier every plan CPU
//! reaches before the plan starts and before every major frame.
//!
//! Why a barrier at all: each CPU walks its own minor frames with absolute
//! deadlines from a common major-frame start, so the CPUs stay in step as
//! long as each one keeps up; the barrier makes this a guarantee instead of
//! an assumption. No CPU begins major frame `k + 1` before every plan CPU
//! has finished major frame `k` (a CPU delayed in root mode, e.g. by a long
//! fault report, holds the others at the boundary instead of letting them
//! run ahead into frames whose partners have not started).
//!
//! [`Barrier`] is a sense-reversing (centralised) barrier on two atomic
//! words in memory shared by all CPUs: a count of arrivals and a
//! generation, whose change is the "sense" the waiters spin on. It needs
//! no per-CPU state and no reset: the last CPU to arrive sets the count
//! back to zero before it publishes the next generation, so a CPU that
//! leaves and at once arrives at the next barrier counts for the next one.
//!
//! The last CPU to arrive can also publish one value to all the others
//! ([`Barrier::wait_with`]): the kernel uses it for the TSC at which the
//! plan starts, so every CPU computes its deadlines from the same start.
//!
//! Ordering: an arrival is an acquire-release read-modify-write, the
//! release of the generation is a release store, and the waiters' reads of
//! it are acquires; so everything each CPU did before it arrived
//! happens-before everything every CPU does after it leaves. The module
//! has no `unsafe`; its tests run threads on the host and under Miri.
//!
//! # Plan switches
//!
//! A subject with a `next_plan` kernel event asks for the next major frame
//! of the spec's list ([`PlanSwitch::request`]); nothing changes at once.
//! At the end of the major frame, the last CPU to arrive at the barrier
//! decides ([`PlanSwitch::decide`]: the requested plan, or the current one
//! again) and publishes the decision with [`Barrier::wait_with`], so every
//! plan CPU leaves the barrier with the same plan and begins it at the same
//! boundary. A request cannot be seen by some CPUs and missed by others:
//! only the last arrival reads it, and the requester's CPU arrives after
//! its subject made the request (a subject runs only inside its frame).
//! Several requests within one major frame are one switch.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A reusable barrier for a fixed number of participants (given at each
/// wait; every participant must pass the same number).
#[derive(Debug)]
pub struct Barrier {
    /// Participants that arrived in the current generation.
    arrived: AtomicU32,
    /// Bumped by the last arrival: the waiters of a generation leave when
    /// it changes.
    generation: AtomicU32,
    /// The value the last arrival of the latest generation published.
    value: AtomicU64,
}

impl Default for Barrier {
    fn default() -> Self {
        Self::new()
    }
}

impl Barrier {
    /// A barrier nobody waits at.
    pub const fn new() -> Self {
        Self {
            arrived: AtomicU32::new(0),
            generation: AtomicU32::new(0),
            value: AtomicU64::new(0),
        }
    }

    /// Wait until `participants` callers (this one included) have arrived;
    /// `spin` runs while waiting (a `pause` in the kernel). Returns whether
    /// this caller arrived last. With `participants` of 0 or 1 it returns at
    /// once.
    pub fn wait(&self, participants: u32, spin: impl FnMut()) -> bool {
        let (last, _) = self.wait_with(participants, || 0, spin);
        last
    }

    /// As [`Barrier::wait`], and the last caller to arrive runs `choose`
    /// and publishes its result, which every caller returns.
    pub fn wait_with(
        &self,
        participants: u32,
        choose: impl FnOnce() -> u64,
        mut spin: impl FnMut(),
    ) -> (bool, u64) {
        // Read before arriving: the generation cannot change until this
        // caller has arrived, so this is the one it waits in.
        let generation = self.generation.load(Ordering::Acquire);
        let arrived = self
            .arrived
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if arrived >= participants {
            self.value.store(choose(), Ordering::Relaxed);
            self.arrived.store(0, Ordering::Relaxed);
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            return (true, self.value.load(Ordering::Relaxed));
        }
        while self.generation.load(Ordering::Acquire) == generation {
            spin();
        }
        (false, self.value.load(Ordering::Relaxed))
    }
}

/// A pending request to move on to the next plan (major frame), shared by
/// every CPU (see the module doc).
#[derive(Debug)]
pub struct PlanSwitch {
    requested: AtomicBool,
}

impl Default for PlanSwitch {
    fn default() -> Self {
        Self::new()
    }
}

impl PlanSwitch {
    /// Nothing requested.
    pub const fn new() -> Self {
        Self {
            requested: AtomicBool::new(false),
        }
    }

    /// Ask for the next plan at the end of the current major frame (any
    /// CPU, any time; idempotent until [`PlanSwitch::decide`] takes it).
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }

    /// Whether a request waits for the next major-frame boundary.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }

    /// At a major-frame boundary, called once (by the barrier's last
    /// arrival): the plan the next major frame runs, given the plan that
    /// ends (`current`) and the number of plans. Takes the request: the
    /// plan after `current` (after the last, the first) if there was one,
    /// else `current` again.
    pub fn decide(&self, current: usize, plan_count: usize) -> usize {
        if self.requested.swap(false, Ordering::AcqRel) {
            match current.checked_add(1) {
                Some(next) if next < plan_count => next,
                _ => 0,
            }
        } else {
            current
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::thread;
    use std::vec::Vec;

    #[test]
    fn one_participant_passes_at_once() {
        let barrier = Barrier::new();
        assert!(barrier.wait(1, || panic!("must not spin")));
        assert_eq!(barrier.wait_with(1, || 7, || {}), (true, 7));
        assert!(barrier.wait(0, || panic!("must not spin")));
    }

    /// No thread leaves round `r` before every thread has entered it, over
    /// many rounds of the same barrier (reuse without reset), and exactly
    /// one thread per round is the last.
    #[test]
    fn nobody_leaves_a_round_early() {
        const THREADS: usize = 4;
        let rounds: usize = if cfg!(miri) { 5 } else { 500 };
        let barrier = Barrier::new();
        let entered = AtomicUsize::new(0);
        let lasts = AtomicUsize::new(0);
        thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for round in 0..rounds {
                        entered.fetch_add(1, Ordering::SeqCst);
                        if barrier.wait(THREADS as u32, thread::yield_now) {
                            lasts.fetch_add(1, Ordering::SeqCst);
                        }
                        // Everyone of this round has entered.
                        assert!(entered.load(Ordering::SeqCst) >= (round + 1) * THREADS);
                    }
                });
            }
        });
        assert_eq!(entered.load(Ordering::SeqCst), rounds * THREADS);
        assert_eq!(lasts.load(Ordering::SeqCst), rounds);
    }

    /// Every caller of a round gets the value the last arrival chose.
    #[test]
    fn the_last_arrival_publishes_one_value() {
        const THREADS: usize = 3;
        let rounds: u64 = if cfg!(miri) { 3 } else { 200 };
        let barrier = Barrier::new();
        let results: Vec<Vec<(bool, u64)>> = thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        (0..rounds)
                            .map(|round| {
                                barrier.wait_with(
                                    THREADS as u32,
                                    || 1000 + round,
                                    thread::yield_now,
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for round in 0..rounds as usize {
            let lasts = results.iter().filter(|r| r[round].0).count();
            assert_eq!(lasts, 1);
            for thread in &results {
                assert_eq!(thread[round].1, 1000 + round as u64);
            }
        }
    }
}
