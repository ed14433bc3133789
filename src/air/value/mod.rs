//! Typed values of AIR v1: reading both JSON lenses through a type, checking and
//! canonicalizing data-model values, and rendering values back to either lens.
//!
//! This module holds the public functions, their error and the walk they share (the type at
//! a position, messages); each job has its file: `read` (JSON in either lens), `canonical`
//! ([`canonicalize`]), `render` ([`to_sugar`], [`to_tagged`]) and `scalar` (dec128, uuid,
//! hash and RFC 3339 text, integer ranges).
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

use std::collections::BTreeMap;

use super::name::Name;
use super::types::{PathFail, Schemas, Type, canonical_order};
use crate::codec::cbor::{self, MAX_DEPTH, Map, Value};
use crate::codec::json::Json;
use crate::codec::shape::located;

mod canonical;
mod read;
mod render;
mod scalar;
#[cfg(test)]
mod tests;

use scalar::{IntKind, dec128, hash, int_text, number_int, rfc3339, shown, uuid};
pub use scalar::{canonical_dec128, canonical_uuid, parse_rfc3339};

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
#[error("{}", located("invalid value", .path, .message))]
pub struct ValueError {
    /// Where: for JSON input the JSON pointer (RFC 6901) of the offending part, relative to the
    /// value read; for data-model input a path in the same syntax (field names, indices,
    /// variant tags, map keys as text). `""` is the value itself.
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
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
    cbor::check_depth(depth, || {
        PathFail::new(format!(
            "value nested too deeply (more than {MAX_DEPTH} levels of arrays and maps)"
        ))
    })
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

/// Field `k` is not one of the record's `fields`.
fn unknown_field(k: &str, fields: &BTreeMap<String, Type>) -> PathFail {
    let has = if fields.is_empty() {
        "no fields".to_owned()
    } else {
        names_of(fields)
    };
    PathFail::new(format!("unknown field `{k}` (the record has {has})")).at(k)
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
}
