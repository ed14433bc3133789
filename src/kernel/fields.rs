//! Small helpers for building and reading the canonical maps of kernel objects (journal
//! entries, snapshots): text-keyed maps with a fixed set of members.

use crate::codec::cbor::{Int, Map, Value};
use crate::object::ObjectId;

/// Why a kernel object's value does not have the expected shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at `{path}`: {message}")]
pub struct ShapeError {
    /// A pointer-like path to the offending member (`""` for the whole value).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn shape(path: &str, message: impl Into<String>) -> ShapeError {
    ShapeError {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Builds a map with text keys; entries are sorted once, at the end.
#[derive(Default)]
pub(crate) struct Builder(Vec<(Value, Value)>);

impl Builder {
    pub(crate) fn new() -> Self {
        Self(Vec::with_capacity(8))
    }

    pub(crate) fn put(&mut self, k: &str, v: Value) -> &mut Self {
        self.0.push((Value::Text(k.to_owned()), v));
        self
    }

    pub(crate) fn text(&mut self, k: &str, v: &str) -> &mut Self {
        self.put(k, Value::Text(v.to_owned()))
    }

    pub(crate) fn nat(&mut self, k: &str, v: u64) -> &mut Self {
        self.put(k, v.into())
    }

    pub(crate) fn link(&mut self, k: &str, id: &ObjectId) -> &mut Self {
        self.put(k, Value::Link(*id))
    }

    pub(crate) fn digest(&mut self, k: &str, id: &ObjectId) -> &mut Self {
        self.put(k, Value::Bytes(id.as_bytes().to_vec()))
    }

    pub(crate) fn done(&mut self) -> Value {
        let entries = std::mem::take(&mut self.0);
        // Keys are distinct member names chosen by the caller.
        Value::Map(Map::from_entries(entries).unwrap_or_default())
    }
}

/// Reads the members of a text-keyed map, then checks that no other member is present.
pub(crate) struct Reader<'v> {
    m: &'v Map,
    path: &'v str,
    taken: Vec<&'static str>,
}

impl<'v> Reader<'v> {
    pub(crate) fn new(v: &'v Value, path: &'v str) -> Result<Self, ShapeError> {
        match v {
            Value::Map(m) => Ok(Self {
                m,
                path,
                taken: Vec::with_capacity(m.len()),
            }),
            _ => Err(shape(path, "expected a map")),
        }
    }

    pub(crate) fn at(&self, k: &str) -> String {
        format!("{}/{k}", self.path)
    }

    pub(crate) fn opt(&mut self, k: &'static str) -> Option<&'v Value> {
        self.taken.push(k);
        self.m.get_text(k)
    }

    pub(crate) fn req(&mut self, k: &'static str) -> Result<&'v Value, ShapeError> {
        match self.opt(k) {
            Some(v) => Ok(v),
            None => Err(shape(&self.at(k), "missing")),
        }
    }

    pub(crate) fn text(&mut self, k: &'static str) -> Result<String, ShapeError> {
        match self.req(k)? {
            Value::Text(t) => Ok(t.clone()),
            _ => Err(shape(&self.at(k), "expected text")),
        }
    }

    pub(crate) fn opt_text(&mut self, k: &'static str) -> Result<Option<String>, ShapeError> {
        match self.opt(k) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(_) => Err(shape(&self.at(k), "expected text")),
        }
    }

    pub(crate) fn nat(&mut self, k: &'static str) -> Result<u64, ShapeError> {
        let v = self.req(k)?;
        as_nat(v, "").map_err(|_| shape(&self.at(k), "expected a u64"))
    }

    pub(crate) fn link(&mut self, k: &'static str) -> Result<ObjectId, ShapeError> {
        match self.req(k)? {
            Value::Link(id) => Ok(*id),
            _ => Err(shape(&self.at(k), "expected a link")),
        }
    }

    pub(crate) fn opt_link(&mut self, k: &'static str) -> Result<Option<ObjectId>, ShapeError> {
        match self.opt(k) {
            None => Ok(None),
            Some(Value::Link(id)) => Ok(Some(*id)),
            Some(_) => Err(shape(&self.at(k), "expected a link")),
        }
    }

    /// A 32-byte digest (an id that is not a link), or null.
    pub(crate) fn digest_or_null(
        &mut self,
        k: &'static str,
    ) -> Result<Option<ObjectId>, ShapeError> {
        match self.req(k)? {
            Value::Null => Ok(None),
            v => as_digest(v, "")
                .map(Some)
                .map_err(|_| shape(&self.at(k), "expected 32 bytes")),
        }
    }

    pub(crate) fn finish(self) -> Result<(), ShapeError> {
        for (k, _) in self.m.entries() {
            match k {
                Value::Text(t) if self.taken.contains(&t.as_str()) => {}
                Value::Text(t) => {
                    return Err(shape(self.path, format!("unexpected member `{t}`")));
                }
                _ => return Err(shape(self.path, "unexpected non-text key")),
            }
        }
        Ok(())
    }
}

pub(crate) fn as_text<'v>(v: &'v Value, path: &str) -> Result<&'v str, ShapeError> {
    match v {
        Value::Text(t) => Ok(t),
        _ => Err(shape(path, "expected text")),
    }
}

pub(crate) fn as_nat(v: &Value, path: &str) -> Result<u64, ShapeError> {
    match v {
        Value::Int(i) => u64::try_from(Int::get(*i)).map_err(|_| shape(path, "expected a u64")),
        _ => Err(shape(path, "expected a u64")),
    }
}

pub(crate) fn as_digest(v: &Value, path: &str) -> Result<ObjectId, ShapeError> {
    match v {
        Value::Bytes(b) => <[u8; 32]>::try_from(b.as_slice())
            .map(ObjectId::from_bytes)
            .map_err(|_| shape(path, "expected 32 bytes")),
        _ => Err(shape(path, "expected 32 bytes")),
    }
}

pub(crate) fn as_array<'v>(v: &'v Value, path: &str) -> Result<&'v [Value], ShapeError> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(shape(path, "expected an array")),
    }
}
