//! Progress for `replay` and `baseline train`: a bar on a terminal, plain
//! periodic log lines otherwise (containers, CI).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// A progress reporter over a known number of objects.
pub struct Progress {
    bar: Option<ProgressBar>,
    objects: Arc<AtomicU64>,
    events: Arc<AtomicU64>,
    started: Instant,
    stop: CancellationToken,
}

impl Progress {
    /// Start reporting; `tty` selects the bar.
    pub fn new(label: &'static str, total: u64, tty: bool) -> Self {
        let objects = Arc::new(AtomicU64::new(0));
        let events = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let started = Instant::now();
        let bar = if tty {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} objects  {msg}  {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(label);
            Some(b)
        } else {
            let (o, e, s) = (objects.clone(), events.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = s.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                    let secs = started.elapsed().as_secs_f64().max(1e-9);
                    let ev = e.load(Ordering::Relaxed);
                    tracing::info!(
                        task = label,
                        objects = o.load(Ordering::Relaxed),
                        total,
                        events = ev,
                        events_per_sec = (ev as f64 / secs) as u64,
                        "Progress."
                    );
                }
            });
            None
        };
        Self {
            bar,
            objects,
            events,
            started,
            stop,
        }
    }

    /// One object finished with `events` events.
    pub fn object_done(&self, events: u64) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        let ev = self.events.fetch_add(events, Ordering::Relaxed) + events;
        if let Some(b) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            b.inc(1);
            b.set_message(format!("{ev} events  {:.0} ev/s", ev as f64 / secs));
        }
    }

    /// Stop reporting.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.stop.cancel();
    }
}
