//! The type language of AIR v1: the AST of `defschema` bodies, its strict JSON form, its
//! canonical encoding; named schemas and their checks ([`Schemas`], [`resolve`],
//! [`check_recursion`]); and the relations between types ([`relate`]).
//!
//! # JSON form
//!
//! Every type is a JSON object with exactly one member, whose key names the form:
//!
//! | form | JSON |
//! |---|---|
//! | primitives | `{"bool": {}}`, `{"int": {}}`, `{"nat": {}}`, `{"dec128": {}}`, `{"bytes": {}}`, `{"text": {}}`, `{"time": {}}`, `{"duration": {}}`, `{"hash": {}}`, `{"uuid": {}}`, `{"unit": {}}` |
//! | record | `{"record": {"field": T, ...}}` (no fields is allowed: the empty record) |
//! | variant | `{"variant": {"Tag": T, ...}}` (at least one tag) |
//! | list, set, option | `{"list": T}`, `{"set": T}`, `{"option": T}` |
//! | map | `{"map": {"key": K, "value": T}}`, `K` one of `{"int": {}}`, `{"nat": {}}`, `{"text": {}}`, `{"uuid": {}}`, `{"hash": {}}` |
//! | reference | `{"ref": "namespace/Name@N"}` |
//!
//! Parsing is strict: the body of a primitive must be exactly `{}`, unknown forms and extra
//! members (including `$comment`) are errors, and a `map` body has exactly the members `key`
//! and `value`.
//!
//! **Labels.** Record field names and variant tags follow one rule, checked by
//! [`check_label`]: `[A-Za-z_][A-Za-z0-9_-]{0,63}`. That is the small-identifier rule of AIR
//! without the dot, because plan expressions address fields with dotted paths
//! (`@plan.input.order.id`); it also keeps `$` keys, which the generic JSON mapping of the
//! data model reserves, out of values. Labels are unique within a record or variant.
//!
//! **Depth.** A type's canonical encoding ([`Type::to_value`]) must be decodable, so it may
//! nest at most [`MAX_DEPTH`] maps deep (every form takes one or two levels); deeper types
//! are rejected when parsed.
//!
//! # Canonical encoding
//!
//! [`Type::to_value`] gives the same shape as the JSON form: a one-entry map from the form's
//! key to its body, `{}` becoming the empty map, record and variant bodies maps with text
//! keys, a reference its name as text. Maps are in canonical order, so a type has exactly
//! one encoding and [`Type::from_value`] accepts exactly the encodings `to_value` produces.

use std::collections::BTreeMap;
use std::fmt;

use super::name::{Name, NameError};
use crate::codec::cbor::{self, MAX_DEPTH, Map, Value};
use crate::codec::json::{Json, pointer_escape};
use crate::codec::shape::located;

pub mod relate;
mod schemas;

pub use schemas::{NoSchemas, ResolveError, SchemaProblem, Schemas, check_recursion, resolve};

/// The key type of a map: the types whose values may key a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MapKey {
    /// `int`: i64 keys.
    Int,
    /// `nat`: u64 keys.
    Nat,
    /// `text` keys.
    Text,
    /// `uuid` keys (canonical text).
    Uuid,
    /// `hash` keys (canonical text).
    Hash,
}

impl MapKey {
    /// The key type as a [`Type`].
    #[must_use]
    pub fn as_type(self) -> Type {
        match self {
            Self::Int => Type::Int,
            Self::Nat => Type::Nat,
            Self::Text => Type::Text,
            Self::Uuid => Type::Uuid,
            Self::Hash => Type::Hash,
        }
    }

    /// The key type as a [`Type`] that lives forever.
    #[must_use]
    pub fn type_ref(self) -> &'static Type {
        static INT: Type = Type::Int;
        static NAT: Type = Type::Nat;
        static TEXT: Type = Type::Text;
        static UUID: Type = Type::Uuid;
        static HASH: Type = Type::Hash;
        match self {
            Self::Int => &INT,
            Self::Nat => &NAT,
            Self::Text => &TEXT,
            Self::Uuid => &UUID,
            Self::Hash => &HASH,
        }
    }

    /// The key type that `ty` is, if it may key a map.
    #[must_use]
    pub fn from_type(ty: &Type) -> Option<Self> {
        match ty {
            Type::Int => Some(Self::Int),
            Type::Nat => Some(Self::Nat),
            Type::Text => Some(Self::Text),
            Type::Uuid => Some(Self::Uuid),
            Type::Hash => Some(Self::Hash),
            _ => None,
        }
    }

    /// Whether keys of this type are text in the value encoding (text, uuid, hash), so that a
    /// map of them can be written as a JSON object.
    #[must_use]
    pub fn is_textual(self) -> bool {
        matches!(self, Self::Text | Self::Uuid | Self::Hash)
    }
}

/// A type of AIR v1.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `bool`.
    Bool,
    /// `int`: a signed 64-bit integer.
    Int,
    /// `nat`: an unsigned 64-bit integer.
    Nat,
    /// `dec128`: a decimal that fits IEEE 754 decimal128, kept as canonical text.
    Dec128,
    /// `bytes`.
    Bytes,
    /// `text`: UTF-8.
    Text,
    /// `time`: nanoseconds since the Unix epoch, as a `nat`.
    Time,
    /// `duration`: nanoseconds, as an `int`.
    Duration,
    /// `hash`: an id `b3:<64 lowercase hex>`.
    Hash,
    /// `uuid`: canonical lowercase hyphenated text.
    Uuid,
    /// `unit`: the one value `null`.
    Unit,
    /// `record`: named fields, all present in every value (optional fields have option types).
    Record(BTreeMap<String, Type>),
    /// `variant`: a closed sum of tagged alternatives.
    Variant(BTreeMap<String, Type>),
    /// `list`: an ordered sequence.
    List(Box<Type>),
    /// `set`: a sequence without duplicates, sorted by encoded bytes.
    Set(Box<Type>),
    /// `map`: keys of a [`MapKey`] type to values.
    Map {
        /// The key type.
        key: MapKey,
        /// The value type.
        value: Box<Type>,
    },
    /// `option`: `null` (none) or a value.
    Option(Box<Type>),
    /// `ref`: the type of a named schema.
    Ref(Name),
}

/// The names of the primitive forms, in the order of the table in the module documentation.
const PRIMITIVES: [&str; 11] = [
    "bool", "int", "nat", "dec128", "bytes", "text", "time", "duration", "hash", "uuid", "unit",
];

/// Why JSON (or an encoded value) is not a valid type, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", located("invalid type", .pointer, .message))]
pub struct TypeError {
    /// JSON pointer (RFC 6901) of the offending part, relative to the type being read (`""` is
    /// the type itself).
    pub pointer: String,
    /// What is wrong, in plain words.
    pub message: String,
}

/// An error on its way out of a recursive reader: the message and the escaped pointer
/// segments through which it was reached, innermost first.
#[derive(Debug)]
pub(crate) struct PathFail {
    rev: Vec<String>,
    message: String,
}

impl PathFail {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            rev: Vec::new(),
            message: message.into(),
        }
    }

    /// Adds the (unescaped) segment through which the error was reached.
    pub(crate) fn at(mut self, segment: &str) -> Self {
        self.rev.push(pointer_escape(segment));
        self
    }

    /// The pointer and message.
    pub(crate) fn finish(self) -> (String, String) {
        let mut p = String::new();
        for s in self.rev.iter().rev() {
            p.push('/');
            p.push_str(s);
        }
        (p, self.message)
    }
}

impl From<PathFail> for TypeError {
    fn from(e: PathFail) -> Self {
        let (pointer, message) = e.finish();
        Self { pointer, message }
    }
}

/// Checks a record field name or variant tag: `[A-Za-z_][A-Za-z0-9_-]{0,63}`.
///
/// # Errors
/// [`NameError`] naming the rule broken; `what` says which sort of label it is.
pub fn check_label(what: &'static str, s: &str) -> Result<(), NameError> {
    let err = |why: &'static str| NameError {
        what,
        text: s.chars().take(100).collect(),
        why,
    };
    let mut b = s.bytes();
    if !b
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
    {
        return Err(err("must start with a letter or '_'"));
    }
    if s.len() > 64 {
        return Err(err("at most 64 characters"));
    }
    if !b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
        return Err(err("may contain only letters, digits, '_' and '-'"));
    }
    Ok(())
}

fn check_depth(depth: usize) -> Result<(), PathFail> {
    cbor::check_depth(depth, || {
        PathFail::new(format!(
            "type nested too deeply: its encoding would be more than {MAX_DEPTH} maps deep"
        ))
    })
}

impl Type {
    /// The name of the type's form, for messages: `int`, `record`, `ref`, ...
    #[must_use]
    pub fn form(&self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Nat => "nat",
            Self::Dec128 => "dec128",
            Self::Bytes => "bytes",
            Self::Text => "text",
            Self::Time => "time",
            Self::Duration => "duration",
            Self::Hash => "hash",
            Self::Uuid => "uuid",
            Self::Unit => "unit",
            Self::Record(_) => "record",
            Self::Variant(_) => "variant",
            Self::List(_) => "list",
            Self::Set(_) => "set",
            Self::Map { .. } => "map",
            Self::Option(_) => "option",
            Self::Ref(_) => "ref",
        }
    }

    fn primitive(name: &str) -> Option<Self> {
        Some(match name {
            "bool" => Self::Bool,
            "int" => Self::Int,
            "nat" => Self::Nat,
            "dec128" => Self::Dec128,
            "bytes" => Self::Bytes,
            "text" => Self::Text,
            "time" => Self::Time,
            "duration" => Self::Duration,
            "hash" => Self::Hash,
            "uuid" => Self::Uuid,
            "unit" => Self::Unit,
            _ => return None,
        })
    }

    /// Reads the JSON form of a type (see the [module documentation](self)).
    ///
    /// # Errors
    /// [`TypeError`] with the pointer, relative to `j`, of the first problem.
    pub fn from_json(j: &Json) -> Result<Self, TypeError> {
        parse(j, 0).map_err(TypeError::from)
    }

    /// The JSON form of the type, members in canonical order.
    #[must_use]
    pub fn to_json(&self) -> Json {
        // The encoding holds only maps with text keys and text, so the conversion is total.
        fn conv(v: &Value) -> Json {
            match v {
                Value::Map(m) => Json::Object(
                    m.entries()
                        .iter()
                        .map(|(k, x)| {
                            let k = match k {
                                Value::Text(t) => t.clone(),
                                _ => String::new(),
                            };
                            (k, conv(x))
                        })
                        .collect(),
                ),
                Value::Text(t) => Json::String(t.clone()),
                _ => Json::Null,
            }
        }
        conv(&self.to_value())
    }

    /// The canonical encoding of the type (see the [module documentation](self)).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let body = match self {
            Self::Bool
            | Self::Int
            | Self::Nat
            | Self::Dec128
            | Self::Bytes
            | Self::Text
            | Self::Time
            | Self::Duration
            | Self::Hash
            | Self::Uuid
            | Self::Unit => Value::Map(Map::new()),
            Self::Record(fields) | Self::Variant(fields) => Value::Map(Map::from_text_entries(
                fields
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_value()))
                    .collect(),
            )),
            Self::List(t) | Self::Set(t) | Self::Option(t) => t.to_value(),
            Self::Map { key, value } => {
                let mut m = Map::new();
                m.insert("key".into(), key.as_type().to_value());
                m.insert("value".into(), value.to_value());
                Value::Map(m)
            }
            Self::Ref(name) => Value::Text(name.as_str().to_owned()),
        };
        let mut m = Map::new();
        m.insert(self.form().into(), body);
        Value::Map(m)
    }

    /// Reads the canonical encoding of a type: exactly the values [`Type::to_value`]
    /// produces.
    ///
    /// # Errors
    /// [`TypeError`] with the pointer of the first problem.
    pub fn from_value(v: &Value) -> Result<Self, TypeError> {
        fn conv(v: &Value, depth: usize) -> Result<Json, PathFail> {
            match v {
                Value::Map(m) => {
                    check_depth(depth)?;
                    let mut members = Vec::with_capacity(m.len());
                    for (k, x) in m.entries() {
                        let Value::Text(k) = k else {
                            return Err(PathFail::new("a type encoding has only text keys"));
                        };
                        members.push((k.clone(), conv(x, depth + 1).map_err(|e| e.at(k))?));
                    }
                    Ok(Json::Object(members))
                }
                Value::Text(t) => Ok(Json::String(t.clone())),
                other => Err(PathFail::new(format!(
                    "a type encoding holds only maps and text, found {}",
                    other.type_name()
                ))),
            }
        }
        let j = conv(v, 0).map_err(TypeError::from)?;
        Self::from_json(&j)
    }

    /// Every reference in the type, in canonical order, with the JSON pointer of its name
    /// (relative to the type, e.g. `/record/owner/ref`).
    #[must_use]
    pub fn refs(&self) -> Vec<(String, &Name)> {
        fn walk<'a>(t: &'a Type, ptr: &mut String, out: &mut Vec<(String, &'a Name)>) {
            let len = ptr.len();
            match t {
                Type::Ref(n) => {
                    ptr.push_str("/ref");
                    out.push((ptr.clone(), n));
                }
                Type::Record(fields) | Type::Variant(fields) => {
                    ptr.push('/');
                    ptr.push_str(t.form());
                    let inner = ptr.len();
                    for (k, x) in canonical_order(fields) {
                        ptr.push('/');
                        ptr.push_str(&pointer_escape(k));
                        walk(x, ptr, out);
                        ptr.truncate(inner);
                    }
                }
                Type::List(x) | Type::Set(x) | Type::Option(x) => {
                    ptr.push('/');
                    ptr.push_str(t.form());
                    walk(x, ptr, out);
                }
                Type::Map { value, .. } => {
                    ptr.push_str("/map/value");
                    walk(value, ptr, out);
                }
                _ => {}
            }
            ptr.truncate(len);
        }
        let mut out = Vec::new();
        walk(self, &mut String::new(), &mut out);
        out
    }
}

impl fmt::Display for Type {
    /// The compact JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::codec::json::to_json(&self.to_value()))
    }
}

/// The entries of a record or variant in the canonical order of their keys (shorter names
/// first, then bytewise), which is the order of the encoding.
pub(crate) fn canonical_order(fields: &BTreeMap<String, Type>) -> Vec<(&String, &Type)> {
    let mut v: Vec<_> = fields.iter().collect();
    v.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(b.0)));
    v
}

/// Reads the type whose outermost map sits at encoding depth `depth`.
fn parse(j: &Json, depth: usize) -> Result<Type, PathFail> {
    check_depth(depth)?;
    let (key, body) = match j {
        Json::Object(members) => match members.as_slice() {
            [(k, b)] => (k.as_str(), b),
            [] => {
                return Err(PathFail::new(
                    "a type is an object with exactly one member, like {\"int\": {}}; found {}",
                ));
            }
            more => {
                let keys: Vec<String> =
                    more.iter().take(5).map(|(k, _)| format!("`{k}`")).collect();
                return Err(PathFail::new(format!(
                    "a type is an object with exactly one member; found {} members ({}{})",
                    more.len(),
                    keys.join(", "),
                    if more.len() > 5 { ", ..." } else { "" }
                )));
            }
        },
        other => {
            return Err(PathFail::new(format!(
                "a type is an object like {{\"int\": {{}}}}, found {}",
                other.type_name()
            )));
        }
    };
    parse_form(key, body, depth).map_err(|e| e.at(key))
}

/// Reads the body `body` of form `key`; the form's map sits at `depth`.
fn parse_form(key: &str, body: &Json, depth: usize) -> Result<Type, PathFail> {
    if let Some(t) = Type::primitive(key) {
        return match body {
            Json::Object(m) if m.is_empty() => {
                check_depth(depth + 1)?;
                Ok(t)
            }
            Json::Object(m) => Err(PathFail::new(format!(
                "`{key}` takes an empty object {{}}, found an object with member `{}`",
                m[0].0
            ))),
            other => Err(PathFail::new(format!(
                "`{key}` takes an empty object {{}}, found {}",
                other.type_name()
            ))),
        };
    }
    match key {
        "record" | "variant" => {
            let what = if key == "record" {
                "record field name"
            } else {
                "variant tag"
            };
            let Json::Object(members) = body else {
                return Err(PathFail::new(format!(
                    "`{key}` takes an object of {what}s to types, found {}",
                    body.type_name()
                )));
            };
            check_depth(depth + 1)?;
            if key == "variant" && members.is_empty() {
                return Err(PathFail::new("a variant needs at least one tag"));
            }
            let mut fields = BTreeMap::new();
            for (label, t) in members {
                check_label(what, label).map_err(|e| PathFail::new(e.to_string()).at(label))?;
                let t = parse(t, depth + 2).map_err(|e| e.at(label))?;
                if fields.insert(label.clone(), t).is_some() {
                    return Err(PathFail::new(format!("duplicate {what} `{label}`")).at(label));
                }
            }
            Ok(if key == "record" {
                Type::Record(fields)
            } else {
                Type::Variant(fields)
            })
        }
        "list" => Ok(Type::List(Box::new(parse(body, depth + 1)?))),
        "set" => Ok(Type::Set(Box::new(parse(body, depth + 1)?))),
        "option" => Ok(Type::Option(Box::new(parse(body, depth + 1)?))),
        "map" => {
            let Json::Object(members) = body else {
                return Err(PathFail::new(format!(
                    "`map` takes an object {{\"key\": K, \"value\": T}}, found {}",
                    body.type_name()
                )));
            };
            check_depth(depth + 1)?;
            let (mut k, mut v) = (None, None);
            for (name, x) in members {
                let slot = match name.as_str() {
                    "key" => &mut k,
                    "value" => &mut v,
                    other => {
                        return Err(PathFail::new(format!(
                            "unknown member `{other}` (a map type has exactly `key` and `value`)"
                        ))
                        .at(other));
                    }
                };
                if slot.is_some() {
                    return Err(PathFail::new(format!("duplicate member `{name}`")).at(name));
                }
                *slot = Some(x);
            }
            let (Some(k), Some(v)) = (k, v) else {
                let missing = if k.is_none() { "key" } else { "value" };
                return Err(PathFail::new(format!(
                    "a map type needs `key` and `value`; `{missing}` is missing"
                )));
            };
            let kt = parse(k, depth + 2).map_err(|e| e.at("key"))?;
            let key = MapKey::from_type(&kt).ok_or_else(|| {
                PathFail::new(format!(
                    "map keys must be int, nat, text, uuid or hash, not {}",
                    kt.form()
                ))
                .at("key")
            })?;
            let value = parse(v, depth + 2).map_err(|e| e.at("value"))?;
            Ok(Type::Map {
                key,
                value: Box::new(value),
            })
        }
        "ref" => match body {
            Json::String(s) => Name::new(s)
                .map(Type::Ref)
                .map_err(|e| PathFail::new(e.to_string())),
            other => Err(PathFail::new(format!(
                "`ref` takes a schema name \"namespace/Name@N\", found {}",
                other.type_name()
            ))),
        },
        other => Err(PathFail::new(format!(
            "unknown type form `{other}` (expected one of {}, record, variant, list, set, map, \
             option, ref)",
            PRIMITIVES.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests;
