//! The manifest's own checks: the default policy and cap grants, module bindings, routing
//! (events to reducers, keys) and triggers (events to plans, correlation).

use super::Check;
use super::context::{Cx, Site, in_family};
use crate::air::nodes::{Manifest, ModuleAbi, Node, NodeKind};
use crate::air::types::Type;
use crate::air::types::relate::{describe, field_type, same};
use crate::codec::json::pointer_escape;

#[allow(clippy::too_many_lines)]
pub(super) fn check_manifest(cx: &mut Cx<'_, '_>, site: &Site, m: &Manifest) {
    if let Some(p) = &m.defaults.policy
        && !matches!(cx.node(NodeKind::DefPolicy, p), Some(Node::DefPolicy(_)))
    {
        let hint = cx.hint(NodeKind::DefPolicy, p);
        cx.report(
            site,
            "/defaults/policy",
            Check::UnknownPolicy,
            format!("unknown policy {p}{hint}"),
        );
    }
    for (i, g) in m.defaults.cap_grants.iter().enumerate() {
        let p = format!("/defaults/cap_grants/{i}");
        cx.ident(site, &format!("{p}/name"), "cap grant name", &g.name);
        match cx.node(NodeKind::DefCap, &g.cap) {
            Some(Node::DefCap(c)) => cx.literal(site, &format!("{p}/params"), &g.params, &c.schema),
            _ => {
                let hint = cx.hint(NodeKind::DefCap, &g.cap);
                cx.report(
                    site,
                    &format!("{p}/cap"),
                    Check::UnknownCap,
                    format!("unknown capability {}{hint}", g.cap),
                );
            }
        }
    }
    for b in &m.module_bindings {
        let p = format!("/module_bindings/{}", pointer_escape(b.module.as_str()));
        let Some(module) = cx.module(site, &p, &b.module) else {
            continue;
        };
        let slots: &[(String, String)] = match &module.abi {
            ModuleAbi::Reducer(r) => &r.cap_slots,
            ModuleAbi::Pure(_) => &[],
        };
        for (slot, grant) in &b.slots {
            let sp = format!("{p}/slots/{}", pointer_escape(slot));
            let Some((_, slot_type)) = slots.iter().find(|(s, _)| s == slot) else {
                cx.report(
                    site,
                    &sp,
                    Check::UnknownSlot,
                    format!("module {} declares no cap slot `{slot}`", b.module),
                );
                continue;
            };
            if let Some(g) = cx.grant(site, &sp, grant)
                && let Some(c) = cx.cat.cap(&g.cap)
                && c.cap_type != *slot_type
            {
                cx.report(
                    site,
                    &sp,
                    Check::CapTypeMismatch,
                    format!(
                        "slot `{slot}` takes a `{slot_type}` grant, but `{grant}` grants {} of \
                         type `{}`",
                        g.cap, c.cap_type
                    ),
                );
            }
        }
    }
    for (i, r) in m.routing.events.iter().enumerate() {
        let p = format!("/routing/events/{i}");
        let ev = cx
            .schema(site, &format!("{p}/event"), &r.event)
            .map(|_| &r.event);
        let red = cx.reducer(site, &format!("{p}/reducer"), &r.reducer);
        let (Some(ev), Some((module, abi))) = (ev, red) else {
            continue;
        };
        if cx.cat.schema(&abi.event).is_some() && !in_family(ev, &abi.event, &cx.cat) {
            cx.report(
                site,
                &format!("{p}/event"),
                Check::RouteEvent,
                format!(
                    "reducer {} takes events of {}, and {ev} is neither that schema nor one of \
                     its alternatives",
                    r.reducer, abi.event
                ),
            );
        }
        match (&module.key_schema, &r.key_field) {
            (Some(k), None) => cx.report(
                site,
                &p,
                Check::RouteKey,
                format!(
                    "reducer {} is keyed (key schema {k}): its route needs `key_field`",
                    r.reducer
                ),
            ),
            (None, Some(_)) => cx.report(
                site,
                &format!("{p}/key_field"),
                Check::RouteKey,
                format!(
                    "reducer {} has no `key_schema`, so its route takes no `key_field`",
                    r.reducer
                ),
            ),
            (Some(k), Some(f)) => {
                let Some(kt) = cx.cat.schema(k) else { continue };
                if !cx.type_ok(&Type::Ref(ev.clone())) || !cx.type_ok(kt) {
                    continue;
                }
                let path: Vec<&str> = f.split('.').collect();
                match field_type(&Type::Ref(ev.clone()), &path, &cx.cat) {
                    Ok(ft) if !same(&ft, &Type::Ref(k.clone()), &cx.cat) => cx.report(
                        site,
                        &format!("{p}/key_field"),
                        Check::KeyField,
                        format!(
                            "`{f}` of {ev} is {}, but the key schema {k} of {} is {}",
                            describe(&ft),
                            r.reducer,
                            describe(kt)
                        ),
                    ),
                    Ok(_) => {}
                    Err(why) => cx.report(
                        site,
                        &format!("{p}/key_field"),
                        Check::KeyField,
                        format!("`key_field` `{f}` does not name a field of {ev}: {why}"),
                    ),
                }
            }
            (None, None) => {}
        }
    }
    for (i, r) in m.routing.inboxes.iter().enumerate() {
        cx.reducer(site, &format!("/routing/inboxes/{i}/reducer"), &r.reducer);
    }
    for (i, t) in m.triggers.iter().enumerate() {
        let p = format!("/triggers/{i}");
        let ev = cx.schema(site, &format!("{p}/event"), &t.event);
        let plan = cx.plan(site, &format!("{p}/plan"), &t.plan, Check::UnknownPlan);
        if let (Some(_), Some(plan)) = (ev, plan)
            && cx.cat.schema(&plan.input).is_some()
            && !same(
                &Type::Ref(t.event.clone()),
                &Type::Ref(plan.input.clone()),
                &cx.cat,
            )
        {
            cx.report(
                site,
                &format!("{p}/event"),
                Check::TriggerInput,
                format!(
                    "plan {} takes input {}, but the trigger starts it with {}",
                    t.plan, plan.input, t.event
                ),
            );
        }
        if let (Some(_), Some(c)) = (ev, &t.correlate_by)
            && cx.type_ok(&Type::Ref(t.event.clone()))
        {
            let path: Vec<&str> = c.split('.').collect();
            if let Err(why) = field_type(&Type::Ref(t.event.clone()), &path, &cx.cat) {
                cx.report(
                    site,
                    &format!("{p}/correlate_by"),
                    Check::CorrelateBy,
                    format!(
                        "`correlate_by` `{c}` does not name a field of {}: {why}",
                        t.event
                    ),
                );
            }
        }
    }
}
