//! `gc`: pack reachable objects into one pack and prune unreachable ones past a grace period.
//!
//! Roots are every ref, every id in any reflog, and every id in a pending ref transaction
//! record. Reachability follows links (CBOR tag
//! 45824) inside every non-blob object. An unreachable object is removed only if it is older
//! than the grace period (by the modification time of its loose file or of its pack);
//! younger unreachable objects survive, loose, keeping their time, so a writer that has
//! stored objects but not yet moved a ref to them does not lose them.
//!
//! **Invariant:** nothing is deleted before the new pack holding every reachable object is
//! durable; a crash at any point leaves every reachable object readable.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::fs::TMP_PREFIX;
use super::pack::Pack;
use super::{Store, StoreError, loose};
use crate::codec::cbor;
use crate::object::ObjectId;
use crate::progress::Progress;

/// Knobs of [`gc`].
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// Unreachable objects younger than this are kept; zero prunes every unreachable object,
    /// whatever its time says (so a clock behind the file times, such as a test's fixed
    /// clock, still lets `--prune=now` prune).
    pub grace: Duration,
    /// The time against which ages are measured; `None`: the store's clock.
    pub now: Option<SystemTime>,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(14 * 24 * 3600),
            now: None,
        }
    }
}

/// Temporary files and index-less packs older than this are removed by gc.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// What [`gc`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Reachable objects (all now in one pack).
    pub reachable: u64,
    /// Unreachable objects removed.
    pub pruned: u64,
    /// Unreachable objects kept because they are younger than the grace period.
    pub kept_recent: u64,
    /// Loose object files removed.
    pub removed_loose: u64,
    /// Packs replaced.
    pub removed_packs: u64,
    /// Stale temporary files and index-less packs removed.
    pub removed_tmp: u64,
    /// Bytes of object storage (loose files and packs) before.
    pub bytes_before: u64,
    /// Bytes of object storage after.
    pub bytes_after: u64,
    /// The disk was full, so reachable objects stayed where they were: only garbage that
    /// needs no rewriting was removed (unreachable loose files, packs holding nothing
    /// reachable, stale temporary files). Run gc again once there is room.
    pub repack_skipped: bool,
}

struct Inventory {
    loose: HashMap<ObjectId, SystemTime>,
    packs: Vec<(Arc<Pack>, SystemTime, u64)>,
    bytes: u64,
}

/// Packs every reachable object into a single new pack, removes the old packs and loose
/// files, and prunes unreachable objects older than `opts.grace`.
///
/// # Errors
/// [`StoreError::Locked`] if another gc or writers held `gc.lock` for longer than the lock
/// wait; any error reading a reachable object (a
/// missing or corrupt object aborts gc before anything is deleted: run fsck).
pub fn gc(
    store: &Store,
    opts: &GcOptions,
    progress: &dyn Progress,
) -> Result<GcReport, StoreError> {
    let lock_path = store.root().join(super::guard::GC_LOCK);
    // Exclusive: no writer holds objects that no ref names yet (see `guard`).
    let _lock = store.guard.enter_gc().map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            StoreError::Locked {
                path: lock_path.clone(),
            }
        } else {
            StoreError::Io {
                path: lock_path.clone(),
                source: e,
            }
        }
    })?;
    let now = opts.now.unwrap_or_else(|| store.clock().now());
    // Objects with a time before the cutoff are old enough to prune; `None`: all are.
    let cutoff = (!opts.grace.is_zero()).then(|| {
        now.checked_sub(opts.grace)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    });
    let old = |mtime: &SystemTime| cutoff.is_none_or(|c| *mtime < c);
    let mut report = GcReport::default();

    let inv = inventory(store)?;
    report.bytes_before = inv.bytes;

    // Roots: refs and reflogs. A ref that cannot be read aborts gc: pruning without knowing
    // every root could delete live objects.
    let mut roots: Vec<ObjectId> = store
        .refs()
        .list("refs/")?
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    roots.extend(store.refs().all_reflog_ids()?);
    // A committed transaction not yet applied moves refs to these.
    roots.extend(store.refs().pending_ids()?);

    let reachable = mark(store, &roots, progress)?;
    report.reachable = reachable.len() as u64;

    let all: HashSet<ObjectId> = inv
        .loose
        .keys()
        .copied()
        .chain(
            inv.packs
                .iter()
                .flat_map(|(p, _, _)| (0..p.len()).map(|i| p.id_at(i))),
        )
        .collect();

    let nothing_to_do =
        inv.loose.is_empty() && inv.packs.len() <= 1 && all.len() == reachable.len();
    let repacked = if nothing_to_do {
        None
    } else {
        match repack(store, &reachable, progress) {
            Ok(p) => Some(p),
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                // The new pack did not fit; the batch removed its temporary file. Free what
                // can be freed without writing anything.
                progress.finish();
                report.repack_skipped = true;
                prune_in_place(store, &inv, &reachable, &old, &mut report)?;
                None
            }
            Err(e) => return Err(e),
        }
    };
    if let Some(new_pack) = repacked {
        // Unreachable packed objects that are still young become loose files that keep the
        // pack's time, so their grace period is not extended.
        for (p, mtime, _) in &inv.packs {
            for i in 0..p.len() {
                let id = p.id_at(i);
                if reachable.contains(&id) || inv.loose.contains_key(&id) {
                    continue;
                }
                if !old(mtime) {
                    explode(store, p, i, *mtime)?;
                    report.kept_recent += 1;
                } else {
                    report.pruned += 1;
                }
            }
        }
        for (p, _, _) in &inv.packs {
            // Repacking the same objects yields the same bytes, hence the same pack name.
            if Some(p.pack_path()) == new_pack.as_deref() {
                continue;
            }
            remove_pack(p.pack_path())?;
            report.removed_packs += 1;
        }
        let mut dirs = HashSet::new();
        for (id, mtime) in &inv.loose {
            let prune = !reachable.contains(id) && old(mtime);
            if !reachable.contains(id) && !prune {
                report.kept_recent += 1;
                continue;
            }
            report.pruned += u64::from(prune);
            let path = loose::path(&store.objects, id);
            match fs::remove_file(&path) {
                Ok(()) => report.removed_loose += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { path, source: e }),
            }
            dirs.insert(super::fs::parent(&loose::path(&store.objects, id)).to_owned());
        }
        for d in dirs {
            // Only succeeds when empty; a concurrent writer's new file keeps it.
            let _ = fs::remove_dir(d);
        }
    }

    report.removed_tmp = remove_stale(store, now)?;
    store.reload_packs()?;
    report.bytes_after = inventory(store)?.bytes;
    Ok(report)
}

fn mtime(path: &Path) -> Result<(SystemTime, u64), StoreError> {
    let m = fs::metadata(path).map_err(StoreError::io(path))?;
    Ok((m.modified().map_err(StoreError::io(path))?, m.len()))
}

fn inventory(store: &Store) -> Result<Inventory, StoreError> {
    store.reload_packs()?;
    let (ids, _) = loose::list(&store.objects).map_err(StoreError::io(&store.objects))?;
    let mut bytes = 0;
    let mut loose_map = HashMap::with_capacity(ids.len());
    for id in ids {
        let path = loose::path(&store.objects, &id);
        let (t, len) = mtime(&path)?;
        bytes += len;
        loose_map.insert(id, t);
    }
    let mut packs = Vec::new();
    for p in store.packs() {
        let (t, len) = mtime(p.pack_path())?;
        // The index is exactly 1104 + 40 n bytes (objects-spec §7).
        bytes += len + (p.len() as u64) * 40 + 1_104;
        packs.push((p, t, len));
    }
    Ok(Inventory {
        loose: loose_map,
        packs,
        bytes,
    })
}

/// Every object reachable from `roots`, each read and verified once.
fn mark(
    store: &Store,
    roots: &[ObjectId],
    progress: &dyn Progress,
) -> Result<HashSet<ObjectId>, StoreError> {
    progress.start("marking reachable objects", None);
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut stack: Vec<ObjectId> = roots.to_vec();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        progress.advance(1);
        let (kind, _) = store.header(&id)?;
        if kind.is_cbor() {
            let obj = store.get(&id)?;
            let links = cbor::links(&obj.data).map_err(|e| StoreError::Corrupt {
                id,
                location: "object payload".into(),
                message: e.to_string(),
            })?;
            stack.extend(links.into_iter().filter(|l| !seen.contains(l)));
        }
    }
    progress.finish();
    Ok(seen)
}

/// On a full disk: removes unreachable loose files and packs holding no reachable object,
/// where old enough, and leaves everything else in place.
fn prune_in_place(
    store: &Store,
    inv: &Inventory,
    reachable: &HashSet<ObjectId>,
    old: &dyn Fn(&SystemTime) -> bool,
    report: &mut GcReport,
) -> Result<(), StoreError> {
    for (p, mtime, _) in &inv.packs {
        let ids = (0..p.len()).map(|i| p.id_at(i));
        let dead = ids.clone().all(|id| !reachable.contains(&id));
        if dead && old(mtime) {
            remove_pack(p.pack_path())?;
            report.removed_packs += 1;
            report.pruned += ids.filter(|id| !inv.loose.contains_key(id)).count() as u64;
        } else {
            report.kept_recent += ids.filter(|id| !reachable.contains(id)).count() as u64;
        }
    }
    for (id, mtime) in &inv.loose {
        if reachable.contains(id) {
            continue;
        }
        if !old(mtime) {
            report.kept_recent += 1;
            continue;
        }
        let path = loose::path(&store.objects, id);
        match fs::remove_file(&path) {
            Ok(()) => {
                report.removed_loose += 1;
                report.pruned += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io { path, source: e }),
        }
    }
    Ok(())
}

/// Writes every reachable object, verified, into one new durable pack.
fn repack(
    store: &Store,
    reachable: &HashSet<ObjectId>,
    progress: &dyn Progress,
) -> Result<Option<PathBuf>, StoreError> {
    progress.start("packing objects", Some(reachable.len() as u64));
    let mut sorted: Vec<&ObjectId> = reachable.iter().collect();
    sorted.sort_unstable();
    let mut batch = store.batch();
    for id in sorted {
        let loc = store.locate(id).ok_or(StoreError::NotFound(*id))?;
        let stored = store.read_stored(id, &loc)?;
        // Never carry corruption into the new pack.
        stored.check(id)?;
        batch.add_stored(id, stored.kind, stored.encoding, stored.size, &stored.bytes)?;
        progress.advance(1);
    }
    let summary = batch.commit()?;
    progress.finish();
    Ok(summary.pack)
}

/// Writes the `i`-th object of `pack` as a loose file with modification time `t`.
fn explode(store: &Store, pack: &Pack, i: usize, t: SystemTime) -> Result<(), StoreError> {
    let id = pack.id_at(i);
    let e = pack.read_index(i).map_err(|message| StoreError::Corrupt {
        id,
        location: pack.pack_path().display().to_string(),
        message,
    })?;
    let path = loose::path(&store.objects, &id);
    store.put_stored(&id, e.kind, e.encoding, e.size, &e.stored)?;
    if let Ok(f) = fs::File::options().append(true).open(&path) {
        let _ = f.set_modified(t);
    }
    Ok(())
}

fn remove_pack(pack: &Path) -> Result<(), StoreError> {
    // The index goes first, so readers never see an index without its pack.
    for p in [pack.with_extension("idx"), pack.to_owned()] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io { path: p, source: e }),
        }
    }
    Ok(())
}

/// Removes temporary files and index-less packs untouched for an hour.
fn remove_stale(store: &Store, now: SystemTime) -> Result<u64, StoreError> {
    let mut n = 0;
    let mut candidates: Vec<PathBuf> = Vec::new();
    for dir in [store.tmp_dir(), store.pack_dir.as_path()] {
        let rd = fs::read_dir(dir).map_err(StoreError::io(dir))?;
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let orphan_pack =
                p.extension().is_some_and(|x| x == "pack") && !p.with_extension("idx").exists();
            if name.starts_with(TMP_PREFIX) || orphan_pack {
                candidates.push(p);
            }
        }
    }
    for p in candidates {
        let old = fs::metadata(&p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TMP));
        if old && fs::remove_file(&p).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::Value;
    use crate::object::Kind;
    use crate::progress::NoProgress;
    use crate::store::clock::Clock;
    use crate::store::fsck::fsck;
    use crate::store::refs::{Expected, RefName};
    use crate::store::set_main;

    #[test]
    fn packs_reachable_and_prunes_old_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let leaf = s.put(Kind::Blob, b"leaf").unwrap();
        let root = s
            .put(
                Kind::Value,
                &cbor::encode(&Value::Array(vec![Value::Link(leaf)])),
            )
            .unwrap();
        let garbage = s.put(Kind::Blob, b"garbage").unwrap();
        let mut b = s.batch();
        let packed_garbage = b.add(Kind::Blob, b"packed garbage").unwrap();
        b.commit().unwrap();
        set_main(&s, root);

        // Within the grace period nothing unreachable is lost.
        let r = gc(&s, &GcOptions::default(), &NoProgress).unwrap();
        assert_eq!((r.reachable, r.pruned, r.kept_recent), (2, 0, 2));
        assert!(s.contains(&garbage) && s.contains(&packed_garbage));
        assert_eq!(s.packs().len(), 1);
        assert!(fsck(&s, &NoProgress).unwrap().is_ok());

        // Past it, unreachable objects go; reachable ones stay readable.
        let later = GcOptions {
            grace: Duration::from_secs(60),
            now: Some(SystemTime::now() + Duration::from_secs(3600)),
        };
        let r = gc(&s, &later, &NoProgress).unwrap();
        assert_eq!(r.pruned, 2, "{r:?}");
        assert!(!s.contains(&garbage) && !s.contains(&packed_garbage));
        assert_eq!(s.get(&leaf).unwrap().data, b"leaf");
        assert!(fsck(&s, &NoProgress).unwrap().is_ok());
        // A second run has nothing to do.
        let r = gc(&s, &later, &NoProgress).unwrap();
        assert_eq!((r.pruned, r.removed_packs), (0, 0));
    }

    #[test]
    fn the_store_clock_is_now_and_pending_transactions_are_roots() {
        use crate::store::StoreOptions;
        use crate::store::clock::FixedClock;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".aos");
        Store::init(&root).unwrap();
        // A store whose clock reads a year ahead: gc's default "now" is that clock's.
        let ahead = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
        let s = Store::open_with(
            &root,
            &StoreOptions::default().with_clock(FixedClock::at(ahead)),
        )
        .unwrap();
        let old = s.put(Kind::Blob, b"unreachable").unwrap();
        let kept = s
            .put(Kind::Blob, b"named by a pending transaction")
            .unwrap();
        // A committed transaction whose writer stopped before moving its refs: its record
        // names `kept`, which no ref or reflog does yet.
        let (a, b) = (
            RefName::new("refs/x/a").unwrap(),
            RefName::new("refs/x/b").unwrap(),
        );
        let mut t = s.refs().transaction();
        t.update(&a, Some(kept), Expected::Absent, "")
            .update(&b, Some(kept), Expected::Absent, "");
        t.commit_crashing_after(1).unwrap_err();
        let r = gc(&s, &GcOptions::default(), &NoProgress).unwrap();
        assert_eq!(r.pruned, 1, "{r:?}");
        assert!(!s.contains(&old));
        assert!(s.contains(&kept));
        // The reflog times come from the same clock.
        for f in std::fs::read_dir(root.join("refs/x")).unwrap().flatten() {
            std::fs::remove_file(f.path()).unwrap();
        }
        s.refs().recover().unwrap();
        let want = FixedClock::at(ahead).unix_secs();
        assert_eq!(s.refs().reflog(&a).unwrap()[0].time, want);
        assert_eq!(s.refs().read(&b).unwrap(), Some(kept));
    }

    #[test]
    fn missing_reachable_object_aborts_without_deleting() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let leaf = ObjectId::from_bytes([1; 32]);
        let root = s
            .put(Kind::Value, &cbor::encode(&Value::Link(leaf)))
            .unwrap();
        let other = s.put(Kind::Blob, b"x").unwrap();
        set_main(&s, root);
        assert!(
            matches!(gc(&s, &GcOptions::default(), &NoProgress), Err(StoreError::NotFound(id)) if id == leaf)
        );
        assert!(s.contains(&other) && s.contains(&root));
    }
}
