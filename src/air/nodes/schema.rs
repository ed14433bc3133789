//! `defschema`: a named type.

use super::decode::{Decode, Rd, ty};
use super::read::{Obj, Problems, all_some, qname, type_ast};
use super::write::Out;
use crate::air::name::Name;
use crate::air::types::Type;
use crate::codec::shape::ShapeError;

/// `defschema`: a named type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefSchema {
    /// `name`.
    pub name: Name,
    /// `type`: the type AST.
    pub ty: Type,
}

impl DefSchema {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let ty = o.req_with("type", e, type_ast);
        all_some!(DefSchema { name, ty })
    }

    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name).ty("type", &self.ty);
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let ty = ty(&r.req("type")?)?;
        Ok(DefSchema { name, ty })
    }
}
