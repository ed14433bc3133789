//! Patch documents: typed, transactional changes to a world's AIR (air-v1 §8).
//!
//! A patch names the manifest it applies to and a list of operations. Operations that
//! replace or remove something carry the hash of what they expect to replace (`pre_hash`),
//! so a patch written against an older manifest fails clearly instead of silently undoing a
//! newer change. Applying is all-or-nothing: it works on a copy, and the result is then fully
//! re-validated by the caller.

use std::fmt;

use super::canon::{self, Catalog};
use super::load::Origin;
use super::name::Name;
use super::nodes::{
    CapGrant, Inbox, Manifest, ModuleBinding, NamedRef, Node, NodeKind, ParseError, RouteEvent,
    Rule, Trigger,
};
use super::validate::Validated;
use crate::codec::cbor::{self, Value};
use crate::codec::json::{Json, pointer_escape};
use crate::object::{self, Kind, ObjectId};

/// A parsed patch document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchDoc {
    /// The manifest the patch applies to.
    pub base_manifest_hash: ObjectId,
    /// The operations, applied in order.
    pub patches: Vec<PatchOp>,
}

/// One patch operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchOp {
    /// `add_def`: a new node (its name must not exist yet for its kind).
    AddDef {
        /// The node.
        node: Node,
    },
    /// `replace_def`: replace the node of this kind and name, which must have `pre_hash`.
    ReplaceDef {
        /// Kind of the node.
        kind: NodeKind,
        /// Its name.
        name: Name,
        /// The replacement (same kind and name).
        new_node: Node,
        /// The id the current node must have.
        pre_hash: ObjectId,
    },
    /// `remove_def`: remove the node, which must have `pre_hash`.
    RemoveDef {
        /// Kind of the node.
        kind: NodeKind,
        /// Its name.
        name: Name,
        /// The id the current node must have.
        pre_hash: ObjectId,
    },
    /// `set_manifest_refs`: add names to and remove names from the manifest's lists.
    SetManifestRefs {
        /// `(kind, name, hash?)` to list.
        add: Vec<(NodeKind, Name, Option<ObjectId>)>,
        /// `(kind, name)` to unlist.
        remove: Vec<(NodeKind, Name)>,
    },
    /// `set_defaults`: replace the default policy and/or the cap grants.
    SetDefaults {
        /// `Some(None)` clears the policy; `None` leaves it.
        policy: Option<Option<Name>>,
        /// `None` leaves the grants.
        cap_grants: Option<Vec<CapGrant>>,
    },
    /// `set_routing_events`.
    SetRoutingEvents {
        /// Id of the block replaced.
        pre_hash: ObjectId,
        /// The new block.
        events: Vec<RouteEvent>,
    },
    /// `set_routing_inboxes`.
    SetRoutingInboxes {
        /// Id of the block replaced.
        pre_hash: ObjectId,
        /// The new block.
        inboxes: Vec<Inbox>,
    },
    /// `set_triggers`.
    SetTriggers {
        /// Id of the block replaced.
        pre_hash: ObjectId,
        /// The new block.
        triggers: Vec<Trigger>,
    },
    /// `set_module_bindings`.
    SetModuleBindings {
        /// Id of the block replaced.
        pre_hash: ObjectId,
        /// The new block.
        bindings: Vec<ModuleBinding>,
    },
    /// `set_secrets`.
    SetSecrets {
        /// Id of the block replaced.
        pre_hash: ObjectId,
        /// The new list.
        secrets: Vec<NamedRef>,
    },
}

impl PatchOp {
    /// The op's name as written in JSON.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AddDef { .. } => "add_def",
            Self::ReplaceDef { .. } => "replace_def",
            Self::RemoveDef { .. } => "remove_def",
            Self::SetManifestRefs { .. } => "set_manifest_refs",
            Self::SetDefaults { .. } => "set_defaults",
            Self::SetRoutingEvents { .. } => "set_routing_events",
            Self::SetRoutingInboxes { .. } => "set_routing_inboxes",
            Self::SetTriggers { .. } => "set_triggers",
            Self::SetModuleBindings { .. } => "set_module_bindings",
            Self::SetSecrets { .. } => "set_secrets",
        }
    }
}

/// A manifest block that `set_*` operations replace as a whole.
#[derive(Clone, Copy, Debug)]
pub enum Block<'a> {
    /// `routing.events`.
    RoutingEvents(&'a [RouteEvent]),
    /// `routing.inboxes`.
    RoutingInboxes(&'a [Inbox]),
    /// `triggers`.
    Triggers(&'a [Trigger]),
    /// `module_bindings`.
    ModuleBindings(&'a [ModuleBinding]),
    /// `secrets`.
    Secrets(&'a [NamedRef]),
}

/// How the caller identifies nodes and manifest blocks (their canonical ids), so that
/// `pre_hash` values can be checked.
pub trait Ids {
    /// The id of a node as it stands in the base.
    fn node_id(&self, node: &Node) -> ObjectId;
    /// The id of a manifest block as it stands in the base.
    fn block_id(&self, block: Block<'_>) -> ObjectId;
}

/// Why a patch does not apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PatchError {
    /// Index of the failing operation in `patches` (`None` for the document itself).
    pub op: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Some(i) => write!(f, "patch {i} (at `/patches/{i}`): {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

fn perr(pointer: String, rule: Rule, message: impl Into<String>) -> ParseError {
    ParseError::new(pointer, rule, message)
}

fn members(j: &Json, at: &str) -> Result<Vec<(String, Json)>, Vec<ParseError>> {
    match j {
        Json::Object(m) => Ok(m.clone()),
        other => Err(vec![perr(
            at.to_owned(),
            Rule::WrongType,
            format!("expected an object, found {}", other.type_name()),
        )]),
    }
}

fn get<'a>(m: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    m.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A required string member at `at`; a problem is recorded in `errs`.
fn text<'a>(j: Option<&'a Json>, at: &str, errs: &mut Vec<ParseError>) -> Option<&'a str> {
    match j {
        Some(Json::String(s)) => Some(s),
        Some(other) => {
            errs.push(perr(
                at.to_owned(),
                Rule::WrongType,
                format!("expected a string, found {}", other.type_name()),
            ));
            None
        }
        None => {
            errs.push(perr(
                at.to_owned(),
                Rule::MissingField,
                "required field missing",
            ));
            None
        }
    }
}

fn hash_at(j: Option<&Json>, at: &str, errs: &mut Vec<ParseError>) -> Option<ObjectId> {
    let s = text(j, at, errs)?;
    s.parse::<ObjectId>()
        .map_err(|e| errs.push(perr(at.to_owned(), Rule::BadHash, e.to_string())))
        .ok()
}

fn name_at(j: Option<&Json>, at: &str, errs: &mut Vec<ParseError>) -> Option<Name> {
    let s = text(j, at, errs)?;
    Name::new(s)
        .map_err(|e| errs.push(perr(at.to_owned(), Rule::BadName, e.to_string())))
        .ok()
}

fn kind_at(j: Option<&Json>, at: &str, errs: &mut Vec<ParseError>) -> Option<NodeKind> {
    let s = text(j, at, errs)?;
    match NodeKind::from_name(s) {
        Some(NodeKind::Manifest) | None => {
            errs.push(perr(
                at.to_owned(),
                Rule::BadEnum,
                format!("`{s}` is not a definition kind (defschema, defmodule, …)"),
            ));
            None
        }
        Some(k) => Some(k),
    }
}

fn only(m: &[(String, Json)], allowed: &[&str], at: &str, errs: &mut Vec<ParseError>) {
    for (k, _) in m {
        if !allowed.contains(&k.as_str()) {
            errs.push(perr(
                format!("{at}/{}", pointer_escape(k)),
                Rule::UnknownField,
                format!("unknown field `{k}`"),
            ));
        }
    }
}

/// Parses a manifest fragment by wrapping it in a manifest, so manifest blocks are read by
/// exactly the rules `nodes` applies; error pointers are moved to where the block sits.
fn manifest_fragment(
    fields: Vec<(String, Json)>,
    from: &str,
    to: &str,
) -> Result<Manifest, Vec<ParseError>> {
    let mut m = vec![
        ("$kind".to_owned(), Json::String("manifest".into())),
        ("air_version".to_owned(), Json::String("1".into())),
    ];
    m.extend(fields);
    match Node::from_json(&Json::Object(m)) {
        Ok(Node::Manifest(man)) => Ok(man),
        Ok(_) => unreachable!("a `$kind: manifest` object parses as a manifest"),
        Err(errs) => Err(errs
            .into_iter()
            .map(|mut e| {
                if let Some(rest) = e.pointer.strip_prefix(from) {
                    e.pointer = format!("{to}{rest}");
                }
                e
            })
            .collect()),
    }
}

impl PatchDoc {
    /// Reads a patch document, reporting every problem found.
    ///
    /// # Errors
    /// Every problem, each with its JSON pointer and rule.
    pub fn from_json(j: &Json) -> Result<Self, Vec<ParseError>> {
        let mut errs = Vec::new();
        let top = members(j, "")?;
        only(
            &top,
            &["version", "base_manifest_hash", "patches"],
            "",
            &mut errs,
        );
        if get(&top, "version").is_some_and(|v| *v != Json::String("1".into())) {
            errs.push(perr(
                "/version".into(),
                Rule::BadEnum,
                "`version` must be \"1\"",
            ));
        }
        let base = hash_at(
            get(&top, "base_manifest_hash"),
            "/base_manifest_hash",
            &mut errs,
        );
        let mut patches = Vec::new();
        match get(&top, "patches") {
            Some(Json::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    match Self::op(item, &format!("/patches/{i}")) {
                        Ok(op) => patches.push(op),
                        Err(e) => errs.extend(e),
                    }
                }
            }
            Some(Json::Array(_)) => errs.push(perr(
                "/patches".into(),
                Rule::WrongType,
                "a patch document needs at least one patch",
            )),
            Some(other) => errs.push(perr(
                "/patches".into(),
                Rule::WrongType,
                format!("expected an array, found {}", other.type_name()),
            )),
            None => errs.push(perr(
                "/patches".into(),
                Rule::MissingField,
                "required field missing",
            )),
        }
        match base {
            Some(base_manifest_hash) if errs.is_empty() => Ok(Self {
                base_manifest_hash,
                patches,
            }),
            _ => Err(errs),
        }
    }

    fn op(j: &Json, at: &str) -> Result<PatchOp, Vec<ParseError>> {
        let m = members(j, at)?;
        let [(op, body)] = m.as_slice() else {
            return Err(vec![perr(
                at.to_owned(),
                Rule::WrongType,
                "a patch is an object with exactly one member, named after its op",
            )]);
        };
        let at = format!("{at}/{}", pointer_escape(op));
        let b = members(body, &at)?;
        let mut errs = Vec::new();
        let p = |k: &str| format!("{at}/{k}");
        let node = |key: &str, errs: &mut Vec<ParseError>| match get(&b, key) {
            Some(j) => Node::from_json_at(j, &p(key))
                .map_err(|e| errs.extend(e))
                .ok(),
            None => {
                errs.push(perr(p(key), Rule::MissingField, "required field missing"));
                None
            }
        };
        let block = |key: &str, wrap: &[&str], errs: &mut Vec<ParseError>| -> Option<Manifest> {
            let value = get(&b, key).cloned().unwrap_or(Json::Null);
            if get(&b, key).is_none() {
                errs.push(perr(p(key), Rule::MissingField, "required field missing"));
                return None;
            }
            // Nest the value under the manifest path it belongs to, e.g. routing.events.
            let mut v = value;
            for seg in wrap.iter().skip(1).rev() {
                v = Json::Object(vec![((*seg).to_owned(), v)]);
            }
            let from = format!("/{}", wrap.join("/"));
            manifest_fragment(vec![(wrap[0].to_owned(), v)], &from, &p(key))
                .map_err(|e| errs.extend(e))
                .ok()
        };
        let op = match op.as_str() {
            "add_def" => {
                only(&b, &["kind", "node"], &at, &mut errs);
                let kind = kind_at(get(&b, "kind"), &p("kind"), &mut errs);
                let n = node("node", &mut errs);
                match (kind, n) {
                    (Some(k), Some(n)) if n.kind() == k => Some(PatchOp::AddDef { node: n }),
                    (Some(k), Some(n)) => {
                        errs.push(perr(
                            p("node"),
                            Rule::BadEnum,
                            format!("node is a {}, `kind` says {k}", n.kind()),
                        ));
                        None
                    }
                    _ => None,
                }
            }
            "replace_def" => {
                only(
                    &b,
                    &["kind", "name", "new_node", "pre_hash"],
                    &at,
                    &mut errs,
                );
                let kind = kind_at(get(&b, "kind"), &p("kind"), &mut errs);
                let name = name_at(get(&b, "name"), &p("name"), &mut errs);
                let pre = hash_at(get(&b, "pre_hash"), &p("pre_hash"), &mut errs);
                let n = node("new_node", &mut errs);
                match (kind, name, pre, n) {
                    (Some(kind), Some(name), Some(pre_hash), Some(new_node)) => {
                        if new_node.kind() != kind || new_node.name() != Some(&name) {
                            errs.push(perr(
                                p("new_node"),
                                Rule::BadEnum,
                                format!("new_node must be the {kind} {name}"),
                            ));
                            None
                        } else {
                            Some(PatchOp::ReplaceDef {
                                kind,
                                name,
                                new_node,
                                pre_hash,
                            })
                        }
                    }
                    _ => None,
                }
            }
            "remove_def" => {
                only(&b, &["kind", "name", "pre_hash"], &at, &mut errs);
                let kind = kind_at(get(&b, "kind"), &p("kind"), &mut errs);
                let name = name_at(get(&b, "name"), &p("name"), &mut errs);
                let pre = hash_at(get(&b, "pre_hash"), &p("pre_hash"), &mut errs);
                match (kind, name, pre) {
                    (Some(kind), Some(name), Some(pre_hash)) => Some(PatchOp::RemoveDef {
                        kind,
                        name,
                        pre_hash,
                    }),
                    _ => None,
                }
            }
            "set_manifest_refs" => {
                only(&b, &["add", "remove"], &at, &mut errs);
                if get(&b, "add").is_none() && get(&b, "remove").is_none() {
                    errs.push(perr(
                        at.clone(),
                        Rule::MissingField,
                        "give `add`, `remove` or both",
                    ));
                }
                let mut add = Vec::new();
                let mut remove = Vec::new();
                for (key, out_add) in [("add", true), ("remove", false)] {
                    let Some(list) = get(&b, key) else { continue };
                    let Json::Array(items) = list else {
                        errs.push(perr(p(key), Rule::WrongType, "expected an array"));
                        continue;
                    };
                    for (i, item) in items.iter().enumerate() {
                        let ip = format!("{}/{i}", p(key));
                        let Ok(fields) = members(item, &ip).map_err(|e| errs.extend(e)) else {
                            continue;
                        };
                        let allowed: &[&str] = if out_add {
                            &["kind", "name", "hash"]
                        } else {
                            &["kind", "name"]
                        };
                        only(&fields, allowed, &ip, &mut errs);
                        let kind = kind_at(get(&fields, "kind"), &format!("{ip}/kind"), &mut errs);
                        let name = name_at(get(&fields, "name"), &format!("{ip}/name"), &mut errs);
                        let hash = match get(&fields, "hash") {
                            Some(h) => hash_at(Some(h), &format!("{ip}/hash"), &mut errs),
                            None => None,
                        };
                        if let (Some(k), Some(n)) = (kind, name) {
                            if out_add {
                                add.push((k, n, hash));
                            } else {
                                remove.push((k, n));
                            }
                        }
                    }
                }
                Some(PatchOp::SetManifestRefs { add, remove })
            }
            "set_defaults" => {
                only(&b, &["policy", "cap_grants"], &at, &mut errs);
                let policy = match get(&b, "policy") {
                    None => None,
                    Some(Json::Null) => Some(None),
                    Some(j) => name_at(Some(j), &p("policy"), &mut errs).map(Some),
                };
                let cap_grants = match get(&b, "cap_grants") {
                    None => None,
                    Some(Json::Array(items)) => {
                        let mut grants = Vec::new();
                        for (i, g) in items.iter().enumerate() {
                            match super::nodes::cap_grant_from_json(g) {
                                Ok(g) => grants.push(g),
                                Err(e) => errs.extend(e.into_iter().map(|mut e| {
                                    e.pointer = format!("{}/{i}{}", p("cap_grants"), e.pointer);
                                    e
                                })),
                            }
                        }
                        Some(grants)
                    }
                    Some(_) => {
                        errs.push(perr(p("cap_grants"), Rule::WrongType, "expected an array"));
                        None
                    }
                };
                Some(PatchOp::SetDefaults { policy, cap_grants })
            }
            "set_routing_events"
            | "set_routing_inboxes"
            | "set_triggers"
            | "set_module_bindings"
            | "set_secrets" => {
                let (key, wrap): (&str, &[&str]) = match op.as_str() {
                    "set_routing_events" => ("events", &["routing", "events"]),
                    "set_routing_inboxes" => ("inboxes", &["routing", "inboxes"]),
                    "set_triggers" => ("triggers", &["triggers"]),
                    "set_module_bindings" => ("bindings", &["module_bindings"]),
                    _ => ("secrets", &["secrets"]),
                };
                only(&b, &["pre_hash", key], &at, &mut errs);
                let pre = hash_at(get(&b, "pre_hash"), &p("pre_hash"), &mut errs);
                let m = block(key, wrap, &mut errs);
                match (pre, m) {
                    (Some(pre_hash), Some(m)) => Some(match op.as_str() {
                        "set_routing_events" => PatchOp::SetRoutingEvents {
                            pre_hash,
                            events: m.routing.events,
                        },
                        "set_routing_inboxes" => PatchOp::SetRoutingInboxes {
                            pre_hash,
                            inboxes: m.routing.inboxes,
                        },
                        "set_triggers" => PatchOp::SetTriggers {
                            pre_hash,
                            triggers: m.triggers,
                        },
                        "set_module_bindings" => PatchOp::SetModuleBindings {
                            pre_hash,
                            bindings: m.module_bindings,
                        },
                        _ => PatchOp::SetSecrets {
                            pre_hash,
                            secrets: m.secrets,
                        },
                    }),
                    _ => None,
                }
            }
            other => {
                errs.push(perr(
                    at.clone(),
                    Rule::UnknownField,
                    format!("unknown patch op `{other}`"),
                ));
                None
            }
        };
        match op {
            Some(op) if errs.is_empty() => Ok(op),
            _ => Err(errs),
        }
    }
}

/// Applies `doc` to the nodes of a world (its manifest among them), all or nothing.
///
/// `manifest_id` is the id of the base manifest; `ids` computes the ids that `pre_hash`
/// values are checked against. The result still has to be validated as a whole.
///
/// # Errors
/// The first operation that does not apply, with the reason (a stale `pre_hash` says what
/// it expected and what it found).
pub fn apply(
    base: &[(Node, Origin)],
    manifest_id: ObjectId,
    doc: &PatchDoc,
    ids: &dyn Ids,
) -> Result<Vec<(Node, Origin)>, PatchError> {
    if doc.base_manifest_hash != manifest_id {
        return Err(PatchError {
            op: None,
            message: format!(
                "the patch is for manifest {}, but the base manifest is {manifest_id} (rebase the patch)",
                doc.base_manifest_hash
            ),
        });
    }
    let mut nodes: Vec<(Node, Origin)> = base.to_vec();
    let patch_origin = Origin {
        file: "<patch>".into(),
        pointer: String::new(),
    };
    for (i, op) in doc.patches.iter().enumerate() {
        let fail = |message: String| PatchError {
            op: Some(i),
            message,
        };
        let find = |nodes: &[(Node, Origin)], kind: NodeKind, name: &Name| {
            nodes
                .iter()
                .position(|(n, _)| n.kind() == kind && n.name() == Some(name))
        };
        let stale = |what: String, expected: &ObjectId, actual: &ObjectId| {
            fail(format!(
                "stale patch: {what} is {actual}, the patch expects {expected}"
            ))
        };
        let mi = nodes
            .iter()
            .position(|(n, _)| n.kind() == NodeKind::Manifest)
            .ok_or_else(|| fail("the base has no manifest".into()))?;
        match op {
            PatchOp::AddDef { node } => {
                let name = node
                    .name()
                    .ok_or_else(|| fail("add_def cannot add a manifest".into()))?;
                if find(&nodes, node.kind(), name).is_some() {
                    return Err(fail(format!(
                        "{} {name} already exists (use replace_def)",
                        node.kind()
                    )));
                }
                nodes.push((
                    node.clone(),
                    Origin {
                        pointer: format!("/patches/{i}/add_def/node"),
                        ..patch_origin.clone()
                    },
                ));
            }
            PatchOp::ReplaceDef {
                kind,
                name,
                new_node,
                pre_hash,
            } => {
                let at = find(&nodes, *kind, name)
                    .ok_or_else(|| fail(format!("there is no {kind} {name} to replace")))?;
                let actual = ids.node_id(&nodes[at].0);
                if actual != *pre_hash {
                    return Err(stale(format!("{kind} {name}"), pre_hash, &actual));
                }
                clear_listed_hash(&mut nodes, *kind, name);
                nodes[at] = (
                    new_node.clone(),
                    Origin {
                        pointer: format!("/patches/{i}/replace_def/new_node"),
                        ..patch_origin.clone()
                    },
                );
            }
            PatchOp::RemoveDef {
                kind,
                name,
                pre_hash,
            } => {
                let at = find(&nodes, *kind, name)
                    .ok_or_else(|| fail(format!("there is no {kind} {name} to remove")))?;
                let actual = ids.node_id(&nodes[at].0);
                if actual != *pre_hash {
                    return Err(stale(format!("{kind} {name}"), pre_hash, &actual));
                }
                nodes.remove(at);
            }
            _ => {
                let Node::Manifest(m) = &mut nodes[mi].0 else {
                    unreachable!("position found a manifest")
                };
                apply_manifest_op(m, op, ids).map_err(fail)?;
            }
        }
    }
    Ok(nodes)
}

fn apply_manifest_op(m: &mut Manifest, op: &PatchOp, ids: &dyn Ids) -> Result<(), String> {
    let check = |what: &str, block: Block<'_>, expected: &ObjectId| {
        let actual = ids.block_id(block);
        if actual == *expected {
            Ok(())
        } else {
            Err(format!(
                "stale patch: {what} is {actual}, the patch expects {expected}"
            ))
        }
    };
    match op {
        PatchOp::SetManifestRefs { add, remove } => {
            for (kind, name) in remove {
                let Some(list) = m.refs_mut(*kind) else {
                    return Err("a manifest does not list manifests".into());
                };
                let before = list.len();
                list.retain(|r| r.name != *name);
                if list.len() == before {
                    return Err(format!("the manifest does not list {kind} {name}"));
                }
            }
            for (kind, name, hash) in add {
                let Some(list) = m.refs_mut(*kind) else {
                    return Err("a manifest does not list manifests".into());
                };
                if list.iter().any(|r| r.name == *name) {
                    return Err(format!("the manifest already lists {kind} {name}"));
                }
                list.push(NamedRef {
                    name: name.clone(),
                    hash: *hash,
                });
            }
        }
        PatchOp::SetDefaults { policy, cap_grants } => {
            if let Some(p) = policy {
                m.defaults.policy.clone_from(p);
            }
            if let Some(g) = cap_grants {
                m.defaults.cap_grants.clone_from(g);
            }
        }
        PatchOp::SetRoutingEvents { pre_hash, events } => {
            check(
                "routing.events",
                Block::RoutingEvents(&m.routing.events),
                pre_hash,
            )?;
            m.routing.events.clone_from(events);
        }
        PatchOp::SetRoutingInboxes { pre_hash, inboxes } => {
            check(
                "routing.inboxes",
                Block::RoutingInboxes(&m.routing.inboxes),
                pre_hash,
            )?;
            m.routing.inboxes.clone_from(inboxes);
        }
        PatchOp::SetTriggers { pre_hash, triggers } => {
            check("triggers", Block::Triggers(&m.triggers), pre_hash)?;
            m.triggers.clone_from(triggers);
        }
        PatchOp::SetModuleBindings { pre_hash, bindings } => {
            check(
                "module_bindings",
                Block::ModuleBindings(&m.module_bindings),
                pre_hash,
            )?;
            m.module_bindings.clone_from(bindings);
        }
        PatchOp::SetSecrets { pre_hash, secrets } => {
            check("secrets", Block::Secrets(&m.secrets), pre_hash)?;
            m.secrets.clone_from(secrets);
        }
        PatchOp::AddDef { .. } | PatchOp::ReplaceDef { .. } | PatchOp::RemoveDef { .. } => {
            unreachable!("definition ops are applied by `apply`")
        }
    }
    Ok(())
}

/// A replaced node has a new id: forget the one the manifest listed, so validation fills in
/// the new one.
fn clear_listed_hash(nodes: &mut [(Node, Origin)], kind: NodeKind, name: &Name) {
    for (n, _) in nodes.iter_mut() {
        if let Node::Manifest(m) = n {
            for r in m
                .refs_mut(kind)
                .into_iter()
                .flatten()
                .filter(|r| r.name == *name)
            {
                r.hash = None;
            }
        }
    }
}

/// The ids of a validated world, as `pre_hash` values name them: a node's id is its `air`
/// object id; a manifest block's id is the id of the block's canonical value stored as a
/// `value` object (an absent block is the empty array, or for `module_bindings` the empty map).
pub struct WorldIds<'a> {
    world: &'a Validated,
    catalog: Catalog<'a>,
}

impl<'a> WorldIds<'a> {
    /// Ids for `world`.
    #[must_use]
    pub fn new(world: &'a Validated) -> Self {
        Self {
            world,
            catalog: Catalog::new(world.nodes.iter().map(|n| &n.node)),
        }
    }

    /// The canonical value of a manifest block, with the rest of the world's manifest around it.
    fn block_value(&self, block: Block<'_>) -> Option<Value> {
        let mut m = self.world.manifest.clone();
        let (outer, inner, empty) = match block {
            Block::RoutingEvents(b) => {
                m.routing.events = b.to_vec();
                ("routing", Some("events"), Value::Array(Vec::new()))
            }
            Block::RoutingInboxes(b) => {
                m.routing.inboxes = b.to_vec();
                ("routing", Some("inboxes"), Value::Array(Vec::new()))
            }
            Block::Triggers(b) => {
                m.triggers = b.to_vec();
                ("triggers", None, Value::Array(Vec::new()))
            }
            Block::ModuleBindings(b) => {
                m.module_bindings = b.to_vec();
                ("module_bindings", None, Value::Map(cbor::Map::new()))
            }
            Block::Secrets(b) => {
                m.secrets = b.to_vec();
                ("secrets", None, Value::Array(Vec::new()))
            }
        };
        let v = canon::node_value(&Node::Manifest(m), &self.catalog).ok()?;
        let field = |v: &Value, k: &str| match v {
            Value::Map(map) => map.get_text(k).cloned(),
            _ => None,
        };
        let outer_v = field(&v, outer);
        Some(match (outer_v, inner) {
            (None, _) => empty,
            (Some(o), None) => o,
            (Some(o), Some(i)) => field(&o, i).unwrap_or(empty),
        })
    }
}

impl Ids for WorldIds<'_> {
    fn node_id(&self, node: &Node) -> ObjectId {
        canon::node_value_and_id(node, &self.catalog)
            .map_or(ObjectId::from_bytes([0; 32]), |(_, id)| id)
    }

    fn block_id(&self, block: Block<'_>) -> ObjectId {
        self.block_value(block)
            .map_or(ObjectId::from_bytes([0; 32]), |v| {
                object::hash(Kind::Value, &cbor::encode(&v))
            })
    }
}

/// The canonical value of a patch document, so that a patch can be hashed and stored (as a
/// `value` object). Nodes are encoded as [`canon::node_value`] does, with the literal types of
/// `catalog` (the world the patch produces); manifest blocks as in the manifest.
///
/// # Errors
/// A node or block that does not encode in `catalog`.
pub fn patch_value(doc: &PatchDoc, world: &WorldIds<'_>) -> Result<Value, canon::CanonError> {
    let text = |s: &str| Value::Text(s.to_owned());
    let map = |entries: Vec<(&str, Value)>| {
        Value::Map(
            cbor::Map::from_entries(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
                .expect("patch encodings use distinct keys"),
        )
    };
    let block = |b: Block<'_>| world.block_value(b).unwrap_or(Value::Null);
    let mut ops = Vec::with_capacity(doc.patches.len());
    for op in &doc.patches {
        let body = match op {
            PatchOp::AddDef { node } => map(vec![
                ("kind", text(node.kind().as_str())),
                ("node", canon::node_value(node, &world.catalog)?),
            ]),
            PatchOp::ReplaceDef {
                kind,
                name,
                new_node,
                pre_hash,
            } => map(vec![
                ("kind", text(kind.as_str())),
                ("name", text(name.as_str())),
                ("new_node", canon::node_value(new_node, &world.catalog)?),
                ("pre_hash", Value::Link(*pre_hash)),
            ]),
            PatchOp::RemoveDef {
                kind,
                name,
                pre_hash,
            } => map(vec![
                ("kind", text(kind.as_str())),
                ("name", text(name.as_str())),
                ("pre_hash", Value::Link(*pre_hash)),
            ]),
            PatchOp::SetManifestRefs { add, remove } => {
                let add = add
                    .iter()
                    .map(|(k, n, h)| {
                        let mut e = vec![("kind", text(k.as_str())), ("name", text(n.as_str()))];
                        if let Some(h) = h {
                            e.push(("hash", Value::Link(*h)));
                        }
                        map(e)
                    })
                    .collect();
                let remove = remove
                    .iter()
                    .map(|(k, n)| map(vec![("kind", text(k.as_str())), ("name", text(n.as_str()))]))
                    .collect();
                map(vec![
                    ("add", Value::Array(add)),
                    ("remove", Value::Array(remove)),
                ])
            }
            PatchOp::SetDefaults { policy, cap_grants } => {
                let mut e = Vec::new();
                if let Some(p) = policy {
                    e.push((
                        "policy",
                        p.as_ref().map_or(Value::Null, |n| text(n.as_str())),
                    ));
                }
                if let Some(g) = cap_grants {
                    let mut m = world.world.manifest.clone();
                    m.defaults.cap_grants.clone_from(g);
                    let v = canon::node_value(&Node::Manifest(m), &world.catalog)?;
                    let grants = match &v {
                        Value::Map(mm) => match mm.get_text("defaults") {
                            Some(Value::Map(d)) => d.get_text("cap_grants").cloned(),
                            _ => None,
                        },
                        _ => None,
                    };
                    e.push(("cap_grants", grants.unwrap_or(Value::Array(Vec::new()))));
                }
                map(e)
            }
            PatchOp::SetRoutingEvents { pre_hash, events } => map(vec![
                ("pre_hash", Value::Link(*pre_hash)),
                ("events", block(Block::RoutingEvents(events))),
            ]),
            PatchOp::SetRoutingInboxes { pre_hash, inboxes } => map(vec![
                ("pre_hash", Value::Link(*pre_hash)),
                ("inboxes", block(Block::RoutingInboxes(inboxes))),
            ]),
            PatchOp::SetTriggers { pre_hash, triggers } => map(vec![
                ("pre_hash", Value::Link(*pre_hash)),
                ("triggers", block(Block::Triggers(triggers))),
            ]),
            PatchOp::SetModuleBindings { pre_hash, bindings } => map(vec![
                ("pre_hash", Value::Link(*pre_hash)),
                ("bindings", block(Block::ModuleBindings(bindings))),
            ]),
            PatchOp::SetSecrets { pre_hash, secrets } => map(vec![
                ("pre_hash", Value::Link(*pre_hash)),
                ("secrets", block(Block::Secrets(secrets))),
            ]),
        };
        ops.push(map(vec![(op.as_str(), body)]));
    }
    Ok(map(vec![
        ("version", text("1")),
        ("base_manifest_hash", Value::Link(doc.base_manifest_hash)),
        ("patches", Value::Array(ops)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::json::parse_json;
    use crate::object::{Kind, hash};

    /// Ids from the debug rendering: stable within a test, which is all `pre_hash` needs.
    struct DebugIds;
    impl Ids for DebugIds {
        fn node_id(&self, node: &Node) -> ObjectId {
            hash(Kind::Blob, format!("{node:?}").as_bytes())
        }
        fn block_id(&self, block: Block<'_>) -> ObjectId {
            hash(Kind::Blob, format!("{block:?}").as_bytes())
        }
    }

    fn base() -> Vec<(Node, Origin)> {
        let o = Origin {
            file: "base.json".into(),
            pointer: String::new(),
        };
        let j = |s: &str| Node::from_json(&parse_json(s).unwrap()).unwrap();
        vec![
            (
                j(r#"{"$kind": "manifest", "air_version": "1", "schemas": [{"name": "d/A@1"}]}"#),
                o.clone(),
            ),
            (
                j(r#"{"$kind": "defschema", "name": "d/A@1", "type": {"int": {}}}"#),
                o,
            ),
        ]
    }

    fn doc(patches: &str, base: ObjectId) -> PatchDoc {
        let text =
            format!(r#"{{"version": "1", "base_manifest_hash": "{base}", "patches": {patches}}}"#);
        PatchDoc::from_json(&parse_json(&text).unwrap()).unwrap()
    }

    #[test]
    fn add_replace_remove_and_refs() {
        let mid = ObjectId::from_bytes([1; 32]);
        let b = base();
        let a_id = DebugIds.node_id(&b[1].0);
        let d = doc(
            &format!(
                r#"[
                {{"add_def": {{"kind": "defschema", "node": {{"$kind": "defschema", "name": "d/B@1", "type": {{"text": {{}}}}}}}}}},
                {{"set_manifest_refs": {{"add": [{{"kind": "defschema", "name": "d/B@1"}}]}}}},
                {{"replace_def": {{"kind": "defschema", "name": "d/A@1", "pre_hash": "{a_id}",
                  "new_node": {{"$kind": "defschema", "name": "d/A@1", "type": {{"nat": {{}}}}}}}}}}
            ]"#
            ),
            mid,
        );
        let out = apply(&b, mid, &d, &DebugIds).unwrap();
        assert_eq!(out.len(), 3);
        let Node::Manifest(m) = &out[0].0 else {
            panic!()
        };
        assert_eq!(m.schemas.len(), 2);
        // The same patch again is stale: A changed.
        let err = apply(&out, mid, &d, &DebugIds).unwrap_err();
        assert!(err.message.contains("already exists"), "{err}");
        let d2 = doc(
            &format!(
                r#"[{{"remove_def": {{"kind": "defschema", "name": "d/A@1", "pre_hash": "{a_id}"}}}}]"#
            ),
            mid,
        );
        let err = apply(&out, mid, &d2, &DebugIds).unwrap_err();
        assert!(err.message.contains("stale patch"), "{err}");
        // A patch for another manifest is refused whole; the base is untouched.
        let err = apply(&b, ObjectId::from_bytes([2; 32]), &d, &DebugIds).unwrap_err();
        assert!(err.message.contains("rebase"), "{err}");
    }

    #[test]
    fn set_blocks_check_pre_hash() {
        let mid = ObjectId::from_bytes([1; 32]);
        let b = base();
        let empty = DebugIds.block_id(Block::RoutingEvents(&[]));
        let d = doc(
            &format!(
                r#"[{{"set_routing_events": {{"pre_hash": "{empty}", "events": [{{"event": "d/A@1", "reducer": "d/R@1"}}]}}}}]"#
            ),
            mid,
        );
        let out = apply(&b, mid, &d, &DebugIds).unwrap();
        let Node::Manifest(m) = &out[0].0 else {
            panic!()
        };
        assert_eq!(m.routing.events.len(), 1);
        assert!(
            apply(&out, mid, &d, &DebugIds)
                .unwrap_err()
                .message
                .contains("routing.events")
        );
    }

    #[test]
    fn malformed_documents_are_located() {
        let cases: &[(&str, &str, Rule)] = &[
            (
                r#"{"patches": []}"#,
                "/base_manifest_hash",
                Rule::MissingField,
            ),
            (
                r#"{"base_manifest_hash": "b3:00", "patches": [{"add_def": {}}]}"#,
                "/base_manifest_hash",
                Rule::BadHash,
            ),
            (
                r#"{"base_manifest_hash": "x", "patches": [{"frobnicate": {}}]}"#,
                "/patches/0/frobnicate",
                Rule::UnknownField,
            ),
            (
                r#"{"base_manifest_hash": "x", "patches": [{"remove_def": {"kind": "manifest"}}]}"#,
                "/patches/0/remove_def/kind",
                Rule::BadEnum,
            ),
            (
                r#"{"base_manifest_hash": "x", "patches": [{"set_triggers": {"pre_hash": "x", "triggers": [{"event": 3}]}}]}"#,
                "/patches/0/set_triggers/triggers/0/event",
                Rule::WrongType,
            ),
        ];
        for (text, pointer, rule) in cases {
            let errs = PatchDoc::from_json(&parse_json(text).unwrap()).unwrap_err();
            assert!(
                errs.iter()
                    .any(|e| e.pointer == *pointer && e.rule == *rule),
                "{text}: {errs:#?}"
            );
        }
    }
}
