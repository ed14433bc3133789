//! Snapshots: the complete state of a world after one journal entry (objects-spec §13).
//!
//! A snapshot is an object of kind `snapshot`, a canonical CBOR map. It is root-complete: it
//! links the entry it follows (and through it the whole history and the genesis entry with the
//! manifest, modules and configuration), every plain reducer's state and every keyed reducer's
//! cell map. Nothing in it depends on the machine, the time, or the order things were
//! computed in, so replaying one history anywhere yields the same snapshot id.
//!
//! Formats are additive: a snapshot is written in the lowest format that has every member it
//! needs, so the snapshots of worlds that never use a later member keep their ids. Format 1
//! has the members every world has; format 2 adds `manifest`, the manifest in force when it
//! differs from the genesis's. The world state the next issues add (the outbox of pending
//! intents, plan instances, budgets) comes as further optional members in later formats, each
//! linking the root of its own Merkle map, absent while empty.

use crate::codec::cbor::{self, Value};
use crate::codec::shape::{Fields, MapWrite, MapWriter, Path, ShapeError};
use crate::kernel::entry::{EntryError, links_by_name};
use crate::object::{self, Kind, ObjectId};

/// The latest snapshot format this code reads and writes.
pub const FORMAT: u64 = 2;

/// The format of snapshots without a `manifest` member.
const FORMAT_BASE: u64 = 1;

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
    /// The manifest in force (an `air` object), present exactly when it is not the genesis's
    /// (format 2). `states` and `cells` list that manifest's reducers.
    pub manifest: Option<ObjectId>,
}

impl Snapshot {
    /// The canonical value.
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut states = MapWriter::with_capacity(self.states.len());
        for (n, s) in &self.states {
            match s {
                Some(id) => states.link(n, id),
                None => states.null(n),
            };
        }
        let mut cells = MapWriter::with_capacity(self.cells.len());
        for (n, root) in &self.cells {
            cells.link(n, root);
        }
        let mut b = MapWriter::with_capacity(8);
        b.nat("format", self.format())
            .nat("height", self.height)
            .link("head", &self.head)
            .link("genesis", &self.genesis)
            .nat("last_marker", self.last_marker)
            .put("states", states.done())
            .put("cells", cells.done());
        if let Some(m) = &self.manifest {
            b.link("manifest", m);
        }
        b.done()
    }

    /// The format this snapshot is written in: the lowest that has every member it needs.
    #[must_use]
    pub fn format(&self) -> u64 {
        if self.manifest.is_some() {
            FORMAT
        } else {
            FORMAT_BASE
        }
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
        let mut r = Fields::open(v, &Path::ROOT, "a snapshot")?.missing_at_member();
        let f = r.req("format")?;
        let format = f.u64()?;
        if !(FORMAT_BASE..=FORMAT).contains(&format) {
            return Err(f.invalid(format!(
                "snapshot format {format} is not supported (this reads {FORMAT_BASE} to \
                 {FORMAT})"
            )));
        }
        let height = r.req("height")?.u64()?;
        let head = r.req("head")?.link()?;
        let genesis = r.req("genesis")?.link()?;
        let m = r.req("last_marker")?;
        let last_marker = m.u64()?;
        if last_marker > height {
            return Err(m.invalid("after the snapshot's height"));
        }
        let states = r
            .req("states")?
            .entries()?
            .map(|e| {
                let (n, s) = e?;
                let state = s
                    .or_null(|s| s.link())
                    .map_err(|_| s.wrong_type("a link or null"))?;
                Ok((n.to_owned(), state))
            })
            .collect::<Result<_, ShapeError>>()?;
        let cells = links_by_name(&r.req("cells")?)?;
        // Format 2 is format 1 plus `manifest`, which it must use (else it is written as 1).
        let manifest = if format >= FORMAT {
            Some(r.req("manifest")?.link()?)
        } else {
            None
        };
        r.finish()?;
        Ok(Self {
            height,
            head,
            genesis,
            last_marker,
            states,
            cells,
            manifest,
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
            manifest: None,
        };
        let (bytes, id) = s.encode();
        assert_eq!(Snapshot::decode(&bytes).unwrap(), s);
        assert_eq!(id, object::hash(Kind::Snapshot, &bytes));
        let mut bad = s.clone();
        bad.last_marker = 43;
        assert!(Snapshot::decode(&bad.encode().0).is_err());
        assert!(Snapshot::decode(&[0xf6]).is_err());

        // With a manifest: format 2, and the manifest makes the id differ.
        let mut m = s.clone();
        m.manifest = Some(ObjectId::from_bytes([5; 32]));
        assert_eq!((s.format(), m.format()), (1, 2));
        let (mbytes, mid) = m.encode();
        assert_eq!(Snapshot::decode(&mbytes).unwrap(), m);
        assert_ne!(mid, id);
    }

    /// Rewrites member `key` of the snapshot value `v` (or removes it, for `None`).
    fn with(v: &Value, key: &str, to: Option<Value>) -> Vec<u8> {
        let Value::Map(m) = v.clone() else {
            panic!("a snapshot is a map")
        };
        let name = Value::Text(key.into());
        let mut entries: Vec<_> = m
            .into_entries()
            .into_iter()
            .filter(|(k, _)| *k != name)
            .collect();
        if let Some(x) = to {
            entries.push((name, x));
        }
        cbor::encode(&Value::Map(cbor::Map::from_entries(entries).unwrap()))
    }

    #[test]
    fn formats_say_whether_a_manifest_is_there() {
        let s = Snapshot {
            height: 3,
            head: ObjectId::from_bytes([1; 32]),
            genesis: ObjectId::from_bytes([2; 32]),
            last_marker: 0,
            states: vec![],
            cells: vec![],
            manifest: Some(ObjectId::from_bytes([7; 32])),
        };
        let v = s.to_value();
        // Format 2 without its manifest, format 1 with one, an unknown format.
        let err = Snapshot::decode(&with(&v, "manifest", None)).unwrap_err();
        assert!(err.to_string().contains("/manifest"), "{err}");
        let err = Snapshot::decode(&with(&v, "format", Some(1u64.into()))).unwrap_err();
        assert!(
            err.to_string().contains("unexpected member `manifest`"),
            "{err}"
        );
        let err = Snapshot::decode(&with(&v, "format", Some(3u64.into()))).unwrap_err();
        assert!(err.to_string().contains("/format"), "{err}");
        // The manifest is a link.
        let err =
            Snapshot::decode(&with(&v, "manifest", Some(Value::Bytes(vec![7; 32])))).unwrap_err();
        assert!(err.to_string().contains("/manifest"), "{err}");
    }
}
