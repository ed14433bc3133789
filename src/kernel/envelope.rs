//! The reducer envelope: the CBOR maps passed into and out of a reducer's `step` export
//! (AIR v1 §5).
//!
//! The input envelope is written by the kernel, so [`encode_input`] emits canonical CBOR
//! directly, without building a [`Value`] tree: it runs once per event on the hot path.
//!
//! The output envelope is written by guest code with whatever CBOR library it links, so
//! [`decode_output`] reads it with [`cbor::decode_lenient`] (map keys in any order,
//! non-shortest heads, indefinite lengths) and then checks its shape strictly: known keys
//! only, each with the right type. Absent `domain_events` and `effects` mean empty lists, an
//! absent `ann` means null; `state` must always be present.

use crate::codec::cbor::{self, Value};
use crate::codec::shape::{Fields, MapEncoder, Member, Path, Problem, ShapeError};

/// The input to one `step` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepInput<'a> {
    /// The reducer's (or, in cell mode, the cell's) current state; `None` is null.
    pub state: Option<&'a [u8]>,
    /// The schema name of the event.
    pub schema: &'a str,
    /// The event's value, canonical CBOR.
    pub value: &'a [u8],
    /// The event's key, if it carries one; `None` omits `event.key`.
    pub event_key: Option<&'a [u8]>,
    /// The cell key in cell mode; `None` writes `ctx.key` as null.
    pub ctx_key: Option<&'a [u8]>,
    /// Whether the reducer runs as a keyed reducer, one state per cell.
    pub cell_mode: bool,
}

/// Appends the canonical CBOR encoding of the input envelope to `out`.
///
/// `out` is not cleared: the envelope is appended after whatever it already holds.
///
/// The map's keys are written in canonical order (shorter encodings first, then bytewise):
/// `ctx` < `event` < `state` < `version`; inside `event`, `key` < `value` < `schema`; inside
/// `ctx`, `key` < `cell_mode`.
pub fn encode_input(input: &StepInput<'_>, out: &mut Vec<u8>) {
    out.reserve(
        64 + input.schema.len()
            + input.value.len()
            + input.state.map_or(0, <[u8]>::len)
            + input.event_key.map_or(0, <[u8]>::len)
            + input.ctx_key.map_or(0, <[u8]>::len),
    );
    let mut m = MapEncoder::new(out, 4);
    let mut ctx = m.map("ctx", 2);
    ctx.opt_bytes("key", input.ctx_key)
        .bool("cell_mode", input.cell_mode);
    ctx.finish();
    let mut event = m.map("event", 2 + u64::from(input.event_key.is_some()));
    if let Some(key) = input.event_key {
        event.bytes("key", key);
    }
    event
        .bytes("value", input.value)
        .text("schema", input.schema);
    event.finish();
    m.opt_bytes("state", input.state).nat("version", 1);
    m.finish();
}

/// What one `step` call returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepOutput {
    /// The new state; `None` (null) deletes the state, or in cell mode the cell.
    pub state: Option<Vec<u8>>,
    /// Domain events the reducer emitted, in order.
    pub domain_events: Vec<EmittedEvent>,
    /// Effects the reducer requested, in order.
    pub effects: Vec<EmittedEffect>,
    /// The reducer's annotation, if any.
    pub ann: Option<Vec<u8>>,
}

/// One domain event in a reducer's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmittedEvent {
    /// The event's schema name (never empty).
    pub schema: String,
    /// The event's value, CBOR as the reducer wrote it.
    pub value: Vec<u8>,
    /// The event's key, if any.
    pub key: Option<Vec<u8>>,
}

/// One effect request in a reducer's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmittedEffect {
    /// The effect kind (never empty).
    pub kind: String,
    /// The effect's parameters, CBOR as the reducer wrote them.
    pub params_cbor: Vec<u8>,
    /// The capability slot the effect is requested under, if any.
    pub cap_slot: Option<String>,
}

/// Why a reducer's output is not a valid output envelope, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("reducer output{}: {message}", at(path))]
pub struct OutputError {
    /// Where in the envelope, as a JSON pointer (`/domain_events/2/schema`); empty for the
    /// envelope as a whole.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" at {path}")
    }
}

/// Shape problems in the envelope's words (recorded in fault entries, so they never change).
impl From<ShapeError> for OutputError {
    fn from(e: ShapeError) -> Self {
        let message = match e.problem {
            Problem::NotAMap { found, .. } => format!("expected a map, found {found}"),
            Problem::NonTextKey { found, .. } => format!("map key is {found}, not text"),
            Problem::Missing { key, .. } => format!("missing `{key}`"),
            Problem::Unknown { keys, .. } => format!("unknown key `{}`", keys.join("`, `")),
            p => p.to_string(),
        };
        Self {
            path: e.path,
            message,
        }
    }
}

/// Decodes a reducer's output bytes leniently ([`cbor::decode_lenient`]), checking the
/// envelope shape.
///
/// # Errors
/// [`OutputError`] naming the path of the first problem, in the order the maps hold their
/// members: bytes that are not CBOR of the data model (path empty), a top level that is not a
/// map, a missing `state`, an unknown or non-text key, a member of the wrong type, or an
/// empty `schema` / `kind`.
pub fn decode_output(bytes: &[u8]) -> Result<StepOutput, OutputError> {
    let value = cbor::decode_lenient(bytes).map_err(|e| OutputError {
        path: String::new(),
        message: e.to_string(),
    })?;
    Ok(output(&value)?)
}

/// An envelope value being read, and where it sits.
type Item<'v, 'p> = Member<'v, 'p, Value>;

fn output(value: &Value) -> Result<StepOutput, ShapeError> {
    let mut f = Fields::open(value, &Path::ROOT, "the output")?;
    let mut state = None;
    let mut out = StepOutput::default();
    f.each(|key, m| {
        match key {
            "state" => state = Some(opt_bytes_of(&m)?),
            "ann" => out.ann = opt_bytes_of(&m)?,
            "domain_events" => out.domain_events = opt_list(&m, event)?,
            "effects" => out.effects = opt_list(&m, effect)?,
            _ => return Ok(false),
        }
        Ok::<_, ShapeError>(true)
    })?;
    out.state = state.ok_or_else(|| f.missing("state"))?;
    Ok(out)
}

fn event(m: Item<'_, '_>) -> Result<EmittedEvent, ShapeError> {
    let mut f = m.fields("an event")?;
    let (mut schema, mut value, mut key) = (None, None, None);
    f.each(|k, m| {
        match k {
            "schema" => schema = Some(nonempty_text_of(&m)?),
            "value" => value = Some(m.bytes()?.to_vec()),
            "key" => key = opt_bytes_of(&m)?,
            _ => return Ok(false),
        }
        Ok::<_, ShapeError>(true)
    })?;
    Ok(EmittedEvent {
        schema: schema.ok_or_else(|| f.missing("schema"))?,
        value: value.ok_or_else(|| f.missing("value"))?,
        key,
    })
}

fn effect(m: Item<'_, '_>) -> Result<EmittedEffect, ShapeError> {
    let mut f = m.fields("an effect")?;
    let (mut kind, mut params, mut cap_slot) = (None, None, None);
    f.each(|k, m| {
        match k {
            "kind" => kind = Some(nonempty_text_of(&m)?),
            "params_cbor" => params = Some(m.bytes()?.to_vec()),
            "cap_slot" => {
                cap_slot = m
                    .or_null(|m| m.text().map(str::to_owned))
                    .map_err(|_| m.wrong_type("text or null"))?;
            }
            _ => return Ok(false),
        }
        Ok::<_, ShapeError>(true)
    })?;
    Ok(EmittedEffect {
        kind: kind.ok_or_else(|| f.missing("kind"))?,
        params_cbor: params.ok_or_else(|| f.missing("params_cbor"))?,
        cap_slot,
    })
}

/// The items of the list `m` (null: none), each read with `item`.
fn opt_list<U>(
    m: &Item<'_, '_>,
    item: impl Fn(Item<'_, '_>) -> Result<U, ShapeError>,
) -> Result<Vec<U>, ShapeError> {
    match m.value {
        Value::Null => Ok(Vec::new()),
        Value::Array(_) => m.items()?.map(item).collect(),
        _ => Err(m.wrong_type("an array or null")),
    }
}

fn opt_bytes_of(m: &Item<'_, '_>) -> Result<Option<Vec<u8>>, ShapeError> {
    m.or_null(|m| m.bytes().map(<[u8]>::to_vec))
        .map_err(|_| m.wrong_type("a byte string or null"))
}

fn nonempty_text_of(m: &Item<'_, '_>) -> Result<String, ShapeError> {
    match m.text()? {
        "" => Err(m.invalid("must not be empty")),
        t => Ok(t.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::cbor::Map;
    use proptest::prelude::*;

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn bytes_v(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }

    fn opt(b: Option<&[u8]>) -> Value {
        b.map_or(Value::Null, bytes_v)
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            Map::from_entries(entries.into_iter().map(|(k, v)| (text(k), v)).collect()).unwrap(),
        )
    }

    /// The input envelope built the slow way, as a value tree.
    fn input_value(i: &StepInput<'_>) -> Value {
        let mut event = vec![("schema", text(i.schema)), ("value", bytes_v(i.value))];
        if let Some(k) = i.event_key {
            event.push(("key", bytes_v(k)));
        }
        map(vec![
            ("version", 1u64.into()),
            ("state", opt(i.state)),
            ("event", map(event)),
            (
                "ctx",
                map(vec![
                    ("key", opt(i.ctx_key)),
                    ("cell_mode", i.cell_mode.into()),
                ]),
            ),
        ])
    }

    fn output_value(o: &StepOutput) -> Value {
        let events = o
            .domain_events
            .iter()
            .map(|e| {
                let mut m = vec![("schema", text(&e.schema)), ("value", bytes_v(&e.value))];
                if let Some(k) = &e.key {
                    m.push(("key", bytes_v(k)));
                }
                map(m)
            })
            .collect();
        let effects = o
            .effects
            .iter()
            .map(|e| {
                map(vec![
                    ("kind", text(&e.kind)),
                    ("params_cbor", bytes_v(&e.params_cbor)),
                    ("cap_slot", e.cap_slot.as_deref().map_or(Value::Null, text)),
                ])
            })
            .collect();
        map(vec![
            ("state", opt(o.state.as_deref())),
            ("domain_events", Value::Array(events)),
            ("effects", Value::Array(effects)),
            ("ann", opt(o.ann.as_deref())),
        ])
    }

    #[test]
    fn encode_input_is_the_canonical_encoding() {
        let big = vec![7u8; 300];
        let long_schema = "s".repeat(70);
        for state in [None, Some(&b"\xa1\x61n\x01"[..]), Some(&big[..])] {
            for event_key in [None, Some(&b"k1"[..])] {
                for ctx_key in [None, Some(&b"cell"[..]), Some(&big[..])] {
                    for cell_mode in [false, true] {
                        for schema in ["demo/Increment@1", "", long_schema.as_str()] {
                            let input = StepInput {
                                state,
                                schema,
                                value: b"\xa0",
                                event_key,
                                ctx_key,
                                cell_mode,
                            };
                            let mut out = vec![0xee];
                            encode_input(&input, &mut out);
                            assert_eq!(out[0], 0xee, "appends");
                            let want = cbor::encode(&input_value(&input));
                            assert_eq!(&out[1..], &want[..], "{input:?}");
                            assert_eq!(cbor::decode(&out[1..]), Ok(input_value(&input)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn output_round_trips() {
        let full = StepOutput {
            state: Some(b"\x01".to_vec()),
            domain_events: vec![
                EmittedEvent {
                    schema: "demo/Done@1".into(),
                    value: b"\xa0".to_vec(),
                    key: None,
                },
                EmittedEvent {
                    schema: "demo/Keyed@1".into(),
                    value: vec![],
                    key: Some(b"k".to_vec()),
                },
            ],
            effects: vec![EmittedEffect {
                kind: "http.request".into(),
                params_cbor: b"\xa0".to_vec(),
                cap_slot: Some("web".into()),
            }],
            ann: Some(b"note".to_vec()),
        };
        assert_eq!(decode_output(&cbor::encode(&output_value(&full))), Ok(full));
        // Only `state` is required; null lists are empty.
        let minimal = StepOutput::default();
        assert_eq!(
            decode_output(&cbor::encode(&map(vec![("state", Value::Null)]))),
            Ok(minimal.clone())
        );
        let nulls = map(vec![
            ("state", Value::Null),
            ("domain_events", Value::Null),
            ("effects", Value::Null),
            ("ann", Value::Null),
        ]);
        assert_eq!(decode_output(&cbor::encode(&nulls)), Ok(minimal));
        // Non-canonical, as serde writes it: fields in declaration order, indefinite arrays.
        let serde = b"\xa4\x65state\x41\x02\x6ddomain_events\x9f\xff\x67effects\x80\x63ann\xf6";
        assert_eq!(
            decode_output(serde),
            Ok(StepOutput {
                state: Some(vec![2]),
                ..StepOutput::default()
            })
        );
    }

    fn err(v: &Value) -> (String, String) {
        let e = decode_output(&cbor::encode(v)).unwrap_err();
        assert!(!e.to_string().is_empty());
        (e.path, e.message)
    }

    fn path_of(v: &Value) -> String {
        err(v).0
    }

    #[test]
    fn every_shape_error_names_its_path() {
        let ev = |m: Vec<(&str, Value)>| {
            map(vec![
                ("state", Value::Null),
                (
                    "domain_events",
                    Value::Array(vec![
                        map(vec![("schema", text("a")), ("value", bytes_v(b""))]),
                        map(m),
                    ]),
                ),
            ])
        };
        let ef = |m: Vec<(&str, Value)>| {
            map(vec![
                ("state", Value::Null),
                ("effects", Value::Array(vec![map(m)])),
            ])
        };
        let ok_ev = || vec![("schema", text("s")), ("value", bytes_v(b""))];
        let ok_ef = || vec![("kind", text("k")), ("params_cbor", bytes_v(b""))];

        let e = decode_output(b"\xff").unwrap_err();
        assert_eq!(e.path, "");
        assert!(e.message.contains("indefinite-length"), "{e}");
        assert_eq!(
            err(&Value::Array(vec![])),
            ("".into(), "expected a map, found an array".into())
        );
        assert_eq!(err(&map(vec![])), ("".into(), "missing `state`".into()));
        assert_eq!(
            err(&map(vec![("state", Value::Null), ("extra", Value::Null)])),
            ("".into(), "unknown key `extra`".into())
        );
        let int_key = Value::Map(Map::from_entries(vec![(1u64.into(), Value::Null)]).unwrap());
        assert_eq!(
            err(&int_key),
            ("".into(), "map key is an integer, not text".into())
        );
        // The first problem in the map's (canonical) order wins: `ann` < `extra` < `state`.
        assert_eq!(
            err(&map(vec![("state", 1u64.into()), ("extra", Value::Null)])),
            ("".into(), "unknown key `extra`".into())
        );
        assert_eq!(
            err(&map(vec![("state", 1u64.into()), ("ann", 1u64.into())])),
            (
                "/ann".into(),
                "expected a byte string or null, found an integer".into()
            )
        );
        assert_eq!(path_of(&map(vec![("state", 1u64.into())])), "/state");
        assert_eq!(
            path_of(&map(vec![("state", Value::Null), ("ann", text("x"))])),
            "/ann"
        );
        assert_eq!(
            path_of(&map(vec![
                ("state", Value::Null),
                ("domain_events", Value::Map(Map::new()))
            ])),
            "/domain_events"
        );
        assert_eq!(
            path_of(&map(vec![("state", Value::Null), ("effects", 0u64.into())])),
            "/effects"
        );
        assert_eq!(
            path_of(&map(vec![
                ("state", Value::Null),
                ("domain_events", Value::Array(vec![Value::Null]))
            ])),
            "/domain_events/0"
        );
        assert_eq!(
            err(&ev(vec![("value", bytes_v(b""))])),
            ("/domain_events/1".into(), "missing `schema`".into())
        );
        assert_eq!(
            err(&ev(vec![("schema", text("s"))])),
            ("/domain_events/1".into(), "missing `value`".into())
        );
        assert_eq!(
            err(&ev(vec![("schema", text("")), ("value", bytes_v(b""))])).0,
            "/domain_events/1/schema"
        );
        assert_eq!(
            err(&ev(vec![
                ("schema", bytes_v(b"s")),
                ("value", bytes_v(b""))
            ]))
            .0,
            "/domain_events/1/schema"
        );
        assert_eq!(
            err(&ev(vec![("schema", text("s")), ("value", text("v"))])).0,
            "/domain_events/1/value"
        );
        let mut bad_key = ok_ev();
        bad_key.push(("key", text("k")));
        assert_eq!(err(&ev(bad_key)).0, "/domain_events/1/key");
        let mut unknown = ok_ev();
        unknown.push(("cap_slot", Value::Null));
        assert_eq!(
            err(&ev(unknown)),
            ("/domain_events/1".into(), "unknown key `cap_slot`".into())
        );
        let mut null_key = ok_ev();
        null_key.push(("key", Value::Null));
        assert!(decode_output(&cbor::encode(&ev(null_key))).is_ok());

        assert_eq!(
            err(&ef(vec![("params_cbor", bytes_v(b""))])),
            ("/effects/0".into(), "missing `kind`".into())
        );
        assert_eq!(
            err(&ef(vec![("kind", text("k"))])),
            ("/effects/0".into(), "missing `params_cbor`".into())
        );
        assert_eq!(
            err(&ef(vec![("kind", text("")), ("params_cbor", bytes_v(b""))])).0,
            "/effects/0/kind"
        );
        assert_eq!(
            err(&ef(vec![("kind", text("k")), ("params_cbor", Value::Null)])).0,
            "/effects/0/params_cbor"
        );
        let mut slot = ok_ef();
        slot.push(("cap_slot", bytes_v(b"x")));
        assert_eq!(err(&ef(slot)).0, "/effects/0/cap_slot");
        let mut unknown = ok_ef();
        unknown.push(("key", Value::Null));
        assert_eq!(err(&ef(unknown)).0, "/effects/0");
        assert_eq!(err(&ef(vec![])).0, "/effects/0");
        let e = OutputError {
            path: "/a".into(),
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "reducer output at /a: m");
    }

    fn output() -> impl Strategy<Value = StepOutput> {
        let b = || proptest::collection::vec(any::<u8>(), 0..8);
        let event = ("[a-z/@1]{1,8}", b(), proptest::option::of(b()))
            .prop_map(|(schema, value, key)| EmittedEvent { schema, value, key });
        let effect = ("[a-z.]{1,8}", b(), proptest::option::of("[a-z]{0,4}")).prop_map(
            |(kind, params_cbor, cap_slot)| EmittedEffect {
                kind,
                params_cbor,
                cap_slot,
            },
        );
        (
            proptest::option::of(b()),
            proptest::collection::vec(event, 0..3),
            proptest::collection::vec(effect, 0..3),
            proptest::option::of(b()),
        )
            .prop_map(|(state, domain_events, effects, ann)| StepOutput {
                state,
                domain_events,
                effects,
                ann,
            })
    }

    proptest! {
        #[test]
        fn decode_output_inverts_encoding(o in output()) {
            prop_assert_eq!(decode_output(&cbor::encode(&output_value(&o))), Ok(o));
        }

        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_output(&bytes);
        }

        #[test]
        fn mutated_outputs_never_panic(o in output(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = cbor::encode(&output_value(&o));
            let i = at.index(bytes.len());
            bytes[i] = byte;
            let _ = decode_output(&bytes);
        }
    }
}
