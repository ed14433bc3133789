//! Reading authoring JSON: the readers every node kind shares (names, identifiers, hashes,
//! numbers, types, expressions, lists, maps, words), each reporting every problem it finds,
//! with its rule, and reading on.

use crate::air::diag::{ParseError, Rule, child, push_err};
use crate::air::expr::{Expr, ExprOrValue, int_literal, parse_expr};
use crate::air::name::{Name, check_dotted, check_ident};
use crate::air::types::Type;
use crate::codec::json::Json;
use crate::codec::shape::{Fields, Member, Problem, ShapeError, Sink};
use crate::object::{ID_LEN, ObjectId};

/// An authoring JSON object being read.
pub(super) type Obj<'v, 'p> = Fields<'v, 'p, Json>;
/// An authoring JSON value being read, and where it sits.
pub(super) type Item<'v, 'p> = Member<'v, 'p, Json>;
/// Where the problems found go.
pub(super) type Problems = Vec<ParseError>;

/// Shape problems in authoring JSON, in the reader's words and rules: an object that lacks a
/// field is `missing-field` at the object, each field it should not have is `unknown-field`
/// at that field, and a value of the wrong JSON type is `wrong-type`.
impl Sink for Vec<ParseError> {
    fn report(&mut self, e: ShapeError) {
        match e.problem {
            Problem::Missing { what, key } => push_err(
                self,
                &e.path,
                Rule::MissingField,
                format!("{what} needs `{key}`"),
            ),
            Problem::Unknown { what, keys } => {
                for k in keys {
                    push_err(
                        self,
                        &child(&e.path, &k),
                        Rule::UnknownField,
                        format!("{what} has no field `{k}`"),
                    );
                }
            }
            p => push_err(self, &e.path, Rule::WrongType, p.to_string()),
        }
    }
}

/// Records a problem at `m`.
pub(super) fn report(e: &mut Problems, m: &Item<'_, '_>, rule: Rule, message: impl Into<String>) {
    push_err(e, &m.path.pointer(), rule, message);
}

/// Builds `S { a, b, … }` from the `Option`s `a`, `b`, … read independently (so that every
/// problem is reported): `None` if any is `None`.
macro_rules! all_some {
    ($($s:ident)::+ { $($x:ident),* $(,)? }) => {
        match ($($x,)*) {
            ($(Some($x),)*) => Some($($s)::+ { $($x),* }),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    };
}
pub(super) use all_some;

/// Reads `m` as the object `what` with `f`, then reports the members `f` did not take.
pub(super) fn object<T>(
    m: Item<'_, '_>,
    what: &'static str,
    e: &mut Problems,
    f: impl FnOnce(&mut Obj<'_, '_>, &mut Problems) -> Option<T>,
) -> Option<T> {
    let mut o = Obj::open_into(m.value, &m.path, what, e)?;
    let v = f(&mut o, e);
    o.finish_into(e);
    v
}

pub(super) fn string<'v>(m: &Item<'v, '_>, what: &str, e: &mut Problems) -> Option<&'v str> {
    match m.value {
        Json::String(s) => Some(s),
        j => {
            report(
                e,
                m,
                Rule::WrongType,
                format!("{what} is a string, found {}", j.type_name()),
            );
            None
        }
    }
}

/// A string that must not be empty.
pub(super) fn nonempty(
    what: &'static str,
) -> impl Fn(Item<'_, '_>, &mut Problems) -> Option<String> {
    move |m, e| {
        let s = string(&m, what, e)?;
        if s.is_empty() {
            report(e, &m, Rule::Empty, format!("{what} must not be empty"));
            return None;
        }
        Some(s.to_owned())
    }
}

pub(super) fn any_text(m: Item<'_, '_>, e: &mut Problems) -> Option<String> {
    string(&m, "the value", e).map(str::to_owned)
}

pub(super) fn qname(m: Item<'_, '_>, e: &mut Problems) -> Option<Name> {
    let s = string(&m, "a name", e)?;
    match Name::new(s) {
        Ok(n) => Some(n),
        Err(err) => {
            report(e, &m, Rule::BadName, err.to_string());
            None
        }
    }
}

/// A small identifier (a step id, a variable, a grant name).
pub(super) fn ident_of(
    what: &'static str,
) -> impl Fn(Item<'_, '_>, &mut Problems) -> Option<String> {
    checked(what, Rule::BadIdent, check_ident)
}

/// A lowercase dotted word (an effect kind, a capability type).
pub(super) fn dotted_of(
    what: &'static str,
) -> impl Fn(Item<'_, '_>, &mut Problems) -> Option<String> {
    checked(what, Rule::BadDotted, check_dotted)
}

/// A string that `check` accepts, else a problem under `rule`.
fn checked<E: ToString>(
    what: &'static str,
    rule: Rule,
    check: impl Fn(&'static str, &str) -> Result<(), E>,
) -> impl Fn(Item<'_, '_>, &mut Problems) -> Option<String> {
    move |m, e| {
        let s = string(&m, what, e)?;
        match check(what, s) {
            Ok(()) => Some(s.to_owned()),
            Err(err) => {
                report(e, &m, rule, err.to_string());
                None
            }
        }
    }
}

/// AgentOS v1 files mark "not filled in yet" with an all-zero SHA-256; read it as aos's
/// all-zero placeholder. Any other `sha256:` value is refused: aos ids are BLAKE3.
const SHA256_PLACEHOLDER: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The all-zero id: a hash not filled in yet.
pub(super) const PLACEHOLDER: ObjectId = ObjectId::from_bytes([0; ID_LEN]);

pub(super) fn hash(m: Item<'_, '_>, e: &mut Problems) -> Option<ObjectId> {
    let s = string(&m, "a hash", e)?;
    if s == SHA256_PLACEHOLDER {
        return Some(PLACEHOLDER);
    }
    match s.parse::<ObjectId>() {
        Ok(h) => Some(h),
        Err(err) => {
            let hint = if s.starts_with("sha256:") {
                " (aos hashes are BLAKE3, `b3:<64 hex digits>`; omit the hash to have it filled)"
            } else {
                ""
            };
            report(e, &m, Rule::BadHash, format!("{err}{hint}"));
            None
        }
    }
}

pub(super) fn nat(m: Item<'_, '_>, e: &mut Problems) -> Option<u64> {
    let Json::Number(lit) = m.value else {
        report(
            e,
            &m,
            Rule::WrongType,
            format!(
                "expected a non-negative integer, found {}",
                m.value.type_name()
            ),
        );
        return None;
    };
    match int_literal(lit)
        .and_then(|v| u64::try_from(v).map_err(|_| format!("{lit} is out of range (0 ..= 2^64-1)")))
    {
        Ok(n) => Some(n),
        Err(msg) => {
            report(e, &m, Rule::BadNumber, msg);
            None
        }
    }
}

pub(super) fn type_ast(m: Item<'_, '_>, e: &mut Problems) -> Option<Type> {
    match Type::from_json(m.value) {
        Ok(t) => Some(t),
        Err(err) => {
            // The type error's pointer is relative to the type; report it at its full place.
            push_err(
                e,
                &format!("{}{}", m.path, err.pointer),
                Rule::BadType,
                err.message,
            );
            None
        }
    }
}

pub(super) fn expr(m: Item<'_, '_>, e: &mut Problems) -> Option<Expr> {
    parse_expr(m.value, &m.path.pointer(), e)
}

pub(super) fn expr_or_value(m: Item<'_, '_>, _e: &mut Problems) -> Option<ExprOrValue> {
    Some(ExprOrValue::from_json(m.value))
}

/// Reads an array, each element with `f`; `None` if anything was wrong.
pub(super) fn list<T>(
    m: Item<'_, '_>,
    e: &mut Problems,
    f: impl Fn(Item<'_, '_>, &mut Problems) -> Option<T>,
) -> Option<Vec<T>> {
    let items = match m.items() {
        Ok(items) => items,
        Err(err) => {
            e.report(err);
            return None;
        }
    };
    let mut out = Vec::with_capacity(m.array().map_or(0, <[Json]>::len));
    let mut ok = true;
    for x in items {
        match f(x, e) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Reads optional member `key` of `o` as an array, each element with `f`; absent = empty.
pub(super) fn opt_list<'v, 'p, T>(
    o: &mut Obj<'v, 'p>,
    key: &'p str,
    e: &mut Problems,
    f: impl Fn(Item<'_, '_>, &mut Problems) -> Option<T>,
) -> Option<Vec<T>> {
    o.opt_default_with(key, e, |m, e| list(m, e, f))
}

/// Reads an object used as a map: keys checked with `key`, values read with `f`, in declared
/// order; `None` if anything was wrong.
pub(super) fn map_of<K, T>(
    m: Item<'_, '_>,
    e: &mut Problems,
    key: impl Fn(&str, &Item<'_, '_>, &mut Problems) -> Option<K>,
    f: impl Fn(Item<'_, '_>, &mut Problems) -> Option<T>,
) -> Option<Vec<(K, T)>> {
    let entries = match m.entries() {
        Ok(entries) => entries,
        Err(err) => {
            e.report(err);
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for entry in entries {
        // Object keys are always text.
        let Ok((k, x)) = entry else {
            ok = false;
            continue;
        };
        let kk = key(k, &x, e);
        let v = f(x, e);
        match (kk, v) {
            (Some(kk), Some(v)) => out.push((kk, v)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// A map key that must be a small identifier.
pub(super) fn ident_key(
    what: &'static str,
) -> impl Fn(&str, &Item<'_, '_>, &mut Problems) -> Option<String> {
    move |k, m, e| match check_ident(what, k) {
        Ok(()) => Some(k.to_owned()),
        Err(err) => {
            report(e, m, Rule::BadIdent, err.to_string());
            None
        }
    }
}

/// A map key that must be a qualified name.
pub(super) fn name_key(k: &str, m: &Item<'_, '_>, e: &mut Problems) -> Option<Name> {
    match Name::new(k) {
        Ok(n) => Some(n),
        Err(err) => {
            report(e, m, Rule::BadName, err.to_string());
            None
        }
    }
}

/// Reads one of `words` (JSON word, value).
pub(super) fn word<T: Copy>(
    m: Item<'_, '_>,
    what: &str,
    words: &[(&str, T)],
    e: &mut Problems,
) -> Option<T> {
    let s = string(&m, what, e)?;
    match words.iter().find(|(w, _)| *w == s) {
        Some((_, v)) => Some(*v),
        None => {
            report(
                e,
                &m,
                Rule::BadEnum,
                format!(
                    "{what} is one of {}, found {s:?}",
                    words
                        .iter()
                        .map(|(w, _)| format!("`{w}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            None
        }
    }
}
