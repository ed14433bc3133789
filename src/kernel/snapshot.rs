//! Snapshots: the complete state of a world after one journal entry (objects-spec §13).
//!
//! A snapshot is an object of kind `snapshot`, a canonical CBOR map. It is root-complete: it
//! links the entry it follows (and through it the whole history and the genesis entry with the
//! manifest, modules and configuration), every plain reducer's state and every keyed reducer's
//! cell map. Nothing in it depends on the machine, the time, or the order things were
//! computed in, so replaying one history anywhere yields the same snapshot id.

use crate::codec::cbor::{self, Value};
use crate::kernel::entry::EntryError;
use crate::kernel::fields::{Builder, Reader, ShapeError, as_text, shape};
use crate::object::{self, Kind, ObjectId};

/// The snapshot format.
pub const FORMAT: u64 = 1;

/// A decoded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Height of the last entry the state includes.
    pub height: u64,
    /// That entry.
    pub head: ObjectId,
    /// The world's genesis entry.
    pub genesis: ObjectId,
    /// Height of the latest snapshot marker at or before `height` (0: none yet).
    pub last_marker: u64,
    /// Each plain reducer's state (a `value` object), `None` if it has none; sorted by name,
    /// every plain reducer of the manifest present.
    pub states: Vec<(String, Option<ObjectId>)>,
    /// Each keyed reducer's cell map root (a `mapnode` object); sorted by name.
    pub cells: Vec<(String, ObjectId)>,
}

impl Snapshot {
    /// The canonical value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut states = Builder::new();
        for (n, s) in &self.states {
            match s {
                Some(id) => states.link(n, id),
                None => states.put(n, Value::Null),
            };
        }
        let mut cells = Builder::new();
        for (n, root) in &self.cells {
            cells.link(n, root);
        }
        Builder::new()
            .nat("format", FORMAT)
            .nat("height", self.height)
            .link("head", &self.head)
            .link("genesis", &self.genesis)
            .nat("last_marker", self.last_marker)
            .put("states", states.done())
            .put("cells", cells.done())
            .done()
    }

    /// The canonical encoding and id.
    #[must_use]
    pub fn encode(&self) -> (Vec<u8>, ObjectId) {
        let bytes = cbor::encode(&self.to_value());
        let id = object::hash(Kind::Snapshot, &bytes);
        (bytes, id)
    }

    /// Decodes a snapshot payload.
    ///
    /// # Errors
    /// What is wrong and where.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let v = cbor::decode(bytes)?;
        Ok(Self::from_value(&v)?)
    }

    fn from_value(v: &Value) -> Result<Self, ShapeError> {
        let mut r = Reader::new(v, "")?;
        let format = r.nat("format")?;
        if format != FORMAT {
            return Err(shape(
                "/format",
                format!("snapshot format {format} is not supported (this is {FORMAT})"),
            ));
        }
        let height = r.nat("height")?;
        let head = r.link("head")?;
        let genesis = r.link("genesis")?;
        let last_marker = r.nat("last_marker")?;
        if last_marker > height {
            return Err(shape("/last_marker", "after the snapshot's height"));
        }
        let Value::Map(sm) = r.req("states")? else {
            return Err(shape("/states", "expected a map"));
        };
        let mut states = Vec::with_capacity(sm.len());
        for (k, v) in sm.entries() {
            let n = as_text(k, "/states")?.to_owned();
            let s = match v {
                Value::Null => None,
                Value::Link(id) => Some(*id),
                _ => return Err(shape(&format!("/states/{n}"), "expected a link or null")),
            };
            states.push((n, s));
        }
        let Value::Map(cm) = r.req("cells")? else {
            return Err(shape("/cells", "expected a map"));
        };
        let mut cells = Vec::with_capacity(cm.len());
        for (k, v) in cm.entries() {
            let n = as_text(k, "/cells")?.to_owned();
            let Value::Link(id) = v else {
                return Err(shape(&format!("/cells/{n}"), "expected a link"));
            };
            cells.push((n, *id));
        }
        r.finish()?;
        Ok(Self {
            height,
            head,
            genesis,
            last_marker,
            states,
            cells,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_rejects_junk() {
        let s = Snapshot {
            height: 42,
            head: ObjectId::from_bytes([1; 32]),
            genesis: ObjectId::from_bytes([2; 32]),
            last_marker: 40,
            states: vec![
                ("a/A@1".into(), Some(ObjectId::from_bytes([3; 32]))),
                ("a/B@1".into(), None),
            ],
            cells: vec![("a/C@1".into(), ObjectId::from_bytes([4; 32]))],
        };
        let (bytes, id) = s.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), s);
        assert_eq!(id, object::hash(Kind::Snapshot, &bytes));
        let mut bad = s.clone();
        bad.last_marker = 43;
        assert!(Snapshot::decode(&bad.encode().0).is_err());
        assert!(Snapshot::decode(&[0xf6]).is_err());
    }
}
