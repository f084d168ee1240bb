//! Huge inputs through `reconwatch replay`: a 200 MB (decompressed) object
//! is streamed with memory flat against a 2 MB one, and an object with one
//! million records is read completely. Peak RSS comes from the replay
//! summary (VmHWM); no timing is asserted.

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
