//! Every file the policy loader read, and positions inside them.
//!
//! The model and the diagnostics never hold text positions as line and
//! column: they hold a [`Span`], a byte range in one [`FileId`]. Line and
//! column are computed only when a diagnostic is rendered, from the line
//! start table kept here, so spans stay small (`Copy`, 12 bytes) and the
//! model does not care how positions are shown. Lines and columns are
//! 1-based; a column counts Unicode scalar values, not bytes, so it matches
//! what editors show for non-ASCII text.
//!
//! Finding a position costs O(log lines) plus at most one
//! [`CHAR_BLOCK`]-byte scan, however long the line: a binary search in the
//! line start table gives the line, and a table of character counts every
//! [`CHAR_BLOCK`] bytes gives the column. Rendering thousands of
//! diagnostics on one megabyte-long line therefore never rescans the line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Identifies one loaded file in a [`SourceMap`] (the index in load order:
/// the root policy is file 0, then every included file in the order the
/// loader reached it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

impl FileId {
    /// The id as an index into [`SourceMap::files`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A byte range `start..end` in one file. `start == end` is an empty span
/// (a position), used e.g. for errors about a whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    /// File the range is in.
    pub file: FileId,
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span over `range` in `file`. Offsets beyond `u32::MAX` are clamped;
    /// the loader caps inputs far below that.
    pub fn new(file: FileId, range: std::ops::Range<usize>) -> Self {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            file,
            start: clamp(range.start),
            end: clamp(range.end.max(range.start)),
        }
    }

    /// The empty span at the start of `file`.
    pub const fn file_start(file: FileId) -> Self {
        Self {
            file,
            start: 0,
            end: 0,
        }
    }

    /// The byte range as `usize`.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineCol {
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub column: u32,
}

/// Bytes between two entries of a file's character count table.
pub const CHAR_BLOCK: usize = 256;

/// One loaded file: the path as shown to the user, and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: Arc<str>,
    line_starts: Vec<u32>,
    /// Entry `k`: number of characters starting before byte
    /// `k * CHAR_BLOCK`.
    chars_before_block: Vec<u32>,
    /// Bytes of byte order marks at the start of the text.
    leading_marks: usize,
}

impl SourceFile {
    /// The path as given on the command line, or for included files joined
    /// to the including file's directory and normalized (`a/../b` → `b`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A shared handle on the text (lets the parser keep a document borrowed
    /// from it while the map grows).
    pub fn shared_text(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }

    /// Number of lines (a file without a final newline still counts its
    /// last line).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// Number of characters starting before byte `offset` (at most one
    /// block is scanned).
    fn chars_before(&self, offset: usize) -> usize {
        let block = offset / CHAR_BLOCK;
        let base = self.chars_before_block.get(block).copied().unwrap_or(0) as usize;
        let from = block * CHAR_BLOCK;
        let tail = self.text.as_bytes().get(from..offset).unwrap_or(&[]);
        base + count_chars(tail)
    }

    /// Line and column of byte `offset` (clamped to the text, and moved back
    /// to a character boundary).
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = (offset as usize).min(self.text.len());
        let line_index = match self.line_starts.binary_search(&(offset as u32)) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0) as usize;
        let mut end = offset;
        while end > line_start && !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let mut column = if end - line_start <= CHAR_BLOCK {
            count_chars(
                self.text
                    .as_bytes()
                    .get(line_start..end)
                    .unwrap_or_default(),
            )
        } else {
            self.chars_before(end) - self.chars_before(line_start)
        };
        // A byte order mark is invisible in editors: it is not a column.
        if line_start == 0 {
            column -= end.min(self.leading_marks) / '\u{feff}'.len_utf8();
        }
        LineCol {
            line: line_index as u32 + 1,
            column: column as u32 + 1,
        }
    }

    /// Byte offset of a 1-based line and column (as reported by the XML
    /// parser), clamped to the text.
    pub fn offset_of(&self, position: LineCol) -> u32 {
        let line_index = (position.line.max(1) - 1) as usize;
        let Some(&line_start) = self.line_starts.get(line_index) else {
            return self.text.len() as u32;
        };
        // The XML parser counts a byte order mark as a column; so does this.
        let rest = self.text.get(line_start as usize..).unwrap_or("");
        let skip = (position.column.max(1) - 1) as usize;
        let bytes: usize = rest.chars().take(skip).map(char::len_utf8).sum();
        line_start + bytes as u32
    }

    /// Byte range of 1-based `line` without its line terminator (empty at
    /// the end of the text if there is no such line).
    pub fn line_range(&self, line: u32) -> std::ops::Range<usize> {
        let index = (line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(index) else {
            return self.text.len()..self.text.len();
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&e| e as usize);
        let line = self.text.get(start as usize..end).unwrap_or("");
        start as usize..start as usize + line.trim_end_matches(['\n', '\r']).len()
    }

    /// Bytes of byte order marks at the start of the text (not shown, not
    /// counted as columns).
    pub fn leading_marks(&self) -> usize {
        self.leading_marks
    }

    /// The text of 1-based `line` without its line terminator.
    pub fn line_text(&self, line: u32) -> &str {
        let index = (line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(index) else {
            return "";
        };
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |&e| e as usize);
        let line = self.text.get(start as usize..end).unwrap_or("");
        line.trim_end_matches(['\n', '\r'])
    }
}

/// Every file read while loading one policy, in load order.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file and returns its id.
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> FileId {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        let mut chars_before_block = Vec::with_capacity(text.len() / CHAR_BLOCK + 1);
        let mut chars = 0u32;
        for block in text.as_bytes().chunks(CHAR_BLOCK) {
            chars_before_block.push(chars);
            chars += count_chars(block) as u32;
        }
        let leading_marks = text.len() - text.trim_start_matches('\u{feff}').len();
        let id = FileId(self.files.len() as u32);
        self.files.push(SourceFile {
            path: path.into(),
            text,
            line_starts,
            chars_before_block,
            leading_marks,
        });
        id
    }

    /// The file with id `id`.
    ///
    /// # Panics
    /// If `id` did not come from this map (a programming error).
    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.index()]
    }

    /// The file with id `id`, or `None` if it is not in this map.
    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.index())
    }

    /// All files in load order.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// Path of file `id` (empty if unknown).
    pub fn path(&self, id: FileId) -> &Path {
        self.get(id).map_or(Path::new(""), SourceFile::path)
    }

    /// Start of `span` as line and column (1:1 if the file is unknown).
    pub fn start(&self, span: Span) -> LineCol {
        self.get(span.file)
            .map_or(LineCol { line: 1, column: 1 }, |f| f.line_col(span.start))
    }

    /// End of `span` (exclusive) as line and column.
    pub fn end(&self, span: Span) -> LineCol {
        self.get(span.file)
            .map_or(LineCol { line: 1, column: 1 }, |f| f.line_col(span.end))
    }

    /// The text under `span` (empty if out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text().get(span.range()))
            .unwrap_or("")
    }

    /// Whether `span` lies inside its file, on character boundaries.
    pub fn is_valid(&self, span: Span) -> bool {
        self.get(span.file).is_some_and(|f| {
            let text = f.text();
            span.start <= span.end
                && (span.end as usize) <= text.len()
                && text.is_char_boundary(span.start as usize)
                && text.is_char_boundary(span.end as usize)
        })
    }
}

/// Characters starting in `bytes`: every byte that is not a UTF-8
/// continuation byte.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xc0 != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let mut map = SourceMap::new();
        let id = map.add("a.xml", "ab\nçd\n\nx");
        let f = map.file(id);
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // `ç` is two bytes: `d` is the second character of line 2.
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(f.line_col(7), LineCol { line: 3, column: 1 });
        assert_eq!(f.line_col(8), LineCol { line: 4, column: 1 });
        assert_eq!(f.line_col(100), LineCol { line: 4, column: 2 });
        assert_eq!(f.offset_of(LineCol { line: 2, column: 2 }), 5);
        assert_eq!(f.line_text(2), "çd");
        assert_eq!(f.line_count(), 4);
    }

    #[test]
    fn columns_on_long_lines_cross_blocks() {
        let mut map = SourceMap::new();
        let text = format!("x\n{}ab", "é".repeat(CHAR_BLOCK));
        let id = map.add("a.xml", text.clone());
        let f = map.file(id);
        let b = text.len() - 1;
        assert_eq!(
            f.line_col(b as u32),
            LineCol {
                line: 2,
                column: CHAR_BLOCK as u32 + 2
            }
        );
        // Inside a two-byte character: moved back to its start.
        assert_eq!(f.line_col(4).column, 2);
    }

    #[test]
    fn a_byte_order_mark_is_not_a_column() {
        let mut map = SourceMap::new();
        let id = map.add("a.xml", "\u{feff}<a/>");
        let two = map.add("b.xml", "\u{feff}\u{feff}<a/>");
        assert_eq!(map.file(two).line_col(7), LineCol { line: 1, column: 2 });
        assert_eq!(map.file(two).line_col(3), LineCol { line: 1, column: 1 });
        assert_eq!(map.file(id).line_col(3), LineCol { line: 1, column: 1 });
        assert_eq!(map.file(id).offset_of(LineCol { line: 1, column: 2 }), 3);
    }

    #[test]
    fn spans_are_checked_against_their_file() {
        let mut map = SourceMap::new();
        let id = map.add("a.xml", "çx");
        assert!(map.is_valid(Span::new(id, 0..2)));
        assert!(!map.is_valid(Span::new(id, 1..2)));
        assert!(!map.is_valid(Span::new(id, 0..9)));
        assert!(!map.is_valid(Span::new(FileId(7), 0..0)));
        assert_eq!(map.snippet(Span::new(id, 2..3)), "x");
    }
}
