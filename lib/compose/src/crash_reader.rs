//! The crash-audit reader: the one subject a policy names with
//! `<crashAudit logical virtualAddress>` sees the crash-audit region
//! ([`crate::crash_audit`], docs/crash.md) read-only, so that it can read
//! and pass on the records the previous boot left.
//!
//! The region is no composed region (`septum pack` must not load it), so
//! it cannot be a [`Mapping`](crate::system::Mapping) of a region index.
//! It is mapped the way device memory is, from a grant beside the
//! mappings: [`grant`] turns the subject's `<crashAudit>` into a
//! [`DeviceMemoryGrantInput`] over the placed region, read-only, not
//! executable, uncached (EPT memory type UC, PCD|PWT in the subject's page
//! tables: the kernel writes it uncached, and the reader must not see a
//! stale cache line), which [`crate::subjects`] maps in both layers and
//! checks for overlaps with everything else. [`resource`] lists it on the
//! info page as a `CrashAudit` resource, so the SDK finds it by name.
//! [`page_problem`] is the layer check's rule for it
//! ([`crate::layers`]): only the reader's grant, at its address, read-only,
//! not executable, UC; any other EPT page on the region is refused.

use septum_abi::info::ResourceKind;

use crate::crash_audit::CrashAudit;
use crate::info::Resource;
use crate::input::{Caching, DeviceMemoryGrantInput, SubjectInput};
use crate::paging::MemoryType;

/// The region as a read-only, uncached grant of subject `s`; `None` if
/// `s` is not the reader.
pub fn grant(s: &SubjectInput, region: &CrashAudit) -> Option<DeviceMemoryGrantInput> {
    let reader = s.crash_audit.as_ref()?;
    Some(DeviceMemoryGrantInput {
        logical: reader.logical.clone(),
        physical: region.start,
        size: region.size,
        caching: Caching::Uc,
        virtual_address: reader.virtual_address,
        writable: false,
        executable: false,
    })
}

/// The region's info-page resource for subject `s`; `None` if `s` is not
/// the reader.
pub fn resource(s: &SubjectInput, region: &CrashAudit) -> Option<Resource> {
    let reader = s.crash_audit.as_ref()?;
    Some(Resource::new(
        &reader.logical,
        ResourceKind::CrashAudit,
        reader.virtual_address.get(),
        region.size,
    ))
}

/// One EPT page of subject `granted` that lands at host-physical `hpa`.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// Guest-physical address.
    pub gpa: u64,
    /// Host-physical address.
    pub hpa: u64,
    /// EPT write right.
    pub writable: bool,
    /// EPT execute right.
    pub executable: bool,
    /// EPT memory type (bits 5:3).
    pub memory_type: u64,
}

/// If `page` lands in the crash-audit region: why that is wrong
/// (`Some(Some(..))`), or that it is right (`Some(None)`); `None` if it
/// lies outside the region.
pub fn page_problem(
    granted: &SubjectInput,
    region: &CrashAudit,
    page: Page,
) -> Option<Option<String>> {
    let offset = page
        .hpa
        .checked_sub(region.start.get())
        .filter(|&o| o < region.size)?;
    let Some(reader) = &granted.crash_audit else {
        return Some(Some(
            "host page lies in the crash-audit region, which this subject does not read".into(),
        ));
    };
    Some(
        if page.gpa.checked_sub(reader.virtual_address.get()) != Some(offset) {
            Some(format!(
                "crash-audit region \"{}\" is not granted at this address",
                reader.logical
            ))
        } else if page.writable || page.executable {
            Some(format!(
                "crash-audit region \"{}\" mapped {}, granted read-only",
                reader.logical,
                match (page.writable, page.executable) {
                    (true, true) => "rwx",
                    (true, false) => "rw-",
                    _ => "r-x",
                }
            ))
        } else if page.memory_type != Caching::Uc.memory_type() {
            Some(format!(
                "crash-audit region \"{}\" has EPT memory type {}, not UC",
                reader.logical, page.memory_type
            ))
        } else {
            None
        },
    )
}

/// Whether guest-physical `gpa` lies in subject `granted`'s view of the
/// crash-audit region (its guest tables must map it uncached).
pub fn covers(granted: &SubjectInput, region: &CrashAudit, gpa: u64) -> bool {
    granted.crash_audit.as_ref().is_some_and(|reader| {
        gpa.checked_sub(reader.virtual_address.get())
            .is_some_and(|offset| offset < region.size)
    })
}

/// The text report's line for subject `s` if it is the reader: where the
/// region appears and with which rights.
pub fn report_line(s: &crate::system::SubjectOut, region: &CrashAudit) -> Option<String> {
    let r = s
        .resources
        .iter()
        .find(|r| r.kind == ResourceKind::CrashAudit)?;
    Some(format!(
        "    crash-audit reader: {:#018x} -> {:#018x} {:>#10x} r--    UC      crash audit     {}",
        r.address,
        region.start.get(),
        r.size,
        r.name
    ))
}
