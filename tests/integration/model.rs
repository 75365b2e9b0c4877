//! The model test: random sequences of operations against the local engine
//! (through the `Storage` interface) and against a plain `BTreeMap` model
//! with expiry must give the same answers, and the same state after every
//! restart.
//!
//! Expiry is modelled without racing the clock: each entry with a ttl
//! carries the interval its deadline must lie in (the write's timestamp is
//! taken somewhere between the wall-clock readings before and after the
//! request). An answer is only demanded where the interval decides it; an
//! answer inside the interval narrows it, so later answers must agree.
//!
//! An operation that must leave the state as it is (a restart, and later a
//! compaction) is one more [`Step`] whose check is [`check_full_state`].
//!
//! `KVCTL_MODEL_CASES` sets the number of sequences (default
//! [`DEFAULT_CASES`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

use kvctl::local::Engine;
use kvctl::storage::{Command, Outcome, Storage, StorageError, StoredValue};
use kvctl::ttl::now_ms;
use kvctl::wal::FsyncPolicy;

use crate::support::{env_count, reopen_engine};

/// Sequences in the plain test command. Short ttls make some sequences
/// wait for a deadline (a second at most), which is most of the time spent.
const DEFAULT_CASES: u64 = 40;

/// Keys with shared prefixes, so that listing by prefix has work to do.
const KEYS: &[&str] = &["a", "ab", "abc", "b", "ba", "c/1", "c/2", "é", "batch"];
const PREFIXES: &[&str] = &["", "a", "ab", "b", "c/", "é", "z"];

/// One write or read of a batch.
#[derive(Debug, Clone)]
enum BatchOp {
    Set(&'static str, Value, Option<u64>),
    Delete(&'static str),
    Get(&'static str),
}

/// One step of a sequence.
#[derive(Debug, Clone)]
enum Step {
    Set(&'static str, Value, Option<u64>),
    Delete(&'static str),
    Get(&'static str),
    List(&'static str),
    Batch(Vec<BatchOp>),
    Stats,
    /// Shutdown and reopen on the same directory.
    Restart,
    /// Compact the log online, then reopen on the compacted log.
    Compact,
    /// Sleep until the soonest short ttl has certainly run out.
    Wait,
}

fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(KEYS)
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-zé\"\\\\ ]{0,8}".prop_map(Value::from),
        Just(json!(null)),
        Just(json!(1.5)),
        Just(json!({"z": [true, null], "a": 1})),
    ]
}

fn ttl() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![4 => Just(None), 2 => Just(Some(1)), 1 => Just(Some(100_000))]
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        3 => (key(), value(), ttl()).prop_map(|(k, v, t)| BatchOp::Set(k, v, t)),
        2 => key().prop_map(BatchOp::Delete),
        2 => key().prop_map(BatchOp::Get),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (key(), value(), ttl()).prop_map(|(k, v, t)| Step::Set(k, v, t)),
        4 => key().prop_map(Step::Delete),
        5 => key().prop_map(Step::Get),
        3 => prop::sample::select(PREFIXES).prop_map(Step::List),
        4 => prop::collection::vec(batch_op(), 0..6).prop_map(Step::Batch),
        2 => Just(Step::Stats),
        2 => Just(Step::Restart),
        2 => Just(Step::Compact),
        1 => Just(Step::Wait),
    ]
}

/// A model entry: its value (compact JSON) and the interval its deadline
/// lies in (`u64::MAX` for none). It is live at `t` iff `t < deadline`.
#[derive(Debug, Clone)]
struct Entry {
    json: String,
    earliest: u64,
    latest: u64,
}

/// What the model knows of a key over a window of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Live,
    Gone,
    Either,
}

#[derive(Debug, Default)]
struct Model {
    entries: BTreeMap<String, Entry>,
    /// Reads that found a key with a ttl gone: expiry was observed.
    expiries_seen: usize,
}

impl Model {
    /// A set written at some instant of `[t0, t1]`.
    fn set(&mut self, key: &str, value: &Value, ttl: Option<u64>, t0: u64, t1: u64) {
        let (earliest, latest) = match ttl {
            None => (u64::MAX, u64::MAX),
            Some(secs) => (t0 + secs * 1000, t1 + secs * 1000),
        };
        let json = StoredValue::from_value(value).json().to_owned();
        self.entries.insert(
            key.to_owned(),
            Entry {
                json,
                earliest,
                latest,
            },
        );
    }

    /// What a read at some instant of `[t0, t1]` must find.
    fn known(&self, key: &str, t0: u64, t1: u64) -> Known {
        match self.entries.get(key) {
            None => Known::Gone,
            Some(e) if t1 < e.earliest => Known::Live,
            Some(e) if t0 >= e.latest => Known::Gone,
            Some(_) => Known::Either,
        }
    }

    /// Checks what a read at some instant of `[t0, t1]` found (`None`:
    /// absent), and learns from it.
    fn observe(
        &mut self,
        key: &str,
        found: Option<&str>,
        t0: u64,
        t1: u64,
    ) -> Result<(), TestCaseError> {
        let known = self.known(key, t0, t1);
        match found {
            Some(json) => {
                prop_assert!(
                    known != Known::Gone,
                    "{key} is there ({json}) but should be gone"
                );
                let entry = self.entries.get_mut(key).expect("not gone");
                prop_assert_eq!(json, entry.json.as_str(), "the value of {}", key);
                // Live at some instant at or after t0: its deadline is later.
                entry.earliest = entry.earliest.max(t0 + 1);
            }
            None => {
                prop_assert!(known != Known::Live, "{key} is gone but should be there");
                let had_ttl = self.entries.get(key).is_some_and(|e| e.latest != u64::MAX);
                self.expiries_seen += usize::from(had_ttl);
                // Gone once is gone for good, until it is set again.
                self.entries.remove(key);
            }
        }
        Ok(())
    }
}

impl Model {
    /// Checks a delete at some instant of `[t0, t1]` that found the key
    /// (`done`) or not; the key is gone afterwards either way.
    fn deleted(&mut self, key: &str, done: bool, t0: u64, t1: u64) -> Result<(), TestCaseError> {
        let json = self.entries.get(key).map(|e| e.json.clone());
        if done {
            prop_assert!(json.is_some(), "deleted {key}, which should not be there");
        }
        self.observe(key, json.as_deref().filter(|_| done), t0, t1)?;
        self.entries.remove(key);
        Ok(())
    }
}

/// A store under test and the model it must agree with.
struct Run<'r> {
    runtime: &'r tokio::runtime::Runtime,
    dir: &'r Path,
    policy: FsyncPolicy,
    engine: Option<Engine>,
    model: Model,
}

impl Run<'_> {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open")
    }

    /// Runs `f` on the engine, answering its result and the wall-clock
    /// window it ran in.
    fn timed<T, F: std::future::Future<Output = T>>(
        &self,
        f: impl FnOnce(Engine) -> F,
    ) -> (T, u64, u64) {
        let engine = self.engine().clone();
        let t0 = now_ms();
        let out = self.runtime.block_on(f(engine));
        (out, t0, now_ms())
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Set(key, value, ttl) => {
                let command = set_command(key, value, *ttl);
                let (out, t0, t1) = self.timed(|e| async move { e.execute(vec![command]).await });
                prop_assert_eq!(out, Ok(vec![Outcome::Done]));
                self.model.set(key, value, *ttl, t0, t1);
            }
            Step::Delete(key) => {
                let command = Command::Delete { key: (*key).into() };
                let (out, t0, t1) = self.timed(|e| async move { e.execute(vec![command]).await });
                let done = match out.as_deref() {
                    Ok([Outcome::Done]) => true,
                    Ok([Outcome::NotFound]) => false,
                    other => return Err(TestCaseError::fail(format!("delete: {other:?}"))),
                };
                self.model.deleted(key, done, t0, t1)?;
            }
            Step::Get(key) => {
                let (out, t0, t1) = self.timed(|e| async move { e.get(key).await });
                let found = match out {
                    Ok(json) => Some(json),
                    Err(StorageError::NotFound) => None,
                    Err(other) => return Err(TestCaseError::fail(format!("get: {other}"))),
                };
                self.model.observe(key, found.as_deref(), t0, t1)?;
            }
            Step::List(prefix) => self.check_list(prefix)?,
            Step::Batch(ops) => self.batch(ops)?,
            Step::Stats => self.check_stats()?,
            Step::Restart => {
                let engine = self.engine.take().expect("open");
                self.runtime.block_on(engine.shutdown()).unwrap();
                drop(engine);
                let (engine, _) = reopen_engine(self.dir, self.policy)
                    .map_err(|e| TestCaseError::fail(format!("reopen: {e}")))?;
                self.engine = Some(engine);
                self.check_full_state()?;
            }
            Step::Compact => {
                let engine = self.engine.as_ref().expect("open");
                self.runtime
                    .block_on(engine.compact())
                    .map_err(|e| TestCaseError::fail(format!("compact: {e}")))?;
                self.check_full_state()?;
                // What the compacted log replays to is the same state.
                self.step(&Step::Restart)?;
            }
            Step::Wait => {
                let now = now_ms();
                let soonest = self
                    .model
                    .entries
                    .values()
                    .map(|e| e.latest)
                    .filter(|&d| d >= now && d - now <= 2_000)
                    .min();
                if let Some(deadline) = soonest {
                    // Waiting for the wall clock to pass a deadline is the
                    // point here; there is nothing to poll.
                    std::thread::sleep(Duration::from_millis(deadline - now + 1));
                }
            }
        }
        Ok(())
    }

    fn batch(&mut self, ops: &[BatchOp]) -> Result<(), TestCaseError> {
        let commands: Vec<Command> = ops
            .iter()
            .map(|op| match op {
                BatchOp::Set(key, value, ttl) => set_command(key, value, *ttl),
                BatchOp::Delete(key) => Command::Delete { key: (*key).into() },
                BatchOp::Get(key) => Command::Get { key: (*key).into() },
            })
            .collect();
        let (out, t0, t1) = self.timed(|e| async move { e.execute(commands).await });
        let outcomes = out.map_err(|e| TestCaseError::fail(format!("batch: {e}")))?;
        prop_assert_eq!(outcomes.len(), ops.len());
        for (op, outcome) in ops.iter().zip(outcomes) {
            match (op, outcome) {
                (BatchOp::Set(key, value, ttl), Outcome::Done) => {
                    self.model.set(key, value, *ttl, t0, t1)
                }
                (BatchOp::Get(key), Outcome::Value(json)) => {
                    self.model.observe(key, Some(&json), t0, t1)?
                }
                (BatchOp::Get(key), Outcome::NotFound) => self.model.observe(key, None, t0, t1)?,
                (BatchOp::Delete(key), Outcome::Done) => self.model.deleted(key, true, t0, t1)?,
                (BatchOp::Delete(key), Outcome::NotFound) => {
                    self.model.deleted(key, false, t0, t1)?
                }
                (op, outcome) => {
                    return Err(TestCaseError::fail(format!("{op:?} answered {outcome:?}")))
                }
            }
        }
        Ok(())
    }

    fn check_list(&mut self, prefix: &str) -> Result<(), TestCaseError> {
        let (out, t0, t1) = self.timed(|e| async move { e.list(prefix).await });
        let listed: Vec<String> = out.unwrap().into_iter().map(|k| k.to_string()).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(
            &sorted,
            &listed,
            "listed in ascending byte order, once each"
        );
        for key in &listed {
            prop_assert!(key.starts_with(prefix), "{key} listed under {prefix:?}");
            prop_assert!(
                self.model.entries.contains_key(key),
                "{key} listed but never set"
            );
        }
        let modelled: Vec<String> = self
            .model
            .entries
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        for key in modelled {
            let json = listed
                .contains(&key)
                .then(|| self.model.entries[&key].json.clone());
            self.model.observe(&key, json.as_deref(), t0, t1)?;
        }
        Ok(())
    }

    fn check_stats(&mut self) -> Result<(), TestCaseError> {
        let (out, t0, t1) = self.timed(|e| async move { e.stats().await });
        let stats = out.unwrap();
        let (mut keys, mut bytes) = ((0, 0), (0, 0));
        for (key, entry) in &self.model.entries {
            let size = StoredValue::from_json_text(&entry.json).unwrap().size();
            match self.model.known(key, t0, t1) {
                Known::Live => {
                    keys = (keys.0 + 1, keys.1 + 1);
                    bytes = (bytes.0 + size, bytes.1 + size);
                }
                Known::Either => {
                    keys.1 += 1;
                    bytes.1 += size;
                }
                Known::Gone => {}
            }
        }
        prop_assert!(
            (keys.0..=keys.1).contains(&stats.keys)
                && (bytes.0..=bytes.1).contains(&stats.size_bytes),
            "stats {:?}, the model allows keys {:?} and bytes {:?}",
            stats,
            keys,
            bytes
        );
        Ok(())
    }

    /// Everything the store holds, against the model: after any step that
    /// must not change the state.
    fn check_full_state(&mut self) -> Result<(), TestCaseError> {
        self.check_list("")?;
        for key in KEYS {
            self.step(&Step::Get(key))?;
        }
        self.check_stats()
    }
}

fn set_command(key: &str, value: &Value, ttl: Option<u64>) -> Command {
    Command::Set {
        key: key.into(),
        value: StoredValue::from_value(value),
        ttl,
    }
}

#[test]
fn model_random_operations_agree_with_a_btreemap_across_restarts() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = env_count("KVCTL_MODEL_CASES", DEFAULT_CASES);
    let config = Config {
        cases: u32::try_from(cases).expect("KVCTL_MODEL_CASES fits in u32"),
        failure_persistence: None,
        ..Config::default()
    };
    let policy = prop_oneof![3 => Just(FsyncPolicy::Never), 1 => Just(FsyncPolicy::Always)];
    let steps = prop::collection::vec(step(), 1..40);
    let total_steps = std::cell::Cell::new(0usize);
    let expiries = std::cell::Cell::new(0usize);
    let result = TestRunner::new(config).run(&(policy, steps), |(policy, steps)| {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), policy).unwrap();
        let mut run = Run {
            runtime: &runtime,
            dir: dir.path(),
            policy,
            engine: Some(engine),
            model: Model::default(),
        };
        let mut outcome = Ok(());
        for step in &steps {
            outcome = run.step(step);
            if outcome.is_err() {
                break;
            }
        }
        // The final state survives a restart too.
        if outcome.is_ok() {
            outcome = run.step(&Step::Restart);
        }
        if let Some(engine) = run.engine.take() {
            runtime.block_on(engine.shutdown()).unwrap();
        }
        total_steps.set(total_steps.get() + steps.len());
        expiries.set(expiries.get() + run.model.expiries_seen);
        outcome
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    println!(
        "model: {cases} sequences, {} steps, each against the engine and the model; \
         {} reads found a ttl run out",
        total_steps.get(),
        expiries.get()
    );
}
