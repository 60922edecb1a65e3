//! A small JSON reader that keeps the line of every value, so config errors can name where they are.
//!
//! Hand-written rather than serde_json: the router's flash budget has no room for serde, and a
//! value tree with positions lets validation report every error with its line, not just the first.
//! Numbers are kept as text: the config only has whole numbers, and the caller says what it expects.

/// Nesting deeper than this is refused: a config is a few levels deep, and recursion must stay bounded.
const MAX_DEPTH: usize = 32;
/// Members of one object: a config object has a few dozen keys at most, and the duplicate check
/// compares each new key with those before it, so this keeps it bounded (and the errors few).
pub const MAX_MEMBERS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number exactly as written, checked against the JSON grammar.
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in file order; duplicate keys are refused while parsing.
    Object(Vec<(String, Node)>),
}

/// A value with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: u32,
    pub value: Value,
}

impl Node {
    /// A short name of the value's kind, for "expected X, got Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    /// The value as it would be shown to a user in an error message, cut short if long.
    pub fn shown(&self) -> String {
        let text = match &self.value {
            Value::Null => "null".to_string(),
            Value::Bool(b) => text!(b),
            Value::Number(n) => n.clone(),
            Value::String(s) => quoted(s),
            Value::Array(_) => "an array".to_string(),
            Value::Object(_) => "an object".to_string(),
        };
        shorten(&text)
    }
}

/// `text` in double quotes for a message, `"` and `\` and control characters escaped: what
/// `{:?}` gives for plain text, without pulling `str`'s `Debug` into the router's binary.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    escape_chars(&mut out, text, false);
    out.push('"');
    out
}

/// Longest text an error message repeats from a file; longer is cut, ending in "...".
const SHOWN_CHARS: usize = 60;

/// `text` as an error message may repeat it: cut short if long.
pub fn shorten(text: &str) -> String {
    if crate::text::char_count(text) <= SHOWN_CHARS {
        return text.to_string();
    }
    text!(&text[..crate::text::after_chars(text, SHOWN_CHARS - 3)], "...")
}

/// A syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl crate::text::Show for SyntaxError {
    fn show(&self, out: &mut String) {
        put!(out, "line ", self.line, " column ", self.column, ": ", self.message)
    }
}

crate::display_by_show!(SyntaxError);

impl std::error::Error for SyntaxError {}

/// Parses one JSON document; anything but whitespace after it is an error.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut parser = Parser { bytes: text.as_bytes(), pos: 0, line: 1, line_start: 0 };
    parser.skip_whitespace();
    let node = parser.value(0)?;
    parser.skip_whitespace();
    if parser.pos < parser.bytes.len() {
        return Err(parser.error("unexpected text after the end of the document"));
    }
    Ok(node)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
}

/// Where the parser was: the column is counted only when an error needs it, so a long line costs
/// nothing until then (counting it per key made one-line files quadratic).
#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    line: u32,
    line_start: usize,
}

impl Parser<'_> {
    fn mark(&self) -> Mark {
        Mark { pos: self.pos, line: self.line, line_start: self.line_start }
    }

    fn error(&self, message: &str) -> SyntaxError {
        self.error_at(self.mark(), message)
    }

    fn error_at(&self, mark: Mark, message: &str) -> SyntaxError {
        let column = self.bytes[mark.line_start..mark.pos.min(self.bytes.len())]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count() as u32
            + 1;
        SyntaxError { line: mark.line, column, message: message.to_string() }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                _ => break,
            }
        }
    }

    fn expect_literal(&mut self, literal: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            Ok(value)
        } else {
            Err(self.error("expected a value (object, array, string, number, true, false or null)"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let line = self.line;
        let value = match self.peek() {
            None => return Err(self.error("unexpected end of input, expected a value")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.expect_literal("true", Value::Bool(true))?,
            Some(b'f') => self.expect_literal("false", Value::Bool(false))?,
            Some(b'n') => self.expect_literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => Value::Number(self.number()?),
            Some(_) => {
                return Err(self.error(
                    "expected a value (object, array, string, number, true, false or null)",
                ));
            }
        };
        Ok(Node { line, value })
    }

    fn object(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.pos += 1;
        let mut members: Vec<(String, Node)> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            if members.len() == MAX_MEMBERS {
                return Err(self.error(&text!("more than ", MAX_MEMBERS, " keys in one object")));
            }
            let key_mark = self.mark();
            let key = self.string()?;
            if members.iter().any(|(existing, _)| *existing == key) {
                let message = text!("duplicate key \"", escape(&shorten(&key)), "\"");
                return Err(self.error_at(key_mark, &message));
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after the key"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let node = self.value(depth + 1)?;
            members.push((key, node));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(members));
                }
                _ => return Err(self.error("expected ',' or '}' after an object member")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected ',' or ']' after an array element")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self.bytes.get(self.pos..self.pos + 4).unwrap_or_default();
        let value = digits
            .iter()
            .try_fold(0u32, |value, digit| Some(value * 16 + (*digit as char).to_digit(16)?));
        match value {
            Some(value) if digits.len() == 4 => {
                self.pos += 4;
                Ok(value)
            }
            _ => Err(self.error("expected four hex digits after \\u")),
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // The input is a &str and we stopped on ASCII bytes, so this slice is valid UTF-8.
            out.push_str(crate::text::utf8(&self.bytes[start..self.pos]).unwrap_or_default());
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.peek().ok_or_else(|| self.error("unterminated string"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                if !self.bytes[self.pos..].starts_with(b"\\u") {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return Err(self.error("unpaired surrogate in \\u escape"));
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            out.push(
                                char::from_u32(code)
                                    .ok_or_else(|| self.error("invalid \\u escape"))?,
                            );
                        }
                        _ => return Err(self.error("invalid escape in string")),
                    }
                }
                Some(_) => return Err(self.error("control character in string (escape it)")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let first_digit = self.peek();
        let integer_digits = self.digits();
        if integer_digits == 0 {
            return Err(self.error("expected a digit"));
        }
        if first_digit == Some(b'0') && integer_digits > 1 {
            return Err(self.error("leading zeros are not allowed in numbers"));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        // Only ASCII digits, signs, '.' and exponents were taken: always UTF-8.
        Ok(crate::text::utf8(&self.bytes[start..self.pos]).unwrap_or_default().to_string())
    }
}

/// Escapes a string for a JSON string literal (without the quotes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text` escaped for a JSON string literal. Besides the JSON minimum it escapes `<`, `>`
/// and `&`, so that JSON embedded in a page can never close a script element.
pub fn escape_into(out: &mut String, text: &str) {
    escape_chars(out, text, true);
}

/// JSON string escaping; with `html`, also what would end a script or start markup.
fn escape_chars(out: &mut String, text: &str, html: bool) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if html => push_unicode_escape(out, c as u32),
            c if (c as u32) < 0x20 || c == '\u{7f}' => push_unicode_escape(out, c as u32),
            c => out.push(c),
        }
    }
}

fn push_unicode_escape(out: &mut String, code: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push_str("\\u");
    for shift in [12, 8, 4, 0] {
        out.push(char::from(HEX[((code >> shift) & 0xF) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(text).expect_err(text)
    }

    #[test]
    fn parses_nested_values_with_lines() {
        let doc = parse("{\n  \"a\": [1, -2.5e3, true],\n  \"b\": {\"c\": null}\n}").unwrap();
        let Value::Object(members) = &doc.value else { panic!("object expected") };
        assert_eq!(members[0].0, "a");
        assert_eq!(members[0].1.line, 2);
        let Value::Array(items) = &members[0].1.value else { panic!("array expected") };
        assert_eq!(items[1].value, Value::Number("-2.5e3".into()));
        assert_eq!(members[1].1.line, 3);
    }

    #[test]
    fn decodes_escapes_and_surrogate_pairs() {
        let doc = parse(r#""a\"b\\c\/\n\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(doc.value, Value::String("a\"b\\c/\né😀".into()));
    }

    #[test]
    fn reports_position_of_errors() {
        let e = err("{\n  \"a\": 1,\n  \"a\": 2\n}");
        assert_eq!((e.line, e.column), (3, 3));
        assert_eq!(e.message, "duplicate key \"a\"");
        assert_eq!(err("{\"a\" 1}").message, "expected ':' after the key");
        assert_eq!(err("[1,]").line, 1);
        assert_eq!(err("[1 2]").message, "expected ',' or ']' after an array element");
        assert_eq!(err("{\"a\":1,}").message, "expected a key in double quotes");
        assert_eq!(err("").message, "unexpected end of input, expected a value");
        assert_eq!(err("{} x").message, "unexpected text after the end of the document");
        assert_eq!(err("\"abc").message, "unterminated string");
        assert_eq!(err("\"a\u{1}\"").message, "control character in string (escape it)");
        assert_eq!(err("\"\\x\"").message, "invalid escape in string");
        assert_eq!(err("\"\\ud800\"").message, "unpaired surrogate in \\u escape");
        assert_eq!(err("\"\\u12\"").message, "expected four hex digits after \\u");
        assert_eq!(err("012").message, "leading zeros are not allowed in numbers");
        assert_eq!(err("1.").message, "expected a digit after the decimal point");
        assert_eq!(err("1e").message, "expected a digit in the exponent");
        assert_eq!(err("-").message, "expected a digit");
        assert_eq!(err("nul").line, 1);
        assert_eq!(err("'a'").column, 1);
    }

    #[test]
    fn refuses_deep_nesting_without_overflowing_the_stack() {
        let deep = "[".repeat(10_000);
        assert_eq!(err(&deep).message, "nested too deeply");
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let e = err("{\"é\": x}");
        assert_eq!(e.column, 7);
    }

    #[test]
    fn escape_makes_html_safe_json() {
        assert_eq!(
            escape("<img src=x onerror=\"a\">&"),
            "\\u003cimg src=x onerror=\\\"a\\\"\\u003e\\u0026"
        );
        assert_eq!(escape("a\u{1}b\nc"), "a\\u0001b\\nc");
        let round = parse(&format!("\"{}\"", escape("<\u{2028}\"\\é"))).unwrap();
        assert_eq!(round.value, Value::String("<\u{2028}\"\\é".into()));
    }

    #[test]
    fn shown_values_are_cut_short() {
        let long = Node { line: 1, value: Value::String("x".repeat(100)) };
        assert!(long.shown().ends_with("..."));
        assert!(long.shown().chars().count() <= 60);
    }
}
