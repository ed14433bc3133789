//! The store's validation cache (`.aos/cache/validated/`): written when a control plane first
//! passes, never trusted when garbled, never needed (deleting it or making it unwritable costs
//! time only), and never part of what fsck, clones or bundles look at.

use crate::common::{Env, last_json};

fn first_json(r: &crate::common::Run) -> serde_json::Value {
    let out = r.out();
    serde_json::from_str(out.lines().next().expect("a line")).expect("JSON")
}

const EVENT: &str = "demo/CounterEvent@1";
const TICK: &str = r#""Tick""#;
const START: &str = r#"{"Start":{"target":9}}"#;

fn cache_files(env: &Env) -> Vec<String> {
    let dir = env.store().join("cache/validated");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The manifest of world `c`, from its genesis entry (the last line of its log).
fn manifest(env: &Env) -> String {
    let genesis = last_json(&env.run(&["--json", "log", "c"]).ok());
    genesis["entry"]["manifest"]["$link"]
        .as_str()
        .expect("the genesis names its manifest")
        .to_owned()
}

#[test]
fn the_cache_records_validated_manifests_and_a_bad_one_costs_only_time() {
    let env = Env::with_counter("0");
    let m = manifest(&env);
    assert_eq!(
        cache_files(&env),
        std::slice::from_ref(&m),
        "`world new` records its manifest"
    );
    let fact = env.store().join("cache/validated").join(&m);
    assert_eq!(
        std::fs::read_to_string(&fact).unwrap(),
        "aos validated control plane: validator 1\n"
    );
    env.run(&["send", "c", EVENT, START]).ok();
    // Garbled, it is a miss: the world validates again and the fact is written anew.
    std::fs::write(&fact, "aos validated control plane: validator 1").unwrap();
    env.run(&["send", "c", EVENT, TICK]).ok();
    assert_eq!(
        std::fs::read_to_string(&fact).unwrap(),
        "aos validated control plane: validator 1\n"
    );
    // Gone, or impossible to write, it is only work done again.
    std::fs::remove_dir_all(env.store().join("cache")).unwrap();
    std::fs::write(env.store().join("cache"), "in the way").unwrap();
    env.run(&["send", "c", EVENT, TICK]).ok();
    std::fs::remove_file(env.store().join("cache")).unwrap();
    env.run(&["send", "c", EVENT, TICK]).ok();
    assert_eq!(cache_files(&env), std::slice::from_ref(&m));
    // fsck, verify and a clone neither need it nor carry it.
    env.run(&["fsck"]).ok();
    env.run(&["verify", "c"]).ok();
    let other = Env::bare();
    other
        .run(&["-q", "clone", env.path().to_str().unwrap(), "."])
        .ok();
    assert!(
        !other.store().join("cache").exists(),
        "a clone does not copy the cache"
    );
    other.run(&["send", "c", EVENT, TICK]).ok();
    let newest = first_json(&other.run(&["--json", "log", "c"]).ok());
    assert_eq!(newest["height"], 5, "{newest}");
    assert_eq!(cache_files(&other), [m]);
}
