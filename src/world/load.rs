//! Loading what a world's history names: the control plane of a manifest (validated again)
//! and the world's programs.

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
use crate::store::Store;

/// Reads the control plane whose manifest is the `air` object `manifest` and validates it.
pub(crate) fn load_control_plane(
    store: &Store,
    manifest_id: &ObjectId,
) -> Result<Validated, WorldError> {
    let read_node = |id: &ObjectId| -> Result<Node, WorldError> {
        let bytes = read_kind(store, id, Kind::Air)?;
        let v = cbor::decode(&bytes).map_err(|e| WorldError::corrupt(*id, e.to_string()))?;
        crate::air::canon::node_from_value(&v).map_err(|e| WorldError::corrupt(*id, e.to_string()))
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
    let air = validate::validate_with(nodes, &|_| None).map_err(|d| {
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
    Ok(air)
}

/// Reads the genesis entry `genesis_id` and builds the world's programs (its genesis
/// program; the others are built as replays and switches need them).
pub(crate) fn load_programs(store: &Store, genesis_id: &ObjectId) -> Result<Programs, WorldError> {
    let g = read_entry(store, genesis_id)?;
    let Body::Genesis(genesis) = g.body else {
        return Err(WorldError::corrupt(*genesis_id, "not a genesis entry"));
    };
    let air = load_control_plane(store, &genesis.manifest)?;
    let prog = Program::new(air, *genesis_id, genesis)
        .map_err(|e| WorldError::corrupt(*genesis_id, e.0))?;
    Ok(Programs::new(prog))
}
