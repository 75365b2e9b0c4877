//! Bearer-token authentication: the secret token, loading it from a file or
//! the environment, and the middleware that checks every request against it.

use std::fmt;
use std::path::{Path, PathBuf};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::ApiError;

/// The environment variable holding the token itself, for `serve` and the clients.
pub const TOKEN_ENV: &str = "KVCTL_AUTH_TOKEN";

/// The one path answered without a token, so health checks need no secret.
const UNAUTHENTICATED_PATH: &str = "/health";

/// A bearer token. Its `Debug` never shows the secret, so it cannot leak
/// into a log line by accident.
#[derive(Clone)]
pub struct AuthToken {
    secret: Box<[u8]>,
}

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read the token file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token is empty.
    #[error("the token in {origin} is empty")]
    Empty {
        /// Where it came from: a file or the environment variable.
        origin: String,
    },
    /// The token has bytes that cannot travel in an HTTP header.
    #[error("the token in {origin} may hold only visible ASCII characters (no spaces)")]
    NotVisibleAscii {
        /// Where it came from.
        origin: String,
    },
}

impl AuthToken {
    /// The token from `file` if given, else from [`TOKEN_ENV`], else none.
    pub fn resolve(file: Option<&Path>) -> Result<Option<AuthToken>, TokenError> {
        match file {
            Some(path) => AuthToken::from_file(path).map(Some),
            None => match std::env::var_os(TOKEN_ENV) {
                Some(value) => AuthToken::parse(
                    value.as_encoded_bytes(),
                    format!("the environment variable {TOKEN_ENV}"),
                )
                .map(Some),
                None => Ok(None),
            },
        }
    }

    /// Reads a token file; one trailing newline is not part of the token.
    pub fn from_file(path: &Path) -> Result<AuthToken, TokenError> {
        let bytes = std::fs::read(path).map_err(|source| TokenError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        AuthToken::parse(bytes, path.display().to_string())
    }

    fn parse(bytes: &[u8], origin: String) -> Result<AuthToken, TokenError> {
        if bytes.is_empty() {
            return Err(TokenError::Empty { origin });
        }
        if !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotVisibleAscii { origin });
        }
        Ok(AuthToken {
            secret: bytes.into(),
        })
    }

    /// The `Authorization` header that presents this token, marked
    /// sensitive so hyper and `Debug` keep it out of logs.
    pub fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_bytes(&[b"Bearer ", &self.secret[..]].concat())
            .expect("visible ASCII is a valid header value");
        value.set_sensitive(true);
        value
    }

    /// Whether `presented` is this token, in time that does not depend on
    /// where they differ (nor, through hashing first, on their lengths).
    fn matches(&self, presented: &[u8]) -> bool {
        let digest = |bytes: &[u8]| ring::digest::digest(&ring::digest::SHA256, bytes);
        digest(&self.secret)
            .as_ref()
            .ct_eq(digest(presented).as_ref())
            .into()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Lets a request through only with `Authorization: Bearer <token>`, except
/// `GET /health` (and its `HEAD`); anything else is answered 401.
pub(super) async fn require_token(
    State(token): State<AuthToken>,
    request: Request,
    next: Next,
) -> Response {
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    if reads && request.uri().path() == UNAUTHENTICATED_PATH {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| bearer(value.as_bytes()));
    match presented {
        None => ApiError::Unauthorized("a bearer token is required").into_response(),
        Some(Some(presented)) if token.matches(presented) => next.run(request).await,
        Some(_) => ApiError::Unauthorized("the bearer token is not valid").into_response(),
    }
}

/// The credentials of a `Bearer` authorization; the scheme is case-insensitive.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> AuthToken {
        AuthToken::parse(text.as_bytes(), "test".into()).unwrap()
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", token("s3cret-value"));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(format!("{:?}", token("s3cret").header_value()).contains("Sensitive"));
    }

    #[test]
    fn only_the_exact_token_matches() {
        let t = token("abc123");
        assert!(t.matches(b"abc123"));
        assert!(!t.matches(b"abc124"));
        assert!(!t.matches(b"abc12"));
        assert!(!t.matches(b"abc1234"));
        assert!(!t.matches(b""));
    }

    #[test]
    fn the_bearer_scheme_is_parsed() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abcdefg"), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn files_lose_one_trailing_newline_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "tok\n").unwrap();
        assert!(AuthToken::from_file(&path).unwrap().matches(b"tok"));
        std::fs::write(&path, "tok\r\n").unwrap();
        assert!(AuthToken::from_file(&path).unwrap().matches(b"tok"));
        std::fs::write(&path, "tok\n\n").unwrap();
        assert!(matches!(
            AuthToken::from_file(&path),
            Err(TokenError::NotVisibleAscii { .. })
        ));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            AuthToken::from_file(&path),
            Err(TokenError::Empty { .. })
        ));
        assert!(matches!(
            AuthToken::from_file(&dir.path().join("missing")),
            Err(TokenError::Unreadable { .. })
        ));
    }
}
