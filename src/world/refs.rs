//! Where a world's refs move: their names, how a new head relates to the current one, and the
//! one place that moves a world's head, checkpoint and lineage, together, in one store
//! transaction.
//!
//! A world `W` of a store is three refs (objects-spec §12, §15):
//!
//! | role | local | what was last fetched from remote `R` |
//! | --- | --- | --- |
//! | head | `refs/worlds/W` | `refs/remotes/R/worlds/W` |
//! | checkpoint | `refs/checkpoints/W` | `refs/remotes/R/checkpoints/W` |
//! | lineage | `refs/lineage/W` | `refs/remotes/R/lineage/W` |
//!
//! [`ref_name`] builds every one of them; [`parse`] reads one back. [`Move::of`] classifies a
//! new head against the current one (create, same, fast-forward, behind, diverged).
//! [`Moves`] collects the moves of one command — creating a world, appending to it, forking
//! it, adopting another store's head (pull, clone, unbundle, push), mirroring a remote's refs
//! into tracking refs — and commits them in one [`Transaction`], so a world's refs never
//! disagree after a crash and a command that moves several worlds moves all or none.
//!
//! Lineage follows the incarnation: creating or replacing a world takes the lineage of what
//! it is created from (none for `world new`), a fast-forward keeps the world's own.

use crate::kernel::error::{InputError, WorldError, WorldNameProblem};
use crate::kernel::replay::{read_entry, read_snapshot};
use crate::object::ObjectId;
use crate::store::Store;
use crate::store::refs::{Expected, RefError, RefName, Transaction};

/// The `refs/` component of heads.
pub const WORLDS: &str = "worlds";
/// The `refs/` component of checkpoints.
pub const CHECKPOINTS: &str = "checkpoints";
/// The `refs/` component of lineage.
pub const LINEAGE: &str = "lineage";
/// Where remote-tracking refs live: `refs/remotes/R/...`.
pub const REMOTES: &str = "refs/remotes/";

/// Which refs: this store's worlds, or what was last fetched from a remote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space<'a> {
    /// `refs/worlds/W`, `refs/checkpoints/W`, `refs/lineage/W`.
    Local,
    /// `refs/remotes/R/worlds/W` and so on, for remote `R`.
    Tracking(&'a str),
}

impl Space<'_> {
    /// The prefix of every ref of this space: `refs/` or `refs/remotes/R/`.
    #[must_use]
    pub fn prefix(&self) -> String {
        match self {
            Self::Local => "refs/".to_owned(),
            Self::Tracking(r) => format!("{REMOTES}{r}/"),
        }
    }

    /// The prefix of this space's refs of `role`, e.g. `refs/worlds/`.
    #[must_use]
    pub fn role_prefix(&self, role: Role) -> String {
        format!("{}{}/", self.prefix(), role.dir())
    }
}

/// What a ref of a world holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The head entry of its journal.
    Head,
    /// A snapshot of the head (a cache).
    Checkpoint,
    /// Where it was forked from (a lineage value, [`crate::world::lineage`]).
    Lineage,
}

impl Role {
    /// The ref-name component of the role.
    #[must_use]
    pub fn dir(self) -> &'static str {
        match self {
            Self::Head => WORLDS,
            Self::Checkpoint => CHECKPOINTS,
            Self::Lineage => LINEAGE,
        }
    }
}

/// Why a world's refs could not be named, read or moved.
#[derive(Debug, thiserror::Error)]
pub enum WorldRefError {
    /// The name cannot be part of a ref name.
    #[error("invalid world name `{name}`: {source}")]
    BadName {
        /// The world name given.
        name: String,
        /// The rule it breaks.
        #[source]
        source: RefError,
    },
    /// A world to be created exists already; nothing moved.
    #[error("a world named `{0}` exists already")]
    Exists(String),
    /// A world's head is not what the move expected: another process moved it; nothing
    /// moved.
    #[error("world `{world}` was changed by another process meanwhile")]
    Moved {
        /// The world.
        world: String,
        /// Its head ref.
        name: RefName,
        /// What the move expected the head to be.
        expected: Expected,
        /// What it was.
        actual: Option<ObjectId>,
    },
    /// Reading or moving a ref failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// Reading the histories failed (a missing or damaged entry, a broken chain).
    #[error(transparent)]
    History(Box<WorldError>),
}

impl From<WorldError> for WorldRefError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::Ref(r) => Self::Ref(r),
            other => Self::History(Box::new(other)),
        }
    }
}

impl From<WorldRefError> for WorldError {
    fn from(e: WorldRefError) -> Self {
        match e {
            WorldRefError::BadName { name, source } => InputError::WorldName {
                name,
                problem: WorldNameProblem::Ref(source),
            }
            .into(),
            WorldRefError::Exists(w) => WorldError::Exists(w),
            WorldRefError::Moved { world, .. } => WorldError::Moved(world),
            WorldRefError::Ref(r) => WorldError::Ref(r),
            WorldRefError::History(h) => *h,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Names

/// The ref of `role` of world `world` in `space`: the one ref-name builder.
///
/// # Errors
/// [`WorldRefError::BadName`] if the names do not make a valid ref name.
pub fn ref_name(space: Space<'_>, role: Role, world: &str) -> Result<RefName, WorldRefError> {
    RefName::new(&format!("{}{world}", space.role_prefix(role))).map_err(|source| {
        WorldRefError::BadName {
            name: world.to_owned(),
            source,
        }
    })
}

/// The head ref of local world `world`, `refs/worlds/W`.
///
/// # Errors
/// [`InputError::WorldName`] if `world` cannot be part of a ref name.
pub fn world_ref(world: &str) -> Result<RefName, WorldError> {
    Ok(ref_name(Space::Local, Role::Head, world)?)
}

/// The checkpoint ref of local world `world`, `refs/checkpoints/W`.
///
/// # Errors
/// As [`world_ref`].
pub fn checkpoint_ref(world: &str) -> Result<RefName, WorldError> {
    Ok(ref_name(Space::Local, Role::Checkpoint, world)?)
}

/// The lineage ref of local world `world`, `refs/lineage/W`.
///
/// # Errors
/// As [`world_ref`].
pub fn lineage_ref(world: &str) -> Result<RefName, WorldError> {
    Ok(ref_name(Space::Local, Role::Lineage, world)?)
}

/// What a ref of a world is: its space, its role and the world's name; `None` for any other
/// ref.
#[must_use]
pub fn parse(name: &RefName) -> Option<(Space<'_>, Role, &str)> {
    let s = name.as_str();
    let (space, rest) = match s.strip_prefix(REMOTES) {
        Some(r) => {
            let (remote, rest) = r.split_once('/')?;
            (Space::Tracking(remote), rest)
        }
        None => (Space::Local, s.strip_prefix("refs/")?),
    };
    let (dir, world) = rest.split_once('/')?;
    let role = [Role::Head, Role::Checkpoint, Role::Lineage]
        .into_iter()
        .find(|r| r.dir() == dir)?;
    (!world.is_empty()).then_some((space, role, world))
}

/// The worlds of `space` in a store: name and head, sorted by name.
///
/// # Errors
/// Ref errors.
pub fn list(store: &Store, space: Space<'_>) -> Result<Vec<(String, ObjectId)>, RefError> {
    let prefix = space.role_prefix(Role::Head);
    Ok(store
        .refs()
        .list(&prefix)?
        .into_iter()
        .filter_map(|(n, id)| n.as_str().strip_prefix(&prefix).map(|w| (w.to_owned(), id)))
        .collect())
}

/// A world's refs as a store holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    /// The head entry.
    pub head: ObjectId,
    /// The checkpoint, when it is a snapshot of the head.
    pub checkpoint: Option<ObjectId>,
    /// The lineage, if the world has one.
    pub lineage: Option<ObjectId>,
}

impl Heads {
    /// The ids a transfer starts from: head, checkpoint and lineage.
    #[must_use]
    pub fn roots(&self) -> Vec<ObjectId> {
        std::iter::once(self.head)
            .chain(self.checkpoint)
            .chain(self.lineage)
            .collect()
    }
}

/// World `world` of `space` in `store`, `None` if it has no head. A checkpoint that is not a
/// snapshot of the head (or cannot be read) is left out.
///
/// # Errors
/// Bad names and ref errors.
pub fn read(store: &Store, space: Space<'_>, world: &str) -> Result<Option<Heads>, WorldRefError> {
    let refs = store.refs();
    let Some(head) = refs.read(&ref_name(space, Role::Head, world)?)? else {
        return Ok(None);
    };
    let checkpoint = refs
        .read(&ref_name(space, Role::Checkpoint, world)?)?
        .filter(|id| read_snapshot(store, id).is_ok_and(|s| s.head == head));
    let lineage = refs.read(&ref_name(space, Role::Lineage, world)?)?;
    Ok(Some(Heads {
        head,
        checkpoint,
        lineage,
    }))
}

// ---------------------------------------------------------------------------------------
// Classification

/// How a new head relates to a world's current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// The world does not exist.
    Create,
    /// The new head is the current one.
    Same,
    /// The new head descends from the current one.
    FastForward,
    /// The current head descends from the new one: the world is ahead.
    Behind,
    /// Neither descends from the other (or they share no history).
    Diverged,
}

impl Move {
    /// Classifies `new` against `current`, walking back only from the higher of the two to
    /// the other's height. Both must be in `store`.
    ///
    /// # Errors
    /// A missing entry or a broken chain.
    pub fn of(store: &Store, current: Option<ObjectId>, new: ObjectId) -> Result<Self, WorldError> {
        let Some(cur) = current else {
            return Ok(Self::Create);
        };
        if cur == new {
            return Ok(Self::Same);
        }
        let (hc, hn) = (
            read_entry(store, &cur)?.height,
            read_entry(store, &new)?.height,
        );
        Ok(if hn > hc {
            if super::ancestry::entry_at(store, &new, hc)? == cur {
                Self::FastForward
            } else {
                Self::Diverged
            }
        } else if hc > hn && super::ancestry::entry_at(store, &cur, hn)? == new {
            Self::Behind
        } else {
            Self::Diverged
        })
    }
}

// ---------------------------------------------------------------------------------------
// Moves

/// A head this transaction moves, to tell a stale head from a stale anything.
#[derive(Debug)]
struct HeadMove {
    world: String,
    name: RefName,
    expected: Expected,
}

/// The moves of one command, committed together ([`Moves::commit`]).
#[derive(Debug)]
#[must_use = "nothing moves until the moves are committed"]
pub struct Moves<'s> {
    store: &'s Store,
    txn: Transaction<'s>,
    heads: Vec<HeadMove>,
}

impl<'s> Moves<'s> {
    /// No moves yet, in `store`.
    pub fn new(store: &'s Store) -> Self {
        Self {
            store,
            txn: store.refs().transaction(),
            heads: Vec::new(),
        }
    }

    /// Whether there is nothing to move.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.txn.is_empty()
    }

    fn head(
        &mut self,
        space: Space<'_>,
        world: &str,
        new: ObjectId,
        expected: Expected,
        message: &str,
    ) -> Result<(), WorldRefError> {
        let name = ref_name(space, Role::Head, world)?;
        self.txn.update(&name, Some(new), expected, message);
        self.heads.push(HeadMove {
            world: world.to_owned(),
            name,
            expected,
        });
        Ok(())
    }

    fn other(
        &mut self,
        space: Space<'_>,
        role: Role,
        world: &str,
        new: Option<ObjectId>,
        message: &str,
    ) -> Result<(), WorldRefError> {
        let name = ref_name(space, role, world)?;
        self.txn.update(&name, new, Expected::Any, message);
        Ok(())
    }

    /// Creates local world `world` at its genesis entry, without lineage (a leftover lineage
    /// ref of an earlier world of that name is removed). Fails with
    /// [`WorldRefError::Exists`] if the world exists when the moves commit.
    ///
    /// # Errors
    /// A bad name.
    pub fn create(&mut self, world: &str, genesis: ObjectId) -> Result<&mut Self, WorldRefError> {
        self.head(
            Space::Local,
            world,
            genesis,
            Expected::Absent,
            "world: created",
        )?;
        self.other(Space::Local, Role::Lineage, world, None, "world: created")?;
        Ok(self)
    }

    /// Moves local world `world` from head `from` to `to` (at `height`) after appending, and
    /// sets its checkpoint to `checkpoint` when given. Fails with [`WorldRefError::Moved`]
    /// if the head is not `from` when the moves commit.
    ///
    /// # Errors
    /// A bad name.
    pub fn append(
        &mut self,
        world: &str,
        from: ObjectId,
        to: ObjectId,
        height: u64,
        checkpoint: Option<ObjectId>,
    ) -> Result<&mut Self, WorldRefError> {
        if from != to {
            self.head(
                Space::Local,
                world,
                to,
                Expected::Is(from),
                &format!("world: append to height {height}"),
            )?;
        }
        if let Some(cp) = checkpoint {
            self.other(
                Space::Local,
                Role::Checkpoint,
                world,
                Some(cp),
                &format!("checkpoint at height {height}"),
            )?;
        }
        Ok(self)
    }

    /// Creates local world `world` as a fork at `head` (of `height`) with lineage `lineage`
    /// and, when given, the source's checkpoint of that head (`(snapshot, source world)`).
    /// `from` says what was forked (`c at height 6`). Fails with [`WorldRefError::Exists`]
    /// if the world exists when the moves commit.
    ///
    /// # Errors
    /// A bad name.
    pub fn fork(
        &mut self,
        world: &str,
        head: ObjectId,
        height: u64,
        checkpoint: Option<(ObjectId, &str)>,
        lineage: ObjectId,
        from: &str,
    ) -> Result<&mut Self, WorldRefError> {
        let message = format!("fork: from {from}");
        self.head(Space::Local, world, head, Expected::Absent, &message)?;
        if let Some((cp, src)) = checkpoint {
            self.other(
                Space::Local,
                Role::Checkpoint,
                world,
                Some(cp),
                &format!("checkpoint at height {height} (from {src})"),
            )?;
        }
        self.other(Space::Local, Role::Lineage, world, Some(lineage), &message)?;
        Ok(self)
    }

    /// Moves world `world` of `space` (whose head is `current`) to `incoming`, another
    /// store's refs of a world, as `how` classifies the move: [`Move::Create`] and
    /// [`Move::Diverged`] (a forced replacement; so is [`Move::Behind`] when it is asked
    /// for) take the incoming lineage, [`Move::FastForward`] keeps the world's own;
    /// [`Move::Same`] moves nothing. The checkpoint is set when `incoming` has one. Fails
    /// with [`WorldRefError::Moved`] (or [`WorldRefError::Exists`], for a creation) if the
    /// head is not `current` when the moves commit.
    ///
    /// # Errors
    /// A bad name.
    pub fn adopt(
        &mut self,
        space: Space<'_>,
        world: &str,
        current: Option<ObjectId>,
        incoming: &Heads,
        how: Move,
        message: &str,
    ) -> Result<&mut Self, WorldRefError> {
        if how == Move::Same {
            return Ok(self);
        }
        let expected = current.map_or(Expected::Absent, Expected::Is);
        self.head(space, world, incoming.head, expected, message)?;
        if let Some(cp) = incoming.checkpoint {
            self.other(space, Role::Checkpoint, world, Some(cp), message)?;
        }
        if how != Move::FastForward {
            self.other(space, Role::Lineage, world, incoming.lineage, message)?;
        }
        Ok(self)
    }

    /// Sets the checkpoint of world `world` of `space` to `snapshot` (a snapshot of its
    /// current head, which this does not move).
    ///
    /// # Errors
    /// A bad name.
    pub fn checkpoint(
        &mut self,
        space: Space<'_>,
        world: &str,
        snapshot: ObjectId,
        message: &str,
    ) -> Result<&mut Self, WorldRefError> {
        self.other(space, Role::Checkpoint, world, Some(snapshot), message)?;
        Ok(self)
    }

    /// Makes the tracking refs of world `world` of remote `remote` hold exactly `heads`
    /// (what the remote has now; `None`: it has no such world). Refs that already do are
    /// left alone, so their reflogs record only changes.
    ///
    /// # Errors
    /// A bad name, ref errors reading the current values.
    pub fn mirror(
        &mut self,
        remote: &str,
        world: &str,
        heads: Option<&Heads>,
        message: &str,
    ) -> Result<&mut Self, WorldRefError> {
        let space = Space::Tracking(remote);
        for (role, want) in [
            (Role::Head, heads.map(|h| h.head)),
            (Role::Checkpoint, heads.and_then(|h| h.checkpoint)),
            (Role::Lineage, heads.and_then(|h| h.lineage)),
        ] {
            let name = ref_name(space, role, world)?;
            if self.store.refs().read(&name)? != want {
                self.txn.update(&name, want, Expected::Any, message);
            }
        }
        Ok(self)
    }

    /// Moves everything, or nothing.
    ///
    /// # Errors
    /// [`WorldRefError::Exists`] or [`WorldRefError::Moved`] when a head is not what its
    /// move expected (nothing moved); other ref errors as [`Transaction::commit`].
    pub fn commit(self) -> Result<(), WorldRefError> {
        let Self { txn, heads, .. } = self;
        txn.commit().map_err(|e| match e {
            RefError::Stale { name, actual, .. } => {
                match heads.into_iter().find(|h| h.name == name) {
                    Some(h) if h.expected == Expected::Absent => WorldRefError::Exists(h.world),
                    Some(h) => WorldRefError::Moved {
                        world: h.world,
                        name,
                        expected: h.expected,
                        actual,
                    },
                    // Only heads have expectations; keep the ref error for anything else.
                    None => WorldRefError::Ref(RefError::Stale {
                        name,
                        expected: Expected::Any,
                        actual,
                    }),
                }
            }
            other => WorldRefError::Ref(other),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Checks

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checks {
    /// Lineage refs checked.
    pub lineage: u64,
    /// Problems: `(object, location, message)`.
    pub problems: Vec<(Option<ObjectId>, String, String)>,
    /// Harmless findings.
    pub notes: Vec<String>,
}

/// Checks what the store's fsck cannot know: every lineage ref (local or tracking) names a
/// `value` holding a lineage whose fork point is an entry of the recorded height, its chain
/// of parents are lineages too, and its world exists. Reads one small object per lineage
/// link and one entry header each, never a history.
///
/// # Errors
/// Ref errors listing the refs.
pub fn check(store: &Store) -> Result<Checks, RefError> {
    let mut c = Checks::default();
    let all = store.refs().list("refs/")?;
    for (name, id) in &all {
        let Some((space, Role::Lineage, world)) = parse(name) else {
            continue;
        };
        c.lineage += 1;
        let head = ref_name(space, Role::Head, world)
            .ok()
            .and_then(|h| all.iter().find(|(n, _)| *n == h));
        if head.is_none() {
            c.notes.push(format!(
                "{name}: its world has no head (a lineage left behind by a deleted world)"
            ));
        }
        let mut next = Some(*id);
        let mut depth = 0u64;
        while let Some(lid) = next {
            depth += 1;
            let l = match crate::world::lineage::Lineage::read(store, &lid) {
                Ok(l) => l,
                Err(e) => {
                    c.problems
                        .push((Some(lid), name.to_string(), e.to_string()));
                    break;
                }
            };
            match read_entry(store, &l.at) {
                Ok(e) if e.height == l.height => {}
                Ok(e) => c.problems.push((
                    Some(lid),
                    name.to_string(),
                    format!(
                        "the lineage says its fork point {} has height {}, it has {}",
                        l.at, l.height, e.height
                    ),
                )),
                // Only the world's own fork point must be in the store: those of the
                // lineages it came from are history of other worlds.
                Err(_) if depth > 1 => {}
                Err(e) => c.problems.push((
                    Some(lid),
                    name.to_string(),
                    format!("its fork point {} is not a journal entry here: {e}", l.at),
                )),
            }
            next = l.parent;
        }
    }
    Ok(c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (space, role, world, text) in [
            (Space::Local, Role::Head, "w", "refs/worlds/w"),
            (Space::Local, Role::Checkpoint, "w", "refs/checkpoints/w"),
            (Space::Local, Role::Lineage, "a/b", "refs/lineage/a/b"),
            (
                Space::Tracking("o"),
                Role::Head,
                "w",
                "refs/remotes/o/worlds/w",
            ),
            (
                Space::Tracking("o"),
                Role::Checkpoint,
                "w",
                "refs/remotes/o/checkpoints/w",
            ),
            (
                Space::Tracking("o"),
                Role::Lineage,
                "w",
                "refs/remotes/o/lineage/w",
            ),
        ] {
            let n = ref_name(space, role, world).unwrap();
            assert_eq!(n.as_str(), text);
            assert_eq!(parse(&n), Some((space, role, world)));
        }
        for other in [
            "refs/heads/main",
            "refs/worlds",
            "refs/remotes/o/heads/x",
            "refs/x/y",
        ] {
            assert_eq!(parse(&RefName::new(other).unwrap()), None, "{other}");
        }
        let err = ref_name(Space::Local, Role::Head, "a b").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid world name `a b`"),
            "{err}"
        );
        assert!(matches!(
            WorldError::from(err),
            WorldError::Input(InputError::WorldName { name, .. }) if name == "a b"
        ));
    }
}
