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

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use super::canon::{self, Catalog, list_key};
use super::diag::{self, RuleId};
use super::expr::{Const, Expr, ExprOrValue, Op, Ref, RefRoot};
use super::load::{self, Origin};
use super::name::{Name, check_dotted, check_ident};
use super::nodes::{
    CapGrant, DefCap, DefEffect, DefModule, DefPlan, DefPolicy, Manifest, ModuleAbi, NamedRef,
    Node, NodeKind, OriginKind, OriginScope, ReducerAbi, StepOp, Trigger,
};
use super::types::{MapKey, SchemaProblem, Schemas, Type, check_recursion, resolve};
use super::value;
use crate::codec::cbor::Value;
use crate::codec::json::pointer_escape;
use crate::object::ObjectId;

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
    /// Its canonical value (see [`canon`]).
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
    index: HashMap<(NodeKind, Name), usize>,
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
    let mut diags = Vec::new();
    let result = run(&nodes, &mut diags);
    match result {
        Some(v) if diags.is_empty() => Ok(v),
        _ => {
            locate(&mut diags, source);
            Err(diags)
        }
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

// ---------------------------------------------------------------------------------------------
// Sites and reporting

/// Where a node is written, for reports.
#[derive(Clone, Debug)]
struct Site {
    file: PathBuf,
    /// Pointer of the node in its file; for a built-in, of the manifest entry listing it.
    base: String,
    /// `kind name`.
    label: String,
    /// A built-in from the catalog: reports go to the manifest entry.
    builtin: bool,
}

impl Site {
    fn of(node: &Node, origin: &Origin) -> Self {
        Self {
            file: origin.file.clone(),
            base: origin.pointer.clone(),
            label: label(node),
            builtin: false,
        }
    }
}

fn label(node: &Node) -> String {
    match node.name() {
        Some(n) => format!("{} {n}", node.kind()),
        None => "manifest".to_owned(),
    }
}

fn report(out: &mut Vec<Diagnostic>, site: &Site, rel: &str, rule: Check, message: String) {
    let (pointer, message, node) = if site.builtin {
        (
            site.base.clone(),
            format!("{message} (in the built-in node, at {})", display_ptr(rel)),
            format!("built-in {}", site.label),
        )
    } else {
        (format!("{}{rel}", site.base), message, site.label.clone())
    };
    out.push(Diagnostic {
        file: site.file.clone(),
        pointer,
        pos: None,
        node: Some(node),
        rule,
        message,
    });
}

fn display_ptr(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

fn at(p: &str, key: &str) -> String {
    format!("{p}/{}", pointer_escape(key))
}

fn builtin_of(kind: NodeKind, name: &Name) -> Option<&'static Node> {
    load::builtin(name.as_str()).filter(|n| n.kind() == kind)
}

// ---------------------------------------------------------------------------------------------
// Types

fn res<'t>(t: &'t Type, s: &'t dyn Schemas) -> Option<&'t Type> {
    resolve(t, s).ok()
}

/// Deepest type comparison: types nest at most [`crate::codec::cbor::MAX_DEPTH`] deep, and
/// references are followed only through sound (non-recursive) schemas.
const TYPE_DEPTH: usize = 512;

/// Whether two types are the same, following references. Unknown types compare equal (their
/// problem is reported where they are declared).
fn same(a: &Type, b: &Type, s: &dyn Schemas, depth: usize) -> bool {
    if let (Type::Ref(x), Type::Ref(y)) = (a, b)
        && x == y
    {
        return true;
    }
    if depth > TYPE_DEPTH {
        return true;
    }
    let (Some(a), Some(b)) = (res(a, s), res(b, s)) else {
        return true;
    };
    let d = depth + 1;
    match (a, b) {
        (Type::Record(x), Type::Record(y)) | (Type::Variant(x), Type::Variant(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, t)| y.get(k).is_some_and(|u| same(t, u, s, d)))
        }
        (Type::List(x), Type::List(y))
        | (Type::Set(x), Type::Set(y))
        | (Type::Option(x), Type::Option(y)) => same(x, y, s, d),
        (Type::Map { key: k1, value: v1 }, Type::Map { key: k2, value: v2 }) => {
            k1 == k2 && same(v1, v2, s, d)
        }
        _ => a == b,
    }
}

fn is_option(t: &Type, s: &dyn Schemas) -> bool {
    matches!(res(t, s), Some(Type::Option(_)) | None)
}

/// Whether a value of type `from` may stand where `to` is expected: the same type, a value or
/// `null` where an option is expected, a record with the fields of `to` (option fields may be
/// missing), a variant with some of `to`'s alternatives.
fn assignable(from: &Type, to: &Type, s: &dyn Schemas, depth: usize) -> bool {
    if let (Type::Ref(x), Type::Ref(y)) = (from, to)
        && x == y
    {
        return true;
    }
    if depth > TYPE_DEPTH {
        return true;
    }
    let (Some(f), Some(t)) = (res(from, s), res(to, s)) else {
        return true;
    };
    let d = depth + 1;
    match (f, t) {
        (Type::Unit, Type::Option(_)) => true,
        (Type::Option(x), Type::Option(y)) => assignable(x, y, s, d),
        (_, Type::Option(y)) => assignable(f, y, s, d),
        (Type::Record(x), Type::Record(y)) => {
            x.iter()
                .all(|(k, ft)| y.get(k).is_some_and(|tt| assignable(ft, tt, s, d)))
                && y.iter()
                    .all(|(k, tt)| x.contains_key(k) || is_option(tt, s))
        }
        (Type::Variant(x), Type::Variant(y)) => x
            .iter()
            .all(|(k, ft)| y.get(k).is_some_and(|tt| assignable(ft, tt, s, d))),
        (Type::List(x), Type::List(y)) | (Type::Set(x), Type::Set(y)) => assignable(x, y, s, d),
        (Type::Map { key: k1, value: v1 }, Type::Map { key: k2, value: v2 }) => {
            k1 == k2 && assignable(v1, v2, s, d)
        }
        _ => same(f, t, s, d),
    }
}

/// A type with references and options peeled off, for classifying operands.
fn peel<'t>(t: &'t Type, s: &'t dyn Schemas) -> Option<&'t Type> {
    let mut t = res(t, s)?;
    for _ in 0..TYPE_DEPTH {
        match t {
            Type::Option(x) => t = res(x, s)?,
            _ => return Some(t),
        }
    }
    None
}

fn is_integer(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Nat | Type::Time | Type::Duration)
}

/// Whether values of the two types can be compared for equality.
fn comparable(a: &Type, b: &Type, s: &dyn Schemas) -> bool {
    let (Some(x), Some(y)) = (peel(a, s), peel(b, s)) else {
        return true;
    };
    matches!(x, Type::Unit)
        || matches!(y, Type::Unit)
        || (is_integer(x) && is_integer(y))
        || assignable(x, y, s, 0)
        || assignable(y, x, s, 0)
}

/// A short description of a type for messages.
fn describe(t: &Type) -> String {
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
fn field_type(t: &Type, path: &[&str], s: &dyn Schemas, depth: usize) -> Result<Type, String> {
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
            Some(ft) => field_type(ft, rest, s, depth + 1),
            None => Err(format!("{} has no field `{seg}`", describe(t))),
        },
        Type::Variant(tags) if *seg == "$value" => {
            let mut found: Option<Type> = None;
            for pt in tags.values() {
                let ft = field_type(pt, rest, s, depth + 1)?;
                if let Some(f) = &found {
                    if !same(f, &ft, s, 0) {
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

fn const_type(c: &Const) -> Type {
    match c {
        Const::Null => Type::Unit,
        Const::Bool(_) => Type::Bool,
        Const::Int(_) => Type::Int,
        Const::Nat(_) => Type::Nat,
        Const::Dec128(_) => Type::Dec128,
        Const::Text(_) => Type::Text,
        Const::Bytes(_) => Type::Bytes,
        Const::TimeNs(_) => Type::Time,
        Const::DurationNs(_) => Type::Duration,
        Const::Hash(_) => Type::Hash,
        Const::Uuid(_) => Type::Uuid,
    }
}

fn expr_form(e: &Expr) -> String {
    match e {
        Expr::Const(Const::Null) => "`{\"null\": {}}`".to_owned(),
        Expr::Const(c) => format!("a {} constant", describe(&const_type(c))),
        Expr::Ref(r) => format!("`{r}`"),
        Expr::Op { op, .. } => format!("`{op}`"),
        Expr::Record(_) => "a record".to_owned(),
        Expr::List(_) => "a list".to_owned(),
        Expr::Set(_) => "a set".to_owned(),
        Expr::Map(_) => "a map".to_owned(),
        Expr::Variant { tag, .. } => format!("variant `{tag}`"),
    }
}

// ---------------------------------------------------------------------------------------------
// The world

/// A node the manifest lists.
struct Listed<'a> {
    node: &'a Node,
    site: Site,
    origin: Option<&'a Origin>,
}

/// The checking context: the listed world and the diagnostics so far.
struct Cx<'a, 'o> {
    out: &'o mut Vec<Diagnostic>,
    cat: Catalog<'a>,
    listed: Vec<Listed<'a>>,
    by_name: HashMap<(NodeKind, &'a Name), usize>,
    /// Loaded nodes (listed or not), for hints.
    loaded: &'o HashMap<(NodeKind, &'a Name), usize>,
    grants: HashMap<&'a str, &'a CapGrant>,
    /// Schemas that are recursive or refer (transitively) to unknown or recursive schemas.
    unsound: HashSet<&'a Name>,
    triggers: HashMap<&'a Name, Vec<&'a Trigger>>,
}

impl<'a> Cx<'a, '_> {
    fn report(&mut self, site: &Site, rel: &str, rule: Check, message: String) {
        report(self.out, site, rel, rule, message);
    }

    fn node(&self, kind: NodeKind, name: &Name) -> Option<&'a Node> {
        self.by_name
            .get(&(kind, name))
            .map(|&i| self.listed[i].node)
    }

    /// Why a name that the manifest does not list might have been meant.
    fn hint(&self, kind: NodeKind, name: &Name) -> String {
        if self.loaded.contains_key(&(kind, name)) || builtin_of(kind, name).is_some() {
            return " (it is defined, but the manifest does not list it)".to_owned();
        }
        match NodeKind::ALL
            .iter()
            .find(|k| self.by_name.contains_key(&(**k, name)))
        {
            Some(k) => format!(" (there is a {k} of that name)"),
            None => String::new(),
        }
    }

    fn schema(&mut self, site: &Site, rel: &str, name: &Name) -> Option<&'a Type> {
        if self.unsound.contains(name) {
            // Reported where the schema is declared; its users are not checked against it.
            return None;
        }
        let t = self.cat.schema(name);
        if t.is_none() {
            let hint = self.hint(NodeKind::DefSchema, name);
            self.report(
                site,
                rel,
                Check::UnknownSchema,
                format!("unknown schema {name}{hint}"),
            );
        }
        t
    }

    /// Whether `t` can be used to read values: every schema it refers to exists and is sound
    /// (unsound schemas are dropped from the catalog).
    fn type_ok(&self, t: &Type) -> bool {
        t.refs().iter().all(|(_, n)| self.cat.schema(n).is_some())
    }

    fn module(&mut self, site: &Site, rel: &str, name: &Name) -> Option<&'a DefModule> {
        match self.node(NodeKind::DefModule, name) {
            Some(Node::DefModule(m)) => Some(m),
            _ => {
                let hint = self.hint(NodeKind::DefModule, name);
                self.report(
                    site,
                    rel,
                    Check::UnknownModule,
                    format!("unknown module {name}{hint}"),
                );
                None
            }
        }
    }

    fn reducer(
        &mut self,
        site: &Site,
        rel: &str,
        name: &Name,
    ) -> Option<(&'a DefModule, &'a ReducerAbi)> {
        let m = self.module(site, rel, name)?;
        match &m.abi {
            ModuleAbi::Reducer(r) => Some((m, r)),
            ModuleAbi::Pure(_) => {
                self.report(
                    site,
                    rel,
                    Check::NotAReducer,
                    format!("module {name} is a pure module, not a reducer"),
                );
                None
            }
        }
    }

    fn plan(&mut self, site: &Site, rel: &str, name: &Name, rule: Check) -> Option<&'a DefPlan> {
        match self.node(NodeKind::DefPlan, name) {
            Some(Node::DefPlan(p)) => Some(p),
            _ => {
                let hint = self.hint(NodeKind::DefPlan, name);
                self.report(site, rel, rule, format!("unknown plan {name}{hint}"));
                None
            }
        }
    }

    fn effect(&mut self, site: &Site, rel: &str, kind: &str) -> Option<&'a DefEffect> {
        let e = self.cat.effect(kind);
        if e.is_none() {
            self.report(
                site,
                rel,
                Check::UnknownEffect,
                format!("unknown effect kind `{kind}`: no effect the manifest lists declares it"),
            );
        }
        e
    }

    fn grant(&mut self, site: &Site, rel: &str, name: &str) -> Option<&'a CapGrant> {
        let g = self.grants.get(name).copied();
        if g.is_none() {
            self.report(
                site,
                rel,
                Check::UnknownGrant,
                format!("unknown cap grant `{name}`: `defaults.cap_grants` does not define it"),
            );
        }
        g
    }

    fn ident(&mut self, site: &Site, rel: &str, what: &'static str, s: &str) {
        if let Err(e) = check_ident(what, s) {
            self.report(site, rel, Check::BadIdent, e.to_string());
        }
    }

    fn dotted(&mut self, site: &Site, rel: &str, what: &'static str, s: &str) {
        if let Err(e) = check_dotted(what, s) {
            self.report(site, rel, Check::BadDotted, e.to_string());
        }
    }

    /// Checks a literal against its type (when the type is usable).
    fn literal(&mut self, site: &Site, rel: &str, j: &crate::codec::json::Json, t: &Type) {
        if !self.type_ok(t) {
            return;
        }
        if let Err(e) = value::from_json(j, t, &self.cat) {
            // JSON shaped like an expression that failed to parse as one was most likely
            // meant as an expression: its parse error says what is really wrong.
            let mut expr_errs = Vec::new();
            let looks_like_expr = matches!(j, crate::codec::json::Json::Object(m)
                if m.len() == 1 && EXPR_KEYS.contains(&m[0].0.as_str()))
                && crate::air::expr::parse_expr(j, "", &mut expr_errs).is_none();
            if looks_like_expr && !expr_errs.is_empty() {
                for x in expr_errs {
                    self.report(
                        site,
                        &format!("{rel}{}", x.pointer),
                        Check::LiteralType,
                        format!(
                            "not a valid expression ({}), and as a literal it does not fit {}",
                            x.message,
                            describe(t)
                        ),
                    );
                }
                return;
            }
            self.report(
                site,
                &format!("{rel}{}", e.path),
                Check::LiteralType,
                format!("the literal does not fit {}: {}", describe(t), e.message),
            );
        }
    }
}

/// The top-level keys of expression forms (constructors, operators, references, constants).
const EXPR_KEYS: [&str; 18] = [
    "record",
    "list",
    "set",
    "map",
    "variant",
    "op",
    "ref",
    "null",
    "bool",
    "int",
    "nat",
    "dec128",
    "text",
    "bytes_b64",
    "time_ns",
    "duration_ns",
    "hash",
    "uuid",
];

/// Whether the event schema `family` (a reducer's event type) can carry events of schema
/// `event`: it is that schema, an alias of it, or a variant with an alternative of it.
fn in_family(event: &Name, family: &Name, s: &Catalog<'_>) -> bool {
    if event == family {
        return true;
    }
    match s.schema(family) {
        Some(Type::Ref(r)) => r == event,
        Some(Type::Variant(tags)) => tags
            .values()
            .any(|t| matches!(t, Type::Ref(r) if r == event)),
        _ => false,
    }
}

/// The receipt event a reducer receives for a built-in micro-effect.
fn receipt_event(kind: &str) -> Option<&'static str> {
    match kind {
        "timer.set" => Some("sys/TimerFired@1"),
        "blob.put" => Some("sys/BlobPutResult@1"),
        "blob.get" => Some("sys/BlobGetResult@1"),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The run

#[allow(clippy::too_many_lines)]
fn run(nodes: &[(Node, Origin)], out: &mut Vec<Diagnostic>) -> Option<Validated> {
    let empty = Catalog::default();
    // Loaded nodes by kind and name; names reserved and restated built-ins.
    let mut loaded: HashMap<(NodeKind, &Name), usize> = HashMap::new();
    let mut manifests = Vec::new();
    for (i, (n, o)) in nodes.iter().enumerate() {
        let Some(name) = n.name() else {
            manifests.push(i);
            continue;
        };
        let site = Site::of(n, o);
        match loaded.entry((n.kind(), name)) {
            Entry::Occupied(e) => report(
                out,
                &site,
                "/name",
                Check::DuplicateName,
                format!(
                    "{} {name} is defined twice; the other definition is in {}",
                    n.kind(),
                    nodes[*e.get()].1
                ),
            ),
            Entry::Vacant(e) => {
                e.insert(i);
            }
        }
        if name.is_sys() {
            match builtin_of(n.kind(), name) {
                None => report(
                    out,
                    &site,
                    "/name",
                    Check::ReservedName,
                    format!(
                        "the `sys/` namespace is reserved for built-ins, and there is no \
                         built-in {} {name}",
                        n.kind()
                    ),
                ),
                Some(b) => {
                    let (x, y) = (canon::node_value(n, &empty), canon::node_value(b, &empty));
                    if x.is_err() || x != y {
                        report(
                            out,
                            &site,
                            "",
                            Check::BuiltinMismatch,
                            format!(
                                "this restates the built-in {} {name} differently; a world may \
                                 restate a built-in only identically (or just list it)",
                                n.kind()
                            ),
                        );
                    }
                }
            }
        }
    }

    let Some(&mi) = manifests.first() else {
        out.push(Diagnostic {
            file: nodes
                .first()
                .map(|(_, o)| o.file.clone())
                .unwrap_or_default(),
            pointer: String::new(),
            pos: None,
            node: None,
            rule: Check::ManifestCount,
            message: "there is no manifest: a world has exactly one".to_owned(),
        });
        return None;
    };
    for &extra in &manifests[1..] {
        let (n, o) = &nodes[extra];
        report(
            out,
            &Site::of(n, o),
            "",
            Check::ManifestCount,
            format!(
                "a second manifest: a world has exactly one (the first is in {})",
                nodes[mi].1
            ),
        );
    }
    let (Node::Manifest(manifest), morigin) = &nodes[mi] else {
        return None;
    };
    let msite = Site {
        file: morigin.file.clone(),
        base: morigin.pointer.clone(),
        label: "manifest".to_owned(),
        builtin: false,
    };

    // The listed world.
    let mut listed: Vec<Listed<'_>> = Vec::new();
    let mut by_name: HashMap<(NodeKind, &Name), usize> = HashMap::new();
    let mut used = vec![false; nodes.len()];
    let mut entries: Vec<(NodeKind, usize, Option<usize>)> = Vec::new();
    for kind in NodeKind::ALL {
        let (Some(refs), Some(key)) = (manifest.refs(kind), list_key(kind)) else {
            continue;
        };
        for (i, r) in refs.iter().enumerate() {
            let p = format!("/{key}/{i}");
            if by_name.contains_key(&(kind, &r.name)) {
                report(
                    out,
                    &msite,
                    &format!("{p}/name"),
                    Check::DuplicateName,
                    format!("`{key}` lists {} twice", r.name),
                );
                entries.push((kind, i, None));
                continue;
            }
            let found = if let Some(&li) = loaded.get(&(kind, &r.name)) {
                used[li] = true;
                let (n, o) = &nodes[li];
                Some((n, Site::of(n, o), Some(o)))
            } else {
                builtin_of(kind, &r.name).map(|b| {
                    let site = Site {
                        file: msite.file.clone(),
                        base: format!("{}{p}", msite.base),
                        label: label(b),
                        builtin: true,
                    };
                    (b, site, None)
                })
            };
            match found {
                Some((node, site, origin)) => {
                    by_name.insert((kind, &r.name), listed.len());
                    entries.push((kind, i, Some(listed.len())));
                    listed.push(Listed { node, site, origin });
                }
                None => {
                    let other = NodeKind::ALL.iter().find(|k| {
                        loaded.contains_key(&(**k, &r.name)) || builtin_of(**k, &r.name).is_some()
                    });
                    let hint = other
                        .map(|k| format!(" (there is a {k} of that name)"))
                        .unwrap_or_default();
                    report(
                        out,
                        &msite,
                        &format!("{p}/name"),
                        Check::UnknownNode,
                        format!(
                            "`{key}` lists {}, but no {kind} of that name is loaded or built in{hint}",
                            r.name
                        ),
                    );
                    entries.push((kind, i, None));
                }
            }
        }
    }
    for (i, (n, o)) in nodes.iter().enumerate() {
        if let Some(name) = n.name()
            && !used[i]
            && loaded.get(&(n.kind(), name)) == Some(&i)
        {
            let key = list_key(n.kind()).unwrap_or_default();
            report(
                out,
                &Site::of(n, o),
                "/name",
                Check::UnlistedNode,
                format!("{} {name} is not in the manifest's `{key}`", n.kind()),
            );
        }
    }

    let cat = Catalog::new(listed.iter().map(|l| l.node));
    let mut cx = Cx {
        out,
        cat,
        listed,
        by_name,
        loaded: &loaded,
        grants: HashMap::new(),
        unsound: HashSet::new(),
        triggers: HashMap::new(),
    };
    for t in &manifest.triggers {
        cx.triggers.entry(&t.plan).or_default().push(t);
    }
    for (i, g) in manifest.defaults.cap_grants.iter().enumerate() {
        match cx.grants.entry(&g.name) {
            Entry::Vacant(e) => {
                e.insert(g);
            }
            Entry::Occupied(_) => cx.report(
                &msite,
                &format!("/defaults/cap_grants/{i}/name"),
                Check::DuplicateGrant,
                format!("a second cap grant named `{}`", g.name),
            ),
        }
    }
    check_schemas(&mut cx);
    let mut kinds: HashMap<&str, &Name> = HashMap::new();
    for i in 0..cx.listed.len() {
        let node = cx.listed[i].node;
        let site = cx.listed[i].site.clone();
        match node {
            Node::DefSchema(_) | Node::Manifest(_) => {}
            Node::DefModule(m) => check_module(&mut cx, &site, m),
            Node::DefPlan(p) => check_plan(&mut cx, &site, p),
            Node::DefCap(c) => check_cap(&mut cx, &site, c),
            Node::DefPolicy(p) => check_policy(&mut cx, &site, p),
            Node::DefEffect(e) => {
                if let Some(first) = kinds.insert(&e.kind, &e.name) {
                    kinds.insert(&e.kind, first);
                    cx.report(
                        &site,
                        "/kind",
                        Check::DuplicateEffectKind,
                        format!(
                            "effect kind `{}` is already declared by {first}; each kind has one \
                             effect",
                            e.kind
                        ),
                    );
                }
                check_effect(&mut cx, &site, e);
            }
            Node::DefSecret(s) => {
                if s.binding_id.trim().is_empty() {
                    cx.report(
                        &site,
                        "/binding_id",
                        Check::BadSecret,
                        "`binding_id` is empty".to_owned(),
                    );
                }
                for (j, c) in s.allowed_caps.iter().flatten().enumerate() {
                    cx.grant(&site, &format!("/allowed_caps/{j}"), c);
                }
                for (j, p) in s.allowed_plans.iter().flatten().enumerate() {
                    cx.plan(&site, &format!("/allowed_plans/{j}"), p, Check::UnknownPlan);
                }
            }
        }
    }
    check_manifest(&mut cx, &msite, manifest);

    // Ids and hashes.
    let mut ids: Vec<Option<(Value, ObjectId)>> = Vec::with_capacity(cx.listed.len());
    for l in &cx.listed {
        match canon::node_value_and_id(l.node, &cx.cat) {
            Ok(x) => ids.push(Some(x)),
            Err(e) => {
                // Only an inconsistency if nothing else explains it.
                if cx.out.is_empty() {
                    report(
                        cx.out,
                        &l.site,
                        &e.pointer,
                        Check::Canonical,
                        format!("cannot encode the node canonically: {}", e.message),
                    );
                }
                ids.push(None);
            }
        }
    }
    let mut filled = manifest.clone();
    for (kind, i, li) in &entries {
        let Some(li) = li else { continue };
        let Some((_, id)) = &ids[*li] else { continue };
        let key = list_key(*kind).unwrap_or_default();
        let list = match kind {
            NodeKind::DefSchema => &mut filled.schemas,
            NodeKind::DefModule => &mut filled.modules,
            NodeKind::DefPlan => &mut filled.plans,
            NodeKind::DefCap => &mut filled.caps,
            NodeKind::DefPolicy => &mut filled.policies,
            NodeKind::DefEffect => &mut filled.effects,
            NodeKind::DefSecret => &mut filled.secrets,
            NodeKind::Manifest => continue,
        };
        let r: &mut NamedRef = &mut list[*i];
        if let Some(given) = r.known_hash()
            && given != *id
        {
            cx.report(
                &msite,
                &format!("/{key}/{i}/hash"),
                Check::HashMismatch,
                format!("{} has id {id}, not {given}", r.name),
            );
        }
        r.hash = Some(*id);
    }
    if !cx.out.is_empty() {
        return None;
    }
    let manifest_value = match canon::node_value(&Node::Manifest(filled.clone()), &cx.cat) {
        Ok(v) => v,
        Err(e) => {
            cx.report(
                &msite,
                &e.pointer,
                Check::Canonical,
                format!("cannot encode the manifest canonically: {}", e.message),
            );
            return None;
        }
    };
    let manifest_id = canon::node_id(&manifest_value);
    let mut index = HashMap::new();
    let mut valid = Vec::with_capacity(cx.listed.len());
    for (l, x) in cx.listed.iter().zip(ids) {
        let (value, id) = x?;
        if let Some(name) = l.node.name() {
            index.insert((l.node.kind(), name.clone()), valid.len());
        }
        valid.push(ValidNode {
            node: l.node.clone(),
            origin: l.origin.cloned(),
            value,
            id,
        });
    }
    Some(Validated {
        manifest: filled,
        manifest_origin: morigin.clone(),
        manifest_value,
        manifest_id,
        nodes: valid,
        index,
    })
}

// ---------------------------------------------------------------------------------------------
// Schemas, modules, effects, caps, policies

fn check_schemas(cx: &mut Cx<'_, '_>) {
    let mut set: BTreeMap<Name, Type> = BTreeMap::new();
    let mut sites: HashMap<&Name, Site> = HashMap::new();
    for l in &cx.listed {
        if let Node::DefSchema(s) = l.node {
            set.insert(s.name.clone(), s.ty.clone());
            sites.insert(&s.name, l.site.clone());
        }
    }
    let mut bad: HashSet<Name> = HashSet::new();
    for p in check_recursion(&set) {
        match p {
            SchemaProblem::Dangling {
                schema,
                pointer,
                target,
            } => {
                let hint = cx.hint(NodeKind::DefSchema, &target);
                if let Some(site) = sites.get(&schema) {
                    report(
                        cx.out,
                        site,
                        &format!("/type{pointer}"),
                        Check::UnknownSchema,
                        format!("unknown schema {target}{hint}"),
                    );
                }
                bad.insert(schema);
            }
            SchemaProblem::Recursive { schema, cycle } => {
                if let Some(site) = sites.get(&schema) {
                    let path: Vec<&str> = cycle.iter().map(Name::as_str).collect();
                    report(
                        cx.out,
                        site,
                        "/type",
                        Check::RecursiveType,
                        format!(
                            "schema {schema} refers to itself ({}); AIR types are not recursive",
                            path.join(" → ")
                        ),
                    );
                }
                bad.insert(schema);
            }
        }
    }
    // Everything that reaches a bad schema is unsound too.
    let mut users: HashMap<&Name, Vec<&Name>> = HashMap::new();
    for (name, ty) in &set {
        for (_, target) in ty.refs() {
            users.entry(target).or_default().push(name);
        }
    }
    let mut unsound: HashSet<&Name> = HashSet::new();
    let mut stack: Vec<&Name> = set.keys().filter(|n| bad.contains(*n)).collect();
    while let Some(n) = stack.pop() {
        if unsound.insert(n) {
            stack.extend(users.get(n).into_iter().flatten().copied());
        }
    }
    let unsound: HashSet<Name> = unsound.into_iter().cloned().collect();
    for l in &cx.listed {
        if let Node::DefSchema(s) = l.node
            && unsound.contains(&s.name)
        {
            cx.unsound.insert(&s.name);
            cx.cat.forget_schema(&s.name);
        }
    }
}

fn check_module(cx: &mut Cx<'_, '_>, site: &Site, m: &DefModule) {
    if let Some(k) = &m.key_schema {
        cx.schema(site, "/key_schema", k);
    }
    match &m.abi {
        ModuleAbi::Reducer(r) => {
            cx.schema(site, "/abi/reducer/state", &r.state);
            cx.schema(site, "/abi/reducer/event", &r.event);
            if let Some(a) = &r.annotations {
                cx.schema(site, "/abi/reducer/annotations", a);
            }
            for (i, kind) in r.effects_emitted.iter().enumerate() {
                let p = format!("/abi/reducer/effects_emitted/{i}");
                cx.dotted(site, &p, "effect kind", kind);
                if let Some(e) = cx.effect(site, &p, kind)
                    && e.origin_scope == OriginScope::Plan
                {
                    cx.report(
                        site,
                        &p,
                        Check::OriginScope,
                        format!(
                            "effect `{kind}` ({}) may be emitted only by plans, not by reducers",
                            e.name
                        ),
                    );
                }
                if let Some(receipt) = receipt_event(kind)
                    && let Ok(receipt) = Name::new(receipt)
                    && cx.cat.schema(&r.event).is_some()
                    && !in_family(&receipt, &r.event, &cx.cat)
                {
                    cx.report(
                        site,
                        &p,
                        Check::ReceiptEvent,
                        format!(
                            "the reducer emits `{kind}`, whose receipt comes back as event \
                             {receipt}, but its event schema {} cannot carry it (make it {receipt} \
                             or a variant with an alternative of it)",
                            r.event
                        ),
                    );
                }
            }
            for (slot, cap_type) in &r.cap_slots {
                let p = format!("/abi/reducer/cap_slots/{}", pointer_escape(slot));
                cx.ident(site, &p, "cap slot name", slot);
                cx.dotted(site, &p, "cap type", cap_type);
            }
        }
        ModuleAbi::Pure(p) => {
            cx.schema(site, "/abi/pure/input", &p.input);
            cx.schema(site, "/abi/pure/output", &p.output);
        }
    }
}

fn check_effect(cx: &mut Cx<'_, '_>, site: &Site, e: &DefEffect) {
    cx.dotted(site, "/kind", "effect kind", &e.kind);
    cx.dotted(site, "/cap_type", "cap type", &e.cap_type);
    cx.schema(site, "/params_schema", &e.params_schema);
    cx.schema(site, "/receipt_schema", &e.receipt_schema);
}

fn check_cap(cx: &mut Cx<'_, '_>, site: &Site, c: &DefCap) {
    cx.dotted(site, "/cap_type", "cap type", &c.cap_type);
    for (p, n) in c.schema.refs() {
        cx.schema(site, &format!("/schema{p}"), n);
    }
}

fn check_policy(cx: &mut Cx<'_, '_>, site: &Site, p: &DefPolicy) {
    for (i, r) in p.rules.iter().enumerate() {
        let w = format!("/rules/{i}/when");
        if let Some(k) = &r.when.effect_kind {
            cx.effect(site, &format!("{w}/effect_kind"), k);
        }
        if let Some(c) = &r.when.cap_name {
            cx.grant(site, &format!("{w}/cap_name"), c);
        }
        if let Some(n) = &r.when.origin_name {
            let kinds: &[NodeKind] = match r.when.origin_kind {
                Some(OriginKind::Plan) => &[NodeKind::DefPlan],
                Some(OriginKind::Reducer) => &[NodeKind::DefModule],
                None => &[NodeKind::DefPlan, NodeKind::DefModule],
            };
            let found = kinds.iter().any(|k| match cx.node(*k, n) {
                Some(Node::DefModule(m)) => matches!(m.abi, ModuleAbi::Reducer(_)),
                Some(_) => true,
                None => false,
            });
            if !found {
                let what = match r.when.origin_kind {
                    Some(OriginKind::Plan) => "plan",
                    Some(OriginKind::Reducer) => "reducer",
                    None => "plan or reducer",
                };
                cx.report(
                    site,
                    &format!("{w}/origin_name"),
                    Check::UnknownOrigin,
                    format!("no {what} named {n} is listed in the manifest"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The manifest

#[allow(clippy::too_many_lines)]
fn check_manifest(cx: &mut Cx<'_, '_>, site: &Site, m: &Manifest) {
    if let Some(p) = &m.defaults.policy
        && !matches!(cx.node(NodeKind::DefPolicy, p), Some(Node::DefPolicy(_)))
    {
        let hint = cx.hint(NodeKind::DefPolicy, p);
        cx.report(
            site,
            "/defaults/policy",
            Check::UnknownPolicy,
            format!("unknown policy {p}{hint}"),
        );
    }
    for (i, g) in m.defaults.cap_grants.iter().enumerate() {
        let p = format!("/defaults/cap_grants/{i}");
        cx.ident(site, &format!("{p}/name"), "cap grant name", &g.name);
        match cx.node(NodeKind::DefCap, &g.cap) {
            Some(Node::DefCap(c)) => cx.literal(site, &format!("{p}/params"), &g.params, &c.schema),
            _ => {
                let hint = cx.hint(NodeKind::DefCap, &g.cap);
                cx.report(
                    site,
                    &format!("{p}/cap"),
                    Check::UnknownCap,
                    format!("unknown capability {}{hint}", g.cap),
                );
            }
        }
    }
    for b in &m.module_bindings {
        let p = format!("/module_bindings/{}", pointer_escape(b.module.as_str()));
        let Some(module) = cx.module(site, &p, &b.module) else {
            continue;
        };
        let slots: &[(String, String)] = match &module.abi {
            ModuleAbi::Reducer(r) => &r.cap_slots,
            ModuleAbi::Pure(_) => &[],
        };
        for (slot, grant) in &b.slots {
            let sp = format!("{p}/slots/{}", pointer_escape(slot));
            let Some((_, slot_type)) = slots.iter().find(|(s, _)| s == slot) else {
                cx.report(
                    site,
                    &sp,
                    Check::UnknownSlot,
                    format!("module {} declares no cap slot `{slot}`", b.module),
                );
                continue;
            };
            if let Some(g) = cx.grant(site, &sp, grant)
                && let Some(c) = cx.cat.cap(&g.cap)
                && c.cap_type != *slot_type
            {
                cx.report(
                    site,
                    &sp,
                    Check::CapTypeMismatch,
                    format!(
                        "slot `{slot}` takes a `{slot_type}` grant, but `{grant}` grants {} of \
                         type `{}`",
                        g.cap, c.cap_type
                    ),
                );
            }
        }
    }
    for (i, r) in m.routing.events.iter().enumerate() {
        let p = format!("/routing/events/{i}");
        let ev = cx
            .schema(site, &format!("{p}/event"), &r.event)
            .map(|_| &r.event);
        let red = cx.reducer(site, &format!("{p}/reducer"), &r.reducer);
        let (Some(ev), Some((module, abi))) = (ev, red) else {
            continue;
        };
        if cx.cat.schema(&abi.event).is_some() && !in_family(ev, &abi.event, &cx.cat) {
            cx.report(
                site,
                &format!("{p}/event"),
                Check::RouteEvent,
                format!(
                    "reducer {} takes events of {}, and {ev} is neither that schema nor one of \
                     its alternatives",
                    r.reducer, abi.event
                ),
            );
        }
        match (&module.key_schema, &r.key_field) {
            (Some(k), None) => cx.report(
                site,
                &p,
                Check::RouteKey,
                format!(
                    "reducer {} is keyed (key schema {k}): its route needs `key_field`",
                    r.reducer
                ),
            ),
            (None, Some(_)) => cx.report(
                site,
                &format!("{p}/key_field"),
                Check::RouteKey,
                format!(
                    "reducer {} has no `key_schema`, so its route takes no `key_field`",
                    r.reducer
                ),
            ),
            (Some(k), Some(f)) => {
                let Some(kt) = cx.cat.schema(k) else { continue };
                if !cx.type_ok(&Type::Ref(ev.clone())) || !cx.type_ok(kt) {
                    continue;
                }
                let path: Vec<&str> = f.split('.').collect();
                match field_type(&Type::Ref(ev.clone()), &path, &cx.cat, 0) {
                    Ok(ft) if !same(&ft, &Type::Ref(k.clone()), &cx.cat, 0) => cx.report(
                        site,
                        &format!("{p}/key_field"),
                        Check::KeyField,
                        format!(
                            "`{f}` of {ev} is {}, but the key schema {k} of {} is {}",
                            describe(&ft),
                            r.reducer,
                            describe(kt)
                        ),
                    ),
                    Ok(_) => {}
                    Err(why) => cx.report(
                        site,
                        &format!("{p}/key_field"),
                        Check::KeyField,
                        format!("`key_field` `{f}` does not name a field of {ev}: {why}"),
                    ),
                }
            }
            (None, None) => {}
        }
    }
    for (i, r) in m.routing.inboxes.iter().enumerate() {
        cx.reducer(site, &format!("/routing/inboxes/{i}/reducer"), &r.reducer);
    }
    for (i, t) in m.triggers.iter().enumerate() {
        let p = format!("/triggers/{i}");
        let ev = cx.schema(site, &format!("{p}/event"), &t.event);
        let plan = cx.plan(site, &format!("{p}/plan"), &t.plan, Check::UnknownPlan);
        if let (Some(_), Some(plan)) = (ev, plan)
            && cx.cat.schema(&plan.input).is_some()
            && !same(
                &Type::Ref(t.event.clone()),
                &Type::Ref(plan.input.clone()),
                &cx.cat,
                0,
            )
        {
            cx.report(
                site,
                &format!("{p}/event"),
                Check::TriggerInput,
                format!(
                    "plan {} takes input {}, but the trigger starts it with {}",
                    t.plan, plan.input, t.event
                ),
            );
        }
        if let (Some(_), Some(c)) = (ev, &t.correlate_by)
            && cx.type_ok(&Type::Ref(t.event.clone()))
        {
            let path: Vec<&str> = c.split('.').collect();
            if let Err(why) = field_type(&Type::Ref(t.event.clone()), &path, &cx.cat, 0) {
                cx.report(
                    site,
                    &format!("{p}/correlate_by"),
                    Check::CorrelateBy,
                    format!(
                        "`correlate_by` `{c}` does not name a field of {}: {why}",
                        t.event
                    ),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plans

/// Where an expression is evaluated.
#[derive(Clone, Copy)]
enum At {
    /// In step `i`: sees what the step's ancestors bind.
    Step(usize),
    /// On an edge into step `i`: sees what the step's ancestors bind.
    Guard(usize),
    /// Anywhere (invariants): sees every binding.
    Anywhere,
}

#[derive(Clone, Copy)]
struct Scope<'t> {
    at: At,
    /// The awaited event's type, inside `await_event.where`.
    event: Option<&'t Type>,
}

struct PlanCx<'c, 'a, 'o> {
    cx: &'c mut Cx<'a, 'o>,
    plan: &'a DefPlan,
    site: &'c Site,
    ids: HashMap<&'a str, usize>,
    /// `anc[i][j]`: step `j` is a strict ancestor of step `i`. `None` if the plan is cyclic.
    anc: Option<Vec<Vec<bool>>>,
    locals: HashMap<&'a str, &'a Name>,
    /// The steps that bind each variable (other than locals).
    bindings: HashMap<&'a str, Vec<usize>>,
    /// The type of what each step binds, once known.
    bind_ty: Vec<Option<Type>>,
    /// The type of each step's output (`@step:id`), once known.
    out_ty: Vec<Option<Type>>,
    /// Effect handles: the `emit_effect` steps binding each, with their effect kinds.
    handles: HashMap<&'a str, Vec<(usize, &'a str)>>,
    /// `Some` if a trigger starts the plan with `correlate_by`: the correlation id's type.
    correlation: Option<Option<Type>>,
    /// The `correlate_by` paths into the input.
    corr_paths: Vec<Vec<&'a str>>,
}

fn check_plan<'a>(cx: &mut Cx<'a, '_>, site: &Site, plan: &'a DefPlan) {
    cx.schema(site, "/input", &plan.input);
    if let Some(o) = &plan.output {
        cx.schema(site, "/output", o);
    }
    let mut locals = HashMap::new();
    for (v, t) in &plan.locals {
        let p = format!("/locals/{}", pointer_escape(v));
        cx.ident(site, &p, "variable name", v);
        cx.schema(site, &p, t);
        locals.insert(v.as_str(), t);
    }
    // Steps and edges.
    let n = plan.steps.len();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        cx.ident(site, &format!("/steps/{i}/id"), "step id", &s.id);
        if let Some(first) = ids.insert(&s.id, i) {
            ids.insert(&s.id, first);
            cx.report(
                site,
                &format!("/steps/{i}/id"),
                Check::DuplicateStep,
                format!("step id `{}` is already used by step {first}", s.id),
            );
        }
    }
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut edge_of: HashMap<(usize, usize), usize> = HashMap::new();
    for (j, e) in plan.edges.iter().enumerate() {
        let mut end = |id: &str, key: &str| {
            let i = ids.get(id).copied();
            if i.is_none() {
                cx.report(
                    site,
                    &format!("/edges/{j}/{key}"),
                    Check::UnknownStep,
                    format!("the plan has no step `{id}`"),
                );
            }
            i
        };
        let (Some(a), Some(b)) = (end(&e.from, "from"), end(&e.to, "to")) else {
            continue;
        };
        if let Some(first) = seen.insert((a, b), j) {
            seen.insert((a, b), first);
            cx.report(
                site,
                &format!("/edges/{j}"),
                Check::DuplicateEdge,
                format!(
                    "edge {} → {} is already declared (edge {first})",
                    e.from, e.to
                ),
            );
            continue;
        }
        edge_of.insert((a, b), j);
        preds[b].push(a);
        succs[a].push(b);
    }
    // Topological order (Kahn), declared order among ready steps.
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &succs[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.insert(j);
            }
        }
    }
    let anc = if order.len() == n {
        let mut anc = vec![vec![false; n]; n];
        for &i in &order {
            let mut row = vec![false; n];
            for &p in &preds[i] {
                row[p] = true;
                for (k, x) in anc[p].iter().enumerate() {
                    if *x {
                        row[k] = true;
                    }
                }
            }
            anc[i] = row;
        }
        Some(anc)
    } else {
        // Walk back from a step left over until a step repeats: that is a cycle.
        let left: Vec<bool> = (0..n).map(|i| indeg[i] > 0).collect();
        let start = left.iter().position(|x| *x).unwrap_or(0);
        let mut path = vec![start];
        let mut pos: HashMap<usize, usize> = HashMap::from([(start, 0)]);
        let mut cur = start;
        let cycle = loop {
            let Some(&p) = preds[cur].iter().find(|&&p| left[p]) else {
                break vec![cur];
            };
            if let Some(&k) = pos.get(&p) {
                let mut c: Vec<usize> = path[k..].to_vec();
                c.push(p);
                c.reverse();
                break c;
            }
            pos.insert(p, path.len());
            path.push(p);
            cur = p;
        };
        let names: Vec<&str> = cycle.iter().map(|&i| plan.steps[i].id.as_str()).collect();
        let edge = cycle
            .windows(2)
            .find_map(|w| edge_of.get(&(w[0], w[1])).copied())
            .unwrap_or(0);
        cx.report(
            site,
            &format!("/edges/{edge}"),
            Check::Cycle,
            format!(
                "the edges form a cycle: {}; a plan is a DAG",
                names.join(" → ")
            ),
        );
        order = (0..n).collect();
        None
    };
    // Declared caps and effects.
    let (caps, kinds) = canon::derived_caps_and_effects(plan);
    for (given, derived, key, rule) in [
        (
            &plan.required_caps,
            &caps,
            "required_caps",
            Check::RequiredCaps,
        ),
        (
            &plan.allowed_effects,
            &kinds,
            "allowed_effects",
            Check::AllowedEffects,
        ),
    ] {
        if let Some(given) = given {
            let mut g: Vec<&str> = given.iter().map(String::as_str).collect();
            g.sort_unstable();
            g.dedup();
            if g != *derived {
                cx.report(
                    site,
                    &format!("/{key}"),
                    rule,
                    format!(
                        "`{key}` is [{}], but the steps use [{}]; omit it or make it equal",
                        g.join(", "),
                        derived.join(", ")
                    ),
                );
            }
        }
    }
    // Bindings.
    let mut bindings: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut handles: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let (var, key) = match &s.op {
            StepOp::EmitEffect {
                bind_effect_id_as,
                kind,
                ..
            } => {
                let h = handles.entry(bind_effect_id_as).or_default();
                if let Some((first, _)) = h.first() {
                    cx.report(
                        site,
                        &format!("/steps/{i}/bind/effect_id_as"),
                        Check::DuplicateHandle,
                        format!(
                            "handle `{bind_effect_id_as}` is already bound by step `{}`",
                            plan.steps[*first].id
                        ),
                    );
                }
                h.push((i, kind.as_str()));
                (bind_effect_id_as, "effect_id_as")
            }
            StepOp::AwaitReceipt { bind_as, .. }
            | StepOp::AwaitEvent { bind_as, .. }
            | StepOp::Assign { bind_as, .. } => (bind_as, "as"),
            StepOp::RaiseEvent { .. } | StepOp::End { .. } => continue,
        };
        cx.ident(
            site,
            &format!("/steps/{i}/bind/{key}"),
            "variable name",
            var,
        );
        if !locals.contains_key(var.as_str()) {
            bindings.entry(var).or_default().push(i);
        }
    }
    // Correlation.
    let mut correlation = None;
    let mut corr_paths = Vec::new();
    if let Some(ts) = cx.triggers.get(&plan.name).cloned() {
        for t in ts {
            let Some(c) = &t.correlate_by else { continue };
            let path: Vec<&str> = c.split('.').collect();
            let ty = if cx.type_ok(&Type::Ref(t.event.clone())) {
                field_type(&Type::Ref(t.event.clone()), &path, &cx.cat, 0).ok()
            } else {
                None
            };
            correlation = Some(match (correlation, ty) {
                (None, t) => t,
                (Some(Some(a)), Some(b)) if same(&a, &b, &cx.cat, 0) => Some(a),
                _ => None,
            });
            corr_paths.push(path);
        }
    }
    let mut pc = PlanCx {
        cx,
        plan,
        site,
        ids,
        anc,
        locals,
        bindings,
        bind_ty: vec![None; n],
        out_ty: vec![None; n],
        handles,
        correlation,
        corr_paths,
    };
    for i in order {
        pc.step(i);
    }
    for (j, e) in plan.edges.iter().enumerate() {
        if let (Some(w), Some(&to)) = (&e.when, pc.ids.get(e.to.as_str())) {
            let sc = Scope {
                at: At::Guard(to),
                event: None,
            };
            pc.check(w, &format!("/edges/{j}/when"), &Type::Bool, sc);
        }
    }
    for (j, inv) in plan.invariants.iter().enumerate() {
        let sc = Scope {
            at: At::Anywhere,
            event: None,
        };
        pc.check(inv, &format!("/invariants/{j}"), &Type::Bool, sc);
    }
}

impl<'a> PlanCx<'_, 'a, '_> {
    fn report(&mut self, rel: &str, rule: Check, message: String) {
        report(self.cx.out, self.site, rel, rule, message);
    }

    fn visible(&self, step: usize, at: At) -> bool {
        match at {
            At::Step(s) | At::Guard(s) => self.anc.as_ref().is_none_or(|a| a[s][step]),
            At::Anywhere => true,
        }
    }

    fn id(&self, i: usize) -> &'a str {
        &self.plan.steps[i].id
    }

    #[allow(clippy::too_many_lines)]
    fn step(&mut self, i: usize) {
        let p = format!("/steps/{i}");
        let sc = Scope {
            at: At::Step(i),
            event: None,
        };
        let step = &self.plan.steps[i];
        let mut bound: Option<Type> = None;
        match &step.op {
            StepOp::RaiseEvent {
                reducer,
                event,
                key,
            } => {
                let site = self.site.clone();
                if let Some((m, abi)) = self.cx.reducer(&site, &format!("{p}/reducer"), reducer) {
                    if self.cx.cat.schema(&abi.event).is_some() {
                        self.slot(
                            event,
                            &format!("{p}/event"),
                            &Type::Ref(abi.event.clone()),
                            sc,
                        );
                    } else {
                        self.walk_slot(event, &format!("{p}/event"), sc);
                    }
                    match (&m.key_schema, key) {
                        (Some(k), Some(x)) => {
                            self.check(x, &format!("{p}/key"), &Type::Ref(k.clone()), sc)
                        }
                        (Some(k), None) => self.report(
                            &p,
                            Check::RaiseKey,
                            format!(
                                "reducer {reducer} is keyed (key schema {k}): `raise_event` needs \
                                 a `key`"
                            ),
                        ),
                        (None, Some(x)) => {
                            self.infer(x, &format!("{p}/key"), sc);
                            self.report(
                                &format!("{p}/key"),
                                Check::RaiseKey,
                                format!(
                                    "reducer {reducer} has no `key_schema`, so it takes no `key`"
                                ),
                            );
                        }
                        (None, None) => {}
                    }
                } else {
                    self.walk_slot(event, &format!("{p}/event"), sc);
                    if let Some(x) = key {
                        self.infer(x, &format!("{p}/key"), sc);
                    }
                }
            }
            StepOp::EmitEffect {
                kind, params, cap, ..
            } => {
                let site = self.site.clone();
                self.cx
                    .dotted(&site, &format!("{p}/kind"), "effect kind", kind);
                self.cx
                    .ident(&site, &format!("{p}/cap"), "cap grant name", cap);
                let effect = self.cx.effect(&site, &format!("{p}/kind"), kind);
                match effect {
                    Some(e) => {
                        if e.origin_scope == OriginScope::Reducer {
                            self.report(
                                &format!("{p}/kind"),
                                Check::OriginScope,
                                format!(
                                    "effect `{kind}` ({}) may be emitted only by reducers, not \
                                     by plans",
                                    e.name
                                ),
                            );
                        }
                        if self.cx.cat.schema(&e.params_schema).is_some() {
                            self.slot(
                                params,
                                &format!("{p}/params"),
                                &Type::Ref(e.params_schema.clone()),
                                sc,
                            );
                        } else {
                            self.walk_slot(params, &format!("{p}/params"), sc);
                        }
                    }
                    None => self.walk_slot(params, &format!("{p}/params"), sc),
                }
                if let Some(g) = self.cx.grant(&site, &format!("{p}/cap"), cap)
                    && let (Some(c), Some(e)) = (self.cx.cat.cap(&g.cap), effect)
                    && c.cap_type != e.cap_type
                {
                    self.report(
                        &format!("{p}/cap"),
                        Check::CapTypeMismatch,
                        format!(
                            "effect `{kind}` needs a `{}` grant, but `{cap}` grants {} of type `{}`",
                            e.cap_type, g.cap, c.cap_type
                        ),
                    );
                }
            }
            StepOp::AwaitReceipt { receipt_for, .. } => {
                bound = self.await_receipt(receipt_for, &format!("{p}/for"), i);
            }
            StepOp::AwaitEvent { event, filter, .. } => {
                let site = self.site.clone();
                let et = self
                    .cx
                    .schema(&site, &format!("{p}/event"), event)
                    .map(|_| Type::Ref(event.clone()));
                match filter {
                    Some(f) => {
                        let fsc = Scope {
                            at: At::Step(i),
                            event: Some(et.as_ref().unwrap_or(&Type::Unit)),
                        };
                        if et.is_some() {
                            self.check(f, &format!("{p}/where"), &Type::Bool, fsc);
                        } else {
                            self.infer(f, &format!("{p}/where"), fsc);
                        }
                        if self.correlation.is_some() && !self.uses_correlation(f) {
                            self.report(
                                &format!("{p}/where"),
                                Check::CorrelationWhere,
                                "the plan is started with `correlate_by`, so `where` must \
                                 compare against the correlation key (`@var:correlation_id` or \
                                 the correlated input field)"
                                    .to_owned(),
                            );
                        }
                    }
                    None if self.correlation.is_some() => self.report(
                        &p,
                        Check::CorrelationWhere,
                        "the plan is started with `correlate_by`, so `await_event` needs a \
                         `where` that matches the correlation key (events are broadcast to \
                         every waiting run)"
                            .to_owned(),
                    ),
                    None => {}
                }
                bound = et;
            }
            StepOp::Assign { expr, bind_as } => {
                let rel = format!("{p}/expr");
                match self.locals.get(bind_as.as_str()).copied() {
                    Some(t) if self.cx.cat.schema(t).is_some() => {
                        let t = Type::Ref(t.clone());
                        self.slot(expr, &rel, &t, sc);
                        bound = Some(t);
                    }
                    Some(_) => self.walk_slot(expr, &rel, sc),
                    None => match expr {
                        ExprOrValue::Expr(x) => bound = self.infer(x, &rel, sc),
                        ExprOrValue::Value(_) => self.report(
                            &rel,
                            Check::UntypedLiteral,
                            format!(
                                "a literal needs a type: `{bind_as}` is not a declared local, so \
                                 declare it in `locals` or write the value as an expression \
                                 (tagged literal)"
                            ),
                        ),
                    },
                }
            }
            StepOp::End { result } => match (&self.plan.output, result) {
                (Some(o), Some(r)) => {
                    if self.cx.cat.schema(o).is_some() {
                        self.slot(r, &format!("{p}/result"), &Type::Ref(o.clone()), sc);
                    } else {
                        self.walk_slot(r, &format!("{p}/result"), sc);
                    }
                }
                (Some(o), None) => self.report(
                    &p,
                    Check::EndResult,
                    format!("the plan declares output {o}, so `end` needs a `result`"),
                ),
                (None, Some(r)) => {
                    self.walk_slot(r, &format!("{p}/result"), sc);
                    self.report(
                        &format!("{p}/result"),
                        Check::EndResult,
                        "the plan declares no `output`, so `end` takes no `result`".to_owned(),
                    );
                }
                (None, None) => {}
            },
        }
        // What the step binds, checked against a declared local.
        if let StepOp::AwaitReceipt { bind_as, .. } | StepOp::AwaitEvent { bind_as, .. } = &step.op
            && let Some(local) = self.locals.get(bind_as.as_str()).copied()
            && let Some(b) = &bound
            && !assignable(b, &Type::Ref(local.clone()), &self.cx.cat, 0)
        {
            self.report(
                &format!("{p}/bind/as"),
                Check::TypeMismatch,
                format!(
                    "local `{bind_as}` is {local}, but the step binds {}",
                    describe(b)
                ),
            );
        }
        self.out_ty[i] = bound.clone();
        self.bind_ty[i] = bound;
    }

    /// The `await_receipt.for` handle; returns the receipt type.
    fn await_receipt(&mut self, e: &Expr, p: &str, i: usize) -> Option<Type> {
        let h = match e {
            Expr::Ref(Ref {
                root: RefRoot::Var(h),
                path,
            }) if path.is_empty() => h.as_str(),
            _ => {
                self.report(
                    p,
                    Check::AwaitReceiptFor,
                    format!(
                        "`for` must be `@var:<handle>`, the handle an earlier `emit_effect` binds; \
                         found {}",
                        expr_form(e)
                    ),
                );
                return None;
            }
        };
        let Some(emits) = self.handles.get(h).cloned() else {
            self.report(
                p,
                Check::AwaitReceiptFor,
                format!("no `emit_effect` step binds handle `{h}` (`bind.effect_id_as`)"),
            );
            return None;
        };
        let visible: Vec<(usize, &str)> = emits
            .iter()
            .copied()
            .filter(|(s, _)| self.visible(*s, At::Step(i)))
            .collect();
        let Some(&(_, kind)) = visible.first() else {
            let by: Vec<&str> = emits.iter().map(|(s, _)| self.id(*s)).collect();
            self.report(
                p,
                Check::AwaitReceiptFor,
                format!(
                    "handle `{h}` is bound by step `{}`, which is not an ancestor of this step",
                    by.join("`, `")
                ),
            );
            return None;
        };
        let e = self.cx.cat.effect(kind)?;
        self.cx
            .cat
            .schema(&e.receipt_schema)
            .map(|_| Type::Ref(e.receipt_schema.clone()))
    }

    fn uses_correlation(&self, f: &Expr) -> bool {
        f.refs().iter().any(|r| match &r.root {
            RefRoot::Var(v) => v == "correlation_id" && r.path.is_empty(),
            RefRoot::PlanInput => self
                .corr_paths
                .iter()
                .any(|c| c.len() == r.path.len() && c.iter().zip(&r.path).all(|(a, b)| a == b)),
            _ => false,
        })
    }

    /// Checks a slot against its type: an expression by type, a literal by reading it.
    fn slot(&mut self, slot: &ExprOrValue, p: &str, t: &Type, sc: Scope<'_>) {
        match slot {
            ExprOrValue::Expr(e) => self.check(e, p, t, sc),
            ExprOrValue::Value(j) => {
                let site = self.site.clone();
                self.cx.literal(&site, p, j, t);
            }
        }
    }

    /// Walks a slot whose type is unknown, for its references.
    fn walk_slot(&mut self, slot: &ExprOrValue, p: &str, sc: Scope<'_>) {
        if let ExprOrValue::Expr(e) = slot {
            self.infer(e, p, sc);
        }
    }

    fn mismatch(&mut self, p: &str, message: String) {
        self.report(p, Check::TypeMismatch, message);
    }

    /// Checks `e` against the expected type `t`.
    fn check(&mut self, e: &Expr, p: &str, t: &Type, sc: Scope<'_>) {
        let cat = &self.cx.cat;
        let Some(rt) = res(t, cat).cloned() else {
            self.infer(e, p, sc);
            return;
        };
        match (e, &rt) {
            (Expr::Const(Const::Null), Type::Option(_) | Type::Unit) => {}
            (Expr::Ref(_) | Expr::Op { .. }, _) => {
                if let Some(it) = self.infer(e, p, sc)
                    && !assignable(&it, t, &self.cx.cat, 0)
                {
                    self.mismatch(
                        p,
                        format!(
                            "expected {}, found {} of type {}",
                            describe(t),
                            expr_form(e),
                            describe(&it)
                        ),
                    );
                }
            }
            // AgentOS v1 also writes an option as the variant `None` / `Some {value}`: accept
            // it where the option does not hold a variant of its own.
            (Expr::Variant { tag, value }, Type::Option(inner))
                if tag == "None"
                    && matches!(value.as_deref(), None | Some(Expr::Const(Const::Null)))
                    && !matches!(peel(inner, &self.cx.cat), Some(Type::Variant(_)) | None) => {}
            (
                Expr::Variant {
                    tag,
                    value: Some(x),
                },
                Type::Option(inner),
            ) if tag == "Some"
                && !matches!(peel(inner, &self.cx.cat), Some(Type::Variant(_)) | None) =>
            {
                self.check(x, &format!("{p}/variant/value"), inner, sc);
            }
            (Expr::Variant { tag, .. }, Type::Option(inner))
                if !matches!(peel(inner, &self.cx.cat), Some(Type::Variant(_)) | None) =>
            {
                self.infer(e, p, sc);
                self.mismatch(
                    p,
                    format!(
                        "expected {}, found variant `{tag}`: an option is `{{\"null\": {{}}}}` \
                         (none) or the value itself (some); AgentOS's `None` / `Some` variants \
                         are also read, any other tag is not",
                        describe(t)
                    ),
                );
            }
            (_, Type::Option(inner)) => self.check(e, p, inner, sc),
            (Expr::Const(c), _) => {
                let ct = const_type(c);
                if !same(&ct, &rt, &self.cx.cat, 0) {
                    self.mismatch(
                        p,
                        format!("expected {}, found {}", describe(t), expr_form(e)),
                    );
                }
            }
            (Expr::Record(fs), Type::Record(ft)) => {
                let rp = format!("{p}/record");
                for (k, x) in fs {
                    let fp = at(&rp, k);
                    match ft.get(k) {
                        Some(t2) => self.check(x, &fp, t2, sc),
                        None => {
                            self.infer(x, &fp, sc);
                            self.mismatch(&fp, format!("{} has no field `{k}`", describe(t)));
                        }
                    }
                }
                for (k, t2) in ft {
                    if !fs.iter().any(|(f, _)| f == k) && !is_option(t2, &self.cx.cat) {
                        self.mismatch(
                            p,
                            format!(
                                "field `{k}` ({}) of {} is missing",
                                describe(t2),
                                describe(t)
                            ),
                        );
                    }
                }
            }
            (Expr::Variant { tag, value }, Type::Variant(tags)) => match tags.get(tag) {
                None => {
                    if let Some(x) = value {
                        self.infer(x, &format!("{p}/variant/value"), sc);
                    }
                    self.mismatch(
                        &format!("{p}/variant/tag"),
                        format!("{} has no alternative `{tag}`", describe(t)),
                    );
                }
                Some(pt) => match value {
                    Some(x) => self.check(x, &format!("{p}/variant/value"), pt, sc),
                    None => {
                        let unit = matches!(
                            res(pt, &self.cx.cat),
                            None | Some(Type::Unit | Type::Option(_))
                        );
                        if !unit {
                            self.mismatch(
                                &format!("{p}/variant"),
                                format!(
                                    "alternative `{tag}` of {} carries {}: give a `value`",
                                    describe(t),
                                    describe(pt)
                                ),
                            );
                        }
                    }
                },
            },
            (Expr::List(xs), Type::List(el)) | (Expr::Set(xs), Type::Set(el)) => {
                let key = if matches!(e, Expr::List(_)) {
                    "list"
                } else {
                    "set"
                };
                for (i, x) in xs.iter().enumerate() {
                    self.check(x, &format!("{p}/{key}/{i}"), el, sc);
                }
            }
            (Expr::Map(kvs), Type::Map { key, value }) => {
                for (i, (k, v)) in kvs.iter().enumerate() {
                    self.check(k, &format!("{p}/map/{i}/key"), key.type_ref(), sc);
                    self.check(v, &format!("{p}/map/{i}/value"), value, sc);
                }
            }
            _ => {
                self.infer(e, p, sc);
                self.mismatch(
                    p,
                    format!("expected {}, found {}", describe(t), expr_form(e)),
                );
            }
        }
    }

    /// Infers the type of `e` where it can, checking what it refers to.
    fn infer(&mut self, e: &Expr, p: &str, sc: Scope<'_>) -> Option<Type> {
        match e {
            Expr::Const(c) => Some(const_type(c)),
            Expr::Ref(r) => self.ref_type(r, p, sc),
            Expr::Op { op, args } => self.op_type(*op, args, p, sc),
            Expr::Record(fs) => {
                let mut m = BTreeMap::new();
                let mut all = true;
                for (k, x) in fs {
                    match self.infer(x, &at(&format!("{p}/record"), k), sc) {
                        Some(t) => {
                            m.insert(k.clone(), t);
                        }
                        None => all = false,
                    }
                }
                all.then_some(Type::Record(m))
            }
            Expr::List(xs) | Expr::Set(xs) => {
                let key = if matches!(e, Expr::List(_)) {
                    "list"
                } else {
                    "set"
                };
                let mut el = None;
                for (i, x) in xs.iter().enumerate() {
                    let t = self.infer(x, &format!("{p}/{key}/{i}"), sc);
                    if el.is_none() {
                        el = t;
                    }
                }
                let el = Box::new(el?);
                Some(if key == "list" {
                    Type::List(el)
                } else {
                    Type::Set(el)
                })
            }
            Expr::Map(kvs) => {
                let (mut kt, mut vt) = (None, None);
                for (i, (k, v)) in kvs.iter().enumerate() {
                    let a = self.infer(k, &format!("{p}/map/{i}/key"), sc);
                    let b = self.infer(v, &format!("{p}/map/{i}/value"), sc);
                    if kt.is_none() {
                        kt = a;
                    }
                    if vt.is_none() {
                        vt = b;
                    }
                }
                let key = MapKey::from_type(res(&kt?, &self.cx.cat)?)?;
                Some(Type::Map {
                    key,
                    value: Box::new(vt?),
                })
            }
            Expr::Variant { value, .. } => {
                if let Some(x) = value {
                    self.infer(x, &format!("{p}/variant/value"), sc);
                }
                None
            }
        }
    }

    /// The type a reference has, reporting what it cannot resolve.
    fn ref_type(&mut self, r: &Ref, p: &str, sc: Scope<'_>) -> Option<Type> {
        let root = match &r.root {
            RefRoot::PlanInput => self
                .cx
                .cat
                .schema(&self.plan.input)
                .map(|_| Type::Ref(self.plan.input.clone())),
            RefRoot::Event => match sc.event {
                Some(t) => Some(t.clone()),
                None => {
                    self.report(
                        p,
                        Check::EventRef,
                        format!("`{r}`: `@event` exists only in `await_event.where`"),
                    );
                    return None;
                }
            },
            RefRoot::Var(v) => {
                if let Some(t) = self.locals.get(v.as_str()) {
                    self.cx.cat.schema(t).map(|_| Type::Ref((*t).clone()))
                } else if let Some(steps) = self.bindings.get(v.as_str()).cloned() {
                    let visible: Vec<usize> = steps
                        .iter()
                        .copied()
                        .filter(|&s| self.visible(s, sc.at))
                        .collect();
                    if visible.is_empty() {
                        let by: Vec<&str> = steps.iter().map(|&s| self.id(s)).collect();
                        self.report(
                            p,
                            Check::NotAncestor,
                            format!(
                                "`{r}`: variable `{v}` is bound by step `{}`, which does not \
                                 always complete before this point (it is not an ancestor)",
                                by.join("`, `")
                            ),
                        );
                        return None;
                    }
                    let mut ty = self.bind_ty[visible[0]].clone();
                    for &s in &visible[1..] {
                        match (&ty, &self.bind_ty[s]) {
                            (Some(a), Some(b)) if same(a, b, &self.cx.cat, 0) => {}
                            _ => ty = None,
                        }
                    }
                    ty
                } else if v == "correlation_id" {
                    if let Some(t) = &self.correlation {
                        t.clone()
                    } else {
                        self.report(
                            p,
                            Check::UnresolvedRef,
                            format!(
                                "`{r}`: `correlation_id` is bound only in runs started by a \
                                 trigger with `correlate_by`, and no trigger starts plan {} so",
                                self.plan.name
                            ),
                        );
                        return None;
                    }
                } else {
                    self.report(
                        p,
                        Check::UnresolvedRef,
                        format!("`{r}`: no variable `{v}` (not a local, not bound by any step)"),
                    );
                    return None;
                }
            }
            RefRoot::Step(s) => match self.ids.get(s.as_str()).copied() {
                Some(i) => {
                    if !self.visible(i, sc.at) {
                        self.report(
                            p,
                            Check::NotAncestor,
                            format!(
                                "`{r}`: step `{s}` does not always complete before this point \
                                 (it is not an ancestor)"
                            ),
                        );
                        return None;
                    }
                    self.out_ty[i].clone()
                }
                None => {
                    self.report(
                        p,
                        Check::UnresolvedRef,
                        format!("`{r}`: the plan has no step `{s}`"),
                    );
                    return None;
                }
            },
        };
        let mut t = root?;
        for seg in &r.path {
            let cat = &self.cx.cat;
            let cur = peel(&t, cat)?.clone();
            match &cur {
                Type::Record(fs) => match fs.get(seg) {
                    Some(ft) => t = ft.clone(),
                    None => {
                        self.report(
                            p,
                            Check::BadPath,
                            format!("`{r}`: {} has no field `{seg}`", describe(&t)),
                        );
                        return None;
                    }
                },
                Type::Map { key, value } if key.is_textual() => t = (**value).clone(),
                Type::Variant(_) => return None,
                other => {
                    self.report(
                        p,
                        Check::BadPath,
                        format!(
                            "`{r}`: {} has no fields, so `.{seg}` leads nowhere",
                            describe(other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(t)
    }

    #[allow(clippy::too_many_lines)]
    fn op_type(&mut self, op: Op, args: &[Expr], p: &str, sc: Scope<'_>) -> Option<Type> {
        let ts: Vec<Option<Type>> = args
            .iter()
            .enumerate()
            .map(|(i, a)| self.infer(a, &format!("{p}/args/{i}"), sc))
            .collect();
        let cat = &self.cx.cat;
        let peeled: Vec<Option<Type>> = ts
            .iter()
            .map(|t| t.as_ref().and_then(|t| peel(t, cat)).cloned())
            .collect();
        let mut bad: Vec<(usize, String)> = Vec::new();
        let mut want = |i: usize, ok: fn(&Type) -> bool, what: &str| {
            if let Some(Some(t)) = peeled.get(i)
                && !ok(t)
            {
                bad.push((
                    i,
                    format!("`{op}` takes {what}; argument {} is {}", i + 1, describe(t)),
                ));
            }
        };
        let numeric = |t: &Type| is_integer(t) || matches!(t, Type::Dec128);
        let result = match op {
            Op::Len => {
                want(
                    0,
                    |t| {
                        matches!(
                            t,
                            Type::Text
                                | Type::Bytes
                                | Type::List(_)
                                | Type::Set(_)
                                | Type::Map { .. }
                                | Type::Record(_)
                        )
                    },
                    "text, bytes, a list, set, map or record",
                );
                Some(Type::Nat)
            }
            Op::Not | Op::And | Op::Or => {
                for i in 0..args.len() {
                    want(i, |t| matches!(t, Type::Bool), "booleans");
                }
                Some(Type::Bool)
            }
            Op::Eq | Op::Ne => {
                if let (Some(Some(a)), Some(Some(b))) = (ts.first(), ts.get(1))
                    && !comparable(a, b, cat)
                {
                    bad.push((
                        usize::MAX,
                        format!(
                            "`{op}` compares values of one type; found {} and {}",
                            describe(a),
                            describe(b)
                        ),
                    ));
                }
                Some(Type::Bool)
            }
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                for i in 0..2 {
                    want(
                        i,
                        |t| is_integer(t) || matches!(t, Type::Dec128 | Type::Text),
                        "numbers or text",
                    );
                }
                if let (Some(Some(a)), Some(Some(b))) = (peeled.first(), peeled.get(1)) {
                    let class = |t: &Type| {
                        if is_integer(t) {
                            0
                        } else if matches!(t, Type::Dec128) {
                            1
                        } else {
                            2
                        }
                    };
                    if class(a) != class(b) {
                        bad.push((
                            usize::MAX,
                            format!(
                                "`{op}` compares values of one kind; found {} and {}",
                                describe(a),
                                describe(b)
                            ),
                        ));
                    }
                }
                Some(Type::Bool)
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => {
                for i in 0..2 {
                    want(i, numeric, "numbers");
                }
                match (peeled.first(), peeled.get(1)) {
                    (Some(Some(a)), Some(Some(b))) if numeric(a) && numeric(b) => {
                        if is_integer(a) != is_integer(b) {
                            bad.push((
                                usize::MAX,
                                format!(
                                    "`{op}` does not mix integers and decimals; found {} and {}",
                                    describe(a),
                                    describe(b)
                                ),
                            ));
                            None
                        } else if a == b {
                            Some(a.clone())
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            }
            Op::Concat => {
                for i in 0..2 {
                    want(
                        i,
                        |t| matches!(t, Type::Text | Type::Bytes | Type::List(_)),
                        "text, bytes or lists",
                    );
                }
                match (peeled.first(), peeled.get(1)) {
                    (Some(Some(a)), Some(Some(b))) => {
                        if std::mem::discriminant(a) == std::mem::discriminant(b) {
                            Some(a.clone())
                        } else {
                            bad.push((
                                usize::MAX,
                                format!(
                                    "`concat` joins values of one kind; found {} and {}",
                                    describe(a),
                                    describe(b)
                                ),
                            ));
                            None
                        }
                    }
                    _ => None,
                }
            }
            Op::StartsWith | Op::EndsWith => {
                for i in 0..2 {
                    want(
                        i,
                        |t| matches!(t, Type::Text | Type::Bytes),
                        "text or bytes",
                    );
                }
                Some(Type::Bool)
            }
            Op::Contains => {
                want(
                    0,
                    |t| {
                        matches!(
                            t,
                            Type::Text
                                | Type::Bytes
                                | Type::List(_)
                                | Type::Set(_)
                                | Type::Map { .. }
                        )
                    },
                    "text, bytes, a list, set or map",
                );
                if let (Some(Some(c)), Some(Some(x))) = (peeled.first(), ts.get(1)) {
                    let fits = match c {
                        Type::Text | Type::Bytes => peel(x, cat).is_none_or(|y| y == c),
                        Type::List(el) | Type::Set(el) => comparable(el, x, cat),
                        Type::Map { key, .. } => comparable(&key.as_type(), x, cat),
                        _ => true,
                    };
                    if !fits {
                        bad.push((
                            1,
                            format!(
                                "`contains` looks for an element of {}; argument 2 is {}",
                                describe(c),
                                describe(x)
                            ),
                        ));
                    }
                }
                Some(Type::Bool)
            }
            Op::Get | Op::Has => {
                let mut out = None;
                match peeled.first() {
                    Some(Some(Type::Record(fs))) => {
                        if let Some(Expr::Const(Const::Text(f))) = args.get(1) {
                            match fs.get(f) {
                                Some(ft) => out = Some(ft.clone()),
                                None if op == Op::Get => bad.push((
                                    1,
                                    format!(
                                        "{} has no field `{f}`",
                                        describe(ts[0].as_ref().unwrap_or(&Type::Unit))
                                    ),
                                )),
                                None => {}
                            }
                        } else if let Some(Some(k)) = peeled.get(1)
                            && !matches!(k, Type::Text)
                        {
                            bad.push((
                                1,
                                format!("a record field is named by text, found {}", describe(k)),
                            ));
                        }
                    }
                    Some(Some(Type::Map { key, value })) => {
                        if let Some(Some(k)) = ts.get(1)
                            && !comparable(&key.as_type(), k, cat)
                        {
                            bad.push((
                                1,
                                format!(
                                    "the map's keys are {}, found {}",
                                    key.as_type().form(),
                                    describe(k)
                                ),
                            ));
                        }
                        out = Some((**value).clone());
                    }
                    Some(Some(Type::List(el))) => {
                        if op == Op::Get {
                            want(1, is_integer, "an integer index into a list");
                        }
                        out = Some((**el).clone());
                    }
                    Some(Some(Type::Set(_))) if op == Op::Has => {}
                    Some(Some(t)) => bad.push((
                        0,
                        format!(
                            "`{op}` takes a record, map{} as argument 1, found {}",
                            if op == Op::Has {
                                ", set or list"
                            } else {
                                " or list"
                            },
                            describe(t)
                        ),
                    )),
                    _ => {}
                }
                if op == Op::Has { Some(Type::Bool) } else { out }
            }
        };
        for (i, m) in bad {
            let ptr = if i == usize::MAX {
                p.to_owned()
            } else {
                format!("{p}/args/{i}")
            };
            self.mismatch(&ptr, m);
        }
        result
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
