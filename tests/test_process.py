"""Process behaviour: configuration, signals, locking, startup failures, WAL
write failures. Contract §8."""

import json
import resource
import signal
import socket
import subprocess
import time

import pytest
import requests

from kvhelpers import (SUCCESS, assert_error, assert_json, free_port, kv_path, port_is_open,
                       read_wal_records)


def no_panic(err: str):
    assert "panicked" not in err, f"the server panicked:\n{err}"
    assert "stack backtrace" not in err.lower(), f"backtrace on stderr:\n{err}"
    assert "RUST_BACKTRACE" not in err, f"panic note on stderr:\n{err}"


def nonempty_lines(text: str):
    return [l for l in text.splitlines() if l.strip()]


# ------------------------------------------------------------------ signals

def test_sigterm_exits_zero_and_keeps_data(server):
    server.set_ok("k", {"v": 1})
    assert server.stop(sig=signal.SIGTERM) == 0
    assert not port_is_open(server.port)
    server.start()
    server.assert_value("k", {"v": 1})


def test_sigint_exits_zero_and_keeps_data(server):
    server.set_ok("k", [1, 2, 3])
    assert server.stop(sig=signal.SIGINT) == 0
    server.start()
    server.assert_value("k", [1, 2, 3])


def test_sigterm_with_fsync_never_flushes_wal(server_factory):
    s = server_factory()
    s.start(["--fsync", "never"])
    for i in range(50):
        s.set_ok(f"k{i}", "v" * i)
    s.stop()
    assert len(read_wal_records(s.wal_path)) == 50
    s.start()
    assert len(s.keys()) == 50


def _open_inflight_put(server, key, body):
    """Send the head of a PUT and wait until the server is reading its body."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    head = (f"PUT {kv_path(key)} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Expect: 100-continue\r\n\r\n").encode()
    sock.sendall(head)
    sock.settimeout(2.0)
    buf = b""
    try:
        buf = sock.recv(4096)  # "HTTP/1.1 100 Continue" once the handler reads the body
    except socket.timeout:
        pass
    if buf:
        assert buf.startswith(b"HTTP/1.1 100"), buf
    sock.settimeout(10)
    return sock, buf


def _read_response(sock, buf=b""):
    while True:
        # drop any interim 1xx responses
        while buf.startswith(b"HTTP/1.1 1") and b"\r\n\r\n" in buf:
            buf = buf.split(b"\r\n\r\n", 1)[1]
        if b"\r\n\r\n" in buf and not buf.startswith(b"HTTP/1.1 1"):
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
            length = int(headers.get("content-length", "0"))
            while len(rest) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
            return status, headers, rest[:length]
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response; got {buf!r}")
        buf += chunk


def test_sigterm_finishes_request_in_flight(server):
    body = json.dumps({"value": "in flight"}).encode()
    sock, buf = _open_inflight_put(server, "inflight", body)
    try:
        server.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            server.proc.wait(timeout=0.5)   # must wait for our unfinished request
        sock.sendall(body)
        status, headers, data = _read_response(sock, buf)
    finally:
        sock.close()
    assert status == 200 and json.loads(data) == SUCCESS, (status, data)
    assert headers.get("content-type", "").startswith("application/json")
    assert server.wait_exit() == 0, server.stderr()
    server.start()
    server.assert_value("inflight", "in flight")


def test_sigterm_stops_accepting_new_connections(server):
    body = b'{"value": 1}'
    sock, buf = _open_inflight_put(server, "held", body)
    try:
        server.send_signal(signal.SIGTERM)
        # give the server a moment to react, then a brand-new request must not be served
        try:
            server.proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
        with pytest.raises(requests.RequestException):
            requests.get(server.url("/stats"), timeout=1.0)
        sock.sendall(body)
        _read_response(sock, buf)
    finally:
        sock.close()
    assert server.wait_exit() == 0


def test_concurrent_writes_during_sigterm_all_acknowledged_ones_persist(server):
    from concurrent.futures import ThreadPoolExecutor
    import threading

    stop = threading.Event()
    started = threading.Event()

    def writer(t):
        sess = requests.Session()
        acked = []
        i = 0
        while not stop.is_set():
            try:
                r = sess.put(server.url(kv_path(f"s{t}-{i}")), data=json.dumps({"value": i}), timeout=5)
            except requests.RequestException:
                break
            if r.status_code != 200:
                assert r.status_code < 500 or r.status_code == 503, r.text
                break
            acked.append(f"s{t}-{i}")
            if len(acked) >= 5:
                started.set()
            i += 1
        sess.close()
        return acked

    with ThreadPoolExecutor(6) as ex:
        futs = [ex.submit(writer, t) for t in range(6)]
        assert started.wait(10)
        server.send_signal(signal.SIGTERM)
        rc = server.wait_exit()
        stop.set()
        acked = [k for f in futs for k in f.result()]
    assert rc == 0
    server.start()
    keys = set(server.keys())
    missing = [k for k in acked if k not in keys]
    assert not missing, f"{len(missing)} acknowledged writes lost across SIGTERM: {missing[:5]}"


# ------------------------------------------------------------------ locking

def test_second_server_on_same_data_dir_is_refused(server, server_factory):
    server.set_ok("k", "v")
    wal_before = server.wal_path.read_bytes()
    other = server_factory(port=free_port(), data_dir=server.data_dir, name="intruder")
    rc, err = other.run_to_exit()
    assert rc != 0, f"a second server on the same data directory must exit non-zero:\n{err}"
    assert "in use" in err.lower(), f"the message should say the directory is in use:\n{err}"
    no_panic(err)
    assert not port_is_open(other.port)
    # the first one is unaffected
    server.assert_value("k", "v")
    server.set_ok("k2", "v2")
    assert server.wal_path.read_bytes().startswith(wal_before)


def test_lock_is_released_after_kill_9(server, server_factory):
    server.set_ok("k", 1)
    server.kill()
    other = server_factory(port=free_port(), data_dir=server.data_dir, name="successor")
    other.start()
    other.assert_value("k", 1)


def test_lock_is_released_after_sigterm(server, server_factory):
    server.set_ok("k", 1)
    server.stop()
    other = server_factory(port=free_port(), data_dir=server.data_dir, name="successor")
    other.start()
    other.assert_value("k", 1)


# ------------------------------------------------------------------ startup failures

def _taken_port():
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    return blocker, blocker.getsockname()[1]


def test_taken_port_exits_nonzero_without_panic(server_factory):
    blocker, port = _taken_port()
    try:
        s = server_factory(port=port)
        rc, err = s.run_to_exit()
    finally:
        blocker.close()
    assert rc != 0
    no_panic(err)
    assert err.strip(), "expected an error message on stderr"
    low = err.lower()
    assert str(port) in err or "in use" in low or "address" in low, err


def test_taken_port_message_is_one_line(server_factory):
    blocker, port = _taken_port()
    try:
        s = server_factory(port=port)
        rc, err = s.run_to_exit(["--log-level", "error"])
    finally:
        blocker.close()
    assert rc != 0
    no_panic(err)
    assert len(nonempty_lines(err)) == 1, f"expected a one-line message, got:\n{err}"


@pytest.mark.parametrize("args,needle", [
    (["--port", "not-a-port"], "port"),
    (["--port", "70000"], "port"),
    (["--fsync", "sometimes"], "fsync"),
    (["--frobnicate"], "frobnicate"),
    (["--max-body-bytes", "lots"], "max-body-bytes"),
])
def test_malformed_flags_exit_nonzero_without_panic(server_factory, args, needle):
    s = server_factory(port=free_port())
    rc, err = s.run_to_exit(args)
    assert rc != 0
    no_panic(err)
    assert needle in err, f"the message should mention {needle!r}:\n{err}"
    assert len(nonempty_lines(err)) == 1, f"expected a one-line message, got:\n{err}"
    assert not s.data_dir.joinpath("wal.log").exists() or s.data_dir.joinpath("wal.log").stat().st_size == 0


def test_uncreatable_data_dir_exits_nonzero_with_one_line(server_factory, tmp_path):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")
    s = server_factory(port=free_port(), data_dir=blocker / "data")
    rc, err = s.run_to_exit(["--log-level", "error"])
    assert rc != 0
    no_panic(err)
    assert len(nonempty_lines(err)) == 1, f"expected a one-line message, got:\n{err}"
    assert not port_is_open(s.port)


def test_unwritable_wal_path_exits_nonzero(server_factory):
    s = server_factory(port=free_port())
    s.wal_path.mkdir(parents=True)          # wal.log is a directory: cannot be opened for append
    rc, err = s.run_to_exit()
    assert rc != 0
    no_panic(err)
    assert err.strip()


# ------------------------------------------------------------------ configuration

def test_env_port_and_data_dir(server_factory):
    s = server_factory(port=free_port())
    s.start(env={"PORT": s.port, "DATA_DIR": s.data_dir}, use_flags=False)
    s.set_ok("from-env", 1)
    assert s.wal_path.is_file()
    assert any(r.get("key") == "from-env" for r in read_wal_records(s.wal_path))


def test_flags_override_env(server_factory, tmp_path):
    s = server_factory(port=free_port())
    env_port = free_port()
    env_dir = tmp_path / "env-data-dir"
    s.start(env={"PORT": env_port, "DATA_DIR": env_dir})      # flags --port/--data-dir also given
    s.set_ok("k", 1)
    assert s.wal_path.is_file()
    assert not (env_dir / "wal.log").exists()
    assert not port_is_open(env_port)


def test_default_data_dir_is_dot_data(server_factory, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    s = server_factory(port=free_port(), data_dir=cwd / "data")
    s.start(env={"PORT": s.port}, use_flags=False, cwd=cwd)
    s.set_ok("k", "v")
    assert (cwd / "data" / "wal.log").is_file()
    s.restart()
    s.assert_value("k", "v")


def test_listens_on_loopback_only_by_default(server):
    assert port_is_open(server.port, "127.0.0.1")
    assert not port_is_open(server.port, "127.0.0.2"), "default bind must be 127.0.0.1, not all interfaces"


def test_host_flag_binds_elsewhere(server_factory):
    s = server_factory(port=free_port())
    s.start(["--host", "0.0.0.0"])
    assert port_is_open(s.port, "127.0.0.2")
    r = requests.get(f"http://127.0.0.2:{s.port}/stats", timeout=5)
    assert_json(r, 200, {"keys": 0, "size_bytes": 0})


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug", "trace"])
def test_log_level_flag(server_factory, level):
    s = server_factory()
    s.start(["--log-level", level])
    s.set_ok("k", 1)
    s.assert_value("k", 1)
    s.stop()


# ------------------------------------------------------------------ WAL write failures

def test_wal_write_failure_is_5xx_and_recovers(server_factory):
    """Make the WAL unwritable past a few KB (RLIMIT_FSIZE with SIGXFSZ ignored,
    so writes fail with EFBIG like a full disk), then lift the limit."""
    limit = 3000

    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    s = server_factory()
    s.start(preexec_fn=preexec, stderr_via_pipe=True)
    acked = {}
    failed_key = None
    for i in range(200):
        key = f"fill{i:03d}"
        value = {"i": i, "pad": "p" * 60}
        r = s.put_kv(key, value)
        if r.status_code == 200:
            acked[key] = value
            continue
        assert 500 <= r.status_code < 600, f"expected a 5xx when the WAL cannot be written, got {r.status_code}"
        assert_error(r, r.status_code)
        failed_key = key
        break
    assert failed_key is not None, "writes never failed although the WAL could not grow"
    assert acked, "some writes should have fit under the limit"
    # the failed write is not applied; reads keep working
    s.assert_absent(failed_key)
    for k, v in list(acked.items())[:5]:
        s.assert_value(k, v)
    assert s.stats()["keys"] == len(acked)
    assert sorted(s.keys()) == sorted(acked)
    # a batch also fails cleanly while the disk is "full"
    r = s.batch([{"op": "set", "key": "batch-during-failure", "value": "x" * 100}])
    assert 500 <= r.status_code < 600
    assert_error(r, r.status_code)
    s.assert_absent("batch-during-failure")

    # the "disk" recovers
    resource.prlimit(s.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    deadline = time.monotonic() + 5
    while True:
        r = s.put_kv("after-recovery", "ok")
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, f"writes did not work again after the disk recovered: {r.text}"
        time.sleep(0.05)
    s.assert_value("after-recovery", "ok")

    # everything acknowledged survives a restart; nothing that failed does
    s.stop()
    s.start()
    assert sorted(s.keys()) == sorted(list(acked) + ["after-recovery"])
    s.assert_absent(failed_key)
    s.assert_absent("batch-during-failure")
    for k, v in acked.items():
        s.assert_value(k, v)
