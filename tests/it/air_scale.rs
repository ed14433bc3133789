//! Huge AIR: a 200,000-tag variant and a 50,000-field record check in linear time, and a
//! 10 MB name is quoted in messages by a bounded prefix.

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

#[test]
fn a_10_mb_name_is_quoted_by_a_bounded_prefix() {
    let env = Env::bare();
    let big = "x".repeat(10_000_000);
    std::fs::create_dir_all(env.path().join("air")).unwrap();
    let schemas = format!(
        r#"[{{"$kind":"defschema","name":"{big}","type":{{"text":{{}}}}}},
{{"$kind":"defschema","name":"a/B@1","type":{{"record":{{"{big}":{{"text":{{}}}}}}}}}}]"#
    );
    env.write("air/schemas.air.json", schemas.as_bytes());
    let dir = env.path().join("air");
    for args in [&["air", "check"][..], &["--json", "air", "check"][..]] {
        let mut args = args.to_vec();
        args.push(dir.to_str().unwrap());
        let r = env.run(&args).fails(1);
        let all = format!("{}{}", r.out(), r.stderr);
        assert!(all.len() < 4_000, "{} bytes of messages", all.len());
        assert!(all.contains("… (10000010 bytes)"), "{all}");
        assert!(all.contains("… (10000015 bytes)"), "{all}");
    }
}
