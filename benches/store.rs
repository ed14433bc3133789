//! store/*: object writes (loose and batched), reads, and fsck, through the library.

use std::hint::black_box;

use aos::object::Kind;
use aos::progress::NoProgress;
use aos::store::Store;
use aos::store::fsck::fsck;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn payloads(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut p: Vec<u8> = (0..size / 2)
                .map(|j| ((i * 131 + j * 17) % 251) as u8)
                .collect();
            p.extend(
                format!("object {i} ")
                    .repeat(size)
                    .bytes()
                    .take(size - p.len()),
            );
            p
        })
        .collect()
}

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = Store::init(&dir.path().join(".aos")).expect("init");
    (dir, s)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.sample_size(10);

    let small = payloads(20_000, 1024);
    g.throughput(Throughput::Bytes(20_000 * 1024));
    g.bench_function("batch_write_20k_1KiB", |b| {
        b.iter_batched(
            fresh,
            |(_d, s)| {
                let mut batch = s.batch();
                for p in &small {
                    batch.add(Kind::Blob, p).expect("add");
                }
                batch.commit().expect("commit")
            },
            BatchSize::PerIteration,
        );
    });

    let loose = payloads(1000, 1024);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("loose_put_1000_1KiB", |b| {
        b.iter_batched(
            fresh,
            |(_d, s)| {
                for p in &loose {
                    s.put(Kind::Blob, p).expect("put");
                }
            },
            BatchSize::PerIteration,
        );
    });

    let (_d, s) = fresh();
    let mut batch = s.batch();
    let ids: Vec<_> = small
        .iter()
        .map(|p| batch.add(Kind::Blob, p).expect("add"))
        .collect();
    batch.commit().expect("commit");
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("packed_read_20k", |b| {
        b.iter(|| {
            for id in &ids {
                black_box(s.get(id).expect("get"));
            }
        });
    });

    let big: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8 & 0x3f)
        .collect();
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("put_64MiB", |b| {
        b.iter_batched(
            fresh,
            |(_d, s)| s.put(Kind::Blob, &big).expect("put"),
            BatchSize::PerIteration,
        );
    });
    let (_d2, s2) = fresh();
    let big_id = s2.put(Kind::Blob, &big).expect("put");
    g.bench_function("get_64MiB", |b| b.iter(|| s2.get(&big_id).expect("get")));

    // fsck over 100,000 objects, packed and loose.
    let many = payloads(100_000, 1024);
    let (_d3, packed) = fresh();
    let mut batch = packed.batch();
    for p in &many {
        batch.add(Kind::Blob, p).expect("add");
    }
    batch.commit().expect("commit");
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("fsck_100k_packed", |b| {
        b.iter(|| assert!(fsck(&packed, &NoProgress).expect("fsck").is_ok()))
    });
    let (_d4, loose_store) = fresh();
    for p in &many {
        loose_store.put(Kind::Blob, p).expect("put");
    }
    g.bench_function("fsck_100k_loose", |b| {
        b.iter(|| assert!(fsck(&loose_store, &NoProgress).expect("fsck").is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
