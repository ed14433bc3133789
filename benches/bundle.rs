//! sync/bundle_*: bundle create, verify and unbundle of a counter world, through the library.
//!
//! The world has 20,000 events (about 4.8 MB of bundle); `docs/guide.md` has the figures for
//! a 1,000,000-event world measured with the CLI.

use std::hint::black_box;

use aos::codec::json::parse_json;
use aos::progress::NoProgress;
use aos::store::Store;
use aos::transfer::bundle::{
    BundleReader, CreateOptions, UnbundleOptions, create, unbundle, verify,
};
use aos::world::{CreateOptions as WorldOptions, SendOptions, World, create_world};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const EVENTS: usize = 20_000;

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = Store::init(&dir.path().join(".aos")).expect("init");
    (dir, s)
}

/// A store with world `c`: a start and `EVENTS - 1` ticks.
fn counter_store() -> (tempfile::TempDir, Store) {
    let (d, s) = fresh();
    let e = aos::examples::example("counter").expect("example");
    create_world(
        &s,
        "c",
        e.nodes().expect("nodes"),
        &e.wasm(),
        &WorldOptions::default(),
    )
    .expect("world");
    let mut w = World::open(&s, "c").expect("open");
    let schema = "demo/CounterEvent@1";
    let start = parse_json(r#"{"Start": {"target": 1000000000}}"#).expect("json");
    let tick = parse_json(r#""Tick""#).expect("json");
    let mut evs = vec![w.parse_event(schema, &start, None).expect("event")];
    for _ in 1..EVENTS {
        evs.push(w.parse_event(schema, &tick, None).expect("event"));
    }
    w.send(evs, &SendOptions::default(), &NoProgress)
        .expect("send");
    (d, s)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync");
    g.sample_size(10);
    let (dir, s) = counter_store();
    let path = dir.path().join("c.bundle");
    let opts = CreateOptions {
        worlds: vec!["c".into()],
        since: Vec::new(),
    };
    let bytes = create(&s, &path, &opts, &NoProgress).expect("create").bytes;
    g.throughput(Throughput::Bytes(bytes));

    g.bench_function("bundle_create_20k_events", |b| {
        b.iter(|| black_box(create(&s, &path, &opts, &NoProgress).expect("create")));
    });

    let reader = BundleReader::open(&path).expect("open");
    g.bench_function("bundle_verify_20k_events", |b| {
        b.iter(|| black_box(verify(&reader, None, &NoProgress).expect("verify")));
    });

    g.bench_function("bundle_unbundle_20k_events", |b| {
        b.iter_batched(
            fresh,
            |(_d, dst)| {
                unbundle(&dst, &reader, &UnbundleOptions::default(), &NoProgress).expect("unbundle")
            },
            BatchSize::PerIteration,
        );
    });

    // An increment of 100 events on top of a head the receiver has: its cost must not grow
    // with the history below it.
    let head = s
        .refs()
        .read(&aos::world::world_ref("c").expect("ref"))
        .expect("read")
        .expect("world");
    let mut w = World::open(&s, "c").expect("open");
    let tick = parse_json(r#""Tick""#).expect("json");
    let evs: Vec<_> = (0..100)
        .map(|_| {
            w.parse_event("demo/CounterEvent@1", &tick, None)
                .expect("event")
        })
        .collect();
    w.send(evs, &SendOptions::default(), &NoProgress)
        .expect("send");
    let inc = CreateOptions {
        worlds: vec!["c".into()],
        since: vec![head],
    };
    let inc_path = dir.path().join("inc.bundle");
    g.throughput(Throughput::Elements(100));
    g.bench_function("bundle_create_incremental_100_events", |b| {
        b.iter(|| black_box(create(&s, &inc_path, &inc, &NoProgress).expect("create")));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
