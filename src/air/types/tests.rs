use super::*;
use crate::codec::cbor;
use crate::codec::json::parse_json;

fn ty(s: &str) -> Type {
    Type::from_json(&parse_json(s).unwrap()).unwrap()
}

fn bad(s: &str, pointer: &str, needle: &str) {
    let e = Type::from_json(&parse_json(s).unwrap()).unwrap_err();
    assert_eq!(e.pointer, pointer, "{s}: {e}");
    assert!(e.message.contains(needle), "{s}: {e}");
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

#[test]
fn every_form_parses_and_round_trips() {
    for p in PRIMITIVES {
        let s = format!("{{\"{p}\":{{}}}}");
        let t = ty(&s);
        assert_eq!(t.form(), p);
        assert_eq!(t.to_string(), s);
    }
    let cases = [
        r#"{"record":{}}"#,
        r#"{"record":{"x":{"int":{}},"y":{"int":{}}}}"#,
        r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}}}}"#,
        r#"{"list":{"text":{}}}"#,
        r#"{"set":{"nat":{}}}"#,
        r#"{"option":{"hash":{}}}"#,
        r#"{"map":{"key":{"uuid":{}},"value":{"bytes":{}}}}"#,
        r#"{"ref":"demo/Pc@1"}"#,
        r#"{"list":{"map":{"key":{"int":{}},"value":{"option":{"ref":"a/B@2"}}}}}"#,
    ];
    for s in cases {
        let t = ty(s);
        assert_eq!(Type::from_json(&t.to_json()).unwrap(), t, "{s}");
        let v = t.to_value();
        let bytes = cbor::encode(&v);
        assert_eq!(Type::from_value(&cbor::decode(&bytes).unwrap()).unwrap(), t);
    }
    // Members come out in canonical order: shorter keys first.
    assert_eq!(
        ty(r#"{"variant":{"Err":{"text":{}},"Ok":{"unit":{}}}}"#).to_string(),
        r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}}}}"#
    );
    assert_eq!(
        ty(r#"{"map":{"value":{"int":{}},"key":{"text":{}}}}"#).to_string(),
        r#"{"map":{"key":{"text":{}},"value":{"int":{}}}}"#
    );
}

#[test]
fn encoding_matches_the_upstream_point_vector() {
    // The `type` member of upstream's `defschema_point` vector: a1 record a2 x {int:{}} y ...
    let t = ty(r#"{"record":{"x":{"int":{}},"y":{"int":{}}}}"#);
    let hex: String = cbor::encode(&t.to_value())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, "a1667265636f7264a26178a163696e74a06179a163696e74a0");
}

#[test]
fn strict_parsing_names_the_place() {
    bad(r#"{"int":{"x":1}}"#, "/int", "empty object");
    bad(r#"{"int":null}"#, "/int", "empty object");
    bad(r#"{"int":{},"nat":{}}"#, "", "exactly one member");
    bad(r#"{"text":{},"$comment":"x"}"#, "", "exactly one member");
    bad(r#"{}"#, "", "exactly one member");
    bad(r#""int""#, "", "found string");
    bad(r#"{"float":{}}"#, "/float", "unknown type form");
    bad(
        r#"{"record":{"x":{"int":{}},"y":{"foo":{}}}}"#,
        "/record/y/foo",
        "unknown",
    );
    bad(
        r#"{"record":{"a.b":{"int":{}}}}"#,
        "/record/a.b",
        "may contain only",
    );
    bad(r#"{"record":{"":{"int":{}}}}"#, "/record/", "must start");
    bad(
        r#"{"record":{"$x":{"int":{}}}}"#,
        "/record/$x",
        "must start",
    );
    bad(r#"{"record":[]}"#, "/record", "takes an object");
    bad(r#"{"variant":{}}"#, "/variant", "at least one tag");
    bad(
        r#"{"variant":{"a/b":{"unit":{}}}}"#,
        "/variant/a~1b",
        "may contain",
    );
    bad(
        r#"{"map":{"key":{"bool":{}},"value":{"int":{}}}}"#,
        "/map/key",
        "map keys",
    );
    bad(
        r#"{"map":{"key":{"ref":"a/B@1"},"value":{"int":{}}}}"#,
        "/map/key",
        "map keys",
    );
    bad(
        r#"{"map":{"key":{"int":{}}}}"#,
        "/map",
        "`value` is missing",
    );
    bad(
        r#"{"map":{"key":{"int":{}},"value":{"int":{}},"x":1}}"#,
        "/map/x",
        "unknown member",
    );
    bad(r#"{"ref":"nope"}"#, "/ref", "invalid name");
    bad(r#"{"ref":{}}"#, "/ref", "schema name");
    bad(
        r#"{"list":{"list":{"int":[]}}}"#,
        "/list/list/int",
        "empty object",
    );
}

#[test]
fn depth_is_bounded_by_the_encoding() {
    // n nested lists around an int: maps at depths 0..=n, the int's `{}` at n+1.
    let nest = |n: usize| {
        let mut s = String::from(r#"{"int":{}}"#);
        for _ in 0..n {
            s = format!(r#"{{"list":{s}}}"#);
        }
        s
    };
    let ok = ty(&nest(MAX_DEPTH - 2));
    let bytes = cbor::encode(&ok.to_value());
    assert_eq!(
        Type::from_value(&cbor::decode(&bytes).unwrap()).unwrap(),
        ok
    );
    let e = Type::from_json(&parse_json(&nest(MAX_DEPTH - 1)).unwrap()).unwrap_err();
    assert!(e.message.contains("too deeply"), "{e}");
}

#[test]
fn from_value_rejects_foreign_shapes() {
    let v = Value::Map(Map::from_entries(vec![("int".into(), Value::Null)]).unwrap());
    assert!(Type::from_value(&v).unwrap_err().message.contains("null"));
    let v = Value::Map(Map::from_entries(vec![(1u64.into(), Value::Null)]).unwrap());
    assert!(Type::from_value(&v).is_err());
}

#[test]
fn refs_resolve_and_problems_are_reported() {
    let mut s: BTreeMap<Name, Type> = BTreeMap::new();
    s.insert(name("a/A@1"), ty(r#"{"record":{"b":{"ref":"a/B@1"}}}"#));
    s.insert(name("a/B@1"), ty(r#"{"list":{"ref":"a/A@1"}}"#));
    s.insert(name("a/C@1"), ty(r#"{"option":{"ref":"a/C@1"}}"#));
    s.insert(name("a/D@1"), ty(r#"{"ref":"a/E@1"}"#));
    s.insert(name("a/E@1"), ty(r#"{"int":{}}"#));
    s.insert(
        name("a/F@1"),
        ty(r#"{"map":{"key":{"text":{}},"value":{"ref":"x/Gone@1"}}}"#),
    );
    s.insert(name("a/G@1"), ty(r#"{"ref":"a/A@1"}"#));
    s.insert(name("a/H@1"), ty(r#"{"ref":"a/H@1"}"#));

    assert_eq!(resolve(&Type::Ref(name("a/D@1")), &s), Ok(&Type::Int));
    assert_eq!(resolve(&Type::Nat, &s), Ok(&Type::Nat));
    assert_eq!(
        resolve(&Type::Ref(name("a/Z@1")), &s),
        Err(ResolveError::Unknown(name("a/Z@1")))
    );
    assert_eq!(
        resolve(&Type::Ref(name("a/H@1")), &s),
        Err(ResolveError::Cycle(vec![name("a/H@1"), name("a/H@1")]))
    );

    let problems = check_recursion(&s);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "schema a/F@1 refers to unknown schema x/Gone@1 at `/map/value/ref`",
            "schema a/A@1 is recursive: a/A@1 → a/B@1 → a/A@1",
            "schema a/B@1 is recursive: a/B@1 → a/A@1 → a/B@1",
            "schema a/C@1 is recursive: a/C@1 → a/C@1",
            "schema a/H@1 is recursive: a/H@1 → a/H@1",
        ]
    );
}

#[test]
fn refs_lists_pointers() {
    let t = ty(r#"{"record":{"zz":{"ref":"a/B@1"},"a":{"variant":{"X":{"ref":"a/C@1"}}}}}"#);
    let refs: Vec<(String, String)> = t
        .refs()
        .into_iter()
        .map(|(p, n)| (p, n.to_string()))
        .collect();
    assert_eq!(
        refs,
        [
            ("/record/a/variant/X/ref".to_owned(), "a/C@1".to_owned()),
            ("/record/zz/ref".to_owned(), "a/B@1".to_owned()),
        ]
    );
}

#[test]
fn labels() {
    let (longest, too_long) = ("x".repeat(64), "x".repeat(65));
    for (label, ok) in [
        ("a_b-c9", true),
        ("_", true),
        (&longest, true),
        (&too_long, false),
        ("9a", false),
        ("a.b", false),
        ("", false),
    ] {
        assert_eq!(check_label("field", label).is_ok(), ok, "{label:?}");
    }
}
