//! Hostile reducer modules next to a well-behaved one: every failure is a journaled fault of
//! the right code, the other reducer keeps working, and the world still verifies.

use std::path::Path;

use crate::common::Env;

const ALLOC: &str = r#"
  (global $next (mut i32) (i32.const 4096))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $p))
"#;

/// A module with one page of memory, the bump allocator and `body` (which exports `step`).
fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        "(module (memory (export \"memory\") 1) {ALLOC} {body})"
    ))
    .unwrap()
}

const MANIFEST: &str = r#"{
  "$kind": "manifest",
  "air_version": "1",
  "schemas": [
    { "name": "demo/CounterPc@1" },
    { "name": "demo/CounterState@1" },
    { "name": "demo/CounterEvent@1" },
    { "name": "demo/CounterDone@1" },
    { "name": "test/HState@1" }
  ],
  "modules": [{ "name": "demo/Counter@1" }, { "name": "test/Hostile@1" }],
  "plans": [], "effects": [], "caps": [], "policies": [],
  "routing": {
    "events": [
      { "event": "demo/CounterEvent@1", "reducer": "demo/Counter@1" },
      { "event": "demo/CounterEvent@1", "reducer": "test/Hostile@1" }
    ],
    "inboxes": []
  },
  "triggers": [], "defaults": {}
}"#;

const HOSTILE_AIR: &str = r#"[
  { "$kind": "defschema", "name": "test/HState@1", "type": { "nat": {} } },
  {
    "$kind": "defmodule",
    "name": "test/Hostile@1",
    "module_kind": "reducer",
    "abi": { "reducer": { "state": "test/HState@1", "event": "demo/CounterEvent@1",
             "effects_emitted": [], "cap_slots": {} } }
  }
]"#;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// An env with the two-reducer AIR in `air/`, the counter's WASM and `hostile.wasm`.
fn setup(hostile: &[u8]) -> Env {
    let env = Env::new();
    let air = env.path().join("air");
    std::fs::create_dir(&air).unwrap();
    let src = repo().join("examples/worlds/counter/air");
    for f in ["module.air.json", "schemas.air.json"] {
        std::fs::copy(src.join(f), air.join(f)).unwrap();
    }
    std::fs::write(air.join("manifest.air.json"), MANIFEST).unwrap();
    std::fs::write(air.join("hostile.air.json"), HOSTILE_AIR).unwrap();
    std::fs::copy(
        repo().join("reducers/wasm/counter.wasm"),
        env.path().join("counter.wasm"),
    )
    .unwrap();
    env.write("hostile.wasm", hostile);
    env
}

fn new_world(env: &Env, name: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec![
        "world",
        "new",
        name,
        "--air",
        "air",
        "--wasm",
        "demo/Counter@1=counter.wasm",
        "--wasm",
        "test/Hostile@1=hostile.wasm",
        "--fuel",
        "2000000",
    ];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn log(env: &Env, world: &str) -> Vec<serde_json::Value> {
    let r = env.run(&["--json", "log", world]).ok();
    r.out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn counter_count(env: &Env, world: &str) -> u64 {
    let r = env.run(&["--json", "state", world, "demo/Counter@1"]).ok();
    let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    j["state"]["count"].as_u64().unwrap()
}

/// Sends Start{100} and three Ticks; checks the faults' codes (one of `codes`), that the
/// counter counted, and that the world verifies. Returns the fault entries.
fn exercise(env: &Env, world: &str, codes: &[&str]) -> Vec<serde_json::Value> {
    env.run(&[
        "send",
        world,
        "demo/CounterEvent@1",
        r#"{"Start":{"target":100}}"#,
    ])
    .ok();
    for _ in 0..3 {
        env.run(&["send", world, "demo/CounterEvent@1", r#""Tick""#])
            .ok();
    }
    assert_eq!(counter_count(env, world), 3);
    let entries = log(env, world);
    let faults: Vec<_> = entries
        .iter()
        .filter(|e| e["kind"] == "fault")
        .cloned()
        .collect();
    assert_eq!(faults.len(), 4, "one fault per event: {entries:#?}");
    for f in &faults {
        let e = &f["entry"];
        assert_eq!(e["reducer"], "test/Hostile@1");
        let code = e["code"].as_str().unwrap();
        assert!(
            codes.contains(&code),
            "fault code {code}, expected one of {codes:?}: {e}"
        );
        // A fault follows the event entry it belongs to.
        assert_eq!(
            e["cause"].as_u64().unwrap() + 1,
            f["height"].as_u64().unwrap()
        );
    }
    // The counter's steps are recorded in the event entries; the hostile one has none.
    let events: Vec<_> = entries.iter().filter(|e| e["kind"] == "event").collect();
    assert_eq!(events.len(), 4);
    for e in events {
        let steps = e["entry"]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0]["reducer"], "demo/Counter@1");
    }
    let v = env.run(&["--json", "verify", world]).ok();
    let j: serde_json::Value = serde_json::from_str(&v.out()).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["faults"], 4);
    assert_eq!(j["events"], 4);
    faults
}

fn hostile(step: &str, codes: &[&str]) -> Vec<serde_json::Value> {
    let env = setup(&module(step));
    new_world(&env, "w", &[]).ok();
    exercise(&env, "w", codes)
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    hostile(
        r#"(func (export "step") (param i32 i32) (result i32 i32)
             (loop $l (br $l)) (unreachable))"#,
        &["out-of-fuel"],
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let f = hostile(
        r#"(func (export "step") (param i32 i32) (result i32 i32)
             (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
             (unreachable))"#,
        &["memory-limit", "trap"],
    );
    assert!(!f.is_empty());
}

#[test]
fn huge_initial_memory_is_rejected_or_faults() {
    let wasm = wat::parse_str(format!(
        "(module (memory (export \"memory\") 65536) {ALLOC} \
         (func (export \"step\") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 0)))"
    ))
    .unwrap();
    let env = setup(&wasm);
    let r = new_world(&env, "w", &["--max-memory", "1048576"]);
    if r.code == 0 {
        exercise(&env, "w", &["memory-limit"]);
    } else {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(!r.stderr.is_empty());
        assert_eq!(env.run(&["world", "list"]).ok().out(), "");
    }
}

#[test]
fn deep_recursion_overflows_the_stack() {
    hostile(
        r#"(func $f (param i32) (result i32) (i32.add (call $f (local.get 0)) (i32.const 1)))
           (func (export "step") (param i32 i32) (result i32 i32)
             (drop (call $f (i32.const 0))) (i32.const 0) (i32.const 0))"#,
        &["stack-overflow"],
    );
}

#[test]
fn garbage_output_is_bad_output() {
    let bytes: String = (0u32..64)
        .map(|i| format!("\\{:02x}", (i * 97 + 13) % 251))
        .collect();
    hostile(
        &format!(
            r#"(data (i32.const 0) "{bytes}")
               (func (export "step") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 64))"#
        ),
        &["bad-output"],
    );
}

#[test]
fn out_of_bounds_output_is_a_fault() {
    hostile(
        r#"(func (export "step") (param i32 i32) (result i32 i32)
             (i32.const 0x7fff0000) (i32.const 100))"#,
        &["bad-output"],
    );
}

#[test]
fn shape_b_out_of_bounds_output_is_a_fault() {
    hostile(
        r#"(func (export "step") (param $ret i32) (param i32 i32)
             (i32.store (local.get $ret) (i32.const 65530))
             (i32.store offset=4 (local.get $ret) (i32.const 100)))"#,
        &["bad-output"],
    );
}

/// Writes a NaN's f32 bits big-endian as the CBOR uint32 state of a canonical output
/// envelope `{ann: null, state: h'1a XXXXXXXX', effects: [], domain_events: []}`.
const NAN_STEP: &str = r#"
  (data (i32.const 0) "\a4\63ann\f6\65state\45\1a\00\00\00\00\67effects\80\6ddomain_events\80")
  (func (export "step") (param $p i32) (param $n i32) (result i32 i32)
    (local $bits i32)
    ;; 0/0 from values the guest cannot constant-fold: the input length.
    (local.set $bits (i32.reinterpret_f32
      (f32.div (f32.sub (f32.convert_i32_u (local.get $n)) (f32.convert_i32_u (local.get $n)))
               (f32.sub (f32.convert_i32_u (local.get $n)) (f32.convert_i32_u (local.get $n))))))
    (i32.store8 (i32.const 14) (i32.shr_u (local.get $bits) (i32.const 24)))
    (i32.store8 (i32.const 15) (i32.shr_u (local.get $bits) (i32.const 16)))
    (i32.store8 (i32.const 16) (i32.shr_u (local.get $bits) (i32.const 8)))
    (i32.store8 (i32.const 17) (local.get $bits))
    (i32.const 0) (i32.const 42))
"#;

#[test]
fn nan_state_is_deterministic_and_verifies() {
    let mut states = Vec::new();
    for _ in 0..2 {
        let env = setup(&module(NAN_STEP));
        new_world(&env, "w", &[]).ok();
        env.run(&["send", "w", "demo/CounterEvent@1", r#""Tick""#])
            .ok();
        env.run(&["send", "w", "demo/CounterEvent@1", r#""Reset""#])
            .ok();
        let entries = log(&env, "w");
        assert!(
            entries.iter().all(|e| e["kind"] != "fault"),
            "the NaN envelope is valid: {entries:#?}"
        );
        let r = env.run(&["--json", "state", "w", "test/Hostile@1"]).ok();
        let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
        let bits = j["state"].as_u64().unwrap();
        // A NaN: exponent all ones, mantissa non-zero.
        assert_eq!(bits & 0x7f80_0000, 0x7f80_0000, "{bits:#x}");
        assert_ne!(bits & 0x007f_ffff, 0, "{bits:#x}");
        env.run(&["verify", "w"]).ok();
        let steps: Vec<String> = entries
            .iter()
            .filter(|e| e["kind"] == "event")
            .flat_map(|e| e["entry"]["steps"].as_array().unwrap().clone())
            .filter(|s| s["reducer"] == "test/Hostile@1")
            .map(|s| s["state"].to_string())
            .collect();
        assert_eq!(steps.len(), 2);
        states.push((bits, steps, entries[0]["id"].clone()));
    }
    assert_eq!(states[0], states[1], "two worlds, one history");
}

#[test]
fn a_module_with_an_import_is_rejected() {
    let wasm = wat::parse_str(format!(
        "(module (import \"env\" \"clock\" (func (result i64))) (memory (export \"memory\") 1) {ALLOC} \
         (func (export \"step\") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 0)))"
    ))
    .unwrap();
    let env = setup(&wasm);
    let r = new_world(&env, "w", &[]).fails(1);
    assert!(
        r.stderr.contains("import") || r.stderr.contains("Hostile"),
        "{}",
        r.stderr
    );
    assert_eq!(env.run(&["world", "list"]).ok().out(), "");
    env.run(&["state", "w", "demo/Counter@1"]).fails(1);
    // The same AIR with an import-free module creates the world under that name.
    env.write(
        "hostile.wasm",
        &module(r#"(func (export "step") (param i32 i32) (result i32 i32) (i32.const 0) (i32.const 0))"#),
    );
    new_world(&env, "w", &[]).ok();
}

/// CBOR text head and bytes.
fn text(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 24);
    out.push(0x60 + s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// `{state: null, domain_events: [{schema: "demo/CounterEvent@1", value: h'{"Tick": null}'}]}`
fn echo_tick_envelope() -> Vec<u8> {
    let mut tick = vec![0xa1];
    text(&mut tick, "Tick");
    tick.push(0xf6);
    let mut out = vec![0xa2];
    text(&mut out, "state");
    out.push(0xf6);
    text(&mut out, "domain_events");
    out.extend_from_slice(&[0x81, 0xa2]);
    text(&mut out, "schema");
    text(&mut out, "demo/CounterEvent@1");
    text(&mut out, "value");
    out.push(0x40 + tick.len() as u8);
    out.extend_from_slice(&tick);
    out
}

#[test]
fn self_feeding_cascades_stop_at_max_derived() {
    let env_bytes = echo_tick_envelope();
    let data: String = env_bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    let env = setup(&module(&format!(
        r#"(data (i32.const 0) "{data}")
           (func (export "step") (param i32 i32) (result i32 i32)
             (i32.const 0) (i32.const {}))"#,
        env_bytes.len()
    )));
    new_world(&env, "w", &["--max-derived", "5"]).ok();
    let r = env
        .run(&[
            "--json",
            "send",
            "w",
            "demo/CounterEvent@1",
            r#"{"Start":{"target":1000}}"#,
        ])
        .ok();
    let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    // The Start, five derived Ticks, and one fault for the dropped rest.
    assert_eq!(j["derived"], 5, "{j}");
    assert_eq!(j["faults"], 1, "{j}");
    assert_eq!(j["entries"], 7, "{j}");
    assert_eq!(counter_count(&env, "w"), 5);
    env.run(&["send", "w", "demo/CounterEvent@1", r#""Tick""#])
        .ok();
    assert_eq!(counter_count(&env, "w"), 11);
    let entries = log(&env, "w");
    let faults: Vec<_> = entries.iter().filter(|e| e["kind"] == "fault").collect();
    assert_eq!(faults.len(), 2);
    for f in faults {
        assert_eq!(f["entry"]["code"], "derived-bound", "{f}");
    }
    let derived = entries
        .iter()
        .filter(|e| e["entry"]["origin"] == "derived")
        .count();
    assert_eq!(derived, 10);
    let v = env.run(&["--json", "verify", "w"]).ok();
    let j: serde_json::Value = serde_json::from_str(&v.out()).unwrap();
    assert_eq!(
        (j["derived"].as_u64(), j["faults"].as_u64()),
        (Some(10), Some(2))
    );
}

/// A module whose `step` returns `envelope` every time.
fn constant(envelope: &[u8]) -> Vec<u8> {
    let data: String = envelope.iter().map(|b| format!("\\{b:02x}")).collect();
    module(&format!(
        r#"(data (i32.const 0) "{data}")
           (func (export "step") (param i32 i32) (result i32 i32)
             (i32.const 0) (i32.const {}))"#,
        envelope.len()
    ))
}

/// `{state: h'<state>'}` plus raw extra members (`extra_n` of them).
fn envelope(state: &[u8], extra_n: u8, extra: &[u8]) -> Vec<u8> {
    let mut out = vec![0xa1 + extra_n];
    text(&mut out, "state");
    out.push(0x40 + u8::try_from(state.len()).unwrap());
    out.extend_from_slice(state);
    out.extend_from_slice(extra);
    out
}

fn one_event(schema: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    text(&mut out, "domain_events");
    out.extend_from_slice(&[0x81, 0xa2]);
    text(&mut out, "schema");
    text(&mut out, schema);
    text(&mut out, "value");
    out.push(0x40 + u8::try_from(value.len()).unwrap());
    out.extend_from_slice(value);
    out
}

#[test]
fn invalid_outputs_fault_with_their_codes() {
    let nat7 = [0x07];
    let mut effect = Vec::new();
    text(&mut effect, "effects");
    effect.extend_from_slice(&[0x81, 0xa2]);
    text(&mut effect, "kind");
    text(&mut effect, "http.request");
    text(&mut effect, "params_cbor");
    effect.extend_from_slice(&[0x41, 0xf6]);
    let mut unknown = Vec::new();
    text(&mut unknown, "bogus");
    unknown.push(0xf6);
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        // A text where the schema says nat.
        (
            "text state",
            envelope(&[0x61, 0x78], 0, &[]),
            &["invalid-state"],
        ),
        // A negative number for a nat.
        (
            "negative state",
            envelope(&[0x20], 0, &[]),
            &["invalid-state"],
        ),
        // State bytes that are not CBOR at all.
        (
            "torn state",
            envelope(&[0x1a, 0x00], 0, &[]),
            &["invalid-state", "bad-output"],
        ),
        (
            "unknown event schema",
            envelope(&nat7, 1, &one_event("demo/Nope@1", &[0xf6])),
            &["invalid-event"],
        ),
        (
            "event value off-schema",
            envelope(&nat7, 1, &one_event("demo/CounterEvent@1", &[0x07])),
            &["invalid-event"],
        ),
        (
            "undeclared effect",
            envelope(&nat7, 1, &effect),
            &["invalid-effect"],
        ),
        (
            "unknown member",
            envelope(&nat7, 1, &unknown),
            &["bad-output"],
        ),
    ];
    for (what, env_bytes, codes) in cases {
        let env = setup(&constant(&env_bytes));
        new_world(&env, "w", &[]).ok();
        let faults = exercise(&env, "w", codes);
        assert_eq!(faults.len(), 4, "{what}");
        // The failed steps left the hostile reducer without a state.
        let r = env.run(&["--json", "state", "w", "test/Hostile@1"]).ok();
        let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
        assert_eq!(j["state"], serde_json::Value::Null, "{what}");
    }
}

#[test]
fn a_valid_constant_module_sets_its_state() {
    // The control for the cases above: the same builder, a valid output.
    let env = setup(&constant(&envelope(&[0x18, 0x2a], 0, &[])));
    new_world(&env, "w", &[]).ok();
    env.run(&["send", "w", "demo/CounterEvent@1", r#""Tick""#])
        .ok();
    let r = env.run(&["--json", "state", "w", "test/Hostile@1"]).ok();
    let j: serde_json::Value = serde_json::from_str(&r.out()).unwrap();
    assert_eq!(j["state"], 42);
    assert!(log(&env, "w").iter().all(|e| e["kind"] != "fault"));
    env.run(&["verify", "w"]).ok();
}
