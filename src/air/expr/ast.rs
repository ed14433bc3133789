//! The expression tree: [`Expr`], its constants, references and the [`ExprOrValue`] slots,
//! with their JSON rendering and the text form of references.

use std::fmt;

use base64::Engine as _;

use super::ops::Op;
use crate::codec::json::{BASE64, Json};
use crate::object::ObjectId;

/// An expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A constant.
    Const(Const),
    /// A reference to plan input, a variable, a step output or the awaited event.
    Ref(Ref),
    /// An operator applied to arguments.
    Op {
        /// The operator.
        op: Op,
        /// The arguments, in order; their number fits [`Op::arity`].
        args: Vec<Expr>,
    },
    /// `{"record": {..}}`: fields in declared order.
    Record(Vec<(String, Expr)>),
    /// `{"list": [..]}`.
    List(Vec<Expr>),
    /// `{"set": [..]}` (deduplicated and sorted when evaluated, not here).
    Set(Vec<Expr>),
    /// `{"map": [{"key": .., "value": ..}, ..]}`: entries in declared order.
    Map(Vec<(Expr, Expr)>),
    /// `{"variant": {"tag": .., "value": ..}}`.
    Variant {
        /// The tag (non-empty).
        tag: String,
        /// The payload; `None` for a unit payload (`value` omitted).
        value: Option<Box<Expr>>,
    },
}

/// A constant expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Const {
    /// `{"null": {}}`.
    Null,
    /// `{"bool": b}`.
    Bool(bool),
    /// `{"int": i}`: an integer in the i64 range.
    Int(i64),
    /// `{"nat": n}`: an integer in the u64 range.
    Nat(u64),
    /// `{"dec128": "s"}`: a decimal string `[+-]?D+(.D+)?([eE][+-]?D+)?`, kept as written.
    Dec128(String),
    /// `{"text": "s"}`.
    Text(String),
    /// `{"bytes_b64": "s"}`: canonical standard base64 with padding, decoded.
    Bytes(Vec<u8>),
    /// `{"time_ns": n}`: nanoseconds since the epoch, in the u64 range.
    TimeNs(u64),
    /// `{"duration_ns": i}`: nanoseconds, in the i64 range.
    DurationNs(i64),
    /// `{"hash": "b3:…"}`: a BLAKE3 hash, `b3:` and 64 lowercase hex digits.
    Hash(ObjectId),
    /// `{"uuid": "s"}`: an RFC 4122 UUID in 8-4-4-4-12 hex form, stored lowercase.
    Uuid(String),
}

/// What a reference starts from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefRoot {
    /// `@plan.input`: the plan's input value.
    PlanInput,
    /// `@var:name`: a variable bound by a step (`bind.as`, `bind.effect_id_as`), a local, or
    /// `correlation_id`.
    Var(String),
    /// `@step:id`: the output of a completed step.
    Step(String),
    /// `@event`: the event being matched by `await_event.where`.
    Event,
}

/// A reference: a root and a path of field names into its value.
///
/// The text form is `@plan.input`, `@var:NAME`, `@step:ID` or `@event`, followed by zero or
/// more `.field` segments. NAME and ID end at the first `.`, so a variable or step whose name
/// contains `.` cannot be referenced. Names and segments are `[A-Za-z_][A-Za-z0-9_-]*`
/// (names at most 64 characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// The root.
    pub root: RefRoot,
    /// Field names, outermost first.
    pub path: Vec<String>,
}

impl Ref {
    /// Parses the text form of a reference.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(s: &str) -> Result<Ref, String> {
        let (root, rest) = if let Some(rest) = s.strip_prefix("@plan.input") {
            (RefRoot::PlanInput, rest)
        } else if let Some(rest) = s.strip_prefix("@event") {
            (RefRoot::Event, rest)
        } else if let Some(rest) = s.strip_prefix("@var:") {
            let (name, rest) = split_head(rest);
            check_segment(name, "variable name")?;
            (RefRoot::Var(name.to_owned()), rest)
        } else if let Some(rest) = s.strip_prefix("@step:") {
            let (name, rest) = split_head(rest);
            check_segment(name, "step id")?;
            (RefRoot::Step(name.to_owned()), rest)
        } else {
            return Err(
                "a reference starts with `@plan.input`, `@var:`, `@step:` or `@event`".to_owned(),
            );
        };
        let mut path = Vec::new();
        if !rest.is_empty() {
            let Some(rest) = rest.strip_prefix('.') else {
                return Err("a reference root is followed by `.field` segments or nothing".into());
            };
            for seg in rest.split('.') {
                check_segment(seg, "path segment")?;
                path.push(seg.to_owned());
            }
        }
        Ok(Ref { root, path })
    }
}

/// Splits `name.rest` at the first `.`, keeping the dot with the rest.
fn split_head(s: &str) -> (&str, &str) {
    match s.find('.') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    }
}

fn check_segment(seg: &str, what: &str) -> Result<(), String> {
    let mut b = seg.bytes();
    let ok = b
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    if !ok {
        return Err(format!(
            "invalid {what} {seg:?}: expected [A-Za-z_][A-Za-z0-9_-]*"
        ));
    }
    if what != "path segment" && seg.len() > 64 {
        return Err(format!("{what} {seg:?} is longer than 64 characters"));
    }
    Ok(())
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            RefRoot::PlanInput => f.write_str("@plan.input")?,
            RefRoot::Event => f.write_str("@event")?,
            RefRoot::Var(n) => write!(f, "@var:{n}")?,
            RefRoot::Step(n) => write!(f, "@step:{n}")?,
        }
        for seg in &self.path {
            write!(f, ".{seg}")?;
        }
        Ok(())
    }
}

impl Expr {
    /// Renders the expression's JSON form.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let one = |k: &str, v: Json| Json::Object(vec![(k.to_owned(), v)]);
        match self {
            Expr::Const(c) => c.to_json(),
            Expr::Ref(r) => one("ref", Json::String(r.to_string())),
            Expr::Op { op, args } => Json::Object(vec![
                ("op".to_owned(), Json::String(op.as_str().to_owned())),
                (
                    "args".to_owned(),
                    Json::Array(args.iter().map(Expr::to_json).collect()),
                ),
            ]),
            Expr::Record(fs) => one(
                "record",
                Json::Object(fs.iter().map(|(k, x)| (k.clone(), x.to_json())).collect()),
            ),
            Expr::List(xs) => one("list", Json::Array(xs.iter().map(Expr::to_json).collect())),
            Expr::Set(xs) => one("set", Json::Array(xs.iter().map(Expr::to_json).collect())),
            Expr::Map(kvs) => one(
                "map",
                Json::Array(
                    kvs.iter()
                        .map(|(k, v)| {
                            Json::Object(vec![
                                ("key".to_owned(), k.to_json()),
                                ("value".to_owned(), v.to_json()),
                            ])
                        })
                        .collect(),
                ),
            ),
            Expr::Variant { tag, value } => {
                let mut m = vec![("tag".to_owned(), Json::String(tag.clone()))];
                if let Some(v) = value {
                    m.push(("value".to_owned(), v.to_json()));
                }
                one("variant", Json::Object(m))
            }
        }
    }

    /// Every reference in the expression, in source order (depth first).
    #[must_use]
    pub fn refs(&self) -> Vec<&Ref> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs<'a>(&'a self, out: &mut Vec<&'a Ref>) {
        match self {
            Expr::Const(_) => {}
            Expr::Ref(r) => out.push(r),
            Expr::Op { args: xs, .. } | Expr::List(xs) | Expr::Set(xs) => {
                xs.iter().for_each(|x| x.collect_refs(out));
            }
            Expr::Record(fs) => fs.iter().for_each(|(_, x)| x.collect_refs(out)),
            Expr::Map(kvs) => kvs.iter().for_each(|(k, v)| {
                k.collect_refs(out);
                v.collect_refs(out);
            }),
            Expr::Variant { value, .. } => {
                if let Some(v) = value {
                    v.collect_refs(out);
                }
            }
        }
    }
}

impl Const {
    /// Renders the constant's JSON form.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let (k, v) = match self {
            Const::Null => ("null", Json::Object(Vec::new())),
            Const::Bool(b) => ("bool", Json::Bool(*b)),
            Const::Int(i) => ("int", Json::Number(i.to_string())),
            Const::Nat(n) => ("nat", Json::Number(n.to_string())),
            Const::Dec128(s) => ("dec128", Json::String(s.clone())),
            Const::Text(s) => ("text", Json::String(s.clone())),
            Const::Bytes(b) => ("bytes_b64", Json::String(BASE64.encode(b))),
            Const::TimeNs(n) => ("time_ns", Json::Number(n.to_string())),
            Const::DurationNs(i) => ("duration_ns", Json::Number(i.to_string())),
            Const::Hash(h) => ("hash", Json::String(h.to_string())),
            Const::Uuid(s) => ("uuid", Json::String(s.clone())),
        };
        Json::Object(vec![(k.to_owned(), v)])
    }
}

/// A slot that takes either an expression or a literal value (`emit_effect.params`,
/// `raise_event.event`, `assign.expr`, `end.result`).
///
/// JSON that parses as an [`Expr`] is one; anything else is a literal, kept as JSON to be
/// read later through the slot's schema (either value lens). So `{"text": "hi"}` is always
/// the text constant, never a record with a field `text`; write such a record as an
/// expression (`{"record": {"text": {"text": "hi"}}}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprOrValue {
    /// An expression.
    Expr(Expr),
    /// A literal value, not yet typed.
    Value(Json),
}

impl ExprOrValue {
    /// Renders the slot: the expression's JSON form or the literal as written.
    #[must_use]
    pub fn to_json(&self) -> Json {
        match self {
            ExprOrValue::Expr(x) => x.to_json(),
            ExprOrValue::Value(j) => j.clone(),
        }
    }
}
