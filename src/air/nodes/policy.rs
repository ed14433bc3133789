//! `defpolicy`: ordered allow/deny rules over effects and who emits them.

use super::decode::{Decode, Rd, Val};
use super::read::{Item, Obj, Problems, all_some, dotted_of, ident_of, list, qname, word};
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

/// A policy decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// `allow`.
    Allow,
    /// `deny`.
    Deny,
}

/// Who emitted an effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OriginKind {
    /// `plan`.
    Plan,
    /// `reducer`.
    Reducer,
}

impl Decision {
    /// Every decision.
    pub const ALL: [Decision; 2] = [Self::Allow, Self::Deny];

    /// The word used in JSON and in the canonical encoding.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        }
    }
}

impl OriginKind {
    /// Every origin kind.
    pub const ALL: [OriginKind; 2] = [Self::Plan, Self::Reducer];

    /// The word used in JSON and in the canonical encoding.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Reducer => "reducer",
        }
    }
}

impl DefPolicy {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let rules = o.req_with("rules", e, |m, e| list(m, e, PolicyRule::read));
        let (name, rules) = all_some!(name, rules);
        Some(DefPolicy { name, rules })
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
            .map(PolicyRule::decode)
            .collect::<Result<_, _>>()?;
        Ok(DefPolicy { name, rules })
    }
}

impl PolicyRule {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        let mut o = Obj::open_into(m.value, &m.path, "a policy rule", e)?;
        let when = o.req_with("when", e, PolicyMatch::read);
        let decision = o.req_with("decision", e, |m, e| {
            word(m, "`decision`", &Decision::ALL.map(|d| (d.as_str(), d)), e)
        });
        o.finish_into(e);
        let (when, decision) = all_some!(when, decision);
        Some(PolicyRule { when, decision })
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

    fn decode(m: Val<'_, '_>) -> Result<Self, ShapeError> {
        let mut r = m.fields("a policy rule")?;
        let when = PolicyMatch::decode(r.req("when")?)?;
        let decision = r.word("decision", &Decision::ALL.map(|d| (d.as_str(), d)))?;
        r.finish()?;
        Ok(PolicyRule { when, decision })
    }
}

impl PolicyMatch {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        let mut o = Obj::open_into(m.value, &m.path, "`when`", e)?;
        let effect_kind = o.opt_with("effect_kind", e, dotted_of("effect kind"));
        let cap_name = o.opt_with("cap_name", e, ident_of("cap grant name"));
        let origin_kind = o.opt_with("origin_kind", e, |m, e| {
            word(
                m,
                "`origin_kind`",
                &OriginKind::ALL.map(|k| (k.as_str(), k)),
                e,
            )
        });
        let origin_name = o.opt_with("origin_name", e, qname);
        o.finish_into(e);
        let (effect_kind, cap_name, origin_kind, origin_name) =
            all_some!(effect_kind, cap_name, origin_kind, origin_name);
        Some(PolicyMatch {
            effect_kind,
            cap_name,
            origin_kind,
            origin_name,
        })
    }

    fn decode(m: Val<'_, '_>) -> Result<Self, ShapeError> {
        let mut w = m.fields("`when`")?;
        let when = PolicyMatch {
            effect_kind: w.opt_text("effect_kind")?,
            cap_name: w.opt_text("cap_name")?,
            origin_kind: w.opt_word("origin_kind", &OriginKind::ALL.map(|k| (k.as_str(), k)))?,
            origin_name: w.opt_name("origin_name")?,
        };
        w.finish()?;
        Ok(when)
    }
}
