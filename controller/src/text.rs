//! Small text scanners and writers the daemon shares, each in place of a std one that costs the
//! router's flash for its generality: decimal numbers (std's `parse` is inlined anew at every
//! call), a port's colon (`rsplit_once(':')` brings a reverse character searcher), one-byte
//! separators (`split('.')` brings the character searcher) and two-byte ones (`split("\r\n")`
//! and `split_once("::")` bring the two-way substring searcher); an OS error's text (std's
//! `Display` of `io::Error` brings a lossy UTF-8 decoder for the C library's message); and every
//! message itself: [`Show`] with the [`text!`](crate::text!) and [`put!`](crate::put!) macros
//! write messages without `core::fmt`, whose machinery (argument tables, padding, a formatter
//! per call) would be in the router binary for the sake of `format!` alone.
//! Each is tested against the std function it replaces.

/// A piece of a message: writes itself onto the end of `out`. Implemented for text, integers and
/// the types wanmon's messages name; [`display_by_show!`](crate::display_by_show!) gives such a
/// type `Display` too, for the host's tests and the simulator.
pub trait Show {
    fn show(&self, out: &mut String);
}

impl<T: Show + ?Sized> Show for &T {
    #[inline]
    fn show(&self, out: &mut String) {
        (**self).show(out);
    }
}

impl Show for str {
    #[inline]
    fn show(&self, out: &mut String) {
        push_str(out, self);
    }
}

impl Show for String {
    #[inline]
    fn show(&self, out: &mut String) {
        push_str(out, self);
    }
}

macro_rules! show_unsigned {
    ($($ty:ty),+) => {$(
        impl Show for $ty {
            #[inline]
            fn show(&self, out: &mut String) {
                push_unsigned(out, *self as u64);
            }
        }
    )+};
}
show_unsigned!(u8, u16, u32, u64, usize);

macro_rules! show_signed {
    ($($ty:ty),+) => {$(
        impl Show for $ty {
            #[inline]
            fn show(&self, out: &mut String) {
                push_signed(out, i64::from(*self));
            }
        }
    )+};
}
show_signed!(i32, i64);

impl Show for bool {
    #[inline]
    fn show(&self, out: &mut String) {
        push_str(out, if *self { "true" } else { "false" });
    }
}

/// One body for every piece of text, so that no message inlines a copy of `push_str`'s growth.
#[inline(never)]
pub fn push_str(out: &mut String, text: &str) {
    out.push_str(text);
}

/// `value` in decimal, as `{}` shows it.
pub fn push_unsigned(out: &mut String, value: u64) {
    push_digits(out, value, 10);
}

/// `value`'s digits in `radix` (2 to 16), lower-case: as `{}` and `{:x}` show it.
#[inline(never)]
pub fn push_digits(out: &mut String, value: u64, radix: u64) {
    let mut digits = [0u8; 64];
    let (mut rest, mut at) = (value, digits.len());
    loop {
        at -= 1;
        digits[at] = b"0123456789abcdef"[(rest % radix) as usize];
        rest /= radix;
        if rest == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    push_str(out, utf8(&digits[at..]).unwrap_or_default());
}

/// `value` in decimal with its sign, as `{}` shows it.
#[inline(never)]
pub fn push_signed(out: &mut String, value: i64) {
    if value < 0 {
        push_str(out, "-");
    }
    push_unsigned(out, value.unsigned_abs());
}

/// The characters of `text`, as `chars().count()` counts them: its bytes that begin one.
pub fn char_count(text: &str) -> usize {
    text.bytes().filter(|b| b & 0xc0 != 0x80).count()
}

/// Where the first `chars` characters of `text` end, in bytes (its length if it has fewer).
pub fn after_chars(text: &str, chars: usize) -> usize {
    let mut starts = text.bytes().enumerate().filter(|(_, b)| b & 0xc0 != 0x80);
    starts.nth(chars).map_or(text.len(), |(at, _)| at)
}

/// `text` padded with spaces to `width` characters as a table column: aligned right for a
/// positive `width` (`{:>width$}`), left for a negative one (`{:<width$}`).
#[inline(never)]
pub fn push_padded(out: &mut String, text: &str, width: i32) {
    let padding = (width.unsigned_abs() as usize).saturating_sub(char_count(text));
    if width < 0 {
        push_str(out, text);
    }
    out.extend(std::iter::repeat_n(' ', padding));
    if width >= 0 {
        push_str(out, text);
    }
}

/// Thousandths as a number with one decimal, rounded half away from zero: 85_249 as "85.2",
/// -1_500 as "-1.5", -40 as "0.0" (never "-0.0").
#[inline(never)]
pub fn push_one_decimal(out: &mut String, thousandths: i64) {
    let tenths = thousandths.saturating_add(if thousandths >= 0 { 50 } else { -50 }) / 100;
    if tenths < 0 {
        push_str(out, "-");
    }
    let tenths = tenths.unsigned_abs();
    crate::put!(out, tenths / 10, ".", tenths % 10);
}

/// Writes its pieces (anything [`Show`]) onto the end of a `&mut String`:
/// `put!(out, "link ", name, " up")`.
#[macro_export]
macro_rules! put {
    ($out:expr, $($piece:expr),+ $(,)?) => {{
        let out: &mut String = $out;
        $( $crate::text::Show::show(&$piece, out); )+
    }};
}

/// Its pieces (anything [`Show`]) joined into a new `String`, as `format!` would make it from
/// `{}`s: `text!("link ", name, " up")`.
#[macro_export]
macro_rules! text {
    ($($piece:expr),+ $(,)?) => {{
        let mut out = String::new();
        $crate::put!(&mut out, $($piece),+);
        out
    }};
}

/// `Display` for types that [`Show`] themselves: the host's `to_string()` and `{}` give the
/// same text, and the router binary, which never asks for it, keeps no formatter.
#[macro_export]
macro_rules! display_by_show {
    ($($ty:ty),+ $(,)?) => {$(
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::text!(self))
            }
        }
    )+};
}

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

impl Show for OsError<'_> {
    fn show(&self, out: &mut String) {
        let Some(code) = self.0.raw_os_error() else {
            // std's own errors without a code carry a fixed message that only its formatter
            // reads, and wanmon wraps none of its own.
            return push_str(out, "an error the system gave no code for");
        };
        let mut message = [0u8; 128];
        // SAFETY: the buffer is valid for its length; the XSI strerror_r writes a NUL-terminated
        // message into it, truncated if need be (glibc names an unknown code there too, and
        // says EINVAL; a buffer left empty is shown as std shows it).
        unsafe { libc::strerror_r(code, message.as_mut_ptr().cast(), message.len()) };
        let end = message.iter().position(|b| *b == 0).unwrap_or(0);
        match utf8(&message[..end]) {
            Some(text) if !text.is_empty() => push_str(out, text),
            _ => push_str(out, "Unknown error"),
        }
        crate::put!(out, " (os error ", code, ")");
    }
}

crate::display_by_show!(OsError<'_>);

/// How many of `bytes`' first bytes are whole UTF-8 characters, as
/// `Utf8Error::valid_up_to` counts them: a plain walk, where core's validator is unrolled for
/// speed (1 KB of the router's flash, for requests and files of a few kilobytes).
pub fn utf8_prefix(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&lead) = bytes.get(at) {
        // The continuation bytes a lead byte asks for, and the range of the first of them
        // (narrower after E0, ED, F0 and F4: no overlong forms, surrogates or code points
        // past U+10FFFF).
        let (more, first) = match lead {
            0x00..=0x7f => (0, 0x80..=0xbf),
            0xc2..=0xdf => (1, 0x80..=0xbf),
            0xe0 => (2, 0xa0..=0xbf),
            0xed => (2, 0x80..=0x9f),
            0xe1..=0xef => (2, 0x80..=0xbf),
            0xf0 => (3, 0x90..=0xbf),
            0xf1..=0xf3 => (3, 0x80..=0xbf),
            0xf4 => (3, 0x80..=0x8f),
            _ => return at,
        };
        for n in 1..=more {
            let Some(&byte) = bytes.get(at + n) else { return at };
            let range = if n == 1 { first.clone() } else { 0x80..=0xbf };
            if !range.contains(&byte) {
                return at;
            }
        }
        at += 1 + more;
    }
    at
}

/// `bytes` as text if they are UTF-8, as `std::str::from_utf8` decides.
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    // SAFETY: `utf8_prefix` found every byte part of a whole UTF-8 character.
    (utf8_prefix(bytes) == bytes.len()).then(|| unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// `bytes` as a `String` if they are UTF-8, as `String::from_utf8` decides.
pub fn utf8_string(bytes: Vec<u8>) -> Option<String> {
    // SAFETY: as in `utf8`.
    (utf8_prefix(&bytes) == bytes.len()).then(|| unsafe { String::from_utf8_unchecked(bytes) })
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
        fn numbers_are_written_as_display_writes_them(unsigned: u64, signed: i64) {
            proptest::prop_assert_eq!(text!(unsigned), unsigned.to_string());
            proptest::prop_assert_eq!(text!(signed), signed.to_string());
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
    fn pieces_read_as_format_writes_them() {
        let name = String::from("wan");
        let said =
            text!("link ", name, " up ", 7u8, " ", -3i32, " ", u64::MAX, " ", i64::MIN, " ", true);
        assert_eq!(said, format!("link {name} up 7 -3 {} {} true", u64::MAX, i64::MIN));
        let mut out = String::from("> ");
        put!(&mut out, 0usize, "|", 40u16);
        assert_eq!(out, "> 0|40");
    }

    #[test]
    fn decimals_and_columns_read_as_format_writes_them() {
        let cases =
            [(85_249, "85.2"), (85_250, "85.3"), (0, "0.0"), (-1_500, "-1.5"), (-40, "0.0")];
        for (thousandths, shown) in
            cases.into_iter().chain([(-450, "-0.5"), (i64::MIN, "-9223372036854775.8")])
        {
            let mut out = String::new();
            push_one_decimal(&mut out, thousandths);
            assert_eq!(out, shown, "{thousandths}");
        }
        for (text, width) in [("wan", 8), ("wan", -8), ("longer than", 4), ("x", 0), ("é", -3)] {
            let mut out = String::new();
            push_padded(&mut out, text, width);
            let expected = match width {
                w if w < 0 => format!("{text:<w$}", w = w.unsigned_abs() as usize),
                w => format!("{text:>w$}", w = w as usize),
            };
            assert_eq!(out, expected, "{text:?} {width}");
        }
    }

    #[test]
    fn an_os_error_reads_as_std_shows_it() {
        for code in [libc::EPERM, libc::ENOENT, libc::EPROTONOSUPPORT, libc::EADDRINUSE, 4_095] {
            let error = std::io::Error::from_raw_os_error(code);
            assert_eq!(OsError(&error).to_string(), error.to_string(), "code {code}");
        }
        let wrapped = std::io::Error::other("the path is too long");
        assert_eq!(OsError(&wrapped).to_string(), "an error the system gave no code for");
        let bare = std::io::Error::from(std::io::ErrorKind::WriteZero);
        assert_eq!(OsError(&bare).to_string(), "an error the system gave no code for");
    }

    fn utf8_is_decided_as_std_decides(bytes: &[u8]) {
        let std = std::str::from_utf8(bytes);
        assert_eq!(utf8(bytes), std.ok(), "{bytes:x?}");
        let valid = std.map_or_else(|e| e.valid_up_to(), str::len);
        assert_eq!(utf8_prefix(bytes), valid, "{bytes:x?}");
        assert_eq!(utf8_string(bytes.to_vec()).as_deref(), std.ok());
    }

    #[test]
    fn utf8_edges_are_decided_as_std_decides() {
        for bytes in [
            &b""[..],
            b"plain",
            "é ü € 𝄞 \u{10ffff}".as_bytes(),
            b"\xc0\x80",
            b"\xc1\xbf",
            b"\xc2\x80",
            b"\xe0\x80\x80",
            b"\xe0\xa0\x80",
            b"\xed\x9f\xbf",
            b"\xed\xa0\x80",
            b"\xf0\x8f\xbf\xbf",
            b"\xf0\x90\x80\x80",
            b"\xf4\x8f\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf5\x80\x80\x80",
            b"ok\xe2\x82",
            b"ok\xe2\x82x",
            b"\x80",
            b"\xff\xfe",
        ] {
            utf8_is_decided_as_std_decides(bytes);
        }
        // Every sequence of up to three bytes drawn from a set that crosses each boundary.
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
        ];
        for a in edges {
            for b in edges {
                utf8_is_decided_as_std_decides(&[a, b]);
                for c in edges {
                    utf8_is_decided_as_std_decides(&[a, b, c]);
                    utf8_is_decided_as_std_decides(&[a, b, c, 0x80]);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn utf8_decides_random_bytes_as_std(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            utf8_is_decided_as_std_decides(&bytes);
        }
    }

    #[test]
    fn characters_are_counted_and_cut_as_chars_counts_them() {
        for text in ["", "plain", "é ü € 𝄞", "ééééé"] {
            assert_eq!(char_count(text), text.chars().count(), "{text}");
            for n in 0..7 {
                let std = text.char_indices().nth(n).map_or(text.len(), |(at, _)| at);
                assert_eq!(after_chars(text, n), std, "{text} {n}");
            }
        }
    }
}
