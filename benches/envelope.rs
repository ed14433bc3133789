//! kernel/envelope: the reducer input envelope encoder and output envelope decoder, at the
//! size of a counter reducer's step (both run once per event).

use std::hint::black_box;

use aos::codec::cbor::{self, Map, Value};
use aos::kernel::envelope::{self, StepInput};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let state = cbor::encode(&Value::Map(
        Map::from_entries(vec![("count".into(), 41u64.into())]).expect("one key"),
    ));
    let value = cbor::encode(&Value::Map(
        Map::from_entries(vec![("by".into(), 1u64.into())]).expect("one key"),
    ));
    let input = StepInput {
        state: Some(&state),
        schema: "demo/Increment@1",
        value: &value,
        event_key: None,
        ctx_key: None,
        cell_mode: false,
    };
    let new_state = cbor::encode(&Value::Map(
        Map::from_entries(vec![("count".into(), 42u64.into())]).expect("one key"),
    ));
    let output = cbor::encode(&Value::Map(
        Map::from_entries(vec![
            ("state".into(), Value::Bytes(new_state)),
            ("domain_events".into(), Value::Array(vec![])),
            ("effects".into(), Value::Array(vec![])),
            ("ann".into(), Value::Null),
        ])
        .expect("distinct keys"),
    ));
    let mut g = c.benchmark_group("envelope");
    let mut buf = Vec::with_capacity(256);
    g.bench_function("encode_input_counter", |b| {
        b.iter(|| {
            buf.clear();
            envelope::encode_input(black_box(&input), &mut buf);
            buf.len()
        })
    });
    g.bench_function("decode_output_counter", |b| {
        b.iter(|| envelope::decode_output(black_box(&output)).expect("valid"))
    });
    g.bench_function("decode_lenient_counter_output", |b| {
        b.iter(|| cbor::decode_lenient(black_box(&output)).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
