//! The one place where errors become HTTP statuses and JSON bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::api::RequestError;
use crate::storage::StorageError;

use super::json_response;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or over a limit.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The backend did not carry out the request.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No route matches the path.
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    /// The route exists but not for this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// The request lacks the configured bearer token, or has a wrong one.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The answer was not ready within the request timeout.
    #[error("the request did not finish within {}; a write in it is applied whole or not at all", humantime::format_duration(*.0))]
    TimedOut(std::time::Duration),
    /// The handler failed unexpectedly (a bug); whether a write in it was
    /// applied is unknown, but never in part.
    #[error("internal error: the request failed unexpectedly")]
    Internal,
}

impl ApiError {
    /// The status the error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Request(
                RequestError::BodyTooLarge { .. } | RequestError::TooManyOperations { .. },
            ) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Request(_) => StatusCode::BAD_REQUEST,
            ApiError::Storage(err) => match err {
                StorageError::NotFound => StatusCode::NOT_FOUND,
                StorageError::Rejected(_) => StatusCode::BAD_REQUEST,
                StorageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                StorageError::Conflict(_) => StatusCode::CONFLICT,
                StorageError::Unavailable(_) | StorageError::Timeout(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                StorageError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
                StorageError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            },
            ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!("answering {status}: {self}");
        }
        // Over the limit, the rest of the body is never read, so the
        // connection cannot carry another request and is closed after this
        // answer. Saying so keeps a client from reusing it and racing the
        // close ("connection closed without response" on its next request).
        // So too after a timeout: the handler may still be reading the body.
        let closes = matches!(
            self,
            ApiError::Request(RequestError::BodyTooLarge { .. }) | ApiError::TimedOut(_)
        );
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let mut response = json_response(status, body);
        if closes {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
