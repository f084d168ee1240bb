//! Wiring: builds the pipeline (sinks ← shard actors ← router) and runs it
//! as the SQS daemon or as a replay over files / an S3 prefix.
//!
//! Shutdown order (one CancellationToken): stop receiving → finish in-flight
//! messages (bounded by the grace period) → drop the routers so shard actors
//! drain their channels and stop → the sinks see their channels close, make a
//! last outbox attempt and stop.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::StateKind;
use crate::config::{AwsConfig, Config, ConfigError, DeleteAfter, SinkConfig};
use crate::decode::{Limits, record_stats};
use crate::ingest::deferred::{DeferredAcks, DeferredParams};
use crate::ingest::local::{self, Source};
use crate::ingest::notification::{ObjectRef, skip_reason};
use crate::ingest::s3::S3Fetcher;
use crate::ingest::sqs::{self, Health, PollerContext};
use crate::rules::{self, RuleSet};
use crate::shard::{EventClock, Router};
use crate::sink::{self, SinkError, SinkOptions};
use crate::state::{FileStore, S3Store, Store};
use crate::telemetry::{self, metrics};
use crate::window::engine::EngineConfig;
use crate::window::{ShardHandle, ShardParams, StatePersist};

/// Errors that stop a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration or rules.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A sink could not be set up.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A replay source could not be read.
    #[error("replay source: {0}")]
    Source(String),
    /// The state store could not be opened.
    #[error(transparent)]
    State(#[from] crate::state::StoreError),
    /// The HTTP endpoint could not bind.
    #[error("cannot serve {addr}: {source}")]
    Http {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Shared AWS configuration: default credential chain (env, profile, ECS
/// task role, IMDS), optional region and endpoint override (LocalStack).
pub async fn aws_sdk_config(cfg: &AwsConfig) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &cfg.region {
        loader = loader.region(aws_config::Region::new(r.clone()));
    }
    if let Some(ep) = &cfg.endpoint_url {
        loader = loader.endpoint_url(ep);
    }
    loader.load().await
}

/// An S3 client; path-style when an endpoint override is set.
pub fn s3_client(sdk: &aws_config::SdkConfig, cfg: &AwsConfig) -> aws_sdk_s3::Client {
    // The fetcher retries whole objects itself (`s3.fetch_attempts`); SDK
    // retries underneath would multiply the attempts.
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(cfg.s3_force_path_style || cfg.endpoint_url.is_some())
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Open the configured state store. Read-only users (`replay`) get `None`
/// when the database file does not exist yet, so they never create one.
pub fn open_state(
    cfg: &Config,
    aws: Option<&aws_config::SdkConfig>,
    write: bool,
) -> Result<Option<StatePersist>, AppError> {
    let store = match cfg.state.kind {
        StateKind::None => return Ok(None),
        StateKind::File => {
            let path = cfg.state_path();
            if !write && !path.exists() {
                return Ok(None);
            }
            Store::File(FileStore::open(&path)?)
        }
        StateKind::S3 => {
            let Some(sdk) = aws else {
                return Ok(None);
            };
            let uri = cfg.state.s3_uri.as_deref().unwrap_or_default();
            let rest = uri.strip_prefix("s3://").unwrap_or(uri);
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Store::S3(S3Store::new(
                s3_client(sdk, &cfg.aws),
                bucket.to_string(),
                prefix.to_string(),
            ))
        }
    };
    Ok(Some(StatePersist {
        store,
        write,
        flush: Duration::from_secs(cfg.state.flush_secs),
    }))
}

/// The running actors.
pub struct Pipeline {
    shards: Arc<[ShardHandle]>,
    /// Routes events to the shards.
    pub router: Router,
    tracker: TaskTracker,
    /// The shared event clock.
    pub clock: Arc<EventClock>,
}

impl Pipeline {
    /// Spawn sinks and shard actors.
    pub async fn start(
        cfg: &Config,
        rules: Arc<RuleSet>,
        live: bool,
        aws: Option<&aws_config::SdkConfig>,
        state: Option<StatePersist>,
    ) -> Result<Self, AppError> {
        let tracker = TaskTracker::new();
        let alerts = sink::spawn_all(
            &cfg.sinks,
            SinkOptions {
                state_dir: &cfg.pipeline.state_dir,
                capacity: cfg.pipeline.sink_channel_capacity,
                outbox_retry: Duration::from_secs(if live {
                    cfg.pipeline.outbox_retry_secs
                } else {
                    2
                }),
                aws,
            },
            &tracker,
        )
        .await?;
        let clock = Arc::new(EventClock::with_max_speed(
            live.then_some(cfg.pipeline.idle_timeout_secs as i64 * 1000),
            live.then_some(cfg.pipeline.watermark_max_speed),
        ));
        let params = ShardParams {
            rules,
            engine: EngineConfig::from(&cfg.pipeline),
            clock: clock.clone(),
            alerts,
            capacity: cfg.pipeline.shard_channel_capacity,
            tick: Duration::from_millis(cfg.pipeline.tick_millis),
            state,
            shard_count: cfg.shard_count(),
        };
        let shards: Arc<[ShardHandle]> = (0..cfg.shard_count())
            .map(|i| ShardHandle::spawn(i, params.clone(), &tracker))
            .collect();
        // Only the shards hold alert senders now, so sinks stop after them.
        drop(params);
        let router = Router::new(shards.clone(), clock.clone(), cfg.pipeline.batch_events);
        Ok(Self {
            shards,
            router,
            tracker,
            clock,
        })
    }

    /// Optionally close every window (replay), then stop shards and sinks,
    /// waiting at most `grace`.
    pub async fn finish(self, close_windows: bool, grace: Duration) {
        if close_windows {
            for s in self.shards.iter() {
                s.close_all().await;
            }
        }
        let Pipeline {
            shards,
            router,
            tracker,
            ..
        } = self;
        drop(router);
        drop(shards);
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "Shutdown grace period over; some alerts may be left in the outbox."
            );
        }
    }
}

/// Run the SQS daemon until `token` is cancelled.
pub async fn run_daemon(cfg: Config, token: CancellationToken) -> Result<(), AppError> {
    let rules = Arc::new(rules::load(&cfg.rules)?);
    let sdk = aws_sdk_config(&cfg.aws).await;
    let state = open_state(&cfg, Some(&sdk), true)?;
    let pipeline = Pipeline::start(&cfg, rules.clone(), true, Some(&sdk), state).await?;
    let queue_url = cfg.sqs.queue_url.clone().unwrap_or_default();
    let fetcher = Arc::new(S3Fetcher::new(
        s3_client(&sdk, &cfg.aws),
        Limits::from(&cfg.s3),
        cfg.s3.fetch_attempts,
    ));
    let health = Arc::new(Health::default());
    let http_token = CancellationToken::new();
    if !cfg.telemetry.http_listen.is_empty() {
        let addr: SocketAddr = cfg
            .telemetry
            .http_listen
            .parse()
            .expect("validated at load");
        let bound = telemetry::http::serve(
            addr,
            health.clone(),
            cfg.sinks.len(),
            cfg.sqs.wait_time_secs,
            http_token.clone(),
        )
        .await
        .map_err(|source| AppError::Http { addr, source })?;
        tracing::info!(%bound, "Serving /metrics, /healthz, /readyz.");
    }
    // Hold the watermark for one visibility timeout after start: messages
    // left unacknowledged by a previous process (crash, restart) reappear
    // only then, and a backlog's older objects may not have arrived yet.
    pipeline.router.clock().hold_until(
        crate::shard::now_ms()
            + (cfg.sqs.visibility_timeout_secs as i64 + cfg.sqs.wait_time_secs as i64 + 5) * 1000,
    );
    let tasks = TaskTracker::new();
    let deferred = match cfg.sqs.delete_after {
        DeleteAfter::Applied => None,
        DeleteAfter::WindowsClosed => {
            let clock = pipeline.router.clock().clone();
            let horizon_ms = rules.max_horizon_ms();
            let (handle, join) = DeferredAcks::spawn(DeferredParams {
                client: aws_sdk_sqs::Client::new(&sdk),
                queue_url: queue_url.clone(),
                visibility_timeout_secs: cfg.sqs.visibility_timeout_secs,
                clock,
                lateness_ms: cfg.pipeline.allowed_lateness_secs as i64 * 1000,
                horizon_ms,
            });
            Some((handle, horizon_ms, join))
        }
    };
    let ctx = PollerContext {
        client: aws_sdk_sqs::Client::new(&sdk),
        cfg: cfg.sqs.clone(),
        queue_url: queue_url.clone(),
        fetcher,
        router: pipeline.router.clone(),
        fetch_permits: Arc::new(Semaphore::new(cfg.s3.fetch_concurrency)),
        inflight: Arc::new(Semaphore::new(
            (cfg.s3.fetch_concurrency * 4).max(cfg.sqs.max_messages as usize),
        )),
        tasks: tasks.clone(),
        health,
        deferred: deferred.as_ref().map(|(h, ms, _)| (h.clone(), *ms)),
        seen: Arc::new(sqs::SeenObjects::new(Duration::from_secs(
            cfg.sqs.duplicate_horizon_secs,
        ))),
        object_disorder_ms: cfg.pipeline.object_disorder_secs as i64 * 1000,
    };
    tracing::info!(
        queue = %queue_url,
        shards = cfg.shard_count(),
        rules = rules.rules.len(),
        sinks = ?cfg.sinks.iter().map(SinkConfig::kind).collect::<Vec<_>>(),
        "reconwatch running."
    );
    let pollers: Vec<_> = (0..cfg.sqs.pollers)
        .map(|i| tokio::spawn(sqs::poll_loop(ctx.clone(), i, token.clone())))
        .collect();
    token.cancelled().await;
    tracing::info!("Shutdown requested: stopping pollers, draining in-flight messages.");
    for p in pollers {
        if let Err(e) = p.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let grace = Duration::from_secs(cfg.pipeline.shutdown_grace_secs);
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(
            "In-flight messages did not finish in the grace period; SQS will redeliver them."
        );
    }
    drop(ctx);
    if let Some((handle, _, join)) = deferred {
        drop(handle);
        let _ = join.await;
    }
    pipeline.finish(false, grace).await;
    http_token.cancel();
    tracing::info!("Stopped.");
    Ok(())
}

/// What a replay did.
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    /// Objects read completely.
    pub objects_ok: u64,
    /// Objects with an error (named in the log).
    pub objects_failed: u64,
    /// Objects skipped (digests, empty, not JSON).
    pub objects_skipped: u64,
    /// Decompressed bytes.
    pub bytes: u64,
    /// Records found.
    pub records: u64,
    /// Events decoded.
    pub events: u64,
    /// Records skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Late events.
    pub late: u64,
    /// Duplicate events.
    pub duplicates: u64,
    /// Events without identity.
    pub no_identity: u64,
    /// Alerts by rule.
    pub alerts: BTreeMap<String, u64>,
    /// Signals by rule.
    pub signals: BTreeMap<String, u64>,
    /// Events each enabled rule accepted (filters and allowlists passed),
    /// 0 included: what a rule costs grows with it, and an event rule at 0
    /// over data it should see may have a filter typo. Correlations take
    /// detections, not events, so theirs is 0.
    pub matched: BTreeMap<String, u64>,
    /// Wall time.
    pub elapsed: Duration,
    /// Peak resident memory of the process, MB (Linux).
    pub peak_rss_mb: Option<f64>,
}

impl fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(f, "replay summary")?;
        writeln!(
            f,
            "  objects ok / failed / skipped  {} / {} / {}",
            self.objects_ok, self.objects_failed, self.objects_skipped
        )?;
        writeln!(f, "  records                        {}", self.records)?;
        writeln!(f, "  events                         {}", self.events)?;
        for (k, v) in &self.skipped {
            writeln!(f, "  records skipped ({k:<14}) {v}")?;
        }
        writeln!(
            f,
            "  events late / duplicate / no identity  {} / {} / {}",
            self.late, self.duplicates, self.no_identity
        )?;
        writeln!(
            f,
            "  decompressed MB                {:.1}",
            self.bytes as f64 / 1e6
        )?;
        writeln!(f, "  elapsed s                      {:.2}", secs)?;
        writeln!(
            f,
            "  events/s                       {:.0}",
            self.events as f64 / secs
        )?;
        if let Some(mb) = self.peak_rss_mb {
            writeln!(f, "  peak RSS MB                    {mb:.1}")?;
        }
        if self.alerts.is_empty() {
            writeln!(f, "  alerts                         0")?;
        }
        for (k, v) in &self.alerts {
            writeln!(f, "  alerts  {k:<30} {v}")?;
        }
        for (k, v) in &self.signals {
            writeln!(f, "  signals {k:<30} {v}")?;
        }
        for (k, v) in &self.matched {
            writeln!(f, "  matched {k:<30} {v}")?;
        }
        Ok(())
    }
}

enum Item {
    File(PathBuf),
    Object(ObjectRef),
}

impl Item {
    fn name(&self) -> String {
        match self {
            Item::File(p) => p.display().to_string(),
            Item::Object(o) => format!("s3://{}/{}", o.bucket, o.key),
        }
    }
}

fn delta(before: &BTreeMap<String, u64>, after: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(&k).copied().unwrap_or(0);
            (d > 0).then_some((k, d))
        })
        .collect()
}

/// Replay files, directories and `s3://` prefixes through the full pipeline.
pub async fn replay(
    cfg: Config,
    sources: Vec<String>,
    token: CancellationToken,
) -> Result<ReplaySummary, AppError> {
    run_offline(cfg, sources, token, false).await
}

/// `baseline train`: the replay pipeline without sinks, writing the learnt
/// baselines and new-terms history to the state store.
pub async fn train(
    mut cfg: Config,
    sources: Vec<String>,
    token: CancellationToken,
) -> Result<ReplaySummary, AppError> {
    cfg.sinks.clear();
    run_offline(cfg, sources, token, true).await
}

async fn run_offline(
    cfg: Config,
    sources: Vec<String>,
    token: CancellationToken,
    train: bool,
) -> Result<ReplaySummary, AppError> {
    let started = Instant::now();
    let rules = Arc::new(rules::load(&cfg.rules)?);
    let rule_ids: Vec<String> = rules.rules.iter().map(|r| r.id().to_string()).collect();
    let sources: Vec<Source> = sources.iter().map(|s| Source::parse(s)).collect();
    let needs_aws = sources.iter().any(|s| matches!(s, Source::S3 { .. }))
        || cfg
            .sinks
            .iter()
            .any(|s| matches!(s, SinkConfig::Sns { .. }))
        || cfg.state.kind == StateKind::S3;
    let sdk = if needs_aws {
        Some(aws_sdk_config(&cfg.aws).await)
    } else {
        None
    };
    let limits = Limits::from(&cfg.s3);
    let fetcher = sdk.as_ref().map(|sdk| {
        Arc::new(S3Fetcher::new(
            s3_client(sdk, &cfg.aws),
            limits,
            cfg.s3.fetch_attempts,
        ))
    });
    let mut summary = ReplaySummary::default();
    let mut items = Vec::new();
    for s in &sources {
        match s {
            Source::Local(p) => {
                let files = local::list_files(p).map_err(|e| AppError::Source(e.to_string()))?;
                items.extend(files.into_iter().map(Item::File));
            }
            Source::S3 { bucket, prefix } => {
                let f = fetcher.as_ref().expect("AWS configured for S3 sources");
                for o in f.list(bucket, prefix).await.map_err(AppError::Source)? {
                    match skip_reason(&o) {
                        Some(_) => summary.objects_skipped += 1,
                        None => items.push(Item::Object(o)),
                    }
                }
            }
        }
    }
    // Names are made once, not in the comparator: a path's `display` costs
    // more than its comparison, and a sort makes ~n log n of them.
    let mut named: Vec<(String, Item)> = items.into_iter().map(|i| (i.name(), i)).collect();
    local::sort_for_replay(&mut named, |(name, _)| name);
    // Delivery slot per item; the watermark may not pass the oldest unread one.
    let slots: Vec<Option<i64>> = named
        .iter()
        .map(|(name, _)| local::cloudtrail_slot_ms(name))
        .collect();
    let m = metrics();
    let alerts_before = m.alerts.snapshot();
    let signals_before = m.signals.snapshot();
    let matched_before = m.rule_matches.snapshot();
    let (late0, dup0, noid0) = (
        m.events_late.get(),
        m.events_duplicate.get(),
        m.events_no_identity.get(),
    );
    let state = match open_state(&cfg, sdk.as_ref(), train) {
        // A read-only replay next to a running daemon still works, without
        // the daemon's baselines.
        Err(AppError::State(e @ crate::state::StoreError::InUse { .. })) if !train => {
            tracing::warn!(error = %e, "State store unavailable; replaying without persisted baselines.");
            None
        }
        other => other?,
    };
    let pipeline = Pipeline::start(&cfg, rules, false, sdk.as_ref(), state).await?;
    let progress = telemetry::progress::Progress::new(
        if train { "train" } else { "replay" },
        named.len() as u64,
        std::io::stderr().is_terminal(),
    );
    let router = pipeline.router.clone();
    let clock = pipeline.clock.clone();
    // The watermark may not pass an object not yet started: the ceiling is
    // the lowest delivery slot among them. Objects without a CloudTrail slot
    // in their name (ad-hoc exports) can be from any time: they hold it at
    // the bottom until read, so none of their events is late. A started
    // object holds the watermark itself until the shards have applied it.
    let mut unstarted_min = vec![i64::MAX; slots.len() + 1];
    for i in (0..slots.len()).rev() {
        unstarted_min[i] = unstarted_min[i + 1].min(slots[i].unwrap_or(i64::MIN));
    }
    clock.set_ceiling(unstarted_min[0]);
    let disorder_ms = cfg.pipeline.object_disorder_secs as i64 * 1000;
    {
        let results = futures::stream::iter(named.into_iter().enumerate())
            .take_until(token.cancelled())
            .map(|(i, (name, item))| {
                let hold = match slots[i] {
                    Some(slot) => clock.hold_following(slot, disorder_ms),
                    None => clock.hold(i64::MIN),
                };
                clock.set_ceiling(unstarted_min[i + 1]);
                // The object counts as done only once the shards have applied
                // its events (the ack resolves), so its hold never lets the
                // watermark pass events still queued for a shard.
                let (ack, applied) = crate::ingest::ack::Ack::new();
                let mut router = router.with_ack(ack).with_progress(hold.progress());
                let fetcher = fetcher.clone();
                // Decoding runs on its own task so objects are decoded on
                // every core, not all on the task driving this stream.
                let fut = async move {
                    let r = match &item {
                        Item::File(p) => local::process_file(p, limits, &mut router)
                            .await
                            .map_err(|e| e.to_string()),
                        // Boxed: the S3 path's state (the SDK's request
                        // futures) is 5.5 KB more than a local file's, and
                        // every task would otherwise be that large and be
                        // copied whole into its box (a local replay spent
                        // 0.2 % of its instructions on that copy).
                        Item::Object(o) => Box::pin(
                            fetcher
                                .as_ref()
                                .expect("AWS configured for S3 sources")
                                .process(o, &mut router),
                        )
                        .await
                        .map_err(|e| e.to_string()),
                    };
                    drop(router);
                    let _ = applied.await;
                    drop(hold);
                    r
                };
                // Boxed: the decoder's state is ~2.5 KB, and an unboxed task
                // is copied whole into its cell and out again with its result.
                let task = tokio::spawn(Box::pin(fut));
                async move {
                    let r = match task.await {
                        Ok(r) => r,
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(e) => Err(format!("decode task failed: {e}")),
                    };
                    (name, r)
                }
            })
            .buffered(cfg.s3.fetch_concurrency);
        let mut results = std::pin::pin!(results);
        while let Some((name, r)) = results.next().await {
            match r {
                Ok(stats) => {
                    record_stats(&stats);
                    summary.objects_ok += 1;
                    summary.bytes += stats.bytes;
                    summary.records += stats.records;
                    summary.events += stats.events;
                    for (k, v) in &stats.skipped {
                        *summary.skipped.entry(k.to_string()).or_default() += v;
                    }
                    if stats.skipped_total() > 0 {
                        tracing::warn!(object = %name, skipped = ?stats.skipped, "Records skipped.");
                    }
                    progress.object_done(stats.events);
                }
                Err(e) => {
                    summary.objects_failed += 1;
                    tracing::error!(object = %name, error = %e, "Object failed.");
                    progress.object_done(0);
                }
            }
        }
    }
    drop(router);
    pipeline
        .finish(true, Duration::from_secs(cfg.pipeline.shutdown_grace_secs))
        .await;
    progress.finish();
    summary.alerts = delta(&alerts_before, m.alerts.snapshot());
    summary.signals = delta(&signals_before, m.signals.snapshot());
    summary.matched = delta(&matched_before, m.rule_matches.snapshot());
    // Every enabled rule is listed, those that accepted nothing with 0.
    for r in rule_ids {
        summary.matched.entry(r).or_default();
    }
    summary.late = m.events_late.get() - late0;
    summary.duplicates = m.events_duplicate.get() - dup0;
    summary.no_identity = m.events_no_identity.get() - noid0;
    summary.elapsed = started.elapsed();
    summary.peak_rss_mb = telemetry::peak_rss_mb();
    Ok(summary)
}

/// One row of `baseline show`.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineRow {
    /// Rule id.
    pub rule: String,
    /// Identity.
    pub identity: String,
    /// Group: hour bucket start and `d`/`w` (weekday/weekend).
    pub group: String,
    /// Past hourly samples.
    pub samples: usize,
    /// Whether the group is judged (samples >= min_samples).
    pub judged: bool,
    /// Threshold (rounded to 4 decimals) and the density it came from.
    pub threshold: Option<(f64, crate::rules::density::Dist)>,
}

/// Every baseline in the state store, for `baseline show`.
pub async fn baseline_report(cfg: &Config) -> Result<Vec<BaselineRow>, AppError> {
    use crate::rules::density::{Fit, round4};
    use crate::rules::spec::RuleKind;
    use crate::state::StateStore;
    let rules = rules::load(&cfg.rules)?;
    let sdk = if cfg.state.kind == StateKind::S3 {
        Some(aws_sdk_config(&cfg.aws).await)
    } else {
        None
    };
    // A store in use is an error the operator should see.
    let Some(state) = open_state(cfg, sdk.as_ref(), false)? else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for r in rules
        .rules
        .iter()
        .filter(|r| r.spec.kind == RuleKind::Baseline)
    {
        let spec = r.spec.baseline.as_ref().expect("validated");
        for (identity, v) in state.store.load(&format!("baseline/{}", r.id())).await? {
            let doc: serde_json::Value = serde_json::from_slice(&v).unwrap_or_default();
            for (group, g) in doc["groups"].as_object().into_iter().flatten() {
                let xs: Vec<f64> = g["samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s[1].as_f64())
                    .collect();
                rows.push(BaselineRow {
                    rule: r.id().to_string(),
                    identity: identity.clone(),
                    group: group.clone(),
                    samples: xs.len(),
                    judged: xs.len() >= spec.min_samples,
                    threshold: Fit::fit_by(spec.dist, &xs)
                        .map(|f| (round4(f.upper(spec.tail)), f.dist())),
                });
            }
        }
    }
    Ok(rows)
}
