//! Bundles: worlds' histories, whole or from given entries on, in one file (objects-spec §14).
//!
//! ```text
//! # aos bundle v1              signature line
//! @object-format=blake3        capabilities (a reader rejects any it does not know)
//! -b3:<64 hex>                 prerequisites: entries the receiver must have already
//! b3:<64 hex> refs/worlds/NAME refs (and refs/checkpoints/NAME)
//!                              an empty line ends the header
//! aosP ‖ 1 ‖ entries ‖ N ‖ C   the objects: exactly a pack stream (§7)
//! checksum                     BLAKE3 of every preceding byte of the file
//! ```
//!
//! [`create`] writes a bundle from a store, [`BundleReader`] reads one (it is an
//! [`ObjectSource`]), [`verify`] checks one completely, and [`unbundle`] stores its objects and
//! moves refs by compare-and-swap, fast-forward only unless forced.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::{
    Checked, Closure, HaveSet, Incoming, ObjectSource, Outgoing, TransferError, WalkSummary,
    WriteOptions, WriteReport, check_incoming, is_ancestor, verify_stored, walk, write_checked,
};
use crate::kernel::replay::{read_entry, read_snapshot};
use crate::object::{ID_LEN, Kind, ObjectId};
use crate::progress::Progress;
use crate::store::format::{self, Encoding};
use crate::store::fs::{create_temp, parent, sync_dir};
use crate::store::pack::{ENTRY_HEADER_LEN, PACK_MAGIC, VERSION};
use crate::store::refs::{Expected, RefName};
use crate::store::{Store, Stored};

/// The first line of a version 1 bundle, without its line feed.
pub const SIGNATURE: &str = "# aos bundle v1";
/// The capability naming the object id format; the only one version 1 defines.
pub const OBJECT_FORMAT: &str = "object-format";
/// The value of [`OBJECT_FORMAT`]: ids are BLAKE3 with the kind prefix (objects-spec §4).
pub const OBJECT_FORMAT_BLAKE3: &str = "blake3";
/// The longest header line, line feed included.
pub const MAX_LINE: usize = 1024;
/// The most header bytes.
pub const MAX_HEADER: usize = 16 << 20;
/// The most capability lines.
pub const MAX_CAPABILITIES: usize = 64;
/// The most prerequisite lines.
pub const MAX_PREREQUISITES: usize = 65_536;
/// The most ref lines.
pub const MAX_REFS: usize = 65_536;
/// Length of the pack stream's trailer (entry count and pack checksum) plus the bundle's
/// checksum.
pub const TRAILER_LEN: u64 = 8 + 32 + 32;
/// The ref prefix of worlds.
pub const WORLDS: &str = "refs/worlds/";
/// The ref prefix of world checkpoints.
pub const CHECKPOINTS: &str = "refs/checkpoints/";

/// I/O buffer of the reader and writer; also the largest object read through the buffer.
const BUF: usize = 4 << 20;

// ---------------------------------------------------------------------------------------
// Header

/// A parsed bundle header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Capabilities (`@name=value`), sorted by name.
    pub capabilities: Vec<(String, String)>,
    /// Objects the receiver must hold already (with their closure), ascending.
    pub prerequisites: Vec<ObjectId>,
    /// Refs: target and name, sorted by name.
    pub refs: Vec<(ObjectId, RefName)>,
}

/// A malformed bundle header: the 1-based line, its byte offset, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("header line {line} (byte offset {offset}): {message}")]
pub struct HeaderError {
    /// The 1-based line number.
    pub line: usize,
    /// The byte offset of the line's first byte (or of the problem within it).
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// What a bundled ref is: a world or a world's checkpoint, and the world's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefRole<'a> {
    /// `refs/worlds/NAME`: the head entry of world NAME.
    World(&'a str),
    /// `refs/checkpoints/NAME`: a snapshot of world NAME's head.
    Checkpoint(&'a str),
}

/// The role of `name` if a bundle may carry it: `refs/worlds/NAME` or
/// `refs/checkpoints/NAME` with NAME one component.
#[must_use]
pub fn ref_role(name: &RefName) -> Option<RefRole<'_>> {
    let s = name.as_str();
    let one = |rest: &str| !rest.is_empty() && !rest.contains('/');
    if let Some(w) = s.strip_prefix(WORLDS).filter(|r| one(r)) {
        Some(RefRole::World(w))
    } else {
        s.strip_prefix(CHECKPOINTS)
            .filter(|r| one(r))
            .map(RefRole::Checkpoint)
    }
}

impl Header {
    /// A version 1 header with these prerequisites and refs (sorted here).
    ///
    /// # Errors
    /// [`TransferError::Input`] for a ref a bundle may not carry, a name given twice, a
    /// checkpoint without its world, no refs, or more than the limits allow.
    pub fn new(
        mut prerequisites: Vec<ObjectId>,
        mut refs: Vec<(ObjectId, RefName)>,
    ) -> Result<Self, TransferError> {
        prerequisites.sort_unstable();
        prerequisites.dedup();
        refs.sort_by(|a, b| a.1.cmp(&b.1));
        let h = Self {
            capabilities: vec![(OBJECT_FORMAT.into(), OBJECT_FORMAT_BLAKE3.into())],
            prerequisites,
            refs,
        };
        // Whatever is written must read back.
        let bytes = h.render();
        parse_header(&bytes).map_err(|e| TransferError::Input(format!("bundle header: {e}")))?;
        Ok(h)
    }

    /// The header's bytes, ending with the empty line.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut s = String::new();
        s.push_str(SIGNATURE);
        s.push('\n');
        for (k, v) in &self.capabilities {
            s.push_str(&format!("@{k}={v}\n"));
        }
        for p in &self.prerequisites {
            s.push_str(&format!("-{p}\n"));
        }
        for (id, name) in &self.refs {
            s.push_str(&format!("{id} {}\n", name.as_str()));
        }
        s.push('\n');
        s.into_bytes()
    }

    /// The target of ref `name`, if the bundle has it.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
    }
}

/// Which section of the header the parser is in; sections come in this order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Capabilities,
    Prerequisites,
    Refs,
}

/// Parses a bundle header from the start of `bytes` (which may continue past it), strictly:
/// the exact signature line; then capability lines (`@name=value`, names ascending), each
/// one known; prerequisite lines (`-b3:<64 hex>`, ascending); ref lines (`b3:<64 hex> NAME`,
/// names valid, ascending, only `refs/worlds/NAME` and `refs/checkpoints/NAME`, a checkpoint
/// only with its world); an empty line. Lines are at most [`MAX_LINE`] bytes of printable
/// ASCII ending in a line feed. Returns the header and its length in bytes.
///
/// # Errors
/// [`HeaderError`] naming the line, its offset and the first rule broken.
pub fn parse_header(bytes: &[u8]) -> Result<(Header, usize), HeaderError> {
    let mut h = Header {
        capabilities: Vec::new(),
        prerequisites: Vec::new(),
        refs: Vec::new(),
    };
    let mut section = Section::Capabilities;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    loop {
        line_no += 1;
        let start = pos;
        let err = |message: String| HeaderError {
            line: line_no,
            offset: start as u64,
            message,
        };
        if pos >= MAX_HEADER {
            return Err(err(format!("the header exceeds {MAX_HEADER} bytes")));
        }
        let rest = &bytes[pos..];
        let window = &rest[..rest.len().min(MAX_LINE)];
        let Some(n) = window.iter().position(|b| *b == b'\n') else {
            return Err(err(if rest.len() < MAX_LINE {
                "the header ends without an empty line (truncated?)".into()
            } else {
                format!("line longer than {MAX_LINE} bytes")
            }));
        };
        let raw = &rest[..n];
        if let Some(i) = raw.iter().position(|b| !(0x20..=0x7e).contains(b)) {
            return Err(HeaderError {
                line: line_no,
                offset: (start + i) as u64,
                message: format!(
                    "byte {:#04x} is not printable ASCII (lines end with a single LF)",
                    raw[i]
                ),
            });
        }
        // Printable ASCII is valid UTF-8.
        let line = std::str::from_utf8(raw).map_err(|e| err(e.to_string()))?;
        pos += n + 1;
        if line_no == 1 {
            if line != SIGNATURE {
                return Err(err(match line.strip_prefix("# aos bundle ") {
                    Some(v) => {
                        format!("unsupported bundle version `{v}` (this reader reads v1)")
                    }
                    None => format!("not an aos bundle: the first line must be `{SIGNATURE}`"),
                }));
            }
            continue;
        }
        if line.is_empty() {
            finish_header(&h).map_err(err)?;
            return Ok((h, pos));
        }
        if let Some(cap) = line.strip_prefix('@') {
            if section > Section::Capabilities {
                return Err(err("a capability after prerequisites or refs".into()));
            }
            let (name, value) = cap
                .split_once('=')
                .ok_or_else(|| err("a capability line is `@name=value`".into()))?;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(format!(
                    "bad capability name `{name}` (1-64 of a-z, 0-9, -)"
                )));
            }
            if value.contains(' ') {
                return Err(err("a capability value has no spaces".into()));
            }
            match name {
                OBJECT_FORMAT if value == OBJECT_FORMAT_BLAKE3 => {}
                OBJECT_FORMAT => {
                    return Err(err(format!(
                        "unsupported object format `{value}` (this reader knows `{OBJECT_FORMAT_BLAKE3}`)"
                    )));
                }
                _ => {
                    return Err(err(format!(
                        "unknown capability `@{name}` (this reader knows `@{OBJECT_FORMAT}`)"
                    )));
                }
            }
            if let Some((prev, _)) = h.capabilities.last() {
                if prev.as_str() == name {
                    return Err(err(format!("capability `{name}` given twice")));
                }
                if prev.as_str() > name {
                    return Err(err("capabilities not in ascending order of name".into()));
                }
            }
            if h.capabilities.len() >= MAX_CAPABILITIES {
                return Err(err(format!("more than {MAX_CAPABILITIES} capabilities")));
            }
            h.capabilities.push((name.to_owned(), value.to_owned()));
        } else if let Some(id) = line.strip_prefix('-') {
            if section > Section::Prerequisites {
                return Err(err("a prerequisite after refs".into()));
            }
            section = Section::Prerequisites;
            let id: ObjectId = id
                .parse()
                .map_err(|e| err(format!("bad prerequisite: {e}")))?;
            if let Some(prev) = h.prerequisites.last() {
                if *prev == id {
                    return Err(err(format!("prerequisite {id} given twice")));
                }
                if *prev > id {
                    return Err(err("prerequisites not in ascending order".into()));
                }
            }
            if h.prerequisites.len() >= MAX_PREREQUISITES {
                return Err(err(format!("more than {MAX_PREREQUISITES} prerequisites")));
            }
            h.prerequisites.push(id);
        } else {
            section = Section::Refs;
            let (id, name) = line
                .split_once(' ')
                .ok_or_else(|| err("a ref line is `b3:<64 hex> <ref name>`".into()))?;
            let id: ObjectId = id
                .parse()
                .map_err(|e| err(format!("bad ref target: {e}")))?;
            let name = RefName::new(name).map_err(|e| err(e.to_string()))?;
            if ref_role(&name).is_none() {
                return Err(err(format!(
                    "ref {} cannot be bundled (only {WORLDS}NAME and {CHECKPOINTS}NAME)",
                    name.as_str()
                )));
            }
            if let Some((_, prev)) = h.refs.last() {
                if *prev == name {
                    return Err(err(format!("ref {} given twice", name.as_str())));
                }
                if *prev > name {
                    return Err(err("refs not in ascending order of name".into()));
                }
            }
            if h.refs.len() >= MAX_REFS {
                return Err(err(format!("more than {MAX_REFS} refs")));
            }
            h.refs.push((id, name));
        }
    }
}

/// Rules about the header as a whole, checked at its empty line.
fn finish_header(h: &Header) -> Result<(), String> {
    if !h.capabilities.iter().any(|(k, _)| k == OBJECT_FORMAT) {
        return Err(format!(
            "the header lacks `@{OBJECT_FORMAT}={OBJECT_FORMAT_BLAKE3}`"
        ));
    }
    if h.refs.is_empty() {
        return Err("a bundle carries at least one ref".into());
    }
    for (_, name) in &h.refs {
        if let Some(RefRole::Checkpoint(w)) = ref_role(name)
            && h.get(&format!("{WORLDS}{w}")).is_none()
        {
            return Err(format!(
                "{} without {WORLDS}{w} (a checkpoint travels with its world)",
                name.as_str()
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reading

enum Data {
    File,
    Bytes(Vec<u8>),
}

/// An open bundle: its parsed header, and its objects as an [`ObjectSource`] (each pass
/// re-reads the file and checks its layout and both checksums).
pub struct BundleReader {
    path: PathBuf,
    data: Data,
    header: Header,
    header_bytes: Vec<u8>,
    len: u64,
    count_hint: Option<u64>,
}

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

impl BundleReader {
    /// Opens the bundle at `path` and parses its header.
    ///
    /// # Errors
    /// I/O errors, or [`TransferError::Format`] for a malformed header.
    pub fn open(path: &Path) -> Result<Self, TransferError> {
        let mut f = File::open(path).map_err(io_err(path))?;
        let len = f.metadata().map_err(io_err(path))?.len();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        let header_end = loop {
            let searched = buf.len().saturating_sub(1);
            if let Some(i) = buf[searched..].windows(2).position(|w| w == b"\n\n") {
                break Some(searched + i + 2);
            }
            if buf.len() > MAX_HEADER {
                break None;
            }
            let n = f.read(&mut chunk).map_err(io_err(path))?;
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = &buf[..header_end.unwrap_or(buf.len())];
        let (header, header_len) = parse_header(head).map_err(|e| header_format(path, &e))?;
        buf.truncate(header_len);
        let mut r = Self {
            path: path.to_owned(),
            data: Data::File,
            header,
            header_bytes: buf,
            len,
            count_hint: None,
        };
        if len >= header_len as u64 + 8 + TRAILER_LEN {
            let mut c = [0u8; 8];
            if std::os::unix::fs::FileExt::read_exact_at(&f, &mut c, len - TRAILER_LEN).is_ok() {
                r.count_hint = Some(u64::from_le_bytes(c).min(len / ENTRY_HEADER_LEN as u64));
            }
        }
        Ok(r)
    }

    /// A bundle held in memory; `name` stands for its path in messages.
    ///
    /// # Errors
    /// [`TransferError::Format`] for a malformed header.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, TransferError> {
        let path = PathBuf::from(name);
        let (header, header_len) = parse_header(&bytes).map_err(|e| header_format(&path, &e))?;
        let len = bytes.len() as u64;
        let count_hint = bytes
            .len()
            .checked_sub(TRAILER_LEN as usize)
            .and_then(|at| format::read_u64(&bytes, at))
            .map(|c| c.min(len / ENTRY_HEADER_LEN as u64));
        Ok(Self {
            path,
            header,
            header_bytes: bytes[..header_len].to_vec(),
            len,
            count_hint,
            data: Data::Bytes(bytes),
        })
    }

    /// The file (or the name given to [`BundleReader::from_bytes`]).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The parsed header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The length of the bundle in bytes (when it was opened).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bundle is empty (never, for a bundle that opened).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn format(&self, at: u64, message: impl Into<String>) -> TransferError {
        TransferError::Format {
            path: self.path.clone(),
            at,
            message: message.into(),
        }
    }
}

fn header_format(path: &Path, e: &HeaderError) -> TransferError {
    TransferError::Format {
        path: path.to_owned(),
        at: e.offset,
        message: format!("header line {}: {}", e.line, e.message),
    }
}

impl ObjectSource for BundleReader {
    fn for_each_object(
        &self,
        visit: &mut dyn FnMut(Incoming) -> Result<(), TransferError>,
    ) -> Result<(), TransferError> {
        let hlen = self.header_bytes.len();
        match &self.data {
            Data::Bytes(b) => self.scan(&b[hlen..], visit),
            Data::File => {
                let mut f = File::open(&self.path).map_err(io_err(&self.path))?;
                let len = f.metadata().map_err(io_err(&self.path))?.len();
                if len != self.len {
                    return Err(self.format(
                        len.min(self.len),
                        format!(
                            "the file changed while it was read ({} bytes, then {len})",
                            self.len
                        ),
                    ));
                }
                let mut head = vec![0u8; hlen];
                f.read_exact(&mut head).map_err(io_err(&self.path))?;
                if head != self.header_bytes {
                    return Err(self.format(0, "the header changed while the file was read"));
                }
                self.scan(f, visit)
            }
        }
    }

    fn count_hint(&self) -> Option<u64> {
        self.count_hint
    }
}

/// A reader over the bundle after its header that hashes every byte it reads into the
/// bundle checksum (bytes before the last 32) and the pack checksum (from the pack header to
/// the pack checksum).
struct StreamIn<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Absolute offset of `buf[end]`.
    read_to: u64,
    pack_start: u64,
    pack_hash_end: u64,
    file_hash_end: u64,
    file_hash: blake3::Hasher,
    pack_hash: blake3::Hasher,
}

impl<R: Read> StreamIn<R> {
    /// The absolute offset of the next unread byte.
    fn offset(&self) -> u64 {
        self.read_to - (self.end - self.pos) as u64
    }

    fn hash(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        if at < self.file_hash_end {
            let e = end.min(self.file_hash_end);
            self.file_hash.update(&bytes[..usize_of(e - at)]);
        }
        let s = at.max(self.pack_start);
        let e = end.min(self.pack_hash_end);
        if s < e {
            self.pack_hash
                .update(&bytes[usize_of(s - at)..usize_of(e - at)]);
        }
    }

    /// Makes `n` (at most the buffer size) bytes available.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        if self.end - self.pos >= n {
            return Ok(());
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        while self.end < n {
            let k = self.inner.read(&mut self.buf[self.end..])?;
            if k == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let at = self.read_to;
            let fresh = self.buf[self.end..self.end + k].to_vec();
            self.hash(at, &fresh);
            self.end += k;
            self.read_to += k as u64;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        self.fill(n)?;
        let s = self.pos;
        self.pos += n;
        Ok(&self.buf[s..s + n])
    }

    fn read_vec(&mut self, n: usize) -> io::Result<Vec<u8>> {
        if n <= BUF / 2 {
            return Ok(self.take(n)?.to_vec());
        }
        let have = self.end - self.pos;
        let mut out = Vec::with_capacity(n);
        out.extend_from_slice(&self.buf[self.pos..self.end]);
        self.pos = self.end;
        out.resize(n, 0);
        self.inner.read_exact(&mut out[have..])?;
        let at = self.read_to;
        self.hash(at, &out[have..]);
        self.read_to += (n - have) as u64;
        Ok(out)
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl BundleReader {
    /// Reads the objects section and trailer from `inner`, positioned right after the header.
    fn scan<R: Read>(
        &self,
        inner: R,
        visit: &mut dyn FnMut(Incoming) -> Result<(), TransferError>,
    ) -> Result<(), TransferError> {
        let hlen = self.header_bytes.len() as u64;
        let len = self.len;
        if len < hlen + 8 + TRAILER_LEN {
            return Err(self.format(
                len,
                "the file ends before its objects section and checksums (truncated)",
            ));
        }
        let count_at = len - TRAILER_LEN;
        let mut s = StreamIn {
            inner: inner.take(len - hlen),
            buf: vec![0u8; BUF],
            pos: 0,
            end: 0,
            read_to: hlen,
            pack_start: hlen,
            pack_hash_end: len - 64,
            file_hash_end: len - 32,
            file_hash: blake3::Hasher::new(),
            pack_hash: blake3::Hasher::new(),
        };
        s.file_hash.update(&self.header_bytes);
        let eof = |at: u64| self.format(at, "unexpected end of file (truncated)");
        let head = s.take(8).map_err(|_| eof(hlen))?;
        if &head[..4] != PACK_MAGIC || format::read_u32(head, 4) != Some(VERSION) {
            return Err(self.format(
                hlen,
                "the objects section does not start with a pack header (`aosP`, version 1)",
            ));
        }
        let mut n = 0u64;
        loop {
            let off = s.offset();
            if off >= count_at {
                break;
            }
            if count_at - off < ENTRY_HEADER_LEN as u64 {
                return Err(self.format(off, "a partial entry header before the trailer"));
            }
            let h = s.take(ENTRY_HEADER_LEN).map_err(|_| eof(off))?;
            let mut raw = [0u8; ID_LEN];
            raw.copy_from_slice(&h[..ID_LEN]);
            let id = ObjectId::from_bytes(raw);
            let (code, enc) = (h[32], h[33]);
            let size = format::read_u64(h, 34).unwrap_or(0);
            let stored_len = format::read_u64(h, 42).unwrap_or(0);
            let reject = |problem: String| TransferError::Rejected {
                id,
                at: Some(off),
                problem,
            };
            let kind =
                Kind::from_code(code).ok_or_else(|| reject(format!("unknown kind code {code}")))?;
            let encoding = Encoding::from_byte(enc)
                .ok_or_else(|| reject(format!("unknown encoding {enc}")))?;
            let room = count_at - off - ENTRY_HEADER_LEN as u64;
            if stored_len > room {
                return Err(self.format(
                    off,
                    format!(
                        "entry {id}: stored length {stored_len} runs past the end of the objects section"
                    ),
                ));
            }
            let stored = s
                .read_vec(usize_of(stored_len))
                .map_err(|_| eof(off + ENTRY_HEADER_LEN as u64))?;
            visit(Incoming {
                id,
                kind,
                encoding,
                size,
                stored,
                at: Some(off),
            })?;
            n += 1;
        }
        let t = s.take(TRAILER_LEN as usize).map_err(|_| eof(count_at))?;
        let count = format::read_u64(t, 0).unwrap_or(0);
        let mut pack_sum = [0u8; 32];
        pack_sum.copy_from_slice(&t[8..40]);
        let mut file_sum = [0u8; 32];
        file_sum.copy_from_slice(&t[40..72]);
        if count != n {
            return Err(self.format(
                count_at,
                format!("the objects section holds {n} entries, its count says {count}"),
            ));
        }
        if *s.pack_hash.finalize().as_bytes() != pack_sum {
            return Err(self.format(
                count_at + 8,
                "objects section checksum mismatch (the file is damaged)",
            ));
        }
        if *s.file_hash.finalize().as_bytes() != file_sum {
            return Err(self.format(len - 32, "bundle checksum mismatch (the file is damaged)"));
        }
        let mut extra = [0u8; 1];
        if s.inner.read(&mut extra).map_err(io_err(&self.path))? != 0 {
            return Err(self.format(len, "the file grew while it was read"));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Writing

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
/// the receiver opens the world without replaying); every object those reach, except what
/// the `since` entries reach. The file is written under a temporary name, synced, and renamed
/// into place.
///
/// # Errors
/// [`TransferError::Input`] for an unknown world or a `since` entry that is not an ancestor
/// of a bundled head; store errors; I/O errors writing the file (nothing is left behind).
pub fn create(
    store: &Store,
    path: &Path,
    opts: &CreateOptions,
    progress: &dyn Progress,
) -> Result<CreateReport, TransferError> {
    if opts.worlds.is_empty() {
        return Err(TransferError::Input(
            "name at least one world to bundle".into(),
        ));
    }
    let mut refs: Vec<(ObjectId, RefName)> = Vec::new();
    let mut heads: Vec<ObjectId> = Vec::new();
    let mut roots: Vec<ObjectId> = Vec::new();
    for w in &opts.worlds {
        let name = RefName::new(&format!("{WORLDS}{w}"))
            .ok()
            .filter(|n| ref_role(n).is_some())
            .ok_or_else(|| TransferError::Input(format!("invalid world name `{w}`")))?;
        if refs.iter().any(|(_, n)| *n == name) {
            continue;
        }
        let head = store
            .refs()
            .read(&name)?
            .ok_or_else(|| TransferError::Input(format!("no world named `{w}`")))?;
        refs.push((head, name));
        heads.push(head);
        roots.push(head);
        let cp = RefName::new(&format!("{CHECKPOINTS}{w}"))?;
        if let Some(sid) = store.refs().read(&cp)?
            && read_snapshot(store, &sid).is_ok_and(|s| s.head == head)
        {
            refs.push((sid, cp));
            roots.push(sid);
        }
    }
    let mut have = HaveSet::new();
    for s in &opts.since {
        read_entry(store, s).map_err(|e| {
            TransferError::Input(format!(
                "--since {s}: not a journal entry of this store: {e}"
            ))
        })?;
        let mut found = false;
        for h in &heads {
            if is_ancestor(store, s, h)? {
                found = true;
                break;
            }
        }
        if !found {
            return Err(TransferError::Input(format!(
                "--since {s} is not an ancestor of any bundled world's head"
            )));
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
        let mut chunk: Vec<(ObjectId, Stored)> = Vec::new();
        let mut chunk_bytes = 0usize;
        let mut stopped = false;
        let walked = walk(
            store,
            roots,
            &|id| have.contains(id),
            progress,
            false,
            &mut |id, s| {
                chunk_bytes += s.bytes.len() + ENTRY_HEADER_LEN;
                chunk.push((id, s));
                if chunk_bytes >= WRITE_CHUNK {
                    chunk_bytes = 0;
                    if tx.send(std::mem::take(&mut chunk)).is_err() {
                        stopped = true;
                        return Err(TransferError::Input("stopped".into()));
                    }
                }
                Ok(())
            },
        );
        if walked.is_ok() && !chunk.is_empty() {
            let _ = tx.send(std::mem::take(&mut chunk));
        }
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(TransferError::Input("the bundle writer panicked".into())));
        match (walked, written) {
            (Ok(summary), Ok((file, bytes))) => Ok((summary, file, bytes)),
            // The writer stopped the walk: its error is the one to report.
            (Err(_), Err(e)) if stopped => Err(e),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        }
    })
}

// ---------------------------------------------------------------------------------------
// Verifying and applying

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
/// the bundle (an entry for a world, a snapshot for a checkpoint) or a prerequisite.
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
            None => {
                return Err(TransferError::Input(format!(
                    "ref {} cannot be bundled",
                    name.as_str()
                )));
            }
        };
        if let Some(k) = kind
            && k != want
        {
            return Err(TransferError::Input(format!(
                "{} points to {id}, a {k} object; it must be a {want}",
                name.as_str()
            )));
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
    /// A checkpoint moved to the snapshot of its world's new head.
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
/// from a bundle that fails), stores the objects, then moves refs by compare-and-swap. A
/// missing world is created; an existing one moves only if the bundle's head descends from
/// its current head, unless `opts.force`. A world whose head already descends from the
/// bundle's is left as it is ([`RefChange::Ahead`]); a diverged world is an error and no ref
/// moves. A checkpoint is set only if it is a snapshot of its world's (new) head.
///
/// # Errors
/// [`TransferError::MissingPrerequisites`] and every problem [`verify`] reports (nothing is
/// stored); [`TransferError::NotFastForward`] (the objects are stored, no ref moved); ref
/// errors, such as a concurrent update ([`crate::store::refs::RefError::Stale`]).
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
    let mut plan: Vec<RefUpdate> = Vec::new();
    for (new, name) in &h.refs {
        if !matches!(ref_role(name), Some(RefRole::World(_))) {
            continue;
        }
        let old = store.refs().read(name)?;
        let change = match old {
            None => RefChange::Created,
            Some(o) if o == *new => RefChange::Unchanged,
            Some(o) => match is_ancestor(store, &o, new) {
                Ok(true) => RefChange::FastForward,
                _ if opts.force => RefChange::Forced,
                Ok(false) if is_ancestor(store, new, &o)? => RefChange::Ahead,
                Ok(false) => {
                    return Err(TransferError::NotFastForward {
                        name: name.clone(),
                        old: o,
                        new: *new,
                    });
                }
                Err(e) => return Err(e),
            },
        };
        plan.push(RefUpdate {
            name: name.clone(),
            old,
            new: *new,
            change,
        });
    }
    let mut report = UnbundleReport {
        checked,
        write,
        refs: Vec::new(),
        skipped: Vec::new(),
    };
    for u in plan {
        if !matches!(u.change, RefChange::Unchanged | RefChange::Ahead) {
            let expected = u.old.map_or(Expected::Absent, Expected::Is);
            store
                .refs()
                .update(&u.name, Some(u.new), expected, &message)?;
        }
        report.refs.push(u);
    }
    for (sid, name) in &h.refs {
        let Some(RefRole::Checkpoint(w)) = ref_role(name) else {
            continue;
        };
        let Some(head) = h.get(&format!("{WORLDS}{w}")) else {
            continue;
        };
        if report
            .refs
            .iter()
            .any(|u| u.change == RefChange::Ahead && u.new == head)
        {
            report
                .skipped
                .push((name.clone(), "the world is ahead of the bundle".to_owned()));
            continue;
        }
        let skip = match read_snapshot(store, sid) {
            Ok(s) if s.head == head => None,
            Ok(s) => Some(format!(
                "its snapshot is of {}, not of the world's head {head}",
                s.head
            )),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = skip {
            report.skipped.push((name.clone(), why));
            continue;
        }
        let old = store.refs().read(name)?;
        let change = match old {
            Some(o) if o == *sid => RefChange::Unchanged,
            None => RefChange::Created,
            Some(_) => RefChange::Updated,
        };
        if change != RefChange::Unchanged {
            let expected = old.map_or(Expected::Absent, Expected::Is);
            store.refs().update(name, Some(*sid), expected, &message)?;
        }
        report.refs.push(RefUpdate {
            name: name.clone(),
            old,
            new: *sid,
            change,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
