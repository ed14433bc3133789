//! Crash safety of worlds: `aos send --batch` killed at random points leaves a store that
//! passes fsck, a world that verifies, a state consistent with the durable height, and a
//! world that takes further events.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Env, Rng};

/// Entries between snapshot markers of the world under test.
const EVERY: u64 = 150;

fn head(env: &Env) -> (String, u64) {
    let r = env.run(&["--json", "log", "w", "-n", "1"]).ok();
    let j: serde_json::Value = serde_json::from_str(r.out().trim()).unwrap();
    (
        j["id"].as_str().unwrap().to_owned(),
        j["height"].as_u64().unwrap(),
    )
}

fn count(env: &Env) -> u64 {
    let r = env.run(&["--json", "state", "w", "demo/Counter@1"]).ok();
    let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    j["state"]["count"].as_u64().unwrap()
}

/// The Ticks a journal of height `h` holds: one Start at height 1, then one entry per Tick
/// (the target is never reached), and a marker after every `EVERY` entries since the last.
fn ticks_at(h: u64) -> u64 {
    h - h / (EVERY + 1) - 1
}

/// Everything that must hold after a kill, then one more event.
fn assert_recovers(env: &Env) -> u64 {
    let r = env.run(&["fsck"]);
    assert_eq!(r.code, 0, "fsck after kill: {}\n{}", r.out(), r.stderr);
    let v = env.run(&["--json", "verify", "w"]).ok();
    let j: serde_json::Value = serde_json::from_str(&v.out()).unwrap();
    let (id, h) = head(env);
    assert_eq!(j["ok"], true);
    assert_eq!(j["height"].as_u64().unwrap(), h);
    assert_eq!(j["head"].as_str().unwrap(), id);
    assert_eq!(j["derived"], 0);
    assert_eq!(j["faults"], 0);
    assert_eq!(count(env), ticks_at(h), "count at height {h}");
    // A killed ref update may leave its lock file behind; it is stale (its OS lock died with
    // the process), so the next send removes it by itself: no manual cleanup.
    env.run(&["send", "w", "demo/CounterEvent@1", r#""Tick""#])
        .ok();
    for r in ["refs/worlds/w.lock", "refs/checkpoints/w.lock"] {
        assert!(!env.store().join(r).exists(), "{r} outlived the next send");
    }
    let (_, h2) = head(env);
    assert!(h2 == h + 1 || h2 == h + 2, "{h} -> {h2}");
    assert_eq!(count(env), ticks_at(h2));
    env.run(&["verify", "w"]).ok();
    h2
}

#[test]
fn killed_world_batches_recover() {
    let env = Env::new();
    crate::common::start_counter(env.path(), "w", &EVERY.to_string());
    let line = "{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\"}\n";
    env.write("batch.jsonl", line.repeat(200_000).as_bytes());
    let mut rng = Rng::new();
    let mut interrupted = 0;
    for trial in 0..4 {
        let (before, h0) = head(&env);
        let mut child = crate::common::command(env.path())
            // Small commits: the debug binary appends a few hundred events per second.
            .args([
                "send",
                "w",
                "--batch",
                "batch.jsonl",
                "--commit-every",
                "100",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first group commit to move the world, then kill at a random point.
        let start = Instant::now();
        while head(&env).0 == before {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "trial {trial}: no commit within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400 + 300 * trial)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        interrupted += usize::from(!status.success());
        let (_, h1) = head(&env);
        assert!(h1 > h0, "the first commit is durable");
        assert!(
            ticks_at(h1) - ticks_at(h0) < 200_000,
            "trial {trial} was interrupted"
        );
        assert_recovers(&env);
    }
    assert_eq!(interrupted, 4);
    env.run(&["gc"]).ok();
    env.run(&["fsck"]).ok();
    env.run(&["verify", "w"]).ok();
}
