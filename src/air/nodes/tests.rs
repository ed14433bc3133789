use super::*;
use crate::air::expr::{Const, Expr, ExprOrValue, RefRoot};
use crate::codec::json::parse_json;

fn json(s: &str) -> Json {
    match parse_json(s) {
        Ok(j) => j,
        Err(e) => panic!("test JSON does not parse: {e}\n{s}"),
    }
}

fn node(s: &str) -> Node {
    match Node::from_json(&json(s)) {
        Ok(n) => n,
        Err(e) => panic!("{s}\n{e:#?}"),
    }
}

/// Parses, renders, parses again: the two nodes are equal, and rendering is stable.
fn round_trip(n: &Node) {
    let j = n.to_json();
    let again = Node::from_json(&j).unwrap_or_else(|e| panic!("{j:?}\n{e:#?}"));
    assert_eq!(&again, n);
    assert_eq!(again.to_json(), j);
}

const HASH: &str = "b3:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// One node of every kind, using every field the forms have.
fn every_kind() -> Vec<String> {
    vec![
        r#"{"$kind": "defschema", "name": "com.acme/FeedItem@1",
            "type": {"record": {"title": {"text": {}}, "url": {"text": {}}}}}"#
            .to_owned(),
        format!(
            r#"{{"$kind": "defmodule", "name": "com.acme/Feed@1", "module_kind": "reducer",
                "wasm_hash": "{HASH}", "key_schema": "com.acme/FeedKey@1",
                "abi": {{"reducer": {{"state": "com.acme/FeedState@1",
                    "event": "com.acme/FeedEvent@1", "annotations": "com.acme/Ann@1",
                    "effects_emitted": ["timer.set", "blob.put"],
                    "cap_slots": {{"timer": "timer", "blob": "blob"}}}}}}}}"#
        ),
        r#"{"$kind": "defmodule", "name": "com.acme/Auth@1", "module_kind": "pure",
            "abi": {"pure": {"input": "com.acme/AuthIn@1", "output": "com.acme/AuthOut@1"}}}"#
            .to_owned(),
        r#"{"$kind": "defplan", "name": "com.acme/daily_digest@1",
            "input": "com.acme/DigestRequest@1", "output": "com.acme/Digest@1",
            "locals": {"rss_url": "com.acme/Url@1"},
            "steps": [
              {"id": "set_url", "op": "assign", "expr": {"text": "https://news.example/rss"},
               "bind": {"as": "rss_url"}},
              {"id": "fetch", "op": "emit_effect", "kind": "http.request",
               "params": {"record": {"method": {"text": "GET"}, "url": {"ref": "@var:rss_url"},
                          "headers": {"map": []}}},
               "cap": "http_out", "bind": {"effect_id_as": "fetch_id"}},
              {"id": "wait", "op": "await_receipt", "for": {"ref": "@var:fetch_id"},
               "bind": {"as": "fetch_rcpt"}},
              {"id": "tell", "op": "raise_event", "reducer": "com.acme/Feed@1",
               "event": {"Fetched": {"status": 200}}, "key": {"text": "main"}},
              {"id": "ack", "op": "await_event", "event": "com.acme/Ack@1",
               "where": {"op": "eq", "args": [{"ref": "@event.id"},
                                               {"ref": "@var:correlation_id"}]},
               "bind": {"as": "ack"}},
              {"id": "done", "op": "end", "result": {"ok": true}}
            ],
            "edges": [
              {"from": "set_url", "to": "fetch"},
              {"from": "fetch", "to": "wait"},
              {"from": "wait", "to": "tell",
               "when": {"op": "eq", "args": [{"ref": "@var:fetch_rcpt.status"}, {"int": 200}]}},
              {"from": "tell", "to": "ack"},
              {"from": "ack", "to": "done"}
            ],
            "required_caps": ["http_out"],
            "allowed_effects": ["http.request"],
            "invariants": [{"op": "not", "args": [{"bool": false}]}]}"#
            .to_owned(),
        r#"{"$kind": "defcap", "name": "sys/http.out@1", "cap_type": "http.out",
            "schema": {"record": {"hosts": {"set": {"text": {}}},
                                  "verbs": {"set": {"text": {}}}}}}"#
            .to_owned(),
        r#"{"$kind": "defpolicy", "name": "com.acme/policy@1", "rules": [
              {"when": {"effect_kind": "http.request", "cap_name": "cap_http"},
               "decision": "allow"},
              {"when": {"effect_kind": "llm.generate", "origin_kind": "reducer"},
               "decision": "deny"},
              {"when": {"origin_kind": "plan", "origin_name": "com.acme/daily_digest@1"},
               "decision": "allow"},
              {"when": {}, "decision": "deny"}]}"#
            .to_owned(),
        r#"{"$kind": "defeffect", "name": "sys/http.request@1", "kind": "http.request",
            "params_schema": "sys/HttpRequestParams@1",
            "receipt_schema": "sys/HttpRequestReceipt@1", "cap_type": "http.out",
            "origin_scope": "plan", "description": "Optional human text"}"#
            .to_owned(),
        format!(
            r#"{{"$kind": "defsecret", "name": "llm/api@1", "binding_id": "env:LLM_API_KEY",
                "expected_digest": "{HASH}", "allowed_caps": ["llm_basic"],
                "allowed_plans": ["com.acme/daily_digest@1"]}}"#
        ),
        format!(
            r#"{{"$kind": "manifest", "air_version": "1",
              "schemas": [{{"name": "com.acme/FeedItem@1"}},
                          {{"name": "sys/HttpRequestParams@1", "hash": "{HASH}"}}],
              "modules": [{{"name": "com.acme/Feed@1"}}],
              "plans": [{{"name": "com.acme/daily_digest@1"}}],
              "effects": [{{"name": "sys/http.request@1"}}],
              "caps": [{{"name": "sys/http.out@1"}}],
              "policies": [{{"name": "com.acme/policy@1"}}],
              "secrets": [{{"name": "llm/api@1"}}],
              "routing": {{
                "events": [{{"event": "com.acme/FeedEvent@1", "reducer": "com.acme/Feed@1",
                             "key_field": "feed_id"}}],
                "inboxes": [{{"source": "http.inbox:contact_form",
                              "reducer": "com.acme/Feed@1"}}]}},
              "triggers": [{{"event": "com.acme/DigestRequest@1",
                             "plan": "com.acme/daily_digest@1",
                             "correlate_by": "request_id"}}],
              "defaults": {{"policy": "com.acme/policy@1", "cap_grants": [
                {{"name": "http_out", "cap": "sys/http.out@1",
                  "params": {{"hosts": ["news.example"], "verbs": ["GET"]}},
                  "expiry_ns": 1700000000000000000,
                  "budget": {{"tokens": 1000, "bytes": 1048576, "cents": 50}}}}]}},
              "module_bindings": {{"com.acme/Feed@1": {{"slots": {{"timer": "timer_grant"}}}}}}
            }}"#
        ),
    ]
}

#[test]
fn every_kind_parses_and_round_trips() {
    let nodes: Vec<Node> = every_kind().iter().map(|s| node(s)).collect();
    let kinds: Vec<NodeKind> = nodes.iter().map(Node::kind).collect();
    use NodeKind::*;
    assert_eq!(
        kinds,
        [
            DefSchema, DefModule, DefModule, DefPlan, DefCap, DefPolicy, DefEffect, DefSecret,
            Manifest
        ]
    );
    for n in &nodes {
        round_trip(n);
    }
    assert_eq!(
        nodes[0].name().map(Name::as_str),
        Some("com.acme/FeedItem@1")
    );
    assert_eq!(nodes[8].name(), None);
}

#[test]
fn fields_land_where_expected() {
    let nodes: Vec<Node> = every_kind().iter().map(|s| node(s)).collect();
    let Node::DefModule(m) = &nodes[1] else {
        panic!("not a module")
    };
    assert_eq!(m.module_kind(), ModuleKind::Reducer);
    let ModuleAbi::Reducer(r) = &m.abi else {
        panic!("not a reducer")
    };
    assert_eq!(r.effects_emitted, ["timer.set", "blob.put"]);
    assert_eq!(
        r.cap_slots,
        [
            ("timer".into(), "timer".into()),
            ("blob".into(), "blob".into())
        ]
    );
    let Node::DefPlan(p) = &nodes[3] else {
        panic!("not a plan")
    };
    let ops: Vec<&str> = p.steps.iter().map(|s| s.op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "assign",
            "emit_effect",
            "await_receipt",
            "raise_event",
            "await_event",
            "end"
        ]
    );
    // A literal in an ExprOrValue slot stays JSON; an Expr-shaped one is an Expr.
    assert!(matches!(
        &p.steps[0].op,
        StepOp::Assign {
            expr: ExprOrValue::Expr(Expr::Const(Const::Text(_))),
            ..
        }
    ));
    assert!(matches!(
        &p.steps[3].op,
        StepOp::RaiseEvent {
            event: ExprOrValue::Value(Json::Object(_)),
            key: Some(_),
            ..
        }
    ));
    assert!(matches!(
        &p.steps[5].op,
        StepOp::End {
            result: Some(ExprOrValue::Value(_))
        }
    ));
    let StepOp::AwaitEvent {
        filter: Some(f), ..
    } = &p.steps[4].op
    else {
        panic!("no filter")
    };
    assert_eq!(f.refs()[0].root, RefRoot::Event);
    assert_eq!(p.edges[2].from, "wait");
    assert!(p.edges[2].when.is_some());
    let Node::Manifest(m) = &nodes[8] else {
        panic!("not a manifest")
    };
    assert_eq!(m.schemas[0].hash, None);
    assert!(m.schemas[1].known_hash().is_some());
    assert_eq!(m.refs(NodeKind::DefSecret).map(<[_]>::len), Some(1));
    let g = &m.defaults.cap_grants[0];
    assert_eq!(g.expiry_ns, Some(1_700_000_000_000_000_000));
    assert_eq!(g.budget.as_ref().and_then(|b| b.cents), Some(50));
    assert_eq!(m.module_bindings[0].module.as_str(), "com.acme/Feed@1");
    assert_eq!(m.routing.events[0].key_field.as_deref(), Some("feed_id"));
}

#[test]
fn agentos_sha256_placeholders_read_as_unfilled() {
    let zero = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let m = Node::from_json(&json(&format!(
        r#"{{"$kind": "manifest", "air_version": "1", "schemas": [{{"name": "a/S@1", "hash": "{zero}"}}]}}"#
    )))
    .unwrap();
    let Node::Manifest(m) = m else { panic!() };
    assert_eq!(m.schemas[0].known_hash(), None);
    let n = Node::from_json(&json(&format!(
        r#"{{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer", "wasm_hash": "{zero}",
            "abi": {{"reducer": {{"state": "a/S@1", "event": "a/E@1"}}}}}}"#
    )))
    .unwrap();
    let Node::DefModule(d) = n else { panic!() };
    assert_eq!(d.wasm_hash, None);
}

#[test]
fn minimal_forms_and_defaults() {
    let m = node(r#"{"$kind": "manifest", "air_version": "1"}"#);
    let Node::Manifest(m) = &m else {
        panic!("not a manifest")
    };
    assert!(m.schemas.is_empty() && m.routing.events.is_empty());
    round_trip(&Node::Manifest(m.clone()));
    let p = node(
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/In@1",
            "steps": [{"id": "e", "op": "end"}]}"#,
    );
    let Node::DefPlan(p) = &p else {
        panic!("not a plan")
    };
    assert!(p.edges.is_empty() && p.required_caps.is_none());
    // Given-but-empty differs from absent for the derived sets and is kept.
    let q = node(
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/In@1",
            "steps": [{"id": "e", "op": "end"}], "required_caps": [], "allowed_effects": []}"#,
    );
    let Node::DefPlan(q) = &q else {
        panic!("not a plan")
    };
    assert_eq!(q.required_caps, Some(vec![]));
    round_trip(&Node::DefPlan(q.clone()));
    // Rendering drops optional empty lists and maps.
    let m = node(
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer",
            "abi": {"reducer": {"state": "a/S@1", "event": "a/E@1",
                    "effects_emitted": [], "cap_slots": {}}}}"#,
    );
    let Json::Object(abi) = &m.to_json() else {
        panic!("not an object")
    };
    let keys: Vec<&str> = abi.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["$kind", "name", "module_kind", "abi"]);
}

/// Every example node in `docs/air.md` reads and round-trips.
#[test]
fn doc_examples_parse() {
    let doc = include_str!("../../../docs/air.md");
    let mut seen = 0;
    for block in doc.split("```json").skip(1) {
        let body = block.split("```").next().unwrap_or_default();
        if !body.trim_start().starts_with("{ \"$kind\"") {
            continue;
        }
        round_trip(&node(body));
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} examples found");
}

/// `(input, pointer, rule)`: the input fails with (at least) that problem.
const MALFORMED: &[(&str, &str, Rule)] = &[
    ("[]", "", Rule::WrongType),
    (r#"{"name": "a/b@1"}"#, "", Rule::MissingField),
    (r#"{"$kind": 3}"#, "/$kind", Rule::WrongType),
    (
        r#"{"$kind": "defthing", "name": "a/b@1"}"#,
        "/$kind",
        Rule::UnknownKind,
    ),
    (
        r#"{"$kind": "defschema", "name": "a/b@1"}"#,
        "",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "defschema", "name": "a/b@1", "type": {"int": {}}, "x": 1}"#,
        "/x",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "defschema", "name": "A/b@1", "type": {"int": {}}}"#,
        "/name",
        Rule::BadName,
    ),
    (
        r#"{"$kind": "defschema", "name": 7, "type": {"int": {}}}"#,
        "/name",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defschema", "name": "a/b@1", "type": {"float": {}}}"#,
        "/type/float",
        Rule::BadType,
    ),
    (
        r#"{"$kind": "defschema", "name": "a/b@1", "type": {"int": {}}, "$comment": "x"}"#,
        "/$comment",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "actor", "abi": {}}"#,
        "/module_kind",
        Rule::BadEnum,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "pure",
         "abi": {"reducer": {"state": "a/S@1", "event": "a/E@1"}}}"#,
        "/abi",
        Rule::AbiMismatch,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer", "abi": {}}"#,
        "/abi",
        Rule::AbiMismatch,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer",
         "wasm_hash": "sha256:1000000000000000000000000000000000000000000000000000000000000000",
         "abi": {"reducer": {"state": "a/S@1", "event": "a/E@1"}}}"#,
        "/wasm_hash",
        Rule::BadHash,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer",
         "abi": {"reducer": {"state": "a/S@1", "event": "a/E@1",
                 "effects_emitted": ["Timer.Set"]}}}"#,
        "/abi/reducer/effects_emitted/0",
        Rule::BadDotted,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer",
         "abi": {"reducer": {"state": "a/S@1", "event": "a/E@1",
                 "cap_slots": {"1slot": "timer"}}}}"#,
        "/abi/reducer/cap_slots/1slot",
        Rule::BadIdent,
    ),
    (
        r#"{"$kind": "defmodule", "name": "a/M@1", "module_kind": "reducer",
         "abi": {"reducer": {"state": "a/S@1"}}}"#,
        "/abi/reducer",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1", "steps": []}"#,
        "/steps",
        Rule::Empty,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "jump"}]}"#,
        "/steps/0/op",
        Rule::BadEnum,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s one", "op": "end"}]}"#,
        "/steps/0/id",
        Rule::BadIdent,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "end", "value": 1}]}"#,
        "/steps/0/value",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "emit_effect", "kind": "http.request", "params": {},
                    "cap": "c", "bind": {"as": "x"}}]}"#,
        "/steps/0/bind/as",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "emit_effect", "kind": "http.request", "params": {},
                    "cap": "c", "bind": {}}]}"#,
        "/steps/0/bind",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "await_receipt", "for": "@var:h",
                    "bind": {"as": "r"}}]}"#,
        "/steps/0/for",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "await_event", "event": "a/E@1",
                    "where": {"ref": "@evt.x"}, "bind": {"as": "r"}}]}"#,
        "/steps/0/where/ref",
        Rule::BadRef,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "raise_event", "reducer": "a/R@1", "event": {},
                    "key": {"op": "eq", "args": []}}]}"#,
        "/steps/0/key/args",
        Rule::BadArity,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "end"}], "edges": [{"from": "s"}]}"#,
        "/edges/0",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "end"}],
         "edges": [{"from": "s", "to": "s", "when": true}]}"#,
        "/edges/0/when",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "end"}], "locals": {"x": "nope"}}"#,
        "/locals/x",
        Rule::BadName,
    ),
    (
        r#"{"$kind": "defplan", "name": "a/p@1", "input": "a/I@1",
         "steps": [{"id": "s", "op": "end"}], "invariants": [{"bool": 1}]}"#,
        "/invariants/0/bool",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defcap", "name": "a/c@1", "cap_type": "http out", "schema": {"unit": {}}}"#,
        "/cap_type",
        Rule::BadDotted,
    ),
    (
        r#"{"$kind": "defpolicy", "name": "a/p@1", "rules": [{"when": {}, "decision": "maybe"}]}"#,
        "/rules/0/decision",
        Rule::BadEnum,
    ),
    (
        r#"{"$kind": "defpolicy", "name": "a/p@1", "rules": [{"when": {"host": "x"}, "decision": "deny"}]}"#,
        "/rules/0/when/host",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "defpolicy", "name": "a/p@1", "rules": [{"when": {"origin_kind": "user"}, "decision": "deny"}]}"#,
        "/rules/0/when/origin_kind",
        Rule::BadEnum,
    ),
    (
        r#"{"$kind": "defpolicy", "name": "a/p@1", "rules": {}}"#,
        "/rules",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defeffect", "name": "a/e@1", "kind": "x.y", "params_schema": "a/P@1",
         "receipt_schema": "a/R@1", "cap_type": "x", "origin_scope": "anyone"}"#,
        "/origin_scope",
        Rule::BadEnum,
    ),
    (
        r#"{"$kind": "defeffect", "name": "a/e@1", "kind": "x.y", "params_schema": "a/P@1",
         "receipt_schema": "a/R@1", "cap_type": "x", "origin_scope": "plan", "description": 1}"#,
        "/description",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "defsecret", "name": "a/s@1", "binding_id": ""}"#,
        "/binding_id",
        Rule::Empty,
    ),
    (
        r#"{"$kind": "defsecret", "name": "a/s@1", "binding_id": "env:X", "allowed_plans": ["x"]}"#,
        "/allowed_plans/0",
        Rule::BadName,
    ),
    (r#"{"$kind": "manifest"}"#, "", Rule::MissingField),
    (
        r#"{"$kind": "manifest", "air_version": "2"}"#,
        "/air_version",
        Rule::BadVersion,
    ),
    (
        r#"{"$kind": "manifest", "air_version": 1}"#,
        "/air_version",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "name": "a/m@1"}"#,
        "/name",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "schemas": ["a/S@1"]}"#,
        "/schemas/0",
        Rule::WrongType,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "schemas": [{"name": "a/S@1", "hash": "b3:00"}]}"#,
        "/schemas/0/hash",
        Rule::BadHash,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "routing": {"subscriptions": []}}"#,
        "/routing/subscriptions",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "routing": {"events": [{"event": "a/E@1", "module": "a/M@1"}]}}"#,
        "/routing/events/0",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "triggers": [{"event": "a/E@1", "plan": "a/p@1", "correlate_by": ""}]}"#,
        "/triggers/0/correlate_by",
        Rule::Empty,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "defaults": {"cap_grants": [{"name": "g", "cap": "a/c@1"}]}}"#,
        "/defaults/cap_grants/0",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "defaults": {"cap_grants": [{"name": "g", "cap": "a/c@1", "params": {}, "expiry_ns": -1}]}}"#,
        "/defaults/cap_grants/0/expiry_ns",
        Rule::BadNumber,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "defaults": {"cap_grants": [{"name": "g", "cap": "a/c@1", "params": {}, "budget": {"tokens": 1.5}}]}}"#,
        "/defaults/cap_grants/0/budget/tokens",
        Rule::BadNumber,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "defaults": {"cap_grants": [{"name": "g", "cap": "a/c@1", "params": {}, "budget": {"dollars": 1}}]}}"#,
        "/defaults/cap_grants/0/budget/dollars",
        Rule::UnknownField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "module_bindings": {"nope": {"slots": {}}}}"#,
        "/module_bindings/nope",
        Rule::BadName,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "module_bindings": {"a/M@1": {}}}"#,
        "/module_bindings/a~1M@1",
        Rule::MissingField,
    ),
    (
        r#"{"$kind": "manifest", "air_version": "1", "module_bindings": {"a/M@1": {"slots": {"t": 1}}}}"#,
        "/module_bindings/a~1M@1/slots/t",
        Rule::WrongType,
    ),
];

#[test]
fn malformed_inputs_are_located() {
    for (input, pointer, rule) in MALFORMED {
        match Node::from_json(&json(input)) {
            Ok(n) => panic!("accepted {input}\nas {n:?}"),
            Err(e) => assert!(
                e.iter().any(|p| p.pointer == *pointer && p.rule == *rule),
                "{input}\nexpected {rule} at {pointer:?}, got {e:#?}"
            ),
        }
    }
}

#[test]
fn every_problem_in_a_node_is_reported() {
    let e = Node::from_json(&json(
        r#"{"$kind": "defeffect", "name": "bad", "kind": "X", "params_schema": "a/P@1",
            "cap_type": "x", "origin_scope": "plan", "extra": 1}"#,
    ))
    .expect_err("broken");
    let got: Vec<(&str, Rule)> = e.iter().map(|p| (p.pointer.as_str(), p.rule)).collect();
    assert_eq!(
        got,
        [
            ("/name", Rule::BadName),
            ("/kind", Rule::BadDotted),
            ("", Rule::MissingField),
            ("/extra", Rule::UnknownField)
        ]
    );
    // Pointers are based where the node sits.
    let e = Node::from_json_at(&json(r#"{"$kind": "defcap", "name": "a/c@1"}"#), "/4")
        .expect_err("broken");
    assert!(e.iter().all(|p| p.pointer == "/4"), "{e:?}");
}

#[test]
fn kinds_round_trip_their_names() {
    for k in NodeKind::ALL {
        assert_eq!(NodeKind::from_name(k.as_str()), Some(k));
    }
    assert_eq!(NodeKind::from_name("defmigration"), None);
}

#[test]
fn cap_grants_alone() {
    let g = cap_grant_from_json(&json(
        r#"{"name": "g", "cap": "sys/timer@1", "params": {"record": {}}}"#,
    ))
    .expect("valid grant");
    assert_eq!(cap_grant_from_json(&cap_grant_to_json(&g)), Ok(g));
}

/// Every JSON tree that differs from `j` at one place: a member removed, or a value
/// replaced by `null`, `{}`, `[]`, `"x"` or `0`.
fn single_mutations(j: &Json) -> Vec<Json> {
    let replacements = [
        Json::Null,
        Json::Object(vec![]),
        Json::Array(vec![]),
        Json::String("x".into()),
        Json::Number("0".into()),
    ];
    let mut out: Vec<Json> = replacements.to_vec();
    match j {
        Json::Array(items) => {
            for i in 0..items.len() {
                let mut fewer = items.clone();
                fewer.remove(i);
                out.push(Json::Array(fewer));
                for m in single_mutations(&items[i]) {
                    let mut changed = items.clone();
                    changed[i] = m;
                    out.push(Json::Array(changed));
                }
            }
        }
        Json::Object(members) => {
            for i in 0..members.len() {
                let mut fewer = members.clone();
                fewer.remove(i);
                out.push(Json::Object(fewer));
                for m in single_mutations(&members[i].1) {
                    let mut changed = members.clone();
                    changed[i].1 = m;
                    out.push(Json::Object(changed));
                }
            }
        }
        _ => {}
    }
    out
}

#[test]
fn single_mutations_never_panic_and_round_trip() {
    let mut accepted = 0;
    let mut rejected = 0;
    for s in every_kind() {
        for m in single_mutations(&json(&s)) {
            match Node::from_json(&m) {
                Ok(n) => {
                    accepted += 1;
                    round_trip(&n);
                }
                Err(e) => {
                    rejected += 1;
                    assert!(!e.is_empty());
                }
            }
        }
    }
    assert!(accepted > 100 && rejected > 1000, "{accepted} {rejected}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// JSON built from the vocabulary of AIR, so that random trees often get deep into
    /// the readers.
    fn arb_json() -> impl Strategy<Value = Json> {
        let words = prop::sample::select(vec![
            "$kind",
            "defplan",
            "defschema",
            "defmodule",
            "manifest",
            "name",
            "a/b@1",
            "steps",
            "id",
            "op",
            "end",
            "emit_effect",
            "params",
            "ref",
            "@var:x",
            "record",
            "text",
            "int",
            "args",
            "eq",
            "abi",
            "reducer",
            "state",
            "event",
            "air_version",
            "1",
            "type",
            "input",
            "bind",
            "as",
            "kind",
            "cap",
            "edges",
            "from",
            "to",
            "when",
        ]);
        let leaf = prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::Bool),
            prop::sample::select(vec!["0", "-1", "1.5", "18446744073709551616", "7"])
                .prop_map(|s| Json::Number(s.to_owned())),
            words.clone().prop_map(|s| Json::String(s.to_owned())),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
                prop::collection::vec((words.clone(), inner), 0..5).prop_map(|ms| {
                    let mut seen = std::collections::HashSet::new();
                    Json::Object(
                        ms.into_iter()
                            .filter(|(k, _)| seen.insert(*k))
                            .map(|(k, v)| (k.to_owned(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_nodes_round_trip(j in arb_json()) {
            if let Ok(n) = Node::from_json(&j) {
                prop_assert_eq!(Node::from_json(&n.to_json()), Ok(n));
            }
            if let Ok(x) = Expr::from_json(&j) {
                prop_assert_eq!(Expr::from_json(&x.to_json()), Ok(x));
            }
        }
    }
}
