//! Reading an ingress event from JSON through a world's schemas.

use crate::air::name::Name;
use crate::air::types::Type;
use crate::air::value;
use crate::codec::json::Json;
use crate::kernel::error::WorldError;
use crate::kernel::machine::{EventIn, field};
use crate::kernel::program::Program;

/// Reads an ingress event for `prog` (see [`World::parse_event`](super::World::parse_event)).
///
/// # Errors
/// [`WorldError::Input`].
pub fn parse_event(
    prog: &Program,
    schema: &str,
    value: &Json,
    key: Option<&Json>,
) -> Result<EventIn, WorldError> {
    let name = Name::new(schema)
        .map_err(|e| WorldError::Input(format!("invalid schema name `{schema}`: {e}")))?;
    if !prog.schemas().contains_key(&name) {
        return Err(WorldError::Input(format!(
            "the world has no schema `{schema}`"
        )));
    }
    let v = value::from_json(value, &Type::Ref(name), prog.schemas())
        .map_err(|e| WorldError::Input(format!("{schema}: {e}")))?;
    let key = match key {
        None => None,
        Some(k) => {
            let keyed: Vec<_> = prog
                .routes(schema)
                .iter()
                .filter_map(|r| {
                    let red = &prog.reducers[r.reducer];
                    Some((red, r.key_field.as_ref()?))
                })
                .collect();
            let Some((red, _)) = keyed.first() else {
                return Err(WorldError::Input(format!(
                    "--key: no keyed reducer receives {schema}"
                )));
            };
            let ty = red
                .key_ty
                .as_ref()
                .ok_or_else(|| WorldError::Input(format!("{} has no key schema", red.name)))?;
            let kv = value::from_json(k, ty, prog.schemas())
                .map_err(|e| WorldError::Input(format!("--key: {e}")))?;
            for (red, path) in &keyed {
                if field(&v, path) != Some(&kv) {
                    return Err(WorldError::Input(format!(
                        "--key does not match the event's `{}` (the key of {})",
                        path.join("."),
                        red.name
                    )));
                }
            }
            Some(kv)
        }
    };
    Ok(EventIn {
        schema: schema.to_owned(),
        value: v,
        key,
    })
}
