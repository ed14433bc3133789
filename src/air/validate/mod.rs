//! Semantic validation of a world's AIR: a manifest, the nodes it lists and the built-in
//! `sys/` catalog, checked as a whole.
//!
//! Loading ([`super::load`]) checks every node on its own; [`validate`] checks what only the
//! whole shows: names are unique, every reference resolves to a node the manifest lists,
//! schemas are not recursive, plans are well-formed DAGs whose expressions refer to what
//! exists and fit their types, literals fit their schemas, effects are emitted by whom their
//! scope allows, grants and bindings fit their capabilities, routing and triggers fit their
//! reducers and plans. It reports every problem at once, each as a [`Diagnostic`] with a
//! stable rule id ([`Check`]), and on success returns the world with every node's canonical
//! value and id and the manifest's hashes filled in ([`Validated`]).
//!
//! Built-ins are not implied: a world lists the `sys/` nodes it uses, and a problem inside a
//! built-in node (say it refers to a `sys/` schema the manifest does not list) is reported at
//! the manifest entry that lists it.
//!
//! The checks, by area:
//!
//! - `context`: where each node is written and how problems are reported there, and the
//!   listed world that every check looks things up in (schemas, modules, plans, effects,
//!   grants), with the hints for names the manifest does not list;
//! - `world`: the whole run: names unique and reserved, exactly one manifest, what it lists,
//!   the checks of every area, then canonical values, ids and the manifest's hashes;
//! - `schemas`: recursive and dangling schemas, and everything that depends on them;
//! - `defs`: modules, effects, capabilities, policies and secrets;
//! - `manifest`: defaults and grants, module bindings, routing and triggers;
//! - `plans`, `graph`, `steps`: plans — the DAG of steps and edges, bindings and correlation,
//!   each step, guards and invariants, with expressions typed by [`super::expr::check`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::diag::{self, RuleId};
use super::load::Origin;
use super::name::Name;
use super::nodes::{Manifest, Node, NodeKind};
use crate::codec::cbor::Value;
use crate::object::ObjectId;

mod context;
mod defs;
mod graph;
mod manifest;
mod plans;
mod schemas;
mod steps;
mod world;

// ---------------------------------------------------------------------------------------------
// Rules and diagnostics

macro_rules! checks {
    ($($(#[$doc:meta])* $v:ident = $s:literal;)*) => {
        /// The rule a [`Diagnostic`] reports. The text forms ([`Check::as_str`]) are stable
        /// kebab-case identifiers for tools and tests.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Check {
            $($(#[$doc])* $v,)*
        }

        impl Check {
            /// Every rule.
            pub const ALL: &[Check] = &[$(Check::$v,)*];

            /// The rule's stable identifier.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Check::$v => $s,)*
                }
            }
        }
    };
}

checks! {
    /// Two nodes of one kind share a name, or a manifest list names a node twice.
    DuplicateName = "duplicate-name";
    /// There is no manifest, or more than one.
    ManifestCount = "manifest-count";
    /// A node in the reserved `sys/` namespace that is not a built-in.
    ReservedName = "reserved-name";
    /// A node restates a built-in differently.
    BuiltinMismatch = "builtin-mismatch";
    /// A node the manifest does not list.
    UnlistedNode = "unlisted-node";
    /// A manifest list names a node that is neither loaded nor built in.
    UnknownNode = "unknown-node";
    /// A manifest entry's hash is not the id of the node it names.
    HashMismatch = "hash-mismatch";
    /// A malformed small identifier (step id, variable, grant or slot name).
    BadIdent = "bad-ident";
    /// A malformed effect kind or capability type.
    BadDotted = "bad-dotted";
    /// A schema reference names no schema the manifest lists.
    UnknownSchema = "unknown-schema";
    /// A schema refers to itself, directly or through others.
    RecursiveType = "recursive-type";
    /// A module reference names no module the manifest lists.
    UnknownModule = "unknown-module";
    /// A module used as a reducer is a pure module.
    NotAReducer = "not-a-reducer";
    /// A plan reference names no plan the manifest lists.
    UnknownPlan = "unknown-plan";
    /// An effect kind no listed `defeffect` declares.
    UnknownEffect = "unknown-effect";
    /// A capability reference names no `defcap` the manifest lists.
    UnknownCap = "unknown-cap";
    /// A grant name that `defaults.cap_grants` does not define.
    UnknownGrant = "unknown-grant";
    /// `defaults.policy` names no policy the manifest lists.
    UnknownPolicy = "unknown-policy";
    /// A policy rule's `origin_name` names no plan or module of its `origin_kind`.
    UnknownOrigin = "unknown-origin";
    /// Two listed effects declare one effect kind.
    DuplicateEffectKind = "duplicate-effect-kind";
    /// An effect emitted by a reducer or plan whose `origin_scope` does not allow that origin.
    OriginScope = "origin-scope";
    /// A reducer emits a micro-effect whose receipt event its event schema cannot receive.
    ReceiptEvent = "receipt-event";
    /// A grant's capability type is not the one an effect or a slot needs.
    CapTypeMismatch = "cap-type-mismatch";
    /// Two grants share a name.
    DuplicateGrant = "duplicate-grant";
    /// A module binding names a slot the module does not declare.
    UnknownSlot = "unknown-slot";
    /// A literal value does not fit its schema.
    LiteralType = "literal-type";
    /// Two steps of a plan share an id.
    DuplicateStep = "duplicate-step";
    /// An edge names a step the plan does not have.
    UnknownStep = "unknown-step";
    /// Two edges join the same steps.
    DuplicateEdge = "duplicate-edge";
    /// The edges form a cycle.
    Cycle = "cycle";
    /// An expression refers to a variable or step that does not exist.
    UnresolvedRef = "unresolved-ref";
    /// An expression refers to a variable or step output that is not bound by an ancestor of
    /// the step that reads it.
    NotAncestor = "not-ancestor";
    /// `@event` outside `await_event.where` (invariants included).
    EventRef = "event-ref";
    /// A reference's field path does not exist in the type it walks.
    BadPath = "bad-path";
    /// An expression's type does not fit where it is used.
    TypeMismatch = "type-mismatch";
    /// A literal in a slot whose type is unknown (assign to an undeclared variable).
    UntypedLiteral = "untyped-literal";
    /// `required_caps` differs from the grants the steps use.
    RequiredCaps = "required-caps";
    /// `allowed_effects` differs from the effect kinds the steps emit.
    AllowedEffects = "allowed-effects";
    /// Two `emit_effect` steps bind one handle.
    DuplicateHandle = "duplicate-handle";
    /// `await_receipt.for` is not a handle bound by an earlier `emit_effect`.
    AwaitReceiptFor = "await-receipt-for";
    /// A correlated plan's `await_event` lacks a `where`, or it ignores the correlation key.
    CorrelationWhere = "correlation-where";
    /// `end.result` is present without a plan `output`, or missing with one.
    EndResult = "end-result";
    /// `raise_event.key` is missing for a keyed reducer, or given for one that is not.
    RaiseKey = "raise-key";
    /// A routed event is neither the reducer's event schema nor one of its alternatives.
    RouteEvent = "route-event";
    /// A route to a keyed reducer without `key_field`, or with one to a reducer without key.
    RouteKey = "route-key";
    /// A `key_field` that is not a field of the event or does not have the key's type.
    KeyField = "key-field";
    /// A trigger's event schema is not the plan's input schema.
    TriggerInput = "trigger-input";
    /// A trigger's `correlate_by` is not a field of its event.
    CorrelateBy = "correlate-by";
    /// A malformed secret.
    BadSecret = "bad-secret";
    /// A node could not be encoded canonically (an internal inconsistency).
    Canonical = "canonical";
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RuleId for Check {
    fn as_str(self) -> &'static str {
        Check::as_str(self)
    }
}

/// One problem of a world: a [`diag::Diagnostic`] of the validation rules ([`Check`]).
pub type Diagnostic = diag::Diagnostic<Check>;

// ---------------------------------------------------------------------------------------------
// Result

/// A node of a validated world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidNode {
    /// The node as loaded (for a built-in the world lists without restating it, the built-in).
    pub node: Node,
    /// Where it was loaded from; `None` for a built-in taken from the catalog.
    pub origin: Option<Origin>,
    /// Its canonical value (see [`super::canon`]).
    pub value: Value,
    /// Its id.
    pub id: ObjectId,
}

/// A world that passed validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The manifest, every list entry's hash filled in with its node's id.
    pub manifest: Manifest,
    /// Where the manifest was loaded from.
    pub manifest_origin: Origin,
    /// The manifest's canonical value.
    pub manifest_value: Value,
    /// The manifest's id: the Merkle root of the world's control plane.
    pub manifest_id: ObjectId,
    /// Every node the manifest lists, by kind in [`NodeKind::ALL`] order (schemas, modules,
    /// plans, caps, policies, effects, secrets), each kind in listed order.
    pub nodes: Vec<ValidNode>,
    pub(super) index: HashMap<(NodeKind, Name), usize>,
}

impl Validated {
    /// The listed node of `kind` named `name`.
    #[must_use]
    pub fn get(&self, kind: NodeKind, name: &Name) -> Option<&ValidNode> {
        self.index
            .get(&(kind, name.clone()))
            .map(|&i| &self.nodes[i])
    }
}

/// The version of the rules [`validate`] checks. It goes up whenever a rule is added or made
/// stricter, so that a record that a control plane passed (the store's validation cache)
/// counts only for the rules it was checked against.
pub const VALIDATOR_VERSION: u32 = 1;

thread_local! {
    static FULL_RUNS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`validate`] or [`validate_with`] ran every rule on this thread (for tests
/// that check a cache is used).
#[doc(hidden)]
#[must_use]
pub fn checks_run_on_this_thread() -> u64 {
    FULL_RUNS.with(std::cell::Cell::get)
}

/// Validates a world: its nodes (exactly one of them a manifest) with their origins, plus the
/// built-in catalog. Line and column of each diagnostic come from reading its file again.
///
/// # Errors
/// Every problem found, sorted by file and position.
pub fn validate(nodes: Vec<(Node, Origin)>) -> Result<Validated, Vec<Diagnostic>> {
    validate_with(nodes, &|p: &Path| std::fs::read_to_string(p).ok())
}

/// [`validate`], with the text of each file (for line and column) from `source`.
///
/// # Errors
/// Every problem found, sorted by file and position.
pub fn validate_with(
    nodes: Vec<(Node, Origin)>,
    source: &dyn Fn(&Path) -> Option<String>,
) -> Result<Validated, Vec<Diagnostic>> {
    FULL_RUNS.with(|c| c.set(c.get() + 1));
    let mut diags = Vec::new();
    let result = world::run(&nodes, world::Mode::Check, &mut diags);
    match result {
        Some(v) if diags.is_empty() => Ok(v),
        _ => {
            locate(&mut diags, source);
            Err(diags)
        }
    }
}

/// Builds the [`Validated`] world of `nodes` without checking the rules that look across
/// nodes, for a control plane known to have passed [`validate`] under this
/// [`VALIDATOR_VERSION`] (its manifest id names exactly these nodes). Names, the manifest's
/// listing, canonical values, ids and hashes are still checked, since building needs them; the
/// caller compares the resulting manifest id with the one it expects. `known` holds
/// canonical values by id: a node the manifest lists by one of those ids takes that value
/// and id as they are, without being encoded again (the caller vouches that each is the value
/// stored under its id, as a store's content addressing does).
///
/// # Errors
/// The problems found in what it still checks.
pub fn rebuild(
    nodes: Vec<(Node, Origin)>,
    known: HashMap<ObjectId, Value>,
) -> Result<Validated, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    match world::run(&nodes, world::Mode::Rebuild(known), &mut diags) {
        Some(v) if diags.is_empty() => Ok(v),
        _ => Err(diags),
    }
}

fn locate(diags: &mut [Diagnostic], source: &dyn Fn(&Path) -> Option<String>) {
    let mut texts: HashMap<PathBuf, Option<String>> = HashMap::new();
    for d in diags.iter_mut() {
        if d.file.as_os_str().is_empty() {
            continue;
        }
        let text = texts
            .entry(d.file.clone())
            .or_insert_with(|| source(&d.file));
        if let Some(text) = text {
            d.locate(text);
        }
    }
    diags.sort_by(|a, b| {
        a.file
            .cmp(&b.file)
            .then_with(|| {
                let key = |d: &Diagnostic| d.pos.map_or(usize::MAX, |p| p.offset);
                key(a).cmp(&key(b))
            })
            .then_with(|| a.pointer.cmp(&b.pointer))
            .then_with(|| a.rule.cmp(&b.rule))
    });
}

#[cfg(test)]
mod tests;
