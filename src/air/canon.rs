//! The canonical encoding of AIR nodes and their ids.
//!
//! Every node has exactly one canonical data-model [`Value`]: a map holding `$kind` and the
//! node's fields, in which every way of spelling the same definition in authoring JSON (member
//! order, sugar or tagged literals, defaults written out or left away) comes out the same. Its
//! CBOR bytes are what the store keeps as an `air` object, and the node's id is
//! [`object::hash`]`(Kind::Air, bytes)` ([`node_id`]). The manifest lists every node it uses
//! as a CBOR link to that id, so a manifest id is the Merkle root of a world's whole control
//! plane, and `gc`/`fsck` follow its links.
//!
//! The rules are written down in `docs/air.md` ("Canonical encoding"); in short:
//!
//! - members that are absent, and optional lists and maps that are empty where empty means the
//!   same as absent, are left out; `defplan.required_caps` and `defplan.allowed_effects` are
//!   always present and always the sets derived from the steps;
//! - lists that are sets by meaning (the manifest's node lists and grants, a reducer's
//!   `effects_emitted`, a secret's `allowed_caps` and `allowed_plans`) are sorted and
//!   deduplicated; lists whose order means something (steps, edges, rules, routing, triggers)
//!   keep it;
//! - a literal value (a cap grant's `params`; a literal, or a constant expression, in an
//!   `ExprOrValue` slot whose type is known) is read through its type, canonicalized, and
//!   written as the constant expression that spells the canonical value in the tagged lens,
//!   so the sugar and the tagged spelling of one value are the same bytes, and a stored node
//!   decodes without knowing any schema ([`node_from_value`]);
//! - expressions are encoded structurally, the same shape as their JSON form (see
//!   [`expr_value`]).
//!
//! Encoding needs the types of literal slots, which live in other nodes (a plan's
//! `emit_effect.params` is typed by the effect's params schema): a [`Catalog`] of the world's
//! nodes supplies them.

use std::collections::HashMap;
use std::fmt;

use super::expr::{Const, Expr, ExprOrValue, Op, Ref};
use super::name::Name;
use super::nodes::{
    Budget, CapGrant, Decision, DefCap, DefEffect, DefModule, DefPlan, DefPolicy, DefSchema,
    DefSecret, Defaults, Edge, Inbox, Manifest, ModuleAbi, ModuleBinding, ModuleKind, NamedRef,
    Node, NodeKind, OriginKind, OriginScope, PolicyMatch, PolicyRule, PureAbi, ReducerAbi,
    RouteEvent, Routing, Step, StepOp, Trigger,
};
use super::types::{Schemas, Type, resolve};
use super::value;
use crate::codec::cbor::{self, Map, Value};
use crate::codec::json::{Json, pointer_escape};
use crate::object::{self, Kind, ObjectId};

// ---------------------------------------------------------------------------------------------
// Errors

/// Why a node cannot be encoded, or a value is not the canonical encoding of a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CanonError {
    /// JSON pointer (RFC 6901) of the offending part, relative to the node: for encoding a
    /// pointer into the node's authoring JSON, for decoding a path into the value.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for CanonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "at `{}`: {}", self.pointer, self.message)
        }
    }
}

fn fail(pointer: &str, message: impl Into<String>) -> CanonError {
    CanonError {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

fn at(p: &str, key: &str) -> String {
    format!("{p}/{}", pointer_escape(key))
}

fn at_i(p: &str, i: usize) -> String {
    format!("{p}/{i}")
}

// ---------------------------------------------------------------------------------------------
// Catalog

/// The nodes of a world, indexed for what encoding (and validation) needs to look up: schemas
/// by name, effects by kind, modules and capabilities by name.
///
/// When two nodes claim one name (or two effects one kind) the first one wins; validation
/// reports the clash.
#[derive(Debug, Default)]
pub struct Catalog<'a> {
    schemas: HashMap<&'a Name, &'a Type>,
    effects: HashMap<&'a str, &'a DefEffect>,
    modules: HashMap<&'a Name, &'a DefModule>,
    caps: HashMap<&'a Name, &'a DefCap>,
}

impl<'a> Catalog<'a> {
    /// Indexes `nodes` (manifests are ignored).
    pub fn new<I: IntoIterator<Item = &'a Node>>(nodes: I) -> Self {
        let mut c = Catalog::default();
        for n in nodes {
            match n {
                Node::DefSchema(s) => {
                    c.schemas.entry(&s.name).or_insert(&s.ty);
                }
                Node::DefEffect(e) => {
                    c.effects.entry(e.kind.as_str()).or_insert(e);
                }
                Node::DefModule(m) => {
                    c.modules.entry(&m.name).or_insert(m);
                }
                Node::DefCap(x) => {
                    c.caps.entry(&x.name).or_insert(x);
                }
                _ => {}
            }
        }
        c
    }

    /// The type of the schema named `name`.
    #[must_use]
    pub fn schema(&self, name: &Name) -> Option<&'a Type> {
        self.schemas.get(name).copied()
    }

    /// Drops the schema named `name`, so that types reaching it count as unknown (validation
    /// does this to schemas that are recursive or reach unknown ones).
    pub(crate) fn forget_schema(&mut self, name: &Name) {
        self.schemas.remove(name);
    }

    /// The effect of kind `kind`.
    #[must_use]
    pub fn effect(&self, kind: &str) -> Option<&'a DefEffect> {
        self.effects.get(kind).copied()
    }

    /// The module named `name`.
    #[must_use]
    pub fn module(&self, name: &Name) -> Option<&'a DefModule> {
        self.modules.get(name).copied()
    }

    /// The capability named `name`.
    #[must_use]
    pub fn cap(&self, name: &Name) -> Option<&'a DefCap> {
        self.caps.get(name).copied()
    }

    /// The event schema of the reducer named `name`, if it is a reducer.
    #[must_use]
    pub fn reducer_event(&self, name: &Name) -> Option<&'a Name> {
        match &self.module(name)?.abi {
            ModuleAbi::Reducer(r) => Some(&r.event),
            ModuleAbi::Pure(_) => None,
        }
    }
}

impl Schemas for Catalog<'_> {
    fn get(&self, name: &Name) -> Option<&Type> {
        self.schema(name)
    }
}

// ---------------------------------------------------------------------------------------------
// Ids

/// The id of a node whose canonical value is `v`: `object::hash(Kind::Air, cbor(v))`.
#[must_use]
pub fn node_id(v: &Value) -> ObjectId {
    object::hash(Kind::Air, &cbor::encode(v))
}

/// The canonical value of `node` and its id.
///
/// # Errors
/// As [`node_value`].
pub fn node_value_and_id(node: &Node, cat: &Catalog<'_>) -> Result<(Value, ObjectId), CanonError> {
    let v = node_value(node, cat)?;
    let id = node_id(&v);
    Ok((v, id))
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Builds a map with text keys.
struct MapB(Map);

impl MapB {
    fn new(kind: NodeKind) -> Self {
        let mut m = Self(Map::new());
        m.text("$kind", kind.as_str());
        m
    }

    fn plain() -> Self {
        Self(Map::new())
    }

    fn put(&mut self, k: &str, v: Value) {
        self.0.insert(Value::Text(k.to_owned()), v);
    }

    fn text(&mut self, k: &str, v: &str) {
        self.put(k, Value::Text(v.to_owned()));
    }

    fn name(&mut self, k: &str, v: &Name) {
        self.text(k, v.as_str());
    }

    fn opt_name(&mut self, k: &str, v: Option<&Name>) {
        if let Some(v) = v {
            self.name(k, v);
        }
    }

    fn done(self) -> Value {
        Value::Map(self.0)
    }
}

fn texts<'s>(xs: impl IntoIterator<Item = &'s str>) -> Value {
    Value::Array(xs.into_iter().map(|s| Value::Text(s.to_owned())).collect())
}

/// Sorted (bytewise) and deduplicated.
fn sorted_set<'s>(xs: impl IntoIterator<Item = &'s str>) -> Vec<&'s str> {
    let mut v: Vec<&str> = xs.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn text_map(xs: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in xs {
        m.insert(Value::Text(k.clone()), Value::Text(v.clone()));
    }
    Value::Map(m)
}

/// The canonical value of a node.
///
/// # Errors
/// [`CanonError`] (with the pointer of the part, relative to the node's authoring JSON) if a
/// literal cannot be typed (its slot's type is unknown to `cat`) or does not fit its type, or
/// a manifest entry has no hash (fill the hashes first: a manifest links the ids of its
/// nodes).
pub fn node_value(node: &Node, cat: &Catalog<'_>) -> Result<Value, CanonError> {
    let mut m = MapB::new(node.kind());
    match node {
        Node::DefSchema(DefSchema { name, ty }) => {
            m.name("name", name);
            m.put("type", ty.to_value());
        }
        Node::DefModule(x) => encode_module(&mut m, x),
        Node::DefPlan(x) => encode_plan(&mut m, x, cat)?,
        Node::DefCap(x) => {
            m.name("name", &x.name);
            m.text("cap_type", &x.cap_type);
            m.put("schema", x.schema.to_value());
        }
        Node::DefPolicy(x) => {
            m.name("name", &x.name);
            m.put(
                "rules",
                Value::Array(x.rules.iter().map(encode_rule).collect()),
            );
        }
        Node::DefEffect(x) => {
            m.name("name", &x.name);
            m.text("kind", &x.kind);
            m.name("params_schema", &x.params_schema);
            m.name("receipt_schema", &x.receipt_schema);
            m.text("cap_type", &x.cap_type);
            m.text("origin_scope", OriginScope::as_str(x.origin_scope));
            if let Some(d) = &x.description {
                m.text("description", d);
            }
        }
        Node::DefSecret(x) => {
            m.name("name", &x.name);
            m.text("binding_id", &x.binding_id);
            if let Some(h) = &x.expected_digest {
                m.text("expected_digest", &h.to_string());
            }
            if let Some(c) = &x.allowed_caps {
                m.put(
                    "allowed_caps",
                    texts(sorted_set(c.iter().map(String::as_str))),
                );
            }
            if let Some(p) = &x.allowed_plans {
                m.put(
                    "allowed_plans",
                    texts(sorted_set(p.iter().map(Name::as_str))),
                );
            }
        }
        Node::Manifest(x) => encode_manifest(&mut m, x, cat)?,
    }
    Ok(m.done())
}

fn encode_module(m: &mut MapB, x: &DefModule) {
    m.name("name", &x.name);
    m.text("module_kind", x.module_kind().as_str());
    if let Some(h) = x.wasm_hash {
        m.put("wasm_hash", Value::Link(h));
    }
    m.opt_name("key_schema", x.key_schema.as_ref());
    let mut abi = MapB::plain();
    match &x.abi {
        ModuleAbi::Reducer(r) => {
            let mut a = MapB::plain();
            a.name("state", &r.state);
            a.name("event", &r.event);
            a.opt_name("annotations", r.annotations.as_ref());
            if !r.effects_emitted.is_empty() {
                a.put(
                    "effects_emitted",
                    texts(sorted_set(r.effects_emitted.iter().map(String::as_str))),
                );
            }
            if !r.cap_slots.is_empty() {
                a.put("cap_slots", text_map(&r.cap_slots));
            }
            abi.put("reducer", a.done());
        }
        ModuleAbi::Pure(p) => {
            let mut a = MapB::plain();
            a.name("input", &p.input);
            a.name("output", &p.output);
            abi.put("pure", a.done());
        }
    }
    m.put("abi", abi.done());
}

/// The sets of grant names and effect kinds a plan's `emit_effect` steps use, sorted
/// bytewise: what `required_caps` and `allowed_effects` must equal.
#[must_use]
pub fn derived_caps_and_effects(plan: &DefPlan) -> (Vec<&str>, Vec<&str>) {
    let mut caps = Vec::new();
    let mut kinds = Vec::new();
    for s in &plan.steps {
        if let StepOp::EmitEffect { kind, cap, .. } = &s.op {
            caps.push(cap.as_str());
            kinds.push(kind.as_str());
        }
    }
    (sorted_set(caps), sorted_set(kinds))
}

/// The type of the literal slots of a step, when known: the slots whose literals are
/// canonicalized through a type (`emit_effect.params`, `raise_event.event`, `assign.expr`,
/// `end.result`).
pub(crate) fn slot_type(plan: &DefPlan, op: &StepOp, cat: &Catalog<'_>) -> Option<Type> {
    match op {
        StepOp::EmitEffect { kind, .. } => Some(Type::Ref(cat.effect(kind)?.params_schema.clone())),
        StepOp::RaiseEvent { reducer, .. } => Some(Type::Ref(cat.reducer_event(reducer)?.clone())),
        StepOp::Assign { bind_as, .. } => plan
            .locals
            .iter()
            .find(|(v, _)| v == bind_as)
            .map(|(_, t)| Type::Ref(t.clone())),
        StepOp::End { .. } => plan.output.clone().map(Type::Ref),
        StepOp::AwaitReceipt { .. } | StepOp::AwaitEvent { .. } => None,
    }
}

fn encode_plan(m: &mut MapB, x: &DefPlan, cat: &Catalog<'_>) -> Result<(), CanonError> {
    m.name("name", &x.name);
    m.name("input", &x.input);
    m.opt_name("output", x.output.as_ref());
    if !x.locals.is_empty() {
        let mut l = Map::new();
        for (k, t) in &x.locals {
            l.insert(Value::Text(k.clone()), Value::Text(t.to_string()));
        }
        m.put("locals", Value::Map(l));
    }
    let mut steps = Vec::with_capacity(x.steps.len());
    for (i, s) in x.steps.iter().enumerate() {
        let p = format!("/steps/{i}");
        let ty = slot_type(x, &s.op, cat);
        steps.push(encode_step(s, ty.as_ref(), cat, &p)?);
    }
    m.put("steps", Value::Array(steps));
    if !x.edges.is_empty() {
        m.put(
            "edges",
            Value::Array(
                x.edges
                    .iter()
                    .map(|e| {
                        let mut b = MapB::plain();
                        b.text("from", &e.from);
                        b.text("to", &e.to);
                        if let Some(w) = &e.when {
                            b.put("when", expr_value(w));
                        }
                        b.done()
                    })
                    .collect(),
            ),
        );
    }
    let (caps, kinds) = derived_caps_and_effects(x);
    m.put("required_caps", texts(caps));
    m.put("allowed_effects", texts(kinds));
    if !x.invariants.is_empty() {
        m.put(
            "invariants",
            Value::Array(x.invariants.iter().map(expr_value).collect()),
        );
    }
    Ok(())
}

fn bind_value(field: &str, var: &str) -> Value {
    let mut b = MapB::plain();
    b.text(field, var);
    b.done()
}

fn encode_step(
    s: &Step,
    ty: Option<&Type>,
    cat: &Catalog<'_>,
    p: &str,
) -> Result<Value, CanonError> {
    let mut m = MapB::plain();
    m.text("id", &s.id);
    m.text("op", s.op.as_str());
    match &s.op {
        StepOp::RaiseEvent {
            reducer,
            event,
            key,
        } => {
            m.name("reducer", reducer);
            m.put("event", slot_value(event, ty, cat, &at(p, "event"))?);
            if let Some(k) = key {
                m.put("key", expr_value(k));
            }
        }
        StepOp::EmitEffect {
            kind,
            params,
            cap,
            bind_effect_id_as,
        } => {
            m.text("kind", kind);
            m.put("params", slot_value(params, ty, cat, &at(p, "params"))?);
            m.text("cap", cap);
            m.put("bind", bind_value("effect_id_as", bind_effect_id_as));
        }
        StepOp::AwaitReceipt {
            receipt_for,
            bind_as,
        } => {
            m.put("for", expr_value(receipt_for));
            m.put("bind", bind_value("as", bind_as));
        }
        StepOp::AwaitEvent {
            event,
            filter,
            bind_as,
        } => {
            m.name("event", event);
            if let Some(f) = filter {
                m.put("where", expr_value(f));
            }
            m.put("bind", bind_value("as", bind_as));
        }
        StepOp::Assign { expr, bind_as } => {
            m.put("expr", slot_value(expr, ty, cat, &at(p, "expr"))?);
            m.put("bind", bind_value("as", bind_as));
        }
        StepOp::End { result } => {
            if let Some(r) = result {
                m.put("result", slot_value(r, ty, cat, &at(p, "result"))?);
            }
        }
    }
    Ok(m.done())
}

fn encode_rule(r: &PolicyRule) -> Value {
    let mut w = MapB::plain();
    if let Some(k) = &r.when.effect_kind {
        w.text("effect_kind", k);
    }
    if let Some(c) = &r.when.cap_name {
        w.text("cap_name", c);
    }
    if let Some(o) = r.when.origin_kind {
        w.text("origin_kind", o.as_str());
    }
    w.opt_name("origin_name", r.when.origin_name.as_ref());
    let mut m = MapB::plain();
    m.put("when", w.done());
    m.text("decision", r.decision.as_str());
    m.done()
}

/// The manifest list keys, in [`NodeKind`] order of the kinds they list.
const LISTS: [(&str, NodeKind); 7] = [
    ("schemas", NodeKind::DefSchema),
    ("modules", NodeKind::DefModule),
    ("plans", NodeKind::DefPlan),
    ("effects", NodeKind::DefEffect),
    ("caps", NodeKind::DefCap),
    ("policies", NodeKind::DefPolicy),
    ("secrets", NodeKind::DefSecret),
];

/// The manifest member that lists nodes of `kind` (`None` for `manifest`).
#[must_use]
pub fn list_key(kind: NodeKind) -> Option<&'static str> {
    LISTS.iter().find(|(_, k)| *k == kind).map(|(s, _)| *s)
}

fn encode_manifest(m: &mut MapB, x: &Manifest, cat: &Catalog<'_>) -> Result<(), CanonError> {
    m.text("air_version", "1");
    for (key, kind) in LISTS {
        let refs = x.refs(kind).unwrap_or_default();
        if refs.is_empty() {
            continue;
        }
        let mut order: Vec<(usize, &NamedRef)> = refs.iter().enumerate().collect();
        order.sort_by(|a, b| a.1.name.as_str().cmp(b.1.name.as_str()));
        order.dedup_by(|a, b| a.1.name == b.1.name);
        let mut items = Vec::with_capacity(order.len());
        for (i, r) in order {
            let Some(h) = r.known_hash() else {
                return Err(fail(
                    &format!("/{key}/{i}"),
                    format!(
                        "the hash of {} is not filled in (a manifest links the ids of its nodes)",
                        r.name
                    ),
                ));
            };
            let mut e = MapB::plain();
            e.name("name", &r.name);
            e.put("hash", Value::Link(h));
            items.push(e.done());
        }
        m.put(key, Value::Array(items));
    }
    let mut routing = MapB::plain();
    if !x.routing.events.is_empty() {
        routing.put(
            "events",
            Value::Array(
                x.routing
                    .events
                    .iter()
                    .map(|r| {
                        let mut e = MapB::plain();
                        e.name("event", &r.event);
                        e.name("reducer", &r.reducer);
                        if let Some(k) = &r.key_field {
                            e.text("key_field", k);
                        }
                        e.done()
                    })
                    .collect(),
            ),
        );
    }
    if !x.routing.inboxes.is_empty() {
        routing.put(
            "inboxes",
            Value::Array(
                x.routing
                    .inboxes
                    .iter()
                    .map(|r| {
                        let mut e = MapB::plain();
                        e.text("source", &r.source);
                        e.name("reducer", &r.reducer);
                        e.done()
                    })
                    .collect(),
            ),
        );
    }
    if !routing.0.is_empty() {
        m.put("routing", routing.done());
    }
    if !x.triggers.is_empty() {
        m.put(
            "triggers",
            Value::Array(
                x.triggers
                    .iter()
                    .map(|t| {
                        let mut e = MapB::plain();
                        e.name("event", &t.event);
                        e.name("plan", &t.plan);
                        if let Some(c) = &t.correlate_by {
                            e.text("correlate_by", c);
                        }
                        e.done()
                    })
                    .collect(),
            ),
        );
    }
    let mut defaults = MapB::plain();
    defaults.opt_name("policy", x.defaults.policy.as_ref());
    if !x.defaults.cap_grants.is_empty() {
        let mut order: Vec<(usize, &CapGrant)> = x.defaults.cap_grants.iter().enumerate().collect();
        order.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let mut grants = Vec::with_capacity(order.len());
        for (i, g) in order {
            grants.push(encode_grant(g, cat, &format!("/defaults/cap_grants/{i}"))?);
        }
        defaults.put("cap_grants", Value::Array(grants));
    }
    if !defaults.0.is_empty() {
        m.put("defaults", defaults.done());
    }
    if !x.module_bindings.is_empty() {
        let mut b = Map::new();
        for mb in &x.module_bindings {
            let mut e = MapB::plain();
            e.put("slots", text_map(&mb.slots));
            b.insert(Value::Text(mb.module.to_string()), e.done());
        }
        m.put("module_bindings", Value::Map(b));
    }
    Ok(())
}

/// The type of a cap grant's `params`: its capability's schema, when known.
pub(crate) fn grant_type<'a>(g: &CapGrant, cat: &Catalog<'a>) -> Option<&'a Type> {
    cat.cap(&g.cap).map(|c| &c.schema)
}

fn encode_grant(g: &CapGrant, cat: &Catalog<'_>, p: &str) -> Result<Value, CanonError> {
    let mut m = MapB::plain();
    m.text("name", &g.name);
    m.name("cap", &g.cap);
    let ty = grant_type(g, cat).ok_or_else(|| {
        fail(
            &at(p, "params"),
            format!(
                "the parameters cannot be typed: no capability {} is known",
                g.cap
            ),
        )
    })?;
    let params = literal_value(&g.params, ty, cat, &at(p, "params"))?;
    m.put("params", params);
    if let Some(x) = g.expiry_ns {
        m.put("expiry_ns", Value::from(x));
    }
    if let Some(b) = &g.budget {
        let mut bm = MapB::plain();
        for (k, v) in [("tokens", b.tokens), ("bytes", b.bytes), ("cents", b.cents)] {
            if let Some(v) = v {
                bm.put(k, Value::from(v));
            }
        }
        if !bm.0.is_empty() {
            m.put("budget", bm.done());
        }
    }
    Ok(m.done())
}

// ---------------------------------------------------------------------------------------------
// Literals and slots

/// Whether `e` is a constant expression spelled as the tagged literal of a value of type `ty`
/// at every position (so that reading its JSON form through `ty` reads it as tagged, never as
/// sugar).
fn tagged_shape(e: &Expr, ty: &Type, schemas: &dyn Schemas, depth: usize) -> bool {
    if depth > cbor::MAX_DEPTH {
        return false;
    }
    let Ok(t) = resolve(ty, schemas) else {
        return false;
    };
    let d = depth + 1;
    match (e, t) {
        (Expr::Const(Const::Null), Type::Option(_) | Type::Unit) => true,
        (_, Type::Option(inner)) => tagged_shape(e, inner, schemas, d),
        (Expr::Const(c), t) => matches!(
            (c, t),
            (Const::Bool(_), Type::Bool)
                | (Const::Int(_), Type::Int)
                | (Const::Nat(_), Type::Nat)
                | (Const::Dec128(_), Type::Dec128)
                | (Const::Text(_), Type::Text)
                | (Const::Bytes(_), Type::Bytes)
                | (Const::TimeNs(_), Type::Time)
                | (Const::DurationNs(_), Type::Duration)
                | (Const::Hash(_), Type::Hash)
                | (Const::Uuid(_), Type::Uuid)
        ),
        (Expr::Record(fs), Type::Record(ft)) => fs
            .iter()
            .all(|(k, x)| ft.get(k).is_some_and(|t| tagged_shape(x, t, schemas, d))),
        (Expr::Variant { tag, value }, Type::Variant(tags)) => {
            tags.get(tag).is_some_and(|pt| match value {
                Some(x) => tagged_shape(x, pt, schemas, d),
                None => true,
            })
        }
        (Expr::List(xs), Type::List(el)) | (Expr::Set(xs), Type::Set(el)) => {
            xs.iter().all(|x| tagged_shape(x, el, schemas, d))
        }
        (Expr::Map(kvs), Type::Map { key, value }) => kvs.iter().all(|(k, v)| {
            tagged_shape(k, key.type_ref(), schemas, d) && tagged_shape(v, value, schemas, d)
        }),
        _ => false,
    }
}

/// The value of a constant expression `e` of type `ty`, if `e` is one (references and
/// operators are not constant) and fits `ty`.
#[must_use]
pub fn const_expr_value(e: &Expr, ty: &Type, schemas: &dyn Schemas) -> Option<Value> {
    if !tagged_shape(e, ty, schemas, 0) {
        return None;
    }
    value::from_json(&e.to_json(), ty, schemas).ok()
}

/// The constant expression that spells the canonical value `v` of type `ty` in the tagged
/// lens.
fn value_expr(v: &Value, ty: &Type, schemas: &dyn Schemas, p: &str) -> Result<Expr, CanonError> {
    let j = value::to_tagged(v, ty, schemas).map_err(|e| fail(p, e.to_string()))?;
    Expr::from_json(&j).map_err(|es| {
        fail(
            p,
            format!(
                "internal: the tagged form of a value is not an expression: {}",
                es.first().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })
}

/// The canonical encoding of a literal (JSON in either lens) of type `ty`.
pub(crate) fn literal_value(
    j: &Json,
    ty: &Type,
    cat: &Catalog<'_>,
    p: &str,
) -> Result<Value, CanonError> {
    let v = value::from_json(j, ty, cat).map_err(|e| CanonError {
        pointer: format!("{p}{}", e.path),
        message: e.message,
    })?;
    Ok(expr_value(&value_expr(&v, ty, cat, p)?))
}

/// The canonical encoding of an `ExprOrValue` slot of type `ty` (when known).
/// Rewrites AgentOS's option spellings — the variant constructors `None` and `Some {value}`
/// at a position typed `option<T>` (T not itself a variant) — into aos's (`null`, or the
/// value itself), so that both spellings of one plan have one encoding and one id.
fn options_as_values(e: &Expr, t: &Type, cat: &Catalog<'_>, depth: usize) -> Expr {
    const LIMIT: usize = 256;
    let Ok(rt) = resolve(t, cat) else {
        return e.clone();
    };
    if depth > LIMIT {
        return e.clone();
    }
    let d = depth + 1;
    let not_variant = |inner: &Type| !matches!(resolve(inner, cat), Ok(Type::Variant(_)) | Err(_));
    match (e, rt) {
        (Expr::Variant { tag, value }, Type::Option(inner))
            if tag == "None"
                && matches!(value.as_deref(), None | Some(Expr::Const(Const::Null)))
                && not_variant(inner) =>
        {
            Expr::Const(Const::Null)
        }
        (
            Expr::Variant {
                tag,
                value: Some(x),
            },
            Type::Option(inner),
        ) if tag == "Some" && not_variant(inner) => options_as_values(x, inner, cat, d),
        (_, Type::Option(inner)) => options_as_values(e, inner, cat, d),
        (Expr::Record(fs), Type::Record(ft)) => Expr::Record(
            fs.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        ft.get(k)
                            .map_or_else(|| x.clone(), |t2| options_as_values(x, t2, cat, d)),
                    )
                })
                .collect(),
        ),
        (Expr::List(xs), Type::List(el)) => Expr::List(
            xs.iter()
                .map(|x| options_as_values(x, el, cat, d))
                .collect(),
        ),
        (Expr::Set(xs), Type::Set(el)) => Expr::Set(
            xs.iter()
                .map(|x| options_as_values(x, el, cat, d))
                .collect(),
        ),
        (Expr::Map(es), Type::Map { key, value }) => Expr::Map(
            es.iter()
                .map(|(k, v)| {
                    (
                        options_as_values(k, key.type_ref(), cat, d),
                        options_as_values(v, value, cat, d),
                    )
                })
                .collect(),
        ),
        (
            Expr::Variant {
                tag,
                value: Some(x),
            },
            Type::Variant(tags),
        ) => Expr::Variant {
            tag: tag.clone(),
            value: Some(Box::new(tags.get(tag).map_or_else(
                || (**x).clone(),
                |t2| options_as_values(x, t2, cat, d),
            ))),
        },
        _ => e.clone(),
    }
}

pub(crate) fn slot_value(
    slot: &ExprOrValue,
    ty: Option<&Type>,
    cat: &Catalog<'_>,
    p: &str,
) -> Result<Value, CanonError> {
    match (slot, ty) {
        (ExprOrValue::Expr(e), Some(t)) => {
            let e = &options_as_values(e, t, cat, 0);
            match const_expr_value(e, t, cat) {
                Some(v) => Ok(expr_value(&value_expr(&v, t, cat, p)?)),
                None => Ok(expr_value(e)),
            }
        }
        (ExprOrValue::Expr(e), None) => Ok(expr_value(e)),
        (ExprOrValue::Value(j), Some(t)) => literal_value(j, t, cat, p),
        (ExprOrValue::Value(_), None) => Err(fail(
            p,
            "a literal value needs the slot's type, which is unknown here; \
             write it as an expression (tagged literal)",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions

fn one(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(Value::Text(k.to_owned()), v);
    Value::Map(m)
}

/// The canonical encoding of an expression: the shape of its JSON form, as a data-model
/// value. Each form is a one-entry map (the operator form has the two entries `op` and
/// `args`); integers are integers, `dec128` constants carry their canonical text when the
/// text is a valid decimal, byte constants are `{"bytes": <byte string>}` (not base64), and
/// hashes and UUIDs are their text forms. A record constructor is a map, so its fields are in
/// canonical order; everything else keeps its order.
#[must_use]
pub fn expr_value(e: &Expr) -> Value {
    match e {
        Expr::Const(c) => match c {
            Const::Null => one("null", Value::Map(Map::new())),
            Const::Bool(b) => one("bool", Value::Bool(*b)),
            Const::Int(i) => one("int", Value::from(*i)),
            Const::Nat(n) => one("nat", Value::from(*n)),
            Const::Dec128(s) => one(
                "dec128",
                Value::Text(value::canonical_dec128(s).unwrap_or_else(|_| s.clone())),
            ),
            Const::Text(s) => one("text", Value::Text(s.clone())),
            Const::Bytes(b) => one("bytes", Value::Bytes(b.clone())),
            Const::TimeNs(n) => one("time_ns", Value::from(*n)),
            Const::DurationNs(i) => one("duration_ns", Value::from(*i)),
            Const::Hash(h) => one("hash", Value::Text(h.to_string())),
            Const::Uuid(u) => one("uuid", Value::Text(u.clone())),
        },
        Expr::Ref(r) => one("ref", Value::Text(r.to_string())),
        Expr::Op { op, args } => {
            let mut m = MapB::plain();
            m.text("op", op.as_str());
            m.put("args", Value::Array(args.iter().map(expr_value).collect()));
            m.done()
        }
        Expr::Record(fs) => {
            let mut m = Map::new();
            for (k, x) in fs {
                m.insert(Value::Text(k.clone()), expr_value(x));
            }
            one("record", Value::Map(m))
        }
        Expr::List(xs) => one("list", Value::Array(xs.iter().map(expr_value).collect())),
        Expr::Set(xs) => one("set", Value::Array(xs.iter().map(expr_value).collect())),
        Expr::Map(kvs) => one(
            "map",
            Value::Array(
                kvs.iter()
                    .map(|(k, v)| {
                        let mut m = MapB::plain();
                        m.put("key", expr_value(k));
                        m.put("value", expr_value(v));
                        m.done()
                    })
                    .collect(),
            ),
        ),
        Expr::Variant { tag, value } => {
            let mut m = MapB::plain();
            m.text("tag", tag);
            if let Some(v) = value {
                m.put("value", expr_value(v));
            }
            one("variant", m.done())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A map being decoded: every key must be taken.
struct Rd<'v> {
    m: &'v Map,
    p: String,
    taken: Vec<String>,
}

impl<'v> Rd<'v> {
    fn new(v: &'v Value, p: &str, what: &str) -> Result<Self, CanonError> {
        match v {
            Value::Map(m) => {
                if let Some((k, _)) = m
                    .entries()
                    .iter()
                    .find(|(k, _)| !matches!(k, Value::Text(_)))
                {
                    return Err(fail(p, format!("{what} has a key that is not text: {k:?}")));
                }
                Ok(Self {
                    m,
                    p: p.to_owned(),
                    taken: Vec::new(),
                })
            }
            other => Err(fail(
                p,
                format!("{what} is a map, found {}", super::types::value_kind(other)),
            )),
        }
    }

    fn opt(&mut self, k: &str) -> Option<(&'v Value, String)> {
        let v = self.m.get_text(k)?;
        self.taken.push(k.to_owned());
        Some((v, at(&self.p, k)))
    }

    fn req(&mut self, k: &str) -> Result<(&'v Value, String), CanonError> {
        self.opt(k)
            .ok_or_else(|| fail(&self.p, format!("`{k}` is missing")))
    }

    fn finish(self) -> Result<(), CanonError> {
        if self.taken.len() == self.m.len() {
            return Ok(());
        }
        let extra: Vec<String> = self
            .m
            .entries()
            .iter()
            .filter_map(|(k, _)| match k {
                Value::Text(t) if !self.taken.contains(t) => Some(format!("`{t}`")),
                _ => None,
            })
            .collect();
        Err(fail(
            &self.p,
            format!("unexpected member(s) {}", extra.join(", ")),
        ))
    }

    fn text(&mut self, k: &str) -> Result<String, CanonError> {
        let (v, p) = self.req(k)?;
        text(v, &p)
    }

    fn opt_text(&mut self, k: &str) -> Result<Option<String>, CanonError> {
        self.opt(k).map(|(v, p)| text(v, &p)).transpose()
    }

    fn name(&mut self, k: &str) -> Result<Name, CanonError> {
        let (v, p) = self.req(k)?;
        read_name(v, &p)
    }

    fn opt_name(&mut self, k: &str) -> Result<Option<Name>, CanonError> {
        self.opt(k).map(|(v, p)| read_name(v, &p)).transpose()
    }

    fn texts(&mut self, k: &str) -> Result<Option<Vec<String>>, CanonError> {
        self.opt(k)
            .map(|(v, p)| {
                array(v, &p)?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| text(x, &at_i(&p, i)))
                    .collect()
            })
            .transpose()
    }

    fn text_map(&mut self, k: &str) -> Result<Vec<(String, String)>, CanonError> {
        let Some((v, p)) = self.opt(k) else {
            return Ok(Vec::new());
        };
        let Value::Map(m) = v else {
            return Err(fail(&p, "expected a map"));
        };
        m.entries()
            .iter()
            .map(|(k, x)| {
                let k = text(k, &p)?;
                let x = text(x, &at(&p, &k))?;
                Ok((k, x))
            })
            .collect()
    }

    fn nat(&mut self, k: &str) -> Result<Option<u64>, CanonError> {
        self.opt(k).map(|(v, p)| nat(v, &p)).transpose()
    }

    fn word<T: Copy>(&mut self, k: &str, words: &[(&str, T)]) -> Result<T, CanonError> {
        let (v, p) = self.req(k)?;
        let s = text(v, &p)?;
        words
            .iter()
            .find(|(w, _)| *w == s)
            .map(|(_, x)| *x)
            .ok_or_else(|| fail(&p, format!("unexpected word {s:?}")))
    }
}

fn text(v: &Value, p: &str) -> Result<String, CanonError> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        other => Err(fail(
            p,
            format!("expected text, found {}", super::types::value_kind(other)),
        )),
    }
}

fn read_name(v: &Value, p: &str) -> Result<Name, CanonError> {
    let s = text(v, p)?;
    Name::new(&s).map_err(|e| fail(p, e.to_string()))
}

fn array<'v>(v: &'v Value, p: &str) -> Result<&'v [Value], CanonError> {
    match v {
        Value::Array(xs) => Ok(xs),
        other => Err(fail(
            p,
            format!(
                "expected an array, found {}",
                super::types::value_kind(other)
            ),
        )),
    }
}

fn int(v: &Value, p: &str) -> Result<i128, CanonError> {
    match v {
        Value::Int(i) => Ok(i.get()),
        other => Err(fail(
            p,
            format!(
                "expected an integer, found {}",
                super::types::value_kind(other)
            ),
        )),
    }
}

fn nat(v: &Value, p: &str) -> Result<u64, CanonError> {
    u64::try_from(int(v, p)?).map_err(|_| fail(p, "integer out of the u64 range"))
}

fn i64_of(v: &Value, p: &str) -> Result<i64, CanonError> {
    i64::try_from(int(v, p)?).map_err(|_| fail(p, "integer out of the i64 range"))
}

/// Reads a node from its canonical value (as [`node_value`] produces).
///
/// Literal values come back as the constant expressions that spell them in the tagged lens
/// (`ExprOrValue::Expr` in plan slots, tagged JSON in cap grant `params`), and the manifest's
/// lists and grants, a reducer's `effects_emitted` and a secret's lists come back sorted, so
/// the node read may differ from the node once encoded in these spellings, never in meaning:
/// encoding it again gives the same value.
///
/// # Errors
/// [`CanonError`] with the path of the first part that is not a canonical node encoding.
pub fn node_from_value(v: &Value) -> Result<Node, CanonError> {
    let mut r = Rd::new(v, "", "a node")?;
    let kind = r.text("$kind")?;
    let kind = NodeKind::from_name(&kind)
        .ok_or_else(|| fail("/$kind", format!("unknown node kind {kind:?}")))?;
    let node = match kind {
        NodeKind::DefSchema => {
            let name = r.name("name")?;
            let (t, p) = r.req("type")?;
            let ty =
                Type::from_value(t).map_err(|e| fail(&format!("{p}{}", e.pointer), e.message))?;
            Node::DefSchema(DefSchema { name, ty })
        }
        NodeKind::DefModule => Node::DefModule(decode_module(&mut r)?),
        NodeKind::DefPlan => Node::DefPlan(decode_plan(&mut r)?),
        NodeKind::DefCap => {
            let name = r.name("name")?;
            let cap_type = r.text("cap_type")?;
            let (t, p) = r.req("schema")?;
            let schema =
                Type::from_value(t).map_err(|e| fail(&format!("{p}{}", e.pointer), e.message))?;
            Node::DefCap(DefCap {
                name,
                cap_type,
                schema,
            })
        }
        NodeKind::DefPolicy => {
            let name = r.name("name")?;
            let (rv, rp) = r.req("rules")?;
            let rules = array(rv, &rp)?
                .iter()
                .enumerate()
                .map(|(i, x)| decode_rule(x, &at_i(&rp, i)))
                .collect::<Result<_, _>>()?;
            Node::DefPolicy(DefPolicy { name, rules })
        }
        NodeKind::DefEffect => Node::DefEffect(DefEffect {
            name: r.name("name")?,
            kind: r.text("kind")?,
            params_schema: r.name("params_schema")?,
            receipt_schema: r.name("receipt_schema")?,
            cap_type: r.text("cap_type")?,
            origin_scope: r.word(
                "origin_scope",
                &[
                    ("reducer", OriginScope::Reducer),
                    ("plan", OriginScope::Plan),
                    ("both", OriginScope::Both),
                ],
            )?,
            description: r.opt_text("description")?,
        }),
        NodeKind::DefSecret => {
            let name = r.name("name")?;
            let binding_id = r.text("binding_id")?;
            let expected_digest = match r.opt("expected_digest") {
                Some((v, p)) => Some(
                    text(v, &p)?
                        .parse::<ObjectId>()
                        .map_err(|e| fail(&p, e.to_string()))?,
                ),
                None => None,
            };
            let allowed_caps = r.texts("allowed_caps")?;
            let allowed_plans = match r.opt("allowed_plans") {
                Some((v, p)) => Some(
                    array(v, &p)?
                        .iter()
                        .enumerate()
                        .map(|(i, x)| read_name(x, &at_i(&p, i)))
                        .collect::<Result<_, _>>()?,
                ),
                None => None,
            };
            Node::DefSecret(DefSecret {
                name,
                binding_id,
                expected_digest,
                allowed_caps,
                allowed_plans,
            })
        }
        NodeKind::Manifest => Node::Manifest(decode_manifest(&mut r)?),
    };
    r.finish()?;
    Ok(node)
}

fn decode_module(r: &mut Rd<'_>) -> Result<DefModule, CanonError> {
    let name = r.name("name")?;
    let kind = r.word(
        "module_kind",
        &[("reducer", ModuleKind::Reducer), ("pure", ModuleKind::Pure)],
    )?;
    let wasm_hash = match r.opt("wasm_hash") {
        Some((Value::Link(id), _)) => Some(*id),
        Some((_, p)) => return Err(fail(&p, "`wasm_hash` is a link")),
        None => None,
    };
    let key_schema = r.opt_name("key_schema")?;
    let (av, ap) = r.req("abi")?;
    let mut a = Rd::new(av, &ap, "`abi`")?;
    let abi = match kind {
        ModuleKind::Reducer => {
            let (v, p) = a.req("reducer")?;
            let mut x = Rd::new(v, &p, "`abi.reducer`")?;
            let abi = ReducerAbi {
                state: x.name("state")?,
                event: x.name("event")?,
                annotations: x.opt_name("annotations")?,
                effects_emitted: x.texts("effects_emitted")?.unwrap_or_default(),
                cap_slots: x.text_map("cap_slots")?,
            };
            x.finish()?;
            ModuleAbi::Reducer(abi)
        }
        ModuleKind::Pure => {
            let (v, p) = a.req("pure")?;
            let mut x = Rd::new(v, &p, "`abi.pure`")?;
            let abi = PureAbi {
                input: x.name("input")?,
                output: x.name("output")?,
            };
            x.finish()?;
            ModuleAbi::Pure(abi)
        }
    };
    a.finish()?;
    Ok(DefModule {
        name,
        wasm_hash,
        key_schema,
        abi,
    })
}

fn decode_plan(r: &mut Rd<'_>) -> Result<DefPlan, CanonError> {
    let name = r.name("name")?;
    let input = r.name("input")?;
    let output = r.opt_name("output")?;
    let locals = match r.opt("locals") {
        Some((Value::Map(m), p)) => m
            .entries()
            .iter()
            .map(|(k, v)| {
                let k = text(k, &p)?;
                let n = read_name(v, &at(&p, &k))?;
                Ok((k, n))
            })
            .collect::<Result<_, CanonError>>()?,
        Some((_, p)) => return Err(fail(&p, "expected a map")),
        None => Vec::new(),
    };
    let (sv, sp) = r.req("steps")?;
    let steps = array(sv, &sp)?
        .iter()
        .enumerate()
        .map(|(i, x)| decode_step(x, &at_i(&sp, i)))
        .collect::<Result<_, _>>()?;
    let edges = match r.opt("edges") {
        Some((v, p)) => array(v, &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let mut e = Rd::new(x, &at_i(&p, i), "an edge")?;
                let edge = Edge {
                    from: e.text("from")?,
                    to: e.text("to")?,
                    when: e
                        .opt("when")
                        .map(|(w, wp)| expr_from_value_at(w, &wp))
                        .transpose()?,
                };
                e.finish()?;
                Ok(edge)
            })
            .collect::<Result<_, CanonError>>()?,
        None => Vec::new(),
    };
    let required_caps = Some(
        r.texts("required_caps")?
            .ok_or_else(|| fail("", "`required_caps` is missing"))?,
    );
    let allowed_effects = Some(
        r.texts("allowed_effects")?
            .ok_or_else(|| fail("", "`allowed_effects` is missing"))?,
    );
    let invariants = match r.opt("invariants") {
        Some((v, p)) => array(v, &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| expr_from_value_at(x, &at_i(&p, i)))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(DefPlan {
        name,
        input,
        output,
        locals,
        steps,
        edges,
        required_caps,
        allowed_effects,
        invariants,
    })
}

fn decode_bind(r: &mut Rd<'_>, field: &str) -> Result<String, CanonError> {
    let (v, p) = r.req("bind")?;
    let mut b = Rd::new(v, &p, "`bind`")?;
    let s = b.text(field)?;
    b.finish()?;
    Ok(s)
}

fn decode_step(v: &Value, p: &str) -> Result<Step, CanonError> {
    let mut r = Rd::new(v, p, "a step")?;
    let id = r.text("id")?;
    let op = r.text("op")?;
    let slot = |r: &mut Rd<'_>, k: &str| -> Result<ExprOrValue, CanonError> {
        let (v, p) = r.req(k)?;
        Ok(ExprOrValue::Expr(expr_from_value_at(v, &p)?))
    };
    let op = match op.as_str() {
        "raise_event" => StepOp::RaiseEvent {
            reducer: r.name("reducer")?,
            event: slot(&mut r, "event")?,
            key: r
                .opt("key")
                .map(|(v, p)| expr_from_value_at(v, &p))
                .transpose()?,
        },
        "emit_effect" => StepOp::EmitEffect {
            kind: r.text("kind")?,
            params: slot(&mut r, "params")?,
            cap: r.text("cap")?,
            bind_effect_id_as: decode_bind(&mut r, "effect_id_as")?,
        },
        "await_receipt" => {
            let (v, fp) = r.req("for")?;
            StepOp::AwaitReceipt {
                receipt_for: expr_from_value_at(v, &fp)?,
                bind_as: decode_bind(&mut r, "as")?,
            }
        }
        "await_event" => StepOp::AwaitEvent {
            event: r.name("event")?,
            filter: r
                .opt("where")
                .map(|(v, p)| expr_from_value_at(v, &p))
                .transpose()?,
            bind_as: decode_bind(&mut r, "as")?,
        },
        "assign" => StepOp::Assign {
            expr: slot(&mut r, "expr")?,
            bind_as: decode_bind(&mut r, "as")?,
        },
        "end" => StepOp::End {
            result: match r.opt("result") {
                Some((v, p)) => Some(ExprOrValue::Expr(expr_from_value_at(v, &p)?)),
                None => None,
            },
        },
        other => return Err(fail(&at(p, "op"), format!("unknown step op {other:?}"))),
    };
    r.finish()?;
    Ok(Step { id, op })
}

fn decode_rule(v: &Value, p: &str) -> Result<PolicyRule, CanonError> {
    let mut r = Rd::new(v, p, "a policy rule")?;
    let (wv, wp) = r.req("when")?;
    let mut w = Rd::new(wv, &wp, "`when`")?;
    let when = PolicyMatch {
        effect_kind: w.opt_text("effect_kind")?,
        cap_name: w.opt_text("cap_name")?,
        origin_kind: match w.opt("origin_kind") {
            Some((v, p)) => Some(match text(v, &p)?.as_str() {
                "plan" => OriginKind::Plan,
                "reducer" => OriginKind::Reducer,
                other => return Err(fail(&p, format!("unexpected word {other:?}"))),
            }),
            None => None,
        },
        origin_name: w.opt_name("origin_name")?,
    };
    w.finish()?;
    let decision = r.word(
        "decision",
        &[("allow", Decision::Allow), ("deny", Decision::Deny)],
    )?;
    r.finish()?;
    Ok(PolicyRule { when, decision })
}

fn decode_manifest(r: &mut Rd<'_>) -> Result<Manifest, CanonError> {
    let version = r.text("air_version")?;
    if version != "1" {
        return Err(fail(
            "/air_version",
            format!("`air_version` is \"1\", found {version:?}"),
        ));
    }
    let mut lists: Vec<Vec<NamedRef>> = Vec::with_capacity(LISTS.len());
    for (key, _) in LISTS {
        let refs = match r.opt(key) {
            Some((v, p)) => array(v, &p)?
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let mut e = Rd::new(x, &at_i(&p, i), "a manifest entry")?;
                    let name = e.name("name")?;
                    let hash = match e.req("hash")? {
                        (Value::Link(id), _) => *id,
                        (_, hp) => return Err(fail(&hp, "`hash` is a link")),
                    };
                    e.finish()?;
                    Ok(NamedRef {
                        name,
                        hash: Some(hash),
                    })
                })
                .collect::<Result<_, CanonError>>()?,
            None => Vec::new(),
        };
        lists.push(refs);
    }
    let mut lists = lists.into_iter();
    let mut next = || lists.next().unwrap_or_default();
    let (schemas, modules, plans, effects, caps, policies, secrets) =
        (next(), next(), next(), next(), next(), next(), next());
    let routing = match r.opt("routing") {
        Some((v, p)) => {
            let mut ro = Rd::new(v, &p, "`routing`")?;
            let events = match ro.opt("events") {
                Some((v, p)) => array(v, &p)?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let mut e = Rd::new(x, &at_i(&p, i), "a routing entry")?;
                        let ev = RouteEvent {
                            event: e.name("event")?,
                            reducer: e.name("reducer")?,
                            key_field: e.opt_text("key_field")?,
                        };
                        e.finish()?;
                        Ok(ev)
                    })
                    .collect::<Result<_, CanonError>>()?,
                None => Vec::new(),
            };
            let inboxes = match ro.opt("inboxes") {
                Some((v, p)) => array(v, &p)?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let mut e = Rd::new(x, &at_i(&p, i), "an inbox route")?;
                        let ib = Inbox {
                            source: e.text("source")?,
                            reducer: e.name("reducer")?,
                        };
                        e.finish()?;
                        Ok(ib)
                    })
                    .collect::<Result<_, CanonError>>()?,
                None => Vec::new(),
            };
            ro.finish()?;
            Routing { events, inboxes }
        }
        None => Routing::default(),
    };
    let triggers = match r.opt("triggers") {
        Some((v, p)) => array(v, &p)?
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let mut e = Rd::new(x, &at_i(&p, i), "a trigger")?;
                let t = Trigger {
                    event: e.name("event")?,
                    plan: e.name("plan")?,
                    correlate_by: e.opt_text("correlate_by")?,
                };
                e.finish()?;
                Ok(t)
            })
            .collect::<Result<_, CanonError>>()?,
        None => Vec::new(),
    };
    let defaults = match r.opt("defaults") {
        Some((v, p)) => {
            let mut d = Rd::new(v, &p, "`defaults`")?;
            let policy = d.opt_name("policy")?;
            let cap_grants = match d.opt("cap_grants") {
                Some((v, p)) => array(v, &p)?
                    .iter()
                    .enumerate()
                    .map(|(i, x)| decode_grant(x, &at_i(&p, i)))
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            d.finish()?;
            Defaults { policy, cap_grants }
        }
        None => Defaults::default(),
    };
    let module_bindings = match r.opt("module_bindings") {
        Some((Value::Map(m), p)) => m
            .entries()
            .iter()
            .map(|(k, v)| {
                let module = read_name(k, &p)?;
                let bp = at(&p, module.as_str());
                let mut b = Rd::new(v, &bp, "a module binding")?;
                let slots = b.text_map("slots")?;
                b.finish()?;
                Ok(ModuleBinding { module, slots })
            })
            .collect::<Result<_, CanonError>>()?,
        Some((_, p)) => return Err(fail(&p, "expected a map")),
        None => Vec::new(),
    };
    Ok(Manifest {
        schemas,
        modules,
        plans,
        effects,
        caps,
        policies,
        secrets,
        routing,
        triggers,
        defaults,
        module_bindings,
    })
}

fn decode_grant(v: &Value, p: &str) -> Result<CapGrant, CanonError> {
    let mut r = Rd::new(v, p, "a cap grant")?;
    let name = r.text("name")?;
    let cap = r.name("cap")?;
    let (pv, pp) = r.req("params")?;
    let params = expr_from_value_at(pv, &pp)?.to_json();
    let expiry_ns = r.nat("expiry_ns")?;
    let budget = match r.opt("budget") {
        Some((v, bp)) => {
            let mut b = Rd::new(v, &bp, "`budget`")?;
            let budget = Budget {
                tokens: b.nat("tokens")?,
                bytes: b.nat("bytes")?,
                cents: b.nat("cents")?,
            };
            b.finish()?;
            Some(budget)
        }
        None => None,
    };
    r.finish()?;
    Ok(CapGrant {
        name,
        cap,
        params,
        expiry_ns,
        budget,
    })
}

/// Reads an expression from its canonical encoding ([`expr_value`]).
///
/// # Errors
/// [`CanonError`] with the path of the first part that is not an expression encoding.
pub fn expr_from_value(v: &Value) -> Result<Expr, CanonError> {
    expr_from_value_at(v, "")
}

fn expr_from_value_at(v: &Value, p: &str) -> Result<Expr, CanonError> {
    expr_at(v, p, 0)
}

fn expr_at(v: &Value, p: &str, depth: usize) -> Result<Expr, CanonError> {
    if depth > cbor::MAX_DEPTH {
        return Err(fail(p, "expression nested too deeply"));
    }
    let d = depth + 1;
    let Value::Map(m) = v else {
        return Err(fail(p, "an expression is a map"));
    };
    if m.len() == 2 && m.get_text("op").is_some() {
        let mut r = Rd::new(v, p, "an operator")?;
        let (ov, op_p) = r.req("op")?;
        let op_name = text(ov, &op_p)?;
        let op = Op::from_name(&op_name)
            .ok_or_else(|| fail(&op_p, format!("unknown operator {op_name:?}")))?;
        let (av, ap) = r.req("args")?;
        let args: Vec<Expr> = array(av, &ap)?
            .iter()
            .enumerate()
            .map(|(i, x)| expr_at(x, &at_i(&ap, i), d))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        if !op.arity().accepts(args.len()) {
            return Err(fail(&ap, format!("`{op}` takes {}", op.arity())));
        }
        return Ok(Expr::Op { op, args });
    }
    let [(Value::Text(k), b)] = m.entries() else {
        return Err(fail(
            p,
            "an expression is a map with one text key (or `op` and `args`)",
        ));
    };
    let bp = at(p, k);
    let c = |c: Const| Ok(Expr::Const(c));
    match k.as_str() {
        "null" => match b {
            Value::Map(x) if x.is_empty() => c(Const::Null),
            _ => Err(fail(&bp, "`null` takes an empty map")),
        },
        "bool" => match b {
            Value::Bool(x) => c(Const::Bool(*x)),
            _ => Err(fail(&bp, "expected a boolean")),
        },
        "int" => c(Const::Int(i64_of(b, &bp)?)),
        "nat" => c(Const::Nat(nat(b, &bp)?)),
        "dec128" => c(Const::Dec128(text(b, &bp)?)),
        "text" => c(Const::Text(text(b, &bp)?)),
        "bytes" => match b {
            Value::Bytes(x) => c(Const::Bytes(x.clone())),
            _ => Err(fail(&bp, "expected a byte string")),
        },
        "time_ns" => c(Const::TimeNs(nat(b, &bp)?)),
        "duration_ns" => c(Const::DurationNs(i64_of(b, &bp)?)),
        "hash" => c(Const::Hash(
            text(b, &bp)?
                .parse::<ObjectId>()
                .map_err(|e| fail(&bp, e.to_string()))?,
        )),
        "uuid" => {
            let s = text(b, &bp)?;
            let u = value::canonical_uuid(&s).map_err(|e| fail(&bp, e.message))?;
            if u != s {
                return Err(fail(&bp, "a UUID is written in lowercase"));
            }
            c(Const::Uuid(u))
        }
        "ref" => Ok(Expr::Ref(
            Ref::parse(&text(b, &bp)?).map_err(|e| fail(&bp, e))?,
        )),
        "record" => {
            let Value::Map(fs) = b else {
                return Err(fail(&bp, "`record` takes a map"));
            };
            let fields = fs
                .entries()
                .iter()
                .map(|(k, x)| {
                    let k = text(k, &bp)?;
                    let e = expr_at(x, &at(&bp, &k), d)?;
                    Ok((k, e))
                })
                .collect::<Result<_, CanonError>>()?;
            Ok(Expr::Record(fields))
        }
        "list" | "set" => {
            let xs = array(b, &bp)?
                .iter()
                .enumerate()
                .map(|(i, x)| expr_at(x, &at_i(&bp, i), d))
                .collect::<Result<_, _>>()?;
            Ok(if k == "list" {
                Expr::List(xs)
            } else {
                Expr::Set(xs)
            })
        }
        "map" => {
            let kvs = array(b, &bp)?
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let ep = at_i(&bp, i);
                    let mut r = Rd::new(x, &ep, "a map entry")?;
                    let (kv, kp) = r.req("key")?;
                    let (vv, vp) = r.req("value")?;
                    let entry = (expr_at(kv, &kp, d)?, expr_at(vv, &vp, d)?);
                    r.finish()?;
                    Ok(entry)
                })
                .collect::<Result<_, CanonError>>()?;
            Ok(Expr::Map(kvs))
        }
        "variant" => {
            let mut r = Rd::new(b, &bp, "a variant")?;
            let tag = r.text("tag")?;
            if tag.is_empty() {
                return Err(fail(&at(&bp, "tag"), "a variant tag is not empty"));
            }
            let value = match r.opt("value") {
                Some((x, xp)) => Some(Box::new(expr_at(x, &xp, d)?)),
                None => None,
            };
            r.finish()?;
            Ok(Expr::Variant { tag, value })
        }
        other => Err(fail(p, format!("unknown expression form `{other}`"))),
    }
}

#[cfg(test)]
#[path = "canon_tests.rs"]
mod tests;
