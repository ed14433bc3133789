//! Offline verification: replaying a journal's segments between snapshot markers in parallel
//! and checking every entry and snapshot bit for bit.
//!
//! Each segment starts under the program in force at its start: the manifest its snapshot
//! records, or the genesis's; a manifest entry inside it switches programs as it replays. The
//! segments share the world's programs, so each manifest's program is built once.

use std::sync::Arc;
use std::time::Duration;

use crate::kernel::entry::{Body, Entry};
use crate::kernel::error::{InputError, WorldError};
use crate::kernel::machine::Machine;
use crate::kernel::program::Programs;
use crate::kernel::replay::{ReplayStats, read_entry, read_snapshot, replay};
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::Store;
use crate::world::hosts::Scratch;
use crate::world::load::{Trust, load_programs};
use crate::world::world_ref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Decoded entries a verification holds in memory at once. When the walk back from the head is
/// this far ahead of the replays, the walking thread replays a segment itself before it reads
/// on, so memory stays flat however long the history is. A single segment longer than this
/// (a world with rare snapshots) keeps only ids and reads its entries again when it replays.
const VERIFY_BUFFER_ENTRIES: usize = 40_000;

type SegmentResult = Result<ReplayStats, WorldError>;

enum SegmentStart {
    Genesis,
    Snapshot(ObjectId),
}

enum SegmentEntries {
    Decoded(Vec<(ObjectId, Entry)>),
    Ids(Vec<ObjectId>),
}

/// A segment as the walk back collects it, newest entry first.
#[derive(Default)]
struct Segment {
    ids: Vec<ObjectId>,
    /// The decoded entries, parallel to `ids`, until the segment grows too long to keep them.
    decoded: Vec<Entry>,
    too_long: bool,
    /// The height of the last (oldest) entry pushed.
    oldest: Option<u64>,
}

impl Segment {
    fn push(&mut self, id: ObjectId, e: Entry) {
        self.ids.push(id);
        self.oldest = Some(e.height);
        if self.too_long {
            return;
        }
        if self.decoded.len() >= VERIFY_BUFFER_ENTRIES {
            self.too_long = true;
            self.decoded = Vec::new();
        } else {
            self.decoded.push(e);
        }
    }

    /// The height of its oldest entry (`u64::MAX` if empty).
    fn first_height(&self) -> u64 {
        self.oldest.unwrap_or(u64::MAX)
    }

    /// Its entries, oldest first.
    fn into_entries(mut self) -> SegmentEntries {
        self.ids.reverse();
        if self.too_long {
            return SegmentEntries::Ids(self.ids);
        }
        self.decoded.reverse();
        SegmentEntries::Decoded(self.ids.into_iter().zip(self.decoded).collect())
    }
}

fn replay_segment(
    store: &Store,
    programs: &Arc<Programs>,
    start: &SegmentStart,
    entries: SegmentEntries,
    progress: &dyn Progress,
) -> SegmentResult {
    let mut scratch = Scratch::verifying(store);
    let mut machine = match start {
        SegmentStart::Genesis => Machine::genesis(Arc::clone(programs)),
        SegmentStart::Snapshot(sid) => {
            Machine::from_snapshot(Arc::clone(programs), &read_snapshot(store, sid)?, &scratch)?
        }
    };
    let recorded: Box<dyn Iterator<Item = Result<(ObjectId, Entry), WorldError>> + '_> =
        match entries {
            SegmentEntries::Decoded(v) => Box::new(v.into_iter().map(Ok)),
            SegmentEntries::Ids(ids) => Box::new(
                ids.into_iter()
                    .map(move |id| read_entry(store, &id).map(|e| (id, e))),
            ),
        };
    let mut reported = 0;
    let stats = replay(&mut machine, &mut scratch, store, recorded, false, |s| {
        if s.entries - reported >= 1024 {
            progress.advance(s.entries - reported);
            reported = s.entries;
        }
    })?;
    progress.advance(stats.entries - reported);
    Ok(stats)
}

/// Where `verify` starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyFrom {
    /// From the genesis entry.
    Genesis,
    /// From a snapshot the caller trusts.
    Snapshot(ObjectId),
}

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The head verified.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
    /// Height the replay started after.
    pub from_height: u64,
    /// What was replayed.
    pub stats: ReplayStats,
}

/// Re-executes world `name` offline and checks that it reproduces its journal bit for bit:
/// every entry (and so every recorded state digest, fault and derived event) and every
/// snapshot. Progress counts entries.
///
/// # Errors
/// [`WorldError::Diverged`] naming the first divergence; chain, store and control-plane
/// errors for damaged objects.
pub fn verify(
    store: &Store,
    name: &str,
    from: &VerifyFrom,
    progress: &dyn Progress,
) -> Result<VerifyReport, WorldError> {
    let head = store
        .refs()
        .read(&world_ref(name)?)?
        .ok_or_else(|| WorldError::NoWorld(name.to_owned()))?;
    verify_head(store, head, from, progress)
}

/// [`verify`] for the history ending at entry `head` (which no ref needs to name yet: a
/// received world is verified before its ref moves).
///
/// # Errors
/// As [`verify`].
pub fn verify_head(
    store: &Store,
    head: ObjectId,
    from: &VerifyFrom,
    progress: &dyn Progress,
) -> Result<VerifyReport, WorldError> {
    let anchor = match from {
        VerifyFrom::Genesis => None,
        VerifyFrom::Snapshot(id) => Some((*id, read_snapshot(store, id)?)),
    };
    let head_height = read_entry(store, &head)?.height;
    progress.start(
        "verify",
        Some(head_height.saturating_sub(anchor.as_ref().map_or(0, |(_, s)| s.height))),
    );
    // Walking back from the head, each snapshot marker closes a segment that can be replayed
    // on its own: from the snapshot the marker links (which the previous segment recomputes
    // and so proves) to the next marker (whose snapshot it recomputes) or the head. Segments
    // replay on the rayon pool while the walk goes on.
    let programs: OnceLock<Arc<Programs>> = OnceLock::new();
    let results: Mutex<Vec<(u64, SegmentResult)>> = Mutex::new(Vec::new());
    let buffered = AtomicUsize::new(0);
    let mut segments = 0u64;
    let mut from_height = 0;
    rayon::scope(|sc| -> Result<(), WorldError> {
        let spawn = |start: SegmentStart, seg: Segment| {
            let first = seg.first_height();
            let entries = seg.into_entries();
            let n = match &entries {
                SegmentEntries::Decoded(v) => v.len(),
                SegmentEntries::Ids(_) => 0,
            };
            buffered.fetch_add(n, Ordering::Relaxed);
            let programs = programs.get().map(Arc::clone);
            let (results, buffered) = (&results, &buffered);
            sc.spawn(move |_| {
                let r = match programs {
                    Some(p) => replay_segment(store, &p, &start, entries, progress),
                    None => Err(WorldError::Internal(
                        "a segment was replayed before its control plane was loaded",
                    )),
                };
                buffered.fetch_sub(n, Ordering::Relaxed);
                if let Ok(mut g) = results.lock() {
                    g.push((first, r));
                }
            });
            // Backpressure: while too much is buffered, help replaying instead of reading on.
            while buffered.load(Ordering::Relaxed) > VERIFY_BUFFER_ENTRIES {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        };
        let program_of = |genesis: &ObjectId| -> Result<(), WorldError> {
            match programs.get() {
                Some(p) if p.genesis_id() != *genesis => Err(WorldError::corrupt(
                    *genesis,
                    "snapshots of this journal name another genesis",
                )),
                Some(_) => Ok(()),
                None => {
                    let p = Arc::new(load_programs(store, genesis, Trust::Nothing)?);
                    let _ = programs.set(p);
                    Ok(())
                }
            }
        };
        let mut seg = Segment::default();
        let mut cur = head;
        let mut expected: Option<u64> = None;
        loop {
            if let Some((sid, s)) = &anchor
                && cur == s.head
            {
                program_of(&s.genesis)?;
                from_height = s.height;
                segments += 1;
                spawn(SegmentStart::Snapshot(*sid), seg);
                return Ok(());
            }
            let e = read_entry(store, &cur)?;
            if let Some(h) = expected
                && e.height != h
            {
                return Err(WorldError::Chain {
                    height: h,
                    message: format!("entry {cur} says it has height {}", e.height),
                });
            }
            if let Body::Genesis(_) = &e.body {
                if let Some((snapshot, _)) = &anchor {
                    return Err(InputError::ForeignSnapshot {
                        snapshot: *snapshot,
                    }
                    .into());
                }
                program_of(&cur)?;
                segments += 1;
                spawn(SegmentStart::Genesis, seg);
                return Ok(());
            }
            let (height, prev) = (e.height, e.prev);
            if let Body::Snapshot { snapshot } = &e.body
                && anchor.is_none()
            {
                // A marker ends the segment after it and begins the one before (each replays
                // it: the later one from the snapshot it links).
                let snapshot = *snapshot;
                program_of(&read_snapshot(store, &snapshot)?.genesis)?;
                seg.push(cur, e.clone());
                segments += 1;
                spawn(SegmentStart::Snapshot(snapshot), std::mem::take(&mut seg));
            }
            seg.push(cur, e);
            let Some(prev) = prev else {
                return Err(WorldError::Chain {
                    height,
                    message: format!("entry {cur} has no predecessor"),
                });
            };
            expected = Some(height.saturating_sub(1));
            cur = prev;
        }
    })?;
    let mut results = results
        .into_inner()
        .map_err(|_| WorldError::Internal("a verify task panicked"))?;
    results.sort_by_key(|(first, _)| *first);
    let mut stats = ReplayStats::default();
    for (_, r) in results {
        let s = r?;
        stats.entries += s.entries;
        stats.snapshots += s.snapshots;
        stats.ingress += s.ingress;
        stats.derived += s.derived;
        stats.faults += s.faults;
        stats.manifests += s.manifests;
    }
    // Each marker between two segments was replayed by both.
    let again = segments.saturating_sub(1);
    stats.entries -= again.min(stats.entries);
    stats.snapshots -= again.min(stats.snapshots);
    progress.finish();
    let height = head_height;
    Ok(VerifyReport {
        head,
        height,
        from_height,
        stats,
    })
}
