//! Window stage: one actor per shard owns the [`engine::Engine`] for the
//! identities hashed to it. It applies event batches, advances the
//! watermark on a tick, and sends alerts to the sinks.
//!
//! Batches carry the SQS message's [`Ack`](crate::ingest::ack::Ack) and the
//! object's progress ticket ([`Applied`]); the actor drops them only after
//! every event of the batch is applied, which is what lets the poller delete
//! the message.

pub mod engine;
pub mod log;
pub mod state_map;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::decode::Event;
use crate::rules::RuleSet;
use crate::rules::alert::Detection;
use crate::shard::{Applied, EventClock, now_ms};
use crate::sink::AlertSender;
use crate::state::{StateStore, Store};
use crate::telemetry::metrics;
use engine::{Engine, EngineConfig};

enum ShardMsg {
    Events {
        events: Vec<Event>,
        applied: Applied,
    },
    /// Close every window (end of replay), then reply.
    CloseAll { respond_to: oneshot::Sender<()> },
}

/// Handle to a shard actor. Cloning shares the actor.
#[derive(Clone, Debug)]
pub struct ShardHandle {
    tx: mpsc::Sender<ShardMsg>,
}

impl std::fmt::Debug for ShardMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardMsg::Events { events, .. } => write!(f, "Events({})", events.len()),
            ShardMsg::CloseAll { .. } => write!(f, "CloseAll"),
        }
    }
}

/// What a shard actor needs.
#[derive(Clone)]
pub struct ShardParams {
    /// Compiled rules.
    pub rules: Arc<RuleSet>,
    /// Engine tunables.
    pub engine: EngineConfig,
    /// Shared event clock.
    pub clock: Arc<EventClock>,
    /// Where alerts go.
    pub alerts: AlertSender,
    /// Channel capacity in batches.
    pub capacity: usize,
    /// Watermark tick.
    pub tick: Duration,
    /// Persisted state: the store, whether to write to it, and the interval.
    pub state: Option<StatePersist>,
    /// Number of shards (to pick this shard's persisted identities).
    pub shard_count: usize,
}

/// How a shard persists its state.
#[derive(Clone, Debug)]
pub struct StatePersist {
    /// The store.
    pub store: Store,
    /// Write changes back (`run`, `baseline train`); `replay` only reads.
    pub write: bool,
    /// Interval between saves.
    pub flush: Duration,
}

impl ShardHandle {
    /// Spawn shard `index` on `tracker`.
    pub fn spawn(index: usize, p: ShardParams, tracker: &TaskTracker) -> Self {
        let (tx, rx) = mpsc::channel(p.capacity);
        let shard = Shard {
            index,
            engine: Engine::new(p.rules, p.engine),
            rx,
            clock: p.clock,
            alerts: p.alerts,
            tick: p.tick,
            out: Vec::new(),
            state: p.state,
            shard_count: p.shard_count,
            unsaved: Vec::new(),
        };
        tracker.spawn(shard.run());
        Self { tx }
    }

    /// Send a batch; waits while the shard's channel is full (backpressure).
    /// `applied` is dropped once every event is applied. `Err` means the
    /// shard has stopped.
    pub async fn send(&self, events: Vec<Event>, applied: Applied) -> Result<(), ()> {
        self.tx
            .send(ShardMsg::Events { events, applied })
            .await
            .map_err(|_| ())
    }

    /// Close every open window and wait until the final updates are sent.
    pub async fn close_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(ShardMsg::CloseAll { respond_to: tx })
            .await
            .is_ok()
        {
            // A stopped shard has nothing left to close.
            let _ = rx.await;
        }
    }
}

struct Shard {
    index: usize,
    engine: Engine,
    rx: mpsc::Receiver<ShardMsg>,
    clock: Arc<EventClock>,
    alerts: AlertSender,
    tick: Duration,
    out: Vec<Detection>,
    state: Option<StatePersist>,
    shard_count: usize,
    /// Batches whose save failed, retried (oldest first) with the next save.
    unsaved: Vec<(String, crate::state::Entries)>,
}

impl Shard {
    async fn run(mut self) {
        self.restore().await;
        let flush_every = self
            .state
            .as_ref()
            .map(|s| s.flush)
            .unwrap_or(Duration::from_secs(3600));
        let mut flush = tokio::time::interval(flush_every);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    None => break,
                    Some(ShardMsg::Events { events, applied }) => {
                        self.apply(events).await;
                        // Applied: the message may now be acknowledged, and
                        // the object's hold may move past these events.
                        drop(applied);
                    }
                    Some(ShardMsg::CloseAll { respond_to }) => {
                        self.engine.close_all(&mut self.out);
                        self.emit().await;
                        self.persist().await;
                        // The requester may have gone away; nothing to do then.
                        let _ = respond_to.send(());
                    }
                },
                _ = tick.tick() => {
                    self.engine.advance(self.clock.effective_max_ms(), &mut self.out);
                    self.emit().await;
                }
                _ = flush.tick() => self.persist().await,
            }
        }
        self.persist().await;
        self.engine.flush_metrics();
        tracing::debug!(shard = self.index, "Shard stopped.");
    }

    /// Load this shard's identities from the state store.
    async fn restore(&mut self) {
        let Some(st) = &self.state else { return };
        let (index, n) = (self.index, self.shard_count);
        for ns in self.engine.persisted_namespaces() {
            match st.store.load(&ns).await {
                Ok(entries) => {
                    self.engine.restore(&ns, entries, |identity| {
                        crate::shard::shard_of(identity, n) == index
                    });
                }
                Err(e) => {
                    tracing::error!(shard = index, ns, error = %e, "Cannot load state; starting this namespace empty.")
                }
            }
        }
    }

    /// Save what changed since the last save (write mode only).
    async fn persist(&mut self) {
        let Some(st) = self.state.clone() else { return };
        if !st.write {
            return;
        }
        let mut batches = std::mem::take(&mut self.unsaved);
        batches.extend(self.engine.take_dirty());
        for (ns, items) in batches {
            if items.is_empty() {
                continue;
            }
            let n = items.len();
            match st.store.save(&ns, items.clone()).await {
                Ok(()) => tracing::debug!(shard = self.index, ns, entries = n, "State saved."),
                Err(e) => {
                    metrics().state_save_failures.inc();
                    tracing::error!(shard = self.index, ns, entries = n, error = %e,
                        "Cannot save state; will retry with the next save.");
                    self.unsaved.push((ns, items));
                }
            }
        }
        if !self.unsaved.is_empty() {
            tracing::warn!(
                shard = self.index,
                batches = self.unsaved.len(),
                "State not saved yet; kept in memory for the next attempt."
            );
        }
    }

    async fn apply(&mut self, events: Vec<Event>) {
        if let Some(newest) = events.iter().map(|e| e.time_ms).max() {
            metrics()
                .event_lag
                .observe((now_ms() - newest) as f64 / 1000.0);
        }
        self.engine
            .apply_batch(self.clock.effective_max_ms(), events, &mut self.out);
        self.emit().await;
    }

    async fn emit(&mut self) {
        self.engine.flush_metrics();
        let now = now_ms();
        for d in self.out.drain(..) {
            let id = d.rule.id().to_string();
            if d.rule.is_alert() {
                if !d.is_update {
                    metrics().alerts.inc(&id);
                }
                let alert = d.to_alert(now);
                tracing::info!(
                    rule = %id,
                    alert_id = %alert.alert_id,
                    kind = ?alert.kind,
                    severity = alert.severity.as_str(),
                    "Alert."
                );
                self.alerts.send(alert).await;
            } else if !d.is_update {
                metrics().signals.inc(&id);
                tracing::debug!(rule = %id, alert_id = %d.alert_id, "Signal.");
            }
        }
    }
}
