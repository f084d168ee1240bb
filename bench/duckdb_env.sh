#!/usr/bin/env bash
# Create (or reuse) the cached venv for bench/duckdb_rules.py and print its python.
#
#   PY=$(bash bench/duckdb_env.sh) && "$PY" bench/duckdb_rules.py DIR
#
# The venv lives in ${RECONWATCH_CACHE:-$HOME/.cache/reconwatch}/bench-venv-<sha of
# requirements.txt>, so editing requirements.txt makes a fresh one. Progress goes to
# stderr; stdout is only the interpreter path. Needs python3 (PYTHON=... to choose) and PyPI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
python="${PYTHON:-python3}"
sha="$(sha256sum "$req" | cut -c1-16)"
cache="${RECONWATCH_CACHE:-$HOME/.cache/reconwatch}"
venv="$cache/bench-venv-$sha"
mkdir -p "$cache"
if [ ! -f "$venv/.complete" ]; then
    exec 9>"$venv.lock"
    flock 9                       # one installer at a time; the others wait and reuse
    if [ ! -f "$venv/.complete" ]; then
        echo "duckdb_env: creating $venv" >&2
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
        "$venv/bin/python" -c "import duckdb; print('duckdb_env: duckdb', duckdb.__version__)" >&2
        touch "$venv/.complete"
    fi
    flock -u 9
fi
echo "$venv/bin/python"
