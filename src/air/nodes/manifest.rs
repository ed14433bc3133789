//! `manifest`: the root catalog of a world's control plane — the nodes it uses, routing,
//! triggers, defaults (policy and capability grants) and module bindings.

use super::NodeKind;
use super::decode::{Decode, Rd, dict, expr, fields};
use super::read::{
    Item, Obj, PLACEHOLDER, Problems, all_some, hash, ident_key, ident_of, map_of, name_key, nat,
    nonempty, object, opt_list, qname, report, string,
};
use super::write::{Lookup, Out};
use crate::air::diag::{ParseError, Rule};
use crate::air::name::Name;
use crate::air::types::Type;
use crate::codec::cbor::Value;
use crate::codec::json::Json;
use crate::codec::shape::{ObjWriter, Path, ShapeError};
use crate::object::ObjectId;

/// `manifest`: the root catalog of a world's control plane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// `schemas` (absent = empty).
    pub schemas: Vec<NamedRef>,
    /// `modules` (absent = empty).
    pub modules: Vec<NamedRef>,
    /// `plans` (absent = empty).
    pub plans: Vec<NamedRef>,
    /// `effects` (absent = empty).
    pub effects: Vec<NamedRef>,
    /// `caps` (absent = empty).
    pub caps: Vec<NamedRef>,
    /// `policies` (absent = empty).
    pub policies: Vec<NamedRef>,
    /// `secrets` (absent = empty).
    pub secrets: Vec<NamedRef>,
    /// `routing` (absent = empty).
    pub routing: Routing,
    /// `triggers` (absent = empty).
    pub triggers: Vec<Trigger>,
    /// `defaults` (absent = empty).
    pub defaults: Defaults,
    /// `module_bindings`, in declared order (absent = empty).
    pub module_bindings: Vec<ModuleBinding>,
}

impl Manifest {
    /// The list of references to nodes of `kind` (`None` for `manifest`).
    #[must_use]
    pub fn refs(&self, kind: NodeKind) -> Option<&[NamedRef]> {
        Some(match kind {
            NodeKind::DefSchema => &self.schemas,
            NodeKind::DefModule => &self.modules,
            NodeKind::DefPlan => &self.plans,
            NodeKind::DefCap => &self.caps,
            NodeKind::DefPolicy => &self.policies,
            NodeKind::DefEffect => &self.effects,
            NodeKind::DefSecret => &self.secrets,
            NodeKind::Manifest => return None,
        })
    }

    /// The list of references to nodes of `kind`, for changing it (`None` for `manifest`).
    pub fn refs_mut(&mut self, kind: NodeKind) -> Option<&mut Vec<NamedRef>> {
        Some(match kind {
            NodeKind::DefSchema => &mut self.schemas,
            NodeKind::DefModule => &mut self.modules,
            NodeKind::DefPlan => &mut self.plans,
            NodeKind::DefCap => &mut self.caps,
            NodeKind::DefPolicy => &mut self.policies,
            NodeKind::DefEffect => &mut self.effects,
            NodeKind::DefSecret => &mut self.secrets,
            NodeKind::Manifest => return None,
        })
    }
}

/// A manifest list entry `{name, hash?}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedRef {
    /// `name`.
    pub name: Name,
    /// `hash`: absent in authoring until tooling fills it; the all-zero id is a placeholder.
    pub hash: Option<ObjectId>,
}

impl NamedRef {
    /// The hash, unless absent or the all-zero placeholder.
    #[must_use]
    pub fn known_hash(&self) -> Option<ObjectId> {
        self.hash.filter(|h| *h != PLACEHOLDER)
    }
}

/// `manifest.routing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// `events`, in declared order (delivery order).
    pub events: Vec<RouteEvent>,
    /// `inboxes`, in declared order.
    pub inboxes: Vec<Inbox>,
}

/// `manifest.routing.events[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEvent {
    /// `event`: the event schema.
    pub event: Name,
    /// `reducer`: the module receiving it.
    pub reducer: Name,
    /// `key_field`: the event field holding the cell key (keyed reducers).
    pub key_field: Option<String>,
}

/// `manifest.routing.inboxes[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbox {
    /// `source`: the external inbox name (non-empty).
    pub source: String,
    /// `reducer`: the module receiving its messages.
    pub reducer: Name,
}

/// `manifest.triggers[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// `event`: the event schema that starts the plan.
    pub event: Name,
    /// `plan`: the plan started.
    pub plan: Name,
    /// `correlate_by`: the event field recorded as the run's correlation id.
    pub correlate_by: Option<String>,
}

/// `manifest.defaults`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// `policy`.
    pub policy: Option<Name>,
    /// `cap_grants` (absent = empty).
    pub cap_grants: Vec<CapGrant>,
}

/// A capability grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapGrant {
    /// `name`: a small identifier.
    pub name: String,
    /// `cap`: the `defcap` instantiated.
    pub cap: Name,
    /// `params`: a literal typed by the defcap's schema (either value lens), not yet typed.
    pub params: Json,
    /// `expiry_ns`: nanoseconds since the epoch.
    pub expiry_ns: Option<u64>,
    /// `budget`.
    pub budget: Option<Budget>,
}

/// `CapGrant.budget`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// `tokens`.
    pub tokens: Option<u64>,
    /// `bytes`.
    pub bytes: Option<u64>,
    /// `cents`.
    pub cents: Option<u64>,
}

/// `manifest.module_bindings.<module>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleBinding {
    /// The module (the member key).
    pub module: Name,
    /// `slots`: slot name → grant name, in declared order.
    pub slots: Vec<(String, String)>,
}

/// The manifest list keys, in [`NodeKind`] order of the kinds they list.
const LISTS: [(&str, NodeKind); 7] = [
    ("schemas", NodeKind::DefSchema),
    ("modules", NodeKind::DefModule),
    ("plans", NodeKind::DefPlan),
    ("effects", NodeKind::DefEffect),
    ("caps", NodeKind::DefCap),
    ("policies", NodeKind::DefPolicy),
    ("secrets", NodeKind::DefSecret),
];

/// The manifest member that lists nodes of `kind` (`None` for `manifest`).
#[must_use]
pub fn list_key(kind: NodeKind) -> Option<&'static str> {
    LISTS.iter().find(|(_, k)| *k == kind).map(|(s, _)| *s)
}

/// The type of a cap grant's `params`: its capability's schema, when known.
pub(crate) fn grant_type<'a>(g: &CapGrant, lookup: &'a dyn Lookup) -> Option<&'a Type> {
    lookup.cap_schema(&g.cap)
}

// ---------------------------------------------------------------------------------------------
// Authoring JSON

impl Manifest {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let version = o.req_with("air_version", e, |m, e| {
            let s = string(&m, "`air_version`", e)?;
            if s == "1" {
                Some(())
            } else {
                report(
                    e,
                    &m,
                    Rule::BadVersion,
                    format!("`air_version` must be \"1\", found {s:?}"),
                );
                None
            }
        });
        let [schemas, modules, plans, effects, caps, policies, secrets] =
            LISTS.map(|(key, _)| opt_list(o, key, e, read_named_ref));
        let routing = o.opt_default_with("routing", e, read_routing);
        let triggers = opt_list(o, "triggers", e, read_trigger);
        let defaults = o.opt_default_with("defaults", e, read_defaults);
        let module_bindings = o
            .opt_with("module_bindings", e, |m, e| {
                map_of(m, e, name_key, read_slots)
            })
            .map(|b| {
                b.unwrap_or_default()
                    .into_iter()
                    .map(|(module, slots)| ModuleBinding { module, slots })
                    .collect()
            });
        version?;
        all_some!(Manifest {
            schemas,
            modules,
            plans,
            effects,
            caps,
            policies,
            secrets,
            routing,
            triggers,
            defaults,
            module_bindings
        })
    }
}

fn read_named_ref(m: Item<'_, '_>, e: &mut Problems) -> Option<NamedRef> {
    object(m, "a manifest entry", e, |o, e| {
        let name = o.req_with("name", e, qname);
        let hash = o.opt_with("hash", e, hash);
        all_some!(NamedRef { name, hash })
    })
}

fn read_routing(m: Item<'_, '_>, e: &mut Problems) -> Option<Routing> {
    object(m, "`routing`", e, |o, e| {
        let events = opt_list(o, "events", e, read_route_event);
        let inboxes = opt_list(o, "inboxes", e, read_inbox);
        all_some!(Routing { events, inboxes })
    })
}

fn read_route_event(m: Item<'_, '_>, e: &mut Problems) -> Option<RouteEvent> {
    object(m, "a routing entry", e, |o, e| {
        let event = o.req_with("event", e, qname);
        let reducer = o.req_with("reducer", e, qname);
        let key_field = o.opt_with("key_field", e, nonempty("`key_field`"));
        all_some!(RouteEvent {
            event,
            reducer,
            key_field
        })
    })
}

fn read_inbox(m: Item<'_, '_>, e: &mut Problems) -> Option<Inbox> {
    object(m, "an inbox route", e, |o, e| {
        let source = o.req_with("source", e, nonempty("`source`"));
        let reducer = o.req_with("reducer", e, qname);
        all_some!(Inbox { source, reducer })
    })
}

fn read_trigger(m: Item<'_, '_>, e: &mut Problems) -> Option<Trigger> {
    object(m, "a trigger", e, |o, e| {
        let event = o.req_with("event", e, qname);
        let plan = o.req_with("plan", e, qname);
        let correlate_by = o.opt_with("correlate_by", e, nonempty("`correlate_by`"));
        all_some!(Trigger {
            event,
            plan,
            correlate_by
        })
    })
}

fn read_defaults(m: Item<'_, '_>, e: &mut Problems) -> Option<Defaults> {
    object(m, "`defaults`", e, |o, e| {
        let policy = o.opt_with("policy", e, qname);
        let cap_grants = opt_list(o, "cap_grants", e, read_cap_grant);
        all_some!(Defaults { policy, cap_grants })
    })
}

/// Reads a capability grant `{name, cap, params, expiry_ns?, budget?}`.
///
/// # Errors
/// Every problem found; pointers are relative to `j` (`""`).
pub fn cap_grant_from_json(j: &Json) -> Result<CapGrant, Vec<ParseError>> {
    let mut e = Vec::new();
    match read_cap_grant(Item::new(j, Path::ROOT), &mut e) {
        Some(g) if e.is_empty() => Ok(g),
        _ => Err(e),
    }
}

fn read_cap_grant(m: Item<'_, '_>, e: &mut Problems) -> Option<CapGrant> {
    object(m, "a cap grant", e, |o, e| {
        let name = o.req_with("name", e, ident_of("cap grant name"));
        let cap = o.req_with("cap", e, qname);
        let params = o.req_with("params", e, |m, _| Some(m.value.clone()));
        let expiry_ns = o.opt_with("expiry_ns", e, nat);
        let budget = o.opt_with("budget", e, read_budget);
        all_some!(CapGrant {
            name,
            cap,
            params,
            expiry_ns,
            budget
        })
    })
}

fn read_budget(m: Item<'_, '_>, e: &mut Problems) -> Option<Budget> {
    object(m, "`budget`", e, |o, e| {
        let tokens = o.opt_with("tokens", e, nat);
        let bytes = o.opt_with("bytes", e, nat);
        let cents = o.opt_with("cents", e, nat);
        all_some!(Budget {
            tokens,
            bytes,
            cents
        })
    })
}

fn read_slots(m: Item<'_, '_>, e: &mut Problems) -> Option<Vec<(String, String)>> {
    object(m, "a module binding", e, |o, e| {
        o.req_with("slots", e, |m, e| {
            map_of(m, e, ident_key("cap slot name"), ident_of("cap grant name"))
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

impl Manifest {
    /// Authoring JSON writes every list (but an empty `secrets`), `routing`, `triggers` and
    /// `defaults` as given; the canonical value leaves out what is empty, sorts the node lists
    /// (deduplicated) and the grants by name, and needs every entry's hash, as a link.
    pub(super) fn write<O: Out>(&self, o: &mut O) -> Result<(), O::Error> {
        o.text("air_version", "1");
        for (key, kind) in LISTS {
            let refs = self.refs(kind).unwrap_or_default();
            if refs.is_empty() && (O::CANONICAL || kind == NodeKind::DefSecret) {
                continue;
            }
            let mut order: Vec<(usize, &NamedRef)> = refs.iter().enumerate().collect();
            if O::CANONICAL {
                order.sort_by(|a, b| a.1.name.as_str().cmp(b.1.name.as_str()));
                order.dedup_by(|a, b| a.1.name == b.1.name);
            }
            let at = Path::ROOT.key(key);
            let mut items = Vec::with_capacity(order.len());
            for (i, r) in order {
                let hash = o.entry_hash(&r.name, r.hash, &at.index(i))?;
                let mut x = o.sub();
                x.name("name", &r.name).opt_put("hash", hash);
                items.push(x.done());
            }
            o.put(key, O::array_item(items));
        }
        let (events, inboxes) = (&self.routing.events, &self.routing.inboxes);
        let mut routing = o.sub();
        if !O::CANONICAL || !events.is_empty() {
            routing.maps("events", events, |r, x| {
                x.name("event", &r.event)
                    .name("reducer", &r.reducer)
                    .opt_text("key_field", r.key_field.as_deref());
            });
        }
        if !O::CANONICAL || !inboxes.is_empty() {
            routing.maps("inboxes", inboxes, |r, x| {
                x.text("source", &r.source).name("reducer", &r.reducer);
            });
        }
        if !O::CANONICAL || !routing.is_empty() {
            o.put("routing", routing.done());
        }
        if !O::CANONICAL || !self.triggers.is_empty() {
            o.maps("triggers", &self.triggers, |t, x| {
                x.name("event", &t.event)
                    .name("plan", &t.plan)
                    .opt_text("correlate_by", t.correlate_by.as_deref());
            });
        }
        let grants = &self.defaults.cap_grants;
        let mut defaults = o.sub();
        defaults.opt_name("policy", self.defaults.policy.as_ref());
        if !O::CANONICAL || !grants.is_empty() {
            let mut order: Vec<(usize, &CapGrant)> = grants.iter().enumerate().collect();
            if O::CANONICAL {
                order.sort_by(|a, b| a.1.name.cmp(&b.1.name));
            }
            let at = Path::ROOT.key("defaults");
            let at = at.key("cap_grants");
            let mut items = Vec::with_capacity(order.len());
            for (i, g) in order {
                items.push(g.write(o, &at.index(i))?);
            }
            defaults.put("cap_grants", O::array_item(items));
        }
        if !O::CANONICAL || !defaults.is_empty() {
            o.put("defaults", defaults.done());
        }
        if !self.module_bindings.is_empty() {
            o.map("module_bindings", |m| {
                for b in &self.module_bindings {
                    m.map(b.module.as_str(), |x| {
                        x.text_map(
                            "slots",
                            b.slots.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        );
                    });
                }
            });
        }
        Ok(())
    }
}

impl CapGrant {
    /// Writes the grant, which sits at `at`; the canonical value leaves out an empty budget.
    fn write<O: Out>(&self, o: &O, at: &Path<'_>) -> Result<O::Item, O::Error> {
        let mut m = o.sub();
        m.text("name", &self.name).name("cap", &self.cap);
        m.put("params", o.grant_params(&self.params, &self.cap, at)?);
        m.opt_nat("expiry_ns", self.expiry_ns);
        if let Some(b) = &self.budget {
            let mut x = o.sub();
            x.opt_nat("tokens", b.tokens)
                .opt_nat("bytes", b.bytes)
                .opt_nat("cents", b.cents);
            if !O::CANONICAL || !x.is_empty() {
                m.put("budget", x.done());
            }
        }
        Ok(m.done())
    }
}

/// Renders a capability grant.
#[must_use]
pub fn cap_grant_to_json(g: &CapGrant) -> Json {
    match g.write(&ObjWriter::default(), &Path::ROOT) {
        Ok(j) => j,
        Err(never) => match never {},
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical value

impl Manifest {
    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let version = r.text("air_version")?;
        if version != "1" {
            return Err(ShapeError::invalid(
                &Path::ROOT.key("air_version"),
                format!("`air_version` is \"1\", found {version:?}"),
            ));
        }
        let mut lists: [Vec<NamedRef>; 7] = Default::default();
        for (list, (key, _)) in lists.iter_mut().zip(LISTS) {
            *list = r.maps(key, "a manifest entry", |e| {
                let name = e.name("name")?;
                let h = e.req("hash")?;
                let Value::Link(hash) = h.value else {
                    return Err(h.invalid("`hash` is a link"));
                };
                Ok(NamedRef {
                    name,
                    hash: Some(*hash),
                })
            })?;
        }
        let [schemas, modules, plans, effects, caps, policies, secrets] = lists;
        let routing = r
            .opt_map("routing", "`routing`", |ro| {
                let events = ro.maps("events", "a routing entry", |e| {
                    Ok(RouteEvent {
                        event: e.name("event")?,
                        reducer: e.name("reducer")?,
                        key_field: e.opt_text("key_field")?,
                    })
                })?;
                let inboxes = ro.maps("inboxes", "an inbox route", |e| {
                    Ok(Inbox {
                        source: e.text("source")?,
                        reducer: e.name("reducer")?,
                    })
                })?;
                Ok(Routing { events, inboxes })
            })?
            .unwrap_or_default();
        let triggers = r.maps("triggers", "a trigger", |e| {
            Ok(Trigger {
                event: e.name("event")?,
                plan: e.name("plan")?,
                correlate_by: e.opt_text("correlate_by")?,
            })
        })?;
        let defaults = r
            .opt_map("defaults", "`defaults`", |d| {
                let policy = d.opt_name("policy")?;
                let cap_grants = d.maps("cap_grants", "a cap grant", decode_grant)?;
                Ok(Defaults { policy, cap_grants })
            })?
            .unwrap_or_default();
        let module_bindings = match r.opt("module_bindings") {
            Some(m) => dict(&m, |k, x| {
                // A key that is not a name is reported at the map, as keys are.
                let module = Name::new(k).map_err(|e| m.invalid(e.to_string()))?;
                let slots = fields(&x, "a module binding", |b| b.text_map("slots"))?;
                Ok(ModuleBinding { module, slots })
            })?,
            None => Vec::new(),
        };
        Ok(Manifest {
            schemas,
            modules,
            plans,
            effects,
            caps,
            policies,
            secrets,
            routing,
            triggers,
            defaults,
            module_bindings,
        })
    }
}

fn decode_grant(r: &mut Rd<'_, '_>) -> Result<CapGrant, ShapeError> {
    Ok(CapGrant {
        name: r.text("name")?,
        cap: r.name("cap")?,
        params: expr(r.req("params")?)?.to_json(),
        expiry_ns: r.nat("expiry_ns")?,
        budget: r.opt_map("budget", "`budget`", |b| {
            Ok(Budget {
                tokens: b.nat("tokens")?,
                bytes: b.nat("bytes")?,
                cents: b.nat("cents")?,
            })
        })?,
    })
}
