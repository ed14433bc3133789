//! Signing key seeds stay in the store that made them: fsck and gc leave them alone, and no
//! clone, fetch, push or bundle carries them.

use aos::store::Store;
use aos::store::StoreOptions;
use aos::store::keys::{FixedKeys, KeyName};

use crate::common::Env;

/// Every file below `dir`, as paths relative to it.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn seeds_never_leave_their_store() {
    let env = Env::with_counter("3");
    env.run(&["-q", "send", "c", "demo/CounterEvent@1", "\"Tick\""])
        .ok();
    let store = Store::open(&env.store()).unwrap();
    let seed = store.signing_seed(&KeyName::new("host").unwrap()).unwrap();
    assert_eq!(
        std::fs::read(env.store().join("keys/host")).unwrap(),
        seed.expose()
    );
    env.run(&["fsck"]).ok();
    env.run(&["-q", "gc", "--prune=now"]).ok();
    assert!(env.store().join("keys/host").is_file(), "gc keeps the seed");
    // A clone, a push and a bundle carry objects and refs, never keys.
    let other = Env::bare();
    let dst = other.path().join("copy");
    env.run(&[
        "-q",
        "clone",
        env.path().to_str().unwrap(),
        dst.to_str().unwrap(),
    ])
    .ok();
    let copied = files(&dst.join(".aos"));
    assert!(!copied.iter().any(|f| f.starts_with("keys")), "{copied:?}");
    env.run(&["-q", "bundle", "create", "c.bundle", "c"]).ok();
    let bundle = std::fs::read(env.path().join("c.bundle")).unwrap();
    assert!(
        !bundle.windows(32).any(|w| w == seed.expose()),
        "the seed's bytes are not in the bundle"
    );
    // Nothing in the clone holds the seed's bytes either.
    for f in &copied {
        let bytes = std::fs::read(dst.join(".aos").join(f)).unwrap();
        assert!(!bytes.windows(32).any(|w| w == seed.expose()), "{f}");
    }
}

#[test]
fn a_store_opened_with_fixed_keys_signs_reproducibly() {
    let env = Env::new();
    let opts = StoreOptions::default().with_keys(FixedKeys::from_text("keys test"));
    let a = Store::discover_with(env.path(), &opts).unwrap();
    let b = Store::discover_with(env.path(), &opts).unwrap();
    let name = KeyName::new("host").unwrap();
    assert_eq!(
        a.signing_seed(&name).unwrap(),
        b.signing_seed(&name).unwrap()
    );
    assert!(
        !env.store().join("keys").exists(),
        "fixed keys write nothing"
    );
}
