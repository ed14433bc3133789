//! Rendering nodes as canonical authoring JSON, in either value lens.
//!
//! The canonical JSON of a node is its canonical value ([`canon::node_value`]) read back as a
//! node ([`canon::node_from_value`]) and rendered: members in canonical form, derived members
//! filled in, sets sorted, and every literal in a typed slot written as the tagged constant
//! expression of its canonical value. That is [`Lens::Tagged`]. [`Lens::Sugar`] is the same,
//! except that every literal whose slot type is known — a cap grant's `params` (typed by its
//! capability's schema) and the `ExprOrValue` slots canon types (`emit_effect.params`,
//! `raise_event.event`, `assign.expr`, `end.result`) — is written as the sugar JSON of its
//! value ([`value::to_sugar`]).
//!
//! Both lenses read back ([`Node::from_json`]) to nodes with the same canonical value, hence
//! the same id: a literal is rendered as sugar only when its sugar reads back, in its slot,
//! as the same canonical value; otherwise (a sugar spelling that would read as an expression,
//! say a record with the single field `text`) it stays tagged.

use super::canon::{
    self, CanonError, Catalog, const_expr_value, expr_value, grant_type, literal_value, slot_type,
    slot_value,
};
use super::expr::{Expr, ExprOrValue};
use super::nodes::{CapGrant, DefPlan, Node, StepOp};
use super::types::Type;
use super::value;
use crate::codec::cbor::Value;
use crate::codec::json::Json;

/// How literal values in typed slots are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lens {
    /// As plain JSON read through the slot's type (`"hi"`, `3`, `{"a": 1}`), where that reads
    /// back unambiguously.
    #[default]
    Sugar,
    /// As the tagged constant expression of the canonical value (`{"text": "hi"}`): exactly
    /// the canonical JSON.
    Tagged,
}

/// The canonical authoring JSON of `node` in `lens` (see the [module documentation](self)).
///
/// # Errors
/// As [`canon::node_value`] (a literal that cannot be typed or does not fit, a manifest entry
/// without its hash).
pub fn node_json(node: &Node, cat: &Catalog<'_>, lens: Lens) -> Result<Json, CanonError> {
    value_json(&canon::node_value(node, cat)?, cat, lens)
}

/// The canonical authoring JSON, in `lens`, of the node whose canonical value is `v` (as
/// [`canon::node_value`] gives it, or as stored). `cat` types the literal slots for
/// [`Lens::Sugar`]; slots it cannot type stay tagged.
///
/// # Errors
/// As [`canon::node_from_value`], if `v` is not the canonical value of a node.
pub fn value_json(v: &Value, cat: &Catalog<'_>, lens: Lens) -> Result<Json, CanonError> {
    let mut node = canon::node_from_value(v)?;
    if lens == Lens::Sugar {
        sweeten(&mut node, cat);
    }
    Ok(node.to_json())
}

/// Rewrites the literals of a canonical node's typed slots as sugar, where that reads back
/// to the same canonical value.
fn sweeten(node: &mut Node, cat: &Catalog<'_>) {
    match node {
        Node::DefPlan(plan) => sweeten_plan(plan, cat),
        Node::Manifest(m) => {
            for g in &mut m.defaults.cap_grants {
                sweeten_grant(g, cat);
            }
        }
        _ => {}
    }
}

fn sweeten_plan(plan: &mut DefPlan, cat: &Catalog<'_>) {
    let types: Vec<Option<Type>> = plan
        .steps
        .iter()
        .map(|s| slot_type(plan, &s.op, cat))
        .collect();
    for (step, ty) in plan.steps.iter_mut().zip(types) {
        let Some(ty) = ty else { continue };
        let slot = match &mut step.op {
            StepOp::RaiseEvent { event, .. } => event,
            StepOp::EmitEffect { params, .. } => params,
            StepOp::Assign { expr, .. } => expr,
            StepOp::End {
                result: Some(result),
            } => result,
            StepOp::End { result: None }
            | StepOp::AwaitReceipt { .. }
            | StepOp::AwaitEvent { .. } => continue,
        };
        if let ExprOrValue::Expr(e) = slot
            && let Some(j) = sugar_slot(e, &ty, cat)
        {
            *slot = ExprOrValue::Value(j);
        }
    }
}

/// The sugar of the constant expression `e` in an `ExprOrValue` slot of type `ty`, if it is
/// one and its sugar reads back in the slot as the same canonical value.
fn sugar_slot(e: &Expr, ty: &Type, cat: &Catalog<'_>) -> Option<Json> {
    let v = const_expr_value(e, ty, cat)?;
    let j = value::to_sugar(&v, ty, cat).ok()?;
    let want = slot_value(&ExprOrValue::Expr(e.clone()), Some(ty), cat, "").ok()?;
    let back = slot_value(&ExprOrValue::from_json(&j), Some(ty), cat, "").ok()?;
    (back == want).then_some(j)
}

fn sweeten_grant(g: &mut CapGrant, cat: &Catalog<'_>) {
    let Some(ty) = grant_type(g, cat) else {
        return;
    };
    let Ok(e) = Expr::from_json(&g.params) else {
        return;
    };
    let Some(v) = const_expr_value(&e, ty, cat) else {
        return;
    };
    let Ok(j) = value::to_sugar(&v, ty, cat) else {
        return;
    };
    let want = expr_value(&e);
    if literal_value(&j, ty, cat, "").is_ok_and(|back| back == want) {
        g.params = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::air::load::load_path;
    use crate::air::validate::{Validated, validate};
    use std::path::Path;

    fn fixture(name: &str) -> Validated {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/air")
            .join(name);
        validate(load_path(&dir).into_result().expect("loads")).expect("valid")
    }

    /// Both lenses read back to the same canonical value; the tagged lens is the canonical
    /// JSON. Returns how many literals the sugar lens wrote differently.
    fn check(n: &Node, want: &Value, cat: &Catalog<'_>) -> usize {
        let canonical = canon::node_from_value(want).expect("decodes").to_json();
        let tagged = node_json(n, cat, Lens::Tagged).expect("tagged");
        assert_eq!(tagged, canonical, "{:?}", n.name());
        let sugar = node_json(n, cat, Lens::Sugar).expect("sugar");
        for j in [&tagged, &sugar] {
            let back = Node::from_json(j).unwrap_or_else(|e| panic!("{:?}: {e:?}", n.name()));
            assert_eq!(
                &canon::node_value(&back, cat).expect("encodes"),
                want,
                "{:?}: {}",
                n.name(),
                j.to_text(true)
            );
        }
        assert_eq!(value_json(want, cat, Lens::Sugar).expect("sugar"), sugar);
        crate::codec::diff::diff(&tagged, &sugar).len()
    }

    #[test]
    fn both_lenses_keep_every_fixture_node() {
        let mut sweetened = 0;
        for name in ["counter", "fetch-notify"] {
            let world = fixture(name);
            let cat = Catalog::new(world.nodes.iter().map(|n| &n.node));
            for n in &world.nodes {
                sweetened += check(&n.node, &n.value, &cat);
            }
            let m = Node::Manifest(world.manifest.clone());
            sweetened += check(&m, &world.manifest_value, &cat);
        }
        assert!(sweetened > 0, "no literal was written as sugar");
    }

    #[test]
    fn ambiguous_sugar_stays_tagged() {
        // A record whose only field is `text`: its sugar `{"text": "hi"}` would read as the
        // text constant, so it stays tagged.
        let schema = Node::from_json(
            &crate::codec::json::parse_json(
                r#"{"$kind":"defschema","name":"a/R@1","type":{"record":{"text":{"text":{}}}}}"#,
            )
            .expect("json"),
        )
        .expect("node");
        let cat = Catalog::new([&schema]);
        let ty = Type::Ref("a/R@1".parse().expect("name"));
        let e = Expr::from_json(
            &crate::codec::json::parse_json(r#"{"record":{"text":{"text":"hi"}}}"#).expect("json"),
        )
        .expect("expr");
        assert!(const_expr_value(&e, &ty, &cat).is_some());
        assert_eq!(sugar_slot(&e, &ty, &cat), None);
        let plain =
            Expr::from_json(&crate::codec::json::parse_json(r#"{"text":"hi"}"#).expect("json"))
                .expect("expr");
        assert_eq!(
            sugar_slot(&plain, &Type::Text, &cat),
            Some(Json::String("hi".into()))
        );
    }
}
