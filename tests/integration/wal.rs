//! `kvctl wal inspect|compact|repair` on clean, torn and corrupt logs.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use kvctl::local::map::Entry;
use kvctl::local::Snapshot;

use crate::support::{kvctl, stderr_of, Server};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `kvctl wal inspect` on `dir` with `extra` options.
fn inspect(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["wal", "inspect", "--data-dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    kvctl(&args, &[], None)
}

fn inspect_json(dir: &Path) -> (Value, std::process::Output) {
    let out = inspect(dir, &["-o", "json"]);
    (
        serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null),
        out,
    )
}

/// A log with overwrites, deletes, live and expired TTLs, a batch and a
/// persistent key, written the way the server writes them.
fn busy_log(now_s: u64) -> String {
    let old = now_s - 1000;
    [
        format!(r#"{{"op":"set","key":"k1","value":"first","timestamp":{old}}}"#),
        format!(r#"{{"op":"set","key":"k1","value":"second","timestamp":{old}.5}}"#),
        format!(r#"{{"op":"set","key":"k2","value":{{"z":1,"a":2}},"ttl":5000,"timestamp":{old}.123}}"#),
        format!(r#"{{"op":"set","key":"expired","value":1,"ttl":10,"timestamp":{old}}}"#),
        format!(r#"{{"op":"set","key":"deleted","value":1,"timestamp":{old}}}"#),
        format!(r#"{{"op":"delete","key":"deleted","timestamp":{old}}}"#),
        format!(r#"{{"op":"set","key":"b1","value":[1],"timestamp":{old},"batch":4,"batch_len":3}}"#),
        format!(r#"{{"op":"set","key":"b2","value":null,"ttl":3000,"timestamp":{old},"batch":4,"batch_len":3}}"#),
        format!(r#"{{"op":"delete","key":"k1","timestamp":{old},"batch":4,"batch_len":3}}"#),
        format!(r#"{{"op":"set","key":"k1","value":"third","timestamp":{old}.9}}"#),
        String::new(),
    ]
    .join("\n")
}

fn state(dir: &Path, now_ms: u64) -> Vec<(String, Entry)> {
    let (snapshot, _) = Snapshot::load_at(dir, now_ms).unwrap();
    snapshot
        .map()
        .entries_with_prefix("", now_ms)
        .map(|(k, e)| (k.to_owned(), e.clone()))
        .collect()
}

#[test]
fn inspect_summarises_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let now_s = kvctl::ttl::now_ms() / 1000;
    fs::write(dir.path().join("wal.log"), busy_log(now_s)).unwrap();
    let (summary, out) = inspect_json(dir.path());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(summary["records"], 10);
    assert_eq!(summary["sets"], 8);
    assert_eq!(summary["deletes"], 2);
    assert_eq!(summary["batches"], 1);
    assert_eq!(summary["live_keys"], 4, "{summary}");
    assert_eq!(summary["expired_keys"], 1);
    // "third" 5 + {"z":1,"a":2} 13 + [1] 3 + null 4
    assert_eq!(summary["live_value_bytes"], 25);
    assert_eq!(summary["torn_tail"], Value::Null);
    assert_eq!(summary["corruption"], Value::Null);
    assert!(summary["reclaimable"].as_f64().unwrap() > 0.3, "{summary}");

    let table = inspect(dir.path(), &["-o", "table"]);
    let text = stdout(&table);
    assert!(
        text.contains("live keys") && text.contains("reclaimable"),
        "{text}"
    );

    let out = inspect(dir.path(), &["--records", "--key", "k1", "-o", "json"]);
    let lines: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[3]["value"], "third");
    assert_eq!(lines[2]["op"], "delete");
    assert_eq!(lines[2]["batch"], 4);

    let out = inspect(
        dir.path(),
        &["--records", "--prefix", "b", "--limit", "1", "-o", "plain"],
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("\tb1\t"), "{text}");
}

#[test]
fn inspect_reports_torn_and_corrupt_logs() {
    let dir = tempfile::tempdir().unwrap();
    let now_s = kvctl::ttl::now_ms() / 1000;
    let log = format!("{}{{\"op\":\"set\",\"ke", busy_log(now_s));
    fs::write(dir.path().join("wal.log"), &log).unwrap();
    let (summary, out) = inspect_json(dir.path());
    assert!(out.status.success());
    assert!(
        summary["torn_tail"].as_str().unwrap().contains("line 11"),
        "{summary}"
    );
    assert_eq!(summary["records"], 10);
    assert_eq!(
        fs::read_to_string(dir.path().join("wal.log")).unwrap(),
        log,
        "inspect wrote"
    );

    let corrupt = busy_log(now_s).replacen("\n", "\n{oops}\n", 2);
    fs::write(dir.path().join("wal.log"), &corrupt).unwrap();
    let (summary, out) = inspect_json(dir.path());
    assert_eq!(out.status.code(), Some(5));
    assert!(
        summary["corruption"].as_str().unwrap().contains("line 2"),
        "{summary}"
    );
    assert_eq!(summary["records"], 1);
    assert!(
        stderr_of(&out).contains("wal repair"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn compaction_keeps_exactly_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let now_ms = kvctl::ttl::now_ms();
    fs::write(dir.path().join("wal.log"), busy_log(now_ms / 1000)).unwrap();
    let before = state(dir.path(), now_ms);
    assert_eq!(before.len(), 4);

    let out = kvctl(
        &[
            "wal",
            "compact",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "-o",
            "json",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["before_records"], 10);
    assert_eq!(report["after_records"], 4);
    assert_eq!(report["expired_dropped"], 1);
    assert!(report["after_bytes"].as_u64() < report["before_bytes"].as_u64());

    let after = state(dir.path(), now_ms);
    assert_eq!(before, after, "compaction changed the state");
    let log = fs::read_to_string(dir.path().join("wal.log")).unwrap();
    assert_eq!(log.lines().count(), 4);
    assert!(
        !log.contains("delete") && !log.contains("expired") && !log.contains("batch"),
        "{log}"
    );
    assert!(!dir.path().join("wal.log.compact").exists());

    // A server replays the compacted log to the same answers.
    let server = Server::start(dir.path(), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = server.client();
    assert_eq!(
        rt.block_on(client.get("k2")).unwrap(),
        Some(json!({"z": 1, "a": 2}))
    );
    assert_eq!(rt.block_on(client.get("k1")).unwrap(), Some(json!("third")));
    assert_eq!(
        rt.block_on(client.list("")).unwrap(),
        ["b1", "b2", "k1", "k2"]
    );
}

#[test]
fn compaction_of_a_server_written_log_and_refusal_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let url = server.url();
    let env = [("KVCTL_SERVER", url.as_str())];
    for i in 0..50 {
        kvctl(
            &["put", &format!("k{}", i % 10), &i.to_string(), "--json"],
            &env,
            None,
        );
    }
    kvctl(&["put", "t", "x", "--ttl", "3000"], &env, None);
    kvctl(&["rm", "k3"], &env, None);
    kvctl(
        &["batch", "-"],
        &env,
        Some(br#"[{"op":"set","key":"b","value":1},{"op":"set","key":"c","value":2}]"#),
    );

    let before = fs::read(dir.path().join("wal.log")).unwrap();
    let out = kvctl(&["wal", "compact", "--data-dir", data], &[], None);
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr_of(&out).contains("in use by a running server"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(fs::read(dir.path().join("wal.log")).unwrap(), before);

    assert!(server.terminate().success());
    let now_ms = kvctl::ttl::now_ms();
    let state_before = state(dir.path(), now_ms);
    let out = kvctl(
        &["wal", "compact", "--data-dir", data, "-o", "table"],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout(&out).contains("before") && stdout(&out).contains("after"));
    assert_eq!(state(dir.path(), now_ms), state_before);

    server.restart();
    assert_eq!(
        kvctl(&["stats", "-o", "json"], &env, None).stdout,
        b"{\"keys\":12,\"size_bytes\":21}\n"
    );
}

#[test]
fn repair_cuts_at_the_last_good_record_and_keeps_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let now_s = kvctl::ttl::now_ms() / 1000;
    let good = busy_log(now_s);
    let lines: Vec<&str> = good.lines().collect();
    // Corrupt the middle of the batch: the cut must fall before the batch.
    let corrupt = format!(
        "{}\n{}\n\u{0}\u{0}garbage\n{}\n",
        lines[..6].join("\n"),
        lines[6],
        lines[7..].join("\n")
    );
    fs::write(dir.path().join("wal.log"), &corrupt).unwrap();

    let port = crate::support::free_port().to_string();
    let refused = kvctl(&["serve", "--port", &port, "--data-dir", data], &[], None);
    assert!(!refused.status.success());
    assert!(
        stderr_of(&refused).contains("wal repair"),
        "{}",
        stderr_of(&refused)
    );

    let out = kvctl(&["wal", "repair", "--data-dir", data], &[], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stdout(&out);
    assert!(text.contains("kept 6 records"), "{text}");
    assert!(
        text.contains("dropped 5 lines (4 of them valid records)"),
        "{text}"
    );
    let backups: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("wal.log.corrupt-")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(fs::read_to_string(backups[0].path()).unwrap(), corrupt);
    assert_eq!(
        fs::read_to_string(dir.path().join("wal.log")).unwrap(),
        format!("{}\n", lines[..6].join("\n"))
    );
    let out = kvctl(&["wal", "repair", "--data-dir", data], &[], None);
    assert!(stdout(&out).contains("clean"), "{}", stdout(&out));
    let _server = Server::start(dir.path(), &[]);
}
