#!/usr/bin/env python3
"""Replay against the parse limit, counted rather than timed (valgrind's cachegrind).

    python3 bench/cg_compare.py [--bench BIN] [--no-limit] [--top N] REPLAY_BIN... [--data DIR]

Runs `reconwatch-bench parse DIR` (the gunzip + parse limit) and `REPLAY_BIN replay DIR`
for each build, on one shard with the bench's fetch concurrency, under cachegrind.
It reports each run's instructions (Ir) and its misses in a 1 MiB, 16-way, 64-byte-line
data cache, which is the L2 of this machine's cores. Instructions are counts, not
timings: two runs of one binary on the same data differ by about 0.01 % (timer ticks),
whatever the host is doing, where the wall-clock ratio in `run.sh` moves ±5-20 % between
rounds on this shared VM. A change of a tenth of a percent in replay's instructions
beyond the limit shows in a single run.

Two cautions:
* The counts are not time. Cachegrind models no prefetcher and no out-of-order
  overlap, so a streaming pass (inflating into a buffer, then reading it back) counts
  one miss per line even where the hardware hides most of them. Random-access misses
  (hash tables, the rule state) are the harder ones to hide. A build with
  fewer modelled misses but the same instructions was not faster in wall-clock rounds
  (bench/README.md, twenty-third session).
* The modelled misses are not exact counts either: they follow heap addresses, which
  change from run to run, and so does the code layout between builds. Two runs of one
  binary on the bench corpus gave 62.3 M and 57.1 M. Trust Ir deltas; read miss deltas
  per function (`--top`) and only when they are large.

The L2 model goes in cachegrind's first-level data cache (`--D1`), and the
first-level model is dropped. Valgrind 3.19 ignores `--LL` on this machine (it keeps
the size it read from CPUID, and warns). Runs go in parallel, one per core; each takes
about 40x a native run. Prints a table and one JSON line. Standard library only (plus
valgrind).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
L2 = "1048576,16,64"
TOTAL_RE = {
    "ir": re.compile(r"I\s+refs:\s+([\d,]+)"),
    "misses": re.compile(r"D1\s+misses:\s+([\d,]+)\s+\(\s*([\d,]+) rd\s+\+\s+([\d,]+) wr\)"),
}


def num(s):
    return int(s.replace(",", ""))


def cachegrind(cmd, env, out_file):
    full = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--D1={L2}",
            f"--cachegrind-out-file={out_file}"] + cmd
    p = subprocess.run(full, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed under cachegrind:\n{p.stderr[-2000:]}")
    ir = TOTAL_RE["ir"].search(p.stderr)
    m = TOTAL_RE["misses"].search(p.stderr)
    if not ir or not m:
        raise RuntimeError(f"no cachegrind totals for {' '.join(cmd)}:\n{p.stderr[-2000:]}")
    return {"ir": num(ir.group(1)), "l2_misses": num(m.group(1)),
            "l2_read_misses": num(m.group(2)), "l2_write_misses": num(m.group(3)),
            "out_file": out_file}


def per_function(out_file):
    """Function → [Ir, read misses, write misses] from cg_annotate."""
    out = subprocess.run(["cg_annotate", "--show=Ir,D1mr,D1mw", "--threshold=0", "--auto=no",
                          out_file], capture_output=True, text=True).stdout
    row = re.compile(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?([\d,]+|\.)\s+(?:\([^)]*\)\s+)?"
                     r"([\d,]+|\.)\s+(?:\([^)]*\)\s+)?(\S.*)$")
    funcs = {}
    for line in out.splitlines():
        m = row.match(line)
        if m and ":" in m.group(4):
            name = m.group(4).split(":", 1)[1]
            acc = funcs.setdefault(name, [0, 0, 0])
            for i, v in enumerate(m.group(1, 2, 3)):
                acc[i] += 0 if v == "." else num(v)
    return funcs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("replay", nargs="+", help="reconwatch binaries to compare")
    ap.add_argument("--data", default=os.path.join(HERE, "out", "main", "AWSLogs"))
    ap.add_argument("--bench", default=os.path.join(ROOT, "target", "release", "reconwatch-bench"))
    ap.add_argument("--no-limit", action="store_true", help="skip the parse-limit run")
    ap.add_argument("--top", type=int, default=0,
                    help="list the N functions whose Ir differs most from the first build's")
    args = ap.parse_args()
    for tool in ("valgrind", "cg_annotate"):
        if not shutil.which(tool):
            sys.exit(f"cg_compare.py needs {tool} (Debian package valgrind)")
    if not os.path.isdir(args.data):
        sys.exit(f"no data at {args.data}: run bench/run.sh first (or pass --data)")
    work = tempfile.mkdtemp(prefix="reconwatch-cg-")
    env = dict(os.environ)
    env.update({"RECONWATCH__PIPELINE__SHARDS": "1",
                "RECONWATCH__S3__FETCH_CONCURRENCY": os.environ.get("BENCH_FETCH_CONCURRENCY", "32"),
                "RUST_LOG": "warn"})
    env.pop("RECONWATCH_CONFIG", None)
    jobs = []
    if not args.no_limit:
        jobs.append(("limit", [args.bench, "parse", args.data], env))
    for i, b in enumerate(args.replay):
        e = dict(env, RECONWATCH__PIPELINE__STATE_DIR=os.path.join(work, f"state{i}"))
        jobs.append((b, [b, "replay", args.data], e))
    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            futs = [pool.submit(cachegrind, cmd, e, os.path.join(work, f"cg.{i}"))
                    for i, (_, cmd, e) in enumerate(jobs)]
            res = {name: f.result() for (name, _, _), f in zip(jobs, futs)}
        limit = res.get("limit")
        print(f"{'run':<48} {'Ir':>16} {'L2 misses':>12} {'limit/run Ir':>13}")
        for name, r in res.items():
            ratio = f"{limit['ir'] / r['ir']:.4f}" if limit else "-"
            print(f"{name[-48:]:<48} {r['ir']:>16,} {r['l2_misses']:>12,} {ratio:>13}")
        base = res[args.replay[0]]
        for b in args.replay[1:]:
            r = res[b]
            line = f"{b[-40:]}: Ir {r['ir'] / base['ir']:.4f} of {args.replay[0][-40:]}"
            if limit:
                extra_b, extra_a = r["ir"] - limit["ir"], base["ir"] - limit["ir"]
                line += f", replay's Ir beyond the limit {extra_b / extra_a:.4f}"
            print(line)
        if args.top and len(args.replay) > 1:
            a = per_function(base["out_file"])
            for b in args.replay[1:]:
                f = per_function(res[b]["out_file"])
                keys = sorted(set(a) | set(f), key=lambda k: -abs(f.get(k, [0])[0] - a.get(k, [0])[0]))
                print(f"\nIr / L2 read / L2 write misses, {b[-40:]} minus {args.replay[0][-40:]}:")
                for k in keys[:args.top]:
                    x, y = a.get(k, [0, 0, 0]), f.get(k, [0, 0, 0])
                    print(f"{y[0] - x[0]:>+14,} {y[1] - x[1]:>+11,} {y[2] - x[2]:>+11,}  {k[:90]}")
        for r in res.values():
            r.pop("out_file")
        print(json.dumps({"data": args.data, "l2_model": L2, "runs": res}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
