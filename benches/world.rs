//! world/*: the cost of one reducer step through the whole machine (`World::send` of 1,000
//! events per iteration into a temporary store, one group commit per iteration), the bare
//! wasm step of the same reducer on the same input (engine cost without the kernel), and the
//! replay cost per entry of `verify` over a 10,000-event world.
//!
//! Per-event figures: criterion reports the time of one iteration (1,000 events for `send/*`,
//! 10,000 entries for `verify/*`) and, through `Throughput::Elements`, events per second.

use std::hint::black_box;

use aos::codec::cbor::{self, Value};
use aos::codec::json::{Json, parse_json};
use aos::kernel::envelope::{StepInput, encode_input};
use aos::kernel::machine::EventIn;
use aos::progress::NoProgress;
use aos::store::Store;
use aos::wasm::{Limits, ReducerModule};
use aos::world::{CreateOptions, SendOptions, VerifyFrom, World, create_world, verify};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const PER_ITER: usize = 1_000;

/// A fresh store holding world `w` made from built-in example `example`.
fn fresh(example: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = Store::init(&dir.path().join(".aos")).expect("init");
    let e = aos::examples::example(example).expect("example");
    let nodes = e.nodes().expect("nodes");
    create_world(&store, "w", nodes, &e.wasm(), &CreateOptions::default()).expect("create");
    (dir, store)
}

fn event(w: &World<'_>, schema: &str, json: &str) -> EventIn {
    w.parse_event(schema, &parse_json(json).expect("json"), None)
        .expect("event")
}

/// One send option for every benchmark: a single group commit per call.
fn one_commit() -> SendOptions {
    SendOptions {
        commit_events: 1 << 40,
        commit_bytes: 1 << 40,
    }
}

fn tick(w: &World<'_>) -> EventIn {
    event(w, "demo/CounterEvent@1", r#""Tick""#)
}

fn start(w: &World<'_>) -> EventIn {
    event(
        w,
        "demo/CounterEvent@1",
        r#"{"Start":{"target":1000000000000}}"#,
    )
}

fn deposit(w: &World<'_>, account: usize) -> EventIn {
    event(
        w,
        "demo/AccountEvent@1",
        &format!(r#"{{"account":"acct-{account}","op":{{"Deposit":{{"amount":7}}}}}}"#),
    )
}

fn bench_send(c: &mut Criterion) {
    let mut g = c.benchmark_group("world");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(5));
    g.throughput(Throughput::Elements(PER_ITER as u64));

    // Counter: Start once, then Ticks (each Tick changes the one state).
    {
        let (_dir, store) = fresh("counter");
        let mut w = World::open(&store, "w").expect("open");
        w.send([start(&w)], &one_commit(), &NoProgress)
            .expect("start");
        let ticks: Vec<EventIn> = (0..PER_ITER).map(|_| tick(&w)).collect();
        g.bench_function("send/counter_tick_x1000", |b| {
            b.iter_batched(
                || ticks.clone(),
                |evs| w.send(evs, &one_commit(), &NoProgress).expect("send"),
                BatchSize::LargeInput,
            );
        });
    }

    // Keyed: deposits cycling over 1,000 accounts (each event changes one cell of the map).
    {
        let (_dir, store) = fresh("keyed");
        let mut w = World::open(&store, "w").expect("open");
        let deps: Vec<EventIn> = (0..PER_ITER).map(|i| deposit(&w, i)).collect();
        w.send(deps.clone(), &one_commit(), &NoProgress)
            .expect("warm");
        g.bench_function("send/keyed_deposit_x1000", |b| {
            b.iter_batched(
                || deps.clone(),
                |evs| w.send(evs, &one_commit(), &NoProgress).expect("send"),
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("world");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(3));
    g.throughput(Throughput::Elements(1));
    let limits = Limits::default();

    // Counter Tick with the state the machine holds after Start + one Tick.
    {
        let (_dir, store) = fresh("counter");
        let mut w = World::open(&store, "w").expect("open");
        w.send([start(&w), tick(&w)], &one_commit(), &NoProgress)
            .expect("send");
        let state = w
            .state("demo/Counter@1", None)
            .expect("state")
            .state
            .map(|v| cbor::encode(&v));
        let ev = tick(&w);
        let value = cbor::encode(&ev.value);
        let mut input = Vec::new();
        encode_input(
            &StepInput {
                state: state.as_deref(),
                schema: &ev.schema,
                value: &value,
                event_key: None,
                ctx_key: None,
                cell_mode: false,
            },
            &mut input,
        );
        let wasm = aos::examples::example("counter").expect("example").wasm[0].1;
        let m = ReducerModule::compile(wasm, &limits).expect("compile");
        m.step(&input).expect("step");
        g.bench_function("step/counter_tick", |b| {
            b.iter(|| m.step(black_box(&input)).expect("step"));
        });
        g.bench_function("compile/counter", |b| {
            b.iter(|| ReducerModule::compile(black_box(wasm), &limits).expect("compile"));
        });
    }

    // Keyed deposit into an existing cell.
    {
        let (_dir, store) = fresh("keyed");
        let mut w = World::open(&store, "w").expect("open");
        w.send([deposit(&w, 42)], &one_commit(), &NoProgress)
            .expect("send");
        let key = Json::String("acct-42".into());
        let state = w
            .state("demo/Accounts@1", Some(&key))
            .expect("state")
            .state
            .map(|v| cbor::encode(&v));
        let ev = deposit(&w, 42);
        let value = cbor::encode(&ev.value);
        let cell = cbor::encode(&Value::Text("acct-42".into()));
        let mut input = Vec::new();
        encode_input(
            &StepInput {
                state: state.as_deref(),
                schema: &ev.schema,
                value: &value,
                event_key: None,
                ctx_key: Some(&cell),
                cell_mode: true,
            },
            &mut input,
        );
        let wasm = aos::examples::example("keyed").expect("example").wasm[0].1;
        let m = ReducerModule::compile(wasm, &limits).expect("compile");
        m.step(&input).expect("step");
        g.bench_function("step/keyed_deposit", |b| {
            b.iter(|| m.step(black_box(&input)).expect("step"));
        });
        g.bench_function("encode_input/keyed_deposit", |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                encode_input(
                    &StepInput {
                        state: state.as_deref(),
                        schema: &ev.schema,
                        value: &value,
                        event_key: None,
                        ctx_key: Some(&cell),
                        cell_mode: true,
                    },
                    &mut out,
                );
                black_box(out.len())
            });
        });
    }
    g.finish();
}

fn bench_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("world");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_secs(1));
    g.measurement_time(std::time::Duration::from_secs(5));
    let (_dir, store) = fresh("counter");
    let mut w = World::open(&store, "w").expect("open");
    let mut evs = vec![start(&w)];
    evs.extend((1..10_000).map(|_| tick(&w)));
    w.send(evs, &one_commit(), &NoProgress).expect("send");
    let r = verify(&store, "w", &VerifyFrom::Genesis, &NoProgress).expect("verify");
    eprintln!(
        "verify/counter_10k: {} entries ({} events, {} snapshots)",
        r.stats.entries, r.stats.ingress, r.stats.snapshots
    );
    g.throughput(Throughput::Elements(r.stats.entries));
    g.bench_function("verify/counter_10k", |b| {
        b.iter(|| verify(&store, "w", &VerifyFrom::Genesis, &NoProgress).expect("verify"));
    });
    g.finish();
}

criterion_group!(benches, bench_send, bench_step, bench_verify);
criterion_main!(benches);
