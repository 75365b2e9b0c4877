//! The behavioural suite of the storage interface: what every backend must
//! do, written once and run against each backend (`backend_suite!`).
//!
//! Each check takes a fresh, empty store. Backends whose state outlives the
//! handle are also checked to give the same answers after a reopen, by the
//! backend's own tests calling [`check_state`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Command, Key, Outcome, Stats, Storage, StorageError, StoredValue};

pub(crate) fn value(json: &str) -> StoredValue {
    StoredValue::from_json_text(json).expect("valid JSON")
}

pub(crate) fn set(key: &str, json: &str) -> Command {
    Command::Set {
        key: key.into(),
        value: value(json),
        ttl: None,
    }
}

pub(crate) fn set_for(key: &str, json: &str, ttl: u64) -> Command {
    Command::Set {
        key: key.into(),
        value: value(json),
        ttl: Some(ttl),
    }
}

pub(crate) fn delete(key: &str) -> Command {
    Command::Delete { key: key.into() }
}

pub(crate) fn get(key: &str) -> Command {
    Command::Get { key: key.into() }
}

fn found(json: &str) -> Outcome {
    Outcome::Value(json.into())
}

fn keys(list: &[&str]) -> Vec<Key> {
    list.iter().map(|&k| k.into()).collect()
}

/// Sets, gets, replaces and deletes single keys.
pub(crate) async fn single_key_writes_and_reads<S: Storage>(store: S) {
    assert_eq!(store.get("a").await, Err(StorageError::NotFound));
    assert_eq!(
        store.execute(vec![set("a", "1")]).await,
        Ok(vec![Outcome::Done])
    );
    assert_eq!(store.get("a").await.as_deref(), Ok("1"));
    let nested = r#"{"b":[1,2.5,null,true],"a":"é"}"#;
    assert_eq!(
        store.execute(vec![set("a", nested)]).await,
        Ok(vec![Outcome::Done])
    );
    assert_eq!(
        store.get("a").await.as_deref(),
        Ok(nested),
        "member order kept"
    );
    assert_eq!(
        store.execute(vec![delete("a")]).await,
        Ok(vec![Outcome::Done])
    );
    assert_eq!(store.get("a").await, Err(StorageError::NotFound));
    assert_eq!(
        store.execute(vec![delete("a")]).await,
        Ok(vec![Outcome::NotFound]),
        "a delete of an absent key"
    );
}

/// A request's commands run in order and see each other's writes.
pub(crate) async fn a_request_sees_its_own_earlier_writes<S: Storage>(store: S) {
    store.execute(vec![set("x", "0")]).await.unwrap();
    let outcomes = store
        .execute(vec![
            get("x"),
            set("x", "1"),
            get("x"),
            delete("x"),
            get("x"),
            delete("x"),
            set("y", r#""why""#),
            get("y"),
            get("never"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            found("0"),
            Outcome::Done,
            found("1"),
            Outcome::Done,
            Outcome::NotFound,
            Outcome::NotFound,
            Outcome::Done,
            found(r#""why""#),
            Outcome::NotFound,
        ]
    );
    assert_eq!(store.get("x").await, Err(StorageError::NotFound));
    assert_eq!(store.get("y").await.as_deref(), Ok(r#""why""#));
    assert_eq!(store.execute(vec![]).await, Ok(vec![]), "an empty request");
    assert_eq!(
        store.execute(vec![get("y"), get("x")]).await,
        Ok(vec![found(r#""why""#), Outcome::NotFound]),
        "a request that only reads"
    );
}

/// Listing is by byte prefix, in ascending byte order.
pub(crate) async fn lists_by_prefix_in_byte_order<S: Storage>(store: S) {
    let all = ["b", "a/2", "a/10", "a", "ab", "é", "A", "a/1"];
    store
        .execute(all.iter().map(|k| set(k, "null")).collect())
        .await
        .unwrap();
    let listed = |prefix: &'static str| {
        let store = store.clone();
        async move { store.list(prefix).await.unwrap() }
    };
    assert_eq!(
        listed("").await,
        keys(&["A", "a", "a/1", "a/10", "a/2", "ab", "b", "é"])
    );
    assert_eq!(listed("a/").await, keys(&["a/1", "a/10", "a/2"]));
    assert_eq!(listed("a/1").await, keys(&["a/1", "a/10"]));
    assert_eq!(listed("c").await, keys(&[]));
    assert_eq!(listed("é").await, keys(&["é"]));
}

/// Stats count live keys and the sizes the contract defines.
pub(crate) async fn stats_count_live_keys_and_value_sizes<S: Storage>(store: S) {
    assert_eq!(store.stats().await, Ok(Stats::default()));
    store
        .execute(vec![
            set("s", r#""héllo""#),
            set("n", "42"),
            set("o", r#"{"a":1}"#),
            set("z", "null"),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.stats().await,
        Ok(Stats {
            keys: 4,
            size_bytes: 6 + 2 + 7 + 4
        })
    );
    store
        .execute(vec![set("n", "1"), delete("z")])
        .await
        .unwrap();
    assert_eq!(
        store.stats().await,
        Ok(Stats {
            keys: 3,
            size_bytes: 6 + 1 + 7
        })
    );
}

/// A key with a ttl is there until its deadline and gone for every reader
/// after it; a set without a ttl makes a key persistent again.
pub(crate) async fn expired_keys_are_gone_for_every_reader<S: Storage>(store: S) {
    let written = Instant::now();
    store
        .execute(vec![
            set_for("brief", "1", 1),
            set_for("kept", "2", 1),
            set_for("long", "3", 3600),
        ])
        .await
        .unwrap();
    store.execute(vec![set("kept", "2")]).await.unwrap();
    // The contract allows reads of an expired key to miss it from the
    // deadline on; the deadline here only bounds a hang.
    let gone = poll(Duration::from_secs(30), || async {
        store.get("brief").await == Err(StorageError::NotFound)
    })
    .await;
    assert!(gone, "a key outlived its ttl by far");
    // The deadline is kept in whole milliseconds, so it may fall up to one
    // before `written` + ttl.
    assert!(
        written.elapsed() >= Duration::from_millis(999),
        "expired early"
    );
    assert_eq!(store.list("").await.unwrap(), keys(&["kept", "long"]));
    assert_eq!(store.stats().await.unwrap().keys, 2);
    assert_eq!(
        store.execute(vec![get("brief"), delete("brief")]).await,
        Ok(vec![Outcome::NotFound, Outcome::NotFound])
    );
    assert_eq!(store.get("kept").await.as_deref(), Ok("2"));
}

/// Concurrent requests are each applied whole: a reader never sees part of
/// a request, and every acknowledged write is visible at once.
pub(crate) async fn concurrent_requests_are_isolated<S: Storage>(store: S) {
    let pairs = 16u64;
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50u64 {
                    // Every key of a request gets the same value.
                    let value = (w * 1000 + i).to_string();
                    let request = (0..pairs).map(|k| set(&format!("k{k}"), &value)).collect();
                    store.execute(request).await.unwrap();
                    let own = format!("own{w}");
                    store.execute(vec![set(&own, &value)]).await.unwrap();
                    assert_eq!(store.get(&own).await.as_deref(), Ok(value.as_str()));
                    // A backend that never waits would otherwise finish
                    // before any reader ran.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // Readers run for as long as the writers do, so that reads and writes
    // overlap on every worker.
    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, writing) = (store.clone(), writing.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while writing.load(Ordering::Acquire) {
                    let reads = (0..pairs).map(|k| get(&format!("k{k}"))).collect();
                    let outcomes = store.execute(reads).await.unwrap();
                    assert!(
                        outcomes.windows(2).all(|w| w[0] == w[1]),
                        "saw part of a request: {outcomes:?}"
                    );
                    if !seen.contains(&outcomes[0]) {
                        seen.push(outcomes[0].clone());
                    }
                    tokio::task::yield_now().await;
                }
                seen.len()
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    writing.store(false, Ordering::Release);
    let mut states_seen = 0;
    for reader in readers {
        states_seen = states_seen.max(reader.await.unwrap());
    }
    assert!(states_seen >= 2, "the readers never overlapped a write");
}

/// After shutdown a write is refused and changes nothing.
pub(crate) async fn writes_after_shutdown_are_refused<S: Storage>(store: S) {
    store.execute(vec![set("a", "1")]).await.unwrap();
    store.shutdown().await.unwrap();
    assert!(matches!(
        store.execute(vec![set("a", "2"), set("b", "2")]).await,
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(store.get("a").await.as_deref(), Ok("1"));
    assert_eq!(store.get("b").await, Err(StorageError::NotFound));
}

/// The state the other checks can compare after a reopen: written by
/// [`write_state`], checked by [`check_state`].
pub(crate) async fn write_state<S: Storage>(store: &S) {
    store
        .execute(vec![
            set("p", r#""persistent""#),
            set_for("t", "true", 3600),
        ])
        .await
        .unwrap();
    store
        .execute(vec![set("gone", "0"), set("q", "[1]"), delete("gone")])
        .await
        .unwrap();
}

/// Checks what [`write_state`] left.
pub(crate) async fn check_state<S: Storage>(store: &S) {
    assert_eq!(store.list("").await.unwrap(), keys(&["p", "q", "t"]));
    assert_eq!(store.get("p").await.as_deref(), Ok(r#""persistent""#));
    assert_eq!(store.get("t").await.as_deref(), Ok("true"));
    assert_eq!(
        store.stats().await,
        Ok(Stats {
            keys: 3,
            size_bytes: 10 + 3 + 4
        })
    );
}

/// Polls `check` until it holds or `limit` passes; whether it held.
async fn poll<F: Future<Output = bool>>(limit: Duration, mut check: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Runs every check of the suite against a backend, each on a fresh store
/// made by `$make`, an expression giving the store and whatever must live
/// as long as it (a temporary directory), on a multi-threaded runtime.
macro_rules! backend_suite {
    ($make:expr) => {
        mod suite {
            #[allow(unused_imports)]
            use super::*;
            use $crate::storage::suite;

            macro_rules! check {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let (store, _keep) = $make;
                        suite::$name(store).await;
                    }
                };
            }
            check!(single_key_writes_and_reads);
            check!(a_request_sees_its_own_earlier_writes);
            check!(lists_by_prefix_in_byte_order);
            check!(stats_count_live_keys_and_value_sizes);
            check!(expired_keys_are_gone_for_every_reader);
            check!(concurrent_requests_are_isolated);
            check!(writes_after_shutdown_are_refused);
        }
    };
}
pub(crate) use backend_suite;

#[cfg(test)]
mod memory_backend {
    use crate::storage::memory::MemoryStorage;

    crate::storage::suite::backend_suite!((MemoryStorage::new(), ()));
}
