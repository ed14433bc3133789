//! The operators of expressions, each defined once, in one table ([`OPS`]): its JSON name, its
//! arity and its typing rule. The checker types every operator application by this table; the
//! evaluator applies operators through the same table.

use std::fmt;

use crate::air::types::relate::{comparable, describe, is_integer, peel};
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
    ($($(#[$doc:meta])* $v:ident = $s:literal, $arity:expr, $typing:expr;)*) => {
        /// An operator of an expression (`{"op": NAME, "args": [..]}`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $($(#[$doc])* $v,)*
        }

        /// Every operator's definition, in the order of [`Op`]'s variants.
        pub static OPS: &[OpDef] = &[
            $(OpDef { op: Op::$v, name: $s, arity: $arity, typing: $typing },)*
        ];
    };
}

ops! {
    /// Length of text (characters), bytes, list, set, map or record.
    Len = "len", Arity::Exactly(1), type_len;
    /// Field of a record (by text), entry of a map (by key) or element of a list (by index).
    Get = "get", Arity::Exactly(2), type_get_has;
    /// Whether a record, map, set or list has a field, key or element.
    Has = "has", Arity::Exactly(2), type_get_has;
    /// Equality.
    Eq = "eq", Arity::Exactly(2), type_equality;
    /// Inequality.
    Ne = "ne", Arity::Exactly(2), type_equality;
    /// Less than (numbers or text).
    Lt = "lt", Arity::Exactly(2), type_order;
    /// Less than or equal.
    Le = "le", Arity::Exactly(2), type_order;
    /// Greater than.
    Gt = "gt", Arity::Exactly(2), type_order;
    /// Greater than or equal.
    Ge = "ge", Arity::Exactly(2), type_order;
    /// Conjunction of two or more booleans.
    And = "and", Arity::AtLeast(2), type_logic;
    /// Disjunction of two or more booleans.
    Or = "or", Arity::AtLeast(2), type_logic;
    /// Negation.
    Not = "not", Arity::Exactly(1), type_logic;
    /// Text concatenation.
    Concat = "concat", Arity::Exactly(2), type_concat;
    /// Addition.
    Add = "add", Arity::Exactly(2), type_arith;
    /// Subtraction.
    Sub = "sub", Arity::Exactly(2), type_arith;
    /// Multiplication.
    Mul = "mul", Arity::Exactly(2), type_arith;
    /// Division.
    Div = "div", Arity::Exactly(2), type_arith;
    /// Remainder.
    Mod = "mod", Arity::Exactly(2), type_arith;
    /// Whether text starts with text.
    StartsWith = "starts_with", Arity::Exactly(2), type_affix;
    /// Whether text ends with text.
    EndsWith = "ends_with", Arity::Exactly(2), type_affix;
    /// Whether text, bytes, a list, set or map contains the second argument.
    Contains = "contains", Arity::Exactly(2), type_contains;
}

impl Op {
    /// Every operator.
    pub const ALL: &[Op] = &[
        Op::Len,
        Op::Get,
        Op::Has,
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::And,
        Op::Or,
        Op::Not,
        Op::Concat,
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::Div,
        Op::Mod,
        Op::StartsWith,
        Op::EndsWith,
        Op::Contains,
    ];

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

fn type_logic(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..o.types.len() {
        o.want(i, |t| matches!(t, Type::Bool), "booleans");
    }
    Some(Type::Bool)
}

fn type_equality(o: &mut Operands<'_>) -> Option<Type> {
    if let (Some(a), Some(b)) = (o.inferred(0), o.inferred(1))
        && !comparable(a, b, o.schemas)
    {
        let op = o.op;
        o.problem(
            None,
            format!(
                "`{op}` compares values of one type; found {} and {}",
                describe(a),
                describe(b)
            ),
        );
    }
    Some(Type::Bool)
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
            let op = o.op;
            o.problem(
                None,
                format!(
                    "`{op}` compares values of one kind; found {} and {}",
                    describe(a),
                    describe(b)
                ),
            );
        }
    }
    Some(Type::Bool)
}

fn type_arith(o: &mut Operands<'_>) -> Option<Type> {
    for i in 0..2 {
        o.want(i, numeric, "numbers");
    }
    match (o.peeled(0), o.peeled(1)) {
        (Some(a), Some(b)) if numeric(a) && numeric(b) => {
            if is_integer(a) != is_integer(b) {
                let op = o.op;
                o.problem(
                    None,
                    format!(
                        "`{op}` does not mix integers and decimals; found {} and {}",
                        describe(a),
                        describe(b)
                    ),
                );
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
                Some(a.clone())
            } else {
                o.problem(
                    None,
                    format!(
                        "`concat` joins values of one kind; found {} and {}",
                        describe(a),
                        describe(b)
                    ),
                );
                None
            }
        }
        _ => None,
    }
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
