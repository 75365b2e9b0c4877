"""Shared helpers for the black-box `kvctl serve` test suite.

Everything in here talks to the server from the outside only: HTTP over
localhost, the files in the data directory, signals and exit codes.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests

MISSING = object()

HTTP_TIMEOUT = 10.0
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

U64_MAX = 18446744073709551615
I64_MIN = -9223372036854775808
I64_MAX = 9223372036854775807


# --------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


def kv_path(key: str) -> str:
    """Path for a key, every reserved character percent-encoded."""
    return "/kv/" + quote(key, safe="")


def same_json(a, b) -> bool:
    """Type-strict JSON equality (True != 1, 1 != 1.0), member order ignored."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def ordered(obj):
    """A JSON value with every object turned into a list of (key, value)
    tuples, so that member order matters when comparing."""
    if isinstance(obj, dict):
        return [(k, ordered(v)) for k, v in obj.items()]
    if isinstance(obj, list):
        return [ordered(x) for x in obj]
    return obj


def ordered_loads(text):
    """json.loads where every object becomes a list of (key, value) tuples."""
    return json.loads(text, object_pairs_hook=lambda pairs: [(k, v) for k, v in pairs])


def is_json_response(r) -> bool:
    return r.headers.get("Content-Type", "").lower().startswith("application/json")


def describe(r) -> str:
    return (f"{r.request.method} {r.request.url} -> {r.status_code} "
            f"Content-Type={r.headers.get('Content-Type')!r} body={r.text[:600]!r}")


def assert_json(r, status: int, expected=MISSING):
    """Status, JSON content type and (optionally) the exact, type-strict body."""
    assert r.status_code == status, f"expected {status}: {describe(r)}"
    assert is_json_response(r), f"expected an application/json response: {describe(r)}"
    try:
        body = r.json()
    except ValueError as e:  # pragma: no cover - diagnostic
        raise AssertionError(f"body is not JSON ({e}): {describe(r)}")
    if expected is not MISSING:
        assert same_json(body, expected), f"body {body!r} != expected {expected!r}; {describe(r)}"
    return body


def assert_error(r, status, contains: str | None = None):
    """An error response: given status (int or tuple of ints), JSON content type,
    body exactly {"error": "<non-empty string>"}."""
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    assert r.status_code in statuses, f"expected one of {statuses}: {describe(r)}"
    assert is_json_response(r), f"error responses must be application/json: {describe(r)}"
    body = r.json()
    assert isinstance(body, dict) and list(body.keys()) == ["error"], \
        f"error body must be exactly {{'error': ...}}: {describe(r)}"
    assert isinstance(body["error"], str) and body["error"].strip(), describe(r)
    if contains is not None:
        assert contains in body["error"], f"error message should contain {contains!r}: {describe(r)}"
    return body["error"]


NOT_FOUND = {"error": "key not found"}
SUCCESS = {"success": True}


def compact_len(value) -> int:
    """Contract §5 size of one value."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def read_wal_records(path: Path):
    """Parse every non-blank line of a WAL file."""
    out = []
    data = Path(path).read_bytes().decode("utf-8")
    for line in data.split("\n"):
        if line.strip():
            out.append(json.loads(line))
    return out


def wal_record_line(rec: dict, compact: bool = True) -> str:
    if compact:
        return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(rec, ensure_ascii=False)


def raw_http(port: int, method: str, path: str, body: bytes | None = None,
             headers: dict | None = None, host: str = "127.0.0.1", timeout: float = HTTP_TIMEOUT):
    """Send a request with the path exactly as given (no client-side
    re-quoting). Returns (status, headers, body_bytes)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None and "Content-Length" not in hdrs:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def assert_raw_error(result, status):
    st, hdrs, data = result
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    assert st in statuses, f"expected {statuses}, got {st} {data[:300]!r}"
    assert hdrs.get("content-type", "").lower().startswith("application/json"), \
        f"error must be application/json, got {hdrs.get('content-type')!r} {data[:300]!r}"
    body = json.loads(data)
    assert isinstance(body, dict) and list(body) == ["error"] and isinstance(body["error"], str) \
        and body["error"].strip(), f"bad error body {data[:300]!r}"
    return body["error"]


# --------------------------------------------------------------------------
# process registry: every process we spawn is killed at teardown / exit
# --------------------------------------------------------------------------

_ALL_PROCS: list[subprocess.Popen] = []
_ALL_PROCS_LOCK = threading.Lock()


def register_proc(p: subprocess.Popen):
    with _ALL_PROCS_LOCK:
        _ALL_PROCS.append(p)


def kill_all_procs():
    with _ALL_PROCS_LOCK:
        procs = list(_ALL_PROCS)
        _ALL_PROCS.clear()
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


# --------------------------------------------------------------------------
# the server under test
# --------------------------------------------------------------------------

class Server:
    """One `kvctl serve` instance bound to a port and a data directory."""

    def __init__(self, binary: str, port: int, data_dir, workdir, name: str = "kvctl"):
        self.binary = str(binary)
        self.port = int(port)
        self.data_dir = Path(data_dir)
        self.workdir = Path(workdir)
        self.name = name
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.log_paths: list[Path] = []
        self.session = requests.Session()
        self._starts = 0
        self._last_extra_args: tuple = ()
        self._last_env: dict | None = None
        self._last_use_flags = True
        self._last_cwd = None
        self._stderr_thread: threading.Thread | None = None

    # ---- paths -----------------------------------------------------------
    @property
    def wal_path(self) -> Path:
        return self.data_dir / "wal.log"

    def url(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    # ---- process control -------------------------------------------------
    def command(self, extra_args=(), use_flags: bool = True):
        cmd = [self.binary, "serve"]
        if use_flags:
            cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        cmd += [str(a) for a in extra_args]
        return cmd

    def _env(self, env):
        full = dict(os.environ)
        # never let the outer environment configure the server behind our back
        for k in ("PORT", "DATA_DIR", "KVCTL_HOST", "KVCTL_FSYNC", "KVCTL_LOG_LEVEL"):
            full.pop(k, None)
        if env:
            full.update({k: str(v) for k, v in env.items()})
        return full

    def spawn(self, extra_args=(), env=None, use_flags: bool = True,
              preexec_fn=None, stderr_via_pipe: bool = False, cwd=None) -> subprocess.Popen:
        """Start the process without waiting for readiness."""
        if self.proc is not None and self.proc.poll() is None:
            raise AssertionError(f"{self.name}: already running (pid {self.proc.pid})")
        self._starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}-{self.port}-run{self._starts}.stderr.log"
        self.log_paths.append(self.log_path)
        stdout_path = self.workdir / f"{self.name}-{self.port}-run{self._starts}.stdout.log"
        self._last_extra_args = tuple(extra_args)
        self._last_env = env
        self._last_use_flags = use_flags
        self._last_cwd = cwd
        with open(stdout_path, "wb") as out:
            if stderr_via_pipe:
                # a pipe is not subject to RLIMIT_FSIZE; copy it to the log file
                proc = subprocess.Popen(self.command(extra_args, use_flags), stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.PIPE, env=self._env(env),
                                        preexec_fn=preexec_fn, cwd=cwd)
                log_path = self.log_path

                def pump(src=proc.stderr, dst=log_path):
                    with open(dst, "ab", buffering=0) as f:
                        for chunk in iter(lambda: src.read1(65536), b""):
                            f.write(chunk)
                self._stderr_thread = threading.Thread(target=pump, daemon=True)
                self._stderr_thread.start()
            else:
                with open(self.log_path, "wb") as err:
                    proc = subprocess.Popen(self.command(extra_args, use_flags), stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=err, env=self._env(env),
                                            preexec_fn=preexec_fn, cwd=cwd)
        register_proc(proc)
        self.proc = proc
        # connections pooled against a previous incarnation are useless now
        self.session.close()
        self.session = requests.Session()
        return proc

    def start(self, extra_args=(), env=None, use_flags: bool = True, timeout: float = READY_TIMEOUT,
              **spawn_kw):
        if port_is_open(self.port, self.host):
            raise AssertionError(
                f"port {self.port} is already in use by some other process; cannot start {self.name}")
        self.spawn(extra_args, env, use_flags, **spawn_kw)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last_err = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"{self.name} exited with code {rc} before answering GET /stats\n"
                    f"command: {self.proc.args}\n--- stderr ---\n{self.stderr()}")
            try:
                r = requests.get(self.url("/stats"), timeout=1.0)
                if r.status_code == 200:
                    assert self.proc.poll() is None
                    return
                last_err = f"status {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last_err = repr(e)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name} did not answer GET /stats within {timeout}s (last: {last_err})\n"
                    f"--- stderr ---\n{self.stderr()}")
            time.sleep(0.02)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.name} did not exit within {timeout}s\n--- stderr ---\n{self.stderr()}")
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=5)
            self._stderr_thread = None
        return rc

    def stop(self, timeout: float = STOP_TIMEOUT, sig=signal.SIGTERM) -> int:
        """Graceful stop; the contract requires exit status 0."""
        assert self.proc is not None, "server was never started"
        self.session.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait_exit(timeout)
        assert rc == 0, (f"{self.name} should exit 0 after {signal.Signals(sig).name}, got {rc}\n"
                         f"--- stderr ---\n{self.stderr()}")
        return rc

    def kill(self):
        """kill -9."""
        self.session.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)
            if self._stderr_thread is not None:
                self._stderr_thread.join(timeout=5)
                self._stderr_thread = None

    def restart(self, extra_args=None, env=None):
        """SIGTERM, then start again (same arguments unless given)."""
        self.stop()
        return self.start(self._last_extra_args if extra_args is None else extra_args,
                          self._last_env if env is None else env, self._last_use_flags,
                          cwd=self._last_cwd)

    def crash_restart(self, extra_args=None, env=None):
        """kill -9, then start again."""
        self.kill()
        return self.start(self._last_extra_args if extra_args is None else extra_args,
                          self._last_env if env is None else env, self._last_use_flags,
                          cwd=self._last_cwd)

    def run_to_exit(self, extra_args=(), env=None, use_flags: bool = True, timeout: float = 15.0, **spawn_kw):
        """Start a process that is expected to exit on its own (e.g. refuse to
        start). Returns (returncode, stderr_text)."""
        self.spawn(extra_args, env, use_flags, **spawn_kw)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"{self.name} was expected to exit by itself but was still running after {timeout}s\n"
                f"--- stderr ---\n{self.stderr()}")
        return rc, self.stderr()

    def cleanup(self):
        try:
            self.session.close()
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except Exception:
                pass

    # ---- logs -------------------------------------------------------------
    def stderr(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def all_stderr(self, limit: int = 20000) -> str:
        parts = []
        for p in self.log_paths:
            if p.exists():
                txt = p.read_bytes().decode("utf-8", "replace")
                if len(txt) > limit:
                    txt = "...[truncated]...\n" + txt[-limit:]
                parts.append(f"=== {p.name} ===\n{txt}")
        return "\n".join(parts)

    # ---- HTTP helpers -------------------------------------------------------
    def request(self, method: str, path: str, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)

    def put_kv(self, key: str, value=MISSING, ttl=MISSING, **kw):
        body = {}
        if value is not MISSING:
            body["value"] = value
        if ttl is not MISSING:
            body["ttl"] = ttl
        return self.put(kv_path(key), data=json.dumps(body), headers={"Content-Type": "application/json"}, **kw)

    def get_kv(self, key: str, **kw):
        return self.get(kv_path(key), **kw)

    def delete_kv(self, key: str, **kw):
        return self.delete(kv_path(key), **kw)

    def batch(self, operations, **kw):
        return self.post("/kv/batch", json={"operations": operations}, **kw)

    def stats(self):
        r = self.get("/stats")
        body = assert_json(r, 200)
        return body

    def keys(self, prefix=None):
        params = None if prefix is None else {"prefix": prefix}
        r = self.get("/kv", params=params)
        body = assert_json(r, 200)
        assert list(body.keys()) == ["keys"], describe(r)
        return body["keys"]

    # convenience assertions
    def set_ok(self, key, value, ttl=MISSING):
        assert_json(self.put_kv(key, value, ttl), 200, SUCCESS)

    def value_of(self, key):
        """The stored value, or MISSING when GET says 404."""
        r = self.get_kv(key)
        if r.status_code == 404:
            assert_json(r, 404, NOT_FOUND)
            return MISSING
        body = assert_json(r, 200)
        assert list(body.keys()) == ["value"], describe(r)
        return body["value"]

    def assert_value(self, key, value):
        assert_json(self.get_kv(key), 200, {"value": value})

    def assert_absent(self, key):
        assert_json(self.get_kv(key), 404, NOT_FOUND)

    def wal_size(self) -> int:
        return self.wal_path.stat().st_size if self.wal_path.exists() else 0

    def wal_records(self):
        return read_wal_records(self.wal_path)
