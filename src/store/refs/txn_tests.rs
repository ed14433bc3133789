//! Tests of transactions: all or nothing, the record, and recovery after a crash at every
//! step of the commit.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::tests::{id, name, race};
use super::*;
use crate::store::clock::FixedClock;
use crate::store::fs::LockFile;

const T: u64 = 1_700_000_000;

fn setup() -> (tempfile::TempDir, Refs) {
    let dir = tempfile::tempdir().unwrap();
    let refs = Refs::with_clock(dir.path(), Arc::new(FixedClock::at_unix_secs(T)));
    (dir, refs)
}

/// Every file under `dir` whose relative path contains `needle`.
fn files_with(dir: &Path, needle: &str) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, needle: &str, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, needle, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if rel.contains(needle) {
                    out.push(rel);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, needle, &mut out);
    out.sort();
    out
}

fn remove_locks(dir: &Path) {
    for f in files_with(dir, ".lock") {
        fs::remove_file(dir.join(f)).unwrap();
    }
}

/// The three refs the crash tests move: a world moving forward, a checkpoint being created
/// and a ref being deleted.
fn three(refs: &Refs) -> (RefName, RefName, RefName) {
    let (a, b, c) = (
        name("refs/worlds/w"),
        name("refs/checkpoints/w"),
        name("refs/lineage/w"),
    );
    refs.update(&a, Some(id(1)), Expected::Absent, "start a")
        .unwrap();
    refs.update(&c, Some(id(7)), Expected::Absent, "start c")
        .unwrap();
    (a, b, c)
}

fn move_three<'r>(refs: &'r Refs, a: &RefName, b: &RefName, c: &RefName) -> Transaction<'r> {
    let mut t = refs.transaction();
    t.update(a, Some(id(2)), Expected::Is(id(1)), "move a")
        .update(b, Some(id(3)), Expected::Absent, "create b")
        .update(c, None, Expected::Is(id(7)), "delete c");
    t
}

/// A store holding [`three`] refs, whose [`move_three`] transaction stopped (as in a crash)
/// after `step` steps of its commit.
fn crashed_after(step: usize) -> (tempfile::TempDir, Refs, (RefName, RefName, RefName)) {
    let (dir, refs) = setup();
    let abc = three(&refs);
    let (a, b, c) = &abc;
    move_three(&refs, a, b, c)
        .commit_crashing_after(step)
        .unwrap_err();
    (dir, refs, abc)
}

/// Each ref's reflog has the transaction's line exactly once, as its last line, and the refs
/// hold the new values.
fn assert_applied(refs: &Refs, a: &RefName, b: &RefName, c: &RefName) {
    assert_eq!(refs.read(a).unwrap(), Some(id(2)));
    assert_eq!(refs.read(b).unwrap(), Some(id(3)));
    assert_eq!(refs.read(c).unwrap(), None);
    for (n, old, new, msg) in [
        (a, Some(id(1)), Some(id(2)), "move a"),
        (b, None, Some(id(3)), "create b"),
        (c, Some(id(7)), None, "delete c"),
    ] {
        let log = refs.reflog(n).unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.old, last.new, last.time), (old, new, T), "{n}");
        assert_eq!(last.message, msg);
        assert_eq!(
            log.iter().filter(|e| e.message == msg).count(),
            1,
            "{n}: {log:?}"
        );
    }
    assert!(refs.pending().unwrap().is_empty());
}

fn assert_untouched(refs: &Refs, a: &RefName, b: &RefName, c: &RefName) {
    assert_eq!(refs.read(a).unwrap(), Some(id(1)));
    assert_eq!(refs.read(b).unwrap(), None);
    assert_eq!(refs.read(c).unwrap(), Some(id(7)));
    assert_eq!(refs.reflog(a).unwrap().len(), 1);
    assert!(refs.reflog(b).unwrap().is_empty());
    assert_eq!(refs.reflog(c).unwrap().len(), 1);
    assert!(refs.pending().unwrap().is_empty());
}

#[test]
fn commit_moves_every_ref_and_leaves_nothing_behind() {
    let (dir, refs) = setup();
    let (a, b, c) = three(&refs);
    move_three(&refs, &a, &b, &c).commit().unwrap();
    assert_applied(&refs, &a, &b, &c);
    assert!(files_with(dir.path(), ".lock").is_empty());
    assert!(files_with(dir.path(), "txn/").is_empty());
    assert!(files_with(dir.path(), "tmp-").is_empty());
    // Empty transactions, and deleting what does not exist, do nothing.
    refs.transaction().commit().unwrap();
    let mut t = refs.transaction();
    t.update(&c, None, Expected::Absent, "x").update(
        &name("refs/nope/x"),
        None,
        Expected::Any,
        "y",
    );
    t.commit().unwrap();
    assert!(refs.reflog(&name("refs/nope/x")).unwrap().is_empty());
    assert!(!dir.path().join("refs/nope").exists());
}

#[test]
fn a_refused_transaction_changes_nothing() {
    let (dir, refs) = setup();
    let (a, b, c) = three(&refs);
    // A stale expectation on the last ref (by name) refuses the whole transaction.
    let mut t = refs.transaction();
    t.update(&a, Some(id(2)), Expected::Is(id(1)), "move a")
        .update(&b, Some(id(3)), Expected::Absent, "create b")
        .update(&c, None, Expected::Is(id(8)), "delete c");
    let err = t.commit().unwrap_err();
    assert!(
        matches!(err, RefError::Stale { ref name, actual: Some(x), .. } if *name == c && x == id(7)),
        "{err:?}"
    );
    assert_untouched(&refs, &a, &b, &c);
    assert!(files_with(dir.path(), ".lock").is_empty());
    assert!(!dir.path().join("refs/checkpoints").exists());
    // The first stale ref by name is reported.
    let mut t = refs.transaction();
    t.update(&c, None, Expected::Absent, "")
        .update(&a, Some(id(2)), Expected::Absent, "");
    assert!(
        matches!(t.commit().unwrap_err(), RefError::Stale { ref name, .. } if *name == c),
        "refs/lineage/w sorts before refs/worlds/w"
    );

    // A lock held by someone else refuses it too, and releases the locks already taken.
    let held = LockFile::acquire(dir.path().join("refs/worlds/w.lock")).unwrap();
    let waiting = refs
        .clone()
        .with_lock_wait(std::time::Duration::from_millis(50));
    let err = move_three(&waiting, &a, &b, &c).commit().unwrap_err();
    assert!(matches!(err, RefError::Locked { .. }), "{err:?}");
    drop(held);
    assert_untouched(&refs, &a, &b, &c);
    assert!(files_with(dir.path(), ".lock").is_empty());

    // Names given twice, or one inside another, are refused before anything is locked.
    let mut t = refs.transaction();
    t.update(&a, Some(id(2)), Expected::Any, "")
        .update(&a, Some(id(3)), Expected::Any, "");
    assert!(matches!(t.commit(), Err(RefError::Duplicate { .. })));
    let mut t = refs.transaction();
    t.update(&name("refs/x"), Some(id(2)), Expected::Any, "")
        .update(&name("refs/x-y"), Some(id(2)), Expected::Any, "")
        .update(&name("refs/x/y"), Some(id(3)), Expected::Any, "");
    let err = t.commit().unwrap_err();
    assert!(
        err.to_string()
            .contains("ref refs/x is in the same transaction"),
        "{err}"
    );
    assert_untouched(&refs, &a, &b, &c);
    // A conflict with an existing ref is found when locking.
    let mut t = refs.transaction();
    t.update(&a, Some(id(2)), Expected::Any, "").update(
        &name("refs/lineage/w/x"),
        Some(id(3)),
        Expected::Any,
        "",
    );
    assert!(matches!(t.commit(), Err(RefError::Conflict { .. })));
    assert_untouched(&refs, &a, &b, &c);
    assert!(files_with(dir.path(), ".lock").is_empty());
}

#[test]
fn the_record_format() {
    // Stopped right after the commit point, the record is there to read.
    let (dir, refs, (a, _, c)) = crashed_after(1);
    let recs = files_with(dir.path(), "txn/");
    assert_eq!(recs.len(), 1);
    let bytes = fs::read(dir.path().join(&recs[0])).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let a_len = fs::metadata(refs.reflog_path(&a)).unwrap().len();
    let c_len = fs::metadata(refs.reflog_path(&c)).unwrap().len();
    assert_eq!(
        text,
        format!(
            "aos ref transaction 1\n{T}\n- {} 0 refs/checkpoints/w create b\n{} - {c_len} \
             refs/lineage/w delete c\n{} {} {a_len} refs/worlds/w move a\n",
            id(3),
            id(7),
            id(1),
            id(2)
        )
    );
    assert_eq!(
        recs[0],
        format!("txn/{}", blake3::hash(&bytes).to_hex().as_str())
    );
    let pending = refs.pending().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].time, T);
    assert!(pending[0].refs.iter().all(|r| !r.done));
    assert_eq!(refs.pending_ids().unwrap(), [id(1), id(2), id(3), id(7)]);
}

#[test]
fn a_crash_at_every_step_is_all_or_nothing() {
    // 3 refs: before the record (0), after it (1), 3 reflog lines (2-4), 3 moves (5-7).
    for step in 0..=7 {
        for how in ["next writer", "recover"] {
            let (dir, refs, (a, b, c)) = crashed_after(step);
            let committed = step >= 1;
            // The crashed writer's lock files are still there, but stale: its OS locks died
            // with it, so nothing has to clear them by hand.
            let left = files_with(dir.path(), ".lock").len();
            assert_eq!(left, if step >= 5 { 7 - step } else { 3 }, "step {step}");
            match how {
                "next writer" => {
                    // Any writer of one of the refs completes that ref; here each in turn.
                    for n in [&a, &b, &c] {
                        refs.update(n, Some(id(50)), Expected::Is(id(99)), "probe")
                            .unwrap_err();
                    }
                }
                _ => {
                    let r = refs.recover().unwrap();
                    assert!(r.locked.is_empty() && r.left.is_empty(), "{r:?}");
                    assert_eq!(r.removed.len(), usize::from(committed));
                    assert_eq!(
                        r.completed.len(),
                        if committed { 7 - step.max(4) } else { 0 }
                    );
                    // Without a record, recover has nothing to do with them: fsck's repair
                    // removes the stale files.
                    for f in files_with(dir.path(), ".lock") {
                        assert!(crate::store::fs::remove_if_stale(&dir.path().join(f)).unwrap());
                    }
                }
            }
            if committed {
                assert_applied(&refs, &a, &b, &c);
            } else {
                assert_untouched(&refs, &a, &b, &c);
            }
            assert!(files_with(dir.path(), "txn/").is_empty(), "step {step}");
            assert!(files_with(dir.path(), ".lock").is_empty());
        }
    }
}

#[test]
fn a_torn_reflog_line_is_rewritten_once() {
    // Crash after the first line (refs/checkpoints/w) ... and half of the second.
    let (dir, refs, (a, b, c)) = crashed_after(2);
    let log = refs.reflog_path(&c);
    let mut bytes = fs::read(&log).unwrap();
    bytes.extend_from_slice(format!("{} - {T} del", id(7)).as_bytes());
    fs::write(&log, bytes).unwrap();
    remove_locks(dir.path());
    refs.recover().unwrap();
    assert_applied(&refs, &a, &b, &c);
}

#[test]
fn a_change_overtaken_by_later_updates_is_not_replayed() {
    // The crash leaves refs/checkpoints/w moved, the two others locked.
    let (dir, refs, (a, b, c)) = crashed_after(5);
    assert_eq!(refs.read(&b).unwrap(), Some(id(3)));
    // b moves on, and back to what it held before the transaction.
    refs.update(&b, Some(id(4)), Expected::Is(id(3)), "on")
        .unwrap();
    refs.update(&b, None, Expected::Is(id(4)), "back").unwrap();
    assert!(refs.pending().unwrap()[0].refs[0].done);
    remove_locks(dir.path());
    refs.recover().unwrap();
    assert_eq!(refs.read(&b).unwrap(), None, "not created again");
    assert_eq!(refs.read(&a).unwrap(), Some(id(2)));
    assert_eq!(refs.read(&c).unwrap(), None);
    assert!(refs.pending().unwrap().is_empty());
}

#[test]
fn a_writer_sees_the_committed_value_it_settles() {
    let (dir, refs, (a, b, c)) = crashed_after(1);
    remove_locks(dir.path());
    // The transaction committed before this update: its expectation is judged against the
    // transaction's result.
    let err = refs
        .update(&a, Some(id(9)), Expected::Is(id(1)), "late")
        .unwrap_err();
    assert!(
        matches!(err, RefError::Stale { actual: Some(x), .. } if x == id(2)),
        "{err:?}"
    );
    refs.update(&a, Some(id(9)), Expected::Is(id(2)), "late")
        .unwrap();
    // A deletion of a ref that only the record creates settles it first, too.
    fs::remove_dir_all(dir.path().join("refs/checkpoints")).unwrap();
    refs.update(&b, None, Expected::Is(id(3)), "gone").unwrap();
    assert_eq!(refs.reflog(&b).unwrap().len(), 2);
    // A transaction settles what it locks as well.
    let mut t = refs.transaction();
    t.update(&c, Some(id(10)), Expected::Absent, "again")
        .update(&a, Some(id(11)), Expected::Is(id(9)), "again");
    t.commit().unwrap();
    assert!(refs.pending().unwrap().is_empty());
    assert_eq!(refs.reflog(&c).unwrap().len(), 3);
}

#[test]
fn a_damaged_record_stops_writers() {
    let (dir, refs, _) = crashed_after(1);
    remove_locks(dir.path());
    let rec = dir.path().join(&files_with(dir.path(), "txn/")[0]);
    let mut bytes = fs::read(&rec).unwrap();
    bytes[30] ^= 1;
    fs::write(&rec, bytes).unwrap();
    let err = refs
        .update(&name("refs/other"), Some(id(1)), Expected::Any, "")
        .unwrap_err();
    assert!(
        matches!(err, RefError::CorruptTransaction { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("BLAKE3"), "{err}");
    assert!(refs.recover().is_err());
    // Temporary files in txn/ (a record never published) are not records.
    fs::remove_file(&rec).unwrap();
    fs::write(dir.path().join("txn/tmp-w-1-2-3"), b"partial").unwrap();
    refs.update(&name("refs/other"), Some(id(1)), Expected::Any, "")
        .unwrap();
}

#[test]
fn record_parsing_is_strict() {
    let good = format!(
        "aos ref transaction 1\n5\n- {} 0 refs/a m\n{} - 10 refs/b\n",
        id(1),
        id(2)
    );
    let parse = |s: &str| txn_parse(s);
    assert!(parse(&good).is_ok(), "{:?}", parse(&good));
    for (bad, why) in [
        (
            "aos ref transaction 2\n5\n- - 0 refs/a\n".to_owned(),
            "first line",
        ),
        (
            "aos ref transaction 1\nx\n- - 0 refs/a\n".to_owned(),
            "line 2",
        ),
        ("aos ref transaction 1\n5\n".to_owned(), "no changes"),
        (
            "aos ref transaction 1\n5\n- - 0 refs/a".to_owned(),
            "line feed",
        ),
        (
            "aos ref transaction 1\n5\n- - x refs/a\n".to_owned(),
            "offset",
        ),
        (
            "aos ref transaction 1\n5\n- - 0 heads/a\n".to_owned(),
            "refs/",
        ),
        (
            "aos ref transaction 1\n5\nb3:12 - 0 refs/a\n".to_owned(),
            "old id",
        ),
        (
            "aos ref transaction 1\n5\n- - 0 refs/b\n- - 0 refs/a\n".to_owned(),
            "ascending",
        ),
        ("aos ref transaction 1\n5\n- -\n".to_owned(), "offset"),
    ] {
        let err = parse(&bad).unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

fn txn_parse(s: &str) -> Result<(), String> {
    super::txn::parse_record_for_tests(s.as_bytes())
}

#[test]
fn racing_transactions_keep_their_refs_together() {
    const THREADS: u64 = 4;
    const EACH: u64 = 15;
    let (_dir, refs) = setup();
    let (x, y) = (name("refs/pair/x"), name("refs/pair/y"));
    race(&refs, &x, THREADS, EACH, |_, next, expected| {
        let mut t = refs.transaction();
        t.update(&y, Some(next), expected, "y")
            .update(&x, Some(next), expected, "x");
        t.commit()
    });
    let total = id(THREADS * EACH);
    assert_eq!(refs.read(&x).unwrap(), Some(total));
    assert_eq!(refs.read(&y).unwrap(), Some(total));
    // Every committed step is in both reflogs, in the same order.
    let steps = |n: &RefName| -> Vec<_> {
        refs.reflog(n)
            .unwrap()
            .into_iter()
            .map(|e| (e.old, e.new))
            .collect()
    };
    assert_eq!(steps(&x).len() as u64, THREADS * EACH);
    assert_eq!(steps(&x), steps(&y));
    assert!(refs.pending().unwrap().is_empty());
}
