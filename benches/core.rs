//! Micro-benchmarks of the pure paths: the WAL codec, replay, and the local
//! engine's map: get, put, prefix listing and expiry sweep.
//!
//! Run with `cargo bench --bench core`.

use std::hint::black_box;
use std::io::{BufReader, Seek, Write};
use std::path::Path;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;

use kvctl::local::loader::Loader;
use kvctl::local::map::{Entry, Map};
use kvctl::value::{Key, StoredValue};
use kvctl::wal::{replay, LogValue, Op, Record};

const NOW: u64 = 1_764_129_000_000;

fn key(n: u64) -> Key {
    format!("key:{n:010}").into()
}

fn value() -> StoredValue {
    StoredValue::from_value(&json!("x".repeat(100)))
}

fn set(n: u64, ttl: Option<u64>) -> Record {
    Record {
        op: Op::Set {
            key: key(n),
            value: value(),
            ttl,
        },
        timestamp_ms: NOW,
        batch: None,
    }
}

fn store_with(keys: u64) -> Map {
    let mut loader = Loader::new(NOW);
    for n in 0..keys {
        loader.apply(set(n, None));
    }
    // Every value is at hand: the (empty) log is not read.
    loader.finish(&tempfile::tempfile().unwrap()).unwrap()
}

fn codec(c: &mut Criterion) {
    let record = set(42, Some(60));
    let line = record.encode();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode set", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            black_box(&record).encode_into(&mut out);
        })
    });
    group.bench_function("decode set", |b| {
        let bytes = line.trim_end().as_bytes();
        b.iter(|| Record::decode(black_box(bytes)).unwrap())
    });
    group.finish();
}

fn replay_log(c: &mut Criterion) {
    let records = 100_000u64;
    let mut log = Vec::new();
    for n in 0..records {
        set(n % 50_000, (n % 10 == 0).then_some(60)).encode_into(&mut log);
    }
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(&log).unwrap();
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(records));
    group.sample_size(20);
    group.bench_function("scan + load 100k records", |b| {
        b.iter(|| {
            let mut loader = Loader::new(NOW);
            (&file).rewind().unwrap();
            replay::scan(
                BufReader::new(&file),
                Path::new("wal.log"),
                |r: Record<LogValue>, _| loader.apply(r),
                |_| {},
            )
            .unwrap();
            loader.finish(&file).unwrap()
        })
    });
    group.finish();
}

fn store_paths(c: &mut Criterion) {
    let mut group = c.benchmark_group("map");
    let store = store_with(100_000);
    let mut rng = fastrand::Rng::with_seed(1);
    group.bench_function("get hit, 100k keys", |b| {
        b.iter(|| {
            store
                .get(&key(rng.u64(0..100_000)), NOW)
                .map(|v| v.json().len())
        })
    });
    group.bench_function("overwrite, 100k keys", |b| {
        let mut store = store_with(100_000);
        b.iter_batched(
            || (key(rng.u64(0..100_000)), Entry::new(value(), None)),
            |(key, entry)| store.insert(key, entry),
            BatchSize::SmallInput,
        )
    });
    let million = store_with(1_000_000);
    group.bench_function("list 1000 of 1M keys by prefix", |b| {
        b.iter(|| {
            let prefix = format!("key:{:07}", rng.u64(0..1000));
            million.keys_with_prefix(&prefix, NOW).count()
        })
    });
    group.bench_function("sweep 10k expired keys", |b| {
        b.iter_batched(
            || {
                let mut store = Map::new();
                for n in 0..10_000 {
                    store.insert(key(n), Entry::new(value(), Some(NOW + 1_000)));
                }
                store
            },
            |mut store| store.sweep(NOW + 1_000, usize::MAX),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, codec, replay_log, store_paths);
criterion_main!(benches);
