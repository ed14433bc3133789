//! `aos send --batch` and `aos gc` killed at every write-path syscall (strace injects SIGKILL
//! at the N-th call of each), and a batch that fills a small tmpfs: what was acknowledged is
//! durable, the store passes fsck, no lock blocks the next writer, resuming — with `--skip`
//! or by sending the keyed batch again — gives exactly the batch's events, and a killed gc
//! loses nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{self, Env, json};

/// The syscalls a commit writes, moves, locks or removes files with.
const SYSCALLS: &[&str] = &[
    "openat",
    "write",
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "ftruncate",
    "flock",
    "mkdir",
    "mkdirat",
    "rmdir",
];
const EVENTS: u64 = 6;
const COMMIT_EVERY: u64 = 2;

/// `strace`, if it is installed and may trace here (ptrace can be denied in containers).
fn strace() -> Option<&'static str> {
    let ok = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some("strace")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The counter's count in world `w` of the store in `dir`.
fn count_in(dir: &Path) -> u64 {
    let r = common::run_in(dir, &["--json", "state", "w", "demo/Counter@1"], b"").ok();
    json(&r)["state"]["count"].as_u64().unwrap()
}

/// The `events` of the last `durable` record among `--json` output lines (0 if none).
fn acknowledged(stdout: &[u8]) -> u64 {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|j| j.get("durable").and_then(|d| d["events"].as_u64()))
        .max()
        .unwrap_or(0)
}

/// A store with the counter world `w` (started, never finishing) and `batch.jsonl`: `EVENTS`
/// keyed Ticks.
fn template() -> Env {
    let env = Env::new();
    common::start_counter(env.path(), "w", "0");
    let batch: String = (1..=EVENTS)
        .map(|i| {
            format!("{{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\",\"id\":\"t-{i}\"}}\n")
        })
        .collect();
    env.write("batch.jsonl", batch.as_bytes());
    env
}

const SEND: &[&str] = &[
    "--json",
    "send",
    "w",
    "--batch",
    "batch.jsonl",
    "--commit-every",
    "2",
];

/// Runs the batch under strace in `dir` with `strace_args`; returns its output.
fn traced_send(strace: &str, dir: &Path, strace_args: &[String]) -> std::process::Output {
    traced(strace, dir, strace_args, SEND)
}

/// Runs `aos args` under strace in `dir` with `strace_args`; returns its output.
fn traced(strace: &str, dir: &Path, strace_args: &[String], args: &[&str]) -> std::process::Output {
    Command::new(strace)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AOS_FIXED_TIME", common::FIXED_TIME.to_string())
        .env("AOS_FIXED_KEYS", common::FIXED_KEYS)
        .args(["-f", "-qq"])
        .args(strace_args)
        .arg(common::bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// strace's arguments that kill the traced process at the `n`-th call of `syscall`.
fn kill_args(syscall: &str, n: usize) -> Vec<String> {
    vec![
        "-o".into(),
        "/dev/null".into(),
        "-e".into(),
        format!("trace={syscall}"),
        "-e".into(),
        format!("inject={syscall}:signal=KILL:when={n}"),
    ]
}

/// How many times `aos args` calls each of `SYSCALLS` in a copy of `template`, counted by
/// tracing one run.
fn syscall_counts(strace: &str, template: &Path, args: &[&str]) -> Vec<(&'static str, usize)> {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let trace = dir.path().join("trace.txt");
    let out = traced(
        strace,
        dir.path(),
        &[
            "-o".into(),
            trace.display().to_string(),
            "-e".into(),
            format!("trace={}", SYSCALLS.join(",")),
        ],
        args,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    SYSCALLS
        .iter()
        .map(|&s| {
            let n = text
                .lines()
                .filter(|l| {
                    // `PID name(args…` (a call split by another thread's shows `<... resumed>`).
                    let call = l.split_once(' ').map_or(*l, |(_, rest)| rest).trim_start();
                    call.strip_prefix(s).is_some_and(|r| r.starts_with('('))
                })
                .count();
            (s, n)
        })
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// Kills the batch at the `n`-th call of `syscall` in a copy of `template`, then checks
/// everything a user relies on and resumes (by `--skip` if `skip`, else by sending the keyed
/// batch again).
fn kill_at(strace: &str, template: &Path, syscall: &str, n: usize, skip: bool, verify: bool) {
    let at = format!("{syscall} call {n}");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let d = dir.path();
    let out = traced_send(strace, d, &kill_args(syscall, n));
    assert!(!out.status.success(), "{at}: the batch was not killed");
    let acked = acknowledged(&out.stdout);
    let landed = count_in(d);
    assert!(
        acked <= landed,
        "{at}: acknowledged {acked}, landed {landed}"
    );
    assert!(
        landed <= acked + COMMIT_EVERY && (landed.is_multiple_of(COMMIT_EVERY) || landed == EVENTS),
        "{at}: {landed} events landed after {acked} were acknowledged"
    );
    let f = common::run_in(d, &["fsck"], b"");
    assert_eq!(f.code, 0, "{at}: fsck: {}\n{}", f.out(), f.stderr);
    if skip {
        let s = landed.to_string();
        let mut args = SEND.to_vec();
        args.extend(["--skip", &s]);
        let r = common::run_in(d, &args, b"");
        assert_eq!(r.code, 0, "{at}: resume: {}", r.stderr);
    } else {
        let r = common::run_in(d, SEND, b"");
        assert_eq!(r.code, 0, "{at}: send again: {}", r.stderr);
        let summary: serde_json::Value =
            serde_json::from_str(r.out().lines().last().unwrap()).unwrap();
        assert_eq!(
            summary["duplicates"].as_u64(),
            Some(landed),
            "{at}: the events that landed are recognised by their keys"
        );
    }
    assert_eq!(count_in(d), EVENTS, "{at}: exactly the batch's events");
    // A lock file the kill left is stale: the next writer of its ref clears it by itself.
    let r = common::run_in(d, &["send", "w", "demo/CounterEvent@1", r#""Tick""#], b"");
    assert_eq!(r.code, 0, "{at}: the next send: {}", r.stderr);
    assert_eq!(count_in(d), EVENTS + 1, "{at}: the next send's event");
    for lock in ["refs/worlds/w.lock", "refs/checkpoints/w.lock"] {
        assert!(
            !d.join(".aos").join(lock).exists(),
            "{at}: {lock} outlived the next send"
        );
    }
    if verify {
        let v = common::run_in(d, &["verify", "w"], b"");
        assert_eq!(v.code, 0, "{at}: verify: {}", v.stderr);
    }
}

/// Every (syscall, n-th call) pair of `counts`.
fn every_call(counts: &[(&'static str, usize)]) -> Vec<(&'static str, usize)> {
    counts
        .iter()
        .flat_map(|&(s, c)| (1..=c).map(move |n| (s, n)))
        .collect()
}

/// Calls `f(i, syscall, n)` for every point, on two threads.
fn on_two_threads(points: &[(&'static str, usize)], f: impl Fn(usize, &str, usize) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(s, n)) = points.get(i) else { break };
                    f(i, s, n);
                }
            });
        }
    });
}

#[test]
fn a_batch_killed_at_every_write_syscall_loses_nothing_it_acknowledged() {
    let Some(strace) = strace() else {
        eprintln!("skipped: strace is not installed or cannot trace here");
        return;
    };
    let t = template();
    let counts = syscall_counts(strace, t.path(), SEND);
    let points = every_call(&counts);
    // Every kind of call a commit makes was seen, so the kills cover them.
    for s in ["openat", "write", "fsync", "rename", "flock"] {
        assert!(
            counts.iter().any(|&(c, _)| c == s),
            "{s} never called: {counts:?}"
        );
    }
    on_two_threads(&points, |i, s, n| {
        kill_at(
            strace,
            t.path(),
            s,
            n,
            i.is_multiple_of(2),
            i.is_multiple_of(5),
        );
    });
    eprintln!("killed at {} syscalls: {counts:?}", points.len());
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn resize(&self, size: &str) {
        let s = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(s.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_batch_that_fills_the_disk_reports_exactly_what_is_durable() {
    let Some(fs) = Tmpfs::mount("384k") else {
        eprintln!("skipped: a tmpfs cannot be mounted here (needs root)");
        return;
    };
    let d = fs.dir.path();
    let run = |args: &[&str]| common::run_in(d, args, b"");
    run(&["init"]).ok();
    common::start_counter(d, "w", "0");
    // The batch lives outside the small disk; a blob no ref names is garbage on it.
    let outside = Env::bare();
    let mut rng = common::Rng::new();
    let noise: Vec<u8> = (0..24_000).map(|_| rng.below(256) as u8).collect();
    let garbage = outside.write("garbage.bin", &noise);
    run(&["hash-object", "-w", garbage.to_str().unwrap()]).ok();
    let total = 4_000u64;
    let batch = outside.write(
        "ticks.jsonl",
        "{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\"}\n"
            .repeat(total as usize)
            .as_bytes(),
    );
    let batch = batch.to_str().unwrap();
    let send = [
        "--json",
        "send",
        "w",
        "--batch",
        batch,
        "--commit-every",
        "200",
    ];
    let r = run(&send).fails(1);
    assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
    // A failure the command sees is reported exactly: what it acknowledged is what is there.
    let acked = acknowledged(&r.stdout);
    let landed = count_in(d);
    assert!(
        acked > 0 && acked < total,
        "acknowledged {acked} of {total}"
    );
    assert_eq!(acked, landed);
    assert!(
        r.stderr.contains(&format!("--skip {acked}`")),
        "no resume hint: {}",
        r.stderr
    );
    // The failed write left no temporary file behind, and the store is sound while full.
    let tmp: Vec<_> = std::fs::read_dir(d.join(".aos/tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "left in tmp/: {tmp:?}");
    run(&["fsck"]).ok();
    // gc needs room for its new pack: on a full disk it removes what needs no rewriting
    // (here the garbage blob), leaves the rest in place, and says so.
    let g = run(&["--json", "gc", "--prune=now"]).fails(1);
    assert!(g.stderr.contains("the disk is full"), "{}", g.stderr);
    let report = json(&g);
    assert_eq!(report["repack_skipped"], true);
    assert_eq!(report["pruned"], 1, "{report}");
    assert!(report["bytes_after"].as_u64() < report["bytes_before"].as_u64());
    run(&["fsck"]).ok();
    assert_eq!(count_in(d), landed);
    // With room again, resuming sends exactly the rest.
    fs.resize("64m");
    let s = acked.to_string();
    let mut resume = send.to_vec();
    resume.extend(["--skip", &s]);
    run(&resume).ok();
    assert_eq!(count_in(d), total);
    run(&["verify", "w"]).ok();
    run(&["gc"]).ok();
    run(&["fsck"]).ok();
}

#[test]
fn gc_killed_at_every_write_syscall_leaves_a_sound_store() {
    let Some(strace) = strace() else {
        eprintln!("skipped: strace is not installed or cannot trace here");
        return;
    };
    // Something for gc to do: several packs, and a blob no ref names.
    let t = template();
    t.run(&[
        "-q",
        "send",
        "w",
        "--batch",
        "batch.jsonl",
        "--commit-every",
        "2",
    ])
    .ok();
    t.write("garbage.bin", b"nothing names this");
    t.run(&["hash-object", "-w", "garbage.bin"]).ok();
    let expected = count_in(t.path());
    let gc: &[&str] = &["gc", "--prune=now"];
    let counts = syscall_counts(strace, t.path(), gc);
    for s in ["fsync", "linkat", "unlink"] {
        assert!(
            counts.iter().any(|&(c, _)| c == s),
            "{s} never called: {counts:?}"
        );
    }
    let points = every_call(&counts);
    on_two_threads(&points, |_, syscall, n| {
        let at = format!("gc killed at {syscall} call {n}");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(t.path(), dir.path());
        let d = dir.path();
        let out = traced(strace, d, &kill_args(syscall, n), gc);
        assert!(!out.status.success(), "{at}: gc was not killed");
        let f = common::run_in(d, &["fsck"], b"");
        assert_eq!(f.code, 0, "{at}: fsck: {}\n{}", f.out(), f.stderr);
        assert_eq!(count_in(d), expected, "{at}");
        let g = common::run_in(d, &["gc", "--prune=now"], b"");
        assert_eq!(g.code, 0, "{at}: gc again: {}", g.stderr);
        common::run_in(d, &["fsck"], b"").ok();
        common::run_in(d, &["send", "w", "demo/CounterEvent@1", r#""Tick""#], b"").ok();
        assert_eq!(count_in(d), expected + 1, "{at}");
    });
    eprintln!("killed gc at {} syscalls: {counts:?}", points.len());
}
