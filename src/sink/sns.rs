//! SNS sink: `Publish` of the alert JSON with `rule_id`, `severity` and
//! `kind` message attributes, so subscriptions can filter on them.

use aws_sdk_sns::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sns::types::MessageAttributeValue;

use super::{DeliveryError, Envelope};

pub(super) struct Sns {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

fn attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .expect("data_type is set")
}

impl Sns {
    pub(super) fn new(aws: &aws_config::SdkConfig, topic_arn: String) -> Self {
        // The sink retries itself (`max_attempts`); no SDK retries underneath.
        let conf = aws_sdk_sns::config::Builder::from(aws)
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_sns::Client::from_conf(conf),
            topic_arn,
        }
    }

    pub(super) async fn deliver(&self, env: &Envelope) -> Result<(), DeliveryError> {
        let a = &env.alert;
        let kind = match a.kind {
            crate::rules::alert::AlertKind::Alert => "alert",
            crate::rules::alert::AlertKind::Update => "update",
        };
        let subject: String = format!("reconwatch {}: {}", a.severity.as_str(), a.rule.name)
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        let res = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(&env.json)
            .subject(subject)
            .message_attributes("rule_id", attr(&a.rule.id))
            .message_attributes("severity", attr(a.severity.as_str()))
            .message_attributes("kind", attr(kind))
            .message_attributes("alert_id", attr(&a.alert_id))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.code().unwrap_or("");
                let msg = format!(
                    "sns publish to {}: {}",
                    self.topic_arn,
                    DisplayErrorContext(&e)
                );
                let permanent = matches!(
                    code,
                    "AuthorizationError"
                        | "InvalidParameter"
                        | "NotFound"
                        | "InvalidParameterValue"
                        | "KMSAccessDenied"
                        | "KMSDisabled"
                );
                if permanent {
                    Err(DeliveryError::permanent(format!(
                        "{msg} (needs sns:Publish on the topic)"
                    )))
                } else {
                    Err(DeliveryError::retryable(msg))
                }
            }
        }
    }
}
