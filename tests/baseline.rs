//! Rule 5 end to end through the binary: `baseline train` on three synthetic
//! weeks, then a new process replays a fourth-week day with one spike hour:
//! only that hour alerts, with Splunk's fields. A `kill -9` during training
//! leaves the state store readable.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// 2026-10-05T00:00:00Z, a Monday.
const MONDAY: i64 = 1_791_158_400_000;
const HOUR: i64 = 3_600_000;

/// Deterministic xorshift noise in `0..n`.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn ts(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Ordinary hourly volume of a user: busy weekday office hours, quiet nights
/// and weekends, ±4 noise.
fn normal_count(rng: &mut Rng, hour_ms: i64) -> u64 {
    let hod = (hour_ms / HOUR) % 24;
    let weekend = ((hour_ms / 86_400_000) + 3) % 7 >= 5;
    let base = match (weekend, hod) {
        (false, 8..=17) => 40,
        (false, _) => 8,
        (true, _) => 12,
    };
    base - 4 + rng.next(9)
}

/// Write one gzip file per day for `users`, with `counts(user, hour_ms)` calls per hour.
fn write_days(
    dir: &Path,
    users: &[String],
    days: std::ops::Range<i64>,
    mut counts: impl FnMut(usize, i64) -> u64,
) {
    let mut id = 0u64;
    for day in days {
        let mut recs = Vec::new();
        for h in 0..24 {
            let hour = MONDAY + day * 86_400_000 + h * HOUR;
            for (u, arn) in users.iter().enumerate() {
                let n = counts(u, hour);
                for i in 0..n {
                    id += 1;
                    let t = hour + (i as i64 * 3_599_000) / n.max(1) as i64;
                    recs.push(format!(
                        r#"{{"eventTime":"{}","eventSource":"s3.amazonaws.com","eventName":"{}","awsRegion":"us-east-1","sourceIPAddress":"192.0.2.10","userAgent":"Boto3/1.34","userIdentity":{{"type":"IAMUser","arn":"{arn}"}},"eventID":"00000000-0000-4000-8000-{:012x}","recipientAccountId":"111122223333"}}"#,
                        ts(t),
                        ["PutObject", "GetObject", "PutItem", "Invoke"][(i % 4) as usize],
                        id + day as u64 * 1_000_000_000
                    ));
                }
            }
        }
        // CloudTrail-style name: the delivery slot (here the day's start) lets
        // the replay watermark advance, so finished hours are sealed and saved.
        let slot = ts(MONDAY + day * 86_400_000).replace(['-', ':'], "");
        let name = format!(
            "111122223333_CloudTrail_us-east-1_{}Z_day{day:02}.json.gz",
            &slot[..13]
        );
        let f = std::fs::File::create(dir.join(name)).unwrap();
        let mut z = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        write!(z, "{{\"Records\":[{}]}}", recs.join(",")).unwrap();
        z.finish().unwrap();
    }
}

fn reconwatch(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reconwatch"))
        .args(args)
        .env("RECONWATCH__PIPELINE__STATE_DIR", state)
        .env("RUST_LOG", "warn")
        .env_remove("RECONWATCH_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn trained_baseline_survives_restart_and_flags_only_the_spike_hour() {
    let state = tempfile::tempdir().unwrap();
    let weeks = tempfile::tempdir().unwrap();
    let users = vec!["arn:aws:iam::111122223333:user/steady".to_string()];
    let mut rng = Rng(42);
    write_days(weeks.path(), &users, 0..21, |_, h| {
        normal_count(&mut rng, h)
    });

    let out = reconwatch(
        state.path(),
        &["baseline", "train", weeks.path().to_str().unwrap()],
    );
    let train_log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{train_log}");
    assert!(out.stdout.is_empty(), "training sends no alerts");
    assert!(
        train_log.contains("events late / duplicate / no identity  0 / 0 / 0"),
        "{train_log}"
    );
    assert!(state.path().join("state.redb").exists());

    // What the store holds: every weekday/weekend 4-hour group, judged.
    let show = reconwatch(state.path(), &["baseline", "show"]);
    let table = String::from_utf8_lossy(&show.stdout);
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("user/steady"))
        .collect();
    assert_eq!(rows.len(), 12, "{table}");
    assert!(rows.iter().all(|r| r.contains(" true ")), "{table}");
    let office = rows.iter().find(|r| r.contains(" 12d ")).unwrap();
    assert!(office.contains(" 60 "), "15 weekdays × 4 hours: {office}");

    // A new process replays Monday of week 4: ordinary hours, and 14:00 with 400 calls.
    let day = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    write_days(day.path(), &users, 21..22, |_, h| {
        if (h / HOUR) % 24 == 14 {
            400
        } else {
            normal_count(&mut rng, h)
        }
    });
    let out = reconwatch(state.path(), &["replay", day.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|a: &serde_json::Value| a["rule"]["id"] == "api_calls_anomaly")
        .collect();
    let first: Vec<&serde_json::Value> = alerts.iter().filter(|a| a["kind"] == "alert").collect();
    assert_eq!(first.len(), 1, "only the spike hour: {alerts:#?}");
    let a = first[0];
    assert_eq!(a["window"]["start"], "2026-10-26T14:00:00.000Z");
    let b = &a["baseline"];
    let upper = b["expected_upper_threshold"].as_f64().unwrap();
    let calls = b["api_calls"].as_f64().unwrap();
    assert!(calls > upper, "{b}");
    assert!((b["distance_from_threshold"].as_f64().unwrap() - (calls - upper)).abs() < 1e-9);
    assert!(
        (40.0..60.0).contains(&upper),
        "office-hours threshold {upper}"
    );
    assert_eq!(b["samples"], 60);
    assert_eq!(b["hour_of_day_bucket"], 12);
    assert_eq!(b["is_weekend"], false);
    assert_eq!(b["dist"], "normal");
    assert_eq!(
        b["commands"],
        serde_json::json!(["GetObject", "Invoke", "PutItem", "PutObject"])
    );
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/alert.schema.json")).unwrap();
    for x in &alerts {
        common::check_schema(&schema, x, "baseline alert");
    }
    // The hour's final count follows as an update with the same id.
    let update = alerts
        .iter()
        .find(|x| x["kind"] == "update")
        .expect("final update");
    assert_eq!(update["alert_id"], a["alert_id"]);
    assert_eq!(update["baseline"]["api_calls"], 400);
    // replay only reads the store: the spike did not become part of the baseline.
    let again = reconwatch(state.path(), &["baseline", "show"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout), table);
}

#[test]
fn kill_9_during_training_leaves_a_readable_store() {
    use std::os::unix::process::ExitStatusExt;
    let state = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let users: Vec<String> = (0..400)
        .map(|i| format!("arn:aws:iam::111122223333:user/u{i}"))
        .collect();
    let mut rng = Rng(9);
    write_days(data.path(), &users, 0..21, |_, h| {
        normal_count(&mut rng, h) / 2
    });
    let log_path = state.path().join("train.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_reconwatch"))
        .args(["baseline", "train", data.path().to_str().unwrap()])
        .env("RECONWATCH__PIPELINE__STATE_DIR", state.path())
        .env("RECONWATCH__STATE__FLUSH_SECS", "1")
        .env("RUST_LOG", "warn,reconwatch::window=debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // Wait until the trainer reports a committed save of baselines, then
    // SIGKILL it while it is still running.
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("State saved") && log.contains("baseline/") {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before a save was seen; make the data larger:\n{log}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no save within 120 s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed mid-run by SIGKILL");
    // The store opens and holds what the saves before the kill committed.
    let show = reconwatch(state.path(), &["baseline", "show"]);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let rows = String::from_utf8_lossy(&show.stdout).lines().count() - 1;
    assert!(rows > 0, "saves before the kill must be readable");
    // Training again on top of the interrupted store completes.
    let out = reconwatch(
        state.path(),
        &["baseline", "train", data.path().to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = reconwatch(state.path(), &["baseline", "show"]);
    assert!(String::from_utf8_lossy(&show.stdout).lines().count() > rows);
}

#[test]
fn a_store_in_use_is_reported_clearly_and_replay_continues_without_it() {
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("state.redb");
    let _held = redb::Database::create(&db).unwrap(); // another process's open store
    let show = reconwatch(state.path(), &["baseline", "show"]);
    assert!(!show.status.success());
    let err = String::from_utf8_lossy(&show.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
    let out = reconwatch(state.path(), &["replay", samples]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
}

/// The S3 state store (containers without a volume), on a real LocalStack:
/// train into `s3://bucket/prefix`, then a new process reads it back and
/// flags the spike hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_state_store_on_localstack() {
    let sdk = common::aws().await;
    let s3 = common::s3(&sdk);
    let bucket = common::unique("state");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let uri = format!("s3://{bucket}/reconwatch/prod");
    let weeks = tempfile::tempdir().unwrap();
    let users = vec!["arn:aws:iam::111122223333:user/steady".to_string()];
    let mut rng = Rng(42);
    write_days(weeks.path(), &users, 0..21, |_, h| {
        normal_count(&mut rng, h)
    });
    let day = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    write_days(day.path(), &users, 21..22, |_, h| {
        if (h / HOUR) % 24 == 14 {
            400
        } else {
            normal_count(&mut rng, h)
        }
    });
    let local = tempfile::tempdir().unwrap();
    let run = |args: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_reconwatch"))
            .args(&args)
            .env("RECONWATCH__PIPELINE__STATE_DIR", local.path())
            .env("RECONWATCH__STATE__KIND", "s3")
            .env("RECONWATCH__STATE__S3_URI", &uri)
            .env("RECONWATCH__AWS__ENDPOINT_URL", common::endpoint())
            .env("RECONWATCH__AWS__REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(vec![
        "baseline".into(),
        "train".into(),
        weeks.path().display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !local.path().join("state.redb").exists(),
        "nothing written locally"
    );
    let objects = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("reconwatch/prod/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert!(
        keys.contains(&"reconwatch/prod/baseline__api_calls_anomaly.json"),
        "{keys:?}"
    );
    let show = run(vec!["baseline".into(), "show".into()]);
    let table = String::from_utf8_lossy(&show.stdout);
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("user/steady") && l.contains(" true "))
            .count(),
        12,
        "{table}"
    );
    let out = run(vec!["replay".into(), day.path().display().to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spikes: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|a: &serde_json::Value| {
            a["rule"]["id"] == "api_calls_anomaly" && a["kind"] == "alert"
        })
        .collect();
    assert_eq!(spikes.len(), 1);
    assert_eq!(spikes[0]["window"]["start"], "2026-10-26T14:00:00.000Z");
}
