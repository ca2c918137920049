//! Layouts shared by the kernel, the composer and the subjects.
//!
//! Everything here is plain data with a fixed, documented byte layout: the
//! composer writes it offline, the kernel and the subjects read it at run
//! time. Nothing here touches hardware, so the crate is `no_std`, builds on
//! the host and is tested there (also under Miri).
//!
//! Address kinds and time units are newtypes so that a guest-physical address
//! is never passed where a host-physical one is expected, and ticks are never
//! mixed up with TSC cycles.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod channel;
pub mod crash;
pub mod hypercall;
pub mod info;
pub mod layout;
pub mod panic;
pub mod state;
pub mod timed;
pub mod timing;
pub mod units;

pub use units::{GuestPhysAddr, PhysAddr, SubjectId, TscCycles, VirtAddr};
