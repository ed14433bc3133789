//! `aos air ...` end to end on the fixture worlds and broken variants of them.

use std::path::{Path, PathBuf};

use crate::common::Env;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/air")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn fixtures_check_clean() {
    let env = Env::bare();
    for w in ["counter", "fetch-notify"] {
        env.run(&["air", "check", fixture(w).to_str().unwrap()])
            .ok();
    }
}

#[test]
fn broken_air_is_located() {
    let env = Env::bare();
    let dir = env.path().join("air");
    copy_dir(&fixture("counter"), &dir);
    let schemas = dir.join("schemas.air.json");
    let text = std::fs::read_to_string(&schemas).unwrap();
    std::fs::write(&schemas, text.replacen("\"nat\"", "\"natural\"", 1)).unwrap();
    insta::assert_snapshot!(env.sh(&["air", "check", "air"]), @"
    $ aos air check air
    $TMP/air/schemas.air.json:18:31: unknown type form `natural` (expected one of bool, int, nat, dec128, bytes, text, time, duration, hash, uuid, unit, record, variant, list, set, map, option, ref) [bad-type] (in defschema demo/CounterState@1, at /1/type/record/count/natural)
    [exit 1]
    --- stderr
    1 problem(s)
    ");
    let r = env.run(&["--json", "air", "check", "air"]).fails(1);
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["rule"], "bad-type");
    assert!(v["problems"][0]["line"].as_u64().unwrap() > 0);
}

#[test]
fn diff_reports_nodes_and_fields() {
    let env = Env::bare();
    let a = fixture("counter");
    env.run(&["air", "diff", a.to_str().unwrap(), a.to_str().unwrap()])
        .ok();
    let dir = env.path().join("b");
    copy_dir(&a, &dir);
    let schemas = dir.join("schemas.air.json");
    let text = std::fs::read_to_string(&schemas).unwrap();
    std::fs::write(&schemas, text.replacen("\"nat\"", "\"int\"", 1)).unwrap();
    let r = env
        .run(&["--json", "air", "diff", a.to_str().unwrap(), "b"])
        .fails(1);
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(v["equal"], false);
    let changed = v["changed"].as_array().unwrap();
    // The schema changed, and so did the manifest's link to it (its id is in the manifest).
    assert_eq!(changed.len(), 2, "{v}");
    let schema = changed.iter().find(|c| c["kind"] == "defschema").unwrap();
    assert!(
        schema["fields"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/type"),
        "{v}"
    );
    let manifest = changed.iter().find(|c| c["kind"] == "manifest").unwrap();
    assert!(
        manifest["fields"][0]["pointer"]
            .as_str()
            .unwrap()
            .ends_with("/hash"),
        "{v}"
    );
}

#[test]
fn fmt_output_reloads_to_the_same_nodes() {
    let env = Env::bare();
    let fx = fixture("fetch-notify");
    for lens in [&[][..], &["--tagged"][..]] {
        let args = |p: &str| {
            let mut a = vec!["air".to_owned(), "fmt".to_owned()];
            a.extend(lens.iter().map(|s| (*s).to_owned()));
            a.push(p.to_owned());
            a
        };
        let run = |p: &str| {
            let a = args(p);
            env.run(&a.iter().map(String::as_str).collect::<Vec<_>>())
        };
        let r = run(fx.to_str().unwrap()).ok();
        let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
        let nodes = v.as_array().unwrap();
        assert_eq!(nodes.last().unwrap()["$kind"], "manifest", "manifest last");
        // Built-ins the world lists are printed too.
        assert!(
            nodes
                .iter()
                .any(|n| n["name"].as_str().is_some_and(|s| s.starts_with("sys/"))),
            "{v}"
        );
        env.write("all.json", &r.stdout);
        // Canonical output is a fixed point.
        let again = run("all.json").ok();
        assert_eq!(again.stdout, r.stdout);
        env.run(&["air", "diff", fx.to_str().unwrap(), "all.json"])
            .ok();
    }
    // The lenses differ only in how literals are written: sugar is the default.
    let sugar = env.run(&["air", "fmt", fx.to_str().unwrap()]).ok().out();
    let tagged = env
        .run(&["air", "fmt", "--tagged", fx.to_str().unwrap()])
        .ok()
        .out();
    assert_ne!(sugar, tagged);
    assert!(tagged.contains(r#""text": "example.com""#), "{tagged}");
    assert!(sugar.contains(r#""example.com""#) && !sugar.contains(r#""text": "example.com""#));
}

#[test]
fn fmt_in_both_lenses_keeps_the_manifest_id() {
    let env = Env::bare();
    let manifest_id = |path: &str| {
        let out = env.run(&["air", "hash", path]).ok().out();
        let last = out.lines().last().unwrap().to_owned();
        assert!(last.ends_with(" manifest"), "{out}");
        last
    };
    for w in ["counter", "fetch-notify"] {
        let fx = fixture(w);
        let want = manifest_id(fx.to_str().unwrap());
        for (file, lens) in [("sugar.json", None), ("tagged.json", Some("--tagged"))] {
            let mut args = vec!["air", "fmt", fx.to_str().unwrap()];
            args.extend(lens);
            let r = env.run(&args).ok();
            env.write(file, &r.stdout);
            assert_eq!(manifest_id(file), want, "{w} {file}");
        }
    }
}

#[test]
fn fmt_without_a_manifest_prints_forms_and_says_so() {
    let env = Env::bare();
    let schemas = fixture("counter").join("schemas.air.json");
    let r = env.run(&["air", "fmt", schemas.to_str().unwrap()]).ok();
    insta::assert_snapshot!(env.redact(&r.stderr), @"no manifest: printing the 3 nodes as read (canonical form needs a world)");
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[test]
fn fmt_reports_an_invalid_world() {
    let env = Env::bare();
    let dir = env.path().join("air");
    copy_dir(&fixture("counter"), &dir);
    let schemas = dir.join("schemas.air.json");
    let text = std::fs::read_to_string(&schemas).unwrap();
    std::fs::write(
        &schemas,
        text.replacen("demo/CounterPc@1\"", "demo/Pc@1\"", 1),
    )
    .unwrap();
    insta::assert_snapshot!(env.sh(&["air", "fmt", "air"]), @"
    $ aos air fmt air
    $TMP/air/manifest.air.json:5:15: `schemas` lists demo/CounterPc@1, but no defschema of that name is loaded or built in [unknown-node] (in manifest, at /schemas/0/name)
    $TMP/air/schemas.air.json:4:13: defschema demo/Pc@1 is not in the manifest's `schemas` [unlisted-node] (in defschema demo/Pc@1, at /0/name)
    $TMP/air/schemas.air.json:17:24: unknown schema demo/CounterPc@1 [unknown-schema] (in defschema demo/CounterState@1, at /1/type/record/pc/ref)
    [exit 1]
    --- stderr
    3 problem(s)
    ");
}

#[test]
fn import_export_round_trip_keeps_the_manifest_id() {
    let env = Env::new();
    let fx = fixture("fetch-notify");
    let hash = env.run(&["air", "hash", fx.to_str().unwrap()]).ok().out();
    let manifest = hash
        .lines()
        .last()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let imported = env.run(&["air", "import", fx.to_str().unwrap()]).ok().out();
    assert_eq!(imported.trim(), manifest);
    env.run(&["air", "export", &manifest[..12], "out"]).ok();
    let again = env.run(&["air", "hash", "out"]).ok().out();
    assert_eq!(
        again.lines().last().unwrap().split(' ').next().unwrap(),
        manifest
    );
    env.run(&["air", "diff", fx.to_str().unwrap(), "out"]).ok();
    // The stored nodes are objects the store checks like any other.
    let f: serde_json::Value =
        serde_json::from_str(&env.run(&["--json", "fsck"]).ok().out()).unwrap();
    assert!(
        f["links"].as_u64().unwrap() > 0,
        "the manifest links its nodes: {f}"
    );
}

#[test]
fn semantic_problems_name_node_rule_and_place() {
    let env = Env::bare();
    let dir = env.path().join("air");
    copy_dir(&fixture("counter"), &dir);
    let m = dir.join("manifest.air.json");
    let text = std::fs::read_to_string(&m).unwrap();
    assert!(text.contains("demo/Counter@1"));
    std::fs::write(
        &m,
        text.replace(
            "\"reducer\": \"demo/Counter@1\"",
            "\"reducer\": \"demo/Nope@1\"",
        ),
    )
    .unwrap();
    let r = env.run(&["--json", "air", "check", "air"]).fails(1);
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    let p = &v["problems"][0];
    assert!(
        p["file"].as_str().unwrap().ends_with("manifest.air.json"),
        "{v}"
    );
    assert!(
        p["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/routing/events/0"),
        "{v}"
    );
    assert!(
        p["message"].as_str().unwrap().contains("demo/Nope@1"),
        "{v}"
    );
    env.run(&["air", "hash", "air"]).fails(1);
}

#[test]
fn patches_apply_revalidate_and_refuse_stale_bases() {
    let env = Env::new();
    let fx = fixture("counter");
    let hashes = env.run(&["air", "hash", fx.to_str().unwrap()]).ok().out();
    let id_of = |what: &str| {
        hashes
            .lines()
            .find(|l| l.ends_with(what))
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let (manifest, state) = (id_of(" manifest"), id_of("demo/CounterState@1"));
    let patch = format!(
        r#"{{"version": "1", "base_manifest_hash": "{manifest}", "patches": [
            {{"add_def": {{"kind": "defschema", "node": {{"$kind": "defschema", "name": "demo/Extra@1", "type": {{"text": {{}}}}}}}}}},
            {{"set_manifest_refs": {{"add": [{{"kind": "defschema", "name": "demo/Extra@1"}}]}}}},
            {{"replace_def": {{"kind": "defschema", "name": "demo/CounterState@1", "pre_hash": "{state}",
              "new_node": {{"$kind": "defschema", "name": "demo/CounterState@1", "type": {{"record": {{
                "pc": {{"ref": "demo/CounterPc@1"}}, "count": {{"int": {{}}}}, "last_step": {{"option": {{"nat": {{}}}}}}}}}}}}}}}}
        ]}}"#
    );
    env.write("p.json", patch.as_bytes());
    let r = env
        .run(&[
            "--json",
            "air",
            "patch",
            fx.to_str().unwrap(),
            "p.json",
            "-o",
            "new",
            "-w",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(v["base"], manifest.as_str());
    assert_ne!(v["manifest"], manifest.as_str());
    // The written world validates to the reported manifest id, and the patch was stored.
    let again = env.run(&["air", "hash", "new"]).ok().out();
    assert!(
        again.ends_with(&format!("{} manifest\n", v["manifest"].as_str().unwrap())),
        "{again}"
    );
    env.run(&["cat-object", "--type", v["patch"].as_str().unwrap()])
        .ok();
    env.run(&["fsck"]).ok();
    // The same patch against the new world is stale.
    insta::assert_snapshot!(env.sh(&["air", "patch", "new", "p.json"]), @"
    $ aos air patch new p.json
    [exit 1]
    --- stderr
    error: p.json: the patch is for manifest b3:58c4b5cedb667b165707fc54d5c51f428a4da36f044a6fe84ba90489e72fce81, but the base manifest is b3:cb2b00b62d3fdade1e47c5066ce0d7fe42e35f3ea10509f7df153528d744a788 (rebase the patch)
    ");
    // A patch whose result is invalid is refused with diagnostics.
    let bad = patch.replace(
        r#"{"ref": "demo/CounterPc@1"}"#,
        r#"{"ref": "demo/Missing@1"}"#,
    );
    env.write("bad.json", bad.as_bytes());
    insta::assert_snapshot!(env.sh(&["air", "patch", fx.to_str().unwrap(), "bad.json"]), @"
    $ aos air patch $REPO/tests/fixtures/air/counter bad.json
    <patch>: unknown schema demo/Missing@1 [unknown-schema] (in defschema demo/CounterState@1, at /patches/2/replace_def/new_node/type/record/pc/ref)
    [exit 1]
    --- stderr
    the patched world is not valid:
    1 problem(s)
    ");
}

#[test]
fn agentos_option_spellings_hash_like_ours() {
    let env = Env::bare();
    let fx = fixture("fetch-notify");
    let dir = env.path().join("air");
    copy_dir(&fx, &dir);
    let plan = dir.join("plans/fetch_plan.air.json");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains(r#""body_ref": { "null": {} }"#));
    std::fs::write(
        &plan,
        text.replace(
            r#""body_ref": { "null": {} }"#,
            r#""body_ref": { "variant": { "tag": "None" } }"#,
        ),
    )
    .unwrap();
    let ours = env.run(&["air", "hash", fx.to_str().unwrap()]).ok().out();
    let theirs = env.run(&["air", "hash", "air"]).ok().out();
    assert_eq!(ours.lines().last(), theirs.lines().last());
}

#[test]
fn a_broken_expression_is_reported_where_it_breaks() {
    let env = Env::bare();
    let dir = env.path().join("air");
    copy_dir(&fixture("fetch-notify"), &dir);
    let plan = dir.join("plans/fetch_plan.air.json");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(
        &plan,
        text.replace(
            r#""body_ref": { "null": {} }"#,
            r#""body_ref": { "const": { "null": {} } }"#,
        ),
    )
    .unwrap();
    let r = env.run(&["--json", "air", "check", "air"]).fails(1);
    let v: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["problems"][0]["pointer"]
            .as_str()
            .unwrap()
            .ends_with("/body_ref/const"),
        "{v}"
    );
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid expression"),
        "{v}"
    );
}
