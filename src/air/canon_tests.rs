use super::*;
use crate::air::diag::joined;
use crate::air::expr::{Const, Expr, Ref, arb_op};
use crate::air::load::{builtins, load_path};
use crate::air::name::Name;
use crate::air::nodes::NodeKind;
use crate::air::testworld;
use crate::air::validate::{Validated, validate, validate_with};
use crate::codec::cbor::Map;
use crate::codec::json::parse_json;
use std::path::Path;

fn test_world() -> Validated {
    let files = testworld::files();
    validate_with(testworld::load(&files), &testworld::source(&files)).expect("valid")
}

fn fixture(name: &str) -> Validated {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/air")
        .join(name);
    validate(load_path(&dir).into_result().expect("loads")).expect("valid")
}

fn node(json: &str) -> Node {
    Node::from_json(&parse_json(json).unwrap()).unwrap()
}

/// Encoding, decoding and encoding again gives the same value; the decoded node renders to
/// authoring JSON that reads back as itself.
fn round_trip(n: &Node, cat: &Catalog<'_>) -> Value {
    let v = node_value(n, cat).unwrap_or_else(|e| panic!("{}: {e}", n.kind()));
    assert_eq!(cbor::decode(&cbor::encode(&v)).unwrap(), v);
    let back = node_from_value(&v).unwrap_or_else(|e| panic!("{}: {e}", n.kind()));
    assert_eq!(node_value(&back, cat).unwrap(), v, "{:?}", n.name());
    assert_eq!(Node::from_json(&back.to_json()).unwrap(), back);
    v
}

#[test]
fn every_node_round_trips() {
    let mut count = 0;
    for world in [test_world(), fixture("counter"), fixture("fetch-notify")] {
        let cat = Catalog::new(world.nodes.iter().map(|n| &n.node));
        for n in &world.nodes {
            assert_eq!(round_trip(&n.node, &cat), n.value);
            count += 1;
        }
        let m = Node::Manifest(world.manifest.clone());
        assert_eq!(round_trip(&m, &cat), world.manifest_value);
        assert_eq!(node_id(&world.manifest_value), world.manifest_id);
    }
    let cat = Catalog::new(builtins());
    for n in builtins() {
        round_trip(n, &cat);
    }
    assert!(count > 30, "{count}");
}

#[test]
fn optional_members_round_trip() {
    // Members the worlds above leave out.
    let cat = Catalog::default();
    for j in [
        r#"{"$kind":"defmodule","name":"a/M@1","module_kind":"reducer",
            "wasm_hash":"b3:1111111111111111111111111111111111111111111111111111111111111111",
            "abi":{"reducer":{"state":"a/S@1","event":"a/E@1","annotations":"a/A@1"}}}"#,
        r#"{"$kind":"defsecret","name":"a/s@1","binding_id":"env:X",
            "expected_digest":"b3:2222222222222222222222222222222222222222222222222222222222222222",
            "allowed_caps":[],"allowed_plans":[]}"#,
        r#"{"$kind":"defsecret","name":"a/s@1","binding_id":"env:X"}"#,
        r#"{"$kind":"defeffect","name":"a/e@1","kind":"a.b","params_schema":"a/P@1",
            "receipt_schema":"a/R@1","cap_type":"x","origin_scope":"both"}"#,
        r#"{"$kind":"defplan","name":"a/p@1","input":"a/I@1","steps":[
            {"id":"x","op":"assign","expr":{"op":"add","args":[{"dec128":"1.50"},{"dec128":"2"}]},
             "bind":{"as":"y"}},
            {"id":"z","op":"end"}]}"#,
    ] {
        let n = node(j);
        let v = round_trip(&n, &cat);
        if let Node::DefSecret(s) = &n {
            let Node::DefSecret(back) = node_from_value(&v).unwrap() else {
                panic!()
            };
            assert_eq!(back.allowed_caps.is_some(), s.allowed_caps.is_some());
        }
    }
}

#[test]
fn node_ids_are_stable() {
    // Recorded ids: a change here changes every stored world. Update only on purpose, with a
    // note in docs/air.md.
    assert_eq!(
        fixture("counter").manifest_id.to_string(),
        "b3:58c4b5cedb667b165707fc54d5c51f428a4da36f044a6fe84ba90489e72fce81"
    );
    let schema = node(
        r#"{"$kind":"defschema","name":"demo/Pc@1","type":{"record":{"x":{"int":{}},"y":{"int":{}}}}}"#,
    );
    let v = node_value(&schema, &Catalog::default()).unwrap();
    let hex: String = cbor::encode(&v)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // {"name": "demo/Pc@1", "type": {...}, "$kind": "defschema"} in canonical key order.
    assert_eq!(
        hex,
        "a3646e616d656964656d6f2f5063403164747970\
         65a1667265636f7264a26178a163696e74a06179a163696e74a0\
         65246b696e6469646566736368656d61"
    );
}

/// The canonical value of the `i`-th node (in the given files) after validation.
fn world_ids(files: &[(String, String)]) -> (ObjectId, Vec<(String, ObjectId)>) {
    let v = validate_with(testworld::load(files), &testworld::source(files))
        .unwrap_or_else(|ds| panic!("{}", joined(&ds, "\n")));
    let ids = v
        .nodes
        .iter()
        .map(|n| (n.node.name().unwrap().to_string(), n.id))
        .collect();
    (v.manifest_id, ids)
}

fn edit(files: &[(String, String)], file: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let mut out = files.to_vec();
    let f = out.iter_mut().find(|(p, _)| p.ends_with(file)).unwrap();
    assert!(f.1.contains(from), "{from:?} not in {file}");
    f.1 = f.1.replacen(from, to, 1);
    out
}

#[test]
fn sugar_and_tagged_literals_give_the_same_ids() {
    let base = testworld::files();
    let (id, ids) = world_ids(&base);
    // Cap grant params in the tagged lens, set elements in another order, the option field
    // spelled out.
    let tagged = edit(
        &base,
        "manifest.air.json",
        r#""params": { "hosts": ["api.pay.example"], "verbs": ["POST"] }"#,
        r#""params": { "record": { "verbs": { "set": [ { "text": "POST" } ] },
                        "path_prefixes": { "null": {} },
                        "hosts": { "set": [ { "text": "api.pay.example" } ] } } }"#,
    );
    // A sugar literal result as a constant expression; a literal as sugar with the set in
    // another order.
    let tagged = edit(
        &tagged,
        "charge.air.json",
        r#""result": { "order_id": "?", "ok": false }"#,
        r#""result": { "record": { "ok": { "bool": false }, "order_id": { "text": "?" } } }"#,
    );
    let tagged = edit(
        &tagged,
        "charge.air.json",
        r#""expr": { "text": "charged", "tags": ["b", "a"] }"#,
        r#""expr": { "record": { "tags": { "set": [ { "text": "a" }, { "text": "b" }, { "text": "a" } ] },
                               "text": { "text": "charged" }, "due": { "null": {} } } }"#,
    );
    assert_eq!(world_ids(&tagged), (id, ids.clone()));
    // A different literal gives a different id.
    let other = edit(&base, "charge.air.json", r#""?""#, r#""!""#);
    assert_ne!(world_ids(&other).0, id);
}

#[test]
fn member_order_file_layout_and_defaults_do_not_matter() {
    let base = testworld::files();
    let (id, ids) = world_ids(&base);
    // Files in another order and split differently, members reordered, defaults written
    // out, derived lists left away, manifest lists in another order.
    let mut files = base.clone();
    files.reverse();
    let files = edit(
        &files,
        "manifest.air.json",
        r#""modules": [ { "name": "shop/Orders@1" }, { "name": "shop/Pricing@1" } ],"#,
        r#""modules": [ { "name": "shop/Pricing@1" }, { "name": "shop/Orders@1" } ],"#,
    );
    let files = edit(
        &files,
        "manifest.air.json",
        r#""$kind": "manifest", "air_version": "1","#,
        r#""air_version": "1", "$kind": "manifest","#,
    );
    let files = edit(
        &files,
        "manifest.air.json",
        r#""cap": "sys/timer@1", "params": {} }"#,
        r#""params": {}, "budget": {}, "cap": "sys/timer@1" }"#,
    );
    let files = edit(
        &files,
        "charge.air.json",
        r#""required_caps": ["http"],
  "allowed_effects": ["http.request"],"#,
        "",
    );
    let files = edit(
        &files,
        "modules.air.json",
        r#""abi": { "pure": { "input": "shop/PlaceOrder@1", "output": "shop/Charge@1" } } }"#,
        r#""abi": { "pure": { "output": "shop/Charge@1", "input": "shop/PlaceOrder@1" } } }"#,
    );
    let mut files = edit(
        &files,
        "schemas.air.json",
        r#"{ "$kind": "defschema", "name": "shop/OrderId@1", "type": { "text": {} } },"#,
        "",
    );
    files.push((
        "air/zz/id.air.json".to_owned(),
        r#"{ "type": { "text": {} }, "name": "shop/OrderId@1", "$kind": "defschema" }"#.to_owned(),
    ));
    let (id2, mut ids2) = world_ids(&files);
    let mut ids = ids;
    ids.sort();
    ids2.sort();
    assert_eq!((id2, ids2), (id, ids));
}

#[test]
fn hashes_the_manifest_gives_are_checked_and_kept() {
    let base = testworld::files();
    let v = validate_with(testworld::load(&base), &testworld::source(&base)).unwrap();
    let pc = v
        .get(NodeKind::DefSchema, &Name::new("shop/OrderId@1").unwrap())
        .unwrap();
    let with_hash = edit(
        &base,
        "manifest.air.json",
        r#"{ "name": "shop/OrderId@1" }"#,
        &format!(r#"{{ "name": "shop/OrderId@1", "hash": "{}" }}"#, pc.id),
    );
    assert_eq!(world_ids(&with_hash).0, v.manifest_id);
    // Every entry links its node.
    let links = cbor::links(&cbor::encode(&v.manifest_value)).unwrap();
    assert_eq!(links.len(), v.nodes.len());
    for n in &v.nodes {
        assert!(links.contains(&n.id));
    }
}

#[test]
fn manifest_needs_filled_hashes() {
    let m = node(r#"{"$kind":"manifest","air_version":"1","schemas":[{"name":"a/B@1"}]}"#);
    let e = node_value(&m, &Catalog::default()).unwrap_err();
    assert_eq!(e.pointer, "/schemas/0");
    assert!(e.message.contains("not filled"), "{e}");
}

#[test]
fn untyped_literals_are_refused() {
    let p = node(
        r#"{"$kind":"defplan","name":"a/p@1","input":"a/I@1","steps":[
            {"id":"x","op":"assign","expr":{"a":1},"bind":{"as":"y"}}]}"#,
    );
    let e = node_value(&p, &Catalog::default()).unwrap_err();
    assert_eq!(e.pointer, "/steps/0/expr");
}

#[test]
fn decoding_rejects_what_encoding_never_produces() {
    let cat = Catalog::default();
    let good = node_value(
        &node(r#"{"$kind":"defcap","name":"a/c@1","cap_type":"x","schema":{"record":{}}}"#),
        &cat,
    )
    .unwrap();
    let Value::Map(m) = &good else { panic!() };
    let mut extra = m.clone();
    extra.insert("zzz".into(), Value::Null);
    let e = node_from_value(&Value::Map(extra)).unwrap_err();
    assert!(e.message.contains("`zzz`"), "{e}");
    let mut wrong = m.clone();
    wrong.insert("cap_type".into(), Value::from(3u64));
    assert_eq!(
        node_from_value(&Value::Map(wrong)).unwrap_err().pointer,
        "/cap_type"
    );
    let mut kind = m.clone();
    kind.insert("$kind".into(), "defwidget".into());
    assert_eq!(
        node_from_value(&Value::Map(kind)).unwrap_err().pointer,
        "/$kind"
    );
    assert!(node_from_value(&Value::Null).is_err());
    // Expressions: an upper-case UUID and a bad operator arity are not canonical.
    let mut up = Map::new();
    up.insert(
        "uuid".into(),
        Value::Text("123E4567-E89B-12D3-A456-426614174000".into()),
    );
    let up = Value::Map(up);
    assert!(expr_from_value(&up).is_err());
    let mut op = Map::new();
    op.insert("op".into(), "not".into());
    op.insert("args".into(), Value::Array(vec![]));
    assert!(expr_from_value(&Value::Map(op)).is_err());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_const() -> impl Strategy<Value = Const> {
        prop_oneof![
            Just(Const::Null),
            any::<bool>().prop_map(Const::Bool),
            any::<i64>().prop_map(Const::Int),
            any::<u64>().prop_map(Const::Nat),
            prop::sample::select(vec!["0", "1.5", "-2", "1E+40", "0.000001"])
                .prop_map(|s| Const::Dec128(s.to_owned())),
            "[a-z ]{0,8}".prop_map(Const::Text),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(Const::Bytes),
            any::<u64>().prop_map(Const::TimeNs),
            any::<i64>().prop_map(Const::DurationNs),
            any::<[u8; 32]>().prop_map(|b| Const::Hash(ObjectId::from_bytes(b))),
            Just(Const::Uuid(
                "123e4567-e89b-12d3-a456-426614174000".to_owned()
            )),
        ]
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let refs = prop::sample::select(vec![
            "@plan.input",
            "@plan.input.a.b",
            "@var:x",
            "@var:x.y",
            "@step:s1.out",
            "@event.k",
        ])
        .prop_map(|s| Expr::Ref(Ref::parse(s).unwrap()));
        let leaf = prop_oneof![arb_const().prop_map(Expr::Const), refs];
        leaf.prop_recursive(4, 48, 4, |inner| {
            let labels = prop::sample::select(vec!["a", "b", "text", "record", "zz_1"]);
            prop_oneof![
                arb_op(prop::collection::vec(inner.clone(), 1..4)),
                prop::collection::btree_map(labels, inner.clone(), 0..4).prop_map(|m| {
                    Expr::Record(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::List),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::Set),
                prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(Expr::Map),
                (
                    prop::sample::select(vec!["Ok", "Err"]),
                    prop::option::of(inner)
                )
                    .prop_map(|(t, v)| Expr::Variant {
                        tag: t.to_owned(),
                        value: v.map(Box::new)
                    }),
            ]
        })
    }

    proptest! {
        #[test]
        fn expressions_round_trip(e in arb_expr()) {
            let v = expr_value(&e);
            let back = expr_from_value(&v).unwrap();
            prop_assert_eq!(expr_value(&back), v.clone());
            // The encoding is decodable CBOR and survives the byte round trip.
            prop_assert_eq!(cbor::decode(&cbor::encode(&v)).unwrap(), v);
            // And the expression itself survives, but for record field order.
            prop_assert_eq!(Expr::from_json(&back.to_json()).unwrap(), back);
        }

        #[test]
        fn plan_slots_round_trip(e in arb_expr()) {
            let j = format!(
                r#"{{"$kind":"defplan","name":"a/p@1","input":"a/I@1","steps":[
                    {{"id":"x","op":"assign","expr":{},"bind":{{"as":"y"}}}},
                    {{"id":"e","op":"end"}}],
                    "edges":[{{"from":"x","to":"e","when":{}}}],"invariants":[{}]}}"#,
                crate::codec::json::to_json(&crate::codec::json::json_to_value(&e.to_json()).unwrap()),
                crate::codec::json::to_json(&crate::codec::json::json_to_value(&e.to_json()).unwrap()),
                crate::codec::json::to_json(&crate::codec::json::json_to_value(&e.to_json()).unwrap()),
            );
            if let Ok(j) = parse_json(&j) && let Ok(n) = Node::from_json(&j) {
                round_trip(&n, &Catalog::default());
            }
        }
    }
}
