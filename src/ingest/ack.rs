//! Completion tracking for one SQS message: every batch of events carries a
//! clone of the message's [`Ack`]; when the last clone is dropped (the shard
//! actors have applied every event) the waiter learns whether all of the
//! message's objects were read successfully.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::sync::oneshot;

#[derive(Debug)]
struct Inner {
    tx: Mutex<Option<oneshot::Sender<AckOutcome>>>,
    failed: AtomicBool,
    max_event_ms: AtomicI64,
}

/// What the waiter learns when every clone is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckOutcome {
    /// Every object was read completely.
    pub ok: bool,
    /// Newest event time delivered (`i64::MIN` if none).
    pub max_event_ms: i64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            // The waiter may have given up (shutdown); nothing to do then.
            let _ = tx.send(AckOutcome {
                ok: !self.failed.load(Ordering::Acquire),
                max_event_ms: self.max_event_ms.load(Ordering::Acquire),
            });
        }
    }
}

/// A shared completion token. Clone it into everything that must finish
/// before the message may be deleted.
#[derive(Debug, Clone)]
pub struct Ack(Arc<Inner>);

/// Resolves when every [`Ack`] clone is gone.
pub type AckWait = oneshot::Receiver<AckOutcome>;

impl Ack {
    /// A new token and its waiter.
    pub fn new() -> (Self, AckWait) {
        let (tx, rx) = oneshot::channel();
        (
            Self(Arc::new(Inner {
                tx: Mutex::new(Some(tx)),
                failed: AtomicBool::new(false),
                max_event_ms: AtomicI64::new(i64::MIN),
            })),
            rx,
        )
    }

    /// Mark the message as not fully processed (it will be redelivered).
    pub fn fail(&self) {
        self.0.failed.store(true, Ordering::Release);
    }

    /// Note events up to `ms` were delivered under this token.
    pub fn observe(&self, ms: i64) {
        self.0.max_event_ms.fetch_max(ms, Ordering::AcqRel);
    }

    /// Whether a failure was recorded.
    pub fn is_failed(&self) -> bool {
        self.0.failed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_when_last_clone_drops() {
        let (ack, mut rx) = Ack::new();
        let a2 = ack.clone();
        drop(ack);
        assert!(rx.try_recv().is_err(), "still held");
        a2.observe(7);
        drop(a2);
        assert_eq!(rx.await.map(|o| (o.ok, o.max_event_ms)), Ok((true, 7)));
    }

    #[tokio::test]
    async fn failure_is_reported() {
        let (ack, rx) = Ack::new();
        let a2 = ack.clone();
        a2.fail();
        drop(a2);
        drop(ack);
        assert_eq!(rx.await.map(|o| o.ok), Ok(false));
    }
}
