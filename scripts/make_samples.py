#!/usr/bin/env python3
"""Write reconwatch's bundled sample CloudTrail logs (deterministic; SYNTHETIC).

The public datasets in tests/data contain no aws-cli traffic and no multi-region
sweep, so the quick start needs synthetic bursts. Every record here is made up,
with documentation IP ranges (RFC 5737) and example account 111122223333.

    python3 scripts/make_samples.py samples/
"""
import gzip
import json
import os
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

ACCOUNT = "111122223333"
rng = random.Random(20261120)


def eid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rec(t, who, name, source, region, ip, ua, error=None, console=False):
    r = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": ua,
        "requestParameters": None,
        "responseElements": None,
        "requestID": eid(),
        "eventID": eid(),
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                       "clientProvidedHostHeader": f"{source.split('.')[0]}.{region}.amazonaws.com"},
    }
    if error:
        r["errorCode"] = error
        r["errorMessage"] = "synthetic"
    if console:
        r["sessionCredentialFromConsole"] = "true"
    return r


def user(name, key):
    return {"type": "IAMUser", "principalId": "AIDA" + name.upper().replace("-", "")[:12].ljust(12, "X"),
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT,
            "accessKeyId": key, "userName": name}


def role(role_name, session, key):
    return {"type": "AssumedRole", "principalId": f"AROAEXAMPLE{role_name.upper()[:6]}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session}", "accountId": ACCOUNT,
            "accessKeyId": key,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/{role_name}",
                                                 "userName": role_name}}}


def write(root, region, t0, records):
    """One CloudTrail-style object per region and 5-minute slot, records shuffled."""
    rng.shuffle(records)
    d = os.path.join(root, "AWSLogs", ACCOUNT, "CloudTrail", region, t0.strftime("%Y/%m/%d"))
    os.makedirs(d, exist_ok=True)
    suffix = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    name = f"{ACCOUNT}_CloudTrail_{region}_{t0.strftime('%Y%m%dT%H%MZ')}_{suffix}.json.gz"
    body = json.dumps({"Records": records}, separators=(",", ":")).encode()
    # mtime=0 keeps the gzip bytes deterministic.
    with open(os.path.join(d, name), "wb") as f:
        f.write(gzip.compress(body, mtime=0))


CLI = "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/{}"
BOTO = "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8 cfg/retry-mode#legacy Botocore/1.34.69"
CONSOLE = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1",
           "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]


def main(root):
    base = datetime(2026, 11, 20, 10, 0, 0, tzinfo=timezone.utc)
    by_file = {}

    def add(region, r):
        t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        slot = t.replace(minute=t.minute - t.minute % 5, second=0)
        by_file.setdefault((region, slot), []).append(r)

    # Background: normal work by a console user and a deploy role over 30 minutes.
    bob = user("ops-bob", "ASIAEXAMPLEBOB00001")
    for i in range(120):
        t = base + timedelta(seconds=rng.randrange(0, 1800))
        name, src = rng.choice([("DescribeInstances", "ec2.amazonaws.com"), ("GetMetricData", "monitoring.amazonaws.com"),
                                ("ListBuckets", "s3.amazonaws.com"), ("DescribeAlarms", "monitoring.amazonaws.com")])
        add("us-east-1", rec(t, bob, name, src, "us-east-1", "198.51.100.7", CONSOLE, console=True))
    deploy = role("deployer", "gh-actions-4711", "ASIAEXAMPLEDEPLOY01")
    for i in range(80):
        t = base + timedelta(seconds=rng.randrange(0, 1800))
        name, src = rng.choice([("PutObject", "s3.amazonaws.com"), ("UpdateFunctionCode", "lambda.amazonaws.com"),
                                ("DescribeStacks", "cloudformation.amazonaws.com"), ("AssumeRole", "sts.amazonaws.com")])
        add("us-east-1", rec(t, deploy, name, src, "us-east-1", "192.0.2.10", BOTO))

    # 1) aws-cli discovery burst by a leaked developer key, 10:07:08-10:07:15: it
    #    straddles the 10:07:10 bucket edge (Elastic's date_trunc splits it 4 + 8).
    alice = user("dev-alice", "AKIAEXAMPLEALICE001")
    calls = [("GetCallerIdentity", "sts"), ("ListUsers", "iam"), ("ListRoles", "iam"), ("ListPolicies", "iam"),
             ("ListBuckets", "s3"), ("DescribeInstances", "ec2"), ("DescribeSecurityGroups", "ec2"),
             ("DescribeVpcs", "ec2"), ("ListFunctions20150331", "lambda"), ("DescribeDBInstances", "rds"),
             ("ListKeys", "kms"), ("DescribeTrails", "cloudtrail")]
    t = base + timedelta(minutes=7, seconds=8)
    for i, (name, svc) in enumerate(calls):
        ts = t + timedelta(seconds=[0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 6, 7][i])
        cmd = f"{svc}.{name[0].lower()}{name[1:]}"
        add("us-east-1", rec(ts, alice, name, f"{svc}.amazonaws.com", "us-east-1", "203.0.113.50", CLI.format(cmd)))

    # 2) An SDK client (Boto3) with a stolen role session sweeps DescribeInstances
    #    across 12 regions in 20 s (one CloudTrail object per region), after a
    #    first-ever GetCallerIdentity and a discovery burst: rule 1b + rule 2 ->
    #    the rule-3 correlation.
    mallory = role("ci-runner", "i-0a1b2c3d4e5f60718", "ASIAEXAMPLEMALLORY1")
    t = base + timedelta(minutes=21, seconds=30)
    add("us-east-1", rec(t, mallory, "GetCallerIdentity", "sts.amazonaws.com", "us-east-1", "203.0.113.99", BOTO))
    for i, (name, svc) in enumerate([("ListBuckets", "s3"), ("ListUsers", "iam"), ("ListRoles", "iam"),
                                     ("GetAccountAuthorizationDetails", "iam"), ("ListFunctions20150331", "lambda"),
                                     ("DescribeDBInstances", "rds"), ("ListKeys", "kms"), ("DescribeTrails", "cloudtrail"),
                                     ("ListSecrets", "secretsmanager")]):
        add("us-east-1", rec(t + timedelta(seconds=2 + i // 2), mallory, name, f"{svc}.amazonaws.com", "us-east-1",
                             "203.0.113.99", BOTO))
    for i, region in enumerate(REGIONS):
        add(region, rec(t + timedelta(seconds=10 + i * 1.5 // 1), mallory, "DescribeInstances", "ec2.amazonaws.com",
                        region, "203.0.113.99", BOTO))
        if i % 3 == 0:
            add(region, rec(t + timedelta(seconds=11 + i), mallory, "DescribeInstances", "ec2.amazonaws.com", region,
                            "203.0.113.99", BOTO, error="Client.UnauthorizedOperation"))

    for (region, slot), records in sorted(by_file.items()):
        write(root, region, slot, records)
    print(f"wrote {sum(len(v) for v in by_file.values())} records in {len(by_file)} objects under {root}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "samples")
