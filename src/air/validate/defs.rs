//! Definitions other than schemas and plans: modules (reducer and pure ABIs, emitted effects
//! and cap slots), effects, capabilities, policies and secrets.

use super::Check;
use super::context::{Cx, Site, in_family};
use crate::air::name::Name;
use crate::air::nodes::{
    DefCap, DefEffect, DefModule, DefPolicy, DefSecret, ModuleAbi, Node, NodeKind, OriginKind,
    OriginScope,
};
use crate::codec::json::pointer_escape;

pub(super) fn check_module(cx: &mut Cx<'_, '_>, site: &Site, m: &DefModule) {
    if let Some(k) = &m.key_schema {
        cx.schema(site, "/key_schema", k);
    }
    match &m.abi {
        ModuleAbi::Reducer(r) => {
            cx.schema(site, "/abi/reducer/state", &r.state);
            cx.schema(site, "/abi/reducer/event", &r.event);
            if let Some(a) = &r.annotations {
                cx.schema(site, "/abi/reducer/annotations", a);
            }
            for (i, kind) in r.effects_emitted.iter().enumerate() {
                let p = format!("/abi/reducer/effects_emitted/{i}");
                cx.dotted(site, &p, "effect kind", kind);
                if let Some(e) = cx.effect(site, &p, kind)
                    && e.origin_scope == OriginScope::Plan
                {
                    cx.report(
                        site,
                        &p,
                        Check::OriginScope,
                        format!(
                            "effect `{kind}` ({}) may be emitted only by plans, not by reducers",
                            e.name
                        ),
                    );
                }
                if let Some(receipt) = receipt_event(kind)
                    && let Ok(receipt) = Name::new(receipt)
                    && cx.cat.schema(&r.event).is_some()
                    && !in_family(&receipt, &r.event, &cx.cat)
                {
                    cx.report(
                        site,
                        &p,
                        Check::ReceiptEvent,
                        format!(
                            "the reducer emits `{kind}`, whose receipt comes back as event \
                             {receipt}, but its event schema {} cannot carry it (make it {receipt} \
                             or a variant with an alternative of it)",
                            r.event
                        ),
                    );
                }
            }
            for (slot, cap_type) in &r.cap_slots {
                let p = format!("/abi/reducer/cap_slots/{}", pointer_escape(slot));
                cx.ident(site, &p, "cap slot name", slot);
                cx.dotted(site, &p, "cap type", cap_type);
            }
        }
        ModuleAbi::Pure(p) => {
            cx.schema(site, "/abi/pure/input", &p.input);
            cx.schema(site, "/abi/pure/output", &p.output);
        }
    }
}

pub(super) fn check_effect(cx: &mut Cx<'_, '_>, site: &Site, e: &DefEffect) {
    cx.dotted(site, "/kind", "effect kind", &e.kind);
    cx.dotted(site, "/cap_type", "cap type", &e.cap_type);
    cx.schema(site, "/params_schema", &e.params_schema);
    cx.schema(site, "/receipt_schema", &e.receipt_schema);
}

pub(super) fn check_cap(cx: &mut Cx<'_, '_>, site: &Site, c: &DefCap) {
    cx.dotted(site, "/cap_type", "cap type", &c.cap_type);
    for (p, n) in c.schema.refs() {
        cx.schema(site, &format!("/schema{p}"), n);
    }
}

pub(super) fn check_policy(cx: &mut Cx<'_, '_>, site: &Site, p: &DefPolicy) {
    for (i, r) in p.rules.iter().enumerate() {
        let w = format!("/rules/{i}/when");
        if let Some(k) = &r.when.effect_kind {
            cx.effect(site, &format!("{w}/effect_kind"), k);
        }
        if let Some(c) = &r.when.cap_name {
            cx.grant(site, &format!("{w}/cap_name"), c);
        }
        if let Some(n) = &r.when.origin_name {
            let kinds: &[NodeKind] = match r.when.origin_kind {
                Some(OriginKind::Plan) => &[NodeKind::DefPlan],
                Some(OriginKind::Reducer) => &[NodeKind::DefModule],
                None => &[NodeKind::DefPlan, NodeKind::DefModule],
            };
            let found = kinds.iter().any(|k| match cx.node(*k, n) {
                Some(Node::DefModule(m)) => matches!(m.abi, ModuleAbi::Reducer(_)),
                Some(_) => true,
                None => false,
            });
            if !found {
                let what = match r.when.origin_kind {
                    Some(OriginKind::Plan) => "plan",
                    Some(OriginKind::Reducer) => "reducer",
                    None => "plan or reducer",
                };
                cx.report(
                    site,
                    &format!("{w}/origin_name"),
                    Check::UnknownOrigin,
                    format!("no {what} named {n} is listed in the manifest"),
                );
            }
        }
    }
}

pub(super) fn check_secret(cx: &mut Cx<'_, '_>, site: &Site, s: &DefSecret) {
    if s.binding_id.trim().is_empty() {
        cx.report(
            site,
            "/binding_id",
            Check::BadSecret,
            "`binding_id` is empty".to_owned(),
        );
    }
    for (j, c) in s.allowed_caps.iter().flatten().enumerate() {
        cx.grant(site, &format!("/allowed_caps/{j}"), c);
    }
    for (j, p) in s.allowed_plans.iter().flatten().enumerate() {
        cx.plan(site, &format!("/allowed_plans/{j}"), p, Check::UnknownPlan);
    }
}

/// The receipt event a reducer receives for a built-in micro-effect.
pub(super) fn receipt_event(kind: &str) -> Option<&'static str> {
    match kind {
        "timer.set" => Some("sys/TimerFired@1"),
        "blob.put" => Some("sys/BlobPutResult@1"),
        "blob.get" => Some("sys/BlobGetResult@1"),
        _ => None,
    }
}
