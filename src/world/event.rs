//! Reading an ingress event from JSON through a world's schemas.

use crate::air::name::Name;
use crate::air::types::Type;
use crate::air::value;
use crate::codec::json::Json;
use crate::codec::quote::bounded;
use crate::kernel::error::{InputError, WorldError};
use crate::kernel::machine::{EventIn, field};
use crate::kernel::program::Program;

/// Reads an ingress event for `prog` (see [`World::parse_event`](super::World::parse_event)).
///
/// # Errors
/// [`WorldError::Input`]: a bad or unknown schema, a value or key that does not fit, a key for
/// no keyed reducer or one that is not the event's.
pub fn parse_event(
    prog: &Program,
    schema: &str,
    value: &Json,
    key: Option<&Json>,
) -> Result<EventIn, WorldError> {
    let name = Name::new(schema).map_err(|source| InputError::SchemaName {
        schema: bounded(schema).into_owned(),
        source,
    })?;
    if !prog.schemas().contains_key(&name) {
        return Err(InputError::NoSchema {
            schema: bounded(schema).into_owned(),
        }
        .into());
    }
    let v = value::from_json(value, &Type::Ref(name), prog.schemas()).map_err(|source| {
        InputError::Value {
            schema: bounded(schema).into_owned(),
            source,
        }
    })?;
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
                return Err(InputError::KeyNotRouted {
                    schema: bounded(schema).into_owned(),
                }
                .into());
            };
            // A reducer with a key field is keyed, so it has a key type.
            let ty = red.key_ty.as_ref().ok_or(WorldError::Internal(
                "a reducer with a key field has no key type",
            ))?;
            let kv = value::from_json(k, ty, prog.schemas()).map_err(|source| InputError::Key {
                reducer: red.name.to_string(),
                source,
            })?;
            for (red, path) in &keyed {
                if field(&v, path) != Some(&kv) {
                    return Err(InputError::KeyMismatch {
                        field: path.join("."),
                        reducer: red.name.to_string(),
                    }
                    .into());
                }
            }
            Some(kv)
        }
    };
    Ok(EventIn {
        schema: schema.to_owned(),
        value: v,
        key,
        id: None,
    })
}
