//! Typed values of AIR v1: reading both JSON lenses through a type, checking and
//! canonicalizing data-model values, and rendering values back to either lens.
//!
//! # The value encoding
//!
//! A typed value is held as a data-model [`Value`] in canonical form, the bytes reducers see
//! and the store hashes:
//!
//! | type | canonical value |
//! |---|---|
//! | `bool` | a boolean |
//! | `int`, `duration` | an integer in i64 range |
//! | `nat`, `time` | an integer in u64 range (`time`: ns since the Unix epoch) |
//! | `dec128` | text, the canonical decimal form (below) |
//! | `bytes` | a byte string |
//! | `text` | text |
//! | `hash` | text `b3:<64 lowercase hex>` |
//! | `uuid` | text, lowercase hyphenated `8-4-4-4-12` |
//! | `unit` | `null` |
//! | `record` | a map from every field name (text) to its value |
//! | `variant` | a one-entry map `{Tag: payload}`; a unit payload is `null` |
//! | `option` | `null` (none) or the value |
//! | `list` | an array |
//! | `set` | an array, without duplicates, sorted by the elements' encoded bytes |
//! | `map` | a map from keys (of the key type's encoding) to values |
//!
//! This is the shape plain serde derives (externally tagged enums) decode.
//!
//! **dec128.** A decimal is accepted as text matching `[+-]?D+(.D+)?([eE][+-]?D+)?` (as in
//! upstream's `DecimalString`) and must fit IEEE 754 decimal128 *exactly*: after leading and
//! trailing zeros are dropped, at most 34 significant digits, and a value `c × 10^q` with
//! `c < 10^34` and `−6176 ≤ q ≤ 6111` (subnormals included); nothing is rounded. Values are
//! kept by numeric value, not by quantum (`1.50` and `1.5` are the same value). The canonical
//! text of a value with significant digits `d` (no leading or trailing zeros, `n` of them) and
//! exponent `e` (value `d × 10^e`), adjusted exponent `a = e + n − 1`:
//! - zero (of any sign or exponent) is `0`;
//! - a negative value starts with `-`; there is never a `+` sign in front;
//! - if `−6 ≤ a ≤ 33`, plain notation without exponent: `100`, `1.5`, `0.000001`;
//! - otherwise scientific: the first digit, then `.` and the other digits if any, then `E`,
//!   the sign of `a` (`+` or `-`) and `|a|`: `1E-7`, `1.5E+40`.
//!
//! See [`canonical_dec128`].
//!
//! # The two JSON lenses
//!
//! **Sugar** reads plain JSON through the type: booleans; integers as JSON numbers (no
//! fraction or exponent) or as strings of decimal digits; `dec128` as a string or a JSON number
//! literal (read exactly, never through floating point); `bytes` as canonical base64
//! (standard alphabet, `=` padding); `time` also as RFC 3339 text with an offset (see
//! [`parse_rfc3339`]); `unit` as `null` or `{}`; records as objects; a variant as
//! `{"Tag": payload}` or, for a unit payload, the bare string `"Tag"` (`{"Tag": null}` and
//! `{"Tag": {}}` work too); option none as `null`; lists and sets as arrays; maps as objects
//! when the key type is text, uuid or hash, and as arrays of `[key, value]` pairs for any key
//! type.
//!
//! **Tagged** literals say their type, as upstream's `ValueLiteral`: `{"null": {}}` (unit, and
//! option none), `{"bool": b}`, `{"int": n}`, `{"nat": n}`, `{"dec128": "text"}`,
//! `{"text": s}`, `{"bytes_b64": s}`, `{"time_ns": n}`, `{"duration_ns": n}`, `{"hash": s}`,
//! `{"uuid": s}`, `{"record": {field: V}}`, `{"variant": {"tag": t, "value": V}}` (`value`
//! omitted means `null`, so a unit payload or an option none), `{"list": [V]}`,
//! `{"set": [V]}`, `{"map": [{"key": K, "value": V}]}`. Option some is the payload's own
//! literal. Numbers in tagged literals must be JSON numbers.
//!
//! **Which lens.** Either lens is accepted at every position, and the two may be mixed. With
//! `T` the type at a position (references followed), JSON there is read as a tagged literal
//! if and only if it is an object with exactly one member whose key is `T`'s keyword: the
//! keyword of each type is the one in the list above (`unit` → `null`, `bytes` →
//! `bytes_b64`, `time` → `time_ns`, `duration` → `duration_ns`, the others their own name),
//! and for `option<U>` it is `null` or `U`'s keyword. Everything else is sugar. Sugar values
//! are never single-member objects except for records, variants and text-keyed maps, so the
//! rule only decides anything for a record whose one field is named `record`, a variant tag
//! named `variant`, a map whose one key is `map`, and, under an option, such a value whose
//! one key is `null`: these are read as tagged literals, so such values must be written in
//! the tagged form at that position (inner positions may stay sugar). [`to_sugar`] does
//! exactly this, so `from_json(to_sugar(v)) == v` for every value.
//!
//! **Records** may omit fields whose type is an option (they read as none), in both lenses
//! and in [`canonicalize`]; the canonical value always holds every field. Unknown fields are
//! errors.
//!
//! # Canonicalizing data-model values
//!
//! [`canonicalize`] checks a data-model value (such as a reducer's output) against a type and
//! returns its canonical form. Beyond canonical values it accepts what plain serde derives
//! emit: a unit variant as the bare text `"Tag"`, a missing option field, `{}` for unit, a
//! byte string serialized as an array of integers 0..=255 (`Vec<u8>` without
//! `serde_bytes`), and non-canonical `dec128` text and uppercase `uuid` text. Sets are sorted
//! and deduplicated; map keys are canonicalized, and two keys that become equal are an error.
//!
//! # Errors and limits
//!
//! A [`ValueError`] names the place: for [`from_json`] the JSON pointer into the input (through
//! tagged wrappers: `/record/x`, `/map/0/key`), for the other functions a pointer-like path
//! into the value (field names, indices, variant tags, map keys as text). No input panics;
//! values may nest at most [`MAX_DEPTH`] arrays and maps deep, so every result encodes to
//! CBOR that [`cbor::decode`] accepts; schemas that refer to themselves are reported, never
//! followed forever.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use base64::Engine as _;

use super::name::Name;
use super::types::{MapKey, PathFail, Schemas, Type, canonical_order, value_kind};
use crate::codec::cbor::{self, Int, MAX_DEPTH, Map, Value};
use crate::codec::json::{BASE64, Json};
use crate::object::ObjectId;

/// The keys of the tagged literals of scalar types (`{"nat": 3}`), which are also the keys of
/// expression constants.
pub(crate) const SCALAR_KEYWORDS: [&str; 11] = [
    "null",
    "bool",
    "int",
    "nat",
    "dec128",
    "text",
    "bytes_b64",
    "time_ns",
    "duration_ns",
    "hash",
    "uuid",
];

/// The keys of the tagged literals of composite types (`{"list": [..]}`), which are also the
/// keys of expression constructors.
pub(crate) const COMPOSITE_KEYWORDS: [&str; 5] = ["record", "variant", "list", "set", "map"];

/// Whether `k` is the key of a tagged literal.
pub(crate) fn is_tag_keyword(k: &str) -> bool {
    SCALAR_KEYWORDS.contains(&k) || COMPOSITE_KEYWORDS.contains(&k)
}

/// Why a value does not fit its type, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValueError {
    /// Where: for JSON input the JSON pointer (RFC 6901) of the offending part, relative to the
    /// value read; for data-model input a path in the same syntax (field names, indices,
    /// variant tags, map keys as text). `""` is the value itself.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "invalid value: {}", self.message)
        } else {
            write!(f, "invalid value at `{}`: {}", self.path, self.message)
        }
    }
}

impl From<PathFail> for ValueError {
    fn from(e: PathFail) -> Self {
        let (path, message) = e.finish();
        Self { path, message }
    }
}

/// Reads a value of type `ty` from JSON in either lens (see the
/// [module documentation](self)) and returns its canonical data-model value.
///
/// # Errors
/// [`ValueError`] with the JSON pointer, relative to `j`, of the first problem.
pub fn from_json(j: &Json, ty: &Type, schemas: &dyn Schemas) -> Result<Value, ValueError> {
    Cx { schemas }.read(j, ty, 0).map_err(ValueError::from)
}

/// Checks a data-model value against `ty` and returns its canonical form, accepting the other
/// forms plain serde derives produce (see the [module documentation](self)).
///
/// # Errors
/// [`ValueError`] with the path of the first problem.
pub fn canonicalize(v: &Value, ty: &Type, schemas: &dyn Schemas) -> Result<Value, ValueError> {
    Cx { schemas }.canon(v, ty, 0).map_err(ValueError::from)
}

/// Renders a value of type `ty` as sugar JSON (see the [module documentation](self)). The
/// value is canonicalized first, so any value [`canonicalize`] accepts may be given.
///
/// # Errors
/// [`ValueError`] if the value does not fit the type.
pub fn to_sugar(v: &Value, ty: &Type, schemas: &dyn Schemas) -> Result<Json, ValueError> {
    let cx = Cx { schemas };
    let v = cx.canon(v, ty, 0).map_err(ValueError::from)?;
    cx.render(&v, ty, Lens::Sugar).map_err(ValueError::from)
}

/// Renders a value of type `ty` as tagged JSON (see the [module documentation](self)). The
/// value is canonicalized first, so any value [`canonicalize`] accepts may be given.
///
/// # Errors
/// [`ValueError`] if the value does not fit the type.
pub fn to_tagged(v: &Value, ty: &Type, schemas: &dyn Schemas) -> Result<Json, ValueError> {
    let cx = Cx { schemas };
    let v = cx.canon(v, ty, 0).map_err(ValueError::from)?;
    cx.render(&v, ty, Lens::Tagged).map_err(ValueError::from)
}

// ---------------------------------------------------------------------------------------------
// Scalars

/// The canonical text of a `dec128` value written as `s` (rules in the
/// [module documentation](self)).
///
/// # Errors
/// [`ValueError`] (with an empty path) if `s` is not decimal text or does not fit decimal128
/// exactly.
pub fn canonical_dec128(s: &str) -> Result<String, ValueError> {
    dec128(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

fn dec128(s: &str) -> Result<String, String> {
    const SYNTAX: &str = "a dec128 is decimal text like \"12.5\", \"-3\" or \"1.5E+40\"";
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let neg = b.first() == Some(&b'-');
    let int_end = digits_from(i);
    if int_end == i {
        return Err(SYNTAX.to_owned());
    }
    let int_part = &b[i..int_end];
    i = int_end;
    let mut frac_part: &[u8] = &[];
    if b.get(i) == Some(&b'.') {
        let end = digits_from(i + 1);
        if end == i + 1 {
            return Err(SYNTAX.to_owned());
        }
        frac_part = &b[i + 1..end];
        i = end;
    }
    // The written exponent, saturated far beyond any representable one.
    let mut exp: i128 = 0;
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        let eneg = b.get(i) == Some(&b'-');
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let end = digits_from(i);
        if end == i {
            return Err(SYNTAX.to_owned());
        }
        for &d in &b[i..end] {
            exp = (exp * 10 + i128::from(d - b'0')).min(1_000_000_000_000);
        }
        if eneg {
            exp = -exp;
        }
        i = end;
    }
    if i != b.len() {
        return Err(SYNTAX.to_owned());
    }
    // Coefficient digits and exponent: value = digits × 10^e.
    let all: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
    let lead = all.iter().take_while(|&&d| d == b'0').count();
    if lead == all.len() {
        return Ok("0".to_owned());
    }
    let trail = all.iter().rev().take_while(|&&d| d == b'0').count();
    let d = &all[lead..all.len() - trail];
    let n = d.len();
    if n > 34 {
        return Err(format!(
            "{n} significant digits do not fit dec128 (at most 34; nothing is rounded)"
        ));
    }
    let len = |x: usize| i128::try_from(x).unwrap_or(i128::MAX);
    let e = exp - len(frac_part.len()) + len(trail);
    let n_i = len(n);
    if e < -6176 || e > 6111 + 34 - n_i {
        return Err("exponent out of range for dec128".to_owned());
    }
    let a = e + n_i - 1;
    let digits = std::str::from_utf8(d).unwrap_or("0");
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-6..=33).contains(&a) {
        if e >= 0 {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', usize::try_from(e).unwrap_or(0)));
        } else {
            // Number of integer digits.
            let p = n_i + e;
            if p > 0 {
                let p = usize::try_from(p).unwrap_or(0);
                out.push_str(&digits[..p]);
                out.push('.');
                out.push_str(&digits[p..]);
            } else {
                out.push_str("0.");
                out.extend(std::iter::repeat_n('0', usize::try_from(-p).unwrap_or(0)));
                out.push_str(digits);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('E');
        out.push(if a < 0 { '-' } else { '+' });
        out.push_str(&a.abs().to_string());
    }
    Ok(out)
}

/// The canonical text of a uuid: 32 hex digits in groups 8-4-4-4-12, separated by `-`;
/// uppercase digits are accepted and lowered.
///
/// # Errors
/// [`ValueError`] (with an empty path) if `s` is not of that form.
pub fn canonical_uuid(s: &str) -> Result<String, ValueError> {
    uuid(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

fn uuid(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{} is not a uuid (32 hex digits in groups 8-4-4-4-12)",
            shown(s)
        ))
    }
}

fn hash(s: &str) -> Result<String, String> {
    s.parse::<ObjectId>()
        .map(|_| s.to_owned())
        .map_err(|e| format!("{} is not a hash `b3:<64 lowercase hex>`: {e}", shown(s)))
}

/// A string for messages: quoted, at most 40 characters.
fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push_str("...");
    }
    format!("{t:?}")
}

/// Reads an RFC 3339 timestamp with a time offset as nanoseconds since the Unix epoch:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t` and `z` may be lowercase). The fraction
/// may have any number of digits, but digits after the ninth must be zero; the leap second
/// `:60` is rejected (it has no POSIX time). The result must lie between the epoch and the
/// largest `nat` (2554-07-21T23:34:33.709551615Z).
///
/// # Errors
/// [`ValueError`] (with an empty path) naming the problem.
pub fn parse_rfc3339(s: &str) -> Result<u64, ValueError> {
    rfc3339(s).map_err(|message| ValueError {
        path: String::new(),
        message,
    })
}

fn rfc3339(s: &str) -> Result<u64, String> {
    let syntax = || {
        format!(
            "{} is not an RFC 3339 time like \"2024-05-01T12:00:00Z\" or \
             \"2024-05-01T14:00:00.5+02:00\"",
            shown(s)
        )
    };
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i128> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i128, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i128::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(syntax());
    };
    if !(at(4, b'-') && at(7, b'-') && (at(10, b'T') || at(10, b't')) && at(13, b':'))
        || !at(16, b':')
    {
        return Err(syntax());
    }
    let mut i = 19;
    let mut frac_ns: i128 = 0;
    if at(i, b'.') {
        let start = i + 1;
        let mut j = start;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j == start {
            return Err(syntax());
        }
        for (k, &c) in b[start..j].iter().enumerate() {
            let d = i128::from(c - b'0');
            if k < 9 {
                frac_ns = frac_ns * 10 + d;
            } else if d != 0 {
                return Err(format!("{} is more precise than nanoseconds", shown(s)));
            }
        }
        for _ in (j - start)..9 {
            frac_ns *= 10;
        }
        i = j;
    }
    let offset_s: i128 = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b':') => {
            let (Some(oh), Some(om)) = (num(i + 1, 2), num(i + 4, 2)) else {
                return Err(syntax());
            };
            if oh > 23 || om > 59 {
                return Err(format!("{}: the offset is out of range", shown(s)));
            }
            let o = oh * 3600 + om * 60;
            if c == b'-' { -o } else { o }
        }
        _ => return Err(syntax()),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("{}: month {month} does not exist", shown(s))),
    };
    if day < 1 || day > month_days {
        return Err(format!("{}: day {day} does not exist", shown(s)));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("{}: the time of day is out of range", shown(s)));
    }
    if second == 60 {
        return Err(format!(
            "{}: leap seconds have no time in nanoseconds since the epoch",
            shown(s)
        ));
    }
    if second > 59 {
        return Err(format!("{}: second {second} does not exist", shown(s)));
    }
    // Days from 1970-01-01 to the civil date (proleptic Gregorian calendar).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    let ns = secs * 1_000_000_000 + frac_ns;
    if ns < 0 {
        return Err(format!("{} is before the Unix epoch", shown(s)));
    }
    u64::try_from(ns).map_err(|_| {
        format!(
            "{} is after 2554-07-21T23:34:33.709551615Z, the last time a nat holds",
            shown(s)
        )
    })
}

/// Reads decimal integer text `-?(0|[1-9][0-9]*)`; `-0` is 0.
fn int_text(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let b = digits.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    // 2^64 has 20 digits; longer text is out of every range here, and saturates.
    if b.len() > 30 {
        return Some(if neg { i128::MIN } else { i128::MAX });
    }
    let m = b
        .iter()
        .fold(0i128, |acc, &d| acc * 10 + i128::from(d - b'0'));
    Some(if neg { -m } else { m })
}

/// The integer kinds and their ranges.
#[derive(Clone, Copy)]
enum IntKind {
    Signed,
    Unsigned,
}

impl IntKind {
    fn of(t: &Type) -> Self {
        if matches!(t, Type::Int | Type::Duration) {
            Self::Signed
        } else {
            Self::Unsigned
        }
    }

    fn check(self, n: i128, what: &str) -> Result<Value, PathFail> {
        let (ok, range) = match self {
            Self::Signed => (i64::try_from(n).is_ok(), "-2^63 ..= 2^63-1"),
            Self::Unsigned => (u64::try_from(n).is_ok(), "0 ..= 2^64-1"),
        };
        match Int::new(n) {
            Some(i) if ok => Ok(Value::Int(i)),
            _ => Err(PathFail::new(format!(
                "{n} is out of range for {what} ({range})"
            ))),
        }
    }
}

/// Reads a JSON number literal that must be an integer.
fn number_int(lit: &str) -> Result<i128, PathFail> {
    int_text(lit).ok_or_else(|| {
        if lit.contains(['.', 'e', 'E']) {
            PathFail::new(format!(
                "{} is not an integer (no fraction or exponent)",
                shown(lit)
            ))
        } else {
            PathFail::new(format!("invalid number {}", shown(lit)))
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Types at a position

/// The tagged keyword of a type that is neither an option nor a reference.
fn keyword(t: &Type) -> &'static str {
    match t {
        Type::Bool => "bool",
        Type::Int => "int",
        Type::Nat => "nat",
        Type::Dec128 => "dec128",
        Type::Bytes => "bytes_b64",
        Type::Text => "text",
        Type::Time => "time_ns",
        Type::Duration => "duration_ns",
        Type::Hash => "hash",
        Type::Uuid => "uuid",
        Type::Unit => "null",
        Type::Record(_) => "record",
        Type::Variant(_) => "variant",
        Type::List(_) => "list",
        Type::Set(_) => "set",
        Type::Map { .. } => "map",
        Type::Option(_) | Type::Ref(_) => "",
    }
}

/// What a type's values look like, for messages.
fn expected(t: &Type) -> &'static str {
    match t {
        Type::Bool => "a boolean (bool)",
        Type::Int => "an integer (int)",
        Type::Nat => "a non-negative integer (nat)",
        Type::Dec128 => "decimal text (dec128)",
        Type::Bytes => "base64 text (bytes)",
        Type::Text => "a string (text)",
        Type::Time => "a time: integer ns since the epoch or RFC 3339 text",
        Type::Duration => "an integer number of nanoseconds (duration)",
        Type::Hash => "a hash \"b3:<64 hex>\"",
        Type::Uuid => "a uuid string",
        Type::Unit => "null (unit)",
        Type::Record(_) => "an object (record)",
        Type::Variant(_) => "a variant {\"Tag\": value} or \"Tag\"",
        Type::List(_) => "an array (list)",
        Type::Set(_) => "an array (set)",
        Type::Map { .. } => "a map: an object or an array of [key, value] pairs",
        Type::Option(_) => "null or a value (option)",
        Type::Ref(_) => "a value of a named schema",
    }
}

/// What a piece of JSON is, for messages.
fn found(j: &Json) -> String {
    match j {
        Json::Object(m) if m.len() == 1 && is_tag_keyword(&m[0].0) => {
            format!("a tagged `{}` literal", m[0].0)
        }
        Json::Null => "null".to_owned(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) => format!("the string {}", shown(s)),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
    }
}

fn mismatch(t: &Type, j: &Json) -> PathFail {
    PathFail::new(format!("expected {}, found {}", expected(t), found(j)))
}

fn check_depth(depth: usize) -> Result<(), PathFail> {
    if depth >= MAX_DEPTH {
        Err(PathFail::new(format!(
            "value nested too deeply (more than {MAX_DEPTH} levels of arrays and maps)"
        )))
    } else {
        Ok(())
    }
}

fn names_of(fields: &BTreeMap<String, Type>) -> String {
    let mut names: Vec<String> = canonical_order(fields)
        .iter()
        .take(12)
        .map(|(k, _)| format!("`{k}`"))
        .collect();
    if fields.len() > 12 {
        names.push("...".to_owned());
    }
    names.join(", ")
}

fn one_entry(tag: &str, payload: Value) -> Value {
    let mut m = Map::new();
    m.insert(Value::Text(tag.to_owned()), payload);
    Value::Map(m)
}

/// Sorts set elements by their encodings and drops duplicates.
fn sorted_set(items: Vec<Value>) -> Value {
    let mut keyed: Vec<(Vec<u8>, Value)> =
        items.into_iter().map(|v| (cbor::encode(&v), v)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
}

/// Builds a map from entries with distinct keys (checked by the caller).
fn map_of(entries: Vec<(Value, Value)>) -> Result<Value, PathFail> {
    Map::from_entries(entries)
        .map(Value::Map)
        .map_err(|d| PathFail::new(format!("duplicate key {}", key_text(&d.key))))
}

/// A map key as text, for paths and messages.
fn key_text(k: &Value) -> String {
    match k {
        Value::Text(t) => t.clone(),
        Value::Int(i) => i.to_string(),
        other => crate::codec::json::to_json(other),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lens {
    Sugar,
    Tagged,
}

struct Cx<'a> {
    schemas: &'a dyn Schemas,
}

impl<'a> Cx<'a> {
    /// The type at a position: references followed and options stripped; the flag says
    /// whether there was an option (so `null` means none).
    fn strip(&self, ty: &'a Type) -> Result<(&'a Type, bool), PathFail> {
        let mut seen: Vec<&'a Name> = Vec::new();
        let mut optional = false;
        let mut t = ty;
        loop {
            match t {
                Type::Ref(n) => {
                    if seen.contains(&n) {
                        return Err(PathFail::new(format!(
                            "schema {n} refers to itself; AIR types are not recursive"
                        )));
                    }
                    seen.push(n);
                    t = self
                        .schemas
                        .get(n)
                        .ok_or_else(|| PathFail::new(format!("unknown schema {n}")))?;
                }
                Type::Option(inner) => {
                    optional = true;
                    t = inner;
                }
                _ => return Ok((t, optional)),
            }
        }
    }

    /// Whether `null` is a value of `ty` (an option or unit), so a tagged variant may leave
    /// out a payload of that type.
    fn is_nullable(&self, ty: &'a Type) -> Result<bool, PathFail> {
        let (t, optional) = self.strip(ty)?;
        Ok(optional || matches!(t, Type::Unit))
    }

    /// Whether `ty` is `unit` (through references, not under an option): the payload types
    /// of variants written as the bare tag.
    fn is_unit(&self, ty: &'a Type) -> Result<bool, PathFail> {
        let (t, optional) = self.strip(ty)?;
        Ok(matches!(t, Type::Unit) && !optional)
    }

    // -----------------------------------------------------------------------------------------
    // JSON in either lens

    /// Reads JSON `j` of type `ty` into a value sitting at data-model depth `depth`.
    fn read(&self, j: &Json, ty: &'a Type, depth: usize) -> Result<Value, PathFail> {
        let (t, optional) = self.strip(ty)?;
        if let Json::Object(m) = j
            && let [(k, body)] = m.as_slice()
        {
            if optional && k == "null" {
                return empty_object(body, "null")
                    .map(|()| Value::Null)
                    .map_err(|e| e.at(k));
            }
            // AgentOS v1 files also spell an option as the variant `None` / `Some {value}`.
            // Read it so, unless the type inside the option is itself a variant (whose own
            // tagged form this then is).
            if optional
                && k == "variant"
                && !matches!(t, Type::Variant(_))
                && let Some(v) = self.option_as_variant(body, t, depth)
            {
                return v.map_err(|e| e.at(k));
            }
            if k == keyword(t) {
                return self.tagged(body, t, depth).map_err(|e| e.at(k));
            }
        }
        if optional && matches!(j, Json::Null) {
            return Ok(Value::Null);
        }
        self.sugar(j, t, depth)
    }

    /// `{"tag": "None"}` as none, `{"tag": "Some", "value": v}` as `v`; `None` if the body is
    /// not one of these two shapes.
    fn option_as_variant(
        &self,
        body: &Json,
        t: &'a Type,
        depth: usize,
    ) -> Option<Result<Value, PathFail>> {
        let Json::Object(m) = body else { return None };
        let get = |k: &str| m.iter().find(|(n, _)| n == k).map(|(_, v)| v);
        if m.iter().any(|(n, _)| n != "tag" && n != "value") {
            return None;
        }
        match (get("tag"), get("value")) {
            (Some(Json::String(tag)), None | Some(Json::Null)) if tag == "None" => {
                Some(Ok(Value::Null))
            }
            (Some(Json::String(tag)), Some(v)) if tag == "Some" => {
                Some(self.read(v, t, depth).map_err(|e| e.at("value")))
            }
            _ => None,
        }
    }

    /// Reads the body of a tagged literal of type `t`.
    fn tagged(&self, body: &Json, t: &'a Type, depth: usize) -> Result<Value, PathFail> {
        let kw = keyword(t);
        let wrong =
            |what: &str| PathFail::new(format!("`{kw}` takes {what}, found {}", found(body)));
        match (t, body) {
            (Type::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::Bool, _) => Err(wrong("a boolean")),
            (Type::Int | Type::Nat | Type::Time | Type::Duration, Json::Number(lit)) => {
                IntKind::of(t).check(number_int(lit)?, t.form())
            }
            (Type::Int | Type::Nat | Type::Time | Type::Duration, _) => {
                Err(wrong("an integer number"))
            }
            (Type::Unit, _) => empty_object(body, kw).map(|()| Value::Null),
            (Type::Record(fields), Json::Object(members)) => self.record(members, fields, depth),
            (Type::Record(_), _) => Err(wrong("an object of fields")),
            (Type::Variant(tags), Json::Object(members)) => {
                self.variant_tagged(members, tags, depth)
            }
            (Type::Variant(_), _) => Err(wrong("an object {\"tag\": .., \"value\": ..}")),
            (Type::List(elem), Json::Array(items)) => self.list(items, elem, depth),
            (Type::Set(elem), Json::Array(items)) => {
                self.list(items, elem, depth).map(|v| match v {
                    Value::Array(items) => sorted_set(items),
                    other => other,
                })
            }
            (Type::List(_) | Type::Set(_), _) => Err(wrong("an array")),
            (Type::Map { key, value }, Json::Array(entries)) => {
                self.map_tagged(entries, *key, value, depth)
            }
            (Type::Map { .. }, _) => Err(wrong("an array of {\"key\": .., \"value\": ..}")),
            // dec128, bytes, text, hash and uuid are strings in both lenses.
            (_, Json::String(_)) => self.sugar(body, t, depth),
            _ => Err(wrong("a string")),
        }
    }

    /// Reads sugar JSON `j` of type `t` (neither an option nor a reference).
    fn sugar(&self, j: &Json, t: &'a Type, depth: usize) -> Result<Value, PathFail> {
        match (t, j) {
            (Type::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
            (Type::Int | Type::Nat | Type::Time | Type::Duration, Json::Number(lit)) => {
                IntKind::of(t).check(number_int(lit)?, t.form())
            }
            (Type::Time, Json::String(s)) if int_text(s).is_none() => {
                rfc3339(s).map(Value::from).map_err(PathFail::new)
            }
            (Type::Int | Type::Nat | Type::Time | Type::Duration, Json::String(s)) => {
                let n = int_text(s).ok_or_else(|| mismatch(t, j))?;
                IntKind::of(t).check(n, t.form())
            }
            (Type::Dec128, Json::String(s) | Json::Number(s)) => {
                dec128(s).map(Value::Text).map_err(PathFail::new)
            }
            (Type::Bytes, Json::String(s)) => match BASE64.decode(s) {
                Ok(b) if BASE64.encode(&b) == *s => Ok(Value::Bytes(b)),
                _ => Err(PathFail::new(
                    "invalid base64 (standard alphabet, `=` padding, zero trailing bits)",
                )),
            },
            (Type::Text, Json::String(s)) => Ok(Value::Text(s.clone())),
            (Type::Hash, Json::String(s)) => hash(s).map(Value::Text).map_err(PathFail::new),
            (Type::Uuid, Json::String(s)) => uuid(s).map(Value::Text).map_err(PathFail::new),
            (Type::Unit, Json::Null) => Ok(Value::Null),
            (Type::Unit, Json::Object(m)) if m.is_empty() => Ok(Value::Null),
            (Type::Record(fields), Json::Object(members)) => self.record(members, fields, depth),
            (Type::Variant(tags), _) => self.variant_sugar(j, tags, depth),
            (Type::List(elem), Json::Array(items)) => self.list(items, elem, depth),
            (Type::Set(elem), Json::Array(items)) => {
                self.list(items, elem, depth).map(|v| match v {
                    Value::Array(items) => sorted_set(items),
                    other => other,
                })
            }
            (Type::Map { key, value }, Json::Object(members)) => {
                self.map_object(members, *key, value, depth)
            }
            (Type::Map { key, value }, Json::Array(pairs)) => {
                self.map_pairs(pairs, *key, value, depth)
            }
            _ => Err(mismatch(t, j)),
        }
    }

    fn record(
        &self,
        members: &[(String, Json)],
        fields: &'a BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, PathFail> {
        check_depth(depth)?;
        let mut got: BTreeMap<&str, Value> = BTreeMap::new();
        for (k, x) in members {
            let Some(ft) = fields.get(k) else {
                return Err(PathFail::new(format!(
                    "unknown field `{k}` (the record has {})",
                    if fields.is_empty() {
                        "no fields".to_owned()
                    } else {
                        names_of(fields)
                    }
                ))
                .at(k));
            };
            let v = self.read(x, ft, depth + 1).map_err(|e| e.at(k))?;
            if got.insert(k, v).is_some() {
                return Err(PathFail::new(format!("duplicate field `{k}`")).at(k));
            }
        }
        self.finish_record(got, fields)
    }

    /// Fills in omitted option fields and builds the record's map.
    fn finish_record(
        &self,
        mut got: BTreeMap<&str, Value>,
        fields: &'a BTreeMap<String, Type>,
    ) -> Result<Value, PathFail> {
        let mut entries = Vec::with_capacity(fields.len());
        for (name, ft) in fields {
            let v = match got.remove(name.as_str()) {
                Some(v) => v,
                None if self.strip(ft).map_err(|e| e.at(name))?.1 => Value::Null,
                None => return Err(PathFail::new(format!("missing field `{name}`"))),
            };
            entries.push((Value::Text(name.clone()), v));
        }
        map_of(entries)
    }

    fn variant_sugar(
        &self,
        j: &Json,
        tags: &'a BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, PathFail> {
        let unknown = |tag: &str| {
            PathFail::new(format!(
                "unknown variant tag `{tag}` (expected one of {})",
                names_of(tags)
            ))
        };
        match j {
            Json::String(tag) => {
                let pt = tags.get(tag).ok_or_else(|| unknown(tag))?;
                check_depth(depth)?;
                let (p, optional) = self.strip(pt)?;
                if matches!(p, Type::Unit) && !optional {
                    Ok(one_entry(tag, Value::Null))
                } else {
                    Err(PathFail::new(format!(
                        "variant `{tag}` carries a value ({}); write {{\"{tag}\": value}}",
                        if optional { "option" } else { p.form() }
                    )))
                }
            }
            Json::Object(m) => match m.as_slice() {
                [(tag, x)] => {
                    let pt = tags.get(tag).ok_or_else(|| unknown(tag).at(tag))?;
                    check_depth(depth)?;
                    let v = self.read(x, pt, depth + 1).map_err(|e| e.at(tag))?;
                    Ok(one_entry(tag, v))
                }
                _ => Err(PathFail::new(format!(
                    "a variant is an object with exactly one member {{\"Tag\": value}}, found \
                     {} members",
                    m.len()
                ))),
            },
            _ => Err(PathFail::new(format!(
                "expected a variant {{\"Tag\": value}} or \"Tag\", found {}",
                found(j)
            ))),
        }
    }

    fn variant_tagged(
        &self,
        members: &[(String, Json)],
        tags: &'a BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, PathFail> {
        let (mut tag, mut value) = (None, None);
        for (k, x) in members {
            match (k.as_str(), x) {
                ("tag", Json::String(s)) => tag = Some(s),
                ("tag", other) => {
                    return Err(PathFail::new(format!(
                        "`tag` takes a string, found {}",
                        found(other)
                    ))
                    .at(k));
                }
                ("value", x) => value = Some(x),
                (other, _) => {
                    return Err(PathFail::new(format!(
                        "unknown member `{other}` (a tagged variant has `tag` and `value`)"
                    ))
                    .at(other));
                }
            }
        }
        let tag = tag.ok_or_else(|| PathFail::new("a tagged variant needs `tag`"))?;
        let pt = tags.get(tag).ok_or_else(|| {
            PathFail::new(format!(
                "unknown variant tag `{tag}` (expected one of {})",
                names_of(tags)
            ))
            .at("tag")
        })?;
        check_depth(depth)?;
        let payload = match value {
            Some(x) => self.read(x, pt, depth + 1).map_err(|e| e.at("value"))?,
            None if self.is_nullable(pt)? => Value::Null,
            None => {
                return Err(PathFail::new(format!(
                    "variant `{tag}` carries a value: `value` is missing"
                )));
            }
        };
        Ok(one_entry(tag, payload))
    }

    fn list(&self, items: &[Json], elem: &'a Type, depth: usize) -> Result<Value, PathFail> {
        check_depth(depth)?;
        items
            .iter()
            .enumerate()
            .map(|(i, x)| {
                self.read(x, elem, depth + 1)
                    .map_err(|e| e.at(&i.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    }

    fn map_object(
        &self,
        members: &[(String, Json)],
        key: MapKey,
        value: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
        if !key.is_textual() {
            return Err(PathFail::new(format!(
                "a map with {} keys is written as an array of [key, value] pairs",
                key.as_type().form()
            )));
        }
        check_depth(depth)?;
        let kt = key.type_ref();
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(members.len());
        for (k, x) in members {
            let kv = self
                .sugar(&Json::String(k.clone()), kt, depth + 1)
                .map_err(|e| e.at(k))?;
            if !seen.insert(kv.clone()) {
                return Err(PathFail::new(format!("duplicate key {}", shown(k))).at(k));
            }
            let v = self.read(x, value, depth + 1).map_err(|e| e.at(k))?;
            entries.push((kv, v));
        }
        map_of(entries)
    }

    fn map_pairs(
        &self,
        pairs: &[Json],
        key: MapKey,
        value: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
        check_depth(depth)?;
        let kt = key.type_ref();
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let seg = i.to_string();
            let [k, x] = match pair {
                Json::Array(kv) if kv.len() == 2 => [&kv[0], &kv[1]],
                other => {
                    return Err(PathFail::new(format!(
                        "a map entry is an array [key, value], found {}",
                        match other {
                            Json::Array(kv) => format!("an array of {} elements", kv.len()),
                            o => found(o),
                        }
                    ))
                    .at(&seg));
                }
            };
            let kv = self
                .read(k, kt, depth + 1)
                .map_err(|e| e.at("0").at(&seg))?;
            if !seen.insert(kv.clone()) {
                return Err(PathFail::new(format!("duplicate key {}", key_text(&kv)))
                    .at("0")
                    .at(&seg));
            }
            let v = self
                .read(x, value, depth + 1)
                .map_err(|e| e.at("1").at(&seg))?;
            entries.push((kv, v));
        }
        map_of(entries)
    }

    fn map_tagged(
        &self,
        entries_j: &[Json],
        key: MapKey,
        value: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
        check_depth(depth)?;
        let kt = key.type_ref();
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(entries_j.len());
        for (i, entry) in entries_j.iter().enumerate() {
            let seg = i.to_string();
            let Json::Object(members) = entry else {
                return Err(PathFail::new(format!(
                    "a tagged map entry is an object {{\"key\": .., \"value\": ..}}, found {}",
                    found(entry)
                ))
                .at(&seg));
            };
            let (mut k, mut x) = (None, None);
            for (name, m) in members {
                match name.as_str() {
                    "key" => k = Some(m),
                    "value" => x = Some(m),
                    other => {
                        return Err(PathFail::new(format!(
                            "unknown member `{other}` (a tagged map entry has `key` and `value`)"
                        ))
                        .at(other)
                        .at(&seg));
                    }
                }
            }
            let (Some(k), Some(x)) = (k, x) else {
                return Err(
                    PathFail::new("a tagged map entry needs both `key` and `value`").at(&seg),
                );
            };
            let kv = self
                .read(k, kt, depth + 1)
                .map_err(|e| e.at("key").at(&seg))?;
            if !seen.insert(kv.clone()) {
                return Err(PathFail::new(format!("duplicate key {}", key_text(&kv)))
                    .at("key")
                    .at(&seg));
            }
            let v = self
                .read(x, value, depth + 1)
                .map_err(|e| e.at("value").at(&seg))?;
            entries.push((kv, v));
        }
        map_of(entries)
    }

    // -----------------------------------------------------------------------------------------
    // Data-model values

    /// Checks and canonicalizes `v` of type `ty`, sitting at depth `depth`.
    fn canon(&self, v: &Value, ty: &'a Type, depth: usize) -> Result<Value, PathFail> {
        let (t, optional) = self.strip(ty)?;
        if optional && matches!(v, Value::Null) {
            return Ok(Value::Null);
        }
        let wrong = || PathFail::new(format!("expected {}, found {}", expected(t), value_kind(v)));
        match (t, v) {
            (Type::Bool, Value::Bool(_)) | (Type::Text, Value::Text(_)) => Ok(v.clone()),
            (Type::Int | Type::Nat | Type::Time | Type::Duration, Value::Int(i)) => {
                IntKind::of(t).check(i.get(), t.form())
            }
            (Type::Dec128, Value::Text(s)) => dec128(s).map(Value::Text).map_err(PathFail::new),
            (Type::Bytes, Value::Bytes(_)) => Ok(v.clone()),
            (Type::Bytes, Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Value::Int(n) => u8::try_from(n.get()).map_err(|_| {
                        PathFail::new(format!("byte {n} is out of range 0..=255"))
                            .at(&i.to_string())
                    }),
                    _ => Err(wrong()),
                })
                .collect::<Result<Vec<u8>, _>>()
                .map(Value::Bytes),
            (Type::Hash, Value::Text(s)) => hash(s).map(Value::Text).map_err(PathFail::new),
            (Type::Uuid, Value::Text(s)) => uuid(s).map(Value::Text).map_err(PathFail::new),
            (Type::Unit, Value::Null) => Ok(Value::Null),
            (Type::Unit, Value::Map(m)) if m.is_empty() => Ok(Value::Null),
            (Type::Record(fields), Value::Map(m)) => {
                check_depth(depth)?;
                let mut got: BTreeMap<&str, Value> = BTreeMap::new();
                for (k, x) in m.entries() {
                    let Value::Text(k) = k else {
                        return Err(PathFail::new(format!(
                            "record keys are field names, found {}",
                            value_kind(k)
                        )));
                    };
                    let Some(ft) = fields.get(k) else {
                        return Err(PathFail::new(format!(
                            "unknown field `{k}` (the record has {})",
                            if fields.is_empty() {
                                "no fields".to_owned()
                            } else {
                                names_of(fields)
                            }
                        ))
                        .at(k));
                    };
                    got.insert(k, self.canon(x, ft, depth + 1).map_err(|e| e.at(k))?);
                }
                self.finish_record(got, fields)
            }
            (Type::Variant(tags), Value::Text(tag)) => {
                let pt = tags.get(tag).ok_or_else(|| {
                    PathFail::new(format!(
                        "unknown variant tag `{tag}` (expected one of {})",
                        names_of(tags)
                    ))
                })?;
                check_depth(depth)?;
                if self.is_unit(pt)? {
                    Ok(one_entry(tag, Value::Null))
                } else {
                    Err(PathFail::new(format!("variant `{tag}` carries a value")))
                }
            }
            (Type::Variant(tags), Value::Map(m)) => match m.entries() {
                [(Value::Text(tag), x)] => {
                    let pt = tags.get(tag).ok_or_else(|| {
                        PathFail::new(format!(
                            "unknown variant tag `{tag}` (expected one of {})",
                            names_of(tags)
                        ))
                        .at(tag)
                    })?;
                    check_depth(depth)?;
                    let p = self.canon(x, pt, depth + 1).map_err(|e| e.at(tag))?;
                    Ok(one_entry(tag, p))
                }
                _ => Err(PathFail::new(
                    "a variant is a map with exactly one entry {Tag: value}, or the text Tag",
                )),
            },
            (Type::List(elem) | Type::Set(elem), Value::Array(items)) => {
                check_depth(depth)?;
                let out = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        self.canon(x, elem, depth + 1)
                            .map_err(|e| e.at(&i.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if matches!(t, Type::Set(_)) {
                    sorted_set(out)
                } else {
                    Value::Array(out)
                })
            }
            (Type::Map { key, value }, Value::Map(m)) => {
                check_depth(depth)?;
                let kt = key.type_ref();
                let mut seen = HashSet::new();
                let mut entries = Vec::with_capacity(m.len());
                for (k, x) in m.entries() {
                    let seg = key_text(k);
                    let kv = self.canon(k, kt, depth + 1).map_err(|e| e.at(&seg))?;
                    if !seen.insert(kv.clone()) {
                        return Err(PathFail::new(format!(
                            "two keys are the same once canonical: {}",
                            key_text(&kv)
                        ))
                        .at(&seg));
                    }
                    let xv = self.canon(x, value, depth + 1).map_err(|e| e.at(&seg))?;
                    entries.push((kv, xv));
                }
                map_of(entries)
            }
            _ => Err(wrong()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Rendering canonical values

    /// Renders the canonical value `v` of type `ty` in `lens`.
    fn render(&self, v: &Value, ty: &'a Type, lens: Lens) -> Result<Json, PathFail> {
        let (t, optional) = self.strip(ty)?;
        if optional && matches!(v, Value::Null) {
            return Ok(match lens {
                Lens::Sugar => Json::Null,
                Lens::Tagged => tagged_null(),
            });
        }
        match lens {
            Lens::Tagged => self.shell(v, t, Lens::Tagged),
            Lens::Sugar => {
                let s = self.plain(v, t)?;
                // A sugar value that would be read back as a tagged literal is written in the
                // tagged form at this position instead.
                if let Json::Object(m) = &s
                    && let [(k, _)] = m.as_slice()
                    && (k == keyword(t) || (optional && k == "null"))
                {
                    return self.shell(v, t, Lens::Sugar);
                }
                Ok(s)
            }
        }
    }

    /// The sugar form of `v` at this position (type `t`, neither option nor reference).
    fn plain(&self, v: &Value, t: &'a Type) -> Result<Json, PathFail> {
        Ok(match (t, v) {
            (Type::Variant(tags), Value::Map(m)) => match m.entries() {
                [(Value::Text(tag), p)] => {
                    let pt = tags
                        .get(tag)
                        .ok_or_else(|| PathFail::new(format!("unknown variant tag `{tag}`")))?;
                    if self.is_unit(pt)? {
                        Json::String(tag.clone())
                    } else {
                        let pj = self.render(p, pt, Lens::Sugar).map_err(|e| e.at(tag))?;
                        Json::Object(vec![(tag.clone(), pj)])
                    }
                }
                _ => return Err(internal(t, v)),
            },
            (Type::Record(fields), Value::Map(m)) => Json::Object(
                m.entries()
                    .iter()
                    .map(|(k, x)| {
                        let Value::Text(k) = k else {
                            return Err(internal(t, v));
                        };
                        let ft = fields.get(k).ok_or_else(|| internal(t, v))?;
                        Ok((
                            k.clone(),
                            self.render(x, ft, Lens::Sugar).map_err(|e| e.at(k))?,
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Type::List(elem) | Type::Set(elem), Value::Array(items)) => {
                Json::Array(self.items(items, elem, Lens::Sugar)?)
            }
            (Type::Map { key, value }, Value::Map(m)) if key.is_textual() => Json::Object(
                m.entries()
                    .iter()
                    .map(|(k, x)| {
                        let Value::Text(k) = k else {
                            return Err(internal(t, v));
                        };
                        Ok((
                            k.clone(),
                            self.render(x, value, Lens::Sugar).map_err(|e| e.at(k))?,
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Type::Map { key, value }, Value::Map(m)) => {
                let kt = key.type_ref();
                Json::Array(
                    m.entries()
                        .iter()
                        .map(|(k, x)| {
                            let seg = key_text(k);
                            Ok(Json::Array(vec![
                                self.render(k, kt, Lens::Sugar).map_err(|e| e.at(&seg))?,
                                self.render(x, value, Lens::Sugar).map_err(|e| e.at(&seg))?,
                            ]))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            (Type::Unit, Value::Null) => Json::Null,
            _ => scalar(v, t)?,
        })
    }

    /// The tagged form of `v` at this position, with inner positions in `inner` lens.
    fn shell(&self, v: &Value, t: &'a Type, inner: Lens) -> Result<Json, PathFail> {
        let body = match (t, v) {
            (Type::Unit, Value::Null) => Json::Object(Vec::new()),
            (Type::Record(fields), Value::Map(m)) => Json::Object(
                m.entries()
                    .iter()
                    .map(|(k, x)| {
                        let Value::Text(k) = k else {
                            return Err(internal(t, v));
                        };
                        let ft = fields.get(k).ok_or_else(|| internal(t, v))?;
                        Ok((k.clone(), self.render(x, ft, inner).map_err(|e| e.at(k))?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Type::Variant(tags), Value::Map(m)) => match m.entries() {
                [(Value::Text(tag), p)] => {
                    let pt = tags.get(tag).ok_or_else(|| internal(t, v))?;
                    let mut members = vec![("tag".to_owned(), Json::String(tag.clone()))];
                    if !self.is_unit(pt)? {
                        members.push((
                            "value".to_owned(),
                            self.render(p, pt, inner).map_err(|e| e.at(tag))?,
                        ));
                    }
                    Json::Object(members)
                }
                _ => return Err(internal(t, v)),
            },
            (Type::List(elem) | Type::Set(elem), Value::Array(items)) => {
                Json::Array(self.items(items, elem, inner)?)
            }
            (Type::Map { key, value }, Value::Map(m)) => {
                let kt = key.type_ref();
                Json::Array(
                    m.entries()
                        .iter()
                        .map(|(k, x)| {
                            let seg = key_text(k);
                            Ok(Json::Object(vec![
                                (
                                    "key".to_owned(),
                                    self.render(k, kt, inner).map_err(|e| e.at(&seg))?,
                                ),
                                (
                                    "value".to_owned(),
                                    self.render(x, value, inner).map_err(|e| e.at(&seg))?,
                                ),
                            ]))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            _ => scalar(v, t)?,
        };
        Ok(Json::Object(vec![(keyword(t).to_owned(), body)]))
    }

    fn items(&self, items: &[Value], elem: &'a Type, lens: Lens) -> Result<Vec<Json>, PathFail> {
        items
            .iter()
            .enumerate()
            .map(|(i, x)| self.render(x, elem, lens).map_err(|e| e.at(&i.to_string())))
            .collect()
    }
}

/// The JSON of a canonical scalar value (the same in both lenses, inside the tag).
fn scalar(v: &Value, t: &Type) -> Result<Json, PathFail> {
    Ok(match (t, v) {
        (Type::Bool, Value::Bool(b)) => Json::Bool(*b),
        (Type::Int | Type::Nat | Type::Time | Type::Duration, Value::Int(i)) => {
            Json::Number(i.to_string())
        }
        (Type::Bytes, Value::Bytes(b)) => Json::String(BASE64.encode(b)),
        (Type::Dec128 | Type::Text | Type::Hash | Type::Uuid, Value::Text(s)) => {
            Json::String(s.clone())
        }
        _ => return Err(internal(t, v)),
    })
}

/// A canonical value that does not fit its type: cannot happen after canonicalization.
fn internal(t: &Type, v: &Value) -> PathFail {
    PathFail::new(format!(
        "internal error: {} does not fit {}",
        value_kind(v),
        t.form()
    ))
}

fn tagged_null() -> Json {
    Json::Object(vec![("null".to_owned(), Json::Object(Vec::new()))])
}

/// Checks that `body` of tagged literal `kw` is exactly `{}`.
fn empty_object(body: &Json, kw: &str) -> Result<(), PathFail> {
    match body {
        Json::Object(m) if m.is_empty() => Ok(()),
        other => Err(PathFail::new(format!(
            "`{kw}` takes an empty object {{}}, found {}",
            found(other)
        ))),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn agentos_option_as_variant() {
        use crate::codec::json::parse_json;
        let ty = Type::from_json(&parse_json(r#"{"option": {"hash": {}}}"#).unwrap()).unwrap();
        let none = parse_json(r#"{"variant": {"tag": "None"}}"#).unwrap();
        assert_eq!(
            from_json(&none, &ty, &super::super::types::NoSchemas).unwrap(),
            Value::Null
        );
        let h = format!("b3:{}", "1".repeat(64));
        let some = parse_json(&format!(
            r#"{{"variant": {{"tag": "Some", "value": {{"hash": "{h}"}}}}}}"#
        ))
        .unwrap();
        assert_eq!(
            from_json(&some, &ty, &super::super::types::NoSchemas).unwrap(),
            Value::Text(h)
        );
        // An option of a variant keeps reading `variant` as the inner variant's tagged form.
        let ty = Type::from_json(
            &parse_json(r#"{"option": {"variant": {"None": {"unit": {}}, "X": {"nat": {}}}}}"#)
                .unwrap(),
        )
        .unwrap();
        let v = from_json(&none, &ty, &super::super::types::NoSchemas).unwrap();
        assert_ne!(v, Value::Null);
    }

    use super::*;
    use crate::air::types::NoSchemas;
    use crate::codec::json::parse_json;

    fn j(s: &str) -> Json {
        parse_json(s).unwrap()
    }

    fn t(s: &str) -> Type {
        Type::from_json(&j(s)).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    /// Reads `json` as a value of type `ty` (JSON text) without schemas.
    fn read(ty: &str, json: &str) -> Result<Value, ValueError> {
        from_json(&j(json), &t(ty), &NoSchemas)
    }

    fn ok(ty: &str, json: &str) -> Value {
        read(ty, json).unwrap_or_else(|e| panic!("{ty} {json}: {e}"))
    }

    fn err(ty: &str, json: &str, path: &str, needle: &str) {
        let e = read(ty, json).expect_err(json);
        assert_eq!(e.path, path, "{ty} {json}: {e}");
        assert!(e.message.contains(needle), "{ty} {json}: {e}");
    }

    fn text_map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            Map::from_entries(
                entries
                    .iter()
                    .map(|(k, v)| (Value::from(*k), v.clone()))
                    .collect(),
            )
            .unwrap(),
        )
    }

    /// Checks that every JSON text reads to the same value as the first, and that both
    /// renderings read back to it.
    fn same(ty: &str, forms: &[&str]) -> Value {
        let ty = t(ty);
        let first = from_json(&j(forms[0]), &ty, &NoSchemas).unwrap();
        for f in forms {
            let v = from_json(&j(f), &ty, &NoSchemas).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(cbor::encode(&v), cbor::encode(&first), "{f}");
        }
        let sugar = to_sugar(&first, &ty, &NoSchemas).unwrap();
        let tagged = to_tagged(&first, &ty, &NoSchemas).unwrap();
        assert_eq!(from_json(&sugar, &ty, &NoSchemas).unwrap(), first);
        assert_eq!(from_json(&tagged, &ty, &NoSchemas).unwrap(), first);
        first
    }

    const HASH: &str = "b3:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn both_lenses_give_the_same_bytes() {
        let mut schemas: BTreeMap<Name, Type> = BTreeMap::new();
        schemas.insert(
            name("sys/HttpRequestParams@1"),
            t(r#"{"record":{"method":{"text":{}},"url":{"text":{}},
                "headers":{"map":{"key":{"text":{}},"value":{"text":{}}}},
                "body_ref":{"option":{"hash":{}}}}}"#),
        );
        let ty = Type::Ref(name("sys/HttpRequestParams@1"));
        let sugar = j(&format!(
            r#"{{"url":"https://x.example/a","method":"GET","headers":{{"b":"2","a":"1"}},
                "body_ref":"{HASH}"}}"#
        ));
        let tagged = j(&format!(
            r#"{{"record":{{"method":{{"text":"GET"}},"url":{{"text":"https://x.example/a"}},
                "headers":{{"map":[{{"key":{{"text":"a"}},"value":{{"text":"1"}}}},
                                   {{"key":{{"text":"b"}},"value":{{"text":"2"}}}}]}},
                "body_ref":{{"hash":"{HASH}"}}}}}}"#
        ));
        // Mixed: tagged at the top, sugar inside, pairs for the text-keyed map.
        let mixed = j(&format!(
            r#"{{"record":{{"method":"GET","url":{{"text":"https://x.example/a"}},
                "headers":[["b","2"],["a",{{"text":"1"}}]],"body_ref":"{HASH}"}}}}"#
        ));
        let a = from_json(&sugar, &ty, &schemas).unwrap();
        let b = from_json(&tagged, &ty, &schemas).unwrap();
        let c = from_json(&mixed, &ty, &schemas).unwrap();
        assert_eq!(cbor::encode(&a), cbor::encode(&b));
        assert_eq!(cbor::encode(&a), cbor::encode(&c));
        assert_eq!(
            crate::codec::json::to_json(&a),
            format!(
                r#"{{"url":"https://x.example/a","method":"GET","headers":{{"a":"1","b":"2"}},"body_ref":"{HASH}"}}"#
            )
        );
        assert_eq!(to_tagged(&a, &ty, &schemas).unwrap(), {
            // Canonical member order: shorter keys first.
            j(&format!(
                r#"{{"record":{{"url":{{"text":"https://x.example/a"}},"method":{{"text":"GET"}},
                    "headers":{{"map":[{{"key":{{"text":"a"}},"value":{{"text":"1"}}}},
                                       {{"key":{{"text":"b"}},"value":{{"text":"2"}}}}]}},
                    "body_ref":{{"hash":"{HASH}"}}}}}}"#
            ))
        });
        // An omitted option field is none, and the canonical value holds it as null.
        let v = from_json(
            &j(r#"{"method":"GET","url":"u","headers":{}}"#),
            &ty,
            &schemas,
        )
        .unwrap();
        assert_eq!(
            crate::codec::json::to_json(&v),
            r#"{"url":"u","method":"GET","headers":{},"body_ref":null}"#
        );
    }

    #[test]
    fn scalars_in_both_lenses() {
        same(r#"{"bool":{}}"#, &["true", r#"{"bool":true}"#]);
        same(r#"{"int":{}}"#, &["-3", r#""-3""#, r#"{"int":-3}"#]);
        same(
            r#"{"nat":{}}"#,
            &["18446744073709551615", r#"{"nat":18446744073709551615}"#],
        );
        same(r#"{"duration":{}}"#, &["-5", r#"{"duration_ns":-5}"#]);
        same(
            r#"{"time":{}}"#,
            &[
                "1000000000",
                r#""1000000000""#,
                r#""1970-01-01T00:00:01Z""#,
                r#""1970-01-01T01:00:01+01:00""#,
                r#"{"time_ns":1000000000}"#,
            ],
        );
        same(
            r#"{"dec128":{}}"#,
            &[r#""1.50""#, "1.5", r#"{"dec128":"15e-1"}"#],
        );
        same(r#"{"bytes":{}}"#, &[r#""AQI=""#, r#"{"bytes_b64":"AQI="}"#]);
        same(r#"{"text":{}}"#, &[r#""hi""#, r#"{"text":"hi"}"#]);
        same(
            r#"{"hash":{}}"#,
            &[&format!("\"{HASH}\""), &format!(r#"{{"hash":"{HASH}"}}"#)],
        );
        let u = same(
            r#"{"uuid":{}}"#,
            &[
                r#""123E4567-E89B-12D3-A456-426614174000""#,
                r#"{"uuid":"123e4567-e89b-12d3-a456-426614174000"}"#,
            ],
        );
        assert_eq!(u, Value::from("123e4567-e89b-12d3-a456-426614174000"));
        let unit = same(r#"{"unit":{}}"#, &["null", "{}", r#"{"null":{}}"#]);
        assert_eq!(unit, Value::Null);
        assert_eq!(ok(r#"{"bytes":{}}"#, r#""""#), Value::Bytes(vec![]));
    }

    #[test]
    fn out_of_range_and_malformed_scalars_are_rejected() {
        err(
            r#"{"int":{}}"#,
            "9223372036854775808",
            "",
            "out of range for int",
        );
        err(
            r#"{"int":{}}"#,
            "-9223372036854775809",
            "",
            "out of range for int",
        );
        ok(r#"{"int":{}}"#, "-9223372036854775808");
        err(r#"{"nat":{}}"#, "-1", "", "out of range for nat");
        err(
            r#"{"nat":{}}"#,
            "18446744073709551616",
            "",
            "out of range for nat",
        );
        err(
            r#"{"nat":{}}"#,
            "1000000000000000000000000000000000000000000",
            "",
            "out of range",
        );
        err(r#"{"time":{}}"#, "-1", "", "out of range for time");
        err(
            r#"{"duration":{}}"#,
            "9223372036854775808",
            "",
            "out of range",
        );
        err(r#"{"int":{}}"#, "1.0", "", "not an integer");
        err(r#"{"int":{}}"#, "1e3", "", "not an integer");
        err(r#"{"int":{}}"#, r#""01""#, "", "expected an integer");
        err(
            r#"{"int":{}}"#,
            r#"{"int":"5"}"#,
            "/int",
            "takes an integer number",
        );
        err(
            r#"{"int":{}}"#,
            r#"{"nat":5}"#,
            "",
            "found a tagged `nat` literal",
        );
        err(r#"{"int":{}}"#, "true", "", "expected an integer");
        err(r#"{"bytes":{}}"#, r#""AQI""#, "", "invalid base64");
        err(r#"{"bytes":{}}"#, r#""AQN=""#, "", "invalid base64");
        err(r#"{"hash":{}}"#, r#""b3:00""#, "", "not a hash");
        err(
            r#"{"hash":{}}"#,
            &format!("\"{}\"", HASH.to_uppercase()),
            "",
            "not a hash",
        );
        err(
            r#"{"uuid":{}}"#,
            r#""123e4567e89b12d3a456426614174000""#,
            "",
            "not a uuid",
        );
        err(
            r#"{"dec128":{}}"#,
            r#""1e6145""#,
            "",
            "exponent out of range",
        );
        err(
            r#"{"dec128":{}}"#,
            r#"{"dec128":1.5}"#,
            "/dec128",
            "takes a string",
        );
        err(
            r#"{"unit":{}}"#,
            r#"{"null":null}"#,
            "/null",
            "empty object",
        );
        err(r#"{"unit":{}}"#, r#"{"x":1}"#, "", "expected null");
        err(
            r#"{"time":{}}"#,
            r#""1969-12-31T23:59:59Z""#,
            "",
            "before the Unix epoch",
        );
    }

    #[test]
    fn dec128_canonical_text() {
        let table = [
            ("0", "0"),
            ("-0", "0"),
            ("+0.000", "0"),
            ("0e999999999999999999999", "0"),
            ("+1", "1"),
            ("1.50", "1.5"),
            ("-1.50", "-1.5"),
            ("100", "100"),
            ("1e2", "100"),
            ("1.0e-2", "0.01"),
            ("00012.3400", "12.34"),
            ("123.456", "123.456"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1E-7"),
            ("-0.00000012", "-1.2E-7"),
            ("1e33", "1000000000000000000000000000000000"),
            ("1e34", "1E+34"),
            ("-12345e30", "-1.2345E+34"),
            ("1.5E+40", "1.5E+40"),
            ("1.0000000000000000000000000000000000000", "1"),
            (
                "12345678901234567890123456789012340",
                "1.234567890123456789012345678901234E+34",
            ),
            (
                "9999999999999999999999999999999999",
                "9999999999999999999999999999999999",
            ),
            (
                "9999999999999999999999999999999999e6111",
                "9.999999999999999999999999999999999E+6144",
            ),
            ("1e6144", "1E+6144"),
            ("1E-6176", "1E-6176"),
            ("0.1e-6175", "1E-6176"),
            (
                "1234567890123456789012345678901234e-6176",
                "1.234567890123456789012345678901234E-6143",
            ),
        ];
        for (input, want) in table {
            assert_eq!(canonical_dec128(input).unwrap(), want, "{input}");
            // The canonical text is a fixed point.
            assert_eq!(canonical_dec128(want).unwrap(), want, "{want}");
        }
        for bad in [
            "",
            "-",
            "+",
            ".5",
            "1.",
            "1e",
            "1e+",
            "--1",
            "1,5",
            " 1",
            "1 ",
            "0x10",
            "NaN",
            "Infinity",
            "-inf",
            "1e6145",
            "1e-6177",
            "10e6144",
            "12345678901234567890123456789012345",
            "1.2345678901234567890123456789012345",
            "1234567890123456789012345678901234e-6177",
        ] {
            assert!(canonical_dec128(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_times() {
        let table: [(&str, u64); 9] = [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01.5Z", 1_500_000_000),
            ("1970-01-01t01:00:00+01:00", 0),
            ("1969-12-31T23:00:00-01:00", 0),
            ("1970-01-01T00:00:00.000000001z", 1),
            ("1970-01-01T00:00:00.1234567890Z", 123_456_789),
            ("2000-01-01T00:00:00-00:00", 946_684_800_000_000_000),
            ("2024-02-29T12:00:00+02:00", 1_709_200_800_000_000_000),
            ("2554-07-21T23:34:33.709551615Z", u64::MAX),
        ];
        for (s, ns) in table {
            assert_eq!(parse_rfc3339(s), Ok(ns), "{s}");
        }
        for bad in [
            "1969-12-31T23:59:59.999999999Z",
            "2554-07-21T23:34:33.709551616Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2016-12-31T23:59:60Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00.1234567891Z",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+0100",
            "2024-01-01T00:00:00+01:00x",
            "24-01-01T00:00:00Z",
            "+2024-01-01T00:00:00Z",
            "",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z").unwrap_err().message,
            "\"2016-12-31T23:59:60Z\": leap seconds have no time in nanoseconds since the epoch"
        );
    }

    #[test]
    fn sets_dedup_and_sort() {
        let v = same(
            r#"{"set":{"text":{}}}"#,
            &[
                r#"["b","a","a"]"#,
                r#"["a","b"]"#,
                r#"{"set":[{"text":"b"},"a"]}"#,
                r#"{"set":[{"text":"a"},{"text":"b"},{"text":"a"}]}"#,
            ],
        );
        assert_eq!(v, Value::Array(vec!["a".into(), "b".into()]));
        // By encoded bytes: 10 (0x0a) < 100 (0x1864) < -1 (0x20).
        let v = ok(r#"{"set":{"int":{}}}"#, "[-1,100,10,100]");
        assert_eq!(
            v,
            Value::Array(vec![10i64.into(), 100i64.into(), (-1i64).into()])
        );
        // Elements equal once canonical are one element.
        let v = ok(r#"{"set":{"dec128":{}}}"#, r#"["1.0","1","1e0"]"#);
        assert_eq!(v, Value::Array(vec!["1".into()]));
        let c = canonicalize(
            &Value::Array(vec!["b".into(), "a".into(), "b".into()]),
            &t(r#"{"set":{"text":{}}}"#),
            &NoSchemas,
        )
        .unwrap();
        assert_eq!(c, Value::Array(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn maps_with_non_text_keys() {
        let ty = r#"{"map":{"key":{"int":{}},"value":{"text":{}}}}"#;
        let v = same(
            ty,
            &[
                r#"[[2,"b"],[-1,"a"]]"#,
                r#"[[{"int":-1},"a"],[2,{"text":"b"}]]"#,
                r#"{"map":[{"key":{"int":2},"value":{"text":"b"}},{"key":-1,"value":"a"}]}"#,
            ],
        );
        let want = Map::from_entries(vec![
            (2i64.into(), "b".into()),
            ((-1i64).into(), "a".into()),
        ])
        .unwrap();
        assert_eq!(v, Value::Map(want));
        assert_eq!(
            to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
            j(r#"[[2,"b"],[-1,"a"]]"#)
        );
        assert_eq!(
            to_tagged(&v, &t(ty), &NoSchemas).unwrap(),
            j(r#"{"map":[{"key":{"int":2},"value":{"text":"b"}},
                         {"key":{"int":-1},"value":{"text":"a"}}]}"#)
        );
        err(ty, r#"{"1":"a"}"#, "", "array of [key, value] pairs");
        err(ty, r#"[[1,"a"],[1,"b"]]"#, "/1/0", "duplicate key 1");
        err(ty, r#"[[1,"a",2]]"#, "/0", "array of 3 elements");
        err(
            ty,
            r#"[["x","a"]]"#,
            "/0/0",
            "expected an integer (int), found the string \"x\"",
        );
        err(ty, r#"[[true,"a"]]"#, "/0/0", "expected an integer");
        err(ty, r#"{"map":[{"key":1}]}"#, "/map/0", "needs both");
        err(
            ty,
            r#"{"map":[{"key":1,"value":"a","x":0}]}"#,
            "/map/0/x",
            "unknown member",
        );
        // uuid keys may be an object; keys are canonicalized, and collisions are errors.
        let uty = r#"{"map":{"key":{"uuid":{}},"value":{"nat":{}}}}"#;
        let v = ok(uty, r#"{"AAAAAAAA-0000-0000-0000-000000000000":1}"#);
        assert_eq!(
            v,
            text_map(&[("aaaaaaaa-0000-0000-0000-000000000000", 1u64.into())])
        );
        err(
            uty,
            r#"{"AAAAAAAA-0000-0000-0000-000000000000":1,"aaaaaaaa-0000-0000-0000-000000000000":2}"#,
            "/aaaaaaaa-0000-0000-0000-000000000000",
            "duplicate key",
        );
        err(uty, r#"{"nope":1}"#, "/nope", "not a uuid");
        let mut m = Map::new();
        m.insert(2u64.into(), Value::Null);
        let c = canonicalize(
            &Value::Map(m),
            &t(r#"{"map":{"key":{"nat":{}},"value":{"option":{"int":{}}}}}"#),
            &NoSchemas,
        )
        .unwrap();
        assert_eq!(crate::codec::json::to_json(&c), r#"{"$map":[[2,null]]}"#);
    }

    #[test]
    fn variants_and_unit_payloads() {
        let ty =
            r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}},"Maybe":{"option":{"nat":{}}}}}"#;
        let v = same(
            ty,
            &[
                r#""Ok""#,
                r#"{"Ok":null}"#,
                r#"{"Ok":{}}"#,
                r#"{"Ok":{"null":{}}}"#,
                r#"{"variant":{"tag":"Ok"}}"#,
                r#"{"variant":{"tag":"Ok","value":null}}"#,
            ],
        );
        assert_eq!(v, text_map(&[("Ok", Value::Null)]));
        assert_eq!(to_sugar(&v, &t(ty), &NoSchemas).unwrap(), j(r#""Ok""#));
        assert_eq!(
            to_tagged(&v, &t(ty), &NoSchemas).unwrap(),
            j(r#"{"variant":{"tag":"Ok"}}"#)
        );
        let e = same(
            ty,
            &[
                r#"{"Err":"boom"}"#,
                r#"{"variant":{"tag":"Err","value":"boom"}}"#,
            ],
        );
        assert_eq!(e, text_map(&[("Err", "boom".into())]));
        let m = same(ty, &[r#"{"Maybe":null}"#, r#"{"variant":{"tag":"Maybe"}}"#]);
        assert_eq!(m, text_map(&[("Maybe", Value::Null)]));
        assert_eq!(
            to_sugar(&m, &t(ty), &NoSchemas).unwrap(),
            j(r#"{"Maybe":null}"#)
        );
        err(ty, r#""Err""#, "", "carries a value");
        err(ty, r#""Nope""#, "", "unknown variant tag `Nope`");
        err(ty, r#"{"Nope":1}"#, "/Nope", "unknown variant tag");
        err(ty, r#"{"Ok":null,"Err":"x"}"#, "", "exactly one member");
        err(ty, r#"{"Err":5}"#, "/Err", "expected a string");
        err(
            ty,
            r#"{"variant":{"tag":"Err"}}"#,
            "/variant",
            "`value` is missing",
        );
        err(
            ty,
            r#"{"variant":{"tag":"Err","value":1}}"#,
            "/variant/value",
            "expected a string",
        );
        err(
            ty,
            r#"{"variant":{"tag":"Err","x":1}}"#,
            "/variant/x",
            "unknown member",
        );
        err(
            ty,
            r#"{"variant":{"tag":"X"}}"#,
            "/variant/tag",
            "unknown variant tag",
        );
        err(ty, r#"{"variant":{"value":1}}"#, "/variant", "needs `tag`");
        err(ty, "5", "", "expected a variant");
        // Data-model values: the bare tag of a unit variant is canonicalized.
        let c = canonicalize(&Value::from("Ok"), &t(ty), &NoSchemas).unwrap();
        assert_eq!(c, text_map(&[("Ok", Value::Null)]));
        assert!(canonicalize(&Value::from("Err"), &t(ty), &NoSchemas).is_err());
    }

    #[test]
    fn sugar_that_looks_tagged_is_written_tagged() {
        // A record whose one field is named `record`.
        let ty = r#"{"record":{"record":{"int":{}}}}"#;
        let v = ok(ty, r#"{"record":{"record":5}}"#);
        assert_eq!(v, text_map(&[("record", 5i64.into())]));
        assert_eq!(
            to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
            j(r#"{"record":{"record":5}}"#)
        );
        err(
            ty,
            r#"{"record":5}"#,
            "/record",
            "takes an object of fields",
        );
        // A record with a field named like another tag keyword is plain sugar.
        let v = ok(r#"{"record":{"nat":{"nat":{}}}}"#, r#"{"nat":5}"#);
        assert_eq!(v, text_map(&[("nat", 5u64.into())]));
        // Under an option, a one-member object keyed `null` is none.
        let ty = r#"{"option":{"record":{"null":{"int":{}}}}}"#;
        assert_eq!(ok(ty, r#"{"null":{}}"#), Value::Null);
        let v = ok(ty, r#"{"record":{"null":1}}"#);
        assert_eq!(v, text_map(&[("null", 1i64.into())]));
        assert_eq!(
            to_sugar(&v, &t(ty), &NoSchemas).unwrap(),
            j(r#"{"record":{"null":1}}"#)
        );
        // A text-keyed map whose one key is `map`.
        let ty = r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#;
        let v = ok(ty, r#"[["map",1]]"#);
        let s = to_sugar(&v, &t(ty), &NoSchemas).unwrap();
        assert_eq!(s, j(r#"{"map":[{"key":"map","value":1}]}"#));
        assert_eq!(from_json(&s, &t(ty), &NoSchemas).unwrap(), v);
        // A variant tag named `variant`.
        let ty = r#"{"variant":{"variant":{"int":{}},"unit_one":{"unit":{}}}}"#;
        let v = ok(ty, r#"{"variant":{"tag":"variant","value":3}}"#);
        assert_eq!(v, text_map(&[("variant", 3i64.into())]));
        let s = to_sugar(&v, &t(ty), &NoSchemas).unwrap();
        assert_eq!(s, j(r#"{"variant":{"tag":"variant","value":3}}"#));
        err(ty, r#"{"variant":3}"#, "/variant", "takes an object");
    }

    #[test]
    fn records_are_strict_except_for_omitted_options() {
        let ty = r#"{"record":{"a":{"int":{}},"b":{"option":{"text":{}}},"c":{"unit":{}}}}"#;
        let v = ok(ty, r#"{"a":1,"c":null}"#);
        assert_eq!(
            v,
            text_map(&[("a", 1i64.into()), ("b", Value::Null), ("c", Value::Null)])
        );
        err(ty, r#"{"a":1}"#, "", "missing field `c`");
        err(ty, r#"{"c":null}"#, "", "missing field `a`");
        err(
            ty,
            r#"{"a":1,"c":null,"d":2}"#,
            "/d",
            "unknown field `d` (the record has `a`, `b`, `c`)",
        );
        err(ty, r#"{"a":"x","c":null}"#, "/a", "expected an integer");
        err(ty, r#"[1]"#, "", "expected an object (record)");
        let c = canonicalize(&text_map(&[("a", 1i64.into())]), &t(ty), &NoSchemas).unwrap_err();
        assert_eq!(c.message, "missing field `c`");
    }

    #[test]
    fn error_paths_follow_the_input() {
        let ty = r#"{"record":{"a":{"list":{"record":{"b":{"set":{"nat":{}}}}}}}}"#;
        err(
            ty,
            r#"{"a":[{"b":[1]},{"b":[2,-3]}]}"#,
            "/a/1/b/1",
            "out of range for nat",
        );
        err(
            ty,
            r#"{"record":{"a":{"list":[{"b":[1]},{"record":{"b":{"set":[2,{"nat":-3}]}}}]}}}"#,
            "/record/a/list/1/record/b/set/1/nat",
            "out of range for nat",
        );
        let bad = text_map(&[(
            "a",
            Value::Array(vec![text_map(&[(
                "b",
                Value::Array(vec![1u64.into(), "x".into()]),
            )])]),
        )]);
        let e = canonicalize(&bad, &t(ty), &NoSchemas).unwrap_err();
        assert_eq!(e.path, "/a/0/b/1");
        assert_eq!(
            e.to_string(),
            "invalid value at `/a/0/b/1`: expected a non-negative integer (nat), found text"
        );
        // Pointer segments are escaped.
        err(
            r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#,
            r#"{"a/b~c":[]}"#,
            "/a~1b~0c",
            "expected an integer",
        );
    }

    #[test]
    fn canonicalize_accepts_serde_forms() {
        let ty = t(
            r#"{"record":{"data":{"bytes":{}},"id":{"uuid":{}},"amount":{"dec128":{}},
            "nothing":{"unit":{}},"note":{"option":{"text":{}}}}}"#,
        );
        let from_serde = text_map(&[
            ("data", Value::Array(vec![1u64.into(), 255u64.into()])),
            ("id", "123E4567-E89B-12D3-A456-426614174000".into()),
            ("amount", "0012.50".into()),
            ("nothing", Value::Map(Map::new())),
        ]);
        let c = canonicalize(&from_serde, &ty, &NoSchemas).unwrap();
        assert_eq!(
            c,
            text_map(&[
                ("data", Value::Bytes(vec![1, 255])),
                ("id", "123e4567-e89b-12d3-a456-426614174000".into()),
                ("amount", "12.5".into()),
                ("nothing", Value::Null),
                ("note", Value::Null),
            ])
        );
        assert_eq!(canonicalize(&c, &ty, &NoSchemas).unwrap(), c);
        let bad = text_map(&[
            ("data", Value::Array(vec![256u64.into()])),
            ("id", "123e4567-e89b-12d3-a456-426614174000".into()),
            ("amount", "1".into()),
            ("nothing", Value::Null),
        ]);
        assert_eq!(
            canonicalize(&bad, &ty, &NoSchemas).unwrap_err().path,
            "/data/0"
        );
        let link = Value::Link(ObjectId::from_bytes([0; 32]));
        assert!(canonicalize(&link, &Type::Hash, &NoSchemas).is_err());
        assert!(canonicalize(&Value::from(-1i64), &Type::Time, &NoSchemas).is_err());
    }

    #[test]
    fn recursive_and_unknown_schemas_are_errors_not_loops() {
        let mut s: BTreeMap<Name, Type> = BTreeMap::new();
        s.insert(name("a/Opt@1"), t(r#"{"option":{"ref":"a/Opt@1"}}"#));
        s.insert(name("a/Alias@1"), t(r#"{"ref":"a/Alias@1"}"#));
        s.insert(name("a/Deep@1"), t(r#"{"list":{"ref":"a/Deep@1"}}"#));
        let opt = Type::Ref(name("a/Opt@1"));
        let e = from_json(&j("5"), &opt, &s).unwrap_err();
        assert!(e.message.contains("refers to itself"), "{e}");
        assert!(from_json(&j("5"), &Type::Ref(name("a/Alias@1")), &s).is_err());
        assert!(canonicalize(&Value::from(5u64), &opt, &s).is_err());
        let e = from_json(&j("5"), &Type::Ref(name("a/Gone@1")), &s).unwrap_err();
        assert_eq!(e.message, "unknown schema a/Gone@1");
        // A self-referential list accepts nesting only up to the depth limit.
        let deep = Type::Ref(name("a/Deep@1"));
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let v = from_json(&j(&nest(MAX_DEPTH)), &deep, &s).unwrap();
        assert_eq!(cbor::decode(&cbor::encode(&v)).unwrap(), v);
        let e = from_json(&j(&nest(MAX_DEPTH + 1)), &deep, &s).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
        // Deep data-model values are refused too, without overflowing the stack.
        let mut v = Value::Array(vec![]);
        for _ in 0..1000 {
            v = Value::Array(vec![v]);
        }
        assert!(canonicalize(&v, &deep, &s).is_err());
        let deep_json = j(&nest(500));
        assert!(from_json(&deep_json, &deep, &s).is_err());
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::Union;

    type Schemas = BTreeMap<Name, Type>;

    /// Labels, including every tag keyword so that sugar collides with tagged literals.
    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "record", "variant", "map", "null", "nat", "text", "list", "tag", "value", "key",
                "Ok", "x",
            ])
            .prop_map(str::to_owned),
            "[a-z_][a-z0-9_-]{0,5}",
        ]
    }

    fn fields(min: usize) -> impl Fn(BoxedStrategy<Type>) -> BoxedStrategy<BTreeMap<String, Type>> {
        move |inner| {
            prop::collection::vec((label(), inner), min..4)
                .prop_map(|v| v.into_iter().collect())
                .boxed()
        }
    }

    fn arb_type() -> impl Strategy<Value = Type> {
        let leaf = prop_oneof![
            Just(Type::Bool),
            Just(Type::Int),
            Just(Type::Nat),
            Just(Type::Dec128),
            Just(Type::Bytes),
            Just(Type::Text),
            Just(Type::Time),
            Just(Type::Duration),
            Just(Type::Hash),
            Just(Type::Uuid),
            Just(Type::Unit),
        ];
        leaf.prop_recursive(5, 32, 4, |inner| {
            let inner = inner.boxed();
            let key = prop::sample::select(vec![
                MapKey::Int,
                MapKey::Nat,
                MapKey::Text,
                MapKey::Uuid,
                MapKey::Hash,
            ]);
            prop_oneof![
                fields(0)(inner.clone()).prop_map(Type::Record),
                fields(1)(inner.clone()).prop_map(Type::Variant),
                inner.clone().prop_map(|t| Type::List(Box::new(t))),
                inner.clone().prop_map(|t| Type::Set(Box::new(t))),
                inner.clone().prop_map(|t| Type::Option(Box::new(t))),
                (key, inner).prop_map(|(key, v)| Type::Map {
                    key,
                    value: Box::new(v)
                }),
            ]
        })
    }

    /// Moves composite subtrees into named schemas where `coins` say so, leaving references.
    fn extract(t: Type, coins: &mut impl Iterator<Item = bool>, s: &mut Schemas) -> Type {
        let t = match t {
            Type::Record(f) => Type::Record(
                f.into_iter()
                    .map(|(k, x)| (k, extract(x, coins, s)))
                    .collect(),
            ),
            Type::Variant(f) => Type::Variant(
                f.into_iter()
                    .map(|(k, x)| (k, extract(x, coins, s)))
                    .collect(),
            ),
            Type::List(x) => Type::List(Box::new(extract(*x, coins, s))),
            Type::Set(x) => Type::Set(Box::new(extract(*x, coins, s))),
            Type::Option(x) => Type::Option(Box::new(extract(*x, coins, s))),
            Type::Map { key, value } => Type::Map {
                key,
                value: Box::new(extract(*value, coins, s)),
            },
            other => other,
        };
        if coins.next().unwrap_or(false) {
            let n = Name::new(&format!("t/S{}@1", s.len())).expect("valid name");
            s.insert(n.clone(), t);
            Type::Ref(n)
        } else {
            t
        }
    }

    fn typed() -> impl Strategy<Value = (Type, Schemas)> {
        (arb_type(), prop::collection::vec(any::<bool>(), 0..40)).prop_map(|(t, coins)| {
            let mut s = Schemas::new();
            let mut coins = coins.into_iter();
            let t = extract(t, &mut coins, &mut s);
            (t, s)
        })
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// A canonical value of type `t`.
    fn arb_value(t: &Type, s: &Schemas) -> BoxedStrategy<Value> {
        match t {
            Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
            Type::Int | Type::Duration => any::<i64>().prop_map(Value::from).boxed(),
            Type::Nat | Type::Time => any::<u64>().prop_map(Value::from).boxed(),
            Type::Dec128 => prop_oneof![
                (any::<bool>(), any::<u64>(), -60i32..60)
                    .prop_map(|(neg, m, e)| { format!("{}{m}E{e}", if neg { "-" } else { "" }) }),
                prop::sample::select(vec![
                    "9999999999999999999999999999999999e6111",
                    "1E-6176",
                    "-0",
                    "0.5",
                ])
                .prop_map(str::to_owned),
            ]
            .prop_map(|s| Value::Text(dec128(&s).expect("fits")))
            .boxed(),
            Type::Bytes => prop::collection::vec(any::<u8>(), 0..12)
                .prop_map(Value::Bytes)
                .boxed(),
            Type::Text => prop_oneof![label(), ".{0,6}"].prop_map(Value::Text).boxed(),
            Type::Hash => any::<[u8; 32]>()
                .prop_map(|b| Value::Text(format!("b3:{}", hex(&b))))
                .boxed(),
            Type::Uuid => any::<[u8; 16]>()
                .prop_map(|b| {
                    let h = hex(&b);
                    Value::Text(format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    ))
                })
                .boxed(),
            Type::Unit => Just(Value::Null).boxed(),
            Type::Record(fields) => fields
                .iter()
                .map(|(k, x)| {
                    let k = k.clone();
                    arb_value(x, s).prop_map(move |v| (Value::Text(k.clone()), v))
                })
                .collect::<Vec<_>>()
                .prop_map(|entries| Value::Map(Map::from_entries(entries).expect("distinct")))
                .boxed(),
            Type::Variant(tags) => Union::new(tags.iter().map(|(k, x)| {
                let k = k.clone();
                arb_value(x, s).prop_map(move |v| one_entry(&k, v))
            }))
            .boxed(),
            Type::List(x) => prop::collection::vec(arb_value(x, s), 0..4)
                .prop_map(Value::Array)
                .boxed(),
            Type::Set(x) => prop::collection::vec(arb_value(x, s), 0..4)
                .prop_map(sorted_set)
                .boxed(),
            Type::Map { key, value } => {
                prop::collection::vec((arb_value(key.type_ref(), s), arb_value(value, s)), 0..4)
                    .prop_map(|entries| {
                        let mut m = Map::new();
                        for (k, v) in entries {
                            if m.get(&k).is_none() {
                                m.insert(k, v);
                            }
                        }
                        Value::Map(m)
                    })
                    .boxed()
            }
            Type::Option(x) => prop_oneof![Just(Value::Null), arb_value(x, s)].boxed(),
            Type::Ref(n) => arb_value(&s[n], s),
        }
    }

    fn typed_value() -> impl Strategy<Value = (Type, Schemas, Value)> {
        typed().prop_flat_map(|(t, s)| {
            let v = arb_value(&t, &s);
            (Just(t), Just(s), v)
        })
    }

    fn arb_json() -> impl Strategy<Value = Json> {
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            prop::sample::select(vec!["0", "-1", "7", "1.5", "1e3", "18446744073709551616"])
                .prop_map(|n| Json::Number(n.to_owned())),
            prop_oneof![
                label(),
                Just("AQI=".to_owned()),
                Just("1970-01-01T00:00:00Z".to_owned()),
                Just("123e4567-e89b-12d3-a456-426614174000".to_owned()),
            ]
            .prop_map(Json::String),
        ];
        leaf.prop_recursive(5, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((label(), inner), 0..3).prop_map(|m| {
                    let mut seen = HashSet::new();
                    Json::Object(
                        m.into_iter()
                            .filter(|(k, _)| seen.insert(k.clone()))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn lenses_round_trip((t, s, v) in typed_value()) {
            prop_assert_eq!(canonicalize(&v, &t, &s), Ok(v.clone()));
            let sugar = to_sugar(&v, &t, &s).expect("renders");
            prop_assert_eq!(from_json(&sugar, &t, &s), Ok(v.clone()), "sugar {:?}", sugar);
            let tagged = to_tagged(&v, &t, &s).expect("renders");
            prop_assert_eq!(from_json(&tagged, &t, &s), Ok(v.clone()), "tagged {:?}", tagged);
            let bytes = cbor::encode(&v);
            prop_assert_eq!(cbor::decode(&bytes), Ok(v));
        }

        #[test]
        fn types_round_trip((t, s) in typed()) {
            for ty in std::iter::once(&t).chain(s.values()) {
                prop_assert_eq!(Type::from_json(&ty.to_json()), Ok(ty.clone()));
                let bytes = cbor::encode(&ty.to_value());
                let back = cbor::decode(&bytes).expect("decodes");
                prop_assert_eq!(Type::from_value(&back), Ok(ty.clone()));
            }
            prop_assert!(crate::air::types::check_recursion(&s).is_empty());
        }

        #[test]
        fn arbitrary_json_never_panics((t, s) in typed(), j in arb_json()) {
            if let Ok(v) = from_json(&j, &t, &s) {
                // Whatever is accepted is canonical and renders back to itself.
                prop_assert_eq!(canonicalize(&v, &t, &s), Ok(v.clone()));
                let sugar = to_sugar(&v, &t, &s).expect("renders");
                prop_assert_eq!(from_json(&sugar, &t, &s), Ok(v));
            }
        }
    }
}
