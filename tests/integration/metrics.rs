//! `GET /metrics`: the scrape of a real server, parsed, checked against what
//! the test sent and against the store and its log; and the route's format
//! in process.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::json;
use tower::ServiceExt;

use kvctl::client::Client;
use kvctl::storage::memory::MemoryStorage;

use crate::support::Server;

/// One sample: the series' labels (sorted) and its value.
type Labels = BTreeMap<String, String>;

/// A parsed scrape: every sample line, by metric name.
#[derive(Debug, Default)]
struct Scrape {
    samples: Vec<(String, Labels, f64)>,
}

impl Scrape {
    /// Parses the OpenMetrics text format, as much of it as kvctl writes:
    /// `# ...` lines, then `name{label="value",...} number` lines, label
    /// values escaped with `\\`, `\"` and `\n`.
    fn parse(text: &str) -> Scrape {
        assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("name and value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), Labels::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    (name.to_owned(), parse_labels(body))
                }
            };
            samples.push((name, labels, value));
        }
        Scrape { samples }
    }

    /// The value of the series `name` whose labels include all of `labels`,
    /// summed over the series that match (0 when none does).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, v)| v).sum()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = (&'a Labels, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, l, v)| (l, *v))
    }

    /// The value of the one series `name` with exactly no labels.
    fn value(&self, name: &str) -> f64 {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| n == name && l.is_empty())
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]
    }
}

fn parse_labels(body: &str) -> Labels {
    let mut labels = Labels::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label {name} is quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("a closing quote") {
                '"' => break,
                '\\' => match chars.next().expect("an escaped character") {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        }
        labels.insert(name, value);
        match chars.next() {
            None | Some(',') => {}
            Some(c) => panic!("unexpected {c:?} after a label in {body}"),
        }
    }
    labels
}

async fn scrape(client: &Client) -> Scrape {
    let answer = client.send(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    Scrape::parse(std::str::from_utf8(&answer.body).expect("UTF-8"))
}

const KV: &str = "/kv/{*key}";
const REQUESTS: &str = "kvctl_http_requests_total";
const LATENCY: &str = "kvctl_http_request_duration_seconds";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_was_sent_and_matches_the_store_and_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--fsync", "always"]);
    let client = server.client();
    let wal = dir.path().join("wal.log");
    let keys = ["secret-alice", "user:bob/x", "carol key"];

    let before = scrape(&client).await;
    let wal_before = std::fs::metadata(&wal).unwrap().len();
    for (i, key) in keys.iter().enumerate() {
        client.put(key, &json!({"n": i}), None).await.unwrap();
    }
    assert!(client.get(keys[0]).await.unwrap().is_some());
    assert!(client.get(keys[1]).await.unwrap().is_some());
    assert!(client.get("missing-dave").await.unwrap().is_none());
    assert!(client.get("missing-erin").await.unwrap().is_none());
    assert!(client.delete(keys[2]).await.unwrap());
    assert!(!client.delete("missing-frank").await.unwrap());
    let batch = json!({"operations": [
        {"op": "set", "key": "batch-gina", "value": 1},
        {"op": "set", "key": "batch-hugo", "value": "two"},
        {"op": "get", "key": "batch-gina"}]});
    assert_eq!(client.batch(&batch).await.unwrap().len(), 3);
    let bad_put = client
        .send(Method::PUT, "/kv/bad-ivan", Some(b"{}".to_vec()))
        .await
        .unwrap();
    assert_eq!(bad_put.status, StatusCode::BAD_REQUEST);
    let unknown = client.send(Method::GET, "/nope/judy", None).await.unwrap();
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let wrong_method = client.send(Method::PATCH, "/kv/kim", None).await.unwrap();
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    let stats = client.stats().await.unwrap();
    let after = scrape(&client).await;
    let wal_after = std::fs::metadata(&wal).unwrap().len();

    let delta =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let requests = |method, route, status| {
        delta(
            REQUESTS,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    // Exactly what was sent, by route template and status.
    assert_eq!(requests("PUT", KV, "200"), 3.0);
    assert_eq!(requests("PUT", KV, "400"), 1.0);
    assert_eq!(requests("GET", KV, "200"), 2.0);
    assert_eq!(requests("GET", KV, "404"), 2.0);
    assert_eq!(requests("DELETE", KV, "200"), 1.0);
    assert_eq!(requests("DELETE", KV, "404"), 1.0);
    assert_eq!(requests("POST", "/kv/batch", "200"), 1.0);
    assert_eq!(requests("GET", "/stats", "200"), 1.0);
    assert_eq!(requests("GET", "unmatched", "404"), 1.0);
    assert_eq!(requests("PATCH", KV, "405"), 1.0);
    // The first scrape is counted by the second.
    assert_eq!(requests("GET", "/metrics", "200"), 1.0);
    let kv_requests_sent = 3.0 + 1.0 + 2.0 + 2.0 + 1.0 + 1.0 + 1.0;
    assert_eq!(delta(REQUESTS, &[("route", KV)]), kv_requests_sent);

    // No key, nor any path, appears in any label; routes are templates.
    let routes: HashSet<&str> = [
        KV,
        "/kv/batch",
        "/kv",
        "/kv/",
        "/stats",
        "/metrics",
        "unmatched",
    ]
    .into_iter()
    .collect();
    for (name, labels, _) in &after.samples {
        for value in labels.values() {
            for word in [
                "alice", "bob", "carol", "dave", "erin", "frank", "gina", "hugo", "ivan", "judy",
                "kim",
            ] {
                assert!(
                    !value.contains(word),
                    "{name} has a key in a label: {labels:?}"
                );
            }
        }
        if let Some(route) = labels.get("route") {
            assert!(routes.contains(route.as_str()), "{name}: route {route:?}");
        }
    }

    // The latency histogram: cumulative buckets up to +Inf, count = requests.
    let get_kv = [("method", "GET"), ("route", KV)];
    let buckets: Vec<(f64, f64)> = after
        .matching(&format!("{LATENCY}_bucket"), &get_kv)
        .map(|(labels, v)| {
            let le = &labels["le"];
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                },
                v,
            )
        })
        .collect();
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{buckets:?}"
    );
    let count = after.sum(&format!("{LATENCY}_count"), &get_kv);
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    assert_eq!(delta(&format!("{LATENCY}_count"), &get_kv), 4.0);
    assert_eq!(
        after.sum(&format!("{LATENCY}_count"), &[("route", KV)]),
        after.sum(REQUESTS, &[("route", KV)])
    );
    assert!(after.sum(&format!("{LATENCY}_sum"), &get_kv) > 0.0);

    // One request at a time, so each write is its own group commit: 3 PUTs,
    // 1 DELETE and 1 batch append and fsync; the DELETE of a missing key is a
    // group that writes nothing.
    let d = |name: &str| after.value(name) - before.value(name);
    assert_eq!(d("kvctl_wal_appends_total"), 5.0);
    assert_eq!(d("kvctl_wal_fsyncs_total"), 5.0);
    assert_eq!(d("kvctl_wal_fsync_duration_seconds_count"), 5.0);
    assert!(after.value("kvctl_wal_fsync_duration_seconds_count") > 0.0);
    assert!(after.sum("kvctl_wal_fsync_duration_seconds_bucket", &[("le", "+Inf")]) > 0.0);
    assert_eq!(
        d("kvctl_wal_appended_bytes_total"),
        (wal_after - wal_before) as f64
    );
    assert!(wal_after > wal_before);
    assert_eq!(after.value("kvctl_wal_size_bytes"), wal_after as f64);
    assert_eq!(d("kvctl_commit_group_requests_count"), 6.0);
    assert_eq!(d("kvctl_commit_group_requests_sum"), 6.0);

    // The store's gauges are /stats, exactly.
    assert_eq!(stats.keys, 4);
    assert_eq!(after.value("kvctl_keys"), stats.keys as f64);
    assert_eq!(after.value("kvctl_value_bytes"), stats.size_bytes as f64);

    assert!(after.value("kvctl_replay_duration_seconds") > 0.0);
    assert_eq!(
        after.sum("kvctl_compactions_total", &[("result", "ok")]),
        0.0
    );
}

#[tokio::test]
async fn keys_the_sweeper_removes_are_counted_as_expired() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--fsync", "never"]);
    let client = server.client();
    for key in ["a", "b"] {
        client.put(key, &json!(1), Some(1)).await.unwrap();
    }
    client.put("stays", &json!(1), None).await.unwrap();
    assert_eq!(scrape(&client).await.value("kvctl_expired_keys_total"), 0.0);
    // The deadline only bounds a hang; the sweeper looks every 100 ms.
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrape(&client).await.value("kvctl_expired_keys_total") < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the sweeper's removals were not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = scrape(&client).await;
    assert_eq!(after.value("kvctl_expired_keys_total"), 2.0);
    assert_eq!(after.value("kvctl_keys"), 1.0);
}

#[tokio::test]
async fn the_route_answers_openmetrics_text_and_other_methods_json() {
    let router = kvctl::server::app(MemoryStorage::default(), kvctl::api::Limits::default());
    let get = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(get).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        kvctl::metrics::CONTENT_TYPE
    );
    assert_eq!(
        kvctl::metrics::CONTENT_TYPE,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let scrape = Scrape::parse(std::str::from_utf8(&body).unwrap());
    assert_eq!(scrape.value("kvctl_keys"), 0.0);

    let post = Request::post("/metrics").body(Body::empty()).unwrap();
    let response = router.oneshot(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"error":"method POST is not allowed here"}"#);
}
