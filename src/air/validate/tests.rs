use std::collections::HashSet;

use super::*;
use crate::air::diag::joined;
use crate::air::load::load_path;
use crate::air::nodes::{DefPlan, ModuleAbi, StepOp};
use crate::air::testworld;

fn fixture(name: &str) -> Result<Validated, Vec<Diagnostic>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/air")
        .join(name);
    let nodes = load_path(&dir).into_result().expect("fixture loads");
    validate(nodes)
}

fn show(ds: &[Diagnostic]) -> String {
    joined(ds, "\n")
}

#[test]
fn fixtures_validate() {
    for f in ["counter", "fetch-notify"] {
        if let Err(ds) = fixture(f) {
            panic!("{f}:\n{}", show(&ds));
        }
    }
}

#[test]
fn test_world_validates() {
    let files = testworld::files();
    let nodes = testworld::load(&files);
    if let Err(ds) = validate_with(nodes, &testworld::source(&files)) {
        panic!("{}", show(&ds));
    }
}

#[test]
fn rebuilding_gives_what_validation_gives_and_skips_the_rules() {
    let files = testworld::files();
    let full = validate_with(testworld::load(&files), &testworld::source(&files)).unwrap();
    let rebuilt = rebuild(testworld::load(&files), HashMap::new()).unwrap();
    assert_eq!(rebuilt, full);
    // A stored control plane: the manifest lists every node by id, and the values stored
    // under those ids are taken as they are, not encoded again.
    let mut stored = testworld::load(&files);
    for (n, _) in &mut stored {
        if let Node::Manifest(m) = n {
            *m = full.manifest.clone();
        }
    }
    let known = |nodes: &[ValidNode]| -> HashMap<_, _> {
        nodes.iter().map(|n| (n.id, n.value.clone())).collect()
    };
    assert_eq!(rebuild(stored.clone(), known(&full.nodes)).unwrap(), full);
    let mut marked = known(&full.nodes);
    let first = full.nodes[0].id;
    marked.insert(first, crate::codec::cbor::Value::Null);
    let v = rebuild(stored, marked).unwrap();
    assert_eq!(
        v.nodes[0].value,
        crate::codec::cbor::Value::Null,
        "not encoded again"
    );
    // The rules across nodes are not checked again (here: `defaults.policy` names a policy the
    // manifest does not list); the ids still are, so a caller comparing manifest ids sees the
    // control plane is not the one it recorded.
    let mut nodes = testworld::load(&files);
    for (n, _) in &mut nodes {
        if let Node::Manifest(m) = n {
            m.defaults.policy = Some(Name::new("shop/nope@1").unwrap());
        }
    }
    assert!(validate(nodes.clone()).is_err());
    let v = rebuild(nodes, HashMap::new()).unwrap();
    assert_ne!(v.manifest_id, full.manifest_id);
}

// ---------------------------------------------------------------------------------------------
// One test per rule

fn base() -> Vec<(String, String)> {
    testworld::files()
}

fn edit(files: &[(String, String)], file: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let mut out = files.to_vec();
    let f = out
        .iter_mut()
        .find(|(p, _)| p.ends_with(file))
        .unwrap_or_else(|| panic!("no file {file}"));
    assert!(f.1.contains(from), "{from:?} not in {file}");
    f.1 = f.1.replacen(from, to, 1);
    out
}

fn with_file(files: &[(String, String)], path: &str, text: &str) -> Vec<(String, String)> {
    let mut out = files.to_vec();
    out.push((path.to_owned(), text.to_owned()));
    out
}

fn diags(files: &[(String, String)]) -> Vec<Diagnostic> {
    match validate_with(testworld::load(files), &testworld::source(files)) {
        Ok(_) => Vec::new(),
        Err(ds) => ds,
    }
}

fn mutated(f: impl FnOnce(&mut Vec<(Node, Origin)>)) -> Vec<Diagnostic> {
    let files = base();
    let mut nodes = testworld::load(&files);
    f(&mut nodes);
    match validate_with(nodes, &testworld::source(&files)) {
        Ok(_) => Vec::new(),
        Err(ds) => ds,
    }
}

/// Asserts that `ds` has a diagnostic of `rule` at `file` and `pointer` in `node`, and
/// returns it.
fn has<'d>(
    ds: &'d [Diagnostic],
    rule: Check,
    file: &str,
    pointer: &str,
    node: &str,
) -> &'d Diagnostic {
    let d = ds
        .iter()
        .find(|d| d.rule == rule && d.pointer == pointer)
        .unwrap_or_else(|| panic!("no [{rule}] at {pointer}; got:\n{}", show(ds)));
    assert!(
        d.file.ends_with(file),
        "{} is not in {file}",
        d.file.display()
    );
    assert_eq!(d.node.as_deref(), Some(node), "{d}");
    d
}

/// [`has`], and nothing else was reported.
fn only<'d>(
    ds: &'d [Diagnostic],
    rule: Check,
    file: &str,
    pointer: &str,
    node: &str,
) -> &'d Diagnostic {
    let d = has(ds, rule, file, pointer, node);
    assert_eq!(ds.len(), 1, "more than one diagnostic:\n{}", show(ds));
    d
}

const PLAN: &str = "defplan shop/charge@1";
const PLAN_FILE: &str = "plans/charge.air.json";
const MANIFEST: &str = "manifest";
const MANIFEST_FILE: &str = "manifest.air.json";

/// One edit of the test world: in the file whose path ends with the first, the first
/// occurrence of the second becomes the third.
type Edit<'a> = (&'a str, &'a str, &'a str);

/// The diagnostic a case must bring: `rule` at the file ending with `file`, at `pointer`, in
/// `node`; [`only`] when nothing else may be reported, [`has`] when others may be.
#[derive(Clone, Copy)]
enum Want<'a> {
    Only(Check, &'a str, &'a str, &'a str),
    Has(Check, &'a str, &'a str, &'a str),
}
use Want::{Has, Only};

/// A world made from the test world by adding files and editing text, and what validating it
/// must report.
struct Case<'a> {
    /// The test the case came from, printed before it runs.
    test: &'a str,
    /// Files added (path and text) before the edits.
    adds: &'a [(&'a str, &'a str)],
    /// Edits made in order.
    edits: &'a [Edit<'a>],
    /// The diagnostic; `None` when the world must validate.
    want: Option<Want<'a>>,
    /// Words the diagnostic's message must contain.
    says: &'a [&'a str],
}

/// The fields most cases leave alone.
const CASE: Case<'static> = Case {
    test: "",
    adds: &[],
    edits: &[],
    want: None,
    says: &[],
};

impl Case<'_> {
    /// The files of the case's world.
    fn files(&self) -> Vec<(String, String)> {
        let mut files = base();
        for (path, text) in self.adds {
            files = with_file(&files, path, text);
        }
        for (file, from, to) in self.edits {
            files = edit(&files, file, from, to);
        }
        files
    }

    /// Validates the case's world and checks what it reports.
    fn check(&self) {
        println!("case {}", self.test);
        let ds = diags(&self.files());
        let Some(want) = self.want else {
            assert_eq!(ds, [], "{}", self.test);
            return;
        };
        let d = match want {
            Only(rule, file, pointer, node) => only(&ds, rule, file, pointer, node),
            Has(rule, file, pointer, node) => has(&ds, rule, file, pointer, node),
        };
        for s in self.says {
            assert!(d.message.contains(s), "{}: {d}", self.test);
        }
    }
}

const ZZ: &str = "air/zz.air.json";
const ZZ_FILE: &str = "zz.air.json";
const POLICY_FILE: &str = "policy.air.json";
const SCHEMAS_FILE: &str = "schemas.air.json";
const MODULES_FILE: &str = "modules.air.json";
const POLICY: &str = "defpolicy shop/policy@1";
const SECRET: &str = "defsecret shop/api@1";
const ORDERS: &str = "defmodule shop/Orders@1";

/// One case or more for every rule that an edit of the authoring files can break.
const CASES: &[Case] = &[
    Case {
        test: "duplicate_name",
        adds: &[(
            ZZ,
            r#"{ "$kind": "defschema", "name": "shop/Confirm@1", "type": { "text": {} } }"#,
        )],
        want: Some(Only(
            Check::DuplicateName,
            ZZ_FILE,
            "/name",
            "defschema shop/Confirm@1",
        )),
        ..CASE
    },
    Case {
        test: "duplicate_name",
        edits: &[(
            MANIFEST_FILE,
            r#"{ "name": "shop/Note@1" },"#,
            r#"{ "name": "shop/Note@1" }, { "name": "shop/Note@1" },"#,
        )],
        want: Some(Only(
            Check::DuplicateName,
            MANIFEST_FILE,
            "/schemas/9/name",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "manifest_count",
        adds: &[(ZZ, r#"{ "$kind": "manifest", "air_version": "1" }"#)],
        want: Some(Only(Check::ManifestCount, ZZ_FILE, "", MANIFEST)),
        ..CASE
    },
    Case {
        test: "reserved_name",
        adds: &[(
            ZZ,
            r#"{ "$kind": "defschema", "name": "sys/Mine@1", "type": { "text": {} } }"#,
        )],
        edits: &[(
            MANIFEST_FILE,
            r#"{ "name": "shop/Note@1" },"#,
            r#"{ "name": "shop/Note@1" }, { "name": "sys/Mine@1" },"#,
        )],
        want: Some(Only(
            Check::ReservedName,
            ZZ_FILE,
            "/name",
            "defschema sys/Mine@1",
        )),
        ..CASE
    },
    Case {
        test: "unlisted_node",
        adds: &[(
            ZZ,
            r#"[{ "$kind": "defschema", "name": "shop/Extra@1", "type": { "text": {} } }]"#,
        )],
        want: Some(Only(
            Check::UnlistedNode,
            ZZ_FILE,
            "/0/name",
            "defschema shop/Extra@1",
        )),
        ..CASE
    },
    Case {
        test: "unknown_node",
        edits: &[(
            MANIFEST_FILE,
            r#"{ "name": "shop/Note@1" },"#,
            r#"{ "name": "shop/charge@1" },"#,
        )],
        want: Some(Has(
            Check::UnknownNode,
            MANIFEST_FILE,
            "/schemas/8/name",
            MANIFEST,
        )),
        says: &["there is a defplan of that name"],
        ..CASE
    },
    Case {
        test: "unknown_schema",
        edits: &[(
            SCHEMAS_FILE,
            r#""tags": { "set": { "text": {} } }"#,
            r#""tags": { "set": { "ref": "shop/Tag@1" } }"#,
        )],
        want: Some(Has(
            Check::UnknownSchema,
            SCHEMAS_FILE,
            "/8/type/record/tags/set/ref",
            "defschema shop/Note@1",
        )),
        ..CASE
    },
    // A built-in that refers to a schema the manifest does not list: reported at the entry
    // listing the built-in.
    Case {
        test: "unknown_schema",
        edits: &[(MANIFEST_FILE, r#"{ "name": "sys/TimerSetParams@1" },"#, "")],
        want: Some(Has(
            Check::UnknownSchema,
            MANIFEST_FILE,
            "/schemas/9",
            "built-in defschema sys/TimerFired@1",
        )),
        says: &[
            "it is defined, but the manifest does not list it",
            "/type/record/requested/ref",
        ],
        ..CASE
    },
    Case {
        test: "recursive_type",
        edits: &[(
            SCHEMAS_FILE,
            r#""status": { "text": {} }"#,
            r#""status": { "text": {} }, "prev": { "option": { "ref": "shop/OrderState@1" } }"#,
        )],
        want: Some(Only(
            Check::RecursiveType,
            SCHEMAS_FILE,
            "/4/type",
            "defschema shop/OrderState@1",
        )),
        says: &["shop/OrderState@1 → shop/OrderState@1"],
        ..CASE
    },
    // A recursive schema used by a plan: reported once, where it is declared; its users are
    // not checked against it (and checking does not follow it forever).
    Case {
        test: "recursive_types_are_reported_once_and_not_followed",
        edits: &[
            (
                SCHEMAS_FILE,
                r#""due": { "option": { "time": {} } }"#,
                r#""due": { "option": { "ref": "shop/Note@1" } }, "up": { "option": { "ref": "shop/Note@1" } }"#,
            ),
            (
                PLAN_FILE,
                r#""expr": { "text": "charged", "tags": ["b", "a"] }"#,
                r#""expr": { "record": { "text": { "text": "x" }, "tags": { "set": [] }, "due": { "ref": "@var:note" } } }"#,
            ),
        ],
        want: Some(Only(
            Check::RecursiveType,
            SCHEMAS_FILE,
            "/8/type",
            "defschema shop/Note@1",
        )),
        ..CASE
    },
    Case {
        test: "unknown_module",
        edits: &[(
            PLAN_FILE,
            r#""reducer": "shop/Orders@1""#,
            r#""reducer": "shop/Nope@1""#,
        )],
        want: Some(Only(
            Check::UnknownModule,
            PLAN_FILE,
            "/steps/4/reducer",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "not_a_reducer",
        edits: &[(
            PLAN_FILE,
            r#""reducer": "shop/Orders@1""#,
            r#""reducer": "shop/Pricing@1""#,
        )],
        want: Some(Only(
            Check::NotAReducer,
            PLAN_FILE,
            "/steps/4/reducer",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "unknown_plan",
        edits: &[(
            MANIFEST_FILE,
            r#""plan": "shop/charge@1""#,
            r#""plan": "shop/nope@1""#,
        )],
        want: Some(Has(
            Check::UnknownPlan,
            MANIFEST_FILE,
            "/triggers/0/plan",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "unknown_plan",
        edits: &[(
            POLICY_FILE,
            r#""allowed_plans": ["shop/charge@1"]"#,
            r#""allowed_plans": ["shop/nope@1"]"#,
        )],
        want: Some(Only(
            Check::UnknownPlan,
            POLICY_FILE,
            "/1/allowed_plans/0",
            SECRET,
        )),
        ..CASE
    },
    Case {
        test: "unknown_effect",
        edits: &[(
            POLICY_FILE,
            r#""effect_kind": "timer.set""#,
            r#""effect_kind": "blob.put""#,
        )],
        want: Some(Only(
            Check::UnknownEffect,
            POLICY_FILE,
            "/0/rules/1/when/effect_kind",
            POLICY,
        )),
        ..CASE
    },
    Case {
        test: "unknown_cap",
        edits: &[(
            MANIFEST_FILE,
            r#""cap": "sys/timer@1""#,
            r#""cap": "sys/blob@1""#,
        )],
        want: Some(Only(
            Check::UnknownCap,
            MANIFEST_FILE,
            "/defaults/cap_grants/1/cap",
            MANIFEST,
        )),
        says: &["does not list it"],
        ..CASE
    },
    Case {
        test: "unknown_grant",
        edits: &[(
            POLICY_FILE,
            r#""allowed_caps": ["http"]"#,
            r#""allowed_caps": ["nope"]"#,
        )],
        want: Some(Only(
            Check::UnknownGrant,
            POLICY_FILE,
            "/1/allowed_caps/0",
            SECRET,
        )),
        ..CASE
    },
    Case {
        test: "unknown_grant",
        edits: &[(
            POLICY_FILE,
            r#""cap_name": "http""#,
            r#""cap_name": "nope""#,
        )],
        want: Some(Only(
            Check::UnknownGrant,
            POLICY_FILE,
            "/0/rules/0/when/cap_name",
            POLICY,
        )),
        ..CASE
    },
    Case {
        test: "unknown_policy",
        edits: &[(
            MANIFEST_FILE,
            r#""policy": "shop/policy@1""#,
            r#""policy": "shop/nope@1""#,
        )],
        want: Some(Only(
            Check::UnknownPolicy,
            MANIFEST_FILE,
            "/defaults/policy",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "unknown_origin",
        edits: &[(
            POLICY_FILE,
            r#""origin_name": "shop/Orders@1""#,
            r#""origin_name": "shop/charge@1""#,
        )],
        want: Some(Only(
            Check::UnknownOrigin,
            POLICY_FILE,
            "/0/rules/1/when/origin_name",
            POLICY,
        )),
        ..CASE
    },
    Case {
        test: "duplicate_effect_kind",
        adds: &[(
            ZZ,
            r#"{ "$kind": "defeffect", "name": "shop/timer@1", "kind": "timer.set",
        "params_schema": "sys/TimerSetParams@1", "receipt_schema": "sys/TimerSetReceipt@1",
        "cap_type": "timer", "origin_scope": "reducer" }"#,
        )],
        edits: &[(
            MANIFEST_FILE,
            r#"{ "name": "sys/timer.set@1" }"#,
            r#"{ "name": "sys/timer.set@1" }, { "name": "shop/timer@1" }"#,
        )],
        want: Some(Only(
            Check::DuplicateEffectKind,
            ZZ_FILE,
            "/kind",
            "defeffect shop/timer@1",
        )),
        ..CASE
    },
    Case {
        test: "origin_scope",
        edits: &[(
            MODULES_FILE,
            r#""effects_emitted": ["timer.set"]"#,
            r#""effects_emitted": ["timer.set", "http.request"]"#,
        )],
        want: Some(Only(
            Check::OriginScope,
            MODULES_FILE,
            "/0/abi/reducer/effects_emitted/1",
            ORDERS,
        )),
        ..CASE
    },
    Case {
        test: "origin_scope",
        edits: &[(
            PLAN_FILE,
            r#""kind": "http.request""#,
            r#""kind": "timer.set""#,
        )],
        want: Some(Has(Check::OriginScope, PLAN_FILE, "/steps/0/kind", PLAN)),
        ..CASE
    },
    Case {
        test: "receipt_event",
        edits: &[(
            SCHEMAS_FILE,
            r#",
                           "Timer": { "ref": "sys/TimerFired@1" }"#,
            "",
        )],
        want: Some(Only(
            Check::ReceiptEvent,
            MODULES_FILE,
            "/0/abi/reducer/effects_emitted/0",
            ORDERS,
        )),
        ..CASE
    },
    Case {
        test: "cap_type_mismatch",
        edits: &[(
            MANIFEST_FILE,
            r#""timer": "timer_grant""#,
            r#""timer": "http""#,
        )],
        want: Some(Only(
            Check::CapTypeMismatch,
            MANIFEST_FILE,
            "/module_bindings/shop~1Orders@1/slots/timer",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "cap_type_mismatch",
        edits: &[
            (PLAN_FILE, r#""cap": "http""#, r#""cap": "timer_grant""#),
            (
                PLAN_FILE,
                r#""required_caps": ["http"]"#,
                r#""required_caps": ["timer_grant"]"#,
            ),
        ],
        want: Some(Only(
            Check::CapTypeMismatch,
            PLAN_FILE,
            "/steps/0/cap",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "duplicate_grant",
        edits: &[(
            MANIFEST_FILE,
            r#"{ "name": "timer_grant","#,
            r#"{ "name": "http","#,
        )],
        want: Some(Has(
            Check::DuplicateGrant,
            MANIFEST_FILE,
            "/defaults/cap_grants/1/name",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "unknown_slot",
        edits: &[(
            MANIFEST_FILE,
            r#""timer": "timer_grant""#,
            r#""clock": "timer_grant""#,
        )],
        want: Some(Only(
            Check::UnknownSlot,
            MANIFEST_FILE,
            "/module_bindings/shop~1Orders@1/slots/clock",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "literal_type",
        edits: &[(MANIFEST_FILE, r#""verbs": ["POST"]"#, r#""verbs": "POST""#)],
        want: Some(Only(
            Check::LiteralType,
            MANIFEST_FILE,
            "/defaults/cap_grants/0/params/verbs",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "literal_type",
        edits: &[(PLAN_FILE, r#""ok": false }"#, r#""ok": "no" }"#)],
        want: Some(Only(
            Check::LiteralType,
            PLAN_FILE,
            "/steps/7/result/ok",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "duplicate_step",
        edits: &[(
            PLAN_FILE,
            r#"{ "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }"#,
            r#"{ "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }, { "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }"#,
        )],
        want: Some(Only(Check::DuplicateStep, PLAN_FILE, "/steps/8/id", PLAN)),
        ..CASE
    },
    Case {
        test: "unknown_step",
        edits: &[(
            PLAN_FILE,
            r#"{ "from": "emit", "to": "wait" }"#,
            r#"{ "from": "emit", "to": "wait" }, { "from": "done", "to": "nowhere" }"#,
        )],
        want: Some(Only(Check::UnknownStep, PLAN_FILE, "/edges/1/to", PLAN)),
        ..CASE
    },
    Case {
        test: "duplicate_edge",
        edits: &[(
            PLAN_FILE,
            r#"{ "from": "emit", "to": "wait" }"#,
            r#"{ "from": "emit", "to": "wait" }, { "from": "emit", "to": "wait" }"#,
        )],
        want: Some(Only(Check::DuplicateEdge, PLAN_FILE, "/edges/1", PLAN)),
        ..CASE
    },
    Case {
        test: "cycle",
        edits: &[(
            PLAN_FILE,
            r#"{ "from": "emit", "to": "wait" }"#,
            r#"{ "from": "emit", "to": "wait" }, { "from": "tell", "to": "wait" }"#,
        )],
        want: Some(Only(Check::Cycle, PLAN_FILE, "/edges/2", PLAN)),
        says: &["wait → ok → jot → tell → wait"],
        ..CASE
    },
    Case {
        test: "unresolved_ref",
        edits: &[(
            PLAN_FILE,
            r#"{ "ref": "@plan.input" }, { "text": "order_id" }"#,
            r#"{ "ref": "@var:ghost" }, { "text": "order_id" }"#,
        )],
        want: Some(Only(
            Check::UnresolvedRef,
            PLAN_FILE,
            "/invariants/0/args/0",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "unresolved_ref",
        edits: &[(
            PLAN_FILE,
            r#""key": { "ref": "@plan.input.order_id" }"#,
            r#""key": { "ref": "@step:ghost" }"#,
        )],
        want: Some(Only(Check::UnresolvedRef, PLAN_FILE, "/steps/4/key", PLAN)),
        ..CASE
    },
    // correlation_id exists only when a trigger correlates.
    Case {
        test: "unresolved_ref",
        edits: &[(MANIFEST_FILE, r#", "correlate_by": "order_id""#, "")],
        want: Some(Only(
            Check::UnresolvedRef,
            PLAN_FILE,
            "/steps/5/where/args/1",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "not_ancestor",
        edits: &[(
            PLAN_FILE,
            r#""when": { "op": "not", "args": [ { "ref": "@var:ok_flag" } ] }"#,
            r#""when": { "op": "not", "args": [ { "ref": "@var:confirmation.order_id" } ] }"#,
        )],
        want: Some(Has(
            Check::NotAncestor,
            PLAN_FILE,
            "/edges/6/when/args/0",
            PLAN,
        )),
        says: &["`confirm`"],
        ..CASE
    },
    Case {
        test: "event_ref",
        edits: &[(
            PLAN_FILE,
            r#"{ "ref": "@plan.input" }, { "text": "order_id" }"#,
            r#"{ "ref": "@event" }, { "text": "order_id" }"#,
        )],
        want: Some(Only(
            Check::EventRef,
            PLAN_FILE,
            "/invariants/0/args/0",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "bad_path",
        edits: &[(
            PLAN_FILE,
            r#""key": { "ref": "@plan.input.order_id" }"#,
            r#""key": { "ref": "@plan.input.nope" }"#,
        )],
        want: Some(Only(Check::BadPath, PLAN_FILE, "/steps/4/key", PLAN)),
        ..CASE
    },
    Case {
        test: "bad_path",
        edits: &[(
            PLAN_FILE,
            r#""key": { "ref": "@plan.input.order_id" }"#,
            r#""key": { "ref": "@plan.input.order_id.x" }"#,
        )],
        want: Some(Only(Check::BadPath, PLAN_FILE, "/steps/4/key", PLAN)),
        ..CASE
    },
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#"{ "ref": "@var:rcpt.status" }, { "int": 400 }"#,
            r#"{ "ref": "@var:rcpt.status" }, { "text": "400" }"#,
        )],
        want: Some(Only(Check::TypeMismatch, PLAN_FILE, "/steps/2/expr", PLAN)),
        ..CASE
    },
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#""value": { "record": { "order_id": { "ref": "@plan.input.order_id" } } }"#,
            r#""value": { "record": { "order_id": { "int": 7 } } }"#,
        )],
        want: Some(Only(
            Check::TypeMismatch,
            PLAN_FILE,
            "/steps/4/event/variant/value/record/order_id",
            PLAN,
        )),
        ..CASE
    },
    // Option none is null; AgentOS's `None` / `Some` variants are read too, other tags not.
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#""body_ref": { "null": {} }"#,
            r#""body_ref": { "variant": { "tag": "Nothing" } }"#,
        )],
        want: Some(Only(
            Check::TypeMismatch,
            PLAN_FILE,
            "/steps/0/params/record/body_ref",
            PLAN,
        )),
        says: &["any other tag is not"],
        ..CASE
    },
    // Guards are booleans.
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#""when": { "ref": "@var:ok_flag" }"#,
            r#""when": { "ref": "@var:rcpt.status" }"#,
        )],
        want: Some(Only(Check::TypeMismatch, PLAN_FILE, "/edges/3/when", PLAN)),
        ..CASE
    },
    // A missing record field, an unknown tag.
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#""ok": { "ref": "@var:ok_flag" }"#,
            r#""okk": { "ref": "@var:ok_flag" }"#,
        )],
        want: Some(Has(Check::TypeMismatch, PLAN_FILE, "/steps/6/result", PLAN)),
        ..CASE
    },
    Case {
        test: "type_mismatch",
        edits: &[(
            PLAN_FILE,
            r#""ok": { "ref": "@var:ok_flag" }"#,
            r#""okk": { "ref": "@var:ok_flag" }"#,
        )],
        want: Some(Has(
            Check::TypeMismatch,
            PLAN_FILE,
            "/steps/6/result/record/okk",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "type_mismatch",
        edits: &[(PLAN_FILE, r#""tag": "Paid""#, r#""tag": "Refunded""#)],
        want: Some(Only(
            Check::TypeMismatch,
            PLAN_FILE,
            "/steps/4/event/variant/tag",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "untyped_literal",
        edits: &[(
            PLAN_FILE,
            r#""bind": { "as": "note" }"#,
            r#""bind": { "as": "note2" }"#,
        )],
        want: Some(Only(
            Check::UntypedLiteral,
            PLAN_FILE,
            "/steps/3/expr",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "required_caps",
        edits: &[(
            PLAN_FILE,
            r#""required_caps": ["http"]"#,
            r#""required_caps": ["http", "timer_grant"]"#,
        )],
        want: Some(Only(Check::RequiredCaps, PLAN_FILE, "/required_caps", PLAN)),
        ..CASE
    },
    Case {
        test: "allowed_effects",
        edits: &[(
            PLAN_FILE,
            r#""allowed_effects": ["http.request"]"#,
            r#""allowed_effects": []"#,
        )],
        want: Some(Only(
            Check::AllowedEffects,
            PLAN_FILE,
            "/allowed_effects",
            PLAN,
        )),
        ..CASE
    },
    // Duplicates and order do not matter.
    Case {
        test: "required_caps",
        edits: &[(
            PLAN_FILE,
            r#""required_caps": ["http"]"#,
            r#""required_caps": ["http", "http"]"#,
        )],
        ..CASE
    },
    Case {
        test: "duplicate_handle",
        edits: &[(
            PLAN_FILE,
            r#""steps": ["#,
            r#""steps": [ { "id": "emit2", "op": "emit_effect", "kind": "http.request",
      "params": { "method": "GET", "url": "https://x", "headers": {} },
      "cap": "http", "bind": { "effect_id_as": "req" } },"#,
        )],
        want: Some(Has(
            Check::DuplicateHandle,
            PLAN_FILE,
            "/steps/1/bind/effect_id_as",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "await_receipt_for",
        edits: &[(
            PLAN_FILE,
            r#""for": { "ref": "@var:req" }"#,
            r#""for": { "ref": "@var:req.x" }"#,
        )],
        want: Some(Only(
            Check::AwaitReceiptFor,
            PLAN_FILE,
            "/steps/1/for",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "await_receipt_for",
        edits: &[(
            PLAN_FILE,
            r#""for": { "ref": "@var:req" }"#,
            r#""for": { "ref": "@var:ok_flag" }"#,
        )],
        want: Some(Has(Check::AwaitReceiptFor, PLAN_FILE, "/steps/1/for", PLAN)),
        ..CASE
    },
    // A handle bound by a step that is not an ancestor.
    Case {
        test: "await_receipt_for",
        edits: &[(PLAN_FILE, r#"{ "from": "emit", "to": "wait" },"#, "")],
        want: Some(Has(Check::AwaitReceiptFor, PLAN_FILE, "/steps/1/for", PLAN)),
        ..CASE
    },
    Case {
        test: "correlation_where",
        edits: &[(
            PLAN_FILE,
            r#"{ "ref": "@event.order_id" }, { "ref": "@var:correlation_id" }"#,
            r#"{ "ref": "@event.order_id" }, { "text": "x" }"#,
        )],
        want: Some(Only(
            Check::CorrelationWhere,
            PLAN_FILE,
            "/steps/5/where",
            PLAN,
        )),
        ..CASE
    },
    Case {
        test: "correlation_where",
        edits: &[(
            PLAN_FILE,
            r#""where": { "op": "eq", "args": [ { "ref": "@event.order_id" }, { "ref": "@var:correlation_id" } ] },"#,
            "",
        )],
        want: Some(Only(Check::CorrelationWhere, PLAN_FILE, "/steps/5", PLAN)),
        ..CASE
    },
    // The correlated input field counts as the key.
    Case {
        test: "correlation_where",
        edits: &[(
            PLAN_FILE,
            r#"{ "ref": "@var:correlation_id" }"#,
            r#"{ "ref": "@plan.input.order_id" }"#,
        )],
        ..CASE
    },
    Case {
        test: "end_result",
        edits: &[(PLAN_FILE, r#""output": "shop/Charge@1","#, "")],
        want: Some(Has(Check::EndResult, PLAN_FILE, "/steps/6/result", PLAN)),
        ..CASE
    },
    Case {
        test: "end_result",
        edits: &[(PLAN_FILE, r#""output": "shop/Charge@1","#, "")],
        want: Some(Has(Check::EndResult, PLAN_FILE, "/steps/7/result", PLAN)),
        ..CASE
    },
    Case {
        test: "end_result",
        edits: &[(
            PLAN_FILE,
            r#"{ "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }"#,
            r#"{ "id": "failed", "op": "end" }"#,
        )],
        want: Some(Only(Check::EndResult, PLAN_FILE, "/steps/7", PLAN)),
        ..CASE
    },
    Case {
        test: "raise_key",
        edits: &[(
            PLAN_FILE,
            r#",
      "key": { "ref": "@plan.input.order_id" }"#,
            "",
        )],
        want: Some(Only(Check::RaiseKey, PLAN_FILE, "/steps/4", PLAN)),
        ..CASE
    },
    Case {
        test: "route_event",
        edits: &[(
            MANIFEST_FILE,
            r#"{ "event": "shop/OrderPaid@1""#,
            r#"{ "event": "shop/Confirm@1""#,
        )],
        want: Some(Only(
            Check::RouteEvent,
            MANIFEST_FILE,
            "/routing/events/1/event",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "route_key",
        edits: &[(
            MANIFEST_FILE,
            r#""reducer": "shop/Orders@1", "key_field": "order_id" },"#,
            r#""reducer": "shop/Orders@1" },"#,
        )],
        want: Some(Only(
            Check::RouteKey,
            MANIFEST_FILE,
            "/routing/events/0",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "route_key",
        edits: &[(MODULES_FILE, r#""key_schema": "shop/OrderId@1","#, "")],
        want: Some(Has(
            Check::RouteKey,
            MANIFEST_FILE,
            "/routing/events/0/key_field",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "key_field",
        edits: &[(
            MANIFEST_FILE,
            r#""key_field": "order_id" },"#,
            r#""key_field": "amount" },"#,
        )],
        want: Some(Only(
            Check::KeyField,
            MANIFEST_FILE,
            "/routing/events/0/key_field",
            MANIFEST,
        )),
        says: &["is nat"],
        ..CASE
    },
    Case {
        test: "key_field",
        edits: &[(
            MANIFEST_FILE,
            r#""key_field": "order_id" },"#,
            r#""key_field": "nope" },"#,
        )],
        want: Some(Only(
            Check::KeyField,
            MANIFEST_FILE,
            "/routing/events/0/key_field",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "trigger_input",
        edits: &[(
            MANIFEST_FILE,
            r#"{ "event": "shop/PlaceOrder@1""#,
            r#"{ "event": "shop/Confirm@1""#,
        )],
        want: Some(Only(
            Check::TriggerInput,
            MANIFEST_FILE,
            "/triggers/0/event",
            MANIFEST,
        )),
        ..CASE
    },
    Case {
        test: "correlate_by",
        edits: &[(
            MANIFEST_FILE,
            r#""correlate_by": "order_id""#,
            r#""correlate_by": "nope""#,
        )],
        want: Some(Has(
            Check::CorrelateBy,
            MANIFEST_FILE,
            "/triggers/0/correlate_by",
            MANIFEST,
        )),
        ..CASE
    },
];

#[test]
fn every_rule_is_reported_where_the_problem_is() {
    for case in CASES {
        case.check();
    }
}

#[test]
fn manifest_count() {
    let files: Vec<_> = base()
        .into_iter()
        .filter(|(p, _)| !p.ends_with(MANIFEST_FILE))
        .collect();
    let ds = diags(&files);
    assert_eq!(ds.len(), 1, "{}", show(&ds));
    assert_eq!(ds[0].rule, Check::ManifestCount);
    assert_eq!(ds[0].node, None);
}

#[test]
fn builtin_mismatch() {
    let same = r#"{ "$kind": "defschema", "name": "sys/TimerSetParams@1",
        "type": { "record": { "key": { "option": { "text": {} } }, "deliver_at_ns": { "nat": {} } } } }"#;
    let other = same.replace("nat", "int");
    for (text, want) in [
        (same, None),
        (
            other.as_str(),
            Some(Only(
                Check::BuiltinMismatch,
                ZZ_FILE,
                "",
                "defschema sys/TimerSetParams@1",
            )),
        ),
    ] {
        Case {
            test: "builtin_mismatch",
            adds: &[(ZZ, text)],
            want,
            ..CASE
        }
        .check();
    }
}

#[test]
fn hash_mismatch() {
    // The all-zero placeholder means "not filled".
    for (digit, want) in [
        (
            "1",
            Some(Only(
                Check::HashMismatch,
                MANIFEST_FILE,
                "/schemas/0/hash",
                MANIFEST,
            )),
        ),
        ("0", None),
    ] {
        let hash = format!("b3:{}", digit.repeat(64));
        let to = format!(r#"{{ "name": "shop/OrderId@1", "hash": "{hash}" }}"#);
        Case {
            test: "hash_mismatch",
            edits: &[(MANIFEST_FILE, r#"{ "name": "shop/OrderId@1" }"#, &to)],
            want,
            ..CASE
        }
        .check();
    }
}

#[test]
fn rule_ids_are_unique_and_kebab_case() {
    // Every rule has a test below except `canonical`, an internal inconsistency that a world
    // passing every other check cannot reach.
    assert_eq!(Check::ALL.len(), 50);
    let ids: HashSet<&str> = Check::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(ids.len(), Check::ALL.len());
    for c in Check::ALL {
        let s = c.as_str();
        assert!(
            s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
            "{s}"
        );
    }
}

#[test]
fn display_names_file_line_column_rule_node_and_pointer() {
    let case = Case {
        edits: &[(
            PLAN_FILE,
            r#""output": "shop/Charge@1""#,
            r#""output": "shop/Nope@1""#,
        )],
        ..CASE
    };
    let ds = diags(&case.files());
    let d = only(&ds, Check::UnknownSchema, PLAN_FILE, "/output", PLAN);
    assert_eq!(d.pos.map(|p| (p.line, p.column)), Some((3, 43)));
    assert_eq!(
        d.to_string(),
        "air/plans/charge.air.json:3:43: unknown schema shop/Nope@1 [unknown-schema] \
         (in defplan shop/charge@1, at /output)"
    );
}

#[test]
fn every_problem_is_reported_at_once_in_order() {
    let case = Case {
        edits: &[
            (
                PLAN_FILE,
                r#""output": "shop/Charge@1""#,
                r#""output": "shop/Nope@1""#,
            ),
            (
                MANIFEST_FILE,
                r#""policy": "shop/policy@1""#,
                r#""policy": "shop/nope@1""#,
            ),
            (
                PLAN_FILE,
                r#"{ "from": "emit", "to": "wait" }"#,
                r#"{ "from": "emit", "to": "wait" }, { "from": "done", "to": "nowhere" }"#,
            ),
        ],
        ..CASE
    };
    let ds = diags(&case.files());
    let rules: Vec<Check> = ds.iter().map(|d| d.rule).collect();
    assert_eq!(
        rules,
        [
            Check::UnknownPolicy,
            Check::UnknownSchema,
            Check::UnknownStep
        ],
        "{}",
        show(&ds)
    );
}

#[test]
fn key_field_reaches_into_variants() {
    // `$value.f` names field f of every alternative.
    let schema = r#"{ "$kind": "defschema", "name": "shop/Either@1",
        "type": { "variant": { "A": { "ref": "shop/OrderPlaced@1" }, "B": { "ref": "shop/OrderPaid@1" } } } }"#;
    let mut edits = vec![
        (
            MANIFEST_FILE,
            r#"{ "name": "shop/Note@1" },"#,
            r#"{ "name": "shop/Note@1" }, { "name": "shop/Either@1" },"#,
        ),
        (
            SCHEMAS_FILE,
            r#""Timer": { "ref": "sys/TimerFired@1" }"#,
            r#""Timer": { "ref": "sys/TimerFired@1" }, "Either": { "ref": "shop/Either@1" }"#,
        ),
        (
            MANIFEST_FILE,
            r#"{ "event": "shop/OrderPaid@1", "reducer": "shop/Orders@1", "key_field": "order_id" }"#,
            r#"{ "event": "shop/Either@1", "reducer": "shop/Orders@1", "key_field": "$value.order_id" }"#,
        ),
    ];
    let adds = [(ZZ, schema)];
    Case {
        test: "key_field_reaches_into_variants",
        adds: &adds,
        edits: &edits,
        ..CASE
    }
    .check();
    edits.push((MANIFEST_FILE, r#""$value.order_id""#, r#""$value.amount""#));
    Case {
        test: "key_field_reaches_into_variants",
        adds: &adds,
        edits: &edits,
        want: Some(Only(
            Check::KeyField,
            MANIFEST_FILE,
            "/routing/events/1/key_field",
            MANIFEST,
        )),
        ..CASE
    }
    .check();
}

fn plan_mut(nodes: &mut [(Node, Origin)]) -> &mut DefPlan {
    nodes
        .iter_mut()
        .find_map(|(n, _)| match n {
            Node::DefPlan(p) => Some(p),
            _ => None,
        })
        .unwrap()
}

#[test]
fn bad_ident_and_bad_dotted() {
    let ds = mutated(|nodes| {
        let p = plan_mut(nodes);
        if let StepOp::Assign { bind_as, .. } = &mut p.steps[2].op {
            *bind_as = "9lives".to_owned();
        }
    });
    has(&ds, Check::BadIdent, PLAN_FILE, "/steps/2/bind/as", PLAN);
    let ds = mutated(|nodes| {
        for (n, _) in nodes.iter_mut() {
            if let Node::DefModule(m) = n
                && let ModuleAbi::Reducer(r) = &mut m.abi
            {
                r.effects_emitted[0] = "Timer.Set".to_owned();
            }
        }
    });
    has(
        &ds,
        Check::BadDotted,
        "modules.air.json",
        "/0/abi/reducer/effects_emitted/0",
        "defmodule shop/Orders@1",
    );
}

#[test]
fn bad_secret() {
    let ds = mutated(|nodes| {
        for (n, _) in nodes.iter_mut() {
            if let Node::DefSecret(s) = n {
                s.binding_id = " ".to_owned();
            }
        }
    });
    only(
        &ds,
        Check::BadSecret,
        "policy.air.json",
        "/1/binding_id",
        "defsecret shop/api@1",
    );
}

// ---------------------------------------------------------------------------------------------
// Scale

/// A world of 1,000 schemas, 200 reducers and 200 plans, as authoring files.
fn large_world() -> Vec<(String, String)> {
    let mut schemas = Vec::new();
    for k in 0..1000 {
        let c = if k == 0 {
            String::new()
        } else {
            format!(r#", "c": {{ "option": {{ "ref": "big/S{}@1" }} }}"#, k / 2)
        };
        schemas.push(format!(
            r#"{{ "$kind": "defschema", "name": "big/S{k}@1", "type": {{ "record": {{ "a": {{ "text": {{}} }}, "b": {{ "nat": {{}} }}{c} }} }} }}"#
        ));
    }
    schemas.push(
        r#"{ "$kind": "defschema", "name": "big/Key@1", "type": { "text": {} } }"#.to_owned(),
    );
    let mut modules = Vec::new();
    let mut plans = Vec::new();
    let mut routes = Vec::new();
    let mut triggers = Vec::new();
    for i in 0..200 {
        let keyed = i % 2 == 0;
        modules.push(format!(
            r#"{{ "$kind": "defmodule", "name": "big/M{i}@1", "module_kind": "reducer"{key},
               "abi": {{ "reducer": {{ "state": "big/S{i}@1", "event": "big/S{e}@1" }} }} }}"#,
            key = if keyed {
                r#", "key_schema": "big/Key@1""#
            } else {
                ""
            },
            e = i + 200
        ));
        routes.push(format!(
            r#"{{ "event": "big/S{e}@1", "reducer": "big/M{i}@1"{kf} }}"#,
            e = i + 200,
            kf = if keyed { r#", "key_field": "a""# } else { "" }
        ));
        triggers.push(format!(
            r#"{{ "event": "big/S{}@1", "plan": "big/p{i}@1" }}"#,
            i + 400
        ));
        plans.push(format!(
            r#"{{ "$kind": "defplan", "name": "big/p{i}@1", "input": "big/S{inp}@1", "output": "big/S{out}@1",
              "steps": [
                {{ "id": "emit", "op": "emit_effect", "kind": "http.request",
                  "params": {{ "record": {{ "method": {{ "text": "GET" }}, "url": {{ "ref": "@plan.input.a" }},
                                           "headers": {{ "map": [] }}, "body_ref": {{ "null": {{}} }} }} }},
                  "cap": "http", "bind": {{ "effect_id_as": "req" }} }},
                {{ "id": "wait", "op": "await_receipt", "for": {{ "ref": "@var:req" }}, "bind": {{ "as": "rcpt" }} }},
                {{ "id": "ok", "op": "assign",
                  "expr": {{ "op": "lt", "args": [ {{ "ref": "@var:rcpt.status" }}, {{ "int": 400 }} ] }},
                  "bind": {{ "as": "ok" }} }},
                {{ "id": "tell", "op": "raise_event", "reducer": "big/M{i}@1",
                  "event": {{ "record": {{ "a": {{ "ref": "@plan.input.a" }}, "b": {{ "ref": "@plan.input.b" }} }} }}{key} }},
                {{ "id": "done", "op": "end", "result": {{ "a": "done", "b": {i} }} }}
              ],
              "edges": [ {{ "from": "emit", "to": "wait" }}, {{ "from": "wait", "to": "ok" }},
                         {{ "from": "ok", "to": "tell", "when": {{ "ref": "@var:ok" }} }},
                         {{ "from": "tell", "to": "done" }} ] }}"#,
            inp = i + 400,
            out = i + 600,
            key = if keyed { r#", "key": { "ref": "@plan.input.a" }"# } else { "" }
        ));
    }
    let names = |prefix: &str, n: usize| {
        (0..n)
            .map(|k| format!(r#"{{ "name": "big/{prefix}{k}@1" }}"#))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let manifest = format!(
        r#"{{ "$kind": "manifest", "air_version": "1",
          "schemas": [ {}, {{ "name": "big/Key@1" }}, {{ "name": "sys/HttpRequestParams@1" }}, {{ "name": "sys/HttpRequestReceipt@1" }} ],
          "modules": [ {} ], "plans": [ {} ],
          "effects": [ {{ "name": "sys/http.request@1" }} ], "caps": [ {{ "name": "sys/http.out@1" }} ],
          "routing": {{ "events": [ {} ] }}, "triggers": [ {} ],
          "defaults": {{ "cap_grants": [ {{ "name": "http", "cap": "sys/http.out@1",
                                            "params": {{ "hosts": ["x"], "verbs": ["GET"] }} }} ] }} }}"#,
        names("S", 1000),
        names("M", 200),
        names("p", 200),
        routes.join(", "),
        triggers.join(", ")
    );
    vec![
        (
            "big/schemas.air.json".to_owned(),
            format!("[{}]", schemas.join(",\n")),
        ),
        (
            "big/modules.air.json".to_owned(),
            format!("[{}]", modules.join(",\n")),
        ),
        (
            "big/plans.air.json".to_owned(),
            format!("[{}]", plans.join(",\n")),
        ),
        ("big/manifest.air.json".to_owned(), manifest),
    ]
}

#[test]
fn a_large_world_is_checked_quickly() {
    let files = large_world();
    let start = std::time::Instant::now();
    let nodes = testworld::load(&files);
    let v = validate_with(nodes, &testworld::source(&files));
    let took = start.elapsed();
    let v = v.unwrap_or_else(|ds| panic!("{}", show(&ds[..ds.len().min(20)])));
    assert_eq!(v.nodes.len(), 1000 + 3 + 200 + 200 + 2);
    // The budget is for optimized builds (`aos air check`); debug builds only report.
    println!("loaded and validated {} nodes in {took:?}", v.nodes.len());
    if !cfg!(debug_assertions) {
        assert!(took.as_millis() < 200, "{took:?}");
    }
}
