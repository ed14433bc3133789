//! Plan expressions (`Expr`): constants, references, operators and constructors, read from
//! and rendered to their JSON form, the `ExprOrValue` slots that also accept literals, their
//! type checker, and the table that defines every operator once.
//!
//! - [`ast`]: the tree ([`Expr`], [`Const`], [`Ref`], [`ExprOrValue`]) and its rendering.
//! - `parse`: reading the tree from JSON ([`Expr::from_json`], [`ExprOrValue::from_json`]).
//! - [`ops`]: the operator table ([`ops::OPS`]): name, arity, typing rule and evaluation of
//!   each operator.
//! - [`check`]: the type checker, which validation runs on every plan expression.
//! - [`val`]: the values expressions compute ([`val::Val`]).
//! - [`eval`]: the evaluator: an expression and the values its references name, to a value.
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

pub mod ast;
pub mod check;
pub mod eval;
pub mod ops;
mod parse;
pub mod val;

pub use ast::{Const, Expr, ExprOrValue, Ref, RefRoot};
pub use ops::{Arity, Op};
pub(crate) use parse::{int_literal, is_expr_keyword, parse_expr};

/// Test strategy: an operator applied to arguments from `args`, kept where its arity
/// accepts their number.
#[cfg(test)]
pub(crate) fn arb_op(
    args: impl proptest::strategy::Strategy<Value = Vec<Expr>>,
) -> impl proptest::strategy::Strategy<Value = Expr> {
    use proptest::prelude::*;
    (prop::sample::select(Op::ALL.to_vec()), args).prop_filter_map("arity", |(op, args)| {
        op.arity()
            .accepts(args.len())
            .then_some(Expr::Op { op, args })
    })
}
