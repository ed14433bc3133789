//! Reading JSON in either lens (sugar and tagged) through a type into canonical values.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;

use super::{
    Cx, IntKind, check_depth, dec128, found, hash, int_text, key_text, keyword, map_of, mismatch,
    names_of, number_int, one_entry, rfc3339, shown, sorted_set, unknown_field, uuid,
};
use crate::air::types::{MapKey, PathFail, Type};
use crate::codec::cbor::Value;
use crate::codec::json::{BASE64, Json};

impl<'a> Cx<'a> {
    /// Reads JSON `j` of type `ty` into a value sitting at data-model depth `depth`.
    pub(super) fn read(&self, j: &Json, ty: &'a Type, depth: usize) -> Result<Value, PathFail> {
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
    pub(super) fn option_as_variant(
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
    pub(super) fn tagged(&self, body: &Json, t: &'a Type, depth: usize) -> Result<Value, PathFail> {
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
    pub(super) fn sugar(&self, j: &Json, t: &'a Type, depth: usize) -> Result<Value, PathFail> {
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

    pub(super) fn record(
        &self,
        members: &[(String, Json)],
        fields: &'a BTreeMap<String, Type>,
        depth: usize,
    ) -> Result<Value, PathFail> {
        check_depth(depth)?;
        let mut got: BTreeMap<&str, Value> = BTreeMap::new();
        for (k, x) in members {
            let Some(ft) = fields.get(k) else {
                return Err(unknown_field(k, fields));
            };
            let v = self.read(x, ft, depth + 1).map_err(|e| e.at(k))?;
            if got.insert(k, v).is_some() {
                return Err(PathFail::new(format!("duplicate field `{k}`")).at(k));
            }
        }
        self.finish_record(got, fields)
    }

    /// Fills in omitted option fields and builds the record's map.
    pub(super) fn finish_record(
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

    pub(super) fn variant_sugar(
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

    pub(super) fn variant_tagged(
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

    pub(super) fn list(
        &self,
        items: &[Json],
        elem: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
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

    pub(super) fn map_object(
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

    pub(super) fn map_pairs(
        &self,
        pairs: &[Json],
        key: MapKey,
        value: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
        self.map_entries(pairs, key, value, depth, pair_entry)
    }

    pub(super) fn map_tagged(
        &self,
        entries_j: &[Json],
        key: MapKey,
        value: &'a Type,
        depth: usize,
    ) -> Result<Value, PathFail> {
        self.map_entries(entries_j, key, value, depth, tagged_entry)
    }

    /// Reads a map at `depth` written as an array of entries, each of which `split` takes
    /// apart into key and value and the members they stand at.
    fn map_entries(
        &self,
        items: &[Json],
        key: MapKey,
        value: &'a Type,
        depth: usize,
        split: for<'j> fn(&'j Json) -> Result<Entry<'j>, PathFail>,
    ) -> Result<Value, PathFail> {
        check_depth(depth)?;
        let kt = key.type_ref();
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let seg = i.to_string();
            let (kx, segs) = split(item).map_err(|e| e.at(&seg))?;
            let entry = self.map_entry(kx, segs, (kt, value), depth, &mut seen);
            entries.push(entry.map_err(|e| e.at(&seg))?);
        }
        map_of(entries)
    }

    /// Reads one entry of a map at `depth`: key `k` and value `x`, at members `segs` of the
    /// entry, of types `types`; the key must not be in `seen` yet.
    fn map_entry(
        &self,
        (k, x): (&Json, &Json),
        segs: (&str, &str),
        types: (&'a Type, &'a Type),
        depth: usize,
        seen: &mut HashSet<Value>,
    ) -> Result<(Value, Value), PathFail> {
        let kv = self.read(k, types.0, depth + 1).map_err(|e| e.at(segs.0))?;
        if !seen.insert(kv.clone()) {
            return Err(PathFail::new(format!("duplicate key {}", key_text(&kv))).at(segs.0));
        }
        let v = self.read(x, types.1, depth + 1).map_err(|e| e.at(segs.1))?;
        Ok((kv, v))
    }
}

/// One map entry in an array form: key and value, and the members they stand at.
type Entry<'j> = ((&'j Json, &'j Json), (&'static str, &'static str));

/// Takes apart a map entry written as an array `[key, value]`.
fn pair_entry(pair: &Json) -> Result<Entry<'_>, PathFail> {
    match pair {
        Json::Array(kv) if kv.len() == 2 => Ok(((&kv[0], &kv[1]), ("0", "1"))),
        other => Err(PathFail::new(format!(
            "a map entry is an array [key, value], found {}",
            match other {
                Json::Array(kv) => format!("an array of {} elements", kv.len()),
                o => found(o),
            }
        ))),
    }
}

/// Takes apart a map entry written as an object `{"key": .., "value": ..}`.
fn tagged_entry(entry: &Json) -> Result<Entry<'_>, PathFail> {
    let Json::Object(members) = entry else {
        return Err(PathFail::new(format!(
            "a tagged map entry is an object {{\"key\": .., \"value\": ..}}, found {}",
            found(entry)
        )));
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
                .at(other));
            }
        }
    }
    let (Some(k), Some(x)) = (k, x) else {
        return Err(PathFail::new(
            "a tagged map entry needs both `key` and `value`",
        ));
    };
    Ok(((k, x), ("key", "value")))
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
