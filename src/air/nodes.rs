//! The AIR node kinds as Rust types, read strictly from their authoring JSON and rendered
//! back to it.
//!
//! Reading rejects unknown fields, wrong JSON types, missing required fields and malformed
//! names, identifiers, hashes, numbers, type ASTs and expressions, and reports every problem
//! it finds (not only the first) as a [`ParseError`]: a JSON pointer, a [`Rule`] and a plain
//! message. It never panics. What it does not check is meaning across fields and nodes
//! (references resolve, plans are DAGs, literals fit their schemas, …): that is validation.
//!
//! Rendering ([`Node::to_json`]) writes `$kind` first, then the fields in the order
//! `docs/air.md` lists them, omitting optional fields that are absent and list- or map-valued
//! fields that are optional and empty (except where absent and empty differ in meaning:
//! `defplan.required_caps`, `defplan.allowed_effects`, `defsecret.allowed_caps`,
//! `defsecret.allowed_plans`). Reading a rendering gives an equal node.
//!
//! Declared order is kept wherever it exists in the JSON (steps, edges, routing, record
//! fields, manifest lists, …), so the JSON pointer of any part of a node can be rebuilt from
//! its position: step `i` of a plan read at pointer `P` sits at `P/steps/i`.

use std::fmt;

pub use super::diag::{ParseError, Rule};
use super::diag::{child, push_err};
use super::expr::{Expr, ExprOrValue, int_literal, parse_expr};
use super::name::{Name, check_dotted, check_ident};
use super::types::Type;
use crate::codec::json::Json;
use crate::object::ObjectId;

// ---------------------------------------------------------------------------------------------
// Node kinds

/// The kind of a node: the value of its `$kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// `defschema`.
    DefSchema,
    /// `defmodule`.
    DefModule,
    /// `defplan`.
    DefPlan,
    /// `defcap`.
    DefCap,
    /// `defpolicy`.
    DefPolicy,
    /// `defeffect`.
    DefEffect,
    /// `defsecret`.
    DefSecret,
    /// `manifest`.
    Manifest,
}

impl NodeKind {
    /// Every kind.
    pub const ALL: [NodeKind; 8] = [
        NodeKind::DefSchema,
        NodeKind::DefModule,
        NodeKind::DefPlan,
        NodeKind::DefCap,
        NodeKind::DefPolicy,
        NodeKind::DefEffect,
        NodeKind::DefSecret,
        NodeKind::Manifest,
    ];

    /// The `$kind` text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::DefSchema => "defschema",
            NodeKind::DefModule => "defmodule",
            NodeKind::DefPlan => "defplan",
            NodeKind::DefCap => "defcap",
            NodeKind::DefPolicy => "defpolicy",
            NodeKind::DefEffect => "defeffect",
            NodeKind::DefSecret => "defsecret",
            NodeKind::Manifest => "manifest",
        }
    }

    /// The kind with `$kind` text `s`.
    #[must_use]
    pub fn from_name(s: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any AIR node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A `defschema`.
    DefSchema(DefSchema),
    /// A `defmodule`.
    DefModule(DefModule),
    /// A `defplan`.
    DefPlan(DefPlan),
    /// A `defcap`.
    DefCap(DefCap),
    /// A `defpolicy`.
    DefPolicy(DefPolicy),
    /// A `defeffect`.
    DefEffect(DefEffect),
    /// A `defsecret`.
    DefSecret(DefSecret),
    /// A `manifest`.
    Manifest(Manifest),
}

/// `defschema`: a named type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefSchema {
    /// `name`.
    pub name: Name,
    /// `type`: the type AST.
    pub ty: Type,
}

/// `defmodule.module_kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModuleKind {
    /// `reducer`: a deterministic state machine.
    Reducer,
    /// `pure`: a stateless function.
    Pure,
}

impl ModuleKind {
    /// The JSON word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Reducer => "reducer",
            ModuleKind::Pure => "pure",
        }
    }
}

/// `defmodule`: a WASM module and its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefModule {
    /// `name`.
    pub name: Name,
    /// `wasm_hash`: absent in authoring when bound at world creation.
    pub wasm_hash: Option<ObjectId>,
    /// `key_schema`: the key type of a keyed reducer.
    pub key_schema: Option<Name>,
    /// `abi`, which also determines `module_kind`.
    pub abi: ModuleAbi,
}

impl DefModule {
    /// `module_kind`, as implied by the ABI.
    #[must_use]
    pub fn module_kind(&self) -> ModuleKind {
        match self.abi {
            ModuleAbi::Reducer(_) => ModuleKind::Reducer,
            ModuleAbi::Pure(_) => ModuleKind::Pure,
        }
    }
}

/// `defmodule.abi`: exactly one of `reducer` or `pure`, matching `module_kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleAbi {
    /// `abi.reducer`.
    Reducer(ReducerAbi),
    /// `abi.pure`.
    Pure(PureAbi),
}

/// `defmodule.abi.reducer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducerAbi {
    /// `state`: schema of the reducer state.
    pub state: Name,
    /// `event`: schema of the events the reducer accepts.
    pub event: Name,
    /// `annotations`: schema of the annotations output.
    pub annotations: Option<Name>,
    /// `effects_emitted`: effect kinds the reducer may emit (absent = empty).
    pub effects_emitted: Vec<String>,
    /// `cap_slots`: slot name → capability type, in declared order (absent = empty).
    pub cap_slots: Vec<(String, String)>,
}

/// `defmodule.abi.pure`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PureAbi {
    /// `input`: schema of the input.
    pub input: Name,
    /// `output`: schema of the output.
    pub output: Name,
}

/// `defplan`: an orchestration DAG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefPlan {
    /// `name`.
    pub name: Name,
    /// `input`: schema of the plan input.
    pub input: Name,
    /// `output`: schema of the result of `end`.
    pub output: Option<Name>,
    /// `locals`: variable → schema, in declared order (absent = empty).
    pub locals: Vec<(String, Name)>,
    /// `steps`, in declared order (at least one).
    pub steps: Vec<Step>,
    /// `edges`, in declared order (absent = empty).
    pub edges: Vec<Edge>,
    /// `required_caps`: grant names; if given, must equal the set derived from the steps.
    pub required_caps: Option<Vec<String>>,
    /// `allowed_effects`: effect kinds; if given, must equal the set derived from the steps.
    pub allowed_effects: Option<Vec<String>>,
    /// `invariants`: boolean expressions (absent = empty).
    pub invariants: Vec<Expr>,
}

/// A plan step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `id`: a small identifier, unique in the plan.
    pub id: String,
    /// `op` and the fields that go with it.
    pub op: StepOp,
}

/// What a step does (`op`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOp {
    /// `raise_event {reducer, event, key?}`.
    RaiseEvent {
        /// `reducer`: the reducer to deliver to.
        reducer: Name,
        /// `event`: the event value.
        event: ExprOrValue,
        /// `key`: the cell key, for keyed reducers.
        key: Option<Expr>,
    },
    /// `emit_effect {kind, params, cap, bind {effect_id_as}}`.
    EmitEffect {
        /// `kind`: the effect kind.
        kind: String,
        /// `params`: the effect parameters.
        params: ExprOrValue,
        /// `cap`: the grant name.
        cap: String,
        /// `bind.effect_id_as`: the variable receiving the effect handle.
        bind_effect_id_as: String,
    },
    /// `await_receipt {for, bind {as}}`.
    AwaitReceipt {
        /// `for`: the effect handle.
        receipt_for: Expr,
        /// `bind.as`: the variable receiving the receipt.
        bind_as: String,
    },
    /// `await_event {event, where?, bind {as}}`.
    AwaitEvent {
        /// `event`: the schema of the awaited event.
        event: Name,
        /// `where`: the predicate the event must satisfy.
        filter: Option<Expr>,
        /// `bind.as`: the variable receiving the event.
        bind_as: String,
    },
    /// `assign {expr, bind {as}}`.
    Assign {
        /// `expr`: the value.
        expr: ExprOrValue,
        /// `bind.as`: the variable receiving it.
        bind_as: String,
    },
    /// `end {result?}`.
    End {
        /// `result`: the plan output.
        result: Option<ExprOrValue>,
    },
}

impl StepOp {
    /// The `op` word.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            StepOp::RaiseEvent { .. } => "raise_event",
            StepOp::EmitEffect { .. } => "emit_effect",
            StepOp::AwaitReceipt { .. } => "await_receipt",
            StepOp::AwaitEvent { .. } => "await_event",
            StepOp::Assign { .. } => "assign",
            StepOp::End { .. } => "end",
        }
    }
}

/// A plan edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// `from`: a step id.
    pub from: String,
    /// `to`: a step id.
    pub to: String,
    /// `when`: the guard.
    pub when: Option<Expr>,
}

/// `defcap`: a capability type and the schema of its grant parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefCap {
    /// `name`.
    pub name: Name,
    /// `cap_type`: lowercase dotted.
    pub cap_type: String,
    /// `schema`: the type of grant parameters.
    pub schema: Type,
}

/// `defpolicy`: ordered allow/deny rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefPolicy {
    /// `name`.
    pub name: Name,
    /// `rules`, in order (first match wins).
    pub rules: Vec<PolicyRule>,
}

/// A policy rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// `when`: all given conditions must hold (none given = always).
    pub when: PolicyMatch,
    /// `decision`.
    pub decision: Decision,
}

/// `defpolicy.rules[].when`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMatch {
    /// `effect_kind`.
    pub effect_kind: Option<String>,
    /// `cap_name`: a grant name.
    pub cap_name: Option<String>,
    /// `origin_kind`.
    pub origin_kind: Option<OriginKind>,
    /// `origin_name`: a plan or module name.
    pub origin_name: Option<Name>,
}

/// A policy decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

/// Who emitted an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OriginKind {
    /// `plan`.
    Plan,
    /// `reducer`.
    Reducer,
}

/// `defeffect`: an effect kind, its schemas and the capability type guarding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefEffect {
    /// `name`.
    pub name: Name,
    /// `kind`: lowercase dotted effect kind.
    pub kind: String,
    /// `params_schema`.
    pub params_schema: Name,
    /// `receipt_schema`.
    pub receipt_schema: Name,
    /// `cap_type`: lowercase dotted.
    pub cap_type: String,
    /// `origin_scope`.
    pub origin_scope: OriginScope,
    /// `description`.
    pub description: Option<String>,
}

/// `defeffect.origin_scope`: who may emit the effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OriginScope {
    /// `reducer`.
    Reducer,
    /// `plan`.
    Plan,
    /// `both`.
    Both,
}

impl Decision {
    /// The word used in JSON and in the canonical encoding.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl OriginKind {
    /// The word used in JSON and in the canonical encoding.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Reducer => "reducer",
        }
    }
}

impl OriginScope {
    /// The word used in JSON and in the canonical encoding.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reducer => "reducer",
            Self::Plan => "plan",
            Self::Both => "both",
        }
    }
}

/// `defsecret`: a named secret resolved on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefSecret {
    /// `name`.
    pub name: Name,
    /// `binding_id`: non-empty, e.g. `env:LLM_API_KEY`.
    pub binding_id: String,
    /// `expected_digest`: hash of the plaintext.
    pub expected_digest: Option<ObjectId>,
    /// `allowed_caps`: grant names that may use the secret.
    pub allowed_caps: Option<Vec<String>>,
    /// `allowed_plans`: plans that may use the secret.
    pub allowed_plans: Option<Vec<Name>>,
}

/// `manifest`: the root catalog of a world's control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `schemas` (absent = empty).
    pub schemas: Vec<NamedRef>,
    /// `modules` (absent = empty).
    pub modules: Vec<NamedRef>,
    /// `plans` (absent = empty).
    pub plans: Vec<NamedRef>,
    /// `effects` (absent = empty).
    pub effects: Vec<NamedRef>,
    /// `caps` (absent = empty).
    pub caps: Vec<NamedRef>,
    /// `policies` (absent = empty).
    pub policies: Vec<NamedRef>,
    /// `secrets` (absent = empty).
    pub secrets: Vec<NamedRef>,
    /// `routing` (absent = empty).
    pub routing: Routing,
    /// `triggers` (absent = empty).
    pub triggers: Vec<Trigger>,
    /// `defaults` (absent = empty).
    pub defaults: Defaults,
    /// `module_bindings`, in declared order (absent = empty).
    pub module_bindings: Vec<ModuleBinding>,
}

impl Manifest {
    /// The list of references to nodes of `kind` (`None` for `manifest`).
    #[must_use]
    pub fn refs(&self, kind: NodeKind) -> Option<&[NamedRef]> {
        Some(match kind {
            NodeKind::DefSchema => &self.schemas,
            NodeKind::DefModule => &self.modules,
            NodeKind::DefPlan => &self.plans,
            NodeKind::DefCap => &self.caps,
            NodeKind::DefPolicy => &self.policies,
            NodeKind::DefEffect => &self.effects,
            NodeKind::DefSecret => &self.secrets,
            NodeKind::Manifest => return None,
        })
    }

    /// The list of references to nodes of `kind`, for changing it (`None` for `manifest`).
    pub fn refs_mut(&mut self, kind: NodeKind) -> Option<&mut Vec<NamedRef>> {
        Some(match kind {
            NodeKind::DefSchema => &mut self.schemas,
            NodeKind::DefModule => &mut self.modules,
            NodeKind::DefPlan => &mut self.plans,
            NodeKind::DefCap => &mut self.caps,
            NodeKind::DefPolicy => &mut self.policies,
            NodeKind::DefEffect => &mut self.effects,
            NodeKind::DefSecret => &mut self.secrets,
            NodeKind::Manifest => return None,
        })
    }
}

/// A manifest list entry `{name, hash?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedRef {
    /// `name`.
    pub name: Name,
    /// `hash`: absent in authoring until tooling fills it; the all-zero id is a placeholder.
    pub hash: Option<ObjectId>,
}

impl NamedRef {
    /// The hash, unless absent or the all-zero placeholder.
    #[must_use]
    pub fn known_hash(&self) -> Option<ObjectId> {
        self.hash
            .filter(|h| *h != ObjectId::from_bytes([0; crate::object::ID_LEN]))
    }
}

/// `manifest.routing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// `events`, in declared order (delivery order).
    pub events: Vec<RouteEvent>,
    /// `inboxes`, in declared order.
    pub inboxes: Vec<Inbox>,
}

/// `manifest.routing.events[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEvent {
    /// `event`: the event schema.
    pub event: Name,
    /// `reducer`: the module receiving it.
    pub reducer: Name,
    /// `key_field`: the event field holding the cell key (keyed reducers).
    pub key_field: Option<String>,
}

/// `manifest.routing.inboxes[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbox {
    /// `source`: the external inbox name (non-empty).
    pub source: String,
    /// `reducer`: the module receiving its messages.
    pub reducer: Name,
}

/// `manifest.triggers[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// `event`: the event schema that starts the plan.
    pub event: Name,
    /// `plan`: the plan started.
    pub plan: Name,
    /// `correlate_by`: the event field recorded as the run's correlation id.
    pub correlate_by: Option<String>,
}

/// `manifest.defaults`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `policy`.
    pub policy: Option<Name>,
    /// `cap_grants` (absent = empty).
    pub cap_grants: Vec<CapGrant>,
}

/// A capability grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapGrant {
    /// `name`: a small identifier.
    pub name: String,
    /// `cap`: the `defcap` instantiated.
    pub cap: Name,
    /// `params`: a literal typed by the defcap's schema (either value lens), not yet typed.
    pub params: Json,
    /// `expiry_ns`: nanoseconds since the epoch.
    pub expiry_ns: Option<u64>,
    /// `budget`.
    pub budget: Option<Budget>,
}

/// `CapGrant.budget`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// `tokens`.
    pub tokens: Option<u64>,
    /// `bytes`.
    pub bytes: Option<u64>,
    /// `cents`.
    pub cents: Option<u64>,
}

/// `manifest.module_bindings.<module>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleBinding {
    /// The module (the member key).
    pub module: Name,
    /// `slots`: slot name → grant name, in declared order.
    pub slots: Vec<(String, String)>,
}

// ---------------------------------------------------------------------------------------------
// Node

impl Node {
    /// The node's kind.
    #[must_use]
    pub fn kind(&self) -> NodeKind {
        match self {
            Node::DefSchema(_) => NodeKind::DefSchema,
            Node::DefModule(_) => NodeKind::DefModule,
            Node::DefPlan(_) => NodeKind::DefPlan,
            Node::DefCap(_) => NodeKind::DefCap,
            Node::DefPolicy(_) => NodeKind::DefPolicy,
            Node::DefEffect(_) => NodeKind::DefEffect,
            Node::DefSecret(_) => NodeKind::DefSecret,
            Node::Manifest(_) => NodeKind::Manifest,
        }
    }

    /// The node's name; a manifest has none.
    #[must_use]
    pub fn name(&self) -> Option<&Name> {
        Some(match self {
            Node::DefSchema(n) => &n.name,
            Node::DefModule(n) => &n.name,
            Node::DefPlan(n) => &n.name,
            Node::DefCap(n) => &n.name,
            Node::DefPolicy(n) => &n.name,
            Node::DefEffect(n) => &n.name,
            Node::DefSecret(n) => &n.name,
            Node::Manifest(_) => return None,
        })
    }

    /// Reads a node from its authoring JSON; pointers in errors are relative to `j` (`""`).
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_json(j: &Json) -> Result<Node, Vec<ParseError>> {
        Self::from_json_at(j, "")
    }

    /// Reads a node that sits at JSON pointer `pointer` of its file (e.g. `/3` for the fourth
    /// node of an array); errors carry full pointers.
    ///
    /// # Errors
    /// Every problem found.
    pub fn from_json_at(j: &Json, pointer: &str) -> Result<Node, Vec<ParseError>> {
        let mut e = Vec::new();
        match read_node(j, pointer, &mut e) {
            Some(n) if e.is_empty() => Ok(n),
            _ => Err(e),
        }
    }

    /// Renders the node's authoring JSON.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let mut w = ObjWriter::new();
        w.str("$kind", self.kind().as_str());
        match self {
            Node::DefSchema(n) => {
                w.name("name", &n.name);
                w.put("type", n.ty.to_json());
            }
            Node::DefModule(n) => write_module(&mut w, n),
            Node::DefPlan(n) => write_plan(&mut w, n),
            Node::DefCap(n) => {
                w.name("name", &n.name);
                w.str("cap_type", &n.cap_type);
                w.put("schema", n.schema.to_json());
            }
            Node::DefPolicy(n) => {
                w.name("name", &n.name);
                w.put(
                    "rules",
                    Json::Array(n.rules.iter().map(write_rule).collect()),
                );
            }
            Node::DefEffect(n) => {
                w.name("name", &n.name);
                w.str("kind", &n.kind);
                w.name("params_schema", &n.params_schema);
                w.name("receipt_schema", &n.receipt_schema);
                w.str("cap_type", &n.cap_type);
                w.str("origin_scope", n.origin_scope.as_str());
                if let Some(d) = &n.description {
                    w.str("description", d);
                }
            }
            Node::DefSecret(n) => {
                w.name("name", &n.name);
                w.str("binding_id", &n.binding_id);
                if let Some(h) = &n.expected_digest {
                    w.str("expected_digest", &h.to_string());
                }
                if let Some(caps) = &n.allowed_caps {
                    w.put("allowed_caps", strings(caps));
                }
                if let Some(plans) = &n.allowed_plans {
                    w.put(
                        "allowed_plans",
                        Json::Array(plans.iter().map(|p| Json::String(p.to_string())).collect()),
                    );
                }
            }
            Node::Manifest(m) => write_manifest(&mut w, m),
        }
        w.done()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading helpers

/// An object being read: remembers which members were taken, so that the rest can be
/// reported as unknown.
struct Obj<'a> {
    members: &'a [(String, Json)],
    ptr: String,
    taken: Vec<bool>,
    what: &'static str,
}

impl<'a> Obj<'a> {
    /// Starts reading `j` (at `p`) as the object `what`; reports and returns `None` if it is
    /// not an object.
    fn new(j: &'a Json, p: &str, what: &'static str, e: &mut Vec<ParseError>) -> Option<Self> {
        match j {
            Json::Object(members) => Some(Obj {
                members,
                ptr: p.to_owned(),
                taken: vec![false; members.len()],
                what,
            }),
            _ => {
                push_err(
                    e,
                    p,
                    Rule::WrongType,
                    format!("{what} is an object, found {}", j.type_name()),
                );
                None
            }
        }
    }

    /// The member `key`, if present, with its pointer.
    fn opt(&mut self, key: &str) -> Option<(&'a Json, String)> {
        let i = self.members.iter().position(|(k, _)| k == key)?;
        self.taken[i] = true;
        Some((&self.members[i].1, child(&self.ptr, key)))
    }

    /// The member `key`; reports it missing if absent.
    fn req(&mut self, key: &str, e: &mut Vec<ParseError>) -> Option<(&'a Json, String)> {
        let got = self.opt(key);
        if got.is_none() {
            push_err(
                e,
                &self.ptr,
                Rule::MissingField,
                format!("{} needs `{key}`", self.what),
            );
        }
        got
    }

    /// Reads optional member `key` with `f`: `Some(None)` if absent, `None` if present but
    /// invalid (already reported).
    fn opt_with<T>(
        &mut self,
        key: &str,
        e: &mut Vec<ParseError>,
        f: impl FnOnce(&'a Json, &str, &mut Vec<ParseError>) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.opt(key) {
            None => Some(None),
            Some((j, p)) => f(j, &p, e).map(Some),
        }
    }

    /// Reads required member `key` with `f`.
    fn req_with<T>(
        &mut self,
        key: &str,
        e: &mut Vec<ParseError>,
        f: impl FnOnce(&'a Json, &str, &mut Vec<ParseError>) -> Option<T>,
    ) -> Option<T> {
        let (j, p) = self.req(key, e)?;
        f(j, &p, e)
    }

    /// Reports every member not taken as unknown.
    fn finish(self, e: &mut Vec<ParseError>) {
        for (i, (k, _)) in self.members.iter().enumerate() {
            if !self.taken[i] {
                push_err(
                    e,
                    &child(&self.ptr, k),
                    Rule::UnknownField,
                    format!("{} has no field `{k}`", self.what),
                );
            }
        }
    }
}

fn string<'a>(j: &'a Json, p: &str, what: &str, e: &mut Vec<ParseError>) -> Option<&'a str> {
    match j {
        Json::String(s) => Some(s),
        _ => {
            push_err(
                e,
                p,
                Rule::WrongType,
                format!("{what} is a string, found {}", j.type_name()),
            );
            None
        }
    }
}

fn nonempty(j: &Json, p: &str, what: &str, e: &mut Vec<ParseError>) -> Option<String> {
    let s = string(j, p, what, e)?;
    if s.is_empty() {
        push_err(e, p, Rule::Empty, format!("{what} must not be empty"));
        return None;
    }
    Some(s.to_owned())
}

fn any_text(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<String> {
    string(j, p, "the value", e).map(str::to_owned)
}

fn qname(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Name> {
    let s = string(j, p, "a name", e)?;
    match Name::new(s) {
        Ok(n) => Some(n),
        Err(err) => {
            push_err(e, p, Rule::BadName, err.to_string());
            None
        }
    }
}

fn ident_of(what: &'static str) -> impl Fn(&Json, &str, &mut Vec<ParseError>) -> Option<String> {
    move |j, p, e| {
        let s = string(j, p, what, e)?;
        match check_ident(what, s) {
            Ok(()) => Some(s.to_owned()),
            Err(err) => {
                push_err(e, p, Rule::BadIdent, err.to_string());
                None
            }
        }
    }
}

fn dotted_of(what: &'static str) -> impl Fn(&Json, &str, &mut Vec<ParseError>) -> Option<String> {
    move |j, p, e| {
        let s = string(j, p, what, e)?;
        match check_dotted(what, s) {
            Ok(()) => Some(s.to_owned()),
            Err(err) => {
                push_err(e, p, Rule::BadDotted, err.to_string());
                None
            }
        }
    }
}

/// AgentOS v1 files mark "not filled in yet" with an all-zero SHA-256; read it as aos's
/// all-zero placeholder. Any other `sha256:` value is refused: aos ids are BLAKE3.
const SHA256_PLACEHOLDER: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn hash(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<ObjectId> {
    let s = string(j, p, "a hash", e)?;
    if s == SHA256_PLACEHOLDER {
        return Some(ObjectId::from_bytes([0; crate::object::ID_LEN]));
    }
    match s.parse::<ObjectId>() {
        Ok(h) => Some(h),
        Err(err) => {
            let hint = if s.starts_with("sha256:") {
                " (aos hashes are BLAKE3, `b3:<64 hex digits>`; omit the hash to have it filled)"
            } else {
                ""
            };
            push_err(e, p, Rule::BadHash, format!("{err}{hint}"));
            None
        }
    }
}

fn nat(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<u64> {
    let Json::Number(lit) = j else {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!("expected a non-negative integer, found {}", j.type_name()),
        );
        return None;
    };
    match int_literal(lit)
        .and_then(|v| u64::try_from(v).map_err(|_| format!("{lit} is out of range (0 ..= 2^64-1)")))
    {
        Ok(n) => Some(n),
        Err(m) => {
            push_err(e, p, Rule::BadNumber, m);
            None
        }
    }
}

fn type_ast(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Type> {
    match Type::from_json(j) {
        Ok(t) => Some(t),
        Err(err) => {
            // The type error's pointer is relative to the type; report it at its full place.
            push_err(
                e,
                &format!("{p}{}", err.pointer),
                Rule::BadType,
                err.message,
            );
            None
        }
    }
}

fn expr_or_value(j: &Json, _p: &str, _e: &mut Vec<ParseError>) -> Option<ExprOrValue> {
    Some(ExprOrValue::from_json(j))
}

/// Reads an array, each element with `f`; `None` if anything was wrong.
fn list<T>(
    j: &Json,
    p: &str,
    e: &mut Vec<ParseError>,
    f: impl Fn(&Json, &str, &mut Vec<ParseError>) -> Option<T>,
) -> Option<Vec<T>> {
    let Json::Array(items) = j else {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!("expected an array, found {}", j.type_name()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, x) in items.iter().enumerate() {
        match f(x, &format!("{p}/{i}"), e) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Reads an object used as a map: keys checked with `key`, values read with `f`, in declared
/// order; `None` if anything was wrong.
fn map_of<K, T>(
    j: &Json,
    p: &str,
    e: &mut Vec<ParseError>,
    key: impl Fn(&str, &str, &mut Vec<ParseError>) -> Option<K>,
    f: impl Fn(&Json, &str, &mut Vec<ParseError>) -> Option<T>,
) -> Option<Vec<(K, T)>> {
    let Json::Object(members) = j else {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!("expected an object, found {}", j.type_name()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(members.len());
    let mut ok = true;
    for (k, x) in members {
        let px = child(p, k);
        let kk = key(k, &px, e);
        let v = f(x, &px, e);
        match (kk, v) {
            (Some(kk), Some(v)) => out.push((kk, v)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn ident_key(what: &'static str) -> impl Fn(&str, &str, &mut Vec<ParseError>) -> Option<String> {
    move |k, p, e| match check_ident(what, k) {
        Ok(()) => Some(k.to_owned()),
        Err(err) => {
            push_err(e, p, Rule::BadIdent, err.to_string());
            None
        }
    }
}

fn name_key(k: &str, p: &str, e: &mut Vec<ParseError>) -> Option<Name> {
    match Name::new(k) {
        Ok(n) => Some(n),
        Err(err) => {
            push_err(e, p, Rule::BadName, err.to_string());
            None
        }
    }
}

/// Reads a word from `words` (JSON word, value).
fn word<T: Copy>(
    j: &Json,
    p: &str,
    what: &str,
    words: &[(&str, T)],
    e: &mut Vec<ParseError>,
) -> Option<T> {
    let s = string(j, p, what, e)?;
    match words.iter().find(|(w, _)| *w == s) {
        Some((_, v)) => Some(*v),
        None => {
            push_err(
                e,
                p,
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

/// Unwraps several `Option`s read independently (so that every problem is reported), or
/// returns `None` from the enclosing function if any is `None`.
macro_rules! all_some {
    ($($x:ident),* $(,)?) => {
        match ($($x,)*) {
            ($(Some($x),)*) => ($($x,)*),
            #[allow(unreachable_patterns)]
            _ => return None,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Node readers

fn read_node(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Node> {
    let Json::Object(members) = j else {
        push_err(
            e,
            p,
            Rule::WrongType,
            format!(
                "a node is an object with a `$kind` field, found {}",
                j.type_name()
            ),
        );
        return None;
    };
    let Some((_, kind_json)) = members.iter().find(|(k, _)| k == "$kind") else {
        push_err(e, p, Rule::MissingField, "a node needs `$kind`");
        return None;
    };
    let kp = child(p, "$kind");
    let Json::String(kind_text) = kind_json else {
        push_err(e, &kp, Rule::WrongType, "`$kind` is a string");
        return None;
    };
    let Some(kind) = NodeKind::from_name(kind_text) else {
        push_err(
            e,
            &kp,
            Rule::UnknownKind,
            format!(
                "unknown node kind {kind_text:?} (expected one of {})",
                NodeKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return None;
    };
    let mut o = Obj::new(j, p, kind.as_str(), e)?;
    o.opt("$kind");
    let node = match kind {
        NodeKind::DefSchema => read_schema(&mut o, e).map(Node::DefSchema),
        NodeKind::DefModule => read_module(&mut o, e).map(Node::DefModule),
        NodeKind::DefPlan => read_plan(&mut o, e).map(Node::DefPlan),
        NodeKind::DefCap => read_cap(&mut o, e).map(Node::DefCap),
        NodeKind::DefPolicy => read_policy(&mut o, e).map(Node::DefPolicy),
        NodeKind::DefEffect => read_effect(&mut o, e).map(Node::DefEffect),
        NodeKind::DefSecret => read_secret(&mut o, e).map(Node::DefSecret),
        NodeKind::Manifest => read_manifest(&mut o, e).map(Node::Manifest),
    };
    o.finish(e);
    node
}

fn read_schema(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefSchema> {
    let name = o.req_with("name", e, qname);
    let ty = o.req_with("type", e, type_ast);
    let (name, ty) = all_some!(name, ty);
    Some(DefSchema { name, ty })
}

fn read_module(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefModule> {
    let name = o.req_with("name", e, qname);
    let kind = o.req_with("module_kind", e, |j, p, e| {
        word(
            j,
            p,
            "`module_kind`",
            &[("reducer", ModuleKind::Reducer), ("pure", ModuleKind::Pure)],
            e,
        )
    });
    // A placeholder wasm hash means the module is bound later, like an absent one.
    let wasm_hash = o
        .opt_with("wasm_hash", e, hash)
        .map(|h| h.filter(|h| *h != ObjectId::from_bytes([0; 32])));
    let key_schema = o.opt_with("key_schema", e, qname);
    let abi = o.req_with("abi", e, |j, p, e| read_abi(j, p, kind, e));
    let (name, wasm_hash, key_schema, abi) = all_some!(name, wasm_hash, key_schema, abi);
    Some(DefModule {
        name,
        wasm_hash,
        key_schema,
        abi,
    })
}

fn read_abi(
    j: &Json,
    p: &str,
    kind: Option<ModuleKind>,
    e: &mut Vec<ParseError>,
) -> Option<ModuleAbi> {
    let mut o = Obj::new(j, p, "`abi`", e)?;
    let reducer = o.opt_with("reducer", e, read_reducer_abi);
    let pure = o.opt_with("pure", e, read_pure_abi);
    o.finish(e);
    let kind = kind?;
    let (reducer, pure) = (reducer?, pure?);
    let want = kind.as_str();
    match (kind, reducer, pure) {
        (ModuleKind::Reducer, Some(r), None) => Some(ModuleAbi::Reducer(r)),
        (ModuleKind::Pure, None, Some(x)) => Some(ModuleAbi::Pure(x)),
        (_, r, x) => {
            let msg = match (r.is_some(), x.is_some()) {
                (false, false) => format!("a {want} module needs `abi.{want}`"),
                _ => format!("a {want} module has exactly one ABI, `abi.{want}`"),
            };
            push_err(e, p, Rule::AbiMismatch, msg);
            None
        }
    }
}

fn read_reducer_abi(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<ReducerAbi> {
    let mut o = Obj::new(j, p, "`abi.reducer`", e)?;
    let state = o.req_with("state", e, qname);
    let event = o.req_with("event", e, qname);
    let annotations = o.opt_with("annotations", e, qname);
    let effects_emitted = o.opt_with("effects_emitted", e, |j, p, e| {
        list(j, p, e, dotted_of("effect kind"))
    });
    let cap_slots = o.opt_with("cap_slots", e, |j, p, e| {
        map_of(j, p, e, ident_key("cap slot name"), dotted_of("cap type"))
    });
    o.finish(e);
    let (state, event, annotations, effects_emitted, cap_slots) =
        all_some!(state, event, annotations, effects_emitted, cap_slots);
    Some(ReducerAbi {
        state,
        event,
        annotations,
        effects_emitted: effects_emitted.unwrap_or_default(),
        cap_slots: cap_slots.unwrap_or_default(),
    })
}

fn read_pure_abi(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<PureAbi> {
    let mut o = Obj::new(j, p, "`abi.pure`", e)?;
    let input = o.req_with("input", e, qname);
    let output = o.req_with("output", e, qname);
    o.finish(e);
    let (input, output) = all_some!(input, output);
    Some(PureAbi { input, output })
}

fn read_plan(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefPlan> {
    let name = o.req_with("name", e, qname);
    let input = o.req_with("input", e, qname);
    let output = o.opt_with("output", e, qname);
    let locals = o.opt_with("locals", e, |j, p, e| {
        map_of(j, p, e, ident_key("variable name"), qname)
    });
    let steps = o.req_with("steps", e, |j, p, e| {
        let steps = list(j, p, e, read_step)?;
        if steps.is_empty() {
            push_err(e, p, Rule::Empty, "a plan has at least one step");
            return None;
        }
        Some(steps)
    });
    let edges = o.opt_with("edges", e, |j, p, e| list(j, p, e, read_edge));
    let required_caps = o.opt_with("required_caps", e, |j, p, e| {
        list(j, p, e, ident_of("cap grant name"))
    });
    let allowed_effects = o.opt_with("allowed_effects", e, |j, p, e| {
        list(j, p, e, dotted_of("effect kind"))
    });
    let invariants = o.opt_with("invariants", e, |j, p, e| list(j, p, e, parse_expr));
    let (name, input, output, locals, steps, edges, required_caps, allowed_effects, invariants) = all_some!(
        name,
        input,
        output,
        locals,
        steps,
        edges,
        required_caps,
        allowed_effects,
        invariants
    );
    Some(DefPlan {
        name,
        input,
        output,
        locals: locals.unwrap_or_default(),
        steps,
        edges: edges.unwrap_or_default(),
        required_caps,
        allowed_effects,
        invariants: invariants.unwrap_or_default(),
    })
}

const STEP_OPS: [&str; 6] = [
    "raise_event",
    "emit_effect",
    "await_receipt",
    "await_event",
    "assign",
    "end",
];

fn read_step(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Step> {
    let mut o = Obj::new(j, p, "a step", e)?;
    let id = o.req_with("id", e, ident_of("step id"));
    let op = o.req_with("op", e, |j, p, e| {
        word(j, p, "`op`", &STEP_OPS.map(|s| (s, s)), e)
    });
    // Without a known op the allowed fields are unknown: report nothing more.
    let op = op?;
    let op = match op {
        "raise_event" => read_raise_event(&mut o, e),
        "emit_effect" => read_emit_effect(&mut o, e),
        "await_receipt" => read_await_receipt(&mut o, e),
        "await_event" => read_await_event(&mut o, e),
        "assign" => read_assign(&mut o, e),
        _ => read_end(&mut o, e),
    };
    o.finish(e);
    let (id, op) = all_some!(id, op);
    Some(Step { id, op })
}

fn read_raise_event(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let reducer = o.req_with("reducer", e, qname);
    let event = o.req_with("event", e, expr_or_value);
    let key = o.opt_with("key", e, parse_expr);
    let (reducer, event, key) = all_some!(reducer, event, key);
    Some(StepOp::RaiseEvent {
        reducer,
        event,
        key,
    })
}

fn read_emit_effect(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let kind = o.req_with("kind", e, dotted_of("effect kind"));
    let params = o.req_with("params", e, expr_or_value);
    let cap = o.req_with("cap", e, ident_of("cap grant name"));
    let bind = o.req_with("bind", e, |j, p, e| read_bind(j, p, "effect_id_as", e));
    let (kind, params, cap, bind_effect_id_as) = all_some!(kind, params, cap, bind);
    Some(StepOp::EmitEffect {
        kind,
        params,
        cap,
        bind_effect_id_as,
    })
}

fn read_await_receipt(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let receipt_for = o.req_with("for", e, parse_expr);
    let bind = o.req_with("bind", e, |j, p, e| read_bind(j, p, "as", e));
    let (receipt_for, bind_as) = all_some!(receipt_for, bind);
    Some(StepOp::AwaitReceipt {
        receipt_for,
        bind_as,
    })
}

fn read_await_event(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let event = o.req_with("event", e, qname);
    let filter = o.opt_with("where", e, parse_expr);
    let bind = o.req_with("bind", e, |j, p, e| read_bind(j, p, "as", e));
    let (event, filter, bind_as) = all_some!(event, filter, bind);
    Some(StepOp::AwaitEvent {
        event,
        filter,
        bind_as,
    })
}

fn read_assign(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let x = o.req_with("expr", e, expr_or_value);
    let bind = o.req_with("bind", e, |j, p, e| read_bind(j, p, "as", e));
    let (expr, bind_as) = all_some!(x, bind);
    Some(StepOp::Assign { expr, bind_as })
}

fn read_end(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<StepOp> {
    let result = o.opt_with("result", e, expr_or_value)?;
    Some(StepOp::End { result })
}

/// Reads `bind {<field>: VarName}`.
fn read_bind(j: &Json, p: &str, field: &'static str, e: &mut Vec<ParseError>) -> Option<String> {
    let mut o = Obj::new(j, p, "`bind`", e)?;
    let v = o.req_with(field, e, ident_of("variable name"));
    o.finish(e);
    v
}

fn read_edge(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Edge> {
    let mut o = Obj::new(j, p, "an edge", e)?;
    let from = o.req_with("from", e, ident_of("step id"));
    let to = o.req_with("to", e, ident_of("step id"));
    let when = o.opt_with("when", e, parse_expr);
    o.finish(e);
    let (from, to, when) = all_some!(from, to, when);
    Some(Edge { from, to, when })
}

fn read_cap(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefCap> {
    let name = o.req_with("name", e, qname);
    let cap_type = o.req_with("cap_type", e, dotted_of("cap type"));
    let schema = o.req_with("schema", e, type_ast);
    let (name, cap_type, schema) = all_some!(name, cap_type, schema);
    Some(DefCap {
        name,
        cap_type,
        schema,
    })
}

fn read_policy(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefPolicy> {
    let name = o.req_with("name", e, qname);
    let rules = o.req_with("rules", e, |j, p, e| list(j, p, e, read_rule));
    let (name, rules) = all_some!(name, rules);
    Some(DefPolicy { name, rules })
}

fn read_rule(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<PolicyRule> {
    let mut o = Obj::new(j, p, "a policy rule", e)?;
    let when = o.req_with("when", e, read_match);
    let decision = o.req_with("decision", e, |j, p, e| {
        word(
            j,
            p,
            "`decision`",
            &[("allow", Decision::Allow), ("deny", Decision::Deny)],
            e,
        )
    });
    o.finish(e);
    let (when, decision) = all_some!(when, decision);
    Some(PolicyRule { when, decision })
}

fn read_match(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<PolicyMatch> {
    let mut o = Obj::new(j, p, "`when`", e)?;
    let effect_kind = o.opt_with("effect_kind", e, dotted_of("effect kind"));
    let cap_name = o.opt_with("cap_name", e, ident_of("cap grant name"));
    let origin_kind = o.opt_with("origin_kind", e, |j, p, e| {
        word(
            j,
            p,
            "`origin_kind`",
            &[("plan", OriginKind::Plan), ("reducer", OriginKind::Reducer)],
            e,
        )
    });
    let origin_name = o.opt_with("origin_name", e, qname);
    o.finish(e);
    let (effect_kind, cap_name, origin_kind, origin_name) =
        all_some!(effect_kind, cap_name, origin_kind, origin_name);
    Some(PolicyMatch {
        effect_kind,
        cap_name,
        origin_kind,
        origin_name,
    })
}

fn read_effect(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefEffect> {
    let name = o.req_with("name", e, qname);
    let kind = o.req_with("kind", e, dotted_of("effect kind"));
    let params_schema = o.req_with("params_schema", e, qname);
    let receipt_schema = o.req_with("receipt_schema", e, qname);
    let cap_type = o.req_with("cap_type", e, dotted_of("cap type"));
    let origin_scope = o.req_with("origin_scope", e, |j, p, e| {
        word(
            j,
            p,
            "`origin_scope`",
            &[
                ("reducer", OriginScope::Reducer),
                ("plan", OriginScope::Plan),
                ("both", OriginScope::Both),
            ],
            e,
        )
    });
    let description = o.opt_with("description", e, any_text);
    let (name, kind, params_schema, receipt_schema, cap_type, origin_scope, description) = all_some!(
        name,
        kind,
        params_schema,
        receipt_schema,
        cap_type,
        origin_scope,
        description
    );
    Some(DefEffect {
        name,
        kind,
        params_schema,
        receipt_schema,
        cap_type,
        origin_scope,
        description,
    })
}

fn read_secret(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<DefSecret> {
    let name = o.req_with("name", e, qname);
    let binding_id = o.req_with("binding_id", e, |j, p, e| nonempty(j, p, "`binding_id`", e));
    let expected_digest = o.opt_with("expected_digest", e, hash);
    let allowed_caps = o.opt_with("allowed_caps", e, |j, p, e| {
        list(j, p, e, ident_of("cap grant name"))
    });
    let allowed_plans = o.opt_with("allowed_plans", e, |j, p, e| list(j, p, e, qname));
    let (name, binding_id, expected_digest, allowed_caps, allowed_plans) = all_some!(
        name,
        binding_id,
        expected_digest,
        allowed_caps,
        allowed_plans
    );
    Some(DefSecret {
        name,
        binding_id,
        expected_digest,
        allowed_caps,
        allowed_plans,
    })
}

fn read_manifest(o: &mut Obj<'_>, e: &mut Vec<ParseError>) -> Option<Manifest> {
    let version = o.req_with("air_version", e, |j, p, e| {
        let s = string(j, p, "`air_version`", e)?;
        if s == "1" {
            Some(())
        } else {
            push_err(
                e,
                p,
                Rule::BadVersion,
                format!("`air_version` must be \"1\", found {s:?}"),
            );
            None
        }
    });
    let refs = |o: &mut Obj<'_>, key: &str, e: &mut Vec<ParseError>| {
        o.opt_with(key, e, |j, p, e| list(j, p, e, read_named_ref))
    };
    let schemas = refs(o, "schemas", e);
    let modules = refs(o, "modules", e);
    let plans = refs(o, "plans", e);
    let effects = refs(o, "effects", e);
    let caps = refs(o, "caps", e);
    let policies = refs(o, "policies", e);
    let secrets = refs(o, "secrets", e);
    let routing = o.opt_with("routing", e, read_routing);
    let triggers = o.opt_with("triggers", e, |j, p, e| list(j, p, e, read_trigger));
    let defaults = o.opt_with("defaults", e, read_defaults);
    let module_bindings = o.opt_with("module_bindings", e, |j, p, e| {
        map_of(j, p, e, name_key, read_slots)
    });
    let (
        version,
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
    ) = all_some!(
        version,
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
        module_bindings
    );
    let () = version;
    Some(Manifest {
        schemas: schemas.unwrap_or_default(),
        modules: modules.unwrap_or_default(),
        plans: plans.unwrap_or_default(),
        effects: effects.unwrap_or_default(),
        caps: caps.unwrap_or_default(),
        policies: policies.unwrap_or_default(),
        secrets: secrets.unwrap_or_default(),
        routing: routing.unwrap_or_default(),
        triggers: triggers.unwrap_or_default(),
        defaults: defaults.unwrap_or_default(),
        module_bindings: module_bindings
            .unwrap_or_default()
            .into_iter()
            .map(|(module, slots)| ModuleBinding { module, slots })
            .collect(),
    })
}

fn read_named_ref(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<NamedRef> {
    let mut o = Obj::new(j, p, "a manifest entry", e)?;
    let n = o.req_with("name", e, qname);
    let h = o.opt_with("hash", e, hash);
    o.finish(e);
    let (name, hash) = all_some!(n, h);
    Some(NamedRef { name, hash })
}

fn read_routing(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Routing> {
    let mut o = Obj::new(j, p, "`routing`", e)?;
    let events = o.opt_with("events", e, |j, p, e| list(j, p, e, read_route_event));
    let inboxes = o.opt_with("inboxes", e, |j, p, e| list(j, p, e, read_inbox));
    o.finish(e);
    let (events, inboxes) = all_some!(events, inboxes);
    Some(Routing {
        events: events.unwrap_or_default(),
        inboxes: inboxes.unwrap_or_default(),
    })
}

fn read_route_event(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<RouteEvent> {
    let mut o = Obj::new(j, p, "a routing entry", e)?;
    let event = o.req_with("event", e, qname);
    let reducer = o.req_with("reducer", e, qname);
    let key_field = o.opt_with("key_field", e, |j, p, e| nonempty(j, p, "`key_field`", e));
    o.finish(e);
    let (event, reducer, key_field) = all_some!(event, reducer, key_field);
    Some(RouteEvent {
        event,
        reducer,
        key_field,
    })
}

fn read_inbox(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Inbox> {
    let mut o = Obj::new(j, p, "an inbox route", e)?;
    let source = o.req_with("source", e, |j, p, e| nonempty(j, p, "`source`", e));
    let reducer = o.req_with("reducer", e, qname);
    o.finish(e);
    let (source, reducer) = all_some!(source, reducer);
    Some(Inbox { source, reducer })
}

fn read_trigger(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Trigger> {
    let mut o = Obj::new(j, p, "a trigger", e)?;
    let event = o.req_with("event", e, qname);
    let plan = o.req_with("plan", e, qname);
    let correlate_by = o.opt_with("correlate_by", e, |j, p, e| {
        nonempty(j, p, "`correlate_by`", e)
    });
    o.finish(e);
    let (event, plan, correlate_by) = all_some!(event, plan, correlate_by);
    Some(Trigger {
        event,
        plan,
        correlate_by,
    })
}

fn read_defaults(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Defaults> {
    let mut o = Obj::new(j, p, "`defaults`", e)?;
    let policy = o.opt_with("policy", e, qname);
    let cap_grants = o.opt_with("cap_grants", e, |j, p, e| list(j, p, e, read_cap_grant));
    o.finish(e);
    let (policy, cap_grants) = all_some!(policy, cap_grants);
    Some(Defaults {
        policy,
        cap_grants: cap_grants.unwrap_or_default(),
    })
}

/// Reads a capability grant `{name, cap, params, expiry_ns?, budget?}`.
///
/// # Errors
/// Every problem found; pointers are relative to `j` (`""`).
pub fn cap_grant_from_json(j: &Json) -> Result<CapGrant, Vec<ParseError>> {
    let mut e = Vec::new();
    match read_cap_grant(j, "", &mut e) {
        Some(g) if e.is_empty() => Ok(g),
        _ => Err(e),
    }
}

fn read_cap_grant(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<CapGrant> {
    let mut o = Obj::new(j, p, "a cap grant", e)?;
    let n = o.req_with("name", e, ident_of("cap grant name"));
    let cap = o.req_with("cap", e, qname);
    let params = o.req_with("params", e, |j, _, _| Some(j.clone()));
    let expiry_ns = o.opt_with("expiry_ns", e, nat);
    let budget = o.opt_with("budget", e, read_budget);
    o.finish(e);
    let (name, cap, params, expiry_ns, budget) = all_some!(n, cap, params, expiry_ns, budget);
    Some(CapGrant {
        name,
        cap,
        params,
        expiry_ns,
        budget,
    })
}

fn read_budget(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Budget> {
    let mut o = Obj::new(j, p, "`budget`", e)?;
    let tokens = o.opt_with("tokens", e, nat);
    let bytes = o.opt_with("bytes", e, nat);
    let cents = o.opt_with("cents", e, nat);
    o.finish(e);
    let (tokens, bytes, cents) = all_some!(tokens, bytes, cents);
    Some(Budget {
        tokens,
        bytes,
        cents,
    })
}

fn read_slots(j: &Json, p: &str, e: &mut Vec<ParseError>) -> Option<Vec<(String, String)>> {
    let mut o = Obj::new(j, p, "a module binding", e)?;
    let slots = o.req_with("slots", e, |j, p, e| {
        map_of(
            j,
            p,
            e,
            ident_key("cap slot name"),
            ident_of("cap grant name"),
        )
    });
    o.finish(e);
    slots
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// Builds a JSON object in insertion order.
struct ObjWriter(Vec<(String, Json)>);

impl ObjWriter {
    fn new() -> Self {
        Self(Vec::new())
    }

    fn put(&mut self, k: &str, v: Json) {
        self.0.push((k.to_owned(), v));
    }

    fn str(&mut self, k: &str, v: &str) {
        self.put(k, Json::String(v.to_owned()));
    }

    fn name(&mut self, k: &str, v: &Name) {
        self.put(k, Json::String(v.to_string()));
    }

    fn opt_name(&mut self, k: &str, v: Option<&Name>) {
        if let Some(v) = v {
            self.name(k, v);
        }
    }

    fn done(self) -> Json {
        Json::Object(self.0)
    }
}

fn strings(xs: &[String]) -> Json {
    Json::Array(xs.iter().map(|s| Json::String(s.clone())).collect())
}

fn string_map(xs: &[(String, String)]) -> Json {
    Json::Object(
        xs.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn write_module(w: &mut ObjWriter, n: &DefModule) {
    w.name("name", &n.name);
    w.str("module_kind", n.module_kind().as_str());
    if let Some(h) = &n.wasm_hash {
        w.str("wasm_hash", &h.to_string());
    }
    w.opt_name("key_schema", n.key_schema.as_ref());
    let mut abi = ObjWriter::new();
    match &n.abi {
        ModuleAbi::Reducer(r) => {
            let mut x = ObjWriter::new();
            x.name("state", &r.state);
            x.name("event", &r.event);
            x.opt_name("annotations", r.annotations.as_ref());
            if !r.effects_emitted.is_empty() {
                x.put("effects_emitted", strings(&r.effects_emitted));
            }
            if !r.cap_slots.is_empty() {
                x.put("cap_slots", string_map(&r.cap_slots));
            }
            abi.put("reducer", x.done());
        }
        ModuleAbi::Pure(pa) => {
            let mut x = ObjWriter::new();
            x.name("input", &pa.input);
            x.name("output", &pa.output);
            abi.put("pure", x.done());
        }
    }
    w.put("abi", abi.done());
}

fn write_plan(w: &mut ObjWriter, n: &DefPlan) {
    w.name("name", &n.name);
    w.name("input", &n.input);
    w.opt_name("output", n.output.as_ref());
    if !n.locals.is_empty() {
        w.put(
            "locals",
            Json::Object(
                n.locals
                    .iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.to_string())))
                    .collect(),
            ),
        );
    }
    w.put(
        "steps",
        Json::Array(n.steps.iter().map(write_step).collect()),
    );
    w.put(
        "edges",
        Json::Array(
            n.edges
                .iter()
                .map(|edge| {
                    let mut x = ObjWriter::new();
                    x.str("from", &edge.from);
                    x.str("to", &edge.to);
                    if let Some(g) = &edge.when {
                        x.put("when", g.to_json());
                    }
                    x.done()
                })
                .collect(),
        ),
    );
    if let Some(c) = &n.required_caps {
        w.put("required_caps", strings(c));
    }
    if let Some(k) = &n.allowed_effects {
        w.put("allowed_effects", strings(k));
    }
    if !n.invariants.is_empty() {
        w.put(
            "invariants",
            Json::Array(n.invariants.iter().map(Expr::to_json).collect()),
        );
    }
}

fn bind(field: &str, var: &str) -> Json {
    Json::Object(vec![(field.to_owned(), Json::String(var.to_owned()))])
}

fn write_step(s: &Step) -> Json {
    let mut w = ObjWriter::new();
    w.str("id", &s.id);
    w.str("op", s.op.as_str());
    match &s.op {
        StepOp::RaiseEvent {
            reducer,
            event,
            key,
        } => {
            w.name("reducer", reducer);
            w.put("event", event.to_json());
            if let Some(k) = key {
                w.put("key", k.to_json());
            }
        }
        StepOp::EmitEffect {
            kind,
            params,
            cap,
            bind_effect_id_as,
        } => {
            w.str("kind", kind);
            w.put("params", params.to_json());
            w.str("cap", cap);
            w.put("bind", bind("effect_id_as", bind_effect_id_as));
        }
        StepOp::AwaitReceipt {
            receipt_for,
            bind_as,
        } => {
            w.put("for", receipt_for.to_json());
            w.put("bind", bind("as", bind_as));
        }
        StepOp::AwaitEvent {
            event,
            filter,
            bind_as,
        } => {
            w.name("event", event);
            if let Some(f) = filter {
                w.put("where", f.to_json());
            }
            w.put("bind", bind("as", bind_as));
        }
        StepOp::Assign { expr, bind_as } => {
            w.put("expr", expr.to_json());
            w.put("bind", bind("as", bind_as));
        }
        StepOp::End { result } => {
            if let Some(r) = result {
                w.put("result", r.to_json());
            }
        }
    }
    w.done()
}

fn write_rule(r: &PolicyRule) -> Json {
    let mut m = ObjWriter::new();
    if let Some(k) = &r.when.effect_kind {
        m.str("effect_kind", k);
    }
    if let Some(c) = &r.when.cap_name {
        m.str("cap_name", c);
    }
    if let Some(o) = r.when.origin_kind {
        m.str("origin_kind", o.as_str());
    }
    m.opt_name("origin_name", r.when.origin_name.as_ref());
    let mut w = ObjWriter::new();
    w.put("when", m.done());
    w.str("decision", r.decision.as_str());
    w.done()
}

/// Renders a capability grant.
#[must_use]
pub fn cap_grant_to_json(g: &CapGrant) -> Json {
    let mut w = ObjWriter::new();
    w.str("name", &g.name);
    w.name("cap", &g.cap);
    w.put("params", g.params.clone());
    if let Some(x) = g.expiry_ns {
        w.put("expiry_ns", Json::Number(x.to_string()));
    }
    if let Some(b) = &g.budget {
        let mut x = ObjWriter::new();
        for (k, v) in [("tokens", b.tokens), ("bytes", b.bytes), ("cents", b.cents)] {
            if let Some(v) = v {
                x.put(k, Json::Number(v.to_string()));
            }
        }
        w.put("budget", x.done());
    }
    w.done()
}

fn write_manifest(w: &mut ObjWriter, m: &Manifest) {
    w.str("air_version", "1");
    let refs = |xs: &[NamedRef]| {
        Json::Array(
            xs.iter()
                .map(|r| {
                    let mut x = ObjWriter::new();
                    x.name("name", &r.name);
                    if let Some(h) = &r.hash {
                        x.str("hash", &h.to_string());
                    }
                    x.done()
                })
                .collect(),
        )
    };
    w.put("schemas", refs(&m.schemas));
    w.put("modules", refs(&m.modules));
    w.put("plans", refs(&m.plans));
    w.put("effects", refs(&m.effects));
    w.put("caps", refs(&m.caps));
    w.put("policies", refs(&m.policies));
    if !m.secrets.is_empty() {
        w.put("secrets", refs(&m.secrets));
    }
    let events = m
        .routing
        .events
        .iter()
        .map(|r| {
            let mut x = ObjWriter::new();
            x.name("event", &r.event);
            x.name("reducer", &r.reducer);
            if let Some(k) = &r.key_field {
                x.str("key_field", k);
            }
            x.done()
        })
        .collect();
    let inboxes = m
        .routing
        .inboxes
        .iter()
        .map(|r| {
            let mut x = ObjWriter::new();
            x.str("source", &r.source);
            x.name("reducer", &r.reducer);
            x.done()
        })
        .collect();
    let mut routing = ObjWriter::new();
    routing.put("events", Json::Array(events));
    routing.put("inboxes", Json::Array(inboxes));
    w.put("routing", routing.done());
    w.put(
        "triggers",
        Json::Array(
            m.triggers
                .iter()
                .map(|t| {
                    let mut x = ObjWriter::new();
                    x.name("event", &t.event);
                    x.name("plan", &t.plan);
                    if let Some(c) = &t.correlate_by {
                        x.str("correlate_by", c);
                    }
                    x.done()
                })
                .collect(),
        ),
    );
    let mut defaults = ObjWriter::new();
    defaults.opt_name("policy", m.defaults.policy.as_ref());
    defaults.put(
        "cap_grants",
        Json::Array(
            m.defaults
                .cap_grants
                .iter()
                .map(cap_grant_to_json)
                .collect(),
        ),
    );
    w.put("defaults", defaults.done());
    if !m.module_bindings.is_empty() {
        w.put(
            "module_bindings",
            Json::Object(
                m.module_bindings
                    .iter()
                    .map(|b| {
                        (
                            b.module.to_string(),
                            Json::Object(vec![("slots".to_owned(), string_map(&b.slots))]),
                        )
                    })
                    .collect(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::air::expr::{Const, RefRoot};
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
        let doc = include_str!("../../docs/air.md");
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
}
