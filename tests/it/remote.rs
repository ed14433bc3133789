//! Stores exchanging worlds through path remotes, as two users would: clone, fetch, pull,
//! push, leases, divergence, interruption and corrupt sources.

use std::path::Path;
use std::time::Duration;

use crate::common::{Env, json};

fn events(env: &Env, file: &str, n: usize, start: bool) -> String {
    let mut lines = String::new();
    if start {
        lines.push_str(
            "{\"schema\":\"demo/CounterEvent@1\",\"value\":{\"Start\":{\"target\":1000000}}}\n",
        );
    }
    for _ in 0..n {
        lines.push_str("{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\"}\n");
    }
    env.write(file, lines.as_bytes())
        .to_str()
        .unwrap()
        .to_owned()
}

fn send(env: &Env, world: &str, n: usize) {
    let f = events(env, "more.jsonl", n, false);
    env.run(&["-q", "send", world, "--batch", &f]).ok();
}

fn counter(env: &Env, world: &str, n: usize) {
    env.run(&["-q", "world", "new", world, "--example", "counter"])
        .ok();
    let f = events(env, "first.jsonl", n, true);
    env.run(&["-q", "send", world, "--batch", &f]).ok();
}

/// A world's head, or `None`.
fn head(env: &Env, world: &str) -> Option<String> {
    let v = json(&env.run(&["--json", "world", "list"]).ok());
    v.as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == world)
        .map(|w| w["head"].as_str().unwrap().to_owned())
}

fn objects(env: &Env) -> u64 {
    json(&env.run(&["--json", "fsck"]).ok())["objects"]
        .as_u64()
        .unwrap()
}

fn path(env: &Env) -> &str {
    env.path().to_str().unwrap()
}

/// A second user: an empty directory, then a clone of `src` into it.
fn clone_of(src: &Env) -> Env {
    let env = Env::bare();
    env.run(&["-q", "clone", path(src), "."]).ok();
    env
}

#[test]
fn clone_fetch_pull_push_round_trip() {
    let a = Env::new();
    counter(&a, "c", 50);
    a.run(&["-q", "world", "new", "k", "--example", "keyed"])
        .ok();
    a.run(&[
        "-q",
        "send",
        "k",
        "demo/AccountEvent@1",
        r#"{"account":"x","op":{"Deposit":{"amount":3}}}"#,
    ])
    .ok();
    let b = clone_of(&a);
    // Same heads, verified, complete.
    for w in ["c", "k"] {
        assert_eq!(head(&b, w), head(&a, w), "{w}");
        b.run(&["-q", "verify", w]).ok();
    }
    b.run(&["fsck"]).ok();
    let remotes = json(&b.run(&["--json", "remote", "list"]).ok());
    assert_eq!(remotes[0]["name"], "origin");
    // A moves on; B fetches (its world stays), then pulls (fast-forward).
    send(&a, "c", 10);
    let f = json(&b.run(&["--json", "fetch", "origin"]).ok());
    let fc = f["worlds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["world"] == "c")
        .unwrap()
        .clone();
    assert_eq!(fc["new"].as_str(), head(&a, "c").as_deref());
    assert_ne!(
        head(&b, "c"),
        head(&a, "c"),
        "fetch does not move the world"
    );
    let p = json(&b.run(&["--json", "pull", "origin", "c", "--verify"]).ok());
    assert_eq!(p["update"], "fast-forward");
    assert_eq!(p["verified"], true);
    assert_eq!(
        p["received"]["objects"], 0,
        "fetch brought everything already"
    );
    assert_eq!(head(&b, "c"), head(&a, "c"));
    let p = json(&b.run(&["--json", "pull", "origin", "c"]).ok());
    assert_eq!(p["update"], "up-to-date");
    // B moves on and pushes back; then pushes under another name.
    send(&b, "c", 5);
    let r = json(&b.run(&["--json", "push", "origin", "c"]).ok());
    assert_eq!(r["update"], "fast-forward");
    assert!(r["sent"]["objects"].as_u64().unwrap() >= 5);
    assert_eq!(head(&a, "c"), head(&b, "c"));
    a.run(&["-q", "verify", "c"]).ok();
    let r = json(&b.run(&["--json", "push", "origin", "c:copy"]).ok());
    assert_eq!(r["update"], "created");
    assert_eq!(
        r["sent"]["objects"], 0,
        "the remote has every object already"
    );
    assert_eq!(head(&a, "copy"), head(&b, "c"));
    a.run(&["fsck"]).ok();
}

#[test]
fn diverged_worlds_need_force() {
    let a = Env::new();
    counter(&a, "c", 5);
    let b = clone_of(&a);
    // Both sides append different events.
    send(&a, "c", 1);
    b.run(&["-q", "send", "c", "demo/CounterEvent@1", "\"Reset\""])
        .ok();
    let before = head(&b, "c");
    insta::assert_snapshot!(b.sh(&["pull", "origin", "c"]), @"
    $ aos pull origin c
    [exit 1]
    --- stderr
    error: world `c` has diverged from remote `origin` (local b3:a74e331bc0ad05ba679491c0e8d78f096f8b2221016abacb86a3384e97a92c24, remote b3:c87912b246c88dd34ab5621086cd357c17ba2fcce865d1742596dbcaf8383489); nothing moved
    hint: `aos diff c b3:c87912b246c88dd34ab5621086cd357c17ba2fcce865d1742596dbcaf8383489` shows how; to keep the local version, `aos fork c OTHER-NAME` first; --force replaces it
    ");
    assert_eq!(head(&b, "c"), before, "nothing moved");
    // Pushing the diverged world is not a fast-forward either.
    insta::assert_snapshot!(b.sh(&["push", "origin", "c"]), @"
    $ aos push origin c
    [exit 1]
    --- stderr
    error: push to `origin` world `c` is not a fast-forward (remote b3:c87912b246c88dd34ab5621086cd357c17ba2fcce865d1742596dbcaf8383489, local b3:a74e331bc0ad05ba679491c0e8d78f096f8b2221016abacb86a3384e97a92c24); nothing was pushed
    hint: pull first, or replace the remote world with --force
    ");
    assert_ne!(head(&a, "c"), before);
    // Forced: the local world becomes the remote one.
    let p = json(&b.run(&["--json", "pull", "origin", "c", "--force"]).ok());
    assert_eq!(p["update"], "forced");
    assert_eq!(head(&b, "c"), head(&a, "c"));
    b.run(&["-q", "verify", "c"]).ok();
}

#[test]
fn concurrent_pushes_one_wins_the_other_gets_a_stale_lease() {
    let a = Env::new();
    counter(&a, "c", 5);
    let b = clone_of(&a);
    let c = clone_of(&a);
    send(&b, "c", 3);
    c.run(&["-q", "send", "c", "demo/CounterEvent@1", "\"Reset\""])
        .ok();
    // Both pushes start together; each has the same lease (the head both cloned).
    let spawn = |env: &Env| {
        crate::common::command(env.path())
            .args(["push", "origin", "c"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pb, pc) = (spawn(&b), spawn(&c));
    let (ob, oc) = (
        pb.wait_with_output().unwrap(),
        pc.wait_with_output().unwrap(),
    );
    let codes = (ob.status.code().unwrap(), oc.status.code().unwrap());
    assert!(codes == (0, 1) || codes == (1, 0), "{codes:?}");
    let loser = if codes.0 == 1 { &ob } else { &oc };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("stale lease"), "{err}");
    let winner = if codes.0 == 0 { &b } else { &c };
    assert_eq!(head(&a, "c"), head(winner, "c"));
    a.run(&["-q", "verify", "c"]).ok();
    a.run(&["fsck"]).ok();
}

#[test]
fn an_interrupted_pull_can_be_retried() {
    let a = Env::new();
    counter(&a, "c", 2_000);
    let b = clone_of(&a);
    send(&a, "c", 20_000);
    let old = head(&b, "c");
    // Kill pulls at different moments; each leaves a consistent store.
    for delay in [30u64, 120, 300] {
        let mut child = crate::common::command(b.path())
            .args(["-q", "pull", "origin", "c"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        b.run(&["fsck"]).ok();
        // The world is where it was or where the remote is: never in between.
        let h = head(&b, "c");
        assert!(h == old || h == head(&a, "c"), "{h:?}");
    }
    let p = json(&b.run(&["--json", "pull", "origin", "c"]).ok());
    assert!(
        p["update"] == "fast-forward" || p["update"] == "up-to-date",
        "{p}"
    );
    assert_eq!(head(&b, "c"), head(&a, "c"));
    b.run(&["-q", "verify", "c"]).ok();
    b.run(&["fsck"]).ok();
}

#[test]
fn bad_remotes_and_corrupt_sources_are_refused() {
    let a = Env::new();
    counter(&a, "c", 3);
    let b = Env::new();
    // Names and places.
    for bad in ["a/b", "..", ".x", "x.lock", ""] {
        b.run(&["remote", "add", bad, path(&a)]).fails(1);
    }
    b.run(&["remote", "add", "nowhere", "/does/not/exist"]).ok();
    insta::assert_snapshot!(b.sh(&["fetch", "nowhere"]), @"
    $ aos fetch nowhere
    [exit 1]
    --- stderr
    error: remote `nowhere` (/does/not/exist): /does/not/exist is not an aos store: cannot read /does/not/exist/format: No such file or directory (os error 2)
    ");
    b.run(&["remote", "add", "origin", path(&a)]).ok();
    insta::assert_snapshot!(a.redact(&b.sh(&["remote", "add", "origin", path(&a)])), @"
    $ aos remote add origin $TMP
    [exit 1]
    --- stderr
    error: a remote named `origin` exists already
    ");
    insta::assert_snapshot!(b.sh(&["pull", "origin", "nope"]), @"
    $ aos pull origin nope
    [exit 1]
    --- stderr
    error: remote `origin` has no world named `nope`
    ");
    // Damage one loose object in the source: the fetch is refused and nothing is kept.
    a.run(&["-q", "gc", "--prune", "now"]).ok();
    let before = objects(&b);
    let victim = first_loose_or_pack(&a.store());
    flip_last_byte(&victim);
    let r = b.run(&["fetch", "origin"]).fails(1);
    assert!(!r.stderr.is_empty());
    assert_eq!(
        objects(&b),
        before,
        "nothing from a corrupt source is stored"
    );
    assert_eq!(
        b.run(&["show-ref"]).out().matches("refs/remotes/").count(),
        0,
        "no tracking ref moved"
    );
    b.run(&["remote", "remove", "origin"]).ok();
    assert!(!b.run(&["remote", "list"]).ok().out().contains("origin"));
}

/// A pack file of the store if there is one, else a loose object file.
fn first_loose_or_pack(store: &Path) -> std::path::PathBuf {
    let packs = store.join("objects/pack");
    let mut found: Vec<_> = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    found.sort();
    if let Some(p) = found.pop() {
        return p;
    }
    for d in std::fs::read_dir(store.join("objects")).unwrap() {
        let d = d.unwrap().path();
        if d.file_name().unwrap() != "pack"
            && d.is_dir()
            && let Some(f) = std::fs::read_dir(&d).unwrap().next()
        {
            return f.unwrap().path();
        }
    }
    panic!("no object files");
}

/// Flips a byte in the middle of the payload area (for a pack: of the first entry's data).
fn flip_last_byte(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    let at = if p.extension().is_some_and(|x| x == "pack") {
        8 + 50 + 2
    } else {
        bytes.len() - 1
    };
    bytes[at] ^= 0x55;
    std::fs::write(p, bytes).unwrap();
}

#[test]
fn clone_from_a_bundle_file() {
    let a = Env::new();
    counter(&a, "c", 20);
    a.run(&["-q", "bundle", "create", "c.bundle", "c"]).ok();
    let b = Env::bare();
    let bundle = a.path().join("c.bundle");
    let r = json(
        &b.run(&["--json", "clone", bundle.to_str().unwrap(), "."])
            .ok(),
    );
    assert_eq!(r["worlds"][0]["world"], "c");
    assert_eq!(head(&b, "c"), head(&a, "c"));
    b.run(&["-q", "verify", "c"]).ok();
    b.run(&["fsck"]).ok();
    // A damaged bundle: refused, and no store is left behind.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    let bad = a.write("bad.bundle", &bytes);
    let c = Env::bare();
    c.run(&["clone", bad.to_str().unwrap(), "x"]).fails(1);
    assert!(!c.path().join("x/.aos").exists(), "nothing left behind");
}

/// The target of ref `name`, if it exists.
fn ref_of(env: &Env, name: &str) -> Option<String> {
    json(&env.run(&["--json", "show-ref"]).ok())
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| r["id"].as_str().unwrap().to_owned())
}

/// The `forked_from` mark of `aos log --json WORLD`, if any.
fn forked_from(env: &Env, world: &str) -> Option<String> {
    env.run(&["--json", "log", world])
        .ok()
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|v| Some(v.get("forked_from")?.as_str()?.to_owned()))
}

#[test]
fn lineage_travels_with_clone_fetch_pull_and_push() {
    let a = Env::new();
    counter(&a, "c", 5);
    a.run(&["-q", "fork", "c", "d"]).ok();
    send(&a, "d", 2);
    let d_lineage = ref_of(&a, "refs/lineage/d").unwrap();
    // A clone has the lineage, and what it fetched in the tracking refs.
    let b = clone_of(&a);
    assert_eq!(
        ref_of(&b, "refs/lineage/d").as_deref(),
        Some(d_lineage.as_str())
    );
    assert_eq!(
        ref_of(&b, "refs/remotes/origin/lineage/d").as_deref(),
        Some(d_lineage.as_str())
    );
    assert!(ref_of(&b, "refs/lineage/c").is_none());
    assert_eq!(forked_from(&b, "d").as_deref(), Some("c at height 6"));
    // A pull that creates a world brings its lineage.
    a.run(&["-q", "fork", "d@7", "f"]).ok();
    b.run(&["-q", "pull", "origin", "f"]).ok();
    assert_eq!(ref_of(&b, "refs/lineage/f"), ref_of(&a, "refs/lineage/f"));
    assert_eq!(forked_from(&b, "f").as_deref(), Some("d at height 7"));
    // A push that creates a world sends its lineage (and its parent chain).
    b.run(&["-q", "fork", "f", "e"]).ok();
    b.run(&["-q", "push", "origin", "e"]).ok();
    let e_lineage = ref_of(&b, "refs/lineage/e").unwrap();
    assert_eq!(
        ref_of(&a, "refs/lineage/e").as_deref(),
        Some(e_lineage.as_str())
    );
    assert_eq!(
        ref_of(&b, "refs/remotes/origin/lineage/e").as_deref(),
        Some(e_lineage.as_str())
    );
    assert_eq!(forked_from(&a, "e").as_deref(), Some("f at height 7"));
    a.run(&["-q", "fsck"]).ok();
    // Fast-forwards keep the world's lineage on both sides.
    send(&b, "d", 3);
    b.run(&["-q", "push", "origin", "d"]).ok();
    assert_eq!(
        ref_of(&a, "refs/lineage/d").as_deref(),
        Some(d_lineage.as_str())
    );
    send(&a, "d", 1);
    b.run(&["-q", "pull", "origin", "d"]).ok();
    assert_eq!(
        ref_of(&b, "refs/lineage/d").as_deref(),
        Some(d_lineage.as_str())
    );
    assert_eq!(head(&a, "d"), head(&b, "d"));
    // A push that replaces a world (--force) replaces its lineage; the tracking ref follows.
    b.run(&["-q", "push", "origin", "c:d", "--force"]).ok();
    assert!(ref_of(&a, "refs/lineage/d").is_none());
    assert!(ref_of(&b, "refs/remotes/origin/lineage/d").is_none());
    assert_eq!(forked_from(&a, "d"), None);
    a.run(&["-q", "fsck"]).ok();
    b.run(&["-q", "fsck"]).ok();
}
