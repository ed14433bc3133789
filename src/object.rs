//! Object identity: kinds, BLAKE3 ids with domain separation, text forms and prefixes.
//!
//! An object is a kind plus a payload. Its id is
//! `BLAKE3("aos:" ‖ kind name ‖ 0x00 ‖ payload)`, so equal bytes of different kinds have
//! different ids. The text form of an id is `b3:` followed by 64 lowercase hex digits.

use std::fmt;
use std::str::FromStr;

/// Length of an id in bytes.
pub const ID_LEN: usize = 32;

/// The fewest hex digits an abbreviated id may have.
pub const MIN_PREFIX_HEX: usize = 8;

/// The 32-byte BLAKE3 id of an object. Ids order bytewise.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId([u8; ID_LEN]);

impl ObjectId {
    /// The id as four big-endian words, whose order is the bytes' order.
    fn words(&self) -> [u64; 4] {
        let w = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[i * 8..i * 8 + 8]);
            u64::from_be_bytes(b)
        };
        [w(0), w(1), w(2), w(3)]
    }
}

impl Ord for ObjectId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Word by word: sorting and searching ids is hot in transfers, and this avoids a
        // `memcmp` call per comparison.
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for ObjectId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ObjectId {
    /// Wraps raw id bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw id bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The 64 lowercase hex digits of the id, without the `b3:` prefix.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(ID_LEN * 2);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        s
    }

    /// Parses 64 lowercase hex digits (no prefix).
    ///
    /// # Errors
    /// [`IdError`] if `hex` is not exactly 64 lowercase hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, IdError> {
        let b = hex.as_bytes();
        if b.len() != ID_LEN * 2 {
            return Err(IdError::new(hex, "an id has exactly 64 hex digits"));
        }
        let mut out = [0u8; ID_LEN];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or_else(|| IdError::new(hex, NOT_HEX))?;
            let lo = hex_val(pair[1]).ok_or_else(|| IdError::new(hex, NOT_HEX))?;
            out[i] = hi << 4 | lo;
        }
        Ok(Self(out))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const NOT_HEX: &str = "ids use lowercase hex digits 0-9 a-f";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b3:{}", self.to_hex())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b3:{}", self.to_hex())
    }
}

impl FromStr for ObjectId {
    type Err = IdError;

    /// Parses the full text form `b3:<64 hex>`.
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.strip_prefix("b3:") {
            Some(hex) => Self::from_hex(hex),
            None => Err(IdError::new(s, "an id starts with `b3:`")),
        }
    }
}

/// A text that is not a valid id or id prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid object id {text:?}: {why}")]
pub struct IdError {
    /// The rejected text.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl IdError {
    fn new(text: &str, why: &'static str) -> Self {
        // Keep messages readable when someone passes a whole file as an id.
        let text: String = text.chars().take(80).collect();
        Self { text, why }
    }
}

/// An abbreviated id: 8 to 64 lowercase hex digits, optionally after `b3:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPrefix {
    hex: String,
}

impl IdPrefix {
    /// The hex digits of the prefix.
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Whether `id` starts with this prefix.
    #[must_use]
    pub fn matches(&self, id: &ObjectId) -> bool {
        id.to_hex().starts_with(&self.hex)
    }

    /// The lowest and highest ids with this prefix, for range scans over sorted ids.
    #[must_use]
    pub fn range(&self) -> (ObjectId, ObjectId) {
        let mut lo = [0u8; ID_LEN];
        let mut hi = [0xffu8; ID_LEN];
        for (i, c) in self.hex.bytes().enumerate() {
            let v = hex_val(c).expect("prefix digits were validated");
            if i % 2 == 0 {
                lo[i / 2] = v << 4;
                hi[i / 2] = v << 4 | 0x0f;
            } else {
                lo[i / 2] |= v;
                hi[i / 2] = (hi[i / 2] & 0xf0) | v;
            }
        }
        (ObjectId(lo), ObjectId(hi))
    }

    /// The full id, if the prefix has all 64 digits.
    #[must_use]
    pub fn full(&self) -> Option<ObjectId> {
        ObjectId::from_hex(&self.hex).ok()
    }
}

impl FromStr for IdPrefix {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, IdError> {
        let hex = s.strip_prefix("b3:").unwrap_or(s);
        if hex.len() < MIN_PREFIX_HEX {
            return Err(IdError::new(
                s,
                "an abbreviated id needs at least 8 hex digits",
            ));
        }
        if hex.len() > ID_LEN * 2 {
            return Err(IdError::new(s, "an id has at most 64 hex digits"));
        }
        if !hex.bytes().all(|c| hex_val(c).is_some()) {
            return Err(IdError::new(s, NOT_HEX));
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }
}

/// The kind of an object. The code is its byte in stored headers; the name enters the id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Raw bytes, stored as given.
    Blob,
    /// One canonical CBOR data item.
    Value,
    /// An AIR node.
    Air,
    /// A journal entry of a world.
    Entry,
    /// A snapshot of a world's state.
    Snapshot,
    /// A signed effect receipt (reserved; added with effects).
    Receipt,
    /// A node of a content-addressed Merkle map (keyed reducers' cells).
    MapNode,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 7] = [
        Kind::Blob,
        Kind::Value,
        Kind::Air,
        Kind::Entry,
        Kind::Snapshot,
        Kind::Receipt,
        Kind::MapNode,
    ];

    /// The kind's one-byte code in object headers.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Blob => 1,
            Self::Value => 2,
            Self::Air => 3,
            Self::Entry => 4,
            Self::Snapshot => 5,
            Self::Receipt => 6,
            Self::MapNode => 7,
        }
    }

    /// The kind for a header code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The kind's name: used in ids, text output and on the command line.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Blob => "blob",
            Self::Value => "value",
            Self::Air => "air",
            Self::Entry => "entry",
            Self::Snapshot => "snapshot",
            Self::Receipt => "receipt",
            Self::MapNode => "mapnode",
        }
    }

    /// The kind with this name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether objects of this kind can be stored now. Reserved kinds are refused until the
    /// subsystem that defines their structure exists.
    #[must_use]
    pub const fn is_active(self) -> bool {
        !matches!(self, Self::Receipt)
    }

    /// Whether the payload is a canonical CBOR data item (every kind except `blob`).
    #[must_use]
    pub const fn is_cbor(self) -> bool {
        !matches!(self, Self::Blob)
    }

    /// The domain-separation prefix hashed before the payload: `aos:<name>\0`.
    #[must_use]
    pub fn id_prefix(self) -> Vec<u8> {
        let mut p = Vec::with_capacity(16);
        p.extend_from_slice(b"aos:");
        p.extend_from_slice(self.name().as_bytes());
        p.push(0);
        p
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Payloads at least this large are hashed on several threads.
const PARALLEL_HASH_THRESHOLD: usize = 1 << 20;

/// Computes the id of an object of `kind` with `payload`.
#[must_use]
pub fn hash(kind: Kind, payload: &[u8]) -> ObjectId {
    let mut h = blake3::Hasher::new();
    h.update(&kind.id_prefix());
    if payload.len() >= PARALLEL_HASH_THRESHOLD {
        h.update_rayon(payload);
    } else {
        h.update(payload);
    }
    ObjectId(*h.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_text_round_trips() {
        let id = hash(Kind::Blob, b"hello");
        let text = id.to_string();
        assert!(text.starts_with("b3:") && text.len() == 67);
        assert_eq!(text.parse::<ObjectId>().unwrap(), id);
        assert!(text.to_uppercase().parse::<ObjectId>().is_err());
        assert!(text[3..].parse::<ObjectId>().is_err());
    }

    #[test]
    fn kinds_separate_domains() {
        assert_ne!(hash(Kind::Blob, b"\xf6"), hash(Kind::Value, b"\xf6"));
        // The prefix is plain BLAKE3 over "aos:blob\0" and the payload.
        let mut h = blake3::Hasher::new();
        h.update(b"aos:blob\0hello");
        assert_eq!(
            hash(Kind::Blob, b"hello").as_bytes(),
            h.finalize().as_bytes()
        );
        let big = vec![3u8; 3 << 20];
        let mut h = blake3::Hasher::new();
        h.update(b"aos:value\0");
        h.update(&big);
        assert_eq!(hash(Kind::Value, &big).as_bytes(), h.finalize().as_bytes());
    }

    #[test]
    fn prefixes() {
        let id = hash(Kind::Value, b"\x00");
        let hex = id.to_hex();
        let p: IdPrefix = hex[..9].parse().unwrap();
        assert!(p.matches(&id));
        let (lo, hi) = p.range();
        assert!(lo <= id && id <= hi);
        assert!(format!("b3:{}", &hex[..8]).parse::<IdPrefix>().is_ok());
        assert!(hex[..7].parse::<IdPrefix>().is_err());
        assert!("ABCDEF012".parse::<IdPrefix>().is_err());
        assert_eq!(hex.parse::<IdPrefix>().unwrap().full(), Some(id));
    }

    #[test]
    fn kind_codes_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_code(k.code()), Some(k));
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_code(0), None);
    }
}

#[cfg(test)]
mod order_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn ids_order_as_their_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), i in 0usize..32) {
            let (x, y) = (ObjectId::from_bytes(a), ObjectId::from_bytes(b));
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            // Ids that differ only late in their bytes.
            let mut c = a;
            c[i] = c[i].wrapping_add(1);
            prop_assert_eq!(x.cmp(&ObjectId::from_bytes(c)), a.cmp(&c));
        }
    }
}
