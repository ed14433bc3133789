//! The example reducers (`reducers/`), built with the `aos-reducer` SDK and the ordinary way
//! (`stdcounter`): their committed modules run under the host engine and produce exactly the
//! expected outputs, and (when the wasm32 target is installed) rebuilding them reproduces the
//! committed bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aos::air::load::load_path;
use aos::air::name::Name;
use aos::air::nodes::Node;
use aos::air::types::Type;
use aos::air::value::canonicalize;
use aos::codec::cbor::{Int, Map, Value, decode, encode};
use aos::wasm::{Limits, ReducerModule, Shape};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn module(name: &str) -> ReducerModule {
    let path = root().join("reducers/wasm").join(format!("{name}.wasm"));
    let wasm = std::fs::read(&path).unwrap();
    let m = ReducerModule::compile(&wasm, &Limits::default()).unwrap();
    assert_eq!(m.shape(), Shape::RetPtr);
    m
}

/// The schemas of an example world, for canonicalizing what a reducer wrote.
fn schemas(world: &str) -> BTreeMap<Name, Type> {
    let nodes = load_path(&root().join("examples/worlds").join(world).join("air"))
        .into_result()
        .unwrap();
    nodes
        .into_iter()
        .filter_map(|(n, _)| match n {
            Node::DefSchema(s) => Some((s.name, s.ty)),
            _ => None,
        })
        .collect()
}

fn canon(schemas: &BTreeMap<Name, Type>, schema: &str, v: &Value) -> Value {
    let ty = Type::Ref(schema.parse().unwrap());
    canonicalize(v, &ty, schemas).unwrap()
}

// ---- building values --------------------------------------------------------------------

fn nat(n: u64) -> Value {
    Value::from(n)
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn rec(fields: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        m.insert(text(k), v.clone());
    }
    Value::Map(m)
}

fn variant(tag: &str, payload: Value) -> Value {
    rec(&[(tag, payload)])
}

fn unit(tag: &str) -> Value {
    variant(tag, Value::Null)
}

/// The input envelope of AIR v1 §5.
fn envelope(state: Option<&Value>, schema: &str, value: &Value, key: Option<&Value>) -> Vec<u8> {
    let bytes = |v: Option<&Value>| v.map_or(Value::Null, |v| Value::Bytes(encode(v)));
    let mut event = Map::new();
    event.insert(text("schema"), text(schema));
    event.insert(text("value"), Value::Bytes(encode(value)));
    if let Some(k) = key {
        event.insert(text("key"), Value::Bytes(encode(k)));
    }
    let mut ctx = Map::new();
    ctx.insert(text("key"), bytes(key));
    ctx.insert(text("cell_mode"), Value::Bool(key.is_some()));
    let mut m = Map::new();
    m.insert(text("version"), nat(1));
    m.insert(text("state"), bytes(state));
    m.insert(text("event"), Value::Map(event));
    m.insert(text("ctx"), Value::Map(ctx));
    encode(&Value::Map(m))
}

// ---- reading outputs ----------------------------------------------------------------------

/// A lenient CBOR reader (any key order, any integer width, definite or indefinite
/// lengths), like the kernel's reading of guest output; maps come out in canonical order.
fn lenient(bytes: &[u8]) -> Value {
    fn arg(b: &[u8], i: &mut usize) -> (u8, Option<u64>) {
        let h = b[*i];
        *i += 1;
        let (major, info) = (h >> 5, h & 31);
        let n = match info {
            0..=23 => Some(u64::from(info)),
            24..=27 => {
                let w = 1usize << (info - 24);
                let mut v = 0u64;
                for &x in &b[*i..*i + w] {
                    v = (v << 8) | u64::from(x);
                }
                *i += w;
                Some(v)
            }
            31 => None,
            _ => panic!("reserved additional info {info}"),
        };
        (major, n)
    }
    fn item(b: &[u8], i: &mut usize) -> Value {
        let (major, n) = arg(b, i);
        let len = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap());
        let at_break = |b: &[u8], i: &mut usize| {
            if b[*i] == 0xff {
                *i += 1;
                true
            } else {
                false
            }
        };
        match major {
            0 => Value::Int(Int::new(i128::from(n.unwrap())).unwrap()),
            1 => Value::Int(Int::new(-1 - i128::from(n.unwrap())).unwrap()),
            2 | 3 => {
                let mut out = Vec::new();
                if let Some(n) = len(n) {
                    out.extend_from_slice(&b[*i..*i + n]);
                    *i += n;
                } else {
                    while !at_break(b, i) {
                        match item(b, i) {
                            Value::Bytes(c) => out.extend(c),
                            Value::Text(c) => out.extend(c.into_bytes()),
                            _ => panic!("bad chunk"),
                        }
                    }
                }
                if major == 2 {
                    Value::Bytes(out)
                } else {
                    Value::Text(String::from_utf8(out).unwrap())
                }
            }
            4 => {
                let mut out = Vec::new();
                match len(n) {
                    Some(n) => (0..n).for_each(|_| out.push(item(b, i))),
                    None => {
                        while !at_break(b, i) {
                            out.push(item(b, i));
                        }
                    }
                }
                Value::Array(out)
            }
            5 => {
                let mut m = Map::new();
                let mut entry = |b: &[u8], i: &mut usize| {
                    let k = item(b, i);
                    let v = item(b, i);
                    assert!(m.get(&k).is_none(), "duplicate key {k:?}");
                    m.insert(k, v);
                };
                match len(n) {
                    Some(n) => (0..n).for_each(|_| entry(b, i)),
                    None => {
                        while !at_break(b, i) {
                            entry(b, i);
                        }
                    }
                }
                Value::Map(m)
            }
            7 => match n {
                Some(20) => Value::Bool(false),
                Some(21) => Value::Bool(true),
                Some(22) => Value::Null,
                _ => panic!("floats and other simple values are not allowed"),
            },
            _ => panic!("tags are not allowed"),
        }
    }
    let mut i = 0;
    let v = item(bytes, &mut i);
    assert_eq!(i, bytes.len(), "trailing bytes");
    v
}

/// One step's output, values canonicalized against the world's schemas.
#[derive(Debug, PartialEq)]
struct Out {
    state: Option<Value>,
    events: Vec<(String, Value)>,
}

struct World {
    module: ReducerModule,
    schemas: BTreeMap<Name, Type>,
    state_schema: &'static str,
}

impl World {
    fn new(wasm: &str, world: &str, state_schema: &'static str) -> Self {
        Self {
            module: module(wasm),
            schemas: schemas(world),
            state_schema,
        }
    }

    fn step(&self, state: Option<&Value>, schema: &str, event: &Value, key: Option<&Value>) -> Out {
        let input = envelope(state, schema, event, key);
        let out = self.module.step(&input).unwrap();
        // Far below the default budget of 100 million: about 5,000-9,000 per step (see
        // "Cost" in docs/reducers.md); the bound catches a regression of the SDK's fast paths.
        assert!(out.fuel_consumed < 20_000, "fuel {}", out.fuel_consumed);
        // The SDK writes the envelope itself canonically.
        let raw = decode(&out.bytes).unwrap();
        let Value::Map(m) = lenient(&out.bytes) else {
            panic!("output is not a map")
        };
        assert_eq!(raw, Value::Map(m.clone()));
        let keys: Vec<_> = m.entries().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, ["ann", "state", "effects", "domain_events"].map(text));
        assert_eq!(m.get_text("ann"), Some(&Value::Null));
        assert_eq!(m.get_text("effects"), Some(&Value::Array(vec![])));
        let state = match m.get_text("state").unwrap() {
            Value::Null => None,
            Value::Bytes(b) => Some(canon(&self.schemas, self.state_schema, &lenient(b))),
            other => panic!("state is {other:?}"),
        };
        let Value::Array(evs) = m.get_text("domain_events").unwrap() else {
            panic!("domain_events is not an array")
        };
        let events = evs
            .iter()
            .map(|e| {
                let Value::Map(e) = e else {
                    panic!("event is not a map")
                };
                let Some(Value::Text(schema)) = e.get_text("schema") else {
                    panic!("event schema")
                };
                let Some(Value::Bytes(v)) = e.get_text("value") else {
                    panic!("event value")
                };
                assert!(e.get_text("key").is_none());
                (schema.clone(), canon(&self.schemas, schema, &lenient(v)))
            })
            .collect();
        Out { state, events }
    }
}

fn counter_state(pc: &str, count: u64, target: u64) -> Value {
    rec(&[
        ("pc", unit(pc)),
        ("count", nat(count)),
        ("target", nat(target)),
    ])
}

#[test]
fn counter_counts_to_target_and_emits_done() {
    let w = World::new("counter", "counter", "demo/CounterState@1");
    let ev = "demo/CounterEvent@1";

    // No state yet: a tick counts from the default state, while idle.
    let out = w.step(None, ev, &unit("Tick"), None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Idle", 1, 0)),
            events: vec![]
        }
    );

    // Start resets the count and sets the target.
    let s = out.state.unwrap();
    let start = variant("Start", rec(&[("target", nat(2))]));
    let out = w.step(Some(&s), ev, &start, None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Counting", 0, 2)),
            events: vec![]
        }
    );

    let s = out.state.unwrap();
    let out = w.step(Some(&s), ev, &unit("Tick"), None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Counting", 1, 2)),
            events: vec![]
        }
    );

    // Reaching the target returns to Idle and emits CounterDone.
    let s = out.state.unwrap();
    let out = w.step(Some(&s), ev, &unit("Tick"), None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Idle", 2, 2)),
            events: vec![("demo/CounterDone@1".into(), rec(&[("count", nat(2))]))],
        }
    );

    // Idle ticks still count, without another event.
    let s = out.state.unwrap();
    let out = w.step(Some(&s), ev, &unit("Tick"), None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Idle", 3, 2)),
            events: vec![]
        }
    );

    // Reset deletes the state.
    let s = out.state.unwrap();
    let out = w.step(Some(&s), ev, &unit("Reset"), None);
    assert_eq!(
        out,
        Out {
            state: None,
            events: vec![]
        }
    );
}

#[test]
fn counter_start_with_zero_target_finishes_on_first_tick() {
    let w = World::new("counter", "counter", "demo/CounterState@1");
    let ev = "demo/CounterEvent@1";
    let out = w.step(
        None,
        ev,
        &variant("Start", rec(&[("target", nat(0))])),
        None,
    );
    assert_eq!(out.state, Some(counter_state("Counting", 0, 0)));
    let out = w.step(out.state.as_ref(), ev, &unit("Tick"), None);
    assert_eq!(
        out,
        Out {
            state: Some(counter_state("Idle", 1, 0)),
            events: vec![("demo/CounterDone@1".into(), rec(&[("count", nat(1))]))],
        }
    );
    // A large nat survives the round trip.
    let big = counter_state("Counting", u64::MAX - 1, u64::MAX);
    let out = w.step(Some(&big), ev, &unit("Tick"), None);
    assert_eq!(out.state, Some(counter_state("Idle", u64::MAX, u64::MAX)));
}

#[test]
fn counter_bad_input_traps() {
    let m = module("counter");
    // An event that is not a CounterEvent.
    let input = envelope(None, "demo/CounterEvent@1", &unit("Jump"), None);
    assert!(m.step(&input).is_err());
    // Not an envelope at all.
    assert!(m.step(&encode(&nat(7))).is_err());
    // A state of the wrong shape.
    let input = envelope(
        Some(&text("nope")),
        "demo/CounterEvent@1",
        &unit("Tick"),
        None,
    );
    assert!(m.step(&input).is_err());
}

fn account(balance: u64, ops: u64) -> Value {
    rec(&[("balance", nat(balance)), ("ops", nat(ops))])
}

fn account_event(id: &str, op: Value) -> Value {
    rec(&[("account", text(id)), ("op", op)])
}

fn amount(tag: &str, n: u64) -> Value {
    variant(tag, rec(&[("amount", nat(n))]))
}

#[test]
fn keyed_accounts_deposit_withdraw_overdraft_close() {
    let w = World::new("keyed", "keyed", "demo/Account@1");
    let ev = "demo/AccountEvent@1";
    let key = text("alice");
    let step =
        |s: Option<&Value>, op: Value| w.step(s, ev, &account_event("alice", op), Some(&key));

    // First event of a cell: no state.
    let out = step(None, amount("Deposit", 100));
    assert_eq!(
        out,
        Out {
            state: Some(account(100, 1)),
            events: vec![]
        }
    );

    let out = step(out.state.as_ref(), amount("Withdraw", 30));
    assert_eq!(
        out,
        Out {
            state: Some(account(70, 2)),
            events: vec![]
        }
    );

    // Too much: balance unchanged, op counted, Overdraft emitted with the key's account.
    let out = step(out.state.as_ref(), amount("Withdraw", 71));
    assert_eq!(
        out,
        Out {
            state: Some(account(70, 3)),
            events: vec![(
                "demo/Overdraft@1".into(),
                rec(&[
                    ("account", text("alice")),
                    ("requested", nat(71)),
                    ("balance", nat(70)),
                ])
            )],
        }
    );

    // Exactly the balance is fine.
    let out = step(out.state.as_ref(), amount("Withdraw", 70));
    assert_eq!(
        out,
        Out {
            state: Some(account(0, 4)),
            events: vec![]
        }
    );

    // Close deletes the cell.
    let out = step(out.state.as_ref(), unit("Close"));
    assert_eq!(
        out,
        Out {
            state: None,
            events: vec![]
        }
    );
}

#[test]
fn keyed_overdraft_on_new_cell_and_close_of_new_cell() {
    let w = World::new("keyed", "keyed", "demo/Account@1");
    let ev = "demo/AccountEvent@1";
    let key = text("bob");
    let out = w.step(
        None,
        ev,
        &account_event("bob", amount("Withdraw", 5)),
        Some(&key),
    );
    assert_eq!(out.state, Some(account(0, 1)));
    assert_eq!(
        out.events,
        vec![(
            "demo/Overdraft@1".into(),
            rec(&[
                ("account", text("bob")),
                ("requested", nat(5)),
                ("balance", nat(0))
            ])
        )]
    );
    let out = w.step(None, ev, &account_event("bob", unit("Close")), Some(&key));
    assert_eq!(
        out,
        Out {
            state: None,
            events: vec![]
        }
    );
}

/// Whether `rustc` has the wasm32-unknown-unknown standard library.
fn wasm_target_installed() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib/wasm32-unknown-unknown")
            .is_dir()
}

#[test]
fn committed_modules_match_a_fresh_build() {
    if !wasm_target_installed() {
        eprintln!(
            "skipping the reducer rebuild check: the wasm32-unknown-unknown target is not \
             installed (rustup target add wasm32-unknown-unknown)"
        );
        return;
    }
    // A target dir of its own, so the check never waits on (or disturbs) this test's build.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reducers-check");
    let out = Command::new("bash")
        .arg(root().join("reducers/build.sh"))
        .arg("--check")
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reducers/build.sh --check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `events` (JSON values of `schema`) through two worlds of example `example`, one with
/// the SDK module `sdk` and one with the std-built `std`, both as `module`, and checks that
/// states (read with `state` arguments after each event) and entries stay the same.
fn same_as_sdk(
    example: &str,
    module: &str,
    (sdk, std): (&str, &str),
    schema: &str,
    events: &[&str],
    state: &[&str],
) -> Vec<serde_json::Value> {
    let env = crate::common::Env::new();
    let air = root().join("examples/worlds").join(example).join("air");
    for (world, wasm) in [("sdk", sdk), ("std", std)] {
        let m = format!(
            "{module}={}",
            root()
                .join("reducers/wasm")
                .join(format!("{wasm}.wasm"))
                .display()
        );
        env.run(&[
            "world",
            "new",
            world,
            "--air",
            air.to_str().unwrap(),
            "--wasm",
            &m,
        ])
        .ok();
    }
    for ev in events {
        for world in ["sdk", "std"] {
            env.run(&["send", world, schema, ev]).ok();
        }
        let read = |w: &str| {
            let mut args = vec!["--json", "state", w, module];
            args.extend(state);
            env.run(&args).ok().out()
        };
        assert_eq!(read("sdk"), read("std"), "after {ev}");
    }
    let entries = |w: &str| -> Vec<serde_json::Value> {
        env.run(&["--json", "log", w])
            .ok()
            .out()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["entry"].clone())
            .filter(|e| e["kind"] != "genesis")
            .map(|mut e| {
                // Only the module, so the ids, differ.
                e.as_object_mut().unwrap().remove("prev");
                e
            })
            .collect()
    };
    let sdk_entries = entries("sdk");
    assert_eq!(sdk_entries, entries("std"));
    env.run(&["verify", "std"]).ok();
    sdk_entries
}

#[test]
fn the_std_built_reducers_behave_as_the_sdk_ones() {
    // `reducers/stdcounter` and `reducers/stdkeyed`: std, serde derive, ciborium, the default
    // allocator; the same AIR as the SDK examples.
    let counter = same_as_sdk(
        "counter",
        "demo/Counter@1",
        ("counter", "stdcounter"),
        "demo/CounterEvent@1",
        &[
            r#"{"Start":{"target":3}}"#,
            r#""Tick""#,
            r#""Tick""#,
            r#""Tick""#,
            r#""Tick""#,
            r#""Reset""#,
            r#""Tick""#,
        ],
        &[],
    );
    assert!(
        counter.iter().any(|e| e["schema"] == "demo/CounterDone@1"),
        "the target was reached"
    );
    let op = |op: &str| format!(r#"{{"account":"alice","op":{op}}}"#);
    let ops = [
        op(r#"{"Deposit":{"amount":5}}"#),
        op(r#"{"Withdraw":{"amount":7}}"#),
        op(r#"{"Withdraw":{"amount":2}}"#),
        op(r#""Close""#),
        op(r#"{"Deposit":{"amount":1}}"#),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let keyed = same_as_sdk(
        "keyed",
        "demo/Accounts@1",
        ("keyed", "stdkeyed"),
        "demo/AccountEvent@1",
        &ops,
        &["--key", r#""alice""#],
    );
    assert!(
        keyed.iter().any(|e| e["schema"] == "demo/Overdraft@1"),
        "an overdraft"
    );
}
