//! Relations between types: sameness and assignability through references, comparability,
//! field paths, and short descriptions for messages. The expression checker and validation
//! both judge types by these.

use std::collections::BTreeMap;

use super::{Schemas, Type, resolve};

/// `t` with references followed, or `None` if one does not resolve.
fn res<'t>(t: &'t Type, s: &'t dyn Schemas) -> Option<&'t Type> {
    resolve(t, s).ok()
}

/// Deepest type comparison: types nest at most [`crate::codec::cbor::MAX_DEPTH`] deep, and
/// references are followed only through sound (non-recursive) schemas.
const TYPE_DEPTH: usize = 512;

/// Whether two types are the same, following references. Unknown types compare equal (their
/// problem is reported where they are declared).
#[must_use]
pub fn same(a: &Type, b: &Type, s: &dyn Schemas) -> bool {
    same_at(a, b, s, 0)
}

/// Both types resolved, for a comparison at `depth`; `None` where the comparison holds
/// without looking further: the same reference, too deep, or an unknown type.
fn resolve_pair<'t>(
    a: &'t Type,
    b: &'t Type,
    s: &'t dyn Schemas,
    depth: usize,
) -> Option<(&'t Type, &'t Type)> {
    if let (Type::Ref(x), Type::Ref(y)) = (a, b)
        && x == y
    {
        return None;
    }
    if depth > TYPE_DEPTH {
        return None;
    }
    Some((res(a, s)?, res(b, s)?))
}

fn same_at(a: &Type, b: &Type, s: &dyn Schemas, depth: usize) -> bool {
    let Some((a, b)) = resolve_pair(a, b, s, depth) else {
        return true;
    };
    let d = depth + 1;
    match (a, b) {
        (Type::Record(x), Type::Record(y)) | (Type::Variant(x), Type::Variant(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, t)| y.get(k).is_some_and(|u| same_at(t, u, s, d)))
        }
        (Type::List(x), Type::List(y))
        | (Type::Set(x), Type::Set(y))
        | (Type::Option(x), Type::Option(y)) => same_at(x, y, s, d),
        (Type::Map { key: k1, value: v1 }, Type::Map { key: k2, value: v2 }) => {
            k1 == k2 && same_at(v1, v2, s, d)
        }
        _ => a == b,
    }
}

/// Whether `t` is an option (or unknown), so a record may leave a field of type `t` out.
#[must_use]
pub fn is_option(t: &Type, s: &dyn Schemas) -> bool {
    matches!(res(t, s), Some(Type::Option(_)) | None)
}

/// Whether a value of type `from` may stand where `to` is expected: the same type, a value or
/// `null` where an option is expected, a record with the fields of `to` (option fields may be
/// missing), a variant with some of `to`'s alternatives. Unknown types are assignable.
#[must_use]
pub fn assignable(from: &Type, to: &Type, s: &dyn Schemas) -> bool {
    assignable_at(from, to, s, 0)
}

fn assignable_at(from: &Type, to: &Type, s: &dyn Schemas, depth: usize) -> bool {
    let Some((f, t)) = resolve_pair(from, to, s, depth) else {
        return true;
    };
    let d = depth + 1;
    match (f, t) {
        (Type::Unit, Type::Option(_)) => true,
        (Type::Option(x), Type::Option(y)) => assignable_at(x, y, s, d),
        (_, Type::Option(y)) => assignable_at(f, y, s, d),
        (Type::Record(x), Type::Record(y)) => {
            x.iter()
                .all(|(k, ft)| y.get(k).is_some_and(|tt| assignable_at(ft, tt, s, d)))
                && y.iter()
                    .all(|(k, tt)| x.contains_key(k) || is_option(tt, s))
        }
        (Type::Variant(x), Type::Variant(y)) => x
            .iter()
            .all(|(k, ft)| y.get(k).is_some_and(|tt| assignable_at(ft, tt, s, d))),
        (Type::List(x), Type::List(y)) | (Type::Set(x), Type::Set(y)) => assignable_at(x, y, s, d),
        (Type::Map { key: k1, value: v1 }, Type::Map { key: k2, value: v2 }) => {
            k1 == k2 && assignable_at(v1, v2, s, d)
        }
        _ => same_at(f, t, s, d),
    }
}

/// A type with references and options peeled off, for classifying operands; `None` if a
/// reference does not resolve.
#[must_use]
pub fn peel<'t>(t: &'t Type, s: &'t dyn Schemas) -> Option<&'t Type> {
    let mut t = res(t, s)?;
    for _ in 0..TYPE_DEPTH {
        match t {
            Type::Option(x) => t = res(x, s)?,
            _ => return Some(t),
        }
    }
    None
}

/// Whether `t` is one of the integer types (`int`, `nat`, `time`, `duration`), which compare
/// with each other as wide integers.
#[must_use]
pub fn is_integer(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Nat | Type::Time | Type::Duration)
}

/// Whether values of the two types can be compared for equality: integers with integers,
/// `null` with anything, and types one of which is assignable to the other.
#[must_use]
pub fn comparable(a: &Type, b: &Type, s: &dyn Schemas) -> bool {
    let (Some(x), Some(y)) = (peel(a, s), peel(b, s)) else {
        return true;
    };
    matches!(x, Type::Unit)
        || matches!(y, Type::Unit)
        || (is_integer(x) && is_integer(y))
        || assignable(x, y, s)
        || assignable(y, x, s)
}

/// A short description of a type for messages: a schema name, `list<text>`,
/// `record {a, b}`, ….
#[must_use]
pub fn describe(t: &Type) -> String {
    fn fields(fs: &BTreeMap<String, Type>, sep: &str) -> String {
        let mut names: Vec<&str> = fs.keys().map(String::as_str).take(6).collect();
        if fs.len() > 6 {
            names.push("…");
        }
        names.join(sep)
    }
    match t {
        Type::Ref(n) => n.to_string(),
        Type::List(x) => format!("list<{}>", describe(x)),
        Type::Set(x) => format!("set<{}>", describe(x)),
        Type::Option(x) => format!("option<{}>", describe(x)),
        Type::Map { key, value } => {
            format!("map<{}, {}>", key.as_type().form(), describe(value))
        }
        Type::Record(fs) => format!("record {{{}}}", fields(fs, ", ")),
        Type::Variant(fs) => format!("variant {{{}}}", fields(fs, " | ")),
        other => other.form().to_owned(),
    }
}

/// The type of a field path (`a.b`, with `$value` stepping into every alternative of a
/// variant) in `t`.
///
/// # Errors
/// Why the path leads nowhere, in plain words.
pub fn field_type(t: &Type, path: &[&str], s: &dyn Schemas) -> Result<Type, String> {
    field_type_at(t, path, s, 0)
}

fn field_type_at(t: &Type, path: &[&str], s: &dyn Schemas, depth: usize) -> Result<Type, String> {
    let Some((seg, rest)) = path.split_first() else {
        return Ok(t.clone());
    };
    if depth > TYPE_DEPTH {
        return Err("the path is too deep".to_owned());
    }
    let Some(r) = res(t, s) else {
        return Err(format!("{} cannot be resolved", describe(t)));
    };
    match r {
        Type::Record(fs) => match fs.get(*seg) {
            Some(ft) => field_type_at(ft, rest, s, depth + 1),
            None => Err(format!("{} has no field `{seg}`", describe(t))),
        },
        Type::Variant(tags) if *seg == "$value" => {
            let mut found: Option<Type> = None;
            for pt in tags.values() {
                let ft = field_type_at(pt, rest, s, depth + 1)?;
                if let Some(f) = &found {
                    if !same(f, &ft, s) {
                        return Err(format!(
                            "the alternatives of {} disagree on the type of `{}`",
                            describe(t),
                            rest.join(".")
                        ));
                    }
                } else {
                    found = Some(ft);
                }
            }
            found.ok_or_else(|| "a variant without alternatives".to_owned())
        }
        _ => Err(format!(
            "{} has no field `{seg}` (only records have fields; `$value` steps into a variant)",
            describe(t)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::air::name::Name;
    use crate::codec::json::parse_json;

    fn ty(s: &str) -> Type {
        Type::from_json(&parse_json(s).expect("test JSON parses")).expect("test type parses")
    }

    fn schemas() -> BTreeMap<Name, Type> {
        let n = |s: &str| Name::new(s).expect("test name");
        BTreeMap::from([
            (n("a/Id@1"), ty(r#"{"text": {}}"#)),
            (
                n("a/Pair@1"),
                ty(r#"{"record": {"id": {"ref": "a/Id@1"}, "n": {"nat": {}}}}"#),
            ),
            (
                n("a/Res@1"),
                ty(r#"{"variant": {"Ok": {"record": {"code": {"int": {}}}},
                                   "Err": {"record": {"code": {"int": {}}}}}}"#),
            ),
        ])
    }

    #[test]
    fn same_and_assignable_follow_references() {
        let s = schemas();
        assert!(same(&ty(r#"{"ref": "a/Id@1"}"#), &Type::Text, &s));
        assert!(!same(&Type::Text, &Type::Nat, &s));
        let opt = ty(r#"{"option": {"nat": {}}}"#);
        assert!(assignable(&Type::Nat, &opt, &s));
        assert!(assignable(&Type::Unit, &opt, &s));
        assert!(!assignable(&opt, &Type::Nat, &s));
        // A record may leave out option fields of the target, never others.
        let wide = ty(r#"{"record": {"a": {"nat": {}}, "b": {"option": {"text": {}}}}}"#);
        assert!(assignable(
            &ty(r#"{"record": {"a": {"nat": {}}}}"#),
            &wide,
            &s
        ));
        assert!(!assignable(
            &ty(r#"{"record": {"b": {"text": {}}}}"#),
            &wide,
            &s
        ));
        // Unknown types are assignable: their problem is reported where they are declared.
        assert!(assignable(&ty(r#"{"ref": "a/Gone@1"}"#), &Type::Nat, &s));
    }

    #[test]
    fn comparability_and_paths() {
        let s = schemas();
        assert!(comparable(&Type::Int, &Type::Time, &s));
        assert!(comparable(&Type::Unit, &Type::Text, &s));
        assert!(!comparable(&Type::Text, &Type::Bytes, &s));
        let pair = ty(r#"{"ref": "a/Pair@1"}"#);
        assert!(same(
            &field_type(&pair, &["id"], &s).expect("a field"),
            &Type::Text,
            &s
        ));
        let why = field_type(&pair, &["nope"], &s).expect_err("no such field");
        assert!(why.contains("no field `nope`"), "{why}");
        let res = ty(r#"{"ref": "a/Res@1"}"#);
        assert_eq!(field_type(&res, &["$value", "code"], &s), Ok(Type::Int));
        assert_eq!(
            describe(&ty(r#"{"list": {"ref": "a/Id@1"}}"#)),
            "list<a/Id@1>"
        );
    }
}
