//! The steps of a plan, each checked where it stands: `raise_event`, `emit_effect`,
//! `await_receipt`, `await_event`, `assign` and `end`, and what each binds.

use super::Check;
use super::plans::{At, PlanCx, Scope};
use crate::air::expr::check::expr_form;
use crate::air::expr::{Expr, ExprOrValue, Ref, RefRoot};
use crate::air::name::Name;
use crate::air::nodes::{OriginScope, StepOp};
use crate::air::types::Type;
use crate::air::types::relate::{assignable, describe};

impl PlanCx<'_, '_, '_> {
    #[allow(clippy::too_many_lines)]
    pub(super) fn step(&mut self, i: usize) {
        let p = format!("/steps/{i}");
        let sc = Scope {
            at: At::Step(i),
            event: None,
        };
        let step = &self.plan.steps[i];
        let mut bound: Option<Type> = None;
        match &step.op {
            StepOp::RaiseEvent {
                reducer,
                event,
                key,
            } => {
                let site = self.site.clone();
                if let Some((m, abi)) = self.cx.reducer(&site, &format!("{p}/reducer"), reducer) {
                    self.named_slot(event, &format!("{p}/event"), &abi.event, sc);
                    match (&m.key_schema, key) {
                        (Some(k), Some(x)) => {
                            self.check(x, &format!("{p}/key"), &Type::Ref(k.clone()), sc)
                        }
                        (Some(k), None) => self.report(
                            &p,
                            Check::RaiseKey,
                            format!(
                                "reducer {reducer} is keyed (key schema {k}): `raise_event` needs \
                                 a `key`"
                            ),
                        ),
                        (None, Some(x)) => {
                            self.infer(x, &format!("{p}/key"), sc);
                            self.report(
                                &format!("{p}/key"),
                                Check::RaiseKey,
                                format!(
                                    "reducer {reducer} has no `key_schema`, so it takes no `key`"
                                ),
                            );
                        }
                        (None, None) => {}
                    }
                } else {
                    self.walk_slot(event, &format!("{p}/event"), sc);
                    if let Some(x) = key {
                        self.infer(x, &format!("{p}/key"), sc);
                    }
                }
            }
            StepOp::EmitEffect {
                kind, params, cap, ..
            } => {
                let site = self.site.clone();
                self.cx
                    .dotted(&site, &format!("{p}/kind"), "effect kind", kind);
                self.cx
                    .ident(&site, &format!("{p}/cap"), "cap grant name", cap);
                let effect = self.cx.effect(&site, &format!("{p}/kind"), kind);
                match effect {
                    Some(e) => {
                        if e.origin_scope == OriginScope::Reducer {
                            self.report(
                                &format!("{p}/kind"),
                                Check::OriginScope,
                                format!(
                                    "effect `{kind}` ({}) may be emitted only by reducers, not \
                                     by plans",
                                    e.name
                                ),
                            );
                        }
                        self.named_slot(params, &format!("{p}/params"), &e.params_schema, sc);
                    }
                    None => self.walk_slot(params, &format!("{p}/params"), sc),
                }
                if let Some(g) = self.cx.grant(&site, &format!("{p}/cap"), cap)
                    && let (Some(c), Some(e)) = (self.cx.cat.cap(&g.cap), effect)
                    && c.cap_type != e.cap_type
                {
                    self.report(
                        &format!("{p}/cap"),
                        Check::CapTypeMismatch,
                        format!(
                            "effect `{kind}` needs a `{}` grant, but `{cap}` grants {} of type `{}`",
                            e.cap_type, g.cap, c.cap_type
                        ),
                    );
                }
            }
            StepOp::AwaitReceipt { receipt_for, .. } => {
                bound = self.await_receipt(receipt_for, &format!("{p}/for"), i);
            }
            StepOp::AwaitEvent { event, filter, .. } => {
                let site = self.site.clone();
                let et = self
                    .cx
                    .schema(&site, &format!("{p}/event"), event)
                    .map(|_| Type::Ref(event.clone()));
                match filter {
                    Some(f) => {
                        let fsc = Scope {
                            at: At::Step(i),
                            event: Some(et.as_ref().unwrap_or(&Type::Unit)),
                        };
                        if et.is_some() {
                            self.check(f, &format!("{p}/where"), &Type::Bool, fsc);
                        } else {
                            self.infer(f, &format!("{p}/where"), fsc);
                        }
                        if self.correlation.is_some() && !self.uses_correlation(f) {
                            self.report(
                                &format!("{p}/where"),
                                Check::CorrelationWhere,
                                "the plan is started with `correlate_by`, so `where` must \
                                 compare against the correlation key (`@var:correlation_id` or \
                                 the correlated input field)"
                                    .to_owned(),
                            );
                        }
                    }
                    None if self.correlation.is_some() => self.report(
                        &p,
                        Check::CorrelationWhere,
                        "the plan is started with `correlate_by`, so `await_event` needs a \
                         `where` that matches the correlation key (events are broadcast to \
                         every waiting run)"
                            .to_owned(),
                    ),
                    None => {}
                }
                bound = et;
            }
            StepOp::Assign { expr, bind_as } => {
                let rel = format!("{p}/expr");
                match self.locals.get(bind_as.as_str()).copied() {
                    Some(t) if self.cx.cat.schema(t).is_some() => {
                        let t = Type::Ref(t.clone());
                        self.slot(expr, &rel, &t, sc);
                        bound = Some(t);
                    }
                    Some(_) => self.walk_slot(expr, &rel, sc),
                    None => match expr {
                        ExprOrValue::Expr(x) => bound = self.infer(x, &rel, sc),
                        ExprOrValue::Value(_) => self.report(
                            &rel,
                            Check::UntypedLiteral,
                            format!(
                                "a literal needs a type: `{bind_as}` is not a declared local, so \
                                 declare it in `locals` or write the value as an expression \
                                 (tagged literal)"
                            ),
                        ),
                    },
                }
            }
            StepOp::End { result } => match (&self.plan.output, result) {
                (Some(o), Some(r)) => self.named_slot(r, &format!("{p}/result"), o, sc),
                (Some(o), None) => self.report(
                    &p,
                    Check::EndResult,
                    format!("the plan declares output {o}, so `end` needs a `result`"),
                ),
                (None, Some(r)) => {
                    self.walk_slot(r, &format!("{p}/result"), sc);
                    self.report(
                        &format!("{p}/result"),
                        Check::EndResult,
                        "the plan declares no `output`, so `end` takes no `result`".to_owned(),
                    );
                }
                (None, None) => {}
            },
        }
        // What the step binds, checked against a declared local.
        if let StepOp::AwaitReceipt { bind_as, .. } | StepOp::AwaitEvent { bind_as, .. } = &step.op
            && let Some(local) = self.locals.get(bind_as.as_str()).copied()
            && let Some(b) = &bound
            && !assignable(b, &Type::Ref(local.clone()), &self.cx.cat)
        {
            self.report(
                &format!("{p}/bind/as"),
                Check::TypeMismatch,
                format!(
                    "local `{bind_as}` is {local}, but the step binds {}",
                    describe(b)
                ),
            );
        }
        self.out_ty[i] = bound.clone();
        self.bind_ty[i] = bound;
    }

    /// Checks a slot against schema `name` if it is known (else only walks it).
    fn named_slot(&mut self, slot: &ExprOrValue, p: &str, name: &Name, sc: Scope<'_>) {
        if self.cx.cat.schema(name).is_some() {
            self.slot(slot, p, &Type::Ref(name.clone()), sc);
        } else {
            self.walk_slot(slot, p, sc);
        }
    }

    /// The `await_receipt.for` handle; returns the receipt type.
    pub(super) fn await_receipt(&mut self, e: &Expr, p: &str, i: usize) -> Option<Type> {
        let h = match e {
            Expr::Ref(Ref {
                root: RefRoot::Var(h),
                path,
            }) if path.is_empty() => h.as_str(),
            _ => {
                self.report(
                    p,
                    Check::AwaitReceiptFor,
                    format!(
                        "`for` must be `@var:<handle>`, the handle an earlier `emit_effect` binds; \
                         found {}",
                        expr_form(e)
                    ),
                );
                return None;
            }
        };
        let Some(emits) = self.handles.get(h).cloned() else {
            self.report(
                p,
                Check::AwaitReceiptFor,
                format!("no `emit_effect` step binds handle `{h}` (`bind.effect_id_as`)"),
            );
            return None;
        };
        let visible: Vec<(usize, &str)> = emits
            .iter()
            .copied()
            .filter(|(s, _)| self.visible(*s, At::Step(i)))
            .collect();
        let Some(&(_, kind)) = visible.first() else {
            let by: Vec<&str> = emits.iter().map(|(s, _)| self.id(*s)).collect();
            self.report(
                p,
                Check::AwaitReceiptFor,
                format!(
                    "handle `{h}` is bound by step `{}`, which is not an ancestor of this step",
                    by.join("`, `")
                ),
            );
            return None;
        };
        let e = self.cx.cat.effect(kind)?;
        self.cx
            .cat
            .schema(&e.receipt_schema)
            .map(|_| Type::Ref(e.receipt_schema.clone()))
    }
}
