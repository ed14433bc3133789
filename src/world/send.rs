//! Appending ingress events in group commits: each commit acknowledged as soon as it is
//! durable, and a commit that meets another writer's rebased onto the new head.
//!
//! A world is one log. When another process appends between two of this writer's commits,
//! the group not yet committed was computed on a head that is no longer the world's. It is
//! applied again on the new head and committed there: the two writers' events interleave,
//! and nothing acknowledged to either is lost or duplicated.

use std::time::Duration;

use crate::kernel::error::WorldError;
use crate::kernel::machine::{Applied, EventIn, Input};
use crate::kernel::replay::{read_entry, replay};
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::refs::{RefError, RefName};
use crate::world::World;
use crate::world::hosts::{Live, Scratch};
use crate::world::idempotency::{Ids, Lookup};
use crate::world::refs::world_ref;
use crate::world::turn::{self, Turn};

/// How many times one group is rebased onto another writer's commits before the send gives
/// up with [`WorldError::Moved`].
pub const MAX_REBASES: u32 = 64;

/// How many times one commit waits for another writer's ref lock before it gives up with
/// the lock error (waits of 1 ms doubling up to 25 ms: about ten seconds in all).
pub const MAX_LOCK_WAITS: u32 = 420;

/// Catching up, at most this many of the other writers' entries are held decoded at once
/// (a handful in unit tests, so that they reach the ids-only part cheaply).
const KEEP_DECODED: usize = if cfg!(test) { 8 } else { 10_000 };

/// After this many waits for a ref lock (about a third of a second), the send says it waits.
const SAY_WAITING_AFTER: u32 = 18;

/// How long the `n`th wait for a ref lock lasts: 1 ms doubling up to 25 ms.
fn lock_backoff(n: u32) -> Duration {
    Duration::from_millis((1u64 << n.min(5)).min(25))
}

/// Options of [`World::send`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOptions {
    /// Commit (one pack, one fsync, one ref move) after this many ingress events.
    pub commit_events: u64,
    /// ... or once this many bytes are pending.
    pub commit_bytes: u64,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            commit_events: 65_536,
            commit_bytes: 64 << 20,
        }
    }
}

/// What [`World::send`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendSummary {
    /// Ingress events appended.
    pub events: u64,
    /// Events not appended because the world already holds them: their idempotency key
    /// names the same event within the window (`world::idempotency`).
    pub duplicates: u64,
    /// The height of the last of those.
    pub last_duplicate: Option<u64>,
    /// Entries appended in all.
    pub entries: u64,
    /// Derived events.
    pub derived: u64,
    /// Faults.
    pub faults: u64,
    /// Group commits made.
    pub commits: u64,
    /// Acknowledgements made: the commits, and groups of events the world already held,
    /// which needed none.
    pub acks: u64,
    /// How many times a group was applied again on another writer's newer head.
    pub rebases: u64,
    /// The new head.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
}

/// One group commit made durable: what [`World::send_acked`] acknowledges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The acknowledgement's number in this send, from 1.
    pub commit: u64,
    /// Ingress events of this send durable so far (the first `events` events given are),
    /// counting those the world already held.
    pub events: u64,
    /// How many of those the world already held (by their idempotency key): not appended
    /// again.
    pub duplicates: u64,
    /// The height of the commit's first entry (one more than `last_height` when the commit
    /// appended nothing: every event of it was already held).
    pub first_height: u64,
    /// The height of its last entry: the world's head.
    pub last_height: u64,
    /// The head.
    pub head: ObjectId,
}

/// Counts of a group not yet committed.
#[derive(Default)]
struct Group {
    /// Every event given, those already held included.
    events: Vec<EventIn>,
    /// How many of them the world already held.
    duplicates: u64,
    last_duplicate: Option<u64>,
    entries: u64,
    derived: u64,
    faults: u64,
    /// The height of the head the group was applied on.
    base: u64,
}

impl Group {
    fn add(&mut self, c: &Applied) {
        self.entries += c.entries;
        self.derived += c.derived;
        self.faults += c.faults;
    }
}

impl<'s> World<'s> {
    /// Whether this is a view ([`World::view`]), which never commits.
    fn is_view(&self) -> bool {
        self.committed == ObjectId::from_bytes([0; 32])
    }

    /// Appends ingress events, committing in groups; at the end writes a checkpoint. Calls
    /// `progress` with the number of events made durable so far.
    ///
    /// # Errors
    /// As [`World::send_acked`]. Events committed before an error stay appended.
    pub fn send(
        &mut self,
        events: impl IntoIterator<Item = EventIn>,
        opts: &SendOptions,
        progress: &dyn Progress,
    ) -> Result<SendSummary, WorldError> {
        self.send_acked(events, opts, progress, &mut |_| {})
    }

    /// [`World::send`], calling `ack` after each group commit is durable: the events it
    /// names are part of the world whatever happens next, and a caller that resumes sends
    /// the events after them. A commit that finds the world moved by another writer is
    /// applied again on the new head and retried (up to [`MAX_REBASES`] times per group).
    ///
    /// # Errors
    /// Store and ref errors; [`WorldError::Moved`] if the world kept moving under every
    /// retry. The events acknowledged before an error stay appended; no other event does.
    pub fn send_acked(
        &mut self,
        events: impl IntoIterator<Item = EventIn>,
        opts: &SendOptions,
        progress: &dyn Progress,
        ack: &mut dyn FnMut(&Durable),
    ) -> Result<SendSummary, WorldError> {
        let mut live = Live::new(self.store);
        let mut s = SendSummary {
            events: 0,
            duplicates: 0,
            last_duplicate: None,
            entries: 0,
            derived: 0,
            faults: 0,
            commits: 0,
            acks: 0,
            rebases: 0,
            head: self.head(),
            height: self.height(),
        };
        let mut group = Group {
            base: self.height(),
            ..Group::default()
        };
        // The writer turn, once taken for the current group (`Some(None)`: tried, not had).
        let mut turn: Option<Option<Turn>> = None;
        for ev in events {
            self.begin_group(&mut turn, &mut group, progress)?;
            self.offer(&ev, &mut live, &mut group)?;
            group.events.push(ev);
            if group.events.len() as u64 >= opts.commit_events
                || live.pending_bytes() >= opts.commit_bytes
            {
                self.commit_group(&mut live, &mut group, false, &mut s, progress, ack)?;
                turn = None;
            }
        }
        // The checkpoint goes into the last group's pack: one pack and one fsync per command.
        self.begin_group(&mut turn, &mut group, progress)?;
        self.commit_group(&mut live, &mut group, true, &mut s, progress, ack)?;
        drop(turn);
        s.head = self.head();
        s.height = self.height();
        Ok(s)
    }

    /// Before the first event of a group: takes the world's writer turn (see
    /// [`turn`](super::turn)) and catches up with what other writers committed since this
    /// writer's last commit. Nothing is uncommitted then, so the machine is at
    /// `self.committed`.
    fn begin_group(
        &mut self,
        turn: &mut Option<Option<Turn>>,
        group: &mut Group,
        progress: &dyn Progress,
    ) -> Result<(), WorldError> {
        if turn.is_some() || self.is_view() {
            return Ok(());
        }
        let name = world_ref(&self.name)?;
        // Most of the catching up happens before the turn, beside the holder's work; what
        // it commits meanwhile is caught up with under the turn.
        self.catch_up_to_ref(&name, group)?;
        let mut said = false;
        let what = format!("another writer of world `{}`", self.name);
        *turn = Some(turn::take(
            self.store,
            &name,
            self.store.refs().lock_wait(),
            &mut || {
                if !said {
                    said = true;
                    progress.waiting(Some(&what));
                }
            },
        ));
        if said {
            progress.waiting(None);
        }
        self.catch_up_to_ref(&name, group)
    }

    /// [`World::catch_up`] to the head the world's ref names now, if it moved.
    fn catch_up_to_ref(&mut self, name: &RefName, group: &mut Group) -> Result<(), WorldError> {
        let head = self
            .store
            .refs()
            .read(name)?
            .ok_or_else(|| WorldError::NoWorld(self.name.clone()))?;
        if head != self.committed {
            self.catch_up(head)?;
            group.base = self.height();
        }
        Ok(())
    }

    /// Brings the machine from `self.committed` to `head`, another writer's commits:
    /// replays their entries from here when `head` descends from it, else opens the world
    /// again (its history was replaced).
    fn catch_up(&mut self, head: ObjectId) -> Result<(), WorldError> {
        let store = self.store;
        let mut tail = Vec::new();
        let mut cur = head;
        let descends = loop {
            let e = read_entry(store, &cur)?;
            if e.height <= self.height() {
                break e.height == self.height() && cur == self.committed;
            }
            let prev = e.prev;
            // A long tail keeps only ids beyond the newest entries, and reads the rest again.
            tail.push((cur, (tail.len() < KEEP_DECODED).then_some(e)));
            match prev {
                Some(p) => cur = p,
                None => break false,
            }
        };
        if descends {
            tail.reverse();
            let mut scratch = Scratch::new(store);
            replay(
                &mut self.machine,
                &mut scratch,
                store,
                Box::new(tail.into_iter().map(|(id, e)| match e {
                    Some(e) => Ok((id, e)),
                    None => read_entry(store, &id).map(|e| (id, e)),
                })),
                false,
                |_| {},
            )?;
            self.committed = head;
        } else {
            let ids = self.ids.take();
            *self = World::open(store, &self.name)?;
            self.ids = ids;
        }
        Ok(())
    }

    /// Appends `ev` to `group` unless the world already holds it (by its idempotency key).
    fn offer(
        &mut self,
        ev: &EventIn,
        live: &mut Live<'s>,
        group: &mut Group,
    ) -> Result<(), WorldError> {
        if ev.id.is_some() {
            let ids = match &mut self.ids {
                Some(ids) => {
                    ids.catch_up(self.store, self.committed)?;
                    ids
                }
                None => self
                    .ids
                    .insert(Ids::open(self.store, &self.name, self.committed)?),
            };
            ids.save_if_walked(self.store, &self.name);
            if let Lookup::Held(height) = ids.lookup(ev, self.machine.height())? {
                group.duplicates += 1;
                group.last_duplicate = Some(height);
                return Ok(());
            }
        }
        let height = self.machine.height() + 1;
        let c = self.machine.apply(Input::Event(ev.clone()), live)?;
        group.add(&c);
        if let Some(ids) = &mut self.ids {
            ids.appended(ev, height);
        }
        Ok(())
    }

    /// Commits `group` (with a checkpoint of the new head if `checkpoint`), rebasing it onto
    /// another writer's commits as often as needed; then counts and acknowledges it.
    fn commit_group(
        &mut self,
        live: &mut Live<'s>,
        group: &mut Group,
        checkpoint: bool,
        s: &mut SendSummary,
        progress: &dyn Progress,
        ack: &mut dyn FnMut(&Durable),
    ) -> Result<(), WorldError> {
        let mut rebases = 0;
        let mut waits = 0;
        // Nothing to make durable: every event of the group was already held (and no
        // checkpoint is due for earlier commits).
        let idle = group.entries == 0 && !(checkpoint && s.entries > 0);
        if !idle {
            loop {
                let cp = if checkpoint {
                    Some(self.machine.snapshot(live)?)
                } else {
                    None
                };
                match self.commit(live, cp) {
                    Ok(()) => {
                        let height = self.height();
                        if let Some(ids) = &mut self.ids {
                            ids.committed(self.committed, height);
                        }
                        break;
                    }
                    Err(WorldError::Moved(_)) if rebases < MAX_REBASES && !self.is_view() => {
                        // Another process appended: start again from the world as it is now.
                        rebases += 1;
                        let ids = self.ids.take();
                        *self = World::open(self.store, &self.name)?;
                        self.ids = ids;
                        *live = Live::new(self.store);
                        let events = std::mem::take(&mut group.events);
                        *group = Group {
                            base: self.height(),
                            ..Group::default()
                        };
                        for ev in &events {
                            self.offer(ev, live, group)?;
                        }
                        group.events = events;
                    }
                    Err(WorldError::Ref(RefError::Locked { .. })) if waits < MAX_LOCK_WAITS => {
                        // Another writer is moving the world's refs right now: wait for it, then
                        // try again (and rebase if it appended).
                        std::thread::sleep(lock_backoff(waits));
                        waits += 1;
                        if waits == SAY_WAITING_AFTER {
                            progress.waiting(Some(&format!(
                                "another process moving world `{}`",
                                self.name
                            )));
                        }
                    }
                    Err(e) => {
                        if waits >= SAY_WAITING_AFTER {
                            progress.waiting(None);
                        }
                        return Err(e);
                    }
                }
            }
        }
        if waits >= SAY_WAITING_AFTER {
            progress.waiting(None);
        }
        s.rebases += u64::from(rebases);
        let n = group.events.len() as u64;
        if n == 0 && group.entries == 0 {
            return Ok(());
        }
        s.events += n - group.duplicates;
        s.duplicates += group.duplicates;
        s.last_duplicate = group.last_duplicate.or(s.last_duplicate);
        s.entries += group.entries;
        s.derived += group.derived;
        s.faults += group.faults;
        if !idle {
            s.commits += 1;
        }
        s.acks += 1;
        progress.advance(n);
        ack(&Durable {
            commit: s.acks,
            events: s.events + s.duplicates,
            duplicates: s.duplicates,
            first_height: group.base + 1,
            last_height: self.height(),
            head: self.head(),
        });
        *group = Group {
            base: self.height(),
            ..Group::default()
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SendOptions;
    use crate::codec::json::parse_json;
    use crate::progress::NoProgress;
    use crate::store::{STORE_DIR, Store};
    use crate::world::verify::{VerifyFrom, verify};
    use crate::world::{CreateOptions, World, create_world};

    #[test]
    fn a_writer_catches_up_with_more_entries_than_it_holds_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join(STORE_DIR)).unwrap();
        let e = crate::examples::example("counter").unwrap();
        let opts = CreateOptions::default();
        create_world(&store, "w", e.nodes().unwrap(), &e.wasm(), &opts).unwrap();
        let mut behind = World::open(&store, "w").unwrap();
        let mut ahead = World::open(&store, "w").unwrap();
        let tick = |w: &World<'_>| {
            w.parse_event(
                "demo/CounterEvent@1",
                &parse_json("\"Tick\"").unwrap(),
                None,
            )
            .unwrap()
        };
        let n = 3 * super::KEEP_DECODED + 5;
        let ticks: Vec<_> = (0..n).map(|_| tick(&ahead)).collect();
        let every = SendOptions {
            commit_events: 7,
            ..SendOptions::default()
        };
        ahead.send(ticks, &every, &NoProgress).unwrap();
        let s = behind
            .send(vec![tick(&behind)], &SendOptions::default(), &NoProgress)
            .unwrap();
        assert_eq!((s.events, s.rebases, s.height), (1, 0, n as u64 + 1));
        assert_eq!(World::open(&store, "w").unwrap().head(), behind.head());
        // Verify re-executes everything: the step `behind` recorded after catching up was
        // computed on the right state.
        verify(&store, "w", &VerifyFrom::Genesis, &NoProgress).unwrap();
    }
}
