//! Manifest switches: moving a machine to another program of its world, carrying each
//! reducer's state over by name.
//!
//! A reducer of the new manifest keeps the state of the old manifest's reducer of the same
//! name when its state type (the state schema and every schema it refers to) and its keys
//! (keyed or not, and the key type) are the same; a reducer whose state type or keys change
//! starts empty, and if it holds state the switch is refused ([`Refused::StateChange`]),
//! before anything is appended. Reducers the new manifest drops lose their state from the
//! snapshot on (it stays in history); new reducers start empty.

use std::collections::HashSet;
use std::sync::Arc;

use super::state::Slot;
use super::{Host, Machine};
use crate::air::name::Name;
use crate::air::types::Type;
use crate::kernel::entry::Body;
use crate::kernel::error::{Refused, StateChange, WorldError};
use crate::kernel::input::ManifestSwitch;
use crate::kernel::program::{Program, Programs, ReducerDef};
use crate::object::ObjectId;

/// Whether type `a` of program `pa` and type `b` of program `pb` are the same type: the same
/// structure, refs to schemas of the same name whose definitions are the same (a recursive
/// schema is the same when its definitions agree everywhere they unfold).
fn same_type(a: &Type, pa: &Program, b: &Type, pb: &Program, seen: &mut HashSet<Name>) -> bool {
    let same_fields = |x: &std::collections::BTreeMap<String, Type>,
                       y: &std::collections::BTreeMap<String, Type>,
                       seen: &mut HashSet<Name>| {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|((kx, tx), (ky, ty))| kx == ky && same_type(tx, pa, ty, pb, seen))
    };
    match (a, b) {
        (Type::Ref(x), Type::Ref(y)) => {
            if x != y {
                return false;
            }
            if !seen.insert(x.clone()) {
                return true;
            }
            match (pa.schemas().get(x), pb.schemas().get(y)) {
                (Some(tx), Some(ty)) => same_type(tx, pa, ty, pb, seen),
                _ => false,
            }
        }
        (Type::Record(x), Type::Record(y)) | (Type::Variant(x), Type::Variant(y)) => {
            same_fields(x, y, seen)
        }
        (Type::List(x), Type::List(y))
        | (Type::Set(x), Type::Set(y))
        | (Type::Option(x), Type::Option(y)) => same_type(x, pa, y, pb, seen),
        (Type::Map { key: kx, value: vx }, Type::Map { key: ky, value: vy }) => {
            kx == ky && same_type(vx, pa, vy, pb, seen)
        }
        (Type::Ref(_), _) | (_, Type::Ref(_)) => false,
        _ => a == b,
    }
}

/// What switching from reducer `old` of `from` to reducer `new` of `to` changes about its
/// state, if anything.
fn change(old: &ReducerDef, from: &Program, new: &ReducerDef, to: &Program) -> Option<StateChange> {
    let keys_same = match (&old.key_ty, &new.key_ty) {
        (None, None) => true,
        (Some(a), Some(b)) => same_type(a, from, b, to, &mut HashSet::new()),
        _ => false,
    };
    if !keys_same {
        return Some(StateChange::Keys);
    }
    if !same_type(&old.state_ty, from, &new.state_ty, to, &mut HashSet::new()) {
        return Some(StateChange::StateType);
    }
    None
}

/// The program of `manifest`: from the world's `programs`, else built from the control plane
/// the host reads (and then kept with the world's programs).
pub(super) fn program_of(
    programs: &Programs,
    manifest: &ObjectId,
    host: &dyn Host,
) -> Result<Arc<Program>, WorldError> {
    if let Some(p) = programs.get(manifest) {
        return Ok(p);
    }
    let air = host.control_plane(manifest)?;
    programs
        .add(air)
        .map_err(|e| WorldError::corrupt(*manifest, e.0))
}

impl Machine {
    /// Switches to the manifest `sw` names and appends its manifest entry, or refuses.
    pub(super) fn switch(
        &mut self,
        sw: &ManifestSwitch,
        host: &mut dyn Host,
    ) -> Result<(), WorldError> {
        if sw.manifest == self.prog.manifest() {
            return Err(Refused::SameManifest {
                manifest: sw.manifest,
            }
            .into());
        }
        let next = program_of(&self.programs, &sw.manifest, host)?;
        // For each reducer of the new program: the old reducer whose state it keeps.
        let mut keep: Vec<Option<usize>> = Vec::with_capacity(next.reducers.len());
        for new in &next.reducers {
            let Some(j) = self.prog.reducer_index(new.name.as_str()) else {
                keep.push(None);
                continue;
            };
            let old = &self.prog.reducers[j];
            match change(old, &self.prog, new, &next) {
                None => keep.push(Some(j)),
                Some(change) => {
                    if self.states.slots[j].holds_state(host)? {
                        return Err(Refused::StateChange {
                            manifest: sw.manifest,
                            reducer: new.name.as_str().to_owned(),
                            change,
                        }
                        .into());
                    }
                    keep.push(None);
                }
            }
        }
        self.push(
            Body::Manifest {
                manifest: sw.manifest,
            },
            host,
        )?;
        let mut old: Vec<Option<Slot>> = std::mem::take(&mut self.states.slots)
            .into_iter()
            .map(Some)
            .collect();
        self.states.slots = next
            .reducers
            .iter()
            .zip(keep)
            .map(|(r, k)| {
                k.and_then(|j| old[j].take())
                    .unwrap_or_else(|| Slot::empty(r.keyed()))
            })
            .collect();
        self.stepper.switch(&self.prog, &next);
        self.prog = next;
        Ok(())
    }
}
