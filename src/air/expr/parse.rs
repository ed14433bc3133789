//! Reading expressions from JSON: strict, reporting every problem with its JSON pointer.

use base64::Engine as _;

use super::ast::{Const, Expr, ExprOrValue, Ref};
use super::ops::Op;
use crate::air::diag::{ParseError, Rule, child, comma_list, push_err};
use crate::air::value::{SCALAR_KEYWORDS, is_tag_keyword};
use crate::codec::json::{BASE64, Json};
use crate::object::ObjectId;

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
}

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
        k if SCALAR_KEYWORDS.contains(&k) => parse_const(k, body, &here, e).map(Expr::Const),
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
                                comma_list(Op::ALL.iter().map(|o| o.as_str()))
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
        "int" | "duration_ns" | "nat" | "time_ns" => {
            let Json::Number(lit) = body else {
                return match key {
                    "int" | "duration_ns" => wrong(e, "an integer"),
                    _ => wrong(e, "a non-negative integer"),
                };
            };
            match key {
                "int" => ranged_int(key, lit, "i64", p, e).map(Const::Int),
                "duration_ns" => ranged_int(key, lit, "i64", p, e).map(Const::DurationNs),
                "nat" => ranged_int(key, lit, "u64", p, e).map(Const::Nat),
                _ => ranged_int(key, lit, "u64", p, e).map(Const::TimeNs),
            }
        }
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

/// The integer literal `lit` of constant `key`, in the range of `N` (named `range`).
fn ranged_int<N: TryFrom<i128>>(
    key: &str,
    lit: &str,
    range: &str,
    p: &str,
    e: &mut Vec<ParseError>,
) -> Option<N> {
    match int_literal(lit) {
        Ok(v) => match N::try_from(v) {
            Ok(n) => Some(n),
            Err(_) => number_err(e, p, format!("`{key}` is out of the {range} range")),
        },
        Err(m) => number_err(e, p, m),
    }
}

fn number_err<T>(e: &mut Vec<ParseError>, p: &str, msg: String) -> Option<T> {
    push_err(e, p, Rule::BadNumber, msg);
    None
}

/// Whether `k` is the key of an expression form: a constant, a constructor, `op` or `ref`.
pub(crate) fn is_expr_keyword(k: &str) -> bool {
    k == "op" || k == "ref" || is_tag_keyword(k)
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
    use crate::air::expr::RefRoot;
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
