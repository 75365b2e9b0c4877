//! Security and protection from bad clients, against the real binary:
//! header, idle and request timeouts, the connection limit and the
//! open-file limit, bearer tokens, TLS.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvctl::client::ClientOptions;
use kvctl::server::AuthToken;
use serde_json::{json, Value};

use crate::support::{assert_one_line_error, free_port, kvctl, stderr_of, wait_until, Server, BIN};

/// Bounds every wait for something the server must do; never judges speed.
const DEADLINE: Duration = Duration::from_secs(20);

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    stream
}

/// Reads until the peer closes the connection (EOF or reset) or `deadline`
/// passes; true if it closed. Whatever arrived is appended to `got`.
fn closes_within(stream: &mut TcpStream, deadline: Duration, got: &mut Vec<u8>) -> bool {
    let end = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sends `request` and reads one response: the head, then a
/// Content-Length body. Returns the status, head and body.
fn exchange(stream: &mut TcpStream, request: &str) -> (u16, String, String) {
    stream.write_all(request.as_bytes()).unwrap();
    let end = Instant::now() + DEADLINE;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < end, "no full answer to {request:?}");
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..at]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= at + 4 + length {
                let body = String::from_utf8_lossy(&got[at + 4..at + 4 + length]).into_owned();
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, head, body);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed before answering {request:?}: {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading the answer to {request:?}: {e}"),
        }
    }
}

const GET_STATS: &str = "GET /stats HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn a_slow_request_head_is_cut_off_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--header-timeout", "1s"]);

    // Silent after connecting.
    let mut silent = connect(server.port);
    // One byte at a time, never finishing the head (the issue's slowloris).
    let mut trickle = connect(server.port);
    let writer = {
        let mut stream = trickle.try_clone().unwrap();
        std::thread::spawn(move || {
            let end = Instant::now() + DEADLINE;
            for byte in b"GET /stats HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                if Instant::now() > end || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut got = Vec::new();
    assert!(
        closes_within(&mut silent, DEADLINE, &mut got),
        "a silent connection stays open"
    );
    assert!(
        closes_within(&mut trickle, DEADLINE, &mut got),
        "a trickling connection stays open"
    );
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{got:?}");
    writer.join().unwrap();

    // A prompt client is unaffected.
    let mut prompt = connect(server.port);
    assert_eq!(exchange(&mut prompt, GET_STATS).0, 200);
}

#[test]
fn idle_keep_alive_connections_wait_the_idle_timeout_not_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let short_idle = Server::start(
        dir.path(),
        &["--idle-timeout", "1s", "--header-timeout", "1h"],
    );
    let mut stream = connect(short_idle.port);
    assert_eq!(exchange(&mut stream, GET_STATS).0, 200);
    let mut got = Vec::new();
    assert!(
        closes_within(&mut stream, DEADLINE, &mut got),
        "an idle keep-alive connection stays open past --idle-timeout"
    );
    assert!(got.is_empty(), "{got:?}");
    drop(short_idle);

    let dir = tempfile::tempdir().unwrap();
    let short_header = Server::start(
        dir.path(),
        &["--idle-timeout", "1h", "--header-timeout", "1s"],
    );
    let mut stream = connect(short_header.port);
    assert_eq!(exchange(&mut stream, GET_STATS).0, 200);
    // Only waiting can show that something does not happen: idle for
    // three header timeouts, the connection must still be open.
    let mut got = Vec::new();
    assert!(!closes_within(
        &mut stream,
        Duration::from_secs(3),
        &mut got
    ));
    assert_eq!(exchange(&mut stream, GET_STATS).0, 200);
}

#[test]
fn a_request_over_the_request_timeout_is_503_and_its_batch_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(
        dir.path(),
        &["--request-timeout", "300ms"],
        &[("KVCTL_TEST_SYNC_DELAY_MS", "2000")],
    );
    let keys: Vec<String> = (0..5).map(|i| format!("slow-{i}")).collect();
    let ops: Vec<Value> = keys
        .iter()
        .map(|k| json!({"op": "set", "key": k, "value": 7}))
        .collect();
    let body = json!({ "operations": ops }).to_string();
    let mut stream = connect(server.port);
    let (status, head, answer) = exchange(
        &mut stream,
        &format!(
            "POST /kv/batch HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 503, "{head}\n{answer}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let error: Value = serde_json::from_str(&answer).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("300ms"),
        "{answer}"
    );

    // The commit goes on; readers see none of the batch, then all of it.
    let client = server.client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let applied = wait_until(DEADLINE, || {
        // One listing is one consistent read, as a batch is one write.
        // A listing slowed past the short timeout by a busy machine says
        // nothing yet.
        let Ok(present) = rt.block_on(client.list("slow-")) else {
            return false;
        };
        assert!(
            present.is_empty() || present == keys,
            "half the batch is visible: {present:?}"
        );
        present == keys
    });
    assert!(applied, "the timed-out batch never finished");
}

#[test]
fn past_max_connections_new_ones_wait_and_the_open_ones_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--max-connections", "8", "--header-timeout", "5m"],
    );
    let mut existing = connect(server.port);
    assert_eq!(exchange(&mut existing, GET_STATS).0, 200);
    let idle: Vec<TcpStream> = (0..20).map(|_| connect(server.port)).collect();
    // Every slot is taken once the server has accepted seven of them.
    assert!(
        wait_until(DEADLINE, || server
            .stderr()
            .contains("limit (--max-connections)")),
        "{}",
        server.stderr()
    );
    for _ in 0..3 {
        assert_eq!(exchange(&mut existing, GET_STATS).0, 200);
    }
    drop(idle);
    drop(existing);
    let client = server.client();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert!(rt.block_on(client.stats()).is_ok());
    assert!(
        !server.stderr().contains("accept error"),
        "{}",
        server.stderr()
    );
}

/// `kvctl serve` under an open-file limit of `soft` (hard `hard`), and the
/// lines it logs; waits until it answers.
struct Limited {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Limited {
    fn start(dir: &Path, soft: u64, hard: u64) -> Limited {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let log = dir.join("stderr.log");
        let mut cmd = Command::new(BIN);
        cmd.args([
            "serve",
            "--port",
            &port.to_string(),
            "--header-timeout",
            "5m",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        // SAFETY: setrlimit is async-signal-safe and touches no memory of
        // the parent; the closure allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: soft as libc::rlim_t,
                    rlim_max: hard as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let limited = Limited { child, port, log };
        assert!(
            wait_until(DEADLINE, || limited.stderr().contains("serving on")),
            "{}",
            limited.stderr()
        );
        limited
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn more_idle_connections_than_the_process_may_open_lock_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = Limited::start(dir.path(), 100, 128);
    let log = server.stderr();
    assert!(
        log.contains("at most 64 connections (open-file limit 128)"),
        "the soft limit is raised to the hard one and the connection limit kept below it: {log}"
    );
    let mut existing = connect(server.port);
    assert_eq!(exchange(&mut existing, GET_STATS).0, 200);
    let idle: Vec<TcpStream> = (0..100).map(|_| connect(server.port)).collect();
    assert!(wait_until(DEADLINE, || server
        .stderr()
        .contains("limit (--max-connections)")));
    assert_eq!(exchange(&mut existing, GET_STATS).0, 200);
    drop(idle);
    let mut fresh = connect(server.port);
    assert_eq!(exchange(&mut fresh, GET_STATS).0, 200);
    assert!(
        !server.stderr().contains("Too many open files"),
        "{}",
        server.stderr()
    );
}

#[test]
fn the_start_up_line_names_both_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-connections", "100"]);
    let log = server.stderr();
    let line = log.lines().find(|l| l.contains("serving on")).unwrap();
    assert!(
        line.contains("at most 100 connections (open-file limit "),
        "{line}"
    );
}

fn token_file(dir: &Path, contents: &str) -> PathBuf {
    let path = dir.join("token");
    std::fs::write(&path, contents).unwrap();
    path
}

fn with_token(token: &str) -> ClientOptions {
    let dir = tempfile::tempdir().unwrap();
    ClientOptions {
        token: Some(AuthToken::from_file(&token_file(dir.path(), token)).unwrap()),
        cacert: None,
    }
}

#[test]
fn with_a_token_every_request_but_health_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(dir.path(), "s3cret-T0ken\n");
    let file = file.to_str().unwrap();
    let server = Server::start_secured(
        &dir.path().join("data"),
        &["--auth-token-file", file, "--log-level", "debug"],
        &[],
        false,
        with_token("s3cret-T0ken"),
    );
    let line = server.stderr();
    assert!(line.contains("bearer token required"), "{line}");

    let mut stream = connect(server.port);
    for request in [
        GET_STATS.to_owned(),
        "GET /stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\n\r\n".to_owned(),
        "GET /stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-T0ke\r\n\r\n".to_owned(),
        "PUT /kv/a HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n{\"value\":1}\n".to_owned(),
        "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n".to_owned(),
    ] {
        let (status, head, body) = exchange(&mut stream, &request);
        assert_eq!(status, 401, "{request}");
        assert!(head.contains("www-authenticate: Bearer"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["error"].as_str().unwrap().starts_with("unauthorized"),
            "{body}"
        );
    }
    let (status, _, _) = exchange(
        &mut stream,
        "GET /stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-T0ken\r\n\r\n",
    );
    assert_eq!(status, 200);
    // /health needs no token.
    let (status, _, body) = exchange(&mut stream, "GET /health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));

    // The CLI: from --token-file, from the environment, and without.
    let url = server.url();
    let out = kvctl(
        &["put", "k", "v", "--server", &url, "--token-file", file],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = kvctl(
        &["get", "k", "--server", &url],
        &[("KVCTL_AUTH_TOKEN", "s3cret-T0ken")],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    let out = kvctl(&["get", "k", "--server", &url], &[], None);
    assert_eq!(out.status.code(), Some(4));
    assert_one_line_error(&out, "401");
    let out = kvctl(
        &[
            "bench", "--server", &url, "-w", "put", "-n", "20", "-c", "2", "-o", "json",
        ],
        &[("KVCTL_AUTH_TOKEN", "s3cret-T0ken")],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 20);
    assert_eq!(report["errors"], json!({}), "{report}");

    // Debug logging shows requests, never the token.
    assert!(
        server.stderr().contains("/stats"),
        "requests are logged at debug level"
    );
    assert!(!server.stderr().contains("s3cret"), "{}", server.stderr());
}

#[test]
fn a_bad_token_file_stops_the_server_before_it_opens_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let serve = |file: &Path| {
        kvctl(
            &[
                "serve",
                "--port",
                &port,
                "--data-dir",
                data.to_str().unwrap(),
                "--auth-token-file",
                file.to_str().unwrap(),
            ],
            &[],
            None,
        )
    };
    let out = serve(&token_file(dir.path(), ""));
    assert_one_line_error(&out, "is empty");
    let out = serve(&token_file(dir.path(), "\n"));
    assert_one_line_error(&out, "is empty");
    let out = serve(&dir.path().join("missing"));
    assert_one_line_error(&out, "cannot read the token file");
    assert!(!data.exists(), "the data directory was opened");
    std::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap()))
        .expect("the port stays free");
}

/// A private CA and a server certificate it signed for 127.0.0.1 and
/// localhost, written as PEM files into `dir`: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kvctl test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[test]
fn with_a_certificate_the_port_speaks_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let server = Server::start_secured(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
        true,
        ClientOptions {
            token: None,
            cacert: Some(ca.clone()),
        },
    );
    assert!(
        server.stderr().contains("serving on https://"),
        "{}",
        server.stderr()
    );
    let url = server.url();
    let ca = ca.to_str().unwrap();
    let out = kvctl(
        &["put", "k", "secure", "--server", &url, "--cacert", ca],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let out = kvctl(
        &["get", "k", "--server", &url],
        &[("KVCTL_CACERT", ca)],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secure\n");
    let out = kvctl(
        &[
            "bench", "--server", &url, "--cacert", ca, "-w", "get", "-n", "20", "-c", "2", "-o",
            "json",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["requests"], 20);

    // Without the private CA the certificate is not trusted.
    let out = kvctl(&["get", "k", "--server", &url], &[], None);
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert_one_line_error(&out, "certificate");
    // A CA file that is not one is a usage error.
    let out = kvctl(
        &["get", "k", "--server", &url, "--cacert", "/nonexistent.pem"],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out, "/nonexistent.pem");

    // Plain HTTP gets no HTTP answer.
    let mut plain = connect(server.port);
    plain.write_all(GET_STATS.as_bytes()).unwrap();
    let mut got = Vec::new();
    assert!(closes_within(&mut plain, DEADLINE, &mut got));
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_missing_or_mismatched_certificate_or_key_is_one_line_and_no_port() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_key) = certificates(other.path());
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let serve = |cert: &Path, key: &Path| {
        kvctl(
            &[
                "serve",
                "--port",
                &port,
                "--data-dir",
                data.to_str().unwrap(),
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
            &[],
            None,
        )
    };
    assert_one_line_error(&serve(&cert, &other_key), "cannot use the TLS certificate");
    assert_one_line_error(&serve(&dir.path().join("none.pem"), &key), "none.pem");
    assert_one_line_error(&serve(&cert, &dir.path().join("none.pem")), "none.pem");
    assert_one_line_error(&serve(&key, &key), "no PEM certificate");
    assert_one_line_error(&serve(&cert, &cert), "key");
    assert!(!data.exists(), "the data directory was opened");
    let out = kvctl(&["serve", "--tls-cert", cert.to_str().unwrap()], &[], None);
    assert_eq!(out.status.code(), Some(2), "--tls-cert needs --tls-key");
}
