//! A typed HTTP client for a running `kvctl serve`, used by the CLI and tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

use crate::storage::{Compaction, Stats};

/// Characters left as they are in a key: RFC 3986's unreserved set.
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How long a compaction or a snapshot may keep the client waiting (for
/// the answer, or between two chunks): their scan of a large store takes a
/// while before anything is sent.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(600);

/// The address used when neither `--server` nor `KVCTL_SERVER` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Why a request did not get the answer it wanted.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is not usable.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the server at {server}: {reason}")]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// The connection error.
        reason: String,
    },
    /// The server answered with an error.
    #[error("server answered {status}: {message}")]
    Rejected {
        /// The HTTP status.
        status: StatusCode,
        /// The `error` member of its body, or the body itself.
        message: String,
    },
    /// The server's answer is not what the API promises.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    /// What the server sent could not be stored here.
    #[error("{0}")]
    Local(String),
    /// The `--cacert` file cannot be used.
    #[error("cannot use the CA certificates in {}: {reason}", path.display())]
    BadCaCert {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// How a client authenticates and which certificate authorities it trusts.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer <token>` with every request.
    pub token: Option<crate::server::AuthToken>,
    /// A PEM file of CA certificates trusted besides the public roots.
    pub cacert: Option<PathBuf>,
}

/// A TLS client configuration (ring provider) trusting the public web
/// roots and the certificates in `cacert`.
pub fn tls_config(cacert: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = cacert {
        let bad = |reason: String| ClientError::BadCaCert {
            path: path.to_owned(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| match e {
                rustls::pki_types::pem::Error::Io(e) => bad(e.to_string()),
                other => bad(format!("not valid PEM ({other})")),
            })?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate ({e})")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// A raw answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body's bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::BadResponse(format!("body is not JSON ({e})")))
    }

    /// Whether this is the API's own "key not found", not some other 404
    /// (a wrong --server URL pointing at another service, say).
    fn is_key_not_found(&self) -> bool {
        self.status == StatusCode::NOT_FOUND
            && self.json().ok().and_then(|b| b.get("error").cloned())
                == Some(Value::String("key not found".into()))
    }

    fn into_rejection(self) -> ClientError {
        let message = match self.json() {
            Ok(Value::Object(mut o)) => match o.remove("error") {
                Some(Value::String(s)) => s,
                _ => String::from_utf8_lossy(&self.body).into_owned(),
            },
            _ => String::from_utf8_lossy(&self.body).into_owned(),
        };
        ClientError::Rejected {
            status: self.status,
            message,
        }
    }
}

/// A client bound to one server.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    authorization: Option<HeaderValue>,
}

impl Client {
    /// A client for the server at `url` (`http://host:port` or `https://...`),
    /// without a token, trusting the public roots.
    pub fn new(url: &str) -> Result<Client, ClientError> {
        Client::with_options(url, &ClientOptions::default())
    }

    /// A client for the server at `url` that authenticates and trusts as `options` say.
    pub fn with_options(url: &str, options: &ClientOptions) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => {
                return Err(bad(&format!(
                    "scheme {other} is not supported, use http or https"
                )))
            }
            None => return Err(bad("it needs a scheme, like http://127.0.0.1:8080")),
        }
        if uri.authority().is_none() {
            return Err(bad("it has no host"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(options.cacert.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            http,
            timeout: Duration::from_secs(60),
            authorization: options.token.as_ref().map(|t| t.header_value()),
        })
    }

    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The path of a key, percent-encoded so any key survives the trip.
    pub fn key_path(key: &str) -> String {
        format!("/kv/{}", utf8_percent_encode(key, KEY_ESCAPES))
    }

    fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base))
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(authorization) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, authorization.clone());
        }
        request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::BadResponse(format!("cannot build request: {e}")))
    }

    fn unreachable(&self, reason: String) -> ClientError {
        ClientError::Unreachable {
            server: self.base.clone(),
            reason,
        }
    }

    /// Sends one request and returns whatever the server answered.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        self.send_within(method, path_and_query, body, self.timeout)
            .await
    }

    /// [`Client::send`], waiting up to `timeout` for the whole answer.
    async fn send_within(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let request = self.request(method, path_and_query, body)?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| self.unreachable(error_chain(&e)))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| self.unreachable(format!("reading the answer: {}", error_chain(&e))))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| self.unreachable(format!("no answer within {timeout:?}")))?
    }

    /// GETs `path` and hands its body to `sink` as it arrives, with no
    /// overall time limit (only ten minutes between chunks); the bytes
    /// received. An answer cut short is an error, never a short success.
    pub async fn download(
        &self,
        path: &str,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, ClientError> {
        let request = self.request(Method::GET, path, None)?;
        let no_answer = || self.unreachable(format!("no answer within {ADMIN_TIMEOUT:?}"));
        let response = tokio::time::timeout(ADMIN_TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| no_answer())?
            .map_err(|e| self.unreachable(error_chain(&e)))?;
        let status = response.status();
        let mut body = response.into_body();
        if status != StatusCode::OK {
            let body = body
                .collect()
                .await
                .map_err(|e| self.unreachable(error_chain(&e)))?
                .to_bytes();
            return Err(Answer { status, body }.into_rejection());
        }
        let mut received = 0u64;
        while let Some(frame) = tokio::time::timeout(ADMIN_TIMEOUT, body.frame())
            .await
            .map_err(|_| no_answer())?
        {
            let frame = frame.map_err(|e| {
                self.unreachable(format!("the answer was cut short: {}", error_chain(&e)))
            })?;
            if let Some(data) = frame.data_ref() {
                sink(data).map_err(|e| ClientError::Local(e.to_string()))?;
                received += data.len() as u64;
            }
        }
        Ok(received)
    }

    /// The value of `key`, or `None` if it is absent.
    pub async fn get(&self, key: &str) -> Result<Option<Value>, ClientError> {
        let answer = self.send(Method::GET, &Self::key_path(key), None).await?;
        match answer.status {
            StatusCode::OK => member(answer.json()?, "value").map(Some),
            _ if answer.is_key_not_found() => Ok(None),
            _ => Err(answer.into_rejection()),
        }
    }

    /// Sets `key` to `value`, with an optional ttl in seconds.
    pub async fn put(&self, key: &str, value: &Value, ttl: Option<u64>) -> Result<(), ClientError> {
        let mut body = serde_json::Map::new();
        body.insert("value".into(), value.clone());
        if let Some(ttl) = ttl {
            body.insert("ttl".into(), ttl.into());
        }
        let body = serde_json::to_vec(&body).expect("a map serialises");
        self.expect_ok(Method::PUT, &Self::key_path(key), Some(body))
            .await
            .map(drop)
    }

    /// Deletes `key`; `false` if it was absent.
    pub async fn delete(&self, key: &str) -> Result<bool, ClientError> {
        let answer = self
            .send(Method::DELETE, &Self::key_path(key), None)
            .await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            _ if answer.is_key_not_found() => Ok(false),
            _ => Err(answer.into_rejection()),
        }
    }

    /// Keys starting with `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        let path = if prefix.is_empty() {
            "/kv".to_owned()
        } else {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("prefix", prefix)
                .finish();
            format!("/kv?{query}")
        };
        let body = self.expect_ok(Method::GET, &path, None).await?;
        serde_json::from_value(member(body, "keys")?).map_err(|e| {
            ClientError::BadResponse(format!("\"keys\" is not a list of strings ({e})"))
        })
    }

    /// The server's key count and value bytes.
    pub async fn stats(&self) -> Result<Stats, ClientError> {
        let body = self.expect_ok(Method::GET, "/stats", None).await?;
        let count = |name| {
            body.get(name)
                .and_then(Value::as_u64)
                .ok_or_else(|| ClientError::BadResponse(format!("no {name:?} count in /stats")))
        };
        Ok(Stats {
            keys: count("keys")?,
            size_bytes: count("size_bytes")?,
        })
    }

    /// Runs a batch body (`{"operations": [...]}`) and returns its results.
    pub async fn batch(&self, body: &Value) -> Result<Vec<Value>, ClientError> {
        let body = serde_json::to_vec(body).expect("a Value serialises");
        let answer = self
            .expect_ok(Method::POST, "/kv/batch", Some(body))
            .await?;
        match member(answer, "results")? {
            Value::Array(results) => Ok(results),
            _ => Err(ClientError::BadResponse("\"results\" is not a list".into())),
        }
    }

    /// Compacts the server's log now, and what that did.
    pub async fn compact(&self) -> Result<Compaction, ClientError> {
        let body = self
            .expect_ok_within(Method::POST, "/admin/compact", None, ADMIN_TIMEOUT)
            .await?;
        serde_json::from_value(body)
            .map_err(|e| ClientError::BadResponse(format!("not a compaction report ({e})")))
    }

    async fn expect_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        self.expect_ok_within(method, path, body, self.timeout)
            .await
    }

    /// [`Client::expect_ok`], waiting up to `timeout` for the answer.
    async fn expect_ok_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let answer = self.send_within(method, path, body, timeout).await?;
        if answer.status != StatusCode::OK {
            return Err(answer.into_rejection());
        }
        answer.json()
    }
}

fn member(body: Value, name: &str) -> Result<Value, ClientError> {
    match body {
        Value::Object(mut o) => o
            .remove(name)
            .ok_or_else(|| ClientError::BadResponse(format!("no {name:?} in the answer"))),
        _ => Err(ClientError::BadResponse(
            "the answer is not an object".into(),
        )),
    }
}

/// An error with its sources, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_so_any_key_survives() {
        assert_eq!(Client::key_path("a/b c"), "/kv/a%2Fb%20c");
        assert_eq!(Client::key_path("h?#%é"), "/kv/h%3F%23%25%C3%A9");
        assert_eq!(Client::key_path("A-z_0.~"), "/kv/A-z_0.~");
        for key in ["a/b c", "h?#%é", "batch", "ключ"] {
            let path = Client::key_path(key);
            let raw = path.strip_prefix("/kv/").unwrap();
            let back = crate::api::decode_key(raw, &crate::api::Limits::default()).unwrap();
            assert_eq!(back, key);
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:8080").is_ok());
        assert!(Client::new("http://localhost:1/").is_ok());
        assert!(matches!(
            Client::new("127.0.0.1:8080"),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(Client::new("https://x").is_ok());
        assert!(matches!(
            Client::new("ftp://x"),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(matches!(
            Client::new("not a url"),
            Err(ClientError::BadUrl { .. })
        ));
    }
}
