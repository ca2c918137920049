//! Placing regions in physical memory (steps 1 and 2 of
//! [`crate::pipeline::compose`]).
//!
//! Fixed regions (`physicalAddress`) are reserved first, so allocation
//! works around them; then the crash-audit region is taken from the top of
//! RAM ([`crate::crash_audit`]). Then every region whose size is known before any
//! table is built is allocated, in a fixed order: a VMXON region per CPU;
//! per subject its VMCS, I/O bitmaps, MSR bitmap, info page, stack and one
//! region per ELF segment; then the `<memory>` regions; then the channels.
//! Tables (guest page tables, EPT, kernel page tables) are placed later by
//! the same [`Placer`], once their size is known. The order is part of the
//! output: the same input always gives the same addresses.
//!
//! A region is asked for with a [`RegionRequest`], which records its owner
//! and writes its display name (`SUBJECT|what`, `kernel|what`, or the
//! policy's name); nothing reads a name back to find an owner.

use std::collections::HashMap;

use septum_abi::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};
use septum_abi::{PhysAddr, SubjectId};

use crate::alloc::{AllocError, PhysAllocator};
use crate::bitmaps;
use crate::crash_audit::{self, CrashAudit};
use crate::elf::round_up;
use crate::error::{ComposeError, Origin};
use crate::input::{Caching, Profile, RegionInput, SystemInput};
use crate::system::{Region, RegionIndex, RegionKind, RegionOwner};

/// A region to place: what it is, whose, how big, its initial bytes.
#[derive(Clone, Debug)]
pub struct RegionRequest {
    /// Display name.
    pub name: String,
    /// Owner.
    pub owner: RegionOwner,
    /// What it holds.
    pub kind: RegionKind,
    /// Size in bytes (rounded up to whole pages when allocated).
    pub size: u64,
    /// Memory type.
    pub caching: Caching,
    /// Initial bytes.
    pub content: Vec<u8>,
}

impl RegionRequest {
    /// A kernel region, named `kernel|what`, write-back, zeroed.
    pub fn kernel(what: &str, kind: RegionKind, size: u64) -> Self {
        Self {
            name: format!("kernel|{what}"),
            owner: RegionOwner::Kernel,
            kind,
            size,
            caching: Caching::Wb,
            content: vec![],
        }
    }

    /// A region of subject `id` (named `subject`), named `subject|what`,
    /// write-back, zeroed.
    pub fn subject(id: SubjectId, subject: &str, what: &str, kind: RegionKind, size: u64) -> Self {
        Self {
            name: format!("{subject}|{what}"),
            owner: RegionOwner::Subject(id),
            kind,
            size,
            caching: Caching::Wb,
            content: vec![],
        }
    }

    /// A region the policy names (a `<memory>` region or a channel).
    pub fn policy(name: &str, kind: RegionKind, size: u64, caching: Caching) -> Self {
        Self {
            name: name.to_owned(),
            owner: RegionOwner::Policy,
            kind,
            size,
            caching,
            content: vec![],
        }
    }

    /// The same request with initial bytes.
    pub fn with_content(mut self, content: Vec<u8>) -> Self {
        self.content = content;
        self
    }
}

/// The physical allocator and every region placed so far.
pub struct Placer {
    allocator: PhysAllocator,
    regions: Vec<Region>,
    /// What the regions being placed belong to, for error locations.
    pub origin: Option<Origin>,
}

impl Placer {
    /// An empty placement over the input's memory blocks.
    pub fn new(input: &SystemInput) -> Self {
        Self {
            allocator: PhysAllocator::new(&input.hardware.memory_blocks),
            regions: vec![],
            origin: None,
        }
    }

    fn push(&mut self, r: RegionRequest, start: PhysAddr, size: u64) -> RegionIndex {
        self.regions.push(Region {
            name: r.name,
            owner: r.owner,
            start,
            size,
            caching: r.caching,
            kind: r.kind,
            content: r.content,
        });
        RegionIndex(self.regions.len() - 1)
    }

    /// Allocate `r`: whole pages, 2 MiB aligned from 2 MiB up (so EPT can
    /// use large pages), first fit.
    pub fn place(&mut self, r: RegionRequest) -> Result<RegionIndex, ComposeError> {
        let size = round_up(r.size.max(PAGE_SIZE), PAGE_SIZE)
            .ok_or_else(|| ComposeError::new(format!("region \"{}\": size overflows", r.name)))?;
        let align = if size >= LARGE_PAGE_SIZE {
            LARGE_PAGE_SIZE
        } else {
            PAGE_SIZE
        };
        let start = self.allocator.allocate(size, align).map_err(|e| {
            let err = alloc_error(&r.name, e);
            match self.origin {
                Some(origin) => err.at(origin),
                None => err,
            }
        })?;
        Ok(self.push(r, start, size))
    }

    /// Reserve `r` at the fixed address `at` (its size must already be
    /// whole pages).
    pub fn reserve(&mut self, at: PhysAddr, r: RegionRequest) -> Result<RegionIndex, ComposeError> {
        self.allocator
            .reserve(at, r.size)
            .map_err(|e| alloc_error(&r.name, e))?;
        let size = r.size;
        Ok(self.push(r, at, size))
    }

    /// Take `size` bytes (whole pages) from the middle of the highest free
    /// RAM range (2 MiB aligned if that fits, else 4 KiB), for a region
    /// that is not one of the loaded [`Region`]s: nothing else is placed
    /// there, and it is not in [`Placer::into_regions`].
    pub fn reserve_middle(&mut self, name: &str, size: u64) -> Result<PhysAddr, ComposeError> {
        self.allocator
            .allocate_middle(size, LARGE_PAGE_SIZE)
            .or_else(|_| self.allocator.allocate_middle(size, PAGE_SIZE))
            .map_err(|e| alloc_error(name, e))
    }

    /// Region `i`.
    pub fn region(&self, i: RegionIndex) -> &Region {
        &self.regions[i]
    }

    /// Region `i`, to fill in its bytes.
    pub fn region_mut(&mut self, i: RegionIndex) -> &mut Region {
        &mut self.regions[i]
    }

    /// Every region placed, in placement order.
    pub fn into_regions(self) -> Vec<Region> {
        self.regions
    }
}

fn alloc_error(name: &str, e: AllocError) -> ComposeError {
    ComposeError::new(format!("region \"{name}\": {e}"))
}

/// An ELF segment's region and the name its mapping shows (`text`,
/// `rodata`, `data`, a second `data` segment `data1`, ...).
#[derive(Clone, Debug)]
pub struct PlacedSegment {
    /// The region.
    pub region: RegionIndex,
    /// Mapping name.
    pub name: String,
}

/// Regions placed for one subject before its tables are built.
#[derive(Clone, Debug)]
pub struct SubjectRegions {
    /// VMCS.
    pub vmcs: RegionIndex,
    /// I/O bitmaps A and B (two pages).
    pub io_bitmaps: RegionIndex,
    /// MSR bitmap.
    pub msr_bitmap: RegionIndex,
    /// A VM's APIC-access page (`crate::profile::vm`); `None` for the
    /// other profiles.
    pub apic_access: Option<RegionIndex>,
    /// Info page (filled once the subject is composed).
    pub info: RegionIndex,
    /// Stack.
    pub stack: RegionIndex,
    /// ELF segments, in program order.
    pub segments: Vec<PlacedSegment>,
}

/// Where steps 1 and 2 put everything.
#[derive(Clone, Debug)]
pub struct Placed {
    /// VMXON region per CPU.
    pub vmxon: Vec<RegionIndex>,
    /// Per subject (input order).
    pub subjects: Vec<SubjectRegions>,
    /// Per `<memory>` region (input order).
    pub memory: Vec<RegionIndex>,
    /// Per channel (input order).
    pub channels: Vec<RegionIndex>,
    /// The crash-audit region (not a loaded region).
    pub crash_audit: CrashAudit,
}

/// Steps 1 and 2: reserve the fixed regions, then allocate every region
/// whose size is known before the tables are built.
pub fn place_regions(
    input: &SystemInput,
    placer: &mut Placer,
    cpu_count: u32,
) -> Result<Placed, ComposeError> {
    // 1. Fixed regions first, so allocation works around them.
    let mut fixed = Vec::with_capacity(input.regions.len());
    for (i, r) in input.regions.iter().enumerate() {
        let Some(at) = r.physical else {
            fixed.push(None);
            continue;
        };
        if !at.is_aligned(PAGE_SIZE) || r.size % PAGE_SIZE != 0 {
            return Err(ComposeError::new(format!(
                "memory \"{}\": fixed placement {at} is not 4 KiB aligned",
                r.name
            ))
            .at(Origin::Region(i)));
        }
        let request = RegionRequest::policy(&r.name, RegionKind::Memory, r.size, r.caching)
            .with_content(region_content(r));
        fixed.push(Some(
            placer
                .reserve(at, request)
                .map_err(|e| e.at(Origin::Region(i)))?,
        ));
    }

    // The crash-audit region, from the top of RAM: its address depends on
    // the hardware and the CPU count only, not on the other regions.
    let crash_audit = crash_audit::place(placer, cpu_count, input.policy_hash)?;

    // 2. Data regions.
    let mut vmxon = Vec::new();
    for cpu in 0..cpu_count {
        vmxon.push(placer.place(RegionRequest::kernel(
            &format!("vmxon|{cpu}"),
            RegionKind::Vmxon,
            PAGE_SIZE,
        ))?);
    }
    let mut subjects = Vec::with_capacity(input.subjects.len());
    for (si, s) in input.subjects.iter().enumerate() {
        placer.origin = Some(Origin::Subject(si));
        let id = SubjectId(si as u16);
        let own = |what: &str, kind, size| RegionRequest::subject(id, &s.name, what, kind, size);
        let vmcs = placer.place(own("vmcs", RegionKind::Vmcs, PAGE_SIZE))?;
        let ports = s
            .devices
            .iter()
            .flat_map(|d| d.io_ports.iter().map(|(_, r)| r));
        let io_bitmaps = placer.place(
            own("iobm", RegionKind::IoBitmaps, 2 * PAGE_SIZE)
                .with_content(bitmaps::io_bitmaps(ports)),
        )?;
        let msr_bitmap = placer.place(
            own("msrbm", RegionKind::MsrBitmap, PAGE_SIZE).with_content(bitmaps::msr_bitmap()),
        )?;
        let apic_access = if s.profile == Profile::Vm {
            Some(placer.place(own("apic", RegionKind::ApicAccess, PAGE_SIZE))?)
        } else {
            None
        };
        let info = placer.place(own("info", RegionKind::InfoPage, PAGE_SIZE))?;
        let stack = placer.place(own("stack", RegionKind::Stack, s.stack_size))?;
        let mut segments: Vec<PlacedSegment> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for seg in &s.image.segments {
            let kind = seg.kind_name();
            let earlier = seen.entry(kind).or_insert(0);
            let name = if *earlier == 0 {
                kind.to_owned()
            } else {
                format!("{kind}{earlier}")
            };
            *earlier += 1;
            let region = placer.place(
                own(&name, RegionKind::Program, seg.mem_size).with_content(seg.data.clone()),
            )?;
            segments.push(PlacedSegment { region, name });
        }
        subjects.push(SubjectRegions {
            vmcs,
            io_bitmaps,
            msr_bitmap,
            apic_access,
            info,
            stack,
            segments,
        });
    }
    let mut memory = Vec::with_capacity(input.regions.len());
    for (i, (r, fixed)) in input.regions.iter().zip(fixed).enumerate() {
        placer.origin = Some(Origin::Region(i));
        let index = match fixed {
            Some(index) => index,
            None => placer.place(
                RegionRequest::policy(&r.name, RegionKind::Memory, r.size, r.caching)
                    .with_content(region_content(r)),
            )?,
        };
        memory.push(index);
    }
    let mut channels = Vec::with_capacity(input.channels.len());
    for (i, c) in input.channels.iter().enumerate() {
        placer.origin = Some(Origin::Channel(i));
        channels.push(placer.place(RegionRequest::policy(
            &c.name,
            RegionKind::Channel,
            c.size,
            Caching::Wb,
        ))?);
    }
    placer.origin = None;
    Ok(Placed {
        vmxon,
        subjects,
        memory,
        channels,
        crash_audit,
    })
}

/// A `<memory>` region's initial bytes: its file content, then the fill
/// byte up to its size (nothing when the fill is zero).
fn region_content(r: &RegionInput) -> Vec<u8> {
    let size = usize::try_from(r.size).unwrap_or(usize::MAX);
    let len = if r.fill == 0 {
        r.content.len().min(size)
    } else {
        size
    };
    let mut bytes = vec![r.fill; len];
    let n = r.content.len().min(len);
    bytes[..n].copy_from_slice(&r.content[..n]);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_and_own_their_regions() {
        let r = RegionRequest::subject(SubjectId(3), "console", "vmcs", RegionKind::Vmcs, 1);
        assert_eq!(r.name, "console|vmcs");
        assert_eq!(r.owner, RegionOwner::Subject(SubjectId(3)));
        let r = RegionRequest::kernel("vmxon|0", RegionKind::Vmxon, 1);
        assert_eq!(
            (r.name.as_str(), r.owner),
            ("kernel|vmxon|0", RegionOwner::Kernel)
        );
        let r = RegionRequest::policy("log", RegionKind::Memory, 1, Caching::Uc);
        assert_eq!((r.name.as_str(), r.owner), ("log", RegionOwner::Policy));
        assert_eq!(r.caching, Caching::Uc);
    }
}
