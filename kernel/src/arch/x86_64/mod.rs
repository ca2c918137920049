//! The x86-64 / VT-x arch layer: everything that touches hardware.
//!
//! This is the only place with `unsafe`; each block says why it is sound.
//! The layer executes what kerncore decides: it never chooses a subject,
//! routes an event or interprets the policy itself.
//!
//! - `boot`: 32-bit entry, long mode, boot-time memory (GDT, stacks), the
//!   AP start-up code.
//! - `apic`: the local APIC in x2APIC mode, for INIT-SIPI-SIPI only.
//! - `smp`: the plan's CPUs, starting the APs, the plan barrier.
//! - `descriptors`: TSS/IDT, root-mode exception reporting.
//! - `cpu`: single instructions (ports, MSRs, CRs, TSC, reset, poweroff).
//! - `crash`: volatile access to the crash-audit region, the state a record
//!   holds.
//! - `serial`: the debug UART.
//! - `pit`: TSC-rate measurement against the PIT.
//! - `vmx`: VMX instructions, field encodings, bring-up.
//! - `vmcs`: one-time VMCS initialisation per subject.
//! - `percpu`: the per-CPU block (exit and IST stacks, TSS/IDT, scheduler,
//!   loaded subject), reached from the exit frame.
//! - `exit`: the VM-exit path and the execution of scheduler decisions.
//! - `no_panic`: the link-time proof that no panic path survives.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod crash;
pub mod descriptors;
pub mod exit;
#[cfg(not(debug_assertions))]
pub mod no_panic;
pub mod percpu;
pub mod pit;
pub mod serial;
pub mod smp;
pub mod vm;
pub mod vmcs;
pub mod vmx;
