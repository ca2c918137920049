//! Numbers, booleans and names as the policy language spells them.
//!
//! Numbers come in three forms, all with optional `_` separators: decimal
//! (`4096`), C hex (`0x1000`) and the anchor's Ada based notation
//! (`16#1000#`, any base 2..=16). Everything is parsed into `u64` with
//! overflow checks; narrower attributes are range-checked by the caller so
//! the error can name the attribute's limit.

/// Why a number did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a number in any accepted form.
    Invalid,
    /// A number, but larger than `u64::MAX`.
    Overflow,
}

/// Parses `text` in any accepted form.
pub(crate) fn parse_u64(text: &str) -> Result<u64, NumberError> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return digits(hex, 16);
    }
    if let Some((base, rest)) = text.split_once('#') {
        let digits_part = rest.strip_suffix('#').ok_or(NumberError::Invalid)?;
        if base.is_empty() || !base.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NumberError::Invalid);
        }
        let base: u32 = base.parse().map_err(|_| NumberError::Invalid)?;
        if !(2..=16).contains(&base) {
            return Err(NumberError::Invalid);
        }
        return digits(digits_part, base);
    }
    digits(text, 10)
}

/// Digits in `base` with `_` separators; at least one digit, and no
/// leading `_`.
fn digits(text: &str, base: u32) -> Result<u64, NumberError> {
    if text.is_empty() || text.starts_with('_') {
        return Err(NumberError::Invalid);
    }
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut any = false;
    for c in text.chars() {
        if c == '_' {
            continue;
        }
        let digit = c.to_digit(base).ok_or(NumberError::Invalid)?;
        any = true;
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => value = v,
            // Keep scanning: a bad character later makes it "invalid", which
            // is the more useful message.
            None => overflow = true,
        }
    }
    match (any, overflow) {
        (false, _) => Err(NumberError::Invalid),
        (true, true) => Err(NumberError::Overflow),
        (true, false) => Ok(value),
    }
}

/// Parses `true` or `false`.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Longest name accepted, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 63;

/// Whether `text` is a valid policy name: `[A-Za-z_][A-Za-z0-9_\-|]*`, at
/// most 63 bytes.
pub(crate) fn is_valid_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    text.len() <= MAX_NAME_BYTES
        && (first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_forms_parse() {
        assert_eq!(parse_u64("4096"), Ok(4096));
        assert_eq!(parse_u64("4_096"), Ok(4096));
        assert_eq!(parse_u64("0x10_0000"), Ok(0x10_0000));
        assert_eq!(parse_u64("0XfF"), Ok(255));
        assert_eq!(parse_u64("16#0010_0000#"), Ok(0x10_0000));
        assert_eq!(parse_u64("2#1010#"), Ok(10));
        assert_eq!(parse_u64("8#17#"), Ok(15));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64("16#ffff_ffff_ffff_ffff#"), Ok(u64::MAX));
    }

    #[test]
    fn bad_forms_are_rejected() {
        for bad in [
            "", "0x", "_1", "0x_1", "1 ", " 1", "-1", "+1", "1.0", "16#", "16##", "16#1", "17#1#",
            "1#1#", "#1#", "16#g#", "0xg", "12a", "x16#1#", "16#1#1",
        ] {
            assert_eq!(parse_u64(bad), Err(NumberError::Invalid), "{bad:?}");
        }
        assert_eq!(
            parse_u64("18446744073709551616"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_u64("0x1_0000_0000_0000_0000"),
            Err(NumberError::Overflow)
        );
        assert_eq!(
            parse_u64("99999999999999999999999x"),
            Err(NumberError::Invalid)
        );
    }

    #[test]
    fn names_and_booleans() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("_x-y|z9"));
        assert!(is_valid_name(&"a".repeat(63)));
        assert!(!is_valid_name(&"a".repeat(64)));
        assert!(!is_valid_name("9a"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-a"));
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("True"), None);
    }
}
