//! Fuzzing the log's recovery: a valid log with arbitrary bytes appended,
//! inserted at any offset, or written over a cut at any offset (a torn
//! write followed by garbage), then opened by the local engine.
//!
//! Opening must give a clean start (with everything before the damage
//! kept, the state being exactly what the kept file replays to, and the
//! file ready for appends), or the documented corruption error with the
//! file untouched; never a panic or any other error.
//!
//! `KVCTL_FUZZ_CASES` sets the number of damaged logs (default
//! [`DEFAULT_CASES`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use kvctl::local::Engine;
use kvctl::storage::{Command, Stats, Storage, StoredValue};
use kvctl::ttl::now_ms;
use kvctl::wal::{BatchMark, FsyncPolicy, Op, Record, ScanError, WalError, WAL_FILE};

use crate::support::{env_count, reopen_engine};

/// Damaged logs in the plain test command: well under a minute on a slow
/// two-core machine.
const DEFAULT_CASES: u64 = 1000;

/// A group of records the engine writes together: one record, or a batch.
type Group = Vec<Record>;

/// What is done to the log.
#[derive(Debug, Clone)]
enum Damage {
    /// Bytes after the last line.
    Append(Vec<u8>),
    /// Bytes inserted at an offset.
    Insert(prop::sample::Index, Vec<u8>),
    /// The log cut at an offset, then bytes appended: a torn write.
    CutAndAppend(prop::sample::Index, Vec<u8>),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        "[a-z \"\\\\é\u{1F600}]{0,12}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(null)),
        Just(json!({"z": [1, 2.5, true], "a": {"b": null}})),
    ]
}

/// A record of one of the log's own keys, `k0` to `k5`.
fn record(now_s: u64) -> impl Strategy<Value = Record> {
    let ttl_and_time = prop_oneof![
        3 => Just((None, now_s - 100)),
        // Far from expiring while the test runs.
        1 => Just((Some(1_000_000), now_s - 100)),
        // Expired long ago: replay leaves the key absent.
        1 => Just((Some(10), now_s - 100_000)),
    ];
    (0..6u8, value(), any::<bool>(), ttl_and_time, 0..1000u64).prop_map(
        |(k, value, set, (ttl, secs), ms)| Record {
            op: if set {
                Op::Set {
                    key: format!("k{k}").into(),
                    value: StoredValue::from_value(&value),
                    ttl,
                }
            } else {
                Op::Delete {
                    key: format!("k{k}").into(),
                }
            },
            timestamp_ms: secs * 1000 + ms,
            batch: None,
        },
    )
}

/// A valid log as groups of records, batch ids unique.
fn log(now_s: u64) -> impl Strategy<Value = Vec<Group>> {
    prop::collection::vec(prop::collection::vec(record(now_s), 1..4), 0..12).prop_map(|groups| {
        groups
            .into_iter()
            .enumerate()
            .map(|(id, mut group)| {
                let len = group.len() as u32;
                if len > 1 {
                    for record in &mut group {
                        record.batch = Some(BatchMark {
                            id: id as u64 + 1,
                            len,
                        });
                    }
                }
                group
            })
            .collect()
    })
}

/// Pieces of JSON and of the log's syntax, for damage that nearly parses.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b" ",
    b"{",
    b"}",
    b"\"",
    b":",
    b",",
    b"\0",
    b"\xff",
    b"\xc3",
    br#""op":"set""#,
    br#""op":"delete""#,
    br#""key":"t""#,
    br#""value":1"#,
    br#""timestamp":1"#,
    br#""ttl":5"#,
    br#""batch":1,"batch_len":2"#,
];

/// Damage bytes: arbitrary, JSON-ish tokens, and lines (whole or cut) of
/// records of other keys, so that some damage is itself valid records.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(TOKENS).prop_map(<[u8]>::to_vec);
    let foreign_line = (
        any::<bool>(),
        prop::option::of((1..4u64, 1..4u32)),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(set, batch, cut)| {
            let record = Record {
                op: if set {
                    Op::Set {
                        key: "t".into(),
                        value: StoredValue::from_value(&json!("t")),
                        ttl: None,
                    }
                } else {
                    Op::Delete { key: "t".into() }
                },
                timestamp_ms: 1000,
                batch: batch.map(|(id, len)| BatchMark { id, len }),
            };
            let line = record.encode().into_bytes();
            // Whole half the time, else cut anywhere.
            let end = cut.index(2 * line.len() + 1).min(line.len());
            line[..end].to_vec()
        });
    let piece = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..24),
        token,
        foreign_line,
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| pieces.concat())
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (bytes()).prop_map(Damage::Append),
        (any::<prop::sample::Index>(), bytes()).prop_map(|(at, b)| Damage::Insert(at, b)),
        (any::<prop::sample::Index>(), bytes()).prop_map(|(at, b)| Damage::CutAndAppend(at, b)),
    ]
}

/// The state a valid log replays to at `now`: (key, value) and counts.
fn replayed(log: &[u8], now: u64) -> Result<(BTreeMap<String, String>, Stats), String> {
    let mut map = BTreeMap::new();
    for line in log.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = Record::decode(line).map_err(|e| format!("kept a bad line: {e}"))?;
        let live = record.deadline_ms().is_none_or(|d| now < d);
        match record.op {
            Op::Set { key, value, .. } if live => map.insert(key.to_string(), value),
            Op::Set { key, .. } | Op::Delete { key } => map.remove(key.as_str()),
        };
    }
    let stats = Stats {
        keys: map.len() as u64,
        size_bytes: map.values().map(StoredValue::size).sum(),
    };
    let map = map
        .into_iter()
        .map(|(k, v)| (k, v.json().to_owned()))
        .collect();
    Ok((map, stats))
}

async fn state_of(engine: &Engine) -> (BTreeMap<String, String>, Stats) {
    let mut map = BTreeMap::new();
    for key in engine.list("").await.unwrap() {
        let value = engine.get(&key).await.unwrap();
        map.insert(key.to_string(), value.to_string());
    }
    (map, engine.stats().await.unwrap())
}

/// Where the group holding byte `at` of the log starts: damage there can
/// cost that whole group (a batch goes whole), never anything before it.
fn group_start(groups: &[Group], at: usize) -> usize {
    let mut start = 0;
    for group in groups {
        let len: usize = group.iter().map(|r| r.encode().len()).sum();
        if at < start + len {
            return start;
        }
        start += len;
    }
    start
}

/// Writes the damaged log, opens it, and judges the outcome.
fn check(
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
    groups: &[Group],
    damage: &Damage,
) -> Result<&'static str, TestCaseError> {
    let clean: Vec<u8> = groups
        .iter()
        .flatten()
        .flat_map(|r| r.encode().into_bytes())
        .collect();
    let (damaged, safe) = match damage {
        Damage::Append(bytes) => ([&clean[..], bytes].concat(), clean.len()),
        Damage::Insert(at, bytes) => {
            let at = at.index(clean.len() + 1);
            (
                [&clean[..at], bytes, &clean[at..]].concat(),
                group_start(groups, at),
            )
        }
        Damage::CutAndAppend(at, bytes) => {
            let at = at.index(clean.len() + 1);
            ([&clean[..at], bytes].concat(), group_start(groups, at))
        }
    };
    let wal = dir.join(WAL_FILE);
    fs::write(&wal, &damaged).unwrap();
    match Engine::open(dir, FsyncPolicy::Never) {
        Err(WalError::Scan(ScanError::Corrupt(corrupt))) => {
            prop_assert!(!corrupt.to_string().is_empty());
            prop_assert_eq!(
                fs::read(&wal).unwrap(),
                damaged,
                "a corrupt log was changed"
            );
            prop_assert!(
                corrupt.pos.offset as usize >= safe && corrupt.good_len as usize >= safe,
                "corruption reported at {:?} (good up to {}), before the damage's group at {}",
                corrupt.pos,
                corrupt.good_len,
                safe
            );
            Ok("corrupt")
        }
        Err(other) => Err(TestCaseError::fail(format!("unexpected error: {other}"))),
        Ok((engine, report)) => {
            let kept = fs::read(&wal).unwrap();
            // Cut at most back to the damaged group, plus maybe a newline.
            let body = kept.strip_suffix(b"\n").unwrap_or(&kept);
            prop_assert!(
                damaged.starts_with(body),
                "the kept file is not a cut of the log"
            );
            prop_assert!(
                kept.len() >= safe && kept[..safe] == clean[..safe],
                "records before the damage were lost: kept {} bytes, damage's group at {}",
                kept.len(),
                safe
            );
            prop_assert!(
                kept.is_empty() || kept.ends_with(b"\n"),
                "not ready for appends"
            );
            prop_assert_eq!(report.torn.is_some(), kept.len() < damaged.len());
            let outcome = if report.torn.is_some() {
                "cut"
            } else {
                "clean"
            };
            let state = runtime.block_on(state_of(&engine));
            let expected = replayed(&kept, now_ms()).map_err(TestCaseError::fail)?;
            prop_assert_eq!(
                &state,
                &expected,
                "the state is not what the kept log replays to"
            );
            // The recovered log takes appends and replays cleanly.
            let after = Command::Set {
                key: "after".into(),
                value: StoredValue::from_value(&json!("after")),
                ttl: None,
            };
            runtime.block_on(engine.execute(vec![after])).unwrap();
            runtime.block_on(engine.shutdown()).unwrap();
            drop(engine);
            let (engine, report) = reopen_engine(dir, FsyncPolicy::Never)
                .map_err(|e| TestCaseError::fail(format!("a recovered log failed: {e}")))?;
            prop_assert!(report.torn.is_none(), "{:?}", report.torn);
            let (mut reopened, _) = runtime.block_on(state_of(&engine));
            runtime.block_on(engine.shutdown()).unwrap();
            let after = reopened.remove("after");
            prop_assert_eq!(after.as_deref(), Some(r#""after""#));
            prop_assert_eq!(
                reopened,
                expected
                    .0
                    .into_iter()
                    .filter(|(k, _)| k != "after")
                    .collect()
            );
            Ok(outcome)
        }
    }
}

#[test]
fn fuzz_wal_damage_gives_a_clean_start_a_torn_tail_cut_or_corruption() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = env_count("KVCTL_FUZZ_CASES", DEFAULT_CASES);
    let config = Config {
        cases: u32::try_from(cases).expect("KVCTL_FUZZ_CASES fits in u32"),
        failure_persistence: None,
        ..Config::default()
    };
    let outcomes = std::cell::RefCell::new(BTreeMap::<&str, u64>::new());
    let now_s = now_ms() / 1000;
    let result = TestRunner::new(config).run(&(log(now_s), damage()), |(groups, damage)| {
        let dir = tempfile::tempdir().unwrap();
        let outcome = check(dir.path(), &runtime, &groups, &damage)?;
        *outcomes.borrow_mut().entry(outcome).or_default() += 1;
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let outcomes = outcomes.into_inner();
    println!("fuzz wal: {cases} damaged logs opened: {outcomes:?}");
    if cases >= 200 {
        for outcome in ["corrupt", "cut", "clean"] {
            assert!(
                outcomes.contains_key(outcome),
                "never {outcome}: {outcomes:?}"
            );
        }
    }
}
