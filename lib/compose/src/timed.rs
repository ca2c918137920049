//! Timed events in the composition: a subject's [`TimedEventSpec`] (its
//! timed-event page's physical address and the target event number), the
//! page's initial content (deadline disarmed, event number: the layout of
//! `septum_abi::timed`), and the kernel mapping of every such page.
//!
//! The page is an ordinary `<memory>` region of the policy (4 KiB, mapped
//! writable by its subject only: the `subjects-timed-*` rules), so
//! placement, the subject's page tables and EPT and its info page entry
//! need nothing new. The kernel reads and disarms the deadline, so
//! [`kernel_mappings`] identity-maps each page read-write, no-execute, with
//! the region's own memory type, like a monitor's state page.

use septum_abi::PhysAddr;
use septum_abi::timed::{TIMED_PAGE_SIZE, initial_page};
use septum_kerncore::spec::TimedEventSpec;

use crate::error::ComposeError;
use crate::input::{Caching, SubjectInput, SystemInput};
use crate::placement::{Placed, Placer};
use crate::system::SubjectOut;

/// The timed event of subject `s`, if it has one; writes the page's
/// initial content (disarmed, with the event number).
pub fn page(
    input: &SystemInput,
    placed: &Placed,
    placer: &mut Placer,
    s: &SubjectInput,
) -> Result<Option<TimedEventSpec>, ComposeError> {
    let Some(timed) = s.timed_event else {
        return Ok(None);
    };
    let fail = |what: &str| {
        Err(ComposeError::new(format!(
            "subject \"{}\": <timedEvent>: {what}",
            s.name
        )))
    };
    let Some(&region) = placed.memory.get(timed.page) else {
        return fail("the page is not placed");
    };
    if input.regions.get(timed.page).map(|r| r.size) != Some(TIMED_PAGE_SIZE) {
        return fail("the page is not 4 KiB");
    }
    let content = &mut placer.region_mut(region).content;
    let initial = initial_page(timed.event);
    if content.len() < initial.len() {
        content.resize(initial.len(), 0);
    }
    content[..initial.len()].copy_from_slice(&initial);
    Ok(Some(TimedEventSpec {
        page: placer.region(region).start,
        event: timed.event,
    }))
}

/// Every timed-event page with its memory type, for the kernel's identity
/// map.
pub fn kernel_mappings(input: &SystemInput, subjects: &[SubjectOut]) -> Vec<(PhysAddr, Caching)> {
    subjects
        .iter()
        .zip(&input.subjects)
        .filter_map(|(out, s)| {
            let spec = out.timed_event?;
            let caching = s
                .timed_event
                .and_then(|t| input.regions.get(t.page))
                .map_or(Caching::Wb, |r| r.caching);
            Some((spec.page, caching))
        })
        .collect()
}
