use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::air::expr::Arity;
use crate::air::expr::check::{self, Env, TypeRule};
use crate::air::name::Name;
use crate::air::types::{Schemas, Type};
use crate::codec::json::{Json, parse_json, pointer_position};

// ---------------------------------------------------------------------------------------------
// A world to evaluate in

const INPUT_SCHEMA: &str = r#"{"record": {
    "n": {"nat": {}}, "i": {"int": {}}, "t": {"text": {}}, "b": {"bytes": {}},
    "ok": {"bool": {}}, "d": {"dec128": {}}, "when": {"time": {}}, "dur": {"duration": {}},
    "h": {"hash": {}}, "u": {"uuid": {}},
    "tags": {"list": {"text": {}}}, "nums": {"list": {"nat": {}}}, "s": {"set": {"nat": {}}},
    "m": {"map": {"key": {"text": {}}, "value": {"nat": {}}}},
    "mi": {"map": {"key": {"int": {}}, "value": {"text": {}}}},
    "o": {"option": {"nat": {}}},
    "r": {"record": {"x": {"int": {}}, "y": {"text": {}}}},
    "v": {"variant": {"A": {"unit": {}}, "B": {"nat": {}}}}
}}"#;

/// Inputs with ordinary and edge values.
const INPUTS: [&str; 3] = [
    r#"{"n": 3, "i": -2, "t": "ab", "b": "AQI=", "ok": true, "d": "1.5", "when": 10, "dur": -5,
        "h": "b3:0000000000000000000000000000000000000000000000000000000000000000",
        "u": "123e4567-e89b-12d3-a456-426614174000",
        "tags": ["a", "b"], "nums": [1, 2, 2], "s": [3, 1], "m": {"k1": 1, "k2": 2},
        "mi": [[1, "one"], [-1, "minus"]], "o": 7, "r": {"x": 1, "y": "why"}, "v": {"B": 4}}"#,
    r#"{"n": 18446744073709551615, "i": -9223372036854775808, "t": "", "b": "", "ok": false,
        "d": "-1E+40", "when": 0, "dur": 9223372036854775807,
        "h": "b3:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "u": "00000000-0000-0000-0000-000000000000",
        "tags": [], "nums": [], "s": [], "m": {}, "mi": [], "o": null,
        "r": {"x": 0, "y": ""}, "v": "A"}"#,
    r#"{"n": 0, "i": 9223372036854775807, "t": "ab", "b": "AQI=", "ok": true, "d": "0",
        "when": 18446744073709551615, "dur": 0,
        "h": "b3:0000000000000000000000000000000000000000000000000000000000000000",
        "u": "123e4567-e89b-12d3-a456-426614174000",
        "tags": ["ab"], "nums": [0], "s": [0], "m": {"k1": 18446744073709551615},
        "mi": [[0, "zero"]], "o": 0, "r": {"x": -1, "y": "ab"}, "v": {"B": 0}}"#,
];

struct World {
    schemas: BTreeMap<Name, Type>,
    types: HashMap<RefRoot, Type>,
    values: HashMap<RefRoot, Val>,
}

fn ty(s: &str) -> Type {
    Type::from_json(&parse_json(s).expect("test JSON")).expect("test type")
}

fn world(input: &str) -> World {
    let name = Name::new("t/In@1").expect("test name");
    let schemas = BTreeMap::from([(name.clone(), ty(INPUT_SCHEMA))]);
    let roots: [(RefRoot, Type, &str); 4] = [
        (RefRoot::PlanInput, Type::Ref(name), input),
        (RefRoot::Var("x".into()), Type::Nat, "5"),
        (
            RefRoot::Var("none".into()),
            ty(r#"{"option": {"text": {}}}"#),
            "null",
        ),
        (
            RefRoot::Step("s1".into()),
            ty(r#"{"record": {"code": {"int": {}}}}"#),
            r#"{"code": 200}"#,
        ),
    ];
    let mut types = HashMap::new();
    let mut values = HashMap::new();
    for (root, t, json) in roots {
        let j = parse_json(json).expect("test JSON");
        let v = crate::air::value::from_json(&j, &t, &schemas).expect("test value fits");
        values.insert(
            root.clone(),
            Val::from_value(&v, &t, &schemas).expect("test value reads"),
        );
        types.insert(root, t);
    }
    World {
        schemas,
        types,
        values,
    }
}

/// The checker's view of the world: root types, and the problems found.
struct TestEnv<'w> {
    w: &'w World,
    problems: Vec<(String, String)>,
}

impl Env for TestEnv<'_> {
    fn schemas(&self) -> &dyn Schemas {
        &self.w.schemas
    }

    fn root(&mut self, r: &Ref, pointer: &str) -> Option<Type> {
        let t = self.w.types.get(&r.root).cloned();
        if t.is_none() {
            self.problems
                .push((pointer.to_owned(), format!("`{r}` is not bound")));
        }
        t
    }

    fn report(&mut self, pointer: &str, _: TypeRule, message: String) {
        self.problems.push((pointer.to_owned(), message));
    }
}

fn expr(s: &str) -> Expr {
    Expr::from_json(&parse_json(s).expect("test JSON")).expect("test expression")
}

fn run(s: &str) -> Result<Val, EvalError> {
    eval(&expr(s), &world(INPUTS[0]).values)
}

fn ok(s: &str) -> Val {
    run(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> EvalError {
    run(s).expect_err(&format!("{s} fails to evaluate"))
}

// ---------------------------------------------------------------------------------------------
// Semantics, case by case

#[test]
fn constants_references_and_constructors() {
    assert_eq!(ok(r#"{"dec128": "1.50"}"#), Val::Dec128("1.5".into()));
    assert_eq!(ok(r#"{"ref": "@plan.input.n"}"#), Val::Nat(3));
    assert_eq!(ok(r#"{"ref": "@plan.input.m.k2"}"#), Val::Nat(2));
    assert_eq!(ok(r#"{"ref": "@step:s1.code"}"#), Val::Int(200));
    assert_eq!(
        ok(r#"{"set": [{"nat": 2}, {"nat": 1}, {"nat": 2}]}"#),
        Val::Set(vec![Val::Nat(1), Val::Nat(2)])
    );
    assert_eq!(
        ok(r#"{"variant": {"tag": "A"}}"#),
        Val::Variant("A".into(), Box::new(Val::Null))
    );
    let r = ok(r#"{"record": {"a": {"ref": "@var:x"}, "b": {"list": []}}}"#);
    assert_eq!(
        r,
        Val::Record(BTreeMap::from([
            ("a".into(), Val::Nat(5)),
            ("b".into(), Val::List(vec![]))
        ]))
    );
}

#[test]
fn operators_follow_v1() {
    let cases: &[(&str, Val)] = &[
        (r#"{"op": "len", "args": [{"text": "héé"}]}"#, Val::Nat(3)),
        (
            r#"{"op": "len", "args": [{"ref": "@plan.input.r"}]}"#,
            Val::Nat(2),
        ),
        (
            r#"{"op": "eq", "args": [{"nat": 1}, {"int": 1}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "lt", "args": [{"time_ns": 5}, {"duration_ns": 6}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "gt", "args": [{"dec128": "10"}, {"dec128": "9.99"}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "le", "args": [{"text": "ab"}, {"text": "b"}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "and", "args": [{"bool": true}, {"bool": true}, {"bool": false}]}"#,
            Val::Bool(false),
        ),
        (
            r#"{"op": "div", "args": [{"int": -7}, {"int": 2}]}"#,
            Val::Int(-3),
        ),
        (
            r#"{"op": "mod", "args": [{"int": -7}, {"int": 2}]}"#,
            Val::Int(-1),
        ),
        (
            r#"{"op": "sub", "args": [{"nat": 2}, {"int": 5}]}"#,
            Val::Int(-3),
        ),
        (
            r#"{"op": "add", "args": [{"time_ns": 2}, {"time_ns": 5}]}"#,
            Val::Time(7),
        ),
        (
            r#"{"op": "concat", "args": [{"text": "a"}, {"text": "b"}]}"#,
            Val::Text("ab".into()),
        ),
        (
            r#"{"op": "starts_with", "args": [{"bytes_b64": "AQID"}, {"bytes_b64": "AQI="}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "contains", "args": [{"ref": "@plan.input.m"}, {"text": "k1"}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "contains", "args": [{"ref": "@plan.input.s"}, {"int": 3}]}"#,
            Val::Bool(true),
        ),
        (
            r#"{"op": "get", "args": [{"ref": "@plan.input.mi"}, {"nat": 1}]}"#,
            Val::Text("one".into()),
        ),
        (
            r#"{"op": "get", "args": [{"ref": "@plan.input.nums"}, {"nat": 1}]}"#,
            Val::Nat(2),
        ),
        (
            r#"{"op": "has", "args": [{"ref": "@plan.input.nums"}, {"int": 3}]}"#,
            Val::Bool(false),
        ),
        (
            r#"{"op": "has", "args": [{"ref": "@plan.input.r"}, {"text": "y"}]}"#,
            Val::Bool(true),
        ),
    ];
    for (s, want) in cases {
        assert_eq!(&ok(s), want, "{s}");
    }
}

#[test]
fn failures_are_typed_and_located() {
    let e = err(
        r#"{"op": "div", "args": [{"nat": 1}, {"op": "sub", "args": [{"nat": 1}, {"nat": 1}]}]}"#,
    );
    assert_eq!(e.pointer, "");
    assert_eq!(e.kind, EvalErrorKind::Op(OpFault::DivisionByZero(Op::Div)));
    let e = err(r#"{"list": [{"op": "sub", "args": [{"nat": 1}, {"nat": 2}]}]}"#);
    assert_eq!(e.pointer, "/list/0");
    assert_eq!(e.kind, EvalErrorKind::Op(OpFault::Overflow(Op::Sub)));
    let e = err(r#"{"op": "mul", "args": [{"int": 9223372036854775807}, {"int": 2}]}"#);
    assert_eq!(e.kind, EvalErrorKind::Op(OpFault::Overflow(Op::Mul)));
    let e = err(r#"{"op": "div", "args": [{"int": -9223372036854775808}, {"int": -1}]}"#);
    assert_eq!(e.kind, EvalErrorKind::Op(OpFault::Overflow(Op::Div)));
    let e = err(r#"{"op": "add", "args": [{"dec128": "1"}, {"dec128": "2"}]}"#);
    assert_eq!(
        e.kind,
        EvalErrorKind::Op(OpFault::Dec128Arithmetic(Op::Add))
    );
    let e = err(r#"{"op": "get", "args": [{"ref": "@plan.input.nums"}, {"int": -1}]}"#);
    assert_eq!(
        e.kind,
        EvalErrorKind::Op(OpFault::IndexOutOfRange { index: -1, len: 3 })
    );
    let e = err(r#"{"op": "and", "args": [{"bool": true}, {"ref": "@plan.input.o"}]}"#);
    assert_eq!(e.pointer, "/args/1");
    assert!(
        matches!(
            e.kind,
            EvalErrorKind::Op(OpFault::Operand {
                arg: 1,
                found: "a nat",
                ..
            })
        ),
        "{e}"
    );
    let e = err(r#"{"ref": "@var:nope"}"#);
    assert_eq!(e.kind, EvalErrorKind::Unbound("@var:nope".into()));
    let e = err(r#"{"record": {"a/b": {"ref": "@plan.input.r.z"}}}"#);
    assert_eq!(e.pointer, "/record/a~1b");
    assert!(
        matches!(&e.kind, EvalErrorKind::NoField { field, .. } if field == "z"),
        "{e}"
    );
    let e = err(r#"{"map": [{"key": {"nat": 1}, "value": {"null": {}}},
                            {"key": {"int": 1}, "value": {"null": {}}}]}"#);
    assert_eq!(e.pointer, "/map/1/key");
    assert_eq!(e.kind, EvalErrorKind::DuplicateKey("1".into()));
    // Eager: the second argument's failure is reported though the first decides `or`.
    let e = err(r#"{"op": "or", "args": [{"bool": true}, {"ref": "@var:nope"}]}"#);
    assert_eq!(e.pointer, "/args/1");
    assert_eq!(
        e.to_string(),
        "at /args/1: `@var:nope` is not bound",
        "errors render with their pointer"
    );
    // An arity the parser would refuse, built by hand.
    let bad = Expr::Op {
        op: Op::Not,
        args: vec![],
    };
    let e = eval(&bad, &world(INPUTS[0]).values).expect_err("wrong arity");
    assert_eq!(
        e.kind,
        EvalErrorKind::Arity {
            op: Op::Not,
            given: 0
        }
    );
}

#[test]
fn results_nest_at_most_as_deep_as_the_data_model() {
    let nest = |n: usize| {
        format!(
            r#"{}{{"nat": 1}}{}"#,
            r#"{"list": ["#.repeat(n),
            "]}".repeat(n)
        )
    };
    assert!(run(&nest(MAX_DEPTH)).is_ok());
    assert_eq!(
        err(&nest(MAX_DEPTH + 1)).kind,
        EvalErrorKind::TooDeep,
        "deeper than the data model"
    );
}

// ---------------------------------------------------------------------------------------------
// The evaluator agrees with the checker

/// The value at JSON pointer `p` of `j`, if there is one.
fn at<'j>(j: &'j Json, p: &str) -> Option<&'j Json> {
    let mut cur = j;
    for seg in p.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Json::Object(m) => m.iter().find(|(k, _)| *k == seg).map(|(_, v)| v)?,
            Json::Array(xs) => xs.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn leaf() -> impl Strategy<Value = Json> {
    let text = prop::sample::select(vec!["", "a", "ab", "b", "x", "y", "n", "k1", "héé"]);
    let num = |v: i128| Json::Number(v.to_string());
    let one = |k: &str, v: Json| Json::Object(vec![(k.to_owned(), v)]);
    prop_oneof![
        Just(one("null", Json::Object(vec![]))),
        any::<bool>().prop_map(move |b| one("bool", Json::Bool(b))),
        prop_oneof![
            any::<i64>().prop_map(i128::from),
            (-3i128..4),
            Just(i128::from(i64::MIN)),
            Just(i128::from(i64::MAX))
        ]
        .prop_map(move |v| one("int", num(v))),
        prop_oneof![
            any::<u64>().prop_map(i128::from),
            (0i128..4),
            Just(i128::from(u64::MAX))
        ]
        .prop_map(move |v| one("nat", num(v))),
        (0i128..4).prop_map(move |v| one("time_ns", num(v))),
        (-2i128..3).prop_map(move |v| one("duration_ns", num(v))),
        prop::sample::select(vec!["0", "1.5", "-2", "1E+3", "0.25"])
            .prop_map(move |d| one("dec128", Json::String(d.into()))),
        text.prop_map(move |t| one("text", Json::String(t.into()))),
        prop::sample::select(vec!["", "AQI=", "AQ=="])
            .prop_map(move |b| one("bytes_b64", Json::String(b.into()))),
        prop::sample::select(vec![
            "@plan.input",
            "@plan.input.n",
            "@plan.input.i",
            "@plan.input.t",
            "@plan.input.b",
            "@plan.input.ok",
            "@plan.input.d",
            "@plan.input.when",
            "@plan.input.dur",
            "@plan.input.h",
            "@plan.input.u",
            "@plan.input.tags",
            "@plan.input.nums",
            "@plan.input.s",
            "@plan.input.m",
            "@plan.input.m.k1",
            "@plan.input.mi",
            "@plan.input.o",
            "@plan.input.r",
            "@plan.input.r.x",
            "@plan.input.r.y",
            "@plan.input.v",
            "@plan.input.nope",
            "@var:x",
            "@var:none",
            "@var:unbound",
            "@step:s1",
            "@step:s1.code",
        ])
        .prop_map(move |r| one("ref", Json::String(r.into()))),
    ]
}

fn arb_expr() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        let one = |k: &str, v: Json| Json::Object(vec![(k.to_owned(), v)]);
        prop_oneof![
            4 => (prop::sample::select(Op::ALL.to_vec()), prop::collection::vec(inner.clone(), 2..4))
                .prop_map(|(op, mut args)| {
                    if let Arity::Exactly(k) = op.arity() {
                        args.truncate(k);
                    }
                    Json::Object(vec![
                        ("op".into(), Json::String(op.as_str().into())),
                        ("args".into(), Json::Array(args)),
                    ])
                }),
            1 => prop::collection::vec(inner.clone(), 0..3)
                .prop_map(move |xs| one("list", Json::Array(xs))),
            1 => prop::collection::vec(inner.clone(), 0..3)
                .prop_map(move |xs| one("set", Json::Array(xs))),
            1 => prop::collection::vec(
                    (prop::sample::select(vec!["x", "y", "n", "t"]), inner.clone()),
                    0..3,
                )
                .prop_map(move |fs| {
                    let mut m: Vec<(String, Json)> = Vec::new();
                    for (k, v) in fs {
                        if !m.iter().any(|(x, _)| x == k) {
                            m.push((k.to_owned(), v));
                        }
                    }
                    one("record", Json::Object(m))
                }),
            1 => prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(move |kvs| {
                one(
                    "map",
                    Json::Array(
                        kvs.into_iter()
                            .map(|(k, v)| {
                                Json::Object(vec![("key".into(), k), ("value".into(), v)])
                            })
                            .collect(),
                    ),
                )
            }),
            1 => (prop::sample::select(vec!["A", "B"]), prop::option::of(inner))
                .prop_map(move |(tag, v)| {
                    let mut m = vec![("tag".to_owned(), Json::String(tag.into()))];
                    if let Some(v) = v {
                        m.push(("value".into(), v));
                    }
                    one("variant", Json::Object(m))
                }),
        ]
    })
}

/// What became of one generated expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The checker found a problem, or could not infer a type.
    NotTyped,
    /// Well-typed, and it evaluated to a value of its type (`op`: it is an operator
    /// application).
    Value { op: bool },
    /// Well-typed, and it failed with a located evaluation error.
    Failed,
}

/// Checks and evaluates one expression against one input, asserting that they agree.
fn agree(j: &Json, w: &World) -> Result<Outcome, TestCaseError> {
    let e = Expr::from_json(j).map_err(|es| TestCaseError::fail(format!("{es:?}")))?;
    let mut env = TestEnv {
        w,
        problems: Vec::new(),
    };
    let t = check::infer(&mut env, &e, "");
    let first = eval(&e, &w.values);
    prop_assert_eq!(&first, &eval(&e, &w.values), "evaluation is deterministic");
    let (Some(t), true) = (t, env.problems.is_empty()) else {
        return Ok(Outcome::NotTyped);
    };
    match first {
        Ok(v) => {
            let canon = crate::air::value::canonicalize(&v.to_value(), &t, &w.schemas);
            prop_assert!(
                canon.is_ok(),
                "{} is well-typed as {t} but evaluates to {v:?}: {canon:?}",
                j.to_text(false)
            );
            Ok(Outcome::Value {
                op: matches!(e, Expr::Op { .. }),
            })
        }
        Err(err) => {
            prop_assert!(
                at(j, &err.pointer).is_some(),
                "{}: the error's pointer {:?} is not in the expression",
                j.to_text(false),
                err.pointer
            );
            let text = j.to_text(true);
            prop_assert!(pointer_position(&text, &err.pointer).is_some());
            Ok(Outcome::Failed)
        }
    }
}

#[test]
fn well_typed_expressions_evaluate_to_their_type_or_a_typed_error() {
    let worlds: Vec<World> = INPUTS.iter().map(|i| world(i)).collect();
    let mut runner = TestRunner::new(Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    });
    let counts = std::cell::RefCell::new(HashMap::<&str, usize>::new());
    let strategy = (arb_expr(), 0..worlds.len());
    runner
        .run(&strategy, |(j, w)| {
            let what = match agree(&j, &worlds[w])? {
                Outcome::NotTyped => "not typed",
                Outcome::Value { op: false } => "value",
                Outcome::Value { op: true } => "operator value",
                Outcome::Failed => "failed",
            };
            *counts.borrow_mut().entry(what).or_default() += 1;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    // The property is not vacuous: many generated expressions are well-typed, operator
    // applications among them, and some fail at evaluation.
    let counts = counts.into_inner();
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert!(
        n("operator value") >= 200 && n("value") >= 1000 && n("failed") >= 100,
        "too few well-typed cases: {counts:?}"
    );
}
