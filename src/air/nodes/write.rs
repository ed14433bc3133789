//! Writing a node either way from one description: its authoring JSON, or its canonical
//! value. Each kind says once which members it has and in what order; the writer decides how
//! each is spelled.

use std::convert::Infallible;

use crate::air::expr::{Expr, ExprOrValue};
use crate::air::literal::{CanonError, expr_value, fail, literal_value, slot_value};
use crate::air::name::Name;
use crate::air::types::{Schemas, Type};
use crate::codec::cbor::Value;
use crate::codec::json::Json;
use crate::codec::shape::{MapWrite, MapWriter, ObjWriter, Path};
use crate::object::ObjectId;

/// What encoding needs to know about a world's other nodes: the types of literal slots live
/// there (a plan's `emit_effect.params` is typed by the effect's params schema).
pub(crate) trait Lookup: Schemas {
    /// The params schema of the effect of kind `kind`.
    fn effect_params(&self, kind: &str) -> Option<&Name>;
    /// The event schema of the reducer named `name`, if it is a reducer.
    fn reducer_event(&self, name: &Name) -> Option<&Name>;
    /// The parameter schema of the capability named `name`.
    fn cap_schema(&self, name: &Name) -> Option<&Type>;
}

/// A map of a node being written, in authoring JSON ([`ObjWriter`]) or as the canonical value
/// ([`Canonical`]).
///
/// Where the two forms differ the writer decides: a link is a hash's text in JSON and a CBOR
/// link in the canonical value; a set is written as given in JSON and sorted and deduplicated
/// in the canonical value; a literal slot is written as given in JSON and typed and
/// canonicalized in the canonical value. Which empty members are left out is the kind's to
/// say, with [`Out::CANONICAL`].
pub(crate) trait Out: MapWrite {
    /// Whether this writes the canonical value (else the authoring JSON).
    const CANONICAL: bool;
    /// Why writing fails (only the canonical value can fail).
    type Error;

    /// A new, empty map in the same form.
    fn sub(&self) -> Self;
    /// The lookup that types literal slots (only the canonical value has one).
    fn lookup(&self) -> Option<&dyn Lookup>;
    /// Member `key`: the hash `id`, as a link.
    fn link(&mut self, key: &str, id: &ObjectId) -> &mut Self;
    /// Member `key`: a set of texts.
    fn set<'s>(&mut self, key: &str, xs: impl IntoIterator<Item = &'s str>) -> &mut Self;
    /// Member `key`: a type AST.
    fn ty(&mut self, key: &str, t: &Type) -> &mut Self;
    /// An expression.
    fn expr_item(e: &Expr) -> Self::Item;
    /// An `ExprOrValue` slot of type `ty` (when known), which sits at `at`.
    ///
    /// # Errors
    /// A literal that cannot be typed or does not fit.
    fn slot(
        &self,
        slot: &ExprOrValue,
        ty: Option<&Type>,
        at: &Path<'_>,
    ) -> Result<Self::Item, Self::Error>;
    /// The `params` of a grant of the capability `cap`; the grant sits at `at`.
    ///
    /// # Errors
    /// The capability is unknown, or the params do not fit its schema.
    fn grant_params(
        &self,
        params: &Json,
        cap: &Name,
        at: &Path<'_>,
    ) -> Result<Self::Item, Self::Error>;
    /// The `hash` of the manifest entry for `name`, which sits at `at`; `None` leaves it out.
    ///
    /// # Errors
    /// The canonical value needs the hash filled in.
    fn entry_hash(
        &self,
        name: &Name,
        hash: Option<ObjectId>,
        at: &Path<'_>,
    ) -> Result<Option<Self::Item>, Self::Error>;

    /// Member `key`: a name.
    fn name(&mut self, key: &str, n: &Name) -> &mut Self {
        self.text(key, n.as_str())
    }

    /// Member `key`: a name, if given.
    fn opt_name(&mut self, key: &str, n: Option<&Name>) -> &mut Self {
        self.opt_text(key, n.map(Name::as_str))
    }

    /// Member `key`: an expression.
    fn expr(&mut self, key: &str, e: &Expr) -> &mut Self {
        self.put(key, Self::expr_item(e))
    }

    /// Member `key`: an expression, if given.
    fn opt_expr(&mut self, key: &str, e: Option<&Expr>) -> &mut Self {
        self.opt_put(key, e.map(Self::expr_item))
    }

    /// Member `key`: a map written by `f`.
    fn map(&mut self, key: &str, f: impl FnOnce(&mut Self)) -> &mut Self {
        let mut m = self.sub();
        f(&mut m);
        self.put(key, m.done())
    }

    /// Member `key`: a map from text to text, in the order given (the canonical value sorts
    /// it).
    fn text_map<'s>(
        &mut self,
        key: &str,
        pairs: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> &mut Self {
        self.map(key, |m| {
            for (k, v) in pairs {
                m.text(k, v);
            }
        })
    }

    /// Member `key`: an array of maps, each written by `f`.
    fn maps<T>(&mut self, key: &str, xs: &[T], mut f: impl FnMut(&T, &mut Self)) -> &mut Self {
        let items = xs
            .iter()
            .map(|x| {
                let mut m = self.sub();
                f(x, &mut m);
                m.done()
            })
            .collect();
        self.put(key, Self::array_item(items))
    }
}

impl Out for ObjWriter {
    const CANONICAL: bool = false;
    type Error = Infallible;

    fn sub(&self) -> Self {
        Self::default()
    }

    fn lookup(&self) -> Option<&dyn Lookup> {
        None
    }

    fn link(&mut self, key: &str, id: &ObjectId) -> &mut Self {
        self.text(key, &id.to_string())
    }

    fn set<'s>(&mut self, key: &str, xs: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.texts(key, xs)
    }

    fn ty(&mut self, key: &str, t: &Type) -> &mut Self {
        self.put(key, t.to_json())
    }

    fn expr_item(e: &Expr) -> Json {
        e.to_json()
    }

    fn slot(&self, slot: &ExprOrValue, _: Option<&Type>, _: &Path<'_>) -> Result<Json, Infallible> {
        Ok(slot.to_json())
    }

    fn grant_params(&self, params: &Json, _: &Name, _: &Path<'_>) -> Result<Json, Infallible> {
        Ok(params.clone())
    }

    fn entry_hash(
        &self,
        _: &Name,
        hash: Option<ObjectId>,
        _: &Path<'_>,
    ) -> Result<Option<Json>, Infallible> {
        Ok(hash.map(|h| Json::String(h.to_string())))
    }
}

/// Writes the canonical value of a node; `lookup` types its literal slots.
pub(crate) struct Canonical<'c> {
    map: MapWriter,
    lookup: &'c dyn Lookup,
}

impl<'c> Canonical<'c> {
    /// An empty map, its literals typed by `lookup`.
    pub(crate) fn new(lookup: &'c dyn Lookup) -> Self {
        Self {
            map: MapWriter::default(),
            lookup,
        }
    }
}

impl MapWrite for Canonical<'_> {
    type Item = Value;

    fn put(&mut self, key: &str, value: Value) -> &mut Self {
        self.map.put(key, value);
        self
    }

    fn done(self) -> Value {
        self.map.done()
    }

    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn text_item(t: &str) -> Value {
        MapWriter::text_item(t)
    }

    fn nat_item(n: u64) -> Value {
        MapWriter::nat_item(n)
    }

    fn array_item(items: Vec<Value>) -> Value {
        MapWriter::array_item(items)
    }
}

impl Out for Canonical<'_> {
    const CANONICAL: bool = true;
    type Error = CanonError;

    fn sub(&self) -> Self {
        Self::new(self.lookup)
    }

    fn lookup(&self) -> Option<&dyn Lookup> {
        Some(self.lookup)
    }

    fn link(&mut self, key: &str, id: &ObjectId) -> &mut Self {
        self.put(key, Value::Link(*id))
    }

    /// Sorted (bytewise) and deduplicated.
    fn set<'s>(&mut self, key: &str, xs: impl IntoIterator<Item = &'s str>) -> &mut Self {
        let mut v: Vec<&str> = xs.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        self.texts(key, v)
    }

    fn ty(&mut self, key: &str, t: &Type) -> &mut Self {
        self.put(key, t.to_value())
    }

    fn expr_item(e: &Expr) -> Value {
        expr_value(e)
    }

    fn slot(
        &self,
        slot: &ExprOrValue,
        ty: Option<&Type>,
        at: &Path<'_>,
    ) -> Result<Value, CanonError> {
        slot_value(slot, ty, self.lookup, &at.pointer())
    }

    fn grant_params(&self, params: &Json, cap: &Name, at: &Path<'_>) -> Result<Value, CanonError> {
        let at = at.key("params");
        let Some(ty) = self.lookup.cap_schema(cap) else {
            return Err(fail(
                &at.pointer(),
                format!("the parameters cannot be typed: no capability {cap} is known"),
            ));
        };
        literal_value(params, ty, self.lookup, &at.pointer())
    }

    fn entry_hash(
        &self,
        name: &Name,
        hash: Option<ObjectId>,
        at: &Path<'_>,
    ) -> Result<Option<Value>, CanonError> {
        match hash.filter(|h| *h != super::read::PLACEHOLDER) {
            Some(h) => Ok(Some(Value::Link(h))),
            None => Err(fail(
                &at.pointer(),
                format!(
                    "the hash of {name} is not filled in (a manifest links the ids of its nodes)"
                ),
            )),
        }
    }
}
