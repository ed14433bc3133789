//! Key sources: where a store gets the secret seeds of its signing keys.
//!
//! A [`Store`](super::Store) is opened with a key source
//! ([`StoreOptions`](super::StoreOptions)), as it is with a clock. The default,
//! [`StoreKeys`], keeps each seed in the store's own `keys/` directory (objects-spec §5): a
//! file of exactly 32 bytes, readable by its owner only, created from the operating
//! system's randomness on first use. Seeds never enter an object, a ref, a reflog, a bundle
//! or a transfer, which only ever read `objects/` and `refs/`. Tests fix the keys with
//! [`FixedKeys`], so everything signed with them is reproducible. What a seed becomes (an
//! ed25519 signing key, for receipts) is the business of the code that signs.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::fs::sync_dir;

/// The directory of a store that holds the seeds of [`StoreKeys`].
pub const KEYS_DIR: &str = "keys";

/// The secret seed of a signing key. Its `Debug` form never shows the bytes, so it cannot
/// reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSeed([u8; 32]);

impl SecretSeed {
    /// The seed's bytes.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SecretSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretSeed(..)")
    }
}

/// The name of a signing key: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter or
/// digit (so it is a safe file name everywhere).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(String);

impl KeyName {
    /// Checks `name`.
    ///
    /// # Errors
    /// [`KeyError::BadName`].
    pub fn new(name: &str) -> Result<Self, KeyError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(KeyError::BadName(name.to_owned()))
        }
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a seed could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The name is not a key name.
    #[error(
        "invalid key name `{0}`: use 1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter \
         or digit"
    )]
    BadName(String),
    /// The seed file exists but is not a seed.
    #[error("{path}: not a signing key seed ({reason})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or creating the seed file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The operating system gave no randomness.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A source of signing key seeds.
pub trait KeySource: fmt::Debug + Send + Sync {
    /// The seed of key `name` of the store at `root` (the `.aos` directory), created on
    /// first use where the source creates keys.
    ///
    /// # Errors
    /// [`KeyError`].
    fn seed(&self, root: &Path, name: &KeyName) -> Result<SecretSeed, KeyError>;
}

/// Seeds kept in the store's `keys/` directory, one file per key (the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreKeys;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

impl StoreKeys {
    fn read(path: &Path) -> Result<Option<SecretSeed>, KeyError> {
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at(path)(e)),
        };
        let mut bytes = Vec::with_capacity(33);
        Read::by_ref(&mut f)
            .take(33)
            .read_to_end(&mut bytes)
            .map_err(io_at(path))?;
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Corrupt {
            path: path.to_owned(),
            reason: format!("{} bytes, a seed has 32", bytes.len()),
        })?;
        Ok(Some(SecretSeed(seed)))
    }

    /// Writes a fresh seed to `path` if no file is there, crash-safely: the seed is written
    /// and synced under a temporary name, then linked into place without replacing a seed
    /// another process created meanwhile (whose seed then wins).
    fn create(dir: &Path, path: &Path) -> Result<(), KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let tmp = dir.join(format!(
            "tmp-{}-{}",
            std::process::id(),
            getrandom::u64().map_err(|e| KeyError::Random(e.to_string()))?
        ));
        let result = (|| {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(io_at(&tmp))?;
            f.write_all(&seed).map_err(io_at(&tmp))?;
            f.sync_all().map_err(io_at(&tmp))?;
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_at(path)(e)),
            }
            sync_dir(dir).map_err(io_at(dir))
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }
}

impl KeySource for StoreKeys {
    fn seed(&self, root: &Path, name: &KeyName) -> Result<SecretSeed, KeyError> {
        let dir = root.join(KEYS_DIR);
        let path = dir.join(name.as_str());
        if let Some(s) = Self::read(&path)? {
            return Ok(s);
        }
        Self::create(&dir, &path)?;
        Self::read(&path)?.ok_or_else(|| KeyError::Corrupt {
            path: path.clone(),
            reason: "it vanished right after it was created".into(),
        })
    }
}

/// Seeds derived from one fixed master seed (BLAKE3 key derivation over the key name), for
/// tests and reproducible examples only: anyone who knows the master seed has every key.
#[derive(Clone, PartialEq, Eq)]
pub struct FixedKeys([u8; 32]);

impl FixedKeys {
    /// Keys derived from `master`.
    #[must_use]
    pub fn new(master: [u8; 32]) -> Self {
        Self(master)
    }

    /// Keys derived from the BLAKE3 hash of `text` (e.g. a test's name).
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        Self(*blake3::hash(text.as_bytes()).as_bytes())
    }
}

impl fmt::Debug for FixedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FixedKeys(..)")
    }
}

impl KeySource for FixedKeys {
    fn seed(&self, _root: &Path, name: &KeyName) -> Result<SecretSeed, KeyError> {
        let mut h = blake3::Hasher::new_derive_key("aos fixed signing key seed v1");
        h.update(&self.0);
        h.update(name.as_str().as_bytes());
        Ok(SecretSeed(*h.finalize().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["host", "a", "receipts-2026", "x_y", &"k".repeat(64)] {
            KeyName::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "Host",
            "-a",
            "_a",
            "a/b",
            "a.b",
            "..",
            &"k".repeat(65),
            "tmp key",
        ] {
            assert!(KeyName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn store_keys_are_created_once_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = KeyName::new("host").expect("name");
        let a = StoreKeys.seed(dir.path(), &name).expect("create");
        let b = StoreKeys.seed(dir.path(), &name).expect("read");
        assert_eq!(a, b);
        let other = StoreKeys
            .seed(dir.path(), &KeyName::new("other").expect("name"))
            .expect("create");
        assert_ne!(a, other);
        let path = dir.path().join(KEYS_DIR).join("host");
        assert_eq!(std::fs::read(&path).expect("read"), a.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path().join(KEYS_DIR))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(format!("{a:?}"), "SecretSeed(..)");
    }

    #[test]
    fn a_damaged_seed_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(KEYS_DIR)).expect("mkdir");
        let path = dir.path().join(KEYS_DIR).join("host");
        std::fs::write(&path, [7u8; 31]).expect("write");
        let err = StoreKeys
            .seed(dir.path(), &KeyName::new("host").expect("name"))
            .expect_err("31 bytes");
        assert!(matches!(err, KeyError::Corrupt { .. }), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            [7u8; 31],
            "left as it was"
        );
    }

    #[test]
    fn fixed_keys_are_reproducible_and_distinct_per_name() {
        let k = FixedKeys::from_text("test");
        let root = Path::new("/nonexistent");
        let a = k.seed(root, &KeyName::new("a").expect("name")).expect("a");
        assert_eq!(
            a,
            k.seed(root, &KeyName::new("a").expect("name")).expect("a")
        );
        assert_ne!(
            a,
            k.seed(root, &KeyName::new("b").expect("name")).expect("b")
        );
        assert_ne!(
            a,
            FixedKeys::from_text("other")
                .seed(root, &KeyName::new("a").expect("name"))
                .expect("a")
        );
        assert_eq!(format!("{k:?}"), "FixedKeys(..)");
    }
}
