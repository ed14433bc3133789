//! Moving worlds between stores: fetch, pull, push and clone.
//!
//! Only missing objects travel: the sender walks from the heads, checkpoints and lineage and
//! stops at every object the receiver has (who has an object has everything it links).
//! Everything received is checked before anything is stored — each object re-hashed against
//! its id, decoded structurally, and the whole set closed under links together with what the
//! receiver has — and refs move only after the objects are durable, each store's in one
//! transaction ([`crate::world::refs::Moves`]). An interrupted transfer leaves valid objects
//! that no ref reaches yet; running it again sends only what is still missing.

use std::path::Path;

use super::{Remote, RemoteError, get, open};
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::refs::RefError;
use crate::store::{Store, StoreOptions};
use crate::transfer::{StoreObjects, WriteOptions, missing_objects, receive};
use crate::world::refs::{self as world_refs, Heads, Move, Moves, Role, Space, WorldRefError};
use crate::world::{VerifyFrom, verify_head};

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
/// sets the remote-tracking refs `refs/remotes/NAME/worlds/W` (and `.../checkpoints/W`,
/// `.../lineage/W`), all in one transaction.
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
    let rs = open(store, &remote)?;
    fetch_from(store, &remote, &rs, only, progress)
}

fn fetch_from(
    store: &Store,
    remote: &Remote,
    rs: &Store,
    only: Option<&[String]>,
    progress: &dyn Progress,
) -> Result<FetchReport, RemoteError> {
    let available: Vec<String> = world_refs::list(rs, Space::Local)?
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let wanted: Vec<String> = match only {
        None => available,
        Some(ws) => {
            for w in ws {
                if !available.contains(w) {
                    return Err(RemoteError::NoWorld {
                        remote: remote.name.clone(),
                        world: w.clone(),
                    });
                }
            }
            ws.to_vec()
        }
    };
    let mut worlds = Vec::new();
    let mut roots = Vec::new();
    for w in &wanted {
        if let Some(heads) = world_refs::read(rs, Space::Local, w)? {
            roots.extend(heads.roots());
            worlds.push((w.clone(), heads));
        }
    }
    let moved = copy_missing(rs, store, &roots, progress)?;
    let mut report = FetchReport {
        worlds: Vec::new(),
        moved,
    };
    let message = format!("fetch: {}", remote.name);
    let mut moves = Moves::new(store);
    for (w, heads) in worlds {
        let tracking = world_refs::ref_name(Space::Tracking(&remote.name), Role::Head, &w)?;
        let old = store.refs().read(&tracking)?;
        moves.mirror(&remote.name, &w, Some(&heads), &message)?;
        report.worlds.push(Fetched {
            world: w,
            old,
            new: heads.head,
        });
    }
    moves.commit()?;
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

/// Fetches world `world` from remote `name` and moves the local world to it: creating it
/// (with the remote's lineage), or fast-forwarding it; a world that diverged is an error
/// unless `opts.force` (then it is replaced, lineage included). Head and checkpoint move in
/// one transaction.
///
/// # Errors
/// Fetch errors; [`RemoteError::Diverged`] for a diverged world (nothing moved), a failed
/// verification (nothing moved); [`RemoteError::WorldRefs`] if the local world moved
/// meanwhile (nothing moved).
pub fn pull(
    store: &Store,
    name: &str,
    world: &str,
    opts: SyncOptions,
    progress: &dyn Progress,
) -> Result<PullReport, RemoteError> {
    let f = fetch(store, name, Some(&[world.to_owned()]), progress)?;
    let incoming = world_refs::read(store, Space::Tracking(name), world)?.ok_or_else(|| {
        RemoteError::NoWorld {
            remote: name.to_owned(),
            world: world.to_owned(),
        }
    })?;
    let new = incoming.head;
    let old = store
        .refs()
        .read(&world_refs::ref_name(Space::Local, Role::Head, world)?)?;
    let mut how = Move::of(store, old, new)?;
    let update = match how {
        Move::Same => Update::UpToDate,
        Move::Behind => Update::Ahead,
        Move::FastForward => Update::FastForward,
        Move::Create => Update::Created,
        Move::Diverged if opts.force => Update::Forced,
        Move::Diverged => {
            return Err(RemoteError::Diverged {
                remote: name.to_owned(),
                world: world.to_owned(),
                local: old.unwrap_or(new),
                remote_head: new,
            });
        }
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
    if update == Update::Forced {
        how = Move::Diverged;
    }
    let mut moves = Moves::new(store);
    moves.adopt(
        Space::Local,
        world,
        old,
        &incoming,
        how,
        &format!("pull: {name} ({})", update.as_str()),
    )?;
    moves.commit()?;
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

/// Pushes local world `world` to remote `name` as world `dst`. The remote's head moves by
/// compare-and-swap against the remote-tracking ref (what was last fetched: the lease), and
/// only forward unless `opts.force`; its checkpoint (and, for a world created or replaced,
/// its lineage) move in the same remote transaction. The tracking refs then move to what the
/// remote holds, in one local transaction.
///
/// # Errors
/// [`RemoteError::StaleLease`] (the remote moved since the last fetch),
/// [`RemoteError::NotFastForward`]; transfer and ref errors.
pub fn push(
    store: &Store,
    name: &str,
    world: &str,
    dst: &str,
    opts: SyncOptions,
    progress: &dyn Progress,
) -> Result<PushReport, RemoteError> {
    let remote = get(store, name)?;
    let rs = open(store, &remote)?;
    let local = world_refs::read(store, Space::Local, world)?
        .ok_or_else(|| RemoteError::NoLocalWorld(world.to_owned()))?;
    let head = local.head;
    let lease = store.refs().read(&world_refs::ref_name(
        Space::Tracking(name),
        Role::Head,
        dst,
    )?)?;
    let theirs = world_refs::read(&rs, Space::Local, dst)?;
    let current = theirs.map(|t| t.head);
    let stale = |found: Option<ObjectId>| RemoteError::StaleLease {
        remote: name.to_owned(),
        world: dst.to_owned(),
        found,
        lease,
    };
    if current != lease {
        return Err(stale(current));
    }
    let mut how = Move::of(store, current, head)?;
    let update = match how {
        Move::Same => Update::UpToDate,
        Move::FastForward => Update::FastForward,
        Move::Behind if !opts.force => Update::Ahead,
        Move::Behind | Move::Diverged if opts.force => Update::Forced,
        Move::Create => Update::Created,
        Move::Behind | Move::Diverged => {
            return Err(RemoteError::NotFastForward {
                remote: name.to_owned(),
                world: dst.to_owned(),
                remote_head: current.unwrap_or(head),
                local: head,
            });
        }
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
    if update == Update::Forced {
        how = Move::Diverged;
    }
    report.moved = copy_missing(store, &rs, &local.roots(), progress)?;
    // Another push holding the remote ref's lock is about to move it (or not): wait for it,
    // then compare-and-swap, so the loser of a race learns of the new value (a stale lease),
    // not of a lock file.
    let msg = format!("push: from {}", store.root().display());
    let mut tries = 0;
    loop {
        let mut moves = Moves::new(&rs);
        moves.adopt(Space::Local, dst, lease, &local, how, &msg)?;
        match moves.commit() {
            Ok(()) => break,
            Err(WorldRefError::Ref(RefError::Locked { .. })) if tries < LOCK_RETRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(WorldRefError::Moved { .. } | WorldRefError::Exists(..)) => {
                let found = world_refs::read(&rs, Space::Local, dst)
                    .ok()
                    .flatten()
                    .map(|t| t.head);
                return Err(stale(found));
            }
            Err(e) => return Err(e.into()),
        }
    }
    // The tracking refs now say what the remote holds.
    let now = Heads {
        head,
        checkpoint: local.checkpoint,
        lineage: if how == Move::FastForward {
            theirs.and_then(|t| t.lineage)
        } else {
            local.lineage
        },
    };
    let mut moves = Moves::new(store);
    moves.mirror(name, dst, Some(&now), &format!("push: {name}"))?;
    moves.commit()?;
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
/// directory becomes remote `origin`, and every world is fetched and created locally (heads,
/// checkpoints and lineage in one transaction); a bundle file is verified and unbundled (its
/// worlds, checkpoints and lineage created).
///
/// # Errors
/// [`RemoteError::Unreachable`] for a source that is neither a store nor a bundle, store
/// errors if `dest` cannot be created, [`RemoteError::CloneInto`] if it already holds a
/// store, transfer errors. A failed clone leaves nothing behind.
pub fn clone_store(
    source: &Path,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<CloneReport, RemoteError> {
    clone_store_with(source, dest, &StoreOptions::default(), progress)
}

/// [`clone_store`], the new store opened with `options` (its clock).
///
/// # Errors
/// As [`clone_store`].
pub fn clone_store_with(
    source: &Path,
    dest: &Path,
    options: &StoreOptions,
    progress: &dyn Progress,
) -> Result<CloneReport, RemoteError> {
    // Open a bundle before creating anything, so a bad one leaves no directory behind.
    let bundle = if source.is_file() {
        Some(crate::transfer::bundle::BundleReader::open(source)?)
    } else {
        None
    };
    let (store, init) = Store::init_with(dest, options)?;
    if init == crate::store::Init::Existing {
        return Err(RemoteError::CloneInto(dest.to_owned()));
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
            .filter_map(|u| match world_refs::parse(&u.name) {
                Some((Space::Local, Role::Head, w)) => Some((w.to_owned(), u.new)),
                _ => None,
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
    let rs = open(store, &remote)?;
    let f = fetch_from(store, &remote, &rs, None, progress)?;
    let mut worlds = Vec::new();
    let mut moves = Moves::new(store);
    for w in &f.worlds {
        if let Some(heads) = world_refs::read(store, Space::Tracking("origin"), &w.world)? {
            moves.adopt(
                Space::Local,
                &w.world,
                None,
                &heads,
                Move::Create,
                "clone: from origin",
            )?;
        }
        worlds.push((w.world.clone(), w.new));
    }
    moves.commit()?;
    Ok(CloneReport {
        store: dest.to_owned(),
        worlds,
        moved: f.moved,
    })
}
