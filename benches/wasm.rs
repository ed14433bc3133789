//! wasm/*: the per-call overhead of a reducer step (fresh store and instance, `alloc`,
//! input copy, `step`, output copy) on an echo module, in both step shapes.

use std::hint::black_box;

use aos::wasm::{Limits, ReducerModule};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ALLOC: &str = r#"
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $p))
"#;

const ECHO_A: &str = r#"(func (export "step") (param i32 i32) (result i32 i32)
    (local.get 0) (local.get 1))"#;

const ECHO_B: &str = r#"(func (export "step") (param $ret i32) (param $p i32) (param $n i32)
    (i32.store (local.get $ret) (local.get $p))
    (i32.store offset=4 (local.get $ret) (local.get $n)))"#;

fn compile(step: &str) -> ReducerModule {
    let text = format!("(module (memory (export \"memory\") 1) {ALLOC} {step})");
    let wasm = wat::parse_str(&text).expect("wat");
    ReducerModule::compile(&wasm, &Limits::default()).expect("compile")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("wasm");
    for (name, step) in [("echo_a", ECHO_A), ("echo_b", ECHO_B)] {
        let m = compile(step);
        for size in [64usize, 4096] {
            let input = vec![0xAB; size];
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("step/{name}/{size}B"), |b| {
                b.iter(|| m.step(black_box(&input)).expect("step"));
            });
        }
    }
    let text = format!("(module (memory (export \"memory\") 1) {ALLOC} {ECHO_A})");
    let wasm = wat::parse_str(&text).expect("wat");
    g.bench_function("compile/echo_a", |b| {
        b.iter(|| ReducerModule::compile(black_box(&wasm), &Limits::default()).expect("compile"));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
