//! The load generator behind `kvctl bench`: keep-alive HTTP/1.1 connections,
//! one task each, issuing one workload's requests and recording latencies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// GET /kv/{key} of random keys.
    Get,
    /// PUT /kv/{key} of random keys.
    Put,
    /// GET or PUT, by --read-ratio.
    Mixed,
    /// POST /kv/batch with --batch-size sets.
    Batch,
    /// DELETE /kv/{key} of random keys.
    Delete,
    /// GET /kv?prefix=... matching 1000 keys of the keyspace.
    List,
}

/// How a run is shaped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Host and port of the server.
    pub authority: String,
    /// Speak TLS to the server, if set.
    pub tls: Option<TlsTarget>,
    /// The `Authorization` header sent with every request, if any.
    pub authorization: Option<HeaderValue>,
    /// The workload.
    pub workload: Workload,
    /// Concurrent connections.
    pub clients: usize,
    /// Stop after this long...
    pub duration: Option<Duration>,
    /// ...or after this many requests.
    pub requests: Option<u64>,
    /// Distinct keys.
    pub keyspace: u64,
    /// Bytes of each string value.
    pub value_size: usize,
    /// ttl of written keys.
    pub ttl: Option<u64>,
    /// Share of GETs in `mixed`.
    pub read_ratio: f64,
    /// Sets per batch request.
    pub batch_size: usize,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The workload.
    pub workload: Workload,
    /// Connections.
    pub clients: usize,
    /// Requests answered (any status).
    pub requests: u64,
    /// Wall time of the measured run, seconds.
    pub seconds: f64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// Keys written or read per second (batch: sets per second).
    pub keys_per_sec: f64,
    /// Latency statistics in microseconds.
    pub latency_us: Latency,
    /// Answers with status 404 (expected for deletes of deleted keys, gets of missing keys).
    pub not_found: u64,
    /// Failures by kind (status code or connection error).
    pub errors: BTreeMap<String, u64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest.
    pub max: u64,
}

/// The name of key number `n`: fixed width so 1000 consecutive keys share a prefix.
pub fn key_name(n: u64) -> String {
    format!("key:{n:010}")
}

struct Bodies {
    put: Bytes,
    batch_prefix: String,
}

impl Bodies {
    fn new(plan: &Plan) -> Bodies {
        let value = "x".repeat(plan.value_size);
        let ttl = plan
            .ttl
            .map(|t| format!(",\"ttl\":{t}"))
            .unwrap_or_default();
        Bodies {
            put: Bytes::from(format!("{{\"value\":\"{value}\"{ttl}}}")),
            batch_prefix: format!("\"value\":\"{value}\"{ttl}}}"),
        }
    }

    fn batch(&self, rng: &mut fastrand::Rng, plan: &Plan) -> Bytes {
        let mut body = String::with_capacity(16 + plan.batch_size * (self.batch_prefix.len() + 40));
        body.push_str("{\"operations\":[");
        for i in 0..plan.batch_size {
            if i > 0 {
                body.push(',');
            }
            body.push_str("{\"op\":\"set\",\"key\":\"");
            body.push_str(&key_name(rng.u64(0..plan.keyspace)));
            body.push_str("\",");
            body.push_str(&self.batch_prefix);
        }
        body.push_str("]}");
        Bytes::from(body)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {authority}: {reason}")]
pub struct ConnectError {
    /// The server.
    pub authority: String,
    /// Why.
    pub reason: String,
}

/// The TLS side of an `https://` server: the connector and the name its
/// certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    /// The configured connector.
    pub connector: tokio_rustls::TlsConnector,
    /// The host the certificate is checked against.
    pub server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsTarget({:?})", self.server_name)
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(plan: &Plan) -> Result<Sender, ConnectError> {
    let err = |reason: String| ConnectError {
        authority: plan.authority.clone(),
        reason,
    };
    let stream = TcpStream::connect(&plan.authority)
        .await
        .map_err(|e| err(e.to_string()))?;
    stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
    let (sender, connection) = match &plan.tls {
        None => {
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| err(e.to_string()))?;
            (sender, tokio::spawn(connection))
        }
        Some(tls) => {
            let stream = tls
                .connector
                .connect(tls.server_name.clone(), stream)
                .await
                .map_err(|e| err(format!("TLS: {e}")))?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| err(e.to_string()))?;
            (sender, tokio::spawn(connection))
        }
    };
    drop(connection);
    Ok(sender)
}

async fn exchange(
    sender: &mut Sender,
    plan: &Plan,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<StatusCode, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, &plan.authority);
    if let Some(authorization) = &plan.authorization {
        request = request.header(hyper::header::AUTHORIZATION, authorization.clone());
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    Ok(status)
}

/// Writes every key of the keyspace once, in batches of 1000, over `clients` connections.
pub async fn preload(plan: &Plan) -> Result<(), ConnectError> {
    let next = Arc::new(AtomicU64::new(0));
    let bodies = Arc::new(Bodies::new(plan));
    let mut tasks = Vec::new();
    for _ in 0..plan.clients.clamp(1, 8) {
        let mut sender = connect(plan).await?;
        let (next, bodies, plan) = (next.clone(), bodies.clone(), plan.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(1000, Ordering::Relaxed);
                if start >= plan.keyspace {
                    return Ok::<(), String>(());
                }
                let end = (start + 1000).min(plan.keyspace);
                let mut body = String::from("{\"operations\":[");
                for n in start..end {
                    if n > start {
                        body.push(',');
                    }
                    body.push_str(&format!(
                        "{{\"op\":\"set\",\"key\":\"{}\",{}",
                        key_name(n),
                        bodies.batch_prefix
                    ));
                }
                body.push_str("]}");
                let status = exchange(
                    &mut sender,
                    &plan,
                    Method::POST,
                    "/kv/batch",
                    Bytes::from(body),
                )
                .await?;
                if !status.is_success() {
                    return Err(format!("preload batch answered {status}"));
                }
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| ConnectError {
                authority: plan.authority.clone(),
                reason: e.to_string(),
            })?
            .map_err(|reason| ConnectError {
                authority: plan.authority.clone(),
                reason,
            })?;
    }
    Ok(())
}

/// What one client saw: latencies of answered requests, misses and errors.
struct Tally {
    histogram: Histogram<u64>,
    not_found: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            histogram: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("static bounds are valid"),
            not_found: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Counts a request answered with `status` after `micros`.
    fn answered(&mut self, status: StatusCode, micros: u64) {
        self.histogram.saturating_record(micros.max(1));
        if status == StatusCode::NOT_FOUND {
            self.not_found += 1;
        } else if !status.is_success() {
            self.failed(format!("HTTP {}", status.as_u16()));
        }
    }

    fn failed(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.histogram.add(&other.histogram).expect("same bounds");
        self.not_found += other.not_found;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

/// The next request of the workload: method, path and body.
fn next_request(plan: &Plan, bodies: &Bodies, rng: &mut fastrand::Rng) -> (Method, String, Bytes) {
    let key = key_name(rng.u64(0..plan.keyspace));
    match plan.workload {
        Workload::Get => (Method::GET, format!("/kv/{key}"), Bytes::new()),
        Workload::Put => (Method::PUT, format!("/kv/{key}"), bodies.put.clone()),
        Workload::Mixed if rng.f64() < plan.read_ratio => {
            (Method::GET, format!("/kv/{key}"), Bytes::new())
        }
        Workload::Mixed => (Method::PUT, format!("/kv/{key}"), bodies.put.clone()),
        Workload::Batch => (
            Method::POST,
            "/kv/batch".to_owned(),
            bodies.batch(rng, plan),
        ),
        Workload::Delete => (Method::DELETE, format!("/kv/{key}"), Bytes::new()),
        Workload::List => {
            let prefix = &key[..key.len() - 3];
            (Method::GET, format!("/kv?prefix={prefix}"), Bytes::new())
        }
    }
}

/// Where the clients of one run stop, and what they count.
struct RunLimits {
    /// No request is sent after this.
    deadline: Option<Instant>,
    /// Requests left to send, shared by every client.
    budget: Arc<AtomicU64>,
    /// Answered requests, for a progress bar.
    done: Arc<AtomicU64>,
}

impl RunLimits {
    /// Takes one request from the budget; false once the run is over.
    fn take_one(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
            && self
                .budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

/// One client's loop: requests one after another on its connection,
/// reconnecting after a failed exchange, until the run is over.
async fn client(
    seed: u64,
    mut sender: Sender,
    plan: Plan,
    bodies: Arc<Bodies>,
    limits: Arc<RunLimits>,
) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::new();
    while limits.take_one() {
        let (method, path, body) = next_request(&plan, &bodies, &mut rng);
        let sent = Instant::now();
        match exchange(&mut sender, &plan, method, &path, body).await {
            Ok(status) => tally.answered(status, sent.elapsed().as_micros() as u64),
            Err(kind) => {
                tally.failed(kind);
                match connect(&plan).await {
                    Ok(fresh) => sender = fresh,
                    Err(_) => break,
                }
            }
        }
        limits.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// Runs the plan; `done` counts answered requests as they come, for a progress bar.
pub async fn run(plan: &Plan, done: Arc<AtomicU64>) -> Result<Report, ConnectError> {
    let mut senders = Vec::with_capacity(plan.clients);
    for _ in 0..plan.clients {
        senders.push(connect(plan).await?);
    }
    let bodies = Arc::new(Bodies::new(plan));
    let started = Instant::now();
    let limits = Arc::new(RunLimits {
        deadline: plan.duration.map(|d| started + d),
        budget: Arc::new(AtomicU64::new(plan.requests.unwrap_or(u64::MAX))),
        done,
    });
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, sender)| {
            let seed = 0x5eed + i as u64;
            tokio::spawn(client(
                seed,
                sender,
                plan.clone(),
                bodies.clone(),
                limits.clone(),
            ))
        })
        .collect();
    let mut total = Tally::new();
    for task in tasks {
        total.merge(task.await.map_err(|e| ConnectError {
            authority: plan.authority.clone(),
            reason: e.to_string(),
        })?);
    }
    Ok(report(plan, &total, started.elapsed().as_secs_f64()))
}

/// The report of a run that took `seconds`.
fn report(plan: &Plan, total: &Tally, seconds: f64) -> Report {
    let h = &total.histogram;
    let requests = h.len();
    let requests_per_sec = requests as f64 / seconds;
    let keys_per_request = if plan.workload == Workload::Batch {
        plan.batch_size as f64
    } else {
        1.0
    };
    Report {
        workload: plan.workload,
        clients: plan.clients,
        requests,
        seconds,
        requests_per_sec,
        keys_per_sec: requests_per_sec * keys_per_request,
        latency_us: Latency {
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        },
        not_found: total.not_found,
        errors: total.errors.clone(),
    }
}
