//! Decoding canonical node values: the readers every node kind shares, stopping at the first
//! member that is not as the canonical encoding writes it.

use crate::air::expr::Expr;
use crate::air::literal::{expr_at, key_text};
use crate::air::name::Name;
use crate::air::types::Type;
use crate::codec::cbor::Value;
use crate::codec::shape::{Fields, Member, ShapeError};

/// A canonical map being decoded.
pub(super) type Rd<'v, 'p> = Fields<'v, 'p, Value>;
/// A canonical value being decoded, and where it sits.
pub(super) type Val<'v, 'p> = Member<'v, 'p, Value>;

/// A qualified name.
pub(super) fn name_of(m: &Val<'_, '_>) -> Result<Name, ShapeError> {
    Name::new(m.text()?).map_err(|e| m.invalid(e.to_string()))
}

/// A type AST.
pub(super) fn ty(m: &Val<'_, '_>) -> Result<Type, ShapeError> {
    // The type error's pointer is relative to the type.
    Type::from_value(m.value).map_err(|e| ShapeError {
        path: format!("{}{}", m.path, e.pointer),
        problem: crate::codec::shape::Problem::Invalid(e.message),
    })
}

/// One of `words` (text, value).
fn word<T: Copy>(m: &Val<'_, '_>, words: &[(&str, T)]) -> Result<T, ShapeError> {
    let s = m.text()?;
    words
        .iter()
        .find(|(w, _)| *w == s)
        .map(|(_, x)| *x)
        .ok_or_else(|| m.invalid(format!("unexpected word {s:?}")))
}

/// An expression.
pub(super) fn expr(m: Val<'_, '_>) -> Result<Expr, ShapeError> {
    expr_at(m, 0)
}

/// A map whose keys are data (names, slots), each entry read with `f`, in canonical order;
/// every key must be text.
pub(super) fn dict<'v, T>(
    m: &Val<'v, '_>,
    mut f: impl FnMut(&'v str, Val<'v, '_>) -> Result<T, ShapeError>,
) -> Result<Vec<T>, ShapeError> {
    let Value::Map(map) = m.value else {
        return Err(m.invalid("expected a map"));
    };
    map.entries()
        .iter()
        .map(|(k, x)| {
            let k = key_text(k, m)?;
            f(k, Member::new(x, m.path.key(k)))
        })
        .collect()
}

/// A map from text to text (`{slot: grant}`), in canonical order.
pub(super) fn text_map(m: &Val<'_, '_>) -> Result<Vec<(String, String)>, ShapeError> {
    dict(m, |k, x| Ok((k.to_owned(), x.text()?.to_owned())))
}

/// Reads `m` as the map `what` with `f`, which must take every member.
pub(super) fn fields<T>(
    m: &Val<'_, '_>,
    what: &'static str,
    f: impl FnOnce(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
) -> Result<T, ShapeError> {
    let mut r = m.fields(what)?;
    let v = f(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// The members of a node map, read the way the canonical encoding writes them.
pub(super) trait Decode<'v, 'p> {
    /// Required text.
    fn text(&mut self, k: &'p str) -> Result<String, ShapeError>;
    /// Optional text.
    fn opt_text(&mut self, k: &'p str) -> Result<Option<String>, ShapeError>;
    /// A required name.
    fn name(&mut self, k: &'p str) -> Result<Name, ShapeError>;
    /// An optional name.
    fn opt_name(&mut self, k: &'p str) -> Result<Option<Name>, ShapeError>;
    /// An optional array of texts.
    fn texts(&mut self, k: &'p str) -> Result<Option<Vec<String>>, ShapeError>;
    /// An optional map from text to text (absent = empty).
    fn text_map(&mut self, k: &'p str) -> Result<Vec<(String, String)>, ShapeError>;
    /// An optional unsigned integer.
    fn nat(&mut self, k: &'p str) -> Result<Option<u64>, ShapeError>;
    /// A required word, one of `words`.
    fn word<T: Copy>(&mut self, k: &'p str, words: &[(&str, T)]) -> Result<T, ShapeError>;
    /// An optional word, one of `words`.
    fn opt_word<T: Copy>(
        &mut self,
        k: &'p str,
        words: &[(&str, T)],
    ) -> Result<Option<T>, ShapeError>;
    /// An optional expression.
    fn opt_expr(&mut self, k: &'p str) -> Result<Option<Expr>, ShapeError>;
    /// A required map, read as `what` by `f` (see [`fields`]).
    fn req_map<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        f: impl FnOnce(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<T, ShapeError>;
    /// An optional map, read as `what` by `f`.
    fn opt_map<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        f: impl FnOnce(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<Option<T>, ShapeError>;
    /// An optional array of maps (absent = empty), each read as `what` by `f`.
    fn maps<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        f: impl FnMut(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<Vec<T>, ShapeError>;
}

impl<'v, 'p> Decode<'v, 'p> for Rd<'v, 'p> {
    fn text(&mut self, k: &'p str) -> Result<String, ShapeError> {
        Ok(self.req(k)?.text()?.to_owned())
    }

    fn opt_text(&mut self, k: &'p str) -> Result<Option<String>, ShapeError> {
        self.opt(k).map(|m| m.text().map(str::to_owned)).transpose()
    }

    fn name(&mut self, k: &'p str) -> Result<Name, ShapeError> {
        name_of(&self.req(k)?)
    }

    fn opt_name(&mut self, k: &'p str) -> Result<Option<Name>, ShapeError> {
        self.opt(k).map(|m| name_of(&m)).transpose()
    }

    fn texts(&mut self, k: &'p str) -> Result<Option<Vec<String>>, ShapeError> {
        self.opt(k)
            .map(|m| m.items()?.map(|x| x.text().map(str::to_owned)).collect())
            .transpose()
    }

    fn text_map(&mut self, k: &'p str) -> Result<Vec<(String, String)>, ShapeError> {
        match self.opt(k) {
            Some(m) => text_map(&m),
            None => Ok(Vec::new()),
        }
    }

    fn nat(&mut self, k: &'p str) -> Result<Option<u64>, ShapeError> {
        self.opt(k).map(|m| m.u64()).transpose()
    }

    fn word<T: Copy>(&mut self, k: &'p str, words: &[(&str, T)]) -> Result<T, ShapeError> {
        word(&self.req(k)?, words)
    }

    fn opt_word<T: Copy>(
        &mut self,
        k: &'p str,
        words: &[(&str, T)],
    ) -> Result<Option<T>, ShapeError> {
        self.opt(k).map(|m| word(&m, words)).transpose()
    }

    fn opt_expr(&mut self, k: &'p str) -> Result<Option<Expr>, ShapeError> {
        self.opt(k).map(expr).transpose()
    }

    fn req_map<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        f: impl FnOnce(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<T, ShapeError> {
        fields(&self.req(k)?, what, f)
    }

    fn opt_map<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        f: impl FnOnce(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<Option<T>, ShapeError> {
        self.opt(k).map(|m| fields(&m, what, f)).transpose()
    }

    fn maps<T>(
        &mut self,
        k: &'p str,
        what: &'static str,
        mut f: impl FnMut(&mut Rd<'_, '_>) -> Result<T, ShapeError>,
    ) -> Result<Vec<T>, ShapeError> {
        match self.opt(k) {
            Some(m) => m.items()?.map(|x| fields(&x, what, &mut f)).collect(),
            None => Ok(Vec::new()),
        }
    }
}
