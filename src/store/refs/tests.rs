//! Tests of names, single updates, reflogs and listing.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use super::*;
use crate::store::clock::{Clock, FixedClock};
use crate::store::fs::LockFile;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

/// The id numbered `n` (a fake: no object has it).
pub(super) fn id(n: u64) -> ObjectId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[31] = 0xaa;
    ObjectId::from_bytes(b)
}

fn num(id: ObjectId) -> u64 {
    u64::from_be_bytes(id.as_bytes()[..8].try_into().unwrap())
}

pub(super) fn name(s: &str) -> RefName {
    RefName::new(s).unwrap()
}

fn setup() -> (tempfile::TempDir, Refs) {
    let dir = tempfile::tempdir().unwrap();
    let refs = Refs::new(dir.path());
    (dir, refs)
}

/// Refs whose `refs/heads/main` was created at `id(1)`, logged with `msg`.
fn setup_main(msg: &str) -> (tempfile::TempDir, Refs, RefName) {
    let (dir, refs) = setup();
    let n = name("refs/heads/main");
    refs.update(&n, Some(id(1)), Expected::Absent, msg).unwrap();
    (dir, refs, n)
}

/// Every file under `dir`, relative, with `/` separators, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                let rel = p.strip_prefix(root).unwrap();
                let parts: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
                out.push(parts.join("/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn name_validation() {
    let long_ok = format!("refs/{}", "a".repeat(MAX_NAME_LEN - 5));
    assert_eq!(long_ok.len(), MAX_NAME_LEN);
    for ok in [
        "refs/heads/main",
        "refs/worlds/demo",
        "refs/remotes/origin/x",
        "refs/a",
        "refs/A-b_c.d+e@f=g",
        "refs/v1.2.3/x..y",
        "refs/refs",
        "refs/a/lock",
        "refs/tmp",
        long_ok.as_str(),
    ] {
        let n = RefName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(n.as_str(), ok);
        assert_eq!(n.to_string(), ok);
        assert_eq!(ok.parse::<RefName>().unwrap(), n);
    }
    let long_bad = format!("refs/{}", "a".repeat(MAX_NAME_LEN - 4));
    for (bad, rule) in [
        ("", "not empty"),
        ("refs", "at least one component after `refs/`"),
        ("refs/", "does not end with `/`"),
        ("/abs", "does not start with `/`"),
        ("/refs/a", "does not start with `/`"),
        ("heads/main", "starts with `refs/`"),
        ("Refs/a", "starts with `refs/`"),
        ("refs/../x", "no `..` components"),
        ("refs/./x", "no `.` components"),
        ("refs/a/..", "no `..` components"),
        ("refs/a\x01", "character '\\u{1}' is not allowed"),
        ("refs/a b", "character ' ' is not allowed"),
        ("refs/a\\b", "character '\\\\' is not allowed"),
        ("refs/a:b", "character ':'"),
        ("refs/a?", "character '?'"),
        ("refs/a*", "character '*'"),
        ("refs/a[0]", "character '['"),
        ("refs/a~1", "character '~'"),
        ("refs/a^", "character '^'"),
        ("refs/é", "character 'é'"),
        ("refs/a.lock", "ends with `.lock`"),
        ("refs/a.lock/b", "ends with `.lock`"),
        ("refs//a", "no empty components"),
        ("refs/.hidden", "starts with `.`"),
        ("refs/a/.x/b", "starts with `.`"),
        ("refs/tmp-x", "starts with `tmp-`"),
        (long_bad.as_str(), "at most 255 bytes"),
    ] {
        let err = RefName::new(bad).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, RefError::InvalidName { .. }), "{bad:?}");
        assert!(msg.contains(rule), "{bad:?}: {msg}");
        if bad.len() < 100 {
            assert!(msg.contains(&format!("{bad:?}")), "{bad:?}: {msg}");
        }
        assert!(bad.parse::<RefName>().is_err());
    }
}

#[test]
fn create_read_and_file_format() {
    let (dir, refs) = setup();
    let n = name("refs/worlds/demo");
    assert_eq!(refs.read(&n).unwrap(), None);
    refs.update(&n, Some(id(1)), Expected::Absent, "create")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(1)));
    let path = dir.path().join("refs/worlds/demo");
    assert_eq!(refs.ref_path(&n), path);
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{}\n", id(1)));
    assert_eq!(
        refs.reflog_path(&n),
        dir.path().join("logs/refs/worlds/demo")
    );
    // Nothing else is left behind: no lock files, no temporary files.
    assert_eq!(
        files(dir.path()),
        ["logs/refs/worlds/demo", "refs/worlds/demo"]
    );
}

#[test]
fn compare_and_swap() {
    let (_dir, refs, n) = setup_main("a");

    let err = refs
        .update(&n, Some(id(2)), Expected::Absent, "b")
        .unwrap_err();
    assert!(
        matches!(err, RefError::Stale { ref name, expected: Expected::Absent, actual }
            if name == &n && actual == Some(id(1))),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "ref refs/heads/main is at {}, expected it not to exist",
            id(1)
        )
    );

    let err = refs
        .update(&n, Some(id(2)), Expected::Is(id(7)), "c")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("ref refs/heads/main is at {}, expected {}", id(1), id(7))
    );
    assert_eq!(refs.read(&n).unwrap(), Some(id(1)));

    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "d")
        .unwrap();
    refs.update(&n, Some(id(3)), Expected::Any, "e").unwrap();
    // Setting the same value is an update like any other.
    refs.update(&n, Some(id(3)), Expected::Is(id(3)), "f")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(3)));

    let other = name("refs/heads/other");
    let err = refs
        .update(&other, Some(id(1)), Expected::Is(id(1)), "g")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("ref refs/heads/other does not exist, expected {}", id(1))
    );
    refs.update(&other, Some(id(1)), Expected::Any, "h")
        .unwrap();

    // Only successful updates are logged.
    let msgs: Vec<_> = refs
        .reflog(&n)
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(msgs, ["a", "d", "e", "f"]);
}

#[test]
fn delete() {
    let (dir, refs) = setup();
    let n = name("refs/a/b/c");
    let keep = name("refs/keep");
    refs.update(&n, Some(id(1)), Expected::Absent, "create")
        .unwrap();
    refs.update(&keep, Some(id(9)), Expected::Absent, "keep")
        .unwrap();

    let err = refs.update(&n, None, Expected::Is(id(2)), "x").unwrap_err();
    assert!(matches!(err, RefError::Stale { .. }), "{err:?}");
    let err = refs.update(&n, None, Expected::Absent, "x").unwrap_err();
    assert!(matches!(err, RefError::Stale { .. }), "{err:?}");
    assert_eq!(refs.read(&n).unwrap(), Some(id(1)));

    refs.update(&n, None, Expected::Is(id(1)), "delete")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), None);
    // Empty directories up to refs/ are gone; the reflog stays.
    assert!(!dir.path().join("refs/a").exists());
    assert!(dir.path().join("refs").is_dir());
    assert_eq!(
        files(dir.path()),
        ["logs/refs/a/b/c", "logs/refs/keep", "refs/keep"]
    );
    let log = refs.reflog(&n).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!((log[1].old, log[1].new), (Some(id(1)), None));

    // Deleting what does not exist: fine unless a value was expected; nothing logged.
    refs.update(&n, None, Expected::Any, "again").unwrap();
    refs.update(&n, None, Expected::Absent, "again").unwrap();
    let err = refs
        .update(&n, None, Expected::Is(id(1)), "again")
        .unwrap_err();
    assert!(
        matches!(err, RefError::Stale { actual: None, .. }),
        "{err:?}"
    );
    assert_eq!(refs.reflog(&n).unwrap().len(), 2);
    assert_eq!(refs.list("refs/").unwrap(), [(keep.clone(), id(9))]);

    // The name can be created again; its reflog continues.
    refs.update(&n, Some(id(3)), Expected::Absent, "again")
        .unwrap();
    assert_eq!(refs.reflog(&n).unwrap().len(), 3);

    // Deleting a name that is a directory of refs deletes nothing.
    refs.update(&name("refs/a/b"), None, Expected::Any, "dir")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(3)));
}

#[test]
fn conflicts() {
    let (dir, refs) = setup();
    let a = name("refs/a");
    let ab = name("refs/a/b");
    refs.update(&a, Some(id(1)), Expected::Absent, "").unwrap();
    let err = refs
        .update(&ab, Some(id(2)), Expected::Any, "")
        .unwrap_err();
    assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot update ref refs/a/b: ref refs/a exists, and a ref cannot also be a \
         directory of refs"
    );
    assert_eq!(refs.read(&ab).unwrap(), None);

    let c = name("refs/c");
    let cde = name("refs/c/d/e");
    refs.update(&cde, Some(id(3)), Expected::Absent, "")
        .unwrap();
    let err = refs.update(&c, Some(id(4)), Expected::Any, "").unwrap_err();
    assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "cannot update ref refs/c: refs exist under refs/c/ (e.g. refs/c/d/e), and a ref \
         cannot also be a directory of refs"
    );
    // Nothing half-written: no lock files, no reflogs for the refused names.
    assert_eq!(
        files(dir.path()),
        ["logs/refs/a", "logs/refs/c/d/e", "refs/a", "refs/c/d/e"]
    );

    // Leftover empty directories are not in the way.
    fs::create_dir_all(dir.path().join("refs/e/f/g")).unwrap();
    refs.update(&name("refs/e"), Some(id(5)), Expected::Absent, "")
        .unwrap();
    assert_eq!(refs.read(&name("refs/e")).unwrap(), Some(id(5)));

    // Reflogs outlive refs, and the reflog of a deleted ref can be in the way.
    refs.update(&a, None, Expected::Any, "").unwrap();
    let err = refs
        .update(&ab, Some(id(2)), Expected::Any, "")
        .unwrap_err();
    assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("reflog of refs/a"), "{msg}");
    assert!(msg.contains("remove it"), "{msg}");
    assert_eq!(refs.read(&ab).unwrap(), None);
    assert!(!dir.path().join("refs/a").exists());
    fs::remove_file(dir.path().join("logs/refs/a")).unwrap();
    refs.update(&ab, Some(id(2)), Expected::Any, "").unwrap();

    refs.update(&cde, None, Expected::Any, "").unwrap();
    let err = refs.update(&c, Some(id(4)), Expected::Any, "").unwrap_err();
    assert!(matches!(err, RefError::Conflict { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("reflogs of deleted refs under refs/c/")
    );
    assert!(!dir.path().join("refs/c").exists());
    assert!(files(dir.path()).iter().all(|f| !f.ends_with(".lock")));
}

#[test]
fn reflog_contents() {
    // A fixed clock gives every line a known time.
    let dir = tempfile::tempdir().unwrap();
    let refs = Refs::with_clock(
        dir.path(),
        std::sync::Arc::new(FixedClock::at_unix_secs(1_700_000_123)),
    );
    let n = name("refs/heads/main");
    refs.update(&n, Some(id(1)), Expected::Absent, "first")
        .unwrap();
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "two\nlines\r\n")
        .unwrap();
    refs.update(&n, None, Expected::Is(id(2)), "").unwrap();

    let text = fs::read_to_string(dir.path().join("logs/refs/heads/main")).unwrap();
    assert_eq!(
        text,
        format!(
            "- {a} 1700000123 first\n{a} {b} 1700000123 two lines  \n{b} - 1700000123 \n",
            a = id(1),
            b = id(2)
        )
    );

    let log = refs.reflog(&n).unwrap();
    assert_eq!(
        log.iter()
            .map(|e| (e.old, e.new, e.time, e.message.as_str()))
            .collect::<Vec<_>>(),
        [
            (None, Some(id(1)), 1_700_000_123, "first"),
            (Some(id(1)), Some(id(2)), 1_700_000_123, "two lines  "),
            (Some(id(2)), None, 1_700_000_123, ""),
        ]
    );
    assert!(refs.reflog(&name("refs/none")).unwrap().is_empty());

    // The default clock is the system's.
    let (_sys_dir, sys) = setup();
    let before = crate::store::clock::SystemClock.unix_secs();
    sys.update(&n, Some(id(1)), Expected::Absent, "").unwrap();
    let after = crate::store::clock::SystemClock.unix_secs();
    let t = sys.reflog(&n).unwrap()[0].time;
    assert!(before <= t && t <= after, "{before} {t} {after}");

    refs.update(&name("refs/x/y"), Some(id(5)), Expected::Any, "")
        .unwrap();
    assert_eq!(refs.all_reflog_ids().unwrap(), [id(1), id(2), id(5)]);
}

#[test]
fn corrupt_reflogs() {
    let (dir, refs, n) = setup_main("a");
    let path = dir.path().join("logs/refs/heads/main");

    // A torn last line (crash mid-append) is ignored, then cut off by the next append.
    let good = fs::read(&path).unwrap();
    let mut torn = good.clone();
    torn.extend_from_slice(b"b3:0123");
    fs::write(&path, &torn).unwrap();
    assert_eq!(refs.reflog(&n).unwrap().len(), 1);
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "b")
        .unwrap();
    let log = refs.reflog(&n).unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].message, "b");

    for (line, why) in [
        ("garbage\n", "bad old id"),
        ("- -\n", "missing time"),
        ("-\n", "missing new id"),
        ("- b3:xyz 1 m\n", "bad new id"),
        ("- - soon m\n", "bad time"),
        ("\n", "missing old id"),
    ] {
        let mut bytes = fs::read(&path).unwrap();
        let keep = bytes.len();
        bytes.extend_from_slice(line.as_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = refs.reflog(&n).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, RefError::CorruptReflog { line: 3, ref path, .. } if path.ends_with("main")),
            "{line:?}: {err:?}"
        );
        assert!(
            msg.contains("line 3") && msg.contains(why),
            "{line:?}: {msg}"
        );
        assert!(refs.all_reflog_ids().is_err());
        bytes.truncate(keep);
        fs::write(&path, &bytes).unwrap();
    }
    // A line without a message is accepted.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"- - 12\n");
    fs::write(&path, &bytes).unwrap();
    assert_eq!(refs.reflog(&n).unwrap()[2].message, "");
}

#[test]
fn corrupt_ref_files() {
    let (dir, refs) = setup();
    let good = name("refs/heads/good");
    refs.update(&good, Some(id(1)), Expected::Absent, "")
        .unwrap();
    let bad = name("refs/heads/bad");
    let bad_path = dir.path().join("refs/heads/bad");
    let text = id(2).to_string();
    for contents in [
        String::new(),
        text.clone(),
        format!("{text}\n\n"),
        format!("{text}\r\n"),
        format!("{}\n", text.to_uppercase()),
        format!("{}\n", &text[3..]),
        "ref: refs/heads/good\n".to_owned(),
        "\u{0}\u{ff}".repeat(5000),
    ] {
        fs::write(&bad_path, contents.as_bytes()).unwrap();
        let err = refs.read(&bad).unwrap_err();
        assert!(
            matches!(err, RefError::Corrupt { ref path, .. } if path == &bad_path),
            "{contents:?}: {err:?}"
        );
        assert!(err.to_string().contains("expected `b3:<64 hex digits>`"));
        let err = refs.list("refs/").unwrap_err();
        assert!(matches!(err, RefError::Corrupt { ref path, .. } if path == &bad_path));
        let err = refs
            .update(&bad, Some(id(3)), Expected::Any, "")
            .unwrap_err();
        assert!(matches!(err, RefError::Corrupt { .. }));
        assert!(refs.update(&bad, None, Expected::Any, "").is_err());
    }
    assert!(bad_path.exists());
    assert!(!dir.path().join("logs/refs/heads/bad").exists());

    // Files that are not refs; lock and temporary files are skipped silently.
    fs::write(dir.path().join("refs/heads/bad name"), format!("{text}\n")).unwrap();
    fs::write(dir.path().join("refs/heads/x.lock"), b"").unwrap();
    fs::write(dir.path().join("refs/heads/tmp-w-1-2-3"), b"junk").unwrap();
    fs::create_dir(dir.path().join("refs/.odd")).unwrap();
    let (good_refs, problems) = refs.list_lenient("refs/").unwrap();
    assert_eq!(good_refs, [(good.clone(), id(1))]);
    let paths: Vec<_> = problems.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(
        paths,
        [
            dir.path().join("refs/.odd"),
            dir.path().join("refs/heads/bad"),
            dir.path().join("refs/heads/bad name"),
        ]
    );
    assert!(
        problems[1].1.starts_with("corrupt ref file: "),
        "{problems:?}"
    );
    assert!(
        problems[2].1.contains("not a valid ref name"),
        "{problems:?}"
    );
    // The strict listing reports the first problem by path.
    let err = refs.list("refs/").unwrap_err();
    assert!(matches!(err, RefError::Unexpected { ref path, .. } if path.ends_with(".odd")));
    // Problems outside the prefix do not matter.
    fs::remove_file(&bad_path).unwrap();
    fs::remove_file(dir.path().join("refs/heads/bad name")).unwrap();
    refs.update(&name("refs/worlds/w"), Some(id(4)), Expected::Any, "")
        .unwrap();
    assert_eq!(
        refs.list("refs/worlds/").unwrap(),
        [(name("refs/worlds/w"), id(4))]
    );
}

#[cfg(unix)]
#[test]
fn symlinks_are_not_refs() {
    let (dir, refs, n) = setup_main("");
    std::os::unix::fs::symlink(
        dir.path().join("refs/heads/main"),
        dir.path().join("refs/heads/link"),
    )
    .unwrap();
    let err = refs.read(&name("refs/heads/link")).unwrap_err();
    assert!(matches!(err, RefError::Corrupt { .. }), "{err:?}");
    let (good, problems) = refs.list_lenient("refs/").unwrap();
    assert_eq!(good, [(n, id(1))]);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].1.contains("symlinks"), "{problems:?}");
}

#[test]
fn list_prefixes() {
    let (_dir, refs) = setup();
    assert!(refs.list("refs/").unwrap().is_empty());
    let all = [
        "refs/heads/main",
        "refs/worlds/b/c",
        "refs/worlds/a",
        "refs/worldsx",
        "refs/heads/dev",
    ];
    for (i, n) in all.iter().enumerate() {
        refs.update(&name(n), Some(id(i as u64)), Expected::Absent, "")
            .unwrap();
    }
    let names = |prefix: &str| -> Vec<String> {
        refs.list(prefix)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect()
    };
    assert_eq!(
        names("refs/"),
        [
            "refs/heads/dev",
            "refs/heads/main",
            "refs/worlds/a",
            "refs/worlds/b/c",
            "refs/worldsx"
        ]
    );
    assert_eq!(names(""), names("refs/"));
    assert_eq!(names("refs"), names("refs/"));
    assert_eq!(names("refs/worlds/"), ["refs/worlds/a", "refs/worlds/b/c"]);
    assert_eq!(
        names("refs/worlds"),
        ["refs/worlds/a", "refs/worlds/b/c", "refs/worldsx"]
    );
    assert_eq!(names("refs/worlds/b/"), ["refs/worlds/b/c"]);
    assert_eq!(names("refs/heads/m"), ["refs/heads/main"]);
    assert_eq!(names("refs/heads/main"), ["refs/heads/main"]);
    assert!(names("refs/heads/main/").is_empty());
    assert!(names("refs/nope/").is_empty());
    assert!(names("heads/").is_empty());
    assert!(names("refs/../").is_empty());
    let listed = refs.list("refs/heads/").unwrap();
    assert_eq!(listed[0], (name("refs/heads/dev"), id(4)));
}

#[test]
fn locked() {
    let (dir, refs, n) = setup_main("");
    let refs = refs.with_lock_wait(std::time::Duration::from_millis(50));
    let lock_path = dir.path().join("refs/heads/main.lock");
    let held = LockFile::acquire(lock_path.clone()).unwrap();
    for new in [Some(id(2)), None] {
        let err = refs.update(&n, new, Expected::Any, "").unwrap_err();
        assert!(
            matches!(err, RefError::Locked { ref path } if path == &lock_path),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("main.lock") && msg.contains("busy") && msg.contains("live process"),
            "{msg}"
        );
    }
    // The lock file does not show up as a ref.
    assert_eq!(refs.list("refs/").unwrap(), [(n.clone(), id(1))]);
    drop(held);
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "")
        .unwrap();
    assert_eq!(refs.reflog(&n).unwrap().len(), 2);
}

#[test]
fn a_lock_left_by_a_dead_holder_is_removed() {
    let (dir, refs, n) = setup_main("");
    let lock_path = dir.path().join("refs/heads/main.lock");
    // As a killed process leaves it: the file, no OS lock.
    LockFile::acquire(lock_path.clone()).unwrap().abandon();
    assert!(lock_path.exists());
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(2)));
    assert!(!lock_path.exists());
    // A bare leftover file (from a build without OS locks) is stale too.
    fs::write(&lock_path, b"").unwrap();
    refs.update(&n, None, Expected::Is(id(2)), "").unwrap();
    assert!(!lock_path.exists());
}

#[test]
fn a_waiting_writer_gets_the_lock_when_the_holder_finishes() {
    let (dir, refs, n) = setup_main("");
    let lock_path = dir.path().join("refs/heads/main.lock");
    let held = LockFile::acquire(lock_path).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(held);
    });
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "")
        .unwrap();
    release.join().unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(2)));
}

#[test]
fn reflog_undo_restores_the_log() {
    let (_dir, refs) = setup();
    let n = name("refs/heads/main");
    let undo = refs.append_reflog(&n, None, Some(id(1)), "x").unwrap();
    assert_eq!(undo.prev_len, None);
    undo.apply();
    assert!(!refs.reflog_path(&n).exists());
    refs.update(&n, Some(id(1)), Expected::Absent, "a").unwrap();
    let before = fs::read(refs.reflog_path(&n)).unwrap();
    let undo = refs.append_reflog(&n, Some(id(1)), None, "y").unwrap();
    assert_eq!(undo.prev_len, Some(before.len() as u64));
    undo.apply();
    assert_eq!(fs::read(refs.reflog_path(&n)).unwrap(), before);
}

#[test]
fn racing_cas_has_one_winner_per_round() {
    const THREADS: usize = 8;
    const ROUNDS: u64 = 20;
    let (_dir, refs) = setup();
    let n = name("refs/race/x");
    let barrier = Barrier::new(THREADS);
    let wins: Vec<AtomicUsize> = (0..ROUNDS).map(|_| AtomicUsize::new(0)).collect();
    let losses = Mutex::new(Vec::new());
    let unexpected = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (refs, n, barrier, wins, losses, unexpected) =
                (&refs, &n, &barrier, &wins, &losses, &unexpected);
            s.spawn(move || {
                for round in 0..ROUNDS {
                    barrier.wait();
                    let expected = match refs.read(n).unwrap() {
                        Some(cur) => Expected::Is(cur),
                        None => Expected::Absent,
                    };
                    barrier.wait();
                    let new = id(round * 100 + t as u64);
                    match refs.update(n, Some(new), expected, &format!("t{t}")) {
                        Ok(()) => {
                            wins[round as usize].fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e @ (RefError::Locked { .. } | RefError::Stale { .. })) => {
                            losses.lock().unwrap().push(e.to_string());
                        }
                        Err(e) => unexpected.lock().unwrap().push(e.to_string()),
                    }
                    barrier.wait();
                }
            });
        }
    });
    assert_eq!(unexpected.into_inner().unwrap(), Vec::<String>::new());
    for (round, w) in wins.iter().enumerate() {
        assert_eq!(w.load(Ordering::SeqCst), 1, "round {round}");
    }
    assert_eq!(
        losses.lock().unwrap().len(),
        (THREADS - 1) * ROUNDS as usize
    );
    let log = refs.reflog(&n).unwrap();
    assert_eq!(log.len(), ROUNDS as usize);
    for (round, e) in log.iter().enumerate() {
        assert_eq!(num(e.new.unwrap()) / 100, round as u64);
        assert_eq!(e.old, round.checked_sub(1).map(|r| log[r].new.unwrap()));
    }
    assert_eq!(refs.read(&n).unwrap(), log.last().unwrap().new);
    assert!(
        files(refs.root())
            .iter()
            .all(|f| !f.ends_with(".lock") && !f.contains("tmp-"))
    );
}

/// Runs `threads` writers that each move `counter` (holding [`id`]s) on by one `each` times:
/// `step(thread, next, expected)` tries one move, and a stale or locked ref makes the
/// writer read it again and retry.
pub(super) fn race(
    refs: &Refs,
    counter: &RefName,
    threads: u64,
    each: u64,
    step: impl Fn(u64, ObjectId, Expected) -> Result<(), RefError> + Sync,
) {
    std::thread::scope(|s| {
        for t in 0..threads {
            let step = &step;
            s.spawn(move || {
                let mut done = 0;
                while done < each {
                    let cur = refs.read(counter).unwrap();
                    let next = id(cur.map_or(0, num) + 1);
                    let expected = cur.map_or(Expected::Absent, Expected::Is);
                    match step(t, next, expected) {
                        Ok(()) => done += 1,
                        Err(RefError::Stale { .. }) => {}
                        Err(RefError::Locked { .. }) => std::thread::yield_now(),
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            });
        }
    });
}

#[test]
fn counter_with_retries_counts_exactly() {
    const THREADS: u64 = 4;
    const EACH: u64 = 25;
    let (_dir, refs) = setup();
    let n = name("refs/counter");
    race(&refs, &n, THREADS, EACH, |t, next, expected| {
        refs.update(&n, Some(next), expected, &format!("t{t}"))
    });
    let total = THREADS * EACH;
    assert_eq!(refs.read(&n).unwrap(), Some(id(total)));
    let log = refs.reflog(&n).unwrap();
    assert_eq!(log.len() as u64, total);
    for (i, e) in log.iter().enumerate() {
        let i = i as u64;
        assert_eq!(e.old, (i > 0).then(|| id(i)));
        assert_eq!(e.new, Some(id(i + 1)));
    }
}

#[test]
fn racing_deletes_and_creates_in_one_directory() {
    // Deletions prune empty directories that concurrent creations are about to use.
    let (_dir, refs) = setup();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let refs = &refs;
            s.spawn(move || {
                let n = name(&format!("refs/shared/dir/r{t}"));
                for i in 0..30 {
                    refs.update(&n, Some(id(i)), Expected::Absent, "").unwrap();
                    refs.update(&n, None, Expected::Is(id(i)), "").unwrap();
                }
            });
        }
    });
    assert!(refs.list("refs/").unwrap().is_empty());
    assert_eq!(refs.all_reflog_ids().unwrap().len(), 30);
}

#[test]
fn racing_file_and_directory_never_both_exist() {
    let (dir, refs) = setup();
    let barrier = Barrier::new(2);
    let unexpected = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (refs, barrier, unexpected) = (&refs, &barrier, &unexpected);
            s.spawn(move || {
                for round in 0..40 {
                    let n = if t == 0 {
                        name(&format!("refs/r{round}"))
                    } else {
                        name(&format!("refs/r{round}/x"))
                    };
                    barrier.wait();
                    match refs.update(&n, Some(id(round)), Expected::Absent, "") {
                        Ok(()) => {}
                        Err(RefError::Conflict { .. }) => {}
                        Err(e) => unexpected.lock().unwrap().push(e.to_string()),
                    }
                }
            });
        }
    });
    assert_eq!(unexpected.into_inner().unwrap(), Vec::<String>::new());
    let listed = refs.list("refs/").unwrap();
    for round in 0..40 {
        let file = name(&format!("refs/r{round}"));
        let sub = name(&format!("refs/r{round}/x"));
        let (a, b) = (refs.read(&file).unwrap(), refs.read(&sub).unwrap());
        assert!(a.is_none() || b.is_none(), "round {round}");
        for (n, v) in [(&file, a), (&sub, b)] {
            // A refused update leaves no reflog line behind.
            assert_eq!(refs.reflog(n).unwrap().len(), usize::from(v.is_some()));
        }
    }
    assert!(listed.len() <= 40);
    assert!(files(dir.path()).iter().all(|f| !f.ends_with(".lock")));
}

/// The reflog of `n` as `(old, new)` numbers, line by line.
fn moves(refs: &Refs, n: &RefName) -> Vec<(Option<u64>, Option<u64>)> {
    refs.reflog(n)
        .unwrap()
        .iter()
        .map(|e| (e.old.map(num), e.new.map(num)))
        .collect()
}

#[test]
fn a_reflog_line_whose_move_never_happened_is_ignored_then_replaced() {
    let (_dir, refs, n) = setup_main("create");
    // A writer killed after its reflog line was durable and before it moved the ref.
    refs.append_reflog(&n, Some(id(1)), Some(id(9)), "killed")
        .unwrap();
    assert_eq!(refs.read(&n).unwrap(), Some(id(1)));
    assert_eq!(moves(&refs, &n), [(None, Some(1))], "readers ignore it");
    let (all, current) = refs.reflog_with_value(&n).unwrap();
    assert_eq!((all.len(), current), (2, Some(id(1))));
    // The next update cuts it off: the log holds exactly the moves that happened.
    refs.update(&n, Some(id(2)), Expected::Is(id(1)), "next")
        .unwrap();
    assert_eq!(moves(&refs, &n), [(None, Some(1)), (Some(1), Some(2))]);
    assert_eq!(refs.reflog_with_value(&n).unwrap().0.len(), 2);
    // So does a transaction's.
    refs.append_reflog(&n, Some(id(2)), None, "killed delete")
        .unwrap();
    assert_eq!(moves(&refs, &n).len(), 2);
    let mut t = refs.transaction();
    t.update(&n, Some(id(3)), Expected::Is(id(2)), "t");
    t.update(
        &name("refs/heads/other"),
        Some(id(4)),
        Expected::Absent,
        "t",
    );
    t.commit().unwrap();
    assert_eq!(
        moves(&refs, &n),
        [(None, Some(1)), (Some(1), Some(2)), (Some(2), Some(3))]
    );
    assert_eq!(refs.reflog_with_value(&n).unwrap().0.len(), 3);
}

#[test]
fn a_last_line_that_does_not_start_from_the_current_value_is_kept() {
    // Only a line from the current value to another one is an update that did not happen; a
    // ref moved by hand (no reflog line) leaves the log as it was.
    let (_dir, refs, n) = setup_main("create");
    fs::write(refs.ref_path(&n), format!("{}\n", id(5))).unwrap();
    assert_eq!(moves(&refs, &n), [(None, Some(1))]);
    refs.update(&n, Some(id(6)), Expected::Is(id(5)), "after")
        .unwrap();
    assert_eq!(moves(&refs, &n), [(None, Some(1)), (Some(5), Some(6))]);
}
