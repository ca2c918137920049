//! Pristine images: what a restart of a subject re-initialises, and the
//! untouched copies it re-initialises from.
//!
//! A restartable subject (`onFault="restartSubject"`, or the target of a
//! `<reset/>` target event) changes, while it runs, every region it maps
//! writable. For each such region the composer records how
//! to give it back its boot content ([`RestartRegion`]): a pristine copy
//! of its initial bytes, placed in the image as a region of its own
//! (`SUBJECT|WHAT|pristine`, same size and content, mapped into no
//! subject), or a fill with zeros when it starts all zero (the stack,
//! `.bss`, a channel it writes: a zeroed channel header has epoch 0, the
//! SHMStream v2 "writer init" state). Regions the subject only reads need
//! nothing, nor do its page tables and info page (never writable to it).
//! A `<memory>` region another subject also maps is refused by the policy
//! rule `subjects-restart-shared-memory`; channels are the shared memory a
//! restart handles.
//!
//! The kernel's tables map every region listed here read-write and every
//! pristine copy read-only, both no-execute ([`identity_maps`]); the list
//! goes into `spec.rs` as `RESTART_IMAGES` (kerncore
//! [`septum_kerncore::lifecycle`]). Subjects that cannot restart cost
//! nothing: no copy, no mapping, no entry.

use std::collections::BTreeSet;

use septum_abi::{PhysAddr, SubjectId};
use septum_kerncore::lifecycle::{RestartImage, RestartRegion, RestartSource};
use septum_kerncore::spec::{FaultAction, Owned, SourceEvent};

use crate::error::{ComposeError, Origin};
use crate::placement::{Placer, RegionRequest};
use crate::system::{MappingKind, RegionKind, SubjectOut};

/// Suffix of a pristine copy's region name.
pub const SUFFIX: &str = "pristine";

/// Place the pristine copies of every restartable subject (its fault
/// action is `restartSubject`, or another subject may reset it with a
/// `<reset/>` target event) and list what its restart re-initialises.
pub fn plan(
    placer: &mut Placer,
    subjects: &[SubjectOut],
) -> Result<Vec<RestartImage<Owned>>, ComposeError> {
    let mut images = Vec::new();
    let reset_targets: BTreeSet<SubjectId> = subjects
        .iter()
        .flat_map(|s| &s.source_events)
        .filter_map(|e| match e.action {
            SourceEvent::Reset { target, .. } => Some(target),
            _ => None,
        })
        .collect();
    for (si, s) in subjects.iter().enumerate() {
        let id = SubjectId(si as u16);
        let restarts = matches!(s.fault_action, FaultAction::RestartSubject(_));
        if !restarts && !reset_targets.contains(&id) {
            continue;
        }
        let mut seen = BTreeSet::new();
        let mut regions = Vec::new();
        for mapping in s.mappings.iter().filter(|m| m.writable) {
            if !seen.insert(mapping.region) {
                continue;
            }
            let region = placer.region(mapping.region);
            let (start, size) = (region.start, region.size);
            let zero = matches!(
                mapping.kind,
                MappingKind::ChannelWriter | MappingKind::Stack
            ) || region.content.iter().all(|&b| b == 0);
            let source = if zero {
                RestartSource::Zero
            } else {
                let what = region
                    .name
                    .split_once('|')
                    .map_or(region.name.as_str(), |(_, what)| what);
                let request = RegionRequest::subject(
                    id,
                    &s.name,
                    &format!("{what}|{SUFFIX}"),
                    RegionKind::Pristine,
                    size,
                )
                .with_content(region.content.clone());
                let copy = placer
                    .place(request)
                    .map_err(|e| e.at(Origin::Subject(si)))?;
                RestartSource::Copy(placer.region(copy).start)
            };
            regions.push(RestartRegion {
                start,
                size,
                source,
            });
        }
        images.push(RestartImage {
            subject: id,
            regions,
        });
    }
    Ok(images)
}

/// Every range the kernel's tables map for restarts: `(start, size,
/// writable)`; the regions re-initialised read-write, the pristine copies
/// read-only.
pub fn identity_maps(images: &[RestartImage<Owned>]) -> Vec<(PhysAddr, u64, bool)> {
    let mut out = Vec::new();
    for region in images.iter().flat_map(|image| &image.regions) {
        out.push((region.start, region.size, true));
        if let RestartSource::Copy(from) = region.source {
            out.push((from, region.size, false));
        }
    }
    out
}
