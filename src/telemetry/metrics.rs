//! Process-wide counters rendered in the Prometheus text format.
//!
//! Labels are bounded by construction: reasons and outcomes are fixed
//! strings, rule ids and sink names come from configuration. Identities,
//! keys and IPs never become labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Set the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Add `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter family with one label. Updated per object or per alert, never
/// per event, so a mutex is cheap enough.
#[derive(Debug, Default)]
pub struct LabeledCounter(Mutex<BTreeMap<String, u64>>);

impl LabeledCounter {
    /// Add `n` to the series with this label value.
    pub fn add(&self, label: &str, n: u64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match m.get_mut(label) {
            Some(v) => *v += n,
            None => {
                m.insert(label.to_string(), n);
            }
        }
    }
    /// Add one.
    pub fn inc(&self, label: &str) {
        self.add(label, 1);
    }
    /// Value for a label (0 if never set).
    pub fn get(&self, label: &str) -> u64 {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(label).copied().unwrap_or(0)
    }
    /// Sum over all labels.
    pub fn total(&self) -> u64 {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.values().sum()
    }
    /// Every series.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A gauge family with one label.
#[derive(Debug, Default)]
pub struct LabeledGauge(Mutex<BTreeMap<String, i64>>);

impl LabeledGauge {
    /// Set the series with this label value.
    pub fn set(&self, label: &str, v: i64) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(label.to_string(), v);
    }
    /// Value for a label (0 if never set).
    pub fn get(&self, label: &str) -> i64 {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(label).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> BTreeMap<String, i64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Upper bounds (seconds) of the lag histograms' buckets.
const LAG_BUCKETS_SECS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 21600.0,
];

/// A fixed-bucket histogram of seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_millis: AtomicU64,
}

impl Histogram {
    /// Record one observation in seconds (negative values count as 0).
    pub fn observe(&self, secs: f64) {
        let s = secs.max(0.0);
        for (i, b) in LAG_BUCKETS_SECS.iter().enumerate() {
            if s <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_millis
            .fetch_add((s * 1000.0) as u64, Ordering::Relaxed);
    }
    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Every metric the process exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SQS messages received.
    pub sqs_messages_received: Counter,
    /// SQS messages deleted after their events were accepted.
    pub sqs_messages_deleted: Counter,
    /// SQS messages left for redelivery, by reason.
    pub sqs_messages_failed: LabeledCounter,
    /// Notifications that carried no object to process, by kind.
    pub notifications_ignored: LabeledCounter,
    /// Objects processed, by outcome.
    pub objects: LabeledCounter,
    /// Object keys skipped (digests, insights, folders), by reason.
    pub objects_skipped: LabeledCounter,
    /// Compressed bytes read from S3 or disk.
    pub bytes_read: Counter,
    /// Decompressed bytes decoded.
    pub bytes_decompressed: Counter,
    /// Records decoded into events.
    pub records_parsed: Counter,
    /// Records skipped, by reason.
    pub records_skipped: LabeledCounter,
    /// Events without any identity field (not judged by identity rules).
    pub events_no_identity: Counter,
    /// Events older than the watermark (counted, not applied to windows).
    pub events_late: Counter,
    /// Events dropped as duplicates of an eventID already seen.
    pub events_duplicate: Counter,
    /// Events evicted from a full group buffer.
    pub group_evictions: Counter,
    /// Events that matched a rule's filter, by rule.
    pub rule_matches: LabeledCounter,
    /// Alerts emitted, by rule.
    pub alerts: LabeledCounter,
    /// Signals emitted (building blocks for correlation), by rule.
    pub signals: LabeledCounter,
    /// Alerts suppressed as repeats, by rule.
    pub alerts_suppressed: LabeledCounter,
    /// Successful sink deliveries, by sink.
    pub sink_success: LabeledCounter,
    /// Failed sink delivery attempts, by sink.
    pub sink_failures: LabeledCounter,
    /// Alerts written to a sink's on-disk outbox, by sink.
    pub sink_outboxed: LabeledCounter,
    /// Alerts waiting in each sink's outbox.
    pub outbox_depth: LabeledGauge,
    /// Now minus eventTime when an event is applied, seconds.
    pub event_lag: Histogram,
    /// Now minus the S3 notification's eventTime when its message is received, seconds.
    pub sqs_lag: Histogram,
    /// Applied messages waiting for their windows to close before deletion.
    pub sqs_pending_delete: Gauge,
    /// Failed saves of persisted state.
    pub state_save_failures: Counter,
    /// Highest event time seen, Unix ms.
    pub watermark_ms: Gauge,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::default)
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn labeled(out: &mut String, name: &str, help: &str, label: &str, c: &LabeledCounter) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (k, v) in c.snapshot() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(&k));
    }
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (i, b) in LAG_BUCKETS_SECS.iter().enumerate() {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{b}\"}} {}",
            h.buckets[i].load(Ordering::Relaxed)
        );
    }
    let count = h.count.load(Ordering::Relaxed);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(
        out,
        "{name}_sum {}",
        h.sum_millis.load(Ordering::Relaxed) as f64 / 1000.0
    );
    let _ = writeln!(out, "{name}_count {count}");
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Render every metric in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(8192);
        counter(
            &mut o,
            "reconwatch_sqs_messages_received_total",
            "SQS messages received.",
            self.sqs_messages_received.get(),
        );
        counter(
            &mut o,
            "reconwatch_sqs_messages_deleted_total",
            "SQS messages deleted after their events were accepted.",
            self.sqs_messages_deleted.get(),
        );
        labeled(
            &mut o,
            "reconwatch_sqs_messages_failed_total",
            "SQS messages left for redelivery.",
            "reason",
            &self.sqs_messages_failed,
        );
        labeled(
            &mut o,
            "reconwatch_notifications_ignored_total",
            "Notifications without objects to process.",
            "kind",
            &self.notifications_ignored,
        );
        labeled(
            &mut o,
            "reconwatch_objects_total",
            "Objects processed.",
            "outcome",
            &self.objects,
        );
        labeled(
            &mut o,
            "reconwatch_objects_skipped_total",
            "Object keys skipped.",
            "reason",
            &self.objects_skipped,
        );
        counter(
            &mut o,
            "reconwatch_bytes_read_total",
            "Compressed bytes read.",
            self.bytes_read.get(),
        );
        counter(
            &mut o,
            "reconwatch_bytes_decompressed_total",
            "Decompressed bytes decoded.",
            self.bytes_decompressed.get(),
        );
        counter(
            &mut o,
            "reconwatch_events_parsed_total",
            "Records decoded into events.",
            self.records_parsed.get(),
        );
        labeled(
            &mut o,
            "reconwatch_events_skipped_total",
            "Records skipped.",
            "reason",
            &self.records_skipped,
        );
        counter(
            &mut o,
            "reconwatch_events_no_identity_total",
            "Events with no identity field.",
            self.events_no_identity.get(),
        );
        counter(
            &mut o,
            "reconwatch_events_late_total",
            "Events older than the watermark.",
            self.events_late.get(),
        );
        counter(
            &mut o,
            "reconwatch_events_duplicate_total",
            "Duplicate eventIDs dropped.",
            self.events_duplicate.get(),
        );
        counter(
            &mut o,
            "reconwatch_group_evictions_total",
            "Events evicted from full group buffers.",
            self.group_evictions.get(),
        );
        labeled(
            &mut o,
            "reconwatch_rule_matches_total",
            "Events matching a rule filter.",
            "rule",
            &self.rule_matches,
        );
        labeled(
            &mut o,
            "reconwatch_alerts_total",
            "Alerts emitted.",
            "rule",
            &self.alerts,
        );
        labeled(
            &mut o,
            "reconwatch_signals_total",
            "Signals emitted.",
            "rule",
            &self.signals,
        );
        labeled(
            &mut o,
            "reconwatch_alerts_suppressed_total",
            "Repeat alerts suppressed.",
            "rule",
            &self.alerts_suppressed,
        );
        labeled(
            &mut o,
            "reconwatch_sink_success_total",
            "Successful sink deliveries.",
            "sink",
            &self.sink_success,
        );
        labeled(
            &mut o,
            "reconwatch_sink_failures_total",
            "Failed sink delivery attempts.",
            "sink",
            &self.sink_failures,
        );
        labeled(
            &mut o,
            "reconwatch_sink_outboxed_total",
            "Alerts written to the outbox.",
            "sink",
            &self.sink_outboxed,
        );
        let _ = writeln!(
            o,
            "# HELP reconwatch_outbox_depth Alerts waiting in the outbox.\n# TYPE reconwatch_outbox_depth gauge"
        );
        for (k, v) in self.outbox_depth.snapshot() {
            let _ = writeln!(o, "reconwatch_outbox_depth{{sink=\"{}\"}} {v}", escape(&k));
        }
        counter(
            &mut o,
            "reconwatch_state_save_failures_total",
            "Failed saves of persisted state.",
            self.state_save_failures.get(),
        );
        let _ = writeln!(
            o,
            "# HELP reconwatch_sqs_messages_pending_delete Applied messages kept until their windows close.\n# TYPE reconwatch_sqs_messages_pending_delete gauge\nreconwatch_sqs_messages_pending_delete {}",
            self.sqs_pending_delete.get()
        );
        histogram(
            &mut o,
            "reconwatch_event_lag_seconds",
            "Now minus eventTime when applied.",
            &self.event_lag,
        );
        histogram(
            &mut o,
            "reconwatch_sqs_lag_seconds",
            "Now minus notification time when received.",
            &self.sqs_lag,
        );
        let _ = writeln!(
            o,
            "# HELP reconwatch_watermark_seconds Highest event time seen.\n# TYPE reconwatch_watermark_seconds gauge\nreconwatch_watermark_seconds {}",
            self.watermark_ms.get() as f64 / 1000.0
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.records_parsed.add(3);
        m.alerts.inc("discovery_cli");
        m.event_lag.observe(42.0);
        let t = m.render();
        assert!(t.contains("reconwatch_events_parsed_total 3\n"), "{t}");
        assert!(t.contains("reconwatch_alerts_total{rule=\"discovery_cli\"} 1\n"));
        assert!(t.contains("reconwatch_event_lag_seconds_bucket{le=\"60\"} 1\n"));
        assert!(t.contains("reconwatch_event_lag_seconds_bucket{le=\"30\"} 0\n"));
        assert!(t.contains("reconwatch_event_lag_seconds_count 1\n"));
    }
}
