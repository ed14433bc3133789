//! A canonical Merkle map (a hash array mapped trie) from byte-string keys to object ids,
//! stored as `mapnode` objects (`objects-spec/README.md` §11).
//!
//! The shape of the trie depends only on the set of (key, value) pairs, so equal maps have
//! equal root ids, equal subtrees are shared, and [`MerkleMap::diff`] skips every subtree
//! whose id is the same on both sides.
//!
//! Nodes are read and written through a [`NodeStore`]; [`MemNodeStore`] keeps them in memory
//! (and counts reads and writes), [`BatchNodeStore`] writes them into a store [`Batch`].

use std::cell::Cell;
use std::collections::HashMap;

use crate::codec::cbor::{self, Map, Value};
use crate::object::{Kind, ObjectId, hash};
use crate::store::{Batch, Store, StoreError};

/// Bits of BLAKE3(key) consumed per level.
pub const BITS_PER_LEVEL: usize = 4;
/// Slots per node (`2^BITS_PER_LEVEL`).
pub const FANOUT: usize = 1 << BITS_PER_LEVEL;
/// The deepest node depth: a node at this depth consumes the last nibble of the hash.
pub const MAX_DEPTH: u8 = 63;
/// The largest number of leaves a slot keeps inline as a bucket (except at [`MAX_DEPTH`]).
pub const BUCKET_MAX: usize = 4;

/// Decoded nodes by id, each with the path (slot nibbles) it was checked against; see
/// [`MerkleMap::get_cached`].
pub type NodeCache = HashMap<ObjectId, (std::sync::Arc<MapNode>, Vec<u8>)>;

/// The most nodes a [`NodeCache`] holds before it is cleared (about 20-50 MiB).
pub const NODE_CACHE_MAX: usize = 65_536;

/// A (key, value) pair of the map.
pub type Leaf = (Vec<u8>, ObjectId);

/// One difference between two maps: the key, its value in the first and in the second map.
pub type Change = (Vec<u8>, Option<ObjectId>, Option<ObjectId>);

/// Why bytes are not a canonical map node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// The bytes are not canonical CBOR.
    #[error(transparent)]
    Cbor(#[from] cbor::DecodeError),
    /// The CBOR value is not a canonical map node; the text says which rule is broken.
    #[error("non-canonical map node: {0}")]
    Structure(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, NodeError> {
    Err(NodeError::Structure(msg.into()))
}

/// Errors of map operations.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The node store failed (I/O, a missing object, ...).
    #[error("node store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A node read from the store is not canonical.
    #[error("map node {id}: {source}")]
    Node {
        /// The node's id.
        id: ObjectId,
        /// What is wrong with it.
        source: NodeError,
    },
    /// A child node sits at the wrong depth.
    #[error("map node {id}: depth {found}, expected {expected}")]
    Depth {
        /// The node's id.
        id: ObjectId,
        /// The depth it declares.
        found: u8,
        /// The depth of the slot that links it.
        expected: u8,
    },
}

/// Where a [`MerkleMap`] reads and writes its nodes (payloads of `mapnode` objects).
pub trait NodeStore {
    /// The payload of the node `id`.
    ///
    /// # Errors
    /// [`MapError::Store`] if it cannot be read.
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError>;
    /// Stores a node payload and returns its id (`hash(Kind::MapNode, bytes)`).
    ///
    /// # Errors
    /// [`MapError::Store`] if it cannot be written.
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError>;
}

impl<T: NodeStore + ?Sized> NodeStore for &mut T {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        (**self).get(id)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        (**self).put(bytes)
    }
}

/// An in-memory [`NodeStore`] that counts reads and writes.
#[derive(Debug, Default)]
pub struct MemNodeStore {
    nodes: HashMap<ObjectId, Vec<u8>>,
    reads: Cell<usize>,
    writes: usize,
    new_nodes: usize,
}

impl MemNodeStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of [`NodeStore::get`] calls so far.
    #[must_use]
    pub fn reads(&self) -> usize {
        self.reads.get()
    }
    /// Number of [`NodeStore::put`] calls so far.
    #[must_use]
    pub fn writes(&self) -> usize {
        self.writes
    }
    /// Number of puts that stored a node not already present.
    #[must_use]
    pub fn new_nodes(&self) -> usize {
        self.new_nodes
    }
    /// Number of distinct nodes held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether no node is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Resets the read and write counters.
    pub fn reset_counters(&mut self) {
        self.reads.set(0);
        self.writes = 0;
        self.new_nodes = 0;
    }
}

/// The store had no node with this id.
#[derive(Debug, thiserror::Error)]
#[error("no map node {0}")]
pub struct MissingNode(pub ObjectId);

impl NodeStore for MemNodeStore {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        self.reads.set(self.reads.get() + 1);
        self.nodes
            .get(id)
            .cloned()
            .ok_or_else(|| MapError::Store(Box::new(MissingNode(*id))))
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        self.writes += 1;
        let id = hash(Kind::MapNode, bytes);
        if self.nodes.insert(id, bytes.to_vec()).is_none() {
            self.new_nodes += 1;
        }
        Ok(id)
    }
}

/// A [`NodeStore`] over a [`Store`] and one of its [`Batch`]es: new nodes go into the batch
/// (and are readable from memory until it commits); other nodes are read from the store.
pub struct BatchNodeStore<'s> {
    store: &'s Store,
    batch: Batch<'s>,
    pending: HashMap<ObjectId, Vec<u8>>,
}

impl<'s> BatchNodeStore<'s> {
    /// Starts a batch on `store`.
    #[must_use]
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            batch: store.batch(),
            pending: HashMap::new(),
        }
    }
    /// Commits the batch, making the new nodes durable.
    ///
    /// # Errors
    /// As [`Batch::commit`].
    pub fn commit(self) -> Result<crate::store::BatchSummary, StoreError> {
        self.batch.commit()
    }
}

impl NodeStore for BatchNodeStore<'_> {
    fn get(&self, id: &ObjectId) -> Result<Vec<u8>, MapError> {
        if let Some(b) = self.pending.get(id) {
            return Ok(b.clone());
        }
        let obj = self
            .store
            .get(id)
            .map_err(|e| MapError::Store(Box::new(e)))?;
        if obj.kind != Kind::MapNode {
            return Err(MapError::Node {
                id: *id,
                source: NodeError::Structure(format!("object is a {}, not a mapnode", obj.kind)),
            });
        }
        Ok(obj.data)
    }
    fn put(&mut self, bytes: &[u8]) -> Result<ObjectId, MapError> {
        let id = self
            .batch
            .add(Kind::MapNode, bytes)
            .map_err(|e| MapError::Store(Box::new(e)))?;
        self.pending.entry(id).or_insert_with(|| bytes.to_vec());
        Ok(id)
    }
}

/// What one occupied slot of a node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A link to the child node one level down.
    Child(ObjectId),
    /// Leaves sorted by key, 1 to [`BUCKET_MAX`] of them (any number ≥ 1 at [`MAX_DEPTH`]).
    Bucket(Vec<Leaf>),
}

/// One decoded map node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapNode {
    /// Depth in the trie: the root is 0; the node consumes hash nibble `depth`.
    pub depth: u8,
    /// Occupied slots in increasing slot order.
    pub slots: Vec<(u8, Slot)>,
}

/// BLAKE3 of a key: the path of the key in the trie.
#[must_use]
pub fn key_hash(key: &[u8]) -> [u8; 32] {
    *blake3::hash(key).as_bytes()
}

/// Nibble `depth` (0..=63) of a hash, high nibble of each byte first.
#[must_use]
pub fn nibble(h: &[u8; 32], depth: u8) -> u8 {
    let b = h[usize::from(depth / 2)];
    if depth.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

impl MapNode {
    /// The empty root node.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            depth: 0,
            slots: Vec::new(),
        }
    }

    /// Number of leaves held inline (in buckets), and whether any slot links a child.
    fn inline_count(&self) -> (usize, bool) {
        let mut n = 0;
        let mut child = false;
        for (_, s) in &self.slots {
            match s {
                Slot::Child(_) => child = true,
                Slot::Bucket(l) => n += l.len(),
            }
        }
        (n, child)
    }

    /// The canonical encoding (the `mapnode` payload).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut bitmap: u64 = 0;
        let mut entries = Vec::with_capacity(self.slots.len());
        for (slot, s) in &self.slots {
            bitmap |= 1 << slot;
            entries.push(match s {
                Slot::Child(id) => Value::Link(*id),
                Slot::Bucket(leaves) => Value::Array(
                    leaves
                        .iter()
                        .map(|(k, v)| Value::Array(vec![Value::Bytes(k.clone()), Value::Link(*v)]))
                        .collect(),
                ),
            });
        }
        let mut m = Map::new();
        m.insert("b".into(), bitmap.into());
        m.insert("d".into(), u64::from(self.depth).into());
        m.insert("e".into(), Value::Array(entries));
        cbor::encode(&Value::Map(m))
    }

    /// Decodes and checks a node payload strictly: only the canonical encoding of a node
    /// that [`MerkleMap`] itself would write is accepted.
    ///
    /// # Errors
    /// [`NodeError`] naming the first rule broken.
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeError> {
        let Value::Map(m) = cbor::decode(bytes)? else {
            return bad("not a map");
        };
        let keys: Vec<&Value> = m.entries().iter().map(|(k, _)| k).collect();
        if keys != [&Value::from("b"), &Value::from("d"), &Value::from("e")] {
            return bad("keys must be exactly \"b\", \"d\", \"e\"");
        }
        let int = |k: &str, max: i128| -> Result<i128, NodeError> {
            match m.get_text(k) {
                Some(Value::Int(i)) if (0..=max).contains(&i.get()) => Ok(i.get()),
                _ => bad(format!("\"{k}\" must be an integer 0..={max}")),
            }
        };
        let bitmap = int("b", (1 << FANOUT) - 1)?;
        let depth = u8::try_from(int("d", i128::from(MAX_DEPTH))?)
            .map_err(|_| NodeError::Structure("depth out of range".into()))?;
        let Some(Value::Array(entries)) = m.get_text("e") else {
            return bad("\"e\" must be an array");
        };
        if entries.len() != bitmap.count_ones() as usize {
            return bad(format!(
                "{} entries but {} bits set in the bitmap",
                entries.len(),
                bitmap.count_ones()
            ));
        }
        let occupied = (0..FANOUT as u8).filter(|s| bitmap & (1 << s) != 0);
        let mut slots = Vec::with_capacity(entries.len());
        for (slot, e) in occupied.zip(entries) {
            let s = match e {
                Value::Link(id) => {
                    if depth == MAX_DEPTH {
                        return bad(format!(
                            "slot {slot}: a node at depth {MAX_DEPTH} has no children"
                        ));
                    }
                    Slot::Child(*id)
                }
                Value::Array(leaves) => {
                    if leaves.is_empty() {
                        return bad(format!("slot {slot}: empty bucket"));
                    }
                    if depth < MAX_DEPTH && leaves.len() > BUCKET_MAX {
                        return bad(format!(
                            "slot {slot}: bucket of {} leaves (at most {BUCKET_MAX})",
                            leaves.len()
                        ));
                    }
                    let mut out: Vec<Leaf> = Vec::with_capacity(leaves.len());
                    for l in leaves {
                        let (k, v) = match l {
                            Value::Array(kv) => match kv.as_slice() {
                                [Value::Bytes(k), Value::Link(v)] => (k, v),
                                _ => {
                                    return bad(format!(
                                        "slot {slot}: a leaf must be [bytes, link]"
                                    ));
                                }
                            },
                            _ => return bad(format!("slot {slot}: a leaf must be [bytes, link]")),
                        };
                        if nibble(&key_hash(k), depth) != slot {
                            return bad(format!("slot {slot}: a key hashes to another slot"));
                        }
                        if let Some((prev, _)) = out.last()
                            && prev.as_slice() >= k.as_slice()
                        {
                            return bad(format!(
                                "slot {slot}: bucket keys not strictly increasing"
                            ));
                        }
                        out.push((k.clone(), *v));
                    }
                    Slot::Bucket(out)
                }
                _ => return bad(format!("slot {slot}: entry must be a link or an array")),
            };
            slots.push((slot, s));
        }
        let node = Self { depth, slots };
        if depth > 0 {
            let (n, child) = node.inline_count();
            if !child && n <= BUCKET_MAX {
                return bad(format!(
                    "a node at depth {depth} with {n} leaves and no child must be collapsed into a bucket"
                ));
            }
        }
        Ok(node)
    }
}

/// A change to apply: hash, key, new value (`None` removes).
struct Edit {
    hash: [u8; 32],
    key: Vec<u8>,
    value: Option<ObjectId>,
}

/// Operations on Merkle maps whose nodes live in a [`NodeStore`]. A map is named by the id
/// of its root node; maps are persistent (operations return new roots).
pub struct MerkleMap<S> {
    store: S,
}

impl<S: NodeStore> MerkleMap<S> {
    /// Works against `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }
    /// The node store.
    pub fn store(&self) -> &S {
        &self.store
    }
    /// The node store, mutably.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
    /// Gives back the node store.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Stores the empty root node and returns its id.
    ///
    /// # Errors
    /// Store errors.
    pub fn empty_root(&mut self) -> Result<ObjectId, MapError> {
        self.store.put(&MapNode::empty().encode())
    }

    /// The id of the empty map, without storing anything.
    #[must_use]
    pub fn empty_root_id() -> ObjectId {
        hash(Kind::MapNode, &MapNode::empty().encode())
    }

    /// Reads the node `id` reached through the slots `path` (one nibble per level above it):
    /// checks its depth is `path.len()` and every key it holds inline lies on `path`.
    fn load(&self, id: &ObjectId, path: &[u8]) -> Result<MapNode, MapError> {
        let bytes = self.store.get(id)?;
        let node = MapNode::decode(&bytes).map_err(|source| MapError::Node { id: *id, source })?;
        if usize::from(node.depth) != path.len() {
            return Err(MapError::Depth {
                id: *id,
                found: node.depth,
                expected: u8::try_from(path.len()).unwrap_or(u8::MAX),
            });
        }
        if !path.is_empty() {
            for (_, s) in &node.slots {
                if let Slot::Bucket(leaves) = s {
                    for (k, _) in leaves {
                        let h = key_hash(k);
                        if (0..node.depth).any(|i| nibble(&h, i) != path[usize::from(i)]) {
                            return Err(MapError::Node {
                                id: *id,
                                source: NodeError::Structure(
                                    "a key does not lie on the path to the node".into(),
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(node)
    }

    /// The value under `key`; reads one node per level.
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn get(&self, root: &ObjectId, key: &[u8]) -> Result<Option<ObjectId>, MapError> {
        self.get_cached(root, key, &mut NodeCache::new())
    }

    /// [`MerkleMap::get`] through `cache`, which keeps decoded nodes (with the path they were
    /// checked against) across calls: upper levels of a large map are then read and checked
    /// once. Ids name contents, so a cache never goes stale; it is cleared when it grows past
    /// [`NODE_CACHE_MAX`] nodes.
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn get_cached(
        &self,
        root: &ObjectId,
        key: &[u8],
        cache: &mut NodeCache,
    ) -> Result<Option<ObjectId>, MapError> {
        let h = key_hash(key);
        let path: Vec<u8> = (0..=MAX_DEPTH).map(|i| nibble(&h, i)).collect();
        let mut node = self.load_cached(root, &[], cache)?;
        loop {
            let n = nibble(&h, node.depth);
            let Ok(i) = node.slots.binary_search_by_key(&n, |(s, _)| *s) else {
                return Ok(None);
            };
            match &node.slots[i].1 {
                Slot::Bucket(leaves) => {
                    return Ok(leaves
                        .binary_search_by(|(k, _)| k.as_slice().cmp(key))
                        .ok()
                        .map(|j| leaves[j].1));
                }
                Slot::Child(id) => {
                    let id = *id;
                    let below = &path[..=usize::from(node.depth)];
                    node = self.load_cached(&id, below, cache)?;
                }
            }
        }
    }

    fn load_cached(
        &self,
        id: &ObjectId,
        path: &[u8],
        cache: &mut NodeCache,
    ) -> Result<std::sync::Arc<MapNode>, MapError> {
        if let Some((n, p)) = cache.get(id)
            && p.as_slice() == path
        {
            return Ok(std::sync::Arc::clone(n));
        }
        let n = std::sync::Arc::new(self.load(id, path)?);
        if cache.len() >= NODE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(*id, (std::sync::Arc::clone(&n), path.to_vec()));
        Ok(n)
    }

    /// Sets `key` to `value`; returns the new root.
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn insert(
        &mut self,
        root: &ObjectId,
        key: &[u8],
        value: ObjectId,
    ) -> Result<ObjectId, MapError> {
        self.apply(root, [(key.to_vec(), Some(value))])
    }

    /// Removes `key` (if present); returns the new root.
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn remove(&mut self, root: &ObjectId, key: &[u8]) -> Result<ObjectId, MapError> {
        self.apply(root, [(key.to_vec(), None)])
    }

    /// Applies a batch of changes (`Some` sets, `None` removes; for a repeated key the last
    /// change wins) and returns the new root. Only the nodes on changed paths are rewritten.
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn apply(
        &mut self,
        root: &ObjectId,
        changes: impl IntoIterator<Item = (Vec<u8>, Option<ObjectId>)>,
    ) -> Result<ObjectId, MapError> {
        let mut last: HashMap<Vec<u8>, Option<ObjectId>> = HashMap::new();
        for (k, v) in changes {
            last.insert(k, v);
        }
        let mut edits: Vec<Edit> = last
            .into_iter()
            .map(|(key, value)| Edit {
                hash: key_hash(&key),
                key,
                value,
            })
            .collect();
        if edits.is_empty() {
            return Ok(*root);
        }
        edits.sort_by(|a, b| (a.hash, &a.key).cmp(&(b.hash, &b.key)));
        let node = self.load(root, &[])?;
        let new = self.apply_node(&node, &[], &edits)?;
        if new == node {
            return Ok(*root);
        }
        self.store.put(&new.encode())
    }

    /// Applies `edits` (sorted by hash, all in this node's subtree) to `node`, writing changed
    /// descendants; the returned node itself is not written.
    fn apply_node(
        &mut self,
        node: &MapNode,
        path: &[u8],
        edits: &[Edit],
    ) -> Result<MapNode, MapError> {
        let depth = node.depth;
        let mut slots: Vec<(u8, Slot)> = Vec::with_capacity(node.slots.len() + 1);
        let mut old = node.slots.iter().peekable();
        let mut rest = edits;
        while !rest.is_empty() {
            let n = nibble(&rest[0].hash, depth);
            let split = rest
                .iter()
                .position(|e| nibble(&e.hash, depth) != n)
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(split);
            rest = tail;
            while let Some((s, _)) = old.peek()
                && *s < n
            {
                slots.extend(old.next().cloned());
            }
            let existing = match old.peek() {
                Some((s, _)) if *s == n => old.next().map(|(_, x)| x),
                _ => None,
            };
            if let Some(slot) = self.apply_slot(&child_path(path, n), existing, group)? {
                slots.push((n, slot));
            }
        }
        slots.extend(old.cloned());
        Ok(MapNode { depth, slots })
    }

    /// The new content of the slot at `path` (the node's path and the slot) after `edits`.
    fn apply_slot(
        &mut self,
        path: &[u8],
        existing: Option<&Slot>,
        edits: &[Edit],
    ) -> Result<Option<Slot>, MapError> {
        let depth = depth_of(path) - 1;
        match existing {
            Some(Slot::Child(id)) => {
                let child = self.load(id, path)?;
                let new = self.apply_node(&child, path, edits)?;
                if new == child {
                    return Ok(Some(Slot::Child(*id)));
                }
                let (n, has_child) = new.inline_count();
                if !has_child && n <= BUCKET_MAX {
                    let mut leaves: Vec<Leaf> = new
                        .slots
                        .into_iter()
                        .flat_map(|(_, s)| match s {
                            Slot::Bucket(l) => l,
                            Slot::Child(_) => Vec::new(),
                        })
                        .collect();
                    if leaves.is_empty() {
                        return Ok(None);
                    }
                    leaves.sort();
                    return Ok(Some(Slot::Bucket(leaves)));
                }
                Ok(Some(Slot::Child(self.store.put(&new.encode())?)))
            }
            bucket => {
                let mut leaves: Vec<Leaf> = match bucket {
                    Some(Slot::Bucket(l)) => l.clone(),
                    _ => Vec::new(),
                };
                for e in edits {
                    match (leaves.binary_search_by(|(k, _)| k.cmp(&e.key)), e.value) {
                        (Ok(i), Some(v)) => leaves[i].1 = v,
                        (Ok(i), None) => {
                            leaves.remove(i);
                        }
                        (Err(i), Some(v)) => leaves.insert(i, (e.key.clone(), v)),
                        (Err(_), None) => {}
                    }
                }
                self.slot_for(depth, leaves)
            }
        }
    }

    /// The canonical slot content for `leaves` (sorted by key) in a node at `depth`,
    /// writing any child nodes it needs.
    fn slot_for(&mut self, depth: u8, leaves: Vec<Leaf>) -> Result<Option<Slot>, MapError> {
        if leaves.is_empty() {
            return Ok(None);
        }
        if leaves.len() <= BUCKET_MAX || depth == MAX_DEPTH {
            return Ok(Some(Slot::Bucket(leaves)));
        }
        let mut hashed: Vec<([u8; 32], Leaf)> =
            leaves.into_iter().map(|l| (key_hash(&l.0), l)).collect();
        hashed.sort_by(|a, b| (a.0, &a.1.0).cmp(&(b.0, &b.1.0)));
        let id = self.build(depth + 1, hashed)?;
        Ok(Some(Slot::Child(id)))
    }

    /// Writes the node at `depth` holding `leaves` (sorted by hash, more than
    /// [`BUCKET_MAX`] of them) and its descendants; returns its id.
    fn build(&mut self, depth: u8, leaves: Vec<([u8; 32], Leaf)>) -> Result<ObjectId, MapError> {
        let mut slots = Vec::new();
        let mut it = leaves.into_iter().peekable();
        while let Some((h, l)) = it.next() {
            let n = nibble(&h, depth);
            let mut group = vec![l];
            while let Some((h2, _)) = it.peek()
                && nibble(h2, depth) == n
            {
                group.extend(it.next().map(|x| x.1));
            }
            group.sort();
            if let Some(s) = self.slot_for(depth, group)? {
                slots.push((n, s));
            }
        }
        self.store.put(&MapNode { depth, slots }.encode())
    }

    /// Every (key, value) pair, ordered by (BLAKE3(key), key).
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn iter(&self, root: &ObjectId) -> Result<Vec<Leaf>, MapError> {
        let mut out = Vec::new();
        self.collect(root, &[], &mut out)?;
        Ok(out)
    }

    fn collect(&self, id: &ObjectId, path: &[u8], out: &mut Vec<Leaf>) -> Result<(), MapError> {
        let node = self.load(id, path)?;
        for (n, s) in &node.slots {
            self.collect_slot(&child_path(path, *n), s, out)?;
        }
        Ok(())
    }

    /// Appends the pairs of the slot at `path` (its node's path and the slot).
    fn collect_slot(&self, path: &[u8], s: &Slot, out: &mut Vec<Leaf>) -> Result<(), MapError> {
        match s {
            Slot::Child(c) => self.collect(c, path, out),
            Slot::Bucket(l) => {
                out.extend(l.iter().cloned());
                Ok(())
            }
        }
    }

    /// The keys whose values differ between the maps `a` and `b`, with the value in each,
    /// ordered by (BLAKE3(key), key). Subtrees with equal ids are skipped, so the work is
    /// proportional to the differences (times the depth).
    ///
    /// # Errors
    /// Store errors or malformed nodes.
    pub fn diff(&self, a: &ObjectId, b: &ObjectId) -> Result<Vec<Change>, MapError> {
        let mut out = Vec::new();
        if a != b {
            self.diff_nodes(a, b, &[], &mut out)?;
        }
        Ok(out)
    }

    fn diff_nodes(
        &self,
        a: &ObjectId,
        b: &ObjectId,
        path: &[u8],
        out: &mut Vec<Change>,
    ) -> Result<(), MapError> {
        let na = self.load(a, path)?;
        let nb = self.load(b, path)?;
        let (mut ia, mut ib) = (na.slots.iter().peekable(), nb.slots.iter().peekable());
        loop {
            let (sa, sb) = match (ia.peek(), ib.peek()) {
                (None, None) => return Ok(()),
                (Some((x, _)), Some((y, _))) if x == y => (ia.next(), ib.next()),
                (Some((x, _)), Some((y, _))) if x < y => (ia.next(), None),
                (Some(_), None) => (ia.next(), None),
                _ => (None, ib.next()),
            };
            let Some(n) = sa.or(sb).map(|x| x.0) else {
                return Ok(());
            };
            let path = child_path(path, n);
            match (sa.map(|x| &x.1), sb.map(|x| &x.1)) {
                (Some(Slot::Child(x)), Some(Slot::Child(y))) => {
                    if x != y {
                        self.diff_nodes(x, y, &path, out)?;
                    }
                }
                (x, y) => {
                    let mut la = Vec::new();
                    let mut lb = Vec::new();
                    if let Some(s) = x {
                        self.collect_slot(&path, s, &mut la)?;
                    }
                    if let Some(s) = y {
                        self.collect_slot(&path, s, &mut lb)?;
                    }
                    la.sort();
                    lb.sort();
                    let mut changes = Vec::new();
                    merge_diff(la, lb, &mut changes);
                    changes.sort_by_cached_key(|c| (key_hash(&c.0), c.0.clone()));
                    out.extend(changes);
                }
            }
        }
    }
}

/// The path of slot `slot` of the node at `path`.
fn child_path(path: &[u8], slot: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(slot);
    p
}

/// The depth of the node at `path` (at most 64 for a slot path).
fn depth_of(path: &[u8]) -> u8 {
    u8::try_from(path.len()).unwrap_or(u8::MAX)
}

/// Appends the differences between two key-sorted leaf lists.
fn merge_diff(a: Vec<Leaf>, b: Vec<Leaf>, out: &mut Vec<Change>) {
    let mut ia = a.into_iter().peekable();
    let mut ib = b.into_iter().peekable();
    loop {
        match (ia.peek(), ib.peek()) {
            (None, None) => return,
            (Some((ka, _)), Some((kb, _))) if ka == kb => {
                if let (Some((k, va)), Some((_, vb))) = (ia.next(), ib.next())
                    && va != vb
                {
                    out.push((k, Some(va), Some(vb)));
                }
            }
            (Some((ka, _)), Some((kb, _))) if ka < kb => {
                out.extend(ia.next().map(|(k, v)| (k, Some(v), None)));
            }
            (Some(_), None) => out.extend(ia.next().map(|(k, v)| (k, Some(v), None))),
            _ => out.extend(ib.next().map(|(k, v)| (k, None, Some(v)))),
        }
    }
}

#[cfg(test)]
#[path = "mapnode_tests.rs"]
mod tests;
