//! The HTTP side of metrics: the layer that counts and times every request
//! by its route template, and the `GET /metrics` scrape.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::metrics;
use crate::storage::Storage;

/// Middleware: records each request under its matched route's template
/// (`/kv/{*key}`), never its path, so no key ever becomes a label.
pub(super) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics::http_request(
        method.as_str(),
        route.as_ref().map(MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics`: every family in the OpenMetrics text format, the one
/// response that is not JSON, since scrapers expect this. The store's gauges
/// are read from its exact counters now rather than kept on every write.
pub(super) async fn scrape<S: Storage>(
    State(state): State<AppState<S>>,
) -> Result<Response, ApiError> {
    let stats = state.storage.stats().await?;
    metrics::set_store_size(stats.keys, stats.size_bytes);
    let mut response = metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(response)
}
