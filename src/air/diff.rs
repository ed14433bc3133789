//! Node-level differences between two control planes: which nodes were added, removed or
//! changed, and for changed nodes which fields, by JSON pointer. Used by `aos air diff` and by
//! the manifest section of `aos diff`.

use std::collections::BTreeMap;

use crate::air::canon::node_from_value;
use crate::air::nodes::{Node, NodeKind};
use crate::air::validate::Validated;
use crate::codec::cbor::Value;
use crate::codec::diff::{Change, diff};
use crate::codec::json::Json;

/// A node's identity within a control plane: its kind and name (empty for the manifest).
pub type NodeKey = (NodeKind, String);

/// The nodes of a control plane, each as JSON, by key.
pub type NodeMap = BTreeMap<NodeKey, Json>;

/// The differences between two control planes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AirDiff {
    /// Nodes only in the second.
    pub added: Vec<NodeKey>,
    /// Nodes only in the first.
    pub removed: Vec<NodeKey>,
    /// Nodes in both whose JSON differs, with the field-level changes.
    pub changed: Vec<(NodeKey, Vec<Change>)>,
}

impl AirDiff {
    /// Whether the two control planes are equal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The key of a node.
#[must_use]
pub fn key(n: &Node) -> NodeKey {
    (
        n.kind(),
        n.name().map(ToString::to_string).unwrap_or_default(),
    )
}

/// How a key reads in text: `kind name`, or just `manifest`.
#[must_use]
pub fn label(k: &NodeKey) -> String {
    if k.1.is_empty() {
        k.0.to_string()
    } else {
        format!("{} {}", k.0, k.1)
    }
}

/// The canonical JSON of every node of a validated control plane and of its manifest: values
/// read back from their canonical encoding, so spelling differences (sugar vs tagged literals,
/// member order) never show as changes.
#[must_use]
pub fn canonical_nodes(v: &Validated) -> NodeMap {
    let mut out: NodeMap = v
        .nodes
        .iter()
        .map(|n| (key(&n.node), canonical_json(&n.value, &n.node)))
        .collect();
    let m = canonical_manifest(v);
    out.insert(key(&m), m.to_json());
    out
}

/// The manifest of `v` read back from its canonical value.
#[must_use]
pub fn canonical_manifest(v: &Validated) -> Node {
    node_from_value(&v.manifest_value).unwrap_or_else(|_| Node::Manifest(v.manifest.clone()))
}

/// A node's canonical JSON: its canonical value read back (literals in the tagged lens).
#[must_use]
pub fn canonical_json(value: &Value, fallback: &Node) -> Json {
    node_from_value(value).map_or_else(|_| fallback.to_json(), |n| n.to_json())
}

/// The differences between the node maps `a` and `b`.
#[must_use]
pub fn diff_nodes(a: &NodeMap, b: &NodeMap) -> AirDiff {
    let mut d = AirDiff::default();
    for (k, ja) in a {
        match b.get(k) {
            None => d.removed.push(k.clone()),
            Some(jb) => {
                let c = diff(ja, jb);
                if !c.is_empty() {
                    d.changed.push((k.clone(), c));
                }
            }
        }
    }
    d.added
        .extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    d
}
