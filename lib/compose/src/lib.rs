//! The Septum composer: from a validated policy and the subjects' ELF files
//! to every table the kernel needs, placed in physical memory, plus the
//! kernel's system spec as Rust source, a report, and the packed boot image.
//!
//! The pipeline, one module per step:
//!
//! - [`from_policy`]: the policy model (already validated) and the ELF files
//!   become a [`input::SystemInput`], the composer's own resolved view;
//! - [`pipeline`]: the composition, step by step, producing a
//!   [`system::Composition`] (the composed system's types):
//!   [`placement`] of regions in physical memory ([`alloc`]), the
//!   [`crash_audit`] region kept out of the loaded ones; per subject
//!   ([`subjects`]) its page tables and EPT ([`paging`]), I/O and MSR
//!   bitmaps ([`bitmaps`]), info page ([`info`]), resolved [`events`], IRQ
//!   routes ([`interrupts`]), and
//!   the VMX controls and guest state its [`profile`] chooses (from the bit
//!   definitions in [`vmx`]); the kernel's tables; the [`plan`]. Failures
//!   are [`error::ComposeError`]s located at a policy element;
//! - [`layers`]: reads a composition back from its bytes and checks that
//!   each subject's guest paging and EPT agree and reach only what it owns;
//! - [`specgen`]: the kernel's `spec.rs`; [`report`]: text and JSON report;
//!   [`output`]: writing the composed directory (spec, regions, report);
//! - [`pack`]: the multiboot2 ELF (kernel segments + composed regions) and
//!   the GRUB ISO.
//!
//! Everything except file and process I/O in [`output`], [`pack`] and
//! [`from_policy`] is a pure function, unit-tested on the host; the same
//! inputs always give the same bytes.
#![forbid(unsafe_code)]

pub mod acpi;
pub mod alloc;
pub mod bitmaps;
pub mod contract;
pub mod crash_audit;
pub mod crash_reader;
pub mod elf;
pub mod error;
pub mod events;
pub mod from_policy;
pub mod info;
pub mod input;
pub mod interrupts;
pub mod layers;
pub mod linux;
pub mod monitor;
pub mod msi;
pub mod output;
pub mod pack;
pub mod paging;
pub mod pcicfg;
pub mod pipeline;
pub mod placement;
pub mod plan;
pub mod pristine;
pub mod profile;
pub mod report;
pub mod specgen;
pub mod subjects;
pub mod symbols;
pub mod system;
pub mod testgen;
pub mod timed;
pub mod vmx;
pub mod vtd;

/// Everything `septum compose` produces, in memory.
pub struct Composed {
    /// Placed regions, built tables, resolved subjects and plan.
    pub composition: system::Composition,
    /// The kernel's `spec.rs`.
    pub spec: String,
    /// Each subject's name and symbol map, in policy order (written as
    /// `symbols/NAME.txt` by [`output::write_symbols`]).
    pub symbols: Vec<(String, symbols::SymbolMap)>,
    /// Located warnings about the composed system (a subject on the
    /// default fault action: [`report::default_fault_warnings`]); empty
    /// for [`compose_input`], which has no policy to locate them in.
    pub warnings: Vec<septum_policy::Diagnostic>,
}

/// Why a validated policy did not compose.
#[derive(Debug)]
pub enum Failure {
    /// Located problems with files the policy names (binaries, region
    /// files); render them with the policy crate.
    Policy(Vec<septum_policy::Diagnostic>),
    /// A composition limit (memory, layout, info page, schedule).
    Compose(String),
}

/// Compose a policy that passed validation: convert, allocate, build every
/// table, generate the spec.
///
/// A composition limit that concerns one policy element (a subject, region,
/// channel or the plan) comes back as a located diagnostic with rule id
/// [`RULE_LIMIT`], pointing at that element.
pub fn compose_policy(
    policy: &septum_policy::Policy,
    binaries: &dyn from_policy::Binaries,
) -> Result<Composed, Failure> {
    let input = from_policy::system_input(policy, binaries).map_err(Failure::Policy)?;
    compose_located(policy, &input)
}

/// Compose `input`, converted from `policy`; a limit that concerns one
/// policy element becomes a diagnostic located at it.
fn compose_located(
    policy: &septum_policy::Policy,
    input: &input::SystemInput,
) -> Result<Composed, Failure> {
    let composition = pipeline::compose(input).map_err(|e| {
        let span = match e.origin {
            Some(error::Origin::Subject(i)) => policy.subjects.get(i).map(|s| s.span),
            Some(error::Origin::Region(i)) => policy.regions.get(i).map(|r| r.span),
            Some(error::Origin::Channel(i)) => policy.channels.get(i).map(|c| c.span),
            Some(error::Origin::Scheduling) => Some(policy.scheduling.span),
            None => None,
        };
        match span {
            Some(span) => Failure::Policy(vec![septum_policy::Diagnostic::error(
                RULE_LIMIT, span, e.message,
            )]),
            None => Failure::Compose(e.message),
        }
    })?;
    let mut composed = finish(input, composition)?;
    composed.warnings = report::default_fault_warnings(policy);
    Ok(composed)
}

/// [`compose_policy`], with the image's policy hash computed from the
/// policy's source files (`sources`, every file the loader read: policy,
/// includes, hardware description) for the crash-audit records.
/// [`compose_policy`] leaves the hash 0.
pub fn compose_policy_with_sources(
    policy: &septum_policy::Policy,
    sources: &septum_policy::SourceMap,
    binaries: &dyn from_policy::Binaries,
) -> Result<Composed, Failure> {
    let mut input = from_policy::system_input(policy, binaries).map_err(Failure::Policy)?;
    input.policy_hash = crash_audit::policy_hash_of(sources);
    compose_located(policy, &input)
}

/// Rule id of a composition limit located at a policy element.
pub const RULE_LIMIT: &str = "compose-limit";

/// Compose a system input directly (tests, generators).
pub fn compose_input(input: &input::SystemInput) -> Result<Composed, Failure> {
    let composition = pipeline::compose(input).map_err(|e| Failure::Compose(e.message))?;
    finish(input, composition)
}

/// Check the built tables against the policy's grants, then generate the
/// spec.
///
/// The layer check ([`layers::check`]) reads the guest page tables and EPT
/// back from their bytes and compares them with what the input grants, so a
/// composer bug cannot produce an image in which a subject reaches memory it
/// was not given: composing fails instead.
fn finish(
    input: &input::SystemInput,
    composition: system::Composition,
) -> Result<Composed, Failure> {
    let layers = layers::check(input, &composition);
    if !layers.violations.is_empty() {
        return Err(Failure::Compose(format!(
            "internal consistency check failed (a composer bug; no image written): {}",
            layers.violations.join("; ")
        )));
    }
    let spec = specgen::spec_source(&composition);
    let symbols = input
        .subjects
        .iter()
        .map(|s| (s.name.clone(), s.symbols.clone()))
        .collect();
    Ok(Composed {
        composition,
        spec,
        symbols,
        warnings: Vec::new(),
    })
}
