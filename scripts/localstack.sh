#!/usr/bin/env bash
# Install (once, cached) and start/stop a real LocalStack on 127.0.0.1 without Docker.
#
#   scripts/localstack.sh install   # create the pinned venv (cached under ~/.cache/reconwatch)
#   scripts/localstack.sh start     # install if needed, start in background, wait until healthy
#   scripts/localstack.sh stop      # stop the instance started by `start`
#   scripts/localstack.sh status    # print the health document
#   scripts/localstack.sh awscli    # install if needed, print the venv's aws CLI path
#
# Environment: LOCALSTACK_PORT (default 4566), RECONWATCH_CACHE (default ~/.cache/reconwatch).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$here/tests/localstack/requirements.txt"
cache="${RECONWATCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reconwatch}"
port="${LOCALSTACK_PORT:-4566}"
# The venv is keyed by the requirements' hash so a changed pin rebuilds it.
key="$(sha256sum "$req" | cut -c1-12)"
venv="$cache/localstack-venv-$key"
state="$cache/localstack-run-$port"
python="${PYTHON:-python3}"

install() {
    if [ -x "$venv/bin/python" ] && [ -f "$venv/.complete" ]; then
        return 0
    fi
    echo "localstack: installing pinned requirements into $venv (first run only, ~2 min)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    touch "$venv/.complete"
}

healthy() {
    curl -fsS "http://127.0.0.1:$port/_localstack/health" 2>/dev/null |
        "$venv/bin/python" -c 'import json,sys; s=json.load(sys.stdin)["services"]; sys.exit(0 if all(s.get(k) in ("available","running") for k in ("s3","sqs","sns")) else 1)' 2>/dev/null
}

start() {
    install
    if healthy; then
        echo "localstack: already running on 127.0.0.1:$port" >&2
        return 0
    fi
    mkdir -p "$state"
    echo "localstack: starting on 127.0.0.1:$port (log: $state/localstack.log)" >&2
    GATEWAY_LISTEN="127.0.0.1:$port" SERVICES=s3,sqs,sns LOCALSTACK_VOLUME_DIR="$state/volume" \
        SQS_ENDPOINT_STRATEGY=path DISABLE_EVENTS=1 \
        nohup "$venv/bin/python" -m localstack.runtime.main >"$state/localstack.log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 120); do
        if healthy; then
            echo "localstack: ready" >&2
            return 0
        fi
        if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
            echo "localstack: process exited; last log lines:" >&2
            tail -n 40 "$state/localstack.log" >&2
            return 1
        fi
        sleep 1
    done
    echo "localstack: not healthy after 120 s; last log lines:" >&2
    tail -n 40 "$state/localstack.log" >&2
    return 1
}

stop() {
    if [ -f "$state/pid" ]; then
        pid="$(cat "$state/pid")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$state/pid"
    fi
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    awscli) install; echo "$venv/bin/aws" ;;
    status) curl -fsS "http://127.0.0.1:$port/_localstack/health"; echo ;;
    *) echo "usage: $0 install|start|stop|status|awscli" >&2; exit 2 ;;
esac
