//! Idempotency keys: recognising a retried ingress event the world already holds, so that a
//! sender who cannot know whether its send landed (a crash, a lost reply) can simply send
//! again.
//!
//! An ingress event may carry a key ([`EventIn::id`]), recorded in its entry. Before an
//! event with a key is appended, the writer looks the key up among the ingress events of the
//! last [`ID_WINDOW`] entries of the journal (and those it is about to commit):
//!
//! - not there: the event is appended;
//! - there, naming the same event (schema, value and envelope key): the event is already in
//!   the world; it is acknowledged and not appended again;
//! - there, naming another event: the send fails ([`InputError::IdReused`]).
//!
//! The index is read from the journal itself, so it survives crashes and restarts and is
//! the same for every process. It is built lazily, the first time a writer meets a key,
//! by walking back from the head, and kept up to date as the writer commits and as other
//! writers' commits are rebased on. A key older than the window is not looked up: a retry
//! must come within [`ID_WINDOW`] entries of the original.
//!
//! So that a process sending one keyed event does not walk the whole window each time, a
//! writer that walked at least [`SAVE_AFTER`] entries leaves the index as of its committed
//! head in `.aos/cache/ids/<world>` (objects-spec §5); the next writer starts from there and
//! walks only the entries since. The cached head is checked to be on the world's history
//! (else the index is built again), and a torn or garbled file is a miss.

use std::collections::HashMap;

use crate::codec::cbor;
use crate::kernel::entry::{Body, Origin};
use crate::kernel::error::{InputError, WorldError};
use crate::kernel::machine::EventIn;
use crate::kernel::replay::read_entry;
use crate::object::ObjectId;
use crate::store::{Store, cache};

/// Where the index of `world` is saved (`/` in a world's name written as `%`, which a name
/// cannot contain).
fn saved_path(store: &Store, world: &str) -> std::path::PathBuf {
    cache::path(store, "ids", &world.replace('/', "%"))
}

/// How many journal entries back from the head a writer looks for an idempotency key.
pub const ID_WINDOW: u64 = 100_000;

/// A writer that walked at least this many entries to bring its index up to date saves it.
pub const SAVE_AFTER: u64 = 2_048;

/// The first bytes of a saved index.
const MAGIC: &[u8; 16] = b"aos id window 1\n";

/// The largest saved index read (a full window of 256-byte keys is about 30 MB).
const MAX_SAVED: u64 = 64 << 20;

/// An event carrying a key, as remembered: where it is and what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    /// The height of its entry.
    height: u64,
    /// The digest of its schema, value and envelope key.
    digest: [u8; 32],
}

/// What a writer found for an event it is about to append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The event carries no key, or a key not seen in the window: append it.
    Fresh,
    /// The same event is already at this height: do not append it again.
    Held(u64),
}

/// The idempotency keys of a world's window.
#[derive(Debug)]
pub(crate) struct Ids {
    /// Keys of committed ingress events, newest occurrence of each.
    committed: HashMap<String, Seen>,
    /// Keys of events appended but not committed yet.
    pending: HashMap<String, Seen>,
    /// The committed head the index is complete up to, and its height.
    head: ObjectId,
    height: u64,
    /// Entries read from the journal since the index was last saved or loaded.
    walked: u64,
}

/// The digest an event is compared by: its schema, canonical value and envelope key.
pub(crate) fn digest(ev: &EventIn) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&(ev.schema.len() as u64).to_le_bytes());
    h.update(ev.schema.as_bytes());
    h.update(&cbor::encode(&ev.value));
    match &ev.key {
        Some(k) => h.update(&[1]).update(&cbor::encode(k)),
        None => h.update(&[0]),
    };
    *h.finalize().as_bytes()
}

impl Ids {
    /// An index of the window ending at `head`, the committed head (the zero id for a
    /// view, which never commits: an empty index).
    ///
    /// # Errors
    /// Store errors; a broken chain.
    pub(crate) fn build(store: &Store, head: ObjectId) -> Result<Self, WorldError> {
        let mut ids = Self {
            committed: HashMap::new(),
            pending: HashMap::new(),
            head,
            height: 0,
            walked: 0,
        };
        if head != ObjectId::from_bytes([0; 32]) {
            ids.height = read_entry(store, &head)?.height;
            ids.walk(store, head, ids.height.saturating_sub(ID_WINDOW))?;
        }
        Ok(ids)
    }

    /// Records the keys of the ingress events from `from` back to (not including) the entry
    /// at height `stop`, keeping a newer occurrence already recorded. Returns the id of the
    /// entry at `stop` (the predecessor of the last one read), if the walk got there.
    fn walk(
        &mut self,
        store: &Store,
        from: ObjectId,
        stop: u64,
    ) -> Result<Option<ObjectId>, WorldError> {
        let mut cur = from;
        loop {
            let e = read_entry(store, &cur)?;
            if e.height <= stop {
                return Ok(Some(cur));
            }
            self.walked += 1;
            if let Body::Event(ev) = &e.body
                && let (Origin::Ingress, Some(id)) = (&ev.origin, &ev.id)
            {
                let seen = Seen {
                    height: e.height,
                    digest: digest(&EventIn {
                        schema: ev.schema.clone(),
                        value: ev.value.clone(),
                        key: ev.key.clone(),
                        id: None,
                    }),
                };
                self.committed.entry(id.clone()).or_insert(seen);
            }
            match e.prev {
                Some(p) => cur = p,
                None => return Ok(None),
            }
        }
    }

    /// Brings the index to the committed head `head` (another writer's commits, after a
    /// rebase), forgetting what was pending. Rebuilds it if `head` does not descend from the
    /// head it was complete up to.
    ///
    /// # Errors
    /// Store errors; a broken chain.
    pub(crate) fn catch_up(&mut self, store: &Store, head: ObjectId) -> Result<(), WorldError> {
        if head == self.head {
            return Ok(());
        }
        self.pending.clear();
        let mut newer = Self {
            committed: HashMap::new(),
            pending: HashMap::new(),
            head,
            height: read_entry(store, &head)?.height,
            walked: self.walked,
        };
        if newer.height < self.height || newer.walk(store, head, self.height)? != Some(self.head) {
            *self = Self::build(store, head)?;
            return Ok(());
        }
        for (id, seen) in std::mem::take(&mut self.committed) {
            newer.committed.entry(id).or_insert(seen);
        }
        *self = newer;
        Ok(())
    }

    /// The index of world `world` as of its committed head `head`: from the saved index
    /// brought up to date when there is one, else built from the journal.
    ///
    /// # Errors
    /// Store errors; a broken chain.
    pub(crate) fn open(store: &Store, world: &str, head: ObjectId) -> Result<Self, WorldError> {
        match Self::load(store, world) {
            Some(mut ids) if head != ObjectId::from_bytes([0; 32]) => {
                ids.catch_up(store, head)?;
                Ok(ids)
            }
            _ => Self::build(store, head),
        }
    }

    /// Saves the index (as of its committed head) if it took at least [`SAVE_AFTER`]
    /// entries of walking to get here; best effort.
    pub(crate) fn save_if_walked(&mut self, store: &Store, world: &str) {
        if self.walked < SAVE_AFTER || self.head == ObjectId::from_bytes([0; 32]) {
            return;
        }
        let oldest = self.height.saturating_sub(ID_WINDOW);
        let mut body = Vec::with_capacity(64 + self.committed.len() * 64);
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(self.head.as_bytes());
        body.extend_from_slice(&self.height.to_le_bytes());
        let kept: Vec<_> = self
            .committed
            .iter()
            .filter(|(_, s)| s.height > oldest)
            .collect();
        body.extend_from_slice(&(kept.len() as u64).to_le_bytes());
        for (key, seen) in kept {
            body.extend_from_slice(&seen.height.to_le_bytes());
            body.extend_from_slice(&seen.digest);
            // Keys are at most 256 bytes (checked where events are read).
            let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&key.as_bytes()[..usize::from(len)]);
        }
        cache::write_sealed(&saved_path(store, world), body);
        self.walked = 0;
    }

    /// The saved index of `world`, if there is a readable one.
    fn load(store: &Store, world: &str) -> Option<Self> {
        let bytes = cache::read_sealed(&saved_path(store, world), MAX_SAVED)?;
        let mut r = bytes.strip_prefix(MAGIC)?;
        let mut take = |n: usize| -> Option<&[u8]> {
            let (a, b) = (r.get(..n)?, r.get(n..)?);
            r = b;
            Some(a)
        };
        let head = ObjectId::from_bytes(take(32)?.try_into().ok()?);
        let height = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let count = u64::from_le_bytes(take(8)?.try_into().ok()?);
        let mut committed = HashMap::new();
        for _ in 0..count {
            let h = u64::from_le_bytes(take(8)?.try_into().ok()?);
            let digest: [u8; 32] = take(32)?.try_into().ok()?;
            let len = u16::from_le_bytes(take(2)?.try_into().ok()?);
            let key = std::str::from_utf8(take(usize::from(len))?)
                .ok()?
                .to_owned();
            committed.insert(key, Seen { height: h, digest });
        }
        if take(1).is_some() {
            return None; // bytes after the last key
        }
        Some(Self {
            committed,
            pending: HashMap::new(),
            head,
            height,
            walked: 0,
        })
    }

    /// Looks `ev` up before it is appended on top of height `height`.
    ///
    /// # Errors
    /// [`InputError::IdReused`] if its key names another event in the window.
    pub(crate) fn lookup(&self, ev: &EventIn, height: u64) -> Result<Lookup, InputError> {
        let Some(id) = &ev.id else {
            return Ok(Lookup::Fresh);
        };
        let found = self
            .pending
            .get(id)
            .or_else(|| self.committed.get(id))
            .filter(|s| height.saturating_sub(s.height) < ID_WINDOW);
        match found {
            None => Ok(Lookup::Fresh),
            Some(s) if s.digest == digest(ev) => Ok(Lookup::Held(s.height)),
            Some(s) => Err(InputError::IdReused {
                id: id.clone(),
                height: s.height,
            }),
        }
    }

    /// Records that `ev` was appended at height `height`, not committed yet.
    pub(crate) fn appended(&mut self, ev: &EventIn, height: u64) {
        if let Some(id) = &ev.id {
            self.pending.insert(
                id.clone(),
                Seen {
                    height,
                    digest: digest(ev),
                },
            );
        }
    }

    /// Records that everything pending is committed, up to `head` at `height`; forgets keys
    /// that have left the window.
    pub(crate) fn committed(&mut self, head: ObjectId, height: u64) {
        self.committed.extend(self.pending.drain());
        self.head = head;
        self.height = height;
        let oldest = height.saturating_sub(ID_WINDOW);
        if self.committed.len() > 1024 {
            self.committed.retain(|_, s| s.height > oldest);
        }
    }
}
