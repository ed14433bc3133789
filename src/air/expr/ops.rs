//! The operators of expressions, each defined once, in one table ([`OPS`]): its JSON name, its
//! arity, its typing rule and its evaluation. The checker types every operator application by
//! this table and the evaluator applies operators through it, so the two cannot disagree on
//! what an operator is; each family's typing and evaluation sit side by side below.
//!
//! Evaluation follows AgentOS v1 (`air-v1.md` §10) where the checker lets it, and says where
//! it cannot: arguments are evaluated eagerly (no short-circuit); integers of every kind
//! compare as wide integers; arithmetic on two integers of one kind stays in that kind and an
//! overflow is an error — also `nat − nat` below zero, which v1 turned into an `int` but the
//! checker types as `nat`; integers of two kinds give an `int`; `div` and `mod` truncate toward
//! zero; `dec128` values compare by numeric value, and `dec128` arithmetic is an error (v1 has
//! none). `concat` joins text, bytes or lists; `has` on a list asks whether the index is in it
//! (as `get` would succeed), on a set whether the element is in it.

use std::cmp::Ordering;
use std::fmt;

use super::val::{Val, dec128_cmp};
use crate::air::types::relate::{comparable, describe, is_integer, peel, same};
use crate::air::types::{Schemas, Type};

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

/// The definition of an operator: one row of [`OPS`].
#[derive(Clone, Copy)]
pub struct OpDef {
    /// The operator.
    pub op: Op,
    /// Its JSON name (`"starts_with"`).
    pub name: &'static str,
    /// How many arguments it takes.
    pub arity: Arity,
    /// Its typing rule: the result type of an application (`None` when it cannot be known),
    /// recording in the [`Operands`] what does not fit.
    pub typing: fn(&mut Operands<'_>) -> Option<Type>,
    /// Its evaluation: the result of applying the operator to evaluated arguments (as many as
    /// its arity allows).
    pub eval: fn(Op, &[Val]) -> Result<Val, OpFault>,
}

/// Why applying an operator to values failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpFault {
    /// An argument is not a value the operator takes.
    #[error("argument {} is {found}; `{op}` takes {expected}", .arg + 1)]
    Operand {
        /// The operator.
        op: Op,
        /// The argument's index, from 0.
        arg: usize,
        /// What the operator takes there.
        expected: &'static str,
        /// What the argument is.
        found: &'static str,
    },
    /// The result does not fit its integer type.
    #[error("the result of `{0}` is out of range")]
    Overflow(Op),
    /// Division or remainder by zero.
    #[error("`{0}` by zero")]
    DivisionByZero(Op),
    /// A list index outside the list.
    #[error("index {index} is outside the list (length {len})")]
    IndexOutOfRange {
        /// The index.
        index: i128,
        /// The list's length.
        len: usize,
    },
    /// `get` of a field a record does not have.
    #[error("the record has no field `{0}`")]
    NoSuchField(String),
    /// `get` of a key a map does not have.
    #[error("the map has no key {0}")]
    NoSuchKey(String),
    /// Arithmetic on `dec128` values, which AIR v1 does not define.
    #[error("`{0}` on dec128 values is not supported (AIR v1 has no decimal arithmetic)")]
    Dec128Arithmetic(Op),
}

impl fmt::Debug for OpDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpDef")
            .field("op", &self.op)
            .field("name", &self.name)
            .field("arity", &self.arity)
            .finish_non_exhaustive()
    }
}

macro_rules! ops {
    ($($(#[$doc:meta])* $v:ident = $s:literal, $arity:expr, $typing:expr, $eval:expr;)*) => {
        /// An operator of an expression (`{"op": NAME, "args": [..]}`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $($(#[$doc])* $v,)*
        }

        impl Op {
            /// Every operator.
            pub const ALL: &[Op] = &[$(Op::$v,)*];
        }

        /// Every operator's definition, in the order of [`Op`]'s variants.
        pub static OPS: &[OpDef] = &[
            $(OpDef { op: Op::$v, name: $s, arity: $arity, typing: $typing, eval: $eval },)*
        ];
    };
}

ops! {
    /// Length of text (characters), bytes, list, set, map or record.
    Len = "len", Arity::Exactly(1), type_len, eval_len;
    /// Field of a record (by text), entry of a map (by key) or element of a list (by index).
    Get = "get", Arity::Exactly(2), type_get_has, eval_get;
    /// Whether a record, map, set or list has a field, key or element.
    Has = "has", Arity::Exactly(2), type_get_has, eval_has;
    /// Equality.
    Eq = "eq", Arity::Exactly(2), type_equality, eval_equality;
    /// Inequality.
    Ne = "ne", Arity::Exactly(2), type_equality, eval_equality;
    /// Less than (numbers or text).
    Lt = "lt", Arity::Exactly(2), type_order, eval_order;
    /// Less than or equal.
    Le = "le", Arity::Exactly(2), type_order, eval_order;
    /// Greater than.
    Gt = "gt", Arity::Exactly(2), type_order, eval_order;
    /// Greater than or equal.
    Ge = "ge", Arity::Exactly(2), type_order, eval_order;
    /// Conjunction of two or more booleans.
    And = "and", Arity::AtLeast(2), type_logic, eval_logic;
    /// Disjunction of two or more booleans.
    Or = "or", Arity::AtLeast(2), type_logic, eval_logic;
    /// Negation.
    Not = "not", Arity::Exactly(1), type_logic, eval_logic;
    /// Concatenation of text, bytes or lists.
    Concat = "concat", Arity::Exactly(2), type_concat, eval_concat;
    /// Addition.
    Add = "add", Arity::Exactly(2), type_arith, eval_arith;
    /// Subtraction.
    Sub = "sub", Arity::Exactly(2), type_arith, eval_arith;
    /// Multiplication.
    Mul = "mul", Arity::Exactly(2), type_arith, eval_arith;
    /// Division.
    Div = "div", Arity::Exactly(2), type_arith, eval_arith;
    /// Remainder.
    Mod = "mod", Arity::Exactly(2), type_arith, eval_arith;
    /// Whether text (bytes) starts with text (bytes).
    StartsWith = "starts_with", Arity::Exactly(2), type_affix, eval_affix;
    /// Whether text (bytes) ends with text (bytes).
    EndsWith = "ends_with", Arity::Exactly(2), type_affix, eval_affix;
    /// Whether text, bytes, a list, set or map contains the second argument.
    Contains = "contains", Arity::Exactly(2), type_contains, eval_contains;
}

impl Op {
    /// The operator's definition.
    #[must_use]
    pub fn def(self) -> &'static OpDef {
        &OPS[self as usize]
    }

    /// The operator's JSON name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.def().name
    }

    /// The operator with JSON name `s`.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Op> {
        OPS.iter().find(|d| d.name == s).map(|d| d.op)
    }

    /// How many arguments the operator takes.
    #[must_use]
    pub fn arity(self) -> Arity {
        self.def().arity
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Typing

/// What a typing rule sees of one operator application, and what it found wrong.
pub struct Operands<'a> {
    /// The operator.
    pub op: Op,
    /// For each argument that is a text constant, its text (`get` and `has` on a record look
    /// at the field name).
    pub texts: &'a [Option<&'a str>],
    /// The argument types, as inferred (`None` where unknown).
    pub types: &'a [Option<Type>],
    /// The argument types with references and options peeled off (`None` where unknown).
    pub peeled: &'a [Option<Type>],
    /// The schemas references resolve against.
    pub schemas: &'a dyn Schemas,
    problems: Vec<(Option<usize>, String)>,
}

impl<'a> Operands<'a> {
    /// The operands of applying `op` to arguments of the inferred `types`, some of them text
    /// constants (`texts`).
    #[must_use]
    pub fn new(
        op: Op,
        texts: &'a [Option<&'a str>],
        types: &'a [Option<Type>],
        peeled: &'a [Option<Type>],
        schemas: &'a dyn Schemas,
    ) -> Self {
        Self {
            op,
            texts,
            types,
            peeled,
            schemas,
            problems: Vec::new(),
        }
    }

    /// What does not fit: the index of the argument concerned (`None` for the application as
    /// a whole) and a message.
    #[must_use]
    pub fn into_problems(self) -> Vec<(Option<usize>, String)> {
        self.problems
    }

    fn problem(&mut self, arg: Option<usize>, message: String) {
        self.problems.push((arg, message));
    }

    fn peeled(&self, i: usize) -> Option<&'a Type> {
        self.peeled.get(i).and_then(Option::as_ref)
    }

    fn inferred(&self, i: usize) -> Option<&'a Type> {
        self.types.get(i).and_then(Option::as_ref)
    }

    /// The two arguments, of types `a` and `b`, do not go together: "`op` `what`; found a and
    /// b".
    fn pair(&mut self, what: &str, a: &Type, b: &Type) {
        let op = self.op;
        self.problem(
            None,
            format!("`{op}` {what}; found {} and {}", describe(a), describe(b)),
        );
    }

    /// Requires argument `i`, if its type is known, to satisfy `ok`.
    fn want(&mut self, i: usize, ok: fn(&Type) -> bool, what: &str) {
        if let Some(t) = self.peeled(i)
            && !ok(t)
        {
            let op = self.op;
            self.problem(
                Some(i),
                format!("`{op}` takes {what}; argument {} is {}", i + 1, describe(t)),
            );
        }
    }
}

/// Argument `arg` (`v`) is not what `op` takes.
fn operand(op: Op, arg: usize, expected: &'static str, v: &Val) -> OpFault {
    OpFault::Operand {
        op,
        arg,
        expected,
        found: v.kind(),
    }
}

fn numeric(t: &Type) -> bool {
    is_integer(t) || matches!(t, Type::Dec128)
}

fn type_len(o: &mut Operands<'_>) -> Option<Type> {
    o.want(
        0,
        |t| {
            matches!(
                t,
                Type::Text
                    | Type::Bytes
                    | Type::List(_)
                    | Type::Set(_)
                    | Type::Map { .. }
                    | Type::Record(_)
            )
        },
        "text, bytes, a list, set, map or record",
    );
    Some(Type::Nat)
}

fn eval_len(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    let n = match &a[0] {
        Val::Text(s) => s.chars().count(),
        Val::Bytes(b) => b.len(),
        Val::List(xs) | Val::Set(xs) => xs.len(),
        Val::Map(kvs) => kvs.len(),
        Val::Record(fs) => fs.len(),
        v => {
            return Err(operand(op, 0, "text, bytes, a list, set, map or record", v));
        }
    };
    Ok(Val::Nat(u64::try_from(n).expect("a length fits u64")))
}

fn type_logic(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..o.types.len() {
        o.want(i, |t| matches!(t, Type::Bool), "booleans");
    }
    Some(Type::Bool)
}

fn eval_logic(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    let mut bools = Vec::with_capacity(a.len());
    for (i, v) in a.iter().enumerate() {
        match v {
            Val::Bool(b) => bools.push(*b),
            v => return Err(operand(op, i, "booleans", v)),
        }
    }
    Ok(Val::Bool(match op {
        Op::Not => !bools[0],
        Op::And => bools.iter().all(|b| *b),
        _ => bools.iter().any(|b| *b),
    }))
}

fn type_equality(o: &mut Operands<'_>) -> Option<Type> {
    if let (Some(a), Some(b)) = (o.inferred(0), o.inferred(1))
        && !comparable(a, b, o.schemas)
    {
        o.pair("compares values of one type", a, b);
    }
    Some(Type::Bool)
}

fn eval_equality(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    Ok(Val::Bool(a[0].same(&a[1]) == (op == Op::Eq)))
}

fn type_order(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..2 {
        o.want(
            i,
            |t| is_integer(t) || matches!(t, Type::Dec128 | Type::Text),
            "numbers or text",
        );
    }
    if let (Some(a), Some(b)) = (o.peeled(0), o.peeled(1)) {
        let class = |t: &Type| {
            if is_integer(t) {
                0
            } else if matches!(t, Type::Dec128) {
                1
            } else {
                2
            }
        };
        if class(a) != class(b) {
            o.pair("compares values of one kind", a, b);
        }
    }
    Some(Type::Bool)
}

fn eval_order(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    let ord = match (&a[0], &a[1]) {
        (Val::Text(x), Val::Text(y)) => x.cmp(y),
        (Val::Dec128(x), Val::Dec128(y)) => dec128_cmp(x, y).unwrap_or(Ordering::Equal),
        (x, y) => match (x.integer(), y.integer()) {
            (Some(m), Some(n)) => m.cmp(&n),
            _ => {
                let orderable =
                    |v: &Val| v.integer().is_some() || matches!(v, Val::Text(_) | Val::Dec128(_));
                let bad = usize::from(orderable(x));
                return Err(operand(op, bad, "numbers or text of one kind", &a[bad]));
            }
        },
    };
    Ok(Val::Bool(match op {
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        _ => ord.is_ge(),
    }))
}

fn type_arith(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..2 {
        o.want(i, numeric, "numbers");
    }
    match (o.peeled(0), o.peeled(1)) {
        (Some(a), Some(b)) if numeric(a) && numeric(b) => {
            if is_integer(a) != is_integer(b) {
                o.pair("does not mix integers and decimals", a, b);
                None
            } else if a == b {
                Some(a.clone())
            } else {
                None
            }
        }
        _ => None,
    }
}

fn eval_arith(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    let (x, y) = (&a[0], &a[1]);
    if let (Val::Dec128(_), Val::Dec128(_)) = (x, y) {
        return Err(OpFault::Dec128Arithmetic(op));
    }
    let (Some(m), Some(n)) = (x.integer(), y.integer()) else {
        let bad = usize::from(x.integer().is_some());
        return Err(operand(op, bad, "integers", &a[bad]));
    };
    let r = match op {
        Op::Add => m.checked_add(n),
        Op::Sub => m.checked_sub(n),
        Op::Mul => m.checked_mul(n),
        _ if n == 0 => return Err(OpFault::DivisionByZero(op)),
        Op::Div => m.checked_div(n),
        _ => m.checked_rem(n),
    };
    let overflow = || OpFault::Overflow(op);
    let r = r.ok_or_else(overflow)?;
    match (x, y) {
        (Val::Nat(_), Val::Nat(_)) => u64::try_from(r).map(Val::Nat),
        (Val::Time(_), Val::Time(_)) => u64::try_from(r).map(Val::Time),
        (Val::Duration(_), Val::Duration(_)) => i64::try_from(r).map(Val::Duration),
        _ => i64::try_from(r).map(Val::Int),
    }
    .map_err(|_| overflow())
}

fn type_concat(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..2 {
        o.want(
            i,
            |t| matches!(t, Type::Text | Type::Bytes | Type::List(_)),
            "text, bytes or lists",
        );
    }
    match (o.peeled(0), o.peeled(1)) {
        (Some(a), Some(b)) => {
            if std::mem::discriminant(a) == std::mem::discriminant(b) {
                // Lists of different element types join, but into no one list type.
                same(a, b, o.schemas).then(|| a.clone())
            } else {
                o.pair("joins values of one kind", a, b);
                None
            }
        }
        _ => None,
    }
}

fn eval_concat(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    Ok(match (&a[0], &a[1]) {
        (Val::Text(x), Val::Text(y)) => Val::Text(format!("{x}{y}")),
        (Val::Bytes(x), Val::Bytes(y)) => Val::Bytes([x.as_slice(), y].concat()),
        (Val::List(x), Val::List(y)) => Val::List([x.as_slice(), y].concat()),
        (x, _) => {
            let bad = usize::from(matches!(x, Val::Text(_) | Val::Bytes(_) | Val::List(_)));
            return Err(operand(
                op,
                bad,
                "text, bytes or lists of one kind",
                &a[bad],
            ));
        }
    })
}

fn type_affix(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..2 {
        o.want(
            i,
            |t| matches!(t, Type::Text | Type::Bytes),
            "text or bytes",
        );
    }
    Some(Type::Bool)
}

fn eval_affix(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    let starts = op == Op::StartsWith;
    Ok(Val::Bool(match (&a[0], &a[1]) {
        (Val::Text(x), Val::Text(y)) if starts => x.starts_with(y.as_str()),
        (Val::Text(x), Val::Text(y)) => x.ends_with(y.as_str()),
        (Val::Bytes(x), Val::Bytes(y)) if starts => x.starts_with(y),
        (Val::Bytes(x), Val::Bytes(y)) => x.ends_with(y),
        (x, _) => {
            let bad = usize::from(matches!(x, Val::Text(_) | Val::Bytes(_)));
            return Err(operand(op, bad, "text or bytes of one kind", &a[bad]));
        }
    }))
}

fn type_contains(o: &mut Operands<'_>) -> Option<Type> {
    o.want(
        0,
        |t| {
            matches!(
                t,
                Type::Text | Type::Bytes | Type::List(_) | Type::Set(_) | Type::Map { .. }
            )
        },
        "text, bytes, a list, set or map",
    );
    if let (Some(c), Some(x)) = (o.peeled(0), o.inferred(1)) {
        let s = o.schemas;
        let fits = match c {
            Type::Text | Type::Bytes => peel(x, s).is_none_or(|y| y == c),
            Type::List(el) | Type::Set(el) => comparable(el, x, s),
            Type::Map { key, .. } => comparable(&key.as_type(), x, s),
            _ => true,
        };
        if !fits {
            o.problem(
                Some(1),
                format!(
                    "`contains` looks for an element of {}; argument 2 is {}",
                    describe(c),
                    describe(x)
                ),
            );
        }
    }
    Some(Type::Bool)
}

fn eval_contains(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    Ok(Val::Bool(match (&a[0], &a[1]) {
        (Val::Text(h), Val::Text(n)) => h.contains(n.as_str()),
        (Val::Bytes(h), Val::Bytes(n)) => n.is_empty() || h.windows(n.len()).any(|w| w == n),
        (Val::List(xs) | Val::Set(xs), x) => xs.iter().any(|e| e.same(x)),
        (Val::Map(kvs), x) => kvs.iter().any(|(k, _)| k.same(x)),
        (Val::Text(_), y) => return Err(operand(op, 1, "text", y)),
        (Val::Bytes(_), y) => return Err(operand(op, 1, "bytes", y)),
        (x, _) => return Err(operand(op, 0, "text, bytes, a list, set or map", x)),
    }))
}

fn type_get_has(o: &mut Operands<'_>) -> Option<Type> {
    let op = o.op;
    let mut out = None;
    match o.peeled(0) {
        Some(Type::Record(fs)) => {
            if let Some(Some(f)) = o.texts.get(1) {
                match fs.get(*f) {
                    Some(ft) => out = Some(ft.clone()),
                    None if op == Op::Get => {
                        let rec = describe(o.inferred(0).unwrap_or(&Type::Unit));
                        o.problem(Some(1), format!("{rec} has no field `{f}`"));
                    }
                    None => {}
                }
            } else if let Some(k) = o.peeled(1)
                && !matches!(k, Type::Text)
            {
                o.problem(
                    Some(1),
                    format!("a record field is named by text, found {}", describe(k)),
                );
            }
        }
        Some(Type::Map { key, value }) => {
            if let Some(k) = o.inferred(1)
                && !comparable(&key.as_type(), k, o.schemas)
            {
                o.problem(
                    Some(1),
                    format!(
                        "the map's keys are {}, found {}",
                        key.as_type().form(),
                        describe(k)
                    ),
                );
            }
            out = Some((**value).clone());
        }
        Some(Type::List(el)) => {
            if op == Op::Get {
                o.want(1, is_integer, "an integer index into a list");
            }
            out = Some((**el).clone());
        }
        Some(Type::Set(_)) if op == Op::Has => {}
        Some(t) => o.problem(
            Some(0),
            format!(
                "`{op}` takes a record, map{} as argument 1, found {}",
                if op == Op::Has {
                    ", set or list"
                } else {
                    " or list"
                },
                describe(t)
            ),
        ),
        None => {}
    }
    if op == Op::Has { Some(Type::Bool) } else { out }
}

/// A map key as text, for messages.
fn key_text(k: &Val) -> String {
    crate::codec::json::to_json(&k.to_value())
}

/// The element at list index `i` (an integer), or why there is none.
fn list_index(op: Op, xs: &[Val], i: &Val) -> Result<Option<usize>, OpFault> {
    let Some(n) = i.integer() else {
        return Err(operand(op, 1, "an integer index into a list", i));
    };
    Ok(usize::try_from(n).ok().filter(|u| *u < xs.len()))
}

fn eval_get(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    match (&a[0], &a[1]) {
        (Val::Record(fs), Val::Text(f)) => fs
            .get(f)
            .cloned()
            .ok_or_else(|| OpFault::NoSuchField(f.clone())),
        (Val::Record(_), k) => Err(operand(op, 1, "a field name (text)", k)),
        (Val::Map(kvs), k) => kvs
            .iter()
            .find(|(x, _)| x.same(k))
            .map(|(_, v)| v.clone())
            .ok_or_else(|| OpFault::NoSuchKey(key_text(k))),
        (Val::List(xs), i) => match list_index(op, xs, i)? {
            Some(u) => Ok(xs[u].clone()),
            None => Err(OpFault::IndexOutOfRange {
                index: i.integer().unwrap_or_default(),
                len: xs.len(),
            }),
        },
        (x, _) => Err(operand(op, 0, "a record, map or list", x)),
    }
}

fn eval_has(op: Op, a: &[Val]) -> Result<Val, OpFault> {
    Ok(Val::Bool(match (&a[0], &a[1]) {
        (Val::Record(fs), Val::Text(f)) => fs.contains_key(f),
        (Val::Record(_), k) => return Err(operand(op, 1, "a field name (text)", k)),
        (Val::Map(kvs), k) => kvs.iter().any(|(x, _)| x.same(k)),
        (Val::Set(xs), x) => xs.iter().any(|e| e.same(x)),
        (Val::List(xs), i) => list_index(op, xs, i)?.is_some(),
        (x, _) => return Err(operand(op, 0, "a record, map, set or list", x)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_follows_the_enum() {
        assert_eq!(OPS.len(), Op::ALL.len());
        for (i, (d, op)) in OPS.iter().zip(Op::ALL).enumerate() {
            assert_eq!(d.op, *op, "row {i}");
            assert_eq!(*op as usize, i);
            assert_eq!(Op::from_name(d.name), Some(*op));
        }
    }
}
