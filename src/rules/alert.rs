//! Detections (what a rule found) and the alert document sent to sinks.
//! The document's schema is `schema/alert.schema.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CompiledRule;
use super::spec::{Severity, WindowMode};
use crate::decode::time::format_ms;
use crate::decode::{EventRef, Field, Sym};

/// Version of the alert document layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Caps on list sizes in a document (alerts must stay small for SNS's 256 KB).
const MAX_LIST: usize = 50;
const MAX_SAMPLE_IDS: usize = 20;
const MAX_TIMESTAMPS: usize = 100;

/// Group key values in `group_by` order, hashed once when the key is made.
///
/// An event's key is looked up in the state maps of several rules; hashing
/// an identity ARN's text for each of them was an eighth of the engine's
/// instructions. Maps hash the stored `u64` instead.
#[derive(Clone, Default)]
pub struct GroupKey {
    hash: u64,
    parts: smallvec::SmallVec<[Sym; 2]>,
}

impl GroupKey {
    fn new(parts: smallvec::SmallVec<[Sym; 2]>) -> Self {
        use std::hash::BuildHasher;
        let hash = rustc_hash::FxBuildHasher.hash_one(&parts[..]);
        GroupKey { hash, parts }
    }

    /// The hash computed when the key was made.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// A [`GroupKey`] borrowed from an event's fields, for looking state up
/// without cloning the symbols (an atomic reference-count increment each,
/// and a decrement when the key is dropped). Same hash as the owned key.
#[derive(Clone)]
pub struct GroupKeyRef<'a> {
    hash: u64,
    parts: smallvec::SmallVec<[&'a Sym; 2]>,
}

impl<'a> GroupKeyRef<'a> {
    /// The key of these values, in `group_by` order.
    pub fn new(parts: smallvec::SmallVec<[&'a Sym; 2]>) -> Self {
        use std::hash::BuildHasher;
        // `[&Sym]` hashes as `[Sym]` does: the length, then each symbol's
        // stored hash.
        let hash = rustc_hash::FxBuildHasher.hash_one(&parts[..]);
        Self { hash, parts }
    }

    /// The key of one value (identity-grouped rules, most of them).
    pub fn one(value: &'a Sym) -> Self {
        use std::hash::BuildHasher;
        Self {
            hash: rustc_hash::FxBuildHasher.hash_one(std::slice::from_ref(value)),
            parts: smallvec::smallvec![value],
        }
    }

    /// The hash, the same as the owned key's.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether `key` has the same values.
    pub fn is(&self, key: &GroupKey) -> bool {
        self.hash == key.hash
            && self.parts.len() == key.parts.len()
            && self.parts.iter().zip(&key.parts).all(|(a, b)| *a == b)
    }

    /// The owned key (the symbols cloned).
    pub fn to_owned_key(&self) -> GroupKey {
        GroupKey {
            hash: self.hash,
            parts: self.parts.iter().map(|s| (*s).clone()).collect(),
        }
    }
}

impl FromIterator<Sym> for GroupKey {
    fn from_iter<I: IntoIterator<Item = Sym>>(iter: I) -> Self {
        GroupKey::new(iter.into_iter().collect())
    }
}

impl std::ops::Deref for GroupKey {
    type Target = [Sym];
    fn deref(&self) -> &[Sym] {
        &self.parts
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.parts == other.parts
    }
}

impl Eq for GroupKey {}

impl std::hash::Hash for GroupKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl std::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.parts.iter()).finish()
    }
}

/// A compact reference to another detection (correlation input).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignalRef {
    /// The contributing rule.
    pub rule_id: String,
    /// Its detection id.
    pub alert_id: String,
    /// Window start (event time, RFC 3339).
    pub window_start: String,
    /// Window end (event time, RFC 3339).
    pub window_end: String,
    /// Its summary line.
    pub summary: String,
}

/// What a rule found, before it becomes a document.
#[derive(Debug, Clone)]
pub struct Detection {
    /// The rule.
    pub rule: Arc<CompiledRule>,
    /// Group key values (`rule.spec.group_by` order).
    pub group: GroupKey,
    /// Stable id per (rule, group, episode).
    pub alert_id: String,
    /// Window start, event time ms.
    pub window_start_ms: i64,
    /// Window end (last event or bucket end), event time ms.
    pub window_end_ms: i64,
    /// Events in the window (sample for the document).
    pub events: Vec<EventRef>,
    /// Events counted.
    pub event_count: u64,
    /// Distinct values of the rule's distinct field with their counts.
    pub distinct: Vec<(Sym, u64)>,
    /// Contributing detections (correlation).
    pub signals: Vec<SignalRef>,
    /// New values (new-terms rules).
    pub new_terms: Vec<Sym>,
    /// `true` for the final update of a window that already alerted.
    pub is_update: bool,
    /// Baseline figures (baseline rules).
    pub baseline: Option<BaselineFacts>,
}

/// What a baseline rule found: Splunk's output fields and how they arose.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BaselineFacts {
    /// Successful calls in the hour (so far, for an `alert`; final, for an `update`).
    pub api_calls: u64,
    /// The upper threshold, rounded to 4 decimals as Splunk shows it.
    pub expected_upper_threshold: f64,
    /// `api_calls - expected_upper_threshold`.
    pub distance_from_threshold: f64,
    /// Event names called in the hour (at most 50).
    pub commands: Vec<String>,
    /// The fitted density.
    pub dist: crate::rules::density::Dist,
    /// Past hourly samples in the group.
    pub samples: usize,
    /// Hour-of-day bucket (`floor(hour / n) * n`, UTC).
    pub hour_of_day_bucket: u32,
    /// Saturday or Sunday (UTC).
    pub is_weekend: bool,
}

/// Stable alert id: the first 128 bits of SHA-256 over rule id, group key
/// and episode number, hex.
pub fn alert_id(rule_id: &str, group: &[Sym], episode: i64) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    for g in group {
        h.update([0x1f]);
        h.update(g.as_bytes());
    }
    h.update([0x1e]);
    h.update(episode.to_le_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Episode number of a window start for a rule: windows starting in the
/// same suppression period share an id. With suppression off, the window
/// start itself.
pub fn episode(rule: &CompiledRule, window_start_ms: i64) -> i64 {
    if rule.suppress_ms > 0 {
        window_start_ms.div_euclid(rule.suppress_ms)
    } else {
        window_start_ms
    }
}

/// Alert or update.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// First notice of an episode (sent as soon as the threshold is crossed).
    Alert,
    /// Final figures of a window that already alerted (same `alert_id`).
    Update,
}

/// Rule identification in the document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleRef {
    /// Rule id.
    pub id: String,
    /// Rule name.
    pub name: String,
    /// Rule version.
    pub version: u32,
}

/// MITRE ATT&CK ids.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mitre {
    /// Tactic ids.
    pub tactics: Vec<String>,
    /// Technique ids.
    pub techniques: Vec<String>,
}

/// The window, in event time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WindowDoc {
    /// Start (RFC 3339).
    pub start: String,
    /// End (RFC 3339).
    pub end: String,
    /// `sliding` / `tumbling` for threshold rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<WindowMode>,
    /// Window length for threshold rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_secs: Option<u64>,
}

/// A value and how often it occurred.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ValueCount {
    /// The value.
    pub value: String,
    /// Occurrences in the window.
    pub count: u64,
}

/// The aggregates that crossed the threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Aggregates {
    /// Events in the window.
    pub event_count: u64,
    /// Field counted distinctly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_field: Option<Field>,
    /// Distinct values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_count: Option<u64>,
    /// Values by count, most frequent first (at most 50).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_values: Vec<ValueCount>,
}

/// What Elastic keeps with its alert: the values seen in the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Context {
    /// `userIdentity.type` values.
    pub identity_types: Vec<String>,
    /// Access key ids.
    pub access_key_ids: Vec<String>,
    /// Source IPs.
    pub source_ips: Vec<String>,
    /// Account ids.
    pub account_ids: Vec<String>,
    /// Event sources.
    pub event_sources: Vec<String>,
    /// Event names.
    pub event_names: Vec<String>,
    /// User agents.
    pub user_agents: Vec<String>,
    /// Regions.
    pub regions: Vec<String>,
    /// Event times (at most 100, ascending).
    pub timestamps: Vec<String>,
}

/// The alert document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Layout version.
    pub schema_version: u32,
    /// Stable per (rule, group, episode).
    pub alert_id: String,
    /// `alert` or `update`.
    pub kind: AlertKind,
    /// The rule.
    pub rule: RuleRef,
    /// Severity.
    pub severity: Severity,
    /// 0..=100.
    pub risk_score: u32,
    /// ATT&CK ids.
    pub mitre: Mitre,
    /// Group-by field → value.
    pub group: BTreeMap<String, String>,
    /// Event-time window.
    pub window: WindowDoc,
    /// Figures.
    pub aggregates: Aggregates,
    /// Values seen.
    pub context: Context,
    /// Some contributing eventIDs (at most 20).
    pub sample_event_ids: Vec<String>,
    /// Contributing detections (correlation rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalRef>,
    /// New values (new-terms rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_terms: Vec<String>,
    /// Baseline figures (baseline rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineFacts>,
    /// One line for the analyst.
    pub summary: String,
    /// Wall-clock time of detection (RFC 3339).
    pub detected_at: String,
}

fn distinct_sorted<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Vec<String> {
    let set: BTreeSet<&str> = it.flatten().filter(|s| !s.is_empty()).collect();
    set.into_iter().take(MAX_LIST).map(str::to_string).collect()
}

fn most_common<'a>(it: impl Iterator<Item = Option<&'a str>>) -> Option<&'a str> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in it.flatten() {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| v)
}

impl Detection {
    /// The one-line summary from the rule's template.
    pub fn summary(&self) -> String {
        let spec = &self.rule.spec;
        let template = spec.summary.as_deref().unwrap_or(
            "{identity}: {rule} ({events} events, {distinct} distinct) in {span_secs} s",
        );
        let ev = &self.events;
        let ips: BTreeSet<&str> = ev.iter().filter_map(|e| e.source_ip.as_deref()).collect();
        let ua = most_common(ev.iter().map(|e| e.user_agent.as_deref()))
            .map(|u| u.split_whitespace().next().unwrap_or(u).to_string())
            .unwrap_or_else(|| "unknown client".into());
        let group_val = |f: Field| {
            spec.group_by
                .iter()
                .position(|g| *g == f)
                .and_then(|i| self.group.get(i))
                .map(|s| s.to_string())
                .or_else(|| ev.first().and_then(|e| e.get(f)).map(str::to_string))
                .unwrap_or_default()
        };
        let top: Vec<String> = self
            .distinct
            .iter()
            .take(5)
            .map(|(v, c)| format!("{v}×{c}"))
            .collect();
        let names = distinct_sorted(ev.iter().map(|e| Some(&*e.name)));
        let span = (self.window_end_ms - self.window_start_ms) as f64 / 1000.0;
        let signals: BTreeSet<&str> = self.signals.iter().map(|s| s.rule_id.as_str()).collect();
        let terms: Vec<&str> = self.new_terms.iter().map(|s| &**s).collect();
        let mut out = template.to_string();
        for (k, v) in [
            ("{identity}", group_val(Field::Identity)),
            ("{source_ip}", group_val(Field::SourceIp)),
            ("{rule}", spec.name.clone()),
            ("{distinct}", self.distinct.len().to_string()),
            ("{events}", self.event_count.to_string()),
            ("{span_secs}", format!("{span:.1}")),
            ("{ip_count}", ips.len().to_string()),
            ("{user_agent}", ua),
            ("{top_values}", top.join(", ")),
            ("{event_names}", names.join(", ")),
            (
                "{signals}",
                signals.into_iter().collect::<Vec<_>>().join(", "),
            ),
            ("{new_terms}", terms.join(", ")),
            (
                "{expected_upper_threshold}",
                self.baseline
                    .as_ref()
                    .map(|b| format!("{}", b.expected_upper_threshold))
                    .unwrap_or_default(),
            ),
        ] {
            if out.contains(k) {
                out = out.replace(k, &v);
            }
        }
        out
    }

    /// A compact reference for correlation documents.
    pub fn as_signal(&self) -> SignalRef {
        SignalRef {
            rule_id: self.rule.spec.id.clone(),
            alert_id: self.alert_id.clone(),
            window_start: format_ms(self.window_start_ms),
            window_end: format_ms(self.window_end_ms),
            summary: self.summary(),
        }
    }

    /// The alert document; `now_ms` is the wall clock.
    pub fn to_alert(&self, now_ms: i64) -> Alert {
        let spec = &self.rule.spec;
        let ev = &self.events;
        let mut times: Vec<i64> = ev.iter().map(|e| e.time_ms).collect();
        times.sort_unstable();
        let distinct_field = self.rule.distinct_field;
        let window_doc = WindowDoc {
            start: format_ms(self.window_start_ms),
            end: format_ms(self.window_end_ms),
            mode: spec.window.as_ref().map(|w| w.mode),
            size_secs: spec.window.as_ref().map(|w| w.size_secs),
        };
        Alert {
            schema_version: SCHEMA_VERSION,
            alert_id: self.alert_id.clone(),
            kind: if self.is_update {
                AlertKind::Update
            } else {
                AlertKind::Alert
            },
            rule: RuleRef {
                id: spec.id.clone(),
                name: spec.name.clone(),
                version: spec.version,
            },
            severity: spec.severity,
            risk_score: spec.risk_score,
            mitre: Mitre {
                tactics: spec.mitre_tactics.clone(),
                techniques: spec.mitre_techniques.clone(),
            },
            group: spec
                .group_by
                .iter()
                .zip(self.group.iter())
                .map(|(f, v)| (f.name().to_string(), v.to_string()))
                .collect(),
            window: window_doc,
            aggregates: Aggregates {
                event_count: self.event_count,
                distinct_field,
                distinct_count: distinct_field.map(|_| self.distinct.len() as u64),
                distinct_values: self
                    .distinct
                    .iter()
                    .take(MAX_LIST)
                    .map(|(v, c)| ValueCount {
                        value: v.to_string(),
                        count: *c,
                    })
                    .collect(),
            },
            context: Context {
                identity_types: distinct_sorted(ev.iter().map(|e| e.identity_type.as_deref())),
                access_key_ids: distinct_sorted(ev.iter().map(|e| e.access_key_id.as_deref())),
                source_ips: distinct_sorted(ev.iter().map(|e| e.source_ip.as_deref())),
                account_ids: distinct_sorted(ev.iter().map(|e| e.account_id.as_deref())),
                event_sources: distinct_sorted(ev.iter().map(|e| Some(&*e.source))),
                event_names: distinct_sorted(ev.iter().map(|e| Some(&*e.name))),
                user_agents: distinct_sorted(ev.iter().map(|e| e.user_agent.as_deref())),
                regions: distinct_sorted(ev.iter().map(|e| Some(&*e.region))),
                timestamps: times
                    .iter()
                    .take(MAX_TIMESTAMPS)
                    .map(|t| format_ms(*t))
                    .collect(),
            },
            sample_event_ids: {
                let mut ids: Vec<String> = ev.iter().map(|e| e.id_string()).collect();
                ids.sort();
                ids.dedup();
                ids.truncate(MAX_SAMPLE_IDS);
                ids
            },
            signals: self.signals.clone(),
            new_terms: self.new_terms.iter().map(|s| s.to_string()).collect(),
            baseline: self.baseline.clone(),
            summary: self.summary(),
            detected_at: format_ms(now_ms),
        }
    }
}

/// Sort distinct (value, count) pairs: most frequent first, then by value.
pub fn sort_distinct(v: &mut [(Sym, u64)]) {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_ids_are_stable_and_distinct() {
        let g: Vec<Sym> = vec![Sym::from("arn:aws:iam::1:user/a")];
        let a = alert_id("discovery_cli", &g, 7);
        assert_eq!(a, alert_id("discovery_cli", &g, 7));
        assert_eq!(a.len(), 32);
        assert_ne!(a, alert_id("discovery_cli", &g, 8));
        assert_ne!(a, alert_id("api_recon_spike", &g, 7));
        // Group fields are separated, so ("ab","c") != ("a","bc").
        let g1: Vec<Sym> = vec![Sym::from("ab"), Sym::from("c")];
        let g2: Vec<Sym> = vec![Sym::from("a"), Sym::from("bc")];
        assert_ne!(alert_id("r", &g1, 0), alert_id("r", &g2, 0));
    }
}
