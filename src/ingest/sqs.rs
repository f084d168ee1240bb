//! SQS poller: long-polls the notification queue, fetches every object a
//! message names, and deletes the message only when every event of those
//! objects has been applied by the shard actors ([`Ack`]). While a message
//! is being processed its visibility is extended (heartbeat), so a large or
//! slow object is not redelivered under our feet.
//!
//! Failure policy (vector's, "prefer duplicates over loss"): a message whose
//! objects could not all be read is left alone; SQS redelivers it after the
//! visibility timeout and, after `maxReceiveCount`, moves it to the DLQ the
//! queue's redrive policy names. Unknown shapes take the same path.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ack::Ack;
use super::deferred::DeferredAcks;
use super::notification::{self, Notification, ObjectRef};
use super::s3::S3Fetcher;
use crate::config::SqsConfig;
use crate::decode::record_stats;
use crate::shard::{Router, now_ms};
use crate::sink::backoff;
use crate::telemetry::metrics;

/// Liveness facts for `/readyz`.
#[derive(Debug, Default)]
pub struct Health {
    /// Wall time (ms) of the last successful ReceiveMessage; 0 = never.
    pub sqs_last_ok_ms: AtomicI64,
}

/// Objects read completely recently: a second notification for the same
/// (bucket, key, sequencer/ETag) within the horizon is skipped. Recorded only
/// after success, so a failed object is always retried.
#[derive(Debug)]
pub struct SeenObjects {
    map: dashmap::DashMap<(String, String, String), i64>,
    horizon_ms: i64,
}

impl SeenObjects {
    /// A set remembering objects for `horizon`.
    pub fn new(horizon: Duration) -> Self {
        Self {
            map: dashmap::DashMap::new(),
            horizon_ms: horizon.as_millis() as i64,
        }
    }

    fn key(o: &ObjectRef) -> (String, String, String) {
        (
            o.bucket.clone(),
            o.key.clone(),
            o.version_tag.clone().unwrap_or_default(),
        )
    }

    /// Whether `o` was read completely within the horizon.
    pub fn contains(&self, o: &ObjectRef) -> bool {
        let now = now_ms();
        self.map
            .get(&Self::key(o))
            .is_some_and(|t| now - *t <= self.horizon_ms)
    }

    /// Remember `o` as read; forgets expired entries now and then.
    pub fn insert(&self, o: &ObjectRef) {
        let now = now_ms();
        self.map.insert(Self::key(o), now);
        if self.map.len().is_multiple_of(1024) {
            self.map.retain(|_, t| now - *t <= self.horizon_ms);
        }
    }
}

/// Everything a poller and its message tasks share.
#[derive(Clone)]
pub struct PollerContext {
    /// SQS client.
    pub client: aws_sdk_sqs::Client,
    /// Queue settings.
    pub cfg: SqsConfig,
    /// Queue URL.
    pub queue_url: String,
    /// Object reader.
    pub fetcher: Arc<S3Fetcher>,
    /// Event router.
    pub router: Router,
    /// Caps concurrent object reads across all messages.
    pub fetch_permits: Arc<Semaphore>,
    /// Caps messages in flight (backpressure on receiving).
    pub inflight: Arc<Semaphore>,
    /// Tracks message tasks so shutdown can drain them.
    pub tasks: TaskTracker,
    /// Readiness state.
    pub health: Arc<Health>,
    /// Objects read completely, for duplicate-notification suppression.
    pub seen: Arc<SeenObjects>,
    /// Deferred deletion (`delete_after = "windows_closed"`), with the horizon in ms.
    pub deferred: Option<(DeferredAcks, i64)>,
    /// How far back in time an object's later records may go, in ms: a
    /// CloudTrail-named object's watermark hold follows its read progress
    /// by this much (`pipeline.object_disorder_secs`).
    pub object_disorder_ms: i64,
}

/// One long-polling loop; stops receiving when `token` is cancelled.
pub async fn poll_loop(ctx: PollerContext, id: usize, token: CancellationToken) {
    let mut failures = 0u32;
    loop {
        let permits = tokio::select! {
            _ = token.cancelled() => break,
            p = ctx.inflight.clone().acquire_many_owned(ctx.cfg.max_messages) => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let resp = tokio::select! {
            _ = token.cancelled() => break,
            r = ctx.client
                .receive_message()
                .queue_url(&ctx.queue_url)
                .max_number_of_messages(ctx.cfg.max_messages as i32)
                .wait_time_seconds(ctx.cfg.wait_time_secs as i32)
                .visibility_timeout(ctx.cfg.visibility_timeout_secs as i32)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send() => r,
        };
        let out = match resp {
            Ok(o) => {
                failures = 0;
                ctx.health.sqs_last_ok_ms.store(now_ms(), Ordering::Release);
                o
            }
            Err(e) => {
                failures += 1;
                // Capped at ~8 s so service comes back quickly after an outage.
                let wait = backoff(Duration::from_millis(500), failures.min(4));
                use aws_sdk_sqs::error::ProvideErrorMetadata;
                let denied = e.code().is_some_and(|c| {
                    c.contains("AccessDenied") || c.contains("AuthorizationError")
                });
                let hint = if denied {
                    " (needs sqs:ReceiveMessage on the queue)"
                } else {
                    ""
                };
                tracing::warn!(poller = id, error = %DisplayErrorContext(&e), retry_in_ms = wait.as_millis() as u64,
                    "ReceiveMessage failed{hint}; retrying.");
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let mut permits = permits;
        for m in out.messages.unwrap_or_default() {
            let Some(permit) = permits.split(1) else {
                break;
            };
            let ctx2 = ctx.clone();
            ctx.tasks.spawn(async move {
                handle_message(&ctx2, m).await;
                drop(permit);
            });
        }
    }
    tracing::info!(poller = id, "Poller stopped receiving.");
}

async fn delete(ctx: &PollerContext, receipt: &str, message_id: &str) {
    match ctx
        .client
        .delete_message()
        .queue_url(&ctx.queue_url)
        .receipt_handle(receipt)
        .send()
        .await
    {
        Ok(_) => metrics().sqs_messages_deleted.inc(),
        Err(e) => {
            metrics().sqs_messages_failed.inc("delete_failed");
            tracing::warn!(message_id, error = %DisplayErrorContext(&e),
                "DeleteMessage failed (needs sqs:DeleteMessage); the message will be redelivered and deduplicated.");
        }
    }
}

/// Process one message end to end.
pub async fn handle_message(ctx: &PollerContext, m: Message) {
    let m_metrics = metrics();
    m_metrics.sqs_messages_received.inc();
    let message_id = m.message_id().unwrap_or("?").to_string();
    let Some(receipt) = m.receipt_handle().map(str::to_string) else {
        tracing::warn!(message_id, "Message without a receipt handle; skipped.");
        return;
    };
    if let Some(sent) = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|s| s.parse::<i64>().ok())
    {
        m_metrics.sqs_lag.observe((now_ms() - sent) as f64 / 1000.0);
    }
    let body = m.body().unwrap_or("");
    let objects = match notification::parse(body) {
        Ok(Notification::Ignore(kind)) => {
            m_metrics.notifications_ignored.inc(kind);
            tracing::debug!(message_id, kind, "Notification needs no work.");
            delete(ctx, &receipt, &message_id).await;
            return;
        }
        Ok(Notification::Objects(o)) => o,
        Err(e) => {
            m_metrics.sqs_messages_failed.inc("unknown_notification");
            let head: String = body.chars().take(200).collect();
            tracing::error!(message_id, error = %e, body = %head,
                "Unrecognised notification; left on the queue for the DLQ.");
            return;
        }
    };
    let heartbeat = CancellationToken::new();
    tokio::spawn(visibility_heartbeat(
        ctx.clone(),
        receipt.clone(),
        message_id.clone(),
        heartbeat.clone(),
    ));
    let (ack, done) = Ack::new();
    // Hold the watermark at the oldest of these objects until the message is
    // acknowledged (objects without a CloudTrail name hold it where it is).
    // A CloudTrail-named object's hold follows its read progress, so a huge
    // one does not keep all of its past in memory.
    let clock = ctx.router.clock().clone();
    let holds: Vec<_> = objects
        .iter()
        .map(|o| match crate::ingest::local::cloudtrail_slot_ms(&o.key) {
            Some(slot) => clock.hold_following(slot, ctx.object_disorder_ms),
            None => clock.hold(clock.effective_max_ms()),
        })
        .collect();
    // Objects read completely; recorded as seen only once the shards have
    // applied them, so a redelivered copy of a message still in flight is
    // processed (and deduplicated by eventID) rather than deleted early.
    let read_ok: std::sync::Mutex<Vec<ObjectRef>> = std::sync::Mutex::new(Vec::new());
    let read_ok = &read_ok;
    let work = objects.into_iter().zip(&holds).map(|(obj, hold)| {
        let ack = ack.clone();
        let progress = hold.progress();
        let ctx = ctx.clone();
        async move {
            if let Some(reason) = notification::skip_reason(&obj) {
                metrics().objects_skipped.inc(reason);
                tracing::debug!(bucket = %obj.bucket, key = %obj.key, reason, "Object skipped.");
                return;
            }
            if ctx.seen.contains(&obj) {
                metrics().objects_skipped.inc("duplicate_notification");
                tracing::info!(bucket = %obj.bucket, key = %obj.key, "Object already read; duplicate notification skipped.");
                return;
            }
            let _permit = ctx.fetch_permits.acquire().await;
            let mut router = ctx.router.with_ack(ack.clone()).with_progress(progress);
            match ctx.fetcher.process(&obj, &mut router).await {
                Ok(stats) => {
                    record_stats(&stats);
                    read_ok.lock().unwrap_or_else(|p| p.into_inner()).push(obj.clone());
                    metrics().objects.inc("ok");
                    if stats.skipped_total() > 0 {
                        tracing::warn!(bucket = %obj.bucket, key = %obj.key, skipped = ?stats.skipped,
                            events = stats.events, "Object had records that were skipped.");
                    }
                }
                Err(e) if e.is_final() => {
                    metrics().objects.inc(e.label());
                    tracing::error!(error = %e, "Object cannot be read; notification dropped.");
                }
                Err(e) => {
                    metrics().objects.inc(e.label());
                    tracing::error!(error = %e, "Object failed; the message will be redelivered.");
                    ack.fail();
                }
            }
        }
    });
    futures::future::join_all(work).await;
    drop(ack);
    // Resolves once the shards have applied every batch of this message.
    let outcome = done.await.ok();
    heartbeat.cancel();
    if let Some(o) = outcome.filter(|o| o.ok) {
        for obj in read_ok.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            ctx.seen.insert(obj);
        }
        match &ctx.deferred {
            Some((d, horizon_ms)) if o.max_event_ms != i64::MIN => {
                d.park(receipt, message_id, o.max_event_ms, *horizon_ms)
                    .await;
            }
            _ => delete(ctx, &receipt, &message_id).await,
        }
    } else {
        m_metrics.sqs_messages_failed.inc("object_failed");
    }
}

/// Extend the message's visibility every half timeout until cancelled.
async fn visibility_heartbeat(
    ctx: PollerContext,
    receipt: String,
    message_id: String,
    stop: CancellationToken,
) {
    let vis = ctx.cfg.visibility_timeout_secs.max(1);
    // A third of the timeout leaves room for a slow ChangeMessageVisibility.
    let every = Duration::from_millis((vis as u64 * 1000 / 3).max(300));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let r = ctx
            .client
            .change_message_visibility()
            .queue_url(&ctx.queue_url)
            .receipt_handle(&receipt)
            .visibility_timeout(vis as i32)
            .send()
            .await;
        match r {
            Ok(_) => tracing::debug!(message_id, "Visibility extended."),
            Err(e) => tracing::warn!(message_id, error = %DisplayErrorContext(&e),
                "ChangeMessageVisibility failed (needs sqs:ChangeMessageVisibility)."),
        }
    }
}
