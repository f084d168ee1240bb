#!/usr/bin/env bash
# Create, idempotently, the AWS resources reconwatch's demo needs in LocalStack:
#
#   s3://reconwatch-trail                  the "trail bucket"; ObjectCreated (*.json.gz) -> queue
#   sqs reconwatch-cloudtrail              what `reconwatch run` polls (VisibilityTimeout 300,
#                                          RedrivePolicy maxReceiveCount 5 -> the DLQ)
#   sqs reconwatch-cloudtrail-dlq          dead-letter queue (14 days retention)
#   sns reconwatch-alerts                  alert topic for the `sns` sink
#   sqs reconwatch-alerts-inbox            subscribed to the topic (raw delivery off), so the
#                                          published alerts can be read back
#
# Safe to run any number of times: it only creates what is missing and re-applies
# the attributes, policies and notification configuration of these resources. It
# never deletes anything. It talks to LocalStack only (fixed test/test credentials).
#
#   scripts/localstack.sh start && scripts/localstack-init.sh
#
# Environment:
#   AWS_ENDPOINT_URL  LocalStack endpoint (default http://127.0.0.1:4566)
#   AWS_CLI           aws binary to use (default `aws` on PATH); works with AWS CLI v1 and v2,
#                     e.g. AWS_CLI="$(ls ~/.cache/reconwatch/localstack-venv-*/bin/aws)"
#   LOCALSTACK_WAIT_SECS  how long to wait for the endpoint to answer (default 60)
#
# Prints KEY=value lines on stdout at the end (queue_url, dlq_url, topic_arn, ...);
# progress goes to stderr.
set -euo pipefail
shopt -s inherit_errexit # fail inside $(...) too

endpoint="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
aws_cli="${AWS_CLI:-aws}"
wait_secs="${LOCALSTACK_WAIT_SECS:-60}"
region="us-east-1"

bucket="reconwatch-trail"
queue="reconwatch-cloudtrail"
dlq="reconwatch-cloudtrail-dlq"
topic="reconwatch-alerts"
inbox="reconwatch-alerts-inbox"
suffix=".json.gz"
max_receive_count=5
visibility_timeout=300

# LocalStack accepts any credentials; "test" maps to account 000000000000. Never
# pick up a real profile, session token or pager from the caller's environment.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION="$region" AWS_DEFAULT_REGION="$region" AWS_PAGER=""
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SECURITY_TOKEN

if ! command -v "$aws_cli" >/dev/null 2>&1; then
    echo "localstack-init: aws CLI not found (AWS_CLI=$aws_cli); set AWS_CLI to its path" >&2
    exit 127
fi

awsls() {
    "$aws_cli" --endpoint-url "$endpoint" --region "$region" "$@"
}

log() { echo "localstack-init: $*" >&2; }

# Escape a string for use inside a JSON string literal.
json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '%s' "$s"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# One quick attempt per probe (no SDK retries), until the deadline.
probe() {
    AWS_MAX_ATTEMPTS=1 awsls --cli-connect-timeout 2 --cli-read-timeout 5 \
        sqs list-queues --output text >/dev/null
}
log "waiting for $endpoint"
deadline=$((SECONDS + wait_secs))
until probe 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "no answer from $endpoint after $wait_secs s"
        probe || true # show the error
        exit 1
    fi
    sleep 1
done

# --- queues -------------------------------------------------------------------

# get_queue_url NAME -> prints the queue URL, creating the queue when missing.
get_queue_url() {
    local name=$1
    if ! awsls sqs get-queue-url --queue-name "$name" --query QueueUrl --output text 2>/dev/null; then
        log "creating queue $name"
        awsls sqs create-queue --queue-name "$name" --query QueueUrl --output text
    fi
}

# ensure_queue NAME ATTRIBUTES_FILE -> prints the queue URL.
# Create when missing, then (re)apply the attributes, so a changed setting is
# fixed on the next run instead of failing with QueueAlreadyExists.
ensure_queue() {
    local name=$1 attrs=$2 url
    url="$(get_queue_url "$name")"
    log "setting attributes of queue $name"
    awsls sqs set-queue-attributes --queue-url "$url" --attributes "file://$attrs"
    printf '%s' "$url"
}

queue_arn() {
    awsls sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn \
        --query Attributes.QueueArn --output text
}

cat >"$tmp/dlq.json" <<EOF
{"MessageRetentionPeriod": "1209600"}
EOF
dlq_url="$(ensure_queue "$dlq" "$tmp/dlq.json")"
dlq_arn="$(queue_arn "$dlq_url")"

# The queue's ARN is known before it exists (arn:aws:sqs:REGION:ACCOUNT:NAME), but
# ask for it rather than guess the account: create the queue first, then set the
# policy that names it.
queue_arn="$(queue_arn "$(get_queue_url "$queue")")"
redrive="{\"deadLetterTargetArn\":\"$dlq_arn\",\"maxReceiveCount\":\"$max_receive_count\"}"
queue_policy="$(
    cat <<EOF
{"Version":"2012-10-17","Statement":[{"Sid":"TrailBucketNotifications","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"$queue_arn","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::$bucket"}}}]}
EOF
)"
cat >"$tmp/queue.json" <<EOF
{
  "VisibilityTimeout": "$visibility_timeout",
  "RedrivePolicy": "$(json_str "$redrive")",
  "Policy": "$(json_str "$queue_policy")"
}
EOF
queue_url="$(ensure_queue "$queue" "$tmp/queue.json")"

# --- trail bucket and its notification ----------------------------------------

if awsls s3api head-bucket --bucket "$bucket" >/dev/null 2>&1; then
    log "bucket $bucket exists"
else
    log "creating bucket $bucket"
    if [ "$region" = "us-east-1" ]; then
        awsls s3api create-bucket --bucket "$bucket" >/dev/null
    else
        awsls s3api create-bucket --bucket "$bucket" \
            --create-bucket-configuration "LocationConstraint=$region" >/dev/null
    fi
fi

# Replaces the bucket's whole notification configuration (the bucket is ours).
cat >"$tmp/notification.json" <<EOF
{
  "QueueConfigurations": [
    {
      "Id": "reconwatch-cloudtrail",
      "QueueArn": "$queue_arn",
      "Events": ["s3:ObjectCreated:*"],
      "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "$suffix"}]}}
    }
  ]
}
EOF
log "setting bucket notification $bucket -> $queue (suffix $suffix)"
awsls s3api put-bucket-notification-configuration --bucket "$bucket" \
    --notification-configuration "file://$tmp/notification.json"

# --- alert topic and its inbox queue ------------------------------------------

log "ensuring topic $topic"
topic_arn="$(awsls sns create-topic --name "$topic" --query TopicArn --output text)"

inbox_arn="$(queue_arn "$(get_queue_url "$inbox")")"
inbox_policy="$(
    cat <<EOF
{"Version":"2012-10-17","Statement":[{"Sid":"AlertTopic","Effect":"Allow","Principal":{"Service":"sns.amazonaws.com"},"Action":"sqs:SendMessage","Resource":"$inbox_arn","Condition":{"ArnEquals":{"aws:SourceArn":"$topic_arn"}}}]}
EOF
)"
cat >"$tmp/inbox.json" <<EOF
{"Policy": "$(json_str "$inbox_policy")"}
EOF
inbox_url="$(ensure_queue "$inbox" "$tmp/inbox.json")"

sub_arn="$(awsls sns list-subscriptions-by-topic --topic-arn "$topic_arn" \
    --query "Subscriptions[?Endpoint=='$inbox_arn'] | [0].SubscriptionArn" --output text)"
if [ -z "$sub_arn" ] || [ "$sub_arn" = "None" ]; then
    log "subscribing $inbox to $topic"
    sub_arn="$(awsls sns subscribe --topic-arn "$topic_arn" --protocol sqs \
        --notification-endpoint "$inbox_arn" --query SubscriptionArn --output text)"
else
    log "subscription $inbox -> $topic exists"
fi
awsls sns set-subscription-attributes --subscription-arn "$sub_arn" \
    --attribute-name RawMessageDelivery --attribute-value false

log "done"
echo "bucket=$bucket"
echo "queue_url=$queue_url"
echo "queue_arn=$queue_arn"
echo "dlq_url=$dlq_url"
echo "topic_arn=$topic_arn"
echo "alerts_inbox_url=$inbox_url"
echo "subscription_arn=$sub_arn"
