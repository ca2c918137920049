//! Log channels: lines of text a subject writes for a debug server.
//!
//! A log channel is an ordinary SHMStream channel with the policy's
//! defaults (64-byte elements, protocol 1: [`FORMAT`]); each element is one
//! line of text, NUL-padded, without the newline. A subject writes it with
//! a [`Log`] (`writeln!(log, ...)`: `core::fmt::Write`, no allocation); a
//! longer line is split into several elements at character boundaries, so
//! no element ends in half a character. The writer never waits: a reader
//! that falls behind loses lines and is told so.
//!
//! The reading side is [`Source`]: one named log channel of a collector
//! such as the `debug_server` subject, which prints every line prefixed by
//! the source's name (docs/sdk.md, "Logs and the debug server"). It treats
//! the writer as hostile: each line is cut at the element size and every
//! byte that is not printable ASCII is shown as `?`, so a subject cannot
//! forge lines of another or send escape sequences to the console.

use core::fmt;

use crate::channel::{Format, ReadOutcome, Reader, Writer};

/// The format of every log channel: the policy's defaults.
pub const FORMAT: Format = Format::DEFAULT;

/// Bytes of text per element (one line, or one piece of a longer one).
pub const LINE_LEN: usize = 64;

/// The writing end of a log channel: collects text up to a newline (or a
/// full element) and writes it as one element.
#[derive(Debug)]
pub struct Log<'a> {
    writer: Writer<'a>,
    line: [u8; LINE_LEN],
    len: usize,
}

impl<'a> Log<'a> {
    /// A log over `writer` (initialised with [`FORMAT`], e.g. by
    /// `Info::log`).
    pub fn new(writer: Writer<'a>) -> Self {
        Self {
            writer,
            line: [0; LINE_LEN],
            len: 0,
        }
    }

    /// Writes the text collected since the last newline, if any, as a line
    /// of its own.
    pub fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let text = self.line.get(..self.len).unwrap_or_default();
        // The element is 64 bytes and the text at most 64: the write cannot
        // be refused (a Writer only refuses an element larger than its size).
        let _ = self.writer.write(text);
        self.line = [0; LINE_LEN];
        self.len = 0;
    }

    fn push(&mut self, c: char) {
        let mut encoded = [0u8; 4];
        let bytes = c.encode_utf8(&mut encoded).as_bytes();
        if self.len.saturating_add(bytes.len()) > LINE_LEN {
            self.flush();
        }
        if let Some(dst) = self
            .line
            .get_mut(self.len..self.len.saturating_add(bytes.len()))
        {
            dst.copy_from_slice(bytes);
            self.len = self.len.saturating_add(bytes.len());
        }
    }
}

impl fmt::Write for Log<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            match c {
                '\n' => self.flush(),
                '\r' => {}
                other => self.push(other),
            }
        }
        Ok(())
    }
}

/// What a [`Source`] has next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogItem<'b> {
    /// One line (printable ASCII only; other bytes shown as `?`).
    Line(&'b str),
    /// The writer lapped the collector: lines were lost.
    Lost,
    /// The writer initialised its channel again (the subject restarted).
    Restarted,
    /// The channel does not carry [`FORMAT`]: reported once, then the
    /// source stays silent until the writer initialises a log.
    NotALog,
}

/// One log channel a collector reads, with the name its lines are
/// prefixed with.
#[derive(Debug)]
pub struct Source<'a> {
    name: &'a str,
    reader: Reader<'a>,
    incompatible: bool,
}

impl<'a> Source<'a> {
    /// A source named `name` over `reader` (made with [`FORMAT`]).
    pub fn new(name: &'a str, reader: Reader<'a>) -> Self {
        Self {
            name,
            reader,
            incompatible: false,
        }
    }

    /// The name the source's lines are prefixed with.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The next item, using `buffer` for the line; `None` if there is
    /// nothing new.
    pub fn next<'b>(&mut self, buffer: &'b mut [u8; LINE_LEN]) -> Option<LogItem<'b>> {
        *buffer = [0; LINE_LEN];
        match self.reader.read(buffer) {
            ReadOutcome::Element => {
                self.incompatible = false;
                Some(LogItem::Line(sanitise(buffer)))
            }
            ReadOutcome::Empty | ReadOutcome::Inactive => None,
            ReadOutcome::Overrun => Some(LogItem::Lost),
            ReadOutcome::EpochChanged => Some(LogItem::Restarted),
            ReadOutcome::Incompatible if self.incompatible => None,
            ReadOutcome::Incompatible => {
                self.incompatible = true;
                Some(LogItem::NotALog)
            }
        }
    }
}

/// The text of a NUL-padded element with every byte that is not printable
/// ASCII replaced by `?`.
fn sanitise(buffer: &mut [u8; LINE_LEN]) -> &str {
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(LINE_LEN);
    let text = buffer.get_mut(..end).unwrap_or_default();
    for byte in text.iter_mut() {
        if !(byte.is_ascii_graphic() || *byte == b' ') {
            *byte = b'?';
        }
    }
    // Only ASCII is left.
    core::str::from_utf8(text).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::region::Region;
    use core::fmt::Write;
    use core::num::NonZeroU64;
    use core::sync::atomic::AtomicU64;
    use septum_abi::channel::HEADER_SIZE;
    use std::string::{String, ToString};
    use std::vec::Vec;

    const WORDS: usize = (HEADER_SIZE + 8 * LINE_LEN) / 8;

    fn buffer() -> Vec<AtomicU64> {
        (0..WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    fn items(source: &mut Source<'_>) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = [0u8; LINE_LEN];
        while let Some(item) = source.next(&mut line) {
            out.push(match item {
                LogItem::Line(text) => text.to_string(),
                other => std::format!("{other:?}"),
            });
        }
        out
    }

    #[test]
    fn lines_arrive_whole_and_long_ones_split_at_characters() {
        let words = buffer();
        let region = || Region::from_atomics(&words);
        let writer = Writer::init(region(), FORMAT, NonZeroU64::new(7).unwrap()).unwrap();
        let mut log = Log::new(writer);
        let mut source = Source::new("ticker", Reader::new(region().read_only(), FORMAT));
        assert_eq!(source.name(), "ticker");
        assert!(items(&mut source).is_empty());
        writeln!(log, "tick {}", 1).unwrap();
        write!(log, "no newline yet").unwrap();
        assert_eq!(items(&mut source), ["tick 1"]);
        log.flush();
        log.flush();
        assert_eq!(items(&mut source), ["no newline yet"]);
        // 63 ASCII bytes, then a 2-byte character: it moves to the next element.
        let long = std::format!("{}é and more\r\n", "a".repeat(63));
        log.write_str(&long).unwrap();
        assert_eq!(
            items(&mut source),
            ["a".repeat(63), "?? and more".to_string()]
        );
    }

    #[test]
    fn hostile_text_is_shown_sanitised_and_trouble_is_reported() {
        let words = buffer();
        let region = || Region::from_atomics(&words);
        let mut writer = Writer::init(region(), FORMAT, NonZeroU64::new(1).unwrap()).unwrap();
        let mut source = Source::new("evil", Reader::new(region().read_only(), FORMAT));
        writer.write(b"ok\nseptum: forged\x1b[2J").unwrap();
        assert_eq!(items(&mut source), ["ok?septum: forged?[2J"]);
        // Nine lines into an eight-line ring: the collector was lapped.
        for n in 0..9u8 {
            writer.write(&[b'0' + n]).unwrap();
        }
        assert_eq!(items(&mut source)[0], "Lost");
        // A new epoch, then a channel of another format.
        let _ = Writer::init(region(), FORMAT, NonZeroU64::new(2).unwrap()).unwrap();
        assert_eq!(items(&mut source), ["Restarted"]);
        let other = Format {
            protocol: 9,
            element_size: 64,
        };
        let _ = Writer::init(region(), other, NonZeroU64::new(3).unwrap()).unwrap();
        assert_eq!(items(&mut source), ["Restarted", "NotALog"]);
        assert!(items(&mut source).is_empty(), "reported once");
    }
}
