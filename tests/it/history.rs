//! `aos fork`, `aos diff` and the lineage marks of `aos log`, through the CLI.

use crate::common::{Env, json};
use serde_json::Value;

fn counter_world(env: &Env, name: &str, ticks: usize) {
    env.run(&["-q", "world", "new", name, "--example", "counter"])
        .ok();
    let mut lines = String::from(
        "{\"schema\":\"demo/CounterEvent@1\",\"value\":{\"Start\":{\"target\":100}}}\n",
    );
    for _ in 0..ticks {
        lines.push_str("{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\"}\n");
    }
    let f = env.write(&format!("{name}.jsonl"), lines.as_bytes());
    env.run(&["-q", "send", name, "--batch", f.to_str().unwrap()])
        .ok();
}

fn tick(env: &Env, world: &str) {
    env.run(&["-q", "send", world, "demo/CounterEvent@1", "\"Tick\""])
        .ok();
}

fn head(env: &Env, spec: &str) -> String {
    let v = json(&env.run(&["--json", "diff", spec, spec]).ok());
    v["a"]["head"].as_str().unwrap().to_owned()
}

fn count(env: &Env, world: &str) -> u64 {
    let v = json(&env.run(&["--json", "state", world, "demo/Counter@1"]).ok());
    v["state"]["count"].as_u64().unwrap()
}

#[test]
fn fork_shares_history_and_diverges() {
    let env = Env::new();
    counter_world(&env, "c", 5);
    let r = json(&env.run(&["--json", "fork", "c", "d"]).ok());
    assert_eq!(r["height"], 6);
    assert_eq!(r["checkpoint"], true, "the head's checkpoint is shared");
    assert_eq!(head(&env, "c"), head(&env, "d"));
    // Opening the fork replays nothing: it has the source's checkpoint.
    assert_eq!(count(&env, "d"), 5);
    // Same head: equal, exit 0.
    let v = json(&env.run(&["--json", "diff", "c", "d"]).ok());
    assert_eq!(v["equal"], true);
    assert_eq!(v["state"].as_array().unwrap().len(), 0);
    // Diverge both sides. (The same event on both would give both the same next entry: a
    // journal is deterministic.)
    let restart = r#"{"Start":{"target":50}}"#;
    env.run(&["-q", "send", "c", "demo/CounterEvent@1", restart])
        .ok();
    tick(&env, "d");
    tick(&env, "d");
    assert_eq!(count(&env, "d"), 7);
    let v = json(&env.run(&["--json", "diff", "c", "d", "--log"]).fails(1));
    assert_eq!(v["format"], "aos.diff/1");
    assert_eq!(v["equal"], false);
    assert_eq!(v["history"]["ancestor"]["height"], 6);
    assert_eq!(v["history"]["only_a"], 1);
    assert_eq!(v["history"]["only_b"], 2);
    assert_eq!(v["history"]["log_b"].as_array().unwrap().len(), 2);
    assert_eq!(v["history"]["log_b"][0]["height"], 8);
    assert_eq!(v["manifest"]["equal"], true);
    let st = &v["state"][0];
    assert_eq!(st["reducer"], "demo/Counter@1");
    assert_eq!(st["status"], "changed");
    let count_change = st["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["pointer"] == "/count")
        .unwrap()
        .clone();
    assert_eq!(count_change["op"], "changed");
    assert_eq!(count_change["old"], count(&env, "c"));
    assert_eq!(count_change["new"], 7);
    // `aos log` marks where d was forked and which entries head other worlds.
    insta::assert_snapshot!(env.sh(&["log", "d"]), @r#"
    $ aos log d
    #8 b3:2b2649c75da6651a465a4078f383e76a0e7966319467f127b8155ee3757f25e9 event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:25069e07b22d06dda3f13fb21ccb4bf1a7f8aaeb5426dec710c6cd155514bc5c
    #7 b3:bf9de60669190f0f4604771256834476de57662a6fce611487d8dcf45cf8201c event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:2d458f7c7952efcea868b6950cfc75089fec1f5e04e7eefa7c804ca285a7d1af
    #6 b3:2a44bb23dd5a85af21aa3c3b82c81530ca685dd16fc644749c85610bbbbaaff2 (forked from c at height 6) event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:8eaaeb49756c2531bc765d0d870c7cb6f711e5091f5116a4dba9ae72f1bf7d14
    #5 b3:e1b67f315873a708e4c0f1d2e9a2f16bde7fddcfaeccd2a892160769681786f9 event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:db52d10a2f75e05fc21209484ca63f2ab4c43c291a5806aae31d22d96c8cfe9c
    #4 b3:337f0a89fbc1d2e2ee102b8306d2c14bf41026a136e75f2e0cf6e7ec7258ac82 event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:0a1606b0b7011e9e7449dde7bc8499a2d56f419af56ed2dc692d432e36c5378e
    #3 b3:acc749c25b154ea7cc08ae50e9db82cb9ddd65fa81dfa3e1c2ced8572120c428 event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:aa9baeefe6ccc8dbafa83d35d7910c4a3bf4b9ec05216fe766be8b7b91947bd2
    #2 b3:8bfd48d273c3704b2ed96e737197c4363da0ba95f93ae72b1fae3b2c896ac999 event demo/CounterEvent@1 {"Tick":null}
        -> demo/Counter@1 state b3:f4d8ac745ac293e58bbc66b4d562ab31eb8a030c0349bd7a934cf17e89b0d0d2
    #1 b3:76f5e8212cb697624323a9f3a9152d232d221a7dcd23f5c557d853893c47f9e5 event demo/CounterEvent@1 {"Start":{"target":100}}
        -> demo/Counter@1 state b3:ab5b78714a5b050326b32e51865535107899542307326528b5f0c9d5f14d0df4
    #0 b3:610b31639f110846d3d9f413eb7d9616b4caec7c01a87b1002d9d5edd367b9c3 genesis manifest b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec (1 modules, snapshot every 10000, max derived 1000, fuel 100000000)
    "#);
    let lines: Vec<Value> = env
        .run(&["--json", "log", "d"])
        .ok()
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[2]["height"], 6);
    assert_eq!(lines[2]["forked_from"], "c at height 6");
    assert!(lines[0].get("forked_from").is_none());
    // Both worlds verify.
    env.run(&["-q", "verify", "c"]).ok();
    env.run(&["-q", "verify", "d"]).ok();
}

#[test]
fn fork_at_a_past_point() {
    let env = Env::new();
    counter_world(&env, "c", 5);
    env.run(&["-q", "fork", "c@3", "e"]).ok();
    assert_eq!(count(&env, "e"), 2);
    let at3 = head(&env, "c@3");
    assert_eq!(head(&env, "e"), at3);
    // By id, alone or checked against a world.
    env.run(&["-q", "fork", &at3, "f"]).ok();
    env.run(&["-q", "fork", &format!("c@{at3}"), "g"]).ok();
    assert_eq!(head(&env, "f"), at3);
    assert_eq!(head(&env, "g"), at3);
    // The past fork keeps working and verifies.
    tick(&env, "e");
    assert_eq!(count(&env, "e"), 3);
    env.run(&["-q", "verify", "e"]).ok();
    // Bad requests: exit 1 with a clear message, nothing created.
    insta::assert_snapshot!(env.sh(&["fork", "c", "e"]), @"
    $ aos fork c e
    [exit 1]
    --- stderr
    error: a world named `e` exists already
    ");
    insta::assert_snapshot!(env.sh(&["fork", "c@99", "h"]), @"
    $ aos fork c@99 h
    [exit 1]
    --- stderr
    error: height 99 is beyond the head (height 6)
    hint: the world's heights run from 0 to 6
    ");
    insta::assert_snapshot!(env.sh(&["fork", "nope", "h"]), @"
    $ aos fork nope h
    [exit 1]
    --- stderr
    error: no world named `nope`
    hint: `aos world list` shows the worlds of this store
    ");
    env.run(&["-q", "send", "e", "demo/CounterEvent@1", "\"Reset\""])
        .ok();
    let e_head = head(&env, "e");
    insta::assert_snapshot!(env.sh(&["fork", &format!("c@{e_head}"), "h"]), @"
    $ aos fork c@b3:3779c6468b6606535231ea8d246778702fdf52b0480fc20e64dccf5cd1932226 h
    [exit 1]
    --- stderr
    error: b3:3779c6468b6606535231ea8d246778702fdf52b0480fc20e64dccf5cd1932226 is not in the history of world `c`
    ");
    let worlds = env.run(&["world", "list"]).ok().out();
    assert!(!worlds.contains('h'), "{worlds}");
}

#[test]
fn diff_of_cells_and_stat() {
    let env = Env::new();
    env.run(&["-q", "world", "new", "k", "--example", "keyed"])
        .ok();
    let dep = |w: &str, acct: &str, n: u64| {
        let v = format!(r#"{{"account":"{acct}","op":{{"Deposit":{{"amount":{n}}}}}}}"#);
        env.run(&["-q", "send", w, "demo/AccountEvent@1", &v]).ok();
    };
    for a in ["a1", "a2", "a3"] {
        dep("k", a, 10);
    }
    env.run(&["-q", "fork", "k", "k2"]).ok();
    dep("k2", "a1", 5); // changed
    dep("k2", "a4", 1); // added
    dep("k", "a5", 2); // only on the other side: shows as removed
    let v = json(&env.run(&["--json", "diff", "k", "k2"]).fails(1));
    let st = &v["state"][0];
    assert_eq!(st["reducer"], "demo/Accounts@1");
    assert_eq!(st["keyed"], true);
    let mut cells: Vec<(String, String)> = st["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    cells.sort();
    assert_eq!(
        cells,
        [
            ("a1".to_owned(), "changed".to_owned()),
            ("a4".to_owned(), "added".to_owned()),
            ("a5".to_owned(), "removed".to_owned())
        ]
    );
    let a1 = st["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "a1")
        .unwrap();
    assert!(
        a1["fields"].as_array().unwrap().contains(
            &serde_json::json!({"op": "changed", "pointer": "/balance", "old": 10, "new": 15})
        ),
        "{a1}"
    );
    // --stat: counts only, its own format.
    let s = json(&env.run(&["--json", "diff", "k", "k2", "--stat"]).fails(1));
    assert_eq!(s["format"], "aos.diff.stat/1");
    assert_eq!(s["state"]["cells_added"], 1);
    assert_eq!(s["state"]["cells_removed"], 1);
    assert_eq!(s["state"]["cells_changed"], 1);
    assert_eq!(s["history"]["only_a"], 1);
    assert_eq!(s["history"]["only_b"], 2);
    insta::assert_snapshot!(env.sh(&["diff", "k", "k2", "--stat"]), @"
    $ aos diff k k2 --stat
    history: common ancestor at height 3 (b3:15b38260c8c5eed0765b038c8a24bd47b3d11660fd6d542a434dd02d293eb4e5); 1 entries only in k, 2 only in k2
    manifest: 0 added, 0 removed, 0 changed nodes
    state: 1 reducers differ; cells: 1 added, 1 removed, 1 changed
    [exit 1]
    ");
    // The text form names the cells with their keys.
    insta::assert_snapshot!(env.sh(&["diff", "k", "k2"]), @r#"
    $ aos diff k k2
    history: common ancestor at height 3 (b3:15b38260c8c5eed0765b038c8a24bd47b3d11660fd6d542a434dd02d293eb4e5); 1 entries only in k, 2 only in k2
    manifest: equal
    state:
      ~ demo/Accounts@1 (3 cells differ)
          - ["a5"]
              - {"ops":1,"balance":2}
          + ["a4"]
              + {"ops":1,"balance":1}
          ~ ["a1"]
              ~ /ops: 1 -> 2
              ~ /balance: 10 -> 15
    [exit 1]
    "#);
    // Points of one history: height 3 is the fork point, the same entry on both.
    env.run(&["diff", "k@3", "k2@3"]).ok();
}

#[test]
fn diff_of_control_planes_after_a_patch() {
    let env = Env::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/worlds/counter/air");
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reducers/wasm/counter.wasm");
    // The same control plane plus one schema, listed in the manifest, by an AIR patch.
    let hash = env.run(&["air", "hash", src.to_str().unwrap()]).ok().out();
    let manifest = hash
        .lines()
        .find(|l| l.ends_with(" manifest"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let patch = format!(
        r#"{{"version": "1", "base_manifest_hash": "{manifest}", "patches": [
            {{"add_def": {{"kind": "defschema", "node": {{"$kind": "defschema", "name": "demo/Extra@1", "type": {{"text": {{}}}}}}}}}},
            {{"set_manifest_refs": {{"add": [{{"kind": "defschema", "name": "demo/Extra@1"}}]}}}}
        ]}}"#
    );
    env.write("p.json", patch.as_bytes());
    env.run(&[
        "-q",
        "air",
        "patch",
        src.to_str().unwrap(),
        "p.json",
        "-o",
        "patched",
        "-w",
    ])
    .ok();
    // The patched manifest pins the module as written (without WASM); binding the WASM when
    // creating the world refreshes that pin.
    let module = format!("demo/Counter@1={}", wasm.display());
    for (name, dir) in [("a", src.to_str().unwrap()), ("b", "patched")] {
        env.run(&["-q", "world", "new", name, "--air", dir, "--wasm", &module])
            .ok();
    }
    let v = json(&env.run(&["--json", "diff", "a", "b"]).fails(1));
    assert_eq!(v["history"]["ancestor"], Value::Null, "separate geneses");
    assert_eq!(v["manifest"]["equal"], false);
    assert_eq!(
        v["manifest"]["added"],
        serde_json::json!([{"kind": "defschema", "name": "demo/Extra@1"}])
    );
    let changed = v["manifest"]["changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["kind"], "manifest");
    assert!(
        changed[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["op"] == "added" && f["pointer"].as_str().unwrap().starts_with("/schemas/")),
        "{changed:?}"
    );
    insta::assert_snapshot!(env.sh(&["diff", "a", "b"]), @r#"
    $ aos diff a b
    history: unrelated (no common entry); 1 entries in a, 1 in b
    manifest: b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec -> b3:57e1c73911a3aa4a4d7eca63a48e6806eb24a8ee82d3bbd70157b0552a8141a8
      + defschema demo/Extra@1
      ~ manifest
          + /schemas/4: {"name":"demo/Extra@1","hash":"b3:7a7d6db50617f2b35351385249f267d0530c95a7454c299ea5ca84688b556076"}
    state: equal
    [exit 1]
    "#);
    // Neither has state yet.
    assert_eq!(v["state"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_rejects_bad_sides() {
    let env = Env::new();
    counter_world(&env, "c", 1);
    insta::assert_snapshot!(env.sh(&["diff", "c", "nope"]), @"
    $ aos diff c nope
    [exit 1]
    --- stderr
    error: no world named `nope`
    hint: `aos world list` shows the worlds of this store
    ");
    insta::assert_snapshot!(env.sh(&["diff", "c", "c@x"]), @"
    $ aos diff c c@x
    [exit 2]
    --- stderr
    error: `c@x`: `x` is neither a height nor an id (`b3:...`)
    hint: a revision is WORLD, WORLD@HEIGHT, WORLD@b3:ID or b3:ID (8 or more hex digits)
    ");
    // An id that is not an entry.
    let manifest = json(&env.run(&["--json", "diff", "c", "c"]).ok())["a"]["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    insta::assert_snapshot!(env.sh(&["diff", "c", &manifest]), @"
    $ aos diff c b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec
    [exit 1]
    --- stderr
    error: b3:ad385df06bf7b89fb2635d199a830802db15acf637fd92eec9d968c286881bec is an air object, not a journal entry
    hint: `aos cat-object ID` shows any object
    ");
}

/// The target of ref `name`, if it exists.
fn ref_of(env: &Env, name: &str) -> Option<String> {
    env.run(&["show-ref", name])
        .ok()
        .out()
        .lines()
        .find_map(|l| {
            let (id, n) = l.split_once(' ')?;
            (n == name).then(|| id.to_owned())
        })
}

/// The lineage object a ref names, as JSON.
fn lineage(env: &Env, name: &str) -> Value {
    let id = ref_of(env, name).unwrap_or_else(|| panic!("no {name}"));
    json(&env.run(&["--json", "cat-object", &id]).ok())
}

/// The `forked_from` marks of `aos log --json`, by height.
fn fork_marks(env: &Env, world: &str) -> Vec<(u64, String)> {
    env.run(&["--json", "log", world])
        .ok()
        .out()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|v| {
            let f = v.get("forked_from")?.as_str()?.to_owned();
            Some((v["height"].as_u64().unwrap(), f))
        })
        .collect()
}

#[test]
fn lineage_is_data_and_chains_through_forks() {
    let env = Env::new();
    counter_world(&env, "c", 5);
    let r = json(&env.run(&["--json", "fork", "c", "d"]).ok());
    let at6 = r["head"].as_str().unwrap().to_owned();
    // The lineage is a value object of a fixed shape, named by refs/lineage/d.
    let l = lineage(&env, "refs/lineage/d");
    assert_eq!(l["from"], "c");
    assert_eq!(l["height"], 6);
    assert_eq!(l["lineage"], 1);
    assert_eq!(l["at"]["$bytes"].as_str().unwrap().len(), 44, "{l}");
    assert!(l.get("parent").is_none(), "c was not forked: {l}");
    assert!(ref_of(&env, "refs/lineage/c").is_none());
    // A fork of a fork links its source's lineage, past its own fork point or before it.
    tick(&env, "d");
    env.run(&["-q", "fork", "d", "e"]).ok();
    env.run(&["-q", "fork", "d@3", "f"]).ok();
    let d_lineage = ref_of(&env, "refs/lineage/d").unwrap();
    for w in ["e", "f"] {
        let l = lineage(&env, &format!("refs/lineage/{w}"));
        assert_eq!(l["from"], "d");
        assert_eq!(l["parent"]["$link"], d_lineage.as_str(), "{l}");
    }
    assert_eq!(fork_marks(&env, "e"), [(7, "d at height 7".to_owned())]);
    assert_eq!(fork_marks(&env, "f"), [(3, "d at height 3".to_owned())]);
    // A fork of an entry id has no source world.
    env.run(&["-q", "fork", &at6, "g"]).ok();
    assert_eq!(fork_marks(&env, "g"), [(6, format!("{at6} at height 6"))]);
    assert!(lineage(&env, "refs/lineage/g").get("from").is_none());

    // `aos log` reads the lineage, not the reflog: without the reflog the mark stays.
    std::fs::remove_file(env.store().join("logs/refs/worlds/d")).unwrap();
    assert_eq!(fork_marks(&env, "d"), [(6, "c at height 6".to_owned())]);
    // Appending keeps the lineage; the whole store, lineage included, checks.
    tick(&env, "d");
    assert_eq!(ref_of(&env, "refs/lineage/d").unwrap(), d_lineage);
    env.run(&["-q", "fsck"]).ok();
    // gc keeps every lineage (they are ref targets and link their parents).
    env.run(&["-q", "gc", "--prune=now"]).ok();
    assert_eq!(
        lineage(&env, "refs/lineage/e")["parent"]["$link"],
        d_lineage.as_str()
    );
    env.run(&["-q", "fsck"]).ok();
}

#[test]
fn worlds_forked_before_lineage_fall_back_to_the_reflog() {
    let env = Env::new();
    counter_world(&env, "c", 3);
    env.run(&["-q", "fork", "c", "d"]).ok();
    // What an older aos wrote: the fork's reflog line, no lineage ref (nor its reflog).
    std::fs::remove_file(env.store().join("refs/lineage/d")).unwrap();
    std::fs::remove_file(env.store().join("logs/refs/lineage/d")).unwrap();
    assert_eq!(fork_marks(&env, "d"), [(4, "c at height 4".to_owned())]);
    // Once a lineage ref has moved, its absence means "not forked".
    env.run(&["-q", "fork", "c", "y"]).ok();
    env.run(&["-q", "update-ref", "-d", "refs/lineage/y"]).ok();
    assert!(fork_marks(&env, "y").is_empty());
    // A world created again under the name of a forked one does not inherit its lineage.
    env.run(&["-q", "fork", "c", "x"]).ok();
    let lineage_x = ref_of(&env, "refs/lineage/x").unwrap();
    env.run(&["-q", "update-ref", "-d", "refs/worlds/x"]).ok();
    // A leftover lineage is only a note for fsck.
    let v = json(&env.run(&["--json", "fsck"]).ok());
    assert!(
        v["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("refs/lineage/x")),
        "{v}"
    );
    env.run(&["-q", "world", "new", "x", "--example", "counter"])
        .ok();
    assert!(ref_of(&env, "refs/lineage/x").is_none());
    assert!(fork_marks(&env, "x").is_empty());
    // The old lineage object is still in the reflog, so gc keeps it.
    env.run(&["-q", "gc", "--prune=now"]).ok();
    env.run(&["cat-object", "--type", &lineage_x]).ok();
}

#[test]
fn fsck_checks_lineage() {
    let env = Env::new();
    counter_world(&env, "c", 3);
    env.run(&["-q", "fork", "c", "d"]).ok();
    let good = ref_of(&env, "refs/lineage/d").unwrap();
    let head = head(&env, "c");
    // A value that is not a lineage, and a lineage whose fork point is not an entry.
    let junk = env.write("junk.json", br#"{"lineage": 1, "height": 4}"#);
    let junk = env
        .run(&["hash-object", "-w", "-t", "value", junk.to_str().unwrap()])
        .ok()
        .out()
        .trim()
        .to_owned();
    let wrong = env.write(
        "wrong.json",
        format!(
            r#"{{"lineage": 1, "height": 9, "at": {{"$bytes": "{}"}}}}"#,
            b64(&head)
        )
        .as_bytes(),
    );
    let wrong = env
        .run(&["hash-object", "-w", "-t", "value", wrong.to_str().unwrap()])
        .ok()
        .out()
        .trim()
        .to_owned();
    for (id, needle, readable) in [
        (&junk, "/at", false),
        (&wrong, "has height 9, it has 4", true),
        (
            &head,
            "expected a value object, found an entry object",
            false,
        ),
    ] {
        env.run(&["-q", "update-ref", "refs/lineage/d", id]).ok();
        let r = env.run(&["fsck"]).fails(1);
        assert!(r.out().contains("refs/lineage/d"), "{}", r.out());
        assert!(r.out().contains(needle), "{needle}: {}", r.out());
        // `aos log` names an unreadable lineage instead of guessing.
        if !readable {
            let r = env.run(&["log", "d"]).fails(1);
            assert!(r.stderr.contains(id.as_str()), "{}", r.stderr);
        }
    }
    env.run(&["-q", "update-ref", "refs/lineage/d", &good]).ok();
    env.run(&["-q", "fsck"]).ok();
}

/// Standard base64 (padded) of the 32 bytes of an id given as `b3:<hex>`.
fn b64(id: &str) -> String {
    let hex = id.strip_prefix("b3:").unwrap();
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// objects-spec/vectors/lineage.json (§15): each lineage's canonical encoding and id, and
/// shapes every reader must reject. `AOS_BLESS=1` recomputes `cbor` and `id`.
#[test]
fn lineage_vectors() {
    use aos::codec::{cbor, json as ajson};
    use aos::object::{Kind, hash};
    use aos::world::lineage::Lineage;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("objects-spec/vectors/lineage.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let bless = std::env::var_os("AOS_BLESS").is_some();
    for t in v["lineages"].as_array_mut().unwrap() {
        let value = ajson::from_json(t["json"].as_str().unwrap()).unwrap();
        let bytes = cbor::encode(&value);
        let id = hash(Kind::Value, &bytes).to_string();
        let l = Lineage::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", t["name"]));
        assert_eq!(l.encode(), bytes, "{}: the shape's own encoding", t["name"]);
        if bless {
            t["cbor"] = hex(&bytes).into();
            t["id"] = id.into();
            continue;
        }
        assert_eq!(t["cbor"], hex(&bytes).as_str(), "{}", t["name"]);
        assert_eq!(t["id"], id.as_str(), "{}", t["name"]);
    }
    for t in v["invalid"].as_array().unwrap() {
        let value = ajson::from_json(t["json"].as_str().unwrap()).unwrap();
        let err = Lineage::decode(&cbor::encode(&value))
            .map(|_| ())
            .expect_err(t["name"].as_str().unwrap())
            .to_string();
        let member = t["member"].as_str().unwrap();
        assert!(
            err.contains(&format!("at `{member}`")),
            "{}: {err}",
            t["name"]
        );
    }
    if bless {
        std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
}
