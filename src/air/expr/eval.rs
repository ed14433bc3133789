//! The evaluator of expressions: an [`Expr`] and the values its references name
//! ([`Bindings`]) to a [`Val`], deterministically and without I/O. Operators are applied by
//! their rows of the operator table ([`super::ops::OPS`]), the same rows the checker types
//! them by; every failure is an [`EvalError`] naming what went wrong and the JSON pointer of
//! the sub-expression where (relative to the expression, as the checker's pointers are).
//!
//! Every argument is evaluated, left to right, before an operator is applied, and the first
//! failure is the result. Constructors build what they say: a record with the fields written
//! (so a record built without one of its type's option fields lacks it until the value is
//! canonicalized against that type), a set sorted and without duplicates, a map whose keys
//! must differ. A reference's path steps into record fields and into maps with text keys;
//! stepping into anything else, or to a field or key that is not there, is an error.

use std::collections::BTreeMap;

use super::ast::{Const, Expr, Ref, RefRoot};
use super::ops::{Op, OpFault};
use super::val::Val;
use crate::air::value;
use crate::codec::cbor::MAX_DEPTH;
use crate::codec::json::pointer_escape;

/// The values that references name: the plan's input, variables, step outputs and the event
/// being matched.
pub trait Bindings {
    /// The value bound to `root`, or `None` if nothing is bound there (yet).
    fn get(&self, root: &RefRoot) -> Option<&Val>;
}

impl<S: std::hash::BuildHasher> Bindings for std::collections::HashMap<RefRoot, Val, S> {
    fn get(&self, root: &RefRoot) -> Option<&Val> {
        std::collections::HashMap::get(self, root)
    }
}

/// Why an expression could not be evaluated, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", if pointer.is_empty() { String::new() } else { format!("at {pointer}: ") })]
pub struct EvalError {
    /// JSON pointer (RFC 6901) of the sub-expression that failed, relative to the expression
    /// (`/args/1`, `/record/x`); `""` is the expression itself.
    pub pointer: String,
    /// What went wrong.
    pub kind: EvalErrorKind,
}

/// What went wrong in evaluating an expression.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalErrorKind {
    /// A reference whose root is not bound.
    #[error("`{0}` is not bound")]
    Unbound(String),
    /// A reference whose path leads to nothing: a field or key that is not there, or a
    /// value without fields.
    #[error("`{reference}`: {found} has no field `{field}`")]
    NoField {
        /// The reference, as written.
        reference: String,
        /// The path segment that leads nowhere.
        field: String,
        /// What the value at that point is (`a record`, `null`, `a list`, …).
        found: &'static str,
    },
    /// An operator with a number of arguments its arity does not accept (only possible for
    /// an expression not read from JSON).
    #[error("`{op}` takes {}, given {given}", .op.arity())]
    Arity {
        /// The operator.
        op: Op,
        /// How many arguments it was given.
        given: usize,
    },
    /// An operator could not be applied to its arguments.
    #[error("{0}")]
    Op(#[source] OpFault),
    /// A constant that is not a value of its type (a decimal that does not fit dec128).
    #[error("invalid constant: {0}")]
    Constant(String),
    /// A map constructor with two equal keys.
    #[error("duplicate map key {0}")]
    DuplicateKey(String),
    /// A value nested more deeply than the data model allows.
    #[error("the value nests more than {MAX_DEPTH} levels deep")]
    TooDeep,
}

/// Evaluates `e` with the values `b` binds.
///
/// # Errors
/// [`EvalError`]: the first failure, in evaluation order, with its pointer.
pub fn eval(e: &Expr, b: &dyn Bindings) -> Result<Val, EvalError> {
    let v = eval_at(e, b, "")?;
    if v.depth() > MAX_DEPTH {
        return Err(fail("", EvalErrorKind::TooDeep));
    }
    Ok(v)
}

fn fail(p: &str, kind: EvalErrorKind) -> EvalError {
    EvalError {
        pointer: p.to_owned(),
        kind,
    }
}

fn eval_at(e: &Expr, b: &dyn Bindings, p: &str) -> Result<Val, EvalError> {
    Ok(match e {
        Expr::Const(c) => constant(c).map_err(|m| fail(p, EvalErrorKind::Constant(m)))?,
        Expr::Ref(r) => reference(r, b, p)?,
        Expr::Op { op, args } => {
            if !op.arity().accepts(args.len()) {
                return Err(fail(
                    p,
                    EvalErrorKind::Arity {
                        op: *op,
                        given: args.len(),
                    },
                ));
            }
            let vals = args
                .iter()
                .enumerate()
                .map(|(i, a)| eval_at(a, b, &format!("{p}/args/{i}")))
                .collect::<Result<Vec<_>, _>>()?;
            (op.def().eval)(*op, &vals).map_err(|f| {
                let at = match &f {
                    OpFault::Operand { arg, .. } => format!("{p}/args/{arg}"),
                    _ => p.to_owned(),
                };
                fail(&at, EvalErrorKind::Op(f))
            })?
        }
        Expr::Record(fs) => {
            let mut out = BTreeMap::new();
            for (k, x) in fs {
                let v = eval_at(x, b, &format!("{p}/record/{}", pointer_escape(k)))?;
                out.insert(k.clone(), v);
            }
            Val::Record(out)
        }
        Expr::List(xs) => Val::List(items(xs, b, &format!("{p}/list"))?),
        Expr::Set(xs) => Val::set(items(xs, b, &format!("{p}/set"))?),
        Expr::Map(kvs) => {
            let mut out: Vec<(Val, Val)> = Vec::with_capacity(kvs.len());
            for (i, (k, v)) in kvs.iter().enumerate() {
                let kp = format!("{p}/map/{i}/key");
                let k = eval_at(k, b, &kp)?;
                let v = eval_at(v, b, &format!("{p}/map/{i}/value"))?;
                if out.iter().any(|(x, _)| x.same(&k)) {
                    let shown = crate::codec::json::to_json(&k.to_value());
                    return Err(fail(&kp, EvalErrorKind::DuplicateKey(shown)));
                }
                out.push((k, v));
            }
            Val::Map(out)
        }
        Expr::Variant { tag, value } => {
            let v = match value {
                Some(x) => eval_at(x, b, &format!("{p}/variant/value"))?,
                None => Val::Null,
            };
            Val::Variant(tag.clone(), Box::new(v))
        }
    })
}

fn items(xs: &[Expr], b: &dyn Bindings, p: &str) -> Result<Vec<Val>, EvalError> {
    xs.iter()
        .enumerate()
        .map(|(i, x)| eval_at(x, b, &format!("{p}/{i}")))
        .collect()
}

/// The value of a constant.
fn constant(c: &Const) -> Result<Val, String> {
    Ok(match c {
        Const::Null => Val::Null,
        Const::Bool(b) => Val::Bool(*b),
        Const::Int(i) => Val::Int(*i),
        Const::Nat(n) => Val::Nat(*n),
        Const::Dec128(s) => Val::Dec128(value::canonical_dec128(s).map_err(|e| e.message)?),
        Const::Text(s) => Val::Text(s.clone()),
        Const::Bytes(b) => Val::Bytes(b.clone()),
        Const::TimeNs(n) => Val::Time(*n),
        Const::DurationNs(i) => Val::Duration(*i),
        Const::Hash(h) => Val::Hash(*h),
        Const::Uuid(s) => Val::Uuid(s.clone()),
    })
}

/// The value a reference names: its root's, then down its path.
fn reference(r: &Ref, b: &dyn Bindings, p: &str) -> Result<Val, EvalError> {
    let mut v = b
        .get(&r.root)
        .ok_or_else(|| fail(p, EvalErrorKind::Unbound(r.to_string())))?;
    for seg in &r.path {
        let next = match v {
            Val::Record(fs) => fs.get(seg),
            Val::Map(kvs) => kvs.iter().find_map(|(k, x)| match k {
                Val::Text(t) | Val::Uuid(t) if t == seg => Some(x),
                Val::Hash(h) if h.to_string() == *seg => Some(x),
                _ => None,
            }),
            _ => None,
        };
        v = next.ok_or_else(|| {
            fail(
                p,
                EvalErrorKind::NoField {
                    reference: r.to_string(),
                    field: seg.clone(),
                    found: v.kind(),
                },
            )
        })?;
    }
    Ok(v.clone())
}

#[cfg(test)]
mod tests;
