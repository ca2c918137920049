//! Writing a spec as the Rust source the kernel compiles.
//!
//! The composer builds a [`SystemSpec<Owned>`](crate::spec::Owned) and
//! [`spec_source`] turns it into one `pub static SPEC:
//! septum_kerncore::spec::SystemSpec` whose every table is constant data,
//! followed by `pub static CRASH_AUDIT` (see
//! [`CrashAuditSpec`](crate::spec::CrashAuditSpec) for why it stands apart).
//! Each spec type implements [`EmitRust`] here, next to the type it writes,
//! and each impl destructures or matches its type exhaustively: a field or
//! variant added to [`crate::spec`] does not compile until it is written
//! here too. The emitter only serialises; every value it writes was decided
//! by the composer.
//!
//! The output uses fully qualified paths (`septum_kerncore::spec::*`,
//! `septum_abi::*`) so it compiles wherever the kernel `include!`s it,
//! whatever that module imports, and the compiler checks it against the
//! spec types, so a composer/kernel mismatch is a build error, not a boot
//! failure. Addresses, masks and control words are written in hex, counts,
//! numbers and ids in decimal. Small structs take one line, large ones one
//! line per field, so a diff of two specs reads like a diff of two systems.
//!
//! The emitter works on both storages: emitting the `include!`d static
//! spec gives back the text it was compiled from, which the golden test
//! below checks for a spec holding every variant of every spec enum.
//!
//! This module exists only with the `emit` feature (and in tests); the
//! kernel does not enable it.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use septum_abi::{GuestPhysAddr, PhysAddr, SubjectId, TscCycles, VirtAddr};

use crate::spec::{
    ApicId, CrashAuditSpec, ExitSet, FaultAction, GroupId, GroupSpec, GuestState, ImageRegion,
    KernelAction, KernelSpec, MAX_EVENTS, MajorFrameSpec, MinorFrameSpec, MonitorSpec, PartitionId,
    PartitionSpec, Segment, SourceEvent, Storage, SubjectSpec, SystemSpec, TimedEventSpec,
    VirtioConsoleSpec, VmxControls,
};

/// Path of the spec module in the generated source.
const SPEC: &str = "septum_kerncore::spec";

/// Columns one nesting level indents.
const INDENT: usize = 4;

/// A spec value that can be written as a Rust expression of its type.
pub trait EmitRust {
    /// Append `self` to `w` as an expression. It starts where the writer
    /// is; an expression spanning several lines indents its inner lines one
    /// level deeper than the writer's current level and closes at it.
    fn emit_rust(&self, w: &mut RustWriter);
}

/// Rust source being written, with the current indentation level.
#[derive(Debug, Default)]
pub struct RustWriter {
    out: String,
    indent: usize,
}

impl RustWriter {
    /// An empty writer at indentation 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    pub(crate) fn text(&mut self, args: fmt::Arguments<'_>) {
        // Writing to a `String` cannot fail.
        let _ = self.out.write_fmt(args);
    }

    fn pad(&mut self, indent: usize) {
        for _ in 0..indent {
            self.out.push(' ');
        }
    }

    /// `path {` then one `name: value,` line per field, then `}`.
    pub(crate) fn block(&mut self, path: fmt::Arguments<'_>, fields: &[(&str, &dyn EmitRust)]) {
        self.text(format_args!("{path} {{\n"));
        let outer = self.indent;
        self.indent = outer.saturating_add(INDENT);
        for (name, value) in fields {
            self.pad(self.indent);
            self.text(format_args!("{name}: "));
            value.emit_rust(self);
            self.out.push_str(",\n");
        }
        self.indent = outer;
        self.pad(outer);
        self.out.push('}');
    }

    /// `path { name: value, ... }` on one line.
    pub(crate) fn inline(&mut self, path: fmt::Arguments<'_>, fields: &[(&str, &dyn EmitRust)]) {
        self.text(format_args!("{path} {{"));
        let mut separator = " ";
        for (name, value) in fields {
            self.text(format_args!("{separator}{name}: "));
            value.emit_rust(self);
            separator = ", ";
        }
        self.out.push_str(" }");
    }

    /// `&[` then one `item,` line per item, then `]`.
    pub(crate) fn block_list<T: EmitRust>(&mut self, items: &[T]) {
        self.out.push_str("&[\n");
        let outer = self.indent;
        self.indent = outer.saturating_add(INDENT);
        for item in items {
            self.pad(self.indent);
            item.emit_rust(self);
            self.out.push_str(",\n");
        }
        self.indent = outer;
        self.pad(outer);
        self.out.push(']');
    }

    /// `&[a, b, ...]` on one line.
    fn inline_list<T: EmitRust>(&mut self, items: &[T]) {
        self.out.push_str("&[");
        let mut separator = "";
        for item in items {
            self.out.push_str(separator);
            item.emit_rust(self);
            separator = ", ";
        }
        self.out.push(']');
    }
}

/// `value` alone as Rust source, at indentation 0.
pub fn to_rust(value: &dyn EmitRust) -> String {
    let mut w = RustWriter::new();
    value.emit_rust(&mut w);
    w.finish()
}

/// The `spec.rs` source for a system: `pub static SPEC` and `pub static
/// CRASH_AUDIT`.
pub fn spec_source<S: Storage>(spec: &SystemSpec<S>, crash_audit: &CrashAuditSpec) -> String {
    let mut w = RustWriter::new();
    w.text(format_args!(
        "// System spec of \"{}\", generated by `septum compose`. Do not edit.\n",
        S::text(&spec.name)
    ));
    w.text(format_args!(
        "/// The composed system: every table the kernel walks.\n"
    ));
    w.text(format_args!("pub static SPEC: {SPEC}::SystemSpec = "));
    spec.emit_rust(&mut w);
    w.out.push_str(";\n");
    w.text(format_args!(
        "/// Where fail-closed paths leave their crash records (docs/crash.md).\n"
    ));
    w.text(format_args!(
        "#[allow(dead_code, reason = \"read once the kernel writes crash records\")]\n"
    ));
    w.text(format_args!(
        "pub static CRASH_AUDIT: {SPEC}::CrashAuditSpec = "
    ));
    crash_audit.emit_rust(&mut w);
    w.out.push_str(";\n");
    w.finish()
}

/// A number written in hex (addresses, masks, control words).
pub(crate) struct Hex(pub(crate) u64);

impl EmitRust for Hex {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{:#x}", self.0));
    }
}

/// A number written in decimal (counts, ids, rates).
pub(crate) struct Dec(pub(crate) u64);

impl EmitRust for Dec {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{}", self.0));
    }
}

/// A string literal.
struct Str<'a>(&'a str);

impl EmitRust for Str<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{:?}", self.0));
    }
}

/// A list with one item per line.
struct Block<'a, T>(&'a [T]);

impl<T: EmitRust> EmitRust for Block<'_, T> {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.block_list(self.0);
    }
}

/// A list on one line.
struct Inline<'a, T>(&'a [T]);

impl<T: EmitRust> EmitRust for Inline<'_, T> {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.inline_list(self.0);
    }
}

impl EmitRust for bool {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{self}"));
    }
}

impl EmitRust for PhysAddr {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("septum_abi::PhysAddr({:#x})", self.get()));
    }
}

impl EmitRust for GuestPhysAddr {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("septum_abi::GuestPhysAddr({:#x})", self.get()));
    }
}

impl EmitRust for VirtAddr {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("septum_abi::VirtAddr({:#x})", self.get()));
    }
}

impl EmitRust for SubjectId {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("septum_abi::SubjectId({})", self.0));
    }
}

impl EmitRust for TscCycles {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("septum_abi::TscCycles({})", self.get()));
    }
}

impl EmitRust for GroupId {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{SPEC}::GroupId({})", self.0));
    }
}

impl EmitRust for PartitionId {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{SPEC}::PartitionId({})", self.0));
    }
}

impl EmitRust for ApicId {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!("{SPEC}::ApicId({})", self.0));
    }
}

impl<S: Storage> EmitRust for SystemSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let SystemSpec {
            name,
            kernel,
            subjects,
            partitions,
            groups,
            major_frames,
            image_regions,
        } = self;
        w.block(
            format_args!("{SPEC}::SystemSpec"),
            &[
                ("name", &Str(S::text(name))),
                ("kernel", kernel),
                ("subjects", &Block(S::items(subjects))),
                ("partitions", &Block(S::items(partitions))),
                ("groups", &Block(S::items(groups))),
                ("major_frames", &Block(S::items(major_frames))),
                ("image_regions", &Block(S::items(image_regions))),
            ],
        );
    }
}

impl<S: Storage> EmitRust for KernelSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let KernelSpec {
            pml4,
            debug_uart_port,
            tsc_khz,
            cpu_count,
            vmxon_regions,
            apic_ids,
        } = self;
        w.block(
            format_args!("{SPEC}::KernelSpec"),
            &[
                ("pml4", pml4),
                ("debug_uart_port", &Hex((*debug_uart_port).into())),
                ("tsc_khz", &Dec(*tsc_khz)),
                ("cpu_count", &Dec((*cpu_count).into())),
                ("vmxon_regions", &Inline(S::items(vmxon_regions))),
                ("apic_ids", &Inline(S::items(apic_ids))),
            ],
        );
    }
}

impl<S: Storage> EmitRust for ImageRegion<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let ImageRegion { name, start, size } = self;
        w.inline(
            format_args!("{SPEC}::ImageRegion"),
            &[
                ("name", &Str(S::text(name))),
                ("start", start),
                ("size", &Hex(*size)),
            ],
        );
    }
}

impl EmitRust for CrashAuditSpec {
    fn emit_rust(&self, w: &mut RustWriter) {
        let CrashAuditSpec {
            start,
            size,
            slot_count,
            policy_hash,
        } = self;
        w.inline(
            format_args!("{SPEC}::CrashAuditSpec"),
            &[
                ("start", start),
                ("size", &Hex(*size)),
                ("slot_count", &Dec((*slot_count).into())),
                ("policy_hash", &Hex(*policy_hash)),
            ],
        );
    }
}

impl EmitRust for FaultAction {
    fn emit_rust(&self, w: &mut RustWriter) {
        let variant = match self {
            FaultAction::StopSystem => "StopSystem",
            FaultAction::StopSubject => "StopSubject",
            FaultAction::RestartSubject(policy) => {
                w.text(format_args!("{SPEC}::FaultAction::RestartSubject("));
                policy.emit_rust(w);
                w.out.push(')');
                return;
            }
            FaultAction::Monitor(monitor) => {
                w.text(format_args!("{SPEC}::FaultAction::Monitor("));
                monitor.emit_rust(w);
                w.text(format_args!(")"));
                return;
            }
        };
        w.text(format_args!("{SPEC}::FaultAction::{variant}"));
    }
}

impl EmitRust for MonitorSpec {
    fn emit_rust(&self, w: &mut RustWriter) {
        let MonitorSpec {
            monitor,
            event,
            state,
            exits,
            virtio_console,
        } = self;
        w.inline(
            format_args!("{SPEC}::MonitorSpec"),
            &[
                ("monitor", monitor),
                ("event", &Dec((*event).into())),
                ("state", state),
                ("exits", exits),
                ("virtio_console", &VirtioConsole(virtio_console)),
            ],
        );
    }
}

/// A monitor's virtio console: `None` or `Some(VirtioConsoleSpec { .. })`.
struct VirtioConsole<'a>(&'a Option<VirtioConsoleSpec>);

impl EmitRust for VirtioConsole<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        match self.0 {
            None => w.out.push_str("None"),
            Some(VirtioConsoleSpec { port, irq }) => {
                w.out.push_str("Some(");
                w.inline(
                    format_args!("{SPEC}::VirtioConsoleSpec"),
                    &[("port", &Hex((*port).into())), ("irq", &Dec((*irq).into()))],
                );
                w.out.push(')');
            }
        }
    }
}

impl EmitRust for ExitSet {
    fn emit_rust(&self, w: &mut RustWriter) {
        let [low, high] = self.0;
        w.text(format_args!("{SPEC}::ExitSet([{low:#x}, {high:#x}])"));
    }
}

impl<S: Storage> EmitRust for SubjectSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let SubjectSpec {
            name,
            cpu,
            vpid,
            vmcs,
            eptp,
            io_bitmap_a,
            io_bitmap_b,
            msr_bitmap,
            apic_access,
            controls,
            guest,
            source_events,
            fault_action,
            minor_frame_deadline,
            timed_event,
            ipi_events,
        } = self;
        w.block(
            format_args!("{SPEC}::SubjectSpec"),
            &[
                ("name", &Str(S::text(name))),
                ("cpu", &Dec((*cpu).into())),
                ("vpid", &Dec((*vpid).into())),
                ("vmcs", vmcs),
                ("eptp", &Hex(*eptp)),
                ("io_bitmap_a", io_bitmap_a),
                ("io_bitmap_b", io_bitmap_b),
                ("msr_bitmap", msr_bitmap),
                ("apic_access", &ApicAccess(apic_access)),
                ("controls", controls),
                ("guest", guest),
                ("source_events", &EventTable(source_events)),
                ("fault_action", fault_action),
                ("minor_frame_deadline", minor_frame_deadline),
                ("timed_event", &TimedEvent(timed_event)),
                ("ipi_events", &Hex(*ipi_events)),
            ],
        );
    }
}

/// A VM's APIC-access page: `None` or `Some(PhysAddr(..))`.
struct ApicAccess<'a>(&'a Option<PhysAddr>);

impl EmitRust for ApicAccess<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        match self.0 {
            None => w.out.push_str("None"),
            Some(page) => {
                w.out.push_str("Some(");
                page.emit_rust(w);
                w.out.push(')');
            }
        }
    }
}

/// A subject's timed event: `None` or `Some(TimedEventSpec { .. })`.
struct TimedEvent<'a>(&'a Option<TimedEventSpec>);

impl EmitRust for TimedEvent<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        match self.0 {
            None => w.out.push_str("None"),
            Some(TimedEventSpec { page, event }) => {
                w.out.push_str("Some(");
                w.inline(
                    format_args!("{SPEC}::TimedEventSpec"),
                    &[("page", page), ("event", &Dec((*event).into()))],
                );
                w.out.push(')');
            }
        }
    }
}

/// A subject's source event table: `[None; 64]` when empty, else one line
/// per defined slot, runs of unused slots sharing a line.
struct EventTable<'a>(&'a [Option<SourceEvent>; MAX_EVENTS]);

impl EmitRust for EventTable<'_> {
    fn emit_rust(&self, w: &mut RustWriter) {
        if self.0.iter().all(Option::is_none) {
            w.text(format_args!("[None; {MAX_EVENTS}]"));
            return;
        }
        w.out.push_str("[\n");
        let inner = w.indent.saturating_add(INDENT);
        let mut unused = 0usize;
        let flush = |w: &mut RustWriter, unused: &mut usize| {
            if *unused > 0 {
                w.pad(inner);
                let nones: Vec<&str> = (0..*unused).map(|_| "None,").collect();
                w.out.push_str(&nones.join(" "));
                w.out.push('\n');
                *unused = 0;
            }
        };
        for slot in self.0 {
            match slot {
                Some(event) => {
                    flush(w, &mut unused);
                    w.pad(inner);
                    w.out.push_str("Some(");
                    event.emit_rust(w);
                    w.out.push_str("),\n");
                }
                None => unused = unused.saturating_add(1),
            }
        }
        flush(w, &mut unused);
        w.pad(w.indent);
        w.out.push(']');
    }
}

impl EmitRust for VmxControls {
    fn emit_rust(&self, w: &mut RustWriter) {
        let VmxControls {
            pin,
            proc,
            proc2,
            exit,
            entry,
            exception_bitmap,
            cr0_mask,
            cr4_mask,
        } = self;
        w.inline(
            format_args!("{SPEC}::VmxControls"),
            &[
                ("pin", &Hex((*pin).into())),
                ("proc", &Hex((*proc).into())),
                ("proc2", &Hex((*proc2).into())),
                ("exit", &Hex((*exit).into())),
                ("entry", &Hex((*entry).into())),
                ("exception_bitmap", &Hex((*exception_bitmap).into())),
                ("cr0_mask", &Hex(*cr0_mask)),
                ("cr4_mask", &Hex(*cr4_mask)),
            ],
        );
    }
}

impl EmitRust for Segment {
    fn emit_rust(&self, w: &mut RustWriter) {
        let Segment {
            selector,
            base,
            limit,
            access_rights,
        } = self;
        w.inline(
            format_args!("{SPEC}::Segment"),
            &[
                ("selector", &Hex((*selector).into())),
                ("base", &Hex(*base)),
                ("limit", &Hex((*limit).into())),
                ("access_rights", &Hex((*access_rights).into())),
            ],
        );
    }
}

impl EmitRust for GuestState {
    fn emit_rust(&self, w: &mut RustWriter) {
        let GuestState {
            rip,
            rsp,
            rflags,
            cr0,
            cr3,
            cr4,
            efer,
            pat,
            rdi,
            cs,
            data,
            tr,
            ldtr,
        } = self;
        w.block(
            format_args!("{SPEC}::GuestState"),
            &[
                ("rip", rip),
                ("rsp", rsp),
                ("rflags", &Hex(*rflags)),
                ("cr0", &Hex(*cr0)),
                ("cr3", cr3),
                ("cr4", &Hex(*cr4)),
                ("efer", &Hex(*efer)),
                ("pat", &Hex(*pat)),
                ("rdi", &Hex(*rdi)),
                ("cs", cs),
                ("data", data),
                ("tr", tr),
                ("ldtr", ldtr),
            ],
        );
    }
}

impl EmitRust for SourceEvent {
    fn emit_rust(&self, w: &mut RustWriter) {
        match self {
            SourceEvent::Async {
                target,
                target_event,
            } => w.inline(
                format_args!("{SPEC}::SourceEvent::Async"),
                &[
                    ("target", target),
                    ("target_event", &Dec((*target_event).into())),
                ],
            ),
            SourceEvent::Switch {
                target,
                target_event,
            } => w.inline(
                format_args!("{SPEC}::SourceEvent::Switch"),
                &[
                    ("target", target),
                    ("target_event", &Dec((*target_event).into())),
                ],
            ),
            SourceEvent::Reset {
                target,
                target_event,
            } => w.inline(
                format_args!("{SPEC}::SourceEvent::Reset"),
                &[
                    ("target", target),
                    ("target_event", &Dec((*target_event).into())),
                ],
            ),
            SourceEvent::SelfEvent { target_event } => w.inline(
                format_args!("{SPEC}::SourceEvent::SelfEvent"),
                &[("target_event", &Dec((*target_event).into()))],
            ),
            SourceEvent::Kernel(action) => {
                w.text(format_args!("{SPEC}::SourceEvent::Kernel("));
                action.emit_rust(w);
                w.out.push(')');
            }
        }
    }
}

impl EmitRust for KernelAction {
    fn emit_rust(&self, w: &mut RustWriter) {
        w.text(format_args!(
            "{SPEC}::KernelAction::{}",
            self.variant_name()
        ));
    }
}

impl<S: Storage> EmitRust for PartitionSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let PartitionSpec { name, cpu, groups } = self;
        w.inline(
            format_args!("{SPEC}::PartitionSpec"),
            &[
                ("name", &Str(S::text(name))),
                ("cpu", &Dec((*cpu).into())),
                ("groups", &Inline(S::items(groups))),
            ],
        );
    }
}

impl<S: Storage> EmitRust for GroupSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let GroupSpec { subjects, initial } = self;
        w.inline(
            format_args!("{SPEC}::GroupSpec"),
            &[
                ("subjects", &Inline(S::items(subjects))),
                ("initial", initial),
            ],
        );
    }
}

impl<S: Storage> EmitRust for MajorFrameSpec<S> {
    fn emit_rust(&self, w: &mut RustWriter) {
        let MajorFrameSpec { length, cpus } = self;
        let cpus: Vec<Inline<'_, MinorFrameSpec>> =
            S::items(cpus).iter().map(|c| Inline(S::items(c))).collect();
        w.block(
            format_args!("{SPEC}::MajorFrameSpec"),
            &[("length", length), ("cpus", &Block(&cpus))],
        );
    }
}

impl EmitRust for MinorFrameSpec {
    fn emit_rust(&self, w: &mut RustWriter) {
        let MinorFrameSpec {
            partition,
            end,
            pad,
            lead,
        } = self;
        w.inline(
            format_args!("{SPEC}::MinorFrameSpec"),
            &[
                ("partition", partition),
                ("end", end),
                ("pad", pad),
                ("lead", lead),
            ],
        );
    }
}

#[cfg(test)]
mod tests;
mod vtd;
pub use vtd::vtd_source;
