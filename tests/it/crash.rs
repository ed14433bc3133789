//! Crash safety: processes killed mid-write and concurrent writers leave a store that passes
//! fsck, and every id a writer printed is readable.

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::common::{Env, Rng};

fn files(env: &Env, n: usize) -> String {
    let mut paths = String::new();
    for i in 0..n {
        let body: Vec<u8> = (0..1024).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        env.write(&format!("f{i}"), &body);
        paths.push_str(&format!("f{i}\n"));
    }
    paths
}

fn assert_sound(env: &Env, printed: &str) {
    let r = env.run(&["fsck"]);
    assert_eq!(r.code, 0, "fsck after kill: {}\n{}", r.out(), r.stderr);
    for id in printed.lines().filter(|l| l.len() == 67) {
        env.run(&["cat-object", "--size", id]).ok();
    }
}

#[test]
fn killed_batch_writes_leave_a_sound_store() {
    let env = Env::new();
    let paths = files(&env, 3000);
    let mut rng = Rng::new();
    let mut partial = 0;
    for _ in 0..8 {
        let mut child = crate::common::command(env.path())
            .args(["hash-object", "-w", "--stdin-paths"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Feed the paths in chunks so that several batches commit before the kill.
        let feed = paths.clone();
        let writer = std::thread::spawn(move || {
            for chunk in feed.as_bytes().chunks(1000) {
                if stdin.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(8));
            }
        });
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        std::thread::sleep(Duration::from_millis(5 + rng.below(150)));
        let _ = child.kill();
        let _ = child.wait();
        writer.join().unwrap();
        let printed = reader.join().unwrap();
        partial += usize::from(printed.lines().count() < 3000);
        assert_sound(&env, &printed);
    }
    // The paths take over 150 ms to arrive, so kills land mid-stream.
    assert!(partial > 0, "no run was interrupted");
    // A gc after all that removes nothing reachable and still passes fsck.
    env.run(&["gc"]).ok();
    env.run(&["fsck"]).ok();
}

#[test]
fn killed_large_writes_and_ref_updates_leave_a_sound_store() {
    let env = Env::new();
    let big: Vec<u8> = (0..24u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    env.write("big", &big);
    let mut rng = Rng::new();
    env.write("a", b"a");
    let a = env
        .run(&["hash-object", "-w", "a"])
        .ok()
        .out()
        .trim()
        .to_owned();
    env.run(&["update-ref", "refs/heads/main", &a]).ok();
    for _ in 0..4 {
        let mut child = crate::common::command(env.path())
            .args(["hash-object", "-w", "big"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut updater = crate::common::command(env.path())
            .args(["update-ref", "-m", "crash test", "refs/heads/main", &a, &a])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        let _ = child.kill();
        let _ = updater.kill();
        let _ = child.wait();
        let _ = updater.wait();
        // A killed ref update may leave its lock behind (as in git); the ref itself is whole.
        let _ = std::fs::remove_file(env.store().join("refs/heads/main.lock"));
        assert_sound(&env, "");
        assert_eq!(
            env.run(&["show-ref"]).ok().out(),
            format!("{a} refs/heads/main\n")
        );
    }
}

#[test]
fn concurrent_writers_do_not_corrupt_the_store() {
    let env = Env::new();
    let paths = files(&env, 800);
    let spawn = |args: &[&str], input: String| {
        let mut c = crate::common::command(env.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = c.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        c
    };
    // Three batch writers of the same objects, two loose writers, and a gc, all at once.
    let mut batch = Vec::new();
    for _ in 0..3 {
        batch.push(spawn(
            &["hash-object", "-w", "--stdin-paths"],
            paths.clone(),
        ));
    }
    let mut others = Vec::new();
    for i in 0..2 {
        let file = format!("f{}", i * 100);
        others.push(spawn(&["hash-object", "-w", &file], String::new()));
    }
    others.push(spawn(&["gc"], String::new()));
    let outputs: Vec<String> = batch
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8(o.stdout).unwrap()
        })
        .collect();
    for c in others {
        let o = c.wait_with_output().unwrap();
        // gc may find another gc's lock only if one ran; here it is the only one.
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(outputs[0].lines().count(), 800);
    assert!(
        outputs.iter().all(|o| *o == outputs[0]),
        "every writer computed the same ids"
    );
    assert_sound(&env, &outputs[0]);
}
