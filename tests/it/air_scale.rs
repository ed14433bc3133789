//! AIR validation stays linear: a 200,000-tag variant and a 50,000-field record check in time.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::common::Env;

/// Writes an `air/` folder with a variant of `tags` unit tags, a record of `fields` nat
/// fields and a reducer using both, and returns its path.
fn big_world(env: &Env, tags: usize, fields: usize) -> std::path::PathBuf {
    let mut variant = String::new();
    for i in 0..tags {
        let sep = if i == 0 { "" } else { "," };
        write!(variant, r#"{sep}"T{i}":{{"unit":{{}}}}"#).unwrap();
    }
    let mut record = String::new();
    for i in 0..fields {
        let sep = if i == 0 { "" } else { "," };
        write!(record, r#"{sep}"f{i}":{{"nat":{{}}}}"#).unwrap();
    }
    let schemas = format!(
        r#"[{{"$kind":"defschema","name":"big/Ev@1","type":{{"variant":{{{variant}}}}}}},
{{"$kind":"defschema","name":"big/St@1","type":{{"record":{{{record}}}}}}},
{{"$kind":"defmodule","name":"big/R@1","module_kind":"reducer",
 "abi":{{"reducer":{{"state":"big/St@1","event":"big/Ev@1"}}}}}}]"#
    );
    let manifest = r#"{"$kind":"manifest","air_version":"1",
 "schemas":[{"name":"big/Ev@1"},{"name":"big/St@1"}],"modules":[{"name":"big/R@1"}]}"#;
    std::fs::create_dir_all(env.path().join("air")).unwrap();
    env.write("air/schemas.air.json", schemas.as_bytes());
    env.write("air/manifest.air.json", manifest.as_bytes());
    env.path().join("air")
}

#[test]
fn a_200k_tag_variant_checks_in_time() {
    let env = Env::bare();
    let dir = big_world(&env, 200_000, 50_000);
    let start = Instant::now();
    env.run(&["air", "check", dir.to_str().unwrap()]).ok();
    let took = start.elapsed();
    // Quadratic rules took minutes here in a debug build; linear ones take a few seconds.
    // The bound is generous for a loaded 2-core machine.
    assert!(
        took < Duration::from_secs(20),
        "aos air check took {took:?}"
    );
}
