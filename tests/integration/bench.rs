//! `kvctl bench` drives a real server and reports what it did.

use serde_json::Value;

use crate::support::{kvctl, stderr_of, Server};

fn bench(server: &Server, args: &[&str]) -> Value {
    let url = server.url();
    let mut all = vec!["bench", "--server", url.as_str(), "-o", "json"];
    all.extend_from_slice(args);
    let out = kvctl(&all, &[], None);
    assert!(out.status.success(), "bench {args:?}: {}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn keys(server: &Server) -> u64 {
    let out = kvctl(
        &["stats", "--server", &server.url(), "-o", "json"],
        &[],
        None,
    );
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    stats["keys"].as_u64().unwrap()
}

#[test]
fn every_workload_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);

    let report = bench(
        &server,
        &[
            "-w",
            "get",
            "-n",
            "300",
            "-c",
            "4",
            "--keyspace",
            "2000",
            "--preload",
        ],
    );
    assert_eq!(keys(&server), 2000, "preload writes the whole keyspace");
    assert_eq!(report["requests"], 300);
    assert_eq!(report["not_found"], 0);
    assert_eq!(report["errors"], serde_json::json!({}));
    let latency = &report["latency_us"];
    assert!(latency["p50"].as_u64() <= latency["p99"].as_u64());
    assert!(latency["p99"].as_u64() <= latency["max"].as_u64());
    assert!(report["requests_per_sec"].as_f64().unwrap() > 0.0);

    let report = bench(
        &server,
        &[
            "-w",
            "batch",
            "-n",
            "20",
            "-c",
            "2",
            "--keyspace",
            "5000",
            "--batch-size",
            "50",
        ],
    );
    assert_eq!(report["requests"], 20);
    let (rps, kps) = (
        report["requests_per_sec"].as_f64().unwrap(),
        report["keys_per_sec"].as_f64().unwrap(),
    );
    assert!((kps - rps * 50.0).abs() < 1e-6 * kps.max(1.0), "{report}");
    assert!(keys(&server) > 2000);

    let report = bench(
        &server,
        &["-w", "list", "-n", "10", "-c", "1", "--keyspace", "2000"],
    );
    assert_eq!(report["requests"], 10);
    let report = bench(
        &server,
        &[
            "-w",
            "mixed",
            "-n",
            "200",
            "--read-ratio",
            "0.5",
            "--keyspace",
            "100",
            "--ttl",
            "60",
        ],
    );
    assert_eq!(report["requests"], 200);
    let report = bench(
        &server,
        &["-w", "delete", "-n", "500", "-c", "2", "--keyspace", "100"],
    );
    assert_eq!(report["requests"], 500);
    assert!(report["not_found"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}));
}

#[test]
fn an_unreachable_server_is_exit_3() {
    let port = crate::support::free_port();
    let out = kvctl(
        &[
            "bench",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "-n",
            "1",
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
}
