//! Histories as a whole: naming a point in one (revisions), forking a world at a point, where
//! a fork came from, and where two histories part.
//!
//! A journal is a hash chain, so a head id names an entire history and two histories share
//! exactly the entries up to their last common entry. Forking a world is therefore writing
//! its refs (head, the source's checkpoint, and a small lineage object saying where it came
//! from) in one transaction: the new world shares every entry, snapshot and state with its
//! source.

use crate::kernel::entry::Entry;
use crate::kernel::error::{InputError, RevisionProblem, WorldError};
use crate::kernel::replay::{read_entry, read_entry_at};
use crate::object::{IdPrefix, Kind, ObjectId};
use crate::progress::Progress;
use crate::store::Store;
use crate::world::lineage::Lineage;
use crate::world::refs::{self, Moves, Role, Space};
use crate::world::world_ref;

/// A point in some world's history, as a user names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rev {
    /// The head of a world: `NAME`.
    World(String),
    /// The entry at a height of a world's history: `NAME@HEIGHT`.
    Height(String, u64),
    /// An entry that must be in a world's history: `NAME@ID`.
    WorldEntry(String, IdPrefix),
    /// An entry by id (or unique prefix): `b3:HEX`.
    Entry(IdPrefix),
}

impl Rev {
    /// Parses `NAME`, `NAME@HEIGHT`, `NAME@ID` or `ID` (an id is `b3:` and at least 8 hex
    /// digits).
    ///
    /// # Errors
    /// [`InputError::Revision`] for an empty name, a bad height or a bad id.
    pub fn parse(spec: &str) -> Result<Self, WorldError> {
        Self::parse_as(spec, false)
    }

    /// Parses a revision as [`Rev::parse`] does, except that a bare id prefix without `b3:`
    /// (8 or more hex digits) is read as an id rather than a world name: what `aos show`
    /// takes. [`Rev::Entry`] then names any object, and [`Rev::object`] finds it.
    ///
    /// # Errors
    /// As [`Rev::parse`].
    pub fn parse_object(spec: &str) -> Result<Self, WorldError> {
        Self::parse_as(spec, true)
    }

    fn parse_as(spec: &str, bare_ids: bool) -> Result<Self, WorldError> {
        let bad = |problem: RevisionProblem| -> WorldError {
            InputError::Revision {
                spec: spec.to_owned(),
                problem,
            }
            .into()
        };
        if spec.starts_with("b3:") {
            return spec
                .parse()
                .map(Rev::Entry)
                .map_err(|e| bad(RevisionProblem::Id(e)));
        }
        let Some((name, at)) = spec.rsplit_once('@') else {
            if spec.is_empty() {
                return Err(bad(RevisionProblem::Empty));
            }
            if bare_ids && let Ok(p) = spec.parse() {
                return Ok(Rev::Entry(p));
            }
            return Ok(Rev::World(spec.to_owned()));
        };
        if name.is_empty() {
            return Err(bad(RevisionProblem::NoWorld));
        }
        if at.starts_with("b3:") {
            return at
                .parse()
                .map(|p| Rev::WorldEntry(name.to_owned(), p))
                .map_err(|e| bad(RevisionProblem::Id(e)));
        }
        at.parse()
            .map(|h| Rev::Height(name.to_owned(), h))
            .map_err(|_| bad(RevisionProblem::NotHeightOrId(at.to_owned())))
    }

    /// The world named, if any.
    #[must_use]
    pub fn world(&self) -> Option<&str> {
        match self {
            Self::World(w) | Self::Height(w, _) | Self::WorldEntry(w, _) => Some(w),
            Self::Entry(_) => None,
        }
    }

    /// Finds the entry: its id and height.
    ///
    /// # Errors
    /// [`WorldError::NoWorld`], [`WorldError::Input`] (a height beyond the head, an id that
    /// is not an entry or not in the world's history), store errors.
    pub fn resolve(&self, store: &Store) -> Result<(ObjectId, u64), WorldError> {
        let head = |w: &str| -> Result<ObjectId, WorldError> {
            store
                .refs()
                .read(&world_ref(w)?)?
                .ok_or_else(|| WorldError::NoWorld(w.to_owned()))
        };
        let entry = |p: &IdPrefix| -> Result<(ObjectId, Entry), WorldError> {
            let id = store.resolve(p)?;
            let (kind, _) = store.header(&id)?;
            if kind != Kind::Entry {
                return Err(InputError::NotEntry { id, kind }.into());
            }
            Ok((id, read_entry(store, &id)?))
        };
        match self {
            Self::World(w) => {
                let id = head(w)?;
                Ok((id, read_entry(store, &id)?.height))
            }
            Self::Height(w, h) => Ok((read_entry_at(store, &head(w)?, *h)?, *h)),
            Self::Entry(p) => entry(p).map(|(id, e)| (id, e.height)),
            Self::WorldEntry(w, p) => {
                let (id, e) = entry(p)?;
                if read_entry_at(store, &head(w)?, e.height).ok() != Some(id) {
                    return Err(InputError::NotInHistory {
                        id,
                        world: w.clone(),
                    }
                    .into());
                }
                Ok((id, e.height))
            }
        }
    }

    /// Finds the object named: for [`Rev::Entry`] any object with that id (or unique
    /// prefix), whatever its kind; otherwise the entry, as [`Rev::resolve`] finds it.
    ///
    /// # Errors
    /// As [`Rev::resolve`].
    pub fn object(&self, store: &Store) -> Result<ObjectId, WorldError> {
        match self {
            Self::Entry(p) => Ok(store.resolve(p)?),
            _ => self.resolve(store).map(|(id, _)| id),
        }
    }
}

/// The reflog message prefix that records a fork; worlds forked before lineage was recorded
/// as data are recognised by it.
const FORK_MESSAGE: &str = "fork: from ";

/// What [`fork`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forked {
    /// The new world's head (the fork point).
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
    /// Whether the source's checkpoint was shared, so opening the new world replays nothing.
    pub checkpoint: bool,
    /// The new world's lineage object.
    pub lineage: ObjectId,
}

/// Creates world `dst` whose history is `src`'s up to the point `src` names. Constant time
/// and space for a world's head: one small lineage object, then one ref transaction (head,
/// lineage, and the source's checkpoint when it is of that head); naming a past height walks
/// back to it. The lineage ([`origin`]) records where `dst` came from.
///
/// # Errors
/// [`WorldError::Exists`] if `dst` exists (or appears meanwhile), resolution errors, ref
/// errors.
pub fn fork(store: &Store, src: &Rev, dst: &str) -> Result<Forked, WorldError> {
    let dst_ref = world_ref(dst)?;
    if store.refs().read(&dst_ref)?.is_some() {
        return Err(WorldError::Exists(dst.to_owned()));
    }
    let (head, height) = src.resolve(store)?;
    // Share the source's checkpoint when it is a snapshot of exactly the fork point.
    let source = match src.world() {
        Some(w) => refs::read(store, Space::Local, w)?,
        None => None,
    };
    let checkpoint = source
        .filter(|s| s.head == head)
        .and_then(|s| s.checkpoint)
        .zip(src.world());
    let lineage = Lineage {
        from: src.world().map(str::to_owned),
        at: head,
        height,
        parent: source.and_then(|s| s.lineage),
    };
    let lineage_id = lineage.write(store)?;
    let mut moves = Moves::new(store);
    moves.fork(
        dst,
        head,
        height,
        checkpoint,
        lineage_id,
        &lineage.describe(),
    )?;
    moves.commit()?;
    Ok(Forked {
        head,
        height,
        checkpoint: checkpoint.is_some(),
        lineage: lineage_id,
    })
}

/// Where a world was forked from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// What the fork was made from (`WORLD at height H`, or `ID at height H`).
    pub from: String,
    /// The fork point.
    pub id: ObjectId,
    /// The lineage object, for worlds forked since lineage is recorded as data (older ones
    /// are known from their reflog only).
    pub lineage: Option<Lineage>,
}

/// The fork a world's current incarnation was made by, if it was forked: its lineage
/// (`refs/lineage/W`), or for a world forked before lineage was recorded as data (its lineage
/// ref has no reflog), the latest creation in its reflog when that creation was a fork.
///
/// # Errors
/// Ref errors; a lineage ref that does not name a lineage object.
pub fn origin(store: &Store, world: &str) -> Result<Option<Origin>, WorldError> {
    let lineage_ref = refs::ref_name(Space::Local, Role::Lineage, world)?;
    if let Some(id) = store.refs().read(&lineage_ref)? {
        let l = Lineage::read(store, &id)?;
        return Ok(Some(Origin {
            from: l.describe(),
            id: l.at,
            lineage: Some(l),
        }));
    }
    // A world whose lineage ref ever moved has its lineage recorded as data: no lineage now
    // means it was created afresh or replaced by one without.
    if !store.refs().reflog(&lineage_ref)?.is_empty() {
        return Ok(None);
    }
    let log = store.refs().reflog(&world_ref(world)?)?;
    let Some(created) = log.iter().rev().find(|e| e.old.is_none()) else {
        return Ok(None);
    };
    Ok(
        match (created.message.strip_prefix(FORK_MESSAGE), created.new) {
            (Some(from), Some(id)) => Some(Origin {
                from: from.to_owned(),
                id,
                lineage: None,
            }),
            _ => None,
        },
    )
}

/// How two histories relate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ancestry {
    /// The last entry both share (height, id); `None` if they share nothing (different
    /// genesis).
    pub ancestor: Option<(u64, ObjectId)>,
    /// The entries only in the first history, newest first (height, id).
    pub only_a: Vec<(u64, ObjectId)>,
    /// The entries only in the second history, newest first.
    pub only_b: Vec<(u64, ObjectId)>,
}

/// Finds where the histories ending at `a` and `b` part. Reads only the entries after the
/// common ancestor (walking the longer history back to the other's height, then both in step
/// until the ids agree), never the shared part.
///
/// Reports each entry read to `progress`.
///
/// # Errors
/// Store errors and broken chains.
pub fn common_ancestor(
    store: &Store,
    a: &ObjectId,
    b: &ObjectId,
    progress: &dyn Progress,
) -> Result<Ancestry, WorldError> {
    let mut only_a = Vec::new();
    let mut only_b = Vec::new();
    let (mut ia, mut ib) = (*a, *b);
    let (mut ea, mut eb) = (read_entry(store, &ia)?, read_entry(store, &ib)?);
    let step = |id: &mut ObjectId, e: &mut Entry| -> Result<bool, WorldError> {
        progress.advance(1);
        match e.prev {
            None => Ok(false),
            Some(p) => {
                let next = read_entry(store, &p)?;
                if next.height + 1 != e.height {
                    return Err(WorldError::Chain {
                        height: e.height,
                        message: format!("the predecessor of {id} has height {}", next.height),
                    });
                }
                *id = p;
                *e = next;
                Ok(true)
            }
        }
    };
    loop {
        if ia == ib {
            return Ok(Ancestry {
                ancestor: Some((ea.height, ia)),
                only_a,
                only_b,
            });
        }
        let more = if ea.height > eb.height {
            only_a.push((ea.height, ia));
            step(&mut ia, &mut ea)?
        } else if eb.height > ea.height {
            only_b.push((eb.height, ib));
            step(&mut ib, &mut eb)?
        } else {
            only_a.push((ea.height, ia));
            only_b.push((eb.height, ib));
            step(&mut ia, &mut ea)? && step(&mut ib, &mut eb)?
        };
        if !more {
            // Both reached a genesis (heights walk down in step) without meeting.
            return Ok(Ancestry {
                ancestor: None,
                only_a,
                only_b,
            });
        }
    }
}
