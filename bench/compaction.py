#!/usr/bin/env python3
"""Write latency during an online compaction of a large store.

Builds a log of RECORDS records over KEYS keys (bench/gen_wal.rs), starts
the release server on it with automatic compaction off, and alternates two
windows of the same PUT load (`kvctl bench -w put`, durable by default):
one without a compaction, one with `POST /admin/compact` sent a quarter of
the way in. Each round reports both windows side by side (requests/s, p99,
max latency), the compaction's duration, and how long writes waited for its
swap, as the server logged it.

Usage: bench/compaction.py [--records N] [--keys N] [--seconds S]
                           [--clients C] [--rounds R] [--fsync POLICY]
Run after `cargo build --release --bins --examples`.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KVCTL = os.path.join(ROOT, "target", "release", "kvctl")
GEN_WAL = os.path.join(ROOT, "target", "release", "examples", "gen_wal")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url, deadline_s=600):
    deadline = time.time() + deadline_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit("the server did not come up")


def bench(url, args):
    out = subprocess.run(
        [KVCTL, "bench", "--server", url, "-w", "put", "-c", str(args.clients),
         "-d", f"{args.seconds}s", "--keyspace", str(args.keys), "-o", "json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compact_later(url, delay, result):
    time.sleep(delay)
    started = time.time()
    req = urllib.request.Request(url + "/admin/compact", method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        result["report"] = json.loads(r.read())
    result["seconds"] = time.time() - started


def row(name, b):
    lat = b["latency_us"]
    return (f"| {name} | {b['requests_per_sec']:.0f} | {lat['p50'] / 1000:.2f} | "
            f"{lat['p99'] / 1000:.2f} | {lat['max'] / 1000:.1f} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--seconds", type=int, default=20)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--fsync", default="always")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="kvctl-compaction-bench-")
    try:
        data = os.path.join(work, "data")
        subprocess.run([GEN_WAL, data, str(args.records), str(args.keys)], check=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = os.path.join(work, "server.log")
        with open(log_path, "w") as log:
            server = subprocess.Popen(
                [KVCTL, "serve", "--data-dir", data, "--port", str(port),
                 "--fsync", args.fsync, "--compact-min-bytes", "0"],
                stderr=log)
        try:
            wait_healthy(url)
            size = os.path.getsize(os.path.join(data, "wal.log"))
            print(f"log: {args.records} records over {args.keys} keys, {size / 2**20:.0f} MiB; "
                  f"PUT load: {args.clients} clients, {args.seconds} s windows, fsync {args.fsync}\n")
            print("| window | req/s | p50 ms | p99 ms | max ms |")
            print("|---|---|---|---|---|")
            for round_no in range(args.rounds):
                plain = bench(url, args)
                print(row(f"round {round_no + 1}, no compaction", plain))
                result = {}
                trigger = threading.Thread(
                    target=compact_later, args=(url, args.seconds / 4, result))
                trigger.start()
                during = bench(url, args)
                trigger.join()
                print(row(f"round {round_no + 1}, compaction", during))
                rep = result["report"]
                print(f"|  compaction: {result['seconds']:.2f} s, "
                      f"{rep['bytes_before'] / 2**20:.0f} → {rep['bytes_after'] / 2**20:.0f} MiB | | | | |")
            with open(log_path) as log:
                held = re.findall(r"writes waited (\S+) for the swap", log.read())
            print(f"\nwrites waited for the swap (server log): {', '.join(held)}")
        finally:
            server.terminate()
            server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
