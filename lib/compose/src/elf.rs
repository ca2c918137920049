//! Reading a subject's ELF program.
//!
//! A native subject is a static x86-64 ELF executable linked at
//! [`septum_abi::layout::SUBJECT_IMAGE_BASE`] whose `PT_LOAD` segments are
//! page aligned and lie in the image window `[SUBJECT_IMAGE_BASE,
//! SUBJECT_IMAGE_END)` (the SDK's linker script makes them so). The policy
//! keeps every explicit mapping out of that window and the info page and
//! stack lie below it, so checking the window here, per file, rules out
//! collisions and names the culprit segment and file.
//!
//! The composer gives every loadable segment its own physical region and
//! maps it at its link address with the rights of its `p_flags`, so the
//! subject's text is never writable and its data never executable. Anything
//! else (a 32-bit or big-endian file, another machine, a relocatable object,
//! a truncated file, unaligned, overlapping or out-of-window segments) is
//! refused with a message naming the file; the parser is the `object`
//! crate's, which bounds-checks every read.
//!
//! Two non-loaded parts of the file are read as well: the `.septum.needs`
//! section, where the SDK's `needs!` declares the names the subject looks
//! up ([`section`], checked in [`crate::contract`]), and the symbol table,
//! whose functions become the subject's symbol map for resolving fault
//! addresses ([`functions`], [`crate::symbols`]).

use object::Endian;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use septum_abi::VirtAddr;
use septum_abi::layout::{PAGE_SIZE, SUBJECT_IMAGE_BASE, SUBJECT_IMAGE_END};

/// A loadable segment of a subject program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Link (virtual) address, page aligned.
    pub virtual_address: VirtAddr,
    /// Size in memory, rounded up to whole pages.
    pub mem_size: u64,
    /// File content (the rest of `mem_size` is zero).
    pub data: Vec<u8>,
    /// Writable (`PF_W`).
    pub writable: bool,
    /// Executable (`PF_X`).
    pub executable: bool,
}

impl Segment {
    /// Region-name suffix from the rights: `text`, `rodata` or `data`.
    pub fn kind_name(&self) -> &'static str {
        match (self.writable, self.executable) {
            (false, true) => "text",
            (false, false) => "rodata",
            (true, false) => "data",
            (true, true) => "data_exec",
        }
    }
}

/// A subject program: entry point and loadable segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectImage {
    /// Entry point (`e_entry`).
    pub entry: VirtAddr,
    /// `PT_LOAD` segments in file order.
    pub segments: Vec<Segment>,
}

/// Why an ELF file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ElfError {
    /// The file, as named to the user.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

fn refuse(file: &str, message: impl Into<String>) -> ElfError {
    ElfError {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// Parse a subject program. `file` only names it in errors.
pub fn parse_subject(file: &str, data: &[u8]) -> Result<SubjectImage, ElfError> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data)
        .map_err(|e| refuse(file, format!("not a 64-bit ELF file ({e})")))?;
    let endian = header
        .endian()
        .map_err(|e| refuse(file, format!("unsupported ELF byte order ({e})")))?;
    if !endian.is_little_endian() {
        return Err(refuse(
            file,
            "ELF file is big-endian; subjects must be x86-64 (little-endian)",
        ));
    }
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Err(refuse(
            file,
            format!(
                "ELF machine is {}, expected x86-64 (62)",
                header.e_machine(endian)
            ),
        ));
    }
    if header.e_type(endian) != elf::ET_EXEC {
        return Err(refuse(
            file,
            format!(
                "ELF type is {}, expected a static executable (ET_EXEC = 2)",
                header.e_type(endian)
            ),
        ));
    }
    let program_headers = header
        .program_headers(endian, data)
        .map_err(|e| refuse(file, format!("bad program header table ({e})")))?;
    let mut segments: Vec<Segment> = Vec::new();
    // (start, end, program header index) of each segment, for the overlap
    // check after the loop.
    let mut placed: Vec<(u64, u64, usize)> = Vec::new();
    for (index, ph) in program_headers.iter().enumerate() {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let vaddr = ph.p_vaddr(endian);
        let memsz = ph.p_memsz(endian);
        let filesz = ph.p_filesz(endian);
        if memsz == 0 {
            continue;
        }
        if vaddr % PAGE_SIZE != 0 {
            return Err(refuse(
                file,
                format!(
                    "segment {index} at {vaddr:#x} is not page aligned (link subjects with \
                     the SDK's linker script)"
                ),
            ));
        }
        if filesz > memsz {
            return Err(refuse(
                file,
                format!("segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}"),
            ));
        }
        let bytes = ph
            .data(endian, data)
            .map_err(|()| refuse(file, format!("segment {index}: data lies outside the file")))?;
        let mem_size = round_up(memsz, PAGE_SIZE)
            .ok_or_else(|| refuse(file, format!("segment {index}: size overflows")))?;
        let end = vaddr
            .checked_add(mem_size)
            .ok_or_else(|| refuse(file, format!("segment {index}: address range overflows")))?;
        let window = SUBJECT_IMAGE_BASE.get()..SUBJECT_IMAGE_END.get();
        if vaddr < window.start || end > window.end {
            return Err(refuse(
                file,
                format!(
                    "segment {index} at {vaddr:#x}-{end:#x} lies outside the subject image window \
                     {:#x}-{:#x} (link subjects with the SDK's linker script)",
                    window.start, window.end
                ),
            ));
        }
        let flags = ph.p_flags(endian).0;
        if flags & elf::PF_R.0 == 0 {
            return Err(refuse(
                file,
                format!("segment {index} at {vaddr:#x} is not readable"),
            ));
        }
        placed.push((vaddr, end, index));
        segments.push(Segment {
            virtual_address: VirtAddr(vaddr),
            mem_size,
            data: bytes.to_vec(),
            writable: flags & elf::PF_W.0 != 0,
            executable: flags & elf::PF_X.0 != 0,
        });
    }
    if let Some((index, vaddr, other)) = first_overlap(placed) {
        return Err(refuse(
            file,
            format!("segment {index} at {vaddr:#x} overlaps the segment at {other:#x}"),
        ));
    }
    if segments.is_empty() {
        return Err(refuse(file, "ELF file has no loadable segment"));
    }
    Ok(SubjectImage {
        entry: VirtAddr(header.e_entry(endian)),
        segments,
    })
}

/// The overlap to report among `placed` (start, end, program header index):
/// of the overlapping pairs of neighbours by address, the one whose later
/// segment (by index) comes first, as (that index, its start, the other's
/// start). Sorting, not comparing every pair: a file may hold 65,535
/// program headers (more with `PN_XNUM`), and comparing each segment with
/// all earlier ones took seconds there. Any overlap shows between
/// neighbours: if `a` overlaps `c` and `b` starts between them, `a`
/// overlaps `b`.
fn first_overlap(mut placed: Vec<(u64, u64, usize)>) -> Option<(usize, u64, u64)> {
    placed.sort_unstable_by_key(|&(start, _, index)| (start, index));
    placed
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] if a.1 > b.0 => {
                let (later, earlier) = if a.2 > b.2 { (a, b) } else { (b, a) };
                Some((later.2, later.0, earlier.0))
            }
            _ => None,
        })
        .min_by_key(|&(index, _, _)| index)
}

fn header<'d>(
    file: &str,
    data: &'d [u8],
) -> Result<
    (
        &'d elf::FileHeader64<object::Endianness>,
        object::Endianness,
    ),
    ElfError,
> {
    let header = elf::FileHeader64::<object::Endianness>::parse(data)
        .map_err(|e| refuse(file, format!("not a 64-bit ELF file ({e})")))?;
    let endian = header
        .endian()
        .map_err(|e| refuse(file, format!("unsupported ELF byte order ({e})")))?;
    Ok((header, endian))
}

/// The contents of the section called `name`, or `None` if the file has no
/// such section (or no section table at all).
pub fn section<'d>(file: &str, data: &'d [u8], name: &str) -> Result<Option<&'d [u8]>, ElfError> {
    let (header, endian) = header(file, data)?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| refuse(file, format!("bad section table ({e})")))?;
    let Some((_, section)) = sections.section_by_name(endian, name.as_bytes()) else {
        return Ok(None);
    };
    section
        .data(endian, data)
        .map(Some)
        .map_err(|e| refuse(file, format!("section {name}: {e}")))
}

/// A function from the symbol table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// First address.
    pub start: u64,
    /// Size in bytes (0 if the symbol table does not say).
    pub size: u64,
    /// Name as stored (mangled for Rust).
    pub name: String,
}

/// The file's function symbols (`STT_FUNC` with an address), sorted by
/// address; empty if the file has no symbol table (stripped).
pub fn functions(file: &str, data: &[u8]) -> Result<Vec<Function>, ElfError> {
    let (header, endian) = header(file, data)?;
    let sections = header
        .sections(endian, data)
        .map_err(|e| refuse(file, format!("bad section table ({e})")))?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| refuse(file, format!("bad symbol table ({e})")))?;
    let mut out = Vec::new();
    for sym in symbols.iter() {
        if sym.st_type() != elf::STT_FUNC || sym.st_value(endian) == 0 {
            continue;
        }
        let name = symbols
            .symbol_name(endian, sym)
            .map_err(|e| refuse(file, format!("bad symbol name ({e})")))?;
        out.push(Function {
            start: sym.st_value(endian),
            size: sym.st_size(endian),
            name: String::from_utf8_lossy(name).into_owned(),
        });
    }
    out.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
    out.dedup_by(|b, a| a.start == b.start);
    Ok(out)
}

/// `value` rounded up to a multiple of `align` (a power of two).
pub(crate) fn round_up(value: u64, align: u64) -> Option<u64> {
    Some(value.checked_add(align - 1)? & !(align - 1))
}

/// Building minimal ELF executables, for tests, benchmarks and the policy
/// generator (no toolchain needed to compose a synthetic system).
pub mod build {
    /// One segment to emit: virtual address, bytes, memory size, `p_flags`.
    pub struct SegmentSpec<'a> {
        /// Link address.
        pub vaddr: u64,
        /// File content.
        pub data: &'a [u8],
        /// Size in memory (>= data length).
        pub mem_size: u64,
        /// `PF_*` flags.
        pub flags: u32,
    }

    /// A kernel-shaped executable for pack tests: text (r-x), rodata (r--)
    /// and data (rw-, with bss) inside the kernel windows of
    /// `septum_abi::layout`.
    pub fn sample_kernel() -> Vec<u8> {
        executable(
            0x10_0000,
            &[
                SegmentSpec {
                    vaddr: 0x10_0000,
                    data: &[0x90; 16],
                    mem_size: 16,
                    flags: 5,
                },
                SegmentSpec {
                    vaddr: 0x20_0000,
                    data: b"rodata",
                    mem_size: 6,
                    flags: 4,
                },
                SegmentSpec {
                    vaddr: 0x24_0000,
                    data: &[7; 8],
                    mem_size: 0x4000,
                    flags: 6,
                },
            ],
        )
    }

    /// A static little-endian x86-64 ELF executable with the given segments
    /// (each at a page-aligned file offset) and entry point.
    pub fn executable(entry: u64, segments: &[SegmentSpec<'_>]) -> Vec<u8> {
        const EHDR: usize = 64;
        const PHDR: usize = 56;
        let mut out = vec![0u8; EHDR + PHDR * segments.len()];
        let mut offsets = Vec::new();
        for seg in segments {
            let offset = out.len().next_multiple_of(4096);
            out.resize(offset, 0);
            out.extend_from_slice(seg.data);
            offsets.push(offset as u64);
        }
        let mut header = Vec::with_capacity(EHDR);
        header.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        header.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
        header.extend_from_slice(&1u32.to_le_bytes());
        header.extend_from_slice(&entry.to_le_bytes());
        header.extend_from_slice(&(EHDR as u64).to_le_bytes()); // e_phoff
        header.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&(EHDR as u16).to_le_bytes());
        header.extend_from_slice(&(PHDR as u16).to_le_bytes());
        header.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        header.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        out[..EHDR].copy_from_slice(&header);
        for (i, (seg, offset)) in segments.iter().zip(&offsets).enumerate() {
            let mut ph = Vec::with_capacity(PHDR);
            ph.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            ph.extend_from_slice(&seg.flags.to_le_bytes());
            ph.extend_from_slice(&offset.to_le_bytes());
            ph.extend_from_slice(&seg.vaddr.to_le_bytes());
            ph.extend_from_slice(&seg.vaddr.to_le_bytes());
            ph.extend_from_slice(&(seg.data.len() as u64).to_le_bytes());
            ph.extend_from_slice(&seg.mem_size.to_le_bytes());
            ph.extend_from_slice(&4096u64.to_le_bytes());
            let at = EHDR + i * PHDR;
            out[at..at + PHDR].copy_from_slice(&ph);
        }
        out
    }

    /// A function symbol for [`with_sections`]: name, address, size.
    pub struct FunctionSpec<'a> {
        /// Symbol name.
        pub name: &'a str,
        /// Address.
        pub address: u64,
        /// Size in bytes.
        pub size: u64,
    }

    /// `elf` (from [`executable`]) with a section table appended: one
    /// `SHT_PROGBITS` section per `(name, bytes)`, then `.symtab`/`.strtab`
    /// with `functions` (if any) and `.shstrtab`.
    pub fn with_sections(
        mut elf: Vec<u8>,
        sections: &[(&str, &[u8])],
        functions: &[FunctionSpec<'_>],
    ) -> Vec<u8> {
        struct Shdr {
            name: u32,
            kind: u32,
            offset: u64,
            size: u64,
            link: u32,
            info: u32,
            entsize: u64,
        }
        let mut shstrtab = vec![0u8];
        let mut name = |n: &str| {
            let at = shstrtab.len() as u32;
            shstrtab.extend_from_slice(n.as_bytes());
            shstrtab.push(0);
            at
        };
        let mut headers = vec![Shdr {
            name: 0,
            kind: 0,
            offset: 0,
            size: 0,
            link: 0,
            info: 0,
            entsize: 0,
        }];
        let append = |elf: &mut Vec<u8>, bytes: &[u8]| {
            let offset = elf.len().next_multiple_of(8);
            elf.resize(offset, 0);
            elf.extend_from_slice(bytes);
            offset as u64
        };
        for (n, bytes) in sections {
            let offset = append(&mut elf, bytes);
            headers.push(Shdr {
                name: name(n),
                kind: 1,
                offset,
                size: bytes.len() as u64,
                link: 0,
                info: 0,
                entsize: 0,
            });
        }
        if !functions.is_empty() {
            let mut strtab = vec![0u8];
            let mut symtab = vec![0u8; 24];
            for f in functions {
                let at = strtab.len() as u32;
                strtab.extend_from_slice(f.name.as_bytes());
                strtab.push(0);
                symtab.extend_from_slice(&at.to_le_bytes());
                symtab.push(0x12); // STB_GLOBAL, STT_FUNC
                symtab.push(0);
                symtab.extend_from_slice(&1u16.to_le_bytes()); // any defined section
                symtab.extend_from_slice(&f.address.to_le_bytes());
                symtab.extend_from_slice(&f.size.to_le_bytes());
            }
            let strtab_index = headers.len() as u32 + 1;
            let offset = append(&mut elf, &symtab);
            headers.push(Shdr {
                name: name(".symtab"),
                kind: 2,
                offset,
                size: symtab.len() as u64,
                link: strtab_index,
                info: 1,
                entsize: 24,
            });
            let offset = append(&mut elf, &strtab);
            headers.push(Shdr {
                name: name(".strtab"),
                kind: 3,
                offset,
                size: strtab.len() as u64,
                link: 0,
                info: 0,
                entsize: 0,
            });
        }
        let shstrndx = headers.len();
        let shstr_name = name(".shstrtab");
        let offset = append(&mut elf, &shstrtab);
        headers.push(Shdr {
            name: shstr_name,
            kind: 3,
            offset,
            size: shstrtab.len() as u64,
            link: 0,
            info: 0,
            entsize: 0,
        });
        let shoff = elf.len().next_multiple_of(8);
        elf.resize(shoff, 0);
        for h in &headers {
            elf.extend_from_slice(&h.name.to_le_bytes());
            elf.extend_from_slice(&h.kind.to_le_bytes());
            elf.extend_from_slice(&0u64.to_le_bytes()); // flags
            elf.extend_from_slice(&0u64.to_le_bytes()); // addr
            elf.extend_from_slice(&h.offset.to_le_bytes());
            elf.extend_from_slice(&h.size.to_le_bytes());
            elf.extend_from_slice(&h.link.to_le_bytes());
            elf.extend_from_slice(&h.info.to_le_bytes());
            elf.extend_from_slice(&1u64.to_le_bytes()); // addralign
            elf.extend_from_slice(&h.entsize.to_le_bytes());
        }
        elf[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[58..60].copy_from_slice(&64u16.to_le_bytes());
        elf[60..62].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        elf[62..64].copy_from_slice(&(shstrndx as u16).to_le_bytes());
        elf
    }

    /// A small subject program at the SDK's link address: text (r-x),
    /// rodata (r--), data+bss (rw-). Used wherever a real subject build is
    /// not needed.
    pub fn sample_subject() -> Vec<u8> {
        let base = septum_abi::layout::SUBJECT_IMAGE_BASE.get();
        // `hlt; jmp $-1` is enough for a subject that never runs.
        let text = [0xf4u8, 0xeb, 0xfd];
        let rodata = b"septum sample subject";
        let data = [1u8, 2, 3, 4];
        executable(
            base,
            &[
                SegmentSpec {
                    vaddr: base,
                    data: &text,
                    mem_size: 3,
                    flags: 5,
                },
                SegmentSpec {
                    vaddr: base + 0x1000,
                    data: rodata,
                    mem_size: 21,
                    flags: 4,
                },
                SegmentSpec {
                    vaddr: base + 0x2000,
                    data: &data,
                    mem_size: 0x2000,
                    flags: 6,
                },
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_parses_with_rights_and_sizes() {
        let image = parse_subject("sample", &build::sample_subject()).unwrap();
        assert_eq!(image.entry, VirtAddr(0x20_0000));
        let kinds: Vec<_> = image.segments.iter().map(Segment::kind_name).collect();
        assert_eq!(kinds, ["text", "rodata", "data"]);
        assert_eq!(image.segments[2].mem_size, 0x2000);
        assert_eq!(image.segments[2].data, [1, 2, 3, 4]);
        assert_eq!(image.segments[0].data, [0xf4, 0xeb, 0xfd]);
    }

    #[test]
    fn refuses_garbage_and_truncation_naming_the_file() {
        let err = parse_subject("bin/x", b"hello").unwrap_err();
        assert!(
            err.to_string().starts_with("bin/x: not a 64-bit ELF file"),
            "{err}"
        );
        let full = build::sample_subject();
        let err = parse_subject("bin/x", &full[..200]).unwrap_err();
        assert!(err.to_string().contains("bin/x"), "{err}");
    }

    #[test]
    fn refuses_other_machines_and_unaligned_segments() {
        let mut elf = build::sample_subject();
        elf[18] = 3; // EM_386
        let err = parse_subject("f", &elf).unwrap_err().to_string();
        assert!(err.contains("expected x86-64"), "{err}");
        let bad = build::executable(
            0x20_0010,
            &[build::SegmentSpec {
                vaddr: 0x20_0010,
                data: &[0],
                mem_size: 1,
                flags: 5,
            }],
        );
        let err = parse_subject("f", &bad).unwrap_err().to_string();
        assert!(err.contains("not page aligned"), "{err}");
    }

    #[test]
    fn refuses_overlapping_segments() {
        let bad = build::executable(
            0x20_0000,
            &[
                build::SegmentSpec {
                    vaddr: 0x20_0000,
                    data: &[0],
                    mem_size: 0x2000,
                    flags: 5,
                },
                build::SegmentSpec {
                    vaddr: 0x20_1000,
                    data: &[0],
                    mem_size: 1,
                    flags: 6,
                },
            ],
        );
        let err = parse_subject("f", &bad).unwrap_err().to_string();
        assert!(err.contains("overlaps"), "{err}");
    }

    fn one_segment(vaddr: u64, mem_size: u64) -> Vec<u8> {
        build::executable(
            vaddr,
            &[build::SegmentSpec {
                vaddr,
                data: &[0xf4],
                mem_size,
                flags: 5,
            }],
        )
    }

    #[test]
    fn segments_must_lie_in_the_image_window() {
        let (base, end) = (SUBJECT_IMAGE_BASE.get(), SUBJECT_IMAGE_END.get());
        // First and last page of the window are fine.
        assert!(parse_subject("f", &one_segment(base, 0x1000)).is_ok());
        assert!(parse_subject("f", &one_segment(end - 0x1000, 0x1000)).is_ok());
        for (vaddr, mem_size, shown) in [
            (base - 0x1000, 0x1000, "0x1ff000-0x200000"),
            (base - 0x1000, 0x2000, "0x1ff000-0x201000"),
            (0x1_0000, 0x1000, "0x10000-0x11000"),
            (end - 0x1000, 0x1001, "0x3ffff000-0x40001000"),
            (end, 0x1000, "0x40000000-0x40001000"),
            (0x1_0000_0000, 0x1000, "0x100000000-0x100001000"),
        ] {
            let err = parse_subject("bin/prog", &one_segment(vaddr, mem_size))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "bin/prog: segment 0 at {shown} lies outside the subject image window \
                     0x200000-0x40000000 (link subjects with the SDK's linker script)"
                )
            );
        }
        // The segment is named by its program header index.
        let second_outside = build::executable(
            base,
            &[
                build::SegmentSpec {
                    vaddr: base,
                    data: &[0xf4],
                    mem_size: 1,
                    flags: 5,
                },
                build::SegmentSpec {
                    vaddr: end,
                    data: &[1],
                    mem_size: 1,
                    flags: 6,
                },
            ],
        );
        let err = parse_subject("p", &second_outside).unwrap_err().to_string();
        assert!(
            err.starts_with("p: segment 1 at 0x40000000-0x40001000 lies outside"),
            "{err}"
        );
    }

    /// 30,000 one-page segments, highest address first: each was compared
    /// with every earlier one (4.5 * 10^8 comparisons); now they are
    /// sorted. Under 2 s even in a debug build, and the overlap of the
    /// last two segments is still found and named.
    #[test]
    fn many_segments_are_checked_in_bounded_time() {
        let count: u64 = 30_000;
        // One page each, highest address first.
        let descending = || -> Vec<build::SegmentSpec<'_>> {
            (0..count)
                .map(|i| build::SegmentSpec {
                    vaddr: 0x20_0000 + (count - 1 - i) * 0x1000,
                    data: &[],
                    mem_size: 0x1000,
                    flags: 4,
                })
                .collect()
        };
        let specs = descending();
        let start = std::time::Instant::now();
        let image = parse_subject("many", &build::executable(0x20_0000, &specs)).expect("parses");
        assert_eq!(image.segments.len(), 30_000);
        let mut overlapping = descending();
        overlapping.push(build::SegmentSpec {
            vaddr: 0x20_0000,
            data: &[],
            mem_size: 0x1000,
            flags: 4,
        });
        let err = parse_subject("many", &build::executable(0x20_0000, &overlapping))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("segment 30000 at 0x200000 overlaps the segment at 0x200000"),
            "{err}"
        );
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics_on_corrupted_files(pos in 0usize..400, byte in 0u8..=255, cut in 0usize..9000) {
            let mut elf = build::sample_subject();
            let pos = pos % elf.len();
            elf[pos] = byte;
            elf.truncate(cut.max(1));
            let _ = parse_subject("f", &elf);
        }
    }
}
