//! Writes a large WAL for replay benchmarks, with the real record codec:
//! sets of 100-byte values over a keyspace (overwrites included), one record
//! in ten with a ttl (half of those long expired, for the sweep at start-up),
//! and one in twenty a delete.
//!
//! Usage: gen_wal DATA_DIR RECORDS [KEYSPACE]

use std::fs::File;
use std::io::{BufWriter, Write};

use kvctl::value::StoredValue;
use kvctl::wal::{Op, Record};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: gen_wal DATA_DIR RECORDS [KEYSPACE]");
    let records: u64 = args.next().and_then(|s| s.parse().ok()).expect("RECORDS");
    let keyspace: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(records / 2)
        .max(1);
    std::fs::create_dir_all(&dir).expect("create dir");
    let file = File::create(std::path::Path::new(&dir).join("wal.log")).expect("create wal.log");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let value = StoredValue::from_value(&serde_json::Value::String("x".repeat(100)));
    let now = kvctl::ttl::now_ms();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut line = Vec::with_capacity(256);
    for i in 0..records {
        let key: kvctl::value::Key = format!("key:{:010}", rng.u64(0..keyspace)).into();
        let roll = rng.u32(0..20);
        let set = |ttl| Op::Set {
            key: key.clone(),
            value: value.clone(),
            ttl,
        };
        let (op, timestamp_ms) = match roll {
            0 => (Op::Delete { key: key.clone() }, now),
            1 => (set(Some(60)), now - 3_600_000),
            2 => (set(Some(3600)), now),
            _ => (set(None), now),
        };
        line.clear();
        Record {
            op,
            timestamp_ms: timestamp_ms + i % 1000,
            batch: None,
        }
        .encode_into(&mut line);
        out.write_all(&line).expect("write");
    }
    out.flush().expect("flush");
}
