//! Worlds: property tests against models of the example reducers, tamper detection, and the
//! world CLI's behaviour on good and bad input.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;
#[path = "common/world.rs"]
mod wc;

use aos::codec::json::parse_json;
use aos::kernel::entry::{Body, Entry};
use aos::kernel::replay::{read_entry, read_entry_at};
use aos::kernel::world::{SendOptions, VerifyFrom, World, verify, world_ref};
use aos::object::{Kind, ObjectId};
use aos::progress::NoProgress;
use aos::store::Store;
use aos::store::refs::{Expected, RefName};
use common::Env;
use proptest::prelude::*;
use wc::*;

fn send_all(w: &mut World<'_>, evs: Vec<aos::kernel::machine::EventIn>, commit: u64) {
    let opts = SendOptions {
        commit_events: commit.max(1),
        ..SendOptions::default()
    };
    w.send(evs, &opts, &NoProgress).unwrap();
}

fn counter_events() -> impl Strategy<Value = Vec<CEv>> {
    prop::collection::vec(
        prop_oneof![
            1 => (0u64..4).prop_map(CEv::Start),
            5 => Just(CEv::Tick),
            1 => Just(CEv::Reset),
        ],
        0..30,
    )
}

fn keyed_events() -> impl Strategy<Value = Vec<(usize, Op)>> {
    prop::collection::vec(
        (
            0usize..ACCOUNTS.len(),
            prop_oneof![
                3 => (0u64..20).prop_map(Op::Deposit),
                3 => (0u64..20).prop_map(Op::Withdraw),
                1 => Just(Op::Close),
            ],
        ),
        0..30,
    )
}

/// Splits `n` items into chunk sizes from `cuts` (each >= 1).
fn chunks(n: usize, cuts: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = n;
    let mut i = 0;
    while left > 0 {
        let c = cuts.get(i).copied().unwrap_or(1).clamp(1, left);
        out.push(c);
        left -= c;
        i += 1;
    }
    out
}

fn reopened_state_counter(ts: &TempStore) -> (Option<serde_json::Value>, u64) {
    let w = ts.open("c");
    (plain_state(&w, "demo/Counter@1"), w.open_stats().replayed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    #[test]
    fn counter_matches_model(
        evs in counter_events(),
        every in prop_oneof![Just(0u64), Just(5u64), Just(3u64)],
        cuts in prop::collection::vec(1usize..8, 0..40),
        commit in 1u64..6,
    ) {
        let model = counter_model(&evs, every);
        // One batch.
        let a = TempStore::new();
        a.example_world("c", "counter", every);
        let mut wa = a.open("c");
        let parsed: Vec<_> = evs.iter().map(|e| e.parse(&wa)).collect();
        send_all(&mut wa, parsed, 1 << 20);
        // (a) live state and height against the model.
        prop_assert_eq!(plain_state(&wa, "demo/Counter@1"), counter_json(model.state()));
        prop_assert_eq!(wa.height(), model.height());
        // (b) verify from genesis, with the right counts.
        let r = verify(&a.store, "c", &VerifyFrom::Genesis, &NoProgress).unwrap();
        prop_assert_eq!(r.height, model.height());
        prop_assert_eq!(r.head, wa.head());
        prop_assert_eq!(r.from_height, 0);
        prop_assert_eq!(r.stats.entries, model.height());
        prop_assert_eq!(r.stats.ingress, model.ingress);
        prop_assert_eq!(r.stats.derived, model.derived);
        prop_assert_eq!(r.stats.faults, 0);
        prop_assert_eq!(r.stats.snapshots, model.markers);
        // (c) one event per send, and random chunkings with random commit sizes.
        let b = TempStore::new();
        b.example_world("c", "counter", every);
        let mut wb = b.open("c");
        for e in &evs {
            let ev = e.parse(&wb);
            send_all(&mut wb, vec![ev], 1);
        }
        prop_assert_eq!(wb.head(), wa.head());
        let c = TempStore::new();
        c.example_world("c", "counter", every);
        let mut at = 0;
        for n in chunks(evs.len(), &cuts) {
            // Reopen between chunks: the checkpoint path must continue the same history.
            let mut wc = c.open("c");
            let part: Vec<_> = evs[at..at + n].iter().map(|e| e.parse(&wc)).collect();
            send_all(&mut wc, part, commit);
            at += n;
        }
        prop_assert_eq!(c.open("c").head(), wa.head());
        // (d) independent stores take identical snapshots.
        let sa = wa.snapshot().unwrap();
        let sb = wb.snapshot().unwrap();
        prop_assert_eq!(sa, sb);
        prop_assert_eq!(wa.head(), wb.head());
        prop_assert_eq!(wa.height(), model.height() + 1);
        // (e) every height's state.
        let wa = a.open("c");
        let mut model = model;
        model.mark();
        for h in 0..=wa.height() {
            let past = wa.at(h).unwrap();
            prop_assert_eq!(past.height(), h);
            prop_assert_eq!(
                plain_state(&past, "demo/Counter@1"),
                counter_json(&model.states[h as usize]),
                "height {}", h
            );
        }
        prop_assert!(wa.at(wa.height() + 1).is_err());
        // (f) reopen: checkpoint path, then replay path without the checkpoint.
        let (s1, replayed) = reopened_state_counter(&a);
        prop_assert_eq!(&s1, &counter_json(model.state()));
        prop_assert_eq!(replayed, 0, "a fresh checkpoint needs no replay");
        let cref = RefName::new("refs/checkpoints/c").unwrap();
        a.store.refs().update(&cref, None, Expected::Any, "test").unwrap();
        let (s2, _) = reopened_state_counter(&a);
        prop_assert_eq!(s2, s1);
        prop_assert_eq!(a.open("c").head(), sa_head(&a));
    }

    #[test]
    fn keyed_matches_model(
        evs in keyed_events(),
        every in prop_oneof![Just(0u64), Just(5u64)],
        cuts in prop::collection::vec(1usize..6, 0..30),
        with_key in any::<bool>(),
    ) {
        let model = keyed_model(&evs, every);
        let a = TempStore::new();
        a.example_world("k", "keyed", every);
        let mut wa = a.open("k");
        let parsed: Vec<_> = evs.iter().map(|(i, op)| keyed_parse(&wa, *i, *op, with_key)).collect();
        send_all(&mut wa, parsed, 7);
        prop_assert_eq!(&keyed_state(&wa), model.state());
        prop_assert_eq!(wa.height(), model.height());
        // Cells the model lacks read as no state.
        for name in ACCOUNTS {
            let k = parse_json(&format!("\"{name}\"")).unwrap();
            let s = wa.state("demo/Accounts@1", Some(&k)).unwrap().state;
            prop_assert_eq!(s.is_some(), model.state().contains_key(name));
        }
        let r = verify(&a.store, "k", &VerifyFrom::Genesis, &NoProgress).unwrap();
        prop_assert_eq!(r.stats.entries, model.height());
        prop_assert_eq!(r.stats.ingress, model.ingress);
        prop_assert_eq!(r.stats.derived, model.derived);
        prop_assert_eq!(r.stats.snapshots, model.markers);
        // Chunked sends give the same history (the key, when given, is recorded in the entry).
        let b = TempStore::new();
        b.example_world("k", "keyed", every);
        let mut at = 0;
        for n in chunks(evs.len(), &cuts) {
            let mut wb = b.open("k");
            let part: Vec<_> = evs[at..at + n].iter().map(|(i, op)| keyed_parse(&wb, *i, *op, with_key)).collect();
            send_all(&mut wb, part, 2);
            at += n;
        }
        let mut wb = b.open("k");
        prop_assert_eq!(wb.head(), wa.head());
        prop_assert_eq!(wb.snapshot().unwrap(), wa.snapshot().unwrap());
        let wa = a.open("k");
        let mut model = model;
        model.mark();
        for h in 0..=wa.height() {
            prop_assert_eq!(&keyed_state(&wa.at(h).unwrap()), &model.states[h as usize], "height {}", h);
        }
        let cref = RefName::new("refs/checkpoints/k").unwrap();
        a.store.refs().update(&cref, None, Expected::Any, "test").unwrap();
        prop_assert_eq!(&keyed_state(&a.open("k")), model.state());
    }
}

fn sa_head(ts: &TempStore) -> ObjectId {
    ts.store.refs().read(&world_ref("c").unwrap()).unwrap().unwrap()
}
