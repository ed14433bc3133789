use std::collections::HashSet;

use super::*;
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
    ds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
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
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""output": "shop/Charge@1""#,
        r#""output": "shop/Nope@1""#,
    ));
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
    let files = edit(
        &base(),
        PLAN_FILE,
        r#""output": "shop/Charge@1""#,
        r#""output": "shop/Nope@1""#,
    );
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#""policy": "shop/policy@1""#,
        r#""policy": "shop/nope@1""#,
    );
    let files = edit(
        &files,
        PLAN_FILE,
        r#"{ "from": "emit", "to": "wait" }"#,
        r#"{ "from": "emit", "to": "wait" }, { "from": "done", "to": "nowhere" }"#,
    );
    let ds = diags(&files);
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
fn duplicate_name() {
    let dup = r#"{ "$kind": "defschema", "name": "shop/Confirm@1", "type": { "text": {} } }"#;
    let ds = diags(&with_file(&base(), "air/zz.air.json", dup));
    only(
        &ds,
        Check::DuplicateName,
        "zz.air.json",
        "/name",
        "defschema shop/Confirm@1",
    );
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "shop/Note@1" },"#,
        r#"{ "name": "shop/Note@1" }, { "name": "shop/Note@1" },"#,
    ));
    only(
        &ds,
        Check::DuplicateName,
        MANIFEST_FILE,
        "/schemas/9/name",
        MANIFEST,
    );
}

#[test]
fn manifest_count() {
    let second = r#"{ "$kind": "manifest", "air_version": "1" }"#;
    let ds = diags(&with_file(&base(), "air/zz.air.json", second));
    only(&ds, Check::ManifestCount, "zz.air.json", "", MANIFEST);
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
fn reserved_name() {
    let mine = r#"{ "$kind": "defschema", "name": "sys/Mine@1", "type": { "text": {} } }"#;
    let files = with_file(&base(), "air/zz.air.json", mine);
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#"{ "name": "shop/Note@1" },"#,
        r#"{ "name": "shop/Note@1" }, { "name": "sys/Mine@1" },"#,
    );
    let ds = diags(&files);
    only(
        &ds,
        Check::ReservedName,
        "zz.air.json",
        "/name",
        "defschema sys/Mine@1",
    );
}

#[test]
fn builtin_mismatch() {
    let same = r#"{ "$kind": "defschema", "name": "sys/TimerSetParams@1",
        "type": { "record": { "key": { "option": { "text": {} } }, "deliver_at_ns": { "nat": {} } } } }"#;
    assert_eq!(diags(&with_file(&base(), "air/zz.air.json", same)), []);
    let other = same.replace("nat", "int");
    let ds = diags(&with_file(&base(), "air/zz.air.json", &other));
    only(
        &ds,
        Check::BuiltinMismatch,
        "zz.air.json",
        "",
        "defschema sys/TimerSetParams@1",
    );
}

#[test]
fn unlisted_node() {
    let extra = r#"[{ "$kind": "defschema", "name": "shop/Extra@1", "type": { "text": {} } }]"#;
    let ds = diags(&with_file(&base(), "air/zz.air.json", extra));
    only(
        &ds,
        Check::UnlistedNode,
        "zz.air.json",
        "/0/name",
        "defschema shop/Extra@1",
    );
}

#[test]
fn unknown_node() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "shop/Note@1" },"#,
        r#"{ "name": "shop/charge@1" },"#,
    ));
    let d = has(
        &ds,
        Check::UnknownNode,
        MANIFEST_FILE,
        "/schemas/8/name",
        MANIFEST,
    );
    assert!(d.message.contains("there is a defplan of that name"), "{d}");
}

#[test]
fn hash_mismatch() {
    let zero = format!("b3:{}", "1".repeat(64));
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "shop/OrderId@1" }"#,
        &format!(r#"{{ "name": "shop/OrderId@1", "hash": "{zero}" }}"#),
    ));
    only(
        &ds,
        Check::HashMismatch,
        MANIFEST_FILE,
        "/schemas/0/hash",
        MANIFEST,
    );
    // The all-zero placeholder means "not filled".
    let zero = format!("b3:{}", "0".repeat(64));
    let ok = edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "shop/OrderId@1" }"#,
        &format!(r#"{{ "name": "shop/OrderId@1", "hash": "{zero}" }}"#),
    );
    assert_eq!(diags(&ok), []);
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
fn unknown_schema() {
    let ds = diags(&edit(
        &base(),
        "schemas.air.json",
        r#""tags": { "set": { "text": {} } }"#,
        r#""tags": { "set": { "ref": "shop/Tag@1" } }"#,
    ));
    has(
        &ds,
        Check::UnknownSchema,
        "schemas.air.json",
        "/8/type/record/tags/set/ref",
        "defschema shop/Note@1",
    );
    // A built-in that refers to a schema the manifest does not list: reported at the entry
    // listing the built-in.
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "sys/TimerSetParams@1" },"#,
        "",
    ));
    let d = has(
        &ds,
        Check::UnknownSchema,
        MANIFEST_FILE,
        "/schemas/9",
        "built-in defschema sys/TimerFired@1",
    );
    assert!(
        d.message
            .contains("it is defined, but the manifest does not list it"),
        "{d}"
    );
    assert!(d.message.contains("/type/record/requested/ref"), "{d}");
}

#[test]
fn recursive_type() {
    let ds = diags(&edit(
        &base(),
        "schemas.air.json",
        r#""status": { "text": {} }"#,
        r#""status": { "text": {} }, "prev": { "option": { "ref": "shop/OrderState@1" } }"#,
    ));
    let d = only(
        &ds,
        Check::RecursiveType,
        "schemas.air.json",
        "/4/type",
        "defschema shop/OrderState@1",
    );
    assert!(
        d.message.contains("shop/OrderState@1 → shop/OrderState@1"),
        "{d}"
    );
}

#[test]
fn unknown_module_and_not_a_reducer() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""reducer": "shop/Orders@1""#,
        r#""reducer": "shop/Nope@1""#,
    ));
    only(
        &ds,
        Check::UnknownModule,
        PLAN_FILE,
        "/steps/4/reducer",
        PLAN,
    );
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""reducer": "shop/Orders@1""#,
        r#""reducer": "shop/Pricing@1""#,
    ));
    only(&ds, Check::NotAReducer, PLAN_FILE, "/steps/4/reducer", PLAN);
}

#[test]
fn unknown_plan() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""plan": "shop/charge@1""#,
        r#""plan": "shop/nope@1""#,
    ));
    has(
        &ds,
        Check::UnknownPlan,
        MANIFEST_FILE,
        "/triggers/0/plan",
        MANIFEST,
    );
    let ds = diags(&edit(
        &base(),
        "policy.air.json",
        r#""allowed_plans": ["shop/charge@1"]"#,
        r#""allowed_plans": ["shop/nope@1"]"#,
    ));
    only(
        &ds,
        Check::UnknownPlan,
        "policy.air.json",
        "/1/allowed_plans/0",
        "defsecret shop/api@1",
    );
}

#[test]
fn unknown_effect() {
    let ds = diags(&edit(
        &base(),
        "policy.air.json",
        r#""effect_kind": "timer.set""#,
        r#""effect_kind": "blob.put""#,
    ));
    only(
        &ds,
        Check::UnknownEffect,
        "policy.air.json",
        "/0/rules/1/when/effect_kind",
        "defpolicy shop/policy@1",
    );
}

#[test]
fn unknown_cap() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""cap": "sys/timer@1""#,
        r#""cap": "sys/blob@1""#,
    ));
    let d = only(
        &ds,
        Check::UnknownCap,
        MANIFEST_FILE,
        "/defaults/cap_grants/1/cap",
        MANIFEST,
    );
    assert!(d.message.contains("does not list it"), "{d}");
}

#[test]
fn unknown_grant() {
    let ds = diags(&edit(
        &base(),
        "policy.air.json",
        r#""allowed_caps": ["http"]"#,
        r#""allowed_caps": ["nope"]"#,
    ));
    only(
        &ds,
        Check::UnknownGrant,
        "policy.air.json",
        "/1/allowed_caps/0",
        "defsecret shop/api@1",
    );
    let ds = diags(&edit(
        &base(),
        "policy.air.json",
        r#""cap_name": "http""#,
        r#""cap_name": "nope""#,
    ));
    only(
        &ds,
        Check::UnknownGrant,
        "policy.air.json",
        "/0/rules/0/when/cap_name",
        "defpolicy shop/policy@1",
    );
}

#[test]
fn unknown_policy() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""policy": "shop/policy@1""#,
        r#""policy": "shop/nope@1""#,
    ));
    only(
        &ds,
        Check::UnknownPolicy,
        MANIFEST_FILE,
        "/defaults/policy",
        MANIFEST,
    );
}

#[test]
fn unknown_origin() {
    let ds = diags(&edit(
        &base(),
        "policy.air.json",
        r#""origin_name": "shop/Orders@1""#,
        r#""origin_name": "shop/charge@1""#,
    ));
    only(
        &ds,
        Check::UnknownOrigin,
        "policy.air.json",
        "/0/rules/1/when/origin_name",
        "defpolicy shop/policy@1",
    );
}

#[test]
fn duplicate_effect_kind() {
    let second = r#"{ "$kind": "defeffect", "name": "shop/timer@1", "kind": "timer.set",
        "params_schema": "sys/TimerSetParams@1", "receipt_schema": "sys/TimerSetReceipt@1",
        "cap_type": "timer", "origin_scope": "reducer" }"#;
    let files = with_file(&base(), "air/zz.air.json", second);
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#"{ "name": "sys/timer.set@1" }"#,
        r#"{ "name": "sys/timer.set@1" }, { "name": "shop/timer@1" }"#,
    );
    let ds = diags(&files);
    only(
        &ds,
        Check::DuplicateEffectKind,
        "zz.air.json",
        "/kind",
        "defeffect shop/timer@1",
    );
}

#[test]
fn origin_scope() {
    let ds = diags(&edit(
        &base(),
        "modules.air.json",
        r#""effects_emitted": ["timer.set"]"#,
        r#""effects_emitted": ["timer.set", "http.request"]"#,
    ));
    only(
        &ds,
        Check::OriginScope,
        "modules.air.json",
        "/0/abi/reducer/effects_emitted/1",
        "defmodule shop/Orders@1",
    );
    let files = edit(
        &base(),
        PLAN_FILE,
        r#""kind": "http.request""#,
        r#""kind": "timer.set""#,
    );
    let ds = diags(&files);
    has(&ds, Check::OriginScope, PLAN_FILE, "/steps/0/kind", PLAN);
}

#[test]
fn receipt_event() {
    let ds = diags(&edit(
        &base(),
        "schemas.air.json",
        r#",
                           "Timer": { "ref": "sys/TimerFired@1" }"#,
        "",
    ));
    only(
        &ds,
        Check::ReceiptEvent,
        "modules.air.json",
        "/0/abi/reducer/effects_emitted/0",
        "defmodule shop/Orders@1",
    );
}

#[test]
fn cap_type_mismatch() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""timer": "timer_grant""#,
        r#""timer": "http""#,
    ));
    only(
        &ds,
        Check::CapTypeMismatch,
        MANIFEST_FILE,
        "/module_bindings/shop~1Orders@1/slots/timer",
        MANIFEST,
    );
    let files = edit(
        &base(),
        PLAN_FILE,
        r#""cap": "http""#,
        r#""cap": "timer_grant""#,
    );
    let files = edit(
        &files,
        PLAN_FILE,
        r#""required_caps": ["http"]"#,
        r#""required_caps": ["timer_grant"]"#,
    );
    let ds = diags(&files);
    only(&ds, Check::CapTypeMismatch, PLAN_FILE, "/steps/0/cap", PLAN);
}

#[test]
fn duplicate_grant() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "name": "timer_grant","#,
        r#"{ "name": "http","#,
    ));
    has(
        &ds,
        Check::DuplicateGrant,
        MANIFEST_FILE,
        "/defaults/cap_grants/1/name",
        MANIFEST,
    );
}

#[test]
fn unknown_slot() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""timer": "timer_grant""#,
        r#""clock": "timer_grant""#,
    ));
    only(
        &ds,
        Check::UnknownSlot,
        MANIFEST_FILE,
        "/module_bindings/shop~1Orders@1/slots/clock",
        MANIFEST,
    );
}

#[test]
fn literal_type() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""verbs": ["POST"]"#,
        r#""verbs": "POST""#,
    ));
    only(
        &ds,
        Check::LiteralType,
        MANIFEST_FILE,
        "/defaults/cap_grants/0/params/verbs",
        MANIFEST,
    );
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""ok": false }"#,
        r#""ok": "no" }"#,
    ));
    only(
        &ds,
        Check::LiteralType,
        PLAN_FILE,
        "/steps/7/result/ok",
        PLAN,
    );
}

#[test]
fn duplicate_step() {
    let step = r#"{ "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }"#;
    let ds = diags(&edit(&base(), PLAN_FILE, step, &format!("{step}, {step}")));
    only(&ds, Check::DuplicateStep, PLAN_FILE, "/steps/8/id", PLAN);
}

#[test]
fn unknown_step() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "from": "emit", "to": "wait" }"#,
        r#"{ "from": "emit", "to": "wait" }, { "from": "done", "to": "nowhere" }"#,
    ));
    only(&ds, Check::UnknownStep, PLAN_FILE, "/edges/1/to", PLAN);
}

#[test]
fn duplicate_edge() {
    let e = r#"{ "from": "emit", "to": "wait" }"#;
    let ds = diags(&edit(&base(), PLAN_FILE, e, &format!("{e}, {e}")));
    only(&ds, Check::DuplicateEdge, PLAN_FILE, "/edges/1", PLAN);
}

#[test]
fn cycle() {
    let e = r#"{ "from": "emit", "to": "wait" }"#;
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        e,
        &format!(r#"{e}, {{ "from": "tell", "to": "wait" }}"#),
    ));
    let d = only(&ds, Check::Cycle, PLAN_FILE, "/edges/2", PLAN);
    assert!(d.message.contains("wait → ok → jot → tell → wait"), "{d}");
}

#[test]
fn unresolved_ref() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "ref": "@plan.input" }, { "text": "order_id" }"#,
        r#"{ "ref": "@var:ghost" }, { "text": "order_id" }"#,
    ));
    only(
        &ds,
        Check::UnresolvedRef,
        PLAN_FILE,
        "/invariants/0/args/0",
        PLAN,
    );
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""key": { "ref": "@plan.input.order_id" }"#,
        r#""key": { "ref": "@step:ghost" }"#,
    ));
    only(&ds, Check::UnresolvedRef, PLAN_FILE, "/steps/4/key", PLAN);
    // correlation_id exists only when a trigger correlates.
    let files = edit(
        &base(),
        MANIFEST_FILE,
        r#", "correlate_by": "order_id""#,
        "",
    );
    let ds = diags(&files);
    only(
        &ds,
        Check::UnresolvedRef,
        PLAN_FILE,
        "/steps/5/where/args/1",
        PLAN,
    );
}

#[test]
fn not_ancestor() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""when": { "op": "not", "args": [ { "ref": "@var:ok_flag" } ] }"#,
        r#""when": { "op": "not", "args": [ { "ref": "@var:confirmation.order_id" } ] }"#,
    ));
    let d = has(
        &ds,
        Check::NotAncestor,
        PLAN_FILE,
        "/edges/6/when/args/0",
        PLAN,
    );
    assert!(d.message.contains("`confirm`"), "{d}");
}

#[test]
fn event_ref() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "ref": "@plan.input" }, { "text": "order_id" }"#,
        r#"{ "ref": "@event" }, { "text": "order_id" }"#,
    ));
    only(
        &ds,
        Check::EventRef,
        PLAN_FILE,
        "/invariants/0/args/0",
        PLAN,
    );
}

#[test]
fn bad_path() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""key": { "ref": "@plan.input.order_id" }"#,
        r#""key": { "ref": "@plan.input.nope" }"#,
    ));
    only(&ds, Check::BadPath, PLAN_FILE, "/steps/4/key", PLAN);
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""key": { "ref": "@plan.input.order_id" }"#,
        r#""key": { "ref": "@plan.input.order_id.x" }"#,
    ));
    only(&ds, Check::BadPath, PLAN_FILE, "/steps/4/key", PLAN);
}

#[test]
fn type_mismatch() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "ref": "@var:rcpt.status" }, { "int": 400 }"#,
        r#"{ "ref": "@var:rcpt.status" }, { "text": "400" }"#,
    ));
    only(&ds, Check::TypeMismatch, PLAN_FILE, "/steps/2/expr", PLAN);
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""value": { "record": { "order_id": { "ref": "@plan.input.order_id" } } }"#,
        r#""value": { "record": { "order_id": { "int": 7 } } }"#,
    ));
    only(
        &ds,
        Check::TypeMismatch,
        PLAN_FILE,
        "/steps/4/event/variant/value/record/order_id",
        PLAN,
    );
    // Option none is null; AgentOS's `None` / `Some` variants are read too, other tags not.
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""body_ref": { "null": {} }"#,
        r#""body_ref": { "variant": { "tag": "Nothing" } }"#,
    ));
    let d = only(
        &ds,
        Check::TypeMismatch,
        PLAN_FILE,
        "/steps/0/params/record/body_ref",
        PLAN,
    );
    assert!(d.message.contains("any other tag is not"), "{d}");
    // Guards are booleans.
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""when": { "ref": "@var:ok_flag" }"#,
        r#""when": { "ref": "@var:rcpt.status" }"#,
    ));
    only(&ds, Check::TypeMismatch, PLAN_FILE, "/edges/3/when", PLAN);
    // A missing record field, an unknown tag.
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""ok": { "ref": "@var:ok_flag" }"#,
        r#""okk": { "ref": "@var:ok_flag" }"#,
    ));
    has(&ds, Check::TypeMismatch, PLAN_FILE, "/steps/6/result", PLAN);
    has(
        &ds,
        Check::TypeMismatch,
        PLAN_FILE,
        "/steps/6/result/record/okk",
        PLAN,
    );
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""tag": "Paid""#,
        r#""tag": "Refunded""#,
    ));
    only(
        &ds,
        Check::TypeMismatch,
        PLAN_FILE,
        "/steps/4/event/variant/tag",
        PLAN,
    );
}

#[test]
fn untyped_literal() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""bind": { "as": "note" }"#,
        r#""bind": { "as": "note2" }"#,
    ));
    only(&ds, Check::UntypedLiteral, PLAN_FILE, "/steps/3/expr", PLAN);
}

#[test]
fn required_caps_and_allowed_effects() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""required_caps": ["http"]"#,
        r#""required_caps": ["http", "timer_grant"]"#,
    ));
    only(&ds, Check::RequiredCaps, PLAN_FILE, "/required_caps", PLAN);
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""allowed_effects": ["http.request"]"#,
        r#""allowed_effects": []"#,
    ));
    only(
        &ds,
        Check::AllowedEffects,
        PLAN_FILE,
        "/allowed_effects",
        PLAN,
    );
    // Duplicates and order do not matter.
    let ok = edit(
        &base(),
        PLAN_FILE,
        r#""required_caps": ["http"]"#,
        r#""required_caps": ["http", "http"]"#,
    );
    assert_eq!(diags(&ok), []);
}

#[test]
fn duplicate_handle() {
    let step = r#"{ "id": "emit2", "op": "emit_effect", "kind": "http.request",
      "params": { "method": "GET", "url": "https://x", "headers": {} },
      "cap": "http", "bind": { "effect_id_as": "req" } }"#;
    let files = edit(
        &base(),
        PLAN_FILE,
        r#""steps": ["#,
        &format!(r#""steps": [ {step},"#),
    );
    let ds = diags(&files);
    has(
        &ds,
        Check::DuplicateHandle,
        PLAN_FILE,
        "/steps/1/bind/effect_id_as",
        PLAN,
    );
}

#[test]
fn await_receipt_for() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""for": { "ref": "@var:req" }"#,
        r#""for": { "ref": "@var:req.x" }"#,
    ));
    only(&ds, Check::AwaitReceiptFor, PLAN_FILE, "/steps/1/for", PLAN);
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""for": { "ref": "@var:req" }"#,
        r#""for": { "ref": "@var:ok_flag" }"#,
    ));
    has(&ds, Check::AwaitReceiptFor, PLAN_FILE, "/steps/1/for", PLAN);
    // A handle bound by a step that is not an ancestor.
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "from": "emit", "to": "wait" },"#,
        "",
    ));
    has(&ds, Check::AwaitReceiptFor, PLAN_FILE, "/steps/1/for", PLAN);
}

#[test]
fn correlation_where() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "ref": "@event.order_id" }, { "ref": "@var:correlation_id" }"#,
        r#"{ "ref": "@event.order_id" }, { "text": "x" }"#,
    ));
    only(
        &ds,
        Check::CorrelationWhere,
        PLAN_FILE,
        "/steps/5/where",
        PLAN,
    );
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""where": { "op": "eq", "args": [ { "ref": "@event.order_id" }, { "ref": "@var:correlation_id" } ] },"#,
        "",
    ));
    only(&ds, Check::CorrelationWhere, PLAN_FILE, "/steps/5", PLAN);
    // The correlated input field counts as the key.
    let ok = edit(
        &base(),
        PLAN_FILE,
        r#"{ "ref": "@var:correlation_id" }"#,
        r#"{ "ref": "@plan.input.order_id" }"#,
    );
    assert_eq!(diags(&ok), []);
}

#[test]
fn end_result() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#""output": "shop/Charge@1","#,
        "",
    ));
    has(&ds, Check::EndResult, PLAN_FILE, "/steps/6/result", PLAN);
    has(&ds, Check::EndResult, PLAN_FILE, "/steps/7/result", PLAN);
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#"{ "id": "failed", "op": "end", "result": { "order_id": "?", "ok": false } }"#,
        r#"{ "id": "failed", "op": "end" }"#,
    ));
    only(&ds, Check::EndResult, PLAN_FILE, "/steps/7", PLAN);
}

#[test]
fn raise_key() {
    let ds = diags(&edit(
        &base(),
        PLAN_FILE,
        r#",
      "key": { "ref": "@plan.input.order_id" }"#,
        "",
    ));
    only(&ds, Check::RaiseKey, PLAN_FILE, "/steps/4", PLAN);
}

#[test]
fn route_event() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "event": "shop/OrderPaid@1""#,
        r#"{ "event": "shop/Confirm@1""#,
    ));
    only(
        &ds,
        Check::RouteEvent,
        MANIFEST_FILE,
        "/routing/events/1/event",
        MANIFEST,
    );
}

#[test]
fn route_key() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""reducer": "shop/Orders@1", "key_field": "order_id" },"#,
        r#""reducer": "shop/Orders@1" },"#,
    ));
    only(
        &ds,
        Check::RouteKey,
        MANIFEST_FILE,
        "/routing/events/0",
        MANIFEST,
    );
    let ds = diags(&edit(
        &base(),
        "modules.air.json",
        r#""key_schema": "shop/OrderId@1","#,
        "",
    ));
    has(
        &ds,
        Check::RouteKey,
        MANIFEST_FILE,
        "/routing/events/0/key_field",
        MANIFEST,
    );
}

#[test]
fn key_field() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""key_field": "order_id" },"#,
        r#""key_field": "amount" },"#,
    ));
    let d = only(
        &ds,
        Check::KeyField,
        MANIFEST_FILE,
        "/routing/events/0/key_field",
        MANIFEST,
    );
    assert!(d.message.contains("is nat"), "{d}");
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""key_field": "order_id" },"#,
        r#""key_field": "nope" },"#,
    ));
    only(
        &ds,
        Check::KeyField,
        MANIFEST_FILE,
        "/routing/events/0/key_field",
        MANIFEST,
    );
}

#[test]
fn key_field_reaches_into_variants() {
    // `$value.f` names field f of every alternative.
    let schema = r#"{ "$kind": "defschema", "name": "shop/Either@1",
        "type": { "variant": { "A": { "ref": "shop/OrderPlaced@1" }, "B": { "ref": "shop/OrderPaid@1" } } } }"#;
    let files = with_file(&base(), "air/zz.air.json", schema);
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#"{ "name": "shop/Note@1" },"#,
        r#"{ "name": "shop/Note@1" }, { "name": "shop/Either@1" },"#,
    );
    let files = edit(
        &files,
        "schemas.air.json",
        r#""Timer": { "ref": "sys/TimerFired@1" }"#,
        r#""Timer": { "ref": "sys/TimerFired@1" }, "Either": { "ref": "shop/Either@1" }"#,
    );
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#"{ "event": "shop/OrderPaid@1", "reducer": "shop/Orders@1", "key_field": "order_id" }"#,
        r#"{ "event": "shop/Either@1", "reducer": "shop/Orders@1", "key_field": "$value.order_id" }"#,
    );
    assert_eq!(diags(&files), []);
    let files = edit(
        &files,
        MANIFEST_FILE,
        r#""$value.order_id""#,
        r#""$value.amount""#,
    );
    only(
        &diags(&files),
        Check::KeyField,
        MANIFEST_FILE,
        "/routing/events/1/key_field",
        MANIFEST,
    );
}

#[test]
fn trigger_input() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#"{ "event": "shop/PlaceOrder@1""#,
        r#"{ "event": "shop/Confirm@1""#,
    ));
    only(
        &ds,
        Check::TriggerInput,
        MANIFEST_FILE,
        "/triggers/0/event",
        MANIFEST,
    );
}

#[test]
fn correlate_by() {
    let ds = diags(&edit(
        &base(),
        MANIFEST_FILE,
        r#""correlate_by": "order_id""#,
        r#""correlate_by": "nope""#,
    ));
    has(
        &ds,
        Check::CorrelateBy,
        MANIFEST_FILE,
        "/triggers/0/correlate_by",
        MANIFEST,
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

#[test]
fn recursive_types_are_reported_once_and_not_followed() {
    // A recursive schema used by a plan: reported once, where it is declared; its users are
    // not checked against it (and checking does not follow it forever).
    let files = edit(
        &base(),
        "schemas.air.json",
        r#""due": { "option": { "time": {} } }"#,
        r#""due": { "option": { "ref": "shop/Note@1" } }, "up": { "option": { "ref": "shop/Note@1" } }"#,
    );
    let files = edit(
        &files,
        PLAN_FILE,
        r#""expr": { "text": "charged", "tags": ["b", "a"] }"#,
        r#""expr": { "record": { "text": { "text": "x" }, "tags": { "set": [] }, "due": { "ref": "@var:note" } } }"#,
    );
    let ds = diags(&files);
    only(
        &ds,
        Check::RecursiveType,
        "schemas.air.json",
        "/8/type",
        "defschema shop/Note@1",
    );
}
