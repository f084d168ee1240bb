//! Decode stage: a (possibly gzip-compressed) CloudTrail object as an async
//! byte stream → batches of [`Event`]s, with bounded memory.
//!
//! Compression is detected from the gzip magic bytes, not trusted from the key
//! name. An object up to [`Limits::whole_object_max_bytes`] is read whole and
//! inflated in one call ([`inflate`]); larger ones, and any that is not one
//! sound gzip member, are streamed (multi-member gzip is supported). Either
//! way the decompressed bytes are split and parsed in the same chunks. A
//! malformed record is skipped and counted; a structural problem
//! (truncation, not JSON, caps exceeded) ends the object with an error after
//! every record before it was delivered.

pub mod event;
pub mod inflate;
pub mod record;
mod simd;
pub mod splitter;
pub mod sym;
pub mod time;

use std::collections::BTreeMap;
use std::future::Future;

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

pub use event::{Event, EventRef, Field, IdentitySource, Sym};
pub use inflate::WholeLimits;
use record::{Interner, parse_record};
use splitter::{Piece, RecordSplitter, SplitError};

use crate::telemetry::metrics;

/// Limits applied to each object (gzip-bomb and abuse guards).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Cap on decompressed bytes.
    pub max_decompressed_bytes: u64,
    /// Cap on records.
    pub max_records: u64,
    /// Cap on one record's bytes.
    pub max_record_bytes: usize,
    /// Largest compressed object inflated whole (see [`inflate`]); 0 streams
    /// every object.
    pub whole_object_max_bytes: usize,
}

impl From<&crate::config::S3Config> for Limits {
    fn from(c: &crate::config::S3Config) -> Self {
        Self {
            max_decompressed_bytes: c.max_decompressed_bytes,
            max_records: c.max_records_per_object,
            max_record_bytes: c.max_record_bytes,
            whole_object_max_bytes: c.whole_object_max_bytes,
        }
    }
}

/// Why an object could not be decoded to its end.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Reading or decompressing failed (truncated gzip, corrupt deflate, I/O).
    #[error("read/decompress failed after {bytes} decompressed bytes: {source}")]
    Read {
        /// Decompressed bytes read before the failure.
        bytes: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The name says gzip but the bytes do not.
    #[error("object name ends in .gz but its content is not gzip (first bytes {0:02x?})")]
    NotGzip(Vec<u8>),
    /// The JSON structure is broken.
    #[error(transparent)]
    Structure(#[from] SplitError),
    /// More decompressed bytes than allowed.
    #[error("decompressed size exceeds the cap of {0} bytes (possible gzip bomb)")]
    TooLarge(u64),
    /// More records than allowed.
    #[error("object has more than the cap of {0} records")]
    TooManyRecords(u64),
    /// The downstream stage closed (shutdown).
    #[error("pipeline closed while decoding")]
    Closed,
}

impl DecodeError {
    /// Whether retrying the same object later can succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, DecodeError::Read { .. } | DecodeError::Closed)
    }
}

/// What happened to an object's records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ObjectStats {
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Record slots found (good and bad).
    pub records: u64,
    /// Records turned into events and delivered.
    pub events: u64,
    /// Skipped records by reason.
    pub skipped: BTreeMap<&'static str, u64>,
}

impl ObjectStats {
    /// Total skipped records.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Where decoded events go. Implemented by the shard router.
pub trait EventOut {
    /// Deliver a batch, taking every event out of `events`: the caller
    /// refills the same buffer, so a decoder allocates it once per object,
    /// not once per batch. `Err` means the pipeline is closing.
    fn push(&mut self, events: &mut Vec<Event>) -> impl Future<Output = Result<(), ()>> + Send;
}

/// Events a decoder's batch has room for before it grows.
const BATCH_CAPACITY: usize = 256;

/// Read size. Records that straddle two reads take the slower byte-level path,
/// so reads are large enough that few do (~1 in 170 at CloudTrail's ~1.5 KB).
const CHUNK: usize = 256 * 1024;

/// Buffer of the compressed (or plain) input in front of the decoder: the
/// decompressed side is what [`CHUNK`] sizes, so this can be smaller.
const INPUT_CHUNK: usize = 64 * 1024;

/// Read buffers of finished objects, reused: a CloudTrail object is often
/// smaller than one buffer, and a fresh zeroed 256 KiB per object cost as
/// much as a third of decoding a typical one.
static READ_BUFFERS: std::sync::Mutex<Vec<Box<[u8]>>> = std::sync::Mutex::new(Vec::new());

/// Buffers kept for reuse (more objects than this decoding at once allocate).
const KEPT_BUFFERS: usize = 64;

/// A [`CHUNK`]-sized read buffer, returned to [`READ_BUFFERS`] when dropped.
struct ReadBuffer(Option<Box<[u8]>>);

impl ReadBuffer {
    fn take() -> Self {
        let reused = READ_BUFFERS.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Self(Some(
            reused.unwrap_or_else(|| vec![0u8; CHUNK].into_boxed_slice()),
        ))
    }
}

impl std::ops::Deref for ReadBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for ReadBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().expect("present until dropped")
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        let mut kept = READ_BUFFERS.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() < KEPT_BUFFERS
            && let Some(b) = self.0.take()
        {
            kept.push(b);
        }
    }
}

thread_local! {
    /// One interner cache per worker thread, shared by the objects decoded
    /// on it (in front of the process-wide table, [`sym`]): a CloudTrail
    /// object holds a few hundred records, too few for a per-object cache
    /// to pay off. Only borrowed inside the synchronous splitter callback,
    /// never across an await.
    static INTERNER: std::cell::RefCell<Interner> = std::cell::RefCell::new(Interner::default());
}

/// Decode an object read from `reader`. `name` (key or path) is used only to
/// refuse `.gz` names whose content is not gzip and for error messages.
pub async fn decode_object<R, O>(
    reader: R,
    name: &str,
    limits: Limits,
    out: &mut O,
) -> Result<ObjectStats, DecodeError>
where
    R: AsyncRead + Unpin + Send,
    O: EventOut + Send,
{
    let mut buffered = BufReader::with_capacity(INPUT_CHUNK, reader);
    let head = buffered
        .fill_buf()
        .await
        .map_err(|source| DecodeError::Read { bytes: 0, source })?;
    if !gzip_or_refuse(head, name)? {
        return decode_stream(buffered, limits, out).await;
    }
    let whole = whole_limits(&limits);
    if whole.max_compressed_bytes == 0 {
        return decode_stream(gunzip_stream(buffered), limits, out).await;
    }
    let mut gz = Vec::new();
    (&mut buffered)
        .take(whole.max_compressed_bytes as u64 + 1)
        .read_to_end(&mut gz)
        .await
        .map_err(|source| DecodeError::Read { bytes: 0, source })?;
    if gz.len() > whole.max_compressed_bytes {
        // Too large to hold: stream it, the bytes already read first.
        let rest = std::io::Cursor::new(gz).chain(buffered);
        let input = BufReader::with_capacity(INPUT_CHUNK, rest);
        return decode_stream(gunzip_stream(input), limits, out).await;
    }
    decode_gzip_held(gz, whole, limits, out).await
}

/// [`decode_object`] for an object already read into memory (a local file
/// no larger than [`Limits::whole_object_max_bytes`]): the same outcome,
/// without copying the bytes through a reader.
pub async fn decode_held<O: EventOut + Send>(
    bytes: Vec<u8>,
    name: &str,
    limits: Limits,
    out: &mut O,
) -> Result<ObjectStats, DecodeError> {
    if gzip_or_refuse(&bytes, name)? {
        return decode_gzip_held(bytes, whole_limits(&limits), limits, out).await;
    }
    decode_bytes(&bytes, limits, out).await
}

/// Whether `head` (an object's first bytes) starts with the gzip magic.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Whether the object starting with `head` is gzip; a `.gz` name on
/// anything else (but an empty object) is refused.
fn gzip_or_refuse(head: &[u8], name: &str) -> Result<bool, DecodeError> {
    let gzip = is_gzip(head);
    if !gzip && name.ends_with(".gz") && !head.is_empty() {
        return Err(DecodeError::NotGzip(head.iter().take(4).copied().collect()));
    }
    Ok(gzip)
}

fn whole_limits(limits: &Limits) -> WholeLimits {
    WholeLimits {
        max_compressed_bytes: limits.whole_object_max_bytes,
        max_decompressed_bytes: WholeLimits::MAX_DECOMPRESSED_BYTES
            .min(usize::try_from(limits.max_decompressed_bytes).unwrap_or(usize::MAX)),
    }
}

/// A whole gzip object: inflated in one call when it qualifies, else
/// streamed from memory.
async fn decode_gzip_held<O: EventOut + Send>(
    gz: Vec<u8>,
    whole: WholeLimits,
    limits: Limits,
    out: &mut O,
) -> Result<ObjectStats, DecodeError> {
    match inflate::gunzip_whole(&gz, whole) {
        Some(plain) => {
            drop(gz);
            decode_bytes(&plain, limits, out).await
        }
        // Not one sound member that fits: the stream decodes what it can,
        // delivers it, and names the problem.
        None => {
            let input = BufReader::with_capacity(INPUT_CHUNK, std::io::Cursor::new(gz));
            decode_stream(gunzip_stream(input), limits, out).await
        }
    }
}

fn gunzip_stream<R: AsyncBufRead>(input: R) -> GzipDecoder<R> {
    let mut dec = GzipDecoder::new(input);
    dec.multiple_members(true);
    dec
}

/// Splitting and parsing of one object's decompressed bytes, fed in chunks.
struct Records {
    splitter: RecordSplitter,
    stats: ObjectStats,
    batch: Vec<Event>,
    limits: Limits,
}

impl Records {
    fn new(limits: Limits) -> Self {
        Self {
            splitter: RecordSplitter::new(limits.max_record_bytes),
            stats: ObjectStats::default(),
            // A chunk holds ~170 CloudTrail records; the buffer is reused.
            batch: Vec::with_capacity(BATCH_CAPACITY),
            limits,
        }
    }

    /// Parse the records `chunk` completes and deliver them.
    async fn feed<O: EventOut + Send>(
        &mut self,
        chunk: &[u8],
        out: &mut O,
    ) -> Result<(), DecodeError> {
        let Self {
            splitter,
            stats,
            batch,
            limits,
        } = self;
        stats.bytes += chunk.len() as u64;
        if stats.bytes > limits.max_decompressed_bytes {
            flush(batch, out).await?;
            return Err(DecodeError::TooLarge(limits.max_decompressed_bytes));
        }
        let mut too_many = false;
        let res = INTERNER.with_borrow_mut(|interner| {
            splitter.feed(chunk, &mut |piece| {
                stats.records += 1;
                if stats.records > limits.max_records {
                    too_many = true;
                    return;
                }
                let parsed = match piece {
                    Piece::Scanned(rec) => rec.into_event(interner),
                    Piece::Record(bytes) => parse_record(bytes, interner),
                    Piece::Oversized => {
                        *stats.skipped.entry("oversized").or_default() += 1;
                        return;
                    }
                    Piece::NonObject => {
                        *stats.skipped.entry("not_an_object").or_default() += 1;
                        return;
                    }
                };
                match parsed {
                    Ok(ev) => batch.push(ev),
                    Err(e) => {
                        tracing::debug!(error = %e, "Skipping record.");
                        *stats.skipped.entry(e.reason()).or_default() += 1;
                    }
                }
            })
        });
        stats.events += batch.len() as u64;
        flush(batch, out).await?;
        if too_many {
            return Err(DecodeError::TooManyRecords(limits.max_records));
        }
        Ok(res?)
    }

    /// Deliver what is pending after a read error.
    async fn fail<O: EventOut + Send>(
        &mut self,
        source: std::io::Error,
        out: &mut O,
    ) -> DecodeError {
        if let Err(e) = flush(&mut self.batch, out).await {
            return e;
        }
        DecodeError::Read {
            bytes: self.stats.bytes,
            source,
        }
    }

    fn finish(self) -> Result<ObjectStats, DecodeError> {
        self.splitter.finish()?;
        Ok(self.stats)
    }
}

/// Decode decompressed bytes read from `reader`, [`CHUNK`] at a time.
async fn decode_stream<R, O>(
    mut reader: R,
    limits: Limits,
    out: &mut O,
) -> Result<ObjectStats, DecodeError>
where
    R: AsyncRead + Unpin + Send,
    O: EventOut + Send,
{
    let mut records = Records::new(limits);
    let mut buf = ReadBuffer::take();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(source) => return Err(records.fail(source, out).await),
        };
        records.feed(&buf[..n], out).await?;
    }
    records.finish()
}

/// Decode an object's decompressed bytes held whole, in the same
/// [`CHUNK`]-sized steps as a stream (batches and caps behave alike).
async fn decode_bytes<O: EventOut + Send>(
    bytes: &[u8],
    limits: Limits,
    out: &mut O,
) -> Result<ObjectStats, DecodeError> {
    let mut records = Records::new(limits);
    for chunk in bytes.chunks(CHUNK) {
        records.feed(chunk, out).await?;
    }
    records.finish()
}

async fn flush<O: EventOut + Send>(batch: &mut Vec<Event>, out: &mut O) -> Result<(), DecodeError> {
    if batch.is_empty() {
        return Ok(());
    }
    let r = out.push(batch).await.map_err(|_| DecodeError::Closed);
    batch.clear();
    r
}

/// Record an object's outcome in the metrics.
pub fn record_stats(stats: &ObjectStats) {
    let m = metrics();
    m.bytes_decompressed.add(stats.bytes);
    m.records_parsed.add(stats.events);
    for (reason, n) in &stats.skipped {
        m.records_skipped.add(reason, *n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[derive(Default)]
    struct Collect(Vec<Event>);
    impl EventOut for Collect {
        async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
            self.0.append(events);
            Ok(())
        }
    }

    fn limits() -> Limits {
        Limits {
            whole_object_max_bytes: 4 << 20,
            max_decompressed_bytes: 1 << 30,
            max_records: 1_000_000,
            max_record_bytes: 1 << 20,
        }
    }

    fn rec(i: usize) -> String {
        format!(
            r#"{{"eventTime":"2023-07-10T12:00:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","userIdentity":{{"arn":"arn:aws:iam::1:user/u"}},"eventID":"00000000-0000-0000-0000-{:012}"}}"#,
            i % 60,
            i
        )
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    async fn run(
        bytes: Vec<u8>,
        name: &str,
        l: Limits,
    ) -> (Vec<Event>, Result<ObjectStats, DecodeError>) {
        let mut c = Collect::default();
        let r = decode_object(std::io::Cursor::new(bytes), name, l, &mut c).await;
        (c.0, r)
    }

    #[tokio::test]
    async fn plain_gzip_and_multimember() {
        let body = format!(r#"{{"Records":[{},{}]}}"#, rec(1), rec(2));
        let (ev, r) = run(body.clone().into_bytes(), "a.json", limits()).await;
        assert_eq!(ev.len(), 2);
        assert_eq!(r.unwrap().events, 2);
        let (ev, _) = run(gz(body.as_bytes()), "a.json.gz", limits()).await;
        assert_eq!(ev.len(), 2);
        // Two gzip members, split in the middle of a record.
        let (a, b) = body.as_bytes().split_at(body.len() / 2);
        let mut two = gz(a);
        two.extend(gz(b));
        let (ev, r) = run(two, "a.json.gz", limits()).await;
        assert_eq!(ev.len(), 2);
        assert!(r.is_ok());
    }

    async fn run_with(
        bytes: Vec<u8>,
        whole_object_max_bytes: usize,
    ) -> (Vec<Event>, Result<ObjectStats, DecodeError>) {
        let l = Limits {
            whole_object_max_bytes,
            ..limits()
        };
        run(bytes, "a.json.gz", l).await
    }

    #[tokio::test]
    async fn whole_object_and_stream_decode_alike() {
        // Large enough to span several chunks, with a bad record inside.
        let mut recs: Vec<String> = (0..3000).map(rec).collect();
        recs[1234] = r#"{"eventTime":"x"}"#.into();
        let body = format!(r#"{{"Records":[{}]}}"#, recs.join(","));
        let z = gz(body.as_bytes());
        let (streamed, s) = run_with(z.clone(), 0).await;
        let s = s.unwrap();
        assert!(
            inflate::gunzip_whole(&z, WholeLimits::DEFAULT).is_some(),
            "the object qualifies for the whole path"
        );
        let (whole, w) = run_with(z.clone(), 4 << 20).await;
        assert_eq!(w.unwrap(), s);
        assert_eq!(whole, streamed);
        assert_eq!(s.events, 2999);
        assert_eq!(s.bytes, body.len() as u64);
        // Over the compressed cap: streamed, starting with the bytes read
        // to find that out.
        let (chained, c) = run_with(z.clone(), z.len() / 3).await;
        assert_eq!(c.unwrap(), s);
        assert_eq!(chained, streamed);
    }

    #[tokio::test]
    async fn an_object_held_in_memory_decodes_like_one_read() {
        let recs: Vec<String> = (0..500).map(rec).collect();
        let body = format!(r#"{{"Records":[{}]}}"#, recs.join(","));
        let (a, b) = body.as_bytes().split_at(body.len() / 2);
        let mut two = gz(a);
        two.extend(gz(b));
        let z = gz(body.as_bytes());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (z.clone(), "a.json.gz"),
            (z[..z.len() / 2].to_vec(), "a.json.gz"),
            (two, "a.json.gz"),
            (body.clone().into_bytes(), "a.json"),
            (body.into_bytes(), "a.json.gz"),
            (Vec::new(), "a.json.gz"),
        ];
        for (bytes, name) in cases {
            let (read, r) = run(bytes.clone(), name, limits()).await;
            let mut c = Collect::default();
            let h = decode_held(bytes, name, limits(), &mut c).await;
            assert_eq!(c.0, read, "{name}");
            match (r, h) {
                (Ok(r), Ok(h)) => assert_eq!(r, h),
                (Err(r), Err(h)) => assert_eq!(r.to_string(), h.to_string()),
                (r, h) => panic!("{name}: read {r:?}, held {h:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bad_records_are_skipped_rest_kept() {
        let body = format!(
            r#"{{"Records":[{},{{"eventTime":"x"}},{{"eventName":7}},{}]}}"#,
            rec(1),
            rec(2)
        );
        let (ev, r) = run(body.into_bytes(), "a.json", limits()).await;
        let s = r.unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(s.records, 4);
        assert_eq!(s.skipped.get("bad_event_time"), Some(&1));
        assert_eq!(s.skipped.get("invalid_json"), Some(&1));
    }

    #[tokio::test]
    async fn truncated_gzip_delivers_prefix_then_errors() {
        let recs: Vec<String> = (0..2000).map(rec).collect();
        let body = format!(r#"{{"Records":[{}]}}"#, recs.join(","));
        let z = gz(body.as_bytes());
        let (ev, r) = run(z[..z.len() / 2].to_vec(), "a.json.gz", limits()).await;
        let err = r.unwrap_err();
        assert!(matches!(err, DecodeError::Read { .. }), "{err}");
        assert!(err.retryable());
        assert!(!ev.is_empty() && ev.len() < 2000, "{}", ev.len());
    }

    #[tokio::test]
    async fn not_gzip_with_gz_name() {
        let (_, r) = run(b"{\"Records\":[]}".to_vec(), "x.json.gz", limits()).await;
        assert!(matches!(r, Err(DecodeError::NotGzip(_))));
    }

    #[tokio::test]
    async fn gzip_bomb_is_capped() {
        let zeros = vec![b' '; 10 << 20];
        let z = gz(&zeros);
        assert!(z.len() < 100_000);
        let l = Limits {
            max_decompressed_bytes: 1 << 20,
            ..limits()
        };
        let (_, r) = run(z, "bomb.json.gz", l).await;
        assert!(matches!(r, Err(DecodeError::TooLarge(_))));
    }

    #[tokio::test]
    async fn record_cap() {
        let recs: Vec<String> = (0..10).map(rec).collect();
        let body = format!(r#"{{"Records":[{}]}}"#, recs.join(","));
        let l = Limits {
            max_records: 5,
            ..limits()
        };
        let (ev, r) = run(body.into_bytes(), "a.json", l).await;
        assert!(matches!(r, Err(DecodeError::TooManyRecords(5))));
        assert!(ev.len() <= 5);
    }

    #[tokio::test]
    async fn empty_records_and_empty_body() {
        let (ev, r) = run(b"{\"Records\":[]}".to_vec(), "a.json", limits()).await;
        assert!(ev.is_empty());
        assert_eq!(r.unwrap().records, 0);
        let (ev, r) = run(Vec::new(), "a.json.gz", limits()).await;
        assert!(ev.is_empty() && r.is_ok());
    }
}
