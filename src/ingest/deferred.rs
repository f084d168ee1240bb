//! Deferred deletion of SQS messages (`sqs.delete_after = "windows_closed"`).
//!
//! A message whose events were applied is parked here until the watermark has
//! passed its newest event plus the longest rule horizon: from then on no
//! open window can use its events, so losing the process loses nothing. Until
//! then its visibility is extended in batches; if the process dies, SQS
//! redelivers it and the restarted daemon rebuilds the windows from it.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use tokio::sync::mpsc;

use crate::shard::EventClock;
use crate::telemetry::metrics;

struct Pending {
    receipt: String,
    message_id: String,
    /// Deletable once the watermark reaches this event time.
    release_at_ms: i64,
}

/// Handle to the deferred-deletion actor.
#[derive(Clone, Debug)]
pub struct DeferredAcks {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pending({})", self.message_id)
    }
}

/// What the actor needs.
pub struct DeferredParams {
    /// SQS client.
    pub client: aws_sdk_sqs::Client,
    /// Queue URL.
    pub queue_url: String,
    /// Visibility timeout to renew, seconds.
    pub visibility_timeout_secs: u32,
    /// Shared event clock.
    pub clock: Arc<EventClock>,
    /// Allowed lateness, ms (watermark = effective max − lateness).
    pub lateness_ms: i64,
    /// Longest rule window / horizon, ms.
    pub horizon_ms: i64,
}

impl DeferredAcks {
    /// Spawn the actor; it stops (leaving parked messages to SQS) when every
    /// handle is dropped.
    pub fn spawn(p: DeferredParams) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = Deferred {
            p,
            rx,
            pending: Vec::new(),
        };
        (Self { tx }, tokio::spawn(task.run()))
    }

    /// Park a message whose events reach `max_event_ms`.
    pub async fn park(
        &self,
        receipt: String,
        message_id: String,
        max_event_ms: i64,
        horizon_ms: i64,
    ) {
        let p = Pending {
            receipt,
            message_id,
            release_at_ms: max_event_ms.saturating_add(horizon_ms),
        };
        if self.tx.send(p).await.is_err() {
            // Shutting down: the message is redelivered and re-applied at the next start.
            tracing::debug!("Deferred-ack actor stopped; message left for redelivery.");
        }
    }
}

struct Deferred {
    p: DeferredParams,
    rx: mpsc::Receiver<Pending>,
    pending: Vec<Pending>,
}

impl Deferred {
    async fn run(mut self) {
        let renew_every = Duration::from_secs((self.p.visibility_timeout_secs / 2).max(1) as u64);
        let mut renew = tokio::time::interval(renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(p) => self.pending.push(p),
                    None => break,
                },
                _ = check.tick() => self.release().await,
                _ = renew.tick() => self.renew().await,
            }
            metrics().sqs_pending_delete.set(self.pending.len() as i64);
        }
        if !self.pending.is_empty() {
            tracing::info!(
                messages = self.pending.len(),
                "Leaving messages with events in open windows to SQS; the next start rebuilds those windows from them."
            );
        }
    }

    async fn release(&mut self) {
        let wm = self
            .p
            .clock
            .effective_max_ms()
            .saturating_sub(self.p.lateness_ms);
        let (ready, keep): (Vec<Pending>, Vec<Pending>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.release_at_ms <= wm);
        self.pending = keep;
        for chunk in ready.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&p.receipt)
                        .build()
                        .expect("id and receipt set")
                })
                .collect();
            match self
                .p
                .client
                .delete_message_batch()
                .queue_url(&self.p.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    metrics()
                        .sqs_messages_deleted
                        .add(out.successful().len() as u64);
                    for f in out.failed() {
                        metrics().sqs_messages_failed.inc("delete_failed");
                        tracing::warn!(
                            code = f.code(),
                            "DeleteMessageBatch entry failed; the message will be redelivered and deduplicated."
                        );
                    }
                }
                Err(e) => {
                    metrics()
                        .sqs_messages_failed
                        .add("delete_failed", chunk.len() as u64);
                    tracing::warn!(error = %DisplayErrorContext(&e), "DeleteMessageBatch failed (needs sqs:DeleteMessage).");
                }
            }
        }
    }

    async fn renew(&mut self) {
        for chunk in self.pending.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&p.receipt)
                        .visibility_timeout(self.p.visibility_timeout_secs as i32)
                        .build()
                        .expect("id and receipt set")
                })
                .collect();
            if let Err(e) = self
                .p
                .client
                .change_message_visibility_batch()
                .queue_url(&self.p.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(error = %DisplayErrorContext(&e),
                    "ChangeMessageVisibilityBatch failed (needs sqs:ChangeMessageVisibility); messages may be redelivered early (deduplicated).");
            }
        }
    }
}
