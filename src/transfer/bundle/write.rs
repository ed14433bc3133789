//! Writing a bundle: the refs of some worlds and every object they reach that the receiver
//! lacks, walked and written on two threads.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc;

use super::{BUF, Header, io_err, ref_role, usize_of};
use crate::kernel::replay::read_entry;
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::fs::{create_temp, parent, sync_dir};
use crate::store::pack::{ENTRY_HEADER_LEN, PACK_MAGIC, VERSION};
use crate::store::refs::RefName;
use crate::store::{Store, Stored};
use crate::transfer::{
    ChunkSender, HaveSet, Outgoing, TransferError, WalkSummary, is_ancestor, verify_stored, walk,
};
use crate::world::refs::{self as world_refs, Role, Space};

/// Writes a bundle to `out`, hashing as it goes.
struct BundleWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Absolute offset of `buf[0]`.
    at: u64,
    pack_start: u64,
    file_hash: blake3::Hasher,
    pack_hash: blake3::Hasher,
    count: u64,
}

impl<W: Write> BundleWriter<W> {
    fn new(out: W, header: &[u8]) -> io::Result<Self> {
        let mut w = Self {
            out,
            buf: Vec::with_capacity(BUF + (BUF >> 4)),
            at: 0,
            pack_start: header.len() as u64,
            file_hash: blake3::Hasher::new(),
            pack_hash: blake3::Hasher::new(),
            count: 0,
        };
        w.put(header)?;
        w.put(PACK_MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() >= BUF {
            self.flush()?;
            return self.hash_and_write(bytes);
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.hash_and_write(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    fn hash_and_write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file_hash.update(bytes);
        let end = self.at + bytes.len() as u64;
        if end > self.pack_start {
            let from = usize_of(self.pack_start.saturating_sub(self.at));
            self.pack_hash.update(&bytes[from..]);
        }
        self.out.write_all(bytes)?;
        self.at = end;
        Ok(())
    }

    fn add(&mut self, o: &Outgoing<'_>) -> io::Result<()> {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        h[..32].copy_from_slice(o.id.as_bytes());
        h[32] = o.kind.code();
        h[33] = o.encoding as u8;
        h[34..42].copy_from_slice(&o.size.to_le_bytes());
        h[42..50].copy_from_slice(&(o.stored.len() as u64).to_le_bytes());
        self.put(&h)?;
        self.put(o.stored)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the count, the pack checksum and the bundle checksum; returns the output and
    /// the bundle's length.
    fn finish(mut self) -> io::Result<(W, u64)> {
        let count = self.count.to_le_bytes();
        self.put(&count)?;
        self.flush()?;
        let pack_sum = *self.pack_hash.finalize().as_bytes();
        self.file_hash.update(&pack_sum);
        let file_sum = *self.file_hash.finalize().as_bytes();
        self.out.write_all(&pack_sum)?;
        self.out.write_all(&file_sum)?;
        self.out.flush()?;
        Ok((self.out, self.at + 64))
    }
}

/// What to bundle.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// The worlds, by name.
    pub worlds: Vec<String>,
    /// Journal entries the receiver has (say the heads an earlier bundle carried): they
    /// become prerequisites and nothing they reach is included. Each must be an ancestor of
    /// (or equal to) a bundled world's head.
    pub since: Vec<ObjectId>,
}

/// What [`create`] wrote.
#[derive(Clone, Debug)]
pub struct CreateReport {
    /// The header written.
    pub header: Header,
    /// Objects written.
    pub objects: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// Bytes of the bundle file.
    pub bytes: u64,
}

/// Writes a bundle of `opts.worlds` to `path`: for each world its ref `refs/worlds/NAME`
/// and, when the world's checkpoint is a snapshot of its head, `refs/checkpoints/NAME` (so
/// the receiver opens the world without replaying), and its lineage `refs/lineage/NAME` if
/// it has one; every object those reach, except what the `since` entries reach. The file is written under a temporary name, synced, and renamed
/// into place.
///
/// # Errors
/// [`TransferError::NoWorld`] for an unknown world, [`TransferError::SinceNotEntry`] and
/// [`TransferError::SinceNotAncestor`] for a `since` id that is not an entry of an ancestor
/// of a bundled head; store errors; I/O errors writing the file (nothing is left behind).
pub fn create(
    store: &Store,
    path: &Path,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<CreateReport, TransferError> {
    if opts.worlds.is_empty() {
        return Err(TransferError::NoWorlds);
    }
    let mut refs: Vec<(ObjectId, RefName)> = Vec::new();
    let mut heads: Vec<ObjectId> = Vec::new();
    let mut roots: Vec<ObjectId> = Vec::new();
    for w in &opts.worlds {
        let name = world_refs::ref_name(Space::Local, Role::Head, w)
            .ok()
            .filter(|n| ref_role(n).is_some())
            .ok_or_else(|| TransferError::WorldName(w.clone()))?;
        if refs.iter().any(|(_, n)| *n == name) {
            continue;
        }
        let world = world_refs::read(store, Space::Local, w)?
            .ok_or_else(|| TransferError::NoWorld(w.clone()))?;
        refs.push((world.head, name));
        heads.push(world.head);
        for (role, id) in [
            (Role::Head, Some(world.head)),
            (Role::Checkpoint, world.checkpoint),
            (Role::Lineage, world.lineage),
        ] {
            let Some(id) = id else { continue };
            if role != Role::Head {
                refs.push((id, world_refs::ref_name(Space::Local, role, w)?));
            }
            roots.push(id);
        }
    }
    let mut have = HaveSet::new();
    let mut heights: Vec<(u64, ObjectId)> = Vec::with_capacity(heads.len());
    for h in &heads {
        heights.push((read_entry(store, h)?.height, *h));
    }
    for s in &opts.since {
        let sh = read_entry(store, s)
            .map_err(|e| TransferError::SinceNotEntry {
                since: *s,
                source: Box::new(e),
            })?
            .height;
        // The nearest heads first: the world `s` belongs to is usually the cheapest to walk.
        let mut candidates: Vec<&(u64, ObjectId)> =
            heights.iter().filter(|(h, _)| *h >= sh).collect();
        candidates.sort_by_key(|(h, _)| h - sh);
        let mut found = false;
        for (_, h) in candidates {
            if is_ancestor(store, s, h)? {
                found = true;
                break;
            }
        }
        if !found {
            return Err(TransferError::SinceNotAncestor { since: *s });
        }
        have.add_entry_boundary(store, s, progress)?;
    }
    let header = Header::new(opts.since.clone(), refs)?;

    let dir = parent(path);
    let (file, tmp) = create_temp(dir, "bundle").map_err(io_err(dir))?;
    let written = (|| {
        let (summary, file, bytes) =
            write_objects(store, file, &tmp, &header, &roots, &have, progress)?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(dir).map_err(io_err(dir))?;
        Ok::<_, TransferError>((summary, bytes))
    })();
    match written {
        Ok((summary, bytes)) => Ok(CreateReport {
            header,
            objects: summary.objects,
            payload_bytes: summary.payload_bytes,
            bytes,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Objects passed from the walk to the writer at once (by stored bytes).
const WRITE_CHUNK: usize = 1 << 20;

/// Writes the header, every object the walk from `roots` finds, and the trailer to `file`.
/// The walk (reading objects and their links) and the writing (verifying each object's id,
/// hashing, writing) run on two threads.
fn write_objects(
    store: &Store,
    file: File,
    tmp: &Path,
    header: &Header,
    roots: &[ObjectId],
    have: &HaveSet,
    progress: &dyn Progress,
) -> Result<(WalkSummary, File, u64), TransferError> {
    let (tx, rx) = mpsc::sync_channel::<Vec<(ObjectId, Stored)>>(4);
    let header_bytes = header.render();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(File, u64), TransferError> {
            let mut w = BundleWriter::new(file, &header_bytes).map_err(io_err(tmp))?;
            for chunk in rx {
                for (id, s) in chunk {
                    // The walk left the ids to check here.
                    verify_stored(&id, &s)?;
                    w.add(&Outgoing {
                        id,
                        kind: s.kind,
                        encoding: s.encoding,
                        size: s.size,
                        stored: &s.bytes,
                    })
                    .map_err(io_err(tmp))?;
                }
            }
            w.finish().map_err(io_err(tmp))
        });
        let mut chunks = ChunkSender::new(tx, WRITE_CHUNK);
        let walked = walk(
            store,
            roots,
            &|id| have.contains(id),
            progress,
            false,
            &mut |id, s| {
                let bytes = s.bytes.len() + ENTRY_HEADER_LEN;
                if chunks.push((id, s), bytes) {
                    Ok(())
                } else {
                    Err(TransferError::Internal("the bundle writer stopped".into()))
                }
            },
        );
        if walked.is_ok() {
            chunks.flush();
        }
        let stopped = chunks.stopped;
        drop(chunks);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(TransferError::Internal("the bundle writer panicked".into())));
        match (walked, written) {
            (Ok(summary), Ok((file, bytes))) => Ok((summary, file, bytes)),
            // The writer stopped the walk: its error is the one to report.
            (Err(_), Err(e)) if stopped => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}
