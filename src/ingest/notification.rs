//! Every shape in which "a CloudTrail object was written" reaches the queue:
//!
//! | shape | looks like | result |
//! |---|---|---|
//! | S3 event notification | `{"Records":[{"eventSource":"aws:s3","s3":{...}}]}` | objects (keys URL-decoded) |
//! | S3 test event | `{"Event":"s3:TestEvent",...}` | ignored |
//! | SNS envelope (raw delivery off) | `{"Type":"Notification","Message":"..."}` | the inner message, parsed again |
//! | SNS subscription / unsubscribe confirmation | `{"Type":"SubscriptionConfirmation",...}` | ignored (logged) |
//! | CloudTrail's SNS message | `{"s3Bucket":"b","s3ObjectKey":["k",...]}` | objects |
//! | EventBridge | `{"detail-type":"Object Created","source":"aws.s3",...}` | objects (keys as is) |
//! | CloudTrail's validation message | `CloudTrail validation message.` | ignored |
//!
//! Anything else is an error: the poller logs it, counts it and leaves the
//! message for the queue's redrive policy (DLQ).

use percent_encoding::percent_decode_str;
use serde_json::Value;

/// One object to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key (decoded).
    pub key: String,
    /// Size in bytes, when the notification says.
    pub size: Option<u64>,
    /// S3's sequencer or ETag, for duplicate detection.
    pub version_tag: Option<String>,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to process.
    Objects(Vec<ObjectRef>),
    /// Nothing to do; the label says which known shape (metric label).
    Ignore(&'static str),
}

/// A message that is not a known shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Not JSON and not a known text message.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON of an unknown shape.
    #[error("unknown notification shape (top-level keys: {0})")]
    UnknownShape(String),
    /// A known shape with a missing or mistyped field.
    #[error("malformed {shape}: {detail}")]
    Malformed {
        /// The shape.
        shape: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// S3 notification keys are URL-encoded with `+` for spaces.
pub fn decode_s3_key(raw: &str) -> String {
    let plus = raw.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

const VALIDATION_MESSAGE: &str = "CloudTrail validation message.";

/// Parse a message body.
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    parse_depth(body, 0)
}

fn parse_depth(body: &str, depth: u8) -> Result<Notification, NotificationError> {
    let trimmed = body.trim();
    if trimmed == VALIDATION_MESSAGE || trimmed == format!("\"{VALIDATION_MESSAGE}\"") {
        return Ok(Notification::Ignore("cloudtrail_validation"));
    }
    let v: Value = serde_json::from_str(trimmed).map_err(|e| {
        let head: String = trimmed.chars().take(80).collect();
        NotificationError::NotJson(format!("{e}; body starts {head:?}"))
    })?;
    let Value::Object(obj) = &v else {
        if let Value::String(s) = &v
            && s.trim() == VALIDATION_MESSAGE
        {
            return Ok(Notification::Ignore("cloudtrail_validation"));
        }
        return Err(NotificationError::UnknownShape("<not an object>".into()));
    };
    // SNS envelope.
    if let Some(Value::String(t)) = obj.get("Type") {
        match t.as_str() {
            "Notification" if depth == 0 => {
                let inner = obj.get("Message").and_then(Value::as_str).ok_or_else(|| {
                    NotificationError::Malformed {
                        shape: "SNS notification",
                        detail: "no Message string".into(),
                    }
                })?;
                return parse_depth(inner, depth + 1);
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
                tracing::warn!(
                    topic = obj.get("TopicArn").and_then(|v| v.as_str()).unwrap_or("?"),
                    kind = %t,
                    "SNS subscription message on the queue; confirm the subscription in SNS (reconwatch does not follow its URL)."
                );
                return Ok(Notification::Ignore("sns_subscription"));
            }
            _ => {}
        }
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Ignore("s3_test_event"));
    }
    if let Some(records) = obj.get("Records") {
        return parse_s3_event(records);
    }
    if obj.contains_key("s3Bucket") || obj.contains_key("s3ObjectKey") {
        let bucket = obj.get("s3Bucket").and_then(Value::as_str).ok_or_else(|| {
            NotificationError::Malformed {
                shape: "CloudTrail SNS message",
                detail: "s3Bucket is not a string".into(),
            }
        })?;
        let keys = obj
            .get("s3ObjectKey")
            .and_then(Value::as_array)
            .ok_or_else(|| NotificationError::Malformed {
                shape: "CloudTrail SNS message",
                detail: "s3ObjectKey is not a list".into(),
            })?;
        let objects = keys
            .iter()
            .map(|k| {
                k.as_str()
                    .map(|k| ObjectRef {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                        size: None,
                        version_tag: None,
                    })
                    .ok_or_else(|| NotificationError::Malformed {
                        shape: "CloudTrail SNS message",
                        detail: "a key is not a string".into(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Notification::Objects(objects));
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.s3")
        && obj.contains_key("detail-type")
    {
        let dt = obj.get("detail-type").and_then(Value::as_str).unwrap_or("");
        if dt != "Object Created" {
            return Ok(Notification::Ignore("eventbridge_other"));
        }
        let detail = obj
            .get("detail")
            .ok_or_else(|| NotificationError::Malformed {
                shape: "EventBridge event",
                detail: "no detail".into(),
            })?;
        let bucket = detail.pointer("/bucket/name").and_then(Value::as_str);
        let key = detail.pointer("/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(NotificationError::Malformed {
                shape: "EventBridge event",
                detail: "detail.bucket.name or detail.object.key missing".into(),
            });
        };
        // EventBridge object keys are not URL-encoded (unlike S3 notifications).
        return Ok(Notification::Objects(vec![ObjectRef {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: detail.pointer("/object/size").and_then(Value::as_u64),
            version_tag: detail
                .pointer("/object/sequencer")
                .or_else(|| detail.pointer("/object/etag"))
                .and_then(Value::as_str)
                .map(str::to_string),
        }]));
    }
    let keys: Vec<&str> = obj.keys().map(String::as_str).take(10).collect();
    Err(NotificationError::UnknownShape(keys.join(",")))
}

fn parse_s3_event(records: &Value) -> Result<Notification, NotificationError> {
    let malformed = |detail: &str| NotificationError::Malformed {
        shape: "S3 event notification",
        detail: detail.to_string(),
    };
    let records = records
        .as_array()
        .ok_or_else(|| malformed("Records is not a list"))?;
    let mut objects = Vec::new();
    let mut other = 0;
    for r in records {
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if r.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
            return Err(malformed("a record's eventSource is not aws:s3"));
        }
        if !name.starts_with("ObjectCreated:") {
            other += 1;
            continue;
        }
        let bucket = r
            .pointer("/s3/bucket/name")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("s3.bucket.name missing"))?;
        let key = r
            .pointer("/s3/object/key")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("s3.object.key missing"))?;
        objects.push(ObjectRef {
            bucket: bucket.to_string(),
            key: decode_s3_key(key),
            size: r.pointer("/s3/object/size").and_then(Value::as_u64),
            version_tag: r
                .pointer("/s3/object/sequencer")
                .or_else(|| r.pointer("/s3/object/eTag"))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    if objects.is_empty() && other > 0 {
        return Ok(Notification::Ignore("s3_not_object_created"));
    }
    Ok(Notification::Objects(objects))
}

/// Why an object is not read.
pub fn skip_reason(o: &ObjectRef) -> Option<&'static str> {
    let k = o.key.as_str();
    if k.ends_with('/') {
        return Some("folder");
    }
    if k.contains("/CloudTrail-Digest/") || k.contains("_CloudTrail-Digest_") {
        return Some("digest");
    }
    if k.contains("/CloudTrail-Insight/") || k.contains("_CloudTrail-Insight_") {
        return Some("insight");
    }
    if o.size == Some(0) {
        return Some("empty");
    }
    if !(k.ends_with(".json.gz") || k.ends_with(".json") || k.ends_with(".gz")) {
        return Some("not_json");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const S3_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/CloudTrail/us-east-1/2026/01/01/1_CloudTrail_us-east-1_20260101T0000Z_a%2Bb+c.json.gz","size":1234,"eTag":"e","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    fn obj(key: &str) -> ObjectRef {
        ObjectRef {
            bucket: "trail".into(),
            key: key.into(),
            size: Some(10),
            version_tag: None,
        }
    }

    #[test]
    fn s3_event_with_encoded_key() {
        let Notification::Objects(o) = parse(S3_EVENT).unwrap() else {
            panic!()
        };
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].bucket, "trail");
        assert!(o[0].key.ends_with("_a+b c.json.gz"), "{}", o[0].key);
        assert_eq!(o[0].size, Some(1234));
        assert_eq!(o[0].version_tag.as_deref(), Some("0055AED6DCD90281E5"));
    }

    #[test]
    fn sns_wrapped_s3_event_raw_and_enveloped() {
        let env = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": S3_EVENT, "Timestamp": "2026-01-01T00:00:00.000Z"
        })
        .to_string();
        assert_eq!(parse(&env).unwrap(), parse(S3_EVENT).unwrap());
    }

    #[test]
    fn cloudtrail_sns_message_plain_and_enveloped() {
        let ct = r#"{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/CloudTrail/us-east-1/2026/01/01/x.json.gz","AWSLogs/1/CloudTrail/us-east-1/2026/01/01/y.json.gz"]}"#;
        let Notification::Objects(o) = parse(ct).unwrap() else {
            panic!()
        };
        assert_eq!(o.len(), 2);
        let env = serde_json::json!({"Type":"Notification","Message":ct}).to_string();
        assert_eq!(parse(&env).unwrap(), parse(ct).unwrap());
    }

    #[test]
    fn eventbridge_object_created() {
        let eb = r#"{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":["arn:aws:s3:::trail"],"detail":{"version":"0","bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/CloudTrail/x 1:2.json.gz","size":5,"etag":"e","sequencer":"s"},"reason":"PutObject"}}"#;
        let Notification::Objects(o) = parse(eb).unwrap() else {
            panic!()
        };
        assert_eq!(o[0].key, "AWSLogs/1/CloudTrail/x 1:2.json.gz");
        assert_eq!(o[0].version_tag.as_deref(), Some("s"));
    }

    #[test]
    fn ignorable_messages() {
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"t","Bucket":"b","RequestId":"r","HostId":"h"}"#).unwrap(),
            Notification::Ignore("s3_test_event")
        );
        assert_eq!(
            parse("CloudTrail validation message.").unwrap(),
            Notification::Ignore("cloudtrail_validation")
        );
        let env =
            serde_json::json!({"Type":"Notification","Message":"CloudTrail validation message."})
                .to_string();
        assert_eq!(
            parse(&env).unwrap(),
            Notification::Ignore("cloudtrail_validation")
        );
        let sub = r#"{"Type":"SubscriptionConfirmation","TopicArn":"arn:aws:sns:us-east-1:1:t","SubscribeURL":"https://x"}"#;
        assert_eq!(
            parse(sub).unwrap(),
            Notification::Ignore("sns_subscription")
        );
        let removed = S3_EVENT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(
            parse(&removed).unwrap(),
            Notification::Ignore("s3_not_object_created")
        );
    }

    #[test]
    fn unknown_shapes_are_errors() {
        assert!(matches!(parse("hello"), Err(NotificationError::NotJson(_))));
        assert!(
            matches!(parse(r#"{"foo":1}"#), Err(NotificationError::UnknownShape(k)) if k == "foo")
        );
        assert!(matches!(
            parse("[1]"),
            Err(NotificationError::UnknownShape(_))
        ));
        assert!(matches!(
            parse(r#"{"Records":5}"#),
            Err(NotificationError::Malformed { .. })
        ));
        assert!(matches!(
            parse(r#"{"s3Bucket":"b","s3ObjectKey":"k"}"#),
            Err(NotificationError::Malformed { .. })
        ));
        // An SNS envelope inside an SNS envelope is not a known shape.
        let inner = serde_json::json!({"Type":"Notification","Message":"{}"}).to_string();
        let outer = serde_json::json!({"Type":"Notification","Message":inner}).to_string();
        assert!(parse(&outer).is_err());
    }

    #[test]
    fn skip_reasons() {
        assert_eq!(
            skip_reason(&obj(
                "AWSLogs/1/CloudTrail-Digest/us-east-1/2026/01/01/d.json.gz"
            )),
            Some("digest")
        );
        assert_eq!(
            skip_reason(&obj("AWSLogs/1/CloudTrail-Insight/us-east-1/x.json.gz")),
            Some("insight")
        );
        assert_eq!(skip_reason(&obj("AWSLogs/1/CloudTrail/")), Some("folder"));
        assert_eq!(
            skip_reason(&obj("AWSLogs/1/Config/x.txt")),
            Some("not_json")
        );
        let mut e = obj("AWSLogs/1/CloudTrail/a.json.gz");
        assert_eq!(skip_reason(&e), None);
        e.size = Some(0);
        assert_eq!(skip_reason(&e), Some("empty"));
    }
}
