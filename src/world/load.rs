//! Loading what a world's history names: the control plane of a manifest (validated, or
//! rebuilt when the store's cache records that it passed) and the world's programs.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::air::load::Origin as AirOrigin;
use crate::air::nodes::{Node, NodeKind};
use crate::air::validate::{self, Validated};
use crate::codec::cbor;
use crate::kernel::entry::Body;
use crate::kernel::error::WorldError;
use crate::kernel::program::{Program, Programs};
use crate::kernel::replay::{read_entry, read_kind};
use crate::object::{Kind, ObjectId};
use crate::store::{Store, cache};

/// Whether loading may rely on the store's record that a control plane passed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trust {
    /// A manifest the cache records as validated (by this validator version) is rebuilt
    /// without checking the rules again.
    Cache,
    /// Every rule is checked again (`verify` trusts nothing but objects).
    Nothing,
}

/// Reads the control plane whose manifest is the `air` object `manifest` and validates it
/// (with `trust`, see [`Trust`]); a control plane that passes is recorded in the cache.
pub(crate) fn load_control_plane(
    store: &Store,
    manifest_id: &ObjectId,
    trust: Trust,
) -> Result<Validated, WorldError> {
    let cached = trust == Trust::Cache
        && cache::is_validated(store, manifest_id, validate::VALIDATOR_VERSION);
    // The stored values, by id: rebuilding a cached control plane takes them as they are.
    let mut known = HashMap::new();
    let mut read_node = |id: &ObjectId| -> Result<Node, WorldError> {
        let bytes = read_kind(store, id, Kind::Air)?;
        let v = cbor::decode(&bytes).map_err(|e| WorldError::corrupt(*id, e.to_string()))?;
        let node = crate::air::canon::node_from_value(&v)
            .map_err(|e| WorldError::corrupt(*id, e.to_string()))?;
        if cached {
            known.insert(*id, v);
        }
        Ok(node)
    };
    let origin = |id: &ObjectId| AirOrigin {
        file: PathBuf::from(id.to_string()),
        pointer: String::new(),
    };
    let manifest = read_node(manifest_id)?;
    let Node::Manifest(m) = &manifest else {
        return Err(WorldError::corrupt(*manifest_id, "not a manifest"));
    };
    let mut nodes = Vec::new();
    for kind in NodeKind::ALL {
        for r in m.refs(kind).unwrap_or(&[]) {
            let Some(h) = r.known_hash() else {
                return Err(WorldError::corrupt(
                    *manifest_id,
                    format!("the manifest lists {} without a hash", r.name),
                ));
            };
            nodes.push((read_node(&h)?, origin(&h)));
        }
    }
    nodes.push((manifest.clone(), origin(manifest_id)));
    let result = if cached {
        validate::rebuild(nodes, known)
    } else {
        validate::validate_with(nodes, &|_| None)
    };
    let air = result.map_err(|d| {
        WorldError::corrupt(
            *manifest_id,
            format!(
                "the stored control plane does not validate: {}",
                d.first().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })?;
    if air.manifest_id != *manifest_id {
        return Err(WorldError::corrupt(
            *manifest_id,
            format!("the stored control plane hashes to {}", air.manifest_id),
        ));
    }
    if !cached {
        cache::record_validated(store, manifest_id, validate::VALIDATOR_VERSION);
    }
    Ok(air)
}

/// Reads the genesis entry `genesis_id` and builds the world's programs (its genesis
/// program; the others are built as replays and switches need them).
pub(crate) fn load_programs(
    store: &Store,
    genesis_id: &ObjectId,
    trust: Trust,
) -> Result<Programs, WorldError> {
    let g = read_entry(store, genesis_id)?;
    let Body::Genesis(genesis) = g.body else {
        return Err(WorldError::corrupt(*genesis_id, "not a genesis entry"));
    };
    let air = load_control_plane(store, &genesis.manifest, trust)?;
    let prog = Program::new(air, *genesis_id, genesis)
        .map_err(|e| WorldError::corrupt(*genesis_id, e.0))?;
    Ok(Programs::new(prog))
}

#[cfg(test)]
mod tests {
    use crate::air::validate::checks_run_on_this_thread as checks;
    use crate::progress::NoProgress;
    use crate::store::{STORE_DIR, Store, cache};
    use crate::world::verify::{VerifyFrom, verify};
    use crate::world::{CreateOptions, World, create_world};

    fn world() -> (tempfile::TempDir, Store, crate::object::ObjectId) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(&dir.path().join(STORE_DIR)).unwrap();
        let e = crate::examples::example("counter").unwrap();
        let c = create_world(
            &store,
            "w",
            e.nodes().unwrap(),
            &e.wasm(),
            &CreateOptions::default(),
        )
        .unwrap();
        (dir, store, c.manifest)
    }

    #[test]
    fn opening_a_world_checks_its_rules_only_until_the_cache_records_them() {
        let (_d, store, manifest) = world();
        // `world new` validated it and recorded that.
        assert!(cache::is_validated(
            &store,
            &manifest,
            crate::air::validate::VALIDATOR_VERSION
        ));
        let before = checks();
        World::open(&store, "w").unwrap();
        World::open(&store, "w").unwrap();
        assert_eq!(checks(), before, "a cached manifest is not validated again");
        // Without the cache, the first open validates and records; the next does not.
        std::fs::remove_dir_all(store.root().join(cache::CACHE_DIR)).unwrap();
        World::open(&store, "w").unwrap();
        assert_eq!(checks(), before + 1);
        World::open(&store, "w").unwrap();
        assert_eq!(checks(), before + 1);
        // A record for another validator version does not count.
        let p = store
            .root()
            .join(cache::CACHE_DIR)
            .join("validated")
            .join(manifest.to_string());
        std::fs::write(&p, "aos validated control plane: validator 999\n").unwrap();
        World::open(&store, "w").unwrap();
        assert_eq!(checks(), before + 2);
    }

    #[test]
    fn trusting_nothing_checks_every_rule_whatever_the_cache_says() {
        // `verify` loads with `Trust::Nothing` (its scratch host and its programs).
        let (_d, store, manifest) = world();
        let before = checks();
        super::load_control_plane(&store, &manifest, super::Trust::Nothing).unwrap();
        assert_eq!(checks(), before + 1);
        super::load_control_plane(&store, &manifest, super::Trust::Cache).unwrap();
        assert_eq!(checks(), before + 1);
        verify(&store, "w", &VerifyFrom::Genesis, &NoProgress).unwrap();
    }
}
