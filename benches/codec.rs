//! codec/*: canonical CBOR encode, strict decode and validate, and the JSON mapping.

use std::hint::black_box;

use aos::codec::cbor::{self, Map, Value};
use aos::codec::json;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A record-like value of about 1 KiB: the typical shape of events and states.
fn sample() -> Value {
    let mut entries = Vec::new();
    for i in 0..16u64 {
        let item = Map::from_entries(vec![
            ("id".into(), i.into()),
            ("name".into(), format!("item number {i}").into()),
            ("tags".into(), Value::Array(vec!["a".into(), "bb".into()])),
            ("blob".into(), Value::Bytes(vec![i as u8; 8])),
        ])
        .expect("distinct keys");
        entries.push((Value::Text(format!("k{i:02}")), Value::Map(item)));
    }
    Value::Map(Map::from_entries(entries).expect("distinct keys"))
}

fn bench(c: &mut Criterion) {
    let v = sample();
    let bytes = cbor::encode(&v);
    let text = json::to_json(&v);
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("cbor_encode", |b| b.iter(|| cbor::encode(black_box(&v))));
    g.bench_function("cbor_decode", |b| {
        b.iter(|| cbor::decode(black_box(&bytes)).expect("valid"))
    });
    g.bench_function("cbor_decode_lenient", |b| {
        b.iter(|| cbor::decode_lenient(black_box(&bytes)).expect("valid"))
    });
    g.bench_function("cbor_validate", |b| {
        b.iter(|| cbor::validate(black_box(&bytes)).expect("valid"))
    });
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("json_parse", |b| {
        b.iter(|| json::from_json(black_box(&text)).expect("valid"))
    });
    g.bench_function("json_render", |b| b.iter(|| json::to_json(black_box(&v))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
