//! Fuzzing the router in process: arbitrary and structured-random requests
//! (methods, paths, headers, bodies: arbitrary bytes, deep nesting, huge
//! numbers, invalid UTF-8, mutated valid bodies) against the memory backend
//! and the local engine. No request may panic or get a 5xx; every answer is
//! JSON, an error is exactly `{"error": "..."}`, and a rejected request
//! leaves the store as it was.
//!
//! `KVCTL_FUZZ_CASES` sets the requests per backend (default
//! [`DEFAULT_CASES`]).

use std::cell::RefCell;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

use kvctl::api::Limits;
use kvctl::client::Client;
use kvctl::local::Engine;
use kvctl::server::{protected_app, ServerConfig};
use kvctl::storage::memory::MemoryStorage;
use kvctl::storage::{Command, Stats, Storage, StoredValue};
use kvctl::wal::FsyncPolicy;

use crate::support::{env_count, reopen_engine};

/// Requests per backend in the plain test command: well under a minute on
/// a slow two-core machine.
const DEFAULT_CASES: u64 = 10_000;

/// Small limits, so that generated requests cross them often.
const LIMITS: Limits = Limits {
    max_key_bytes: 24,
    max_body_bytes: 2048,
    max_batch_ops: 6,
};

/// One generated request.
#[derive(Debug, Clone)]
struct Fuzzed {
    method: Method,
    uri: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

/// Everything observable about a store: its entries and its counts.
type StoreState = (Vec<(String, String)>, Stats);

async fn state_of<S: Storage>(storage: &S) -> StoreState {
    let mut entries = Vec::new();
    for key in storage.list("").await.expect("list") {
        let value = storage.get(&key).await.expect("a listed key is there");
        entries.push((key.to_string(), value.to_string()));
    }
    (entries, storage.stats().await.expect("stats"))
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        8 => Just(Method::GET),
        8 => Just(Method::PUT),
        4 => Just(Method::DELETE),
        6 => Just(Method::POST),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

/// The raw key part of a `/kv/...` path: mostly valid, often colliding
/// with the keys already stored, sometimes badly encoded or too long.
fn raw_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-c]{1,2}",
        1 => Just("batch".to_owned()),
        2 => any::<String>().prop_map(|k| Client::key_path(&k)[4..].to_owned()),
        // Any bytes at all, each percent-encoded: often not UTF-8.
        2 => prop::collection::vec(any::<u8>(), 0..30)
            .prop_map(|b| b.iter().map(|b| format!("%{b:02X}")).collect()),
        2 => "[a-z0-9%/._~:@!$&'()*+,;=-]{0,40}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => raw_key().prop_map(|k| format!("/kv/{k}")),
        2 => Just("/kv/batch".to_owned()),
        1 => Just("/kv".to_owned()),
        1 => Just("/kv/".to_owned()),
        1 => Just("/stats".to_owned()),
        2 => any::<String>().prop_map(|p| {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("prefix", &p)
                .finish();
            format!("/kv?{query}")
        }),
        1 => "[a-z0-9=&%+]{0,20}".prop_map(|q| format!("/kv?{q}")),
        1 => "[a-z0-9=&%+]{0,20}".prop_map(|q| format!("/stats?{q}")),
        2 => "/[a-zA-Z0-9%/._~-]{0,30}".prop_filter(
            "routes being added elsewhere answer other content types",
            |p| !["/health", "/metrics", "/admin"]
                .iter()
                .any(|r| p.starts_with(r)),
        ),
    ]
}

fn header_pair() -> impl Strategy<Value = (HeaderName, HeaderValue)> {
    let value = |s: String| HeaderValue::from_str(&s).unwrap();
    prop_oneof![
        prop_oneof![
            Just("application/json"),
            Just("text/plain"),
            Just("application/x-www-form-urlencoded"),
            Just("multipart/form-data; boundary=x"),
            Just(""),
        ]
        .prop_map(move |ct| (header::CONTENT_TYPE, HeaderValue::from_static(ct))),
        "[ -~]{0,30}".prop_map(move |v| (header::CONTENT_TYPE, value(v))),
        any::<u64>().prop_map(|n| (header::CONTENT_LENGTH, HeaderValue::from(n))),
        Just((
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked")
        )),
        Just((header::EXPECT, HeaderValue::from_static("100-continue"))),
        ("x-[a-z]{1,10}", "[ -~]{0,30}")
            .prop_map(move |(n, v)| { (HeaderName::from_bytes(n.as_bytes()).unwrap(), value(v)) }),
    ]
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A `ttl` member: valid ones are long, so that nothing expires while a
/// case runs and a rejected request's before and after are comparable.
fn ttl() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(Value::Null)),
        2 => (3600u64..=315_360_000).prop_map(|t| Some(json!(t))),
        1 => prop_oneof![
            Just(json!(0)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!("60")),
            Just(json!(315_360_001u64)),
            Just(json!(u64::MAX)),
            Just(json!(i64::MIN)),
            Just(json!([60])),
        ]
        .prop_map(Some),
    ]
}

fn put_body() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.85, json_value()),
        ttl(),
        any::<bool>(),
    )
        .prop_map(|(value, ttl, extra)| {
            let mut body = serde_json::Map::new();
            if let Some(value) = value {
                body.insert("value".into(), value);
            }
            if let Some(ttl) = ttl {
                body.insert("ttl".into(), ttl);
            }
            if extra {
                body.insert("extra".into(), json!({"ignored": true}));
            }
            Value::Object(body)
        })
}

fn operation() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        Just(json!("set")),
        Just(json!("get")),
        Just(json!("delete")),
        Just(json!("incr")),
        Just(json!(null)),
        Just(json!(1)),
    ];
    let key = prop_oneof![
        4 => "[a-c]{1,2}".prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => Just(json!("")),
        1 => Just(json!(7)),
        1 => Just(json!(null)),
    ];
    (
        prop::option::weighted(0.95, op),
        prop::option::weighted(0.95, key),
        prop::option::weighted(0.8, json_value()),
        ttl(),
    )
        .prop_map(|(op, key, value, ttl)| {
            let mut o = serde_json::Map::new();
            for (name, member) in [("op", op), ("key", key), ("value", value), ("ttl", ttl)] {
                if let Some(member) = member {
                    o.insert(name.into(), member);
                }
            }
            Value::Object(o)
        })
}

fn batch_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => prop::collection::vec(operation(), 0..8).prop_map(|ops| json!({"operations": ops})),
        1 => json_value().prop_map(|ops| json!({"operations": ops})),
        1 => json_value(),
    ]
}

/// A valid-looking body with random bytes flipped, inserted or removed.
fn mutated(body: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<u8>> {
    (
        body,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    )
        .prop_map(|(body, edits)| {
            let mut bytes = body.to_string().into_bytes();
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 if i < bytes.len() => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, byte),
                }
            }
            bytes
        })
}

fn nasty_body() -> impl Strategy<Value = Vec<u8>> {
    let deep = (1usize..3000, any::<bool>()).prop_map(|(depth, object)| {
        let (open, close) = if object {
            (r#"{"value":"#, "}")
        } else {
            ("[", "]")
        };
        format!(
            r#"{{"value":{}1{}}}"#,
            open.repeat(depth),
            close.repeat(depth)
        )
        .into_bytes()
    });
    let number = prop_oneof![
        Just("1e400"),
        Just("-1e400"),
        Just("123456789012345678901234567890"),
        Just("18446744073709551616"),
        Just("-9223372036854775809"),
        Just("1.7976931348623157e309"),
        Just("0.000000000000000000000000000000000000000001e-400"),
        Just("-0"),
        Just("1E+2"),
    ];
    prop_oneof![
        deep,
        number
            .clone()
            .prop_map(|n| format!(r#"{{"value":{n}}}"#).into_bytes()),
        number.prop_map(|n| format!(r#"{{"value":1,"ttl":{n}}}"#).into_bytes()),
        prop::collection::vec(0x80u8..=0xff, 1..8).prop_map(|bad| {
            let mut body = br#"{"value":""#.to_vec();
            body.extend_from_slice(&bad);
            body.extend_from_slice(br#""}"#);
            body
        }),
        Just(br#"{"value":"\ud800"}"#.to_vec()),
        Just(br#"{"operations":[{"op":"set","key":"\udfff","value":1}]}"#.to_vec()),
        Just(br#"{"value":1,"value":2}"#.to_vec()),
        (LIMITS.max_body_bytes..LIMITS.max_body_bytes + 64).prop_map(|n| format!(
            r#"{{"value":"{}"}}"#,
            "x".repeat(n)
        )
        .into_bytes()),
        Just(b"\xef\xbb\xbf{\"value\":1}".to_vec()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..200),
        4 => put_body().prop_map(|b| b.to_string().into_bytes()),
        4 => batch_body().prop_map(|b| b.to_string().into_bytes()),
        2 => mutated(put_body()),
        2 => mutated(batch_body()),
        2 => nasty_body(),
        1 => Just(Vec::new()),
    ]
}

/// A method and path that make sense together, with a body to suit, or
/// any of each.
fn target() -> impl Strategy<Value = (Method, String, Vec<u8>)> {
    let key_path = || raw_key().prop_map(|k| format!("/kv/{k}"));
    let no_body = || prop::option::weighted(0.1, body()).prop_map(Option::unwrap_or_default);
    prop_oneof![
        3 => (key_path(), prop_oneof![
            2 => put_body().prop_map(|b| b.to_string().into_bytes()),
            1 => body(),
        ])
            .prop_map(|(p, b)| (Method::PUT, p, b)),
        2 => (key_path(), no_body()).prop_map(|(p, b)| (Method::GET, p, b)),
        1 => (key_path(), no_body()).prop_map(|(p, b)| (Method::DELETE, p, b)),
        3 => prop_oneof![
            2 => batch_body().prop_map(|b| b.to_string().into_bytes()),
            1 => body(),
        ]
            .prop_map(|b| (Method::POST, "/kv/batch".to_owned(), b)),
        1 => (path(), no_body()).prop_map(|(p, b)| (Method::GET, p, b)),
        3 => (method(), path(), body()),
    ]
}

fn request() -> impl Strategy<Value = Fuzzed> {
    (target(), prop::collection::vec(header_pair(), 0..3)).prop_map(
        |((method, uri, body), headers)| Fuzzed {
            method,
            uri,
            headers,
            body,
        },
    )
}

/// Sends `request` and checks the answer and, when it is an error, that
/// the store did not change. Answers the status.
async fn exchange<S: Storage>(
    router: &Router,
    storage: &S,
    fuzzed: Fuzzed,
) -> Result<u16, TestCaseError> {
    let before = state_of(storage).await;
    let mut request = Request::builder()
        .method(fuzzed.method.clone())
        .uri(&fuzzed.uri);
    for (name, value) in &fuzzed.headers {
        request = request.header(name, value);
    }
    let request = request
        .body(Body::from(fuzzed.body.clone()))
        .expect("the generators build valid requests");
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| TestCaseError::fail(format!("the body failed: {e}")))?
        .to_bytes();
    prop_assert!(!status.is_server_error(), "{status}: {bytes:?}");
    let head = fuzzed.method == Method::HEAD;
    if head && bytes.is_empty() {
        // A HEAD answer has no body to judge.
    } else {
        prop_assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{}",
            status
        );
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {bytes:?}")))?;
        if status.as_u16() >= 400 {
            let members = body.as_object().map(|o| o.len());
            prop_assert_eq!(members, Some(1), "{}: {}", status, body);
            prop_assert!(body["error"].is_string(), "{}: {}", status, body);
        }
    }
    if status.as_u16() >= 400 {
        let after = state_of(storage).await;
        prop_assert_eq!(
            &after,
            &before,
            "a rejected request ({}) changed the store",
            status
        );
    }
    Ok(status.as_u16())
}

/// Runs the fuzzer against `storage` and answers the state it leaves.
fn fuzz<S: Storage>(name: &str, storage: S, runtime: &tokio::runtime::Runtime) -> StoreState {
    runtime.block_on(async {
        // A few keys for the rejected requests to leave alone.
        let seed: Vec<Command> = ["a", "b", "c/d", "batch"]
            .iter()
            .map(|k| Command::Set {
                key: (*k).into(),
                value: StoredValue::from_value(&json!({"seed": k})),
                ttl: None,
            })
            .collect();
        storage.execute(seed).await.unwrap();
    });
    // As served: the timeout, metrics and logging layers around the routes.
    let router = protected_app(storage.clone(), &ServerConfig::new(LIMITS));
    let cases = env_count("KVCTL_FUZZ_CASES", DEFAULT_CASES);
    let config = Config {
        cases: u32::try_from(cases).expect("KVCTL_FUZZ_CASES fits in u32"),
        failure_persistence: None,
        ..Config::default()
    };
    let statuses = RefCell::new(BTreeMap::<u16, u64>::new());
    let result = TestRunner::new(config).run(&request(), |fuzzed| {
        let status = runtime.block_on(exchange(&router, &storage, fuzzed))?;
        let mut statuses = statuses.borrow_mut();
        *statuses.entry(status).or_default() += 1;
        if statuses.values().sum::<u64>() % 256 == 0 {
            // Snapshots before and after every request cost the store's
            // size; keep it small over a million cases.
            runtime.block_on(prune(&storage));
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
    let statuses = statuses.into_inner();
    println!("fuzz {name}: {cases} requests, answers by status {statuses:?}");
    // The fuzzer must reach both sides: requests that are carried out and
    // requests that are refused.
    if cases >= 200 {
        for class in [2, 4] {
            let seen: u64 = statuses
                .iter()
                .filter(|(s, _)| **s / 100 == class)
                .map(|(_, n)| n)
                .sum();
            assert!(seen > 0, "{name}: no {class}xx answer in {statuses:?}");
        }
    }
    runtime.block_on(state_of(&storage))
}

/// Deletes all but a few keys once the store has grown.
async fn prune<S: Storage>(storage: &S) {
    let keys = storage.list("").await.unwrap();
    if keys.len() > 64 {
        let deletes = keys[32..]
            .iter()
            .map(|key| Command::Delete { key: key.clone() })
            .collect();
        storage.execute(deletes).await.unwrap();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `test` on a thread with a large stack: an unoptimised build's
/// frames for a whole request, 128 levels of JSON deep, outgrow the 2 MiB
/// of a test thread (a server's worker, with less above it, does not).
fn with_big_stack(test: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(test)
        .unwrap()
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

#[test]
fn fuzz_router_over_the_memory_backend() {
    with_big_stack(|| {
        fuzz("memory backend", MemoryStorage::new(), &runtime());
    });
}

#[test]
fn fuzz_router_over_the_local_engine_and_replay_what_it_logged() {
    with_big_stack(fuzz_the_local_engine);
}

fn fuzz_the_local_engine() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = Engine::open(dir.path(), FsyncPolicy::Never).unwrap();
    let state = fuzz("local engine", engine.clone(), &runtime);
    runtime.block_on(engine.shutdown()).unwrap();
    drop(engine);
    // What the fuzzed requests wrote is what the log replays.
    let (engine, _) = reopen_engine(dir.path(), FsyncPolicy::Never).unwrap();
    assert_eq!(runtime.block_on(state_of(&engine)), state);
    runtime.block_on(engine.shutdown()).unwrap();
}
