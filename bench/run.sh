#!/usr/bin/env bash
# Whole-process benchmark of reconwatch: one command, one run, same files.
#
#   bench/run.sh                       # ~1 M events; results table on stdout,
#                                      # bench/out/results.json
#   BENCH_REPEAT=5 BENCH_SKIP=identities,objects bench/run.sh
#
# Generates (or reuses) the datasets under bench/out/ with bench/gen_cloudtrail.py,
# builds `cargo build --release --bins`, then measures the one-core limits
# (reconwatch-bench gunzip / parse), `reconwatch replay` with 1 and 2 shards on
# 1 and 2 cores, DuckDB rules 1+4 on the same files, peak RSS vs active
# identities and vs object size, and prints the ratios. Every knob is an
# environment variable: see the docstring of bench/run.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/run.py" "$@"
