//! `kvctl serve` as a process: crashes, signals, locks, bad input, full disks.

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_one_line_error, free_port, kvctl, wait_until, Server};

fn wal(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("wal.log")
}

/// What the writers of the crash test sent, and what was acknowledged.
#[derive(Default)]
struct Sent {
    /// Every key a single PUT was sent for, with its value.
    puts: HashMap<String, Value>,
    /// Keys whose PUT was acknowledged and not followed by a DELETE.
    acked: HashMap<String, Value>,
    /// Keys whose DELETE was acknowledged.
    deleted: Vec<String>,
    /// Every batch sent, acknowledged or not: its keys and the value it set
    /// them all to.
    batches: Vec<(Vec<String>, Value)>,
}

type Shared = Arc<Mutex<Sent>>;

/// A writer of single PUTs, each key once, deleting every seventh after it
/// is acknowledged. Stops at `stop` or at the first failed request.
async fn put_and_delete(
    client: kvctl::client::Client,
    writer: u64,
    sent: Shared,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("w{writer}-{i}");
        let value = json!({"writer": writer, "i": i});
        sent.lock().unwrap().puts.insert(key.clone(), value.clone());
        if client.put(&key, &value, None).await.is_err() {
            return;
        }
        if i % 7 == 3 {
            // Once the delete is sent the key's fate is unknown until it is
            // acknowledged.
            if client.delete(&key).await.is_err() {
                return;
            }
            sent.lock().unwrap().deleted.push(key);
        } else {
            sent.lock().unwrap().acked.insert(key, value);
        }
        i += 1;
    }
}

/// A writer of batches of five sets.
async fn batches_of_five(
    client: kvctl::client::Client,
    writer: u64,
    sent: Shared,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let keys: Vec<String> = (0..5).map(|k| format!("b{writer}-{i}-{k}")).collect();
        let ops: Vec<Value> = keys
            .iter()
            .map(|k| json!({"op": "set", "key": k, "value": i}))
            .collect();
        sent.lock().unwrap().batches.push((keys, json!(i)));
        if client.batch(&json!({ "operations": ops })).await.is_err() {
            return;
        }
        i += 1;
    }
}

/// Checks a restarted server against what was sent before the crash.
async fn check_recovered(client: &kvctl::client::Client, sent: &Sent) {
    for (key, value) in &sent.acked {
        assert_eq!(
            client.get(key).await.unwrap().as_ref(),
            Some(value),
            "lost {key}"
        );
    }
    for key in &sent.deleted {
        assert_eq!(client.get(key).await.unwrap(), None, "delete of {key} lost");
    }
    let mut batch_of: HashMap<&str, &Value> = HashMap::new();
    for (keys, value) in &sent.batches {
        let mut present = 0;
        for key in keys {
            batch_of.insert(key.as_str(), value);
            if let Some(v) = client.get(key).await.unwrap() {
                assert_eq!(&v, value, "{key}");
                present += 1;
            }
        }
        assert!(
            present == 0 || present == keys.len(),
            "batch {keys:?} half applied"
        );
    }
    // Nothing appears that was never sent, nor with a value never sent for it.
    for key in client.list("").await.unwrap() {
        let sent_value = sent.puts.get(&key).or(batch_of.get(key.as_str()).copied());
        let Some(sent_value) = sent_value else {
            panic!("{key} was never sent");
        };
        assert_eq!(
            client.get(&key).await.unwrap().as_ref(),
            Some(sent_value),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_concurrent_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let sent: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for writer in 0..32 {
        let writer = put_and_delete(server.client(), writer, sent.clone(), stop.clone());
        tasks.push(tokio::spawn(writer));
    }
    for writer in 0..4 {
        let writer = batches_of_five(server.client(), writer, sent.clone(), stop.clone());
        tasks.push(tokio::spawn(writer));
    }
    // The deadline bounds a hang; any amount of progress past the mark is
    // a valid moment to crash.
    let enough = wait_until(Duration::from_secs(120), || {
        let sent = sent.lock().unwrap();
        sent.acked.len() >= 3000 && !sent.batches.is_empty()
    });
    assert!(enough, "the writers stalled");
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    server.restart();
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    check_recovered(&server.client(), &sent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_keeps_every_write() {
    for policy in ["always", "interval", "never"] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(dir.path(), &["--fsync", policy]);
        let client = server.client();
        for i in 0..50 {
            client.put(&format!("k{i}"), &json!(i), None).await.unwrap();
        }
        assert!(client.delete("k7").await.unwrap());
        let status = server.terminate();
        assert!(
            status.success(),
            "{policy}: exit {status}: {}",
            server.stderr()
        );
        assert!(
            server.stderr().contains("stopped cleanly"),
            "{}",
            server.stderr()
        );

        server.restart();
        let client = server.client();
        assert!(
            server.stderr().contains(&format!("fsync {policy}")),
            "{}",
            server.stderr()
        );
        assert_eq!(client.stats().await.unwrap().keys, 49, "{policy}");
        assert_eq!(client.get("k49").await.unwrap(), Some(json!(49)));
        assert_eq!(client.get("k7").await.unwrap(), None);
    }
}

#[tokio::test]
async fn startup_line_reports_address_dir_policy_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.client().put("a", &json!(1), None).await.unwrap();
    server.terminate();
    server.restart();
    let log = server.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("serving on"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("http://127.0.0.1:{}", server.port)),
        "{log}"
    );
    assert!(line.contains(&dir.path().display().to_string()), "{log}");
    assert!(line.contains("fsync always"), "{log}");
    assert!(line.contains("replayed 1 records"), "{log}");
}

#[tokio::test]
async fn corrupt_middle_line_refuses_to_start_and_leaves_the_log_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let first = r#"{"op":"set","key":"a","value":1,"timestamp":1764129000}"#;
    let content = format!("{first}\nthis is not json\n{first}\n");
    fs::write(wal(dir.path()), &content).unwrap();
    let port = free_port().to_string();
    let data_dir = dir.path().to_str().unwrap();
    let out = kvctl(
        &["serve", "--port", &port, "--data-dir", data_dir],
        &[],
        None,
    );
    assert_one_line_error(&out, "wal.log");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(
        err.contains(&format!("byte offset {}", first.len() + 1)),
        "{err}"
    );
    assert_eq!(fs::read_to_string(wal(dir.path())).unwrap(), content);
}

#[tokio::test]
async fn torn_tail_is_cut_and_incomplete_batch_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"op":"set","key":"a","value":1,"timestamp":1764129000}"#;
    let batch1 =
        r#"{"op":"set","key":"b1","value":1,"timestamp":1764129000,"batch":9,"batch_len":3}"#;
    let batch2 =
        r#"{"op":"set","key":"b2","value":1,"timestamp":1764129000,"batch":9,"batch_len":3}"#;
    fs::write(
        wal(dir.path()),
        format!("{good}\n{batch1}\n{batch2}\n{{\"op\":\"se"),
    )
    .unwrap();
    let server = Server::start(dir.path(), &[]);
    assert!(server.stderr().contains("torn"), "{}", server.stderr());
    let client = server.client();
    assert_eq!(client.list("").await.unwrap(), ["a"]);
    assert_eq!(
        fs::read_to_string(wal(dir.path())).unwrap(),
        format!("{good}\n")
    );
    client.put("c", &json!(2), None).await.unwrap();
    let log = fs::read_to_string(wal(dir.path())).unwrap();
    assert!(
        log.starts_with(&format!("{good}\n{{\"op\":\"set\",\"key\":\"c\"")),
        "{log}"
    );
}

#[tokio::test]
async fn second_server_on_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path(), &[]);
    let port = free_port().to_string();
    let out = kvctl(
        &[
            "serve",
            "--port",
            &port,
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_one_line_error(&out, "in use");
}

#[tokio::test]
async fn taken_port_bad_dir_and_bad_flags_fail_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = kvctl(
        &[
            "serve",
            "--port",
            &port,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_one_line_error(&out, "cannot listen on 127.0.0.1");

    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let under_file = file.join("data");
    let out = kvctl(
        &["serve", "--data-dir", under_file.to_str().unwrap()],
        &[],
        None,
    );
    assert_one_line_error(&out, "cannot create data directory");

    let out = kvctl(&["serve", "--port", "eighty"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "--port");
    let out = kvctl(&["serve"], &[("PORT", "99999")], None);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "99999");
    // A misspelt level is refused, not taken for a target to log.
    let out = kvctl(&["serve", "--log-level", "debgu"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "\"debgu\" is not a level");
}

#[tokio::test]
async fn env_configures_and_flags_override() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("from-env");
    let port = free_port();
    let mut child = std::process::Command::new(crate::support::BIN)
        .arg("serve")
        .env("PORT", port.to_string())
        .env("DATA_DIR", &env_dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = kvctl::client::Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut up = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !up {
        up = client.stats().await.is_ok();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "server from env did not come up");
    client.put("k", &json!("v"), None).await.unwrap();
    crate::support::signal(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
    assert!(fs::read_to_string(env_dir.join("wal.log"))
        .unwrap()
        .contains("\"key\":\"k\""));

    let flag_dir = dir.path().join("from-flag");
    let flag_port = free_port();
    let mut child = std::process::Command::new(crate::support::BIN)
        .args(["serve", "--port", &flag_port.to_string(), "--data-dir"])
        .arg(&flag_dir)
        .env("PORT", port.to_string())
        .env("DATA_DIR", &env_dir)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = kvctl::client::Client::new(&format!("http://127.0.0.1:{flag_port}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < deadline && !up {
        up = client.stats().await.is_ok();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "server from flags did not come up");
    assert!(flag_dir.join("wal.log").exists());
    crate::support::signal(child.id(), libc::SIGTERM);
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn failed_wal_write_is_a_5xx_and_reads_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let client = server.client();
    client.put("before", &json!("ok"), None).await.unwrap();
    let size = fs::metadata(wal(dir.path())).unwrap().len();
    set_file_size_limit(server.pid(), size + 10);

    let big = json!("x".repeat(1000));
    let answer = client
        .send(
            Method::PUT,
            "/kv/after",
            Some(serde_json::to_vec(&json!({"value": big})).unwrap()),
        )
        .await
        .unwrap();
    assert!(answer.status.is_server_error(), "{:?}", answer);
    assert!(answer.json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("write-ahead log"));
    let batch = json!({"operations": [{"op": "set", "key": "x", "value": big}, {"op": "delete", "key": "before"}]});
    let answer = client
        .send(
            Method::POST,
            "/kv/batch",
            Some(serde_json::to_vec(&batch).unwrap()),
        )
        .await
        .unwrap();
    assert!(answer.status.is_server_error());
    assert_eq!(client.get("before").await.unwrap(), Some(json!("ok")));
    assert_eq!(client.get("after").await.unwrap(), None);
    assert_eq!(client.stats().await.unwrap().keys, 1);
    assert_eq!(
        fs::metadata(wal(dir.path())).unwrap().len(),
        size,
        "partial group left behind"
    );

    set_file_size_limit(server.pid(), libc::RLIM_INFINITY);
    client.put("after", &big, None).await.unwrap();
    server.kill9();
    server.restart();
    let client = server.client();
    assert_eq!(client.get("after").await.unwrap(), Some(big));
    assert_eq!(client.get("before").await.unwrap(), Some(json!("ok")));
    assert_eq!(client.get("x").await.unwrap(), None);
}

/// A write that fails while earlier groups are still being applied (many
/// writers at once, so groups pipeline): every writer is told the truth.
/// Each acknowledged write is there, before and after a restart; each
/// refused one is not; and the log holds nothing past the file-size limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_among_concurrent_writers_refuses_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // Slow fsyncs gather the writers into large groups, each handed to the
    // applier while the next is written.
    let mut server = Server::start_with_env(
        dir.path(),
        &["--fsync", "always"],
        &[(kvctl::wal::TEST_SYNC_DELAY_ENV, "5")],
    );
    server
        .client()
        .put("before", &json!("ok"), None)
        .await
        .unwrap();
    let limit = fs::metadata(wal(dir.path())).unwrap().len() + 40_000;
    set_file_size_limit(server.pid(), limit);

    let value = json!("v".repeat(150));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let client = server.client();
            let body = serde_json::to_vec(&json!({ "value": value })).unwrap();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..1000 {
                    let key = format!("w{w}-{i}");
                    let answer = client
                        .send(Method::PUT, &format!("/kv/{key}"), Some(body.clone()))
                        .await
                        .unwrap();
                    if answer.status == StatusCode::OK {
                        acked.push(key);
                    } else {
                        assert!(answer.status.is_server_error(), "{answer:?}");
                        return (acked, Some(key));
                    }
                }
                (acked, None)
            })
        })
        .collect();
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    for writer in writers {
        let (mine, failed) = writer.await.unwrap();
        acked.extend(mine);
        refused.extend(failed);
    }
    assert_eq!(refused.len(), 16, "every writer ran into the limit");
    assert!(!acked.is_empty(), "some writes fit under the limit");
    assert!(fs::metadata(wal(dir.path())).unwrap().len() <= limit);

    check_acked_and_refused(&server.client(), &acked, &refused, &value).await;
    set_file_size_limit(server.pid(), libc::RLIM_INFINITY);
    server.kill9();
    server.restart();
    check_acked_and_refused(&server.client(), &acked, &refused, &value).await;
}

/// Checks that every acknowledged key holds `value`, that no refused key
/// exists, and that nothing else does but the key "before".
async fn check_acked_and_refused(
    client: &kvctl::client::Client,
    acked: &[String],
    refused: &[String],
    value: &Value,
) {
    for key in acked {
        assert_eq!(
            client.get(key).await.unwrap().as_ref(),
            Some(value),
            "{key}"
        );
    }
    for key in refused {
        assert_eq!(client.get(key).await.unwrap(), None, "{key}");
    }
    assert_eq!(client.stats().await.unwrap().keys, acked.len() as u64 + 1);
}

fn set_file_size_limit(pid: u32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit with a valid pid and a pointer to a live rlimit.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit failed: {}", std::io::Error::last_os_error());
}

#[tokio::test]
async fn expiry_survives_restart_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let ttl = Duration::from_secs(3);
    let sent = Instant::now();
    server
        .client()
        .put("t", &json!("soon"), Some(3))
        .await
        .unwrap();
    let acked = Instant::now();
    server
        .client()
        .put("p", &json!("stays"), None)
        .await
        .unwrap();
    server
        .client()
        .put("l", &json!("later"), Some(3600))
        .await
        .unwrap();
    server.kill9();
    server.restart();
    let client = server.client();
    // A key with a ttl survives the restart whatever its length...
    assert_eq!(client.get("l").await.unwrap(), Some(json!("later")));
    // ...and keeps its deadline of write time plus ttl (the write happened
    // between `sent` and `acked`): a read that saw the key began before
    // `acked + ttl`, a read that missed it ended after `sent + ttl`. A slow
    // restart only leaves fewer reads that see it; the deadline bounds a
    // hang. The log keeps milliseconds, so a deadline may fall up to a
    // millisecond before `sent + ttl`.
    let give_up = acked + ttl + Duration::from_secs(30);
    loop {
        let began = Instant::now();
        let value = client.get("t").await.unwrap();
        let ended = Instant::now();
        match value {
            Some(value) => {
                assert_eq!(value, json!("soon"));
                assert!(
                    began < acked + ttl,
                    "read {:?} after its deadline",
                    began - acked - ttl
                );
            }
            None => {
                let earliest = sent + ttl - Duration::from_millis(1);
                assert!(ended >= earliest, "expired {:?} early", earliest - ended);
                break;
            }
        }
        assert!(Instant::now() < give_up, "key outlived its ttl");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.stats().await.unwrap().keys, 2);
    assert_eq!(client.get("p").await.unwrap(), Some(json!("stays")));
}

#[test]
fn a_body_over_the_limit_is_answered_with_connection_close() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-bytes", "1000"]);
    let chunk = format!("{:x}\r\n{}\r\n", 500, "x".repeat(500));
    for (framing, body) in [
        (
            "Transfer-Encoding: chunked",
            format!("{}0\r\n\r\n", chunk.repeat(6)),
        ),
        ("Content-Length: 3000", "x".repeat(3000)),
    ] {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The server may answer and close before reading all of it.
        let _ = tcp.write_all(
            format!("PUT /kv/big HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n{body}").as_bytes(),
        );
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 413"), "{framing}: {answer}");
        assert!(
            answer.contains("\r\nconnection: close\r\n"),
            "{framing}: {answer}"
        );
    }
}

#[tokio::test]
async fn error_bodies_are_json_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-bytes", "100"]);
    let client = server.client();
    for (method, path, body, status) in [
        (Method::GET, "/nope", None, StatusCode::NOT_FOUND),
        (Method::POST, "/kv/a", None, StatusCode::METHOD_NOT_ALLOWED),
        (
            Method::DELETE,
            "/stats",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/kv/", None, StatusCode::BAD_REQUEST),
        (Method::GET, "/kv/%FF", None, StatusCode::BAD_REQUEST),
        (
            Method::PUT,
            "/kv/a",
            Some(vec![b'x'; 200]),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/kv/batch",
            Some(b"[]".to_vec()),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let answer = client.send(method.clone(), path, body).await.unwrap();
        assert_eq!(answer.status, status, "{method} {path}");
        let body = answer.json().unwrap();
        assert!(body["error"].is_string(), "{method} {path}: {body}");
        assert_eq!(body.as_object().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn numbers_out_of_range_and_lone_surrogates_are_400s() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = server.client();
    for body in [
        r#"{"operations":[{"op":"set","key":"a","value":1e400}]}"#,
        r#"{"operations":[{"op":"get","key":"\udc00"}]}"#,
        r#"{"operations":[{"op":"set","key":"a","value":"\ud800"}]}"#,
    ] {
        let answer = client
            .send(Method::POST, "/kv/batch", Some(body.as_bytes().to_vec()))
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let error = answer.json().unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.starts_with("operations[0]"), "{body}: {error}");
    }
    let answer = client
        .send(Method::PUT, "/kv/a", Some(br#"{"value":1e400}"#.to_vec()))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(client.stats().await.unwrap().keys, 0);
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn sigterm_as_soon_as_the_port_opens_is_a_clean_exit() {
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = std::process::Command::new(crate::support::BIN)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let open = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(open, "server never opened its port");
        crate::support::signal(child.id(), libc::SIGTERM);
        let status = child.wait().unwrap();
        assert!(status.success(), "exit {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_are_not_blocked_by_a_sync_in_progress_and_see_nothing_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    // Written by hand, so that the only fsync is the one under test.
    let now_s = kvctl::ttl::now_ms() / 1000;
    fs::write(
        wal(dir.path()),
        format!("{{\"op\":\"set\",\"key\":\"old\",\"value\":\"before\",\"timestamp\":{now_s}}}\n"),
    )
    .unwrap();
    // Every fsync takes 15 s longer: the reads below must all happen while
    // one runs, and 15 s leaves room for a slow machine to make them.
    let server = Server::start_with_env(
        dir.path(),
        &[],
        &[(kvctl::wal::TEST_SYNC_DELAY_ENV, "15000")],
    );
    let client = server.client();

    let writer = {
        let client = client.clone();
        tokio::spawn(async move { client.put("new", &json!("after"), None).await })
    };
    // Wait until the write is in the log (its fsync has begun).
    let log = wal(dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fs::read_to_string(&log).unwrap().contains("\"new\"") {
        assert!(Instant::now() < deadline, "the write never reached the log");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Reads are answered while that sync is still running, and do not see
    // the write that is not yet durable.
    assert_eq!(client.get("old").await.unwrap(), Some(json!("before")));
    assert_eq!(client.get("new").await.unwrap(), None);
    assert_eq!(client.list("").await.unwrap(), ["old"]);
    assert_eq!(client.stats().await.unwrap().keys, 1);
    assert!(
        !writer.is_finished(),
        "the write was acknowledged before its sync ended"
    );

    writer.await.unwrap().unwrap();
    assert_eq!(client.get("new").await.unwrap(), Some(json!("after")));
}
