//! Criterion benchmarks of reconwatch's hot paths:
//!
//! * `split`: [`RecordSplitter`] over a decompressed `{"Records":[...]}` body
//!   fed in 64 KiB chunks (as `decode_object` does);
//! * `parse`: [`parse_record`] + [`Interner`] on every record of that body;
//! * `decode_object`: the whole decode stage (gunzip + split + parse) on an
//!   in-memory gzip object, and on the same body uncompressed;
//! * `engine`: the rule [`Engine`] with every default rule on a synthetic but
//!   realistic event mix (Zipf identities, per-identity API repertoires,
//!   aws-cli / SDK / console / AWS-service clients, periodic discovery bursts,
//!   events shuffled within 5-minute delivery slots), batches of 512 with the
//!   watermark advanced before each batch, as the shard actors do.
//!
//! The JSON corpus is real CloudTrail: `tests/data/invictus_aws` (2,900
//! records) and `samples/` (238), repeated to about 8 MB. Set
//! `RECONWATCH_BENCH_DIR=bench/out/main` (any directory `replay` accepts) to
//! take the corpus from generated data instead (first ~8 MB of records).
//!
//! Run: `cargo bench --bench hot_paths` (about a minute; each benchmark
//! warms up 1 s and measures 3 s, 10 samples).

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use reconwatch::config::{RulesConfig, S3Config};
use reconwatch::decode::record::{Interner, parse_record};
use reconwatch::decode::splitter::RecordSplitter;
use reconwatch::decode::{Event, EventOut, IdentitySource, Limits, Sym, decode_object};
use reconwatch::rules::alert::Detection;
use reconwatch::window::engine::{Engine, EngineConfig};

const CHUNK: usize = 64 * 1024;
const TARGET_BYTES: usize = 8 << 20;

/// Every record (raw JSON bytes) in the files under `dirs`.
fn load_records(dirs: &[PathBuf], limit_bytes: usize) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for d in dirs {
        files.extend(reconwatch::ingest::local::list_files(d).expect("corpus directory"));
    }
    let mut out = Vec::new();
    let mut total = 0usize;
    for f in files {
        let raw = std::fs::read(&f).expect("read corpus file");
        let body = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut s = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut s)
                .expect("gunzip corpus file");
            s
        } else {
            raw
        };
        let mut sp = RecordSplitter::new(1 << 20);
        sp.feed(&body, &mut |p| {
            if let Some(r) = p.record_bytes() {
                total += r.len();
                out.push(r.to_vec());
            }
        })
        .expect("corpus file is JSON");
        if total >= limit_bytes {
            break;
        }
    }
    assert!(!out.is_empty(), "no records in the corpus");
    out
}

struct Corpus {
    /// Decompressed `{"Records":[...]}` body.
    body: Vec<u8>,
    /// The same, gzip level 6 (as CloudTrail and the generator).
    gz: Vec<u8>,
    records: Vec<Vec<u8>>,
}

fn corpus() -> Corpus {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = match std::env::var_os("RECONWATCH_BENCH_DIR") {
        Some(d) => load_records(&[PathBuf::from(d)], TARGET_BYTES),
        None => load_records(
            &[
                root.join("tests/data/invictus_aws/CloudTrail"),
                root.join("samples"),
            ],
            TARGET_BYTES,
        ),
    };
    let mut records = Vec::new();
    let mut total = 0usize;
    while total < TARGET_BYTES {
        for r in &base {
            total += r.len();
            records.push(r.clone());
        }
    }
    let mut body = b"{\"Records\":[".to_vec();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(r);
    }
    body.extend_from_slice(b"]}");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(&body).expect("gzip");
    let gz = enc.finish().expect("gzip");
    eprintln!(
        "corpus: {} records, {:.1} MB decompressed, {:.2} MB gzip",
        records.len(),
        body.len() as f64 / 1e6,
        gz.len() as f64 / 1e6
    );
    Corpus { body, gz, records }
}

/// Counts events, keeps none.
struct Count(u64);

impl EventOut for Count {
    async fn push(&mut self, events: &mut Vec<Event>) -> Result<(), ()> {
        self.0 += events.len() as u64;
        events.clear();
        Ok(())
    }
}

fn bench_decode(c: &mut Criterion, corpus: &Corpus) {
    let n_records = corpus.records.len() as u64;
    let n_bytes = corpus.body.len() as u64;

    let mut g = c.benchmark_group("split");
    g.throughput(Throughput::Bytes(n_bytes));
    g.bench_function("records_64k_chunks", |b| {
        b.iter(|| {
            let mut sp = RecordSplitter::new(1 << 20);
            let mut n = 0u64;
            for chunk in corpus.body.chunks(CHUNK) {
                sp.feed(chunk, &mut |p| {
                    n += p.record_bytes().map_or(0, |r| r.len() as u64);
                })
                .expect("split");
            }
            sp.finish().expect("complete");
            black_box(n)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(n_records));
    g.bench_function("parse_record+interner", |b| {
        b.iter(|| {
            let mut interner = Interner::default();
            let mut ok = 0u64;
            for r in &corpus.records {
                if let Ok(e) = parse_record(black_box(r), &mut interner) {
                    ok += e.time_ms as u64 & 1;
                }
            }
            black_box(ok)
        })
    });
    g.finish();

    let limits = Limits::from(&S3Config::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("decode_object");
    g.throughput(Throughput::Bytes(n_bytes));
    g.bench_function("gzip", |b| {
        b.iter(|| {
            let mut out = Count(0);
            let stats = rt
                .block_on(decode_object(
                    std::io::Cursor::new(&corpus.gz[..]),
                    "bench.json.gz",
                    limits,
                    &mut out,
                ))
                .expect("decode");
            assert_eq!(stats.events, n_records);
            black_box(out.0)
        })
    });
    g.bench_function("plain", |b| {
        b.iter(|| {
            let mut out = Count(0);
            rt.block_on(decode_object(
                std::io::Cursor::new(&corpus.body[..]),
                "bench.json",
                limits,
                &mut out,
            ))
            .expect("decode");
            black_box(out.0)
        })
    });
    g.finish();
}

/// A deterministic, realistic event mix for the rule engine.
fn event_mix(corpus: &Corpus, n: usize) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(42);
    // (eventName, eventSource) pairs seen in the corpus.
    let mut interner = Interner::default();
    let mut names: Vec<(Sym, Sym)> = Vec::new();
    for r in &corpus.records {
        if let Ok(e) = parse_record(r, &mut interner)
            && !names.iter().any(|(n, s)| *n == e.name && *s == e.source)
        {
            names.push((e.name.clone(), e.source.clone()));
        }
    }
    let sym = |s: &str| -> Sym { Sym::from(s) };
    let discovery: Vec<(Sym, Sym)> = [
        ("DescribeInstances", "ec2"),
        ("DescribeSecurityGroups", "ec2"),
        ("DescribeVpcs", "ec2"),
        ("ListUsers", "iam"),
        ("ListRoles", "iam"),
        ("GetAccountAuthorizationDetails", "iam"),
        ("ListBuckets", "s3"),
        ("DescribeDBInstances", "rds"),
        ("ListFunctions20150331", "lambda"),
        ("ListKeys", "kms"),
        ("DescribeTrails", "cloudtrail"),
        ("GetCallerIdentity", "sts"),
        ("ListTables", "dynamodb"),
        ("DescribeLoadBalancers", "elasticloadbalancing"),
    ]
    .iter()
    .map(|(n, s)| (sym(n), sym(&format!("{s}.amazonaws.com"))))
    .collect();
    names.extend(discovery.iter().cloned());

    struct Ident {
        identity: Sym,
        source: IdentitySource,
        itype: Sym,
        akid: Option<Sym>,
        ua: Sym,
        console: bool,
        ips: Vec<Sym>,
        repertoire: Vec<usize>,
    }
    let regions: Vec<Sym> = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"]
        .iter()
        .map(|s| sym(s))
        .collect();
    let account = sym("111122223333");
    let n_ident = 2_000usize;
    let mut idents = Vec::with_capacity(n_ident);
    for i in 0..n_ident {
        let ip = |rng: &mut fastrand::Rng| sym(&format!("198.51.100.{}", rng.u8(1..255)));
        let k = if i < 40 {
            rng.usize(2..5) // busy workload roles: a narrow set of calls
        } else {
            rng.usize(4..17) // people: a dozen-odd APIs
        };
        let repertoire = (0..k).map(|_| rng.usize(0..names.len())).collect();
        let id = match (i, rng.u8(0..10)) {
            (0..=3, _) => {
                let host = ["ec2", "lambda", "cloudtrail", "config"][i];
                Ident {
                    identity: sym(&format!("{host}.amazonaws.com")),
                    source: IdentitySource::InvokedBy,
                    itype: sym("AWSService"),
                    akid: None,
                    ua: sym(&format!("{host}.amazonaws.com")),
                    console: false,
                    ips: vec![sym(&format!("{host}.amazonaws.com"))],
                    repertoire,
                }
            }
            (4..=39, r) => Ident {
                identity: sym(&format!(
                    "arn:aws:sts::111122223333:assumed-role/app-{i}/i-0{i:015x}"
                )),
                source: IdentitySource::Arn,
                itype: sym("AssumedRole"),
                akid: Some(sym(&format!("ASIA{i:016}"))),
                ua: sym(if r < 5 {
                    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10 lang/python#3.11.8"
                } else {
                    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux api/ec2#1.150.0"
                }),
                console: false,
                ips: vec![ip(&mut rng)],
                repertoire,
            },
            (_, r) => {
                let (ua, console) = match r {
                    0..=3 => (
                        "aws-cli/2.15.30 Python/3.11.8 Linux/5.10 exe/x86_64 prompt/off",
                        false,
                    ),
                    4..=5 => (
                        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 lang/python#3.11.8",
                        false,
                    ),
                    6 => (
                        "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0",
                        false,
                    ),
                    _ => (
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/123.0",
                        true,
                    ),
                };
                Ident {
                    identity: sym(&format!("arn:aws:iam::111122223333:user/person-{i}")),
                    source: IdentitySource::Arn,
                    itype: sym("IAMUser"),
                    akid: Some(sym(&format!("AKIA{i:016}"))),
                    ua: sym(ua),
                    console,
                    ips: (0..rng.usize(1..4)).map(|_| ip(&mut rng)).collect(),
                    repertoire,
                }
            }
        };
        idents.push(id);
    }
    let cum: Vec<f64> = (0..n_ident)
        .scan(0.0, |t, i| {
            *t += 1.0 / ((i + 1) as f64).powf(1.1);
            Some(*t)
        })
        .collect();
    let total = *cum.last().expect("identities");
    let attacker = Ident {
        identity: sym("arn:aws:iam::111122223333:user/compromised"),
        source: IdentitySource::Arn,
        itype: sym("IAMUser"),
        akid: Some(sym("AKIAEXAMPLECOMPROMISED")),
        ua: sym("aws-cli/2.15.30 Python/3.11.8 Linux/5.10 exe/x86_64 prompt/off"),
        console: false,
        ips: vec![sym("203.0.113.231")],
        repertoire: Vec::new(),
    };
    let t0: i64 = 1_795_132_800_000; // 2026-11-20T00:00:00Z
    let mut t = t0;
    let mut id = 0u128;
    let mut make = |who: &Ident, name: usize, time_ms: i64, rng: &mut fastrand::Rng| {
        id += 1;
        let (n, s) = &names[name];
        Event {
            time_ms,
            id: id.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
            name: n.clone(),
            source: s.clone(),
            region: regions[usize::from(rng.u8(0..10) >= 7) * rng.usize(1..regions.len())].clone(),
            source_ip: Some(who.ips[rng.usize(0..who.ips.len())].clone()),
            user_agent: Some(who.ua.clone()),
            error_code: (rng.u8(0..100) < 3).then(|| sym("AccessDenied")),
            account_id: Some(account.clone()),
            identity: who.identity.clone(),
            identity_source: who.source,
            identity_type: Some(who.itype.clone()),
            access_key_id: who.akid.clone(),
            console_session: who.console,
        }
    };
    let disc0 = names.len() - discovery.len();
    let mut events = Vec::with_capacity(n + n / 100);
    while events.len() < n {
        // 62 500 events per hour on average.
        t += rng.i64(0..115);
        let who = &idents[cum
            .partition_point(|&c| c < rng.f64() * total)
            .min(n_ident - 1)];
        let name = who.repertoire[rng.usize(0..who.repertoire.len())];
        events.push(make(who, name, t, &mut rng));
        if events.len() % 5_000 == 0 {
            // A discovery burst: 10 distinct calls in about 5 s.
            for k in 0..10 {
                let at = t + k as i64 * 500;
                events.push(make(&attacker, disc0 + k, at, &mut rng));
            }
        }
    }
    // CloudTrail orders nothing within an object: shuffle per 5-minute slot.
    events.sort_by_key(|e| e.time_ms / 300_000);
    let mut start = 0;
    while start < events.len() {
        let slot = events[start].time_ms / 300_000;
        let end = start + events[start..].partition_point(|e| e.time_ms / 300_000 == slot);
        rng.shuffle(&mut events[start..end]);
        start = end;
    }
    events
}

fn bench_engine(c: &mut Criterion, corpus: &Corpus) {
    let rules = Arc::new(reconwatch::rules::load(&RulesConfig::default()).expect("default rules"));
    let cfg = EngineConfig::default();
    let events = event_mix(corpus, 200_000);
    // Batches of 512, as the router sends them (made outside the timing).
    let batches =
        |events: &[Event]| -> Vec<Vec<Event>> { events.chunks(512).map(|b| b.to_vec()).collect() };
    let run = |batches: Vec<Vec<Event>>| {
        let mut engine = Engine::new(rules.clone(), cfg);
        let mut out: Vec<Detection> = Vec::new();
        let mut max_ms = i64::MIN;
        let mut detections = 0usize;
        for batch in batches {
            let newest = batch.iter().map(|e| e.time_ms).fold(max_ms, i64::max);
            engine.apply_batch(max_ms, batch, &mut out);
            max_ms = newest;
            detections += out.len();
            out.clear();
            engine.flush_metrics();
        }
        engine.close_all(&mut out);
        detections + out.len()
    };
    eprintln!(
        "engine mix: {} events over {:.1} h of event time, {} detections",
        events.len(),
        (events.last().map_or(0, |e| e.time_ms) - events[0].time_ms) as f64 / 3.6e6,
        run(batches(&events))
    );
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("default_rules", |b| {
        b.iter_batched(
            || batches(&events),
            |x| black_box(run(x)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn hot_paths(c: &mut Criterion) {
    let corpus = corpus();
    bench_decode(c, &corpus);
    bench_engine(c, &corpus);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_paths
}
criterion_main!(benches);
