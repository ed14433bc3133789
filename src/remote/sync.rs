//! Moving worlds between stores: fetch, pull, push and clone.
//!
//! Only missing objects travel: the sender walks from the heads and stops at every object the
//! receiver has (who has an object has everything it links). Everything received is checked
//! before anything is stored — each object re-hashed against its id, decoded structurally,
//! and the whole set closed under links together with what the receiver has — and refs move
//! only after the objects are durable, by compare-and-swap. An interrupted transfer leaves
//! valid objects that no ref reaches yet; running it again sends only what is still missing.

use std::path::Path;

use super::{Remote, RemoteError, get, open, tracking_checkpoint, tracking_ref};
use crate::kernel::replay::read_snapshot;
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::Store;
use crate::store::refs::{Expected, RefError};
use crate::transfer::{
    StoreObjects, TransferError, WriteOptions, is_ancestor, missing_objects, receive,
};
use crate::world::{VerifyFrom, checkpoint_ref, list_worlds, verify_head, world_ref};

impl From<TransferError> for RemoteError {
    fn from(e: TransferError) -> Self {
        RemoteError::Other(crate::error_chain(&e))
    }
}

impl From<crate::kernel::WorldError> for RemoteError {
    fn from(e: crate::kernel::WorldError) -> Self {
        RemoteError::Other(crate::error_chain(&e))
    }
}

/// Objects moved by one transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Objects sent (and checked) that the receiver lacked.
    pub objects: u64,
    /// Their stored bytes (compressed where stored compressed).
    pub bytes: u64,
}

/// Copies to `dst` every object reachable from `roots` in `src` that `dst` lacks, checked.
///
/// # Errors
/// Store errors, or a rejected object (nothing from this call is stored then).
pub fn copy_missing(
    src: &Store,
    dst: &Store,
    roots: &[ObjectId],
    progress: &dyn Progress,
) -> Result<Moved, RemoteError> {
    // Most ids asked about are missing: rescan the receiver's packs once, not per miss.
    dst.reload_packs()?;
    let ids = missing_objects(src, roots, &|id| dst.contains_known(id), progress)?;
    if ids.is_empty() {
        return Ok(Moved::default());
    }
    let source = StoreObjects {
        store: src,
        ids: &ids,
    };
    let (checked, _) = receive(dst, &source, &WriteOptions::default(), progress)?;
    Ok(Moved {
        objects: checked.objects,
        bytes: checked.stored_bytes,
    })
}

/// A world's head in a store and its checkpoint, when that is a snapshot of the head.
fn head_and_checkpoint(
    store: &Store,
    world: &str,
) -> Result<Option<(ObjectId, Option<ObjectId>)>, RemoteError> {
    let Some(head) = store.refs().read(&world_ref(world)?)? else {
        return Ok(None);
    };
    let cp = store
        .refs()
        .read(&checkpoint_ref(world)?)?
        .filter(|id| read_snapshot(store, id).is_ok_and(|s| s.head == head));
    Ok(Some((head, cp)))
}

/// One world a fetch saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The world's name on the remote.
    pub world: String,
    /// The remote-tracking ref's value before.
    pub old: Option<ObjectId>,
    /// Its value now (the remote's head).
    pub new: ObjectId,
}

/// What [`fetch`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// The worlds, by name.
    pub worlds: Vec<Fetched>,
    /// Objects received.
    pub moved: Moved,
}

/// Fetches worlds from remote `name` (all of them, or those in `only`) into this store and
/// sets the remote-tracking refs `refs/remotes/NAME/worlds/W` (and `.../checkpoints/W`).
///
/// # Errors
/// [`RemoteError::NoRemote`], [`RemoteError::Unreachable`], a world `only` names that the
/// remote lacks, transfer errors (no ref moves then).
pub fn fetch(
    store: &Store,
    name: &str,
    only: Option<&[String]>,
    progress: &dyn Progress,
) -> Result<FetchReport, RemoteError> {
    let remote = get(store, name)?;
    let rs = open(&remote)?;
    fetch_from(store, &remote, &rs, only, progress)
}

fn fetch_from(
    store: &Store,
    remote: &Remote,
    rs: &Store,
    only: Option<&[String]>,
    progress: &dyn Progress,
) -> Result<FetchReport, RemoteError> {
    let mut worlds = Vec::new();
    let available: Vec<String> = list_worlds(rs)?.into_iter().map(|(w, _)| w).collect();
    let wanted: Vec<String> = match only {
        None => available,
        Some(ws) => {
            for w in ws {
                if !available.contains(w) {
                    return Err(RemoteError::Other(format!(
                        "remote `{}` has no world named `{w}`",
                        remote.name
                    )));
                }
            }
            ws.to_vec()
        }
    };
    let mut roots = Vec::new();
    for w in &wanted {
        if let Some((head, cp)) = head_and_checkpoint(rs, w)? {
            roots.push(head);
            roots.extend(cp);
            worlds.push((w.clone(), head, cp));
        }
    }
    let moved = copy_missing(rs, store, &roots, progress)?;
    let mut report = FetchReport {
        worlds: Vec::new(),
        moved,
    };
    for (w, head, cp) in worlds {
        let tr = tracking_ref(&remote.name, &w)?;
        let old = store.refs().read(&tr)?;
        if old != Some(head) {
            store.refs().update(
                &tr,
                Some(head),
                Expected::Any,
                &format!("fetch: {}", remote.name),
            )?;
        }
        let tc = tracking_checkpoint(&remote.name, &w)?;
        if store.refs().read(&tc)? != cp {
            store
                .refs()
                .update(&tc, cp, Expected::Any, &format!("fetch: {}", remote.name))?;
        }
        report.worlds.push(Fetched {
            world: w,
            old,
            new: head,
        });
    }
    Ok(report)
}

/// How a ref moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update {
    /// It did not: it had the value already.
    UpToDate,
    /// It did not: it is ahead (the other side is one of its predecessors).
    Ahead,
    /// It was created.
    Created,
    /// It moved forward (the old value is a predecessor of the new).
    FastForward,
    /// It moved to a value that does not descend from the old one (`--force`).
    Forced,
}

impl Update {
    /// A word for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpToDate => "up-to-date",
            Self::Ahead => "ahead",
            Self::Created => "created",
            Self::FastForward => "fast-forward",
            Self::Forced => "forced",
        }
    }
}

/// What [`pull`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullReport {
    /// The world's head before.
    pub old: Option<ObjectId>,
    /// Its head now.
    pub new: ObjectId,
    /// How it moved.
    pub update: Update,
    /// Objects received.
    pub moved: Moved,
    /// Whether the received history was replayed and verified before the ref moved.
    pub verified: bool,
}

/// Options of [`pull`] and [`push`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Allow a move that is not a fast-forward.
    pub force: bool,
    /// Replay and verify the received world before its ref moves (pull only).
    pub verify: bool,
}

/// Fetches world `world` from remote `name` and moves the local world to it: creating it, or
/// fast-forwarding it; a world that diverged is an error unless `opts.force`.
///
/// # Errors
/// Fetch errors; [`RemoteError::Other`] for a diverged world (nothing moved), a failed
/// verification (nothing moved); [`RemoteError::Ref`] if the local world moved meanwhile.
pub fn pull(
    store: &Store,
    name: &str,
    world: &str,
    opts: SyncOptions,
    progress: &dyn Progress,
) -> Result<PullReport, RemoteError> {
    let f = fetch(store, name, Some(&[world.to_owned()]), progress)?;
    let new = f
        .worlds
        .first()
        .map(|w| w.new)
        .ok_or_else(|| RemoteError::Other(format!("remote `{name}` has no world `{world}`")))?;
    let wref = world_ref(world)?;
    let old = store.refs().read(&wref)?;
    let update = match old {
        Some(o) if o == new => Update::UpToDate,
        Some(o) if is_ancestor(store, &new, &o)? => Update::Ahead,
        Some(o) if is_ancestor(store, &o, &new)? => Update::FastForward,
        Some(_) if opts.force => Update::Forced,
        Some(o) => {
            return Err(RemoteError::Other(format!(
                "world `{world}` has diverged from remote `{name}` (local {o}, remote {new}); \
                 nothing moved. `aos diff {world} {new}` shows how; to keep the local \
                 version, `aos fork {world} OTHER-NAME` first; --force replaces it"
            )));
        }
        None => Update::Created,
    };
    let mut report = PullReport {
        old,
        new,
        update,
        moved: f.moved,
        verified: false,
    };
    if matches!(update, Update::UpToDate | Update::Ahead) {
        return Ok(report);
    }
    if opts.verify {
        verify_head(store, new, &VerifyFrom::Genesis, progress)?;
        report.verified = true;
    }
    let expected = old.map_or(Expected::Absent, Expected::Is);
    store.refs().update(
        &wref,
        Some(new),
        expected,
        &format!("pull: {name} ({})", update.as_str()),
    )?;
    if let Some(cp) = store.refs().read(&tracking_checkpoint(name, world)?)? {
        store.refs().update(
            &checkpoint_ref(world)?,
            Some(cp),
            Expected::Any,
            &format!("pull: {name}"),
        )?;
    }
    Ok(report)
}

/// How many times (20 ms apart) a push waits for a remote ref another process has locked.
const LOCK_RETRIES: u32 = 250;

/// What [`push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    /// The remote world's head before.
    pub old: Option<ObjectId>,
    /// Its head now.
    pub new: ObjectId,
    /// How it moved.
    pub update: Update,
    /// Objects sent.
    pub moved: Moved,
}

/// Pushes local world `world` to remote `name` as world `dst`. The remote ref moves by
/// compare-and-swap against the remote-tracking ref (what was last fetched: the lease), and
/// only forward unless `opts.force`.
///
/// # Errors
/// [`RemoteError::Other`] for a stale lease (the remote moved since the last fetch) or a
/// push that is not a fast-forward; transfer and ref errors.
pub fn push(
    store: &Store,
    name: &str,
    world: &str,
    dst: &str,
    opts: SyncOptions,
    progress: &dyn Progress,
) -> Result<PushReport, RemoteError> {
    let remote = get(store, name)?;
    let rs = open(&remote)?;
    let (head, cp) = head_and_checkpoint(store, world)?
        .ok_or_else(|| RemoteError::Other(format!("no world named `{world}`")))?;
    let tr = tracking_ref(name, dst)?;
    let lease = store.refs().read(&tr)?;
    let rref = world_ref(dst)?;
    let current = rs.refs().read(&rref)?;
    let stale = |found: Option<ObjectId>| {
        RemoteError::Other(format!(
            "stale lease: remote `{name}` world `{dst}` is at {}, but the last fetch saw {}; \
             nothing was pushed. Run `aos fetch {name}` and try again",
            found.map_or_else(|| "nothing".to_owned(), |i| i.to_string()),
            lease.map_or_else(|| "nothing".to_owned(), |i| i.to_string()),
        ))
    };
    if current != lease {
        return Err(stale(current));
    }
    let update = match current {
        Some(c) if c == head => Update::UpToDate,
        Some(c) if is_ancestor(store, &c, &head)? => Update::FastForward,
        Some(c) if is_ancestor(store, &head, &c)? && !opts.force => Update::Ahead,
        Some(_) if opts.force => Update::Forced,
        Some(c) => {
            return Err(RemoteError::Other(format!(
                "push to `{name}` world `{dst}` is not a fast-forward (remote {c}, local {head}); \
                 nothing was pushed. Pull first, or replace the remote world with --force"
            )));
        }
        None => Update::Created,
    };
    let mut report = PushReport {
        old: current,
        new: head,
        update,
        moved: Moved::default(),
    };
    if matches!(update, Update::UpToDate | Update::Ahead) {
        return Ok(report);
    }
    let mut roots = vec![head];
    roots.extend(cp);
    report.moved = copy_missing(store, &rs, &roots, progress)?;
    let expected = lease.map_or(Expected::Absent, Expected::Is);
    // Another push holding the remote ref's lock is about to move it (or not): wait for it,
    // then compare-and-swap, so the loser of a race learns of the new value (a stale lease),
    // not of a lock file.
    let msg = format!("push: from {}", store.root().display());
    let mut tries = 0;
    loop {
        match rs.refs().update(&rref, Some(head), expected, &msg) {
            Ok(()) => break,
            Err(RefError::Locked { .. }) if tries < LOCK_RETRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(RefError::Stale { .. }) => {
                return Err(stale(rs.refs().read(&rref).ok().flatten()));
            }
            Err(e) => return Err(RemoteError::Ref(e)),
        }
    }
    store
        .refs()
        .update(&tr, Some(head), Expected::Any, &format!("push: {name}"))?;
    if let Some(cp) = cp {
        rs.refs().update(
            &checkpoint_ref(dst)?,
            Some(cp),
            Expected::Any,
            "push: checkpoint",
        )?;
        store.refs().update(
            &tracking_checkpoint(name, dst)?,
            Some(cp),
            Expected::Any,
            &format!("push: {name}"),
        )?;
    }
    Ok(report)
}

/// What [`clone_store`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloneReport {
    /// The new store's directory (the `.aos` directory).
    pub store: std::path::PathBuf,
    /// The worlds cloned: name and head.
    pub worlds: Vec<(String, ObjectId)>,
    /// Objects received.
    pub moved: Moved,
}

/// Clones `source` into a new store at `dest` (the `.aos` directory to create). A store
/// directory becomes remote `origin`, and every world is fetched and created locally; a bundle
/// file is verified and unbundled (its worlds and checkpoints created).
///
/// # Errors
/// [`RemoteError::Unreachable`] for a source that is neither a store nor a bundle, store
/// errors if `dest` cannot be created (or already holds a store), transfer errors. A failed
/// clone leaves the new store without worlds.
pub fn clone_store(
    source: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<CloneReport, RemoteError> {
    // Open a bundle before creating anything, so a bad one leaves no directory behind.
    let bundle = if source.is_file() {
        Some(crate::transfer::bundle::BundleReader::open(source)?)
    } else {
        None
    };
    let (store, init) = Store::init(dest)?;
    if init == crate::store::Init::Existing {
        return Err(RemoteError::Other(format!(
            "{} is a store already; clone into a new directory",
            dest.display()
        )));
    }
    let result = fill_clone(&store, source, dest, bundle, progress);
    if result.is_err() {
        // The store is ours, new and incomplete: leave nothing behind.
        drop(store);
        let _ = std::fs::remove_dir_all(dest);
    }
    result
}

fn fill_clone(
    store: &Store,
    source: &Path,
    dest: &Path,
    bundle: Option<crate::transfer::bundle::BundleReader>,
    progress: &dyn Progress,
) -> Result<CloneReport, RemoteError> {
    if let Some(b) = bundle {
        let opts = crate::transfer::bundle::UnbundleOptions {
            force: false,
            write: WriteOptions::default(),
        };
        let r = crate::transfer::bundle::unbundle(store, &b, &opts, progress)?;
        let worlds = r
            .refs
            .iter()
            .filter_map(|u| {
                u.name
                    .as_str()
                    .strip_prefix("refs/worlds/")
                    .map(|w| (w.to_owned(), u.new))
            })
            .collect();
        return Ok(CloneReport {
            store: dest.to_owned(),
            worlds,
            moved: Moved {
                objects: r.checked.objects,
                bytes: r.checked.stored_bytes,
            },
        });
    }
    let source = std::path::absolute(source).unwrap_or_else(|_| source.to_owned());
    let remote = super::add(store, "origin", &source, Path::new("/"))?;
    let rs = open(&remote)?;
    let f = fetch_from(store, &remote, &rs, None, progress)?;
    let mut worlds = Vec::new();
    for w in &f.worlds {
        store.refs().update(
            &world_ref(&w.world)?,
            Some(w.new),
            Expected::Absent,
            "clone: from origin",
        )?;
        if let Some(cp) = store
            .refs()
            .read(&tracking_checkpoint("origin", &w.world)?)?
        {
            store.refs().update(
                &checkpoint_ref(&w.world)?,
                Some(cp),
                Expected::Any,
                "clone: checkpoint",
            )?;
        }
        worlds.push((w.world.clone(), w.new));
    }
    Ok(CloneReport {
        store: dest.to_owned(),
        worlds,
        moved: f.moved,
    })
}
