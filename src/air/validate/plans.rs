//! Plans: locals, the graph, declared caps and effects, bindings and handles, correlation,
//! then every step (in `steps`), guards and invariants; expressions are typed by the
//! expression checker, with this module telling it what a reference's root stands for where
//! the expression sits.

use std::collections::HashMap;

use super::Check;
use super::context::{Cx, Site, report};
use super::graph::{Graph, graph};
use crate::air::canon;
use crate::air::expr::check::{self, Env, TypeRule};
use crate::air::expr::{Expr, ExprOrValue, Ref, RefRoot};
use crate::air::name::Name;
use crate::air::nodes::{DefPlan, StepOp};
use crate::air::types::relate::{field_type, same};
use crate::air::types::{Schemas, Type};
use crate::codec::json::pointer_escape;

/// Where an expression is evaluated.
#[derive(Clone, Copy)]
pub(super) enum At {
    /// In step `i`: sees what the step's ancestors bind.
    Step(usize),
    /// On an edge into step `i`: sees what the step's ancestors bind.
    Guard(usize),
    /// Anywhere (invariants): sees every binding.
    Anywhere,
}

/// Where an expression sits, as far as what it may refer to.
#[derive(Clone, Copy)]
pub(super) struct Scope<'t> {
    pub(super) at: At,
    /// The awaited event's type, inside `await_event.where`.
    pub(super) event: Option<&'t Type>,
}

/// Checking one plan: the world, the plan, and what its steps bind.
pub(super) struct PlanCx<'c, 'a, 'o> {
    pub(super) cx: &'c mut Cx<'a, 'o>,
    pub(super) plan: &'a DefPlan,
    pub(super) site: &'c Site,
    pub(super) ids: HashMap<&'a str, usize>,
    /// `anc[i][j]`: step `j` is a strict ancestor of step `i`. `None` if the plan is cyclic.
    pub(super) anc: Option<Vec<Vec<bool>>>,
    pub(super) locals: HashMap<&'a str, &'a Name>,
    /// The steps that bind each variable (other than locals).
    pub(super) bindings: HashMap<&'a str, Vec<usize>>,
    /// The type of what each step binds, once known.
    pub(super) bind_ty: Vec<Option<Type>>,
    /// The type of each step's output (`@step:id`), once known.
    pub(super) out_ty: Vec<Option<Type>>,
    /// Effect handles: the `emit_effect` steps binding each, with their effect kinds.
    pub(super) handles: HashMap<&'a str, Vec<(usize, &'a str)>>,
    /// `Some` if a trigger starts the plan with `correlate_by`: the correlation id's type.
    pub(super) correlation: Option<Option<Type>>,
    /// The `correlate_by` paths into the input.
    pub(super) corr_paths: Vec<Vec<&'a str>>,
}

/// Checks a plan: its schemas and locals, graph, declared caps and effects, bindings,
/// correlation, steps, guards and invariants.
pub(super) fn check_plan<'a>(cx: &mut Cx<'a, '_>, site: &Site, plan: &'a DefPlan) {
    cx.schema(site, "/input", &plan.input);
    if let Some(o) = &plan.output {
        cx.schema(site, "/output", o);
    }
    let mut locals = HashMap::new();
    for (v, t) in &plan.locals {
        let p = format!("/locals/{}", pointer_escape(v));
        cx.ident(site, &p, "variable name", v);
        cx.schema(site, &p, t);
        locals.insert(v.as_str(), t);
    }
    let n = plan.steps.len();
    let Graph { ids, order, anc } = graph(cx, site, plan);
    // Declared caps and effects.
    let (caps, kinds) = canon::derived_caps_and_effects(plan);
    for (given, derived, key, rule) in [
        (
            &plan.required_caps,
            &caps,
            "required_caps",
            Check::RequiredCaps,
        ),
        (
            &plan.allowed_effects,
            &kinds,
            "allowed_effects",
            Check::AllowedEffects,
        ),
    ] {
        if let Some(given) = given {
            let mut g: Vec<&str> = given.iter().map(String::as_str).collect();
            g.sort_unstable();
            g.dedup();
            if g != *derived {
                cx.report(
                    site,
                    &format!("/{key}"),
                    rule,
                    format!(
                        "`{key}` is [{}], but the steps use [{}]; omit it or make it equal",
                        g.join(", "),
                        derived.join(", ")
                    ),
                );
            }
        }
    }
    // Bindings.
    let mut bindings: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut handles: HashMap<&str, Vec<(usize, &str)>> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let (var, key) = match &s.op {
            StepOp::EmitEffect {
                bind_effect_id_as,
                kind,
                ..
            } => {
                let h = handles.entry(bind_effect_id_as).or_default();
                if let Some((first, _)) = h.first() {
                    cx.report(
                        site,
                        &format!("/steps/{i}/bind/effect_id_as"),
                        Check::DuplicateHandle,
                        format!(
                            "handle `{bind_effect_id_as}` is already bound by step `{}`",
                            plan.steps[*first].id
                        ),
                    );
                }
                h.push((i, kind.as_str()));
                (bind_effect_id_as, "effect_id_as")
            }
            StepOp::AwaitReceipt { bind_as, .. }
            | StepOp::AwaitEvent { bind_as, .. }
            | StepOp::Assign { bind_as, .. } => (bind_as, "as"),
            StepOp::RaiseEvent { .. } | StepOp::End { .. } => continue,
        };
        cx.ident(
            site,
            &format!("/steps/{i}/bind/{key}"),
            "variable name",
            var,
        );
        if !locals.contains_key(var.as_str()) {
            bindings.entry(var).or_default().push(i);
        }
    }
    // Correlation.
    let mut correlation = None;
    let mut corr_paths = Vec::new();
    if let Some(ts) = cx.triggers.get(&plan.name).cloned() {
        for t in ts {
            let Some(c) = &t.correlate_by else { continue };
            let path: Vec<&str> = c.split('.').collect();
            let ty = if cx.type_ok(&Type::Ref(t.event.clone())) {
                field_type(&Type::Ref(t.event.clone()), &path, &cx.cat).ok()
            } else {
                None
            };
            correlation = Some(match (correlation, ty) {
                (None, t) => t,
                (Some(Some(a)), Some(b)) if same(&a, &b, &cx.cat) => Some(a),
                _ => None,
            });
            corr_paths.push(path);
        }
    }
    let mut pc = PlanCx {
        cx,
        plan,
        site,
        ids,
        anc,
        locals,
        bindings,
        bind_ty: vec![None; n],
        out_ty: vec![None; n],
        handles,
        correlation,
        corr_paths,
    };
    for i in order {
        pc.step(i);
    }
    for (j, e) in plan.edges.iter().enumerate() {
        if let (Some(w), Some(&to)) = (&e.when, pc.ids.get(e.to.as_str())) {
            let sc = Scope {
                at: At::Guard(to),
                event: None,
            };
            pc.check(w, &format!("/edges/{j}/when"), &Type::Bool, sc);
        }
    }
    for (j, inv) in plan.invariants.iter().enumerate() {
        let sc = Scope {
            at: At::Anywhere,
            event: None,
        };
        pc.check(inv, &format!("/invariants/{j}"), &Type::Bool, sc);
    }
}

impl<'a> PlanCx<'_, 'a, '_> {
    pub(super) fn report(&mut self, rel: &str, rule: Check, message: String) {
        report(self.cx.out, self.site, rel, rule, message);
    }

    pub(super) fn visible(&self, step: usize, at: At) -> bool {
        match at {
            At::Step(s) | At::Guard(s) => self.anc.as_ref().is_none_or(|a| a[s][step]),
            At::Anywhere => true,
        }
    }

    pub(super) fn id(&self, i: usize) -> &'a str {
        &self.plan.steps[i].id
    }

    pub(super) fn uses_correlation(&self, f: &Expr) -> bool {
        f.refs().iter().any(|r| match &r.root {
            RefRoot::Var(v) => v == "correlation_id" && r.path.is_empty(),
            RefRoot::PlanInput => self
                .corr_paths
                .iter()
                .any(|c| c.len() == r.path.len() && c.iter().zip(&r.path).all(|(a, b)| a == b)),
            _ => false,
        })
    }

    /// Checks a slot against its type: an expression by type, a literal by reading it.
    pub(super) fn slot(&mut self, slot: &ExprOrValue, p: &str, t: &Type, sc: Scope<'_>) {
        match slot {
            ExprOrValue::Expr(e) => self.check(e, p, t, sc),
            ExprOrValue::Value(j) => {
                let site = self.site.clone();
                self.cx.literal(&site, p, j, t);
            }
        }
    }

    /// Walks a slot whose type is unknown, for its references.
    pub(super) fn walk_slot(&mut self, slot: &ExprOrValue, p: &str, sc: Scope<'_>) {
        if let ExprOrValue::Expr(e) = slot {
            self.infer(e, p, sc);
        }
    }

    /// Checks `e` against the expected type `t` (see [`check::check`]).
    pub(super) fn check(&mut self, e: &Expr, p: &str, t: &Type, sc: Scope<'_>) {
        check::check(&mut ExprEnv { pc: self, sc }, e, p, t);
    }

    /// Infers the type of `e` where it can (see [`check::infer`]).
    pub(super) fn infer(&mut self, e: &Expr, p: &str, sc: Scope<'_>) -> Option<Type> {
        check::infer(&mut ExprEnv { pc: self, sc }, e, p)
    }

    /// The type of what reference `r`'s root names where `sc` is, reporting why it does not
    /// resolve.
    pub(super) fn root_type(&mut self, r: &Ref, p: &str, sc: Scope<'_>) -> Option<Type> {
        match &r.root {
            RefRoot::PlanInput => self
                .cx
                .cat
                .schema(&self.plan.input)
                .map(|_| Type::Ref(self.plan.input.clone())),
            RefRoot::Event => match sc.event {
                Some(t) => Some(t.clone()),
                None => {
                    self.report(
                        p,
                        Check::EventRef,
                        format!("`{r}`: `@event` exists only in `await_event.where`"),
                    );
                    None
                }
            },
            RefRoot::Var(v) => {
                if let Some(t) = self.locals.get(v.as_str()) {
                    self.cx.cat.schema(t).map(|_| Type::Ref((*t).clone()))
                } else if let Some(steps) = self.bindings.get(v.as_str()).cloned() {
                    let visible: Vec<usize> = steps
                        .iter()
                        .copied()
                        .filter(|&s| self.visible(s, sc.at))
                        .collect();
                    if visible.is_empty() {
                        let by: Vec<&str> = steps.iter().map(|&s| self.id(s)).collect();
                        self.report(
                            p,
                            Check::NotAncestor,
                            format!(
                                "`{r}`: variable `{v}` is bound by step `{}`, which does not \
                                 always complete before this point (it is not an ancestor)",
                                by.join("`, `")
                            ),
                        );
                        return None;
                    }
                    let mut ty = self.bind_ty[visible[0]].clone();
                    for &s in &visible[1..] {
                        match (&ty, &self.bind_ty[s]) {
                            (Some(a), Some(b)) if same(a, b, &self.cx.cat) => {}
                            _ => ty = None,
                        }
                    }
                    ty
                } else if v == "correlation_id" {
                    if let Some(t) = &self.correlation {
                        t.clone()
                    } else {
                        self.report(
                            p,
                            Check::UnresolvedRef,
                            format!(
                                "`{r}`: `correlation_id` is bound only in runs started by a \
                                 trigger with `correlate_by`, and no trigger starts plan {} so",
                                self.plan.name
                            ),
                        );
                        None
                    }
                } else {
                    self.report(
                        p,
                        Check::UnresolvedRef,
                        format!("`{r}`: no variable `{v}` (not a local, not bound by any step)"),
                    );
                    None
                }
            }
            RefRoot::Step(s) => match self.ids.get(s.as_str()).copied() {
                Some(i) => {
                    if !self.visible(i, sc.at) {
                        self.report(
                            p,
                            Check::NotAncestor,
                            format!(
                                "`{r}`: step `{s}` does not always complete before this point \
                                 (it is not an ancestor)"
                            ),
                        );
                        return None;
                    }
                    self.out_ty[i].clone()
                }
                None => {
                    self.report(
                        p,
                        Check::UnresolvedRef,
                        format!("`{r}`: the plan has no step `{s}`"),
                    );
                    None
                }
            },
        }
    }
}

/// A plan expression's environment for the checker: the plan and where the expression sits.
pub(super) struct ExprEnv<'x, 'c, 'a, 'o, 't> {
    pub(super) pc: &'x mut PlanCx<'c, 'a, 'o>,
    pub(super) sc: Scope<'t>,
}

impl Env for ExprEnv<'_, '_, '_, '_, '_> {
    fn schemas(&self) -> &dyn Schemas {
        &self.pc.cx.cat
    }

    fn root(&mut self, r: &Ref, pointer: &str) -> Option<Type> {
        self.pc.root_type(r, pointer, self.sc)
    }

    fn report(&mut self, pointer: &str, rule: TypeRule, message: String) {
        let rule = match rule {
            TypeRule::Mismatch => Check::TypeMismatch,
            TypeRule::BadPath => Check::BadPath,
        };
        self.pc.report(pointer, rule, message);
    }
}
