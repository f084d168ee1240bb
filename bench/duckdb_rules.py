#!/usr/bin/env python3
"""Reference implementation of reconwatch rules 1 and 4 as DuckDB SQL.

Reads CloudTrail objects (`*_CloudTrail_*.json.gz` as delivered to S3, or plain
`.json`, anywhere under DIR), runs the two detections as SQL and prints one JSON
document with timings and hits to stdout:

    PY=$(bash bench/duckdb_env.sh)
    "$PY" bench/duckdb_rules.py DIR [--threads N]

    {"engine":"duckdb","files":..,"events":..,
     "seconds":{"load":..,"rule1":..,"rule4":..,"total":..},
     "rule1_hits":[...],"rule4_hits":[...]}

Rule 1 - Elastic "AWS Discovery API Calls via CLI from a Single Resource", the
tumbling form Elastic's ES|QL computes: per identity ARN and 10-second
date_trunc bucket, more than 5 distinct discovery eventNames via aws-cli.
Rule 4 - API reconnaissance spike: per (identity, source IP) and 10-minute
aligned bin, more than 10 distinct Describe/List/Get eventNames.

"identity" is what reconwatch uses: userIdentity.arn, else principalId, else
accessKeyId, else invokedBy (empty strings count as absent).

Everything after listing the files happens inside DuckDB: `read_json_objects`
reads each object (gunzipping `.gz` itself) as one JSON value, `json_transform`
keeps only the fields the rules use (other keys skipped, wrong-typed values NULL),
`unnest(...Records)` yields one row per record into a table (the "load" timing),
then one GROUP BY per rule.

Why not `read_json(..., format='auto')` + `unnest(Records)`: with schema
auto-detection it infers types from a sample (UUID, TIMESTAMP, MAP, ...) that
later files need not match, and failed with "failed to allocate 1.8 GiB" once
maximum_object_size was raised to 1 GB; with an explicit `columns=` schema it is
correct (same hits) but took 30.5 s to load 1.5 M events where this takes 4-8 s
(DuckDB 2.0.0, 2 cores). Either way the whole `{"Records":[...]}` document must
fit in `maximum_object_size`, so it is set from the largest gunzipped object
(gzip ISIZE trailer), rounded up to a power of two, at least DuckDB's 16 MiB.
"""
import argparse
import json
import os
import resource
import struct
import sys
import time

import duckdb

# Only the fields the rules use, as a json_transform structure: every other key is
# skipped, and a value of the wrong JSON type becomes NULL instead of an error.
RECORDS_STRUCTURE = json.dumps({"Records": [{
    "eventTime": "VARCHAR", "eventSource": "VARCHAR", "eventName": "VARCHAR",
    "sourceIPAddress": "VARCHAR", "userAgent": "VARCHAR", "sessionCredentialFromConsole": "VARCHAR",
    "userIdentity": {"type": "VARCHAR", "arn": "VARCHAR", "principalId": "VARCHAR",
                     "accessKeyId": "VARCHAR", "invokedBy": "VARCHAR"},
}]})

RULE1_SOURCES = [
    "iam.amazonaws.com", "ec2.amazonaws.com", "s3.amazonaws.com", "rds.amazonaws.com",
    "lambda.amazonaws.com", "dynamodb.amazonaws.com", "kms.amazonaws.com",
    "cloudfront.amazonaws.com", "elasticloadbalancing.amazonaws.com",
    "cloudtrail.amazonaws.com", "sts.amazonaws.com", "ses.amazonaws.com",
    "organizations.amazonaws.com",
]

LOAD_SQL = """
CREATE OR REPLACE TEMP TABLE ev AS
WITH objects AS MATERIALIZED (
    -- one row per object: the whole {"Records":[...]} document (gunzipped by DuckDB)
    -- cut down by json_transform to a list of small structs. MATERIALIZED matters:
    -- unnest() straight over json_transform(...) re-evaluated the transform for every
    -- output vector (16 s instead of 1.5 s on a 234 MB object).
    SELECT json_transform(json, '%s').Records AS records
    FROM read_json_objects($files, format = 'unstructured', maximum_object_size = $max_object)
), recs AS (
    SELECT unnest(records) AS r FROM objects
)
SELECT
    coalesce(nullif(r.userIdentity.arn, ''), nullif(r.userIdentity.principalId, ''),
             nullif(r.userIdentity.accessKeyId, ''), nullif(r.userIdentity.invokedBy, ''), '') AS identity,
    r.userIdentity."type"                          AS identity_type,
    epoch_ms(TRY_CAST(r.eventTime AS TIMESTAMPTZ)) AS t_ms,
    r.eventSource                                  AS event_source,
    r.eventName                                    AS event_name,
    nullif(r.sourceIPAddress, '')                  AS source_ip,
    nullif(r.userAgent, '')                        AS user_agent,
    coalesce(lower(r.sessionCredentialFromConsole) = 'true', false) AS console_session
FROM recs
-- reconwatch skips records without eventName / eventSource or with an unparseable eventTime
WHERE nullif(r.eventName, '') IS NOT NULL AND nullif(r.eventSource, '') IS NOT NULL
  AND TRY_CAST(r.eventTime AS TIMESTAMPTZ) IS NOT NULL
""" % RECORDS_STRUCTURE

# The role name in an IAM role / STS assumed-role ARN, as reconwatch's allowlist
# reads it: arn:aws:sts::1:assumed-role/Name/sess -> Name; arn:aws:iam::1:role/path/Name -> Name.
ROLE_NAME_MACRO = r"""
CREATE OR REPLACE TEMP MACRO role_name(arn) AS (
    CASE
        WHEN regexp_extract(arn, '^(?:[^:]*:){5}(.*)$', 1) LIKE 'assumed-role/%'
            THEN split_part(regexp_extract(arn, '^(?:[^:]*:){5}(.*)$', 1), '/', 2)
        WHEN regexp_extract(arn, '^(?:[^:]*:){5}(.*)$', 1) LIKE 'role/%'
            THEN regexp_extract(arn, '([^/]*)$', 1)
    END
)
"""

RULE1_SQL = """
SELECT identity,
       strftime(make_timestamp((t_ms // 10000) * 10000 * 1000), '%%Y-%%m-%%dT%%H:%%M:%%SZ') AS bucket,
       count(DISTINCT event_name) AS distinct_names,
       count(*)                   AS events,
       list(DISTINCT event_name ORDER BY event_name) AS event_names
FROM ev
WHERE (starts_with(event_name, 'Describe') OR starts_with(event_name, 'List')
       OR starts_with(event_name, 'Get') OR starts_with(event_name, 'Generate'))
  AND event_name <> 'DescribeCapacityReservations'
  AND event_source IN (%s)
  AND source_ip IS NOT NULL
  AND NOT console_session
  AND identity_type IS DISTINCT FROM 'AWSService'
  AND starts_with(user_agent, 'aws-cli/')
  AND role_name(identity) IS DISTINCT FROM 'AWSServiceRoleForConfig'
GROUP BY identity, t_ms // 10000
HAVING count(DISTINCT event_name) > 5
ORDER BY bucket, identity
""" % ", ".join("'%s'" % s for s in RULE1_SOURCES)

RULE4_SQL = """
SELECT identity,
       source_ip,
       strftime(make_timestamp((t_ms // 600000) * 600000 * 1000), '%Y-%m-%dT%H:%M:%SZ') AS bin,
       count(DISTINCT event_name) AS distinct_names,
       count(*)                   AS events
FROM ev
WHERE regexp_matches(event_name, '^(Describe|List|Get)')
GROUP BY identity, source_ip, t_ms // 600000
HAVING count(DISTINCT event_name) > 10
ORDER BY bin, identity, source_ip
"""


def list_files(root):
    """CloudTrail objects under root (sorted), and the largest decompressed size."""
    files, biggest = [], 0
    if os.path.isfile(root):
        walk = [(os.path.dirname(root) or ".", [], [os.path.basename(root)])]
    else:
        walk = os.walk(root)
    for d, dirs, names in walk:
        dirs.sort()
        for n in sorted(names):
            if not (n.endswith(".json") or n.endswith(".json.gz")):
                continue
            # skip side files such as the generator's bursts.json
            if "_CloudTrail_" not in n and os.path.isdir(root):
                continue
            p = os.path.join(d, n)
            files.append(p)
            if n.endswith(".gz"):
                with open(p, "rb") as f:      # gzip trailer: ISIZE = size mod 2^32
                    f.seek(-4, os.SEEK_END)
                    size = struct.unpack("<I", f.read(4))[0]
                    size = max(size, os.path.getsize(p))  # >4 GiB wraps; never below compressed
            else:
                size = os.path.getsize(p)
            biggest = max(biggest, size)
    return files, biggest


def main(argv=None):
    ap = argparse.ArgumentParser(description="reconwatch rules 1 and 4 in DuckDB SQL")
    ap.add_argument("dir", help="directory holding CloudTrail .json / .json.gz objects (searched recursively)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 8GB")
    a = ap.parse_args(argv)

    t_start = time.perf_counter()
    files, biggest = list_files(a.dir)
    if not files:
        print(f"duckdb_rules: no *_CloudTrail_*.json[.gz] files under {a.dir}", file=sys.stderr)
        return 2
    # read_json needs one JSON value (the whole {"Records":[...]} object) to fit in
    # maximum_object_size; DuckDB buffers that much per thread, so keep it tight.
    max_object = 16 * 1024 * 1024
    while max_object <= biggest:
        max_object *= 2

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if a.threads:
        con.execute(f"SET threads = {int(a.threads)}")
    if a.memory_limit:
        con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(ROLE_NAME_MACRO)

    t0 = time.perf_counter()
    con.execute(LOAD_SQL, {"files": files, "max_object": max_object})
    events = con.execute("SELECT count(*) FROM ev").fetchone()[0]
    t1 = time.perf_counter()
    r1 = con.execute(RULE1_SQL).fetchall()
    t2 = time.perf_counter()
    r4 = con.execute(RULE4_SQL).fetchall()
    t3 = time.perf_counter()

    out = {
        "engine": "duckdb",
        "duckdb_version": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "files": len(files),
        "events": events,
        "max_object_bytes": biggest,
        "seconds": {"load": round(t1 - t0, 3), "rule1": round(t2 - t1, 3), "rule4": round(t3 - t2, 3),
                    "total": round(t3 - t0, 3), "wall_incl_listing": round(t3 - t_start, 3)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rule1_hits": [{"identity": i, "bucket": b, "distinct": d, "events": n, "event_names": names}
                       for i, b, d, n, names in r1],
        "rule4_hits": [{"identity": i, "source_ip": ip, "bin": b, "distinct": d, "events": n}
                       for i, ip, b, d, n in r4],
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
