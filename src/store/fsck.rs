//! `fsck`: verify every object, pack, index and ref in a store, reporting all problems.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::pack::Pack;
use super::{Location, Store, StoreError, format, loose};
use crate::codec::cbor;
use crate::object::{Kind, ObjectId, hash};
use crate::progress::Progress;

/// One problem found by [`fsck`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The object concerned, if the problem is about one.
    pub object: Option<ObjectId>,
    /// Where: a file path (and offset), or a ref name.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// What [`fsck`] checked and found.
#[derive(Clone, Debug, Default)]
pub struct FsckReport {
    /// Loose objects checked.
    pub loose: u64,
    /// Packs checked.
    pub packs: u64,
    /// Packed objects checked.
    pub packed: u64,
    /// Distinct objects found.
    pub objects: u64,
    /// Links between objects followed.
    pub links: u64,
    /// Refs checked.
    pub refs: u64,
    /// Payload bytes verified.
    pub bytes: u64,
    /// Everything wrong, in a stable order.
    pub problems: Vec<Problem>,
    /// Harmless findings (leftover temporary files, unindexed packs) that `gc` cleans up.
    pub notes: Vec<String>,
}

impl FsckReport {
    /// Whether the store is sound.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies the whole store: every loose object and pack entry decompresses and hashes to its
/// id and is valid for its kind; packs and indexes match their checksums; every link and every
/// ref points to an object that exists; reflogs parse. Before checking refs it completes ref
/// transactions that a crashed writer committed but did not finish
/// ([`Refs::recover`](super::refs::Refs::recover)), reporting each as a note.
///
/// # Errors
/// Only I/O errors that prevent checking at all (listing directories). Problems with the data
/// itself are reported in [`FsckReport::problems`].
pub fn fsck(store: &Store, progress: &dyn Progress) -> Result<FsckReport, StoreError> {
    fsck_with(store, &FsckOptions::default(), progress)
}

/// Knobs of [`fsck_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsckOptions {
    /// Remove stale lock files (left by dead processes) instead of only noting them. Safe beside running writers: a lock a live process holds is never removed.
    pub repair: bool,
}

/// [`fsck`], with options.
///
/// # Errors
/// As [`fsck`].
pub fn fsck_with(
    store: &Store,
    opts: &FsckOptions,
    progress: &dyn Progress,
) -> Result<FsckReport, StoreError> {
    let mut report = FsckReport::default();
    let problems = Mutex::new(Vec::new());
    let problem = |object: Option<ObjectId>, location: String, message: String| {
        problems
            .lock()
            .expect("no panics while holding the lock")
            .push(Problem {
                object,
                location,
                message,
            });
    };

    let (loose_ids, strays) =
        loose::list(&store.objects).map_err(StoreError::io(&store.objects))?;
    for s in strays {
        problem(
            None,
            s.display().to_string(),
            "unexpected file in the objects directory".into(),
        );
    }
    let (idx_paths, orphans) = store.pack_index_paths()?;
    for o in orphans {
        report.notes.push(format!(
            "{}: pack without an index (an interrupted write; gc removes it)",
            o.display()
        ));
    }
    let mut packs = Vec::new();
    for idx in idx_paths {
        match Pack::open(&idx) {
            Ok(p) => packs.push(p),
            Err(m) => problem(None, idx.display().to_string(), m),
        }
    }
    if let Ok(rd) = std::fs::read_dir(store.tmp_dir()) {
        let n = rd.count();
        if n > 0 {
            report.notes.push(format!(
                "{n} temporary file(s) in {} (gc removes stale ones)",
                store.tmp_dir().display()
            ));
        }
    }
    report.packs = packs.len() as u64;
    report.loose = loose_ids.len() as u64;
    report.packed = packs.iter().map(|p| p.len() as u64).sum();

    progress.start("checking objects", Some(report.loose + report.packed));
    let bytes = AtomicU64::new(0);
    // Checks one verified payload and returns its links, if it has any.
    let links_of = |id: &ObjectId, kind: Kind, data: &[u8], location: &dyn Fn() -> String| {
        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        progress.advance(1);
        if !kind.is_cbor() {
            return None;
        }
        match cbor::links(data) {
            Ok(l) if l.is_empty() => None,
            Ok(l) => Some((*id, l)),
            Err(e) => {
                problem(
                    Some(*id),
                    location(),
                    format!("not a canonical {kind} object: {e}"),
                );
                None
            }
        }
    };

    // Loose objects: one file each, checked in parallel.
    let mut links: Vec<(ObjectId, Vec<ObjectId>)> = loose_ids
        .par_iter()
        .filter_map(|id| {
            let path = loose::path(&store.objects, id);
            match store.read_at(id, &Location::Loose(path.clone())) {
                Ok(obj) => links_of(id, obj.kind, &obj.data, &|| path.display().to_string()),
                Err(StoreError::Corrupt {
                    location, message, ..
                }) => {
                    progress.advance(1);
                    problem(Some(*id), location, message);
                    None
                }
                Err(e) => {
                    progress.advance(1);
                    problem(Some(*id), path.display().to_string(), e.to_string());
                    None
                }
            }
        })
        .collect();

    // Packs: each read once, sequentially (checksum, layout, agreement with the index),
    // while the entries already read are decompressed and hashed in parallel.
    for p in &packs {
        let scanned = p.scan(8 << 20, |chunk| {
            let found: Vec<(ObjectId, Vec<ObjectId>)> = chunk
                .par_iter()
                .filter_map(|(off, e)| {
                    let location = || format!("{} offset {off}", p.pack_path().display());
                    let data = match format::decompress(e.encoding, &e.stored, e.size) {
                        Ok(d) => d,
                        Err(m) => {
                            progress.advance(1);
                            problem(Some(e.id), location(), m);
                            return None;
                        }
                    };
                    let got = hash(e.kind, &data);
                    if got != e.id {
                        progress.advance(1);
                        problem(Some(e.id), location(), format!("content hashes to {got}"));
                        return None;
                    }
                    links_of(&e.id, e.kind, &data, &location)
                })
                .collect();
            links.extend(found);
        });
        if let Err(m) = scanned {
            problem(None, p.pack_path().display().to_string(), m);
        }
    }
    progress.finish();
    report.bytes = bytes.into_inner();

    let present: HashSet<ObjectId> = loose_ids
        .iter()
        .copied()
        .chain(packs.iter().flat_map(|p| (0..p.len()).map(|i| p.id_at(i))))
        .collect();
    report.objects = present.len() as u64;
    for (from, targets) in &links {
        for t in targets {
            report.links += 1;
            if !present.contains(t) {
                problem(
                    Some(*from),
                    from.to_string(),
                    format!("links to missing object {t}"),
                );
            }
        }
    }

    // A committed ref transaction its writer did not finish (it crashed) is completed first,
    // as the next writer of its refs would: the one thing fsck writes.
    match store.refs().recover() {
        Ok(r) => {
            for n in &r.completed {
                report.notes.push(format!(
                    "{n}: completed the move a committed ref transaction recorded (its writer \
                     stopped before making it)"
                ));
            }
            for (n, lock) in &r.locked {
                report.notes.push(format!(
                    "{n}: a committed ref transaction waits to move it, and {} is held by a \
                     live process (its writer is running; the next update of {n} completes \
                     the move)",
                    lock.display()
                ));
            }
        }
        Err(e) => problem(None, super::refs::TXN_DIR.to_owned(), e.to_string()),
    }

    let (refs, ref_problems) = store.refs().list_lenient("refs/")?;
    for (path, message) in ref_problems {
        problem(None, path.display().to_string(), message);
    }
    report.refs = refs.len() as u64;
    for (name, id) in &refs {
        if !present.contains(id) {
            problem(
                Some(*id),
                name.to_string(),
                format!("ref points to missing object {id}"),
            );
        }
        match store.refs().reflog_with_value(name) {
            Err(e) => problem(None, name.to_string(), format!("reflog: {e}")),
            Ok((lines, current)) => {
                if let Some(last) = lines
                    .last()
                    .filter(|l| super::refs::reflog::unhappened(l, current))
                {
                    report.notes.push(format!(
                        "{name}: the reflog's last line records a move to {} that did not \
                         happen (an update was interrupted, or is running); readers ignore \
                         it and the next update of the ref removes it",
                        last.new.map_or_else(|| "-".to_owned(), |i| i.to_string())
                    ));
                }
            }
        }
    }

    // Every id a reflog names is a gc root: it must exist.
    match store.refs().all_reflog_ids() {
        Ok(ids) => {
            for id in ids.iter().filter(|id| !present.contains(id)) {
                problem(
                    Some(*id),
                    super::refs::LOGS_DIR.to_owned(),
                    format!("a reflog names missing object {id}"),
                );
            }
        }
        Err(e) => problem(None, super::refs::LOGS_DIR.to_owned(), e.to_string()),
    }

    // Lock files: held by a live process, or stale (removed when repairing): notes.
    let mut locks = Vec::new();
    for dir in [super::refs::REFS_DIR, super::refs::TXN_DIR] {
        lock_files(&store.root().join(dir), &mut locks);
    }
    locks.sort();
    for lock in locks {
        let shown = lock.display().to_string();
        match super::fs::lock_state(&lock) {
            Ok(super::fs::LockState::Busy) => report.notes.push(format!(
                "{shown}: lock held by a live process (a writer is running)"
            )),
            Ok(super::fs::LockState::Gone) => {}
            Ok(super::fs::LockState::Stale) if opts.repair => {
                match super::fs::remove_if_stale(&lock) {
                    Ok(true) => report
                        .notes
                        .push(format!("{shown}: stale lock removed (its holder is dead)")),
                    Ok(false) => report.notes.push(format!(
                        "{shown}: lock held by a live process (a writer is running)"
                    )),
                    Err(e) => problem(None, shown, format!("cannot remove stale lock: {e}")),
                }
            }
            Ok(super::fs::LockState::Stale) => report.notes.push(format!(
                "{shown}: stale lock file, its holder is dead (harmless: the next writer \
                 removes it; repair removes it now)"
            )),
            Err(e) => problem(None, shown, format!("cannot inspect lock file: {e}")),
        }
    }

    let mut problems = problems
        .into_inner()
        .expect("no panics while holding the lock");
    problems.sort_by(|a, b| (&a.location, &a.message).cmp(&(&b.location, &b.message)));
    report.problems = problems;
    Ok(report)
}

/// Every `*.lock` file under `dir`, recursively.
fn lock_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => lock_files(&path, out),
            Ok(t)
                if t.is_file()
                    && e.file_name()
                        .to_str()
                        .is_some_and(|n| n.ends_with(super::refs::LOCK_SUFFIX)) =>
            {
                out.push(path);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::Value;
    use crate::object::Kind;
    use crate::progress::NoProgress;
    use crate::store::set_main;
    use std::fs;

    fn corrupt_file(path: &std::path::Path, at_from_end: usize) {
        let mut b = fs::read(path).unwrap();
        let i = b.len() - at_from_end;
        b[i] ^= 0x55;
        fs::write(path, b).unwrap();
    }

    #[test]
    fn clean_store_passes_and_damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let blob = s.put(Kind::Blob, &[9u8; 10_000]).unwrap();
        let val = s
            .put(
                Kind::Value,
                &cbor::encode(&Value::Array(vec![Value::Link(blob)])),
            )
            .unwrap();
        let mut b = s.batch();
        for i in 0..50u64 {
            b.add(Kind::Value, &cbor::encode(&Value::from(i))).unwrap();
        }
        b.commit().unwrap();
        set_main(&s, val);
        let r = fsck(&s, &NoProgress).unwrap();
        assert!(r.is_ok(), "{:?}", r.problems);
        assert_eq!(
            (r.loose, r.packed, r.objects, r.links, r.refs),
            (2, 50, 52, 1, 1)
        );

        // A dangling link and a dangling ref are both reported.
        fs::remove_file(loose::path(&s.objects, &blob)).unwrap();
        let r = fsck(&s, &NoProgress).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.problems[0].message.contains("missing object"));

        // A flipped byte in a pack is found (by the checksum, the layout walk, or the
        // object it falls in, depending on where it lands).
        let pack = s.packs()[0].pack_path().to_owned();
        corrupt_file(&pack, 100);
        let r = fsck(&s, &NoProgress).unwrap();
        assert!(
            r.problems.iter().any(|p| p.location.contains("pack-")),
            "{:?}",
            r.problems
        );
    }

    #[test]
    fn every_damaged_byte_of_a_pack_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let mut b = s.batch();
        for i in 0..20u64 {
            b.add(
                Kind::Value,
                &cbor::encode(&Value::Text(format!("value {i} ").repeat(20))),
            )
            .unwrap();
        }
        b.commit().unwrap();
        let pack = s.packs()[0].pack_path().to_owned();
        let idx = pack.with_extension("idx");
        let original = fs::read(&pack).unwrap();
        let original_idx = fs::read(&idx).unwrap();
        let len = original.len();
        let mut offsets: Vec<usize> = (0..len).step_by(7).collect();
        offsets.extend([0, 5, 8, 40, 41, 42, 50, len - 40, len - 33, len - 1]);
        for at in offsets {
            let mut bytes = original.clone();
            bytes[at] ^= 0x01;
            fs::write(&pack, &bytes).unwrap();
            let r = fsck(&Store::open(s.root()).unwrap(), &NoProgress).unwrap();
            assert!(!r.is_ok(), "flipped bit at pack offset {at} went unnoticed");
        }
        fs::write(&pack, &original).unwrap();
        for at in (0..original_idx.len()).step_by(5) {
            let mut bytes = original_idx.clone();
            bytes[at] ^= 0x01;
            fs::write(&idx, &bytes).unwrap();
            let r = fsck(&Store::open(s.root()).unwrap(), &NoProgress).unwrap();
            assert!(
                !r.is_ok(),
                "flipped bit at index offset {at} went unnoticed"
            );
        }
        fs::write(&idx, &original_idx).unwrap();
        assert!(fsck(&s, &NoProgress).unwrap().is_ok());
    }

    #[test]
    fn stale_locks_and_missing_reflog_ids_are_reported_and_repaired() {
        use crate::store::fs::LockFile;
        use crate::store::refs::{Expected, RefName};
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let a = s
            .put(Kind::Value, &cbor::encode(&Value::from(1u64)))
            .unwrap();
        let gone = crate::object::hash(Kind::Value, &cbor::encode(&Value::from(2u64)));
        let n = RefName::new("refs/heads/main").unwrap();
        // The ref points at `a`, its reflog also names `gone`, which was never stored.
        s.refs()
            .update(&n, Some(gone), Expected::Absent, "")
            .unwrap();
        s.refs()
            .update(&n, Some(a), Expected::Is(gone), "")
            .unwrap();
        let stale = s.root().join("refs/heads/main.lock");
        LockFile::acquire(stale.clone()).unwrap().abandon();
        let live = s.root().join("refs/heads/other.lock");
        let held = LockFile::acquire(live.clone()).unwrap();

        let r = fsck(&s, &NoProgress).unwrap();
        let messages: Vec<_> = r.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(r.problems.len(), 1, "{messages:?}");
        assert!(
            r.problems
                .iter()
                .any(|p| p.object == Some(gone) && p.message.contains("reflog names missing"))
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("main.lock") && n.contains("stale"))
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("other.lock") && n.contains("live"))
        );

        let r = fsck_with(&s, &FsckOptions { repair: true }, &NoProgress).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(r.notes.iter().any(|n| n.contains("stale lock removed")));
        assert!(!stale.exists());
        assert!(live.exists(), "a live process's lock is never removed");
        drop(held);

        // A writer killed between its reflog line and the move: a note, not a problem.
        let b = s
            .put(Kind::Value, &cbor::encode(&Value::from(3u64)))
            .unwrap();
        let log = s.root().join("logs/refs/heads/main");
        let mut text = fs::read_to_string(&log).unwrap();
        text.push_str(&format!("{a} {b} 0 killed\n"));
        fs::write(&log, text).unwrap();
        let r = fsck(&s, &NoProgress).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert!(
            r.notes
                .iter()
                .any(|x| x.contains("refs/heads/main") && x.contains("did not happen")),
            "{:?}",
            r.notes
        );
    }
}
