//! Packing: one multiboot2 ELF that puts the kernel and every composed
//! region at its physical address, and the GRUB ISO that boots it.
//!
//! The ELF is laid out as
//!
//! ```text
//! 0x00  ELF64 header
//! 0x40  multiboot2 header (magic 0xE85250D6, architecture 0 = i386, end tag)
//! 0x58  program headers: the kernel's PT_LOAD segments, then the region segments
//!  ...  segment bytes, each at a file offset congruent to its address mod 4 KiB
//! ```
//!
//! The multiboot2 header sits right after the ELF header so it is within the
//! first 32 KiB whatever the number of program headers. It is not loaded:
//! GRUB finds it by scanning the file, and takes the entry point from
//! `e_entry` (the kernel's) and the segments from the program headers,
//! loading each at `p_paddr` and zeroing `p_memsz - p_filesz`.
//!
//! GRUB reads only the first 32 KiB ([`MULTIBOOT_SEARCH`]) before loading,
//! and its multiboot loaders refuse a file whose program header table does
//! not end inside them ("program header at a too high offset"), leaving the
//! machine at GRUB's error prompt: at most [`MAX_SEGMENTS`] segments. GRUB
//! also pays for every segment (a relocator chunk and a file read each).
//! So regions are not one segment each: [`region_segments`] packs every
//! run of physically adjacent regions into one `PT_LOAD` segment. Inside a
//! run, a stretch of zero bytes (uninitialised regions, trailing zeros)
//! shorter than [`ZERO_SPLIT`] is written as file bytes; a longer one ends
//! the segment's file bytes (`p_memsz > p_filesz`, GRUB zeroes it) and the
//! next region with content starts a new segment. Regions that are not
//! adjacent are never joined: every byte GRUB writes belongs to a kernel
//! segment or to a region, and every region is in the kernel's
//! `SPEC.image_regions`, which the kernel checks against the memory map.
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
use crate::output::{RegionRecord, RegionsFile};

/// multiboot2 header magic.
pub const MULTIBOOT2_MAGIC: u32 = 0xE852_50D6;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const MB2_HEADER_SIZE: usize = 24;
const PAGE: u64 = 4096;

/// Bytes at the start of the file GRUB's multiboot2 loader reads and
/// searches: the multiboot2 header and every program header must lie in
/// them (`MULTIBOOT_SEARCH` in GRUB's `multiboot2.h`).
pub const MULTIBOOT_SEARCH: usize = 32 * 1024;

/// Most `PT_LOAD` segments a packed ELF can have: the program header table
/// starts after the ELF and multiboot2 headers and must end within
/// [`MULTIBOOT_SEARCH`] (583).
pub const MAX_SEGMENTS: usize = (MULTIBOOT_SEARCH - EHDR_SIZE - MB2_HEADER_SIZE) / PHDR_SIZE;

/// Zero bytes between two pieces of content in a run of adjacent regions
/// that end a segment instead of being written to the file. Measured in
/// Bochs (docs/benchmarks.md): one more segment costs GRUB about as much as
/// reading some tens of KiB more, so shorter stretches (a VMCS page, a
/// stack) are cheaper as file bytes.
pub const ZERO_SPLIT: u64 = 64 * 1024;

/// A packing failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PackError(pub String);

/// One `PT_LOAD` segment of the packed ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Physical (and virtual) load address.
    pub paddr: u64,
    /// File bytes, loaded at `paddr`.
    pub data: Vec<u8>,
    /// Memory size (>= `data.len()`); GRUB zeroes the rest.
    pub mem_size: u64,
    /// `PF_*`.
    pub flags: u32,
}

/// Read the kernel ELF and check its segments against the layout windows.
pub fn read_kernel(file: &str, data: &[u8]) -> Result<(u64, Vec<Segment>), PackError> {
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
        segments.push(Segment {
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

/// `p_flags` of the segment holding a region: every composed region is
/// loaded read-write (the kernel's page tables and the EPTs, not the load,
/// decide who may access it). Only regions with equal flags share a
/// segment.
fn region_flags(_region: &RegionRecord) -> u32 {
    elf::PF_R.0 | elf::PF_W.0
}

/// The segments holding every region: each run of physically adjacent
/// regions (one ending where the next starts, equal flags) becomes one
/// segment, split where [`ZERO_SPLIT`] or more zero bytes separate two
/// pieces of content. Regions must not overlap ([`pack`] checks that
/// first); their order does not matter. Zero-sized regions load nothing.
pub fn region_segments(regions: &[RegionRecord], blob: &[u8]) -> Result<Vec<Segment>, PackError> {
    let mut sorted: Vec<&RegionRecord> = regions.iter().filter(|r| r.size > 0).collect();
    sorted.sort_by_key(|r| r.start);
    let mut segments: Vec<Segment> = Vec::new();
    for r in sorted {
        let data = region_bytes(r, blob)?;
        let end = r
            .start
            .checked_add(r.size)
            .ok_or_else(|| PackError(format!("region \"{}\": overflows", r.name)))?;
        let flags = region_flags(r);
        if let Some(last) = segments.last_mut()
            && last.flags == flags
            && last.paddr.saturating_add(last.mem_size) == r.start
        {
            // Zero bytes between the segment's file bytes and this region's.
            let offset = r.start - last.paddr;
            let zeros = offset - last.data.len() as u64;
            if data.is_empty() {
                last.mem_size = end - last.paddr;
                continue;
            }
            if zeros < ZERO_SPLIT {
                let offset = usize::try_from(offset)
                    .map_err(|_| PackError(format!("region \"{}\": too large", r.name)))?;
                last.data.resize(offset, 0);
                last.data.extend_from_slice(data);
                last.mem_size = end - last.paddr;
                continue;
            }
        }
        segments.push(Segment {
            paddr: r.start,
            data: data.to_vec(),
            mem_size: r.size,
            flags,
        });
    }
    Ok(segments)
}

/// A region's initial bytes in regions.bin.
fn region_bytes<'a>(r: &RegionRecord, blob: &'a [u8]) -> Result<&'a [u8], PackError> {
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
    Ok(data)
}

/// Build the system ELF from the kernel and the composed regions.
pub fn pack(
    kernel_file: &str,
    kernel: &[u8],
    regions: &RegionsFile,
    blob: &[u8],
) -> Result<Vec<u8>, PackError> {
    let (entry, kernel_segments) = read_kernel(kernel_file, kernel)?;
    for r in &regions.regions {
        region_bytes(r, blob)?;
    }
    // Regions against the kernel windows, every region against every other,
    // and all of them against the crash-audit region (which is never loaded:
    // GRUB would clear the records a reset must keep), before any region is
    // merged into a segment.
    let names: Vec<String> = regions
        .regions
        .iter()
        .map(|r| format!("region \"{}\"", r.name))
        .collect();
    let mut ranges: Vec<(u64, u64, &str)> = KERNEL_WINDOWS
        .iter()
        .map(|(name, w)| (w.start.get(), w.end(), *name))
        .chain(
            regions
                .regions
                .iter()
                .zip(&names)
                .map(|(r, name)| (r.start, r.start.saturating_add(r.size), name.as_str())),
        )
        .chain(regions.crash_audit.iter().map(|c| {
            (
                c.start,
                c.start.saturating_add(c.size),
                "the crash-audit region (never loaded)",
            )
        }))
        .collect();
    ranges.sort();
    if let Some(pair) = ranges.windows(2).find(|p| p[1].0 < p[0].1) {
        return Err(PackError(format!(
            "{} at {:#x}-{:#x} overlaps {} at {:#x}-{:#x}",
            pair[1].2, pair[1].0, pair[1].1, pair[0].2, pair[0].0, pair[0].1
        )));
    }
    let loads: Vec<Segment> = kernel_segments
        .into_iter()
        .chain(region_segments(&regions.regions, blob)?)
        .collect();
    if loads.len() > MAX_SEGMENTS {
        return Err(PackError(format!(
            "{} segments: the program header table would end at byte {}, past the first {} \
             bytes GRUB's multiboot2 loader reads (it refuses the file); at most {MAX_SEGMENTS} \
             segments, and regions that are not physically adjacent each need their own",
            loads.len(),
            EHDR_SIZE + MB2_HEADER_SIZE + PHDR_SIZE * loads.len(),
            MULTIBOOT_SEARCH
        )));
    }
    let count = u16::try_from(loads.len())
        .map_err(|_| PackError(format!("{} segments exceed the ELF limit", loads.len())))?;

    let phoff = EHDR_SIZE + MB2_HEADER_SIZE;
    let mut out = vec![0u8; phoff + PHDR_SIZE * loads.len()];
    let mut offsets = Vec::with_capacity(loads.len());
    for l in &loads {
        if l.data.is_empty() {
            offsets.push(0u64);
            continue;
        }
        // p_offset and p_vaddr agree modulo p_align (4 KiB).
        let at = (out.len() as u64).next_multiple_of(PAGE) + l.paddr % PAGE;
        out.resize(at as usize, 0);
        out.extend_from_slice(&l.data);
        offsets.push(at);
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
        ph.extend_from_slice(&PAGE.to_le_bytes());
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
    use crate::elf::build::sample_kernel;

    /// Regions and their blob; `(start, size, content)` each.
    fn records(specs: &[(u64, u64, Vec<u8>)]) -> (Vec<RegionRecord>, Vec<u8>) {
        let mut blob = Vec::new();
        let regions = specs
            .iter()
            .enumerate()
            .map(|(i, (start, size, content))| {
                let r = RegionRecord {
                    name: format!("r{i}"),
                    kind: "memory".into(),
                    start: *start,
                    size: *size,
                    caching: "WB".into(),
                    file_offset: blob.len() as u64,
                    file_size: content.len() as u64,
                };
                blob.extend_from_slice(content);
                r
            })
            .collect();
        (regions, blob)
    }

    /// What GRUB leaves in memory: every region reads back as its content
    /// followed by zeros, and the segments cover exactly the regions.
    fn assert_loads(specs: &[(u64, u64, Vec<u8>)], segments: &[Segment]) {
        for (start, size, content) in specs.iter().filter(|s| s.1 > 0) {
            let s = segments
                .iter()
                .find(|s| s.paddr <= *start && *start < s.paddr + s.mem_size)
                .unwrap_or_else(|| panic!("{start:#x} is not loaded"));
            assert!(start + size <= s.paddr + s.mem_size, "{start:#x} is cut");
            let from = (start - s.paddr) as usize;
            let to = (from + *size as usize).min(s.data.len());
            let mut loaded = s.data.get(from..to).unwrap_or_default().to_vec();
            loaded.resize(*size as usize, 0);
            let mut want = content.clone();
            want.resize(*size as usize, 0);
            assert!(loaded == want, "bytes of {start:#x}");
        }
        let covered: u64 = segments.iter().map(|s| s.mem_size).sum();
        assert_eq!(covered, specs.iter().map(|s| s.1).sum::<u64>());
        for s in segments {
            assert!(s.data.len() as u64 <= s.mem_size);
        }
    }

    /// The regions of `n` subjects as the composer lays them out back to
    /// back: VMCS (zero), I/O and MSR bitmaps (full), info page (partial),
    /// stack (zero), program (partial), page tables (partial).
    fn subject_layout(n: u64) -> Vec<(u64, u64, Vec<u8>)> {
        let pieces: [(u64, usize); 7] = [
            (0x1000, 0),
            (0x2000, 0x2000),
            (0x1000, 0x1000),
            (0x1000, 300),
            (0x4000, 0),
            (0x2000, 5000),
            (0x7000, 0x6004),
        ];
        let mut at = 0x30_0000;
        let mut specs = Vec::new();
        for i in 0..n {
            for (size, len) in pieces {
                let content = (0..len).map(|b| (b as u64 + i) as u8 | 1).collect();
                specs.push((at, size, content));
                at += size;
            }
        }
        specs
    }

    #[test]
    fn adjacent_regions_give_one_segment_whatever_their_number() {
        for n in [1, 2, 50, 500] {
            let specs = subject_layout(n);
            let (regions, blob) = records(&specs);
            let segments = region_segments(&regions, &blob).unwrap();
            assert_eq!(segments.len(), 1, "{n} subjects");
            assert_loads(&specs, &segments);
            // The last region's trailing zeros are not file bytes.
            let last = segments.last().unwrap();
            assert_eq!(last.mem_size - last.data.len() as u64, 0x1000 - 4);
        }
    }

    #[test]
    fn order_of_the_records_does_not_matter() {
        let specs = subject_layout(3);
        let (mut regions, blob) = records(&specs);
        let forward = region_segments(&regions, &blob).unwrap();
        regions.reverse();
        assert_eq!(region_segments(&regions, &blob).unwrap(), forward);
    }

    #[test]
    fn long_zero_stretches_are_not_file_bytes() {
        let specs = vec![
            (0x30_0000, 0x1000, vec![1; 10]),
            (0x30_1000, 0x10_0000, Vec::new()),
            (0x40_1000, 0x1000, vec![2; 0x1000]),
            (0x40_2000, ZERO_SPLIT - 0x1000, Vec::new()),
            (0x40_2000 + ZERO_SPLIT - 0x1000, 0x1000, vec![3; 4]),
            (0x41_2000 + ZERO_SPLIT, 0x1000, Vec::new()),
        ];
        let (regions, blob) = records(&specs);
        let segments = region_segments(&regions, &blob).unwrap();
        assert_loads(&specs, &segments);
        // The 1 MiB zero region ends the first segment; a stretch just
        // under ZERO_SPLIT is written; the last region is not adjacent.
        let shape: Vec<(u64, usize, u64)> = segments
            .iter()
            .map(|s| (s.paddr, s.data.len(), s.mem_size))
            .collect();
        assert_eq!(
            shape,
            [
                (0x30_0000, 10, 0x10_1000),
                (0x40_1000, ZERO_SPLIT as usize + 4, ZERO_SPLIT + 0x1000),
                (0x41_2000 + ZERO_SPLIT, 0, 0x1000),
            ]
        );
    }

    #[test]
    fn gaps_between_regions_are_never_loaded() {
        let specs = vec![
            (0x30_0000, 0x1000, vec![1; 0x1000]),
            (0x30_2000, 0x1000, vec![2; 0x1000]),
            (0x30_3000, 0, Vec::new()),
        ];
        let (regions, blob) = records(&specs);
        let segments = region_segments(&regions, &blob).unwrap();
        assert_eq!(segments.len(), 2);
        assert_loads(&specs, &segments);
    }

    fn regions_file(specs: &[(u64, u64, Vec<u8>)]) -> (RegionsFile, Vec<u8>) {
        let (regions, blob) = records(specs);
        let file = RegionsFile {
            format: crate::output::REGIONS_FORMAT.into(),
            system: "t".into(),
            regions,
            crash_audit: None,
        };
        (file, blob)
    }

    #[test]
    fn a_region_over_the_crash_audit_region_is_refused() {
        let (mut file, blob) = regions_file(&[(0x30_0000, 0x2000, vec![1; 4])]);
        file.crash_audit = Some(crate::output::CrashAuditRecord {
            name: "crash_audit".into(),
            start: 0x30_1000,
            size: 0x2000,
            caching: "UC".into(),
            slot_count: 1,
            policy_hash: format!("{:#018x}", 0),
        });
        let error = pack("k", &sample_kernel(), &file, &blob).unwrap_err();
        assert!(
            error
                .0
                .contains("the crash-audit region (never loaded) at 0x301000-0x303000"),
            "{error:?}"
        );
        file.crash_audit.as_mut().unwrap().start = 0x40_0000;
        assert!(pack("k", &sample_kernel(), &file, &blob).is_ok());
    }

    #[test]
    fn program_headers_stay_in_the_first_32_kib() {
        assert_eq!(MAX_SEGMENTS, 583);
        // Every region on its own page, one page apart: one segment each.
        let spread = |n: u64| -> Vec<(u64, u64, Vec<u8>)> {
            (0..n)
                .map(|i| (0x30_0000 + 0x2000 * i, 0x1000, vec![i as u8; 3]))
                .collect()
        };
        let fits = MAX_SEGMENTS as u64 - 3;
        let (file, blob) = regions_file(&spread(fits));
        let elf = pack("k", &sample_kernel(), &file, &blob).unwrap();
        let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
        assert_eq!(phnum, MAX_SEGMENTS);
        assert!(EHDR_SIZE + MB2_HEADER_SIZE + PHDR_SIZE * phnum <= MULTIBOOT_SEARCH);
        for i in 0..phnum {
            let at = EHDR_SIZE + MB2_HEADER_SIZE + PHDR_SIZE * i;
            let word = |o: usize| u64::from_le_bytes(elf[at + o..at + o + 8].try_into().unwrap());
            assert_eq!(
                word(8) % PAGE,
                word(16) % PAGE,
                "p_offset vs p_vaddr of {i}"
            );
        }
        let (file, blob) = regions_file(&spread(fits + 1));
        let err = pack("k", &sample_kernel(), &file, &blob)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("584 segments: the program header table"),
            "{err}"
        );
        // The same number of adjacent regions packs into one segment.
        let adjacent: Vec<_> = (0..10 * fits)
            .map(|i| (0x30_0000 + 0x1000 * i, 0x1000, vec![i as u8; 3]))
            .collect();
        let (file, blob) = regions_file(&adjacent);
        let elf = pack("k", &sample_kernel(), &file, &blob).unwrap();
        assert_eq!(u16::from_le_bytes([elf[56], elf[57]]), 4);
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso_date(0), "1970010100000000");
        assert_eq!(iso_date(DEFAULT_SOURCE_DATE_EPOCH), "2026010100000000");
        assert_eq!(iso_date(951_782_400 + 3_661), "2000022901010100");
    }
}
