//! The type language of AIR v1: the AST of `defschema` bodies, its strict JSON form, its
//! canonical encoding, and the checks on a set of named schemas (dangling and recursive refs).
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

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;

use super::name::{Name, NameError};
use crate::codec::cbor::{MAX_DEPTH, Map, Value};
use crate::codec::json::{Json, pointer_escape};

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
pub struct TypeError {
    /// JSON pointer (RFC 6901) of the offending part, relative to the type being read (`""` is
    /// the type itself).
    pub pointer: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "invalid type: {}", self.message)
        } else {
            write!(f, "invalid type at `{}`: {}", self.pointer, self.message)
        }
    }
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
    if depth >= MAX_DEPTH {
        Err(PathFail::new(format!(
            "type nested too deeply: its encoding would be more than {MAX_DEPTH} maps deep"
        )))
    } else {
        Ok(())
    }
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
            Self::Record(fields) | Self::Variant(fields) => {
                let mut m = Map::new();
                for (k, t) in fields {
                    m.insert(Value::Text(k.clone()), t.to_value());
                }
                Value::Map(m)
            }
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
                    value_kind(other)
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

pub(crate) fn value_kind(v: &Value) -> &'static str {
    match v {
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

// ---------------------------------------------------------------------------------------------
// Named schemas

/// A set of named schemas, looked up by name.
pub trait Schemas {
    /// The type of the schema named `name`, if there is one.
    fn get(&self, name: &Name) -> Option<&Type>;
}

impl Schemas for BTreeMap<Name, Type> {
    fn get(&self, name: &Name) -> Option<&Type> {
        BTreeMap::get(self, name)
    }
}

impl<S: BuildHasher> Schemas for HashMap<Name, Type, S> {
    fn get(&self, name: &Name) -> Option<&Type> {
        HashMap::get(self, name)
    }
}

/// No schemas at all: for types without references.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSchemas;

impl Schemas for NoSchemas {
    fn get(&self, _: &Name) -> Option<&Type> {
        None
    }
}

/// Why a reference does not lead to a type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No schema has this name.
    #[error("unknown schema {0}")]
    Unknown(Name),
    /// The references form a loop without reaching a type: `a → b → a`.
    #[error("schema {} is an alias of itself ({})", .0[0], join_names(.0))]
    Cycle(Vec<Name>),
}

fn join_names(names: &[Name]) -> String {
    names
        .iter()
        .map(Name::as_str)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Follows references from `ty` until a type that is not a reference.
///
/// # Errors
/// [`ResolveError`] if a name is unknown or the references loop.
pub fn resolve<'a>(ty: &'a Type, schemas: &'a dyn Schemas) -> Result<&'a Type, ResolveError> {
    let mut seen: Vec<&Name> = Vec::new();
    let mut t = ty;
    while let Type::Ref(n) = t {
        if let Some(i) = seen.iter().position(|s| *s == n) {
            let mut cycle: Vec<Name> = seen[i..].iter().map(|n| (*n).clone()).collect();
            cycle.push(n.clone());
            return Err(ResolveError::Cycle(cycle));
        }
        seen.push(n);
        t = schemas
            .get(n)
            .ok_or_else(|| ResolveError::Unknown(n.clone()))?;
    }
    Ok(t)
}

/// A problem of a set of schemas as a whole, found by [`check_recursion`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaProblem {
    /// The schema refers to itself, directly or through others. AIR v1 has no recursive
    /// types.
    #[error("schema {schema} is recursive: {}", join_names(cycle))]
    Recursive {
        /// The schema.
        schema: Name,
        /// A shortest cycle of references from the schema back to itself; starts and ends
        /// with `schema`.
        cycle: Vec<Name>,
    },
    /// The schema refers to a name that is not in the set.
    #[error("schema {schema} refers to unknown schema {target} at `{pointer}`")]
    Dangling {
        /// The schema holding the reference.
        schema: Name,
        /// The JSON pointer of the reference's name within the schema's type.
        pointer: String,
        /// The unknown name.
        target: Name,
    },
}

/// Checks a set of schemas as a whole: reports every dangling reference (in order of schema
/// name, then of position), then every schema that refers to itself directly or
/// transitively (in order of name).
#[must_use]
pub fn check_recursion(schemas: &BTreeMap<Name, Type>) -> Vec<SchemaProblem> {
    let names: Vec<&Name> = schemas.keys().collect();
    let index: HashMap<&Name, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut problems = Vec::new();
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(names.len());
    for (name, ty) in schemas {
        let mut out = BTreeSet::new();
        for (pointer, target) in ty.refs() {
            match index.get(target) {
                Some(&j) => {
                    out.insert(j);
                }
                None => problems.push(SchemaProblem::Dangling {
                    schema: name.clone(),
                    pointer,
                    target: target.clone(),
                }),
            }
        }
        edges.push(out.into_iter().collect());
    }
    let comp = strongly_connected(&edges);
    for (i, &c) in comp.iter().enumerate() {
        let cyclic = edges[i].contains(&i) || comp.iter().filter(|&&d| d == c).count() > 1;
        if !cyclic {
            continue;
        }
        // Breadth-first search inside the component for the shortest way back to `i`.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        queue.push_back(i);
        let mut last = None;
        'search: while let Some(u) = queue.pop_front() {
            for &w in &edges[u] {
                if comp[w] != c {
                    continue;
                }
                if w == i {
                    last = Some(u);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(u);
                    queue.push_back(w);
                }
            }
        }
        // Walk back from the node that closes the cycle to `i`, then turn the walk around.
        let mut back = Vec::new();
        let mut u = last.unwrap_or(i);
        while u != i {
            back.push(u);
            u = parent.get(&u).copied().unwrap_or(i);
        }
        back.reverse();
        let mut cycle = vec![names[i].clone()];
        cycle.extend(back.iter().map(|&k| names[k].clone()));
        cycle.push(names[i].clone());
        problems.push(SchemaProblem::Recursive {
            schema: names[i].clone(),
            cycle,
        });
    }
    problems
}

/// The strongly connected component of every node (Tarjan's algorithm, without recursion).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut ncomp = 0;
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        // Each frame: node and the position of the next edge to follow.
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = frames.last_mut() {
            let (v, e) = *top;
            if let Some(&w) = edges[v].get(e) {
                top.1 += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(u, _)) = frames.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = ncomp;
                    if w == v {
                        break;
                    }
                }
                ncomp += 1;
            }
        }
    }
    comp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor;
    use crate::codec::json::parse_json;

    fn ty(s: &str) -> Type {
        Type::from_json(&parse_json(s).unwrap()).unwrap()
    }

    fn bad(s: &str, pointer: &str, needle: &str) {
        let e = Type::from_json(&parse_json(s).unwrap()).unwrap_err();
        assert_eq!(e.pointer, pointer, "{s}: {e}");
        assert!(e.message.contains(needle), "{s}: {e}");
    }

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    #[test]
    fn every_form_parses_and_round_trips() {
        for p in PRIMITIVES {
            let s = format!("{{\"{p}\":{{}}}}");
            let t = ty(&s);
            assert_eq!(t.form(), p);
            assert_eq!(t.to_string(), s);
        }
        let cases = [
            r#"{"record":{}}"#,
            r#"{"record":{"x":{"int":{}},"y":{"int":{}}}}"#,
            r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}}}}"#,
            r#"{"list":{"text":{}}}"#,
            r#"{"set":{"nat":{}}}"#,
            r#"{"option":{"hash":{}}}"#,
            r#"{"map":{"key":{"uuid":{}},"value":{"bytes":{}}}}"#,
            r#"{"ref":"demo/Pc@1"}"#,
            r#"{"list":{"map":{"key":{"int":{}},"value":{"option":{"ref":"a/B@2"}}}}}"#,
        ];
        for s in cases {
            let t = ty(s);
            assert_eq!(Type::from_json(&t.to_json()).unwrap(), t, "{s}");
            let v = t.to_value();
            let bytes = cbor::encode(&v);
            assert_eq!(Type::from_value(&cbor::decode(&bytes).unwrap()).unwrap(), t);
        }
        // Members come out in canonical order: shorter keys first.
        assert_eq!(
            ty(r#"{"variant":{"Err":{"text":{}},"Ok":{"unit":{}}}}"#).to_string(),
            r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}}}}"#
        );
        assert_eq!(
            ty(r#"{"map":{"value":{"int":{}},"key":{"text":{}}}}"#).to_string(),
            r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#
        );
    }

    #[test]
    fn encoding_matches_the_upstream_point_vector() {
        // The `type` member of upstream's `defschema_point` vector: a1 record a2 x {int:{}} y ...
        let t = ty(r#"{"record":{"x":{"int":{}},"y":{"int":{}}}}"#);
        let hex: String = cbor::encode(&t.to_value())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "a1667265636f7264a26178a163696e74a06179a163696e74a0");
    }

    #[test]
    fn strict_parsing_names_the_place() {
        bad(r#"{"int":{"x":1}}"#, "/int", "empty object");
        bad(r#"{"int":null}"#, "/int", "empty object");
        bad(r#"{"int":{},"nat":{}}"#, "", "exactly one member");
        bad(r#"{"text":{},"$comment":"x"}"#, "", "exactly one member");
        bad(r#"{}"#, "", "exactly one member");
        bad(r#""int""#, "", "found string");
        bad(r#"{"float":{}}"#, "/float", "unknown type form");
        bad(
            r#"{"record":{"x":{"int":{}},"y":{"foo":{}}}}"#,
            "/record/y/foo",
            "unknown",
        );
        bad(
            r#"{"record":{"a.b":{"int":{}}}}"#,
            "/record/a.b",
            "may contain only",
        );
        bad(r#"{"record":{"":{"int":{}}}}"#, "/record/", "must start");
        bad(
            r#"{"record":{"$x":{"int":{}}}}"#,
            "/record/$x",
            "must start",
        );
        bad(r#"{"record":[]}"#, "/record", "takes an object");
        bad(r#"{"variant":{}}"#, "/variant", "at least one tag");
        bad(
            r#"{"variant":{"a/b":{"unit":{}}}}"#,
            "/variant/a~1b",
            "may contain",
        );
        bad(
            r#"{"map":{"key":{"bool":{}},"value":{"int":{}}}}"#,
            "/map/key",
            "map keys",
        );
        bad(
            r#"{"map":{"key":{"ref":"a/B@1"},"value":{"int":{}}}}"#,
            "/map/key",
            "map keys",
        );
        bad(
            r#"{"map":{"key":{"int":{}}}}"#,
            "/map",
            "`value` is missing",
        );
        bad(
            r#"{"map":{"key":{"int":{}},"value":{"int":{}},"x":1}}"#,
            "/map/x",
            "unknown member",
        );
        bad(r#"{"ref":"nope"}"#, "/ref", "invalid name");
        bad(r#"{"ref":{}}"#, "/ref", "schema name");
        bad(
            r#"{"list":{"list":{"int":[]}}}"#,
            "/list/list/int",
            "empty object",
        );
    }

    #[test]
    fn depth_is_bounded_by_the_encoding() {
        // n nested lists around an int: maps at depths 0..=n, the int's `{}` at n+1.
        let nest = |n: usize| {
            let mut s = String::from(r#"{"int":{}}"#);
            for _ in 0..n {
                s = format!(r#"{{"list":{s}}}"#);
            }
            s
        };
        let ok = ty(&nest(MAX_DEPTH - 2));
        let bytes = cbor::encode(&ok.to_value());
        assert_eq!(
            Type::from_value(&cbor::decode(&bytes).unwrap()).unwrap(),
            ok
        );
        let e = Type::from_json(&parse_json(&nest(MAX_DEPTH - 1)).unwrap()).unwrap_err();
        assert!(e.message.contains("too deeply"), "{e}");
    }

    #[test]
    fn from_value_rejects_foreign_shapes() {
        let v = Value::Map(Map::from_entries(vec![("int".into(), Value::Null)]).unwrap());
        assert!(Type::from_value(&v).unwrap_err().message.contains("null"));
        let v = Value::Map(Map::from_entries(vec![(1u64.into(), Value::Null)]).unwrap());
        assert!(Type::from_value(&v).is_err());
    }

    #[test]
    fn refs_resolve_and_problems_are_reported() {
        let mut s: BTreeMap<Name, Type> = BTreeMap::new();
        s.insert(name("a/A@1"), ty(r#"{"record":{"b":{"ref":"a/B@1"}}}"#));
        s.insert(name("a/B@1"), ty(r#"{"list":{"ref":"a/A@1"}}"#));
        s.insert(name("a/C@1"), ty(r#"{"option":{"ref":"a/C@1"}}"#));
        s.insert(name("a/D@1"), ty(r#"{"ref":"a/E@1"}"#));
        s.insert(name("a/E@1"), ty(r#"{"int":{}}"#));
        s.insert(
            name("a/F@1"),
            ty(r#"{"map":{"key":{"text":{}},"value":{"ref":"x/Gone@1"}}}"#),
        );
        s.insert(name("a/G@1"), ty(r#"{"ref":"a/A@1"}"#));
        s.insert(name("a/H@1"), ty(r#"{"ref":"a/H@1"}"#));

        assert_eq!(resolve(&Type::Ref(name("a/D@1")), &s), Ok(&Type::Int));
        assert_eq!(resolve(&Type::Nat, &s), Ok(&Type::Nat));
        assert_eq!(
            resolve(&Type::Ref(name("a/Z@1")), &s),
            Err(ResolveError::Unknown(name("a/Z@1")))
        );
        assert_eq!(
            resolve(&Type::Ref(name("a/H@1")), &s),
            Err(ResolveError::Cycle(vec![name("a/H@1"), name("a/H@1")]))
        );

        let problems = check_recursion(&s);
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "schema a/F@1 refers to unknown schema x/Gone@1 at `/map/value/ref`",
                "schema a/A@1 is recursive: a/A@1 → a/B@1 → a/A@1",
                "schema a/B@1 is recursive: a/B@1 → a/A@1 → a/B@1",
                "schema a/C@1 is recursive: a/C@1 → a/C@1",
                "schema a/H@1 is recursive: a/H@1 → a/H@1",
            ]
        );
    }

    #[test]
    fn refs_lists_pointers() {
        let t = ty(r#"{"record":{"zz":{"ref":"a/B@1"},"a":{"variant":{"X":{"ref":"a/C@1"}}}}}"#);
        let refs: Vec<(String, String)> = t
            .refs()
            .into_iter()
            .map(|(p, n)| (p, n.to_string()))
            .collect();
        assert_eq!(
            refs,
            [
                ("/record/a/variant/X/ref".to_owned(), "a/C@1".to_owned()),
                ("/record/zz/ref".to_owned(), "a/B@1".to_owned()),
            ]
        );
    }

    #[test]
    fn labels() {
        assert!(check_label("field", "a_b-c9").is_ok());
        assert!(check_label("field", "_").is_ok());
        assert!(check_label("field", &"x".repeat(64)).is_ok());
        assert!(check_label("field", &"x".repeat(65)).is_err());
        assert!(check_label("field", "9a").is_err());
        assert!(check_label("field", "a.b").is_err());
        assert!(check_label("field", "").is_err());
    }
}
