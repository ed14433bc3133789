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
    let r = env.run(&["init"]).ok();
    assert!(
        r.out().starts_with("Initialized empty aos store in "),
        "{}",
        r.out()
    );
    assert_eq!(
        std::fs::read_to_string(env.store().join("format")).unwrap(),
        "aos store 1\n"
    );
    assert!(env.run(&["init"]).ok().out().starts_with("Reinitialized"));
    let r = env.run(&["--json", "init", "sub"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(v["created"], true);
    assert!(env.path().join("sub/.aos/format").is_file());
}

#[test]
fn commands_outside_a_store_fail_clearly() {
    let env = Env::bare();
    let r = env.run(&["fsck"]).fails(1);
    assert!(r.stderr.contains("not inside an aos store"), "{}", r.stderr);
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
    }
    let fsck = env.run(&["--json", "fsck"]).ok();
    let v: serde_json::Value = serde_json::from_str(&fsck.out()).unwrap();
    assert_eq!(v["objects"], 0, "nothing was stored");
}

#[test]
fn bad_json_names_the_place() {
    let env = Env::new();
    let r = env
        .run_stdin(&["hash-object", "-t", "value"], b"{\"a\": 1.5}")
        .fails(1);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
    let r = env
        .run_stdin(&["hash-object", "-t", "value"], b"{\"a\": 1, \"a\": 2}")
        .fails(1);
    assert!(
        r.stderr.to_lowercase().contains("duplicate"),
        "{}",
        r.stderr
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
    let r = env
        .run_stdin(
            &["hash-object", "-w", "--stdin-paths"],
            b"f1\nmissing\nf2\n",
        )
        .fails(1);
    assert_eq!(r.out().lines().count(), 1);
    assert!(r.stderr.contains("missing"), "{}", r.stderr);
}

#[test]
fn refs_compare_and_swap() {
    let env = Env::new();
    env.write("a", b"a");
    env.write("b", b"b");
    let a = id_line(&env.run(&["hash-object", "-w", "a"]).ok());
    let b = id_line(&env.run(&["hash-object", "-w", "b"]).ok());
    env.run(&["update-ref", "refs/heads/main", &a, "-"]).ok();
    // Expecting absence fails now.
    let r = env
        .run(&["update-ref", "refs/heads/main", &b, "-"])
        .fails(1);
    assert!(!r.stderr.is_empty());
    // Stale expectation fails; the right one succeeds.
    env.run(&["update-ref", "refs/heads/main", &a, &b]).fails(1);
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
    env.run(&["update-ref", "refs/../x", &a]).fails(1);
    env.run(&["update-ref", "refs/heads/x", "b3:00000000"])
        .fails(1);
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
    assert!(env.run(&["fsck"]).ok().out().contains(": ok"));
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
    let r = env.run(&["fsck"]).fails(1);
    assert!(r.out().contains("problem:"), "{}", r.out());
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.run(&["no-such-command"]).fails(2);
    env.run(&["hash-object", "-t", "nope"]).fails(2);
    env.run(&["cat-object"]).fails(2);
    env.run(&["gc", "--prune", "soon"]).fails(2);
    env.run(&["update-ref", "refs/heads/x"]).fails(2);
}

#[test]
fn ids_and_prefixes_are_checked() {
    let env = Env::new();
    env.run(&["cat-object", "1234567"]).fails(1);
    env.run(&["cat-object", "ABCDEF0123"]).fails(1);
    let r = env.run(&["cat-object", "0123456789"]).fails(1);
    assert!(r.stderr.contains("0123456789"), "{}", r.stderr);
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
