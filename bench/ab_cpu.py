#!/usr/bin/env python3
"""A/B of two reconwatch builds by CPU time, run at the same time on the same core(s).

    python3 bench/ab_cpu.py A_BIN B_BIN [--rounds 4] [--cores 0] [--shards 1] [DIR]

Each round starts `A_BIN replay DIR` and `B_BIN replay DIR` together, both pinned with
`taskset -c CORES`, and reads each one's user + system CPU time from `wait4`. Sharing
the core(s) for the whole run, both see the same slow and fast spells of the host, so
the paired ratio B/A is steady where wall times are not: on this 2-vCPU VM, A/A gives
0.996-1.002 while wall-time rounds of the same binary range ±20 %. The two replays
also evict each other's cache at every switch, so the absolute CPU times are higher
than a lone run's; only the ratio is the result. The start order alternates per round.

A binary may carry environment settings: `path:NAME=VALUE,NAME=VALUE`
(e.g. `target/release/reconwatch:RECONWATCH__S3__FETCH_CONCURRENCY=2`).
DIR defaults to bench/out/main/AWSLogs (made by bench/run.sh). Standard library only.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_bin(spec):
    path, _, kvs = spec.partition(":")
    env = {}
    for kv in filter(None, kvs.split(",")):
        k, _, v = kv.partition("=")
        env[k] = v
    return path, env


def start(spec, cores, shards, data, state_dir):
    path, extra = parse_bin(spec)
    env = dict(os.environ)
    env.update({
        "RECONWATCH__PIPELINE__SHARDS": str(shards),
        "RECONWATCH__PIPELINE__STATE_DIR": state_dir,
        "RUST_LOG": "warn",
    })
    env.update(extra)
    shutil.rmtree(state_dir, ignore_errors=True)
    cmd = ["taskset", "-c", cores, path, "replay", data]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("data", nargs="?", default=os.path.join(HERE, "out", "main", "AWSLogs"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--cores", default="0")
    ap.add_argument("--shards", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("taskset"):
        sys.exit("ab_cpu.py needs taskset (util-linux)")
    work = tempfile.mkdtemp(prefix="reconwatch-ab-")
    cpu = {"a": [], "b": []}
    try:
        for r in range(args.rounds):
            order = [("a", args.a), ("b", args.b)]
            if r % 2:
                order.reverse()
            procs = {}
            for name, spec in order:
                p = start(spec, args.cores, args.shards, args.data, os.path.join(work, name))
                procs[p.pid] = name
            while procs:
                pid, status, usage = os.wait4(-1, 0)
                name = procs.pop(pid, None)
                if name is None:
                    continue
                if status != 0:
                    sys.exit(f"{name} ({getattr(args, name)}) failed: wait status {status}")
                cpu[name].append(usage.ru_utime + usage.ru_stime)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [b / a for a, b in zip(cpu["a"], cpu["b"])]
    print(f"A cpu s median {statistics.median(cpu['a']):.3f}   B {statistics.median(cpu['b']):.3f}")
    print(f"B/A paired median {statistics.median(ratios):.3f}  range {min(ratios):.3f}-{max(ratios):.3f}"
          f"  rounds {' '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
