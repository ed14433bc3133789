//! Rendering canonical values back to JSON, in the sugar or the tagged lens.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::{Cx, Lens, key_text, keyword};
use crate::air::types::{PathFail, Type};
use crate::codec::cbor::{Map, Value};
use crate::codec::json::{BASE64, Json};

impl<'a> Cx<'a> {
    /// Renders the canonical value `v` of type `ty` in `lens`.
    pub(super) fn render(&self, v: &Value, ty: &'a Type, lens: Lens) -> Result<Json, PathFail> {
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
    pub(super) fn plain(&self, v: &Value, t: &'a Type) -> Result<Json, PathFail> {
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
            (Type::Record(fields), Value::Map(m)) => self.fields(m, fields, (t, v), Lens::Sugar)?,
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
                self.map_json(m, (key.type_ref(), value), Lens::Sugar, |k, x| {
                    Json::Array(vec![k, x])
                })?
            }
            (Type::Unit, Value::Null) => Json::Null,
            _ => scalar(v, t)?,
        })
    }

    /// The fields `m` of a record value `tv` (its type and value, for errors) with `fields`,
    /// each rendered in `lens`.
    fn fields(
        &self,
        m: &Map,
        fields: &'a BTreeMap<String, Type>,
        tv: (&Type, &Value),
        lens: Lens,
    ) -> Result<Json, PathFail> {
        let entries = m.entries().iter().map(|(k, x)| {
            let Value::Text(k) = k else {
                return Err(internal(tv.0, tv.1));
            };
            let ft = fields.get(k).ok_or_else(|| internal(tv.0, tv.1))?;
            Ok((k.clone(), self.render(x, ft, lens).map_err(|e| e.at(k))?))
        });
        Ok(Json::Object(entries.collect::<Result<_, _>>()?))
    }

    /// The tagged form of `v` at this position, with inner positions in `inner` lens.
    pub(super) fn shell(&self, v: &Value, t: &'a Type, inner: Lens) -> Result<Json, PathFail> {
        let body = match (t, v) {
            (Type::Unit, Value::Null) => Json::Object(Vec::new()),
            (Type::Record(fields), Value::Map(m)) => self.fields(m, fields, (t, v), inner)?,
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
                self.map_json(m, (key.type_ref(), value), inner, |k, x| {
                    Json::Object(vec![("key".to_owned(), k), ("value".to_owned(), x)])
                })?
            }
            _ => scalar(v, t)?,
        };
        Ok(Json::Object(vec![(keyword(t).to_owned(), body)]))
    }

    /// The entries of map value `m` as a JSON array: each key and value (of types `kv`)
    /// rendered in `lens`, put together by `entry`.
    fn map_json(
        &self,
        m: &Map,
        (kt, value): (&'a Type, &'a Type),
        lens: Lens,
        entry: fn(Json, Json) -> Json,
    ) -> Result<Json, PathFail> {
        let entries = m.entries().iter().map(|(k, x)| {
            let seg = key_text(k);
            let kj = self.render(k, kt, lens).map_err(|e| e.at(&seg))?;
            let xj = self.render(x, value, lens).map_err(|e| e.at(&seg))?;
            Ok(entry(kj, xj))
        });
        Ok(Json::Array(entries.collect::<Result<_, _>>()?))
    }

    pub(super) fn items(
        &self,
        items: &[Value],
        elem: &'a Type,
        lens: Lens,
    ) -> Result<Vec<Json>, PathFail> {
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
        v.type_name(),
        t.form()
    ))
}

fn tagged_null() -> Json {
    Json::Object(vec![("null".to_owned(), Json::Object(Vec::new()))])
}
