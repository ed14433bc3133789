//! Plan expressions (`Expr`): constants, references, operators and constructors, read from
//! and rendered to their JSON form, and the `ExprOrValue` slots that also accept literals.
//!
//! An expression is a JSON object of one of these shapes (see `docs/air.md`):
//!
//! - a constant: `{"null": {}}`, `{"bool": b}`, `{"int": i}`, `{"nat": n}`, `{"dec128": "s"}`,
//!   `{"text": "s"}`, `{"bytes_b64": "s"}`, `{"time_ns": n}`, `{"duration_ns": i}`,
//!   `{"hash": "b3:…"}`, `{"uuid": "s"}`;
//! - a reference: `{"ref": "@plan.input.a.b"}`, `{"ref": "@var:name.a"}`,
//!   `{"ref": "@step:id.a"}`, `{"ref": "@event.a"}`;
//! - an operator: `{"op": "eq", "args": [e1, e2]}`;
//! - a constructor: `{"record": {"f": e}}`, `{"list": [e]}`, `{"set": [e]}`,
//!   `{"map": [{"key": e, "value": e}]}`, `{"variant": {"tag": "T", "value": e}}` (`value`
//!   omitted for a unit payload).
//!
//! Parsing is strict and reports every problem it finds, each with the JSON pointer of the
//! offending value. A raw JSON `null`, number, string, boolean or array is never an
//! expression.

use std::fmt;

use base64::Engine as _;

use super::diag::{ParseError, Rule, child, push_err};
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
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// How many arguments an operator takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// This many or more.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` arguments fit.
    #[must_use]
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exactly(1) => f.write_str("exactly 1 argument"),
            Arity::Exactly(k) => write!(f, "exactly {k} arguments"),
            Arity::AtLeast(k) => write!(f, "at least {k} arguments"),
        }
    }
}

macro_rules! ops {
    ($($(#[$doc:meta])* $v:ident = $s:literal, $arity:expr;)*) => {
        /// An operator of [`Expr::Op`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $($(#[$doc])* $v,)*
        }

        impl Op {
            /// Every operator.
            pub const ALL: &[Op] = &[$(Op::$v,)*];

            /// The operator's JSON name.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Op::$v => $s,)*
                }
            }

            /// The operator with JSON name `s`.
            #[must_use]
            pub fn from_name(s: &str) -> Option<Op> {
                match s {
                    $($s => Some(Op::$v),)*
                    _ => None,
                }
            }

            /// How many arguments the operator takes.
            #[must_use]
            pub fn arity(self) -> Arity {
                match self {
                    $(Op::$v => $arity,)*
                }
            }
        }
    };
}

ops! {
    /// Length of text (characters), bytes, list, set, map or record.
    Len = "len", Arity::Exactly(1);
    /// Field of a record (by text), entry of a map (by key) or element of a list (by index).
    Get = "get", Arity::Exactly(2);
    /// Whether a record, map, set or list has a field, key or element.
    Has = "has", Arity::Exactly(2);
    /// Equality.
    Eq = "eq", Arity::Exactly(2);
    /// Inequality.
    Ne = "ne", Arity::Exactly(2);
    /// Less than (numbers or text).
    Lt = "lt", Arity::Exactly(2);
    /// Less than or equal.
    Le = "le", Arity::Exactly(2);
    /// Greater than.
    Gt = "gt", Arity::Exactly(2);
    /// Greater than or equal.
    Ge = "ge", Arity::Exactly(2);
    /// Conjunction of two or more booleans.
    And = "and", Arity::AtLeast(2);
    /// Disjunction of two or more booleans.
    Or = "or", Arity::AtLeast(2);
    /// Negation.
    Not = "not", Arity::Exactly(1);
    /// Text concatenation.
    Concat = "concat", Arity::Exactly(2);
    /// Addition.
    Add = "add", Arity::Exactly(2);
    /// Subtraction.
    Sub = "sub", Arity::Exactly(2);
    /// Multiplication.
    Mul = "mul", Arity::Exactly(2);
    /// Division.
    Div = "div", Arity::Exactly(2);
    /// Remainder.
    Mod = "mod", Arity::Exactly(2);
    /// Whether text starts with text.
    StartsWith = "starts_with", Arity::Exactly(2);
    /// Whether text ends with text.
    EndsWith = "ends_with", Arity::Exactly(2);
    /// Whether text, bytes, a list, set or map contains the second argument.
    Contains = "contains", Arity::Exactly(2);
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CONST_KEYS: [&str; 11] = [
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

impl Expr {
    /// Reads an expression; pointers in errors are relative to `j` (`""`).
    ///
    /// # Errors
    /// Every problem found, each with pointer, rule and message.
    pub fn from_json(j: &Json) -> Result<Expr, Vec<ParseError>> {
        Self::from_json_at(j, "")
    }

    /// Reads an expression that sits at JSON pointer `pointer`; errors carry full pointers.
    ///
    /// # Errors
    /// Every problem found, each with pointer, rule and message.
    pub fn from_json_at(j: &Json, pointer: &str) -> Result<Expr, Vec<ParseError>> {
        let mut e = Vec::new();
        match parse_expr(j, pointer, &mut e) {
            Some(x) if e.is_empty() => Ok(x),
            _ => Err(e),
        }
    }

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
    /// Reads the slot: an expression if `j` parses as one, else a literal. Never fails.
    #[must_use]
    pub fn from_json(j: &Json) -> ExprOrValue {
        let mut scratch = Vec::new();
        match parse_expr(j, "", &mut scratch) {
            Some(x) if scratch.is_empty() => ExprOrValue::Expr(x),
            _ => ExprOrValue::Value(j.clone()),
        }
    }

    /// Renders the slot: the expression's JSON form or the literal as written.
    #[must_use]
    pub fn to_json(&self) -> Json {
        match self {
            ExprOrValue::Expr(x) => x.to_json(),
            ExprOrValue::Value(j) => j.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// Reads the expression `j` at pointer `p`, pushing problems to `e`. Returns `None` only if a
/// problem was pushed.
pub(crate) fn parse_expr(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Expr> {
    let Json::Object(members) = j else {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!(
                "an expression is an object such as {{\"ref\": ..}}, {{\"op\": ..}} or \
                 {{\"text\": ..}}, found {}",
                j.type_name()
            ),
        );
        return None;
    };
    let has = |k: &str| members.iter().any(|(m, _)| m == k);
    if has("op") || has("args") {
        return parse_op(members, p, e);
    }
    let [(key, body)] = members.as_slice() else {
        push_err(
            e,
            p,
            Rule::BadExpr,
            format!(
                "an expression has exactly one member (or `op` and `args`), found {}",
                if members.is_empty() {
                    "none".to_owned()
                } else {
                    members
                        .iter()
                        .map(|(k, _)| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        );
        return None;
    };
    let here = child(p, key);
    match key.as_str() {
        "ref" => {
            let Json::String(s) = body else {
                push_err(
                    e,
                    &here,
                    Rule::WrongType,
                    "`ref` takes a string such as \"@var:x\"",
                );
                return None;
            };
            match Ref::parse(s) {
                Ok(r) => Some(Expr::Ref(r)),
                Err(m) => {
                    push_err(e, &here, Rule::BadRef, m);
                    None
                }
            }
        }
        "record" => {
            let Json::Object(fs) = body else {
                push_err(
                    e,
                    &here,
                    Rule::WrongType,
                    "`record` takes an object of field: expression",
                );
                return None;
            };
            let mut out = Vec::with_capacity(fs.len());
            let mut ok = true;
            for (k, x) in fs {
                let px = child(&here, k);
                if k.is_empty() {
                    push_err(e, &px, Rule::BadExpr, "empty field name");
                    ok = false;
                }
                match parse_expr(x, &px, e) {
                    Some(x) => out.push((k.clone(), x)),
                    None => ok = false,
                }
            }
            ok.then_some(Expr::Record(out))
        }
        "list" | "set" => {
            let Json::Array(xs) = body else {
                push_err(
                    e,
                    &here,
                    Rule::WrongType,
                    format!("`{key}` takes an array of expressions"),
                );
                return None;
            };
            let items = parse_all(xs, &here, e)?;
            Some(if key == "list" {
                Expr::List(items)
            } else {
                Expr::Set(items)
            })
        }
        "map" => parse_map(body, &here, e),
        "variant" => parse_variant(body, &here, e),
        k if CONST_KEYS.contains(&k) => parse_const(k, body, &here, e).map(Expr::Const),
        other => {
            push_err(
                e,
                &here,
                Rule::BadExpr,
                format!(
                    "unknown expression form `{other}` (expected a constant, `ref`, `op`, \
                     `record`, `list`, `set`, `map` or `variant`)"
                ),
            );
            None
        }
    }
}

fn parse_all(xs: &[Json], p: &str, e: &mut Vec<ParseError>) -> Option<Vec<Expr>> {
    let mut out = Vec::with_capacity(xs.len());
    let mut ok = true;
    for (i, x) in xs.iter().enumerate() {
        match parse_expr(x, &format!("{p}/{i}"), e) {
            Some(x) => out.push(x),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn parse_op(members: &[(String, Json)], p: &str, e: &mut Vec<ParseError>) -> Option<Expr> {
    let mut op = None;
    let mut args = None;
    let mut ok = true;
    for (k, x) in members {
        let px = child(p, k);
        match k.as_str() {
            "op" => match x {
                Json::String(s) => match Op::from_name(s) {
                    Some(o) => op = Some(o),
                    None => {
                        push_err(
                            e,
                            &px,
                            Rule::BadEnum,
                            format!(
                                "unknown operator {s:?} (expected one of {})",
                                Op::ALL
                                    .iter()
                                    .map(|o| o.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                        ok = false;
                    }
                },
                _ => {
                    push_err(
                        e,
                        &px,
                        Rule::WrongType,
                        "`op` takes an operator name string",
                    );
                    ok = false;
                }
            },
            "args" => match x {
                Json::Array(xs) => match parse_all(xs, &px, e) {
                    Some(v) => args = Some((v, px)),
                    None => ok = false,
                },
                _ => {
                    push_err(
                        e,
                        &px,
                        Rule::WrongType,
                        "`args` takes an array of expressions",
                    );
                    ok = false;
                }
            },
            _ => {
                push_err(
                    e,
                    &px,
                    Rule::UnknownField,
                    format!(
                        "unknown member `{k}` of an operator expression (only `op` and `args`)"
                    ),
                );
                ok = false;
            }
        }
    }
    for (k, have) in [("op", op.is_some()), ("args", args.is_some())] {
        if !have && !members.iter().any(|(m, _)| m == k) {
            push_err(
                e,
                p,
                Rule::MissingField,
                format!("an operator expression needs `{k}`"),
            );
            ok = false;
        }
    }
    let (op, (args, args_ptr)) = (op?, args?);
    if !op.arity().accepts(args.len()) {
        push_err(
            e,
            &args_ptr,
            Rule::BadArity,
            format!("`{op}` takes {}, found {}", op.arity(), args.len()),
        );
        return None;
    }
    ok.then_some(Expr::Op { op, args })
}

fn parse_map(body: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Expr> {
    let Json::Array(entries) = body else {
        push_err(
            e,
            p,
            Rule::WrongType,
            "`map` takes an array of {\"key\": expression, \"value\": expression}",
        );
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let pe = format!("{p}/{i}");
        let Json::Object(kv) = entry else {
            push_err(
                e,
                &pe,
                Rule::WrongType,
                format!(
                    "a map entry is an object {{\"key\", \"value\"}}, found {}",
                    entry.type_name()
                ),
            );
            ok = false;
            continue;
        };
        let (mut k, mut v) = (None, None);
        let mut entry_ok = true;
        for (name, x) in kv {
            let px = child(&pe, name);
            let slot = match name.as_str() {
                "key" => &mut k,
                "value" => &mut v,
                _ => {
                    push_err(
                        e,
                        &px,
                        Rule::UnknownField,
                        format!("unknown member `{name}` of a map entry (only `key` and `value`)"),
                    );
                    entry_ok = false;
                    continue;
                }
            };
            match parse_expr(x, &px, e) {
                Some(x) => *slot = Some(x),
                None => entry_ok = false,
            }
        }
        for (name, have) in [("key", k.is_some()), ("value", v.is_some())] {
            if !have && !kv.iter().any(|(m, _)| m == name) {
                push_err(
                    e,
                    &pe,
                    Rule::MissingField,
                    format!("a map entry needs `{name}`"),
                );
                entry_ok = false;
            }
        }
        match (k, v) {
            (Some(k), Some(v)) if entry_ok => out.push((k, v)),
            _ => ok = false,
        }
    }
    ok.then_some(Expr::Map(out))
}

fn parse_variant(body: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Expr> {
    let Json::Object(m) = body else {
        push_err(
            e,
            p,
            Rule::WrongType,
            "`variant` takes {\"tag\": text, \"value\"?: expression}",
        );
        return None;
    };
    let mut tag = None;
    let mut value = None;
    let mut ok = true;
    for (name, x) in m {
        let px = child(p, name);
        match name.as_str() {
            "tag" => match x {
                Json::String(s) if !s.is_empty() => tag = Some(s.clone()),
                Json::String(_) => {
                    push_err(e, &px, Rule::Empty, "a variant tag is not empty");
                    ok = false;
                }
                _ => {
                    push_err(e, &px, Rule::WrongType, "a variant tag is a string");
                    ok = false;
                }
            },
            "value" => match parse_expr(x, &px, e) {
                Some(x) => value = Some(Box::new(x)),
                None => ok = false,
            },
            _ => {
                push_err(
                    e,
                    &px,
                    Rule::UnknownField,
                    format!("unknown member `{name}` of `variant` (only `tag` and `value`)"),
                );
                ok = false;
            }
        }
    }
    if !m.iter().any(|(k, _)| k == "tag") {
        push_err(e, p, Rule::MissingField, "`variant` needs `tag`");
        ok = false;
    }
    match tag {
        Some(tag) if ok => Some(Expr::Variant { tag, value }),
        _ => None,
    }
}

fn parse_const(key: &str, body: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Const> {
    let wrong = |e: &mut Vec<ParseError>, what: &str| {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!("`{key}` takes {what}, found {}", body.type_name()),
        );
        None
    };
    let bad = |e: &mut Vec<ParseError>, msg: String| {
        push_err(e, p, Rule::BadConst, msg);
        None
    };
    match key {
        "null" => match body {
            Json::Object(m) if m.is_empty() => Some(Const::Null),
            _ => {
                push_err(e, p, Rule::WrongType, "`null` takes an empty object {}");
                None
            }
        },
        "bool" => match body {
            Json::Bool(b) => Some(Const::Bool(*b)),
            _ => wrong(e, "true or false"),
        },
        "int" | "duration_ns" => match body {
            Json::Number(lit) => match int_literal(lit) {
                Ok(v) => match i64::try_from(v) {
                    Ok(i) if key == "int" => Some(Const::Int(i)),
                    Ok(i) => Some(Const::DurationNs(i)),
                    Err(_) => number_err(e, p, format!("`{key}` is out of the i64 range")),
                },
                Err(m) => number_err(e, p, m),
            },
            _ => wrong(e, "an integer"),
        },
        "nat" | "time_ns" => match body {
            Json::Number(lit) => match int_literal(lit) {
                Ok(v) => match u64::try_from(v) {
                    Ok(n) if key == "nat" => Some(Const::Nat(n)),
                    Ok(n) => Some(Const::TimeNs(n)),
                    Err(_) => number_err(e, p, format!("`{key}` is out of the u64 range")),
                },
                Err(m) => number_err(e, p, m),
            },
            _ => wrong(e, "a non-negative integer"),
        },
        "dec128" => match body {
            Json::String(s) if is_decimal(s) => Some(Const::Dec128(s.clone())),
            Json::String(s) => bad(
                e,
                format!("invalid decimal {s:?}: expected [+-]digits[.digits][e[+-]digits]"),
            ),
            _ => wrong(e, "a decimal string"),
        },
        "text" => match body {
            Json::String(s) => Some(Const::Text(s.clone())),
            _ => wrong(e, "a string"),
        },
        "bytes_b64" => match body {
            Json::String(s) => match BASE64.decode(s) {
                Ok(b) if BASE64.encode(&b) == *s => Some(Const::Bytes(b)),
                Ok(_) => bad(e, "non-canonical base64".to_owned()),
                Err(err) => bad(
                    e,
                    format!(
                        "invalid base64 (standard alphabet, `=` padding, zero trailing bits): {err}"
                    ),
                ),
            },
            _ => wrong(e, "a base64 string"),
        },
        "hash" => match body {
            Json::String(s) => match s.parse::<ObjectId>() {
                Ok(h) => Some(Const::Hash(h)),
                Err(err) => {
                    push_err(e, p, Rule::BadHash, err.to_string());
                    None
                }
            },
            _ => wrong(e, "a hash string `b3:<64 hex digits>`"),
        },
        "uuid" => match body {
            Json::String(s) if is_uuid(s) => Some(Const::Uuid(s.to_ascii_lowercase())),
            Json::String(s) => bad(
                e,
                format!("invalid UUID {s:?}: expected 8-4-4-4-12 hex digits"),
            ),
            _ => wrong(e, "a UUID string"),
        },
        _ => None,
    }
}

fn number_err<T>(e: &mut Vec<ParseError>, p: &str, msg: String) -> Option<T> {
    push_err(e, p, Rule::BadNumber, msg);
    None
}

/// Reads a JSON number literal as an integer (no fraction, no exponent); the range check is
/// the caller's.
pub(crate) fn int_literal(lit: &str) -> Result<i128, String> {
    if lit.bytes().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return Err(format!(
            "{lit} is not an integer: fractions and exponents are not allowed"
        ));
    }
    // At most 39 digits fit an i128; anything longer is out of every range we use.
    if lit.trim_start_matches('-').len() > 38 {
        return Err(format!(
            "{} is out of range",
            lit.chars().take(40).collect::<String>()
        ));
    }
    lit.parse::<i128>()
        .map_err(|_| format!("invalid integer {lit:?}"))
}

/// `^[+-]?\d+(\.\d+)?([eE][+-]?\d+)?$`.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// 8-4-4-4-12 hex digits, either case.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::parse_json;

    fn parse(s: &str) -> Result<Expr, Vec<ParseError>> {
        Expr::from_json(&parse_json(s).expect("test JSON parses"))
    }

    fn ok(s: &str) -> Expr {
        match parse(s) {
            Ok(x) => x,
            Err(e) => panic!("{s}: {e:?}"),
        }
    }

    /// Checks that `s` fails with a first problem at `pointer` under `rule`.
    fn fails(s: &str, pointer: &str, rule: Rule) {
        match parse(s) {
            Ok(x) => panic!("{s} parsed as {x:?}"),
            Err(e) => {
                assert!(
                    e.iter().any(|p| p.pointer == pointer && p.rule == rule),
                    "{s}: expected {rule:?} at {pointer:?}, got {e:?}"
                );
            }
        }
    }

    #[test]
    fn constants() {
        let cases: &[(&str, Const)] = &[
            (r#"{"null": {}}"#, Const::Null),
            (r#"{"bool": true}"#, Const::Bool(true)),
            (r#"{"int": -3}"#, Const::Int(-3)),
            (r#"{"int": -9223372036854775808}"#, Const::Int(i64::MIN)),
            (r#"{"nat": 18446744073709551615}"#, Const::Nat(u64::MAX)),
            (r#"{"dec128": "0.2"}"#, Const::Dec128("0.2".into())),
            (r#"{"dec128": "-1.5E+3"}"#, Const::Dec128("-1.5E+3".into())),
            (r#"{"text": "hi"}"#, Const::Text("hi".into())),
            (r#"{"bytes_b64": "AQI="}"#, Const::Bytes(vec![1, 2])),
            (r#"{"time_ns": 0}"#, Const::TimeNs(0)),
            (r#"{"duration_ns": 5}"#, Const::DurationNs(5)),
            (
                r#"{"uuid": "123E4567-e89b-12d3-a456-426614174000"}"#,
                Const::Uuid("123e4567-e89b-12d3-a456-426614174000".into()),
            ),
        ];
        for (s, c) in cases {
            assert_eq!(ok(s), Expr::Const(c.clone()), "{s}");
        }
        let h = format!(r#"{{"hash": "b3:{}"}}"#, "ab".repeat(32));
        assert!(matches!(ok(&h), Expr::Const(Const::Hash(_))));
    }

    #[test]
    fn references() {
        let r = |s: &str| Ref::parse(s);
        assert_eq!(
            r("@plan.input.order_id"),
            Ok(Ref {
                root: RefRoot::PlanInput,
                path: vec!["order_id".into()]
            })
        );
        assert_eq!(
            r("@var:rcpt.status"),
            Ok(Ref {
                root: RefRoot::Var("rcpt".into()),
                path: vec!["status".into()]
            })
        );
        assert_eq!(
            r("@step:fetch.intent_hash"),
            Ok(Ref {
                root: RefRoot::Step("fetch".into()),
                path: vec!["intent_hash".into()]
            })
        );
        assert_eq!(
            r("@event"),
            Ok(Ref {
                root: RefRoot::Event,
                path: vec![]
            })
        );
        assert_eq!(
            r("@plan.input"),
            Ok(Ref {
                root: RefRoot::PlanInput,
                path: vec![]
            })
        );
        for bad in [
            "plan.input",
            "@plan.inputs",
            "@plan.input.",
            "@plan.input..a",
            "@var:",
            "@var:1x",
            "@step:a b",
            "@eventx",
            "@event.a.0",
            "@foo",
            "@var:x.$value",
        ] {
            assert!(r(bad).is_err(), "{bad}");
        }
        for s in ["@plan.input.a.b_c", "@var:x", "@step:s-1.out", "@event.k"] {
            assert_eq!(r(s).map(|x| x.to_string()).as_deref(), Ok(s));
        }
    }

    /// Every expression example of the reference brief (`air-v1.md` §2 and §6), with `..`
    /// placeholders filled in.
    #[test]
    fn brief_examples_parse() {
        let hash = format!(r#"{{"hash": "b3:{}"}}"#, "0f".repeat(32));
        for s in [
            r#"{"null": {}}"#,
            r#"{"bool": true}"#,
            r#"{"int": -3}"#,
            r#"{"nat": 3}"#,
            r#"{"nat": 42}"#,
            r#"{"dec128": "0.2"}"#,
            r#"{"text": "hi"}"#,
            r#"{"bytes_b64": "AQI="}"#,
            r#"{"time_ns": 0}"#,
            r#"{"duration_ns": 5}"#,
            &hash,
            r#"{"uuid": "123e4567-e89b-12d3-a456-426614174000"}"#,
            r#"{"variant": {"tag": "Ok", "value": {"text": "done"}}}"#,
            r#"{"ref": "@plan.input.order_id"}"#,
            r#"{"ref": "@var:rcpt.status"}"#,
            r#"{"ref": "@step:fetch.intent_hash"}"#,
            r#"{"op": "eq", "args": [{"ref": "@var:a"}, {"int": 1}]}"#,
            r#"{"record": {"field": {"text": "x"}}}"#,
            r#"{"list": [{"nat": 1}]}"#,
            r#"{"set": [{"text": "a"}]}"#,
            r#"{"map": [{"key": {"text": "k"}, "value": {"nat": 1}}]}"#,
            r#"{"variant": {"tag": "Ok", "value": {"null": {}}}}"#,
            r#"{"variant": {"tag": "None"}}"#,
        ] {
            let x = ok(s);
            assert_eq!(Expr::from_json(&x.to_json()), Ok(x), "{s}");
        }
    }

    #[test]
    fn operators_and_arity() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.as_str()), Some(*op));
        }
        ok(r#"{"op": "and", "args": [{"bool": true}, {"bool": false}, {"bool": true}]}"#);
        ok(r#"{"args": [{"text": "a"}], "op": "len"}"#);
        fails(r#"{"op": "not", "args": []}"#, "/args", Rule::BadArity);
        fails(
            r#"{"op": "eq", "args": [{"int": 1}]}"#,
            "/args",
            Rule::BadArity,
        );
        fails(
            r#"{"op": "or", "args": [{"bool": true}]}"#,
            "/args",
            Rule::BadArity,
        );
        fails(
            r#"{"op": "pow", "args": [{"int": 1}, {"int": 2}]}"#,
            "/op",
            Rule::BadEnum,
        );
        fails(r#"{"op": "eq"}"#, "", Rule::MissingField);
        fails(r#"{"args": []}"#, "", Rule::MissingField);
        fails(
            r#"{"op": "eq", "args": [{"int": 1}, {"int": 2}], "x": 1}"#,
            "/x",
            Rule::UnknownField,
        );
        fails(
            r#"{"op": "eq", "args": [{"int": 1}, 2]}"#,
            "/args/1",
            Rule::WrongType,
        );
    }

    #[test]
    fn malformed() {
        let table: &[(&str, &str, Rule)] = &[
            ("null", "", Rule::WrongType),
            ("3", "", Rule::WrongType),
            ("{}", "", Rule::BadExpr),
            (r#"{"text": "a", "int": 1}"#, "", Rule::BadExpr),
            (r#"{"const": {"null": {}}}"#, "/const", Rule::BadExpr),
            (r#"{"null": null}"#, "/null", Rule::WrongType),
            (r#"{"int": 1.0}"#, "/int", Rule::BadNumber),
            (r#"{"int": 9223372036854775808}"#, "/int", Rule::BadNumber),
            (r#"{"nat": -1}"#, "/nat", Rule::BadNumber),
            (r#"{"time_ns": -1}"#, "/time_ns", Rule::BadNumber),
            (r#"{"int": "1"}"#, "/int", Rule::WrongType),
            (r#"{"dec128": "1."}"#, "/dec128", Rule::BadConst),
            (r#"{"dec128": 1.5}"#, "/dec128", Rule::WrongType),
            (r#"{"bytes_b64": "AQI"}"#, "/bytes_b64", Rule::BadConst),
            (r#"{"bytes_b64": "AQJ="}"#, "/bytes_b64", Rule::BadConst),
            (r#"{"hash": "sha256:00"}"#, "/hash", Rule::BadHash),
            (r#"{"uuid": "not-a-uuid"}"#, "/uuid", Rule::BadConst),
            (r#"{"ref": "@nope"}"#, "/ref", Rule::BadRef),
            (r#"{"ref": 1}"#, "/ref", Rule::WrongType),
            (r#"{"record": {"a": 1}}"#, "/record/a", Rule::WrongType),
            (
                r#"{"record": {"a/b": null}}"#,
                "/record/a~1b",
                Rule::WrongType,
            ),
            (r#"{"list": {}}"#, "/list", Rule::WrongType),
            (r#"{"set": [{"int": 1}, "x"]}"#, "/set/1", Rule::WrongType),
            (
                r#"{"map": [{"key": {"int": 1}}]}"#,
                "/map/0",
                Rule::MissingField,
            ),
            (
                r#"{"map": [{"key": {"int": 1}, "value": {"int": 1}, "k": 1}]}"#,
                "/map/0/k",
                Rule::UnknownField,
            ),
            (
                r#"{"variant": {"value": {"int": 1}}}"#,
                "/variant",
                Rule::MissingField,
            ),
            (r#"{"variant": {"tag": ""}}"#, "/variant/tag", Rule::Empty),
            (
                r#"{"variant": {"tag": "A", "value": null}}"#,
                "/variant/value",
                Rule::WrongType,
            ),
            (
                r#"{"variant": {"tag": "A", "v": 1}}"#,
                "/variant/v",
                Rule::UnknownField,
            ),
        ];
        for (s, ptr, rule) in table {
            fails(s, ptr, *rule);
        }
    }

    #[test]
    fn reports_every_problem() {
        let e = parse(r#"{"list": [{"int": 1.5}, {"ref": "x"}, {"text": 3}]}"#)
            .expect_err("three bad items");
        let ptrs: Vec<_> = e.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/list/0/int", "/list/1/ref", "/list/2/text"]);
    }

    #[test]
    fn deep_nesting_is_fine() {
        // 255 lists nest 510 JSON levels, near the parser's limit of 512.
        let s = format!(
            r#"{}{{"int": 1}}{}"#,
            r#"{"list": ["#.repeat(255),
            "]}".repeat(255)
        );
        let x = ok(&s);
        assert_eq!(Expr::from_json(&x.to_json()), Ok(x));
        let v = parse_json(&s).expect("test JSON parses");
        assert!(matches!(ExprOrValue::from_json(&v), ExprOrValue::Expr(_)));
    }

    #[test]
    fn expr_or_value() {
        let j = |s: &str| parse_json(s).expect("test JSON parses");
        assert!(matches!(
            ExprOrValue::from_json(&j(r#"{"text": "hi"}"#)),
            ExprOrValue::Expr(_)
        ));
        for lit in [
            "null",
            "42",
            r#""GET""#,
            r#"{"method": "GET", "url": "https://x"}"#,
            r#"{"Start": {"url": "u"}}"#,
            r#"{"record": {"a": 1}}"#,
            r#"{"const": {"null": {}}}"#,
        ] {
            let v = j(lit);
            assert_eq!(
                ExprOrValue::from_json(&v),
                ExprOrValue::Value(v.clone()),
                "{lit}"
            );
            assert_eq!(ExprOrValue::from_json(&v).to_json(), v);
        }
    }

    #[test]
    fn refs_are_collected_in_order() {
        let x = ok(r#"{"op": "and", "args": [
            {"op": "eq", "args": [{"ref": "@event.id"}, {"ref": "@var:correlation_id"}]},
            {"record": {"a": {"ref": "@step:s"}}}]}"#);
        let refs: Vec<String> = x.refs().iter().map(|r| r.to_string()).collect();
        assert_eq!(refs, ["@event.id", "@var:correlation_id", "@step:s"]);
    }
}
