//! Symbol maps: from a fault line's `rip` to a function and a source line.
//!
//! The kernel's fault line for a subject names the faulting instruction's
//! address (`subject "NAME" fault: ... rip=0x..`); the subject's ELF file
//! knows which function and source line that is. The composer keeps, per
//! subject, the functions of its symbol table (demangled) and, when the
//! file carries DWARF line tables (subjects build with `debug = 1`), the
//! address ranges of its source lines (paths made absolute with the
//! compilation directory, as the build machine saw them), and writes them into the composed
//! directory as `symbols/SUBJECT.txt` ([`SymbolMap::render`]). `septum
//! symbolize` and `cargo xtask` read them back ([`SymbolMap::parse`]) and
//! append ` in FUNCTION+0xOFFSET (FILE:LINE)` after `rip=0x..`
//! ([`symbolize_line`]).
//!
//! A map is best effort: a stripped binary has an empty one, a binary
//! without line tables one without lines; a fault address outside every
//! range is left as it is.
//!
//! Text format `septum-symbols/1`, one record per line, addresses in hex:
//!
//! ```text
//! # septum-symbols/1
//! F START END NAME          function [START, END)
//! L START END FILE:LINE     source line [START, END)
//! ```

use std::borrow::Cow;

use crate::elf;

/// First line of a symbols file.
pub const HEADER: &str = "# septum-symbols/1";
/// Directory of the symbol maps in the composed directory.
pub const DIR: &str = "symbols";

/// An address range and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Function name, or `FILE:LINE`.
    pub name: String,
}

/// One subject's functions and source lines, each sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymbolMap {
    /// Functions.
    pub functions: Vec<Range>,
    /// Source lines.
    pub lines: Vec<Range>,
}

fn find(ranges: &[Range], address: u64) -> Option<&Range> {
    let after = ranges.partition_point(|r| r.start <= address);
    let candidate = ranges.get(after.checked_sub(1)?)?;
    (address < candidate.end).then_some(candidate)
}

impl SymbolMap {
    /// The map of a subject ELF file: its function symbols and, if it has
    /// DWARF line tables, its source lines. Missing or unreadable parts
    /// leave that part empty.
    pub fn from_elf(file: &str, data: &[u8]) -> Self {
        let mut functions: Vec<Range> = elf::functions(file, data)
            .unwrap_or_default()
            .into_iter()
            .map(|f| Range {
                start: f.start,
                end: f.start.saturating_add(f.size.max(1)),
                name: format!("{:#}", rustc_demangle::demangle(&f.name)),
            })
            .collect();
        // A symbol without a size ends where the next one starts.
        for i in 1..functions.len() {
            let next = functions[i].start;
            if let Some(f) = functions.get_mut(i - 1) {
                f.end = f.end.min(next).max(f.start + 1);
            }
        }
        // Only code the image loads: line rows of functions the linker
        // dropped (precompiled `core`) keep addresses near 0.
        let code: Vec<(u64, u64)> = elf::parse_subject(file, data)
            .map(|image| {
                image
                    .segments
                    .iter()
                    .filter(|s| s.executable)
                    .map(|s| {
                        (
                            s.virtual_address.get(),
                            s.virtual_address.get() + s.mem_size,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let in_code = |r: &Range| code.iter().any(|&(s, e)| s <= r.start && r.end <= e);
        functions.retain(in_code);
        let mut lines = lines(file, data).unwrap_or_default();
        lines.retain(in_code);
        Self { functions, lines }
    }

    /// `FUNCTION+0xOFFSET (FILE:LINE)`, either part alone, or `None`.
    pub fn resolve(&self, address: u64) -> Option<String> {
        let function =
            find(&self.functions, address).map(|f| format!("{}+{:#x}", f.name, address - f.start));
        let line = find(&self.lines, address).map(|l| l.name.as_str());
        match (function, line) {
            (Some(f), Some(l)) => Some(format!("{f} ({l})")),
            (Some(f), None) => Some(f),
            (None, Some(l)) => Some(format!("({l})")),
            (None, None) => None,
        }
    }

    /// The `septum-symbols/1` text.
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for (tag, ranges) in [("F", &self.functions), ("L", &self.lines)] {
            for r in ranges {
                out.push_str(&format!("{tag} {:x} {:x} {}\n", r.start, r.end, r.name));
            }
        }
        out
    }

    /// Read a `septum-symbols/1` text back.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!(
                "not a symbols file (first line is not \"{HEADER}\")"
            ));
        }
        let mut map = Self::default();
        for (n, line) in lines.enumerate() {
            let bad = || format!("line {}: expected \"F|L START END NAME\"", n + 2);
            let mut parts = line.splitn(4, ' ');
            let (Some(tag), Some(start), Some(end), Some(name)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let start = u64::from_str_radix(start, 16).map_err(|_| bad())?;
            let end = u64::from_str_radix(end, 16).map_err(|_| bad())?;
            let range = Range {
                start,
                end,
                name: name.to_owned(),
            };
            match tag {
                "F" => map.functions.push(range),
                "L" => map.lines.push(range),
                _ => return Err(bad()),
            }
        }
        map.functions.sort_by_key(|r| r.start);
        map.lines.sort_by_key(|r| r.start);
        Ok(map)
    }
}

/// `line` with ` in FUNCTION+0x.. (FILE:LINE)` after its `rip=0x..` if it
/// is a subject fault line (`subject "NAME" fault:`) and `map_of(NAME)`
/// resolves the address; otherwise `line` unchanged.
pub fn symbolize_line<'a, 'm>(
    line: &'a str,
    map_of: impl FnOnce(&str) -> Option<&'m SymbolMap>,
) -> Cow<'a, str> {
    let Some(after) = line.find("subject \"").map(|i| i + "subject \"".len()) else {
        return Cow::Borrowed(line);
    };
    let Some(name_len) = line[after..].find('"') else {
        return Cow::Borrowed(line);
    };
    let name = &line[after..after + name_len];
    let rest = &line[after + name_len..];
    if !rest.starts_with("\" fault:") {
        return Cow::Borrowed(line);
    }
    let Some(rip) = line.find(" rip=0x").map(|i| i + " rip=0x".len()) else {
        return Cow::Borrowed(line);
    };
    let digits = line[rip..]
        .find(|c: char| !c.is_ascii_hexdigit())
        .map_or(line.len(), |n| rip + n);
    let Ok(address) = u64::from_str_radix(&line[rip..digits], 16) else {
        return Cow::Borrowed(line);
    };
    match map_of(name).and_then(|m| m.resolve(address)) {
        Some(found) => Cow::Owned(format!("{} in {found}{}", &line[..digits], &line[digits..])),
        None => Cow::Borrowed(line),
    }
}

type Reader<'d> = gimli::EndianSlice<'d, gimli::LittleEndian>;

/// Source line ranges from the DWARF line tables, merged where consecutive
/// rows name the same line.
fn lines(file: &str, data: &[u8]) -> Result<Vec<Range>, gimli::Error> {
    let load = |id: gimli::SectionId| -> Result<Reader<'_>, gimli::Error> {
        let bytes = elf::section(file, data, id.name())
            .ok()
            .flatten()
            .unwrap_or(&[]);
        Ok(gimli::EndianSlice::new(bytes, gimli::LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(load)?;
    let mut out: Vec<Range> = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let Some(program) = unit.line_program.clone() else {
            continue;
        };
        let mut rows = program.rows();
        let mut open: Option<(u64, String)> = None;
        while let Some((header, row)) = rows.next_row()? {
            let address = row.address();
            if let Some((start, name)) = open.take()
                && address > start
            {
                match out.last_mut() {
                    Some(last) if last.end == start && last.name == name => last.end = address,
                    _ => out.push(Range {
                        start,
                        end: address,
                        name,
                    }),
                }
            }
            if row.end_sequence() || address == 0 {
                continue;
            }
            let Some(entry) = row.file(header) else {
                continue;
            };
            let path = dwarf.attr_string(&unit, entry.path_name())?;
            let mut name = path.to_string_lossy().into_owned();
            if !name.starts_with('/')
                && let Some(dir) = entry.directory(header)
            {
                let dir = dwarf.attr_string(&unit, dir)?;
                name = format!("{}/{name}", dir.to_string_lossy());
            }
            // Relative to the compilation directory (the subjects workspace,
            // the SDK, ...): made absolute so `src/main.rs` is unambiguous.
            if !name.starts_with('/')
                && let Some(comp_dir) = &unit.comp_dir
            {
                name = format!("{}/{name}", comp_dir.to_string_lossy());
            }
            let line = row.line().map_or(0, |l| l.get());
            open = Some((address, format!("{name}:{line}")));
        }
    }
    out.sort_by_key(|r| r.start);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::build;

    fn sample() -> SymbolMap {
        SymbolMap {
            functions: vec![
                Range {
                    start: 0x20_0000,
                    end: 0x20_0040,
                    name: "faulter::main".into(),
                },
                Range {
                    start: 0x20_0040,
                    end: 0x20_0100,
                    name: "septum_sdk::rt::startup".into(),
                },
            ],
            lines: vec![Range {
                start: 0x20_0010,
                end: 0x20_0020,
                name: "subjects/faulter/src/main.rs:42".into(),
            }],
        }
    }

    #[test]
    fn resolves_function_offset_and_line() {
        let map = sample();
        assert_eq!(
            map.resolve(0x20_0012).as_deref(),
            Some("faulter::main+0x12 (subjects/faulter/src/main.rs:42)")
        );
        assert_eq!(
            map.resolve(0x20_0040).as_deref(),
            Some("septum_sdk::rt::startup+0x0")
        );
        assert_eq!(map.resolve(0x20_0100), None);
        assert_eq!(map.resolve(0x1f_ffff), None);
    }

    #[test]
    fn render_parse_round_trip() {
        let map = sample();
        assert_eq!(SymbolMap::parse(&map.render()), Ok(map));
        assert!(SymbolMap::parse("F 1 2 x").is_err());
        assert!(SymbolMap::parse(&format!("{HEADER}\nF zz 2 x")).is_err());
    }

    #[test]
    fn symbolizes_only_subject_fault_lines() {
        let map = sample();
        let lookup = |name: &str| (name == "faulter").then_some(&map);
        let line = "septum: subject \"faulter\" fault: exception or NMI (exit reason 0) \
                    qualification=0x0 rip=0x200012 vector=6 (#UD)";
        assert_eq!(
            symbolize_line(line, lookup),
            "septum: subject \"faulter\" fault: exception or NMI (exit reason 0) \
             qualification=0x0 rip=0x200012 in faulter::main+0x12 \
             (subjects/faulter/src/main.rs:42) vector=6 (#UD)"
        );
        let at_end = "septum: subject \"faulter\" fault: RDMSR (exit reason 31) rip=0x200044";
        assert_eq!(
            symbolize_line(at_end, lookup),
            format!("{at_end} in septum_sdk::rt::startup+0x4")
        );
        for unchanged in [
            "septum: subject \"other\" fault: RDMSR (exit reason 31) rip=0x200044",
            "septum: subject \"faulter\" stopped rip=0x200044",
            "septum: subject \"faulter\" fault: RDMSR rip=0x300000",
            "septum: root-mode exception 14 error=0x3 rip=0x100377",
            "plain text",
        ] {
            assert_eq!(symbolize_line(unchanged, lookup), unchanged);
        }
    }

    #[test]
    fn reads_functions_from_a_symbol_table() {
        let elf = build::with_sections(
            build::sample_subject(),
            &[],
            &[
                build::FunctionSpec {
                    name: "_ZN7faulter4main17h0123456789abcdefE",
                    address: 0x20_0000,
                    size: 2,
                },
                build::FunctionSpec {
                    name: "_start",
                    address: 0x20_0002,
                    size: 1,
                },
            ],
        );
        let map = SymbolMap::from_elf("f", &elf);
        assert_eq!(map.resolve(0x20_0001).as_deref(), Some("faulter::main+0x1"));
        assert_eq!(map.resolve(0x20_0002).as_deref(), Some("_start+0x0"));
        assert_eq!(map.resolve(0x20_0003), None);
        assert!(map.lines.is_empty());
        assert_eq!(SymbolMap::from_elf("f", b"junk"), SymbolMap::default());
    }
}
