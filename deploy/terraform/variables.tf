# ---------------------------------------------------------------------------
# Required
# ---------------------------------------------------------------------------

variable "container_image" {
  description = "reconwatch image (built from the repository's Dockerfile), e.g. 111122223333.dkr.ecr.us-east-1.amazonaws.com/reconwatch:0.1.0."
  type        = string

  validation {
    condition     = length(trimspace(var.container_image)) > 0
    error_message = "container_image must not be empty."
  }
}

variable "trail_bucket_name" {
  description = "Name of the S3 bucket CloudTrail delivers to. It must be in the same region as this deployment (S3 event notifications only reach same-region queues and topics)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Fargate task's security group."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets for the Fargate task. They need a route to the AWS APIs (SQS, S3, SNS, ECR, CloudWatch Logs, and KMS when a key is used): a NAT gateway or VPC endpoints; or public subnets with assign_public_ip = true."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must name at least one subnet."
  }
}

# ---------------------------------------------------------------------------
# Trail bucket and notifications
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name prefix of every resource: <name>-cloudtrail (queue), <name>-cloudtrail-dlq, <name>-alerts (topic), <name> (service, task family, cluster)."
  type        = string
  default     = "reconwatch"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,40}$", var.name))
    error_message = "name must be 1-40 characters of letters, digits, '-' and '_'."
  }
}

variable "trail_prefix" {
  description = "Key prefix of the CloudTrail objects in the bucket: \"AWSLogs/\" for a trail without an S3 key prefix, \"<prefix>/AWSLogs/\" with one. Scopes s3:GetObject / s3:ListBucket and the bucket notification filter. \"\" means the whole bucket."
  type        = string
  default     = "AWSLogs/"

  validation {
    condition     = !startswith(var.trail_prefix, "/")
    error_message = "trail_prefix is an S3 key prefix and must not start with '/'."
  }
}

variable "trail_bucket_account_id" {
  description = "Account that owns the trail bucket (aws:SourceAccount in the queue/topic policies). Default: the deploying account."
  type        = string
  default     = null
}

variable "trail_kms_key_arn" {
  description = "ARN of the KMS key CloudTrail encrypts the log files with (SSE-KMS), if any. The task role then gets kms:Decrypt on it (via S3 only); the key policy must also allow that role, or delegate to IAM."
  type        = string
  default     = null

  validation {
    condition     = var.trail_kms_key_arn == null || startswith(coalesce(var.trail_kms_key_arn, "-"), "arn:")
    error_message = "trail_kms_key_arn must be a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "create_bucket_notification" {
  description = "Manage the bucket's event notification (ObjectCreated on trail_prefix*.json.gz -> the queue, or -> the fan-out topic with use_sns_fanout). aws_s3_bucket_notification owns the bucket's WHOLE notification configuration: set false when anything else already configures notifications on this bucket. Ignored when fanout_topic_arn is set."
  type        = bool
  default     = true
}

variable "use_sns_fanout" {
  description = "Deliver the bucket's notifications through an SNS topic (bucket -> topic -> queue) instead of straight to the queue, so other consumers can subscribe to the same events. Creates the topic unless fanout_topic_arn names an existing one."
  type        = bool
  default     = false
}

variable "fanout_topic_arn" {
  description = "With use_sns_fanout: an existing topic that already receives the bucket's ObjectCreated notifications (or CloudTrail's own SNS notifications); the queue is subscribed to it and no bucket notification or topic is created. Its topic policy must let this account subscribe."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------
# Queues and alerts
# ---------------------------------------------------------------------------

variable "visibility_timeout_seconds" {
  description = "Queue visibility timeout; also passed to reconwatch (sqs.visibility_timeout_secs), which extends it while a message's objects are still being processed."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_timeout_seconds >= 1 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be 1..43200."
  }
}

variable "message_retention_seconds" {
  description = "Retention of the notification queue (4 days by default). The DLQ keeps messages 14 days."
  type        = number
  default     = 345600
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the DLQ (redrive policy)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be 1..1000."
  }
}

variable "dlq_alarm_actions" {
  description = "ARNs notified (e.g. an SNS topic of the on-call) when the DLQ is not empty. Empty: the alarm is still created, without actions."
  type        = list(string)
  default     = []
}

variable "alert_topic_kms_key_arn" {
  description = "Customer managed KMS key to encrypt the alert topic with (SSE). The task role then gets kms:GenerateDataKey and kms:Decrypt on it. Default: not encrypted at rest by SNS."
  type        = string
  default     = null
}

variable "alerts_to_stdout" {
  description = "Also write alerts to stdout (a stdout sink), i.e. to the CloudWatch log group."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# ECS Fargate
# ---------------------------------------------------------------------------

variable "cluster_arn" {
  description = "Existing ECS cluster to run in. Default: create one named <name>."
  type        = string
  default     = null
}

variable "desired_count" {
  description = "Tasks to run. Keep 1: detection windows live in one process, so several tasks would each see only part of an identity's activity."
  type        = number
  default     = 1
}

variable "cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Fargate task memory (MiB)."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64; must match the image."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "assign_public_ip" {
  description = "Give the task a public IP (only for public subnets without NAT)."
  type        = bool
  default     = false
}

variable "egress_cidr_blocks" {
  description = "Where the task may connect (HTTPS, 443/tcp): the AWS APIs. Narrow it to VPC endpoint / prefix-list ranges when you have them."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "metrics_ingress_cidr_blocks" {
  description = "CIDRs allowed to reach 9090/tcp (/metrics, /healthz, /readyz), e.g. a Prometheus in the VPC. Default: none, the security group has egress only."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group /ecs/<name>."
  type        = number
  default     = 30
}

variable "log_kms_key_arn" {
  description = "KMS key to encrypt the CloudWatch log group with (its key policy must allow the CloudWatch Logs service). Default: CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "state_s3_uri" {
  description = "s3://bucket/prefix where reconwatch persists baselines (rule 5) and new-terms history (rules 3, 6). Fargate's volume is ephemeral, so without it the learnt state is lost at every task replacement. null = keep state on the task's volume. The task role gets s3:GetObject/s3:PutObject on that prefix only."
  type        = string
  default     = null
  validation {
    condition     = var.state_s3_uri == null || can(regex("^s3://[a-z0-9.-]{3,63}(/.*)?$", var.state_s3_uri))
    error_message = "state_s3_uri must look like s3://bucket[/prefix]."
  }
}

variable "extra_environment" {
  description = "More environment variables for the container, e.g. { RECONWATCH__RULES__DISABLED = \"['first_get_caller_identity']\" }. Overrides the module's own on a name clash."
  type        = map(string)
  default     = {}
}

variable "iam_permissions_boundary_arn" {
  description = "Permissions boundary to attach to the task and execution roles, if your organisation requires one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
