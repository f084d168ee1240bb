#!/usr/bin/env bash
# Runs every check and test, LocalStack included, on a fresh machine:
#   formatting, clippy (-D warnings), and `cargo test --all-targets`
#   (unit tests, CLI tests, engine tests, dataset figures, LocalStack end to end).
# LocalStack is installed from tests/localstack/requirements.txt into a cached
# venv (~/.cache/reconwatch) and started on 127.0.0.1:4566 if not running; if
# this script started it, it stops it again on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=0
if ! scripts/localstack.sh status >/dev/null 2>&1; then
    scripts/localstack.sh start
    started=1
fi
cleanup() { if [ "$started" = 1 ]; then scripts/localstack.sh stop; fi; }
trap cleanup EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test --all-targets"
cargo test --all-targets --locked
