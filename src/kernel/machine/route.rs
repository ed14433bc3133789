//! Routing: which reducers, and which of a keyed reducer's cells, receive an event.

use crate::codec::cbor::{self, Value};
use crate::kernel::input::EventIn;
use crate::kernel::program::Program;

/// One delivery of an event: a reducer and, for a keyed one, the cell.
pub(super) struct Target {
    /// Index of the reducer in the program.
    pub reducer: usize,
    /// The cell, for a keyed reducer.
    pub cell: Option<Cell>,
}

/// A keyed reducer's cell: its key and the key's canonical encoding.
pub(super) struct Cell {
    pub key: Value,
    pub bytes: Vec<u8>,
}

/// A delivery that fails before the reducer runs, or a step that fails: it becomes a fault
/// entry after the event's entry.
pub(super) struct Failure {
    /// Index of the reducer in the program.
    pub reducer: usize,
    /// The cell's key, for a keyed reducer.
    pub cell: Option<Value>,
    /// The fault code (objects-spec §12).
    pub code: &'static str,
    /// What happened, identical on every machine.
    pub message: String,
}

/// The value at the dotted record path `path` of `v`.
pub(crate) fn field<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for p in path {
        let Value::Map(m) = cur else { return None };
        cur = m.get_text(p)?;
    }
    Some(cur)
}

/// The deliveries of `ev` under `prog`, in manifest routing order; a route to a keyed reducer
/// whose key field the event lacks is a `no-key` failure.
pub(super) fn targets<'a>(
    prog: &'a Program,
    ev: &'a EventIn,
) -> impl Iterator<Item = Result<Target, Failure>> + 'a {
    prog.routes(&ev.schema).iter().map(|route| {
        let cell = match &route.key_field {
            None => None,
            Some(path) => match field(&ev.value, path) {
                Some(k) => Some(Cell {
                    key: k.clone(),
                    bytes: cbor::encode(k),
                }),
                None => {
                    return Err(Failure {
                        reducer: route.reducer,
                        cell: None,
                        code: "no-key",
                        message: format!("the event has no key field `{}`", path.join(".")),
                    });
                }
            },
        };
        Ok(Target {
            reducer: route.reducer,
            cell,
        })
    })
}
