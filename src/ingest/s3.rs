//! S3 fetcher: streams an object through the decoder (never holding it
//! whole), retrying throttling and transient failures with backoff, and
//! turning S3's errors into messages that name the bucket, the key and the
//! IAM permission that is missing.

use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;

use super::notification::ObjectRef;
use crate::decode::{DecodeError, Event, EventOut, Limits, ObjectStats, decode_object};
use crate::sink::backoff;
use crate::telemetry::metrics;

/// Why an object could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The key does not exist (deleted, moved by a lifecycle rule, or a stale
    /// notification). Nothing to retry.
    #[error("s3://{bucket}/{key} does not exist ({code}); nothing to read")]
    Missing {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// S3's error code.
        code: String,
    },
    /// The role may not read the object (or decrypt it).
    #[error(
        "access denied reading s3://{bucket}/{key}: reconwatch's role needs {permission} ({detail})"
    )]
    AccessDenied {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The IAM action to grant.
        permission: &'static str,
        /// S3's message.
        detail: String,
    },
    /// Throttling or a transient failure that outlasted the retries.
    #[error("reading s3://{bucket}/{key} failed after {attempts} attempt(s): {detail}")]
    Transient {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        detail: String,
    },
    /// The content is bad (truncated gzip, not JSON, over a cap).
    #[error("s3://{bucket}/{key}: {source}")]
    Decode {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// What went wrong.
        #[source]
        source: DecodeError,
    },
}

impl FetchError {
    /// Whether the notification can be deleted anyway (nothing will ever be
    /// readable at that key).
    pub fn is_final(&self) -> bool {
        matches!(self, FetchError::Missing { .. })
    }

    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FetchError::Missing { .. } => "missing",
            FetchError::AccessDenied { .. } => "access_denied",
            FetchError::Transient { .. } => "transient",
            FetchError::Decode { .. } => "decode",
        }
    }
}

enum Class {
    Missing(String),
    Denied(&'static str, String),
    /// `If-Match` failed: the object was replaced since the first attempt.
    Changed,
    Retry(String),
}

fn classify(e: &SdkError<GetObjectError>) -> Class {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status().as_u16();
            let code = err.code().unwrap_or("").to_string();
            let msg = err.message().unwrap_or("").to_string();
            if err.is_no_such_key()
                || code == "NoSuchKey"
                || code == "NoSuchBucket"
                || status == 404
            {
                return Class::Missing(if code.is_empty() { "404".into() } else { code });
            }
            if status == 412 || code == "PreconditionFailed" {
                return Class::Changed;
            }
            // S3's usual KMS denial is `AccessDenied` with "The ciphertext
            // refers to a customer master key ...", naming neither KMS nor kms:.
            let lower = msg.to_ascii_lowercase();
            let kms = code.starts_with("KMS")
                || lower.contains("kms")
                || lower.contains("customer master key")
                || lower.contains("ciphertext");
            if code == "AccessDenied" || code.contains("AccessDenied") || status == 403 {
                let permission = if kms {
                    "kms:Decrypt on the trail's KMS key"
                } else {
                    "s3:GetObject on the trail prefix"
                };
                return Class::Denied(permission, format!("{code}: {msg}"));
            }
            Class::Retry(format!("{code} (HTTP {status}): {msg}"))
        }
        other => Class::Retry(DisplayErrorContext(other).to_string()),
    }
}

/// Drops the first `skip` events, passes the rest on and counts them: a
/// retried read decodes the object from its start again, and what an earlier
/// attempt delivered must not be delivered twice. (The shards would drop the
/// repeats as duplicates, but only while their dedup horizon covers them: an
/// object spanning hours has moved its watermark hold past its early events,
/// which would then be counted late.)
struct Resume<'o, O> {
    inner: &'o mut O,
    skip: u64,
    delivered: u64,
}

impl<O: EventOut + Send> EventOut for Resume<'_, O> {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        if self.skip > 0 {
            let k = events
                .len()
                .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
            events.drain(..k);
            self.skip -= k as u64;
        }
        if events.is_empty() {
            return Ok(());
        }
        let n = events.len() as u64;
        self.inner.push(events).await?;
        self.delivered += n;
        Ok(())
    }
}

/// Reads CloudTrail objects from S3.
#[derive(Debug, Clone)]
pub struct S3Fetcher {
    client: aws_sdk_s3::Client,
    limits: Limits,
    attempts: u32,
    backoff_base: Duration,
}

impl S3Fetcher {
    /// A fetcher using `client`.
    pub fn new(client: aws_sdk_s3::Client, limits: Limits, attempts: u32) -> Self {
        Self {
            client,
            limits,
            attempts: attempts.max(1),
            backoff_base: Duration::from_millis(200),
        }
    }

    /// The S3 client (for listing prefixes in replay).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Stream, decode and deliver one object. A read that fails midway is
    /// retried: the object is read again from its start, guarded by
    /// `If-Match` on the first response's ETag, and the events already
    /// delivered are skipped. If the object was replaced meanwhile (412), the
    /// new version is delivered whole.
    pub async fn process<O: EventOut + Send>(
        &self,
        obj: &ObjectRef,
        out: &mut O,
    ) -> Result<ObjectStats, FetchError> {
        let mut attempt = 0;
        // Events of the version being read that earlier attempts delivered.
        let mut delivered = 0u64;
        let mut etag: Option<String> = None;
        loop {
            attempt += 1;
            let last = attempt >= self.attempts;
            let resp = self
                .client
                .get_object()
                .bucket(&obj.bucket)
                .key(&obj.key)
                .set_if_match(etag.clone())
                .send()
                .await;
            let detail = match resp {
                Ok(o) => {
                    if let Some(n) = o.content_length() {
                        metrics().bytes_read.add(n.max(0) as u64);
                    }
                    if etag.is_none() {
                        etag = o.e_tag().map(str::to_owned);
                    }
                    let reader = o.body.into_async_read();
                    let mut resume = Resume {
                        inner: &mut *out,
                        skip: delivered,
                        delivered: 0,
                    };
                    let res = decode_object(reader, &obj.key, self.limits, &mut resume).await;
                    delivered += resume.delivered;
                    match res {
                        Ok(stats) => return Ok(stats),
                        Err(DecodeError::Read { bytes, source }) if !last => {
                            format!(
                                "read failed after {bytes} bytes ({delivered} events delivered; \
                                 the retry resumes after them): {source}"
                            )
                        }
                        Err(source) => {
                            return Err(FetchError::Decode {
                                bucket: obj.bucket.clone(),
                                key: obj.key.clone(),
                                source,
                            });
                        }
                    }
                }
                Err(e) => match classify(&e) {
                    Class::Missing(code) => {
                        return Err(FetchError::Missing {
                            bucket: obj.bucket.clone(),
                            key: obj.key.clone(),
                            code,
                        });
                    }
                    Class::Denied(permission, detail) => {
                        return Err(FetchError::AccessDenied {
                            bucket: obj.bucket.clone(),
                            key: obj.key.clone(),
                            permission,
                            detail,
                        });
                    }
                    Class::Changed => {
                        // Its events are not the ones counted: read it whole.
                        tracing::warn!(bucket = %obj.bucket, key = %obj.key, delivered,
                            "Object replaced while it was being read; reading the new version from its start.");
                        etag = None;
                        delivered = 0;
                        "the object was replaced between attempts".to_string()
                    }
                    Class::Retry(d) => d,
                },
            };
            if last {
                return Err(FetchError::Transient {
                    bucket: obj.bucket.clone(),
                    key: obj.key.clone(),
                    attempts: attempt,
                    detail,
                });
            }
            let wait = backoff(self.backoff_base, attempt - 1);
            tracing::warn!(bucket = %obj.bucket, key = %obj.key, attempt, error = %detail,
                retry_in_ms = wait.as_millis() as u64, "S3 read failed; retrying.");
            tokio::time::sleep(wait).await;
        }
    }

    /// Every object key under `prefix`, sorted (CloudTrail names sort by time).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectRef>, String> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                format!(
                    "listing s3://{bucket}/{prefix} failed (needs s3:ListBucket): {}",
                    DisplayErrorContext(&e)
                )
            })?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectRef {
                        bucket: bucket.to_string(),
                        key: k.to_string(),
                        size: o.size().map(|s| s.max(0) as u64),
                        version_tag: o.e_tag().map(str::to_string),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
