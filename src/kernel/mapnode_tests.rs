use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn val(n: u64) -> ObjectId {
    hash(Kind::Value, &cbor::encode(&Value::from(n)))
}

fn key(n: u64) -> Vec<u8> {
    format!("cell-{n}").into_bytes()
}

fn build(pairs: &BTreeMap<Vec<u8>, ObjectId>) -> (MerkleMap<MemNodeStore>, ObjectId) {
    let mut m = MerkleMap::new(MemNodeStore::new());
    let root = m.empty_root().unwrap();
    let root = m
        .apply(&root, pairs.iter().map(|(k, v)| (k.clone(), Some(*v))))
        .unwrap();
    (m, root)
}

/// Checks every reachable node decodes and re-encodes to itself; returns the max depth.
fn check_tree(m: &MerkleMap<MemNodeStore>, id: &ObjectId, depth: u8) -> u8 {
    let bytes = m.store().get(id).unwrap();
    let node = MapNode::decode(&bytes).unwrap();
    assert_eq!(node.depth, depth);
    assert_eq!(node.encode(), bytes);
    let mut max = depth;
    for (_, s) in &node.slots {
        if let Slot::Child(c) = s {
            max = max.max(check_tree(m, c, depth + 1));
        }
    }
    max
}

fn model_diff(
    a: &BTreeMap<Vec<u8>, ObjectId>,
    b: &BTreeMap<Vec<u8>, ObjectId>,
) -> BTreeSet<Change> {
    let keys: BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).copied(), b.get(k).copied());
            (x != y).then(|| (k.clone(), x, y))
        })
        .collect()
}

#[test]
fn empty_root_encoding() {
    let bytes = MapNode::empty().encode();
    // {"b": 0, "d": 0, "e": []}
    assert_eq!(
        bytes,
        [0xa3, 0x61, b'b', 0, 0x61, b'd', 0, 0x61, b'e', 0x80]
    );
    let mut m = MerkleMap::new(MemNodeStore::new());
    let root = m.empty_root().unwrap();
    assert_eq!(root, MerkleMap::<MemNodeStore>::empty_root_id());
    assert_eq!(m.get(&root, b"x").unwrap(), None);
    assert!(m.iter(&root).unwrap().is_empty());
    assert_eq!(m.remove(&root, b"x").unwrap(), root);
}

#[test]
fn decode_rejects_non_canonical_nodes() {
    let enc = |v: Value| cbor::encode(&v);
    let node = |b: u64, d: u64, e: Vec<Value>| {
        let mut m = Map::new();
        m.insert("b".into(), b.into());
        m.insert("d".into(), d.into());
        m.insert("e".into(), Value::Array(e));
        enc(Value::Map(m))
    };
    let leaf = |k: &[u8], v: u64| Value::Array(vec![Value::Bytes(k.to_vec()), Value::Link(val(v))]);
    let k = b"a".to_vec();
    let s = u64::from(nibble(&key_hash(&k), 0));
    let s1 = u64::from(nibble(&key_hash(&k), 1));
    // The canonical one-leaf root is accepted.
    let good = node(1 << s, 0, vec![Value::Array(vec![leaf(&k, 1)])]);
    assert!(MapNode::decode(&good).is_ok());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff], "non-canonical CBOR"),
        (enc(Value::from(1u64)), "not a map"),
        (node(1 << s, 0, vec![]), "entries but"),
        (
            node(
                1 << ((s + 1) % 16),
                0,
                vec![Value::Array(vec![leaf(&k, 1)])],
            ),
            "another slot",
        ),
        (node(1 << s, 0, vec![Value::Array(vec![])]), "empty bucket"),
        (node(1 << 16, 0, vec![]), "\"b\" must be"),
        (node(0, 64, vec![]), "\"d\" must be"),
        (
            node(1 << s1, 1, vec![Value::Array(vec![leaf(&k, 1)])]),
            "collapsed",
        ),
        (
            node(
                1 << s,
                0,
                vec![Value::Array(vec![leaf(&k, 1), leaf(&k, 2)])],
            ),
            "strictly",
        ),
        (node(1 << s, 0, vec![Value::from(3u64)]), "link or an array"),
    ];
    for (bytes, want) in cases {
        let err = MapNode::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains(want), "{err:?} should mention {want:?}");
    }
}

#[test]
fn insert_get_remove_roundtrip() {
    let mut m = MerkleMap::new(MemNodeStore::new());
    let empty = m.empty_root().unwrap();
    let mut root = empty;
    for i in 0..300 {
        root = m.insert(&root, &key(i), val(i)).unwrap();
    }
    check_tree(&m, &root, 0);
    for i in 0..300 {
        assert_eq!(m.get(&root, &key(i)).unwrap(), Some(val(i)));
    }
    assert_eq!(m.get(&root, b"nope").unwrap(), None);
    for i in 0..300 {
        root = m.remove(&root, &key(i)).unwrap();
    }
    assert_eq!(root, empty);
}

#[test]
fn store_backed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::init(dir.path()).unwrap();
    let root = {
        let mut m = MerkleMap::new(BatchNodeStore::new(&store));
        let mut root = m.empty_root().unwrap();
        root = m
            .apply(&root, (0..50).map(|i| (key(i), Some(val(i)))))
            .unwrap();
        assert_eq!(m.get(&root, &key(7)).unwrap(), Some(val(7)));
        m.into_store().commit().unwrap();
        root
    };
    let m = MerkleMap::new(BatchNodeStore::new(&store));
    assert_eq!(m.get(&root, &key(42)).unwrap(), Some(val(42)));
    assert_eq!(m.iter(&root).unwrap().len(), 50);
}

/// 100,000 keys; changing 10 writes and diff reads O(10 × depth) nodes.
#[test]
fn large_map_small_change_is_cheap() {
    let n = 100_000u64;
    let mut m = MerkleMap::new(MemNodeStore::new());
    let empty = m.empty_root().unwrap();
    let a = m
        .apply(&empty, (0..n).map(|i| (key(i), Some(val(i)))))
        .unwrap();
    let total = m.store().len();
    let depth = check_tree(&m, &a, 0) as usize + 1;
    m.store_mut().reset_counters();
    // 5 updates, 3 inserts, 2 removes.
    let changes: Vec<(Vec<u8>, Option<ObjectId>)> = (0..5)
        .map(|i| (key(i * 997), Some(val(n + i))))
        .chain((0..3).map(|i| (key(n + i), Some(val(i)))))
        .chain((0..2).map(|i| (key(50_000 + i), None)))
        .collect();
    let b = m.apply(&a, changes.clone()).unwrap();
    let written = m.store().new_nodes();
    let apply_reads = m.store().reads();
    eprintln!(
        "100k map: {total} nodes, depth {depth}; 10 changes wrote {written} new nodes \
         ({} puts), read {apply_reads}",
        m.store().writes()
    );
    assert!(written <= 10 * depth, "{written} > 10 × {depth}");
    m.store_mut().reset_counters();
    let d = m.diff(&a, &b).unwrap();
    let diff_reads = m.store().reads();
    eprintln!("diff: {} changes, read {diff_reads} nodes", d.len());
    assert_eq!(d.len(), 10);
    assert!(
        diff_reads <= 2 * 10 * depth,
        "{diff_reads} > 2 × 10 × {depth}"
    );
    for (k, _) in &changes {
        assert_eq!(
            m.get(&b, k).unwrap(),
            changes.iter().find(|c| &c.0 == k).unwrap().1
        );
    }
    // The same set built directly has the same root.
    let undo: Vec<_> = changes
        .iter()
        .map(|(k, _)| (k.clone(), m.get(&a, k).unwrap()))
        .collect();
    let back = m.apply(&b, undo).unwrap();
    assert_eq!(back, a);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u8),
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
        1 => any::<u8>().prop_map(Op::Remove),
    ]
}

fn small_key(k: u8) -> Vec<u8> {
    vec![k % 97]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Inserting a set in any order gives the root of building it at once.
    #[test]
    fn shape_is_order_independent(
        pairs in proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..6), any::<u8>(), 0..200),
        seed in any::<u64>(),
    ) {
        let model: BTreeMap<Vec<u8>, ObjectId> =
            pairs.into_iter().map(|(k, v)| (k, val(u64::from(v)))).collect();
        let (mut m, direct) = build(&model);
        let mut items: Vec<_> = model.iter().collect();
        // Deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..items.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            items.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut root = m.empty_root().unwrap();
        for (k, v) in items {
            root = m.insert(&root, k, *v).unwrap();
        }
        prop_assert_eq!(root, direct);
        check_tree(&m, &root, 0);
        let listed: BTreeMap<Vec<u8>, ObjectId> = m.iter(&root).unwrap().into_iter().collect();
        prop_assert_eq!(listed, model);
    }

    /// Random inserts and removes: the root equals a fresh build of the final set, `get`
    /// agrees with the model, and `diff` against every earlier state equals the model diff.
    #[test]
    fn ops_match_model(ops in proptest::collection::vec(op(), 0..250), batch in 1usize..40) {
        let mut model: BTreeMap<Vec<u8>, ObjectId> = BTreeMap::new();
        let mut m = MerkleMap::new(MemNodeStore::new());
        let mut root = m.empty_root().unwrap();
        let mut history = vec![(root, model.clone())];
        for chunk in ops.chunks(batch) {
            let mut changes = Vec::new();
            for o in chunk {
                match *o {
                    Op::Insert(k, v) => {
                        model.insert(small_key(k), val(u64::from(v)));
                        changes.push((small_key(k), Some(val(u64::from(v)))));
                    }
                    Op::Remove(k) => {
                        model.remove(&small_key(k));
                        changes.push((small_key(k), None));
                    }
                }
            }
            root = if batch == 1 {
                match &changes[0] {
                    (k, Some(v)) => m.insert(&root, k, *v).unwrap(),
                    (k, None) => m.remove(&root, k).unwrap(),
                }
            } else {
                m.apply(&root, changes).unwrap()
            };
            history.push((root, model.clone()));
        }
        check_tree(&m, &root, 0);
        let (m2, direct) = build(&model);
        prop_assert_eq!(root, direct);
        drop(m2);
        for k in 0..100u8 {
            prop_assert_eq!(m.get(&root, &[k]).unwrap(), model.get(&vec![k]).copied());
        }
        for (old, old_model) in history.iter().step_by(3) {
            let d: BTreeSet<Change> = m.diff(old, &root).unwrap().into_iter().collect();
            prop_assert_eq!(d, model_diff(old_model, &model));
            let back: BTreeSet<Change> = m.diff(&root, old).unwrap().into_iter().collect();
            prop_assert_eq!(back, model_diff(&model, old_model));
        }
    }
}

#[test]
fn child_off_its_path_is_rejected() {
    // Five keys in root slot 0, placed in a child linked from slot 1 instead.
    let keys: Vec<Vec<u8>> = (0u64..)
        .map(key)
        .filter(|k| nibble(&key_hash(k), 0) == 0)
        .take(5)
        .collect();
    let mut slots: Vec<(u8, Slot)> = Vec::new();
    for k in &keys {
        let n = nibble(&key_hash(k), 1);
        match slots.iter_mut().find(|(s, _)| *s == n) {
            Some((_, Slot::Bucket(l))) => {
                l.push((k.clone(), val(1)));
                l.sort();
            }
            _ => slots.push((n, Slot::Bucket(vec![(k.clone(), val(1))]))),
        }
    }
    slots.sort_by_key(|(s, _)| *s);
    let mut m = MerkleMap::new(MemNodeStore::new());
    let child = MapNode { depth: 1, slots };
    let child_bytes = child.encode();
    assert_eq!(MapNode::decode(&child_bytes).unwrap(), child);
    let child_id = m.store_mut().put(&child_bytes).unwrap();
    let root = MapNode {
        depth: 0,
        slots: vec![(1, Slot::Child(child_id))],
    };
    let root = m.store_mut().put(&root.encode()).unwrap();
    let err = m.iter(&root).unwrap_err().to_string();
    assert!(err.contains("path"), "{err}");
}

/// Pins the format: the root of {"a": value 1, …, "f": value 6} (more than one bucket's worth).
#[test]
fn golden_root() {
    let model: BTreeMap<Vec<u8>, ObjectId> = (0..6u8)
        .map(|i| (vec![b'a' + i], val(u64::from(i) + 1)))
        .collect();
    let (m, root) = build(&model);
    check_tree(&m, &root, 0);
    eprintln!("golden root {root}");
    assert_eq!(root.to_string(), GOLDEN_ROOT);
}

const GOLDEN_ROOT: &str = "b3:0427b96e791071d3b47648ac050ce5b7ae137715e581cda9648e669dc10be42d";
