//! Remotes: other stores this one exchanges worlds with, like git remotes.
//!
//! A remote has a name and a URL; today a URL is a path to another store (its `.aos`
//! directory or the directory holding it). The list lives in `remotes.json` in the store
//! directory, replaced atomically on every change:
//!
//! ```json
//! {"version": 1, "remotes": {"origin": {"url": "/abs/path/to/store"}}}
//! ```
//!
//! What was last fetched from remote `R` is kept in remote-tracking refs
//! `refs/remotes/R/worlds/W` (a world's head), `refs/remotes/R/checkpoints/W` (its
//! checkpoint, when that is a snapshot of the head) and `refs/remotes/R/lineage/W` (its
//! lineage), named by [`crate::world::refs`]. A push moves the remote's ref only by
//! compare-and-swap against the tracking ref: the lease.

pub mod sync;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::kernel::WorldError;
use crate::object::ObjectId;
use crate::store::refs::{Expected, RefError};
use crate::store::{Store, StoreError};
use crate::transfer::TransferError;
use crate::world::refs::{self as world_refs, Role, Space, WorldRefError};

/// The file listing the remotes, in the store directory.
pub const REMOTES_FILE: &str = "remotes.json";

/// The current version of [`REMOTES_FILE`].
const VERSION: u64 = 1;

/// A remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Its name (one ref-name component).
    pub name: String,
    /// Where it is: a path to a store.
    pub url: PathBuf,
}

/// Errors of remote operations.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No remote of that name.
    #[error("no remote named `{0}`")]
    NoRemote(String),
    /// A remote of that name exists.
    #[error("a remote named `{0}` exists already")]
    Exists(String),
    /// The name cannot be a remote name.
    #[error("`{name}` cannot name a remote: {why}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        why: String,
    },
    /// `remotes.json` is damaged.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The remote store could not be opened.
    #[error("remote `{name}` ({url}): {source}")]
    Unreachable {
        /// The remote.
        name: String,
        /// Its URL.
        url: String,
        /// Why.
        source: Box<StoreError>,
    },
    /// The remote has no world of that name.
    #[error("remote `{remote}` has no world named `{world}`")]
    NoWorld {
        /// The remote.
        remote: String,
        /// The world asked for.
        world: String,
    },
    /// This store has no world of that name.
    #[error("no world named `{0}`")]
    NoLocalWorld(String),
    /// A pull found the local world and the remote's diverged; nothing moved.
    #[error(
        "world `{world}` has diverged from remote `{remote}` (local {local}, remote {remote_head}); \
         nothing moved"
    )]
    Diverged {
        /// The remote.
        remote: String,
        /// The world.
        world: String,
        /// The local head.
        local: ObjectId,
        /// The remote's head.
        remote_head: ObjectId,
    },
    /// A push found the remote world moved since the last fetch (the lease); nothing was
    /// pushed.
    #[error(
        "stale lease: remote `{remote}` world `{world}` is at {}, but the last fetch saw {}; \
         nothing was pushed",
        id_or_nothing(*found),
        id_or_nothing(*lease)
    )]
    StaleLease {
        /// The remote.
        remote: String,
        /// The world on the remote.
        world: String,
        /// What the remote world is at (`None`: it does not exist).
        found: Option<ObjectId>,
        /// What the tracking ref says it was.
        lease: Option<ObjectId>,
    },
    /// A push would move the remote world to a head that does not descend from its own;
    /// nothing was pushed.
    #[error(
        "push to `{remote}` world `{world}` is not a fast-forward (remote {remote_head}, local \
         {local}); nothing was pushed"
    )]
    NotFastForward {
        /// The remote.
        remote: String,
        /// The world on the remote.
        world: String,
        /// The remote's head.
        remote_head: ObjectId,
        /// The local head.
        local: ObjectId,
    },
    /// A clone's destination holds a store already.
    #[error("{} is a store already; clone into a new directory", .0.display())]
    CloneInto(PathBuf),
    /// A ref operation failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A world's refs could not move (another process moved them meanwhile).
    #[error(transparent)]
    WorldRefs(Box<WorldRefError>),
    /// A store operation failed.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// Moving or checking objects failed.
    #[error(transparent)]
    Transfer(Box<TransferError>),
    /// Reading or verifying a world failed.
    #[error(transparent)]
    World(Box<WorldError>),
}

fn id_or_nothing(id: Option<ObjectId>) -> String {
    id.map_or_else(|| "nothing".to_owned(), |i| i.to_string())
}

impl From<TransferError> for RemoteError {
    fn from(e: TransferError) -> Self {
        Self::Transfer(Box::new(e))
    }
}

impl From<WorldError> for RemoteError {
    fn from(e: WorldError) -> Self {
        Self::World(Box::new(e))
    }
}

impl From<WorldRefError> for RemoteError {
    fn from(e: WorldRefError) -> Self {
        match e {
            WorldRefError::Ref(r) => Self::Ref(r),
            WorldRefError::History(w) => Self::World(w),
            other => Self::WorldRefs(Box::new(other)),
        }
    }
}

impl From<StoreError> for RemoteError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

/// Checks that `name` can name a remote: one ref-name component.
///
/// # Errors
/// [`RemoteError::BadName`].
pub fn check_name(name: &str) -> Result<(), RemoteError> {
    let bad = |why: String| RemoteError::BadName {
        name: name.to_owned(),
        why,
    };
    if name.contains('/') {
        return Err(bad("it contains `/`".into()));
    }
    world_refs::ref_name(Space::Tracking(name), Role::Head, "x").map_err(|e| match e {
        WorldRefError::BadName { source, .. } => bad(source.to_string()),
        other => bad(other.to_string()),
    })?;
    Ok(())
}

fn path(store: &Store) -> PathBuf {
    store.root().join(REMOTES_FILE)
}

fn read(store: &Store) -> Result<BTreeMap<String, PathBuf>, RemoteError> {
    let p = path(store);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(RemoteError::Config {
                path: p,
                message: e.to_string(),
            });
        }
    };
    let bad = |message: String| RemoteError::Config {
        path: p.clone(),
        message,
    };
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    if v.get("version").and_then(serde_json::Value::as_u64) != Some(VERSION) {
        return Err(bad(format!("expected \"version\": {VERSION}")));
    }
    let Some(map) = v.get("remotes").and_then(serde_json::Value::as_object) else {
        return Err(bad("expected an object \"remotes\"".into()));
    };
    let mut out = BTreeMap::new();
    for (name, r) in map {
        check_name(name).map_err(|e| bad(e.to_string()))?;
        let Some(url) = r.get("url").and_then(serde_json::Value::as_str) else {
            return Err(bad(format!("remote `{name}` has no text \"url\"")));
        };
        out.insert(name.clone(), PathBuf::from(url));
    }
    Ok(out)
}

fn write(store: &Store, remotes: &BTreeMap<String, PathBuf>) -> Result<(), RemoteError> {
    let map: serde_json::Map<String, serde_json::Value> = remotes
        .iter()
        .map(|(n, u)| (n.clone(), serde_json::json!({ "url": u.to_string_lossy() })))
        .collect();
    let v = serde_json::json!({ "version": VERSION, "remotes": map });
    let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
    text.push('\n');
    let p = path(store);
    crate::store::fs::write_replace(&p, text.as_bytes()).map_err(|e| RemoteError::Config {
        path: p,
        message: e.to_string(),
    })
}

/// Every remote, by name.
///
/// # Errors
/// [`RemoteError::Config`] if `remotes.json` is damaged.
pub fn list(store: &Store) -> Result<Vec<Remote>, RemoteError> {
    Ok(read(store)?
        .into_iter()
        .map(|(name, url)| Remote { name, url })
        .collect())
}

/// The remote `name`.
///
/// # Errors
/// [`RemoteError::NoRemote`], [`RemoteError::Config`].
pub fn get(store: &Store, name: &str) -> Result<Remote, RemoteError> {
    read(store)?
        .remove(name)
        .map(|url| Remote {
            name: name.to_owned(),
            url,
        })
        .ok_or_else(|| RemoteError::NoRemote(name.to_owned()))
}

/// Adds remote `name` at `url` (a relative path is taken from `cwd` and stored absolute).
///
/// # Errors
/// [`RemoteError::BadName`], [`RemoteError::Exists`], [`RemoteError::Config`].
pub fn add(store: &Store, name: &str, url: &Path, cwd: &Path) -> Result<Remote, RemoteError> {
    check_name(name)?;
    let mut all = read(store)?;
    if all.contains_key(name) {
        return Err(RemoteError::Exists(name.to_owned()));
    }
    let url = if url.is_absolute() {
        url.to_owned()
    } else {
        cwd.join(url)
    };
    all.insert(name.to_owned(), url.clone());
    write(store, &all)?;
    Ok(Remote {
        name: name.to_owned(),
        url,
    })
}

/// Removes remote `name` and its remote-tracking refs.
///
/// # Errors
/// [`RemoteError::NoRemote`], [`RemoteError::Config`], ref errors.
pub fn remove(store: &Store, name: &str) -> Result<(), RemoteError> {
    let mut all = read(store)?;
    if all.remove(name).is_none() {
        return Err(RemoteError::NoRemote(name.to_owned()));
    }
    // Every tracking ref goes at once.
    let mut txn = store.refs().transaction();
    for (r, _) in store.refs().list(&Space::Tracking(name).prefix())? {
        txn.update(&r, None, Expected::Any, "remote: removed");
    }
    txn.commit()?;
    write(store, &all)
}

/// Opens the store a remote points at, with the options (the clock) of `store`.
///
/// # Errors
/// [`RemoteError::Unreachable`].
pub fn open(store: &Store, remote: &Remote) -> Result<Store, RemoteError> {
    let unreachable = |source| RemoteError::Unreachable {
        name: remote.name.clone(),
        url: remote.url.display().to_string(),
        source: Box::new(source),
    };
    let dot = remote.url.join(crate::store::STORE_DIR);
    let at = if dot.is_dir() {
        dot
    } else {
        remote.url.clone()
    };
    Store::open_with(&at, store.options()).map_err(unreachable)
}
