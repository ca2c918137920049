//! The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), for `vm`
//! subjects that boot an unmodified Linux kernel.
//!
//! The composer plays the boot loader: it reads and checks the bzImage
//! ([`parse`]), then lays out the guest-physical memory of the subject
//! ([`boot_image`]) as two segments of a [`SubjectImage`], so the rest of
//! the subject pipeline (placement, the subject's identity page tables,
//! EPT) treats them like the segments of a native program:
//!
//! - the boot segment, the low megabyte: the zero page (`boot_params`, with
//!   the setup header copied from the image and an e820 map generated from
//!   the subject's RAM) at [`BOOT_BASE`], the command line and a 20-byte
//!   entry stub after it, the ACPI tables that describe the local APIC
//!   ([`crate::acpi`], named by the zero page's `acpi_rsdp_addr`) at the
//!   start of the reserved range, zeros elsewhere;
//! - the RAM segment at [`RAM_BASE`]: the initramfs at its start, the
//!   protected-mode kernel at the next `kernel_alignment` boundary after it,
//!   the rest zero. Its size is the policy's `ramSize`. The e820 map has it
//!   and the conventional memory below 0x9_f000 as RAM (Linux needs some
//!   memory below 1 MiB for its real-mode trampoline), the rest of the low
//!   megabyte reserved: Linux uses exactly the memory the policy gives it.
//!
//! The 64-bit entry wants the zero page's address in RSI; the kernel starts
//! every subject with only RDI set from the spec, so the subject enters the
//! stub, which copies RDI to RSI and jumps to the kernel's 64-bit entry
//! (load address + 0x200). Everything else the protocol asks for (paging
//! on with an identity map of the loaded parts, flat 64-bit segments,
//! interrupts off) is the `vm` profile's initial state
//! ([`crate::profile::vm`]).
//!
//! Checks, each refused with a message naming the file and the field:
//! boot-sector signature, `HdrS` magic, protocol version >= 2.12 (the first
//! with `xloadflags`), `XLF_KERNEL_64`, a relocatable kernel, a power-of-two
//! `kernel_alignment`, `init_size` and `pref_address` present, the protected-
//! mode part inside the file, the command line within `cmdline_size`, and
//! everything within the RAM the policy gives.

use septum_abi::VirtAddr;
use septum_abi::layout::PAGE_SIZE;

use crate::elf::{Segment, SubjectImage, round_up};

/// Guest-physical address of the zero page, in the boot segment (the low
/// megabyte). The rest of that segment reads zero: Linux looks there for
/// the BIOS data area (EBDA pointer at 0x40e), MP tables and SMBIOS
/// (0xf_0000-0xf_ffff), finds nothing, and never allocates from it (it is
/// not in the e820 map).
pub const BOOT_BASE: u64 = 0x2_0000;
/// Offset of the command line from [`BOOT_BASE`].
const CMDLINE_OFFSET: u64 = 0x1000;
/// Offset of the entry stub from [`BOOT_BASE`].
const STUB_OFFSET: u64 = 0x2000;
/// Bytes of the boot segment with content (from guest-physical 0).
const BOOT_DATA: u64 = BOOT_BASE + 0x3000;
/// Guest-physical address where the subject's RAM starts (1 MiB, where boot
/// loaders traditionally load a bzImage).
pub const RAM_BASE: u64 = 0x10_0000;

/// Offset of the setup header in the image and in `boot_params`.
const HEADER: usize = 0x1f1;
/// Lowest protocol version accepted: 2.12 has `xloadflags`.
const MIN_VERSION: u16 = 0x020c;
/// `xloadflags` bit: the kernel has a 64-bit entry point at +0x200.
const XLF_KERNEL_64: u16 = 1;
/// Offset of the 64-bit entry from the load address.
const ENTRY_64: u64 = 0x200;
/// `boot_params` offsets (arch/x86/include/uapi/asm/bootparam.h).
const BP_E820_ENTRIES: usize = 0x1e8;
const BP_E820_TABLE: usize = 0x2d0;
const BP_EXT_RAMDISK_IMAGE: usize = 0x0c0;
const BP_EXT_RAMDISK_SIZE: usize = 0x0c4;
const BP_EXT_CMD_LINE_PTR: usize = 0x0c8;
const BP_ACPI_RSDP_ADDR: usize = 0x070;
/// e820 type of usable RAM.
const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
const E820_RESERVED: u32 = 2;
/// End of the conventional memory below 1 MiB the e820 map reports (as a
/// PC's BIOS does: 636 KiB).
const LOW_RAM_END: u64 = 0x9_f000;

/// Why a Linux image cannot be booted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct LinuxError {
    /// The file, as shown to the user.
    pub file: String,
    /// What is wrong, naming the field.
    pub message: String,
}

/// A checked bzImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BzImage<'a> {
    /// The setup header as the file has it (copied into the zero page).
    pub header: &'a [u8],
    /// The protected-mode kernel (loaded at the load address).
    pub kernel: &'a [u8],
    /// Boot protocol version (major << 8 | minor).
    pub version: u16,
    /// Required alignment of the load address.
    pub kernel_alignment: u64,
    /// Preferred load address.
    pub pref_address: u64,
    /// Memory the kernel needs from its load address to decompress and
    /// start.
    pub init_size: u64,
    /// Longest command line, without the terminating zero.
    pub cmdline_size: u64,
    /// Highest address the initramfs may end at.
    pub initrd_addr_max: u64,
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(bytes.try_into().ok()?))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn put(buffer: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = buffer.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

/// Read and check the bzImage `data` (named `file` in errors).
pub fn parse<'a>(file: &str, data: &'a [u8]) -> Result<BzImage<'a>, LinuxError> {
    let error = |message: String| LinuxError {
        file: file.to_owned(),
        message,
    };
    let too_short = || error(format!("{} bytes: too short for a bzImage", data.len()));
    if u16_at(data, 0x1fe).ok_or_else(too_short)? != 0xaa55 {
        return Err(error(
            "no boot-sector signature 0xaa55 at 0x1fe: not a bzImage".into(),
        ));
    }
    if u32_at(data, 0x202).ok_or_else(too_short)? != 0x5372_6448 {
        return Err(error(
            "no \"HdrS\" magic at 0x202: not a bzImage (or protocol < 2.00)".into(),
        ));
    }
    let version = u16_at(data, 0x206).ok_or_else(too_short)?;
    if version < MIN_VERSION {
        return Err(error(format!(
            "boot protocol {}.{:02} is older than 2.12 (no 64-bit entry)",
            version >> 8,
            version & 0xff
        )));
    }
    let xloadflags = u16_at(data, 0x236).ok_or_else(too_short)?;
    if xloadflags & XLF_KERNEL_64 == 0 {
        return Err(error(
            "xloadflags (0x236) lacks XLF_KERNEL_64: no 64-bit entry point".into(),
        ));
    }
    if data.get(0x234).copied().ok_or_else(too_short)? == 0 {
        return Err(error(
            "relocatable_kernel (0x234) is 0: the kernel must load at its fixed address".into(),
        ));
    }
    let kernel_alignment = u64::from(u32_at(data, 0x230).ok_or_else(too_short)?);
    if !kernel_alignment.is_power_of_two() || kernel_alignment < PAGE_SIZE {
        return Err(error(format!(
            "kernel_alignment (0x230) {kernel_alignment:#x} is not a power of two >= 4 KiB"
        )));
    }
    let pref_address = u64_at(data, 0x258).ok_or_else(too_short)?;
    let init_size = u64::from(u32_at(data, 0x260).ok_or_else(too_short)?);
    if pref_address == 0 || init_size == 0 {
        return Err(error(
            "pref_address (0x258) or init_size (0x260) is 0".into(),
        ));
    }
    let setup_sects = match data.get(HEADER).copied().ok_or_else(too_short)? {
        0 => 4,
        n => usize::from(n),
    };
    let kernel_offset = (setup_sects + 1) * 512;
    let kernel = data
        .get(kernel_offset..)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            error(format!(
                "setup_sects (0x1f1) {setup_sects} puts the kernel at {kernel_offset:#x}, \
                 past the end of the file"
            ))
        })?;
    // The header ends at 0x202 plus the jump offset at 0x201.
    let header_end = 0x202 + usize::from(data.get(0x201).copied().ok_or_else(too_short)?);
    let header = data.get(HEADER..header_end).ok_or_else(|| {
        error(format!(
            "setup header ends at {header_end:#x}, past the file"
        ))
    })?;
    if u64::try_from(kernel.len()).unwrap_or(u64::MAX) > init_size {
        return Err(error(format!(
            "init_size (0x260) {init_size:#x} is smaller than the kernel ({:#x} bytes)",
            kernel.len()
        )));
    }
    Ok(BzImage {
        header,
        kernel,
        version,
        kernel_alignment,
        pref_address,
        init_size,
        cmdline_size: u64::from(u32_at(data, 0x238).ok_or_else(too_short)?),
        initrd_addr_max: u64::from(u32_at(data, 0x22c).ok_or_else(too_short)?),
    })
}

/// What [`boot_image`] needs besides the kernel.
#[derive(Debug, Clone, Copy)]
pub struct BootConfig<'a> {
    /// The initramfs (may be empty).
    pub initrd: &'a [u8],
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Bytes of RAM from [`RAM_BASE`] (a multiple of 4 KiB).
    pub ram_size: u64,
}

/// Where [`boot_image`] put things (for the composition report and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootLayout {
    /// Guest-physical address of the zero page (the entry's RDI, copied to
    /// RSI by the stub).
    pub zero_page: u64,
    /// Where the protected-mode kernel is loaded.
    pub kernel_load: u64,
    /// The kernel's 64-bit entry.
    pub kernel_entry: u64,
    /// Guest-physical address of the initramfs.
    pub initrd: u64,
}

/// The subject image of a Linux VM: the boot segment and the RAM segment
/// (see the module doc), entry at the stub. `file` names the kernel in
/// errors.
pub fn boot_image(
    file: &str,
    kernel: &BzImage<'_>,
    config: &BootConfig<'_>,
) -> Result<(SubjectImage, BootLayout), LinuxError> {
    let error = |message: String| LinuxError {
        file: file.to_owned(),
        message,
    };
    let cmdline = config.cmdline.as_bytes();
    if cmdline.len() as u64 > kernel.cmdline_size || cmdline.len() as u64 >= CMDLINE_OFFSET {
        return Err(error(format!(
            "command line of {} bytes is longer than cmdline_size (0x238) {:#x} or one page",
            cmdline.len(),
            kernel.cmdline_size
        )));
    }
    if !config.ram_size.is_multiple_of(PAGE_SIZE) || config.ram_size == 0 {
        return Err(error(format!(
            "ramSize {:#x} is not a non-zero multiple of 4 KiB",
            config.ram_size
        )));
    }
    let ram_end = RAM_BASE
        .checked_add(config.ram_size)
        .ok_or_else(|| error(format!("ramSize {:#x} ends above 2^64", config.ram_size)))?;
    let initrd_len = config.initrd.len() as u64;
    let initrd = RAM_BASE;
    let kernel_load = round_up(RAM_BASE + initrd_len, kernel.kernel_alignment)
        .ok_or_else(|| error("initramfs too large".into()))?;
    // A relocatable kernel below its preferred address decompresses to
    // `pref_address` (LOAD_PHYSICAL_ADDR), so that area must be RAM too.
    // Both fields come from the image: a hostile header must not wrap.
    let needed = kernel_load
        .max(kernel.pref_address)
        .saturating_add(kernel.init_size);
    if needed > ram_end {
        return Err(error(format!(
            "needs RAM up to {needed:#x} (initramfs {initrd_len:#x} bytes, init_size \
             {:#x} from {:#x}); ramSize {:#x} ends at {ram_end:#x}",
            kernel.init_size,
            kernel_load.max(kernel.pref_address),
            config.ram_size
        )));
    }
    if initrd.saturating_add(initrd_len) > kernel.initrd_addr_max.saturating_add(1) {
        return Err(error(format!(
            "initramfs ends above initrd_addr_max (0x22c) {:#x}",
            kernel.initrd_addr_max
        )));
    }

    let zero_page = BOOT_BASE;
    let cmdline_at = BOOT_BASE + CMDLINE_OFFSET;
    let kernel_entry = kernel_load + ENTRY_64;
    let mut page = vec![0u8; (BOOT_DATA - BOOT_BASE) as usize];
    let boot = &mut page;
    put(boot, HEADER, kernel.header);
    // Setup header fields a boot loader writes (boot.rst, "Details of
    // header fields"): type_of_loader "undefined", LOADED_HIGH kept,
    // the initramfs and the command line.
    put(boot, 0x210, &[0xff]);
    put(boot, 0x218, &(initrd as u32).to_le_bytes());
    put(boot, 0x21c, &(initrd_len as u32).to_le_bytes());
    put(boot, 0x228, &(cmdline_at as u32).to_le_bytes());
    put(
        boot,
        BP_EXT_RAMDISK_IMAGE,
        &((initrd >> 32) as u32).to_le_bytes(),
    );
    put(
        boot,
        BP_EXT_RAMDISK_SIZE,
        &((initrd_len >> 32) as u32).to_le_bytes(),
    );
    put(
        boot,
        BP_EXT_CMD_LINE_PTR,
        &((cmdline_at >> 32) as u32).to_le_bytes(),
    );
    // e820: conventional memory below LOW_RAM_END (Linux needs some below
    // 1 MiB for its real-mode trampoline and reserves the first megabyte
    // after that), the BIOS area up to 1 MiB reserved, then the RAM.
    put(boot, BP_E820_ENTRIES, &[3]);
    let e820 = [
        (0, LOW_RAM_END, E820_RAM),
        (LOW_RAM_END, RAM_BASE - LOW_RAM_END, E820_RESERVED),
        (RAM_BASE, config.ram_size, E820_RAM),
    ];
    for (index, (start, size, kind)) in e820.into_iter().enumerate() {
        let mut entry = [0u8; 20];
        put(&mut entry, 0, &start.to_le_bytes());
        put(&mut entry, 8, &size.to_le_bytes());
        put(&mut entry, 16, &kind.to_le_bytes());
        put(boot, BP_E820_TABLE + 20 * index, &entry);
    }
    put(
        boot,
        BP_ACPI_RSDP_ADDR,
        &crate::acpi::ACPI_BASE.to_le_bytes(),
    );
    put(boot, CMDLINE_OFFSET as usize, cmdline);
    // Entry stub: mov rsi, rdi; movabs rax, kernel_entry; jmp rax.
    let mut stub = vec![0x48, 0x89, 0xfe, 0x48, 0xb8];
    stub.extend_from_slice(&kernel_entry.to_le_bytes());
    stub.extend_from_slice(&[0xff, 0xe0]);
    put(boot, STUB_OFFSET as usize, &stub);
    let mut low = vec![0u8; BOOT_BASE as usize];
    low.extend_from_slice(&page);
    low.resize(crate::acpi::ACPI_BASE as usize, 0);
    low.extend_from_slice(&crate::acpi::tables());

    let kernel_offset = (kernel_load - RAM_BASE) as usize;
    let mut ram = vec![0u8; kernel_offset + kernel.kernel.len()];
    put(&mut ram, 0, config.initrd);
    put(&mut ram, kernel_offset, kernel.kernel);

    let image = SubjectImage {
        entry: VirtAddr(BOOT_BASE + STUB_OFFSET),
        segments: vec![
            Segment {
                virtual_address: VirtAddr(0),
                mem_size: RAM_BASE,
                data: low,
                writable: true,
                executable: true,
            },
            Segment {
                virtual_address: VirtAddr(RAM_BASE),
                mem_size: config.ram_size,
                data: ram,
                writable: true,
                executable: true,
            },
        ],
    };
    Ok((
        image,
        BootLayout {
            zero_page,
            kernel_load,
            kernel_entry,
            initrd,
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// A minimal bzImage: 1 setup sector after the boot sector, a header
    /// with the fields `parse` reads, `kernel_len` bytes of kernel.
    fn sample(kernel_len: usize) -> Vec<u8> {
        let mut d = vec![0u8; 1024 + kernel_len];
        d[HEADER] = 1;
        d[0x1fe] = 0x55;
        d[0x1ff] = 0xaa;
        d[0x201] = 0x6a;
        d[0x202..0x206].copy_from_slice(b"HdrS");
        d[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        d[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        d[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
        d[0x234] = 1;
        d[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
        d[0x238..0x23c].copy_from_slice(&0x7ffu32.to_le_bytes());
        d[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
        d[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
        for (i, b) in d[1024..].iter_mut().enumerate() {
            *b = i as u8 | 1;
        }
        d
    }

    #[test]
    fn a_good_image_is_read() {
        let d = sample(0x3000);
        let k = parse("vmlinuz", &d).unwrap();
        assert_eq!(k.version, 0x020f);
        assert_eq!(k.kernel.len(), 0x3000);
        assert_eq!(k.header.len(), 0x202 + 0x6a - HEADER);
        assert_eq!(k.pref_address, 0x100_0000);
        assert_eq!(k.init_size, 0x10_0000);
    }

    #[test]
    fn bad_images_are_refused_naming_the_field() {
        let cases: [(usize, &[u8], &str); 6] = [
            (0x1fe, &[0, 0], "0xaa55"),
            (0x202, b"HdrX", "HdrS"),
            (0x206, &[0x0b, 0x02], "2.11"),
            (0x236, &[0, 0], "XLF_KERNEL_64"),
            (0x234, &[0], "relocatable_kernel"),
            (0x230, &[0, 0x30, 0, 0], "kernel_alignment"),
        ];
        for (at, bytes, needle) in cases {
            let mut d = sample(0x1000);
            d[at..at + bytes.len()].copy_from_slice(bytes);
            let e = parse("vmlinuz", &d).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().starts_with("vmlinuz: "), "{e}");
        }
        let e = parse("k", &[0u8; 100]).unwrap_err();
        assert!(e.message.contains("too short"), "{e}");
        let mut d = sample(0x1000);
        d[0x260..0x264].copy_from_slice(&0x800u32.to_le_bytes());
        assert!(parse("k", &d).unwrap_err().message.contains("init_size"));
        let d = sample(0x1000);
        assert!(
            parse("k", &d[..1024])
                .unwrap_err()
                .message
                .contains("setup_sects")
        );
    }

    #[test]
    fn the_boot_image_follows_the_protocol() {
        let d = sample(0x3000);
        let k = parse("vmlinuz", &d).unwrap();
        let initrd = vec![7u8; 0x1234];
        let config = BootConfig {
            initrd: &initrd,
            cmdline: "console=ttyS0 quiet",
            ram_size: 0x200_0000,
        };
        let (image, layout) = boot_image("vmlinuz", &k, &config).unwrap();
        assert_eq!(layout.kernel_load, 0x20_0000);
        assert_eq!(layout.kernel_entry, 0x20_0200);
        assert_eq!(layout.initrd, RAM_BASE);
        let boot = &image.segments[0].data[BOOT_BASE as usize..];
        assert_eq!(image.segments[0].mem_size, RAM_BASE);
        assert_eq!(boot[0x210], 0xff);
        assert_eq!(&boot[0x202..0x206], b"HdrS");
        assert_eq!(u32_at(boot, 0x218), Some(RAM_BASE as u32));
        assert_eq!(u32_at(boot, 0x21c), Some(0x1234));
        assert_eq!(u32_at(boot, 0x228), Some(0x2_1000));
        assert_eq!(&boot[0x1000..0x1013], b"console=ttyS0 quiet");
        assert_eq!(boot[0x1013], 0);
        assert_eq!(boot[BP_E820_ENTRIES], 3);
        let entry = |i: usize| {
            let at = BP_E820_TABLE + 20 * i;
            (
                u64_at(boot, at).unwrap(),
                u64_at(boot, at + 8).unwrap(),
                u32_at(boot, at + 16).unwrap(),
            )
        };
        assert_eq!(entry(0), (0, 0x9_f000, E820_RAM));
        assert_eq!(entry(1), (0x9_f000, 0x6_1000, E820_RESERVED));
        assert_eq!(entry(2), (RAM_BASE, 0x200_0000, E820_RAM));
        assert_eq!(image.entry.get(), 0x2_2000);
        assert_eq!(&boot[0x2000..0x2005], &[0x48, 0x89, 0xfe, 0x48, 0xb8]);
        assert_eq!(u64_at(boot, 0x2005), Some(0x20_0200));
        let ram = &image.segments[1];
        assert_eq!(ram.virtual_address.get(), RAM_BASE);
        assert_eq!(ram.mem_size, 0x200_0000);
        assert_eq!(&ram.data[..0x1234], &initrd[..]);
        assert_eq!(&ram.data[0x10_0000..], k.kernel);
    }

    #[test]
    fn header_and_ram_sizes_at_the_top_of_the_address_space_are_refused() {
        // A hostile header: decompression at the last page of the address
        // space (pref_address + init_size wraps) must be refused, not wrap
        // into a RAM check that passes (and must not panic a debug build).
        let mut d = sample(0x3000);
        d[0x258..0x260].copy_from_slice(&0xffff_ffff_ffff_f000u64.to_le_bytes());
        let k = parse("vmlinuz", &d).unwrap();
        let config = BootConfig {
            initrd: &[],
            cmdline: "",
            ram_size: 0x200_0000,
        };
        let e = boot_image("vmlinuz", &k, &config).unwrap_err();
        assert!(e.message.contains("needs RAM up to"), "{e}");
        let d = sample(0x3000);
        let k = parse("vmlinuz", &d).unwrap();
        let huge = BootConfig {
            initrd: &[],
            cmdline: "",
            ram_size: !0xfff,
        };
        let e = boot_image("vmlinuz", &k, &huge).unwrap_err();
        assert!(e.message.contains("ends above 2^64"), "{e}");
    }

    #[test]
    fn too_little_ram_or_a_long_command_line_is_refused() {
        let d = sample(0x3000);
        let k = parse("vmlinuz", &d).unwrap();
        let small = BootConfig {
            initrd: &[],
            cmdline: "",
            ram_size: 0xf0_0000,
        };
        let e = boot_image("vmlinuz", &k, &small).unwrap_err();
        assert!(e.message.contains("needs RAM up to 0x1100000"), "{e}");
        let long = "x".repeat(0x800);
        let config = BootConfig {
            initrd: &[],
            cmdline: &long,
            ram_size: 0x400_0000,
        };
        let e = boot_image("vmlinuz", &k, &config).unwrap_err();
        assert!(e.message.contains("cmdline_size"), "{e}");
    }
}
