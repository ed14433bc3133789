//! `fsck`: verify every object, pack, index and ref in a store, reporting all problems.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::pack::Pack;
use super::{Location, Store, StoreError, loose};
use crate::codec::cbor;
use crate::object::ObjectId;
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
/// ref points to an object that exists; reflogs parse.
///
/// # Errors
/// Only I/O errors that prevent checking at all (listing directories). Problems with the data
/// itself are reported in [`FsckReport::problems`].
pub fn fsck(store: &Store, progress: &dyn Progress) -> Result<FsckReport, StoreError> {
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
    report.packs = packs.len() as u64;
    if let Ok(rd) = std::fs::read_dir(store.tmp_dir()) {
        let n = rd.count();
        if n > 0 {
            report.notes.push(format!(
                "{n} temporary file(s) in {} (gc removes stale ones)",
                store.tmp_dir().display()
            ));
        }
    }

    // Every object to check, as (id, location).
    let mut tasks: Vec<(ObjectId, Location)> = loose_ids
        .iter()
        .map(|id| (*id, Location::Loose(loose::path(&store.objects, id))))
        .collect();
    report.loose = tasks.len() as u64;
    let packs: Vec<std::sync::Arc<Pack>> = packs.into_iter().map(std::sync::Arc::new).collect();
    for p in &packs {
        report.packed += p.len() as u64;
        tasks.extend((0..p.len()).map(|index| {
            (
                p.id_at(index),
                Location::Packed {
                    pack: std::sync::Arc::clone(p),
                    index,
                },
            )
        }));
    }

    progress.start("checking packs", Some(packs.len() as u64));
    packs.par_iter().for_each(|p| {
        if let Err(m) = p.verify_checksum().and_then(|()| p.verify_layout()) {
            problem(None, p.pack_path().display().to_string(), m);
        }
        progress.advance(1);
    });
    progress.finish();

    progress.start("checking objects", Some(tasks.len() as u64));
    let bytes = AtomicU64::new(0);
    let links: Vec<(ObjectId, Vec<ObjectId>)> = tasks
        .par_iter()
        .filter_map(|(id, loc)| {
            let out = match store.read_at(id, loc) {
                Ok(obj) => {
                    bytes.fetch_add(obj.data.len() as u64, Ordering::Relaxed);
                    if obj.kind.is_cbor() {
                        match cbor::links(&obj.data) {
                            Ok(l) if l.is_empty() => None,
                            Ok(l) => Some((*id, l)),
                            Err(e) => {
                                problem(
                                    Some(*id),
                                    describe(loc),
                                    format!("not a canonical {} object: {e}", obj.kind),
                                );
                                None
                            }
                        }
                    } else {
                        None
                    }
                }
                Err(StoreError::Corrupt {
                    location, message, ..
                }) => {
                    problem(Some(*id), location, message);
                    None
                }
                Err(e) => {
                    problem(Some(*id), describe(loc), e.to_string());
                    None
                }
            };
            progress.advance(1);
            out
        })
        .collect();
    progress.finish();
    report.bytes = bytes.into_inner();

    let present: HashSet<ObjectId> = tasks.iter().map(|(id, _)| *id).collect();
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
        if let Err(e) = store.refs().reflog(name) {
            problem(None, name.to_string(), format!("reflog: {e}"));
        }
    }

    let mut problems = problems
        .into_inner()
        .expect("no panics while holding the lock");
    problems.sort_by(|a, b| (&a.location, &a.message).cmp(&(&b.location, &b.message)));
    report.problems = problems;
    Ok(report)
}

fn describe(loc: &Location) -> String {
    match loc {
        Location::Loose(p) => p.display().to_string(),
        Location::Packed { pack, index } => format!(
            "{} offset {}",
            pack.pack_path().display(),
            pack.offset_at(*index)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::Value;
    use crate::object::Kind;
    use crate::progress::NoProgress;
    use crate::store::refs::{Expected, RefName};
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
        s.refs()
            .update(
                &RefName::new("refs/heads/main").unwrap(),
                Some(val),
                Expected::Absent,
                "test",
            )
            .unwrap();
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

        // A flipped byte in a pack breaks its checksum and at least one object.
        let pack = s.packs()[0].pack_path().to_owned();
        corrupt_file(&pack, 100);
        let r = fsck(&s, &NoProgress).unwrap();
        assert!(
            r.problems.iter().any(|p| p.message.contains("checksum")),
            "{:?}",
            r.problems
        );
    }
}
