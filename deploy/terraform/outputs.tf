output "queue_url" {
  description = "Notification queue (RECONWATCH__SQS__QUEUE_URL)."
  value       = aws_sqs_queue.main.url
}

output "queue_arn" {
  description = "Notification queue ARN."
  value       = aws_sqs_queue.main.arn
}

output "dlq_url" {
  description = "Dead-letter queue: notifications reconwatch could not process."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "Dead-letter queue ARN."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_alarm_name" {
  description = "CloudWatch alarm raised when the DLQ is not empty."
  value       = aws_cloudwatch_metric_alarm.dlq_not_empty.alarm_name
}

output "alert_topic_arn" {
  description = "SNS topic the alerts are published to; subscribe consumers to it."
  value       = aws_sns_topic.alerts.arn
}

output "fanout_topic_arn" {
  description = "With use_sns_fanout: the topic carrying the bucket's ObjectCreated events (subscribe other consumers to it). null otherwise."
  value       = local.fanout_topic_arn
}

output "task_role_arn" {
  description = "IAM role the reconwatch container runs with (for KMS key policies and audits)."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ECS task execution role (image pull, logs)."
  value       = aws_iam_role.execution.arn
}

output "cluster_arn" {
  description = "ECS cluster the service runs in."
  value       = local.cluster_arn
}

output "service_name" {
  description = "ECS service name."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "Task definition revision in use (also usable with `aws ecs run-task` for a one-off `replay`)."
  value       = aws_ecs_task_definition.this.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the container (logs, and alerts with alerts_to_stdout)."
  value       = aws_cloudwatch_log_group.this.name
}

output "security_group_id" {
  description = "Security group of the task."
  value       = aws_security_group.this.id
}
