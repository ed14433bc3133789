//! Property tests: generated nodes of every kind, in canonical spelling, read back from their
//! authoring JSON and decode from their canonical value as themselves; spelled otherwise
//! (sets unsorted, derived lists left out, lists repeated), they encode the same.

use super::*;
use crate::air::canon::{node_from_value, node_value};
use crate::air::expr::{Const, Expr, ExprOrValue, Ref, arb_op};
use crate::air::types::Type;
use crate::codec::cbor::text_key_order;
use crate::codec::json::parse_json;
use crate::object::ObjectId;
use proptest::prelude::*;

fn name() -> impl Strategy<Value = Name> {
    prop::sample::select(vec![
        "a/A@1",
        "a/b@2",
        "com.acme/Feed_x@10",
        "sys/T@1",
        "z/Q@3",
    ])
    .prop_map(|s| Name::new(s).expect("a valid name"))
}

fn ident() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["x", "y_1", "Step-2", "a.b", "_z", "bb"]).prop_map(str::to_owned)
}

fn dotted() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["http.request", "timer.set", "blob.put", "x"]).prop_map(str::to_owned)
}

fn word() -> impl Strategy<Value = String> {
    "[a-z:_]{1,8}"
}

fn id() -> impl Strategy<Value = ObjectId> {
    any::<[u8; 32]>()
        .prop_filter("not the placeholder", |b| *b != [0; 32])
        .prop_map(ObjectId::from_bytes)
}

fn ty() -> impl Strategy<Value = Type> {
    prop::sample::select(vec![
        r#"{"text":{}}"#,
        r#"{"record":{"a":{"int":{}},"bb":{"option":{"nat":{}}}}}"#,
        r#"{"list":{"ref":"a/A@1"}}"#,
        r#"{"variant":{"Ok":{"unit":{}},"Err":{"text":{}}}}"#,
        r#"{"map":{"key":{"text":{}},"value":{"set":{"hash":{}}}}}"#,
    ])
    .prop_map(|s| Type::from_json(&parse_json(s).expect("JSON")).expect("a type"))
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| Expr::Const(Const::Int(i))),
        any::<u64>().prop_map(|n| Expr::Const(Const::Nat(n))),
        "[a-z ]{0,5}".prop_map(|t| Expr::Const(Const::Text(t))),
        any::<bool>().prop_map(|b| Expr::Const(Const::Bool(b))),
        Just(Expr::Const(Const::Null)),
        Just(Expr::Const(Const::Dec128("1.5".into()))),
        id().prop_map(|h| Expr::Const(Const::Hash(h))),
        prop::sample::select(vec!["@plan.input.a", "@var:x", "@step:s.out", "@event.k"])
            .prop_map(|r| Expr::Ref(Ref::parse(r).expect("a reference"))),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            arb_op(prop::collection::vec(inner.clone(), 1..3)),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::List),
            prop::collection::vec((ident(), inner.clone()), 0..3)
                .prop_map(|fs| Expr::Record(canonical_keys(fs))),
            (ident(), prop::option::of(inner)).prop_map(|(tag, v)| Expr::Variant {
                tag,
                value: v.map(Box::new)
            }),
        ]
    })
}

/// Sorted bytewise, deduplicated.
fn set<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v.dedup();
    v
}

/// In canonical map order, one entry per key.
fn canonical_keys<T>(mut v: Vec<(String, T)>) -> Vec<(String, T)> {
    v.sort_by(|a, b| text_key_order(&a.0, &b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

fn slot() -> impl Strategy<Value = ExprOrValue> {
    expr().prop_map(ExprOrValue::Expr)
}

fn step_op() -> impl Strategy<Value = StepOp> {
    prop_oneof![
        (name(), slot(), prop::option::of(expr())).prop_map(|(reducer, event, key)| {
            StepOp::RaiseEvent {
                reducer,
                event,
                key,
            }
        }),
        (dotted(), slot(), ident(), ident()).prop_map(|(kind, params, cap, b)| {
            StepOp::EmitEffect {
                kind,
                params,
                cap,
                bind_effect_id_as: b,
            }
        }),
        (expr(), ident()).prop_map(|(receipt_for, bind_as)| StepOp::AwaitReceipt {
            receipt_for,
            bind_as
        }),
        (name(), prop::option::of(expr()), ident()).prop_map(|(event, filter, bind_as)| {
            StepOp::AwaitEvent {
                event,
                filter,
                bind_as,
            }
        }),
        (slot(), ident()).prop_map(|(expr, bind_as)| StepOp::Assign { expr, bind_as }),
        prop::option::of(slot()).prop_map(|result| StepOp::End { result }),
    ]
}

fn plan() -> impl Strategy<Value = DefPlan> {
    (
        (name(), name(), prop::option::of(name())),
        prop::collection::vec((ident(), name()), 0..3),
        prop::collection::vec((ident(), step_op()), 1..5),
        prop::collection::vec((ident(), ident(), prop::option::of(expr())), 0..3),
        prop::collection::vec(expr(), 0..2),
    )
        .prop_map(
            |((name, input, output), locals, steps, edges, invariants)| {
                let mut p = DefPlan {
                    name,
                    input,
                    output,
                    locals: canonical_keys(locals),
                    steps: steps.into_iter().map(|(id, op)| Step { id, op }).collect(),
                    edges: edges
                        .into_iter()
                        .map(|(from, to, when)| Edge { from, to, when })
                        .collect(),
                    required_caps: None,
                    allowed_effects: None,
                    invariants,
                };
                let (caps, kinds) = derived_caps_and_effects(&p);
                let owned = |xs: Vec<&str>| xs.into_iter().map(str::to_owned).collect();
                (p.required_caps, p.allowed_effects) = (Some(owned(caps)), Some(owned(kinds)));
                p
            },
        )
}

fn module() -> impl Strategy<Value = DefModule> {
    let reducer = (
        (name(), name(), prop::option::of(name())),
        prop::collection::vec(dotted(), 0..3),
        prop::collection::vec((ident(), dotted()), 0..3),
    )
        .prop_map(|((state, event, annotations), effects, slots)| {
            ModuleAbi::Reducer(ReducerAbi {
                state,
                event,
                annotations,
                effects_emitted: set(effects),
                cap_slots: canonical_keys(slots),
            })
        });
    let pure =
        (name(), name()).prop_map(|(input, output)| ModuleAbi::Pure(PureAbi { input, output }));
    (
        name(),
        prop::option::of(id()),
        prop::option::of(name()),
        prop_oneof![reducer, pure],
    )
        .prop_map(|(name, wasm_hash, key_schema, abi)| DefModule {
            name,
            wasm_hash,
            key_schema,
            abi,
        })
}

fn policy() -> impl Strategy<Value = DefPolicy> {
    let rule = (
        prop::option::of(dotted()),
        prop::option::of(ident()),
        prop::option::of(prop::sample::select(OriginKind::ALL.to_vec())),
        prop::option::of(name()),
        prop::sample::select(Decision::ALL.to_vec()),
    )
        .prop_map(
            |(effect_kind, cap_name, origin_kind, origin_name, decision)| PolicyRule {
                when: PolicyMatch {
                    effect_kind,
                    cap_name,
                    origin_kind,
                    origin_name,
                },
                decision,
            },
        );
    (name(), prop::collection::vec(rule, 0..4)).prop_map(|(name, rules)| DefPolicy { name, rules })
}

fn secret() -> impl Strategy<Value = DefSecret> {
    (
        name(),
        word(),
        prop::option::of(id()),
        prop::option::of(prop::collection::vec(ident(), 0..3)),
        prop::option::of(prop::collection::vec(name(), 0..3)),
    )
        .prop_map(|(name, binding_id, expected_digest, caps, plans)| {
            let mut plans = plans;
            if let Some(p) = &mut plans {
                p.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                p.dedup();
            }
            DefSecret {
                name,
                binding_id,
                expected_digest,
                allowed_caps: caps.map(set),
                allowed_plans: plans,
            }
        })
}

/// The capability every generated grant instantiates: its params are text.
const CAP: &str = r#"{"$kind":"defcap","name":"a/cap@1","cap_type":"x","schema":{"text":{}}}"#;

fn grant() -> impl Strategy<Value = CapGrant> {
    let budget = (
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        any::<u64>(),
    )
        .prop_map(|(tokens, bytes, cents)| Budget {
            tokens,
            bytes,
            cents: Some(cents),
        });
    (
        ident(),
        "[a-z]{0,4}",
        prop::option::of(any::<u64>()),
        prop::option::of(budget),
    )
        .prop_map(|(name, text, expiry_ns, budget)| CapGrant {
            name,
            cap: Name::new("a/cap@1").expect("a name"),
            params: Json::Object(vec![("text".into(), Json::String(text))]),
            expiry_ns,
            budget,
        })
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let refs = || {
        prop::collection::vec((name(), id()), 0..3).prop_map(|v| {
            let mut v: Vec<NamedRef> = v
                .into_iter()
                .map(|(name, h)| NamedRef {
                    name,
                    hash: Some(h),
                })
                .collect();
            v.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
            v.dedup_by(|a, b| a.name == b.name);
            v
        })
    };
    let routing = (
        prop::collection::vec((name(), name(), prop::option::of(word())), 0..3),
        prop::collection::vec((word(), name()), 0..3),
    )
        .prop_map(|(events, inboxes)| Routing {
            events: events
                .into_iter()
                .map(|(event, reducer, key_field)| RouteEvent {
                    event,
                    reducer,
                    key_field,
                })
                .collect(),
            inboxes: inboxes
                .into_iter()
                .map(|(source, reducer)| Inbox { source, reducer })
                .collect(),
        });
    let triggers = prop::collection::vec((name(), name(), prop::option::of(word())), 0..3);
    let defaults = (
        prop::option::of(name()),
        prop::collection::vec(grant(), 0..3),
    )
        .prop_map(|(policy, grants)| {
            let mut cap_grants = grants;
            cap_grants.sort_by(|a, b| a.name.cmp(&b.name));
            cap_grants.dedup_by(|a, b| a.name == b.name);
            Defaults { policy, cap_grants }
        });
    let bindings = prop::collection::vec(
        (name(), prop::collection::vec((ident(), ident()), 0..3)),
        0..3,
    )
    .prop_map(|v| {
        let keyed = v
            .into_iter()
            .map(|(m, slots)| (m.as_str().to_owned(), (m, canonical_keys(slots))))
            .collect();
        canonical_keys(keyed)
            .into_iter()
            .map(|(_, (module, slots))| ModuleBinding { module, slots })
            .collect()
    });
    (
        (refs(), refs(), refs(), refs(), refs(), refs(), refs()),
        routing,
        triggers,
        defaults,
        bindings,
    )
        .prop_map(
            |(
                (schemas, modules, plans, effects, caps, policies, secrets),
                routing,
                triggers,
                defaults,
                module_bindings,
            )| Manifest {
                schemas,
                modules,
                plans,
                effects,
                caps,
                policies,
                secrets,
                routing,
                triggers: triggers
                    .into_iter()
                    .map(|(event, plan, correlate_by)| Trigger {
                        event,
                        plan,
                        correlate_by,
                    })
                    .collect(),
                defaults,
                module_bindings,
            },
        )
}

/// A node of any kind, in canonical spelling.
fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        (name(), ty()).prop_map(|(name, ty)| Node::DefSchema(DefSchema { name, ty })),
        module().prop_map(Node::DefModule),
        plan().prop_map(Node::DefPlan),
        (name(), dotted(), ty()).prop_map(|(name, cap_type, schema)| Node::DefCap(DefCap {
            name,
            cap_type,
            schema
        })),
        policy().prop_map(Node::DefPolicy),
        (
            (name(), dotted(), name(), name()),
            dotted(),
            prop::sample::select(OriginScope::ALL.to_vec()),
            prop::option::of("[ -~]{0,12}"),
        )
            .prop_map(
                |((name, kind, params_schema, receipt_schema), cap_type, origin_scope, d)| {
                    Node::DefEffect(DefEffect {
                        name,
                        kind,
                        params_schema,
                        receipt_schema,
                        cap_type,
                        origin_scope,
                        description: d,
                    })
                }
            ),
        secret().prop_map(Node::DefSecret),
        manifest().prop_map(Node::Manifest),
    ]
}

/// The same node spelled otherwise: sets and manifest lists reversed and repeated, derived
/// lists left out, empty optional lists given.
fn respelled(n: &Node) -> Node {
    let mut n = n.clone();
    let twice = |v: &mut Vec<String>| {
        v.reverse();
        v.extend(v.clone());
    };
    match &mut n {
        Node::DefModule(m) => {
            if let ModuleAbi::Reducer(r) = &mut m.abi {
                twice(&mut r.effects_emitted);
                r.cap_slots.reverse();
            }
        }
        Node::DefPlan(p) => {
            p.required_caps = None;
            p.allowed_effects = None;
            p.locals.reverse();
        }
        Node::DefSecret(s) => {
            if let Some(c) = &mut s.allowed_caps {
                twice(c);
            }
            if let Some(p) = &mut s.allowed_plans {
                p.reverse();
                p.extend(p.clone());
            }
        }
        Node::Manifest(m) => {
            for kind in NodeKind::ALL {
                if let Some(refs) = m.refs_mut(kind) {
                    refs.reverse();
                    refs.extend(refs.clone());
                }
            }
            m.defaults.cap_grants.reverse();
            m.module_bindings.reverse();
            for b in &mut m.module_bindings {
                b.slots.reverse();
            }
        }
        _ => {}
    }
    n
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_nodes_survive_both_round_trips(n in node()) {
        let cap = Node::from_json(&parse_json(CAP).expect("JSON")).expect("a defcap");
        let cat = Catalog::new([&cap]);
        // read(write(node)) == node
        prop_assert_eq!(Node::from_json(&n.to_json()), Ok(n.clone()));
        // decode(encode(node)) == node
        let v = node_value(&n, &cat).expect("a canonical node encodes");
        prop_assert_eq!(node_from_value(&v), Ok(n.clone()));
        // Spelling does not matter to the canonical value.
        let other = respelled(&n);
        prop_assert_eq!(Node::from_json(&other.to_json()), Ok(other.clone()));
        prop_assert_eq!(node_value(&other, &cat), Ok(v));
    }
}
