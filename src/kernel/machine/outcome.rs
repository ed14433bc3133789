//! Outcomes: checking what a step returned against the reducer's declarations and the
//! world's schemas, and canonicalizing it (state, emitted events, effect intents).

use super::state::StateVal;
use super::step::StepFault;
use crate::air::name::Name;
use crate::air::types::Type;
use crate::air::value;
use crate::codec::cbor;
use crate::kernel::entry;
use crate::kernel::envelope::decode_output;
use crate::kernel::input::EventIn;
use crate::kernel::program::{Program, ReducerDef};

/// What a successful step returned, canonical.
pub(super) struct Outcome {
    /// The new state (`None`: the step deleted it).
    pub state: Option<StateVal>,
    /// Effect intents, in order, each declared by the reducer and canonical for its kind's
    /// parameter schema.
    pub effects: Vec<entry::Effect>,
    /// Domain events emitted, in order, each canonical for its schema.
    pub events: Vec<EventIn>,
}

/// Checks a step's output `bytes` from reducer `red` and canonicalizes what it holds; an
/// error is a fault of the step (`bad-output`, `invalid-state`, `invalid-event`,
/// `invalid-effect`).
pub(super) fn check(bytes: &[u8], red: &ReducerDef, prog: &Program) -> Result<Outcome, StepFault> {
    let out = decode_output(bytes).map_err(|e| ("bad-output", e.to_string()))?;
    let schemas = prog.schemas();
    let state = match out.state {
        None => None,
        Some(b) => {
            let v =
                cbor::decode_lenient(&b).map_err(|e| ("invalid-state", format!("state: {e}")))?;
            let c = value::canonicalize(&v, &red.state_ty, schemas)
                .map_err(|e| ("invalid-state", format!("state: {e}")))?;
            Some(StateVal::new(cbor::encode(&c)))
        }
    };
    let mut events = Vec::with_capacity(out.domain_events.len());
    for (i, e) in out.domain_events.into_iter().enumerate() {
        let bad = |m: String| ("invalid-event", format!("domain_events/{i}: {m}"));
        let name = Name::new(&e.schema).map_err(|x| bad(x.to_string()))?;
        if !schemas.contains_key(&name) {
            return Err(bad(format!("unknown schema `{}`", e.schema)));
        }
        let v = cbor::decode_lenient(&e.value).map_err(|x| bad(x.to_string()))?;
        let value =
            value::canonicalize(&v, &Type::Ref(name), schemas).map_err(|x| bad(x.to_string()))?;
        let key = e
            .key
            .map(|k| cbor::decode_lenient(&k).map_err(|x| bad(format!("key: {x}"))))
            .transpose()?;
        events.push(EventIn {
            schema: e.schema,
            value,
            key,
            id: None,
        });
    }
    let mut effects = Vec::with_capacity(out.effects.len());
    for (i, e) in out.effects.into_iter().enumerate() {
        let bad = |m: String| ("invalid-effect", format!("effects/{i}: {m}"));
        if !red.effects_emitted.contains(&e.kind) {
            return Err(bad(format!(
                "{} does not declare effect `{}`",
                red.name, e.kind
            )));
        }
        let ty = prog
            .effect_params(&e.kind)
            .ok_or_else(|| bad(format!("unknown effect `{}`", e.kind)))?;
        let v = cbor::decode_lenient(&e.params_cbor).map_err(|x| bad(x.to_string()))?;
        let params = value::canonicalize(&v, ty, schemas).map_err(|x| bad(x.to_string()))?;
        if let Some(s) = &e.cap_slot
            && !red.cap_slots.contains(s)
        {
            return Err(bad(format!("{} has no cap slot `{s}`", red.name)));
        }
        effects.push(entry::Effect {
            kind: e.kind,
            params,
            cap_slot: e.cap_slot,
        });
    }
    Ok(Outcome {
        state,
        effects,
        events,
    })
}
