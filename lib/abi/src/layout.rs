//! Fixed places in the physical and subject address spaces.
//!
//! The kernel is linked at fixed windows (the kernel's build script writes
//! its linker script from these constants) and the composer maps exactly
//! these windows with the rights given here; `septum pack` checks that every
//! segment of the kernel ELF lies in the window with matching rights, so the
//! two cannot drift apart.

use crate::units::{PhysAddr, VirtAddr};

/// Size of a small page (4 KiB): every region, mapping and page table the
/// composer builds is a whole number of them.
pub const PAGE_SIZE: u64 = 0x1000;

/// Size of a large page (2 MiB, a page-directory leaf): the composer aligns regions
/// this large to it so EPT can map them with large pages.
pub const LARGE_PAGE_SIZE: u64 = 0x20_0000;

/// A window of physical memory, identity-mapped in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First byte.
    pub start: PhysAddr,
    /// Size in bytes (a multiple of 4 KiB).
    pub size: u64,
}

impl Window {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.start.0 + self.size
    }
}

/// Kernel code (read, execute). Holds the 32-bit multiboot2 entry too.
pub const KERNEL_TEXT: Window = Window {
    start: PhysAddr(0x0010_0000),
    size: 0x0010_0000,
};
/// Kernel read-only data (read).
pub const KERNEL_RODATA: Window = Window {
    start: PhysAddr(0x0020_0000),
    size: 0x0004_0000,
};
/// Kernel data, bss and stacks (read, write, no execute).
pub const KERNEL_DATA: Window = Window {
    start: PhysAddr(0x0024_0000),
    size: 0x000c_0000,
};

/// First physical address the composer may allocate from (everything below
/// belongs to the firmware, the boot loader and the kernel windows).
pub const FIRST_ALLOCATABLE: PhysAddr = PhysAddr(0x0030_0000);

/// Where native subjects are linked (the SDK's linker script): their ELF
/// sections are mapped at their link addresses.
pub const SUBJECT_IMAGE_BASE: VirtAddr = VirtAddr(0x0020_0000);

/// End (exclusive) of the window a native subject's program image may
/// occupy: every ELF segment must lie in `[SUBJECT_IMAGE_BASE,
/// SUBJECT_IMAGE_END)`, and no explicit mapping may enter it.
pub const SUBJECT_IMAGE_END: VirtAddr = VirtAddr(0x4000_0000);

/// Where a native subject's info page is mapped (read-only).
pub const SUBJECT_INFO: VirtAddr = VirtAddr(0x0001_0000);

/// Top of a native subject's stack (the stack grows down from here; the page
/// below the stack is left unmapped as a guard).
pub const SUBJECT_STACK_TOP: VirtAddr = VirtAddr(0x0010_0000);

/// Default size of a native subject's stack.
pub const SUBJECT_STACK_SIZE: u64 = 0x4000;

/// First virtual address used for mappings whose `virtualAddress` the policy
/// leaves out.
pub const SUBJECT_AUTO_MAP_BASE: VirtAddr = VirtAddr(0x0000_0001_0000_0000);
