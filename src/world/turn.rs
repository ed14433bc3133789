//! A world's writer turn: an OS lock that the writers of one world hold in turn while they compute and commit a group, so that concurrent writers alternate instead of starving one another.
//!
//! Without it, writers are optimistic: each computes a group on the head it knows and moves
//! the world's ref by compare-and-swap, and a writer that loses rebases. A writer that
//! commits often then starves one whose rebase takes longer than the other's commit
//! interval. With the turn, a writer takes it before the first event of a group, catches up
//! with whatever others committed (from where it is, not from a snapshot), and lets go once
//! the group is durable; the compare-and-swap stays the only thing correctness rests on, so
//! a writer that cannot get the turn in time (or an older `aos` that knows nothing of it)
//! still commits correctly, only optimistically.
//!
//! The lock is `flock` on `locks/turn/<ref name with / as %>` in the store (`%` is not a ref
//! name character, so the mapping is one to one), taken through a gate `locks/gate/<same>`
//! that makes waiters take turns: plain files that stay, whose locks the kernel releases when
//! their holder dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::store::Store;
use crate::store::refs::RefName;

/// The directory of turn files in the store.
pub const LOCKS_DIR: &str = "locks";

/// A held turn, released when dropped.
#[derive(Debug)]
pub(crate) struct Turn {
    _file: File,
}

/// The file of ref `name` in `locks/<what>/`.
fn path(store: &Store, what: &str, name: &RefName) -> PathBuf {
    store
        .root()
        .join(LOCKS_DIR)
        .join(what)
        .join(name.as_str().replace('/', "%"))
}

/// Opens (creating it and its directory if need be) the lock file `p`.
fn open(p: &Path) -> Option<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
    };
    open()
        .or_else(|_| {
            std::fs::create_dir_all(crate::store::fs::parent(p))?;
            open()
        })
        .ok()
}

/// How long a wait lasts before the writer says it is waiting.
const QUIET_WAIT: Duration = Duration::from_millis(300);

/// Locks `file` exclusively, polling until `deadline`; whether it got it. Calls `waiting`
/// once the wait has lasted [`QUIET_WAIT`].
fn lock_until(file: &File, deadline: Instant, waiting: &mut dyn FnMut()) -> bool {
    let start = Instant::now();
    let mut said = false;
    let mut pause = Duration::from_micros(100);
    loop {
        match file.try_lock() {
            Ok(()) => return true,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                if !said && start.elapsed() >= QUIET_WAIT {
                    said = true;
                    waiting();
                }
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(2));
            }
            Err(_) => return false,
        }
    }
}

/// Takes the turn of ref `name`, waiting up to `wait` for its holder. `None` when it could
/// not be had: the holder kept it too long, or the files cannot be opened (a read-only
/// store); the caller then proceeds optimistically.
///
/// Fairness comes from a gate in front of the turn (`locks/gate/`): a writer takes the gate,
/// then the turn, then lets go of the gate. A holder that lets go of the turn and wants it
/// again must pass the gate first, which a waiting writer holds until it has the turn.
/// `waiting` is called (at most once per lock) when a wait lasts more than a moment.
pub(crate) fn take(
    store: &Store,
    name: &RefName,
    wait: Duration,
    waiting: &mut dyn FnMut(),
) -> Option<Turn> {
    let deadline = Instant::now() + wait;
    let gate = open(&path(store, "gate", name))?;
    let turn = open(&path(store, "turn", name))?;
    // Without the gate in time, the turn is still worth a try: the gate only orders waiters.
    let _gate = lock_until(&gate, deadline, waiting).then_some(gate);
    lock_until(&turn, deadline, waiting).then_some(Turn { _file: turn })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_turn_is_held_until_dropped_and_names_map_one_to_one() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join(".aos")).unwrap();
        let a = RefName::new("refs/worlds/a/b").unwrap();
        let held = take(&store, &a, Duration::ZERO, &mut || {}).expect("free turn");
        assert!(
            take(&store, &a, Duration::from_millis(20), &mut || {}).is_none(),
            "held by another handle"
        );
        let other = RefName::new("refs/worlds/a").unwrap();
        assert!(take(&store, &other, Duration::ZERO, &mut || {}).is_some());
        drop(held);
        assert!(take(&store, &a, Duration::ZERO, &mut || {}).is_some());
        assert!(store.root().join("locks/turn/refs%worlds%a%b").is_file());
    }
}
