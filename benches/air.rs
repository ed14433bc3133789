//! air/*: loading and checking a large world's AIR (1,000 schemas, 200 modules, 200 plans),
//! and typed value encoding.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use aos::air::load::load_path;
use aos::air::validate::validate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Writes an `air/` directory in the AgentOS v1 style: a manifest listing names without
/// hashes, and separate files of schemas, modules, plans and policies.
pub fn generate(dir: &Path, schemas: usize, modules: usize, plans: usize) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut s = String::from("[\n");
    for i in 0..schemas {
        let sep = if i + 1 < schemas { "," } else { "" };
        // Every fifth schema refers to the one before it; the rest are flat records.
        let extra = if i % 5 == 4 {
            format!(r#", "prev": {{"ref": "bench/S{}@1"}}"#, i - 1)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            r#"  {{"$kind": "defschema", "name": "bench/S{i}@1", "type": {{"record": {{"id": {{"nat": {{}}}}, "label": {{"text": {{}}}}, "tags": {{"set": {{"text": {{}}}}}}, "note": {{"option": {{"text": {{}}}}}}{extra}}}}}}}{sep}"#
        );
    }
    s.push_str("]\n");
    std::fs::write(dir.join("schemas.air.json"), s).expect("write schemas");

    let mut m = String::from("[\n");
    for i in 0..modules {
        let sep = if i + 1 < modules { "," } else { "" };
        let _ = writeln!(
            m,
            r#"  {{"$kind": "defmodule", "name": "bench/M{i}@1", "module_kind": "reducer", "abi": {{"reducer": {{"state": "bench/S{}@1", "event": "bench/S{}@1", "effects_emitted": [], "cap_slots": {{}}}}}}}}{sep}"#,
            (2 * i) % schemas,
            (2 * i + 1) % schemas
        );
    }
    m.push_str("]\n");
    std::fs::write(dir.join("modules.air.json"), m).expect("write modules");

    let mut p = String::from("[\n");
    for i in 0..plans {
        let sep = if i + 1 < plans { "," } else { "" };
        let input = (3 * i) % schemas;
        let _ = writeln!(
            p,
            r#"  {{"$kind": "defplan", "name": "bench/P{i}@1", "input": "bench/S{input}@1", "locals": {{"n": "bench/S{input}@1"}}, "steps": [{{"id": "a", "op": "assign", "expr": {{"ref": "@plan.input"}}, "bind": {{"as": "n"}}}}, {{"id": "b", "op": "assign", "expr": {{"op": "add", "args": [{{"ref": "@plan.input.id"}}, {{"nat": 1}}]}}, "bind": {{"as": "m"}}}}, {{"id": "done", "op": "end"}}], "edges": [{{"from": "a", "to": "b"}}, {{"from": "b", "to": "done", "when": {{"op": "gt", "args": [{{"ref": "@plan.input.id"}}, {{"nat": 0}}]}}}}]}}{sep}"#
        );
    }
    p.push_str("]\n");
    std::fs::write(dir.join("plans.air.json"), p).expect("write plans");

    let list = |prefix: &str, n: usize| {
        (0..n)
            .map(|i| format!(r#"{{"name": "bench/{prefix}{i}@1"}}"#))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let routes = (0..modules)
        .map(|i| {
            format!(
                r#"{{"event": "bench/S{}@1", "reducer": "bench/M{i}@1"}}"#,
                (2 * i + 1) % schemas
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = format!(
        r#"{{"$kind": "manifest", "air_version": "1", "schemas": [{}], "modules": [{}], "plans": [{}], "effects": [], "caps": [], "policies": [], "routing": {{"events": [{routes}], "inboxes": []}}, "triggers": []}}"#,
        list("S", schemas),
        list("M", modules),
        list("P", plans)
    );
    std::fs::write(dir.join("manifest.air.json"), manifest).expect("write manifest");
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let air = dir.path().join("air");
    generate(&air, 1000, 200, 200);
    let bytes: u64 = std::fs::read_dir(&air)
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("meta").len())
        .sum();
    let mut g = c.benchmark_group("air");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("load_1000_schemas_200_modules_200_plans", |b| {
        b.iter(|| {
            let loaded = load_path(black_box(&air));
            assert!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
            loaded
        });
    });
    g.bench_function("check_1000_schemas_200_modules_200_plans", |b| {
        b.iter(|| {
            let loaded = load_path(black_box(&air));
            let v = validate(loaded.nodes).unwrap_or_else(|d| panic!("{}", d[0]));
            v.manifest_id
        });
    });
    g.finish();

    // Typed values: a record with a list of 50 nested records, through both lenses.
    use aos::air::types::{NoSchemas, Type};
    use aos::air::value;
    use aos::codec::json::parse_json;
    let ty = Type::from_json(
        &parse_json(
            r#"{"record": {"id": {"nat": {}}, "name": {"text": {}}, "when": {"time": {}},
                "price": {"dec128": {}}, "items": {"list": {"record": {"sku": {"text": {}},
                "qty": {"int": {}}, "tags": {"set": {"text": {}}}, "note": {"option": {"text": {}}}}}}}}"#,
        )
        .expect("type json"),
    )
    .expect("type");
    let items: Vec<String> = (0..50)
        .map(|i| {
            format!(r#"{{"sku": "sku-{i}", "qty": {i}, "tags": ["b", "a", "b"], "note": null}}"#)
        })
        .collect();
    let sugar_text = format!(
        r#"{{"id": 7, "name": "order", "when": "2026-11-27T10:00:00Z", "price": "12.50", "items": [{}]}}"#,
        items.join(", ")
    );
    let sugar = parse_json(&sugar_text).expect("value json");
    let v = value::from_json(&sugar, &ty, &NoSchemas).expect("typed value");
    let tagged = value::to_tagged(&v, &ty, &NoSchemas).expect("tagged");
    let cbor_len = aos::codec::cbor::encode(&v).len() as u64;
    let mut g = c.benchmark_group("air_value");
    g.throughput(Throughput::Bytes(cbor_len));
    g.bench_function("from_sugar_json", |b| {
        b.iter(|| value::from_json(black_box(&sugar), &ty, &NoSchemas).expect("ok"))
    });
    g.bench_function("from_tagged_json", |b| {
        b.iter(|| value::from_json(black_box(&tagged), &ty, &NoSchemas).expect("ok"))
    });
    g.bench_function("canonicalize", |b| {
        b.iter(|| value::canonicalize(black_box(&v), &ty, &NoSchemas).expect("ok"))
    });
    g.bench_function("to_sugar_json", |b| {
        b.iter(|| value::to_sugar(black_box(&v), &ty, &NoSchemas).expect("ok"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
