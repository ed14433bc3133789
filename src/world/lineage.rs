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

use crate::codec::cbor::{self, Int, Map, Value};
use crate::kernel::error::WorldError;
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
    /// The value does not have the lineage shape.
    #[error("not a lineage: at `{path}`: {message}")]
    Shape {
        /// A JSON-pointer-like path to the member (`""`: the whole value).
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn shape(path: &str, message: impl Into<String>) -> LineageError {
    LineageError::Shape {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// The members of a lineage, in canonical order.
const MEMBERS: [&str; 5] = ["at", "from", "height", "parent", "lineage"];

impl Lineage {
    /// The canonical value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let text = |s: &str| Value::Text(s.to_owned());
        let mut m = vec![
            (text("at"), Value::Bytes(self.at.as_bytes().to_vec())),
            (text("height"), self.height.into()),
            (text("lineage"), VERSION.into()),
        ];
        if let Some(f) = &self.from {
            m.push((text("from"), text(f)));
        }
        if let Some(p) = &self.parent {
            m.push((text("parent"), Value::Link(*p)));
        }
        // The keys are distinct.
        Value::Map(Map::from_entries(m).unwrap_or_default())
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
        Self::from_value(&cbor::decode(bytes)?)
    }

    fn from_value(v: &Value) -> Result<Self, LineageError> {
        let Value::Map(m) = v else {
            return Err(shape("", "expected a map"));
        };
        for (k, _) in m.entries() {
            match k {
                Value::Text(t) if MEMBERS.contains(&t.as_str()) => {}
                Value::Text(t) => return Err(shape("", format!("unexpected member `{t}`"))),
                _ => return Err(shape("", "unexpected non-text key")),
            }
        }
        let nat = |k: &str| match m.get_text(k) {
            Some(Value::Int(i)) => {
                u64::try_from(Int::get(*i)).map_err(|_| shape(&format!("/{k}"), "expected a u64"))
            }
            Some(_) => Err(shape(&format!("/{k}"), "expected a u64")),
            None => Err(shape(&format!("/{k}"), "missing")),
        };
        let link = |k: &str| match m.get_text(k) {
            Some(Value::Link(id)) => Ok(Some(*id)),
            Some(_) => Err(shape(&format!("/{k}"), "expected a link")),
            None => Ok(None),
        };
        let version = nat("lineage")?;
        if version != VERSION {
            return Err(shape(
                "/lineage",
                format!("lineage version {version} is not supported (this is {VERSION})"),
            ));
        }
        let at = match m.get_text("at") {
            Some(Value::Bytes(b)) => <[u8; 32]>::try_from(b.as_slice())
                .map(ObjectId::from_bytes)
                .map_err(|_| shape("/at", "expected 32 bytes (an entry id)"))?,
            Some(_) => return Err(shape("/at", "expected 32 bytes (an entry id)")),
            None => return Err(shape("/at", "missing")),
        };
        let height = nat("height")?;
        let from = match m.get_text("from") {
            Some(Value::Text(t)) => Some(t.clone()),
            Some(_) => return Err(shape("/from", "expected text")),
            None => None,
        };
        let parent = link("parent")?;
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
        let o = store.get(id)?;
        if o.kind != Kind::Value {
            return Err(WorldError::corrupt(
                *id,
                format!("a lineage is a value object, this is a {}", o.kind),
            ));
        }
        Self::decode(&o.data).map_err(|e| WorldError::corrupt(*id, e.to_string()))
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
