//! Online compaction and snapshots against the real binary: writes that
//! arrive during a compaction, a crash at every step of one and at random
//! instants, a disk without room, and a snapshot's round trip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kvctl::client::Client;
use serde_json::{json, Value};

use crate::support::{kvctl, stderr_of, wait_until, Server};

const CRASH_ENV: &str = kvctl::local::TEST_CRASH_ENV;
const HOLD_ENV: &str = kvctl::local::TEST_HOLD_ENV;
const TMP: &str = kvctl::wal::COMPACT_TMP_FILE;

/// What the store should hold: key → value.
type Expected = BTreeMap<String, Value>;

fn wal(dir: &Path) -> PathBuf {
    dir.join("wal.log")
}

/// Writes `keys` keys three times over (one in ten with a long ttl), in
/// batches, then deletes one in seven: a log that is mostly garbage.
async fn fill(client: &Client, keys: usize, expected: &mut Expected) {
    let all: Vec<usize> = (0..keys).collect();
    for round in 0..3 {
        for chunk in all.chunks(100) {
            let ops: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    let key = format!("k{i:05}");
                    let value = json!({"round": round, "i": i});
                    expected.insert(key.clone(), value.clone());
                    match i % 10 {
                        0 => json!({"op": "set", "key": key, "value": value, "ttl": 3600}),
                        _ => json!({"op": "set", "key": key, "value": value}),
                    }
                })
                .collect();
            client.batch(&json!({ "operations": ops })).await.unwrap();
        }
    }
    for chunk in all.chunks(700) {
        let ops: Vec<Value> = chunk
            .iter()
            .step_by(7)
            .map(|i| {
                let key = format!("k{i:05}");
                expected.remove(&key);
                json!({"op": "delete", "key": key})
            })
            .collect();
        client.batch(&json!({ "operations": ops })).await.unwrap();
    }
}

/// Checks that the server holds exactly `expected`.
async fn check_state(client: &Client, expected: &Expected) {
    let keys = client.list("").await.unwrap();
    let wanted: Vec<&String> = expected.keys().collect();
    assert_eq!(keys.iter().collect::<Vec<_>>(), wanted, "the keys differ");
    for chunk in keys.chunks(500) {
        let ops: Vec<Value> = chunk
            .iter()
            .map(|k| json!({"op": "get", "key": k}))
            .collect();
        let results = client.batch(&json!({ "operations": ops })).await.unwrap();
        for (key, result) in chunk.iter().zip(results) {
            assert_eq!(result["value"], expected[key], "{key}");
        }
    }
}

/// A writer of single PUTs of new keys, until `stop`; what it recorded as
/// acknowledged goes into `acked`, and every key it sent into `sent`.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Expected>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(client: Client, name: &'static str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Expected::new()));
        let (stop_, acked_) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let mut i = 0u64;
            while !stop_.load(Ordering::Relaxed) {
                let key = format!("{name}-{i:06}");
                let value = json!(i);
                if client.put(&key, &value, None).await.is_err() {
                    return;
                }
                acked_.lock().unwrap().insert(key, value);
                i += 1;
            }
        });
        Writer { stop, acked, task }
    }

    /// Stops the writer; what was acknowledged.
    async fn finish(self) -> Expected {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

/// After a crash: every acknowledged write of the writer is there, and what
/// else it wrote is a key it sent (the one in flight at the crash).
async fn check_after_crash(client: &Client, expected: &Expected, acked: &Expected, name: &str) {
    let mut found = expected.clone();
    for key in client.list(&format!("{name}-")).await.unwrap() {
        let value = client.get(&key).await.unwrap().unwrap();
        found.insert(key, value);
    }
    let last_acked = acked.keys().next_back();
    for (key, value) in &found {
        if let Some(v) = acked.get(key).or(expected.get(key)) {
            assert_eq!(value, v, "{key}");
        } else {
            // Only the write in flight at the crash may be there unacknowledged.
            let n: u64 = key.rsplit('-').next().unwrap().parse().unwrap();
            let next = last_acked.map_or(0, |k| {
                k.rsplit('-').next().unwrap().parse::<u64>().unwrap() + 1
            });
            assert_eq!(n, next, "{key} was never sent");
        }
    }
    for key in acked.keys().chain(expected.keys()) {
        assert!(found.contains_key(key), "lost {key}");
    }
    check_state(client, &found).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_each_live_keys_last_set_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--compact-min-bytes", "0"]);
    let client = server.client();
    let mut expected = Expected::new();
    fill(&client, 1000, &mut expected).await;
    let before = std::fs::read_to_string(wal(dir.path())).unwrap();
    let report = client.compact().await.unwrap();
    assert_eq!(report.bytes_before, before.len() as u64);
    let after = std::fs::read_to_string(wal(dir.path())).unwrap();
    assert_eq!(report.bytes_after, after.len() as u64);
    assert!(
        after.len() * 3 < before.len(),
        "{} → {}",
        before.len(),
        after.len()
    );

    // Each key's last set in the old log, without its batch mark, is its
    // line in the new one: same value, timestamp and ttl.
    let mut last_set: BTreeMap<String, Value> = BTreeMap::new();
    for line in before.lines() {
        let mut record: Value = serde_json::from_str(line).unwrap();
        let key = record["key"].as_str().unwrap().to_owned();
        if record["op"] == "set" {
            let fields = record.as_object_mut().unwrap();
            fields.remove("batch");
            fields.remove("batch_len");
            last_set.insert(key, record);
        } else {
            last_set.remove(&key);
        }
    }
    let compacted: BTreeMap<String, Value> = after
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            (record["key"].as_str().unwrap().to_owned(), record)
        })
        .collect();
    assert_eq!(compacted, last_set);
    assert!(compacted.values().any(|r| r["ttl"] == 3600));

    check_state(&client, &expected).await;
    server.terminate();
    server.restart();
    check_state(&server.client(), &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_a_compaction_are_kept_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let hold = tempfile::NamedTempFile::new().unwrap();
    let mut server = Server::start_with_env(
        dir.path(),
        &["--compact-min-bytes", "0"],
        &[(HOLD_ENV, hold.path().to_str().unwrap())],
    );
    let client = server.client();
    let mut expected = Expected::new();
    fill(&client, 2000, &mut expected).await;
    let compacting = tokio::spawn({
        let client = client.clone();
        async move { client.compact().await }
    });
    // The new file is written and synced, and the compaction holds: write
    // now, then let it catch up.
    let tmp = dir.path().join(TMP);
    assert!(
        wait_until(Duration::from_secs(60), || tmp
            .metadata()
            .is_ok_and(|m| m.len() > 0)),
        "the compaction never wrote its file"
    );
    for i in 0..300usize {
        // Overwrites, deletes and new keys, each after the last.
        let key = format!("k{:05}", i * 3);
        match i % 3 {
            0 => {
                client.put(&key, &json!("during"), None).await.unwrap();
                expected.insert(key, json!("during"));
            }
            1 => {
                client.delete(&key).await.unwrap();
                expected.remove(&key);
            }
            _ => {
                let new = format!("new{i:03}");
                client.put(&new, &json!(i), Some(3600)).await.unwrap();
                expected.insert(new, json!(i));
            }
        }
    }
    assert!(!compacting.is_finished(), "the compaction did not wait");
    hold.close().unwrap();
    let report = compacting.await.unwrap().unwrap();
    assert!(report.bytes_after < report.bytes_before, "{report:?}");
    assert!(!tmp.exists(), "the temporary file is gone");
    check_state(&client, &expected).await;
    server.kill9();
    server.restart();
    check_state(&server.client(), &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_a_compaction_loses_nothing() {
    let steps = [
        "writing",
        "written",
        "before-rename",
        "before-dir-sync",
        "before-switch",
        "after-switch",
    ];
    for step in steps {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_with_env(
            dir.path(),
            &["--compact-min-bytes", "0"],
            &[(CRASH_ENV, step)],
        );
        let client = server.client();
        let mut expected = Expected::new();
        fill(&client, 5000, &mut expected).await;
        let writer = Writer::start(client.clone(), "live");
        let crashed = client.compact().await;
        assert!(
            crashed.is_err(),
            "{step}: the compaction finished: {crashed:?}"
        );
        let status = server.wait_for_exit(Duration::from_secs(60));
        assert!(
            status.is_some_and(
                |s| std::os::unix::process::ExitStatusExt::signal(&s) == Some(libc::SIGKILL)
            ),
            "{step}: {status:?}: {}",
            server.stderr()
        );
        let acked = writer.finish().await;
        server.restart_with_env(&[]);
        assert!(
            !dir.path().join(TMP).exists(),
            "{step}: the leftover file was removed"
        );
        check_after_crash(&server.client(), &expected, &acked, "live").await;
        // And the directory compacts cleanly afterwards.
        server.client().compact().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_of_compactions_loses_nothing() {
    let seed: u64 = std::env::var("KVCTL_COMPACT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("seed {seed} (KVCTL_COMPACT_CRASH_SEED={seed} reruns it)");
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--compact-min-bytes", "0"]);
    let mut expected = Expected::new();
    fill(&server.client(), 20_000, &mut expected).await;
    let started = Instant::now();
    server.client().compact().await.unwrap();
    let takes = started.elapsed();
    for iteration in 0..6 {
        let client = server.client();
        fill(&client, 20_000, &mut expected).await;
        let name = ["w0", "w1", "w2", "w3", "w4", "w5"][iteration];
        let writer = Writer::start(client.clone(), name);
        let compacting = tokio::spawn(async move { client.compact().await });
        let delay = takes.mul_f64(rng.f64() * 1.5);
        tokio::time::sleep(delay).await;
        server.kill9();
        let _ = compacting.await.unwrap();
        let acked = writer.finish().await;
        server.restart();
        assert!(!dir.path().join(TMP).exists());
        let client = server.client();
        check_after_crash(&client, &expected, &acked, name).await;
        for key in client.list(&format!("{name}-")).await.unwrap() {
            expected.insert(key.clone(), client.get(&key).await.unwrap().unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restores_one_point_of_the_log_taken_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let client = server.client();
    let mut expected = Expected::new();
    fill(&client, 3000, &mut expected).await;
    // A writer of keys in sequence: the snapshot must hold a prefix of them.
    let writer = Writer::start(client.clone(), "seq");
    assert!(wait_until(Duration::from_secs(60), || writer
        .acked
        .lock()
        .unwrap()
        .len()
        >= 20));
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("backup.log");
    let saved = kvctl(
        &[
            "snapshot",
            "save",
            file.to_str().unwrap(),
            "--server",
            &server.url(),
        ],
        &[],
        None,
    );
    assert!(saved.status.success(), "{}", stderr_of(&saved));
    let acked = writer.finish().await;
    assert!(String::from_utf8_lossy(&saved.stdout).contains("saved a snapshot"));
    assert!(!out.path().join("backup.log.partial").exists());
    // Writes after the snapshot are not in it.
    client.put("after", &json!(1), None).await.unwrap();
    server.terminate();

    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, wal(restored.path())).unwrap();
    let restored_server = Server::start(restored.path(), &[]);
    let client = restored_server.client();
    let seq = client.list("seq-").await.unwrap();
    assert!(
        seq.len() >= 20 && seq.len() <= acked.len() + 1,
        "{}",
        seq.len()
    );
    for (n, key) in seq.iter().enumerate() {
        assert_eq!(
            key,
            &format!("seq-{n:06}"),
            "a point in log order has no gaps"
        );
        assert_eq!(client.get(key).await.unwrap(), Some(json!(n)));
        expected.insert(key.clone(), json!(n));
    }
    check_state(&client, &expected).await;

    // No server: exit 3, and no file, partial or not.
    drop(restored_server);
    let missing = out.path().join("none.log");
    let failed = kvctl(
        &[
            "snapshot",
            "save",
            missing.to_str().unwrap(),
            "--server",
            &server.url(),
        ],
        &[],
        None,
    );
    assert_eq!(failed.status.code(), Some(3), "{}", stderr_of(&failed));
    assert!(!missing.exists() && !out.path().join("none.log.partial").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_demand_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--compact-min-bytes", "0"]);
    let mut expected = Expected::new();
    fill(&server.client(), 500, &mut expected).await;
    let before = wal(dir.path()).metadata().unwrap().len();
    let out = kvctl(
        &["wal", "compact", "--server", &server.url(), "-o", "json"],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bytes_before"], before);
    assert_eq!(
        report["bytes_after"],
        wal(dir.path()).metadata().unwrap().len()
    );
    check_state(&server.client(), &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_compacted_by_itself_once_it_has_grown() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--compact-min-bytes", "100000", "--compact-ratio", "1.5"],
    );
    let mut expected = Expected::new();
    fill(&server.client(), 1000, &mut expected).await;
    // The deadline bounds a hang; the compactor looks once a second.
    assert!(
        wait_until(Duration::from_secs(30), || server
            .stderr()
            .contains("compacted the log by itself")),
        "never compacted: {}",
        server.stderr()
    );
    let written: u64 = server
        .stderr()
        .lines()
        .filter_map(|l| l.split("compacted the log by itself: ").nth(1))
        .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(wal(dir.path()).metadata().unwrap().len() < written);
    check_state(&server.client(), &expected).await;
}

/// A small tmpfs of its own, so that a test can fill the disk; unmounted
/// when dropped. `None` unless the tests run as root (CI does).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a small filesystem needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(mounted.success(), "mount tmpfs failed");
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk up to `leave` free bytes, with a file removed to free it.
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![b'x'; 4096];
        use std::io::Write;
        while free_bytes(self.path()) > leave {
            if file.write_all(&block).is_err() {
                break;
            }
        }
        file.sync_all().ok();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is plain data, for which all zeroes is a valid value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs to fill.
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) }, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_without_room_leaves_the_log_and_the_server_serving() {
    let Some(disk) = SmallDisk::mount(4 << 20) else {
        return;
    };
    let data = disk.path().join("data");
    let server = Server::start(&data, &["--compact-min-bytes", "0"]);
    let client = server.client();
    let mut expected = Expected::new();
    fill(&client, 2000, &mut expected).await;
    let log_before = std::fs::read(wal(&data)).unwrap();
    // Room for writes, not for a second copy of the live data.
    let _filler = disk.fill_leaving(log_before.len() as u64 / 8);
    let refused = client.compact().await.unwrap_err().to_string();
    assert!(
        refused.contains("500") && refused.contains("compaction failed"),
        "{refused}"
    );
    assert_eq!(
        std::fs::read(wal(&data)).unwrap(),
        log_before,
        "the log is unchanged"
    );
    assert!(!data.join(TMP).exists(), "the partial file is removed");
    client.put("still", &json!("writable"), None).await.unwrap();
    expected.insert("still".into(), json!("writable"));
    check_state(&client, &expected).await;
    let health = client
        .send(hyper::Method::GET, "/health", None)
        .await
        .unwrap();
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_health_until_there_is_room_again() {
    let Some(disk) = SmallDisk::mount(2 << 20) else {
        return;
    };
    let data = disk.path().join("data");
    let server = Server::start(&data, &[]);
    let client = server.client();
    client.put("before", &json!(1), None).await.unwrap();
    let filler = disk.fill_leaving(0);
    let big = json!("x".repeat(64 << 10));
    let refused = client.put("big", &big, None).await.unwrap_err().to_string();
    assert!(refused.contains("500"), "{refused}");
    let health = client
        .send(hyper::Method::GET, "/health", None)
        .await
        .unwrap();
    assert_eq!(health.status, 503, "{:?}", health.body);
    let error = health.json().unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("No space left"),
        "{error}"
    );
    assert_eq!(error.as_object().unwrap().len(), 1);
    // Reads go on; nothing of the refused write is visible.
    assert_eq!(client.get("before").await.unwrap(), Some(json!(1)));
    assert_eq!(client.get("big").await.unwrap(), None);

    std::fs::remove_file(filler).unwrap();
    // Healthy again without a client's write: the server probes the disk
    // (at most once a second).
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        let health = client
            .send(hyper::Method::GET, "/health", None)
            .await
            .unwrap();
        if health.status == hyper::StatusCode::OK || Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (health.status, &health.body[..]),
        (hyper::StatusCode::OK, &br#"{"status":"ok"}"#[..])
    );
    client.put("big", &big, None).await.unwrap();
    assert_eq!(client.get("big").await.unwrap(), Some(big));
}
