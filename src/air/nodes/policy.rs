//! `defpolicy`: ordered allow/deny rules over effects and who emits them.

use super::decode::{Decode, Rd, fields};
use super::read::{Item, Obj, Problems, all_some, dotted_of, ident_of, list, object, qname, word};
use super::write::Out;
use crate::air::name::Name;
use crate::codec::shape::ShapeError;

/// `defpolicy`: ordered allow/deny rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefPolicy {
    /// `name`.
    pub name: Name,
    /// `rules`, in order (first match wins).
    pub rules: Vec<PolicyRule>,
}

/// A policy rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRule {
    /// `when`: all given conditions must hold (none given = always).
    pub when: PolicyMatch,
    /// `decision`.
    pub decision: Decision,
}

/// `defpolicy.rules[].when`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMatch {
    /// `effect_kind`.
    pub effect_kind: Option<String>,
    /// `cap_name`: a grant name.
    pub cap_name: Option<String>,
    /// `origin_kind`.
    pub origin_kind: Option<OriginKind>,
    /// `origin_name`: a plan or module name.
    pub origin_name: Option<Name>,
}

words! {
    /// A policy decision.
    Decision {
        /// `allow`.
        Allow = "allow",
        /// `deny`.
        Deny = "deny",
    }
}

words! {
    /// Who emitted an effect.
    OriginKind {
        /// `plan`.
        Plan = "plan",
        /// `reducer`.
        Reducer = "reducer",
    }
}

impl DefPolicy {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let rules = o.req_with("rules", e, |m, e| list(m, e, PolicyRule::read));
        all_some!(DefPolicy { name, rules })
    }

    pub(super) fn write<O: Out>(&self, o: &mut O) {
        o.name("name", &self.name)
            .maps("rules", &self.rules, PolicyRule::write);
    }

    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let rules = r
            .req("rules")?
            .items()?
            .map(|m| fields(&m, "a policy rule", PolicyRule::decode))
            .collect::<Result<_, _>>()?;
        Ok(DefPolicy { name, rules })
    }
}

impl PolicyRule {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        object(m, "a policy rule", e, |o, e| {
            let when = o.req_with("when", e, PolicyMatch::read);
            let decision = o.req_with("decision", e, |m, e| {
                word(m, "`decision`", &Decision::words(), e)
            });
            all_some!(PolicyRule { when, decision })
        })
    }

    fn write<O: Out>(&self, o: &mut O) {
        let w = &self.when;
        o.map("when", |m| {
            m.opt_text("effect_kind", w.effect_kind.as_deref())
                .opt_text("cap_name", w.cap_name.as_deref())
                .opt_text("origin_kind", w.origin_kind.map(OriginKind::as_str))
                .opt_name("origin_name", w.origin_name.as_ref());
        })
        .text("decision", self.decision.as_str());
    }

    fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let when = r.req_map("when", "`when`", PolicyMatch::decode)?;
        let decision = r.word("decision", &Decision::words())?;
        Ok(PolicyRule { when, decision })
    }
}

impl PolicyMatch {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        object(m, "`when`", e, |o, e| {
            let effect_kind = o.opt_with("effect_kind", e, dotted_of("effect kind"));
            let cap_name = o.opt_with("cap_name", e, ident_of("cap grant name"));
            let origin_kind = o.opt_with("origin_kind", e, |m, e| {
                word(m, "`origin_kind`", &OriginKind::words(), e)
            });
            let origin_name = o.opt_with("origin_name", e, qname);
            all_some!(PolicyMatch {
                effect_kind,
                cap_name,
                origin_kind,
                origin_name
            })
        })
    }

    fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        Ok(PolicyMatch {
            effect_kind: r.opt_text("effect_kind")?,
            cap_name: r.opt_text("cap_name")?,
            origin_kind: r.opt_word("origin_kind", &OriginKind::words())?,
            origin_name: r.opt_name("origin_name")?,
        })
    }
}
