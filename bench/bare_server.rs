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
            // Reads the whole body, as the store must, but does not parse it.
            post(move |_body: Bytes| async move { json(r#"{"results":[]}"#) }),
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
