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
`replay_cmd` and `run_together` are also what bench/rule_costs.py runs its pairs with.
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


def replay_cmd(binary, cores, shards, data, state_dir, extra=None):
    """(cmd, env) of `binary replay DATA` pinned to CORES, with a fresh state dir."""
    env = dict(os.environ)
    env.update({
        "RECONWATCH__PIPELINE__SHARDS": str(shards),
        "RECONWATCH__PIPELINE__STATE_DIR": state_dir,
        "RUST_LOG": "warn",
    })
    env.update(extra or {})
    shutil.rmtree(state_dir, ignore_errors=True)
    return ["taskset", "-c", cores, binary, "replay", data], env


def run_together(cmds):
    """Start every (cmd, env) at once; their CPU seconds (user + system, from
    `wait4`) and stderr texts, in order. A failed command raises, with its stderr."""
    procs, files = {}, []
    try:
        for i, (cmd, env) in enumerate(cmds):
            fe = tempfile.TemporaryFile()
            files.append(fe)
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=fe)
            procs[p.pid] = (i, p)
        cpu = [None] * len(cmds)
        while procs:
            pid, status, ru = os.wait4(-1, 0)
            i, p = procs.pop(pid, (None, None))
            if i is None:
                continue
            p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            if p.returncode != 0:
                files[i].seek(0)
                raise RuntimeError(f"{' '.join(cmds[i][0])} failed:\n"
                                   f"{files[i].read().decode(errors='replace')[-3000:]}")
            cpu[i] = ru.ru_utime + ru.ru_stime
        errs = []
        for fe in files:
            fe.seek(0)
            errs.append(fe.read().decode(errors="replace"))
        return cpu, errs
    finally:
        # After a failure, the others are stopped rather than left running.
        for _, p in procs.values():
            p.kill()
            p.wait()
        for fe in files:
            fe.close()


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
            cmds = []
            for name, spec in order:
                path, extra = parse_bin(spec)
                cmds.append(replay_cmd(path, args.cores, args.shards, args.data,
                                       os.path.join(work, name), extra))
            try:
                times, _ = run_together(cmds)
            except RuntimeError as e:
                sys.exit(str(e))
            for (name, _), t in zip(order, times):
                cpu[name].append(t)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [b / a for a, b in zip(cpu["a"], cpu["b"])]
    print(f"A cpu s median {statistics.median(cpu['a']):.3f}   B {statistics.median(cpu['b']):.3f}")
    print(f"B/A paired median {statistics.median(ratios):.3f}  range {min(ratios):.3f}-{max(ratios):.3f}"
          f"  rounds {' '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
