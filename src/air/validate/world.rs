//! The whole run of validation: names unique and reserved, exactly one manifest, the world it
//! lists, the checks of every area, then canonical values, ids and the manifest's hashes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::context::{Cx, Listed, Site, builtin_of, label, report};
use super::defs::{check_cap, check_effect, check_module, check_policy, check_secret};
use super::manifest::check_manifest;
use super::plans::check_plan;
use super::schemas::check_schemas;
use super::{Check, Diagnostic, ValidNode, Validated};
use crate::air::canon::{self, Catalog, list_key};
use crate::air::load::Origin;
use crate::air::name::Name;
use crate::air::nodes::{Manifest, NamedRef, Node, NodeKind};
use crate::codec::cbor::Value;
use crate::object::ObjectId;

/// How much of validation [`run`] does.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Every rule.
    Check,
    /// Only what building the result needs (names, the listing, canonical values, ids and the
    /// manifest's hashes): for a control plane already known to pass [`Mode::Check`]. The
    /// map holds canonical values already known by id (a stored control plane's objects); a
    /// node the manifest lists by one of those ids takes its value from there instead of
    /// being encoded again.
    Rebuild(HashMap<ObjectId, Value>),
}

/// Validates `nodes` as a world (in `mode`), pushing every problem to `out`.
pub(super) fn run(
    nodes: &[(Node, Origin)],
    mode: Mode,
    out: &mut Vec<Diagnostic>,
) -> Option<Validated> {
    let (loaded, manifests) = index_loaded(nodes, out);
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
    let Listing {
        listed,
        by_name,
        entries,
    } = list_world(nodes, manifest, &msite, &loaded, out);
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
    let known = match mode {
        Mode::Check => {
            check_areas(&mut cx, manifest, &msite);
            HashMap::new()
        }
        Mode::Rebuild(known) => known,
    };
    finish(&mut cx, &entries, manifest, morigin, &msite, known)
}

/// Loaded nodes by kind and name: their positions in the input.
type Loaded<'a> = HashMap<(NodeKind, &'a Name), usize>;

/// The world the manifest lists.
struct Listing<'a> {
    /// The listed nodes, in manifest order by kind.
    listed: Vec<Listed<'a>>,
    /// Each listed node's position in `listed`.
    by_name: HashMap<(NodeKind, &'a Name), usize>,
    /// Every manifest entry: its kind, its index in its list, and its node in `listed` if it
    /// names one.
    entries: Vec<(NodeKind, usize, Option<usize>)>,
}

/// Every loaded node by kind and name, and the positions of the manifests; reports names
/// defined twice, names in `sys/` that are not built-ins, and built-ins restated differently.
fn index_loaded<'a>(
    nodes: &'a [(Node, Origin)],
    out: &mut Vec<Diagnostic>,
) -> (Loaded<'a>, Vec<usize>) {
    let empty = Catalog::default();
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
    (loaded, manifests)
}

/// The nodes the manifest lists, found among the loaded nodes or the built-ins; reports
/// entries listed twice or naming nothing, and loaded nodes the manifest does not list.
fn list_world<'a>(
    nodes: &'a [(Node, Origin)],
    manifest: &'a Manifest,
    msite: &Site,
    loaded: &Loaded<'a>,
    out: &mut Vec<Diagnostic>,
) -> Listing<'a> {
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
                    msite,
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
                        msite,
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
    Listing {
        listed,
        by_name,
        entries,
    }
}

/// Runs the checks of every area over the listed world.
fn check_areas<'a>(cx: &mut Cx<'a, '_>, manifest: &'a Manifest, msite: &Site) {
    for t in &manifest.triggers {
        cx.triggers.entry(&t.plan).or_default().push(t);
    }
    for (i, g) in manifest.defaults.cap_grants.iter().enumerate() {
        match cx.grants.entry(&g.name) {
            Entry::Vacant(e) => {
                e.insert(g);
            }
            Entry::Occupied(_) => cx.report(
                msite,
                &format!("/defaults/cap_grants/{i}/name"),
                Check::DuplicateGrant,
                format!("a second cap grant named `{}`", g.name),
            ),
        }
    }
    check_schemas(cx);
    let mut kinds: HashMap<&str, &Name> = HashMap::new();
    for i in 0..cx.listed.len() {
        let node = cx.listed[i].node;
        let site = cx.listed[i].site.clone();
        match node {
            Node::DefSchema(_) | Node::Manifest(_) => {}
            Node::DefModule(m) => check_module(cx, &site, m),
            Node::DefPlan(p) => check_plan(cx, &site, p),
            Node::DefCap(c) => check_cap(cx, &site, c),
            Node::DefPolicy(p) => check_policy(cx, &site, p),
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
                check_effect(cx, &site, e);
            }
            Node::DefSecret(s) => check_secret(cx, &site, s),
        }
    }
    check_manifest(cx, msite, manifest);
}

/// Fills in the manifest's hashes with the listed nodes' ids and builds the validated world;
/// `None` if any problem was reported.
fn finish(
    cx: &mut Cx<'_, '_>,
    entries: &[(NodeKind, usize, Option<usize>)],
    manifest: &Manifest,
    morigin: &Origin,
    msite: &Site,
    mut known: HashMap<ObjectId, Value>,
) -> Option<Validated> {
    // The id each listed node is listed by, where the manifest gives one and its value is known.
    let mut given = vec![None; cx.listed.len()];
    if !known.is_empty() {
        for (kind, i, li) in entries {
            if let (Some(li), Some(list)) = (li, manifest.refs(*kind))
                && let Some(h) = list[*i].known_hash()
                && known.contains_key(&h)
            {
                given[*li] = Some(h);
            }
        }
    }
    let mut ids: Vec<Option<(Value, ObjectId)>> = Vec::with_capacity(cx.listed.len());
    for (li, l) in cx.listed.iter().enumerate() {
        if let Some(v) = given[li].and_then(|h| known.remove(&h).map(|v| (v, h))) {
            ids.push(Some(v));
            continue;
        }
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
    for (kind, i, li) in entries {
        let Some(li) = li else { continue };
        let Some((_, id)) = &ids[*li] else { continue };
        let key = list_key(*kind).unwrap_or_default();
        let Some(list) = filled.refs_mut(*kind) else {
            continue;
        };
        let r: &mut NamedRef = &mut list[*i];
        if let Some(given) = r.known_hash()
            && given != *id
        {
            cx.report(
                msite,
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
                msite,
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
