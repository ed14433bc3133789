//! Pack files: many objects in one file, with a sorted index for lookups.
//!
//! A pack `objects/pack/pack-<checksum>.pack` is published together with its index
//! `pack-<checksum>.idx`; readers use a pack only once its index exists, and the index is
//! renamed into place last, so a crash mid-write leaves no visible partial pack.
//!
//! Pack layout (integers little-endian):
//!
//! | field | size |
//! | --- | --- |
//! | magic `aosP` | 4 |
//! | version, 1 | 4 (u32) |
//! | entries, each: id (32), kind (1), encoding (1), size (u64), stored length (u64), stored bytes | 50 + n |
//! | entry count | 8 (u64) |
//! | checksum: BLAKE3 of every preceding byte | 32 |
//!
//! Index layout:
//!
//! | field | size |
//! | --- | --- |
//! | magic `aosI` | 4 |
//! | version, 1 | 4 (u32) |
//! | entry count n | 8 (u64) |
//! | fan-out: for each byte value b, the number of ids whose first byte is ≤ b | 256 × 4 (u32) |
//! | ids, ascending, distinct | n × 32 |
//! | offsets of the entries in the pack, in id order | n × 8 (u64) |
//! | the pack's checksum | 32 |
//! | checksum: BLAKE3 of every preceding byte of the index | 32 |

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::format::{self, Encoding};
use super::fs::{create_temp, publish_new, sync_dir};
use crate::object::{ID_LEN, IdPrefix, Kind, ObjectId};

/// Magic bytes of a pack file.
pub const PACK_MAGIC: &[u8; 4] = b"aosP";
/// Magic bytes of a pack index.
pub const IDX_MAGIC: &[u8; 4] = b"aosI";
/// Format version of packs and indexes.
pub const VERSION: u32 = 1;
/// Length of the pack header.
pub const PACK_HEADER_LEN: u64 = 8;
/// Length of an entry header inside a pack.
pub const ENTRY_HEADER_LEN: usize = 50;
/// Length of the pack trailer (count and checksum).
pub const PACK_TRAILER_LEN: u64 = 40;

/// Bytes `read_at` reads in its first call: an entry header and a small payload.
const READ_AHEAD: usize = 1024;
const IDX_HEADER_LEN: usize = 16;
const FANOUT_LEN: usize = 256 * 4;

/// Streams objects into a new pack file.
pub struct PackWriter {
    out: BufWriter<File>,
    tmp: PathBuf,
    hasher: blake3::Hasher,
    offset: u64,
    entries: Vec<(ObjectId, u64)>,
}

impl Drop for PackWriter {
    /// A pack that is never finished (an error while writing its objects, a batch given up)
    /// leaves no temporary file behind. After a [`PackWriter::finish`] that published it, the
    /// file is gone already (`tmp` is then empty) and nothing is left to remove.
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A pack published by [`PackWriter::finish`].
#[derive(Clone, Debug)]
pub struct Published {
    /// Path of the `.pack` file.
    pub pack: PathBuf,
    /// Path of the `.idx` file.
    pub idx: PathBuf,
    /// Number of objects in it.
    pub count: u64,
    /// Size of the pack file in bytes.
    pub bytes: u64,
}

impl PackWriter {
    /// Starts a pack in a temporary file in `tmp_dir`.
    ///
    /// # Errors
    /// The I/O error creating the file.
    pub fn new(tmp_dir: &Path) -> io::Result<Self> {
        let (file, tmp) = create_temp(tmp_dir, "pack")?;
        let mut w = Self {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp,
            hasher: blake3::Hasher::new(),
            offset: 0,
            entries: Vec::new(),
        };
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(PACK_MAGIC);
        header[4..].copy_from_slice(&VERSION.to_le_bytes());
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends one stored object. The caller guarantees ids are distinct and correct.
    ///
    /// # Errors
    /// The I/O error writing it.
    pub fn add(
        &mut self,
        id: &ObjectId,
        kind: Kind,
        encoding: Encoding,
        size: u64,
        stored: &[u8],
    ) -> io::Result<()> {
        let mut h = [0u8; ENTRY_HEADER_LEN];
        h[..32].copy_from_slice(id.as_bytes());
        h[32] = kind.code();
        h[33] = encoding as u8;
        h[34..42].copy_from_slice(&size.to_le_bytes());
        h[42..50].copy_from_slice(&(stored.len() as u64).to_le_bytes());
        self.entries.push((*id, self.offset));
        self.put(&h)?;
        self.put(stored)
    }

    /// Number of objects added so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no object was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes written so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.offset
    }

    /// Finishes the pack: writes the trailer and the index, syncs both, and publishes them in
    /// `pack_dir` (pack first, index last), then syncs the directory. An empty pack is
    /// discarded and `None` returned.
    ///
    /// # Errors
    /// Any I/O error; temporary files are removed and nothing is published.
    pub fn finish(mut self, pack_dir: &Path, tmp_dir: &Path) -> io::Result<Option<Published>> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let result = self.finish_inner(pack_dir, tmp_dir);
        if result.is_ok() {
            // Publishing moved the file into place (or removed it, when the pack existed).
            self.tmp = PathBuf::new();
        }
        result.map(Some)
    }

    fn finish_inner(&mut self, pack_dir: &Path, tmp_dir: &Path) -> io::Result<Published> {
        let count = self.entries.len() as u64;
        self.put(&count.to_le_bytes())?;
        let checksum = *self.hasher.finalize().as_bytes();
        self.out.write_all(&checksum)?;
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        let bytes = self.offset + 32;

        self.entries.sort_unstable_by_key(|e| e.0);
        let idx = build_index(&self.entries, &checksum);
        let (mut idx_file, idx_tmp) = create_temp(tmp_dir, "idx")?;
        let written = idx_file.write_all(&idx).and_then(|()| idx_file.sync_all());
        drop(idx_file);
        if let Err(e) = written {
            let _ = fs::remove_file(&idx_tmp);
            return Err(e);
        }

        let stem = format!("pack-{}", ObjectId::from_bytes(checksum).to_hex());
        let pack = pack_dir.join(format!("{stem}.pack"));
        let idx_path = pack_dir.join(format!("{stem}.idx"));
        // A pack with this checksum has exactly these bytes, so an existing one is as good.
        if let Err(e) = publish_new(&self.tmp, &pack) {
            let _ = fs::remove_file(&idx_tmp);
            return Err(e);
        }
        publish_new(&idx_tmp, &idx_path)?;
        sync_dir(pack_dir)?;
        Ok(Published {
            pack,
            idx: idx_path,
            count,
            bytes,
        })
    }
}

fn build_index(sorted: &[(ObjectId, u64)], pack_checksum: &[u8; 32]) -> Vec<u8> {
    let n = sorted.len();
    let mut idx = Vec::with_capacity(IDX_HEADER_LEN + FANOUT_LEN + n * 40 + 64);
    idx.extend_from_slice(IDX_MAGIC);
    idx.extend_from_slice(&VERSION.to_le_bytes());
    idx.extend_from_slice(&(n as u64).to_le_bytes());
    let mut fanout = [0u32; 256];
    for (id, _) in sorted {
        fanout[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut acc = 0u32;
    for f in fanout {
        acc += f;
        idx.extend_from_slice(&acc.to_le_bytes());
    }
    for (id, _) in sorted {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, off) in sorted {
        idx.extend_from_slice(&off.to_le_bytes());
    }
    idx.extend_from_slice(pack_checksum);
    let sum = blake3::hash(&idx);
    idx.extend_from_slice(sum.as_bytes());
    idx
}

/// One entry read from a pack.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The id recorded in the entry header.
    pub id: ObjectId,
    /// The object's kind.
    pub kind: Kind,
    /// How the payload is stored.
    pub encoding: Encoding,
    /// The payload size.
    pub size: u64,
    /// The stored bytes.
    pub stored: Vec<u8>,
}

/// An open pack. Its index's header and fan-out table are in memory from the start; the id
/// and offset tables are read on demand (`pread` of one fan-out bucket per lookup) until the
/// pack has served [`LAZY_LOOKUPS`] lookups, and then loaded whole.
#[derive(Debug)]
pub struct Pack {
    pack_path: PathBuf,
    file: File,
    pack_len: u64,
    idx_path: PathBuf,
    idx_file: File,
    count: usize,
    fanout: Vec<u32>,
    checksum: [u8; 32],
    data: OnceLock<Vec<u8>>,
    lookups: AtomicU32,
}

/// The most bytes a [`ReadWindow`] holds.
pub const WINDOW_BYTES: u64 = 256 << 10;

/// A stretch of one pack file kept between reads by [`Pack::read_index_windowed`].
#[derive(Clone, Debug, Default)]
pub struct ReadWindow {
    pack: Option<PathBuf>,
    start: u64,
    bytes: Vec<u8>,
}

/// Lookups a pack answers by reading its index piecemeal before it loads the index whole.
pub const LAZY_LOOKUPS: u32 = 64;

impl Pack {
    /// Opens the pack whose index is at `idx_path`, checking the index's structure and
    /// checksum and that it belongs to the pack file beside it.
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn open(idx_path: &Path) -> Result<Self, String> {
        Self::open_with(idx_path, true)
    }

    /// Opens a pack for reading, checking the index's structure (header, length, fan-out
    /// bounds) and that it belongs to the pack, but not its checksum or the order of its ids,
    /// and without reading its id and offset tables: opening a large store costs little, and
    /// every object read through a pack is verified against its id anyway. `fsck` opens packs
    /// with [`Pack::open`].
    ///
    /// # Errors
    /// A message naming the file and what is wrong.
    pub fn open_for_reading(idx_path: &Path) -> Result<Self, String> {
        Self::open_with(idx_path, false)
    }

    fn open_with(idx_path: &Path, full: bool) -> Result<Self, String> {
        let at = |e: String| format!("{}: {e}", idx_path.display());
        let idx_file = File::open(idx_path).map_err(|e| at(e.to_string()))?;
        let (count, head, data) = if full {
            let idx = fs::read(idx_path).map_err(|e| at(e.to_string()))?;
            let count = check_index(&idx).map_err(at)?;
            (
                count,
                idx[..IDX_HEADER_LEN + FANOUT_LEN].to_vec(),
                Some(idx),
            )
        } else {
            let len = idx_file.metadata().map_err(|e| at(e.to_string()))?.len();
            let mut head = vec![0u8; IDX_HEADER_LEN + FANOUT_LEN];
            if len < (IDX_HEADER_LEN + FANOUT_LEN + 64) as u64 {
                return Err(at("index too short".into()));
            }
            idx_file
                .read_exact_at(&mut head, 0)
                .map_err(|e| at(e.to_string()))?;
            let count = check_index_head(&head, len).map_err(at)?;
            (count, head, None)
        };
        let fanout: Vec<u32> = (0..256)
            .map(|b| format::read_u32(&head, IDX_HEADER_LEN + b * 4).unwrap_or(0))
            .collect();
        let mut checksum = [0u8; 32];
        idx_file
            .read_exact_at(
                &mut checksum,
                (IDX_HEADER_LEN + FANOUT_LEN + count * 40) as u64,
            )
            .map_err(|e| at(e.to_string()))?;
        let pack_path = idx_path.with_extension("pack");
        let file = File::open(&pack_path).map_err(|e| format!("{}: {e}", pack_path.display()))?;
        let pack_len = file
            .metadata()
            .map_err(|e| format!("{}: {e}", pack_path.display()))?
            .len();
        let p = Self {
            pack_path,
            file,
            pack_len,
            idx_path: idx_path.to_owned(),
            idx_file,
            count,
            fanout,
            checksum,
            data: OnceLock::new(),
            lookups: AtomicU32::new(0),
        };
        if let Some(d) = data {
            let _ = p.data.set(d);
        }
        // The pack's trailer must carry the checksum the index names.
        let mut trailer = [0u8; 40];
        if p.pack_len < PACK_HEADER_LEN + PACK_TRAILER_LEN
            || p.file
                .read_exact_at(&mut trailer, p.pack_len - PACK_TRAILER_LEN)
                .is_err()
        {
            return Err(format!("{}: pack too short", p.pack_path.display()));
        }
        if trailer[8..] != *p.pack_checksum() || format::read_u64(&trailer, 0) != Some(count as u64)
        {
            return Err(format!(
                "{}: trailer does not match its index",
                p.pack_path.display()
            ));
        }
        Ok(p)
    }

    /// The whole index, loading it on first use. If it cannot be read (say gc removed it),
    /// a zeroed table stands in: lookups then find nothing and reads fail their id check.
    fn data(&self) -> &[u8] {
        self.data.get_or_init(|| {
            let expect = IDX_HEADER_LEN + FANOUT_LEN + self.count * 40 + 64;
            match fs::read(&self.idx_path) {
                Ok(d) if d.len() == expect => d,
                _ => vec![0; expect],
            }
        })
    }

    /// Reads `len` bytes of the index at `at` without loading it (zeros if that fails).
    fn read_idx(&self, at: usize, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        if self.idx_file.read_exact_at(&mut buf, at as u64).is_err() {
            buf.fill(0);
        }
        buf
    }

    /// Path of the `.pack` file.
    #[must_use]
    pub fn pack_path(&self) -> &Path {
        &self.pack_path
    }

    /// Number of objects in the pack.
    #[must_use]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the pack holds no objects.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The checksum of the pack file, as recorded in the index.
    #[must_use]
    pub fn pack_checksum(&self) -> &[u8] {
        &self.checksum
    }

    fn fanout(&self, b: usize) -> usize {
        self.fanout[b] as usize
    }

    /// The `i`-th id in sorted order.
    #[must_use]
    pub fn id_at(&self, i: usize) -> ObjectId {
        let at = IDX_HEADER_LEN + FANOUT_LEN + i * ID_LEN;
        let mut raw = [0u8; ID_LEN];
        match self.data.get() {
            Some(d) => raw.copy_from_slice(&d[at..at + ID_LEN]),
            None => raw.copy_from_slice(&self.read_idx(at, ID_LEN)),
        }
        ObjectId::from_bytes(raw)
    }

    /// The pack offset of the `i`-th id's entry.
    #[must_use]
    pub fn offset_at(&self, i: usize) -> u64 {
        let at = IDX_HEADER_LEN + FANOUT_LEN + self.count * ID_LEN + i * 8;
        match self.data.get() {
            Some(d) => format::read_u64(d, at).unwrap_or(0),
            None => format::read_u64(&self.read_idx(at, 8), 0).unwrap_or(0),
        }
    }

    fn id_slice(&self, i: usize) -> &[u8] {
        let at = IDX_HEADER_LEN + FANOUT_LEN + i * ID_LEN;
        &self.data()[at..at + ID_LEN]
    }

    /// The position of `id` in the index.
    #[must_use]
    pub fn find(&self, id: &ObjectId) -> Option<usize> {
        let first = usize::from(id.as_bytes()[0]);
        let (lo, hi) = (
            if first == 0 {
                0
            } else {
                self.fanout(first - 1)
            },
            self.fanout(first),
        );
        if lo >= hi {
            return None;
        }
        let key = id.as_bytes().as_slice();
        if self.data.get().is_none() && self.lookups.fetch_add(1, Ordering::Relaxed) < LAZY_LOOKUPS
        {
            // One read of this id's fan-out bucket.
            let ids = self.read_idx(
                IDX_HEADER_LEN + FANOUT_LEN + lo * ID_LEN,
                (hi - lo) * ID_LEN,
            );
            return ids
                .chunks_exact(ID_LEN)
                .collect::<Vec<_>>()
                .binary_search(&key)
                .ok()
                .map(|j| lo + j);
        }
        // Compare the first eight bytes as a number; ids sharing them are rare.
        let key_word = word(key);
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let probe = self.id_slice(mid);
            match word(probe).cmp(&key_word).then_with(|| probe.cmp(key)) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Every id in the pack starting with `prefix`.
    #[must_use]
    pub fn find_prefix(&self, prefix: &IdPrefix) -> Vec<ObjectId> {
        let (lo_id, hi_id) = prefix.range();
        let lo = self.lower_bound(&lo_id);
        (lo..self.count)
            .map(|i| self.id_at(i))
            .take_while(|id| *id <= hi_id)
            .collect()
    }

    fn lower_bound(&self, id: &ObjectId) -> usize {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.id_slice(mid) < id.as_bytes().as_slice() {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Reads the entry at `offset`, checking its header against the pack's bounds.
    ///
    /// # Errors
    /// A message naming the pack and offset.
    pub fn read_at(&self, offset: u64) -> Result<Entry, String> {
        let here = || format!("{} at offset {offset}", self.pack_path.display());
        let end = self.pack_len - PACK_TRAILER_LEN;
        if offset < PACK_HEADER_LEN || offset + ENTRY_HEADER_LEN as u64 > end {
            return Err(format!("{}: entry header out of bounds", here()));
        }
        // Most objects are small: read the header and the first bytes after it at once, and
        // go back for the rest only when the payload is longer.
        let first = usize::try_from((end - offset).min(READ_AHEAD as u64)).map_err(|_| here())?;
        let mut buf = vec![0u8; first];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| format!("{}: {e}", here()))?;
        let header = EntryHeader::parse(&buf[..ENTRY_HEADER_LEN], &here)?;
        let stored_len = header.stored_len;
        let data_at = offset + ENTRY_HEADER_LEN as u64;
        if stored_len > end - data_at {
            return Err(format!(
                "{}: stored length {stored_len} runs past the end of the pack",
                here()
            ));
        }
        let stored_len = usize::try_from(stored_len).map_err(|_| here())?;
        let have = first - ENTRY_HEADER_LEN;
        let stored = if stored_len <= have {
            buf.truncate(ENTRY_HEADER_LEN + stored_len);
            buf.drain(..ENTRY_HEADER_LEN);
            buf
        } else {
            let mut stored = Vec::with_capacity(stored_len);
            stored.extend_from_slice(&buf[ENTRY_HEADER_LEN..]);
            stored.resize(stored_len, 0);
            self.file
                .read_exact_at(&mut stored[have..], data_at + have as u64)
                .map_err(|e| format!("{}: {e}", here()))?;
            stored
        };
        Ok(header.entry(stored))
    }

    /// Reads the entry for the `i`-th id, checking that the entry names that id.
    ///
    /// # Errors
    /// A message naming the pack, offset and problem.
    pub fn read_index(&self, i: usize) -> Result<Entry, String> {
        let id = self.id_at(i);
        let off = self.offset_at(i);
        let e = self.read_at(off)?;
        if e.id != id {
            return Err(format!(
                "{} at offset {off}: entry names {}, index says {id}",
                self.pack_path.display(),
                e.id
            ));
        }
        Ok(e)
    }

    /// Like [`Pack::read_index`], for a caller reading many entries that lie close together:
    /// the entry is served from `window` when the window holds it, and otherwise the window
    /// is refilled with up to [`WINDOW_BYTES`] of the file ending a little after the entry
    /// (a walk from a journal's head reads the pack backwards, so the entries before it come
    /// next). An entry larger than the window is read on its own.
    ///
    /// # Errors
    /// As [`Pack::read_index`].
    pub fn read_index_windowed(&self, i: usize, window: &mut ReadWindow) -> Result<Entry, String> {
        let id = self.id_at(i);
        let off = self.offset_at(i);
        let end = self.pack_len - PACK_TRAILER_LEN;
        let here = || format!("{} at offset {off}", self.pack_path.display());
        if off < PACK_HEADER_LEN || off + ENTRY_HEADER_LEN as u64 > end {
            return Err(format!("{}: entry header out of bounds", here()));
        }
        let holds = |w: &ReadWindow, from: u64, len: u64| {
            from >= w.start && from + len <= w.start + w.bytes.len() as u64
        };
        let mine = window.pack.as_deref() == Some(self.pack_path.as_path());
        if !mine || !holds(window, off, ENTRY_HEADER_LEN as u64) {
            let stop = (off + 4096).min(end);
            let start = stop.saturating_sub(WINDOW_BYTES).max(PACK_HEADER_LEN);
            let len = usize::try_from(stop - start).map_err(|_| here())?;
            window.bytes.resize(len, 0);
            window.pack = None;
            self.file
                .read_exact_at(&mut window.bytes, start)
                .map_err(|e| format!("{}: {e}", here()))?;
            window.pack = Some(self.pack_path.clone());
            window.start = start;
        }
        let at = usize::try_from(off - window.start).map_err(|_| here())?;
        let h = &window.bytes[at..at + ENTRY_HEADER_LEN];
        let stored_len = format::read_u64(h, 42).expect("fixed header");
        let data_at = off + ENTRY_HEADER_LEN as u64;
        if stored_len > end - data_at || !holds(window, data_at, stored_len) {
            // Too large for the window, or damaged: the plain read reads and reports it.
            return self.read_index(i);
        }
        let header = EntryHeader::parse(h, &here)?;
        let entry_id = header.id;
        if entry_id != id {
            return Err(format!(
                "{}: entry names {entry_id}, index says {id}",
                here()
            ));
        }
        let from = at + ENTRY_HEADER_LEN;
        let stored =
            window.bytes[from..from + usize::try_from(stored_len).map_err(|_| here())?].to_vec();
        Ok(header.entry(stored))
    }

    /// Reads only the kind of the `i`-th entry.
    ///
    /// # Errors
    /// A message naming the pack and offset.
    pub fn kind_at(&self, i: usize) -> Result<(Kind, u64), String> {
        let off = self.offset_at(i);
        let mut h = [0u8; ENTRY_HEADER_LEN];
        self.file
            .read_exact_at(&mut h, off)
            .map_err(|e| format!("{} at offset {off}: {e}", self.pack_path.display()))?;
        let kind = Kind::from_code(h[32]).ok_or_else(|| {
            format!(
                "{} at offset {off}: unknown kind code {}",
                self.pack_path.display(),
                h[32]
            )
        })?;
        Ok((kind, format::read_u64(&h, 34).expect("fixed header")))
    }

    /// Reads the whole pack once, sequentially, handing its entries to `on_chunk` in groups
    /// of about `chunk_bytes`, and checks on the way everything about the file itself: the
    /// header, that entries fill it back to back, the trailer count, the checksum, and that
    /// the entries are exactly those the index lists, at its offsets. Payloads are not
    /// decompressed here; the caller verifies them (in parallel, if it likes).
    ///
    /// # Errors
    /// A message naming the pack (and offset) for the first structural problem; entries
    /// handed out before it are still reported through `on_chunk`.
    pub fn scan(
        &self,
        chunk_bytes: usize,
        mut on_chunk: impl FnMut(Vec<(u64, Entry)>),
    ) -> Result<(), String> {
        use std::io::{BufReader, Read, Seek, SeekFrom};
        let here = |off: u64| format!("{} at offset {off}", self.pack_path.display());
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| format!("{}: {e}", self.pack_path.display()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| format!("{}: {e}", self.pack_path.display()))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut hasher = blake3::Hasher::new();
        let mut header = [0u8; 8];
        r.read_exact(&mut header)
            .map_err(|e| format!("{}: {e}", here(0)))?;
        hasher.update(&header);
        if &header[..4] != PACK_MAGIC || format::read_u32(&header, 4) != Some(VERSION) {
            return Err(format!("{}: bad pack header", here(0)));
        }
        let end = self.pack_len - PACK_TRAILER_LEN;
        let mut off = PACK_HEADER_LEN;
        let mut found: Vec<(ObjectId, u64)> = Vec::with_capacity(self.count);
        let mut pending: Vec<(u64, Entry)> = Vec::new();
        let mut pending_bytes = 0usize;
        let mut h = [0u8; ENTRY_HEADER_LEN];
        while off < end {
            if end - off < ENTRY_HEADER_LEN as u64 {
                on_chunk(pending);
                return Err(format!(
                    "{}: partial entry header before the trailer",
                    here(off)
                ));
            }
            r.read_exact(&mut h)
                .map_err(|e| format!("{}: {e}", here(off)))?;
            hasher.update(&h);
            let mut raw = [0u8; ID_LEN];
            raw.copy_from_slice(&h[..32]);
            let id = ObjectId::from_bytes(raw);
            let stored_len = format::read_u64(&h, 42).expect("fixed header");
            let data_at = off + ENTRY_HEADER_LEN as u64;
            if stored_len > end - data_at {
                on_chunk(pending);
                return Err(format!(
                    "{}: stored length {stored_len} runs past the end of the pack",
                    here(off)
                ));
            }
            let mut stored = vec![0u8; usize::try_from(stored_len).map_err(|_| here(off))?];
            r.read_exact(&mut stored)
                .map_err(|e| format!("{}: {e}", here(off)))?;
            hasher.update(&stored);
            found.push((id, off));
            match (Kind::from_code(h[32]), Encoding::from_byte(h[33])) {
                (Some(kind), Some(encoding)) => {
                    let size = format::read_u64(&h, 34).expect("fixed header");
                    pending_bytes += stored.len() + ENTRY_HEADER_LEN;
                    pending.push((
                        off,
                        Entry {
                            id,
                            kind,
                            encoding,
                            size,
                            stored,
                        },
                    ));
                }
                _ => {
                    on_chunk(pending);
                    return Err(format!(
                        "{}: unknown kind {} or encoding {}",
                        here(off),
                        h[32],
                        h[33]
                    ));
                }
            }
            if pending_bytes >= chunk_bytes {
                on_chunk(std::mem::take(&mut pending));
                pending_bytes = 0;
            }
            off = data_at + stored_len;
        }
        on_chunk(pending);
        let mut trailer = [0u8; 40];
        r.read_exact(&mut trailer)
            .map_err(|e| format!("{}: {e}", here(end)))?;
        hasher.update(&trailer[..8]);
        if format::read_u64(&trailer, 0) != Some(found.len() as u64) {
            return Err(format!(
                "{}: trailer count disagrees with the {} entries",
                here(end),
                found.len()
            ));
        }
        if hasher.finalize().as_bytes() != &trailer[8..] || trailer[8..] != *self.pack_checksum() {
            return Err(format!(
                "{}: checksum mismatch (file modified or truncated)",
                self.pack_path.display()
            ));
        }
        if found.len() != self.count {
            return Err(format!(
                "{}: holds {} entries, its index lists {}",
                self.pack_path.display(),
                found.len(),
                self.count
            ));
        }
        found.sort_unstable();
        for (i, (id, off)) in found.iter().enumerate() {
            if *id != self.id_at(i) || *off != self.offset_at(i) {
                return Err(format!(
                    "{}: entry {id} is not where the index says",
                    here(*off)
                ));
            }
        }
        Ok(())
    }
}

/// Checks an index's header (magic, version, count), its length `len` and its fan-out
/// bounds (everything lookups rely on not to go out of bounds); returns its entry count.
fn check_index_head(head: &[u8], len: u64) -> Result<usize, String> {
    if &head[..4] != IDX_MAGIC {
        return Err("bad index magic at offset 0".into());
    }
    let version = format::read_u32(head, 4).ok_or("index too short")?;
    if version != VERSION {
        return Err(format!("unsupported index version {version} at offset 4"));
    }
    let count = format::read_u64(head, 8).ok_or("index too short")?;
    let count = usize::try_from(count).map_err(|_| "entry count too large".to_owned())?;
    let expect_len = count
        .checked_mul(40)
        .and_then(|n| n.checked_add(IDX_HEADER_LEN + FANOUT_LEN + 64))
        .ok_or("entry count too large")?;
    if len != expect_len as u64 {
        return Err(format!(
            "index is {len} bytes, {count} entries need {expect_len}"
        ));
    }
    let mut prev_fan = 0usize;
    for b in 0..256usize {
        let fan = format::read_u32(head, IDX_HEADER_LEN + b * 4).ok_or("index too short")? as usize;
        if fan < prev_fan || fan > count {
            return Err(format!("fan-out entry {b} out of order"));
        }
        prev_fan = fan;
    }
    if prev_fan != count {
        return Err("fan-out does not end at the entry count".into());
    }
    Ok(count)
}

/// Checks an index's structure and checksum; returns its entry count.
fn check_index(idx: &[u8]) -> Result<usize, String> {
    if idx.len() < IDX_HEADER_LEN + FANOUT_LEN + 64 {
        return Err("index too short".into());
    }
    if &idx[..4] != IDX_MAGIC {
        return Err("bad index magic at offset 0".into());
    }
    let version = format::read_u32(idx, 4).expect("length checked");
    if version != VERSION {
        return Err(format!("unsupported index version {version} at offset 4"));
    }
    let count = format::read_u64(idx, 8).expect("length checked");
    let count = usize::try_from(count).map_err(|_| "entry count too large".to_owned())?;
    let expect_len = count
        .checked_mul(40)
        .and_then(|n| n.checked_add(IDX_HEADER_LEN + FANOUT_LEN + 64))
        .ok_or("entry count too large")?;
    if idx.len() != expect_len {
        return Err(format!(
            "index is {} bytes, {count} entries need {expect_len}",
            idx.len()
        ));
    }
    let body = &idx[..idx.len() - 32];
    if blake3::hash(body).as_bytes() != &idx[idx.len() - 32..] {
        return Err("index checksum mismatch".into());
    }
    // Fan-out must be non-decreasing, end at the count, and agree with the sorted ids.
    let ids = &idx[IDX_HEADER_LEN + FANOUT_LEN..IDX_HEADER_LEN + FANOUT_LEN + count * ID_LEN];
    let mut prev_fan = 0usize;
    let mut i = 0usize;
    for b in 0..256usize {
        let fan = format::read_u32(idx, IDX_HEADER_LEN + b * 4).expect("length checked") as usize;
        if fan < prev_fan || fan > count {
            return Err(format!("fan-out entry {b} out of order"));
        }
        while i < fan {
            if usize::from(ids[i * ID_LEN]) != b {
                return Err(format!("fan-out entry {b} disagrees with id {i}"));
            }
            i += 1;
        }
        prev_fan = fan;
    }
    if prev_fan != count {
        return Err("fan-out does not end at the entry count".into());
    }
    for w in 1..count {
        if ids[(w - 1) * ID_LEN..w * ID_LEN] >= ids[w * ID_LEN..(w + 1) * ID_LEN] {
            return Err(format!("ids not strictly ascending at entry {w}"));
        }
    }
    Ok(count)
}

/// The fields of a pack entry's header (§7).
struct EntryHeader {
    id: ObjectId,
    kind: Kind,
    encoding: Encoding,
    size: u64,
    stored_len: u64,
}

impl EntryHeader {
    /// The entry this header starts, holding `stored`.
    fn entry(self, stored: Vec<u8>) -> Entry {
        Entry {
            id: self.id,
            kind: self.kind,
            encoding: self.encoding,
            size: self.size,
            stored,
        }
    }

    /// Reads the [`ENTRY_HEADER_LEN`] bytes `h`; errors start with `here()`.
    fn parse(h: &[u8], here: &dyn Fn() -> String) -> Result<Self, String> {
        let mut raw = [0u8; ID_LEN];
        raw.copy_from_slice(&h[..32]);
        let kind = Kind::from_code(h[32])
            .ok_or_else(|| format!("{}: unknown kind code {}", here(), h[32]))?;
        let encoding = Encoding::from_byte(h[33])
            .ok_or_else(|| format!("{}: unknown encoding {}", here(), h[33]))?;
        Ok(Self {
            id: ObjectId::from_bytes(raw),
            kind,
            encoding,
            size: format::read_u64(h, 34).expect("fixed header"),
            stored_len: format::read_u64(h, 42).expect("fixed header"),
        })
    }
}

/// The first eight bytes of an id, big-endian, so numeric order is byte order.
fn word(id: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&id[..8]);
    u64::from_be_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::hash;

    /// Adds `payload` as a raw blob; returns its id.
    fn add_raw(w: &mut PackWriter, payload: &[u8]) -> ObjectId {
        let id = hash(Kind::Blob, payload);
        w.add(
            &id,
            Kind::Blob,
            Encoding::Raw,
            payload.len() as u64,
            payload,
        )
        .unwrap();
        id
    }

    #[test]
    fn an_unfinished_pack_leaves_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(tmp.path()).unwrap();
        add_raw(&mut w, &vec![7u8; 1 << 20]);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
        drop(w);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        // A finished one leaves only what it published.
        let packs = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(tmp.path()).unwrap();
        add_raw(&mut w, b"x");
        w.finish(packs.path(), tmp.path()).unwrap().unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(packs.path()).unwrap().count(), 2);
    }

    #[test]
    fn write_open_find_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(dir.path()).unwrap();
        let mut ids = Vec::new();
        for i in 0..500u32 {
            let payload = format!("object {i}").into_bytes();
            let id = add_raw(&mut w, &payload);
            ids.push((id, payload));
        }
        let published = w.finish(dir.path(), dir.path()).unwrap().unwrap();
        assert_eq!(published.count, 500);
        let pack = Pack::open(&published.idx).unwrap();
        let mut seen = 0;
        pack.scan(1 << 10, |chunk| seen += chunk.len()).unwrap();
        assert_eq!(seen, 500);
        for (id, payload) in &ids {
            let i = pack.find(id).unwrap();
            let e = pack.read_index(i).unwrap();
            assert_eq!(&e.stored, payload);
        }
        assert!(pack.find(&hash(Kind::Blob, b"absent")).is_none());
        let pre: IdPrefix = ids[0].0.to_hex()[..8].parse().unwrap();
        assert!(pack.find_prefix(&pre).contains(&ids[0].0));
        // Only the published files remain.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    fn pack_of(dir: &Path, n: u32, salt: &str) -> (Pack, Vec<ObjectId>) {
        let mut w = PackWriter::new(dir).unwrap();
        let mut ids = Vec::new();
        for i in 0..n {
            // Mostly small objects, and a few larger than a window.
            let payload = if i % 1000 == 7 {
                vec![i as u8; WINDOW_BYTES as usize + 100]
            } else {
                format!("{salt} {i} ")
                    .repeat((i % 50) as usize + 1)
                    .into_bytes()
            };
            let id = add_raw(&mut w, &payload);
            ids.push(id);
        }
        let p = w.finish(dir, dir).unwrap().unwrap();
        (Pack::open(&p.idx).unwrap(), ids)
    }

    #[test]
    fn windowed_reads_match_plain_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (a, a_ids) = pack_of(dir.path(), 3000, "a");
        let (b, b_ids) = pack_of(dir.path(), 500, "b");
        let mut window = ReadWindow::default();
        let n = a_ids.len();
        // Backwards (as a walk from a journal's head reads), forwards, scattered, and
        // alternating between two packs.
        let order = (0..n)
            .rev()
            .chain(0..n)
            .chain((0..n).map(|i| i * 7919 % n))
            .map(|k| (&a, a_ids[k]))
            .chain((0..500).flat_map(|k| [(&a, a_ids[k]), (&b, b_ids[k])]));
        for (pack, id) in order {
            let i = pack.find(&id).unwrap();
            let got = pack.read_index_windowed(i, &mut window).unwrap();
            let want = pack.read_index(i).unwrap();
            assert_eq!(
                (got.id, got.kind, got.encoding, got.size, &got.stored),
                (want.id, want.kind, want.encoding, want.size, &want.stored)
            );
        }
    }

    #[test]
    fn damaged_index_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::new(dir.path()).unwrap();
        let id = hash(Kind::Blob, b"x");
        w.add(&id, Kind::Blob, Encoding::Raw, 1, b"x").unwrap();
        let p = w.finish(dir.path(), dir.path()).unwrap().unwrap();
        let mut idx = fs::read(&p.idx).unwrap();
        let at = idx.len() - 70;
        idx[at] ^= 1;
        fs::write(&p.idx, &idx).unwrap();
        assert!(Pack::open(&p.idx).unwrap_err().contains("checksum"));
    }
}
