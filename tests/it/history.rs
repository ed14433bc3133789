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
    let log = env.run(&["log", "d"]).ok().out();
    let at6 = log.lines().find(|l| l.starts_with("#6 ")).unwrap();
    assert!(at6.contains("forked from c at height 6"), "{at6}");
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
    let r = env.run(&["fork", "c", "e"]).fails(1);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);
    let r = env.run(&["fork", "c@99", "h"]).fails(1);
    assert!(r.stderr.contains("beyond the head"), "{}", r.stderr);
    let r = env.run(&["fork", "nope", "h"]).fails(1);
    assert!(r.stderr.contains("no world named `nope`"), "{}", r.stderr);
    env.run(&["-q", "send", "e", "demo/CounterEvent@1", "\"Reset\""])
        .ok();
    let e_head = head(&env, "e");
    let r = env.run(&["fork", &format!("c@{e_head}"), "h"]).fails(1);
    assert!(r.stderr.contains("not in the history"), "{}", r.stderr);
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
    let text = env.run(&["diff", "k", "k2", "--stat"]).fails(1).out();
    assert!(
        text.contains("cells: 1 added, 1 removed, 1 changed"),
        "{text}"
    );
    // The text form names the cells with their keys.
    let text = env.run(&["diff", "k", "k2"]).fails(1).out();
    assert!(text.contains("~ [\"a1\"]"), "{text}");
    assert!(text.contains("~ /balance: 10 -> 15"), "{text}");
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
    let text = env.run(&["diff", "a", "b"]).fails(1).out();
    assert!(text.contains("+ defschema demo/Extra@1"), "{text}");
    // Neither has state yet.
    assert_eq!(v["state"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_rejects_bad_sides() {
    let env = Env::new();
    counter_world(&env, "c", 1);
    let r = env.run(&["diff", "c", "nope"]).fails(1);
    assert!(r.stderr.contains("no world named `nope`"), "{}", r.stderr);
    let r = env.run(&["diff", "c", "c@x"]).fails(1);
    assert!(
        r.stderr.contains("neither a height nor an id"),
        "{}",
        r.stderr
    );
    // An id that is not an entry.
    let manifest = json(&env.run(&["--json", "diff", "c", "c"]).ok())["a"]["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = env.run(&["diff", "c", &manifest]).fails(1);
    assert!(r.stderr.contains("not a journal entry"), "{}", r.stderr);
}
