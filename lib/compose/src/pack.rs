//! Packing: one multiboot2 ELF that puts the kernel and every composed
//! region at its physical address, and the GRUB ISO that boots it.
//!
//! The ELF is laid out as
//!
//! ```text
//! 0x00  ELF64 header
//! 0x40  multiboot2 header (magic 0xE85250D6, architecture 0 = i386, end tag)
//! 0x58  program headers: the kernel's PT_LOAD segments, then one per region
//!  ...  segment bytes, each at a 4 KiB-aligned offset
//! ```
//!
//! The multiboot2 header sits right after the ELF header so it is within the
//! first 32 KiB whatever the number of program headers. It is not loaded:
//! GRUB finds it by scanning the file, and takes the entry point from
//! `e_entry` (the kernel's) and the segments from the program headers,
//! loading each at `p_paddr` and zeroing `p_memsz - p_filesz`.
//!
//! Before writing, every kernel segment is checked to lie inside its
//! `septum_abi::layout` window with that window's rights, and no two loaded
//! ranges may overlap: the kernel's page tables (built before the kernel
//! was) map exactly those windows with exactly those rights.

use std::path::Path;
use std::process::Command;

use object::Endian;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};

use crate::alloc::KERNEL_WINDOWS;
use crate::output::RegionsFile;

/// multiboot2 header magic.
pub const MULTIBOOT2_MAGIC: u32 = 0xE852_50D6;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const MB2_HEADER_SIZE: usize = 24;

/// A packing failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PackError(pub String);

/// A loadable segment of the kernel ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelSegment {
    /// Physical load address.
    pub paddr: u64,
    /// File bytes.
    pub data: Vec<u8>,
    /// Memory size.
    pub mem_size: u64,
    /// `PF_*`.
    pub flags: u32,
}

/// Read the kernel ELF and check its segments against the layout windows.
pub fn read_kernel(file: &str, data: &[u8]) -> Result<(u64, Vec<KernelSegment>), PackError> {
    let err = |m: String| PackError(format!("{file}: {m}"));
    let header = elf::FileHeader64::<object::Endianness>::parse(data)
        .map_err(|e| err(format!("not a 64-bit ELF file ({e})")))?;
    let endian = header
        .endian()
        .map_err(|e| err(format!("unsupported byte order ({e})")))?;
    if !endian.is_little_endian() || header.e_machine(endian) != elf::EM_X86_64 {
        return Err(err("not an x86-64 little-endian ELF file".into()));
    }
    let entry = header.e_entry(endian);
    let mut segments = Vec::new();
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| err(format!("bad program header table ({e})")))?;
    for (i, ph) in phdrs.iter().enumerate() {
        if ph.p_type(endian) != elf::PT_LOAD || ph.p_memsz(endian) == 0 {
            continue;
        }
        let (paddr, memsz, flags) = (ph.p_paddr(endian), ph.p_memsz(endian), ph.p_flags(endian).0);
        if ph.p_vaddr(endian) != paddr {
            return Err(err(format!(
                "segment {i}: virtual address {:#x} differs from physical {paddr:#x} (the \
                 kernel is identity-mapped and must be linked so)",
                ph.p_vaddr(endian)
            )));
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|()| err(format!("segment {i}: data lies outside the file")))?;
        if bytes.len() as u64 > memsz {
            return Err(err(format!("segment {i}: file size exceeds memory size")));
        }
        let end = paddr
            .checked_add(memsz)
            .ok_or_else(|| err(format!("segment {i}: overflows")))?;
        let Some((name, _)) = KERNEL_WINDOWS
            .iter()
            .find(|(_, w)| w.start.get() <= paddr && end <= w.end())
        else {
            return Err(err(format!(
                "segment {i} at {paddr:#x}-{end:#x} lies in no kernel window (text {}, rodata \
                 {}, data {}; see septum_abi::layout)",
                window_text(0),
                window_text(1),
                window_text(2)
            )));
        };
        let (r, w, x) = (
            flags & elf::PF_R.0 != 0,
            flags & elf::PF_W.0 != 0,
            flags & elf::PF_X.0 != 0,
        );
        let expected = match *name {
            "kernel|text" => (true, false, true),
            "kernel|rodata" => (true, false, false),
            _ => (true, true, false),
        };
        if (r, w, x) != expected {
            return Err(err(format!(
                "segment {i} at {paddr:#x} in window {name} has rights {}, the window needs {}",
                rights_text(r, w, x),
                rights_text(expected.0, expected.1, expected.2)
            )));
        }
        segments.push(KernelSegment {
            paddr,
            data: bytes.to_vec(),
            mem_size: memsz,
            flags,
        });
    }
    let text = KERNEL_WINDOWS[0].1;
    if !(text.start.get()..text.end()).contains(&entry) {
        return Err(err(format!(
            "entry point {entry:#x} is not in the kernel text window"
        )));
    }
    if segments.is_empty() {
        return Err(err("no loadable segment".into()));
    }
    Ok((entry, segments))
}

fn window_text(i: usize) -> String {
    let w = KERNEL_WINDOWS[i].1;
    format!("{:#x}-{:#x}", w.start.get(), w.end())
}

fn rights_text(r: bool, w: bool, x: bool) -> String {
    format!(
        "{}{}{}",
        if r { 'r' } else { '-' },
        if w { 'w' } else { '-' },
        if x { 'x' } else { '-' }
    )
}

/// The multiboot2 header: magic, architecture 0 (i386 protected mode),
/// header length, checksum, and the end tag (type 0, size 8).
pub fn multiboot2_header() -> [u8; MB2_HEADER_SIZE] {
    let length = MB2_HEADER_SIZE as u32;
    let checksum = 0u32.wrapping_sub(MULTIBOOT2_MAGIC.wrapping_add(length));
    let mut h = [0u8; MB2_HEADER_SIZE];
    h[0..4].copy_from_slice(&MULTIBOOT2_MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&0u32.to_le_bytes());
    h[8..12].copy_from_slice(&length.to_le_bytes());
    h[12..16].copy_from_slice(&checksum.to_le_bytes());
    h[16..18].copy_from_slice(&0u16.to_le_bytes());
    h[18..20].copy_from_slice(&0u16.to_le_bytes());
    h[20..24].copy_from_slice(&8u32.to_le_bytes());
    h
}

struct Load<'a> {
    name: String,
    paddr: u64,
    data: &'a [u8],
    mem_size: u64,
    flags: u32,
}

/// Build the system ELF from the kernel and the composed regions.
pub fn pack(
    kernel_file: &str,
    kernel: &[u8],
    regions: &RegionsFile,
    blob: &[u8],
) -> Result<Vec<u8>, PackError> {
    let (entry, kernel_segments) = read_kernel(kernel_file, kernel)?;
    let mut loads: Vec<Load<'_>> = kernel_segments
        .iter()
        .map(|s| Load {
            name: format!("kernel segment at {:#x}", s.paddr),
            paddr: s.paddr,
            data: &s.data,
            mem_size: s.mem_size,
            flags: s.flags,
        })
        .collect();
    for r in &regions.regions {
        let outside = || PackError(format!("region \"{}\": bytes outside regions.bin", r.name));
        let from = usize::try_from(r.file_offset).map_err(|_| outside())?;
        let to = from.checked_add(usize::try_from(r.file_size).map_err(|_| outside())?);
        let data = to.and_then(|to| blob.get(from..to)).ok_or_else(outside)?;
        if data.len() as u64 > r.size {
            return Err(PackError(format!(
                "region \"{}\": more bytes than its size",
                r.name
            )));
        }
        loads.push(Load {
            name: format!("region \"{}\"", r.name),
            paddr: r.start,
            data,
            mem_size: r.size,
            flags: elf::PF_R.0 | elf::PF_W.0,
        });
    }
    // Regions against the kernel windows, and every loaded range against
    // every other.
    let mut ranges: Vec<(u64, u64, &str)> = KERNEL_WINDOWS
        .iter()
        .map(|(name, w)| (w.start.get(), w.end(), *name))
        .chain(
            loads
                .iter()
                .skip(kernel_segments.len())
                .map(|l| (l.paddr, l.paddr.saturating_add(l.mem_size), l.name.as_str())),
        )
        .collect();
    ranges.sort();
    if let Some(pair) = ranges.windows(2).find(|p| p[1].0 < p[0].1) {
        return Err(PackError(format!(
            "{} at {:#x}-{:#x} overlaps {} at {:#x}-{:#x}",
            pair[1].2, pair[1].0, pair[1].1, pair[0].2, pair[0].0, pair[0].1
        )));
    }
    let count = u16::try_from(loads.len()).map_err(|_| {
        PackError(format!(
            "{} segments exceed the ELF limit of 65535",
            loads.len()
        ))
    })?;

    let phoff = EHDR_SIZE + MB2_HEADER_SIZE;
    let mut out = vec![0u8; phoff + PHDR_SIZE * loads.len()];
    let mut offsets = Vec::with_capacity(loads.len());
    for l in &loads {
        if l.data.is_empty() {
            offsets.push(0u64);
            continue;
        }
        let at = out.len().next_multiple_of(4096);
        out.resize(at, 0);
        out.extend_from_slice(l.data);
        offsets.push(at as u64);
    }
    let mut h = Vec::with_capacity(EHDR_SIZE);
    h.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.extend_from_slice(&elf::ET_EXEC.0.to_le_bytes());
    h.extend_from_slice(&elf::EM_X86_64.0.to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&entry.to_le_bytes());
    h.extend_from_slice(&(phoff as u64).to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&(EHDR_SIZE as u16).to_le_bytes());
    h.extend_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
    h.extend_from_slice(&count.to_le_bytes());
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    out[..EHDR_SIZE].copy_from_slice(&h);
    out[EHDR_SIZE..phoff].copy_from_slice(&multiboot2_header());
    for (i, (l, off)) in loads.iter().zip(&offsets).enumerate() {
        let mut ph = Vec::with_capacity(PHDR_SIZE);
        ph.extend_from_slice(&elf::PT_LOAD.0.to_le_bytes());
        ph.extend_from_slice(&l.flags.to_le_bytes());
        ph.extend_from_slice(&off.to_le_bytes());
        ph.extend_from_slice(&l.paddr.to_le_bytes());
        ph.extend_from_slice(&l.paddr.to_le_bytes());
        ph.extend_from_slice(&(l.data.len() as u64).to_le_bytes());
        ph.extend_from_slice(&l.mem_size.to_le_bytes());
        ph.extend_from_slice(&4096u64.to_le_bytes());
        let at = phoff + i * PHDR_SIZE;
        out[at..at + PHDR_SIZE].copy_from_slice(&ph);
    }
    Ok(out)
}

/// Timestamp of every file and volume date in the ISO when
/// `SOURCE_DATE_EPOCH` is not set: 2026-01-01 00:00:00 UTC.
pub const DEFAULT_SOURCE_DATE_EPOCH: u64 = 1_767_225_600;

/// `YYYYMMDDhhmmss00`, the ISO 9660 date form xorriso takes, of a Unix time.
pub fn iso_date(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Make a GRUB ISO booting `elf` with multiboot2 (PLATFORM.md), using
/// `work` as scratch directory (created and removed).
pub fn make_iso(elf_path: &Path, iso_path: &Path, work: &Path) -> Result<(), PackError> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        PackError(format!("{}: {what}: {e}", p.display()))
    };
    let grub_dir = work.join("boot").join("grub");
    std::fs::create_dir_all(&grub_dir).map_err(|e| io("cannot create", &grub_dir, e))?;
    let cfg = grub_dir.join("grub.cfg");
    std::fs::write(
        &cfg,
        "set timeout=0\nmenuentry \"septum\" {\n  multiboot2 /boot/system.elf\n  boot\n}\n",
    )
    .map_err(|e| io("cannot write", &cfg, e))?;
    let target = work.join("boot").join("system.elf");
    std::fs::copy(elf_path, &target).map_err(|e| io("cannot copy", elf_path, e))?;
    // Same ELF, same ISO: every file date and the volume dates are pinned
    // (SOURCE_DATE_EPOCH if set, else a fixed date); these two options go
    // through grub-mkrescue to `xorriso -as mkisofs`.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_SOURCE_DATE_EPOCH);
    let date = iso_date(epoch);
    let output = Command::new("grub-mkrescue")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .arg("-o")
        .arg(iso_path)
        .arg("--install-modules=multiboot2 normal iso9660 biosdisk")
        .arg("--locales=")
        .arg("--fonts=")
        .arg("--themes=")
        .arg(work)
        .arg(format!("--modification-date={date}"))
        .arg("--set_all_file_dates")
        .arg(&date)
        .output();
    let _ = std::fs::remove_dir_all(work);
    let output = output.map_err(|e| {
        PackError(format!(
            "cannot run grub-mkrescue ({e}); install grub-pc-bin and xorriso (see docs/compose.md)"
        ))
    })?;
    if !output.status.success() {
        return Err(PackError(format!(
            "grub-mkrescue failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0), "1970010100000000");
        assert_eq!(iso_date(DEFAULT_SOURCE_DATE_EPOCH), "2026010100000000");
        assert_eq!(iso_date(951_782_400 + 3_661), "2000022901010100");
    }
}
