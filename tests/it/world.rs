//! Worlds: property tests against models of the example reducers, tamper detection, and the
//! world CLI's behaviour on good and bad input.

use crate::common::world::*;
use crate::common::{Env, json, last_json};
use aos::codec::json::parse_json;
use aos::kernel::entry::{Body, Entry};
use aos::kernel::replay::{read_entry, read_entry_at};
use aos::object::{Kind, ObjectId};
use aos::progress::NoProgress;
use aos::store::Store;
use aos::store::refs::{Expected, RefName};
use aos::world::{SendOptions, VerifyFrom, World, verify, world_ref};
use proptest::prelude::*;

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
        0..24,
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
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

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
    ts.store
        .refs()
        .read(&world_ref("c").unwrap())
        .unwrap()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// CLI

fn tick(env: &Env, ev: &str) {
    env.run(&["send", "c", "demo/CounterEvent@1", ev]).ok();
}

fn worlds(env: &Env) -> serde_json::Value {
    json(&env.run(&["--json", "world", "list"]).ok())
}

/// Runs `aos ARGS`, which must fail with exit 1, mention `needle` on stderr and change no
/// world; appends its transcript to `log` for a snapshot of every message.
#[track_caller]
fn rejected(log: &mut String, env: &Env, args: &[&str], needle: &str) {
    let before = worlds(env);
    let r = env.run(args).fails(1);
    assert!(
        r.stderr.contains(needle),
        "{args:?}: stderr should mention `{needle}`: {}",
        r.stderr
    );
    assert_eq!(worlds(env), before, "{args:?} changed a world");
    log.push_str(&env.transcript(args, &r));
}

#[test]
fn bad_input_is_rejected_and_appends_nothing() {
    let mut t = String::new();
    let env = Env::with_counter("0");
    tick(&env, r#"{"Start":{"target":3}}"#);
    let ev = "demo/CounterEvent@1";
    rejected(
        &mut t,
        &env,
        &["send", "nope", ev, r#""Tick""#],
        "no world named `nope`",
    );
    rejected(
        &mut t,
        &env,
        &["send", "c", "demo/Nope@1", r#""Tick""#],
        "demo/Nope@1",
    );
    rejected(&mut t, &env, &["send", "c", ev, r#""Tock""#], ev);
    rejected(
        &mut t,
        &env,
        &["send", "c", ev, r#"{"Start":{"target":-1}}"#],
        ev,
    );
    rejected(&mut t, &env, &["send", "c", ev, r#"{"Start":{}}"#], ev);
    rejected(&mut t, &env, &["send", "c", ev, "not json"], "value");
    rejected(
        &mut t,
        &env,
        &["send", "c", ev, r#""Tick""#, "--key", "1"],
        "--key",
    );
    rejected(&mut t, &env, &["state", "c", "demo/Nope@1"], "demo/Nope@1");
    rejected(
        &mut t,
        &env,
        &["state", "nope", "demo/Counter@1"],
        "no world named `nope`",
    );
    rejected(
        &mut t,
        &env,
        &["state", "c", "demo/Counter@1", "--key", "1"],
        "not keyed",
    );
    rejected(
        &mut t,
        &env,
        &["state", "c", "demo/Counter@1", "--at", "99"],
        "beyond",
    );
    let good = format!("{{\"schema\":\"{ev}\",\"value\":\"Tick\"}}\n");
    let batch = format!("{good}{good}{{\"schema\":\"{ev}\",\"value\":\"Tock\"}}\n{good}");
    env.write("bad.jsonl", batch.as_bytes());
    rejected(
        &mut t,
        &env,
        &["send", "c", "--batch", "bad.jsonl"],
        "line 3",
    );
    env.write(
        "bad2.jsonl",
        format!("{good}{{\"schema\":\"{ev}\"}}\n").as_bytes(),
    );
    rejected(
        &mut t,
        &env,
        &["send", "c", "--batch", "bad2.jsonl"],
        "line 2",
    );
    rejected(
        &mut t,
        &env,
        &["send", "c", "--batch", "missing.jsonl"],
        "missing.jsonl",
    );
    // Every bad line is named (up to 20, then counted), a line that is not UTF-8 among them.
    let mut many = good.clone().into_bytes();
    many.extend_from_slice(b"{\"schema\": \"\xff\"}\n");
    for i in 0..22 {
        many.extend_from_slice(format!("{{\"schema\":\"{ev}\",\"value\":{i}}}\n").as_bytes());
    }
    many.extend_from_slice(b"[1]\n\n{\"value\": 1, \"extra\": 2}\n");
    env.write("many.jsonl", &many);
    rejected(
        &mut t,
        &env,
        &["send", "c", "--batch", "many.jsonl"],
        "and 5 more",
    );
    // The same batch without its bad line goes through, whole, from standard input.
    let r = env
        .run_stdin(
            &["--json", "send", "c", "--batch", "-"],
            good.repeat(3).as_bytes(),
        )
        .ok();
    let j = last_json(&r);
    assert_eq!(j["events"], 3);
    assert_eq!(j["derived"], 1);
    assert_eq!(j["entries"], 4);
    assert_eq!(j["height"], 5);
    let s = json(&env.run(&["--json", "state", "c", "demo/Counter@1"]).ok());
    assert_eq!(s["state"]["count"], 3);
    assert_eq!(s["state"]["pc"], "Idle");
    insta::assert_snapshot!(t, @r#"
    $ aos send nope demo/CounterEvent@1 "Tick"
    [exit 1]
    --- stderr
    error: no world named `nope`
    hint: `aos world list` shows the worlds of this store
    $ aos send c demo/Nope@1 "Tick"
    [exit 1]
    --- stderr
    error: the world has no schema `demo/Nope@1`
    $ aos send c demo/CounterEvent@1 "Tock"
    [exit 1]
    --- stderr
    error: demo/CounterEvent@1: invalid value: unknown variant tag `Tock` (expected one of `Tick`, `Reset`, `Start`)
    $ aos send c demo/CounterEvent@1 {"Start":{"target":-1}}
    [exit 1]
    --- stderr
    error: demo/CounterEvent@1: invalid value at `/Start/target`: -1 is out of range for nat (0 ..= 2^64-1)
    $ aos send c demo/CounterEvent@1 {"Start":{}}
    [exit 1]
    --- stderr
    error: demo/CounterEvent@1: invalid value at `/Start`: missing field `target`
    $ aos send c demo/CounterEvent@1 not json
    [exit 1]
    --- stderr
    error: value: invalid JSON at line 1, column 1 (byte 0): invalid literal, expected `null`
    $ aos send c demo/CounterEvent@1 "Tick" --key 1
    [exit 1]
    --- stderr
    error: a key was given, but no keyed reducer receives demo/CounterEvent@1
    hint: leave out --key: only events routed to a keyed reducer take one
    $ aos state c demo/Nope@1
    [exit 1]
    --- stderr
    error: the world has no reducer `demo/Nope@1`
    $ aos state nope demo/Counter@1
    [exit 1]
    --- stderr
    error: no world named `nope`
    hint: `aos world list` shows the worlds of this store
    $ aos state c demo/Counter@1 --key 1
    [exit 1]
    --- stderr
    error: demo/Counter@1 is not keyed
    hint: a reducer that is not keyed has one state: leave out --key and --keys
    $ aos state c demo/Counter@1 --at 99
    [exit 1]
    --- stderr
    error: height 99 is beyond the head (height 1)
    hint: the world's heights run from 0 to 1
    $ aos send c --batch bad.jsonl
    [exit 1]
    --- stderr
    error: line 3: demo/CounterEvent@1: invalid value: unknown variant tag `Tock` (expected one of `Tick`, `Reset`, `Start`)
    $ aos send c --batch bad2.jsonl
    [exit 1]
    --- stderr
    error: line 2: missing `value`
    $ aos send c --batch missing.jsonl
    [exit 1]
    --- stderr
    error: $TMP/missing.jsonl: No such file or directory (os error 2)
    $ aos send c --batch many.jsonl
    [exit 1]
    --- stderr
    error: 25 lines of the batch are not events of the world:
      line 2: not UTF-8 (byte 12 of the line)
      line 3: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 0
      line 4: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 1
      line 5: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 2
      line 6: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 3
      line 7: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 4
      line 8: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 5
      line 9: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 6
      line 10: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 7
      line 11: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 8
      line 12: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 9
      line 13: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 10
      line 14: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 11
      line 15: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 12
      line 16: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 13
      line 17: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 14
      line 18: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 15
      line 19: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 16
      line 20: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 17
      line 21: demo/CounterEvent@1: invalid value: expected a variant {"Tag": value} or "Tag", found the number 18
      and 5 more
    "#);
}

#[test]
fn world_new_rejects_bad_modules_and_duplicates() {
    let mut t = String::new();
    let env = Env::new();
    let air = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/worlds/counter/air");
    let air = air.to_str().unwrap();
    rejected(&mut t, &env, &["world", "new", "c", "--air", air], "--wasm");
    env.write("junk.wasm", b"\0asm\x01\0\0\0garbage");
    rejected(
        &mut t,
        &env,
        &[
            "world",
            "new",
            "c",
            "--air",
            air,
            "--wasm",
            "demo/Counter@1=junk.wasm",
        ],
        "demo/Counter@1",
    );
    rejected(
        &mut t,
        &env,
        &[
            "world",
            "new",
            "c",
            "--air",
            air,
            "--wasm",
            "demo/Other@1=junk.wasm",
        ],
        "demo/Other@1",
    );
    rejected(
        &mut t,
        &env,
        &["world", "new", "c", "--example", "nope"],
        "nope",
    );
    assert_eq!(worlds(&env), serde_json::json!([]));
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reducers/wasm/counter.wasm");
    let spec = format!("demo/Counter@1={}", wasm.display());
    let r = env
        .run(&["--json", "world", "new", "c", "--air", air, "--wasm", &spec])
        .ok();
    let j = json(&r);
    assert_eq!(j["world"], "c");
    assert_eq!(j["modules"][0]["name"], "demo/Counter@1");
    // The AIR directory and the example are the same world: the same genesis.
    let e = json(
        &env.run(&["--json", "world", "new", "e", "--example", "counter"])
            .ok(),
    );
    assert_eq!(e["genesis"], j["genesis"]);
    rejected(
        &mut t,
        &env,
        &["world", "new", "c", "--example", "counter"],
        "exists already",
    );
    let list = worlds(&env);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["name"], "c");
    assert_eq!(list[0]["head"], j["genesis"]);
    insta::assert_snapshot!(t, @"
    $ aos world new c --air $REPO/examples/worlds/counter/air
    [exit 1]
    --- stderr
    error: module demo/Counter@1 has no WASM
    hint: give its WASM with --wasm demo/Counter@1=FILE
    $ aos world new c --air $REPO/examples/worlds/counter/air --wasm demo/Counter@1=junk.wasm
    [exit 1]
    --- stderr
    error: module demo/Counter@1: invalid module: unexpected end-of-file (at offset 0xa)
    $ aos world new c --air $REPO/examples/worlds/counter/air --wasm demo/Other@1=junk.wasm
    [exit 1]
    --- stderr
    error: WASM was given for module `demo/Other@1`, but the control plane has no module of that name
    hint: --wasm NAME=FILE must name a defmodule of the control plane
    $ aos world new c --example nope
    [exit 1]
    --- stderr
    error: no example named `nope` (there are: counter, keyed)
    $ aos world new c --example counter
    [exit 1]
    --- stderr
    error: a world named `c` exists already
    ");
}

#[test]
fn json_outputs_have_their_fields() {
    let env = Env::with_counter("3");
    let r = env
        .run(&[
            "--json",
            "send",
            "c",
            "demo/CounterEvent@1",
            r#"{"Start":{"target":1}}"#,
        ])
        .ok();
    let s = json(&r);
    for f in [
        "world", "events", "entries", "derived", "faults", "commits", "head", "height",
    ] {
        assert!(s.get(f).is_some(), "send --json lacks {f}: {s}");
    }
    assert_eq!(s["height"], 1);
    let r = env
        .run(&["--json", "send", "c", "demo/CounterEvent@1", r#""Tick""#])
        .ok();
    let s = json(&r);
    // Tick (2), CounterDone (3), then a marker (4): 4 entries since genesis.
    assert_eq!(
        (s["entries"].as_u64(), s["derived"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(s["height"], 4);
    let head = s["head"].as_str().unwrap().to_owned();
    let lines: Vec<serde_json::Value> = env
        .run(&["--json", "log", "c"])
        .ok()
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["snapshot", "event", "event", "event", "genesis"]);
    assert_eq!(lines[0]["id"], head.as_str());
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["height"].as_u64().unwrap(), 4 - i as u64);
        assert_eq!(l["entry"]["height"], l["height"]);
    }
    assert_eq!(lines[1]["entry"]["origin"], "derived");
    assert_eq!(lines[1]["entry"]["cause"]["height"], 2);
    assert_eq!(lines[1]["entry"]["value"]["count"], 1);
    let two = env.run(&["--json", "log", "c", "-n", "2"]).ok().out();
    assert_eq!(two.lines().count(), 2);
    let g = json(&env.run(&["--json", "show", "c@0"]).ok());
    assert_eq!(g["kind"], "genesis");
    assert_eq!(g["height"], 0);
    assert_eq!(g["entry"]["snapshot_every"], 3);
    assert_eq!(g["id"], lines[4]["id"]);
    assert!(g["entry"].get("prev").is_none());
    insta::assert_snapshot!(env.sh(&["show", "c@0"]), @r#"
    $ aos show c@0
    entry b3:98d72550b7c349094a60b4e0d7a1dd24d7978fc980b41cae0bd77214faaa7ad7
    height 0
    genesis manifest b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec (1 modules, snapshot every 3, max derived 1000, fuel 100000000)
    {
      "kind": "genesis",
      "format": 1,
      "height": 0,
      "limits": {
        "fuel": 100000000,
        "max_call_depth": 1000,
        "max_stack_bytes": 1000000,
        "max_memory_bytes": 67108864,
        "max_output_bytes": 16777216
      },
      "modules": {
        "demo/Counter@1": {
          "$link": "b3:e14eed3d104a753afa22c92485175a4fcd9d99284214f7f9da226065272a68e7"
        }
      },
      "manifest": {
        "$link": "b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec"
      },
      "max_derived": 1000,
      "snapshot_every": 3
    }
    "#);
    let by_id = json(&env.run(&["--json", "show", &head]).ok());
    assert_eq!(by_id, lines[0]);
    env.run(&["show", "c@5"]).fails(1);
    let v = json(&env.run(&["--json", "verify", "c"]).ok());
    assert_eq!(v["ok"], true);
    assert_eq!(v["head"], head.as_str());
    assert_eq!(
        (
            v["height"].as_u64(),
            v["entries"].as_u64(),
            v["events"].as_u64()
        ),
        (Some(4), Some(4), Some(2))
    );
    assert_eq!(
        (v["derived"].as_u64(), v["snapshots"].as_u64()),
        (Some(1), Some(1))
    );
    // state --at: before and after the Tick.
    let at = |h: &str| {
        json(
            &env.run(&["--json", "state", "c", "demo/Counter@1", "--at", h])
                .ok(),
        )
    };
    assert_eq!(at("0")["state"], serde_json::Value::Null);
    assert_eq!(at("1")["state"]["count"], 0);
    assert_eq!(at("1")["height"], 1);
    assert_eq!(at("2")["state"]["count"], 1);
    assert_eq!(at("2")["state"]["pc"], "Idle");
    let tagged = env
        .run(&["state", "c", "demo/Counter@1", "--tagged"])
        .ok()
        .out();
    assert!(tagged.contains("Idle"), "{tagged}");
    // snapshot, then verify from it.
    let snap = json(&env.run(&["--json", "snapshot", "c"]).ok());
    assert_eq!(snap["height"], 5);
    let sid = snap["snapshot"].as_str().unwrap();
    let v = json(&env.run(&["--json", "verify", "c", "--from", sid]).ok());
    assert_eq!(v["ok"], true);
    assert_eq!(v["from_height"], 4);
    assert_eq!(v["entries"], 1);
    tick(&env, r#""Tick""#);
    let v = json(
        &env.run(&["--json", "verify", "c", "--from", &sid[..20]])
            .ok(),
    );
    assert_eq!(
        (v["from_height"].as_u64(), v["entries"].as_u64()),
        (Some(4), Some(2))
    );
    let shown = json(&env.run(&["--json", "show", sid]).ok());
    assert_eq!(shown["kind"], "snapshot");
    // A snapshot of another world is not part of this one's history.
    env.run(&["world", "new", "d", "--example", "counter"]).ok();
    env.run(&["verify", "d", "--from", sid]).fails(1);
}

#[test]
fn keyed_cli_keys_and_cells() {
    let mut t = String::new();
    let env = Env::new();
    env.run(&["world", "new", "k", "--example", "keyed"]).ok();
    let ev = "demo/AccountEvent@1";
    for (acct, op) in [
        ("bob", r#"{"Deposit":{"amount":5}}"#),
        ("alice", r#"{"Deposit":{"amount":7}}"#),
        ("alice", r#"{"Withdraw":{"amount":9}}"#),
    ] {
        let v = format!(r#"{{"account":"{acct}","op":{op}}}"#);
        env.run(&["send", "k", ev, &v, "--key", &format!("\"{acct}\"")])
            .ok();
    }
    // A key that does not match the event's field.
    rejected(
        &mut t,
        &env,
        &[
            "send",
            "k",
            ev,
            r#"{"account":"bob","op":"Close"}"#,
            "--key",
            r#""alice""#,
        ],
        "--key",
    );
    // Keys come in cell-map order (by hash), not sorted.
    let keys = env
        .run(&["state", "k", "demo/Accounts@1", "--keys"])
        .ok()
        .out();
    let mut sorted: Vec<&str> = keys.lines().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, ["\"alice\"", "\"bob\""]);
    let j = json(
        &env.run(&["--json", "state", "k", "demo/Accounts@1", "--keys"])
            .ok(),
    );
    let cells = j["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2);
    let mut names: Vec<&str> = cells.iter().map(|c| c["key"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"]);
    assert!(
        cells
            .iter()
            .all(|c| c["state"].as_str().unwrap().starts_with("b3:"))
    );
    assert_ne!(cells[0]["state"], cells[1]["state"]);
    let a = json(
        &env.run(&[
            "--json",
            "state",
            "k",
            "demo/Accounts@1",
            "--key",
            r#""alice""#,
        ])
        .ok(),
    );
    assert_eq!(a["state"], serde_json::json!({"balance": 7, "ops": 2}));
    rejected(&mut t, &env, &["state", "k", "demo/Accounts@1"], "--key");
    let none = json(
        &env.run(&[
            "--json",
            "state",
            "k",
            "demo/Accounts@1",
            "--key",
            r#""zed""#,
        ])
        .ok(),
    );
    assert_eq!(none["state"], serde_json::Value::Null);
    insta::assert_snapshot!(env.sh(&["log", "k", "-n", "1"]), @r#"
    $ aos log k -n 1
    #4 b3:b17585affd240e675d4832402db418503759d88124343043f5612a6329509b0b derived (from #3 by demo/Accounts@1) demo/Overdraft@1 {"account":"alice","balance":7,"requested":9}
    "#);
    env.run(&["send", "k", ev, r#"{"account":"bob","op":"Close"}"#])
        .ok();
    let keys = env
        .run(&["state", "k", "demo/Accounts@1", "--keys"])
        .ok()
        .out();
    assert_eq!(keys, "\"alice\"\n");
    env.run(&["verify", "k"]).ok();
    insta::assert_snapshot!(t, @r#"
    $ aos send k demo/AccountEvent@1 {"account":"bob","op":"Close"} --key "alice"
    [exit 1]
    --- stderr
    error: the key given does not match the event's `account` (the key of demo/Accounts@1)
    hint: --key must equal the event's `account`; or leave it out
    $ aos state k demo/Accounts@1
    [exit 1]
    --- stderr
    error: demo/Accounts@1 is keyed: the key of one of its cells is needed
    hint: give the cell's key with --key JSON, or list the keys with --keys
    "#);
}

// ---------------------------------------------------------------------------------------------
// Tampering

/// Every file under `.aos/objects` that holds object bytes: loose objects and packs.
fn object_files(env: &Env) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![env.store().join("objects")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_none_or(|x| x == "pack") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn flip_and_check(env: &Env, file: &std::path::Path, pos: u64) {
    let orig = std::fs::read(file).unwrap();
    let mut perms = std::fs::metadata(file).unwrap().permissions();
    let ro = perms.readonly();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(file, perms.clone()).unwrap();
    let mut bad = orig.clone();
    bad[pos as usize] ^= 0x20;
    std::fs::write(file, &bad).unwrap();
    let fsck = env.run(&["fsck"]);
    std::fs::write(file, &orig).unwrap();
    perms.set_readonly(ro);
    std::fs::set_permissions(file, perms).unwrap();
    assert_eq!(
        fsck.code,
        1,
        "fsck after flipping byte {pos} of {}",
        file.display()
    );
}

#[test]
fn flipped_bytes_are_detected() {
    let env = Env::with_counter("3");
    for ev in [
        r#"{"Start":{"target":2}}"#,
        r#""Tick""#,
        r#""Tick""#,
        r#""Tick""#,
        r#""Reset""#,
    ] {
        tick(&env, ev);
    }
    env.run(&["gc"]).ok();
    env.run(&["fsck"]).ok();
    env.run(&["verify", "c"]).ok();
    let files = object_files(&env);
    assert!(!files.is_empty());
    let mut tried = 0;
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        // Sample positions across the file, ends included.
        let mut pos: Vec<u64> = (0..10).map(|i| i * (len - 1) / 9).collect();
        pos.dedup();
        for p in pos {
            flip_and_check(&env, f, p);
            tried += 1;
        }
    }
    assert!(tried >= 10);
    env.run(&["fsck"]).ok();
    env.run(&["verify", "c"]).ok();
}

/// Rewrites the entry at `height` with `edit`, re-chains every later entry, and points the
/// world at the new head. Returns the forged head.
fn forge(env: &Env, world: &str, height: u64, edit: impl FnOnce(&mut Entry)) -> ObjectId {
    let store = Store::open(&env.store()).unwrap();
    let wref = world_ref(world).unwrap();
    let head = store.refs().read(&wref).unwrap().unwrap();
    let top = read_entry(&store, &head).unwrap().height;
    let mut prev = None;
    let mut edit = Some(edit);
    for h in height..=top {
        let id = read_entry_at(&store, &head, h).unwrap();
        let mut e = read_entry(&store, &id).unwrap();
        if let Some(edit) = edit.take() {
            edit(&mut e);
        } else {
            e.prev = prev;
        }
        let (bytes, nid) = e.encode();
        assert_eq!(store.put(Kind::Entry, &bytes).unwrap(), nid);
        prev = Some(nid);
    }
    let new = prev.unwrap();
    assert_ne!(new, head);
    store
        .refs()
        .update(&wref, Some(new), Expected::Any, "forged")
        .unwrap();
    new
}

fn step_state(env: &Env, height: u64) -> ObjectId {
    let store = Store::open(&env.store()).unwrap();
    let head = store
        .refs()
        .read(&world_ref("c").unwrap())
        .unwrap()
        .unwrap();
    let e = read_entry(&store, &read_entry_at(&store, &head, height).unwrap()).unwrap();
    let Body::Event(ev) = e.body else {
        panic!("not an event")
    };
    ev.steps[0].state.unwrap()
}

fn divergence(env: &Env) -> serde_json::Value {
    let r = env.run(&["--json", "verify", "c"]).fails(1);
    let j = json(&r);
    assert_eq!(j["ok"], false);
    j["divergence"].clone()
}

fn ticking_world() -> Env {
    let env = Env::with_counter("0");
    tick(&env, r#"{"Start":{"target":100}}"#);
    for _ in 0..5 {
        tick(&env, r#""Tick""#);
    }
    env
}

#[test]
fn forged_state_digest_is_named() {
    let env = ticking_world();
    let real = step_state(&env, 4);
    let forged = step_state(&env, 3);
    forge(&env, "c", 4, |e| {
        let Body::Event(ev) = &mut e.body else {
            panic!()
        };
        ev.steps[0].state = Some(forged);
    });
    // The forged chain is well-formed: log and show read it.
    env.run(&["log", "c"]).ok();
    let d = divergence(&env);
    assert_eq!(d["height"], 4);
    assert_eq!(d["reducer"], "demo/Counter@1");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("expected state {forged}")),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("replay computed {real}")),
        "{detail}"
    );
    insta::assert_snapshot!(env.sh(&["verify", "c"]), @"
    $ aos verify c
    [exit 1]
    --- stderr
    error: divergence at height 4 (entry b3:e4b430a7180c64fe26a137a5378334d12adfb7720f93d492aeec87d5c626d559), reducer demo/Counter@1: expected state b3:aa9baeefe6ccc8dbafa83d35d7910c4a3bf4b9ec05216fe766be8b7b91947bd2, replay computed b3:0a1606b0b7011e9e7449dde7bc8499a2d56f419af56ed2dc692d432e36c5378e
    ");
    // The forged entries were stored as loose objects: damage to any of them is caught.
    env.run(&["fsck"]).ok();
    let loose: Vec<_> = object_files(&env)
        .into_iter()
        .filter(|p| p.extension().is_none())
        .collect();
    assert!(loose.len() >= 3, "{loose:?}");
    for f in &loose {
        let len = std::fs::metadata(f).unwrap().len();
        for p in [0, len / 3, len / 2, len - 1] {
            flip_and_check(&env, f, p);
        }
    }
    env.run(&["fsck"]).ok();
}

#[test]
fn forged_event_value_diverges_at_its_height() {
    let env = ticking_world();
    let store = Store::open(&env.store()).unwrap();
    let reset = World::open(&store, "c")
        .unwrap()
        .parse_event(
            "demo/CounterEvent@1",
            &parse_json(r#""Reset""#).unwrap(),
            None,
        )
        .unwrap()
        .value;
    forge(&env, "c", 3, |e| {
        let Body::Event(ev) = &mut e.body else {
            panic!()
        };
        assert_ne!(ev.value, reset);
        ev.value = reset;
    });
    let d = divergence(&env);
    assert_eq!(d["height"], 3);
    assert_eq!(d["reducer"], "demo/Counter@1");
    let detail = d["detail"].as_str().unwrap();
    assert!(
        detail.contains(&step_state(&env, 3).to_string()),
        "{detail}"
    );
}

#[test]
fn forged_genesis_is_rejected() {
    // Changing the configuration in the genesis entry and re-chaining everything moves the
    // head, and the recorded history no longer follows from the new configuration.
    let env = ticking_world();
    let old = worlds(&env)[0]["head"].clone();
    let new = forge(&env, "c", 0, |e| {
        let Body::Genesis(g) = &mut e.body else {
            panic!()
        };
        g.snapshot_every = 2;
    });
    assert_ne!(old, serde_json::json!(new.to_string()));
    // With snapshot_every = 2 the recorded history lacks the markers the genesis now asks for.
    let d = divergence(&env);
    assert_eq!(d["height"], 3);
}

// ---------------------------------------------------------------------------------------------
// More behaviours

#[test]
fn a_writer_without_the_turn_commits_optimistically_and_rebases() {
    let ts = TempStore::new();
    ts.example_world("c", "counter", 0);
    // Writers that give up waiting for the turn at once, and someone holding the world's
    // turn (objects-spec §5): they go ahead optimistically.
    let opts = aos::store::StoreOptions {
        lock_wait: std::time::Duration::ZERO,
        ..aos::store::StoreOptions::default()
    };
    let impatient = aos::store::Store::open_with(ts.dir.path(), &opts).unwrap();
    let turn = ts.dir.path().join("locks/turn/refs%worlds%c");
    std::fs::create_dir_all(turn.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&turn).unwrap();
    held.lock().unwrap();
    let mut w1 = World::open(&impatient, "c").unwrap();
    let mut w2 = World::open(&impatient, "c").unwrap();
    let tick = CEv::Tick.parse(&w1);
    let mut evs = vec![CEv::Tick.parse(&w2), CEv::Start(9).parse(&w2)].into_iter();
    // w1 commits while w2's group is half applied: w2's commit finds the world moved and
    // applies its group again on the new head.
    let mut n = 0;
    let interleaved = std::iter::from_fn(|| {
        n += 1;
        if n == 2 {
            send_all(&mut w1, vec![tick.clone()], 1);
        }
        evs.next()
    });
    let two = SendOptions {
        commit_events: 2,
        ..SendOptions::default()
    };
    let s = w2.send(interleaved, &two, &NoProgress).unwrap();
    drop(held);
    assert_eq!((s.events, s.rebases, s.height), (2, 1, 3));
    verify(&ts.store, "c", &VerifyFrom::Genesis, &NoProgress).unwrap();
}

/// Records what a send says while it waits.
#[derive(Default)]
struct Waits(std::sync::Mutex<Vec<Option<String>>>);

impl aos::progress::Progress for Waits {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
    fn waiting(&self, what: Option<&str>) {
        self.0.lock().unwrap().push(what.map(str::to_owned));
    }
}

#[test]
fn a_writer_waiting_for_its_turn_says_so_and_then_goes_ahead() {
    let ts = TempStore::new();
    ts.example_world("c", "counter", 0);
    let opts = aos::store::StoreOptions {
        lock_wait: std::time::Duration::from_millis(700),
        ..aos::store::StoreOptions::default()
    };
    let store = aos::store::Store::open_with(ts.dir.path(), &opts).unwrap();
    let turn = ts.dir.path().join("locks/turn/refs%worlds%c");
    std::fs::create_dir_all(turn.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&turn).unwrap();
    held.lock().unwrap();
    let mut w = World::open(&store, "c").unwrap();
    let waits = Waits::default();
    let start = std::time::Instant::now();
    let ev = CEv::Tick.parse(&w);
    let s = w.send(vec![ev], &SendOptions::default(), &waits).unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_millis(700));
    assert_eq!(
        s.events, 1,
        "the turn's holder never let go: the send went ahead without it"
    );
    assert_eq!(
        *waits.0.lock().unwrap(),
        [Some("another writer of world `c`".to_owned()), None]
    );
    drop(held);
}

#[test]
fn a_stale_handle_catches_up_with_the_new_head() {
    let ts = TempStore::new();
    ts.example_world("c", "counter", 0);
    let mut w1 = ts.open("c");
    let mut w2 = ts.open("c");
    let e1 = CEv::Tick.parse(&w1);
    send_all(&mut w1, vec![e1], 1);
    let head = w1.head();
    // w2 was opened before w1 appended: before its group it catches up with the new head
    // (replaying w1's entry), so its event goes on top with no rebase. Both events are in
    // the history, once each.
    let e2 = CEv::Start(9).parse(&w2);
    let s = w2
        .send(vec![e2], &SendOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!((s.events, s.rebases, s.height), (1, 0, 2));
    let w = ts.open("c");
    assert_eq!(w.head(), w2.head());
    assert_eq!(
        aos::kernel::replay::read_entry_at(&ts.store, &w.head(), 1).unwrap(),
        head,
        "w1's event stays where it was acknowledged"
    );
    verify(&ts.store, "c", &VerifyFrom::Genesis, &NoProgress).unwrap();
    // The same history sent by one writer gives the same state.
    let seq = TempStore::new();
    seq.example_world("c", "counter", 0);
    let mut one = seq.open("c");
    let evs = vec![CEv::Tick.parse(&one), CEv::Start(9).parse(&one)];
    send_all(&mut one, evs, 1);
    assert_eq!(
        plain_state(&w, "demo/Counter@1"),
        plain_state(&seq.open("c"), "demo/Counter@1")
    );
    // A view never rebases: sending to it fails, and nothing is appended.
    let mut view = aos::world::World::view(&ts.store, head, Some("c")).unwrap();
    let e3 = CEv::Tick.parse(&view);
    let err = view
        .send(vec![e3], &SendOptions::default(), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, aos::kernel::WorldError::Moved(ref n) if n == "c"),
        "{err}"
    );
    assert_eq!(ts.open("c").head(), w2.head());
}

#[test]
fn starved_reducers_fault_and_keep_their_state() {
    let env = Env::new();
    env.run(&[
        "world",
        "new",
        "f",
        "--example",
        "counter",
        "--fuel",
        "1000",
    ])
    .ok();
    for ev in [r#"{"Start":{"target":1}}"#, r#""Tick""#] {
        let r = env
            .run(&["--json", "send", "f", "demo/CounterEvent@1", ev])
            .ok();
        let j = json(&r);
        assert_eq!(
            (j["entries"].as_u64(), j["faults"].as_u64()),
            (Some(2), Some(1))
        );
    }
    insta::assert_snapshot!(env.sh(&["log", "f", "-n", "1"]), @"
    $ aos log f -n 1
    #4 b3:7cc4ae9f53b415807fe4831b0c137687d23295afe1ea59f2ca2d00a42383b15d fault demo/Counter@1 on #3: out-of-fuel (out of fuel)
    ");
    let s = json(&env.run(&["--json", "state", "f", "demo/Counter@1"]).ok());
    assert_eq!(s["state"], serde_json::Value::Null);
    assert_eq!(s["height"], 4);
    let v = json(&env.run(&["--json", "verify", "f"]).ok());
    assert_eq!(
        (v["faults"].as_u64(), v["events"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn world_names_are_checked() {
    let mut t = String::new();
    let env = Env::new();
    for bad in ["", "a/../b", "a b", ".x", "x.lock", "a/b"] {
        rejected(
            &mut t,
            &env,
            &["world", "new", bad, "--example", "counter"],
            "invalid world name",
        );
    }
    env.run(&["world", "new", "a.b-c_d", "--example", "counter"])
        .ok();
    tick_world(&env, "a.b-c_d");
    let g = json(&env.run(&["--json", "show", "a.b-c_d@1"]).ok());
    assert_eq!(g["kind"], "event");
    assert!(
        g["entry"]["steps"][0]["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("b3:")),
        "step states render as ids: {g}"
    );
    env.run(&["verify", "a.b-c_d"]).ok();
    env.run(&["show", "a.b-c_d@-1"]).fails(2);
    env.run(&["show", "nope@0"]).fails(1);
    rejected(
        &mut t,
        &env,
        &["world", "new", "z", "--example", "counter", "--fuel", "0"],
        "fuel",
    );
    insta::assert_snapshot!(t, @r#"
    $ aos world new  --example counter
    [exit 1]
    --- stderr
    error: invalid world name ``: invalid ref name "refs/worlds/": a ref name does not end with `/`
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new a/../b --example counter
    [exit 1]
    --- stderr
    error: invalid world name `a/../b`: it must not contain `/`
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new a b --example counter
    [exit 1]
    --- stderr
    error: invalid world name `a b`: invalid ref name "refs/worlds/a b": character ' ' is not allowed (components use ASCII letters, digits and `-_.+@=`)
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new .x --example counter
    [exit 1]
    --- stderr
    error: invalid world name `.x`: invalid ref name "refs/worlds/.x": component ".x" starts with `.`
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new x.lock --example counter
    [exit 1]
    --- stderr
    error: invalid world name `x.lock`: invalid ref name "refs/worlds/x.lock": component "x.lock" ends with `.lock` (reserved for lock files)
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new a/b --example counter
    [exit 1]
    --- stderr
    error: invalid world name `a/b`: it must not contain `/`
    hint: a world name is one segment of a ref name: no `/`, spaces or control characters
    $ aos world new z --example counter --fuel 0
    [exit 1]
    --- stderr
    error: the fuel per step must be at least 1
    hint: give --fuel a value of at least 1
    "#);
}

fn tick_world(env: &Env, w: &str) {
    env.run(&["send", w, "demo/CounterEvent@1", r#""Tick""#])
        .ok();
}

#[test]
fn verify_from_a_checkpoint_and_an_empty_batch() {
    let env = Env::with_counter("0");
    tick(&env, r#""Tick""#);
    let cp = std::fs::read_to_string(env.store().join("refs/checkpoints/c")).unwrap();
    let cp = cp.trim();
    let v = json(&env.run(&["--json", "verify", "c", "--from", cp]).ok());
    assert_eq!(
        (v["from_height"].as_u64(), v["entries"].as_u64()),
        (Some(1), Some(0))
    );
    tick(&env, r#""Tick""#);
    let v = json(&env.run(&["--json", "verify", "c", "--from", cp]).ok());
    assert_eq!(
        (v["from_height"].as_u64(), v["entries"].as_u64()),
        (Some(1), Some(1))
    );
    // A value that is not a snapshot.
    let head = worlds(&env)[0]["head"].as_str().unwrap().to_owned();
    env.run(&["verify", "c", "--from", &head]).fails(1);
    env.write("empty.jsonl", b"\n\n");
    let j = json(
        &env.run(&["--json", "send", "c", "--batch", "empty.jsonl"])
            .ok(),
    );
    assert_eq!(
        (j["events"].as_u64(), j["height"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(worlds(&env)[0]["head"], head.as_str());
}
