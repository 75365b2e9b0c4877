//! The HTTP layer: routes, thin handlers, and a server with graceful shutdown.
//!
//! Handlers only translate between HTTP and storage: they validate with
//! [`crate::api`], call a [`Storage`] backend, and render bodies. Bodies are
//! written by hand where that avoids re-serialising stored JSON; every one
//! of them is exactly the contract's shape. Around the routes:
//! authentication ([`auth`]), the request timeout and request logging;
//! accepting connections is [`listen`]'s, TLS identities [`tls`]'s.

pub mod auth;
mod error;
pub mod listen;
mod metrics;
pub mod tls;

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use auth::AuthToken;
pub use error::ApiError;
pub use listen::Timeouts;
pub use tls::TlsConfig;

use crate::api::{self, Limits, RequestError};
use crate::storage::{Command, Outcome, SnapshotChunks, Storage, StorageError};

/// How long shutdown waits for requests in flight before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState<S> {
    storage: S,
    limits: Limits,
}

/// The router of the whole API, over `storage`.
pub fn app<S: Storage>(storage: S, limits: Limits) -> Router {
    let state = AppState { storage, limits };
    Router::new()
        .route("/stats", get(stats::<S>))
        .route("/metrics", get(metrics::scrape::<S>))
        .route("/kv", get(list::<S>))
        .route("/kv/", get(empty_key).put(empty_key).delete(empty_key))
        .route(
            "/kv/batch",
            post(batch::<S>)
                .get(get_key::<S>)
                .put(put_key::<S>)
                .delete(delete_key::<S>),
        )
        .route(
            "/kv/{*key}",
            get(get_key::<S>).put(put_key::<S>).delete(delete_key::<S>),
        )
        .route("/health", get(health::<S>))
        .route("/admin/compact", post(compact::<S>))
        .route("/admin/snapshot", get(snapshot::<S>))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .with_state(state)
}

/// Everything `serve` is configured with beyond the storage.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Limits on keys, bodies and batches.
    pub limits: Limits,
    /// The bearer token every request but `GET /health` must present, if any.
    pub auth: Option<AuthToken>,
    /// Serve HTTPS with this identity instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Header, idle and request timeouts.
    pub timeouts: Timeouts,
    /// Most connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

/// The default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

impl ServerConfig {
    /// Plain HTTP without authentication, default timeouts and connection limit.
    pub fn new(limits: Limits) -> ServerConfig {
        ServerConfig {
            limits,
            auth: None,
            tls: None,
            timeouts: Timeouts::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The router of [`app`] with what a served router needs around it:
/// authentication if configured, the request timeout, and request logging
/// (debug level, as paths name keys).
pub fn protected_app<S: Storage>(storage: S, config: &ServerConfig) -> Router {
    let mut router = app(storage, config.limits).layer(axum::middleware::from_fn_with_state(
        config.timeouts.request,
        answer_within,
    ));
    if let Some(token) = &config.auth {
        router = router.layer(axum::middleware::from_fn_with_state(
            token.clone(),
            auth::require_token,
        ));
    }
    // Outside authentication and the timeout, so that their 401s and 503s
    // are counted too.
    router = router.layer(axum::middleware::from_fn(metrics::track));
    router.layer(
        tower_http::trace::TraceLayer::new_for_http()
            .make_span_with(tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::DEBUG))
            .on_request(())
            .on_response(
                tower_http::trace::DefaultOnResponse::new()
                    .level(tracing::Level::DEBUG)
                    .latency_unit(tower_http::LatencyUnit::Micros),
            )
            .on_failure(()),
    )
}

/// Answers 503 if the request takes longer than `limit`.
///
/// The timeout runs in the request's own task: nothing in it blocks its
/// thread, since the commit of a write, which may block on a stuck fsync,
/// runs in a task of its own (see [`execute`]). A write left behind by the
/// timeout finishes on its own: applied whole, or not at all, never half.
async fn answer_within(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.uri().path().starts_with("/admin/") {
        // A compaction or a snapshot takes as long as the store is large; a
        // 503 would only make a client retry one that is still running.
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut(limit).into_response(),
    }
}

/// Runs a request's commands in a task of their own, so that a commit that
/// blocks its thread (a stuck fsync) cannot hold up the request timeout.
/// Only the commands move to that task, not the reading of the body, which
/// would cost a wake-up between tasks for every chunk.
async fn execute<S: Storage>(
    storage: &S,
    commands: Vec<Command>,
) -> Result<Vec<Outcome>, ApiError> {
    let storage = storage.clone();
    match tokio::spawn(async move { storage.execute(commands).await }).await {
        Ok(outcomes) => Ok(outcomes?),
        Err(err) if err.is_panic() => {
            tracing::error!("a request's commit panicked: {err}");
            Err(ApiError::Internal)
        }
        Err(_) => Err(StorageError::shutting_down().into()),
    }
}

/// Serves `storage` on `listener` until `shutdown` resolves, then drains
/// requests in flight (for at most `DRAIN_TIMEOUT`) and shuts the storage
/// down, which makes every acknowledged write durable.
pub async fn serve<S: Storage>(
    listener: TcpListener,
    storage: S,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    });
    let acceptor = listen::Acceptor {
        router: protected_app(storage.clone(), &config),
        tls: config.tls,
        timeouts: config.timeouts,
        max_connections: config.max_connections,
    };
    let mut stopped = stopping_rx.clone();
    let drain_deadline = async move {
        let _ = stopped.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        () = acceptor.run(listener, stopping_rx) => {}
        () = drain_deadline => {
            tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
    storage.shutdown().await.map_err(io::Error::other)
}

/// Binds `addr`, naming the address in the error.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

fn json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut response = (status, body.into()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(body: impl Into<axum::body::Body>) -> Response {
    json_response(StatusCode::OK, body)
}

const SUCCESS: &str = api::SUCCESS;

fn key_of<'u>(uri: &'u Uri, limits: &Limits) -> Result<Cow<'u, str>, ApiError> {
    let raw = uri.path().strip_prefix("/kv/").unwrap_or_default();
    Ok(api::decode_key(raw, limits)?)
}

fn body_of(body: Result<Bytes, BytesRejection>, limits: &Limits) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            RequestError::BodyTooLarge {
                max: limits.max_body_bytes,
            }
        } else {
            RequestError::BodyUnreadable(rejection.body_text())
        }
        .into()
    })
}

async fn stats<S: Storage>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    let stats = state.storage.stats().await?;
    Ok(ok(format!(
        r#"{{"keys":{},"size_bytes":{}}}"#,
        stats.keys, stats.size_bytes
    )))
}

async fn list<S: Storage>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let prefix = uri
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == "prefix")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();
    let keys = state.storage.list(&prefix).await?;
    let mut body = Vec::with_capacity(16 + keys.iter().map(|k| k.len() + 3).sum::<usize>());
    body.extend_from_slice(br#"{"keys":["#);
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, key.as_str()).expect("writing to a Vec cannot fail");
    }
    body.extend_from_slice(b"]}");
    Ok(ok(body))
}

async fn get_key<S: Storage>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let key = key_of(&uri, &state.limits)?;
    let value = state.storage.get(&key).await?;
    Ok(ok(format!(r#"{{"value":{value}}}"#)))
}

async fn put_key<S: Storage>(
    State(state): State<AppState<S>>,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let set = {
        let key = key_of(&uri, &state.limits)?;
        let (value, ttl) = api::parse_put(&body_of(body, &state.limits)?)?;
        Command::Set {
            key: key.as_ref().into(),
            value,
            ttl,
        }
    };
    // The URI and the body share hyper's read buffer; let go of it before
    // waiting for the commit, or the connection, polling for its next request
    // meanwhile, has to allocate a new one.
    drop(uri);
    execute(&state.storage, vec![set]).await?;
    Ok(ok(SUCCESS))
}

async fn delete_key<S: Storage>(
    State(state): State<AppState<S>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let key = key_of(&uri, &state.limits)?.as_ref().into();
    drop(uri); // see put_key
    match execute(&state.storage, vec![Command::Delete { key }]).await?[..] {
        [Outcome::Done] => Ok(ok(SUCCESS)),
        _ => Err(StorageError::NotFound.into()),
    }
}

async fn batch<S: Storage>(
    State(state): State<AppState<S>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_of(body, &state.limits)?;
    let commands = api::parse_batch(&body, &state.limits)?;
    drop(body); // see put_key
    let outcomes = execute(&state.storage, commands).await?;
    Ok(ok(api::render_results(&outcomes)))
}

async fn health<S: Storage>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    state.storage.health().await?;
    Ok(ok(r#"{"status":"ok"}"#))
}

async fn compact<S: Storage>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    let done = state.storage.compact().await?;
    Ok(ok(
        serde_json::to_string(&done).expect("a struct of numbers serialises")
    ))
}

/// Streams a snapshot as a compacted log. The body is chunked: if the
/// snapshot fails midway the connection is cut before the last chunk, so a
/// client can never take a partial snapshot for a whole one.
async fn snapshot<S: Storage>(State(state): State<AppState<S>>) -> Result<Response, ApiError> {
    let chunks = state.storage.snapshot().await?;
    let mut response = Response::new(axum::body::Body::new(SnapshotBody(chunks)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// A snapshot's chunks as an HTTP body.
struct SnapshotBody(SnapshotChunks);

impl axum::body::HttpBody for SnapshotBody {
    type Data = Bytes;
    type Error = StorageError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, StorageError>>> {
        self.0.poll_chunk(cx).map(|chunk| {
            chunk.map(|chunk| {
                chunk
                    .map(|bytes| http_body::Frame::data(Bytes::from(bytes)))
                    .inspect_err(|err| {
                        tracing::warn!("snapshot cut short: {err}");
                    })
            })
        })
    }
}

async fn empty_key() -> ApiError {
    RequestError::EmptyKey.into()
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_owned())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
