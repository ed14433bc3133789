//! Facts derived from objects, kept under `.aos/cache/` to save work: losing or garbling any
//! of it costs time, never correctness.
//!
//! Each fact is one small file, written whole with temp file + fsync + rename and read back
//! only if it is exactly what a writer of this version would have written; anything else (a
//! missing, truncated, oversized or foreign file) is a miss. A failure to write is ignored: the
//! work is simply done again next time. Bundles, clones and `gc` never look here; deleting the
//! folder is always safe.
//!
//! - `validated/<manifest-id>`: the control plane whose manifest is that `air` object passed
//!   every rule of validator version N; holds the line `aos validated control plane:
//!   validator N`.
//! - `ids/<world>`: a world's window of idempotency keys as of one head (see
//!   `world::idempotency`), in a *sealed* file ([`read_sealed`], [`write_sealed`]).

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::Store;
use crate::object::ObjectId;
use crate::store::fs as sfs;

/// The cache folder's name inside the store.
pub const CACHE_DIR: &str = "cache";

/// The longest cache file read; anything longer is a miss.
const MAX_FACT_BYTES: u64 = 4096;

fn validated_path(store: &Store, manifest: &ObjectId) -> PathBuf {
    store
        .root()
        .join(CACHE_DIR)
        .join("validated")
        .join(manifest.to_string())
}

fn validated_line(version: u32) -> String {
    format!("aos validated control plane: validator {version}\n")
}

/// Reads a cache file whole, or `None` if it is missing, unreadable or too long.
fn read_fact(path: &std::path::Path) -> Option<Vec<u8>> {
    let f = fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_FACT_BYTES + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= MAX_FACT_BYTES).then_some(bytes)
}

/// Writes a cache file, ignoring any failure.
fn write_fact(path: &std::path::Path, bytes: &[u8]) {
    let dir = sfs::parent(path);
    if fs::create_dir_all(dir).is_ok() {
        let _ = sfs::write_replace(path, bytes);
    }
}

/// The path of cache file `name` in cache folder `folder`.
#[must_use]
pub fn path(store: &Store, folder: &str, name: &str) -> PathBuf {
    store.root().join(CACHE_DIR).join(folder).join(name)
}

/// Reads a sealed cache file: its contents if it is at most `max` bytes and ends with the
/// BLAKE3 hash of everything before it (so that a torn or garbled file is a miss).
#[must_use]
pub fn read_sealed(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    let f = fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 > max || bytes.len() < 32 {
        return None;
    }
    let body = bytes.len() - 32;
    if blake3::hash(&bytes[..body]).as_bytes() != &bytes[body..] {
        return None;
    }
    bytes.truncate(body);
    Some(bytes)
}

/// Writes `body` as a sealed cache file (followed by its BLAKE3 hash), ignoring any failure.
pub fn write_sealed(path: &std::path::Path, mut body: Vec<u8>) {
    let seal = *blake3::hash(&body).as_bytes();
    body.extend_from_slice(&seal);
    write_fact(path, &body);
}

/// Whether the store records that the control plane of `manifest` passed validator `version`.
#[must_use]
pub fn is_validated(store: &Store, manifest: &ObjectId, version: u32) -> bool {
    read_fact(&validated_path(store, manifest))
        .is_some_and(|b| b == validated_line(version).as_bytes())
}

/// Records that the control plane of `manifest` passed validator `version` (best effort).
pub fn record_validated(store: &Store, manifest: &ObjectId, version: u32) {
    write_fact(
        &validated_path(store, manifest),
        validated_line(version).as_bytes(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let (s, _) = Store::init(&d.path().join(".aos")).unwrap();
        (d, s)
    }

    #[test]
    fn a_recorded_fact_is_read_back_for_its_version_only() {
        let (_d, s) = store();
        let m = crate::object::hash(crate::object::Kind::Air, b"m");
        assert!(!is_validated(&s, &m, 1));
        record_validated(&s, &m, 1);
        assert!(is_validated(&s, &m, 1));
        assert!(!is_validated(&s, &m, 2));
        let other = crate::object::hash(crate::object::Kind::Air, b"n");
        assert!(!is_validated(&s, &other, 1));
        // Nothing is left behind in the cache folder but the fact itself.
        let names: Vec<_> = fs::read_dir(validated_path(&s, &m).parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(m.to_string())]);
    }

    #[test]
    fn a_garbled_truncated_or_oversized_fact_is_a_miss() {
        let (_d, s) = store();
        let m = crate::object::hash(crate::object::Kind::Air, b"m");
        record_validated(&s, &m, 1);
        let p = validated_path(&s, &m);
        let line = validated_line(1);
        fs::write(&p, &line.as_bytes()[..line.len() - 1]).unwrap();
        assert!(!is_validated(&s, &m, 1));
        fs::write(&p, line.replace('1', "7")).unwrap();
        assert!(!is_validated(&s, &m, 1));
        let mut big = line.clone().into_bytes();
        big.resize(MAX_FACT_BYTES as usize + 10, b' ');
        fs::write(&p, big).unwrap();
        assert!(!is_validated(&s, &m, 1));
        fs::remove_file(&p).unwrap();
        fs::create_dir(&p).unwrap();
        assert!(!is_validated(&s, &m, 1));
    }

    #[test]
    fn a_sealed_file_is_read_back_whole_or_not_at_all() {
        let (_d, s) = store();
        let p = path(&s, "t", "x");
        write_sealed(&p, b"some facts".to_vec());
        assert_eq!(
            read_sealed(&p, 1 << 20).as_deref(),
            Some(&b"some facts"[..])
        );
        assert_eq!(read_sealed(&p, 20), None, "longer than the limit");
        let mut bytes = fs::read(&p).unwrap();
        bytes[3] ^= 1;
        fs::write(&p, &bytes).unwrap();
        assert_eq!(read_sealed(&p, 1 << 20), None, "garbled");
        fs::write(&p, &bytes[..10]).unwrap();
        assert_eq!(read_sealed(&p, 1 << 20), None, "torn");
    }

    #[test]
    fn a_cache_that_cannot_be_written_is_ignored() {
        let (_d, s) = store();
        // A file where the cache folder should be: every write fails, quietly.
        fs::write(s.root().join(CACHE_DIR), b"not a folder").unwrap();
        let m = crate::object::hash(crate::object::Kind::Air, b"m");
        record_validated(&s, &m, 1);
        assert!(!is_validated(&s, &m, 1));
    }
}
