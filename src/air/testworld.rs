//! A small but complete world used by the tests of canonical encoding and validation: every
//! node kind, keyed and pure modules, a plan with every step kind, built-ins listed by name,
//! grants, bindings, routing, inboxes, triggers with correlation, a policy and a secret.

use std::path::Path;

use super::diag::joined;
use super::load::{Origin, load_str};
use super::nodes::Node;

pub(crate) const SCHEMAS: &str = r#"[
  { "$kind": "defschema", "name": "shop/OrderId@1", "type": { "text": {} } },
  { "$kind": "defschema", "name": "shop/OrderPlaced@1",
    "type": { "record": { "order_id": { "text": {} }, "amount": { "nat": {} } } } },
  { "$kind": "defschema", "name": "shop/OrderPaid@1",
    "type": { "record": { "order_id": { "text": {} } } } },
  { "$kind": "defschema", "name": "shop/OrderEvent@1",
    "type": { "variant": { "Placed": { "ref": "shop/OrderPlaced@1" },
                           "Paid": { "ref": "shop/OrderPaid@1" },
                           "Timer": { "ref": "sys/TimerFired@1" } } } },
  { "$kind": "defschema", "name": "shop/OrderState@1",
    "type": { "record": { "status": { "text": {} }, "amount": { "nat": {} } } } },
  { "$kind": "defschema", "name": "shop/PlaceOrder@1",
    "type": { "record": { "order_id": { "text": {} }, "amount": { "nat": {} },
                          "url": { "text": {} } } } },
  { "$kind": "defschema", "name": "shop/Charge@1",
    "type": { "record": { "order_id": { "text": {} }, "ok": { "bool": {} } } } },
  { "$kind": "defschema", "name": "shop/Confirm@1",
    "type": { "record": { "order_id": { "text": {} } } } },
  { "$kind": "defschema", "name": "shop/Note@1",
    "type": { "record": { "text": { "text": {} }, "tags": { "set": { "text": {} } },
                          "due": { "option": { "time": {} } } } } }
]"#;

pub(crate) const MODULES: &str = r#"[
  { "$kind": "defmodule", "name": "shop/Orders@1", "module_kind": "reducer",
    "key_schema": "shop/OrderId@1",
    "abi": { "reducer": { "state": "shop/OrderState@1", "event": "shop/OrderEvent@1",
                          "effects_emitted": ["timer.set"], "cap_slots": { "timer": "timer" } } } },
  { "$kind": "defmodule", "name": "shop/Pricing@1", "module_kind": "pure",
    "abi": { "pure": { "input": "shop/PlaceOrder@1", "output": "shop/Charge@1" } } }
]"#;

pub(crate) const PLAN: &str = r#"{
  "$kind": "defplan", "name": "shop/charge@1",
  "input": "shop/PlaceOrder@1", "output": "shop/Charge@1",
  "locals": { "rcpt": "sys/HttpRequestReceipt@1", "note": "shop/Note@1" },
  "steps": [
    { "id": "emit", "op": "emit_effect", "kind": "http.request",
      "params": { "record": { "method": { "text": "POST" }, "url": { "ref": "@plan.input.url" },
                              "headers": { "map": [] }, "body_ref": { "null": {} } } },
      "cap": "http", "bind": { "effect_id_as": "req" } },
    { "id": "wait", "op": "await_receipt", "for": { "ref": "@var:req" },
      "bind": { "as": "rcpt" } },
    { "id": "ok", "op": "assign",
      "expr": { "op": "lt", "args": [ { "ref": "@var:rcpt.status" }, { "int": 400 } ] },
      "bind": { "as": "ok_flag" } },
    { "id": "jot", "op": "assign", "expr": { "text": "charged", "tags": ["b", "a"] },
      "bind": { "as": "note" } },
    { "id": "tell", "op": "raise_event", "reducer": "shop/Orders@1",
      "event": { "variant": { "tag": "Paid",
                              "value": { "record": { "order_id": { "ref": "@plan.input.order_id" } } } } },
      "key": { "ref": "@plan.input.order_id" } },
    { "id": "confirm", "op": "await_event", "event": "shop/Confirm@1",
      "where": { "op": "eq", "args": [ { "ref": "@event.order_id" }, { "ref": "@var:correlation_id" } ] },
      "bind": { "as": "confirmation" } },
    { "id": "done", "op": "end",
      "result": { "record": { "order_id": { "ref": "@plan.input.order_id" },
                              "ok": { "ref": "@var:ok_flag" } } } },
    { "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }
  ],
  "edges": [
    { "from": "emit", "to": "wait" },
    { "from": "wait", "to": "ok" },
    { "from": "ok", "to": "jot" },
    { "from": "jot", "to": "tell", "when": { "ref": "@var:ok_flag" } },
    { "from": "tell", "to": "confirm" },
    { "from": "confirm", "to": "done" },
    { "from": "jot", "to": "failed", "when": { "op": "not", "args": [ { "ref": "@var:ok_flag" } ] } }
  ],
  "required_caps": ["http"],
  "allowed_effects": ["http.request"],
  "invariants": [ { "op": "has", "args": [ { "ref": "@plan.input" }, { "text": "order_id" } ] } ]
}"#;

pub(crate) const POLICY: &str = r#"[
  { "$kind": "defpolicy", "name": "shop/policy@1", "rules": [
    { "when": { "effect_kind": "http.request", "cap_name": "http", "origin_kind": "plan",
                "origin_name": "shop/charge@1" }, "decision": "allow" },
    { "when": { "effect_kind": "timer.set", "origin_kind": "reducer",
                "origin_name": "shop/Orders@1" }, "decision": "allow" },
    { "when": {}, "decision": "deny" } ] },
  { "$kind": "defsecret", "name": "shop/api@1", "binding_id": "env:SHOP_KEY",
    "allowed_caps": ["http"], "allowed_plans": ["shop/charge@1"] }
]"#;

pub(crate) const MANIFEST: &str = r#"{
  "$kind": "manifest", "air_version": "1",
  "schemas": [
    { "name": "shop/OrderId@1" }, { "name": "shop/OrderPlaced@1" }, { "name": "shop/OrderPaid@1" },
    { "name": "shop/OrderEvent@1" }, { "name": "shop/OrderState@1" },
    { "name": "shop/PlaceOrder@1" }, { "name": "shop/Charge@1" }, { "name": "shop/Confirm@1" },
    { "name": "shop/Note@1" },
    { "name": "sys/TimerFired@1" }, { "name": "sys/TimerSetParams@1" },
    { "name": "sys/TimerSetReceipt@1" }, { "name": "sys/HttpRequestParams@1" },
    { "name": "sys/HttpRequestReceipt@1" }
  ],
  "modules": [ { "name": "shop/Orders@1" }, { "name": "shop/Pricing@1" } ],
  "plans": [ { "name": "shop/charge@1" } ],
  "effects": [ { "name": "sys/http.request@1" }, { "name": "sys/timer.set@1" } ],
  "caps": [ { "name": "sys/http.out@1" }, { "name": "sys/timer@1" } ],
  "policies": [ { "name": "shop/policy@1" } ],
  "secrets": [ { "name": "shop/api@1" } ],
  "routing": {
    "events": [
      { "event": "shop/OrderPlaced@1", "reducer": "shop/Orders@1", "key_field": "order_id" },
      { "event": "shop/OrderPaid@1", "reducer": "shop/Orders@1", "key_field": "order_id" }
    ],
    "inboxes": [ { "source": "http.inbox:orders", "reducer": "shop/Orders@1" } ]
  },
  "triggers": [ { "event": "shop/PlaceOrder@1", "plan": "shop/charge@1", "correlate_by": "order_id" } ],
  "defaults": {
    "policy": "shop/policy@1",
    "cap_grants": [
      { "name": "http", "cap": "sys/http.out@1",
        "params": { "hosts": ["api.pay.example"], "verbs": ["POST"] },
        "expiry_ns": 4102444800000000000, "budget": { "cents": 500 } },
      { "name": "timer_grant", "cap": "sys/timer@1", "params": {} }
    ]
  },
  "module_bindings": { "shop/Orders@1": { "slots": { "timer": "timer_grant" } } }
}"#;

/// The world's files: `(path, text)`.
pub(crate) fn files() -> Vec<(String, String)> {
    [
        ("air/schemas.air.json", SCHEMAS),
        ("air/modules.air.json", MODULES),
        ("air/plans/charge.air.json", PLAN),
        ("air/policy.air.json", POLICY),
        ("air/manifest.air.json", MANIFEST),
    ]
    .iter()
    .map(|(p, t)| ((*p).to_owned(), (*t).to_owned()))
    .collect()
}

/// Loads files given as `(path, text)`; panics on load problems.
pub(crate) fn load(files: &[(String, String)]) -> Vec<(Node, Origin)> {
    let mut nodes = Vec::new();
    for (p, t) in files {
        match load_str(Path::new(p), t).into_result() {
            Ok(n) => nodes.extend(n),
            Err(problems) => panic!("{}", joined(&problems, "\n")),
        }
    }
    nodes
}

/// A source function serving the files' texts.
pub(crate) fn source(files: &[(String, String)]) -> impl Fn(&Path) -> Option<String> + '_ {
    move |p: &Path| {
        files
            .iter()
            .find(|(f, _)| Path::new(f) == p)
            .map(|(_, t)| t.clone())
    }
}
