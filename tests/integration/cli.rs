//! The client subcommands against a live server and offline on a data dir.

use std::fs;

use serde_json::{json, Value};

use crate::support::{kvctl, stderr_of, Server};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs kvctl against `server` with KVCTL_SERVER set.
fn at(server: &Server, args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    kvctl(args, &[("KVCTL_SERVER", &server.url())], stdin)
}

#[test]
fn values_of_every_type_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let cases = [
        ("s", "hello world", false, "hello world\n"),
        ("n", "42", true, "42\n"),
        (
            "big",
            "18446744073709551615",
            true,
            "18446744073709551615\n",
        ),
        (
            "neg",
            "-9223372036854775808",
            true,
            "-9223372036854775808\n",
        ),
        ("f", "0.1", true, "0.1\n"),
        ("b", "true", true, "true\n"),
        ("null", "null", true, "null\n"),
        (
            "obj",
            r#"{"z": 1, "a": [1, "x"]}"#,
            true,
            "{\"z\":1,\"a\":[1,\"x\"]}\n",
        ),
        ("numstr", "42", false, "42\n"),
        ("uni", "héllo ✓", false, "héllo ✓\n"),
    ];
    for (key, value, is_json, _) in cases {
        let mut args = vec!["put", key, value];
        if is_json {
            args.push("--json");
        }
        let out = at(&server, &args, None);
        assert!(out.status.success(), "put {key}: {}", stderr_of(&out));
        assert_eq!(stdout(&out), "", "plain put prints nothing");
    }
    for (key, _, _, printed) in cases {
        let out = at(&server, &["get", key], None);
        assert!(out.status.success(), "get {key}: {}", stderr_of(&out));
        assert_eq!(stdout(&out), printed, "get {key}");
    }
    // A string that looks like a number stays a string.
    let out = at(&server, &["get", "numstr", "--output", "json"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"value": "42"})
    );
    let out = at(&server, &["get", "obj", "-o", "json"], None);
    assert_eq!(stdout(&out), "{\"value\":{\"z\":1,\"a\":[1,\"x\"]}}\n");
}

#[test]
fn odd_keys_survive_the_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let keys = [
        "a b",
        "a/b/c",
        "q?x=1#frag",
        "100%",
        "ключ",
        "batch",
        "-dash",
        "~.~",
    ];
    for key in keys {
        // `--` ends the options, so a key may start with a dash.
        let out = at(&server, &["put", "--", key, &format!("v-{key}")], None);
        assert!(out.status.success(), "put {key:?}: {}", stderr_of(&out));
    }
    for key in keys {
        let out = at(&server, &["get", "--", key], None);
        assert_eq!(stdout(&out), format!("v-{key}\n"), "get {key:?}");
    }
    let out = at(&server, &["ls"], None);
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    assert_eq!(
        stdout(&out),
        sorted.iter().map(|k| format!("{k}\n")).collect::<String>()
    );
    let out = at(&server, &["ls", "--prefix", "a"], None);
    assert_eq!(stdout(&out), "a b\na/b/c\n");
}

#[test]
fn stdin_values_are_exact_and_large_values_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let text = "line one\nline \"two\"\ttabbed\n  trailing spaces  \n";
    let out = at(&server, &["put", "doc", "-"], Some(text.as_bytes()));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = at(&server, &["get", "doc", "-o", "json"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"value": text})
    );

    let big = "x".repeat(3 << 20);
    let out = at(&server, &["put", "big", "-"], Some(big.as_bytes()));
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = at(&server, &["get", "big"], None);
    assert_eq!(stdout(&out).len(), big.len() + 1);

    let out = at(&server, &["put", "bin", "-"], Some(&[0xff, 0xfe, 0x00]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let out = at(
        &server,
        &["put", "j", "-", "--json"],
        Some(b"[1, {\"a\": null}]"),
    );
    assert!(out.status.success());
    assert_eq!(
        stdout(&at(&server, &["get", "j"], None)),
        "[1,{\"a\":null}]\n"
    );
}

#[test]
fn ttl_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let out = at(&server, &["put", "t", "v", "--ttl", "1"], None);
    assert!(out.status.success());
    assert_eq!(stdout(&at(&server, &["get", "t"], None)), "v\n");
    let gone = crate::support::wait_until(std::time::Duration::from_secs(5), || {
        at(&server, &["get", "t"], None).status.code() == Some(1)
    });
    assert!(gone, "key with --ttl 1 did not expire");
    let out = at(&server, &["put", "t", "v", "--ttl", "0"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn batch_from_a_file_and_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let file = dir.path().join("ops.json");
    fs::write(
        &file,
        r#"{"operations": [{"op": "set", "key": "a", "value": 1}, {"op": "set", "key": "b", "value": [2], "ttl": 60}, {"op": "get", "key": "a"}]}"#,
    )
    .unwrap();
    let out = at(
        &server,
        &["batch", file.to_str().unwrap(), "-o", "json"],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"results": [{"success": true}, {"success": true}, {"value": 1}]})
    );
    // A bare array on stdin; plain output is one result per line.
    let ops =
        br#"[{"op": "delete", "key": "a"}, {"op": "get", "key": "a"}, {"op": "get", "key": "b"}]"#;
    let out = at(&server, &["batch", "-"], Some(ops));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        stdout(&out),
        "{\"success\":true}\n{\"error\":\"key not found\"}\n{\"value\":[2]}\n"
    );
    // Invalid batches are rejected by the server, naming the operation.
    let out = at(
        &server,
        &["batch", "-"],
        Some(br#"[{"op": "incr", "key": "a"}]"#),
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr_of(&out).contains("operations[0]"),
        "{}",
        stderr_of(&out)
    );
    let out = at(&server, &["batch", "-"], Some(b"not json"));
    assert_eq!(out.status.code(), Some(2));
    let out = at(&server, &["batch", "/no/such/file.json"], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-key-bytes", "8"]);
    assert_eq!(at(&server, &["put", "k", "v"], None).status.code(), Some(0));
    let missing = at(&server, &["get", "nope"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr_of(&missing).contains("key not found"),
        "{}",
        stderr_of(&missing)
    );
    assert_eq!(stdout(&missing), "");
    assert_eq!(at(&server, &["rm", "nope"], None).status.code(), Some(1));
    assert_eq!(at(&server, &["get"], None).status.code(), Some(2));
    assert_eq!(at(&server, &["frobnicate"], None).status.code(), Some(2));
    assert_eq!(
        kvctl(&["get", "k", "--server", "localhost:1"], &[], None)
            .status
            .code(),
        Some(2)
    );

    let port = crate::support::free_port();
    let out = kvctl(
        &["get", "k", "--server", &format!("http://127.0.0.1:{port}")],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr_of(&out).contains("cannot reach the server"),
        "{}",
        stderr_of(&out)
    );

    let out = at(&server, &["put", "much-too-long", "v"], None);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr_of(&out).contains("over the limit of 8 bytes"),
        "{}",
        stderr_of(&out)
    );

    let help = kvctl(&["--help"], &[], None);
    assert!(help.status.success());
    assert!(
        stdout(&help).contains("3  cannot reach the server"),
        "{}",
        stdout(&help)
    );
}

#[test]
fn tables_and_json_for_ls_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    at(&server, &["put", "user:1", "héllo"], None);
    at(&server, &["put", "user:2", "{\"a\":1}", "--json"], None);
    let out = at(&server, &["stats", "-o", "json"], None);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        json!({"keys": 2, "size_bytes": 13})
    );
    assert_eq!(
        stdout(&at(&server, &["stats"], None)),
        "keys\t2\nsize_bytes\t13\n"
    );
    let table = stdout(&at(&server, &["ls", "-o", "table"], None));
    assert!(
        table.contains("user:1") && table.contains("2 keys"),
        "{table}"
    );
    let table = stdout(&at(&server, &["stats", "-o", "table"], None));
    assert!(
        table.contains("size_bytes") && table.contains("13"),
        "{table}"
    );
    let out = at(&server, &["ls", "-o", "json", "--prefix", "user:2"], None);
    assert_eq!(stdout(&out), "{\"keys\":[\"user:2\"]}\n");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let ops: Vec<Value> = (0..5000)
        .map(|i| json!({"op": "set", "key": format!("key-{i:05}"), "value": i}))
        .collect();
    let body = serde_json::to_vec(&ops).unwrap();
    assert!(at(&server, &["batch", "-"], Some(&body)).status.success());
    let script = format!(
        "set -o pipefail; KVCTL_SERVER={} {} ls | head -n 1",
        server.url(),
        crate::support::BIN
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key-00000\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn offline_reads_match_the_server_and_writes_need_the_dir_free() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    at(&server, &["put", "a", "1", "--json"], None);
    at(&server, &["put", "b", "two"], None);
    at(&server, &["put", "gone", "x", "--ttl", "1"], None);
    at(
        &server,
        &["batch", "-"],
        Some(br#"[{"op":"set","key":"c","value":[3]},{"op":"delete","key":"a"}]"#),
    );

    // Reads work while the server runs, and agree with it.
    for args in [
        vec!["ls"],
        vec!["stats"],
        vec!["get", "b"],
        vec!["get", "c"],
    ] {
        let online = at(&server, &args, None);
        let mut offline_args = args.clone();
        offline_args.extend(["--data-dir", data]);
        let offline = kvctl(&offline_args, &[], None);
        assert!(
            offline.status.success(),
            "{args:?}: {}",
            stderr_of(&offline)
        );
        assert_eq!(stdout(&offline), stdout(&online), "{args:?}");
    }
    crate::support::wait_until(std::time::Duration::from_secs(5), || {
        kvctl(&["get", "gone", "--data-dir", data], &[], None)
            .status
            .code()
            == Some(1)
    });
    assert_eq!(
        stdout(&kvctl(&["ls", "--data-dir", data], &[], None)),
        "b\nc\n"
    );

    let out = kvctl(&["put", "x", "y", "--data-dir", data], &[], None);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr_of(&out).contains("in use"), "{}", stderr_of(&out));

    assert!(server.terminate().success());
    let out = kvctl(&["put", "x", "y", "--data-dir", data], &[], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = kvctl(&["rm", "b", "--data-dir", data], &[], None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        kvctl(&["rm", "b", "--data-dir", data], &[], None)
            .status
            .code(),
        Some(1)
    );
    let out = kvctl(
        &["batch", "-", "--data-dir", data],
        &[],
        Some(br#"[{"op":"get","key":"x"}]"#),
    );
    assert_eq!(stdout(&out), "{\"value\":\"y\"}\n");

    server.restart();
    assert_eq!(stdout(&at(&server, &["ls"], None)), "c\nx\n");
    let out = kvctl(&["ls", "--data-dir", "/no/such/dir"], &[], None);
    assert_eq!(out.status.code(), Some(5));
    // A directory without a log is an empty store; bad keys are refused as a server would.
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    let out = kvctl(&["stats", "--data-dir", empty], &[], None);
    assert_eq!(
        stdout(&out),
        "keys\t0\nsize_bytes\t0\n",
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        kvctl(&["get", "k", "--data-dir", empty], &[], None)
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        kvctl(&["get", "", "--data-dir", empty], &[], None)
            .status
            .code(),
        Some(4)
    );
}
