"""Interleaved A/B of two kvctl builds' servers, driven by this tree's `kvctl bench`.

    python3 bench/ab.py --a OLD_KVCTL --b NEW_KVCTL [--rounds 8] [--duration 3s] [--replay 10000000]

Each round runs every workload against a fresh server of each build, the
order of the builds alternating from round to round, so a slow spell of the
machine hits both. Prints, per workload, the median requests/s of each build,
their range over the rounds, and the median of the per-round ratios B/A (the
figure to judge a change by: a noisy machine moves both builds of a round
together); then the same for each workload's p99 latency. With --replay N, each round also times both builds' start-up
replay of one log of N records (written once by bench/gen_wal.rs).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import GEN_WAL, KVCTL, Proc, free_port, kv_bench, log, parse_duration  # noqa: E402

# (label, --fsync mode, workload, clients, extra bench flags)
CASES = [
    ("GET, durable server", "always", "get", 64, ["--preload"]),
    ("PUT --fsync always", "always", "put", 64, []),
    ("PUT --fsync always, 1 connection", "always", "put", 1, []),
    ("90/10 mix --fsync always", "always", "mixed", 64, ["--read-ratio", "0.9"]),
    ("batch of 100 --fsync always (keys/s)", "always", "batch", 64, ["--batch-size", "100"]),
    ("PUT --fsync never", "never", "put", 64, []),
]


def run_build(binary: Path, work: Path, args) -> dict[str, float]:
    """One round of every case against `binary`; the figure of each case."""
    results = {}
    for mode in sorted({case[1] for case in CASES}):
        port = free_port()
        data = Path(tempfile.mkdtemp(dir=work))
        with Proc([str(binary), "serve", "--port", str(port), "--data-dir", str(data), "--fsync", mode], port):
            for label, case_mode, workload, clients, extra in CASES:
                if case_mode != mode:
                    continue
                report = kv_bench(port, workload, clients, args, extra)
                results[label] = report["keys_per_sec"]
                results[p99_label(label)] = report["latency_us"]["p99"] / 1000
    return results


REPLAY = "start-up replay (s)"


def p99_label(label: str) -> str:
    """The row of a workload's p99 latency."""
    return f"{label}: p99 ms"


def time_replay(binary: Path, data: Path, work: Path) -> float:
    """Seconds `binary` reports for replaying the log in `data`."""
    port = free_port()
    err = Path(tempfile.mkstemp(dir=work, suffix=".log")[1])
    with Proc([str(binary), "serve", "--port", str(port), "--data-dir", str(data)], port, err):
        pass
    m = re.search(r"replayed \d+ records \(\d+ bytes\) in (\S+),", err.read_text())
    return parse_duration(m.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="the kvctl binary to compare against")
    parser.add_argument("--b", type=Path, default=KVCTL, help="the kvctl binary under test (default: this tree's)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--keyspace", type=int, default=100_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--replay", type=int, default=0, help="records of a log to time start-up replay on")
    parser.add_argument("--only", default="", help="run only the workloads whose label contains this text")
    args = parser.parse_args()
    CASES[:] = [case for case in CASES if args.only in case[0]]
    builds = {"A": args.a.resolve(), "B": args.b.resolve()}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    labels = [case[0] for case in CASES] + [p99_label(case[0]) for case in CASES]
    with tempfile.TemporaryDirectory(prefix="kvctl-ab-") as tmp:
        replay_dir = Path(tmp) / "replay"
        if args.replay:
            subprocess.run([str(GEN_WAL), str(replay_dir), str(args.replay)], check=True)
            labels.append(REPLAY)
        for n in range(args.rounds):
            order = ["A", "B"] if n % 2 == 0 else ["B", "A"]
            for name in order:
                log(f"round {n + 1} of {args.rounds}: {name}")
                results = run_build(builds[name], Path(tmp), args)
                if args.replay:
                    results[REPLAY] = time_replay(builds[name], replay_dir, Path(tmp))
                runs[name].append(results)

    print(f"\nA = {builds['A']}\nB = {builds['B']}\n"
          f"{args.rounds} interleaved rounds, {args.duration} per run, {args.value_size}-byte values, "
          f"{args.keyspace} keys; requests/s (keys/s for batches) unless said; for p99 rows "
          f"a ratio below 1 is better\n")
    print("| workload | A median | A range | B median | B range | median of per-round B/A |")
    print("|---|---|---|---|---|---|")
    for label in labels:
        a = [r[label] for r in runs["A"]]
        b = [r[label] for r in runs["B"]]
        paired = statistics.median(y / x for x, y in zip(a, b))
        digits = 0 if label in (case[0] for case in CASES) else 2
        print(f"| {label} | {statistics.median(a):.{digits}f} | {min(a):.{digits}f}–{max(a):.{digits}f} | "
              f"{statistics.median(b):.{digits}f} | {min(b):.{digits}f}–{max(b):.{digits}f} | {paired:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
