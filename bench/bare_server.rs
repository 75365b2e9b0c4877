//! The ceiling of the HTTP stack: the same routes and request shapes as
//! `kvctl serve`, answered with fixed bodies and no store, on the same
//! runtime, axum and hyper versions. `bench/compare.sh` measures kvctl
//! against it.
//!
//! Usage: bare_server [PORT] [VALUE_SIZE]

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

/// A batch request, as the specification defines it.
#[derive(Deserialize)]
struct Batch {
    operations: Vec<Operation>,
}

/// One operation of a batch; the fields are read so that parsing them is
/// not optimised away.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Operation {
    Set {
        key: String,
        value: Value,
        ttl: Option<u64>,
    },
    Get {
        key: String,
    },
    Delete {
        key: String,
    },
}

/// Parses a batch and answers one result per operation, as a store would
/// that found every key.
fn parsed_batch(body: &[u8], value: &str) -> Response {
    let batch: Batch = match serde_json::from_slice(body) {
        Ok(batch) => batch,
        Err(err) => {
            let mut response = json(r#"{"error":"invalid JSON"}"#);
            *response.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            eprintln!("bad batch: {err}");
            return response;
        }
    };
    let mut out = String::with_capacity(16 + batch.operations.len() * 20);
    out.push_str(r#"{"results":["#);
    for (i, op) in batch.operations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match op {
            Operation::Set { key, value, ttl } => {
                std::hint::black_box((key, value, ttl));
                out.push_str(r#"{"success":true}"#);
            }
            Operation::Get { key } => {
                std::hint::black_box(key);
                out.push_str(value);
            }
            Operation::Delete { key } => {
                std::hint::black_box(key);
                out.push_str(r#"{"success":true}"#);
            }
        }
    }
    out.push_str("]}");
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json(body: &'static str) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8090);
    let value_size: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(100);
    let parse = args.next().is_some_and(|mode| mode == "parse");
    let value: &'static str =
        Box::leak(format!("{{\"value\":\"{}\"}}", "x".repeat(value_size)).into_boxed_str());
    let success = r#"{"success":true}"#;
    let app = Router::new()
        .route(
            "/stats",
            get(|| async { json(r#"{"keys":0,"size_bytes":0}"#) }),
        )
        .route("/kv", get(|| async { json(r#"{"keys":[]}"#) }))
        .route(
            "/kv/batch",
            post(move |body: Bytes| async move {
                if parse {
                    parsed_batch(&body, value)
                } else {
                    // Reads the whole body, as the store must, but does not
                    // parse it.
                    json(r#"{"results":[]}"#)
                }
            }),
        )
        .route(
            "/kv/{*key}",
            get(move || async move { json(value) })
                .put(move |_body: Bytes| async move { json(success) })
                .delete(move || async move { json(success) }),
        )
        .layer(DefaultBodyLimit::max(16 << 20));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind")
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    eprintln!("bare server on 127.0.0.1:{port}");
    axum::serve(listener, app).await.expect("serve");
}
