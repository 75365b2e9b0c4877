"""Runs the side-by-side comparison for bench/compare.sh (which builds first).

Every HTTP server is driven by the same generator (`kvctl bench`) with the same
request shapes; Redis by redis-benchmark at the same connection count and value
size. Ratios are to the bare server measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KVCTL = ROOT / "target/release/kvctl"
# The kvctl whose server is measured; the one built here always drives the
# load, so that two builds compared side by side meet the same generator.
SERVED = KVCTL
BARE = ROOT / "target/release/examples/bare_server"
FSYNC_LOOP = ROOT / "target/release/examples/fsync_loop"
GEN_WAL = ROOT / "target/release/examples/gen_wal"


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open in {timeout}s")


class Proc:
    """A server process that is stopped on exit, whatever happens."""

    def __init__(self, cmd: list[str], port: int, stderr_path: Path | None = None):
        self.stderr_path = stderr_path
        err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        self.port = port
        wait_port(port, self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def kv_bench(port: int, workload: str, clients: int, args, extra: list[str] = ()) -> dict:
    cmd = [str(KVCTL), "bench", "--server", f"http://127.0.0.1:{port}", "-o", "json",
           "-w", workload, "-c", str(clients), "-d", args.duration,
           "--keyspace", str(args.keyspace), "--value-size", str(args.value_size), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def row(system: str, workload: str, conns: int, rps: float, p50_ms: float, p99_ms: float,
        keys_per_sec: float | None = None) -> dict:
    return {"system": system, "workload": workload, "conns": conns, "rps": rps,
            "kps": keys_per_sec if keys_per_sec is not None else rps, "p50": p50_ms, "p99": p99_ms}


def from_report(system: str, workload: str, report: dict) -> dict:
    lat = report["latency_us"]
    errors = sum(report["errors"].values())
    if errors:
        log(f"{system} {workload}: {errors} errors {report['errors']}")
    return row(system, workload, report["clients"], report["requests_per_sec"], lat["p50"] / 1000,
               lat["p99"] / 1000, report["keys_per_sec"])


# The bare server in its `parse` mode: batch bodies parsed into the
# request's types and answered with one result per operation.
PARSED_CEILING = "bare axum, batch parsed (ceiling)"

WORKLOADS = [("get", []), ("put", []), ("mixed", ["--read-ratio", "0.9"]), ("batch", ["--batch-size", "100"])]


def measure_http(system: str, port: int, args, rows: list, single: bool) -> None:
    # The one-connection run goes first: after the batch run kvctl's log is
    # past the auto-compaction threshold, and a compaction running beside one
    # connection measures the compaction, not the round trip plus fsync.
    if single:
        report = kv_bench(port, "put", 1, args)
        single_row = from_report(system, "put", report)
        log(f"{system:<24} put c=1 {report['requests_per_sec']:>9.0f} req/s")
    for workload, extra in WORKLOADS:
        if workload == "get" and system.startswith("kvctl"):
            extra = [*extra, "--preload"]
        report = kv_bench(port, workload, args.clients, args, extra)
        rows.append(from_report(system, workload, report))
        log(f"{system:<24} {workload:<6} {report['requests_per_sec']:>10.0f} req/s")
    if single:
        rows.append(single_row)


def redis_bench(port: int, tests: str, clients: int, args, requests: int) -> dict[str, dict]:
    cmd = ["redis-benchmark", "-p", str(port), "-c", str(clients), "-d", str(args.value_size),
           "-r", str(args.keyspace), "-n", str(requests), "-t", tests, "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    header = [h.strip('"') for h in lines[0].split(",")]
    result = {}
    for line in lines[1:]:
        values = dict(zip(header, [v.strip('"') for v in line.split(",")]))
        result[values["test"]] = values
    return result


def measure_redis(args, rows: list, work: Path) -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        log("Redis is not installed: skipping its rows")
        return
    for mode in ("always", "everysec"):
        port = free_port()
        rdir = work / f"redis-{mode}"
        rdir.mkdir()
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "yes", "--appendfsync", mode, "--dir", str(rdir), "--daemonize", "no"]
        with Proc(cmd, port):
            system = f"redis appendfsync {mode}"
            # Enough requests for a run of about the same length as the HTTP runs.
            n = max(20_000, int(args.seconds * 60_000))
            for test, name in (("SET", "put"), ("GET", "get")):
                res = redis_bench(port, test.lower(), args.clients, args, n)[test]
                rows.append(row(system, name, args.clients, float(res["rps"]),
                                float(res["p50_latency_ms"]), float(res["p99_latency_ms"])))
                log(f"{system:<24} {name:<6} {float(res['rps']):>10.0f} req/s")
            if mode == "always":
                res = redis_bench(port, "set", 1, args, max(2_000, int(args.seconds * 4_000)))["SET"]
                rows.append(row(system, "put", 1, float(res["rps"]), float(res["p50_latency_ms"]),
                                float(res["p99_latency_ms"])))
                log(f"{system:<24} put c=1 {float(res['rps']):>9.0f} req/s")


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(ns|µs|us|ms|s)", text)
    scale = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    return float(m.group(1)) * scale[m.group(2)]


def measure_replay(records: int, work: Path) -> dict:
    data = work / f"replay-{records}"
    subprocess.run([str(GEN_WAL), str(data), str(records)], check=True)
    size = (data / "wal.log").stat().st_size
    port = free_port()
    err = work / f"replay-{records}.log"
    started = time.monotonic()
    with Proc([str(SERVED), "serve", "--port", str(port), "--data-dir", str(data)], port, err):
        wall = time.monotonic() - started
    text = err.read_text()
    m = re.search(r"replayed (\d+) records \((\d+) bytes\) in (\S+), (\d+) live keys", text)
    seconds = parse_duration(m.group(3))
    shutil.rmtree(data)
    return {"records": records, "bytes": size, "replay_s": seconds, "start_s": wall,
            "records_per_s": records / seconds, "live_keys": int(m.group(4))}


def redis_load(port: int, keys: int, value_size: int) -> None:
    value = b"x" * value_size
    proc = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    chunk = []
    for n in range(keys):
        key = b"key:%010d" % n
        chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
        if len(chunk) == 10_000:
            proc.stdin.write(b"".join(chunk))
            chunk.clear()
    proc.stdin.write(b"".join(chunk))
    proc.stdin.close()
    proc.wait()


def settle_rss(pid: int, seconds: float = 2.0) -> int:
    time.sleep(seconds)
    return rss_kib(pid)


def measure_memory(args, work: Path) -> dict:
    keys = args.memory_keys
    result: dict = {"keys": keys}
    data = work / "memory-kvctl"
    port = free_port()
    with Proc([str(SERVED), "serve", "--port", str(port), "--data-dir", str(data), "--fsync", "never"],
              port) as server:
        result["kvctl_empty_kib"] = rss_kib(server.pid)
        subprocess.run([str(KVCTL), "bench", "--server", f"http://127.0.0.1:{port}", "-w", "list", "-n", "1",
                        "--keyspace", str(keys), "--value-size", str(args.value_size), "--preload"],
                       check=True, capture_output=True)
        result["kvctl_kib"] = settle_rss(server.pid)
        # Prefix listing of 1000 keys out of the million, one connection.
        report = kv_bench(port, "list", 1, argparse.Namespace(**{**vars(args), "keyspace": keys,
                                                                  "duration": "3s"}))
        result["list_p50_ms"] = report["latency_us"]["p50"] / 1000
        result["list_p99_ms"] = report["latency_us"]["p99"] / 1000
    shutil.rmtree(data)

    data = work / "memory-expiry"
    port = free_port()
    with Proc([str(SERVED), "serve", "--port", str(port), "--data-dir", str(data), "--fsync", "never"],
              port) as server:
        subprocess.run([str(KVCTL), "bench", "--server", f"http://127.0.0.1:{port}", "-w", "list", "-n", "1",
                        "--keyspace", str(keys), "--value-size", str(args.value_size), "--preload",
                        "--ttl", "3"], check=True, capture_output=True)
        result["expiring_peak_kib"] = rss_kib(server.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run([str(KVCTL), "stats", "--server", f"http://127.0.0.1:{port}", "-o", "json"],
                                 capture_output=True, text=True)
            if json.loads(out.stdout)["keys"] == 0:
                break
            time.sleep(0.5)
        result["expired_kib"] = settle_rss(server.pid, 3.0)
    shutil.rmtree(data)

    if shutil.which("redis-server") and shutil.which("redis-cli"):
        port = free_port()
        rdir = work / "memory-redis"
        rdir.mkdir()
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(rdir), "--daemonize", "no"]
        with Proc(cmd, port) as redis:
            result["redis_empty_kib"] = rss_kib(redis.pid)
            redis_load(port, keys, args.value_size)
            result["redis_kib"] = settle_rss(redis.pid)
    return result


def fsync_loop_rate(work: Path, seconds: float) -> float:
    out = subprocess.run([str(FSYNC_LOOP), str(work), str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["writes_per_sec"]


def median_rows(rounds: list[list[dict]]) -> list[dict]:
    """One row per system and workload: medians over the rounds, with each
    ratio taken to the ceiling of its own round."""
    out = []
    for first in rounds[0]:
        key = (first["system"], first["workload"], first["conns"])
        same = [find(rows, *key) for rows in rounds]
        bases = [find(rows, "bare axum (ceiling)", key[1], key[2]) for rows in rounds]
        row = dict(first)
        for field in ("rps", "kps", "p50", "p99"):
            row[field] = statistics.median(r[field] for r in same)
        row["ratio"] = statistics.median(r["kps"] / b["kps"] for r, b in zip(same, bases))
        row["p99_ratio"] = statistics.median(r["p99"] / b["p99"] for r, b in zip(same, bases))
        out.append(row)
    return out


def find(rows: list, system: str, workload: str, conns: int) -> dict | None:
    for r in rows:
        if r["system"] == system and r["workload"] == workload and r["conns"] == conns:
            return r
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", default="5s", help="length of each HTTP run (default 5s)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of HTTP runs; each row reports its median over the rounds, and each ratio "
                             "the median of the ratios measured within a round (default 3, --quick 1)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--keyspace", type=int, default=100_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--memory-keys", type=int, default=1_000_000)
    parser.add_argument("--replay", default="1000000,10000000", help="log sizes for the replay curve")
    parser.add_argument("--quick", action="store_true", help="3 s runs, replay of 1M only")
    parser.add_argument("--skip", default="", help="comma-separated: redis,replay,memory")
    parser.add_argument("--served", type=Path, default=None,
                        help="the kvctl binary whose server is measured (default: the one built here, "
                             "which drives the load either way); for A/B runs of two builds")
    args = parser.parse_args()
    global SERVED
    if args.served:
        SERVED = args.served.resolve()
    if args.quick:
        args.duration = "3s"
        args.rounds = args.rounds or 1
        args.replay = "1000000"
    args.rounds = args.rounds or 3
    args.seconds = parse_duration(args.duration)
    skip = set(filter(None, args.skip.split(",")))

    work = Path(tempfile.mkdtemp(prefix="kvctl-compare-", dir=os.environ.get("TMPDIR", "/tmp")))
    rounds: list[list[dict]] = []
    disks: list[float] = []
    try:
        # Rounds interleave the systems, so a slow spell of the machine hits
        # all of them and the within-round ratios stay fair.
        for n in range(args.rounds):
            log(f"round {n + 1} of {args.rounds}")
            rows_n: list[dict] = []
            port = free_port()
            with Proc([str(BARE), str(port), str(args.value_size)], port):
                measure_http("bare axum (ceiling)", port, args, rows_n, single=True)
            port = free_port()
            with Proc([str(BARE), str(port), str(args.value_size), "parse"], port):
                report = kv_bench(port, "batch", args.clients, args, ["--batch-size", "100"])
                rows_n.append(from_report(PARSED_CEILING, "batch", report))
                log(f"{PARSED_CEILING:<24} batch  {report['requests_per_sec']:>10.0f} req/s")
            for mode in ("always", "interval", "never"):
                port = free_port()
                cmd = [str(SERVED), "serve", "--port", str(port), "--data-dir", str(work / f"kv-{mode}-{n}"),
                       "--fsync", mode]
                with Proc(cmd, port):
                    measure_http(f"kvctl --fsync {mode}", port, args, rows_n, single=(mode == "always"))
                shutil.rmtree(work / f"kv-{mode}-{n}", ignore_errors=True)
            disks.append(fsync_loop_rate(work, min(args.seconds, 5.0)))
            rounds.append(rows_n)
        rows = median_rows(rounds)
        if "redis" not in skip:
            measure_redis(args, rows, work)
        disk = statistics.median(disks)
        replay = [] if "replay" in skip else [measure_replay(int(n), work) for n in args.replay.split(",")]
        memory = None if "memory" in skip else measure_memory(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ceiling = {(r["workload"], r["conns"]): r for r in rows if r["system"] == "bare axum (ceiling)"}
    print(f"\n### Side by side ({args.clients} connections unless said, {args.value_size}-byte values, "
          f"{args.keyspace} keys, {args.duration} per run, median of {args.rounds} rounds)\n")
    print("| system | workload | connections | requests/s | keys/s | p50 ms | p99 ms | ratio to ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        base = ceiling.get((r["workload"], r["conns"]))
        if "ratio" in r:
            ratio = f"{r['ratio']:.2f}"
        else:
            ratio = f"{r['kps'] / base['kps']:.2f}" if base else "-"
        print(f"| {r['system']} | {r['workload']} | {r['conns']} | {r['rps']:.0f} | {r['kps']:.0f} | "
              f"{r['p50']:.3f} | {r['p99']:.3f} | {ratio} |")
    print(f"\nPlain append+fdatasync loop on the same disk: {disk:.0f} writes/s")

    def per_round(f) -> float:
        """The median over the rounds of a ratio taken within each round."""
        values = [f(rows_n, disk_n) for rows_n, disk_n in zip(rounds, disks)]
        return statistics.median(v for v in values if v == v) if values else float("nan")

    def kps(rows_n, system, workload, conns=args.clients):
        r = find(rows_n, system, workload, conns)
        return r["kps"] if r else float("nan")

    always, never, bare = "kvctl --fsync always", "kvctl --fsync never", "bare axum (ceiling)"
    mix = find(rows, always, "mixed", args.clients)
    # 1 / (the bare server's one-connection round trip + one fdatasync).
    one_bound = statistics.median(
        1 / (1 / find(rows_n, bare, "put", 1)["rps"] + 1 / disk_n) for rows_n, disk_n in zip(rounds, disks))
    one_kv = find(rows, always, "put", 1)
    targets = [
        ("1. durable PUT >= 0.80 x kvctl --fsync never",
         per_round(lambda r, _: kps(r, always, "put") / kps(r, never, "put")), 0.80),
        ("2. durable 90/10 mix >= 0.90 x bare", mix["ratio"] if mix else float("nan"), 0.90),
        ("2. durable 90/10 mix p99 <= 2 x bare p99", mix["p99_ratio"] if mix else float("nan"), -2.0),
        (f"3. one connection durable >= 0.90 x 1/(RTT + fsync) = {one_bound:.0f}/s "
         f"(kvctl {one_kv['rps']:.0f}/s)",
         per_round(lambda r, d: find(r, always, "put", 1)["rps"]
                   * (1 / find(r, bare, "put", 1)["rps"] + 1 / d)), 0.90),
        ("4. durable batch of 100 >= 0.60 x parsed-batch ceiling keys/s",
         per_round(lambda r, _: kps(r, always, "batch") / kps(r, PARSED_CEILING, "batch")), 0.60),
    ]
    print("\n### Targets\n")
    print("| target | measured | met |")
    print("|---|---|---|")
    for name, value, goal in targets:
        # A negative goal is an upper bound.
        met = value <= -goal if goal < 0 else value >= goal
        print(f"| {name} | {value:.2f} | {'yes' if met else 'no'} |")
    redis_always = find(rows, "redis appendfsync always", "put", args.clients)
    if redis_always:
        kv = find(rows, always, "put", args.clients)
        print(f"| 1. durable PUT vs Redis appendfsync always | {kv['rps'] / redis_always['rps']:.2f} x Redis | "
              f"{'yes' if kv['rps'] >= redis_always['rps'] else 'no'} |")
    for r in replay:
        print(f"| 5. replay {r['records']:,} records ({r['bytes'] / 2**20:.0f} MiB) | {r['replay_s']:.2f} s, "
              f"{r['records_per_s'] / 1e6:.2f} M records/s | {'yes' if r['records_per_s'] >= 2e6 else 'no'} |")
    if memory:
        if "redis_kib" in memory:
            kv_mib = (memory["kvctl_kib"]) / 1024
            redis_mib = (memory["redis_kib"]) / 1024
            print(f"| 5. RSS with {memory['keys']:,} keys: kvctl {kv_mib:.0f} MiB vs Redis {redis_mib:.0f} MiB | "
                  f"{kv_mib / redis_mib:.2f} x Redis | {'yes' if kv_mib <= redis_mib else 'no'} |")
        given_back = memory["expiring_peak_kib"] - memory["expired_kib"]
        print(f"| 5. {memory['keys']:,} keys expired: RSS {memory['expiring_peak_kib'] / 1024:.0f} MiB -> "
              f"{memory['expired_kib'] / 1024:.0f} MiB | {given_back / 1024:.0f} MiB given back | "
              f"{'yes' if memory['expired_kib'] < memory['expiring_peak_kib'] * 0.5 else 'no'} |")
        print(f"| 5. list 1,000 of {memory['keys']:,} keys over HTTP, one connection | p50 "
              f"{memory['list_p50_ms']:.3f} ms, p99 {memory['list_p99_ms']:.3f} ms | "
              f"{'yes' if memory['list_p50_ms'] < 1.0 else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
