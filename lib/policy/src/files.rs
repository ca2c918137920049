//! Where the loader reads files from: the disk, or a map in memory.
//!
//! Going through [`FileSource`] lets tests and the fuzzer exercise includes
//! without touching the disk, and keeps the size cap in one place: a source
//! must refuse to return more than the limit rather than read a huge file
//! into memory first.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// No such file.
    NotFound,
    /// Larger than the limit (size in bytes).
    TooLarge(u64),
    /// Not UTF-8; the byte offset of the first invalid byte, and the text
    /// with invalid bytes replaced (for showing the location).
    NotUtf8(usize, String),
    /// Any other I/O error (its description).
    Other(String),
}

/// A place files are read from.
pub trait FileSource {
    /// Reads `path` as UTF-8 text of at most `limit` bytes.
    fn read(&self, path: &Path, limit: u64) -> Result<String, ReadError>;

    /// A key identifying the file for include-cycle detection (two paths
    /// naming the same file give the same key).
    fn identity(&self, path: &Path) -> PathBuf {
        normalize(path)
    }
}

/// Lexically normalizes a path: drops `.`, and folds `dir/..` (leading `..`
/// stay). Used for showing included paths and for in-memory lookups.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

fn decode(bytes: Vec<u8>) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        ReadError::NotUtf8(at, String::from_utf8_lossy(e.as_bytes()).into_owned())
    })
}

/// Reads from the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskFiles;

impl FileSource for DiskFiles {
    fn read(&self, path: &Path, limit: u64) -> Result<String, ReadError> {
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound,
            _ => ReadError::Other(e.kind().to_string()),
        })?;
        let meta = file
            .metadata()
            .map_err(|e| ReadError::Other(e.kind().to_string()))?;
        if meta.is_dir() {
            return Err(ReadError::Other("is a directory".to_owned()));
        }
        if meta.len() > limit {
            return Err(ReadError::TooLarge(meta.len()));
        }
        // Read at most one byte past the limit: the file may grow after the
        // metadata check, or be a pipe without a size.
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ReadError::Other(e.kind().to_string()))?;
        if bytes.len() as u64 > limit {
            return Err(ReadError::TooLarge(bytes.len() as u64));
        }
        decode(bytes)
    }

    fn identity(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| normalize(path))
    }
}

/// Files held in memory, keyed by normalized path.
#[derive(Debug, Clone, Default)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemoryFiles {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: impl AsRef<Path>, contents: impl Into<Vec<u8>>) {
        self.files.insert(normalize(path.as_ref()), contents.into());
    }
}

impl FileSource for MemoryFiles {
    fn read(&self, path: &Path, limit: u64) -> Result<String, ReadError> {
        let bytes = self
            .files
            .get(&normalize(path))
            .ok_or(ReadError::NotFound)?;
        if bytes.len() as u64 > limit {
            return Err(ReadError::TooLarge(bytes.len() as u64));
        }
        decode(bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_parent_dirs() {
        assert_eq!(
            normalize(Path::new("a/./b/../c.xml")),
            PathBuf::from("a/c.xml")
        );
        assert_eq!(
            normalize(Path::new("../x/../y.xml")),
            PathBuf::from("../y.xml")
        );
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn memory_files_enforce_the_limit_and_utf8() {
        let mut files = MemoryFiles::new();
        files.insert("a.xml", "12345");
        files.insert("b.xml", vec![b'<', 0xff]);
        assert_eq!(
            files.read(Path::new("./a.xml"), 4),
            Err(ReadError::TooLarge(5))
        );
        assert_eq!(files.read(Path::new("a.xml"), 5), Ok("12345".to_owned()));
        assert!(matches!(
            files.read(Path::new("b.xml"), 9),
            Err(ReadError::NotUtf8(1, _))
        ));
        assert_eq!(files.read(Path::new("c.xml"), 9), Err(ReadError::NotFound));
    }
}
