//! Ancestry in a journal: the entry at a height below a head, and whether one entry is an
//! ancestor of another. Journals are chains, so both walk back from the higher entry only.

use crate::kernel::error::{InputError, WorldError};
use crate::kernel::replay::read_entry;
use crate::object::ObjectId;
use crate::store::Store;

/// The entry at `height` in the history ending at `head`, walking back and checking that
/// each predecessor's height is one less.
///
/// # Errors
/// [`WorldError::Input`] if `height` is above `head`'s; [`WorldError::Chain`] for a broken
/// chain; store errors.
pub fn entry_at(store: &Store, head: &ObjectId, height: u64) -> Result<ObjectId, WorldError> {
    let mut cur = *head;
    let mut e = read_entry(store, &cur)?;
    if e.height < height {
        return Err(InputError::BeyondHead {
            height,
            head: e.height,
        }
        .into());
    }
    while e.height > height {
        let prev = e.prev.ok_or_else(|| WorldError::Chain {
            height: e.height,
            message: format!("entry {cur} has no predecessor"),
        })?;
        let p = read_entry(store, &prev)?;
        if p.height.checked_add(1) != Some(e.height) {
            return Err(WorldError::Chain {
                height: e.height,
                message: format!("the predecessor of {cur} has height {}", p.height),
            });
        }
        cur = prev;
        e = p;
    }
    Ok(cur)
}

/// Whether the entry `ancestor` is `descendant` or one of its predecessors: walks back from
/// `descendant` to `ancestor`'s height (journals are chains) and compares ids.
///
/// # Errors
/// A missing entry or a broken chain.
pub fn is_ancestor(
    store: &Store,
    ancestor: &ObjectId,
    descendant: &ObjectId,
) -> Result<bool, WorldError> {
    let target = read_entry(store, ancestor)?.height;
    if read_entry(store, descendant)?.height < target {
        return Ok(false);
    }
    Ok(entry_at(store, descendant, target)? == *ancestor)
}
