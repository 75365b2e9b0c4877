#!/usr/bin/env bash
# Side-by-side comparison, in one run on this machine: a bare HTTP server
# (the ceiling of the HTTP stack), kvctl serve under each --fsync mode, and
# Redis with appendonly (appendfsync always, then everysec), and a second
# ceiling for batches: the bare server parsing each batch body. Prints one
# markdown table, the targets of the performance issue, and the replay and
# memory figures.
#
#   bench/compare.sh              # full run (~10 minutes)
#   bench/compare.sh --quick      # shorter runs, no 10M-record replay
#   bench/compare.sh --help       # every option
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --bin kvctl --example bare_server --example fsync_loop --example gen_wal

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "redis-server not found; installing Debian's redis-server and redis-tools..." >&2
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools) >&2 \
            || echo "could not install Redis; its rows will be skipped" >&2
    else
        echo "not root: cannot install Redis; its rows will be skipped" >&2
    fi
fi

exec python3 bench/compare.py "$@"
