//! The x86-64 / VT-x arch layer: everything that touches hardware.
//!
//! This is the only place with `unsafe`; each block says why it is sound.
//! The layer executes what kerncore decides: it never chooses a subject,
//! routes an event or interprets the policy itself.
//!
//! - `boot`: 32-bit entry, long mode, boot-time memory (GDT, stacks), the
//!   AP start-up code.
//! - `apic`: the local APIC in x2APIC mode, for INIT-SIPI-SIPI.
//! - `ioapic`: the I/O APIC's redirection entries (device IRQ routes).
//! - `msi`: the MSI/MSI-X capabilities of owned PCI devices, programmed
//!   at boot from the spec.
//! - `interrupts`: device interrupts on the exit path (acknowledge, EOI,
//!   injection before entry).
//! - `smp`: the plan's CPUs, starting the APs, the plan barrier.
//! - `descriptors`: TSS/IDT, root-mode exception reporting.
//! - `nmi`: root-mode NMIs, counted and returned from.
//! - `cpu`: single instructions (ports, MSRs, CRs, TSC, reset, poweroff).
//! - `crash`: volatile access to the crash-audit region, the state a record
//!   holds.
//! - `serial`: the debug UART.
//! - `console_rx`: the debug UART's receive side, for the console input
//!   owner (a VM).
//! - `pit`: TSC-rate measurement against the PIT.
//! - `vmx`: VMX instructions, field encodings, bring-up.
//! - `vmcs`: one-time VMCS initialisation per subject.
//! - `percpu`: the per-CPU block (exit and IST stacks, TSS/IDT, scheduler,
//!   loaded subject), reached from the exit frame.
//! - `restart`: re-initialising a subject before it restarts.
//! - `monitor`: volatile access to monitored subjects' state pages, and
//!   the move of their registers to and from them.
//! - `exit`: the VM-exit path and the execution of scheduler decisions.
//! - `no_panic`: the link-time proof that no panic path survives.
//! - `vtd`: the VT-d remapping units (enable at boot, fault records);
//!   `vtd_probe` (feature `vtd-probe`): the QEMU test that drives a DMA
//!   device against them.
//! - `transition_probe` (feature `count-transition`): where a minor-frame
//!   transition's ticks go, printed at poweroff.

pub mod apic;
pub mod boot;
pub mod console_rx;
pub mod cpu;
pub mod crash;
pub mod deferred;
pub mod descriptors;
pub mod exit;
pub mod interrupts;
pub mod ioapic;
pub mod ipi;
pub mod late_entry;
pub mod monitor;
pub mod msi;
pub mod nmi;
#[cfg(not(debug_assertions))]
pub mod no_panic;
pub mod pcicfg;
pub mod percpu;
pub mod pit;
pub mod regs;
pub mod restart;
pub mod serial;
pub mod smp;
pub mod timed;
#[cfg(feature = "count-transition")]
pub mod transition_probe;
pub mod vm;
pub mod vm_apic;
pub mod vmcs;
pub mod vmx;
pub mod vtd;
#[cfg(feature = "vtd-probe")]
pub mod vtd_probe;
