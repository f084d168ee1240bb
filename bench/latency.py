#!/usr/bin/env python3
"""Detection latency on LocalStack: object upload → alert at the webhook.

    python3 bench/latency.py [--bursts 100] [--interval 1.0] [--baseline 20]

Starts LocalStack when it is not running (`scripts/localstack.sh start`; it is
left running), creates a trail bucket whose ObjectCreated notifications go to a
fresh SQS queue, starts a webhook receiver (Python http.server) and the release
daemon (`target/release/reconwatch run`, configured only through RECONWATCH__*
variables: SQS long poll 1 s, delete_after = applied, one webhook sink, state in
a temporary directory), then uploads `--bursts` CloudTrail objects, one every
`--interval` seconds (open loop). Each object holds one aws-cli discovery burst
from its own identity (8 distinct Describe/List/Get calls within 4 s, event
times = now), so rule 1 (`discovery_cli`) fires once per object. Latency = the
moment PutObject returned → the moment the webhook received the discovery_cli
alert whose group.identity is that burst's identity (one clock: this process).

Same-run baseline (`--baseline N`, default 20): before the daemon starts,
N objects are uploaded to a second bucket whose notifications go to a second
queue that this script long-polls itself (wait 1 s): upload → notification
received. That is the floor LocalStack's S3 → SQS delivery puts under any
consumer; the report gives the daemon's latency as a ratio of it.

Also reported: the PutObject call itself and PutObject start → webhook (LocalStack
delivers the notification to SQS before PutObject returns, so "upload complete"
is already after the notification). Prints p50 / p90 / p99 / max and writes
bench/out/latency.json. Needs boto3:
when it is not importable, the script re-runs itself with the LocalStack venv's
python (`scripts/localstack.sh awscli` prints that venv's aws; python is next
to it). Environment: LOCALSTACK_ENDPOINT (default http://127.0.0.1:4566).
"""
import argparse
import datetime as dt
import gzip
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    import boto3  # noqa: F401
except ImportError:
    if os.environ.get("LATENCY_REEXEC"):
        sys.exit("bench/latency.py: boto3 is not importable even from the LocalStack venv")
    aws = subprocess.run(["bash", os.path.join(ROOT, "scripts", "localstack.sh"), "awscli"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    py = os.path.join(os.path.dirname(aws), "python")
    os.environ["LATENCY_REEXEC"] = "1"
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
ACCOUNT = "111122223333"
DISCOVERY = [
    ("GetCallerIdentity", "sts"), ("ListUsers", "iam"), ("ListRoles", "iam"), ("ListBuckets", "s3"),
    ("DescribeInstances", "ec2"), ("DescribeVpcs", "ec2"), ("DescribeSecurityGroups", "ec2"),
    ("ListFunctions20150331", "lambda"), ("DescribeDBInstances", "rds"), ("ListKeys", "kms"),
    ("DescribeTrails", "cloudtrail"), ("ListPolicies", "iam"),
]
UA = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/"


def log(msg):
    print(f"[latency] {msg}", file=sys.stderr, flush=True)


def clients():
    kw = dict(endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
              aws_secret_access_key="test")
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}), **kw)
    return s3, boto3.client("sqs", **kw)


def bucket_to_queue(s3, sqs, tag):
    """A bucket whose ObjectCreated notifications go to a new queue; (bucket, queue url)."""
    bucket = f"lat-{tag}-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=f"lat-{tag}-{uuid.uuid4().hex[:10]}",
                           Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    return bucket, url


def cleanup(s3, sqs, bucket, url):
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
        sqs.delete_queue(QueueUrl=url)
    except Exception as e:  # best effort: LocalStack is ephemeral anyway
        log(f"cleanup of {bucket}: {e}")


def burst_object(arn, n=8):
    """(key, gzip bytes): one aws-cli burst of n distinct discovery calls ending now."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    recs = []
    for i in range(n):
        name, svc = DISCOVERY[i % len(DISCOVERY)]
        t = now - dt.timedelta(seconds=(n - 1 - i) // 2)
        recs.append({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDALATENCY", "arn": arn,
                             "accountId": ACCOUNT, "accessKeyId": "AKIALATENCY"},
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": f"{svc}.amazonaws.com",
            "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.77",
            "userAgent": UA + f"{svc}.{name.lower()}", "requestParameters": None, "responseElements": None,
            "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()), "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        })
    slot = now - dt.timedelta(minutes=now.minute % 5, seconds=now.second)
    suffix = "".join(random.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(16))
    key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{now:%Y/%m/%d}/"
           f"{ACCOUNT}_CloudTrail_us-east-1_{slot:%Y%m%dT%H%MZ}_{suffix}.json.gz")
    return key, gzip.compress(json.dumps({"Records": recs}).encode(), 6)


class Hook:
    """Webhook receiver: records (monotonic arrival, alert JSON)."""

    def __init__(self):
        self.received = []
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                t = time.monotonic()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    alert = json.loads(body)
                except ValueError:
                    return
                with hook.cv:
                    hook.received.append((t, alert))
                    hook.cv.notify_all()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def first(self, identity, rule="discovery_cli"):
        with self.lock:
            for t, a in self.received:
                if a.get("group", {}).get("identity") == identity and a.get("rule", {}).get("id") == rule:
                    return t
        return None

    def wait(self, pred, timeout):
        end = time.monotonic() + timeout
        with self.cv:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.5))
        return True


def pct(xs, p):
    """Nearest-rank percentile."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def stats(xs):
    if not xs:
        return None
    return {"n": len(xs), "min": round(min(xs), 3), "p50": round(pct(xs, 50), 3), "p90": round(pct(xs, 90), 3),
            "p99": round(pct(xs, 99), 3), "max": round(max(xs), 3), "mean": round(statistics.fmean(xs), 3)}


def baseline(s3, sqs, n, interval):
    """Upload → S3 notification received on SQS (long poll 1 s), n samples."""
    bucket, url = bucket_to_queue(s3, sqs, "base")
    pending, lat = {}, []
    stop = threading.Event()

    def poll():
        while not stop.is_set() or pending:
            r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            t = time.monotonic()
            for m in r.get("Messages", []):
                body = json.loads(m["Body"])
                for rec in body.get("Records", []):
                    k = rec.get("s3", {}).get("object", {}).get("key")
                    if k in pending:
                        lat.append(t - pending.pop(k))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if stop.is_set() and time.monotonic() > deadline:
                return

    deadline = float("inf")
    th = threading.Thread(target=poll, daemon=True)
    th.start()
    for i in range(n):
        key, body = burst_object(f"arn:aws:iam::{ACCOUNT}:user/lat-baseline-{i}")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        pending[key] = time.monotonic()
        time.sleep(interval)
    deadline = time.monotonic() + 30
    stop.set()
    th.join(35)
    cleanup(s3, sqs, bucket, url)
    return lat, len(pending)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bursts", type=int, default=100)
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between uploads (open loop)")
    ap.add_argument("--baseline", type=int, default=20, help="S3→SQS baseline samples (0 = skip)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the last alerts")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "reconwatch"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "out", "latency.json"))
    a = ap.parse_args()
    if not os.path.exists(a.binary):
        sys.exit(f"{a.binary} missing: run `cargo build --release --bins` first")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "localstack.sh"), "start"], check=True)
    s3, sqs = clients()
    result = {"endpoint": ENDPOINT, "bursts": a.bursts, "interval_secs": a.interval,
              "sqs_wait_time_secs": 1, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if a.baseline:
        log(f"baseline: {a.baseline} uploads → S3 notification received by this script")
        lat, lost = baseline(s3, sqs, a.baseline, a.interval / 2)
        result["baseline_s3_to_sqs"] = stats(lat)
        result["baseline_lost"] = lost

    bucket, url = bucket_to_queue(s3, sqs, "trail")
    hook = Hook()
    tmp = tempfile.mkdtemp(prefix="reconwatch-latency-")
    env = dict(os.environ)
    env.pop("RECONWATCH_CONFIG", None)
    env.update({
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "RUST_LOG": "info",
        "RECONWATCH__AWS__ENDPOINT_URL": ENDPOINT,
        "RECONWATCH__SQS__QUEUE_URL": url,
        "RECONWATCH__SQS__WAIT_TIME_SECS": "1",
        "RECONWATCH__SQS__DELETE_AFTER": "applied",
        "RECONWATCH__SINKS": f'[{{type="webhook",url="http://127.0.0.1:{hook.port}/hook"}}]',
        "RECONWATCH__TELEMETRY__HTTP_LISTEN": "127.0.0.1:0",
        "RECONWATCH__PIPELINE__STATE_DIR": os.path.join(tmp, "state"),
    })
    daemon_log = os.path.join(tmp, "daemon.log")
    with open(daemon_log, "w") as lf:
        daemon = subprocess.Popen([a.binary, "run"], env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=lf)
    try:
        run_id = uuid.uuid4().hex[:8]
        # Warm-up: proves the path end to end (and lets the daemon settle) before timing.
        warm = f"arn:aws:iam::{ACCOUNT}:user/lat-{run_id}-warmup"
        key, body = burst_object(warm)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        log("warm-up burst uploaded; waiting for its alert")
        if not hook.wait(lambda: hook.first(warm) is not None or daemon.poll() is not None, 120) \
                or daemon.poll() is not None:
            raise SystemExit("no alert for the warm-up burst within 120 s; daemon log:\n"
                             + open(daemon_log).read()[-4000:])
        uploads = []
        log(f"{a.bursts} bursts, one every {a.interval} s")
        t_next = time.monotonic()
        for i in range(a.bursts):
            arn = f"arn:aws:iam::{ACCOUNT}:user/lat-{run_id}-{i:03d}"
            key, body = burst_object(arn)
            t0 = time.monotonic()
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            uploads.append((arn, t0, time.monotonic()))
            t_next += a.interval
            time.sleep(max(0.0, t_next - time.monotonic()))
        hook.wait(lambda: all(hook.first(u[0]) is not None for u in uploads), a.timeout)
        lat, lat_start, put, missing = [], [], [], []
        for arn, t0, t1 in uploads:
            put.append(t1 - t0)
            got = hook.first(arn)
            if got is None:
                missing.append(arn)
            else:
                lat.append(got - t1)
                lat_start.append(got - t0)
        result["upload_to_webhook"] = stats(lat)
        result["upload_start_to_webhook"] = stats(lat_start)
        result["put_object_call"] = stats(put)
        result["missing_alerts"] = len(missing)
        result["samples_secs"] = [round(x, 3) for x in lat]
        result["webhook_requests"] = len(hook.received)
        b = result.get("baseline_s3_to_sqs")
        if b and result["upload_to_webhook"]:
            u = result["upload_to_webhook"]
            result["ratio_to_baseline"] = {k: round(u[k] / b[k], 2) if b[k] else None for k in ("p50", "p90", "p99")}
            result["added_over_baseline_secs"] = {k: round(u[k] - b[k], 3) for k in ("p50", "p90", "p99")}
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            result["daemon_exit"] = daemon.wait(40)
        except subprocess.TimeoutExpired:
            daemon.kill()
            result["daemon_exit"] = "killed"
        hook.server.shutdown()
        cleanup(s3, sqs, bucket, url)
        shutil.rmtree(tmp, ignore_errors=True)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    u, b = result.get("upload_to_webhook"), result.get("baseline_s3_to_sqs")
    us, po = result.get("upload_start_to_webhook"), result.get("put_object_call")
    print("| measurement | n | p50 s | p90 s | p99 s | max s |")
    print("| --- | --- | --- | --- | --- | --- |")
    if b:
        print(f"| upload → S3 notification on SQS (baseline) | {b['n']} | {b['p50']} | {b['p90']} | {b['p99']} | {b['max']} |")
    if u:
        print(f"| upload → alert at the webhook (reconwatch) | {u['n']} | {u['p50']} | {u['p90']} | {u['p99']} | {u['max']} |")
        print(f"| PutObject call (LocalStack) | {po['n']} | {po['p50']} | {po['p90']} | {po['p99']} | {po['max']} |")
        print(f"| PutObject start → alert at the webhook | {us['n']} | {us['p50']} | {us['p90']} | {us['p99']} | {us['max']} |")
    print(f"missing alerts: {result['missing_alerts']}; daemon exit: {result['daemon_exit']}; wrote {a.out}")
    return 0 if u and not result["missing_alerts"] else 1


if __name__ == "__main__":
    sys.exit(main())
