//! Locks that die with their holder, writers waiting for one another, and gc beside writers.

use std::thread;

use crate::common::Env;

fn count(env: &Env) -> u64 {
    let r = env.run(&["--json", "state", "w", "demo/Counter@1"]).ok();
    let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    j["state"]["count"].as_u64().unwrap()
}

fn counter_world() -> Env {
    let env = Env::new();
    crate::common::start_counter(env.path(), "w", "10000");
    env
}

/// Sends `n` Ticks one process each, retrying only when another writer moved the world
/// first (a compare-and-swap loss, not a lock); returns how many were acknowledged.
fn send_ticks(env: &Env, n: usize) -> u64 {
    let mut acked = 0;
    for _ in 0..n {
        loop {
            let r = env.run(&["send", "w", "demo/CounterEvent@1", r#""Tick""#]);
            assert!(
                !r.stderr.contains("lock") && !r.stderr.contains("busy"),
                "a writer failed on a lock: {}",
                r.stderr
            );
            if r.code == 0 {
                acked += 1;
                break;
            }
            assert!(
                r.stderr.contains("changed by another process"),
                "send failed: {}",
                r.stderr
            );
        }
    }
    acked
}

#[test]
fn contending_writers_both_succeed() {
    let env = counter_world();
    let before = count(&env);
    let acked: u64 = thread::scope(|s| {
        let a = s.spawn(|| send_ticks(&env, 8));
        let b = s.spawn(|| send_ticks(&env, 8));
        a.join().unwrap() + b.join().unwrap()
    });
    assert_eq!(acked, 16);
    assert_eq!(count(&env), before + 16);
    env.run(&["fsck"]).ok();
}

#[test]
fn gc_prune_now_in_a_loop_beside_writers_loses_nothing() {
    let env = counter_world();
    let before = count(&env);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (acked, gcs) = thread::scope(|s| {
        let writers: Vec<_> = (0..2).map(|_| s.spawn(|| send_ticks(&env, 10))).collect();
        let gc = s.spawn(|| {
            let mut ok = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let r = env.run(&["gc", "--prune=now"]);
                if r.code == 0 {
                    ok += 1;
                } else {
                    // Writers held gc.lock for longer than the wait: gc stops, deleting nothing.
                    assert!(r.stderr.contains("live process"), "gc failed: {}", r.stderr);
                }
            }
            ok
        });
        let acked: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        (acked, gc.join().unwrap())
    });
    assert!(gcs > 0, "no gc completed beside the writers");
    assert_eq!(acked, 20);
    env.run(&["gc"]).ok();
    env.run(&["fsck"]).ok();
    env.run(&["verify", "w"]).ok();
    assert_eq!(
        count(&env),
        before + acked,
        "every acknowledged event is there"
    );
}

#[test]
fn fsck_reports_stale_locks_and_missing_reflog_ids() {
    let env = counter_world();
    // A lock file without a live holder, as a killed writer leaves it.
    let lock = env.store().join("refs/worlds/w.lock");
    std::fs::write(&lock, b"").unwrap();
    let r = env.run(&["fsck"]).ok();
    assert!(r.out().contains("w.lock: stale lock file"), "{}", r.out());
    let r = env.run(&["fsck", "--repair"]).ok();
    assert!(r.out().contains("stale lock removed"), "{}", r.out());
    assert!(!lock.exists());
    // A reflog line naming an object that does not exist.
    let log = env.store().join("logs/refs/worlds/w");
    let missing = format!("b3:{}", "ab".repeat(32));
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&format!("{missing} {missing} 1700000000 forged\n"));
    std::fs::write(&log, text).unwrap();
    let r = env.run(&["fsck"]).fails(1);
    assert!(
        r.out()
            .contains(&format!("a reflog names missing object {missing}")),
        "{}",
        r.out()
    );
}

/// Sends `batch` (keyed Ticks) until a run succeeds, killing the first `kills` runs at a
/// random moment; returns how many runs were killed before they finished.
fn send_until_done(env: &Env, batch: &str, kills: usize, seed: &mut crate::common::Rng) -> usize {
    // Every run before the one that succeeds was killed, so the attempt number counts them.
    for attempt in 0.. {
        let mut child = crate::common::command(env.path())
            .args(["-q", "send", "w", "--batch", batch, "--commit-every", "10"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if attempt < kills {
            thread::sleep(std::time::Duration::from_millis(30 + seed.below(400)));
            let _ = child.kill(); // SIGKILL, or nothing if it already ended
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            return attempt;
        }
        assert!(
            out.status.code().is_none(),
            "a send failed on its own: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    unreachable!()
}

#[test]
fn killed_and_retried_keyed_writers_beside_gc_land_every_event_once() {
    // Three writers, each with its own keyed batch, each killed at random and simply sent
    // again until it succeeds, while gc --prune=now runs in a loop: the world ends with
    // every event exactly once.
    let env = counter_world();
    let before = count(&env);
    let n = 120;
    for w in 0..3 {
        let batch: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\",\"id\":\"w{w}-{i}\"}}\n"
                )
            })
            .collect();
        env.write(&format!("w{w}.jsonl"), batch.as_bytes());
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let killed: usize = thread::scope(|s| {
        let gc = s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let r = env.run(&["gc", "--prune=now"]);
                assert!(
                    r.code == 0 || r.stderr.contains("live process"),
                    "gc failed: {}",
                    r.stderr
                );
            }
        });
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let env = &env;
                s.spawn(move || {
                    let mut rng = crate::common::Rng::new();
                    send_until_done(env, &format!("w{w}.jsonl"), 3, &mut rng)
                })
            })
            .collect();
        let killed = writers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        gc.join().unwrap();
        killed
    });
    eprintln!("{killed} sends were killed and sent again");
    assert_eq!(count(&env), before + 3 * n, "every event exactly once");
    env.run(&["fsck"]).ok();
    env.run(&["verify", "w"]).ok();
    env.run(&["gc"]).ok();
    env.run(&["fsck"]).ok();
}
