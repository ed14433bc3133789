//! Values as expressions compute them: self-describing (a `nat` stays a `nat`, a `hash` a
//! `hash`), read from typed data-model values and turned back into canonical ones.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::air::types::{MapKey, Schemas, Type, resolve};
use crate::air::value::{self, ValueError};
use crate::codec::cbor::{self, Int, Map, Value};
use crate::object::ObjectId;

/// A value an expression computes or refers to. Unlike a data-model [`Value`], it says its
/// type's kind, which the operators need (`nat` and `int` overflow differently; `dec128`,
/// `hash` and `uuid` are not text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// `null`: unit, or an option's none.
    Null,
    /// A `bool`.
    Bool(bool),
    /// An `int`.
    Int(i64),
    /// A `nat`.
    Nat(u64),
    /// A `dec128`, in its canonical text.
    Dec128(String),
    /// A `text`.
    Text(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// A `time`: nanoseconds since the Unix epoch.
    Time(u64),
    /// A `duration`: nanoseconds.
    Duration(i64),
    /// A `hash`.
    Hash(ObjectId),
    /// A `uuid`, in its canonical (lowercase) text.
    Uuid(String),
    /// A record: its fields by name.
    Record(BTreeMap<String, Val>),
    /// A variant: its tag and payload (`Null` for a unit payload).
    Variant(String, Box<Val>),
    /// A list, in order.
    List(Vec<Val>),
    /// A set: distinct elements, sorted by their canonical encoding ([`Val::set`]).
    Set(Vec<Val>),
    /// A map: entries with distinct keys, in the order they were built.
    Map(Vec<(Val, Val)>),
}

impl Val {
    /// A set of `items`: sorted by canonical encoding, duplicates dropped.
    #[must_use]
    pub fn set(items: Vec<Val>) -> Val {
        let mut keyed: Vec<(Vec<u8>, Val)> = items
            .into_iter()
            .map(|v| (cbor::encode(&v.to_value()), v))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed.dedup_by(|a, b| a.0 == b.0);
        Val::Set(keyed.into_iter().map(|(_, v)| v).collect())
    }

    /// What the value is, for messages: `a nat`, `text`, `a record`, ….
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a bool",
            Val::Int(_) => "an int",
            Val::Nat(_) => "a nat",
            Val::Dec128(_) => "a dec128",
            Val::Text(_) => "text",
            Val::Bytes(_) => "bytes",
            Val::Time(_) => "a time",
            Val::Duration(_) => "a duration",
            Val::Hash(_) => "a hash",
            Val::Uuid(_) => "a uuid",
            Val::Record(_) => "a record",
            Val::Variant(..) => "a variant",
            Val::List(_) => "a list",
            Val::Set(_) => "a set",
            Val::Map(_) => "a map",
        }
    }

    /// The value of an integer kind (`int`, `nat`, `time`, `duration`) as a wide integer.
    #[must_use]
    pub fn integer(&self) -> Option<i128> {
        match self {
            Val::Int(i) | Val::Duration(i) => Some(i128::from(*i)),
            Val::Nat(n) | Val::Time(n) => Some(i128::from(*n)),
            _ => None,
        }
    }

    /// How deep the value nests lists, sets, maps, records and variants (a scalar is 0).
    #[must_use]
    pub fn depth(&self) -> usize {
        let max = |it: &mut dyn Iterator<Item = &Val>| it.map(Val::depth).max().unwrap_or(0);
        match self {
            Val::Record(fs) => 1 + max(&mut fs.values()),
            Val::Variant(_, v) => 1 + v.depth(),
            Val::List(xs) | Val::Set(xs) => 1 + max(&mut xs.iter()),
            Val::Map(kvs) => 1 + max(&mut kvs.iter().flat_map(|(k, v)| [k, v])),
            _ => 0,
        }
    }

    /// The canonical data-model value: what reducers see and the store hashes (see
    /// [`crate::air::value`]).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let int = |n: i128| Value::Int(Int::new(n).expect("i64 and u64 fit the data model"));
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Int(i) | Val::Duration(i) => int(i128::from(*i)),
            Val::Nat(n) | Val::Time(n) => int(i128::from(*n)),
            Val::Dec128(s) | Val::Text(s) | Val::Uuid(s) => Value::Text(s.clone()),
            Val::Bytes(b) => Value::Bytes(b.clone()),
            Val::Hash(h) => Value::Text(h.to_string()),
            Val::Record(fs) => Value::Map(
                Map::from_entries(
                    fs.iter()
                        .map(|(k, v)| (Value::Text(k.clone()), v.to_value()))
                        .collect(),
                )
                .expect("record fields are distinct text"),
            ),
            Val::Variant(tag, v) => {
                let mut m = Map::new();
                m.insert(Value::Text(tag.clone()), v.to_value());
                Value::Map(m)
            }
            Val::List(xs) | Val::Set(xs) => Value::Array(xs.iter().map(Val::to_value).collect()),
            Val::Map(kvs) => Value::Map(Map::from_entries_last_wins(
                kvs.iter()
                    .map(|(k, v)| (k.to_value(), v.to_value()))
                    .collect(),
            )),
        }
    }

    /// Whether two values are equal: their canonical values are (so `nat 1` equals `int 1`,
    /// as the checker lets integers of all kinds compare).
    #[must_use]
    pub fn same(&self, other: &Val) -> bool {
        self.to_value() == other.to_value()
    }

    /// Reads a data-model value of type `ty` (in any form [`value::canonicalize`] accepts).
    ///
    /// # Errors
    /// [`ValueError`] if the value does not fit the type.
    pub fn from_value(v: &Value, ty: &Type, schemas: &dyn Schemas) -> Result<Val, ValueError> {
        let v = value::canonicalize(v, ty, schemas)?;
        typed(&v, ty, schemas).ok_or_else(|| ValueError {
            path: String::new(),
            message: format!("internal error: a canonical value does not read as {ty}"),
        })
    }
}

/// Reads the canonical value `v` of type `ty`.
fn typed(v: &Value, ty: &Type, s: &dyn Schemas) -> Option<Val> {
    let t = resolve(ty, s).ok()?;
    let int = |v: &Value| match v {
        Value::Int(i) => Some(i.get()),
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::Text(t) => Some(t.clone()),
        _ => None,
    };
    Some(match (t, v) {
        (Type::Option(_) | Type::Unit, Value::Null) => Val::Null,
        (Type::Option(inner), _) => typed(v, inner, s)?,
        (Type::Bool, Value::Bool(b)) => Val::Bool(*b),
        (Type::Int, _) => Val::Int(i64::try_from(int(v)?).ok()?),
        (Type::Duration, _) => Val::Duration(i64::try_from(int(v)?).ok()?),
        (Type::Nat, _) => Val::Nat(u64::try_from(int(v)?).ok()?),
        (Type::Time, _) => Val::Time(u64::try_from(int(v)?).ok()?),
        (Type::Dec128, _) => Val::Dec128(text(v)?),
        (Type::Text, _) => Val::Text(text(v)?),
        (Type::Uuid, _) => Val::Uuid(text(v)?),
        (Type::Hash, _) => Val::Hash(text(v)?.parse().ok()?),
        (Type::Bytes, Value::Bytes(b)) => Val::Bytes(b.clone()),
        (Type::Record(fs), Value::Map(m)) => Val::Record(
            fs.iter()
                .map(|(k, ft)| Some((k.clone(), typed(m.get_text(k)?, ft, s)?)))
                .collect::<Option<_>>()?,
        ),
        (Type::Variant(tags), Value::Map(m)) => {
            let [(Value::Text(tag), payload)] = m.entries() else {
                return None;
            };
            Val::Variant(tag.clone(), Box::new(typed(payload, tags.get(tag)?, s)?))
        }
        (Type::List(el), Value::Array(xs)) => {
            Val::List(xs.iter().map(|x| typed(x, el, s)).collect::<Option<_>>()?)
        }
        (Type::Set(el), Value::Array(xs)) => {
            Val::Set(xs.iter().map(|x| typed(x, el, s)).collect::<Option<_>>()?)
        }
        (Type::Map { key, value }, Value::Map(m)) => Val::Map(
            m.entries()
                .iter()
                .map(|(k, x)| Some((map_key(k, *key)?, typed(x, value, s)?)))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

fn map_key(k: &Value, key: MapKey) -> Option<Val> {
    Some(match (key, k) {
        (MapKey::Int, Value::Int(i)) => Val::Int(i64::try_from(i.get()).ok()?),
        (MapKey::Nat, Value::Int(i)) => Val::Nat(u64::try_from(i.get()).ok()?),
        (MapKey::Text, Value::Text(t)) => Val::Text(t.clone()),
        (MapKey::Uuid, Value::Text(t)) => Val::Uuid(t.clone()),
        (MapKey::Hash, Value::Text(t)) => Val::Hash(t.parse().ok()?),
        _ => return None,
    })
}

/// Compares two canonical `dec128` texts by numeric value; `None` if one is not canonical
/// decimal text.
#[must_use]
pub fn dec128_cmp(a: &str, b: &str) -> Option<Ordering> {
    let (x, y) = (Decimal::parse(a)?, Decimal::parse(b)?);
    Some(x.cmp(&y))
}

/// A decimal as sign, significant digits (no leading or trailing zeros; empty for zero) and
/// the adjusted exponent of the first digit.
#[derive(PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    adjusted: i64,
}

impl Decimal {
    fn parse(s: &str) -> Option<Decimal> {
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (mantissa, exp) = match s.split_once('E') {
            Some((m, e)) => (m, e.parse::<i64>().ok()?),
            None => (s, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let lead = all.iter().take_while(|&&d| d == b'0').count();
        let digits: Vec<u8> = all[lead..].to_vec();
        let trail = digits.iter().rev().take_while(|&&d| d == b'0').count();
        let digits = digits[..digits.len() - trail].to_vec();
        // The first significant digit sits `int.len() - lead - 1` places left of the point.
        let place = i64::try_from(int.len()).ok()? - i64::try_from(lead).ok()? - 1;
        Some(Decimal {
            negative: negative && !digits.is_empty(),
            adjusted: if digits.is_empty() { 0 } else { place + exp },
            digits,
        })
    }

    fn magnitude_cmp(&self, other: &Decimal) -> Ordering {
        match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self
                .adjusted
                .cmp(&other.adjusted)
                .then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::air::types::NoSchemas;
    use crate::codec::json::parse_json;

    #[test]
    fn decimals_compare_by_value() {
        let canon = |s: &str| value::canonical_dec128(s).expect("test decimal");
        let ordered = [
            "-1E+40",
            "-12.5",
            "-1.25",
            "-0.000001",
            "0",
            "1E-7",
            "0.5",
            "1",
            "1.5",
            "2",
            "10",
            "100.25",
            "1.5E+40",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(
                    dec128_cmp(&canon(a), &canon(b)),
                    Some(i.cmp(&j)),
                    "{a} vs {b}"
                );
            }
        }
        assert_eq!(
            dec128_cmp(&canon("1.50"), &canon("1.5")),
            Some(Ordering::Equal)
        );
        assert_eq!(dec128_cmp("x", "1"), None);
    }

    #[test]
    fn values_round_trip_through_their_types() {
        let ty = Type::from_json(
            &parse_json(
                r#"{"record": {"n": {"nat": {}}, "o": {"option": {"int": {}}},
                   "v": {"variant": {"A": {"unit": {}}, "B": {"list": {"hash": {}}}}},
                   "m": {"map": {"key": {"uuid": {}}, "value": {"set": {"text": {}}}}}}}"#,
            )
            .expect("test JSON"),
        )
        .expect("test type");
        let h = format!("b3:{}", "ab".repeat(32));
        let j = parse_json(&format!(
            r#"{{"n": 3, "o": null, "v": {{"B": ["{h}"]}},
                "m": {{"123E4567-e89b-12d3-a456-426614174000": ["b", "a", "b"]}}}}"#
        ))
        .expect("test JSON");
        let v = value::from_json(&j, &ty, &NoSchemas).expect("fits");
        let x = Val::from_value(&v, &ty, &NoSchemas).expect("reads");
        let Val::Record(fs) = &x else { panic!("{x:?}") };
        assert_eq!(fs["n"], Val::Nat(3));
        assert_eq!(fs["o"], Val::Null);
        assert!(matches!(&fs["v"], Val::Variant(t, p) if t == "B" && matches!(**p, Val::List(_))));
        assert_eq!(x.to_value(), v);
        assert_eq!(x.depth(), 3);
        assert!(Val::from_value(&Value::Bool(true), &ty, &NoSchemas).is_err());
        assert_eq!(
            Val::set(vec![Val::Nat(2), Val::Nat(1), Val::Nat(2)]),
            Val::Set(vec![Val::Nat(1), Val::Nat(2)])
        );
        assert!(Val::Nat(1).same(&Val::Int(1)));
        assert!(!Val::Text("1".into()).same(&Val::Nat(1)));
    }
}
