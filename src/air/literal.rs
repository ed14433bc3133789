//! Literals and expressions in canonical form: how a typed literal slot and an expression
//! are written in a node's canonical value, and how an expression is read back.
//!
//! A literal value (a cap grant's `params`; a literal, or a constant expression, in an
//! `ExprOrValue` slot whose type is known) is read through its type, canonicalized, and
//! written as the constant expression that spells the canonical value in the tagged lens
//! (`slot_value`, `literal_value`), so the sugar and the tagged spelling of one value are
//! the same bytes and a stored node decodes without knowing any schema. Expressions are
//! encoded structurally, the same shape as their JSON form ([`expr_value`]).
//!
//! Nothing here knows the node kinds: literals are typed through any [`Schemas`].

use super::expr::{Const, Expr, ExprOrValue, Op, Ref};
use super::types::{Schemas, Type, resolve};
use super::value;
use crate::codec::cbor::{self, Map, Value};
use crate::codec::json::Json;
use crate::codec::shape::{MapWrite, MapWriter, Member, Path, Problem, ShapeError, located};
use crate::object::ObjectId;

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a node cannot be encoded, or a value is not the canonical encoding of a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", located("", .pointer, .message))]
pub struct CanonError {
    /// JSON pointer (RFC 6901) of the offending part, relative to the node: for encoding a
    /// pointer into the node's authoring JSON, for decoding a path into the value.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl From<ShapeError> for CanonError {
    fn from(e: ShapeError) -> Self {
        Self {
            pointer: e.path,
            message: e.problem.to_string(),
        }
    }
}

pub(crate) fn fail(pointer: &str, message: impl Into<String>) -> CanonError {
    CanonError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Literals and slots

/// Whether `e` is a constant expression spelled as the tagged literal of a value of type `ty`
/// at every position (so that reading its JSON form through `ty` reads it as tagged, never as
/// sugar).
fn tagged_shape(e: &Expr, ty: &Type, schemas: &dyn Schemas, depth: usize) -> bool {
    if depth > cbor::MAX_DEPTH {
        return false;
    }
    let Ok(t) = resolve(ty, schemas) else {
        return false;
    };
    let d = depth + 1;
    match (e, t) {
        (Expr::Const(Const::Null), Type::Option(_) | Type::Unit) => true,
        (_, Type::Option(inner)) => tagged_shape(e, inner, schemas, d),
        (Expr::Const(c), t) => matches!(
            (c, t),
            (Const::Bool(_), Type::Bool)
                | (Const::Int(_), Type::Int)
                | (Const::Nat(_), Type::Nat)
                | (Const::Dec128(_), Type::Dec128)
                | (Const::Text(_), Type::Text)
                | (Const::Bytes(_), Type::Bytes)
                | (Const::TimeNs(_), Type::Time)
                | (Const::DurationNs(_), Type::Duration)
                | (Const::Hash(_), Type::Hash)
                | (Const::Uuid(_), Type::Uuid)
        ),
        (Expr::Record(fs), Type::Record(ft)) => fs
            .iter()
            .all(|(k, x)| ft.get(k).is_some_and(|t| tagged_shape(x, t, schemas, d))),
        (Expr::Variant { tag, value }, Type::Variant(tags)) => {
            tags.get(tag).is_some_and(|pt| match value {
                Some(x) => tagged_shape(x, pt, schemas, d),
                None => true,
            })
        }
        (Expr::List(xs), Type::List(el)) | (Expr::Set(xs), Type::Set(el)) => {
            xs.iter().all(|x| tagged_shape(x, el, schemas, d))
        }
        (Expr::Map(kvs), Type::Map { key, value }) => kvs.iter().all(|(k, v)| {
            tagged_shape(k, key.type_ref(), schemas, d) && tagged_shape(v, value, schemas, d)
        }),
        _ => false,
    }
}

/// The value of a constant expression `e` of type `ty`, if `e` is one (references and
/// operators are not constant) and fits `ty`.
#[must_use]
pub fn const_expr_value(e: &Expr, ty: &Type, schemas: &dyn Schemas) -> Option<Value> {
    if !tagged_shape(e, ty, schemas, 0) {
        return None;
    }
    value::from_json(&e.to_json(), ty, schemas).ok()
}

/// The constant expression that spells the canonical value `v` of type `ty` in the tagged
/// lens.
fn value_expr(v: &Value, ty: &Type, schemas: &dyn Schemas, p: &str) -> Result<Expr, CanonError> {
    let j = value::to_tagged(v, ty, schemas).map_err(|e| fail(p, e.to_string()))?;
    Expr::from_json(&j).map_err(|es| {
        fail(
            p,
            format!(
                "internal: the tagged form of a value is not an expression: {}",
                es.first().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })
}

/// The canonical encoding of a literal (JSON in either lens) of type `ty`.
pub(crate) fn literal_value(
    j: &Json,
    ty: &Type,
    schemas: &dyn Schemas,
    p: &str,
) -> Result<Value, CanonError> {
    let v = value::from_json(j, ty, schemas).map_err(|e| CanonError {
        pointer: format!("{p}{}", e.path),
        message: e.message,
    })?;
    Ok(expr_value(&value_expr(&v, ty, schemas, p)?))
}

/// The canonical encoding of an `ExprOrValue` slot of type `ty` (when known).
/// Rewrites AgentOS's option spellings — the variant constructors `None` and `Some {value}`
/// at a position typed `option<T>` (T not itself a variant) — into aos's (`null`, or the
/// value itself), so that both spellings of one plan have one encoding and one id.
fn options_as_values(e: &Expr, t: &Type, schemas: &dyn Schemas, depth: usize) -> Expr {
    const LIMIT: usize = 256;
    let Ok(rt) = resolve(t, schemas) else {
        return e.clone();
    };
    if depth > LIMIT {
        return e.clone();
    }
    let d = depth + 1;
    let not_variant =
        |inner: &Type| !matches!(resolve(inner, schemas), Ok(Type::Variant(_)) | Err(_));
    match (e, rt) {
        (Expr::Variant { tag, value }, Type::Option(inner))
            if tag == "None"
                && matches!(value.as_deref(), None | Some(Expr::Const(Const::Null)))
                && not_variant(inner) =>
        {
            Expr::Const(Const::Null)
        }
        (
            Expr::Variant {
                tag,
                value: Some(x),
            },
            Type::Option(inner),
        ) if tag == "Some" && not_variant(inner) => options_as_values(x, inner, schemas, d),
        (_, Type::Option(inner)) => options_as_values(e, inner, schemas, d),
        (Expr::Record(fs), Type::Record(ft)) => Expr::Record(
            fs.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        ft.get(k)
                            .map_or_else(|| x.clone(), |t2| options_as_values(x, t2, schemas, d)),
                    )
                })
                .collect(),
        ),
        (Expr::List(xs), Type::List(el)) => Expr::List(
            xs.iter()
                .map(|x| options_as_values(x, el, schemas, d))
                .collect(),
        ),
        (Expr::Set(xs), Type::Set(el)) => Expr::Set(
            xs.iter()
                .map(|x| options_as_values(x, el, schemas, d))
                .collect(),
        ),
        (Expr::Map(es), Type::Map { key, value }) => Expr::Map(
            es.iter()
                .map(|(k, v)| {
                    (
                        options_as_values(k, key.type_ref(), schemas, d),
                        options_as_values(v, value, schemas, d),
                    )
                })
                .collect(),
        ),
        (
            Expr::Variant {
                tag,
                value: Some(x),
            },
            Type::Variant(tags),
        ) => Expr::Variant {
            tag: tag.clone(),
            value: Some(Box::new(tags.get(tag).map_or_else(
                || (**x).clone(),
                |t2| options_as_values(x, t2, schemas, d),
            ))),
        },
        _ => e.clone(),
    }
}

pub(crate) fn slot_value(
    slot: &ExprOrValue,
    ty: Option<&Type>,
    schemas: &dyn Schemas,
    p: &str,
) -> Result<Value, CanonError> {
    match (slot, ty) {
        (ExprOrValue::Expr(e), Some(t)) => {
            let e = &options_as_values(e, t, schemas, 0);
            match const_expr_value(e, t, schemas) {
                Some(v) => Ok(expr_value(&value_expr(&v, t, schemas, p)?)),
                None => Ok(expr_value(e)),
            }
        }
        (ExprOrValue::Expr(e), None) => Ok(expr_value(e)),
        (ExprOrValue::Value(j), Some(t)) => literal_value(j, t, schemas, p),
        (ExprOrValue::Value(_), None) => Err(fail(
            p,
            "a literal value needs the slot's type, which is unknown here; \
             write it as an expression (tagged literal)",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions

fn one(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(Value::Text(k.to_owned()), v);
    Value::Map(m)
}

/// The canonical encoding of an expression: the shape of its JSON form, as a data-model
/// value. Each form is a one-entry map (the operator form has the two entries `op` and
/// `args`); integers are integers, `dec128` constants carry their canonical text when the
/// text is a valid decimal, byte constants are `{"bytes": <byte string>}` (not base64), and
/// hashes and UUIDs are their text forms. A record constructor is a map, so its fields are in
/// canonical order; everything else keeps its order.
#[must_use]
pub fn expr_value(e: &Expr) -> Value {
    match e {
        Expr::Const(c) => match c {
            Const::Null => one("null", Value::Map(Map::new())),
            Const::Bool(b) => one("bool", Value::Bool(*b)),
            Const::Int(i) => one("int", Value::from(*i)),
            Const::Nat(n) => one("nat", Value::from(*n)),
            Const::Dec128(s) => one(
                "dec128",
                Value::Text(value::canonical_dec128(s).unwrap_or_else(|_| s.clone())),
            ),
            Const::Text(s) => one("text", Value::Text(s.clone())),
            Const::Bytes(b) => one("bytes", Value::Bytes(b.clone())),
            Const::TimeNs(n) => one("time_ns", Value::from(*n)),
            Const::DurationNs(i) => one("duration_ns", Value::from(*i)),
            Const::Hash(h) => one("hash", Value::Text(h.to_string())),
            Const::Uuid(u) => one("uuid", Value::Text(u.clone())),
        },
        Expr::Ref(r) => one("ref", Value::Text(r.to_string())),
        Expr::Op { op, args } => {
            let mut m = MapWriter::default();
            m.text("op", op.as_str())
                .put("args", Value::Array(args.iter().map(expr_value).collect()));
            m.done()
        }
        Expr::Record(fs) => {
            let m = Map::from_text_entries(
                fs.iter().map(|(k, x)| (k.clone(), expr_value(x))).collect(),
            );
            one("record", Value::Map(m))
        }
        Expr::List(xs) => one("list", Value::Array(xs.iter().map(expr_value).collect())),
        Expr::Set(xs) => one("set", Value::Array(xs.iter().map(expr_value).collect())),
        Expr::Map(kvs) => one(
            "map",
            Value::Array(
                kvs.iter()
                    .map(|(k, v)| {
                        let mut m = MapWriter::default();
                        m.put("key", expr_value(k)).put("value", expr_value(v));
                        m.done()
                    })
                    .collect(),
            ),
        ),
        Expr::Variant { tag, value } => {
            let mut m = MapWriter::default();
            m.text("tag", tag);
            if let Some(v) = value {
                m.put("value", expr_value(v));
            }
            one("variant", m.done())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding expressions

/// Reads an expression from its canonical encoding ([`expr_value`]).
///
/// # Errors
/// [`CanonError`] with the path of the first part that is not an expression encoding.
pub fn expr_from_value(v: &Value) -> Result<Expr, CanonError> {
    Ok(expr_at(Member::new(v, Path::ROOT), 0)?)
}

/// The text of a map key, which must be text (reported at the map `at`).
pub(crate) fn key_text<'v>(
    k: &'v Value,
    at: &Member<'_, '_, Value>,
) -> Result<&'v str, ShapeError> {
    match k {
        Value::Text(t) => Ok(t),
        other => Err(at.fail(Problem::WrongType {
            expected: "text",
            found: other.type_name(),
        })),
    }
}

/// Reads the expression encoded by `m`, which is nested `depth` deep.
pub(crate) fn expr_at(m: Member<'_, '_, Value>, depth: usize) -> Result<Expr, ShapeError> {
    if depth > cbor::MAX_DEPTH {
        return Err(m.invalid("expression nested too deeply"));
    }
    let d = depth + 1;
    let Value::Map(map) = m.value else {
        return Err(m.invalid("an expression is a map"));
    };
    if map.len() == 2 && map.get_text("op").is_some() {
        let mut r = m.fields("an operator")?;
        let om = r.req("op")?;
        let op_name = om.text()?;
        let op = Op::from_name(op_name)
            .ok_or_else(|| om.invalid(format!("unknown operator {op_name:?}")))?;
        let am = r.req("args")?;
        let args: Vec<Expr> = am
            .items()?
            .map(|x| expr_at(x, d))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        if !op.arity().accepts(args.len()) {
            return Err(am.invalid(format!("`{op}` takes {}", op.arity())));
        }
        return Ok(Expr::Op { op, args });
    }
    let [(Value::Text(k), b)] = map.entries() else {
        return Err(m.invalid("an expression is a map with one text key (or `op` and `args`)"));
    };
    let bm = Member::new(b, m.path.key(k));
    let c = |c: Const| Ok(Expr::Const(c));
    match k.as_str() {
        "null" => match b {
            Value::Map(x) if x.is_empty() => c(Const::Null),
            _ => Err(bm.invalid("`null` takes an empty map")),
        },
        "bool" => match b {
            Value::Bool(x) => c(Const::Bool(*x)),
            _ => Err(bm.invalid("expected a boolean")),
        },
        "int" => c(Const::Int(bm.i64()?)),
        "nat" => c(Const::Nat(bm.u64()?)),
        "dec128" => c(Const::Dec128(bm.text()?.to_owned())),
        "text" => c(Const::Text(bm.text()?.to_owned())),
        "bytes" => match b {
            Value::Bytes(x) => c(Const::Bytes(x.clone())),
            _ => Err(bm.invalid("expected a byte string")),
        },
        "time_ns" => c(Const::TimeNs(bm.u64()?)),
        "duration_ns" => c(Const::DurationNs(bm.i64()?)),
        "hash" => c(Const::Hash(
            bm.text()?
                .parse::<ObjectId>()
                .map_err(|e| bm.invalid(e.to_string()))?,
        )),
        "uuid" => {
            let s = bm.text()?;
            let u = value::canonical_uuid(s).map_err(|e| bm.invalid(e.message))?;
            if u != s {
                return Err(bm.invalid("a UUID is written in lowercase"));
            }
            c(Const::Uuid(u))
        }
        "ref" => Ok(Expr::Ref(
            Ref::parse(bm.text()?).map_err(|e| bm.invalid(e))?,
        )),
        "record" => {
            let Value::Map(fs) = b else {
                return Err(bm.invalid("`record` takes a map"));
            };
            let fields = fs
                .entries()
                .iter()
                .map(|(k, x)| {
                    let k = key_text(k, &bm)?;
                    let e = expr_at(Member::new(x, bm.path.key(k)), d)?;
                    Ok((k.to_owned(), e))
                })
                .collect::<Result<_, ShapeError>>()?;
            Ok(Expr::Record(fields))
        }
        "list" | "set" => {
            let xs = bm
                .items()?
                .map(|x| expr_at(x, d))
                .collect::<Result<_, _>>()?;
            Ok(if k == "list" {
                Expr::List(xs)
            } else {
                Expr::Set(xs)
            })
        }
        "map" => {
            let kvs = bm
                .items()?
                .map(|x| {
                    let mut r = x.fields("a map entry")?;
                    let kv = r.req("key")?;
                    let vv = r.req("value")?;
                    let entry = (expr_at(kv, d)?, expr_at(vv, d)?);
                    r.finish()?;
                    Ok(entry)
                })
                .collect::<Result<_, ShapeError>>()?;
            Ok(Expr::Map(kvs))
        }
        "variant" => {
            let mut r = bm.fields("a variant")?;
            let tm = r.req("tag")?;
            let tag = tm.text()?;
            if tag.is_empty() {
                return Err(tm.invalid("a variant tag is not empty"));
            }
            let value = match r.opt("value") {
                Some(x) => Some(Box::new(expr_at(x, d)?)),
                None => None,
            };
            r.finish()?;
            Ok(Expr::Variant {
                tag: tag.to_owned(),
                value,
            })
        }
        other => Err(m.invalid(format!("unknown expression form `{other}`"))),
    }
}
