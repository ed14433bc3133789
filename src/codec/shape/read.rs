//! Reading strict maps member by member, over JSON objects and data-model maps alike.

use std::fmt;

use super::path::Path;
use crate::codec::cbor::{Int, Value};
use crate::codec::json::Json;
use crate::codec::quote::{MESSAGE_CHARS, bounded, bounded_to};
use crate::object::ObjectId;

// ---------------------------------------------------------------------------------------------
// Trees

/// A tree whose maps can be read strictly: [`Json`] (objects, keys always text, in source
/// order) or the data model's [`Value`] (maps in canonical order, keys of any type).
pub trait Tree: Sized {
    /// The type of a map key.
    type Key;
    /// How messages name a map of this tree (`an object`, `a map`).
    const MAP: &'static str;
    /// The members, if this is a map.
    fn members(&self) -> Option<&[(Self::Key, Self)]>;
    /// The elements, if this is an array.
    fn items(&self) -> Option<&[Self]>;
    /// A key as text, if it is text.
    fn key_text(key: &Self::Key) -> Option<&str>;
    /// A key as messages show it when it is not text.
    fn key_debug(key: &Self::Key) -> String;
    /// How messages name the type of a key.
    fn key_type_name(key: &Self::Key) -> &'static str;
    /// How messages name the type of this value.
    fn type_name(&self) -> &'static str;
}

impl Tree for Json {
    type Key = String;
    const MAP: &'static str = "an object";

    fn members(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Json]> {
        match self {
            Json::Array(xs) => Some(xs),
            _ => None,
        }
    }

    fn key_text(key: &String) -> Option<&str> {
        Some(key)
    }

    fn key_debug(key: &String) -> String {
        format!("{key:?}")
    }

    fn key_type_name(_: &String) -> &'static str {
        "string"
    }

    fn type_name(&self) -> &'static str {
        Json::type_name(self)
    }
}

impl Tree for Value {
    type Key = Value;
    const MAP: &'static str = "a map";

    fn members(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m.entries()),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Value]> {
        match self {
            Value::Array(xs) => Some(xs),
            _ => None,
        }
    }

    fn key_text(key: &Value) -> Option<&str> {
        match key {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    fn key_debug(key: &Value) -> String {
        format!("{key:?}")
    }

    fn key_type_name(key: &Value) -> &'static str {
        key.type_name()
    }

    fn type_name(&self) -> &'static str {
        Value::type_name(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Problems

/// What is wrong with a value, in terms every strict shape shares. Each reader that must keep
/// its own wording (an AIR authoring diagnostic, a reducer fault) phrases these itself;
/// [`fmt::Display`] is the default wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The value should be a map: "`{what}` is {map}, found {found}".
    NotAMap {
        /// What the map is (`a step`, `` `abi` ``).
        what: &'static str,
        /// How the tree names a map (`a map`, `an object`).
        map: &'static str,
        /// The type found instead.
        found: &'static str,
    },
    /// A key of a map that must have text keys is not text.
    NonTextKey {
        /// What the map is.
        what: &'static str,
        /// The key, as [`Tree::key_debug`] shows it.
        key: String,
        /// The key's type.
        found: &'static str,
    },
    /// A required member is absent (reported at the map, or at the member: see
    /// [`Fields::missing_at_member`]).
    Missing {
        /// What the map is.
        what: &'static str,
        /// The member.
        key: String,
    },
    /// Members the shape does not have (reported at the map), in the map's order.
    Unknown {
        /// What the map is.
        what: &'static str,
        /// The members.
        keys: Vec<String>,
    },
    /// A value of the wrong type: "expected {expected}, found {found}".
    WrongType {
        /// What was expected (`text`, `an array`, `a link`).
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An integer outside the range of `range` (`u64`, `i64`).
    OutOfRange {
        /// The range's name.
        range: &'static str,
    },
    /// Anything a reader checks beyond the shape, in its own words.
    Invalid(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotAMap { what, map, found } => write!(f, "{what} is {map}, found {found}"),
            Problem::NonTextKey { what, key, .. } => {
                write!(f, "{what} has a key that is not text: {key}")
            }
            Problem::Missing { key, .. } => write!(f, "`{key}` is missing"),
            Problem::Unknown { keys, .. } => {
                f.write_str("unexpected member(s) ")?;
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{k}`")?;
                }
                Ok(())
            }
            Problem::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Problem::OutOfRange { range } => write!(f, "integer out of the {range} range"),
            Problem::Invalid(m) => f.write_str(m),
        }
    }
}

/// A value that does not have its expected shape, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", located("", .path, .problem))]
pub struct ShapeError {
    /// The JSON pointer (RFC 6901) of the offending value; for [`Problem::Unknown`], of the
    /// map; for [`Problem::Missing`], of the map or (see [`Fields::missing_at_member`]) of the
    /// member.
    pub path: String,
    /// What is wrong.
    pub problem: Problem,
}

impl ShapeError {
    /// A problem at `path`.
    #[must_use]
    pub fn new(path: &Path<'_>, problem: Problem) -> Self {
        Self {
            path: path.pointer(),
            problem,
        }
    }

    /// A problem described in the reader's own words, at `path`.
    #[must_use]
    pub fn invalid(path: &Path<'_>, message: impl Into<String>) -> Self {
        Self::new(path, Problem::Invalid(message.into()))
    }
}

/// A message and where it applies, as the readers' errors show them: ``{what} at `{pointer}`:
/// {message}``, without `` at `…` `` where the pointer is empty (the whole) and without
/// `{what}` where it is empty.
pub(crate) fn located<'a>(
    what: &'a str,
    pointer: &'a str,
    message: &'a dyn fmt::Display,
) -> impl fmt::Display + 'a {
    fmt::from_fn(move |f| {
        let message = message.to_string();
        let message = bounded_to(&message, MESSAGE_CHARS);
        let pointer = bounded(pointer);
        match (what.is_empty(), pointer.is_empty()) {
            (true, true) => write!(f, "{message}"),
            (true, false) => write!(f, "at `{pointer}`: {message}"),
            (false, true) => write!(f, "{what}: {message}"),
            (false, false) => write!(f, "{what} at `{pointer}`: {message}"),
        }
    })
}

/// Where a reader that reports every problem (rather than stopping at the first) puts the
/// shape problems it finds.
pub trait Sink {
    /// Records one problem.
    fn report(&mut self, e: ShapeError);
}

impl Sink for Vec<ShapeError> {
    fn report(&mut self, e: ShapeError) {
        self.push(e);
    }
}

/// The result of one read, its error reported to `sink` instead of returned.
pub fn keep<T, S: Sink + ?Sized>(sink: &mut S, r: Result<T, ShapeError>) -> Option<T> {
    r.map_err(|e| sink.report(e)).ok()
}

// ---------------------------------------------------------------------------------------------
// Maps

/// Which members of a map were taken; no allocation for maps of up to 64 members.
#[derive(Debug)]
enum Taken {
    Few(u64),
    Many(Vec<bool>),
}

impl Taken {
    fn new(n: usize) -> Self {
        if n <= 64 {
            Taken::Few(0)
        } else {
            Taken::Many(vec![false; n])
        }
    }

    fn set(&mut self, i: usize) {
        match self {
            Taken::Few(bits) => *bits |= 1u64 << i,
            Taken::Many(v) => v[i] = true,
        }
    }

    fn get(&self, i: usize) -> bool {
        match self {
            Taken::Few(bits) => bits & (1u64 << i) != 0,
            Taken::Many(v) => v[i],
        }
    }
}

/// A map being read member by member: every member read is taken, and
/// [`finish`](Fields::finish) rejects the members nobody took.
///
/// Two styles share it: decoders that stop at the first problem use the `Result` methods
/// ([`req`](Fields::req), [`finish`](Fields::finish)); readers that report every problem and
/// read on use the ones taking a [`Sink`] ([`req_with`](Fields::req_with),
/// [`opt_with`](Fields::opt_with), [`finish_into`](Fields::finish_into)).
///
/// ```
/// use aos::codec::shape::{Fields, Path};
/// use aos::codec::cbor::{Map, Value};
/// let v = Value::Map(Map::from_text_entries(vec![("a".into(), Value::from(1u64))]));
/// let mut f = Fields::open(&v, &Path::ROOT, "a thing").unwrap();
/// assert_eq!(f.req("a").unwrap().u64(), Ok(1));
/// assert_eq!(f.req("b").unwrap_err().to_string(), "`b` is missing");
/// assert!(f.finish().is_ok());
/// ```
#[derive(Debug)]
pub struct Fields<'v, 'p, T: Tree> {
    members: &'v [(T::Key, T)],
    path: &'p Path<'p>,
    what: &'static str,
    taken: Taken,
    missing_at_member: bool,
}

impl<'v, 'p, T: Tree> Fields<'v, 'p, T> {
    /// Starts reading `value`, which sits at `path`, as the map `what` (`a step`), whose keys
    /// must all be text.
    ///
    /// # Errors
    /// [`Problem::NotAMap`] or [`Problem::NonTextKey`].
    pub fn open(value: &'v T, path: &'p Path<'p>, what: &'static str) -> Result<Self, ShapeError> {
        let Some(members) = value.members() else {
            return Err(ShapeError::new(
                path,
                Problem::NotAMap {
                    what,
                    map: T::MAP,
                    found: value.type_name(),
                },
            ));
        };
        if let Some((k, _)) = members.iter().find(|(k, _)| T::key_text(k).is_none()) {
            return Err(ShapeError::new(
                path,
                Problem::NonTextKey {
                    what,
                    key: T::key_debug(k),
                    found: T::key_type_name(k),
                },
            ));
        }
        Ok(Self {
            members,
            path,
            what,
            taken: Taken::new(members.len()),
            missing_at_member: false,
        })
    }

    /// Reports a missing member at the member's own pointer (`/height`) rather than at the
    /// map: the convention of the objects spec for kernel objects (journal entries,
    /// snapshots, lineages), whose vectors pin it.
    #[must_use]
    pub fn missing_at_member(mut self) -> Self {
        self.missing_at_member = true;
        self
    }

    /// [`open`](Fields::open), reporting the problem to `sink`.
    pub fn open_into<S: Sink + ?Sized>(
        value: &'v T,
        path: &'p Path<'p>,
        what: &'static str,
        sink: &mut S,
    ) -> Option<Self> {
        keep(sink, Self::open(value, path, what))
    }

    /// Where the map sits.
    #[must_use]
    pub fn path(&self) -> &'p Path<'p> {
        self.path
    }

    /// What the map is.
    #[must_use]
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// How many members the map has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the map has no members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether member `key` is present (without taking it).
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|(k, _)| T::key_text(k) == Some(key))
    }

    /// Takes member `key`, if present.
    pub fn opt(&mut self, key: &'p str) -> Option<Member<'v, 'p, T>> {
        let i = self.position(key)?;
        self.taken.set(i);
        Some(Member {
            value: &self.members[i].1,
            path: self.path.key(key),
        })
    }

    /// Takes member `key`.
    ///
    /// # Errors
    /// [`Problem::Missing`] if it is absent (see [`missing`](Fields::missing)).
    pub fn req(&mut self, key: &'p str) -> Result<Member<'v, 'p, T>, ShapeError> {
        self.opt(key).ok_or_else(|| self.missing(key))
    }

    /// [`Problem::Missing`] for member `key`: at the map, or at the member after
    /// [`missing_at_member`](Fields::missing_at_member). For readers that take members in
    /// another way than [`req`](Fields::req) (e.g. [`each`](Fields::each)).
    #[must_use]
    pub fn missing(&self, key: &str) -> ShapeError {
        let problem = Problem::Missing {
            what: self.what,
            key: key.to_owned(),
        };
        if self.missing_at_member {
            ShapeError::new(&self.path.key(key), problem)
        } else {
            ShapeError::new(self.path, problem)
        }
    }

    /// Takes the members not yet taken one by one in the map's order, reading each with
    /// `read`, which says whether it knows the member; stops at the first problem: `read`'s
    /// error, or [`Problem::Unknown`] (at the map) naming the first member `read` did not know.
    /// For decoders that report the first problem in the order the map holds its members (the
    /// reducer output envelope).
    ///
    /// # Errors
    /// As said.
    pub fn each<E: From<ShapeError>>(
        &mut self,
        mut read: impl FnMut(&'v str, Member<'v, '_, T>) -> Result<bool, E>,
    ) -> Result<(), E> {
        let members = self.members;
        for (i, (k, value)) in members.iter().enumerate() {
            // `open` checked that every key is text.
            let Some(key) = T::key_text(k) else { continue };
            if self.taken.get(i) {
                continue;
            }
            self.taken.set(i);
            if !read(key, Member::new(value, self.path.key(key)))? {
                return self.reject(vec![key.to_owned()]).map_err(E::from);
            }
        }
        Ok(())
    }

    /// Rejects, before anything is read, the members not named in `known`: for shapes whose
    /// spec reports an unknown member before any other problem (a lineage).
    ///
    /// # Errors
    /// [`Problem::Unknown`] (at the map) naming every such member, in the map's order.
    pub fn only(&self, known: &[&str]) -> Result<(), ShapeError> {
        let keys: Vec<String> = self
            .members
            .iter()
            .filter_map(|(k, _)| T::key_text(k))
            .filter(|k| !known.contains(k))
            .map(str::to_owned)
            .collect();
        self.reject(keys)
    }

    /// Reads optional member `key` with `f`: `Some(None)` if absent, `None` if present but not
    /// read (`f` reported why).
    pub fn opt_with<U, S: Sink + ?Sized>(
        &mut self,
        key: &'p str,
        sink: &mut S,
        f: impl FnOnce(Member<'v, 'p, T>, &mut S) -> Option<U>,
    ) -> Option<Option<U>> {
        match self.opt(key) {
            None => Some(None),
            Some(m) => f(m, sink).map(Some),
        }
    }

    /// Reads optional member `key` with `f`, absent meaning `U::default()` (an empty list, a
    /// map with nothing in it); `None` if present but not read.
    pub fn opt_default_with<U: Default, S: Sink + ?Sized>(
        &mut self,
        key: &'p str,
        sink: &mut S,
        f: impl FnOnce(Member<'v, 'p, T>, &mut S) -> Option<U>,
    ) -> Option<U> {
        self.opt_with(key, sink, f).map(Option::unwrap_or_default)
    }

    /// Reads required member `key` with `f`; reports it to `sink` if absent.
    pub fn req_with<U, S: Sink + ?Sized>(
        &mut self,
        key: &'p str,
        sink: &mut S,
        f: impl FnOnce(Member<'v, 'p, T>, &mut S) -> Option<U>,
    ) -> Option<U> {
        let m = keep(sink, self.req(key))?;
        f(m, sink)
    }

    fn unknown(&self) -> Vec<String> {
        self.members
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.taken.get(*i))
            .filter_map(|(_, (k, _))| T::key_text(k).map(str::to_owned))
            .collect()
    }

    /// Ends reading: every member must have been taken.
    ///
    /// # Errors
    /// [`Problem::Unknown`] (at the map) naming every member not taken, in the map's order.
    pub fn finish(self) -> Result<(), ShapeError> {
        self.reject(self.unknown())
    }

    /// [`Problem::Unknown`] (at the map) for `keys`, if there are any.
    fn reject(&self, keys: Vec<String>) -> Result<(), ShapeError> {
        if keys.is_empty() {
            return Ok(());
        }
        Err(ShapeError::new(
            self.path,
            Problem::Unknown {
                what: self.what,
                keys,
            },
        ))
    }

    /// [`finish`](Fields::finish), reporting to `sink`.
    pub fn finish_into<S: Sink + ?Sized>(self, sink: &mut S) {
        keep(sink, self.finish());
    }
}

// ---------------------------------------------------------------------------------------------
// Members

/// A value being read and where it sits.
#[derive(Debug)]
pub struct Member<'v, 'p, T> {
    /// The value.
    pub value: &'v T,
    /// Where it sits.
    pub path: Path<'p>,
}

// Not derived: a member is a pair of borrows, copyable whatever the tree.
impl<T> Clone for Member<'_, '_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Member<'_, '_, T> {}

impl<'v, 'p, T: Tree> Member<'v, 'p, T> {
    /// `value`, sitting at `path`.
    #[must_use]
    pub fn new(value: &'v T, path: Path<'p>) -> Self {
        Self { value, path }
    }

    /// `problem`, here.
    #[must_use]
    pub fn fail(&self, problem: Problem) -> ShapeError {
        ShapeError::new(&self.path, problem)
    }

    /// A problem in the reader's own words, here.
    #[must_use]
    pub fn invalid(&self, message: impl Into<String>) -> ShapeError {
        ShapeError::invalid(&self.path, message)
    }

    /// [`Problem::WrongType`]: `expected` was expected here.
    #[must_use]
    pub fn wrong_type(&self, expected: &'static str) -> ShapeError {
        self.fail(Problem::WrongType {
            expected,
            found: self.value.type_name(),
        })
    }

    /// Reads this value as the map `what` (see [`Fields::open`]).
    ///
    /// # Errors
    /// As [`Fields::open`].
    pub fn fields(&self, what: &'static str) -> Result<Fields<'v, '_, T>, ShapeError> {
        Fields::open(self.value, &self.path, what)
    }

    /// The elements of this array.
    ///
    /// # Errors
    /// [`Problem::WrongType`] if it is not an array.
    pub fn array(&self) -> Result<&'v [T], ShapeError> {
        self.value
            .items()
            .ok_or_else(|| self.wrong_type("an array"))
    }

    /// The elements of this array, each with its path.
    ///
    /// # Errors
    /// [`Problem::WrongType`] if it is not an array.
    pub fn items(&self) -> Result<impl Iterator<Item = Member<'v, '_, T>>, ShapeError> {
        let items = self.array()?;
        Ok(items.iter().enumerate().map(|(i, x)| Member {
            value: x,
            path: self.path.index(i),
        }))
    }

    /// The members of this map, in the map's order, each with its path, for maps whose keys
    /// are data (names, slots) rather than a fixed set of members.
    ///
    /// # Errors
    /// [`Problem::WrongType`] if it is not a map; an item is [`Problem::NonTextKey`] for a key
    /// that is not text.
    #[allow(clippy::type_complexity)]
    pub fn entries(
        &self,
    ) -> Result<impl Iterator<Item = Result<(&'v str, Member<'v, '_, T>), ShapeError>>, ShapeError>
    {
        let members = self
            .value
            .members()
            .ok_or_else(|| self.wrong_type(T::MAP))?;
        Ok(members.iter().map(|(k, x)| match T::key_text(k) {
            Some(t) => Ok((
                t,
                Member {
                    value: x,
                    path: self.path.key(t),
                },
            )),
            None => Err(self.fail(Problem::NonTextKey {
                what: "the map",
                key: T::key_debug(k),
                found: T::key_type_name(k),
            })),
        }))
    }
}

impl<'v> Member<'v, '_, Value> {
    /// This value as text.
    ///
    /// # Errors
    /// [`Problem::WrongType`].
    pub fn text(&self) -> Result<&'v str, ShapeError> {
        match self.value {
            Value::Text(t) => Ok(t),
            _ => Err(self.wrong_type("text")),
        }
    }

    /// This value as an integer.
    ///
    /// # Errors
    /// [`Problem::WrongType`].
    pub fn int(&self) -> Result<i128, ShapeError> {
        match self.value {
            Value::Int(i) => Ok(Int::get(*i)),
            _ => Err(self.wrong_type("an integer")),
        }
    }

    /// This value as an unsigned 64-bit integer.
    ///
    /// # Errors
    /// [`Problem::WrongType`], [`Problem::OutOfRange`].
    pub fn u64(&self) -> Result<u64, ShapeError> {
        u64::try_from(self.int()?).map_err(|_| self.fail(Problem::OutOfRange { range: "u64" }))
    }

    /// This value as a signed 64-bit integer.
    ///
    /// # Errors
    /// [`Problem::WrongType`], [`Problem::OutOfRange`].
    pub fn i64(&self) -> Result<i64, ShapeError> {
        i64::try_from(self.int()?).map_err(|_| self.fail(Problem::OutOfRange { range: "i64" }))
    }

    /// This value as a boolean.
    ///
    /// # Errors
    /// [`Problem::WrongType`].
    pub fn bool(&self) -> Result<bool, ShapeError> {
        match self.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong_type("a boolean")),
        }
    }

    /// This value as a byte string.
    ///
    /// # Errors
    /// [`Problem::WrongType`].
    pub fn bytes(&self) -> Result<&'v [u8], ShapeError> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.wrong_type("a byte string")),
        }
    }

    /// This value as a link.
    ///
    /// # Errors
    /// [`Problem::WrongType`].
    pub fn link(&self) -> Result<ObjectId, ShapeError> {
        match self.value {
            Value::Link(id) => Ok(*id),
            _ => Err(self.wrong_type("a link")),
        }
    }

    /// This value as a 32-byte digest (an id held as a byte string, not a link).
    ///
    /// # Errors
    /// [`Problem::WrongType`] (naming `32 bytes`), also for a byte string of another length.
    pub fn digest(&self) -> Result<ObjectId, ShapeError> {
        match self.value {
            Value::Bytes(b) => <[u8; 32]>::try_from(b.as_slice())
                .map(ObjectId::from_bytes)
                .map_err(|_| self.wrong_type("32 bytes")),
            _ => Err(self.wrong_type("32 bytes")),
        }
    }

    /// `None` if this value is null, else `f` of it.
    ///
    /// # Errors
    /// Those of `f`.
    pub fn or_null<U>(
        self,
        f: impl FnOnce(&Self) -> Result<U, ShapeError>,
    ) -> Result<Option<U>, ShapeError> {
        match self.value {
            Value::Null => Ok(None),
            _ => f(&self).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::Map;
    use crate::codec::json::parse_json;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(Map::from_text_entries(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        ))
    }

    #[test]
    fn members_are_taken_once_and_the_rest_rejected() {
        let v = map(vec![
            ("a", 1u64.into()),
            ("bb", "x".into()),
            ("c", Value::Null),
            ("zz", Value::Null),
        ]);
        let mut f = Fields::open(&v, &Path::ROOT, "a thing").unwrap();
        assert_eq!(f.len(), 4);
        assert!(f.has("c") && !f.has("d"));
        assert_eq!(f.req("a").unwrap().u64(), Ok(1));
        assert_eq!(f.req("a").unwrap().path.pointer(), "/a");
        assert!(f.opt("d").is_none());
        let e = f.req("d").unwrap_err();
        assert_eq!(
            e.problem,
            Problem::Missing {
                what: "a thing",
                key: "d".into()
            }
        );
        assert_eq!(e.to_string(), "`d` is missing");
        let bb = f.req("bb").unwrap();
        assert_eq!(bb.text(), Ok("x"));
        assert_eq!(
            bb.u64().unwrap_err().to_string(),
            "at `/bb`: expected an integer, found text"
        );
        // Canonical order: `c` and `zz` left, shorter key first.
        assert_eq!(
            f.finish().unwrap_err().to_string(),
            "unexpected member(s) `c`, `zz`"
        );
    }

    #[test]
    fn maps_must_be_maps_with_text_keys() {
        let base = Path::base("/4");
        let e = Fields::open(&Value::Null, &base, "a step").unwrap_err();
        assert_eq!(e.to_string(), "at `/4`: a step is a map, found null");
        let mut m = Map::new();
        m.insert(Value::from(1u64), Value::Null);
        let e = Fields::open(&Value::Map(m), &Path::ROOT, "a step").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a step has a key that is not text: Int(Int(1))"
        );
        assert!(matches!(
            e.problem,
            Problem::NonTextKey {
                found: "an integer",
                ..
            }
        ));
        let j = parse_json("[1]").unwrap();
        let e = Fields::open(&j, &Path::ROOT, "a node").unwrap_err();
        assert_eq!(e.to_string(), "a node is an object, found array");
    }

    #[test]
    fn many_members_are_tracked_too() {
        let v = map((0..100)
            .map(|i| {
                (
                    Box::leak(format!("k{i}").into_boxed_str()) as &str,
                    Value::Null,
                )
            })
            .collect());
        let mut f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        for k in keys.iter().filter(|k| k.as_str() != "k42") {
            assert!(f.opt(k).is_some());
        }
        assert_eq!(
            f.finish().unwrap_err().problem,
            Problem::Unknown {
                what: "m",
                keys: vec!["k42".into()]
            }
        );
    }

    #[test]
    fn typed_accessors_name_what_they_expected() {
        let id = ObjectId::from_bytes([9; 32]);
        let v = map(vec![
            ("big", Value::from(u64::MAX)),
            ("neg", Value::from(-1i64)),
            ("link", Value::Link(id)),
            ("dig", Value::Bytes(vec![9; 32])),
            ("short", Value::Bytes(vec![9; 3])),
            ("t", Value::Bool(true)),
            ("n", Value::Null),
            ("xs", Value::Array(vec![Value::Null, 5u64.into()])),
        ]);
        let mut f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        let msg = |r: Result<_, ShapeError>| r.map(|_: ()| ()).unwrap_err().to_string();
        assert_eq!(f.req("big").unwrap().u64(), Ok(u64::MAX));
        assert_eq!(
            msg(f.req("big").unwrap().i64().map(drop)),
            "at `/big`: integer out of the i64 range"
        );
        assert_eq!(
            msg(f.req("neg").unwrap().u64().map(drop)),
            "at `/neg`: integer out of the u64 range"
        );
        assert_eq!(f.req("neg").unwrap().i64(), Ok(-1));
        assert_eq!(f.req("link").unwrap().link(), Ok(id));
        assert_eq!(f.req("dig").unwrap().digest(), Ok(id));
        assert_eq!(
            msg(f.req("short").unwrap().digest().map(drop)),
            "at `/short`: expected 32 bytes, found a byte string"
        );
        assert_eq!(f.req("t").unwrap().bool(), Ok(true));
        assert_eq!(f.req("n").unwrap().or_null(|m| m.link()), Ok(None));
        assert_eq!(f.req("link").unwrap().or_null(|m| m.link()), Ok(Some(id)));
        let xs = f.req("xs").unwrap();
        let paths: Vec<String> = xs.items().unwrap().map(|m| m.path.pointer()).collect();
        assert_eq!(paths, ["/xs/0", "/xs/1"]);
        assert_eq!(
            msg(xs.items().unwrap().try_for_each(|m| m.u64().map(drop))),
            "at `/xs/0`: expected an integer, found null"
        );
        assert!(f.finish().is_ok());
    }

    #[test]
    fn dictionary_maps_yield_their_entries_in_order() {
        let v = map(vec![("b", 1u64.into()), ("a/x", 2u64.into())]);
        let m = Member::new(&v, Path::ROOT.key("mods"));
        let got: Vec<(String, String, u64)> = m
            .entries()
            .unwrap()
            .map(|r| {
                let (k, x) = r.unwrap();
                (k.to_owned(), x.path.pointer(), x.u64().unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("b".into(), "/mods/b".into(), 1),
                ("a/x".into(), "/mods/a~1x".into(), 2)
            ]
        );
        let not = Member::new(&Value::Null, Path::ROOT);
        assert_eq!(
            not.entries().err().map(|e| e.to_string()),
            Some("expected a map, found null".into())
        );
    }

    #[test]
    fn missing_members_can_be_reported_at_the_member() {
        let v = map(vec![("a", 1u64.into())]);
        let base = Path::base("/3");
        let mut f = Fields::open(&v, &base, "m").unwrap();
        assert_eq!(f.req("b").unwrap_err().path, "/3");
        let mut f = f.missing_at_member();
        let e = f.req("b/c").unwrap_err();
        assert_eq!(e.path, "/3/b~1c");
        assert_eq!(
            e.problem,
            Problem::Missing {
                what: "m",
                key: "b/c".into()
            }
        );
        assert_eq!(f.missing("z").to_string(), "at `/3/z`: `z` is missing");
    }

    #[test]
    fn each_reads_in_the_maps_order_and_stops_at_the_first_problem() {
        let v = map(vec![
            ("bb", 2u64.into()),
            ("a", 1u64.into()),
            ("zz", Value::Null),
            ("c", "x".into()),
        ]);
        // Canonical order: `a`, `c`, `bb`, `zz`; `a` taken before.
        let mut f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        assert!(f.opt("a").is_some());
        let mut seen = Vec::new();
        let r = f.each(|k, m| {
            seen.push((k, m.path.pointer()));
            Ok::<_, ShapeError>(k != "bb")
        });
        assert_eq!(seen, [("c", "/c".into()), ("bb", "/bb".into())]);
        let e = r.unwrap_err();
        assert_eq!(
            e.problem,
            Problem::Unknown {
                what: "m",
                keys: vec!["bb".into()]
            }
        );
        assert_eq!(e.path, "");
        // The members seen are taken: only `zz` is left.
        assert_eq!(
            f.finish().unwrap_err().to_string(),
            "unexpected member(s) `zz`"
        );
        // A reader's own error stops the walk, converted to the caller's error type.
        #[derive(Debug, PartialEq)]
        struct Mine(String);
        impl From<ShapeError> for Mine {
            fn from(e: ShapeError) -> Self {
                Mine(e.path)
            }
        }
        let mut f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        let r = f.each(|_, m| m.u64().map(|_| true).map_err(Mine::from));
        assert_eq!(r, Err(Mine("/c".into())));
        let mut f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        assert_eq!(f.each(|_, _| Ok::<_, ShapeError>(true)), Ok(()));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn only_rejects_unknown_members_up_front() {
        let v = map(vec![
            ("a", 1u64.into()),
            ("x", Value::Null),
            ("yy", Value::Null),
        ]);
        let f = Fields::open(&v, &Path::ROOT, "m").unwrap();
        assert!(f.only(&["a", "x", "yy", "b"]).is_ok());
        assert_eq!(
            f.only(&["a"]).unwrap_err().problem,
            Problem::Unknown {
                what: "m",
                keys: vec!["x".into(), "yy".into()]
            }
        );
    }

    #[test]
    fn sinks_collect_every_problem_and_reading_goes_on() {
        let j = parse_json(r#"{"a": 1, "b": "x", "c": 2, "d": 3}"#).unwrap();
        let mut sink: Vec<ShapeError> = Vec::new();
        let mut f = Fields::open_into(&j, &Path::ROOT, "an object", &mut sink).unwrap();
        let a = f.req_with("a", &mut sink, |m, _| Some(m.path.pointer()));
        let z = f.req_with("z", &mut sink, |_, _| Some(()));
        let b = f.opt_with("b", &mut sink, |m, s| {
            s.report(m.invalid("not this"));
            None::<()>
        });
        let y = f.opt_with("y", &mut sink, |_, _| Some(()));
        let w: Option<Vec<u8>> = f.opt_default_with("w", &mut sink, |_, _| Some(vec![1]));
        let d = f.opt_default_with("d", &mut sink, |_, _| Some(vec![1]));
        assert_eq!((w, d), (Some(vec![]), Some(vec![1])));
        f.finish_into(&mut sink);
        assert_eq!(a.as_deref(), Some("/a"));
        assert_eq!((z, b, y), (None, None, Some(None)));
        let got: Vec<String> = sink.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "`z` is missing",
                "at `/b`: not this",
                "unexpected member(s) `c`"
            ]
        );
        assert_eq!(
            Fields::open_into(&Json::Null, &Path::ROOT, "x", &mut sink).map(|f| f.len()),
            None
        );
    }
}
