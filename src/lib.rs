//! reconwatch: detects cloud reconnaissance in AWS CloudTrail within seconds
//! of delivery.
//!
//! # Layout (by pipeline stage)
//! - [`config`]: the configuration tree, env overrides, validation.
//! - [`ingest`]: SQS notifications ([`ingest::sqs`], [`ingest::notification`]),
//!   S3 objects ([`ingest::s3`]), local files and S3 prefixes for replay.
//! - [`decode`]: streaming gunzip + record splitting + parsing into [`decode::Event`].
//! - [`shard`]: routes events by identity to the window actors.
//! - [`window`]: per-shard actors owning all rule state ([`window::engine`]).
//! - [`rules`]: declarative rule specs, compilation, alert documents.
//! - [`sink`]: stdout, file, webhook and SNS delivery with retries and an outbox.
//! - [`telemetry`]: logs, metrics, health endpoints, progress.
//! - [`app`]: wiring for `run` and `replay`.
// Three modules allow it, each saying why in its header: `decode::inflate`
// (the call into libdeflate), `decode::sym` (the interned strings' own
// reference count) and `decode::simd` (SSE2 intrinsics).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod config;
pub mod decode;
pub mod ingest;
pub mod rules;
pub mod shard;
pub mod sink;
pub mod state;
pub mod telemetry;
pub mod window;
