//! Formatting into a fixed buffer, without an allocator.
//!
//! Subjects build channel messages with `write!` into a [`TextBuf`]; text
//! that does not fit is cut at the last whole character and the write
//! reports `fmt::Error`, so a message is never silently longer than its
//! channel element.

use core::fmt;

/// A string buffer of at most `N` bytes.
#[derive(Clone, Debug)]
pub struct TextBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> TextBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for TextBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for TextBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N.saturating_sub(self.len);
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take = take.saturating_sub(1);
        }
        let dst = self
            .bytes
            .get_mut(self.len..self.len.saturating_add(take))
            .ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes().get(..take).ok_or(fmt::Error)?);
        self.len = self.len.saturating_add(take);
        if take == s.len() {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// The text of a NUL-padded element: bytes up to the first NUL, cut at the
/// last valid UTF-8 character.
pub fn until_nul(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let bytes = bytes.get(..end).unwrap_or_default();
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn formats_and_truncates() {
        let mut t = TextBuf::<16>::new();
        write!(t, "msg {} from", 42).unwrap();
        assert_eq!(t.as_str(), "msg 42 from");
        assert!(write!(t, " producer").is_err());
        assert_eq!(t.as_str(), "msg 42 from prod");
        t.clear();
        assert_eq!(t.as_str(), "");
        let mut small = TextBuf::<3>::new();
        assert!(small.write_str("aé").is_ok());
        assert!(small.write_str("é").is_err(), "no room for a 2-byte char");
        assert_eq!(small.as_str(), "aé");
    }

    #[test]
    fn nul_padded_text() {
        assert_eq!(until_nul(b"hello\0\0\0"), "hello");
        assert_eq!(until_nul(b"full"), "full");
        assert_eq!(until_nul(&[b'o', b'k', 0xff, b'x']), "ok");
        assert_eq!(until_nul(b""), "");
    }
}
