# reconwatch on ECS Fargate: the notification queue (+ DLQ), the bucket
# notification (direct or through an SNS fan-out topic), the alert topic, a
# least-privilege task role and the service itself.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  account_id = data.aws_caller_identity.current.account_id
  # The deployment's region, read from an ARN this module creates (works the
  # same with the 5.x and 6.x providers).
  region = split(":", aws_sqs_queue.main.arn)[3]

  bucket_arn        = "arn:${local.partition}:s3:::${var.trail_bucket_name}"
  bucket_account_id = coalesce(var.trail_bucket_account_id, local.account_id)
  # s3:GetObject scope; "" = the whole bucket.
  trail_objects_arn = "${local.bucket_arn}/${var.trail_prefix}*"

  queue_name = "${var.name}-cloudtrail"
  dlq_name   = "${var.name}-cloudtrail-dlq"

  create_fanout_topic = var.use_sns_fanout && var.fanout_topic_arn == null
  fanout_topic_arn = (
    !var.use_sns_fanout ? null :
    local.create_fanout_topic ? one(aws_sns_topic.fanout[*].arn) : var.fanout_topic_arn
  )
  # An existing fan-out topic is already fed by someone else's notification.
  manage_notification = var.create_bucket_notification && var.fanout_topic_arn == null

  cluster_arn = var.cluster_arn != null ? var.cluster_arn : one(aws_ecs_cluster.this[*].arn)

  sinks = concat(
    var.alerts_to_stdout ? ["{type=\"stdout\"}"] : [],
    ["{type=\"sns\",topic_arn=\"${aws_sns_topic.alerts.arn}\"}"],
  )
  # RECONWATCH__SECTION__KEY overrides of the image's /etc/reconwatch/reconwatch.toml.
  environment = merge(
    {
      RECONWATCH__AWS__REGION                  = local.region
      RECONWATCH__SQS__QUEUE_URL               = aws_sqs_queue.main.url
      RECONWATCH__SQS__VISIBILITY_TIMEOUT_SECS = tostring(var.visibility_timeout_seconds)
      RECONWATCH__SINKS                        = "[${join(",", local.sinks)}]"
      RECONWATCH__TELEMETRY__LOG_FORMAT        = "json"
    },
    var.state_s3_uri == null ? {} : {
      RECONWATCH__STATE__KIND   = "s3"
      RECONWATCH__STATE__S3_URI = var.state_s3_uri
    },
    var.extra_environment,
  )

  # s3://bucket/prefix → the objects the state store reads and writes.
  state_match       = var.state_s3_uri == null ? null : regex("^s3://([^/]+)/?(.*)$", var.state_s3_uri)
  state_objects_arn = local.state_match == null ? null : "arn:${local.partition}:s3:::${local.state_match[0]}/${trimsuffix(local.state_match[1], "/")}${local.state_match[1] == "" ? "" : "/"}*"

  container_name = "reconwatch"
  state_volume   = "state"
}

check "single_task" {
  assert {
    condition     = var.desired_count <= 1
    error_message = "desired_count > 1: each task keeps its own detection windows and sees only the notifications it receives, so threshold and correlation rules may miss activity split across tasks."
  }
}

# ---------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------

# Messages reconwatch cannot process (unknown shape, objects it cannot read)
# are not deleted: after max_receive_count receives SQS moves them here.
resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

resource "aws_sqs_queue" "main" {
  name                       = local.queue_name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.fanout_topic_arn == null || var.use_sns_fanout
      error_message = "fanout_topic_arn is only used with use_sns_fanout = true."
    }
  }
}

# Only the main queue may use the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main.arn]
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.main.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = var.use_sns_fanout ? [] : [1]
    content {
      sid       = "TrailBucketNotifications"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.main.arn]
      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.bucket_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.bucket_account_id]
      }
    }
  }

  dynamic "statement" {
    for_each = var.use_sns_fanout ? [1] : []
    content {
      sid       = "FanoutTopic"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.main.arn]
      principals {
        type        = "Service"
        identifiers = ["sns.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.fanout_topic_arn]
      }
    }
  }
}

resource "aws_sqs_queue_policy" "main" {
  queue_url = aws_sqs_queue.main.id
  policy    = data.aws_iam_policy_document.queue.json
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${local.dlq_name}-not-empty"
  alarm_description   = "reconwatch could not process some S3 notifications; inspect ${local.dlq_name}, fix the cause, then redrive the messages to ${local.queue_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.dlq_alarm_actions
  ok_actions          = var.dlq_alarm_actions
  tags                = var.tags
}

# ---------------------------------------------------------------------------
# Bucket notifications: bucket -> queue, or bucket -> SNS topic -> queue
# ---------------------------------------------------------------------------

resource "aws_sns_topic" "fanout" {
  count = local.create_fanout_topic ? 1 : 0
  name  = "${var.name}-trail-events"
  tags  = var.tags
}

data "aws_iam_policy_document" "fanout" {
  count = local.create_fanout_topic ? 1 : 0

  statement {
    sid       = "TrailBucketNotifications"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.fanout[0].arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.bucket_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.bucket_account_id]
    }
  }
}

resource "aws_sns_topic_policy" "fanout" {
  count  = local.create_fanout_topic ? 1 : 0
  arn    = aws_sns_topic.fanout[0].arn
  policy = data.aws_iam_policy_document.fanout[0].json
}

# reconwatch unwraps the SNS envelope (raw delivery off), and reads raw
# messages as well.
resource "aws_sns_topic_subscription" "fanout" {
  count                = var.use_sns_fanout ? 1 : 0
  topic_arn            = local.fanout_topic_arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.main.arn
  raw_message_delivery = false

  depends_on = [aws_sqs_queue_policy.main]
}

# Owns the bucket's whole notification configuration (see create_bucket_notification).
# S3 checks the destination's policy when the configuration is written, hence
# the depends_on.
resource "aws_s3_bucket_notification" "trail" {
  count  = local.manage_notification ? 1 : 0
  bucket = var.trail_bucket_name

  dynamic "queue" {
    for_each = var.use_sns_fanout ? [] : [1]
    content {
      id            = local.queue_name
      queue_arn     = aws_sqs_queue.main.arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.trail_prefix == "" ? null : var.trail_prefix
      filter_suffix = ".json.gz"
    }
  }

  dynamic "topic" {
    for_each = var.use_sns_fanout ? [1] : []
    content {
      id            = "${var.name}-trail-events"
      topic_arn     = local.fanout_topic_arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.trail_prefix == "" ? null : var.trail_prefix
      filter_suffix = ".json.gz"
    }
  }

  depends_on = [aws_sqs_queue_policy.main, aws_sns_topic_policy.fanout]
}

# ---------------------------------------------------------------------------
# Alert topic (the `sns` sink); subscribe your SOAR / email / chat to it.
# ---------------------------------------------------------------------------

resource "aws_sns_topic" "alerts" {
  name              = "${var.name}-alerts"
  kms_master_key_id = var.alert_topic_kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------

data "aws_iam_policy_document" "execution_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Pulls the image and writes the awslogs stream; never seen by reconwatch.
resource "aws_iam_role" "execution" {
  name                 = "${var.name}-execution"
  assume_role_policy   = data.aws_iam_policy_document.execution_assume.json
  permissions_boundary = var.iam_permissions_boundary_arn
  tags                 = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# The task role is what the AWS SDK's default chain picks up in the task.
data "aws_iam_policy_document" "task_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    # Confused-deputy guard: only ECS acting for this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:*:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  name                 = "${var.name}-task"
  assume_role_policy   = data.aws_iam_policy_document.task_assume.json
  permissions_boundary = var.iam_permissions_boundary_arn
  tags                 = var.tags
}

data "aws_iam_policy_document" "task" {
  # Poll, delete when done, extend visibility while processing (heartbeat).
  statement {
    sid = "ConsumeNotifications"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.main.arn]
  }

  # Read the CloudTrail log files, and nothing else in the bucket.
  statement {
    sid       = "ReadTrailObjects"
    actions   = ["s3:GetObject"]
    resources = [local.trail_objects_arn]
  }

  # `reconwatch replay s3://bucket/prefix` lists a prefix; only under the trail prefix.
  statement {
    sid       = "ListTrailPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    dynamic "condition" {
      for_each = var.trail_prefix == "" ? [] : [1]
      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${var.trail_prefix}*"]
      }
    }
  }

  # SSE-KMS trail: decrypt the log files, and only through S3.
  dynamic "statement" {
    for_each = var.trail_kms_key_arn == null ? [] : [var.trail_kms_key_arn]
    content {
      sid       = "DecryptTrailObjects"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["s3.*.${local.dns_suffix}"]
      }
    }
  }

  # Persisted baselines and new-terms history (state.kind = "s3"), that prefix only.
  dynamic "statement" {
    for_each = local.state_objects_arn == null ? [] : [local.state_objects_arn]
    content {
      sid       = "PersistState"
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = [statement.value]
    }
  }

  # The `sns` sink.
  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  dynamic "statement" {
    for_each = var.alert_topic_kms_key_arn == null ? [] : [var.alert_topic_kms_key_arn]
    content {
      sid       = "EncryptAlerts"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringLike"
        variable = "kms:ViaService"
        values   = ["sns.*.${local.dns_suffix}"]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------------------
# ECS Fargate
# ---------------------------------------------------------------------------

resource "aws_ecs_cluster" "this" {
  count = var.cluster_arn == null ? 1 : 0
  name  = var.name
  tags  = var.tags
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "reconwatch task: HTTPS egress to the AWS APIs only"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to the AWS APIs (SQS, S3, SNS, KMS, ECR, CloudWatch Logs)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.egress_cidr_blocks
  }

  dynamic "ingress" {
    for_each = length(var.metrics_ingress_cidr_blocks) > 0 ? [1] : []
    content {
      description = "reconwatch /metrics, /healthz, /readyz"
      from_port   = 9090
      to_port     = 9090
      protocol    = "tcp"
      cidr_blocks = var.metrics_ingress_cidr_blocks
    }
  }

  tags = merge(var.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.cpu)
  memory                   = tostring(var.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Fargate ephemeral bind mount (no host path) for pipeline.state_dir: the
  # root filesystem is read-only and Fargate has no tmpfs. The image declares
  # VOLUME /var/lib/reconwatch owned by uid 10001, so ECS copies that
  # ownership into the volume and the non-root process can write to it.
  volume {
    name = local.state_volume
  }

  container_definitions = jsonencode([
    {
      name                   = local.container_name
      image                  = var.container_image
      essential              = true
      command                = ["run"]
      readonlyRootFilesystem = true
      stopTimeout            = 40 # pipeline.shutdown_grace_secs (30) + margin

      portMappings = [
        { containerPort = 9090, protocol = "tcp" },
      ]

      environment = [
        for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }
      ]

      mountPoints = [
        {
          sourceVolume  = local.state_volume
          containerPath = "/var/lib/reconwatch"
          readOnly      = false
        },
      ]

      healthCheck = {
        command     = ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 15
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.this.name
          awslogs-region        = local.region
          awslogs-stream-prefix = local.container_name
        }
      }
    },
  ])

  tags = var.tags
}

resource "aws_ecs_service" "this" {
  name             = var.name
  cluster          = local.cluster_arn
  task_definition  = aws_ecs_task_definition.this.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Stop the old task before starting the new one, so two processes never
  # split an identity's events between their windows; notifications wait in
  # the queue meanwhile.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = var.assign_public_ip
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  tags                    = var.tags

  depends_on = [
    aws_iam_role_policy_attachment.execution,
    aws_iam_role_policy.task,
  ]
}
