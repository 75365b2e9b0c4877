"""Where a durable write's time goes: one kvctl server under one `kvctl bench` load.

    python3 bench/profile_writes.py [--fsync always] [--workload put] [--clients 64] [--duration 5s]
                                    [--served KVCTL] [--perf]

Reports, for the run: requests/s; the CPU each thread of the server used and
how often it was switched out, from /proc (so off-CPU waiting shows as
threads that ran little but switched often); the load generator's CPU; the
machine's idle time; and, from the server's /metrics, the fsyncs, their mean
time, and the mean size of a group commit. With --perf, also records an
on-CPU profile of the server (`perf record -g`) to perf.data beside the
script's working directory, for `perf report`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import KVCTL, Proc, free_port, log, parse_duration  # noqa: E402

TICK = 100  # USER_HZ: /proc times are in 1/100 s


def threads(pid: int) -> dict[int, dict]:
    """Per thread of `pid`: name, CPU ticks, voluntary and involuntary switches."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])
        vol = int(re.search(r"voluntary_ctxt_switches:\s+(\d+)", status).group(1))
        invol = int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
        out[int(task.name)] = {"name": name, "ticks": ticks, "vol": vol, "invol": invol}
    return out


def process_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def idle_ticks() -> tuple[int, int]:
    """Idle and total jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[3] + values[4], sum(values[:8])


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for line in text.splitlines():
        m = re.match(r"(kvctl_(?:wal_fsyncs_total|wal_fsync_duration_seconds_(?:sum|count)|"
                     r"commit_group_requests_(?:sum|count)|wal_appends_total))(?:\{[^}]*\})? (\S+)", line)
        if m:
            found[m.group(1)] = float(m.group(2))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsync", default="always")
    parser.add_argument("--workload", default="put")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--batch-size", default="100")
    parser.add_argument("--served", type=Path, default=KVCTL)
    parser.add_argument("--perf", action="store_true")
    args = parser.parse_args()
    seconds = parse_duration(args.duration)

    with tempfile.TemporaryDirectory() as work:
        port = free_port()
        cmd = [str(args.served), "serve", "--port", str(port), "--data-dir", f"{work}/data", "--fsync", args.fsync]
        with Proc(cmd, port) as server:
            bench = [str(KVCTL), "bench", "--server", f"http://127.0.0.1:{port}", "-o", "json", "-w",
                     args.workload, "-c", str(args.clients), "-d", args.duration, "--batch-size", args.batch_size]
            m0, t0, idle0 = metrics(port), threads(server.pid), idle_ticks()
            load = subprocess.Popen(bench, stdout=subprocess.PIPE, text=True)
            perf = None
            if args.perf:
                perf = subprocess.Popen(["perf", "record", "-g", "-p", str(server.pid), "-o", "perf.data", "--",
                                         "sleep", str(seconds)], stderr=subprocess.DEVNULL)
            gen_ticks = 0
            # Sample the generator's CPU just before it exits.
            deadline = time.monotonic() + seconds - 0.3
            while time.monotonic() < deadline:
                time.sleep(0.1)
            try:
                gen_ticks = process_ticks(load.pid)
            except OSError:
                pass
            report = json.loads(load.communicate()[0])
            m1, t1, idle1 = metrics(port), threads(server.pid), idle_ticks()
            if perf:
                perf.wait()

    elapsed = report["seconds"]
    print(f"{args.workload} --fsync {args.fsync}, {args.clients} connections: "
          f"{report['requests_per_sec']:.0f} req/s, p50 {report['latency_us']['p50'] / 1000:.3f} ms, "
          f"p99 {report['latency_us']['p99'] / 1000:.3f} ms")
    idle = (idle1[0] - idle0[0]) / max(1, idle1[1] - idle0[1])
    print(f"machine idle {idle:.0%}; load generator {gen_ticks / TICK / elapsed:.2f} cores")
    by_name: dict[str, dict] = defaultdict(lambda: {"ticks": 0, "vol": 0, "invol": 0, "n": 0})
    for tid, after in t1.items():
        before = t0.get(tid, {"ticks": 0, "vol": 0, "invol": 0})
        group = by_name[after["name"]]
        group["n"] += 1
        for field in ("ticks", "vol", "invol"):
            group[field] += after[field] - before[field]
    requests = report["requests"]
    print("| server threads | count | cores | switches/s (voluntary) | involuntary/s | CPU µs per request |")
    print("|---|---|---|---|---|---|")
    for name, g in sorted(by_name.items(), key=lambda kv: -kv[1]["ticks"]):
        if g["ticks"] == 0 and g["vol"] == 0:
            continue
        print(f"| {name} | {g['n']} | {g['ticks'] / TICK / elapsed:.2f} | {g['vol'] / elapsed:.0f} | "
              f"{g['invol'] / elapsed:.0f} | {g['ticks'] / TICK * 1e6 / max(1, requests):.1f} |")
    d = {k: m1.get(k, 0) - m0.get(k, 0) for k in m1}
    fsyncs = d.get("kvctl_wal_fsyncs_total", 0)
    groups = d.get("kvctl_commit_group_requests_count", 0)
    print(f"fsyncs {fsyncs / elapsed:.0f}/s, mean "
          f"{1e6 * d.get('kvctl_wal_fsync_duration_seconds_sum', 0) / max(1, d.get('kvctl_wal_fsync_duration_seconds_count', 0)):.0f} µs; "
          f"group commits {groups / elapsed:.0f}/s, mean {d.get('kvctl_commit_group_requests_sum', 0) / max(1, groups):.1f} requests")
    return 0


if __name__ == "__main__":
    log("profiling")
    sys.exit(main())
