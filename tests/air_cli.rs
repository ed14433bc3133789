//! `aos air ...` end to end on the fixture worlds and broken variants of them.

#![allow(clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use std::path::{Path, PathBuf};

use common::Env;

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
    let r = env.run(&["air", "check", "air"]).fails(1);
    let out = r.out();
    assert!(
        out.contains("schemas.air.json:") && out.contains("[bad-type]"),
        "{out}"
    );
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
    assert_eq!(changed.len(), 1, "{v}");
    assert_eq!(changed[0]["kind"], "defschema");
    assert!(
        changed[0]["fields"][0]["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/type"),
        "{v}"
    );
}

#[test]
fn fmt_output_reloads_to_the_same_nodes() {
    let env = Env::bare();
    let r = env
        .run(&["air", "fmt", fixture("fetch-notify").to_str().unwrap()])
        .ok();
    env.write("all.json", &r.stdout);
    let again = env.run(&["air", "fmt", "all.json"]).ok();
    assert_eq!(again.stdout, r.stdout);
    env.run(&[
        "air",
        "diff",
        fixture("fetch-notify").to_str().unwrap(),
        "all.json",
    ])
    .ok();
}
