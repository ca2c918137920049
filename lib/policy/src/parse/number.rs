//! Numbers, booleans and names as the policy language spells them.
//!
//! One grammar for numbers, in three forms (docs/policy.md, "Numbers"):
//!
//! ```text
//! number  = decimal | hex | based
//! decimal = digits(10)                    4096, 1_000_000
//! hex     = "0x" digits(16)               0x1000, 0x10_0000 (lowercase x)
//! based   = base "#" digits(base) "#"     16#1000#, 2#1010#   (Ada)
//! base    = decimal digits 2..=16, no `_`
//! digits(b) = digit(b) { ["_"] digit(b) } a `_` only between two digits
//! ```
//!
//! Hex digits may be either case; the prefix is `0x` only. Everything is
//! parsed into `u64` with overflow checks; narrower attributes are
//! range-checked by the caller so the error can name the attribute's limit.

/// Why a number did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a number in any accepted form.
    Invalid,
    /// A `_` that does not stand between two digits (leading, trailing,
    /// doubled, or next to the `0x` prefix or a `#`).
    Underscore,
    /// The hex prefix written `0X`.
    UpperHexPrefix,
    /// A number, but larger than `u64::MAX`.
    Overflow,
}

impl NumberError {
    /// What is wrong, for the message after "is not a number".
    pub(crate) fn reason(self) -> Option<&'static str> {
        match self {
            NumberError::Invalid | NumberError::Overflow => None,
            NumberError::Underscore => Some("`_` may only stand between two digits"),
            NumberError::UpperHexPrefix => Some("the hex prefix is `0x`, in lowercase"),
        }
    }
}

/// Parses `text` in any accepted form.
pub(crate) fn parse_u64(text: &str) -> Result<u64, NumberError> {
    if let Some(hex) = text.strip_prefix("0x") {
        return digits(hex, 16);
    }
    if text.starts_with("0X") {
        return Err(NumberError::UpperHexPrefix);
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

/// Digits in `base`, at least one, with single `_` separators between
/// digits.
fn digits(text: &str, base: u32) -> Result<u64, NumberError> {
    if text.is_empty() {
        return Err(NumberError::Invalid);
    }
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut invalid = false;
    let mut misplaced_underscore = false;
    // Whether the previous character was a digit (a `_` needs one before
    // it and one after it).
    let mut after_digit = false;
    for c in text.chars() {
        if c == '_' {
            misplaced_underscore |= !after_digit;
            after_digit = false;
            continue;
        }
        let Some(digit) = c.to_digit(base) else {
            // Keep scanning: a bad character is reported as "invalid",
            // the more useful message, wherever it is.
            invalid = true;
            after_digit = false;
            continue;
        };
        after_digit = true;
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(digit)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    misplaced_underscore |= !after_digit;
    if invalid {
        Err(NumberError::Invalid)
    } else if misplaced_underscore {
        Err(NumberError::Underscore)
    } else if overflow {
        Err(NumberError::Overflow)
    } else {
        Ok(value)
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
        assert_eq!(parse_u64("0xfF"), Ok(255));
        assert_eq!(parse_u64("1_2_3"), Ok(123));
        assert_eq!(parse_u64("16#0010_0000#"), Ok(0x10_0000));
        assert_eq!(parse_u64("2#1010#"), Ok(10));
        assert_eq!(parse_u64("8#17#"), Ok(15));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_u64("16#ffff_ffff_ffff_ffff#"), Ok(u64::MAX));
    }

    #[test]
    fn bad_forms_are_rejected() {
        for bad in [
            "", "0x", "1 ", " 1", "-1", "+1", "1.0", "16#", "16##", "16#1", "17#1#", "1#1#", "#1#",
            "16#g#", "0xg", "12a", "x16#1#", "16#1#1", "1_6#1#", "0x1_g",
        ] {
            assert_eq!(parse_u64(bad), Err(NumberError::Invalid), "{bad:?}");
        }
        for bad in [
            "_1",
            "0x_1",
            "0x1000_",
            "0x10__00",
            "4096_",
            "16#1000_#",
            "16#_1#",
            "1__0",
            "2#_#",
            "_",
        ] {
            assert_eq!(parse_u64(bad), Err(NumberError::Underscore), "{bad:?}");
        }
        assert_eq!(parse_u64("0X1000"), Err(NumberError::UpperHexPrefix));
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
