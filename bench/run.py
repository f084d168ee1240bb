#!/usr/bin/env python3
"""Whole-process benchmark of reconwatch (driven by bench/run.sh; standard library only).

One run, on the same files, measures:

1. the physical limit on one core: `reconwatch-bench gunzip` (decompress and
   discard) and `reconwatch-bench parse` (gunzip + record split + parse into the
   Event struct, the product's decode path), both single-threaded, each timed
   as replay is, as a whole process by wall clock (their own in-process figure,
   which leaves out start-up and listing the files, is kept beside it);
2. `reconwatch replay` with every default rule: 1 core / 1 shard, 2 cores / 1
   shard, 2 cores / 2 shards (wall time measured here, events and peak RSS from
   the replay summary; alerts to /dev/null);
3. DuckDB running rules 1 and 4 as SQL over the same .json.gz files
   (bench/duckdb_rules.py), 1 thread on 1 core and 2 threads;
4. peak RSS of replay vs the number of active identities (generated datasets
   with a tail of N identities, same event count);
5. peak RSS of replay on one 2 MB object vs one 200 MB object.

"One core" = `taskset -c 0` (when taskset exists). The timed measurements run
in BENCH_REPEAT rounds (default 3), one run of each per round, with each
target's two sides next to each other; the median run is reported, all runs are
kept in bench/out/results.json (with the commit; "+uncommitted" when the
build took changes to src, benches or the Cargo files). Figures are reported
as ratios against the baselines measured in this run, plus the absolute
numbers. The targets are judged on the paired ratios: the median over rounds
of the ratio within one round (`*_paired`, with its range), which the host's
drift over minutes does not skew; the ratio of the medians is printed too.

Environment (all optional):
  BENCH_OUT           output directory                       (bench/out)
  BENCH_HOURS         hours of the main dataset              (16)
  BENCH_EVENTS_PER_HOUR  background events per hour          (62500)  -> ~1.0 M events
  BENCH_IDENTITIES    identities of the main dataset         (500)
  BENCH_ACCOUNTS / BENCH_REGIONS / BENCH_BURSTS / BENCH_SEED (4 / 6 / 32 / 42)
  BENCH_REPEAT        runs per timed measurement             (3)
  BENCH_FETCH_CONCURRENCY  RECONWATCH__S3__FETCH_CONCURRENCY (32, the product default)
  BENCH_ID_SCALES     tail identities for the memory table   ("10000 100000 1000000")
  BENCH_ID_EVENTS     tail events per identity dataset       (1000000)
  BENCH_OBJECT_MB     single-object sizes, MB compressed     ("2 200")
  BENCH_SKIP          comma list of: limits,replay,duckdb,identities,objects
  BENCH_NO_BUILD=1    do not run `cargo build --release --bins`
"""
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.abspath(os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench", "out")))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
FETCH = os.environ.get("BENCH_FETCH_CONCURRENCY", "32")
SKIP = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
TASKSET = ["taskset", "-c", "0"] if shutil.which("taskset") else []
RECONWATCH = os.path.join(ROOT, "target", "release", "reconwatch")
BENCH_BIN = os.path.join(ROOT, "target", "release", "reconwatch-bench")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def env_int(name, default):
    return int(os.environ.get(name, str(default)))


# ------------------------------------------------------------------ datasets
def dataset(name, args):
    """Generate bench/out/<name> with gen_cloudtrail.py unless it exists with the same args."""
    d = os.path.join(OUT, name)
    stamp = os.path.join(d, ".gen.json")
    want = {"args": args}
    if os.path.exists(stamp):
        with open(stamp) as f:
            got = json.load(f)
        if got.get("args") == args:
            log(f"reusing {d} ({got['summary']['events']} events)")
            return d, got["summary"]
    shutil.rmtree(d, ignore_errors=True)
    log(f"generating {d}: gen_cloudtrail.py {' '.join(args)}")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "gen_cloudtrail.py"), "--out", d] + args,
                       check=True, stdout=subprocess.PIPE, text=True)
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    want["summary"] = summary
    with open(stamp, "w") as f:
        json.dump(want, f)
    return d, summary


def logs_dir(d):
    """What replay / the limits read: the AWSLogs tree (bursts.json is not a log)."""
    return os.path.join(d, "AWSLogs")


def warm_cache(path):
    """Read every file once so every measurement starts from the page cache."""
    for root, _, files in os.walk(path):
        for fn in files:
            with open(os.path.join(root, fn), "rb") as f:
                while f.read(1 << 20):
                    pass


# ------------------------------------------------------------------ runners
def timed(cmd, env=None, keep_stdout=True):
    """Run cmd; (wall seconds, stdout text, stderr text, ru_maxrss MB from wait4).

    ru_maxrss counts the forked Python before exec (~15 MB floor), so the report uses
    each program's own peak RSS (VmHWM) instead."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, stdout=fo if keep_stdout else subprocess.DEVNULL, stderr=fe, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{err[-3000:]}")
    return wall, out, err, round(ru.ru_maxrss / 1024, 1)


def limit(mode, path, events=None, repeat=None):
    cmd = TASKSET + [BENCH_BIN, mode, path] + (["--events", str(events)] if events else []) \
        + (["--repeat", str(repeat)] if repeat else [])
    wall, out, _, _ = timed(cmd)
    d = json.loads(out)  # its own VmHWM: wait4's figure includes the forked Python
    if mode != "engine":
        # A limit is timed as replay is: the whole process, wall clock (start-up,
        # listing the files, reading them, exit). The program's own figure
        # starts after it has listed the files, and replay's could not: replay
        # lists, sorts and opens its state inside the same process.
        d["seconds_in_process"] = d["seconds"]
        d["seconds"] = round(wall, 3)
        if d.get("events"):
            d["events_per_sec"] = round(d["events"] / wall)
        d["mb_per_sec"] = round(d["decompressed_bytes"] / 1e6 / wall, 3)
        d["compressed_mb_per_sec"] = round(d["compressed_bytes"] / 1e6 / wall, 3)
    return d


SUMMARY_RE = {
    "events": re.compile(r"^\s+events\s+(\d+)\s*$", re.M),
    "elapsed": re.compile(r"^\s+elapsed s\s+([\d.]+)", re.M),
    "peak_rss_mb": re.compile(r"^\s+peak RSS MB\s+([\d.]+)", re.M),
    "objects": re.compile(r"^\s+objects ok / failed / skipped\s+(\d+) / (\d+) / (\d+)", re.M),
    "late": re.compile(r"^\s+events late / duplicate / no identity\s+(\d+) / (\d+) / (\d+)", re.M),
}


def replay(path, shards, one_core, state_dir):
    env = dict(os.environ)
    env.update({
        "RECONWATCH__PIPELINE__SHARDS": str(shards),
        "RECONWATCH__S3__FETCH_CONCURRENCY": FETCH,
        "RECONWATCH__PIPELINE__STATE_DIR": state_dir,   # empty: no persisted state is read
        "RUST_LOG": "warn",
    })
    env.pop("RECONWATCH_CONFIG", None)
    cmd = (TASKSET if one_core else []) + [RECONWATCH, "replay", path]
    wall, _, err, _ = timed(cmd, env=env, keep_stdout=False)
    m = {k: r.search(err) for k, r in SUMMARY_RE.items()}
    if not m["events"]:
        raise RuntimeError("no replay summary on stderr:\n" + err[-3000:])
    events = int(m["events"].group(1))
    alerts = {a: int(n) for a, n in re.findall(r"^\s+alerts\s+(\S+)\s+(\d+)\s*$", err, re.M)}
    return {
        "shards": shards, "cores": 1 if one_core else os.cpu_count(),
        "fetch_concurrency": int(FETCH),
        "events": events, "seconds": round(wall, 3),
        "events_per_sec": round(events / wall),
        "replay_elapsed_s": float(m["elapsed"].group(1)) if m["elapsed"] else None,
        "peak_rss_mb": float(m["peak_rss_mb"].group(1)) if m["peak_rss_mb"] else None,
        "objects_ok_failed_skipped": [int(x) for x in m["objects"].groups()] if m["objects"] else None,
        "late_dup_noid": [int(x) for x in m["late"].groups()] if m["late"] else None,
        "alerts": alerts,
    }


def duckdb(py, path, threads, one_core):
    cmd = (TASKSET if one_core else []) + [py, os.path.join(ROOT, "bench", "duckdb_rules.py"), path,
                                          "--threads", str(threads)]
    wall, out, _, _ = timed(cmd)
    d = json.loads(out)
    secs = d["seconds"]["wall_incl_listing"]
    return {
        "threads": threads, "cores": 1 if one_core else os.cpu_count(), "events": d["events"],
        "seconds": secs, "seconds_load": d["seconds"]["load"], "seconds_process_wall": round(wall, 3),
        "events_per_sec": round(d["events"] / secs), "peak_rss_mb": d["peak_rss_mb"],
        "rule1_hits": len(d["rule1_hits"]), "rule4_hits": len(d["rule4_hits"]),
    }


def host_ticks():
    """(iowait, steal) clock ticks of all CPUs so far, from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            cpu = f.readline().split()
        return int(cpu[5]), int(cpu[8])
    except (OSError, IndexError, ValueError):
        return None


def rounds(measures, n=REPEAT, warm=None):
    """Run every (key, fn) once per round, n rounds. Per key: the run with
    the median seconds, every run's seconds sorted (`all_seconds`) and in
    round order (`round_events_per_sec`, for the paired ratios).

    `warm`: a directory read through right before each run. This VM's host
    pages out memory it finds cold (DAMON `pageout`), the page cache of the
    dataset included, and a run that then reads from disk measures the disk
    (seen: 2 s of iowait in a 3 s replay). Each run also records the host's
    iowait and steal seconds over it (`host_iowait_s`, `host_steal_s`)."""
    runs = {k: [] for k, _ in measures}
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for i in range(max(1, n)):
        for k, fn in measures:
            log(f"round {i + 1}/{n}: {k}")
            if warm:
                warm_cache(warm)
            before = host_ticks()
            r = fn()
            after = host_ticks()
            if before and after:
                r["host_iowait_s"] = round((after[0] - before[0]) / hz, 2)
                r["host_steal_s"] = round((after[1] - before[1]) / hz, 2)
            runs[k].append(r)
    out = {}
    for k, rs in runs.items():
        ordered = sorted(rs, key=lambda r: r["seconds"])
        best = dict(ordered[len(ordered) // 2])
        best["all_seconds"] = [r["seconds"] for r in ordered]
        best["round_events_per_sec"] = [r["events_per_sec"] for r in rs]
        best["round_host_iowait_s"] = [r.get("host_iowait_s") for r in rs]
        best["round_host_steal_s"] = [r.get("host_steal_s") for r in rs]
        out[k] = best
    return out


def paired(r, a, b):
    """Median, lowest and highest over rounds of a's events/s over b's in
    the same round."""
    xa = (r.get(a) or {}).get("round_events_per_sec") or []
    xb = (r.get(b) or {}).get("round_events_per_sec") or []
    per = [x / y for x, y in zip(xa, xb) if x and y]
    if not per:
        return None
    return {"median": round(statistics.median(per), 3), "min": round(min(per), 3),
            "max": round(max(per), 3), "rounds": [round(v, 3) for v in per]}


# ------------------------------------------------------------------ report
def fmt_int(v):
    return "-" if v is None else f"{v:,.0f}".replace(",", " ")


def ratio(a, b):
    return None if not a or not b else round(a / b, 3)


def table(rows, head):
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main():
    os.makedirs(OUT, exist_ok=True)
    res = {"machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                       "cpu": cpu_model(), "taskset": bool(TASKSET)},
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "repeat": REPEAT}
    if os.environ.get("BENCH_NO_BUILD") != "1":
        log("cargo build --release --bins")
        subprocess.run(["cargo", "build", "--release", "--bins"], cwd=ROOT, check=True)
    res["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                stdout=subprocess.PIPE).stdout.strip()
    # The build takes the work tree as it is: a run of uncommitted code must
    # not be filed under the commit.
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                              "src", "benches", "Cargo.toml", "Cargo.lock"],
                             cwd=ROOT, text=True, stdout=subprocess.PIPE).stdout.strip()
    if changed:
        res["git"] += "+uncommitted"
        res["uncommitted"] = changed.splitlines()
    seed = os.environ.get("BENCH_SEED", "42")
    main_args = ["--seed", seed, "--hours", str(env_int("BENCH_HOURS", 16)),
                 "--events-per-hour", str(env_int("BENCH_EVENTS_PER_HOUR", 62500)),
                 "--identities", str(env_int("BENCH_IDENTITIES", 500)),
                 "--accounts", str(env_int("BENCH_ACCOUNTS", 4)), "--regions", str(env_int("BENCH_REGIONS", 6)),
                 "--bursts", str(env_int("BENCH_BURSTS", 32)), "--jobs", "2"]
    d, gen = dataset("main", main_args)
    res["dataset"] = {"path": d, **gen}
    path = logs_dir(d)
    warm_cache(path)
    state = tempfile.mkdtemp(prefix="reconwatch-bench-state-")
    try:
        # Timed measurements run in rounds, one of each per round, so the two
        # sides of a ratio are measured seconds apart, not minutes: this
        # host's speed drifts by 10-30 % over minutes. The order puts each
        # target's pair side by side.
        if "limits" not in SKIP:
            # The gunzip pass is told the event count (it does not parse);
            # this first parse also warms what the rounds read.
            parse_events = limit("parse", path)["events"]
        if "duckdb" not in SKIP:
            py = subprocess.run(["bash", os.path.join(ROOT, "bench", "duckdb_env.sh")], check=True,
                                stdout=subprocess.PIPE, text=True).stdout.strip()
        measures = [(key, fn) for group, key, fn in [
            ("limits", "limit_parse", lambda: limit("parse", path)),
            ("replay", "replay_1core_1shard", lambda: replay(path, 1, True, state)),
            ("duckdb", "duckdb_1thread", lambda: duckdb(py, d, 1, True)),
            ("limits", "limit_gunzip", lambda: limit("gunzip", path, parse_events)),
            ("replay", "replay_2core_1shard", lambda: replay(path, 1, False, state)),
            ("replay", "replay_2core_2shard", lambda: replay(path, 2, False, state)),
            ("duckdb", "duckdb_2thread", lambda: duckdb(py, d, 2, False)),
        ] if group not in SKIP]
        res.update(rounds(measures, warm=path))
        if "limits" not in SKIP:
            # Not a limit: the rule engine alone on decoded events (its own
            # repeats, in one process, so the decode is paid once).
            log("engine only (1 core)")
            res["engine_only"] = limit("engine", path, repeat=REPEAT)
        if "identities" not in SKIP:
            res["identities"] = []
            n_ev = env_int("BENCH_ID_EVENTS", 1_000_000)
            for n in [int(x) for x in os.environ.get("BENCH_ID_SCALES", "10000 100000 1000000").split()]:
                dd, g = dataset(f"ids_{n}", ["--seed", seed, "--hours", "2", "--events-per-hour", "10000",
                                             "--identities", "200", "--accounts", "4", "--regions", "6",
                                             "--tail-identities", str(n), "--tail-events", str(n_ev),
                                             "--jobs", "2"])
                warm_cache(logs_dir(dd))
                log(f"identities {n}: replay 2 cores / 2 shards")
                r = replay(logs_dir(dd), 2, False, state)
                r.update({"tail_identities_active": g.get("tail_identities_active"),
                          "dataset_events": g["events"], "background_identities": g["identities"]})
                res["identities"].append(r)
        if "objects" not in SKIP:
            res["objects"] = []
            for mb in [float(x) for x in os.environ.get("BENCH_OBJECT_MB", "2 200").split()]:
                tag = f"{mb:g}".replace(".", "_")
                dd, g = dataset(f"object_{tag}mb", ["--seed", seed, "--single-object-mb", f"{mb:g}",
                                                    "--identities", "300", "--events-per-hour", "60000"])
                warm_cache(logs_dir(dd))
                log(f"object {mb:g} MB: replay 2 cores / 2 shards, and 1 core / 1 shard")
                r2 = replay(logs_dir(dd), 2, False, state)
                r1 = replay(logs_dir(dd), 1, True, state)
                dec = limit("parse", logs_dir(dd))
                res["objects"].append({"object_mb": mb, "gz_mb": g["gz_mb"], "raw_mb": g["raw_mb"],
                                       "events": g["events"], "span_secs": g.get("span_secs"),
                                       "replay_2core_2shard": r2, "replay_1core_1shard": r1,
                                       "decode_only": dec})
    finally:
        shutil.rmtree(state, ignore_errors=True)
    res["ratios"] = ratios(res)
    res["targets"] = targets(res["ratios"])
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print(report(res))
    log(f"wrote {os.path.join(OUT, 'results.json')}")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def ratios(r):
    g = lambda k, f="events_per_sec": (r.get(k) or {}).get(f)  # noqa: E731
    out = {
        "replay_1core_over_parse_limit": ratio(g("replay_1core_1shard"), g("limit_parse")),
        "replay_1core_over_gunzip_limit": ratio(g("replay_1core_1shard"), g("limit_gunzip")),
        "parse_limit_over_gunzip_limit": ratio(g("limit_parse"), g("limit_gunzip")),
        "engine_only_over_parse_limit": ratio(g("engine_only"), g("limit_parse")),
        "replay_2core_2shard_over_duckdb_2thread": ratio(g("replay_2core_2shard"), g("duckdb_2thread")),
        "replay_1core_over_duckdb_1thread": ratio(g("replay_1core_1shard"), g("duckdb_1thread")),
        "replay_2shard_over_1shard_2core": ratio(g("replay_2core_2shard"), g("replay_2core_1shard")),
        "replay_2core_2shard_over_1core": ratio(g("replay_2core_2shard"), g("replay_1core_1shard")),
    }
    for name, a, b in [("replay_1core_over_parse_limit", "replay_1core_1shard", "limit_parse"),
                       ("replay_2core_2shard_over_duckdb_2thread", "replay_2core_2shard", "duckdb_2thread"),
                       ("replay_1core_over_duckdb_1thread", "replay_1core_1shard", "duckdb_1thread")]:
        p = paired(r, a, b)
        if p:
            out[name + "_paired"] = p["median"]
            out[name + "_paired_range"] = f"{p['min']}-{p['max']}"
            out[name + "_paired_rounds"] = p["rounds"]
    objs = {o["object_mb"]: o for o in r.get("objects", [])}
    if 2.0 in objs and 200.0 in objs:
        for k in ("replay_2core_2shard", "replay_1core_1shard", "decode_only"):
            a, b = objs[200.0][k]["peak_rss_mb"], objs[2.0][k]["peak_rss_mb"]
            out[f"rss_200mb_minus_2mb_{k}"] = round(a - b, 1)
    ids = r.get("identities") or []
    if len(ids) >= 2:
        lo, hi = ids[0], ids[-1]
        dn = (hi["tail_identities_active"] or 0) - (lo["tail_identities_active"] or 0)
        if dn > 0:
            out["rss_bytes_per_extra_identity"] = round((hi["peak_rss_mb"] - lo["peak_rss_mb"]) * 1e6 / dn)
    return out


def targets(rt):
    out = []

    def check(name, key, ok):
        # The paired figure (same-round ratios) where there is one.
        if rt.get(key + "_paired") is not None:
            key += "_paired"
        v = rt.get(key)
        out.append({"target": name, "key": key, "value": v,
                    "verdict": "-" if v is None else ("met" if ok(v) else "MISSED")})

    check("replay >= 0.8 x gunzip+parse limit (1 core)", "replay_1core_over_parse_limit", lambda v: v >= 0.8)
    check(">= 3 x faster than DuckDB (2 cores each)", "replay_2core_2shard_over_duckdb_2thread", lambda v: v >= 3)
    check(">= 3 x faster than DuckDB (1 core each)", "replay_1core_over_duckdb_1thread", lambda v: v >= 3)
    check("RSS(200 MB object) - RSS(2 MB) <= 50 MB (2 cores)", "rss_200mb_minus_2mb_replay_2core_2shard",
          lambda v: v <= 50)
    check("RSS(200 MB object) - RSS(2 MB) <= 50 MB (1 core)", "rss_200mb_minus_2mb_replay_1core_1shard",
          lambda v: v <= 50)
    check("same, decode path only (reconwatch-bench parse)", "rss_200mb_minus_2mb_decode_only", lambda v: v <= 50)
    return out


def report(r):
    s = []
    ds = r.get("dataset", {})
    s.append(f"machine: {r['machine']['cores']} cores, {r['machine']['cpu']}; git {r.get('git')}; "
             f"median of {r['repeat']} rounds (one run of each timed measurement per round)")
    s.append(f"dataset: {fmt_int(ds.get('events'))} events, {ds.get('files')} objects, "
             f"{ds.get('gz_mb')} MB gzip, {ds.get('raw_mb')} MB raw\n")
    rows = []
    base = (r.get("limit_parse") or {}).get("events_per_sec")
    for key, label in [("limit_gunzip", "limit: gunzip only (1 core)"),
                       ("limit_parse", "limit: gunzip + split + parse (1 core)"),
                       ("engine_only", "rule engine alone, decoded events (1 core)"),
                       ("replay_1core_1shard", "replay, 1 core, 1 shard"),
                       ("replay_2core_1shard", "replay, 2 cores, 1 shard"),
                       ("replay_2core_2shard", "replay, 2 cores, 2 shards"),
                       ("duckdb_1thread", "DuckDB rules 1+4, 1 thread (1 core)"),
                       ("duckdb_2thread", "DuckDB rules 1+4, 2 threads")]:
        x = r.get(key)
        if not x:
            continue
        mbs = x.get("mb_per_sec")
        if mbs is None and x.get("seconds") and ds.get("raw_mb"):
            mbs = round(ds["raw_mb"] / x["seconds"], 1)
        if key == "engine_only":
            mbs = None  # it reads decoded events, not bytes; its RSS holds all of them
        rows.append([label, f"{x['seconds']:.2f}", fmt_int(x.get("events_per_sec")), f"{mbs:.0f}" if mbs else "-",
                     f"{x['events_per_sec'] / base:.2f}" if base and x.get("events_per_sec") else "-",
                     "-" if key == "engine_only" else x.get("peak_rss_mb", "-")])
    s.append(table(rows, ["run", "seconds", "events/s", "MB/s (raw)", "× parse limit", "peak RSS MB"]))
    io = {k: [v for v in (x.get("round_host_iowait_s") or []) if v is not None]
          for k, x in r.items() if isinstance(x, dict)}
    io = {k: v for k, v in io.items() if v}
    if io:
        worst = max(io, key=lambda k: max(io[k]))
        s.append(f"host iowait over the timed runs: {sum(sum(v) for v in io.values()):.2f} s in all, "
                 f"at most {max(io[worst]):.2f} s in one run ({worst}); steal: "
                 f"{sum(sum(v for v in (x.get('round_host_steal_s') or []) if v) for x in r.values() if isinstance(x, dict)):.2f} s")
    rt = r["ratios"]
    s.append("")
    s.append(table([[k, v] for k, v in rt.items() if not k.endswith("_rounds")], ["ratio", "value"]))
    s.append("")
    s.append(table([[t["target"], t["value"], t["verdict"]] for t in r.get("targets", [])],
                   ["target", "measured", "verdict"]))
    if r.get("identities"):
        s.append("")
        s.append(table([[fmt_int(x["tail_identities_active"]), fmt_int(x["dataset_events"]), f"{x['seconds']:.2f}",
                         fmt_int(x["events_per_sec"]), x["peak_rss_mb"]] for x in r["identities"]],
                       ["active tail identities", "events", "seconds", "events/s", "peak RSS MB"]))
    if r.get("objects"):
        s.append("")
        s.append(table([[f"{o['gz_mb']} MB gz / {o['raw_mb']} MB raw", fmt_int(o["events"]),
                         f"{(o.get('span_secs') or 0) / 3600:.1f} h",
                         o["replay_2core_2shard"]["peak_rss_mb"], fmt_int(o["replay_2core_2shard"]["events_per_sec"]),
                         o["replay_1core_1shard"]["peak_rss_mb"], fmt_int(o["replay_1core_1shard"]["events_per_sec"]),
                         o["decode_only"]["peak_rss_mb"]]
                        for o in r["objects"]],
                       ["one object", "events", "event-time span", "replay RSS MB (2 cores/2 shards)", "events/s",
                        "replay RSS MB (1 core/1 shard)", "events/s", "decode-only RSS MB"]))
    return "\n".join(s)


if __name__ == "__main__":
    main()
