//! `defsecret`: a named secret resolved on the host, and who may use it.

use super::decode::{Decode, Rd, name_of};
use super::read::{Obj, Problems, all_some, hash, ident_of, list, nonempty, qname};
use super::write::Out;
use crate::air::name::Name;
use crate::codec::shape::ShapeError;
use crate::object::ObjectId;

/// `defsecret`: a named secret resolved on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefSecret {
    /// `name`.
    pub name: Name,
    /// `binding_id`: non-empty, e.g. `env:LLM_API_KEY`.
    pub binding_id: String,
    /// `expected_digest`: hash of the plaintext.
    pub expected_digest: Option<ObjectId>,
    /// `allowed_caps`: grant names that may use the secret.
    pub allowed_caps: Option<Vec<String>>,
    /// `allowed_plans`: plans that may use the secret.
    pub allowed_plans: Option<Vec<Name>>,
}

impl DefSecret {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let binding_id = o.req_with("binding_id", e, nonempty("`binding_id`"));
        let expected_digest = o.opt_with("expected_digest", e, hash);
        let allowed_caps = o.opt_with("allowed_caps", e, |m, e| {
            list(m, e, ident_of("cap grant name"))
        });
        let allowed_plans = o.opt_with("allowed_plans", e, |m, e| list(m, e, qname));
        all_some!(DefSecret {
            name,
            binding_id,
            expected_digest,
            allowed_caps,
            allowed_plans
        })
    }

    /// The digest is its text in both forms (it is not a link: the plaintext is no object).
    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name)
            .text("binding_id", &self.binding_id)
            .opt_text(
                "expected_digest",
                self.expected_digest.map(|h| h.to_string()).as_deref(),
            );
        if let Some(c) = &self.allowed_caps {
            o.set("allowed_caps", c.iter().map(String::as_str));
        }
        if let Some(p) = &self.allowed_plans {
            o.set("allowed_plans", p.iter().map(Name::as_str));
        }
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let binding_id = r.text("binding_id")?;
        let expected_digest = match r.opt("expected_digest") {
            Some(m) => Some(
                m.text()?
                    .parse::<ObjectId>()
                    .map_err(|e| m.invalid(e.to_string()))?,
            ),
            None => None,
        };
        let allowed_caps = r.texts("allowed_caps")?;
        let allowed_plans = match r.opt("allowed_plans") {
            Some(m) => Some(m.items()?.map(|x| name_of(&x)).collect::<Result<_, _>>()?),
            None => None,
        };
        Ok(DefSecret {
            name,
            binding_id,
            expected_digest,
            allowed_caps,
            allowed_plans,
        })
    }
}
