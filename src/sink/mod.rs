//! Sink stage: every alert goes to every configured sink. Each sink is an
//! actor with its own bounded channel, so a slow webhook does not hold up
//! SNS. Delivery is retried with jittered exponential backoff; an alert that
//! still fails goes to the sink's on-disk outbox, which is retried in the
//! background, on start and at shutdown. While the outbox holds anything,
//! new alerts queue behind it (order is kept, and a down sink does not stall
//! the pipeline with per-alert retries).

mod outbox;
mod sns;
mod webhook;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::config::SinkConfig;
use crate::rules::alert::Alert;
use crate::telemetry::metrics;
pub use outbox::Outbox;

/// An alert and its JSON, serialised once for all sinks.
#[derive(Debug)]
pub struct Envelope {
    /// The alert.
    pub alert: Alert,
    /// Its JSON (one line).
    pub json: String,
}

/// A failed delivery attempt.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// What happened.
    pub message: String,
}

impl DeliveryError {
    fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// Errors building the sinks.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A sink could not be set up.
    #[error("sink {name}: {message}")]
    Setup {
        /// Sink name.
        name: String,
        /// What went wrong.
        message: String,
    },
}

enum Target {
    Stdout,
    File(tokio::fs::File),
    Webhook(webhook::Webhook),
    Sns(sns::Sns),
}

impl Target {
    async fn deliver(&mut self, env: &Envelope) -> Result<(), DeliveryError> {
        match self {
            Target::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", env.json)
                    .and_then(|_| out.flush())
                    .map_err(|e| DeliveryError::retryable(format!("stdout: {e}")))
            }
            Target::File(f) => {
                let mut line = Vec::with_capacity(env.json.len() + 1);
                line.extend_from_slice(env.json.as_bytes());
                line.push(b'\n');
                f.write_all(&line)
                    .await
                    .map_err(|e| DeliveryError::retryable(format!("file: {e}")))?;
                f.flush()
                    .await
                    .map_err(|e| DeliveryError::retryable(format!("file: {e}")))
            }
            Target::Webhook(w) => w.deliver(env).await,
            Target::Sns(s) => s.deliver(env).await,
        }
    }
}

/// Retry policy of one sink.
#[derive(Debug, Clone, Copy)]
struct Retry {
    attempts: u32,
    base: Duration,
}

/// Jittered exponential backoff: `base * 2^attempt`, ±25 %, capped at 30 s.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(Duration::from_secs(30));
    let jitter = 0.75 + fastrand::f64() * 0.5;
    capped.mul_f64(jitter)
}

/// Handle to one sink actor.
#[derive(Clone, Debug)]
struct SinkHandle {
    tx: mpsc::Sender<Arc<Envelope>>,
}

/// Fan-out handle: sends each alert to every sink.
#[derive(Clone, Debug)]
pub struct AlertSender {
    sinks: Arc<[SinkHandle]>,
}

impl AlertSender {
    /// Send an alert to every sink (waits while a sink's channel is full).
    pub async fn send(&self, alert: Alert) {
        let json = match serde_json::to_string(&alert) {
            Ok(j) => j,
            Err(e) => {
                // Alert documents are plain data; this cannot fail in practice.
                tracing::error!(error = %e, alert_id = %alert.alert_id, "Cannot serialise alert.");
                return;
            }
        };
        let env = Arc::new(Envelope { alert, json });
        for s in self.sinks.iter() {
            if s.tx.send(env.clone()).await.is_err() {
                tracing::error!(alert_id = %env.alert.alert_id, "Sink stopped; alert not queued.");
            }
        }
    }
}

/// Options shared by the sink actors.
pub struct SinkOptions<'a> {
    /// Directory for outbox files.
    pub state_dir: &'a Path,
    /// Channel capacity per sink.
    pub capacity: usize,
    /// Interval between outbox retries.
    pub outbox_retry: Duration,
    /// AWS config for SNS sinks.
    pub aws: Option<&'a aws_config::SdkConfig>,
}

/// Build and spawn every sink; the returned sender feeds them all. The sink
/// tasks end (after a last outbox flush) when every sender is dropped.
pub async fn spawn_all(
    configs: &[SinkConfig],
    opts: SinkOptions<'_>,
    tracker: &TaskTracker,
) -> Result<AlertSender, SinkError> {
    let mut handles = Vec::new();
    for (i, cfg) in configs.iter().enumerate() {
        let name = format!("{}-{i}", cfg.kind());
        let setup = |message: String| SinkError::Setup {
            name: name.clone(),
            message,
        };
        let (target, retry) = match cfg {
            SinkConfig::Stdout => (
                Target::Stdout,
                Retry {
                    attempts: 3,
                    base: Duration::from_millis(100),
                },
            ),
            SinkConfig::File { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
                }
                let f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|e| setup(format!("cannot open {}: {e}", path.display())))?;
                (
                    Target::File(f),
                    Retry {
                        attempts: 3,
                        base: Duration::from_millis(100),
                    },
                )
            }
            SinkConfig::Webhook {
                max_attempts,
                backoff_millis,
                ..
            } => (
                Target::Webhook(webhook::Webhook::new(cfg).map_err(setup)?),
                Retry {
                    attempts: *max_attempts,
                    base: Duration::from_millis(*backoff_millis),
                },
            ),
            SinkConfig::Sns {
                topic_arn,
                max_attempts,
                backoff_millis,
            } => {
                let aws = opts
                    .aws
                    .ok_or_else(|| setup("no AWS configuration".into()))?;
                (
                    Target::Sns(sns::Sns::new(aws, topic_arn.clone())),
                    Retry {
                        attempts: *max_attempts,
                        base: Duration::from_millis(*backoff_millis),
                    },
                )
            }
        };
        let outbox = Outbox::open(&opts.state_dir.join("outbox"), &name)
            .await
            .map_err(|e| setup(format!("outbox: {e}")))?;
        let (tx, rx) = mpsc::channel(opts.capacity);
        let task = SinkTask {
            name,
            target,
            retry,
            rx,
            outbox,
            outbox_retry: opts.outbox_retry,
        };
        tracker.spawn(task.run());
        handles.push(SinkHandle { tx });
    }
    Ok(AlertSender {
        sinks: handles.into(),
    })
}

struct SinkTask {
    name: String,
    target: Target,
    retry: Retry,
    rx: mpsc::Receiver<Arc<Envelope>>,
    outbox: Outbox,
    outbox_retry: Duration,
}

impl SinkTask {
    async fn run(mut self) {
        self.drain_outbox().await;
        let mut tick = tokio::time::interval(self.outbox_retry);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(env) => self.handle(env).await,
                    None => break,
                },
                _ = tick.tick(), if self.outbox.depth() > 0 => self.drain_outbox().await,
            }
        }
        // Shutdown: one more try to empty the outbox; what is left stays on
        // disk for the next start.
        self.drain_outbox().await;
        if self.outbox.depth() > 0 {
            tracing::warn!(sink = %self.name, depth = self.outbox.depth(), path = %self.outbox.path().display(),
                "Alerts remain in the outbox; they will be delivered on the next start.");
        }
    }

    async fn handle(&mut self, env: Arc<Envelope>) {
        if self.outbox.depth() > 0 {
            // The sink is known to be failing: keep order, queue behind.
            self.park_in_outbox(&env).await;
            return;
        }
        let mut attempt = 0;
        loop {
            match self.target.deliver(&env).await {
                Ok(()) => {
                    metrics().sink_success.inc(&self.name);
                    return;
                }
                Err(e) => {
                    metrics().sink_failures.inc(&self.name);
                    attempt += 1;
                    if !e.retryable || attempt >= self.retry.attempts {
                        tracing::error!(sink = %self.name, alert_id = %env.alert.alert_id, attempts = attempt,
                            error = %e, "Delivery failed; alert kept in the outbox.");
                        self.park_in_outbox(&env).await;
                        return;
                    }
                    let wait = backoff(self.retry.base, attempt - 1);
                    tracing::warn!(sink = %self.name, alert_id = %env.alert.alert_id, attempt, error = %e,
                        retry_in_ms = wait.as_millis() as u64, "Delivery failed; retrying.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn park_in_outbox(&mut self, env: &Envelope) {
        match self.outbox.append(&env.json).await {
            Ok(()) => metrics().sink_outboxed.inc(&self.name),
            Err(e) => {
                // Last resort: the log keeps the whole alert so it is not lost.
                tracing::error!(sink = %self.name, error = %e, alert = %env.json,
                    "Cannot write the outbox; alert logged here instead.");
            }
        }
        metrics()
            .outbox_depth
            .set(&self.name, self.outbox.depth() as i64);
    }

    async fn drain_outbox(&mut self) {
        if self.outbox.depth() == 0 {
            return;
        }
        let target = tokio::sync::Mutex::new(&mut self.target);
        let name = self.name.as_str();
        let result = self
            .outbox
            .drain(|json| {
                let target = &target;
                async move {
                    let alert: Alert = match serde_json::from_str(&json) {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::error!(sink = %name, error = %e, line = %json,
                                "Unreadable outbox line; dropping it (logged in full here).");
                            return true;
                        }
                    };
                    let env = Envelope { alert, json };
                    match target.lock().await.deliver(&env).await {
                        Ok(()) => {
                            metrics().sink_success.inc(name);
                            true
                        }
                        Err(e) => {
                            metrics().sink_failures.inc(name);
                            tracing::warn!(sink = %name, error = %e, "Outbox delivery failed; will retry.");
                            false
                        }
                    }
                }
            })
            .await;
        match result {
            Ok(n) if n > 0 => {
                tracing::info!(sink = %self.name, delivered = n, left = self.outbox.depth(), "Outbox drained.")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(sink = %self.name, error = %e, "Outbox I/O error."),
        }
        metrics()
            .outbox_depth
            .set(&self.name, self.outbox.depth() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Duration::from_millis(100);
        let a0 = backoff(b, 0);
        assert!(a0 >= Duration::from_millis(75) && a0 <= Duration::from_millis(125));
        let a3 = backoff(b, 3);
        assert!(a3 >= Duration::from_millis(600) && a3 <= Duration::from_millis(1000));
        assert!(backoff(b, 30) <= Duration::from_millis(37_500));
    }
}
