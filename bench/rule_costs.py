#!/usr/bin/env python3
"""What each default rule costs a one-core replay, measured by switching it off.

    python3 bench/rule_costs.py [--rounds 5] [--core 0] [--bin target/release/reconwatch] [DIR]

For each default rule, replay with every rule and replay with that rule disabled
(together with the rules that consume its detections, which cannot run without it)
are started together, pinned to the same core, and each one's CPU time (user +
system, from `wait4`) is read: sharing the core for the whole run, both see the same
slow and fast spells of the host, as in `ab_cpu.py`. A rule's cost is
1 - (CPU without it / CPU with all), the median over rounds, with the range. The same
is done with no rule at all, and with every rule against every rule (an A/A control:
its "cost" is the method's noise).

Each round also runs, one after another: the parse limit (`reconwatch-bench parse`),
replay with every rule and replay with none, for limit / replay ratios.

The table gives the events each rule accepted (the `matched` lines of replay's
summary) and its cost per accepted event. Rules are read from config/rules/*.toml,
the files the binary embeds as its defaults.

DIR defaults to bench/out/main/AWSLogs (made by bench/run.sh); the binaries to
target/release (built by `cargo build --release --bins`). Standard library only.
"""
import argparse
import glob
import os
import re
import shutil
import statistics
import sys
import tempfile
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ab_cpu  # noqa: E402  (bench/ab_cpu.py: replays side by side, their CPU time)
from run import SUMMARY_RE, warm_cache  # noqa: E402  (bench/run.py: replay summary patterns, page cache)


def default_rules():
    """(rule ids in file order, {rule: rules that need it enabled})."""
    ids, needs = [], {}
    for path in sorted(glob.glob(os.path.join(ROOT, "config", "rules", "*.toml"))):
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        for r in doc.get("rule", []):
            ids.append(r["id"])
            uses = []
            corr = r.get("correlation") or {}
            uses += corr.get("require", []) + corr.get("any_of", [])
            trigger = (r.get("new_terms") or {}).get("trigger")
            if trigger:
                uses.append(trigger)
            for u in uses:
                needs.setdefault(u, set()).add(r["id"])
    return ids, needs


def with_dependents(rule, needs):
    """`rule` and every rule that, directly or not, consumes its detections."""
    out, todo = set(), [rule]
    while todo:
        r = todo.pop()
        if r not in out:
            out.add(r)
            todo.extend(needs.get(r, ()))
    return out


def replay_cmd(binary, core, data, disabled, state):
    """The default rules less `disabled`, one shard, pinned to `core`."""
    rules = "[" + ",".join(f'"{r}"' for r in sorted(disabled)) + "]"
    cmd, env = ab_cpu.replay_cmd(binary, core, 1, data, state,
                                 {"RECONWATCH__RULES__DISABLED": rules})
    env.pop("RECONWATCH_CONFIG", None)
    return cmd, env


def matched(summary):
    return {k: int(v) for k, v in re.findall(r"^\s+matched\s+(\S+)\s+(\d+)\s*$", summary, re.M)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=os.path.join(HERE, "out", "main", "AWSLogs"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--core", default="0")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "reconwatch"))
    ap.add_argument("--bench-bin", default=os.path.join(ROOT, "target", "release", "reconwatch-bench"))
    args = ap.parse_args()
    if not os.path.isdir(args.data):
        sys.exit(f"{args.data}: not a directory (bench/run.sh generates the corpus)")

    ids, needs = default_rules()
    # (row label, disabled rules); the first is the A/A control.
    variants = [("none (A/A control)", set())]
    variants += [(r, with_dependents(r, needs)) for r in ids]
    variants.append(("every rule", set(ids)))
    share = {name: [] for name, _ in variants}
    limit, alone_all, alone_none = [], [], []
    accepted, events = {}, None
    work = tempfile.mkdtemp(prefix="rule-costs-")
    try:
        def cmd(disabled, tag):
            return replay_cmd(args.bin, args.core, args.data, disabled, os.path.join(work, tag))

        for rnd in range(args.rounds):
            warm_cache(args.data)
            parse = ["taskset", "-c", args.core, args.bench_bin, "parse", args.data]
            (t,), _ = ab_cpu.run_together([(parse, dict(os.environ))])
            limit.append(t)
            (t,), (err,) = ab_cpu.run_together([cmd(set(), "all")])
            alone_all.append(t)
            accepted = matched(err)
            m = SUMMARY_RE["events"].search(err)
            events = int(m.group(1)) if m else None
            (t,), _ = ab_cpu.run_together([cmd(set(ids), "none")])
            alone_none.append(t)
            k = rnd % len(variants)
            for name, disabled in variants[k:] + variants[:k]:
                # The start order alternates, as in ab_cpu.py.
                pair = [cmd(set(), "a"), cmd(disabled, "b")]
                if rnd % 2 == 0:
                    (full, without), _ = ab_cpu.run_together(pair)
                else:
                    (without, full), _ = ab_cpu.run_together(pair[::-1])
                share[name].append(1 - without / full)
            print(f"[rule_costs] round {rnd + 1}/{args.rounds}: limit {limit[-1]:.3f} s, "
                  f"replay alone {alone_all[-1]:.3f} s, with no rule {alone_none[-1]:.3f} s",
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    full_cpu = statistics.median(alone_all)
    print(f"events: {events}; {args.rounds} rounds on core {args.core}; one-core CPU s alone, "
          f"medians: limit {statistics.median(limit):.3f}, replay {full_cpu:.3f}, "
          f"replay with no rule {statistics.median(alone_none):.3f}")
    print()
    print("| disabled | also disabled (consumers) | events accepted | share of replay CPU: median (range) | ns per accepted event |")
    print("| --- | --- | --- | --- | --- |")
    for name, disabled in variants:
        xs = sorted(share[name])
        med = statistics.median(xs)
        if name == "every rule":
            extra, n = "", sum(accepted.values())
        elif not disabled:
            extra, n = "", 0
        else:
            extra = ", ".join(sorted(disabled - {name})) or "-"
            n = accepted.get(name, 0)
        # A cost per event only where the share is above the A/A control's noise.
        per = f"{med * full_cpu / n * 1e9:.0f}" if n and med > max(share[variants[0][0]]) else "-"
        print(f"| {name} | {extra} | {n:,} | {med * 100:.1f} % ({xs[0] * 100:.1f} to {xs[-1] * 100:.1f}) | {per} |")
    print()
    print("Shares within the A/A control's range are noise. Side by side, each replay also")
    print("evicts the other's cache, so a share is of that CPU time, not of a lone run's.")
    ratio = lambda xs: statistics.median(sorted(lim / x for lim, x in zip(limit, xs)))
    print(f"limit / replay alone, paired median: every rule {ratio(alone_all):.3f}, "
          f"no rule {ratio(alone_none):.3f}")


if __name__ == "__main__":
    main()
