//! The plumbing commands, end to end, against temporary stores.

use crate::common::Env;

fn id_line(r: &crate::common::Run) -> String {
    let out = r.out();
    let line = out.trim_end().to_owned();
    assert!(
        line.starts_with("b3:") && line.len() == 67,
        "not an id: {line:?}"
    );
    line
}

#[test]
fn init_creates_and_reinitializes() {
    let env = Env::bare();
    insta::assert_snapshot!(env.sh(&["init"]), @"
    $ aos init
    Initialized empty aos store in $TMP/.aos
    ");
    assert_eq!(
        std::fs::read_to_string(env.store().join("format")).unwrap(),
        "aos store 1\n"
    );
    insta::assert_snapshot!(env.sh(&["init"]), @"
    $ aos init
    Reinitialized existing aos store in $TMP/.aos
    ");
    insta::assert_snapshot!(env.sh(&["--json", "init", "sub"]), @r#"
    $ aos --json init sub
    {"created":true,"store":"$TMP/sub/.aos"}
    "#);
    assert!(env.path().join("sub/.aos/format").is_file());
}

#[test]
fn commands_outside_a_store_fail_clearly() {
    let env = Env::bare();
    insta::assert_snapshot!(env.sh(&["fsck"]), @"
    $ aos fsck
    [exit 1]
    --- stderr
    error: not inside an aos store (no .aos in $TMP or any parent)
    hint: `aos init` makes a store here; -C DIR or --aos-dir PATH names another
    ");
    // Hashing without -w needs no store.
    env.write("f", b"hello");
    assert_eq!(
        id_line(&env.run(&["hash-object", "f"]).ok()),
        "b3:".to_owned() + &blake3_blob("hello")
    );
}

fn blake3_blob(s: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"aos:blob\0");
    h.update(s.as_bytes());
    h.finalize().to_hex().to_string()
}

#[test]
fn hash_and_cat_blob() {
    let env = Env::new();
    env.write("f", b"hello");
    let id = id_line(&env.run(&["hash-object", "-w", "f"]).ok());
    assert_eq!(env.run(&["cat-object", &id]).ok().stdout, b"hello");
    assert_eq!(
        env.run(&["cat-object", "--raw", &id[3..14]]).ok().stdout,
        b"hello"
    );
    assert_eq!(env.run(&["cat-object", "--type", &id]).ok().out(), "blob\n");
    assert_eq!(env.run(&["cat-object", "--size", &id]).ok().out(), "5\n");
    assert_eq!(
        env.run(&["--json", "cat-object", &id]).ok().out(),
        "{\"$bytes\":\"aGVsbG8=\"}\n"
    );
    // From stdin, same id.
    assert_eq!(
        id_line(&env.run_stdin(&["hash-object", "-w", "-"], b"hello").ok()),
        id
    );
}

#[test]
fn hash_and_cat_value_json_and_cbor() {
    let env = Env::new();
    let r = env
        .run_stdin(
            &["hash-object", "-w", "-t", "value"],
            br#"{"b": [1, 2], "a": {"$bytes": "AQI="}}"#,
        )
        .ok();
    let id = id_line(&r);
    // The same value written differently hashes the same.
    let r2 = env
        .run_stdin(
            &["hash-object", "-t", "value"],
            br#"{ "a" : {"$bytes":"AQI="}, "b":[1,2] }"#,
        )
        .ok();
    assert_eq!(id_line(&r2), id);
    let raw = env.run(&["cat-object", "--raw", &id]).ok().stdout;
    assert_eq!(raw, [0xa2, 0x61, 0x61, 0x42, 1, 2, 0x61, 0x62, 0x82, 1, 2]);
    // Raw CBOR in gives the same id.
    assert_eq!(
        id_line(
            &env.run_stdin(&["hash-object", "-t", "value", "--format", "cbor"], &raw)
                .ok()
        ),
        id
    );
    let json = env.run(&["--json", "cat-object", &id]).ok().out();
    assert_eq!(json, "{\"a\":{\"$bytes\":\"AQI=\"},\"b\":[1,2]}\n");
    assert!(
        env.run(&["cat-object", &id])
            .ok()
            .out()
            .contains("\n  \"b\": [")
    );
}

#[test]
fn non_canonical_cbor_is_rejected_with_rule_and_offset() {
    let env = Env::new();
    let cases: &[(&[u8], &str, usize)] = &[
        (&[0x18, 0x01], "non-shortest-head", 0),
        (
            &[0x82, 0x01, 0x5f, 0x41, 0x00, 0xff],
            "indefinite-length",
            2,
        ),
        (
            &[0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02],
            "unsorted-keys",
            4,
        ),
        (&[0xf9, 0x3c, 0x00], "float", 0),
        (&[0x00, 0x00], "trailing-bytes", 1),
    ];
    let mut transcript = String::new();
    for (bytes, rule, offset) in cases {
        let r = env
            .run_stdin(
                &["hash-object", "-w", "-t", "value", "--format", "cbor"],
                bytes,
            )
            .fails(1);
        assert!(
            r.stderr.contains(rule) && r.stderr.contains(&format!("offset {offset}")),
            "{rule}: {}",
            r.stderr
        );
        transcript.push_str(&r.stderr);
    }
    insta::assert_snapshot!(transcript, @"
    error: <stdin>: not a canonical value object: non-canonical CBOR at byte offset 0: non-shortest-head (argument not encoded in the shortest form)
    error: <stdin>: not a canonical value object: non-canonical CBOR at byte offset 2: indefinite-length (indefinite-length items are not allowed)
    error: <stdin>: not a canonical value object: non-canonical CBOR at byte offset 4: unsorted-keys (map keys are not in bytewise order of their encodings)
    error: <stdin>: not a canonical value object: non-canonical CBOR at byte offset 0: float (floating-point numbers are not allowed)
    error: <stdin>: not a canonical value object: non-canonical CBOR at byte offset 1: trailing-bytes (bytes after the end of the item)
    ");
    let fsck = env.run(&["--json", "fsck"]).ok();
    let v: serde_json::Value = serde_json::from_str(&fsck.out()).unwrap();
    assert_eq!(v["objects"], 0, "nothing was stored");
}

#[test]
fn bad_json_names_the_place() {
    let env = Env::new();
    insta::assert_snapshot!(
        env.sh_stdin(&["hash-object", "-t", "value"], b"{\"a\": 1.5}"),
        @"
    $ aos hash-object -t value
    [exit 1]
    --- stderr
    error: <stdin>: invalid JSON at line 1, column 7 (byte 6) in `/a`: not an integer: fractions and exponents are not allowed
    "
    );
    insta::assert_snapshot!(
        env.sh_stdin(&["hash-object", "-t", "value"], b"{\n \"a\": 1,\n \"a\": 2}"),
        @r#"
    $ aos hash-object -t value
    [exit 1]
    --- stderr
    error: <stdin>: invalid JSON at line 3, column 2 (byte 12) in `/a`: duplicate key "a"
    "#
    );
}

#[test]
fn stdin_paths_batch() {
    let env = Env::new();
    let mut paths = String::new();
    for i in 0..300 {
        env.write(&format!("f{i}"), format!("file {i}").as_bytes());
        paths.push_str(&format!("f{i}\n"));
    }
    let r = env
        .run_stdin(&["hash-object", "-w", "--stdin-paths"], paths.as_bytes())
        .ok();
    let ids: Vec<&str> = r
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    assert_eq!(ids.len(), 300);
    assert_eq!(env.run(&["cat-object", ids[123]]).ok().stdout, b"file 123");
    // Written as packs, not loose files.
    assert!(
        std::fs::read_dir(env.store().join("objects/pack"))
            .unwrap()
            .count()
            > 0
    );
    let f: serde_json::Value =
        serde_json::from_str(&env.run(&["--json", "fsck"]).ok().out()).unwrap();
    assert_eq!(
        (f["objects"].as_u64(), f["loose"].as_u64()),
        (Some(300), Some(0))
    );
    // A missing path stops the run with exit 1, after committing what came before it.
    insta::assert_snapshot!(
        env.sh_stdin(&["hash-object", "-w", "--stdin-paths"], b"f1\nmissing\nf2\n"),
        @"
    $ aos hash-object -w --stdin-paths
    b3:07fe9026a04542a2db0d9453cd91ba0d9871a87df8c437b53da872483e83718a
    [exit 1]
    --- stderr
    error: missing: No such file or directory (os error 2)
    "
    );
}

#[test]
fn refs_compare_and_swap() {
    let env = Env::new();
    env.write("a", b"a");
    env.write("b", b"b");
    let a = id_line(&env.run(&["hash-object", "-w", "a"]).ok());
    let b = id_line(&env.run(&["hash-object", "-w", "b"]).ok());
    env.run(&["update-ref", "refs/heads/main", &a, "-"]).ok();
    // Expecting absence fails now; so does a stale expectation; the right one succeeds.
    insta::assert_snapshot!(env.sh(&["update-ref", "refs/heads/main", &b, "-"]), @"
    $ aos update-ref refs/heads/main b3:e695e4f6f1b8bdb3fab907b13b52d40d5c8c76a270b65d1497a7645c5fa33e9b -
    [exit 1]
    --- stderr
    error: ref refs/heads/main is at b3:da43f2e41db9ba8c3f373cba5eb9550612fa1b81efcf27106d1a3989490e4e37, expected it not to exist
    ");
    insta::assert_snapshot!(env.sh(&["update-ref", "refs/heads/main", &a, &b]), @"
    $ aos update-ref refs/heads/main b3:da43f2e41db9ba8c3f373cba5eb9550612fa1b81efcf27106d1a3989490e4e37 b3:e695e4f6f1b8bdb3fab907b13b52d40d5c8c76a270b65d1497a7645c5fa33e9b
    [exit 1]
    --- stderr
    error: ref refs/heads/main is at b3:da43f2e41db9ba8c3f373cba5eb9550612fa1b81efcf27106d1a3989490e4e37, expected b3:e695e4f6f1b8bdb3fab907b13b52d40d5c8c76a270b65d1497a7645c5fa33e9b
    ");
    env.run(&["update-ref", "refs/heads/main", &b[..12], &a])
        .ok();
    assert_eq!(
        env.run(&["show-ref"]).ok().out(),
        format!("{b} refs/heads/main\n")
    );
    let j: serde_json::Value =
        serde_json::from_str(&env.run(&["--json", "show-ref"]).ok().out()).unwrap();
    assert_eq!(j[0]["id"], b.as_str());
    // Invalid names and unknown objects are refused.
    insta::assert_snapshot!(env.sh(&["update-ref", "refs/../x", &a]), @r#"
    $ aos update-ref refs/../x b3:da43f2e41db9ba8c3f373cba5eb9550612fa1b81efcf27106d1a3989490e4e37
    [exit 1]
    --- stderr
    error: invalid ref name "refs/../x": a ref name has no `..` components
    "#);
    insta::assert_snapshot!(env.sh(&["update-ref", "refs/heads/x", "b3:00000000"]), @"
    $ aos update-ref refs/heads/x b3:00000000
    [exit 1]
    --- stderr
    error: no object id starts with 00000000
    ");
    env.run(&["update-ref", "-d", "refs/heads/main", &b]).ok();
    assert_eq!(env.run(&["show-ref"]).ok().out(), "");
    let log = std::fs::read_to_string(env.store().join("logs/refs/heads/main")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
}

#[test]
fn fsck_and_gc() {
    let env = Env::new();
    env.write("a", &vec![b'x'; 100_000]);
    let a = id_line(&env.run(&["hash-object", "-w", "a"]).ok());
    let v = format!(r#"{{"blob": {{"$link": "{a}"}}}}"#);
    let root = id_line(
        &env.run_stdin(&["hash-object", "-w", "-t", "value"], v.as_bytes())
            .ok(),
    );
    env.run_stdin(&["hash-object", "-w"], b"garbage").ok();
    env.run(&["update-ref", "refs/heads/main", &root]).ok();
    insta::assert_snapshot!(env.sh(&["fsck"]), @"
    $ aos fsck
    checked 3 objects (3 loose, 0 in 0 packs), 1 links, 1 refs, 100050 bytes in [T]s: ok
    ");
    let g: serde_json::Value =
        serde_json::from_str(&env.run(&["--json", "gc", "--prune=now"]).ok().out()).unwrap();
    assert_eq!(
        (g["reachable"].as_u64(), g["pruned"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        env.run(&["cat-object", "--size", &a]).ok().out(),
        "100000\n"
    );
    env.run(&["fsck"]).ok();

    // Damage the pack: fsck reports it and exits 1.
    let pack_dir = env.store().join("objects/pack");
    let pack = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().unwrap() == "pack")
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x20;
    std::fs::write(&pack, bytes).unwrap();
    insta::assert_snapshot!(env.sh(&["fsck"]), @"
    $ aos fsck
    problem: $TMP/.aos/objects/pack/pack-152983ad6826ff06020ad58f7561d513eade70547e75220d1c318f97449cbc40.pack: $TMP/.aos/objects/pack/pack-152983ad6826ff06020ad58f7561d513eade70547e75220d1c318f97449cbc40.pack: checksum mismatch (file modified or truncated)
    problem: b3:5baeeaf5c94e176080af87e31ac1372a6f2e608060daaeefc632a1b9065bc184: $TMP/.aos/objects/pack/pack-152983ad6826ff06020ad58f7561d513eade70547e75220d1c318f97449cbc40.pack offset 101: content hashes to b3:5baeeaf5c96e176080af87e31ac1372a6f2e608060daaeefc632a1b9065bc184
    checked 2 objects (0 loose, 2 in 1 packs), 1 links, 1 refs, 43 bytes in [T]s: 2 problems
    [exit 1]
    ");
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    insta::assert_snapshot!(env.sh(&["no-such-command"]), @"
    $ aos no-such-command
    [exit 2]
    --- stderr
    error: unrecognized subcommand 'no-such-command'

    Usage: aos [OPTIONS] <COMMAND>

    For more information, try '--help'.
    ");
    env.run(&["hash-object", "-t", "nope"]).fails(2);
    env.run(&["cat-object"]).fails(2);
    env.run(&["gc", "--prune", "soon"]).fails(2);
    env.run(&["update-ref", "refs/heads/x"]).fails(2);
}

#[test]
fn ids_and_prefixes_are_checked() {
    let env = Env::new();
    insta::assert_snapshot!(env.sh(&["cat-object", "1234567"]), @r#"
    $ aos cat-object 1234567
    [exit 1]
    --- stderr
    error: invalid object id "1234567": an abbreviated id needs at least 8 hex digits
    "#);
    insta::assert_snapshot!(env.sh(&["cat-object", "ABCDEF0123"]), @r#"
    $ aos cat-object ABCDEF0123
    [exit 1]
    --- stderr
    error: invalid object id "ABCDEF0123": ids use lowercase hex digits 0-9 a-f
    "#);
    insta::assert_snapshot!(env.sh(&["cat-object", "0123456789"]), @"
    $ aos cat-object 0123456789
    [exit 1]
    --- stderr
    error: no object id starts with 0123456789
    ");
}

#[test]
fn store_found_upward_with_c_and_aos_dir() {
    let env = Env::new();
    std::fs::create_dir_all(env.path().join("a/b")).unwrap();
    env.write("a/b/f", b"deep");
    let id = id_line(
        &crate::common::run_in(&env.path().join("a/b"), &["hash-object", "-w", "f"], b"").ok(),
    );
    let other = Env::bare();
    let r = crate::common::run_in(
        other.path(),
        &["-C", env.path().to_str().unwrap(), "cat-object", &id],
        b"",
    )
    .ok();
    assert_eq!(r.stdout, b"deep");
    let out = crate::common::command(other.path())
        .env("AOS_DIR", env.store())
        .args(["cat-object", &id])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"deep");
}

#[test]
fn completions_are_generated() {
    let env = Env::bare();
    assert!(
        env.run(&["completions", "bash"])
            .ok()
            .out()
            .contains("hash-object")
    );
    assert!(
        env.run(&["completions", "zsh"])
            .ok()
            .out()
            .contains("cat-object")
    );
}

/// Runs `aos ARGS` in `env` with stdout and stderr each either captured or sent to
/// `/dev/full` (every write fails with ENOSPC); the exit code.
fn exit_with_full(env: &Env, args: &[&str], full_stdout: bool, full_stderr: bool) -> Option<i32> {
    use std::process::Stdio;
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full");
    let (Ok(out), Ok(err)) = (full(), full()) else {
        eprintln!("skipped: /dev/full cannot be opened here");
        return Some(-1);
    };
    let mut c = crate::common::command(env.path());
    c.args(args).stdin(Stdio::null());
    c.stdout(if full_stdout {
        Stdio::from(out)
    } else {
        Stdio::null()
    });
    c.stderr(if full_stderr {
        Stdio::from(err)
    } else {
        Stdio::null()
    });
    c.status().unwrap().code()
}

#[test]
fn unwritable_output_ends_with_an_exit_code_not_a_panic() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full");
        return;
    }
    let env = Env::with_counter("0");
    // A failure whose message cannot be written still exits 1 (not 101, not an abort).
    assert_eq!(
        exit_with_full(&env, &["log", "no-such-world"], false, true),
        Some(1)
    );
    // Success with an unwritable stderr (progress and notes lost) is still success.
    assert_eq!(
        exit_with_full(
            &env,
            &["send", "c", "demo/CounterEvent@1", "\"Tick\""],
            false,
            true
        ),
        Some(0)
    );
    // Results that cannot be written are a failure (exit 1), said on stderr when it can be.
    assert_eq!(
        exit_with_full(&env, &["world", "list"], true, false),
        Some(1)
    );
    assert_eq!(
        exit_with_full(&env, &["world", "list"], true, true),
        Some(1)
    );
    // A usage error with nowhere to write keeps its code.
    assert_eq!(
        exit_with_full(&env, &["no-such-command"], true, true),
        Some(2)
    );
}
