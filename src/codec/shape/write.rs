//! Writing strict maps: JSON objects in a fixed member order, data-model maps in canonical
//! order, and canonical CBOR maps straight to bytes.

use crate::codec::cbor::{self, Map, Value, text_key_order, write_bytes, write_head, write_text};
use crate::codec::json::Json;
use crate::object::ObjectId;

/// A map being written, member by member; the same calls build a JSON object
/// ([`ObjWriter`]) or a data-model map ([`MapWriter`]), so one function can write a shape in
/// either tree.
pub trait MapWrite: Sized {
    /// The tree written ([`Json`] or [`Value`]).
    type Item;

    /// Adds member `key`.
    fn put(&mut self, key: &str, value: Self::Item) -> &mut Self;
    /// The map.
    fn done(self) -> Self::Item;
    /// Whether no member was added.
    fn is_empty(&self) -> bool;
    /// A text value of the tree.
    fn text_item(t: &str) -> Self::Item;
    /// An unsigned integer value of the tree.
    fn nat_item(n: u64) -> Self::Item;
    /// An array value of the tree.
    fn array_item(items: Vec<Self::Item>) -> Self::Item;

    /// Adds member `key` if `value` is given.
    fn opt_put(&mut self, key: &str, value: Option<Self::Item>) -> &mut Self {
        if let Some(v) = value {
            self.put(key, v);
        }
        self
    }

    /// Adds the text member `key`.
    fn text(&mut self, key: &str, v: &str) -> &mut Self {
        self.put(key, Self::text_item(v))
    }

    /// Adds the text member `key` if `v` is given.
    fn opt_text(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        self.opt_put(key, v.map(Self::text_item))
    }

    /// Adds the integer member `key`.
    fn nat(&mut self, key: &str, v: u64) -> &mut Self {
        self.put(key, Self::nat_item(v))
    }

    /// Adds the integer member `key` if `v` is given.
    fn opt_nat(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        self.opt_put(key, v.map(Self::nat_item))
    }

    /// Adds member `key`: an array of texts, in the order given.
    fn texts<'s>(&mut self, key: &str, xs: impl IntoIterator<Item = &'s str>) -> &mut Self {
        let items = xs.into_iter().map(Self::text_item).collect();
        self.put(key, Self::array_item(items))
    }
}

/// Builds a JSON object; members keep the order they were added in.
#[derive(Clone, Debug, Default)]
pub struct ObjWriter(Vec<(String, Json)>);

impl MapWrite for ObjWriter {
    type Item = Json;

    fn put(&mut self, key: &str, value: Json) -> &mut Self {
        self.0.push((key.to_owned(), value));
        self
    }

    fn done(self) -> Json {
        Json::Object(self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn text_item(t: &str) -> Json {
        Json::String(t.to_owned())
    }

    fn nat_item(n: u64) -> Json {
        Json::Number(n.to_string())
    }

    fn array_item(items: Vec<Json>) -> Json {
        Json::Array(items)
    }
}

/// Builds a data-model map with text keys, in canonical order whatever order members are
/// added in (sorted once, at the end); adding a key again replaces its value.
#[derive(Clone, Debug, Default)]
pub struct MapWriter(Vec<(String, Value)>);

impl MapWriter {
    /// An empty map expecting about `n` members.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Adds member `key`: a link.
    pub fn link(&mut self, key: &str, id: &ObjectId) -> &mut Self {
        self.put(key, Value::Link(*id))
    }

    /// Adds member `key`: a 32-byte digest (an id held as bytes, not a link).
    pub fn digest(&mut self, key: &str, id: &ObjectId) -> &mut Self {
        self.put(key, Value::Bytes(id.as_bytes().to_vec()))
    }

    /// Adds member `key`: null.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.put(key, Value::Null)
    }

    /// Adds member `key`: a boolean.
    pub fn bool(&mut self, key: &str, b: bool) -> &mut Self {
        self.put(key, Value::Bool(b))
    }
}

impl MapWrite for MapWriter {
    type Item = Value;

    fn put(&mut self, key: &str, value: Value) -> &mut Self {
        self.0.push((key.to_owned(), value));
        self
    }

    fn done(self) -> Value {
        Value::Map(Map::from_text_entries(self.0))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn text_item(t: &str) -> Value {
        Value::Text(t.to_owned())
    }

    fn nat_item(n: u64) -> Value {
        Value::from(n)
    }

    fn array_item(items: Vec<Value>) -> Value {
        Value::Array(items)
    }
}

/// Writes a canonical CBOR map straight to bytes, for the hot paths (journal entries, reducer
/// envelopes): no value tree and no allocation beyond `out`.
///
/// The caller gives the number of members up front and adds them in canonical key order
/// (shorter keys first, then bytewise: [`cbor::text_key_order`]); debug builds check both, so
/// a test that compares the bytes with [`cbor::encode`] of the same value holds the writer to
/// the generic encoder.
///
/// ```
/// use aos::codec::cbor::{self, Map, Value};
/// use aos::codec::shape::MapEncoder;
/// let mut out = Vec::new();
/// let mut m = MapEncoder::new(&mut out, 2);
/// m.nat("n", 7).text("kind", "event");
/// m.finish();
/// let v = Value::Map(Map::from_text_entries(vec![
///     ("kind".into(), "event".into()),
///     ("n".into(), 7u64.into()),
/// ]));
/// assert_eq!(out, cbor::encode(&v));
/// ```
#[derive(Debug)]
pub struct MapEncoder<'o, 'k> {
    out: &'o mut Vec<u8>,
    left: u64,
    last: Option<&'k str>,
}

impl<'o, 'k> MapEncoder<'o, 'k> {
    /// Starts a map of `len` members at the end of `out`.
    pub fn new(out: &'o mut Vec<u8>, len: u64) -> Self {
        write_head(out, 5, len);
        Self {
            out,
            left: len,
            last: None,
        }
    }

    /// Writes the key `key` and returns the buffer, to which the caller appends its value.
    pub fn key(&mut self, key: &'k str) -> &mut Vec<u8> {
        debug_assert!(
            self.left > 0,
            "more members than the map's length at `{key}`"
        );
        debug_assert!(
            self.last
                .is_none_or(|last| text_key_order(last, key).is_lt()),
            "`{key}` is not after `{}` in canonical order",
            self.last.unwrap_or_default()
        );
        self.left = self.left.saturating_sub(1);
        self.last = Some(key);
        write_text(self.out, key);
        self.out
    }

    /// Member `key`: text.
    pub fn text(&mut self, key: &'k str, v: &str) -> &mut Self {
        write_text(self.key(key), v);
        self
    }

    /// Member `key`: an unsigned integer.
    pub fn nat(&mut self, key: &'k str, v: u64) -> &mut Self {
        write_head(self.key(key), 0, v);
        self
    }

    /// Member `key`: a byte string.
    pub fn bytes(&mut self, key: &'k str, b: &[u8]) -> &mut Self {
        write_bytes(self.key(key), b);
        self
    }

    /// Member `key`: a byte string, or null for `None`.
    pub fn opt_bytes(&mut self, key: &'k str, b: Option<&[u8]>) -> &mut Self {
        match b {
            Some(b) => self.bytes(key, b),
            None => self.null(key),
        }
    }

    /// Member `key`: a boolean.
    pub fn bool(&mut self, key: &'k str, b: bool) -> &mut Self {
        self.key(key).push(if b { 0xf5 } else { 0xf4 });
        self
    }

    /// Member `key`: null.
    pub fn null(&mut self, key: &'k str) -> &mut Self {
        self.key(key).push(0xf6);
        self
    }

    /// Member `key`: a link.
    pub fn link(&mut self, key: &'k str, id: &ObjectId) -> &mut Self {
        let out = self.key(key);
        write_head(out, 6, cbor::LINK_TAG);
        write_bytes(out, id.as_bytes());
        self
    }

    /// Member `key`: any value, encoded canonically.
    pub fn value(&mut self, key: &'k str, v: &Value) -> &mut Self {
        cbor::encode_into(v, self.key(key));
        self
    }

    /// Member `key`: a map of `len` members, written through the encoder returned (finish it
    /// before the next member).
    pub fn map(&mut self, key: &'k str, len: u64) -> MapEncoder<'_, 'k> {
        MapEncoder::new(self.key(key), len)
    }

    /// Member `key`: an array of `len` items, which the caller appends to the buffer
    /// returned.
    pub fn array(&mut self, key: &'k str, len: u64) -> &mut Vec<u8> {
        let out = self.key(key);
        write_head(out, 4, len);
        out
    }

    /// Ends the map; debug builds check that every member announced was written.
    pub fn finish(self) {
        debug_assert_eq!(self.left, 0, "fewer members than the map's length");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::props::value;
    use proptest::prelude::*;

    #[test]
    fn writers_give_one_shape_in_either_tree() {
        fn shape<W: MapWrite + Default>() -> W::Item {
            let mut w = W::default();
            assert!(w.is_empty());
            w.text("name", "a/b@1")
                .opt_text("gone", None)
                .nat("n", 3)
                .opt_nat("m", Some(4))
                .texts("xs", ["b", "a"]);
            assert!(!w.is_empty());
            w.done()
        }
        let j = shape::<ObjWriter>();
        assert_eq!(
            j.to_text(false),
            r#"{"name":"a/b@1","n":3,"m":4,"xs":["b","a"]}"#
        );
        let v = shape::<MapWriter>();
        assert_eq!(
            crate::codec::json::to_json(&v),
            r#"{"m":4,"n":3,"xs":["b","a"],"name":"a/b@1"}"#
        );
    }

    #[test]
    fn a_key_written_again_replaces_its_value() {
        let mut w = MapWriter::default();
        w.nat("a", 1).null("b").nat("a", 2);
        let mut want = Map::new();
        want.insert("a".into(), 2u64.into());
        want.insert("b".into(), Value::Null);
        assert_eq!(w.done(), Value::Map(want));
    }

    #[test]
    fn the_encoder_writes_what_the_generic_encoder_does() {
        let id = ObjectId::from_bytes([3; 32]);
        let inner = Value::Array(vec![Value::Null, 1u64.into()]);
        let mut out = vec![0xff];
        let mut m = MapEncoder::new(&mut out, 9);
        m.nat("a", 500)
            .bool("b", true)
            .null("c")
            .link("l", &id)
            .bytes("bs", &[1, 2])
            .opt_bytes("nb", None)
            .value("vv", &inner);
        {
            let mut sub = m.map("sub", 1);
            sub.text("k", "v");
            sub.finish();
        }
        let items = m.array("list", 2);
        cbor::encode_into(&Value::Null, items);
        cbor::encode_into(&Value::from("x"), items);
        m.finish();
        let mut w = MapWriter::default();
        w.nat("a", 500)
            .bool("b", true)
            .null("c")
            .link("l", &id)
            .put("bs", Value::Bytes(vec![1, 2]))
            .null("nb")
            .put("vv", inner);
        let mut sub = MapWriter::default();
        sub.text("k", "v");
        w.put("sub", sub.done());
        w.put("list", Value::Array(vec![Value::Null, "x".into()]));
        let mut want = vec![0xff];
        cbor::encode_into(&w.done(), &mut want);
        assert_eq!(out, want);
    }

    #[test]
    #[should_panic(expected = "canonical order")]
    #[cfg(debug_assertions)]
    fn the_encoder_refuses_keys_out_of_order_in_debug_builds() {
        let mut out = Vec::new();
        let mut m = MapEncoder::new(&mut out, 2);
        m.nat("bb", 1).nat("a", 2);
    }

    #[test]
    #[should_panic(expected = "fewer members")]
    #[cfg(debug_assertions)]
    fn the_encoder_refuses_a_short_map_in_debug_builds() {
        let mut out = Vec::new();
        let mut m = MapEncoder::new(&mut out, 2);
        m.nat("a", 1);
        m.finish();
    }

    proptest! {
        #[test]
        fn map_writer_agrees_with_map(entries in proptest::collection::vec(("[a-d]{0,3}", value()), 0..10)) {
            let mut w = MapWriter::with_capacity(entries.len());
            let mut m = Map::new();
            for (k, v) in &entries {
                w.put(k, v.clone());
                m.insert(Value::Text(k.clone()), v.clone());
            }
            prop_assert_eq!(w.done(), Value::Map(m));
        }

        #[test]
        fn encoder_agrees_with_encode(entries in proptest::collection::btree_map("[a-d]{0,3}", value(), 0..10)) {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort_by(|a, b| text_key_order(a, b));
            let mut out = Vec::new();
            let mut enc = MapEncoder::new(&mut out, keys.len() as u64);
            for k in &keys {
                enc.value(k, &entries[*k]);
            }
            enc.finish();
            let want = Value::Map(Map::from_text_entries(
                entries.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ));
            prop_assert_eq!(out, cbor::encode(&want));
        }
    }
}
