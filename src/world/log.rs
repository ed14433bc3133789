//! A world's journal as a log: its entries newest first, each marked with the other worlds
//! (local, and remote-tracking `REMOTE/WORLD`) whose head it is, and the fork point with the
//! world it was forked from.

use std::collections::HashMap;

use crate::kernel::entry::Entry;
use crate::kernel::error::WorldError;
use crate::kernel::replay::read_entry;
use crate::object::ObjectId;
use crate::store::Store;
use crate::world::history::{Origin, origin};
use crate::world::refs::{self, Role, Space};

/// One entry of a log.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// The entry's id.
    pub id: ObjectId,
    /// The entry.
    pub entry: Entry,
    /// The other worlds whose head it is: local worlds by name, then remote-tracking ones as
    /// `REMOTE/WORLD`, each sorted.
    pub heads_of: Vec<String>,
    /// At the point this world was forked at: what it was forked from (`WORLD at height H`).
    pub forked_from: Option<String>,
}

/// The entries of a world's journal, newest first (an iterator; see [`log`]).
pub struct Log<'s> {
    store: &'s Store,
    next: Option<ObjectId>,
    heads: HashMap<ObjectId, Vec<String>>,
    origin: Option<Origin>,
}

/// The log of world `world`, from its head back to its genesis.
///
/// # Errors
/// [`WorldError::NoWorld`]; ref and store errors.
pub fn log<'s>(store: &'s Store, world: &str) -> Result<Log<'s>, WorldError> {
    let head = store
        .refs()
        .read(&refs::world_ref(world)?)?
        .ok_or_else(|| WorldError::NoWorld(world.to_owned()))?;
    let mut heads: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for (name, id) in store.refs().list("refs/")? {
        let label = match refs::parse(&name) {
            Some((Space::Local, Role::Head, w)) if w != world => w.to_owned(),
            Some((Space::Tracking(remote), Role::Head, w)) => format!("{remote}/{w}"),
            _ => continue,
        };
        heads.entry(id).or_default().push(label);
    }
    // Local worlds first (their names have no `/`), then remote-tracking ones.
    for names in heads.values_mut() {
        names.sort_by(|a, b| (a.contains('/'), a).cmp(&(b.contains('/'), b)));
    }
    Ok(Log {
        store,
        next: Some(head),
        heads,
        origin: origin(store, world)?,
    })
}

impl Iterator for Log<'_> {
    type Item = Result<LogEntry, WorldError>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.next.take()?;
        let entry = match read_entry(self.store, &id) {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        self.next = entry.prev;
        Some(Ok(LogEntry {
            id,
            heads_of: self.heads.get(&id).cloned().unwrap_or_default(),
            forked_from: self
                .origin
                .as_ref()
                .filter(|o| o.id == id)
                .map(|o| o.from.clone()),
            entry,
        }))
    }
}
