//! The JSON mapping of the data model, and the strict JSON parser it is built on.
//!
//! # The parser
//!
//! [`parse_json`] accepts exactly the JSON text grammar of RFC 8259 §2–§7 and yields a [`Json`]
//! tree that keeps number literals as written and object members in source order. In
//! particular it rejects: a byte order mark, comments, trailing commas, `NaN` and `Infinity`,
//! leading zeros (`01`, `-01`), a leading `+`, `.5` and `1.`, unescaped control characters
//! (U+0000..U+001F) in strings, unknown escapes, `\u` escapes of a lone surrogate (a high
//! surrogate must be followed directly by a `\u` low surrogate), anything but whitespace
//! (space, tab, LF, CR) after the value, two members of one object with the same key (after
//! unescaping), and nesting of arrays and objects deeper than [`MAX_JSON_DEPTH`] (512;
//! a top-level array or object has nesting 1). It never recurses, so no input can exhaust the
//! stack, and it never panics.
//!
//! A [`JsonError`] names the byte offset, the 1-based line and column (lines are separated by
//! LF; columns count Unicode scalar values), the JSON pointer (RFC 6901) of the innermost
//! value being read when the problem was found (the empty pointer `""` is the top-level
//! value; there is no pointer for text after the top-level value), and a message.
//!
//! # The mapping
//!
//! Every [`Value`] has exactly one rendering, produced by [`to_json`] (compact) and
//! [`to_json_pretty`] (indented); [`from_json`] accepts those renderings and a few equivalent
//! spellings. For every value `v` of depth at most [`MAX_DEPTH`] (every value the CBOR
//! decoder can produce), `from_json(&to_json(&v)) == Ok(v)` and
//! `from_json(&to_json_pretty(&v)) == Ok(v)`.
//!
//! | Data model | JSON |
//! |---|---|
//! | `Null`, `Bool(false)`, `Bool(true)` | `null`, `false`, `true` |
//! | `Int(n)` | the decimal integer `n`: `-` for negatives, no leading zeros, no `+` |
//! | `Text(s)` | a string |
//! | `Array(xs)` | an array |
//! | `Map(m)`, all keys `Text`, and not one entry whose key starts with `$` | an object |
//! | any other `Map(m)` | `{"$map": [[k1, v1], [k2, v2], ...]}` |
//! | `Bytes(b)` | `{"$bytes": "<base64>"}` |
//! | `Link(id)` | `{"$link": "b3:<64 lowercase hex digits>"}` |
//!
//! Reading JSON ([`from_json`], [`json_to_value`]):
//!
//! - **Numbers** must be integers: a number literal with a fraction or exponent part (`1.0`,
//!   `1e3`, `1E0`) is rejected even if its value is integral. The digits are read exactly
//!   (no floating point) and must lie in −2⁶⁴ ..= 2⁶⁴−1, else "integer out of range".
//!   `-0` is accepted and means `0`.
//! - **Objects** with exactly one member whose key starts with `$` are *extensions*:
//!   - `{"$bytes": s}`: `s` is a string of standard base64 (RFC 4648 §4, alphabet
//!     `A–Z a–z 0–9 + /`) with `=` padding to a multiple of 4 characters, no whitespace, and
//!     all unused bits of the last symbol zero; this is the one canonical encoding of the
//!     bytes. `""` is the empty byte string.
//!   - `{"$link": s}`: `s` is `b3:` followed by exactly 64 lowercase hex digits.
//!   - `{"$map": a}`: `a` is an array whose elements are arrays of exactly two elements,
//!     `[key, value]`, each read by these same rules (so keys may be any value). Entries may
//!     come in any order; they are stored in canonical order. Two keys with the same value are
//!     an error. Text-keyed maps may also be written this way.
//!   - any other key starting with `$`: error "unknown extension".
//! - **Other objects** (no members, or two or more members, or one member whose key does not
//!   start with `$`) are maps with text keys, stored in canonical order. Keys starting with `$`
//!   are ordinary keys here.
//! - **Depth**: the value read must not be deeper than [`MAX_DEPTH`], counted as the CBOR
//!   decoder does: a top-level scalar has depth 0, and every array, map and link adds one
//!   (a link counts like a container around its id; byte strings are scalars). So an array,
//!   map or link may sit at depth at most `MAX_DEPTH - 1`. Every value [`from_json`] accepts
//!   therefore encodes to CBOR that [`cbor::decode`](super::cbor::decode) accepts.
//!
//! Writing JSON ([`to_json`], [`to_json_pretty`]):
//!
//! - Map members and `$map` entries appear in the map's canonical order (bytewise order of the
//!   keys' CBOR encodings).
//! - Strings escape `"` as `\"`, `\` as `\\`, U+0008, U+0009, U+000A, U+000C, U+000D as
//!   `\b`, `\t`, `\n`, `\f`, `\r`, and every other character below U+0020 as `\u00xx` with
//!   lowercase hex digits. Everything else, including `/`, U+007F and all non-ASCII
//!   characters, is written as itself in UTF-8.
//! - Compact output has no whitespace between tokens. Pretty output puts each element of a non-empty
//!   array or object on its own line, indented by two spaces per level of nesting, closes the
//!   container on its own line at the container's indentation, writes `": "` between key and
//!   value, writes empty containers as `[]` and `{}`, and has no trailing newline.
//!
//! The nesting of the rendering of a value of depth at most [`MAX_DEPTH`] is at most
//! `3 × 128 + 1 = 385` (`$map` spends three levels per map), within [`MAX_JSON_DEPTH`].

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::cbor::{Int, MAX_DEPTH, Map, Value};
use crate::object::ObjectId;

mod mapping;

pub use mapping::{from_json, json_to_value, to_json, to_json_pretty};

/// The deepest nesting of JSON arrays and objects [`parse_json`] accepts.
///
/// A top-level array or object has nesting 1; a top-level scalar has nesting 0.
pub const MAX_JSON_DEPTH: usize = 512;

/// Standard base64 with padding; decoding accepts only the canonical form.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A parsed JSON value, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as the literal written in the text (always valid JSON number syntax when
    /// produced by [`parse_json`]).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: its members in source order, keys unescaped and pairwise distinct.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The JSON type of the value, for messages: `null`, `boolean`, `number`, `string`,
    /// `array` or `object`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "boolean",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
        }
    }
}

/// A position in a JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextPos {
    /// Byte offset from the start of the text.
    pub offset: usize,
    /// Line number, from 1; lines are separated by LF.
    pub line: usize,
    /// Column number, from 1, counting Unicode scalar values from the start of the line.
    pub column: usize,
}

impl TextPos {
    /// The position of byte `offset` of `text` (clamped to the text's length).
    #[must_use]
    pub fn at(text: &str, offset: usize) -> Self {
        let b = text.as_bytes();
        let offset = offset.min(b.len());
        let before = &b[..offset];
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
        // Count scalar values: every byte that is not a UTF-8 continuation byte starts one.
        let column = 1 + before[line_start..]
            .iter()
            .filter(|&&c| c & 0xc0 != 0x80)
            .count();
        Self {
            offset,
            line,
            column,
        }
    }
}

/// Why a text is not accepted as JSON or as the JSON form of a value, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    /// Where in the text the problem is; `None` when there is no text ([`json_to_value`]).
    pub pos: Option<TextPos>,
    /// The JSON pointer (RFC 6901) of the value in which the problem is (`""` is the top-level
    /// value); `None` for text after the top-level value.
    pub pointer: Option<String>,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid JSON")?;
        if let Some(p) = &self.pos {
            write!(
                f,
                " at line {}, column {} (byte {})",
                p.line, p.column, p.offset
            )?;
        }
        match &self.pointer {
            Some(p) if !p.is_empty() => write!(f, " in `{p}`")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901): `~` as `~0`, `/` as `~1`.
#[must_use]
pub fn pointer_escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Parses one JSON text under the strict rules in the [module documentation](self).
///
/// # Errors
/// [`JsonError`] with position, pointer and message of the first problem.
pub fn parse_json(text: &str) -> Result<Json, JsonError> {
    let mut p = Parser::new(text, None);
    match p.run()? {
        Some(j) => Ok(j),
        // Unreachable without a target; reported rather than asserted.
        None => Err(p.err(0, "internal error: parse stopped early")),
    }
}

/// The position of the value that JSON pointer `pointer` (RFC 6901, e.g. `/a/0`) refers to
/// in `text`: the offset of its first character.
///
/// Returns `None` if the pointer refers to no value or the text is not valid JSON before it.
/// Array indices are compared as written, so `/01` never matches.
#[must_use]
pub fn pointer_position(text: &str, pointer: &str) -> Option<TextPos> {
    let mut p = Parser::new(text, Some(pointer));
    match p.run() {
        Ok(None) => Some(TextPos::at(text, p.pos)),
        _ => None,
    }
}

enum Frame {
    Array {
        items: Vec<Json>,
        ptr_len: usize,
    },
    Object {
        members: Vec<(String, Json)>,
        seen: HashSet<String>,
        key: String,
        ptr_len: usize,
    },
}

struct Parser<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    /// The pointer of the value being read.
    ptr: String,
    /// Stop at the start of the value with this pointer.
    target: Option<&'a str>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, target: Option<&'a str>) -> Self {
        Self {
            text,
            b: text.as_bytes(),
            pos: 0,
            ptr: String::new(),
            target,
        }
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> JsonError {
        JsonError {
            pos: Some(TextPos::at(self.text, offset)),
            pointer: Some(self.ptr.clone()),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// The character at byte `at`, for messages.
    fn char_at(&self, at: usize) -> Option<char> {
        self.text.get(at..).and_then(|s| s.chars().next())
    }

    /// The character at byte `at` as shown in messages: invisible ones as `\u{..}`.
    fn shown_at(&self, at: usize) -> String {
        match self.char_at(at) {
            Some(c) if c.is_control() || (c.is_whitespace() && c != ' ') || c == '\u{feff}' => {
                c.escape_unicode().to_string()
            }
            Some(c) => c.to_string(),
            None => String::new(),
        }
    }

    /// An error for an unexpected character (or end of input) at `at` where `expected` was due.
    fn unexpected(&self, at: usize, expected: &str) -> JsonError {
        match self.char_at(at) {
            None => self.err(at, format!("unexpected end of input, expected {expected}")),
            Some('/') => self.err(at, "comments are not allowed"),
            Some(_) => self.err(
                at,
                format!("expected {expected}, found `{}`", self.shown_at(at)),
            ),
        }
    }

    /// Reads the whole text; with a target, returns `Ok(None)` at the start of the target
    /// value, leaving `pos` there.
    fn run(&mut self) -> Result<Option<Json>, JsonError> {
        if self.text.starts_with('\u{feff}') {
            return Err(self.err(0, "a byte order mark is not allowed"));
        }
        let mut stack: Vec<Frame> = Vec::new();
        'value: loop {
            self.skip_ws();
            if self.target == Some(self.ptr.as_str()) {
                return Ok(None);
            }
            let start = self.pos;
            let mut v = match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    if stack.len() >= MAX_JSON_DEPTH {
                        return Err(self.err(
                            start,
                            format!("nesting deeper than {MAX_JSON_DEPTH} levels"),
                        ));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let ptr_len = self.ptr.len();
                    if open == b'[' {
                        if self.peek() == Some(b']') {
                            self.pos += 1;
                            Json::Array(Vec::new())
                        } else {
                            self.ptr.push_str("/0");
                            stack.push(Frame::Array {
                                items: Vec::new(),
                                ptr_len,
                            });
                            continue 'value;
                        }
                    } else if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Json::Object(Vec::new())
                    } else {
                        let mut seen = HashSet::new();
                        let key = self.member_key(&mut seen, ptr_len)?;
                        stack.push(Frame::Object {
                            members: Vec::new(),
                            seen,
                            key,
                            ptr_len,
                        });
                        continue 'value;
                    }
                }
                Some(b'"') => Json::String(self.string()?),
                Some(b'-' | b'0'..=b'9') => Json::Number(self.number()?),
                Some(b't') => self.literal("true", Json::Bool(true))?,
                Some(b'f') => self.literal("false", Json::Bool(false))?,
                Some(b'n') => self.literal("null", Json::Null)?,
                Some(b']') if matches!(stack.last(), Some(Frame::Array { .. })) => {
                    return Err(self.err(start, "trailing commas are not allowed"));
                }
                _ => return Err(self.unexpected(start, "a JSON value")),
            };
            // `v` is complete: add it to its container, closing containers as they end.
            loop {
                match stack.pop() {
                    None => {
                        self.skip_ws();
                        if self.pos < self.b.len() {
                            let mut e = self.unexpected(self.pos, "the end of the text");
                            e.pointer = None;
                            return Err(e);
                        }
                        return Ok(Some(v));
                    }
                    Some(Frame::Array { mut items, ptr_len }) => {
                        items.push(v);
                        self.ptr.truncate(ptr_len);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.ptr.push('/');
                                self.ptr.push_str(&items.len().to_string());
                                stack.push(Frame::Array { items, ptr_len });
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                v = Json::Array(items);
                            }
                            _ => return Err(self.unexpected(self.pos, "`,` or `]`")),
                        }
                    }
                    Some(Frame::Object {
                        mut members,
                        mut seen,
                        key,
                        ptr_len,
                    }) => {
                        members.push((key, v));
                        self.ptr.truncate(ptr_len);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                let key = self.member_key(&mut seen, ptr_len)?;
                                stack.push(Frame::Object {
                                    members,
                                    seen,
                                    key,
                                    ptr_len,
                                });
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                v = Json::Object(members);
                            }
                            _ => return Err(self.unexpected(self.pos, "`,` or `}`")),
                        }
                    }
                }
            }
        }
    }

    /// Reads `"key" :` of an object member and extends the pointer with the key.
    fn member_key(
        &mut self,
        seen: &mut HashSet<String>,
        ptr_len: usize,
    ) -> Result<String, JsonError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {}
            Some(b'}') => return Err(self.err(start, "trailing commas are not allowed")),
            _ => return Err(self.unexpected(start, "a string key")),
        }
        let key = self.string()?;
        self.ptr.push('/');
        self.ptr.push_str(&pointer_escape(&key));
        if seen.contains(&key) {
            return Err(self.err(start, format!("duplicate key {key:?}")));
        }
        seen.insert(key.clone());
        self.skip_ws();
        if self.peek() != Some(b':') {
            self.ptr.truncate(ptr_len);
            return Err(self.unexpected(self.pos, "`:` after the key"));
        }
        self.pos += 1;
        Ok(key)
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, JsonError> {
        if self.b[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err(self.pos, format!("invalid literal, expected `{word}`")))
        }
    }

    fn number(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        match scan_number(&self.b[start..]) {
            Ok(n) => {
                self.pos += n;
                Ok(self.text[start..self.pos].to_owned())
            }
            Err((at, msg)) => {
                if msg == EXPECTED_DIGIT {
                    Err(self.unexpected(start + at, "a digit"))
                } else {
                    Err(self.err(start + at, msg))
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            // `run` and `pos` are at ASCII bytes or the end, hence on character boundaries.
            out.push_str(self.text.get(run..self.pos).unwrap_or_default());
            match self.peek() {
                None => return Err(self.err(open, "unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(c) => {
                    return Err(self.err(
                        self.pos,
                        format!("control character U+{c:04X} in a string must be escaped"),
                    ));
                }
            }
        }
    }

    /// Reads the escape sequence at `pos` (at the backslash).
    fn escape(&mut self) -> Result<char, JsonError> {
        let at = self.pos;
        let Some(c) = self.b.get(at + 1).copied() else {
            return Err(self.err(at, "unterminated string"));
        };
        let simple = match c {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            _ => None,
        };
        if let Some(ch) = simple {
            self.pos += 2;
            return Ok(ch);
        }
        if c != b'u' {
            let shown = self.shown_at(at + 1);
            return Err(self.err(at, format!("invalid escape `\\{shown}`")));
        }
        let hi = self.hex4(at)?;
        let cp = match hi {
            0xd800..=0xdbff => {
                let at2 = self.pos;
                if !self.b[at2..].starts_with(b"\\u") {
                    return Err(self.err(at, format!("lone surrogate `\\u{hi:04x}`")));
                }
                let lo = self.hex4(at2)?;
                if !(0xdc00..=0xdfff).contains(&lo) {
                    return Err(self.err(at, format!("lone surrogate `\\u{hi:04x}`")));
                }
                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
            }
            0xdc00..=0xdfff => {
                return Err(self.err(at, format!("lone surrogate `\\u{hi:04x}`")));
            }
            _ => hi,
        };
        char::from_u32(cp).ok_or_else(|| self.err(at, "invalid code point"))
    }

    /// Reads `\uXXXX` at `at` and returns XXXX.
    fn hex4(&mut self, at: usize) -> Result<u32, JsonError> {
        let digits = self.b.get(at + 2..at + 6).unwrap_or_default();
        let mut v = 0u32;
        for &d in digits {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => break,
            };
            v = v << 4 | u32::from(x);
        }
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(self.err(at, "`\\u` must be followed by four hex digits"));
        }
        self.pos = at + 6;
        Ok(v)
    }
}

const EXPECTED_DIGIT: &str = "expected a digit";

/// The length of the JSON number literal at the start of `b`, or the offset and description
/// of the first problem.
fn scan_number(b: &[u8]) -> Result<usize, (usize, &'static str)> {
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            if digit(i + 1) {
                return Err((i, "leading zeros are not allowed"));
            }
            i += 1;
        }
        Some(b'1'..=b'9') => {
            while digit(i) {
                i += 1;
            }
        }
        _ => return Err((i, EXPECTED_DIGIT)),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digit(i) {
            return Err((i, EXPECTED_DIGIT));
        }
        while digit(i) {
            i += 1;
        }
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        if !digit(i) {
            return Err((i, EXPECTED_DIGIT));
        }
        while digit(i) {
            i += 1;
        }
    }
    Ok(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Unwrapping is how tests state expectations.
mod tests {
    use super::*;

    #[test]
    fn json_trees_render_and_reparse() {
        let text = r#"{"b": [1, -2.5e3, "x\n"], "a": {"": null, "t": true}}"#;
        let j = parse_json(text).unwrap();
        assert_eq!(
            j.to_text(false),
            r#"{"b":[1,-2.5e3,"x\n"],"a":{"":null,"t":true}}"#
        );
        assert_eq!(parse_json(&j.to_text(true)).unwrap(), j);
        assert_eq!(parse_json(&j.to_text(false)).unwrap(), j);
    }
    use crate::codec::cbor::{self, INT_MAX, INT_MIN};
    use proptest::prelude::*;

    fn int(v: i128) -> Value {
        Value::Int(Int::new(v).unwrap())
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn map(entries: Vec<(Value, Value)>) -> Value {
        Value::Map(Map::from_entries(entries).unwrap())
    }

    fn id(b: u8) -> ObjectId {
        ObjectId::from_bytes([b; 32])
    }

    fn num(s: &str) -> Json {
        Json::Number(s.to_owned())
    }

    fn jstr(s: &str) -> Json {
        Json::String(s.to_owned())
    }

    /// Asserts that `input` fails to parse with this message, offset, line, column, pointer.
    #[track_caller]
    fn parse_err(input: &str, message: &str, at: (usize, usize, usize), pointer: Option<&str>) {
        let e = parse_json(input).unwrap_err();
        assert_eq!(e.message, message, "input {input:?}");
        let pos = e.pos.unwrap();
        assert_eq!((pos.offset, pos.line, pos.column), at, "input {input:?}");
        assert_eq!(e.pointer.as_deref(), pointer, "input {input:?}");
    }

    #[track_caller]
    fn rejects(input: &str) -> JsonError {
        match parse_json(input) {
            Ok(j) => panic!("{input:?} parsed as {j:?}"),
            Err(e) => e,
        }
    }

    #[track_caller]
    fn map_err(input: &str) -> JsonError {
        match from_json(input) {
            Ok(v) => panic!("{input:?} read as {v:?}"),
            Err(e) => e,
        }
    }

    // --- the parser --------------------------------------------------------------------------

    #[test]
    fn parses_every_kind_of_value() {
        let j = parse_json(
            " {\"n\": null, \"t\": true, \"f\": false, \"i\": -12, \"x\": 1.5e-3,\n\
             \"s\": \"h\\u00e9\", \"a\": [1, [], {}], \"o\": {\"z\": 0, \"a\": 1}}\t\r\n",
        )
        .unwrap();
        let expected = Json::Object(vec![
            ("n".into(), Json::Null),
            ("t".into(), Json::Bool(true)),
            ("f".into(), Json::Bool(false)),
            ("i".into(), num("-12")),
            ("x".into(), num("1.5e-3")),
            ("s".into(), jstr("h\u{e9}")),
            (
                "a".into(),
                Json::Array(vec![num("1"), Json::Array(vec![]), Json::Object(vec![])]),
            ),
            (
                "o".into(),
                Json::Object(vec![("z".into(), num("0")), ("a".into(), num("1"))]),
            ),
        ]);
        assert_eq!(j, expected);
        assert_eq!(parse_json("0").unwrap(), num("0"));
        assert_eq!(parse_json("\"\"").unwrap(), jstr(""));
        assert_eq!(parse_json("[ ]").unwrap(), Json::Array(vec![]));
        assert_eq!(parse_json("{ }").unwrap(), Json::Object(vec![]));
        assert_eq!(j.type_name(), "object");
    }

    #[test]
    fn number_grammar_is_rfc8259() {
        for ok in [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "0.5",
            "-0.0",
            "1e5",
            "1E5",
            "1e+5",
            "1e-5",
            "1.25E-07",
            "123456789012345678901234567890",
        ] {
            assert_eq!(parse_json(ok).unwrap(), num(ok), "{ok}");
        }
        for bad in [
            "01",
            "-01",
            "00",
            "+1",
            ".5",
            "1.",
            "1.e3",
            "-",
            "-a",
            "1e",
            "1e+",
            "1E-",
            "0x10",
            "NaN",
            "Infinity",
            "-Infinity",
            "1_000",
            "- 1",
        ] {
            rejects(bad);
        }
        parse_err("01", "leading zeros are not allowed", (0, 1, 1), Some(""));
        parse_err(
            "[-01]",
            "leading zeros are not allowed",
            (2, 1, 3),
            Some("/0"),
        );
        parse_err(
            "1.",
            "unexpected end of input, expected a digit",
            (2, 1, 3),
            Some(""),
        );
        parse_err("1ex", "expected a digit, found `x`", (2, 1, 3), Some(""));
        parse_err(
            "NaN",
            "expected a JSON value, found `N`",
            (0, 1, 1),
            Some(""),
        );
    }

    #[test]
    fn literals_must_be_exact() {
        for bad in ["tru", "True", "nul", "NULL", "falsey", "nil", "undefined"] {
            rejects(bad);
        }
        parse_err(
            "[tru]",
            "invalid literal, expected `true`",
            (1, 1, 2),
            Some("/0"),
        );
    }

    #[test]
    fn string_escapes() {
        let s = |t: &str| parse_json(t).unwrap();
        assert_eq!(s(r#""\"\\\/\b\f\n\r\t""#), jstr("\"\\/\u{8}\u{c}\n\r\t"));
        assert_eq!(
            s(r#""\u0041\u00e9\u6C34\u0000""#),
            jstr("A\u{e9}\u{6c34}\0")
        );
        assert_eq!(s(r#""\ud83d\ude00""#), jstr("\u{1f600}"));
        assert_eq!(s(r#""\uD834\uDD1E x""#), jstr("\u{1d11e} x"));
        assert_eq!(
            s("\"\u{7f}\u{e9}\u{1f600}\""),
            jstr("\u{7f}\u{e9}\u{1f600}")
        );
        parse_err(
            r#""\ud800""#,
            "lone surrogate `\\ud800`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""ab\udc00""#,
            "lone surrogate `\\udc00`",
            (3, 1, 4),
            Some(""),
        );
        parse_err(
            r#""\ud800\u0041""#,
            "lone surrogate `\\ud800`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""\ud800\n""#,
            "lone surrogate `\\ud800`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""\ud800\ud800""#,
            "lone surrogate `\\ud800`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(r#""\x""#, "invalid escape `\\x`", (1, 1, 2), Some(""));
        parse_err(r#""\'""#, "invalid escape `\\'`", (1, 1, 2), Some(""));
        parse_err(
            "\"\\\u{e9}\"",
            "invalid escape `\\\u{e9}`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""\u12""#,
            "`\\u` must be followed by four hex digits",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""\u12g4""#,
            "`\\u` must be followed by four hex digits",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            r#""\ud800\u12""#,
            "`\\u` must be followed by four hex digits",
            (7, 1, 8),
            Some(""),
        );
        parse_err("\"abc", "unterminated string", (0, 1, 1), Some(""));
        parse_err("\"abc\\", "unterminated string", (4, 1, 5), Some(""));
    }

    #[test]
    fn control_characters_must_be_escaped() {
        for c in (0u8..0x20).map(char::from) {
            let input = format!("\"a{c}\"");
            parse_err(
                &input,
                &format!(
                    "control character U+{:04X} in a string must be escaped",
                    c as u32
                ),
                (2, 1, 3),
                Some(""),
            );
        }
        parse_err(
            "{\"x\": \"a\tb\"}",
            "control character U+0009 in a string must be escaped",
            (8, 1, 9),
            Some("/x"),
        );
    }

    #[test]
    fn rejects_extensions_of_the_grammar() {
        parse_err(
            "\u{feff}1",
            "a byte order mark is not allowed",
            (0, 1, 1),
            Some(""),
        );
        parse_err("1 // c", "comments are not allowed", (2, 1, 3), None);
        parse_err("/* c */ 1", "comments are not allowed", (0, 1, 1), Some(""));
        parse_err(
            "[1,]",
            "trailing commas are not allowed",
            (3, 1, 4),
            Some("/1"),
        );
        parse_err(
            "{\"a\": [1, 2,]}",
            "trailing commas are not allowed",
            (12, 1, 13),
            Some("/a/2"),
        );
        parse_err(
            "{\"a\":1,}",
            "trailing commas are not allowed",
            (7, 1, 8),
            Some(""),
        );
        parse_err(
            "[,1]",
            "expected a JSON value, found `,`",
            (1, 1, 2),
            Some("/0"),
        );
        parse_err(
            "[1 2]",
            "expected `,` or `]`, found `2`",
            (3, 1, 4),
            Some(""),
        );
        parse_err(
            "{'a':1}",
            "expected a string key, found `'`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            "{a:1}",
            "expected a string key, found `a`",
            (1, 1, 2),
            Some(""),
        );
        parse_err(
            "{\"a\" 1}",
            "expected `:` after the key, found `1`",
            (5, 1, 6),
            Some(""),
        );
        parse_err(
            "{\"a\":1 \"b\":2}",
            "expected `,` or `}`, found `\"`",
            (7, 1, 8),
            Some(""),
        );
        parse_err(
            "",
            "unexpected end of input, expected a JSON value",
            (0, 1, 1),
            Some(""),
        );
        parse_err(
            "  \n ",
            "unexpected end of input, expected a JSON value",
            (4, 2, 2),
            Some(""),
        );
        parse_err(
            "[1",
            "unexpected end of input, expected `,` or `]`",
            (2, 1, 3),
            Some(""),
        );
        parse_err(
            "{\"a\":",
            "unexpected end of input, expected a JSON value",
            (5, 1, 6),
            Some("/a"),
        );
        parse_err(
            "1 2",
            "expected the end of the text, found `2`",
            (2, 1, 3),
            None,
        );
        parse_err(
            "{} x",
            "expected the end of the text, found `x`",
            (3, 1, 4),
            None,
        );
        parse_err(
            "\u{a0}1",
            "expected a JSON value, found `\\u{a0}`",
            (0, 1, 1),
            Some(""),
        );
        parse_err(
            "1\u{c}",
            "expected the end of the text, found `\\u{c}`",
            (1, 1, 2),
            None,
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        parse_err(
            "{\n  \"a\": 1,\n  \"a\": 2\n}",
            "duplicate key \"a\"",
            (14, 3, 3),
            Some("/a"),
        );
        // Keys are compared after unescaping.
        parse_err(
            "{\"x\": {\"a/b\": 1, \"a\\/b\": 2}}",
            "duplicate key \"a/b\"",
            (17, 1, 18),
            Some("/x/a~1b"),
        );
        // Same key in different objects is fine.
        assert!(parse_json("[{\"a\": 1}, {\"a\": {\"a\": 2}}]").is_ok());
    }

    #[test]
    fn error_positions_count_lines_and_characters() {
        parse_err(
            "[\"\u{e9}\", x]",
            "expected a JSON value, found `x`",
            (7, 1, 7),
            Some("/1"),
        );
        parse_err(
            "{\n  \"k\u{1f600}\": [\n    true,\n    nope\n  ]\n}",
            "invalid literal, expected `null`",
            (29, 4, 5),
            Some("/k\u{1f600}/1"),
        );
        parse_err(
            "{\"a/b\": {\"m~n\": tru}}",
            "invalid literal, expected `true`",
            (16, 1, 17),
            Some("/a~1b/m~0n"),
        );
        let e = rejects("[\r\n1,\r\n]");
        assert_eq!(
            e.pos.unwrap(),
            TextPos {
                offset: 7,
                line: 3,
                column: 1
            }
        );
        assert_eq!(
            e.to_string(),
            "invalid JSON at line 3, column 1 (byte 7) in `/1`: trailing commas are not allowed"
        );
        assert_eq!(
            rejects("x").to_string(),
            "invalid JSON at line 1, column 1 (byte 0): expected a JSON value, found `x`"
        );
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(parse_json(&ok).is_ok());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        let e = rejects(&deep);
        assert_eq!(e.message, "nesting deeper than 512 levels");
        assert_eq!(e.pos.unwrap().offset, MAX_JSON_DEPTH);
        assert_eq!(e.pointer.unwrap(), "/0".repeat(MAX_JSON_DEPTH));

        let e = rejects(&"[".repeat(1_000_000));
        assert_eq!(e.pos.unwrap().offset, MAX_JSON_DEPTH);
        let e = rejects(&"{\"a\":".repeat(1_000_000));
        assert_eq!(e.pos.unwrap().offset, 5 * MAX_JSON_DEPTH);
        assert_eq!(e.message, "nesting deeper than 512 levels");
        assert!(from_json(&"[".repeat(1_000_000)).is_err());
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer_escape("a/b~c"), "a~1b~0c");
        assert_eq!(pointer_escape("~1"), "~01");
        assert_eq!(pointer_escape(""), "");
        let t = "{\"a\": [10, {\"b/c\": \"x\"}], \"\": 5}";
        let at = |p: &str| pointer_position(t, p).map(|p| p.offset);
        assert_eq!(at(""), Some(0));
        assert_eq!(at("/a"), Some(6));
        assert_eq!(at("/a/0"), Some(7));
        assert_eq!(at("/a/1"), Some(11));
        assert_eq!(at("/a/1/b~1c"), Some(19));
        assert_eq!(at("/"), Some(30));
        assert_eq!(at("/a/2"), None);
        assert_eq!(at("/a/01"), None);
        assert_eq!(at("/b"), None);
        assert_eq!(
            pointer_position("[1, x]", "/1"),
            Some(TextPos::at("[1, x]", 4))
        );
        assert_eq!(pointer_position("[x, 1]", "/1"), None);
    }

    // --- the mapping -------------------------------------------------------------------------

    #[test]
    fn scalars() {
        assert_eq!(from_json("null").unwrap(), Value::Null);
        assert_eq!(from_json("true").unwrap(), Value::Bool(true));
        assert_eq!(from_json("false").unwrap(), Value::Bool(false));
        assert_eq!(from_json("\"a\\nb\"").unwrap(), text("a\nb"));
        assert_eq!(to_json(&Value::Null), "null");
        assert_eq!(to_json(&Value::Bool(true)), "true");
        assert_eq!(to_json(&Value::Bool(false)), "false");
    }

    #[test]
    fn integers_over_the_full_range() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("-0", 0),
            ("1", 1),
            ("-1", -1),
            ("18446744073709551615", INT_MAX),
            ("-18446744073709551616", INT_MIN),
            ("9223372036854775808", 1 << 63),
            ("-9223372036854775809", -(1 << 63) - 1),
        ];
        for &(t, v) in cases {
            assert_eq!(from_json(t).unwrap(), int(v), "{t}");
        }
        assert_eq!(to_json(&int(INT_MAX)), "18446744073709551615");
        assert_eq!(to_json(&int(INT_MIN)), "-18446744073709551616");
        assert_eq!(to_json(&int(0)), "0");
        for t in [
            "18446744073709551616",
            "-18446744073709551617",
            "170141183460469231731687303715884105727",
            "170141183460469231731687303715884105728",
            "-170141183460469231731687303715884105729",
            &"9".repeat(1000),
        ] {
            let e = map_err(t);
            assert!(e.message.starts_with("integer out of range"), "{t}: {e}");
            assert_eq!(e.pointer.as_deref(), Some(""));
        }
        for t in ["1.0", "1e3", "0E0", "-0.0", "10e-1"] {
            let e = map_err(t);
            assert_eq!(
                e.message, "not an integer: fractions and exponents are not allowed",
                "{t}"
            );
        }
        let e = map_err("{\n \"a\": [1.5]\n}");
        assert_eq!(e.pointer.as_deref(), Some("/a/0"));
        assert_eq!(
            e.pos.unwrap(),
            TextPos {
                offset: 9,
                line: 2,
                column: 8
            }
        );
        // A hand-built tree with a bad literal is an error, not a panic.
        for bad in ["", "-", "01", "x", "1 ", "+1"] {
            assert!(json_to_value(&num(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arrays_and_text_keyed_maps() {
        let v = from_json("{\"b\": [1, \"x\", null], \"a\": {}, \"aa\": []}").unwrap();
        let expected = map(vec![
            (
                text("b"),
                Value::Array(vec![int(1), text("x"), Value::Null]),
            ),
            (text("a"), map(vec![])),
            (text("aa"), Value::Array(vec![])),
        ]);
        assert_eq!(v, expected);
        // Canonical order: shorter encodings first, then bytewise.
        assert_eq!(to_json(&v), "{\"a\":{},\"b\":[1,\"x\",null],\"aa\":[]}");
        assert_eq!(from_json("{}").unwrap(), map(vec![]));
        assert_eq!(to_json(&map(vec![])), "{}");
        // Several members starting with `$` make a plain map.
        let v = from_json("{\"$bytes\": \"AA==\", \"$x\": 1}").unwrap();
        assert_eq!(
            v,
            map(vec![(text("$bytes"), text("AA==")), (text("$x"), int(1))])
        );
        assert_eq!(to_json(&v), "{\"$x\":1,\"$bytes\":\"AA==\"}");
        // A single member not starting with `$` is a plain map; `$` later in the key is fine.
        assert_eq!(
            from_json("{\"a$\": 1}").unwrap(),
            map(vec![(text("a$"), int(1))])
        );
    }

    #[test]
    fn bytes_extension() {
        assert_eq!(
            from_json("{\"$bytes\": \"\"}").unwrap(),
            Value::Bytes(vec![])
        );
        assert_eq!(
            from_json("{\"$bytes\":\"AA==\"}").unwrap(),
            Value::Bytes(vec![0])
        );
        assert_eq!(
            from_json("{\"$bytes\":\"AAEC/+8=\"}").unwrap(),
            Value::Bytes(vec![0, 1, 2, 0xff, 0xef])
        );
        assert_eq!(to_json(&Value::Bytes(vec![])), "{\"$bytes\":\"\"}");
        assert_eq!(
            to_json(&Value::Bytes(vec![0xfb, 0xff, 0x01])),
            "{\"$bytes\":\"+/8B\"}"
        );
        for bad in [
            "AA",
            "AA=",
            "AA===",
            "AB==",
            "QR==",
            "AAA",
            "AAB=",
            "A",
            "====",
            "AA==AA==",
            " AA==",
            "AA==\\n",
            "-_8B",
            "AA =",
            "A===",
            "Zg=\u{3d}=",
        ] {
            let e = map_err(&format!("{{\"$bytes\": \"{bad}\"}}"));
            assert_eq!(e.pointer.as_deref(), Some("/$bytes"), "{bad:?}");
            assert_eq!(e.pos.unwrap().offset, 11, "{bad:?}");
        }
        let e = map_err("{\"$bytes\": [1]}");
        assert_eq!(e.message, "`$bytes` takes a base64 string, found array");
        assert_eq!(e.pointer.as_deref(), Some("/$bytes"));
    }

    #[test]
    fn link_extension() {
        let hex = "0123456789abcdef".repeat(4);
        let v = from_json(&format!("{{\"$link\": \"b3:{hex}\"}}")).unwrap();
        let Value::Link(got) = &v else {
            panic!("{v:?}")
        };
        assert_eq!(got.to_hex(), hex);
        assert_eq!(to_json(&v), format!("{{\"$link\":\"b3:{hex}\"}}"));
        for bad in [
            hex.clone(),
            format!("b3:{}", hex.to_uppercase()),
            format!("b3:{}", &hex[1..]),
            format!("b3:{hex}0"),
            format!("B3:{hex}"),
            format!("b3: {}", &hex[1..]),
            String::new(),
        ] {
            let e = map_err(&format!("{{\"$link\": \"{bad}\"}}"));
            assert_eq!(e.pointer.as_deref(), Some("/$link"), "{bad:?}");
        }
        assert!(map_err("{\"$link\": null}").message.contains("found null"));
    }

    #[test]
    fn map_extension() {
        let v = from_json(
            "{\"$map\": [[\"z\", 1], [-1, null], [100, [true]], [{\"$bytes\": \"AQ==\"}, 2], \
             [[1], {}], [{\"$link\": \"b3:0707070707070707070707070707070707070707070707070707070707070707\"}, 3]]}",
        )
        .unwrap();
        let expected = map(vec![
            (text("z"), int(1)),
            (int(-1), Value::Null),
            (int(100), Value::Array(vec![Value::Bool(true)])),
            (Value::Bytes(vec![1]), int(2)),
            (Value::Array(vec![int(1)]), map(vec![])),
            (Value::Link(id(7)), int(3)),
        ]);
        assert_eq!(v, expected);
        assert_eq!(
            to_json(&v),
            "{\"$map\":[[100,[true]],[-1,null],[{\"$bytes\":\"AQ==\"},2],[\"z\",1],[[1],{}],\
             [{\"$link\":\"b3:0707070707070707070707070707070707070707070707070707070707070707\"},3]]}"
        );
        // Text keys may use `$map` too; the rendering is then a plain object.
        let v = from_json("{\"$map\": [[\"b\", 1], [\"a\", 2]]}").unwrap();
        assert_eq!(v, map(vec![(text("a"), int(2)), (text("b"), int(1))]));
        assert_eq!(to_json(&v), "{\"a\":2,\"b\":1}");
        assert_eq!(from_json("{\"$map\": []}").unwrap(), map(vec![]));
        // A single entry whose key starts with `$` must be written with `$map`.
        let v = map(vec![(text("$bytes"), text("AA=="))]);
        assert_eq!(to_json(&v), "{\"$map\":[[\"$bytes\",\"AA==\"]]}");
        assert_eq!(from_json(&to_json(&v)).unwrap(), v);
        let v = map(vec![(text("$"), int(1))]);
        assert_eq!(to_json(&v), "{\"$map\":[[\"$\",1]]}");
        // Maps mixing text and other keys use `$map`.
        let v = map(vec![(text("a"), int(1)), (int(1), text("a"))]);
        assert_eq!(to_json(&v), "{\"$map\":[[1,\"a\"],[\"a\",1]]}");

        let e = map_err("{\"$map\": [[1, 2], [\"a\", 3], [1, 4]]}");
        assert_eq!(e.message, "duplicate key 1");
        assert_eq!(e.pointer.as_deref(), Some("/$map/2/0"));
        assert_eq!(e.pos.unwrap().offset, 29);
        let e = map_err("{\"$map\": [[[1, {}], 2], [[1, {\"$map\": []}], 3]]}");
        assert_eq!(e.pointer.as_deref(), Some("/$map/1/0"));
        for (bad, pointer) in [
            ("{\"$map\": {}}", "/$map"),
            ("{\"$map\": [1]}", "/$map/0"),
            ("{\"$map\": [[1]]}", "/$map/0"),
            ("{\"$map\": [[1, 2, 3]]}", "/$map/0"),
            ("{\"$map\": [[1, 2], []]}", "/$map/1"),
            ("{\"$map\": [[1.5, 2]]}", "/$map/0/0"),
            ("{\"$map\": [[1, {\"$x\": 0}]]}", "/$map/0/1/$x"),
        ] {
            let e = map_err(bad);
            assert_eq!(e.pointer.as_deref(), Some(pointer), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_extensions() {
        for key in ["$x", "$", "$Bytes", "$bytes ", "$$map"] {
            let e = map_err(&format!("{{\"{key}\": 1}}"));
            assert!(
                e.message.starts_with(&format!("unknown extension `{key}`")),
                "{e}"
            );
            assert_eq!(e.pointer.as_deref(), Some(format!("/{key}").as_str()));
        }
        let e = map_err("[0, {\"a\": {\"$a/b\": 1}}]");
        assert_eq!(e.pointer.as_deref(), Some("/1/a/$a~1b"));
        assert_eq!(e.pos.unwrap().offset, 19);
    }

    #[test]
    fn string_escaping_is_minimal() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        let s = format!("{all_controls}\"\\/\u{7f}\u{e9}\u{6c34}\u{1f600}");
        let out = to_json(&text(&s));
        assert_eq!(
            out,
            "\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\
             \\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\
             \\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\\"\\\\/\u{7f}\u{e9}\u{6c34}\u{1f600}\""
        );
        assert_eq!(from_json(&out).unwrap(), text(&s));
        // Keys are escaped the same way.
        let v = map(vec![(text("a\"b"), int(1)), (text("c\n"), int(2))]);
        assert_eq!(to_json(&v), "{\"c\\n\":2,\"a\\\"b\":1}");
    }

    #[test]
    fn pretty_rendering() {
        let v = map(vec![
            (
                text("a"),
                Value::Array(vec![int(1), Value::Array(vec![]), map(vec![])]),
            ),
            (text("b"), Value::Bytes(vec![1])),
            (text("cc"), map(vec![(int(1), Value::Link(id(0)))])),
        ]);
        let zeros = "0".repeat(64);
        let expected = format!(
            "{{\n  \"a\": [\n    1,\n    [],\n    {{}}\n  ],\n  \"b\": {{\n    \"$bytes\": \"AQ==\"\n  }},\n  \
             \"cc\": {{\n    \"$map\": [\n      [\n        1,\n        {{\n          \
             \"$link\": \"b3:{zeros}\"\n        }}\n      ]\n    ]\n  }}\n}}"
        );
        assert_eq!(to_json_pretty(&v), expected);
        assert_eq!(from_json(&expected).unwrap(), v);
        assert_eq!(to_json_pretty(&int(5)), "5");
        assert_eq!(to_json_pretty(&Value::Array(vec![])), "[]");
        assert_eq!(to_json_pretty(&map(vec![])), "{}");
        let compact = to_json(&v);
        assert!(!compact.contains([' ', '\n']), "{compact}");
    }

    /// `n` arrays around `inner`.
    fn nest(n: usize, inner: Value) -> Value {
        (0..n).fold(inner, |v, _| Value::Array(vec![v]))
    }

    #[track_caller]
    fn agrees_with_cbor(v: &Value) -> bool {
        let cbor_ok = cbor::decode(&cbor::encode(v)).is_ok();
        let json_ok = from_json(&to_json(v)).is_ok();
        assert_eq!(cbor_ok, json_ok);
        json_ok
    }

    #[test]
    fn depth_matches_the_cbor_decoder() {
        assert!(agrees_with_cbor(&nest(MAX_DEPTH, int(0))));
        assert!(agrees_with_cbor(&nest(MAX_DEPTH, Value::Bytes(vec![1]))));
        assert!(!agrees_with_cbor(&nest(MAX_DEPTH + 1, int(0))));
        assert!(!agrees_with_cbor(&nest(MAX_DEPTH, Value::Array(vec![]))));
        assert!(!agrees_with_cbor(&nest(MAX_DEPTH, map(vec![]))));
        assert!(agrees_with_cbor(&nest(MAX_DEPTH - 1, Value::Link(id(1)))));
        assert!(!agrees_with_cbor(&nest(MAX_DEPTH, Value::Link(id(1)))));
        let e = from_json(&to_json(&nest(MAX_DEPTH, Value::Link(id(1))))).unwrap_err();
        assert_eq!(
            e.message,
            "nesting deeper than 128 levels of arrays, maps and links"
        );
        assert_eq!(
            e.pointer.unwrap(),
            format!("{}/$link", "/0".repeat(MAX_DEPTH))
        );
        let e = from_json(&to_json(&nest(MAX_DEPTH + 1, int(0)))).unwrap_err();
        assert_eq!(e.pointer.unwrap(), "/0".repeat(MAX_DEPTH));
        assert_eq!(e.pos.unwrap().offset, MAX_DEPTH);

        // The deepest rendering: `$map` in `$map` ... around bytes, as map keys.
        let deepest =
            (0..MAX_DEPTH).fold(Value::Bytes(vec![9]), |v, _| map(vec![(v, Value::Null)]));
        assert!(agrees_with_cbor(&deepest));
        assert_eq!(from_json(&to_json(&deepest)).unwrap(), deepest);
        assert_eq!(from_json(&to_json_pretty(&deepest)).unwrap(), deepest);
        let too_deep = map(vec![(deepest, Value::Null)]);
        assert!(!agrees_with_cbor(&too_deep));
    }

    // --- properties --------------------------------------------------------------------------

    fn arb_int() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (INT_MIN..=INT_MAX).prop_map(int),
            prop::sample::select(vec![
                INT_MIN,
                INT_MIN + 1,
                -(1 << 63) - 1,
                -1,
                0,
                1,
                1 << 63,
                INT_MAX - 1,
                INT_MAX,
            ])
            .prop_map(int),
        ]
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "\\$[a-z]{0,6}",
            "[a-c$]{0,3}",
            "[\\x00-\\x1f\"\\\\/~\u{7f}\u{e9}\u{1f600}]{0,6}",
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            arb_int(),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            arb_text().prop_map(Value::Text),
            any::<[u8; 32]>().prop_map(|b| Value::Link(ObjectId::from_bytes(b))),
        ];
        leaf.prop_recursive(6, 128, 8, |inner| {
            let build = |entries: Vec<(Value, Value)>| {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k, v);
                }
                Value::Map(m)
            };
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((arb_text().prop_map(Value::Text), inner.clone()), 0..8)
                    .prop_map(build),
                prop::collection::vec((inner.clone(), inner.clone()), 0..6).prop_map(build),
                (arb_text(), inner).prop_map(move |(k, v)| build(vec![(Value::Text(k), v)])),
            ]
        })
    }

    /// Every value read from JSON survives CBOR, and renders back to itself.
    fn check_read(v: &Value) {
        assert_eq!(&cbor::decode(&cbor::encode(v)).unwrap(), v);
        assert_eq!(&from_json(&to_json(v)).unwrap(), v);
    }

    proptest! {
        #[test]
        fn round_trips(v in arb_value()) {
            let compact = to_json(&v);
            let back = from_json(&compact).unwrap();
            prop_assert_eq!(&back, &v);
            let pretty = to_json_pretty(&v);
            prop_assert_eq!(&from_json(&pretty).unwrap(), &v);
            // Pretty is compact plus whitespace between tokens.
            prop_assert_eq!(parse_json(&pretty).unwrap(), parse_json(&compact).unwrap());
            check_read(&back);
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            if let Ok(v) = from_json(&s) {
                check_read(&v);
            }
        }

        #[test]
        fn json_like_text_never_panics(
            s in "[\\[\\]{}:, \n\"\\\\0-9abefnlrstu$.eE+\\-]{0,48}"
        ) {
            match from_json(&s) {
                Ok(v) => check_read(&v),
                Err(e) => {
                    if let Some(p) = e.pos {
                        prop_assert!(p.offset <= s.len());
                    }
                }
            }
        }

        #[test]
        fn mutated_renderings_never_panic(
            v in arb_value(),
            at in any::<prop::sample::Index>(),
            insert in prop::sample::select(vec!["", ",", "]", "}", "\"", "\\", "$", "0", "-", "[", "{", "x"]),
        ) {
            let s = to_json(&v);
            let mut cut = at.index(s.len() + 1);
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            // Drop one character at `cut` and put `insert` there.
            let rest = &s[cut..];
            let skip = rest.chars().next().map_or(0, char::len_utf8);
            let mutated = format!("{}{}{}", &s[..cut], insert, &rest[skip..]);
            if let Ok(w) = from_json(&mutated) {
                check_read(&w);
            }
        }
    }
}
