//! `aos bundle`, end to end: stores that share nothing but bundle files.

use std::path::{Path, PathBuf};

use crate::common::{Env, json};
use serde_json::Value as J;

/// Sends `n` ticks (after a start with `target`, if given) to world `c`.
fn send(env: &Env, target: Option<u64>, n: usize) {
    send_to(env, "c", target, n);
}

/// Sends `n` ticks (after a start with `target`, if given) to world `world`.
fn send_to(env: &Env, world: &str, target: Option<u64>, n: usize) {
    let mut lines = String::new();
    if let Some(t) = target {
        lines.push_str(&format!(
            "{{\"schema\":\"demo/CounterEvent@1\",\"value\":{{\"Start\":{{\"target\":{t}}}}}}}\n"
        ));
    }
    for _ in 0..n {
        lines.push_str("{\"schema\":\"demo/CounterEvent@1\",\"value\":\"Tick\"}\n");
    }
    env.write("events.jsonl", lines.as_bytes());
    env.run(&["-q", "send", world, "--batch", "events.jsonl"])
        .ok();
}

fn refs(env: &Env) -> J {
    json(&env.run(&["--json", "show-ref"]).ok())
}

fn head(env: &Env) -> String {
    head_of(env, "c")
}

fn head_of(env: &Env, world: &str) -> String {
    let r = refs(env);
    r.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == format!("refs/worlds/{world}"))
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .unwrap()
}

/// (objects, ok) from `aos fsck --json`.
fn fsck(env: &Env) -> (u64, bool) {
    let r = env.run(&["--json", "fsck"]);
    let v = json(&r);
    (v["objects"].as_u64().unwrap(), v["ok"].as_bool().unwrap())
}

fn state(env: &Env) -> String {
    env.run(&["state", "c", "demo/Counter@1"]).ok().out()
}

/// A directory outside every store, where bundles are passed between stores.
struct Shared(tempfile::TempDir);

impl Shared {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn file(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

#[test]
fn round_trip_and_incremental_bundles() {
    let shared = Shared::new();
    let full = shared.file("full.bundle");
    let inc = shared.file("inc.bundle");

    let a = Env::with_counter("16");
    send(&a, Some(1000), 40);
    let r = a.run(&["--json", "bundle", "create", &full, "c"]).ok();
    let created = json(&r);
    assert_eq!(created["prerequisites"], J::Array(vec![]));
    let names: Vec<&str> = created["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["refs/checkpoints/c", "refs/worlds/c"]);
    assert!(created["objects"].as_u64().unwrap() > 40);

    // Verified and listed outside any store: a full bundle needs none.
    let outside = Env::bare();
    let v = json(&outside.run(&["--json", "bundle", "verify", &full]).ok());
    assert_eq!(v["ok"], true);
    assert_eq!(v["objects"], created["objects"]);
    let l = json(&outside.run(&["--json", "bundle", "list-heads", &full]).ok());
    assert_eq!(l["refs"], created["refs"]);
    assert_eq!(l["capabilities"]["object-format"], "blake3");
    let text = outside.run(&["bundle", "list-heads", &full]).ok().out();
    assert!(text.contains(" refs/worlds/c\n"), "{text}");

    // A store that shares nothing with `a` but the file.
    let b = Env::new();
    let u = json(&b.run(&["--json", "bundle", "unbundle", &full]).ok());
    assert_eq!(u["written"], created["objects"]);
    assert!(
        u["refs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["change"] == "created")
    );
    assert_eq!(refs(&b), refs(&a), "the same heads and checkpoint");
    b.run(&["verify", "c"]).ok();
    assert_eq!(state(&b), state(&a));
    assert!(fsck(&b).1);

    // An incremental bundle: only what is new since the head `b` has.
    let old = head(&a);
    send(&a, None, 25);
    let r = json(
        &a.run(&["--json", "bundle", "create", &inc, "c", "--since", &old])
            .ok(),
    );
    assert_eq!(r["prerequisites"], J::Array(vec![J::String(old.clone())]));
    let inc_objects = r["objects"].as_u64().unwrap();
    assert!(
        inc_objects < 40,
        "{inc_objects} objects for 25 events: the increment re-sent history"
    );
    assert!(r["bytes"].as_u64().unwrap() < created["bytes"].as_u64().unwrap() / 2);
    // A prefix of the id works too, and the result is the same file.
    let again = shared.file("inc2.bundle");
    a.run(&["bundle", "create", &again, "c", "--since", &old[..16]])
        .ok();
    assert_eq!(std::fs::read(&inc).unwrap(), std::fs::read(&again).unwrap());

    b.run(&["bundle", "verify", &inc]).ok();
    let u = json(&b.run(&["--json", "bundle", "unbundle", &inc]).ok());
    assert_eq!(u["written"].as_u64().unwrap(), inc_objects);
    let world = u["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "refs/worlds/c")
        .unwrap()
        .clone();
    assert_eq!(world["change"], "fast-forward");
    assert_eq!(world["old"], J::String(old.clone()));
    assert_eq!(refs(&b), refs(&a));
    b.run(&["verify", "c"]).ok();
    assert_eq!(state(&b), state(&a));
    assert!(fsck(&b).1);

    // Applying the full bundle again: the store is ahead, nothing moves.
    let r = b.run(&["bundle", "unbundle", &full]).ok();
    assert!(r.out().contains("kept (the store is ahead)"), "{}", r.out());
    assert_eq!(refs(&b), refs(&a));
}

#[test]
fn an_increment_needs_its_prerequisites() {
    let shared = Shared::new();
    let inc = shared.file("inc.bundle");
    let a = Env::with_counter("0");
    send(&a, Some(1000), 5);
    let old = head(&a);
    send(&a, None, 5);
    a.run(&["bundle", "create", &inc, "c", "--since", &old])
        .ok();

    let c = Env::new();
    let before = fsck(&c);
    for cmd in ["verify", "unbundle"] {
        let r = c.run(&["bundle", cmd, &inc]).fails(1);
        assert!(r.stderr.contains(&old), "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("lacks"), "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("hint:"), "{cmd}: {}", r.stderr);
    }
    assert_eq!(fsck(&c), before, "nothing stored");
    assert_eq!(refs(&c), J::Array(vec![]));

    // Outside a store the prerequisites cannot be checked: that is a failure too.
    let outside = Env::bare();
    let r = outside.run(&["bundle", "verify", &inc]).fails(1);
    assert!(r.stderr.contains("could not be checked"), "{}", r.stderr);
    assert!(r.stderr.contains(&old), "{}", r.stderr);
    let v = json(&outside.run(&["--json", "bundle", "verify", &inc]).fails(1));
    assert_eq!(v["ok"], false);
    assert_eq!(v["unchecked_prerequisites"], J::Array(vec![J::String(old)]));
}

#[test]
fn damaged_bundles_are_rejected_and_nothing_is_stored() {
    let shared = Shared::new();
    let good = shared.file("good.bundle");
    let a = Env::with_counter("8");
    send(&a, Some(1000), 20);
    a.run(&["bundle", "create", &good, "c"]).ok();
    let bytes = std::fs::read(&good).unwrap();
    let len = bytes.len();
    let hlen = bytes.windows(2).position(|w| w == b"\n\n").unwrap() + 2;

    // (what, damaged bytes, text the error must contain)
    let flip = |at: usize| {
        let mut b = bytes.clone();
        b[at] ^= 0x04;
        b
    };
    let mut cases: Vec<(String, Vec<u8>, String)> = vec![
        (
            "signature".into(),
            {
                let mut b = bytes.clone();
                b[14] = b'2';
                b
            },
            "unsupported bundle version".into(),
        ),
        // A hex digit of a ref target: the header still parses, the checksum does not match.
        ("ref target".into(), flip(hlen - 10), "byte offset".into()),
        ("pack header".into(), flip(hlen + 1), "byte offset".into()),
        (
            "checksum".into(),
            flip(len - 1),
            format!("byte offset {}", len - 32),
        ),
        (
            "pack checksum".into(),
            flip(len - 40),
            format!("byte offset {}", len - 64),
        ),
        (
            "count".into(),
            flip(len - 72),
            format!("byte offset {}", len - 72),
        ),
        (
            "truncated".into(),
            bytes[..len - 100].to_vec(),
            "byte offset".into(),
        ),
        (
            "truncated in the header".into(),
            bytes[..hlen - 3].to_vec(),
            "header".into(),
        ),
        ("empty".into(), Vec::new(), "not an aos bundle".into()),
    ];
    // A payload byte of the first object: the error names that object.
    let first_id = format!(
        "b3:{}",
        bytes[hlen + 8..hlen + 40]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    cases.push((
        "object".into(),
        flip(hlen + 8 + 50 + 3),
        format!("object {first_id} at byte offset {}", hlen + 8),
    ));
    // Every 997th byte: something must notice.
    for at in (0..len).step_by(997) {
        cases.push((format!("byte {at}"), flip(at), String::new()));
    }

    let b = Env::new();
    let before = fsck(&b);
    for (what, damaged, needle) in cases {
        let path = shared.path().join("bad.bundle");
        std::fs::write(&path, &damaged).unwrap();
        let p = path.display().to_string();
        for cmd in ["verify", "unbundle"] {
            let r = b.run(&["bundle", cmd, &p]).fails(1);
            assert!(
                r.stderr.contains(&needle),
                "{what}, {cmd}: expected {needle:?} in {}",
                r.stderr
            );
        }
        assert_eq!(fsck(&b), before, "{what}: something was stored");
        assert_eq!(refs(&b), J::Array(vec![]), "{what}: a ref moved");
    }
    // The undamaged file still applies.
    b.run(&["bundle", "unbundle", &good]).ok();
    assert_eq!(refs(&b), refs(&a));
}

/// The `forked_from` mark of `aos log --json WORLD`, if any.
fn forked_from(env: &Env, world: &str) -> Option<(u64, String)> {
    env.run(&["--json", "log", world])
        .ok()
        .out()
        .lines()
        .map(|l| serde_json::from_str::<J>(l).unwrap())
        .find_map(|v| {
            Some((
                v["height"].as_u64()?,
                v.get("forked_from")?.as_str()?.to_owned(),
            ))
        })
}

fn ref_target(env: &Env, name: &str) -> Option<String> {
    refs(env)
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["id"].as_str().unwrap().to_owned())
}

#[test]
fn lineage_travels_in_bundles() {
    let shared = Shared::new();
    let a = Env::with_counter("0");
    send(&a, Some(1000), 3);
    a.run(&["-q", "fork", "c", "d"]).ok();
    send_to(&a, "d", None, 2);
    let file = shared.file("d.bundle");
    let r = json(&a.run(&["--json", "bundle", "create", &file, "c", "d"]).ok());
    let names: Vec<&str> = r["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "refs/checkpoints/c",
            "refs/checkpoints/d",
            "refs/lineage/d",
            "refs/worlds/c",
            "refs/worlds/d"
        ]
    );
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"# aos bundle v1\n@lineage=1\n@object-format=blake3\n"));
    // The receiver gets the lineage with the world: `aos log` marks the fork point.
    let b = Env::new();
    b.run(&["-q", "bundle", "unbundle", &file]).ok();
    assert_eq!(forked_from(&b, "d"), Some((4, "c at height 4".to_owned())));
    assert_eq!(
        ref_target(&b, "refs/lineage/d"),
        ref_target(&a, "refs/lineage/d")
    );
    assert!(ref_target(&b, "refs/lineage/c").is_none());
    b.run(&["-q", "fsck"]).ok();
    // A bundle of a world without lineage is exactly a version 1 bundle of before.
    let plain = shared.file("c.bundle");
    a.run(&["-q", "bundle", "create", &plain, "c"]).ok();
    assert!(
        std::fs::read(&plain)
            .unwrap()
            .starts_with(b"# aos bundle v1\n@object-format=blake3\nb3:")
    );

    // A world that fast-forwards keeps its own lineage ...
    let c = Env::new();
    c.run(&["-q", "bundle", "unbundle", &plain]).ok();
    c.run(&["-q", "fork", "c@2", "d"]).ok();
    let own = ref_target(&c, "refs/lineage/d").unwrap();
    let r = json(&c.run(&["--json", "bundle", "unbundle", &file]).ok());
    let d = r["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "refs/worlds/d")
        .unwrap()
        .clone();
    assert_eq!(d["change"], "fast-forward", "{r}");
    assert!(
        r["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "refs/lineage/d"),
        "{r}"
    );
    assert_eq!(ref_target(&c, "refs/lineage/d").unwrap(), own);
    assert_eq!(forked_from(&c, "d"), Some((2, "c at height 2".to_owned())));
    // ... one that is replaced takes the bundle's.
    let e = Env::new();
    e.run(&["-q", "bundle", "unbundle", &plain]).ok();
    e.run(&["-q", "fork", "c@2", "d"]).ok();
    e.run(&["-q", "send", "d", "demo/CounterEvent@1", "\"Reset\""])
        .ok();
    let own = ref_target(&e, "refs/lineage/d").unwrap();
    let r = e.run(&["bundle", "unbundle", &file]).fails(1);
    assert!(r.stderr.contains("diverged"), "{}", r.stderr);
    assert_eq!(ref_target(&e, "refs/lineage/d").unwrap(), own);
    let r = json(
        &e.run(&["--json", "bundle", "unbundle", &file, "--force"])
            .ok(),
    );
    let lineage = r["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "refs/lineage/d")
        .unwrap()
        .clone();
    assert_eq!(lineage["change"], "updated", "{r}");
    assert_eq!(forked_from(&e, "d"), Some((4, "c at height 4".to_owned())));
    // The old lineage stays in the reflog (gc keeps it).
    e.run(&["-q", "gc", "--prune=now"]).ok();
    e.run(&["cat-object", "--type", &own]).ok();
}

#[test]
fn diverged_worlds_move_only_with_force() {
    let shared = Shared::new();
    let base = shared.file("base.bundle");
    let theirs = shared.file("theirs.bundle");
    let a = Env::with_counter("0");
    send(&a, Some(1000), 3);
    a.run(&["bundle", "create", &base, "c"]).ok();
    let b = Env::new();
    b.run(&["bundle", "unbundle", &base]).ok();
    // Both append different events after the common base.
    send(&a, None, 4);
    send(&b, Some(7), 2);
    let mine = head(&b);
    a.run(&["bundle", "create", &theirs, "c"]).ok();

    let before = refs(&b);
    let r = b.run(&["bundle", "unbundle", &theirs]).fails(1);
    assert!(r.stderr.contains("diverged"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(refs(&b), before, "no ref moved");

    let u = json(
        &b.run(&["--json", "bundle", "unbundle", "--force", &theirs])
            .ok(),
    );
    let world = u["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "refs/worlds/c")
        .unwrap()
        .clone();
    assert_eq!(world["change"], "forced");
    assert_eq!(world["old"], J::String(mine.clone()));
    assert_eq!(refs(&b), refs(&a));
    b.run(&["verify", "c"]).ok();
    // The replaced head is still in the reflog, so gc keeps it.
    let log = std::fs::read_to_string(b.store().join("logs/refs/worlds/c")).unwrap();
    assert!(log.contains(&mine), "{log}");

    // --since must name an ancestor of a bundled head.
    a.run(&["world", "new", "d", "--example", "counter"]).ok();
    send_to(&a, "d", Some(99), 1);
    let other = head_of(&a, "d");
    let r = a
        .run(&[
            "bundle",
            "create",
            &shared.file("x.bundle"),
            "c",
            "--since",
            &other,
        ])
        .fails(1);
    assert!(r.stderr.contains("not an ancestor"), "{}", r.stderr);
    assert!(!shared.path().join("x.bundle").exists());
}

/// Replaces the header of a valid bundle with `header` (the checksum no longer matches,
/// but the header is read, and rejected, first).
fn with_header(bytes: &[u8], header: &str) -> Vec<u8> {
    let hlen = bytes.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(&bytes[hlen..]);
    out
}

#[test]
fn bundles_only_carry_world_and_checkpoint_refs() {
    let shared = Shared::new();
    let good = shared.file("good.bundle");
    let a = Env::with_counter("0");
    send(&a, Some(1000), 2);
    a.run(&["bundle", "create", &good, "c"]).ok();
    let bytes = std::fs::read(&good).unwrap();
    let id = head(&a);
    let b = Env::new();
    for (name, needle) in [
        ("refs/heads/main", "cannot be bundled"),
        ("refs/worlds/../../../escape", "invalid ref name"),
        ("refs/worlds/a/../b", "invalid ref name"),
        ("refs/worlds/x/y", "cannot be bundled"),
        ("refs/checkpoints/..", "invalid ref name"),
        ("/tmp/escape", "invalid ref name"),
        ("refs/worlds/.hidden", "invalid ref name"),
        ("refs/worlds/x.lock", "invalid ref name"),
    ] {
        let header = format!("# aos bundle v1\n@object-format=blake3\n{id} {name}\n\n");
        let path: PathBuf = shared.path().join("evil.bundle");
        std::fs::write(&path, with_header(&bytes, &header)).unwrap();
        let p = path.display().to_string();
        for cmd in ["list-heads", "verify", "unbundle"] {
            let r = b.run(&["bundle", cmd, &p]).fails(1);
            assert!(r.stderr.contains(needle), "{name} {cmd}: {}", r.stderr);
            assert!(
                r.stderr.contains("header line 3"),
                "{name} {cmd}: {}",
                r.stderr
            );
        }
    }
    assert_eq!(refs(&b), J::Array(vec![]));
    assert_eq!(fsck(&b).0, 0);
    assert!(!b.path().join("escape").exists() && !Path::new("/tmp/escape").exists());

    // An unknown capability is refused, however harmless it looks.
    let header =
        format!("# aos bundle v1\n@filter=none\n@object-format=blake3\n{id} refs/worlds/c\n\n");
    let path = shared.path().join("cap.bundle");
    std::fs::write(&path, with_header(&bytes, &header)).unwrap();
    let r = b
        .run(&["bundle", "list-heads", &path.display().to_string()])
        .fails(1);
    assert!(
        r.stderr.contains("unknown capability `@filter`"),
        "{}",
        r.stderr
    );
}

#[test]
fn usage_errors() {
    let env = Env::with_counter("0");
    env.run(&["bundle"]).fails(2);
    env.run(&["bundle", "create", "x.bundle"]).fails(2);
    env.run(&["bundle", "create", "x.bundle", "c", "--since", "xyz"])
        .fails(2);
    let r = env.run(&["bundle", "create", "x.bundle", "nope"]).fails(1);
    assert!(r.stderr.contains("no world named `nope`"), "{}", r.stderr);
    assert!(!env.path().join("x.bundle").exists());
    let r = env.run(&["bundle", "verify", "missing.bundle"]).fails(1);
    assert!(r.stderr.contains("missing.bundle"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Golden vectors (objects-spec §14)

mod golden {
    use super::*;
    use aos::object::Kind;
    use aos::transfer::ObjectSource;
    use aos::transfer::bundle::{BundleReader, parse_header};
    use serde_json::json;

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("objects-spec/vectors")
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Headers every reader must reject, with the rule they break.
    fn invalid_headers() -> Vec<(&'static str, String, &'static str)> {
        let a = "b3:1111111111111111111111111111111111111111111111111111111111111111";
        let b = "b3:2222222222222222222222222222222222222222222222222222222222222222";
        let sig = "# aos bundle v1\n";
        let cap = "@object-format=blake3\n";
        let r = format!("{a} refs/worlds/w\n");
        vec![
            ("empty", String::new(), "signature"),
            (
                "other version",
                format!("# aos bundle v2\n{cap}{r}\n"),
                "signature",
            ),
            (
                "CRLF",
                format!("# aos bundle v1\r\n{cap}{r}\n"),
                "printable ASCII lines",
            ),
            (
                "no object format",
                format!("{sig}{r}\n"),
                "object-format required",
            ),
            (
                "unknown capability",
                format!("{sig}@filter=x\n{cap}{r}\n"),
                "unknown capability",
            ),
            (
                "other object format",
                format!("{sig}@object-format=sha1\n{r}\n"),
                "unknown capability value",
            ),
            (
                "capability twice",
                format!("{sig}{cap}{cap}{r}\n"),
                "capabilities ascending",
            ),
            (
                "capability after a ref",
                format!("{sig}{r}{cap}\n"),
                "section order",
            ),
            (
                "uppercase id",
                format!("{sig}{cap}-{}\n{r}\n", a.to_uppercase()),
                "id text",
            ),
            (
                "id without b3:",
                format!("{sig}{cap}-{}\n{r}\n", &a[3..]),
                "id text",
            ),
            (
                "prerequisites out of order",
                format!("{sig}{cap}-{b}\n-{a}\n{r}\n"),
                "prerequisites ascending",
            ),
            (
                "prerequisite after a ref",
                format!("{sig}{cap}{r}-{a}\n\n"),
                "section order",
            ),
            ("no refs", format!("{sig}{cap}\n"), "at least one ref"),
            ("ref twice", format!("{sig}{cap}{r}{r}\n"), "refs ascending"),
            (
                "refs out of order",
                format!("{sig}{cap}{a} refs/worlds/x\n{r}\n"),
                "refs ascending",
            ),
            (
                "dot-dot",
                format!("{sig}{cap}{a} refs/worlds/../x\n\n"),
                "ref name",
            ),
            (
                "absolute path",
                format!("{sig}{cap}{a} /etc/passwd\n\n"),
                "ref name",
            ),
            (
                "other namespace",
                format!("{sig}{cap}{a} refs/heads/main\n\n"),
                "worlds and checkpoints only",
            ),
            (
                "two components",
                format!("{sig}{cap}{a} refs/worlds/x/y\n\n"),
                "worlds and checkpoints only",
            ),
            (
                "checkpoint alone",
                format!("{sig}{cap}{a} refs/checkpoints/w\n\n"),
                "checkpoint needs its world",
            ),
            (
                "tab",
                format!("{sig}{cap}{a}\trefs/worlds/w\n\n"),
                "printable ASCII lines",
            ),
            (
                "no empty line",
                format!("{sig}{cap}{r}"),
                "empty line ends the header",
            ),
            (
                "long line",
                format!("{sig}{cap}{a} refs/worlds/{}\n\n", "x".repeat(1100)),
                "line length",
            ),
            (
                "lineage without its capability",
                format!("{sig}{cap}{b} refs/lineage/w\n{r}\n"),
                "lineage needs @lineage=1",
            ),
            (
                "lineage capability without lineage",
                format!("{sig}@lineage=1\n{cap}{r}\n"),
                "@lineage=1 only with lineage refs",
            ),
            (
                "other lineage version",
                format!("{sig}@lineage=2\n{cap}{b} refs/lineage/w\n{r}\n"),
                "unknown capability value",
            ),
            (
                "lineage without its world",
                format!("{sig}@lineage=1\n{cap}{b} refs/lineage/v\n{r}\n"),
                "lineage needs its world",
            ),
            (
                "lineage capability after object-format",
                format!("{sig}{cap}@lineage=1\n{b} refs/lineage/w\n{r}\n"),
                "capabilities ascending",
            ),
        ]
    }

    /// The world of the vectors, built by the CLI: `c` with markers every 4 entries, four
    /// events (then two more, and a fork `d` of `c` with one more). Returns the store and the
    /// first head.
    fn vector_world() -> (Env, String) {
        let env = Env::with_counter("4");
        send(&env, Some(3), 3);
        let h1 = head(&env);
        (env, h1)
    }

    fn describe(path: &Path) -> J {
        let b = BundleReader::open(path).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let h = b.header();
        let hlen = parse_header(&bytes).unwrap().1;
        let mut objects = Vec::new();
        b.for_each_object(&mut |o| {
            objects.push(json!({
                "offset": o.at,
                "id": o.id.to_string(),
                "kind": o.kind.name(),
                "encoding": o.encoding as u8,
                "size": o.size,
                "stored_length": o.stored.len(),
            }));
            Ok(())
        })
        .unwrap();
        let f = bytes.len();
        json!({
            "file": path.strip_prefix(vectors()).unwrap_or(path).display().to_string(),
            "length": f,
            "header_length": hlen,
            "capabilities": h.capabilities.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "prerequisites": h.prerequisites.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "refs": h.refs.iter().map(|(id, n)| json!({"id": id.to_string(), "name": n.as_str()})).collect::<Vec<_>>(),
            "objects": objects,
            "count": u64::from_le_bytes(bytes[f - 72..f - 64].try_into().unwrap()),
            "pack_checksum": hex(&bytes[f - 64..f - 32]),
            "checksum": hex(&bytes[f - 32..]),
        })
    }

    #[test]
    fn bundle_vectors() {
        let dir = vectors().join("bundle");
        let bless = std::env::var_os("AOS_BLESS").is_some();
        let out = if bless {
            std::fs::create_dir_all(&dir).unwrap();
            dir.clone()
        } else {
            tempfile::tempdir().unwrap().keep()
        };
        let (env, h1) = vector_world();
        let full = out.join("counter.bundle");
        let inc = out.join("counter-inc.bundle");
        let fork = out.join("counter-fork.bundle");
        env.run(&["bundle", "create", &full.display().to_string(), "c"])
            .ok();
        send(&env, None, 2);
        env.run(&[
            "bundle",
            "create",
            &inc.display().to_string(),
            "c",
            "--since",
            &h1,
        ])
        .ok();
        // A fork carries its lineage: `@lineage=1`, `refs/lineage/d` and the lineage object.
        let h2 = head(&env);
        env.run(&["-q", "fork", "c", "d"]).ok();
        send_to(&env, "d", None, 1);
        env.run(&[
            "bundle",
            "create",
            &fork.display().to_string(),
            "d",
            "--since",
            &h2,
        ])
        .ok();
        let invalid: Vec<J> = invalid_headers()
            .into_iter()
            .map(|(name, header, rule)| json!({"name": name, "header": header, "rule": rule}))
            .collect();
        let manifest = vectors().join("bundle.json");
        if bless {
            let v = json!({
                "bundles": [describe(&full), describe(&inc), describe(&fork)],
                "invalid_headers": invalid,
            });
            std::fs::write(&manifest, serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
            return;
        }
        // The same world bundles to the same bytes, every time and everywhere.
        for name in [
            "counter.bundle",
            "counter-inc.bundle",
            "counter-fork.bundle",
        ] {
            assert_eq!(
                std::fs::read(out.join(name)).unwrap(),
                std::fs::read(dir.join(name)).unwrap(),
                "{name} differs from the vector (run with AOS_BLESS=1 after a deliberate change)"
            );
        }
        let _ = std::fs::remove_dir_all(&out);
        let expect: J = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        assert_eq!(expect["bundles"][0], describe(&dir.join("counter.bundle")));
        assert_eq!(
            expect["bundles"][1],
            describe(&dir.join("counter-inc.bundle"))
        );
        let forked = describe(&dir.join("counter-fork.bundle"));
        assert_eq!(expect["bundles"][2], forked);
        assert_eq!(forked["capabilities"][0], json!(["lineage", "1"]));
        assert_eq!(forked["refs"][1]["name"], "refs/lineage/d");
        assert_eq!(expect["invalid_headers"], J::Array(invalid));
        for (name, header, _) in invalid_headers() {
            assert!(
                parse_header(header.as_bytes()).is_err(),
                "{name} was accepted"
            );
        }
        // The objects are what the store holds, and the vectors apply one after the other.
        for o in expect["bundles"][0]["objects"].as_array().unwrap() {
            assert!(Kind::from_name(o["kind"].as_str().unwrap()).is_some());
        }
        let b = Env::new();
        for name in [
            "counter.bundle",
            "counter-inc.bundle",
            "counter-fork.bundle",
        ] {
            b.run(&["bundle", "unbundle", &dir.join(name).display().to_string()])
                .ok();
        }
        assert_eq!(refs(&b), refs(&env));
        b.run(&["verify", "d"]).ok();
        b.run(&["verify", "c"]).ok();
    }
}
