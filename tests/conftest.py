"""pytest configuration for the black-box `kvctl serve` suite.

Environment:
  KVSTORE_IMPL  implementation under test; only "rust" is supported (default "rust")
  KVSTORE_PORT  port of the per-test server (default 18083)
  KVCTL_BIN     path of a prebuilt kvctl binary; otherwise `cargo build --release`
                is run once per session at the repository root.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kvhelpers import Server, free_port, kill_all_procs  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 18083
SUPPORTED_IMPLS = ("rust",)

atexit.register(kill_all_procs)


def _impl() -> str:
    return os.environ.get("KVSTORE_IMPL", "rust").strip() or "rust"


def _port() -> int:
    raw = os.environ.get("KVSTORE_PORT", str(DEFAULT_PORT))
    try:
        port = int(raw)
    except ValueError:
        pytest.exit(f"KVSTORE_PORT must be an integer port number, got {raw!r}", returncode=4)
    if not 1 <= port <= 65535:
        pytest.exit(f"KVSTORE_PORT out of range: {port}", returncode=4)
    return port


def pytest_configure(config):
    impl = _impl()
    if impl not in SUPPORTED_IMPLS:
        pytest.exit(
            f"KVSTORE_IMPL={impl!r} is not supported by this suite: only the Rust server "
            f"(`kvctl serve`) exists in this repository. Run with KVSTORE_IMPL=rust.",
            returncode=4,
        )
    _port()


def pytest_report_header(config):
    return [f"kvctl suite: KVSTORE_IMPL={_impl()} KVSTORE_PORT={os.environ.get('KVSTORE_PORT', DEFAULT_PORT)} "
            f"KVCTL_BIN={os.environ.get('KVCTL_BIN', '<cargo build --release>')}"]


def pytest_sessionfinish(session, exitstatus):
    kill_all_procs()


@pytest.fixture(scope="session")
def kvctl_bin() -> str:
    """Path of the kvctl binary (KVCTL_BIN, or built once with cargo)."""
    env_bin = os.environ.get("KVCTL_BIN")
    if env_bin:
        p = Path(env_bin)
        if not p.is_file() or not os.access(p, os.X_OK):
            pytest.exit(f"KVCTL_BIN={env_bin!r} is not an executable file", returncode=4)
        return str(p.resolve())
    try:
        res = subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=1800)
    except FileNotFoundError:
        pytest.exit("cargo not found: install Rust or set KVCTL_BIN to a built kvctl binary", returncode=4)
    if res.returncode != 0:
        pytest.exit(f"`cargo build --release` failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}",
                    returncode=4)
    binary = REPO_ROOT / "target" / "release" / "kvctl"
    if not binary.is_file():
        pytest.exit(f"cargo build succeeded but {binary} does not exist", returncode=4)
    return str(binary)


@pytest.fixture(scope="session")
def kv_port() -> int:
    return _port()


@pytest.fixture
def server_factory(request, kvctl_bin, kv_port, tmp_path):
    """Make extra (not yet started) servers.

    server_factory(port=None, data_dir=None, name=...) -> Server. The first call
    without a port gets KVSTORE_PORT; later calls without a port get a free one.
    """
    servers: list[Server] = []
    request.node._kv_servers = servers
    used_default = {"v": False}

    def make(port=None, data_dir=None, name=None, start=False, extra_args=(), env=None):
        if port is None:
            if not used_default["v"]:
                port = kv_port
                used_default["v"] = True
            else:
                port = free_port()
        idx = len(servers)
        if data_dir is None:
            data_dir = tmp_path / (f"data{idx}" if idx else "data")
        s = Server(kvctl_bin, port, data_dir, tmp_path / "logs", name=name or f"kvctl{idx}")
        servers.append(s)
        if start:
            s.start(extra_args, env)
        return s

    yield make
    for s in servers:
        s.cleanup()


@pytest.fixture
def server(server_factory):
    """A running server on KVSTORE_PORT with a fresh (initially non-existent)
    data directory under the test's temporary directory."""
    return server_factory(start=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in getattr(item, "_kv_servers", []):
            text = s.all_stderr()
            if text:
                rep.sections.append((f"kvctl stderr [{s.name} port {s.port} data {s.data_dir}]", text))
