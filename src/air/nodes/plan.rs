//! `defplan`: an orchestration DAG of steps and guarded edges.

use super::decode::{Decode, Rd, Val, dict, expr, name_of};
use super::read::{
    Item, Obj, Problems, all_some, dotted_of, expr as read_expr, expr_or_value, ident_key,
    ident_of, list, map_of, object, opt_list, qname, report, word,
};
use super::write::{Lookup, Out};
use crate::air::diag::Rule;
use crate::air::expr::{Expr, ExprOrValue};
use crate::air::name::Name;
use crate::air::types::Type;
use crate::codec::shape::{Path, ShapeError};

/// `defplan`: an orchestration DAG.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefPlan {
    /// `name`.
    pub name: Name,
    /// `input`: schema of the plan input.
    pub input: Name,
    /// `output`: schema of the result of `end`.
    pub output: Option<Name>,
    /// `locals`: variable → schema, in declared order (absent = empty).
    pub locals: Vec<(String, Name)>,
    /// `steps`, in declared order (at least one).
    pub steps: Vec<Step>,
    /// `edges`, in declared order (absent = empty).
    pub edges: Vec<Edge>,
    /// `required_caps`: grant names; if given, must equal the set derived from the steps.
    pub required_caps: Option<Vec<String>>,
    /// `allowed_effects`: effect kinds; if given, must equal the set derived from the steps.
    pub allowed_effects: Option<Vec<String>>,
    /// `invariants`: boolean expressions (absent = empty).
    pub invariants: Vec<Expr>,
}

/// A plan step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// `id`: a small identifier, unique in the plan.
    pub id: String,
    /// `op` and the fields that go with it.
    pub op: StepOp,
}

/// What a step does (`op`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOp {
    /// `raise_event {reducer, event, key?}`.
    RaiseEvent {
        /// `reducer`: the reducer to deliver to.
        reducer: Name,
        /// `event`: the event value.
        event: ExprOrValue,
        /// `key`: the cell key, for keyed reducers.
        key: Option<Expr>,
    },
    /// `emit_effect {kind, params, cap, bind {effect_id_as}}`.
    EmitEffect {
        /// `kind`: the effect kind.
        kind: String,
        /// `params`: the effect parameters.
        params: ExprOrValue,
        /// `cap`: the grant name.
        cap: String,
        /// `bind.effect_id_as`: the variable receiving the effect handle.
        bind_effect_id_as: String,
    },
    /// `await_receipt {for, bind {as}}`.
    AwaitReceipt {
        /// `for`: the effect handle.
        receipt_for: Expr,
        /// `bind.as`: the variable receiving the receipt.
        bind_as: String,
    },
    /// `await_event {event, where?, bind {as}}`.
    AwaitEvent {
        /// `event`: the schema of the awaited event.
        event: Name,
        /// `where`: the predicate the event must satisfy.
        filter: Option<Expr>,
        /// `bind.as`: the variable receiving the event.
        bind_as: String,
    },
    /// `assign {expr, bind {as}}`.
    Assign {
        /// `expr`: the value.
        expr: ExprOrValue,
        /// `bind.as`: the variable receiving it.
        bind_as: String,
    },
    /// `end {result?}`.
    End {
        /// `result`: the plan output.
        result: Option<ExprOrValue>,
    },
}

/// The `op` words, in the order messages list them.
const STEP_OPS: [&str; 6] = [
    "raise_event",
    "emit_effect",
    "await_receipt",
    "await_event",
    "assign",
    "end",
];

impl StepOp {
    /// The `op` word.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            StepOp::RaiseEvent { .. } => "raise_event",
            StepOp::EmitEffect { .. } => "emit_effect",
            StepOp::AwaitReceipt { .. } => "await_receipt",
            StepOp::AwaitEvent { .. } => "await_event",
            StepOp::Assign { .. } => "assign",
            StepOp::End { .. } => "end",
        }
    }
}

/// A plan edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// `from`: a step id.
    pub from: String,
    /// `to`: a step id.
    pub to: String,
    /// `when`: the guard.
    pub when: Option<Expr>,
}

/// The sets of grant names and effect kinds a plan's `emit_effect` steps use, sorted
/// bytewise: what `required_caps` and `allowed_effects` must equal.
#[must_use]
pub fn derived_caps_and_effects(plan: &DefPlan) -> (Vec<&str>, Vec<&str>) {
    let mut caps = Vec::new();
    let mut kinds = Vec::new();
    for s in &plan.steps {
        if let StepOp::EmitEffect { kind, cap, .. } = &s.op {
            caps.push(cap.as_str());
            kinds.push(kind.as_str());
        }
    }
    for set in [&mut caps, &mut kinds] {
        set.sort_unstable();
        set.dedup();
    }
    (caps, kinds)
}

/// The type of the literal slots of a step, when known: the slots whose literals are
/// canonicalized through a type (`emit_effect.params`, `raise_event.event`, `assign.expr`,
/// `end.result`).
pub(crate) fn slot_type(plan: &DefPlan, op: &StepOp, lookup: &dyn Lookup) -> Option<Type> {
    match op {
        StepOp::EmitEffect { kind, .. } => Some(Type::Ref(lookup.effect_params(kind)?.clone())),
        StepOp::RaiseEvent { reducer, .. } => {
            Some(Type::Ref(lookup.reducer_event(reducer)?.clone()))
        }
        StepOp::Assign { bind_as, .. } => plan
            .locals
            .iter()
            .find(|(v, _)| v == bind_as)
            .map(|(_, t)| Type::Ref(t.clone())),
        StepOp::End { .. } => plan.output.clone().map(Type::Ref),
        StepOp::AwaitReceipt { .. } | StepOp::AwaitEvent { .. } => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Authoring JSON

impl DefPlan {
    pub(super) fn read(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<Self> {
        let name = o.req_with("name", e, qname);
        let input = o.req_with("input", e, qname);
        let output = o.opt_with("output", e, qname);
        let locals = o.opt_default_with("locals", e, |m, e| {
            map_of(m, e, ident_key("variable name"), qname)
        });
        let steps = o.req_with("steps", e, |m, e| {
            let steps = list(m, e, Step::read)?;
            if steps.is_empty() {
                report(e, &m, Rule::Empty, "a plan has at least one step");
                return None;
            }
            Some(steps)
        });
        let edges = opt_list(o, "edges", e, Edge::read);
        let required_caps = o.opt_with("required_caps", e, |m, e| {
            list(m, e, ident_of("cap grant name"))
        });
        let allowed_effects = o.opt_with("allowed_effects", e, |m, e| {
            list(m, e, dotted_of("effect kind"))
        });
        let invariants = opt_list(o, "invariants", e, read_expr);
        all_some!(DefPlan {
            name,
            input,
            output,
            locals,
            steps,
            edges,
            required_caps,
            allowed_effects,
            invariants
        })
    }
}

impl Step {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        let mut o = Obj::open_into(m.value, &m.path, "a step", e)?;
        let id = o.req_with("id", e, ident_of("step id"));
        let op = o.req_with("op", e, |m, e| {
            word(m, "`op`", &STEP_OPS.map(|s| (s, s)), e)
        });
        // Without a known op the allowed fields are unknown: report nothing more.
        let op = op?;
        let op = match op {
            "raise_event" => read_raise_event(&mut o, e),
            "emit_effect" => read_emit_effect(&mut o, e),
            "await_receipt" => read_await_receipt(&mut o, e),
            "await_event" => read_await_event(&mut o, e),
            "assign" => read_assign(&mut o, e),
            _ => read_end(&mut o, e),
        };
        o.finish_into(e);
        all_some!(Step { id, op })
    }
}

fn read_raise_event(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let reducer = o.req_with("reducer", e, qname);
    let event = o.req_with("event", e, expr_or_value);
    let key = o.opt_with("key", e, read_expr);
    all_some!(StepOp::RaiseEvent {
        reducer,
        event,
        key
    })
}

fn read_emit_effect(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let kind = o.req_with("kind", e, dotted_of("effect kind"));
    let params = o.req_with("params", e, expr_or_value);
    let cap = o.req_with("cap", e, ident_of("cap grant name"));
    let bind_effect_id_as = o.req_with("bind", e, |m, e| read_bind(m, "effect_id_as", e));
    all_some!(StepOp::EmitEffect {
        kind,
        params,
        cap,
        bind_effect_id_as
    })
}

fn read_await_receipt(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let receipt_for = o.req_with("for", e, read_expr);
    let bind_as = o.req_with("bind", e, |m, e| read_bind(m, "as", e));
    all_some!(StepOp::AwaitReceipt {
        receipt_for,
        bind_as
    })
}

fn read_await_event(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let event = o.req_with("event", e, qname);
    let filter = o.opt_with("where", e, read_expr);
    let bind_as = o.req_with("bind", e, |m, e| read_bind(m, "as", e));
    all_some!(StepOp::AwaitEvent {
        event,
        filter,
        bind_as
    })
}

fn read_assign(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let expr = o.req_with("expr", e, expr_or_value);
    let bind_as = o.req_with("bind", e, |m, e| read_bind(m, "as", e));
    all_some!(StepOp::Assign { expr, bind_as })
}

fn read_end(o: &mut Obj<'_, '_>, e: &mut Problems) -> Option<StepOp> {
    let result = o.opt_with("result", e, expr_or_value)?;
    Some(StepOp::End { result })
}

/// Reads `bind {<field>: VarName}`.
fn read_bind(m: Item<'_, '_>, field: &'static str, e: &mut Problems) -> Option<String> {
    object(m, "`bind`", e, |o, e| {
        o.req_with(field, e, ident_of("variable name"))
    })
}

impl Edge {
    fn read(m: Item<'_, '_>, e: &mut Problems) -> Option<Self> {
        object(m, "an edge", e, |o, e| {
            let from = o.req_with("from", e, ident_of("step id"));
            let to = o.req_with("to", e, ident_of("step id"));
            let when = o.opt_with("when", e, read_expr);
            all_some!(Edge { from, to, when })
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

impl DefPlan {
    /// The canonical value leaves out empty edges and always holds `required_caps` and
    /// `allowed_effects`, derived from the steps; authoring JSON writes them as given.
    pub(super) fn write<O: Out>(&self, o: &mut O) -> Result<(), O::Error> {
        o.name("name", &self.name)
            .name("input", &self.input)
            .opt_name("output", self.output.as_ref());
        if !self.locals.is_empty() {
            o.map("locals", |m| {
                for (k, t) in &self.locals {
                    m.name(k, t);
                }
            });
        }
        let at = Path::ROOT.key("steps");
        let mut steps = Vec::with_capacity(self.steps.len());
        for (i, s) in self.steps.iter().enumerate() {
            steps.push(s.write(self, o, &at.index(i))?);
        }
        o.put("steps", O::array_item(steps));
        if !O::CANONICAL || !self.edges.is_empty() {
            o.maps("edges", &self.edges, |edge, m| {
                m.text("from", &edge.from)
                    .text("to", &edge.to)
                    .opt_expr("when", edge.when.as_ref());
            });
        }
        if O::CANONICAL {
            let (caps, kinds) = derived_caps_and_effects(self);
            o.texts("required_caps", caps)
                .texts("allowed_effects", kinds);
        } else {
            if let Some(c) = &self.required_caps {
                o.texts("required_caps", c.iter().map(String::as_str));
            }
            if let Some(k) = &self.allowed_effects {
                o.texts("allowed_effects", k.iter().map(String::as_str));
            }
        }
        if !self.invariants.is_empty() {
            let items = self.invariants.iter().map(O::expr_item).collect();
            o.put("invariants", O::array_item(items));
        }
        Ok(())
    }
}

impl Step {
    /// Writes the step, which sits at `at`, of `plan`.
    fn write<O: Out>(&self, plan: &DefPlan, o: &O, at: &Path<'_>) -> Result<O::Item, O::Error> {
        let ty = o.lookup().and_then(|l| slot_type(plan, &self.op, l));
        let ty = ty.as_ref();
        let bind = |m: &mut O, field: &str, var: &str| {
            m.map("bind", |b| {
                b.text(field, var);
            });
        };
        let mut m = o.sub();
        m.text("id", &self.id).text("op", self.op.as_str());
        match &self.op {
            StepOp::RaiseEvent {
                reducer,
                event,
                key,
            } => {
                m.name("reducer", reducer);
                m.put("event", o.slot(event, ty, &at.key("event"))?);
                m.opt_expr("key", key.as_ref());
            }
            StepOp::EmitEffect {
                kind,
                params,
                cap,
                bind_effect_id_as,
            } => {
                m.text("kind", kind);
                m.put("params", o.slot(params, ty, &at.key("params"))?);
                m.text("cap", cap);
                bind(&mut m, "effect_id_as", bind_effect_id_as);
            }
            StepOp::AwaitReceipt {
                receipt_for,
                bind_as,
            } => {
                m.expr("for", receipt_for);
                bind(&mut m, "as", bind_as);
            }
            StepOp::AwaitEvent {
                event,
                filter,
                bind_as,
            } => {
                m.name("event", event).opt_expr("where", filter.as_ref());
                bind(&mut m, "as", bind_as);
            }
            StepOp::Assign { expr, bind_as } => {
                m.put("expr", o.slot(expr, ty, &at.key("expr"))?);
                bind(&mut m, "as", bind_as);
            }
            StepOp::End { result } => {
                if let Some(r) = result {
                    m.put("result", o.slot(r, ty, &at.key("result"))?);
                }
            }
        }
        Ok(m.done())
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical value

impl DefPlan {
    pub(super) fn decode(r: &mut Rd<'_, '_>) -> Result<Self, ShapeError> {
        let name = r.name("name")?;
        let input = r.name("input")?;
        let output = r.opt_name("output")?;
        let locals = match r.opt("locals") {
            Some(m) => dict(&m, |k, x| Ok((k.to_owned(), name_of(&x)?)))?,
            None => Vec::new(),
        };
        let steps = r
            .req("steps")?
            .items()?
            .map(Step::decode)
            .collect::<Result<_, _>>()?;
        let edges = r.maps("edges", "an edge", |e| {
            Ok(Edge {
                from: e.text("from")?,
                to: e.text("to")?,
                when: e.opt_expr("when")?,
            })
        })?;
        let required_caps = Some(
            r.texts("required_caps")?
                .ok_or_else(|| ShapeError::invalid(&Path::ROOT, "`required_caps` is missing"))?,
        );
        let allowed_effects = Some(
            r.texts("allowed_effects")?
                .ok_or_else(|| ShapeError::invalid(&Path::ROOT, "`allowed_effects` is missing"))?,
        );
        let invariants = match r.opt("invariants") {
            Some(m) => m.items()?.map(expr).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(DefPlan {
            name,
            input,
            output,
            locals,
            steps,
            edges,
            required_caps,
            allowed_effects,
            invariants,
        })
    }
}

/// Decodes `bind {<field>: VarName}`.
fn decode_bind(r: &mut Rd<'_, '_>, field: &'static str) -> Result<String, ShapeError> {
    r.req_map("bind", "`bind`", |b| b.text(field))
}

impl Step {
    fn decode(m: Val<'_, '_>) -> Result<Self, ShapeError> {
        let mut r = m.fields("a step")?;
        let id = r.text("id")?;
        let op = r.text("op")?;
        let slot = |r: &mut Rd<'_, '_>, k: &'static str| -> Result<ExprOrValue, ShapeError> {
            Ok(ExprOrValue::Expr(expr(r.req(k)?)?))
        };
        let op = match op.as_str() {
            "raise_event" => StepOp::RaiseEvent {
                reducer: r.name("reducer")?,
                event: slot(&mut r, "event")?,
                key: r.opt_expr("key")?,
            },
            "emit_effect" => StepOp::EmitEffect {
                kind: r.text("kind")?,
                params: slot(&mut r, "params")?,
                cap: r.text("cap")?,
                bind_effect_id_as: decode_bind(&mut r, "effect_id_as")?,
            },
            "await_receipt" => StepOp::AwaitReceipt {
                receipt_for: expr(r.req("for")?)?,
                bind_as: decode_bind(&mut r, "as")?,
            },
            "await_event" => StepOp::AwaitEvent {
                event: r.name("event")?,
                filter: r.opt_expr("where")?,
                bind_as: decode_bind(&mut r, "as")?,
            },
            "assign" => StepOp::Assign {
                expr: slot(&mut r, "expr")?,
                bind_as: decode_bind(&mut r, "as")?,
            },
            "end" => StepOp::End {
                result: r
                    .opt("result")
                    .map(|m| expr(m).map(ExprOrValue::Expr))
                    .transpose()?,
            },
            other => {
                return Err(ShapeError::invalid(
                    &m.path.key("op"),
                    format!("unknown step op {other:?}"),
                ));
            }
        };
        r.finish()?;
        Ok(Step { id, op })
    }
}
