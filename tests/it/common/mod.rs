//! A hermetic harness for running the `aos` binary in temporary directories.

#![allow(clippy::unwrap_used, dead_code)] // Tests fail loudly by design; not every test uses every helper.

pub mod world;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary work directory with a store in it.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// The result of one run.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            0,
            "expected success; stderr: {}\nstdout: {}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        self
    }

    #[track_caller]
    pub fn fails(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            code,
            "expected exit {code}; stderr: {}\nstdout: {}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        self
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_aos")
}

/// The time every test command's store clock is stopped at (2026-01-01T00:00:00Z).
pub const FIXED_TIME: u64 = 1_767_225_600;
/// The text every test command's signing keys are derived from.
pub const FIXED_KEYS: &str = "aos integration tests";

/// A command with a cleared environment, a fixed clock and fixed keys, run in `dir`.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AOS_FIXED_TIME", FIXED_TIME.to_string())
        .env("AOS_FIXED_KEYS", FIXED_KEYS);
    c
}

pub fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = command(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aos");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Env {
    /// A fresh directory with `aos init` done.
    pub fn new() -> Self {
        let env = Self::bare();
        env.run(&["init"]).ok();
        env
    }

    /// A fresh empty directory.
    pub fn bare() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join(".aos")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.path(), args, b"")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_in(self.path(), args, stdin)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, bytes).expect("write file");
        p
    }
}

impl Env {
    /// Runs `aos ARGS` and renders what happened for a snapshot assertion: the command line,
    /// stdout, `[exit N]` when N is not 0, then stderr after a `--- stderr` line when there is
    /// any. The temporary directory reads `$TMP`, so snapshots do not depend on where it is.
    pub fn sh(&self, args: &[&str]) -> String {
        self.sh_stdin(args, b"")
    }

    /// [`Env::sh`] with `stdin` as the standard input.
    pub fn sh_stdin(&self, args: &[&str], stdin: &[u8]) -> String {
        let r = self.run_stdin(args, stdin);
        self.transcript(args, &r)
    }

    /// The transcript [`Env::sh`] renders for run `r` of `aos ARGS`.
    pub fn transcript(&self, args: &[&str], r: &Run) -> String {
        let mut s = format!("$ aos {}\n", args.join(" "));
        s.push_str(&String::from_utf8_lossy(&r.stdout));
        if r.code != 0 {
            s.push_str(&format!("[exit {}]\n", r.code));
        }
        if !r.stderr.is_empty() {
            s.push_str("--- stderr\n");
            s.push_str(&r.stderr);
        }
        self.redact(&s)
    }

    /// `text` with this environment's temporary directory written as `$TMP`, the checkout as
    /// `$REPO`, and elapsed times (`0.42s`) as `[T]s`: what a snapshot must not depend on.
    pub fn redact(&self, text: &str) -> String {
        let dir = self.path().to_string_lossy().into_owned();
        let canon = self
            .path()
            .canonicalize()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| dir.clone());
        let text = text
            .replace(&canon, "$TMP")
            .replace(&dir, "$TMP")
            .replace(env!("CARGO_MANIFEST_DIR"), "$REPO");
        redact_seconds(&text)
    }
}

/// `text` with every decimal number of seconds (`12.05s`, a word of its own) as `[T]s`.
pub fn redact_seconds(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let at_word = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
        if at_word && b[i].is_ascii_digit() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j < b.len() && b[j] == b'.' {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                let ends = k + 1 >= b.len() || !b[k + 1].is_ascii_alphanumeric();
                if k > j + 1 && k < b.len() && b[k] == b's' && ends {
                    out.push_str("[T]s");
                    i = k + 1;
                    continue;
                }
            }
            out.push_str(&text[i..j]);
            i = j;
            continue;
        }
        let ch = text[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// A run's stdout parsed as one JSON document.
pub fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(r.out().trim()).expect("stdout is one JSON document")
}

/// The last line of stdout as JSON: the summary after a batch's `durable` records.
pub fn last_json(r: &Run) -> serde_json::Value {
    let out = r.out();
    let last = out.lines().last().expect("stdout has a line");
    serde_json::from_str(last).expect("the last line of stdout is one JSON document")
}

/// In the store of `dir`: the counter example as world `world` (snapshot markers every
/// `every` entries), started with a target it never reaches, so every Tick counts.
pub fn start_counter(dir: &Path, world: &str, every: &str) {
    let new = [
        "world",
        "new",
        world,
        "--example",
        "counter",
        "--snapshot-every",
        every,
    ];
    run_in(dir, &new, b"").ok();
    let start = r#"{"Start":{"target":1000000000000}}"#;
    run_in(dir, &["send", world, "demo/CounterEvent@1", start], b"").ok();
}

impl Env {
    /// A store with the counter example as world `c`, snapshot markers every `every` entries.
    pub fn with_counter(every: &str) -> Self {
        let env = Self::new();
        env.run(&[
            "world",
            "new",
            "c",
            "--example",
            "counter",
            "--snapshot-every",
            every,
        ])
        .ok();
        env
    }
}

/// xorshift seeded from the clock: repeated runs probe different kill points; what a test
/// asserts never depends on it.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        Self(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1,
        )
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
