//! Canonicalizing data-model values against a type (what reducers write, in any of serde's
//! forms) into the one canonical encoding.

use std::collections::{BTreeMap, HashSet};

use super::{
    Cx, IntKind, check_depth, dec128, expected, hash, key_text, map_of, names_of, one_entry,
    sorted_set, unknown_field, uuid,
};
use crate::air::types::{PathFail, Type};
use crate::codec::cbor::Value;

impl<'a> Cx<'a> {
    /// Checks and canonicalizes `v` of type `ty`, sitting at depth `depth`.
    pub(super) fn canon(&self, v: &Value, ty: &'a Type, depth: usize) -> Result<Value, PathFail> {
        let (t, optional) = self.strip(ty)?;
        if optional && matches!(v, Value::Null) {
            return Ok(Value::Null);
        }
        let wrong = || PathFail::new(format!("expected {}, found {}", expected(t), v.type_name()));
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
                            k.type_name()
                        )));
                    };
                    let Some(ft) = fields.get(k) else {
                        return Err(unknown_field(k, fields));
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
}
