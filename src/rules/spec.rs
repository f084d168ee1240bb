//! Rule specifications as data: what a rule file's `[[rule]]` table holds.
//!
//! A rule is a filter (conditions ANDed), an allowlist, a group-by, and a
//! kind-specific section. Kinds:
//! - `threshold`: a window (sliding or tumbling) over the group's matching
//!   events with a distinct-count and/or event-count threshold;
//! - `match`: every matching event is a detection (building blocks such as
//!   snapshot/AMI activity);
//! - `new_terms`: a value of a field never seen for the group before (on every
//!   matching event, or on another rule's detection with `trigger`);
//! - `correlation`: several rules' detections for the same identity within a
//!   horizon.

use serde::{Deserialize, Serialize};

use crate::config::AllowlistConfig;
use crate::decode::Field;

/// A rule as written in a rule file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id (`[a-z0-9_]+`); part of every alert id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Bumped when the logic changes. Default 1.
    #[serde(default = "one")]
    pub version: u32,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Free text for analysts.
    #[serde(default)]
    pub description: String,
    /// What the rule computes.
    pub kind: RuleKind,
    /// Alert severity.
    pub severity: Severity,
    /// 0..=100.
    #[serde(default)]
    pub risk_score: u32,
    /// MITRE ATT&CK tactic ids, e.g. `TA0007`.
    #[serde(default)]
    pub mitre_tactics: Vec<String>,
    /// MITRE ATT&CK technique ids, e.g. `T1580`.
    #[serde(default)]
    pub mitre_techniques: Vec<String>,
    /// `alert` (to the sinks) or `signal` (only feeds correlation). Default alert.
    #[serde(default)]
    pub output: Output,
    /// Conditions an event must meet (all of them).
    #[serde(default)]
    pub filter: Vec<Condition>,
    /// Events to ignore for this rule.
    #[serde(default)]
    pub allowlist: AllowlistConfig,
    /// Fields forming the group key; must start with `identity` so a group
    /// lives in one shard. Default `["identity"]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<Field>,
    /// After an alert for a group, repeats within this many seconds of event
    /// time are suppressed; 0 disables. Also the episode length in `alert_id`.
    /// Default 3600.
    #[serde(default = "default_suppress_secs")]
    pub suppress_secs: u64,
    /// One-line analyst summary template; see the README for placeholders.
    #[serde(default)]
    pub summary: Option<String>,
    /// For `threshold`.
    #[serde(default)]
    pub window: Option<WindowSpec>,
    /// For `threshold`.
    #[serde(default)]
    pub threshold: Option<ThresholdSpec>,
    /// For `new_terms`.
    #[serde(default)]
    pub new_terms: Option<NewTermsSpec>,
    /// For `correlation`.
    #[serde(default)]
    pub correlation: Option<CorrelationSpec>,
    /// For `baseline`.
    #[serde(default)]
    pub baseline: Option<BaselineSpec>,
}

/// Per-identity hourly-count baseline (Splunk's "Abnormally High Number Of
/// Cloud Infrastructure API Calls"): hourly counts of matching events per
/// identity, baselined per (hour-of-day bucket, weekend or not).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    /// Width of the hour-of-day buckets (`floor(hour / n) * n`); divides 24. Default 4.
    #[serde(default = "default_hour_bucket_hours")]
    pub hour_bucket_hours: u32,
    /// Separate baselines for Saturday/Sunday (UTC). Default true.
    #[serde(default = "yes")]
    pub split_weekend: bool,
    /// Groups with fewer past hourly samples are not judged. Default 16.
    #[serde(default = "default_min_samples")]
    pub min_samples: usize,
    /// Tail area of the density above the threshold. Default 0.005.
    #[serde(default = "default_tail")]
    pub tail: f64,
    /// `normal` (Splunk's shipped baseline), `expon`, `kde` or `auto`. Default normal.
    #[serde(default = "default_dist")]
    pub dist: crate::rules::density::Dist,
    /// Samples older than this are dropped. Default 90 (Splunk's baseline span).
    #[serde(default = "default_baseline_history_days")]
    pub history_days: u64,
}

fn default_hour_bucket_hours() -> u32 {
    4
}
fn default_min_samples() -> usize {
    16
}
fn default_tail() -> f64 {
    0.005
}
fn default_dist() -> crate::rules::density::Dist {
    crate::rules::density::Dist::Normal
}
fn default_baseline_history_days() -> u64 {
    90
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_group_by() -> Vec<Field> {
    vec![Field::Identity]
}
fn default_suppress_secs() -> u64 {
    3600
}

/// Rule kinds.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Windowed aggregate over a threshold.
    Threshold,
    /// Every matching event.
    Match,
    /// First occurrence of a field value for the group.
    NewTerms,
    /// Several rules' detections for one identity within a horizon.
    Correlation,
    /// Hourly count per identity against its learnt baseline.
    Baseline,
}

/// Severity levels (Elastic's scale).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Where a rule's detections go.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Sent to the sinks (and usable by correlation).
    #[default]
    Alert,
    /// Only usable by correlation / new-terms triggers; counted in metrics.
    Signal,
}

/// Window kinds.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WindowMode {
    /// Any span of `size_secs` (a burst straddling a bucket boundary is seen).
    #[default]
    Sliding,
    /// Fixed buckets aligned to the epoch, like Elastic's `date_trunc`.
    Tumbling,
}

/// The window of a threshold rule.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Default sliding.
    #[serde(default)]
    pub mode: WindowMode,
    /// Window length in seconds.
    pub size_secs: u64,
}

/// Threshold: fires when every given minimum is reached in one window.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    /// Field whose distinct values are counted.
    pub distinct_field: Option<Field>,
    /// Minimum distinct values ("more than 5" is 6).
    pub min_distinct: Option<u64>,
    /// Minimum events.
    pub min_events: Option<u64>,
}

/// New-terms parameters.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewTermsSpec {
    /// The field whose values are learnt per group.
    pub term_field: Field,
    /// A value not seen for this many days is new again. Default 14.
    #[serde(default = "default_history_days")]
    pub history_days: u64,
    /// Days of event time after the rule first sees data during which it
    /// only learns. Default: `history_days`.
    pub warmup_days: Option<u64>,
    /// Evaluate only when this rule detects for the same identity, on the
    /// terms of the triggering events (rule 6: a 1b burst from a new IP).
    /// Without it, every matching event is evaluated.
    pub trigger: Option<String>,
}

fn default_history_days() -> u64 {
    14
}

/// Correlation parameters.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CorrelationSpec {
    /// Detections must fall within this many seconds. Default 1800.
    #[serde(default = "default_horizon_secs")]
    pub horizon_secs: u64,
    /// Rules that must all have detected.
    pub require: Vec<String>,
    /// At least one of these must also have detected (empty: none needed).
    #[serde(default)]
    pub any_of: Vec<String>,
}

fn default_horizon_secs() -> u64 {
    1800
}

/// A filter condition on one field; every operator given must hold.
/// Comparisons are exact and case-sensitive (CloudTrail's values are).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field tested.
    pub field: Option<Field>,
    /// Value is one of these.
    #[serde(default, rename = "in")]
    pub in_: Vec<String>,
    /// Value is none of these (a missing value passes).
    #[serde(default)]
    pub not_in: Vec<String>,
    /// Value starts with one of these.
    #[serde(default)]
    pub starts_with: Vec<String>,
    /// Value starts with none of these (a missing value passes).
    #[serde(default)]
    pub not_starts_with: Vec<String>,
    /// Value matches one of these globs (`*`, `?`, `[..]`).
    #[serde(default)]
    pub glob: Vec<String>,
    /// Value matches none of these globs (a missing value passes).
    #[serde(default)]
    pub not_glob: Vec<String>,
    /// `true`: the field is present and non-empty; `false`: it is absent.
    pub exists: Option<bool>,
}

/// A rule file: `[[rule]]` tables.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
}
