//! Fork lineage: where a world came from, recorded as data (objects-spec §15).
//!
//! Forking world `c` at height 6 into `d` writes a small `value` object
//!
//! ```text
//! {"at": <32-byte id of the entry at height 6>, "from": "c", "height": 6, "lineage": 1,
//!  "parent": <link to c's own lineage, if c has one>}
//! ```
//!
//! and names it by the ref `refs/lineage/d`, moved in the same transaction as `d`'s head. The
//! lineage travels with the world (bundles, clones, fetch, pull and push carry the ref and the
//! object), `gc` keeps it alive like any ref target, and `aos log` reads it to mark the fork
//! point. `parent` is a link, so lineages make a chain back to a world that was created, and
//! the chain travels and stays alive with the world. `at` is an id but not a link (like a
//! step's state id): the fork point is in the world's own history anyway, and the fork points
//! further up the chain belong to other worlds' histories, which a lineage must not drag
//! along (moving a lineage costs its chain's length, never a history).

use crate::codec::cbor::{self, Value};
use crate::codec::shape::{Fields, MapWrite, MapWriter, Path, ShapeError};
use crate::kernel::entry::describe;
use crate::kernel::error::WorldError;
use crate::kernel::replay::read_kind;
use crate::object::{Kind, ObjectId};
use crate::store::Store;

/// The version of the lineage shape (its `"lineage"` member).
pub const VERSION: u64 = 1;

/// Where a world was forked from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The world it was forked from, when the fork named one (`None`: forked from an entry
    /// id).
    pub from: Option<String>,
    /// The fork point: the entry the new world started at (recorded as an id, not a link).
    pub at: ObjectId,
    /// The fork point's height.
    pub height: u64,
    /// The lineage the source world had when it was forked, if it had one.
    pub parent: Option<ObjectId>,
}

/// Why a value is not a lineage.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    /// The bytes are not canonical CBOR.
    #[error("not canonical CBOR: {0}")]
    Cbor(#[from] cbor::DecodeError),
    /// The value does not have the lineage shape (at the JSON pointer of the member, `""`
    /// for the whole value).
    #[error("not a lineage: {}", describe(.0))]
    Shape(#[from] ShapeError),
}

/// The members of a lineage, in canonical order.
const MEMBERS: [&str; 5] = ["at", "from", "height", "parent", "lineage"];

impl Lineage {
    /// The canonical value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut m = MapWriter::with_capacity(MEMBERS.len());
        m.digest("at", &self.at)
            .nat("height", self.height)
            .nat("lineage", VERSION)
            .opt_text("from", self.from.as_deref());
        if let Some(p) = &self.parent {
            m.link("parent", p);
        }
        m.done()
    }

    /// The canonical encoding (the payload of a `value` object).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(&self.to_value())
    }

    /// Decodes a `value` payload, strictly: exactly the members above, `lineage` = 1.
    ///
    /// # Errors
    /// [`LineageError`] naming the member.
    pub fn decode(bytes: &[u8]) -> Result<Self, LineageError> {
        Ok(Self::from_value(&cbor::decode(bytes)?)?)
    }

    fn from_value(v: &Value) -> Result<Self, ShapeError> {
        let mut r = Fields::open(v, &Path::ROOT, "a lineage")?.missing_at_member();
        // An unknown member first, as the spec's reader reports it.
        r.only(&MEMBERS)?;
        let l = r.req("lineage")?;
        let version = l.u64()?;
        if version != VERSION {
            return Err(l.invalid(format!(
                "lineage version {version} is not supported (this is {VERSION})"
            )));
        }
        let a = r.req("at")?;
        let at = a
            .digest()
            .map_err(|_| a.wrong_type("32 bytes (an entry id)"))?;
        let height = r.req("height")?.u64()?;
        let from = r
            .opt("from")
            .map(|m| m.text().map(str::to_owned))
            .transpose()?;
        let parent = r.opt("parent").map(|m| m.link()).transpose()?;
        r.finish()?;
        Ok(Self {
            from,
            at,
            height,
            parent,
        })
    }

    /// Reads the lineage object `id`.
    ///
    /// # Errors
    /// Store errors; [`WorldError::Corrupt`] if it is not a `value` holding a lineage.
    pub fn read(store: &Store, id: &ObjectId) -> Result<Self, WorldError> {
        Self::decode(&read_kind(store, id, Kind::Value)?)
            .map_err(|e| WorldError::corrupt(*id, e.to_string()))
    }

    /// Stores it (a loose object: one small file) and returns its id.
    ///
    /// # Errors
    /// Store errors.
    pub fn write(&self, store: &Store) -> Result<ObjectId, WorldError> {
        Ok(store.put(Kind::Value, &self.encode())?)
    }

    /// What it was forked from, as `aos log` says it: `c at height 6`, or the entry id and
    /// the height for a fork of an id.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.from {
            Some(w) => format!("{w} at height {}", self.height),
            None => format!("{} at height {}", self.at, self.height),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let l = Lineage {
            from: Some("c".into()),
            at: ObjectId::from_bytes([1; 32]),
            height: 6,
            parent: Some(ObjectId::from_bytes([2; 32])),
        };
        let bytes = l.encode();
        assert_eq!(Lineage::decode(&bytes).unwrap(), l);
        assert_eq!(l.describe(), "c at height 6");
        let bare = Lineage {
            from: None,
            parent: None,
            ..l.clone()
        };
        assert_eq!(Lineage::decode(&bare.encode()).unwrap(), bare);
        assert!(bare.describe().starts_with("b3:0101"));
        // Canonical key order: shorter keys first ("at", "from", "height", ...).
        let text = crate::codec::json::to_json(&cbor::decode(&bytes).unwrap());
        assert!(text.starts_with("{\"at\":"), "{text}");

        let with = |extra: (&str, Value)| {
            let Value::Map(m) = l.to_value() else {
                unreachable!()
            };
            let mut e: Vec<(Value, Value)> = m.entries().to_vec();
            e.retain(|(k, _)| *k != Value::Text(extra.0.into()));
            e.push((Value::Text(extra.0.into()), extra.1));
            cbor::encode(&Value::Map(cbor::Map::from_entries(e).unwrap()))
        };
        for (bytes, why) in [
            (with(("lineage", 2u64.into())), "/lineage"),
            (with(("at", Value::Text("x".into()))), "/at"),
            (with(("at", Value::Link(l.at))), "/at"),
            (with(("at", Value::Bytes(vec![1; 31]))), "/at"),
            (with(("height", Value::Bool(true))), "/height"),
            (with(("extra", Value::Null)), "unexpected member `extra`"),
            (cbor::encode(&Value::Null), "expected a map"),
        ] {
            let err = Lineage::decode(&bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(matches!(
            Lineage::decode(&[0xa1]),
            Err(LineageError::Cbor(_))
        ));
    }
}
