//! Kernel logic with no hardware access.
//!
//! The kernel binary (`kernel/`) is a thin `unsafe` arch layer around this
//! crate. Here live the types of the system spec that the composer generates
//! as `const` Rust source ([`spec`]), the per-CPU walk of the cyclic
//! scheduling plan ([`plan`]), the system-wide table of pending events
//! ([`events`]), the vendor-neutral exits and the one function that decides
//! what each does ([`exits`]), the reading of the boot loader's memory map
//! ([`mbi`]) and the VT-x capability decisions ([`vmx`]). It is
//! `no_std`, has no `unsafe`, and is unit-tested on the host (and under
//! Miri), so every decision the kernel takes is tested without hardware.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod events;
pub mod exits;
pub mod mbi;
pub mod plan;
pub mod spec;
#[cfg(test)]
mod testing;
pub mod vmx;
