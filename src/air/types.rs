//! The type AST of `defschema` bodies and other schema-typed slots (minimal version).
//!
//! This is a placeholder sufficient for parsing and rendering nodes: it reads and writes the
//! JSON type AST (`{"int": {}}`, `{"record": {..}}`, `{"ref": "ns/Name@1"}`, …) and checks
//! only its shape. The full module (values, both JSON lenses, canonical encoding) replaces it.

use std::fmt;

use super::name::Name;
use crate::codec::json::{Json, pointer_escape};

/// A type expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `{"bool": {}}`.
    Bool,
    /// `{"int": {}}`: a signed 64-bit integer.
    Int,
    /// `{"nat": {}}`: an unsigned 64-bit integer.
    Nat,
    /// `{"dec128": {}}`: a decimal, authored as a string.
    Dec128,
    /// `{"bytes": {}}`: a byte string, authored as base64.
    Bytes,
    /// `{"text": {}}`: UTF-8 text.
    Text,
    /// `{"time": {}}`: nanoseconds since the epoch.
    Time,
    /// `{"duration": {}}`: nanoseconds.
    Duration,
    /// `{"hash": {}}`: a content hash.
    Hash,
    /// `{"uuid": {}}`: an RFC 4122 UUID.
    Uuid,
    /// `{"unit": {}}`: the one-value type.
    Unit,
    /// `{"record": {field: T, ..}}`: fields in declared order.
    Record(Vec<(String, Type)>),
    /// `{"variant": {Tag: T, ..}}`: alternatives in declared order.
    Variant(Vec<(String, Type)>),
    /// `{"list": T}`.
    List(Box<Type>),
    /// `{"set": T}`.
    Set(Box<Type>),
    /// `{"map": {"key": K, "value": V}}`; K is one of int, nat, text, uuid, hash.
    Map {
        /// The key type.
        key: Box<Type>,
        /// The value type.
        value: Box<Type>,
    },
    /// `{"option": T}`.
    Option(Box<Type>),
    /// `{"ref": "namespace/Name@N"}`: the type defined by a `defschema`.
    Ref(Name),
}

/// Why a JSON value is not a type AST.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TypeError {
    /// JSON pointer of the offending value, relative to the type AST's root (`""`).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at `{}`: {}", self.pointer, self.message)
        }
    }
}

const PRIMITIVES: [(&str, Type); 11] = [
    ("bool", Type::Bool),
    ("int", Type::Int),
    ("nat", Type::Nat),
    ("dec128", Type::Dec128),
    ("bytes", Type::Bytes),
    ("text", Type::Text),
    ("time", Type::Time),
    ("duration", Type::Duration),
    ("hash", Type::Hash),
    ("uuid", Type::Uuid),
    ("unit", Type::Unit),
];

fn terr(pointer: &str, message: impl Into<String>) -> TypeError {
    TypeError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

impl Type {
    /// Reads a type AST.
    ///
    /// # Errors
    /// [`TypeError`] with the pointer of the first problem.
    pub fn from_json(j: &Json) -> Result<Type, TypeError> {
        read(j, "")
    }

    /// Renders the type AST.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let one = |k: &str, v: Json| Json::Object(vec![(k.to_owned(), v)]);
        let fields = |fs: &[(String, Type)]| {
            Json::Object(fs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect())
        };
        match self {
            Type::Record(fs) => one("record", fields(fs)),
            Type::Variant(fs) => one("variant", fields(fs)),
            Type::List(t) => one("list", t.to_json()),
            Type::Set(t) => one("set", t.to_json()),
            Type::Option(t) => one("option", t.to_json()),
            Type::Map { key, value } => one(
                "map",
                Json::Object(vec![
                    ("key".to_owned(), key.to_json()),
                    ("value".to_owned(), value.to_json()),
                ]),
            ),
            Type::Ref(n) => one("ref", Json::String(n.to_string())),
            prim => {
                let name = PRIMITIVES
                    .iter()
                    .find(|(_, t)| t == prim)
                    .map_or("unit", |(n, _)| n);
                one(name, Json::Object(Vec::new()))
            }
        }
    }
}

fn read(j: &Json, ptr: &str) -> Result<Type, TypeError> {
    let Json::Object(members) = j else {
        return Err(terr(
            ptr,
            format!(
                "a type is an object such as {{\"text\": {{}}}}, found {}",
                j.type_name()
            ),
        ));
    };
    let [(key, body)] = members.as_slice() else {
        return Err(terr(
            ptr,
            format!(
                "a type is an object with exactly one member, found {}",
                members.len()
            ),
        ));
    };
    let here = format!("{ptr}/{}", pointer_escape(key));
    if let Some((_, prim)) = PRIMITIVES.iter().find(|(n, _)| n == key) {
        return match body {
            Json::Object(m) if m.is_empty() => Ok(prim.clone()),
            _ => Err(terr(&here, format!("`{key}` takes an empty object {{}}"))),
        };
    }
    match key.as_str() {
        "record" | "variant" => {
            let Json::Object(fs) = body else {
                return Err(terr(
                    &here,
                    format!("`{key}` takes an object of name: type"),
                ));
            };
            let mut out = Vec::with_capacity(fs.len());
            for (name, t) in fs {
                if name.is_empty() {
                    return Err(terr(&here, "empty field or tag name"));
                }
                out.push((
                    name.clone(),
                    read(t, &format!("{here}/{}", pointer_escape(name)))?,
                ));
            }
            Ok(if key == "record" {
                Type::Record(out)
            } else {
                Type::Variant(out)
            })
        }
        "list" => Ok(Type::List(Box::new(read(body, &here)?))),
        "set" => Ok(Type::Set(Box::new(read(body, &here)?))),
        "option" => Ok(Type::Option(Box::new(read(body, &here)?))),
        "map" => {
            let Json::Object(kv) = body else {
                return Err(terr(&here, "`map` takes {\"key\": K, \"value\": V}"));
            };
            let (mut k, mut v) = (None, None);
            for (name, t) in kv {
                let p = format!("{here}/{}", pointer_escape(name));
                match name.as_str() {
                    "key" => k = Some(read(t, &p)?),
                    "value" => v = Some(read(t, &p)?),
                    _ => return Err(terr(&p, format!("unknown member `{name}` of `map`"))),
                }
            }
            let (Some(key), Some(value)) = (k, v) else {
                return Err(terr(&here, "`map` needs both `key` and `value`"));
            };
            if !matches!(
                key,
                Type::Int | Type::Nat | Type::Text | Type::Uuid | Type::Hash
            ) {
                return Err(terr(
                    &format!("{here}/key"),
                    "a map key type is one of int, nat, text, uuid, hash",
                ));
            }
            Ok(Type::Map {
                key: Box::new(key),
                value: Box::new(value),
            })
        }
        "ref" => match body {
            Json::String(s) => Name::new(s)
                .map(Type::Ref)
                .map_err(|e| terr(&here, e.to_string())),
            _ => Err(terr(&here, "`ref` takes a schema name string")),
        },
        _ => Err(terr(&here, format!("unknown type `{key}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::parse_json;

    fn ty(s: &str) -> Result<Type, TypeError> {
        Type::from_json(&parse_json(s).expect("test JSON parses"))
    }

    #[test]
    fn round_trips() {
        for s in [
            // The examples of the reference brief (`air-v1.md` §2).
            r#"{"record": {"x": {"int": {}}}}"#,
            r#"{"list": {"text": {}}}"#,
            r#"{"ref": "demo/Pc@1"}"#,
            r#"{"int":{}}"#,
            r#"{"record":{"x":{"int":{}},"y":{"option":{"text":{}}}}}"#,
            r#"{"variant":{"A":{"unit":{}},"B":{"ref":"demo/X@1"}}}"#,
            r#"{"map":{"key":{"text":{}},"value":{"list":{"set":{"hash":{}}}}}}"#,
        ] {
            let t = ty(s).expect(s);
            assert_eq!(Type::from_json(&t.to_json()), Ok(t));
        }
    }

    #[test]
    fn rejects() {
        for (s, ptr) in [
            (r#"{"int":1}"#, "/int"),
            (r#"{"record":{"x":{"float":{}}}}"#, "/record/x/float"),
            (
                r#"{"map":{"key":{"bool":{}},"value":{"int":{}}}}"#,
                "/map/key",
            ),
            (r#"{"ref":"nope"}"#, "/ref"),
            (r#"{"int":{},"nat":{}}"#, ""),
            ("3", ""),
        ] {
            assert_eq!(ty(s).map_err(|e| e.pointer), Err(ptr.to_owned()), "{s}");
        }
    }
}
