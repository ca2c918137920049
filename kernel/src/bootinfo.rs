//! Boot information: print the boot loader's memory map and check that the
//! image fits in it.
//!
//! Every multiboot2 memory map entry is printed as
//! `septum: mmap 0x<start>-0x<end> <type>` (end exclusive). Then every
//! region of `SPEC.image_regions` (kernel windows, tables, subject memory)
//! must lie in available RAM (type 1; adjacent available entries join);
//! otherwise the kernel refuses to start, naming the region. GRUB has
//! already loaded the image by then, so this catches a hardware
//! description that does not match the machine, before any subject runs.
//! With more than one CPU the page of the AP start-up code
//! (`boot::AP_TRAMPOLINE`) must be available RAM too, and no image region
//! may overlap it.

use core::fmt;

use septum_abi::PhysAddr;
use septum_kerncore::mbi::{self, BootInfo, MbiError};
use septum_kerncore::spec::ImageRegion;

use crate::arch::x86_64::boot::AP_TRAMPOLINE;

use crate::kprintln;
use crate::system::SPEC;

/// Why the boot information rules out starting.
pub enum BootInfoError {
    /// The structure cannot be read.
    Unreadable(MbiError),
    /// A region of the image is not in usable RAM.
    NotRam(&'static ImageRegion),
    /// The page of the AP start-up code is not usable RAM.
    ApPageNotRam,
    /// A region of the image overlaps the page of the AP start-up code.
    ApPageTaken(&'static ImageRegion),
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(error) => write!(f, "{error}"),
            Self::NotRam(region) => write!(
                f,
                "region \"{}\" {:#x}-{:#x} is not usable RAM",
                region.name,
                region.start.get(),
                region.start.get().saturating_add(region.size)
            ),
            Self::ApPageNotRam => write!(
                f,
                "the AP start-up page {AP_TRAMPOLINE:#x}-{:#x} is not usable RAM",
                AP_TRAMPOLINE.saturating_add(4096)
            ),
            Self::ApPageTaken(region) => write!(
                f,
                "region \"{}\" overlaps the AP start-up page {AP_TRAMPOLINE:#x}",
                region.name
            ),
        }
    }
}

/// Print the memory map and check every image region against it.
pub fn check(bytes: &[u8]) -> Result<(), BootInfoError> {
    let info = BootInfo::parse(bytes).map_err(BootInfoError::Unreadable)?;
    for entry in info.memory_map() {
        kprintln!(
            "septum: mmap {:#x}-{:#x} {}",
            entry.start.get(),
            entry.end(),
            entry.kind_name()
        );
    }
    for region in SPEC.image_regions {
        if !mbi::is_usable_ram(info.memory_map(), region.start, region.size) {
            return Err(BootInfoError::NotRam(region));
        }
    }
    if SPEC.kernel.cpu_count > 1 {
        let page = PhysAddr(AP_TRAMPOLINE);
        if !mbi::is_usable_ram(info.memory_map(), page, 4096) {
            return Err(BootInfoError::ApPageNotRam);
        }
        let page_end = AP_TRAMPOLINE.saturating_add(4096);
        for region in SPEC.image_regions {
            let end = region.start.get().saturating_add(region.size);
            if region.start.get() < page_end && end > AP_TRAMPOLINE {
                return Err(BootInfoError::ApPageTaken(region));
            }
        }
    }
    Ok(())
}
