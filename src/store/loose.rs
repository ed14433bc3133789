//! Loose objects: one file per object at `objects/<2 hex>/<62 hex>`.
//!
//! File layout (all integers little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `aosL` |
//! | 4 | 1 | format version, 1 |
//! | 5 | 1 | kind code |
//! | 6 | 1 | encoding (0 raw, 1 zstd) |
//! | 7 | 8 | payload size |
//! | 15 | … | stored bytes to the end of the file |

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::format::{self, Encoding};
use super::fs::{Published, create_temp, publish_new};
use crate::object::{Kind, ObjectId};

/// Magic bytes of a loose object file.
pub const MAGIC: &[u8; 4] = b"aosL";
/// Format version of loose object files.
pub const VERSION: u8 = 1;
/// Length of the loose object header.
pub const HEADER_LEN: usize = 15;

/// The path of `id`'s loose file under `objects_dir`.
#[must_use]
pub fn path(objects_dir: &Path, id: &ObjectId) -> PathBuf {
    let hex = id.to_hex();
    objects_dir.join(&hex[..2]).join(&hex[2..])
}

/// The id named by a loose object path's last two components, if they form one.
#[must_use]
pub fn id_from_path(dir_name: &str, file_name: &str) -> Option<ObjectId> {
    if dir_name.len() != 2 || file_name.len() != 62 {
        return None;
    }
    ObjectId::from_hex(&format!("{dir_name}{file_name}")).ok()
}

/// Encodes the header of a loose object.
#[must_use]
pub fn header(kind: Kind, encoding: Encoding, size: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4] = VERSION;
    h[5] = kind.code();
    h[6] = encoding as u8;
    h[7..15].copy_from_slice(&size.to_le_bytes());
    h
}

/// A parsed loose object header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The object's kind.
    pub kind: Kind,
    /// How the payload is stored.
    pub encoding: Encoding,
    /// The payload's size.
    pub size: u64,
}

/// Parses the header at the start of a loose file.
///
/// # Errors
/// A message naming the field and byte offset that is wrong.
pub fn parse_header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        ));
    }
    if &bytes[..4] != MAGIC {
        return Err("bad magic at offset 0 (expected `aosL`)".into());
    }
    if bytes[4] != VERSION {
        return Err(format!(
            "unsupported format version {} at offset 4",
            bytes[4]
        ));
    }
    let kind = Kind::from_code(bytes[5])
        .ok_or_else(|| format!("unknown kind code {} at offset 5", bytes[5]))?;
    let encoding = Encoding::from_byte(bytes[6])
        .ok_or_else(|| format!("unknown encoding {} at offset 6", bytes[6]))?;
    let size = format::read_u64(bytes, 7).expect("header length checked above");
    Ok(Header {
        kind,
        encoding,
        size,
    })
}

/// Writes the already-encoded object to a temporary file in `tmp_dir`, syncs it, and moves it
/// to its place without overwriting. The caller syncs the destination directory.
///
/// # Errors
/// Any I/O error; nothing is left behind on failure.
pub fn write(
    objects_dir: &Path,
    tmp_dir: &Path,
    id: &ObjectId,
    kind: Kind,
    encoding: Encoding,
    size: u64,
    stored: &[u8],
) -> io::Result<Published> {
    let dest = path(objects_dir, id);
    let (mut file, tmp) = create_temp(tmp_dir, "obj")?;
    let written = (|| {
        file.write_all(&header(kind, encoding, size))?;
        file.write_all(stored)?;
        file.sync_all()
    })();
    drop(file);
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = super::fs::parent(&dest);
    if let Err(e) = fs::create_dir_all(dir) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    publish_new(&tmp, &dest)
}

/// Reads a loose file whole.
///
/// # Errors
/// The I/O error (`NotFound` if the object is not stored loose).
pub fn read(objects_dir: &Path, id: &ObjectId) -> io::Result<Vec<u8>> {
    fs::read(path(objects_dir, id))
}

/// Reads just the header of a loose file.
///
/// # Errors
/// The I/O error, or `InvalidData` if the file is too short.
pub fn read_header_bytes(objects_dir: &Path, id: &ObjectId) -> io::Result<[u8; HEADER_LEN]> {
    use std::io::Read;
    let mut h = [0u8; HEADER_LEN];
    File::open(path(objects_dir, id))?.read_exact(&mut h)?;
    Ok(h)
}

/// Every loose object id under `objects_dir` (ignoring files that do not name an id), with
/// the paths of files that look out of place.
///
/// # Errors
/// An I/O error listing a directory.
pub fn list(objects_dir: &Path) -> io::Result<(Vec<ObjectId>, Vec<PathBuf>)> {
    let mut ids = Vec::new();
    let mut strays = Vec::new();
    let rd = match fs::read_dir(objects_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((ids, strays)),
        Err(e) => return Err(e),
    };
    for dir in rd {
        let dir = dir?;
        let name = dir.file_name();
        let Some(name) = name.to_str() else {
            strays.push(dir.path());
            continue;
        };
        if name == "pack" {
            continue;
        }
        if name.len() != 2 || !dir.file_type()?.is_dir() {
            strays.push(dir.path());
            continue;
        }
        for f in fs::read_dir(dir.path())? {
            let f = f?;
            match f.file_name().to_str().and_then(|n| id_from_path(name, n)) {
                Some(id) => ids.push(id),
                None => strays.push(f.path()),
            }
        }
    }
    ids.sort_unstable();
    Ok((ids, strays))
}
