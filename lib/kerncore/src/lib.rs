//! Kernel logic with no hardware access.
//!
//! The kernel binary (`kernel/`) is a thin `unsafe` arch layer around this
//! crate. Here live the types of the system spec that the composer generates
//! as `const` Rust source ([`spec`]), the per-CPU walk of the cyclic
//! scheduling plan ([`plan`]), the system-wide table of pending events
//! ([`events`]), the barrier that keeps the CPUs of the plan in step
//! ([`sync`]), the vendor-neutral exits and the one function that decides
//! what each does ([`exits`]), the fault report line ([`fault`]), subject
//! restarts ([`lifecycle`]), the hand-over of a monitored subject's exits
//! to its monitor ([`monitor`]), device interrupt routing and the vectors
//! pending per subject ([`irq`]), message-signalled interrupts of owned
//! PCI devices ([`msi`]), which minor-frame end is a missed
//! deadline ([`deadline`]), the
//! reading of the boot loader's memory map
//! ([`mbi`]), the VT-x capability decisions ([`vmx`]), the VT-d setup and
//! fault reports ([`vtd`]) and, on the host
//! only, the emitter that writes a spec as Rust source ([`emit`]). It is
//! `no_std`, has no `unsafe`, and is unit-tested on the host (and under
//! Miri), so every decision the kernel takes is tested without hardware.
#![no_std]

#[cfg(test)]
extern crate std;

#[cfg(any(test, feature = "emit"))]
extern crate alloc;

// The golden spec test `include!`s generated source, which names this crate
// by its package name.
#[cfg(test)]
extern crate self as septum_kerncore;

pub mod deadline;
#[cfg(any(test, feature = "emit"))]
pub mod emit;
pub mod events;
pub mod exits;
pub mod fault;
pub mod ioport;
pub mod ipi;
pub mod irq;
pub mod lifecycle;
pub mod mbi;
pub mod monitor;
pub mod msi;
pub mod pcicfg;
pub mod plan;
pub mod spec;
pub mod sync;
#[cfg(test)]
mod testing;
pub mod timed;
pub mod vm;
pub mod vmx;
pub mod vtd;
