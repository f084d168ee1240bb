//! Configuration: one serde tree per pipeline stage, loaded from TOML plus
//! `RECONWATCH__SECTION__KEY` environment overrides, and validated once at
//! start-up with every problem reported together.
//!
//! Every field has a documented default so an empty file is a valid
//! configuration for `replay`; `run` additionally needs `sqs.queue_url`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rules::spec::RuleSpec;

/// Prefix of environment variables that override configuration values.
/// `RECONWATCH__SQS__QUEUE_URL=...` sets `sqs.queue_url`.
pub const ENV_PREFIX: &str = "RECONWATCH__";

/// Exit code for an invalid configuration (`EX_USAGE` from sysexits.h).
pub const EX_USAGE: i32 = 64;

/// The whole configuration tree.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// AWS client settings shared by SQS, S3 and SNS.
    #[serde(default)]
    pub aws: AwsConfig,
    /// The SQS queue that receives S3 object notifications (daemon mode).
    #[serde(default)]
    pub sqs: SqsConfig,
    /// Fetching and decoding CloudTrail objects.
    #[serde(default)]
    pub s3: S3Config,
    /// Sharding, windows and event time.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Detection rules.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Where alerts go. Default: one stdout sink.
    #[serde(default = "default_sinks")]
    pub sinks: Vec<SinkConfig>,
    /// Logs and metrics.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Persisted detection state (baselines, new-terms history).
    #[serde(default)]
    pub state: StateConfig,
}

/// Where baselines and new-terms history persist.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    /// Embedded database file (`state.path`). Default.
    #[default]
    File,
    /// JSON objects under `state.s3_uri` (containers without a volume).
    S3,
    /// Nothing persists (state is rebuilt from scratch at every start).
    None,
}

/// Persisted state settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `file`, `s3` or `none`. Default file.
    #[serde(default)]
    pub kind: StateKind,
    /// Database file; default `<pipeline.state_dir>/state.redb`.
    pub path: Option<PathBuf>,
    /// `s3://bucket/prefix` for `kind = "s3"`.
    pub s3_uri: Option<String>,
    /// Seconds between saves of changed state. Default 30.
    #[serde(default = "default_flush_secs")]
    pub flush_secs: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            kind: StateKind::File,
            path: None,
            s3_uri: None,
            flush_secs: default_flush_secs(),
        }
    }
}

const fn default_flush_secs() -> u64 {
    30
}

/// AWS client settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region; default: the SDK's default chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Custom endpoint for every AWS client, e.g. `http://127.0.0.1:4566` for
    /// LocalStack. Default: the real AWS endpoints.
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing; forced on when `endpoint_url` is set because
    /// LocalStack's virtual-host names need DNS. Default false.
    #[serde(default)]
    pub s3_force_path_style: bool,
}

/// SQS poller settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqsConfig {
    /// URL of the queue receiving S3 notifications. Required for `run`.
    pub queue_url: Option<String>,
    /// Concurrent long-polling loops. Default 2.
    #[serde(default = "default_pollers")]
    pub pollers: usize,
    /// Long-poll wait per ReceiveMessage, 0..=20 seconds. Default 20.
    #[serde(default = "default_wait_time_secs")]
    pub wait_time_secs: u32,
    /// Messages per ReceiveMessage, 1..=10. Default 10.
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    /// Visibility timeout requested on receive; the heartbeat extends it while
    /// a message's objects are still being processed. Default 300.
    #[serde(default = "default_visibility_timeout_secs")]
    pub visibility_timeout_secs: u32,
    /// When a message is deleted. `windows_closed` (default): once the
    /// watermark has passed its newest event plus the longest rule horizon,
    /// so after a crash SQS redelivers every message whose events could still
    /// complete a detection and the windows are rebuilt. `applied`: as soon
    /// as the shard actors applied its events (fewer messages in flight; a
    /// crash loses open windows).
    #[serde(default)]
    pub delete_after: DeleteAfter,
    /// An object already read completely (same bucket, key and sequencer or
    /// ETag) is skipped when notified again within this many seconds
    /// (duplicate notifications, S3 + EventBridge both configured). Default 3600.
    #[serde(default = "default_duplicate_horizon_secs")]
    pub duplicate_horizon_secs: u64,
}

/// See [`SqsConfig::delete_after`].
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeleteAfter {
    /// Delete when no open window can still use the message's events.
    #[default]
    WindowsClosed,
    /// Delete as soon as the events are applied.
    Applied,
}

/// S3 object fetching and decoding.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Objects fetched and decoded at once. Default 32: objects are read
    /// ahead of the shards, so on two cores both stay busy (with 8, a
    /// two-core replay took ~1.1x as long; `bench/README.md`).
    #[serde(default = "default_fetch_concurrency")]
    pub fetch_concurrency: usize,
    /// Cap on decompressed bytes per object (gzip-bomb guard). Default 4 GiB.
    #[serde(default = "default_max_decompressed_bytes")]
    pub max_decompressed_bytes: u64,
    /// Cap on records per object. Default 10,000,000.
    #[serde(default = "default_max_records_per_object")]
    pub max_records_per_object: u64,
    /// Cap on one record's size; larger records are skipped and counted.
    /// Default 1 MiB (CloudTrail's own limit is 256 KB).
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: usize,
    /// Attempts per object on throttling / 5xx before giving up. Default 5.
    #[serde(default = "default_fetch_attempts")]
    pub fetch_attempts: u32,
    /// Objects up to this many compressed bytes are read whole and inflated
    /// in one call (libdeflate, about twice as fast as streaming) when
    /// their decompressed size is at most 48 MiB and a process-wide 64 MiB
    /// budget allows; others stream. 0 streams every object. Default
    /// 4194304 (4 MiB).
    #[serde(default = "default_whole_object_max_bytes")]
    pub whole_object_max_bytes: usize,
}

/// Sharding, batching and event-time settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Window actors; identities are hashed onto them. 0 = number of cores.
    #[serde(default)]
    pub shards: usize,
    /// Capacity, in batches, of each shard's channel. Default 64.
    #[serde(default = "default_shard_channel_capacity")]
    pub shard_channel_capacity: usize,
    /// Events per batch sent to a shard. Default 512.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// How far behind the newest event time an event may arrive and still be
    /// counted. Default 900 (15 min; CloudTrail delivers ~5 min late on average).
    #[serde(default = "default_allowed_lateness_secs")]
    pub allowed_lateness_secs: u64,
    /// A CloudTrail-named object's hold on the watermark follows its read
    /// progress: it may move up to the newest event time already applied
    /// from the object minus this (how far back its later records may go),
    /// so an object spanning hours (a backfill) keeps only this much of its
    /// past in memory. Never below the object's delivery slot. Default 3600.
    #[serde(default = "default_object_disorder_secs")]
    pub object_disorder_secs: u64,
    /// When no event arrives for this long (wall clock), the watermark advances
    /// with the wall clock so open windows close. Default 60.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// The watermark may advance at most this many seconds of event time per
    /// second of wall time, so a backlog (CloudTrail catching up after an
    /// outage) delivered within seconds in any order is not judged late.
    /// Default 10.
    #[serde(default = "default_watermark_max_speed")]
    pub watermark_max_speed: f64,
    /// Housekeeping tick of the window actors (watermark, eviction). Default 1000.
    #[serde(default = "default_tick_millis")]
    pub tick_millis: u64,
    /// Capacity of the alert channel into each sink. Default 1024.
    #[serde(default = "default_sink_channel_capacity")]
    pub sink_channel_capacity: usize,
    /// Cap on events kept per (rule, group) window buffer; older ones are
    /// evicted first and counted. Default 20,000.
    #[serde(default = "default_max_events_per_group")]
    pub max_events_per_group: usize,
    /// Directory for durable local state (sink outbox). Default `./reconwatch-state`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Interval between retries of a failing sink's outbox. Default 15.
    #[serde(default = "default_outbox_retry_secs")]
    pub outbox_retry_secs: u64,
    /// Grace period for draining on SIGTERM before giving up. Default 30.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

/// Which rules are loaded.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Load the rules embedded in the binary (`config/rules/*.toml`). Default true.
    #[serde(default = "default_true")]
    pub include_defaults: bool,
    /// Extra rule files (TOML with `[[rule]]` tables); relative paths are
    /// resolved against the configuration file's directory. A rule whose id
    /// equals a default rule's replaces it.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Inline rules, same shape as in the rule files.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
    /// Rule ids to disable.
    #[serde(default)]
    pub disabled: Vec<String>,
    /// Allowlist applied to every rule (in addition to each rule's own).
    #[serde(default)]
    pub allowlist: AllowlistConfig,
}

/// Events matching any entry are ignored by the rule (or by all rules, when global).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AllowlistConfig {
    /// Globs over the identity (normally `userIdentity.arn`), e.g.
    /// `arn:aws:iam::*:role/wiz-scanner*`.
    #[serde(default)]
    pub identities: Vec<String>,
    /// Role names (the part after `role/` or `assumed-role/`).
    #[serde(default)]
    pub role_names: Vec<String>,
    /// Globs over the user agent, e.g. `*Terraform/*`.
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// Source networks, e.g. `10.0.0.0/8`.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Account ids (`recipientAccountId` / `userIdentity.accountId`).
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// One alert destination.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to a file.
    File {
        /// File to append to (created if missing).
        path: PathBuf,
    },
    /// HTTP POST of each alert as JSON.
    Webhook {
        /// Target URL.
        url: String,
        /// Per-request timeout. Default 10.
        #[serde(default = "default_webhook_timeout_secs")]
        timeout_secs: u64,
        /// Attempts before the alert goes to the outbox. Default 5.
        #[serde(default = "default_sink_attempts")]
        max_attempts: u32,
        /// First retry delay; doubles per attempt (with jitter). Default 500.
        #[serde(default = "default_backoff_millis")]
        backoff_millis: u64,
        /// HMAC-SHA256 key; when set, `X-Reconwatch-Signature: sha256=<hex>`
        /// signs the body. Prefer `secret_env` so the key is not in the file.
        secret: Option<String>,
        /// Name of an environment variable holding the HMAC key.
        secret_env: Option<String>,
        /// Extra headers, e.g. an authorization token.
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// SNS Publish with `rule_id`, `severity` and `kind` message attributes.
    Sns {
        /// Topic ARN.
        topic_arn: String,
        /// Attempts before the alert goes to the outbox. Default 5.
        #[serde(default = "default_sink_attempts")]
        max_attempts: u32,
        /// First retry delay; doubles per attempt (with jitter). Default 500.
        #[serde(default = "default_backoff_millis")]
        backoff_millis: u64,
    },
}

impl SinkConfig {
    /// Short stable name for logs, metrics and outbox files.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout => "stdout",
            SinkConfig::File { .. } => "file",
            SinkConfig::Webhook { .. } => "webhook",
            SinkConfig::Sns { .. } => "sns",
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal (containers), human otherwise.
    #[default]
    Auto,
    /// Always JSON lines.
    Json,
    /// Always human-readable.
    Text,
}

/// Logs and metrics.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log format. Default `auto`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// `tracing` filter directive; `RUST_LOG` wins when set. Default `info`.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Address of the `/metrics`, `/healthz`, `/readyz` server in `run` mode;
    /// empty disables it. Default `0.0.0.0:9090`.
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
}

// === defaults ===

const fn default_true() -> bool {
    true
}
const fn default_pollers() -> usize {
    2
}
const fn default_wait_time_secs() -> u32 {
    20
}
const fn default_max_messages() -> u32 {
    10
}
const fn default_visibility_timeout_secs() -> u32 {
    300
}
const fn default_duplicate_horizon_secs() -> u64 {
    3600
}
const fn default_outbox_retry_secs() -> u64 {
    15
}
const fn default_fetch_concurrency() -> usize {
    32
}
const fn default_max_decompressed_bytes() -> u64 {
    4 << 30
}
const fn default_max_records_per_object() -> u64 {
    10_000_000
}
const fn default_max_record_bytes() -> usize {
    1 << 20
}
const fn default_fetch_attempts() -> u32 {
    5
}
const fn default_whole_object_max_bytes() -> usize {
    4 << 20
}
const fn default_shard_channel_capacity() -> usize {
    64
}
const fn default_batch_events() -> usize {
    512
}
const fn default_allowed_lateness_secs() -> u64 {
    900
}
const fn default_object_disorder_secs() -> u64 {
    3600
}
const fn default_idle_timeout_secs() -> u64 {
    60
}
const fn default_watermark_max_speed() -> f64 {
    10.0
}
const fn default_tick_millis() -> u64 {
    1000
}
const fn default_sink_channel_capacity() -> usize {
    1024
}
const fn default_max_events_per_group() -> usize {
    20_000
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("reconwatch-state")
}
const fn default_shutdown_grace_secs() -> u64 {
    30
}
const fn default_webhook_timeout_secs() -> u64 {
    10
}
const fn default_sink_attempts() -> u32 {
    5
}
const fn default_backoff_millis() -> u64 {
    500
}
fn default_log_level() -> String {
    "info".into()
}
fn default_http_listen() -> String {
    "0.0.0.0:9090".into()
}
fn default_sinks() -> Vec<SinkConfig> {
    vec![SinkConfig::Stdout]
}

impl Default for SqsConfig {
    fn default() -> Self {
        Self {
            queue_url: None,
            pollers: default_pollers(),
            wait_time_secs: default_wait_time_secs(),
            max_messages: default_max_messages(),
            visibility_timeout_secs: default_visibility_timeout_secs(),
            delete_after: DeleteAfter::default(),
            duplicate_horizon_secs: default_duplicate_horizon_secs(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            fetch_concurrency: default_fetch_concurrency(),
            max_decompressed_bytes: default_max_decompressed_bytes(),
            max_records_per_object: default_max_records_per_object(),
            max_record_bytes: default_max_record_bytes(),
            fetch_attempts: default_fetch_attempts(),
            whole_object_max_bytes: default_whole_object_max_bytes(),
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            shard_channel_capacity: default_shard_channel_capacity(),
            batch_events: default_batch_events(),
            allowed_lateness_secs: default_allowed_lateness_secs(),
            object_disorder_secs: default_object_disorder_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            watermark_max_speed: default_watermark_max_speed(),
            tick_millis: default_tick_millis(),
            sink_channel_capacity: default_sink_channel_capacity(),
            max_events_per_group: default_max_events_per_group(),
            state_dir: default_state_dir(),
            outbox_retry_secs: default_outbox_retry_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            include_defaults: true,
            files: Vec::new(),
            rule: Vec::new(),
            disabled: Vec::new(),
            allowlist: AllowlistConfig::default(),
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_level: default_log_level(),
            http_listen: default_http_listen(),
        }
    }
}

// === loading ===

/// Everything wrong with a configuration, reported together.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// One line per problem.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem(s)):",
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(msg: impl Into<String>) -> Self {
        Self {
            problems: vec![msg.into()],
        }
    }
}

/// What the loaded configuration is for: `run` needs a queue, `replay` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The SQS-driven daemon.
    Daemon,
    /// Replay over files or an S3 prefix, and `check-config` without a daemon.
    Offline,
}

impl Config {
    /// Load from an optional TOML file, apply environment overrides, validate.
    pub fn load(path: Option<&Path>, mode: Mode) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::load_with_env(path, &vars, mode)
    }

    /// Like [`Config::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: &[(String, String)],
        mode: Mode,
    ) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigError::one(format!("cannot read {}: {e}", p.display())))?,
            None => String::new(),
        };
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| {
            ConfigError::one(format!(
                "{}: {e}",
                path.map(|p| p.display().to_string())
                    .unwrap_or_else(|| "<config>".into())
            ))
        })?;
        let mut problems = Vec::new();
        apply_env_overrides(&mut value, env, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let mut cfg: Config = value.try_into().map_err(|e: toml::de::Error| {
            ConfigError::one(format!(
                "{}: {}",
                path.map(|p| p.display().to_string())
                    .unwrap_or_else(|| "<config>".into()),
                e.to_string().trim()
            ))
        })?;
        if let Some(dir) = path.and_then(Path::parent) {
            for f in &mut cfg.rules.files {
                if f.is_relative() {
                    *f = dir.join(&*f);
                }
            }
        }
        cfg.validate(mode)?;
        Ok(cfg)
    }

    /// Check every semantic constraint and report all violations at once.
    /// Rule specs are compiled (and checked) separately by the rule loader.
    pub fn validate(&self, mode: Mode) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if mode == Mode::Daemon && self.sqs.queue_url.as_deref().unwrap_or("").is_empty() {
            p.push("sqs.queue_url is required for `run`".to_string());
        }
        if self.sqs.pollers == 0 {
            p.push("sqs.pollers must be >= 1".into());
        }
        if self.sqs.wait_time_secs > 20 {
            p.push(format!(
                "sqs.wait_time_secs must be 0..=20 (got {})",
                self.sqs.wait_time_secs
            ));
        }
        if !(1..=10).contains(&self.sqs.max_messages) {
            p.push(format!(
                "sqs.max_messages must be 1..=10 (got {})",
                self.sqs.max_messages
            ));
        }
        if !(1..=43_200).contains(&self.sqs.visibility_timeout_secs) {
            p.push(format!(
                "sqs.visibility_timeout_secs must be 1..=43200 (got {})",
                self.sqs.visibility_timeout_secs
            ));
        }
        if self.s3.fetch_concurrency == 0 {
            p.push("s3.fetch_concurrency must be >= 1".into());
        }
        if self.s3.max_record_bytes < 1024 {
            p.push("s3.max_record_bytes must be >= 1024".into());
        }
        if self.s3.fetch_attempts == 0 {
            p.push("s3.fetch_attempts must be >= 1".into());
        }
        if self.pipeline.shard_channel_capacity == 0 {
            p.push("pipeline.shard_channel_capacity must be >= 1".into());
        }
        if self.pipeline.batch_events == 0 {
            p.push("pipeline.batch_events must be >= 1".into());
        }
        if self.pipeline.outbox_retry_secs == 0 {
            p.push("pipeline.outbox_retry_secs must be >= 1".into());
        }
        let speed = self.pipeline.watermark_max_speed;
        if speed.is_nan() || speed < 1.0 {
            p.push(format!(
                "pipeline.watermark_max_speed must be >= 1 (got {})",
                self.pipeline.watermark_max_speed
            ));
        }
        if self.pipeline.tick_millis == 0 {
            p.push("pipeline.tick_millis must be >= 1".into());
        }
        if self.pipeline.sink_channel_capacity == 0 {
            p.push("pipeline.sink_channel_capacity must be >= 1".into());
        }
        if self.pipeline.max_events_per_group < 16 {
            p.push("pipeline.max_events_per_group must be >= 16".into());
        }
        if self.pipeline.object_disorder_secs > 7 * 86_400 {
            p.push(format!(
                "pipeline.object_disorder_secs must be at most 604800 (7 days; got {})",
                self.pipeline.object_disorder_secs
            ));
        }
        if let Some(ep) = &self.aws.endpoint_url
            && !(ep.starts_with("http://") || ep.starts_with("https://"))
        {
            p.push(format!(
                "aws.endpoint_url must start with http:// or https:// (got {ep:?})"
            ));
        }
        if !self.telemetry.http_listen.is_empty()
            && self.telemetry.http_listen.parse::<SocketAddr>().is_err()
        {
            p.push(format!(
                "telemetry.http_listen must be host:port (got {:?})",
                self.telemetry.http_listen
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_level) {
            p.push(format!("telemetry.log_level: {e}"));
        }
        if self.state.flush_secs == 0 {
            p.push("state.flush_secs must be >= 1".into());
        }
        if self.state.kind == StateKind::S3
            && !self
                .state
                .s3_uri
                .as_deref()
                .is_some_and(|u| u.starts_with("s3://") && u.len() > 5)
        {
            p.push("state.s3_uri must be s3://bucket[/prefix] when state.kind = \"s3\"".into());
        }
        if self.sinks.is_empty() {
            p.push("sinks: at least one sink is required".into());
        }
        for (i, s) in self.sinks.iter().enumerate() {
            match s {
                SinkConfig::Webhook {
                    url,
                    timeout_secs,
                    max_attempts,
                    secret,
                    secret_env,
                    ..
                } => {
                    if reqwest::Url::parse(url).is_err() {
                        p.push(format!("sinks[{i}] (webhook): url {url:?} is not a URL"));
                    }
                    if *timeout_secs == 0 {
                        p.push(format!("sinks[{i}] (webhook): timeout_secs must be >= 1"));
                    }
                    if *max_attempts == 0 {
                        p.push(format!("sinks[{i}] (webhook): max_attempts must be >= 1"));
                    }
                    if secret.is_some() && secret_env.is_some() {
                        p.push(format!(
                            "sinks[{i}] (webhook): set secret or secret_env, not both"
                        ));
                    }
                }
                SinkConfig::Sns {
                    topic_arn,
                    max_attempts,
                    ..
                } => {
                    if !topic_arn.starts_with("arn:") {
                        p.push(format!(
                            "sinks[{i}] (sns): topic_arn {topic_arn:?} is not an ARN"
                        ));
                    }
                    if *max_attempts == 0 {
                        p.push(format!("sinks[{i}] (sns): max_attempts must be >= 1"));
                    }
                }
                SinkConfig::File { path } => {
                    if path.as_os_str().is_empty() {
                        p.push(format!("sinks[{i}] (file): path is empty"));
                    }
                }
                SinkConfig::Stdout => {}
            }
        }
        for (i, c) in self.rules.allowlist.cidrs.iter().enumerate() {
            if c.parse::<ipnet::IpNet>().is_err() && c.parse::<std::net::IpAddr>().is_err() {
                p.push(format!("rules.allowlist.cidrs[{i}]: {c:?} is not a CIDR"));
            }
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems: p })
        }
    }

    /// The state database path (`state.path` or `<state_dir>/state.redb`).
    pub fn state_path(&self) -> PathBuf {
        self.state
            .path
            .clone()
            .unwrap_or_else(|| self.pipeline.state_dir.join("state.redb"))
    }

    /// Number of shard actors after resolving `0` to the core count.
    pub fn shard_count(&self) -> usize {
        if self.pipeline.shards == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            self.pipeline.shards
        }
    }
}

/// Apply `RECONWATCH__A__B=value` as `a.b = value`. The value is read as a
/// TOML value when it parses as one (numbers, booleans, arrays, inline
/// tables), else as a string.
fn apply_env_overrides(
    root: &mut toml::Table,
    env: &[(String, String)],
    problems: &mut Vec<String>,
) {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (key, raw) in vars {
        let path: Vec<String> = key[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            problems.push(format!("{key}: empty path segment"));
            continue;
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let (last, parents) = path.split_last().expect("path has at least one segment");
        if let Err(seg) = insert_path(root, parents, last, value) {
            problems.push(format!("{key}: `{seg}` is not a table"));
        }
    }
}

/// Set `parents.last = value`, creating tables; `Err` names a non-table segment.
fn insert_path(
    table: &mut toml::Table,
    parents: &[String],
    last: &str,
    value: toml::Value,
) -> Result<(), String> {
    match parents.split_first() {
        None => {
            table.insert(last.to_string(), value);
            Ok(())
        }
        Some((seg, rest)) => match table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            toml::Value::Table(t) => insert_path(t, rest, last, value),
            _ => Err(seg.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_config_is_valid_offline_but_not_for_daemon() {
        assert!(Config::load_with_env(None, &[], Mode::Offline).is_ok());
        let err = Config::load_with_env(None, &[], Mode::Daemon).unwrap_err();
        assert!(err.problems[0].contains("sqs.queue_url"), "{err}");
    }

    #[test]
    fn env_overrides_set_nested_values_with_types() {
        let cfg = Config::load_with_env(
            None,
            &env(&[
                ("RECONWATCH__SQS__QUEUE_URL", "http://q"),
                ("RECONWATCH__SQS__POLLERS", "3"),
                ("RECONWATCH__AWS__ENDPOINT_URL", "http://127.0.0.1:4566"),
                (
                    "RECONWATCH__SINKS",
                    r#"[{type="webhook", url="http://x/y"}]"#,
                ),
                ("UNRELATED", "1"),
            ]),
            Mode::Daemon,
        )
        .unwrap();
        assert_eq!(cfg.sqs.queue_url.as_deref(), Some("http://q"));
        assert_eq!(cfg.sqs.pollers, 3);
        assert_eq!(
            cfg.aws.endpoint_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(cfg.sinks[0].kind(), "webhook");
    }

    #[test]
    fn every_problem_is_reported_together() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            r#"
[sqs]
max_messages = 11
wait_time_secs = 30
[pipeline]
batch_events = 0
[[sinks]]
type = "webhook"
url = "not a url"
timeout_secs = 0
"#,
        )
        .unwrap();
        let err = Config::load_with_env(Some(&p), &[], Mode::Daemon).unwrap_err();
        let text = err.to_string();
        for needle in [
            "sqs.queue_url",
            "sqs.max_messages",
            "sqs.wait_time_secs",
            "pipeline.batch_events",
            "url \"not a url\"",
            "timeout_secs",
        ] {
            assert!(text.contains(needle), "missing {needle} in {text}");
        }
        assert_eq!(err.problems.len(), 6, "{text}");
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[sqs]\nqueue_ulr = \"x\"\n").unwrap();
        let err = Config::load_with_env(Some(&p), &[], Mode::Offline).unwrap_err();
        assert!(err.to_string().contains("queue_ulr"), "{err}");
    }

    #[test]
    fn shipped_example_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reconwatch.toml");
        let cfg = Config::load_with_env(Some(&p), &[], Mode::Daemon).unwrap();
        assert!(!cfg.sinks.is_empty());
    }
}
