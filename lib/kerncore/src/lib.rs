//! Kernel logic with no hardware access.
//!
//! The kernel binary (`kernel/`) is a thin `unsafe` arch layer around this
//! crate. Here live the types of the system spec that the composer generates
//! as `const` Rust source ([`spec`]), the walk of the cyclic scheduling plan
//! and the routing of events ([`sched`]), the reading of the boot loader's
//! memory map ([`mbi`]) and the VT-x capability decisions ([`vmx`]). It is
//! `no_std`, has no `unsafe`, and is unit-tested on the host (and under
//! Miri), so every decision the kernel takes is tested without hardware.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod mbi;
pub mod sched;
pub mod spec;
pub mod vmx;
