#!/usr/bin/env python3
"""Deterministic synthetic AWS CloudTrail generator for reconwatch's benchmarks.

Standard library only. Every record is SYNTHETIC: documentation IP ranges
(RFC 5737: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), made-up account IDs,
keys and resource names.

Layout (as CloudTrail delivers it to S3), one gzip object per
account / region / 5-minute slot, records shuffled inside each object:

    DIR/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 alnum>.json.gz

Usage:

    python3 bench/gen_cloudtrail.py --out /tmp/ct --seed 42 --hours 24 \\
        --events-per-hour 60000 --identities 400 --accounts 4 --regions 6 --bursts 24
    python3 bench/gen_cloudtrail.py --out /tmp/ct1 --seed 42 --single-object-mb 64

`--bursts B` injects B reconnaissance bursts (ground truth in DIR/bursts.json):
aws-cli bursts inside one 10-s bucket, aws-cli bursts straddling a 10-s edge
(some split 4-5 / 4-5 so tumbling windows cannot see them), Boto3 bursts, and
12-region DescribeInstances sweeps in < 30 s (these write objects for all 12
regions, whatever --regions says).
`--single-object-mb M` writes ONE object of about M MB (10^6 bytes) compressed
instead (account 111122223333, us-east-1); its eventTimes advance at
--events-per-hour, so a big object spans hours (no region sweeps in this mode).
The same arguments always give byte-identical files (gzip header mtime = 0;
every random choice comes from seeded `random.Random`, one per hour, so
`--jobs` does not change the output). Prints a JSON summary (events/s, sizes).
"""
import argparse
import bisect
import json
import os
import random
import sys
import time
import zlib
from datetime import datetime, timezone

EVENT_VERSION = "1.09"
GZIP_LEVEL = 6
SLOT_SECS = 300
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
KEYCHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
HEX = "0123456789abcdef"

ALL_REGIONS = [
    "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "us-east-2", "ap-southeast-2",
    "ap-northeast-1", "eu-west-2", "ap-south-1", "ca-central-1", "sa-east-1", "ap-southeast-1",
    "eu-north-1", "us-west-1", "ap-northeast-2", "eu-west-3", "ap-northeast-3",
]
# The 12 regions an attacker's DescribeInstances sweep walks through.
SWEEP_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
    "eu-central-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1",
]

# --------------------------------------------------------------------------
# Event catalogue: eventSource prefix -> (aws-cli service name, go-v2 api
# version, "Name:weight ..."). Weights are relative call volumes in a typical
# organisation trail with S3/DynamoDB data events enabled.
# --------------------------------------------------------------------------
CATALOG = {
    "ec2": ("ec2", "1.152.0",
            "DescribeInstances:40 DescribeInstanceStatus:15 DescribeSecurityGroups:12 DescribeVpcs:8 "
            "DescribeSubnets:10 DescribeVolumes:8 DescribeSnapshots:5 DescribeImages:8 "
            "DescribeNetworkInterfaces:12 DescribeRouteTables:4 DescribeAddresses:3 DescribeKeyPairs:2 "
            "DescribeRegions:4 DescribeAvailabilityZones:6 DescribeTags:10 DescribeLaunchTemplates:3 "
            "DescribeLaunchTemplateVersions:3 DescribeInstanceTypes:3 DescribeCapacityReservations:1 "
            "DescribeVpcEndpoints:2 DescribeNatGateways:1 RunInstances:1 TerminateInstances:0.8 "
            "StartInstances:0.4 StopInstances:0.4 CreateTags:2 CreateSnapshot:0.5 DeleteSnapshot:0.3 "
            "CreateVolume:0.3 AttachVolume:0.3 AuthorizeSecurityGroupIngress:0.2 "
            "CreateNetworkInterface:1 DeleteNetworkInterface:1 GetConsoleOutput:0.1"),
    "iam": ("iam", "1.31.3",
            "GetRole:6 GetRolePolicy:2 ListRoles:2 ListRolePolicies:2 ListAttachedRolePolicies:3 "
            "GetPolicy:2 GetPolicyVersion:2 ListPolicies:1 GetUser:2 ListUsers:1 ListAccessKeys:1 "
            "ListGroupsForUser:0.5 GetAccountSummary:0.3 ListMFADevices:0.3 GenerateCredentialReport:0.1 "
            "GetCredentialReport:0.1 GetAccountAuthorizationDetails:0.05 ListInstanceProfiles:0.5 "
            "GetInstanceProfile:1 CreateRole:0.05 AttachRolePolicy:0.05 PutRolePolicy:0.05 "
            "CreateAccessKey:0.02 TagRole:0.05"),
    "sts": ("sts", "1.28.6",
            "AssumeRole:60 GetCallerIdentity:10 AssumeRoleWithWebIdentity:10 GetSessionToken:0.5 "
            "AssumeRoleWithSAML:1"),
    "s3": ("s3api", "1.53.1",
           "ListBuckets:3 GetBucketLocation:8 GetBucketAcl:5 GetBucketPolicy:2 GetBucketVersioning:3 "
           "GetBucketEncryption:3 GetBucketTagging:2 GetBucketPublicAccessBlock:2 GetBucketLogging:1 "
           "GetBucketOwnershipControls:1 PutBucketTagging:0.05 PutBucketPolicy:0.05 "
           "GetObject:35 PutObject:15 HeadObject:10 ListObjects:6 DeleteObject:2 CopyObject:1"),
    "lambda": ("lambda", "1.53.1",
               "ListFunctions20150331:2 GetFunction20150331v2:2 GetFunctionConfiguration20150331v2:2 "
               "GetPolicy20150331v2:0.5 ListEventSourceMappings20150331:0.5 "
               "ListVersionsByFunction20150331:0.3 ListTags20170331:0.5 UpdateFunctionCode20150331v2:0.1 "
               "UpdateFunctionConfiguration20150331v2:0.1"),
    "logs": ("logs", "1.35.0",
             "CreateLogStream:30 DescribeLogGroups:4 DescribeLogStreams:4 CreateLogGroup:0.5 "
             "PutRetentionPolicy:0.1 DescribeMetricFilters:0.5 DescribeSubscriptionFilters:0.3 "
             "StartQuery:0.2 GetQueryResults:0.5"),
    "kms": ("kms", "1.30.1",
            "Decrypt:45 GenerateDataKey:25 Encrypt:3 DescribeKey:5 ListAliases:1 ListKeys:0.5 "
            "GetKeyPolicy:0.3 GetKeyRotationStatus:0.3 ListResourceTags:0.2 CreateGrant:0.5"),
    "dynamodb": ("dynamodb", "1.31.1",
                 "DescribeTable:6 ListTables:1 DescribeContinuousBackups:0.5 DescribeTimeToLive:0.5 "
                 "ListTagsOfResource:0.5 GetItem:6 PutItem:3 UpdateItem:3 Query:4"),
    "rds": ("rds", "1.76.0",
            "DescribeDBInstances:5 DescribeDBClusters:3 DescribeDBSnapshots:1 DescribeDBClusterSnapshots:0.5 "
            "DescribeDBEngineVersions:0.5 DescribeDBParameterGroups:0.5 DescribeDBSubnetGroups:0.5 "
            "DescribeEvents:0.5 ListTagsForResource:1 CreateDBSnapshot:0.05"),
    "cloudformation": ("cloudformation", "1.50.0",
                       "DescribeStacks:6 DescribeStackEvents:2 DescribeStackResources:1 ListStacks:1 "
                       "GetTemplate:0.5 ListStackResources:1 DescribeChangeSet:0.3 CreateChangeSet:0.05 "
                       "UpdateStack:0.05"),
    "ssm": ("ssm", "1.49.5",
            "GetParameter:12 GetParameters:8 GetParametersByPath:3 DescribeInstanceInformation:3 "
            "UpdateInstanceInformation:8 ListAssociations:2 DescribeParameters:1 PutParameter:0.1 "
            "SendCommand:0.05"),
    "secretsmanager": ("secretsmanager", "1.28.6",
                       "GetSecretValue:10 DescribeSecret:2 ListSecrets:0.5 PutSecretValue:0.05"),
    "sns": ("sns", "1.29.3", "ListTopics:0.5 GetTopicAttributes:1 ListSubscriptionsByTopic:0.3 Subscribe:0.02"),
    "sqs": ("sqs", "1.31.3", "GetQueueAttributes:4 ListQueues:1 GetQueueUrl:3 SetQueueAttributes:0.05"),
    "cloudtrail": ("cloudtrail", "1.39.1",
                   "DescribeTrails:1 GetTrailStatus:1 ListTrails:0.5 GetEventSelectors:0.5 LookupEvents:1 "
                   "GetInsightSelectors:0.3"),
    "elasticloadbalancing": ("elbv2", "1.30.4",
                             "DescribeLoadBalancers:3 DescribeTargetGroups:2 DescribeTargetHealth:6 "
                             "DescribeListeners:1 DescribeTags:1 DescribeLoadBalancerAttributes:0.5 "
                             "RegisterTargets:0.3 DeregisterTargets:0.3"),
    "ecs": ("ecs", "1.41.5",
            "DescribeServices:3 DescribeTasks:3 ListTasks:3 DescribeTaskDefinition:1 ListClusters:0.5 "
            "DescribeClusters:1 ListServices:1 RunTask:0.2 UpdateService:0.1"),
    "ecr": ("ecr", "1.27.3",
            "GetAuthorizationToken:4 BatchGetImage:3 GetDownloadUrlForLayer:3 DescribeRepositories:0.5 "
            "DescribeImages:1 ListImages:0.5 BatchCheckLayerAvailability:0.5"),
    "autoscaling": ("autoscaling", "1.40.3",
                    "DescribeAutoScalingGroups:5 DescribeAutoScalingInstances:1 DescribeScalingActivities:0.5 "
                    "SetDesiredCapacity:0.05"),
    "monitoring": ("cloudwatch", "1.36.1",
                   "DescribeAlarms:4 GetMetricData:3 ListMetrics:1 PutMetricAlarm:0.1 DescribeAlarmHistory:0.2"),
    "route53": ("route53", "1.40.3", "ListHostedZones:1 GetHostedZone:0.5 ListResourceRecordSets:2 "
                "ChangeResourceRecordSets:0.2 GetChange:0.3"),
    "organizations": ("organizations", "1.26.1", "DescribeOrganization:0.5 ListAccounts:0.3 DescribeAccount:0.2"),
    "config": ("configservice", "1.46.5", "DescribeConfigRules:0.3 PutEvaluations:1 "
               "DescribeConfigurationRecorderStatus:0.3"),
    "cloudfront": ("cloudfront", "1.35.1", "ListDistributions:0.3 GetDistribution:0.2"),
    "ses": ("ses", "1.22.1", "ListIdentities:0.2 GetSendQuota:0.2"),
    "eks": ("eks", "1.42.1", "DescribeCluster:1 ListClusters:0.3 ListNodegroups:0.2 DescribeNodegroup:0.2"),
}
GLOBAL_SERVICES = {"iam", "organizations", "cloudfront", "route53"}
DATA_EVENTS = {
    ("s3", "GetObject"), ("s3", "PutObject"), ("s3", "HeadObject"), ("s3", "ListObjects"),
    ("s3", "DeleteObject"), ("s3", "CopyObject"),
    ("dynamodb", "GetItem"), ("dynamodb", "PutItem"), ("dynamodb", "UpdateItem"), ("dynamodb", "Query"),
}
READ_PREFIXES = ("Describe", "List", "Get", "Head", "Lookup", "BatchGet", "BatchCheck", "Query")
READ_ONLY_EXTRA = {"Decrypt", "Encrypt", "GenerateDataKey", "AssumeRole", "AssumeRoleWithWebIdentity",
                   "AssumeRoleWithSAML", "StartQuery"}

# Discovery calls an attacker runs (rule 1's eventSource list; S3 calls carry
# CloudTrail's bracketed user agent, so they do not count for aws-cli matches).
BURST_POOL = [
    ("sts", "GetCallerIdentity"), ("iam", "ListUsers"), ("iam", "ListRoles"), ("iam", "ListPolicies"),
    ("iam", "GetAccountAuthorizationDetails"), ("iam", "ListAccessKeys"), ("iam", "GetAccountSummary"),
    ("iam", "ListGroupsForUser"), ("iam", "ListAttachedRolePolicies"), ("iam", "GenerateCredentialReport"),
    ("iam", "GetCredentialReport"), ("iam", "ListMFADevices"), ("iam", "ListInstanceProfiles"), ("iam", "GetUser"),
    ("ec2", "DescribeInstances"), ("ec2", "DescribeVpcs"), ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeSecurityGroups"), ("ec2", "DescribeSnapshots"), ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeKeyPairs"), ("ec2", "DescribeRegions"), ("ec2", "DescribeAddresses"),
    ("ec2", "DescribeImages"), ("ec2", "DescribeRouteTables"), ("ec2", "DescribeNetworkInterfaces"),
    ("s3", "ListBuckets"), ("s3", "GetBucketAcl"), ("s3", "GetBucketPolicy"),
    ("rds", "DescribeDBInstances"), ("rds", "DescribeDBClusters"), ("rds", "DescribeDBSnapshots"),
    ("lambda", "ListFunctions20150331"), ("lambda", "GetFunction20150331v2"),
    ("lambda", "ListEventSourceMappings20150331"),
    ("kms", "ListKeys"), ("kms", "ListAliases"), ("kms", "DescribeKey"), ("kms", "GetKeyPolicy"),
    ("dynamodb", "ListTables"), ("dynamodb", "DescribeTable"),
    ("cloudtrail", "DescribeTrails"), ("cloudtrail", "GetTrailStatus"), ("cloudtrail", "GetEventSelectors"),
    ("elasticloadbalancing", "DescribeLoadBalancers"), ("elasticloadbalancing", "DescribeTargetGroups"),
    ("organizations", "DescribeOrganization"), ("organizations", "ListAccounts"),
    ("ses", "ListIdentities"), ("ses", "GetSendQuota"), ("cloudfront", "ListDistributions"),
]
RULE1_SOURCES = {"iam", "ec2", "s3", "rds", "lambda", "dynamodb", "kms", "cloudfront", "elasticloadbalancing",
                 "cloudtrail", "sts", "ses", "organizations"}

# Workload profiles of the busy service roles: (service, eventName) -> weight.
PROFILES = {
    "lambda-app": {("logs", "CreateLogStream"): 30, ("kms", "Decrypt"): 10, ("dynamodb", "GetItem"): 15,
                   ("dynamodb", "PutItem"): 6, ("dynamodb", "UpdateItem"): 6, ("dynamodb", "Query"): 8,
                   ("s3", "GetObject"): 10, ("s3", "PutObject"): 5, ("ssm", "GetParameter"): 4,
                   ("secretsmanager", "GetSecretValue"): 3, ("sqs", "GetQueueAttributes"): 2},
    "eks-node": {("ec2", "DescribeInstances"): 20, ("ec2", "DescribeNetworkInterfaces"): 12,
                 ("ec2", "CreateNetworkInterface"): 3, ("ec2", "DeleteNetworkInterface"): 3,
                 ("ecr", "GetAuthorizationToken"): 10, ("ecr", "BatchGetImage"): 8,
                 ("ecr", "GetDownloadUrlForLayer"): 8, ("autoscaling", "DescribeAutoScalingGroups"): 6,
                 ("elasticloadbalancing", "DescribeTargetHealth"): 10, ("ec2", "DescribeTags"): 5,
                 ("sts", "AssumeRoleWithWebIdentity"): 3, ("ec2", "DescribeInstanceStatus"): 4},
    "etl-batch": {("s3", "GetObject"): 40, ("s3", "PutObject"): 20, ("s3", "HeadObject"): 15,
                  ("s3", "ListObjects"): 10, ("kms", "Decrypt"): 15, ("kms", "GenerateDataKey"): 12,
                  ("s3", "DeleteObject"): 2, ("s3", "CopyObject"): 2},
    "ssm-agent": {("ssm", "UpdateInstanceInformation"): 20, ("ssm", "ListAssociations"): 10,
                  ("ssm", "GetParameters"): 8, ("logs", "CreateLogStream"): 6, ("ec2", "DescribeTags"): 4,
                  ("kms", "Decrypt"): 4},
    "ecs-task": {("ecs", "DescribeTasks"): 8, ("ecs", "ListTasks"): 8, ("ecs", "DescribeServices"): 6,
                 ("ecr", "GetAuthorizationToken"): 6, ("logs", "CreateLogStream"): 15,
                 ("secretsmanager", "GetSecretValue"): 10, ("kms", "Decrypt"): 10, ("sqs", "GetQueueUrl"): 8,
                 ("sqs", "GetQueueAttributes"): 5, ("ssm", "GetParameters"): 6},
    "monitoring": {("monitoring", "GetMetricData"): 20, ("monitoring", "DescribeAlarms"): 10,
                   ("monitoring", "ListMetrics"): 5, ("ec2", "DescribeInstances"): 8,
                   ("rds", "DescribeDBInstances"): 4, ("elasticloadbalancing", "DescribeLoadBalancers"): 4,
                   ("elasticloadbalancing", "DescribeTargetGroups"): 3},
}

FIRST_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
               "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "ursula", "victor", "walter", "xena",
               "yusuf", "zoe", "amir", "bea", "chen", "dmitri", "elif", "farah", "goran", "hana", "ines",
               "jonas", "kenji", "lena", "marek", "nora", "otto", "priya", "quinn", "rosa", "sven", "tariq"]
WORDS = ["orders", "billing", "ledger", "events", "media", "reports", "profiles", "catalog", "sessions",
         "invoices", "audit", "metrics", "exports", "ingest", "archive", "search", "payments", "users"]

CLI_VERSIONS = ["2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22",
                "2.13.25 Python/3.11.5 Darwin/23.1.0 exe/x86_64",
                "2.17.9 Python/3.11.9 Linux/5.15.0-1061-aws exe/x86_64.amzn.2",
                "2.22.4 Python/3.12.6 Windows/10 exe/AMD64",
                "1.32.69 Python/3.9.18 Linux/6.1.79-99.164.amzn2023.x86_64 botocore/1.34.69"]
BOTO_UAS = ["Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79-99.164.amzn2023.x86_64 md/arch#x86_64 "
            "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
            "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#5.10.226-214.880.amzn2.x86_64 md/arch#x86_64 "
            "lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
            "Botocore/1.35.36",
            "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/macos#23.0.0 md/arch#arm64 lang/python#3.11.6 "
            "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57"]
GO_UA = "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/"
JAVA_UA = ("aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS "
           "Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy")
TERRAFORM_UA = ("APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 "
                "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0 (go1.21.8; linux; "
                "amd64) HashiCorp-terraform-exec/0.20.0")
CONSOLE_UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/131.0.0.0 Safari/537.36",
               "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/17.4 Safari/605.1.15",
               "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"]
S3_CONSOLE_UA = ("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.750 Linux/5.10.226-192.879.amzn2int.x86_64 "
                 "OpenJDK_64-Bit_Server_VM/25.422-b06 java/1.8.0_422 vendor/Oracle_Corporation cfg/retry-mode/standard]")
TLS12 = ('"tlsVersion":"TLSv1.2","cipherSuite":"ECDHE-RSA-AES128-GCM-SHA256"')
TLS13 = ('"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256"')


# ---------------------------------------------------------------- helpers
def rhex(r, n):
    return "%0*x" % (n, r.getrandbits(4 * n))


def ruuid(r):
    h = "%032x" % r.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def rkey(r, prefix, n=16):
    return prefix + "".join(r.choice(KEYCHARS) for _ in range(n))


def ralnum(r, n):
    return "".join(r.choice(ALNUM) for _ in range(n))


def kebab(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("-")
        out.append(c.lower())
    return "".join(out)


def strip_version(name):
    """ListFunctions20150331 -> ListFunctions (lambda's versioned event names)."""
    i = len(name)
    while i and (name[i - 1].isdigit() or name[i - 1] == "v"):
        i -= 1
    return name[:i] if i < len(name) and any(ch.isdigit() for ch in name[i:]) else name


def lcfirst(s):
    return s[:1].lower() + s[1:]


def dumps(o):
    return json.dumps(o, separators=(",", ":"))


def fmt_time(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def is_read(name):
    return name.startswith(READ_PREFIXES) or name in READ_ONLY_EXTRA


# ----------------------------------------------------- request / response
# Placeholders filled per record: @@A@@ account, @@R@@ region, @@RID@@ requestID.
def tags(r, n):
    keys = ["Name", "env", "team", "cost-center", "app", "owner", "managed-by"]
    return [{"key": k, "value": r.choice(["prod", "staging", "platform", "data", r.choice(WORDS),
                                          "terraform", "cc-%04d" % r.randrange(10000)])}
            for k in r.sample(keys, n)]


def make_params(svc, name, r):
    """(requestParameters, responseElements, resources, additionalEventData) for one variant."""
    A, R = "@@A@@", "@@R@@"
    w = r.choice(WORDS)
    bucket = f"acme-{w}-@@A@@-@@R@@"
    inst = "i-0" + rhex(r, 16)
    key_arn = f"arn:aws:kms:{R}:{A}:key/{ruuid(r)}"
    role_arn = f"arn:aws:iam::{A}:role/{w}-service-role"
    res = None
    aed = None
    req = None
    resp = None

    if svc == "sts":
        sess = r.choice([f"botocore-session-{1763600000 + r.randrange(100000)}", inst, f"{w}-worker",
                         "aws-go-sdk-" + str(1763600000000000000 + r.getrandbits(40))])
        if name.startswith("AssumeRole"):
            req = {"roleArn": role_arn, "roleSessionName": sess, "durationSeconds": 3600}
            if name == "AssumeRoleWithWebIdentity":
                req = {"roleArn": role_arn, "roleSessionName": sess}
            if name == "AssumeRoleWithSAML":
                req = {"roleArn": role_arn, "principalArn": f"arn:aws:iam::{A}:saml-provider/Okta",
                       "durationSeconds": 43200}
            token = "IQoJb3JpZ2luX2VjE" + "".join(r.choice(ALNUM + "+/") for _ in range(r.choice([180, 240, 320])))
            resp = {"credentials": {"accessKeyId": rkey(r, "ASIA"), "sessionToken": token,
                                    "expiration": "Nov 20, 2026, 11:%02d:%02d AM" % (r.randrange(60), r.randrange(60))},
                    "assumedRoleUser": {"assumedRoleId": rkey(r, "AROA", 17) + ":" + sess,
                                        "arn": f"arn:aws:sts::{A}:assumed-role/{w}-service-role/{sess}"}}
            if name == "AssumeRoleWithWebIdentity":
                oidc = f"oidc.eks.{R}.amazonaws.com/id/{rhex(r, 32).upper()}"
                resp.update({"subjectFromWebIdentityToken": f"system:serviceaccount:{w}:{w}-sa",
                             "audience": "sts.amazonaws.com", "provider": f"arn:aws:iam::{A}:oidc-provider/{oidc}"})
            res = [{"accountId": A, "type": "AWS::IAM::Role", "ARN": role_arn}]
        elif name == "GetCallerIdentity":
            req = None
        else:
            req = {"durationSeconds": 43200}
            resp = {"credentials": {"accessKeyId": rkey(r, "ASIA"), "expiration": "Nov 21, 2026, 10:00:00 PM",
                                    "sessionToken": "FwoGZXIvYXdzE" + ralnum(r, 300)}}
    elif svc == "kms":
        ctx = r.choice([{"aws:s3:arn": f"arn:aws:s3:::{bucket}/{w}/"},
                        {"aws:lambda:FunctionArn": f"arn:aws:lambda:{R}:{A}:function:{w}-handler"},
                        {"SecretARN": f"arn:aws:secretsmanager:{R}:{A}:secret:{w}/db-{ralnum(r, 6)}",
                         "SecretVersionId": ruuid(r)},
                        {"aws:dynamodb:tableName": f"{w}-table", "aws:dynamodb:subscriberId": A}])
        if name in ("Decrypt", "Encrypt", "GenerateDataKey"):
            req = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": ctx}
            if name != "Decrypt":
                req["keyId"] = key_arn
            if name == "GenerateDataKey":
                req = {"keyId": key_arn, "encryptionContext": ctx, "keySpec": "AES_256"}
            res = [{"accountId": A, "type": "AWS::KMS::Key", "ARN": key_arn}]
        elif name == "CreateGrant":
            req = {"keyId": key_arn, "granteePrincipal": f"{w}.{R}.amazonaws.com",
                   "operations": ["Decrypt", "Encrypt", "GenerateDataKey", "ReEncryptFrom", "ReEncryptTo"],
                   "constraints": {"encryptionContextSubset": ctx}}
            resp = {"grantId": rhex(r, 64), "keyId": key_arn}
            res = [{"accountId": A, "type": "AWS::KMS::Key", "ARN": key_arn}]
        elif name in ("ListKeys", "ListAliases"):
            req = {"limit": 1000} if r.random() < 0.5 else None
        else:
            req = {"keyId": key_arn}
            if name == "GetKeyPolicy":
                req["policyName"] = "default"
            res = [{"accountId": A, "type": "AWS::KMS::Key", "ARN": key_arn}]
    elif svc == "s3":
        obj = f"{w}/dt=2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}/part-{r.randrange(10000):05d}-" \
              f"{rhex(r, 8)}.{r.choice(['parquet', 'json.gz', 'csv', 'avro'])}"
        host = f"{bucket}.s3.{R}.amazonaws.com"
        if name == "ListBuckets":
            req = {"Host": f"s3.{R}.amazonaws.com"}
        elif name.startswith(("GetBucket", "PutBucket")):
            sub = kebab(name[9:]).replace("-", "")
            req = {"bucketName": bucket, "Host": host, sub: ""}
            if name == "PutBucketTagging":
                req["Tagging"] = {"xmlns": "http://s3.amazonaws.com/doc/2006-03-01/",
                                  "TagSet": {"Tag": [{"Key": t["key"], "Value": t["value"]} for t in tags(r, 3)]}}
            res = [{"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        elif name == "ListObjects":
            req = {"list-type": "2", "bucketName": bucket, "max-keys": "1000",
                   "prefix": f"{w}/2026/", "delimiter": "/", "Host": host}
            res = [{"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        else:
            req = {"bucketName": bucket, "Host": host, "key": obj}
            if name == "PutObject":
                req["x-amz-server-side-encryption"] = "aws:kms"
                req["x-amz-server-side-encryption-aws-kms-key-id"] = key_arn
                resp = {"x-amz-server-side-encryption-aws-kms-key-id": key_arn,
                        "x-amz-server-side-encryption": "aws:kms",
                        "x-amz-server-side-encryption-bucket-key-enabled": "true",
                        "x-amz-version-id": ralnum(r, 32)}
            if name == "CopyObject":
                req["x-amz-copy-source"] = f"{bucket}/{obj}"
                resp = {"x-amz-version-id": ralnum(r, 32), "CopyObjectResult": {"ETag": rhex(r, 32),
                        "LastModified": "2026-11-20T10:00:00Z"}}
            res = [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{obj}"},
                   {"accountId": A, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
        size = r.choice([0, 0, 512, 20480, 1048576, 7340032])
        aed = {"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
               "bytesTransferredIn": size if name == "PutObject" else 0,
               "AuthenticationMethod": "AuthHeader",
               "x-amz-id-2": "".join(r.choice(ALNUM + "+/") for _ in range(76)) + "=",
               "bytesTransferredOut": size if name == "GetObject" else 0}
    elif svc == "dynamodb":
        table = f"{w}-table"
        tarn = f"arn:aws:dynamodb:{R}:{A}:table/{table}"
        if name in ("GetItem", "PutItem", "UpdateItem"):
            req = {"tableName": table, "key": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS",
                                               "sk": "HIDDEN_DUE_TO_SECURITY_REASONS"}}
            if name == "GetItem":
                req["consistentRead"] = r.random() < 0.3
                req["projectionExpression"] = "pk, sk, #s, updatedAt"
            if name == "UpdateItem":
                req.update({"updateExpression": "SET #s = :s, updatedAt = :u", "conditionExpression":
                            "attribute_exists(pk)", "returnValues": "NONE"})
            if name == "PutItem":
                req = {"tableName": table, "item": {"pk": "HIDDEN_DUE_TO_SECURITY_REASONS"}}
            resp = None
            res = [{"accountId": A, "type": "AWS::DynamoDB::Table", "ARN": tarn}]
        elif name == "Query":
            req = {"tableName": table, "indexName": f"{w}-by-date", "keyConditionExpression":
                   "pk = :pk AND begins_with(sk, :prefix)", "limit": 100, "scanIndexForward": False}
            res = [{"accountId": A, "type": "AWS::DynamoDB::Table", "ARN": tarn}]
        elif name == "ListTables":
            req = {"limit": 100} if r.random() < 0.5 else None
        elif name == "ListTagsOfResource":
            req = {"resourceArn": tarn}
        else:
            req = {"tableName": table}
        if name in ("GetItem", "PutItem", "UpdateItem", "Query") and r.random() < 0.5:
            req["returnConsumedCapacity"] = "TOTAL"
    elif svc == "logs":
        group = r.choice([f"/aws/lambda/{w}-handler", f"/ecs/{w}-api", f"/aws/eks/{w}/cluster",
                          f"/var/log/{w}/app.log", "RDSOSMetrics"])
        if name == "CreateLogStream":
            req = {"logGroupName": group,
                   "logStreamName": r.choice([f"2026/11/20/[$LATEST]{rhex(r, 32)}", f"ecs/{w}/{rhex(r, 32)}",
                                              inst])}
        elif name == "StartQuery":
            req = {"logGroupName": group, "startTime": 1763600000, "endTime": 1763603600,
                   "queryString": "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp "
                                  "desc | limit 200"}
            resp = {"queryId": ruuid(r)}
        elif name.startswith("Describe"):
            req = {"logGroupNamePrefix": group.rsplit("/", 1)[0]} if name == "DescribeLogGroups" else \
                {"logGroupName": group, "orderBy": "LastEventTime", "descending": True, "limit": 50}
        elif name == "GetQueryResults":
            req = {"queryId": ruuid(r)}
        else:
            req = {"logGroupName": group}
            if name == "PutRetentionPolicy":
                req["retentionInDays"] = r.choice([14, 30, 90, 365])
    elif svc == "ec2":
        if name == "DescribeInstances":
            req = r.choice([
                {"instancesSet": {"items": [{"instanceId": inst}]}, "filterSet": {}},
                {"instancesSet": {}, "filterSet": {"items": [
                    {"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}, {"value": "pending"}]}},
                    {"name": "tag:kubernetes.io/cluster/" + w, "valueSet": {"items": [{"value": "owned"}]}}]}},
                {"instancesSet": {}, "filterSet": {}, "maxResults": 1000}])
        elif name == "DescribeInstanceStatus":
            req = {"instancesSet": {"items": [{"instanceId": inst}]}, "filterSet": {}, "includeAllInstances": False}
        elif name == "DescribeNetworkInterfaces":
            req = {"networkInterfaceIdSet": {}, "filterSet": {"items": [
                {"name": "attachment.instance-id", "valueSet": {"items": [{"value": inst}]}}]}}
        elif name == "DescribeTags":
            req = {"filterSet": {"items": [{"name": "resource-id", "valueSet": {"items": [{"value": inst}]}}]}}
        elif name == "DescribeRegions":
            req = {"regionSet": {}, "allRegions": r.random() < 0.5}
        elif name == "DescribeSecurityGroups":
            req = {"securityGroupSet": {}, "securityGroupIdSet": {"items": [{"groupId": "sg-0" + rhex(r, 16)}]},
                   "filterSet": {}}
        elif name == "RunInstances":
            eni = "eni-0" + rhex(r, 16)
            req = {"instancesSet": {"items": [{"imageId": "ami-0" + rhex(r, 16), "minCount": 1, "maxCount": 1}]},
                   "instanceType": r.choice(["t3.medium", "m6i.large", "c7g.xlarge"]), "blockDeviceMapping": {},
                   "monitoring": {"enabled": False}, "disableApiTermination": False, "disableApiStop": False,
                   "clientToken": ruuid(r), "tagSpecificationSet": {"items": [
                       {"resourceType": "instance", "tags": tags(r, 3)}]},
                   "launchTemplate": {"launchTemplateId": "lt-0" + rhex(r, 16), "version": "3"}}
            resp = {"requestId": "@@RID@@", "reservationId": "r-0" + rhex(r, 16), "ownerId": A, "groupSet": {},
                    "instancesSet": {"items": [{
                        "instanceId": inst, "imageId": "ami-0" + rhex(r, 16), "currentInstanceBootMode": "uefi",
                        "instanceState": {"code": 0, "name": "pending"},
                        "privateDnsName": f"ip-10-{r.randrange(256)}-{r.randrange(256)}-{r.randrange(256)}.ec2.internal",
                        "amiLaunchIndex": 0, "productCodes": {}, "instanceType": "m6i.large",
                        "launchTime": 1763632800000, "placement": {"availabilityZone": f"{R}a", "tenancy": "default"},
                        "monitoring": {"state": "disabled"}, "subnetId": "subnet-0" + rhex(r, 16),
                        "vpcId": "vpc-0" + rhex(r, 16), "privateIpAddress": "10.0.%d.%d" % (r.randrange(256),
                                                                                            r.randrange(256)),
                        "stateReason": {"code": "pending", "message": "pending"}, "architecture": "x86_64",
                        "rootDeviceType": "ebs", "rootDeviceName": "/dev/xvda", "blockDeviceMapping": {},
                        "virtualizationType": "hvm", "hypervisor": "xen", "tagSet": {"items": tags(r, 3)},
                        "groupSet": {"items": [{"groupId": "sg-0" + rhex(r, 16), "groupName": f"{w}-nodes"}]},
                        "sourceDestCheck": True, "networkInterfaceSet": {"items": [{
                            "networkInterfaceId": eni, "subnetId": "subnet-0" + rhex(r, 16),
                            "ownerId": A, "status": "in-use", "interfaceType": "interface"}]},
                        "ebsOptimized": True, "enaSupport": True, "cpuOptions": {"coreCount": 1, "threadsPerCore": 2},
                        "capacityReservationSpecification": {"capacityReservationPreference": "open"},
                        "enclaveOptions": {"enabled": False},
                        "metadataOptions": {"state": "pending", "httpTokens": "required",
                                            "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled"},
                        "maintenanceOptions": {"autoRecovery": "default"}}]}}
        elif name in ("TerminateInstances", "StartInstances", "StopInstances"):
            req = {"instancesSet": {"items": [{"instanceId": inst}]}}
            if name == "StopInstances":
                req["force"] = False
            new, old = {"TerminateInstances": ((32, "shutting-down"), (16, "running")),
                        "StartInstances": ((0, "pending"), (80, "stopped")),
                        "StopInstances": ((64, "stopping"), (16, "running"))}[name]
            resp = {"requestId": "@@RID@@", "instancesSet": {"items": [{
                "instanceId": inst, "currentState": {"code": new[0], "name": new[1]},
                "previousState": {"code": old[0], "name": old[1]}}]}}
        elif name == "CreateTags":
            req = {"resourcesSet": {"items": [{"resourceId": inst}]}, "tagSet": {"items": tags(r, 2)}}
            resp = {"requestId": "@@RID@@", "_return": True}
        elif name == "CreateNetworkInterface":
            eni = "eni-0" + rhex(r, 16)
            sub = "subnet-0" + rhex(r, 16)
            req = {"subnetId": sub, "description": f"aws-K8S-{inst}", "groupSet": {"items": [
                {"groupId": "sg-0" + rhex(r, 16)}]}, "privateIpAddressesSet": {}, "ipv6AddressCount": 0,
                "clientToken": ruuid(r)}
            resp = {"requestId": "@@RID@@", "networkInterface": {
                "networkInterfaceId": eni, "subnetId": sub, "vpcId": "vpc-0" + rhex(r, 16),
                "availabilityZone": f"{R}b", "description": f"aws-K8S-{inst}", "ownerId": A,
                "requesterManaged": False, "status": "pending", "macAddress": ":".join(rhex(r, 2) for _ in range(6)),
                "privateIpAddress": "10.0.%d.%d" % (r.randrange(256), r.randrange(256)), "sourceDestCheck": True,
                "interfaceType": "interface", "groupSet": {"items": [{"groupId": "sg-0" + rhex(r, 16),
                                                                     "groupName": f"eks-cluster-sg-{w}"}]},
                "privateIpAddressesSet": {}, "ipv6AddressesSet": {}, "tagSet": {}}}
        elif name == "DeleteNetworkInterface":
            req = {"networkInterfaceId": "eni-0" + rhex(r, 16)}
            resp = {"requestId": "@@RID@@", "_return": True}
        elif name in ("CreateSnapshot", "CreateVolume", "AttachVolume", "DeleteSnapshot"):
            vol = "vol-0" + rhex(r, 16)
            req = {"volumeId": vol, "description": f"{w} nightly backup"} if name == "CreateSnapshot" else \
                {"size": 100, "zone": f"{R}a", "volumeType": "gp3", "encrypted": True} if name == "CreateVolume" \
                else {"volumeId": vol, "instanceId": inst, "device": "/dev/sdf"} if name == "AttachVolume" \
                else {"snapshotId": "snap-0" + rhex(r, 16)}
            resp = {"requestId": "@@RID@@", "_return": True} if name == "DeleteSnapshot" else {
                "requestId": "@@RID@@", "volumeId": vol, "status": "pending" if name != "AttachVolume" else "attaching",
                "startTime": 1763632800000, "encrypted": True}
        elif name == "AuthorizeSecurityGroupIngress":
            req = {"groupId": "sg-0" + rhex(r, 16), "ipPermissions": {"items": [{
                "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "groups": {}, "ipRanges": {
                    "items": [{"cidrIp": "10.0.0.0/16"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]}}
            resp = {"requestId": "@@RID@@", "_return": True, "securityGroupRuleSet": {"items": [{
                "groupOwnerId": A, "groupId": req["groupId"], "securityGroupRuleId": "sgr-0" + rhex(r, 16),
                "isEgress": False, "ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "10.0.0.0/16"}]}}
        elif name.startswith("Describe"):
            noun = lcfirst(name[8:])
            req = r.choice([{f"{noun}Set": {}, "filterSet": {}},
                            {f"{noun}Set": {}, "filterSet": {"items": [{"name": "tag:env", "valueSet": {
                                "items": [{"value": r.choice(["prod", "staging"])}]}}]}},
                            {"maxResults": 1000, "filterSet": {}}])
            if name == "DescribeImages":
                req = {"executableBySet": {}, "imagesSet": {"items": [{"imageId": "ami-0" + rhex(r, 16)}]},
                       "ownersSet": {"items": [{"owner": "amazon"}]}, "filterSet": {}}
        else:
            req = {"instanceId": inst}
    elif svc == "iam":
        user = r.choice(FIRST_NAMES)
        if name in ("GetRole", "ListRolePolicies", "ListAttachedRolePolicies", "GetRolePolicy"):
            req = {"roleName": f"{w}-service-role"}
            if name == "GetRolePolicy":
                req["policyName"] = f"{w}-inline"
        elif name in ("GetPolicy", "GetPolicyVersion"):
            req = {"policyArn": f"arn:aws:iam::{A}:policy/{w}-access"}
            if name == "GetPolicyVersion":
                req["versionId"] = "v%d" % r.randrange(1, 6)
        elif name in ("GetUser", "ListAccessKeys", "ListGroupsForUser", "ListMFADevices"):
            req = {"userName": user}
        elif name in ("GetInstanceProfile",):
            req = {"instanceProfileName": f"{w}-instance-profile"}
        elif name == "CreateRole":
            req = {"roleName": f"{w}-lambda-role", "assumeRolePolicyDocument": dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
                    "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}), "tags": []}
            resp = {"role": {"path": "/", "roleName": f"{w}-lambda-role", "roleId": rkey(r, "AROA", 17),
                             "arn": f"arn:aws:iam::{A}:role/{w}-lambda-role",
                             "createDate": "Nov 20, 2026, 10:00:00 AM",
                             "assumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%7D"}}
        elif name in ("AttachRolePolicy", "PutRolePolicy", "TagRole"):
            req = {"roleName": f"{w}-service-role", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
        elif name == "CreateAccessKey":
            req = {"userName": user}
            resp = {"accessKey": {"userName": user, "accessKeyId": rkey(r, "AKIA"), "status": "Active",
                                  "createDate": "Nov 20, 2026, 10:00:00 AM"}}
        elif name.startswith("List"):
            req = {"maxItems": 1000} if r.random() < 0.5 else {"pathPrefix": "/", "maxItems": 100}
        elif name == "GetAccountAuthorizationDetails":
            req = {"filter": ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]}
    elif name.startswith("Describe") or name.startswith("List"):
        noun = strip_version(name)
        noun = noun[8:] if noun.startswith("Describe") else noun[4:]
        req = r.choice([None, {"maxResults": 50}, {lcfirst(noun.rstrip("s")) + "Names": [f"{w}-prod"]},
                        {"maxResults": 100, "nextToken": ralnum(r, 64)}])
        if svc == "rds" and name.startswith("Describe"):
            req = {"dBInstanceIdentifier": f"{w}-db-1"} if r.random() < 0.5 else {"maxRecords": 100}
        if svc == "ssm" and name == "UpdateInstanceInformation":
            pass
    elif svc == "ssm":
        if name == "UpdateInstanceInformation":
            req = {"instanceId": inst, "agentVersion": "3.3.987.0", "agentStatus": "Active",
                   "platformType": "Linux", "platformName": "Amazon Linux", "platformVersion": "2023",
                   "iPAddress": "10.0.%d.%d" % (r.randrange(256), r.randrange(256)),
                   "computerName": f"ip-10-0-{r.randrange(256)}-{r.randrange(256)}.ec2.internal",
                   "agentName": "amazon-ssm-agent", "availabilityZone": f"{R}c", "availabilityZoneId": "use1-az4"}
        elif name in ("GetParameter", "GetParameters", "GetParametersByPath"):
            p = f"/{w}/prod/{r.choice(['db_url', 'api_key', 'feature_flags', 'endpoint'])}"
            req = {"name": p, "withDecryption": r.random() < 0.6} if name == "GetParameter" else \
                {"names": [p, p.rsplit("/", 1)[0] + "/timeout"], "withDecryption": True} if name == "GetParameters" \
                else {"path": p.rsplit("/", 1)[0], "recursive": True, "withDecryption": True}
        elif name == "ListAssociations":
            req = {"associationFilterList": [{"key": "InstanceId", "value": inst}], "maxResults": 50}
        elif name == "PutParameter":
            req = {"name": f"/{w}/prod/release", "type": "String", "overwrite": True}
            resp = {"version": r.randrange(2, 90), "tier": "Standard"}
        elif name == "SendCommand":
            req = {"instanceIds": [inst], "documentName": "AWS-RunShellScript",
                   "parameters": "HIDDEN_DUE_TO_SECURITY_REASONS", "interactive": False}
            resp = {"command": {"commandId": ruuid(r), "documentName": "AWS-RunShellScript",
                                "documentVersion": "$DEFAULT", "status": "Pending", "instanceIds": [inst]}}
    elif svc == "secretsmanager":
        sid = f"arn:aws:secretsmanager:{R}:{A}:secret:{w}/db-credentials-{ralnum(r, 6)}"
        req = {"secretId": sid} if name != "ListSecrets" else {"maxResults": 100}
        if name == "GetSecretValue":
            res = None
    elif svc == "ecr":
        repo = f"{w}-service"
        if name == "GetAuthorizationToken":
            req = None
        elif name in ("BatchGetImage", "BatchCheckLayerAvailability"):
            req = {"repositoryName": repo, "registryId": A, "imageIds": [{"imageTag": "v1.%d.%d" % (
                r.randrange(40), r.randrange(10))}], "acceptedMediaTypes": [
                "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"]}
            res = [{"accountId": A, "ARN": f"arn:aws:ecr:{R}:{A}:repository/{repo}"}]
        elif name == "GetDownloadUrlForLayer":
            req = {"repositoryName": repo, "registryId": A, "layerDigest": "sha256:" + rhex(r, 64)}
            res = [{"accountId": A, "ARN": f"arn:aws:ecr:{R}:{A}:repository/{repo}"}]
        else:
            req = {"repositoryName": repo, "registryId": A}
    elif svc == "elasticloadbalancing":
        tg = f"arn:aws:elasticloadbalancing:{R}:{A}:targetgroup/{w}-tg/{rhex(r, 16)}"
        req = {"targetGroupArn": tg}
        if name in ("RegisterTargets", "DeregisterTargets"):
            req["targets"] = [{"id": inst, "port": 8080}]
    elif svc == "lambda":
        fn = f"{w}-handler"
        req = {"functionName": fn}
        if name.startswith("UpdateFunctionCode"):
            req.update({"s3Bucket": bucket, "s3Key": f"builds/{fn}/{rhex(r, 40)}.zip", "publish": True})
            resp = {"functionName": fn, "functionArn": f"arn:aws:lambda:{R}:{A}:function:{fn}",
                    "runtime": "python3.12", "role": role_arn, "handler": "app.handler", "codeSize": 5812734,
                    "description": "", "timeout": 30, "memorySize": 512,
                    "lastModified": "2026-11-20T10:00:00.000+0000", "codeSha256": rhex(r, 43), "version": "42",
                    "tracingConfig": {"mode": "PassThrough"}, "revisionId": ruuid(r), "state": "Active",
                    "lastUpdateStatus": "InProgress", "packageType": "Zip", "architectures": ["arm64"],
                    "ephemeralStorage": {"size": 512}, "snapStart": {"applyOn": "None", "optimizationStatus": "Off"},
                    "loggingConfig": {"logFormat": "Text", "logGroup": f"/aws/lambda/{fn}"}}
        elif name.startswith("UpdateFunctionConfiguration"):
            req.update({"environment": {}, "timeout": 60})
    elif svc == "cloudformation":
        stack = f"arn:aws:cloudformation:{R}:{A}:stack/{w}-prod/{ruuid(r)}"
        req = {"stackName": stack}
        if name == "CreateChangeSet":
            req.update({"changeSetName": f"{w}-{rhex(r, 8)}", "changeSetType": "UPDATE",
                        "capabilities": ["CAPABILITY_NAMED_IAM"], "parameters": [], "templateURL":
                        f"https://s3.amazonaws.com/cdk-hnb659fds-assets-{A}-{R}/{rhex(r, 64)}.json"})
            resp = {"id": f"arn:aws:cloudformation:{R}:{A}:changeSet/{w}/{ruuid(r)}", "stackId": stack}
    elif svc == "sqs":
        q = f"https://sqs.{R}.amazonaws.com/{A}/{w}-queue"
        req = {"queueUrl": q, "attributeNames": ["All"]} if name == "GetQueueAttributes" else {"queueName": f"{w}-queue"}
    elif svc == "monitoring":
        if name == "GetMetricData":
            req = {"metricDataQueries": [{"id": "m%d" % i, "metricStat": {"metric": {
                "namespace": "AWS/EC2", "metricName": "CPUUtilization", "dimensions": [
                    {"name": "InstanceId", "value": "i-0" + rhex(r, 16)}]}, "period": 60, "stat": "Average"},
                "returnData": True} for i in range(r.choice([1, 2, 3]))],
                "startTime": "Nov 20, 2026, 9:55:00 AM", "endTime": "Nov 20, 2026, 10:00:00 AM"}
        elif name == "PutMetricAlarm":
            req = {"alarmName": f"{w}-high-cpu", "metricName": "CPUUtilization", "namespace": "AWS/EC2",
                   "statistic": "Average", "period": 300, "evaluationPeriods": 2, "threshold": 80.0,
                   "comparisonOperator": "GreaterThanThreshold"}
    elif svc == "route53":
        req = {"hostedZoneId": "Z" + rkey(r, "", 20)}
        if name == "ChangeResourceRecordSets":
            req["changeBatch"] = {"changes": [{"action": "UPSERT", "resourceRecordSet": {
                "name": f"{w}.example.com", "type": "A", "tTL": 60, "resourceRecords": [
                    {"value": "192.0.2.%d" % r.randrange(1, 255)}]}}]}
            resp = {"changeInfo": {"id": "/change/C" + rkey(r, "", 20), "status": "PENDING",
                                   "submittedAt": "Nov 20, 2026, 10:00:00 AM"}}
    elif svc == "config" and name == "PutEvaluations":
        req = {"evaluations": [{"complianceResourceType": "AWS::EC2::Instance", "complianceResourceId": inst,
                                "complianceType": r.choice(["COMPLIANT", "NON_COMPLIANT"]),
                                "orderingTimestamp": "Nov 20, 2026, 9:58:11 AM"}],
               "resultToken": ralnum(r, 180), "testMode": False}
        resp = {"failedEvaluations": []}
    else:
        noun = strip_version(name)
        for p in ("Get", "Describe", "List"):
            if noun.startswith(p):
                noun = noun[len(p):]
        req = {lcfirst(noun) + "Name": f"{w}-prod"} if noun else None
    return req, resp, res, aed


# ----------------------------------------------------------- event specs
class Ev:
    """One (eventSource, eventName) with pre-serialised parameter variants."""
    __slots__ = ("svc", "name", "source", "read", "data", "is_global", "cli_cmd", "go_api",
                 "variants", "err_codes", "s3", "head", "idx", "discovery", "rule1_src")

    def __init__(self, svc, name, r, n_variants):
        cli_svc, go_ver, _ = CATALOG[svc]
        self.svc = svc
        self.name = name
        self.source = f"{svc}.amazonaws.com"
        self.read = is_read(name)
        self.data = (svc, name) in DATA_EVENTS
        self.is_global = svc in GLOBAL_SERVICES
        self.s3 = svc == "s3"
        self.discovery = name.startswith(("Describe", "List", "Get", "Generate"))
        self.rule1_src = svc in RULE1_SOURCES
        base = strip_version(name)
        if svc == "s3" and name == "ListBuckets":
            self.cli_cmd = "s3.ls"
        elif svc == "s3" and name in ("GetObject", "PutObject", "CopyObject"):
            self.cli_cmd = "s3.cp"
        elif svc == "s3" and name == "ListObjects":
            self.cli_cmd = "s3.ls"
        else:
            self.cli_cmd = f"{cli_svc}.{kebab(base)}"
        self.go_api = f"{svc}#{go_ver}"
        # `"eventSource":"..","eventName":"..","awsRegion":"`
        self.head = f'"eventSource":"{self.source}","eventName":"{name}","awsRegion":"'
        self.variants = []
        for _ in range(n_variants):
            req, resp, res, aed = make_params(svc, name, r)
            mid = f'"requestParameters":{dumps(req)},"responseElements":{dumps(resp)},'
            mid_err = f'"requestParameters":{dumps(req)},"responseElements":null,'
            if aed is not None:
                a = f'"additionalEventData":{dumps(aed)},'
                mid += a
                mid_err += a
            rs = f'"resources":{dumps(res)},' if res else ""
            self.variants.append((mid, mid_err, rs))
        self.err_codes = error_codes(svc, name)


def error_codes(svc, name):
    if svc == "ec2":
        codes = [("Client.UnauthorizedOperation", "You are not authorized to perform this operation. User: {arn} "
                  "is not authorized to perform: ec2:{name} because no identity-based policy allows the "
                  "ec2:{name} action"), ("Client.RequestLimitExceeded", "Request limit exceeded.")]
        if "Instance" in name:
            codes.append(("Client.InvalidInstanceID.NotFound", "The instance ID 'i-0a1b2c3d4e5f67890' does not exist"))
        return codes
    denied = ("AccessDenied", "User: {arn} is not authorized to perform: {svc}:{name} on resource: * because no "
              "identity-based policy allows the {svc}:{name} action")
    if svc == "s3":
        return [("AccessDenied", "Access Denied"), ("NoSuchKey", "The specified key does not exist."),
                ("NoSuchBucketPolicy", "The bucket policy does not exist")] if name != "PutObject" else \
            [("AccessDenied", "Access Denied")]
    if svc == "iam":
        return [denied, ("NoSuchEntityException", "The role with name {name} cannot be found.")]
    if svc == "kms":
        return [("AccessDenied", "User: {arn} is not authorized to perform: kms:{name} on this resource because "
                 "the resource does not exist in this Region, no resource-based policies allow access, or a "
                 "resource-based policy explicitly denies access"), ("ThrottlingException", "Rate exceeded")]
    if svc == "sts" and name.startswith("AssumeRole"):
        return [("AccessDenied", "User: {arn} is not authorized to perform: sts:AssumeRole on resource: "
                 "arn:aws:iam::{acct}:role/restricted-admin")]
    if svc in ("dynamodb",):
        return [("ConditionalCheckFailedException", "The conditional request failed"),
                ("ProvisionedThroughputExceededException", "The level of configured provisioned throughput for "
                 "the table was exceeded.")]
    if svc in ("ssm", "secretsmanager", "logs"):
        return [denied, ("ResourceNotFoundException", "Secrets Manager can't find the specified secret." if
                         svc == "secretsmanager" else "The specified resource does not exist."),
                ("ThrottlingException", "Rate exceeded")]
    return [denied, ("ThrottlingException", "Rate exceeded")]


class Identity:
    __slots__ = ("idx", "kind", "type", "account", "arn", "name", "home", "ips", "ua", "ua_kind", "evs", "cum",
                 "tot", "tls", "clustered", "console", "vpce", "static", "session", "role", "invoked_by",
                 "principal", "akid", "uid", "host")

    def __init__(self, **kw):
        self.uid = None
        self.vpce = None
        self.clustered = False
        self.host = None
        for k, v in kw.items():
            setattr(self, k, v)


def doc_ip(r, attacker=False):
    if attacker:
        return "203.0.113.%d" % r.randrange(200, 255)
    net = r.choice(["192.0.2.", "198.51.100.", "203.0.113."])
    hi = 200 if net == "203.0.113." else 255
    return net + str(r.randrange(1, hi))


class World:
    """Accounts, regions, identities and the event catalogue (built once per seed)."""

    def __init__(self, seed, n_ident, n_accounts, n_regions, variants=8):
        r = random.Random(f"{seed}:world")
        self.seed = seed
        self.accounts = ["111122223333"] + ["%012d" % r.randrange(10 ** 11, 10 ** 12) for _ in range(n_accounts - 1)]
        self.regions = ALL_REGIONS[:n_regions]
        # Event catalogue
        self.evs = {}
        for svc, (_, _, spec) in CATALOG.items():
            for item in spec.split():
                name, w = item.split(":")
                self.evs[(svc, name)] = (Ev(svc, name, r, variants), float(w))
        self.n_event_names = len(self.evs)
        self.all_ev = [e for e, _ in self.evs.values()]
        for i, e in enumerate(self.all_ev):
            e.idx = i
        self.identities = self._identities(r, n_ident)
        w = [1.0 / (i + 1) ** 1.1 for i in range(len(self.identities))]
        self.id_cum = list(_accumulate(w))
        self.id_tot = self.id_cum[-1]
        self.region_weights = [0.55] + [0.45 / max(1, n_regions - 1)] * (n_regions - 1)

    def ev(self, svc, name):
        if (svc, name) not in self.evs:
            e = Ev(svc, name, random.Random(f"{self.seed}:{svc}:{name}"), 4)
            e.idx = len(self.all_ev)
            self.all_ev.append(e)
            self.evs[(svc, name)] = (e, 0.0)
        return self.evs[(svc, name)][0]

    def _pick_events(self, r, kind):
        """(events, cumulative weights) for an identity of this kind."""
        if kind in PROFILES:
            items = [(self.ev(s, n), w * r.uniform(0.5, 1.5)) for (s, n), w in PROFILES[kind].items()]
        elif kind == "config":
            items = [(e, w) for (s, n), (e, w) in self.evs.items()
                     if n.startswith(("Describe", "List", "Get")) and s in ("ec2", "iam", "s3", "rds", "lambda",
                                                                            "kms", "dynamodb", "elasticloadbalancing")]
            items = [(e, 1.0) for e, _ in items]
            items.append((self.ev("config", "PutEvaluations"), 10.0))
        elif kind == "service-lambda":
            items = [(self.ev("sts", "AssumeRole"), 1.0)]
        elif kind == "service-kms":
            items = [(self.ev("kms", "GenerateDataKey"), 3.0), (self.ev("kms", "Decrypt"), 2.0)]
        elif kind == "service-ec2":
            items = [(self.ev("sts", "AssumeRole"), 3.0), (self.ev("kms", "CreateGrant"), 0.2)]
        elif kind == "cspm":
            items = [(e, 1.0) for (s, n), (e, w) in self.evs.items() if e.discovery]
        elif kind == "terraform":
            svcs = r.sample(["ec2", "iam", "s3", "lambda", "rds", "elasticloadbalancing", "route53",
                             "cloudformation", "kms", "logs", "ecs", "autoscaling"], 6)
            items = [(e, w if e.read else w * 8) for (s, n), (e, w) in self.evs.items()
                     if s in svcs and not e.data]
        else:  # humans: a handful of services they work with
            svcs = r.sample(sorted(CATALOG), r.randrange(3, 9))
            if r.random() < 0.7:
                svcs.append("sts")
            items = [(e, w) for (s, n), (e, w) in self.evs.items() if s in svcs and w > 0]
            items = [(e, min(w, 8.0) * (3.0 if e.read else 0.5)) for e, w in items]
            # a person's repertoire: a dozen or so APIs they actually call
            k = min(len(items), r.randrange(4, 17))
            items = [items[j] for j in sorted(r.sample(range(len(items)), k))]
        evs = [e for e, _ in items]
        return evs, list(_accumulate([w for _, w in items]))

    def _identities(self, r, k):
        k = max(k, 6)
        n_svc = max(4, round(k * 0.08))
        profiles = list(PROFILES)
        specs = []  # (kind, ua_kind) in rank order before shuffling the tail
        for i in range(n_svc):
            specs.append(("svc:" + profiles[i % len(profiles)], r.choice(["boto3", "boto3", "go", "go", "java"])))
        specials = [("service-kms", "service"), ("service-lambda", "service"), ("config", "config"),
                    ("service-ec2", "service"), ("cspm", "go"), ("terraform", "terraform")]
        humans = []
        n_h = max(1, k - n_svc - len(specials) - 1)
        for i in range(n_h):
            x = r.random()
            if x < 0.38:
                humans.append(("user", "cli"))
            elif x < 0.52:
                humans.append(("user", "boto3"))
            elif x < 0.82:
                humans.append(("sso", "console"))
            elif x < 0.97:
                humans.append(("sso", "cli"))
            else:
                humans.append(("user", "console"))
        # interleave: specials at ranks n_svc, n_svc+2, ... ; humans fill the rest; root last.
        tail = humans[:]
        for j, s in enumerate(specials):
            tail.insert(min(len(tail), j * 3), s)
        specs = (specs + tail)[: k - 1] + [("root", "console")]
        out = []
        used_names = set()
        acct_w = list(_accumulate([1.0 / (a + 1) ** 0.7 for a in range(len(self.accounts))]))
        for idx, (kind, ua_kind) in enumerate(specs):
            acct = self.accounts[bisect.bisect_right(acct_w, r.random() * acct_w[-1])] if idx else self.accounts[0]
            home = self.regions[0] if r.random() < 0.6 or len(self.regions) == 1 else r.choice(self.regions[1:])
            ips = [doc_ip(r) for _ in range(r.choice([1, 1, 2, 3]))]
            tls = TLS13 if r.random() < 0.75 else TLS12
            ident = Identity(idx=idx, kind=kind, ua_kind=ua_kind, account=acct, home=home, ips=ips, tls=tls,
                             console=False, invoked_by=None, role=None, session=None)
            profile = kind[4:] if kind.startswith("svc:") else kind
            ident.evs, ident.cum = self._pick_events(r, profile if kind.startswith("svc:") else
                                                     ("human" if kind in ("user", "sso", "root") else kind))
            ident.tot = ident.cum[-1]
            w = r.choice(WORDS)
            if kind.startswith("svc:"):
                ident.type = "AssumedRole"
                p = kind[4:]
                ident.role = f"{w}-{p}"
                ident.session = {"lambda-app": f"{w}-handler", "eks-node": "i-0" + rhex(r, 16),
                                 "etl-batch": f"{w}-etl-{rhex(r, 8)}", "ssm-agent": "i-0" + rhex(r, 16),
                                 "ecs-task": rhex(r, 32), "monitoring": "DatadogAWSIntegration"}[p]
                ident.vpce = ("vpce-0" + rhex(r, 16)) if r.random() < 0.3 else None
            elif kind.startswith("service-"):
                ident.type = "AWSService"
                ident.host = {"service-kms": r.choice(["cloudtrail.amazonaws.com", "s3.amazonaws.com"]),
                              "service-lambda": "lambda.amazonaws.com", "service-ec2": "ec2.amazonaws.com"}[kind]
                ident.ips = [ident.host]
            elif kind == "config":
                ident.type = "AssumedRole"
                ident.role = "AWSServiceRoleForConfig"
                ident.session = "AWSConfig-Describe"
                ident.host = "config.amazonaws.com"
                ident.ips = [ident.host]
            elif kind == "cspm":
                ident.type = "AssumedRole"
                ident.role = "wiz-security-scanner"
                ident.session = "WizScanner-" + rhex(r, 10)
            elif kind == "terraform":
                ident.type = "AssumedRole"
                ident.role = "terraform-ci-deploy"
                ident.session = "GitHubActions-" + str(r.randrange(10 ** 9, 10 ** 10))
                ident.clustered = True
            elif kind == "sso":
                ident.type = "AssumedRole"
                perm = r.choice(["AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess", "DeveloperAccess"])
                ident.role = f"AWSReservedSSO_{perm}_{rhex(r, 16)}"
                nm = self._unique_name(r, used_names)
                ident.session = f"{nm}@example.com"
                ident.console = ua_kind == "console"
                ident.clustered = True
            elif kind == "root":
                ident.type = "Root"
                ident.console = True
                ident.clustered = True
            else:
                ident.type = "IAMUser"
                ident.name = self._unique_name(r, used_names)
                ident.console = ua_kind == "console"
                ident.clustered = True
            # user agent
            if ua_kind == "cli":
                ident.ua = f"aws-cli/{r.choice(CLI_VERSIONS)} prompt/off command/"
            elif ua_kind == "boto3":
                ident.ua = r.choice(BOTO_UAS)
            elif ua_kind == "go":
                ident.ua = GO_UA
            elif ua_kind == "java":
                ident.ua = JAVA_UA
            elif ua_kind == "terraform":
                ident.ua = TERRAFORM_UA
            elif ua_kind == "console":
                ident.ua = r.choice(CONSOLE_UAS)
            else:
                ident.ua = ident.host
            # stable ids
            a = ident.account
            if ident.type == "IAMUser":
                ident.principal = rkey(r, "AIDA", 17)
                ident.arn = f"arn:aws:iam::{a}:user/{ident.name}"
                ident.akid = rkey(r, "AKIA")
            elif ident.type == "AssumedRole":
                ident.principal = rkey(r, "AROA", 17)
                path = "aws-reserved/sso.amazonaws.com/" if kind == "sso" else \
                    "aws-service-role/config.amazonaws.com/" if kind == "config" else ""
                ident.name = path
                ident.arn = f"arn:aws:sts::{a}:assumed-role/{ident.role}/{ident.session}"
            elif ident.type == "Root":
                ident.principal = a
                ident.arn = f"arn:aws:iam::{a}:root"
            else:
                ident.arn = None
            out.append(ident)
        return out

    @staticmethod
    def _unique_name(r, used):
        while True:
            n = r.choice(FIRST_NAMES) + r.choice(["", ".ops", "-dev", ".sre", "-data", "." + r.choice(WORDS)])
            if len(used) > 5 * len(FIRST_NAMES):
                n += str(r.randrange(10000))
            if n not in used:
                used.add(n)
                return n

    def user_identity(self, ident, r, hour_epoch):
        """userIdentity JSON for this identity for one hour (role sessions rotate hourly)."""
        a = ident.account
        created = fmt_time(hour_epoch - r.randrange(60, 3000))
        if ident.type == "IAMUser":
            d = {"type": "IAMUser", "principalId": ident.principal, "arn": ident.arn, "accountId": a,
                 "accessKeyId": ident.akid, "userName": ident.name}
            if ident.console:
                d["accessKeyId"] = rkey(r, "ASIA")
                d["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {}, "attributes": {
                    "creationDate": created, "mfaAuthenticated": "true"}}
        elif ident.type == "AssumedRole":
            role_arn = f"arn:aws:iam::{a}:role/{ident.name or ''}{ident.role}"
            d = {"type": "AssumedRole", "principalId": f"{ident.principal}:{ident.session}", "arn": ident.arn,
                 "accountId": a, "accessKeyId": rkey(r, "ASIA"),
                 "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": ident.principal,
                                                      "arn": role_arn, "accountId": a, "userName": ident.role},
                                    "webIdFederationData": {},
                                    "attributes": {"creationDate": created,
                                                   "mfaAuthenticated": "false"}}}
            if ident.kind == "svc:eks-node" or ident.kind == "svc:ssm-agent":
                d["sessionContext"]["ec2RoleDelivery"] = "2.0"
            if ident.kind == "config":
                d["invokedBy"] = "config.amazonaws.com"
            if ident.kind == "svc:ecs-task":
                d["sessionContext"]["webIdFederationData"] = {}
        elif ident.type == "Root":
            d = {"type": "Root", "principalId": a, "arn": ident.arn, "accountId": a, "accessKeyId": rkey(r, "ASIA"),
                 "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {}, "attributes": {
                     "creationDate": created, "mfaAuthenticated": "true"}}}
        else:
            d = {"type": "AWSService", "invokedBy": ident.host}
        return dumps(d)


def _accumulate(ws):
    t = 0.0
    for w in ws:
        t += w
        yield t


# ------------------------------------------------------------- generation
class Writer:
    def __init__(self, out, r):
        self.out = out
        self.r = r
        self.files = 0
        self.raw = 0
        self.gz = 0

    def name(self, acct, region, slot_epoch):
        t = time.gmtime(slot_epoch)
        d = os.path.join(self.out, "AWSLogs", acct, "CloudTrail", region, time.strftime("%Y/%m/%d", t))
        os.makedirs(d, exist_ok=True)
        suffix = "".join(self.r.choice(ALNUM) for _ in range(16))
        return os.path.join(d, f"{acct}_CloudTrail_{region}_{time.strftime('%Y%m%dT%H%MZ', t)}_{suffix}.json.gz")

    def write(self, acct, region, slot_epoch, records):
        self.r.shuffle(records)
        body = ('{"Records":[' + ",".join(records) + "]}").encode()
        gz = zlib.compress(body, GZIP_LEVEL, 31)  # wbits 31 = gzip container, header mtime 0
        with open(self.name(acct, region, slot_epoch), "wb") as f:
            f.write(gz)
        self.files += 1
        self.raw += len(body)
        self.gz += len(gz)


class TsTable(dict):
    """seconds since `base` -> "YYYY-MM-DDTHH:MM:SSZ", filled on first use."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def __missing__(self, s):
        v = self[s] = fmt_time(self.base + s)
        return v


class Gen:
    """Builds records for one hour (or the single-object mode) from its own RNG."""

    def __init__(self, world, r, hour_epoch, force_region=None):
        self.w = world
        self.r = r
        self.hour = hour_epoch
        self.force_region = force_region
        self.uid = [world.user_identity(i, r, hour_epoch) for i in world.identities]
        self.ts = TsTable(hour_epoch)
        self.cache = {}
        self.tls = {}
        # session anchors for clustered (human / CI) identities: a few work sessions per hour
        self.anchors = {}
        for ident in world.identities:
            if ident.clustered:
                self.anchors[ident.idx] = [r.randrange(0, 3600) for _ in range(r.randrange(1, 4))]

    def variant(self, ev, vi, acct, region):
        key = (ev.idx, vi, acct, region)
        v = self.cache.get(key)
        if v is None:
            mid, mid_err, rs = ev.variants[vi]
            v = (mid.replace("@@A@@", acct).replace("@@R@@", region),
                 mid_err.replace("@@A@@", acct).replace("@@R@@", region),
                 rs.replace("@@A@@", acct).replace("@@R@@", region),
                 "@@RID@@" in mid)
            self.cache[key] = v
        return v

    def tls_details(self, ident, ev, region):
        key = (ident.tls, ev.svc, region)
        v = self.tls.get(key)
        if v is None:
            host = f"{ev.svc}.amazonaws.com" if ev.is_global else (
                f"s3.{region}.amazonaws.com" if ev.s3 else f"{ev.svc}.{region}.amazonaws.com")
            v = f',"tlsDetails":{{{ident.tls},"clientProvidedHostHeader":"{host}"}}'
            self.tls[key] = v
        return v

    def record(self, ident, ev, sec, region, ip=None, ua=None, error=None, internal=None):
        """One CloudTrail record as a JSON string; `sec` = seconds since the hour (0..3599)."""
        r = self.r
        acct = ident.account
        vi = int(r.random() * len(ev.variants))
        mid, mid_err, rs, has_rid = self.variant(ev, vi, acct, region)
        if ev.s3:
            rid = "".join(r.choice(KEYCHARS) for _ in range(16))
        else:
            h = "%032x" % r.getrandbits(128)
            rid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
        h = "%032x" % r.getrandbits(128)
        eid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
        if has_rid:
            mid = mid.replace("@@RID@@", rid)
        console = ""
        if ip is None:
            ips = ident.ips
            ip = ips[0] if len(ips) == 1 else ips[int(r.random() * len(ips))]
        if ua is None:
            k = ident.ua_kind
            if k == "cli":
                ua = ident.ua + ev.cli_cmd
            elif k == "go":
                ua = ident.ua + ev.go_api
            elif k == "console":
                if internal is None:
                    internal = r.random() < 0.2
                if internal:
                    ua = "AWS Internal"
                    ip = "AWS Internal"
                elif ev.s3:
                    ua = S3_CONSOLE_UA
                else:
                    ua = ident.ua
                console = ',"sessionCredentialFromConsole":"true"'
            else:
                ua = ident.ua
            if ev.s3 and k not in ("console", "service", "config"):
                ua = "[" + ua + "]"
        service = ident.type == "AWSService"
        err = ""
        if error is None:
            error = (not service) and r.random() < 0.03
        if error:
            code, msg = ev.err_codes[int(r.random() * len(ev.err_codes))]
            msg = msg.replace("{arn}", ident.arn or "").replace("{svc}", ev.svc).replace(
                "{name}", ev.name).replace("{acct}", acct)
            err = f'"errorCode":"{code}","errorMessage":"{msg}",'
            mid = mid_err
            rs = ""
        if service:
            extra = ',"sharedEventID":"' + ruuid(r) + '"'
            etype = "AwsServiceEvent" if ev.name == "CreateGrant" else "AwsApiCall"
        else:
            extra = "" if ident.vpce is None else \
                f',"vpcEndpointId":"{ident.vpce}","vpcEndpointAccountId":"{acct}"'
            etype = "AwsApiCall"
        tls = "" if (service or ident.host or ip == "AWS Internal") else self.tls_details(ident, ev, region)
        mg, cat = ("false", "Data") if ev.data else ("true", "Management")
        return (f'{{"eventVersion":"{EVENT_VERSION}","userIdentity":{self.uid[ident.idx]},"eventTime":'
                f'"{self.ts[sec]}",{ev.head}{region}","sourceIPAddress":"{ip}","userAgent":"{ua}",{err}{mid}'
                f'"requestID":"{rid}","eventID":"{eid}","readOnly":{"true" if ev.read else "false"},{rs}'
                f'"eventType":"{etype}","managementEvent":{mg},"recipientAccountId":"{acct}"{extra},'
                f'"eventCategory":"{cat}"{tls}{console}}}')

    def background(self, n):
        """n background records for this hour -> list of (account, region, sec, json)."""
        w = self.w
        r = self.r
        rnd = r.random
        idents = w.identities
        id_cum, id_tot = w.id_cum, w.id_tot
        regions = w.regions
        nreg = len(regions)
        force = self.force_region
        bis = bisect.bisect_right
        anchors = self.anchors
        record = self.record
        out = []
        app = out.append
        for _ in range(n):
            ident = idents[bis(id_cum, rnd() * id_tot)]
            ev = ident.evs[bis(ident.cum, rnd() * ident.tot)]
            if ident.clustered:
                a = anchors[ident.idx]
                sec = a[int(rnd() * len(a))] + int(r.expovariate(1 / 300.0))
                if sec >= 3600:
                    sec = int(rnd() * 3600)
            else:
                sec = int(rnd() * 3600)
            if force:
                region = force
            elif ev.is_global:
                region = "us-east-1"
            elif nreg == 1 or rnd() < 0.85:
                region = ident.home
            else:
                region = regions[int(rnd() * nreg)]
            app((ident.account, region, sec, record(ident, ev, sec, region)))
        return out




# ---------------------------------------------------------------- bursts
BURST_KINDS = ["cli_aligned", "cli_straddle_split", "sweep_cli", "boto3", "cli_straddle", "sweep_boto3"]


def rule1_eligible(ev, ua, ident):
    return (ev.discovery and ev.rule1_src and ev.name != "DescribeCapacityReservations"
            and ua.startswith("aws-cli/") and ident.type != "AWSService")


def plan_bursts(world, seed, n, t0, total_secs, single_object=False):
    """Deterministic burst plan: list of dicts with events [(epoch, Ev, region, ua)]."""
    r = random.Random(f"{seed}:bursts")
    humans = [i for i in world.identities if i.kind in ("user", "sso") and i.type != "AWSService"]
    if not humans:
        humans = [i for i in world.identities if i.type in ("IAMUser", "AssumedRole")]
    kinds = [k for k in BURST_KINDS if not (single_object and k.startswith("sweep"))]
    pool = [world.ev(s, n_) for s, n_ in BURST_POOL]
    plans = []
    span = total_secs / max(n, 1)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        ident = humans[r.randrange(len(humans))]
        ip = doc_ip(r, attacker=True)
        cli = f"aws-cli/{r.choice(CLI_VERSIONS[:3])} prompt/off command/"
        boto = r.choice(BOTO_UAS)
        lo = int(t0 + i * span + 0.1 * span)
        hi = int(t0 + i * span + 0.8 * span) - 40
        start = r.randrange(lo, max(lo + 1, hi))
        events = []
        home = ident.home if not single_object else world.regions[0]

        def ua_for(ev, use_cli):
            ua = (cli + ev.cli_cmd) if use_cli else boto
            return "[" + ua + "]" if ev.s3 else ua

        def region_for(ev):
            return "us-east-1" if (ev.is_global and not single_object) else home

        if kind.startswith("sweep"):
            use_cli = kind == "sweep_cli"
            dur = r.randrange(8, 29)
            di = world.ev("ec2", "DescribeInstances")
            dr = world.ev("ec2", "DescribeRegions")
            events.append((start, dr, home, ua_for(dr, use_cli)))
            regs = SWEEP_REGIONS[:]
            r.shuffle(regs)
            offs = sorted(r.randrange(1, dur + 1) for _ in regs[:-1]) + [dur]
            for reg, off in zip(regs, offs):
                events.append((start + off, di, reg, ua_for(di, use_cli)))
        else:
            use_cli = kind != "boto3"
            dur = r.randrange(2, 10)
            if kind == "cli_straddle_split":
                # 8-10 eligible distinct calls split 4-5 / 4-5 across a 10-s edge: a tumbling
                # 10-s count never exceeds 5, a sliding window sees them all.
                nd = r.randrange(8, 11)
                names = r.sample([e for e in pool if not e.s3], nd)
                dur = r.randrange(3, 10)
                edge_at = r.randrange(1, dur + 1)       # seconds after start where the bucket edge falls
                start = start - (start % 10) + 10 - edge_at
                before = nd // 2
                offs = [0] + sorted(r.randrange(0, edge_at) for _ in range(before - 1)) + \
                    sorted(r.randrange(edge_at, dur + 1) for _ in range(nd - before - 1)) + [dur]
            else:
                nd = r.randrange(8, 31)
                while True:
                    names = r.sample(pool, nd)
                    if sum(1 for e in names if not e.s3) >= 8:
                        break
                if kind == "cli_straddle":
                    dur = r.randrange(3, 10)
                    edge_at = r.randrange(1, dur + 1)
                    start = start - (start % 10) + 10 - edge_at
                elif kind in ("cli_aligned", "boto3"):
                    start = start - (start % 10) + r.randrange(0, 10 - dur)
                offs = [0] + sorted(r.randrange(0, dur + 1) for _ in range(nd - 2)) + [dur]
            for ev, off in zip(names, offs):
                events.append((start + off, ev, region_for(ev), ua_for(ev, use_cli)))
            # a few repeated calls (pagination / retries) inside the burst; none for the split
            # kind, where a repeat across the edge would lift one side above 5 distinct names
            for _ in range(0 if kind == "cli_straddle_split" else r.randrange(0, 4)):
                ev = names[r.randrange(len(names))]
                events.append((start + r.randrange(0, dur + 1), ev, region_for(ev), ua_for(ev, use_cli)))
        events.sort(key=lambda e: e[0])
        plans.append({"id": i, "kind": kind, "identity": ident, "ip": ip, "events": events})
    return plans


def burst_truth(plan):
    ident = plan["identity"]
    evs = plan["events"]
    start, end = evs[0][0], evs[-1][0]
    buckets = {}
    bins = {}
    for t, ev, reg, ua in evs:
        if rule1_eligible(ev, ua, ident):
            buckets.setdefault(t - t % 10, set()).add(ev.name)
        if ev.name.startswith(("Describe", "List", "Get")):
            bins.setdefault(t - t % 600, set()).add(ev.name)
    ua0 = evs[-1][3]
    return {
        "id": plan["id"], "kind": plan["kind"], "identity_arn": ident.arn, "identity_type": ident.type,
        "account": ident.account, "source_ip": plan["ip"],
        "user_agent": ua0.strip("[]").split(" prompt/")[0] if ua0 else None,
        "start": fmt_time(start), "end": fmt_time(end), "duration_secs": end - start,
        "straddles_10s_boundary": (start // 10) != (end // 10),
        "n_events": len(evs), "regions": sorted({e[2] for e in evs}),
        "distinct_event_names": sorted({e[1].name for e in evs}),
        "rule1_tumbling_buckets": [{"bucket": fmt_time(b), "distinct": len(s)} for b, s in sorted(buckets.items())],
        "expect_rule1_tumbling": any(len(s) > 5 for s in buckets.values()),
        "rule4_bins": [{"bin": fmt_time(b), "distinct": len(s)} for b, s in sorted(bins.items())],
        "expect_rule4_tumbling": any(len(s) > 10 for s in bins.values()),
    }


def burst_records(gen, plan, hour_epoch, span=3600):
    """Records of a burst that fall in [hour_epoch, hour_epoch+span): (acct, region, sec, json)."""
    out = []
    ident = plan["identity"]
    for t, ev, region, ua in plan["events"]:
        if hour_epoch <= t < hour_epoch + span:
            sec = t - hour_epoch
            rec = gen.record(ident, ev, sec, region, ip=plan["ip"], ua=ua,
                             error=(ev.name == "DescribeInstances" and gen.r.random() < 0.15))
            out.append((ident.account, region, sec, rec))
    return out


# ------------------------------------------------------- identity tail
class TailUid(dict):
    """userIdentity JSON of tail identities, made on first use (per hour)."""

    def __init__(self, gen, tail):
        super().__init__()
        self.gen = gen
        self.tail = tail

    def __missing__(self, idx):
        v = self[idx] = self.gen.w.user_identity(self.tail.get(idx), self.gen.r, self.gen.hour)
        return v


class Tail:
    """`--tail-identities N`: N extra IAM users, `tail-0000000` .. , made on demand.

    Each copies the API repertoire and client (aws-cli or Boto3) of one of the
    world's programmatic people, with its own ARN, access key and source IP.
    Their events (`--tail-events M` in all, spread evenly over the hours) are
    assigned round-robin, so with M >= N every tail identity is active.
    """

    def __init__(self, world, n):
        self.w = world
        self.n = n
        self.base = len(world.identities)
        humans = [i for i in world.identities
                  if i.kind in ("user", "sso") and i.ua_kind in ("cli", "boto3") and i.type != "AWSService"]
        self.templates = humans or [i for i in world.identities if i.type in ("IAMUser", "AssumedRole")]

    def get(self, idx):
        i = idx - self.base
        t = self.templates[i % len(self.templates)]
        nets = ("192.0.2.", "198.51.100.", "203.0.113.")
        acct = self.w.accounts[i % len(self.w.accounts)]
        name = f"tail-{i:07d}"
        return Identity(idx=idx, kind="user", ua_kind=t.ua_kind, account=acct, home=t.home,
                        ips=[nets[i % 3] + str(1 + (i // 3) % 199)], tls=t.tls, console=False,
                        invoked_by=None, role=None, session=None, evs=t.evs, cum=t.cum, tot=t.tot,
                        type="IAMUser", name=name, ua=t.ua, principal=f"AIDATAIL{i:013d}",
                        akid=f"AKIATAIL{i:012d}", arn=f"arn:aws:iam::{acct}:user/{name}")


def tail_records(world, tail, seed, h, hour_epoch, first, count):
    """Tail events number first .. first+count-1 (identity = number mod N) for hour h."""
    r = random.Random(f"{seed}:tail:{h}")
    gen = Gen.__new__(Gen)
    gen.w, gen.r, gen.hour, gen.force_region = world, r, hour_epoch, None
    gen.ts, gen.cache, gen.tls, gen.anchors = TsTable(hour_epoch), {}, {}, {}
    gen.uid = TailUid(gen, tail)
    regions = world.regions
    out = []
    for k in range(first, first + count):
        ident = tail.get(tail.base + k % tail.n)
        ev = ident.evs[bisect.bisect_right(ident.cum, r.random() * ident.tot)]
        sec = int(r.random() * 3600)
        region = "us-east-1" if ev.is_global else (ident.home if ident.home in regions else regions[0])
        out.append((ident.account, region, sec, gen.record(ident, ev, sec, region)))
    return out


# ------------------------------------------------------------------ modes
def run_hour(args):
    """Generate and write one hour. Returns stats (picklable for --jobs)."""
    world, seed, out, t0, h, n, plans, tail_span = args
    hour_epoch = t0 + h * 3600
    r = random.Random(f"{seed}:hour:{h}")
    gen = Gen(world, r, hour_epoch)
    recs = gen.background(n)
    for p in plans:
        recs.extend(burst_records(gen, p, hour_epoch))
    if tail_span is not None:
        n_tail, first, count = tail_span
        recs.extend(tail_records(world, Tail(world, n_tail), seed, h, hour_epoch, first, count))
    groups = {}
    for acct, region, sec, rec in recs:
        groups.setdefault((acct, region, sec // SLOT_SECS), []).append(rec)
    w = Writer(out, r)
    for (acct, region, slot) in sorted(groups):
        w.write(acct, region, hour_epoch + slot * SLOT_SECS, groups[(acct, region, slot)])
    return {"events": len(recs), "files": w.files, "raw": w.raw, "gz": w.gz}


_WORLD = None


def _run_hour_forked(args):
    return run_hour((_WORLD,) + args)


def run_single(world, seed, out, t0, mb, n_bursts, per_hour):
    """ONE object of about `mb` MB (10^6 bytes) compressed: account 0, region 0.

    Its records' eventTimes run from t0 at `per_hour` events per hour (the same
    density as the hourly layout, so detections behave alike), however long that
    makes the object's time span. Streams: records are made in batches, shuffled
    within the batch and compressed as they go, so memory does not grow with M.
    Returns (stats, burst plans).
    """
    r = random.Random(f"{seed}:single")
    acct, region = world.accounts[0], world.regions[0]
    for ident in world.identities:
        ident.account = acct
        ident.home = region
    gen = Gen(world, r, t0, force_region=region)
    target = int(mb * 1_000_000)
    per_hour = max(1, per_hour)
    # first guess of compressed bytes per record; corrected from the stream as it grows
    probe = [x[3] for x in gen.background(5000)]
    per = len(zlib.compress(",".join(probe).encode(), GZIP_LEVEL)) / len(probe)
    est = max(1, int(target / per))
    span = max(SLOT_SECS, int(est * 3600 / per_hour))
    plans = plan_bursts(world, seed, n_bursts, t0, span, single_object=True)
    extra = []
    for p in plans:
        extra.extend(x[3] for x in burst_records(gen, p, t0, span=span + 3600))
    path = Writer(out, r).name(acct, region, t0)
    comp = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    n = raw = gz = 0
    with open(path, "wb") as f:
        def emit(b):
            nonlocal gz
            if b:
                f.write(b)
                gz += len(b)

        head = b'{"Records":['
        emit(comp.compress(head))
        raw += len(head)
        last_sec, last_ts = -1, ""
        while gz < target:
            if gz > 1_000_000:
                per = gz / n
            left = max(1, int((target - gz) / per))
            recs = gen.background(min(10000, left + 1))
            chunk = []
            for k, (_, _, _, rec) in enumerate(recs):
                # event k of the object happens at t0 + k / per_hour hours: rewrite eventTime
                sec = (n + k) * 3600 // per_hour
                if sec != last_sec:
                    last_sec, last_ts = sec, fmt_time(t0 + sec)
                i = rec.index('"eventTime":"') + 13
                chunk.append(rec[:i] + last_ts + rec[i + 20:])
            if extra:
                chunk.extend(extra)
                extra = []
            r.shuffle(chunk)
            data = (("," if n else "") + ",".join(chunk)).encode()
            raw += len(data)
            n += len(chunk)
            emit(comp.compress(data))
        emit(comp.compress(b"]}"))
        raw += 2
        emit(comp.flush())
    return {"events": n, "files": 1, "raw": raw, "gz": gz, "path": path, "span_secs": last_sec + 1}, plans


def parse_time(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (AWSLogs/... is created inside)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--hours", type=int, default=1)
    ap.add_argument("--events-per-hour", type=int, default=10000, help="background events per hour (all accounts)")
    ap.add_argument("--identities", type=int, default=200)
    ap.add_argument("--accounts", type=int, default=1)
    ap.add_argument("--regions", type=int, default=3, help=f"1..{len(ALL_REGIONS)} (first = us-east-1)")
    ap.add_argument("--bursts", type=int, default=0, help="reconnaissance bursts to inject (ground truth: bursts.json)")
    ap.add_argument("--single-object-mb", type=float, default=None,
                    help="write ONE object of about this many MB (10^6 bytes) compressed instead of the hourly layout")
    ap.add_argument("--start", default="2026-11-20T00:00:00Z", help="first hour (UTC, on the hour)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (output is identical for any value)")
    ap.add_argument("--tail-identities", type=int, default=0,
                    help="extra IAM users (tail-0000000 ...), for memory vs active identities")
    ap.add_argument("--tail-events", type=int, default=None,
                    help="events of the tail identities in all, round-robin (default: one each)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.regions <= len(ALL_REGIONS):
        ap.error(f"--regions must be 1..{len(ALL_REGIONS)}")
    if a.accounts < 1 or a.hours < 1 or a.events_per_hour < 0:
        ap.error("--accounts and --hours must be >= 1, --events-per-hour >= 0")
    t0 = parse_time(a.start)
    if t0 % 3600:
        ap.error("--start must be on the hour")
    os.makedirs(a.out, exist_ok=True)
    t_begin = time.perf_counter()
    single = a.single_object_mb is not None
    world = World(a.seed, a.identities, 1 if single else a.accounts, 1 if single else a.regions)
    tail = Tail(world, a.tail_identities) if a.tail_identities > 0 else None
    tail_events = (a.tail_identities if a.tail_events is None else a.tail_events) if tail else 0
    if tail and single:
        ap.error("--tail-identities works with the hourly layout only")
    if single:
        stats, plans = run_single(world, a.seed, a.out, t0, a.single_object_mb, a.bursts, a.events_per_hour)
    else:
        plans = plan_bursts(world, a.seed, a.bursts, t0, a.hours * 3600)
        def tail_span(h):
            if tail is None:
                return None
            first = tail_events * h // a.hours
            return a.tail_identities, first, tail_events * (h + 1) // a.hours - first

        hours = [(a.seed, a.out, t0, h, a.events_per_hour,
                  [p for p in plans if p["events"][0][0] < t0 + (h + 1) * 3600 and p["events"][-1][0] >= t0 + h * 3600],
                  tail_span(h))
                 for h in range(a.hours)]
        if a.jobs > 1:
            import multiprocessing as mp
            global _WORLD
            _WORLD = world
            with mp.get_context("fork").Pool(a.jobs) as pool:
                res = pool.map(_run_hour_forked, hours, chunksize=1)
        else:
            res = [run_hour((world,) + h) for h in hours]
        stats = {k: sum(x[k] for x in res) for k in ("events", "files", "raw", "gz")}
    secs = time.perf_counter() - t_begin
    truth = [burst_truth(p) for p in plans]
    if a.bursts:
        with open(os.path.join(a.out, "bursts.json"), "w") as f:
            json.dump({"seed": a.seed, "start": fmt_time(t0), "bursts": truth}, f, indent=1)
            f.write("\n")
    summary = {
        "events": stats["events"], "files": stats["files"], "seconds": round(secs, 2),
        "events_per_sec": round(stats["events"] / secs) if secs else None,
        "raw_mb": round(stats["raw"] / 1e6, 1), "gz_mb": round(stats["gz"] / 1e6, 1),
        "avg_record_bytes": round(stats["raw"] / max(1, stats["events"])),
        "gz_mb_per_million_events": round(stats["gz"] / 1e6 / max(1, stats["events"]) * 1e6, 1),
        "raw_mb_per_million_events": round(stats["raw"] / 1e6 / max(1, stats["events"]) * 1e6, 1),
        "identities": len(world.identities), "accounts": len(world.accounts), "regions": len(world.regions),
        "event_names": world.n_event_names, "bursts": len(plans),
    }
    if tail:
        summary["tail_identities"] = a.tail_identities
        summary["tail_events"] = tail_events
        summary["tail_identities_active"] = min(a.tail_identities, tail_events)
    if single:
        summary["path"] = stats["path"]
        summary["span_secs"] = stats["span_secs"]
    if not a.quiet:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
