//! Small text scanners the daemon shares, each in place of a std one that costs the router's
//! flash for its generality: decimal numbers (std's `parse` is inlined anew at every call), a
//! port's colon (`rsplit_once(':')` brings a reverse character searcher), one-byte separators
//! (`split('.')` brings the character searcher) and two-byte ones (`split("\r\n")` and
//! `split_once("::")` bring the two-way substring searcher); and an OS error's text (std's
//! `Display` of `io::Error` brings a lossy UTF-8 decoder for the C library's message).
//! Each is tested against the std function it replaces.

/// Decimal digits (at least one, nothing else) as a number; `None` past `u64::MAX`.
#[inline(never)]
pub fn decimal(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |value, b| {
        let digit = (b as char).to_digit(10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A JSON number that is a whole number: decimal digits after an optional minus sign (the JSON
/// parser has checked the rest of its syntax), within `i64`.
pub fn whole_number(text: &str) -> Option<i64> {
    match text.strip_prefix('-') {
        Some(digits) => 0i64.checked_sub_unsigned(decimal(digits)?),
        None => i64::try_from(decimal(text)?).ok(),
    }
}

/// `text` split at its last `:` (a port's), as `rsplit_once(':')` splits it.
pub fn split_port(text: &str) -> Option<(&str, &str)> {
    let colon = text.bytes().rposition(|b| b == b':')?;
    Some((&text[..colon], &text[colon + 1..]))
}

/// `text` split around the first `byte` (an ASCII one), as `split_once(char)` splits it, without
/// the character searcher.
pub fn split_byte(text: &str, byte: u8) -> Option<(&str, &str)> {
    // A byte of a multi-byte character would cut the text off a character boundary.
    debug_assert!(byte.is_ascii());
    let at = text.bytes().position(|b| b == byte)?;
    Some((&text[..at], &text[at + 1..]))
}

/// The pieces of `text` between `byte`s (an ASCII one), as `split(char)` gives them.
pub fn byte_separated(text: &str, byte: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        let (piece, after) = split_byte(text, byte).map_or((text, None), |(p, a)| (p, Some(a)));
        rest = after;
        Some(piece)
    })
}

/// Whether `text` holds `byte` (an ASCII one), as `contains(char)` says.
pub fn has_byte(text: &str, byte: u8) -> bool {
    text.bytes().any(|b| b == byte)
}

/// `text` split around the first `pair` of ASCII bytes, as `split_once` splits it.
pub fn split_pair<'a>(text: &'a str, pair: &[u8; 2]) -> Option<(&'a str, &'a str)> {
    debug_assert!(pair.is_ascii());
    let at = text.as_bytes().windows(2).position(|w| w == pair)?;
    Some((&text[..at], &text[at + 2..]))
}

/// The pieces of `text` between `pair`s of ASCII bytes, as `split` gives them.
pub fn pair_separated<'a>(text: &'a str, pair: &'a [u8; 2]) -> impl Iterator<Item = &'a str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match split_pair(text, pair) {
            Some((piece, after)) => {
                rest = Some(after);
                Some(piece)
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

/// `pieces` with ", " between them, as `pieces.join(", ")` gives them: std's join is generic
/// over what it joins, and each use came with its own copy.
#[inline(never)]
pub fn comma_separated(pieces: &[&str]) -> String {
    let mut text = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(piece);
    }
    text
}

/// An `io::Error` as std shows one, "Protocol not supported (os error 93)", with the C
/// library's message read as it is (musl's and glibc's are ASCII). An error that carries no OS
/// code shows the error it wraps, if any.
#[derive(Debug)]
pub struct OsError<'a>(pub &'a std::io::Error);

impl std::fmt::Display for OsError<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(code) = self.0.raw_os_error() else {
            return match self.0.get_ref() {
                Some(inner) => std::fmt::Display::fmt(inner, f),
                None => f.write_str("an error the system gave no code for"),
            };
        };
        let mut message = [0u8; 128];
        // SAFETY: the buffer is valid for its length; the XSI strerror_r writes a NUL-terminated
        // message into it, truncated if need be (glibc names an unknown code there too, and
        // says EINVAL; a buffer left empty is shown as std shows it).
        unsafe { libc::strerror_r(code, message.as_mut_ptr().cast(), message.len()) };
        let end = message.iter().position(|b| *b == 0).unwrap_or(0);
        match std::str::from_utf8(&message[..end]) {
            Ok(text) if !text.is_empty() => f.write_str(text)?,
            _ => f.write_str("Unknown error")?,
        }
        write!(f, " (os error {code})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_is_what_join_gives() {
        for pieces in [&[][..], &["wan"], &["wan", "wwan"], &["", "a", ""]] {
            assert_eq!(comma_separated(pieces), pieces.join(", "));
        }
    }

    #[test]
    fn decimal_numbers_read_as_std_reads_them_but_only_digits() {
        for text in ["0", "7", "0042", "18446744073709551615", "9223372036854775807"] {
            assert_eq!(decimal(text), text.parse::<u64>().ok(), "{text}");
        }
        for text in ["", "18446744073709551616", "+5", "-5", "5 ", " 5", "0x5", "1e3", "1.5", "٣"]
        {
            assert_eq!(decimal(text), None, "{text}");
        }
        for text in ["0", "-0", "-7", "42", "-9223372036854775808", "9223372036854775807"] {
            assert_eq!(whole_number(text), text.parse::<i64>().ok(), "{text}");
        }
        for text in ["-", "--5", "9223372036854775808", "-9223372036854775809", "1.0", "2e2"] {
            assert_eq!(whole_number(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn a_port_is_split_off_as_rsplit_once_splits_it(text in "[a-z0-9:é]{0,12}") {
            proptest::prop_assert_eq!(split_port(&text), text.rsplit_once(':'));
        }

        #[test]
        fn a_byte_splits_as_a_char_does(text in "[a.:é]{0,12}") {
            proptest::prop_assert_eq!(split_byte(&text, b'.'), text.split_once('.'));
            let pieces: Vec<&str> = byte_separated(&text, b':').collect();
            proptest::prop_assert_eq!(pieces, text.split(':').collect::<Vec<_>>());
            proptest::prop_assert_eq!(has_byte(&text, b'.'), text.contains('.'));
        }

        #[test]
        fn a_pair_splits_as_split_once_and_split_split(text in "[a:b\r\né]{0,16}") {
            proptest::prop_assert_eq!(split_pair(&text, b"::"), text.split_once("::"));
            let lines: Vec<&str> = pair_separated(&text, b"\r\n").collect();
            proptest::prop_assert_eq!(lines, text.split("\r\n").collect::<Vec<_>>());
        }

        #[test]
        fn decimal_agrees_with_std_on_digits_and_signs(text in "[-+]?[0-9]{0,22}") {
            let unsigned = if text.starts_with(['+', '-']) { None } else { text.parse::<u64>().ok() };
            proptest::prop_assert_eq!(decimal(&text), unsigned);
            let signed = if text.starts_with('+') { None } else { text.parse::<i64>().ok() };
            proptest::prop_assert_eq!(whole_number(&text), signed);
        }
    }

    #[test]
    fn an_os_error_reads_as_std_shows_it() {
        for code in [libc::EPERM, libc::ENOENT, libc::EPROTONOSUPPORT, libc::EADDRINUSE, 4_095] {
            let error = std::io::Error::from_raw_os_error(code);
            assert_eq!(OsError(&error).to_string(), error.to_string(), "code {code}");
        }
        let wrapped = std::io::Error::other("the path is too long");
        assert_eq!(OsError(&wrapped).to_string(), "the path is too long");
        let bare = std::io::Error::from(std::io::ErrorKind::WriteZero);
        assert_eq!(OsError(&bare).to_string(), "an error the system gave no code for");
    }
}
