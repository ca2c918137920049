//! The composed directory: what `septum compose` writes and `septum pack`
//! reads.
//!
//! ```text
//! spec.rs        the kernel's system spec (Rust source)
//! regions.json   every composed physical region: name, kind, start, size,
//!                caching, and where its initial bytes are in regions.bin
//! regions.bin    the regions' initial bytes, back to back; a region's bytes
//!                past `file_size` are zero (trailing zeros are not stored)
//! report.txt     the report for humans
//! report.json    the report for tools
//! ```
//!
//! The kernel windows are not in regions.json: their bytes come from the
//! kernel ELF, which is built after composing (it includes spec.rs). The
//! crash-audit region is in regions.json as `crash_audit`, apart from
//! `regions`: `septum pack` loads `regions` only, so the boot loader
//! neither loads nor zeroes it and its records survive a warm reset.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::system::Composition;

/// Format marker of regions.json.
pub const REGIONS_FORMAT: &str = "septum-regions/1";

/// One region in regions.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    /// Name.
    pub name: String,
    /// Kind (as in the report).
    pub kind: String,
    /// First byte (physical).
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Caching.
    pub caching: String,
    /// Offset of the initial bytes in regions.bin.
    pub file_offset: u64,
    /// Number of initial bytes stored (<= size).
    pub file_size: u64,
}

/// regions.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionsFile {
    /// [`REGIONS_FORMAT`].
    pub format: String,
    /// System name.
    pub system: String,
    /// Regions in address order (what `septum pack` loads).
    pub regions: Vec<RegionRecord>,
    /// The crash-audit region (never loaded; absent in files written
    /// before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_audit: Option<CrashAuditRecord>,
}

/// The crash-audit region in regions.json.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashAuditRecord {
    /// Name.
    pub name: String,
    /// First byte (physical).
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Caching (always `UC`).
    pub caching: String,
    /// Record slots (one per CPU).
    pub slot_count: u32,
    /// The image's policy hash, as `0x` and 16 hex digits.
    pub policy_hash: String,
}

/// An I/O failure with the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// regions.json is not what `septum compose` writes.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The regions file and blob of a composition.
pub fn regions(c: &Composition) -> (RegionsFile, Vec<u8>) {
    let mut sorted: Vec<&crate::system::Region> = c.regions.iter().collect();
    sorted.sort_by_key(|r| r.start);
    let mut blob = Vec::new();
    let mut records = Vec::with_capacity(sorted.len());
    for r in sorted {
        let kind = serde_json::to_value(r.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        records.push(RegionRecord {
            name: r.name.clone(),
            kind,
            start: r.start.get(),
            size: r.size,
            caching: r.caching.as_str().into(),
            file_offset: blob.len() as u64,
            file_size: r.content.len() as u64,
        });
        blob.extend_from_slice(&r.content);
    }
    (
        RegionsFile {
            format: REGIONS_FORMAT.into(),
            system: c.name.clone(),
            regions: records,
            crash_audit: Some(CrashAuditRecord {
                name: crate::crash_audit::NAME.into(),
                start: c.crash_audit.start.get(),
                size: c.crash_audit.size,
                caching: "UC".into(),
                slot_count: c.crash_audit.slot_count,
                policy_hash: format!("{:#018x}", c.crash_audit.policy_hash),
            }),
        },
        blob,
    )
}

/// Write every output file into `dir` (created if missing).
pub fn write_dir(dir: &Path, c: &Composition, spec: &str) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let (file, blob) = regions(c);
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))
    };
    write("spec.rs", spec.as_bytes())?;
    let mut json = serde_json::to_string_pretty(&file).unwrap_or_default();
    json.push('\n');
    write("regions.json", json.as_bytes())?;
    write("regions.bin", &blob)?;
    write("report.txt", crate::report::text_report(c).as_bytes())?;
    let mut report =
        serde_json::to_string_pretty(&crate::report::json_report(c)).unwrap_or_default();
    report.push('\n');
    write("report.json", report.as_bytes())?;
    Ok(())
}

/// Write each subject's symbol map as `symbols/NAME.txt` in `dir`
/// (format: [`crate::symbols`]).
pub fn write_symbols(
    dir: &Path,
    maps: &[(String, crate::symbols::SymbolMap)],
) -> Result<(), OutputError> {
    let dir = dir.join(crate::symbols::DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    for (name, map) in maps {
        let path = dir.join(format!("{name}.txt"));
        std::fs::write(&path, map.render()).map_err(io(&path))?;
    }
    Ok(())
}

/// The symbol map of subject `name` in composed directory `dir`, `None`
/// if it has none (composed by an older `septum`) or it cannot be read.
pub fn read_symbols(dir: &Path, name: &str) -> Option<crate::symbols::SymbolMap> {
    let path = dir.join(crate::symbols::DIR).join(format!("{name}.txt"));
    let text = std::fs::read_to_string(path).ok()?;
    crate::symbols::SymbolMap::parse(&text).ok()
}

/// Read regions.json and regions.bin back, checking that every record's
/// bytes lie in the blob and fit the region.
pub fn read_regions(dir: &Path) -> Result<(RegionsFile, Vec<u8>), OutputError> {
    let json_path = dir.join("regions.json");
    let text = std::fs::read_to_string(&json_path).map_err(io(&json_path))?;
    let bad = |message: String| OutputError::Format {
        path: json_path.clone(),
        message,
    };
    let file: RegionsFile = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not a regions file written by septum compose ({e})"
        ))
    })?;
    if file.format != REGIONS_FORMAT {
        return Err(bad(format!(
            "format is \"{}\", expected \"{REGIONS_FORMAT}\"",
            file.format
        )));
    }
    let bin_path = dir.join("regions.bin");
    let blob = std::fs::read(&bin_path).map_err(io(&bin_path))?;
    for r in &file.regions {
        let end = r.file_offset.checked_add(r.file_size);
        if end.is_none_or(|end| end > blob.len() as u64) || r.file_size > r.size {
            return Err(bad(format!(
                "region \"{}\": its bytes do not lie inside regions.bin or exceed its size",
                r.name
            )));
        }
    }
    Ok((file, blob))
}
