//! Reading a bundle: its header, and its objects as an object source that re-checks the
//! layout and both checksums on every pass.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{BUF, Header, HeaderError, MAX_HEADER, TRAILER_LEN, io_err, parse_header, usize_of};
use crate::object::{ID_LEN, Kind, ObjectId};
use crate::store::format::{self, Encoding};
use crate::store::pack::{ENTRY_HEADER_LEN, PACK_MAGIC, VERSION};
use crate::transfer::{Incoming, ObjectSource, TransferError};

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
            // Small bundles get a small buffer; it never needs to exceed the section.
            buf: vec![0u8; usize_of((len - hlen).min(BUF as u64))],
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
