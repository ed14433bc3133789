//! `defcap`: a capability type and the schema of its grant parameters.

use super::decode::{Decode, Rd, ty};
use super::read::{Obj, Problems, all_some, dotted_of, qname, type_ast};
use super::write::Out;
use crate::air::name::Name;
use crate::air::types::Type;
use crate::codec::shape::ShapeError;

/// `defcap`: a capability type and the schema of its grant parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefCap {
    /// `name`.
    pub name: Name,
    /// `cap_type`: lowercase dotted.
    pub cap_type: String,
    /// `schema`: the type of grant parameters.
    pub schema: Type,
}

impl DefCap {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let cap_type = o.req_with("cap_type", e, dotted_of("cap type"));
        let schema = o.req_with("schema", e, type_ast);
        all_some!(DefCap {
            name,
            cap_type,
            schema
        })
    }

    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name)
            .text("cap_type", &self.cap_type)
            .ty("schema", &self.schema);
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let cap_type = r.text("cap_type")?;
        let schema = ty(&r.req("schema")?)?;
        Ok(DefCap {
            name,
            cap_type,
            schema,
        })
    }
}
