//! `defeffect`: an effect kind, its schemas and the capability type guarding it.

use super::decode::{Decode, Rd};
use super::read::{Obj, Problems, all_some, any_text, dotted_of, qname, word};
use super::write::Out;
use crate::air::name::Name;
use crate::codec::shape::ShapeError;

/// `defeffect`: an effect kind, its schemas and the capability type guarding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefEffect {
    /// `name`.
    pub name: Name,
    /// `kind`: lowercase dotted effect kind.
    pub kind: String,
    /// `params_schema`.
    pub params_schema: Name,
    /// `receipt_schema`.
    pub receipt_schema: Name,
    /// `cap_type`: lowercase dotted.
    pub cap_type: String,
    /// `origin_scope`.
    pub origin_scope: OriginScope,
    /// `description`.
    pub description: Option<String>,
}

words! {
    /// `defeffect.origin_scope`: who may emit the effect.
    OriginScope {
        /// `reducer`.
        Reducer = "reducer",
        /// `plan`.
        Plan = "plan",
        /// `both`.
        Both = "both",
    }
}

impl DefEffect {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let kind = o.req_with("kind", e, dotted_of("effect kind"));
        let params_schema = o.req_with("params_schema", e, qname);
        let receipt_schema = o.req_with("receipt_schema", e, qname);
        let cap_type = o.req_with("cap_type", e, dotted_of("cap type"));
        let origin_scope = o.req_with("origin_scope", e, |m, e| {
            word(m, "`origin_scope`", &OriginScope::words(), e)
        });
        let description = o.opt_with("description", e, any_text);
        all_some!(DefEffect {
            name,
            kind,
            params_schema,
            receipt_schema,
            cap_type,
            origin_scope,
            description
        })
    }

    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name)
            .text("kind", &self.kind)
            .name("params_schema", &self.params_schema)
            .name("receipt_schema", &self.receipt_schema)
            .text("cap_type", &self.cap_type)
            .text("origin_scope", self.origin_scope.as_str())
            .opt_text("description", self.description.as_deref());
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        Ok(DefEffect {
            name: r.name("name")?,
            kind: r.text("kind")?,
            params_schema: r.name("params_schema")?,
            receipt_schema: r.name("receipt_schema")?,
            cap_type: r.text("cap_type")?,
            origin_scope: r.word("origin_scope", &OriginScope::words())?,
            description: r.opt_text("description")?,
        })
    }
}
