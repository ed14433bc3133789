//! Manifest switches through the library, end to end: a world switches to a manifest that
//! changes a module's WASM and adds a keyed reducer, keeps its reducers' state by name, opens
//! again from its checkpoint and from markers, is seen before and after the switch, verifies
//! from genesis and from snapshots on both sides, detects tampering, and refuses switches (and
//! receipts) without changing anything.

use std::path::Path;

use crate::common::world::{CEv, TempStore, plain_state};
use crate::common::{Env, json};
use aos::air::load::{Origin, load_str};
use aos::air::nodes::Node;
use aos::codec::json::parse_json;
use aos::kernel::entry::{Body, Entry};
use aos::kernel::error::{Refused, StateChange, WorldError};
use aos::kernel::input::{IntentId, ReceiptIn};
use aos::kernel::machine::EventIn;
use aos::kernel::replay::{read_entry, read_entry_at, read_snapshot};
use aos::object::{Kind, ObjectId};
use aos::progress::NoProgress;
use aos::store::Store;
use aos::store::refs::Expected;
use aos::world::{CreateOptions, SendOptions, VerifyFrom, World, create_world, verify, world_ref};

const ALLOC: &str = r#"
  (global $next (mut i32) (i32.const 4096))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $p))
"#;

/// A reducer that ignores its input and sets its state to the nat `n` (< 24).
fn constant(n: u8) -> Vec<u8> {
    assert!(n < 24);
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) {ALLOC}
             (data (i32.const 0) "\a4\63ann\f6\65state\41\{n:02x}\67effects\80\6ddomain_events\80")
             (func (export "step") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 38)))"#
    ))
    .unwrap()
}

const CONST_AIR: &str = r#"[
  { "$kind": "defschema", "name": "test/Level@1", "type": { "nat": {} } },
  { "$kind": "defschema", "name": "test/Label@1", "type": { "text": {} } },
  {
    "$kind": "defmodule",
    "name": "test/Const@1",
    "module_kind": "reducer",
    "abi": { "reducer": { "state": "STATE", "event": "EVENT",
             "effects_emitted": [], "cap_slots": {} } }
  }
]"#;

const COUNTER_SCHEMAS: &str = r#"
    { "name": "demo/CounterPc@1" },
    { "name": "demo/CounterState@1" },
    { "name": "demo/CounterEvent@1" },
    { "name": "demo/CounterDone@1" },
    { "name": "test/Level@1" },
    { "name": "test/Label@1" }"#;

/// The manifest: the counter and `test/Const@1` (both receive counter events), and with
/// `keyed` the keyed example's `demo/Accounts@1` too. With `const_keyed`, `test/Const@1` is
/// keyed by account and receives account events instead.
fn manifest(keyed: bool, const_keyed: bool) -> String {
    let (schemas, modules, routes) = if keyed {
        (
            r#",
    { "name": "demo/AccountId@1" }, { "name": "demo/AccountOp@1" },
    { "name": "demo/AccountEvent@1" }, { "name": "demo/Account@1" },
    { "name": "demo/Overdraft@1" }"#,
            r#", { "name": "demo/Accounts@1" }"#,
            r#",
      { "event": "demo/AccountEvent@1", "reducer": "demo/Accounts@1", "key_field": "account" }"#,
        )
    } else {
        ("", "", "")
    };
    let const_route = if const_keyed {
        r#"{ "event": "demo/AccountEvent@1", "reducer": "test/Const@1", "key_field": "account" }"#
    } else {
        r#"{ "event": "demo/CounterEvent@1", "reducer": "test/Const@1" }"#
    };
    format!(
        r#"{{
  "$kind": "manifest", "air_version": "1",
  "schemas": [{COUNTER_SCHEMAS}{schemas}],
  "modules": [{{ "name": "demo/Counter@1" }}, {{ "name": "test/Const@1" }}{modules}],
  "plans": [], "effects": [], "caps": [], "policies": [],
  "routing": {{
    "events": [
      {{ "event": "demo/CounterEvent@1", "reducer": "demo/Counter@1" }},
      {const_route}{routes}
    ],
    "inboxes": []
  }},
  "triggers": [], "defaults": {{}}
}}"#
    )
}

/// A control plane to create or switch to.
struct Plane {
    /// Add the keyed example's reducer.
    keyed: bool,
    /// The state schema of `test/Const@1`.
    const_state: &'static str,
    /// Make `test/Const@1` keyed by `demo/AccountId@1` (needs `keyed` for the schema).
    const_keyed: bool,
    /// The constant `test/Const@1` sets its state to.
    level: u8,
    /// The state schema of `demo/Counter@1`.
    counter_state: &'static str,
}

const V1: Plane = Plane {
    keyed: false,
    const_state: "test/Level@1",
    const_keyed: false,
    level: 1,
    counter_state: "demo/CounterState@1",
};

impl Plane {
    fn nodes(&self) -> Vec<(Node, Origin)> {
        let mut texts: Vec<(String, String)> = Vec::new();
        for (label, text) in aos::examples::example("counter").unwrap().air {
            if !label.ends_with("manifest.air.json") {
                texts.push(((*label).to_owned(), (*text).to_owned()));
            }
        }
        if self.keyed {
            for (label, text) in aos::examples::example("keyed").unwrap().air {
                if !label.ends_with("manifest.air.json") {
                    texts.push(((*label).to_owned(), (*text).to_owned()));
                }
            }
        }
        let mut air = CONST_AIR.replace("STATE", self.const_state);
        if self.const_keyed {
            air = air.replace("EVENT", "demo/AccountEvent@1").replace(
                r#""module_kind": "reducer","#,
                r#""module_kind": "reducer", "key_schema": "demo/AccountId@1","#,
            );
        } else {
            air = air.replace("EVENT", "demo/CounterEvent@1");
        }
        texts.push(("test:const.air.json".into(), air));
        texts.push((
            "test:manifest.air.json".into(),
            manifest(self.keyed, self.const_keyed),
        ));
        let mut nodes = Vec::new();
        for (label, text) in &mut texts {
            if self.counter_state != "demo/CounterState@1" && label.ends_with("module.air.json") {
                *text = text.replace("demo/CounterState@1", self.counter_state);
            }
            let l = load_str(Path::new(label), text);
            assert!(l.problems.is_empty(), "{label}: {:?}", l.problems);
            nodes.extend(l.nodes);
        }
        nodes
    }

    fn wasm(&self) -> Vec<(String, Vec<u8>)> {
        let mut w = aos::examples::example("counter").unwrap().wasm();
        w.push(("test/Const@1".into(), constant(self.level)));
        if self.keyed {
            w.extend(aos::examples::example("keyed").unwrap().wasm());
        }
        w
    }
}

fn create(ts: &TempStore, name: &str, plane: &Plane, snapshot_every: u64) {
    let opts = CreateOptions {
        snapshot_every,
        ..CreateOptions::default()
    };
    create_world(&ts.store, name, plane.nodes(), &plane.wasm(), &opts).unwrap();
}

fn send(w: &mut World<'_>, evs: Vec<EventIn>) {
    w.send(evs, &SendOptions::default(), &NoProgress).unwrap();
}

fn deposit(w: &World<'_>, account: &str, amount: u64) -> EventIn {
    w.parse_event(
        "demo/AccountEvent@1",
        &parse_json(&format!(
            r#"{{"account":"{account}","op":{{"Deposit":{{"amount":{amount}}}}}}}"#
        ))
        .unwrap(),
        None,
    )
    .unwrap()
}

/// What a test compares of a world: counter count, the constant's level, the accounts (if
/// the world has that reducer), the manifest.
fn look(w: &World<'_>) -> (Option<u64>, Option<u64>, Option<Vec<String>>, ObjectId) {
    let count = plain_state(w, "demo/Counter@1").map(|s| s["count"].as_u64().unwrap());
    let level = plain_state(w, "test/Const@1").map(|s| s.as_u64().unwrap());
    let accounts = w.program().reducer_index("demo/Accounts@1").map(|_| {
        w.keys("demo/Accounts@1")
            .unwrap()
            .into_iter()
            .map(|(k, _)| aos::codec::json::to_json(&k).to_string())
            .collect()
    });
    (count, level, accounts, w.program().manifest())
}

fn entry_at(store: &Store, w: &World<'_>, height: u64) -> Entry {
    read_entry(store, &read_entry_at(store, &w.head(), height).unwrap()).unwrap()
}

fn verified(store: &Store, name: &str, from: &VerifyFrom) -> aos::kernel::replay::ReplayStats {
    verify(store, name, from, &NoProgress)
        .unwrap_or_else(|e| panic!("verify {from:?}: {e}"))
        .stats
}

#[test]
fn a_world_switches_manifests_and_verifies() {
    let ts = TempStore::new();
    create(&ts, "w", &V1, 0);
    let mut w = ts.open("w");
    let genesis_manifest = w.program().manifest();
    let start = CEv::Start(100).parse(&w);
    let evs = vec![start, CEv::Tick.parse(&w)];
    send(&mut w, evs);
    let before_marker = w.snapshot().unwrap();
    let evs = vec![CEv::Tick.parse(&w)];
    send(&mut w, evs);
    assert_eq!(look(&w), (Some(2), Some(1), None, genesis_manifest));
    let before = w.height();
    let old_program = w.program_arc();

    // Switch: the constant's WASM changes (1 → 2) and a keyed reducer comes in.
    let v2 = Plane {
        keyed: true,
        level: 2,
        ..V1
    };
    let sw = w.switch_manifest(v2.nodes(), &v2.wasm()).unwrap();
    assert_ne!(sw.manifest, genesis_manifest);
    assert_eq!((sw.height, sw.applied.entries), (before + 1, 1));
    assert_eq!(w.program().manifest(), sw.manifest);
    assert_eq!(
        entry_at(&ts.store, &w, sw.height).body,
        Body::Manifest {
            manifest: sw.manifest
        }
    );
    // State carried over by name; the new reducer starts empty; nothing stepped yet.
    assert_eq!(
        look(&w),
        (Some(2), Some(1), Some(vec![]), sw.manifest),
        "the switch itself runs no reducer"
    );
    // Events now run under the new program: the new WASM, the new routes.
    let evs = vec![CEv::Tick.parse(&w), deposit(&w, "alice", 10)];
    send(&mut w, evs);
    let after = (
        Some(3),
        Some(2),
        Some(vec![r#""alice""#.to_owned()]),
        sw.manifest,
    );
    assert_eq!(look(&w), after);
    // The old program has no route for account events: parsing follows the program in force.
    assert!(old_program.reducer_index("demo/Accounts@1").is_none());
    let after_marker = w.snapshot().unwrap();
    let evs = vec![deposit(&w, "bob", 5)];
    send(&mut w, evs);
    let head = w.head();
    let last = look(&w);

    // Snapshots record the manifest exactly when it is not the genesis's.
    let s1 = read_snapshot(&ts.store, &before_marker).unwrap();
    let s2 = read_snapshot(&ts.store, &after_marker).unwrap();
    assert_eq!((s1.manifest, s1.format()), (None, 1));
    assert_eq!((s2.manifest, s2.format()), (Some(sw.manifest), 2));
    assert_eq!(s2.cells.len(), 1, "the keyed reducer's cell map");

    // Open again: from the checkpoint (nothing to replay) and from the latest marker.
    let reopened = ts.open("w");
    assert_eq!(
        (look(&reopened), reopened.open_stats().replayed),
        (last.clone(), 0)
    );
    let viewed = World::view(&ts.store, head, None).unwrap();
    assert_eq!(viewed.open_stats().base_height, s2.height);
    assert_eq!(look(&viewed), last);
    // From the marker before the switch, replaying across it.
    let mid = read_entry_at(&ts.store, &head, sw.height + 2).unwrap();
    let across = World::view(&ts.store, mid, None).unwrap();
    assert_eq!(across.open_stats().base_height, s1.height);
    assert_eq!(look(&across), after);

    // Points in history on both sides.
    let w = World::open(&ts.store, "w").unwrap();
    assert_eq!(look(&w), last);
    assert_eq!(
        look(&w.at(before).unwrap()),
        (Some(2), Some(1), None, genesis_manifest)
    );
    assert!(
        w.at(before)
            .unwrap()
            .state("demo/Accounts@1", None)
            .is_err()
    );
    assert_eq!(
        look(&w.at(sw.height).unwrap()),
        (Some(2), Some(1), Some(vec![]), sw.manifest)
    );
    assert_eq!(look(&w.at(sw.height + 2).unwrap()), after);

    // Verification from genesis and from snapshots before and after the switch.
    let all = verified(&ts.store, "w", &VerifyFrom::Genesis);
    assert_eq!((all.manifests, all.snapshots, all.ingress), (1, 2, 6));
    assert_eq!(all.entries, w.height());
    let from_before = verified(&ts.store, "w", &VerifyFrom::Snapshot(before_marker));
    assert_eq!(from_before.manifests, 1);
    let from_after = verified(&ts.store, "w", &VerifyFrom::Snapshot(after_marker));
    assert_eq!((from_after.manifests, from_after.ingress), (0, 1));

    // gc keeps the new manifest's nodes and blobs (the manifest entry links them).
    let now = aos::store::gc::GcOptions {
        grace: std::time::Duration::ZERO,
        ..aos::store::gc::GcOptions::default()
    };
    aos::store::gc::gc(&ts.store, &now, &NoProgress).unwrap();
    verified(&ts.store, "w", &VerifyFrom::Genesis);
    assert_eq!(look(&World::open(&ts.store, "w").unwrap()), last);
}

#[test]
fn switching_back_drops_and_restores_reducers() {
    // With automatic markers every 3 entries, so segments start on both sides of switches.
    let ts = TempStore::new();
    create(&ts, "w", &V1, 3);
    let mut w = ts.open("w");
    let genesis_manifest = w.program().manifest();
    let v2 = Plane {
        keyed: true,
        level: 2,
        ..V1
    };
    let mut seen = Vec::new();
    let start = CEv::Start(2).parse(&w);
    let evs = vec![start];
    send(&mut w, evs);
    seen.push((w.height(), look(&w)));
    w.switch_manifest(v2.nodes(), &v2.wasm()).unwrap();
    seen.push((w.height(), look(&w)));
    for i in 0..3 {
        let evs = vec![CEv::Tick.parse(&w), deposit(&w, &format!("a{i}"), 1)];
        send(&mut w, evs);
        seen.push((w.height(), look(&w)));
    }
    // Back to the genesis manifest: the accounts reducer (holding cells) goes away.
    let back = w.switch_manifest(V1.nodes(), &V1.wasm()).unwrap();
    assert_eq!(back.manifest, genesis_manifest);
    seen.push((w.height(), look(&w)));
    let evs = vec![CEv::Tick.parse(&w)];
    send(&mut w, evs);
    seen.push((w.height(), look(&w)));
    assert_eq!(look(&w), (Some(4), Some(1), None, genesis_manifest));
    let marker = w.snapshot().unwrap();
    let s = read_snapshot(&ts.store, &marker).unwrap();
    assert_eq!(s.manifest, None, "the genesis manifest again: format 1");
    assert!(s.cells.is_empty());

    let stats = verified(&ts.store, "w", &VerifyFrom::Genesis);
    assert_eq!(stats.manifests, 2);
    assert!(stats.snapshots >= 4, "{stats:?}");
    // Every state seen live is what the history says at that height.
    let w = ts.open("w");
    for (h, l) in &seen {
        assert_eq!(&look(&w.at(*h).unwrap()), l, "at height {h}");
    }
    // Every marker's snapshot is a place to verify from.
    let mut markers = Vec::new();
    for h in 1..=w.height() {
        if let Body::Snapshot { snapshot } = entry_at(&ts.store, &w, h).body {
            markers.push(snapshot);
        }
    }
    assert!(markers.len() >= 4);
    let manifests: Vec<_> = markers
        .iter()
        .map(|m| read_snapshot(&ts.store, m).unwrap().manifest.is_some())
        .collect();
    assert!(
        manifests.contains(&true) && manifests.contains(&false),
        "{manifests:?}"
    );
    for m in markers {
        verified(&ts.store, "w", &VerifyFrom::Snapshot(m));
    }
}

#[test]
fn refused_switches_and_receipts_change_nothing() {
    let ts = TempStore::new();
    create(&ts, "w", &V1, 0);
    let mut w = ts.open("w");
    let start = CEv::Start(5).parse(&w);
    let evs = vec![start, CEv::Tick.parse(&w)];
    send(&mut w, evs);
    let (head, state) = (w.head(), look(&w));
    let unchanged = |w: &World<'_>| {
        assert_eq!((w.head(), look(w)), (head, state.clone()));
        let again = ts.open("w");
        assert_eq!((again.head(), look(&again)), (head, state.clone()));
    };

    // The counter holds state; its state type would change.
    let retyped = Plane {
        counter_state: "test/Level@1",
        ..V1
    };
    let err = w
        .switch_manifest(retyped.nodes(), &retyped.wasm())
        .unwrap_err();
    let WorldError::Refused(Refused::StateChange {
        reducer, change, ..
    }) = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (reducer.as_str(), *change),
        ("demo/Counter@1", StateChange::StateType)
    );
    assert!(err.to_string().contains("demo/Counter@1"), "{err}");
    unchanged(&w);

    // The constant holds state; it would become keyed.
    let keyed = Plane {
        keyed: true,
        const_keyed: true,
        ..V1
    };
    let err = w.switch_manifest(keyed.nodes(), &keyed.wasm()).unwrap_err();
    assert!(
        matches!(&err, WorldError::Refused(Refused::StateChange { reducer, change: StateChange::Keys, .. }) if reducer == "test/Const@1"),
        "{err}"
    );
    unchanged(&w);

    // The manifest in force.
    let err = w.switch_manifest(V1.nodes(), &V1.wasm()).unwrap_err();
    assert!(
        matches!(err, WorldError::Refused(Refused::SameManifest { .. })),
        "{err}"
    );
    unchanged(&w);

    // A control plane that does not validate: a route to a reducer that does not exist.
    let mut bad = V1.nodes();
    for (n, _) in &mut bad {
        if let Node::Manifest(m) = n {
            m.routing.events[1].reducer = aos::air::name::Name::new("test/Nope@1").unwrap();
        }
    }
    let err = w.switch_manifest(bad, &V1.wasm()).unwrap_err();
    assert!(matches!(err, WorldError::Air(_)), "{err}");
    unchanged(&w);

    // A receipt: no intent is pending, ever, before effects run.
    let intent = IntentId(ObjectId::from_bytes([9; 32]));
    let err = w.receipt(ReceiptIn { intent }).unwrap_err();
    assert!(
        matches!(err, WorldError::Refused(Refused::NoPendingIntent { intent: i }) if i == intent),
        "{err}"
    );
    assert!(err.to_string().contains(&intent.to_string()), "{err}");
    unchanged(&w);

    // The world still takes events and verifies.
    let evs = vec![CEv::Tick.parse(&w)];
    send(&mut w, evs);
    assert_eq!(look(&w).0, Some(2));
    verified(&ts.store, "w", &VerifyFrom::Genesis);
}

#[test]
fn a_reducer_without_state_may_change_its_type_and_keys() {
    let ts = TempStore::new();
    create(&ts, "w", &V1, 0);
    let mut w = ts.open("w");
    // Nothing sent: no reducer holds state.
    let relabeled = Plane {
        const_state: "test/Label@1",
        ..V1
    };
    w.switch_manifest(relabeled.nodes(), &relabeled.wasm())
        .unwrap();
    // The constant now returns a nat for a text state: a fault, journaled and replayed.
    let evs = vec![CEv::Tick.parse(&w)];
    send(&mut w, evs);
    let e = entry_at(&ts.store, &w, w.height());
    assert!(
        matches!(&e.body, Body::Fault(f) if f.code == "invalid-state"),
        "{e:?}"
    );
    assert_eq!(look(&w).1, None);
    // The constant still holds nothing, so it may become keyed.
    let keyed = Plane {
        keyed: true,
        const_keyed: true,
        ..V1
    };
    w.switch_manifest(keyed.nodes(), &keyed.wasm()).unwrap();
    verified(&ts.store, "w", &VerifyFrom::Genesis);
}

/// Rewrites the entry at `height` of world `name` with `edit` and re-chains the later ones.
fn forge(store: &Store, name: &str, height: u64, edit: impl FnOnce(&mut Entry)) {
    let wref = world_ref(name).unwrap();
    let head = store.refs().read(&wref).unwrap().unwrap();
    let top = read_entry(store, &head).unwrap().height;
    let mut prev = None;
    let mut edit = Some(edit);
    for h in height..=top {
        let mut e = read_entry(store, &read_entry_at(store, &head, h).unwrap()).unwrap();
        if let Some(edit) = edit.take() {
            edit(&mut e);
        } else {
            e.prev = prev;
        }
        let (bytes, id) = e.encode();
        assert_eq!(store.put(Kind::Entry, &bytes).unwrap(), id);
        prev = Some(id);
    }
    store
        .refs()
        .update(&wref, prev, Expected::Any, "forged")
        .unwrap();
}

fn diverges_at(store: &Store, name: &str) -> (u64, String) {
    match verify(store, name, &VerifyFrom::Genesis, &NoProgress) {
        Err(WorldError::Diverged(d)) => (d.height, d.detail.clone()),
        other => panic!("expected a divergence, got {other:?}"),
    }
}

/// A world that switched at height 3 and ran two events after; returns the new manifest.
fn switched_world(ts: &TempStore, name: &str) -> ObjectId {
    // (The CLI test's world is the same, in another store.)
    create(ts, name, &V1, 0);
    let mut w = ts.open(name);
    let evs = vec![CEv::Start(9).parse(&w)];
    send(&mut w, evs);
    let v2 = Plane { level: 2, ..V1 };
    let sw = w.switch_manifest(v2.nodes(), &v2.wasm()).unwrap();
    assert_eq!(sw.height, 2);
    let evs = vec![CEv::Tick.parse(&w), CEv::Tick.parse(&w)];
    send(&mut w, evs);
    sw.manifest
}

#[test]
fn tampered_switches_are_detected() {
    let ts = TempStore::new();
    switched_world(&ts, "a");
    let genesis = ts.open("a").program().genesis.manifest;
    // The manifest entry names the manifest already in force: the kernel refuses it.
    forge(&ts.store, "a", 2, |e| {
        e.body = Body::Manifest { manifest: genesis };
    });
    let (h, detail) = diverges_at(&ts.store, "a");
    assert_eq!(h, 2);
    assert!(
        detail.contains("refuses") && detail.contains("already"),
        "{detail}"
    );

    // The manifest entry is dropped: the recorded steps came from the other WASM.
    let ts = TempStore::new();
    switched_world(&ts, "b");
    forge(&ts.store, "b", 2, |e| {
        let Body::Manifest { .. } = e.body else {
            panic!("{e:?}")
        };
        e.body = Body::Snapshot {
            snapshot: ObjectId::from_bytes([0; 32]),
        };
    });
    assert!(verify(&ts.store, "b", &VerifyFrom::Genesis, &NoProgress).is_err());

    // The manifest entry names an object that is no manifest.
    let ts = TempStore::new();
    switched_world(&ts, "c");
    let blob = ts.store.put(Kind::Blob, b"not a manifest").unwrap();
    forge(&ts.store, "c", 2, |e| {
        e.body = Body::Manifest { manifest: blob };
    });
    let err = verify(&ts.store, "c", &VerifyFrom::Genesis, &NoProgress).unwrap_err();
    assert!(err.to_string().contains(&blob.to_string()), "{err}");

    // A marker whose snapshot claims the genesis manifest after the switch.
    let ts = TempStore::new();
    let manifest = switched_world(&ts, "d");
    let mut w = ts.open("d");
    let marker = w.snapshot().unwrap();
    let mut s = read_snapshot(&ts.store, &marker).unwrap();
    assert_eq!(s.manifest, Some(manifest));
    s.manifest = None;
    let (bytes, forged) = s.encode();
    ts.store.put(Kind::Snapshot, &bytes).unwrap();
    let top = w.height();
    forge(&ts.store, "d", top, |e| {
        e.body = Body::Snapshot { snapshot: forged };
    });
    let (h, detail) = diverges_at(&ts.store, "d");
    assert_eq!(h, top);
    assert!(detail.contains("snapshot manifest"), "{detail}");
}

#[test]
fn the_cli_reads_switched_worlds_and_bundles_carry_them() {
    let env = Env::new();
    create_switched(&Store::open(&env.store()).unwrap());
    let log = env.run(&["--json", "log", "w"]).ok().out();
    let kinds: Vec<String> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(kinds.contains(&"manifest".to_owned()), "{kinds:?}");
    let text = env.run(&["log", "w"]).ok().out();
    assert!(text.contains("manifest b3:"), "{text}");
    let shown = json(&env.run(&["--json", "show", "w@2"]).ok());
    assert_eq!(shown["kind"], "manifest");
    let v = json(&env.run(&["--json", "verify", "w"]).ok());
    assert_eq!(v["ok"], true);
    // A bundle carries the switched manifest's nodes and blobs: the receiver verifies.
    let file = env.path().join("w.bundle").display().to_string();
    env.run(&["bundle", "create", &file, "w"]).ok();
    let other = Env::new();
    other.run(&["bundle", "unbundle", &file]).ok();
    other.run(&["verify", "w"]).ok();
    other.run(&["fsck"]).ok();
    let a = json(&env.run(&["--json", "state", "w", "test/Const@1"]).ok());
    let b = json(&other.run(&["--json", "state", "w", "test/Const@1"]).ok());
    assert_eq!((a["state"].as_u64(), &a), (Some(2), &b));
}

/// World `w` in `store`: created, one event, a switch at height 2, one event.
fn create_switched(store: &Store) {
    create_world(
        store,
        "w",
        V1.nodes(),
        &V1.wasm(),
        &CreateOptions::default(),
    )
    .unwrap();
    let mut w = World::open(store, "w").unwrap();
    let evs = vec![CEv::Start(9).parse(&w)];
    send(&mut w, evs);
    let v2 = Plane { level: 2, ..V1 };
    w.switch_manifest(v2.nodes(), &v2.wasm()).unwrap();
    let evs = vec![CEv::Tick.parse(&w)];
    send(&mut w, evs);
}

/// One step of a random history.
#[derive(Clone, Copy, Debug)]
enum Op {
    Start(u64),
    Tick,
    Deposit(usize),
    Marker,
    Switch(usize),
}

/// The planes a random history switches between: (keyed, level).
const PLANES: [(bool, u8); 3] = [(false, 1), (true, 2), (false, 3)];

fn plane(i: usize) -> Plane {
    Plane {
        keyed: PLANES[i].0,
        level: PLANES[i].1,
        ..V1
    }
}

/// What the model expects: counter count, constant level, accounts (on keyed planes).
#[derive(Clone, Debug, PartialEq)]
struct Model {
    plane: usize,
    count: Option<u64>,
    level: Option<u64>,
    accounts: std::collections::BTreeSet<usize>,
}

impl Model {
    fn look(&self) -> (Option<u64>, Option<u64>, Option<Vec<String>>) {
        let accounts = PLANES[self.plane].0.then(|| {
            self.accounts
                .iter()
                .map(|a| format!("\"acct{a}\""))
                .collect()
        });
        (self.count, self.level, accounts)
    }
}

fn ops() -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    use proptest::prelude::*;
    prop::collection::vec(
        prop_oneof![
            1 => (0u64..5).prop_map(Op::Start),
            4 => Just(Op::Tick),
            3 => (0usize..3).prop_map(Op::Deposit),
            1 => Just(Op::Marker),
            2 => (0usize..3).prop_map(Op::Switch),
        ],
        1..16,
    )
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]

    /// Random histories of events, markers and switches (see [`check_random`]).
    #[test]
    fn random_switches_match_the_model(
        ops in ops(),
        every in proptest::prop_oneof![proptest::strategy::Just(0u64), proptest::strategy::Just(3u64)],
    ) {
        check_random(&ops, every);
    }
}

/// The live state follows the model (state carried by name, dropped with its reducer), every
/// point of history reads back as it was live, and the world verifies from genesis and from
/// every marker.
fn check_random(ops: &[Op], every: u64) {
    let ts = TempStore::new();
    create(&ts, "w", &plane(0), every);
    let mut w = ts.open("w");
    let mut m = Model {
        plane: 0,
        count: None,
        level: None,
        accounts: Default::default(),
    };
    let mut seen = Vec::new();
    for op in ops {
        match *op {
            Op::Start(t) => {
                let evs = vec![CEv::Start(t).parse(&w)];
                send(&mut w, evs);
                m.count = Some(0);
                m.level = Some(u64::from(PLANES[m.plane].1));
            }
            Op::Tick => {
                let evs = vec![CEv::Tick.parse(&w)];
                send(&mut w, evs);
                m.count = Some(m.count.unwrap_or(0) + 1);
                m.level = Some(u64::from(PLANES[m.plane].1));
            }
            Op::Deposit(a) => {
                let value = parse_json(&format!(
                    r#"{{"account":"acct{a}","op":{{"Deposit":{{"amount":1}}}}}}"#
                ))
                .unwrap();
                if !PLANES[m.plane].0 {
                    // No such schema under this manifest.
                    assert!(w.parse_event("demo/AccountEvent@1", &value, None).is_err());
                    continue;
                }
                let evs = vec![deposit(&w, &format!("acct{a}"), 1)];
                send(&mut w, evs);
                m.accounts.insert(a);
            }
            Op::Marker => {
                w.snapshot().unwrap();
            }
            Op::Switch(p) => {
                let to = plane(p);
                let r = w.switch_manifest(to.nodes(), &to.wasm());
                if p == m.plane {
                    assert!(
                        matches!(r, Err(WorldError::Refused(Refused::SameManifest { .. }))),
                        "{r:?}"
                    );
                } else {
                    r.unwrap();
                    if !PLANES[p].0 {
                        m.accounts.clear();
                    }
                    m.plane = p;
                }
            }
        }
        let (count, level, accounts, _) = look(&w);
        assert_eq!((count, level, accounts), m.look(), "after {op:?}");
        seen.push((w.height(), look(&w)));
    }
    let stats = verified(&ts.store, "w", &VerifyFrom::Genesis);
    assert_eq!(stats.entries, w.height());
    let w = ts.open("w");
    assert_eq!(w.open_stats().replayed, 0);
    for (h, l) in &seen {
        assert_eq!(&look(&w.at(*h).unwrap()), l, "at height {h}");
    }
    for h in 1..=w.height() {
        if let Body::Snapshot { snapshot } = entry_at(&ts.store, &w, h).body {
            verified(&ts.store, "w", &VerifyFrom::Snapshot(snapshot));
            let at = read_entry_at(&ts.store, &w.head(), h).unwrap();
            let view = World::view(&ts.store, at, None).unwrap();
            assert_eq!(view.open_stats().base_height, h - 1);
        }
    }
}
