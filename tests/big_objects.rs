//! Huge inputs through `reconwatch replay`: a 200 MB (decompressed) object
//! is streamed with memory flat against a 2 MB one, a CloudTrail object
//! spanning a day keeps only its recent past in rule state, and an
//! object with one million records is read completely. Peak RSS comes from
//! the replay summary (VmHWM); no timing is asserted.

use std::io::Write;
use std::path::Path;
use std::process::Command;

fn record(i: u64, pad: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{}","accountId":"111122223333"}},"eventTime":"2026-11-20T10:{:02}:{:02}Z","eventSource":"s3.amazonaws.com","eventName":"PutObject","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{}","userAgent":"Boto3/1.34","requestParameters":{{"pad":"{pad}"}},"eventID":"00000000-0000-4000-8000-{:012x}","recipientAccountId":"111122223333"}}"#,
        i % 97,
        (i / 60) % 60,
        i % 60,
        i % 250,
        i
    )
}

/// Write a gzip `{"Records":[...]}` object of `n` records, streaming.
fn write_object(path: &Path, n: u64, pad_bytes: usize) {
    let f = std::fs::File::create(path).unwrap();
    let mut z =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    let pad = "x".repeat(pad_bytes);
    z.write_all(b"{\"Records\":[").unwrap();
    for i in 0..n {
        if i > 0 {
            z.write_all(b",").unwrap();
        }
        z.write_all(record(i, &pad).as_bytes()).unwrap();
    }
    z.write_all(b"]}").unwrap();
    z.finish().unwrap().flush().unwrap();
}

fn replay(dir: &Path) -> (String, f64) {
    let out = Command::new(env!("CARGO_BIN_EXE_reconwatch"))
        .args(["replay", dir.to_str().unwrap()])
        .env("RECONWATCH__PIPELINE__STATE_DIR", dir.join("state"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let rss = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("peak RSS MB"))
        .expect("peak RSS in summary")
        .trim()
        .parse()
        .unwrap();
    (err, rss)
}

#[test]
fn a_200_mb_object_is_streamed_with_flat_memory() {
    let small = tempfile::tempdir().unwrap();
    write_object(&small.path().join("small.json.gz"), 2_000, 1_000); // ~2 MB
    let big = tempfile::tempdir().unwrap();
    write_object(&big.path().join("big.json.gz"), 200_000, 1_000); // ~200 MB
    let (e_small, rss_small) = replay(small.path());
    let (e_big, rss_big) = replay(big.path());
    assert!(
        e_small.contains("events                         2000"),
        "{e_small}"
    );
    assert!(
        e_big.contains("events                         200000"),
        "{e_big}"
    );
    assert!(
        e_big.contains("decompressed MB                2"),
        "{e_big}"
    );
    assert!(
        rss_big < rss_small + 50.0,
        "peak RSS grew with object size: {rss_small:.1} MB for 2 MB, {rss_big:.1} MB for 200 MB"
    );
}

#[test]
fn an_object_with_one_million_records_is_read_completely() {
    let d = tempfile::tempdir().unwrap();
    write_object(&d.path().join("million.json.gz"), 1_000_000, 0);
    let (err, rss) = replay(d.path());
    assert!(
        err.contains("events                         1000000"),
        "{err}"
    );
    assert!(
        err.contains("objects ok / failed / skipped  1 / 0 / 0"),
        "{err}"
    );
    // Bounded by the eventID dedup set, not by the object: well under 1 GB.
    assert!(rss < 400.0, "peak RSS {rss:.1} MB");
}

/// A discovery call by one of 400 CLI users, at `t_ms` (every record enters
/// the sliding rules' buffers and the eventID dedup set).
fn discovery_record(i: u64, t_ms: i64) -> String {
    let secs = t_ms / 1000;
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/u{}","accountId":"111122223333"}},"eventTime":"2026-11-20T{:02}:{:02}:{:02}Z","eventSource":"ec2.amazonaws.com","eventName":"{}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.{}","userAgent":"aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/ec2","eventID":"00000000-0000-4000-9000-{:012x}","recipientAccountId":"111122223333"}}"#,
        i % 400,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        [
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeVpcs",
            "DescribeSubnets"
        ][(i % 4) as usize],
        i % 250,
        i
    )
}

/// Write `n` discovery records spread over `hours` from 00:00, each block of
/// ten minutes in reverse time order (CloudTrail objects are not sorted).
fn write_spanning_object(path: &Path, n: u64, hours: i64) {
    let f = std::fs::File::create(path).unwrap();
    let mut z =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    let span_ms = hours * 3_600_000;
    let t = |i: u64| i as i64 * span_ms / n as i64;
    z.write_all(b"{\"Records\":[").unwrap();
    let mut first = true;
    let mut block_start = 0u64;
    while block_start < n {
        let block = t(block_start) / 600_000;
        let mut end = block_start;
        while end < n && t(end) / 600_000 == block {
            end += 1;
        }
        for i in (block_start..end).rev() {
            if !first {
                z.write_all(b",").unwrap();
            }
            first = false;
            z.write_all(discovery_record(i, t(i)).as_bytes()).unwrap();
        }
        block_start = end;
    }
    z.write_all(b"]}").unwrap();
    z.finish().unwrap().flush().unwrap();
}

#[test]
fn a_cloudtrail_object_spanning_hours_keeps_only_its_recent_past() {
    const N: u64 = 400_000;
    let small = tempfile::tempdir().unwrap();
    write_spanning_object(
        &small
            .path()
            .join("111122223333_CloudTrail_us-east-1_20261120T0000Z_s.json.gz"),
        N / 100,
        24,
    );
    // Named like CloudTrail's: its hold follows read progress.
    let named = tempfile::tempdir().unwrap();
    write_spanning_object(
        &named
            .path()
            .join("111122223333_CloudTrail_us-east-1_20261120T0000Z_b.json.gz"),
        N,
        24,
    );
    // The same records under an ad-hoc name hold the watermark until read:
    // this is what the object's rule state costs when all of it is kept.
    let adhoc = tempfile::tempdir().unwrap();
    std::fs::copy(
        named
            .path()
            .join("111122223333_CloudTrail_us-east-1_20261120T0000Z_b.json.gz"),
        adhoc.path().join("export.json.gz"),
    )
    .unwrap();
    let (e_small, rss_small) = replay(small.path());
    let (e_named, rss_named) = replay(named.path());
    let (e_adhoc, rss_adhoc) = replay(adhoc.path());
    eprintln!("peak RSS MB: small {rss_small:.1}, named {rss_named:.1}, ad-hoc {rss_adhoc:.1}");
    for e in [&e_named, &e_adhoc] {
        assert!(e.contains("events                         400000"), "{e}");
        assert!(
            e.contains("events late / duplicate / no identity  0 / 0 / 0"),
            "ten minutes of disorder is within the hold: {e}"
        );
    }
    assert!(
        e_small.contains("events late / duplicate / no identity  0 / 0 / 0"),
        "{e_small}"
    );
    assert!(
        rss_adhoc > rss_small + 60.0,
        "the object is big enough for held state to show: {rss_small:.1} MB small, {rss_adhoc:.1} MB held"
    );
    assert!(
        rss_named < rss_small + 50.0,
        "peak RSS grew with the object's span: {rss_small:.1} MB for {} records, {rss_named:.1} MB for {N}",
        N / 100
    );
}
