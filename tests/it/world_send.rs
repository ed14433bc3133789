//! Acknowledgements are the truth: every durable commit of a batch is reported as it happens,
//! a killed or failed batch resumes with `--skip` to exactly its events, and two writers'
//! batches interleave instead of failing.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::{Env, json};

/// A keyed world `bank` (`--example keyed`) with no automatic snapshots.
fn bank() -> Env {
    let env = Env::new();
    env.run(&["init"]).ok();
    env.run(&[
        "world",
        "new",
        "bank",
        "--example",
        "keyed",
        "--snapshot-every",
        "0",
    ])
    .ok();
    env
}

/// `n` deposits of 1 to `account`, as a batch.
fn deposits(account: &str, n: usize) -> String {
    let line = format!(
        "{{\"schema\":\"demo/AccountEvent@1\",\"value\":{{\"account\":\"{account}\",\"op\":{{\"Deposit\":{{\"amount\":1}}}}}}}}\n"
    );
    line.repeat(n)
}

/// The number of operations the world applied to `account`.
fn ops(env: &Env, account: &str) -> u64 {
    let r = env
        .run(&[
            "--json",
            "state",
            "bank",
            "demo/Accounts@1",
            "--key",
            &format!("\"{account}\""),
        ])
        .ok();
    let j = json(&r);
    let state = j.get("state").unwrap_or(&j);
    state["ops"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ops in {j}"))
}

/// The `durable` records among `--json` output lines.
fn acks(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|j| j.get("durable").cloned())
        .collect()
}

#[test]
fn every_commit_is_acknowledged_as_it_happens() {
    let env = bank();
    env.write("five.jsonl", deposits("a", 5).as_bytes());
    let r = env
        .run(&[
            "--json",
            "send",
            "bank",
            "--batch",
            "five.jsonl",
            "--commit-every",
            "2",
        ])
        .ok();
    let a = acks(&r.out());
    let counts: Vec<u64> = a.iter().map(|d| d["events"].as_u64().unwrap()).collect();
    assert_eq!(counts, [2, 4, 5], "{}", r.out());
    // Heights follow on from one commit to the next; the last is the summary's head.
    for w in a.windows(2) {
        assert_eq!(
            w[1]["first_height"].as_u64(),
            w[0]["last_height"].as_u64().map(|h| h + 1)
        );
    }
    let summary: serde_json::Value = serde_json::from_str(r.out().lines().last().unwrap()).unwrap();
    assert_eq!(summary["head"], a[2]["head"]);
    assert_eq!(summary["events"], 5);
    assert_eq!(ops(&env, "a"), 5);
    // Resuming skips what is durable; skipping more than the batch holds is refused.
    env.run(&["send", "bank", "--batch", "five.jsonl", "--skip", "5"])
        .ok();
    assert_eq!(ops(&env, "a"), 5);
    let r = env
        .run(&["send", "bank", "--batch", "five.jsonl", "--skip", "6"])
        .fails(1);
    assert!(r.stderr.contains("cannot skip 6 events"), "{}", r.stderr);
}

#[test]
fn a_killed_batch_resumes_to_exactly_its_events() {
    let env = bank();
    let total = 6_000;
    env.write("many.jsonl", deposits("k", total).as_bytes());
    let mut child = crate::common::command(env.path())
        .args([
            "--json",
            "send",
            "bank",
            "--batch",
            "many.jsonl",
            "--commit-every",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it after a few acknowledgements; what it acknowledged is what is durable.
    let mut acked = 0u64;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(d) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|j| j.get("durable").cloned())
        {
            acked = d["events"].as_u64().unwrap();
            if acked >= 1_000 {
                let _ = child.kill();
                break;
            }
        }
    }
    let _ = child.wait();
    assert!(acked >= 1_000, "acknowledged {acked}");
    // At least what was acknowledged is there (the commit in flight may have landed too,
    // unacknowledged: a kill cannot be told about).
    let landed = ops(&env, "k");
    assert!(landed >= acked, "{landed} < {acked}");
    let skip = landed.to_string();
    env.run(&[
        "-q",
        "send",
        "bank",
        "--batch",
        "many.jsonl",
        "--skip",
        &skip,
    ])
    .ok();
    assert_eq!(ops(&env, "k"), total as u64);
    env.run(&["-q", "verify", "bank"]).ok();
}

/// `aos --json send bank --batch FILE --commit-every N`, running, its output piped.
fn spawn_batch(env: &Env, file: &str, commit_every: &str) -> std::process::Child {
    crate::common::command(env.path())
        .args(["--json", "send", "bank", "--batch", file])
        .args(["--commit-every", commit_every])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn two_writers_batches_interleave() {
    let env = bank();
    let n = 1_000;
    env.write("a.jsonl", deposits("a", n).as_bytes());
    env.write("b.jsonl", deposits("b", n).as_bytes());
    let (a, b) = (
        spawn_batch(&env, "a.jsonl", "25"),
        spawn_batch(&env, "b.jsonl", "25"),
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Every event of both is in the world exactly once, whatever the interleaving.
    assert_eq!((ops(&env, "a"), ops(&env, "b")), (n as u64, n as u64));
    let rebases: u64 = [&a, &b]
        .iter()
        .map(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let last: serde_json::Value =
                serde_json::from_str(out.lines().last().unwrap()).unwrap();
            last["rebases"].as_u64().unwrap()
        })
        .sum();
    eprintln!("rebases: {rebases}");
    env.run(&["-q", "verify", "bank"]).ok();
    env.run(&["-q", "fsck"]).ok();
}

/// `n` deposits of 1 to `account`, each with the idempotency key `{tag}-{i}`.
fn keyed_deposits(account: &str, tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"schema\":\"demo/AccountEvent@1\",\"value\":{{\"account\":\"{account}\",\"op\":{{\"Deposit\":{{\"amount\":1}}}}}},\"id\":\"{tag}-{i}\"}}\n"
            )
        })
        .collect()
}

#[test]
fn a_killed_batch_with_idempotency_keys_is_simply_sent_again() {
    let env = bank();
    let total = 4_000;
    env.write("keyed.jsonl", keyed_deposits("k", "dep", total).as_bytes());
    let mut child = crate::common::command(env.path())
        .args([
            "--json",
            "send",
            "bank",
            "--batch",
            "keyed.jsonl",
            "--commit-every",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("\"durable\"") && line.contains("\"commit\":5,") {
            let _ = child.kill();
            break;
        }
    }
    let _ = child.wait();
    let landed = ops(&env, "k");
    assert!(landed >= 500, "{landed}");
    // The whole batch again, without --skip: what landed is recognised, not appended.
    let r = env
        .run(&["--json", "send", "bank", "--batch", "keyed.jsonl"])
        .ok();
    let summary: serde_json::Value = serde_json::from_str(r.out().lines().last().unwrap()).unwrap();
    assert_eq!(summary["duplicates"].as_u64(), Some(landed), "{}", r.out());
    assert_eq!(summary["events"].as_u64(), Some(total as u64 - landed));
    assert_eq!(ops(&env, "k"), total as u64);
    // And once more: nothing new at all.
    let r = env
        .run(&["--json", "send", "bank", "--batch", "keyed.jsonl"])
        .ok();
    let last = acks(&r.out()).pop().unwrap();
    assert_eq!(last["duplicates"].as_u64(), Some(total as u64));
    assert_eq!(ops(&env, "k"), total as u64);
    env.run(&["-q", "verify", "bank"]).ok();
}

#[test]
fn an_idempotency_key_names_one_event() {
    let env = bank();
    let dep = r#"{"account":"a","op":{"Deposit":{"amount":5}}}"#;
    let first = env
        .run(&["send", "bank", "demo/AccountEvent@1", dep, "--id", "pay-1"])
        .ok();
    let again = env
        .run(&["send", "bank", "demo/AccountEvent@1", dep, "--id", "pay-1"])
        .ok();
    assert!(
        again.out().contains("already in the world at height 1"),
        "{}",
        again.out()
    );
    assert!(
        first.out().contains("appended at height 1"),
        "{}",
        first.out()
    );
    assert_eq!(ops(&env, "a"), 1);
    // The same key for another event is refused, naming where the key is used.
    let other = r#"{"account":"a","op":{"Deposit":{"amount":6}}}"#;
    let r = env
        .run(&[
            "send",
            "bank",
            "demo/AccountEvent@1",
            other,
            "--id",
            "pay-1",
        ])
        .fails(1);
    assert!(
        r.stderr
            .contains("already names a different event, at height 1"),
        "{}",
        r.stderr
    );
    // Inside one batch, too, before anything is appended.
    let line = |amount: u32| {
        format!(
            "{{\"schema\":\"demo/AccountEvent@1\",\"value\":{{\"account\":\"b\",\"op\":{{\"Deposit\":{{\"amount\":{amount}}}}}}},\"id\":\"x\"}}\n"
        )
    };
    env.write("clash.jsonl", format!("{}{}", line(1), line(2)).as_bytes());
    let r = env
        .run(&["send", "bank", "--batch", "clash.jsonl"])
        .fails(1);
    assert!(
        r.stderr
            .contains("line 2: idempotency key `x` names a different event on line 1"),
        "{}",
        r.stderr
    );
    let r = env
        .run(&["send", "bank", "demo/AccountEvent@1", dep, "--id", ""])
        .fails(1);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    // Keys are in the entry, and verify replays them.
    let log = env.run(&["log", "bank", "-n", "1"]).ok();
    assert!(log.out().contains("(id `pay-1`)"), "{}", log.out());
    env.run(&["-q", "verify", "bank"]).ok();
}

#[test]
fn a_keyed_batch_sent_twice_at_once_lands_once() {
    // A client that retries while its first attempt is still running: both race, committing
    // in small pieces; every event lands once, and between them the two append all.
    let env = bank();
    let n = 1_500;
    let batch = keyed_deposits("r", "race", n);
    env.write("keyed.jsonl", batch.as_bytes());
    // The retry sends the events in the opposite order, so the two meet in the middle.
    let reversed: String = batch.lines().rev().map(|l| format!("{l}\n")).collect();
    env.write("reversed.jsonl", reversed.as_bytes());
    let (a, b) = (
        spawn_batch(&env, "keyed.jsonl", "20"),
        spawn_batch(&env, "reversed.jsonl", "20"),
    );
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut appended = 0;
    for o in [&a, &b] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        let (events, dups) = (
            last["events"].as_u64().unwrap(),
            last["duplicates"].as_u64().unwrap(),
        );
        assert_eq!(events + dups, n as u64, "{out}");
        // Writers take turns group by group: neither waits for the other's whole batch.
        assert!(events > 0, "a writer was starved: {out}");
        appended += events;
    }
    assert_eq!(
        appended, n as u64,
        "each event appended by exactly one writer"
    );
    assert_eq!(ops(&env, "r"), n as u64);
    env.run(&["-q", "verify", "bank"]).ok();
}

#[test]
fn the_key_window_is_saved_and_never_trusted_beyond_its_history() {
    let env = bank();
    env.run(&[
        "world",
        "new",
        "other",
        "--example",
        "keyed",
        "--snapshot-every",
        "0",
    ])
    .ok();
    let n = 3_000;
    env.write("keyed.jsonl", keyed_deposits("k", "dep", n).as_bytes());
    env.run(&["-q", "send", "bank", "--batch", "keyed.jsonl"])
        .ok();
    let saved = env.store().join("cache/ids/bank");
    let dep = r#"{"account":"k","op":{"Deposit":{"amount":1}}}"#;
    let retry = |world: &str| {
        env.run(&["send", world, "demo/AccountEvent@1", dep, "--id", "dep-5"])
            .ok()
            .out()
    };
    // The first retry walks the window and leaves it behind; later ones start from it.
    assert!(!saved.exists());
    assert!(retry("bank").contains("already in the world at height 6"));
    assert!(saved.is_file(), "the walked window is saved");
    let fresh = r#"{"account":"k","op":{"Deposit":{"amount":7}}}"#;
    let send_fresh = || {
        env.run(&[
            "send",
            "bank",
            "demo/AccountEvent@1",
            fresh,
            "--id",
            "new-1",
        ])
        .ok()
    };
    send_fresh();
    assert!(retry("bank").contains("already in the world at height 6"));
    let again = send_fresh();
    assert!(
        again.out().contains("already in the world at height 3001"),
        "{}",
        again.out()
    );
    assert_eq!(ops(&env, "k"), n as u64 + 1);
    // A garbled file is a miss: the window is walked again, with the same answers.
    let mut bytes = std::fs::read(&saved).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(&saved, &bytes).unwrap();
    assert!(retry("bank").contains("already in the world at height 6"));
    // A saved window of another history says nothing about this one: in `other`, the key
    // names no event yet, so the event is appended.
    std::fs::copy(&saved, env.store().join("cache/ids/other")).unwrap();
    assert!(
        retry("other").contains("appended at height 1"),
        "a key was taken for held from another world's window"
    );
    assert_eq!(ops(&env, "k"), n as u64 + 1);
    env.run(&["-q", "verify", "bank"]).ok();
}
