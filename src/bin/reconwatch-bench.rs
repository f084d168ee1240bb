//! `reconwatch-bench`: the "physical limit" baselines for `bench/run.sh`.
//!
//! * `gunzip <PATH>`: decompress every file `replay` would read the way the
//!   product does, and discard the bytes: whole, with libdeflate
//!   (`decode::inflate::gunzip_whole`), when the object qualifies (every
//!   object of a typical trail), else streamed (async-compression
//!   `GzipDecoder`, multi-member, 64 KiB buffers).
//! * `parse <PATH>`: the product's whole decode path
//!   (`ingest::local::process_file` → `decode::decode_object`: gunzip, record
//!   splitting, parsing into `Event`) into a sink that only counts.
//!
//! * `engine <PATH>`: decode every file into memory first (not timed), then
//!   time only the rule engine (`window::engine::Engine`, every default rule,
//!   default pipeline settings) over the events, one object's batch at a time
//!   as one shard would apply them. This is the share of replay that is not
//!   decoding, measured without decoding's noise.
//!
//! All run on a single-threaded (current_thread) tokio runtime, read the
//! files one after the other, and print one JSON line:
//! `{"mode","files","compressed_bytes","decompressed_bytes","events","seconds",
//! "events_per_sec","mb_per_sec",...,"peak_rss_mb"}` (MB = 10^6 bytes of
//! decompressed data; peak RSS = VmHWM, MiB).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use async_compression::tokio::bufread::GzipDecoder;
use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use reconwatch::config::{RulesConfig, S3Config};
use reconwatch::decode::inflate::gunzip_whole;
use reconwatch::decode::{Event, EventOut, Limits, WholeLimits, is_gzip};
use reconwatch::ingest::local;
use reconwatch::rules::alert::Detection;
use reconwatch::window::engine::{Engine, EngineConfig};

/// Physical-limit baselines for reconwatch's benchmarks.
#[derive(Parser)]
#[command(name = "reconwatch-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Decompress every file under PATH and discard the bytes.
    Gunzip {
        /// A file or a directory (recursive; the files `replay` would read).
        path: PathBuf,
        /// Event count of the same files (from a `parse` run), to report
        /// events/s; gunzip alone cannot count records.
        #[arg(long)]
        events: Option<u64>,
    },
    /// Decode every file under PATH into events (gunzip + split + parse).
    Parse {
        /// A file or a directory (recursive; the files `replay` would read).
        path: PathBuf,
    },
    /// Decode every file under PATH into memory, then time the rule engine
    /// alone over the events.
    Engine {
        /// A file or a directory (recursive; the files `replay` would read).
        path: PathBuf,
        /// Timed passes over the decoded events (each with a fresh engine);
        /// the median is reported.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
}

#[derive(Default)]
struct Totals {
    files: u64,
    compressed: u64,
    decompressed: u64,
    events: u64,
    skipped: u64,
}

/// Counts events, keeps none.
#[derive(Default)]
struct Count(u64);

impl EventOut for Count {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        self.0 += events.len() as u64;
        events.clear();
        Ok(())
    }
}

/// Keeps every event of one object, as the shard would receive them.
#[derive(Default)]
struct Keep(Vec<Event>);

impl EventOut for Keep {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        self.0.append(events);
        Ok(())
    }
}

/// Apply `objects` (delivery slot, one batch each, in replay order) to one
/// engine with every default rule; returns (seconds, detections).
///
/// Before each batch the watermark moves as replay's event clock moves it:
/// to the newest event applied, held back to the object's delivery slot.
fn time_engine(objects: Vec<(Option<i64>, Vec<Event>)>) -> anyhow::Result<(f64, usize)> {
    let rules = Arc::new(reconwatch::rules::load(&RulesConfig::default())?);
    let mut engine = Engine::new(rules, EngineConfig::default());
    let mut out: Vec<Detection> = Vec::new();
    let mut detections = 0usize;
    let mut newest = i64::MIN;
    let started = Instant::now();
    for (slot, batch) in objects {
        let hold = slot.unwrap_or(i64::MIN);
        let batch_newest = batch.iter().map(|e| e.time_ms).fold(newest, i64::max);
        engine.apply_batch(newest.min(hold), batch, &mut out);
        newest = batch_newest;
        detections += out.len();
        out.clear();
        engine.flush_metrics();
    }
    engine.close_all(&mut out);
    detections += out.len();
    Ok((started.elapsed().as_secs_f64(), detections))
}

const CHUNK: usize = 64 * 1024;

async fn drain<R: AsyncRead + Unpin>(mut r: R, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut n = 0u64;
    loop {
        let k = r.read(buf).await?;
        if k == 0 {
            return Ok(n);
        }
        n += k as u64;
    }
}

async fn gunzip_file(path: &Path, buf: &mut [u8]) -> anyhow::Result<u64> {
    let whole = WholeLimits::DEFAULT;
    let mut f = tokio::fs::File::open(path).await?;
    if f.metadata().await?.len() > whole.max_compressed_bytes as u64 {
        return gunzip_stream(f, buf).await;
    }
    let mut gz = Vec::new();
    f.read_to_end(&mut gz).await?;
    match gunzip_whole(&gz, whole) {
        Some(plain) => Ok(plain.len() as u64),
        None => gunzip_stream(std::io::Cursor::new(gz), buf).await,
    }
}

/// Streamed decompression (or plain bytes), as replay does for objects
/// that are not inflated whole.
async fn gunzip_stream<R: AsyncRead + Unpin>(r: R, buf: &mut [u8]) -> anyhow::Result<u64> {
    let mut reader = BufReader::with_capacity(CHUNK, r);
    let head = reader.fill_buf().await?;
    Ok(if is_gzip(head) {
        let mut dec = GzipDecoder::new(reader);
        dec.multiple_members(true);
        drain(dec, buf).await?
    } else {
        drain(reader, buf).await?
    })
}

/// Decode file `f` into `out` the way replay does; add its bytes and skipped
/// records to `t` (events are counted by the caller's sink).
async fn decode_file<O: EventOut + Send>(
    f: &Path,
    limits: Limits,
    out: &mut O,
    t: &mut Totals,
) -> anyhow::Result<()> {
    let stats = local::process_file(f, limits, out)
        .await
        .with_context(|| format!("{}", f.display()))?;
    t.decompressed += stats.bytes;
    t.skipped += stats.skipped_total();
    Ok(())
}

async fn run(cmd: Cmd) -> anyhow::Result<serde_json::Value> {
    let (mode, path, known_events) = match &cmd {
        Cmd::Gunzip { path, events } => ("gunzip", path, *events),
        Cmd::Parse { path } => ("parse", path, None),
        Cmd::Engine { path, .. } => ("engine", path, None),
    };
    let mut files =
        local::list_files(path).with_context(|| format!("listing {}", path.display()))?;
    let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Cmd::Engine { .. } = &cmd {
        let mut named: Vec<(String, PathBuf)> = files
            .into_iter()
            .map(|f| (name(&f).unwrap_or_default(), f))
            .collect();
        local::sort_for_replay(&mut named, |(n, _)| n);
        files = named.into_iter().map(|(_, f)| f).collect();
    }
    let limits = Limits::from(&S3Config::default());
    let mut t = Totals::default();
    let mut buf = vec![0u8; CHUNK];
    let mut objects: Vec<(Option<i64>, Vec<Event>)> = Vec::new();
    let started = Instant::now();
    for f in &files {
        t.files += 1;
        t.compressed += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        match &cmd {
            Cmd::Gunzip { .. } => {
                t.decompressed += gunzip_file(f, &mut buf)
                    .await
                    .with_context(|| format!("{}", f.display()))?;
            }
            Cmd::Parse { .. } => {
                let mut count = Count::default();
                decode_file(f, limits, &mut count, &mut t).await?;
                t.events += count.0;
            }
            Cmd::Engine { .. } => {
                let mut keep = Keep::default();
                decode_file(f, limits, &mut keep, &mut t).await?;
                t.events += keep.0.len() as u64;
                let slot = name(f).and_then(|n| local::cloudtrail_slot_ms(&n));
                objects.push((slot, keep.0));
            }
        }
    }
    let mut secs = started.elapsed().as_secs_f64();
    let mut detections = None;
    let mut all_seconds = Vec::new();
    if let Cmd::Engine { repeat, .. } = &cmd {
        for _ in 0..(*repeat).max(1) {
            // Each pass consumes its own copy (made before its timing
            // starts), as a shard consumes the batches it is sent.
            let (s, d) = time_engine(objects.clone())?;
            all_seconds.push(round3(s));
            detections = Some(d);
        }
        let mut sorted = all_seconds.clone();
        sorted.sort_by(f64::total_cmp);
        secs = sorted[sorted.len() / 2];
    }
    let secs = secs.max(1e-9);
    let events = match &cmd {
        Cmd::Gunzip { .. } => known_events,
        Cmd::Parse { .. } | Cmd::Engine { .. } => Some(t.events),
    };
    Ok(serde_json::json!({
        "mode": mode,
        "files": t.files,
        "compressed_bytes": t.compressed,
        "decompressed_bytes": t.decompressed,
        "events": events,
        "records_skipped": t.skipped,
        "seconds": round3(secs),
        "events_per_sec": events.map(|e| (e as f64 / secs).round()),
        // Bytes per second mean nothing for the engine, which reads events.
        "mb_per_sec": (mode != "engine").then(|| round3(t.decompressed as f64 / 1e6 / secs)),
        "compressed_mb_per_sec": (mode != "engine").then(|| round3(t.compressed as f64 / 1e6 / secs)),
        "threads": "tokio current_thread",
        "detections": detections,
        "all_seconds": all_seconds,
        "peak_rss_mb": reconwatch::telemetry::peak_rss_mb().map(round3),
    }))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("reconwatch-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.cmd)) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("reconwatch-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
