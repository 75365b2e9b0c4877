//! The router in process (`app(...).oneshot(...)`, no socket): every
//! endpoint's exact body, status and content type, over the local engine on
//! a temporary directory and over the in-memory backend, and every storage
//! error's status.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use kvctl::api::Limits;
use kvctl::local::Engine;
use kvctl::server::app;
use kvctl::storage::memory::MemoryStorage;
use kvctl::storage::{Command, Key, Outcome, Stats, Storage, StorageError};
use kvctl::wal::FsyncPolicy;

/// Sends one request; answers the status and the body, which must be JSON.
async fn send(router: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{method} {uri}"
    );
    let text = String::from_utf8(bytes.to_vec()).expect("a UTF-8 body");
    if let Err(e) = serde_json::from_str::<Value>(&text) {
        panic!("{method} {uri}: not JSON ({e}): {text}");
    }
    (status, text)
}

fn limits() -> Limits {
    Limits {
        max_key_bytes: 16,
        max_body_bytes: 1000,
        max_batch_ops: 5,
    }
}

/// The contract's exchanges, in order, against a fresh store; bodies are
/// compared byte for byte, as clients compare them.
async fn the_contract_holds(router: Router) {
    use Method as M;
    const OK: &str = r#"{"success":true}"#;
    const NOT_FOUND: &str = r#"{"error":"key not found"}"#;
    let batch = r#"{"operations":[{"op":"set","key":"x","value":1},{"op":"get","key":"x"},
        {"op":"delete","key":"x"},{"op":"get","key":"x"},{"op":"delete","key":"x"}]}"#;
    let batch_results =
        format!(r#"{{"results":[{OK},{{"value":1}},{OK},{NOT_FOUND},{NOT_FOUND}]}}"#);
    let cases: Vec<(Method, &str, &str, StatusCode, &str)> = vec![
        (
            M::GET,
            "/stats",
            "",
            StatusCode::OK,
            r#"{"keys":0,"size_bytes":0}"#,
        ),
        (M::GET, "/kv/a", "", StatusCode::NOT_FOUND, NOT_FOUND),
        (
            M::PUT,
            "/kv/a",
            r#"{"value": {"z": 1, "a": [true, null]}}"#,
            StatusCode::OK,
            OK,
        ),
        (
            M::GET,
            "/kv/a",
            "",
            StatusCode::OK,
            r#"{"value":{"z":1,"a":[true,null]}}"#,
        ),
        (
            M::PUT,
            "/kv/a%2Fb",
            r#"{"value":"h\u00e9","ttl":60}"#,
            StatusCode::OK,
            OK,
        ),
        (M::GET, "/kv/a/b", "", StatusCode::OK, r#"{"value":"hé"}"#),
        (M::PUT, "/kv/batch", r#"{"value":null}"#, StatusCode::OK, OK),
        (M::GET, "/kv/batch", "", StatusCode::OK, r#"{"value":null}"#),
        (
            M::GET,
            "/kv",
            "",
            StatusCode::OK,
            r#"{"keys":["a","a/b","batch"]}"#,
        ),
        (
            M::GET,
            "/kv?prefix=a%2F",
            "",
            StatusCode::OK,
            r#"{"keys":["a/b"]}"#,
        ),
        (
            M::GET,
            "/stats",
            "",
            StatusCode::OK,
            r#"{"keys":3,"size_bytes":30}"#,
        ),
        (M::DELETE, "/kv/batch", "", StatusCode::OK, OK),
        (M::DELETE, "/kv/batch", "", StatusCode::NOT_FOUND, NOT_FOUND),
        (M::POST, "/kv/batch", batch, StatusCode::OK, &batch_results),
        (
            M::POST,
            "/kv/batch",
            r#"{"operations":[]}"#,
            StatusCode::OK,
            r#"{"results":[]}"#,
        ),
    ];
    for (method, uri, body, status, expected) in cases {
        let got = send(&router, method.clone(), uri, body).await;
        assert_eq!(got, (status, expected.to_owned()), "{method} {uri} {body}");
    }
}

/// Bad input gets a JSON error with the right status and changes nothing.
async fn bad_input_is_refused_and_changes_nothing(router: Router) {
    use Method as M;
    let cases: Vec<(Method, String, String, StatusCode)> = vec![
        (
            M::PUT,
            "/kv/k".into(),
            "not json".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/k".into(),
            "[1]".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/k".into(),
            r#"{"val":1}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/k".into(),
            r#"{"value":1,"ttl":0}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/k".into(),
            r#"{"value":1,"ttl":1.5}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/".into(),
            r#"{"value":1}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/%zz".into(),
            r#"{"value":1}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/%C3%28".into(),
            r#"{"value":1}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            format!("/kv/{}", "k".repeat(17)),
            r#"{"value":1}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::PUT,
            "/kv/k".into(),
            format!(r#"{{"value":"{}"}}"#, "x".repeat(1000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            M::POST,
            "/kv/batch".into(),
            r#"{"ops":[]}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::POST,
            "/kv/batch".into(),
            r#"{"operations":[{"op":"set","key":"k","value":1},{"op":"incr","key":"k"}]}"#.into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            M::POST,
            "/kv/batch".into(),
            format!(
                r#"{{"operations":[{}]}}"#,
                [r#"{"op":"get","key":"k"}"#; 6].join(",")
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            M::GET,
            "/nowhere".into(),
            String::new(),
            StatusCode::NOT_FOUND,
        ),
        (
            M::PATCH,
            "/kv/k".into(),
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            M::POST,
            "/stats".into(),
            String::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, uri, body, status) in cases {
        let (got_status, got) = send(&router, method.clone(), &uri, &body).await;
        let got: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(got_status, status, "{method} {uri} {body}: {got}");
        assert!(got["error"].is_string(), "{method} {uri}: {got}");
        assert_eq!(got.as_object().map(|o| o.len()), Some(1), "{got}");
    }
    let (_, stats) = send(&router, Method::GET, "/stats", "").await;
    assert_eq!(
        stats, r#"{"keys":0,"size_bytes":0}"#,
        "a rejected request changed the store"
    );
    let (_, named) = send(
        &router,
        Method::POST,
        "/kv/batch",
        r#"{"operations":[{"op":"get","key":"k"},{"op":"set","key":"k"}]}"#,
    )
    .await;
    assert_eq!(
        named,
        r#"{"error":"operations[1]: missing \"value\" (use null to store null)"}"#
    );
}

mod local_engine {
    use super::*;

    fn router() -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = Engine::open(dir.path(), FsyncPolicy::Never).unwrap();
        (app(engine, limits()), dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_contract_holds() {
        let (router, _dir) = router();
        super::the_contract_holds(router).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_input_is_refused_and_changes_nothing() {
        let (router, _dir) = router();
        super::bad_input_is_refused_and_changes_nothing(router).await;
    }
}

mod memory_backend {
    use super::*;

    #[tokio::test]
    async fn the_contract_holds() {
        super::the_contract_holds(app(MemoryStorage::new(), limits())).await;
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_changes_nothing() {
        let router = app(MemoryStorage::new(), limits());
        super::bad_input_is_refused_and_changes_nothing(router).await;
    }
}

/// A backend whose every answer is one error, to drive the error mapping.
#[derive(Clone)]
struct Failing(StorageError);

impl Storage for Failing {
    async fn get(&self, _: &str) -> Result<Box<str>, StorageError> {
        Err(self.0.clone())
    }
    async fn list(&self, _: &str) -> Result<Vec<Key>, StorageError> {
        Err(self.0.clone())
    }
    async fn stats(&self) -> Result<Stats, StorageError> {
        Err(self.0.clone())
    }
    async fn execute(&self, _: Vec<Command>) -> Result<Vec<Outcome>, StorageError> {
        Err(self.0.clone())
    }
    async fn shutdown(&self) -> Result<(), StorageError> {
        Ok(())
    }
    async fn health(&self) -> Result<(), StorageError> {
        Err(self.0.clone())
    }
    async fn compact(&self) -> Result<kvctl::storage::Compaction, StorageError> {
        Err(self.0.clone())
    }
    async fn snapshot(&self) -> Result<kvctl::storage::SnapshotChunks, StorageError> {
        Err(self.0.clone())
    }
}

#[tokio::test]
async fn every_storage_error_has_its_status_and_a_json_body() {
    let cases = [
        (
            StorageError::NotFound,
            StatusCode::NOT_FOUND,
            "key not found",
        ),
        (
            StorageError::Rejected("a snapshot is read-only".into()),
            StatusCode::BAD_REQUEST,
            "a snapshot is read-only",
        ),
        (
            StorageError::TooLarge("over 128 operations".into()),
            StatusCode::PAYLOAD_TOO_LARGE,
            "over 128 operations",
        ),
        (
            StorageError::Conflict("version 3 is not 2".into()),
            StatusCode::CONFLICT,
            "version 3 is not 2",
        ),
        (
            StorageError::Unavailable("no quorum".into()),
            StatusCode::SERVICE_UNAVAILABLE,
            "no quorum",
        ),
        (
            StorageError::Timeout("slow".into()),
            StatusCode::SERVICE_UNAVAILABLE,
            "slow",
        ),
        (
            StorageError::Failed("disk full".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
            "disk full",
        ),
        (
            StorageError::Unsupported("no log here".into()),
            StatusCode::NOT_IMPLEMENTED,
            "no log here",
        ),
    ];
    for (error, status, text) in cases {
        let router = app(Failing(error.clone()), limits());
        for (method, uri, body) in [
            (Method::GET, "/kv/k", ""),
            (Method::PUT, "/kv/k", r#"{"value":1}"#),
            (Method::DELETE, "/kv/k", ""),
            (
                Method::POST,
                "/kv/batch",
                r#"{"operations":[{"op":"get","key":"k"}]}"#,
            ),
            (Method::GET, "/kv", ""),
            (Method::GET, "/stats", ""),
            (Method::GET, "/health", ""),
            (Method::POST, "/admin/compact", ""),
            (Method::GET, "/admin/snapshot", ""),
        ] {
            let got = send(&router, method.clone(), uri, body).await;
            let expected = json!({ "error": text }).to_string();
            assert_eq!(got, (status, expected), "{error:?}: {method} {uri}");
        }
    }
}

#[tokio::test]
async fn the_admin_endpoints_over_the_local_engine() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), FsyncPolicy::Never).unwrap().0;
    let router = app(engine.clone(), limits());
    let ok = |body: &str| (StatusCode::OK, body.to_owned());
    assert_eq!(
        send(&router, Method::GET, "/health", "").await,
        ok(r#"{"status":"ok"}"#)
    );
    for (key, value) in [("a", "1"), ("a", "2"), ("b", "3")] {
        send(
            &router,
            Method::PUT,
            &format!("/kv/{key}"),
            &format!(r#"{{"value":{value}}}"#),
        )
        .await;
    }
    let before = std::fs::metadata(dir.path().join("wal.log")).unwrap().len();
    let (status, body) = send(&router, Method::POST, "/admin/compact", "").await;
    let after = std::fs::metadata(dir.path().join("wal.log")).unwrap().len();
    assert_eq!(
        (status, body),
        ok(&format!(
            r#"{{"bytes_before":{before},"bytes_after":{after}}}"#
        ))
    );
    assert!(after < before);

    let request = Request::get("/admin/snapshot").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let snapshot = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        snapshot,
        std::fs::read(dir.path().join("wal.log")).unwrap(),
        "the compacted log"
    );
    for (method, uri) in [(Method::GET, "/admin/compact"), (Method::POST, "/health")] {
        let (status, _) = send(&router, method, uri, "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    engine.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_memory_backend_is_healthy_and_says_it_has_no_log() {
    let router = app(MemoryStorage::new(), limits());
    assert_eq!(
        send(&router, Method::GET, "/health", "").await,
        (StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
    );
    for (method, uri) in [
        (Method::POST, "/admin/compact"),
        (Method::GET, "/admin/snapshot"),
    ] {
        let (status, body) = send(&router, method, uri, "").await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    }
}
