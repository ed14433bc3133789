//! Canonical CBOR: the one data model and byte encoding of everything `aos` persists.
//!
//! The model is a strict subset of CBOR (RFC 8949): integers over the full major type 0/1
//! range (−2⁶⁴ ..= 2⁶⁴−1), byte strings, UTF-8 text, arrays, maps, `false`, `true`, `null`,
//! and one tag, [`LINK_TAG`], wrapping the 32-byte id of another object. The encoder emits the
//! core deterministic encoding of RFC 8949 §4.2.1; the decoder accepts exactly that encoding
//! and nothing else, so for every accepted input `encode(decode(x)) == x`.
//!
//! [`decode_lenient`] reads the same data model from CBOR that need not be canonical, as
//! written by the serde CBOR libraries reducers link: map keys in any order, non-shortest
//! heads and indefinite lengths. It is only for reducer output; what `aos` stores is always
//! canonical. Both decoders share one decoding loop; the mode is a compile-time parameter,
//! so the strict path pays nothing for the lenient one.
//!
//! The decoders never panic, never recurse deeper than [`MAX_DEPTH`], and never reserve
//! more memory than the remaining input could fill.

use std::cmp::Ordering;
use std::fmt;

use crate::object::ObjectId;

/// The only CBOR tag in the data model: a link to another object (`0xB300`, "b3").
///
/// Its content must be a byte string of exactly 32 bytes, the raw object id.
pub const LINK_TAG: u64 = 0xB300;

/// The deepest nesting of arrays, maps and tags the decoder accepts.
///
/// A top-level scalar has depth 0; each array, map or tag around an item adds one.
pub const MAX_DEPTH: usize = 128;

/// `Ok` if an item at `depth` is within [`MAX_DEPTH`], else the error `too_deep` makes.
pub(crate) fn check_depth<E>(depth: usize, too_deep: impl FnOnce() -> E) -> Result<(), E> {
    if depth >= MAX_DEPTH {
        Err(too_deep())
    } else {
        Ok(())
    }
}

/// The smallest integer the data model holds: −2⁶⁴.
pub const INT_MIN: i128 = -(1i128 << 64);
/// The largest integer the data model holds: 2⁶⁴ − 1.
pub const INT_MAX: i128 = (1i128 << 64) - 1;

/// One value of the data model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// An integer in [`INT_MIN`] ..= [`INT_MAX`].
    Int(Int),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A UTF-8 text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map in canonical key order without duplicate keys.
    Map(Map),
    /// `false` or `true`.
    Bool(bool),
    /// `null`.
    Null,
    /// A link to another object (tag [`LINK_TAG`]).
    Link(ObjectId),
}

impl Value {
    /// The type of the value, for messages: `an integer`, `a byte string`, `text`, `an array`,
    /// `a map`, `a boolean`, `null` or `a link`.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Bytes(_) => "a byte string",
            Value::Text(_) => "text",
            Value::Array(_) => "an array",
            Value::Map(_) => "a map",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Link(_) => "a link",
        }
    }
}

/// An integer of the data model: a checked wrapper around `i128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Int(i128);

impl Int {
    /// Wraps `v` if it lies in [`INT_MIN`] ..= [`INT_MAX`].
    #[must_use]
    pub fn new(v: i128) -> Option<Self> {
        (INT_MIN..=INT_MAX).contains(&v).then_some(Self(v))
    }

    /// The integer's value.
    #[must_use]
    pub fn get(self) -> i128 {
        self.0
    }
}

impl From<u64> for Int {
    fn from(v: u64) -> Self {
        Self(i128::from(v))
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Self {
        Self(i128::from(v))
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v.into())
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v.into())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<Map> for Value {
    fn from(v: Map) -> Self {
        Self::Map(v)
    }
}

/// A map whose entries are kept in canonical order: sorted bytewise by the encoded key,
/// without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Map {
    entries: Vec<(Value, Value)>,
}

/// Two entries of a map had keys with the same encoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("duplicate map key {key:?}")]
pub struct DuplicateKey {
    /// The repeated key.
    pub key: Value,
}

impl Map {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a map from entries in any order.
    ///
    /// # Errors
    /// [`DuplicateKey`] if two keys have the same encoding.
    pub fn from_entries(entries: Vec<(Value, Value)>) -> Result<Self, DuplicateKey> {
        let mut keyed: Vec<(Vec<u8>, Value, Value)> = entries
            .into_iter()
            .map(|(k, v)| (encode(&k), k, v))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DuplicateKey {
                key: w[0].1.clone(),
            });
        }
        Ok(Self {
            entries: keyed.into_iter().map(|(_, k, v)| (k, v)).collect(),
        })
    }

    /// Builds a map from entries in any order in O(n log n); of entries whose keys have the
    /// same encoding the last one is kept (as repeated [`Map::insert`] would).
    #[must_use]
    pub fn from_entries_last_wins(entries: Vec<(Value, Value)>) -> Self {
        let mut keyed: Vec<(Vec<u8>, Value, Value)> = entries
            .into_iter()
            .map(|(k, v)| (encode(&k), k, v))
            .collect();
        // A stable sort keeps equal keys in the order given, so the last of a run wins.
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Vec<u8>, Value, Value)> = Vec::with_capacity(keyed.len());
        for e in keyed {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        Self {
            entries: out.into_iter().map(|(_, k, v)| (k, v)).collect(),
        }
    }

    /// Builds a map from text-keyed entries in any order, without encoding the keys; of
    /// entries with equal keys the last one is kept (as [`Map::insert`] would).
    #[must_use]
    pub fn from_text_entries(mut entries: Vec<(String, Value)>) -> Self {
        // A stable sort keeps equal keys in the order given, so the last of a run wins.
        entries.sort_by(|a, b| text_key_order(&a.0, &b.0));
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some((Value::Text(last), slot)) if *last == k => *slot = v,
                _ => out.push((Value::Text(k), v)),
            }
        }
        Self { entries: out }
    }

    /// Inserts or replaces the value under `key`, keeping canonical order.
    pub fn insert(&mut self, key: Value, value: Value) {
        let enc = encode(&key);
        // Keys given in canonical order append without a search or a shift.
        if self.entries.last().is_none_or(|(k, _)| encode(k) < enc) {
            self.entries.push((key, value));
            return;
        }
        match self.entries.binary_search_by(|(k, _)| encode(k).cmp(&enc)) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// The value under `key`, if any.
    #[must_use]
    pub fn get(&self, key: &Value) -> Option<&Value> {
        if let Value::Text(t) = key {
            return self.get_text(t);
        }
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under the text key `key`, if any.
    #[must_use]
    pub fn get_text(&self, key: &str) -> Option<&Value> {
        // Canonical order sorts by major type first, so text keys (major type 3) form one run
        // after integers and byte strings, ordered among themselves by `text_key_order`.
        self.entries
            .binary_search_by(|(k, _)| match k {
                Value::Text(t) => text_key_order(t, key),
                Value::Int(_) | Value::Bytes(_) => Ordering::Less,
                _ => Ordering::Greater,
            })
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The entries in canonical order.
    #[must_use]
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// Consumes the map, yielding its entries in canonical order.
    #[must_use]
    pub fn into_entries(self) -> Vec<(Value, Value)> {
        self.entries
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encodes `value` in canonical form.
#[must_use]
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(i) => {
            let v = i.get();
            if v >= 0 {
                write_head(out, 0, u64::try_from(v).expect("Int is at most 2^64-1"));
            } else {
                write_head(
                    out,
                    1,
                    u64::try_from(-1 - v).expect("Int is at least -2^64"),
                );
            }
        }
        Value::Bytes(b) => {
            write_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Text(t) => {
            write_head(out, 3, t.len() as u64);
            out.extend_from_slice(t.as_bytes());
        }
        Value::Array(items) => {
            write_head(out, 4, items.len() as u64);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(map) => {
            write_head(out, 5, map.len() as u64);
            for (k, v) in map.entries() {
                encode_into(k, out);
                encode_into(v, out);
            }
        }
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Link(id) => {
            write_head(out, 6, LINK_TAG);
            write_head(out, 2, 32);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

/// Writes the shortest head for major type `major` with argument `arg`.
pub fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if let Ok(v) = u8::try_from(arg) {
        out.extend_from_slice(&[m | 24, v]);
    } else if let Ok(v) = u16::try_from(arg) {
        out.push(m | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(arg) {
        out.push(m | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Compares two text keys by the canonical order of their encodings, without encoding them:
/// a text's head carries its length, so shorter texts come first, then bytewise.
#[must_use]
pub fn text_key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// Appends the canonical encoding of the text `t` to `out`.
pub fn write_text(out: &mut Vec<u8>, t: &str) {
    write_head(out, 3, t.len() as u64);
    out.extend_from_slice(t.as_bytes());
}

/// Appends the canonical encoding of the byte string `b` to `out`.
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// Compares two values by the canonical order of their encodings.
#[must_use]
pub fn canonical_cmp(a: &Value, b: &Value) -> Ordering {
    encode(a).cmp(&encode(b))
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// The rule an input broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The input ended inside an item.
    Truncated,
    /// A length or count promised more bytes than remain.
    LengthExceedsInput,
    /// An argument was not encoded in the shortest form (RFC 8949 §4.2.1).
    NonShortestHead,
    /// An indefinite-length item or a stray "break" byte.
    IndefiniteLength,
    /// Additional information 28, 29 or 30, reserved by RFC 8949.
    ReservedAdditionalInfo,
    /// A floating-point number.
    Float,
    /// A simple value other than `false`, `true`, `null`.
    SimpleValue,
    /// A tag other than the link tag.
    Tag,
    /// A link tag whose content is not a 32-byte byte string.
    BadLink,
    /// Text that is not valid UTF-8.
    InvalidUtf8,
    /// Map keys out of canonical (bytewise) order.
    UnsortedKeys,
    /// Two map keys with the same encoding.
    DuplicateKey,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes after the single top-level item.
    TrailingBytes,
}

impl Rule {
    /// A stable, kebab-case name of the rule, used in messages and JSON output.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::LengthExceedsInput => "length-exceeds-input",
            Self::NonShortestHead => "non-shortest-head",
            Self::IndefiniteLength => "indefinite-length",
            Self::ReservedAdditionalInfo => "reserved-additional-info",
            Self::Float => "float",
            Self::SimpleValue => "simple-value",
            Self::Tag => "tag",
            Self::BadLink => "bad-link",
            Self::InvalidUtf8 => "invalid-utf8",
            Self::UnsortedKeys => "unsorted-keys",
            Self::DuplicateKey => "duplicate-key",
            Self::TooDeep => "too-deep",
            Self::TrailingBytes => "trailing-bytes",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Truncated => "input ends inside an item",
            Self::LengthExceedsInput => "declared length is larger than the remaining input",
            Self::NonShortestHead => "argument not encoded in the shortest form",
            Self::IndefiniteLength => "indefinite-length items are not allowed",
            Self::ReservedAdditionalInfo => "additional information 28-30 is reserved",
            Self::Float => "floating-point numbers are not allowed",
            Self::SimpleValue => "only the simple values false, true and null are allowed",
            Self::Tag => "only the link tag 45824 is allowed",
            Self::BadLink => "a link must wrap a byte string of exactly 32 bytes",
            Self::InvalidUtf8 => "text is not valid UTF-8",
            Self::UnsortedKeys => "map keys are not in bytewise order of their encodings",
            Self::DuplicateKey => "map key repeated",
            Self::TooDeep => "nesting deeper than 128 levels",
            Self::TrailingBytes => "bytes after the end of the item",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an input is not canonical CBOR of the data model, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("non-canonical CBOR at byte offset {offset}: {rule} ({})", rule.describe())]
pub struct DecodeError {
    /// The rule broken.
    pub rule: Rule,
    /// Offset of the offending byte (the start of the offending head, key or item).
    pub offset: usize,
}

/// Decodes exactly one canonical data item filling all of `bytes`.
///
/// # Errors
/// [`DecodeError`] naming the first rule broken and its byte offset.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder::<false> { buf: bytes, pos: 0 };
    let v = d.item(0, &mut Build)?;
    d.finish()?;
    Ok(v)
}

/// Checks that `bytes` is exactly one canonical data item, without building it.
///
/// # Errors
/// As [`decode`].
pub fn validate(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut d = Decoder::<false> { buf: bytes, pos: 0 };
    d.item(0, &mut Links::<false>(Vec::new()))?;
    d.finish()
}

/// Checks `bytes` like [`validate`] and returns every link it holds, in encoding order.
///
/// # Errors
/// As [`decode`].
pub fn links(bytes: &[u8]) -> Result<Vec<ObjectId>, DecodeError> {
    let mut d = Decoder::<false> { buf: bytes, pos: 0 };
    let mut sink = Links::<true>(Vec::new());
    d.item(0, &mut sink)?;
    d.finish()?;
    Ok(sink.0)
}

/// Decodes one data item of the data model from CBOR that need not be canonical, as
/// reducers write it, and returns it in canonical form.
///
/// Compared with [`decode`] this accepts:
/// - map keys in any order (the resulting [`Map`] is sorted canonically);
/// - arguments (integers, lengths, counts) not encoded in the shortest form;
/// - indefinite-length byte and text strings, whose chunks must be definite-length strings
///   of the same major type (each text chunk valid UTF-8 by itself), and indefinite-length
///   arrays and maps, closed by a break byte (`0xff`).
///
/// It still rejects everything outside the data model or not well-formed: floats
/// ([`Rule::Float`]); simple values other than `false`, `true`, `null` ([`Rule::SimpleValue`]);
/// every tag, the link tag included, so reducer output cannot forge links ([`Rule::Tag`]);
/// invalid UTF-8; nesting deeper than [`MAX_DEPTH`]; truncation; trailing bytes; declared
/// lengths beyond the remaining input. A stray break, an indefinite length on a major type
/// without one (integers, tags), or a bad chunk in an indefinite string is
/// [`Rule::IndefiniteLength`]. Two keys of one map with the same canonical encoding are
/// [`Rule::DuplicateKey`] at the offset of the later one; duplicates are found when the map
/// ends, so an error further inside the same map is reported first.
///
/// # Errors
/// [`DecodeError`] naming the rule broken and its byte offset.
pub fn decode_lenient(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut d = Decoder::<true> { buf: bytes, pos: 0 };
    let v = d.item(0, &mut Build)?;
    d.finish()?;
    Ok(v)
}

/// What the decoder does with each item: build a [`Value`], only check, or collect links.
trait Sink {
    type Out;
    fn int(&mut self, v: i128) -> Self::Out;
    fn bytes(&mut self, b: &[u8]) -> Self::Out;
    fn text(&mut self, t: &str) -> Self::Out;
    fn array(&mut self, items: Vec<Self::Out>) -> Self::Out;
    fn map(&mut self, entries: Vec<(Self::Out, Self::Out)>) -> Self::Out;
    /// A value built already: `false`, `true`, `null`, or in lenient mode a whole map key
    /// (built to learn its canonical encoding; it holds no links, as lenient mode has none).
    fn simple(&mut self, v: Value) -> Self::Out;
    fn link(&mut self, id: ObjectId) -> Self::Out;
}

struct Build;

impl Sink for Build {
    type Out = Value;
    fn int(&mut self, v: i128) -> Value {
        Value::Int(Int(v))
    }
    fn bytes(&mut self, b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
    fn text(&mut self, t: &str) -> Value {
        Value::Text(t.to_owned())
    }
    fn array(&mut self, items: Vec<Value>) -> Value {
        Value::Array(items)
    }
    fn map(&mut self, entries: Vec<(Value, Value)>) -> Value {
        // The decoder has already checked order and uniqueness.
        Value::Map(Map { entries })
    }
    fn simple(&mut self, v: Value) -> Value {
        v
    }
    fn link(&mut self, id: ObjectId) -> Value {
        Value::Link(id)
    }
}

/// The sink that builds nothing: it collects the links it sees when `KEEP`, else nothing.
struct Links<const KEEP: bool>(Vec<ObjectId>);

impl<const KEEP: bool> Sink for Links<KEEP> {
    type Out = ();
    fn int(&mut self, _: i128) {}
    fn bytes(&mut self, _: &[u8]) {}
    fn text(&mut self, _: &str) {}
    fn array(&mut self, _: Vec<()>) {}
    fn map(&mut self, _: Vec<((), ())>) {}
    fn simple(&mut self, _: Value) {}
    fn link(&mut self, id: ObjectId) {
        if KEEP {
            self.0.push(id);
        }
    }
}

/// The most elements the decoder reserves room for before seeing them.
const PREALLOC_MAX: usize = 64;

/// A lenient map entry: the key's canonical encoding, the key's offset, key and value.
type UnorderedEntry<O> = (Vec<u8>, usize, O, O);

/// The decoding loop; `LENIENT` selects [`decode_lenient`]'s rules over the canonical ones.
struct Decoder<'a, const LENIENT: bool> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a, const LENIENT: bool> Decoder<'a, LENIENT> {
    fn err(rule: Rule, offset: usize) -> DecodeError {
        DecodeError { rule, offset }
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Self::err(Rule::TrailingBytes, self.pos))
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, start: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(Self::err(Rule::Truncated, start));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a head; returns (major type, additional info, argument).
    fn head(&mut self) -> Result<(u8, u8, u64), DecodeError> {
        let start = self.pos;
        let Some(&ib) = self.buf.get(self.pos) else {
            return Err(Self::err(Rule::Truncated, start));
        };
        self.pos += 1;
        let major = ib >> 5;
        let ai = ib & 0x1f;
        let arg = match ai {
            0..=23 => u64::from(ai),
            24 => {
                let v = u64::from(self.take(1, start)?[0]);
                // Major type 7 with ai 24 is a one-byte simple value, not an integer argument;
                // its shortest-form rule is handled by the caller.
                if v < 24 && major != 7 && !LENIENT {
                    return Err(Self::err(Rule::NonShortestHead, start));
                }
                v
            }
            25 => {
                let b = self.take(2, start)?;
                let v = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if v <= 0xff && major != 7 && !LENIENT {
                    return Err(Self::err(Rule::NonShortestHead, start));
                }
                v
            }
            26 => {
                let b = self.take(4, start)?;
                let v = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if v <= 0xffff && major != 7 && !LENIENT {
                    return Err(Self::err(Rule::NonShortestHead, start));
                }
                v
            }
            27 => {
                let b = self.take(8, start)?;
                let v = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                if v <= 0xffff_ffff && major != 7 && !LENIENT {
                    return Err(Self::err(Rule::NonShortestHead, start));
                }
                v
            }
            28..=30 => return Err(Self::err(Rule::ReservedAdditionalInfo, start)),
            _ => return Err(Self::err(Rule::IndefiniteLength, start)),
        };
        Ok((major, ai, arg))
    }

    /// Converts a declared length into `usize`, checking it against the remaining input.
    /// `unit` is the least number of bytes each counted element occupies.
    fn length(&self, arg: u64, unit: usize, start: usize) -> Result<usize, DecodeError> {
        match usize::try_from(arg) {
            Ok(n)
                if n.checked_mul(unit)
                    .is_some_and(|need| need <= self.remaining()) =>
            {
                Ok(n)
            }
            _ => Err(Self::err(Rule::LengthExceedsInput, start)),
        }
    }

    /// In an indefinite-length item: consumes the break byte if it comes next.
    fn at_break(&mut self) -> Result<bool, DecodeError> {
        match self.buf.get(self.pos) {
            None => Err(Self::err(Rule::Truncated, self.pos)),
            Some(&0xff) => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    fn item<S: Sink>(&mut self, depth: usize, sink: &mut S) -> Result<S::Out, DecodeError> {
        let start = self.pos;
        if LENIENT
            && let Some(&ib) = self.buf.get(start)
            && ib & 0x1f == 31
            && (2..=5).contains(&(ib >> 5))
        {
            self.pos += 1;
            return self.indefinite(ib >> 5, start, depth, sink);
        }
        let (major, ai, arg) = self.head()?;
        match major {
            0 => Ok(sink.int(i128::from(arg))),
            1 => Ok(sink.int(-1 - i128::from(arg))),
            2 => {
                let n = self.length(arg, 1, start)?;
                let b = self.take(n, start)?;
                Ok(sink.bytes(b))
            }
            3 => {
                let n = self.length(arg, 1, start)?;
                let body_start = self.pos;
                let b = self.take(n, start)?;
                match std::str::from_utf8(b) {
                    Ok(t) => Ok(sink.text(t)),
                    Err(e) => Err(Self::err(Rule::InvalidUtf8, body_start + e.valid_up_to())),
                }
            }
            4 => {
                let n = self.length(arg, 1, start)?;
                if depth >= MAX_DEPTH {
                    return Err(Self::err(Rule::TooDeep, start));
                }
                // Reserve a little up front and let pushes grow the vector: memory then tracks
                // the items really present, not the declared count at every nesting level.
                let mut items = Vec::with_capacity(n.min(PREALLOC_MAX));
                for _ in 0..n {
                    items.push(self.item(depth + 1, sink)?);
                }
                Ok(sink.array(items))
            }
            5 => {
                let n = self.length(arg, 2, start)?;
                if depth >= MAX_DEPTH {
                    return Err(Self::err(Rule::TooDeep, start));
                }
                if LENIENT {
                    return self.unordered_map(Some(n), depth, sink);
                }
                let mut entries = Vec::with_capacity(n.min(PREALLOC_MAX));
                let mut prev: Option<&'a [u8]> = None;
                for _ in 0..n {
                    let key_start = self.pos;
                    let k = self.item(depth + 1, sink)?;
                    let key_bytes = &self.buf[key_start..self.pos];
                    if let Some(p) = prev {
                        match p.cmp(key_bytes) {
                            Ordering::Less => {}
                            Ordering::Equal => {
                                return Err(Self::err(Rule::DuplicateKey, key_start));
                            }
                            Ordering::Greater => {
                                return Err(Self::err(Rule::UnsortedKeys, key_start));
                            }
                        }
                    }
                    prev = Some(key_bytes);
                    let v = self.item(depth + 1, sink)?;
                    entries.push((k, v));
                }
                Ok(sink.map(entries))
            }
            6 => {
                if LENIENT || arg != LINK_TAG {
                    return Err(Self::err(Rule::Tag, start));
                }
                if depth >= MAX_DEPTH {
                    return Err(Self::err(Rule::TooDeep, start));
                }
                let content = self.pos;
                match self.buf.get(content) {
                    None => Err(Self::err(Rule::Truncated, content)),
                    Some(&0x58) => {
                        let b = self.take(2, content)?;
                        if b[1] != 32 {
                            return Err(Self::err(Rule::BadLink, content));
                        }
                        let id = self.take(32, content)?;
                        let mut raw = [0u8; 32];
                        raw.copy_from_slice(id);
                        Ok(sink.link(ObjectId::from_bytes(raw)))
                    }
                    Some(_) => Err(Self::err(Rule::BadLink, content)),
                }
            }
            _ => match ai {
                20 => Ok(sink.simple(Value::Bool(false))),
                21 => Ok(sink.simple(Value::Bool(true))),
                22 => Ok(sink.simple(Value::Null)),
                25..=27 => Err(Self::err(Rule::Float, start)),
                _ => Err(Self::err(Rule::SimpleValue, start)),
            },
        }
    }

    /// Lenient mode: the rest of an indefinite-length item of major type `major` (2 to 5)
    /// whose initial byte is at `start`.
    fn indefinite<S: Sink>(
        &mut self,
        major: u8,
        start: usize,
        depth: usize,
        sink: &mut S,
    ) -> Result<S::Out, DecodeError> {
        if major == 2 || major == 3 {
            let mut buf = Vec::new();
            while !self.at_break()? {
                let chunk = self.pos;
                let (m, _, arg) = self.head()?;
                if m != major {
                    return Err(Self::err(Rule::IndefiniteLength, chunk));
                }
                let n = self.length(arg, 1, chunk)?;
                let body = self.pos;
                let b = self.take(n, chunk)?;
                if major == 3
                    && let Err(e) = std::str::from_utf8(b)
                {
                    return Err(Self::err(Rule::InvalidUtf8, body + e.valid_up_to()));
                }
                buf.extend_from_slice(b);
            }
            if major == 2 {
                return Ok(sink.bytes(&buf));
            }
            // Valid chunks concatenate to valid text; the check cannot fail.
            return match std::str::from_utf8(&buf) {
                Ok(t) => Ok(sink.text(t)),
                Err(_) => Err(Self::err(Rule::InvalidUtf8, start)),
            };
        }
        if depth >= MAX_DEPTH {
            return Err(Self::err(Rule::TooDeep, start));
        }
        if major == 5 {
            return self.unordered_map(None, depth, sink);
        }
        let mut items = Vec::new();
        while !self.at_break()? {
            items.push(self.item(depth + 1, sink)?);
        }
        Ok(sink.array(items))
    }

    /// Lenient mode: the entries of a map at `depth` (already checked against
    /// [`MAX_DEPTH`]), `count` of them or up to a break, sorted into canonical order.
    fn unordered_map<S: Sink>(
        &mut self,
        count: Option<usize>,
        depth: usize,
        sink: &mut S,
    ) -> Result<S::Out, DecodeError> {
        let mut entries: Vec<UnorderedEntry<S::Out>> =
            Vec::with_capacity(count.unwrap_or(0).min(PREALLOC_MAX));
        let mut sorted = true;
        loop {
            let done = match count {
                Some(n) => entries.len() == n,
                None => self.at_break()?,
            };
            if done {
                break;
            }
            let key_start = self.pos;
            let key = self.item(depth + 1, &mut Build)?;
            let enc = encode(&key);
            if let Some((last, ..)) = entries.last() {
                sorted &= last < &enc;
            }
            let k = sink.simple(key);
            let v = self.item(depth + 1, sink)?;
            entries.push((enc, key_start, k, v));
        }
        if !sorted {
            // Stable: of equal keys, the earlier in the input stays first.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let dup = entries
                .windows(2)
                .filter(|w| w[0].0 == w[1].0)
                .map(|w| w[1].1)
                .min();
            if let Some(offset) = dup {
                return Err(Self::err(Rule::DuplicateKey, offset));
            }
        }
        Ok(sink.map(entries.into_iter().map(|(_, _, k, v)| (k, v)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Inputs the strict and the lenient decoder reject alike, with the rule and offset.
    pub(super) const REJECTED_BY_BOTH: &[(&str, Rule, usize)] = &[
        ("ff", Rule::IndefiniteLength, 0),
        ("1c", Rule::ReservedAdditionalInfo, 0),
        ("f93c00", Rule::Float, 0),
        ("f7", Rule::SimpleValue, 0),
        ("f0", Rule::SimpleValue, 0),
        ("f820", Rule::SimpleValue, 0),
        ("c11a514b67b0", Rule::Tag, 0),
        ("62c328", Rule::InvalidUtf8, 1),
        ("0000", Rule::TrailingBytes, 1),
        ("", Rule::Truncated, 0),
        ("19ff", Rule::Truncated, 0),
        ("8201", Rule::LengthExceedsInput, 0),
        ("5a00ffffff00", Rule::LengthExceedsInput, 0),
        ("bb7fffffffffffffff", Rule::LengthExceedsInput, 0),
    ];

    pub(super) fn rejects(input: &str, rule: Rule, offset: usize) {
        let bytes = hex(input);
        assert_eq!(
            decode(&bytes),
            Err(DecodeError { rule, offset }),
            "input {input}"
        );
        assert_eq!(
            validate(&bytes),
            Err(DecodeError { rule, offset }),
            "input {input}"
        );
    }

    #[test]
    fn rfc8949_appendix_a_examples_in_the_model_round_trip() {
        // (value, canonical encoding) pairs from RFC 8949 Appendix A that lie in the model.
        let cases: &[(Value, &str)] = &[
            (0u64.into(), "00"),
            (1u64.into(), "01"),
            (10u64.into(), "0a"),
            (23u64.into(), "17"),
            (24u64.into(), "1818"),
            (25u64.into(), "1819"),
            (100u64.into(), "1864"),
            (1000u64.into(), "1903e8"),
            (1_000_000u64.into(), "1a000f4240"),
            (1_000_000_000_000u64.into(), "1b000000e8d4a51000"),
            (u64::MAX.into(), "1bffffffffffffffff"),
            (Value::Int(Int::new(INT_MIN).unwrap()), "3bffffffffffffffff"),
            ((-1i64).into(), "20"),
            ((-10i64).into(), "29"),
            ((-100i64).into(), "3863"),
            ((-1000i64).into(), "3903e7"),
            (false.into(), "f4"),
            (true.into(), "f5"),
            (Value::Null, "f6"),
            (Value::Bytes(vec![]), "40"),
            (Value::Bytes(vec![1, 2, 3, 4]), "4401020304"),
            ("".into(), "60"),
            ("a".into(), "6161"),
            ("IETF".into(), "6449455446"),
            ("\"\\".into(), "62225c"),
            ("\u{fc}".into(), "62c3bc"),
            ("\u{6c34}".into(), "63e6b0b4"),
            ("\u{10151}".into(), "64f0908591"),
            (Value::Array(vec![]), "80"),
            (
                Value::Array(vec![1u64.into(), 2u64.into(), 3u64.into()]),
                "83010203",
            ),
            (Value::Map(Map::new()), "a0"),
        ];
        for (value, enc) in cases {
            assert_eq!(encode(value), hex(enc), "encode {value:?}");
            assert_eq!(&decode(&hex(enc)).unwrap(), value, "decode {enc}");
        }
        let map = Map::from_entries(vec![
            ("b".into(), Value::Array(vec![2u64.into(), 3u64.into()])),
            ("a".into(), 1u64.into()),
        ])
        .unwrap();
        assert_eq!(encode(&Value::Map(map)), hex("a26161016162820203"));
    }

    #[test]
    fn map_keys_sort_by_encoding_not_by_value() {
        // Shorter encodings sort first: 10 (0x0a) < 100 (0x1864) < -1 (0x20) < "z" (0x617a).
        let map = Map::from_entries(vec![
            ("z".into(), Value::Null),
            ((-1i64).into(), Value::Null),
            (100u64.into(), Value::Null),
            (10u64.into(), Value::Null),
        ])
        .unwrap();
        assert_eq!(encode(&Value::Map(map)), hex("a40af61864f620f6617af6"));
    }

    #[test]
    fn rejects_every_non_canonical_form() {
        rejects("1817", Rule::NonShortestHead, 0);
        rejects("190017", Rule::NonShortestHead, 0);
        rejects("1a0000ffff", Rule::NonShortestHead, 0);
        rejects("1b00000000ffffffff", Rule::NonShortestHead, 0);
        rejects("5800", Rule::NonShortestHead, 0);
        rejects("5f4101ff", Rule::IndefiniteLength, 0);
        rejects("9fff", Rule::IndefiniteLength, 0);
        rejects("fb3ff199999999999a", Rule::Float, 0);
        rejects("d9b3004101", Rule::BadLink, 3);
        rejects("a2616201616101", Rule::UnsortedKeys, 4);
        rejects("a2616101616102", Rule::DuplicateKey, 4);
        rejects("82011a", Rule::Truncated, 2);
        rejects("9b7fffffffffffffff", Rule::LengthExceedsInput, 0);
    }

    #[test]
    fn links_are_collected() {
        let id = ObjectId::from_bytes([7; 32]);
        let v = Value::Array(vec![Value::Link(id), Value::Null]);
        let bytes = encode(&v);
        assert_eq!(&bytes[..5], &hex("82d9b30058"));
        assert_eq!(links(&bytes).unwrap(), vec![id]);
        assert_eq!(decode(&bytes).unwrap(), v);
    }
}

#[cfg(test)]
mod lenient_tests {
    use super::tests::REJECTED_BY_BOTH;
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn accepts(input: &str, want: &Value) {
        assert_eq!(
            decode_lenient(&hex(input)).as_ref(),
            Ok(want),
            "input {input}"
        );
    }

    fn rejects(input: &str, rule: Rule, offset: usize) {
        assert_eq!(
            decode_lenient(&hex(input)),
            Err(DecodeError { rule, offset }),
            "input {input}"
        );
    }

    fn map(entries: Vec<(Value, Value)>) -> Value {
        Value::Map(Map::from_entries(entries).unwrap())
    }

    #[test]
    fn accepts_non_shortest_heads() {
        accepts("1817", &23u64.into());
        accepts("1b0000000000000001", &1u64.into());
        accepts("3900ff", &(-256i64).into());
        accepts(
            "3bffffffffffffffff",
            &Value::Int(Int::new(INT_MIN).unwrap()),
        );
        accepts("5800", &Value::Bytes(vec![]));
        accepts("7a00000001 61", &"a".into());
        accepts("9b0000000000000001 00", &Value::Array(vec![0u64.into()]));
        accepts("b80161611901f4", &map(vec![("a".into(), 500u64.into())]));
    }

    #[test]
    fn accepts_indefinite_lengths() {
        accepts("5fff", &Value::Bytes(vec![]));
        accepts("5f 4101 40 580202 03 ff", &Value::Bytes(vec![1, 2, 3]));
        accepts("7fff", &"".into());
        accepts("7f 6161 7801 62 60 ff", &"ab".into());
        accepts("7f 62c3bc ff", &"\u{fc}".into());
        accepts("9fff", &Value::Array(vec![]));
        accepts(
            "9f 01 9f 02 ff 80 ff",
            &Value::Array(vec![
                1u64.into(),
                Value::Array(vec![2u64.into()]),
                Value::Array(vec![]),
            ]),
        );
        accepts("bfff", &map(vec![]));
        accepts(
            "bf 6162 f5 6161 9fff ff",
            &map(vec![
                ("b".into(), true.into()),
                ("a".into(), Value::Array(vec![])),
            ]),
        );
    }

    #[test]
    fn sorts_map_keys_canonically() {
        // {"b": 1, "a": 2, 100: null, 10: null} in input order; canonical: 10, 100, "a", "b".
        let v = decode_lenient(&hex("a4 6162 01 6161 02 1864 f6 0a f6")).unwrap();
        assert_eq!(encode(&v), hex("a4 0a f6 1864 f6 6161 02 6162 01"));
        // A widened key sorts by its canonical encoding: 1000 (1903e8) after 24 (1818).
        let v = decode_lenient(&hex("a2 1b00000000000003e8 f4 1b0000000000000018 f5")).unwrap();
        assert_eq!(encode(&v), hex("a2 1818 f5 1903e8 f4"));
        // Keys that are themselves non-canonical maps are canonicalized before comparison.
        let v = decode_lenient(&hex("a2 a2 6162 01 6161 02 00 a0 01")).unwrap();
        assert_eq!(encode(&v), hex("a2 a0 01 a2 6161 02 6162 01 00"));
    }

    #[test]
    fn rejects_what_is_outside_the_model_or_malformed() {
        rejects("fa47c35000", Rule::Float, 0);
        rejects("82 01 fb3ff199999999999a", Rule::Float, 2);
        rejects("f814", Rule::SimpleValue, 0);
        rejects("81 d818 4100", Rule::Tag, 1);
        let link = encode(&Value::Link(ObjectId::from_bytes([9; 32])));
        assert_eq!(
            decode_lenient(&link),
            Err(DecodeError {
                rule: Rule::Tag,
                offset: 0
            })
        );
        rejects("7f 62c328 ff", Rule::InvalidUtf8, 2);
        // A character split across chunks is invalid in each chunk.
        rejects("7f 61c3 61bc ff", Rule::InvalidUtf8, 2);
        rejects("a2 6161 01 6161 02", Rule::DuplicateKey, 4);
        rejects("a2 6161 01 780161 02", Rule::DuplicateKey, 4);
        rejects("a3 6162 01 6161 02 6162 03", Rule::DuplicateKey, 7);
        rejects("bf 6161 01 7f6161ff 02 ff", Rule::DuplicateKey, 4);
        rejects("a3 6162 01 6162 02 6162 03", Rule::DuplicateKey, 4);
        rejects("9fff 00", Rule::TrailingBytes, 2);
        rejects("5f", Rule::Truncated, 1);
        rejects("5f 4101", Rule::Truncated, 3);
        rejects("5f 4201", Rule::LengthExceedsInput, 1);
        rejects("9f 01", Rule::Truncated, 2);
        rejects("bf 6161 01", Rule::Truncated, 4);
        rejects("bf 6161", Rule::Truncated, 3);
        rejects("9b0000000100000000 00", Rule::LengthExceedsInput, 0);
        rejects("82 01 ff", Rule::IndefiniteLength, 2);
        rejects("bf 6161 ff", Rule::IndefiniteLength, 3);
        rejects("1f", Rule::IndefiniteLength, 0);
        rejects("3f", Rule::IndefiniteLength, 0);
        rejects("df 00", Rule::IndefiniteLength, 0);
        rejects("5f 6161 ff", Rule::IndefiniteLength, 1);
        rejects("7f 4161 ff", Rule::IndefiniteLength, 1);
        rejects("5f 5f4101ff ff", Rule::IndefiniteLength, 1);
        rejects("5f 00 ff", Rule::IndefiniteLength, 1);
        rejects("5f 5c ff", Rule::ReservedAdditionalInfo, 1);
    }

    #[test]
    fn rejects_alike_with_the_strict_decoder() {
        for &(input, rule, offset) in REJECTED_BY_BOTH {
            super::tests::rejects(input, rule, offset);
            rejects(input, rule, offset);
        }
    }

    /// `decode` reads the input `nest(MAX_DEPTH)`, nested [`MAX_DEPTH`] deep, and refuses
    /// `nest(MAX_DEPTH + 1)` at offset [`MAX_DEPTH`].
    fn depth_is_bounded(
        decode: fn(&[u8]) -> Result<Value, DecodeError>,
        nest: impl Fn(usize) -> Vec<u8>,
    ) {
        assert!(decode(&nest(MAX_DEPTH)).is_ok());
        assert_eq!(
            decode(&nest(MAX_DEPTH + 1)),
            Err(DecodeError {
                rule: Rule::TooDeep,
                offset: MAX_DEPTH
            })
        );
    }

    #[test]
    fn nesting_is_bounded_in_both_decoders() {
        depth_is_bounded(decode, |n| [vec![0x81; n], vec![0x00]].concat());
        // A million nested arrays must fail cleanly, not overflow the stack.
        let huge = vec![0x81; 1_000_000];
        assert_eq!(decode(&huge).unwrap_err().rule, Rule::TooDeep);
        depth_is_bounded(decode_lenient, |n| {
            [vec![0x9f; n], vec![0x00], vec![0xff; n]].concat()
        });
        // A million nested items of each kind fail cleanly, without overflowing the stack;
        // maps nest through their keys as well as their values.
        for b in [0x9f, 0xbf, 0x81, 0xa1] {
            let huge = vec![b; 1_000_000];
            assert_eq!(
                decode_lenient(&huge).unwrap_err().rule,
                Rule::TooDeep,
                "{b:x}"
            );
        }
        let keys = [vec![0xbf; 500_000], vec![0x00]].concat();
        assert_eq!(decode_lenient(&keys).unwrap_err().rule, Rule::TooDeep);
    }

    #[test]
    fn canonical_input_decodes_as_strictly() {
        for input in ["00", "a26161016162820203", "83010203", "f6", "40", "60"] {
            assert_eq!(decode_lenient(&hex(input)), decode(&hex(input)), "{input}");
        }
    }
}

#[cfg(test)]
pub(crate) mod props {
    use super::*;
    use proptest::prelude::*;

    fn int() -> impl Strategy<Value = Int> {
        prop_oneof![
            any::<i64>().prop_map(Int::from),
            any::<u64>().prop_map(Int::from),
            (0u64..=u64::MAX).prop_map(|n| Int::new(-1 - i128::from(n)).expect("in range")),
            Just(Int::new(INT_MIN).expect("min")),
            Just(Int::new(INT_MAX).expect("max")),
            (0u64..70).prop_map(Int::from),
        ]
    }

    pub(crate) fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            int().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
            ".{0,20}".prop_map(Value::Text),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            any::<[u8; 32]>().prop_map(|b| Value::Link(ObjectId::from_bytes(b))),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(|entries| {
                    // Later duplicates are dropped, keeping the first of each key.
                    let mut m = Map::new();
                    for (k, v) in entries {
                        if m.get(&k).is_none() {
                            m.insert(k, v);
                        }
                    }
                    Value::Map(m)
                }),
            ]
        })
    }

    fn has_link(v: &Value) -> bool {
        match v {
            Value::Link(_) => true,
            Value::Array(items) => items.iter().any(has_link),
            Value::Map(m) => m.entries().iter().any(|(k, v)| has_link(k) || has_link(v)),
            _ => false,
        }
    }

    /// `v` with every link replaced by its id as a byte string (later keys win on collision).
    fn unlink(v: Value) -> Value {
        match v {
            Value::Link(id) => Value::Bytes(id.as_bytes().to_vec()),
            Value::Array(items) => Value::Array(items.into_iter().map(unlink).collect()),
            Value::Map(m) => {
                let mut out = Map::new();
                for (k, v) in m.into_entries() {
                    out.insert(unlink(k), unlink(v));
                }
                Value::Map(out)
            }
            other => other,
        }
    }

    /// A test-only encoder of valid but non-canonical CBOR, steered by a cycle of choices:
    /// widened heads, indefinite lengths with random chunking, and shuffled map keys.
    struct NonCanonical<'c> {
        choices: &'c [u8],
        next: usize,
    }

    impl NonCanonical<'_> {
        fn pick(&mut self) -> u8 {
            let c = self.choices[self.next % self.choices.len()];
            self.next += 1;
            c
        }

        /// A head for `arg`, at the shortest width or any wider one.
        fn head(&mut self, out: &mut Vec<u8>, major: u8, arg: u64) {
            let widen = self.pick() % 5;
            let m = major << 5;
            if widen == 0 || (arg < 24 && widen == 1) {
                write_head(out, major, arg);
            } else if arg <= 0xff && widen <= 1 {
                out.extend_from_slice(&[m | 24, arg as u8]);
            } else if arg <= 0xffff && widen <= 2 {
                out.push(m | 25);
                out.extend_from_slice(&(arg as u16).to_be_bytes());
            } else if arg <= 0xffff_ffff && widen <= 3 {
                out.push(m | 26);
                out.extend_from_slice(&(arg as u32).to_be_bytes());
            } else {
                out.push(m | 27);
                out.extend_from_slice(&arg.to_be_bytes());
            }
        }

        /// A string, definite or as indefinite-length chunks split at char boundaries.
        fn string(&mut self, out: &mut Vec<u8>, major: u8, b: &[u8], text: bool) {
            if !self.pick().is_multiple_of(3) {
                self.head(out, major, b.len() as u64);
                out.extend_from_slice(b);
                return;
            }
            out.push((major << 5) | 31);
            let mut rest = b;
            for chunks in 0.. {
                let mut n = usize::from(self.pick() % 6).min(rest.len());
                // An empty chunk is fine now and then, but the string must get shorter
                // (a cycle of choices could otherwise pick 0 forever).
                if n == 0 && !rest.is_empty() && chunks > 2 {
                    n = 1;
                }
                while text && n < rest.len() && (rest[n] & 0xc0) == 0x80 {
                    n += 1;
                }
                self.head(out, major, n as u64);
                out.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if rest.is_empty() && (chunks > 4 || self.pick().is_multiple_of(2)) {
                    break;
                }
            }
            out.push(0xff);
        }

        fn encode(&mut self, v: &Value, out: &mut Vec<u8>) {
            match v {
                Value::Int(i) => {
                    let n = i.get();
                    if n >= 0 {
                        self.head(out, 0, u64::try_from(n).unwrap());
                    } else {
                        self.head(out, 1, u64::try_from(-1 - n).unwrap());
                    }
                }
                Value::Bytes(b) => self.string(out, 2, b, false),
                Value::Text(t) => self.string(out, 3, t.as_bytes(), true),
                Value::Array(items) => {
                    let indefinite = self.pick().is_multiple_of(2);
                    if indefinite {
                        out.push(0x9f);
                    } else {
                        self.head(out, 4, items.len() as u64);
                    }
                    for item in items {
                        self.encode(item, out);
                    }
                    if indefinite {
                        out.push(0xff);
                    }
                }
                Value::Map(m) => {
                    let mut entries: Vec<&(Value, Value)> = m.entries().iter().collect();
                    for i in (1..entries.len()).rev() {
                        let j = usize::from(self.pick()) % (i + 1);
                        entries.swap(i, j);
                    }
                    let indefinite = self.pick().is_multiple_of(2);
                    if indefinite {
                        out.push(0xbf);
                    } else {
                        self.head(out, 5, entries.len() as u64);
                    }
                    for (k, v) in entries {
                        self.encode(k, out);
                        self.encode(v, out);
                    }
                    if indefinite {
                        out.push(0xff);
                    }
                }
                other => encode_into(other, out),
            }
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(v in value()) {
            let bytes = encode(&v);
            prop_assert_eq!(decode(&bytes), Ok(v));
            prop_assert_eq!(validate(&bytes), Ok(()));
        }

        #[test]
        fn every_accepted_input_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = decode(&bytes) {
                prop_assert_eq!(encode(&v), bytes.clone());
            }
            prop_assert_eq!(validate(&bytes).is_ok(), decode(&bytes).is_ok());
        }

        #[test]
        fn mutations_of_valid_encodings_are_canonical_or_rejected(
            v in value(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&v);
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            match decode(&bytes) {
                Ok(w) => prop_assert_eq!(encode(&w), bytes),
                Err(e) => prop_assert!(e.offset <= bytes.len()),
            }
        }

        #[test]
        fn lenient_decodes_canonical_input_like_strict(v in value()) {
            let bytes = encode(&v);
            if has_link(&v) {
                prop_assert_eq!(decode_lenient(&bytes).map_err(|e| e.rule), Err(Rule::Tag));
            } else {
                prop_assert_eq!(decode_lenient(&bytes), Ok(v));
            }
        }

        #[test]
        fn lenient_canonicalizes_non_canonical_encodings(
            v in value(),
            choices in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let v = unlink(v);
            let mut out = Vec::new();
            NonCanonical { choices: &choices, next: 0 }.encode(&v, &mut out);
            prop_assert_eq!(decode_lenient(&out), Ok(v));
        }

        #[test]
        fn lenient_accepts_only_model_values(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            match decode_lenient(&bytes) {
                Ok(v) => {
                    prop_assert!(!has_link(&v));
                    prop_assert_eq!(decode(&encode(&v)), Ok(v.clone()));
                    if let Ok(strict) = decode(&bytes) {
                        prop_assert_eq!(strict, v);
                    }
                }
                Err(e) => {
                    prop_assert!(e.offset <= bytes.len());
                    if let Ok(strict) = decode(&bytes) {
                        prop_assert!(has_link(&strict));
                    }
                }
            }
        }

        #[test]
        fn map_order_is_independent_of_insertion_order(entries in proptest::collection::vec((value(), value()), 0..10)) {
            let mut dedup: Vec<(Value, Value)> = Vec::new();
            for (k, v) in entries {
                if !dedup.iter().any(|(k2, _)| *k2 == k) {
                    dedup.push((k, v));
                }
            }
            let forward = Map::from_entries(dedup.clone()).expect("distinct");
            dedup.reverse();
            let backward = Map::from_entries(dedup).expect("distinct");
            prop_assert_eq!(encode(&Value::Map(forward)), encode(&Value::Map(backward)));
        }

        #[test]
        fn text_key_order_is_the_encoding_order(a in ".{0,40}", b in ".{0,40}", n in 0usize..300) {
            // Long keys too, so that heads of different sizes are compared.
            let long = "k".repeat(n);
            for (x, y) in [(a.as_str(), b.as_str()), (a.as_str(), long.as_str())] {
                prop_assert_eq!(
                    text_key_order(x, y),
                    canonical_cmp(&Value::from(x), &Value::from(y))
                );
            }
        }

        #[test]
        fn text_entries_sort_like_a_map_and_the_last_equal_key_wins(
            entries in proptest::collection::vec(("[a-c]{0,3}", value()), 0..12)
        ) {
            let mut expected = Map::new();
            for (k, v) in &entries {
                expected.insert(Value::Text(k.clone()), v.clone());
            }
            prop_assert_eq!(Map::from_text_entries(entries), expected);
        }

        #[test]
        fn any_entries_sort_like_a_map_and_lookups_find_every_key(
            entries in proptest::collection::vec((value(), value()), 0..12)
        ) {
            let mut expected = Map::new();
            for (k, v) in &entries {
                expected.insert(k.clone(), v.clone());
            }
            let m = Map::from_entries_last_wins(entries);
            prop_assert_eq!(&m, &expected);
            for (k, v) in m.entries() {
                prop_assert_eq!(m.get(k), Some(v));
                if let Value::Text(t) = k {
                    prop_assert_eq!(m.get_text(t), Some(v));
                }
            }
            prop_assert_eq!(m.get_text("not-a-key-of-value()"), None);
        }
    }
}
