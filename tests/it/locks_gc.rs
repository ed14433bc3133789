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
    env.run(&["world", "new", "w", "--example", "counter"]).ok();
    env.run(&[
        "send",
        "w",
        "demo/CounterEvent@1",
        r#"{"Start":{"target":1000000000000}}"#,
    ])
    .ok();
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
