#!/usr/bin/env bash
# Runs every test of kvctl on a fresh machine: formatting, lints, rustdoc, the
# Rust unit and integration tests, then the spec's pytest suite against the
# real `kvctl serve` (installing pytest and its needs into ./.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --locked --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
echo "== cargo test"
cargo test --release --locked

echo "== pytest suite"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
KVSTORE_IMPL=rust KVSTORE_PORT="${KVSTORE_PORT:-18083}" .venv/bin/python -m pytest tests/ -v
