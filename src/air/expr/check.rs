//! The type checker of expressions: every constant, reference, constructor and operator
//! application typed against the schemas, with problems reported where they are. Operators are
//! typed by their rows of the operator table ([`super::ops::OPS`]).
//!
//! The checker does not know plans: what a reference's root (`@plan.input`, `@var:x`,
//! `@step:id`, `@event`) stands for, and whether it is visible where the expression sits, is
//! the [`Env`]'s answer; the checker walks the reference's field path from there.

use std::collections::BTreeMap;

use super::ast::{Const, Expr, Ref};
use super::ops::{Op, Operands};
use crate::air::types::relate::{assignable, describe, is_option, peel, same};
use crate::air::types::{MapKey, Schemas, Type, resolve};
use crate::codec::json::pointer_escape;

/// What kind of problem the checker found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypeRule {
    /// An expression's type does not fit where it is used.
    Mismatch,
    /// A reference's field path does not exist in the type it walks.
    BadPath,
}

/// Where an expression stands, as the checker needs to know it.
pub trait Env {
    /// The schemas that references in types resolve against.
    fn schemas(&self) -> &dyn Schemas;

    /// The type of the value that reference `r`'s root names (its path not yet walked), or
    /// `None` if it is unknown. When the root does not resolve, the environment reports why
    /// (the expression's pointer is `pointer`) and returns `None`.
    fn root(&mut self, r: &Ref, pointer: &str) -> Option<Type>;

    /// Records a problem of the expression at JSON pointer `pointer`.
    fn report(&mut self, pointer: &str, rule: TypeRule, message: String);
}

/// Checks `e`, which sits at JSON pointer `p`, against the expected type `t`.
pub fn check(env: &mut dyn Env, e: &Expr, p: &str, t: &Type) {
    Checker { env }.check(e, p, t);
}

/// Infers the type of `e`, which sits at JSON pointer `p`, where it can (`None` where it
/// cannot), checking what it refers to and the operators it applies.
pub fn infer(env: &mut dyn Env, e: &Expr, p: &str) -> Option<Type> {
    Checker { env }.infer(e, p)
}

/// The type of a constant.
#[must_use]
pub fn const_type(c: &Const) -> Type {
    match c {
        Const::Null => Type::Unit,
        Const::Bool(_) => Type::Bool,
        Const::Int(_) => Type::Int,
        Const::Nat(_) => Type::Nat,
        Const::Dec128(_) => Type::Dec128,
        Const::Text(_) => Type::Text,
        Const::Bytes(_) => Type::Bytes,
        Const::TimeNs(_) => Type::Time,
        Const::DurationNs(_) => Type::Duration,
        Const::Hash(_) => Type::Hash,
        Const::Uuid(_) => Type::Uuid,
    }
}

/// What an expression is, for messages: `` `@var:x` ``, `a nat constant`, `a record`, ….
#[must_use]
pub fn expr_form(e: &Expr) -> String {
    match e {
        Expr::Const(Const::Null) => "`{\"null\": {}}`".to_owned(),
        Expr::Const(c) => format!("a {} constant", describe(&const_type(c))),
        Expr::Ref(r) => format!("`{r}`"),
        Expr::Op { op, .. } => format!("`{op}`"),
        Expr::Record(_) => "a record".to_owned(),
        Expr::List(_) => "a list".to_owned(),
        Expr::Set(_) => "a set".to_owned(),
        Expr::Map(_) => "a map".to_owned(),
        Expr::Variant { tag, .. } => format!("variant `{tag}`"),
    }
}

fn res<'t>(t: &'t Type, s: &'t dyn Schemas) -> Option<&'t Type> {
    resolve(t, s).ok()
}

fn at(p: &str, key: &str) -> String {
    format!("{p}/{}", pointer_escape(key))
}

/// The one type of the elements of a constructor, as far as inferred.
enum Common {
    /// No element yet.
    Empty,
    /// Every element so far has this type.
    All(Type),
    /// Some element's type is unknown, or two differ.
    Unknown,
}

impl Common {
    fn join(&mut self, t: Option<Type>, s: &dyn Schemas) {
        *self = match (std::mem::replace(self, Common::Unknown), t) {
            (Common::Empty, Some(t)) => Common::All(t),
            (Common::All(a), Some(b)) if same(&a, &b, s) => Common::All(a),
            _ => Common::Unknown,
        };
    }

    fn get(self) -> Option<Type> {
        match self {
            Common::All(t) => Some(t),
            Common::Empty | Common::Unknown => None,
        }
    }
}

struct Checker<'e> {
    env: &'e mut dyn Env,
}

impl Checker<'_> {
    fn report(&mut self, rule: TypeRule, p: &str, message: String) {
        self.env.report(p, rule, message);
    }

    /// Checks `e` against the expected type `t`.
    fn check(&mut self, e: &Expr, p: &str, t: &Type) {
        let Some(rt) = res(t, self.env.schemas()).cloned() else {
            self.infer(e, p);
            return;
        };
        match (e, &rt) {
            (Expr::Const(Const::Null), Type::Option(_) | Type::Unit) => {}
            (Expr::Ref(_) | Expr::Op { .. }, _) => {
                if let Some(it) = self.infer(e, p)
                    && !assignable(&it, t, self.env.schemas())
                {
                    self.report(
                        TypeRule::Mismatch,
                        p,
                        format!(
                            "expected {}, found {} of type {}",
                            describe(t),
                            expr_form(e),
                            describe(&it)
                        ),
                    );
                }
            }
            // AgentOS v1 also writes an option as the variant `None` / `Some {value}`: accept
            // it where the option does not hold a variant of its own.
            (Expr::Variant { tag, value }, Type::Option(inner))
                if tag == "None"
                    && matches!(value.as_deref(), None | Some(Expr::Const(Const::Null)))
                    && !matches!(
                        peel(inner, self.env.schemas()),
                        Some(Type::Variant(_)) | None
                    ) => {}
            (
                Expr::Variant {
                    tag,
                    value: Some(x),
                },
                Type::Option(inner),
            ) if tag == "Some"
                && !matches!(
                    peel(inner, self.env.schemas()),
                    Some(Type::Variant(_)) | None
                ) =>
            {
                self.check(x, &format!("{p}/variant/value"), inner);
            }
            (Expr::Variant { tag, .. }, Type::Option(inner))
                if !matches!(
                    peel(inner, self.env.schemas()),
                    Some(Type::Variant(_)) | None
                ) =>
            {
                self.infer(e, p);
                self.report(
                    TypeRule::Mismatch,
                    p,
                    format!(
                        "expected {}, found variant `{tag}`: an option is `{{\"null\": {{}}}}` \
                         (none) or the value itself (some); AgentOS's `None` / `Some` variants \
                         are also read, any other tag is not",
                        describe(t)
                    ),
                );
            }
            (_, Type::Option(inner)) => self.check(e, p, inner),
            (Expr::Const(c), _) => {
                let ct = const_type(c);
                if !same(&ct, &rt, self.env.schemas()) {
                    self.report(
                        TypeRule::Mismatch,
                        p,
                        format!("expected {}, found {}", describe(t), expr_form(e)),
                    );
                }
            }
            (Expr::Record(fs), Type::Record(ft)) => {
                let rp = format!("{p}/record");
                for (k, x) in fs {
                    let fp = at(&rp, k);
                    match ft.get(k) {
                        Some(t2) => self.check(x, &fp, t2),
                        None => {
                            self.infer(x, &fp);
                            self.report(
                                TypeRule::Mismatch,
                                &fp,
                                format!("{} has no field `{k}`", describe(t)),
                            );
                        }
                    }
                }
                for (k, t2) in ft {
                    if !fs.iter().any(|(f, _)| f == k) && !is_option(t2, self.env.schemas()) {
                        self.report(
                            TypeRule::Mismatch,
                            p,
                            format!(
                                "field `{k}` ({}) of {} is missing",
                                describe(t2),
                                describe(t)
                            ),
                        );
                    }
                }
            }
            (Expr::Variant { tag, value }, Type::Variant(tags)) => match tags.get(tag) {
                None => {
                    if let Some(x) = value {
                        self.infer(x, &format!("{p}/variant/value"));
                    }
                    self.report(
                        TypeRule::Mismatch,
                        &format!("{p}/variant/tag"),
                        format!("{} has no alternative `{tag}`", describe(t)),
                    );
                }
                Some(pt) => match value {
                    Some(x) => self.check(x, &format!("{p}/variant/value"), pt),
                    None => {
                        let unit = matches!(
                            res(pt, self.env.schemas()),
                            None | Some(Type::Unit | Type::Option(_))
                        );
                        if !unit {
                            self.report(
                                TypeRule::Mismatch,
                                &format!("{p}/variant"),
                                format!(
                                    "alternative `{tag}` of {} carries {}: give a `value`",
                                    describe(t),
                                    describe(pt)
                                ),
                            );
                        }
                    }
                },
            },
            (Expr::List(xs), Type::List(el)) | (Expr::Set(xs), Type::Set(el)) => {
                let key = if matches!(e, Expr::List(_)) {
                    "list"
                } else {
                    "set"
                };
                for (i, x) in xs.iter().enumerate() {
                    self.check(x, &format!("{p}/{key}/{i}"), el);
                }
            }
            (Expr::Map(kvs), Type::Map { key, value }) => {
                for (i, (k, v)) in kvs.iter().enumerate() {
                    self.check(k, &format!("{p}/map/{i}/key"), key.type_ref());
                    self.check(v, &format!("{p}/map/{i}/value"), value);
                }
            }
            _ => {
                self.infer(e, p);
                self.report(
                    TypeRule::Mismatch,
                    p,
                    format!("expected {}, found {}", describe(t), expr_form(e)),
                );
            }
        }
    }

    /// Infers the type of `e` where it can, checking what it refers to.
    fn infer(&mut self, e: &Expr, p: &str) -> Option<Type> {
        match e {
            Expr::Const(c) => Some(const_type(c)),
            Expr::Ref(r) => self.reference(r, p),
            Expr::Op { op, args } => self.op(*op, args, p),
            Expr::Record(fs) => {
                let mut m = BTreeMap::new();
                let mut all = true;
                for (k, x) in fs {
                    match self.infer(x, &at(&format!("{p}/record"), k)) {
                        Some(t) => {
                            m.insert(k.clone(), t);
                        }
                        None => all = false,
                    }
                }
                all.then_some(Type::Record(m))
            }
            Expr::List(xs) | Expr::Set(xs) => {
                let key = if matches!(e, Expr::List(_)) {
                    "list"
                } else {
                    "set"
                };
                let mut el = Common::Empty;
                for (i, x) in xs.iter().enumerate() {
                    let t = self.infer(x, &format!("{p}/{key}/{i}"));
                    el.join(t, self.env.schemas());
                }
                let el = Box::new(el.get()?);
                Some(if key == "list" {
                    Type::List(el)
                } else {
                    Type::Set(el)
                })
            }
            Expr::Map(kvs) => {
                let (mut kt, mut vt) = (Common::Empty, Common::Empty);
                for (i, (k, v)) in kvs.iter().enumerate() {
                    let a = self.infer(k, &format!("{p}/map/{i}/key"));
                    let b = self.infer(v, &format!("{p}/map/{i}/value"));
                    kt.join(a, self.env.schemas());
                    vt.join(b, self.env.schemas());
                }
                let key = MapKey::from_type(res(&kt.get()?, self.env.schemas())?)?;
                Some(Type::Map {
                    key,
                    value: Box::new(vt.get()?),
                })
            }
            Expr::Variant { value, .. } => {
                if let Some(x) = value {
                    self.infer(x, &format!("{p}/variant/value"));
                }
                None
            }
        }
    }

    /// The type of a reference: its root's, then down its field path.
    fn reference(&mut self, r: &Ref, p: &str) -> Option<Type> {
        let mut t = self.env.root(r, p)?;
        for seg in &r.path {
            let cur = peel(&t, self.env.schemas())?.clone();
            match &cur {
                Type::Record(fs) => match fs.get(seg) {
                    Some(ft) => t = ft.clone(),
                    None => {
                        self.report(
                            TypeRule::BadPath,
                            p,
                            format!("`{r}`: {} has no field `{seg}`", describe(&t)),
                        );
                        return None;
                    }
                },
                Type::Map { key, value } if key.is_textual() => t = (**value).clone(),
                Type::Variant(_) => return None,
                other => {
                    self.report(
                        TypeRule::BadPath,
                        p,
                        format!(
                            "`{r}`: {} has no fields, so `.{seg}` leads nowhere",
                            describe(other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(t)
    }

    /// The type of an operator application, by the operator's typing rule.
    fn op(&mut self, op: Op, args: &[Expr], p: &str) -> Option<Type> {
        let types: Vec<Option<Type>> = args
            .iter()
            .enumerate()
            .map(|(i, a)| self.infer(a, &format!("{p}/args/{i}")))
            .collect();
        let schemas = self.env.schemas();
        let peeled: Vec<Option<Type>> = types
            .iter()
            .map(|t| t.as_ref().and_then(|t| peel(t, schemas)).cloned())
            .collect();
        let texts: Vec<Option<&str>> = args
            .iter()
            .map(|a| match a {
                Expr::Const(Const::Text(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        let mut operands = Operands::new(op, &texts, &types, &peeled, schemas);
        let result = (op.def().typing)(&mut operands);
        for (i, m) in operands.into_problems() {
            let ptr = match i {
                Some(i) => format!("{p}/args/{i}"),
                None => p.to_owned(),
            };
            self.report(TypeRule::Mismatch, &ptr, m);
        }
        result
    }
}
