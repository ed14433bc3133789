//! The `.aos` store: objects (loose and packed), refs with reflogs, fsck and gc.
//!
//! Layout of a store directory (normally `.aos/` inside a work directory):
//!
//! ```text
//! format              "aos store 1\n"
//! objects/ab/cdef…    loose objects (see [`loose`])
//! objects/pack/       pack-<checksum>.pack + .idx (see [`pack`])
//! refs/               one file per ref (see [`refs`])
//! logs/refs/          one reflog per ref
//! tmp/                temporary files, moved into place when complete
//! txn/                records of ref transactions being committed (see [`refs::txn`])
//! keys/               secret seeds of the store's signing keys (see [`keys`])
//! gc.lock             locked (flock) shared by writers, exclusive by gc
//! ```
//!
//! A store is opened with [`StoreOptions`]: its [`Clock`], the source of every time it
//! records, and its [`KeySource`](keys::KeySource), the source of its signing keys' secret seeds (kept in
//! `keys/`, which nothing ever transfers).
//!
//! **Invariant:** an object file is never overwritten; a published file is always complete
//! (temp file, fsync, rename, directory fsync). **Invariant:** every read verifies the id of
//! what it decompresses.

pub mod cache;
pub mod clock;
pub mod format;
pub mod fs;
pub mod fsck;
pub mod gc;
pub(crate) mod guard;
pub mod keys;
pub mod loose;
mod options;
pub mod pack;
pub mod refs;

pub use options::StoreOptions;

use std::collections::HashSet;
use std::fs as stdfs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use self::clock::Clock;
use self::format::Encoding;
use self::keys::{KeyError, KeyName, SecretSeed};
use self::pack::{Pack, PackWriter};
use self::refs::{RefError, Refs};
use crate::codec::DecodeError;
use crate::object::{IdPrefix, Kind, ObjectId, hash};

/// Name of the store directory inside a work directory.
pub const STORE_DIR: &str = ".aos";
/// Contents of the `format` file of a version 1 store.
pub const FORMAT_LINE: &str = "aos store 1\n";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No store was found from a starting directory upward.
    #[error("not inside an aos store (no {STORE_DIR} in {} or any parent)", start.display())]
    NoStore {
        /// Where the search started.
        start: PathBuf,
    },
    /// A directory is not a store of a format this build reads.
    #[error("{} is not an aos store: {why}", path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// No object has this id.
    #[error("object {0} not found")]
    NotFound(ObjectId),
    /// No object id starts with this prefix.
    #[error("no object id starts with {0}")]
    PrefixNotFound(String),
    /// Several object ids start with this prefix.
    #[error("id prefix {prefix} is ambiguous: {}{}", candidates.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join(", "), if candidates.len() > 5 { ", …" } else { "" })]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The matching ids.
        candidates: Vec<ObjectId>,
    },
    /// A stored object failed verification.
    #[error("corrupt object {id} ({location}): {message}")]
    Corrupt {
        /// The object's id.
        id: ObjectId,
        /// Where it is stored (file path, and offset for packs).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A payload is not canonical CBOR although its kind requires it.
    #[error("not a canonical {kind} object: {source}")]
    NotCanonical {
        /// The kind being written.
        kind: Kind,
        /// The decoding error, with rule and byte offset.
        source: DecodeError,
    },
    /// The kind is reserved for a later format version.
    #[error("object kind `{0}` is reserved and cannot be stored yet")]
    ReservedKind(Kind),
    /// Another process holds a lock.
    #[error("{} is held by a live process (another gc, or writers) for longer than the lock wait; try again", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A ref operation failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// Compression failed (out of memory or an internal zstd error).
    #[error("compression failed: {0}")]
    Compress(String),
}

impl StoreError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// An object read from the store, verified against its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its payload: raw bytes for blobs, canonical CBOR for every other kind.
    pub data: Vec<u8>,
}

/// Where an object is stored.
#[derive(Clone, Debug)]
pub enum Location {
    /// A loose file.
    Loose(PathBuf),
    /// An entry in a pack.
    Packed {
        /// The pack.
        pack: Arc<Pack>,
        /// Position of the id in the pack's index.
        index: usize,
    },
}

/// An object's stored form, as read from a loose file or a pack entry.
pub(crate) struct Stored {
    pub(crate) kind: Kind,
    pub(crate) encoding: Encoding,
    pub(crate) size: u64,
    pub(crate) bytes: Vec<u8>,
    /// Where it was read, for messages (rendered only when there is one to write).
    pub(crate) location: Location,
}

impl Location {
    /// Where this is, for a message: a file, or a pack file and byte offset.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Loose(path) => path.display().to_string(),
            Self::Packed { pack, index } => {
                format!(
                    "{} offset {}",
                    pack.pack_path().display(),
                    pack.offset_at(*index)
                )
            }
        }
    }
}

impl Stored {
    /// A pack entry read at `loc`.
    fn packed(e: pack::Entry, loc: &Location) -> Self {
        Self {
            kind: e.kind,
            encoding: e.encoding,
            size: e.size,
            bytes: e.stored,
            location: loc.clone(),
        }
    }

    /// Checks the payload without keeping it: it decompresses to bytes that hash to `id`.
    pub(crate) fn check(&self, id: &ObjectId) -> Result<(), StoreError> {
        let data = format::decompress(self.encoding, &self.bytes, self.size)
            .map_err(|m| self.corrupt(id, m))?;
        self.check_hash(id, &data)
    }

    /// The payload, decompressed and checked to hash to `id` (a raw payload is not copied).
    pub(crate) fn into_verified(self, id: &ObjectId) -> Result<Vec<u8>, StoreError> {
        let data = match self.encoding {
            Encoding::Raw if self.bytes.len() as u64 == self.size => {
                self.check_hash(id, &self.bytes)?;
                return Ok(self.bytes);
            }
            _ => format::decompress(self.encoding, &self.bytes, self.size)
                .map_err(|m| self.corrupt(id, m))?,
        };
        self.check_hash(id, &data)?;
        Ok(data)
    }

    fn check_hash(&self, id: &ObjectId, data: &[u8]) -> Result<(), StoreError> {
        let got = hash(self.kind, data);
        if got != *id {
            return Err(self.corrupt(id, format!("content hashes to {got}")));
        }
        Ok(())
    }

    fn corrupt(&self, id: &ObjectId, message: String) -> StoreError {
        StoreError::Corrupt {
            id: *id,
            location: self.location.describe(),
            message,
        }
    }
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    objects: PathBuf,
    pack_dir: PathBuf,
    tmp: PathBuf,
    packs: RwLock<Vec<Arc<Pack>>>,
    /// The pack the last successful lookup found its object in: objects read together were
    /// mostly written together, so it is tried first.
    last_pack: AtomicUsize,
    refs: Refs,
    options: StoreOptions,
    /// This store's hold on `gc.lock`.
    guard: guard::GcGuard,
}

/// What [`Store::init`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// A new store was created.
    Created,
    /// A store already existed and was left as it was.
    Existing,
}

impl Store {
    /// Creates a store at `root` (the `.aos` directory itself), or opens the one there.
    ///
    /// # Errors
    /// I/O errors, or [`StoreError::NotAStore`] if `root` exists but is not a store.
    pub fn init(root: &Path) -> Result<(Self, Init), StoreError> {
        Self::init_with(root, &StoreOptions::default())
    }

    /// [`Store::init`] with options.
    ///
    /// # Errors
    /// As [`Store::init`].
    pub fn init_with(root: &Path, options: &StoreOptions) -> Result<(Self, Init), StoreError> {
        let format_file = root.join("format");
        if format_file.exists() {
            return Ok((Self::open_with(root, options)?, Init::Existing));
        }
        if root.exists()
            && stdfs::read_dir(root)
                .map_err(StoreError::io(root))?
                .next()
                .is_some()
        {
            return Err(StoreError::NotAStore {
                path: root.to_owned(),
                why: "directory is not empty".into(),
            });
        }
        for sub in ["objects/pack", "refs", "logs", "tmp"] {
            let d = root.join(sub);
            stdfs::create_dir_all(&d).map_err(StoreError::io(&d))?;
        }
        // The format file is written last: its presence marks a complete store.
        fs::write_replace(&format_file, FORMAT_LINE.as_bytes())
            .map_err(StoreError::io(&format_file))?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::sync_dir(parent).map_err(StoreError::io(parent))?;
        }
        Ok((Self::open_with(root, options)?, Init::Created))
    }

    /// Opens the store at `root` (the `.aos` directory itself).
    ///
    /// # Errors
    /// [`StoreError::NotAStore`] if `root` has no readable `format` file of version 1.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        Self::open_with(root, &StoreOptions::default())
    }

    /// Opens the store at `root` with `options` (e.g. a fixed clock).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(root: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let format_file = root.join("format");
        let format = stdfs::read_to_string(&format_file).map_err(|e| StoreError::NotAStore {
            path: root.to_owned(),
            why: format!("cannot read {}: {e}", format_file.display()),
        })?;
        if format != FORMAT_LINE {
            return Err(StoreError::NotAStore {
                path: root.to_owned(),
                why: format!(
                    "unsupported format {:?} (this build reads {FORMAT_LINE:?})",
                    format.trim_end()
                ),
            });
        }
        let store = Self {
            root: root.to_owned(),
            objects: root.join("objects"),
            pack_dir: root.join("objects").join("pack"),
            tmp: root.join("tmp"),
            packs: RwLock::new(Vec::new()),
            last_pack: AtomicUsize::new(0),
            refs: Refs::with_clock(root, Arc::clone(&options.clock))
                .with_lock_wait(options.lock_wait),
            options: options.clone(),
            guard: guard::GcGuard::new(root, options.lock_wait),
        };
        // Git does not keep empty directories: recreate them if a copy lost them. A
        // read-only store still opens for reading.
        for d in [&store.pack_dir, &store.tmp] {
            let _ = stdfs::create_dir_all(d);
        }
        store.reload_packs()?;
        Ok(store)
    }

    /// Finds the store for `start`: `start/.aos`, or the nearest parent's `.aos`.
    ///
    /// # Errors
    /// [`StoreError::NoStore`] if none is found, or the error opening the one found.
    pub fn discover(start: &Path) -> Result<Self, StoreError> {
        Self::discover_with(start, &StoreOptions::default())
    }

    /// [`Store::discover`] with options for the store found.
    ///
    /// # Errors
    /// As [`Store::discover`].
    pub fn discover_with(start: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        let abs = std::path::absolute(start).map_err(StoreError::io(start))?;
        for dir in abs.ancestors() {
            let candidate = dir.join(STORE_DIR);
            if candidate.join("format").is_file() {
                return Self::open_with(&candidate, options);
            }
        }
        Err(StoreError::NoStore { start: abs })
    }

    /// The store directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The options this store was opened with (to open another store, such as a remote,
    /// the same way).
    #[must_use]
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The clock the store records times from.
    #[must_use]
    pub fn clock(&self) -> &dyn Clock {
        self.options.clock.as_ref()
    }

    /// The secret seed of this store's signing key `name`, from the store's key source
    /// (created on first use by the default one).
    ///
    /// # Errors
    /// [`KeyError`].
    pub fn signing_seed(&self, name: &KeyName) -> Result<SecretSeed, KeyError> {
        self.options.keys.seed(&self.root, name)
    }

    /// The refs of this store.
    #[must_use]
    pub fn refs(&self) -> &Refs {
        &self.refs
    }

    /// The directory of temporary files.
    #[must_use]
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Re-reads the list of packs (another process may have published or removed some).
    /// Packs whose index cannot be opened are skipped; `fsck` reports them.
    ///
    /// # Errors
    /// An I/O error listing the pack directory.
    pub fn reload_packs(&self) -> Result<(), StoreError> {
        let (paths, _) = self.pack_index_paths()?;
        let mut packs = self
            .packs
            .write()
            .expect("pack list lock is never poisoned by our code");
        let mut next: Vec<Arc<Pack>> = Vec::with_capacity(paths.len());
        for idx in paths {
            let pack_path = idx.with_extension("pack");
            if let Some(p) = packs.iter().find(|p| p.pack_path() == pack_path) {
                next.push(Arc::clone(p));
            } else if let Ok(p) = Pack::open_for_reading(&idx) {
                next.push(Arc::new(p));
            }
        }
        // Larger packs first: after gc nearly everything is in one pack.
        next.sort_by_key(|p| std::cmp::Reverse(p.len()));
        *packs = next;
        Ok(())
    }

    /// Paths of every `.idx` file, and of `.pack` files without an index.
    fn pack_index_paths(&self) -> Result<(Vec<PathBuf>, Vec<PathBuf>), StoreError> {
        let mut idx = Vec::new();
        let mut orphans = Vec::new();
        let rd = stdfs::read_dir(&self.pack_dir).map_err(StoreError::io(&self.pack_dir))?;
        for e in rd {
            let e = e.map_err(StoreError::io(&self.pack_dir))?;
            let p = e.path();
            match p.extension().and_then(|x| x.to_str()) {
                Some("idx") => idx.push(p),
                Some("pack") if !p.with_extension("idx").exists() => orphans.push(p),
                _ => {}
            }
        }
        idx.sort();
        orphans.sort();
        Ok((idx, orphans))
    }

    /// The packs currently known.
    #[must_use]
    pub fn packs(&self) -> Vec<Arc<Pack>> {
        self.packs
            .read()
            .expect("pack list lock is never poisoned by our code")
            .clone()
    }

    /// Where `id` is stored, if anywhere.
    #[must_use]
    pub fn locate(&self, id: &ObjectId) -> Option<Location> {
        self.locate_once(id).or_else(|| {
            self.reload_packs().ok()?;
            self.locate_once(id)
        })
    }

    fn locate_once(&self, id: &ObjectId) -> Option<Location> {
        let packs = self
            .packs
            .read()
            .expect("pack list lock is never poisoned by our code");
        let hint = self.last_pack.load(Ordering::Relaxed);
        let order = packs
            .get(hint)
            .map(|p| (hint, p))
            .into_iter()
            .chain(packs.iter().enumerate().filter(|(i, _)| *i != hint));
        for (i, p) in order {
            if let Some(index) = p.find(id) {
                if i != hint {
                    self.last_pack.store(i, Ordering::Relaxed);
                }
                return Some(Location::Packed {
                    pack: Arc::clone(p),
                    index,
                });
            }
        }
        drop(packs);
        let path = loose::path(&self.objects, id);
        path.is_file().then_some(Location::Loose(path))
    }

    /// Where `id` is stored among `packs` (a list from [`Store::packs`]) or as a loose
    /// file. For writers that must not search the packs they are writing themselves.
    pub(crate) fn locate_in(&self, packs: &[Arc<Pack>], id: &ObjectId) -> Option<Location> {
        for p in packs {
            if let Some(index) = p.find(id) {
                return Some(Location::Packed {
                    pack: Arc::clone(p),
                    index,
                });
            }
        }
        let path = loose::path(&self.objects, id);
        path.is_file().then_some(Location::Loose(path))
    }

    /// Whether an object with this id is stored.
    #[must_use]
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.locate(id).is_some()
    }

    /// Whether an object with this id is stored, looking only in the packs already known (and
    /// loose files): unlike [`Store::contains`], a miss does not rescan the pack directory.
    /// For asking about many ids in a row, after one [`Store::reload_packs`].
    #[must_use]
    pub fn contains_known(&self, id: &ObjectId) -> bool {
        self.locate_once(id).is_some()
    }

    /// Reads and verifies an object.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], or [`StoreError::Corrupt`] if what is stored does not
    /// decompress to bytes with this id.
    pub fn get(&self, id: &ObjectId) -> Result<Object, StoreError> {
        let loc = self.locate(id).ok_or(StoreError::NotFound(*id))?;
        self.read_at(id, &loc)
    }

    /// Reads and verifies the object stored at `loc` under `id`.
    ///
    /// # Errors
    /// As [`Store::get`].
    pub fn read_at(&self, id: &ObjectId, loc: &Location) -> Result<Object, StoreError> {
        let stored = self.read_stored(id, loc)?;
        let kind = stored.kind;
        let data = stored.into_verified(id)?;
        Ok(Object { kind, data })
    }

    /// Reads an object's stored form (header and stored bytes) without decompressing it.
    pub(crate) fn read_stored(&self, id: &ObjectId, loc: &Location) -> Result<Stored, StoreError> {
        let corrupt = |location: String, message: String| StoreError::Corrupt {
            id: *id,
            location,
            message,
        };
        match loc {
            Location::Loose(path) => {
                let mut bytes = stdfs::read(path).map_err(StoreError::io(path))?;
                let h = loose::parse_header(&bytes)
                    .map_err(|m| corrupt(path.display().to_string(), m))?;
                bytes.drain(..loose::HEADER_LEN);
                Ok(Stored {
                    kind: h.kind,
                    encoding: h.encoding,
                    size: h.size,
                    bytes,
                    location: loc.clone(),
                })
            }
            Location::Packed { pack, index } => {
                let e = pack
                    .read_index(*index)
                    .map_err(|m| corrupt(loc.describe(), m))?;
                Ok(Stored::packed(e, loc))
            }
        }
    }

    /// As [`Store::read_stored`], reading packed objects through `window` (see
    /// [`Pack::read_index_windowed`]): for walks that read many objects written together.
    pub(crate) fn read_stored_windowed(
        &self,
        id: &ObjectId,
        loc: &Location,
        window: &mut pack::ReadWindow,
    ) -> Result<Stored, StoreError> {
        let Location::Packed { pack, index } = loc else {
            return self.read_stored(id, loc);
        };
        let e = pack
            .read_index_windowed(*index, window)
            .map_err(|message| StoreError::Corrupt {
                id: *id,
                location: loc.describe(),
                message,
            })?;
        Ok(Stored::packed(e, loc))
    }

    /// The kind and payload size of an object, read from its header only (not verified).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] or [`StoreError::Corrupt`] for an unreadable header.
    pub fn header(&self, id: &ObjectId) -> Result<(Kind, u64), StoreError> {
        let corrupt = |location: String, message: String| StoreError::Corrupt {
            id: *id,
            location,
            message,
        };
        match self.locate(id).ok_or(StoreError::NotFound(*id))? {
            Location::Loose(path) => {
                let h =
                    loose::read_header_bytes(&self.objects, id).map_err(StoreError::io(&path))?;
                let h =
                    loose::parse_header(&h).map_err(|m| corrupt(path.display().to_string(), m))?;
                Ok((h.kind, h.size))
            }
            Location::Packed { pack, index } => pack
                .kind_at(index)
                .map_err(|m| corrupt(pack.pack_path().display().to_string(), m)),
        }
    }

    /// Resolves a full id or an abbreviation of at least 8 hex digits.
    ///
    /// # Errors
    /// [`StoreError::PrefixNotFound`] or [`StoreError::Ambiguous`].
    pub fn resolve(&self, prefix: &IdPrefix) -> Result<ObjectId, StoreError> {
        if let Some(id) = prefix.full() {
            return if self.contains(&id) {
                Ok(id)
            } else {
                Err(StoreError::NotFound(id))
            };
        }
        let _ = self.reload_packs();
        let mut found: Vec<ObjectId> = Vec::new();
        for p in self.packs() {
            found.extend(p.find_prefix(prefix));
        }
        let dir = self.objects.join(&prefix.hex()[..2]);
        if let Ok(rd) = stdfs::read_dir(&dir) {
            let sub = &prefix.hex()[..2];
            found.extend(
                rd.flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()
                            .and_then(|n| loose::id_from_path(sub, n))
                    })
                    .filter(|id| prefix.matches(id)),
            );
        }
        found.sort_unstable();
        found.dedup();
        match found.len() {
            0 => Err(StoreError::PrefixNotFound(prefix.hex().to_owned())),
            1 => Ok(found[0]),
            _ => Err(StoreError::Ambiguous {
                prefix: prefix.hex().to_owned(),
                candidates: found,
            }),
        }
    }

    /// Checks a payload for `kind` and computes its id, without storing anything.
    ///
    /// # Errors
    /// [`StoreError::ReservedKind`] or [`StoreError::NotCanonical`].
    pub fn check(kind: Kind, payload: &[u8]) -> Result<ObjectId, StoreError> {
        if !kind.is_active() {
            return Err(StoreError::ReservedKind(kind));
        }
        format::validate_payload(kind, payload)
            .map_err(|source| StoreError::NotCanonical { kind, source })?;
        Ok(hash(kind, payload))
    }

    /// Stores one object as a loose file, durably, and returns its id. Storing an object
    /// that already exists changes nothing but its modification time (so `gc`'s grace
    /// period counts from now).
    ///
    /// # Errors
    /// Validation errors as [`Store::check`], or I/O errors (nothing is half-written).
    pub fn put(&self, kind: Kind, payload: &[u8]) -> Result<ObjectId, StoreError> {
        let id = Self::check(kind, payload)?;
        self.enter_writer()?;
        if let Some(loc) = self.locate(&id) {
            self.freshen(&loc);
            return Ok(id);
        }
        let mut c = format::compressor().map_err(StoreError::Compress)?;
        let (encoding, stored) = format::compress(&mut c, payload).map_err(StoreError::Compress)?;
        self.put_stored(&id, kind, encoding, payload.len() as u64, &stored)?;
        Ok(id)
    }

    fn put_stored(
        &self,
        id: &ObjectId,
        kind: Kind,
        encoding: Encoding,
        size: u64,
        stored: &[u8],
    ) -> Result<(), StoreError> {
        let dest = loose::path(&self.objects, id);
        let dir = fs::parent(&dest).to_owned();
        let new_dir = !dir.exists();
        loose::write(&self.objects, &self.tmp, id, kind, encoding, size, stored)
            .map_err(StoreError::io(&dest))?;
        fs::sync_dir(&dir).map_err(StoreError::io(&dir))?;
        if new_dir {
            fs::sync_dir(&self.objects).map_err(StoreError::io(&self.objects))?;
        }
        Ok(())
    }

    /// Marks an existing object as recently written, for gc's grace period. Best effort.
    fn freshen(&self, loc: &Location) {
        let path = match loc {
            Location::Loose(p) => p.as_path(),
            Location::Packed { pack, .. } => pack.pack_path(),
        };
        if let Ok(f) = stdfs::File::options().append(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Takes the writers' shared hold on `gc.lock` unless this store has it, so that no gc
    /// deletes what this store writes (or finds existing) before a ref names it.
    fn enter_writer(&self) -> Result<(), StoreError> {
        let path = self.root.join(guard::GC_LOCK);
        match self.guard.enter_writer() {
            // A gc may have replaced packs since they were listed.
            Ok(true) => self.reload_packs(),
            Ok(false) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(StoreError::Locked { path }),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Starts a batch: many objects written into one pack, made durable together by
    /// [`Batch::commit`]. The store holds `gc.lock` shared from here on, until it is
    /// dropped, so that no gc deletes what it writes before a ref names it.
    #[must_use]
    pub fn batch(&self) -> Batch<'_> {
        let guard_error = self.enter_writer().err();
        Batch {
            guard_error,
            store: self,
            writer: None,
            compressor: None,
            seen: HashSet::new(),
            existing: 0,
            freshened: HashSet::new(),
        }
    }

    /// Every stored object: loose ids and, per pack, its ids (an id may appear in several).
    ///
    /// # Errors
    /// I/O errors listing directories.
    pub fn list_objects(&self) -> Result<Vec<ObjectId>, StoreError> {
        self.reload_packs()?;
        let (mut ids, _) = loose::list(&self.objects).map_err(StoreError::io(&self.objects))?;
        for p in self.packs() {
            ids.extend((0..p.len()).map(|i| p.id_at(i)));
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

/// A group of objects written into one pack and made durable with one fsync.
///
/// Objects added are invisible to readers until [`Batch::commit`] returns; if the process
/// dies first, none of them is visible and the store is unchanged (a temporary file remains
/// for `gc` to remove).
pub struct Batch<'s> {
    store: &'s Store,
    writer: Option<PackWriter>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    seen: HashSet<ObjectId>,
    existing: u64,
    /// Packs already freshened by this batch (one touch per pack is enough for gc).
    freshened: HashSet<PathBuf>,
    /// Why the batch could not take `gc.lock`: returned by the first add or the commit.
    guard_error: Option<StoreError>,
}

/// What a committed batch wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Objects newly written.
    pub written: u64,
    /// Objects skipped because the store (or the batch) already had them.
    pub existing: u64,
    /// Bytes of the new pack file.
    pub pack_bytes: u64,
    /// The new pack file, if any object was written.
    pub pack: Option<PathBuf>,
}

impl Batch<'_> {
    /// Adds an object and returns its id. The object becomes readable when the batch commits.
    ///
    /// # Errors
    /// Validation errors as [`Store::check`], or I/O errors writing the pack.
    pub fn add(&mut self, kind: Kind, payload: &[u8]) -> Result<ObjectId, StoreError> {
        let id = Store::check(kind, payload)?;
        self.guarded()?;
        if !self.has(&id) {
            self.compress_and_add(&id, kind, payload)?;
        }
        Ok(id)
    }

    /// The error of taking `gc.lock` when the batch started, if any; later calls try to take
    /// it again (a no-op while the store holds it).
    fn guarded(&mut self) -> Result<(), StoreError> {
        match self.guard_error.take() {
            Some(e) => Err(e),
            None => self.store.enter_writer(),
        }
    }

    /// Whether the batch or the store already holds `id` (counted as existing, and freshened
    /// for gc's grace period when it is in the store).
    fn has(&mut self, id: &ObjectId) -> bool {
        if self.seen.contains(id) {
            self.existing += 1;
            return true;
        }
        if let Some(loc) = self.store.locate_once(id) {
            self.existing_at(&loc);
            return true;
        }
        false
    }

    /// Counts an object the store has, at `loc`, as existing, and freshens it (once per
    /// pack) so that gc's grace period counts from now.
    pub(crate) fn existing_at(&mut self, loc: &Location) {
        match loc {
            Location::Packed { pack, .. } => {
                if self.freshened.insert(pack.pack_path().to_owned()) {
                    self.store.freshen(loc);
                }
            }
            Location::Loose(_) => self.store.freshen(loc),
        }
        self.existing += 1;
    }

    /// Adds an object in stored form whose id the caller has verified (by decompressing the
    /// stored bytes and hashing them with the kind) and which the caller found missing from
    /// the store ([`Store::locate_in`]), unless the batch has it already. Returns whether
    /// it was added.
    pub(crate) fn add_verified_new(
        &mut self,
        id: &ObjectId,
        kind: Kind,
        encoding: Encoding,
        size: u64,
        stored: &[u8],
    ) -> Result<bool, StoreError> {
        if self.seen.contains(id) {
            self.existing += 1;
            return Ok(false);
        }
        self.add_stored(id, kind, encoding, size, stored)?;
        Ok(true)
    }

    /// Adds an object the caller knows to be new (a journal entry naming a predecessor that
    /// was just written): skips the lookup in the store, so a rare duplicate ends up in two
    /// packs, which readers, fsck and gc accept. Still deduplicated within the batch.
    ///
    /// # Errors
    /// As [`Batch::add`].
    pub fn add_new(&mut self, kind: Kind, payload: &[u8]) -> Result<ObjectId, StoreError> {
        let id = Store::check(kind, payload)?;
        self.guarded()?;
        if self.seen.contains(&id) {
            self.existing += 1;
            return Ok(id);
        }
        self.compress_and_add(&id, kind, payload)?;
        Ok(id)
    }

    fn compress_and_add(
        &mut self,
        id: &ObjectId,
        kind: Kind,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        if self.compressor.is_none() {
            self.compressor = Some(format::compressor().map_err(StoreError::Compress)?);
        }
        let c = self.compressor.as_mut().expect("just set");
        let (encoding, stored) = format::compress(c, payload).map_err(StoreError::Compress)?;
        self.add_stored(id, kind, encoding, payload.len() as u64, &stored)
    }

    /// Adds an object already in stored form. The caller vouches for the id.
    pub(crate) fn add_stored(
        &mut self,
        id: &ObjectId,
        kind: Kind,
        encoding: Encoding,
        size: u64,
        stored: &[u8],
    ) -> Result<(), StoreError> {
        self.guarded()?;
        if self.writer.is_none() {
            let w = PackWriter::new(&self.store.tmp).map_err(StoreError::io(&self.store.tmp))?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("just set");
        w.add(id, kind, encoding, size, stored)
            .map_err(StoreError::io(&self.store.tmp))?;
        self.seen.insert(*id);
        Ok(())
    }

    /// Number of new objects added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.writer.as_ref().map_or(0, PackWriter::len)
    }

    /// Whether no new object was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes written to the pending pack so far.
    #[must_use]
    pub fn pending_bytes(&self) -> u64 {
        self.writer.as_ref().map_or(0, PackWriter::bytes)
    }

    /// Makes every added object durable and visible, with one pack, one index and one fsync
    /// of each (plus the directory).
    ///
    /// # Errors
    /// I/O errors; on error nothing from the batch is visible.
    pub fn commit(self) -> Result<BatchSummary, StoreError> {
        // A batch that added nothing wrote nothing: a failure to take `gc.lock` (a read-only
        // store) does not matter to it. Any add already returned that failure.
        let mut summary = BatchSummary {
            existing: self.existing,
            ..BatchSummary::default()
        };
        if let Some(w) = self.writer {
            let pack_dir = &self.store.pack_dir;
            if let Some(p) = w
                .finish(pack_dir, &self.store.tmp)
                .map_err(StoreError::io(pack_dir))?
            {
                summary.written = p.count;
                summary.pack_bytes = p.bytes;
                summary.pack = Some(p.pack.clone());
                let pack = Pack::open(&p.idx).map_err(|why| StoreError::NotAStore {
                    path: p.idx.clone(),
                    why,
                })?;
                self.store
                    .packs
                    .write()
                    .expect("pack list lock is never poisoned by our code")
                    .push(Arc::new(pack));
            }
        }
        Ok(summary)
    }
}

/// Test helper: points `refs/heads/main`, which must not exist yet, at `root`.
#[cfg(test)]
pub(crate) fn set_main(s: &Store, root: ObjectId) {
    use crate::store::refs::{Expected, RefName};
    s.refs()
        .update(
            &RefName::new("refs/heads/main").unwrap(),
            Some(root),
            Expected::Absent,
            "test",
        )
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, init) = Store::init(&dir.path().join(STORE_DIR)).unwrap();
        assert_eq!(init, Init::Created);
        (dir, s)
    }

    #[test]
    fn put_get_blob_and_value() {
        let (_d, s) = store();
        let blob = s.put(Kind::Blob, b"hello world").unwrap();
        assert_eq!(
            s.get(&blob).unwrap(),
            Object {
                kind: Kind::Blob,
                data: b"hello world".to_vec()
            }
        );
        let v = cbor::encode(&cbor::Value::Text("x".repeat(1000)));
        let vid = s.put(Kind::Value, &v).unwrap();
        assert_eq!(s.get(&vid).unwrap().data, v);
        assert_eq!(s.header(&vid).unwrap(), (Kind::Value, v.len() as u64));
        // Writing again is a no-op.
        assert_eq!(s.put(Kind::Blob, b"hello world").unwrap(), blob);
    }

    #[test]
    fn rejects_non_canonical_values_and_reserved_kinds() {
        let (_d, s) = store();
        let err = s.put(Kind::Value, &[0x18, 0x01]).unwrap_err();
        assert!(matches!(err, StoreError::NotCanonical { .. }), "{err}");
        assert!(matches!(
            s.put(Kind::Receipt, &[0xf6]).unwrap_err(),
            StoreError::ReservedKind(Kind::Receipt)
        ));
        assert!(s.list_objects().unwrap().is_empty());
    }

    #[test]
    fn batch_is_invisible_until_commit() {
        let (_d, s) = store();
        let mut b = s.batch();
        let ids: Vec<_> = (0..100)
            .map(|i| b.add(Kind::Blob, format!("n{i}").as_bytes()).unwrap())
            .collect();
        assert!(!s.contains(&ids[0]));
        // Same content twice in one batch is written once.
        b.add(Kind::Blob, b"n1").unwrap();
        let sum = b.commit().unwrap();
        assert_eq!((sum.written, sum.existing), (100, 1));
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(s.get(id).unwrap().data, format!("n{i}").into_bytes());
        }
        // Another handle on the same store sees the pack too.
        let s2 = Store::open(s.root()).unwrap();
        assert!(s2.contains(&ids[99]));
        assert!(stdfs::read_dir(s.tmp_dir()).unwrap().next().is_none());
    }

    #[test]
    fn resolves_prefixes() {
        let (_d, s) = store();
        let a = s.put(Kind::Blob, b"a").unwrap();
        let mut b = s.batch();
        let c = b.add(Kind::Blob, b"c").unwrap();
        b.commit().unwrap();
        for id in [a, c] {
            assert_eq!(s.resolve(&id.to_hex()[..8].parse().unwrap()).unwrap(), id);
            assert_eq!(s.resolve(&id.to_string().parse().unwrap()).unwrap(), id);
        }
        assert!(matches!(
            s.resolve(&"00000000".parse().unwrap()),
            Err(StoreError::PrefixNotFound(_))
        ));
    }

    #[test]
    fn detects_corruption_on_read() {
        let (_d, s) = store();
        let id = s.put(Kind::Blob, &[5u8; 4096]).unwrap();
        let path = loose::path(&s.objects, &id);
        let mut bytes = stdfs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let mut perm = stdfs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        stdfs::set_permissions(&path, perm).unwrap();
        stdfs::write(&path, &bytes).unwrap();
        assert!(matches!(s.get(&id), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn discover_walks_up() {
        let (d, s) = store();
        let deep = d.path().join("a/b/c");
        stdfs::create_dir_all(&deep).unwrap();
        assert_eq!(Store::discover(&deep).unwrap().root(), s.root());
        let other = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::discover(other.path()),
            Err(StoreError::NoStore { .. })
        ));
    }
}

#[cfg(test)]
mod model {
    //! The store agrees with a `BTreeMap` model under random puts, batches, reopenings, ref
    //! moves and gc runs.

    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use proptest::prelude::*;

    use super::*;
    use crate::codec::cbor::{self, Value};
    use crate::progress::NoProgress;
    use crate::store::refs::{Expected, RefName};

    #[derive(Clone, Debug)]
    enum Op {
        Put(u8),
        Batch(Vec<u8>),
        Reopen,
        Root(Vec<u8>),
        GcKeep,
        GcNow,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => any::<u8>().prop_map(Op::Put),
            3 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Op::Batch),
            1 => Just(Op::Reopen),
            2 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Op::Root),
            1 => Just(Op::GcKeep),
            1 => Just(Op::GcNow),
        ]
    }

    fn payload(n: u8) -> Vec<u8> {
        format!("payload {n} ")
            .repeat(usize::from(n % 9) * 20 + 1)
            .into_bytes()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn store_matches_model(ops in proptest::collection::vec(op(), 1..14)) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join(".aos");
            let (mut s, _) = Store::init(&root).unwrap();
            let mut model: BTreeMap<ObjectId, (Kind, Vec<u8>)> = BTreeMap::new();
            let main = RefName::new("refs/heads/main").unwrap();
            let mut live: Vec<ObjectId> = Vec::new();
            for op in ops {
                match op {
                    Op::Put(n) => {
                        let id = s.put(Kind::Blob, &payload(n)).unwrap();
                        model.insert(id, (Kind::Blob, payload(n)));
                    }
                    Op::Batch(ns) => {
                        let mut b = s.batch();
                        for n in ns {
                            let id = b.add(Kind::Blob, &payload(n)).unwrap();
                            model.insert(id, (Kind::Blob, payload(n)));
                        }
                        b.commit().unwrap();
                    }
                    Op::Reopen => s = Store::open(&root).unwrap(),
                    Op::Root(ns) => {
                        let mut links = Vec::new();
                        for n in ns {
                            let id = s.put(Kind::Blob, &payload(n)).unwrap();
                            model.insert(id, (Kind::Blob, payload(n)));
                            links.push(Value::Link(id));
                        }
                        let v = cbor::encode(&Value::Array(links));
                        let id = s.put(Kind::Value, &v).unwrap();
                        model.insert(id, (Kind::Value, v));
                        s.refs().update(&main, Some(id), Expected::Any, "model").unwrap();
                        live.push(id);
                    }
                    Op::GcKeep => {
                        crate::store::gc::gc(&s, &crate::store::gc::GcOptions::default(), &NoProgress).unwrap();
                    }
                    Op::GcNow => {
                        let opts = crate::store::gc::GcOptions {
                            grace: Duration::ZERO,
                            now: Some(SystemTime::now() + Duration::from_secs(5)),
                        };
                        crate::store::gc::gc(&s, &opts, &NoProgress).unwrap();
                        // Every root ever pointed to is in the reflog, so it and its links live.
                        let mut keep = std::collections::BTreeSet::new();
                        for r in &live {
                            keep.insert(*r);
                            for l in cbor::links(&model[r].1).unwrap() {
                                keep.insert(l);
                            }
                        }
                        model.retain(|id, _| keep.contains(id));
                    }
                }
                prop_assert_eq!(s.list_objects().unwrap(), model.keys().copied().collect::<Vec<_>>());
                for (id, (kind, data)) in &model {
                    let o = s.get(id).unwrap();
                    prop_assert_eq!((&o.kind, &o.data), (kind, data));
                }
            }
            prop_assert!(crate::store::fsck::fsck(&s, &NoProgress).unwrap().is_ok());
        }
    }
}
