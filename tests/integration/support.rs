//! Running the real `kvctl` binary: servers on free ports with temp dirs.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use kvctl::client::{Client, ClientOptions};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kvctl");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A `kvctl serve` process.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    extra: Vec<String>,
    envs: Vec<(String, String)>,
    log_dir: tempfile::TempDir,
    starts: u32,
    https: bool,
    client_options: ClientOptions,
}

impl Server {
    /// Starts a server on `data_dir` and waits until it answers.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra, &[])
    }

    /// Starts a server with extra environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::start_secured(data_dir, extra, envs, false, ClientOptions::default())
    }

    /// Starts a server that speaks HTTPS if `https`, and that its clients
    /// (the readiness check included) reach with `client_options`.
    pub fn start_secured(
        data_dir: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
        https: bool,
        client_options: ClientOptions,
    ) -> Server {
        let mut server = Server {
            child: None,
            port: free_port(),
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_dir: tempfile::tempdir().unwrap(),
            starts: 0,
            https,
            client_options,
        };
        server.launch();
        server
    }

    fn stderr_path(&self) -> PathBuf {
        self.log_dir
            .path()
            .join(format!("stderr-{}.log", self.starts))
    }

    fn launch(&mut self) {
        self.starts += 1;
        let stderr = File::create(self.stderr_path()).unwrap();
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn kvctl serve");
        self.child = Some(child);
        let client = self.client();
        let answers = move || {
            // Its own thread and runtime, so async tests can call this too.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(client.stats())
                    .is_ok()
            })
            .join()
            .unwrap()
        };
        let ready = wait_until(Duration::from_secs(30), || {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "server exited with {status} before answering:\n{}",
                    self.stderr()
                );
            }
            answers.clone()()
        });
        assert!(ready, "server did not answer in time:\n{}", self.stderr());
    }

    /// A client for this server.
    pub fn client(&self) -> Client {
        Client::with_options(&self.url(), &self.client_options).unwrap()
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the current run wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.launch();
    }

    /// Starts the server again with these environment variables instead.
    pub fn restart_with_env(&mut self, envs: &[(&str, &str)]) {
        self.envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.restart();
    }

    /// Waits (for at most `timeout`) for the process to end by itself.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        wait_until(timeout, || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        if status.is_some() {
            self.child = None;
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends a signal to a process.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) on a child's pid has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
}

/// Runs kvctl to completion with `args` and optional stdin.
pub fn kvctl(args: &[&str], envs: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PORT")
        .env_remove("DATA_DIR")
        .env_remove("KVCTL_SERVER")
        .env_remove("RUST_LOG")
        .env_remove("KVCTL_AUTH_TOKEN")
        .env_remove("KVCTL_CACERT")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn kvctl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Text of a process's stderr.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failed run said one clean line and no panic.
pub fn assert_one_line_error(out: &Output, must_contain: &str) {
    let err = stderr_of(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("kvctl: "),
        "last line should be the error: {err}"
    );
    assert!(
        last.contains(must_contain),
        "expected {must_contain:?} in {last:?}"
    );
}

/// A count from the environment (case and iteration counts of the long
/// runs), or `default` when it is unset.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// Opens the engine on a directory this process had open a moment ago.
///
/// The other tests in this binary start `kvctl` processes all the time, and
/// a child between its fork and its exec holds a copy of every descriptor,
/// with the log's lock, for a moment after the engine closed it (measured:
/// 9% of reopens fail when a thread runs `/bin/true` in a loop). Only an
/// engine in a test process that spawns children sees this, so the wait is
/// here, bounded, and not in the engine.
pub fn reopen_engine(
    dir: &Path,
    policy: kvctl::wal::FsyncPolicy,
) -> Result<(kvctl::local::Engine, kvctl::local::OpenReport), kvctl::wal::WalError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match kvctl::local::Engine::open(dir, policy) {
            Err(kvctl::wal::WalError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            opened => return opened,
        }
    }
}
