//! Checking a bundle completely, and applying one to a store: objects, then refs.

use super::{BundleReader, Header, RefRole, ref_role};
use crate::kernel::replay::read_snapshot;
use crate::object::{Kind, ObjectId};
use crate::progress::Progress;
use crate::store::Store;
use crate::store::refs::RefName;
use crate::transfer::{
    Checked, Closure, TransferError, WriteOptions, WriteReport, check_incoming, write_checked,
};
use crate::world::lineage::Lineage;
use crate::world::refs::{self as world_refs, Heads, Move, Moves, Role, Space};

/// What [`verify`] checked.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The objects checked (ids, kinds, counts).
    pub checked: Checked,
    /// Prerequisites that could not be checked because no store was given. A bundle with
    /// any is not verified.
    pub unchecked_prerequisites: Vec<ObjectId>,
}

/// Checks a bundle completely without storing anything: the header (when it was opened),
/// that `store` holds every prerequisite, the layout and both checksums, every object
/// ([`check_incoming`]: id, kind, encoding, structure), that the objects plus the store (or,
/// without a store, the objects alone) hold every link, and that each ref names an object of
/// the bundle (an entry for a world, a snapshot for a checkpoint, a value for a lineage) or a
/// prerequisite.
///
/// Without a store, prerequisites cannot be checked: they are listed in the report and
/// links leaving the bundle are not checked.
///
/// # Errors
/// [`TransferError::MissingPrerequisites`] before reading any object; the first problem
/// found otherwise.
pub fn verify(
    bundle: &BundleReader,
    store: Option<&Store>,
    progress: &dyn Progress,
) -> Result<VerifyReport, TransferError> {
    let h = bundle.header();
    let closure = match store {
        Some(s) => {
            check_prerequisites(s, h)?;
            Closure::Store(s)
        }
        None if h.prerequisites.is_empty() => Closure::SelfContained,
        None => Closure::Unchecked,
    };
    let checked = check_incoming(bundle, closure, progress)?;
    check_refs(h, &checked, store)?;
    Ok(VerifyReport {
        checked,
        unchecked_prerequisites: if store.is_some() {
            Vec::new()
        } else {
            h.prerequisites.clone()
        },
    })
}

fn check_prerequisites(store: &Store, h: &Header) -> Result<(), TransferError> {
    let missing: Vec<ObjectId> = h
        .prerequisites
        .iter()
        .filter(|p| !store.contains(p))
        .copied()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(TransferError::MissingPrerequisites { missing })
    }
}

/// Each ref names a bundled object of the right kind, or a prerequisite.
fn check_refs(h: &Header, checked: &Checked, store: Option<&Store>) -> Result<(), TransferError> {
    for (id, name) in &h.refs {
        let kind = match checked.kind(id) {
            Some(k) => Some(k),
            None if h.prerequisites.contains(id) => match store {
                Some(s) => Some(s.header(id)?.0),
                None => None,
            },
            None => {
                return Err(TransferError::RefTarget {
                    name: name.clone(),
                    id: *id,
                });
            }
        };
        let want = match ref_role(name) {
            Some(RefRole::World(_)) => Kind::Entry,
            Some(RefRole::Checkpoint(_)) => Kind::Snapshot,
            Some(RefRole::Lineage(_)) => Kind::Value,
            None => {
                return Err(TransferError::Unbundlable(name.clone()));
            }
        };
        if let Some(k) = kind
            && k != want
        {
            return Err(TransferError::RefKind {
                name: name.clone(),
                id: *id,
                kind: k,
                want,
            });
        }
    }
    Ok(())
}

/// How [`unbundle`] behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnbundleOptions {
    /// Move world refs even when the bundle's head does not descend from the current one.
    pub force: bool,
    /// Batching of the writes.
    pub write: WriteOptions,
}

/// How a ref changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefChange {
    /// It did not exist.
    Created,
    /// It moved to a descendant of its value.
    FastForward,
    /// It moved to a head that does not descend from its value (`force`).
    Forced,
    /// A checkpoint moved to the snapshot of its world's new head, or a lineage to the
    /// lineage of the world that replaced it.
    Updated,
    /// It already had the bundle's value.
    Unchanged,
    /// A world kept its value, which descends from the bundle's: the store is ahead.
    Ahead,
}

impl RefChange {
    /// A word for the change.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::FastForward => "fast-forward",
            Self::Forced => "forced",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Ahead => "kept (the store is ahead)",
        }
    }
}

/// One ref [`unbundle`] considered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    /// The ref.
    pub name: RefName,
    /// Its value before.
    pub old: Option<ObjectId>,
    /// Its value now.
    pub new: ObjectId,
    /// What happened.
    pub change: RefChange,
}

/// What [`unbundle`] did.
#[derive(Clone, Debug)]
pub struct UnbundleReport {
    /// The objects checked.
    pub checked: Checked,
    /// What was stored.
    pub write: WriteReport,
    /// The refs, in the bundle's order.
    pub refs: Vec<RefUpdate>,
    /// Checkpoints not set, and why.
    pub skipped: Vec<(RefName, String)>,
}

/// Applies a bundle to `store`: checks everything as [`verify`] does (so nothing is stored
/// from a bundle that fails), stores the objects, then moves the refs of every world in one
/// transaction. A missing world is created; an existing one moves only if the bundle's head
/// descends from its current head, unless `opts.force`. A world whose head already descends
/// from the bundle's is left as it is ([`RefChange::Ahead`]); a diverged world is an error
/// and no ref moves. A checkpoint is set only if it is a snapshot of its world's (new) head.
/// A lineage comes with a world that is created or replaced; a world that fast-forwards keeps
/// its own.
///
/// # Errors
/// [`TransferError::MissingPrerequisites`] and every problem [`verify`] reports (nothing is
/// stored); [`TransferError::NotFastForward`] or a lineage that is not one (the objects are
/// stored, no ref moved); [`TransferError::WorldRefs`] for a concurrent update of a world
/// (nothing moved); ref errors.
pub fn unbundle(
    store: &Store,
    bundle: &BundleReader,
    opts: &UnbundleOptions,
    progress: &dyn Progress,
) -> Result<UnbundleReport, TransferError> {
    let h = bundle.header();
    check_prerequisites(store, h)?;
    let checked = check_incoming(bundle, Closure::Store(store), progress)?;
    check_refs(h, &checked, Some(store))?;
    let write = write_checked(store, bundle, &checked, &opts.write, progress)?;

    let message = format!("unbundle {}", bundle.path().display());
    let mut report = UnbundleReport {
        checked,
        write,
        refs: Vec::new(),
        skipped: Vec::new(),
    };
    let mut moves = Moves::new(store);
    let mut later: Vec<RefUpdate> = Vec::new();
    for (head, name) in &h.refs {
        let Some(RefRole::World(w)) = ref_role(name) else {
            continue;
        };
        let get = |role: Role| -> Result<Option<ObjectId>, TransferError> {
            Ok(h.get(world_refs::ref_name(Space::Local, role, w)?.as_str()))
        };
        let (cp, lineage) = (get(Role::Checkpoint)?, get(Role::Lineage)?);
        let current = store.refs().read(name)?;
        let mut how = Move::of(store, current, *head)?;
        let change = match how {
            Move::Create => RefChange::Created,
            Move::Same => RefChange::Unchanged,
            Move::FastForward => RefChange::FastForward,
            Move::Behind | Move::Diverged if opts.force => {
                how = Move::Diverged;
                RefChange::Forced
            }
            Move::Behind => RefChange::Ahead,
            Move::Diverged => {
                return Err(TransferError::NotFastForward {
                    name: name.clone(),
                    old: current.unwrap_or(*head),
                    new: *head,
                });
            }
        };
        report.refs.push(RefUpdate {
            name: name.clone(),
            old: current,
            new: *head,
            change,
        });
        // The checkpoint: only a snapshot of the world's new head, and not for a world that
        // is ahead (its own checkpoint stays).
        let checkpoint = match cp {
            Some(sid) => {
                let cp_name = world_refs::ref_name(Space::Local, Role::Checkpoint, w)?;
                let skip = if change == RefChange::Ahead {
                    Some("the world is ahead of the bundle".to_owned())
                } else {
                    match read_snapshot(store, &sid) {
                        Ok(s) if s.head == *head => None,
                        Ok(s) => Some(format!(
                            "its snapshot is of {}, not of the world's head {head}",
                            s.head
                        )),
                        Err(e) => Some(e.to_string()),
                    }
                };
                if let Some(why) = skip {
                    report.skipped.push((cp_name, why));
                    None
                } else {
                    let old = store.refs().read(&cp_name)?;
                    later.push(RefUpdate {
                        name: cp_name,
                        old,
                        new: sid,
                        change: changed(old, sid),
                    });
                    Some(sid)
                }
            }
            None => None,
        };
        let lineage_name = world_refs::ref_name(Space::Local, Role::Lineage, w)?;
        if let Some(lid) = lineage {
            Lineage::read(store, &lid).map_err(|e| TransferError::Rejected {
                id: lid,
                at: None,
                problem: format!("{lineage_name}: {e}"),
            })?;
            if matches!(how, Move::Create | Move::Diverged) {
                let old = store.refs().read(&lineage_name)?;
                later.push(RefUpdate {
                    name: lineage_name.clone(),
                    old,
                    new: lid,
                    change: changed(old, lid),
                });
            } else if store.refs().read(&lineage_name)? != Some(lid) {
                report.skipped.push((
                    lineage_name,
                    "the world keeps its own lineage (it is not created or replaced)".to_owned(),
                ));
            }
        }
        let incoming = Heads {
            head: *head,
            checkpoint,
            lineage,
        };
        if matches!(how, Move::Behind) {
            continue;
        }
        if how == Move::Same {
            // Nothing moves but the checkpoint the bundle brings.
            if let Some(sid) = checkpoint {
                moves.checkpoint(Space::Local, w, sid, &message)?;
            }
            continue;
        }
        moves.adopt(Space::Local, w, current, &incoming, how, &message)?;
    }
    moves.commit()?;
    report.refs.extend(later);
    Ok(report)
}

/// How a checkpoint or lineage ref changes from `old` to `new`.
fn changed(old: Option<ObjectId>, new: ObjectId) -> RefChange {
    match old {
        Some(o) if o == new => RefChange::Unchanged,
        None => RefChange::Created,
        Some(_) => RefChange::Updated,
    }
}
