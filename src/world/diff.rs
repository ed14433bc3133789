//! Comparing two worlds (or two points of one): their histories, control planes and states.
//!
//! Every comparison is structural and skips what the ids already show to be equal: the
//! histories are read back only to their common ancestor, equal manifests are not opened,
//! equal plain states are not decoded, and cell maps are compared node by node, descending
//! only into subtrees whose ids differ — so the cost follows the differences, not the size of
//! the worlds.

use crate::air::diff::{AirDiff, canonical_nodes, diff_nodes};
use crate::air::types::Type;
use crate::air::value;
use crate::codec::cbor;
use crate::codec::diff::{Change, diff as json_diff};
use crate::codec::json::Json;
use crate::kernel::error::WorldError;
use crate::kernel::machine::{Host, HostNodes};
use crate::kernel::mapnode::MerkleMap;
use crate::kernel::program::Program;
use crate::kernel::snapshot::Snapshot;
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::store::Store;
use crate::world::history::{Ancestry, Rev, common_ancestor};
use crate::world::{Scratch, World};

/// What to compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Counts only: no field-level differences (values are not decoded).
    pub stat: bool,
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// As the user named it.
    pub spec: String,
    /// The entry compared.
    pub head: ObjectId,
    /// Its height.
    pub height: u64,
    /// The world's manifest (its control plane's root).
    pub manifest: ObjectId,
}

/// How something differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Only in the second side.
    Added,
    /// Only in the first side.
    Removed,
    /// In both, different.
    Changed,
}

impl Status {
    /// `added`, `removed` or `changed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Removed => "removed",
            Self::Changed => "changed",
        }
    }
}

/// A difference in one reducer's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducerDiff {
    /// The reducer.
    pub reducer: String,
    /// Whether it is keyed (its state is a map of cells).
    pub keyed: bool,
    /// `Added`/`Removed`: the reducer (or, for a plain reducer, its state) exists on one side
    /// only; `Changed`: both have it and it differs.
    pub status: Status,
    /// For a plain reducer, the differences of its state in the sugar lens (empty with
    /// [`DiffOptions::stat`]).
    pub fields: Vec<Change>,
    /// For a keyed reducer, each cell that differs.
    pub cells: Vec<CellDiff>,
}

/// A difference in one cell of a keyed reducer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellDiff {
    /// The cell's key, in the sugar lens.
    pub key: Json,
    /// Added, removed or changed.
    pub status: Status,
    /// The differences of the cell's state (empty with [`DiffOptions::stat`]).
    pub fields: Vec<Change>,
}

/// Everything that differs between two sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldDiff {
    /// The first side.
    pub a: Side,
    /// The second side.
    pub b: Side,
    /// How the histories relate.
    pub history: Ancestry,
    /// The control planes' node-level differences (empty when the manifests are equal).
    pub manifest: AirDiff,
    /// Per reducer whose state differs, in name order.
    pub state: Vec<ReducerDiff>,
}

impl WorldDiff {
    /// Whether the two sides are the same point of the same history (then nothing else can
    /// differ).
    #[must_use]
    pub fn is_equal(&self) -> bool {
        self.a.head == self.b.head
    }

    /// Whether the states are equal (whatever the histories).
    #[must_use]
    pub fn same_state(&self) -> bool {
        self.state.is_empty()
    }
}

/// A side's opened world and its state's roots.
struct Opened<'s> {
    world: World<'s>,
    summary: Snapshot,
}

/// Compares `a` with `b`.
///
/// # Errors
/// Resolution errors (unknown world, height beyond the head, not an entry), store errors,
/// broken chains.
pub fn diff(
    store: &Store,
    a: &Rev,
    b: &Rev,
    a_spec: &str,
    b_spec: &str,
    opts: DiffOptions,
    progress: &dyn Progress,
) -> Result<WorldDiff, WorldError> {
    let (ha, hta) = a.resolve(store)?;
    let (hb, htb) = b.resolve(store)?;
    progress.start("reading histories", None);
    let history = common_ancestor(store, &ha, &hb, progress)?;
    progress.finish();
    let mut scratch = Scratch::new(store);
    let mut open = |head: ObjectId, rev: &Rev| -> Result<Opened<'_>, WorldError> {
        // A world's checkpoint only helps if it is of this very head.
        let hint = match rev {
            Rev::World(w) => Some(w.as_str()),
            _ => None,
        };
        let mut world = World::view(store, head, hint)?;
        let summary = world.summary(&mut scratch)?;
        Ok(Opened { world, summary })
    };
    progress.start("opening", None);
    let oa = open(ha, a)?;
    let ob = open(hb, b)?;
    progress.finish();
    let pa = oa.world.program();
    let pb = ob.world.program();
    let side = |spec: &str, head, height, p: &Program| Side {
        spec: spec.to_owned(),
        head,
        height,
        manifest: p.air.manifest_id,
    };
    let (sa, sb) = (side(a_spec, ha, hta, pa), side(b_spec, hb, htb, pb));
    let manifest = if sa.manifest == sb.manifest {
        AirDiff::default()
    } else {
        diff_nodes(&canonical_nodes(&pa.air), &canonical_nodes(&pb.air))
    };
    let state = if ha == hb {
        Vec::new()
    } else {
        diff_states(&scratch, &oa, &ob, opts, progress)?
    };
    Ok(WorldDiff {
        a: sa,
        b: sb,
        history,
        manifest,
        state,
    })
}

/// What one side says about a reducer: its state type, key type and state root.
struct ReducerSide<'p> {
    state_ty: &'p Type,
    key_ty: Option<&'p Type>,
    prog: &'p Program,
    /// A plain reducer's state, or a keyed one's cell-map root.
    root: Option<ObjectId>,
}

fn sides<'p>(o: &'p Opened<'_>) -> std::collections::BTreeMap<String, ReducerSide<'p>> {
    let prog = o.world.program();
    let mut m = std::collections::BTreeMap::new();
    for r in &prog.reducers {
        let name = r.name.as_str().to_owned();
        let root = if r.keyed() {
            o.summary
                .cells
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, id)| *id)
        } else {
            o.summary
                .states
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, id)| *id)
        };
        m.insert(
            name,
            ReducerSide {
                state_ty: &r.state_ty,
                key_ty: r.key_ty.as_ref(),
                prog,
                root,
            },
        );
    }
    m
}

fn diff_states(
    scratch: &Scratch<'_>,
    oa: &Opened<'_>,
    ob: &Opened<'_>,
    opts: DiffOptions,
    progress: &dyn Progress,
) -> Result<Vec<ReducerDiff>, WorldError> {
    let (ma, mb) = (sides(oa), sides(ob));
    let mut names: Vec<&String> = ma.keys().chain(mb.keys()).collect();
    names.sort();
    names.dedup();
    progress.start("comparing states", Some(names.len() as u64));
    let mut out = Vec::new();
    for name in names {
        let (ra, rb) = (ma.get(name), mb.get(name));
        let keyed = ra.or(rb).is_some_and(|r| r.key_ty.is_some());
        let d = if keyed {
            diff_keyed(scratch, name, ra, rb, opts)?
        } else {
            diff_plain(scratch, name, ra, rb, opts)?
        };
        out.extend(d);
        progress.advance(1);
    }
    progress.finish();
    Ok(out)
}

/// A state value in the sugar lens of its reducer's type (the tagged debug form if it does not
/// fit, which a verified world never shows).
fn render(
    scratch: &Scratch<'_>,
    id: &ObjectId,
    ty: &Type,
    prog: &Program,
) -> Result<Json, WorldError> {
    let bytes = scratch.value(id)?;
    let v = cbor::decode(&bytes).map_err(|e| WorldError::corrupt(*id, e.to_string()))?;
    Ok(value::to_sugar(&v, ty, prog.schemas()).unwrap_or_else(|_| {
        crate::codec::json::parse_json(&crate::codec::json::to_json(&v)).unwrap_or(Json::Null)
    }))
}

/// The state `s` as side `r` renders it, if both exist.
fn shown(
    scratch: &Scratch<'_>,
    r: Option<&ReducerSide<'_>>,
    s: Option<ObjectId>,
) -> Result<Option<Json>, WorldError> {
    match (r, s) {
        (Some(r), Some(id)) => render(scratch, &id, r.state_ty, r.prog).map(Some),
        _ => Ok(None),
    }
}

/// The field differences between two optional rendered values.
fn fields(a: Option<Json>, b: Option<Json>) -> Vec<Change> {
    match (a, b) {
        (Some(a), Some(b)) => json_diff(&a, &b),
        (None, Some(b)) => vec![Change::Added {
            pointer: String::new(),
            new: b,
        }],
        (Some(a), None) => vec![Change::Removed {
            pointer: String::new(),
            old: a,
        }],
        (None, None) => Vec::new(),
    }
}

fn status(a: bool, b: bool) -> Status {
    match (a, b) {
        (false, true) => Status::Added,
        (true, false) => Status::Removed,
        _ => Status::Changed,
    }
}

fn diff_plain(
    scratch: &Scratch<'_>,
    name: &str,
    ra: Option<&ReducerSide<'_>>,
    rb: Option<&ReducerSide<'_>>,
    opts: DiffOptions,
) -> Result<Option<ReducerDiff>, WorldError> {
    let (sa, sb) = (ra.and_then(|r| r.root), rb.and_then(|r| r.root));
    let same_type = matches!((ra, rb), (Some(x), Some(y)) if x.state_ty == y.state_ty);
    if sa == sb && (same_type || ra.is_none() == rb.is_none() && sa.is_none()) {
        return Ok(None);
    }
    let st = if ra.is_some() && rb.is_some() {
        status(sa.is_some(), sb.is_some())
    } else {
        status(ra.is_some(), rb.is_some())
    };
    let fields = if opts.stat {
        Vec::new()
    } else {
        fields(shown(scratch, ra, sa)?, shown(scratch, rb, sb)?)
    };
    Ok(Some(ReducerDiff {
        reducer: name.to_owned(),
        keyed: false,
        status: st,
        fields,
        cells: Vec::new(),
    }))
}

fn diff_keyed(
    scratch: &Scratch<'_>,
    name: &str,
    ra: Option<&ReducerSide<'_>>,
    rb: Option<&ReducerSide<'_>>,
    opts: DiffOptions,
) -> Result<Option<ReducerDiff>, WorldError> {
    let empty = MerkleMap::<HostNodes<'_>>::empty_root_id();
    let root = |r: Option<&ReducerSide<'_>>| r.and_then(|r| r.root).unwrap_or(empty);
    let (xa, xb) = (root(ra), root(rb));
    if xa == xb && ra.is_some() == rb.is_some() {
        return Ok(None);
    }
    let map = MerkleMap::new(HostNodes(scratch));
    let changes = map.diff(&xa, &xb)?;
    // Keys render through the key type of whichever side has the cell.
    let either = ra.or(rb);
    let mut cells = Vec::with_capacity(changes.len());
    for (key, va, vb) in changes {
        // The map's nodes were checked as they were read, so a key is canonical CBOR unless the
        // map under one of the two roots is damaged.
        let k = cbor::decode(&key).map_err(|e| {
            let root = if va.is_some() { xa } else { xb };
            WorldError::corrupt(
                root,
                format!("{name}: a cell key is not canonical CBOR: {e}"),
            )
        })?;
        let key_json = match either.and_then(|r| r.key_ty.map(|t| (t, r.prog))) {
            Some((t, p)) => value::to_sugar(&k, t, p.schemas()).ok(),
            None => None,
        }
        .unwrap_or_else(|| {
            crate::codec::json::parse_json(&crate::codec::json::to_json(&k)).unwrap_or(Json::Null)
        });
        let fields = if opts.stat {
            Vec::new()
        } else {
            fields(shown(scratch, ra, va)?, shown(scratch, rb, vb)?)
        };
        cells.push(CellDiff {
            key: key_json,
            status: status(va.is_some(), vb.is_some()),
            fields,
        });
    }
    let st = if ra.is_some() && rb.is_some() {
        Status::Changed
    } else {
        status(ra.is_some(), rb.is_some())
    };
    Ok(Some(ReducerDiff {
        reducer: name.to_owned(),
        keyed: true,
        status: st,
        fields: Vec::new(),
        cells,
    }))
}
