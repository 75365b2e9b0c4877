//! Owns the process's metrics: the families and their registry, and
//! rendering them in the Prometheus (OpenMetrics) text format.
//!
//! One process serves one store, so the metrics are one process-wide
//! [`Metrics`] behind the free functions here; every layer records through
//! them. Recording is a few atomic operations (a histogram is one
//! uncontended lock), and the write path records once per group commit, not
//! once per record. Gauges that describe the whole store (keys, value bytes)
//! are not kept up to date on every write: the scrape fills them from the
//! store's own exact counters ([`set_store_size`]).

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of a rendered scrape (OpenMetrics 1.0.0, which
/// Prometheus negotiates and parses).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The route label of a request that matched no route: never the raw path,
/// which would put keys (and unbounded cardinality) into labels.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Latency buckets in seconds, 25 µs to 10 s: a cached GET is tens of
/// microseconds, a durable write an fsync (a millisecond or more on most disks).
const LATENCY_BUCKETS: [f64; 18] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most distinct route templates given their own label; the routes are the
/// router's, so this is never reached, but it bounds what interning leaks.
const MAX_ROUTES: usize = 64;

/// Labels of one request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// Labels of one request latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

/// How a compaction ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // the variants are the label values
enum CompactionResult {
    ok,
    failed,
}

/// Labels of the compaction counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompactionLabels {
    result: CompactionResult,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Every metric family of the process, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    wal_appends: Counter,
    wal_appended_bytes: Counter,
    wal_size: Gauge<u64, AtomicU64>,
    wal_fsyncs: Counter,
    wal_fsync_duration: Histogram,
    commit_group: Histogram,
    keys: Gauge<u64, AtomicU64>,
    value_bytes: Gauge<u64, AtomicU64>,
    expired_keys: Counter,
    compactions: Family<CompactionLabels, Counter>,
    compaction_duration: Histogram,
    compaction_reclaimed: Counter,
    replay_duration: Gauge<f64, AtomicU64>,
    /// Route templates seen so far, leaked once each to be `'static` labels.
    routes: RwLock<Vec<&'static str>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of families, all zero, registered under `kvctl_`.
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Registry::with_prefix("kvctl"),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            wal_appends: Counter::default(),
            wal_appended_bytes: Counter::default(),
            wal_size: Gauge::default(),
            wal_fsyncs: Counter::default(),
            wal_fsync_duration: latency_histogram(),
            commit_group: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            keys: Gauge::default(),
            value_bytes: Gauge::default(),
            expired_keys: Counter::default(),
            compactions: Family::default(),
            compaction_duration: Histogram::new(exponential_buckets(0.001, 4.0, 12)),
            compaction_reclaimed: Counter::default(),
            replay_duration: Gauge::default(),
            routes: RwLock::new(Vec::new()),
        };
        // Both outcomes are shown from the start, so a rate over them never
        // starts from a missing series.
        for result in [CompactionResult::ok, CompactionResult::failed] {
            let _ = metrics
                .compactions
                .get_or_create(&CompactionLabels { result });
        }
        metrics.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            self.http_requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its response, by method and route template",
            Unit::Seconds,
            self.http_duration.clone(),
        );
        r.register(
            "wal_appends",
            "Group writes appended to the write-ahead log (one per group commit)",
            self.wal_appends.clone(),
        );
        r.register_with_unit(
            "wal_appended",
            "Bytes appended to the write-ahead log",
            Unit::Bytes,
            self.wal_appended_bytes.clone(),
        );
        r.register_with_unit(
            "wal_size",
            "Length of the write-ahead log file",
            Unit::Bytes,
            self.wal_size.clone(),
        );
        r.register(
            "wal_fsyncs",
            "fdatasync calls on the write-ahead log (per write with --fsync always, once a second with interval)",
            self.wal_fsyncs.clone(),
        );
        r.register_with_unit(
            "wal_fsync_duration",
            "Time one fdatasync of the write-ahead log took",
            Unit::Seconds,
            self.wal_fsync_duration.clone(),
        );
        r.register(
            "commit_group_requests",
            "Write requests committed together by one group commit",
            self.commit_group.clone(),
        );
        r.register(
            "keys",
            "Live keys in the store, as /stats counts them",
            self.keys.clone(),
        );
        r.register_with_unit(
            "value",
            "Size of the live values, as /stats counts it (size_bytes)",
            Unit::Bytes,
            self.value_bytes.clone(),
        );
        r.register(
            "expired_keys",
            "Expired keys removed from memory by the expiry sweeper",
            self.expired_keys.clone(),
        );
        r.register(
            "compactions",
            "Online compactions of the write-ahead log, by result",
            self.compactions.clone(),
        );
        r.register_with_unit(
            "compaction_duration",
            "Time one successful compaction took",
            Unit::Seconds,
            self.compaction_duration.clone(),
        );
        r.register_with_unit(
            "compaction_reclaimed",
            "Bytes of write-ahead log that compactions removed",
            Unit::Bytes,
            self.compaction_reclaimed.clone(),
        );
        r.register_with_unit(
            "replay_duration",
            "Time the replay of the write-ahead log took when the server started",
            Unit::Seconds,
            self.replay_duration.clone(),
        );
        self
    }

    /// Counts one answered request and its latency.
    pub fn http_request(&self, method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let route = self.route_label(route);
        self.http_requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(elapsed.as_secs_f64());
    }

    /// A `'static` label for a route template: the templates are the
    /// router's, a handful, so each is leaked once and then found by a
    /// short scan under a read lock.
    fn route_label(&self, route: Option<&str>) -> &'static str {
        let Some(route) = route else {
            return UNMATCHED_ROUTE;
        };
        if let Some(known) = self.routes.read().iter().find(|r| **r == route) {
            return known;
        }
        let mut routes = self.routes.write();
        if let Some(known) = routes.iter().find(|r| **r == route) {
            return known;
        }
        if routes.len() >= MAX_ROUTES {
            return UNMATCHED_ROUTE;
        }
        let leaked: &'static str = Box::leak(route.into());
        routes.push(leaked);
        leaked
    }

    /// Counts one append of `bytes` to the log, which is now `log_len` long.
    pub fn wal_appended(&self, bytes: usize, log_len: u64) {
        self.wal_appends.inc();
        self.wal_appended_bytes.inc_by(bytes as u64);
        self.wal_size.set(log_len);
    }

    /// Sets the log's length, when it changes other than by an append.
    pub fn wal_size(&self, log_len: u64) {
        self.wal_size.set(log_len);
    }

    /// Runs `sync` (an fsync of the log), counting and timing it.
    pub fn time_fsync<T>(&self, sync: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = sync();
        self.wal_fsync_duration
            .observe(started.elapsed().as_secs_f64());
        self.wal_fsyncs.inc();
        result
    }

    /// Records the size of one group commit, in requests.
    pub fn commit_group(&self, requests: usize) {
        self.commit_group.observe(requests as f64);
    }

    /// Counts keys the sweeper removed because they expired.
    pub fn keys_expired(&self, keys: usize) {
        self.expired_keys.inc_by(keys as u64);
    }

    /// Records how long the replay at start took.
    pub fn replay_finished(&self, elapsed: Duration) {
        self.replay_duration.set(elapsed.as_secs_f64());
    }

    /// Records a successful compaction that took `duration` and shrank the
    /// log from `bytes_before` to `bytes_after`.
    pub fn compaction_finished(&self, duration: Duration, bytes_before: u64, bytes_after: u64) {
        self.compactions
            .get_or_create(&CompactionLabels {
                result: CompactionResult::ok,
            })
            .inc();
        self.compaction_duration.observe(duration.as_secs_f64());
        self.compaction_reclaimed
            .inc_by(bytes_before.saturating_sub(bytes_after));
        self.wal_size.set(bytes_after);
    }

    /// Counts a compaction that failed (the log is left as it was).
    pub fn compaction_failed(&self) {
        self.compactions
            .get_or_create(&CompactionLabels {
                result: CompactionResult::failed,
            })
            .inc();
    }

    /// Sets the store-wide gauges, from the store's own counters at scrape time.
    pub fn set_store_size(&self, keys: u64, value_bytes: u64) {
        self.keys.set(keys);
        self.value_bytes.set(value_bytes);
    }

    /// Every family in the OpenMetrics text format, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// A `'static` label for an HTTP method; methods outside the standard ones
/// share one label, so a client cannot make up series.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// Counts one answered request and its latency; `route` is the matched
/// route's template (`/kv/{*key}`), `None` for no match.
pub fn http_request(method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
    METRICS.http_request(method, route, status, elapsed);
}

/// Counts one append of `bytes` to the log, which is now `log_len` long.
pub fn wal_appended(bytes: usize, log_len: u64) {
    METRICS.wal_appended(bytes, log_len);
}

/// Sets the log's length, when it changes other than by an append.
pub fn wal_size(log_len: u64) {
    METRICS.wal_size(log_len);
}

/// Runs `sync` (an fsync of the log), counting and timing it.
pub fn time_fsync<T>(sync: impl FnOnce() -> T) -> T {
    METRICS.time_fsync(sync)
}

/// Records the size of one group commit, in requests.
pub fn commit_group(requests: usize) {
    METRICS.commit_group(requests);
}

/// Counts keys the sweeper removed because they expired.
pub fn keys_expired(keys: usize) {
    METRICS.keys_expired(keys);
}

/// Records how long the replay at start took.
pub fn replay_finished(elapsed: Duration) {
    METRICS.replay_finished(elapsed);
}

/// Records a successful compaction that took `duration` and shrank the log
/// from `bytes_before` to `bytes_after` (which becomes the log size).
pub fn compaction_finished(duration: Duration, bytes_before: u64, bytes_after: u64) {
    METRICS.compaction_finished(duration, bytes_before, bytes_after);
}

/// Counts a compaction that failed.
pub fn compaction_failed() {
    METRICS.compaction_failed();
}

/// Sets the store-wide gauges, from the store's own counters at scrape time.
pub fn set_store_size(keys: u64, value_bytes: u64) {
    METRICS.set_store_size(keys, value_bytes);
}

/// The process's metrics in the OpenMetrics text format.
pub fn render() -> String {
    METRICS.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample lines of `text` (no comments), as (series, value).
    fn samples(text: &str) -> Vec<(String, f64)> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("a value");
                (series.to_owned(), value.parse().expect("a number"))
            })
            .collect()
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        samples(text)
            .into_iter()
            .find(|(s, _)| s == series)
            .map(|(_, v)| v)
    }

    #[test]
    fn a_fresh_registry_renders_every_unlabelled_family_at_zero() {
        let text = Metrics::new().render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        // A family with labels shows up with its first series; the request
        // families get theirs with the first request.
        assert!(!text.contains("kvctl_http_"), "{text}");
        for (family, kind) in [
            ("kvctl_wal_appends", "counter"),
            ("kvctl_wal_appended_bytes", "counter"),
            ("kvctl_wal_size_bytes", "gauge"),
            ("kvctl_wal_fsyncs", "counter"),
            ("kvctl_wal_fsync_duration_seconds", "histogram"),
            ("kvctl_commit_group_requests", "histogram"),
            ("kvctl_keys", "gauge"),
            ("kvctl_value_bytes", "gauge"),
            ("kvctl_expired_keys", "counter"),
            ("kvctl_compactions", "counter"),
            ("kvctl_compaction_duration_seconds", "histogram"),
            ("kvctl_compaction_reclaimed_bytes", "counter"),
            ("kvctl_replay_duration_seconds", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{family} {kind} missing:\n{text}"
            );
        }
        assert_eq!(value(&text, "kvctl_wal_appends_total"), Some(0.0));
        assert_eq!(
            value(&text, r#"kvctl_compactions_total{result="ok"}"#),
            Some(0.0)
        );
        assert_eq!(
            value(&text, r#"kvctl_compactions_total{result="failed"}"#),
            Some(0.0)
        );
    }

    #[test]
    fn requests_are_counted_by_template_and_timed_in_buckets() {
        let m = Metrics::new();
        for _ in 0..3 {
            m.http_request("GET", Some("/kv/{*key}"), 200, Duration::from_micros(30));
        }
        m.http_request("GET", Some("/kv/{*key}"), 404, Duration::from_millis(2));
        m.http_request("BREW", None, 404, Duration::from_micros(10));
        let text = m.render();
        let get = r#"method="GET",route="/kv/{*key}""#;
        assert_eq!(
            value(
                &text,
                &format!(r#"kvctl_http_requests_total{{{get},status="200"}}"#)
            ),
            Some(3.0)
        );
        assert_eq!(
            value(
                &text,
                &format!(r#"kvctl_http_requests_total{{{get},status="404"}}"#)
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                r#"kvctl_http_requests_total{method="other",route="unmatched",status="404"}"#
            ),
            Some(1.0)
        );
        let hist = "kvctl_http_request_duration_seconds";
        assert_eq!(value(&text, &format!("{hist}_count{{{get}}}")), Some(4.0));
        assert!(text.contains("# TYPE kvctl_http_requests counter\n"));
        assert!(text.contains(&format!("# TYPE {hist} histogram\n")));
        // Cumulative buckets: 30 µs falls in le=0.00005, 2 ms only from le=0.0025.
        assert_eq!(
            value(&text, &format!(r#"{hist}_bucket{{le="0.000025",{get}}}"#)),
            Some(0.0)
        );
        assert_eq!(
            value(&text, &format!(r#"{hist}_bucket{{le="0.00005",{get}}}"#)),
            Some(3.0)
        );
        assert_eq!(
            value(&text, &format!(r#"{hist}_bucket{{le="0.001",{get}}}"#)),
            Some(3.0)
        );
        assert_eq!(
            value(&text, &format!(r#"{hist}_bucket{{le="0.0025",{get}}}"#)),
            Some(4.0)
        );
        assert_eq!(
            value(&text, &format!(r#"{hist}_bucket{{le="+Inf",{get}}}"#)),
            Some(4.0)
        );
        let sum = value(&text, &format!("{hist}_sum{{{get}}}")).unwrap();
        assert!((sum - 0.00209).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn a_route_template_is_interned_once() {
        let m = Metrics::new();
        let template = String::from("/kv/{*key}");
        let a = m.route_label(Some(&template));
        let b = m.route_label(Some("/kv/{*key}"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(m.routes.read().len(), 1);
        assert_eq!(m.route_label(None), UNMATCHED_ROUTE);
    }

    #[test]
    fn wal_appends_fsyncs_and_groups_are_recorded() {
        let m = Metrics::new();
        m.wal_size(100);
        m.wal_appended(40, 140);
        m.wal_appended(60, 200);
        let synced: Result<(), ()> = m.time_fsync(|| Ok(()));
        assert_eq!(synced, Ok(()));
        m.commit_group(1);
        m.commit_group(5);
        let text = m.render();
        assert_eq!(value(&text, "kvctl_wal_appends_total"), Some(2.0));
        assert_eq!(value(&text, "kvctl_wal_appended_bytes_total"), Some(100.0));
        assert_eq!(value(&text, "kvctl_wal_size_bytes"), Some(200.0));
        assert_eq!(value(&text, "kvctl_wal_fsyncs_total"), Some(1.0));
        assert_eq!(
            value(&text, "kvctl_wal_fsync_duration_seconds_count"),
            Some(1.0)
        );
        assert_eq!(value(&text, "kvctl_commit_group_requests_count"), Some(2.0));
        assert_eq!(value(&text, "kvctl_commit_group_requests_sum"), Some(6.0));
        assert_eq!(
            value(&text, r#"kvctl_commit_group_requests_bucket{le="4.0"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, r#"kvctl_commit_group_requests_bucket{le="8.0"}"#),
            Some(2.0)
        );
    }

    #[test]
    fn compactions_count_results_duration_and_reclaimed_bytes() {
        let m = Metrics::new();
        m.wal_size(10_000);
        m.compaction_finished(Duration::from_millis(300), 10_000, 2_500);
        m.compaction_finished(Duration::from_millis(100), 3_000, 3_000);
        m.compaction_failed();
        let text = m.render();
        assert_eq!(
            value(&text, r#"kvctl_compactions_total{result="ok"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&text, r#"kvctl_compactions_total{result="failed"}"#),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "kvctl_compaction_duration_seconds_count"),
            Some(2.0)
        );
        let sum = value(&text, "kvctl_compaction_duration_seconds_sum").unwrap();
        assert!((sum - 0.4).abs() < 1e-9, "{sum}");
        assert_eq!(
            value(&text, "kvctl_compaction_reclaimed_bytes_total"),
            Some(7_500.0)
        );
        assert_eq!(value(&text, "kvctl_wal_size_bytes"), Some(3_000.0));
    }

    #[test]
    fn store_gauges_expiry_and_replay_are_recorded() {
        let m = Metrics::new();
        m.set_store_size(3, 17);
        m.keys_expired(4);
        m.keys_expired(1);
        m.replay_finished(Duration::from_millis(1500));
        let text = m.render();
        assert_eq!(value(&text, "kvctl_keys"), Some(3.0));
        assert_eq!(value(&text, "kvctl_value_bytes"), Some(17.0));
        assert_eq!(value(&text, "kvctl_expired_keys_total"), Some(5.0));
        assert_eq!(value(&text, "kvctl_replay_duration_seconds"), Some(1.5));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label("DELETE"), "DELETE");
        assert_eq!(method_label("BREW"), "other");
    }
}
