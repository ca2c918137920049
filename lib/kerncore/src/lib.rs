//! Kernel logic with no hardware access.
//!
//! The kernel binary (`kernel/`) is a thin `unsafe` arch layer around this
//! crate. Here live the types of the system spec that the composer generates
//! as `const` Rust source, the walk of the cyclic scheduling plan and the
//! routing of events. It is `no_std`, has no `unsafe`, and is unit-tested on
//! the host (and under Miri).
#![no_std]

pub mod spec;
